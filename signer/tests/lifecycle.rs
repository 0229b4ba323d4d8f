//! Key lifecycle end to end: the real `oryx-signer` binary over mTLS — GenerateKey (idempotent
//! by label, successors signing under their predecessor's rules), RetireKey with the watermark
//! hand-over on a SoftHSM2 token (also across a restart), SignTranscript, and the admin check.
//! Every signature is verified by recovery.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use oryx_proto::antelope::{Checksum256, PublicKey};
use oryx_proto::grpc;
use oryx_proto::grpc::signer_client::SignerClient;
use oryx_signer::client::reason;
use oryx_tests::harness::*;
use tonic::transport::Channel;

/// Makes `node1` an admin (`intruder` stays a plain client).
fn make_node1_admin(dir: &Path) {
    let text = std::fs::read_to_string(config_path(dir)).unwrap();
    std::fs::write(config_path(dir), format!("admins = [\"node1\"]\n{text}")).unwrap();
}

/// A `--dev` signer directory with `node1` as admin, and its producer key.
fn dev_dir() -> (tempfile::TempDir, PublicKey) {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    make_node1_admin(dir.path());
    let key = first_key(dir.path());
    (dir, key)
}

/// Signs block `n` (slot `n`) and checks the signature recovers to `key` over the block id.
async fn signs(c: &mut SignerClient<Channel>, key: &PublicKey, n: u32) {
    let h = savanna(n, n, 0);
    let r = sign_block(c, key, &h)
        .await
        .unwrap_or_else(|e| panic!("block {n} with {key}: {e:?}"));
    let id = h.id().unwrap();
    assert_eq!(r.digest, id.0.to_vec());
    assert_eq!(sig_of(&r.signature).recover(&id).unwrap(), *key);
}

async fn refused_with(c: &mut SignerClient<Channel>, key: &PublicKey, n: u32, want: &str) {
    let e = sign_block(c, key, &savanna(n, n, 7))
        .await
        .expect_err("must be refused");
    assert_eq!(reason(&e).as_deref(), Some(want), "block {n}: {e:?}");
}

async fn generate(
    c: &mut SignerClient<Channel>,
    backend: &str,
    label: &str,
    successor_of: &PublicKey,
) -> Result<grpc::GenerateKeyResponse, tonic::Status> {
    c.generate_key(grpc::GenerateKeyRequest {
        backend: backend.into(),
        label: label.into(),
        key_type: "K1".into(),
        successor_of: successor_of.to_string(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner())
}

async fn retire(
    c: &mut SignerClient<Channel>,
    old: &PublicKey,
    new: &PublicKey,
) -> grpc::RetireKeyResponse {
    c.retire_key(grpc::RetireKeyRequest {
        public_key: old.to_string(),
        successor: new.to_string(),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn listed(c: &mut SignerClient<Channel>) -> Vec<String> {
    c.list_keys(grpc::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys
        .into_iter()
        .map(|k| k.public_key)
        .collect()
}

fn verify_audit(signer: &Signer) {
    run(
        &["audit", "verify", signer.audit_path().to_str().unwrap()],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_successor_is_idempotent_by_label_and_signs_under_the_predecessors_rule() {
    let (dir, old) = dev_dir();
    let signer = Signer::start(dir.path(), &[]);
    let mut admin = signer.client("node1").await;

    let first = generate(&mut admin, "dev", "producer-2", &old)
        .await
        .unwrap();
    let info = first.key.clone().unwrap();
    let new = PublicKey::parse(&info.public_key).unwrap();
    assert_ne!(new, old);
    assert!(!first.existing);
    assert_eq!(first.successor_of, old.to_string());
    assert_eq!(info.label, "producer-2");
    assert_eq!(info.chain_ids, vec![eos()], "inherits the chains");
    assert!(info.blind_digest, "inherits blind_digest");
    let at = first.audit.unwrap();
    assert_eq!(at.hash.len(), 64);

    // The same call again (a resumed ceremony): the same key, nothing generated.
    let again = generate(&mut admin, "dev", "producer-2", &old)
        .await
        .unwrap();
    assert!(again.existing);
    assert_eq!(again.key.unwrap().public_key, new.to_string());
    assert!(again.audit.unwrap().seq > at.seq);
    // The label with another predecessor (here: none) is refused, not reused.
    let e = admin
        .generate_key(grpc::GenerateKeyRequest {
            backend: "dev".into(),
            label: "producer-2".into(),
            key_type: "K1".into(),
            chains: vec!["main".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("MALFORMED"), "{e:?}");
    assert!(e.message().contains("is registered for"), "{e:?}");
    // One active successor per key: a second ceremony's key is refused while this one is open.
    let e = generate(&mut admin, "dev", "producer-2b", &old)
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("MALFORMED"), "{e:?}");
    assert!(
        e.message().contains("already has an active successor"),
        "{e:?}"
    );
    let on_device = run(
        &[
            "keys",
            "list",
            "-c",
            config_path(dir.path()).to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(
        on_device.matches("\"label\":\"producer-2\"").count(),
        1,
        "{on_device}"
    );
    // A generated successor is listed as such, under its predecessor's rules.
    let rows: serde_json::Value = serde_json::from_str(&on_device).unwrap();
    let successor = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == "producer-2")
        .unwrap();
    assert_eq!(successor["role"], "generated (registry)", "{successor}");
    assert!(
        successor["rules"][0]
            .as_str()
            .unwrap()
            .starts_with("allow node1"),
        "{successor}"
    );

    let keys = listed(&mut admin).await;
    assert!(keys.contains(&new.to_string()) && keys.contains(&old.to_string()));

    // The successor signs under the predecessor's allow rule (node1 may use `old`) and its
    // watermark: from the moment it exists, neither key signs a height the other signed — not
    // even the very block the other signed.
    let base = now_slot();
    signs(&mut admin, &old, base).await;
    refused_with(&mut admin, &new, base, "DOUBLE_SIGN").await;
    let e = sign_block(&mut admin, &new, &savanna(base, base, 0))
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("DOUBLE_SIGN"), "{e:?}");
    assert!(
        e.message().contains("another key of this producer"),
        "{e:?}"
    );
    for n in base + 1..base + 3 {
        signs(&mut admin, &new, n).await;
    }
    refused_with(&mut admin, &old, base + 2, "DOUBLE_SIGN").await;
    let d = savanna(base + 10, base + 10, 0).id().unwrap();
    let r = admin
        .sign_digest(grpc::SignDigestRequest {
            chain_id: eos(),
            public_key: new.to_string(),
            digest: d.0.to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sig_of(&r.signature).recover(&d).unwrap(), new);

    // A principal that is not an admin: refused NOT_ADMIN, and the refusal is on record.
    let mut intruder = signer.client("intruder").await;
    let e = generate(&mut intruder, "dev", "mine", &old)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(reason(&e).as_deref(), Some("NOT_ADMIN"), "{e:?}");
    let e = intruder
        .retire_key(grpc::RetireKeyRequest {
            public_key: old.to_string(),
            successor: new.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("NOT_ADMIN"), "{e:?}");
    let entries = signer.audit_entries();
    for kind in ["generate_key", "retire_key"] {
        assert!(
            entries.iter().any(|e| e["principal"] == "intruder"
                && e["kind"] == kind
                && e["decision"] == "refused"
                && e["reason"].as_str().unwrap().contains("NOT_ADMIN")),
            "{kind} refusal audited"
        );
    }
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "generate_key" && e["decision"] == "generated")
    );

    // Ending the open rotation (what `oryx ceremony abort` does: RetireKey of the new key
    // without a successor) lets another one start; the old key signs on meanwhile.
    let ended = admin
        .retire_key(grpc::RetireKeyRequest {
            public_key: new.to_string(),
            successor: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!ended.already_retired);
    refused_with(&mut admin, &new, base + 20, "KEY_RETIRED").await;
    signs(&mut admin, &old, base + 20).await;
    let next = generate(&mut admin, "dev", "producer-2b", &old)
        .await
        .unwrap();
    assert!(!next.existing);

    // The [[keys]] producer key handed over: `keys list` calls it retired, not configured,
    // and `--public-key` (for scripts) leaves it out.
    let next_key = next.key.unwrap().public_key;
    retire(&mut admin, &old, &PublicKey::parse(&next_key).unwrap()).await;
    let cfg = config_path(dir.path());
    let listed: serde_json::Value = serde_json::from_str(&run(
        &["keys", "list", "-c", cfg.to_str().unwrap(), "--json"],
        &[],
    ))
    .unwrap();
    let role = |k: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["public_key"] == k)
            .map(|r| r["role"].as_str().unwrap().to_string())
    };
    assert_eq!(
        role(&old.to_string()).as_deref(),
        Some("retired (registry)")
    );
    assert_eq!(role(&next_key).as_deref(), Some("generated (registry)"));
    let keys = run(
        &["keys", "list", "-c", cfg.to_str().unwrap(), "--public-key"],
        &[],
    );
    assert!(
        !keys.contains(&old.to_string()) && keys.contains(&next_key),
        "{keys}"
    );
    verify_audit(&signer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn softhsm2_rotation_hands_the_watermark_over_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), false);
    make_node1_admin(dir.path());
    let conf = softhsm_backend(dir.path(), "rotation");
    let env = [("SOFTHSM2_CONF", conf.to_str().unwrap())];
    let old = hsm_key(dir.path(), &conf, "producer-1", false);
    // A key made on the token earlier whose registration never happened (a lost answer).
    let dangling = hsm_key(dir.path(), &conf, "producer-3", false);
    configure_hsm_keys(
        dir.path(),
        &[old],
        r#"["block", "transaction", "digest"]"#,
        true,
    );
    let mut signer = Signer::start(dir.path(), &env);
    let mut c = signer.client("node1").await;

    let g = generate(&mut c, "hsm", "producer-2", &old).await.unwrap();
    let new = PublicKey::parse(&g.key.as_ref().unwrap().public_key).unwrap();
    assert_eq!(g.key.unwrap().backend, "pkcs11");
    let d = generate(&mut c, "hsm", "producer-3", &new).await.unwrap();
    assert!(
        d.existing,
        "the label's key on the token is registered, not a second one"
    );
    assert_eq!(d.key.unwrap().public_key, dangling.to_string());

    let base = now_slot();
    let n = base + 4;
    for h in base..=n {
        signs(&mut c, &old, h).await;
    }
    // The successor shares the producer key's watermark from the moment it exists: before
    // the retirement it signs no height the old key signed (issue: a ceremony that failed
    // after GenerateKey left a successor that signed blocks 10 and 50 again).
    refused_with(&mut c, &new, base, "DOUBLE_SIGN").await;
    refused_with(&mut c, &new, n, "DOUBLE_SIGN").await;

    let r = retire(&mut c, &old, &new).await;
    assert!(!r.already_retired);
    assert_eq!(r.handovers.len(), 1, "{r:?}");
    assert_eq!(r.handovers[0].chain_id, eos());
    assert_eq!((r.handovers[0].block_num, r.handovers[0].slot), (n, n));
    assert!(r.audit.is_some());

    let check = |mut c: SignerClient<Channel>| async move {
        refused_with(&mut c, &old, n + 1, "KEY_RETIRED").await;
        refused_with(&mut c, &new, n, "DOUBLE_SIGN").await;
        refused_with(&mut c, &new, n - 1, "DOUBLE_SIGN").await;
        // Not even the very block the old key signed at n.
        let e = sign_block(&mut c, &new, &savanna(n, n, 0))
            .await
            .unwrap_err();
        assert_eq!(reason(&e).as_deref(), Some("DOUBLE_SIGN"), "{e:?}");
        let keys = listed(&mut c).await;
        assert!(
            !keys.contains(&old.to_string()),
            "retired keys are not listed"
        );
        assert!(keys.contains(&new.to_string()));
    };
    check(c.clone()).await;
    signs(&mut c, &new, n + 1).await;

    // Repeating the retirement is harmless.
    let again = retire(&mut c, &old, &new).await;
    assert!(again.already_retired);
    assert_eq!(again.handovers[0].block_num, n + 1, "never lowered");
    // Refusals: unknown key, a retired successor, a key succeeding itself.
    for (key, successor, want) in [
        (dangling.to_string(), old.to_string(), "KEY_RETIRED"),
        (new.to_string(), new.to_string(), "MALFORMED"),
        (
            "PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63".into(),
            String::new(),
            "UNKNOWN_KEY",
        ),
    ] {
        let e = c
            .retire_key(grpc::RetireKeyRequest {
                public_key: key,
                successor,
            })
            .await
            .unwrap_err();
        assert_eq!(reason(&e).as_deref(), Some(want), "{e:?}");
    }

    // After a restart: still retired, the hand-over still holds.
    signer.stop();
    let signer = Signer::start(dir.path(), &env);
    let mut c = signer.client("node1").await;
    check(c.clone()).await;
    signs(&mut c, &new, n + 2).await;

    let cfg = config_path(dir.path());
    let shown: serde_json::Value = serde_json::from_str(&run(
        &["keys", "registry", "-c", cfg.to_str().unwrap(), "--json"],
        &env,
    ))
    .unwrap();
    let row = |k: &PublicKey| {
        shown
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["public_key"] == k.to_string())
            .cloned()
            .unwrap()
    };
    assert_eq!(row(&old)["state"], "retired");
    assert_eq!(row(&old)["successor"], new.to_string());
    assert_eq!(row(&new)["state"], "active");
    assert_eq!(row(&new)["successor_of"], old.to_string());
    verify_audit(&signer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts_are_signed_by_the_audit_key_over_the_documented_digest() {
    let (dir, _) = dev_dir();
    let cfg = config_path(dir.path());
    let out: serde_json::Value = serde_json::from_str(&run(
        &[
            "keys",
            "generate",
            "-c",
            cfg.to_str().unwrap(),
            "--backend",
            "dev",
            "--label",
            "transcripts",
            "--json",
        ],
        &[],
    ))
    .unwrap();
    let audit_key = PublicKey::parse(out["public_key"].as_str().unwrap()).unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "path = \"audit/audit.jsonl\"",
        &format!("path = \"audit/audit.jsonl\"\nsigning_key = \"{audit_key}\""),
    );
    std::fs::write(&cfg, text).unwrap();
    append_config(
        dir.path(),
        &format!("[[keys]]\npublic_key = \"{audit_key}\"\nbackend = \"dev\"\nchains = []\n"),
    );
    let signer = Signer::start(dir.path(), &[]);
    let mut c = signer.client("node1").await;

    let head = Checksum256::hash(b"the transcript's last entry");
    let r = c
        .sign_transcript(grpc::SignTranscriptRequest {
            head: head.0.to_vec(),
            ceremony: "rotate-2025-01".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // The documented digest, computed by hand.
    let mut preimage = b"oryx transcript v1\0rotate-2025-01\0".to_vec();
    preimage.extend_from_slice(&head.0);
    let digest = Checksum256::hash(&preimage);
    assert_eq!(
        digest,
        oryx_signer::transcript_digest("rotate-2025-01", &head)
    );
    assert_eq!(r.digest, digest.0.to_vec());
    assert_eq!(r.public_key, audit_key.to_string());
    assert_eq!(sig_of(&r.signature).recover(&digest).unwrap(), audit_key);
    let at = r.audit.unwrap();
    let entries = signer.audit_entries();
    let e = &entries[at.seq as usize];
    assert_eq!(e["kind"], "sign_transcript");
    assert_eq!(e["hash"], at.hash);
    assert_eq!(e["digest"], digest.to_string());

    for (head, ceremony, want) in [
        (vec![1u8; 31], "x", "MALFORMED"),
        (head.0.to_vec(), "", "MALFORMED"),
        (head.0.to_vec(), "line\nbreak", "MALFORMED"),
    ] {
        let e = c
            .sign_transcript(grpc::SignTranscriptRequest {
                head,
                ceremony: ceremony.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(reason(&e).as_deref(), Some(want), "{e:?}");
    }
    // The transcript key signs nothing for a chain.
    let n = now_slot();
    let e = sign_block(&mut c, &audit_key, &savanna(n, n, 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    // Nor may it be retired.
    let e = c
        .retire_key(grpc::RetireKeyRequest {
            public_key: audit_key.to_string(),
            successor: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("MALFORMED"), "{e:?}");

    let mut intruder = signer.client("intruder").await;
    let e = intruder
        .sign_transcript(grpc::SignTranscriptRequest {
            head: head.0.to_vec(),
            ceremony: "rotate-2025-01".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("NOT_ADMIN"), "{e:?}");
    assert!(
        signer
            .audit_entries()
            .iter()
            .any(|e| e["principal"] == "intruder"
                && e["kind"] == "sign_transcript"
                && e["decision"] == "refused")
    );
    verify_audit(&signer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_registry_the_lifecycle_calls_say_what_to_configure() {
    let (dir, old) = dev_dir();
    let cfg = config_path(dir.path());
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[registry]\npath = \"state/keys.json\"\n", "");
    std::fs::write(&cfg, text).unwrap();
    let signer = Signer::start(dir.path(), &[]);
    let mut c = signer.client("node1").await;
    let e = generate(&mut c, "dev", "producer-2", &old)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&e).as_deref(), Some("NOT_CONFIGURED"), "{e:?}");
    assert!(e.message().contains("[registry]"), "{}", e.message());
    let e = c
        .sign_transcript(grpc::SignTranscriptRequest {
            head: vec![0; 32],
            ceremony: "c".into(),
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("signing_key"), "{}", e.message());
}

/// `keys generate` prints a `[[keys]]` entry that works pasted as printed: it names the
/// config's own chain (`init` calls it `main`), not a guess.
#[test]
fn a_generated_key_entry_pastes_into_the_config_as_printed() {
    let (dir, _) = dev_dir();
    let cfg = config_path(dir.path());
    let cfg = cfg.to_str().unwrap();
    let out = run(
        &[
            "keys",
            "generate",
            "-c",
            cfg,
            "--backend",
            "dev",
            "--label",
            "walk",
        ],
        &[],
    );
    let entry = &out[out.find("[[keys]]").expect("an entry to paste")..];
    assert!(entry.contains("chains = [\"main\"]"), "{out}");
    append_config(dir.path(), &format!("\n{entry}\n"));
    let listed: serde_json::Value =
        serde_json::from_str(&run(&["keys", "list", "-c", cfg, "--json"], &[])).unwrap();
    let row = |label: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["label"] == label)
            .cloned()
            .unwrap_or_else(|| panic!("{label}: {listed}"))
    };
    // Each key with what it is here and the rules that use it.
    assert_eq!(row("walk")["role"], "configured");
    assert_eq!(row("walk")["rules"], serde_json::json!([]));
    let producer = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] != "walk")
        .unwrap();
    assert!(
        producer["rules"][0]
            .as_str()
            .unwrap()
            .starts_with("allow node1: block"),
        "{producer}"
    );
}

#[test]
fn a_corrupt_registry_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    std::fs::write(
        dir.path().join("state/keys.json"),
        "{\"version\": 1, \"keys\": [",
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["start", "-c", config_path(dir.path()).to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key registry") && err.contains("corrupt"),
        "{err}"
    );
}

/// Requests with the old key racing its retirement: every signature the old key gave is at or
/// below the height handed over, so the successor can never sign at a height the old key did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_old_signature_escapes_the_hand_over() {
    let (dir, old) = dev_dir();
    let signer = Signer::start(dir.path(), &[]);
    let mut c = signer.client("node1").await;
    let g = generate(&mut c, "dev", "producer-2", &old).await.unwrap();
    let new = PublicKey::parse(&g.key.unwrap().public_key).unwrap();

    let base = now_slot();
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let first_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(first_tx)));
    let tasks: Vec<_> = (0..4u32)
        .map(|t| {
            let mut c = c.clone();
            let first_tx = first_tx.clone();
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for i in 0..200u32 {
                    let n = base + 4 * i + t;
                    match sign_block(&mut c, &old, &savanna(n, n, 0)).await {
                        Ok(r) => {
                            let id = savanna(n, n, 0).id().unwrap();
                            assert_eq!(sig_of(&r.signature).recover(&id).unwrap(), old);
                            accepted.push(n);
                            if let Some(tx) = first_tx.lock().unwrap().take() {
                                let _ = tx.send(());
                            }
                        }
                        Err(e) if reason(&e).as_deref() == Some("KEY_RETIRED") => break,
                        // Out-of-order heights are refused; a request whose reservation a
                        // higher one overtook has its signature withheld (stale commit).
                        Err(e) => assert!(
                            matches!(reason(&e).as_deref(), Some("DOUBLE_SIGN" | "UNAVAILABLE")),
                            "{e:?}"
                        ),
                    }
                }
                accepted
            })
        })
        .collect();
    first_rx.await.unwrap();
    let r = retire(&mut c, &old, &new).await;
    let handed = r.handovers[0].block_num;
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let highest = all.iter().copied().max().unwrap();
    assert!(
        highest <= handed,
        "the old key signed block {highest} above the hand-over at {handed}"
    );
    assert_eq!(
        highest, handed,
        "the hand-over is the old key's last signature"
    );
    refused_with(&mut c, &new, handed, "DOUBLE_SIGN").await;
    signs(&mut c, &new, handed + 1).await;
}
