//! `oryx key …`: key conversions and development keys.

use clap::Subcommand;
use serde_json::Value;

use super::CliError;

pub mod convert;
pub mod generate;

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum Key {
    /// Show every string form of a public or private key.
    Convert(convert::Convert),
    /// Generate a software key (development and approver keys; producer keys belong in an HSM).
    Generate(generate::Generate),
}

impl Key {
    /// Runs the subcommand.
    pub fn run(&self) -> Result<Value, CliError> {
        match self {
            Key::Convert(c) => c.run(),
            Key::Generate(c) => c.run(),
        }
    }
}
