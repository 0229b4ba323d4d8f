//! `oryx-signer certs revoke NAME|SERIAL --ca DIR`.

use clap::Args;

use super::{CaArg, date};
use crate::cli_error::CliError;
use crate::pki::ca_dir::CaDir;

/// Revoke a certificate.
#[derive(Debug, Args)]
pub struct Revoke {
    /// The certificate: its serial (hex), or a name with one unrevoked certificate.
    which: String,
    #[command(flatten)]
    ca: CaArg,
    /// WHICH is a serial even if the register does not hold it (a certificate issued before
    /// the register existed: `openssl x509 -noout -serial -in CERT.pem` prints it).
    #[arg(long)]
    serial: bool,
}

impl Revoke {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let (dir, ca) = CaDir::open(&self.ca.ca)?;
        let (record, fresh) = if self.serial {
            dir.revoke_serial(&ca, &self.which)?
        } else {
            dir.revoke(&ca, &self.which)?
        };
        let when = record.revoked.map(date).unwrap_or_default();
        if fresh {
            println!(
                "revoked {} (serial {}) at {when}",
                record.name, record.serial
            );
        } else {
            println!(
                "{} (serial {}) was revoked before, at {when}; crl.pem unchanged",
                record.name, record.serial
            );
        }
        println!(
            "copy {} to the signer's `[server] crl` file and send it SIGHUP (`kill -HUP PID`): \
             new connections with this certificate fail the handshake, and open ones are \
             refused at their next request",
            dir.crl_path().display()
        );
        Ok(())
    }
}
