//! `oryx-signer policy check|explain`: validate and lint a policy file before it goes live, and
//! see which rule decides a given request.

use clap::Subcommand;

use crate::cli_error::CliError;

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
    pub fn run(self) -> Result<(), CliError> {
        match self {
            Policy::Check(c) => c.run(),
            Policy::Explain(c) => c.run(),
        }
    }
}

/// Reads and parses a policy file; errors name the file (and, for a bad policy, the line).
fn read_policy(path: &std::path::Path) -> Result<oryx_policy::Policy, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
    oryx_policy::Policy::parse(&text)
        .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))
}
