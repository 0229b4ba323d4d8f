//! `oryx-signer policy check|explain`: validate and lint a policy file before it goes live, and
//! see which rule decides a given request.

use clap::Subcommand;

pub mod check;
pub mod explain;

/// Policy commands.
#[derive(Debug, Subcommand)]
pub enum Policy {
    /// Parse, validate and lint a policy file: errors name the line; warnings flag risky rules.
    Check(check::Check),
    /// Show which rule decides a request (given as JSON) and why.
    Explain(explain::Explain),
}

impl Policy {
    /// Runs the subcommand.
    pub fn run(self) -> Result<(), String> {
        match self {
            Policy::Check(c) => c.run(),
            Policy::Explain(c) => c.run(),
        }
    }
}
