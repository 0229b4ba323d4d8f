//! A randomized fault schedule against signer replicas on a real 3-member etcd cluster: while a
//! load of conflicting block requests, blind block ids and transactions runs over three
//! replicas, replicas and etcd members are killed (SIGKILL, then restarted), paused (SIGSTOP,
//! then resumed) and cut off (nftables), one fault per episode. A checker then takes every
//! signature released — in an answer or in any replica's audit log — and verifies it recovers to
//! the key and that no height and no slot was signed for two digests.
//!
//! `ORYX_HA_EPISODES` sets the number of episodes (default 200, what CI runs; the README gives a
//! 1000-episode run) and `ORYX_HA_SEED` the schedule's seed (default: the time). The second test
//! shows the checker can fail: with the test-only unsafe store (no compare), it must find
//! double signing. Both need the `oryx-signer` binary built with this crate's dev features, as
//! `cargo test --workspace` does.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oryx_proto::antelope::block::BlockHeader;
use oryx_proto::antelope::{Checksum256, Pack as _, PublicKey, Signature};
use oryx_proto::grpc;
use oryx_proto::grpc::signer_client::SignerClient;
use oryx_tests::checker::Checker;
use oryx_tests::etcd::{EtcdCluster, Partition};
use oryx_tests::harness::{Signer, eos, now_slot, savanna};
use oryx_tests::replicas::{ReplicaDirs, replica_dirs, start_all};
use tonic::transport::Channel;

/// A small deterministic generator (xorshift64*): the schedule repeats from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Block `n`, variant `v`: slots move two per height and a variant may take either, so
/// conflicting requests differ in height content and sometimes in slot.
fn header(base: u32, n: u32, v: u8) -> BlockHeader {
    savanna(n, base + 2 * n + u32::from(v % 2), v)
}

type Released = Arc<Mutex<Vec<(u32, Option<u32>, Checksum256, Signature)>>>;

/// What the load sends, and where it keeps what comes back.
struct Load {
    clients: Vec<SignerClient<Channel>>,
    key: PublicKey,
    base: u32,
    /// The height the load starts above (the imported watermark's).
    first: u32,
    stop: Arc<AtomicBool>,
    released: Released,
    /// The height asked last.
    height: Arc<AtomicU32>,
}

/// Sends conflicting requests for ever higher heights to random replicas until `stop`; every
/// signature that comes back is kept for the checker. Returns how many requests were answered.
async fn load(l: Load, seed: u64) -> u32 {
    let Load {
        clients,
        key,
        base,
        first,
        stop,
        released,
        height,
    } = l;
    let mut rng = Rng(seed | 1);
    height.store(first, Ordering::Relaxed);
    let mut answered = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = height.fetch_add(1, Ordering::Relaxed) + 1;
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let mut c = clients[rng.below(clients.len() as u64) as usize].clone();
            let v = 1 + rng.below(3) as u8;
            let h = header(base, n, v);
            let kind = rng.below(6);
            let released = released.clone();
            tasks.push(tokio::spawn(async move {
                let ask = async {
                    match kind {
                        // Blind, as nodeos through the bridge: the block id.
                        0 => c
                            .sign_digest(grpc::SignDigestRequest {
                                chain_id: eos(),
                                public_key: key.to_string(),
                                digest: h.id().unwrap().0.to_vec(),
                            })
                            .await
                            .map(|r| (r.into_inner(), None)),
                        // A transaction: no watermark, the same spine (its signature is not a
                        // block's, so it is not kept for the checker).
                        1 => {
                            let trx = oryx_proto::antelope::transaction::Transaction {
                                expiration: oryx_proto::antelope::TimePointSec(
                                    oryx_signer::clock::now_secs().0 + 600,
                                ),
                                ref_block_num: n as u16,
                                ref_block_prefix: n,
                                max_net_usage_words: Default::default(),
                                max_cpu_usage_ms: 0,
                                delay_sec: Default::default(),
                                context_free_actions: vec![],
                                actions: vec![],
                                transaction_extensions: vec![],
                            };
                            let _ = c
                                .sign_transaction(grpc::SignTransactionRequest {
                                    chain_id: eos(),
                                    public_key: key.to_string(),
                                    transaction: Some(
                                        grpc::sign_transaction_request::Transaction::PackedTrx(
                                            trx.packed(),
                                        ),
                                    ),
                                    ..Default::default()
                                })
                                .await;
                            Err(tonic::Status::cancelled("not a block signature"))
                        }
                        _ => c
                            .sign_block(grpc::SignBlockRequest {
                                chain_id: eos(),
                                public_key: key.to_string(),
                                header: h.packed(),
                                ..Default::default()
                            })
                            .await
                            .map(|r| (r.into_inner(), Some(h.timestamp.0))),
                    }
                };
                match tokio::time::timeout(Duration::from_secs(3), ask).await {
                    Ok(Ok((resp, slot))) => {
                        let sig = Signature::parse(&resp.signature.unwrap().text).unwrap();
                        // Checked against what was asked, not what came back: a signature for
                        // another digest would not recover over this one.
                        let requested = h.id().unwrap();
                        assert_eq!(
                            resp.digest, requested.0,
                            "height {n}: answered for another digest"
                        );
                        released.lock().unwrap().push((n, slot, requested, sig));
                        true
                    }
                    _ => false,
                }
            }));
        }
        for t in tasks {
            answered += u32::from(t.await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    answered
}

struct Cast {
    cluster: EtcdCluster,
    dirs: ReplicaDirs,
    signers: Vec<Option<Signer>>,
}

impl Cast {
    async fn restart_replica(&mut self, i: usize) {
        let dir = self.dirs.dirs[i].clone();
        let s = tokio::task::spawn_blocking(move || Signer::start(&dir, &[]))
            .await
            .unwrap();
        self.signers[i] = Some(s);
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status();
}

async fn clients(signers: &[Signer]) -> Vec<SignerClient<Channel>> {
    let mut out = Vec::new();
    for s in signers {
        // Ports pinned: a restarted replica comes back where its clients look.
        s.pin_port();
        out.push(s.client("node1").await);
    }
    out
}

fn check(dirs: &ReplicaDirs, released: &Released) -> Checker {
    let mut checker = Checker::new(dirs.key);
    for (n, slot, digest, sig) in released.lock().unwrap().iter() {
        checker.record("answer", *n, *slot, *digest, sig);
    }
    for d in &dirs.dirs {
        checker.record_audit_log(&d.join("audit/audit.jsonl"));
    }
    checker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_randomized_fault_schedule_never_signs_two_blocks_at_one_height() {
    let episodes: u32 = std::env::var("ORYX_HA_EPISODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("ORYX_HA_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("fault schedule: {episodes} episodes, ORYX_HA_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let cluster = EtcdCluster::start(3);
    let base = now_slot() - 50_000;
    // Replica c reaches etcd on 127.0.0.2, which a partition cuts off.
    let dirs = replica_dirs(
        &cluster,
        3,
        &["127.0.0.1", "127.0.0.1", "127.0.0.2"],
        1000,
        base + 2000,
    );
    let started = start_all(&dirs);
    let clients = clients(&started).await;
    let mut cast = Cast {
        cluster,
        signers: started.into_iter().map(Some).collect(),
        dirs,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let released: Released = Arc::default();
    let height = Arc::new(AtomicU32::new(0));
    let loader = tokio::spawn(load(
        Load {
            clients: clients.clone(),
            key: cast.dirs.key,
            base,
            first: 1000,
            stop: stop.clone(),
            released: released.clone(),
            height: height.clone(),
        },
        seed.rotate_left(17),
    ));
    let t0 = Instant::now();
    let mut kinds = [0u32; 6];
    let mut spent = [Duration::ZERO; 6];
    for _ in 0..episodes {
        let kind = rng.below(6) as usize;
        kinds[kind] += 1;
        let episode = Instant::now();
        let hold = Duration::from_millis(150 + rng.below(450));
        match kind {
            // A replica crashes and comes back.
            0 => {
                let i = rng.below(3) as usize;
                if let Some(mut s) = cast.signers[i].take() {
                    s.kill();
                }
                tokio::time::sleep(hold).await;
                cast.restart_replica(i).await;
            }
            // A replica is paused longer than its etcd timeouts, then resumes.
            1 => {
                let i = rng.below(3) as usize;
                let pid = cast.signers[i].as_ref().unwrap().child.id();
                signal(pid, "-STOP");
                tokio::time::sleep(hold + Duration::from_millis(400)).await;
                signal(pid, "-CONT");
            }
            // Replica c is cut off from etcd, then healed.
            2 => {
                let cut = Partition::cut(&cast.cluster);
                tokio::time::sleep(hold).await;
                drop(cut);
            }
            // An etcd member crashes (the leader, half of the time) and comes back.
            3 => {
                let m = if rng.below(2) == 0 {
                    cast.cluster.leader()
                } else {
                    rng.below(3) as usize
                };
                cast.cluster.kill(m);
                tokio::time::sleep(hold).await;
                let c = &mut cast.cluster;
                tokio::task::block_in_place(|| c.restart(m));
            }
            // An etcd member is paused, then resumed.
            4 => {
                let m = rng.below(3) as usize;
                cast.cluster.pause(m);
                tokio::time::sleep(hold).await;
                cast.cluster.resume(m);
            }
            // No fault: the load runs on.
            _ => tokio::time::sleep(hold).await,
        }
        tokio::time::sleep(Duration::from_millis(50 + rng.below(100))).await;
        spent[kind] += episode.elapsed();
    }
    stop.store(true, Ordering::Relaxed);
    eprintln!("time per episode kind: {spent:?}");
    let answered = loader.await.unwrap();

    // Healed: the replicas still sign.
    let mut c = clients[0].clone();
    let after = header(base, height.load(Ordering::Relaxed) + 10, 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c
            .sign_block(grpc::SignBlockRequest {
                chain_id: eos(),
                public_key: cast.dirs.key.to_string(),
                header: after.packed(),
                ..Default::default()
            })
            .await;
        if r.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no signature after healing: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let checker = check(&cast.dirs, &released);
    eprintln!(
        "fault schedule: {episodes} episodes in {:.0} s (replica kills {}, replica pauses {}, partitions {}, etcd member kills {}, etcd pauses {}, quiet {}); {answered} answers, {} signatures checked, {} violations",
        t0.elapsed().as_secs_f64(),
        kinds[0],
        kinds[1],
        kinds[2],
        kinds[3],
        kinds[4],
        kinds[5],
        checker.checked,
        checker.violations.len()
    );
    assert!(checker.checked > 100, "too few signatures to mean anything");
    assert!(
        checker.violations.is_empty(),
        "seed {seed}: {:#?}",
        checker.violations
    );
}

/// The checker is not vacuous: replicas whose store skips the compare-and-swap (a test-only
/// build) sign conflicting blocks at one height, and the checker says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_an_unsafe_store() {
    let cluster = EtcdCluster::start(3);
    let base = now_slot() - 50_000;
    let dirs = replica_dirs(&cluster, 2, &[], 1000, base + 2000);
    let env = [(oryx_signer::watermark::etcd::UNSAFE_SKIP_COMPARE, "1")];
    let signers: Vec<Signer> = dirs.dirs.iter().map(|d| Signer::start(d, &env)).collect();
    let clients = clients(&signers).await;
    let stop = Arc::new(AtomicBool::new(false));
    let released: Released = Arc::default();
    let loader = tokio::spawn(load(
        Load {
            clients,
            key: dirs.key,
            base,
            first: 1000,
            stop: stop.clone(),
            released: released.clone(),
            height: Arc::default(),
        },
        7,
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    loader.await.unwrap();
    let checker = check(&dirs, &released);
    drop(signers);
    eprintln!(
        "unsafe store: {} signatures checked, {} violations",
        checker.checked,
        checker.violations.len()
    );
    assert!(
        !checker.violations.is_empty(),
        "the checker found nothing wrong with a store that skips its compare (is oryx-signer built with the unsafe-test-store feature? run cargo test --workspace)"
    );
}
