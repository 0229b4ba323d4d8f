//! `oryx-signer watermark export [--out FILE]`: every watermark as a JSON array.

use std::path::PathBuf;

use clap::Args;

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
    pub fn run(self) -> Result<(), String> {
        let config = self.config.load()?;
        let store = crate::watermark::open(&config.watermarks, crate::watermark::Access::Read)
            .map_err(|e| e.to_string())?;
        let json = serde_json::to_string_pretty(&store.export().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        match self.out {
            Some(path) => {
                std::fs::write(&path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))
            }
            None => {
                println!("{json}");
                Ok(())
            }
        }
    }
}
