//! `oryx-signer watermark show|export|import|migrate|unfence`: inspect watermarks and move them between
//! signers (as JSON) or from the file store into etcd, so a key can move without a gap.

use clap::Subcommand;

use crate::cli_error::CliError;
use crate::watermark::{WatermarkRecord, WatermarkStore};

pub mod export;
pub mod import;
pub mod migrate;
pub mod show;
pub mod unfence;

/// `records` from the store as they stand now: with the file store, raised by the reservations
/// the audit log holds beyond the last write-ahead checkpoint (a running signer's last second,
/// or what a crash left out of the files; see `crate::wal`). etcd is current as it is.
fn current(
    config: &crate::config::Config,
    records: Vec<crate::watermark::WatermarkRecord>,
) -> Result<Vec<crate::watermark::WatermarkRecord>, CliError> {
    if config.watermarks.etcd.is_some() {
        return Ok(records);
    }
    crate::wal::with_pending(records, &config.watermarks.dir, &config.audit.path)
        .map_err(CliError::Other)
}

/// Checks every record against `store` first (so a bad source changes nothing), then imports
/// them; a watermark is never lowered unless `force`. Returns how many were imported.
fn import_all(
    store: &dyn WatermarkStore,
    records: &[WatermarkRecord],
    force: bool,
    source: &str,
) -> Result<usize, CliError> {
    for r in records {
        let key = r.watermark_key();
        let current = store.get(&key).map_err(CliError::other)?;
        crate::watermark::check_import(current.as_ref(), r, force)
            .map_err(|e| CliError::Other(format!("{source}: {e}; nothing imported")))?;
    }
    for r in records {
        store.import(r, force).map_err(CliError::other)?;
    }
    Ok(records.len())
}

/// Watermark commands.
#[derive(Debug, Subcommand)]
pub enum Watermark {
    /// Print every watermark.
    Show(show::Show),
    /// Write every watermark as JSON.
    Export(export::Export),
    /// Read watermarks from JSON; refuses to lower one unless `--force`.
    Import(import::Import),
    /// Copy the file store's watermarks into etcd (`[watermarks.etcd]`), never lowering one.
    Migrate(migrate::Migrate),
    /// Remove the fence a replica set on etcd after finding it rolled back.
    Unfence(unfence::Unfence),
}

impl Watermark {
    /// Runs the subcommand.
    pub fn run(self) -> Result<(), CliError> {
        match self {
            Watermark::Show(c) => c.run(),
            Watermark::Export(c) => c.run(),
            Watermark::Import(c) => c.run(),
            Watermark::Migrate(c) => c.run(),
            Watermark::Unfence(c) => c.run(),
        }
    }
}
