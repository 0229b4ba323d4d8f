//! The shared watermark store against a real 3-member etcd cluster (TLS, client certificates):
//! nothing signs without an imported watermark; two replicas see one watermark (identical
//! requests replay, conflicting ones are refused, stale views re-decide); concurrent replicas
//! reserve one digest per height; an unreachable cluster refuses and recovers without a
//! restart; a rolled-back store is detected.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Barrier};
use std::time::Duration;

use oryx_proto::antelope::{Checksum256, KeyType, Signature};
use oryx_signer::backend::KeyBackend as _;
use oryx_signer::backend::soft::SoftKey;
use oryx_signer::signing::{SignOptions, sign};
use oryx_signer::watermark::etcd::{EtcdSettings, EtcdStore};
use oryx_signer::watermark::{
    Request, ReserveError, Reserved, RetryPolicy, StoreError, Watermark, WatermarkKey,
    WatermarkRecord, WatermarkStore,
};
use oryx_tests::etcd::EtcdCluster;

const CHAIN: Checksum256 = Checksum256([7; 32]);

fn settings(cluster: &EtcdCluster, prefix: &str, replica: &str, journal: bool) -> EtcdSettings {
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    EtcdSettings {
        endpoints: cluster.endpoints(),
        prefix: prefix.into(),
        replica: replica.into(),
        tls: (
            read(&cluster.tls.ca),
            read(&cluster.tls.cert),
            read(&cluster.tls.key),
        ),
        timeout: Duration::from_millis(1000),
        connect_timeout: Duration::from_millis(500),
        journal: journal.then(|| cluster.dir().join(format!("{replica}.journal"))),
    }
}

fn store(cluster: &EtcdCluster, prefix: &str, replica: &str) -> EtcdStore {
    EtcdStore::open(&settings(cluster, prefix, replica, true), None).unwrap()
}

fn block(n: u32) -> Request {
    Request::Block {
        block_num: n,
        slot: n + 1000,
    }
}

fn digest(n: u32, variant: u8) -> Checksum256 {
    let mut d = [variant; 32];
    d[..4].copy_from_slice(&n.to_be_bytes());
    Checksum256(d)
}

fn reserve(
    s: &EtcdStore,
    key: &WatermarkKey,
    n: u32,
    variant: u8,
) -> Result<Reserved, ReserveError> {
    s.reserve(
        key,
        &block(n),
        &digest(n, variant),
        now_slot(),
        RetryPolicy::Refuse,
    )
}

fn now_slot() -> u32 {
    oryx_signer::clock::now_slot()
}

/// Imports a starting watermark at block `n`.
fn start_at(s: &EtcdStore, key: &WatermarkKey, n: u32) {
    s.import(
        &WatermarkRecord {
            chain_id: key.chain_id,
            scope: key.scope,
            watermark: Watermark {
                block_num: n,
                slot: n + 1000,
                wall_slot: 0,
                digest: Checksum256([0; 32]),
                signature: None,
            },
        },
        false,
    )
    .unwrap();
}

/// Waits until the signature committed for block `n` is visible in etcd (commits are written
/// after the reply, off its path).
fn wait_committed(s: &EtcdStore, key: &WatermarkKey, n: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while s
        .get(key)
        .unwrap()
        .is_none_or(|w| w.block_num != n || w.signature.is_none())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "block {n} never committed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signed(k: &SoftKey, d: &Checksum256) -> Signature {
    sign(k, d, SignOptions::default()).unwrap().signature
}

fn fresh_key() -> (SoftKey, WatermarkKey) {
    let k = SoftKey::generate(KeyType::K1).unwrap();
    let key = WatermarkKey::of_key(CHAIN, *k.public_key());
    (k, key)
}

#[test]
fn two_replicas_share_one_watermark() {
    let cluster = EtcdCluster::start(3);
    let a = store(&cluster, "/oryx/t1", "a");
    let b = store(&cluster, "/oryx/t1", "b");
    let (k, key) = fresh_key();

    // Nothing signs from zero.
    let missing = reserve(&a, &key, 10, 1).unwrap_err();
    assert!(
        matches!(missing, ReserveError::Store(StoreError::Missing { .. })),
        "{missing}"
    );
    assert!(
        missing.to_string().contains("watermark import"),
        "{missing}"
    );

    start_at(&a, &key, 9);
    let Reserved::Proceed(r) = reserve(&a, &key, 10, 1).unwrap() else {
        panic!("block 10 not reserved");
    };
    let sig10 = signed(&k, &digest(10, 1));
    assert_eq!(a.commit(r, &sig10).unwrap(), sig10);
    wait_committed(&b, &key, 10);

    // The other replica: the identical request replays, a different block at 10 is refused.
    match reserve(&b, &key, 10, 1).unwrap() {
        Reserved::Replay(s) => assert_eq!(s, sig10),
        Reserved::Proceed(_) => panic!("identical request reserved again"),
    }
    let conflict = reserve(&b, &key, 10, 2).unwrap_err();
    assert!(matches!(conflict, ReserveError::Refused(_)), "{conflict}");

    // b moves to 11; a's view is stale and must re-decide, not overwrite.
    let Reserved::Proceed(r) = reserve(&b, &key, 11, 1).unwrap() else {
        panic!("block 11 not reserved");
    };
    let refused = reserve(&a, &key, 11, 2).unwrap_err();
    assert!(matches!(refused, ReserveError::Refused(_)), "{refused}");
    let sig11 = signed(&k, &digest(11, 1));
    b.commit(r, &sig11).unwrap();
    wait_committed(&a, &key, 11);

    match reserve(&a, &key, 11, 1).unwrap() {
        Reserved::Replay(s) => assert_eq!(s, sig11),
        Reserved::Proceed(_) => panic!("identical request reserved again"),
    }
    assert!(matches!(
        reserve(&a, &key, 9, 3).unwrap_err(),
        ReserveError::Refused(_)
    ));

    // What etcd holds, as `watermark export` shows it.
    let exported = b.export().unwrap();
    let mine: Vec<_> = exported.iter().filter(|r| r.scope == key.scope).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].watermark.block_num, 11);
    assert_eq!(mine[0].watermark.signature, Some(sig11));

    // Another deployment's prefix sees none of it.
    let other = store(&cluster, "/oryx/other", "a");
    assert!(other.export().unwrap().is_empty());
}

#[test]
fn concurrent_replicas_reserve_one_digest_per_height() {
    let cluster = EtcdCluster::start(3);
    let stores: Vec<Arc<EtcdStore>> = ["a", "b", "c"]
        .iter()
        .map(|r| Arc::new(store(&cluster, "/oryx/t2", r)))
        .collect();
    let (_, key) = fresh_key();
    start_at(&stores[0], &key, 99);
    for height in 100..110u32 {
        let barrier = Arc::new(Barrier::new(12));
        let threads: Vec<_> = (0..12u8)
            .map(|i| {
                let s = stores[usize::from(i) % 3].clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    (i, reserve(&s, &key, height, i + 1))
                })
            })
            .collect();
        let mut reserved = Vec::new();
        for t in threads {
            let (i, r) = t.join().unwrap();
            match r {
                Ok(Reserved::Proceed(_)) => reserved.push(i),
                Ok(Reserved::Replay(_)) => panic!("nothing was committed to replay"),
                // A conflict, or a replica that lost the race too often: never a second digest.
                Err(ReserveError::Refused(_))
                | Err(ReserveError::Store(StoreError::Contended { .. })) => {}
                Err(e) => panic!("height {height}: {e}"),
            }
        }
        assert_eq!(
            reserved.len(),
            1,
            "height {height}: {reserved:?} all reserved"
        );
    }
}

#[test]
fn an_unreachable_cluster_refuses_and_recovers_without_a_restart() {
    let mut cluster = EtcdCluster::start(3);
    let a = store(&cluster, "/oryx/t3", "a");
    let (k, key) = fresh_key();
    start_at(&a, &key, 1);
    assert!(a.health().is_ok());

    // A majority gone: no leader, so no answer (never a stale one from the minority).
    cluster.kill(1);
    cluster.kill(2);
    std::thread::sleep(Duration::from_millis(1500));
    let err = reserve(&a, &key, 2, 1).unwrap_err();
    assert!(
        matches!(
            err,
            ReserveError::Store(StoreError::Unreachable { .. } | StoreError::UnknownOutcome { .. })
        ),
        "{err}"
    );
    assert!(a.health().is_err());

    cluster.restart(1);
    cluster.restart(2);
    cluster.leader();
    // The same store, no restart: signing resumes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let r = loop {
        match reserve(&a, &key, 2, 1) {
            Ok(Reserved::Proceed(r)) => break r,
            Ok(Reserved::Replay(_)) => panic!("nothing was committed"),
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("no recovery: {e}"),
        }
    };
    a.commit(r, &signed(&k, &digest(2, 1))).unwrap();
    let healthy = a.health();
    assert!(healthy.is_ok(), "{healthy:?}");
}

#[test]
fn a_rolled_back_store_is_refused() {
    let (k, key) = fresh_key();
    let journal_dir = tempfile::tempdir().unwrap();
    let journal = journal_dir.path().join("a.journal");
    let open = |cluster: &EtcdCluster| {
        let mut s = settings(cluster, "/oryx/t4", "a", false);
        s.journal = Some(journal.clone());
        EtcdStore::open(&s, None).unwrap()
    };
    {
        let cluster = EtcdCluster::start(3);
        let a = open(&cluster);
        start_at(&a, &key, 1);
        // Move etcd's revision well ahead, as a live deployment does.
        for n in 2..20 {
            let Reserved::Proceed(r) = reserve(&a, &key, n, 1).unwrap() else {
                panic!()
            };
            a.commit(r, &signed(&k, &digest(n, 1))).unwrap();
        }
    }
    // The same replica (same journal) restarted against a store rebuilt from an old state.
    let cluster = EtcdCluster::start(3);
    let a = open(&cluster);
    let err = a
        .import(
            &WatermarkRecord {
                chain_id: key.chain_id,
                scope: key.scope,
                watermark: Watermark {
                    block_num: 5,
                    slot: 1005,
                    wall_slot: 0,
                    digest: Checksum256([0; 32]),
                    signature: None,
                },
            },
            false,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::RolledBack { .. }), "{err}");
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert!(a.health().is_err());
}

/// A restore that moves etcd's revisions up but its watermarks back (what `etcdutl snapshot
/// restore --bump-revision` does) passes the revision check; the replica's per-key block floor
/// catches it, fences the store, and then every replica refuses until an operator unfences.
#[test]
fn a_restore_with_bumped_revisions_is_caught_and_fences_every_replica() {
    let cluster = EtcdCluster::start(3);
    let a = store(&cluster, "/oryx/t5", "a");
    let b = EtcdStore::open(&settings(&cluster, "/oryx/t5", "b", false), None).unwrap();
    let (k, key) = fresh_key();
    start_at(&a, &key, 4);
    let reserve_and_commit = |n: u32| {
        let Reserved::Proceed(r) = reserve(&a, &key, n, 1).unwrap() else {
            panic!("block {n} not reserved");
        };
        a.commit(r, &signed(&k, &digest(n, 1))).unwrap();
    };
    reserve_and_commit(5);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let prefix = format!("/oryx/t5/wm/{}/{}", key.chain_id, key.scope);
    let old = rt.block_on(async {
        let mut c = cluster.client(&cluster.endpoints()).await;
        let mut values = Vec::new();
        for part in ["num", "slot"] {
            let r = c.get(format!("{prefix}/{part}"), None).await.unwrap();
            values.push(r.kvs()[0].value().to_vec());
        }
        values
    });
    for n in 6..=20 {
        reserve_and_commit(n);
    }
    // The "restore": block 5's values written back, at a higher revision.
    rt.block_on(async {
        let mut c = cluster.client(&cluster.endpoints()).await;
        for (part, v) in ["num", "slot"].iter().zip(&old) {
            c.put(format!("{prefix}/{part}"), v.clone(), None)
                .await
                .unwrap();
        }
    });
    let caught = reserve(&a, &key, 21, 1).unwrap_err();
    assert!(
        matches!(caught, ReserveError::Store(StoreError::RolledBack { .. })),
        "{caught}"
    );
    // The other replica never reserved this key, so has no floor of its own: the fence stops it.
    let fenced = reserve(&b, &key, 21, 2).unwrap_err();
    assert!(
        matches!(fenced, ReserveError::Store(StoreError::Fenced { .. })),
        "{fenced}"
    );
    assert!(fenced.to_string().contains("unfence"), "{fenced}");
    assert!(b.health().is_err());
    // The operator: unfence, re-import the newest watermark (never lower), sign on.
    assert!(b.unfence().unwrap());
    b.import(
        &WatermarkRecord {
            chain_id: key.chain_id,
            scope: key.scope,
            watermark: Watermark {
                block_num: 20,
                slot: 1020,
                wall_slot: now_slot(),
                digest: Checksum256([0; 32]),
                signature: None,
            },
        },
        false,
    )
    .unwrap();
    assert!(matches!(
        reserve(&b, &key, 21, 2).unwrap(),
        Reserved::Proceed(_)
    ));
}

/// A producer's keys grouped on one replica share one watermark in etcd: the group starts above
/// what each key signed alone, a replica still on the old config (signing under a key's own
/// watermark) is stopped by the seal, and a signature such a replica reserves while the group
/// is being settled is carried into the group — never left below it.
#[test]
fn a_producer_group_carries_and_seals_its_keys_watermarks() {
    use oryx_signer::watermark::scope::Group;
    use oryx_signer::watermark::{Scope, Scopes};
    let cluster = EtcdCluster::start(3);
    let new = store(&cluster, "/oryx/t6", "new");
    let old = store(&cluster, "/oryx/t6", "old");
    let mut raced_in = [0; 2];

    // Each round: a new producer with two fresh keys whose own watermarks are at 10 and 30;
    // the old-config replica reserves key a at 40 while the new one settles the group.
    for round in 0..20u8 {
        let producer = format!("oryxprod{}", (b'a' + round) as char)
            .parse()
            .unwrap();
        let group_key = WatermarkKey {
            chain_id: CHAIN,
            scope: Scope::Producer(producer),
        };
        let ((_, a), (_, b)) = (fresh_key(), fresh_key());
        start_at(&new, &a, 10);
        start_at(&new, &b, 30);
        let member = |k: &WatermarkKey| k.scope.key().copied().unwrap();
        let scopes = Scopes::new(&[Group {
            chain_id: CHAIN,
            producer,
            keys: vec![member(&a), member(&b)],
        }]);
        let barrier = Barrier::new(2);
        let (racer, settled) = std::thread::scope(|t| {
            let racer = t.spawn(|| {
                barrier.wait();
                // Later rounds give the settling replica a growing head start, so the racing
                // reservation lands before, inside and after the seal's read-raise-swap.
                std::thread::sleep(Duration::from_micros(u64::from(round) * 400));
                reserve(&old, &a, 40, 1)
            });
            barrier.wait();
            let settled = scopes.settle(&group_key, Vec::new, &new);
            (racer.join().unwrap(), settled)
        });
        settled.unwrap();
        let got_in = matches!(racer, Ok(Reserved::Proceed(_)));
        raced_in[usize::from(got_in)] += 1;
        // Whatever the order, the producer's watermark covers every height either key
        // reserved alone: 40 if the old replica got in first, else 30.
        let floor = if got_in { 40 } else { 30 };
        let w = new.get(&group_key).unwrap().unwrap();
        assert_eq!(w.block_num, floor, "round {round}: {w:?}");
        for n in [floor - 1, floor] {
            assert!(matches!(
                reserve(&new, &group_key, n, 2),
                Err(ReserveError::Refused(_))
            ));
        }
        assert!(matches!(
            reserve(&new, &group_key, floor + 1, 2),
            Ok(Reserved::Proceed(_))
        ));
        // The old replica signs nothing more under either key's own watermark.
        for k in [&a, &b] {
            assert!(matches!(
                reserve(&old, k, 1000, 3),
                Err(ReserveError::Refused(_))
            ));
            assert!(new.get(k).unwrap().unwrap().is_sealed());
        }
        // Settling again (another replica, a restart) changes nothing.
        Scopes::new(&[Group {
            chain_id: CHAIN,
            producer,
            keys: vec![member(&a), member(&b)],
        }])
        .settle(&group_key, Vec::new, &old)
        .unwrap();
        assert_eq!(new.get(&group_key).unwrap().unwrap().block_num, floor + 1);
    }
    eprintln!("old replica got in {} of 20 rounds", raced_in[1]);
}
