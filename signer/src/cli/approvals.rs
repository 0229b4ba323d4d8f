//! `oryx approvals list|show|submit`: what waits for approval, in full, and carrying offline
//! approvals back to the signer.

use clap::Subcommand;
use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Bytes, Checksum256, PublicKey};
use oryx_proto::grpc;
use serde_json::{Value, json};

use super::CliError;

pub mod list;
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
}

impl Approvals {
    /// Runs the subcommand.
    pub fn run(&self) -> Result<Value, CliError> {
        match self {
            Approvals::List(c) => c.run(),
            Approvals::Show(c) => c.run(),
            Approvals::Submit(c) => c.run(),
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
    let loaded = super::inspect::tx::Loaded {
        trx: checked.trx,
        context_free_data: r.context_free_data.iter().cloned().map(Bytes).collect(),
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
    }))
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
    Ok(grpc::ApprovalRequest {
        id: s("id")?.to_string(),
        public_key: s("public_key")?.to_string(),
        chain_id: hexf("chain_id")?,
        packed_trx: hexf("packed_trx")?,
        context_free_data: cfd,
        signing_digest: hexf("signing_digest")?,
        binding_digest: hexf("binding_digest")?,
        ..Default::default()
    })
}
