//! `oryx key convert KEY`: every string form of a key. A private key may be given as `-` to
//! read it from stdin, so it does not land in shell history.

use clap::Args;
use oryx_proto::antelope::{PrivateKey, PublicKey};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::cli::CliError;

/// Arguments.
#[derive(Debug, Args)]
pub struct Convert {
    /// `EOS…`, `PUB_K1_…`, `PUB_R1_…`, `PVT_K1_…`, `PVT_R1_…`, a WIF, or `-` for stdin.
    pub key: String,
    /// Print only the public key (`PUB_K1_…`/`PUB_R1_…`), never the private forms (for
    /// scripts, and to read an approver key file's public key without showing its secret).
    #[arg(long)]
    pub public: bool,
}

/// The public forms of a key, with stable field names.
pub fn public_forms(key: &PublicKey) -> Value {
    json!({
        "type": key.kind().label(),
        "public_key": key.to_pub_string(),
        "legacy": key.to_legacy_string(),
        "public_key_hex": hex::encode(key.as_bytes()),
    })
}

impl Convert {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let text = if self.key == "-" {
            let mut s = Zeroizing::new(String::new());
            std::io::stdin()
                .read_line(&mut s)
                .map_err(|e| CliError::Other(format!("stdin: {e}")))?;
            s
        } else {
            Zeroizing::new(self.key.clone())
        };
        let text = text.trim();
        if text.starts_with("PUB_") || text.starts_with("EOS") {
            let key = PublicKey::parse(text)?;
            if self.public {
                return Ok(json!(key.to_pub_string()));
            }
            let mut out = public_forms(&key);
            out["kind"] = json!("public");
            return Ok(out);
        }
        let key = PrivateKey::parse(text)?;
        if self.public {
            return Ok(json!(key.public_key().to_pub_string()));
        }
        let mut out = public_forms(&key.public_key());
        out["kind"] = json!("private");
        out["private_key"] = json!(key.to_pvt_string().as_str());
        out["wif"] = json!(key.to_wif().as_deref().map(|w| w.as_str()));
        Ok(out)
    }
}
