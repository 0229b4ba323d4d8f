//! `oryx approvals list|show|submit|request|cancel`: what waits for approval, in full; carrying
//! offline approvals back to the signer; and the requester's round trip (submit a transaction,
//! get it back signed, or withdraw it).
//!
//! [`check`] is what an approver's tool verifies before signing anything: the digests are
//! recomputed from the transaction, and for every `eosio.msig::approve` in it, the proposed
//! transaction that travels with the request must hash to the approve's `proposal_hash`. The
//! binding digest commits to the approve action and so to that hash; the chain counts the
//! approval only for a proposal with that hash. A signature over the binding digest is therefore
//! a sign-off on the proposed transaction shown, and an approver is never asked to sign an
//! approve whose proposal is missing or differs.

use clap::Subcommand;
use oryx_proto::antelope::actions::msig::{is_approve, pinned_proposals, proposal_hash};
use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Bytes, Checksum256, PublicKey};
use oryx_proto::grpc;
use serde_json::{Value, json};

use super::CliError;

pub mod cancel;
pub mod list;
pub mod request;
pub mod show;
pub mod submit;

/// Approval commands.
#[derive(Debug, Subcommand)]
pub enum Approvals {
    /// Requests waiting for approvals (and recent ones).
    List(list::List),
    /// One request, its transaction decoded, and the digest approvers sign.
    Show(show::Show),
    /// Submit an approval file written by `oryx approve --offline`.
    Submit(submit::Submit),
    /// Submit a transaction for signing; when approved and signed, get it back ready to push.
    Request(request::Request),
    /// Withdraw a pending request (the requester or an admin).
    Cancel(cancel::Cancel),
}

impl Approvals {
    /// Runs the subcommand.
    pub fn run(&self) -> Result<Value, CliError> {
        match self {
            Approvals::List(c) => c.run(),
            Approvals::Show(c) => c.run(),
            Approvals::Submit(c) => c.run(),
            Approvals::Request(c) => c.run(),
            Approvals::Cancel(c) => c.run(),
        }
    }
}

/// What an approver checks, recomputed locally from the transaction and the request's fields
/// (never taken from the signer): the signing digest and the binding digest.
pub struct Checked {
    /// The decoded transaction.
    pub trx: Transaction,
    /// Its signing digest on the request's chain.
    pub signing_digest: Checksum256,
    /// What the approver signs.
    pub binding_digest: Checksum256,
    /// The proposed transaction of each `eosio.msig::approve` in `trx`, in action order, each
    /// checked against the approve's `proposal_hash`.
    pub proposals: Vec<Transaction>,
}

/// Recomputes the digests of a request and checks them against what the signer claims.
pub fn check(r: &grpc::ApprovalRequest) -> Result<Checked, CliError> {
    let chain_id = Checksum256(
        r.chain_id
            .clone()
            .try_into()
            .map_err(|_| CliError::Other("request: chain id is not 32 bytes".into()))?,
    );
    let key = PublicKey::parse(&r.public_key)?;
    let trx = Transaction::decode(&r.packed_trx)?;
    let proposals = pinned_proposals(&trx, &r.msig_proposals).map_err(|e| {
        CliError::Other(format!(
            "request {}: {e}: the proposed transactions do not match the approves: refusing to approve",
            r.id
        ))
    })?;
    let cfd: Vec<Bytes> = r.context_free_data.iter().cloned().map(Bytes).collect();
    let signing_digest = trx.signing_digest(&chain_id, &cfd);
    let binding_digest = crate::approvals::binding_digest(&chain_id, &key, &signing_digest, &r.id);
    if signing_digest.0[..] != r.signing_digest[..] || binding_digest.0[..] != r.binding_digest[..]
    {
        return Err(CliError::Other(format!(
            "request {}: the digests the signer sent do not match the transaction: refusing to approve",
            r.id
        )));
    }
    Ok(Checked {
        trx,
        signing_digest,
        binding_digest,
        proposals,
    })
}

/// A request as JSON (the form `show --json` prints and `approve --offline` reads).
pub fn to_json(r: &grpc::ApprovalRequest) -> Result<Value, CliError> {
    let checked = check(r)?;
    let chain_id = Checksum256(
        r.chain_id
            .clone()
            .try_into()
            .map_err(|_| CliError::Other("chain id".into()))?,
    );
    let approves = checked
        .trx
        .actions
        .iter()
        .enumerate()
        .filter(|(_, a)| is_approve(a));
    let proposals: Vec<Value> = approves
        .zip(&checked.proposals)
        .zip(&r.msig_proposals)
        .map(|(((index, approve), proposed), packed)| {
            json!({
                "approve_action": index,
                "approve": super::inspect::tx::action_json(approve),
                "proposal_hash": proposal_hash(packed).to_string(),
                "packed_trx": hex::encode(packed),
                "transaction": super::inspect::tx::proposed_json(proposed),
            })
        })
        .collect();
    let cfd: Vec<Bytes> = r.context_free_data.iter().cloned().map(Bytes).collect();
    let signatures = r
        .signature
        .as_ref()
        .map(|s| oryx_proto::antelope::Signature::parse(&s.text))
        .transpose()?;
    // The transaction as `cleos push transaction` and `oryx inspect tx` take it (signed once
    // the request is).
    let push = super::inspect::tx::push_form(&checked.trx, &cfd, signatures.as_slice())?;
    let loaded = super::inspect::tx::Loaded {
        trx: checked.trx,
        context_free_data: cfd,
        signatures: vec![],
    };
    Ok(json!({
        "id": r.id,
        "state": r.state,
        "requester": r.requester,
        "public_key": r.public_key,
        "chain_id": chain_id.to_string(),
        "threshold": r.threshold,
        "set": r.set,
        "approvers": r.approvers,
        "approved_by": r.approved_by,
        "created": oryx_proto::antelope::TimePointSec(r.created),
        "expires": oryx_proto::antelope::TimePointSec(r.expires),
        "signing_digest": checked.signing_digest.to_string(),
        "binding_digest": checked.binding_digest.to_string(),
        "signature": r.signature.as_ref().map(|s| s.text.clone()),
        "packed_trx": hex::encode(&r.packed_trx),
        "context_free_data": r.context_free_data.iter().map(hex::encode).collect::<Vec<_>>(),
                "transaction": super::inspect::tx::describe(&loaded, &chain_id),
        "msig_proposals": proposals,
        "summary": summary(&loaded.trx),
        "approvals": r.approvals.iter().map(|a| json!({"approver": a.approver, "signature": a.signature})).collect::<Vec<_>>(),
        "audit": r.audit.as_ref().map(|a| json!({"seq": a.seq, "hash": a.hash})),
        "signed_transaction": push,
    }))
}

/// One line per action, for telling requests apart: transfers with their amount and
/// recipient, other actions by name and authorization.
pub fn summary(trx: &Transaction) -> Vec<String> {
    trx.actions
        .iter()
        .map(|a| match a.system_action() {
            Some(Ok(oryx_proto::antelope::SystemAction::Transfer(t))) => {
                format!("transfer {} {} → {} {:?}", t.quantity, t.from, t.to, t.memo)
            }
            _ => format!(
                "{}::{} ({})",
                a.account,
                a.name,
                a.authorization
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect()
}

/// Reads a request back from its JSON form.
pub fn from_json(v: &Value) -> Result<grpc::ApprovalRequest, CliError> {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| CliError::Other(format!("request file: missing {k}")))
    };
    let hexf = |k: &str| -> Result<Vec<u8>, CliError> {
        hex::decode(s(k)?).map_err(|e| CliError::Other(format!("request file: {k}: {e}")))
    };
    let cfd = v
        .get("context_free_data")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(hex::decode)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|e| CliError::Other(format!("request file: context_free_data: {e}")))?
        .unwrap_or_default();
    // Older request files have no proposals; `check` then refuses any approve.
    let proposals = match v.get("msig_proposals") {
        None => Vec::new(),
        Some(list) => list
            .as_array()
            .ok_or_else(|| CliError::Other("request file: msig_proposals is not a list".into()))?
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let text = p.get("packed_trx").and_then(Value::as_str).ok_or_else(|| {
                    CliError::Other(format!(
                        "request file: msig_proposals[{k}]: missing packed_trx"
                    ))
                })?;
                hex::decode(text).map_err(|e| {
                    CliError::Other(format!("request file: msig_proposals[{k}].packed_trx: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let approvers = v
        .get("approvers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let expires = match v.get("expires").and_then(Value::as_str) {
        Some(t) => {
            t.parse::<oryx_proto::antelope::TimePointSec>()
                .map_err(|e| CliError::Other(format!("request file: expires: {e}")))?
                .0
        }
        None => 0,
    };
    Ok(grpc::ApprovalRequest {
        id: s("id")?.to_string(),
        approvers,
        expires,
        set: v
            .get("set")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        state: v
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        msig_proposals: proposals,
        public_key: s("public_key")?.to_string(),
        chain_id: hexf("chain_id")?,
        packed_trx: hexf("packed_trx")?,
        context_free_data: cfd,
        signing_digest: hexf("signing_digest")?,
        binding_digest: hexf("binding_digest")?,
        ..Default::default()
    })
}
