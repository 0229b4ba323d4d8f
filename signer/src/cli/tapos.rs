//! `oryx tapos FILE|-`: the TaPoS fields (`ref_block_num`, `ref_block_prefix`, `expiration`) of
//! a transaction to build on an air-gapped host, from the JSON answer of
//! `/v1/chain/get_info` or `/v1/chain/get_block` that the operator carried over.
//!
//! Guards: an inconsistent or edited answer is refused (see
//! [`oryx_proto::antelope::tapos::TaposSource`]), and the lifetime is bounded by what nodeos
//! accepts (3600 s) unless the transaction is an `eosio.msig` proposal (`--msig`).

use clap::Args;
use oryx_proto::antelope::chain::chain_name;
use oryx_proto::antelope::tapos::{
    DEFAULT_EXPIRE_IN_SECS, MAX_PROPOSAL_LIFETIME_SECS, MAX_TRANSACTION_LIFETIME_SECS, RefBlock,
    TaposSource,
};
use serde_json::{Value, json};

use crate::cli::{CliError, read_input_or_stdin};

/// Arguments.
#[derive(Debug, Args)]
pub struct Tapos {
    /// A file holding the JSON answer of get_info or get_block, or `-` for stdin.
    pub input: String,
    /// Seconds from the head block time (get_info) or the block time (get_block) until the
    /// transaction expires. At most 3600 (nodeos' max_transaction_lifetime), or 30 days with
    /// `--msig`.
    #[arg(long, default_value_t = DEFAULT_EXPIRE_IN_SECS)]
    pub expire_in: u32,
    /// Reference the head block instead of the last irreversible one (get_info only; the
    /// transaction fails if that block is forked out).
    #[arg(long)]
    pub head: bool,
    /// The transaction will be proposed through eosio.msig, so it may live longer than 3600 s.
    #[arg(long)]
    pub msig: bool,
}

impl Tapos {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let text = read_input_or_stdin(&self.input)?;
        let which = if self.head {
            RefBlock::Head
        } else {
            RefBlock::LastIrreversible
        };
        let src = TaposSource::from_json(&text, which)?;
        let max = if self.msig {
            MAX_PROPOSAL_LIFETIME_SECS
        } else {
            MAX_TRANSACTION_LIFETIME_SECS
        };
        let expiration = src.expiration(self.expire_in, max)?;
        let tapos = src.tapos();
        Ok(json!({
            "chain_id": src.chain_id.map(|c| c.to_string()),
            "chain": src.chain_id.as_ref().and_then(chain_name),
            "ref_block_id": src.block_id.to_string(),
            "ref_block_num_full": src.block_num,
            "ref_block_num": tapos.ref_block_num,
            "ref_block_prefix": tapos.ref_block_prefix,
            "expiration": expiration.to_string(),
        }))
    }
}
