//! Shared custody end to end, over mTLS with a SoftHSM2-held key: a transfer that needs 2 of 3
//! approvals is stored; the first approval releases nothing, the second signs, a third is
//! harmless; forged approvals (wrong key, wrong request, wrong chain) are rejected and audited;
//! an expired or cancelled request cannot be approved. eosio.msig: an approve is signed only
//! with its proposal, which custodians review, the policy constrains, and `oryx approve` checks.
#![allow(clippy::unwrap_used)]

use oryx_proto::antelope::actions::{Approve, Authority, HeldAuthority, Propose, UpdateAuth};
use oryx_proto::antelope::transaction::{Action, Compression, PackedTransaction, Transaction};
use oryx_proto::antelope::{Bytes, Checksum256, KeyType, Name, Pack, PublicKey, Signature};
use oryx_proto::grpc;
use oryx_proto::grpc::signer_client::SignerClient;
use oryx_signer::approvals::binding_digest;
use oryx_signer::backend::KeyBackend;
use oryx_signer::backend::soft::SoftKey;
use oryx_signer::client::reason;
use oryx_signer::signing::{SignOptions, sign};
use oryx_tests::harness::*;
use std::path::Path;
use tonic::transport::Channel;

fn transfer(expiration: &str, n: u32) -> Transaction {
    serde_json::from_value(serde_json::json!({
        "expiration": expiration, "ref_block_num": n, "ref_block_prefix": 7,
        "actions": [{"account": "eosio.token", "name": "transfer",
            "authorization": [{"actor": "oryxcustody1", "permission": "active"}],
            "data": {"from": "oryxcustody1", "to": "exchangeacct", "quantity": "10.0000 EOS", "memo": ""}}]
    }))
    .unwrap()
}

/// Submits the transaction; returns the pending request's id.
async fn request(c: &mut SignerClient<Channel>, key: &PublicKey, trx: &Transaction) -> String {
    let e = c
        .sign_transaction(grpc::SignTransactionRequest {
            chain_id: eos(),
            public_key: key.to_string(),
            transaction: Some(grpc::sign_transaction_request::Transaction::PackedTrx(
                trx.packed(),
            )),
            context_free_data: vec![],
            msig_proposals: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("NEEDS_APPROVALS"), "{e:?}");
    e.metadata()
        .get("oryx-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

/// The request as the signer reports it.
async fn get(c: &mut SignerClient<Channel>, id: &str) -> grpc::ApprovalRequest {
    c.get_approval(grpc::GetApprovalRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

/// The binding digest the signer reports for a request.
async fn binding_of(c: &mut SignerClient<Channel>, id: &str) -> Checksum256 {
    Checksum256(get(c, id).await.binding_digest.try_into().unwrap())
}

fn approval(approver: &SoftKey, digest: &Checksum256) -> String {
    sign(approver, digest, SignOptions::default())
        .unwrap()
        .signature
        .to_string()
}

async fn approve(
    c: &mut SignerClient<Channel>,
    id: &str,
    signature: String,
) -> Result<grpc::ApprovalRequest, tonic::Status> {
    c.approve(grpc::ApproveRequest {
        id: id.into(),
        signature,
    })
    .await
    .map(|r| r.into_inner())
}

/// A signer with a SoftHSM2 custody key whose transfers need 2 of 3 approvers; `token_approver`
/// (a key on another token) replaces the second approver when given.
fn custody_signer_with(
    token_approver: Option<PublicKey>,
    admins: &str,
    reviewers: &str,
) -> (tempfile::TempDir, Signer, PublicKey, Vec<SoftKey>) {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), false);
    let conf = softhsm_backend(dir.path(), "custody");
    let env = [("SOFTHSM2_CONF", conf.to_str().unwrap())];
    let key = hsm_key(dir.path(), &conf, "custody", false);
    append_config(
        dir.path(),
        &format!("[[keys]]\npublic_key = \"{key}\"\nbackend = \"hsm\"\nchains = [\"main\"]\n"),
    );
    let approvers: Vec<SoftKey> = (0..3)
        .map(|i| SoftKey::generate(if i == 1 { KeyType::R1 } else { KeyType::K1 }).unwrap())
        .collect();
    let mut set: Vec<String> = approvers
        .iter()
        .map(|a| format!("\"{}\"", a.public_key()))
        .collect();
    if let Some(k) = token_approver {
        set[1] = format!("\"{k}\"");
    }
    std::fs::write(
        dir.path().join("policy.toml"),
        format!(
            "version = \"custody-1\"\n[[rule]]\nname = \"payouts\"\nprincipals = [\"node1\"]\nkeys = [\"{key}\"]\nkinds = [\"transaction\"]\n\
             actions = [\"eosio.token::transfer@oryxcustody1@active\"]\n\
             approvals = {{ threshold = 2, approvers = [{}], set = \"custodians\" }}\n",
            set.join(", ")
        ),
    )
    .unwrap();
    let cfg = config_path(dir.path());
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!("admins = {admins}\nreviewers = {reviewers}\npolicy = \"policy.toml\"\n{text}"),
    )
    .unwrap();
    let signer = Signer::start(dir.path(), &env);
    (dir, signer, key, approvers)
}

fn custody_signer() -> (tempfile::TempDir, Signer, PublicKey, Vec<SoftKey>) {
    // `intruder` stands for an online approver: a reviewer, not named by any rule.
    custody_signer_with(None, "[]", r#"["intruder"]"#)
}

/// A principal that is neither the requester, an admin nor a reviewer reads nothing of a
/// request (it holds the transaction, and once signed the signed transaction) and cannot
/// approve it online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_reads_only_its_own_requests() {
    let (_dir, signer, key, approvers) = custody_signer_with(None, "[]", "[]");
    let mut c = signer.client("node1").await;
    let mut other = signer.client("intruder").await;
    let trx = transfer("2030-01-01T00:00:00", 9);
    let id = request(&mut c, &key, &trx).await;
    let pending = c
        .get_approval(grpc::GetApprovalRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    let e = other
        .get_approval(grpc::GetApprovalRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("POLICY_DENIED"), "{e:?}");
    let listed = other
        .list_approvals(grpc::ListApprovalsRequest {})
        .await
        .unwrap()
        .into_inner()
        .requests;
    assert!(listed.is_empty());
    let binding = Checksum256(pending.binding_digest.clone().try_into().unwrap());
    let e = approve(&mut other, &id, approval(&approvers[0], &binding))
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("POLICY_DENIED"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_approvals() {
    let (_dir, signer, key, approvers) = custody_signer();
    let mut c = signer.client("node1").await;
    let mut other = signer.client("intruder").await;

    let trx = transfer("2030-01-01T00:00:00", 1);
    let id = request(&mut c, &key, &trx).await;
    let pending = c
        .get_approval(grpc::GetApprovalRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.state, "pending");
    assert_eq!(
        pending.packed_trx,
        trx.packed(),
        "approvers review the exact transaction"
    );
    let chain = Checksum256(eos().try_into().unwrap());
    let signing_digest = trx.signing_digest(&chain, &[]);
    assert_eq!(pending.signing_digest, signing_digest.0.to_vec());
    let binding = binding_digest(&chain, &key, &signing_digest, &id);
    assert_eq!(
        pending.binding_digest,
        binding.0.to_vec(),
        "the binding digest is recomputable by an approver"
    );
    assert_eq!(
        c.list_approvals(grpc::ListApprovalsRequest {})
            .await
            .unwrap()
            .into_inner()
            .requests
            .len(),
        1
    );

    // Forged approvals: a key outside the set; a set member signing another request's,
    // another chain's or another transaction's binding digest.
    let outsider = SoftKey::generate(KeyType::K1).unwrap();
    let forged = [
        approval(&outsider, &binding),
        approval(
            &approvers[0],
            &binding_digest(
                &chain,
                &key,
                &signing_digest,
                "00000000000000000000000000000000",
            ),
        ),
        approval(
            &approvers[0],
            &binding_digest(&Checksum256([5; 32]), &key, &signing_digest, &id),
        ),
        approval(
            &approvers[0],
            &binding_digest(&chain, &key, &Checksum256([6; 32]), &id),
        ),
    ];
    for f in forged {
        let e = approve(&mut other, &id, f).await.unwrap_err();
        assert_eq!(reason(&e).as_deref(), Some("APPROVAL_REJECTED"), "{e:?}");
    }
    // A signature that does not even parse: MALFORMED, and on record like the others.
    let e = approve(&mut other, &id, "SIG_K1_not-a-signature".into())
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("MALFORMED"), "{e:?}");
    let audit = std::fs::read_to_string(signer.audit_path()).unwrap();
    assert!(
        audit.lines().any(|l| l.contains("\"approval\"")
            && l.contains("\"rejected\"")
            && l.contains("signature:")),
        "{audit}"
    );

    // The first approval releases nothing.
    let r = approve(&mut other, &id, approval(&approvers[0], &binding))
        .await
        .unwrap();
    assert_eq!(
        (r.state.as_str(), r.approved_by.len(), r.signature.is_none()),
        ("pending", 1, true)
    );
    // The same approver again counts once.
    let r = approve(&mut other, &id, approval(&approvers[0], &binding))
        .await
        .unwrap();
    assert_eq!(r.approved_by.len(), 1);
    // The second one signs.
    let r = approve(&mut c, &id, approval(&approvers[1], &binding))
        .await
        .unwrap();
    assert_eq!(r.state, "signed");
    let sig = Signature::parse(&r.signature.unwrap().text).unwrap();
    assert_eq!(
        sig.recover(&signing_digest).unwrap(),
        key,
        "the custody key signed the reviewed transaction"
    );
    // A third is harmless.
    let r = approve(&mut other, &id, approval(&approvers[2], &binding))
        .await
        .unwrap();
    assert_eq!(r.state, "signed");
    assert_eq!(Signature::parse(&r.signature.unwrap().text).unwrap(), sig);

    // A cancelled request cannot be approved, and only its requester may cancel it.
    let id2 = request(&mut c, &key, &transfer("2030-01-01T00:00:00", 2)).await;
    assert!(
        other
            .cancel_approval(grpc::CancelApprovalRequest { id: id2.clone() })
            .await
            .is_err()
    );
    c.cancel_approval(grpc::CancelApprovalRequest { id: id2.clone() })
        .await
        .unwrap();
    let b2 = binding_of(&mut c, &id2).await;
    assert!(
        approve(&mut c, &id2, approval(&approvers[0], &b2))
            .await
            .is_err()
    );

    // An expired request cannot be approved.
    let soon = oryx_proto::antelope::TimePointSec(
        u32::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
            + 2,
    );
    let id3 = request(&mut c, &key, &transfer(&soon.to_string(), 3)).await;
    let b3 = binding_of(&mut c, &id3).await;
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let e = approve(&mut c, &id3, approval(&approvers[0], &b3))
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("APPROVAL_REJECTED"));
    assert!(e.message().contains("expired"), "{e:?}");

    // Every step is in the audit log, rejections included, and the chain verifies.
    let audit = std::fs::read_to_string(signer.audit_path()).unwrap();
    let entries: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |kind: &str, decision: &str| {
        entries
            .iter()
            .filter(|e| e["kind"] == kind && e["decision"] == decision)
            .count()
    };
    assert_eq!(count("sign_transaction", "pending"), 3);
    assert!(
        count("approval", "rejected") >= 6,
        "forged, cancelled and expired approvals are audited"
    );
    assert_eq!(count("approval", "accepted"), 2);
    assert_eq!(count("sign_transaction", "signed"), 1);
    run(
        &["audit", "verify", signer.audit_path().to_str().unwrap()],
        &[],
    );
    let _ = approvers[0].public_key();
}

/// Runs the `oryx` CLI against the signer as principal `node1`.
fn oryx(signer: &Signer, args: &[&str]) -> serde_json::Value {
    oryx_env(signer, args, &[])
}

/// Runs the `oryx` CLI as principal `node1`, with extra environment variables, and returns
/// what it did (for commands expected to fail).
fn oryx_output(
    signer: &Signer,
    args: &[&str],
    env: &[(&str, &std::path::Path)],
) -> std::process::Output {
    let tls = signer.dir.join("tls");
    std::process::Command::new(env!("CARGO_BIN_EXE_oryx"))
        .args(args)
        .arg("--json")
        .env("ORYX_SIGNER", &signer.addr)
        .env("ORYX_CA", tls.join("ca.pem"))
        .env("ORYX_CERT", tls.join("node1.pem"))
        .env("ORYX_CERT_KEY", tls.join("node1.key"))
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The same, with extra environment variables (e.g. `SOFTHSM2_CONF` for a token-held key).
fn oryx_env(signer: &Signer, args: &[&str], env: &[(&str, &std::path::Path)]) -> serde_json::Value {
    let out = oryx_output(signer, args, env);
    assert!(
        out.status.success(),
        "oryx {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvers_use_the_cli_online_and_across_an_air_gap() {
    let (dir, signer, key, approvers) = custody_signer();
    let mut c = signer.client("node1").await;
    let id = request(&mut c, &key, &transfer("2030-01-01T00:00:00", 9)).await;
    let key_files: Vec<_> = approvers
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let p = dir.path().join(format!("approver{i}.key"));
            std::fs::write(&p, a.private_key().to_pvt_string().as_str()).unwrap();
            p
        })
        .collect();

    let list = oryx(&signer, &["approvals", "list"]);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["approvals"], "0 of 2");

    // Offline: the request is carried out as a file, approved on the far side, carried back.
    let shown = oryx(&signer, &["approvals", "show", &id]);
    assert_eq!(
        shown["transaction"]["actions"][0]["data"]["quantity"], "10.0000 EOS",
        "the approver sees what is signed"
    );
    let req_file = dir.path().join("request.json");
    let approval_file = dir.path().join("approval.json");
    // Never a blind approval: each of these is refused before anything is signed.
    let outsider = dir.path().join("outsider.key");
    std::fs::write(
        &outsider,
        oryx_signer::backend::soft::SoftKey::generate(oryx_proto::antelope::KeyType::K1)
            .unwrap()
            .private_key()
            .to_pvt_string()
            .as_str(),
    )
    .unwrap();
    let mut edited = shown.clone();
    edited["transaction"]["actions"][0]["data"]["quantity"] = "0.0001 EOS".into();
    edited["transaction"]["actions"][0]["data"]["to"] = "trustedacct".into();
    let mut expired = shown.clone();
    expired["expires"] = "2001-01-01T00:00:00".into();
    // `oryx approve --offline` of the request file with `key`, writing `out`.
    let offline = |key: &Path, out: &Path, yes: bool| {
        let mut args = vec![
            "approve",
            "--offline",
            "--request",
            req_file.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        if yes {
            args.push("--yes");
        }
        oryx_output(&signer, &args, &[])
    };
    for (file, key, yes, want) in [
        (
            &edited,
            &key_files[0],
            true,
            "does not match its packed_trx",
        ),
        (&shown, &outsider, true, "is not in its approver set"),
        (&expired, &key_files[0], true, "expired"),
        (&shown, &key_files[0], false, "pass --yes"),
    ] {
        std::fs::write(&req_file, file.to_string()).unwrap();
        let out = offline(key, &approval_file, yes);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{want}: {err}");
        assert!(!approval_file.exists(), "{want}: nothing written");
        // What it would have approved was shown first (decoded from the bytes).
        if want == "pass --yes" {
            assert!(
                err.contains("10.0000 EOS") && err.contains("exchangeacct"),
                "{err}"
            );
        }
    }
    std::fs::write(&req_file, shown.to_string()).unwrap();
    // Never written over an existing file (here the request itself).
    let out = offline(&key_files[0], &req_file, true);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exists"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&req_file).unwrap(),
        shown.to_string()
    );
    let out = offline(&key_files[0], &approval_file, true);
    assert!(out.status.success(), "{out:?}");
    let submitted = oryx(
        &signer,
        &["approvals", "submit", approval_file.to_str().unwrap()],
    );
    assert_eq!(submitted["approvals"], "1 of 2");
    assert!(submitted["signature"].is_null());

    // A tampered request file is refused before anything is signed.
    let mut tampered = shown.clone();
    tampered["binding_digest"] = serde_json::json!("00".repeat(32));
    std::fs::write(&req_file, tampered.to_string()).unwrap();
    let out = offline(&key_files[1], &dir.path().join("x.json"), true);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("do not match the transaction"),
        "{out:?}"
    );

    // Online, an approver who approved already is told so; nothing is signed again.
    let again = oryx(
        &signer,
        &[
            "approve",
            "--yes",
            &id,
            "--key-file",
            key_files[0].to_str().unwrap(),
        ],
    );
    assert!(
        again["note"].as_str().unwrap().contains("already"),
        "{again}"
    );
    assert_eq!(again["approvals"], "1 of 2");

    // Online: the second approval signs.
    let done = oryx(
        &signer,
        &[
            "approve",
            "--yes",
            &id,
            "--key-file",
            key_files[2].to_str().unwrap(),
        ],
    );
    assert_eq!(done["state"], "signed");
    let sig = Signature::parse(done["signature"].as_str().unwrap()).unwrap();
    let digest = Checksum256::from_hex(shown["signing_digest"].as_str().unwrap()).unwrap();
    assert_eq!(sig.recover(&digest).unwrap(), key);
}

/// The requester's round trip with the CLI only: submit a transaction, see it listed apart from
/// others (amount, recipient), get it back signed in the form `cleos push transaction` and
/// `oryx inspect tx` take once approved (the same command again), see who approved and where the
/// signature is in the audit log, and withdraw another request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_submits_gets_it_signed_and_cancels_with_the_cli() {
    let (dir, signer, key, approvers) = custody_signer();
    let trx_file = dir.path().join("transfer.json");
    std::fs::write(
        &trx_file,
        serde_json::to_string(&transfer("2030-01-01T00:00:00", 21)).unwrap(),
    )
    .unwrap();
    let out = dir.path().join("signed.json");
    let request_args = [
        "approvals",
        "request",
        trx_file.to_str().unwrap(),
        "--key",
        &key.to_string(),
        "--chain-id",
        "eos",
        "--out",
        out.to_str().unwrap(),
    ];
    let w = oryx(&signer, &request_args);
    assert_eq!(w["state"], "waiting-for-approvals", "{w}");
    let id = w["request_id"].as_str().unwrap().to_string();
    assert!(!out.exists());

    let list = oryx(&signer, &["approvals", "list"]);
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap();
    assert!(
        row["summary"][0]
            .as_str()
            .unwrap()
            .contains("transfer 10.0000 EOS oryxcustody1 → exchangeacct"),
        "{row}"
    );
    for (i, a) in approvers.iter().take(2).enumerate() {
        let f = dir.path().join(format!("a{i}.key"));
        std::fs::write(&f, a.private_key().to_pvt_string().as_str()).unwrap();
        oryx(
            &signer,
            &["approve", "--yes", &id, "--key-file", f.to_str().unwrap()],
        );
    }
    // The same command again: the same request, now signed, written ready to push.
    let done = oryx(&signer, &request_args);
    assert_eq!(done["state"], "signed", "{done}");
    let shown = oryx(
        &signer,
        &["inspect", "tx", "--chain-id", "eos", out.to_str().unwrap()],
    );
    assert_eq!(
        shown["signatures"][0]["public_key"],
        key.to_string(),
        "{shown}"
    );
    let req = oryx(&signer, &["approvals", "show", &id]);
    assert_eq!(req["approvals"].as_array().unwrap().len(), 2, "{req}");
    // The audit position is the log line's own: its sequence number and hash (64 hex).
    let seq = req["audit"]["seq"].as_u64().unwrap();
    let line: serde_json::Value = std::fs::read_to_string(signer.audit_path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["seq"].as_u64() == Some(seq))
        .unwrap();
    assert_eq!(req["audit"]["hash"], line["hash"], "{req}");
    // Its push form reads back too.
    let push = dir.path().join("push.json");
    std::fs::write(&push, req["signed_transaction"].to_string()).unwrap();
    let again = oryx(
        &signer,
        &["inspect", "tx", "--chain-id", "eos", push.to_str().unwrap()],
    );
    assert_eq!(again["signatures"][0]["public_key"], key.to_string());

    // Another request, withdrawn by its requester.
    let mut c = signer.client("node1").await;
    let other = request(&mut c, &key, &transfer("2030-01-01T00:00:00", 22)).await;
    let cancelled = oryx(&signer, &["approvals", "cancel", &other]);
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_key_on_a_pkcs11_token() {
    // The approver's own token, with a key generated on it.
    let approver_dir = tempfile::tempdir().unwrap();
    init(approver_dir.path(), false);
    let approver_conf = softhsm_backend(approver_dir.path(), "approver");
    let token_key = hsm_key(
        approver_dir.path(),
        &approver_conf,
        "my-approval-key",
        false,
    );

    let (dir, signer, key, approvers) =
        custody_signer_with(Some(token_key), r#"["intruder"]"#, "[]");
    let mut c = signer.client("node1").await;
    let id = request(&mut c, &key, &transfer("2030-01-01T00:00:00", 11)).await;
    let first = dir.path().join("a0.key");
    std::fs::write(&first, approvers[0].private_key().to_pvt_string().as_str()).unwrap();
    oryx(
        &signer,
        &[
            "approve",
            "--yes",
            &id,
            "--key-file",
            first.to_str().unwrap(),
        ],
    );

    let module = softhsm_module();
    let pin = approver_dir.path().join("secrets/pin");
    let done = oryx_env(
        &signer,
        &[
            "approve",
            "--yes",
            &id,
            "--pkcs11-module",
            module.to_str().unwrap(),
            "--token-label",
            "approver",
            "--pin-file",
            pin.to_str().unwrap(),
            "--key-label",
            "my-approval-key",
        ],
        &[("SOFTHSM2_CONF", approver_conf.as_path())],
    );
    assert_eq!(
        done["state"], "signed",
        "the token-held approval completed the quorum"
    );

    // An admin (here the principal "intruder") may cancel someone else's request.
    let id2 = request(&mut c, &key, &transfer("2030-01-01T00:00:00", 12)).await;
    let mut admin = signer.client("intruder").await;
    let r = admin
        .cancel_approval(grpc::CancelApprovalRequest { id: id2 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.state, "cancelled");
}

// ---- eosio.msig approvals -------------------------------------------------------------------

/// A transaction on the custody account's behalf expiring in 2030.
fn wrapper(actions: Vec<Action>, n: u16) -> Transaction {
    Transaction {
        actions,
        ref_block_num: n,
        ..transfer("2030-01-01T00:00:00", 0)
    }
}

/// The proposal custodians approve: rotate oryxprodacct's owner key.
fn rotate_owner(new_key: PublicKey) -> Transaction {
    let update = UpdateAuth {
        account: Name::new("oryxprodacct").unwrap(),
        permission: Name::new("owner").unwrap(),
        parent: Name(0),
        auth: Authority::single_key(new_key),
        authorized_by: None,
    };
    let held = HeldAuthority {
        keys: vec![new_key],
        accounts: vec![],
    };
    wrapper(
        vec![
            update
                .to_action("oryxprodacct@owner".parse().unwrap(), &held)
                .unwrap(),
        ],
        1,
    )
}

/// `propose` of `proposal` by oryxprodacct, asking oryxcustody1@active.
fn proposal_of(proposal: &Transaction, name: &str) -> Propose {
    Propose::build(
        Name::new("oryxprodacct").unwrap(),
        Name::new(name).unwrap(),
        vec![CUSTODY.parse().unwrap()],
        proposal,
    )
    .unwrap()
}

const CUSTODY: &str = "oryxcustody1@active";

/// The custody key's approve of `propose`, in a transaction of its own.
fn approve_trx(propose: &Propose, n: u16) -> Transaction {
    wrapper(
        vec![
            propose
                .approve(CUSTODY.parse().unwrap())
                .to_action()
                .unwrap(),
        ],
        n,
    )
}

async fn sign_msig(
    c: &mut SignerClient<Channel>,
    key: &PublicKey,
    transaction: grpc::sign_transaction_request::Transaction,
    proposals: Vec<Vec<u8>>,
) -> Result<grpc::SignTransactionResponse, tonic::Status> {
    c.sign_transaction(grpc::SignTransactionRequest {
        chain_id: eos(),
        public_key: key.to_string(),
        transaction: Some(transaction),
        context_free_data: vec![],
        msig_proposals: proposals,
    })
    .await
    .map(|r| r.into_inner())
}

fn packed(trx: &Transaction) -> grpc::sign_transaction_request::Transaction {
    grpc::sign_transaction_request::Transaction::PackedTrx(trx.packed())
}

/// The refusal's reason and message.
fn refusal(r: Result<grpc::SignTransactionResponse, tonic::Status>) -> (String, String) {
    let e = r.unwrap_err();
    (reason(&e).unwrap_or_default(), e.message().to_string())
}

/// The audit log line at `audit.seq`, checked to carry `audit.hash`.
fn audit_line(signer: &Signer, audit: &grpc::AuditRef) -> serde_json::Value {
    let text = std::fs::read_to_string(signer.audit_path()).unwrap();
    let line: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["seq"] == audit.seq)
        .unwrap();
    assert_eq!(
        line["hash"],
        audit.hash.as_str(),
        "the AuditRef names that line"
    );
    line
}

/// A signer with a soft custody key: principal `node1` may have it approve eosio.msig
/// proposals whose actions are an owner rotation of oryxprodacct or a token transfer, with 2 of
/// 3 custodians' approvals; principal `intruder` may have it approve anything, without approvals
/// (the signer still insists on seeing the proposal).
fn msig_signer() -> (tempfile::TempDir, Signer, PublicKey, Vec<SoftKey>) {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let key = first_key(dir.path());
    let approvers: Vec<SoftKey> = (0..3)
        .map(|i| SoftKey::generate(if i == 1 { KeyType::R1 } else { KeyType::K1 }).unwrap())
        .collect();
    let set: Vec<String> = approvers
        .iter()
        .map(|a| format!("\"{}\"", a.public_key()))
        .collect();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "version = \"msig-1\"\n\
             [[rule]]\nname = \"custody-approvals\"\nprincipals = [\"node1\"]\nkeys = [\"{key}\"]\nkinds = [\"transaction\"]\n\
             actions = [\"eosio.msig::approve@{CUSTODY}\"]\n\
             msig_proposed_actions = [\"eosio::updateauth@oryxprodacct@owner\", \"eosio.token::transfer\"]\n\
             approvals = {{ threshold = 2, approvers = [{}], set = \"custodians\" }}\n\
             [[rule]]\nname = \"unguarded\"\nprincipals = [\"intruder\"]\nkeys = [\"{key}\"]\nkinds = [\"transaction\"]\n\
             actions = [\"eosio.msig::approve@{CUSTODY}\", \"eosio.token::transfer\"]\n",
            set.join(", ")
        ),
    )
    .unwrap();
    run(&["policy", "check", policy.to_str().unwrap()], &[]);
    let cfg = config_path(dir.path());
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = &text[..text.find("[[allow]]").unwrap()];
    std::fs::write(&cfg, format!("policy = \"policy.toml\"\n{text}")).unwrap();
    let signer = Signer::start(dir.path(), &[]);
    (dir, signer, key, approvers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msig_approve_signed_only_after_custodians_sign_off_the_proposal() {
    let (dir, signer, key, approvers) = msig_signer();
    let mut c = signer.client("node1").await;
    let chain = Checksum256(eos().try_into().unwrap());

    let proposed = rotate_owner(*approvers[0].public_key());
    let propose = proposal_of(&proposed, "rotowner");
    let trx = approve_trx(&propose, 10);

    // Refusals, each audited, nothing signed: no proposal; a proposal the approve does not pin;
    // an approve without proposal_hash; a proposal given with no approve.
    let (r, m) = refusal(sign_msig(&mut c, &key, packed(&trx), vec![]).await);
    assert_eq!(r, "MALFORMED", "{m}");
    assert!(
        m.contains("1 eosio.msig::approve action(s) but 0 proposal(s)"),
        "{m}"
    );
    let other = rotate_owner(*approvers[1].public_key());
    let (r, m) = refusal(sign_msig(&mut c, &key, packed(&trx), vec![other.packed()]).await);
    assert_eq!(r, "MALFORMED", "{m}");
    assert!(m.contains("pins proposal_hash"), "{m}");
    let unpinned = Approve {
        proposal_hash: None,
        ..propose.approve(CUSTODY.parse().unwrap())
    };
    let unpinned = wrapper(
        vec![Action {
            account: Name::new("eosio.msig").unwrap(),
            name: Name::new("approve").unwrap(),
            authorization: vec![CUSTODY.parse().unwrap()],
            data: Bytes(unpinned.packed()),
        }],
        11,
    );
    let (r, m) = refusal(sign_msig(&mut c, &key, packed(&unpinned), vec![proposed.packed()]).await);
    assert_eq!(r, "MALFORMED", "{m}");
    assert!(m.contains("has no proposal_hash"), "{m}");
    let (r, m) = refusal(
        sign_msig(
            &mut c,
            &key,
            packed(&transfer("2030-01-01T00:00:00", 12)),
            vec![proposed.packed()],
        )
        .await,
    );
    assert_eq!(r, "MALFORMED", "{m}");
    assert!(m.contains("no eosio.msig::approve"), "{m}");
    // The same checks for a whole packed_transaction (zlib).
    let whole = PackedTransaction::new(&trx, &[], vec![], Compression::Zlib).unwrap();
    let (r, m) = refusal(
        sign_msig(
            &mut c,
            &key,
            grpc::sign_transaction_request::Transaction::PackedTransaction(whole.packed()),
            vec![],
        )
        .await,
    );
    assert_eq!(r, "MALFORMED", "{m}");
    // Decoded (zlib included), then refused for the missing proposal.
    assert!(m.contains("but 0 proposal(s)"), "{m}");
    // A proposal with an action outside msig_proposed_actions: denied, naming the action.
    let link = wrapper(
        vec![
            proposed.actions[0].clone(),
            Action {
                account: Name::new("eosio").unwrap(),
                name: Name::new("linkauth").unwrap(),
                ..proposed.actions[0].clone()
            },
        ],
        2,
    );
    let bad = proposal_of(&link, "widen");
    let (r, m) = refusal(
        sign_msig(
            &mut c,
            &key,
            packed(&approve_trx(&bad, 13)),
            vec![link.packed()],
        )
        .await,
    );
    assert_eq!(r, "POLICY_DENIED", "{m}");
    assert!(
        m.contains("custody-approvals")
            && m.contains("action #1 eosio::linkauth (oryxprodacct@owner) is not allowed by msig_proposed_actions"),
        "{m}"
    );

    // With its proposal (here as transaction JSON): stored for the custodians.
    let e = sign_msig(
        &mut c,
        &key,
        grpc::sign_transaction_request::Transaction::Json(serde_json::to_string(&trx).unwrap()),
        vec![proposed.packed()],
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("NEEDS_APPROVALS"), "{e:?}");
    let id = e
        .metadata()
        .get("oryx-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let pending = get(&mut c, &id).await;
    assert_eq!(pending.state, "pending");
    assert_eq!(
        pending.msig_proposals,
        vec![proposed.packed()],
        "custodians review the proposal"
    );
    let signing_digest = trx.signing_digest(&chain, &[]);
    let binding = binding_digest(&chain, &key, &signing_digest, &id);
    assert_eq!(pending.binding_digest, binding.0.to_vec());

    // `oryx approvals show` decodes the proposal beside the approve.
    let shown = oryx(&signer, &["approvals", "show", &id]);
    let shown_proposal = &shown["msig_proposals"][0];
    assert_eq!(shown_proposal["approve_action"], 0);
    assert_eq!(
        shown_proposal["approve"]["data"]["proposal_name"],
        "rotowner"
    );
    assert_eq!(shown_proposal["proposal_hash"], proposed.id().to_string());
    assert_eq!(
        shown_proposal["transaction"]["actions"][0]["name"],
        "updateauth"
    );
    assert_eq!(
        shown_proposal["transaction"]["actions"][0]["data"]["auth"]["keys"][0]["key"],
        approvers[0].public_key().to_string()
    );

    // Offline, a request file whose proposal was tampered with (or dropped) is refused.
    let key_file = dir.path().join("approver0.key");
    std::fs::write(
        &key_file,
        approvers[0].private_key().to_pvt_string().as_str(),
    )
    .unwrap();
    let offline = |request: &serde_json::Value| {
        let req_file = dir.path().join("request.json");
        std::fs::write(&req_file, request.to_string()).unwrap();
        let out_file = dir.path().join("approval.json");
        let args = [
            "approve",
            "--yes",
            "--offline",
            "--request",
            req_file.to_str().unwrap(),
            "--key-file",
            key_file.to_str().unwrap(),
            "--out",
            out_file.to_str().unwrap(),
        ];
        oryx_output(&signer, &args, &[])
    };
    let mut tampered = shown.clone();
    tampered["msig_proposals"][0]["packed_trx"] = serde_json::json!(hex::encode(other.packed()));
    let mut dropped = shown.clone();
    dropped.as_object_mut().unwrap().remove("msig_proposals");
    for (bad, why) in [
        (&tampered, "pins proposal_hash"),
        (&dropped, "but 0 proposal(s)"),
    ] {
        let out = offline(bad);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(why) && err.contains("do not match the approves: refusing to approve"),
            "{err}"
        );
    }
    assert!(
        !dir.path().join("approval.json").exists(),
        "nothing was signed"
    );

    // The untampered file is approved offline and submitted: one approval releases nothing.
    assert!(offline(&shown).status.success());
    let submitted = oryx(
        &signer,
        &[
            "approvals",
            "submit",
            dir.path().join("approval.json").to_str().unwrap(),
        ],
    );
    assert_eq!(submitted["approvals"], "1 of 2");
    let r = get(&mut c, &id).await;
    assert_eq!(
        (r.state.as_str(), r.signature.is_none(), r.audit.is_none()),
        ("pending", true, true)
    );

    // The second custodian's approval signs, with the custody key, over the transaction.
    let r = approve(&mut c, &id, approval(&approvers[1], &binding))
        .await
        .unwrap();
    assert_eq!(r.state, "signed");
    let sig = Signature::parse(&r.signature.unwrap().text).unwrap();
    assert_eq!(sig.recover(&signing_digest).unwrap(), key);
    let audit = r.audit.unwrap();
    let line = audit_line(&signer, &audit);
    assert_eq!(
        (&line["kind"], &line["decision"], &line["signature"]),
        (
            &serde_json::json!("sign_transaction"),
            &serde_json::json!("signed"),
            &serde_json::json!(sig.to_string())
        )
    );
    // GetApproval keeps returning it.
    let again = get(&mut c, &id).await;
    assert_eq!(again.audit, Some(audit));

    // Without an approvals rule the signer still wants the proposal; with it, it signs at once
    // and says where in the audit log.
    let mut direct = signer.client("intruder").await;
    let anything = approve_trx(&bad, 14);
    let (r, _) = refusal(sign_msig(&mut direct, &key, packed(&anything), vec![]).await);
    assert_eq!(r, "MALFORMED");
    let signed = sign_msig(&mut direct, &key, packed(&anything), vec![link.packed()])
        .await
        .unwrap();
    let sig = Signature::parse(&signed.signature.unwrap().text).unwrap();
    assert_eq!(
        sig.recover(&anything.signing_digest(&chain, &[])).unwrap(),
        key
    );
    let audit = signed.audit.unwrap();
    assert_eq!(audit_line(&signer, &audit)["signature"], sig.to_string());

    // Every refusal is on record, and the chain verifies.
    let log = std::fs::read_to_string(signer.audit_path()).unwrap();
    let malformed = log
        .lines()
        .filter(|l| l.contains("\"decision\":\"refused\"") && l.contains("MALFORMED"))
        .count();
    assert_eq!(malformed, 6);
    assert_eq!(
        log.matches("is not allowed by msig_proposed_actions")
            .count(),
        1
    );
    run(
        &["audit", "verify", signer.audit_path().to_str().unwrap()],
        &[],
    );
}
