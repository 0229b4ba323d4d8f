//! An mTLS gRPC client for the signer (used by `oryx-node`, the `oryx` CLI, `oryx-signer bench`
//! and the tests).
//!
//! Guards: the client verifies the signer's certificate against the operator CA and presents its
//! own certificate; there is no way to build a plaintext client here. A dead peer is noticed
//! within about [`KEEPALIVE_INTERVAL`] + [`KEEPALIVE_TIMEOUT`] (HTTP/2 pings, also while idle),
//! and neither the TCP connect nor the TLS handshake waits longer than [`CONNECT_TIMEOUT`], so
//! a signer host that lost power is not waited on for the ~15 minutes TCP takes to give up.

use std::path::Path;
use std::time::Duration;

use crate::grpc::signer_client::SignerClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Where the client's TLS material is.
#[derive(Clone)]
pub struct ClientTls {
    /// Operator CA (PEM).
    pub ca_pem: Vec<u8>,
    /// Client certificate (PEM).
    pub cert_pem: Vec<u8>,
    /// Client key (PEM).
    pub key_pem: Vec<u8>,
    /// Name in the server certificate to check (e.g. `localhost`).
    pub server_name: String,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientTls(server_name = {:?}, <redacted>)",
            self.server_name
        )
    }
}

impl ClientTls {
    /// Reads the three PEM files.
    pub fn from_files(
        ca: &Path,
        cert: &Path,
        key: &Path,
        server_name: &str,
    ) -> Result<Self, String> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        Ok(ClientTls {
            ca_pem: read(ca)?,
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            server_name: server_name.to_string(),
        })
    }
}

/// How often an HTTP/2 ping is sent on the connection, busy or idle.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a ping may go unanswered before the connection is declared dead.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest the TCP connect, and then the TLS handshake, may each take (the node also bounds
/// a whole attempt by it).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects one long-lived channel to the signer at `addr` (`host:port`).
pub async fn connect(addr: &str, tls: &ClientTls) -> Result<SignerClient<Channel>, String> {
    let channel = connect_channel(addr, tls).await?;
    Ok(SignerClient::new(channel).max_decoding_message_size(crate::grpc::MAX_MESSAGE_BYTES))
}

/// The channel [`connect`] wraps (for callers that speak gRPC below the generated client).
pub async fn connect_channel(addr: &str, tls: &ClientTls) -> Result<Channel, String> {
    let cfg = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&tls.ca_pem))
        .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem))
        .domain_name(tls.server_name.clone())
        .timeout(CONNECT_TIMEOUT);
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|e| format!("signer address {addr}: {e}"))?
        .tls_config(cfg)
        .map_err(|e| format!("TLS config: {e}"))?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    // TCP connect and the TLS handshake are each bounded by CONNECT_TIMEOUT here; callers that
    // must bound the whole attempt (HTTP/2 setup included) wrap this call in a timeout of their
    // own, as the node's reconnecting task does (this crate has no runtime dependency).
    endpoint
        .connect()
        .await
        .map_err(|e| format!("connect to signer at {addr}: {e}"))
}

/// Where the signer recorded a refusal in its audit log, `(seq, hash)`, if the status says.
pub fn audit_position(status: &tonic::Status) -> Option<(u64, String)> {
    let v = status
        .metadata()
        .get(crate::grpc::AUDIT_METADATA)?
        .to_str()
        .ok()?;
    let (seq, hash) = v.split_once(':')?;
    let hash_ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    Some((seq.parse().ok()?, hash.to_string())).filter(|_| hash_ok)
}

/// The `oryx-reason` of a refusal, if the status carries one.
pub fn reason(status: &tonic::Status) -> Option<String> {
    status
        .metadata()
        .get(crate::grpc::REASON_METADATA)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
