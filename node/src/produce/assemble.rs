//! Building blocks: receipts for spooled transactions, the header over them, the digest inputs
//! of legacy blocks, and the pending-block file.
//!
//! Guards: the header commits to exactly the receipts the block carries (`transaction_mroot` by
//! the merkle rule of its kind), builds on the head (`previous` = head id, so the block number is
//! head + 1), and carries a slot after the head's. The pending file records a block *before* it
//! is sent for signing, so that if this process dies after the signer signed but before the block
//! was logged, the identical request can be replayed (the signer returns the stored signature)
//! by this instance on restart or by a standby that follows it, instead of the height being lost.

use std::path::Path;

use oryx_proto::antelope::block::{
    BlockHeader, BlockKind, ProducerKey, ProducerSchedule, QcClaim, SAVANNA_SCHEDULE_VERSION,
    extension_id,
};
use oryx_proto::antelope::codec::{Pack, Reader, Unpack};
use oryx_proto::antelope::signed_block::{
    ReceiptTrx, SignedBlock, TransactionReceipt, TransactionStatus, transaction_mroot,
};
use oryx_proto::antelope::transaction::{Extension, PackedTransaction};
use oryx_proto::antelope::{
    BlockTimestamp, Bytes, Checksum256, Name, PublicKey, Signature, VarUint32,
};
use oryx_proto::blocklog::Head;

use super::Mode;
use crate::NodeError;

/// File name of the pending block inside the block log directory.
pub const PENDING_FILE: &str = "pending.bin";
const PENDING_MAGIC: &[u8; 8] = b"ORYXPND1";

/// A receipt for a transaction this assembler includes. It does not execute contracts: the
/// status is `executed`, CPU is the configured figure, and NET is the packed size in 8-byte
/// words, rounded up.
pub fn receipt(trx: PackedTransaction, cpu_usage_us: u32) -> TransactionReceipt {
    let words = trx.packed().len().div_ceil(8);
    TransactionReceipt {
        status: TransactionStatus::Executed,
        cpu_usage_us,
        net_usage_words: VarUint32(u32::try_from(words).unwrap_or(u32::MAX)),
        trx: ReceiptTrx::Packed(trx),
    }
}

/// The legacy schedule of a single-producer test chain, and the pending schedule hash legacy
/// headers are signed with: `sha256(pack(producer_schedule))`.
pub fn legacy_schedule_hash(version: u32, producer: Name, key: &PublicKey) -> Checksum256 {
    let schedule = ProducerSchedule {
        version,
        producers: vec![ProducerKey {
            producer_name: producer,
            block_signing_key: *key,
        }],
    };
    Checksum256::hash(&schedule.packed())
}

/// A block before it is signed, with what the signer needs besides the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsigned {
    /// The header.
    pub header: BlockHeader,
    /// The receipts.
    pub transactions: Vec<TransactionReceipt>,
    /// Legacy blocks: (blockroot merkle root, pending schedule hash).
    pub legacy_inputs: Option<(Checksum256, Checksum256)>,
}

impl Unsigned {
    /// Builds the block after `head` at `timestamp`.
    pub fn build(
        mode: Mode,
        producer: Name,
        head: &Head,
        timestamp: BlockTimestamp,
        transactions: Vec<TransactionReceipt>,
        legacy_inputs: Option<(Checksum256, Checksum256)>,
    ) -> Unsigned {
        let (kind, schedule_version, header_extensions) = match mode {
            Mode::Savanna => {
                // A test chain has no finalizers: claim the parent, strong, and propose no new
                // finalizer or proposer policy.
                let claim = QcClaim {
                    block_num: head.block_num,
                    is_strong_qc: true,
                };
                let mut data = claim.packed();
                data.extend_from_slice(&[0, 0]);
                (
                    BlockKind::Savanna,
                    SAVANNA_SCHEDULE_VERSION,
                    vec![Extension(extension_id::FINALITY, Bytes(data))],
                )
            }
            Mode::Legacy { schedule_version } => (BlockKind::Legacy, schedule_version, vec![]),
        };
        let header = BlockHeader {
            timestamp,
            producer,
            confirmed: 0,
            previous: head.id,
            transaction_mroot: transaction_mroot(kind, &transactions),
            // This assembler runs no actions: the action (Savanna: finality) root is empty.
            action_mroot: Checksum256::default(),
            schedule_version,
            new_producers: None,
            header_extensions,
        };
        Unsigned {
            header,
            transactions,
            legacy_inputs: if kind == BlockKind::Legacy {
                legacy_inputs
            } else {
                None
            },
        }
    }

    /// The digest the signer will sign.
    pub fn digest(&self) -> Result<Checksum256, NodeError> {
        Ok(self
            .header
            .signing_digest(self.legacy_inputs.as_ref().map(|(bm, sh)| (bm, sh)))?)
    }

    /// The signed block.
    pub fn sign(self, producer_signature: Signature) -> SignedBlock {
        SignedBlock {
            header: self.header,
            producer_signature,
            transactions: self.transactions,
            block_extensions: vec![],
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = PENDING_MAGIC.to_vec();
        self.header.pack(&mut out);
        self.transactions.pack(&mut out);
        self.legacy_inputs.pack(&mut out);
        out
    }

    /// Decodes the pending file at `path` (named in the error).
    fn decode(path: &Path, bytes: &[u8]) -> Result<Unsigned, NodeError> {
        let bad = |problem: String| NodeError::PendingBlock {
            path: path.to_path_buf(),
            problem,
        };
        let body = bytes
            .strip_prefix(PENDING_MAGIC)
            .ok_or_else(|| bad("not a pending-block file".into()))?;
        let unpack = || -> oryx_proto::Result<Unsigned> {
            let mut r = Reader::new(body);
            let header = BlockHeader::unpack(&mut r)?;
            let transactions = Vec::unpack(&mut r)?;
            let legacy_inputs = Option::unpack(&mut r)?;
            r.finish("pending block")?;
            Ok(Unsigned {
                header,
                transactions,
                legacy_inputs,
            })
        };
        unpack().map_err(|e| bad(e.to_string()))
    }

    /// Writes the pending file in `dir` atomically and durably (temp file, fsync, rename,
    /// directory fsync).
    pub fn write_pending(&self, dir: &Path) -> Result<(), NodeError> {
        let path = dir.join(PENDING_FILE);
        oryx_proto::durable::write_atomic(&path, &self.encode(), 0o600).map_err(|e| {
            NodeError::PendingBlock {
                path: e.path,
                problem: format!("cannot write the pending block: {}", e.source),
            }
        })
    }

    /// Removes the pending file in `dir` (once its block is logged or definitely refused),
    /// durably.
    pub fn remove_pending(dir: &Path) -> Result<(), NodeError> {
        let path = dir.join(PENDING_FILE);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
        .map_err(|e| NodeError::PendingBlock {
            path,
            problem: format!("cannot remove the pending block: {e}"),
        })
    }

    /// The pending block in `dir`, if there is a readable one.
    pub fn read_pending(dir: &Path) -> Option<Result<Unsigned, NodeError>> {
        let path = dir.join(PENDING_FILE);
        match std::fs::read(&path) {
            Ok(b) => Some(Unsigned::decode(&path, &b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(NodeError::PendingBlock {
                path,
                problem: e.to_string(),
            })),
        }
    }
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use oryx_proto::antelope::block::num_from_id;
    use oryx_proto::antelope::transaction::{Compression, Transaction};

    const ACTIVATE: &str = "06e10b5e02005132b41600000000010000000000ea30550000002a9bed3232010000000000ea305500000000a8ed3232201a99a59d87e06e09ec5b028a9cbb7749b4a5ad8819004365d02dc4379a8b724100";

    fn head() -> Head {
        let mut id = Checksum256([9; 32]);
        id.0[..4].copy_from_slice(&41u32.to_be_bytes());
        Head {
            block_num: 41,
            id,
            timestamp: BlockTimestamp(1000),
        }
    }

    fn receipts() -> Vec<TransactionReceipt> {
        let trx = Transaction::decode(&hex::decode(ACTIVATE).unwrap()).unwrap();
        vec![receipt(
            PackedTransaction::new(&trx, &[], vec![], Compression::None).unwrap(),
            100,
        )]
    }

    #[test]
    fn savanna_header_builds_on_the_head() {
        let u = Unsigned::build(
            Mode::Savanna,
            Name::new("oryxproducer").unwrap(),
            &head(),
            BlockTimestamp(1001),
            receipts(),
            None,
        );
        let h = &u.header;
        assert_eq!(h.block_num().unwrap(), 42);
        assert_eq!(num_from_id(&h.id().unwrap()), 42);
        assert_eq!(h.kind(), BlockKind::Savanna);
        let fin = h.finality_extension().unwrap().unwrap();
        assert_eq!(fin.qc_claim.block_num, 41);
        assert!(fin.new_finalizer_policy_diff.is_none() && fin.new_proposer_policy_diff.is_none());
        assert_eq!(u.digest().unwrap(), h.id().unwrap());
        let block = u.clone().sign(
            Signature::from_parts(oryx_proto::antelope::KeyType::K1, 0, &[1; 32], &[2; 32])
                .unwrap(),
        );
        assert!(block.transaction_mroot_matches());
    }

    #[test]
    fn legacy_header_and_pending_file_round_trip() {
        let key =
            PublicKey::parse("EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV").unwrap();
        let name = Name::new("oryxproducer").unwrap();
        let sh = legacy_schedule_hash(3, name, &key);
        // The blockroot merkle the producer keeps, over the head's id alone.
        let bm = oryx_proto::antelope::merkle::LegacyIncrementalMerkle::new().append(head().id);
        assert_eq!(bm, head().id, "one id is its own root");
        let u = Unsigned::build(
            Mode::Legacy {
                schedule_version: 3,
            },
            name,
            &head(),
            BlockTimestamp(1001),
            receipts(),
            Some((bm, sh)),
        );
        assert_eq!(u.header.kind(), BlockKind::Legacy);
        assert_eq!(u.header.schedule_version, 3);
        assert_eq!(u.digest().unwrap(), u.header.legacy_sig_digest(&bm, &sh));
        let dir = tempfile::tempdir().unwrap();
        assert!(Unsigned::read_pending(dir.path()).is_none());
        u.write_pending(dir.path()).unwrap();
        assert_eq!(Unsigned::read_pending(dir.path()).unwrap().unwrap(), u);
        std::fs::write(dir.path().join(PENDING_FILE), b"ORYXPND1garbage").unwrap();
        assert!(Unsigned::read_pending(dir.path()).unwrap().is_err());
    }
}
