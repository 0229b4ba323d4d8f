//! Signer replicas of one producer key on a real 3-member etcd cluster (the real `oryx-signer`
//! binary, mTLS, TLS to etcd with client certificates), and the node's failover between them
//! (`oryx_node::failover::Signers`, what the bridge and `produce` use):
//! - replicas asked at once for conflicting blocks at one height: exactly one signs, and the
//!   identical request on another replica gets that signature back;
//! - SIGKILL of the replica in use: the next request is answered by another replica;
//! - SIGKILL of the etcd leader: signing resumes after the election;
//! - SIGSTOP of a replica for longer than the etcd timeouts: on waking it signs nothing with
//!   its stale view, and no height gets two digests even when it was paused mid-request;
//! - a replica cut off from etcd (nftables): it refuses UNAVAILABLE and turns unready while the
//!   other carries on, then recovers without a restart.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use oryx_node::failover::{CallError, Signers};
use oryx_proto::antelope::Pack as _;
use oryx_proto::client::reason;
use oryx_proto::grpc;
use oryx_tests::etcd::{EtcdCluster, Partition};
use oryx_tests::harness::{Signer, eos, now_slot, savanna, sig_of, sign_block};
use oryx_tests::replicas::{replica_dirs, start_all};

/// Slots of the test blocks: block `n` is at `BASE + n`, all in the recent past.
fn base_slot() -> u32 {
    now_slot() - 5_000
}

fn block_request(key: &str, n: u32, base: u32, variant: u8) -> grpc::SignBlockRequest {
    grpc::SignBlockRequest {
        chain_id: eos(),
        public_key: key.to_string(),
        header: savanna(n, base + n, variant).packed(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_asked_at_once_sign_one_block_per_height() {
    let cluster = EtcdCluster::start(3);
    let base = base_slot();
    let dirs = replica_dirs(&cluster, 2, &[], 100, base + 100);
    let signers = start_all(&dirs);
    let key = dirs.key;
    let mut clients = Vec::new();
    for s in &signers {
        clients.push(s.client("node1").await);
    }
    for n in 101..=110u32 {
        let mut tasks = Vec::new();
        for variant in 0..8u8 {
            let mut c = clients[usize::from(variant) % 2].clone();
            let header = savanna(n, base + n, variant + 1);
            tasks.push(tokio::spawn(async move {
                (variant, sign_block(&mut c, &key, &header).await)
            }));
        }
        let mut signed = Vec::new();
        for t in tasks {
            let (variant, r) = t.await.unwrap();
            match r {
                Ok(resp) => signed.push((variant, sig_of(&resp.signature))),
                Err(s) => assert_eq!(
                    reason(&s).as_deref(),
                    Some("DOUBLE_SIGN"),
                    "height {n} variant {variant}: {s:?}"
                ),
            }
        }
        assert_eq!(signed.len(), 1, "height {n}: {signed:?}");
        // The identical request on every replica: the one signature, replayed once the
        // signature's commit (written after the reply) is in etcd; until then the same content
        // may be signed again, never other content.
        let (variant, sig) = signed[0];
        for c in &mut clients {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let again = sign_block(c, &key, &savanna(n, base + n, variant + 1))
                    .await
                    .unwrap();
                assert_eq!(sig_of(&again.signature), sig, "height {n}");
                if again.replayed {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "height {n}: never replayed"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    // Each replica's audit log names it.
    for (s, name) in signers.iter().zip(["a", "b"]) {
        let log = std::fs::read_to_string(s.audit_path()).unwrap();
        assert!(
            log.lines()
                .all(|l| l.contains(&format!("\"replica\":\"{name}\""))),
            "{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_survives_a_killed_replica_and_a_killed_etcd_leader() {
    let mut cluster = EtcdCluster::start(3);
    let base = base_slot();
    let dirs = replica_dirs(&cluster, 2, &[], 200, base + 200);
    let mut signers = start_all(&dirs);
    let key = dirs.key.to_string();
    let tls = signers[0].tls("node1");
    let addrs: Vec<String> = signers.iter().map(|s| s.addr.clone()).collect();
    let node = Signers::start(&addrs, &tls, Duration::from_millis(500));
    node.wait_connected(Duration::from_secs(10)).await.unwrap();
    let ask = |n: u32| {
        let req = block_request(&key, n, base, 1);
        let node = node.clone();
        async move {
            node.call(Duration::from_secs(5), |mut c| {
                let req = req.clone();
                async move { c.sign_block(req).await }
            })
            .await
        }
    };
    let first = ask(201).await.unwrap();
    let in_use = addrs.iter().position(|a| *a == first.replica).unwrap();
    let other = &addrs[1 - in_use];

    // The replica in use dies: the next block is signed by the other, at once.
    signers[in_use].kill();
    let next = ask(202).await.unwrap();
    assert_eq!(&next.replica, other);
    // And stays there.
    let after = ask(203).await.unwrap();
    assert_eq!((&after.replica, after.failovers), (other, 0));

    // The etcd leader dies: refused (never signed blind) until the election, then signed.
    let leader = cluster.leader();
    cluster.kill(leader);
    let started = std::time::Instant::now();
    let mut n = 204;
    let mut refusals = 0;
    loop {
        match ask(n).await {
            Ok(_) => break,
            Err(CallError::Unavailable(_)) => refusals += 1,
            Err(CallError::Refused(s)) => {
                assert_eq!(reason(&s).as_deref(), Some("UNAVAILABLE"), "{s:?}");
                refusals += 1;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no recovery");
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "etcd leader killed: signing resumed after {} ms ({refusals} refusals)",
        started.elapsed().as_millis()
    );
    assert!(node.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replica_wakes_up_without_a_stale_view() {
    let cluster = EtcdCluster::start(3);
    let base = base_slot();
    let dirs = replica_dirs(&cluster, 2, &[], 300, base + 300);
    let signers = start_all(&dirs);
    let key = dirs.key;
    let mut a = signers[0].client("node1").await;
    let mut b = signers[1].client("node1").await;
    // a signs and so caches the watermark at 305.
    for n in 301..=305 {
        sign_block(&mut a, &key, &savanna(n, base + n, 1))
            .await
            .unwrap();
    }
    // a sleeps through more than its etcd timeouts while b signs on.
    pause(&signers[0]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for n in 306..=310 {
        sign_block(&mut b, &key, &savanna(n, base + n, 2))
            .await
            .unwrap();
    }
    resume(&signers[0]);
    // Woken, a must not believe 305 is still the top: 308 with another digest is refused...
    let stale = sign_block(&mut a, &key, &savanna(308, base + 308, 1))
        .await
        .unwrap_err();
    assert_eq!(reason(&stale).as_deref(), Some("DOUBLE_SIGN"), "{stale:?}");
    // ...and 311 goes through.
    sign_block(&mut a, &key, &savanna(311, base + 311, 1))
        .await
        .unwrap();

    // Paused in the middle of a request: whichever replica reserved first, one digest only.
    for n in 312..=316u32 {
        let mut a2 = a.clone();
        let req_a =
            tokio::spawn(async move { sign_block(&mut a2, &key, &savanna(n, base + n, 1)).await });
        tokio::time::sleep(Duration::from_millis(u64::from(n % 3))).await;
        pause(&signers[0]);
        tokio::time::sleep(Duration::from_millis(700)).await;
        let on_b = sign_block(&mut b, &key, &savanna(n, base + n, 2)).await;
        resume(&signers[0]);
        let on_a = req_a.await.unwrap();
        let signed = usize::from(on_a.is_ok()) + usize::from(on_b.is_ok());
        assert!(signed <= 1, "height {n}: both signed ({on_a:?} / {on_b:?})");
        for r in [&on_a, &on_b] {
            if let Err(s) = r {
                assert!(
                    matches!(reason(s).as_deref(), Some("DOUBLE_SIGN" | "UNAVAILABLE")),
                    "height {n}: {s:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_etcd_refuses_while_the_other_carries_on() {
    let cluster = EtcdCluster::start(3);
    let base = base_slot();
    // b reaches the cluster on 127.0.0.2, which the partition cuts off.
    let dirs = replica_dirs(&cluster, 2, &["127.0.0.1", "127.0.0.2"], 400, base + 400);
    let signers = start_all(&dirs);
    let key = dirs.key;
    let mut a = signers[0].client("node1").await;
    let mut b = signers[1].client("node1").await;
    sign_block(&mut b, &key, &savanna(401, base + 401, 1))
        .await
        .unwrap();

    let cut = Partition::cut(&cluster);
    let refused = sign_block(&mut b, &key, &savanna(402, base + 402, 1))
        .await
        .unwrap_err();
    assert_eq!(
        reason(&refused).as_deref(),
        Some("UNAVAILABLE"),
        "{refused:?}"
    );
    assert!(refused.message().contains("etcd"), "{refused:?}");
    let status = b.status(grpc::StatusRequest {}).await.unwrap().into_inner();
    assert!(!status.ready, "{status:?}");
    // The other replica signs on (a different block at 402 than b was asked for).
    for n in 402..=405 {
        sign_block(&mut a, &key, &savanna(n, base + n, 2))
            .await
            .unwrap();
    }

    drop(cut);
    // b recovers by itself, and knows what a signed meanwhile.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match sign_block(&mut b, &key, &savanna(406, base + 406, 1)).await {
            Ok(_) => break,
            Err(s) if std::time::Instant::now() < deadline => {
                assert_eq!(reason(&s).as_deref(), Some("UNAVAILABLE"), "{s:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(s) => panic!("b did not recover: {s:?}"),
        }
    }
    let conflict = sign_block(&mut b, &key, &savanna(404, base + 404, 1))
        .await
        .unwrap_err();
    assert_eq!(reason(&conflict).as_deref(), Some("DOUBLE_SIGN"));
    let status = b.status(grpc::StatusRequest {}).await.unwrap().into_inner();
    assert!(status.ready, "{status:?}");
}

fn pause(s: &Signer) {
    signal(s, "-STOP");
}

fn resume(s: &Signer) {
    signal(s, "-CONT");
}

fn signal(s: &Signer, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &s.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// RetireKey on one replica would not stop the key on the others: refused, nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retire_key_is_refused_on_replicas() {
    let cluster = EtcdCluster::start(3);
    let base = base_slot();
    let dirs = replica_dirs(&cluster, 2, &[], 500, base + 500);
    let cfg = oryx_tests::harness::config_path(&dirs.dirs[0]);
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("admins = [\"node1\"]\n{text}")).unwrap();
    let a = Signer::start(&dirs.dirs[0], &[]);
    let mut c = a.client("node1").await;
    let refused = c
        .retire_key(grpc::RetireKeyRequest {
            public_key: dirs.key.to_string(),
            successor: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        reason(&refused).as_deref(),
        Some("NOT_CONFIGURED"),
        "{refused:?}"
    );
    assert!(refused.message().contains("replicas"), "{refused:?}");
    // The key still signs.
    sign_block(&mut c, &dirs.key, &savanna(501, base + 501, 1))
        .await
        .unwrap();
}
