//! `oryx-signer certs issue|revoke|list`: the operator CA's certificates, run where the CA
//! directory is (offline): issue a client or server certificate with an expiry, revoke one
//! (rewriting the CA-signed revocation list the signer loads), list them with their status.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli_error::CliError;
use crate::pki::ca_dir::CaDirError;

pub mod issue;
pub mod list;
pub mod revoke;

/// Certificate commands.
#[derive(Debug, Subcommand)]
pub enum Certs {
    /// Issue a client (principal) or server certificate signed by the CA, with an expiry.
    Issue(issue::Issue),
    /// Revoke a certificate by name or serial: rewrites the CA's crl.pem, which the signer
    /// enforces once copied to its `[server] crl` file and sent SIGHUP.
    Revoke(revoke::Revoke),
    /// List every certificate the CA issued: name, role, serial, expiry, status.
    List(list::List),
}

impl Certs {
    /// Runs the subcommand.
    pub fn run(self) -> Result<(), CliError> {
        match self {
            Certs::Issue(c) => c.run(),
            Certs::Revoke(c) => c.run(),
            Certs::List(c) => c.run(),
        }
    }
}

/// The CA directory every `certs` command works in.
#[derive(Debug, Args)]
pub struct CaArg {
    /// The CA directory `init` made (default: the signer directory's name with `-ca`).
    #[arg(long = "ca")]
    pub ca: PathBuf,
}

impl From<CaDirError> for CliError {
    fn from(e: CaDirError) -> Self {
        CliError::Other(e.to_string())
    }
}

/// A Unix time as a UTC date and time (`2027-12-07 12:00 UTC`).
pub fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix).map_or_else(
        |_| unix.to_string(),
        |t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        },
    )
}
