//! `oryx ceremony verify FILE [--audit-key PUB]`: checks a ceremony transcript and prints what it
//! proves.
//!
//! Checks (see [`super::transcript::verify`]): the entries' seq/prev/hash chain; every audit-key
//! signature over the head it names (and with `--audit-key`, that it is that key); every step's
//! content (transaction digests and ids recomputed from chain id and packed bytes, signatures
//! recovered to the signing key, approvals to approvers over the binding digest, the generated
//! key handed the old key's watermarks); the output files beside the transcript; and that the
//! file is byte for byte what Oryx wrote. Any failure names the entry and exits non-zero.
//!
//! With `--audit-log FILE` (the signer's audit log, carried over), the log is verified too, and
//! every audit position the transcript names must be a line of it with that hash, whose digest
//! and signature (when it records them) are the ones in the transcript: the transcript and the
//! signer's own trail anchor each other.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::antelope::PublicKey;
use serde_json::{Value, json};

use super::transcript::{Transcript, verify};
use crate::audit::AuditEntry;
use crate::cli::{CliError, read_input};

/// Arguments.
#[derive(Debug, Args)]
pub struct Verify {
    /// The transcript (DIR/transcript.json).
    pub file: PathBuf,
    /// The signer's audit key the transcript signatures must recover to.
    #[arg(long)]
    pub audit_key: Option<PublicKey>,
    /// The signer's audit log: check every audit position the transcript names against it.
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
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
        // `verify` parsed it already: it cannot fail now.
        let t = Transcript::parse(&text).map_err(CliError::Other)?;
        let anchored = match &self.audit_log {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
                crate::audit::verify_bytes(&bytes)
                    .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
                Some(check_audit_refs(&t, &bytes).map_err(|e| {
                    CliError::Other(format!(
                        "{} against {}: {e}",
                        self.file.display(),
                        path.display()
                    ))
                })?)
            }
            None => None,
        };
        // `ok` covers what was checked; this says what was not.
        let mut not_checked = Vec::new();
        if self.audit_key.is_none() {
            not_checked.push(
                "whose key signed the transcript: its signatures match its head, but only \
                 --audit-key (the signer's audit.signing_key) shows they are the signer's",
            );
        }
        if self.audit_log.is_none() {
            not_checked.push(
                "the audit positions the transcript names: pass --audit-log with the signer's \
                 audit log",
            );
        }
        Ok(json!({
            "ok": true,
            "not_checked": not_checked,
            "ceremony": r.ceremony,
            "kind": r.kind,
            "entries": r.entries,
            "signatures": r.signatures,
            "signed_through": r.signed_through,
            "audit_key": r.audit_key.map(|k| k.to_string()),
            "audit_key_checked": self.audit_key.is_some(),
            "audit_positions_checked": anchored,
            "notes": r.notes,
            "steps": super::show::summary(&t),
        }))
    }
}

/// A position and what the audit line there must say.
struct Expected<'a> {
    what: String,
    seq: u64,
    hash: &'a str,
    digest: Option<String>,
    signature: Option<String>,
}

/// Checks every audit position of `t` against the (verified) log `bytes`; returns how many.
fn check_audit_refs(t: &Transcript, bytes: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut expected: Vec<Expected<'_>> = Vec::new();
    let str_of =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    for e in &t.entries {
        let Some(a) = e.data.get("audit").filter(|a| !a.is_null()) else {
            continue;
        };
        let (Some(seq), Some(hash)) = (
            a.get("seq").and_then(Value::as_u64),
            a.get("hash").and_then(Value::as_str),
        ) else {
            return Err(format!(
                "entry {} ({}): audit is not {{seq, hash}}",
                e.seq, e.step
            ));
        };
        // A signing decision's line records the signature it released.
        let signature = if e.step == super::steps::SIGNED {
            str_of(&e.data, "signature")
        } else {
            None
        };
        expected.push(Expected {
            what: format!("entry {} ({})", e.seq, e.step),
            seq,
            hash,
            digest: None,
            signature,
        });
    }
    for (i, s) in t.signatures.iter().enumerate() {
        if let Some(a) = &s.audit {
            expected.push(Expected {
                what: format!("signature {i}"),
                seq: a.seq,
                hash: &a.hash,
                digest: Some(s.digest.clone()),
                signature: Some(s.signature.clone()),
            });
        }
    }
    for x in &expected {
        let line = usize::try_from(x.seq)
            .ok()
            .and_then(|n| lines.get(n))
            .ok_or_else(|| format!("{}: the log has no line {}", x.what, x.seq))?;
        let entry: AuditEntry = serde_json::from_str(line)
            .map_err(|e| format!("{}: audit line {}: {e}", x.what, x.seq))?;
        if entry.hash != x.hash {
            return Err(format!(
                "{}: audit line {} has another hash: the transcript or the log was changed",
                x.what, x.seq
            ));
        }
        if let (Some(want), Some(got)) = (&x.digest, &entry.digest)
            && want != got
        {
            return Err(format!(
                "{}: audit line {} is for another digest",
                x.what, x.seq
            ));
        }
        if let (Some(want), Some(got)) = (&x.signature, &entry.signature)
            && want != got
        {
            return Err(format!(
                "{}: audit line {} released another signature",
                x.what, x.seq
            ));
        }
    }
    Ok(expected.len())
}
