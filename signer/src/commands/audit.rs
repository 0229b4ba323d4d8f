//! `oryx-signer audit verify`.

use clap::Subcommand;

use crate::cli_error::CliError;

pub mod verify;

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum Audit {
    /// Check the hash chain of an audit log: finds edits, deletions and reordering.
    Verify(verify::Verify),
}

impl Audit {
    /// Runs the subcommand.
    pub fn run(self) -> Result<(), CliError> {
        match self {
            Audit::Verify(c) => c.run(),
        }
    }
}
