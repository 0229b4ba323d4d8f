//! Durable whole-file replacement for the stores that keep small files (approval requests, the
//! key registry).
//!
//! Guards: a crash leaves the old or the new content of a file, never a torn one.

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

/// Replaces `path` with `bytes`: writes `.NAME.tmp` beside it (created with `mode` on Unix,
/// less the umask), fsyncs it, renames it over `path` and fsyncs the directory. The directory
/// must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError { path, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp"));
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
