//! The `oryx` binary as an operator uses it: stable JSON field names, one-line errors with a
//! non-zero exit, keys that never appear in an error.

use std::process::Command;

use serde_json::Value;

const EOS_BLOCK: &str = "b24e565d703055c744e47236000017e44efb304a3d81378887b7f1e9cff1b4c2f7a065f5368b337a69bed5f57addf196c51b021c50ea09b482e09e00ab1ecf7207535c13089d20b003455faaca988bf47442736dc9d7ac73580d5f936a8fc0f6d09580687d305cd1cd4c564a1159000000800001020007fb4ee417010000";
const EOS_SIG: &str = "SIG_K1_K3JYzkSiRLkWmWcbsELQJkaFnZHNVqegvrqgZjwpF45StmRUquUz4wjpSuxZC9Pv6uHrSzr1mpdXuA4MhXAM368FDC1kZp";
const TELOS_BLOCK: &str = "d65c565d60b0c634aaac32dd00001603f6a9fd5379e902f4cbce964b088aa44bc42001301b7da2c4fac64070356e000000000000000000000000000000000000000000000000000000000000000012276ff214cef1b78426f63f9e0d6256204119a077d7df4bc4032a0d6eef1508441800000000";
const ACTIVATE_TRX: &str = "06e10b5e02005132b41600000000010000000000ea30550000002a9bed3232010000000000ea305500000000a8ed3232201a99a59d87e06e09ec5b028a9cbb7749b4a5ad8819004365d02dc4379a8b724100";
const TESTER_CHAIN: &str = "44423079ed372a4dda0bf89c3a594df409eaa8c1535451b7d5ca6a3d7a376912";
const DEV_WIF: &str = "5JUCZstnDNUiqamXsks6H9Cvvpum4K8EVtP3Nhqrz4s16cHQ3C7";

fn oryx(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oryx"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out, err) = oryx(&all);
    assert!(ok, "oryx {args:?} failed: {err}");
    serde_json::from_str(&out).expect("JSON output")
}

fn fails(args: &[&str]) -> String {
    let (ok, out, err) = oryx(args);
    assert!(!ok, "oryx {args:?} should fail, printed {out}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    err
}

#[test]
fn inspect_savanna_block() {
    let v = json(&["inspect", "block", EOS_BLOCK]);
    assert_eq!(v["block_num"], 400838396);
    assert_eq!(
        v["id"],
        "17e44efcfcd9cb439ab93de5f1e4328c4d02382281da17f0478f6f2810ee4789"
    );
    assert_eq!(v["producer"], "atticlabeosb");
    assert_eq!(v["timestamp"], "2024-10-23T03:17:45.000");
    assert_eq!(v["kind"], "savanna");
    assert_eq!(v["sig_digest"], v["id"]);
    assert!(v["slot"].is_u64());
    // A signed header: the producer's key is recovered.
    let sig = oryx_proto::antelope::Signature::parse(EOS_SIG).expect("sig");
    let signed = format!("{EOS_BLOCK}00{}", hex::encode(sig.as_bytes()));
    let v = json(&["inspect", "block", &signed]);
    assert_eq!(
        v["signing_key"],
        "PUB_K1_7PfA3A4UdfMu2wKbuXdbHn8EWAxbMnFoFWui4X2zsr2oMi7LPX"
    );
}

#[test]
fn inspect_legacy_block_needs_both_extra_inputs() {
    let v = json(&["inspect", "block", TELOS_BLOCK]);
    assert_eq!(v["kind"], "legacy");
    assert!(v["sig_digest"].is_null());
    let v = json(&[
        "inspect",
        "block",
        TELOS_BLOCK,
        "--blockroot-merkle",
        "a7570402c625d8500e3e308a39181f7b4f934f0256c776e66adb7adce18b526a",
        "--schedule-hash",
        "2c561d0eb30c1029fbd4b2e33f6c590de2e4b07420516db3139846cca7ac3893",
    ]);
    assert_eq!(
        v["sig_digest"],
        "5367740c163dec693bb53c0f9c3e2a0e7f6e9c3d40f7e4b953843e1639aacf30"
    );
    let (ok, _, _) = oryx(&["inspect", "block", TELOS_BLOCK, "--schedule-hash", "00"]);
    assert!(!ok, "one extra input without the other is a usage error");
}

#[test]
fn inspect_tx_hex_and_json_and_sign_round_trip() {
    let v = json(&["inspect", "tx", "--chain-id", TESTER_CHAIN, ACTIVATE_TRX]);
    assert_eq!(
        v["id"],
        "aa30bc93a59737ce708fd4d691b61d7858bfb309c4cf883e77a6a161b5a4abe5"
    );
    assert_eq!(
        v["sig_digest"],
        "48a9a716e1606729e967780bd4699e2487f3acc972c2c61ad62f8f7d7f51a473"
    );
    assert_eq!(v["actions"][0]["account"], "eosio");
    assert_eq!(v["actions"][0]["authorization"][0], "eosio@active");

    let dir = tempfile::tempdir().expect("tmp");
    let trx = dir.path().join("t.json");
    std::fs::write(
        &trx,
        r#"{"expiration":"2026-11-21T12:00:00","ref_block_num":1,"ref_block_prefix":2,
            "actions":[{"account":"eosio.token","name":"transfer","authorization":[{"actor":"alice","permission":"active"}],
            "data":{"from":"alice","to":"bob","quantity":"1.0000 EOS","memo":"hi"}}]}"#,
    )
    .expect("write");
    let v = json(&[
        "inspect",
        "tx",
        "--chain-id",
        "eos",
        trx.to_str().expect("path"),
    ]);
    assert_eq!(v["chain"], "eos");
    assert_eq!(v["actions"][0]["data"]["quantity"], "1.0000 EOS");
    assert_eq!(
        v["actions"][0]["data_hex"],
        "0000000000855c340000000000000e3d102700000000000004454f5300000000026869"
    );

    let key = dir.path().join("key");
    std::fs::write(&key, format!("{DEV_WIF}\n")).expect("write");
    let digest = v["sig_digest"].as_str().expect("digest");
    let (ok, sig, err) = oryx(&[
        "sign-digest",
        "--key-file",
        key.to_str().expect("path"),
        digest,
    ]);
    assert!(ok, "{err}");
    assert!(sig.trim().starts_with("SIG_K1_"));
    let v = json(&["inspect", "sig", sig.trim(), "--digest", digest]);
    assert_eq!(
        v["legacy"],
        "EOS5P52UyPoYL7vMiSREPvqxh6WebuMAunCMK4w53J7Gu6zmk4qyN"
    );
    assert_eq!(v["canonical"], true);
}

#[test]
fn key_convert_and_generate() {
    let v = json(&["key", "convert", DEV_WIF]);
    assert_eq!(v["kind"], "private");
    assert_eq!(
        v["public_key"],
        "PUB_K1_5P52UyPoYL7vMiSREPvqxh6WebuMAunCMK4w53J7Gu6zrTunYm"
    );
    assert_eq!(
        v["private_key"],
        "PVT_K1_euzCSh8uujaaPFqZRCC6ToiE5qrBG9n5KG9Xo7kC1Mw3zxK2L"
    );
    let v = json(&[
        "key",
        "convert",
        "PUB_R1_8E46r5HiQF84o6V8MWQQg1vPpgfjYA4XDqT6xbtaaebxw7XbLu",
    ]);
    assert_eq!(v["type"], "R1");
    assert!(v["legacy"].is_null());
    let v = json(&["key", "generate", "--r1"]);
    assert!(
        v["private_key"]
            .as_str()
            .expect("pvt")
            .starts_with("PVT_R1_")
    );
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("k");
    let v = json(&["key", "generate", "--out", out.to_str().expect("path")]);
    assert!(
        v.get("private_key").is_none(),
        "with --out the private key is not printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&out).expect("file").permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn bad_input_is_one_line_and_never_echoes_a_key() {
    fails(&["inspect", "block", "zz"]);
    fails(&["inspect", "block", "00"]);
    fails(&["inspect", "tx", "--chain-id", "nochain", ACTIVATE_TRX]);
    fails(&["inspect", "tx", "--chain-id", "eos", "0102"]);
    fails(&["inspect", "sig", "SIG_K1_abc", "--digest", "00"]);
    fails(&[
        "key",
        "convert",
        "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CW",
    ]);
    let bad_wif = "5JUCZstnDNUiqamXsks6H9Cvvpum4K8EVtP3Nhqrz4s16cHQ3C8";
    let err = fails(&["key", "convert", bad_wif]);
    assert!(!err.contains(&bad_wif[4..30]), "{err}");
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("key");
    std::fs::write(&key, bad_wif).expect("write");
    let err = fails(&[
        "sign-digest",
        "--key-file",
        key.to_str().expect("path"),
        &"00".repeat(32),
    ]);
    assert!(!err.contains(&bad_wif[4..30]), "{err}");
}

/// Block 2 of leap v5.0.3's deep-mind chain, which the ACTIVATE_TRX above references
/// (ref_block_num 2, ref_block_prefix 380908113).
const LEAP_BLOCK_2_ID: &str = "0000000213588be25132b4167ced6df22b5439e376d5a20284190bb94a43e3e8";
const LEAP_BLOCK_3_ID: &str = "00000003ffc4d414883accbbe91f60218a47d4c1e1914fd6ebcc2051150df719";

fn get_info() -> Value {
    serde_json::json!({
        "server_version": "d133c641",
        "chain_id": TESTER_CHAIN,
        "head_block_num": 3,
        "head_block_id": LEAP_BLOCK_3_ID,
        "head_block_time": "2020-01-01T00:00:01.500",
        "last_irreversible_block_num": 2,
        "last_irreversible_block_id": LEAP_BLOCK_2_ID,
    })
}

#[test]
fn tapos_from_carried_json() {
    let dir = tempfile::tempdir().expect("tmp");
    let info = dir.path().join("info.json");
    std::fs::write(&info, get_info().to_string()).expect("write");
    let path = info.to_str().expect("path");

    let v = json(&["tapos", path]);
    assert_eq!(v["chain_id"], TESTER_CHAIN);
    assert_eq!(v["ref_block_num"], 2);
    assert_eq!(v["ref_block_prefix"], 380_908_113u32);
    assert_eq!(v["ref_block_id"], LEAP_BLOCK_2_ID);
    assert_eq!(v["expiration"], "2020-01-01T01:00:01");
    // The very fields of a real transaction that references block 2.
    let trx = oryx_proto::antelope::transaction::Transaction::decode(
        &hex::decode(ACTIVATE_TRX).expect("hex"),
    )
    .expect("decodes");
    assert_eq!(v["ref_block_num"], trx.ref_block_num);
    assert_eq!(v["ref_block_prefix"], trx.ref_block_prefix);

    let head = json(&["tapos", path, "--head", "--expire-in", "60"]);
    assert_eq!(head["ref_block_num"], 3);
    assert_eq!(head["ref_block_prefix"], 0xbbcc_3a88u32);
    assert_eq!(head["expiration"], "2020-01-01T00:01:01");

    let text = oryx(&["tapos", path]).1;
    assert!(text.contains("ref_block_prefix: 380908113"), "{text}");

    // get_block works too, and carries no chain id.
    let block = dir.path().join("block.json");
    std::fs::write(
        &block,
        serde_json::json!({"id": LEAP_BLOCK_2_ID, "block_num": 2, "timestamp": "2020-01-01T00:00:00.500", "ref_block_prefix": 380_908_113u32}).to_string(),
    )
    .expect("write");
    let b = json(&["tapos", block.to_str().expect("path"), "--expire-in", "6"]);
    assert_eq!(b["chain_id"], Value::Null);
    assert_eq!(b["expiration"], trx.expiration.to_string());

    // Lifetime bounds: nodeos refuses more than an hour; a proposal may live longer.
    let err = fails(&["tapos", path, "--expire-in", "3601"]);
    assert!(err.contains("max_transaction_lifetime"), "{err}");
    let long = json(&["tapos", path, "--msig", "--expire-in", "86400"]);
    assert_eq!(long["expiration"], "2020-01-02T00:00:01");
    fails(&["tapos", path, "--expire-in", "0"]);

    // An edited answer is refused.
    let mut edited = get_info();
    edited["last_irreversible_block_num"] = serde_json::json!(1);
    std::fs::write(&info, edited.to_string()).expect("write");
    let err = fails(&["tapos", path]);
    assert!(err.contains("encodes block 2"), "{err}");
    fails(&[
        "tapos",
        dir.path().join("missing.json").to_str().expect("path"),
    ]);
}

/// `oryx inspect block … | head` (as the demo runs it): a reader that leaves early is not an
/// error — exit 0, nothing on stderr (it used to panic with "failed printing to stdout").
#[test]
fn a_reader_that_leaves_early_is_not_an_error() {
    let mut oryx = Command::new(env!("CARGO_BIN_EXE_oryx"));
    oryx.args(["inspect", "block", EOS_BLOCK]);
    let out = with_reader_gone(oryx);
    assert!(out.status.success(), "{:?}", out.status);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` with its stdout a pipe whose read end is closed before the command writes (its
/// write then fails with EPIPE).
fn with_reader_gone(mut cmd: Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    drop(child.stdout.take());
    child.wait_with_output().expect("waits")
}

/// The same for `oryx-signer` (and `oryx-node`, which installs the same hook): `init` prints
/// several lines into a pipe whose reader is gone — exit 0, no panic on stderr.
#[test]
fn oryx_signer_exits_quietly_when_its_reader_leaves() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut init = Command::new(env!("CARGO_BIN_EXE_oryx-signer"));
    init.arg("init").arg(dir.path().join("signer")).arg("--dev");
    let out = with_reader_gone(init);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}
