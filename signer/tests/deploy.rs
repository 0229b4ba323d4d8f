//! The example configuration in `deploy/` parses and passes every check, so it never goes stale.
#![allow(clippy::unwrap_used)]

use std::path::Path;

#[test]
fn example_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/oryx-signer.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = oryx_signer::config::Config::parse(&text, Path::new("/etc/oryx"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(config.keys.len(), 3, "producer, active and transcript keys");
    let registry = config
        .registry
        .as_ref()
        .expect("the example keeps a key registry");
    assert!(registry.path.is_absolute());
    assert!(config.audit.signing_key.is_some(), "transcripts are signed");
    assert!(
        !config.allow_soft_keys,
        "the production example must not allow software keys"
    );
    assert_eq!(config.server.ca_cert, Path::new("/etc/oryx/tls/ca.pem"));
    assert!(config.observability.unwrap().listen.ip().is_loopback());
}

#[test]
fn systemd_unit_runs_the_example_config() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/oryx-signer.service"),
    )
    .unwrap();
    assert!(unit.contains(
        "ExecStart=/usr/local/bin/oryx-signer start --config /etc/oryx/oryx-signer.toml"
    ));
    assert!(
        unit.contains("LimitCORE=0"),
        "no core dumps of a process holding PINs"
    );
}

#[test]
fn policy_check_accepts_the_example_and_names_the_line_of_an_error() {
    let bin = env!("CARGO_BIN_EXE_oryx-signer");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/policy.toml");
    let out = std::process::Command::new(bin)
        .args(["policy", "check", "--strict", example.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 rule(s), 0 warning(s)"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("kinds = [\"transaction\"]", "kinds = [\"transfers\"]");
    std::fs::write(&bad, text).unwrap();
    let out = std::process::Command::new(bin)
        .args(["policy", "check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("line"), "the error names the line: {err}");

    // A risky policy passes plain `check` with warnings, and fails `--strict`.
    let risky = dir.path().join("risky.toml");
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("principals = [\"ops-console\"]", "principals = [\"*\"]");
    std::fs::write(&risky, text).unwrap();
    let out = std::process::Command::new(bin)
        .args(["policy", "check", risky.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("warning"));
    let out = std::process::Command::new(bin)
        .args(["policy", "check", "--strict", risky.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn policy_explain_names_the_deciding_rule() {
    let bin = env!("CARGO_BIN_EXE_oryx-signer");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/policy.toml");
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("req.json");
    let request = |quantity: &str| {
        format!(
            r#"{{"principal": "ops-console", "key": "PUB_R1_6EPHFSKVYHBjQgxVGQPrwCxTg7BbZ69H9i4gztN9deKTEXYne4", "chain_id": "eos", "now": "2026-11-21T12:00:00",
               "transaction": {{"expiration": "2026-11-21T12:30:00", "ref_block_num": 1, "ref_block_prefix": 2,
               "actions": [{{"account": "eosio.token", "name": "transfer", "authorization": [{{"actor": "oryxcustody1", "permission": "active"}}],
               "data": {{"from": "oryxcustody1", "to": "exchangeacct", "quantity": "{quantity}", "memo": ""}}}}]}}}}"#
        )
    };
    let explain = |quantity: &str| {
        std::fs::write(&req, request(quantity)).unwrap();
        let out = std::process::Command::new(bin)
            .args([
                "policy",
                "explain",
                example.to_str().unwrap(),
                "--request",
                req.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let over = explain("6000.0000 EOS");
    assert!(
        over.contains("\"bp-node-blocks\" (line 8): skipped"),
        "{over}"
    );
    assert!(
        over.contains("decided by transfer.max_per_tx") && over.contains("6000.0000 EOS"),
        "{over}"
    );
    let within = explain("4000.0000 EOS");
    assert!(
        within.contains("needs 2 of 3 approvals from set \"custodians\""),
        "{within}"
    );
}

#[test]
fn example_ha_replica_config_parses_and_its_etcd_member_has_the_required_settings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ha/oryx-signer-a.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = oryx_signer::config::Config::parse(&text, Path::new("/etc/oryx"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let groups = config.producer_groups().unwrap();
    assert_eq!(groups.len(), 1, "the producer's keys share one watermark");
    assert_eq!(groups[0].keys.len(), 2);
    let etcd = config.watermarks.etcd.expect("the HA example uses etcd");
    assert_eq!(etcd.endpoints.len(), 3, "three etcd members");
    assert!(etcd.endpoints.iter().all(|e| e.starts_with("https://")));
    assert_eq!(etcd.replica, "signer-a");
    assert_eq!(etcd.ca_cert, Path::new("/etc/oryx/etcd/ca.pem"));
    // The etcd member example carries what the README's HA section requires.
    let member = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ha/etcd-member.yml"),
    )
    .unwrap();
    for required in [
        "client-cert-auth: true",
        "pre-vote: true",
        "auto-compaction-mode:",
        "quota-backend-bytes:",
    ] {
        assert!(
            member.contains(required),
            "etcd-member.yml lacks {required}"
        );
    }
    assert!(!member.contains("http://"), "members speak TLS only");
}
