//! `cargo bench -p oryx-signer`: the core pieces of the signing path, each beside the floor it
//! cannot beat, measured in the same run (ratios, not absolute thresholds: machines are noisy).
//!
//! - fc-exact software K1 signature (one attempt) vs the whole `signing::sign` (canonical loop;
//!   a software key's signature is assembled from k256's exact recovery id, not recovered);
//! - public-key recovery;
//! - Savanna header decode + block id;
//! - the key set lookup and retire gate every request takes, vs a software K1 signature;
//! - watermark reserve + commit vs two raw 64-byte write + fdatasync;
//! - audit append (one thread) vs one raw fdatasync, and 8 concurrent appenders (group commit).

use std::hint::black_box;
use std::time::{Duration, Instant};

use oryx_proto::antelope::block::BlockHeader;
use oryx_proto::antelope::{Checksum256, KeyType, Pack, PrivateKey, Signature};
use oryx_signer::audit::{AuditDecision, AuditKind, AuditLog, AuditRecord};
use oryx_signer::backend::KeyBackend;
use oryx_signer::backend::soft::SoftKey;
use oryx_signer::signing::{SignOptions, sign};
use oryx_signer::watermark::file::FileStore;
use oryx_signer::watermark::{Request, Reserved, RetryPolicy, WatermarkKey, WatermarkStore};

/// Median time per call of `f` over `n` calls.
fn median(n: u32, mut f: impl FnMut(u32)) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect();
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:>9.1} µs", d.as_secs_f64() * 1e6)
}

fn row(name: &str, d: Duration, floor: Option<(&str, Duration)>) {
    match floor {
        Some((fname, f)) => println!(
            "{name:<44} {}   {:.2}× {fname}",
            us(d),
            d.as_secs_f64() / f.as_secs_f64()
        ),
        None => println!("{name:<44} {}", us(d)),
    }
}

const EOS_400838396: &str = "b24e565d703055c744e47236000017e44efb304a3d81378887b7f1e9cff1b4c2f7a065f5368b337a69bed5f57addf196c51b021c50ea09b482e09e00ab1ecf7207535c13089d20b003455faaca988bf47442736dc9d7ac73580d5f936a8fc0f6d09580687d305cd1cd4c564a1159000000800001020007fb4ee417010000";

fn main() {
    // `cargo test --benches` runs this with --bench absent: keep it quick then.
    let n: u32 = if std::env::args().any(|a| a == "--bench") {
        2000
    } else {
        20
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SoftKey::new(PrivateKey::from_bytes(KeyType::K1, [7; 32]).expect("key"));
    let public = *key.public_key();
    let digests: Vec<Checksum256> = (0..n)
        .map(|i| Checksum256::hash(&i.to_le_bytes()))
        .collect();

    println!("oryx-signer core benchmarks ({n} iterations each, medians)");
    let raw = median(n, |i| {
        black_box(key.sign_digest(&digests[i as usize], 1).expect("sign"));
    });
    row("floor: software K1 sign, one attempt", raw, None);
    let full = median(n, |i| {
        black_box(sign(&key, &digests[i as usize], SignOptions::default()).expect("sign"));
    });
    row(
        "signing::sign (canonical loop; soft key: no recovery)",
        full,
        Some(("raw sign", raw)),
    );
    let sig = sign(&key, &digests[0], SignOptions::default())
        .expect("sign")
        .signature;
    let recover = median(n, |_| {
        black_box(sig.recover(&digests[0]).expect("recovers"));
    });
    row("signature recovery", recover, Some(("raw sign", raw)));
    let (r, s_) = (
        sig.as_bytes()[1..33].try_into().expect("r"),
        sig.as_bytes()[33..].try_into().expect("s"),
    );
    let verify = median(n, |_| {
        black_box(Signature::from_verified_parts(&public, &digests[0], &r, &s_).expect("verifies"));
    });
    row(
        "verification that finds the recovery id",
        verify,
        Some(("recovery", recover)),
    );

    let r1 = SoftKey::new(PrivateKey::from_bytes(KeyType::R1, [7; 32]).expect("key"));
    let r1_raw = median(n, |i| {
        black_box(r1.sign_digest(&digests[i as usize], 1).expect("sign"));
    });
    row("floor: software R1 sign", r1_raw, None);
    let r1_sig = sign(&r1, &digests[0], SignOptions::default())
        .expect("sign")
        .signature;
    let r1_recover = median(n, |_| {
        black_box(r1_sig.recover(&digests[0]).expect("recovers"));
    });
    row(
        "R1 signature recovery",
        r1_recover,
        Some(("R1 sign", r1_raw)),
    );
    let (r1r, r1s) = (
        r1_sig.as_bytes()[1..33].try_into().expect("r"),
        r1_sig.as_bytes()[33..].try_into().expect("s"),
    );
    let r1_public = *r1.public_key();
    let r1_verify = median(n, |_| {
        black_box(
            Signature::from_verified_parts(&r1_public, &digests[0], &r1r, &r1s).expect("verifies"),
        );
    });
    row(
        "R1 verification that finds the recovery id",
        r1_verify,
        Some(("R1 recovery", r1_recover)),
    );
    let r1_openssl = median(n, |_| {
        black_box(
            oryx_signer::r1verify::recovery_id(&r1_public, &digests[0], &r1r, &r1s)
                .expect("verifies"),
        );
    });
    row(
        "R1 verification + recovery id on OpenSSL (used)",
        r1_openssl,
        Some(("pure Rust", r1_verify)),
    );
    let r1_full = median(n, |i| {
        black_box(sign(&r1, &digests[i as usize], SignOptions::default()).expect("sign"));
    });
    row(
        "signing::sign R1 (soft key: no recovery)",
        r1_full,
        Some(("R1 sign", r1_raw)),
    );

    // The per-request cost of runtime key rotation: find the key in the changeable key set and
    // hold its retire gate (beside a software K1 sign, the cheapest thing a request does).
    let keys = oryx_signer::keyset::KeySet::new([oryx_signer::keyset::KeyEntry::new(
        std::sync::Arc::new(SoftKey::new(
            PrivateKey::from_bytes(KeyType::K1, [7; 32]).expect("key"),
        )),
        vec![],
        false,
        RetryPolicy::Refuse,
    )]);
    let gate = median(n, |_| {
        let entry = keys.get(black_box(&public)).expect("held");
        let _inside = black_box(entry.gate());
        black_box(entry.is_retired());
    });
    row(
        "key set lookup + retire gate",
        gate,
        Some(("raw sign", raw)),
    );

    let header_bytes = hex::decode(EOS_400838396).expect("hex");
    let decode = median(n, |_| {
        let h = BlockHeader::decode(black_box(&header_bytes)).expect("decodes");
        black_box(h.id().expect("id"));
    });
    row("Savanna header decode + block id", decode, None);

    // Durable writes.
    let probe = dir.path().join("probe");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&probe)
        .expect("probe");
    let fsync = median(n.min(500), |i| {
        use std::os::unix::fs::FileExt as _;
        f.write_all_at(&[i as u8; 64], 0).expect("write");
        f.sync_data().expect("sync");
    });
    row("floor: 64-byte write + fdatasync", fsync, None);

    let store = FileStore::open(dir.path().join("wm")).expect("store");
    let wk = WatermarkKey::of_key(Checksum256([1; 32]), public);
    let wm = median(n.min(500), |i| {
        let n = i + 1;
        let req = Request::Block {
            block_num: n,
            slot: n,
        };
        match store
            .reserve(&wk, &req, &digests[i as usize], 0, RetryPolicy::Refuse)
            .expect("reserve")
        {
            Reserved::Proceed(r) => {
                store.commit(r, &sig).expect("commit");
            }
            Reserved::Replay(_) => unreachable!("fresh heights"),
        }
    });
    row(
        "watermark reserve (synced) + commit (not)",
        wm,
        Some(("one fdatasync", fsync)),
    );

    let audit = AuditLog::open(dir.path().join("audit.jsonl")).expect("audit");
    let record = || AuditRecord {
        key: Some(public.to_string()),
        digest: Some(digests[0].to_string()),
        signature: Some(sig.to_string()),
        latency_us: 321,
        ..AuditRecord::new("node1", AuditKind::SignBlock, AuditDecision::Signed)
    };
    let one = median(n.min(500), |_| {
        audit.append(record()).expect("append");
    });
    row(
        "audit append, one writer",
        one,
        Some(("one fdatasync", fsync)),
    );
    let before = (audit.entry_count(), audit.fsync_count());
    let threads = 8;
    let per = n.min(500);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per {
                    audit.append(record()).expect("append");
                }
            });
        }
    });
    let total = t.elapsed();
    let entries = audit.entry_count() - before.0;
    let syncs = audit.fsync_count() - before.1;
    let each = total / entries as u32;
    row(
        &format!("audit append, {threads} writers (per entry)"),
        each,
        Some(("one fdatasync", fsync)),
    );
    println!(
        "  group commit: {entries} entries in {syncs} fdatasyncs ({:.1} entries per sync)",
        entries as f64 / syncs.max(1) as f64
    );
    let _ = sig.packed();
}
