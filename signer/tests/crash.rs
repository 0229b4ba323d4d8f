//! Crash safety: the real daemon, with a SoftHSM2 key (random nonces, so a re-signature would
//! show as a different signature), is SIGKILLed at random moments during a stream of SignBlock
//! requests — two conflicting headers raced at every height, plus identical retries — and
//! restarted, many times. Afterwards no (key, height) has two different signatures or two
//! different digests, and the audit log's chain is intact.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oryx_proto::antelope::{Pack, PublicKey};
use oryx_proto::grpc;
use oryx_tests::harness::*;

const ROUNDS: u32 = 30;

/// A small deterministic generator (the seed is printed so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

type Seen = Arc<Mutex<HashMap<u32, Vec<(Vec<u8>, String)>>>>;

async fn stream(
    signer_addr: String,
    tls: oryx_signer::client::ClientTls,
    key: PublicKey,
    start: u32,
    seen: Seen,
    seed: u64,
) -> u32 {
    let Ok(client) = oryx_signer::client::connect(&signer_addr, &tls).await else {
        return start;
    };
    let mut rng = Lcg(seed);
    let mut h = start;
    loop {
        // Two conflicting headers for the same height, raced on two streams of one channel.
        let mut tasks = Vec::new();
        for variant in 0..2u8 {
            let mut c = client.clone();
            let header = savanna(h, h, variant);
            let req = grpc::SignBlockRequest {
                chain_id: eos(),
                public_key: key.to_string(),
                header: header.packed(),
                ..Default::default()
            };
            tasks.push(tokio::spawn(async move { c.sign_block(req).await }));
        }
        let mut alive = true;
        for t in tasks {
            match t.await.unwrap() {
                Ok(r) => {
                    let r = r.into_inner();
                    let sig = r.signature.unwrap().text;
                    seen.lock()
                        .unwrap()
                        .entry(h)
                        .or_default()
                        .push((r.digest, sig));
                }
                Err(e) if oryx_signer::client::reason(&e).as_deref() == Some("DOUBLE_SIGN") => {}
                Err(_) => alive = false,
            }
        }
        if !alive {
            return h;
        }
        // Sometimes step back and retry the height just signed (identical → same signature).
        if rng.next().is_multiple_of(3) {
            continue;
        }
        h += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_signing_never_yields_two_signatures_per_height() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), false);
    let conf = softhsm_backend(dir.path(), "crash");
    let env = [("SOFTHSM2_CONF", conf.to_str().unwrap())];
    let key = hsm_key(dir.path(), &conf, "p", false);
    configure_hsm_keys(dir.path(), &[key], r#"["block"]"#, false);

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut rng = Lcg(seed);
    let seen: Seen = Arc::default();
    let mut height = now_slot();
    for round in 0..ROUNDS {
        let mut signer = Signer::start(dir.path(), &env);
        let task = tokio::spawn(stream(
            signer.addr.clone(),
            signer.tls("node1"),
            key,
            height,
            seen.clone(),
            seed ^ u64::from(round),
        ));
        tokio::time::sleep(Duration::from_millis(10 + rng.next() % 250)).await;
        signer.kill();
        let reached = task.await.unwrap();
        // Resume a little below where the stream stopped, so retries cross the crash.
        height = reached.saturating_sub((rng.next() % 3) as u32).max(height);
        run(
            &["audit", "verify", signer.audit_path().to_str().unwrap()],
            &[],
        );
    }

    let seen = seen.lock().unwrap().clone();
    let total: usize = seen.values().map(Vec::len).sum();
    assert!(
        total > ROUNDS as usize,
        "the stream should have signed blocks ({total})"
    );
    for (h, sigs) in seen.iter() {
        let first = &sigs[0];
        for s in sigs {
            assert_eq!(
                s, first,
                "height {h}: two different signatures or digests: {sigs:?}"
            );
        }
    }
    // And the store agrees after a last restart: every signed height below the top is refused.
    let signer = Signer::start(dir.path(), &env);
    let mut c = signer.client("node1").await;
    let top = *seen.keys().max().unwrap();
    for (h, sigs) in seen.iter() {
        let variant = if savanna(*h, *h, 0).id().unwrap().0.to_vec() == sigs[0].0 {
            1
        } else {
            0
        };
        let r = c
            .sign_block(grpc::SignBlockRequest {
                chain_id: eos(),
                public_key: key.to_string(),
                header: savanna(*h, *h, variant).packed(),
                ..Default::default()
            })
            .await;
        let e = r.expect_err("the conflicting header must be refused");
        assert_eq!(
            oryx_signer::client::reason(&e).as_deref(),
            Some("DOUBLE_SIGN"),
            "height {h} (top {top}): {e:?}"
        );
    }
    eprintln!(
        "crash test: {ROUNDS} kills, {} heights, {total} signatures observed",
        seen.len()
    );
}
