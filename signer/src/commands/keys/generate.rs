//! `oryx-signer keys generate --backend NAME --label LABEL [--r1] [--chain C … | --transcript]
//! [--append]`: a new key inside the backend; prints the public key and the `[[keys]]` entry for
//! the config, or appends it (`--append`, checked by parsing the whole new config first).

use std::path::Path;

use clap::Args;
use oryx_proto::antelope::{KeyType, PublicKey};

use crate::cli_error::CliError;
use crate::commands::ConfigArg;
use crate::config::Config;

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
    /// A chain the key may sign for (a `[[chains]]` name; repeatable). Default: the config's
    /// only chain.
    #[arg(long = "chain", conflicts_with = "transcript")]
    chains: Vec<String>,
    /// The transcript key: `chains = []`, and with `--append` it becomes `[audit] signing_key`.
    #[arg(long)]
    transcript: bool,
    /// Append the entry to the config file (after checking the resulting config parses).
    #[arg(long)]
    append: bool,
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
        // Everything about the entry is settled before the key exists: with --append, the
        // config it would make is checked with a stand-in key first.
        let (chains, note) = self.chains_entry(&config)?;
        let kind = if self.r1 { KeyType::R1 } else { KeyType::K1 };
        let entry = |key: &PublicKey| {
            format!(
                "[[keys]]\npublic_key = \"{key}\"\nbackend = \"{}\"\nchains = {chains}",
                self.backend
            )
        };
        if self.append {
            let stand_in = crate::cli::ceremony::placeholder_key(kind)?;
            self.appended(&entry(&stand_in), &stand_in)?;
        }
        let provider = crate::providers::open(&self.backend, backend, config.allow_soft_keys)?;
        let info = provider.generate(&self.label, kind)?;
        let entry = entry(&info.public_key);
        let appended = if self.append {
            let new = self.appended(&entry, &info.public_key).map_err(|e| {
                CliError::Other(format!(
                    "the key was generated ({}) but not appended: {e}",
                    info.public_key
                ))
            })?;
            let path = &self.config.config;
            // The file keeps its permissions.
            let mode = {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::metadata(path)
                    .map_err(|e| CliError::io(path, e))?
                    .permissions()
                    .mode()
                    & 0o777
            };
            crate::durable::write_atomic(path, new.as_bytes(), mode)
                .map_err(|e| CliError::io(&e.path, e.source))?;
            true
        } else {
            false
        };
        if self.json {
            println!(
                "{}",
                serde_json::json!({"label": info.label, "id": info.id, "public_key": info.public_key, "legacy": info.public_key.to_legacy_string(), "backend": self.backend, "appended": appended})
            );
            return Ok(());
        }
        println!(
            "generated {} in backend {:?} (id {})",
            info.public_key, self.backend, info.id
        );
        if let Some(legacy) = info.public_key.to_legacy_string() {
            println!("legacy form: {legacy}");
        }
        let path = self.config.config.display();
        if appended {
            println!("\nappended to {path}:\n\n{entry}");
            if self.transcript {
                println!("\nand set [audit] signing_key to it");
            }
        } else {
            println!("\nAdd to {path}:\n\n{entry}{note}");
            if self.transcript {
                println!("\nand under [audit]: signing_key = \"{}\"", info.public_key);
            }
        }
        Ok(())
    }

    /// The entry's `chains` value, and a comment for a human when the choice is not obvious.
    fn chains_entry(&self, config: &Config) -> Result<(String, String), CliError> {
        if self.transcript {
            return Ok(("[]".into(), String::new()));
        }
        // The config's own chain names (what `[[keys]] chains` takes), never a guess.
        let names: Vec<&str> = config.chains.iter().map(|c| c.name.as_str()).collect();
        let quoted = |v: &[&str]| {
            let q: Vec<String> = v.iter().map(|n| format!("\"{n}\"")).collect();
            format!("[{}]", q.join(", "))
        };
        if !self.chains.is_empty() {
            let mut picked = Vec::new();
            for c in &self.chains {
                let id = config.chain_id(c).ok_or_else(|| {
                    CliError::Other(format!(
                        "--chain {c:?} is not a configured chain (under [[chains]]: {})",
                        names.join(", ")
                    ))
                })?;
                let name = config
                    .chain_names()
                    .into_iter()
                    .find(|(_, i)| *i == id)
                    .map(|(n, _)| n)
                    .unwrap_or_else(|| c.clone());
                picked.push(name);
            }
            let refs: Vec<&str> = picked.iter().map(String::as_str).collect();
            return Ok((quoted(&refs), String::new()));
        }
        Ok(match names.as_slice() {
            [] if self.append => {
                return Err(CliError::Other(
                    "the config has no [[chains]] entry: add one before appending a key".into(),
                ));
            }
            [] => (
                "[]".into(),
                "  # add a [[chains]] entry and name it here".into(),
            ),
            [one] => (quoted(&[one]), String::new()),
            [..] if self.append => {
                return Err(CliError::Other(format!(
                    "the config has several chains ({}): say which with --chain",
                    names.join(", ")
                )));
            }
            [first, ..] => (
                quoted(&[first]),
                format!(
                    "  # one of: {} (a block-signing key names one chain)",
                    names.join(", ")
                ),
            ),
        })
    }

    /// The config with `entry` appended (and for a transcript key, `[audit] signing_key` set),
    /// refused when it would not be a valid config.
    fn appended(&self, entry: &str, key: &PublicKey) -> Result<String, CliError> {
        let path = &self.config.config;
        let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
        let mut new = if self.transcript {
            with_audit_signing_key(&text, key)
                .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?
        } else {
            text
        };
        if !new.ends_with('\n') {
            new.push('\n');
        }
        new.push('\n');
        new.push_str(entry);
        new.push('\n');
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&new, base).map_err(|e| {
            CliError::Other(format!(
                "{}: the config would not be valid with this entry: {e}",
                path.display()
            ))
        })?;
        Ok(new)
    }
}

/// `text` with `signing_key = "<key>"` as the first line of its `[audit]` table; refuses a
/// config that already names a transcript key (one is enough).
fn with_audit_signing_key(text: &str, key: &PublicKey) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 80);
    let mut in_audit = false;
    let mut done = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_audit = t == "[audit]";
        } else if in_audit && t.starts_with("signing_key") {
            return Err("[audit] already has a signing_key: one transcript key per signer".into());
        }
        out.push_str(line);
        out.push('\n');
        if t == "[audit]" && !done {
            out.push_str(&format!("signing_key = \"{key}\"\n"));
            done = true;
        }
    }
    if done {
        Ok(out)
    } else {
        Err("no [audit] table to set signing_key in".into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_transcript_key_goes_under_audit_once() {
        let key = oryx_proto::antelope::PrivateKey::from_bytes(KeyType::K1, [7; 32])
            .unwrap()
            .public_key();
        let text =
            "[server]\nx = 1\n[audit]\npath = \"a\"\n# signing_key = \"PUB_K1_...\"\n[[chains]]\n";
        let out = with_audit_signing_key(text, &key).unwrap();
        assert!(
            out.contains(&format!("[audit]\nsigning_key = \"{key}\"\npath")),
            "{out}"
        );
        assert!(
            with_audit_signing_key(&out, &key)
                .unwrap_err()
                .contains("already")
        );
        assert!(with_audit_signing_key("[server]\n", &key).is_err());
    }
}
