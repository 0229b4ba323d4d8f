//! `oryx-signer watermark import FILE [--force]`: set watermarks from an export. The whole file
//! is parsed and checked before anything is written; a watermark is never lowered without
//! `--force`. Run it while the signer is stopped.

use std::path::PathBuf;

use clap::Args;

use crate::cli_error::CliError;
use crate::commands::ConfigArg;

use crate::watermark::WatermarkRecord;

/// Arguments.
#[derive(Debug, Args)]
pub struct Import {
    #[command(flatten)]
    config: ConfigArg,
    /// A JSON array as written by `watermark export`.
    file: PathBuf,
    /// Lower watermarks if the file says so (dangerous: reopens signed heights).
    #[arg(long)]
    force: bool,
}

impl Import {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let config = self.config.load()?;
        let text = std::fs::read_to_string(&self.file).map_err(|e| CliError::io(&self.file, e))?;
        let records: Vec<WatermarkRecord> = serde_json::from_str(&text)
            .map_err(|e| CliError::Other(format!("{}: {e}", self.file.display())))?;
        let store = crate::watermark::open(&config.watermarks, crate::watermark::Access::Import)
            .map_err(CliError::other)?;
        // Check every record before writing any, so a bad file changes nothing.
        for r in &records {
            let key = crate::watermark::WatermarkKey {
                chain_id: r.chain_id,
                key: r.key,
            };
            let current = store.get(&key).map_err(CliError::other)?;
            crate::watermark::check_import(current.as_ref(), r, self.force).map_err(|e| {
                CliError::Other(format!("{}: {e}; nothing imported", self.file.display()))
            })?;
        }
        for r in &records {
            store.import(r, self.force).map_err(CliError::other)?;
        }
        println!("imported {} watermark(s)", records.len());
        Ok(())
    }
}
