//! Runs `tests/js/wharfkit-check.mjs` (an independent Antelope implementation, `@wharfkit/antelope`
//! from npm) on a JSON document and returns its answer. Installs the npm dependencies on first
//! use (`npm ci`), so `cargo test` works on a fresh machine that has Node.js.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Once;

use serde_json::Value;

static INSTALL: Once = Once::new();

fn ensure_installed() {
    let dir = crate::workspace_root().join("tests/js");
    INSTALL.call_once(|| {
        if dir.join("node_modules/@wharfkit/antelope").is_dir() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|e| {
                panic!("npm is required for the wharfkit cross-check (install Node.js): {e}")
            });
        assert!(status.success(), "npm ci in {} failed", dir.display());
    });
}

/// Sends `input` to the script and returns its output document.
pub fn check(input: &Value) -> Value {
    ensure_installed();
    let script = crate::workspace_root().join("tests/js/wharfkit-check.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node is required for the wharfkit cross-check: {e}"));
    let body = serde_json::to_vec(input).expect("serialize input");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&body)
        .expect("write to node");
    let out = child.wait_with_output().expect("node output");
    assert!(
        out.status.success(),
        "wharfkit-check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("wharfkit-check printed invalid JSON: {e}"))
}
