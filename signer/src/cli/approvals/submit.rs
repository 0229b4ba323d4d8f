//! `oryx approvals submit FILE`: hand an approval written offline (`oryx approve --offline`)
//! to the signer. The approval authenticates itself by its signature; any operator may carry it.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::grpc;
use serde_json::{Value, json};

use crate::cli::remote::SignerArgs;
use crate::cli::{CliError, read_input};

/// Arguments.
#[derive(Debug, Args)]
pub struct Submit {
    #[command(flatten)]
    signer: SignerArgs,
    /// The approval file (`{"id": …, "signature": …}`).
    file: PathBuf,
}

impl Submit {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let v: Value = serde_json::from_str(&read_input(&self.file)?)
            .map_err(|e| CliError::Other(format!("{}: {e}", self.file.display())))?;
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| CliError::Other(format!("{}: missing {k}", self.file.display())))
        };
        let (id, signature) = (field("id")?, field("signature")?);
        let r = self.signer.call(async move |c| {
            c.approve(grpc::ApproveRequest { id, signature })
                .await
                .map(|r| r.into_inner())
        })?;
        Ok(
            json!({"id": r.id, "state": r.state, "approvals": format!("{} of {}", r.approved_by.len(), r.threshold), "signature": r.signature.map(|s| s.text)}),
        )
    }
}
