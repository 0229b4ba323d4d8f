//! `oryx sign-digest --key-file FILE HEX`: sign a digest with a software key, exactly as nodeos
//! would (fc-exact for K1). For tests and offline use; production keys live in an HSM.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::antelope::{Checksum256, PrivateKey};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::backend::{KeyBackend, soft::SoftKey};
use crate::cli::{CliError, read_input};
use crate::signing::{SignOptions, sign};

/// Arguments.
#[derive(Debug, Args)]
pub struct SignDigest {
    /// File holding the private key (`PVT_K1_…`, `PVT_R1_…` or WIF).
    #[arg(long)]
    pub key_file: PathBuf,
    /// Sign even if the signature is not canonical (chains with ALLOW_NON_CANONICAL_SIGNATURES).
    #[arg(long)]
    pub allow_non_canonical: bool,
    /// The 32-byte digest in hex.
    pub digest: String,
}

/// Reads a private key file; the contents are zeroized after parsing.
pub fn read_key_file(path: &std::path::Path) -> Result<PrivateKey, CliError> {
    let text = Zeroizing::new(read_input(path)?);
    PrivateKey::parse(text.trim()).map_err(|e| CliError::Other(format!("{}: {e}", path.display())))
}

impl SignDigest {
    /// Runs the command: the bare signature as text, or every detail as JSON.
    pub fn run(&self, json: bool) -> Result<Value, CliError> {
        let digest = Checksum256::from_hex(&self.digest)?;
        let key = SoftKey::new(read_key_file(&self.key_file)?);
        let opts = SignOptions {
            require_canonical: !self.allow_non_canonical,
            ..SignOptions::default()
        };
        let signed = sign(&key, &digest, opts).map_err(|e| CliError::Other(e.to_string()))?;
        if !json {
            return Ok(Value::String(signed.signature.to_sig_string()));
        }
        Ok(json!({
            "signature": signed.signature.to_sig_string(),
            "signature_hex": hex::encode(signed.signature.as_bytes()),
            "public_key": key.public_key().to_pub_string(),
            "digest": digest.to_string(),
            "attempts": signed.attempts,
        }))
    }
}
