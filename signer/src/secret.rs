//! [`Secret`]: the one in-memory form of a secret the signer reads from a file — the PKCS#11 user
//! PIN, the YubiHSM authentication password, the soft-key passphrase.
//!
//! Guards: a secret's bytes are zeroized on drop, its `Debug` prints `<redacted>`, it has no
//! `Display`, and no error built here contains it (errors name the file and the I/O error kind,
//! never the content). An empty secret is refused when it is read, not discovered later as a
//! failed login.
//!
//! How a file is trimmed depends on the kind of secret ([`SecretKind`]), and each kind keeps the
//! rule its backend always had, because changing it would silently change the secret: a PIN or
//! password loses surrounding whitespace, while a passphrase loses exactly one trailing newline
//! (spaces are part of it, and key files sealed under it must keep opening).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Which secret a file holds: names it in errors and decides how it is trimmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A PKCS#11 user PIN (also the approver's PIN of `oryx approve`). UTF-8; surrounding
    /// whitespace is trimmed.
    Pkcs11Pin,
    /// The password of a YubiHSM authentication key. UTF-8; surrounding whitespace is trimmed.
    YubiHsmPassword,
    /// The passphrase of a soft key directory. Any bytes; exactly one trailing newline (`\n` or
    /// `\r\n`) is removed, everything else (spaces, a second newline) is part of it.
    Passphrase,
}

impl SecretKind {
    /// The noun used for this secret in error messages.
    fn noun(self) -> &'static str {
        match self {
            SecretKind::Pkcs11Pin => "PIN",
            SecretKind::YubiHsmPassword => "YubiHSM password",
            SecretKind::Passphrase => "passphrase",
        }
    }

    /// Applies this kind's trimming rule, or `None` if the content must be UTF-8 and is not.
    fn trim(self, raw: &[u8]) -> Option<&[u8]> {
        match self {
            SecretKind::Pkcs11Pin | SecretKind::YubiHsmPassword => {
                // `str::trim`, not `trim_ascii`: the same (Unicode) whitespace the PIN and
                // password files were always trimmed of.
                std::str::from_utf8(raw).ok().map(|s| s.trim().as_bytes())
            }
            SecretKind::Passphrase => {
                let raw = raw
                    .strip_suffix(b"\n")
                    .map_or(raw, |r| r.strip_suffix(b"\r").unwrap_or(r));
                Some(raw)
            }
        }
    }
}

/// Why a secret could not be had. Names the file, never its content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The file could not be read (or a PIN/password file is not UTF-8: `invalid data`).
    #[error("cannot read {} file {}: {kind}", .what.noun(), .path.display())]
    Read {
        /// Which secret.
        what: SecretKind,
        /// The file.
        path: PathBuf,
        /// The I/O error kind (its message could only ever repeat this).
        kind: io::ErrorKind,
    },
    /// The file holds nothing once trimmed.
    #[error("{} file {} is empty", .what.noun(), .path.display())]
    EmptyFile {
        /// Which secret.
        what: SecretKind,
        /// The file.
        path: PathBuf,
    },
    /// A secret given as a value is empty once trimmed.
    #[error("the {} is empty", .what.noun())]
    Empty {
        /// Which secret.
        what: SecretKind,
    },
    /// Other users may read (or change) the file: refused, as ssh refuses a private key.
    #[error("{} file {} is open to other users (mode {mode:03o}): `chmod 600` it (readable by the signer's user only)", .what.noun(), .path.display())]
    Exposed {
        /// Which secret.
        what: SecretKind,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

pub use oryx_proto::durable::private_file_mode;

/// Whether the process holds CAP_IPC_LOCK in the initial user namespace (where it lifts
/// RLIMIT_MEMLOCK; inside a container's own user namespace it does not).
fn unbounded_lock_capability() -> bool {
    use rustix::thread::{CapabilitySet, capabilities};
    let has = capabilities(None).is_ok_and(|c| c.effective.contains(CapabilitySet::IPC_LOCK));
    let initial_ns = std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]);
    has && initial_ns
}

/// What [`protect_process_memory`] achieved: each part `Err` with why it was not done.
#[derive(Debug)]
pub struct MemoryProtection {
    /// All memory, present and future, locked in RAM (never swapped out).
    pub locked: Result<(), String>,
    /// No core dumps, no ptrace attach by the same user.
    pub undumpable: Result<(), String>,
}

/// Keeps the daemon's secrets (PINs, passphrases, soft keys, TLS keys) off disk and out of
/// other processes: marks the process not dumpable (no core files, no same-user ptrace), and
/// with `lock` locks all its memory (`mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)`: pages
/// are locked as they are touched, so thread stacks are not populated up front). Locking is
/// done only where the process may lock without bound (`RLIMIT_MEMLOCK` unlimited, or liftable
/// to unlimited): under a finite limit a later allocation beyond it would fail, which a signer
/// must not risk.
/// Call before any secret is read.
pub fn protect_process_memory(lock: bool) -> MemoryProtection {
    use rustix::process::{DumpableBehavior, Resource, set_dumpable_behavior};
    let undumpable =
        set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(|e| e.to_string());
    let locked = if !lock {
        Err("lock_memory = false in the config".to_owned())
    } else {
        use rustix::process::{Rlimit, getrlimit, setrlimit};
        // Unbounded where the limit is (or can be lifted to) unlimited, or where CAP_IPC_LOCK
        // bypasses it; being root in a container's user namespace is not enough, and then
        // nothing is locked.
        let unlimited = Rlimit {
            current: None,
            maximum: None,
        };
        let _ = setrlimit(Resource::Memlock, unlimited);
        let limit = getrlimit(Resource::Memlock).current;
        if let Some(bytes) = limit.filter(|_| !unbounded_lock_capability()) {
            Err(format!(
                "RLIMIT_MEMLOCK is {bytes} bytes, and a locked process that outgrows it fails \
                 allocations: allow unlimited locking (systemd: LimitMEMLOCK=infinity, as in \
                 deploy/systemd/oryx-signer.service)"
            ))
        } else {
            use rustix::mm::{MlockAllFlags, mlockall};
            mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT)
                .map_err(|e| format!("mlockall: {e}"))
        }
    };
    MemoryProtection { locked, undumpable }
}

/// A secret in memory: zeroized on drop, printed as `<redacted>`, never displayed. Not `Clone`:
/// one copy per secret, owned by the backend that uses it.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Reads the secret of kind `what` from `path`, trimmed as that kind says. Refuses an empty
    /// one. The error names the file, never its contents.
    pub fn from_file(what: SecretKind, path: &Path) -> Result<Self, SecretError> {
        let read_error = |kind| SecretError::Read {
            what,
            path: path.to_path_buf(),
            kind,
        };
        private_file_mode(path).map_err(|mode| SecretError::Exposed {
            what,
            path: path.to_path_buf(),
            mode,
        })?;
        let raw = Zeroizing::new(std::fs::read(path).map_err(|e| read_error(e.kind()))?);
        let trimmed = what
            .trim(&raw)
            .ok_or_else(|| read_error(io::ErrorKind::InvalidData))?;
        if trimmed.is_empty() {
            return Err(SecretError::EmptyFile {
                what,
                path: path.to_path_buf(),
            });
        }
        Ok(Secret(Zeroizing::new(trimmed.to_vec())))
    }

    /// Wraps a secret given as a value (tests, and callers that already hold it), trimmed as
    /// `what` says. Refuses an empty one.
    pub fn new(what: SecretKind, value: &str) -> Result<Self, SecretError> {
        match what.trim(value.as_bytes()) {
            Some(trimmed) if !trimmed.is_empty() => Ok(Secret(Zeroizing::new(trimmed.to_vec()))),
            _ => Err(SecretError::Empty { what }),
        }
    }

    /// The secret's bytes. Keep what is derived from them out of logs and errors too.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text, or `None` if it is not UTF-8 (a PIN or password always is: it was
    /// checked when read).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(dir: &tempfile::TempDir, content: &[u8]) -> PathBuf {
        let path = dir.path().join("secret");
        std::fs::write(&path, content).expect("write");
        set_mode(&path, 0o600);
        path
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_file_other_users_may_read_is_refused_naming_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file_with(&dir, b"4711\n");
        for mode in [0o644, 0o640, 0o604, 0o660] {
            set_mode(&path, mode);
            let e = Secret::from_file(SecretKind::Pkcs11Pin, &path).expect_err("exposed");
            assert!(e.to_string().contains("chmod 600"), "{e}");
            assert!(!e.to_string().contains("4711"));
        }
        set_mode(&path, 0o400);
        Secret::from_file(SecretKind::Pkcs11Pin, &path).expect("owner only");
    }

    #[test]
    fn is_redacted() {
        let s = Secret::new(SecretKind::YubiHsmPassword, "hunter2").expect("secret");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
    }

    #[test]
    fn pins_and_passwords_lose_surrounding_whitespace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file_with(&dir, b"  123456\n");
        let pin = Secret::from_file(SecretKind::Pkcs11Pin, &path).expect("pin");
        assert_eq!(pin.expose_str(), Some("123456"));
        let p = Secret::new(SecretKind::YubiHsmPassword, "  hunter2\n").expect("password");
        assert_eq!(p.expose(), b"hunter2");
    }

    #[test]
    fn a_passphrase_loses_exactly_one_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (content, want) in [
            (&b"pass phrase"[..], &b"pass phrase"[..]),
            (b"pass phrase\n", b"pass phrase"),
            (b"pass phrase\r\n", b"pass phrase"),
            (b"pass phrase\n\n", b"pass phrase\n"),
            (b" pass \n", b" pass "),
            (b"\xff\xfe\n", b"\xff\xfe"),
        ] {
            let path = file_with(&dir, content);
            let s = Secret::from_file(SecretKind::Passphrase, &path).expect("passphrase");
            assert_eq!(s.expose(), want, "{content:?}");
        }
    }

    #[test]
    fn empty_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (what, content) in [
            (SecretKind::Pkcs11Pin, &b" \n\t"[..]),
            (SecretKind::YubiHsmPassword, b"\n"),
            (SecretKind::Passphrase, b"\r\n"),
        ] {
            let path = file_with(&dir, content);
            let err = Secret::from_file(what, &path).expect_err("empty");
            assert_eq!(
                err.to_string(),
                format!("{} file {} is empty", what.noun(), path.display())
            );
        }
        let err = Secret::new(SecretKind::YubiHsmPassword, " \n").expect_err("empty");
        assert_eq!(err.to_string(), "the YubiHSM password is empty");
    }

    #[test]
    fn read_errors_name_the_file_never_the_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let err = Secret::from_file(SecretKind::Pkcs11Pin, &missing).expect_err("missing");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read PIN file {}: entity not found",
                missing.display()
            )
        );
        // A PIN must be text, as it always was (`read_to_string`); the bytes are not echoed.
        let path = file_with(&dir, b"12\xff34");
        let err = Secret::from_file(SecretKind::Pkcs11Pin, &path).expect_err("not UTF-8");
        assert_eq!(
            err.to_string(),
            format!("cannot read PIN file {}: invalid data", path.display())
        );
    }
}
