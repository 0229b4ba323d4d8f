//! The approval workflow on top of the pipeline: a transaction whose rule needs approvals is
//! stored as a pending request; approvers list, read and approve it; its requester or an admin
//! may cancel it; and once enough approvers approved, it is signed through the pipeline's spine,
//! marked approved.
//!
//! Guards: a request is signed at most once — its release (re-read, sign, mark signed) is
//! serialised by the store, so two final approvals arriving together produce one signature,
//! one `signed` audit entry and one budget charge; the approved request takes the same checks
//! as any other (retire gate, policy at signing time, key and chain, audit before the answer);
//! every approval, rejection and cancellation is audited.

use std::time::Instant;

use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Bytes, Pack, PublicKey, Signature, TimePointSec};

use super::{Outcome, Pipeline, Prepared, transaction_body};
use crate::approvals::{Added, ApprovalError, ApprovalStore, Created, PendingRequest, State};
use crate::audit::{AuditDecision, AuditKind, AuditRecord};
use crate::keyset::KeyEntry;
use crate::refusal::{Reason, Refused, refused, sanitize_principal};

/// A store failure is an outage; anything else rejects the approval or the call.
fn approval_refusal(e: ApprovalError) -> Refused {
    match e {
        ApprovalError::Store(m) => refused(Reason::Unavailable, m),
        e @ ApprovalError::TooMany { .. } => refused(Reason::PolicyDenied, e.to_string()),
        other => refused(Reason::ApprovalRejected, other.to_string()),
    }
}

/// A request the principal may not read: refused without saying what it holds.
fn not_readable(principal: &str, id: &str) -> Refused {
    refused(
        Reason::PolicyDenied,
        format!(
            "approval request {id} is not {principal:?}'s: only its requester, admins and reviewers (config `reviewers`) read it"
        ),
    )
}

impl Pipeline {
    fn approval_store(&self) -> Result<&ApprovalStore, Refused> {
        self.approvals.as_deref().ok_or_else(|| {
            refused(
                Reason::PolicyDenied,
                "approvals need a policy file (policy = ...) in the signer's config",
            )
        })
    }

    /// Every approval request.
    pub fn list_approvals(&self, principal: &str) -> Result<Vec<PendingRequest>, Refused> {
        let all = self
            .approval_store()?
            .list()
            .map_err(|e| refused(Reason::Unavailable, e.to_string()))?;
        Ok(all
            .into_iter()
            .filter(|r| self.may_read(principal, r))
            .collect())
    }

    /// One approval request, for a principal that may read it.
    pub fn get_approval(&self, principal: &str, id: &str) -> Result<PendingRequest, Refused> {
        let r = self.approval(id)?;
        if !self.may_read(principal, &r) {
            return Err(not_readable(principal, id));
        }
        Ok(r)
    }

    /// One approval request (no permission check: the signer's own use).
    pub fn approval(&self, id: &str) -> Result<PendingRequest, Refused> {
        self.approval_store()?.get(id).map_err(approval_refusal)
    }

    /// Who may read (and approve online) a request: admins and reviewers every one, anyone
    /// else only the requests it made — a request holds the transaction and, once signed, the
    /// signed transaction.
    fn may_read(&self, principal: &str, r: &PendingRequest) -> bool {
        r.requester == principal || self.admins.may_review(principal)
    }

    /// Cancels a pending request: its requester or an admin may.
    pub fn cancel_approval(&self, principal: &str, id: &str) -> Result<PendingRequest, Refused> {
        let store = self.approval_store()?;
        let req = store.get(id).map_err(approval_refusal)?;
        if req.requester != principal && !self.admins.contains(principal) {
            return Err(refused(
                Reason::PolicyDenied,
                format!(
                    "only the requester ({:?}) or an admin may cancel request {id}",
                    req.requester
                ),
            ));
        }
        let out = store.cancel(id, principal).map_err(approval_refusal);
        let decision = match out {
            Ok(_) => AuditDecision::Cancelled,
            Err(_) => AuditDecision::Rejected,
        };
        let reason = out.as_ref().err().map(ToString::to_string);
        self.audit_approval(principal, &req, decision, reason);
        out
    }

    /// Approve as submitted over the API, the signature still text: one that does not even
    /// parse is refused MALFORMED and audited like any rejected approval of that request.
    pub fn approve_submitted(
        &self,
        principal: &str,
        id: &str,
        signature: &str,
    ) -> Result<PendingRequest, Refused> {
        match Signature::parse(signature.trim()) {
            Ok(sig) => self.approve(principal, id, &sig),
            Err(e) => {
                let r = refused(Reason::Malformed, format!("signature: {e}"));
                if let Ok(req) = self.approval(id)
                    && self.may_read(principal, &req)
                {
                    self.audit_approval(
                        principal,
                        &req,
                        AuditDecision::Rejected,
                        Some(r.message.clone()),
                    );
                }
                Err(r)
            }
        }
    }

    /// Records one approver's signature; signs the transaction once the threshold is met.
    pub fn approve(
        &self,
        principal: &str,
        id: &str,
        signature: &Signature,
    ) -> Result<PendingRequest, Refused> {
        let store = self.approval_store()?;
        if let Ok(r) = store.get(id)
            && !self.may_read(principal, &r)
        {
            return Err(not_readable(principal, id));
        }
        let now = crate::clock::now_secs();
        let (req, decision) = match store.add(id, signature, now) {
            Ok((Added::Counted { .. }, req)) => (req, AuditDecision::Accepted),
            Ok((Added::Duplicate, req)) => (req, AuditDecision::Duplicate),
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
                    self.audit_approval(
                        principal,
                        &req,
                        AuditDecision::Rejected,
                        Some(e.to_string()),
                    );
                    return Err(e);
                }
                (req, AuditDecision::Duplicate)
            }
            Err(e) => {
                let r = approval_refusal(e);
                if let Ok(req) = store.get(id) {
                    self.audit_approval(
                        principal,
                        &req,
                        AuditDecision::Rejected,
                        Some(r.to_string()),
                    );
                }
                return Err(r);
            }
        };
        let approver = signature
            .recover(&req.binding_digest)
            .ok()
            .map(|k| format!("approver {k}"));
        self.audit_approval(principal, &req, decision, approver);
        if req.state == State::Pending && req.approved() {
            return self.release(store, id);
        }
        Ok(req)
    }

    /// Signs an approved request once: under the store's release lock, re-read it; if another
    /// approval released it meanwhile, answer with what that one left.
    fn release(&self, store: &ApprovalStore, id: &str) -> Result<PendingRequest, Refused> {
        let _one_release = store.releasing();
        let req = store.get(id).map_err(approval_refusal)?;
        if req.state != State::Pending || !req.approved() {
            return Ok(req);
        }
        let outcome = match self.sign_approved(&req) {
            Ok(o) => o,
            // The policy in force refuses it now (the approver set or threshold changed, a
            // budget or rate is spent): the request is closed, so no later approval signs it.
            // An outage leaves it pending.
            Err(r) if matches!(r.reason, Reason::PolicyDenied | Reason::ApprovalRejected) => {
                let closed = store.cancel(
                    &req.id,
                    &format!("oryx-signer at release: {}", r.reason.as_str()),
                );
                if let Ok(closed) = &closed {
                    self.audit_approval(
                        "oryx-signer",
                        closed,
                        AuditDecision::Cancelled,
                        Some(r.message.clone()),
                    );
                }
                return Err(r);
            }
            Err(r) => return Err(r),
        };
        store
            .mark_signed(&req.id, outcome.signature, outcome.audit)
            .map_err(approval_refusal)
    }

    /// The approved request through the spine, marked approved: the digest and the policy's
    /// view are recomputed from the stored transaction, and the policy decides again (budgets
    /// and rates hold at signing time).
    fn sign_approved(&self, req: &PendingRequest) -> Result<Outcome, Refused> {
        let started = Instant::now();
        let cfd = &req.context_free_data;
        let stored = Transaction::decode(&req.packed_trx.0)
            .map_err(|e| format!("stored transaction: {e}"))
            .and_then(|trx| {
                let p = Prepared::transaction(
                    &req.requester,
                    req.chain_id,
                    req.key,
                    &trx,
                    cfd,
                    started,
                );
                if p.digest != req.signing_digest {
                    return Err("the stored transaction does not match its digest".into());
                }
                let body = transaction_body(&trx, cfd, &req.msig_proposals)
                    .map_err(|e| format!("stored proposals: {e}"))?;
                Ok(Prepared {
                    body: Some(body),
                    approved: Some(req.approvals.iter().map(|a| a.approver).collect()),
                    ..p
                })
            });
        match stored {
            Ok(p) => self.run(p),
            // The store was written by this signer from a request that decoded: a request that
            // no longer does is damage, not the requester's mistake.
            Err(m) => {
                let p = Prepared {
                    digest: req.signing_digest,
                    ..Prepared::new(
                        &req.requester,
                        crate::config::RequestKind::Transaction,
                        req.chain_id,
                        req.key,
                        started,
                    )
                };
                Err(self.refuse_prepared(&p, refused(Reason::Internal, m)))
            }
        }
    }

    /// Stores a transaction that needs approvals as a pending request (after checking the key
    /// and chain, so nothing is stored that could never be signed).
    pub(super) fn store_for_approvals(
        &self,
        p: &Prepared<'_>,
        entry: Option<&KeyEntry>,
        now: TimePointSec,
        threshold: u32,
        approvers: Vec<PublicKey>,
        set: String,
    ) -> Result<Outcome, Refused> {
        let (
            Some(store),
            Some(oryx_policy::Body::Transaction {
                trx,
                msig_proposals,
                ..
            }),
        ) = (&self.approvals, &p.body)
        else {
            return Err(refused(
                Reason::PolicyDenied,
                format!(
                    "needs {threshold} of {} approvals from set {set:?}, which only transactions can collect",
                    approvers.len()
                ),
            ));
        };
        self.key_on_chain(entry, &p.key, &p.chain_id)?;
        if trx.expiration <= now {
            return Err(refused(
                Reason::Malformed,
                format!("the transaction expired at {}", trx.expiration),
            ));
        }
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
            // The same transaction was approved and signed before: its one signature.
            Ok(Created::Existing(PendingRequest {
                state: State::Signed { signature },
                ..
            })) => Ok(Outcome {
                digest: p.digest,
                signature,
                replayed: true,
                block_num: 0,
                slot: 0,
                audit: None,
                text: None,
            }),
            Ok(created) => {
                let (req, what) = match created {
                    Created::New(r) => (r, "stored as"),
                    Created::Existing(r) => (r, "already waiting as"),
                };
                Err(Refused {
                    reason: Reason::NeedsApprovals,
                    message: format!(
                        "{what} approval request {}: needs {} of {} approvals from set {:?} ({} so far), each a signature over binding digest {} (until {})",
                        req.id,
                        req.threshold,
                        req.approvers.len(),
                        req.set,
                        req.approvals.len(),
                        req.binding_digest,
                        req.expires
                    ),
                    request_id: Some(req.id),
                    audit: None,
                })
            }
            Err(e) => Err(refused(Reason::Unavailable, e.to_string())),
        }
    }

    fn audit_approval(
        &self,
        principal: &str,
        req: &PendingRequest,
        decision: AuditDecision,
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
            ..AuditRecord::new(sanitize_principal(principal), AuditKind::Approval, decision)
        };
        if let Err(e) = self.audit.append_decision(record) {
            tracing::error!(error = %e, "audit log write failed for an approval");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use oryx_proto::antelope::{Checksum256, KeyType};

    use super::*;
    use crate::approvals::binding_digest;
    use crate::audit::AuditLog;
    use crate::authz::PolicyAuthorizer;
    use crate::backend::soft::SoftKey;
    use crate::backend::{BackendError, KeyBackend, RawSignature};
    use crate::keyset::KeySet;
    use crate::refusal::Admins;
    use crate::signing::{SignOptions, sign};
    use crate::watermark::RetryPolicy;
    use crate::watermark::file::FileStore;

    /// A software key that takes its time: two releases racing for one request overlap inside
    /// the signature instead of passing each other.
    #[derive(Debug)]
    struct SlowKey(SoftKey);

    impl KeyBackend for SlowKey {
        fn public_key(&self) -> &PublicKey {
            self.0.public_key()
        }
        fn sign_digest(
            &self,
            digest: &Checksum256,
            attempt: u32,
        ) -> Result<RawSignature, BackendError> {
            std::thread::sleep(Duration::from_millis(50));
            self.0.sign_digest(digest, attempt)
        }
    }

    fn approval(approver: &SoftKey, req: &PendingRequest) -> Signature {
        let digest = binding_digest(&req.chain_id, &req.key, &req.signing_digest, &req.id);
        sign(approver, &digest, SignOptions::default())
            .unwrap()
            .signature
    }

    /// A custody key whose transfers need `threshold` of `approvers` (policy version "t"),
    /// its pipeline, and a stored approval request for a 10 EOS transfer.
    struct Custody {
        trx: Transaction,
        chain: Checksum256,
        pipeline: Arc<Pipeline>,
        policy: Arc<PolicyAuthorizer>,
        public: PublicKey,
        audit_path: std::path::PathBuf,
        journal: std::path::PathBuf,
        id: String,
        req: PendingRequest,
        _dir: tempfile::TempDir,
    }

    fn policy(public: &PublicKey, threshold: u32, approvers: &[&SoftKey]) -> oryx_policy::Policy {
        let set: Vec<String> = approvers
            .iter()
            .map(|a| format!("\"{}\"", a.public_key()))
            .collect();
        oryx_policy::Policy::parse(&format!(
            "version = \"t{threshold}\"\n[[rule]]\nname = \"payouts\"\nprincipals = [\"node1\"]\nkeys = [\"{public}\"]\n\
             kinds = [\"transaction\"]\nactions = [\"eosio.token::transfer@oryxcustody1@active\"]\n\
             transfer = {{ daily_budget = \"1000.0000 EOS\" }}\n\
             approvals = {{ threshold = {threshold}, approvers = [{}], set = \"custodians\" }}\n",
            set.join(", ")
        ))
        .unwrap()
    }

    impl Custody {
        fn new(threshold: u32, approvers: &[&SoftKey]) -> Custody {
            let dir = tempfile::tempdir().unwrap();
            let key = SlowKey(SoftKey::generate(KeyType::K1).unwrap());
            let public = *key.public_key();
            let chain = Checksum256([7; 32]);
            let journal = dir.path().join("spend.jsonl");
            let policy = Arc::new(
                PolicyAuthorizer::new(policy(&public, threshold, approvers), vec![public])
                    .with_journal(&journal, crate::clock::now_secs())
                    .unwrap(),
            );
            let audit_path = dir.path().join("audit.jsonl");
            let pipeline = Arc::new(Pipeline {
                keys: KeySet::new([KeyEntry::new(
                    Arc::new(key),
                    vec![chain],
                    false,
                    RetryPolicy::Refuse,
                )]),
                chains: HashMap::from([(chain, SignOptions::default())]),
                watermarks: Arc::new(FileStore::open(dir.path().join("watermarks")).unwrap()),
                scopes: Arc::default(),
                audit: Arc::new(AuditLog::open(&audit_path).unwrap()),
                authz: policy.clone(),
                metrics: Arc::default(),
                write_ahead: true,
                withheld: Default::default(),
                in_flight: Default::default(),
                approvals: Some(Arc::new(
                    ApprovalStore::open(dir.path().join("approvals")).unwrap(),
                )),
                // The custodians approve online: reviewers.
                admins: Admins::default()
                    .with_reviewers((0..5).map(|i| format!("custodian-{i}")).collect()),
            });
            let expiration = crate::clock::now_secs().0 + 600;
            let trx: Transaction = serde_json::from_value(serde_json::json!({
                "expiration": TimePointSec(expiration),
                "ref_block_num": 1, "ref_block_prefix": 2,
                "actions": [{"account": "eosio.token", "name": "transfer",
                    "authorization": [{"actor": "oryxcustody1", "permission": "active"}],
                    "data": {"from": "oryxcustody1", "to": "exchangeacct",
                             "quantity": "10.0000 EOS", "memo": ""}}]
            }))
            .unwrap();
            let stored = pipeline
                .sign_transaction("node1", chain, public, &trx, &[], &[])
                .unwrap_err();
            assert_eq!(stored.reason, Reason::NeedsApprovals, "{stored}");
            let id = stored.request_id.unwrap();
            let req = pipeline.approval(&id).unwrap();
            Custody {
                trx,
                chain,
                pipeline,
                policy,
                public,
                audit_path,
                journal,
                id,
                req,
                _dir: dir,
            }
        }

        fn approve(&self, i: usize, by: &SoftKey) -> Result<PendingRequest, Refused> {
            self.pipeline.approve(
                &format!("custodian-{i}"),
                &self.id,
                &approval(by, &self.req),
            )
        }
    }

    /// Two final approvals arriving together (threshold 2 of 3: the second and third approver at
    /// once) release the request once: one signature, one `signed` audit entry, one spend.
    #[test]
    fn two_final_approvals_at_once_sign_once() {
        let approvers: Vec<SoftKey> = (0..3)
            .map(|_| SoftKey::generate(KeyType::K1).unwrap())
            .collect();
        let c = Custody::new(2, &approvers.iter().collect::<Vec<_>>());
        let first = c.approve(0, &approvers[0]).unwrap();
        assert_eq!((first.approvals.len(), &first.state), (1, &State::Pending));

        let c = Arc::new(c);
        let barrier = Arc::new(Barrier::new(2));
        let approvers = Arc::new(approvers);
        let finals: Vec<_> = [1, 2]
            .map(|i| {
                let (c, barrier, approvers) = (c.clone(), barrier.clone(), approvers.clone());
                let signature = approval(&approvers[i], &c.req);
                std::thread::spawn(move || {
                    barrier.wait();
                    c.pipeline
                        .approve(&format!("custodian-{i}"), &c.id, &signature)
                })
            })
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();

        // Both callers see the one signature.
        let State::Signed { signature } = finals[0].state else {
            panic!("not signed: {:?}", finals[0].state);
        };
        assert_eq!(finals[1].state, State::Signed { signature });
        let log = std::fs::read_to_string(&c.audit_path).unwrap();
        let signed: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("\"kind\":\"sign_transaction\""))
            .filter(|l| l.contains("\"decision\":\"signed\""))
            .collect();
        assert_eq!(signed.len(), 1, "{log}");
        assert!(signed[0].contains(&signature.to_string()));
        let spends = std::fs::read_to_string(&c.journal).unwrap();
        assert_eq!(spends.lines().count(), 1, "{spends}");
    }

    /// The approver set and threshold in force at release are the current policy's: after a
    /// reload that removed an approver, that approver's signature no longer completes a request,
    /// and a raised threshold holds. The request is then closed, never left pending for a later
    /// approval to sign.
    #[test]
    fn a_revoked_approver_no_longer_counts_and_a_raised_threshold_holds() {
        let a: Vec<SoftKey> = (0..4)
            .map(|_| SoftKey::generate(KeyType::K1).unwrap())
            .collect();
        for (threshold_now, approvers_now) in [
            (2, vec![&a[1], &a[2], &a[3]]),
            (3, vec![&a[0], &a[1], &a[2]]),
        ] {
            let c = Custody::new(2, &[&a[0], &a[1], &a[2]]);
            c.approve(0, &a[0]).unwrap();
            c.policy
                .replace(policy(&c.public, threshold_now, &approvers_now));
            let r = c.approve(1, &a[1]).unwrap_err();
            assert_eq!(r.reason, Reason::ApprovalRejected, "{r}");
            assert!(r.message.contains("the policy changed"), "{r}");
            let closed = c.pipeline.approval(&c.id).unwrap();
            assert!(
                matches!(closed.state, State::Cancelled { .. }),
                "{:?}",
                closed.state
            );
            // A later approval signs nothing.
            assert!(c.approve(2, &a[2]).is_err());
            let log = std::fs::read_to_string(&c.audit_path).unwrap();
            assert!(
                !log.lines().any(|l| l.contains("\"decision\":\"signed\"")),
                "{log}"
            );
            assert!(!c.journal.exists() || std::fs::read_to_string(&c.journal).unwrap().is_empty());
        }
    }

    /// The same transaction for the same key is the same request: a retried submission gets the
    /// pending request's id, and once signed, its one signature (replayed, charged once).
    #[test]
    fn a_retried_request_is_the_same_request_and_is_signed_once() {
        let a: Vec<SoftKey> = (0..2)
            .map(|_| SoftKey::generate(KeyType::K1).unwrap())
            .collect();
        let c = Custody::new(2, &[&a[0], &a[1]]);
        let submit = || {
            c.pipeline
                .sign_transaction("node1", c.chain, c.public, &c.trx, &[], &[])
        };
        let again = submit().unwrap_err();
        assert_eq!(again.reason, Reason::NeedsApprovals);
        assert_eq!(again.request_id.as_deref(), Some(c.id.as_str()), "{again}");
        assert!(again.message.contains("already waiting"), "{again}");
        c.approve(0, &a[0]).unwrap();
        let signed = c.approve(1, &a[1]).unwrap();
        let State::Signed { signature } = signed.state else {
            panic!("{:?}", signed.state)
        };
        let (replay, _) = submit().unwrap();
        assert!(replay.replayed);
        assert_eq!(replay.signature, signature);
        assert_eq!(c.pipeline.list_approvals("node1").unwrap().len(), 1);
        let spends = std::fs::read_to_string(&c.journal).unwrap();
        assert_eq!(spends.lines().count(), 1, "charged once: {spends}");
    }
}
