//! `oryx-signer certs list --ca DIR [--json]`.

use clap::Args;

use super::{CaArg, date};
use crate::cli_error::CliError;
use crate::pki::ca_dir::CaDir;

/// List issued certificates.
#[derive(Debug, Args)]
pub struct List {
    #[command(flatten)]
    ca: CaArg,
    /// The register as JSON.
    #[arg(long)]
    json: bool,
}

impl List {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let (dir, _) = CaDir::open(&self.ca.ca)?;
        let records = dir.records()?;
        if self.json {
            let text = serde_json::to_string_pretty(&records).map_err(CliError::other)?;
            println!("{text}");
            return Ok(());
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        println!(
            "{:<24} {:<6} {:<32} {:<20} status",
            "name", "role", "serial", "expires"
        );
        for r in &records {
            let status = match r.revoked {
                Some(at) => format!("revoked {}", date(at)),
                None => r.status(now).to_string(),
            };
            println!(
                "{:<24} {:<6} {:<32} {:<20} {status}",
                r.name,
                format!("{:?}", r.role).to_lowercase(),
                r.serial,
                date(r.not_after)
            );
        }
        Ok(())
    }
}
