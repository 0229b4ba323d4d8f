//! `oryx-signer bench` against a running signer, as an operator runs it: its comparison with
//! the reference signer (issue 14) picks what the reference signs with from the key's backend —
//! the same token key for a PKCS#11 key (K1 and P-256), an in-memory K1 key for a software one
//! — and prints every line with its ratio and target. Small counts: this checks that it runs
//! and says what it compared, not how fast anything is.
#![cfg(feature = "pkcs11")]
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use oryx_tests::harness::*;

/// Runs a short bench for `key` (or the first key) and returns its output.
fn bench(dir: &Path, key: Option<&str>, env: &[(&str, &str)]) -> String {
    let cfg = config_path(dir);
    let mut cmd = Command::new(bin());
    cmd.args(["bench", "-c", cfg.to_str().unwrap(), "--allow-public-chain"])
        .args([
            "--blocks",
            "10",
            "--transactions",
            "10",
            "--concurrency",
            "2",
        ])
        .args(["--rounds", "1", "--block", "5", "--clients", "2"])
        .args(["--per-client", "3"])
        .envs(env.iter().copied());
    if let Some(k) = key {
        cmd.args(["--key", k]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The comparison's lines, each with its ratio and verdict.
fn assert_compared(out: &str, signs_with: &str) {
    let header = out
        .lines()
        .find(|l| l.starts_with("against the reference"))
        .unwrap_or_else(|| panic!("no comparison: {out}"));
    assert!(header.contains(signs_with), "{header}");
    for what in [
        "SignBlock p50 (reference: 2 syncs)",
        "SignBlock p99 (reference: 2 syncs)",
        "SignBlock p50, same design's minimum (1 sync)",
        "Status p50 (reference: bare echo)",
        "ListKeys p50 (reference: bare echo)",
        "SignTransaction, 2 clients, per s (reference: 1 sync)",
    ] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(what))
            .unwrap_or_else(|| panic!("no line {what:?}: {out}"));
        assert!(
            line.ends_with(" ok") || line.ends_with("ABOVE TARGET"),
            "{line}"
        );
    }
    let mean = out
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("SignBlock mean, same design's minimum")
        })
        .unwrap_or_else(|| panic!("no mean line: {out}"));
    assert!(mean.ends_with("(no target)"), "{mean}");
}

#[test]
fn token_keys_are_compared_with_a_reference_signing_on_the_same_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, false);
    let conf = softhsm_backend(d, "bench");
    let env = [("SOFTHSM2_CONF", conf.to_str().unwrap())];
    let k1 = hsm_key(d, &conf, "k1", false);
    let r1 = hsm_key(d, &conf, "r1", true);
    configure_hsm_keys(d, &[k1, r1], "[\"block\", \"transaction\"]", false);
    let signer = Signer::start(d, &env);
    // bench finds the signer at the address in the config.
    signer.pin_port();
    for key in [k1, r1] {
        let out = bench(d, Some(&key.to_string()), &env);
        assert_compared(
            &out,
            "signing with the product's own key through its backend",
        );
    }
}

#[test]
fn a_software_key_is_compared_with_an_in_memory_reference() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, true);
    let signer = Signer::start(d, &[]);
    signer.pin_port();
    let out = bench(d, None, &[]);
    assert_compared(&out, "signing with an in-memory K1 key");
}
