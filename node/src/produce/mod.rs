//! The content-aware block assembler (`oryx-node produce`).
//!
//! Guards: every header it asks the signer to sign is a real Antelope header whose digest the
//! signer recomputes; every signature it appends to the block log verifies by recovery.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[produce]` in `oryx-node.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProduceConfig {
    /// The chain (name or 64 hex characters).
    pub chain_id: String,
    /// The producer account.
    pub producer: String,
    /// The producer's block-signing key (held by the signer).
    pub public_key: String,
    /// Directory of the block log.
    pub block_log: PathBuf,
    /// Directory the relay drops transactions into.
    pub spool: Option<PathBuf>,
    /// Legacy (pre-Savanna) headers instead of Savanna.
    #[serde(default)]
    pub legacy: bool,
}

impl ProduceConfig {
    /// Makes relative paths relative to `base`, and checks values.
    pub fn resolve(&mut self, base: &Path) -> Result<(), String> {
        for p in [&mut self.block_log].into_iter().chain(self.spool.as_mut()) {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(())
    }
}
