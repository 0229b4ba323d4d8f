//! Whole blocks: `transaction_receipt` and `signed_block`, their packing and their digests.
//!
//! Guards: a block's `transaction_mroot` commits to exactly the receipts it carries. The receipt
//! digest is Spring's `transaction_receipt::digest()`:
//! `sha256(status u8 ‖ cpu_usage_us u32 ‖ net_usage_words varuint32 ‖ X)` where X is the
//! transaction id, or for a packed transaction its `packed_digest()`:
//! `sha256(compression u8 ‖ pack(packed_trx) ‖ sha256(pack(signatures) ‖ pack(packed_context_free_data)))`
//! (the byte fields keep their length prefixes). Savanna headers use [`merkle`], legacy headers
//! [`legacy_merkle`].

use serde::Serialize;

use super::block::{BlockHeader, BlockKind};
use super::codec::{Pack, Reader, Unpack, VarUint32};
use super::merkle::{legacy_merkle, merkle};
use super::transaction::{Extension, PackedTransaction};
use super::{Checksum256, Signature};
use crate::{Error, Result};

/// `transaction_receipt_header::status_enum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionStatus {
    /// Succeeded, no error handler ran.
    Executed,
    /// Failed objectively; the error handler ran.
    SoftFail,
    /// Failed, and the error handler failed too: no state change.
    HardFail,
    /// Delayed (deferred) for later execution.
    Delayed,
    /// Expired.
    Expired,
}

impl TransactionStatus {
    fn code(self) -> u8 {
        match self {
            TransactionStatus::Executed => 0,
            TransactionStatus::SoftFail => 1,
            TransactionStatus::HardFail => 2,
            TransactionStatus::Delayed => 3,
            TransactionStatus::Expired => 4,
        }
    }
}

impl Pack for TransactionStatus {
    fn pack(&self, out: &mut Vec<u8>) {
        out.push(self.code());
    }
}

impl Unpack for TransactionStatus {
    const WHAT: &'static str = "transaction status";
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8("transaction status")? {
            0 => TransactionStatus::Executed,
            1 => TransactionStatus::SoftFail,
            2 => TransactionStatus::HardFail,
            3 => TransactionStatus::Delayed,
            4 => TransactionStatus::Expired,
            b => {
                return Err(Error::invalid(
                    "transaction status",
                    format!("unknown value {b}"),
                ));
            }
        })
    }
}

/// What a receipt carries: `std::variant<transaction_id_type, packed_transaction>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptTrx {
    /// Only the id (deferred transactions).
    Id(Checksum256),
    /// The whole signed transaction.
    Packed(PackedTransaction),
}

impl Pack for ReceiptTrx {
    fn pack(&self, out: &mut Vec<u8>) {
        match self {
            ReceiptTrx::Id(id) => {
                VarUint32(0).pack(out);
                id.pack(out);
            }
            ReceiptTrx::Packed(p) => {
                VarUint32(1).pack(out);
                p.pack(out);
            }
        }
    }
}

impl Unpack for ReceiptTrx {
    const WHAT: &'static str = "transaction receipt trx";
    const MIN_SIZE: usize = 5;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        match r.varuint32("receipt trx variant")? {
            0 => Ok(ReceiptTrx::Id(Checksum256::unpack(r)?)),
            1 => Ok(ReceiptTrx::Packed(PackedTransaction::unpack(r)?)),
            v => Err(Error::invalid(
                "receipt trx variant",
                format!("index {v} (0 = id, 1 = packed_transaction)"),
            )),
        }
    }
}

/// `packed_transaction::packed_digest()`: commits to the signatures and context-free data
/// through a separate "prunable" digest, so they can be pruned without changing the root.
pub fn packed_digest(p: &PackedTransaction) -> Checksum256 {
    let mut prunable = Vec::new();
    p.signatures.pack(&mut prunable);
    p.packed_context_free_data.pack(&mut prunable);
    let prunable = Checksum256::hash(&prunable);
    let mut enc = Vec::with_capacity(p.packed_trx.0.len() + 40);
    p.compression.pack(&mut enc);
    p.packed_trx.pack(&mut enc);
    prunable.pack(&mut enc);
    Checksum256::hash(&enc)
}

/// `transaction_receipt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionReceipt {
    /// Outcome.
    pub status: TransactionStatus,
    /// Billed CPU in microseconds.
    pub cpu_usage_us: u32,
    /// Billed NET in 8-byte words.
    pub net_usage_words: VarUint32,
    /// The transaction.
    pub trx: ReceiptTrx,
}

impl TransactionReceipt {
    /// The receipt digest the transaction merkle root is built from.
    pub fn digest(&self) -> Checksum256 {
        let mut enc = Vec::with_capacity(48);
        self.status.pack(&mut enc);
        self.cpu_usage_us.pack(&mut enc);
        self.net_usage_words.pack(&mut enc);
        match &self.trx {
            ReceiptTrx::Id(id) => id.pack(&mut enc),
            ReceiptTrx::Packed(p) => packed_digest(p).pack(&mut enc),
        }
        Checksum256::hash(&enc)
    }

    /// The transaction id (decodes a packed transaction).
    pub fn trx_id(&self) -> Result<Checksum256> {
        match &self.trx {
            ReceiptTrx::Id(id) => Ok(*id),
            ReceiptTrx::Packed(p) => p.id(),
        }
    }
}

impl Pack for TransactionReceipt {
    fn pack(&self, out: &mut Vec<u8>) {
        self.status.pack(out);
        self.cpu_usage_us.pack(out);
        self.net_usage_words.pack(out);
        self.trx.pack(out);
    }
}

impl Unpack for TransactionReceipt {
    const WHAT: &'static str = "transaction_receipt";
    const MIN_SIZE: usize = 11;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(TransactionReceipt {
            status: TransactionStatus::unpack(r)?,
            cpu_usage_us: r.u32("cpu_usage_us")?,
            net_usage_words: VarUint32::unpack(r)?,
            trx: ReceiptTrx::unpack(r)?,
        })
    }
}

/// The transaction merkle root of `receipts` for a block of `kind`.
pub fn transaction_mroot(kind: BlockKind, receipts: &[TransactionReceipt]) -> Checksum256 {
    let digests: Vec<Checksum256> = receipts.iter().map(TransactionReceipt::digest).collect();
    match kind {
        BlockKind::Savanna => merkle(&digests),
        BlockKind::Legacy => legacy_merkle(&digests),
    }
}

/// `signed_block`: header, producer signature, receipts, block extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedBlock {
    /// The header.
    pub header: BlockHeader,
    /// The producer's signature (over the block id, or the legacy `sig_digest`).
    pub producer_signature: Signature,
    /// Transaction receipts, in execution order.
    pub transactions: Vec<TransactionReceipt>,
    /// Block extensions (additional signatures, QC).
    pub block_extensions: Vec<Extension>,
}

impl SignedBlock {
    /// Decodes a packed signed block, refusing trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        SignedBlock::unpack_exact(bytes)
    }

    /// The root the header's `transaction_mroot` must equal.
    pub fn computed_transaction_mroot(&self) -> Checksum256 {
        transaction_mroot(self.header.kind(), &self.transactions)
    }

    /// The digest the producer signed: the block id (Savanna), or the legacy `sig_digest`, which
    /// needs the chain's blockroot merkle root and pending schedule hash.
    pub fn signing_digest(
        &self,
        legacy_inputs: Option<(&Checksum256, &Checksum256)>,
    ) -> Result<Checksum256> {
        self.header.signing_digest(legacy_inputs)
    }

    /// Whether the header's `transaction_mroot` matches the receipts carried.
    pub fn transaction_mroot_matches(&self) -> bool {
        self.computed_transaction_mroot() == self.header.transaction_mroot
    }
}

impl Pack for SignedBlock {
    fn pack(&self, out: &mut Vec<u8>) {
        self.header.pack(out);
        self.producer_signature.pack(out);
        self.transactions.pack(out);
        self.block_extensions.pack(out);
    }
}

impl Unpack for SignedBlock {
    const WHAT: &'static str = "signed_block";
    const MIN_SIZE: usize = 116 + 66 + 2;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(SignedBlock {
            header: BlockHeader::unpack(r)?,
            producer_signature: Signature::unpack(r)?,
            transactions: Vec::unpack(r)?,
            block_extensions: Vec::unpack(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::antelope::block::SAVANNA_SCHEDULE_VERSION;
    use crate::antelope::codec::Bytes;
    use crate::antelope::transaction::{Compression, Transaction};
    use crate::antelope::{BlockTimestamp, KeyType, Name};
    use proptest::prelude::*;

    const ACTIVATE: &str = "06e10b5e02005132b41600000000010000000000ea30550000002a9bed3232010000000000ea305500000000a8ed3232201a99a59d87e06e09ec5b028a9cbb7749b4a5ad8819004365d02dc4379a8b724100";

    fn packed(compression: Compression, cfd: &[Bytes]) -> PackedTransaction {
        let trx = Transaction::decode(&hex::decode(ACTIVATE).unwrap()).unwrap();
        PackedTransaction::new(&trx, cfd, vec![], compression).unwrap()
    }

    fn receipt(p: PackedTransaction) -> TransactionReceipt {
        TransactionReceipt {
            status: TransactionStatus::Executed,
            cpu_usage_us: 123,
            net_usage_words: VarUint32(300),
            trx: ReceiptTrx::Packed(p),
        }
    }

    #[test]
    fn receipt_digest_follows_spring() {
        let p = packed(Compression::None, &[Bytes(vec![1, 2])]);
        // Rebuilt byte by byte from transaction_receipt::digest and packed_digest.
        let mut prunable = vec![0u8]; // no signatures
        prunable.push(p.packed_context_free_data.0.len() as u8);
        prunable.extend_from_slice(&p.packed_context_free_data.0);
        let prunable = Checksum256::hash(&prunable);
        let mut enc = vec![0u8]; // compression none
        crate::antelope::codec::write_bytes(&mut enc, &p.packed_trx.0);
        enc.extend_from_slice(&prunable.0);
        let pd = Checksum256::hash(&enc);
        assert_eq!(packed_digest(&p), pd);
        let mut r = vec![0u8];
        r.extend_from_slice(&123u32.to_le_bytes());
        r.extend_from_slice(&[0xac, 0x02]); // varuint32(300)
        r.extend_from_slice(&pd.0);
        assert_eq!(receipt(p).digest(), Checksum256::hash(&r));
    }

    /// EOS mainnet block 692518 (2018, legacy): one transaction, so its transaction_mroot is
    /// that receipt's digest; the header rebuilt from get_block's fields has the block's id.
    #[test]
    fn eos_block_692518_receipt_digest_is_its_transaction_mroot() {
        let p: PackedTransaction = serde_json::from_str(
            r#"{"signatures": ["SIG_K1_KgBxkQ81TCi3CYGziCds3BiR2fQd7rFc9j2Z21LoUPwK4ut7GWt2315ioQbcutE9mPs8yQj2xYjQZ16Mj3SRhLMko63CiB"],
                "compression": "none", "packed_context_free_data": "",
                "packed_trx": "11b3185bd48f4ef64b02000000000100a6823403ea3055000000572d3ccdcd01000000000000003000000000a8ed32322300000000000000300000000000b0967a102700000000000004454f530000000002313100"}"#,
        )
        .unwrap();
        assert_eq!(
            p.id().unwrap().to_string(),
            "da7adfcd313217bbf7e63c06cf00110ccfc00ed1bda188ba3542a4cbf859203a"
        );
        let r = TransactionReceipt {
            status: TransactionStatus::Executed,
            cpu_usage_us: 577,
            net_usage_words: VarUint32(16),
            trx: ReceiptTrx::Packed(p),
        };
        let mroot = Checksum256::from_hex(
            "0ec26e7b29e8e26b6a823b50be28b9562161cf68da7aa5afa7a30c317b2c5ac3",
        )
        .unwrap();
        assert_eq!(r.digest(), mroot);
        assert_eq!(transaction_mroot(BlockKind::Legacy, &[r]), mroot);
        let header = BlockHeader {
            timestamp: BlockTimestamp::parse("2018-06-07T04:21:42.500").unwrap(),
            producer: Name::new("creazyracoon").unwrap(),
            confirmed: 0,
            previous: Checksum256::from_hex(
                "000a9125abad882e6a7937f5e0d394ac8a2180d3ce6365d762f187047d402fcc",
            )
            .unwrap(),
            transaction_mroot: mroot,
            action_mroot: Checksum256::from_hex(
                "33acf64ae2257fdf126816d4cf9741c33926f9c7672b72d5159ae7d0776291ee",
            )
            .unwrap(),
            schedule_version: 44,
            new_producers: None,
            header_extensions: vec![],
        };
        assert_eq!(
            header.id().unwrap().to_string(),
            "000a912638bdb6d094b6af9ae0251f85cecbc4a48f25538e8ee9cd03e518d2b8"
        );
    }

    #[test]
    fn receipt_round_trips_both_variants() {
        for rc in [
            receipt(packed(Compression::Zlib, &[Bytes(vec![9; 40])])),
            TransactionReceipt {
                status: TransactionStatus::Delayed,
                cpu_usage_us: 0,
                net_usage_words: VarUint32(0),
                trx: ReceiptTrx::Id(Checksum256([5; 32])),
            },
        ] {
            let bytes = rc.packed();
            assert_eq!(TransactionReceipt::unpack_exact(&bytes).unwrap(), rc);
        }
        assert!(TransactionReceipt::unpack_exact(&[9, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn signed_block_round_trips_and_checks_its_mroot() {
        let receipts = vec![
            receipt(packed(Compression::None, &[])),
            receipt(packed(Compression::Zlib, &[])),
        ];
        let header = BlockHeader {
            timestamp: BlockTimestamp(1000),
            producer: Name::new("oryxproducer").unwrap(),
            confirmed: 0,
            previous: Checksum256([0; 32]),
            transaction_mroot: transaction_mroot(BlockKind::Savanna, &receipts),
            action_mroot: Checksum256::default(),
            schedule_version: SAVANNA_SCHEDULE_VERSION,
            new_producers: None,
            header_extensions: vec![Extension(2, Bytes(vec![0, 0, 0, 0, 1, 0, 0]))],
        };
        // The signature's content does not matter to the packing.
        let sig = Signature::from_parts(KeyType::K1, 1, &[0x55; 32], &[0x66; 32]).unwrap();
        let block = SignedBlock {
            header,
            producer_signature: sig,
            transactions: receipts,
            block_extensions: vec![],
        };
        let bytes = block.packed();
        let back = SignedBlock::decode(&bytes).unwrap();
        assert_eq!(back, block);
        assert!(back.transaction_mroot_matches());
        let mut wrong = back.clone();
        wrong.transactions.pop();
        assert!(!wrong.transaction_mroot_matches());
        // Truncated input is an error at every length, never a panic.
        for n in 0..bytes.len() {
            assert!(SignedBlock::decode(&bytes[..n]).is_err());
        }
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(b) = SignedBlock::decode(&bytes) {
                prop_assert_eq!(b.packed(), bytes);
            }
        }
    }
}
