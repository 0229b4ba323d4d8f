//! Write-ahead mode (`[watermarks] write_ahead`, on by default): one sync per block or digest
//! signature instead of two, with the audit log as the reservation's durable record.
//!
//! Guards:
//! - **Before the backend is asked**, the pipeline appends and syncs a write-ahead entry
//!   (decision `reserved`: who asked, key, chain, digest, position, and the watermark it
//!   reserved with the store's sequence number), after the store wrote the reservation without
//!   a sync. A signature exists only under a reservation that is on disk in the log.
//! - **Before the answer leaves**, its outcome (`signed`, `replayed`, `failed`, …, naming the
//!   write-ahead entry in `intent`) is written to the log — not yet synced: the next append, or
//!   the next checkpoint within [`CHECKPOINT_EVERY`], syncs it. It survives a crash of the
//!   signer's process at once, a crash of the machine after that sync.
//! - **Checkpoints** ([`checkpoint`]): sync the log, sync the watermark files written since,
//!   then record in `<watermark dir>/wal.checkpoint` the log position up to which every
//!   reservation is in a synced file.
//! - **Start-up** ([`recover`]): reads the log from the checkpoint on; raises each watermark to
//!   the newest reservation recorded there (a machine crash may have lost the file's unsynced
//!   write, never the log's synced entry); writes an `unreleased` entry for each write-ahead
//!   entry without an outcome (the signer stopped between reservation and answer, and since
//!   the outcome is written before any answer, none left — unless the machine itself went down
//!   within a checkpoint interval of answering, which the entry says); then a checkpoint.
//!
//! With etcd the reservation is durable in etcd already; the log's write-ahead entries there
//! serve only the `unreleased` accounting, and [`WatermarkStore::recover`] has nothing to do.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oryx_proto::antelope::{Checksum256, Signature};

use crate::audit::{AuditDecision, AuditEntry, AuditKind, AuditLog, AuditRecord, MAX_LINE};
use crate::watermark::{Watermark, WatermarkKey, WatermarkRecord, WatermarkStore};

/// How often the running signer checkpoints (and so syncs outcomes written since).
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The checkpoint file in the watermark directory.
pub const CHECKPOINT_FILE: &str = "wal.checkpoint";

/// The checkpoint file's fixed size.
const CHECKPOINT_BYTES: usize = 64;

/// Where the log was when every reservation before it was in a synced watermark file: the
/// `seq` of the next entry and the log's length in bytes then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// First entry not covered.
    pub seq: u64,
    /// Its offset in the log.
    pub len: u64,
}

impl Checkpoint {
    fn path(dir: &Path) -> PathBuf {
        dir.join(CHECKPOINT_FILE)
    }

    /// The file's text: `SEQ LEN CHECK`, CHECK the first 16 hex digits of SHA-256 of
    /// `SEQ LEN`, padded with spaces to a fixed [`CHECKPOINT_BYTES`] so that it is rewritten
    /// in place by one write within one sector.
    fn text(self) -> String {
        let body = format!("{} {}", self.seq, self.len);
        let check = &Checksum256::hash(body.as_bytes()).to_string()[..16];
        format!(
            "{:<width$}\n",
            format!("{body} {check}"),
            width = CHECKPOINT_BYTES - 1
        )
    }

    /// The checkpoint in `dir`, `None` if there is none (or it cannot be read or fails its
    /// check: then recovery reads the whole log, which is slower and as safe).
    pub fn read(dir: &Path) -> Option<Checkpoint> {
        let text = std::fs::read_to_string(Self::path(dir)).ok()?;
        let mut parts = text.split_whitespace();
        let cp = Checkpoint {
            seq: parts.next()?.parse().ok()?,
            len: parts.next()?.parse().ok()?,
        };
        (cp.text() == text).then_some(cp)
    }

    /// Rewrites the file in place and syncs it (created, and its directory synced, once).
    fn write(self, dir: &Path) -> Result<(), String> {
        use std::os::unix::fs::FileExt as _;
        let path = Self::path(dir);
        let fail = |e: std::io::Error| format!("write-ahead checkpoint {}: {e}", path.display());
        if !path.exists() {
            return crate::durable::write_atomic(&path, self.text().as_bytes(), 0o600)
                .map_err(|e| fail(e.source));
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(fail)?;
        file.write_all_at(self.text().as_bytes(), 0).map_err(fail)?;
        file.sync_data().map_err(fail)
    }
}

/// Syncs the log and the watermark files, then records the checkpoint and returns it — unless
/// `clear_below(seq)` says a write-ahead entry below the new position still waits for its
/// outcome (`None`: a checkpoint never passes one, so a crash before that outcome is still
/// found by the next start-up).
pub fn checkpoint(
    dir: &Path,
    audit: &AuditLog,
    store: &dyn WatermarkStore,
    clear_below: &dyn Fn(u64) -> bool,
) -> Result<Option<Checkpoint>, String> {
    // Every write-ahead entry below `seq` was appended after the store made its reservation (in
    // memory), so once the store is flushed below, the files hold all of them.
    let (seq, len) = audit.sync().map_err(|e| e.to_string())?;
    store.flush().map_err(|e| e.to_string())?;
    if !clear_below(seq) {
        return Ok(None);
    }
    let cp = Checkpoint { seq, len };
    cp.write(dir)?;
    Ok(Some(cp))
}

/// What [`recover`] found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Log entries read (from the checkpoint on).
    pub scanned: u64,
    /// Watermarks raised from write-ahead entries.
    pub raised: u64,
    /// Write-ahead entries without an outcome, now closed by an `unreleased` entry.
    pub unreleased: u64,
}

/// Start-up recovery (see the module docs). Run before serving, with the store and log open
/// (also by `watermark import`, which holds the store like the daemon).
pub fn recover(
    dir: &Path,
    audit: &AuditLog,
    store: &dyn WatermarkStore,
) -> Result<Recovered, String> {
    let path = audit.path();
    let fail = |what: String| format!("write-ahead recovery from {}: {what}", path.display());
    let scan = scan(dir, path, true)?;
    let mut found = Recovered {
        scanned: scan.scanned,
        ..Recovered::default()
    };
    for (key, (seq, w, _)) in &scan.newest {
        if store
            .recover(key, *seq, w)
            .map_err(|e| fail(e.to_string()))?
        {
            tracing::warn!(%key, block_num = w.block_num, "watermark raised from the audit log's write-ahead entry");
            found.raised += 1;
        }
    }
    for (seq, e) in scan.open {
        audit
            .append(unreleased(seq, e))
            .map_err(|e| fail(e.to_string()))?;
        found.unreleased += 1;
    }
    // Nothing is in flight before the signer serves.
    checkpoint(dir, audit, store, &|_| true).map_err(fail)?;
    Ok(found)
}

/// For a reader of the watermark files that must not write (`watermark show|export`, `migrate`
/// from a file store): `records` raised by the reservations the log holds beyond the
/// checkpoint in `dir` — which a running signer has not written to its files yet, or a crashed
/// one never did. A log that does not match the checkpoint is read whole.
pub fn with_pending(
    mut records: Vec<WatermarkRecord>,
    dir: &Path,
    audit_path: &Path,
) -> Result<Vec<WatermarkRecord>, String> {
    if !audit_path.exists() {
        return Ok(records);
    }
    for (key, (_, w, _)) in scan(dir, audit_path, false)?.newest {
        match records.iter_mut().find(|r| r.watermark_key() == key) {
            Some(r) => r.watermark = crate::watermark::cover(&r.watermark, &w),
            None => records.push(WatermarkRecord::new(&key, w)),
        }
    }
    records.sort_by_key(|r| (r.chain_id, r.scope));
    Ok(records)
}

/// What the log says from the checkpoint on.
struct Scan {
    scanned: u64,
    /// Write-ahead entries without an outcome, by `seq`.
    open: BTreeMap<u64, AuditEntry>,
    /// Per watermark: (store seq, watermark, seq of its write-ahead entry) of the newest
    /// reservation, with its signature when its outcome has one.
    newest: HashMap<WatermarkKey, (u64, Watermark, u64)>,
}

/// Reads the log at `path` from the checkpoint in `dir` on. A log that does not match the
/// checkpoint is an error when `strict` (start-up: it may be missing reservations), else read
/// whole.
fn scan(dir: &Path, path: &Path, strict: bool) -> Result<Scan, String> {
    let fail = |what: String| format!("write-ahead recovery from {}: {what}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let start = match Checkpoint::read(dir) {
        Some(cp) if starts_with_seq(&mut file, cp).unwrap_or(false) => cp,
        // The log is where reservations since the checkpoint are recorded: a log that is not
        // the one the checkpoint was taken on (moved, replaced, cut) may be missing them.
        Some(cp) if strict => {
            return Err(fail(format!(
                "the log has no entry {} at byte {} where the write-ahead checkpoint {} says it \
                 continues: it was replaced, moved or cut since. Put the log back; or, if the \
                 signer last stopped cleanly (its shutdown checkpoints everything), remove the \
                 checkpoint file and start again (the whole log is then read)",
                cp.seq,
                cp.len,
                Checkpoint::path(dir).display()
            )));
        }
        _ => Checkpoint { seq: 0, len: 0 },
    };
    file.seek(SeekFrom::Start(start.len))
        .map_err(|e| fail(e.to_string()))?;
    let mut reader = BufReader::new(file);
    let mut scan = Scan {
        scanned: 0,
        open: BTreeMap::new(),
        newest: HashMap::new(),
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = u64::try_from(MAX_LINE + 1).unwrap_or(u64::MAX);
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        // A line a running signer is writing right now ends a reader's scan; at start-up (the
        // log refuses to open on a torn tail) it can only be an over-long, damaged line.
        if !line.ends_with(b"\n") {
            if strict {
                return Err(fail(format!(
                    "entry after seq {}: no line end within {MAX_LINE} bytes",
                    start.seq + scan.scanned
                )));
            }
            break;
        }
        let entry: AuditEntry =
            serde_json::from_slice(line.strip_suffix(b"\n").unwrap_or(&line))
                .map_err(|e| fail(format!("entry after seq {}: {e}", start.seq + scan.scanned)))?;
        scan.scanned += 1;
        if let Some(intent) = entry.intent
            && let Some(reserved) = scan.open.remove(&intent)
        {
            // The signature goes back with the watermark, so an identical retry gets it.
            if let (Some(sig), Some((key, _, _))) = (&entry.signature, reservation(&reserved))
                && let Some(slot) = scan.newest.get_mut(&key).filter(|s| s.2 == intent)
            {
                slot.1.signature = Signature::parse(sig).ok();
            }
        }
        if entry.decision == AuditDecision::Reserved.as_str() {
            if let Some((key, seq, w)) = reservation(&entry) {
                let slot = scan.newest.entry(key).or_insert((seq, w, entry.seq));
                if seq > slot.0 {
                    *slot = (seq, w, entry.seq);
                }
            }
            scan.open.insert(entry.seq, entry);
        }
    }
    Ok(scan)
}

/// Whether the log's line at the checkpoint's offset is the checkpoint's entry.
fn starts_with_seq(file: &mut std::fs::File, cp: Checkpoint) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    if cp.len == len {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(cp.len))?;
    let prefix = format!("{{\"seq\":{},", cp.seq);
    let mut buf = vec![0u8; prefix.len()];
    file.read_exact(&mut buf)?;
    Ok(buf == prefix.as_bytes())
}

/// The watermark a write-ahead entry reserved.
fn reservation(e: &AuditEntry) -> Option<(WatermarkKey, u64, Watermark)> {
    let r = e.reserved?;
    let chain_id = Checksum256::from_hex(e.chain_id.as_deref()?).ok()?;
    let digest = Checksum256::from_hex(e.digest.as_deref()?).ok()?;
    let position = e.position?;
    let key = WatermarkKey {
        chain_id,
        scope: r.scope,
    };
    let w = Watermark {
        block_num: position.block_num,
        slot: position.slot,
        wall_slot: r.wall_slot,
        digest,
        signature: None,
    };
    Some((key, r.seq, w))
}

/// The entry that closes a write-ahead entry found without an outcome.
fn unreleased(seq: u64, e: AuditEntry) -> AuditRecord {
    AuditRecord {
        key: e.key,
        chain_id: e.chain_id,
        digest: e.digest,
        position: e.position,
        policy_version: e.policy_version,
        intent: Some(seq),
        reason: Some(format!(
            "reserved at entry {seq}, no outcome on record: the signer stopped between the \
             reservation and its answer, so no signature was released (an outcome is written \
             before every answer; only a crash of the machine within {} s of answering loses \
             it). The watermark stays at this reservation.",
            CHECKPOINT_EVERY.as_secs()
        )),
        ..AuditRecord::new(
            e.principal,
            AuditKind::parse(&e.kind).unwrap_or(AuditKind::SignDigest),
            AuditDecision::Unreleased,
        )
    }
}

/// Debug builds only, for the crash tests: with `ORYX_TEST_PAUSE_AT=STEP:FILE` in the
/// environment, the request that reaches `STEP` creates `FILE` and waits there (for the test's
/// SIGKILL). Release builds compile this to nothing.
pub fn pause_point(step: &str) {
    #[cfg(debug_assertions)]
    if let Ok(v) = std::env::var("ORYX_TEST_PAUSE_AT")
        && let Some((at, file)) = v.split_once(':')
        && at == step
    {
        let _ = std::fs::write(file, step);
        std::thread::sleep(Duration::from_secs(600));
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::{Position, Reserved};
    use crate::watermark::Scope;
    use crate::watermark::file::FileStore;
    use oryx_proto::antelope::KeyType;

    fn key() -> oryx_proto::antelope::PublicKey {
        use crate::backend::KeyBackend as _;
        *crate::backend::soft::SoftKey::generate(KeyType::K1)
            .unwrap()
            .public_key()
    }

    /// A write-ahead entry for block `n` of `key`, store seq `seq`.
    fn reserved(key: &oryx_proto::antelope::PublicKey, n: u32, seq: u64) -> AuditRecord {
        AuditRecord {
            key: Some(key.to_string()),
            chain_id: Some(Checksum256([7; 32]).to_string()),
            digest: Some(Checksum256([n as u8; 32]).to_string()),
            position: Some(Position {
                block_num: n,
                slot: n,
            }),
            reserved: Some(Reserved {
                scope: Scope::Key(*key),
                seq,
                wall_slot: 0,
            }),
            ..AuditRecord::new("node1", AuditKind::SignBlock, AuditDecision::Reserved)
        }
    }

    #[test]
    fn a_checkpoint_never_passes_an_entry_in_flight_and_recovery_closes_it() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(dir.path().join("audit.jsonl")).unwrap();
        let store = FileStore::open(dir.path().join("wm"))
            .unwrap()
            .write_ahead(true);
        let k = key();
        let intent = audit.append(reserved(&k, 10, 5)).unwrap();
        // The entry is in flight: the files are synced, the checkpoint does not move past it.
        let wm = dir.path().join("wm");
        assert_eq!(
            checkpoint(&wm, &audit, &store, &|seq| seq <= intent.seq).unwrap(),
            None
        );
        assert_eq!(Checkpoint::read(&wm), None);
        // A crash now: start-up raises the watermark from the log and closes the entry.
        drop(store);
        let store = FileStore::open(&wm).unwrap().write_ahead(true);
        let found = recover(&wm, &audit, &store).unwrap();
        assert_eq!((found.raised, found.unreleased), (1, 1));
        let wk = crate::watermark::WatermarkKey::of_key(Checksum256([7; 32]), k);
        use crate::watermark::WatermarkStore as _;
        assert_eq!(store.get(&wk).unwrap().unwrap().block_num, 10);
        // The checkpoint now stands after the closing entry: a second start reads nothing new.
        let cp = Checkpoint::read(&wm).unwrap();
        assert_eq!(cp.seq, intent.seq + 2);
        let again = recover(&wm, &audit, &store).unwrap();
        assert_eq!((again.scanned, again.raised, again.unreleased), (0, 0, 0));
        // A log that does not continue where the checkpoint says is refused at start-up.
        std::fs::write(audit.path(), b"").unwrap();
        let e = recover(&wm, &audit, &store).unwrap_err();
        assert!(e.contains("replaced, moved or cut"), "{e}");
    }

    #[test]
    fn the_checkpoint_file_round_trips_and_a_damaged_one_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint { seq: 42, len: 9000 };
        cp.write(dir.path()).unwrap();
        assert_eq!(Checkpoint::read(dir.path()), Some(cp));
        let cp2 = Checkpoint { seq: 43, len: 9100 };
        cp2.write(dir.path()).unwrap();
        assert_eq!(Checkpoint::read(dir.path()), Some(cp2));
        let path = dir.path().join(CHECKPOINT_FILE);
        let text = std::fs::read_to_string(&path).unwrap().replace("43", "44");
        std::fs::write(&path, text).unwrap();
        assert_eq!(Checkpoint::read(dir.path()), None);
    }
}
