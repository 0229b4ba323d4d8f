//! `oryx-signer certs issue NAME --ca DIR [--role client|server] [--days N] [--host H]…`.

use std::path::PathBuf;

use clap::Args;

use super::{CaArg, date};
use crate::cli_error::CliError;
use crate::pki::ca_dir::{CaDir, Role};
use crate::pki::{DEFAULT_DAYS, write_secret};

/// Issue a certificate.
#[derive(Debug, Args)]
pub struct Issue {
    /// The principal (client) or the first host name (server).
    name: String,
    #[command(flatten)]
    ca: CaArg,
    /// What the certificate is for.
    #[arg(long, value_enum, default_value = "client")]
    role: Role,
    /// Days until it expires.
    #[arg(long, default_value_t = DEFAULT_DAYS)]
    days: u32,
    /// More host names or IP addresses for a server certificate.
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// Where to write NAME.pem and NAME.key (never over existing files).
    #[arg(long, default_value = ".")]
    out: PathBuf,
}

impl Issue {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let (dir, ca) = CaDir::open(&self.ca.ca)?;
        let issued = match self.role {
            Role::Client => {
                if !self.hosts.is_empty() {
                    return Err(CliError::Other(
                        "--host is for server certificates (--role server)".into(),
                    ));
                }
                ca.client(&self.name, self.days)?
            }
            Role::Server => {
                let mut hosts = vec![self.name.as_str()];
                hosts.extend(self.hosts.iter().map(String::as_str));
                ca.server(&hosts, self.days)?
            }
        };
        let cert = self.out.join(format!("{}.pem", self.name));
        let key = self.out.join(format!("{}.key", self.name));
        for p in [&cert, &key] {
            if p.exists() {
                return Err(CliError::Other(format!(
                    "{} exists: move it away first (a certificate is never overwritten)",
                    p.display()
                )));
            }
        }
        // In the register first: a certificate that exists can always be revoked.
        dir.enter(&self.name, self.role, &issued)?;
        write_secret(&key, &issued.key_pem)?;
        crate::durable::create_new(&cert, issued.cert_pem.as_bytes(), 0o644)
            .map_err(|e| CliError::io(&e.path, e.source))?;
        println!(
            "issued {} certificate {} (serial {}), valid until {}",
            match self.role {
                Role::Client => "client",
                Role::Server => "server",
            },
            self.name,
            issued.serial,
            date(issued.not_after.unix_timestamp())
        );
        println!("wrote {} and {} (0600)", cert.display(), key.display());
        Ok(())
    }
}
