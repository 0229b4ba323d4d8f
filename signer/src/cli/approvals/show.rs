//! `oryx approvals show ID`: the request with its transaction decoded and both digests
//! recomputed here, and for an eosio.msig approve, the proposed transaction decoded beside it
//! (`msig_proposals`, each checked against the approve's `proposal_hash`); `--json` output is
//! what `oryx approve --offline` reads.

use clap::Args;
use oryx_proto::grpc;
use serde_json::Value;

use crate::cli::CliError;
use crate::cli::remote::SignerArgs;

/// Arguments.
#[derive(Debug, Args)]
pub struct Show {
    #[command(flatten)]
    signer: SignerArgs,
    /// The request id.
    id: String,
}

impl Show {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let id = self.id.clone();
        let r = self.signer.call(async move |c| {
            c.get_approval(grpc::GetApprovalRequest { id })
                .await
                .map(|r| r.into_inner())
        })?;
        super::to_json(&r)
    }
}
