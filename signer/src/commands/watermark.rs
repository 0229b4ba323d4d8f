//! `oryx-signer watermark show|export|import`: inspect watermarks and move them between signers
//! as JSON, so a key can move without a gap.

use clap::Subcommand;

use crate::cli_error::CliError;

pub mod export;
pub mod import;
pub mod show;

/// Watermark commands.
#[derive(Debug, Subcommand)]
pub enum Watermark {
    /// Print every watermark.
    Show(show::Show),
    /// Write every watermark as JSON.
    Export(export::Export),
    /// Read watermarks from JSON; refuses to lower one unless `--force`.
    Import(import::Import),
}

impl Watermark {
    /// Runs the subcommand.
    pub fn run(self) -> Result<(), CliError> {
        match self {
            Watermark::Show(c) => c.run(),
            Watermark::Export(c) => c.run(),
            Watermark::Import(c) => c.run(),
        }
    }
}
