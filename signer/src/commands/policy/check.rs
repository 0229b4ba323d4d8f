//! `oryx-signer policy check FILE [--strict]`: the file parses and validates (an error names
//! the line and the problem and exits non-zero), then every lint is printed as a warning.
//! With `--strict`, warnings fail the check too (for CI of a policy repository).

use std::path::PathBuf;

use clap::Args;

use crate::cli_error::CliError;

/// Arguments.
#[derive(Debug, Args)]
pub struct Check {
    /// The policy file (TOML).
    file: PathBuf,
    /// Treat warnings as errors.
    #[arg(long)]
    strict: bool,
    /// The signer config, whose `[[chains]]` names the policy's `chains` may use.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

/// What a policy names that the signer config does not have: keys outside `[[keys]]` (a key
/// generated at runtime is in the registry instead, and is named here too, to check by hand)
/// and chains outside `[[chains]]`. Such a rule can never apply as written.
fn against_config(policy: &oryx_policy::Policy, config: &crate::config::Config) -> Vec<String> {
    let chains: Vec<_> = config.chain_names().into_iter().map(|(_, id)| id).collect();
    let mut out = config.blind_keys_with_account_use(Some(policy));
    for r in policy.rules() {
        for k in &r.keys {
            if let oryx_policy::KeyPattern::Is(k) = k
                && !config.keys.iter().any(|c| c.public_key == *k)
            {
                out.push(format!(
                    "rule {:?}: key {k} is not under [[keys]] in the config (a key generated at runtime is in the registry; otherwise this rule never applies)",
                    r.name
                ));
            }
        }
        for id in r.chains.iter().flatten() {
            if !chains.contains(id) {
                out.push(format!(
                    "rule {:?}: chain {id} is not under [[chains]] in the config (this rule never applies there)",
                    r.name
                ));
            }
        }
    }
    out
}

impl Check {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let config = super::load_config(self.config.as_deref())?;
        let policy = super::read_policy(&self.file, config.as_ref())?;
        let mut lints: Vec<String> = policy.lint().iter().map(ToString::to_string).collect();
        if let Some(c) = &config {
            lints.extend(against_config(&policy, c));
        }
        for l in &lints {
            println!("{}: warning: {l}", self.file.display());
        }
        println!(
            "{}: policy {:?}: {} rule(s), {} warning(s)",
            self.file.display(),
            policy.version(),
            policy.rules().len(),
            lints.len()
        );
        if self.strict && !lints.is_empty() {
            return Err(CliError::Other(format!(
                "{}: {} warning(s) with --strict",
                self.file.display(),
                lints.len()
            )));
        }
        Ok(())
    }
}
