//! `oryx-signer keys registry`: every key the signer would serve — `[[keys]]` merged with the
//! key registry — with its state (active or retired), its predecessor and successor. Reads
//! files only (no backend is opened), so it works offline and while the daemon runs.

use clap::Args;

use crate::cli_error::CliError;
use crate::commands::ConfigArg;
use crate::registry::{KeyState, Registry, RegistryEntry};

/// Arguments.
#[derive(Debug, Args)]
pub struct ShowRegistry {
    #[command(flatten)]
    config: ConfigArg,
    /// Print JSON (an array of registry entries).
    #[arg(long)]
    json: bool,
}

impl ShowRegistry {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let config = self.config.load()?;
        let recorded = match &config.registry {
            Some(r) => Registry::open(&r.path).map_err(CliError::other)?.entries(),
            None => Vec::new(),
        };
        // Config keys the registry has no record of are active, as configured.
        let mut rows: Vec<RegistryEntry> = config
            .keys
            .iter()
            .filter(|k| !recorded.iter().any(|e| e.public_key == k.public_key))
            .map(|k| RegistryEntry::config_key(k, String::new(), 0))
            .collect();
        rows.extend(recorded);
        if self.json {
            println!("{}", serde_json::to_string(&rows).map_err(CliError::other)?);
            return Ok(());
        }
        if config.registry.is_none() {
            println!("# no [registry] configured: only [[keys]] are shown");
        }
        for r in rows {
            let state = match r.state {
                KeyState::Active => "active",
                KeyState::Retired => "retired",
            };
            let mut line = format!(
                "{}\t{state}\t{}\t{}\t{}",
                r.public_key,
                r.backend,
                if r.label.is_empty() { "-" } else { &r.label },
                r.chains.join(",")
            );
            if let Some(p) = r.successor_of {
                line.push_str(&format!("\tsuccessor of {p}"));
            }
            if let Some(s) = r.successor {
                line.push_str(&format!("\tsucceeded by {s}"));
            }
            println!("{line}");
        }
        Ok(())
    }
}
