//! `oryx-signer keys generate|list`.

use clap::Subcommand;

pub mod generate;
pub mod list;

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum Keys {
    /// Generate a key inside a configured backend (non-extractable where the device allows).
    Generate(generate::Generate),
    /// List the keys every configured backend holds.
    List(list::List),
}

impl Keys {
    /// Runs the subcommand.
    pub fn run(self) -> Result<(), String> {
        match self {
            Keys::Generate(c) => c.run(),
            Keys::List(c) => c.run(),
        }
    }
}
