//! The README's walk-through, run as written: every ```sh block under its "## Walk-through"
//! heading, in order, with `bash -euo pipefail` in an empty directory and the built binaries on
//! `PATH` — a SoftHSM2 signer set up from scratch, a producer-key rotation with offline
//! approvals, and a custody payout with online approvals. A README edit that breaks a command
//! breaks this test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use oryx_proto::antelope::PublicKey;
use oryx_tests::harness::sibling_bin;

const HEADING: &str = "## Walk-through";

/// The ```sh blocks of the section that starts with [`HEADING`], concatenated.
fn walk_through(readme: &str) -> String {
    let start = readme
        .find(&format!("\n{HEADING}"))
        .expect("the README has a walk-through section");
    let section = &readme[start + 1..];
    let end = section[HEADING.len()..]
        .find("\n## ")
        .map_or(section.len(), |i| i + HEADING.len());
    let mut script = String::new();
    let mut in_block = false;
    for line in section[..end].lines() {
        match (in_block, line.trim_end()) {
            (false, "```sh") => in_block = true,
            (true, "```") => {
                in_block = false;
                script.push('\n');
            }
            (true, l) => {
                script.push_str(l);
                script.push('\n');
            }
            _ => {}
        }
    }
    assert!(!in_block, "an unclosed ```sh block in the walk-through");
    script
}

fn read(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

#[test]
fn the_readme_walk_through_runs_as_written() {
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("README.md"),
    )
    .unwrap();
    let script = walk_through(&readme);
    assert!(script.contains("oryx ceremony rotate-producer start"));
    assert!(script.contains("oryx approvals request"));
    let dir = tempfile::tempdir().unwrap();
    // Whatever happens, no process it started outlives it.
    let wrapped = format!("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}");
    std::fs::write(dir.path().join("walk-through.sh"), wrapped).unwrap();
    let bin = sibling_bin("oryx-signer");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "walk-through.sh"])
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("ORYX_SIGNER")
        .env_remove("SOFTHSM2_CONF")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the walk-through failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    // What the walk-through promises, checked on what it left behind.
    let d = dir.path();
    assert!(stdout.contains("status: complete"), "the rotation finished");
    assert!(stdout.contains("ok: true"), "the transcript verified");
    assert!(
        stdout.contains("audit.jsonl: ok:"),
        "the audit log verified"
    );
    let regproducer = read(d, "rot/regproducer.json");
    assert_eq!(regproducer["signatures"].as_array().unwrap().len(), 1);
    let payout = read(d, "payout-signed.json");
    assert_eq!(payout["signatures"].as_array().unwrap().len(), 1);
    // The old producer key is retired in the registry, its successor active.
    let registry = read(d, "signer/state/keys.json");
    let text = registry.to_string();
    assert!(
        text.contains("retired") && text.contains("producer-2"),
        "{text}"
    );
    // The CA key is not beside the running signer; bob's certificate is revoked in the
    // register, carol's issued.
    assert!(!d.join("signer/tls/ca.key").exists());
    assert!(d.join("signer-ca/ca.key").exists());
    let certs = read(d, "signer-ca/certs.json");
    let status = |name: &str| {
        certs
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["revoked"].is_null())
    };
    assert_eq!(status("bob"), Some(false), "{certs}");
    assert_eq!(status("alice"), Some(true), "{certs}");
    assert_eq!(status("carol"), Some(true), "{certs}");
    assert!(d.join("signer/tls/carol.pem").exists());
    // Every key the config names parses (the appended entries are real keys).
    let cfg = std::fs::read_to_string(d.join("signer/oryx-signer.toml")).unwrap();
    let keys: Vec<PublicKey> = cfg
        .lines()
        .filter_map(|l| l.strip_prefix("public_key = \""))
        .map(|k| PublicKey::parse(k.trim_end_matches('"')).unwrap())
        .collect();
    assert_eq!(keys.len(), 4, "{cfg}");
}
