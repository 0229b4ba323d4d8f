//! Durable whole-file writes for the small files Oryx keeps: replacement for stores (the
//! signer's approval requests and key registry, the node's pending block and block-log index),
//! creation for secrets (key files, TLS keys, passphrases).
//!
//! Guards: a crash leaves the old or the new content of a file, never a torn one; a created file
//! never replaces an existing one and appears whole or not at all.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// `Err(mode)` when users other than the owner may read or write `path` (group or other
/// permission bits): a secret file (PIN, passphrase, TLS or CA key, the bridge's listen token)
/// must be its user's alone, as ssh demands of a private key. Symlinks are followed (the file
/// read is what counts).
pub fn private_file_mode(path: &Path) -> Result<(), u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(m) = std::fs::metadata(path) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(mode);
            }
        }
    }
    Ok(())
}

/// A durable write that failed: the file or directory it failed on, and why.
#[derive(Debug)]
pub struct WriteError {
    /// The temporary file, the file, or its directory.
    pub path: PathBuf,
    /// The error.
    pub source: std::io::Error,
}

/// Creates `path` holding `bytes`, refusing (with [`std::io::ErrorKind::AlreadyExists`]) if it
/// exists: writes a randomly named temporary file beside it (created with `mode` on Unix, less
/// the umask), fsyncs it, hard-links it to `path` (atomic, and refused for an existing name),
/// removes the temporary name and fsyncs the directory. The directory must exist.
///
/// On a filesystem without hard links (vfat, exFAT, some network and FUSE mounts, e.g. a USB
/// stick for `oryx key generate --out`) it creates `path` exclusively and writes it in place
/// instead: still never over an existing file and synced, but a crash mid-write can leave a
/// partial file there.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError { path, source }
    };
    let dir = parent(path);
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| WriteError {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("random source: {e}")),
    })?;
    let tmp = dir.join(format!(".{}.{}.tmp", file_name(path), hex::encode(suffix)));
    let write_new = |target: &Path| -> Result<(), WriteError> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = opts.open(target).map_err(at(target))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(at(target))
    };
    let staged = write_new(&tmp).and_then(|()| std::fs::hard_link(&tmp, path).map_err(at(path)));
    // The temporary name is only a staging step: failing to remove it must not hide the outcome.
    let _ = std::fs::remove_file(&tmp);
    match staged {
        Ok(()) => {}
        Err(e) if e.path == path && no_hard_links(&e.source) => write_new(path)?,
        Err(e) => return Err(e),
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

/// Whether a failed `link(2)` means the filesystem has no hard links.
fn no_hard_links(e: &std::io::Error) -> bool {
    const EPERM: i32 = 1;
    const EOPNOTSUPP: i32 = 95;
    e.kind() == std::io::ErrorKind::Unsupported
        || matches!(e.raw_os_error(), Some(EPERM | EOPNOTSUPP))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned())
}

/// Replaces `path` with `bytes`: writes `.NAME.RANDOM.tmp` beside it (a new file, never an
/// existing one or a symlink planted there; created with `mode` on Unix, less the umask),
/// fsyncs it, renames it over `path` and fsyncs the directory. The directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError { path, source }
    };
    let dir = parent(path);
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| WriteError {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let tmp = dir.join(format!(".{}.{}.tmp", file_name(path), hex::encode(nonce)));
    let mut opts = OpenOptions::new();
    // create_new: O_CREAT|O_EXCL, which does not follow a symlink at the name.
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(at(&tmp))?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(at(&tmp)(e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(at(path)(e));
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_atomic_never_writes_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // The old fixed staging name, planted as a symlink to another file.
        #[cfg(unix)]
        std::os::unix::fs::symlink(&victim, dir.path().join(".state.json.tmp")).unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        write_atomic(&path, b"newer", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"newer");
        // Nothing staged is left behind.
        assert!(
            names(dir.path())
                .iter()
                .all(|n| !n.ends_with(".tmp") || n == ".state.json.tmp")
        );
    }

    #[test]
    fn create_new_never_replaces_and_leaves_no_staging_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        create_new(&path, b"first", 0o600).unwrap();
        let e = create_new(&path, b"second", 0o600).unwrap_err();
        assert_eq!(e.source.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(e.path, path);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(names(dir.path()), ["secret"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        // A missing directory: an error naming the staging file, nothing created.
        let e = create_new(&dir.path().join("no/such"), b"x", 0o600).unwrap_err();
        assert!(e.path.starts_with(dir.path().join("no")), "{:?}", e.path);
    }

    #[test]
    fn only_filesystems_without_links_take_the_in_place_path() {
        assert!(no_hard_links(&std::io::Error::from_raw_os_error(1)));
        assert!(no_hard_links(&std::io::Error::from_raw_os_error(95)));
        assert!(no_hard_links(&std::io::Error::from(
            std::io::ErrorKind::Unsupported
        )));
        // An existing name is a refusal, never a reason to write in place.
        assert!(!no_hard_links(&std::io::Error::from_raw_os_error(17)));
        assert!(!no_hard_links(&std::io::Error::from_raw_os_error(28)));
    }

    #[test]
    fn write_atomic_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["state.json"]);
    }
}
