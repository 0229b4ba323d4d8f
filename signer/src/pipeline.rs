//! The signing pipeline (DESIGN.md §3), synchronous and transport-free:
//! authenticate (done by the caller) → decode and recompute the digest → authorize →
//! reserve the watermark (durable) → sign → normalise and verify → commit → audit → answer.
//!
//! Guards: nothing reaches a backend without a durable [`Reservation`]; every decision, signed or
//! refused, is in the audit log before the answer is returned; an audit failure withholds the
//! signature (fail closed). The server runs each request on a blocking thread it does not
//! cancel, so a client that hangs up cannot cut reserve → sign → commit → audit in half.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use oryx_proto::antelope::actions::msig::pinned_proposals;
use oryx_proto::antelope::block::{BlockHeader, num_from_id};
use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Bytes, Checksum256, Pack, PublicKey, Signature, TimePointSec};

use crate::approvals::{Added, ApprovalError, ApprovalStore, PendingRequest, State};
use crate::audit::{AuditEntryRef, AuditLog, AuditRecord, Position};
use crate::authz::{Authorization, Authorizer};
use crate::config::RequestKind;
pub use crate::keyset::KeyEntry;
use crate::keyset::KeySet;
use crate::metrics::{Metrics, Stage};
use crate::signing::{SignError, SignOptions};
use crate::watermark::{
    Request, Reservation, ReserveError, Reserved, WatermarkKey, WatermarkStore,
};

/// Machine-readable refusal reasons (the `oryx.v1.Reason` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The watermark refused.
    DoubleSign,
    /// The authorizer refused.
    PolicyDenied,
    /// The key is not held here.
    UnknownKey,
    /// The key is not configured for the chain.
    WrongChain,
    /// The request does not decode.
    Malformed,
    /// Blind digests are not allowed for the key.
    BlindNotAllowed,
    /// An HSM or the watermark store or the audit log is unavailable.
    Unavailable,
    /// The signer failed.
    Internal,
    /// Stored as a pending request until enough approvers approve.
    NeedsApprovals,
    /// An approval that is forged, late, or for a closed request.
    ApprovalRejected,
    /// The key was retired by a rotation ceremony.
    KeyRetired,
    /// A key-lifecycle call from a principal that is not an admin.
    NotAdmin,
    /// The signer's configuration lacks what the call needs.
    NotConfigured,
}

impl Reason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DoubleSign => "DOUBLE_SIGN",
            Reason::PolicyDenied => "POLICY_DENIED",
            Reason::UnknownKey => "UNKNOWN_KEY",
            Reason::WrongChain => "WRONG_CHAIN",
            Reason::Malformed => "MALFORMED",
            Reason::BlindNotAllowed => "BLIND_NOT_ALLOWED",
            Reason::Unavailable => "UNAVAILABLE",
            Reason::Internal => "INTERNAL",
            Reason::NeedsApprovals => "NEEDS_APPROVALS",
            Reason::ApprovalRejected => "APPROVAL_REJECTED",
            Reason::KeyRetired => "KEY_RETIRED",
            Reason::NotAdmin => "NOT_ADMIN",
            Reason::NotConfigured => "NOT_CONFIGURED",
        }
    }
}

/// A refusal or failure, with a message safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", reason.as_str())]
pub struct Refused {
    /// Why.
    pub reason: Reason,
    /// Detail for the operator.
    pub message: String,
    /// For [`Reason::NeedsApprovals`]: the pending request's id.
    pub request_id: Option<String>,
    /// Where the refusal is in the audit log, once it is recorded there.
    pub audit: Option<AuditEntryRef>,
}

pub(crate) fn refused(reason: Reason, message: impl Into<String>) -> Refused {
    Refused {
        reason,
        request_id: None,
        audit: None,
        message: message.into(),
    }
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What was signed.
    pub digest: Checksum256,
    /// The signature.
    pub signature: Signature,
    /// An identical earlier request's stored signature.
    pub replayed: bool,
    /// The watermark position (0 when the request has none).
    pub block_num: u32,
    /// The slot (0 when unknown).
    pub slot: u32,
    /// Where the decision is in the audit log (set once it is recorded there).
    pub audit: Option<AuditEntryRef>,
}

/// A block signing request.
#[derive(Debug, Clone)]
pub struct BlockRequest {
    /// Chain id.
    pub chain_id: Checksum256,
    /// Producer key.
    pub key: PublicKey,
    /// `pack(block_header)`.
    pub header: Vec<u8>,
    /// Legacy only.
    pub legacy: Option<(Checksum256, Checksum256)>,
}

/// The pipeline and everything it needs.
#[derive(Debug)]
pub struct Pipeline {
    /// Keys by public key, including generated and retired ones.
    pub keys: KeySet,
    /// Signing options per chain.
    pub chains: HashMap<Checksum256, SignOptions>,
    /// Watermarks.
    pub watermarks: Arc<dyn WatermarkStore>,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Who may do what.
    pub authz: Arc<dyn Authorizer>,
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Pending requests for approvals (with a policy file).
    pub approvals: Option<Arc<ApprovalStore>>,
    /// Principals that may cancel any approval request.
    pub admins: Vec<String>,
}

/// The part of a request every path shares once its digest is known.
struct Prepared<'a> {
    principal: &'a str,
    kind: RequestKind,
    /// What the policy sees (absent for requests refused before decoding).
    body: Option<oryx_policy::Body>,
    /// A transaction's context-free data (for a pending approval request).
    cfd: Vec<Bytes>,
    chain_id: Checksum256,
    key: PublicKey,
    digest: Checksum256,
    watermark: Option<Request>,
    started: Instant,
}

impl Pipeline {
    /// SignBlock.
    pub fn sign_block(&self, principal: &str, req: &BlockRequest) -> Result<Outcome, Refused> {
        let started = Instant::now();
        let decoded = BlockHeader::decode(&req.header).and_then(|h| Ok((h.block_num()?, h)));
        let (block_num, header) = match decoded {
            Ok(x) => x,
            Err(e) => {
                return Err(self.refuse_early(
                    principal,
                    RequestKind::Block,
                    req.chain_id,
                    req.key,
                    started,
                    refused(Reason::Malformed, format!("block header: {e}")),
                ));
            }
        };
        let digest = header
            .signing_digest(req.legacy.as_ref().map(|(bm, sh)| (bm, sh)))
            .map_err(|e| refused(Reason::Malformed, e.to_string()));
        let digest = match digest {
            Ok(d) => d,
            Err(r) => {
                return Err(self.refuse_early(
                    principal,
                    RequestKind::Block,
                    req.chain_id,
                    req.key,
                    started,
                    r,
                ));
            }
        };
        let slot = header.timestamp.slot();
        self.run(Prepared {
            principal,
            kind: RequestKind::Block,
            cfd: Vec::new(),
            body: Some(oryx_policy::Body::Block {
                block_num,
                producer: header.producer,
            }),
            chain_id: req.chain_id,
            key: req.key,
            digest,
            watermark: Some(Request::Block { block_num, slot }),
            started,
        })
    }

    /// SignTransaction: the digest over the transaction and its context-free data.
    ///
    /// `msig_proposals` are `pack(transaction)` of the proposals the transaction's
    /// `eosio.msig::approve` actions approve, in action order. An approve is never signed blind:
    /// each must carry a `proposal_hash` equal to sha256 of its proposal, and the proposals go to
    /// the policy and to approvers; anything missing, extra or different is refused MALFORMED
    /// (audited, nothing signed).
    pub fn sign_transaction(
        &self,
        principal: &str,
        chain_id: Checksum256,
        key: PublicKey,
        trx: &Transaction,
        cfd: &[Bytes],
        msig_proposals: &[Bytes],
    ) -> Result<(Outcome, Checksum256), Refused> {
        let started = Instant::now();
        let digest = trx.signing_digest(&chain_id, cfd);
        let mut p = Prepared {
            principal,
            kind: RequestKind::Transaction,
            cfd: cfd.to_vec(),
            body: None,
            chain_id,
            key,
            digest,
            watermark: None,
            started,
        };
        let proposals = match pinned_proposals(trx, msig_proposals) {
            Ok(proposals) => proposals,
            Err(e) => {
                return Err(self.refuse_prepared(&p, refused(Reason::Malformed, e.to_string())));
            }
        };
        p.body = Some(oryx_policy::Body::Transaction {
            trx: trx.clone(),
            has_context_free_data: !cfd.is_empty(),
            msig_proposals: proposals,
        });
        let outcome = self.run(p)?;
        Ok((outcome, trx.id()))
    }

    /// Records a transaction request that failed to decode.
    pub fn refuse_malformed(
        &self,
        principal: &str,
        kind: RequestKind,
        chain_id: Checksum256,
        key: PublicKey,
        message: String,
    ) -> Refused {
        self.refuse_early(
            principal,
            kind,
            chain_id,
            key,
            Instant::now(),
            refused(Reason::Malformed, message),
        )
    }

    /// Audits a request whose chain id or key field does not even decode (so there is no
    /// chain or key to name): the principal passed mTLS, so the attempt is on record.
    pub fn audit_undecodable(&self, principal: &str, kind: RequestKind, message: &str) {
        let record = AuditRecord {
            reason: Some(format!("{}: {message}", Reason::Malformed.as_str())),
            policy_version: Some(self.authz.version()),
            ..AuditRecord::new(
                sanitize_principal(principal),
                format!("sign_{}", kind.as_str()),
                "refused",
            )
        };
        if let Err(e) = self.audit.append(record) {
            tracing::error!(error = %e, "audit log write failed for a malformed request");
        }
        self.metrics.observe(kind, "refused", 0);
        tracing::warn!(
            principal,
            kind = kind.as_str(),
            reason = "MALFORMED",
            "refused: {message}"
        );
    }

    /// SignDigest: a blind digest. A Savanna block id (Savanna chain) carries its block number;
    /// anything else is guarded by the wall-clock slot only.
    pub fn sign_digest(
        &self,
        principal: &str,
        chain_id: Checksum256,
        key: PublicKey,
        digest: Checksum256,
        savanna: bool,
    ) -> Result<Outcome, Refused> {
        let started = Instant::now();
        let watermark = if savanna {
            Request::BlindSavanna
        } else {
            Request::BlindLegacy
        };
        self.run(Prepared {
            principal,
            kind: RequestKind::Digest,
            cfd: Vec::new(),
            body: Some(oryx_policy::Body::Digest),
            chain_id,
            key,
            digest,
            watermark: Some(watermark),
            started,
        })
    }

    /// `entry` (the request's lookup of `key`), checked to be an active key configured for
    /// `chain_id`, with that chain's signing options.
    fn key_on_chain<'e>(
        &self,
        entry: Option<&'e KeyEntry>,
        key: &PublicKey,
        chain_id: &Checksum256,
    ) -> Result<(&'e KeyEntry, SignOptions), Refused> {
        let entry = entry.ok_or_else(|| {
            refused(
                Reason::UnknownKey,
                format!("this signer does not hold {key}"),
            )
        })?;
        if entry.is_retired() {
            return Err(refused(
                Reason::KeyRetired,
                format!("{key} was retired by a key rotation and signs nothing"),
            ));
        }
        let opts = *self.chains.get(chain_id).ok_or_else(|| {
            refused(
                Reason::WrongChain,
                format!("chain {chain_id} is not configured"),
            )
        })?;
        if !entry.chains.contains(chain_id) {
            return Err(refused(
                Reason::WrongChain,
                format!("{key} is not configured for chain {chain_id}"),
            ));
        }
        Ok((entry, opts))
    }

    /// Stores a transaction that needs approvals as a pending request (after checking the key
    /// and chain, so nothing is stored that could never be signed).
    fn store_for_approvals(
        &self,
        p: &Prepared<'_>,
        entry: Option<&KeyEntry>,
        now: TimePointSec,
        threshold: u32,
        approvers: Vec<PublicKey>,
        set: String,
    ) -> Refused {
        let (
            Some(store),
            Some(oryx_policy::Body::Transaction {
                trx,
                msig_proposals,
                ..
            }),
        ) = (&self.approvals, &p.body)
        else {
            return refused(
                Reason::PolicyDenied,
                format!(
                    "needs {threshold} of {} approvals from set {set:?}, which only transactions can collect",
                    approvers.len()
                ),
            );
        };
        if let Err(r) = self.key_on_chain(entry, &p.key, &p.chain_id) {
            return r;
        }
        if trx.expiration <= now {
            return refused(
                Reason::Malformed,
                format!("the transaction expired at {}", trx.expiration),
            );
        }
        let n = approvers.len();
        let ttl = trx.expiration.0 - now.0;
        match store.create(
            p.principal,
            p.chain_id,
            p.key,
            Bytes(trx.packed()),
            p.cfd.clone(),
            // Canonical (checked by `pinned_proposals`): these are the bytes the approves pin.
            msig_proposals.iter().map(|t| Bytes(t.packed())).collect(),
            p.digest,
            threshold,
            approvers,
            set.clone(),
            now,
            ttl,
        ) {
            Ok(req) => Refused {
                reason: Reason::NeedsApprovals,
                message: format!(
                    "stored as approval request {}: needs {threshold} of {n} approvals from set {set:?}, each a signature over binding digest {} (until {})",
                    req.id, req.binding_digest, req.expires
                ),
                request_id: Some(req.id),
                audit: None,
            },
            Err(e) => refused(Reason::Unavailable, e.to_string()),
        }
    }

    fn approval_store(&self) -> Result<&ApprovalStore, Refused> {
        self.approvals.as_deref().ok_or_else(|| {
            refused(
                Reason::PolicyDenied,
                "approvals need a policy file (policy = ...) in the signer's config",
            )
        })
    }

    /// Every approval request.
    pub fn list_approvals(&self) -> Result<Vec<PendingRequest>, Refused> {
        self.approval_store()?
            .list()
            .map_err(|e| refused(Reason::Unavailable, e.to_string()))
    }

    /// One approval request.
    pub fn get_approval(&self, id: &str) -> Result<PendingRequest, Refused> {
        self.approval_store()?.get(id).map_err(approval_refusal)
    }

    /// Cancels a pending request: its requester or an admin may.
    pub fn cancel_approval(&self, principal: &str, id: &str) -> Result<PendingRequest, Refused> {
        let store = self.approval_store()?;
        let req = store.get(id).map_err(approval_refusal)?;
        if req.requester != principal && !self.admins.iter().any(|a| a == principal) {
            return Err(refused(
                Reason::PolicyDenied,
                format!(
                    "only the requester ({:?}) or an admin may cancel request {id}",
                    req.requester
                ),
            ));
        }
        let out = store.cancel(id, principal).map_err(approval_refusal);
        self.audit_approval(
            principal,
            &req,
            if out.is_ok() { "cancelled" } else { "rejected" },
            out.as_ref().err().map(ToString::to_string),
        );
        out
    }

    /// Records one approver's signature; signs the transaction once the threshold is met.
    pub fn approve(
        &self,
        principal: &str,
        id: &str,
        signature: &Signature,
    ) -> Result<PendingRequest, Refused> {
        let store = self.approval_store()?;
        let now = crate::clock::now_secs();
        let (req, decision) = match store.add(id, signature, now) {
            Ok((Added::Counted { .. }, req)) => (req, "accepted"),
            Ok((Added::Duplicate, req)) => (req, "duplicate"),
            Err(ApprovalError::NotPending { .. }) => {
                // A late but genuine approval of a request already signed is harmless.
                let req = store.get(id).map_err(approval_refusal)?;
                let genuine = matches!(req.state, State::Signed { .. })
                    && signature
                        .recover(&req.binding_digest)
                        .is_ok_and(|k| req.approvers.contains(&k));
                if !genuine {
                    let e = refused(
                        Reason::ApprovalRejected,
                        format!("approval request {id} is closed"),
                    );
                    self.audit_approval(principal, &req, "rejected", Some(e.to_string()));
                    return Err(e);
                }
                (req, "duplicate")
            }
            Err(e) => {
                let r = approval_refusal(e);
                if let Ok(req) = store.get(id) {
                    self.audit_approval(principal, &req, "rejected", Some(r.to_string()));
                }
                return Err(r);
            }
        };
        self.audit_approval(
            principal,
            &req,
            decision,
            signature
                .recover(&req.binding_digest)
                .ok()
                .map(|k| format!("approver {k}")),
        );
        if req.state == State::Pending && req.approved() {
            return self.sign_approved(&req, now);
        }
        Ok(req)
    }

    /// Signs an approved request: the policy is evaluated again (budgets and rates hold at
    /// signing time), the digest recomputed from the stored transaction.
    fn sign_approved(
        &self,
        req: &PendingRequest,
        now: TimePointSec,
    ) -> Result<PendingRequest, Refused> {
        let started = Instant::now();
        let trx = Transaction::decode(&req.packed_trx.0)
            .map_err(|e| refused(Reason::Internal, format!("stored transaction: {e}")))?;
        let digest = trx.signing_digest(&req.chain_id, &req.context_free_data);
        let p = Prepared {
            principal: &req.requester,
            kind: RequestKind::Transaction,
            body: None,
            cfd: Vec::new(),
            chain_id: req.chain_id,
            key: req.key,
            digest,
            watermark: None,
            started,
        };
        let signed = (|| {
            if digest != req.signing_digest {
                return Err(refused(
                    Reason::Internal,
                    "the stored transaction does not match its digest",
                ));
            }
            let msig_proposals = pinned_proposals(&trx, &req.msig_proposals)
                .map_err(|e| refused(Reason::Internal, format!("stored proposals: {e}")))?;
            let entry = self.keys.get(&req.key);
            let request = oryx_policy::Request {
                principal: req.requester.clone(),
                key: entry.as_ref().map_or(req.key, |e| e.identity),
                chain_id: req.chain_id,
                now,
                body: oryx_policy::Body::Transaction {
                    trx: trx.clone(),
                    has_context_free_data: !req.context_free_data.is_empty(),
                    msig_proposals,
                },
            };
            let charges = match self.authz.authorize(&request) {
                Authorization::Allow { charges }
                | Authorization::NeedsApprovals { charges, .. } => charges,
                Authorization::Deny(reason) => {
                    return Err(refused(
                        Reason::PolicyDenied,
                        format!("approved, but the policy now refuses it: {reason}"),
                    ));
                }
            };
            // The retire gate, as in `run`: a retirement waits for this signature, and once a
            // key is retired no approval signs with it.
            let _gate = entry.as_deref().map(KeyEntry::gate);
            let (entry, opts) = self.key_on_chain(entry.as_deref(), &req.key, &req.chain_id)?;
            let signature = entry.sign(&digest, opts).map_err(sign_failure)?.signature;
            self.authz
                .signed(&charges, now)
                .map_err(|e| refused(Reason::Unavailable, e))?;
            Ok(Outcome {
                digest,
                signature,
                replayed: false,
                block_num: 0,
                slot: 0,
                audit: None,
            })
        })();
        let outcome = self.finish(&p, signed, None)?;
        self.approval_store()?
            .mark_signed(&req.id, outcome.signature, outcome.audit)
            .map_err(approval_refusal)
    }

    fn audit_approval(
        &self,
        principal: &str,
        req: &PendingRequest,
        decision: &str,
        reason: Option<String>,
    ) {
        let record = AuditRecord {
            key: Some(req.key.to_string()),
            chain_id: Some(req.chain_id.to_string()),
            digest: Some(req.binding_digest.to_string()),
            reason: Some(format!(
                "request {}{}",
                req.id,
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            )),
            policy_version: Some(self.authz.version()),
            ..AuditRecord::new(sanitize_principal(principal), "approval", decision)
        };
        if let Err(e) = self.audit.append(record) {
            tracing::error!(error = %e, "audit log write failed for an approval");
        }
    }

    fn refuse_early(
        &self,
        principal: &str,
        kind: RequestKind,
        chain_id: Checksum256,
        key: PublicKey,
        started: Instant,
        r: Refused,
    ) -> Refused {
        let p = Prepared {
            principal,
            kind,
            body: None,
            cfd: Vec::new(),
            chain_id,
            key,
            digest: Checksum256::default(),
            watermark: None,
            started,
        };
        self.refuse_prepared(&p, r)
    }

    /// Audits and returns a refusal decided before the pipeline ran.
    fn refuse_prepared(&self, p: &Prepared<'_>, r: Refused) -> Refused {
        self.finish(p, Err(r), None)
            .err()
            .unwrap_or_else(|| refused(Reason::Internal, "refusal lost"))
    }

    fn run(&self, p: Prepared<'_>) -> Result<Outcome, Refused> {
        // Held from the retired check to the watermark commit, so a retirement waits for this
        // request and the hand-over reads a watermark no request of the old key moves again.
        // The request's only key set lookup: the gate, the policy identity and the key checks
        // all use this entry.
        let entry = self.keys.get(&p.key);
        let _gate = entry.as_deref().map(KeyEntry::gate);
        let result = self.decide_and_sign(&p, entry.as_deref());
        let position = match (&result, p.watermark) {
            (Ok((o, _)), _) if o.block_num > 0 => Some(Position {
                block_num: o.block_num,
                slot: o.slot,
            }),
            (_, Some(Request::Block { block_num, slot })) => Some(Position { block_num, slot }),
            _ => None,
        };
        match result {
            Err(r) => self.finish(&p, Err(r), position),
            Ok((outcome, None)) => self.finish(&p, Ok(outcome), position),
            // A new signature under a reservation: remember it (an identical retry gets it
            // back; the commit is not synced, the reservation is), then the audit entry, durable
            // before the answer.
            Ok((outcome, Some(reservation))) => match self
                .watermarks
                .commit(reservation, &outcome.signature)
            {
                Ok(stored) if stored == outcome.signature => self.finish(&p, Ok(outcome), position),
                // An identical request committed first: everyone gets that one signature.
                Ok(stored) => self.finish(
                    &p,
                    Ok(Outcome {
                        signature: stored,
                        replayed: true,
                        ..outcome
                    }),
                    position,
                ),
                Err(e) => self.finish(
                    &p,
                    Err(refused(
                        Reason::Unavailable,
                        format!("watermark commit: {e}"),
                    )),
                    position,
                ),
            },
        }
    }

    /// Everything up to and including the signature. A fresh signature comes with its
    /// reservation, still to be committed.
    fn decide_and_sign(
        &self,
        p: &Prepared<'_>,
        entry: Option<&KeyEntry>,
    ) -> Result<(Outcome, Option<Reservation>), Refused> {
        // Authorization first: a principal without rights learns nothing about which keys and
        // chains this signer holds.
        let now = crate::clock::now_secs();
        let body = p
            .body
            .clone()
            .ok_or_else(|| refused(Reason::Malformed, "request did not decode"))?;
        // A successor key signs under its predecessor's rules (its policy identity).
        let request = oryx_policy::Request {
            principal: p.principal.to_string(),
            key: entry.map_or(p.key, |e| e.identity),
            chain_id: p.chain_id,
            now,
            body,
        };
        let charges = match self.authz.authorize(&request) {
            Authorization::Allow { charges } => charges,
            Authorization::Deny(reason) => return Err(refused(Reason::PolicyDenied, reason)),
            Authorization::NeedsApprovals {
                threshold,
                approvers,
                set,
                ..
            } => {
                return Err(self.store_for_approvals(p, entry, now, threshold, approvers, set));
            }
        };
        let (entry, opts) = self.key_on_chain(entry, &p.key, &p.chain_id)?;
        if p.kind == RequestKind::Digest && !entry.blind_digest {
            return Err(refused(
                Reason::BlindNotAllowed,
                format!(
                    "{} does not allow blind digests (blind_digest = false)",
                    p.key
                ),
            ));
        }
        let Some(request) = p.watermark else {
            let t = Instant::now();
            let signed = entry.sign(&p.digest, opts).map_err(sign_failure)?;
            self.metrics.stage(Stage::Sign, t.elapsed());
            // Counted as soon as a signature exists, even if it is then withheld: budgets err
            // on the strict side. A spend that cannot be recorded withholds the signature.
            self.authz
                .signed(&charges, now)
                .map_err(|e| refused(Reason::Unavailable, e))?;
            let outcome = Outcome {
                digest: p.digest,
                signature: signed.signature,
                replayed: false,
                block_num: 0,
                slot: 0,
                audit: None,
            };
            return Ok((outcome, None));
        };
        let key = WatermarkKey {
            chain_id: p.chain_id,
            key: p.key,
        };
        let (block_num, slot) = match request {
            Request::Block { block_num, slot } => (block_num, slot),
            Request::BlindSavanna => (num_from_id(&p.digest), 0),
            Request::BlindLegacy => (0, 0),
        };
        let t = Instant::now();
        let reserved = self.watermarks.reserve(
            &key,
            &request,
            &p.digest,
            crate::clock::now_slot(),
            entry.retry,
        );
        self.metrics.stage(Stage::Reserve, t.elapsed());
        let reservation = match reserved {
            Ok(Reserved::Replay(signature)) => {
                let outcome = Outcome {
                    digest: p.digest,
                    signature,
                    replayed: true,
                    block_num,
                    slot,
                    audit: None,
                };
                return Ok((outcome, None));
            }
            Ok(Reserved::Proceed(r)) => r,
            Err(ReserveError::Refused(r)) => {
                return Err(refused(Reason::DoubleSign, r.to_string()));
            }
            Err(ReserveError::Store(e)) => {
                return Err(refused(Reason::Unavailable, e.to_string()));
            }
        };
        let t = Instant::now();
        let signed =
            // Blocks are latency-critical: let an HSM try two K1 nonces at once.
            entry.sign(reservation.digest(), SignOptions { speculative: true, ..opts })
                .map_err(sign_failure)?;
        self.metrics.stage(Stage::Sign, t.elapsed());
        self.authz
            .signed(&charges, now)
            .map_err(|e| refused(Reason::Unavailable, e))?;
        let outcome = Outcome {
            digest: p.digest,
            signature: signed.signature,
            replayed: false,
            block_num,
            slot,
            audit: None,
        };
        Ok((outcome, Some(reservation)))
    }

    /// Audits the decision and logs it; withholds a signature the audit log could not record.
    fn finish(
        &self,
        p: &Prepared<'_>,
        result: Result<Outcome, Refused>,
        position: Option<Position>,
    ) -> Result<Outcome, Refused> {
        let latency_us = p.started.elapsed().as_micros() as u64;
        let (decision, reason, signature) = match &result {
            Ok(o) if o.replayed => ("replayed", None, Some(o.signature.to_string())),
            Ok(o) => ("signed", None, Some(o.signature.to_string())),
            Err(r) if matches!(r.reason, Reason::Unavailable | Reason::Internal) => {
                ("failed", Some(r.to_string()), None)
            }
            Err(r) if r.reason == Reason::NeedsApprovals => ("pending", Some(r.to_string()), None),
            Err(r) => ("refused", Some(r.to_string()), None),
        };
        let record = AuditRecord {
            key: Some(p.key.to_string()),
            chain_id: Some(p.chain_id.to_string()),
            digest: (p.digest != Checksum256::default()).then(|| p.digest.to_string()),
            position,
            reason: reason.clone(),
            policy_version: Some(self.authz.version()),
            latency_us,
            signature,
            ..AuditRecord::new(
                sanitize_principal(p.principal),
                format!("sign_{}", p.kind.as_str()),
                decision,
            )
        };
        let t = Instant::now();
        let audited = self.audit.append(record);
        self.metrics.stage(Stage::Audit, t.elapsed());
        self.metrics.observe(
            p.kind,
            if audited.is_ok() { decision } else { "failed" },
            latency_us,
        );
        match (result, audited) {
            (_, Err(e)) => {
                tracing::error!(key = %p.key, error = %e, "audit log write failed: withholding the answer");
                // A record the log refuses is the signer's bug; a write failure is an outage.
                let reason = match e {
                    crate::audit::AuditError::InvalidRecord(_) => Reason::Internal,
                    _ => Reason::Unavailable,
                };
                Err(refused(reason, format!("audit log: {e}")))
            }
            (Ok(o), Ok(entry)) => {
                tracing::info!(principal = p.principal, key = %p.key, kind = p.kind.as_str(), block_num = o.block_num, slot = o.slot, digest = %o.digest, replayed = o.replayed, elapsed_us = latency_us, audit = %entry, "signed");
                Ok(Outcome {
                    audit: Some(entry),
                    ..o
                })
            }
            (Err(r), Ok(entry)) => {
                tracing::warn!(principal = p.principal, key = %p.key, kind = p.kind.as_str(), reason = r.reason.as_str(), detail = %r.message, elapsed_us = latency_us, audit = %entry, "refused");
                Err(Refused {
                    audit: Some(entry),
                    ..r
                })
            }
        }
    }
}

/// Principals come from certificates; keep the audit field printable and within the audit
/// record's 256-byte bound (cut at a character boundary).
pub(crate) fn sanitize_principal(p: &str) -> String {
    let mut s = String::new();
    for c in p.chars().filter(|c| !c.is_control()) {
        if s.len() + c.len_utf8() > 200 {
            break;
        }
        s.push(c);
    }
    if s.is_empty() { "<none>".into() } else { s }
}

fn approval_refusal(e: ApprovalError) -> Refused {
    match e {
        ApprovalError::Store(m) => refused(Reason::Unavailable, m),
        other => refused(Reason::ApprovalRejected, other.to_string()),
    }
}

pub(crate) fn sign_failure(e: SignError) -> Refused {
    match e {
        SignError::Backend(crate::backend::BackendError::Unavailable(m)) => {
            refused(Reason::Unavailable, m)
        }
        other => refused(Reason::Internal, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;
    use std::sync::mpsc::{Receiver, Sender, channel};
    use std::time::Duration;

    use oryx_proto::antelope::KeyType;

    use super::*;
    use crate::authz::AllowList;
    use crate::backend::KeyBackend as _;
    use crate::backend::soft::SoftKey;
    use crate::config::AllowRule;
    use crate::watermark::file::FileStore;
    use crate::watermark::{RetryPolicy, StoreError, Watermark, WatermarkRecord};

    /// The real file store, with the first reservation paused until the test releases it: a
    /// request held between its retired check and its watermark commit.
    #[derive(Debug)]
    struct PauseFirstReserve {
        store: FileStore,
        inside: Mutex<Option<Sender<()>>>,
        release: Mutex<Receiver<()>>,
    }

    impl WatermarkStore for PauseFirstReserve {
        fn reserve(
            &self,
            key: &WatermarkKey,
            request: &Request,
            digest: &Checksum256,
            wall_slot: u32,
            retry: RetryPolicy,
        ) -> Result<Reserved, ReserveError> {
            if let Some(inside) = self.inside.lock().unwrap().take() {
                inside.send(()).unwrap();
                let _ = self.release.lock().unwrap().recv();
            }
            self.store.reserve(key, request, digest, wall_slot, retry)
        }
        fn commit(&self, r: Reservation, signature: &Signature) -> Result<Signature, StoreError> {
            self.store.commit(r, signature)
        }
        fn get(&self, key: &WatermarkKey) -> Result<Option<Watermark>, StoreError> {
            self.store.get(key)
        }
        fn export(&self) -> Result<Vec<WatermarkRecord>, StoreError> {
            self.store.export()
        }
        fn import(&self, record: &WatermarkRecord, force: bool) -> Result<(), StoreError> {
            self.store.import(record, force)
        }
        fn raise(
            &self,
            key: &WatermarkKey,
            from: &PublicKey,
            floor: &Watermark,
        ) -> Result<Watermark, StoreError> {
            self.store.raise(key, from, floor)
        }
        fn health(&self) -> Result<(), StoreError> {
            self.store.health()
        }
    }

    /// What makes a hand-over safe: RetireKey cannot stop a key while one of its requests is
    /// between the retired check and the watermark commit (so the watermark it then reads is
    /// final), and no request passes the check afterwards.
    #[test]
    fn a_retirement_waits_for_a_request_inside_the_signing_path() {
        let dir = tempfile::tempdir().unwrap();
        let soft = Arc::new(SoftKey::generate(KeyType::K1).unwrap());
        let key = *soft.public_key();
        let chain = Checksum256([7; 32]);
        let (inside_tx, inside) = channel();
        let (release, release_rx) = channel();
        let pipeline = Arc::new(Pipeline {
            keys: KeySet::new([KeyEntry::new(soft, vec![chain], true, RetryPolicy::Refuse)]),
            chains: HashMap::from([(chain, SignOptions::default())]),
            watermarks: Arc::new(PauseFirstReserve {
                store: FileStore::open(dir.path().join("watermarks")).unwrap(),
                inside: Mutex::new(Some(inside_tx)),
                release: Mutex::new(release_rx),
            }),
            audit: Arc::new(AuditLog::open(dir.path().join("audit.jsonl")).unwrap()),
            authz: Arc::new(AllowList::new(
                vec![AllowRule {
                    principal: "node1".into(),
                    keys: vec![key],
                    kinds: vec![RequestKind::Digest],
                }],
                "test".into(),
            )),
            metrics: Arc::default(),
            approvals: None,
            admins: Vec::new(),
        });
        // A Savanna block id carries its block number in its first four bytes.
        let block_id = |n: u32| {
            let mut id = [9; 32];
            id[..4].copy_from_slice(&n.to_be_bytes());
            Checksum256(id)
        };

        let p = pipeline.clone();
        let request =
            std::thread::spawn(move || p.sign_digest("node1", chain, key, block_id(10), true));
        inside.recv().unwrap();
        let entry = pipeline.keys.get(&key).unwrap();
        let (retired_tx, retired) = channel();
        let retire = std::thread::spawn(move || retired_tx.send(entry.retire()).unwrap());
        assert!(
            retired.recv_timeout(Duration::from_millis(100)).is_err(),
            "the retirement returned while a request was between its check and its commit"
        );
        release.send(()).unwrap();
        assert!(request.join().unwrap().is_ok());
        assert!(!retired.recv().unwrap());
        retire.join().unwrap();
        let after = pipeline.sign_digest("node1", chain, key, block_id(11), true);
        assert_eq!(after.unwrap_err().reason, Reason::KeyRetired);
    }
}
