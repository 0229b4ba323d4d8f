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

/// Loads the optional `--config` of a policy command.
fn load_config(path: Option<&std::path::Path>) -> Result<Option<crate::config::Config>, CliError> {
    Ok(path.map(crate::config::Config::load).transpose()?)
}

/// Reads and parses a policy file, its chain names resolved by `config`'s `[[chains]]` when
/// given; errors name the file (and, for a bad policy, the line).
fn read_policy(
    path: &std::path::Path,
    config: Option<&crate::config::Config>,
) -> Result<oryx_policy::Policy, CliError> {
    let chains = config
        .map(crate::config::Config::chain_names)
        .unwrap_or_default();
    crate::config::load_policy(path, &chains).map_err(|e| {
        CliError::Other(if config.is_none() && e.contains("chains:") {
            format!("{e} (a chain named as in the signer config needs --config)")
        } else {
            e
        })
    })
}
