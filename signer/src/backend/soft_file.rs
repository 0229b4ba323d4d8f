//! Software keys on disk: one passphrase-encrypted file per key in a directory, and
//! [`SoftDirProvider`], the [`KeyProvider`] over that directory.
//!
//! **For development and tests only.** The decrypted secret lives in process memory, not in an
//! HSM; anyone who can read the key directory and the passphrase file has the key.
//! `oryx-signer start` refuses a `soft` key provider unless the configuration says
//! `allow_soft_keys = true`.
//!
//! Guards:
//! - a key file never holds the secret in clear: the 32-byte scalar is sealed with
//!   XChaCha20-Poly1305 under a key derived from the passphrase by Argon2id (per-file random salt
//!   and nonce). The associated data binds the format version, the curve, the public key and the
//!   label, so editing or swapping any of them makes decryption fail; the KDF parameters, salt and
//!   nonce are bound implicitly (changing them changes the key or the keystream). After
//!   decryption the scalar must still derive the recorded public key;
//! - the passphrase comes from a file, is held as a [`Secret`] (zeroized, `Debug` prints
//!   `<redacted>`), and appears in no log, `Debug` output or error message; decrypted scalars
//!   and derived keys are zeroized;
//! - labels are `[A-Za-z0-9._-]{1,64}` and name the file `<label>.key` in the directory, so a
//!   label can never point outside it;
//! - key files are written `0600` to a fresh temporary file, fsynced, then hard-linked to their
//!   final name (which fails if that name exists: nothing is ever overwritten) and the directory
//!   is fsynced. A crash leaves either no key file or a complete one.
//! - a `*.key` file that is malformed, a symlink, or whose label differs from its file name makes
//!   `list` and `open` fail with an error naming it: the directory is either understood or refused.
//!
//! File format (JSON):
//!
//! ```json
//! {"version":1,"kind":"K1","public_key":"PUB_K1_…","label":"dev",
//!  "kdf":{"alg":"argon2id","m_cost_kib":65536,"t_cost":3,"p_cost":1,"salt":"<16 bytes hex>"},
//!  "aead":{"alg":"xchacha20poly1305","nonce":"<24 bytes hex>"},
//!  "ciphertext":"<32-byte scalar sealed, followed by the 16-byte tag, hex>"}
//! ```

use std::fs::{self, File};
use std::io::{self, Read as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::{AeadInOut as _, KeyInit as _, Tag, XChaCha20Poly1305, XNonce};
use oryx_proto::antelope::{KeyType, PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::soft::SoftKey;
use super::{BackendError, KeyBackend, KeyInfo, KeyProvider};
use crate::secret::{Secret, SecretKind};

/// The key file format version this module writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Extension of key files in the directory.
pub const KEY_FILE_EXTENSION: &str = "key";
/// Longest accepted label.
pub const MAX_LABEL_LEN: usize = 64;

const KDF_ALG: &str = "argon2id";
const AEAD_ALG: &str = "xchacha20poly1305";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const SCALAR_LEN: usize = 32;
/// Domain separation for the associated data.
const AAD_CONTEXT: &[u8] = b"oryx soft key file\0";
/// Key files are a few hundred bytes; anything much larger is not one.
const MAX_FILE_LEN: u64 = 64 * 1024;
/// Bounds on KDF parameters read from a file, so a planted file cannot make `open` allocate
/// without limit or spin for hours.
const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 16;

/// Configuration of a soft key directory (`type = "soft"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftDirConfig {
    /// Directory holding one `<label>.key` file per key. Created (mode 0700) if missing.
    pub dir: PathBuf,
    /// File holding the passphrase that encrypts every key in `dir`. One trailing newline is
    /// removed; everything else, spaces included, is part of the passphrase.
    pub passphrase_file: PathBuf,
}

/// Argon2id cost parameters for new key files. Files record their own parameters, so changing
/// these never affects opening existing keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes over memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: a fraction of a second per key at startup.
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// The cheapest parameters Argon2 accepts. For tests only: they protect nothing.
    pub fn fast_for_tests() -> Self {
        KdfParams {
            m_cost_kib: Params::MIN_M_COST,
            t_cost: 1,
            p_cost: 1,
        }
    }

    fn to_argon2(self) -> Result<Params, BackendError> {
        let in_bounds = (1..=MAX_T_COST).contains(&self.t_cost)
            && (1..=MAX_P_COST).contains(&self.p_cost)
            && self.m_cost_kib <= MAX_M_COST_KIB;
        if !in_bounds {
            return Err(BackendError::Failed(format!(
                "argon2id parameters out of range (m_cost_kib <= {MAX_M_COST_KIB}, \
                 1 <= t_cost <= {MAX_T_COST}, 1 <= p_cost <= {MAX_P_COST})"
            )));
        }
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| BackendError::Failed(format!("argon2id parameters: {e}")))
    }
}

/// The `kdf` object of a key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfSection {
    alg: String,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

/// The `aead` object of a key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AeadSection {
    alg: String,
    nonce: String,
}

/// A key file as stored.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    kind: KeyType,
    public_key: PublicKey,
    label: String,
    kdf: KdfSection,
    aead: AeadSection,
    ciphertext: String,
}

/// A key file after structural checks, before decryption.
struct ParsedKeyFile {
    path: PathBuf,
    public_key: PublicKey,
    label: String,
    params: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    ciphertext: [u8; SCALAR_LEN],
    tag: [u8; TAG_LEN],
}

/// A directory of encrypted software keys. See the module documentation: development and tests
/// only.
#[derive(Debug)]
pub struct SoftDirProvider {
    dir: PathBuf,
    passphrase: Secret,
    kdf: KdfParams,
}

impl SoftDirProvider {
    /// Opens the key directory (creating it with mode 0700 if missing) and reads the passphrase
    /// file. New keys use [`KdfParams::default`].
    pub fn new(config: SoftDirConfig) -> Result<Self, BackendError> {
        let passphrase = Secret::from_file(SecretKind::Passphrase, &config.passphrase_file)?;
        if !config.dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&config.dir)
                .map_err(|e| io_failed("cannot create key directory", &config.dir, &e))?;
        }
        Ok(SoftDirProvider {
            dir: config.dir,
            passphrase,
            kdf: KdfParams::default(),
        })
    }

    /// Uses `kdf` for keys generated or imported from now on.
    pub fn with_kdf_params(mut self, kdf: KdfParams) -> Self {
        self.kdf = kdf;
        self
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores an existing private key under `label` (to load a known development key, or in
    /// tests). Refuses a label or a public key already in the directory.
    pub fn import(&self, label: &str, key: PrivateKey) -> Result<KeyInfo, BackendError> {
        check_label(label)?;
        let public_key = key.public_key();
        if let Some(other) = self
            .list()?
            .into_iter()
            .find(|k| k.public_key == public_key)
        {
            return Err(BackendError::Failed(format!(
                "key {public_key} is already stored under label {:?}",
                other.label
            )));
        }
        let path = self.path_for(label);
        if path.exists() {
            return Err(label_taken(label));
        }
        let json = self.seal(label, &key)?;
        self.write_new(label, &path, json.as_bytes())?;
        Ok(KeyInfo {
            label: label.to_owned(),
            id: path.display().to_string(),
            public_key,
        })
    }

    /// Decrypts the key with this public key, as the concrete [`SoftKey`].
    pub fn open_soft(&self, public_key: &PublicKey) -> Result<Arc<SoftKey>, BackendError> {
        let mut matches = Vec::new();
        for path in self.key_files()? {
            let parsed = read_key_file(&path)?;
            if parsed.public_key == *public_key {
                matches.push(parsed);
            }
        }
        let parsed = match matches.len() {
            0 => {
                return Err(BackendError::Failed(format!(
                    "no key {public_key} in {}",
                    self.dir.display()
                )));
            }
            1 => matches.remove(0),
            _ => {
                return Err(BackendError::Failed(format!(
                    "key {public_key} is stored in more than one file in {}: refusing to guess",
                    self.dir.display()
                )));
            }
        };
        let key = self.unseal(&parsed)?;
        Ok(Arc::new(SoftKey::new(key)))
    }

    fn path_for(&self, label: &str) -> PathBuf {
        self.dir.join(format!("{label}.{KEY_FILE_EXTENSION}"))
    }

    /// Paths of the `*.key` entries in the directory, sorted.
    fn key_files(&self) -> Result<Vec<PathBuf>, BackendError> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| io_unavailable("cannot read key directory", &self.dir, &e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| io_unavailable("cannot read key directory", &self.dir, &e))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) == Some(KEY_FILE_EXTENSION) {
                out.push(path);
            }
        }
        out.sort();
        Ok(out)
    }

    fn aead_for(&self, salt: &[u8], params: KdfParams) -> Result<XChaCha20Poly1305, BackendError> {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.to_argon2()?);
        let mut key = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(self.passphrase.expose(), salt, &mut key[..])
            .map_err(|e| BackendError::Failed(format!("argon2id: {e}")))?;
        XChaCha20Poly1305::new_from_slice(&key[..])
            .map_err(|_| BackendError::Failed("AEAD key length".into()))
    }

    /// Encrypts `key` into a key file's JSON text.
    fn seal(&self, label: &str, key: &PrivateKey) -> Result<String, BackendError> {
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut salt)?;
        random(&mut nonce)?;
        let public_key = key.public_key();
        let aad = associated_data(FORMAT_VERSION, key.kind(), &public_key, label);
        let cipher = self.aead_for(&salt, self.kdf)?;
        let mut buf = Zeroizing::new(*key.secret_bytes());
        let tag = cipher
            .encrypt_inout_detached(&XNonce::from(nonce), &aad, (&mut buf[..]).into())
            .map_err(|_| BackendError::Failed("encryption failed".into()))?;
        let mut sealed = Vec::with_capacity(SCALAR_LEN + TAG_LEN);
        sealed.extend_from_slice(&buf[..]);
        sealed.extend_from_slice(&tag);
        let file = KeyFile {
            version: FORMAT_VERSION,
            kind: key.kind(),
            public_key,
            label: label.to_owned(),
            kdf: KdfSection {
                alg: KDF_ALG.to_owned(),
                params: self.kdf,
                salt: hex::encode(salt),
            },
            aead: AeadSection {
                alg: AEAD_ALG.to_owned(),
                nonce: hex::encode(nonce),
            },
            ciphertext: hex::encode(sealed),
        };
        let mut json = serde_json::to_string_pretty(&file)
            .map_err(|e| BackendError::Failed(format!("encoding key file: {e}")))?;
        json.push('\n');
        Ok(json)
    }

    /// Decrypts a parsed key file and checks the scalar against the recorded public key.
    fn unseal(&self, parsed: &ParsedKeyFile) -> Result<PrivateKey, BackendError> {
        let cannot = || {
            BackendError::Failed(format!(
                "cannot decrypt {}: wrong passphrase or the file was altered",
                parsed.path.display()
            ))
        };
        let kind = parsed.public_key.kind();
        let aad = associated_data(FORMAT_VERSION, kind, &parsed.public_key, &parsed.label);
        let cipher = self.aead_for(&parsed.salt, parsed.params)?;
        let mut buf = Zeroizing::new(parsed.ciphertext);
        cipher
            .decrypt_inout_detached(
                &XNonce::from(parsed.nonce),
                &aad,
                (&mut buf[..]).into(),
                &Tag::from(parsed.tag),
            )
            .map_err(|_| cannot())?;
        let key = PrivateKey::from_bytes(kind, *buf).map_err(|_| cannot())?;
        if key.public_key() != parsed.public_key {
            return Err(cannot());
        }
        Ok(key)
    }

    /// Writes `contents` to `path`, which must not exist: temporary file (0600, fsynced), hard
    /// link to the final name (atomic, fails if it exists), directory fsync.
    fn write_new(&self, label: &str, path: &Path, contents: &[u8]) -> Result<(), BackendError> {
        crate::durable::create_new(path, contents, 0o600).map_err(|e| {
            if e.source.kind() == io::ErrorKind::AlreadyExists && e.path == path {
                label_taken(label)
            } else {
                io_failed("cannot create key file", &e.path, &e.source)
            }
        })
    }
}

impl KeyProvider for SoftDirProvider {
    fn kind(&self) -> &'static str {
        "soft"
    }

    fn generate(&self, label: &str, kind: KeyType) -> Result<KeyInfo, BackendError> {
        check_label(label)?;
        // Checked before the (slow) key derivation; `write_new` re-checks atomically.
        if self.path_for(label).exists() {
            return Err(label_taken(label));
        }
        let key = SoftKey::generate(kind)?;
        self.import(label, key.private_key().clone())
    }

    fn list(&self) -> Result<Vec<KeyInfo>, BackendError> {
        self.key_files()?
            .into_iter()
            .map(|path| {
                let parsed = read_key_file(&path)?;
                Ok(KeyInfo {
                    label: parsed.label,
                    id: path.display().to_string(),
                    public_key: parsed.public_key,
                })
            })
            .collect()
    }

    fn open(&self, public_key: &PublicKey) -> Result<Arc<dyn KeyBackend>, BackendError> {
        let key: Arc<dyn KeyBackend> = self.open_soft(public_key)?;
        Ok(key)
    }

    fn health(&self) -> Result<(), BackendError> {
        fs::read_dir(&self.dir)
            .map(drop)
            .map_err(|e| io_unavailable("cannot read key directory", &self.dir, &e))
    }
}

/// Refuses labels outside `[A-Za-z0-9._-]{1,64}`: a label is a file name in the key directory
/// and must not be able to name anything else.
fn check_label(label: &str) -> Result<(), BackendError> {
    let ok = !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(BackendError::Failed(format!(
            "invalid key label {label:?}: use 1 to {MAX_LABEL_LEN} characters from A-Z a-z 0-9 . _ -"
        )))
    }
}

/// The AEAD associated data: every field of the file that is not otherwise bound, each
/// length-prefixed so no two field combinations encode alike.
fn associated_data(version: u32, kind: KeyType, public_key: &PublicKey, label: &str) -> Vec<u8> {
    let mut out = AAD_CONTEXT.to_vec();
    out.extend_from_slice(&version.to_be_bytes());
    for field in [kind.label(), public_key.to_pub_string().as_str(), label] {
        // Fields are short (labels <= 64 bytes, keys ~60), so the length fits in a u32.
        out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// Reads and checks the public parts of a key file; nothing is decrypted.
fn read_key_file(path: &Path) -> Result<ParsedKeyFile, BackendError> {
    let invalid =
        |what: &str| BackendError::Failed(format!("invalid key file {}: {what}", path.display()));
    let meta = fs::symlink_metadata(path).map_err(|e| io_failed("cannot read", path, &e))?;
    if !meta.file_type().is_file() {
        return Err(invalid("not a regular file"));
    }
    let file = File::open(path).map_err(|e| io_failed("cannot read", path, &e))?;
    let mut text = String::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| io_failed("cannot read", path, &e))?;
    if text.len() as u64 > MAX_FILE_LEN {
        return Err(invalid("too large"));
    }
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| invalid(&e.to_string()))?;
    if file.version != FORMAT_VERSION {
        return Err(invalid(&format!(
            "unsupported version {} (expected {FORMAT_VERSION})",
            file.version
        )));
    }
    if file.kdf.alg != KDF_ALG {
        return Err(invalid(&format!("unsupported kdf {:?}", file.kdf.alg)));
    }
    if file.aead.alg != AEAD_ALG {
        return Err(invalid(&format!("unsupported aead {:?}", file.aead.alg)));
    }
    if file.public_key.kind() != file.kind {
        return Err(invalid("kind does not match the public key"));
    }
    check_label(&file.label).map_err(|_| invalid("bad label"))?;
    let stem = path.file_stem().and_then(|s| s.to_str());
    if stem != Some(file.label.as_str()) {
        return Err(invalid("label does not match the file name"));
    }
    file.kdf
        .params
        .to_argon2()
        .map_err(|e| invalid(&e.to_string()))?;
    let salt: [u8; SALT_LEN] = hex_array(&file.kdf.salt).ok_or_else(|| invalid("bad salt"))?;
    let nonce: [u8; NONCE_LEN] = hex_array(&file.aead.nonce).ok_or_else(|| invalid("bad nonce"))?;
    let sealed: [u8; SCALAR_LEN + TAG_LEN] =
        hex_array(&file.ciphertext).ok_or_else(|| invalid("bad ciphertext"))?;
    let (ct, tag) = sealed.split_at(SCALAR_LEN);
    Ok(ParsedKeyFile {
        path: path.to_owned(),
        public_key: file.public_key,
        label: file.label,
        params: file.kdf.params,
        salt,
        nonce,
        ciphertext: ct.try_into().map_err(|_| invalid("bad ciphertext"))?,
        tag: tag.try_into().map_err(|_| invalid("bad ciphertext"))?,
    })
}

fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    hex::decode(text).ok()?.try_into().ok()
}

fn random(buf: &mut [u8]) -> Result<(), BackendError> {
    getrandom::fill(buf).map_err(|e| BackendError::Unavailable(format!("random source: {e}")))
}

fn label_taken(label: &str) -> BackendError {
    BackendError::Failed(format!("a key labelled {label:?} already exists"))
}

fn io_failed(what: &str, path: &Path, e: &io::Error) -> BackendError {
    BackendError::Failed(format!("{what} {}: {}", path.display(), e.kind()))
}

fn io_unavailable(what: &str, path: &Path, e: &io::Error) -> BackendError {
    BackendError::Unavailable(format!("{what} {}: {}", path.display(), e.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    const PASSPHRASE: &str = "correct horse battery staple";
    const DEV_WIF: &str = "5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD3";
    const DEV_PUB_LEGACY: &str = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV";
    const DEV_PUB_K1: &str = "PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63";

    struct Fixture {
        tmp: tempfile::TempDir,
    }

    /// A passphrase file as the signer demands it: the owner's alone.
    fn private(path: &Path, content: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        fs::write(path, content).expect("write pass");
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    impl Fixture {
        fn new() -> Self {
            let tmp = tempfile::tempdir().expect("tempdir");
            private(&tmp.path().join("pass"), &format!("{PASSPHRASE}\n"));
            Fixture { tmp }
        }

        fn config(&self, pass_file: &str) -> SoftDirConfig {
            SoftDirConfig {
                dir: self.tmp.path().join("keys"),
                passphrase_file: self.tmp.path().join(pass_file),
            }
        }

        fn provider(&self) -> SoftDirProvider {
            SoftDirProvider::new(self.config("pass"))
                .expect("provider")
                .with_kdf_params(KdfParams::fast_for_tests())
        }

        fn provider_with(&self, passphrase: &str) -> SoftDirProvider {
            private(&self.tmp.path().join("other"), passphrase);
            SoftDirProvider::new(self.config("other"))
                .expect("provider")
                .with_kdf_params(KdfParams::fast_for_tests())
        }

        fn key_path(&self, label: &str) -> PathBuf {
            self.tmp.path().join("keys").join(format!("{label}.key"))
        }
    }

    fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
        let mut v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(path).expect("read")).expect("json");
        f(&mut v);
        fs::write(path, serde_json::to_string(&v).expect("encode")).expect("write");
    }

    fn err_text(r: Result<impl std::fmt::Debug, BackendError>) -> String {
        r.expect_err("expected an error").to_string()
    }

    #[test]
    fn file_is_0600_json_without_secret() {
        let fx = Fixture::new();
        let p = fx.provider();
        let key = PrivateKey::parse(DEV_WIF).expect("wif");
        p.import("dev", key.clone()).expect("import");
        let path = fx.key_path("dev");
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let text = fs::read_to_string(&path).expect("read");
        assert!(!text.contains(&hex::encode(key.secret_bytes())));
        assert!(!text.contains(DEV_WIF));
        assert!(!text.contains(PASSPHRASE));
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["version"], 1);
        assert_eq!(v["kind"], "K1");
        assert_eq!(v["public_key"], DEV_PUB_K1);
        assert_eq!(v["label"], "dev");
        assert_eq!(v["kdf"]["alg"], "argon2id");
        assert_eq!(v["kdf"]["m_cost_kib"], Params::MIN_M_COST);
        assert_eq!(v["aead"]["alg"], "xchacha20poly1305");
        assert_eq!(v["ciphertext"].as_str().map(str::len), Some(96));
        // No stray temporary files.
        let names: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("dev.key")]);
    }

    #[test]
    fn import_dev_key_lists_as_known_public_key() {
        let fx = Fixture::new();
        let p = fx.provider();
        let info = p
            .import("dev", PrivateKey::parse(DEV_WIF).expect("wif"))
            .expect("import");
        let listed = p.list().expect("list");
        assert_eq!(listed, vec![info]);
        assert_eq!(listed[0].id, fx.key_path("dev").display().to_string());
        let pk = listed[0].public_key;
        assert_eq!(pk.to_pub_string(), DEV_PUB_K1);
        assert_eq!(pk.to_legacy_string().as_deref(), Some(DEV_PUB_LEGACY));
        let opened = p
            .open_soft(&PublicKey::parse(DEV_PUB_LEGACY).expect("pub"))
            .expect("open");
        assert_eq!(
            opened.private_key(),
            &PrivateKey::parse(DEV_WIF).expect("wif")
        );
    }

    #[test]
    fn wrong_passphrase_fails_without_echoing_it() {
        let fx = Fixture::new();
        let info = fx.provider().generate("k", KeyType::K1).expect("generate");
        let wrong = "hunter2-not-the-passphrase";
        let p = fx.provider_with(wrong);
        // Listing needs no passphrase.
        assert_eq!(p.list().expect("list"), vec![info.clone()]);
        let msg = err_text(p.open(&info.public_key));
        assert_eq!(
            msg,
            format!(
                "key backend failed: cannot decrypt {}: wrong passphrase or the file was altered",
                fx.key_path("k").display()
            )
        );
        assert!(!msg.contains(wrong) && !msg.contains(PASSPHRASE));
        assert!(!format!("{p:?}").contains(wrong));
    }

    #[test]
    fn passphrase_loses_exactly_one_trailing_newline() {
        let fx = Fixture::new();
        let info = fx.provider().generate("k", KeyType::K1).expect("generate");
        // Written without the newline: same passphrase.
        fx.provider_with(PASSPHRASE)
            .open(&info.public_key)
            .expect("same passphrase");
        fx.provider_with(&format!("{PASSPHRASE}\r\n"))
            .open(&info.public_key)
            .expect("CRLF is one newline");
        // Two newlines: the second is part of the passphrase.
        assert!(
            fx.provider_with(&format!("{PASSPHRASE}\n\n"))
                .open(&info.public_key)
                .is_err()
        );
        private(&fx.tmp.path().join("empty"), "\n");
        let msg = err_text(SoftDirProvider::new(fx.config("empty")));
        assert!(msg.contains("is empty"), "{msg}");
        let msg = err_text(SoftDirProvider::new(fx.config("missing")));
        assert!(msg.contains("cannot read passphrase file"), "{msg}");
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let fx = Fixture::new();
        let p = fx.provider();
        let info = p.generate("k", KeyType::K1).expect("generate");
        edit_json(&fx.key_path("k"), |v| {
            let ct = v["ciphertext"].as_str().expect("ct").to_owned();
            let flipped = if ct.starts_with('0') { "1" } else { "0" };
            v["ciphertext"] = format!("{flipped}{}", &ct[1..]).into();
        });
        let msg = err_text(p.open(&info.public_key));
        assert!(
            msg.contains("wrong passphrase or the file was altered"),
            "{msg}"
        );
    }

    #[test]
    fn tampered_public_key_fails() {
        let fx = Fixture::new();
        let p = fx.provider();
        p.generate("k", KeyType::K1).expect("generate");
        // Point the file at another (valid) key: the AAD no longer matches.
        let other = PrivateKey::parse(DEV_WIF).expect("wif").public_key();
        edit_json(&fx.key_path("k"), |v| {
            v["public_key"] = other.to_pub_string().into();
        });
        assert_eq!(p.list().expect("list")[0].public_key, other);
        let msg = err_text(p.open(&other));
        assert!(
            msg.contains("wrong passphrase or the file was altered"),
            "{msg}"
        );
    }

    #[test]
    fn tampered_label_fails() {
        let fx = Fixture::new();
        let p = fx.provider();
        let info = p.generate("a", KeyType::R1).expect("generate");
        // Label edited in place: it no longer matches the file name.
        edit_json(&fx.key_path("a"), |v| v["label"] = "b".into());
        let msg = err_text(p.open(&info.public_key));
        assert!(msg.contains("label does not match the file name"), "{msg}");
        assert!(p.list().is_err());
        // Renamed consistently (file and label): the AAD still refuses it.
        fs::rename(fx.key_path("a"), fx.key_path("b")).expect("rename");
        assert_eq!(p.list().expect("list")[0].label, "b");
        let msg = err_text(p.open(&info.public_key));
        assert!(
            msg.contains("wrong passphrase or the file was altered"),
            "{msg}"
        );
    }

    #[test]
    fn tampered_kind_or_version_refused() {
        let fx = Fixture::new();
        let p = fx.provider();
        let info = p.generate("k", KeyType::K1).expect("generate");
        edit_json(&fx.key_path("k"), |v| v["kind"] = "R1".into());
        assert!(err_text(p.open(&info.public_key)).contains("kind does not match"));
        edit_json(&fx.key_path("k"), |v| {
            v["kind"] = "K1".into();
            v["version"] = 2.into();
        });
        assert!(err_text(p.open(&info.public_key)).contains("unsupported version"));
        edit_json(&fx.key_path("k"), |v| {
            v["version"] = 1.into();
            v["extra"] = 1.into();
        });
        assert!(err_text(p.list()).contains("unknown field"));
    }

    #[test]
    fn absurd_kdf_params_refused_before_deriving() {
        let fx = Fixture::new();
        let p = fx.provider();
        let info = p.generate("k", KeyType::K1).expect("generate");
        edit_json(&fx.key_path("k"), |v| {
            v["kdf"]["m_cost_kib"] = u32::MAX.into()
        });
        assert!(err_text(p.open(&info.public_key)).contains("out of range"));
    }

    #[test]
    fn bad_labels_refused() {
        let fx = Fixture::new();
        let p = fx.provider();
        let long = "a".repeat(MAX_LABEL_LEN + 1);
        for label in [
            "../x",
            "",
            long.as_str(),
            "a/b",
            "x y",
            "é",
            "a\0b",
            "/etc/passwd",
        ] {
            let msg = err_text(p.generate(label, KeyType::K1));
            assert!(msg.contains("invalid key label"), "{label:?}: {msg}");
            let key = PrivateKey::parse(DEV_WIF).expect("wif");
            assert!(p.import(label, key).is_err(), "{label:?}");
        }
        assert!(!fx.tmp.path().join("x.key").exists());
        assert!(p.list().expect("list").is_empty());
        p.generate(&"a".repeat(MAX_LABEL_LEN), KeyType::K1)
            .expect("64 characters is fine");
        p.generate("A-z_0.9", KeyType::K1).expect("all classes");
    }

    #[test]
    fn duplicate_label_and_key_refused() {
        let fx = Fixture::new();
        let p = fx.provider();
        let first = p.generate("k", KeyType::K1).expect("generate");
        let before = fs::read(fx.key_path("k")).expect("read");
        assert!(err_text(p.generate("k", KeyType::R1)).contains("already exists"));
        let dev = PrivateKey::parse(DEV_WIF).expect("wif");
        assert!(err_text(p.import("k", dev.clone())).contains("already exists"));
        assert_eq!(fs::read(fx.key_path("k")).expect("read"), before);
        p.import("dev", dev.clone()).expect("import");
        assert!(err_text(p.import("dev2", dev)).contains("already stored"));
        assert_eq!(p.list().expect("list").len(), 2);
        assert!(p.open(&first.public_key).is_ok());
    }

    #[test]
    fn config_denies_unknown_fields() {
        let ok: SoftDirConfig =
            serde_json::from_str(r#"{"dir":"/k","passphrase_file":"/p"}"#).expect("config");
        assert_eq!(ok.dir, PathBuf::from("/k"));
        assert!(
            serde_json::from_str::<SoftDirConfig>(
                r#"{"dir":"/k","passphrase_file":"/p","passphrase":"x"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn default_kdf_params_are_operator_grade() {
        let d = KdfParams::default();
        assert_eq!((d.m_cost_kib, d.t_cost, d.p_cost), (65536, 3, 1));
        d.to_argon2().expect("valid");
        KdfParams::fast_for_tests().to_argon2().expect("valid");
    }
}
