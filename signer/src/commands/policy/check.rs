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
}

impl Check {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let policy = super::read_policy(&self.file)?;
        let lints = policy.lint();
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
