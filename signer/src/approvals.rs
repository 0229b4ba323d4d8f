//! Shared-custody approvals: requests waiting for M of N approvers, stored durably, and the
//! verification of each approval.
//!
//! Guards (DESIGN.md §7, approver → signer): an approval is a signature by the approver's own
//! key over a *binding digest* that commits to the chain id, the signing key, the transaction's
//! signing digest and the request id — so an approval cannot be replayed onto another request,
//! transaction, key or chain. Only keys in the request's approver set count, each once; expired
//! or cancelled requests accept nothing; every state change is durable (written to a temporary
//! file, fsynced, renamed, directory fsynced) before it is acknowledged.
//!
//! eosio.msig approvals: when the transaction approves an eosio.msig proposal, the request also
//! stores the proposed transaction (`msig_proposals`). An approver's signature covers the
//! binding digest, which commits to the transaction's signing digest, hence to the approve
//! action's bytes, hence to its `proposal_hash`; and the chain counts the approve only if the
//! stored proposal hashes to that `proposal_hash`. So once an approver has checked that
//! `sha256(proposal) == proposal_hash` for every approve (the signer checks it when the request
//! arrives; `oryx approve` checks it again before signing and refuses on any difference), the
//! approver's signature is a sign-off on the proposed transaction itself, not just on an
//! opaque "approve proposal X" — nothing else could be executed under that approval.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use oryx_proto::antelope::{Bytes, Checksum256, Pack, PublicKey, Signature, TimePointSec};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEntryRef;

/// Domain separator of the binding digest.
const BINDING_DOMAIN: &[u8] = b"oryx approval v1\0";

/// The digest approvers sign: `sha256("oryx approval v1\0" ‖ chain_id ‖ pack(key) ‖
/// signing_digest ‖ request_id)`.
pub fn binding_digest(
    chain_id: &Checksum256,
    key: &PublicKey,
    signing_digest: &Checksum256,
    request_id: &str,
) -> Checksum256 {
    Checksum256::hash_parts(&[
        BINDING_DOMAIN,
        &chain_id.0,
        &key.packed(),
        &signing_digest.0,
        request_id.as_bytes(),
    ])
}

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for approvals.
    Pending,
    /// Approved and signed.
    Signed {
        /// The signature released to the requester.
        signature: Signature,
    },
    /// Cancelled by the requester or an admin.
    Cancelled {
        /// Who cancelled.
        by: String,
    },
}

impl State {
    /// The state's name, as stored: `pending`, `signed`, `cancelled`.
    pub fn name(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Signed { .. } => "signed",
            State::Cancelled { .. } => "cancelled",
        }
    }
}

/// What [`ApprovalStore::create`] answered.
#[derive(Debug, Clone)]
pub enum Created {
    /// A new request.
    New(PendingRequest),
    /// The same transaction's request, pending or signed already.
    Existing(PendingRequest),
}

/// One approval, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The approver's key (from the approver set).
    pub approver: PublicKey,
    /// Its signature over the binding digest.
    pub signature: Signature,
    /// When it was accepted.
    pub at: TimePointSec,
}

/// A request that needs approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingRequest {
    /// Random id (32 hex characters).
    pub id: String,
    /// Who asked (mTLS principal).
    pub requester: String,
    /// Chain id.
    pub chain_id: Checksum256,
    /// The key that will sign.
    pub key: PublicKey,
    /// `pack(transaction)`, what approvers review.
    pub packed_trx: Bytes,
    /// Context-free data.
    pub context_free_data: Vec<Bytes>,
    /// The transaction's signing digest (recomputed from `packed_trx`).
    pub signing_digest: Checksum256,
    /// What approvers sign.
    pub binding_digest: Checksum256,
    /// Approvals needed.
    pub threshold: u32,
    /// Who may approve.
    pub approvers: Vec<PublicKey>,
    /// The approver set's name.
    pub set: String,
    /// Created at.
    pub created: TimePointSec,
    /// No approvals after this.
    pub expires: TimePointSec,
    /// Approvals accepted so far.
    pub approvals: Vec<Approval>,
    /// State.
    pub state: State,
    /// `pack(transaction)` of the proposal each `eosio.msig::approve` of `packed_trx` approves,
    /// in action order (see the module docs: approvers review these). Absent in request files
    /// written before proposals travelled with approves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub msig_proposals: Vec<Bytes>,
    /// Where the signing decision is in the audit log, once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditEntryRef>,
}

impl PendingRequest {
    /// Whether enough distinct approvers have approved.
    pub fn approved(&self) -> bool {
        self.approvals.len() >= self.threshold as usize
    }

    /// Whether a pending request is past its expiry at `now` (it then accepts nothing more).
    pub fn expired(&self, now: TimePointSec) -> bool {
        self.state == State::Pending && now > self.expires
    }

    /// Where the request stands at `now`, as `oryx approvals` and the API name it.
    pub fn status(&self, now: TimePointSec) -> &'static str {
        if self.expired(now) {
            "expired"
        } else {
            self.state.name()
        }
    }
}

/// Why an approval or a request change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// No such request.
    #[error("no approval request {0}")]
    Unknown(String),
    /// The request has expired.
    #[error("approval request {id} expired at {expires}")]
    Expired {
        /// Request id.
        id: String,
        /// When.
        expires: TimePointSec,
    },
    /// The request is no longer pending.
    #[error("approval request {id} is {state}, not pending")]
    NotPending {
        /// Request id.
        id: String,
        /// Its state.
        state: String,
    },
    /// The signature does not come from a key of the approver set, for this request.
    #[error("approval for {id} rejected: {reason}")]
    Forged {
        /// Request id.
        id: String,
        /// What was wrong.
        reason: String,
    },
    /// Storage failed (fail closed).
    #[error("approval store: {0}")]
    Store(String),
    /// The requester has as many requests waiting as it may.
    #[error(
        "{requester:?} already has {pending} approval requests waiting (at most {MAX_PENDING_PER_REQUESTER}): let them be approved, cancel some (`oryx approvals cancel`), or wait for them to expire"
    )]
    TooMany {
        /// Who asked.
        requester: String,
        /// Its requests still pending.
        pending: usize,
    },
}

/// Requests one principal may have waiting at once: the approval directory cannot be grown
/// without bound by a principal the policy lets make requests.
pub const MAX_PENDING_PER_REQUESTER: usize = 64;

/// How long a finished (signed, cancelled or expired) request is kept after it expires: long
/// past its transaction's life, so a retry still finds it; the audit log keeps it for good.
pub const RETAIN_FINISHED_SECS: u32 = 7 * 24 * 3600;

/// What adding an approval did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Counted; `count` of `threshold` now.
    Counted {
        /// Approvals so far.
        count: usize,
        /// Approvals needed.
        threshold: u32,
    },
    /// This approver had already approved: nothing changed.
    Duplicate,
}

/// Checks one approval against a request (pure): the signature must be canonical, recover to a
/// key of the approver set, over this request's binding digest.
pub fn verify_approval(
    req: &PendingRequest,
    signature: &Signature,
    now: TimePointSec,
) -> Result<PublicKey, ApprovalError> {
    if req.state != State::Pending {
        return Err(ApprovalError::NotPending {
            id: req.id.clone(),
            state: req.state.name().into(),
        });
    }
    if req.expired(now) {
        return Err(ApprovalError::Expired {
            id: req.id.clone(),
            expires: req.expires,
        });
    }
    let forged = |reason: &str| ApprovalError::Forged {
        id: req.id.clone(),
        reason: reason.into(),
    };
    let expected = binding_digest(&req.chain_id, &req.key, &req.signing_digest, &req.id);
    if expected != req.binding_digest {
        return Err(forged("the stored request is inconsistent"));
    }
    let approver = signature
        .recover(&expected)
        .map_err(|_| forged("the signature does not recover over this request's binding digest"))?;
    if !req.approvers.contains(&approver) {
        return Err(forged(
            "the signing key is not in the approver set (wrong key, request or chain)",
        ));
    }
    Ok(approver)
}

/// Pending requests in a directory, one JSON file each.
#[derive(Debug)]
pub struct ApprovalStore {
    dir: PathBuf,
    lock: Mutex<()>,
    /// Held from re-reading an approved request to marking it signed ([`ApprovalStore::releasing`]).
    release: Mutex<()>,
}

fn store_err(path: &Path, e: impl std::fmt::Display) -> ApprovalError {
    ApprovalError::Store(format!("{}: {e}", path.display()))
}

impl ApprovalStore {
    /// Opens (creating) the directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ApprovalError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| store_err(&dir, e))?;
        Ok(ApprovalStore {
            dir,
            lock: Mutex::new(()),
            release: Mutex::new(()),
        })
    }

    fn path(&self, id: &str) -> Result<PathBuf, ApprovalError> {
        // Ids are generated here: 32 lowercase hex characters. Anything else is not one of ours.
        if id.len() != 32
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ApprovalError::Unknown(id.chars().take(64).collect()));
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    fn write(&self, req: &PendingRequest) -> Result<(), ApprovalError> {
        let path = self.path(&req.id)?;
        let text = serde_json::to_vec_pretty(req).map_err(|e| store_err(&path, e))?;
        // 0o666 less the umask, as `File::create` makes files.
        crate::durable::write_atomic(&path, &text, 0o666).map_err(|e| store_err(&e.path, e.source))
    }

    /// Serialises the release of approved requests: whoever holds it re-reads the request,
    /// signs it only if it is still pending, and marks it signed before letting go, so two final
    /// approvals arriving together sign it once. (Approvals are rare and human-paced: one lock
    /// for all requests costs nothing and leaves no per-request state to clean up.)
    pub fn releasing(&self) -> std::sync::MutexGuard<'_, ()> {
        // Guards no data: a release that panicked left the request pending or signed on disk.
        self.release
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads a request.
    pub fn get(&self, id: &str) -> Result<PendingRequest, ApprovalError> {
        let path = self.path(id)?;
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApprovalError::Unknown(id.into()));
            }
            Err(e) => return Err(store_err(&path, e)),
        };
        serde_json::from_slice(&text).map_err(|e| store_err(&path, e))
    }

    /// Every request, oldest first.
    pub fn list(&self) -> Result<Vec<PendingRequest>, ApprovalError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| store_err(&self.dir, e))? {
            let path = entry.map_err(|e| store_err(&self.dir, e))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read(&path).map_err(|e| store_err(&path, e))?;
                out.push(
                    serde_json::from_slice::<PendingRequest>(&text)
                        .map_err(|e| store_err(&path, e))?,
                );
            }
        }
        out.sort_by_key(|r| (r.created, r.id.clone()));
        Ok(out)
    }

    /// Stores a new request (with a fresh random id, and its binding digest) durably — unless
    /// the same transaction for the same key and chain (one signing digest) is already pending
    /// or signed: then that request is the answer (`existing`), so a retried submission is the
    /// same request, approved once and signed at most once.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &self,
        requester: &str,
        chain_id: Checksum256,
        key: PublicKey,
        packed_trx: Bytes,
        context_free_data: Vec<Bytes>,
        msig_proposals: Vec<Bytes>,
        signing_digest: Checksum256,
        threshold: u32,
        approvers: Vec<PublicKey>,
        set: String,
        now: TimePointSec,
        ttl_secs: u32,
    ) -> Result<Created, ApprovalError> {
        let _one_writer = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let all = self.prune(now)?;
        let same = all
            .iter()
            .find(|r| {
                (r.chain_id, r.key, r.signing_digest) == (chain_id, key, signing_digest)
                    && match r.state {
                        State::Pending => !r.expired(now),
                        State::Signed { .. } => true,
                        State::Cancelled { .. } => false,
                    }
            })
            .cloned();
        if let Some(r) = same {
            return Ok(Created::Existing(r));
        }
        let pending = all
            .iter()
            .filter(|r| r.requester == requester && r.state == State::Pending && !r.expired(now))
            .count();
        if pending >= MAX_PENDING_PER_REQUESTER {
            return Err(ApprovalError::TooMany {
                requester: requester.into(),
                pending,
            });
        }
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw)
            .map_err(|e| ApprovalError::Store(format!("random source: {e}")))?;
        let id = hex::encode(raw);
        let req = PendingRequest {
            binding_digest: binding_digest(&chain_id, &key, &signing_digest, &id),
            id,
            requester: requester.into(),
            chain_id,
            key,
            packed_trx,
            context_free_data,
            signing_digest,
            threshold,
            approvers,
            set,
            created: now,
            expires: TimePointSec(now.0.saturating_add(ttl_secs)),
            approvals: Vec::new(),
            state: State::Pending,
            msig_proposals,
            audit: None,
        };
        self.write(&req)?;
        Ok(Created::New(req))
    }

    /// Deletes the requests finished more than [`RETAIN_FINISHED_SECS`] ago (their audit
    /// entries stay) and returns the rest. Called under the writer lock.
    fn prune(&self, now: TimePointSec) -> Result<Vec<PendingRequest>, ApprovalError> {
        let (old, kept): (Vec<_>, Vec<_>) = self.list()?.into_iter().partition(|r| {
            now.0 > r.expires.0.saturating_add(RETAIN_FINISHED_SECS)
                && (r.state != State::Pending || r.expired(now))
        });
        for r in old {
            let path = self.path(&r.id)?;
            std::fs::remove_file(&path).map_err(|e| store_err(&path, e))?;
        }
        Ok(kept)
    }

    /// Verifies and records an approval. Duplicates change nothing.
    pub fn add(
        &self,
        id: &str,
        signature: &Signature,
        now: TimePointSec,
    ) -> Result<(Added, PendingRequest), ApprovalError> {
        let _one_writer = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut req = self.get(id)?;
        let approver = verify_approval(&req, signature, now)?;
        if req.approvals.iter().any(|a| a.approver == approver) {
            return Ok((Added::Duplicate, req));
        }
        req.approvals.push(Approval {
            approver,
            signature: *signature,
            at: now,
        });
        self.write(&req)?;
        Ok((
            Added::Counted {
                count: req.approvals.len(),
                threshold: req.threshold,
            },
            req,
        ))
    }

    /// Marks a request signed (after the signature was made and audited at `audit`, before it
    /// is released).
    pub fn mark_signed(
        &self,
        id: &str,
        signature: Signature,
        audit: Option<AuditEntryRef>,
    ) -> Result<PendingRequest, ApprovalError> {
        self.set_state(id, State::Signed { signature }, audit)
    }

    /// Cancels a pending request.
    pub fn cancel(&self, id: &str, by: &str) -> Result<PendingRequest, ApprovalError> {
        self.set_state(id, State::Cancelled { by: by.into() }, None)
    }

    fn set_state(
        &self,
        id: &str,
        state: State,
        audit: Option<AuditEntryRef>,
    ) -> Result<PendingRequest, ApprovalError> {
        let _one_writer = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut req = self.get(id)?;
        if req.state != State::Pending {
            return Err(ApprovalError::NotPending {
                id: id.into(),
                state: req.state.name().into(),
            });
        }
        req.state = state;
        req.audit = audit;
        self.write(&req)?;
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::backend::KeyBackend;
    use crate::backend::soft::SoftKey;
    use crate::signing::{SignOptions, sign};
    use oryx_proto::antelope::KeyType;

    fn approver_sign(key: &SoftKey, digest: &Checksum256) -> Signature {
        sign(key, digest, SignOptions::default()).unwrap().signature
    }

    struct Setup {
        _dir: tempfile::TempDir,
        store: ApprovalStore,
        approvers: Vec<SoftKey>,
        req: PendingRequest,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store = ApprovalStore::open(dir.path().join("approvals")).unwrap();
        let approvers: Vec<SoftKey> = (0..3)
            .map(|i| SoftKey::generate(if i == 2 { KeyType::R1 } else { KeyType::K1 }).unwrap())
            .collect();
        let signer = SoftKey::generate(KeyType::K1).unwrap();
        let req = store
            .create(
                "ops",
                Checksum256([1; 32]),
                *signer.public_key(),
                Bytes(vec![1, 2, 3]),
                vec![],
                vec![],
                Checksum256([9; 32]),
                2,
                approvers.iter().map(|a| *a.public_key()).collect(),
                "custody".into(),
                TimePointSec(1000),
                600,
            )
            .unwrap();
        let Created::New(req) = req else {
            panic!("a new request")
        };
        Setup {
            _dir: dir,
            store,
            approvers,
            req,
        }
    }

    /// A requester may have at most MAX_PENDING_PER_REQUESTER requests waiting; finished
    /// requests are deleted once RETAIN_FINISHED_SECS past their expiry, pending ones never.
    #[test]
    fn pending_requests_are_capped_per_requester_and_finished_ones_pruned() {
        let s = setup();
        let key = *SoftKey::generate(KeyType::K1).unwrap().public_key();
        let make = |who: &str, n: u8, now: u32| {
            s.store.create(
                who,
                Checksum256([1; 32]),
                key,
                Bytes(vec![n]),
                vec![],
                vec![],
                Checksum256([n; 32]),
                2,
                s.approvers.iter().map(|a| *a.public_key()).collect(),
                "custody".into(),
                TimePointSec(now),
                600,
            )
        };
        // "ops" has one (from setup); fill up to the cap.
        for n in 1..MAX_PENDING_PER_REQUESTER as u8 {
            make("ops", n + 10, 1000).unwrap();
        }
        let e = make("ops", 200, 1000).unwrap_err();
        assert!(matches!(e, ApprovalError::TooMany { .. }), "{e}");
        // Another requester is not held to ops's count.
        make("other", 201, 1000).unwrap();
        // Once they expired, ops may ask again; and long after, the old ones are gone.
        make("ops", 202, 1700).unwrap();
        assert_eq!(s.store.list().unwrap().len(), MAX_PENDING_PER_REQUESTER + 2);
        let later = 1600 + RETAIN_FINISHED_SECS + 1;
        make("ops", 203, later).unwrap();
        let left = s.store.list().unwrap();
        assert_eq!(left.len(), 2, "only the two recent ones remain");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Whatever sequence of approvals arrives (duplicates, outsiders), a request counts as
        /// approved exactly when `threshold` distinct members of the set have approved.
        #[test]
        fn below_threshold_is_never_approved(threshold in 1u32..=3, picks in proptest::collection::vec(0usize..4, 0..8)) {
            let mut s = setup();
            s.req.threshold = threshold;
            s.store.write(&s.req).unwrap();
            let outsider = SoftKey::generate(KeyType::K1).unwrap();
            let mut distinct = std::collections::BTreeSet::new();
            for p in picks {
                let key = if p < 3 { &s.approvers[p] } else { &outsider };
                let res = s.store.add(&s.req.id, &approver_sign(key, &s.req.binding_digest), TimePointSec(1001));
                if p < 3 {
                    distinct.insert(p);
                    let (_, r) = res.unwrap();
                    proptest::prop_assert_eq!(r.approved(), distinct.len() >= threshold as usize);
                } else {
                    proptest::prop_assert!(res.is_err());
                }
            }
            let r = s.store.get(&s.req.id).unwrap();
            proptest::prop_assert_eq!(r.approvals.len(), distinct.len());
            proptest::prop_assert_eq!(r.approved(), distinct.len() >= threshold as usize);
        }
    }

    #[test]
    fn two_of_three_with_duplicates_and_persistence() {
        let s = setup();
        let d = s.req.binding_digest;
        let (added, r) = s
            .store
            .add(
                &s.req.id,
                &approver_sign(&s.approvers[0], &d),
                TimePointSec(1001),
            )
            .unwrap();
        assert_eq!(
            added,
            Added::Counted {
                count: 1,
                threshold: 2
            }
        );
        assert!(!r.approved(), "one approval does not reach the threshold");
        let (added, _) = s
            .store
            .add(
                &s.req.id,
                &approver_sign(&s.approvers[0], &d),
                TimePointSec(1002),
            )
            .unwrap();
        assert_eq!(
            added,
            Added::Duplicate,
            "a second approval by the same key counts once"
        );
        let (_, r) = s
            .store
            .add(
                &s.req.id,
                &approver_sign(&s.approvers[2], &d),
                TimePointSec(1003),
            )
            .unwrap();
        assert!(r.approved());
        // Durable: a fresh store sees the same request.
        let again = ApprovalStore::open(s.store.dir.clone())
            .unwrap()
            .get(&s.req.id)
            .unwrap();
        assert_eq!(again.approvals.len(), 2);
        assert_eq!(s.store.list().unwrap().len(), 1);
    }

    /// Request files written before proposals and audit positions were stored still load, and
    /// marking one signed records where the signature is in the audit log.
    #[test]
    fn older_request_files_load_and_signing_records_the_audit_position() {
        let s = setup();
        let path = s.store.path(&s.req.id).unwrap();
        // Without proposals, a request is written exactly as before (no new fields)...
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let fields = v.as_object().unwrap();
        assert!(!fields.contains_key("msig_proposals") && !fields.contains_key("audit"));
        // ...and such a file loads.
        let old = s.store.get(&s.req.id).unwrap();
        assert_eq!((old.msig_proposals.len(), old.audit.as_ref()), (0, None));

        let signature = approver_sign(&s.approvers[0], &s.req.binding_digest);
        let at = AuditEntryRef {
            seq: 7,
            hash: "ab".repeat(32),
        };
        s.store
            .mark_signed(&s.req.id, signature, Some(at.clone()))
            .unwrap();
        let again = ApprovalStore::open(s.store.dir.clone())
            .unwrap()
            .get(&s.req.id)
            .unwrap();
        assert_eq!(again.state, State::Signed { signature });
        assert_eq!(again.audit, Some(at));
    }

    #[test]
    fn forged_expired_and_closed_requests_are_refused() {
        let s = setup();
        let outsider = SoftKey::generate(KeyType::K1).unwrap();
        let d = s.req.binding_digest;
        // Wrong key.
        assert!(matches!(
            s.store
                .add(&s.req.id, &approver_sign(&outsider, &d), TimePointSec(1001)),
            Err(ApprovalError::Forged { .. })
        ));
        // Right key, wrong request (another id), wrong chain, wrong transaction.
        let other_id = binding_digest(
            &s.req.chain_id,
            &s.req.key,
            &s.req.signing_digest,
            "0123456789abcdef0123456789abcdef",
        );
        let other_chain = binding_digest(
            &Checksum256([2; 32]),
            &s.req.key,
            &s.req.signing_digest,
            &s.req.id,
        );
        let other_trx = binding_digest(
            &s.req.chain_id,
            &s.req.key,
            &Checksum256([8; 32]),
            &s.req.id,
        );
        for wrong in [other_id, other_chain, other_trx] {
            let sig = approver_sign(&s.approvers[1], &wrong);
            assert!(matches!(
                s.store.add(&s.req.id, &sig, TimePointSec(1001)),
                Err(ApprovalError::Forged { .. })
            ));
        }
        assert!(
            s.store.get(&s.req.id).unwrap().approvals.is_empty(),
            "rejected approvals change nothing"
        );
        // Expired.
        let late = s.store.add(
            &s.req.id,
            &approver_sign(&s.approvers[1], &d),
            TimePointSec(1601),
        );
        assert!(matches!(late, Err(ApprovalError::Expired { .. })));
        // Cancelled: nothing more is accepted.
        s.store.cancel(&s.req.id, "ops").unwrap();
        let after = s.store.add(
            &s.req.id,
            &approver_sign(&s.approvers[1], &d),
            TimePointSec(1001),
        );
        assert!(matches!(after, Err(ApprovalError::NotPending { .. })));
        // Ids that are not ours never touch the filesystem.
        assert!(matches!(
            s.store.get("../../etc/passwd"),
            Err(ApprovalError::Unknown(_))
        ));
    }
}
