//! [`AuditLog`]: the append side of the audit log, with group commit.
//!
//! Guards: `append` returns `Ok` only once its line is on disk (written and `fdatasync`ed);
//! lines reach the file in `seq` order with no gaps; a failed write or sync fails its whole
//! batch and closes the log until a repair (cut back to the last durable line, synced, the tail
//! read back and matched) succeeds, which the next append or health probe tries: nobody goes on
//! without a trail, and a full disk heals once space is back, without a restart.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use super::coalesce::{Admit, Held, RefusalGate, RefusalLimit};

use super::{
    AuditDecision, AuditEntryRef, AuditError, AuditKind, AuditRecord, GENESIS_PREV, MAX_LINE, seal,
    sha256_hex, time, verify::check_line,
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
    /// How many refusals per principal are written one by one (see [`super::coalesce`]).
    refusals: Mutex<RefusalGate>,
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
    /// Every entry with `seq < written` is written (`durable <= written`); the ones in between
    /// are completions ([`AuditLog::append_written`]) whose sync is still to come.
    written: u64,
    /// Bytes of the file written: every line of `seq < written`.
    written_len: u64,
    /// SHA-256 hex of the last written line.
    written_prev: String,
    /// The lines of `durable <= seq < written`, kept until a sync covers them: a repair after a
    /// failed sync writes them again (their appenders were answered).
    unsynced: Vec<u8>,
    /// Some queued line's appender waits for a sync: the next writer must sync.
    queued_sync: bool,
    /// A leader is writing a batch now (without the lock).
    leader: bool,
    /// Bytes of the file that are durable: every line of `seq < durable`.
    durable_len: u64,
    /// SHA-256 hex of the last durable line (`prev` of entry `durable`).
    durable_prev: String,
    /// Bumped by every failed batch: an appender whose line was queued in an earlier epoch
    /// learns whether its line is gone even if later lines reuse its `seq`.
    epoch: u64,
    /// For the last [`ENDED_EPOCHS`] failed batches: (the epoch it ended, `durable` then,
    /// `written` then). A line of that epoch with a lower `seq` than `durable` was durable
    /// before the failure; one below `written` was written and is kept by the repair.
    ended: std::collections::VecDeque<(u64, u64, u64)>,
    /// Set by a failed write or sync, cleared by a successful repair: nothing is queued while
    /// it is set.
    closed: bool,
    /// The outage since the first failed batch, until its record is durable.
    outage: Option<Failure>,
    /// `seq` of the outage's record once queued (it is queued once, after a repair).
    outage_seq: Option<u64>,
    /// Set after a panic mid-write: the file's state is unknown, so no repair is tried.
    broken: Option<String>,
}

impl State {
    /// Whether the line queued as `seq` in `epoch` is as far as `wait` asks (`Some(true)`),
    /// lost (`Some(false)`), or not yet (`None`). After a failed batch a line waiting for a sync
    /// counts only if it was durable before that failure (`seq` may have been reused since); a
    /// line waiting only to be written counts if it was written, since the repair keeps it.
    fn fate(&self, epoch: u64, seq: u64, wait: Wait) -> Option<bool> {
        if self.epoch != epoch {
            let then = self.ended.iter().find(|(e, _, _)| *e == epoch);
            return Some(then.is_some_and(|&(_, durable, written)| match wait {
                Wait::Durable => seq < durable,
                Wait::Written => seq < written,
            }));
        }
        let done = match wait {
            Wait::Durable => self.durable,
            Wait::Written => self.written,
        };
        (done > seq).then_some(true)
    }
}

/// How far an appender waits for its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Written and synced.
    Durable,
    /// Written (in the page cache: it survives the process, not the machine).
    Written,
}

/// How many failed batches [`State::ended`] remembers (an appender waits through far fewer).
const ENDED_EPOCHS: usize = 64;

/// A write outage: what failed, since when, and how many appends were refused meanwhile.
#[derive(Debug, Clone)]
struct Failure {
    cause: String,
    since: SystemTime,
    refused: u64,
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

    /// Writes at most `limit` refusals per principal one by one (the default is
    /// [`RefusalLimit::default`]); see [`super::coalesce`].
    pub fn with_refusal_limit(mut self, limit: RefusalLimit) -> Self {
        self.refusals = Mutex::new(RefusalGate::new(limit));
        self
    }

    /// Records a decision about a client's request: like [`AuditLog::append`], except that a
    /// refusal over its principal's [`RefusalLimit`] is only counted (`Ok(None)`), to be written
    /// in a `coalesced` summary before that principal's next written refusal or by
    /// [`AuditLog::flush_refusals`]. Every other decision is appended as it is.
    pub fn append_decision(
        &self,
        record: AuditRecord,
    ) -> Result<Option<AuditEntryRef>, AuditError> {
        if !RefusalGate::meters(&record) {
            return self.append(record).map(Some);
        }
        let admit = self
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(&record, Instant::now(), SystemTime::now());
        match admit {
            Admit::Hold => Ok(None),
            Admit::Write(held) => {
                if let Some(held) = held {
                    self.append_held(held)?;
                }
                self.append(record).map(Some)
            }
        }
    }

    /// Writes every principal's held refusals as summaries (periodically and at shutdown);
    /// how many refusals they count. A summary that cannot be written is kept for the next
    /// flush.
    pub fn flush_refusals(&self) -> Result<u64, AuditError> {
        let held = self
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take_held();
        let mut written = 0;
        let mut first_err = None;
        for h in held {
            let n = h.count();
            match self.append_held(h) {
                Ok(()) => written += n,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(written), Err)
    }

    /// Appends a summary; on failure puts its counts back.
    fn append_held(&self, held: Held) -> Result<(), AuditError> {
        match self.append(held.record()) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.refusals
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .restore(held, Instant::now());
                Err(e)
            }
        }
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
        let (file, created) = match new_options().create_new(true).open(&path) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                (new_options().open(&path).map_err(open_err("open"))?, false)
            }
            Err(e) => return Err(open_err("create")(e)),
        };
        if created {
            sync_parent(&path).map_err(open_err("sync the directory of"))?;
        }
        // Lines an earlier process wrote without a sync (write-ahead outcomes) are durable from
        // here on, as `durable` below says.
        file.sync_data().map_err(open_err("sync"))?;
        let len = file.metadata().map_err(open_err("read the size of"))?.len();
        let (next_seq, prev) = match read_tail(&mut &file, &path)? {
            Some((seq, line_hash)) => {
                // A u64 of entries cannot be reached; refuse rather than wrap.
                let next = seq.checked_add(1).ok_or_else(|| AuditError::Unavailable {
                    path: path.clone(),
                    cause: "seq space exhausted".into(),
                    recovers: false,
                })?;
                (next, line_hash)
            }
            None => (0, GENESIS_PREV.to_owned()),
        };
        let prev_copy = prev.clone();
        Ok(AuditLog {
            path,
            file,
            state: Mutex::new(State {
                next_seq,
                prev: prev_copy,
                queued: Vec::new(),
                queued_entries: 0,
                durable: next_seq,
                written: next_seq,
                written_len: len,
                written_prev: prev.clone(),
                unsynced: Vec::new(),
                queued_sync: false,
                leader: false,
                durable_len: len,
                durable_prev: prev,
                epoch: 0,
                ended: std::collections::VecDeque::new(),
                closed: false,
                outage: None,
                outage_seq: None,
                broken: None,
            }),
            batch_done: Condvar::new(),
            fsyncs: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            replica: None,
            refusals: Mutex::new(RefusalGate::new(RefusalLimit::default())),
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
    /// write or sync failure returns [`AuditError::Write`] to every appender of the failed batch
    /// and closes the log; each later append first tries the repair ([`AuditLog::health`]) and
    /// fails with [`AuditError::Unavailable`] while that fails. The first entry written after a
    /// repair is preceded by one that records the outage and how many appends it refused.
    pub fn append(&self, record: AuditRecord) -> Result<AuditEntryRef, AuditError> {
        self.append_until(record, Wait::Durable)
    }

    /// Appends one entry and waits as far as `wait` says.
    fn append_until(&self, record: AuditRecord, wait: Wait) -> Result<AuditEntryRef, AuditError> {
        // An over-long reason is cut, never the entry refused: the fact of a decision is kept.
        let record = record.clamped();
        record.validate()?;
        self.write(Some(record), wait)?
            .ok_or_else(|| AuditError::InvalidRecord("the entry was not queued".into()))
    }

    /// Appends one entry and returns once it is *written*, before it is synced: it survives the
    /// signer's process (a crash, SIGKILL) but not the machine until the next sync, which any
    /// [`AuditLog::append`] or [`AuditLog::sync`] makes. For the completion of a write-ahead
    /// entry that is durable already (see `pipeline`'s write-ahead mode): the decision is on
    /// disk, this adds its outcome. A failed sync does not lose it: the repair writes it again.
    /// If a queued line ahead of it waits for a sync, it waits for that sync too (a line whose
    /// appender was told it failed is never left on disk by a write-only batch).
    pub fn append_written(&self, record: AuditRecord) -> Result<AuditEntryRef, AuditError> {
        self.append_until(record, Wait::Written)
    }

    /// Makes every entry appended so far durable (one sync if some are only written); the
    /// position up to which the log is then durable: `(seq of the next entry, file length)`.
    pub fn sync(&self) -> Result<(u64, u64), AuditError> {
        let mut st = self.lock()?;
        self.repair(&mut st)?;
        let (epoch, target) = (st.epoch, st.next_seq);
        loop {
            if st.epoch != epoch {
                return Err(self.unavailable(&st));
            }
            if st.durable >= target {
                return Ok((st.durable, st.durable_len));
            }
            st = if st.leader {
                self.batch_done.wait(st).map_err(|_| self.lock_poisoned())?
            } else {
                st.queued_sync = true;
                self.lead(st)?
            };
        }
    }

    /// `Ok` when the log takes appends. After a failed write or sync it tries the repair and
    /// then writes the outage's record, so `/readyz` heals the log (and says whether it can
    /// really write) even with no request arriving.
    pub fn health(&self) -> Result<(), AuditError> {
        self.write(None, Wait::Durable).map(|_| ())
    }

    /// Repairs if needed, queues the outage's record if one is due and then `record`, and
    /// waits until the last of them is durable: its `(seq, hash)`, `None` if nothing was queued.
    fn write(
        &self,
        record: Option<AuditRecord>,
        wait: Wait,
    ) -> Result<Option<AuditEntryRef>, AuditError> {
        let mut st = self.lock()?;
        if let Err(e) = self.repair(&mut st) {
            if let (Some(outage), Some(_)) = (&mut st.outage, &record) {
                outage.refused = outage.refused.saturating_add(1);
            }
            return Err(e);
        }
        let epoch = st.epoch;
        let mut last = None;
        if st.outage_seq.is_none()
            && let Some(outage) = st.outage.as_ref().map(Failure::record)
        {
            let entry = self.queue(&mut st, outage)?;
            st.outage_seq = Some(entry.0);
            st.queued_sync = true;
            last = Some(entry);
        }
        if let Some(record) = record {
            last = Some(self.queue(&mut st, record)?);
            st.queued_sync |= wait == Wait::Durable;
        }
        let Some((seq, hash)) = last else {
            return Ok(None);
        };
        loop {
            match st.fate(epoch, seq, wait) {
                Some(true) => return Ok(Some(AuditEntryRef { seq, hash })),
                Some(false) => return Err(self.unavailable(&st)),
                None => {}
            }
            st = if st.leader {
                self.batch_done.wait(st).map_err(|_| self.lock_poisoned())?
            } else if !st.queued_sync {
                self.write_only(st)?
            } else {
                self.lead(st)?
            };
        }
    }

    /// Seals `record` as the next entry and queues its line; `(seq, hash)` of the entry.
    fn queue(&self, st: &mut State, record: AuditRecord) -> Result<(u64, String), AuditError> {
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
        Ok((seq, hash))
    }

    /// Reopens a failed log for appends: cuts the file back to its last durable line (dropping
    /// whatever the failed batch left), syncs, and reads the tail back to check it is the line
    /// the log last made durable. `Ok` at once when nothing failed; on any error the log stays
    /// closed and the next call tries again. Under the lock: nobody appends meanwhile.
    fn repair(&self, st: &mut State) -> Result<(), AuditError> {
        if let Some(cause) = &st.broken {
            return Err(AuditError::Unavailable {
                path: self.path.clone(),
                cause: cause.clone(),
                recovers: false,
            });
        }
        if !st.closed {
            return Ok(());
        }
        let expect = st
            .written
            .checked_sub(1)
            .map(|seq| (seq, st.written_prev.clone()));
        #[cfg(test)]
        let hook = self.hooks.before_repair();
        #[cfg(not(test))]
        let hook = Ok(());
        let attempt = hook
            .and_then(|()| {
                // Cutting back only: a file shorter than what was made durable was cut by
                // someone else, and padding it would hide that.
                let len = self.file.metadata()?.len();
                if len < st.durable_len {
                    return Err(io::Error::other(format!(
                        "the file is {len} bytes, shorter than the {} bytes made durable: it was \
                         cut outside the signer",
                        st.durable_len
                    )));
                }
                // Written lines whose appenders were answered are written again in place (the
                // failed sync may have dropped their pages) before anything after them is cut:
                // a crash in between never loses an answered line. A handle without O_APPEND,
                // so the write lands where it is told.
                use std::os::unix::fs::FileExt as _;
                OpenOptions::new()
                    .write(true)
                    .open(&self.path)?
                    .write_all_at(&st.unsynced, st.durable_len)?;
                self.file.set_len(st.written_len)
            })
            .and_then(|()| self.file.sync_data())
            .map_err(|e| e.to_string())
            .and_then(|()| {
                let mut file = &self.file;
                match read_tail(&mut file, &self.path) {
                    Ok(tail) if tail == expect => Ok(()),
                    Ok(_) => Err("the file's last line is not the last durable entry".into()),
                    Err(e) => Err(e.to_string()),
                }
            });
        match attempt {
            Ok(()) => {
                st.closed = false;
                st.durable = st.written;
                st.durable_len = st.written_len;
                st.durable_prev = st.written_prev.clone();
                st.unsynced.clear();
                tracing::warn!(path = %self.path.display(), "audit log repaired");
                Ok(())
            }
            Err(cause) => {
                if let Some(outage) = &mut st.outage {
                    outage.cause = cause;
                }
                Err(self.unavailable(st))
            }
        }
    }

    /// `seq` of the next entry to be appended.
    pub fn next_seq(&self) -> u64 {
        self.lock().map_or(0, |st| st.next_seq)
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
        st.queued_sync = false;
        // Every entry below next_seq is either durable already, written, or in this batch.
        let end = st.next_seq;
        drop(st);

        let guard = LeaderGuard { log: self };
        let result = self.write_batch(&batch, true);
        std::mem::forget(guard);

        let mut st = self.lock()?;
        st.leader = false;
        let outcome = match result {
            Ok(()) => {
                Self::written(&mut st, &batch, end);
                st.durable = end;
                if st.outage_seq.is_some_and(|s| s < end) {
                    st.outage = None;
                    st.outage_seq = None;
                }
                st.durable_len = st.written_len;
                st.durable_prev = st.written_prev.clone();
                st.unsynced.clear();
                self.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.entries.fetch_add(count, Ordering::Relaxed);
                Ok(())
            }
            Err(source) => Err(self.failed(&mut st, count, source)),
        };
        self.batch_done.notify_all();
        outcome.map(|()| st)
    }

    /// Writes every queued line without a sync, under the lock (no leader is writing, so file
    /// order stays `seq` order): for [`AuditLog::append_written`] when no queued line waits for
    /// a sync. A write is microseconds; nobody is held behind a sync.
    fn write_only<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>, AuditError> {
        let batch = std::mem::take(&mut st.queued);
        let count = std::mem::take(&mut st.queued_entries);
        let end = st.next_seq;
        let outcome = match self.write_batch(&batch, false) {
            Ok(()) => {
                Self::written(&mut st, &batch, end);
                st.unsynced.extend_from_slice(&batch);
                self.entries.fetch_add(count, Ordering::Relaxed);
                Ok(())
            }
            Err(source) => Err(self.failed(&mut st, count, source)),
        };
        self.batch_done.notify_all();
        outcome.map(|()| st)
    }

    /// Records that `batch`, the lines up to `end`, is written.
    fn written(st: &mut State, batch: &[u8], end: u64) {
        st.written = end;
        st.written_len = st.written_len.saturating_add(batch.len() as u64);
        if let Some(h) = last_line_hash(batch) {
            st.written_prev = h;
        }
    }

    /// A failed write or sync of a batch of `count` lines: closes the log until a repair.
    fn failed(&self, st: &mut State, count: u64, source: io::Error) -> AuditError {
        // Every line not yet written is lost: the failed batch and whatever was queued behind
        // it. Their appenders fail (the epoch moved); the chain continues from the last written
        // line once the repair has cut the file back to the last durable one and written the
        // lines in between again (answered completions: kept).
        tracing::error!(path = %self.path.display(), error = %source, "audit log write failed");
        let (ended, durable, written) = (st.epoch, st.durable, st.written);
        if st.ended.len() == ENDED_EPOCHS {
            st.ended.pop_front();
        }
        st.ended.push_back((ended, durable, written));
        st.epoch = st.epoch.wrapping_add(1);
        st.next_seq = st.written;
        st.prev = st.written_prev.clone();
        // Callers' entries lost: the batch and the queue behind it, less the outage's own
        // record if it was among them (it is queued again after the next repair).
        let lost = count
            .saturating_add(st.queued_entries)
            .saturating_sub(u64::from(
                st.outage_seq.take_if(|s| *s >= written).is_some(),
            ));
        st.queued.clear();
        st.queued_entries = 0;
        st.queued_sync = false;
        st.closed = true;
        let outage = st.outage.get_or_insert_with(|| Failure {
            cause: String::new(),
            since: SystemTime::now(),
            refused: 0,
        });
        outage.cause = source.to_string();
        outage.refused = outage.refused.saturating_add(lost);
        AuditError::Write {
            path: self.path.clone(),
            source,
        }
    }

    fn write_batch(&self, batch: &[u8], sync: bool) -> io::Result<()> {
        #[cfg(test)]
        self.hooks.before_write(&self.file, batch)?;
        (&self.file).write_all(batch)?;
        if !sync {
            return Ok(());
        }
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

    /// The log is closed for good (until restart): its in-memory state cannot be trusted.
    fn poisoned(&self, cause: &str) -> AuditError {
        AuditError::Unavailable {
            path: self.path.clone(),
            cause: cause.to_owned(),
            recovers: false,
        }
    }

    /// The log is closed until a repair succeeds.
    fn unavailable(&self, st: &State) -> AuditError {
        AuditError::Unavailable {
            path: self.path.clone(),
            cause: st
                .outage
                .as_ref()
                .map_or_else(|| "an earlier write failed".into(), |f| f.cause.clone()),
            recovers: true,
        }
    }
}

impl Failure {
    /// The entry that puts an outage on record once the log is writable again.
    fn record(&self) -> AuditRecord {
        let since = time::rfc3339_micros(self.since).unwrap_or_default();
        AuditRecord {
            reason: Some(format!(
                "the log could not be written from {since} until now ({}); {} appends were \
                 refused meanwhile and nothing they asked for was signed or done",
                self.cause, self.refused
            )),
            ..AuditRecord::new("oryx-signer", AuditKind::AuditLog, AuditDecision::Recovered)
        }
    }
}

/// SHA-256 hex of the last line of a batch (lines end in `\n`).
fn last_line_hash(batch: &[u8]) -> Option<String> {
    let body = batch.strip_suffix(b"\n")?;
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Some(sha256_hex(&body[start..]))
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
        st.epoch = st.epoch.wrapping_add(1);
        st.broken
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
fn read_tail(file: &mut &File, path: &Path) -> Result<Option<(u64, String)>, AuditError> {
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
        /// Fail this many repairs.
        fail_repair: AtomicU64,
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

        pub(super) fn before_repair(&self) -> io::Result<()> {
            let left = self.fail_repair.load(Ordering::SeqCst);
            if left > 0 {
                self.fail_repair.store(left - 1, Ordering::SeqCst);
                return Err(io::Error::other("injected repair failure"));
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

    /// The entry after an outage: the recovery record, then `seq` continues from it.
    fn assert_recovered(path: &Path, refused: u64) {
        let text = fs::read_to_string(path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let rec = lines
            .iter()
            .find(|e| e["kind"] == "audit_log")
            .expect("a recovery entry");
        assert_eq!(rec["decision"], "recovered");
        let reason = rec["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("{refused} appends were refused")),
            "{reason}"
        );
        verify(path).unwrap();
    }

    #[test]
    fn a_written_entry_is_on_disk_at_once_and_synced_by_the_next_append() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        assert_eq!(log.fsync_count(), 1);
        let w = log.append_written(record(1)).unwrap();
        assert_eq!(w.seq, 1);
        // Written (another process reads it) without a sync.
        assert_eq!(log.fsync_count(), 1);
        assert_eq!(verify(&path).unwrap().last(), Some(w));
        // The next durable append syncs both with one fdatasync; sync() then has nothing to do.
        let r = log.append(record(2)).unwrap();
        assert_eq!((r.seq, log.fsync_count()), (2, 2));
        assert_eq!(log.sync().unwrap().0, 3);
        assert_eq!(log.fsync_count(), 2);
        log.append_written(record(3)).unwrap();
        let (next, len) = log.sync().unwrap();
        assert_eq!(
            (next, len, log.fsync_count()),
            (4, fs::metadata(&path).unwrap().len(), 3)
        );
        assert_eq!(verify(&path).unwrap().entries, 4);
    }

    #[test]
    fn a_failed_sync_keeps_the_written_entries_and_fails_only_its_batch() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        let w = log.append_written(record(1)).unwrap();
        log.hooks.fail_sync.store(true, Ordering::SeqCst);
        // The failed sync covered the written line: the batch's own line fails, the written
        // one (already answered) is kept.
        assert!(log.append(record(2)).is_err());
        log.health().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1]["hash"], w.hash.as_str());
        assert_eq!(lines[2]["decision"], "recovered");
        assert_recovered(&path, 1);
        let r = log.append(record(4)).unwrap();
        assert_eq!(r.seq, 3);
        assert_eq!(verify(&path).unwrap().last(), Some(r));
    }

    #[test]
    fn a_failed_write_of_a_written_entry_fails_it_and_the_repair_cuts_it() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        log.append_written(record(1)).unwrap();
        log.hooks.fail_write.store(true, Ordering::SeqCst);
        assert!(log.append_written(record(2)).is_err());
        // The torn half line is cut; the answered line 1 stays.
        let r = log.append(record(3)).unwrap();
        assert_eq!(r.seq, 3, "0, 1, the outage record, then this");
        assert_eq!(verify(&path).unwrap().entries, 4);
        assert_recovered(&path, 1);
    }

    #[test]
    fn written_and_durable_appends_together_stay_consecutive() {
        let (_dir, path) = temp();
        let log = Arc::new(AuditLog::open(&path).unwrap());
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        if (t + i) % 2 == 0 {
                            log.append_written(record(i)).unwrap();
                        } else {
                            log.append(record(i)).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        log.sync().unwrap();
        assert_eq!(verify(&path).unwrap().entries, 400);
    }

    #[test]
    fn failed_sync_closes_the_log_until_a_repair_then_resumes_the_chain() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        let good_len = fs::metadata(&path).unwrap().len();
        log.hooks.fail_sync.store(true, Ordering::SeqCst);
        log.hooks.fail_repair.store(2, Ordering::SeqCst);
        let err = log.append(record(1)).unwrap_err();
        assert!(matches!(err, AuditError::Write { .. }), "{err}");
        assert!(err.to_string().contains("injected fsync failure"), "{err}");
        assert!(err.to_string().contains("no restart"), "{err}");
        // The failed line is on disk (written, not synced) until the repair cuts it.
        assert!(fs::metadata(&path).unwrap().len() > good_len);
        // While the repair fails, appends and probes fail and change nothing.
        for _ in 0..2 {
            let err = log.append(record(9)).unwrap_err();
            assert!(
                matches!(err, AuditError::Unavailable { recovers: true, .. }),
                "{err}"
            );
            assert!(err.to_string().contains("by itself"), "{err}");
        }
        assert_eq!(log.entry_count(), 1);
        // The cause is gone: the probe repairs (cutting the failed line) and puts the outage on
        // record at seq 1; appends continue the chain after it.
        log.health().unwrap();
        assert_eq!(verify(&path).unwrap().entries, 2);
        let r = log.append(record(1)).unwrap();
        assert_eq!(r.seq, 2);
        assert_eq!(verify(&path).unwrap().entries, 3);
        assert_eq!(verify(&path).unwrap().last(), Some(r));
        // One failed in the batch, two refused while the repair failed.
        assert_recovered(&path, 3);
        drop(log);
        assert_eq!(
            AuditLog::open(&path)
                .unwrap()
                .append(record(3))
                .unwrap()
                .seq,
            3
        );
    }

    #[test]
    fn failed_write_is_cut_back_by_the_repair_and_a_torn_tail_blocks_restart() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        log.append(record(1)).unwrap();
        let good_len = fs::metadata(&path).unwrap().len();
        log.hooks.fail_write.store(true, Ordering::SeqCst);
        log.hooks.fail_repair.store(u64::MAX, Ordering::SeqCst);
        let err = log.append(record(2)).unwrap_err();
        assert!(matches!(err, AuditError::Write { .. }), "{err}");
        assert!(log.health().is_err());
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

        // Without restart: the torn half line is cut by the repair itself.
        log.hooks.fail_write.store(true, Ordering::SeqCst);
        assert!(log.append(record(3)).is_err());
        let r = log.append(record(3)).unwrap();
        assert_eq!(r.seq, 4);
        assert_recovered(&path, 1);
        assert_eq!(verify(&path).unwrap().entries, 5);
    }

    #[test]
    fn a_repair_that_finds_a_different_tail_keeps_the_log_closed() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        log.append(record(0)).unwrap();
        log.append(record(1)).unwrap();
        log.hooks.fail_sync.store(true, Ordering::SeqCst);
        assert!(log.append(record(2)).is_err());
        // Someone cut the durable tail meanwhile: the repair refuses to continue the chain.
        let text = fs::read_to_string(&path).unwrap();
        let first = text.find('\n').unwrap() + 1;
        let cut = u64::try_from(first).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut)
            .unwrap();
        // The repair never pads a file someone cut: it stays closed and says so.
        let err = log.append(record(2)).unwrap_err();
        assert!(matches!(err, AuditError::Unavailable { .. }), "{err}");
        assert!(err.to_string().contains("cut outside the signer"), "{err}");
        assert_eq!(fs::metadata(&path).unwrap().len(), cut);
        assert!(log.health().is_err());
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
        // The repair runs at the next append; all four are counted as refused.
        assert_eq!(log.append(record(0)).unwrap().seq, 1);
        assert_recovered(&path, 4);
    }

    #[test]
    fn a_line_made_durable_before_a_later_failure_counts_as_written() {
        let (_dir, path) = temp();
        let log = AuditLog::open(&path).unwrap();
        let mut st = log.lock().unwrap();
        // Epoch 0: seqs 0..3 durable, then a batch of seqs 3..5 fails; epoch 1 reuses seq 3.
        st.durable = 3;
        // Seq 3 had been written (not synced) by a write-only batch before the failure.
        st.ended.push_back((0, 3, 4));
        st.epoch = 1;
        let d = Wait::Durable;
        assert_eq!(st.fate(0, 2, d), Some(true), "durable before the failure");
        assert_eq!(st.fate(0, 3, d), Some(false), "in the failed batch");
        assert_eq!(
            st.fate(0, 3, Wait::Written),
            Some(true),
            "written before the failure: the repair keeps it"
        );
        assert_eq!(st.fate(0, 4, Wait::Written), Some(false));
        st.durable = 5;
        st.written = 5;
        assert_eq!(
            st.fate(0, 4, d),
            Some(false),
            "its seq was reused by a later line"
        );
        assert_eq!(st.fate(1, 4, d), Some(true));
        assert_eq!(st.fate(1, 5, d), None);
        // An epoch no longer remembered: reported lost, never wrongly written.
        assert_eq!(st.fate(7, 0, d), Some(false));
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
