//! `oryx-signer watermark import FILE [--force]`: set watermarks from an export. The whole file
//! is parsed and checked before anything is written; a watermark is never lowered without
//! `--force`. With the file store, run it while the signer is stopped; into etcd
//! (`[watermarks.etcd]`) it may run beside the replicas (every write is a compare-and-swap), and
//! it is how a shared watermark starts: nothing signs from a watermark etcd does not hold.

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
        // After a crash the files may lag the log's write-ahead entries: recover first (the
        // daemon is stopped: the store holds its lock), so nothing is checked against, or
        // lowered below, a stale file.
        if config.watermarks.etcd.is_none() && config.audit.path.exists() {
            let audit =
                crate::audit::AuditLog::open(&config.audit.path).map_err(CliError::other)?;
            crate::wal::recover(&config.watermarks.dir, &audit, store.as_ref())
                .map_err(CliError::Other)?;
        }
        let n = super::import_all(
            &*store,
            &records,
            self.force,
            &self.file.display().to_string(),
        )?;
        println!("imported {n} watermark(s)");
        Ok(())
    }
}
