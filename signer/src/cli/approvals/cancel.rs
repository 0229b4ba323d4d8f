//! `oryx approvals cancel ID`: the requester (or an admin) withdraws a pending request; no
//! approval can sign it after.

use clap::Args;
use oryx_proto::grpc;
use serde_json::{Value, json};

use crate::cli::CliError;
use crate::cli::remote::SignerArgs;

/// Arguments.
#[derive(Debug, Args)]
pub struct Cancel {
    #[command(flatten)]
    signer: SignerArgs,
    /// The request id.
    id: String,
}

impl Cancel {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let id = self.id.clone();
        let r = self.signer.call(async move |c| {
            c.cancel_approval(grpc::CancelApprovalRequest { id })
                .await
                .map(|r| r.into_inner())
        })?;
        Ok(json!({"id": r.id, "state": r.state}))
    }
}
