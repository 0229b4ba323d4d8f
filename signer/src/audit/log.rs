//! [`AuditLog`]: the append side of the audit log, with group commit.
//!
//! Guards: `append` returns `Ok` only once its line is on disk (written and `fdatasync`ed);
//! lines reach the file in `seq` order with no gaps; one failed write or sync closes the log
//! for good (until restart), so no caller can go on without a trail.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use super::{
    AuditEntryRef, AuditError, AuditRecord, GENESIS_PREV, MAX_LINE, seal, sha256_hex, time,
    verify::check_line,
};

/// An open, append-only audit log. Share it (`Arc<AuditLog>`) between all request tasks and
/// call [`AuditLog::append`] from `spawn_blocking`: it blocks until the entry is durable.
pub struct AuditLog {
    path: PathBuf,
    /// Written only by the current leader (see [`State::leader`]), outside the lock.
    file: File,
    state: Mutex<State>,
    /// Signalled when a batch is durable or has failed.
    batch_done: Condvar,
    fsyncs: AtomicU64,
    entries: AtomicU64,
    /// Written into every entry: the replica this log belongs to.
    replica: Option<String>,
    #[cfg(test)]
    hooks: tests::Hooks,
}

/// Everything the appenders share, under one lock.
struct State {
    /// `seq` of the next entry to be queued.
    next_seq: u64,
    /// SHA-256 hex of the last queued line: the next entry's `prev`.
    prev: String,
    /// Queued lines (each with its `\n`) that no leader has taken yet.
    queued: Vec<u8>,
    /// How many lines `queued` holds.
    queued_entries: u64,
    /// Every entry with `seq < durable` is written and synced.
    durable: u64,
    /// A leader is writing a batch now (without the lock).
    leader: bool,
    /// The first write or sync failure; once set, nothing more is written.
    poisoned: Option<String>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("fsyncs", &self.fsync_count())
            .field("entries", &self.entry_count())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Names `replica` in every entry from now on (a signer replica's own log).
    pub fn with_replica(mut self, replica: Option<String>) -> Self {
        self.replica = replica;
        self
    }

    /// Opens the log at `path`, creating it (mode 0600, and syncing its directory) if missing.
    ///
    /// Only the last line is checked (it must be a valid entry with a correct `hash`), so that
    /// start-up does not grow with the log; run [`super::verify`] for the whole chain. Refuses a
    /// file that ends in a partial line, naming the offset to truncate to: cutting an audit log
    /// is the operator's decision, never the signer's.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |action: &'static str| {
            let path = path.clone();
            move |source| AuditError::Open {
                path,
                action,
                source,
            }
        };
        let (mut file, created) = match new_options().create_new(true).open(&path) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                (new_options().open(&path).map_err(open_err("open"))?, false)
            }
            Err(e) => return Err(open_err("create")(e)),
        };
        if created {
            sync_parent(&path).map_err(open_err("sync the directory of"))?;
        }
        let (next_seq, prev) = match read_tail(&mut file, &path)? {
            Some((seq, line_hash)) => {
                // A u64 of entries cannot be reached; refuse rather than wrap.
                let next = seq.checked_add(1).ok_or_else(|| AuditError::Poisoned {
                    path: path.clone(),
                    cause: "seq space exhausted".into(),
                })?;
                (next, line_hash)
            }
            None => (0, GENESIS_PREV.to_owned()),
        };
        Ok(AuditLog {
            path,
            file,
            state: Mutex::new(State {
                next_seq,
                prev,
                queued: Vec::new(),
                queued_entries: 0,
                durable: next_seq,
                leader: false,
                poisoned: None,
            }),
            batch_done: Condvar::new(),
            fsyncs: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            replica: None,
            #[cfg(test)]
            hooks: tests::Hooks::default(),
        })
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and returns once it is durable. Blocks: call from `spawn_blocking`.
    ///
    /// A malformed record is refused with [`AuditError::InvalidRecord`] and changes nothing. A
    /// write or sync failure returns [`AuditError::Write`] to the appender whose batch failed and
    /// poisons the log: that append and every later one fail until restart.
    pub fn append(&self, record: AuditRecord) -> Result<AuditEntryRef, AuditError> {
        // An over-long reason is cut, never the entry refused: the fact of a decision is kept.
        let record = record.clamped();
        record.validate()?;
        let mut st = self.lock()?;
        if let Some(cause) = &st.poisoned {
            return Err(self.poisoned(cause));
        }
        // Time under the lock, so that times follow seq order as long as the clock does.
        let time = time::rfc3339_micros(SystemTime::now()).ok_or(AuditError::Clock)?;
        let seq = st.next_seq;
        let next_seq = seq
            .checked_add(1)
            .ok_or_else(|| self.poisoned("seq space exhausted"))?;
        let (line, hash) = seal(seq, time, record, self.replica.as_deref(), &st.prev)?;
        // Nothing above changed the state: a refused record leaves no trace.
        st.prev = sha256_hex(&line);
        st.next_seq = next_seq;
        st.queued.extend_from_slice(&line);
        st.queued.push(b'\n');
        st.queued_entries += 1;
        loop {
            if st.durable > seq {
                return Ok(AuditEntryRef { seq, hash });
            }
            if let Some(cause) = &st.poisoned {
                return Err(self.poisoned(cause));
            }
            st = if st.leader {
                self.batch_done.wait(st).map_err(|_| self.lock_poisoned())?
            } else {
                self.lead(st)?
            };
        }
    }

    /// `Err` once the log refuses appends (after a failed write or sync), for `/readyz`.
    pub fn health(&self) -> Result<(), AuditError> {
        match &self.lock()?.poisoned {
            Some(cause) => Err(self.poisoned(cause)),
            None => Ok(()),
        }
    }

    /// How many `fdatasync`s this process has done on the log (one per batch).
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// How many entries this process has made durable.
    pub fn entry_count(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Becomes the leader: writes and syncs every queued line as one batch, without the lock,
    /// then records the outcome and wakes everyone. Returns with the lock held again.
    fn lead<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>, AuditError> {
        st.leader = true;
        #[cfg(test)]
        {
            st = self.hooks.gather(st, &self.batch_done);
        }
        let batch = std::mem::take(&mut st.queued);
        let count = std::mem::take(&mut st.queued_entries);
        // Every entry below next_seq is either durable already or in this batch.
        let end = st.next_seq;
        drop(st);

        let guard = LeaderGuard { log: self };
        let result = self.write_batch(&batch);
        std::mem::forget(guard);

        let mut st = self.lock()?;
        st.leader = false;
        let outcome = match result {
            Ok(()) => {
                st.durable = end;
                self.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.entries.fetch_add(count, Ordering::Relaxed);
                Ok(())
            }
            Err(source) => {
                st.poisoned = Some(source.to_string());
                Err(AuditError::Write {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        self.batch_done.notify_all();
        outcome.map(|()| st)
    }

    fn write_batch(&self, batch: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        self.hooks.before_write(&self.file, batch)?;
        (&self.file).write_all(batch)?;
        #[cfg(test)]
        self.hooks.before_sync()?;
        self.file.sync_data()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, AuditError> {
        self.state.lock().map_err(|_| self.lock_poisoned())
    }

    fn lock_poisoned(&self) -> AuditError {
        self.poisoned("an appender panicked")
    }

    fn poisoned(&self, cause: &str) -> AuditError {
        AuditError::Poisoned {
            path: self.path.clone(),
            cause: cause.to_owned(),
        }
    }
}

/// Closes the log if a leader unwinds mid-write, so followers wake up and fail instead of
/// waiting forever for a batch that will never finish. Forgotten on the normal path.
struct LeaderGuard<'a> {
    log: &'a AuditLog,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let mut st = match self.log.state.lock() {
            Ok(st) => st,
            Err(poisoned) => poisoned.into_inner(),
        };
        st.leader = false;
        st.poisoned
            .get_or_insert_with(|| "a write was interrupted by a panic".into());
        self.log.batch_done.notify_all();
    }
}

fn new_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o
}

/// Makes a new file's directory entry durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads and checks the last line: `Some((seq, sha256 of the line))`, or `None` if empty.
fn read_tail(file: &mut File, path: &Path) -> Result<Option<(u64, String)>, AuditError> {
    let read_err = |source| AuditError::Open {
        path: path.to_owned(),
        action: "read",
        source,
    };
    let len = file.metadata().map_err(read_err)?.len();
    if len == 0 {
        return Ok(None);
    }
    // The last line, its newline and the newline before it fit in MAX_LINE + 2 bytes.
    let window = u64::try_from(MAX_LINE)
        .unwrap_or(u64::MAX)
        .saturating_add(2);
    let start = len.saturating_sub(window);
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(start)).map_err(read_err)?;
    file.read_to_end(&mut buf).map_err(read_err)?;
    // Offset in the file of the line starting at buf[i].
    let at = |i: usize| start.saturating_add(u64::try_from(i).unwrap_or(u64::MAX));
    // Start of the line that holds buf[..end], if it begins inside the window.
    let line_start = |end: usize| match buf[..end].iter().rposition(|&b| b == b'\n') {
        Some(nl) => Some(nl + 1),
        None if start == 0 => Some(0),
        None => None,
    };
    let corrupt = |offset, problem| AuditError::CorruptTail {
        path: path.to_owned(),
        offset,
        problem,
    };

    let Some(body) = buf.strip_suffix(b"\n") else {
        return Err(match line_start(buf.len()) {
            Some(i) => AuditError::TornTail {
                path: path.to_owned(),
                offset: at(i),
            },
            None => corrupt(start, super::LineProblem::TooLong),
        });
    };
    let Some(i) = line_start(body.len()) else {
        return Err(corrupt(start, super::LineProblem::TooLong));
    };
    let line = &body[i..];
    let entry = check_line(line).map_err(|p| corrupt(at(i), p))?;
    Ok(Some((entry.seq, sha256_hex(line))))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::fs;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::audit::{
        AuditDecision, AuditKind, LineProblem, Position, VerifyError, verify, verify_bytes,
    };

    /// Test-only fault and scheduling injection.
    #[derive(Default)]
    pub(super) struct Hooks {
        /// The next leader waits (up to 30 s) until this many entries are queued before taking
        /// its batch; reset once used. Makes batching deterministic, independent of timing.
        gather: AtomicUsize,
        /// Fail the next write after writing only half the batch (a torn line on disk).
        fail_write: AtomicBool,
        /// Fail the next sync.
        fail_sync: AtomicBool,
    }

    impl Hooks {
        pub(super) fn gather<'a>(
            &self,
            mut st: MutexGuard<'a, State>,
            cv: &Condvar,
        ) -> MutexGuard<'a, State> {
            let want = self.gather.swap(0, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(30);
            while usize::try_from(st.queued_entries).unwrap() < want && Instant::now() < deadline {
                st = cv.wait_timeout(st, Duration::from_millis(1)).unwrap().0;
            }
            st
        }

        pub(super) fn before_write(&self, mut file: &File, batch: &[u8]) -> io::Result<()> {
            if self.fail_write.swap(false, Ordering::SeqCst) {
                file.write_all(&batch[..batch.len() / 2])?;
                return Err(io::Error::other("injected write failure"));
            }
            Ok(())
        }

        pub(super) fn before_sync(&self) -> io::Result<()> {
            if self.fail_sync.swap(false, Ordering::SeqCst) {
                return Err(io::Error::other("injected fsync failure"));
            }
            Ok(())
        }
    }

    fn record(i: u64) -> AuditRecord {
        AuditRecord {
            key: Some("PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63".into()),
            digest: Some(format!("{i:064x}")),
            position: Some(Position {
                block_num: u32::try_from(i).unwrap(),
                slot: 9,
            }),
            latency_us: i,
            ..AuditRecord::new("node-1", AuditKind::SignBlock, AuditDecision::Signed)
        }
    }

    fn temp() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        (dir, path)
    }

    #[test]
    fn append_then_reopen_continues_the_chain() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        for i in 0..3 {
            let r = log.append(record(i)).unwrap();
            assert_eq!(r.seq, i);
        }
        assert_eq!(log.entry_count(), 3);
        drop(log);

        let log = AuditLog::open(&path).unwrap();
        let r = log.append(record(3)).unwrap();
        assert_eq!(r.seq, 3);
        drop(log);

        let report = verify(&path).unwrap();
        assert_eq!(report.entries, 4);
        assert_eq!(report.last(), Some(r));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn empty_log_opens_and_verifies() {
        let (_dir, path) = temp();
        drop(AuditLog::open(&path).unwrap());
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.append(record(0)).unwrap().seq, 0);
        assert_eq!(verify(&path).unwrap().entries, 1);
    }

    #[test]
    fn bad_record_changes_nothing() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        let before = fs::read(&path).unwrap();
        let err = log
            .append(AuditRecord::new(
                "",
                AuditKind::SignBlock,
                AuditDecision::Signed,
            ))
            .unwrap_err();
        assert!(matches!(err, AuditError::InvalidRecord(_)), "{err}");
        assert_eq!(fs::read(&path).unwrap(), before);
        // Not poisoned, and no seq was used.
        assert_eq!(log.append(record(1)).unwrap().seq, 1);
        assert_eq!(verify(&path).unwrap().entries, 2);
        // A refusal whose reason is far too long (here 100 KB of multi-byte characters) is
        // recorded with the reason cut, not refused.
        let long = AuditRecord {
            reason: Some("é".repeat(50_000)),
            ..AuditRecord::new("p", AuditKind::SignBlock, AuditDecision::Refused)
        };
        assert_eq!(log.append(long).unwrap().seq, 2);
        let text = fs::read_to_string(&path).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        let reason = last["reason"].as_str().unwrap();
        assert!(reason.len() <= crate::audit::MAX_REASON, "{}", reason.len());
        assert!(reason.ends_with("(cut from 100000 bytes)"), "{reason}");
        assert_eq!(verify(&path).unwrap().entries, 3);
    }

    #[test]
    fn concurrent_appends_share_fsyncs() {
        const THREADS: u64 = 64;
        const EACH: u64 = 50;
        let (_dir, path) = temp();
        let log = Arc::new(AuditLog::open(&path).unwrap());
        // The first leader holds its batch until every thread has queued one entry, so at least
        // one batch has THREADS entries whatever the scheduler does.
        log.hooks
            .gather
            .store(usize::try_from(THREADS).unwrap(), Ordering::SeqCst);
        let start = Arc::new(Barrier::new(usize::try_from(THREADS).unwrap()));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let log = Arc::clone(&log);
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    (0..EACH)
                        .map(|i| log.append(record(t * EACH + i)).unwrap().seq)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..THREADS * EACH).collect::<Vec<_>>());
        assert_eq!(log.entry_count(), THREADS * EACH);
        assert!(
            log.fsync_count() <= THREADS * EACH - (THREADS - 1),
            "{} fsyncs for {} entries",
            log.fsync_count(),
            log.entry_count()
        );
        assert!(log.fsync_count() < log.entry_count());
        let report = verify(&path).unwrap();
        assert_eq!(report.entries, THREADS * EACH);
    }

    #[test]
    fn concurrent_appends_without_hooks_stay_consecutive() {
        let (_dir, path) = temp();
        let log = Arc::new(AuditLog::open(&path).unwrap());
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        log.append(record(t * 50 + i)).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(verify(&path).unwrap().entries, 400);
        assert!(log.fsync_count() <= 400);
    }

    fn assert_poisoned_forever(log: &AuditLog) {
        for i in 0..3 {
            let err = log.append(record(100 + i)).unwrap_err();
            assert!(matches!(err, AuditError::Poisoned { .. }), "{err}");
            assert!(err.to_string().contains("restart"), "{err}");
        }
    }

    #[test]
    fn failed_sync_poisons_the_log() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        log.hooks.fail_sync.store(true, Ordering::SeqCst);
        let err = log.append(record(1)).unwrap_err();
        assert!(matches!(err, AuditError::Write { .. }), "{err}");
        assert!(err.to_string().contains("injected fsync failure"), "{err}");
        // The hook fires once; the log stays closed anyway.
        assert_poisoned_forever(&log);
        assert_eq!(log.entry_count(), 1);
    }

    #[test]
    fn failed_write_poisons_the_log_and_the_torn_tail_blocks_restart() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        log.append(record(1)).unwrap();
        let good_len = fs::metadata(&path).unwrap().len();
        log.hooks.fail_write.store(true, Ordering::SeqCst);
        let err = log.append(record(2)).unwrap_err();
        assert!(matches!(err, AuditError::Write { .. }), "{err}");
        assert_poisoned_forever(&log);
        drop(log);

        // Half a line is on disk: open refuses, naming the offset to cut at.
        let err = AuditLog::open(&path).unwrap_err();
        match &err {
            AuditError::TornTail { offset, .. } => assert_eq!(*offset, good_len),
            other => panic!("{other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("oryx-signer audit verify"), "{msg}");
        assert!(msg.contains(&format!("truncate -s {good_len}")), "{msg}");
        // Nothing was cut by open.
        assert!(fs::metadata(&path).unwrap().len() > good_len);
        match verify(&path).unwrap_err() {
            VerifyError::Line {
                line: 3,
                offset,
                problem: LineProblem::Torn,
            } => assert_eq!(offset, good_len),
            other => panic!("{other}"),
        }

        // The documented fix works and the chain continues.
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(good_len)
            .unwrap();
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.append(record(2)).unwrap().seq, 2);
        assert_eq!(verify(&path).unwrap().entries, 3);
    }

    #[test]
    fn followers_of_a_failed_batch_fail_too() {
        let (_dir, path) = temp();
        let log = Arc::new(AuditLog::open(&path).unwrap());
        log.hooks.gather.store(4, Ordering::SeqCst);
        log.hooks.fail_sync.store(true, Ordering::SeqCst);
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || log.append(record(t)))
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap().is_err());
        }
        assert_eq!(log.entry_count(), 0);
        assert_poisoned_forever(&log);
    }

    #[test]
    fn open_refuses_a_torn_tail_without_touching_it() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        drop(log);
        let good_len = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"seq\":1,\"ti")
            .unwrap();
        let before = fs::read(&path).unwrap();
        let err = AuditLog::open(&path).unwrap_err();
        assert!(
            matches!(err, AuditError::TornTail { offset, .. } if offset == good_len),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), before);

        // A torn first line: the offset is 0.
        fs::write(&path, b"{\"seq\":0").unwrap();
        let err = AuditLog::open(&path).unwrap_err();
        assert!(
            matches!(err, AuditError::TornTail { offset: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn open_refuses_a_corrupt_last_line() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        log.append(record(1)).unwrap();
        drop(log);
        let text = fs::read_to_string(&path).unwrap();
        let first_len = u64::try_from(text.find('\n').unwrap() + 1).unwrap();
        fs::write(
            &path,
            text.replace("\"latency_us\":1,", "\"latency_us\":2,"),
        )
        .unwrap();
        let err = AuditLog::open(&path).unwrap_err();
        match &err {
            AuditError::CorruptTail {
                offset,
                problem: LineProblem::HashMismatch { .. },
                ..
            } => assert_eq!(*offset, first_len),
            other => panic!("{other}"),
        }
        assert!(verify_bytes(&fs::read(&path).unwrap()).is_err());

        fs::write(&path, b"\n").unwrap();
        assert!(matches!(
            AuditLog::open(&path).unwrap_err(),
            AuditError::CorruptTail {
                offset: 0,
                problem: LineProblem::Empty,
                ..
            }
        ));
    }

    #[test]
    fn open_reports_a_missing_directory() {
        let (dir, _) = temp();
        let err = AuditLog::open(dir.path().join("nope/audit.log")).unwrap_err();
        assert!(matches!(err, AuditError::Open { .. }), "{err}");
        assert!(err.to_string().contains("nope/audit.log"), "{err}");
    }
}
