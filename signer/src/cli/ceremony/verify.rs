//! `oryx ceremony verify FILE [--audit-key PUB]`: checks a ceremony transcript and prints what it
//! proves.
//!
//! Checks (see [`super::transcript::verify`]): the entries' seq/prev/hash chain; every audit-key
//! signature over the head it names (and with `--audit-key`, that it is that key); every step's
//! content (transaction digests and ids recomputed from chain id and packed bytes, signatures
//! recovered to the signing key, approvals to approvers over the binding digest, the generated
//! key handed the old key's watermarks); the output files beside the transcript; and that the
//! file is byte for byte what Oryx wrote. Any failure names the entry and exits non-zero.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::antelope::PublicKey;
use serde_json::{Value, json};

use super::transcript::verify;
use crate::cli::{CliError, read_input};

/// Arguments.
#[derive(Debug, Args)]
pub struct Verify {
    /// The transcript (DIR/transcript.json).
    pub file: PathBuf,
    /// The signer's audit key the transcript signatures must recover to.
    #[arg(long)]
    pub audit_key: Option<PublicKey>,
}

/// Reads an output file named by the transcript from the transcript's directory (plain names
/// only: a name with a path separator is never followed).
pub(crate) fn sibling_reader(file: &std::path::Path) -> impl Fn(&str) -> Option<Vec<u8>> + use<> {
    let dir = file
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    move |name: &str| {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return None;
        }
        std::fs::read(dir.join(name)).ok()
    }
}

impl Verify {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let text = read_input(&self.file)?;
        let read = sibling_reader(&self.file);
        let r = verify(&text, self.audit_key.as_ref(), &read)
            .map_err(|e| CliError::Other(format!("{}: {e}", self.file.display())))?;
        let summary = super::show::summary(&text)?;
        Ok(json!({
            "ok": true,
            "ceremony": r.ceremony,
            "kind": r.kind,
            "entries": r.entries,
            "signatures": r.signatures,
            "signed_through": r.signed_through,
            "audit_key": r.audit_key.map(|k| k.to_string()),
            "audit_key_checked": self.audit_key.is_some(),
            "notes": r.notes,
            "steps": summary,
        }))
    }
}
