//! `oryx-node.toml`: typed configuration, unknown keys refused.
//!
//! Guards: the node holds no key material, only its mTLS client identity (file paths); the
//! bridge never listens on anything but a unix socket or a loopback address, because nodeos
//! on the same host is its only client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use oryx_proto::antelope::Checksum256;
use oryx_proto::antelope::chain::parse_chain_id;
use oryx_proto::client::ClientTls;
use serde::Deserialize;

use crate::NodeError;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How to reach the signer.
    pub signer: SignerConfig,
    /// The keosd-compatible bridge for nodeos (`oryx-node bridge`).
    pub bridge: Option<BridgeConfig>,
    /// The block assembler (`oryx-node produce`).
    pub produce: Option<crate::produce::ProduceConfig>,
    /// `/metrics` and `/healthz` on loopback.
    pub observability: Option<Observability>,
}

/// The signer's address (or its replicas' addresses) and this node's mTLS identity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerConfig {
    /// `host:port` of the signer (one replica).
    #[serde(default)]
    pub address: Option<String>,
    /// `host:port` of each signer replica sharing one watermark store (etcd), in the order
    /// they are tried first; give this or `address`.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// How long one replica may take before the identical request goes to the next one.
    #[serde(default = "default_attempt_timeout_ms")]
    pub attempt_timeout_ms: u64,
    /// The name in the signer's certificate.
    #[serde(default = "default_server_name")]
    pub server_name: String,
    /// The operator CA (PEM).
    pub ca_cert: PathBuf,
    /// This node's client certificate (PEM).
    pub cert: PathBuf,
    /// This node's client key (PEM); readable only by the service user.
    pub key: PathBuf,
}

fn default_server_name() -> String {
    "localhost".to_string()
}

fn default_attempt_timeout_ms() -> u64 {
    crate::failover::DEFAULT_ATTEMPT_TIMEOUT.as_millis() as u64
}

impl SignerConfig {
    /// The replicas to ask, in order (one for a plain `address`).
    pub fn replicas(&self) -> Vec<String> {
        self.address
            .iter()
            .chain(self.addresses.iter())
            .cloned()
            .collect()
    }

    /// How long one replica may take.
    pub fn attempt_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.attempt_timeout_ms)
    }

    fn check(&self) -> Result<(), NodeError> {
        match (&self.address, self.addresses.len()) {
            (Some(_), 0) => {}
            (None, n) if n > 0 => {}
            (Some(_), _) => {
                return Err(NodeError::Config(
                    "[signer] give `address` (one signer) or `addresses` (its replicas), not both"
                        .into(),
                ));
            }
            (None, _) => {
                return Err(NodeError::Config(
                    "[signer] needs `address = \"host:port\"` or `addresses = [...]`".into(),
                ));
            }
        }
        let all = self.replicas();
        if let Some(dup) = all.iter().enumerate().find(|(i, a)| all[..*i].contains(a)) {
            return Err(NodeError::Config(format!(
                "[signer] addresses lists {} twice",
                dup.1
            )));
        }
        if self.attempt_timeout_ms == 0 {
            return Err(NodeError::Config(
                "[signer] attempt_timeout_ms must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The keosd wallet API for nodeos and cleos.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// The chain nodeos runs (name such as `eos`, or 64 hex characters).
    pub chain_id: String,
    /// Unix socket for nodeos (`KEOSD:unix://<path>/v1/wallet/sign_digest`); created mode 0600.
    pub unix_socket: Option<PathBuf>,
    /// Optional loopback TCP listener
    /// (`KEOSD:http://127.0.0.1:<port>/<token>/v1/wallet/sign_digest`). Any local user can
    /// connect to it, so it needs `listen_token_file`. Prefer `unix_socket`, which only its
    /// owner can open.
    pub listen: Option<SocketAddr>,
    /// The TCP listener's token (see [`crate::bridge::token`]): a file only its owner can read.
    #[serde(default)]
    pub listen_token_file: Option<PathBuf>,
    /// nodeos's `keosd-provider-timeout` in milliseconds (5 unless config.ini changes it): the
    /// bridge warns when its measured p99 is above it.
    #[serde(default = "default_timeout_ms")]
    pub nodeos_timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5
}

/// Where `/metrics` and `/healthz` are served.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observability {
    /// A loopback address.
    pub listen: SocketAddr,
}

impl Config {
    /// Reads and checks `path`; relative paths are taken from the file's directory. The error
    /// names the file and says what is wrong.
    pub fn load(path: &Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| NodeError::ConfigFile {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })
    }

    /// Parses and checks TOML text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, NodeError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| NodeError::Config(e.to_string()))?;
        let r = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        r(&mut cfg.signer.ca_cert);
        r(&mut cfg.signer.cert);
        r(&mut cfg.signer.key);
        cfg.signer.check()?;
        if let Some(b) = &mut cfg.bridge {
            if let Some(p) = &mut b.unix_socket {
                r(p);
            }
            if let Some(p) = &mut b.listen_token_file {
                r(p);
            }
            b.chain()?;
            if b.unix_socket.is_none() && b.listen.is_none() {
                return Err(NodeError::Config(
                    "[bridge] needs `unix_socket` or `listen` (or both): nodeos has to reach it"
                        .into(),
                ));
            }
            if let Some(a) = b.listen
                && !a.ip().is_loopback()
            {
                return Err(NodeError::Config(format!(
                    "[bridge] listen = {a}: the bridge serves only loopback (127.0.0.1 or ::1); nodeos runs on this host"
                )));
            }
            if b.nodeos_timeout_ms == 0 {
                return Err(NodeError::Config(
                    "[bridge] nodeos_timeout_ms must be at least 1".into(),
                ));
            }
            if b.listen.is_some() && b.listen_token_file.is_none() {
                return Err(NodeError::Config(
                    "[bridge] listen needs listen_token_file: any local user can connect to the \
                     TCP listener, so each request must carry the token in its path \
                     (KEOSD:http://127.0.0.1:PORT/<token>/v1/wallet/sign_digest). Write one with \
                     `openssl rand -hex 32 > FILE && chmod 600 FILE`, or use unix_socket alone"
                        .into(),
                ));
            }
        }
        if let Some(p) = &mut cfg.produce {
            p.resolve(base)?;
        }
        if let Some(o) = &cfg.observability
            && !o.listen.ip().is_loopback()
        {
            return Err(NodeError::Config(format!(
                "[observability] listen = {}: metrics are served on loopback only",
                o.listen
            )));
        }
        Ok(cfg)
    }

    /// Reads the TLS files named in `[signer]`.
    pub fn client_tls(&self) -> Result<ClientTls, NodeError> {
        let s = &self.signer;
        ClientTls::from_files(&s.ca_cert, &s.cert, &s.key, &s.server_name)
            .map_err(NodeError::ClientTls)
    }
}

impl BridgeConfig {
    /// The chain id.
    pub fn chain(&self) -> Result<Checksum256, NodeError> {
        parse_chain_id(&self.chain_id).map_err(|e| {
            NodeError::Config(format!(
                "[bridge] chain_id = {:?}: {e} (use a chain name such as eos, or 64 hex characters)",
                self.chain_id
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SIGNER: &str = "[signer]\naddress = \"127.0.0.1:7150\"\nca_cert = \"tls/ca.pem\"\ncert = \"tls/node1.pem\"\nkey = \"tls/node1.key\"\n";

    #[test]
    fn relative_paths_follow_the_file() {
        let c = Config::parse(SIGNER, Path::new("/etc/oryx")).unwrap();
        assert_eq!(c.signer.ca_cert, Path::new("/etc/oryx/tls/ca.pem"));
        assert_eq!(c.signer.server_name, "localhost");
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        let cases = [
            ("[bridge]\nchain_id = \"eos\"\n", "needs `unix_socket`"),
            (
                "[bridge]\nchain_id = \"eos\"\nlisten = \"0.0.0.0:8900\"\n",
                "loopback",
            ),
            (
                "[bridge]\nchain_id = \"nope\"\nlisten = \"127.0.0.1:8900\"\n",
                "chain_id",
            ),
            (
                "[bridge]\nchain_id = \"eos\"\nlisten = \"127.0.0.1:8900\"\nnodeos_timeout_ms = 0\n",
                "at least 1",
            ),
            ("[bridge]\nchain = \"eos\"\n", "unknown field"),
            (
                "[bridge]\nchain_id = \"eos\"\nlisten = \"127.0.0.1:8900\"\n",
                "listen needs listen_token_file",
            ),
            (
                "[observability]\nlisten = \"10.0.0.1:9000\"\n",
                "loopback only",
            ),
        ];
        for (extra, want) in cases {
            let err = Config::parse(&format!("{SIGNER}{extra}"), Path::new("/")).unwrap_err();
            assert!(matches!(err, NodeError::Config(_)), "{extra}: {err:?}");
            assert!(err.to_string().contains(want), "{extra}: {err}");
        }
    }

    #[test]
    fn replicas_are_listed_once_each() {
        let tls = "ca_cert = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n.key\"\n";
        let c = Config::parse(
            &format!("[signer]\naddresses = [\"10.0.0.2:7150\", \"10.0.0.3:7150\"]\n{tls}"),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.signer.replicas(), ["10.0.0.2:7150", "10.0.0.3:7150"]);
        assert_eq!(c.signer.attempt_timeout().as_millis(), 1000);
        for (signer, want) in [
            ("address = \"a:1\"\naddresses = [\"b:1\"]\n", "not both"),
            ("", "needs `address"),
            ("addresses = [\"a:1\", \"a:1\"]\n", "twice"),
            ("address = \"a:1\"\nattempt_timeout_ms = 0\n", "at least 1"),
        ] {
            let err =
                Config::parse(&format!("[signer]\n{signer}{tls}"), Path::new("/")).unwrap_err();
            assert!(err.to_string().contains(want), "{signer}: {err}");
        }
    }
}
