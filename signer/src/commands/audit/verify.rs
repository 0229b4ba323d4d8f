//! `oryx-signer audit verify FILE [--last-hash HEX]`: re-checks every entry's hash and link.
//! With `--last-hash` (an anchor kept elsewhere) a truncated tail is found too.

use std::path::PathBuf;

use clap::Args;

use crate::cli_error::CliError;

/// Arguments.
#[derive(Debug, Args)]
pub struct Verify {
    /// The audit log.
    file: PathBuf,
    /// An entry the log must contain, as `SEQ:HASH` (from an earlier verify or append).
    #[arg(long)]
    anchor: Option<String>,
}

impl Verify {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let report = match &self.anchor {
            Some(a) => {
                let (seq, hash) = a
                    .split_once(':')
                    .ok_or_else(|| CliError::Other("--anchor must be SEQ:HASH".into()))?;
                let seq = seq.parse().map_err(|_| {
                    CliError::Other(format!("--anchor: bad sequence number {seq:?}"))
                })?;
                crate::audit::verify_against(
                    &self.file,
                    &crate::audit::AuditEntryRef {
                        seq,
                        hash: hash.to_string(),
                    },
                )
            }
            None => crate::audit::verify(&self.file),
        }
        .map_err(|e| CliError::Other(format!("{}: {e}", self.file.display())))?;
        println!("{}: {report}", self.file.display());
        Ok(())
    }
}
