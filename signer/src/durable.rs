//! Durable whole-file writes for the small files the signer keeps: replacement for the stores
//! (approval requests, the key registry), creation for secrets (key files, TLS keys, PINs).
//!
//! Guards: a crash leaves the old or the new content of a file, never a torn one; a created file
//! never replaces an existing one and appears whole or not at all.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A durable write that failed: the file or directory it failed on, and why.
#[derive(Debug)]
pub struct WriteError {
    /// The temporary file, the file, or its directory.
    pub path: PathBuf,
    /// The error.
    pub source: std::io::Error,
}

/// Creates `path` holding `bytes`, refusing (with [`std::io::ErrorKind::AlreadyExists`]) if it
/// exists: writes a uniquely named temporary file beside it (created with `mode` on Unix, less
/// the umask), fsyncs it, hard-links it to `path` (atomic, and refused for an existing name),
/// removes the temporary name and fsyncs the directory. The directory must exist.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError { path, source }
    };
    let dir = parent(path);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}-{n}.tmp",
        file_name(path),
        std::process::id()
    ));
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let staged = (|| {
        let mut f = opts.open(&tmp).map_err(at(&tmp))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(at(&tmp))?;
        drop(f);
        std::fs::hard_link(&tmp, path).map_err(at(path))
    })();
    // The temporary name is only a staging step: failing to remove it leaves a harmless file
    // behind and must not hide the outcome.
    let _ = std::fs::remove_file(&tmp);
    staged?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
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

/// Replaces `path` with `bytes`: writes `.NAME.tmp` beside it (created with `mode` on Unix,
/// less the umask), fsyncs it, renames it over `path` and fsyncs the directory. The directory
/// must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError { path, source }
    };
    let dir = parent(path);
    let tmp = dir.join(format!(".{}.tmp", file_name(path)));
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(at(&tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(at(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(at(path))?;
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
    fn write_atomic_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["state.json"]);
    }
}
