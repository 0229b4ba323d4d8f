//! The signing pipeline (DESIGN.md §3), synchronous and transport-free:
//! authenticate (done by the caller) → decode and recompute the digest → authorize →
//! reserve the watermark (durable) → sign → normalise and verify → commit → audit → answer.
//!
//! Read top to bottom: the entry points (SignBlock, SignTransaction, SignDigest) turn what a
//! client sent into a [`Prepared`] request; the spine — [`Pipeline::run`] →
//! [`Pipeline::decide_and_sign`] → [`Pipeline::finish`] — is the one path to a signature. A
//! request its approvers have approved ([`approvals`]) takes the same spine, marked approved, so
//! the retire gate, authorization, the key and chain checks, signing, budget charges and the
//! audit entry each exist once.
//!
//! Guards: nothing reaches a backend without a durable [`Reservation`] (blocks and digests) or a
//! fresh authorization (transactions); every decision, signed or refused, is in the audit log
//! before the answer is returned; an audit failure withholds the signature (fail closed). In
//! write-ahead mode ([`crate::wal`], the default) the reservation's durable record is its
//! `reserved` audit entry, synced before signing — one sync per signature — and the outcome
//! naming it is written (not yet synced) before the answer. The
//! server runs each request on a blocking thread it does not cancel, so a client that hangs up
//! cannot cut reserve → sign → commit → audit in half.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use oryx_policy::Body;
use oryx_proto::antelope::actions::msig::pinned_proposals;
use oryx_proto::antelope::block::{BlockHeader, num_from_id};
use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Bytes, Checksum256, PublicKey, Signature};

use crate::approvals::ApprovalStore;
use crate::audit::{
    AuditDecision, AuditEntryRef, AuditError, AuditKind, AuditLog, AuditRecord, Position,
};
use crate::authz::{Authorization, Authorizer, ChargeHold};
use crate::config::RequestKind;
pub use crate::keyset::KeyEntry;
use crate::keyset::KeySet;
use crate::metrics::{Metrics, Stage};
use crate::refusal::{Admins, Reason, Refused, refused, sanitize_principal, sign_failure};
use crate::signing::SignOptions;
use crate::watermark::{
    Request, Reservation, ReserveError, Reserved, Scopes, WatermarkKey, WatermarkStore,
};

mod approvals;

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
    pub audit: Option<crate::audit::AuditEntryRef>,
    /// The signature's text (`SIG_…`), once the audit record made it (base58 is not free).
    pub text: Option<String>,
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
    /// Which watermark each key reserves under (its own, or its producer's).
    pub scopes: Arc<Scopes>,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Who may do what.
    pub authz: Arc<dyn Authorizer>,
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Pending requests for approvals (with a policy file).
    pub approvals: Option<Arc<ApprovalStore>>,
    /// Principals that may cancel any approval request and change the key set.
    pub admins: Admins,
    /// One sync per block or digest signature: a write-ahead audit entry records the
    /// reservation before signing ([`crate::wal`], `[watermarks] write_ahead`).
    pub write_ahead: bool,
    /// Outcomes of write-ahead entries the log could not take (their answers were withheld),
    /// written by [`Pipeline::record_withheld`] once it can, before a checkpoint passes them.
    pub withheld: std::sync::Mutex<Vec<AuditRecord>>,
    /// Write-ahead entries whose outcome is not written yet: no checkpoint passes them.
    pub in_flight: InFlight,
}

/// Write-ahead entries being appended or waiting for their outcome ([`InFlight::clear_below`]
/// tells a checkpoint whether it may pass a position).
#[derive(Debug, Default)]
pub struct InFlight(std::sync::Mutex<(u64, std::collections::BTreeSet<u64>)>);

impl InFlight {
    fn state(&self) -> std::sync::MutexGuard<'_, (u64, std::collections::BTreeSet<u64>)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether no write-ahead entry below `seq` still waits for its outcome (and none is being
    /// appended, whose `seq` is not known yet).
    pub fn clear_below(&self, seq: u64) -> bool {
        let st = self.state();
        st.0 == 0 && st.1.range(..seq).next().is_none()
    }

    /// Runs `append` (of a write-ahead entry) counted as in flight, and keeps the entry in
    /// flight once it has its `seq`, until its [`Landed`] guard drops.
    fn track(
        &self,
        append: impl FnOnce() -> Result<AuditEntryRef, AuditError>,
    ) -> Result<AuditEntryRef, AuditError> {
        self.state().0 += 1;
        let entry = append();
        let mut st = self.state();
        st.0 -= 1;
        if let Ok(e) = &entry {
            st.1.insert(e.seq);
        }
        entry
    }
}

/// Takes a write-ahead entry out of [`InFlight`] when its request's outcome is handled (or the
/// request unwinds).
struct Landed<'a>(&'a InFlight, u64);

impl Drop for Landed<'_> {
    fn drop(&mut self) {
        self.0.state().1.remove(&self.1);
    }
}

/// A request once its digest is known: what every path shares from here to the answer.
struct Prepared<'a> {
    principal: &'a str,
    kind: RequestKind,
    /// What the policy sees (absent for requests refused before decoding).
    body: Option<Body>,
    /// A transaction's context-free data (for a pending approval request).
    cfd: Vec<Bytes>,
    chain_id: Checksum256,
    key: PublicKey,
    digest: Checksum256,
    watermark: Option<Request>,
    /// A released approval request: the keys that approved it. The policy's answer of "needs
    /// approvals" means go only when enough of them are in the approver set in force now.
    approved: Option<Vec<PublicKey>>,
    started: Instant,
    /// Write-ahead mode: the `seq` of the request's write-ahead entry once it is durable; its
    /// outcome entry names it.
    intent: std::cell::Cell<Option<u64>>,
    /// `key` as text, made once for the request's audit entries (base58 is not free).
    key_text: std::cell::OnceCell<String>,
}

impl<'a> Prepared<'a> {
    /// A request with nothing decoded yet: no digest, body or position.
    fn new(
        principal: &'a str,
        kind: RequestKind,
        chain_id: Checksum256,
        key: PublicKey,
        started: Instant,
    ) -> Self {
        Prepared {
            principal,
            kind,
            body: None,
            cfd: Vec::new(),
            chain_id,
            key,
            digest: Checksum256::default(),
            watermark: None,
            approved: None,
            started,
            intent: Default::default(),
            key_text: Default::default(),
        }
    }

    /// `key` as text.
    fn key_text(&self) -> String {
        self.key_text.get_or_init(|| self.key.to_string()).clone()
    }

    /// A transaction over `cfd`, its digest computed; the policy body is set once its msig
    /// proposals are pinned ([`transaction_body`]).
    fn transaction(
        principal: &'a str,
        chain_id: Checksum256,
        key: PublicKey,
        trx: &Transaction,
        cfd: &[Bytes],
        started: Instant,
    ) -> Self {
        Prepared {
            cfd: cfd.to_vec(),
            digest: trx.signing_digest(&chain_id, cfd),
            ..Prepared::new(principal, RequestKind::Transaction, chain_id, key, started)
        }
    }
}

/// What the policy sees of a transaction: the `eosio.msig::approve`s' proposals, each pinned by
/// its `proposal_hash` (an approve is never signed blind); `Err` says what does not match.
fn transaction_body(trx: &Transaction, cfd: &[Bytes], proposals: &[Bytes]) -> Result<Body, String> {
    let msig_proposals = pinned_proposals(trx, proposals).map_err(|e| e.to_string())?;
    Ok(Body::Transaction {
        trx: trx.clone(),
        has_context_free_data: !cfd.is_empty(),
        msig_proposals,
    })
}

fn audit_kind(kind: RequestKind) -> AuditKind {
    match kind {
        RequestKind::Block => AuditKind::SignBlock,
        RequestKind::Transaction => AuditKind::SignTransaction,
        RequestKind::Digest => AuditKind::SignDigest,
    }
}

// ---- Entry points ------------------------------------------------------------------------------

impl Pipeline {
    /// SignBlock: the digest recomputed from the header (Savanna: the block id; legacy: over the
    /// blockroot merkle root and pending schedule hash sent with it).
    pub fn sign_block(&self, principal: &str, req: &BlockRequest) -> Result<Outcome, Refused> {
        let mut p = Prepared::new(
            principal,
            RequestKind::Block,
            req.chain_id,
            req.key,
            Instant::now(),
        );
        let decoded = BlockHeader::decode(&req.header)
            .and_then(|h| Ok((h.block_num()?, h)))
            .map_err(|e| format!("block header: {e}"))
            .and_then(|(block_num, header)| {
                let legacy = req.legacy.as_ref().map(|(bm, sh)| (bm, sh));
                let digest = header.signing_digest(legacy).map_err(|e| e.to_string())?;
                Ok((block_num, header, digest))
            });
        let (block_num, header, digest) = match decoded {
            Ok(x) => x,
            Err(m) => return Err(self.refuse_prepared(&p, refused(Reason::Malformed, m))),
        };
        let slot = header.timestamp.slot();
        p.body = Some(Body::Block {
            block_num,
            producer: header.producer,
        });
        p.digest = digest;
        p.watermark = Some(Request::Block { block_num, slot });
        self.run(p)
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
        let mut p = Prepared::transaction(principal, chain_id, key, trx, cfd, Instant::now());
        match transaction_body(trx, cfd, msig_proposals) {
            Ok(body) => p.body = Some(body),
            Err(m) => return Err(self.refuse_prepared(&p, refused(Reason::Malformed, m))),
        }
        let outcome = self.run(p)?;
        Ok((outcome, trx.id()))
    }

    /// CheckTransaction: whether `key` would sign `trx` for `principal` now — the same decode,
    /// policy (under the key's policy identity) and key checks as SignTransaction — without
    /// signing, storing a request or reserving a charge (budgets and rates are read only,
    /// [`Authorizer::check`]). Admins only: a ceremony asks it before it generates a key, naming the keys it
    /// will generate in `to_be_generated` (counted as held). Not audited: it signs and changes
    /// nothing; a refusal is the one SignTransaction would give.
    #[allow(clippy::too_many_arguments)]
    pub fn check_transaction(
        &self,
        principal: &str,
        chain_id: Checksum256,
        key: PublicKey,
        trx: &Transaction,
        cfd: &[Bytes],
        msig_proposals: &[Bytes],
        to_be_generated: &[PublicKey],
    ) -> Result<Verdict, Refused> {
        self.admins.require(principal, "CheckTransaction")?;
        let mut p = Prepared::transaction(principal, chain_id, key, trx, cfd, Instant::now());
        p.body = Some(
            transaction_body(trx, cfd, msig_proposals)
                .map_err(|m| refused(Reason::Malformed, m))?,
        );
        let entry = self.keys.get(&key);
        let now = crate::clock::now_secs();
        let request = policy_request(&p, entry.as_deref(), now)?;
        let authorization = self.authz.check(&request, to_be_generated);
        if !matches!(authorization, Authorization::Deny(_)) {
            self.no_retired_producer_key(&request.body)?;
        }
        let verdict = match authorization {
            Authorization::Allow { .. } => Verdict::Sign,
            Authorization::NeedsApprovals {
                threshold,
                approvers,
                set,
                ..
            } => Verdict::Approvals {
                threshold,
                approvers: approvers.len(),
                set,
            },
            Authorization::Deny(reason) => return Err(refused(Reason::PolicyDenied, reason)),
        };
        self.key_on_chain(entry.as_deref(), &key, &chain_id)?;
        Ok(verdict)
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
        self.run(Prepared {
            body: Some(Body::Digest),
            digest,
            watermark: Some(if savanna {
                Request::BlindSavanna
            } else {
                Request::BlindLegacy
            }),
            ..Prepared::new(
                principal,
                RequestKind::Digest,
                chain_id,
                key,
                Instant::now(),
            )
        })
    }

    /// Records a request whose chain id and key decoded but whose content did not.
    pub fn refuse_malformed(
        &self,
        principal: &str,
        kind: RequestKind,
        chain_id: Checksum256,
        key: PublicKey,
        message: String,
    ) -> Refused {
        let p = Prepared::new(principal, kind, chain_id, key, Instant::now());
        self.refuse_prepared(&p, refused(Reason::Malformed, message))
    }

    /// Audits a request whose chain id or key field does not even decode (so there is no
    /// chain or key to name): the principal passed mTLS, so the attempt is on record.
    pub fn audit_undecodable(&self, principal: &str, kind: RequestKind, message: &str) {
        self.metrics
            .observe(kind, AuditDecision::Refused.as_str(), 0);
        self.audit_malformed(principal, audit_kind(kind), message);
    }

    /// Audits a call of `kind` refused as MALFORMED with `message`, including calls the gRPC
    /// layer refused before any handler saw them (undecodable or oversized protobuf, an unknown
    /// method): the principal passed mTLS, so the attempt is on record (metered like every
    /// refusal, see `audit::coalesce`).
    pub fn audit_malformed(&self, principal: &str, kind: AuditKind, message: &str) {
        let record = AuditRecord {
            reason: Some(format!("{}: {message}", Reason::Malformed.as_str())),
            policy_version: Some(self.authz.version()),
            ..AuditRecord::new(sanitize_principal(principal), kind, AuditDecision::Refused)
        };
        match self.audit.append_decision(record) {
            Err(e) => {
                tracing::error!(error = %e, "audit log write failed for a malformed request");
            }
            Ok(None) => {}
            Ok(Some(_)) => tracing::warn!(
                principal,
                kind = kind.as_str(),
                reason = "MALFORMED",
                "refused: {message}"
            ),
        }
    }
}

/// What CheckTransaction found: the signer would sign the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// At once.
    Sign,
    /// Once `threshold` of the `approvers` in `set` approved.
    Approvals {
        /// Approvals needed.
        threshold: u32,
        /// How many may approve.
        approvers: usize,
        /// The approver set's name.
        set: String,
    },
}

/// What the policy decides on: a successor key signs under its predecessor's rules (its
/// policy identity).
fn policy_request(
    p: &Prepared<'_>,
    entry: Option<&KeyEntry>,
    now: oryx_proto::antelope::TimePointSec,
) -> Result<oryx_policy::Request, Refused> {
    let body = p
        .body
        .clone()
        .ok_or_else(|| refused(Reason::Malformed, "request did not decode"))?;
    Ok(oryx_policy::Request {
        principal: p.principal.to_string(),
        key: entry.map_or(p.key, KeyEntry::identity),
        chain_id: p.chain_id,
        now,
        body,
    })
}

// ---- The spine ---------------------------------------------------------------------------------

impl Pipeline {
    /// The one path from a prepared request to its answer: the retire gate, then
    /// [`Pipeline::decide_and_sign`], the watermark commit, and [`Pipeline::finish`].
    fn run(&self, p: Prepared<'_>) -> Result<Outcome, Refused> {
        // Held from the retired check to the watermark commit, so a retirement waits for this
        // request and the hand-over reads a watermark no request of the old key moves again.
        // The request's only key set lookup: the gate, the policy identity and the key checks
        // all use this entry.
        let entry = self.keys.get(&p.key);
        if let Some(e) = entry.as_deref() {
            // The same key, so the same text: the entry's, made once.
            let _ = p.key_text.set(e.text().to_owned());
        }
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
        let answer = match result {
            Err(r) => Err(r),
            Ok((outcome, None)) => Ok(outcome),
            // A new signature under a reservation: remember it (an identical retry gets it
            // back; the commit is not synced, the reservation is), then the audit entry, durable
            // before the answer.
            Ok((outcome, Some(reservation))) => {
                match self.watermarks.commit(reservation, &outcome.signature) {
                    Ok(stored) if stored == outcome.signature => Ok(outcome),
                    // An identical request committed first: everyone gets that one signature.
                    Ok(stored) => self.stored_signature(&p, stored).map(|signature| Outcome {
                        signature,
                        replayed: true,
                        ..outcome
                    }),
                    Err(e) => Err(refused(
                        Reason::Unavailable,
                        format!("watermark commit: {e}"),
                    )),
                }
            }
        };
        self.finish(&p, answer, position)
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
        let request = policy_request(p, entry, now)?;
        let mut authorization = self.authz.authorize(&request);
        // What it reserved is taken back unless this request ends with a signature.
        let hold = ChargeHold::new(self.authz.as_ref(), authorization.take_charges(), now);
        if !matches!(authorization, Authorization::Deny(_)) {
            self.no_retired_producer_key(&request.body)?;
        }
        match authorization {
            Authorization::Allow { .. } => {}
            // Approved: the approvals are the go-ahead if they meet the rule in force now (an
            // approver removed since counts no more, a raised threshold holds); budgets and
            // rates still hold now.
            Authorization::NeedsApprovals {
                threshold,
                approvers,
                set,
                ..
            } if p.approved.is_some() => {
                let by = p.approved.as_deref().unwrap_or_default();
                let mut counted: Vec<&PublicKey> =
                    by.iter().filter(|k| approvers.contains(k)).collect();
                counted.sort();
                counted.dedup();
                if counted.len() < threshold as usize {
                    return Err(refused(
                        Reason::ApprovalRejected,
                        format!(
                            "the policy changed since this request was approved: it now needs {threshold} of {} approvals from set {set:?}, and {} of the {} approvals come from that set; submit the transaction again for a new request",
                            approvers.len(),
                            counted.len(),
                            by.len()
                        ),
                    ));
                }
            }
            Authorization::NeedsApprovals {
                threshold,
                approvers,
                set,
                ..
            } => {
                return self
                    .store_for_approvals(p, entry, now, threshold, approvers, set)
                    .map(|o| (o, None));
            }
            Authorization::Deny(reason) if p.approved.is_some() => {
                return Err(refused(
                    Reason::PolicyDenied,
                    format!("approved, but the policy now refuses it: {reason}"),
                ));
            }
            Authorization::Deny(reason) => return Err(refused(Reason::PolicyDenied, reason)),
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
        let (reservation, block_num, slot, opts) = match p.watermark {
            None => (None, 0, 0, opts),
            Some(request) => {
                let (block_num, slot) = match request {
                    Request::Block { block_num, slot } => (block_num, slot),
                    Request::BlindSavanna => (num_from_id(&p.digest), 0),
                    Request::BlindLegacy => (0, 0),
                };
                let outcome = |signature, replayed| Outcome {
                    digest: p.digest,
                    signature,
                    replayed,
                    block_num,
                    slot,
                    audit: None,
                    text: None,
                };
                match self.reserve(p, entry, &request)? {
                    Reserved::Replay(signature) => {
                        let signature = self.stored_signature(p, signature)?;
                        return Ok((outcome(signature, true), None));
                    }
                    Reserved::Proceed(r) => (Some(r), block_num, slot, opts.for_block()),
                }
            }
        };
        let t = Instant::now();
        let digest = reservation.as_ref().map_or(&p.digest, Reservation::digest);
        let signed = entry.sign(digest, opts).map_err(sign_failure)?;
        self.metrics.stage(Stage::Sign, t.elapsed());
        // Counted as soon as a signature exists, even if it is then withheld: budgets err on the
        // strict side. A spend that cannot be recorded withholds the signature.
        hold.keep().map_err(|e| refused(Reason::Unavailable, e))?;
        let outcome = Outcome {
            digest: p.digest,
            signature: signed.signature,
            replayed: false,
            block_num,
            slot,
            audit: None,
            text: None,
        };
        Ok((outcome, reservation))
    }

    /// The durable reservation of the request's position (or the stored signature of an
    /// identical one).
    fn reserve(
        &self,
        p: &Prepared<'_>,
        entry: &KeyEntry,
        request: &Request,
    ) -> Result<Reserved, Refused> {
        // From the request's own key set entry (no second lookup on the signing path).
        let key = self.scopes.of(p.chain_id, entry.identity());
        let t = Instant::now();
        let successors = || {
            let keys = self.keys.all().into_iter();
            keys.filter(|e| e.identity() != *e.public_key())
                .filter(|e| self.scopes.of(p.chain_id, e.identity()) == key)
                .map(|e| *e.public_key())
                .collect()
        };
        self.scopes
            .settle(&key, successors, self.watermarks.as_ref())
            .map_err(|e| refused(Reason::Unavailable, e.to_string()))?;
        if matches!(request, Request::BlindSavanna)
            && !self
                .scopes
                .blind_may_start(&key, self.watermarks.as_ref())
                .map_err(|e| refused(Reason::Unavailable, e.to_string()))?
        {
            return Err(refused(
                Reason::DoubleSign,
                format!(
                    "no watermark yet for {} on chain {}: a first blind block id cannot be bounded (its height is four bytes anyone can choose). Sign a full block first (SignBlock, `oryx-node produce`), or import the chain's head height (`oryx-signer watermark import`); only a private chain may set unbounded_first_blind_digest",
                    p.key, p.chain_id
                ),
            ));
        }
        let reserved = self
            .watermarks
            .reserve(
                &key,
                request,
                &p.digest,
                crate::clock::now_slot(),
                entry.retry,
            )
            .map_err(|e| match e {
                ReserveError::Refused(r) => refused(Reason::DoubleSign, r.to_string()),
                ReserveError::Store(e) => refused(Reason::Unavailable, e.to_string()),
            });
        let reserved = match reserved {
            Ok(Reserved::Proceed(r)) if self.write_ahead => {
                crate::wal::pause_point("store-reserved");
                self.write_ahead_entry(p, &r).map(|()| Reserved::Proceed(r))
            }
            other => other,
        };
        crate::wal::pause_point("reserved");
        self.metrics.stage(Stage::Reserve, t.elapsed());
        reserved
    }

    /// Write-ahead mode ([`crate::wal`]): the reservation's durable record, a `reserved` entry
    /// synced before the backend is asked; the request's outcome entry will name it.
    fn write_ahead_entry(&self, p: &Prepared<'_>, r: &Reservation) -> Result<(), Refused> {
        let (w, version) = r.version().ok_or_else(|| {
            refused(
                Reason::Internal,
                "the watermark store did not say what it reserved",
            )
        })?;
        let seq = u64::try_from(version)
            .map_err(|_| refused(Reason::Internal, "a reservation with a negative version"))?;
        let record = AuditRecord {
            digest: Some(w.digest.to_string()),
            position: Some(Position {
                block_num: w.block_num,
                slot: w.slot,
            }),
            reserved: Some(crate::audit::Reserved {
                scope: r.key().scope,
                seq,
                wall_slot: w.wall_slot,
            }),
            ..self.request_record(p, AuditDecision::Reserved)
        };
        let entry = self
            .in_flight
            .track(|| self.audit.append(record))
            .map_err(|e| {
                tracing::error!(key = %p.key, error = %e, "audit log write failed: nothing signed");
                refused(Reason::Unavailable, format!("audit log: {e}"))
            })?;
        p.intent.set(Some(entry.seq));
        Ok(())
    }

    /// A write-ahead checkpoint ([`crate::wal::checkpoint`], in `dir`) that passes no
    /// write-ahead entry still open: the outcomes the log refused are written first, and one
    /// still in flight makes it wait (`None`) for the next call.
    pub fn checkpoint(
        &self,
        dir: &std::path::Path,
    ) -> Result<Option<crate::wal::Checkpoint>, String> {
        self.record_withheld().map_err(|e| e.to_string())?;
        let clear = |seq| self.in_flight.clear_below(seq);
        crate::wal::checkpoint(dir, &self.audit, self.watermarks.as_ref(), &clear)
    }

    /// Writes the outcomes of write-ahead entries whose own outcome the log refused; those it
    /// still cannot write stay for the next call.
    fn record_withheld(&self) -> Result<(), AuditError> {
        let pending = std::mem::take(
            &mut *self
                .withheld
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut left = pending.into_iter();
        while let Some(record) = left.next() {
            if let Err(e) = self.audit.append(record.clone()) {
                let mut w = self
                    .withheld
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                w.push(record);
                w.extend(left);
                return Err(e);
            }
        }
        Ok(())
    }

    /// ListKeys and Status answer admins and principals some rule names: a certificate with no
    /// rights learns nothing about the keys, chains or state of this signer.
    pub fn may_list(&self, principal: &str, call: &str) -> Result<(), Refused> {
        if self.admins.may_review(principal) || self.authz.names_principal(principal) {
            Ok(())
        } else {
            Err(refused(
                Reason::PolicyDenied,
                format!("{call}: no rule names {principal:?}"),
            ))
        }
    }

    /// The watermark `key` reserves under on `chain_id`: its policy identity's (a successor
    /// shares its predecessor's from the moment it exists), or that identity's producer's.
    pub fn watermark_key(&self, chain_id: Checksum256, key: &PublicKey) -> WatermarkKey {
        let identity = self.keys.get(key).map_or(*key, |e| e.identity());
        self.scopes.of(chain_id, identity)
    }

    /// A signature the watermark store holds for this request's digest. It leaves only if it is
    /// this key's over this digest: a shared store is outside this process's trust, and a
    /// producer's watermark may hold another of its keys' signature of the same block.
    fn stored_signature(
        &self,
        p: &Prepared<'_>,
        signature: Signature,
    ) -> Result<Signature, Refused> {
        if signature.recovers_to(&p.digest, &p.key) {
            return Ok(signature);
        }
        match signature.recover_lenient(&p.digest) {
            Ok(other)
                if self.watermark_key(p.chain_id, &other)
                    == self.watermark_key(p.chain_id, &p.key) =>
            {
                Err(refused(
                    Reason::DoubleSign,
                    format!(
                        "{other}, another key of this producer, already signed this block; {} does not sign it again",
                        p.key
                    ),
                ))
            }
            _ => Err(refused(
                Reason::Internal,
                "the watermark store holds a signature for this request that does not recover to the key: not returned",
            )),
        }
    }

    /// `entry` (the request's lookup of `key`), checked to be an active key configured for
    /// `chain_id`, with that chain's signing options.
    /// Whatever the policy says: no transaction that registers, as a producer's block-signing
    /// key, a key this signer retired (a rotation or an aborted ceremony ended it). Pushed, it
    /// would point the chain at a key that signs nothing and stop the producer. Checked when a
    /// request is made and again when approvals release it.
    fn no_retired_producer_key(&self, body: &Body) -> Result<(), Refused> {
        match body
            .producer_keys()
            .into_iter()
            .find(|k| self.keys.get(k).is_some_and(|e| e.is_retired()))
        {
            Some(k) => Err(refused(
                Reason::PolicyDenied,
                format!(
                    "the transaction registers {k} as a producer key, and this signer retired that key (a key rotation ended it): it would point the chain at a key that signs nothing"
                ),
            )),
            None => Ok(()),
        }
    }

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

    /// The audit record of request `p` with `decision`: who, what kind, which key on which
    /// chain, the digest (once known), the policy version and the time so far. Each entry a
    /// request writes (write-ahead, outcome, withheld outcome) adds its own fields to it.
    fn request_record(&self, p: &Prepared<'_>, decision: AuditDecision) -> AuditRecord {
        AuditRecord {
            key: Some(p.key_text()),
            chain_id: Some(p.chain_id.to_string()),
            digest: (p.digest != Checksum256::default()).then(|| p.digest.to_string()),
            policy_version: Some(self.authz.version()),
            latency_us: p.started.elapsed().as_micros() as u64,
            ..AuditRecord::new(
                sanitize_principal(p.principal),
                audit_kind(p.kind),
                decision,
            )
        }
    }

    /// Audits and returns a refusal decided before the spine ran.
    fn refuse_prepared(&self, p: &Prepared<'_>, r: Refused) -> Refused {
        self.finish(p, Err(r), None)
            .err()
            .unwrap_or_else(|| refused(Reason::Internal, "refusal lost"))
    }

    /// Audits the decision and logs it; withholds a signature the audit log could not record.
    fn finish(
        &self,
        p: &Prepared<'_>,
        result: Result<Outcome, Refused>,
        position: Option<Position>,
    ) -> Result<Outcome, Refused> {
        // Out of flight once the outcome is written or kept for `record_withheld` (below).
        let _landed = p.intent.get().map(|i| Landed(&self.in_flight, i));
        let latency_us = p.started.elapsed().as_micros() as u64;
        let (decision, reason, signature) = match &result {
            Ok(o) if o.replayed => (AuditDecision::Replayed, None, Some(o.signature.to_string())),
            Ok(o) => (AuditDecision::Signed, None, Some(o.signature.to_string())),
            Err(r) => (r.reason.audit_decision(), Some(r.to_string()), None),
        };
        let text = signature.clone();
        let record = AuditRecord {
            position,
            reason,
            latency_us,
            signature,
            intent: p.intent.get(),
            ..self.request_record(p, decision)
        };
        let t = Instant::now();
        let audited = match (&result, record.intent) {
            // The outcome of a write-ahead entry, which is durable already: written before the
            // answer, synced by the next append or checkpoint (`crate::wal`).
            (Ok(_), Some(_)) => self.audit.append_written(record).map(Some),
            _ => self.audit.append_decision(record),
        };
        if result.is_ok() {
            crate::wal::pause_point("answered");
        }
        self.metrics.stage(Stage::Audit, t.elapsed());
        self.metrics.observe(
            p.kind,
            if audited.is_ok() {
                decision.as_str()
            } else {
                AuditDecision::Failed.as_str()
            },
            latency_us,
        );
        match (result, audited) {
            (_, Err(e)) => {
                tracing::error!(key = %p.key, error = %e, "audit log write failed: withholding the answer");
                if let Some(intent) = p.intent.get() {
                    self.withheld
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(AuditRecord {
                            position,
                            intent: Some(intent),
                            reason: Some(format!(
                                "the outcome could not be recorded ({e}); the answer was withheld, so no signature was released"
                            )),
                            ..self.request_record(p, AuditDecision::Failed)
                        });
                }
                // A record the log refuses is the signer's bug; a write failure is an outage.
                let reason = match e {
                    crate::audit::AuditError::InvalidRecord(_) => Reason::Internal,
                    _ => Reason::Unavailable,
                };
                Err(refused(reason, format!("audit log: {e}")))
            }
            (Ok(o), Ok(entry)) => {
                tracing::info!(principal = p.principal, key = %p.key, kind = p.kind.as_str(), block_num = o.block_num, slot = o.slot, digest = %o.digest, replayed = o.replayed, elapsed_us = latency_us, audit = ?entry, "signed");
                Ok(Outcome {
                    audit: entry,
                    text,
                    ..o
                })
            }
            // A refusal over its principal's rate is counted for a summary entry, not logged
            // one by one (neither in the audit log nor here).
            (Err(r), Ok(None)) => Err(r),
            (Err(r), Ok(Some(entry))) => {
                tracing::warn!(principal = p.principal, key = %p.key, kind = p.kind.as_str(), reason = r.reason.as_str(), detail = %r.message, elapsed_us = latency_us, audit = %entry, "refused");
                Err(Refused {
                    audit: Some(entry),
                    ..r
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    use oryx_proto::antelope::KeyType;

    use super::*;
    use crate::authz::AllowList;
    use crate::backend::KeyBackend as _;
    use crate::backend::soft::SoftKey;
    use crate::config::AllowRule;
    use crate::watermark::file::FileStore;
    use crate::watermark::{RetryPolicy, StoreError, Watermark, WatermarkRecord};

    /// What a [`Hooked`] store runs before each reservation: `Some` answers instead of the store.
    type ReserveHook = Box<dyn Fn() -> Option<Reserved> + Send + Sync>;

    /// The real file store with a hook in front of `reserve`.
    struct Hooked {
        store: FileStore,
        hook: ReserveHook,
    }

    impl std::fmt::Debug for Hooked {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Hooked")
                .field("store", &self.store)
                .finish()
        }
    }

    impl WatermarkStore for Hooked {
        fn reserve(
            &self,
            key: &WatermarkKey,
            request: &Request,
            digest: &Checksum256,
            wall_slot: u32,
            retry: RetryPolicy,
        ) -> Result<Reserved, ReserveError> {
            match (self.hook)() {
                Some(answer) => Ok(answer),
                None => self.store.reserve(key, request, digest, wall_slot, retry),
            }
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
        fn seal(&self, member: &WatermarkKey, scope: &WatermarkKey) -> Result<(), StoreError> {
            self.store.seal(member, scope)
        }
        fn health(&self) -> Result<(), StoreError> {
            self.store.health()
        }
    }

    /// A Savanna block id: its number in the first four bytes, `fill` for the rest.
    fn block_id(n: u32, fill: u8) -> Checksum256 {
        let mut id = [fill; 32];
        id[..4].copy_from_slice(&n.to_be_bytes());
        Checksum256(id)
    }

    /// A pipeline where `node1` may have `a` and `b` (the successor of `b_of`, if any) sign
    /// blind digests on `chain`, over `store`, with watermark `scopes`.
    fn two_key_pipeline(
        dir: &std::path::Path,
        chain: Checksum256,
        (a, b, b_of): (&Arc<SoftKey>, &Arc<SoftKey>, Option<PublicKey>),
        store: &Arc<dyn WatermarkStore>,
        scopes: Scopes,
    ) -> Pipeline {
        Pipeline {
            keys: KeySet::new([
                KeyEntry::new(a.clone(), vec![chain], true, RetryPolicy::Refuse),
                KeyEntry::new(b.clone(), vec![chain], true, RetryPolicy::Refuse)
                    .with_lineage(b_of.into_iter().collect()),
            ]),
            authz: Arc::new(AllowList::new(
                vec![AllowRule {
                    principal: "node1".into(),
                    keys: vec![*a.public_key(), *b.public_key()],
                    kinds: vec![RequestKind::Digest],
                }],
                "test".into(),
            )),
            // A test chain: blind ids may start a watermark (the refusal has its own test).
            scopes: Arc::new(scopes.with_unbounded_blind_start(&[chain])),
            ..digest_pipeline(dir, a.clone(), chain, store.clone())
        }
    }

    /// A pipeline where principal `node1` may have `soft` sign blind digests on `chain`, over
    /// `watermarks`.
    fn digest_pipeline(
        dir: &std::path::Path,
        soft: Arc<SoftKey>,
        chain: Checksum256,
        watermarks: Arc<dyn WatermarkStore>,
    ) -> Pipeline {
        let key = *soft.public_key();
        Pipeline {
            keys: KeySet::new([KeyEntry::new(soft, vec![chain], true, RetryPolicy::Refuse)]),
            chains: HashMap::from([(chain, SignOptions::default())]),
            watermarks,
            // A test chain: blind ids may start a watermark (the refusal has its own test).
            scopes: Arc::new(Scopes::default().with_unbounded_blind_start(&[chain])),
            audit: Arc::new(AuditLog::open(dir.join("audit.jsonl")).unwrap()),
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
            admins: Default::default(),
            write_ahead: true,
            withheld: Default::default(),
            in_flight: Default::default(),
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
        let pipeline = Arc::new(digest_pipeline(
            dir.path(),
            soft,
            chain,
            // The first reservation is paused until the test releases it: a request held
            // between its retired check and its watermark commit.
            Arc::new(Hooked {
                store: FileStore::open(dir.path().join("watermarks")).unwrap(),
                hook: {
                    let (inside, release) = (Mutex::new(Some(inside_tx)), Mutex::new(release_rx));
                    Box::new(move || {
                        if let Some(inside) = inside.lock().unwrap().take() {
                            inside.send(()).unwrap();
                            let _ = release.lock().unwrap().recv();
                        }
                        None
                    })
                },
            }),
        ));

        let p = pipeline.clone();
        let request =
            std::thread::spawn(move || p.sign_digest("node1", chain, key, block_id(10, 9), true));
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
        let after = pipeline.sign_digest("node1", chain, key, block_id(11, 9), true);
        assert_eq!(after.unwrap_err().reason, Reason::KeyRetired);
    }

    /// A stored signature that does not recover to the key over the digest never leaves.
    #[test]
    fn a_replay_that_is_not_this_keys_signature_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let soft = Arc::new(SoftKey::generate(KeyType::K1).unwrap());
        let other = SoftKey::generate(KeyType::K1).unwrap();
        let key = *soft.public_key();
        let chain = Checksum256([7; 32]);
        let digest = block_id(10, 9);
        let foreign = crate::signing::sign(&other, &digest, SignOptions::default())
            .unwrap()
            .signature;
        let pipeline = digest_pipeline(
            dir.path(),
            soft,
            chain,
            // A store whose replay is someone else's signature.
            Arc::new(Hooked {
                store: FileStore::open(dir.path().join("watermarks")).unwrap(),
                hook: Box::new(move || Some(Reserved::Replay(foreign))),
            }),
        );
        let r = pipeline
            .sign_digest("node1", chain, key, digest, true)
            .unwrap_err();
        assert_eq!(r.reason, Reason::Internal, "{r}");
    }

    /// Two keys of one producer (`[[watermarks.producers]]`) share one watermark: neither signs
    /// a height the other signed, the group starts above what each key signed alone, and a key
    /// taken out of the group again signs nothing under its own (sealed) watermark.
    #[test]
    fn grouped_keys_never_sign_one_height_twice_between_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(SoftKey::generate(KeyType::K1).unwrap());
        let b = Arc::new(SoftKey::generate(KeyType::K1).unwrap());
        let (ka, kb) = (*a.public_key(), *b.public_key());
        let chain = Checksum256([7; 32]);
        let store: Arc<dyn WatermarkStore> =
            Arc::new(FileStore::open(dir.path().join("watermarks")).unwrap());
        let pipeline =
            |scopes: Scopes| two_key_pipeline(dir.path(), chain, (&a, &b, None), &store, scopes);
        let id = block_id;
        let producer: oryx_proto::antelope::Name = "oryxproducer".parse().unwrap();
        let reason = |p: &Pipeline, k: PublicKey, d: Checksum256| {
            p.sign_digest("node1", chain, k, d, true)
                .err()
                .map(|r| (r.reason, r.message))
        };

        // Alone, each key has its own watermark: b signs 20, a only 5.
        let alone = pipeline(Scopes::default());
        assert_eq!(reason(&alone, kb, id(20, 1)), None);
        assert_eq!(reason(&alone, ka, id(5, 1)), None);

        let grouped = pipeline(Scopes::new(&[crate::watermark::scope::Group {
            chain_id: chain,
            producer,
            keys: vec![ka, kb],
        }]));
        // The group starts above b's 20, so a cannot sign 20 (nor 19).
        for n in [19, 20] {
            let r = reason(&grouped, ka, id(n, 2)).unwrap();
            assert_eq!(r.0, Reason::DoubleSign, "{n}: {}", r.1);
        }
        assert_eq!(reason(&grouped, ka, id(21, 2)), None);
        // b can sign neither another block at 21 nor the very block a signed.
        for d in [id(21, 3), id(21, 2)] {
            let r = reason(&grouped, kb, d).unwrap();
            assert_eq!(r.0, Reason::DoubleSign, "{}", r.1);
        }
        // a's identical retry gets its own signature back.
        let again = grouped
            .sign_digest("node1", chain, ka, id(21, 2), true)
            .unwrap();
        assert!(again.replayed && again.signature.recovers_to(&id(21, 2), &ka));
        assert_eq!(reason(&grouped, kb, id(22, 3)), None);

        // One watermark, the producer's; the keys' own are sealed.
        let records = store.export().unwrap();
        let scope = WatermarkKey {
            chain_id: chain,
            scope: crate::watermark::Scope::Producer(producer),
        };
        let mine = records.iter().find(|r| r.watermark_key() == scope).unwrap();
        assert_eq!(mine.watermark.block_num, 22);
        for k in [ka, kb] {
            let own = store.get(&WatermarkKey::of_key(chain, k)).unwrap().unwrap();
            assert!(own.is_sealed(), "{k}: {own:?}");
        }
        // Taken out of the group, a key signs nothing under its sealed watermark.
        let r = reason(&alone, ka, id(30, 4)).unwrap();
        assert_eq!(r.0, Reason::DoubleSign);
        assert!(r.1.contains("sealed"), "{}", r.1);
    }

    /// A successor signs under its predecessor's watermark; a successor that signed under its
    /// own (before this rule) has that history carried over before either key signs again.
    #[test]
    fn a_successor_shares_its_predecessors_watermark_and_brings_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let root = Arc::new(SoftKey::generate(KeyType::K1).unwrap());
        let succ = Arc::new(SoftKey::generate(KeyType::K1).unwrap());
        let (kr, ks) = (*root.public_key(), *succ.public_key());
        let chain = Checksum256([7; 32]);
        let store: Arc<dyn WatermarkStore> =
            Arc::new(FileStore::open(dir.path().join("watermarks")).unwrap());
        let pipeline = |successor_of: Option<PublicKey>| {
            let keys = (&root, &succ, successor_of);
            two_key_pipeline(dir.path(), chain, keys, &store, Scopes::default())
        };
        let id = block_id;
        let refused = |p: &Pipeline, k: PublicKey, d: Checksum256| {
            p.sign_digest("node1", chain, k, d, true)
                .err()
                .map(|r| r.reason)
        };
        // The old behaviour, for the history: the successor on a watermark of its own.
        let before = pipeline(None);
        assert_eq!(refused(&before, kr, id(50, 1)), None);
        assert_eq!(refused(&before, ks, id(60, 2)), None);

        let now = pipeline(Some(kr));
        assert_eq!(
            now.watermark_key(chain, &ks),
            WatermarkKey::of_key(chain, kr)
        );
        // The successor's 60 was carried into the shared watermark: the root cannot sign 55.
        assert_eq!(refused(&now, kr, id(55, 3)), Some(Reason::DoubleSign));
        assert_eq!(refused(&now, kr, id(61, 3)), None);
        assert_eq!(refused(&now, ks, id(61, 4)), Some(Reason::DoubleSign));
        assert_eq!(refused(&now, ks, id(62, 4)), None);
        assert!(
            store
                .get(&WatermarkKey::of_key(chain, ks))
                .unwrap()
                .unwrap()
                .is_sealed()
        );
    }

    /// Whatever the rules allow, no regproducer naming a retired key is signed (it would point
    /// the chain at a key that signs nothing).
    #[test]
    fn a_regproducer_naming_a_retired_key_is_refused_under_any_rules() {
        let dir = tempfile::tempdir().unwrap();
        let chain = Checksum256([7; 32]);
        let account = Arc::new(SoftKey::generate(KeyType::K1).unwrap());
        let gone = Arc::new(SoftKey::generate(KeyType::K1).unwrap());
        let live = Arc::new(SoftKey::generate(KeyType::K1).unwrap());
        let store: Arc<dyn WatermarkStore> =
            Arc::new(FileStore::open(dir.path().join("watermarks")).unwrap());
        let p = Pipeline {
            keys: KeySet::new([
                KeyEntry::new(account.clone(), vec![chain], false, RetryPolicy::Refuse),
                KeyEntry::retired(*gone.public_key(), Vec::new()),
            ]),
            authz: Arc::new(AllowList::new(
                vec![AllowRule {
                    principal: "node1".into(),
                    keys: vec![*account.public_key()],
                    kinds: vec![RequestKind::Transaction],
                }],
                "test".into(),
            )),
            ..digest_pipeline(dir.path(), account.clone(), chain, store)
        };
        let regproducer = |key: &PublicKey| -> Transaction {
            serde_json::from_value(serde_json::json!({
                "expiration": "2030-01-01T00:00:00", "ref_block_num": 1, "ref_block_prefix": 2,
                "actions": [{"account": "eosio", "name": "regproducer",
                    "authorization": [{"actor": "oryxproducer", "permission": "active"}],
                    "data": {"producer": "oryxproducer", "producer_key": key.to_string(),
                             "url": "", "location": 0}}]}))
            .unwrap()
        };
        let sign = |k: &PublicKey| {
            p.sign_transaction(
                "node1",
                chain,
                *account.public_key(),
                &regproducer(k),
                &[],
                &[],
            )
        };
        let e = sign(gone.public_key()).unwrap_err();
        assert_eq!(e.reason, Reason::PolicyDenied);
        assert!(e.message.contains("retired"), "{e}");
        sign(live.public_key()).unwrap();
    }

    /// A key's first blind Savanna id is refused while it has no watermark (its height is four
    /// bytes anyone can choose); after one full block, blind ids are bounded and signed.
    #[test]
    fn a_first_blind_id_needs_a_watermark_to_bound_it() {
        let dir = tempfile::tempdir().unwrap();
        let chain = Checksum256([7; 32]);
        let soft = Arc::new(SoftKey::generate(KeyType::K1).unwrap());
        let key = *soft.public_key();
        let store: Arc<dyn WatermarkStore> =
            Arc::new(FileStore::open(dir.path().join("watermarks")).unwrap());
        let p = Pipeline {
            scopes: Arc::new(Scopes::default()),
            authz: Arc::new(AllowList::new(
                vec![AllowRule {
                    principal: "node1".into(),
                    keys: vec![key],
                    kinds: vec![RequestKind::Digest, RequestKind::Block],
                }],
                "test".into(),
            )),
            ..digest_pipeline(dir.path(), soft, chain, store)
        };
        let e = p
            .sign_digest("node1", chain, key, block_id(4_294_967_280, 1), true)
            .unwrap_err();
        assert_eq!(e.reason, Reason::DoubleSign);
        assert!(e.message.contains("no watermark yet"), "{e}");
        let slot = crate::clock::now_slot();
        let header = oryx_tests_header(slot);
        p.sign_block(
            "node1",
            &BlockRequest {
                chain_id: chain,
                key,
                header: oryx_proto::antelope::Pack::packed(&header),
                legacy: None,
            },
        )
        .unwrap();
        let next = header.block_num().unwrap() + 1;
        p.sign_digest("node1", chain, key, block_id(next, 1), true)
            .unwrap();
        // Still bounded: far ahead of the signed block is refused.
        let e = p
            .sign_digest("node1", chain, key, block_id(next + 10_000, 1), true)
            .unwrap_err();
        assert_eq!(e.reason, Reason::DoubleSign);
    }

    /// A Savanna header at `slot` (block number = slot).
    fn oryx_tests_header(slot: u32) -> BlockHeader {
        let mut previous = [0u8; 32];
        previous[..4].copy_from_slice(&(slot - 1).to_be_bytes());
        BlockHeader {
            timestamp: oryx_proto::antelope::BlockTimestamp(slot),
            producer: "oryxproducer".parse().unwrap(),
            confirmed: 0,
            previous: Checksum256(previous),
            transaction_mroot: Checksum256([0; 32]),
            action_mroot: Checksum256([0; 32]),
            schedule_version: oryx_proto::antelope::block::SAVANNA_SCHEDULE_VERSION,
            new_producers: None,
            header_extensions: Vec::new(),
        }
    }
}
