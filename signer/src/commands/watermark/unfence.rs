//! `oryx-signer watermark unfence`: removes the fence a replica set on the shared (etcd)
//! watermark store when it found the store rolled back. Run it with every replica stopped, then
//! re-import the newest watermarks (`watermark import`, which never lowers one) before starting
//! them again.

use clap::Args;

use crate::cli_error::CliError;
use crate::commands::ConfigArg;
use crate::watermark::etcd::{EtcdSettings, EtcdStore};

/// Arguments.
#[derive(Debug, Args)]
pub struct Unfence {
    #[command(flatten)]
    config: ConfigArg,
}

impl Unfence {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let config = self.config.load()?;
        let etcd = config.watermarks.etcd.as_ref().ok_or_else(|| {
            CliError::Other(
                "unfence applies to the etcd store: the config has no [watermarks.etcd]".into(),
            )
        })?;
        let store = EtcdSettings::from_config(etcd, None)
            .and_then(|s| EtcdStore::open(&s, None))
            .map_err(CliError::other)?;
        if store.unfence().map_err(CliError::other)? {
            println!("fence removed: re-import the newest watermarks before starting the replicas");
        } else {
            println!("the store was not fenced");
        }
        Ok(())
    }
}
