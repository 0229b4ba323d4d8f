//! A full disk, for real: the signer's directory is a small tmpfs, filled to the last byte while
//! the daemon runs. Signatures are then refused UNAVAILABLE with the cause named (nothing is
//! released without its audit entry), `/readyz` fails, and once the filler is deleted the same
//! daemon — no restart — signs again, puts the outage on record, and the audit chain verifies.
//!
//! Mounting needs root (CI runs as root); elsewhere the test says it was skipped.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use oryx_tests::harness::*;

/// A tmpfs mounted for the test, unmounted on drop (after the daemon that uses it is gone).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `dir` with one file until a write fails for lack of space.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5au8; 4096];
    for _ in 0..1_000_000 {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // The last partial page too: byte by byte until nothing more fits.
    for _ in 0..4096 {
        if f.write_all(&[0]).is_err() {
            break;
        }
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_then_heals_without_restart() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("signer");
    let Some(mount) = Tmpfs::mount(&dir, "8m") else {
        eprintln!(
            "a_full_disk_refuses_then_heals_without_restart: skipped (mounting a tmpfs needs root)"
        );
        return;
    };
    init(&dir, true);
    let key = first_key(&dir);
    let mut signer = Signer::start(&dir, &[]);
    let metrics = signer.metrics.clone().unwrap();
    let mut c = signer.client("node1").await;
    let n = now_slot();
    sign_block(&mut c, &key, &savanna(n, n, 0)).await.unwrap();
    assert_eq!(http_get(&metrics, "/readyz").0, 200);

    let filler = fill(&dir);
    // The audit log's last page may still hold a few lines; then no signature leaves without
    // its audit entry: refused, with the cause in the message.
    let mut h = n;
    let mut failed = 0;
    while failed < 3 {
        h += 1;
        assert!(h < n + 64, "64 signatures on a full disk");
        let Err(err) = sign_block(&mut c, &key, &savanna(h, h, 0)).await else {
            assert_eq!(
                failed, 0,
                "signed after a refusal while the disk is still full"
            );
            continue;
        };
        failed += 1;
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
        assert!(
            err.message().contains("No space left on device"),
            "{}",
            err.message()
        );
        assert!(err.message().contains("by itself"), "{}", err.message());
    }
    let (code, body) = http_get(&metrics, "/readyz");
    assert_eq!(code, 503, "{body}");

    // Space is back: the same process signs again, with no restart.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(http_get(&metrics, "/readyz").0, 200);
    sign_block(&mut c, &key, &savanna(h + 1, h + 1, 0))
        .await
        .unwrap();
    // Heights reserved during the outage stay reserved: a different block there is refused.
    let err = sign_block(&mut c, &key, &savanna(h, h, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    signer.stop();

    // The outage is on record, and the chain is whole.
    let entries = signer.audit_entries();
    let recovered: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["kind"] == "audit_log")
        .collect();
    assert_eq!(recovered.len(), 1, "{entries:#?}");
    assert_eq!(recovered[0]["decision"], "recovered");
    let reason = recovered[0]["reason"].as_str().unwrap();
    assert!(reason.contains("No space left on device"), "{reason}");
    // Each refused request is one or two refused appends: its write-ahead entry and its outcome
    // (the first may have had its write-ahead entry written before the disk filled).
    let refused: u32 = reason
        .split(" appends were refused")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{reason}"));
    assert!((5..=6).contains(&refused), "{reason}");
    // Every write-ahead entry has its outcome on record, including one whose own outcome the
    // full disk refused (written once the log took writes again).
    for r in entries.iter().filter(|e| e["decision"] == "reserved") {
        let outcomes: Vec<_> = entries.iter().filter(|e| e["intent"] == r["seq"]).collect();
        assert_eq!(outcomes.len(), 1, "{r}: {outcomes:#?}");
    }
    run(
        &["audit", "verify", signer.audit_path().to_str().unwrap()],
        &[],
    );
    drop(signer);
    drop(mount);
}
