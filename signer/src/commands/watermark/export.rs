//! `oryx-signer watermark export [--out FILE]`: every watermark as a JSON array.

use std::path::PathBuf;

use clap::Args;

use crate::cli_error::CliError;
use crate::commands::ConfigArg;

/// Arguments.
#[derive(Debug, Args)]
pub struct Export {
    #[command(flatten)]
    config: ConfigArg,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Export {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let config = self.config.load()?;
        let store = crate::watermark::open(&config.watermarks, crate::watermark::Access::Read)
            .map_err(CliError::other)?;
        let records = super::current(&config, store.export().map_err(CliError::other)?)?;
        let json = serde_json::to_string_pretty(&records).map_err(CliError::other)?;
        match self.out {
            Some(path) => std::fs::write(&path, json + "\n").map_err(|e| CliError::io(&path, e)),
            None => {
                println!("{json}");
                Ok(())
            }
        }
    }
}
