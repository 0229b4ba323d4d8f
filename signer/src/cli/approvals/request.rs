//! `oryx approvals request TRX --key PUB --chain-id C`: a requester's round trip. Submits a
//! transaction (JSON or packed, as `oryx inspect tx` reads it) for signing; when the policy asks
//! for approvals, prints the request id and who may approve; when it is signed (at once, or on a
//! later call once approved — the same transaction is the same request), writes the signed
//! transaction in the form `cleos push transaction` and `oryx inspect tx` take.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::antelope::chain::parse_chain_id;
use oryx_proto::antelope::{Pack as _, PublicKey, Signature};
use oryx_proto::grpc;
use serde_json::{Value, json};

use crate::cli::CliError;
use crate::cli::remote::{SignerArgs, refusal};

/// Arguments.
#[derive(Debug, Args)]
pub struct Request {
    #[command(flatten)]
    signer: SignerArgs,
    /// The transaction: a file, `-` for stdin, or the JSON/hex itself.
    trx: String,
    /// The key to sign with.
    #[arg(long)]
    key: PublicKey,
    /// The chain (a name such as `eos`, or 64 hex characters).
    #[arg(long)]
    chain_id: String,
    /// Where to write the signed transaction (default: printed).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Request {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let chain_id = parse_chain_id(&self.chain_id)?;
        let loaded = crate::cli::inspect::tx::load(&self.trx)?;
        let req = grpc::SignTransactionRequest {
            chain_id: chain_id.0.to_vec(),
            public_key: self.key.to_string(),
            transaction: Some(grpc::sign_transaction_request::Transaction::PackedTrx(
                loaded.trx.packed(),
            )),
            context_free_data: loaded
                .context_free_data
                .iter()
                .map(|b| b.0.clone())
                .collect(),
            msig_proposals: vec![],
        };
        let answer = self
            .signer
            .try_call(async move |c| c.sign_transaction(req).await.map(|r| r.into_inner()))?;
        match answer {
            Ok(resp) => {
                let text = resp.signature.map(|s| s.text).ok_or_else(|| {
                    CliError::Other("the signer answered without a signature".into())
                })?;
                let sig = Signature::parse(&text)?;
                let digest = loaded
                    .trx
                    .signing_digest(&chain_id, &loaded.context_free_data);
                if !sig.recovers_to(&digest, &self.key) {
                    return Err(CliError::Other(
                        "the signer's signature does not recover to the key over this transaction: not written".into(),
                    ));
                }
                let signed = crate::cli::inspect::tx::push_form(
                    &loaded.trx,
                    &loaded.context_free_data,
                    &[sig],
                )?;
                let mut out = json!({"state": "signed", "id": loaded.trx.id().to_string(),
                    "audit": resp.audit.map(|a| json!({"seq": a.seq, "hash": a.hash}))});
                match &self.out {
                    Some(path) => {
                        std::fs::write(path, format!("{signed:#}\n"))
                            .map_err(|e| CliError::io(path, e))?;
                        out["file"] = json!(path.display().to_string());
                        out["next"] = json!(format!(
                            "cleos push transaction --skip-sign {}",
                            path.display()
                        ));
                    }
                    None => out["transaction"] = signed,
                }
                Ok(out)
            }
            Err(status) if crate::client::reason(&status).as_deref() == Some("NEEDS_APPROVALS") => {
                let id = status
                    .metadata()
                    .get(grpc::REQUEST_ID_METADATA)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                Ok(json!({
                    "state": "waiting-for-approvals",
                    "request_id": id,
                    "message": status.message(),
                    "next": [
                        format!("approvers: `oryx approve {id}` (or offline from `oryx approvals show {id} --json`)"),
                        "then run this same command again: the same transaction is the same request, and it answers with the signed transaction".to_string(),
                        format!("to withdraw it: `oryx approvals cancel {id}`"),
                    ],
                }))
            }
            Err(status) => Err(refusal(&status)),
        }
    }
}
