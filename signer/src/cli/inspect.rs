//! `oryx inspect …`: decode what is about to be signed and show the digest the chain checks.

use clap::Subcommand;
use serde_json::Value;

use super::CliError;

pub mod block;
pub mod blocklog;
pub mod sig;
pub mod tx;

/// What to inspect.
#[derive(Debug, Subcommand)]
pub enum Inspect {
    /// A transaction: hex of pack(transaction) or of a packed_transaction, or a JSON file.
    Tx(tx::InspectTx),
    /// A block header (or signed block header) in hex.
    Block(block::InspectBlock),
    /// A block log written by `oryx-node produce`: list its blocks, or `--verify` it.
    Blocklog(blocklog::InspectBlocklog),
    /// A signature over a digest: which key made it, and whether nodes accept it.
    Sig(sig::InspectSig),
}

impl Inspect {
    /// Runs the subcommand.
    pub fn run(&self) -> Result<Value, CliError> {
        match self {
            Inspect::Tx(c) => c.run(),
            Inspect::Block(c) => c.run(),
            Inspect::Sig(c) => c.run(),
            Inspect::Blocklog(c) => c.run(),
        }
    }
}
