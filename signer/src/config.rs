//! The signer's configuration: one TOML file, parsed into typed values.
//!
//! Guards: unknown fields are errors (a typo never silently disables a check); secrets are
//! paths to files, never inline values; relative paths are resolved against the config file's
//! directory; cross-references (a key's backend, a key's chains, an allow rule's keys) are
//! checked at load time, so `start` refuses a broken file instead of failing at the first block.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use oryx_proto::antelope::chain::parse_chain_id;
use oryx_proto::antelope::{Checksum256, PublicKey};
use serde::Deserialize;

use crate::watermark::RetryPolicy;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML does not describe a valid configuration.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// The values are inconsistent.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gRPC listener and its mTLS material.
    pub server: ServerConfig,
    /// Metrics and health endpoints (loopback only).
    #[serde(default)]
    pub observability: Option<ObservabilityConfig>,
    /// Where watermarks live.
    pub watermarks: WatermarkConfig,
    /// Where the audit log lives.
    pub audit: AuditConfig,
    /// Where keys generated or retired at runtime are recorded (the key lifecycle RPCs need it).
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    /// Allow software keys (`type = "soft"`). Development and tests only.
    #[serde(default)]
    pub allow_soft_keys: bool,
    /// Lock the daemon's memory in RAM so secrets are never swapped out (where the process may
    /// lock without bound; see `secret::protect_process_memory`).
    #[serde(default = "yes")]
    pub lock_memory: bool,
    /// Chains this signer signs for.
    pub chains: Vec<ChainConfig>,
    /// Key backends by name.
    #[serde(default)]
    pub backends: BTreeMap<String, BackendConfig>,
    /// Keys the signer uses.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// The built-in allow-list: which principal may use which keys for which requests. Anything
    /// not listed is denied. Not used together with `policy`.
    #[serde(default)]
    pub allow: Vec<AllowRule>,
    /// Principals that may cancel any approval request (besides its requester) and call the key
    /// lifecycle RPCs (GenerateKey, RetireKey, SignTranscript).
    #[serde(default)]
    pub admins: Vec<String>,
    /// Principals that may read every approval request (approvers reviewing online), besides
    /// admins; any other principal reads only the requests it made.
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// A policy file (`oryx-policy`): content rules, limits, rates, approvals. Replaces
    /// `[[allow]]`; reloaded on SIGHUP (an invalid new file keeps the old policy).
    #[serde(default)]
    pub policy: Option<PathBuf>,
}

/// The gRPC listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The operator CA that signs client certificates (PEM).
    pub ca_cert: PathBuf,
    /// The server certificate chain (PEM).
    pub cert: PathBuf,
    /// The server private key (PEM).
    pub key: PathBuf,
    /// Revoked client certificates: the CA's `crl.pem` (from `oryx-signer certs revoke`),
    /// checked at every handshake and request, reloaded on SIGHUP.
    #[serde(default)]
    pub crl: Option<PathBuf>,
}

/// Prometheus `/metrics`, `/healthz` and `/readyz`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// Loopback address to listen on.
    pub listen: SocketAddr,
}

/// The watermark store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatermarkConfig {
    /// Directory of the embedded store; with `etcd`, this replica's local state (its journal
    /// of etcd revisions, the spend journal, approval requests).
    pub dir: PathBuf,
    /// Share watermarks with other signer replicas through an etcd v3 cluster instead.
    #[serde(default)]
    pub etcd: Option<EtcdConfig>,
    /// Producers whose block-signing keys share one watermark per chain.
    #[serde(default)]
    pub producers: Vec<ProducerGroupConfig>,
    /// One sync per block or digest signature instead of two: the reservation is recorded by a
    /// write-ahead audit entry synced before signing, the signature's entry follows written
    /// but not yet synced, and start-up recovers from the log (`crate::wal`).
    #[serde(default = "default_true")]
    pub write_ahead: bool,
}

fn default_true() -> bool {
    true
}

/// One producer's block-signing keys on one chain: no two of them sign two blocks at one
/// height between them (`[[watermarks.producers]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerGroupConfig {
    /// The chain (a name under `[[chains]]`).
    pub chain: String,
    /// The producer account.
    pub account: oryx_proto::antelope::Name,
    /// Every key in its block-signing authority, whether or not this signer holds it.
    pub keys: Vec<PublicKey>,
}

/// The shared watermark store of signer replicas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdConfig {
    /// Client URLs of the members, `https://host:port`.
    pub endpoints: Vec<String>,
    /// Key prefix of this deployment: replicas of one producer share it, nothing else does.
    #[serde(default = "default_etcd_prefix")]
    pub prefix: String,
    /// This replica's name (recorded with its reservations and in its audit log).
    pub replica: String,
    /// CA certificate (PEM) the members' certificates chain to.
    pub ca_cert: PathBuf,
    /// This replica's client certificate (PEM), for etcd's `--client-cert-auth`.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// Longest wait for one etcd request, in milliseconds.
    #[serde(default = "default_etcd_timeout_ms")]
    pub timeout_ms: u64,
    /// Longest wait for a connection to a member, in milliseconds.
    #[serde(default = "default_etcd_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

fn default_etcd_prefix() -> String {
    "/oryx".into()
}

/// Long enough for an fsync-bound etcd write under load, short enough that the node can still
/// ask another replica within nodeos's deadline once raised for HA.
fn default_etcd_timeout_ms() -> u64 {
    1000
}

fn default_etcd_connect_timeout_ms() -> u64 {
    500
}

impl EtcdConfig {
    fn check(&self) -> Result<(), String> {
        if self.endpoints.is_empty() {
            return Err("watermarks.etcd.endpoints: list the etcd members' client URLs".into());
        }
        if let Some(e) = self.endpoints.iter().find(|e| !e.starts_with("https://")) {
            return Err(format!(
                "watermarks.etcd.endpoints: {e:?} must be an https:// URL (etcd with --client-cert-auth)"
            ));
        }
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !ok(&self.replica) {
            return Err(format!(
                "watermarks.etcd.replica {:?}: give 1 to 64 letters, digits, '-', '_' or '.'",
                self.replica
            ));
        }
        if !self.prefix.starts_with('/') || self.prefix.split('/').skip(1).any(|p| !ok(p)) {
            return Err(format!(
                "watermarks.etcd.prefix {:?}: give a path like \"/oryx/myproducer\"",
                self.prefix
            ));
        }
        if self.timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err("watermarks.etcd timeouts must be above 0 ms".into());
        }
        Ok(())
    }
}

/// The audit log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The JSON-lines file.
    pub path: PathBuf,
    /// The key that signs ceremony transcripts (SignTranscript): one of `[[keys]]`, reserved for
    /// this, so it must list no chains, allow no blind digests and appear in no allow rule.
    #[serde(default)]
    pub signing_key: Option<PublicKey>,
    /// How many refusals per principal are written one by one; beyond, they are counted and
    /// written as one summary entry (see `audit::coalesce`).
    #[serde(default)]
    pub refusals: crate::audit::RefusalLimit,
}

/// The key registry: keys generated or retired at runtime (see [`crate::registry`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// The JSON file (written atomically; created on first use).
    pub path: PathBuf,
}

/// A chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Name used by keys and rules (e.g. `eos`).
    pub name: String,
    /// Chain id: 64 hex characters or a known chain's name.
    pub chain_id: String,
    /// Require fc-canonical K1 signatures (false only for chains that activated
    /// `ALLOW_NON_CANONICAL_SIGNATURES`).
    #[serde(default = "yes")]
    pub require_canonical: bool,
    /// The chain runs Savanna: blind digests are block ids whose first 4 bytes are the block
    /// number (false for legacy chains, whose blind digests only the wall-clock slot guards).
    /// Required: reading a legacy digest's random first bytes as a block number would let a
    /// conflicting block through about half the time.
    pub savanna: bool,
    /// Let a key sign its first blind Savanna block id with no watermark to bound it. Off by
    /// default: any four bytes name a height, so the first one could push the watermark past
    /// every real block. Sign a full block first (SignBlock, `oryx-node produce`) or import the
    /// chain's head (`watermark import`); `init --dev` turns it on for its private chain only.
    #[serde(default)]
    pub unbounded_first_blind_digest: bool,
}

fn yes() -> bool {
    true
}

/// A key backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum BackendConfig {
    /// A PKCS#11 token.
    #[cfg(feature = "pkcs11")]
    Pkcs11(crate::backend::pkcs11::Pkcs11Config),
    /// A YubiHSM 2.
    #[cfg(feature = "yubihsm")]
    Yubihsm(crate::backend::yubihsm::YubiHsmConfig),
    /// Encrypted software key files (development and tests only).
    Soft(crate::backend::soft_file::SoftDirConfig),
}

/// What a key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// SignBlock.
    Block,
    /// SignTransaction.
    Transaction,
    /// SignDigest.
    Digest,
}

impl RequestKind {
    /// The name used in config, logs and audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Block => "block",
            RequestKind::Transaction => "transaction",
            RequestKind::Digest => "digest",
        }
    }
}

/// A key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The public key (any string form).
    pub public_key: PublicKey,
    /// The backend (a name under `[backends]`).
    pub backend: String,
    /// Chains (names under `[[chains]]`) it may sign for.
    pub chains: Vec<String>,
    /// Allow SignDigest (blind digests, for the nodeos bridge).
    #[serde(default)]
    pub blind_digest: bool,
    /// Blind Savanna digests at an already signed height in a later slot (nodeos's retry).
    #[serde(default)]
    pub same_height_retry: RetryPolicy,
}

/// One allow-list rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowRule {
    /// The client certificate identity.
    pub principal: String,
    /// Keys it may use (any string form; no wildcards).
    pub keys: Vec<PublicKey>,
    /// Request kinds it may make with them.
    pub kinds: Vec<RequestKind>,
}

impl Config {
    /// Reads, parses, resolves and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            ConfigError::Invalid { message, .. } => ConfigError::Invalid {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: String::new(),
            message: top_level_hint(e.to_string()),
        })?;
        c.resolve(base);
        c.check().map_err(|message| ConfigError::Invalid {
            path: String::new(),
            message,
        })?;
        Ok(c)
    }

    fn resolve(&mut self, base: &Path) {
        let r = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        r(&mut self.server.ca_cert);
        r(&mut self.server.cert);
        r(&mut self.server.key);
        if let Some(c) = self.server.crl.as_mut() {
            r(c);
        }
        r(&mut self.watermarks.dir);
        if let Some(e) = self.watermarks.etcd.as_mut() {
            r(&mut e.ca_cert);
            r(&mut e.cert);
            r(&mut e.key);
        }
        r(&mut self.audit.path);
        if let Some(reg) = self.registry.as_mut() {
            r(&mut reg.path);
        }
        if let Some(p) = self.policy.as_mut() {
            r(p);
        }
        for b in self.backends.values_mut() {
            match b {
                #[cfg(feature = "pkcs11")]
                BackendConfig::Pkcs11(p) => r(&mut p.pin_file),
                #[cfg(feature = "yubihsm")]
                BackendConfig::Yubihsm(y) => {
                    r(&mut y.password_file);
                    #[cfg(feature = "yubihsm-mock")]
                    if let crate::backend::yubihsm::ConnectorConfig::Mock { preload } =
                        &mut y.connector
                    {
                        preload.iter_mut().for_each(r);
                    }
                }
                BackendConfig::Soft(s) => {
                    r(&mut s.dir);
                    r(&mut s.passphrase_file);
                }
            }
        }
    }

    fn check(&self) -> Result<(), String> {
        if let Some(e) = &self.watermarks.etcd {
            e.check()?;
        }
        if self.policy.is_some() && !self.allow.is_empty() {
            return Err(
                "give either a policy file (policy = ...) or [[allow]] rules, not both".into(),
            );
        }
        if let Some(o) = &self.observability
            && !o.listen.ip().is_loopback()
        {
            return Err(format!(
                "observability.listen {} must be a loopback address",
                o.listen
            ));
        }
        let mut chain_ids = Vec::new();
        for c in &self.chains {
            let id = parse_chain_id(&c.chain_id).map_err(|e| format!("chain {}: {e}", c.name))?;
            if chain_ids.iter().any(|(n, i)| n == &c.name || *i == id) {
                return Err(format!("chain {} (or its id) is listed twice", c.name));
            }
            chain_ids.push((c.name.clone(), id));
        }
        for k in &self.keys {
            let backend = self.backends.get(&k.backend).ok_or_else(|| {
                format!(
                    "key {}: no backend named {:?} under [backends]",
                    k.public_key, k.backend
                )
            })?;
            if matches!(backend, BackendConfig::Soft(_)) && !self.allow_soft_keys {
                return Err(format!(
                    "key {} uses the soft backend {:?}: software keys are for development and tests; set allow_soft_keys = true to use them",
                    k.public_key, k.backend
                ));
            }
            if k.chains.is_empty() && self.audit.signing_key != Some(k.public_key) {
                return Err(format!("key {}: list at least one chain", k.public_key));
            }
            for name in &k.chains {
                if resolve_chain(&chain_ids, name).is_none() {
                    return Err(format!(
                        "key {}: unknown chain {name:?} (configured under [[chains]]: {})",
                        k.public_key,
                        chain_ids
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        // Block ids and legacy block digests do not include the chain id, so a watermark per
        // (chain, key) would let one key sign two blocks at one height under two chain names.
        for k in &self.keys {
            let signs_blocks = k.blind_digest
                || self.allow.iter().any(|r| {
                    r.keys.contains(&k.public_key)
                        && r.kinds
                            .iter()
                            .any(|kind| matches!(kind, RequestKind::Block | RequestKind::Digest))
                });
            if signs_blocks && k.chains.len() > 1 {
                return Err(format!(
                    "key {} signs blocks (block/digest requests) and lists {} chains: block digests do not include the chain id, \
                     so a producer key may name only one chain; use one key per chain",
                    k.public_key,
                    k.chains.len()
                ));
            }
        }
        if self
            .keys
            .iter()
            .enumerate()
            .any(|(i, k)| self.keys[..i].iter().any(|o| o.public_key == k.public_key))
        {
            return Err("a key is listed twice under [[keys]]".into());
        }
        if let Some(audit_key) = &self.audit.signing_key {
            self.check_audit_key(audit_key)?;
        }
        self.producer_groups()?;
        for rule in &self.allow {
            for key in &rule.keys {
                if !self.keys.iter().any(|k| k.public_key == *key) {
                    return Err(format!(
                        "allow rule for {:?} names key {key}, which is not under [[keys]]",
                        rule.principal
                    ));
                }
            }
        }
        Ok(())
    }

    /// The transcript key must be held here and be useless for chain signing, so no node
    /// request can ever make it sign something that is not a transcript.
    fn check_audit_key(&self, audit_key: &PublicKey) -> Result<(), String> {
        let k = self
            .keys
            .iter()
            .find(|k| k.public_key == *audit_key)
            .ok_or_else(|| {
                format!(
                    "audit.signing_key {audit_key} is not under [[keys]]: add it with its backend and chains = []"
                )
            })?;
        if !k.chains.is_empty() || k.blind_digest {
            return Err(format!(
                "audit.signing_key {audit_key} is reserved for transcripts: give it chains = [] and no blind_digest"
            ));
        }
        if let Some(rule) = self.allow.iter().find(|r| r.keys.contains(audit_key)) {
            return Err(format!(
                "audit.signing_key {audit_key} is reserved for transcripts, but the allow rule for {:?} names it: remove it there",
                rule.principal
            ));
        }
        Ok(())
    }

    /// The chain id of a configured chain name.
    pub fn producer_groups(&self) -> Result<Vec<crate::watermark::scope::Group>, String> {
        let mut groups: Vec<crate::watermark::scope::Group> = Vec::new();
        for g in &self.watermarks.producers {
            let what = format!("watermarks.producers {}", g.account);
            let chain_id = self
                .chain_id(&g.chain)
                .ok_or_else(|| format!("{what}: unknown chain {:?}", g.chain))?;
            if g.account.0 == 0 {
                return Err("watermarks.producers: give the producer's account".into());
            }
            if g.keys.is_empty() {
                return Err(format!("{what}: list its block-signing keys"));
            }
            for (i, k) in g.keys.iter().enumerate() {
                if g.keys[..i].contains(k) {
                    return Err(format!("{what}: key {k} is listed twice"));
                }
                if let Some(o) = groups
                    .iter()
                    .find(|o| o.chain_id == chain_id && o.keys.contains(k))
                {
                    return Err(format!(
                        "{what}: key {k} is already in producer {}'s group on this chain",
                        o.producer
                    ));
                }
            }
            if groups
                .iter()
                .any(|o| o.chain_id == chain_id && o.producer == g.account)
            {
                return Err(format!("{what}: listed twice for chain {}", g.chain));
            }
            groups.push(crate::watermark::scope::Group {
                chain_id,
                producer: g.account,
                keys: g.keys.clone(),
            });
        }
        Ok(groups)
    }

    /// The chains whose first blind digest may be unbounded (`unbounded_first_blind_digest`).
    pub fn unbounded_blind_start(&self) -> Vec<Checksum256> {
        self.chains
            .iter()
            .filter(|c| c.unbounded_first_blind_digest)
            .filter_map(|c| parse_chain_id(&c.chain_id).ok())
            .collect()
    }

    /// Warnings for keys that sign blind digests (`blind_digest = true`) and transactions too
    /// (an `[[allow]]` rule, or with `policy` one of its rules, names the key for
    /// transactions): such a key holds account authority on chain, and a transaction digest
    /// ground to look like a nearby block id is signed through the blind path, where nothing
    /// decodes it. Keep producer keys out of every account permission.
    pub fn blind_keys_with_account_use(&self, policy: Option<&oryx_policy::Policy>) -> Vec<String> {
        let mut out = Vec::new();
        for k in self.keys.iter().filter(|k| k.blind_digest) {
            let key = k.public_key;
            let by: Vec<String> = match policy {
                Some(p) => p
                    .rules()
                    .iter()
                    .filter(|r| {
                        r.kinds.contains(&oryx_policy::Kind::Transaction)
                            && r.keys.iter().any(|kp| match kp {
                                oryx_policy::KeyPattern::Is(x) => *x == key,
                                _ => true,
                            })
                    })
                    .map(|r| format!("policy rule {:?}", r.name))
                    .collect(),
                None => self
                    .allow
                    .iter()
                    .filter(|a| {
                        a.kinds.contains(&RequestKind::Transaction) && a.keys.contains(&key)
                    })
                    .map(|a| format!("[[allow]] for {:?}", a.principal))
                    .collect(),
            };
            if !by.is_empty() {
                out.push(format!(
                    "key {key} signs blind digests (blind_digest = true) and transactions ({}): it \
                     holds account authority, and a transaction digest ground to look like a \
                     block id would be signed blind with it; give accounts their own keys",
                    by.join(", ")
                ));
            }
        }
        out
    }

    /// The configured chains by name.
    pub fn chain_names(&self) -> Vec<(String, Checksum256)> {
        self.chains
            .iter()
            .filter_map(|c| Some((c.name.clone(), parse_chain_id(&c.chain_id).ok()?)))
            .collect()
    }

    /// The id of a configured chain, named as anywhere in Oryx (see [`resolve_chain`]).
    pub fn chain_id(&self, name: &str) -> Option<Checksum256> {
        resolve_chain(&self.chain_names(), name)
    }
}

/// Reads and validates the policy file at `path` (the error names the file and line); its rules
/// may name `chains` as the config does (`[[chains]] name`), or by alias or id.
pub fn load_policy(
    path: &Path,
    chains: &[(String, Checksum256)],
) -> Result<oryx_policy::Policy, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    oryx_policy::Policy::parse_with_chains(&text, &chains.iter().cloned().collect())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// One vocabulary for chains, in `[[keys]] chains`, `[[watermarks.producers]] chain`,
/// GenerateKey and the policy: a `[[chains]] name` of this config, or an alias (`eos`, `wax`,
/// …) or 64 hex characters naming the id of a configured chain. A chain that is not configured
/// resolves to nothing.
pub fn resolve_chain(chains: &[(String, Checksum256)], text: &str) -> Option<Checksum256> {
    let text = text.trim();
    chains
        .iter()
        .find(|(n, _)| n == text)
        .map(|(_, id)| *id)
        .or_else(|| {
            let id = parse_chain_id(text).ok()?;
            chains.iter().any(|(_, c)| *c == id).then_some(id)
        })
}

/// The keys that belong before the first `[table]`: appended at the end of the file, TOML puts
/// them inside the last table, where they are unknown fields.
const TOP_LEVEL: [&str; 4] = ["policy", "admins", "reviewers", "allow_soft_keys"];

/// A parse error, with a hint when it is a top-level key written inside a table.
fn top_level_hint(message: String) -> String {
    match TOP_LEVEL
        .iter()
        .find(|k| message.contains(&format!("unknown field `{k}`")))
    {
        Some(k) => format!(
            "{message}\n`{k}` is a top-level key: write it before the first [table] of the file (at the end it lands inside the last table)"
        ),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY: &str = "PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63";

    fn sample(extra: &str) -> String {
        format!(
            r#"
allow_soft_keys = true
[server]
listen = "127.0.0.1:0"
ca_cert = "tls/ca.pem"
cert = "tls/server.pem"
key = "tls/server.key"
[watermarks]
dir = "watermarks"
[audit]
path = "audit.jsonl"
[[chains]]
name = "eos"
chain_id = "eos"
savanna = true
[[chains]]
name = "jungle"
chain_id = "jungle4"
savanna = true
[backends.dev]
type = "soft"
dir = "keys"
passphrase_file = "secrets/passphrase"
[[keys]]
public_key = "{KEY}"
backend = "dev"
chains = ["eos"]
blind_digest = true
[[allow]]
principal = "node1"
keys = ["{KEY}"]
kinds = ["block", "digest"]
{extra}"#
        )
    }

    #[test]
    fn parses_and_resolves_paths() {
        let c = Config::parse(&sample(""), Path::new("/etc/oryx")).unwrap();
        assert_eq!(c.server.ca_cert, Path::new("/etc/oryx/tls/ca.pem"));
        assert_eq!(
            c.chain_id("eos").unwrap().to_string(),
            "aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906"
        );
        assert_eq!(
            c.allow[0].kinds,
            vec![RequestKind::Block, RequestKind::Digest]
        );
    }

    #[test]
    fn one_chain_vocabulary_config_names_aliases_and_ids() {
        // The config names the EOS chain `main`; `eos` and its hex id name the same chain.
        let text = sample("").replace("name = \"eos\"", "name = \"main\"");
        let c = Config::parse(&text, Path::new(".")).unwrap();
        let id = c.chain_id("main").unwrap();
        assert_eq!(c.chain_id("eos"), Some(id));
        assert_eq!(c.chain_id(&id.to_string()), Some(id));
        assert_eq!(
            c.chain_id("wax"),
            None,
            "an alias of a chain not configured"
        );
        // The policy uses the same names.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(
            &path,
            "version = \"v\"\n[[rule]]\nname = \"r\"\nprincipals = [\"node1\"]\nkeys = [\"*\"]\nkinds = [\"block\"]\nchains = [\"main\", \"jungle\"]\n",
        )
        .unwrap();
        let p = load_policy(&path, &c.chain_names()).unwrap();
        assert_eq!(p.rules()[0].chains.as_ref().unwrap()[0], id);
        let e = load_policy(&path, &[]).unwrap_err();
        assert!(e.contains("chains"), "{e}");
    }

    #[test]
    fn rejects_typos_and_broken_references() {
        let typo = sample("").replace("blind_digest", "blind_digets");
        assert!(matches!(
            Config::parse(&typo, Path::new(".")),
            Err(ConfigError::Parse { .. })
        ));
        let no_soft = sample("").replace("allow_soft_keys = true", "");
        let e = Config::parse(&no_soft, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow_soft_keys"), "{e}");
        let bad_chain = sample("").replace(r#"chains = ["eos"]"#, r#"chains = ["wax"]"#);
        let e = Config::parse(&bad_chain, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown chain \"wax\"") && e.contains("eos, jungle"),
            "{e}"
        );
        let two_chains = sample("").replace(r#"chains = ["eos"]"#, r#"chains = ["eos", "jungle"]"#);
        let e = Config::parse(&two_chains, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("one chain"), "{e}");
        let no_savanna = sample("").replace("savanna = true\n", "");
        assert!(
            Config::parse(&no_savanna, Path::new(".")).is_err(),
            "savanna must be explicit"
        );
        let public = sample("[observability]\nlisten = \"0.0.0.0:9100\"\n");
        assert!(
            Config::parse(&public, Path::new("."))
                .unwrap_err()
                .to_string()
                .contains("loopback")
        );
    }

    #[test]
    fn producer_groups_are_checked() {
        const OTHER: &str = "PUB_K1_5bbkxaLdB5bfVZW6DJY8M74vwT2m61PqwywNUa5azfkJTvYa5H";
        let group = |chain: &str, account: &str, keys: &str| {
            format!(
                "[[watermarks.producers]]\nchain = \"{chain}\"\naccount = \"{account}\"\nkeys = {keys}\n"
            )
        };
        let both = format!("[\"{KEY}\", \"{OTHER}\"]");
        let c = Config::parse(
            &sample(&group("eos", "oryxproducer", &both)),
            Path::new("."),
        )
        .unwrap();
        let groups = c.producer_groups().unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].keys.len(), 2);
        assert_eq!(groups[0].chain_id, c.chain_id("eos").unwrap());
        // The same key may sign for one producer per chain.
        let twice = format!(
            "{}{}",
            group("eos", "oryxproducer", &both),
            group("eos", "another", &format!("[\"{OTHER}\"]"))
        );
        for (extra, want) in [
            (group("wax", "oryxproducer", &both), "unknown chain"),
            (
                group("eos", "oryxproducer", "[]"),
                "list its block-signing keys",
            ),
            (
                group("eos", "oryxproducer", &format!("[\"{KEY}\", \"{KEY}\"]")),
                "listed twice",
            ),
            (twice, "already in producer oryxproducer"),
            (group("eos", "", &both), "give the producer"),
        ] {
            let e = Config::parse(&sample(&extra), Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let bad_name = group("eos", "Not_A_Name", &both);
        assert!(Config::parse(&sample(&bad_name), Path::new(".")).is_err());
    }

    #[test]
    fn a_top_level_key_appended_at_the_end_says_where_it_belongs() {
        let e = Config::parse(&sample("policy = \"policy.toml\"\n"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`policy` is a top-level key"), "{e}");
    }

    #[test]
    fn the_transcript_key_is_reserved_for_transcripts() {
        const AUDIT: &str = "PUB_K1_5bbkxaLdB5bfVZW6DJY8M74vwT2m61PqwywNUa5azfkJTvYa5H";
        let with_audit = |chains: &str, extra: &str| {
            sample(&format!(
                "[[keys]]\npublic_key = \"{AUDIT}\"\nbackend = \"dev\"\nchains = {chains}\n{extra}"
            ))
            .replace(
                "path = \"audit.jsonl\"",
                &format!("path = \"audit.jsonl\"\nsigning_key = \"{AUDIT}\""),
            )
        };
        let c = Config::parse(&with_audit("[]", ""), Path::new(".")).unwrap();
        assert_eq!(c.audit.signing_key.unwrap().to_string(), AUDIT);
        for (chains, extra, want) in [
            ("[\"eos\"]", "", "chains = []"),
            ("[]", "blind_digest = true", "chains = []"),
            (
                "[]",
                &format!(
                    "[[allow]]\nprincipal = \"x\"\nkeys = [\"{AUDIT}\"]\nkinds = [\"transaction\"]"
                ),
                "allow rule",
            ),
        ] {
            let e = Config::parse(&with_audit(chains, extra), Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
        // Not under [[keys]] at all.
        let missing = sample("").replace(
            "path = \"audit.jsonl\"",
            &format!("path = \"audit.jsonl\"\nsigning_key = \"{AUDIT}\""),
        );
        let e = Config::parse(&missing, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not under [[keys]]"), "{e}");
        // Other keys still need a chain.
        let no_chain = sample("").replace(r#"chains = ["eos"]"#, "chains = []");
        assert!(Config::parse(&no_chain, Path::new(".")).is_err());
    }
}
