//! `oryx-signer watermark migrate [--from DIR]`: copy every watermark of a single signer's file
//! store (`[watermarks] dir`, or `--from`) into the etcd store the config names, the step from
//! one signer to replicas. Every record is checked against etcd before any is written, and none
//! is lowered; stop the single signer first, so its watermarks no longer move.

use std::path::PathBuf;

use clap::Args;

use crate::cli_error::CliError;
use crate::commands::ConfigArg;
use crate::watermark::WatermarkStore as _;
use crate::watermark::file::FileStore;

/// Arguments.
#[derive(Debug, Args)]
pub struct Migrate {
    #[command(flatten)]
    config: ConfigArg,
    /// The file store to copy from (default: `[watermarks] dir`).
    #[arg(long)]
    from: Option<PathBuf>,
}

impl Migrate {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let config = self.config.load()?;
        if config.watermarks.etcd.is_none() {
            return Err(CliError::Other(
                "migrate copies into etcd: add [watermarks.etcd] to the config first".into(),
            ));
        }
        let from = self.from.unwrap_or_else(|| config.watermarks.dir.clone());
        let records = FileStore::open_read_only(&from)
            .and_then(|s| s.export())
            .map_err(CliError::other)?;
        // Reservations the log holds beyond the file store's last checkpoint count too.
        let records = crate::wal::with_pending(records, &from, &config.audit.path)
            .map_err(CliError::Other)?;
        let store = crate::watermark::open(&config.watermarks, crate::watermark::Access::Import)
            .map_err(CliError::other)?;
        let n = super::import_all(&*store, &records, false, &from.display().to_string())?;
        println!(
            "migrated {n} watermark(s) from {} into etcd",
            from.display()
        );
        Ok(())
    }
}
