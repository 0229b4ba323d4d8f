//! Double-sign protection: per (chain, key) or per (chain, producer) watermarks, the rules that
//! decide whether a request may be signed, and the durable store that records the decision
//! before any signature exists.
//!
//! Guards (DESIGN.md §4):
//! - never two different blocks at one height for one key — or, for a producer whose keys are
//!   grouped ([`scope`]), for any two keys of that producer — across crashes and retries;
//! - the reservation is durable (fsynced) *before* the backend is asked to sign — the only way to
//!   reach a backend is with a [`Reservation`], which only a store can create;
//! - an exactly identical request gets the stored signature back instead of a new one.

use oryx_proto::antelope::{Checksum256, PublicKey, Signature};

pub mod etcd;
pub mod file;
pub mod rules;
pub mod scope;

pub use rules::{Conflict, Decision, Request, RetryPolicy, Watermark, decide};
pub use scope::{Scope, Scopes};

/// What a process opens the configured store for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The daemon: takes the state directory's lock; with etcd, keeps the replica's journal.
    Serve,
    /// `watermark import`: file store locked (the daemon must be stopped); etcd as it is
    /// (every write is a compare-and-swap, safe beside running replicas).
    Import,
    /// `watermark show|export`, `bench`: reads beside a running daemon.
    Read,
}

/// The store the config names: the shared etcd store when `[watermarks.etcd]` is set, else the
/// file store in `dir`.
pub fn open(
    config: &crate::config::WatermarkConfig,
    access: Access,
) -> Result<std::sync::Arc<dyn WatermarkStore>, StoreError> {
    use std::sync::Arc;
    match (&config.etcd, access) {
        (None, Access::Read) => Ok(Arc::new(file::FileStore::open_read_only(&config.dir)?)),
        (None, _) => Ok(Arc::new(
            file::FileStore::open(&config.dir)?.write_ahead(config.write_ahead),
        )),
        (Some(e), access) => {
            let serve = access == Access::Serve;
            let lock = serve
                .then(|| file::DirLock::take(&config.dir))
                .transpose()?;
            let journal = serve.then(|| config.dir.join(format!("etcd-{}.journal", e.replica)));
            let settings = etcd::EtcdSettings::from_config(e, journal)?;
            Ok(Arc::new(etcd::EtcdStore::open(&settings, lock)?))
        }
    }
}

/// Which watermark: one per chain and scope (a key, or a producer's group of keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatermarkKey {
    /// The chain the signatures are for.
    pub chain_id: Checksum256,
    /// Whose signatures it guards.
    pub scope: Scope,
}

impl WatermarkKey {
    /// The watermark of one key alone.
    pub fn of_key(chain_id: Checksum256, key: PublicKey) -> Self {
        WatermarkKey {
            chain_id,
            scope: Scope::Key(key),
        }
    }
}

impl std::fmt::Display for WatermarkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.scope {
            Scope::Key(k) => write!(f, "chain {} key {k}", self.chain_id),
            Scope::Producer(p) => write!(f, "chain {} producer {p}", self.chain_id),
        }
    }
}

/// Proof that a store recorded the intent to sign `digest`: durably, or — a file store in
/// write-ahead mode — to be made durable by the pipeline's write-ahead audit entry, synced
/// before the backend is asked. The signing path needs one to reach a backend; only a
/// [`WatermarkStore`] can make one.
#[derive(Debug)]
#[must_use = "a reservation must be committed with the signature"]
pub struct Reservation {
    key: WatermarkKey,
    digest: Checksum256,
    /// The watermark recorded, and the store's version of it (etcd: its mod revision), so a
    /// commit lands only on the state the reservation made.
    recorded: Option<(Watermark, i64)>,
}

impl Reservation {
    /// A reservation that remembers what it recorded at which version.
    pub(crate) fn recorded(key: WatermarkKey, watermark: Watermark, version: i64) -> Self {
        Reservation {
            key,
            digest: watermark.digest,
            recorded: Some((watermark, version)),
        }
    }

    /// What [`Reservation::recorded`] remembered.
    pub(crate) fn version(&self) -> Option<(Watermark, i64)> {
        self.recorded
    }

    /// The watermark this reservation is for.
    pub fn key(&self) -> &WatermarkKey {
        &self.key
    }

    /// The digest that may be signed under it.
    pub fn digest(&self) -> &Checksum256 {
        &self.digest
    }
}

/// What a reservation attempt produced.
#[derive(Debug)]
pub enum Reserved {
    /// The identical request was signed before: here is that signature.
    Replay(Signature),
    /// Go ahead: sign `digest` and commit the signature.
    Proceed(Reservation),
}

/// A refusal by the double-sign rules (an answer, not a failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("double-sign protection: {reason} (stored: {stored}; requested: {requested})")]
pub struct Refusal {
    /// Which rule the request broke.
    pub reason: Conflict,
    /// The stored position, for the operator.
    pub stored: String,
    /// The requested position.
    pub requested: String,
}

impl Refusal {
    /// The refusal of `request` for `digest` against `stored`, with both positions spelled out.
    pub fn new(
        reason: Conflict,
        stored: Option<&Watermark>,
        request: &Request,
        digest: &Checksum256,
        wall_slot: u32,
    ) -> Self {
        Refusal {
            reason,
            stored: stored.map_or("nothing".into(), |w| {
                if w.is_sealed() {
                    return "sealed: this key's blocks are guarded by its producer's watermark ([[watermarks.producers]]); a key taken out of its group signs again only after `oryx-signer watermark import --force` of its own watermark".into();
                }
                format!(
                    "block {}, slot {}, wall slot {}, digest {}",
                    w.block_num, w.slot, w.wall_slot, w.digest
                )
            }),
            requested: request.describe(digest, wall_slot),
        }
    }
}

/// What a commit of `signature` over `digest` does to the current watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitStep {
    /// An identical request committed first: everyone gets that one signature.
    Keep(Signature),
    /// Record this watermark (the current one with the signature).
    Write(Watermark),
}

/// The commit rule, for every store: a commit lands only on the reservation it belongs to (the
/// current watermark is for its digest); if that reservation already holds a signature, that
/// one stays.
pub fn commit_step(
    current: Option<&Watermark>,
    digest: &Checksum256,
    signature: &Signature,
) -> Result<CommitStep, StoreError> {
    let current = current.ok_or(StoreError::Stale)?;
    if current.digest != *digest {
        return Err(StoreError::Stale);
    }
    Ok(match current.signature {
        Some(existing) => CommitStep::Keep(existing),
        None => CommitStep::Write(Watermark {
            signature: Some(*signature),
            ..*current
        }),
    })
}

/// Why the store could not answer (an outage: fail closed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the watermark failed.
    #[error("watermark store I/O on {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A stored watermark is unreadable (both copies damaged).
    #[error(
        "watermark {path} is corrupt: {detail}; restore it from an export (`oryx-signer watermark import`)"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// A commit did not match the current reservation.
    #[error("stale commit: the watermark moved since this reservation was made")]
    Stale,
    /// Another process holds the store's lock.
    #[error(
        "{path} is locked: another oryx-signer (or a watermark import) is using this watermark directory; stop it first"
    )]
    Locked {
        /// The lock file.
        path: String,
    },
    /// A write on a read-only view.
    #[error("this watermark store was opened read-only")]
    ReadOnly,

    /// An imported record is not acceptable.
    #[error("import of {key} refused: {reason}")]
    BadImport {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// etcd could not be reached, has no leader, or refused the request (NOSPACE included).
    #[error(
        "the shared watermark store (etcd) is unavailable: {detail}; nothing was signed. Check the etcd cluster and this replica's link to it; signing resumes by itself once etcd answers"
    )]
    Unreachable {
        /// What failed.
        detail: String,
    },
    /// A write whose outcome is unknown (a timeout after it was sent).
    #[error(
        "etcd did not confirm the reservation within {timeout_ms} ms: it may or may not be recorded, and nothing was signed; the request can be retried (on any replica)"
    )]
    UnknownOutcome {
        /// The timeout.
        timeout_ms: u64,
    },
    /// No watermark in the shared store: nothing signs from zero.
    #[error(
        "no watermark for {key} in etcd: import a starting watermark first (`oryx-signer watermark import`, or `watermark migrate` from a file store)"
    )]
    Missing {
        /// Chain and key.
        key: String,
    },
    /// etcd went back in time: an answer below what this replica saw or reserved before.
    #[error(
        "etcd went back in time ({found}): the store was restored or rolled back and its watermarks may be stale; this replica fenced it. {}",
        ROLLBACK_RECOVERY
    )]
    RolledBack {
        /// What was answered, against what this replica knew (revision, or a key's block).
        found: String,
    },
    /// A replica found the shared store rolled back and fenced it.
    #[error(
        "the shared watermark store is fenced after a rollback ({detail}). {}",
        ROLLBACK_RECOVERY
    )]
    Fenced {
        /// Who fenced it and why.
        detail: String,
    },
    /// The watermark kept changing under this request (other replicas writing).
    #[error(
        "the watermark of {key} changed {attempts} times while this request tried to reserve it; retry"
    )]
    Contended {
        /// Chain and key.
        key: String,
        /// Attempts made.
        attempts: u32,
    },
    /// An import would lower a watermark.
    #[error(
        "import would lower the watermark of {key} from block {from} to {to}; pass --force to do it anyway"
    )]
    WouldLower {
        /// The key.
        key: String,
        /// The current block number.
        from: u32,
        /// The imported one.
        to: u32,
    },
}

/// What an operator does after etcd was restored or rolled back: one sequence, said by both
/// refusals that find it.
const ROLLBACK_RECOVERY: &str = "Stop every replica, run `oryx-signer watermark unfence`, re-import the newest watermarks (`oryx-signer watermark import`, never lower), remove each replica's etcd journal (`etcd-REPLICA.journal` in its `[watermarks] dir`), then start them";

/// Either outcome of a reservation that is not a go-ahead.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// The rules refused.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One watermark as exported and imported (JSON interchange between signers): `chain_id`, then
/// `key` (`PUB_K1_…`/`PUB_R1_…`) or `producer` (an account name), then the watermark.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RecordJson", into = "RecordJson")]
pub struct WatermarkRecord {
    /// Chain id (hex).
    pub chain_id: Checksum256,
    /// Whose watermark.
    pub scope: Scope,
    /// The watermark.
    pub watermark: Watermark,
}

impl WatermarkRecord {
    /// Which watermark the record is.
    pub fn watermark_key(&self) -> WatermarkKey {
        WatermarkKey {
            chain_id: self.chain_id,
            scope: self.scope,
        }
    }

    /// The record of `key`'s watermark.
    pub fn new(key: &WatermarkKey, watermark: Watermark) -> Self {
        WatermarkRecord {
            chain_id: key.chain_id,
            scope: key.scope,
            watermark,
        }
    }
}

/// [`WatermarkRecord`] as JSON: exactly one of `key` and `producer`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordJson {
    chain_id: Checksum256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<PublicKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    producer: Option<oryx_proto::antelope::Name>,
    #[serde(flatten)]
    watermark: Watermark,
}

impl TryFrom<RecordJson> for WatermarkRecord {
    type Error = String;
    fn try_from(r: RecordJson) -> Result<Self, String> {
        let scope = match (r.key, r.producer) {
            (Some(k), None) => Scope::Key(k),
            (None, Some(p)) => Scope::Producer(p),
            _ => return Err("a watermark record names either a key or a producer".into()),
        };
        Ok(WatermarkRecord {
            chain_id: r.chain_id,
            scope,
            watermark: r.watermark,
        })
    }
}

impl From<WatermarkRecord> for RecordJson {
    fn from(r: WatermarkRecord) -> Self {
        let (key, producer) = match r.scope {
            Scope::Key(k) => (Some(k), None),
            Scope::Producer(p) => (None, Some(p)),
        };
        RecordJson {
            chain_id: r.chain_id,
            key,
            producer,
            watermark: r.watermark,
        }
    }
}

/// Durable watermarks.
pub trait WatermarkStore: std::fmt::Debug + Send + Sync {
    /// Durably records the intent to sign `digest` at the request's position, or refuses.
    /// `wall_slot` is the wall-clock block slot now (for blind legacy digests and retries).
    fn reserve(
        &self,
        key: &WatermarkKey,
        request: &Request,
        digest: &Checksum256,
        wall_slot: u32,
        retry: RetryPolicy,
    ) -> Result<Reserved, ReserveError>;

    /// Stores the signature so an identical retry gets the same answer. Returns the signature
    /// that is now stored: `signature`, or — when an identical request committed first — that
    /// earlier one, so while the signer runs only one signature per digest leaves it.
    ///
    /// Need not be durable before it returns (the reservation already is, and safety rests on
    /// it alone): a commit lost in a crash leaves the watermark reserved and unsigned, and an
    /// identical retry then signs the same content again — never different content.
    fn commit(
        &self,
        reservation: Reservation,
        signature: &Signature,
    ) -> Result<Signature, StoreError>;

    /// The current watermark of one key.
    fn get(&self, key: &WatermarkKey) -> Result<Option<Watermark>, StoreError>;

    /// Every watermark.
    fn export(&self) -> Result<Vec<WatermarkRecord>, StoreError>;

    /// Sets a watermark from an export; refuses to lower one unless `force`.
    fn import(&self, record: &WatermarkRecord, force: bool) -> Result<(), StoreError>;

    /// Raises `key`'s watermark to at least `floor` (the watermark of the retired key `from`)
    /// in one step under the key's lock (so a
    /// signature racing it can never be lowered): see [`handover`]. Returns the watermark now
    /// in force.
    fn raise(
        &self,
        key: &WatermarkKey,
        from: &PublicKey,
        floor: &Watermark,
    ) -> Result<Watermark, StoreError>;

    /// Moves the key watermark `member` into the producer watermark `scope` (see
    /// [`scope`]): raises `scope` to at least `member`'s positions, then seals `member` — the
    /// seal lands only on the watermark the raise read (under the key's lock, or by
    /// compare-and-swap), so a signature racing it is raised too or refused. Idempotent.
    fn seal(&self, member: &WatermarkKey, scope: &WatermarkKey) -> Result<(), StoreError>;

    /// Write-ahead recovery (`crate::wal`): makes `w`, the reservation an audit write-ahead
    /// entry recorded as this store's `seq` for `key`, the watermark if the store holds an
    /// older one (a machine crash lost its unsynced write); `Ok(true)` when it wrote. A store
    /// whose reservations are durable by themselves (etcd) has nothing to recover.
    fn recover(&self, key: &WatermarkKey, seq: u64, w: &Watermark) -> Result<bool, StoreError> {
        let _ = (key, seq, w);
        Ok(false)
    }

    /// Makes every reservation written so far durable (a write-ahead checkpoint).
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether the store can take writes now (for `/readyz`).
    fn health(&self) -> Result<(), StoreError>;

    /// Whether other signer processes share these watermarks (replicas). A key retired here
    /// is not stopped in them, so the key lifecycle refuses RetireKey on a shared store.
    fn shared(&self) -> bool {
        false
    }
}

/// What a successor key's watermark becomes when a retired key hands its watermark `old` over:
/// every field at least the old key's and at least its own (never lowered). `None` when the
/// successor's own watermark already covers the old one.
///
/// The result carries a digest no request can produce (sha256 of a domain tag, the old key and
/// position) and no signature: an identical request is recognised by its digest, so not even
/// the block the old key signed at that height can be signed again by the successor.
pub fn handover(
    old_key: &PublicKey,
    old: &Watermark,
    current: Option<&Watermark>,
) -> Option<Watermark> {
    if let Some(c) = current
        && c.block_num >= old.block_num
        && c.slot >= old.slot
        && c.wall_slot >= old.wall_slot
    {
        return None;
    }
    let c = current.copied();
    let block_num = old.block_num.max(c.map_or(0, |c| c.block_num));
    let slot = old.slot.max(c.map_or(0, |c| c.slot));
    let wall_slot = old.wall_slot.max(c.map_or(0, |c| c.wall_slot));
    let mut preimage = b"oryx watermark handover v1\0".to_vec();
    preimage.extend_from_slice(old_key.to_string().as_bytes());
    for n in [block_num, slot, wall_slot] {
        preimage.extend_from_slice(&n.to_le_bytes());
    }
    Some(Watermark {
        block_num,
        slot,
        wall_slot,
        digest: Checksum256::hash(&preimage),
        signature: None,
    })
}

/// Whether watermark `c` is at or above `w` in every position.
pub(crate) fn covers(c: &Watermark, w: &Watermark) -> bool {
    c.block_num >= w.block_num && c.slot >= w.slot && c.wall_slot >= w.wall_slot
}

/// A watermark at or above both `c` and `w`: the one that covers the other as it is (its
/// signature kept), else every position raised to the higher, under the digest of the higher
/// block and without a signature (an identical retry of that block is still recognised;
/// nothing else at that height signs).
pub fn cover(c: &Watermark, w: &Watermark) -> Watermark {
    if covers(c, w) {
        return *c;
    }
    if covers(w, c) {
        return *w;
    }
    let top = if w.block_num >= c.block_num { w } else { c };
    Watermark {
        block_num: c.block_num.max(w.block_num),
        slot: c.slot.max(w.slot),
        wall_slot: c.wall_slot.max(w.wall_slot),
        digest: top.digest,
        signature: None,
    }
}

/// What [`WatermarkStore::seal`] does to a member's own watermark `current`, after the
/// producer's watermark was raised to it: `None` when it is sealed already.
pub fn seal_step(member: &PublicKey, current: Option<&Watermark>) -> Option<Watermark> {
    if current.is_some_and(Watermark::is_sealed) {
        return None;
    }
    let closed = Watermark {
        block_num: u32::MAX,
        slot: u32::MAX,
        wall_slot: u32::MAX,
        digest: Checksum256::default(),
        signature: None,
    };
    handover(member, &closed, None)
}

/// The watermark a member's own positions raise its producer's to (`None`: nothing to carry,
/// it is absent or sealed already).
pub fn carried(current: Option<&Watermark>) -> Option<&Watermark> {
    current.filter(|w| !w.is_sealed())
}

/// Checks an imported record against the current watermark: never lower it, never reopen a
/// signed position with another digest (unless `force`), and never accept a signature that
/// does not recover to the key over the digest.
pub fn check_import(
    current: Option<&Watermark>,
    record: &WatermarkRecord,
    force: bool,
) -> Result<(), StoreError> {
    let w = &record.watermark;
    let name = record.watermark_key().to_string();
    // A producer's watermark may hold any of its keys' signatures; the signer returns a stored
    // signature only to the key it recovers to.
    let recovers = |sig: &Signature| match &record.scope {
        Scope::Key(k) => sig.recovers_to(&w.digest, k),
        Scope::Producer(_) => sig.recover_lenient(&w.digest).is_ok(),
    };
    if let Some(sig) = &w.signature
        && !recovers(sig)
    {
        return Err(StoreError::BadImport {
            key: name,
            reason: "its signature does not recover to the key over its digest".into(),
        });
    }
    let Some(c) = current else { return Ok(()) };
    if force {
        return Ok(());
    }
    if w.block_num < c.block_num || w.slot < c.slot || w.wall_slot < c.wall_slot {
        return Err(StoreError::WouldLower {
            key: name,
            from: c.block_num,
            to: w.block_num,
        });
    }
    if w.block_num == c.block_num && w.digest != c.digest {
        return Err(StoreError::BadImport {
            key: name,
            reason: format!(
                "block {} is already signed here with another digest; pass --force to override",
                c.block_num
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::watermark::rules::{Decision, decide};
    use oryx_proto::antelope::KeyType;

    fn wm(block_num: u32, slot: u32, wall_slot: u32) -> Watermark {
        Watermark {
            block_num,
            slot,
            wall_slot,
            digest: Checksum256([block_num as u8; 32]),
            signature: None,
        }
    }

    fn old_key() -> PublicKey {
        let b = crate::backend::soft::SoftKey::generate(KeyType::K1).unwrap();
        *crate::backend::KeyBackend::public_key(&b)
    }

    #[test]
    fn handover_never_lowers() {
        let k = old_key();
        // (old, successor's current, expected (block, slot, wall) or None = unchanged)
        let table = [
            (wm(10, 20, 30), None, Some((10, 20, 30))),
            (wm(10, 20, 30), Some(wm(5, 6, 7)), Some((10, 20, 30))),
            (wm(10, 20, 30), Some(wm(10, 20, 30)), None),
            (wm(10, 20, 30), Some(wm(11, 25, 31)), None),
            (wm(10, 20, 30), Some(wm(12, 15, 40)), Some((12, 20, 40))),
            (wm(10, 20, 30), Some(wm(9, 21, 29)), Some((10, 21, 30))),
        ];
        for (old, current, want) in table {
            let got = handover(&k, &old, current.as_ref());
            assert_eq!(
                got.map(|w| (w.block_num, w.slot, w.wall_slot)),
                want,
                "{old:?} over {current:?}"
            );
            if let (Some(w), Some(c)) = (got, current) {
                assert!(
                    w.block_num >= c.block_num && w.slot >= c.slot && w.wall_slot >= c.wall_slot
                );
            }
        }
    }

    #[test]
    fn after_a_handover_the_successor_cannot_sign_at_the_old_height() {
        let k = old_key();
        let old = wm(100, 200, 300);
        let w = handover(&k, &old, None).unwrap();
        assert_eq!(w.signature, None);
        let wall = 300;
        // The very block the old key signed (same digest) is refused too.
        for (block_num, slot, digest) in [
            (100, 200, old.digest),
            (100, 201, Checksum256([9; 32])),
            (99, 199, Checksum256([9; 32])),
            (101, 200, Checksum256([9; 32])),
        ] {
            let d = decide(
                Some(&w),
                &Request::Block { block_num, slot },
                &digest,
                wall,
                RetryPolicy::Refuse,
            );
            assert!(
                matches!(d, Decision::Refuse(_)),
                "{block_num}/{slot}: {d:?}"
            );
        }
        let d = decide(
            Some(&w),
            &Request::Block {
                block_num: 101,
                slot: 201,
            },
            &Checksum256([9; 32]),
            wall,
            RetryPolicy::Refuse,
        );
        assert!(matches!(d, Decision::Advance(_)));
    }
}
