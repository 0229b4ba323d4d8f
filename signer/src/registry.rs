//! The key registry: keys generated or retired at runtime by the key lifecycle RPCs, in one
//! JSON file beside the config (`[registry] path = "…"`), merged with `[[keys]]` at start.
//!
//! Guards: every change is durable before it takes effect or is answered — the file is written
//! to a temporary name, fsynced, renamed over the old one and the directory fsynced, so a crash
//! leaves either the old or the new file, never a torn one. A file that does not parse stops
//! `start` (fail closed): a registry that lost its `retired` records would bring retired keys
//! back. Retirement is one-way: [`Registry::put`] refuses to reactivate a retired key.
//!
//! # File format
//!
//! ```json
//! {"version": 1, "keys": [{"public_key": "PUB_K1_…", "backend": "hsm", "label": "producer-2",
//!   "key_type": "K1", "chains": ["eos"], "blind_digest": true, "same_height_retry": "refuse",
//!   "successor_of": "PUB_K1_…", "state": "active", "successor": null,
//!   "created": 1735689600, "retired_at": null, "source": "generated"}]}
//! ```
//!
//! `source` is `generated` for keys made by GenerateKey and `config` for `[[keys]]` entries the
//! registry only records a retirement for. Times are seconds since 1970.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use oryx_proto::antelope::{KeyType, PublicKey};
use serde::{Deserialize, Serialize};

use crate::config::KeyConfig;
use crate::durable;
use crate::watermark::RetryPolicy;

/// The file format version this code writes and reads.
pub const VERSION: u32 = 1;

/// Whether a key may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs as configured.
    Active,
    /// Retired by RetireKey: refused, forever.
    Retired,
}

/// Where a registry entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Made by GenerateKey (its settings live here).
    Generated,
    /// A `[[keys]]` entry (its settings live in the config; the registry records its state).
    Config,
}

/// One key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// The key.
    pub public_key: PublicKey,
    /// The backend (a name under `[backends]`).
    pub backend: String,
    /// The key's label on the device (GenerateKey's idempotency key).
    pub label: String,
    /// K1 or R1.
    pub key_type: KeyType,
    /// Chain names (under `[[chains]]`) it may sign for.
    pub chains: Vec<String>,
    /// Whether SignDigest is allowed.
    pub blind_digest: bool,
    /// Same-height retry setting for blind Savanna digests.
    pub same_height_retry: RetryPolicy,
    /// The key this one replaces: it is authorized as that key's policy identity.
    pub successor_of: Option<PublicKey>,
    /// Active or retired.
    pub state: KeyState,
    /// For a retired key: the key that received its watermarks.
    pub successor: Option<PublicKey>,
    /// When it was registered.
    pub created: u32,
    /// When it was retired.
    pub retired_at: Option<u32>,
    /// Generated here, or a config key.
    pub source: Source,
}

impl RegistryEntry {
    /// The entry recording the `[[keys]]` key `k` (active, no successor links).
    pub fn config_key(k: &KeyConfig, label: String, created: u32) -> Self {
        RegistryEntry {
            public_key: k.public_key,
            backend: k.backend.clone(),
            label,
            key_type: k.public_key.kind(),
            chains: k.chains.clone(),
            blind_digest: k.blind_digest,
            same_height_retry: k.same_height_retry,
            successor_of: None,
            state: KeyState::Active,
            successor: None,
            created,
            retired_at: None,
            source: Source::Config,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File_ {
    version: u32,
    keys: Vec<RegistryEntry>,
}

/// Why the registry cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Reading or writing failed.
    #[error("key registry {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file does not hold a valid registry.
    #[error(
        "key registry {path} is corrupt: {detail}; restore it from a backup (without it, retired keys would sign again)"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A change the registry refuses.
    #[error("key registry: {0}")]
    Refused(String),
}

/// The registry: the file and its contents in memory. Writers are serialised.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    entries: Mutex<Vec<RegistryEntry>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Registry {
    /// Reads the registry at `path`; a missing file is an empty registry.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let path = path.into();
        let entries = match std::fs::read(&path) {
            Ok(bytes) => parse(&bytes).map_err(|detail| RegistryError::Corrupt {
                path: path.display().to_string(),
                detail,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&path)(e)),
        };
        Ok(Registry {
            path,
            entries: Mutex::new(entries),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every entry, in the order they were added.
    pub fn entries(&self) -> Vec<RegistryEntry> {
        self.lock().clone()
    }

    /// The entry for `key`.
    pub fn get(&self, key: &PublicKey) -> Option<RegistryEntry> {
        self.lock().iter().find(|e| e.public_key == *key).cloned()
    }

    /// The entry with `label`.
    pub fn by_label(&self, label: &str) -> Option<RegistryEntry> {
        self.lock().iter().find(|e| e.label == label).cloned()
    }

    /// Adds or replaces the entry for `entry.public_key` and writes the file durably; the
    /// registry in memory changes only once the file did. A retired key stays retired.
    pub fn put(&self, entry: RegistryEntry) -> Result<(), RegistryError> {
        let mut entries = self.lock();
        let mut next = entries.clone();
        match next.iter_mut().find(|e| e.public_key == entry.public_key) {
            Some(old) => {
                if old.state == KeyState::Retired && entry.state != KeyState::Retired {
                    return Err(RegistryError::Refused(format!(
                        "{} is retired; a retired key cannot be made active again",
                        entry.public_key
                    )));
                }
                *old = entry;
            }
            None => {
                if let Some(other) = next
                    .iter()
                    .find(|e| e.label == entry.label && e.source == Source::Generated)
                    .filter(|_| entry.source == Source::Generated)
                {
                    return Err(RegistryError::Refused(format!(
                        "label {:?} is already registered for {}",
                        entry.label, other.public_key
                    )));
                }
                next.push(entry);
            }
        }
        write_atomic(&self.path, &serialize(&next))?;
        *entries = next;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RegistryEntry>> {
        // Entries are replaced only after a durable write, so a poisoned lock holds a consistent
        // list.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn parse(bytes: &[u8]) -> Result<Vec<RegistryEntry>, String> {
    let file: File_ = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.version != VERSION {
        return Err(format!(
            "version {} (this signer reads version {VERSION})",
            file.version
        ));
    }
    for (i, e) in file.keys.iter().enumerate() {
        if file.keys[..i].iter().any(|o| o.public_key == e.public_key) {
            return Err(format!("{} is listed twice", e.public_key));
        }
        if e.public_key.kind() != e.key_type {
            return Err(format!(
                "{} is recorded as key_type {}",
                e.public_key,
                e.key_type.label()
            ));
        }
        if (e.state == KeyState::Retired) != e.retired_at.is_some() {
            return Err(format!("{}: state and retired_at disagree", e.public_key));
        }
    }
    Ok(file.keys)
}

fn serialize(entries: &[RegistryEntry]) -> Vec<u8> {
    let file = File_ {
        version: VERSION,
        keys: entries.to_vec(),
    };
    // Serializing plain data (strings, numbers, enums) into memory cannot fail.
    let mut out = serde_json::to_vec_pretty(&file).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new content (see
/// [`durable::write_atomic`]); the file is private. Creates the directory (mode 0700) if needed.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        #[cfg(unix)]
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(io(dir))?;
    }
    durable::write_atomic(path, bytes, 0o600).map_err(|e| io(&e.path)(e.source))
}

/// The root of `key`'s successor chain: the key whose policy rules it signs under (the last
/// of its [`lineage`], or itself).
pub fn identity(
    key: &PublicKey,
    successor_of: impl Fn(&PublicKey) -> Option<PublicKey>,
) -> Result<PublicKey, String> {
    Ok(lineage(key, successor_of)?.last().copied().unwrap_or(*key))
}

/// The keys `key` succeeds, nearest first: follows `successor_of` links until a key without
/// one; a cycle is an error.
pub fn lineage(
    key: &PublicKey,
    successor_of: impl Fn(&PublicKey) -> Option<PublicKey>,
) -> Result<Vec<PublicKey>, String> {
    let mut line = Vec::new();
    let mut current = *key;
    while let Some(prev) = successor_of(&current) {
        if prev == *key || line.contains(&prev) {
            return Err(format!(
                "the successor_of links of {key} form a cycle through {prev}"
            ));
        }
        line.push(prev);
        current = prev;
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::backend::KeyBackend as _;
    use crate::backend::soft::SoftKey;

    fn key() -> PublicKey {
        *SoftKey::generate(KeyType::K1).unwrap().public_key()
    }

    fn entry(pk: PublicKey, label: &str) -> RegistryEntry {
        RegistryEntry {
            public_key: pk,
            backend: "hsm".into(),
            label: label.into(),
            key_type: pk.kind(),
            chains: vec!["eos".into()],
            blind_digest: true,
            same_height_retry: RetryPolicy::Refuse,
            successor_of: None,
            state: KeyState::Active,
            successor: None,
            created: 1,
            retired_at: None,
            source: Source::Generated,
        }
    }

    #[test]
    fn round_trip_and_retirement_is_one_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/keys.json");
        let r = Registry::open(&path).unwrap();
        assert!(r.entries().is_empty());
        let (a, b) = (key(), key());
        r.put(entry(a, "one")).unwrap();
        r.put(RegistryEntry {
            successor_of: Some(a),
            ..entry(b, "two")
        })
        .unwrap();
        // Another key under a registered label is refused.
        assert!(r.put(entry(key(), "one")).is_err());
        let retired = RegistryEntry {
            state: KeyState::Retired,
            successor: Some(b),
            retired_at: Some(5),
            ..entry(a, "one")
        };
        r.put(retired.clone()).unwrap();
        assert!(matches!(
            r.put(entry(a, "one")),
            Err(RegistryError::Refused(_))
        ));
        let again = Registry::open(&path).unwrap();
        assert_eq!(again.entries(), r.entries());
        assert_eq!(again.get(&a), Some(retired));
        assert_eq!(again.by_label("two").unwrap().successor_of, Some(a));
        // No temporary file is left behind; the file is private.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("keys.json")]);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }

    #[test]
    fn atomic_write_replaces_whole_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let r = Registry::open(&path).unwrap();
        r.put(entry(key(), "one")).unwrap();
        let before = std::fs::read(&path).unwrap();
        // A stale temporary file from a crash before the rename is neither read nor reused
        // (each write stages under a new name), and a write leaves no staging file behind.
        std::fs::write(dir.path().join(".keys.json.tmp"), b"{torn").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before);
        r.put(entry(key(), "two")).unwrap();
        assert_eq!(Registry::open(&path).unwrap().entries().len(), 2);
        let staged = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") && n != ".keys.json.tmp")
            .count();
        assert_eq!(staged, 0);
        // A failed write (the directory is gone) leaves memory unchanged.
        let gone = dir.path().join("gone");
        std::fs::create_dir(&gone).unwrap();
        let r2 = Registry::open(gone.join("keys.json")).unwrap();
        std::fs::remove_dir(&gone).unwrap();
        std::fs::write(&gone, b"a file where the directory was").unwrap();
        assert!(r2.put(entry(key(), "x")).is_err());
        assert!(r2.entries().is_empty());
    }

    #[test]
    fn a_corrupt_registry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let r = Registry::open(&path).unwrap();
        let a = key();
        r.put(entry(a, "one")).unwrap();
        let good = std::fs::read_to_string(&path).unwrap();
        for bad in [
            good[..good.len() / 2].to_string(),
            good.replace("\"version\": 1", "\"version\": 2"),
            good.replace("\"state\": \"active\"", "\"state\": \"retired\""),
            good.replace("\"label\"", "\"labl\""),
            good.replace("\"key_type\": \"K1\"", "\"key_type\": \"R1\""),
            String::new(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            let e = Registry::open(&path).unwrap_err();
            assert!(matches!(e, RegistryError::Corrupt { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("restore"), "{e}");
        }
    }

    #[test]
    fn identity_follows_successors_to_the_root() {
        let (a, b, c, d) = (key(), key(), key(), key());
        let links = [(b, a), (c, b), (d, c)];
        let of = |k: &PublicKey| links.iter().find(|(s, _)| s == k).map(|(_, p)| *p);
        assert_eq!(identity(&d, of).unwrap(), a);
        assert_eq!(identity(&b, of).unwrap(), a);
        assert_eq!(identity(&a, of).unwrap(), a);
        let cycle = [(a, c), (b, a), (c, b)];
        let of = |k: &PublicKey| cycle.iter().find(|(s, _)| s == k).map(|(_, p)| *p);
        assert!(identity(&c, of).unwrap_err().contains("cycle"));
    }
}
