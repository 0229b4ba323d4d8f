//! `oryx approvals list`: every request the signer keeps, newest last.

use clap::Args;
use oryx_proto::grpc;
use serde_json::{Value, json};

use crate::cli::CliError;
use crate::cli::remote::SignerArgs;

/// Arguments.
#[derive(Debug, Args)]
pub struct List {
    #[command(flatten)]
    signer: SignerArgs,
}

impl List {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let list = self.signer.call(async |c| {
            c.list_approvals(grpc::ListApprovalsRequest {})
                .await
                .map(|r| r.into_inner().requests)
        })?;
        Ok(Value::Array(
            list.iter()
                .map(|r| {
                    let summary =
                        oryx_proto::antelope::transaction::Transaction::decode(&r.packed_trx)
                            .map(|t| super::summary(&t))
                            .unwrap_or_else(|e| {
                                vec![format!("the transaction does not decode: {e}")]
                            });
                    json!({
                        "id": r.id,
                        "summary": summary,
                        "state": r.state,
                        "requester": r.requester,
                        "public_key": r.public_key,
                        "approvals": format!("{} of {}", r.approved_by.len(), r.threshold),
                        "expires": oryx_proto::antelope::TimePointSec(r.expires),
                    })
                })
                .collect(),
        ))
    }
}
