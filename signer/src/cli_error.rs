//! [`CliError`]: the one error convention of both command-line trees — the `oryx` operator and
//! approver CLI ([`crate::cli`], `src/bin/oryx.rs`) and the `oryx-signer` daemon's commands
//! ([`crate::commands`], `src/main.rs`).
//!
//! Guards: every command returns `Result<_, CliError>` and never exits the process itself;
//! `main` hands the error to [`report`], which prints it once, as one line on stderr
//! (`BINARY: error: MESSAGE`), and turns it into the failure exit code (1). No message carries a
//! secret: the errors wrapped here name files, keys' public halves and values, never private
//! keys, PINs or passphrases.

use std::path::Path;
use std::process::ExitCode;

/// A command's failure: one line for the operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The input could not be decoded or is invalid.
    #[error(transparent)]
    Input(#[from] oryx_proto::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The signer's configuration file could not be loaded.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A key backend could not be opened or refused the operation.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// Anything else, with an explanation (also what the helpers that still describe their
    /// failures as one line of text return, through `From<String>`).
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// A [`CliError::Io`] for `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        CliError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// A [`CliError::Other`] from any error that describes itself (`.map_err(CliError::other)`),
    /// for errors of modules this one does not wrap by type.
    pub(crate) fn other(e: impl std::fmt::Display) -> Self {
        CliError::Other(e.to_string())
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError::Other(message)
    }
}

/// Prints a command's failure as the one stderr line of `binary` and returns the exit code.
pub fn report(binary: &str, error: &CliError) -> ExitCode {
    eprintln!("{binary}: error: {error}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_shape() {
        let io = CliError::io(Path::new("/x/y"), std::io::ErrorKind::NotFound.into());
        assert_eq!(io.to_string(), "/x/y: entity not found");
        assert_eq!(
            CliError::from("--anchor must be SEQ:HASH".to_string()).to_string(),
            "--anchor must be SEQ:HASH"
        );
    }
}
