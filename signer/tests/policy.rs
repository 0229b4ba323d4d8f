//! The daemon under a policy file: transfer limits and the daily budget refuse with the rule
//! and the amounts, requests no rule names are refused, and SIGHUP reloads the policy — a broken
//! file keeps the one in force.
#![allow(clippy::unwrap_used)]

use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Checksum256, Pack, PublicKey, Signature};
use oryx_proto::grpc;
use oryx_proto::grpc::signer_client::SignerClient;
use oryx_signer::client::reason;
use oryx_tests::harness::*;
use tonic::transport::Channel;

fn policy(version: &str, key: &PublicKey, with_blocks: bool) -> String {
    let blocks = if with_blocks {
        format!(
            "[[rule]]\nname = \"blocks\"\nprincipals = [\"node1\"]\nkeys = [\"{key}\"]\nkinds = [\"block\"]\n\n"
        )
    } else {
        String::new()
    };
    format!(
        "version = \"{version}\"\n\n{blocks}[[rule]]\nname = \"payouts\"\nprincipals = [\"node1\"]\nkeys = [\"{key}\"]\nkinds = [\"transaction\"]\n\
         actions = [\"eosio.token::transfer@oryxcustody1@active\"]\n\
         transfer = {{ max_per_tx = \"100.0000 EOS\", daily_budget = \"250.0000 EOS\", recipients = [\"exchangeacct\"] }}\n"
    )
}

fn transfer(to: &str, quantity: &str, n: u32) -> Transaction {
    serde_json::from_value(serde_json::json!({
        "expiration": "2030-01-01T00:00:00",
        "ref_block_num": n,
        "ref_block_prefix": 7,
        "actions": [{
            "account": "eosio.token", "name": "transfer",
            "authorization": [{"actor": "oryxcustody1", "permission": "active"}],
            "data": {"from": "oryxcustody1", "to": to, "quantity": quantity, "memo": ""}
        }]
    }))
    .unwrap()
}

async fn sign_trx(
    c: &mut SignerClient<Channel>,
    key: &PublicKey,
    trx: &Transaction,
) -> Result<grpc::SignTransactionResponse, tonic::Status> {
    c.sign_transaction(grpc::SignTransactionRequest {
        chain_id: eos(),
        public_key: key.to_string(),
        transaction: Some(grpc::sign_transaction_request::Transaction::PackedTrx(
            trx.packed(),
        )),
        context_free_data: vec![],
        msig_proposals: vec![],
    })
    .await
    .map(|r| r.into_inner())
}

async fn sign_block_at(
    c: &mut SignerClient<Channel>,
    key: &PublicKey,
    n: u32,
) -> Result<grpc::SignResponse, tonic::Status> {
    sign_block(c, key, &savanna(n, n, 0)).await
}

fn denied(r: Result<impl std::fmt::Debug, tonic::Status>) -> String {
    let e = r.unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("POLICY_DENIED"), "{e:?}");
    e.message().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_budgets_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let key = first_key(dir.path());
    // Swap the allow-list for a policy file.
    let cfg = config_path(dir.path());
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = &text[..text.find("[[allow]]").unwrap()];
    std::fs::write(
        &cfg,
        format!("admins = [\"node1\"]\npolicy = \"policy.toml\"\n{text}"),
    )
    .unwrap();
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy("v1", &key, true)).unwrap();
    run(&["policy", "check", policy_path.to_str().unwrap()], &[]);

    let signer = Signer::start(dir.path(), &[]);
    let mut c = signer.client("node1").await;
    let n = now_slot();
    sign_block_at(&mut c, &key, n).await.unwrap();

    // Within the limits: signed, and the signature verifies.
    let t = transfer("exchangeacct", "100.0000 EOS", 1);
    let r = sign_trx(&mut c, &key, &t).await.unwrap();
    let d = t.signing_digest(&Checksum256(eos().try_into().unwrap()), &[]);
    assert_eq!(
        Signature::parse(&r.signature.unwrap().text)
            .unwrap()
            .recover(&d)
            .unwrap(),
        key
    );
    // Over the per-transaction maximum.
    let m = denied(sign_trx(&mut c, &key, &transfer("exchangeacct", "150.0000 EOS", 2)).await);
    assert!(
        m.contains("payouts") && m.contains("150.0000 EOS") && m.contains("100.0000 EOS"),
        "{m}"
    );
    // Not an allowed recipient.
    let m = denied(sign_trx(&mut c, &key, &transfer("someoneelse", "1.0000 EOS", 3)).await);
    assert!(m.contains("payouts"), "{m}");
    // CheckTransaction answers what SignTransaction would, and charges nothing: five checks
    // of 100 EOS leave the budget where it was.
    let check = |c: &mut SignerClient<Channel>, t: &Transaction| {
        let req = grpc::CheckTransactionRequest {
            request: Some(grpc::SignTransactionRequest {
                chain_id: eos(),
                public_key: key.to_string(),
                transaction: Some(grpc::sign_transaction_request::Transaction::PackedTrx(
                    t.packed(),
                )),
                ..Default::default()
            }),
            to_be_generated: vec![],
        };
        let mut c = c.clone();
        async move { c.check_transaction(req).await.map(|r| r.into_inner()) }
    };
    for i in 0..5 {
        let ok = check(&mut c, &transfer("exchangeacct", "100.0000 EOS", 40 + i))
            .await
            .unwrap();
        assert!(!ok.needs_approvals);
    }
    let m = denied(check(&mut c, &transfer("someoneelse", "1.0000 EOS", 3)).await);
    assert!(m.contains("payouts"), "{m}");
    let mut intruder = signer.client("intruder").await;
    let e = check(&mut intruder, &transfer("exchangeacct", "1.0000 EOS", 6))
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("NOT_ADMIN"), "{e:?}");
    // The daily budget: 100 + 100 fits 250, a third 100 does not.
    sign_trx(&mut c, &key, &transfer("exchangeacct", "100.0000 EOS", 4))
        .await
        .unwrap();
    let m = denied(check(&mut c, &transfer("exchangeacct", "100.0000 EOS", 5)).await);
    assert!(m.contains("250.0000 EOS"), "{m}");
    let m = denied(sign_trx(&mut c, &key, &transfer("exchangeacct", "100.0000 EOS", 5)).await);
    assert!(
        m.contains("payouts")
            && m.contains("250.0000 EOS")
            && m.contains("200.0000 EOS")
            && m.contains("100.0000 EOS"),
        "{m}"
    );
    // No rule names blind digests for this key.
    let id = savanna(n + 1, n + 1, 0).id().unwrap();
    denied(
        c.sign_digest(grpc::SignDigestRequest {
            chain_id: eos(),
            public_key: key.to_string(),
            digest: id.0.to_vec(),
        })
        .await,
    );

    // A broken policy on SIGHUP: refused, the old one stays in force.
    std::fs::write(
        &policy_path,
        "version = \"v2\"\n[[rule]]\nname = \"oops\"\nkinds = [\"everything\"]\n",
    )
    .unwrap();
    let hup = || {
        std::process::Command::new("kill")
            .args(["-HUP", &signer.child.id().to_string()])
            .status()
            .unwrap()
    };
    hup();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    sign_block_at(&mut c, &key, n + 2).await.unwrap();
    // A valid new policy without the block rule: blocks are now refused.
    std::fs::write(&policy_path, policy("v3", &key, false)).unwrap();
    hup();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    denied(sign_block_at(&mut c, &key, n + 3).await);

    // The budget survives a restart: spends are journaled before a signature is released.
    let mut signer = signer;
    signer.stop();
    let signer = Signer::start(dir.path(), &[]);
    let mut c = signer.client("node1").await;
    let m = denied(sign_trx(&mut c, &key, &transfer("exchangeacct", "100.0000 EOS", 6)).await);
    assert!(
        m.contains("200.0000 EOS"),
        "the spend before the restart still counts: {m}"
    );
    sign_trx(&mut c, &key, &transfer("exchangeacct", "50.0000 EOS", 7))
        .await
        .unwrap();

    // Every audit entry names the policy version that decided.
    let audit = std::fs::read_to_string(signer.audit_path()).unwrap();
    let versions: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["policy_version"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(versions.first().map(String::as_str), Some("v1"));
    assert_eq!(versions.last().map(String::as_str), Some("v3"));
    assert!(
        !versions.iter().any(|v| v == "v2"),
        "the broken policy never decided anything"
    );
}

/// `policy check -c CONFIG` warns about what the config lacks: a key not under `[[keys]]`, a
/// chain not under `[[chains]]` (such a rule never applies as written).
#[test]
fn policy_check_against_the_config_names_unknown_keys_and_chains() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let key = first_key(dir.path());
    let stranger =
        oryx_proto::antelope::PrivateKey::from_bytes(oryx_proto::antelope::KeyType::K1, [7; 32])
            .unwrap()
            .public_key();
    let path = dir.path().join("policy.toml");
    std::fs::write(
        &path,
        format!(
            "version = \"v\"\n[[rule]]\nname = \"ok\"\nprincipals = [\"node1\"]\nkeys = [\"{key}\"]\nkinds = [\"block\"]\nchains = [\"main\"]\n\
             [[rule]]\nname = \"stray\"\nprincipals = [\"node1\"]\nkeys = [\"{stranger}\"]\nkinds = [\"block\"]\nchains = [\"jungle4\"]\n"
        ),
    )
    .unwrap();
    let cfg = config_path(dir.path());
    let check = || {
        run(
            &[
                "policy",
                "check",
                path.to_str().unwrap(),
                "-c",
                cfg.to_str().unwrap(),
            ],
            &[],
        )
    };
    let out = check();
    assert!(
        out.contains(&format!("key {stranger} is not under [[keys]]")),
        "{out}"
    );
    assert!(out.contains("is not under [[chains]]"), "{out}");
    assert!(!out.contains(&format!("key {key} is not")), "{out}");
    assert!(out.contains("2 warning(s)"), "{out}");

    // The dev key signs blind digests: a rule that also lets it sign transactions means it
    // holds account authority, which a ground digest could use.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "[[rule]]\nname = \"payouts\"\nprincipals = [\"node1\"]\nkeys = [\"{key}\"]\nkinds = [\"transaction\"]\nactions = [\"eosio.token::transfer@oryxpayouts1@active\"]\n"
    ));
    std::fs::write(&path, text).unwrap();
    let out = check();
    assert!(
        out.contains(&format!(
            "key {key} signs blind digests (blind_digest = true) and transactions (policy rule \"payouts\")"
        )),
        "{out}"
    );
}
