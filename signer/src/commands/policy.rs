//! `oryx-signer policy check`: validate and lint a policy file before it goes live.

use clap::Subcommand;

pub mod check;

/// Policy commands.
#[derive(Debug, Subcommand)]
pub enum Policy {
    /// Parse, validate and lint a policy file: errors name the line; warnings flag risky rules.
    Check(check::Check),
}

impl Policy {
    /// Runs the subcommand.
    pub fn run(self) -> Result<(), String> {
        match self {
            Policy::Check(c) => c.run(),
        }
    }
}
