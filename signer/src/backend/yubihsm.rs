//! YubiHSM 2 keys: generated on the device, used there, never exported.
//!
//! Guards:
//! - keys are generated *on* the YubiHSM (`EC_K256` for K1, `EC_P256` for R1) with the single
//!   capability `sign-ecdsa` — never `exportable-under-wrap` — in the configured domain, under a
//!   unique label of at most 40 bytes;
//! - the authentication password is read from a file, trimmed, kept only as a [`Secret`]
//!   (zeroized, prints as `<redacted>`), and appears in no log line and no error message;
//! - this backend signs one 32-byte digest once and returns the raw (r, s) with no recovery id.
//!   Low-S, the recovery id and the K1 canonical loop are done above, in [`crate::signing`].
//!
//! # Sessions and reconnection
//!
//! One long-lived [`yubihsm::Client`] holds one authenticated, encrypted (SCP03) session; a new
//! session costs two extra round trips (create + authenticate), so it is kept open. The
//! password is turned into the authentication key (PBKDF2) once, at startup. The crate behaves as
//! follows, and this module adds one step:
//! - a session idle for longer than its 30 s inactivity timeout (less 1 s of slack) is replaced
//!   transparently by a new one before the next command, using the credentials the client keeps;
//! - a transport error (connector down, USB unplugged, I/O error) or a cryptographic error on the
//!   channel aborts the session: that command fails, and the *next* command opens a new session;
//! - an error the device returns at the outer (session) level, such as "invalid session" after the
//!   HSM was power-cycled, is *not* treated by the crate as a lost session: every later command
//!   would fail the same way. So on every error classified as a connection or session problem this
//!   provider drops its client and builds a fresh one (lazily connected), and the next call opens
//!   a new session. The failed call itself is not retried: it returns
//!   [`BackendError::Unavailable`] and the pipeline above decides (fail closed).
//!
//! A dropped session is not closed on the device: it times out there after 30 s. The device has
//! 16 session slots, shared with every other client of the same HSM.
//!
//! The client serialises commands through one session mutex, so concurrent signatures queue.
//!
//! # Latency (DESIGN §6)
//!
//! A real YubiHSM 2 takes about **75 ms per ECDSA signature**, and a K1 signature needs on average
//! two (canonical loop), so ~150 ms. That is far above nodeos's default `keosd-provider-timeout`
//! of **5 ms**: a producer signing blocks through a YubiHSM must raise that timeout, and should
//! expect one block signature at a time.
//!
//! # Errors
//!
//! Connection and session problems (connector unreachable, USB errors, closed or invalid
//! sessions, session slots full, protocol errors) map to [`BackendError::Unavailable`]; refusals
//! and failures by the device (object not found, insufficient permissions, wrong credentials)
//! map to [`BackendError::Failed`]. Messages name the auth key id, object ids and labels, never
//! the password.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use oryx_proto::antelope::{Checksum256, KeyType, PublicKey};
use yubihsm::{
    Capability, Client, Connector, Credentials, Domain, asymmetric, client, device, object,
};

use super::{BackendError, KeyBackend, KeyInfo, KeyProvider, RawSignature};
use crate::secret::{Secret, SecretKind};

/// Maximum length of a YubiHSM object label, in bytes.
pub const MAX_LABEL_LEN: usize = object::LABEL_SIZE;

/// How this signer reaches the YubiHSM 2.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ConnectorConfig {
    /// Through `yubihsm-connector` over HTTP.
    Http {
        /// Address of `yubihsm-connector` (IP address or host name), e.g. `127.0.0.1`.
        addr: String,
        /// Its port (`yubihsm-connector` listens on 12345 by default).
        port: u16,
    },
    /// Directly over USB (the process needs access to the device node).
    Usb {
        /// The device's 10-digit serial number; `None` takes the first YubiHSM found.
        #[serde(default)]
        serial: Option<String>,
    },
    /// The yubihsm crate's in-process `MockHsm` (factory auth key 1, password `password`), for
    /// end-to-end tests of the real binary. Only with the `yubihsm-mock` cargo feature; never in
    /// production.
    #[cfg(feature = "yubihsm-mock")]
    Mock {
        /// Key files (`PVT_K1_…`, `PVT_R1_…` or WIF) imported into the fresh mock at connect, so
        /// a test can start the real binary with keys it knows (the mock forgets everything when
        /// the process exits).
        #[serde(default)]
        preload: Vec<PathBuf>,
    },
}

/// Configuration of a YubiHSM 2 key provider.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct YubiHsmConfig {
    /// How to reach the device.
    pub connector: ConnectorConfig,
    /// Object id of the authentication key to log in with.
    pub auth_key_id: u16,
    /// File holding that authentication key's password (trimmed; readable only by the service).
    pub password_file: PathBuf,
    /// Domain (1–16) in which keys are generated and listed.
    #[serde(default = "default_domain")]
    pub domain: u16,
}

fn default_domain() -> u16 {
    1
}

/// The connection state shared by the provider and every key it opened.
struct Shared {
    connector: Connector,
    credentials: Credentials,
    auth_key_id: u16,
    domain: Domain,
    domain_number: u16,
    /// The live client and a generation number, bumped each time a broken client is replaced.
    client: RwLock<(u64, Client)>,
}

impl Shared {
    fn current(&self) -> (u64, Client) {
        let guard = self.client.read().unwrap_or_else(PoisonError::into_inner);
        (guard.0, guard.1.clone())
    }

    /// Runs one device call; on a connection or session problem, replaces the client so the
    /// next call starts a fresh session.
    fn call<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Client) -> Result<T, client::Error>,
    ) -> Result<T, BackendError> {
        let (generation, client) = self.current();
        f(&client).map_err(|e| self.fail(what, generation, &e))
    }

    /// Classifies an error from the client of `generation`, replacing that client when the
    /// error is a connection or session problem.
    fn fail(&self, what: &str, generation: u64, e: &client::Error) -> BackendError {
        let err = classify(what, self.auth_key_id, e);
        if matches!(err, BackendError::Unavailable(_)) {
            self.reset(generation);
        }
        err
    }

    fn reset(&self, failed_generation: u64) {
        let mut guard = self.client.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may already have replaced the client that failed.
        if guard.0 != failed_generation {
            return;
        }
        // `create` does no I/O and cannot fail today; if it ever does, keep the old client: the
        // crate still reopens sessions it knows are closed.
        if let Ok(fresh) = Client::create(self.connector.clone(), self.credentials.clone()) {
            *guard = (failed_generation.wrapping_add(1), fresh);
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YubiHsm")
            .field("auth_key_id", &self.auth_key_id)
            .field("domain", &self.domain_number)
            .finish_non_exhaustive()
    }
}

/// Maps a yubihsm error to a backend error without secrets: connection and session problems are
/// `Unavailable`, everything else `Failed`.
fn classify(what: &str, auth_key_id: u16, e: &client::Error) -> BackendError {
    use client::ErrorKind as K;
    match e.kind() {
        K::AuthenticationError => BackendError::Failed(format!(
            "YubiHSM {what}: authentication with auth key {auth_key_id} failed \
             (wrong password in password_file, or wrong auth_key_id): {e}"
        )),
        K::ConnectorError
        | K::ClosedSessionError
        | K::CreateFailed
        | K::ProtocolError
        | K::ResponseError => BackendError::Unavailable(format!("YubiHSM {what}: {e}")),
        K::DeviceError => match e.device_error() {
            Some(
                device::ErrorKind::InvalidSession
                | device::ErrorKind::SessionsFull
                | device::ErrorKind::SessionFailed,
            ) => BackendError::Unavailable(format!("YubiHSM {what}: {e}")),
            _ => BackendError::Failed(format!("YubiHSM {what}: {e}")),
        },
    }
}

/// The YubiHSM 2 algorithm for a key type.
fn algorithm_for(kind: KeyType) -> asymmetric::Algorithm {
    match kind {
        KeyType::K1 => asymmetric::Algorithm::EcK256,
        KeyType::R1 => asymmetric::Algorithm::EcP256,
    }
}

/// The key type for a YubiHSM 2 algorithm, if Antelope can use it.
fn kind_for(algorithm: yubihsm::Algorithm) -> Option<KeyType> {
    match algorithm {
        yubihsm::Algorithm::Asymmetric(asymmetric::Algorithm::EcK256) => Some(KeyType::K1),
        yubihsm::Algorithm::Asymmetric(asymmetric::Algorithm::EcP256) => Some(KeyType::R1),
        _ => None,
    }
}

/// The key id as the operator sees it in `yubihsm-shell`: `0x0011`.
fn id_string(id: object::Id) -> String {
    format!("0x{id:04x}")
}

/// Keys in one domain of one YubiHSM 2.
#[derive(Debug)]
pub struct YubiHsmProvider {
    shared: Arc<Shared>,
    /// Serialises `generate` so two operators cannot race for a label or an object id.
    generating: Mutex<()>,
}

impl YubiHsmProvider {
    /// Connects as configured: reads the password file, builds the HTTP or USB connector, opens
    /// and authenticates a session (so a wrong password is found at startup).
    pub fn connect(config: &YubiHsmConfig) -> Result<Self, BackendError> {
        let password = Secret::from_file(SecretKind::YubiHsmPassword, &config.password_file)?;
        let connector = match &config.connector {
            ConnectorConfig::Http { addr, port } => Connector::http(&yubihsm::HttpConfig {
                addr: addr.clone(),
                port: *port,
                ..yubihsm::HttpConfig::default()
            }),
            ConnectorConfig::Usb { serial } => {
                let serial = serial
                    .as_deref()
                    .map(|s| {
                        s.parse::<device::SerialNumber>().map_err(|_| {
                            BackendError::Failed(format!(
                                "invalid YubiHSM serial number {s:?} (expected 10 digits)"
                            ))
                        })
                    })
                    .transpose()?;
                Connector::usb(&yubihsm::UsbConfig {
                    serial,
                    ..yubihsm::UsbConfig::default()
                })
            }
            #[cfg(feature = "yubihsm-mock")]
            ConnectorConfig::Mock { .. } => Connector::mockhsm(),
        };
        let provider =
            Self::with_connector(connector, config.auth_key_id, &password, config.domain)?;
        #[cfg(feature = "yubihsm-mock")]
        if let ConnectorConfig::Mock { preload } = &config.connector {
            provider.preload(preload)?;
        }
        Ok(provider)
    }

    /// Imports key files into a mock HSM (test-only: a real device generates its keys).
    #[cfg(feature = "yubihsm-mock")]
    fn preload(&self, files: &[PathBuf]) -> Result<(), BackendError> {
        for (i, path) in files.iter().enumerate() {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| BackendError::Failed(format!("{}: {e}", path.display())))?,
            );
            let key = oryx_proto::antelope::PrivateKey::parse(text.trim())
                .map_err(|e| BackendError::Failed(format!("{}: {e}", path.display())))?;
            let id = 0x0100 + i as u16;
            let label = Self::check_label(&format!("preload-{i}"))?;
            let secret = zeroize::Zeroizing::new(key.secret_bytes().to_vec());
            self.shared.call("put asymmetric key", |c| {
                c.put_asymmetric_key(
                    id,
                    label.clone(),
                    self.shared.domain,
                    Capability::SIGN_ECDSA,
                    algorithm_for(key.kind()),
                    secret.to_vec(),
                )
            })?;
        }
        Ok(())
    }

    /// Connects through an already built connector (tests use `Connector::mockhsm()`), opening
    /// and authenticating a session now.
    pub fn with_connector(
        connector: Connector,
        auth_key_id: u16,
        password: &Secret,
        domain: u16,
    ) -> Result<Self, BackendError> {
        let domain_flag = Domain::at(usize::from(domain)).map_err(|_| {
            BackendError::Failed(format!("invalid YubiHSM domain {domain} (expected 1-16)"))
        })?;
        let credentials = Credentials::from_password(auth_key_id, password.expose());
        let client = Client::open(connector.clone(), credentials.clone(), true)
            .map_err(|e| classify("login", auth_key_id, &e))?;
        Ok(YubiHsmProvider {
            shared: Arc::new(Shared {
                connector,
                credentials,
                auth_key_id,
                domain: domain_flag,
                domain_number: domain,
                client: RwLock::new((0, client)),
            }),
            generating: Mutex::new(()),
        })
    }

    /// The public key and label of an asymmetric key object, if it is an Antelope signing key
    /// in this provider's domain.
    fn describe(&self, id: object::Id) -> Result<Option<KeyInfo>, BackendError> {
        let info = self.shared.call("get object info", |c| {
            c.get_object_info(id, object::Type::AsymmetricKey)
        })?;
        let Some(kind) = kind_for(info.algorithm) else {
            return Ok(None);
        };
        if !info.capabilities.contains(Capability::SIGN_ECDSA)
            || !info.domains.contains(self.shared.domain)
        {
            return Ok(None);
        }
        let public = self
            .shared
            .call("get public key", |c| c.get_public_key(id))?;
        let public_key = public_key_from(kind, public.as_slice()).ok_or_else(|| {
            BackendError::Failed(format!(
                "YubiHSM key {} has a malformed public key",
                id_string(id)
            ))
        })?;
        let label = info.label.try_as_str().map_err(|_| {
            BackendError::Failed(format!(
                "YubiHSM key {} has a label that is not UTF-8",
                id_string(id)
            ))
        })?;
        Ok(Some(KeyInfo {
            label: label.to_owned(),
            id: id_string(id),
            public_key,
        }))
    }

    fn check_label(label: &str) -> Result<object::Label, BackendError> {
        if label.is_empty() {
            return Err(BackendError::Failed(
                "a YubiHSM key label cannot be empty".into(),
            ));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(BackendError::Failed(format!(
                "YubiHSM labels are at most {MAX_LABEL_LEN} bytes; {label:?} has {}",
                label.len()
            )));
        }
        if label.contains('\0') {
            return Err(BackendError::Failed(
                "a YubiHSM key label cannot contain NUL".into(),
            ));
        }
        object::Label::from_bytes(label.as_bytes())
            .map_err(|_| BackendError::Failed(format!("invalid YubiHSM label {label:?}")))
    }
}

/// The YubiHSM returns an EC public key as X ‖ Y (64 bytes for 256-bit curves), without the SEC1
/// 0x04 tag.
fn public_key_from(kind: KeyType, xy: &[u8]) -> Option<PublicKey> {
    if xy.len() != 64 {
        return None;
    }
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04;
    sec1[1..].copy_from_slice(xy);
    PublicKey::from_sec1(kind, &sec1).ok()
}

impl KeyProvider for YubiHsmProvider {
    fn kind(&self) -> &'static str {
        "yubihsm"
    }

    fn generate(&self, label: &str, kind: KeyType) -> Result<KeyInfo, BackendError> {
        let hsm_label = Self::check_label(label)?;
        let _one_at_a_time = self
            .generating
            .lock()
            .unwrap_or_else(PoisonError::into_inner);

        let same_label = self.shared.call("list objects", |c| {
            c.list_objects(&[object::Filter::Label(hsm_label.clone())])
        })?;
        if !same_label.is_empty() {
            return Err(BackendError::Failed(format!(
                "a YubiHSM object labelled {label:?} already exists"
            )));
        }

        // Object ids are per type; take the lowest one no visible asymmetric key uses. A key in
        // a domain we cannot see may still hold it: the device then answers "object exists" and
        // we move on to the next free id.
        let mut used: Vec<object::Id> = self
            .shared
            .call("list objects", |c| {
                c.list_objects(&[object::Filter::Type(object::Type::AsymmetricKey)])
            })?
            .into_iter()
            .map(|e| e.object_id)
            .collect();
        const MAX_TRIES: usize = 16;
        for _ in 0..MAX_TRIES {
            let id = (1..=object::Id::MAX)
                .find(|id| !used.contains(id))
                .ok_or_else(|| BackendError::Failed("no free YubiHSM object id".into()))?;
            let (generation, client) = self.shared.current();
            let generated = client.generate_asymmetric_key(
                id,
                hsm_label.clone(),
                self.shared.domain,
                // Signing only: in particular not EXPORTABLE_UNDER_WRAP, so the key can never
                // leave the device, not even wrapped.
                Capability::SIGN_ECDSA,
                algorithm_for(kind),
            );
            match generated {
                Ok(id) => {
                    return self.describe(id)?.ok_or_else(|| {
                        BackendError::Failed(format!(
                            "YubiHSM key {} was generated but is not usable for signing",
                            id_string(id)
                        ))
                    });
                }
                Err(e) if e.device_error() == Some(device::ErrorKind::ObjectExists) => {
                    used.push(id)
                }
                Err(e) => return Err(self.shared.fail("generate key", generation, &e)),
            }
        }
        Err(BackendError::Failed(
            "no free YubiHSM object id found after several attempts".into(),
        ))
    }

    fn list(&self) -> Result<Vec<KeyInfo>, BackendError> {
        let entries = self.shared.call("list objects", |c| {
            c.list_objects(&[
                object::Filter::Type(object::Type::AsymmetricKey),
                object::Filter::Capabilities(Capability::SIGN_ECDSA),
                object::Filter::Domains(self.shared.domain),
            ])
        })?;
        let mut keys = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(info) = self.describe(entry.object_id)? {
                keys.push(info);
            }
        }
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(keys)
    }

    fn open(&self, public_key: &PublicKey) -> Result<Arc<dyn KeyBackend>, BackendError> {
        let entries = self.shared.call("list objects", |c| {
            c.list_objects(&[
                object::Filter::Type(object::Type::AsymmetricKey),
                object::Filter::Capabilities(Capability::SIGN_ECDSA),
                object::Filter::Domains(self.shared.domain),
                object::Filter::Algorithm(yubihsm::Algorithm::Asymmetric(algorithm_for(
                    public_key.kind(),
                ))),
            ])
        })?;
        for entry in entries {
            if let Some(info) = self.describe(entry.object_id)?
                && info.public_key == *public_key
            {
                return Ok(Arc::new(YubiHsmKey {
                    shared: Arc::clone(&self.shared),
                    id: entry.object_id,
                    public_key: *public_key,
                }));
            }
        }
        Err(BackendError::Failed(format!(
            "no YubiHSM signing key for {public_key} in domain {}",
            self.shared.domain_number
        )))
    }

    fn health(&self) -> Result<(), BackendError> {
        const PING: &[u8] = b"oryx health";
        let echoed = self.shared.call("echo", |c| c.echo(PING))?;
        if echoed != PING {
            return Err(BackendError::Unavailable(
                "YubiHSM echo returned other bytes".into(),
            ));
        }
        Ok(())
    }
}

/// One signing key on a YubiHSM 2, sharing its provider's session.
pub struct YubiHsmKey {
    shared: Arc<Shared>,
    id: object::Id,
    public_key: PublicKey,
}

impl YubiHsmKey {
    /// The key's object id on the device.
    pub fn object_id(&self) -> u16 {
        self.id
    }
}

impl fmt::Debug for YubiHsmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YubiHsmKey")
            .field("id", &id_string(self.id))
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl KeyBackend for YubiHsmKey {
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// One `Sign ECDSA` command. The device draws a random nonce, so `attempt` is ignored; the
    /// answer is DER and is returned as raw (r, s), possibly high-S, without a recovery id.
    fn sign_digest(
        &self,
        digest: &Checksum256,
        _attempt: u32,
    ) -> Result<RawSignature, BackendError> {
        let der = self.shared.call("sign", |c| {
            c.sign_ecdsa_prehash_raw(self.id, digest.0.to_vec())
        })?;
        let (r, s) = parse_signature(&der).ok_or_else(|| {
            BackendError::Failed(format!(
                "YubiHSM key {} returned a malformed ECDSA signature",
                id_string(self.id)
            ))
        })?;
        Ok(RawSignature {
            r,
            s,
            recid_hint: None,
        })
    }
}

/// Parses the device's answer: a DER `SEQUENCE { INTEGER r, INTEGER s }` (what the YubiHSM 2
/// returns), or, failing that, a raw 64-byte r ‖ s. Whatever comes out is verified by recovery
/// above, so a misreading produces an error, never a wrong signature.
fn parse_signature(bytes: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    if let Some(rs) = parse_der(bytes) {
        return Some(rs);
    }
    if bytes.len() == 64 {
        let (r, s) = bytes.split_at(32);
        return Some((r.try_into().ok()?, s.try_into().ok()?));
    }
    None
}

/// Strict DER for a 256-bit ECDSA signature: short-form lengths, minimal positive integers.
fn parse_der(bytes: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x30 || len >= 0x80 || usize::from(len) != body.len() {
        return None;
    }
    let (r, rest) = der_integer(body)?;
    let (s, rest) = der_integer(rest)?;
    rest.is_empty().then_some((r, s))
}

/// One DER INTEGER that is positive, minimally encoded and at most 32 bytes of magnitude.
fn der_integer(bytes: &[u8]) -> Option<([u8; 32], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    if tag != 0x02 || len == 0 || len >= 0x80 || rest.len() < len {
        return None;
    }
    let (mut value, rest) = rest.split_at(len);
    // Negative numbers are not signature scalars.
    if value[0] & 0x80 != 0 {
        return None;
    }
    if value[0] == 0 && len > 1 {
        // A leading zero is allowed only to keep the next byte's top bit from reading as a sign.
        if value[1] & 0x80 == 0 {
            return None;
        }
        value = &value[1..];
    }
    if value.len() > 32 {
        return None;
    }
    let mut out = [0u8; 32];
    out[32 - value.len()..].copy_from_slice(value);
    Some((out, rest))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn der(r: &[u8], s: &[u8]) -> Vec<u8> {
        let mut body = vec![0x02, r.len() as u8];
        body.extend_from_slice(r);
        body.extend_from_slice(&[0x02, s.len() as u8]);
        body.extend_from_slice(s);
        let mut out = vec![0x30, body.len() as u8];
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn der_signatures_parse_to_32_byte_big_endian_scalars() {
        let mut r = vec![0x00];
        r.extend_from_slice(&[0xff; 32]);
        let s = [0x01, 0x02];
        let (pr, ps) = parse_der(&der(&r, &s)).unwrap();
        assert_eq!(pr, [0xff; 32]);
        let mut want = [0u8; 32];
        want[30] = 1;
        want[31] = 2;
        assert_eq!(ps, want);
    }

    #[test]
    fn malformed_der_is_refused() {
        // Negative, non-minimal, too long, trailing bytes, wrong tag.
        assert!(parse_der(&der(&[0x80], &[1])).is_none());
        assert!(parse_der(&der(&[0x00, 0x01], &[1])).is_none());
        assert!(parse_der(&der(&[0x01; 33], &[1])).is_none());
        let mut trailing = der(&[1], &[1]);
        trailing.push(0);
        assert!(parse_der(&trailing).is_none());
        let mut tag = der(&[1], &[1]);
        tag[0] = 0x31;
        assert!(parse_der(&tag).is_none());
        assert!(parse_der(&[]).is_none());
        assert!(parse_signature(&[7; 63]).is_none());
        assert_eq!(parse_signature(&[7; 64]), Some(([7; 32], [7; 32])));
    }

    #[test]
    fn config_is_a_tagged_enum_with_defaults_and_no_unknown_fields() {
        let http: YubiHsmConfig = serde_json::from_str(
            r#"{"connector":{"type":"http","addr":"127.0.0.1","port":12345},
                "auth_key_id":1,"password_file":"/etc/oryx/yubihsm-password"}"#,
        )
        .unwrap();
        assert_eq!(http.domain, 1);
        assert_eq!(
            http.connector,
            ConnectorConfig::Http {
                addr: "127.0.0.1".into(),
                port: 12345
            }
        );
        let usb: YubiHsmConfig = serde_json::from_str(
            r#"{"connector":{"type":"usb","serial":"0123456789"},
                "auth_key_id":2,"password_file":"p","domain":3}"#,
        )
        .unwrap();
        assert_eq!(
            usb.connector,
            ConnectorConfig::Usb {
                serial: Some("0123456789".into())
            }
        );
        let usb_any: YubiHsmConfig = serde_json::from_str(
            r#"{"connector":{"type":"usb"},"auth_key_id":2,"password_file":"p"}"#,
        )
        .unwrap();
        assert_eq!(usb_any.connector, ConnectorConfig::Usb { serial: None });
        for bad in [
            r#"{"connector":{"type":"http","addr":"a","port":1,"tls":true},"auth_key_id":1,"password_file":"p"}"#,
            r#"{"connector":{"type":"usb"},"auth_key_id":1,"password_file":"p","password":"x"}"#,
            r#"{"connector":{"type":"pcsc"},"auth_key_id":1,"password_file":"p"}"#,
        ] {
            assert!(serde_json::from_str::<YubiHsmConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_longer_than_40_bytes_are_refused() {
        assert!(YubiHsmProvider::check_label(&"a".repeat(40)).is_ok());
        assert!(YubiHsmProvider::check_label(&"a".repeat(41)).is_err());
        assert!(YubiHsmProvider::check_label("").is_err());
        assert!(YubiHsmProvider::check_label("a\0b").is_err());
    }
}
