//! A replica's own durable memory of etcd: the highest revision it has seen and, per watermark,
//! the highest block it reserved. A store answering below either was restored or rolled back —
//! also when a restore bumped its revisions (`etcdutl snapshot restore --bump-revision`), which
//! the per-watermark floor still sees.
//!
//! Guards: a reservation's line is durable before its signature leaves the replica
//! ([`Journal::durable`], called by the store's commit). The `fdatasync` runs on a thread of its
//! own from the moment the line is written, so it overlaps the signature instead of adding to
//! it. After a failed sync nothing already written is trusted: the next line rewrites the whole
//! journal (atomically, synced) before anything counts as durable again.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use serde::{Deserialize, Serialize};

use super::super::StoreError;
use super::lock;

/// The journal is rewritten to one line per watermark once it grows past this.
const COMPACT_BYTES: u64 = 1 << 20;

/// A local line: the highest revision seen and, for a reservation, what was reserved.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    revision: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    block_num: Option<u32>,
}

/// The journal (in memory only for a tool without a journal file).
#[derive(Debug)]
pub(super) struct Journal {
    pub(super) path: PathBuf,
    file: Option<File>,
    /// Highest revision seen (in memory), and highest written to the file.
    pub(super) seen: i64,
    pub(super) durable: i64,
    /// Per watermark: the highest block number this replica reserved.
    floors: HashMap<String, u32>,
    size: u64,
    /// Lines written so far (the ticket [`Journal::durable`] waits for).
    written: u64,
    syncer: Option<Arc<Syncer>>,
}

impl Journal {
    pub(super) fn in_memory() -> Self {
        Journal {
            path: PathBuf::from("(none)"),
            file: None,
            seen: 0,
            durable: 0,
            floors: HashMap::new(),
            size: 0,
            written: 0,
            syncer: None,
        }
    }

    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        // A last line without its newline was never synced: no signature relied on it.
        let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
        let mut seen = 0;
        let mut floors: HashMap<String, u32> = HashMap::new();
        for (i, line) in complete.lines().enumerate() {
            let l: Line = serde_json::from_str(line).map_err(|e| StoreError::Corrupt {
                path: path.display().to_string(),
                detail: format!("line {}: {e}", i + 1),
            })?;
            seen = seen.max(l.revision);
            if let (Some(k), Some(n)) = (l.key, l.block_num) {
                let f = floors.entry(k).or_default();
                *f = (*f).max(n);
            }
        }
        if complete.len() < text.len() {
            oryx_proto::durable::write_atomic(path, complete.as_bytes(), 0o600)
                .map_err(|e| io(e.source))?;
        }
        let file = append(path).map_err(io)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Some(file),
            seen,
            durable: seen,
            floors,
            size: complete.len() as u64,
            written: 0,
            syncer: Some(Syncer::start(path)),
        })
    }

    /// The highest block this replica reserved for `key`.
    pub(super) fn block_floor(&self, key: &str) -> Option<u32> {
        self.floors.get(key).copied()
    }

    /// Checks the revision of an answer to a request sent when the highest revision seen was
    /// `floor`, and remembers it (in memory).
    pub(super) fn observe(&mut self, revision: i64, floor: i64) -> Result<(), StoreError> {
        if revision < floor {
            return Err(StoreError::RolledBack {
                found: format!(
                    "revision {revision}, after this replica saw revision {floor} ({})",
                    self.path.display()
                ),
            });
        }
        self.seen = self.seen.max(revision);
        Ok(())
    }

    /// Appends a reservation (and the highest revision) and starts its sync; past its size
    /// bound, or after a failed sync, the journal is rewritten (synced) to one line per key with
    /// the highest revision, never lower. [`Syncer::durable`] of [`Journal::written`] waits for
    /// it.
    pub(super) fn record(
        &mut self,
        key: &str,
        block_num: u32,
        revision: i64,
    ) -> Result<(), StoreError> {
        let floor = self.floors.entry(key.to_string()).or_default();
        *floor = (*floor).max(block_num);
        self.durable = self.durable.max(revision);
        self.written += 1;
        let (Some(file), Some(syncer)) = (self.file.as_mut(), self.syncer.as_ref()) else {
            return Ok(());
        };
        let path = self.path.display().to_string();
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let text = line(key, block_num, revision);
        if self.size + text.len() as u64 > COMPACT_BYTES || syncer.failed() {
            let revision = self.durable.max(self.seen);
            let all: String = self
                .floors
                .iter()
                .map(|(k, n)| line(k, *n, revision))
                .collect();
            oryx_proto::durable::write_atomic(&self.path, all.as_bytes(), 0o600)
                .map_err(|e| io(e.source))?;
            *file = append(&self.path).map_err(io)?;
            self.size = all.len() as u64;
            syncer.rewritten(self.written);
        } else {
            let written = file
                .write_all(text.as_bytes())
                .and_then(|()| file.try_clone());
            match written {
                Ok(handle) => syncer.request(handle, self.written),
                Err(e) => {
                    // Cut a partial line off, so the next append (once the disk recovers)
                    // follows a whole one.
                    let _ = file.set_len(self.size);
                    return Err(io(e));
                }
            }
            self.size += text.len() as u64;
        }
        Ok(())
    }

    /// Lines written so far: waiting for this ticket waits for all of them.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// What waits for the syncs (none without a file).
    pub(super) fn syncer(&self) -> Option<Arc<Syncer>> {
        self.syncer.clone()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(s) = &self.syncer {
            s.stop();
        }
    }
}

fn line(key: &str, n: u32, revision: i64) -> String {
    let mut t = serde_json::to_string(&Line {
        revision,
        key: Some(key.to_string()),
        block_num: Some(n),
    })
    .unwrap_or_default();
    t.push('\n');
    t
}

fn append(path: &Path) -> std::io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

/// The journal's sync thread and what it has made durable.
#[derive(Debug)]
pub(super) struct Syncer {
    path: String,
    state: Mutex<SyncState>,
    /// Wakes the thread: a sync was requested (or stop).
    wake: Condvar,
    /// Wakes waiters: a sync finished.
    done: Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    /// The newest handle to sync, and the ticket it covers.
    requested: Option<(File, u64)>,
    /// Every ticket up to this one is durable.
    synced: u64,
    /// A sync failed: nothing counts as durable until a rewrite.
    failed: Option<String>,
    stop: bool,
}

impl Syncer {
    fn start(path: &Path) -> Arc<Self> {
        let s = Arc::new(Syncer {
            path: path.display().to_string(),
            state: Mutex::default(),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let thread = Arc::clone(&s);
        let spawned = std::thread::Builder::new()
            .name("oryx-etcd-journal".into())
            .spawn(move || thread.run());
        if let Err(e) = spawned {
            lock(&s.state).failed = Some(format!("no sync thread: {e}"));
        }
        s
    }

    fn run(&self) {
        loop {
            let (file, ticket) = {
                let mut st = lock(&self.state);
                loop {
                    if st.stop {
                        return;
                    }
                    if let Some(r) = st.requested.take() {
                        break r;
                    }
                    st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let synced = file.sync_data();
            let mut st = lock(&self.state);
            match synced {
                // After a failure only a rewrite makes lines durable again: this sync may
                // have succeeded on pages the kernel dropped with the failed one.
                Ok(()) if st.failed.is_none() => st.synced = st.synced.max(ticket),
                Ok(()) => {}
                Err(e) => st.failed = Some(e.to_string()),
            }
            self.done.notify_all();
        }
    }

    fn request(&self, file: File, ticket: u64) {
        lock(&self.state).requested = Some((file, ticket));
        self.wake.notify_one();
    }

    fn failed(&self) -> bool {
        lock(&self.state).failed.is_some()
    }

    /// The whole journal was rewritten and synced with every line up to `ticket`.
    fn rewritten(&self, ticket: u64) {
        let mut st = lock(&self.state);
        st.failed = None;
        st.synced = st.synced.max(ticket);
        self.done.notify_all();
    }

    fn stop(&self) {
        lock(&self.state).stop = true;
        self.wake.notify_one();
    }

    /// Waits until every line up to `ticket` is durable; refuses after a failed sync (the next
    /// reservation rewrites the journal).
    pub(super) fn durable(&self, ticket: u64) -> Result<(), StoreError> {
        let mut st = lock(&self.state);
        loop {
            if st.synced >= ticket {
                return Ok(());
            }
            if let Some(e) = &st.failed {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    source: std::io::Error::other(format!("sync failed: {e}")),
                });
            }
            st = self.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_become_durable_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.journal");
        let mut j = Journal::open(&path).unwrap();
        j.record("a", 10, 5).unwrap();
        j.record("b", 20, 7).unwrap();
        assert_eq!(j.written(), 2);
        let syncer = j.syncer().unwrap();
        syncer.durable(j.written()).unwrap();
        drop(j);
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.block_floor("a"), Some(10));
        assert_eq!(j.block_floor("b"), Some(20));
        assert_eq!(j.seen, 7);
    }

    #[test]
    fn after_a_failed_sync_nothing_counts_until_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.journal");
        let mut j = Journal::open(&path).unwrap();
        let syncer = j.syncer().unwrap();
        j.record("a", 10, 5).unwrap();
        syncer.durable(j.written()).unwrap();
        lock(&syncer.state).failed = Some("injected".into());
        j.record("a", 11, 6).unwrap();
        let t = j.written();
        // That record rewrote the journal (synced): durable, and the failure is cleared.
        syncer.durable(t).unwrap();
        assert!(!syncer.failed());
        lock(&syncer.state).failed = Some("injected".into());
        assert!(syncer.durable(t + 1).is_err());
        drop(j);
        assert_eq!(Journal::open(&path).unwrap().block_floor("a"), Some(11));
    }
}
