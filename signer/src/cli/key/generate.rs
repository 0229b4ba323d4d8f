//! `oryx key generate [--r1] [--out FILE]`: a new software key from the OS random source. With
//! `--out` the private key goes to a new file with mode 0600 and only the public key is printed.

use std::io::Write as _;
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
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(path).map_err(|e| CliError::io(path, e))?;
                f.write_all(format!("{}\n", private.to_pvt_string().as_str()).as_bytes())
                    .map_err(|e| CliError::io(path, e))?;
                f.sync_all().map_err(|e| CliError::io(path, e))?;
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
