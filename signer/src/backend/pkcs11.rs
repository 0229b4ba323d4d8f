//! Keys inside a PKCS#11 token (SoftHSM2, network and PCIe HSMs), through `cryptoki`.
//!
//! Guards:
//! - keys are generated *on the token* as `CKA_SENSITIVE`, non-`CKA_EXTRACTABLE`, private token
//!   objects; nothing here reads, wraps or exports a private key;
//! - the user PIN comes from a file, lives in memory only as a [`Secret`] (zeroized, `Debug`
//!   prints `<redacted>`) and in `cryptoki`'s zeroizing `AuthPin`, and never appears in a log
//!   line or an error message;
//! - sessions are long-lived and logged in once (a new session + login costs ~0.8 ms, DESIGN §6);
//!   after a session loss (token removed, module restarted, user logged out behind our back) the
//!   session is dropped, a new one opened and logged in, the key handle found again, and the
//!   operation retried **once**; if that fails too the backend reports
//!   [`BackendError::Unavailable`] and signs nothing (fail closed);
//! - a backend signs one digest once with `CKM_ECDSA` and returns the raw (r, s): low-S, recovery
//!   id and the K1 canonical loop are done above, in [`crate::signing`].

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use oryx_proto::antelope::{Checksum256, KeyType, PublicKey};

use super::{BackendError, KeyBackend, KeyInfo, KeyProvider, RawSignature};
use crate::secret::{Secret, SecretKind};

/// DER of the secp256k1 OID 1.3.132.0.10, as `CKA_EC_PARAMS` holds it.
const SECP256K1_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
/// DER of the prime256v1 (P-256) OID 1.2.840.10045.3.1.7.
const PRIME256V1_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn default_sessions() -> usize {
    2
}

/// Where the token is and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Path of the vendor's PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// `CKA_LABEL` of the token (as `softhsm2-util --init-token --label` set it).
    pub token_label: String,
    /// File holding the user PIN (surrounding whitespace is ignored). Keep it readable only by
    /// the service user.
    pub pin_file: PathBuf,
    /// How many logged-in sessions to keep open: the number of signatures in flight at once.
    #[serde(default = "default_sessions")]
    pub sessions: usize,
    /// Try two K1 nonces at once, on two sessions, for blocks and digests (about half the K1
    /// attempts fail fc's canonical rule). Only for an HSM that really signs in parallel:
    /// SoftHSM2 serializes signing, and there it made `sign_digest` p50 slower (3.8 vs 2.5 ms on
    /// the development machine), so it is off unless set.
    #[serde(default)]
    pub parallel_k1_attempts: bool,
}

/// The PIN as `cryptoki` takes it. `AuthPin` is a `secrecy::SecretString`: zeroized on drop as
/// well.
fn auth_pin(pin: &Secret) -> Result<AuthPin, BackendError> {
    // A PIN is checked to be UTF-8 when read (`SecretKind::Pkcs11Pin`), so this is only a guard.
    let text = pin
        .expose_str()
        .ok_or_else(|| BackendError::Failed("the PIN is not UTF-8".into()))?;
    Ok(AuthPin::new(text.into()))
}

/// How a PKCS#11 failure should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// The session (or its login, or the key handle) is gone: reconnect and retry once.
    Lost,
    /// Anything else: report, keep the session.
    Other,
}

fn classify(e: &CkError) -> Class {
    match e {
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::UserNotLoggedIn
            | RvError::CryptokiNotInitialized
            | RvError::SlotIdInvalid
            | RvError::ObjectHandleInvalid
            | RvError::KeyHandleInvalid,
            _,
        ) => Class::Lost,
        _ => Class::Other,
    }
}

/// What an operation run on a pooled session can fail with.
#[derive(Debug)]
enum OpError {
    /// The module said no.
    Ck(CkError),
    /// We said no (e.g. an ambiguous key id); never retried.
    Refused(String),
}

impl From<CkError> for OpError {
    fn from(e: CkError) -> Self {
        OpError::Ck(e)
    }
}

/// A short, secret-free description: the function and the return value's name.
fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("{function} returned {rv:?}"),
        other => other.to_string(),
    }
}

fn failed(what: &str, e: &CkError) -> BackendError {
    BackendError::Failed(format!("PKCS#11 {what}: {}", describe(e)))
}

fn unavailable(what: &str, e: &CkError) -> BackendError {
    BackendError::Unavailable(format!("PKCS#11 {what}: {}", describe(e)))
}

fn map_err(what: &str, e: &CkError) -> BackendError {
    match classify(e) {
        Class::Lost => unavailable(what, e),
        Class::Other => failed(what, e),
    }
}

/// Pool bookkeeping: idle sessions and how many exist in total (idle + checked out).
#[derive(Debug)]
struct PoolState {
    idle: Vec<Session>,
    live: usize,
}

/// The token connection shared by the provider and every key it opened.
#[derive(Debug)]
struct Token {
    ctx: Pkcs11,
    label: String,
    slot: Mutex<Slot>,
    pin: Secret,
    size: usize,
    parallel_k1_attempts: bool,
    pool: Mutex<PoolState>,
    available: Condvar,
    /// Held while the module is finalized and initialized again, so two threads never reset it
    /// at once.
    resetting: Mutex<()>,
}

/// How long a request waits for a pooled session before the HSM counts as unavailable (a wedged
/// device must produce a refusal, not a hung request).
const CHECKOUT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn initialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another part of the process (or another provider on the same module) got there first.
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Slot, BackendError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| unavailable("listing slots", &e))?;
    let mut found = Vec::new();
    for slot in slots {
        // A slot whose token cannot be read now is simply not the one we are looking for.
        if let Ok(info) = ctx.get_token_info(slot)
            && info.label().trim_end() == label
        {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(BackendError::Unavailable(format!(
            "no PKCS#11 token labelled {label:?} is present"
        ))),
        _ => Err(BackendError::Failed(format!(
            "{} PKCS#11 tokens are labelled {label:?}: labels must be unique",
            found.len()
        ))),
    }
}

/// Why opening a session failed: for good, or in a way a module reset may cure.
enum Reopen {
    Fail(BackendError),
    Reset(String),
}

impl Token {
    /// Opens a read-write session on the token and logs the user in. When the login fails for
    /// a reason other than the PIN (the token was lost and came back, and the module kept stale
    /// state), the module is finalized and initialized again once and the token found anew.
    fn open_session(&self) -> Result<Session, BackendError> {
        match self.open_session_once() {
            Err(Reopen::Reset(first)) => {
                // Every session of this module is invalid after this; pooled ones are replaced
                // on their next use through the session-loss path.
                let _one_reset_at_a_time = lock(&self.resetting);
                let _ = self.ctx.clone().finalize();
                initialize(&self.ctx).map_err(|e| unavailable("initializing the module", &e))?;
                let slot = find_slot(&self.ctx, &self.label)?;
                *lock(&self.slot) = slot;
                self.open_session_once().map_err(|e| match e {
                    Reopen::Reset(again) => BackendError::Unavailable(format!(
                        "{first}; after reinitializing the module: {again}"
                    )),
                    Reopen::Fail(e) => e,
                })
            }
            Err(Reopen::Fail(e)) => Err(e),
            Ok(s) => Ok(s),
        }
    }

    fn open_session_once(&self) -> Result<Session, Reopen> {
        let slot = *lock(&self.slot);
        let session = match self.ctx.open_rw_session(slot) {
            Ok(s) => s,
            Err(e) if classify(&e) == Class::Lost => {
                // The module may have been finalized, or the token moved to another slot:
                // initialize again and look the token up by label.
                initialize(&self.ctx)
                    .map_err(|e| Reopen::Fail(unavailable("initializing the module", &e)))?;
                let slot = find_slot(&self.ctx, &self.label).map_err(Reopen::Fail)?;
                *lock(&self.slot) = slot;
                self.ctx
                    .open_rw_session(slot)
                    .map_err(|e| Reopen::Fail(unavailable("opening a session", &e)))?
            }
            Err(e) => return Err(Reopen::Fail(failed("opening a session", &e))),
        };
        let pin = auth_pin(&self.pin).map_err(Reopen::Fail)?;
        match session.login(UserType::User, Some(&pin)) {
            // Login state is per application and token: another session already logged in.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(CkError::Pkcs11(
                rv @ (RvError::PinIncorrect
                | RvError::PinLocked
                | RvError::PinExpired
                | RvError::PinInvalid
                | RvError::PinLenRange),
                _,
            )) => Err(Reopen::Fail(BackendError::Failed(format!(
                "PKCS#11 login to token {:?} refused ({rv:?}): check the PIN file",
                self.label
            )))),
            Err(e) => Err(Reopen::Reset(map_err("login", &e).to_string())),
        }
    }

    /// Takes an idle session, opens one if the pool is not full, or waits for one.
    fn checkout(&self) -> Result<Session, BackendError> {
        let mut pool = lock(&self.pool);
        loop {
            if let Some(s) = pool.idle.pop() {
                return Ok(s);
            }
            if pool.live < self.size {
                pool.live += 1;
                drop(pool);
                return self.open_session().inspect_err(|_| self.discard());
            }
            let (next, waited) = self
                .available
                .wait_timeout(pool, CHECKOUT_TIMEOUT)
                .unwrap_or_else(|e| e.into_inner());
            pool = next;
            if waited.timed_out() && pool.idle.is_empty() && pool.live >= self.size {
                return Err(BackendError::Unavailable(format!(
                    "no PKCS#11 session of token {:?} became free within {} s: the HSM may be wedged",
                    self.label,
                    CHECKOUT_TIMEOUT.as_secs()
                )));
            }
        }
    }

    fn checkin(&self, session: Session) {
        lock(&self.pool).idle.push(session);
        self.available.notify_one();
    }

    /// Forgets a checked-out session (already dropped or about to be), making room for a new one.
    fn discard(&self) {
        let mut pool = lock(&self.pool);
        pool.live = pool.live.saturating_sub(1);
        drop(pool);
        self.available.notify_one();
    }

    /// Runs `op` on a pooled session. On a session loss the session is dropped, a fresh one opened
    /// and logged in (with `fresh = true`, so cached object handles are looked up again) and `op`
    /// retried once, on that fresh session rather than on another pooled one that may be just as
    /// stale.
    fn run<T>(
        &self,
        what: &str,
        mut op: impl FnMut(&Session, bool) -> Result<T, OpError>,
    ) -> Result<T, BackendError> {
        let session = self.checkout()?;
        let lost = match op(&session, false) {
            Ok(v) => {
                self.checkin(session);
                return Ok(v);
            }
            Err(OpError::Ck(e)) if classify(&e) == Class::Lost => e,
            Err(e) => {
                self.checkin(session);
                return Err(refusal(what, e));
            }
        };
        // Closing a lost session may fail as well; that is expected and irrelevant.
        drop(session);
        // The replacement keeps the lost session's place in the pool.
        let session = self.open_session().map_err(|reconnect| {
            self.discard();
            BackendError::Unavailable(format!(
                "PKCS#11 {what}: {}; reconnecting failed: {reconnect}",
                describe(&lost)
            ))
        })?;
        match op(&session, true) {
            Ok(v) => {
                self.checkin(session);
                Ok(v)
            }
            Err(OpError::Ck(e)) if classify(&e) == Class::Lost => {
                drop(session);
                self.discard();
                Err(unavailable(&format!("{what} (after reconnecting)"), &e))
            }
            Err(e) => {
                self.checkin(session);
                Err(refusal(what, e))
            }
        }
    }
}

fn refusal(what: &str, e: OpError) -> BackendError {
    match e {
        OpError::Ck(e) => failed(what, &e),
        OpError::Refused(msg) => BackendError::Failed(format!("PKCS#11 {what}: {msg}")),
    }
}

/// The `CKA_EC_PARAMS` for a key type.
fn ec_params(kind: KeyType) -> &'static [u8] {
    match kind {
        KeyType::K1 => SECP256K1_PARAMS,
        KeyType::R1 => PRIME256V1_PARAMS,
    }
}

fn kind_of(params: &[u8]) -> Option<KeyType> {
    match params {
        SECP256K1_PARAMS => Some(KeyType::K1),
        PRIME256V1_PARAMS => Some(KeyType::R1),
        _ => None,
    }
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the SEC1 point (PKCS#11 §2.3.3); a few modules
/// return the bare point. The two are told apart by length, which is unambiguous for 256-bit
/// curves.
fn unwrap_ec_point(raw: &[u8]) -> Option<&[u8]> {
    match raw {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => Some(rest),
        [0x04, 0x21, rest @ ..] if rest.len() == 33 => Some(rest),
        [0x04, ..] if raw.len() == 65 => Some(raw),
        [0x02 | 0x03, ..] if raw.len() == 33 => Some(raw),
        _ => None,
    }
}

fn public_key_from(kind: KeyType, ec_point: &[u8]) -> Result<PublicKey, BackendError> {
    let sec1 = unwrap_ec_point(ec_point).ok_or_else(|| {
        BackendError::Failed("PKCS#11 public key: CKA_EC_POINT is not a 256-bit SEC1 point".into())
    })?;
    PublicKey::from_sec1(kind, sec1)
        .map_err(|e| BackendError::Failed(format!("PKCS#11 public key: {e}")))
}

/// Reads label, id, curve and point of a public key object; `None` for a key on another curve.
fn read_public(
    session: &Session,
    object: ObjectHandle,
) -> Result<Option<(KeyType, PublicKey)>, CkError> {
    let attrs =
        session.get_attributes(object, &[AttributeType::EcParams, AttributeType::EcPoint])?;
    let mut params = None;
    let mut point = None;
    for a in attrs {
        match a {
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    let (Some(kind), Some(point)) = (params.as_deref().and_then(kind_of), point) else {
        return Ok(None);
    };
    Ok(public_key_from(kind, &point).ok().map(|pk| (kind, pk)))
}

fn label_and_id(session: &Session, object: ObjectHandle) -> Result<(String, Vec<u8>), CkError> {
    let attrs = session.get_attributes(object, &[AttributeType::Label, AttributeType::Id])?;
    let mut label = String::new();
    let mut id = Vec::new();
    for a in attrs {
        match a {
            Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
            Attribute::Id(i) => id = i,
            _ => {}
        }
    }
    Ok((label, id))
}

fn private_key_template(id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(CkKeyType::EC),
        Attribute::Sign(true),
        Attribute::Id(id.to_vec()),
    ]
}

/// A PKCS#11 token holding Antelope keys.
#[derive(Debug, Clone)]
pub struct Pkcs11Provider {
    token: Arc<Token>,
    /// Serialises `generate` so two calls cannot both pass the label check.
    generating: Arc<Mutex<()>>,
}

impl Pkcs11Provider {
    /// Loads the module, finds the token by label, reads the PIN file and opens
    /// `config.sessions` logged-in sessions. A wrong PIN is reported here, at startup.
    pub fn open(config: &Pkcs11Config) -> Result<Self, BackendError> {
        if config.sessions == 0 {
            return Err(BackendError::Failed(
                "PKCS#11: `sessions` must be at least 1".into(),
            ));
        }
        let pin = Secret::from_file(SecretKind::Pkcs11Pin, &config.pin_file)?;
        let ctx = Pkcs11::new(&config.module).map_err(|e| {
            BackendError::Unavailable(format!(
                "cannot load PKCS#11 module {}: {}",
                config.module.display(),
                describe(&e)
            ))
        })?;
        initialize(&ctx).map_err(|e| unavailable("initializing the module", &e))?;
        let slot = find_slot(&ctx, &config.token_label)?;
        let token = Token {
            ctx,
            label: config.token_label.clone(),
            slot: Mutex::new(slot),
            pin,
            size: config.sessions,
            parallel_k1_attempts: config.parallel_k1_attempts,
            pool: Mutex::new(PoolState {
                idle: Vec::new(),
                live: 0,
            }),
            available: Condvar::new(),
            resetting: Mutex::new(()),
        };
        // Open the whole pool now, so the first signatures pay no login and a bad PIN fails here.
        let mut opened = Vec::with_capacity(config.sessions);
        for _ in 0..config.sessions {
            opened.push(token.open_session()?);
        }
        {
            let mut pool = lock(&token.pool);
            pool.live = opened.len();
            pool.idle = opened;
        }
        Ok(Pkcs11Provider {
            token: Arc::new(token),
            generating: Arc::new(Mutex::new(())),
        })
    }

    /// The label of the token this provider uses.
    pub fn token_label(&self) -> &str {
        &self.token.label
    }

    fn find_by_label(session: &Session, label: &str) -> Result<Vec<ObjectHandle>, CkError> {
        session.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
    }

    /// The public key stored under `id`, if any.
    fn public_for_id(
        session: &Session,
        id: &[u8],
    ) -> Result<Option<(KeyType, PublicKey)>, CkError> {
        let found = session.find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(CkKeyType::EC),
            Attribute::Id(id.to_vec()),
        ])?;
        for object in found {
            if let Some(pk) = read_public(session, object)? {
                return Ok(Some(pk));
            }
        }
        Ok(None)
    }

    fn list_raw(&self) -> Result<Vec<(KeyInfo, Vec<u8>)>, BackendError> {
        Ok(self.scan()?.0)
    }

    /// The token's EC signing keys: those paired with their public key by `CKA_ID`, and the
    /// labels of those that are not, with why.
    #[allow(clippy::type_complexity)]
    fn scan(&self) -> Result<(Vec<(KeyInfo, Vec<u8>)>, Vec<(String, String)>), BackendError> {
        self.token.run("listing keys", |session, _| {
            let privs = session.find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(CkKeyType::EC),
                Attribute::Sign(true),
            ])?;
            let mut out = Vec::new();
            let mut skipped = Vec::new();
            for object in privs {
                let (label, id) = label_and_id(session, object)?;
                // A private key without an id cannot be paired with its public key reliably.
                if id.is_empty() {
                    skipped.push((
                        label,
                        "its private key has no CKA_ID, which Oryx pairs it with its public key \
                         by: give both objects the same id (pkcs11-tool --id, or generate it with \
                         `oryx-signer keys generate`)"
                            .to_string(),
                    ));
                    continue;
                }
                match Self::public_for_id(session, &id)? {
                    Some((_, public_key)) => out.push((
                        KeyInfo {
                            label,
                            id: hex::encode(&id),
                            public_key,
                        },
                        id,
                    )),
                    None => skipped.push((
                        label,
                        format!(
                            "no EC public key object on the token has its CKA_ID {}",
                            hex::encode(&id)
                        ),
                    )),
                }
            }
            Ok((out, skipped))
        })
    }
}

impl KeyProvider for Pkcs11Provider {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn generate(&self, label: &str, kind: KeyType) -> Result<KeyInfo, BackendError> {
        if label.is_empty() {
            return Err(BackendError::Failed("PKCS#11: a key needs a label".into()));
        }
        let _one_at_a_time = lock(&self.generating);
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)
            .map_err(|e| BackendError::Unavailable(format!("random source: {e}")))?;
        // Checking the label is read-only, so it may be retried after a session loss; the key
        // generation below is not retried (a lost reply could mean a key was made anyway).
        let in_use = self.token.run("looking up the label", |session, _| {
            Ok(!Self::find_by_label(session, label)?.is_empty())
        })?;
        if in_use {
            return Err(BackendError::Failed(format!(
                "PKCS#11: label {label:?} is already in use on token {:?}",
                self.token.label
            )));
        }
        let public_template = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(ec_params(kind).to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let private_template = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let session = self.token.checkout()?;
        let result = session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &public_template,
                &private_template,
            )
            .and_then(|(public, _private)| {
                session.get_attributes(public, &[AttributeType::EcPoint])
            });
        let attrs = match result {
            Ok(a) => {
                self.token.checkin(session);
                a
            }
            Err(e) => {
                if classify(&e) == Class::Lost {
                    drop(session);
                    self.token.discard();
                } else {
                    self.token.checkin(session);
                }
                return Err(map_err("generating a key pair", &e));
            }
        };
        let point = attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            })
            .ok_or_else(|| {
                BackendError::Failed("PKCS#11: the new public key has no CKA_EC_POINT".into())
            })?;
        Ok(KeyInfo {
            label: label.to_owned(),
            id: hex::encode(id),
            public_key: public_key_from(kind, &point)?,
        })
    }

    fn list(&self) -> Result<Vec<KeyInfo>, BackendError> {
        Ok(self.list_raw()?.into_iter().map(|(info, _)| info).collect())
    }

    fn skipped(&self) -> Result<Vec<(String, String)>, BackendError> {
        Ok(self.scan()?.1)
    }

    fn open(&self, public_key: &PublicKey) -> Result<Arc<dyn KeyBackend>, BackendError> {
        let (info, id) = self
            .list_raw()?
            .into_iter()
            .find(|(info, _)| info.public_key == *public_key)
            .ok_or_else(|| {
                BackendError::Failed(format!(
                    "PKCS#11: no signing key for {public_key} on token {:?}",
                    self.token.label
                ))
            })?;
        let key = Pkcs11Key {
            token: Arc::clone(&self.token),
            label: info.label,
            id,
            public: info.public_key,
            handle: Mutex::new(None),
        };
        // Look the handle up now, so a key that cannot sign fails at open, not at the first block.
        key.token
            .run("finding the private key", |session, _| key.find(session))?;
        Ok(Arc::new(key))
    }

    fn health(&self) -> Result<(), BackendError> {
        let slot = *lock(&self.token.slot);
        match self.token.ctx.get_slot_info(slot) {
            Ok(info) if info.token_present() => {}
            Ok(_) => {
                return Err(BackendError::Unavailable(format!(
                    "PKCS#11 token {:?} is not present",
                    self.token.label
                )));
            }
            // The module may have been restarted; the session check below reconnects.
            Err(_) => {}
        }
        self.token.run("checking the session", |session, _| {
            let info = session.get_session_info()?;
            match info.session_state() {
                SessionState::RoUser | SessionState::RwUser => Ok(()),
                // Reported like the token would, so `run` logs in again once.
                _ => Err(OpError::Ck(CkError::Pkcs11(
                    RvError::UserNotLoggedIn,
                    cryptoki::context::Function::GetSessionInfo,
                ))),
            }
        })
    }
}

/// One signing key on a PKCS#11 token.
pub struct Pkcs11Key {
    token: Arc<Token>,
    label: String,
    id: Vec<u8>,
    public: PublicKey,
    /// The private key's object handle, looked up again after a session loss.
    handle: Mutex<Option<ObjectHandle>>,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("token", &self.token.label)
            .field("label", &self.label)
            .field("id", &hex::encode(&self.id))
            .field("public", &self.public)
            .finish()
    }
}

impl Pkcs11Key {
    /// The key's `CKA_LABEL`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Finds the private key object by `CKA_ID` and caches its handle.
    fn find(&self, session: &Session) -> Result<ObjectHandle, OpError> {
        let found = session.find_objects(&private_key_template(&self.id))?;
        match found.as_slice() {
            [h] => {
                *lock(&self.handle) = Some(*h);
                Ok(*h)
            }
            // Not visible: after a logout private objects vanish from searches, so this is treated
            // like a session loss (log in again, look again), and fails closed if it persists.
            [] => Err(OpError::Ck(CkError::Pkcs11(
                RvError::KeyHandleInvalid,
                cryptoki::context::Function::FindObjects,
            ))),
            many => Err(OpError::Refused(format!(
                "{} private keys share CKA_ID {}",
                many.len(),
                hex::encode(&self.id)
            ))),
        }
    }

    fn handle(&self, session: &Session, fresh: bool) -> Result<ObjectHandle, OpError> {
        match *lock(&self.handle) {
            Some(h) if !fresh => return Ok(h),
            _ => {}
        }
        self.find(session)
    }
}

impl KeyBackend for Pkcs11Key {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn parallelism(&self) -> usize {
        if self.token.parallel_k1_attempts {
            self.token.size
        } else {
            1
        }
    }

    fn sign_digest(
        &self,
        digest: &Checksum256,
        _attempt: u32,
    ) -> Result<RawSignature, BackendError> {
        let sig = self.token.run("signing", |session, fresh| {
            let key = self.handle(session, fresh)?;
            Ok(session.sign(&Mechanism::Ecdsa, key, &digest.0)?)
        })?;
        // CKM_ECDSA returns r ‖ s, each as long as the order: 32 bytes for both curves.
        if sig.len() != 64 {
            return Err(BackendError::Failed(format!(
                "PKCS#11 signing: expected a 64-byte r||s, got {} bytes",
                sig.len()
            )));
        }
        let (r, s) = sig.split_at(32);
        let conv = |b: &[u8]| -> Result<[u8; 32], BackendError> {
            b.try_into()
                .map_err(|_| BackendError::Failed("PKCS#11 signing: scalar is not 32 bytes".into()))
        };
        Ok(RawSignature {
            r: conv(r)?,
            s: conv(s)?,
            recid_hint: None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ec_point_unwrapping() {
        let mut wrapped = vec![0x04, 0x41, 0x04];
        wrapped.extend([7u8; 64]);
        assert_eq!(unwrap_ec_point(&wrapped).unwrap().len(), 65);
        assert_eq!(unwrap_ec_point(&wrapped[2..]).unwrap().len(), 65);
        let mut c = vec![0x04, 0x21, 0x02];
        c.extend([7u8; 32]);
        assert_eq!(unwrap_ec_point(&c).unwrap().len(), 33);
        assert!(unwrap_ec_point(&[0x04, 0x41, 0x04]).is_none());
    }

    #[test]
    fn curve_oids() {
        assert_eq!(kind_of(ec_params(KeyType::K1)), Some(KeyType::K1));
        assert_eq!(kind_of(ec_params(KeyType::R1)), Some(KeyType::R1));
        assert_eq!(kind_of(&[0x06, 0x03, 0x2b, 0x65, 0x70]), None);
    }

    #[test]
    fn config_is_strict() {
        // The PIN file itself (trimming, redaction, empty refused): `crate::secret` tests.
        let cfg: Pkcs11Config =
            serde_json::from_str(r#"{"module":"/m.so","token_label":"t","pin_file":"/p"}"#)
                .unwrap();
        assert_eq!(cfg.sessions, 2);
        assert!(
            serde_json::from_str::<Pkcs11Config>(
                r#"{"module":"/m.so","token_label":"t","pin_file":"/p","pin":"1"}"#
            )
            .is_err()
        );
    }
}
