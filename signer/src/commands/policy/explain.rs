//! `oryx-signer policy explain FILE --request REQ.json`: which rule decides a request, and why.
//!
//! REQ.json: `{"principal": "...", "key": "PUB_K1_...", "chain_id": "eos" | "<hex>",
//! "now": "2026-11-21T12:00:00" (optional, default now), and one of
//! "block": {"block_num": N, "producer": "name"}, "digest": true, or
//! "transaction": {…cleos JSON…} (with "context_free_data": true if it carries some, and
//! "msig_proposals": [{…cleos JSON…}, …] for the proposals its eosio.msig approves)}`.
//! Counters start empty (no earlier spend or rate hits); `--config` supplies the held keys.

use std::path::PathBuf;

use clap::Args;
use oryx_policy::{Body, Context, MemoryCounters, Request};
use oryx_proto::antelope::chain::parse_chain_id;
use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Name, PublicKey, TimePointSec};
use serde::Deserialize;

use crate::cli_error::CliError;

/// Arguments.
#[derive(Debug, Args)]
pub struct Explain {
    /// The policy file (TOML).
    file: PathBuf,
    /// The request (JSON).
    #[arg(long)]
    request: PathBuf,
    /// A signer config whose `[[keys]]` are the held keys (for `regproducer` rules) and whose
    /// `[[chains]]` names the policy and the request may use.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockJson {
    block_num: u32,
    producer: Name,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestJson {
    principal: String,
    key: PublicKey,
    chain_id: String,
    #[serde(default)]
    now: Option<TimePointSec>,
    #[serde(default)]
    block: Option<BlockJson>,
    #[serde(default)]
    digest: bool,
    #[serde(default)]
    transaction: Option<Transaction>,
    #[serde(default)]
    context_free_data: bool,
    /// The proposed transactions of the transaction's eosio.msig approves, in action order.
    #[serde(default)]
    msig_proposals: Vec<Transaction>,
}

impl Explain {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let config = super::load_config(self.config.as_deref())?;
        let policy = super::read_policy(&self.file, config.as_ref())?;
        let in_request =
            |e: &dyn std::fmt::Display| CliError::Other(format!("{}: {e}", self.request.display()));
        let req_text =
            std::fs::read_to_string(&self.request).map_err(|e| CliError::io(&self.request, e))?;
        let r: RequestJson = serde_json::from_str(&req_text).map_err(|e| in_request(&e))?;
        let body = match (r.block, r.digest, r.transaction) {
            (Some(b), false, None) => Body::Block {
                block_num: b.block_num,
                producer: b.producer,
            },
            (None, true, None) => Body::Digest,
            (None, false, Some(trx)) => Body::Transaction {
                trx,
                has_context_free_data: r.context_free_data,
                msig_proposals: r.msig_proposals,
            },
            _ => {
                return Err(CliError::Other(format!(
                    "{}: give exactly one of block, digest or transaction",
                    self.request.display()
                )));
            }
        };
        let now = r.now.unwrap_or_else(crate::clock::now_secs);
        let chain_id = match config.as_ref().and_then(|c| c.chain_id(&r.chain_id)) {
            Some(id) => id,
            None => parse_chain_id(&r.chain_id).map_err(|e| in_request(&e))?,
        };
        let held_keys = config
            .iter()
            .flat_map(|c| c.keys.iter().map(|k| k.public_key))
            .collect();
        let request = Request {
            principal: r.principal,
            key: r.key,
            chain_id,
            now,
            body,
        };
        let explanation = policy.explain(&request, &Context { held_keys }, &MemoryCounters::new());
        println!("{explanation}");
        Ok(())
    }
}
