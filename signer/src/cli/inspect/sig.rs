//! `oryx inspect sig SIG --digest HEX`: recover the signing key and check the canonical rule.

use clap::Args;
use oryx_proto::antelope::{Checksum256, Signature};
use serde_json::{Value, json};

use crate::cli::CliError;

/// Arguments.
#[derive(Debug, Args)]
pub struct InspectSig {
    /// `SIG_K1_…` or `SIG_R1_…`.
    pub signature: String,
    /// The 32-byte digest that was signed, in hex.
    #[arg(long)]
    pub digest: String,
}

impl InspectSig {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let sig = Signature::parse(self.signature.trim())?;
        let digest = Checksum256::from_hex(&self.digest)?;
        let key = sig.recover_lenient(&digest)?;
        Ok(json!({
            "public_key": key.to_pub_string(),
            "legacy": key.to_legacy_string(),
            "type": sig.kind().label(),
            "canonical": sig.is_canonical(),
            "low_s": sig.is_low_s(),
            "recovery_id": sig.recovery_id(),
            "signature_hex": hex::encode(sig.as_bytes()),
        }))
    }
}
