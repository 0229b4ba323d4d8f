//! End to end: the real `oryx-signer` binary over mTLS with soft keys, a SoftHSM2 token and the
//! YubiHSM MockHsm; every signature is verified by recovery.
#![allow(clippy::unwrap_used)]

use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Checksum256, Pack, PublicKey};
use oryx_proto::grpc;
use oryx_proto::grpc::signer_client::SignerClient;
use oryx_signer::client::reason;
use oryx_tests::harness::*;
use tonic::transport::Channel;

const ACTIVATE: &str = "06e10b5e02005132b41600000000010000000000ea30550000002a9bed3232010000000000ea305500000000a8ed3232201a99a59d87e06e09ec5b028a9cbb7749b4a5ad8819004365d02dc4379a8b724100";

/// Savanna and legacy blocks, transactions (packed and JSON) and a blind digest, all verified.
async fn exercise(signer: &Signer, key: &PublicKey) {
    let mut c = signer.client("node1").await;
    let keys = c
        .list_keys(grpc::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(keys.iter().any(|k| k.public_key == key.to_string()));
    let status = c.status(grpc::StatusRequest {}).await.unwrap().into_inner();
    assert!(status.ready, "{:?}", status.problems);

    let base = now_slot();
    for i in 0..5 {
        let h = savanna(base + i, base + i, 0);
        let r = sign_block(&mut c, key, &h).await.unwrap();
        let id = h.id().unwrap();
        assert_eq!(r.digest, id.0.to_vec(), "Savanna: the block id is signed");
        let sig = sig_of(&r.signature);
        assert_eq!(sig.recover(&id).unwrap(), *key);
        assert_eq!(r.block_num, base + i);
    }
    let (bm, sh) = (Checksum256([3; 32]), Checksum256([4; 32]));
    let h = legacy(base + 10, base + 10);
    let r = c
        .sign_block(grpc::SignBlockRequest {
            chain_id: eos(),
            public_key: key.to_string(),
            header: h.packed(),
            blockroot_merkle_root: bm.0.to_vec(),
            pending_schedule_hash: sh.0.to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    let digest = h.legacy_sig_digest(&bm, &sh);
    assert_eq!(r.digest, digest.0.to_vec());
    assert_eq!(sig_of(&r.signature).recover(&digest).unwrap(), *key);

    let trx = Transaction::decode(&hex::decode(ACTIVATE).unwrap()).unwrap();
    let chain = Checksum256(eos().try_into().unwrap());
    for t in [
        grpc::sign_transaction_request::Transaction::PackedTrx(trx.packed()),
        grpc::sign_transaction_request::Transaction::Json(serde_json::to_string(&trx).unwrap()),
    ] {
        let r = c
            .sign_transaction(grpc::SignTransactionRequest {
                chain_id: eos(),
                public_key: key.to_string(),
                transaction: Some(t),
                context_free_data: vec![],
                msig_proposals: vec![],
            })
            .await
            .unwrap()
            .into_inner();
        let d = trx.signing_digest(&chain, &[]);
        assert_eq!(r.digest, d.0.to_vec());
        assert_eq!(r.transaction_id, trx.id().0.to_vec());
        assert_eq!(sig_of(&r.signature).recover(&d).unwrap(), *key);
    }

    let id = savanna(base + 20, base + 20, 0).id().unwrap();
    let r = c
        .sign_digest(grpc::SignDigestRequest {
            chain_id: eos(),
            public_key: key.to_string(),
            digest: id.0.to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sig_of(&r.signature).recover(&id).unwrap(), *key);
    assert_eq!(r.block_num, base + 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_keys_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let key = first_key(dir.path());
    let signer = Signer::start(dir.path(), &[]);
    exercise(&signer, &key).await;
    run(
        &["audit", "verify", signer.audit_path().to_str().unwrap()],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn softhsm2_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), false);
    let conf = softhsm_backend(dir.path(), "oryx");
    let env = [("SOFTHSM2_CONF", conf.to_str().unwrap())];
    let keys = [
        hsm_key(dir.path(), &conf, "producer-k1", false),
        hsm_key(dir.path(), &conf, "producer-r1", true),
    ];
    let cfg = config_path(dir.path());
    let listed = run(
        &["keys", "list", "-c", cfg.to_str().unwrap(), "--json"],
        &env,
    );
    for k in &keys {
        assert!(listed.contains(&k.to_string()), "{listed}");
    }
    configure_hsm_keys(
        dir.path(),
        &keys,
        r#"["block", "transaction", "digest"]"#,
        true,
    );
    let signer = Signer::start(dir.path(), &env);
    for k in &keys {
        exercise(&signer, k).await;
    }
}

#[cfg(feature = "yubihsm-mock")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yubihsm_mock_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), false);
    let key = oryx_proto::antelope::PrivateKey::parse(
        "5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD3",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("secrets/mock-key"),
        key.to_pvt_string().as_str(),
    )
    .unwrap();
    write_secret(&dir.path().join("secrets/yubihsm-password"), "password\n");
    let public = key.public_key();
    append_config(
        dir.path(),
        &format!(
            "[backends.yhsm]\ntype = \"yubihsm\"\nauth_key_id = 1\npassword_file = \"secrets/yubihsm-password\"\nconnector = {{ type = \"mock\", preload = [\"secrets/mock-key\"] }}\n\n\
             [[keys]]\npublic_key = \"{public}\"\nbackend = \"yhsm\"\nchains = [\"main\"]\nblind_digest = true\n\n\
             [[allow]]\nprincipal = \"node1\"\nkeys = [\"{public}\"]\nkinds = [\"block\", \"transaction\", \"digest\"]\n"
        ),
    );
    // The mock is test-only: refused unless the config opts into development keys.
    let text = std::fs::read_to_string(config_path(dir.path())).unwrap();
    std::fs::write(
        config_path(dir.path()),
        format!("allow_soft_keys = true\n{text}"),
    )
    .unwrap();
    let signer = Signer::start(dir.path(), &[]);
    exercise(&signer, &public).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_is_required_and_unauthorized_principals_are_refused_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let key = first_key(dir.path());
    let signer = Signer::start(dir.path(), &[]);

    // A client certificate from another CA: the handshake fails, nothing reaches the pipeline.
    let other = oryx_signer::pki::Ca::new("someone else").unwrap();
    let foreign = other.client("node1", 1).unwrap();
    let mut tls = signer.tls("node1");
    tls.cert_pem = foreign.cert_pem.into_bytes();
    tls.key_pem = foreign.key_pem.into_bytes();
    let refused = match oryx_signer::client::connect(&signer.addr, &tls).await {
        Err(_) => true,
        Ok(mut c) => c.list_keys(grpc::ListKeysRequest {}).await.is_err(),
    };
    assert!(refused, "a certificate from another CA must be refused");

    // No client certificate at all.
    let ca = std::fs::read(dir.path().join("tls/ca.pem")).unwrap();
    let cfg = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca))
        .domain_name("localhost");
    let ep = tonic::transport::Endpoint::from_shared(format!("https://{}", signer.addr))
        .unwrap()
        .tls_config(cfg)
        .unwrap();
    let refused = match ep.connect().await {
        Err(_) => true,
        Ok(ch) => SignerClient::new(ch)
            .list_keys(grpc::ListKeysRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");

    // Idle connections that never start a TLS handshake do not stop anyone else, and are
    // closed by the signer after the handshake timeout.
    let idle: Vec<_> = (0..20)
        .map(|_| std::net::TcpStream::connect(&signer.addr).unwrap())
        .collect();
    let mut ok = signer.client("node1").await;
    ok.list_keys(grpc::ListKeysRequest {}).await.unwrap();
    let mut first = idle.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 1];
    let closed = matches!(std::io::Read::read(&mut first, &mut buf), Ok(0) | Err(_));
    assert!(
        closed,
        "a connection without a handshake must be closed by the signer"
    );

    // More silent connections than there are connection slots: authenticated clients still
    // get in, all of them at once (unauthenticated peers hold only handshake slots, and the
    // oldest of those makes room for a new one).
    let flood: Vec<_> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(&signer.addr).ok())
        .collect();
    assert!(flood.len() > oryx_signer::server::MAX_CONNECTIONS);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let (addr, tls) = (signer.addr.clone(), signer.tls("node1"));
        clients.spawn(async move {
            match oryx_signer::client::connect(&addr, &tls).await {
                Ok(mut c) => c.list_keys(grpc::ListKeysRequest {}).await.is_ok(),
                Err(_) => false,
            }
        });
    }
    let ok = clients.join_all().await;
    assert!(ok.iter().all(|x| *x), "{ok:?}");
    drop(flood);

    // A valid certificate for a principal without rights: refused with a reason, and audited.
    let mut c = signer.client("intruder").await;
    // It learns nothing about the keys, chains or state either.
    let e = c.list_keys(grpc::ListKeysRequest {}).await.unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("POLICY_DENIED"), "{e:?}");
    let e = c.status(grpc::StatusRequest {}).await.unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("POLICY_DENIED"), "{e:?}");
    let h = savanna(now_slot(), now_slot(), 0);
    let e = sign_block(&mut c, &key, &h).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(reason(&e).as_deref(), Some("POLICY_DENIED"));
    let audit = std::fs::read_to_string(signer.audit_path()).unwrap();
    let entry = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["principal"] == "intruder")
        .expect("refusal audited");
    assert_eq!(entry["decision"], "refused");
    assert!(entry["reason"].as_str().unwrap().contains("POLICY_DENIED"));
    // ... but a principal without rights is not told where (how busy the signer is).
    assert_eq!(oryx_proto::client::audit_position(&e), None);

    // Fields that do not even decode (a 31-byte chain id, an unparsable key): refused as
    // MALFORMED, and on record too, though there is no chain or key to name.
    let e = c
        .sign_digest(grpc::SignDigestRequest {
            chain_id: vec![0; 31],
            public_key: key.to_string(),
            digest: vec![0; 32],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(reason(&e).as_deref(), Some("MALFORMED"));
    let e = c
        .sign_transaction(grpc::SignTransactionRequest {
            chain_id: eos(),
            public_key: "PUB_K1_nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("MALFORMED"));
    let audit = std::fs::read_to_string(signer.audit_path()).unwrap();
    let malformed: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| {
            e["principal"] == "intruder"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("MALFORMED"))
        })
        .collect();
    assert_eq!(malformed.len(), 2, "{audit}");
    assert_eq!(malformed[0]["kind"], "sign_digest");
    assert!(
        malformed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("chain_id must be 32 bytes")
    );
    assert_eq!(malformed[1]["kind"], "sign_transaction");
    run(
        &["audit", "verify", signer.audit_path().to_str().unwrap()],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_sign_protection_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let key = first_key(dir.path());
    let signer = Signer::start(dir.path(), &[]);
    let mut c = signer.client("node1").await;
    let n = now_slot();

    let first = sign_block(&mut c, &key, &savanna(n, n, 0)).await.unwrap();
    // Identical: the same signature, marked as a replay.
    let again = sign_block(&mut c, &key, &savanna(n, n, 0)).await.unwrap();
    assert_eq!(sig_of(&again.signature), sig_of(&first.signature));
    assert!(again.replayed);
    // Conflicting header at the same height: refused.
    let e = sign_block(&mut c, &key, &savanna(n, n, 1))
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("DOUBLE_SIGN"), "{e:?}");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    // The refusal names its audit entry, in the form `audit verify --anchor` takes.
    let (seq, hash) = oryx_proto::client::audit_position(&e).expect("audit position");
    let audit = std::fs::read_to_string(signer.audit_path()).unwrap();
    let entry: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(entry["decision"], "refused");
    assert_eq!(
        (serde_json::json!(seq), serde_json::json!(hash)),
        (entry["seq"].clone(), entry["hash"].clone())
    );
    // Lower height: refused.
    let e = sign_block(&mut c, &key, &savanna(n - 1, n - 1, 0))
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("DOUBLE_SIGN"));
    // The same conflict through the blind path.
    let other_id = savanna(n, n, 2).id().unwrap();
    let e = c
        .sign_digest(grpc::SignDigestRequest {
            chain_id: eos(),
            public_key: key.to_string(),
            digest: other_id.0.to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("DOUBLE_SIGN"));

    // 16 concurrent conflicting requests at a new height: exactly one signature.
    let mut tasks = Vec::new();
    for v in 0..16u8 {
        let mut c = signer.client("node1").await;
        tasks.push(tokio::spawn(async move {
            sign_block(&mut c, &key, &savanna(n + 1, n + 1, v)).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(reason(&e).as_deref(), Some("DOUBLE_SIGN")),
        }
    }
    assert_eq!(ok, 1, "exactly one of 16 conflicting headers is signed");

    // 8 concurrent identical requests at a new height: one signature for all of them, and the
    // metrics count each request once.
    let blocks = |text: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("oryx_requests_total{kind=\"block\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let metrics = signer.metrics.clone().unwrap();
    let before = blocks(&http_get(&metrics, "/metrics").1);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = signer.client("node1").await;
        tasks.push(tokio::spawn(async move {
            sign_block(&mut c, &key, &savanna(n + 2, n + 2, 0)).await
        }));
    }
    let mut sigs = std::collections::HashSet::new();
    for t in tasks {
        sigs.insert(sig_of(&t.await.unwrap().unwrap().signature).to_string());
    }
    assert_eq!(sigs.len(), 1, "identical requests share one signature");
    assert_eq!(blocks(&http_get(&metrics, "/metrics").1) - before, 8);

    // Bad input: clear refusals, and the signer keeps serving.
    let e = c
        .sign_block(grpc::SignBlockRequest {
            chain_id: eos(),
            public_key: key.to_string(),
            header: vec![1, 2, 3],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("MALFORMED"));
    let e = c
        .sign_block(grpc::SignBlockRequest {
            chain_id: vec![9; 32],
            public_key: key.to_string(),
            header: savanna(n + 5, n + 5, 0).packed(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("WRONG_CHAIN"));
    let stranger =
        oryx_proto::antelope::PrivateKey::from_bytes(oryx_proto::antelope::KeyType::K1, [7; 32])
            .unwrap()
            .public_key();
    let e = sign_block(&mut c, &stranger, &savanna(n + 5, n + 5, 0))
        .await
        .unwrap_err();
    assert_eq!(
        reason(&e).as_deref(),
        Some("POLICY_DENIED"),
        "a key the principal may not use: nothing said about whether it exists"
    );
    let e = c
        .sign_digest(grpc::SignDigestRequest {
            chain_id: eos(),
            public_key: key.to_string(),
            digest: vec![0; 31],
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("MALFORMED"));
    let e = c
        .sign_block(grpc::SignBlockRequest {
            chain_id: eos(),
            public_key: "EOS123".into(),
            header: vec![],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("MALFORMED"));
    assert!(
        sign_block(&mut c, &key, &savanna(n + 6, n + 6, 0))
            .await
            .is_ok(),
        "still serving"
    );
    run(
        &["audit", "verify", signer.audit_path().to_str().unwrap()],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hanging_up_cannot_cut_the_critical_section() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let key = first_key(dir.path());
    let signer = Signer::start(dir.path(), &[]);
    let base = now_slot();
    let mut completed_behind_our_back = 0;
    for (i, micros) in (0..40u32).zip((50..).step_by(50)) {
        let h = savanna(base + i, base + i, 0);
        // Abandon the request after a few hundred microseconds, as a client that times out.
        let mut c = signer.client("node1").await;
        let abandoned = tokio::time::timeout(
            std::time::Duration::from_micros(micros),
            sign_block(&mut c, &key, &h),
        )
        .await;
        drop(c);
        if abandoned.is_ok() {
            continue;
        }
        // Whatever the server had started, it finished: the identical request now either
        // replays the stored signature or (if the request never arrived) signs it fresh.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut c = signer.client("node1").await;
        let r = sign_block(&mut c, &key, &h).await.unwrap();
        assert_eq!(sig_of(&r.signature).recover(&h.id().unwrap()).unwrap(), key);
        if r.replayed {
            completed_behind_our_back += 1;
        }
    }
    assert!(
        completed_behind_our_back > 0,
        "at least one abandoned request should have been completed by the signer"
    );
    let audit = std::fs::read_to_string(signer.audit_path()).unwrap();
    let replays = audit.lines().filter(|l| l.contains("\"replayed\"")).count();
    assert_eq!(
        replays, completed_behind_our_back,
        "every completed request is in the audit log"
    );
    run(
        &["audit", "verify", signer.audit_path().to_str().unwrap()],
        &[],
    );
}

/// `oryx-signer watermark import FILE`, expected to be run for its refusal.
fn import(cfg: &std::path::Path, file: &std::path::Path) -> std::process::Output {
    std::process::Command::new(bin())
        .args([
            "watermark",
            "import",
            "-c",
            cfg.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_metrics_and_watermark_interchange() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let key = first_key(dir.path());
    let mut signer = Signer::start(dir.path(), &[]);
    let metrics = signer.metrics.clone().unwrap();
    let mut c = signer.client("node1").await;
    let n = now_slot();
    let first = sign_block(&mut c, &key, &savanna(n, n, 0)).await.unwrap();
    assert_eq!(http_get(&metrics, "/healthz").0, 200);
    assert_eq!(http_get(&metrics, "/readyz").0, 200);
    let (_, body) = http_get(&metrics, "/metrics");
    assert!(
        body.contains("oryx_requests_total{kind=\"block\",outcome=\"signed\"} 1"),
        "{body}"
    );
    // Each step of that one signature is timed on its own.
    for stage in ["queue", "reserve", "sign", "audit"] {
        assert!(
            body.contains(&format!(
                "oryx_stage_duration_seconds_count{{stage=\"{stage}\"}} 1"
            )),
            "{stage}: {body}"
        );
    }

    // The watermark directory disappears: not ready (the store cannot take writes).
    let wm = dir.path().join("watermarks");
    let moved = dir.path().join("watermarks.gone");
    std::fs::rename(&wm, &moved).unwrap();
    let (code, body) = http_get(&metrics, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("watermark store"), "{body}");
    std::fs::rename(&moved, &wm).unwrap();
    assert_eq!(http_get(&metrics, "/readyz").0, 200);
    signer.stop();

    // Export, move to a fresh signer directory, import: the new signer refuses the old height
    // and replays nothing it did not sign.
    let cfg = config_path(dir.path());
    let export = dir.path().join("wm.json");
    run(
        &[
            "watermark",
            "export",
            "-c",
            cfg.to_str().unwrap(),
            "--out",
            export.to_str().unwrap(),
        ],
        &[],
    );
    let shown = run(&["watermark", "show", "-c", cfg.to_str().unwrap()], &[]);
    assert!(
        shown.contains(&key.to_string()) && shown.contains(&format!("block {n}")),
        "{shown}"
    );
    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(records[0]["block_num"], n);
    assert_eq!(
        records[0]["signature"],
        first.signature.as_ref().unwrap().text.as_str()
    );

    // Importing a lower watermark is refused without --force, and changes nothing.
    let mut lower = records.clone();
    lower[0]["block_num"] = serde_json::json!(n - 10);
    lower[0]["slot"] = serde_json::json!(n - 10);
    let lower_path = dir.path().join("lower.json");
    std::fs::write(&lower_path, lower.to_string()).unwrap();
    let out = import(&cfg, &lower_path);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("would lower"));
    let after: serde_json::Value = serde_json::from_str(&run(
        &["watermark", "export", "-c", cfg.to_str().unwrap()],
        &[],
    ))
    .unwrap();
    assert_eq!(after, records, "a refused import changes nothing");
    // Malformed JSON: a clear error, nothing changed.
    std::fs::write(&lower_path, "[{\"chain_id\": 1}]").unwrap();
    let out = import(&cfg, &lower_path);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hsm_outage_is_unavailable_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), false);
    let conf = softhsm_backend(dir.path(), "outage");
    let env = [("SOFTHSM2_CONF", conf.to_str().unwrap())];
    let key = hsm_key(dir.path(), &conf, "p", false);
    configure_hsm_keys(dir.path(), &[key], r#"["block", "transaction"]"#, false);
    let signer = Signer::start(dir.path(), &env);
    let mut c = signer.client("node1").await;
    let n = now_slot();
    sign_block(&mut c, &key, &savanna(n, n, 0)).await.unwrap();

    // The token's storage vanishes (as an HSM going away): signing fails closed.
    let tokens = dir.path().join("tokens");
    let moved = dir.path().join("tokens.gone");
    std::fs::rename(&tokens, &moved).unwrap();
    let trx = Transaction::decode(&hex::decode(ACTIVATE).unwrap()).unwrap();
    let sign_trx = |c: &mut SignerClient<Channel>| {
        let mut c = c.clone();
        let req = grpc::SignTransactionRequest {
            chain_id: eos(),
            public_key: key.to_string(),
            transaction: Some(grpc::sign_transaction_request::Transaction::PackedTrx(
                trx.packed(),
            )),
            context_free_data: vec![],
            msig_proposals: vec![],
        };
        async move { c.sign_transaction(req).await }
    };
    let during = sign_trx(&mut c).await;
    std::fs::rename(&moved, &tokens).unwrap();
    let e = during.expect_err("signing without the token must fail closed");
    assert_eq!(reason(&e).as_deref(), Some("UNAVAILABLE"), "{e:?}");
    // Back: signing works again.
    let r = sign_trx(&mut c).await.unwrap().into_inner();
    let d = Checksum256(r.digest.try_into().unwrap());
    assert_eq!(sig_of(&r.signature).recover(&d).unwrap(), key);
}

/// A principal with no rights floods the signer with refusable requests from 8 connections:
/// the audit log writes its first refusals one by one and counts the rest into `coalesced`
/// summaries (flushed at shutdown at the latest) — every refusal is on record, by count, and the
/// log does not grow at the attacker's pace. An honest client signs meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_flood_is_counted_in_summaries_not_written_line_by_line() {
    const CLIENTS: usize = 8;
    const EACH: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    append_config(dir.path(), "[audit.refusals]\nburst = 5\nper_minute = 6");
    let key = first_key(dir.path());
    let mut signer = Signer::start(dir.path(), &[]);
    let mut tasks = Vec::new();
    for t in 0..CLIENTS {
        let mut c = signer.client("intruder").await;
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let e = c
                    .sign_digest(grpc::SignDigestRequest {
                        chain_id: eos(),
                        public_key: key.to_string(),
                        digest: vec![u8::try_from(t * EACH + i).unwrap_or(0); 32],
                    })
                    .await
                    .unwrap_err();
                assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
            }
        }));
    }
    let mut honest = signer.client("node1").await;
    let n = now_slot();
    sign_block(&mut honest, &key, &savanna(n, n, 0))
        .await
        .unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    signer.stop();

    let entries = signer.audit_entries();
    let audit = format!("{entries:#?}");
    let mine: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["principal"] == "intruder")
        .collect();
    let one_by_one = mine.iter().filter(|e| e["decision"] == "refused").count();
    let summaries: Vec<&&serde_json::Value> = mine
        .iter()
        .filter(|e| e["decision"] == "coalesced")
        .collect();
    let counted: usize = summaries
        .iter()
        .map(|e| {
            let reason = e["reason"].as_str().unwrap();
            assert_eq!(e["kind"], "refusals");
            assert!(reason.contains("× sign_digest POLICY_DENIED"), "{reason}");
            reason.split(' ').next().unwrap().parse::<usize>().unwrap()
        })
        .sum();
    // Every refusal is on record, one by one or counted; only the burst (and what the rate
    // refilled while the flood ran) is written one by one.
    eprintln!(
        "{} refusals: {one_by_one} written one by one, {counted} in {} summaries",
        CLIENTS * EACH,
        summaries.len()
    );
    assert_eq!(one_by_one + counted, CLIENTS * EACH, "{audit}");
    assert!(
        one_by_one < 5 + 20,
        "{one_by_one} refusals written one by one"
    );
    assert!(!summaries.is_empty());
    assert!(entries.iter().any(|e| e["decision"] == "signed"));
    run(
        &["audit", "verify", signer.audit_path().to_str().unwrap()],
        &[],
    );
}

/// Calls tonic refuses before any handler sees them — a protobuf that does not decode, one over
/// the size limit, a method that does not exist — are on record too, as MALFORMED refusals of
/// the certificate's principal; the client's answer is tonic's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_refused_before_any_handler_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let mut signer = Signer::start(dir.path(), &[]);
    let channel = oryx_proto::client::connect_channel(&signer.addr, &signer.tls("intruder"))
        .await
        .unwrap();
    let raw = async |path: &'static str, msg: grpc::AuditRef| {
        let mut g = tonic::client::Grpc::new(channel.clone());
        g.ready().await.unwrap();
        g.unary::<_, grpc::SignResponse, _>(
            tonic::Request::new(msg),
            tonic::codegen::http::uri::PathAndQuery::from_static(path),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err()
    };
    // Field 1 of SignBlockRequest is bytes; a varint there does not decode.
    let e = raw(
        "/oryx.v1.Signer/SignBlock",
        grpc::AuditRef {
            seq: 5,
            hash: String::new(),
        },
    )
    .await;
    assert_eq!(reason(&e), None, "tonic's own answer: {e:?}");
    let e = raw("/oryx.v1.Signer/NoSuchMethod", grpc::AuditRef::default()).await;
    assert_eq!(e.code(), tonic::Code::Unimplemented, "{e:?}");
    let e = raw(
        "/oryx.v1.Signer/SignDigest",
        grpc::AuditRef {
            seq: 1,
            hash: "x".repeat(oryx_signer::server::MAX_REQUEST_BYTES + 1),
        },
    )
    .await;
    assert_ne!(e.code(), tonic::Code::Ok);
    // The audit is written beside the answer: give it a moment, then stop (flushes).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    signer.stop();
    let entries = signer.audit_entries();
    let audit = format!("{entries:#?}");
    let mine: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["principal"] == "intruder")
        .collect();
    let find = |kind: &str, path: &str| {
        mine.iter()
            .find(|e| {
                e["kind"] == kind
                    && e["decision"] == "refused"
                    && e["reason"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("MALFORMED: ") && r.contains(path))
            })
            .unwrap_or_else(|| panic!("no {kind} entry for {path}: {audit}"))
    };
    let e = find("sign_block", "/oryx.v1.Signer/SignBlock");
    assert!(e["reason"].as_str().unwrap().contains("decode"), "{e}");
    find("call", "/oryx.v1.Signer/NoSuchMethod");
    find("sign_digest", "/oryx.v1.Signer/SignDigest");
}

/// The daemon locks its memory (secrets never reach swap) where it may lock without bound — as
/// root here, as under systemd with LimitMEMLOCK=infinity — and says so; `lock_memory = false`
/// turns it off.
#[test]
fn the_daemon_locks_its_memory() {
    let status = |signer: &Signer| {
        std::fs::read_to_string(format!("/proc/{}/status", signer.child.id())).unwrap()
    };
    let locked_kb = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("VmLck:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let mut signer = Signer::start(dir.path(), &[]);
    // Where the daemon may lock without bound: CAP_IPC_LOCK in the initial user namespace
    // (root here), or an unlimited RLIMIT_MEMLOCK.
    let text = status(&signer);
    let cap_ipc_lock = text
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps >> 14 & 1 == 1);
    let initial_ns = std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]);
    if cap_ipc_lock && initial_ns {
        assert!(locked_kb(&status(&signer)) > 0, "{}", status(&signer));
    }
    signer.stop();
    let text = std::fs::read_to_string(config_path(dir.path())).unwrap();
    std::fs::write(
        config_path(dir.path()),
        format!("lock_memory = false\n{text}"),
    )
    .unwrap();
    let signer = Signer::start(dir.path(), &[]);
    assert_eq!(locked_kb(&status(&signer)), 0);
}
