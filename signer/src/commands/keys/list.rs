//! `oryx-signer keys list`: every key each configured backend holds.

use clap::Args;

use crate::cli_error::CliError;
use crate::commands::ConfigArg;

/// Arguments.
#[derive(Debug, Args)]
pub struct List {
    #[command(flatten)]
    config: ConfigArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl List {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let config = self.config.load()?;
        let providers = crate::providers::open_all(&config)?;
        let mut rows = Vec::new();
        for (name, p) in &providers {
            for info in p
                .list()
                .map_err(|e| CliError::Other(format!("backend {name:?}: {e}")))?
            {
                let configured = config.keys.iter().any(|k| k.public_key == info.public_key);
                rows.push(serde_json::json!({"backend": name, "label": info.label, "id": info.id, "public_key": info.public_key, "legacy": info.public_key.to_legacy_string(), "configured": configured}));
            }
        }
        if self.json {
            println!("{}", serde_json::Value::Array(rows));
        } else {
            for r in rows {
                println!(
                    "{}\t{}\t{}\t{}",
                    r["backend"].as_str().unwrap_or(""),
                    r["label"].as_str().unwrap_or(""),
                    r["public_key"].as_str().unwrap_or(""),
                    if r["configured"] == true {
                        "configured"
                    } else {
                        "not in config"
                    }
                );
            }
        }
        Ok(())
    }
}
