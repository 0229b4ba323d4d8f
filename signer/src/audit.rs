//! The audit log: one hash-chained JSON line per decision, durable before the reply.
//!
//! Guards: every signature, refusal and admin action leaves an entry on disk (written *and*
//! `fdatasync`ed) before the caller may answer — in write-ahead mode (`crate::wal`) a block or
//! digest signature's decision is the `reserved` entry, synced before the signature even
//! exists, and its outcome entry (naming it in `intent`) is written before the answer and
//! synced by the next append or checkpoint; nobody can edit, delete or reorder entries
//! without `oryx-signer audit verify` noticing; and once the log cannot be written, every later
//! append fails, so the signer refuses to sign rather than sign without a trail (fail closed).
//!
//! # File format
//!
//! UTF-8, one entry per line, each line terminated by `\n`, nothing else in the file. A line is
//! the compact JSON of an [`AuditEntry`] with its fields in this order and every field present
//! (absent values are `null`), except three members after `signature` that are left out when
//! absent: `reserved` (write-ahead entries: the watermark's `scope`, the store's `seq` and the
//! `wall_slot`), `intent` (an outcome: the `seq` of its write-ahead entry) and `replica` (the
//! entries of a signer replica):
//!
//! ```text
//! {"seq":0,"time":"2025-01-02T03:04:05.123456Z","principal":"node-1","key":"PUB_K1_…",
//!  "kind":"sign_block","chain_id":"aca3…","digest":"…","position":{"block_num":7,"slot":9},
//!  "decision":"signed","reason":null,"policy_version":"3","latency_us":412,
//!  "signature":"SIG_K1_…","prev":"0000…0000","hash":"5d1f…"}
//! ```
//!
//! (shown wrapped; on disk it is one line). The writer only ever produces lines that `serde_json`
//! re-serializes byte for byte (*canonical*); the verifier rejects any other line.
//!
//! # Hash rule (for external re-verification)
//!
//! For line *n* (1-based) holding entry `seq = n - 1`, with `L` its exact bytes without the
//! trailing `\n`:
//!
//! - `hash` = lowercase hex of `SHA-256(P)`, where `P` is `L` with its final member
//!   `,"hash":"<64 hex>"` cut out, i.e. `L` up to (not including) the last occurrence of the
//!   bytes `,"hash":"`, followed by `}`. `P` is exactly the canonical JSON of the entry without
//!   its `hash` field, so it covers `prev`.
//! - `prev` = lowercase hex of `SHA-256(L')` where `L'` is the exact bytes of line *n - 1*
//!   without its `\n` (this covers the previous line's `hash` too); for the first line,
//!   64 zeros ([`GENESIS_PREV`]).
//! - `seq` starts at 0 and goes up by one per line.
//!
//! In a shell, for one line in `$L` (as `IFS= read -r L` leaves it, without the newline),
//! `printf '%s}' "${L%,\"hash\":\"*}" | sha256sum` prints its `hash` and
//! `printf '%s' "$L" | sha256sum` prints the next line's `prev`.
//!
//! # What verification can and cannot show
//!
//! An edited line breaks its own `hash`; a deleted, inserted or moved line breaks `seq` and the
//! next line's `prev`; a crash mid-write leaves a last line without `\n`. Two things the file
//! alone cannot show: lines cut off the *end* (the shorter file is a valid chain), and a
//! rewrite of the whole chain from some line on by someone who recomputes every hash. Both are
//! caught against an *anchor*, an [`AuditEntryRef`] (`seq` + `hash`) kept outside the host:
//! [`VerifyReport::last_hash`] or any [`AuditLog::append`] result, checked with
//! [`verify_against`] / [`verify_bytes_against`].
//!
//! # Durability and group commit
//!
//! [`AuditLog::append`] returns only after its line is written and `fdatasync`ed. Concurrent
//! appenders share the work: the first one to find no write in progress becomes the *leader*,
//! takes every line queued so far, writes them with one `write` and one `fdatasync`, then wakes
//! the others; the ones whose lines it wrote return, and the next waiting appender with a queued
//! line leads the next batch. This is a `Mutex` + `Condvar` rather than a writer thread so that
//! there is no thread to start, stop or lose, and a single appender pays no hand-off.
//!
//! A failed write or `fdatasync` fails its whole batch and closes the log. Retrying the same
//! `fsync` would be wrong (after a failed `fsync` Linux may have dropped the dirty pages and
//! report success next time for data that is gone), so the log never retries a batch: the next
//! append (or `/readyz` probe) *repairs* instead: it cuts the file back to the length it had
//! after the last successful sync (removing everything the failed batch may have left), syncs
//! that, reads the last line back and checks it is the last durable entry, and only then takes
//! appends again, continuing the chain from that entry. Lines that were never durable were
//! never acknowledged, so nothing on record is lost. The first entry after a repair (kind
//! `audit_log`, decision `recovered`) says when the outage began, its cause and how many
//! appends it refused. A full disk therefore heals by itself once space is freed.
//!
//! # Refusals under a flood
//!
//! Signatures and failures are always written one by one. Refusals (and rejected approvals)
//! are written one by one up to a per-principal rate ([`RefusalLimit`]: 60 at once, then 60 a
//! minute by default); beyond it they are counted by kind and reason code and written as one
//! entry (kind `refusals`, decision `coalesced`, the counts and time span in its reason) before
//! that principal's next written refusal, or by the periodic flush. Counted, never dropped; a
//! client is answered at once either way, but a held refusal has no audit position yet.
//!
//! A file that ends in a torn line at start-up (a crash mid-write) is another matter:
//! [`AuditLog::open`] refuses it and says how to repair it, rather than silently cutting it.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

mod coalesce;
mod log;
mod time;
mod verify;

pub use coalesce::RefusalLimit;
pub use log::AuditLog;
pub use verify::{
    LineProblem, VerifyError, VerifyReport, verify, verify_against, verify_bytes,
    verify_bytes_against,
};

/// `prev` of the first entry: 64 zeros.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest line the log writes or reads, in bytes (without the newline). Far above a real
/// entry (< 1 KiB); a bound so a corrupt file cannot make the signer read gigabytes per line.
pub const MAX_LINE: usize = 64 * 1024;

/// The byte sequence that starts the last member of every line.
const HASH_MEMBER: &[u8] = b",\"hash\":\"";

/// Where a block signature sits: block height and timestamp slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Block number.
    pub block_num: u32,
    /// Block timestamp slot (half-seconds since 2000-01-01).
    pub slot: u32,
}

/// Generates a closed vocabulary written into the log as lowercase words.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// The word as the log writes it.
                        pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The word back (`None` for any other text).
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words! {
    /// What was asked: the `kind` of an entry.
    AuditKind {
        /// SignBlock.
        SignBlock => "sign_block",
        /// SignTransaction, and the release of an approved request.
        SignTransaction => "sign_transaction",
        /// SignDigest.
        SignDigest => "sign_digest",
        /// An approval given, rejected or a request cancelled.
        Approval => "approval",
        /// GenerateKey.
        GenerateKey => "generate_key",
        /// RetireKey.
        RetireKey => "retire_key",
                /// SignTranscript.
        SignTranscript => "sign_transcript",
        /// The log itself: an outage put on record once it is writable again.
        AuditLog => "audit_log",
                /// Refusals of one principal counted rather than written one by one.
        Refusals => "refusals",
        /// Any other call (reads such as ListKeys, an unknown method) refused before a handler.
        Call => "call",
    }
}

words! {
    /// What was decided: the `decision` of an entry.
    AuditDecision {
        /// A new signature was released.
        Signed => "signed",
        /// An identical earlier request's stored signature was released.
        Replayed => "replayed",
        /// Refused by a rule (policy, watermark, key, chain, input).
        Refused => "refused",
        /// Not done because something failed (backend, store, log).
        Failed => "failed",
        /// Stored as an approval request.
        Pending => "pending",
        /// An approval counted.
        Accepted => "accepted",
        /// An approval given before, or late for a request already signed.
        Duplicate => "duplicate",
        /// An approval or a cancellation refused.
        Rejected => "rejected",
        /// An approval request cancelled.
        Cancelled => "cancelled",
        /// A key generated on its device.
        Generated => "generated",
        /// GenerateKey repeated: the key already registered under the label.
        Existing => "existing",
        /// A key found on its device under the label and registered (an answer lost before).
        Registered => "registered",
        /// A key retired.
        Retired => "retired",
                /// RetireKey repeated: the key was retired before.
        AlreadyRetired => "already_retired",
        /// The log is writable again after an outage.
        Recovered => "recovered",
                /// A count of refusals not written one by one (see `audit::coalesce`).
        Coalesced => "coalesced",
        /// A write-ahead entry: the watermark is reserved and the signature may now be made;
        /// its outcome follows in an entry naming it (`intent`).
        Reserved => "reserved",
        /// Written at start-up for a write-ahead entry without an outcome: the signer stopped
        /// between the reservation and the answer, so no signature left it.
        Unreleased => "unreleased",
    }
}

/// What a caller records: an [`AuditEntry`] without the fields the log assigns (`seq`, `time`,
/// `prev`, `hash`).
///
/// Build with [`AuditRecord::new`] and struct update syntax:
/// `AuditRecord { key: Some(k), ..AuditRecord::new("node-1", AuditKind::SignBlock, AuditDecision::Signed) }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Who asked: the mTLS principal, an approver, or the operator for admin actions.
    pub principal: String,
    /// Key the request was for, as `PUB_K1_…` / `PUB_R1_…`.
    pub key: Option<String>,
    /// What was asked.
    pub kind: AuditKind,
    /// Chain id, 64 lowercase hex.
    pub chain_id: Option<String>,
    /// The digest that was (or would have been) signed, lowercase hex.
    pub digest: Option<String>,
    /// Block position for block signatures.
    pub position: Option<Position>,
    /// Outcome.
    pub decision: AuditDecision,
    /// Why: the policy or watermark reason for a refusal, the error for a failure.
    pub reason: Option<String>,
    /// Version of the policy that decided.
    pub policy_version: Option<String>,
    /// Time from receiving the request to deciding, in microseconds.
    pub latency_us: u64,
    /// The signature that was returned, `SIG_K1_…`.
    pub signature: Option<String>,
    /// A write-ahead entry (decision `reserved`): the watermark it reserved.
    pub reserved: Option<Reserved>,
    /// The outcome of a write-ahead entry: that entry's `seq`.
    pub intent: Option<u64>,
}

/// What a write-ahead entry reserved, beside its `chain_id`, `digest` and `position`: enough to
/// rebuild the watermark from the log after a crash (see `pipeline`'s write-ahead mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reserved {
    /// Whose watermark: a key (`PUB_K1_…`) or `producer:NAME`.
    pub scope: crate::watermark::Scope,
    /// The store's sequence number of this reservation (the newest one wins at recovery).
    pub seq: u64,
    /// The wall-clock slot it was reserved at.
    pub wall_slot: u32,
}

impl AuditRecord {
    /// A record with the three required fields and nothing else.
    pub fn new(principal: impl Into<String>, kind: AuditKind, decision: AuditDecision) -> Self {
        AuditRecord {
            principal: principal.into(),
            key: None,
            kind,
            chain_id: None,
            digest: None,
            position: None,
            decision,
            reason: None,
            policy_version: None,
            latency_us: 0,
            signature: None,
            reserved: None,
            intent: None,
        }
    }

    /// The record with its reason cut to [`MAX_REASON`] bytes (on a character boundary, saying
    /// so): reasons can quote what a client sent, and the fact of a decision is never lost for
    /// the length of its explanation.
    pub fn clamped(mut self) -> Self {
        if let Some(r) = &mut self.reason
            && r.len() > MAX_REASON
        {
            let note = format!(" … (cut from {} bytes)", r.len());
            let mut end = MAX_REASON - note.len();
            while !r.is_char_boundary(end) {
                end -= 1;
            }
            r.truncate(end);
            r.push_str(&note);
        }
        self
    }

    /// Checks the shape of every field, so a bad record is refused before it takes a `seq`.
    fn validate(&self) -> Result<(), AuditError> {
        fn bad(msg: String) -> Result<(), AuditError> {
            Err(AuditError::InvalidRecord(msg))
        }
        fn text(field: &str, v: &str, max: usize) -> Result<(), AuditError> {
            if v.is_empty() || v.len() > max {
                bad(format!(
                    "{field} must be 1 to {max} bytes, got {} bytes",
                    v.len()
                ))
            } else {
                Ok(())
            }
        }
        fn lower_hex(field: &str, v: &str, len: Option<usize>) -> Result<(), AuditError> {
            let hex = !v.is_empty()
                && v.len().is_multiple_of(2)
                && v.len() <= 256
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                return bad(format!(
                    "{field} must be lowercase hex of whole bytes, got {v:?}"
                ));
            }
            match len {
                Some(n) if v.len() != n => bad(format!(
                    "{field} must be {n} hex characters, got {}",
                    v.len()
                )),
                _ => Ok(()),
            }
        }

        text("principal", &self.principal, 256)?;
        if let Some(k) = &self.key {
            text("key", k, 256)?;
        }
        if let Some(c) = &self.chain_id {
            lower_hex("chain_id", c, Some(64))?;
        }
        if let Some(d) = &self.digest {
            lower_hex("digest", d, None)?;
        }
        if let Some(r) = &self.reason {
            text("reason", r, MAX_REASON)?;
        }
        if let Some(p) = &self.policy_version {
            text("policy_version", p, 256)?;
        }
        if let Some(s) = &self.signature {
            text("signature", s, 512)?;
        }
        Ok(())
    }
}

/// The longest reason an entry keeps (see [`AuditRecord::clamped`]).
pub const MAX_REASON: usize = 4096;

/// One line of the audit log. Field names and order are the file format: never rename or
/// reorder them (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Position in the log: 0 for the first line, then +1 per line.
    pub seq: u64,
    /// When the log accepted the entry, RFC 3339 UTC with microseconds.
    pub time: String,
    /// See [`AuditRecord::principal`].
    pub principal: String,
    /// See [`AuditRecord::key`].
    pub key: Option<String>,
    /// See [`AuditRecord::kind`].
    pub kind: String,
    /// See [`AuditRecord::chain_id`].
    pub chain_id: Option<String>,
    /// See [`AuditRecord::digest`].
    pub digest: Option<String>,
    /// See [`AuditRecord::position`].
    pub position: Option<Position>,
    /// See [`AuditRecord::decision`].
    pub decision: String,
    /// See [`AuditRecord::reason`].
    pub reason: Option<String>,
    /// See [`AuditRecord::policy_version`].
    pub policy_version: Option<String>,
    /// See [`AuditRecord::latency_us`].
    pub latency_us: u64,
    /// See [`AuditRecord::signature`].
    pub signature: Option<String>,
    /// See [`AuditRecord::reserved`]; left out, not `null`, when absent (only write-ahead
    /// entries carry it, so logs written before it existed verify unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<Reserved>,
    /// See [`AuditRecord::intent`]; left out when absent, like `reserved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<u64>,
    /// The signer replica that wrote the entry (`[watermarks.etcd] replica`); the one member
    /// that is left out, not `null`, when absent (a signer without replicas), so logs written
    /// before replicas existed verify unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// SHA-256 (hex) of the previous line's exact bytes; [`GENESIS_PREV`] for the first.
    pub prev: String,
    /// SHA-256 (hex) of this line without its `hash` member (see the module docs).
    pub hash: String,
}

/// Names one durable entry: what [`AuditLog::append`] returns, and an anchor for
/// [`verify_against`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntryRef {
    /// The entry's `seq`.
    pub seq: u64,
    /// The entry's `hash`.
    pub hash: String,
}

impl fmt::Display for AuditEntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// Why the audit log cannot be opened or appended to. Every variant means "nothing may be
/// signed now"; the message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The file or its directory could not be opened, created, read or synced.
    #[error(
        "cannot {action} audit log {}: {source}; check that the path exists and the service \
         user can read and write it",
        path.display()
    )]
    Open {
        /// The log file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file ends in a line without a newline: a crash during a write, or a cut file.
    #[error(
        "audit log {path} ends in a partial line at byte offset {offset} (a crash during a \
         write?); refusing to append to it. Run `oryx-signer audit verify {path}` to check \
         everything before it, then cut the partial line with `truncate -s {offset} {path}` \
         and restart",
        path = path.display()
    )]
    TornTail {
        /// The log file.
        path: PathBuf,
        /// Where the partial line starts: the length to truncate the file to.
        offset: u64,
    },
    /// The last complete line is not a valid entry, so the chain cannot be continued.
    #[error(
        "audit log {path}: the last line (at byte offset {offset}) is not a valid entry: \
         {problem}; refusing to append to a broken chain. Run `oryx-signer audit verify \
         {path}` and restore the file from a good copy",
        path = path.display()
    )]
    CorruptTail {
        /// The log file.
        path: PathBuf,
        /// Where the last line starts.
        offset: u64,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// Writing or syncing failed: this entry (and its batch) is not on record.
    #[error(
        "writing audit log {} failed: {source}; nothing was signed. The log refuses appends \
         until it can be written again (for a full disk: free space); the signer retries by \
         itself, no restart needed",
        path.display()
    )]
    Write {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The log cannot be written now; nothing more is written until a repair succeeds (tried
    /// by every append and health probe) or, when `recovers` is false, until restart.
    #[error(
        "audit log {} cannot be written ({cause}); refusing to sign without an audit trail. {}",
        path.display(),
        if *recovers {
            "The signer retries on every request and resumes by itself once the cause is fixed \
             (for a full disk: free space)"
        } else {
            "Check the file with `oryx-signer audit verify` and restart the signer"
        }
    )]
    Unavailable {
        /// The log file.
        path: PathBuf,
        /// What failed last.
        cause: String,
        /// Whether a repair is tried (false after a panic mid-write: restart).
        recovers: bool,
    },
    /// The caller's record is malformed; nothing was written and the log is still usable.
    #[error("invalid audit record: {0}; nothing was written")]
    InvalidRecord(String),
    /// The system clock cannot be written as an RFC 3339 time.
    #[error("system clock is outside 1970..=9999; set the clock and retry; nothing was written")]
    Clock,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The bytes the `hash` member covers: the line with its final `,"hash":"…"` member cut out.
/// `None` if the line does not end in such a member.
fn hash_preimage(line: &[u8]) -> Option<Vec<u8>> {
    let body = line.strip_suffix(b"\"}")?;
    let at = body
        .windows(HASH_MEMBER.len())
        .rposition(|w| w == HASH_MEMBER)?;
    let value = body.get(at + HASH_MEMBER.len()..)?;
    if value.contains(&b'"') {
        return None;
    }
    let mut pre = Vec::with_capacity(at + 1);
    pre.extend_from_slice(line.get(..at)?);
    pre.push(b'}');
    Some(pre)
}

/// The `hash` a line must carry, or `None` if it has no `hash` member last.
fn line_hash(line: &[u8]) -> Option<String> {
    hash_preimage(line).map(|p| sha256_hex(&p))
}

/// Builds entry `seq` after `prev` and returns its line (no newline) and `hash`.
fn seal(
    seq: u64,
    time: String,
    record: AuditRecord,
    replica: Option<&str>,
    prev: &str,
) -> Result<(Vec<u8>, String), AuditError> {
    let mut entry = AuditEntry {
        seq,
        time,
        principal: record.principal,
        key: record.key,
        kind: record.kind.as_str().to_owned(),
        chain_id: record.chain_id,
        digest: record.digest,
        position: record.position,
        decision: record.decision.as_str().to_owned(),
        reason: record.reason,
        policy_version: record.policy_version,
        latency_us: record.latency_us,
        signature: record.signature,
        reserved: record.reserved,
        intent: record.intent,
        replica: replica.map(str::to_owned),
        prev: prev.to_owned(),
        hash: String::new(),
    };
    let unsealed = serialize(&entry)?;
    entry.hash = line_hash(&unsealed).ok_or_else(|| {
        AuditError::InvalidRecord("entry did not serialize with `hash` last".into())
    })?;
    let line = serialize(&entry)?;
    if line.len() > MAX_LINE {
        return Err(AuditError::InvalidRecord(format!(
            "entry is {} bytes, more than the {MAX_LINE}-byte line limit",
            line.len()
        )));
    }
    Ok((line, entry.hash))
}

fn serialize(entry: &AuditEntry) -> Result<Vec<u8>, AuditError> {
    serde_json::to_vec(entry)
        .map_err(|e| AuditError::InvalidRecord(format!("entry does not serialize: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn record() -> AuditRecord {
        AuditRecord {
            key: Some("PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63".into()),
            chain_id: Some(
                "aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906".into(),
            ),
            digest: Some("ab".repeat(32)),
            position: Some(Position {
                block_num: 7,
                slot: 9,
            }),
            reason: Some("quote \" backslash \\ newline \n unicode é ,\"hash\":\"".into()),
            policy_version: Some("3".into()),
            latency_us: 412,
            signature: Some("SIG_K1_x".into()),
            ..AuditRecord::new("node-1", AuditKind::SignBlock, AuditDecision::Signed)
        }
    }

    #[test]
    fn sealed_line_follows_the_documented_rule() {
        let (line, hash) = seal(0, "t".into(), record(), None, GENESIS_PREV).unwrap();
        let text = std::str::from_utf8(&line).unwrap();
        // Field order is the file format.
        assert!(text.starts_with("{\"seq\":0,\"time\":\"t\",\"principal\":\"node-1\",\"key\":"));
        assert!(text.ends_with(&format!(
            ",\"prev\":\"{GENESIS_PREV}\",\"hash\":\"{hash}\"}}"
        )));
        // hash = sha256(line up to the last `,"hash":"` + "}"), computed independently here.
        let cut = text.rfind(",\"hash\":\"").unwrap();
        let pre = format!("{}}}", &text[..cut]);
        assert_eq!(hash, hex::encode(Sha256::digest(pre.as_bytes())));
        // ... which is the canonical JSON of the entry without `hash`.
        let mut v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        v.as_object_mut().unwrap().remove("hash");
        assert_eq!(serde_json::to_string(&v).unwrap(), pre);
        // The line is canonical.
        let entry: AuditEntry = serde_json::from_slice(&line).unwrap();
        assert_eq!(serde_json::to_vec(&entry).unwrap(), line);
    }

    #[test]
    fn absent_fields_are_null_not_missing() {
        let (line, _) = seal(
            3,
            "t".into(),
            AuditRecord::new("op", AuditKind::GenerateKey, AuditDecision::Generated),
            None,
            GENESIS_PREV,
        )
        .unwrap();
        let text = String::from_utf8(line).unwrap();
        for f in [
            "key",
            "chain_id",
            "digest",
            "position",
            "reason",
            "policy_version",
            "signature",
        ] {
            assert!(text.contains(&format!("\"{f}\":null")), "{f} in {text}");
        }
        // Without replicas the line is exactly what signers before replicas wrote.
        assert!(!text.contains("replica"), "{text}");
    }

    #[test]
    fn a_replica_names_itself_in_canonical_lines() {
        let (line, hash) = seal(0, "t".into(), record(), Some("signer-b"), GENESIS_PREV).unwrap();
        let text = std::str::from_utf8(&line).unwrap();
        assert!(
            text.contains(&format!(
                ",\"replica\":\"signer-b\",\"prev\":\"{GENESIS_PREV}\",\"hash\":\"{hash}\"}}"
            )),
            "{text}"
        );
        let entry: AuditEntry = serde_json::from_slice(&line).unwrap();
        assert_eq!(entry.replica.as_deref(), Some("signer-b"));
        assert_eq!(serde_json::to_vec(&entry).unwrap(), line);
        verify::verify_bytes(&[line.as_slice(), b"\n"].concat()).unwrap();
    }

    #[test]
    fn bad_records_are_refused_with_the_field_named() {
        let cases: Vec<(AuditRecord, &str)> = vec![
            (
                AuditRecord::new("", AuditKind::GenerateKey, AuditDecision::Generated),
                "principal",
            ),
            (
                AuditRecord {
                    digest: Some("ABCD".into()),
                    ..AuditRecord::new("p", AuditKind::GenerateKey, AuditDecision::Generated)
                },
                "digest",
            ),
            (
                AuditRecord {
                    chain_id: Some("ab".into()),
                    ..AuditRecord::new("p", AuditKind::GenerateKey, AuditDecision::Generated)
                },
                "chain_id",
            ),
            (
                AuditRecord {
                    reason: Some("x".repeat(5000)),
                    ..AuditRecord::new("p", AuditKind::GenerateKey, AuditDecision::Generated)
                },
                "reason",
            ),
        ];
        for (r, field) in cases {
            let err = r.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
            assert!(err.contains("nothing was written"), "{err}");
        }
        record().validate().unwrap();
    }

    #[test]
    fn preimage_needs_hash_last() {
        assert!(hash_preimage(b"{\"a\":1}").is_none());
        assert!(hash_preimage(b"{\"hash\":\"ab\"}").is_none());
        assert_eq!(
            hash_preimage(b"{\"a\":1,\"hash\":\"ab\"}").unwrap(),
            b"{\"a\":1}"
        );
    }
}
