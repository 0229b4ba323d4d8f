//! The spool: a directory the relay drops signed transactions into, one per file.
//!
//! Accepted files: `*.json` (a `packed_transaction` as JSON: `signatures`, `compression`,
//! `packed_context_free_data`, `packed_trx`), `*.bin` (its binary packing) and `*.hex` (the same in
//! hex). Anything else (`.tmp` files the relay is still writing, dotfiles, directories) is left
//! alone. The relay should write to a temporary name and rename, so a file is complete when seen.
//!
//! Guards: a transaction leaves the spool only after the block that includes it is signed and
//! durably logged (`included/`), or when it can never be included (`rejected/`, with a WARN that
//! says why: it does not decode, a signature does not recover, or it expired). A crash in between
//! leaves the file in place; the producer skips transactions its chain already contains.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oryx_proto::antelope::transaction::PackedTransaction;
use oryx_proto::antelope::{BlockTimestamp, Checksum256, Unpack as _};

use crate::NodeError;

/// Subdirectory for files whose transactions are in a logged block.
pub const INCLUDED: &str = "included";
/// Subdirectory for files that can never be included.
pub const REJECTED: &str = "rejected";

/// A transaction read from the spool.
#[derive(Debug, Clone)]
pub struct SpoolTx {
    /// The file it came from.
    pub path: PathBuf,
    /// The transaction.
    pub trx: PackedTransaction,
    /// Its id.
    pub id: Checksum256,
}

/// The spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// Opens `dir`, creating it and its `included/` and `rejected/` subdirectories.
    pub fn open(dir: &Path) -> Result<Spool, NodeError> {
        for d in [dir.to_path_buf(), dir.join(INCLUDED), dir.join(REJECTED)] {
            std::fs::create_dir_all(&d).map_err(|source| NodeError::Spool { path: d, source })?;
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn files(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("json" | "bin" | "hex")
                    )
            })
            .collect();
        // Relays name files by arrival (time or sequence), so name order is arrival order.
        files.sort();
        files
    }

    /// Up to `limit` transactions to include in a block at `timestamp` on `chain_id`, in file
    /// name order, skipping those in `skip` (already in the chain). Files that can never be
    /// included are moved to `rejected/`.
    pub fn take(
        &self,
        limit: usize,
        timestamp: BlockTimestamp,
        chain_id: &Checksum256,
        skip: &HashSet<Checksum256>,
    ) -> Vec<SpoolTx> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for path in self.files() {
            if out.len() >= limit {
                break;
            }
            let tx = match read_tx(&path) {
                Ok(tx) => tx,
                // Vanished between listing and reading: another instance took it.
                Err(None) => continue,
                Err(Some(why)) => {
                    self.reject(&path, &why.to_string());
                    continue;
                }
            };
            if skip.contains(&tx.id) {
                // Already in the chain (a crash after logging, or the other instance's block).
                self.retire(&tx.path);
                continue;
            }
            if !seen.insert(tx.id) {
                self.reject(&path, "the same transaction is in another spool file");
                continue;
            }
            if let Err(why) = check(&tx, timestamp, chain_id) {
                self.reject(&path, &why.to_string());
                continue;
            }
            out.push(tx);
        }
        out
    }

    /// Moves the files of spooled transactions whose ids are in `ids` to `included/` (after
    /// their block is logged, by this instance or by one it follows).
    pub fn retire_ids(&self, ids: &HashSet<Checksum256>) {
        if ids.is_empty() {
            return;
        }
        for path in self.files() {
            if let Ok(tx) = read_tx(&path)
                && ids.contains(&tx.id)
            {
                self.retire(&path);
            }
        }
    }

    /// Moves one file to `included/`.
    pub fn retire(&self, path: &Path) {
        self.move_to(path, INCLUDED);
    }

    fn reject(&self, path: &Path, why: &str) {
        tracing::warn!(file = %path.display(), "spool: rejected a transaction file: {why}; moved to {REJECTED}/");
        self.move_to(path, REJECTED);
    }

    fn move_to(&self, path: &Path, sub: &str) {
        let Some(name) = path.file_name() else {
            return;
        };
        match std::fs::rename(path, self.dir.join(sub).join(name)) {
            Ok(()) => {}
            // Another instance sharing the spool moved it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), "spool: cannot move the file to {sub}/: {e}")
            }
        }
    }
}

/// Reads one spool file. `Err(None)`: the file vanished; `Err(Some(why))`: it is bad
/// ([`NodeError::BadTransaction`]).
fn read_tx(path: &Path) -> Result<SpoolTx, Option<NodeError>> {
    let bad = |why: String| Some(NodeError::BadTransaction(why));
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(None),
        Err(e) => return Err(bad(format!("cannot read it: {e}"))),
    };
    if data.len() > 4 << 20 {
        return Err(bad("larger than 4 MiB".into()));
    }
    let trx = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_slice::<PackedTransaction>(&data)
            .map_err(|e| bad(format!("not a packed_transaction JSON: {e}")))?,
        Some("hex") => {
            let text = String::from_utf8_lossy(&data);
            let bytes = hex::decode(text.trim()).map_err(|e| bad(format!("not hex: {e}")))?;
            PackedTransaction::unpack_exact(&bytes)
                .map_err(|e| bad(format!("not a packed_transaction: {e}")))?
        }
        _ => PackedTransaction::unpack_exact(&data)
            .map_err(|e| bad(format!("not a packed_transaction: {e}")))?,
    };
    let id = trx
        .id()
        .map_err(|e| bad(format!("the transaction does not decode: {e}")))?;
    Ok(SpoolTx {
        path: path.to_path_buf(),
        trx,
        id,
    })
}

/// Whether a spooled transaction can go in a block at `timestamp`.
fn check(tx: &SpoolTx, timestamp: BlockTimestamp, chain_id: &Checksum256) -> Result<(), NodeError> {
    let bad = NodeError::BadTransaction;
    let trx = tx
        .trx
        .transaction()
        .map_err(|e| bad(format!("the transaction does not decode: {e}")))?;
    if i64::from(trx.expiration.0) * 1000 <= timestamp.to_unix_ms() {
        return Err(bad(format!("expired at {}", trx.expiration)));
    }
    if tx.trx.signatures.is_empty() {
        return Err(bad("it carries no signature".into()));
    }
    let digest = tx
        .trx
        .signing_digest(chain_id)
        .map_err(|e| bad(format!("cannot compute its signing digest: {e}")))?;
    for sig in &tx.trx.signatures {
        sig.recover(&digest).map_err(|e| {
            bad(format!(
                "signature {sig} does not recover on this chain: {e}"
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use oryx_proto::antelope::Pack as _;
    use oryx_proto::antelope::transaction::{Compression, Transaction};

    const ACTIVATE: &str = "06e10b5e02005132b41600000000010000000000ea30550000002a9bed3232010000000000ea305500000000a8ed3232201a99a59d87e06e09ec5b028a9cbb7749b4a5ad8819004365d02dc4379a8b724100";

    fn unsigned() -> PackedTransaction {
        let trx = Transaction::decode(&hex::decode(ACTIVATE).unwrap()).unwrap();
        PackedTransaction::new(&trx, &[], vec![], Compression::None).unwrap()
    }

    #[test]
    fn bad_files_are_rejected_and_included_ones_retired() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let p = unsigned();
        std::fs::write(dir.path().join("1-garbage.bin"), b"\x01\x02").unwrap();
        std::fs::write(dir.path().join("2-unsigned.hex"), hex::encode(p.packed())).unwrap();
        std::fs::write(
            dir.path().join("3-known.json"),
            serde_json::to_vec(&p).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join(".4-partial.json.tmp"), b"{").unwrap();
        std::fs::write(dir.path().join("5-notes.txt"), b"ignored").unwrap();
        let chain = Checksum256([1; 32]);
        // The ACTIVATE transaction expired in 2020; with no signature it is refused either way.
        let got = spool.take(10, BlockTimestamp(0), &chain, &HashSet::new());
        assert!(got.is_empty());
        let rejected: HashSet<String> = std::fs::read_dir(dir.path().join(REJECTED))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(rejected.contains("1-garbage.bin") && rejected.contains("2-unsigned.hex"));
        // The JSON copy has the same transaction as the hex one: refused as a duplicate.
        assert!(rejected.contains("3-known.json"), "{rejected:?}");
        // Files that are not transactions, or still being written, stay.
        assert!(dir.path().join(".4-partial.json.tmp").exists());
        assert!(dir.path().join("5-notes.txt").exists());

        // A transaction the chain already has leaves the spool as included.
        std::fs::write(dir.path().join("6-known.bin"), p.packed()).unwrap();
        let known: HashSet<_> = [p.id().unwrap()].into();
        assert!(spool.take(10, BlockTimestamp(0), &chain, &known).is_empty());
        assert!(dir.path().join(INCLUDED).join("6-known.bin").exists());
    }
}
