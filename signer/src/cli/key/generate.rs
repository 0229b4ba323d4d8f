//! `oryx key generate [--r1] [--out FILE]`: a new software key from the OS random source. With
//! `--out` the private key goes to a new file with mode 0600 and only the public key is printed.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::antelope::KeyType;
use serde_json::{Value, json};

use crate::backend::{KeyBackend, soft::SoftKey};
use crate::cli::CliError;

/// Arguments.
#[derive(Debug, Args)]
pub struct Generate {
    /// Generate a P-256 (R1) key instead of secp256k1 (K1).
    #[arg(long)]
    pub r1: bool,
    /// Write the private key (`PVT_…`) to this new file (mode 0600) instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl Generate {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let kind = if self.r1 { KeyType::R1 } else { KeyType::K1 };
        let key = SoftKey::generate(kind).map_err(|e| CliError::Other(e.to_string()))?;
        let mut out = super::convert::public_forms(key.public_key());
        let private = key.private_key();
        match &self.out {
            Some(path) => {
                let line =
                    zeroize::Zeroizing::new(format!("{}\n", private.to_pvt_string().as_str()));
                crate::durable::create_new(path, line.as_bytes(), 0o600)
                    .map_err(|e| CliError::io(&e.path, e.source))?;
                out["private_key_file"] = json!(path.display().to_string());
            }
            None => {
                out["private_key"] = json!(private.to_pvt_string().as_str());
                out["wif"] = json!(private.to_wif().as_deref().map(|w| w.as_str()));
            }
        }
        Ok(out)
    }
}
