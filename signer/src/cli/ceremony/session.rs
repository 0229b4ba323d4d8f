//! `oryx ceremony rotate-producer|rotate-auth|msig …` (shared by the three): one run of a
//! ceremony command in its directory — the transcript as the ceremony's state, the signing steps
//! every ceremony shares (sign, or wait for approvals and resume), the signed transaction file,
//! and the audit-key signature that ends each run.
//!
//! Guards: the transcript is the only state, and each step is written durably (temporary file,
//! fsync, rename, fsync of the directory) before the next one starts, so an interrupted run
//! resumes at the first step not recorded and never repeats one that was (a key is generated
//! once; a transaction is built once and the signed bytes are always the recorded ones). A
//! directory holding another kind of ceremony, or the same kind with other parameters, is
//! refused; one run at a time holds the directory's lock. Every signature the signer returns is
//! recovered locally to the key that should have made it before it is recorded.

use std::fs::File;
use std::path::{Path, PathBuf};

use oryx_proto::antelope::{Checksum256, PublicKey, Signature, TimePointSec};
use oryx_proto::grpc;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::other;
use super::steps::{self, ApprovalRequested, ApprovalSubmitted, Output, Signed, TxData};
use super::transcript::{AuditPos, HeadSignature, Transcript};
use crate::cli::remote::{SignerArgs, refusal};
use crate::cli::{CliError, read_input};

/// The transcript's file name in a ceremony directory.
pub const TRANSCRIPT: &str = "transcript.json";
const LOCK: &str = ".lock";

/// Now, as transcripts print it.
fn now() -> String {
    crate::clock::now_secs().to_string()
}

/// Writes `bytes` to `dir/name` durably (mode 0600): temporary file, fsync, rename, fsync of the
/// directory ([`crate::durable::write_atomic`]).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), CliError> {
    crate::durable::write_atomic(&dir.join(name), bytes, 0o600).map_err(|e| CliError::Io {
        path: e.path.display().to_string(),
        source: e.source,
    })
}

/// Converts a signer's audit reference.
pub fn audit_pos(a: Option<grpc::AuditRef>) -> Option<AuditPos> {
    a.map(|a| AuditPos {
        seq: a.seq,
        hash: a.hash,
    })
}

/// A chain id from the signer's bytes.
fn chain_of(bytes: &[u8]) -> Result<Checksum256, CliError> {
    bytes
        .try_into()
        .map(Checksum256)
        .map_err(|_| other("the signer sent a chain id that is not 32 bytes"))
}

/// Where a transaction's signing stands after a run.
#[derive(Debug)]
pub enum SignState {
    /// Signed; the signature is recorded.
    Signed(Signed),
    /// Stored for approvals; what the operator must tell the approvers.
    Waiting(Value),
}

/// A ceremony directory opened by one command run.
#[derive(Debug)]
pub struct Session {
    /// The directory.
    pub dir: PathBuf,
    /// The transcript, as recorded so far.
    pub t: Transcript,
    _lock: File,
}

fn lock(dir: &Path) -> Result<File, CliError> {
    let path = dir.join(LOCK);
    let f = File::create(&path).map_err(|e| CliError::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(other(format!(
            "{}: another oryx ceremony command is running in this directory; wait for it",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(CliError::io(&path, e)),
    }
}

/// The parameters that differ, as `name (recorded X, given Y)`.
fn param_differences(recorded: &Value, given: &Value) -> Vec<String> {
    let (Some(a), Some(b)) = (recorded.as_object(), given.as_object()) else {
        return vec!["(all)".into()];
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or_else(|| "absent".into(), Value::to_string);
            format!(
                "{k} (recorded {}, given {})",
                show(a.get(k)),
                show(b.get(k))
            )
        })
        .collect()
}

impl Session {
    /// Starts the ceremony `kind` in `dir` (created if needed), or continues the one there when
    /// it is the same kind with the same parameters.
    pub fn start(dir: &Path, kind: &str, params: Value) -> Result<Self, CliError> {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, e))?;
        let lock = lock(dir)?;
        let path = dir.join(TRANSCRIPT);
        if path.exists() {
            let s = Self::load(dir, lock)?;
            if s.t.kind != kind {
                return Err(other(format!(
                    "{} holds a {} ceremony, not {kind}: use another directory",
                    dir.display(),
                    s.t.kind
                )));
            }
            let diff = param_differences(&s.t.params, &params);
            // A ceremony whose first step failed recorded nothing but its parameters (and was
            // never signed): starting it again with corrected ones replaces it.
            if !diff.is_empty() && s.t.entries.len() <= 1 && s.t.signatures.is_empty() {
                drop(s);
                std::fs::remove_file(&path).map_err(|e| CliError::io(&path, e))?;
                return Self::start(dir, kind, params);
            }
            if !diff.is_empty() {
                return Err(other(format!(
                    "{} holds a {kind} ceremony started with other parameters: {}. Resume it \
                     with its own parameters (`resume --dir`), or use another directory",
                    dir.display(),
                    diff.join("; ")
                )));
            }
            return Ok(s);
        }
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| other(format!("random ceremony id: {e}")))?;
        let t = Transcript::begin(&hex::encode(id), kind, params, now());
        let s = Session {
            dir: dir.to_path_buf(),
            t,
            _lock: lock,
        };
        s.save()?;
        Ok(s)
    }

    /// Whether nothing but the parameters is recorded: the first step has not happened.
    pub fn untouched(&self) -> bool {
        self.t.entries.len() <= 1 && self.t.signatures.is_empty()
    }

    /// Forgets a ceremony whose first step failed: its transcript goes, and the directory
    /// too when nothing else is in it, so a corrected `start` begins afresh.
    pub fn discard(self) -> Result<(), CliError> {
        let path = self.dir.join(TRANSCRIPT);
        std::fs::remove_file(&path).map_err(|e| CliError::io(&path, e))?;
        let dir = self.dir.clone();
        drop(self);
        // Only an empty directory (the lock file aside) is removed.
        let lock_file = dir.join(LOCK);
        let only_lock = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).all(|e| e.path() == lock_file))
            .unwrap_or(false);
        if only_lock {
            let _ = std::fs::remove_file(&lock_file);
            let _ = std::fs::remove_dir(&dir);
        }
        Ok(())
    }

    /// Opens the ceremony in `dir`, which must be of one of `kinds`.
    pub fn open(dir: &Path, kinds: &[&str]) -> Result<Self, CliError> {
        if !dir.join(TRANSCRIPT).exists() {
            return Err(other(format!(
                "{} holds no ceremony ({TRANSCRIPT} is missing): start one first",
                dir.display()
            )));
        }
        let s = Self::load(dir, lock(dir)?)?;
        if !kinds.contains(&s.t.kind.as_str()) {
            return Err(other(format!(
                "{} holds a {} ceremony, not {}: use the matching command",
                dir.display(),
                s.t.kind,
                kinds.join(" or ")
            )));
        }
        Ok(s)
    }

    fn load(dir: &Path, lock: File) -> Result<Self, CliError> {
        let path = dir.join(TRANSCRIPT);
        let text = read_input(&path)?;
        let t = Transcript::parse(&text).map_err(|e| other(format!("{}: {e}", path.display())))?;
        // The transcript is the ceremony's state: continue only from an intact one.
        super::transcript::verify_structure(&t)
            .map_err(|e| other(format!("{}: {e}; refusing to continue", path.display())))?;
        Ok(Session {
            dir: dir.to_path_buf(),
            t,
            _lock: lock,
        })
    }

    /// The parameters the ceremony was started with.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, CliError> {
        serde_json::from_value(self.t.params.clone())
            .map_err(|e| other(format!("the transcript's parameters do not decode: {e}")))
    }

    fn save(&self) -> Result<(), CliError> {
        write_atomic(&self.dir, TRANSCRIPT, self.t.to_text().as_bytes())
    }

    /// Records a step durably.
    pub fn record<T: Serialize>(&mut self, step: &str, data: &T) -> Result<(), CliError> {
        let data = serde_json::to_value(data).map_err(|e| other(e.to_string()))?;
        self.t.append(step, data, now());
        self.save()
    }

    /// The last recorded step of `step` (for transaction `tx`), decoded.
    pub fn get<T: DeserializeOwned>(
        &self,
        step: &str,
        tx: Option<&str>,
    ) -> Result<Option<T>, CliError> {
        self.t
            .last(step, tx)
            .map(steps::data)
            .transpose()
            .map_err(CliError::Other)
    }

    /// Records a built transaction, or checks that the one recorded earlier is the same.
    pub fn record_tx(&mut self, d: TxData) -> Result<TxData, CliError> {
        if let Some(old) = self.get::<TxData>(steps::TRANSACTION, Some(&d.tx))? {
            if old.packed_trx != d.packed_trx {
                return Err(other(format!(
                    "the {} transaction built now differs from the one recorded (id {}): the \
                     inputs changed; use another directory for another transaction",
                    d.tx, old.id
                )));
            }
            return Ok(old);
        }
        self.record(steps::TRANSACTION, &d)?;
        Ok(d)
    }

    /// Signs the recorded transaction `tx`, or advances its approval request: submits the
    /// approval files given, polls the request once, and records the signature when the
    /// signer has released it.
    pub fn sign(
        &mut self,
        signer: &SignerArgs,
        tx: &str,
        approval_files: &[PathBuf],
    ) -> Result<SignState, CliError> {
        let d: TxData = self
            .get(steps::TRANSACTION, Some(tx))?
            .ok_or_else(|| other(format!("no {tx} transaction recorded yet")))?;
        if let Some(s) = self.get::<Signed>(steps::SIGNED, Some(tx))? {
            if !approval_files.is_empty() {
                return Err(other(format!(
                    "{tx} is already signed: the approval files are not needed"
                )));
            }
            return Ok(SignState::Signed(s));
        }
        let request = match self.get::<ApprovalRequested>(steps::APPROVAL_REQUESTED, Some(tx))? {
            Some(r) => r,
            None => {
                if !approval_files.is_empty() {
                    return Err(other(format!(
                        "{tx} has no approval request yet: approvals can only be submitted once \
                         the signer asks for them"
                    )));
                }
                match self.request_signature(signer, &d)? {
                    Ok(signed) => return Ok(SignState::Signed(signed)),
                    Err(r) => r,
                }
            }
        };
        for f in approval_files {
            self.submit_approval(signer, &request, f)?;
        }
        self.poll(signer, &d, &request)
    }

    /// SignTransaction: the signature, or the approval request the signer stored instead.
    fn request_signature(
        &mut self,
        signer: &SignerArgs,
        d: &TxData,
    ) -> Result<Result<Signed, ApprovalRequested>, CliError> {
        let req = grpc::SignTransactionRequest {
            chain_id: d.chain_id.0.to_vec(),
            public_key: d.signing_key.to_string(),
            transaction: Some(grpc::sign_transaction_request::Transaction::PackedTrx(
                d.packed_trx.0.clone(),
            )),
            context_free_data: d.context_free_data.iter().map(|b| b.0.clone()).collect(),
            msig_proposals: d.msig_proposals.iter().map(|b| b.0.clone()).collect(),
        };
        let answer = signer
            .try_call(async move |c| c.sign_transaction(req).await.map(|r| r.into_inner()))?;
        match answer {
            Ok(resp) => {
                let text = resp
                    .signature
                    .map(|s| s.text)
                    .ok_or_else(|| other("the signer answered without a signature"))?;
                let signed = Signed {
                    tx: d.tx.clone(),
                    public_key: d.signing_key,
                    signature: self.checked_signature(d, &text)?,
                    request_id: None,
                    approved_by: vec![],
                    audit: audit_pos(resp.audit),
                };
                self.record(steps::SIGNED, &signed)?;
                Ok(Ok(signed))
            }
            Err(status) if crate::client::reason(&status).as_deref() == Some("NEEDS_APPROVALS") => {
                let id = status
                    .metadata()
                    .get(oryx_proto::grpc::REQUEST_ID_METADATA)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| other("NEEDS_APPROVALS without a request id"))?
                    .to_string();
                let r = self.record_request(signer, d, &id)?;
                Ok(Err(r))
            }
            Err(status) => Err(refusal(&status)),
        }
    }

    /// Fetches a new approval request, checks it is for exactly this transaction, records it and
    /// writes the request file offline approvers work from.
    fn record_request(
        &mut self,
        signer: &SignerArgs,
        d: &TxData,
        id: &str,
    ) -> Result<ApprovalRequested, CliError> {
        let req = get_approval(signer, id)?;
        let checked = crate::cli::approvals::check(&req)?;
        if req.packed_trx != d.packed_trx.0
            || chain_of(&req.chain_id)? != d.chain_id
            || PublicKey::parse(&req.public_key)? != d.signing_key
        {
            return Err(other(format!(
                "approval request {id} is not for the {} transaction this ceremony sent",
                d.tx
            )));
        }
        let approvers = req
            .approvers
            .iter()
            .map(|k| PublicKey::parse(k))
            .collect::<Result<Vec<_>, _>>()?;
        let r = ApprovalRequested {
            tx: d.tx.clone(),
            request_id: id.to_string(),
            binding_digest: checked.binding_digest,
            threshold: req.threshold,
            approvers,
            set: req.set.clone(),
            expires: TimePointSec(req.expires),
        };
        self.record(steps::APPROVAL_REQUESTED, &r)?;
        let file = request_file(&d.tx);
        let body = crate::cli::approvals::to_json(&req)?;
        write_atomic(&self.dir, &file, format!("{body:#}\n").as_bytes())?;
        Ok(r)
    }

    /// Submits one approval file written by `oryx approve --offline`, after checking it locally.
    fn submit_approval(
        &mut self,
        signer: &SignerArgs,
        r: &ApprovalRequested,
        path: &Path,
    ) -> Result<(), CliError> {
        let name = path.display().to_string();
        let v: Value =
            serde_json::from_str(&read_input(path)?).map_err(|e| other(format!("{name}: {e}")))?;
        let id = v.get("id").and_then(Value::as_str).unwrap_or_default();
        if id != r.request_id {
            return Err(other(format!(
                "{name}: approves request {id:?}, not this ceremony's {}",
                r.request_id
            )));
        }
        let signature = v
            .get("signature")
            .and_then(Value::as_str)
            .ok_or_else(|| other(format!("{name}: no signature")))
            .and_then(|s| Signature::parse(s).map_err(CliError::from))?;
        let approver = signature
            .recover(&r.binding_digest)
            .ok()
            .filter(|k| r.approvers.contains(k))
            .ok_or_else(|| {
                other(format!(
                    "{name}: the signature does not come from an approver of the set {:?} over \
                     this request's binding digest: refusing to submit it",
                    r.set
                ))
            })?;
        if self.has_approval(&[steps::APPROVAL_SUBMITTED], &r.request_id, &approver) {
            return Ok(());
        }
        let (id, text) = (r.request_id.clone(), signature.to_string());
        signer.call(async move |c| {
            c.approve(grpc::ApproveRequest {
                id,
                signature: text,
            })
            .await
            .map(|_| ())
        })?;
        self.record(
            steps::APPROVAL_SUBMITTED,
            &ApprovalSubmitted {
                tx: r.tx.clone(),
                request_id: r.request_id.clone(),
                approver,
                signature,
            },
        )
    }

    /// Whether an entry of one of `kinds` records `approver`'s approval of `request_id`.
    fn has_approval(&self, kinds: &[&str], request_id: &str, approver: &PublicKey) -> bool {
        self.t
            .entries
            .iter()
            .filter(|e| kinds.contains(&e.step.as_str()))
            .filter_map(|e| steps::data::<ApprovalSubmitted>(e).ok())
            .any(|a| a.request_id == request_id && a.approver == *approver)
    }

    /// Records every approval the signer counted that the transcript does not hold yet, each
    /// checked here against the request's binding digest and approver set.
    fn collect_approvals(
        &mut self,
        r: &ApprovalRequested,
        req: &grpc::ApprovalRequest,
    ) -> Result<(), CliError> {
        for a in &req.approvals {
            let approver = PublicKey::parse(&a.approver)?;
            let signature = Signature::parse(&a.signature)?;
            if !r.approvers.contains(&approver)
                || !signature.recovers_to(&r.binding_digest, &approver)
            {
                return Err(other(format!(
                    "the signer reports an approval by {approver} for request {} that does not \
                     verify over its binding digest: the signer's approval store is damaged; \
                     nothing recorded",
                    r.request_id
                )));
            }
            let known = self.has_approval(
                &[steps::APPROVAL_SUBMITTED, steps::APPROVAL_COLLECTED],
                &r.request_id,
                &approver,
            );
            if !known {
                self.record(
                    steps::APPROVAL_COLLECTED,
                    &ApprovalSubmitted {
                        tx: r.tx.clone(),
                        request_id: r.request_id.clone(),
                        approver,
                        signature,
                    },
                )?;
            }
        }
        Ok(())
    }

    /// Looks at the request once: records the signature when released.
    fn poll(
        &mut self,
        signer: &SignerArgs,
        d: &TxData,
        r: &ApprovalRequested,
    ) -> Result<SignState, CliError> {
        let req = get_approval(signer, &r.request_id)?;
        match req.state.as_str() {
            "signed" => {
                let text = req
                    .signature
                    .as_ref()
                    .map(|s| s.text.clone())
                    .ok_or_else(|| other("a signed request without its signature"))?;
                let approved_by = req
                    .approved_by
                    .iter()
                    .map(|k| PublicKey::parse(k))
                    .collect::<Result<Vec<_>, _>>()?;
                self.collect_approvals(r, &req)?;
                let signed = Signed {
                    tx: d.tx.clone(),
                    public_key: d.signing_key,
                    signature: self.checked_signature(d, &text)?,
                    request_id: Some(r.request_id.clone()),
                    approved_by,
                    audit: audit_pos(req.audit),
                };
                self.record(steps::SIGNED, &signed)?;
                Ok(SignState::Signed(signed))
            }
            "pending" => Ok(SignState::Waiting(waiting(
                &self.dir,
                &self.t.kind,
                d,
                r,
                &req,
            ))),
            state => Err(other(format!(
                "approval request {} is {state}: nothing will be signed for it. Start the \
                 ceremony again in a new directory with fresh TaPoS (a generated key is found \
                 again by its label)",
                r.request_id
            ))),
        }
    }

    /// Parses and checks a signature from the signer: it must recover to the signing key over
    /// the recorded digest.
    fn checked_signature(&self, d: &TxData, text: &str) -> Result<Signature, CliError> {
        let sig = Signature::parse(text)?;
        if sig.recover(&d.signing_digest).ok() != Some(d.signing_key) {
            return Err(other(format!(
                "the signer's signature for {} does not recover to {} over {}: not recorded",
                d.tx, d.signing_key, d.signing_digest
            )));
        }
        Ok(sig)
    }

    /// Writes the signed transaction file of `tx` (once) and records it.
    pub fn write_signed(&mut self, tx: &str) -> Result<Output, CliError> {
        if let Some(o) = self.get::<Output>(steps::OUTPUT, Some(tx))? {
            return Ok(o);
        }
        let d: TxData = self
            .get(steps::TRANSACTION, Some(tx))?
            .ok_or_else(|| other(format!("no {tx} transaction recorded")))?;
        let s: Signed = self
            .get(steps::SIGNED, Some(tx))?
            .ok_or_else(|| other(format!("{tx} is not signed yet")))?;
        let body = signed_file(&d, &[s.signature])?;
        let text = format!("{body:#}\n");
        let file = format!("{tx}.json");
        write_atomic(&self.dir, &file, text.as_bytes())?;
        let o = Output {
            tx: tx.into(),
            file,
            sha256: Checksum256::hash(text.as_bytes()),
        };
        self.record(steps::OUTPUT, &o)?;
        Ok(o)
    }

    /// Ends the run: the signer's audit key signs the transcript's head (unless it already
    /// has), and the signature is appended.
    pub fn seal(&mut self, signer: &SignerArgs) -> Result<Value, CliError> {
        let (seq, head) = self
            .t
            .head()
            .ok_or_else(|| other("the transcript has no entries"))?;
        if !self.t.head_signed() {
            let ceremony = self.t.ceremony.clone();
            let resp = signer
                .call(async move |c| {
                    c.sign_transcript(grpc::SignTranscriptRequest {
                        head: head.0.to_vec(),
                        ceremony,
                    })
                    .await
                    .map(|r| r.into_inner())
                })
                .map_err(|e| {
                    other(format!(
                        "the steps are recorded, but the transcript could not be signed ({e}); \
                         run resume again when the signer can sign transcripts"
                    ))
                })?;
            let digest = crate::transcript_digest(&self.t.ceremony, &head);
            let key = PublicKey::parse(&resp.public_key)?;
            let sig = resp
                .signature
                .map(|s| s.text)
                .ok_or_else(|| other("SignTranscript answered without a signature"))
                .and_then(|t| Signature::parse(&t).map_err(CliError::from))?;
            if resp.digest != digest.0 || !sig.recovers_to(&digest, &key) {
                return Err(other(
                    "the signer's transcript signature is not over this transcript's head: not \
                     recorded",
                ));
            }
            self.t.signatures.push(HeadSignature {
                seq,
                head: head.to_string(),
                digest: digest.to_string(),
                public_key: key.to_string(),
                signature: sig.to_string(),
                audit: audit_pos(resp.audit),
            });
            self.save()?;
        }
        let s = self.t.signatures.last();
        Ok(json!({
            "transcript": self.dir.join(TRANSCRIPT).display().to_string(),
            "head": head.to_string(),
            "entries": seq + 1,
            "audit_key": s.map(|s| s.public_key.clone()),
        }))
    }
}

/// The request file offline approvers work from.
pub fn request_file(tx: &str) -> String {
    format!("request-{tx}.json")
}

/// GetApproval: the signer's record of request `id`.
pub(crate) fn get_approval(
    signer: &SignerArgs,
    id: &str,
) -> Result<grpc::ApprovalRequest, CliError> {
    let id = id.to_string();
    signer.call(async move |c| {
        c.get_approval(grpc::GetApprovalRequest { id })
            .await
            .map(|r| r.into_inner())
    })
}

/// What the operator tells the approvers while a request is pending.
fn waiting(
    dir: &Path,
    kind: &str,
    d: &TxData,
    r: &ApprovalRequested,
    req: &grpc::ApprovalRequest,
) -> Value {
    // The msig ceremonies share one `resume`.
    let command = if kind.starts_with("msig") {
        "msig"
    } else {
        kind
    };
    let approved: Vec<&String> = req.approved_by.iter().collect();
    let missing: Vec<String> = r
        .approvers
        .iter()
        .map(ToString::to_string)
        .filter(|k| !req.approved_by.contains(k))
        .collect();
    let request = dir.join(request_file(&d.tx));
    json!({
        "status": "waiting-for-approvals",
        "transaction": d.tx,
        "transaction_id": d.id.to_string(),
        "request_id": r.request_id,
        "approvals": format!("{} of {} (set {})", approved.len(), r.threshold, r.set),
        "approved_by": approved,
        "may_approve": missing,
        "expires": r.expires.to_string(),
        "binding_digest": r.binding_digest.to_string(),
        "request_file": request.display().to_string(),
        "next": [
            format!("online: each approver runs `oryx approve {} --key-file KEY` (or --pkcs11-module …)", r.request_id),
            format!("offline: each approver runs `oryx approve --offline --request {} --key-file KEY --out APPROVAL.json`; bring the files back and run resume with `--approval APPROVAL.json` (repeatable)", request.display()),
                        format!("then: `oryx ceremony {command} resume --dir {}`", dir.display()),
        ],
    })
}

/// The signed transaction file: the expanded transaction with `signatures` and
/// `context_free_data` (what `cleos push transaction` reads), plus the packed form
/// (`compression`, `packed_context_free_data`, `packed_trx`: what `/v1/chain/send_transaction`
/// and `push_transaction` read). Each reader ignores the other's fields.
pub fn signed_file(d: &TxData, signatures: &[Signature]) -> Result<Value, CliError> {
    let trx = oryx_proto::antelope::transaction::Transaction::decode(&d.packed_trx.0)?;
    crate::cli::inspect::tx::push_form(&trx, &d.context_free_data, signatures)
}
