//! The embedded watermark store: one small file per (chain, key) in a directory.
//!
//! Guards: a watermark is durable before [`WatermarkStore::reserve`] returns. Each file holds two
//! 256-byte copies (A/B) with a sequence number and a SHA-256 checksum; an update overwrites the
//! older copy in place and `fdatasync`s — one sync per update, no rename. A torn write can only
//! damage the copy being written, whose update was never acknowledged, so the other copy is
//! still a valid (and, for every acknowledged update, current) watermark. A new file is written
//! to a temporary name, synced, renamed and the directory synced.
//!
//! A commit (the signature for the newest reservation) goes to a third 256-byte record after the
//! two copies, tagged with that reservation's sequence number and written without a sync: the
//! reservation is what guards against double signing, and it is already durable. The record
//! counts only when its sequence number and content match the newest valid copy; a commit lost
//! or torn in a crash leaves that reservation unsigned, so an identical retry signs the same
//! content again. Files of two copies only (no commit record yet) read the same way.
//!
//! Requests for one key are serialised by a per-key lock held across decide → write → sync;
//! different keys proceed in parallel.
//!
//! Write-ahead mode ([`FileStore::write_ahead`], the daemon's default): reservations and
//! commits change only the key's state in memory (the pipeline's synced write-ahead audit entry
//! is the durable record); [`WatermarkStore::flush`] (each checkpoint, and shutdown) writes the
//! newest state as one synced copy. A copy is never written over the half holding the last
//! synced one (its number is bumped to the other half's parity), so a torn write leaves that
//! one whole; a failed write keeps the state in memory rather than reading the older file
//! back. A key's first watermark still creates its file synced.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use oryx_proto::antelope::{Checksum256, Pack, PublicKey, Signature, Unpack};

use super::rules::{Decision, Request, RetryPolicy, Watermark, decide};
use super::{
    CommitStep, Refusal, Reservation, ReserveError, Reserved, StoreError, WatermarkKey,
    WatermarkRecord, WatermarkStore,
};

/// Bytes of one copy of a watermark record.
pub const SLOT: usize = 256;
const MAGIC: &[u8; 4] = b"ORYW";
const VERSION: u8 = 1;
/// Where a copy's SHA-256 checksum (of the bytes before it) starts.
pub const SUM_AT: usize = SLOT - 32;
/// Where the commit record starts: after the two copies.
const COMMIT_AT: usize = 2 * SLOT;

/// One key's file and its last durable state.
#[derive(Debug)]
struct KeyFile {
    file: File,
    path: PathBuf,
    seq: u64,
    watermark: Option<Watermark>,
    /// `watermark` is newer than the file (write-ahead mode: reservations and commits live in
    /// memory until [`WatermarkStore::flush`]; see [`FileStore::write_ahead`]).
    dirty: bool,
    /// The sequence number of the copy last synced: a write never goes to its half, so a torn
    /// write always leaves it whole.
    durable_seq: u64,
}

/// Watermarks in a directory, one file per (chain, key).
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    keys: Mutex<HashMap<WatermarkKey, Arc<Mutex<Option<KeyFile>>>>>,
    /// The exclusive lock on `<dir>/.lock`, held for the store's life by the one process that
    /// may write (the daemon, or `watermark import` while the daemon is stopped). `None` for a
    /// read-only view.
    lock: Option<DirLock>,
    probes: std::sync::atomic::AtomicU64,
    /// Reservations and commits stay in memory until the next checkpoint: the audit log's
    /// write-ahead entry, synced before the signature is made, is their durable record (see
    /// [`FileStore::write_ahead`]).
    write_ahead: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn file_name(key: &WatermarkKey) -> String {
    format!("{}.{}.wm", key.chain_id, key.scope)
}

fn encode(key: &WatermarkKey, seq: u64, w: &Watermark) -> [u8; SLOT] {
    let mut b = [0u8; SLOT];
    b[..4].copy_from_slice(MAGIC);
    b[4] = VERSION;
    b[8..16].copy_from_slice(&seq.to_le_bytes());
    b[16..48].copy_from_slice(&key.chain_id.0);
    b[48..82].copy_from_slice(&key.scope.packed());
    b[82..86].copy_from_slice(&w.block_num.to_le_bytes());
    b[86..90].copy_from_slice(&w.slot.to_le_bytes());
    b[90..94].copy_from_slice(&w.wall_slot.to_le_bytes());
    b[94..126].copy_from_slice(&w.digest.0);
    if let Some(sig) = &w.signature {
        b[126] = 1;
        b[127..193].copy_from_slice(&sig.packed());
    }
    let sum = Checksum256::hash(&b[..SUM_AT]);
    b[SUM_AT..].copy_from_slice(&sum.0);
    b
}

/// Decodes one copy; `None` when it is blank, torn or fails its checksum (public for the
/// fuzzer: it reads what is on disk).
pub fn decode(b: &[u8]) -> Option<(WatermarkKey, u64, Watermark)> {
    if b.len() != SLOT
        || &b[..4] != MAGIC
        || b[4] != VERSION
        || Checksum256::hash(&b[..SUM_AT]).0[..] != b[SUM_AT..]
    {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let seq = u64::from_le_bytes(b[8..16].try_into().ok()?);
    let chain_id = Checksum256(b[16..48].try_into().ok()?);
    let scope = super::Scope::unpack(&b[48..82])?;
    let signature = match b[126] {
        0 => None,
        1 => Some(Signature::unpack_exact(&b[127..193]).ok()?),
        _ => return None,
    };
    let w = Watermark {
        block_num: u32_at(82),
        slot: u32_at(86),
        wall_slot: u32_at(90),
        digest: Checksum256(b[94..126].try_into().ok()?),
        signature,
    };
    Some((WatermarkKey { chain_id, scope }, seq, w))
}

/// Reads a watermark file: the valid copy with the highest sequence number.
fn read_file(path: &Path) -> Result<(WatermarkKey, u64, Watermark), StoreError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.display().to_string(),
        detail,
    };
    if bytes.len() != 2 * SLOT && bytes.len() != 3 * SLOT {
        return Err(corrupt(format!(
            "{} bytes, expected {} or {}",
            bytes.len(),
            2 * SLOT,
            3 * SLOT
        )));
    }
    let a = decode(&bytes[..SLOT]);
    let b = decode(&bytes[SLOT..COMMIT_AT]);
    let best = match (a, b) {
        (Some(a), Some(b)) => {
            if a.0 != b.0 {
                return Err(corrupt("the two copies name different keys".into()));
            }
            if a.1 >= b.1 { a } else { b }
        }
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return Err(corrupt("both copies fail their checksum".into())),
    };
    let commit = bytes.get(COMMIT_AT..).and_then(decode);
    Ok(with_commit(best, commit))
}

/// The newest copy, with the signature from the commit record if that record belongs to it:
/// same key, same sequence number, same content. Anything else (blank, torn, an older
/// reservation's) is ignored.
fn with_commit(
    best: (WatermarkKey, u64, Watermark),
    commit: Option<(WatermarkKey, u64, Watermark)>,
) -> (WatermarkKey, u64, Watermark) {
    let (key, seq, w) = best;
    match commit {
        Some((ck, cseq, cw))
            if ck == key
                && cseq == seq
                && w.signature.is_none()
                && cw.signature.is_some()
                && Watermark {
                    signature: None,
                    ..cw
                } == w =>
        {
            (key, seq, cw)
        }
        _ => (key, seq, w),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The exclusive lock on a signer's state directory (`<dir>/.lock`): one process at a time
/// writes what lives there (watermark files, or with etcd the replica's journal, spends and
/// approval requests). Released when dropped.
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] File);

impl DirLock {
    /// Creates the directory if needed (mode 0700) and takes its lock, refusing if another
    /// process holds it.
    pub fn take(dir: &Path) -> Result<Self, StoreError> {
        FileStore::create_dir(dir)?;
        let lock_path = dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.try_lock().map_err(|_| StoreError::Locked {
            path: lock_path.display().to_string(),
        })?;
        Ok(DirLock(lock))
    }
}

impl FileStore {
    /// Opens (creating if needed) a store directory for writing: takes the directory's exclusive
    /// lock (refusing if another process holds it) and checks every watermark file in it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        let lock = DirLock::take(&dir)?;
        Self::with(dir, Some(lock))
    }

    /// A read-only view (for `watermark show|export` and `bench` while the daemon runs): reads
    /// the files as they are now and refuses every write.
    pub fn open_read_only(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(StoreError::Io {
                path: dir.display().to_string(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        Self::with(dir, None)
    }

    /// Reservations written without a sync, for a signer whose pipeline records each one in
    /// the audit log first (a write-ahead entry, synced before the signature is made): one
    /// sync per signature instead of two. The files catch up at each checkpoint
    /// ([`WatermarkStore::flush`]); after a machine crash, start-up raises them from the log's
    /// write-ahead entries since the last checkpoint (`crate::wal`).
    pub fn write_ahead(mut self, on: bool) -> Self {
        self.write_ahead = on;
        self
    }

    fn with(dir: PathBuf, lock: Option<DirLock>) -> Result<Self, StoreError> {
        let store = FileStore {
            dir,
            keys: Mutex::new(HashMap::new()),
            lock,
            probes: Default::default(),
            write_ahead: false,
        };
        // Fail at startup, not at the first block, if a file is damaged.
        store.export()?;
        Ok(store)
    }

    fn create_dir(dir: &Path) -> Result<(), StoreError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            #[cfg(unix)]
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .map_err(io(dir))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        Ok(())
    }

    fn slot_for(&self, key: &WatermarkKey) -> Arc<Mutex<Option<KeyFile>>> {
        let mut map = lock(&self.keys);
        map.entry(*key).or_default().clone()
    }

    /// Loads the key's file into `slot` if it is not loaded yet.
    fn load<'a>(
        &self,
        key: &WatermarkKey,
        slot: &'a mut MutexGuard<'_, Option<KeyFile>>,
    ) -> Result<Option<&'a mut KeyFile>, StoreError> {
        if slot.is_none() {
            let path = self.dir.join(file_name(key));
            if path.exists() {
                let (stored_key, seq, w) = read_file(&path)?;
                if stored_key != *key {
                    return Err(StoreError::Corrupt {
                        path: path.display().to_string(),
                        detail: "file name and contents name different keys".into(),
                    });
                }
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io(&path))?;
                **slot = Some(KeyFile {
                    file,
                    path,
                    seq,
                    watermark: Some(w),
                    dirty: false,
                    durable_seq: seq,
                });
            }
        }
        Ok(slot.as_mut())
    }

    /// Writes `w` durably as the key's new watermark, creating the file if needed.
    fn write(
        &self,
        key: &WatermarkKey,
        slot: &mut MutexGuard<'_, Option<KeyFile>>,
        w: Watermark,
    ) -> Result<u64, StoreError> {
        self.guarded(slot, |slot| self.write_inner(key, slot, w, None))
    }

    /// Writes the commit record for the newest reservation (already loaded into `slot`),
    /// without a sync (see the module docs), and remembers the signature.
    fn write_commit(
        &self,
        key: &WatermarkKey,
        slot: &mut MutexGuard<'_, Option<KeyFile>>,
        w: Watermark,
    ) -> Result<(), StoreError> {
        self.guarded(slot, |slot| {
            let kf = slot.as_mut().ok_or(StoreError::Stale)?;
            kf.file
                .write_all_at(&encode(key, kf.seq, &w), COMMIT_AT as u64)
                .map_err(io(&kf.path))?;
            kf.watermark = Some(w);
            Ok(())
        })
    }

    /// Runs a write to the key's file (refused on a read-only view). A failed write or sync
    /// leaves the file as a crash at that point would, and the write was never acknowledged:
    /// the cached state is forgotten, and the key's next request reads the file back the way a
    /// restart would (the A/B copies make any torn copy harmless). Other keys go on; this one
    /// resumes as soon as its file can be written again (a full disk heals once space is
    /// freed). Reading back cannot lower the watermark: what the page cache holds beyond the
    /// disk is only the failed, higher reservation, which then counts (fail safe).
    fn guarded<T>(
        &self,
        slot: &mut MutexGuard<'_, Option<KeyFile>>,
        f: impl FnOnce(&mut MutexGuard<'_, Option<KeyFile>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.lock.is_none() {
            return Err(StoreError::ReadOnly);
        }
        let result = f(slot);
        if let Err(e) = &result {
            // A write-ahead state newer than the file is kept: reading the file back would
            // lower the watermark below reservations that may have been signed.
            if slot.as_ref().is_some_and(|kf| kf.dirty) {
                tracing::error!(error = %e, "watermark write failed; the key keeps its state in memory");
            } else {
                tracing::error!(error = %e, "watermark write failed; the key's file is read back on its next request");
                **slot = None;
            }
        }
        result
    }

    /// Writes `w` durably as a copy numbered at least `seq` (default: the next), creating the
    /// file if needed.
    fn write_inner(
        &self,
        key: &WatermarkKey,
        slot: &mut MutexGuard<'_, Option<KeyFile>>,
        w: Watermark,
        seq: Option<u64>,
    ) -> Result<u64, StoreError> {
        match self.load(key, slot)? {
            Some(kf) => {
                let seq = kf.write_copy(key, w, seq.unwrap_or(0).max(kf.seq + 1))?;
                kf.watermark = Some(w);
                Ok(seq)
            }
            None => {
                let path = self.dir.join(file_name(key));
                let tmp = self.dir.join(format!(".{}.tmp", file_name(key)));
                let mut f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)
                    .map_err(io(&tmp))?;
                // One copy and a blank commit record: later copies alternate halves.
                let seq = seq.unwrap_or(1);
                let mut both = [0u8; 3 * SLOT];
                let at = (seq % 2) as usize * SLOT;
                both[at..at + SLOT].copy_from_slice(&encode(key, seq, &w));
                f.write_all(&both).map_err(io(&tmp))?;
                f.sync_all().map_err(io(&tmp))?;
                std::fs::rename(&tmp, &path).map_err(io(&path))?;
                sync_dir(&self.dir)?;
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io(&path))?;
                **slot = Some(KeyFile {
                    file,
                    path,
                    seq,
                    watermark: Some(w),
                    dirty: false,
                    durable_seq: seq,
                });
                Ok(seq)
            }
        }
    }
}

impl KeyFile {
    /// Writes and syncs `w` as a copy numbered at least `seq`, into the half that does not
    /// hold the last synced copy (bumping the number to that half's parity); the number used.
    /// Nothing in memory changes on failure.
    fn write_copy(
        &mut self,
        key: &WatermarkKey,
        w: Watermark,
        seq: u64,
    ) -> Result<u64, StoreError> {
        let seq = if seq % 2 == self.durable_seq % 2 {
            seq + 1
        } else {
            seq
        };
        let offset = (seq % 2) * SLOT as u64;
        self.file
            .write_all_at(&encode(key, seq, &w), offset)
            .map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        self.seq = seq;
        self.durable_seq = seq;
        self.dirty = false;
        Ok(seq)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a half-written watermark in memory: state is
    // replaced only after the durable write succeeded. So a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl WatermarkStore for FileStore {
    fn reserve(
        &self,
        key: &WatermarkKey,
        request: &Request,
        digest: &Checksum256,
        wall_slot: u32,
        retry: RetryPolicy,
    ) -> Result<Reserved, ReserveError> {
        let slot = self.slot_for(key);
        let mut guard = lock(&slot);
        let stored = self.load(key, &mut guard)?.and_then(|kf| kf.watermark);
        match decide(stored.as_ref(), request, digest, wall_slot, retry) {
            Decision::Replay(sig) => Ok(Reserved::Replay(sig)),
            Decision::Refuse(reason) => {
                Err(Refusal::new(reason, stored.as_ref(), request, digest, wall_slot).into())
            }
            Decision::Advance(w) => {
                let seq = match guard.as_mut() {
                    // In memory only: the pipeline's write-ahead entry is its durable record.
                    Some(kf) if self.write_ahead => {
                        kf.seq += 1;
                        kf.watermark = Some(w);
                        kf.dirty = true;
                        kf.seq
                    }
                    _ => self.write(key, &mut guard, w)?,
                };
                let seq = i64::try_from(seq).map_err(|_| StoreError::Stale)?;
                Ok(Reserved::Proceed(Reservation::recorded(*key, w, seq)))
            }
        }
    }

    fn commit(
        &self,
        reservation: Reservation,
        signature: &Signature,
    ) -> Result<Signature, StoreError> {
        let key = *reservation.key();
        let slot = self.slot_for(&key);
        let mut guard = lock(&slot);
        let current = self.load(&key, &mut guard)?.and_then(|kf| kf.watermark);
        match super::commit_step(current.as_ref(), reservation.digest(), signature)? {
            CommitStep::Keep(existing) => Ok(existing),
            CommitStep::Write(w) => {
                match guard.as_mut() {
                    Some(kf) if self.write_ahead => {
                        kf.watermark = Some(w);
                        kf.dirty = true;
                    }
                    _ => self.write_commit(&key, &mut guard, w)?,
                }
                Ok(*signature)
            }
        }
    }

    fn get(&self, key: &WatermarkKey) -> Result<Option<Watermark>, StoreError> {
        let slot = self.slot_for(key);
        let mut guard = lock(&slot);
        Ok(self.load(key, &mut guard)?.and_then(|kf| kf.watermark))
    }

    fn export(&self) -> Result<Vec<WatermarkRecord>, StoreError> {
        // Write-ahead state newer than the files goes to them first: an export (a hand-over
        // at RetireKey included) never reads a watermark below what this process reserved.
        if self.write_ahead {
            self.flush()?;
        }
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            if path.extension().is_some_and(|e| e == "wm") {
                let (key, _, watermark) = read_file(&path)?;
                out.push(WatermarkRecord::new(&key, watermark));
            }
        }
        out.sort_by_key(|r| (r.chain_id, r.scope));
        Ok(out)
    }

    fn import(&self, record: &WatermarkRecord, force: bool) -> Result<(), StoreError> {
        let key = record.watermark_key();
        let slot = self.slot_for(&key);
        let mut guard = lock(&slot);
        let current = self.load(&key, &mut guard)?.and_then(|kf| kf.watermark);
        super::check_import(current.as_ref(), record, force)?;
        self.write(&key, &mut guard, record.watermark)?;
        Ok(())
    }

    fn raise(
        &self,
        key: &WatermarkKey,
        from: &PublicKey,
        floor: &Watermark,
    ) -> Result<Watermark, StoreError> {
        let slot = self.slot_for(key);
        let mut guard = lock(&slot);
        let current = self.load(key, &mut guard)?.and_then(|kf| kf.watermark);
        match super::handover(from, floor, current.as_ref()) {
            Some(w) => {
                self.write(key, &mut guard, w)?;
                Ok(w)
            }
            // `handover` answers None only when there is a current watermark covering `floor`.
            None => current.ok_or(StoreError::Stale),
        }
    }

    fn seal(&self, member: &WatermarkKey, scope: &WatermarkKey) -> Result<(), StoreError> {
        let key = *member.scope.key().ok_or(StoreError::Stale)?;
        // Held across the raise: nothing signs under the member's own watermark in between
        // (and the directory lock keeps other processes out).
        let slot = self.slot_for(member);
        let mut guard = lock(&slot);
        let current = self.load(member, &mut guard)?.and_then(|kf| kf.watermark);
        if let Some(w) = super::carried(current.as_ref()) {
            self.raise(scope, &key, w)?;
        }
        if let Some(sealed) = super::seal_step(&key, current.as_ref()) {
            self.write(member, &mut guard, sealed)?;
        }
        Ok(())
    }

    fn recover(&self, key: &WatermarkKey, seq: u64, w: &Watermark) -> Result<bool, StoreError> {
        let slot = self.slot_for(key);
        let mut guard = lock(&slot);
        let current = self.load(key, &mut guard)?.and_then(|kf| kf.watermark);
        let write = match current {
            // The very reservation, unsigned in the file: its signature from the log, if any.
            Some(c)
                if Watermark {
                    signature: None,
                    ..*w
                } == c =>
            {
                if w.signature.is_none() {
                    return Ok(false);
                }
                *w
            }
            Some(c) if super::covers(&c, w) => return Ok(false),
            // The file is older than the log (the reservation itself), or was rewritten since
            // by an import after the crash (raised to cover both): never lowered.
            Some(c) => super::cover(&c, w),
            None => *w,
        };
        self.guarded(&mut guard, |slot| {
            self.write_inner(key, slot, write, Some(seq))
        })?;
        Ok(true)
    }

    fn flush(&self) -> Result<(), StoreError> {
        let slots: Vec<_> = lock(&self.keys)
            .iter()
            .map(|(k, s)| (*k, s.clone()))
            .collect();
        for (key, slot) in slots {
            let mut guard = lock(&slot);
            // A failure keeps the state in memory (still dirty) for the next checkpoint.
            if let Some(kf) = guard.as_mut().filter(|kf| kf.dirty)
                && let Some(w) = kf.watermark
            {
                kf.write_copy(&key, w, kf.seq)?;
            }
        }
        Ok(())
    }

    fn health(&self) -> Result<(), StoreError> {
        // A unique name per probe, so concurrent probes cannot trip over each other.
        let n = self
            .probes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = self.dir.join(format!(".health-{}-{n}", std::process::id()));
        std::fs::write(&probe, b"ok").map_err(io(&probe))?;
        std::fs::remove_file(&probe).map_err(io(&probe))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::backend::{KeyBackend, soft::SoftKey};
    use oryx_proto::antelope::KeyType;

    fn key() -> WatermarkKey {
        WatermarkKey::of_key(
            Checksum256([7; 32]),
            *SoftKey::generate(KeyType::K1).unwrap().public_key(),
        )
    }

    fn sig(b: u8) -> Signature {
        Signature::from_parts(KeyType::K1, 0, &[b; 32], &[b; 32]).unwrap()
    }

    fn block(n: u32) -> Request {
        Request::Block {
            block_num: n,
            slot: n,
        }
    }

    fn proceed(r: Result<Reserved, ReserveError>) -> Reservation {
        match r {
            Ok(Reserved::Proceed(res)) => res,
            other => panic!("expected proceed, got {other:?}"),
        }
    }

    #[test]
    fn survives_reopen_and_replays() {
        let dir = tempfile::tempdir().unwrap();
        let k = key();
        let r = RetryPolicy::Refuse;
        {
            let s = FileStore::open(dir.path()).unwrap();
            let res = proceed(s.reserve(&k, &block(5), &Checksum256([1; 32]), 0, r));
            assert_eq!(s.commit(res, &sig(1)).unwrap(), sig(1));
            let res = proceed(s.reserve(&k, &block(6), &Checksum256([2; 32]), 0, r));
            s.commit(res, &sig(2)).unwrap();
        }
        let s = FileStore::open(dir.path()).unwrap();
        assert!(
            matches!(s.reserve(&k, &block(6), &Checksum256([2; 32]), 0, r), Ok(Reserved::Replay(x)) if x == sig(2))
        );
        assert!(matches!(
            s.reserve(&k, &block(6), &Checksum256([3; 32]), 0, r),
            Err(ReserveError::Refused(_))
        ));
        assert!(matches!(
            s.reserve(&k, &block(5), &Checksum256([3; 32]), 0, r),
            Err(ReserveError::Refused(_))
        ));
        assert_eq!(s.export().unwrap().len(), 1);
    }

    #[test]
    fn write_ahead_holds_reservations_in_memory_until_a_flush_and_spares_the_synced_copy() {
        let dir = tempfile::tempdir().unwrap();
        let k = key();
        let r = RetryPolicy::Refuse;
        let digest = |n: u32| Checksum256([n as u8; 32]);
        let s = FileStore::open(dir.path()).unwrap().write_ahead(true);
        // The first reservation creates the file (synced): nothing to rebuild it from.
        let res = proceed(s.reserve(&k, &block(1), &digest(1), 0, r));
        s.commit(res, &sig(1)).unwrap();
        s.flush().unwrap();
        let path = dir.path().join(file_name(&k));
        let halves = |bytes: &[u8]| (decode(&bytes[..SLOT]), decode(&bytes[SLOT..COMMIT_AT]));
        let synced = std::fs::read(&path).unwrap();
        let last_synced = read_file(&path).unwrap();
        assert_eq!(last_synced.2.signature, Some(sig(1)));
        for n in 2..=5 {
            let res = proceed(s.reserve(&k, &block(n), &digest(n), 0, r));
            assert_eq!(res.version().unwrap().0.block_num, n);
            s.commit(res, &sig(n as u8)).unwrap();
        }
        // In memory only: the file is as synced, and the store answers from memory.
        assert_eq!(std::fs::read(&path).unwrap(), synced);
        assert!(matches!(
            s.reserve(&k, &block(5), &digest(5), 0, r),
            Ok(Reserved::Replay(x)) if x == sig(5)
        ));
        // A flush writes the other half: the last synced copy stays whole beside it.
        s.flush().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (a, b) = halves(&bytes);
        let copies = [a.unwrap(), b.unwrap()];
        assert!(copies.contains(&last_synced), "{copies:?}");
        let (_, seq, w) = read_file(&path).unwrap();
        assert_eq!((w.block_num, w.signature), (5, Some(sig(5))));
        // Recovery: an older reservation never lowers it; a newer one raises it.
        let older = Watermark {
            block_num: 3,
            slot: 3,
            wall_slot: 0,
            digest: digest(3),
            signature: None,
        };
        assert!(!s.recover(&k, 3, &older).unwrap());
        let newer = Watermark {
            block_num: 9,
            digest: digest(9),
            slot: 9,
            ..older
        };
        assert!(s.recover(&k, seq + 1, &newer).unwrap());
        drop(s);
        let s = FileStore::open(dir.path()).unwrap();
        assert_eq!(s.get(&k).unwrap().unwrap().block_num, 9);
    }

    #[test]
    fn a_failed_write_fails_its_request_only_and_the_key_resumes_without_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (k, other) = (key(), key());
        let r = RetryPolicy::Refuse;
        let s = FileStore::open(dir.path()).unwrap();
        let res = proceed(s.reserve(&k, &block(1), &Checksum256([1; 32]), 0, r));
        s.commit(res, &sig(1)).unwrap();
        // The key's open file stops taking writes (as a full or failing disk would).
        let path = dir.path().join(file_name(&k));
        {
            let slot = s.slot_for(&k);
            let mut guard = lock(&slot);
            guard.as_mut().unwrap().file = File::open(&path).unwrap();
        }
        let err = s
            .reserve(&k, &block(2), &Checksum256([2; 32]), 0, r)
            .unwrap_err();
        assert!(
            matches!(err, ReserveError::Store(StoreError::Io { .. })),
            "{err:?}"
        );
        // Other keys are not stopped, and neither is the store's health.
        let res = proceed(s.reserve(&other, &block(9), &Checksum256([9; 32]), 0, r));
        s.commit(res, &sig(9)).unwrap();
        s.health().unwrap();
        // The key's next request reads its file back and goes on; the failed reservation was
        // never written, so block 2 is still free, and the old watermark still holds.
        assert!(matches!(
            s.reserve(&k, &block(1), &Checksum256([3; 32]), 0, r),
            Err(ReserveError::Refused(_))
        ));
        let res = proceed(s.reserve(&k, &block(2), &Checksum256([2; 32]), 0, r));
        s.commit(res, &sig(2)).unwrap();
        drop(s);
        let (_, _, w) = read_file(&path).unwrap();
        assert_eq!((w.block_num, w.signature), (2, Some(sig(2))));
    }

    #[test]
    fn a_torn_copy_falls_back_to_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let k = key();
        let s = FileStore::open(dir.path()).unwrap();
        for n in 1..=3u32 {
            let res = proceed(s.reserve(
                &k,
                &block(n),
                &Checksum256([n as u8; 32]),
                0,
                RetryPolicy::Refuse,
            ));
            s.commit(res, &sig(n as u8)).unwrap();
        }
        drop(s);
        // Three reservations (seqs 1-3, seq 3 in slot 1), the last one's commit record after them.
        let path = dir.path().join(file_name(&k));
        let mut bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 3 * SLOT);
        let (_, seq, w) = read_file(&path).unwrap();
        assert_eq!((seq, w.block_num, w.signature), (3, 3, Some(sig(3))));
        // A torn commit record: the reservation stands, unsigned (an identical retry signs again).
        bytes[COMMIT_AT + 100] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, seq, w) = read_file(&path).unwrap();
        assert_eq!((seq, w.block_num, w.signature), (3, 3, None));
        bytes[COMMIT_AT + 100] ^= 0xff;
        // Tear the newest copy (seq 3, slot 1): the other copy (block 2) wins, and the commit
        // record, which belongs to seq 3, is not applied to it.
        bytes[SLOT + 100] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, seq, w) = read_file(&path).unwrap();
        assert_eq!((seq, w.block_num, w.signature), (2, 2, None));
        // Both torn: a clear error, at open.
        bytes[100] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            FileStore::open(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_commit_record_counts_only_for_its_own_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let k = key();
        let r = RetryPolicy::Refuse;
        let s = FileStore::open(dir.path()).unwrap();
        let res = proceed(s.reserve(&k, &block(1), &Checksum256([1; 32]), 0, r));
        s.commit(res, &sig(1)).unwrap();
        // Reserved, not committed: the older commit record is not this reservation's signature.
        let _ = proceed(s.reserve(&k, &block(2), &Checksum256([2; 32]), 0, r));
        drop(s);
        let path = dir.path().join(file_name(&k));
        let (_, seq, w) = read_file(&path).unwrap();
        assert_eq!((seq, w.block_num, w.signature), (2, 2, None));
        // After a restart the identical request is signed again; a different one is refused.
        let s = FileStore::open(dir.path()).unwrap();
        let res = proceed(s.reserve(&k, &block(2), &Checksum256([2; 32]), 0, r));
        assert_eq!(s.commit(res, &sig(2)).unwrap(), sig(2));
        assert!(matches!(
            s.reserve(&k, &block(2), &Checksum256([3; 32]), 0, r),
            Err(ReserveError::Refused(_))
        ));
        drop(s);
        // A file from before commit records (two copies only) reads as before.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(2 * SLOT);
        std::fs::write(&path, &bytes).unwrap();
        let (_, seq, w) = read_file(&path).unwrap();
        assert_eq!((seq, w.block_num, w.signature), (3, 2, None));
        let s = FileStore::open(dir.path()).unwrap();
        assert!(matches!(
            s.reserve(&k, &block(2), &Checksum256([3; 32]), 0, r),
            Err(ReserveError::Refused(_))
        ));
    }

    #[test]
    fn import_refuses_to_lower_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let soft = SoftKey::generate(KeyType::K1).unwrap();
        let k = WatermarkKey::of_key(Checksum256([7; 32]), *soft.public_key());
        let s = FileStore::open(dir.path()).unwrap();
        let digest = Checksum256([1; 32]);
        let res = proceed(s.reserve(&k, &block(10), &digest, 0, RetryPolicy::Refuse));
        let real = crate::signing::sign(&soft, &digest, Default::default())
            .unwrap()
            .signature;
        s.commit(res, &real).unwrap();
        let mut rec = s.export().unwrap().remove(0);
        rec.watermark.block_num = 9;
        assert!(matches!(
            s.import(&rec, false),
            Err(StoreError::WouldLower { .. })
        ));
        // Same height, another digest: refused (it would reopen a signed height).
        let mut other = s.export().unwrap().remove(0);
        other.watermark.digest = Checksum256([2; 32]);
        other.watermark.signature = None;
        assert!(matches!(
            s.import(&other, false),
            Err(StoreError::BadImport { .. })
        ));
        // A signature that does not belong to the digest: refused even with --force.
        let mut forged = s.export().unwrap().remove(0);
        forged.watermark.signature = Some(sig(1));
        assert!(matches!(
            s.import(&forged, true),
            Err(StoreError::BadImport { .. })
        ));
        s.import(&rec, true).unwrap();
        assert_eq!(s.get(&k).unwrap().unwrap().block_num, 9);
        // A second writer is locked out; a read-only view still reads.
        assert!(matches!(
            FileStore::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
        let ro = FileStore::open_read_only(dir.path()).unwrap();
        assert_eq!(ro.export().unwrap().len(), 1);
        assert!(matches!(ro.import(&rec, true), Err(StoreError::ReadOnly)));
        let json = serde_json::to_string(&rec).unwrap();
        assert_eq!(serde_json::from_str::<WatermarkRecord>(&json).unwrap(), rec);
    }

    #[test]
    fn concurrent_conflicting_requests_get_one_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let k = key();
        let s = Arc::new(FileStore::open(dir.path()).unwrap());
        let handles: Vec<_> = (0..16u8)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    match s.reserve(&k, &block(1), &Checksum256([i; 32]), 0, RetryPolicy::Refuse) {
                        Ok(Reserved::Proceed(res)) => s.commit(res, &sig(i)).map(|_| 1).unwrap(),
                        _ => 0,
                    }
                })
            })
            .collect();
        let granted: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(granted, 1);
    }
}
