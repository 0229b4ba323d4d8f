//! `oryx inspect blocklog DIR [--verify [--key PUB …] [--schedule-hash HEX]]`: the blocks in an
//! `oryx-node produce` block log, and whether the log holds up.
//!
//! Guards: `--verify` fails (non-zero exit, one line per problem) unless every block's signature
//! recovers, every block links to the one before it, and every `transaction_mroot` matches the
//! block's transactions. Repeated `--key` gives the producer's key history across rotations, in
//! order: each block is signed by one of them, and never by a key before the one a previous
//! block used (a hand-over is one way). A damaged log is an error, never a panic.

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
    /// With --verify: the producer key every block is signed by; repeat it, oldest first, for
    /// a log that spans key rotations.
    #[arg(long = "key", requires = "verify")]
    pub keys: Vec<String>,
    /// Legacy blocks: the pending schedule hash they were signed with (`oryx-node produce`
    /// logs it at start-up). Needed to recover legacy signatures.
    #[arg(long)]
    pub schedule_hash: Option<String>,
}

impl InspectBlocklog {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let keys = self
            .keys
            .iter()
            .map(|k| PublicKey::parse(k))
            .collect::<Result<Vec<_>, _>>()?;
        // Where in the key history the log is (the newest key a block used so far).
        let mut at = 0usize;
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
            if keys.is_empty()
                && let Some(k) = signer
            {
                match &first_signer {
                    None => first_signer = Some(k),
                    Some(f) if *f != k => problems.push(format!(
                        "block {num}: signed by {k}, but the log's first block by {f} (pass --key to name the producer key, once per key of a rotation, oldest first)"
                    )),
                    Some(_) => {}
                }
            }
            match (&signer, digest) {
                (_, None) => problems.push(format!(
                    "block {num}: legacy block, signature not checked: pass --schedule-hash"
                )),
                (None, Some(_)) => problems.push(format!(
                    "block {num}: the producer signature does not recover"
                )),
                (Some(k), Some(_)) if !keys.is_empty() => match keys.iter().position(|w| w == k) {
                    None => problems.push(format!(
                        "block {num}: signed by {k}, not by {}",
                        keys.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )),
                    Some(j) if j < at => problems.push(format!(
                        "block {num}: signed by {k} after the hand-over to {}",
                        keys[at]
                    )),
                    Some(j) => at = j,
                },
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::backend::KeyBackend as _;
    use crate::backend::soft::SoftKey;
    use oryx_proto::antelope::block::{BlockHeader, BlockKind, SAVANNA_SCHEDULE_VERSION};
    use oryx_proto::antelope::signed_block::{SignedBlock, transaction_mroot};
    use oryx_proto::antelope::transaction::Extension;
    use oryx_proto::antelope::{BlockTimestamp, Bytes, KeyType, Name};

    /// A log of six Savanna blocks: `signers[i]` signs block i.
    fn log(dir: &std::path::Path, signers: &[&SoftKey]) {
        let (mut log, _, _) = blocklog::BlockLog::open(dir).unwrap();
        let mut previous = Checksum256([0x11; 32]);
        previous.0[..4].copy_from_slice(&1u32.to_be_bytes());
        for (i, key) in signers.iter().enumerate() {
            let header = BlockHeader {
                timestamp: BlockTimestamp(100 + i as u32),
                producer: Name::new("oryxproducer").unwrap(),
                confirmed: 0,
                previous,
                transaction_mroot: transaction_mroot(BlockKind::Savanna, &[]),
                action_mroot: Checksum256::default(),
                schedule_version: SAVANNA_SCHEDULE_VERSION,
                new_producers: None,
                header_extensions: vec![Extension(2, Bytes(vec![1, 0, 0, 0, 1, 0, 0]))],
            };
            previous = header.id().unwrap();
            let producer_signature = crate::signing::sign(*key, &previous, Default::default())
                .unwrap()
                .signature;
            log.append(&SignedBlock {
                header,
                producer_signature,
                transactions: vec![],
                block_extensions: vec![],
            })
            .unwrap();
        }
    }

    #[test]
    fn a_log_across_a_rotation_verifies_with_the_key_history() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            SoftKey::generate(KeyType::K1).unwrap(),
            SoftKey::generate(KeyType::K1).unwrap(),
        );
        log(dir.path(), &[&a, &a, &a, &b, &b, &b]);
        let verify = |keys: &[&SoftKey]| {
            InspectBlocklog {
                dir: dir.path().to_path_buf(),
                verify: true,
                keys: keys.iter().map(|k| k.public_key().to_string()).collect(),
                schedule_hash: None,
            }
            .run()
            .map_err(|e| e.to_string())
        };
        assert_eq!(verify(&[&a, &b]).unwrap()["verified"], true);
        for (keys, want) in [
            (vec![], "pass --key"),
            (vec![&a], "not by"),
            (vec![&b, &a], "after the hand-over"),
        ] {
            let e = verify(&keys).unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        }
        // Going back to the old key after the hand-over is a problem too.
        let back = tempfile::tempdir().unwrap();
        log(back.path(), &[&a, &b, &a, &b, &b, &b]);
        let e = InspectBlocklog {
            dir: back.path().to_path_buf(),
            verify: true,
            keys: vec![a.public_key().to_string(), b.public_key().to_string()],
            schedule_hash: None,
        }
        .run()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("block 4: signed by") && e.contains("after the hand-over"),
            "{e}"
        );
    }
}
