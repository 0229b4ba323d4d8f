//! The block log: an append-only file of signed blocks plus an index of their offsets.
//!
//! This module does file I/O (unlike [`crate::antelope`]); it lives in `oryx-proto` so that both
//! the producer (`oryx-node produce`, which writes it) and the operator CLI (`oryx inspect
//! blocklog`, which reads it) share one reader without the CLI linking the node.
//!
//! Layout of a log directory:
//!
//! ```text
//! blocks.log    "ORYXBLK1" then entries: len u32 LE ‖ pack(signed_block) ‖ sha256(block)[0..4]
//! blocks.index  one u64 LE per entry: the entry's byte offset in blocks.log
//! ```
//!
//! Guards: crash safety and continuity. An entry is fdatasync'ed before its index slot is
//! written, so the index never points past durable data. On open a torn tail (a partial entry,
//! a last entry whose checksum fails, or a zero-filled tail) is truncated, and an index that does
//! not match the log is rebuilt from the log. Corruption anywhere else is an error that names the
//! offset, never a panic and never a silent truncation of good blocks. Appends must continue the
//! chain: block number `head + 1` and `previous == head id`.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use crate::antelope::block::num_from_id;
use crate::antelope::signed_block::SignedBlock;
use crate::antelope::{BlockTimestamp, Checksum256, Pack as _};

/// File name of the log inside its directory.
pub const LOG_FILE: &str = "blocks.log";
/// File name of the index inside its directory.
pub const INDEX_FILE: &str = "blocks.index";
/// The first 8 bytes of every log.
pub const MAGIC: &[u8; 8] = b"ORYXBLK1";
/// Largest entry accepted (a real block is far below this).
pub const MAX_BLOCK_BYTES: u32 = 32 << 20;

/// Why the block log could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockLogError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a block log.
    #[error("{path}: not an Oryx block log (it does not start with {magic:?})", magic = String::from_utf8_lossy(MAGIC))]
    BadMagic {
        /// The file.
        path: String,
    },
    /// An entry before the tail is damaged: the log is not trustworthy past it.
    #[error(
        "{path}: damaged entry at byte {offset}: {detail}. Good blocks follow it, so it is not a torn write; \
         move the directory aside and rebuild it from a healthy peer's log"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// Offset of the damaged entry.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The block does not continue the chain at the head of the log.
    #[error("block {block_num} does not continue the log head: {detail}")]
    NotNext {
        /// The refused block's number.
        block_num: u32,
        /// How it fails to connect.
        detail: String,
    },
    /// The block itself is malformed.
    #[error("block: {0}")]
    Format(#[from] crate::Error),
}

type Result<T> = std::result::Result<T, BlockLogError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlockLogError + '_ {
    move |source| BlockLogError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The newest block of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its number.
    pub block_num: u32,
    /// Its id.
    pub id: Checksum256,
    /// Its slot.
    pub timestamp: BlockTimestamp,
}

impl Head {
    /// The head of a decoded block.
    pub fn of(block: &SignedBlock) -> std::result::Result<Head, crate::Error> {
        Ok(Head {
            block_num: block.header.block_num()?,
            id: block.header.id()?,
            timestamp: block.header.timestamp,
        })
    }
}

/// One complete entry found by [`scan`].
#[derive(Debug, Clone)]
pub struct Entry {
    /// Offset of the entry (its length prefix) in the log.
    pub offset: u64,
    /// The block bytes (`pack(signed_block)`).
    pub bytes: Vec<u8>,
    /// The decoded block.
    pub block: SignedBlock,
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// At the end of the data, after a complete entry.
    Clean,
    /// At a torn tail starting at this offset (an incomplete write): everything from here on is
    /// not part of the log.
    Torn(u64),
}

/// The outcome of [`scan`].
#[derive(Debug)]
pub struct Scan {
    /// Complete, checked entries in order.
    pub entries: Vec<Entry>,
    /// Offset just past the last complete entry.
    pub end: u64,
    /// How it ended.
    pub how: ScanEnd,
}

fn checksum(bytes: &[u8]) -> [u8; 4] {
    let d = Checksum256::hash(bytes);
    [d.0[0], d.0[1], d.0[2], d.0[3]]
}

/// Encodes one log entry.
pub fn encode_entry(block_bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(block_bytes.len() + 8);
    // Blocks are bounded far below u32::MAX by MAX_BLOCK_BYTES (checked by `append`).
    out.extend_from_slice(
        &u32::try_from(block_bytes.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(block_bytes);
    out.extend_from_slice(&checksum(block_bytes));
    out
}

/// Parses entries from `data`, whose first byte is at log offset `base` (pure; no I/O).
///
/// `durable_end` is where the last entry the index points at ends (when the index is
/// readable): everything before it was acknowledged, so any damage there is corruption; from
/// there on only complete, checked entries count and the first damaged byte starts a torn tail
/// (an append cut by a crash), whatever it looks like. Without it, the rule is by position: a
/// damaged entry at the very end (incomplete, a bad checksum on the last entry, a zero-filled
/// remainder) is a torn tail, a damaged entry followed by more data is corruption. An entry whose
/// checksum matches but whose block does not decode was written whole, so it is always
/// corruption, never cut. Corruption is `Err((offset, detail))`.
pub fn scan(
    data: &[u8],
    base: u64,
    durable_end: Option<u64>,
) -> std::result::Result<Scan, (u64, String)> {
    let mut entries = Vec::new();
    let mut pos = 0usize;
    let torn = |entries, pos: usize| Scan {
        entries,
        end: base + pos as u64,
        how: ScanEnd::Torn(base + pos as u64),
    };
    while pos < data.len() {
        let rest = &data[pos..];
        let offset = base + pos as u64;
        // Past the acknowledged end, any damage is the cut append.
        let unacknowledged = durable_end.is_some_and(|d| offset >= d);
        if rest.iter().all(|b| *b == 0) || rest.len() < 4 {
            // A crash after the file grew but before the data reached the disk leaves zeros.
            return if durable_end.is_some_and(|d| offset < d) {
                Err((offset, "the log ends before the last indexed entry".into()))
            } else {
                Ok(torn(entries, pos))
            };
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if len == 0 || len > MAX_BLOCK_BYTES {
            if unacknowledged {
                return Ok(torn(entries, pos));
            }
            return Err((offset, format!("entry length {len} is impossible")));
        }
        let total = 4 + len as usize + 4;
        if rest.len() < total {
            if durable_end.is_some_and(|d| offset < d) {
                return Err((offset, "the last indexed entry is incomplete".into()));
            }
            return Ok(torn(entries, pos));
        }
        let bytes = &rest[4..4 + len as usize];
        let at_end = rest.len() == total;
        if rest[4 + len as usize..total] != checksum(bytes) {
            if unacknowledged || (durable_end.is_none() && at_end) {
                return Ok(torn(entries, pos));
            }
            return Err((offset, "checksum mismatch".into()));
        }
        let block = SignedBlock::decode(bytes).map_err(|e| {
            (
                offset,
                format!("a whole entry (checksum good) does not decode as a block: {e}"),
            )
        })?;
        entries.push(Entry {
            offset,
            bytes: bytes.to_vec(),
            block,
        });
        pos += total;
    }
    Ok(Scan {
        entries,
        end: base + pos as u64,
        how: ScanEnd::Clean,
    })
}

/// Where the last entry the index file points at ends, if the index is readable and agrees
/// with the log (`log` is the whole file, magic included).
fn indexed_end(index: Option<&[u8]>, log: &[u8]) -> Option<u64> {
    let index = index?;
    if index.is_empty() || index.len() % 8 != 0 {
        return None;
    }
    let last = index.chunks_exact(8).last()?;
    let offset = u64::from_le_bytes(last.try_into().ok()?);
    let at = usize::try_from(offset).ok()?;
    let len = log.get(at..at.checked_add(4)?)?;
    let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
    let end = at.checked_add(4)?.checked_add(len)?.checked_add(4)?;
    (offset >= MAGIC.len() as u64 && end <= log.len()).then_some(end as u64)
}

fn check_continuity(path: &Path, entries: &[Entry]) -> Result<()> {
    for pair in entries.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let a_id = a.block.header.id()?;
        if b.block.header.previous != a_id {
            return Err(BlockLogError::Corrupt {
                path: path.display().to_string(),
                offset: b.offset,
                detail: format!(
                    "block {} does not link to the entry before it (previous {} ≠ {a_id})",
                    b.block.header.block_num()?,
                    b.block.header.previous
                ),
            });
        }
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

fn check_magic(path: &Path, data: &[u8]) -> Result<()> {
    // A file shorter than the magic is a log whose creation was torn.
    if data.len() >= MAGIC.len() && &data[..MAGIC.len()] != MAGIC
        || data.len() < MAGIC.len() && data != &MAGIC[..data.len()]
    {
        return Err(BlockLogError::BadMagic {
            path: path.display().to_string(),
        });
    }
    Ok(())
}

/// Every block of the log in `dir`, read-only (the directory is not changed). A torn tail is
/// left out and reported; a log another process is appending to can be read this way.
pub fn read_all(dir: &Path) -> Result<(Vec<Entry>, ScanEnd)> {
    let path = dir.join(LOG_FILE);
    let data = read_file(&path)?.ok_or_else(|| {
        io(&path)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no block log here (expected blocks.log in this directory)",
        ))
    })?;
    check_magic(&path, &data)?;
    let body = data.get(MAGIC.len()..).unwrap_or_default();
    let s = scan(body, MAGIC.len() as u64, None).map_err(|(offset, detail)| {
        BlockLogError::Corrupt {
            path: path.display().to_string(),
            offset,
            detail,
        }
    })?;
    check_continuity(&path, &s.entries)?;
    Ok((s.entries, s.how))
}

/// Follows a log another process appends to: each [`LogTail::poll`] returns the entries that
/// became complete since the last one.
#[derive(Debug)]
pub struct LogTail {
    path: PathBuf,
    offset: u64,
    /// (device, inode) of the file the offset belongs to.
    file_id: Option<(u64, u64)>,
}

impl LogTail {
    /// Starts at the beginning of `dir`'s log (which need not exist yet).
    pub fn new(dir: &Path) -> LogTail {
        LogTail {
            path: dir.join(LOG_FILE),
            offset: 0,
            file_id: None,
        }
    }

    /// The log file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// New complete entries (none when the file does not exist yet).
    pub fn poll(&mut self) -> Result<Vec<Entry>> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.path)(e)),
        };
        let meta = file.metadata().map_err(io(&self.path))?;
        let len = meta.len();
        let id = {
            use std::os::unix::fs::MetadataExt as _;
            (meta.dev(), meta.ino())
        };
        if self.file_id.replace(id).is_some_and(|old| old != id) {
            // Another file now (a restore, a replacement): its offsets are not ours.
            self.offset = 0;
        }
        if len < self.offset {
            // The writer truncated a torn tail or the log was replaced: start over; the caller
            // skips blocks it already has.
            self.offset = 0;
        }
        if self.offset == 0 {
            let mut magic = Vec::new();
            (&mut file)
                .take(MAGIC.len() as u64)
                .read_to_end(&mut magic)
                .map_err(io(&self.path))?;
            check_magic(&self.path, &magic)?;
            if magic.len() < MAGIC.len() {
                return Ok(Vec::new());
            }
            self.offset = MAGIC.len() as u64;
        }
        file.seek(SeekFrom::Start(self.offset))
            .map_err(io(&self.path))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io(&self.path))?;
        let s =
            scan(&data, self.offset, None).map_err(|(offset, detail)| BlockLogError::Corrupt {
                path: self.path.display().to_string(),
                offset,
                detail,
            })?;
        self.offset = s.end;
        Ok(s.entries)
    }
}

/// What [`BlockLog::open`] had to repair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes of a torn tail that were cut off the log.
    pub truncated_bytes: u64,
    /// Whether the index was rebuilt from the log.
    pub index_rebuilt: bool,
}

/// The writable block log of one producer.
#[derive(Debug)]
pub struct BlockLog {
    dir: PathBuf,
    log: File,
    index: File,
    offsets: Vec<u64>,
    end: u64,
    first: Option<u32>,
    head: Option<Head>,
    /// A write to the index failed: it is no longer appended to until the next `open`.
    index_stale: bool,
    index_error: Option<String>,
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl BlockLog {
    /// Opens (creating if needed) the log in `dir`, cutting a torn tail and rebuilding the
    /// index when it does not match the log. Also returns the blocks it holds, which open has
    /// read and checked anyway, so a caller rebuilding its state needs no second read.
    pub fn open(dir: &Path) -> Result<(BlockLog, Recovery, Vec<Entry>)> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let log_path = dir.join(LOG_FILE);
        let index_path = dir.join(INDEX_FILE);
        let mut recovery = Recovery::default();
        let data = read_file(&log_path)?.unwrap_or_default();
        check_magic(&log_path, &data)?;
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        if data.len() < MAGIC.len() {
            log.set_len(0).map_err(io(&log_path))?;
            log.write_all(MAGIC).map_err(io(&log_path))?;
            log.sync_all().map_err(io(&log_path))?;
            sync_dir(dir)?;
        }
        let body = data.get(MAGIC.len()..).unwrap_or_default();
        let old_index = read_file(&index_path)?;
        let durable = indexed_end(old_index.as_deref(), &data);
        let s = scan(body, MAGIC.len() as u64, durable).map_err(|(offset, detail)| {
            BlockLogError::Corrupt {
                path: log_path.display().to_string(),
                offset,
                detail,
            }
        })?;
        check_continuity(&log_path, &s.entries)?;
        let end = s.end.max(MAGIC.len() as u64);
        if let ScanEnd::Torn(at) = s.how {
            recovery.truncated_bytes = data.len() as u64 - at;
            log.set_len(at).map_err(io(&log_path))?;
            log.sync_all().map_err(io(&log_path))?;
        }
        let offsets: Vec<u64> = s.entries.iter().map(|e| e.offset).collect();
        let want: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        if old_index.as_deref() != Some(&want[..]) {
            crate::durable::write_atomic(&index_path, &want, 0o644).map_err(|e| {
                BlockLogError::Io {
                    path: e.path.display().to_string(),
                    source: e.source,
                }
            })?;
            recovery.index_rebuilt = !s.entries.is_empty() || recovery.truncated_bytes > 0;
        }
        let index = OpenOptions::new()
            .append(true)
            .open(&index_path)
            .map_err(io(&index_path))?;
        let first = match s.entries.first() {
            Some(e) => Some(e.block.header.block_num()?),
            None => None,
        };
        let head = match s.entries.last() {
            Some(e) => Some(Head::of(&e.block)?),
            None => None,
        };
        Ok((
            BlockLog {
                dir: dir.to_path_buf(),
                log,
                index,
                offsets,
                end,
                first,
                head,
                index_stale: false,
                index_error: None,
            },
            recovery,
            s.entries,
        ))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index write that failed, if one did since `open` (the log itself is intact; the
    /// next `open` rebuilds the index).
    pub fn index_error(&self) -> Option<&str> {
        self.index_error.as_deref()
    }

    /// The newest block, if any.
    pub fn head(&self) -> Option<Head> {
        self.head
    }

    /// Number of the oldest block, if any.
    pub fn first_num(&self) -> Option<u32> {
        self.first
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether the log has no block.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Appends a block that continues the head (durable when this returns).
    pub fn append(&mut self, block: &SignedBlock) -> Result<Head> {
        let head = Head::of(block)?;
        if let Some(h) = self.head
            && (head.block_num != h.block_num.wrapping_add(1) || block.header.previous != h.id)
        {
            return Err(BlockLogError::NotNext {
                block_num: head.block_num,
                detail: format!(
                    "the log head is block {} ({}); the block's previous is {} (block {})",
                    h.block_num,
                    h.id,
                    block.header.previous,
                    num_from_id(&block.header.previous)
                ),
            });
        }
        let bytes = block.packed();
        if bytes.len() > MAX_BLOCK_BYTES as usize {
            return Err(BlockLogError::NotNext {
                block_num: head.block_num,
                detail: format!(
                    "{} bytes is above the {MAX_BLOCK_BYTES}-byte limit",
                    bytes.len()
                ),
            });
        }
        let log_path = self.dir.join(LOG_FILE);
        let index_path = self.dir.join(INDEX_FILE);
        let entry = encode_entry(&bytes);
        let offset = self.end;
        if let Err(e) = self
            .log
            .write_all(&entry)
            .and_then(|()| self.log.sync_data())
        {
            // Cut whatever part was written so the next append starts on a boundary.
            let _ = self.log.set_len(offset);
            return Err(io(&log_path)(e));
        }
        self.end += entry.len() as u64;
        // The entry is durable: the block is in the log whatever happens to the index, so the
        // head moves now (an error here would let the same height be appended twice).
        self.offsets.push(offset);
        self.first.get_or_insert(head.block_num);
        self.head = Some(head);
        // Only now may the index point at it. After a failed index write the index is left
        // alone until `open` rebuilds it from the log (the next append would misalign it).
        if !self.index_stale
            && let Err(e) = self
                .index
                .write_all(&offset.to_le_bytes())
                .and_then(|()| self.index.sync_data())
        {
            self.index_stale = true;
            self.index_error = Some(format!("{}: {e}", index_path.display()));
        }
        Ok(head)
    }

    /// The bytes of block `num`, if the log has it.
    pub fn read_raw(&self, num: u32) -> Result<Option<Vec<u8>>> {
        let Some(first) = self.first else {
            return Ok(None);
        };
        let Some(i) = num.checked_sub(first).map(|i| i as usize) else {
            return Ok(None);
        };
        let Some(&offset) = self.offsets.get(i) else {
            return Ok(None);
        };
        let path = self.dir.join(LOG_FILE);
        let mut f = File::open(&path).map_err(io(&path))?;
        f.seek(SeekFrom::Start(offset)).map_err(io(&path))?;
        let mut len = [0u8; 4];
        f.read_exact(&mut len).map_err(io(&path))?;
        let len = u32::from_le_bytes(len);
        if len == 0 || len > MAX_BLOCK_BYTES {
            return Err(BlockLogError::Corrupt {
                path: path.display().to_string(),
                offset,
                detail: format!("entry length {len} is impossible"),
            });
        }
        let mut buf = vec![0u8; len as usize + 4];
        f.read_exact(&mut buf).map_err(io(&path))?;
        let (bytes, sum) = buf.split_at(len as usize);
        if sum != checksum(bytes) {
            return Err(BlockLogError::Corrupt {
                path: path.display().to_string(),
                offset,
                detail: "checksum mismatch".into(),
            });
        }
        Ok(Some(bytes.to_vec()))
    }

    /// Block `num`, if the log has it.
    pub fn read(&self, num: u32) -> Result<Option<SignedBlock>> {
        Ok(match self.read_raw(num)? {
            Some(b) => Some(SignedBlock::decode(&b)?),
            None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::antelope::block::{BlockHeader, SAVANNA_SCHEDULE_VERSION};
    use crate::antelope::signed_block::transaction_mroot;
    use crate::antelope::transaction::Extension;
    use crate::antelope::{Bytes, KeyType, Name, Signature};

    fn chain(n: usize) -> Vec<SignedBlock> {
        let mut previous = Checksum256([0x11; 32]);
        previous.0[..4].copy_from_slice(&1u32.to_be_bytes());
        let mut out = Vec::new();
        for i in 0..n {
            let header = BlockHeader {
                timestamp: BlockTimestamp(100 + i as u32),
                producer: Name::new("oryxproducer").unwrap(),
                confirmed: 0,
                previous,
                transaction_mroot: transaction_mroot(
                    crate::antelope::block::BlockKind::Savanna,
                    &[],
                ),
                action_mroot: Checksum256::default(),
                schedule_version: SAVANNA_SCHEDULE_VERSION,
                new_producers: None,
                header_extensions: vec![Extension(2, Bytes(vec![1, 0, 0, 0, 1, 0, 0]))],
            };
            previous = header.id().unwrap();
            out.push(SignedBlock {
                header,
                producer_signature: Signature::from_parts(KeyType::K1, 0, &[7; 32], &[8; 32])
                    .unwrap(),
                transactions: vec![],
                block_extensions: vec![],
            });
        }
        out
    }

    /// An append cut by a crash past the last indexed entry is cut away whatever it looks like
    /// (here: a length that reads as zero, then garbage), while a whole entry that does not
    /// decode is never silently dropped.
    #[test]
    fn the_index_marks_what_was_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(3);
        {
            let (mut log, _, _) = BlockLog::open(dir.path()).unwrap();
            for b in &blocks {
                log.append(b).unwrap();
            }
        }
        let path = dir.path().join(LOG_FILE);
        let good = std::fs::read(&path).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(&[0u8; 4096]);
        torn.extend_from_slice(&[0x5a; 300]);
        std::fs::write(&path, &torn).unwrap();
        let (log, rec, _) = BlockLog::open(dir.path()).unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(rec.truncated_bytes, 4396);
        drop(log);
        assert_eq!(std::fs::read(&path).unwrap(), good);

        // A whole entry (checksum good) that is not a block: corruption, never a torn tail.
        let mut bad = good.clone();
        bad.extend_from_slice(&encode_entry(b"not a signed block"));
        std::fs::write(&path, &bad).unwrap();
        let err = BlockLog::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("does not decode"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bad, "nothing was cut");

        // Damage inside an acknowledged entry is corruption too, even in the last one.
        let mut flipped = good.clone();
        let last = flipped.len() - 10;
        flipped[last] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        assert!(BlockLog::open(dir.path()).is_err());
    }

    #[test]
    fn append_reopen_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(5);
        {
            let (mut log, rec, _) = BlockLog::open(dir.path()).unwrap();
            assert_eq!(rec, Recovery::default());
            for b in &blocks {
                log.append(b).unwrap();
            }
            // A block that does not continue the head is refused.
            assert!(matches!(
                log.append(&blocks[2]),
                Err(BlockLogError::NotNext { .. })
            ));
        }
        let (log, rec, entries) = BlockLog::open(dir.path()).unwrap();
        assert_eq!(rec, Recovery::default());
        assert_eq!(log.len(), 5);
        let opened: Vec<SignedBlock> = entries.into_iter().map(|e| e.block).collect();
        assert_eq!(opened, blocks);
        assert_eq!(log.first_num(), Some(2));
        assert_eq!(log.head().unwrap().block_num, 6);
        assert_eq!(log.read(4).unwrap().unwrap(), blocks[2]);
        assert_eq!(log.read(7).unwrap(), None);
        let (all, end) = read_all(dir.path()).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(end, ScanEnd::Clean);
    }

    #[test]
    fn torn_tails_are_cut_and_the_index_rebuilt() {
        let blocks = chain(4);
        let entry_len = encode_entry(&blocks[3].packed()).len();
        // Every possible torn length of the last entry, plus a zero-filled tail.
        for cut in (1..entry_len).step_by(7).chain([entry_len - 1]) {
            let dir = tempfile::tempdir().unwrap();
            {
                let (mut log, _, _) = BlockLog::open(dir.path()).unwrap();
                for b in &blocks {
                    log.append(b).unwrap();
                }
            }
            let path = dir.path().join(LOG_FILE);
            let len = std::fs::metadata(&path).unwrap().len();
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(len - cut as u64).unwrap();
            // The index still names the torn entry.
            let (log, rec, _) = BlockLog::open(dir.path()).unwrap();
            assert_eq!(log.len(), 3, "cut {cut}");
            assert_eq!(log.head().unwrap().block_num, 4);
            assert!(rec.index_rebuilt && rec.truncated_bytes > 0, "{rec:?}");
            assert_eq!(
                std::fs::metadata(dir.path().join(INDEX_FILE))
                    .unwrap()
                    .len(),
                24
            );
            drop(log);
            // And the log continues from there.
            let (mut log, rec, _) = BlockLog::open(dir.path()).unwrap();
            assert_eq!(rec, Recovery::default());
            log.append(&blocks[3]).unwrap();
        }
        // Zeros after the last entry (a grown file whose data never reached the disk).
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, _, _) = BlockLog::open(dir.path()).unwrap();
            log.append(&blocks[0]).unwrap();
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG_FILE))
            .unwrap();
        f.write_all(&[0; 100]).unwrap();
        let (log, rec, _) = BlockLog::open(dir.path()).unwrap();
        assert_eq!((log.len(), rec.truncated_bytes), (1, 100));
    }

    #[test]
    fn damage_before_the_tail_is_an_error_not_a_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(3);
        {
            let (mut log, _, _) = BlockLog::open(dir.path()).unwrap();
            for b in &blocks {
                log.append(b).unwrap();
            }
        }
        let path = dir.path().join(LOG_FILE);
        let mut data = std::fs::read(&path).unwrap();
        data[MAGIC.len() + 20] ^= 0xff; // inside the first block
        std::fs::write(&path, &data).unwrap();
        let err = BlockLog::open(dir.path()).unwrap_err();
        assert!(matches!(err, BlockLogError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("healthy peer"), "{err}");
        assert!(read_all(dir.path()).is_err());
        // Not a log at all.
        std::fs::write(&path, b"hello world, this is not a log").unwrap();
        assert!(matches!(
            BlockLog::open(dir.path()),
            Err(BlockLogError::BadMagic { .. })
        ));
    }

    #[test]
    fn a_tail_follows_appends_and_skips_partial_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut tail = LogTail::new(dir.path());
        assert!(tail.poll().unwrap().is_empty());
        let blocks = chain(3);
        let (mut log, _, _) = BlockLog::open(dir.path()).unwrap();
        log.append(&blocks[0]).unwrap();
        assert_eq!(tail.poll().unwrap().len(), 1);
        // Half an entry, as a writer in the middle of an append leaves it.
        let entry = encode_entry(&blocks[1].packed());
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG_FILE))
            .unwrap();
        f.write_all(&entry[..entry.len() / 2]).unwrap();
        assert!(tail.poll().unwrap().is_empty());
        f.write_all(&entry[entry.len() / 2..]).unwrap();
        let got = tail.poll().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].block, blocks[1]);
    }

    proptest::proptest! {
        #[test]
        fn scan_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = scan(&data, 8, None);
            let _ = scan(&data, 8, Some(20));
        }
    }
}
