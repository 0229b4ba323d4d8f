//! The audit log as an operator and an outside auditor see it: only the public API, the file on
//! disk, and the hash rule as the module docs state it, re-implemented here independently.

use std::process::Command;
use std::sync::Arc;

use oryx_signer::audit::{
    AuditDecision, AuditKind, AuditLog, AuditRecord, GENESIS_PREV, Position, VerifyError, verify,
    verify_against,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

fn tricky(i: u32) -> AuditRecord {
    AuditRecord {
        key: Some("PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63".into()),
        chain_id: Some("aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906".into()),
        digest: Some(format!("{i:064x}")),
        position: Some(Position {
            block_num: i,
            slot: 2 * i,
        }),
        // Everything that could confuse a textual rule: quotes, backslashes, an escaped newline,
        // non-ASCII, and the hash member's own opening bytes.
        reason: Some(format!("r{i}: \"q\" \\ \n é ,\"hash\":\"x")),
        policy_version: Some("7".into()),
        latency_us: u64::from(i) * 10,
        ..AuditRecord::new("node-1", AuditKind::SignBlock, AuditDecision::Refused)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn an_outside_tool_can_reverify_with_the_documented_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path).expect("open");
    let refs: Vec<_> = (0..4)
        .map(|i| log.append(tricky(i)).expect("append"))
        .collect();
    drop(log);

    let bytes = std::fs::read(&path).expect("read");
    assert!(bytes.ends_with(b"\n"));
    let mut prev = GENESIS_PREV.to_owned();
    for (n, line) in bytes
        .strip_suffix(b"\n")
        .expect("newline")
        .split(|&b| b == b'\n')
        .enumerate()
    {
        let text = std::str::from_utf8(line).expect("utf-8");
        let v: Value = serde_json::from_str(text).expect("json");
        // hash = sha256(line up to the last `,"hash":"`, then `}`)
        let cut = text.rfind(",\"hash\":\"").expect("hash member");
        let want = sha256_hex(format!("{}}}", &text[..cut]).as_bytes());
        assert_eq!(v["hash"], Value::String(want.clone()), "line {}", n + 1);
        assert_eq!(v["prev"], Value::String(prev.clone()), "line {}", n + 1);
        assert_eq!(v["seq"], Value::from(n), "line {}", n + 1);
        assert_eq!(refs[n].hash, want);
        prev = sha256_hex(line);
    }

    let report = verify(&path).expect("verify");
    assert_eq!(report.entries, 4);
    assert_eq!(report.last().as_ref(), refs.last());
}

#[test]
fn the_documented_shell_rule_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path).expect("open");
    let refs: Vec<_> = (0..3)
        .map(|i| log.append(tricky(i)).expect("append"))
        .collect();
    // The snippet from the module docs, once per line: `hash prev-of-next`.
    let script = r#"while IFS= read -r L; do
  h=$(printf '%s}' "${L%,\"hash\":\"*}" | sha256sum | cut -d' ' -f1)
  n=$(printf '%s' "$L" | sha256sum | cut -d' ' -f1)
  echo "$h $n"
done < "$1""#;
    let out = match Command::new("bash")
        .args(["-c", script, "audit"])
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipping: no bash ({e})");
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let rows: Vec<(&str, &str)> = stdout
        .lines()
        .map(|l| l.split_once(' ').expect("two columns"))
        .collect();
    assert_eq!(rows.len(), 3);
    for (i, (hash, _)) in rows.iter().enumerate() {
        assert_eq!(*hash, refs[i].hash);
    }
    // The next line's prev is the sha256 of the previous line's bytes.
    let text = std::fs::read_to_string(&path).expect("read");
    for (i, line) in text.lines().enumerate().skip(1) {
        let v: Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["prev"], Value::String(rows[i - 1].1.to_owned()));
    }
}

#[test]
fn appends_from_many_threads_chain_and_anchor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let log = Arc::new(AuditLog::open(&path).expect("open"));
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..25u32)
                    .map(|i| log.append(tricky(t * 25 + i)).expect("append"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut refs: Vec<_> = threads
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    refs.sort_by_key(|r| r.seq);
    assert_eq!(
        refs.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..200).collect::<Vec<_>>()
    );
    assert_eq!(log.entry_count(), 200);
    assert!(log.fsync_count() >= 1 && log.fsync_count() <= 200);
    drop(log);

    // Every returned ref is an anchor the file satisfies.
    for r in [&refs[0], &refs[99], &refs[199]] {
        verify_against(&path, r).expect("anchor");
    }

    // Cutting the last line off is invisible to the file alone, not to the anchor.
    let text = std::fs::read_to_string(&path).expect("read");
    let keep = text[..text.len() - 1].rfind('\n').expect("two lines") + 1;
    std::fs::write(&path, &text[..keep]).expect("write");
    assert_eq!(verify(&path).expect("still a chain").entries, 199);
    assert!(matches!(
        verify_against(&path, &refs[199]),
        Err(VerifyError::AnchorMissing {
            seq: 199,
            entries: 199
        })
    ));

    // `open` checks only the last line, so the cut file reopens and the chain goes on from
    // there: catching the cut is the off-host anchor's job, as above.
    let log = AuditLog::open(&path).expect("reopen");
    assert_eq!(log.append(tricky(0)).expect("append").seq, 199);
}
