//! `oryx-signer keys list`: every key each configured backend holds, what it is to this signer
//! (a `[[keys]]` key, the transcript key, a key generated or retired at runtime, or unused) and
//! the rules that let someone use it (`[[allow]]` rules, or the policy file's rules).

use clap::Args;

use crate::cli_error::CliError;
use crate::commands::ConfigArg;

/// Arguments.
#[derive(Debug, Args)]
pub struct List {
    #[command(flatten)]
    config: ConfigArg,
    /// Only the keys with this label on their device.
    #[arg(long)]
    label: Option<String>,
    /// Print only the public keys (`PUB_K1_…`/`PUB_R1_…`), one per line (for scripts).
    #[arg(long, conflicts_with = "json")]
    public_key: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl List {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let config = self.config.load()?;
        let providers = crate::providers::open_all(&config)?;
        let policy = match &config.policy {
            Some(path) => Some(
                crate::config::load_policy(path, &config.chain_names()).map_err(CliError::Other)?,
            ),
            None => None,
        };
        let registry = match &config.registry {
            Some(r) => crate::registry::Registry::open(&r.path)
                .map(|r| r.entries())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let mut rows = Vec::new();
        for (name, p) in &providers {
            for (label, why) in p.skipped().unwrap_or_default() {
                eprintln!("warning: backend {name:?}: key labelled {label:?} is not usable: {why}");
            }
            for info in p
                .list()
                .map_err(|e| CliError::Other(format!("backend {name:?}: {e}")))?
                .into_iter()
                .filter(|i| self.label.as_ref().is_none_or(|l| *l == i.label))
            {
                let k = info.public_key;
                let configured = config.keys.iter().any(|c| c.public_key == k);
                let registered = registry.iter().find(|e| e.public_key == k);
                let retired =
                    registered.is_some_and(|e| e.state == crate::registry::KeyState::Retired);
                let role = if retired {
                    // The registry outranks the config: a retired [[keys]] key signs nothing.
                    "retired (registry)".to_string()
                } else if config.audit.signing_key == Some(k) {
                    "transcript key".to_string()
                } else if configured {
                    "configured".to_string()
                } else if let Some(e) = registered {
                    match e.state {
                        crate::registry::KeyState::Active => "generated (registry)".to_string(),
                        crate::registry::KeyState::Retired => "retired (registry)".to_string(),
                    }
                } else {
                    "not in config".to_string()
                };
                // A registered successor signs under its root's rules.
                let identity = crate::registry::identity(&k, |x| {
                    registry
                        .iter()
                        .find(|e| e.public_key == *x)
                        .and_then(|e| e.successor_of)
                })
                .unwrap_or(k);
                let rules: Vec<String> = match &policy {
                    Some(p) => p
                        .rules()
                        .iter()
                        .filter(|r| r.names_key(&identity))
                        .map(|r| format!("policy rule {:?}", r.name))
                        .collect(),
                    None => config
                        .allow
                        .iter()
                        .filter(|r| r.keys.contains(&identity))
                        .map(|r| {
                            let kinds: Vec<&str> = r.kinds.iter().map(|k| k.as_str()).collect();
                            format!("allow {}: {}", r.principal, kinds.join(", "))
                        })
                        .collect(),
                };
                rows.push(serde_json::json!({"backend": name, "label": info.label, "id": info.id, "public_key": k, "legacy": k.to_legacy_string(), "configured": configured, "retired": retired, "role": role, "rules": rules}));
            }
        }
        if let Some(l) = &self.label
            && rows.is_empty()
        {
            return Err(CliError::Other(format!(
                "no usable key labelled {l:?} in any backend (warnings above say why a key was left out)"
            )));
        }
        if self.public_key {
            // For scripts: keys that can sign. A retired key is named on stderr, not printed.
            for r in rows {
                let key = r["public_key"].as_str().unwrap_or("");
                if r["retired"] == true {
                    eprintln!("note: {key} (label {}) is retired", r["label"]);
                } else {
                    println!("{key}");
                }
            }
        } else if self.json {
            println!("{}", serde_json::Value::Array(rows));
        } else {
            for r in rows {
                let rules: Vec<&str> = r["rules"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    r["backend"].as_str().unwrap_or(""),
                    r["label"].as_str().unwrap_or(""),
                    r["public_key"].as_str().unwrap_or(""),
                    r["role"].as_str().unwrap_or(""),
                    if rules.is_empty() {
                        "no rule uses it".to_string()
                    } else {
                        rules.join("; ")
                    }
                );
            }
        }
        Ok(())
    }
}
