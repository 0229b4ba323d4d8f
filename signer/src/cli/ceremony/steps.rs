//! `oryx ceremony verify|show` and every ceremony that records steps: the steps a ceremony
//! records in its transcript, their data, and the content checks `oryx ceremony verify` runs on
//! them.
//!
//! Guards: a transcript proves what was signed, not just that a file was hash-chained. So every
//! transaction's id and signing digest are recomputed from its chain id and packed bytes, the
//! decoded view is compared with the bytes, every signature is recovered to the key that should
//! have made it (the transaction's signing key; each approver over the request's binding
//! digest), approvals are counted against the approver set, and the key hand-over is checked
//! against the generated key.

use oryx_proto::antelope::actions::msig::pinned_proposals;
use oryx_proto::antelope::actions::{Authority, HeldAuthority};
use oryx_proto::antelope::transaction::{Transaction, signing_digest};
use oryx_proto::antelope::{
    Bytes, Checksum256, Name, PermissionLevel, PublicKey, Signature, TimePointSec,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::transcript::{AuditPos, Entry, Transcript};
use crate::approvals::binding_digest;

/// Entry 0: format, ceremony id, kind, parameters.
pub const BEGIN: &str = "begin";
/// A key generated (or found by its label) in the signer's HSM: [`KeyGenerated`].
pub const KEY_GENERATED: &str = "key-generated";
/// A new permission authority, checked against the lock-out guard: [`AuthorityChange`].
pub const AUTHORITY: &str = "authority";
/// A transaction built and about to be signed: [`TxData`].
pub const TRANSACTION: &str = "transaction";
/// The signer stored the transaction for approvals: [`ApprovalRequested`].
pub const APPROVAL_REQUESTED: &str = "approval-requested";
/// An approval carried in by the operator and submitted: [`ApprovalSubmitted`].
pub const APPROVAL_SUBMITTED: &str = "approval-submitted";
/// An approval the signer counted, as it reported it once the request was signed (approvers who
/// ran `oryx approve ID` online): [`ApprovalSubmitted`].
pub const APPROVAL_COLLECTED: &str = "approval-collected";
/// The signer's signature over the transaction: [`Signed`].
pub const SIGNED: &str = "signed";
/// The signed transaction file written for the online host: [`Output`].
pub const OUTPUT: &str = "output";
/// Carried chain state showing the new key in place: [`OnChain`].
pub const ON_CHAIN: &str = "on-chain";
/// The old key retired, its watermarks handed to its successor: [`Retired`].
pub const RETIRED: &str = "retired";
/// Free text (`{"text": …}`).
pub const NOTE: &str = "note";

/// [`KEY_GENERATED`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyGenerated {
    /// The backend it lives in.
    pub backend: String,
    /// Its label there (the idempotency key).
    pub label: String,
    /// K1 or R1.
    pub key_type: String,
    /// The new public key.
    pub public_key: PublicKey,
    /// The key it will replace.
    pub successor_of: Option<PublicKey>,
    /// The label already held this key: nothing was generated.
    pub existing: bool,
    /// The GenerateKey call's audit entry.
    pub audit: Option<AuditPos>,
}

/// [`AUTHORITY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityChange {
    /// The account.
    pub account: Name,
    /// The permission changed.
    pub permission: Name,
    /// Its parent (empty for owner).
    pub parent: Name,
    /// Who authorizes the `updateauth`.
    pub authorizer: PermissionLevel,
    /// The authority on chain before (from the carried get_account).
    pub current: Authority,
    /// The authority after.
    pub new: Authority,
    /// What the team holds: the lock-out guard's input.
    pub held: HeldAuthority,
}

/// [`TRANSACTION`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxData {
    /// The transaction's name in this ceremony (`regproducer`, `updateauth`, `propose`, …).
    pub tx: String,
    /// Chain id.
    pub chain_id: Checksum256,
    /// The key the signer signs with.
    pub signing_key: PublicKey,
    /// `pack(transaction)`.
    pub packed_trx: Bytes,
    /// Context-free data.
    pub context_free_data: Vec<Bytes>,
    /// `pack(transaction)` of each proposal an `eosio.msig::approve` in it approves.
    pub msig_proposals: Vec<Bytes>,
    /// The transaction decoded (the cleos JSON shape, action data in hex).
    pub transaction: Value,
    /// sha256(chain_id ‖ packed_trx ‖ cfd digest).
    pub signing_digest: Checksum256,
    /// The transaction id.
    pub id: Checksum256,
}

impl TxData {
    /// Records `trx`, computing its digest and id.
    pub fn new(
        tx: &str,
        chain_id: Checksum256,
        signing_key: PublicKey,
        trx: &Transaction,
        msig_proposals: Vec<Bytes>,
    ) -> Self {
        use oryx_proto::antelope::Pack as _;
        TxData {
            tx: tx.into(),
            chain_id,
            signing_key,
            packed_trx: Bytes(trx.packed()),
            context_free_data: Vec::new(),
            msig_proposals,
            // A transaction is plain data: serializing it cannot fail.
            transaction: serde_json::to_value(trx).unwrap_or_default(),
            signing_digest: trx.signing_digest(&chain_id, &[]),
            id: trx.id(),
        }
    }

    /// The transaction, decoded from its packed bytes.
    pub fn decode(&self) -> Result<Transaction, String> {
        Transaction::decode(&self.packed_trx.0).map_err(|e| e.to_string())
    }
}

/// [`APPROVAL_REQUESTED`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequested {
    /// The transaction.
    pub tx: String,
    /// The signer's request id.
    pub request_id: String,
    /// What approvers sign (recomputed here, never taken from the signer).
    pub binding_digest: Checksum256,
    /// Approvals needed.
    pub threshold: u32,
    /// Who may approve.
    pub approvers: Vec<PublicKey>,
    /// The approver set's name.
    pub set: String,
    /// No approvals after this.
    pub expires: TimePointSec,
}

/// [`APPROVAL_SUBMITTED`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSubmitted {
    /// The transaction.
    pub tx: String,
    /// The request.
    pub request_id: String,
    /// The approver's key.
    pub approver: PublicKey,
    /// Its signature over the binding digest.
    pub signature: Signature,
}

/// [`SIGNED`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    /// The transaction.
    pub tx: String,
    /// The signing key.
    pub public_key: PublicKey,
    /// The signature over the signing digest.
    pub signature: Signature,
    /// The approval request, when the policy required approvals.
    pub request_id: Option<String>,
    /// The approvers the signer counted (their keys).
    pub approved_by: Vec<PublicKey>,
    /// The signing decision's audit entry.
    pub audit: Option<AuditPos>,
}

/// [`OUTPUT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// The transaction.
    pub tx: String,
    /// The file's name in the ceremony directory.
    pub file: String,
    /// sha256 of its bytes.
    pub sha256: Checksum256,
}

/// [`ON_CHAIN`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnChain {
    /// Which answer (`get_producers` or `get_table_rows`).
    pub source: String,
    /// sha256 of the carried file.
    pub carried_sha256: Checksum256,
    /// The producer.
    pub producer: Name,
    /// Every key the chain accepts blocks from for it.
    pub keys: Vec<PublicKey>,
    /// The new key, which must be among them.
    pub new_key: PublicKey,
}

/// One watermark carried to the successor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handover {
    /// Chain id.
    pub chain_id: Checksum256,
    /// The successor's block-number watermark after the hand-over.
    pub block_num: u32,
    /// Its slot watermark.
    pub slot: u32,
}

/// [`RETIRED`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retired {
    /// The retired key.
    pub public_key: PublicKey,
    /// Its successor.
    pub successor: Option<PublicKey>,
    /// Watermarks handed over.
    pub handovers: Vec<Handover>,
    /// It was already retired: nothing changed.
    pub already_retired: bool,
    /// The RetireKey call's audit entry.
    pub audit: Option<AuditPos>,
}

/// Decodes an entry's data as `T`, naming the entry on failure.
pub fn data<T: DeserializeOwned>(e: &Entry) -> Result<T, String> {
    serde_json::from_value(e.data.clone())
        .map_err(|err| format!("entry {} ({}): data does not decode: {err}", e.seq, e.step))
}

/// Checks the content of every step (see the module docs); returns notes for the reader.
pub fn check(
    t: &Transcript,
    read_file: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let mut txs: Vec<TxData> = Vec::new();
    let mut requests: Vec<ApprovalRequested> = Vec::new();
    let mut submitted: Vec<ApprovalSubmitted> = Vec::new();
    let mut generated: Option<KeyGenerated> = None;
    for e in &t.entries {
        let name = format!("entry {} ({})", e.seq, e.step);
        match e.step.as_str() {
            BEGIN if e.seq == 0 => {}
            KEY_GENERATED => {
                let k: KeyGenerated = data(e)?;
                if generated.is_some() {
                    return at(&name, "a second key was generated in one ceremony".into());
                }
                generated = Some(k);
            }
            AUTHORITY => {
                let a: AuthorityChange = data(e)?;
                if let Err(err) = a.new.validate_for(&a.held) {
                    return at(&name, format!("the new authority fails the checks: {err}"));
                }
            }
            TRANSACTION => {
                let d: TxData = data(e)?;
                check_tx(&d).map_err(|w| format!("{name}: {w}"))?;
                txs.retain(|x| x.tx != d.tx);
                txs.push(d);
            }
            APPROVAL_REQUESTED => {
                let r: ApprovalRequested = data(e)?;
                let Some(d) = txs.iter().find(|d| d.tx == r.tx) else {
                    return at(&name, format!("no transaction {} before it", r.tx));
                };
                let expected = binding_digest(
                    &d.chain_id,
                    &d.signing_key,
                    &d.signing_digest,
                    &r.request_id,
                );
                if expected != r.binding_digest {
                    return at(
                        &name,
                        format!(
                            "binding digest is not the one of request {} for transaction {}",
                            r.request_id, d.id
                        ),
                    );
                }
                requests.push(r);
            }
            APPROVAL_SUBMITTED | APPROVAL_COLLECTED => {
                let a: ApprovalSubmitted = data(e)?;
                let Some(r) = requests.iter().find(|r| r.request_id == a.request_id) else {
                    return at(&name, format!("no request {} before it", a.request_id));
                };
                if !a.signature.recovers_to(&r.binding_digest, &a.approver) {
                    return at(
                        &name,
                        format!(
                            "the approval does not recover to {} over the binding digest of {}",
                            a.approver, r.request_id
                        ),
                    );
                }
                if !r.approvers.contains(&a.approver) {
                    return at(&name, format!("{} is not in the approver set", a.approver));
                }
                submitted.push(a);
            }
            SIGNED => {
                let s: Signed = data(e)?;
                let Some(d) = txs.iter().find(|d| d.tx == s.tx) else {
                    return at(&name, format!("no transaction {} before it", s.tx));
                };
                if s.public_key != d.signing_key {
                    return at(
                        &name,
                        format!(
                            "signed by {} but the transaction names {}",
                            s.public_key, d.signing_key
                        ),
                    );
                }
                if s.signature.recover(&d.signing_digest).ok() != Some(d.signing_key) {
                    return at(
                        &name,
                        format!(
                            "the signature does not recover to {} over the signing digest {}",
                            d.signing_key, d.signing_digest
                        ),
                    );
                }
                if let Some(id) = &s.request_id {
                    let Some(r) = requests.iter().find(|r| &r.request_id == id) else {
                        return at(&name, format!("no request {id} before it"));
                    };
                    if let Some(k) = s.approved_by.iter().find(|k| !r.approvers.contains(k)) {
                        return at(
                            &name,
                            format!("approved by {k}, who is not in the approver set"),
                        );
                    }
                    let mut distinct = s.approved_by.clone();
                    distinct.sort_by_key(|k| k.to_string());
                    distinct.dedup();
                    if (distinct.len() as u64) < u64::from(r.threshold) {
                        return at(
                            &name,
                            format!(
                                "{} approvals recorded, the request needed {}",
                                distinct.len(),
                                r.threshold
                            ),
                        );
                    }
                    // Every approval the signer counted is in the transcript with its signature,
                    // checked above against this request's binding digest.
                    if let Some(k) = distinct.iter().find(|k| {
                        !submitted
                            .iter()
                            .any(|a| &a.request_id == id && a.approver == **k)
                    }) {
                        return at(
                            &name,
                            format!(
                                "approved by {k}, but the transcript holds no signature of that \
                                 approval for request {id}"
                            ),
                        );
                    }
                }
            }
            OUTPUT => {
                let o: Output = data(e)?;
                if !txs.iter().any(|d| d.tx == o.tx) {
                    return at(&name, format!("no transaction {} before it", o.tx));
                }
                match read_file(&o.file) {
                    Some(bytes) if Checksum256::hash(&bytes) != o.sha256 => {
                        return at(
                            &name,
                            format!(
                                "{} beside the transcript is not the file the ceremony wrote (sha256 \
                             differs): it was changed",
                                o.file
                            ),
                        );
                    }
                    Some(_) => {}
                    None => notes.push(format!("{} is not beside the transcript", o.file)),
                }
            }
            ON_CHAIN => {
                let c: OnChain = data(e)?;
                if !c.keys.contains(&c.new_key) {
                    return at(
                        &name,
                        format!("the carried producer row does not list {}", c.new_key),
                    );
                }
                if let Some(g) = &generated
                    && g.public_key != c.new_key
                {
                    return at(
                        &name,
                        format!(
                            "new key {} is not the generated {}",
                            c.new_key, g.public_key
                        ),
                    );
                }
            }
            RETIRED => {
                let r: Retired = data(e)?;
                // An aborted rotation retires its own new key, without a successor.
                let abort = generated
                    .as_ref()
                    .is_some_and(|g| r.public_key == g.public_key && r.successor.is_none());
                if let Some(g) = generated.as_ref().filter(|_| !abort) {
                    if r.successor != Some(g.public_key) {
                        return at(
                            &name,
                            format!("the successor is not the generated key {}", g.public_key),
                        );
                    }
                    if g.successor_of.is_some_and(|old| old != r.public_key) {
                        return at(
                            &name,
                            format!(
                                "retired {} but the generated key succeeds another key",
                                r.public_key
                            ),
                        );
                    }
                }
            }
            NOTE => {
                if !e.data.get("text").is_some_and(Value::is_string) {
                    return at(&name, "a note without text".into());
                }
            }
            other => return at(&name, format!("unknown step {other:?}")),
        }
    }
    Ok(notes)
}

/// A failure of the entry `name`.
fn at<T>(name: &str, what: String) -> Result<T, String> {
    Err(format!("{name}: {what}"))
}

/// A transaction entry's digests, id, decoded view and msig proposal hashes, recomputed.
fn check_tx(d: &TxData) -> Result<(), String> {
    let trx = d.decode()?;
    if trx.id() != d.id {
        return Err(format!(
            "id {} is not the packed transaction's {}",
            d.id,
            trx.id()
        ));
    }
    let digest = signing_digest(&d.chain_id, &d.packed_trx.0, &d.context_free_data);
    if digest != d.signing_digest {
        return Err(format!(
            "signing digest {} is not sha256(chain_id || packed_trx || cfd) = {digest}",
            d.signing_digest
        ));
    }
    if serde_json::to_value(&trx).ok().as_ref() != Some(&d.transaction) {
        return Err("the decoded transaction differs from the packed bytes".into());
    }
    // The signer's own rule for approves: each pins its proposal by hash, in action order.
    let proposals: Vec<&[u8]> = d.msig_proposals.iter().map(|p| &p.0[..]).collect();
    pinned_proposals(&trx, &proposals).map_err(|e| e.to_string())?;
    Ok(())
}
