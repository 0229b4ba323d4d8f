//! Ceremonies end to end: the `oryx ceremony` CLI against the real `oryx-signer` binary over
//! mTLS, keys on a SoftHSM2 token.
//!
//! - producer-key rotation under a 2-of-3 approvals policy: the new key exists only on the
//!   token, regproducer decodes and its signature verifies by recovery and with
//!   `@wharfkit/antelope`; after `finish` the old key is refused (KEY_RETIRED) and a block at the
//!   hand-over height with the new key is refused (DOUBLE_SIGN); resuming never generates a
//!   second key; the transcript verifies and fails after a one-byte edit;
//! - owner rotation: unsorted keys, weight below threshold and lock-out are refused before
//!   anything is signed;
//! - msig: propose, then approve under 2 custody approvals (one approval releases nothing).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{
    Checksum256, KeyType, Pack, PrivateKey, PublicKey, Signature, TimePointSec,
};
use oryx_proto::grpc;
use oryx_signer::client::reason;
use oryx_tests::harness::*;
use serde_json::{Value, json};

const PRODUCER: &str = "oryxproducer";

/// Runs `oryx … --json`; Ok(stdout JSON) or Err(stderr).
fn oryx(args: &[String]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_oryx"))
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// An approver's software key, in a key file.
struct Approver {
    key: PrivateKey,
    file: PathBuf,
}

fn approver(dir: &Path, i: usize) -> Approver {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).unwrap();
    let key = PrivateKey::from_bytes(KeyType::K1, secret).unwrap();
    let file = dir.join(format!("approver{i}.key"));
    std::fs::write(&file, key.to_pvt_string().as_str()).unwrap();
    Approver { key, file }
}

/// A signer on a SoftHSM2 token with: the producer's block key, the account key that signs
/// transactions, the transcript (audit) key; `node1` is an admin; the policy is `rules`
/// (with `{OLD}`, `{ACCT}` and `{A0}`..`{A2}` replaced).
struct Setup {
    dir: tempfile::TempDir,
    signer: Signer,
    conf: PathBuf,
    old: PublicKey,
    acct: PublicKey,
    audit: PublicKey,
    approvers: Vec<Approver>,
    /// The carried get_info answer `tx_args` points at (written once, as [`GET_INFO`]).
    info: Value,
}

/// The carried get_info file's name in the test directory.
const GET_INFO: &str = "get_info.json";

/// A carried get_info answer whose head time is now (so a transaction built on it expires
/// only after the test: `tx_args` gives it 1800 s).
fn get_info() -> Value {
    let lib = 7_000_000u32;
    let id = |n: u32, fill: u8| {
        let mut b = [fill; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        hex::encode(b)
    };
    let now = oryx_signer::clock::now_secs();
    json!({
        "server_version": "test", "chain_id": EOS,
        "head_block_num": lib + 3, "head_block_id": id(lib + 3, 0x33),
        "last_irreversible_block_num": lib, "last_irreversible_block_id": id(lib, 0x5a),
        "head_block_time": format!("{now}.000"), "head_block_producer": PRODUCER,
    })
}

impl Setup {
    fn new(rules: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        init(d, false);
        let conf = softhsm_backend(d, "ceremony");
        let old = hsm_key(d, &conf, "producer-1", false);
        let acct = hsm_key(d, &conf, "account", false);
        let audit = hsm_key(d, &conf, "transcripts", false);
        let approvers: Vec<Approver> = (0..3).map(|i| approver(d, i)).collect();
        let cfg = config_path(d);
        let text = std::fs::read_to_string(&cfg).unwrap().replace(
            "path = \"audit/audit.jsonl\"",
            &format!("path = \"audit/audit.jsonl\"\nsigning_key = \"{audit}\""),
        );
        std::fs::write(
            &cfg,
            format!("admins = [\"node1\"]\npolicy = \"policy.toml\"\n{text}"),
        )
        .unwrap();
        for (k, chains) in [(old, "[\"main\"]"), (acct, "[\"main\"]"), (audit, "[]")] {
            append_config(
                d,
                &format!("[[keys]]\npublic_key = \"{k}\"\nbackend = \"hsm\"\nchains = {chains}\n"),
            );
        }
        let mut policy = rules
            .replace("{OLD}", &old.to_string())
            .replace("{ACCT}", &acct.to_string());
        for (i, a) in approvers.iter().enumerate() {
            policy = policy.replace(&format!("{{A{i}}}"), &a.key.public_key().to_string());
        }
        std::fs::write(
            d.join("policy.toml"),
            format!("version = \"ceremony-1\"\n{policy}"),
        )
        .unwrap();
        let signer = Signer::start(d, &[("SOFTHSM2_CONF", conf.to_str().unwrap())]);
        let info = get_info();
        std::fs::write(d.join(GET_INFO), info.to_string()).unwrap();
        Setup {
            dir,
            info,
            signer,
            conf,
            old,
            acct,
            audit,
            approvers,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A carried get_account answer for the producer account, in file `name`: active is the
    /// account key, owner is `owner` alone.
    fn carried_account(&self, name: &str, owner: &PublicKey) -> PathBuf {
        let auth = |k: &PublicKey| json!({"threshold": 1, "keys": [{"key": k.to_string(), "weight": 1}], "accounts": [], "waits": []});
        let path = self.path(name);
        std::fs::write(
            &path,
            json!({"account_name": PRODUCER, "permissions": [
                {"perm_name": "active", "parent": "owner", "required_auth": auth(&self.acct)},
                {"perm_name": "owner", "parent": "", "required_auth": auth(owner)}]})
            .to_string(),
        )
        .unwrap();
        path
    }

    /// The mTLS flags of principal node1.
    fn conn(&self) -> Vec<String> {
        let t = self.path("tls");
        let p = |f: &str| t.join(f).display().to_string();
        vec![
            "--signer".into(),
            self.signer.addr.clone(),
            "--ca".into(),
            p("ca.pem"),
            "--cert".into(),
            p("node1.pem"),
            "--cert-key".into(),
            p("node1.key"),
        ]
    }

    /// `oryx ARGS… <connection flags>`.
    fn oryx(&self, args: &[String]) -> Result<Value, String> {
        let mut all = args.to_vec();
        all.extend(self.conn());
        oryx(&all)
    }

    /// `oryx ceremony rotate-producer start` of the old key to a new one labelled `label`,
    /// in `dir`, before the chain and TaPoS flags.
    fn rotation_args(&self, dir: &Path, label: &str) -> Vec<String> {
        s(&[
            "ceremony",
            "rotate-producer",
            "start",
            "--dir",
            dir.to_str().unwrap(),
            "--producer",
            PRODUCER,
            "--old-key",
            &self.old.to_string(),
            "--backend",
            "hsm",
            "--label",
            label,
            "--signing-key",
            &self.acct.to_string(),
            "--url",
            "https://oryx.invalid",
        ])
    }

    /// `oryx ceremony rotate-auth start` of the producer's owner permission in `dir`, from the
    /// carried account in `current`, signed with the account key, with the chain and TaPoS
    /// flags.
    fn owner_rotation_args(&self, dir: &Path, current: &Path) -> Vec<String> {
        let mut a = s(&[
            "ceremony",
            "rotate-auth",
            "start",
            "--dir",
            dir.to_str().unwrap(),
            "--account",
            PRODUCER,
            "--permission",
            "owner",
            "--current",
            current.to_str().unwrap(),
            "--signing-key",
            &self.acct.to_string(),
        ]);
        a.extend(self.tx_args());
        a
    }

    fn tx_args(&self) -> Vec<String> {
        vec![
            "--chain-id".into(),
            "eos".into(),
            "--tapos".into(),
            self.path(GET_INFO).display().to_string(),
            "--expire-in".into(),
            "1800".into(),
        ]
    }

    /// `oryx approve --offline` by approver `i` on the ceremony's request file.
    fn offline_approval(&self, i: usize, request: &str) -> PathBuf {
        let out = self.path(&format!("approval{i}.json"));
        oryx(&s(&[
            "approve",
            "--yes",
            "--offline",
            "--request",
            request,
            "--key-file",
            self.approvers[i].file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]))
        .unwrap();
        out
    }

    /// `oryx approve ID` online by approver `i`.
    fn online_approval(&self, i: usize, id: &str) -> Value {
        self.oryx(&s(&[
            "approve",
            "--yes",
            id,
            "--key-file",
            self.approvers[i].file.to_str().unwrap(),
        ]))
        .unwrap()
    }

    fn token_labels(&self) -> Vec<(String, String)> {
        let cfg = config_path(self.dir.path());
        let out = run(
            &["keys", "list", "-c", cfg.to_str().unwrap(), "--json"],
            &[("SOFTHSM2_CONF", self.conf.to_str().unwrap())],
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["label"].as_str().unwrap().to_string(),
                    r["public_key"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Kinds of the signer's audit entries.
    fn audit_kinds(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.signer.audit_path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|e| {
                (
                    e["kind"].as_str().unwrap_or_default().to_string(),
                    e["decision"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

async fn sign_block_at(
    signer: &Signer,
    key: &PublicKey,
    n: u32,
    variant: u8,
) -> Result<grpc::SignResponse, tonic::Status> {
    let mut c = signer.client("node1").await;
    sign_block(&mut c, key, &savanna(n, n, variant)).await
}

/// A signed transaction file: decoded both ways, the same; its signature recovers to `key`.
fn check_signed_file(path: &Path, key: &PublicKey) -> (Transaction, Signature, Value) {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let packed = Transaction::decode(&hex::decode(v["packed_trx"].as_str().unwrap()).unwrap())
        .expect("packed_trx decodes");
    let mut expanded = v.clone();
    for k in [
        "signatures",
        "context_free_data",
        "compression",
        "packed_context_free_data",
        "packed_trx",
    ] {
        expanded.as_object_mut().unwrap().remove(k);
    }
    let expanded: Transaction = serde_json::from_value(expanded).expect("expanded decodes");
    assert_eq!(expanded, packed, "both forms are the same transaction");
    assert_eq!(v["compression"], "none");
    let sigs = v["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1);
    let sig = Signature::parse(sigs[0].as_str().unwrap()).unwrap();
    let chain = Checksum256::from_hex(EOS).unwrap();
    let digest = packed.signing_digest(&chain, &[]);
    assert_eq!(sig.recover(&digest).unwrap(), *key, "signed by {key}");
    // `oryx inspect tx` reads the file as well (both forms, checked against each other).
    let shown = oryx(&s(&[
        "inspect",
        "tx",
        "--chain-id",
        "eos",
        path.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(shown["signatures"][0]["public_key"], key.to_string());
    (packed, sig, v)
}

/// `oryx ceremony verify` with the audit key and the signer's audit log.
fn verify_transcript(file: &Path, audit: &PublicKey, signer: &Signer) -> Value {
    let v = oryx(&s(&[
        "ceremony",
        "verify",
        file.to_str().unwrap(),
        "--audit-key",
        &audit.to_string(),
        "--audit-log",
        signer.audit_path().to_str().unwrap(),
    ]))
    .unwrap_or_else(|e| panic!("verify: {e}"));
    assert!(v["audit_positions_checked"].as_u64().unwrap() >= 2, "{v}");
    v
}

/// Flips one hex digit inside entry `seq`'s data and checks verify names that entry.
fn edit_one_byte_fails(file: &Path, seq: usize) {
    let text = std::fs::read_to_string(file).unwrap();
    let t: Value = serde_json::from_str(&text).unwrap();
    let digest = t["entries"][seq]["data"]["signing_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let at = text.find(&digest).unwrap() + 10;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let edited = file.with_file_name("edited.json");
    std::fs::write(&edited, &bytes).unwrap();
    let e = oryx(&s(&["ceremony", "verify", edited.to_str().unwrap()])).unwrap_err();
    assert!(
        e.contains(&format!("entry {seq} (transaction)")),
        "names the entry: {e}"
    );
}

const PRODUCER_RULES: &str = r#"
[[rule]]
name = "blocks"
principals = ["node1"]
keys = ["{OLD}"]
kinds = ["block"]

[[rule]]
name = "regproducer"
principals = ["node1"]
keys = ["{ACCT}"]
kinds = ["transaction"]
actions = ["eosio::regproducer@oryxproducer@active"]
regproducer = { held_keys_only = true }
approvals = { threshold = 2, approvers = ["{A0}", "{A1}", "{A2}"], set = "producers" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_key_rotation_with_approvals() {
    let x = Setup::new(PRODUCER_RULES);
    let cdir = x.path("rotation");
    let cdir_s = cdir.display().to_string();
    let base = now_slot();
    let n = base + 3;
    for h in base..=n {
        sign_block_at(&x.signer, &x.old, h, 0).await.unwrap();
    }

    let mut start = x.rotation_args(&cdir, "producer-2");
    start.extend(s(&["--location", "276"]));
    start.extend(x.tx_args());

    // Dry run: prints the transaction with a placeholder key; generates, signs, writes nothing.
    let mut dry = start.clone();
    dry.push("--dry-run".into());
    let d = x.oryx(&dry).unwrap();
    assert!(
        d["new_key"].as_str().unwrap().contains("PLACEHOLDER"),
        "{d}"
    );
    assert_eq!(
        d["would_sign"][0]["decoded"]["actions"][0]["name"],
        "regproducer"
    );
    assert!(!cdir.exists(), "a dry run writes nothing");
    assert!(!x.token_labels().iter().any(|(l, _)| l == "producer-2"));

    // TaPoS typed in instead of carried: the same reference block gives the same TaPoS fields.
    let info = &x.info;
    let mut typed = dry.clone();
    let i = typed.iter().position(|a| a == "--tapos").unwrap();
    typed.splice(
        i..i + 2,
        s(&[
            "--ref-block-id",
            info["last_irreversible_block_id"].as_str().unwrap(),
            "--ref-time",
            info["head_block_time"].as_str().unwrap(),
        ]),
    );
    let t = x.oryx(&typed).unwrap();
    for field in ["ref_block_num", "ref_block_prefix", "expiration"] {
        assert!(
            !d["would_sign"][0]["decoded"][field].is_null(),
            "{field}: {d}"
        );
        assert_eq!(
            t["would_sign"][0]["decoded"][field], d["would_sign"][0]["decoded"][field],
            "{field}: {t}"
        );
    }
    let mut half = typed.clone();
    let j = half.iter().position(|a| a == "--ref-time").unwrap();
    half.drain(j..j + 2);
    assert!(oryx(&half).is_err(), "--ref-block-id without --ref-time");

    // An earlier run generated the key but its answer was lost (interrupted): the ceremony
    // finds that key again by its label instead of generating a second one.
    let mut c = x.signer.client("node1").await;
    let lost = c
        .generate_key(grpc::GenerateKeyRequest {
            backend: "hsm".into(),
            label: "producer-2".into(),
            key_type: "K1".into(),
            successor_of: x.old.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let new = PublicKey::parse(&lost.key.unwrap().public_key).unwrap();

    let w = x.oryx(&start).unwrap();
    assert_eq!(w["status"], "waiting-for-approvals", "{w}");
    assert_eq!(
        w["new_key"],
        new.to_string(),
        "the same key, found by label"
    );
    let id = w["request_id"].as_str().unwrap().to_string();
    // Running start again changes nothing (idempotent) and still waits.
    let again = x.oryx(&start).unwrap();
    assert_eq!(again["request_id"], id.as_str());
    // Other parameters on the same directory are refused.
    let mut other = start.clone();
    let i = other.iter().position(|a| a == "producer-2").unwrap();
    other[i] = "producer-9".into();
    let e = x.oryx(&other).unwrap_err();
    assert!(e.contains("other parameters") && e.contains("label"), "{e}");

    // One approval (online) releases nothing.
    let r = x.online_approval(0, &id);
    assert_eq!(r["state"], "pending");
    let still = x
        .oryx(&s(&[
            "ceremony",
            "rotate-producer",
            "resume",
            "--dir",
            &cdir_s,
        ]))
        .unwrap();
    assert_eq!(still["status"], "waiting-for-approvals");
    assert!(!cdir.join("regproducer.json").exists());

    // The second, offline: from the request file, carried back and submitted by resume.
    let request = cdir.join("request-regproducer.json");
    let a1 = x.offline_approval(1, request.to_str().unwrap());
    let done = x
        .oryx(&s(&[
            "ceremony",
            "rotate-producer",
            "resume",
            "--dir",
            &cdir_s,
            "--approval",
            a1.to_str().unwrap(),
        ]))
        .unwrap();
    assert_eq!(done["status"], "signed", "{done}");
    // The online approval is in the transcript too, with its signature, as the signer counted it.
    let transcript: Value =
        serde_json::from_str(&std::fs::read_to_string(cdir.join("transcript.json")).unwrap())
            .unwrap();
    let approvals: Vec<&Value> = transcript["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["step"] == "approval-collected" || e["step"] == "approval-submitted")
        .collect();
    assert_eq!(approvals.len(), 2, "both approvals recorded: {approvals:?}");
    assert!(
        approvals
            .iter()
            .any(|e| e["step"] == "approval-collected" && e["data"]["request_id"] == id.as_str()),
        "{approvals:?}"
    );

    // The key exists only on the token: listed there once; the registry holds no private
    // material.
    let labels = x.token_labels();
    let on_token: Vec<_> = labels.iter().filter(|(l, _)| l == "producer-2").collect();
    assert_eq!(on_token.len(), 1, "one key labelled producer-2: {labels:?}");
    assert_eq!(on_token[0].1, new.to_string());
    let registry = std::fs::read_to_string(x.path("state/keys.json")).unwrap();
    assert!(registry.contains(&new.to_string()));
    for secret_marker in ["PVT_", "\"private", "\"secret", "\"d\""] {
        assert!(!registry.contains(secret_marker), "{registry}");
    }

    // regproducer decodes, carries the new key and verifies by recovery and with wharfkit.
    let (trx, sig, _) = check_signed_file(&cdir.join("regproducer.json"), &x.acct);
    let chain = Checksum256::from_hex(EOS).unwrap();
    let out = oryx_tests::wharfkit::check(&json!({"transactions": [{
        "chain_id": EOS,
        "packed_trx": hex::encode(trx.packed()),
        "context_free_data": [],
        "id": trx.id().to_string(),
        "sig_digest": trx.signing_digest(&chain, &[]).to_string(),
        "signatures": [sig.to_string()],
        "public_keys": [x.acct.to_string()],
    }]}));
    let r = &out["transactions"][0];
    assert_eq!(r["ok"], true, "{r}");
    let fields = &r["actions_decoded"][0]["fields"];
    assert_eq!(
        PublicKey::parse(fields["producer_key"].as_str().unwrap()).unwrap(),
        new,
        "{r}"
    );
    assert_eq!(fields["producer"], PRODUCER);

    // finish refuses an answer that does not show the new key yet.
    let carried = |key: &PublicKey| {
        let p = x.path("get_producers.json");
        std::fs::write(
            &p,
            json!({"rows": [{"owner": PRODUCER, "total_votes": "1.0", "producer_key": key.to_legacy_string().unwrap(),
                "is_active": 1, "url": "https://oryx.invalid", "unpaid_blocks": 0,
                "last_claim_time": "2024-01-01T00:00:00.000", "location": 276}],
                "total_producer_vote_weight": "1.0", "more": ""})
            .to_string(),
        )
        .unwrap();
        p
    };
    let finish = |p: &Path| {
        x.oryx(&s(&[
            "ceremony",
            "rotate-producer",
            "finish",
            "--dir",
            &cdir_s,
            "--carried",
            p.to_str().unwrap(),
        ]))
    };
    let e = finish(&carried(&x.old)).unwrap_err();
    assert!(e.contains("not the new key"), "{e}");
    // Registered is not switched: nothing is retired until the active schedule names the key.
    let r = finish(&carried(&new)).unwrap();
    assert_eq!(r["status"], "registered", "{r}");
    let schedule = |key: &PublicKey| {
        let p = x.path("get_producer_schedule.json");
        std::fs::write(
            &p,
            json!({"active": {"version": 7, "producers": [{"producer_name": PRODUCER,
                "authority": ["block_signing_authority_v0", {"threshold": 1,
                    "keys": [{"key": key.to_string(), "weight": 1}]}]}]},
                "pending": null, "proposed": null})
            .to_string(),
        )
        .unwrap();
        p
    };
    let e = finish(&schedule(&x.old)).unwrap_err();
    assert!(e.contains("not yet from the new key"), "{e}");
    sign_block_at(&x.signer, &x.old, n + 1, 0)
        .await
        .expect("the old key still signs until the schedule switches");
    let f = finish(&schedule(&new)).unwrap();
    assert_eq!(f["status"], "complete", "{f}");
    assert_eq!(f["handovers"][0]["block_num"], n + 1);
    assert_eq!(f["already_retired"], false, "{f}");
    // finish again: harmless, and says it was done before.
    let again = finish(&carried(&new)).unwrap();
    assert_eq!(again["already_retired"], true, "{again}");
    // start (a resume) on the finished ceremony signs and pushes nothing again.
    let done = x.oryx(&start).unwrap();
    assert_eq!(done["status"], "complete", "{done}");
    assert!(
        done["note"]
            .as_str()
            .unwrap()
            .contains("nothing to sign or push again")
    );

    let e = sign_block_at(&x.signer, &x.old, n + 2, 0)
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("KEY_RETIRED"), "{e:?}");
    let e = sign_block_at(&x.signer, &new, n + 1, 9).await.unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("DOUBLE_SIGN"), "{e:?}");
    sign_block_at(&x.signer, &new, n + 2, 0)
        .await
        .expect("the new key signs above the hand-over");

    // The transcript verifies (and names the audit key); one edited byte fails.
    let transcript = cdir.join("transcript.json");
    let v = verify_transcript(&transcript, &x.audit, &x.signer);
    assert_eq!(v["ok"], true);
    assert_eq!(v["not_checked"], json!([]), "{v}");
    // Without the audit key and log, it says what it did not check.
    let bare = oryx(&s(&["ceremony", "verify", transcript.to_str().unwrap()])).unwrap();
    assert_eq!(bare["not_checked"].as_array().unwrap().len(), 2, "{bare}");
    assert_eq!(v["kind"], "rotate-producer");
    let steps: Vec<String> = serde_json::from_value(v["steps"].clone()).unwrap();
    for want in [
        "key-generated: found existing",
        "transaction: regproducer",
        "approval-requested",
        "approval-submitted",
        "signed: regproducer",
        "output: wrote regproducer.json",
        "on-chain",
        "retired",
    ] {
        assert!(steps.iter().any(|l| l.contains(want)), "{want}: {steps:#?}");
    }
    let t: Value = serde_json::from_str(&std::fs::read_to_string(&transcript).unwrap()).unwrap();
    let tx_seq = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["step"] == "transaction")
        .unwrap();
    edit_one_byte_fails(&transcript, tx_seq);
    // Only one key was ever generated under the label; every ceremony call is audited.
    let kinds = x.audit_kinds();
    assert!(kinds.iter().any(|(k, _)| k == "sign_transcript"));
    assert!(kinds.iter().any(|(k, _)| k == "retire_key"));
}

/// A rotation that will not finish (here: waiting for approvals that never come). Its new key
/// shares the producer key's watermark from the moment it exists, so it cannot sign a height the
/// producer signed; a second rotation of the same key is refused while it is open; `abort`
/// retires the new key (audited, in the transcript) and ends the ceremony for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_rotation_is_aborted_and_its_key_never_double_signs() {
    let x = Setup::new(PRODUCER_RULES);
    let base = now_slot();
    let n = base + 3;
    for h in base..=n {
        sign_block_at(&x.signer, &x.old, h, 0).await.unwrap();
    }
    let rotation = |dir: &Path, label: &str| {
        let mut a = x.rotation_args(dir, label);
        a.extend(x.tx_args());
        x.oryx(&a)
    };
    // What the signer can check before a key exists is checked first: a wrong chain generates
    // nothing (it used to leave a live successor behind).
    let wrong_chain = {
        let mut a = x.rotation_args(&x.path("rotation-0"), "producer-0");
        // TaPoS typed in: nothing carried names the chain, so only the signer can tell.
        a.extend(s(&[
            "--chain-id",
            "wax",
            "--ref-block-id",
            x.info["last_irreversible_block_id"].as_str().unwrap(),
            "--ref-time",
            x.info["head_block_time"].as_str().unwrap(),
        ]));
        a
    };
    let e = x.oryx(&wrong_chain).unwrap_err();
    assert!(e.contains("is not configured for chain"), "{e}");
    assert!(!x.token_labels().iter().any(|(l, _)| l == "producer-0"));

    let first = x.path("rotation-1");
    let w = rotation(&first, "producer-2").unwrap();
    assert_eq!(w["status"], "waiting-for-approvals", "{w}");
    let new = PublicKey::parse(w["new_key"].as_str().unwrap()).unwrap();

    // The new key signs none of the heights the producer key signed, nor the very blocks.
    for (h, variant) in [(base, 7), (n, 7), (n, 0)] {
        let e = sign_block_at(&x.signer, &new, h, variant)
            .await
            .unwrap_err();
        assert_eq!(reason(&e).as_deref(), Some("DOUBLE_SIGN"), "{h}: {e:?}");
    }
    // One open rotation per key.
    let e = rotation(&x.path("rotation-2"), "producer-3").unwrap_err();
    assert!(e.contains("already has an active successor"), "{e}");
    // A start whose first step failed leaves no directory to trip the corrected one.
    assert!(!x.path("rotation-2").exists());

    let cmd = |verb: &str| {
        x.oryx(&s(&[
            "ceremony",
            "rotate-producer",
            verb,
            "--dir",
            first.to_str().unwrap(),
        ]))
    };
    let a = cmd("abort").unwrap();
    assert_eq!(a["status"], "aborted", "{a}");
    assert_eq!(a["retired"], new.to_string());
    // Its regproducer request was cancelled on the signer: approvals given now sign nothing.
    let id = request_id(&first);
    let e = x
        .oryx(&s(&[
            "approve",
            "--yes",
            &id,
            "--key-file",
            x.approvers[0].file.to_str().unwrap(),
        ]))
        .unwrap_err();
    assert!(e.contains("cancelled") || e.contains("closed"), "{e}");
    // Again: harmless; resume refuses.
    assert_eq!(cmd("abort").unwrap()["status"], "aborted");
    let e = cmd("resume").unwrap_err();
    assert!(e.contains("aborted"), "{e}");

    let e = sign_block_at(&x.signer, &new, n + 5, 0).await.unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("KEY_RETIRED"), "{e:?}");
    sign_block_at(&x.signer, &x.old, n + 1, 0)
        .await
        .expect("the producer key signs on");
    let v = verify_transcript(&first.join("transcript.json"), &x.audit, &x.signer);
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        x.audit_kinds()
            .iter()
            .any(|(k, d)| k == "retire_key" && d == "retired"),
        "the abort is audited"
    );

    // Now another rotation may start. Its regproducer is approved online, so it is signed on
    // the signer though this directory has not recorded it: abort asks the signer, and wants
    // --force.
    let signed_dir = x.path("rotation-signed");
    let w = rotation(&signed_dir, "producer-3").unwrap();
    assert_eq!(w["status"], "waiting-for-approvals", "{w}");
    let id = request_id(&signed_dir);
    x.online_approval(0, &id);
    x.online_approval(1, &id);
    let abort = |force: bool| {
        let mut a = s(&[
            "ceremony",
            "rotate-producer",
            "abort",
            "--dir",
            signed_dir.to_str().unwrap(),
        ]);
        if force {
            a.push("--force".into());
        }
        x.oryx(&a)
    };
    let e = abort(false).unwrap_err();
    assert!(e.contains("was signed") && e.contains("--force"), "{e}");
    let forced = abort(true).unwrap();
    let retired = PublicKey::parse(forced["retired"].as_str().unwrap()).unwrap();
    // Whatever the policy allows, the signer signs no regproducer naming a retired key.
    let e = x
        .oryx(&{
            let mut a = x.rotation_args(&x.path("never"), "producer-9");
            a.extend(x.tx_args());
            a.push("--dry-run".into());
            a
        })
        .map(|_| ());
    assert!(e.is_ok(), "a dry run for a fresh key still passes: {e:?}");
    let mut c = x.signer.client("node1").await;
    let trx = regproducer_naming(&retired);
    let e = c
        .sign_transaction(grpc::SignTransactionRequest {
            chain_id: eos(),
            public_key: x.acct.to_string(),
            transaction: Some(grpc::sign_transaction_request::Transaction::PackedTrx(
                trx.packed(),
            )),
            ..Default::default()
        })
        .await
        .unwrap_err();
    // (Here the rule's held_keys_only refuses it first; the signer-wide rule is the pipeline's
    // `a_regproducer_naming_a_retired_key_is_refused_under_any_rules`.)
    assert_eq!(reason(&e).as_deref(), Some("POLICY_DENIED"), "{e:?}");

    let second = x.path("rotation-2");
    let w = rotation(&second, "producer-4").unwrap();
    assert_eq!(w["status"], "waiting-for-approvals", "{w}");

    // The old key is retired elsewhere meanwhile: the open ceremony is stale, and resuming it
    // signs no regproducer (which would point the chain at a key that does not succeed it).
    let mut c = x.signer.client("node1").await;
    c.retire_key(grpc::RetireKeyRequest {
        public_key: x.old.to_string(),
        successor: String::new(),
    })
    .await
    .unwrap();
    let e = x
        .oryx(&s(&[
            "ceremony",
            "rotate-producer",
            "resume",
            "--dir",
            second.to_str().unwrap(),
        ]))
        .unwrap_err();
    assert!(e.contains("stale"), "{e}");
    assert!(!second.join("regproducer.json").exists());
}

/// The signer's approval request id a ceremony directory recorded.
fn request_id(dir: &Path) -> String {
    let t: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("transcript.json")).unwrap())
            .unwrap();
    t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["step"] == "approval-requested")
        .map(|e| e["data"]["request_id"].as_str().unwrap().to_string())
        .unwrap()
}

/// A regproducer of the ceremonies' producer naming `key`, signed by its active permission.
fn regproducer_naming(key: &PublicKey) -> Transaction {
    let expiration = oryx_proto::antelope::TimePointSec(oryx_signer::clock::now_secs().0 + 600);
    serde_json::from_value(json!({
        "expiration": expiration.to_string(), "ref_block_num": 1, "ref_block_prefix": 2,
        "actions": [{"account": "eosio", "name": "regproducer",
            "authorization": [{"actor": PRODUCER, "permission": "active"}],
            "data": {"producer": PRODUCER, "producer_key": key.to_string(),
                     "url": "https://oryx.invalid", "location": 0}}]}))
    .unwrap()
}

/// Without a transcript key (`[audit] signing_key`) a ceremony's transcript could never be
/// signed: every ceremony says so before it generates or signs anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ceremony_without_a_transcript_key_generates_and_signs_nothing() {
    let mut x = Setup::new(PRODUCER_RULES);
    let cfg = config_path(x.dir.path());
    let text = std::fs::read_to_string(&cfg).unwrap();
    // No signing_key; its [[keys]] entry becomes an ordinary key (chains = [] is refused then).
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("signing_key = "))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            &format!(
                "public_key = \"{}\"\nbackend = \"hsm\"\nchains = []",
                x.audit
            ),
            &format!(
                "public_key = \"{}\"\nbackend = \"hsm\"\nchains = [\"main\"]",
                x.audit
            ),
        );
    assert_ne!(text, without);
    std::fs::write(&cfg, without).unwrap();
    x.signer.stop();
    x.signer = Signer::start(x.dir.path(), &[("SOFTHSM2_CONF", x.conf.to_str().unwrap())]);
    let current = x.path("get_account.json");
    let auth = json!({"threshold": 1, "keys": [{"key": x.acct.to_string(), "weight": 1}], "accounts": [], "waits": []});
    std::fs::write(
        &current,
        json!({"account_name": PRODUCER, "permissions": [
            {"perm_name": "active", "parent": "owner", "required_auth": auth},
            {"perm_name": "owner", "parent": "", "required_auth": auth}]})
        .to_string(),
    )
    .unwrap();
    let mut producer = x.rotation_args(&x.path("rot"), "producer-2");
    producer.extend(x.tx_args());
    let mut auth = x.owner_rotation_args(&x.path("own"), &current);
    auth.extend(s(&["--new-key", &x.old.to_string()]));
    for args in [producer, auth] {
        let e = x.oryx(&args).unwrap_err();
        assert!(e.contains("no [audit] signing_key"), "{e}");
    }
    assert!(!x.path("rot").exists() && !x.path("own").exists());
    assert!(!x.token_labels().iter().any(|(l, _)| l == "producer-2"));
    assert!(
        !x.audit_kinds()
            .iter()
            .any(|(k, d)| k == "sign_transaction" && d == "signed")
    );
}

const OWNER_RULES: &str = r#"
[[rule]]
name = "owner"
principals = ["node1"]
keys = ["{ACCT}"]
kinds = ["transaction"]
actions = ["eosio::updateauth@oryxproducer@owner"]
updateauth = { accounts = ["oryxproducer"], permissions = ["owner"] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_rotation_refuses_bad_authorities_before_signing() {
    let x = Setup::new(OWNER_RULES);
    // The chain: owner and active are the account key (held by the signer).
    let outsider = approver(x.dir.path(), 9).key.public_key();
    let current = x.carried_account("get_account.json", &x.acct);
    let cdir = x.path("owner");
    let rotate = |extra: &[String]| {
        let mut a = x.owner_rotation_args(&cdir, &current);
        a.extend(extra.iter().cloned());
        x.oryx(&a)
    };
    let authority_file = |name: &str, v: Value| {
        let p = x.path(name);
        std::fs::write(&p, v.to_string()).unwrap();
        vec!["--authority".to_string(), p.display().to_string()]
    };
    let mut keys = [x.acct, x.old];
    keys.sort_by_key(|k| k.packed());
    let kw = |k: &PublicKey, w: u16| json!({"key": k.to_string(), "weight": w});

    let unsorted = authority_file(
        "unsorted.json",
        json!({"threshold": 1, "keys": [kw(&keys[1], 1), kw(&keys[0], 1)]}),
    );
    let e = rotate(&unsorted).unwrap_err();
    assert!(e.contains("out of order"), "{e}");
    let weak = authority_file(
        "weak.json",
        json!({"threshold": 3, "keys": [kw(&keys[0], 1), kw(&keys[1], 1)]}),
    );
    let e = rotate(&weak).unwrap_err();
    assert!(e.contains("below the threshold"), "{e}");
    let e = rotate(&s(&["--new-key", &outsider.to_string()])).unwrap_err();
    assert!(e.contains("lock-out"), "{e}");
    let e = rotate(&s(&["--new-key", &outsider.to_string(), "--dry-run"])).unwrap_err();
    assert!(e.contains("lock-out"), "a dry run checks the same: {e}");
    // The transcript key signs only transcripts: it never counts as a key the team can use.
    let e = rotate(&s(&["--new-key", &x.audit.to_string()])).unwrap_err();
    assert!(e.contains("lock-out"), "{e}");
    // Nothing was written or signed.
    assert!(!cdir.exists());
    assert!(
        !x.audit_kinds()
            .iter()
            .any(|(k, d)| k == "sign_transaction" && d == "signed"),
        "{:?}",
        x.audit_kinds()
    );

    // A held 2-of-2 passes: signed, verifiable.
    let good = authority_file(
        "good.json",
        json!({"threshold": 2, "keys": [kw(&keys[0], 1), kw(&keys[1], 1)]}),
    );
    let d = rotate(&[good.clone(), s(&["--dry-run"])].concat()).unwrap();
    assert_eq!(
        d["would_sign"][0]["decoded"]["actions"][0]["name"],
        "updateauth"
    );
    assert!(!cdir.exists());
    let done = rotate(&good).unwrap();
    assert_eq!(done["status"], "signed", "{done}");
    let (trx, _, _) = check_signed_file(&cdir.join("updateauth.json"), &x.acct);
    assert_eq!(
        trx.actions[0].authorization[0].to_string(),
        "oryxproducer@owner"
    );
    let v = verify_transcript(&cdir.join("transcript.json"), &x.audit, &x.signer);
    assert_eq!(v["kind"], "rotate-auth");

    // The next rotation is signed by the owner key the last one installed (here the producer
    // key stands in for it), which the policy does not know yet: refused up front, before a key
    // is generated, saying what the signature would be refused for.
    let later = x.carried_account("get_account_later.json", &x.old);
    let next = x.path("owner-next");
    let mut a = x.owner_rotation_args(&next, &later);
    let at = a.iter().position(|v| v == "--signing-key").unwrap();
    a[at + 1] = x.old.to_string();
    a.extend(s(&[
        "--generate-label",
        "owner-2",
        "--backend",
        "hsm",
        "--chain",
        "main",
    ]));
    for dry in [true, false] {
        let mut args = a.clone();
        if dry {
            args.push("--dry-run".into());
        }
        let e = x.oryx(&args).unwrap_err();
        assert!(
            e.contains("would refuse to sign updateauth") && e.contains("POLICY_DENIED"),
            "{e}"
        );
    }
    assert!(!next.exists());
    assert!(
        !x.token_labels().iter().any(|(l, _)| l == "owner-2"),
        "no key generated"
    );
}

const OWNER_APPROVAL_RULES: &str = r#"
[[rule]]
name = "owner"
principals = ["node1"]
keys = ["{ACCT}"]
kinds = ["transaction"]
actions = ["eosio::updateauth@oryxproducer@owner"]
updateauth = { accounts = ["oryxproducer"], permissions = ["owner"] }
approvals = { threshold = 2, approvers = ["{A0}", "{A1}", "{A2}"], set = "owners" }
"#;

/// An owner rotation that will not finish is aborted: its pending request is cancelled (no
/// approval releases it), the key it generated is retired, and resume refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_owner_rotation_leaves_no_key_and_no_open_request() {
    let x = Setup::new(OWNER_APPROVAL_RULES);
    let current = x.carried_account("get_account.json", &x.acct);
    let dir = x.path("owner");
    let mut a = x.owner_rotation_args(&dir, &current);
    a.extend(s(&[
        "--generate-label",
        "owner-2",
        "--backend",
        "hsm",
        "--chain",
        "main",
    ]));
    let w = x.oryx(&a).unwrap();
    assert_eq!(w["status"], "waiting-for-approvals", "{w}");
    let generated = x
        .token_labels()
        .into_iter()
        .find(|(l, _)| l == "owner-2")
        .map(|(_, k)| k)
        .unwrap();
    let verb = |v: &str| {
        x.oryx(&s(&[
            "ceremony",
            "rotate-auth",
            v,
            "--dir",
            dir.to_str().unwrap(),
        ]))
    };
    let aborted = verb("abort").unwrap();
    assert_eq!(aborted["status"], "aborted", "{aborted}");
    assert_eq!(aborted["retired"], generated.as_str());
    let e = x
        .oryx(&s(&[
            "approve",
            "--yes",
            &request_id(&dir),
            "--key-file",
            x.approvers[0].file.to_str().unwrap(),
        ]))
        .unwrap_err();
    assert!(e.contains("cancelled"), "{e}");
    let e = verb("resume").unwrap_err();
    assert!(e.contains("aborted"), "{e}");
    // The generated key is retired: the signer no longer lists it.
    let mut c = x.signer.client("node1").await;
    let keys = c
        .list_keys(grpc::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(!keys.iter().any(|k| k.public_key == generated));
    let v = verify_transcript(&dir.join("transcript.json"), &x.audit, &x.signer);
    assert_eq!(v["ok"], true, "{v}");
}

const MSIG_RULES: &str = r#"
[[rule]]
name = "propose"
principals = ["node1"]
keys = ["{OLD}"]
kinds = ["transaction"]
actions = ["eosio.msig::propose@oryxcustody1@active", "eosio.msig::exec@oryxcustody1@active"]

[[rule]]
name = "approve"
principals = ["node1"]
keys = ["{ACCT}"]
kinds = ["transaction"]
actions = ["eosio.msig::approve@oryxcustody1@active"]
approvals = { threshold = 2, approvers = ["{A0}", "{A1}", "{A2}"], set = "custodians" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msig_propose_and_approve_under_custody_approvals() {
    let x = Setup::new(MSIG_RULES);
    let expires = TimePointSec(oryx_signer::clock::now_secs().0 + 7 * 24 * 3600);
    let proposed = x.path("proposed.json");
    std::fs::write(
        &proposed,
        json!({"expiration": expires.to_string(), "ref_block_num": 0, "ref_block_prefix": 0,
            "actions": [{"account": "eosio.token", "name": "transfer",
                "authorization": [{"actor": "oryxcustody1", "permission": "active"}],
                "data": {"from": "oryxcustody1", "to": "exchangeacct", "quantity": "10.0000 EOS", "memo": "payout"}}]})
        .to_string(),
    )
    .unwrap();
    // Two custody keys: the proposer's signs proposals alone, the approver's needs 2 of 3.
    let (proposer_key, approver_key) = (x.old, x.acct);
    let common = |dir: &str, key: &PublicKey| {
        let mut a = s(&[
            "--dir",
            x.path(dir).to_str().unwrap(),
            "--signing-key",
            &key.to_string(),
        ]);
        a.extend(x.tx_args());
        a
    };
    let mut propose = s(&[
        "ceremony",
        "msig",
        "propose",
        "--proposer",
        "oryxcustody1",
        "--proposal-name",
        "payout",
        "--requested",
        "oryxcustody1@active",
        "--trx",
        proposed.to_str().unwrap(),
    ]);
    propose.extend(common("propose", &proposer_key));
    let p = x.oryx(&propose).unwrap();
    assert_eq!(p["status"], "signed", "{p}");
    check_signed_file(&x.path("propose/propose.json"), &proposer_key);

    let mut approve = s(&[
        "ceremony",
        "msig",
        "approve",
        "--proposer",
        "oryxcustody1",
        "--proposal-name",
        "payout",
        "--level",
        "oryxcustody1@active",
        "--proposal",
        proposed.to_str().unwrap(),
    ]);
    approve.extend(common("approve", &approver_key));
    let w = x.oryx(&approve).unwrap();
    assert_eq!(w["status"], "waiting-for-approvals", "{w}");
    let id = w["request_id"].as_str().unwrap().to_string();
    let resume = s(&[
        "ceremony",
        "msig",
        "resume",
        "--dir",
        x.path("approve").to_str().unwrap(),
    ]);
    // One approval: no signature.
    let request = x.path("approve/request-approve.json");
    let a0 = x.offline_approval(0, request.to_str().unwrap());
    let one = x
        .oryx(&[resume.clone(), s(&["--approval", a0.to_str().unwrap()])].concat())
        .unwrap();
    assert_eq!(one["status"], "waiting-for-approvals", "{one}");
    assert!(!x.path("approve/approve.json").exists());
    // A forged approval file (another request's digest) is refused before it is submitted.
    let forged = x.path("forged.json");
    let other_digest = Checksum256::hash(b"another request");
    let sig = oryx_signer::signing::sign(
        &oryx_signer::backend::soft::SoftKey::new(x.approvers[2].key.clone()),
        &other_digest,
        Default::default(),
    )
    .unwrap()
    .signature;
    std::fs::write(
        &forged,
        json!({"id": id, "signature": sig.to_string()}).to_string(),
    )
    .unwrap();
    let e = x
        .oryx(&[resume.clone(), s(&["--approval", forged.to_str().unwrap()])].concat())
        .unwrap_err();
    assert!(e.contains("does not come from an approver"), "{e}");
    // The second: signed.
    x.online_approval(1, &id);
    let done = x.oryx(&resume).unwrap();
    assert_eq!(done["status"], "signed", "{done}");
    let (trx, _, _) = check_signed_file(&x.path("approve/approve.json"), &approver_key);
    let proposal_trx: Transaction =
        serde_json::from_str(&std::fs::read_to_string(&proposed).unwrap()).unwrap();
    match trx.actions[0].system_action() {
        Some(Ok(oryx_proto::antelope::SystemAction::Approve(a))) => {
            assert_eq!(
                a.proposal_hash,
                Some(proposal_trx.id()),
                "pinned to the proposal"
            )
        }
        other => panic!("{other:?}"),
    }
    let v = verify_transcript(&x.path("approve/transcript.json"), &x.audit, &x.signer);
    assert_eq!(v["kind"], "msig-approve");

    // exec, signed by the proposer's key (its rule needs no approvals).
    let mut exec = s(&[
        "ceremony",
        "msig",
        "exec",
        "--proposer",
        "oryxcustody1",
        "--proposal-name",
        "payout",
        "--executer",
        "oryxcustody1",
    ]);
    exec.extend(common("exec", &proposer_key));
    let e = x.oryx(&exec).unwrap();
    assert_eq!(e["status"], "signed", "{e}");
    let (trx, _, _) = check_signed_file(&x.path("exec/exec.json"), &proposer_key);
    assert_eq!(trx.actions[0].name.to_string(), "exec");
    verify_transcript(&x.path("exec/transcript.json"), &x.audit, &x.signer);

    // unapprove and cancel: built and shown by a dry run (no rule allows them here).
    for (verb, extra) in [
        ("unapprove", ["--level", "oryxcustody1@active"]),
        ("cancel", ["--canceler", "oryxcustody1"]),
    ] {
        let mut cmd = s(&[
            "ceremony",
            "msig",
            verb,
            "--proposer",
            "oryxcustody1",
            "--proposal-name",
            "payout",
            extra[0],
            extra[1],
        ]);
        cmd.extend(common(verb, &approver_key));
        cmd.push("--dry-run".into());
        let d = x.oryx(&cmd).unwrap();
        let action = &d["would_sign"][0]["decoded"]["actions"][0];
        assert_eq!(action["account"], "eosio.msig", "{d}");
        assert_eq!(action["name"], verb, "{d}");
        assert!(!x.path(verb).exists(), "a dry run writes nothing");
    }
}
