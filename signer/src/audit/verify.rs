//! `oryx-signer audit verify`: re-checks a whole audit log, line by line.
//!
//! Guards: any edited, deleted, inserted, reordered or torn line is reported with its line
//! number and byte offset, and what is wrong with it. Pure over the bytes: the file functions
//! only stream the file through the same checks.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read as _};
use std::path::{Path, PathBuf};

use super::{AuditEntry, AuditEntryRef, GENESIS_PREV, MAX_LINE, line_hash, sha256_hex};

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// How many entries the log holds.
    pub entries: u64,
    /// `hash` of the last entry, `None` for an empty log. Record it (with `entries - 1` as its
    /// `seq`, see [`VerifyReport::last`]) somewhere off the host: verifying against it later is
    /// the only way to notice lines cut off the end of the file.
    pub last_hash: Option<String>,
}

impl VerifyReport {
    /// The last entry as an anchor for [`verify_against`], `None` for an empty log.
    pub fn last(&self) -> Option<AuditEntryRef> {
        let hash = self.last_hash.clone()?;
        Some(AuditEntryRef {
            seq: self.entries.checked_sub(1)?,
            hash,
        })
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.last() {
            Some(last) => write!(f, "ok: {} entries, last {last}", self.entries),
            None => write!(f, "ok: empty log"),
        }
    }
}

/// Why a log failed verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file could not be read.
    #[error("cannot read audit log {}: {source}", path.display())]
    Read {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A line breaks the format or the chain.
    #[error("audit log broken at line {line} (byte offset {offset}): {problem}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// Byte offset where the line starts.
        offset: u64,
        /// What is wrong.
        problem: LineProblem,
    },
    /// The anchored entry is in the log with another hash.
    #[error(
        "entry {seq} (line {line}) has hash {found} but the anchor says {expected}: the log \
         was rewritten up to this line"
    )]
    AnchorMismatch {
        /// The anchored `seq`.
        seq: u64,
        /// Its line.
        line: u64,
        /// The hash in the log.
        found: String,
        /// The hash in the anchor.
        expected: String,
    },
    /// The log ends before the anchored entry.
    #[error(
        "the log ends after {entries} entries, before the anchored entry {seq}: entries were \
         deleted from its end"
    )]
    AnchorMissing {
        /// The anchored `seq`.
        seq: u64,
        /// How many entries the log holds.
        entries: u64,
    },
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineProblem {
    /// The line is empty; the writer never writes one.
    #[error("empty line: lines were edited")]
    Empty,
    /// Longer than [`MAX_LINE`].
    #[error("line longer than {MAX_LINE} bytes: not written by the signer")]
    TooLong,
    /// Not UTF-8.
    #[error("not UTF-8 (first bad byte at column {column}): the line was edited or corrupted")]
    NotUtf8 {
        /// 0-based byte column of the first invalid byte.
        column: usize,
    },
    /// Not an audit entry.
    #[error("not a valid audit entry: {0}")]
    InvalidJson(String),
    /// Valid entry, but not byte for byte what the writer produces.
    #[error(
        "not in canonical form (spacing, field order or escaping differ from what the signer \
         writes): the line was edited"
    )]
    NotCanonical,
    /// `hash` does not match the line's content.
    #[error("hash {recorded} does not match the line's content ({computed}): the line was edited")]
    HashMismatch {
        /// The `hash` in the line.
        recorded: String,
        /// The hash of the line's content.
        computed: String,
    },
    /// `seq` is not the previous line's plus one.
    #[error(
        "seq is {found} where {expected} was expected: lines were deleted, duplicated or \
         reordered"
    )]
    SeqMismatch {
        /// The `seq` this line should have.
        expected: u64,
        /// The `seq` it has.
        found: u64,
    },
    /// `prev` is not the hash of the previous line.
    #[error(
        "prev does not match the previous line (or the all-zero start for line 1): the \
         previous line was edited, or lines were deleted, inserted or reordered here"
    )]
    PrevMismatch,
    /// The last line has no newline.
    #[error(
        "the last line has no newline: the file was cut, or the signer crashed during a \
         write; truncate the file to this offset to drop it"
    )]
    Torn,
}

/// Checks a whole log file.
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport, VerifyError> {
    verify_file(path.as_ref(), None)
}

/// Checks a whole log file and that it still holds `anchor` (an entry recorded earlier,
/// off the host): catches lines cut off the end and a rewritten chain.
pub fn verify_against(
    path: impl AsRef<Path>,
    anchor: &AuditEntryRef,
) -> Result<VerifyReport, VerifyError> {
    verify_file(path.as_ref(), Some(anchor))
}

/// Checks the bytes of a whole log.
pub fn verify_bytes(bytes: &[u8]) -> Result<VerifyReport, VerifyError> {
    verify_stream(bytes, Path::new("<bytes>"), None)
}

/// [`verify_bytes`], and that the log holds `anchor`.
pub fn verify_bytes_against(
    bytes: &[u8],
    anchor: &AuditEntryRef,
) -> Result<VerifyReport, VerifyError> {
    verify_stream(bytes, Path::new("<bytes>"), Some(anchor))
}

fn verify_file(path: &Path, anchor: Option<&AuditEntryRef>) -> Result<VerifyReport, VerifyError> {
    let file = File::open(path).map_err(|source| VerifyError::Read {
        path: path.to_owned(),
        source,
    })?;
    verify_stream(BufReader::with_capacity(1 << 16, file), path, anchor)
}

fn verify_stream<R: BufRead>(
    mut reader: R,
    path: &Path,
    anchor: Option<&AuditEntryRef>,
) -> Result<VerifyReport, VerifyError> {
    let mut chain = Chain::new(anchor);
    let mut buf = Vec::new();
    // One more byte than a line may hold, so an over-long line shows without reading it all.
    let limit = u64::try_from(MAX_LINE)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(|source| VerifyError::Read {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            return chain.finish();
        }
        match buf.strip_suffix(b"\n") {
            Some(line) => chain.push(line)?,
            None if buf.len() > MAX_LINE => return Err(chain.broken(LineProblem::TooLong)),
            // Fewer bytes than the limit and no newline: this was the end of the file.
            None => return Err(chain.broken(LineProblem::Torn)),
        }
    }
}

/// Checks one line on its own: UTF-8, an entry, canonical, `hash` right. Not `seq`/`prev`,
/// which need the line before.
pub(super) fn check_line(line: &[u8]) -> Result<AuditEntry, LineProblem> {
    if line.is_empty() {
        return Err(LineProblem::Empty);
    }
    if line.len() > MAX_LINE {
        return Err(LineProblem::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|e| LineProblem::NotUtf8 {
        column: e.valid_up_to(),
    })?;
    let entry: AuditEntry =
        serde_json::from_str(text).map_err(|e| LineProblem::InvalidJson(e.to_string()))?;
    let canonical =
        serde_json::to_vec(&entry).map_err(|e| LineProblem::InvalidJson(e.to_string()))?;
    if canonical != line {
        return Err(LineProblem::NotCanonical);
    }
    let computed = line_hash(line).ok_or(LineProblem::NotCanonical)?;
    if computed != entry.hash {
        return Err(LineProblem::HashMismatch {
            recorded: entry.hash,
            computed,
        });
    }
    Ok(entry)
}

/// The running state of a verification: what the next line must link to.
struct Chain<'a> {
    anchor: Option<&'a AuditEntryRef>,
    anchor_seen: bool,
    /// Lines accepted so far.
    lines: u64,
    /// Where the next line starts.
    offset: u64,
    /// SHA-256 hex of the last accepted line, or the genesis value.
    prev: String,
    last_hash: Option<String>,
}

impl<'a> Chain<'a> {
    fn new(anchor: Option<&'a AuditEntryRef>) -> Self {
        Chain {
            anchor,
            anchor_seen: false,
            lines: 0,
            offset: 0,
            prev: GENESIS_PREV.to_owned(),
            last_hash: None,
        }
    }

    /// The error for a problem on the next line.
    fn broken(&self, problem: LineProblem) -> VerifyError {
        VerifyError::Line {
            line: self.lines.saturating_add(1),
            offset: self.offset,
            problem,
        }
    }

    fn push(&mut self, line: &[u8]) -> Result<(), VerifyError> {
        let entry = check_line(line).map_err(|p| self.broken(p))?;
        // Line n holds seq n - 1, so the next seq is the count of lines accepted so far.
        if entry.seq != self.lines {
            return Err(self.broken(LineProblem::SeqMismatch {
                expected: self.lines,
                found: entry.seq,
            }));
        }
        if entry.prev != self.prev {
            return Err(self.broken(LineProblem::PrevMismatch));
        }
        if let Some(anchor) = self.anchor.filter(|a| a.seq == entry.seq) {
            if anchor.hash != entry.hash {
                return Err(VerifyError::AnchorMismatch {
                    seq: entry.seq,
                    line: self.lines.saturating_add(1),
                    found: entry.hash,
                    expected: anchor.hash.clone(),
                });
            }
            self.anchor_seen = true;
        }
        self.prev = sha256_hex(line);
        self.lines = self.lines.saturating_add(1);
        let len = u64::try_from(line.len()).unwrap_or(u64::MAX);
        self.offset = self.offset.saturating_add(len).saturating_add(1);
        self.last_hash = Some(entry.hash);
        Ok(())
    }

    fn finish(self) -> Result<VerifyReport, VerifyError> {
        if let Some(anchor) = self.anchor.filter(|_| !self.anchor_seen) {
            return Err(VerifyError::AnchorMissing {
                seq: anchor.seq,
                entries: self.lines,
            });
        }
        Ok(VerifyReport {
            entries: self.lines,
            last_hash: self.last_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::audit::{AuditDecision, AuditKind, AuditRecord, seal};

    /// `n` valid lines (without newlines), chained from `prev`.
    fn lines_from(n: u64, mut prev: String, reason: &str) -> Vec<Vec<u8>> {
        (0..n)
            .map(|seq| {
                let record = AuditRecord {
                    digest: Some(format!("{seq:064x}")),
                    reason: Some(reason.into()),
                    ..AuditRecord::new("node-1", AuditKind::SignDigest, AuditDecision::Signed)
                };
                let (line, _) = seal(
                    seq,
                    "2025-01-01T00:00:00.000000Z".into(),
                    record,
                    None,
                    &prev,
                )
                .unwrap();
                prev = sha256_hex(&line);
                line
            })
            .collect()
    }

    fn lines(n: u64) -> Vec<Vec<u8>> {
        lines_from(n, GENESIS_PREV.into(), "ok")
    }

    fn join(lines: &[Vec<u8>]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| l.iter().chain(b"\n"))
            .copied()
            .collect()
    }

    fn offset_of(lines: &[Vec<u8>], line_no: usize) -> u64 {
        u64::try_from(
            lines[..line_no - 1]
                .iter()
                .map(|l| l.len() + 1)
                .sum::<usize>(),
        )
        .unwrap()
    }

    /// Re-serializes an edited entry with a freshly computed `hash`, as a careful forger would.
    fn reseal(mut entry: AuditEntry) -> Vec<u8> {
        entry.hash = line_hash(&serde_json::to_vec(&entry).unwrap()).unwrap();
        serde_json::to_vec(&entry).unwrap()
    }

    fn entry(line: &[u8]) -> AuditEntry {
        serde_json::from_slice(line).unwrap()
    }

    #[track_caller]
    fn broken_at(bytes: &[u8], want_line: u64) -> (u64, LineProblem) {
        match verify_bytes(bytes) {
            Err(VerifyError::Line {
                line,
                offset,
                problem,
            }) => {
                assert_eq!(line, want_line, "{problem}");
                (offset, problem)
            }
            other => panic!("expected a broken line {want_line}, got {other:?}"),
        }
    }

    #[test]
    fn a_good_chain_verifies() {
        let ls = lines(5);
        let report = verify_bytes(&join(&ls)).unwrap();
        assert_eq!(report.entries, 5);
        let last = report.last().unwrap();
        assert_eq!(last.seq, 4);
        assert_eq!(last.hash, entry(&ls[4]).hash);
        assert!(report.to_string().contains("5 entries"));
        verify_bytes_against(&join(&ls), &last).unwrap();
        let first = AuditEntryRef {
            seq: 0,
            hash: entry(&ls[0]).hash,
        };
        verify_bytes_against(&join(&ls), &first).unwrap();
    }

    #[test]
    fn an_empty_log_verifies() {
        let report = verify_bytes(b"").unwrap();
        assert_eq!(report.entries, 0);
        assert_eq!(report.last_hash, None);
        assert_eq!(report.last(), None);
    }

    #[test]
    fn an_edited_field_breaks_its_own_line() {
        let mut ls = lines(5);
        let text = String::from_utf8(ls[2].clone()).unwrap();
        ls[2] = text.replace("\"signed\"", "\"refused\"").into_bytes();
        let (offset, problem) = broken_at(&join(&ls), 3);
        assert_eq!(offset, offset_of(&ls, 3));
        assert!(
            matches!(problem, LineProblem::HashMismatch { .. }),
            "{problem}"
        );
    }

    #[test]
    fn an_edited_and_rehashed_line_breaks_the_next_one() {
        let mut ls = lines(5);
        let mut e = entry(&ls[2]);
        e.decision = "refused".into();
        ls[2] = reseal(e);
        let (_, problem) = broken_at(&join(&ls), 4);
        assert_eq!(problem, LineProblem::PrevMismatch);
    }

    #[test]
    fn a_deleted_middle_line_is_found() {
        let mut ls = lines(5);
        ls.remove(2);
        let (offset, problem) = broken_at(&join(&ls), 3);
        assert_eq!(offset, offset_of(&ls, 3));
        assert_eq!(
            problem,
            LineProblem::SeqMismatch {
                expected: 2,
                found: 3
            }
        );
    }

    #[test]
    fn a_deleted_middle_line_with_renumbered_seqs_is_found() {
        let mut ls = lines(5);
        ls.remove(2);
        for (i, l) in ls.iter_mut().enumerate().skip(2) {
            let mut e = entry(l);
            e.seq = u64::try_from(i).unwrap();
            *l = reseal(e);
        }
        let (_, problem) = broken_at(&join(&ls), 3);
        assert_eq!(problem, LineProblem::PrevMismatch);
    }

    #[test]
    fn a_deleted_first_line_is_found() {
        let mut ls = lines(3);
        ls.remove(0);
        let (_, problem) = broken_at(&join(&ls), 1);
        assert_eq!(
            problem,
            LineProblem::SeqMismatch {
                expected: 0,
                found: 1
            }
        );
    }

    #[test]
    fn a_first_line_must_start_from_genesis() {
        let ls = lines_from(2, "11".repeat(32), "ok");
        let (_, problem) = broken_at(&join(&ls), 1);
        assert_eq!(problem, LineProblem::PrevMismatch);
    }

    #[test]
    fn a_deleted_last_line_needs_an_anchor() {
        let mut ls = lines(5);
        let anchor = AuditEntryRef {
            seq: 4,
            hash: entry(&ls[4]).hash,
        };
        ls.pop();
        // The shorter file is a valid chain on its own ...
        assert_eq!(verify_bytes(&join(&ls)).unwrap().entries, 4);
        // ... but not against the anchor kept off the host.
        match verify_bytes_against(&join(&ls), &anchor).unwrap_err() {
            VerifyError::AnchorMissing { seq: 4, entries: 4 } => {}
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_rewritten_chain_fails_its_anchor() {
        let original = lines(3);
        let anchor = AuditEntryRef {
            seq: 1,
            hash: entry(&original[1]).hash,
        };
        let forged = lines_from(3, GENESIS_PREV.into(), "forged");
        verify_bytes(&join(&forged)).unwrap();
        match verify_bytes_against(&join(&forged), &anchor).unwrap_err() {
            VerifyError::AnchorMismatch {
                seq: 1, line: 2, ..
            } => {}
            other => panic!("{other}"),
        }
    }

    #[test]
    fn swapped_lines_are_found() {
        let mut ls = lines(5);
        ls.swap(1, 2);
        let (_, problem) = broken_at(&join(&ls), 2);
        assert_eq!(
            problem,
            LineProblem::SeqMismatch {
                expected: 1,
                found: 2
            }
        );
    }

    #[test]
    fn a_duplicated_line_is_found() {
        let mut ls = lines(3);
        ls.insert(2, ls[1].clone());
        let (_, problem) = broken_at(&join(&ls), 3);
        assert_eq!(
            problem,
            LineProblem::SeqMismatch {
                expected: 2,
                found: 1
            }
        );
    }

    #[test]
    fn a_torn_last_line_is_found() {
        let ls = lines(5);
        let mut bytes = join(&ls);
        let cut = bytes.len() - ls[4].len() / 2;
        bytes.truncate(cut);
        let (offset, problem) = broken_at(&bytes, 5);
        assert_eq!(offset, offset_of(&ls, 5));
        assert_eq!(problem, LineProblem::Torn);
        // Only the newline missing is torn too.
        let mut bytes = join(&ls);
        bytes.pop();
        assert_eq!(broken_at(&bytes, 5).1, LineProblem::Torn);
    }

    #[test]
    fn malformed_lines_are_named() {
        let good = lines(3);
        let text = |i: usize| String::from_utf8(good[i].clone()).unwrap();
        type Expect = fn(&LineProblem) -> bool;
        let cases: Vec<(Vec<u8>, Expect)> = vec![
            (b"not json".to_vec(), |p| {
                matches!(p, LineProblem::InvalidJson(_))
            }),
            (b"\xff\xfe".to_vec(), |p| {
                matches!(p, LineProblem::NotUtf8 { column: 0 })
            }),
            (Vec::new(), |p| *p == LineProblem::Empty),
            (text(1).replacen(",", ", ", 1).into_bytes(), |p| {
                *p == LineProblem::NotCanonical
            }),
            (
                text(1).replacen("{", "{\"extra\":1,", 1).into_bytes(),
                |p| matches!(p, LineProblem::InvalidJson(_)),
            ),
            (vec![b'x'; MAX_LINE + 1], |p| *p == LineProblem::TooLong),
        ];
        for (bad, is_expected) in cases {
            let mut ls = good.clone();
            ls[1] = bad;
            let (_, problem) = broken_at(&join(&ls), 2);
            assert!(is_expected(&problem), "{problem}");
        }
    }

    #[test]
    fn an_over_long_unterminated_tail_is_too_long_not_torn() {
        let mut bytes = join(&lines(1));
        bytes.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        assert_eq!(broken_at(&bytes, 2).1, LineProblem::TooLong);
    }

    #[test]
    fn errors_say_where_and_why() {
        let mut ls = lines(3);
        ls.remove(1);
        let msg = verify_bytes(&join(&ls)).unwrap_err().to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("deleted"), "{msg}");
    }

    #[test]
    fn the_file_functions_agree_with_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut ls = lines(4);
        std::fs::write(&path, join(&ls)).unwrap();
        let report = verify(&path).unwrap();
        assert_eq!(report, verify_bytes(&join(&ls)).unwrap());
        verify_against(&path, &report.last().unwrap()).unwrap();
        ls.swap(2, 3);
        std::fs::write(&path, join(&ls)).unwrap();
        assert!(matches!(
            verify(&path),
            Err(VerifyError::Line { line: 3, .. })
        ));
        assert!(matches!(
            verify(dir.path().join("missing")),
            Err(VerifyError::Read { .. })
        ));
    }
}
