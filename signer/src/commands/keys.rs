//! `oryx-signer keys generate|list|registry`.

use clap::Subcommand;

use crate::cli_error::CliError;

pub mod generate;
pub mod list;
pub mod registry;

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum Keys {
    /// Generate a key inside a configured backend (non-extractable where the device allows).
    Generate(generate::Generate),
    /// List the keys every configured backend holds.
    List(list::List),
    /// Show every key the signer serves, with its lifecycle state (active or retired,
    /// predecessor, successor), from the config and the key registry.
    Registry(registry::ShowRegistry),
}

impl Keys {
    /// Runs the subcommand.
    pub fn run(self) -> Result<(), CliError> {
        match self {
            Keys::Generate(c) => c.run(),
            Keys::List(c) => c.run(),
            Keys::Registry(c) => c.run(),
        }
    }
}
