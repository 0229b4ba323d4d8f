//! `oryx approve`: sign a request's binding digest with the approver's own key.
//!
//! Online: `oryx approve ID --key-file FILE` fetches the request, recomputes the transaction's
//! signing digest and the binding digest itself (refusing if the signer's differ), signs and
//! submits. Offline: `oryx approve --offline --request REQ.json --key-file FILE --out A.json`
//! does the same from a request file carried across the air gap (`oryx approvals show --json`)
//! and writes the approval for `oryx approvals submit`.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::grpc;
use serde_json::{Value, json};

use crate::backend::soft::SoftKey;
use crate::cli::remote::SignerArgs;
use crate::cli::sign_digest::read_key_file;
use crate::cli::{CliError, read_input};
use crate::signing::{SignOptions, sign};

/// Arguments.
#[derive(Debug, Args)]
pub struct Approve {
    /// The request id (online).
    id: Option<String>,
    /// The approver's private key file.
    #[arg(long)]
    key_file: PathBuf,
    /// Work from a request file instead of the signer.
    #[arg(long, requires = "request", requires = "out")]
    offline: bool,
    /// The request file (offline).
    #[arg(long)]
    request: Option<PathBuf>,
    /// Where to write the approval (offline).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    signer: Option<SignerArgs>,
}

impl Approve {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let key = SoftKey::new(read_key_file(&self.key_file)?);
        if self.offline {
            let (Some(req_path), Some(out)) = (&self.request, &self.out) else {
                return Err(CliError::Other(
                    "--offline needs --request and --out".into(),
                ));
            };
            let v: Value = serde_json::from_str(&read_input(req_path)?)
                .map_err(|e| CliError::Other(format!("{}: {e}", req_path.display())))?;
            let req = super::approvals::from_json(&v)?;
            let checked = super::approvals::check(&req)?;
            let signature = sign(&key, &checked.binding_digest, SignOptions::default())
                .map_err(|e| CliError::Other(e.to_string()))?
                .signature;
            let approval = json!({"id": req.id, "signature": signature.to_string(), "binding_digest": checked.binding_digest.to_string()});
            std::fs::write(out, format!("{approval:#}\n")).map_err(|e| CliError::io(out, e))?;
            return Ok(approval);
        }
        let (Some(id), Some(signer)) = (&self.id, &self.signer) else {
            return Err(CliError::Other(
                "give the request id and the signer connection, or --offline".into(),
            ));
        };
        let id_for_get = id.clone();
        let req = signer.call(async move |c| {
            c.get_approval(grpc::GetApprovalRequest { id: id_for_get })
                .await
                .map(|r| r.into_inner())
        })?;
        let checked = super::approvals::check(&req)?;
        let signature = sign(&key, &checked.binding_digest, SignOptions::default())
            .map_err(|e| CliError::Other(e.to_string()))?
            .signature;
        let id = id.clone();
        let sig_text = signature.to_string();
        let r = signer.call(async move |c| {
            c.approve(grpc::ApproveRequest {
                id,
                signature: sig_text,
            })
            .await
            .map(|r| r.into_inner())
        })?;
        Ok(
            json!({"id": r.id, "state": r.state, "approvals": format!("{} of {}", r.approved_by.len(), r.threshold), "signature": r.signature.map(|s| s.text)}),
        )
    }
}
