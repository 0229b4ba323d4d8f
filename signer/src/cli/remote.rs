//! `oryx approvals|approve|ceremony …` (the commands that talk to the signer): reaching the
//! signer from the `oryx` CLI — mTLS material from flags or environment variables, one
//! connection, a small runtime for the call.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::grpc::signer_client::SignerClient;
use tonic::transport::Channel;

use super::CliError;
use crate::client::{ClientTls, connect};

/// How to reach the signer.
#[derive(Debug, Clone, Args)]
pub struct SignerArgs {
    /// Signer address (`host:port`).
    #[arg(long, env = "ORYX_SIGNER", default_value = "127.0.0.1:7150")]
    pub signer: String,
    /// Operator CA certificate (PEM).
    #[arg(long, env = "ORYX_CA")]
    pub ca: Option<PathBuf>,
    /// This client's certificate (PEM).
    #[arg(long, env = "ORYX_CERT")]
    pub cert: Option<PathBuf>,
    /// This client's private key (PEM).
    #[arg(long = "cert-key", env = "ORYX_CERT_KEY")]
    pub cert_key: Option<PathBuf>,
    /// Name in the signer's certificate.
    #[arg(long, default_value = "localhost")]
    pub server_name: String,
}

impl SignerArgs {
    /// Runs `f` with a connected client; a refusal becomes one line naming its reason.
    pub fn call<T>(
        &self,
        f: impl AsyncFnOnce(&mut SignerClient<Channel>) -> Result<T, tonic::Status>,
    ) -> Result<T, CliError> {
        self.try_call(f)?.map_err(|s| refusal(&s))
    }

    /// Runs `f` with a connected client and hands back the signer's status untouched (for
    /// callers that act on a refusal, such as NEEDS_APPROVALS); `Err` only when the signer
    /// cannot be reached.
    pub fn try_call<T>(
        &self,
        f: impl AsyncFnOnce(&mut SignerClient<Channel>) -> Result<T, tonic::Status>,
    ) -> Result<Result<T, tonic::Status>, CliError> {
        // Optional for clap so that commands which only sometimes reach the signer (offline
        // approvals, dry runs) parse without them; required here.
        let (Some(ca), Some(cert), Some(cert_key)) = (&self.ca, &self.cert, &self.cert_key) else {
            return Err(CliError::Other(
                "this command talks to the signer: give --ca, --cert and --cert-key (or ORYX_CA, \
                 ORYX_CERT and ORYX_CERT_KEY)"
                    .into(),
            ));
        };
        let tls = ClientTls::from_files(ca, cert, cert_key, &self.server_name)
            .map_err(CliError::Other)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Other(e.to_string()))?;
        rt.block_on(async {
            let mut client = connect(&self.signer, &tls).await.map_err(CliError::Other)?;
            Ok(f(&mut client).await)
        })
    }
}

/// A refusal as one line: `signer refused [REASON]: message (audit SEQ:HASH)`.
pub fn refusal(s: &tonic::Status) -> CliError {
    let reason = crate::client::reason(s)
        .map(|r| format!(" [{r}]"))
        .unwrap_or_default();
    let audit = crate::client::audit_position(s)
        .map(|(seq, hash)| format!(" (audit {seq}:{hash})"))
        .unwrap_or_default();
    // A status without a reason comes from the transport (a refused certificate, a dropped
    // connection): its causes say what happened (e.g. `received fatal alert: CertificateRevoked`).
    let mut causes = String::new();
    if reason.is_empty() {
        let mut next = std::error::Error::source(s);
        while let Some(e) = next {
            let text = e.to_string();
            if !causes.contains(&text) && !s.message().contains(&text) {
                causes.push_str(": ");
                causes.push_str(&text);
            }
            next = e.source();
        }
    }
    CliError::Other(format!(
        "signer refused{reason}: {}{causes}{audit}",
        s.message()
    ))
}
