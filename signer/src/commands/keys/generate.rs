//! `oryx-signer keys generate --backend NAME --label LABEL [--r1]`: a new key inside the
//! backend; prints the public key and the `[[keys]]` entry to add to the config.

use clap::Args;
use oryx_proto::antelope::KeyType;

use crate::cli_error::CliError;
use crate::commands::ConfigArg;

/// Arguments.
#[derive(Debug, Args)]
pub struct Generate {
    #[command(flatten)]
    config: ConfigArg,
    /// The backend (a name under `[backends]`).
    #[arg(long)]
    backend: String,
    /// Label for the key on the device.
    #[arg(long)]
    label: String,
    /// P-256 (R1) instead of secp256k1 (K1).
    #[arg(long)]
    r1: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl Generate {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let config = self.config.load()?;
        let backend = config.backends.get(&self.backend).ok_or_else(|| {
            CliError::Other(format!(
                "no backend named {:?} in {}",
                self.backend,
                self.config.config.display()
            ))
        })?;
        let provider = crate::providers::open(&self.backend, backend, config.allow_soft_keys)?;
        let kind = if self.r1 { KeyType::R1 } else { KeyType::K1 };
        let info = provider.generate(&self.label, kind)?;
        if self.json {
            println!(
                "{}",
                serde_json::json!({"label": info.label, "id": info.id, "public_key": info.public_key, "legacy": info.public_key.to_legacy_string(), "backend": self.backend})
            );
        } else {
            println!(
                "generated {} in backend {:?} (id {})",
                info.public_key, self.backend, info.id
            );
            if let Some(legacy) = info.public_key.to_legacy_string() {
                println!("legacy form: {legacy}");
            }
            // The config's own chain names (what `[[keys]] chains` takes), never a guess.
            let names: Vec<&str> = config.chains.iter().map(|c| c.name.as_str()).collect();
            let chains = match names.as_slice() {
                [] => "[]  # add a [[chains]] entry and name it here".to_string(),
                [one] => format!("[\"{one}\"]"),
                [first, ..] => format!(
                    "[\"{first}\"]  # one of: {} (a block-signing key names one chain)",
                    names.join(", ")
                ),
            };
            println!(
                "\nAdd to {}:\n\n[[keys]]\npublic_key = \"{}\"\nbackend = \"{}\"\nchains = {chains}",
                self.config.config.display(),
                info.public_key,
                self.backend
            );
        }
        Ok(())
    }
}
