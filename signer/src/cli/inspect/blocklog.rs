//! `oryx inspect blocklog DIR [--verify [--key PUB] [--schedule-hash HEX]]`: the blocks in an
//! `oryx-node produce` block log, and whether the log holds up.
//!
//! Guards: `--verify` fails (non-zero exit, one line per problem) unless every block's signature
//! recovers (to `--key` when given), every block links to the one before it, and every
//! `transaction_mroot` matches the block's transactions. A damaged log is an error, never a panic.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::antelope::block::BlockKind;
use oryx_proto::antelope::merkle::LegacyIncrementalMerkle;
use oryx_proto::antelope::{Checksum256, PublicKey};
use oryx_proto::blocklog::{self, ScanEnd};
use serde_json::{Value, json};

use crate::cli::CliError;

/// Arguments.
#[derive(Debug, Args)]
pub struct InspectBlocklog {
    /// The block log directory (holding blocks.log and blocks.index).
    pub dir: PathBuf,
    /// Check every signature, link and transaction merkle root; exit non-zero on any failure.
    #[arg(long)]
    pub verify: bool,
    /// With --verify: every block must be signed by this key.
    #[arg(long, requires = "verify")]
    pub key: Option<String>,
    /// Legacy blocks: the pending schedule hash they were signed with (`oryx-node produce`
    /// logs it at start-up). Needed to recover legacy signatures.
    #[arg(long)]
    pub schedule_hash: Option<String>,
}

impl InspectBlocklog {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let key = self.key.as_deref().map(PublicKey::parse).transpose()?;
        let schedule_hash = self
            .schedule_hash
            .as_deref()
            .map(Checksum256::from_hex)
            .transpose()?;
        // A log whose blocks do not link one to the next is refused here, by the reader.
        let (entries, end) = blocklog::read_all(&self.dir)
            .map_err(|e| CliError::Other(format!("{}: {e}", self.dir.display())))?;
        let mut problems: Vec<String> = Vec::new();
        let mut blocks = Vec::with_capacity(entries.len());
        // Legacy blockroot leaves: the first block's parent, then each block id.
        let mut ids = LegacyIncrementalMerkle::new();
        if let Some(e) = entries.first() {
            ids.append(e.block.header.previous);
        }
        let mut first_signer = None;
        for e in &entries {
            let h = &e.block.header;
            let num = h.block_num()?;
            let id = h.id()?;
            let digest = match (h.kind(), schedule_hash) {
                (BlockKind::Savanna, _) => Some(id),
                (BlockKind::Legacy, Some(sh)) => Some(h.legacy_sig_digest(&ids.root(), &sh)),
                (BlockKind::Legacy, None) => None,
            };
            let signer = digest.and_then(|d| e.block.producer_signature.recover(&d).ok());
            if !e.block.transaction_mroot_matches() {
                problems.push(format!(
                    "block {num}: transaction_mroot {} does not match its {} transaction(s) (computed {})",
                    h.transaction_mroot,
                    e.block.transactions.len(),
                    e.block.computed_transaction_mroot()
                ));
            }
            // Without --key, every block must at least be signed by the same key as the first.
            if key.is_none()
                && let Some(k) = signer
            {
                match &first_signer {
                    None => first_signer = Some(k),
                    Some(f) if *f != k => problems.push(format!(
                        "block {num}: signed by {k}, but the log's first block by {f} (pass --key to name the producer key)"
                    )),
                    Some(_) => {}
                }
            }
            match (&signer, digest, &key) {
                (_, None, _) => problems.push(format!(
                    "block {num}: legacy block, signature not checked: pass --schedule-hash"
                )),
                (None, Some(_), _) => problems.push(format!(
                    "block {num}: the producer signature does not recover"
                )),
                (Some(k), Some(_), Some(want)) if k != want => {
                    problems.push(format!("block {num}: signed by {k}, not by {want}"))
                }
                _ => {}
            }
            blocks.push(json!({
                "block_num": num,
                "id": id.to_string(),
                "timestamp": h.timestamp,
                "producer": h.producer,
                "kind": h.kind(),
                "transactions": e.block.transactions.len(),
                "signing_key": signer.map(|k| k.to_pub_string()),
            }));
            ids.append(id);
        }
        let mut out = json!({
            "dir": self.dir.display().to_string(),
            "count": blocks.len(),
            "first": blocks.first().map(|b| b["block_num"].clone()),
            "head": blocks.last().map(|b| b["block_num"].clone()),
            "torn_tail": matches!(end, ScanEnd::Torn(_)),
            "blocks": blocks,
        });
        if self.verify {
            if !problems.is_empty() {
                let n = problems.len();
                let shown: Vec<String> = problems.into_iter().take(20).collect();
                return Err(CliError::Other(format!(
                    "{}: verification failed, {n} problem(s):\n  {}",
                    self.dir.display(),
                    shown.join("\n  ")
                )));
            }
            out["verified"] = json!(true);
        }
        Ok(out)
    }
}
