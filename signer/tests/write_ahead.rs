//! Write-ahead mode (`[watermarks] write_ahead`, the default) under SIGKILL at each step of a
//! block signature: after the store reserved (in memory), after the write-ahead
//! entry is durable (before the backend signs), and after the outcome is written (before the
//! answer leaves). A machine crash is simulated by putting back the watermark file as it was on
//! disk before the request (what an unsynced write may leave): start-up must raise it from the
//! log. In every case no different block is ever signed at the interrupted height, and the log
//! says what happened.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use oryx_proto::antelope::PublicKey;
use oryx_tests::harness::*;
use serde_json::Value;

/// The single watermark file of a fresh signer directory.
fn watermark_file(dir: &Path) -> PathBuf {
    let wm = dir.join("watermarks");
    std::fs::read_dir(&wm)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wm"))
        .expect("a watermark file")
}

/// A signer that pauses any signing request at `step`, and the file the pause creates.
fn pausing_signer(dir: &Path, step: &str) -> (Signer, PathBuf) {
    let marker = dir.join(format!("paused-{step}"));
    let _ = std::fs::remove_file(&marker);
    let pause = format!("{step}:{}", marker.display());
    let signer = Signer::start(dir, &[("ORYX_TEST_PAUSE_AT", pause.as_str())]);
    (signer, marker)
}

/// Waits until a request has reached its pause (`marker` exists).
async fn paused(marker: &Path) {
    for _ in 0..500 {
        if marker.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the request never reached {}", marker.display());
}

/// Starts the signer paused at `step`, sends block `h` (variant 0), waits until the request
/// is there, SIGKILLs the signer; the client sees an error.
async fn kill_at(dir: &Path, key: &PublicKey, step: &str, h: u32) {
    let (mut signer, marker) = pausing_signer(dir, step);
    let mut c = signer.client("node1").await;
    let key = *key;
    let request = tokio::spawn(async move { sign_block(&mut c, &key, &savanna(h, h, 0)).await });
    paused(&marker).await;
    signer.kill();
    assert!(
        request.await.unwrap().is_err(),
        "killed at {step}: no answer left the signer"
    );
}

/// The entries about height `h`.
fn at_height(entries: &[Value], h: u32) -> Vec<&Value> {
    entries
        .iter()
        .filter(|e| e["position"]["block_num"] == h)
        .collect()
}

fn decisions(entries: &[&Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["decision"].as_str().unwrap().to_string())
        .collect()
}

/// One block signed and a clean stop: the watermark file is synced and checkpointed.
async fn signed_base(dir: &Path, key: &PublicKey, h: u32) {
    let mut signer = Signer::start(dir, &[]);
    let mut c = signer.client("node1").await;
    sign_block(&mut c, key, &savanna(h, h, 0)).await.unwrap();
    signer.stop();
}

/// After the restart: a different block at `h` is refused, `h + 1` signs.
async fn conflicting_refused(signer: &Signer, key: &PublicKey, h: u32) {
    let mut c = signer.client("node1").await;
    let e = sign_block(&mut c, key, &savanna(h, h, 1))
        .await
        .expect_err("a different block at the interrupted height");
    assert_eq!(
        oryx_signer::client::reason(&e).as_deref(),
        Some("DOUBLE_SIGN"),
        "{e:?}"
    );
    sign_block(&mut c, key, &savanna(h + 1, h + 1, 0))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_each_step_leaves_the_height_reserved_and_on_record() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let key = first_key(dir.path());
    let mut h = now_slot();
    signed_base(dir.path(), &key, h).await;

    // 1. After the store reserved (in memory), before the write-ahead entry: nothing on record
    // and nothing signed, so the height is free: another block there signs, once.
    h += 2;
    kill_at(dir.path(), &key, "store-reserved", h).await;
    let signer = Signer::start(dir.path(), &[]);
    assert!(at_height(&signer.audit_entries(), h).is_empty());
    let mut c = signer.client("node1").await;
    sign_block(&mut c, &key, &savanna(h, h, 1)).await.unwrap();
    let e = sign_block(&mut c, &key, &savanna(h, h, 0))
        .await
        .expect_err("a second block at one height");
    assert_eq!(
        oryx_signer::client::reason(&e).as_deref(),
        Some("DOUBLE_SIGN")
    );
    drop(signer);

    // 2. After the write-ahead entry is durable, before the backend signs: start-up closes it
    // with an `unreleased` entry naming it.
    h += 2;
    kill_at(dir.path(), &key, "reserved", h).await;
    let signer = Signer::start(dir.path(), &[]);
    let entries = signer.audit_entries();
    let here = at_height(&entries, h);
    assert_eq!(decisions(&here), ["reserved", "unreleased"], "{here:#?}");
    assert_eq!(here[1]["intent"], here[0]["seq"]);
    assert_eq!(here[0]["reserved"]["scope"], key.to_string());
    assert!(
        here[1]["reason"]
            .as_str()
            .unwrap()
            .contains("no signature was released")
    );
    conflicting_refused(&signer, &key, h).await;
    drop(signer);

    // 3. After the outcome is written, before the answer: the outcome survives the process,
    // nothing is marked unreleased, and an identical retry gets that very signature back.
    h += 2;
    kill_at(dir.path(), &key, "answered", h).await;
    let signer = Signer::start(dir.path(), &[]);
    let entries = signer.audit_entries();
    let here = at_height(&entries, h);
    assert_eq!(decisions(&here), ["reserved", "signed"], "{here:#?}");
    assert_eq!(here[1]["intent"], here[0]["seq"]);
    let mut c = signer.client("node1").await;
    let again = sign_block(&mut c, &key, &savanna(h, h, 0)).await.unwrap();
    assert_eq!(
        again.signature.unwrap().text,
        here[1]["signature"].as_str().unwrap(),
        "the identical retry gets the signature on record"
    );
    conflicting_refused(&signer, &key, h).await;
    drop(signer);

    // 4. The file as it was on disk before the request put back (whatever a crash of the
    // machine leaves): the log's write-ahead entry raises it at start-up.
    h += 2;
    signed_base(dir.path(), &key, h).await;
    let file = watermark_file(dir.path());
    let on_disk = std::fs::read(&file).unwrap();
    h += 2;
    kill_at(dir.path(), &key, "reserved", h).await;
    std::fs::write(&file, &on_disk).unwrap();
    // Before any restart, the offline tools see the log's reservation, not the stale file.
    let cfg = config_path(dir.path());
    let shown = run(&["watermark", "show", "-c", cfg.to_str().unwrap()], &[]);
    assert!(shown.contains(&format!("block {h} ")), "{shown}");
    let exported = run(&["watermark", "export", "-c", cfg.to_str().unwrap()], &[]);
    let exported: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(exported[0]["block_num"], h, "{exported}");
    let signer = Signer::start(dir.path(), &[]);
    let here_count = at_height(&signer.audit_entries(), h).len();
    assert_eq!(here_count, 2, "reserved, then unreleased");
    conflicting_refused(&signer, &key, h).await;
    let mut signer = signer;
    signer.stop();

    run(
        &["audit", "verify", signer.audit_path().to_str().unwrap()],
        &[],
    );
}

/// With `write_ahead = false` the signer keeps two syncs and writes no write-ahead entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sync_mode_writes_one_entry_per_signature() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let text = std::fs::read_to_string(config_path(dir.path())).unwrap();
    std::fs::write(
        config_path(dir.path()),
        text.replacen("[watermarks]\n", "[watermarks]\nwrite_ahead = false\n", 1),
    )
    .unwrap();
    let key = first_key(dir.path());
    let h = now_slot();
    let signer = Signer::start(dir.path(), &[]);
    let mut c = signer.client("node1").await;
    sign_block(&mut c, &key, &savanna(h, h, 0)).await.unwrap();
    let entries = signer.audit_entries();
    let here = at_height(&entries, h);
    assert_eq!(decisions(&here), ["signed"]);
    assert!(here[0].get("intent").is_none());
}

/// The offline and start-up paths an operator meets after a crash: `watermark import` sees the
/// log's reservations before it compares (so it will not lower the height a crashed signer
/// reserved, even with the watermark file behind it), and `start` refuses a log that does not
/// continue where the write-ahead checkpoint says (an older copy put back), saying what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_after_a_crash_and_a_replaced_log_are_handled_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let key = first_key(dir.path());
    let cfg = config_path(dir.path());
    let cfg = cfg.to_str().unwrap();
    let mut h = now_slot();
    signed_base(dir.path(), &key, h).await;
    let file = watermark_file(dir.path());
    let on_disk = std::fs::read(&file).unwrap();

    // A crash after the write-ahead entry, the file as the disk had it before the request.
    h += 4;
    kill_at(dir.path(), &key, "reserved", h).await;
    std::fs::write(&file, &on_disk).unwrap();
    let exported = run(&["watermark", "export", "-c", cfg], &[]);
    let mut records: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(records[0]["block_num"], h, "{records}");
    // Importing one height below the crashed reservation (above the stale file) is refused.
    records[0]["block_num"] = Value::from(h - 1);
    records[0]["slot"] = Value::from(h - 1);
    let lower = dir.path().join("lower.json");
    std::fs::write(&lower, records.to_string()).unwrap();
    let err = run_refused(&["watermark", "import", "-c", cfg, lower.to_str().unwrap()]);
    assert!(err.contains("would lower"), "{err}");
    let signer = Signer::start(dir.path(), &[]);
    conflicting_refused(&signer, &key, h).await;
    let mut signer = signer;
    signer.stop();

    // An older copy of the log put back: start refuses, naming the checkpoint.
    let log = signer.audit_path();
    let text = std::fs::read_to_string(&log).unwrap();
    let older: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&log, older).unwrap();
    let err = run_refused(&["start", "-c", cfg]);
    assert!(
        err.contains("where the write-ahead checkpoint") && err.contains("Put the log back"),
        "{err}"
    );
    // Putting it back lets it start again.
    std::fs::write(&log, text).unwrap();
    drop(Signer::start(dir.path(), &[]));
}

/// A signing request stuck inside the signer (here: paused after its write-ahead entry, as a
/// hung disk or device would hold it) stalls no other client: a new connection's handshake,
/// `Status` and `ListKeys` are answered meanwhile, and so is another signing request (refused:
/// a key no rule gives the client). The stuck request comes after a second and a half without
/// any, so the signer's watchdog (started by an earlier request) has gone to sleep and must be
/// woken by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_signing_request_stalls_no_other_client() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let key = first_key(dir.path());
    let h = now_slot();
    let (mut signer, marker) = pausing_signer(dir.path(), "reserved");
    let mut c = signer.client("node1").await;
    c.status(oryx_proto::grpc::StatusRequest {}).await.unwrap();
    // A signing request that stops before the watermark (where the test's pause would hold it
    // too): a key no rule gives this client. It runs inline and starts the watchdog.
    let stranger =
        oryx_proto::antelope::PrivateKey::from_bytes(oryx_proto::antelope::KeyType::K1, [7; 32])
            .unwrap()
            .public_key();
    let refusal = |e: tonic::Status| {
        assert_eq!(
            oryx_signer::client::reason(&e).as_deref(),
            Some("POLICY_DENIED")
        )
    };
    refusal(
        sign_block(&mut c, &stranger, &savanna(h, h, 2))
            .await
            .expect_err("a key no rule allows"),
    );
    // An idle server (its workers parked, one of them on the I/O driver; the watchdog asleep
    // after about a second) is where a request run on its worker would take the only poller of
    // every other connection with it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let stuck = tokio::spawn(async move { sign_block(&mut c, &key, &savanna(h, h, 0)).await });
    paused(&marker).await;
    // Generous bounds: a stalled server would not answer for the pause's 600 s.
    let within = Duration::from_secs(20);
    for round in 0..3 {
        let answered = tokio::time::timeout(within, async {
            let mut other = signer.client("node1").await;
            other
                .status(oryx_proto::grpc::StatusRequest {})
                .await
                .unwrap();
            other
                .list_keys(oryx_proto::grpc::ListKeysRequest {})
                .await
                .unwrap();
        })
        .await;
        assert!(
            answered.is_ok(),
            "round {round}: stalled behind the stuck request"
        );
    }
    // Another signing request meanwhile (handed off: one is in flight) is answered with its
    // refusal.
    refusal(
        tokio::time::timeout(within, async {
            let mut other = signer.client("node1").await;
            sign_block(&mut other, &stranger, &savanna(h, h, 1)).await
        })
        .await
        .expect("stalled behind the stuck request")
        .expect_err("a key no rule allows"),
    );
    signer.kill();
    assert!(stuck.await.unwrap().is_err());
}
