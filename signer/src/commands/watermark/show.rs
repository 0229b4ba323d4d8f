//! `oryx-signer watermark show`: one line per (chain, key).

use clap::Args;

use crate::cli_error::CliError;
use crate::commands::ConfigArg;

/// Arguments.
#[derive(Debug, Args)]
pub struct Show {
    #[command(flatten)]
    config: ConfigArg,
}

impl Show {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let config = self.config.load()?;
        let store = crate::watermark::open(&config.watermarks, crate::watermark::Access::Read)
            .map_err(CliError::other)?;
        for r in super::current(&config, store.export().map_err(CliError::other)?)? {
            let w = &r.watermark;
            println!(
                "{} {} block {} slot {} wall_slot {} digest {} {}",
                r.chain_id,
                r.scope,
                w.block_num,
                w.slot,
                w.wall_slot,
                w.digest,
                if w.signature.is_some() {
                    "signed"
                } else {
                    "reserved (not signed)"
                }
            );
        }
        Ok(())
    }
}
