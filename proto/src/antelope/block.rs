//! Block headers (legacy and Savanna), block ids, block numbers and the digest a producer signs.
//!
//! Guards: the signer recomputes what it signs from the header itself. For Savanna blocks the
//! producer signs the block id `BE32(block_num) ‖ sha256(pack(header))[4..32]`; for legacy blocks
//! `sha256(sha256(sha256(pack(header)) ‖ blockroot_merkle_root) ‖ pending_schedule_hash)`. The
//! block number comes from `previous`, so a header cannot claim a height it does not have.

use serde::Serialize;

use super::actions::BlockSigningAuthority;
use super::codec::{Bytes, Pack, Reader, Unpack};
use super::transaction::Extension;
use super::{BlockTimestamp, Checksum256, Name, PublicKey};
use crate::{Error, Result};

/// `schedule_version` of every block produced under Savanna (proper): Spring sets the high bit
/// (`proposer_policy` versions live elsewhere) so legacy code can tell the two apart.
pub const SAVANNA_SCHEDULE_VERSION: u32 = 0x8000_0000;

/// Header extension ids.
pub mod extension_id {
    /// `protocol_feature_activation`: digests of features activated in this block.
    pub const PROTOCOL_FEATURE_ACTIVATION: u16 = 0;
    /// `producer_schedule_change_extension`: a new `producer_authority_schedule` (legacy, WTMSIG).
    pub const PRODUCER_SCHEDULE_CHANGE: u16 = 1;
    /// `finality_extension` (Savanna): QC claim and policy diffs.
    pub const FINALITY: u16 = 2;
}

/// One producer and its key in a legacy (v1) schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProducerKey {
    /// Producer account.
    pub producer_name: Name,
    /// Its block signing key.
    pub block_signing_key: PublicKey,
}

impl Pack for ProducerKey {
    fn pack(&self, out: &mut Vec<u8>) {
        self.producer_name.pack(out);
        self.block_signing_key.pack(out);
    }
}

impl Unpack for ProducerKey {
    const WHAT: &'static str = "producer_key";
    const MIN_SIZE: usize = 42;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ProducerKey {
            producer_name: Name::unpack(r)?,
            block_signing_key: PublicKey::unpack(r)?,
        })
    }
}

/// `legacy::producer_schedule_type`, carried in `new_producers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProducerSchedule {
    /// Schedule version.
    pub version: u32,
    /// Producers in order.
    pub producers: Vec<ProducerKey>,
}

impl Pack for ProducerSchedule {
    fn pack(&self, out: &mut Vec<u8>) {
        self.version.pack(out);
        self.producers.pack(out);
    }
}

impl Unpack for ProducerSchedule {
    const WHAT: &'static str = "producer_schedule";
    const MIN_SIZE: usize = 5;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ProducerSchedule {
            version: r.u32("schedule version")?,
            producers: Vec::unpack(r)?,
        })
    }
}

/// The QC claim of a Savanna block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QcClaim {
    /// Block number the claimed QC is for.
    pub block_num: u32,
    /// Whether the QC is strong.
    pub is_strong_qc: bool,
}

impl Unpack for QcClaim {
    const WHAT: &'static str = "qc_claim";
    const MIN_SIZE: usize = 5;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(QcClaim {
            block_num: r.u32("qc_claim.block_num")?,
            is_strong_qc: r.bool("qc_claim.is_strong_qc")?,
        })
    }
}

impl Pack for QcClaim {
    fn pack(&self, out: &mut Vec<u8>) {
        self.block_num.pack(out);
        self.is_strong_qc.pack(out);
    }
}

/// `fc::ordered_diff<T, uint16_t>::diff_result`: indexes removed from the old list, then
/// (position, value) pairs inserted into the new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderedDiff<T> {
    /// Positions in the old list that are removed.
    pub remove_indexes: Vec<u16>,
    /// Positions in the new list and the values inserted there.
    pub insert_indexes: Vec<(u16, T)>,
}

impl<T: Pack> Pack for OrderedDiff<T> {
    fn pack(&self, out: &mut Vec<u8>) {
        self.remove_indexes.pack(out);
        self.insert_indexes.pack(out);
    }
}

impl<T: Unpack> Unpack for OrderedDiff<T> {
    const WHAT: &'static str = "ordered_diff";
    const MIN_SIZE: usize = 2;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(OrderedDiff {
            remove_indexes: Vec::unpack(r)?,
            insert_indexes: Vec::unpack(r)?,
        })
    }
}

/// Size of a BLS12-381 G1 public key as fc packs it: affine x ‖ y, little-endian, 96 bytes.
pub const BLS_PUBLIC_KEY_BYTES: usize = 96;

/// A finalizer's entry in a finalizer policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinalizerAuthority {
    /// Free text chosen by the finalizer.
    pub description: String,
    /// Voting weight.
    pub weight: u64,
    /// BLS public key (96 bytes, affine, little-endian), hex in JSON.
    pub public_key: Bytes,
}

impl Pack for FinalizerAuthority {
    fn pack(&self, out: &mut Vec<u8>) {
        self.description.pack(out);
        self.weight.pack(out);
        self.public_key.pack(out);
    }
}

impl Unpack for FinalizerAuthority {
    const WHAT: &'static str = "finalizer_authority";
    const MIN_SIZE: usize = 10 + BLS_PUBLIC_KEY_BYTES;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        let description = String::unpack(r)?;
        let weight = r.u64("finalizer weight")?;
        let public_key = Bytes::unpack(r)?;
        if public_key.0.len() != BLS_PUBLIC_KEY_BYTES {
            return Err(Error::invalid(
                "finalizer public key",
                format!(
                    "{} bytes, expected {BLS_PUBLIC_KEY_BYTES}",
                    public_key.0.len()
                ),
            ));
        }
        Ok(FinalizerAuthority {
            description,
            weight,
            public_key,
        })
    }
}

/// `finalizer_policy_diff`: a new finalizer policy as a change to the previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinalizerPolicyDiff {
    /// Policy generation.
    pub generation: u32,
    /// Weight needed for a QC.
    pub threshold: u64,
    /// Changes to the finalizer list.
    pub finalizers_diff: OrderedDiff<FinalizerAuthority>,
}

impl Pack for FinalizerPolicyDiff {
    fn pack(&self, out: &mut Vec<u8>) {
        self.generation.pack(out);
        self.threshold.pack(out);
        self.finalizers_diff.pack(out);
    }
}

impl Unpack for FinalizerPolicyDiff {
    const WHAT: &'static str = "finalizer_policy_diff";
    const MIN_SIZE: usize = 14;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(FinalizerPolicyDiff {
            generation: r.u32("generation")?,
            threshold: r.u64("threshold")?,
            finalizers_diff: OrderedDiff::unpack(r)?,
        })
    }
}

/// One producer and its signing authority (`producer_authority`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProducerAuthority {
    /// Producer account.
    pub producer_name: Name,
    /// Keys and threshold that sign its blocks.
    pub authority: BlockSigningAuthority,
}

impl Pack for ProducerAuthority {
    fn pack(&self, out: &mut Vec<u8>) {
        self.producer_name.pack(out);
        self.authority.pack(out);
    }
}

impl Unpack for ProducerAuthority {
    const WHAT: &'static str = "producer_authority";
    const MIN_SIZE: usize = 14;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ProducerAuthority {
            producer_name: Name::unpack(r)?,
            authority: BlockSigningAuthority::unpack(r)?,
        })
    }
}

/// `producer_authority_schedule` (WTMSIG schedules, header extension 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProducerAuthoritySchedule {
    /// Schedule version.
    pub version: u32,
    /// Producers in order.
    pub producers: Vec<ProducerAuthority>,
}

impl Pack for ProducerAuthoritySchedule {
    fn pack(&self, out: &mut Vec<u8>) {
        self.version.pack(out);
        self.producers.pack(out);
    }
}

impl Unpack for ProducerAuthoritySchedule {
    const WHAT: &'static str = "producer_authority_schedule";
    const MIN_SIZE: usize = 5;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ProducerAuthoritySchedule {
            version: r.u32("schedule version")?,
            producers: Vec::unpack(r)?,
        })
    }
}

/// `proposer_policy_diff`: a new producer schedule as a change to the previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposerPolicyDiff {
    /// Schedule version.
    pub version: u32,
    /// Timestamp of the block that proposed it.
    pub proposal_time: BlockTimestamp,
    /// Changes to the producer list.
    pub producer_auth_diff: OrderedDiff<ProducerAuthority>,
}

impl Pack for ProposerPolicyDiff {
    fn pack(&self, out: &mut Vec<u8>) {
        self.version.pack(out);
        self.proposal_time.pack(out);
        self.producer_auth_diff.pack(out);
    }
}

impl Unpack for ProposerPolicyDiff {
    const WHAT: &'static str = "proposer_policy_diff";
    const MIN_SIZE: usize = 10;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ProposerPolicyDiff {
            version: r.u32("version")?,
            proposal_time: BlockTimestamp::unpack(r)?,
            producer_auth_diff: OrderedDiff::unpack(r)?,
        })
    }
}

/// `finality_extension` (Savanna, header extension 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinalityExtension {
    /// The QC claim.
    pub qc_claim: QcClaim,
    /// A new finalizer policy, when this block proposes one.
    pub new_finalizer_policy_diff: Option<FinalizerPolicyDiff>,
    /// A new producer schedule, when this block proposes one.
    pub new_proposer_policy_diff: Option<ProposerPolicyDiff>,
}

impl Pack for FinalityExtension {
    fn pack(&self, out: &mut Vec<u8>) {
        self.qc_claim.pack(out);
        self.new_finalizer_policy_diff.pack(out);
        self.new_proposer_policy_diff.pack(out);
    }
}

impl Unpack for FinalityExtension {
    const WHAT: &'static str = "finality_extension";
    const MIN_SIZE: usize = 7;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(FinalityExtension {
            qc_claim: QcClaim::unpack(r)?,
            new_finalizer_policy_diff: Option::unpack(r)?,
            new_proposer_policy_diff: Option::unpack(r)?,
        })
    }
}

/// A decoded header extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HeaderExtension {
    /// Protocol features activated by this block.
    ProtocolFeatureActivation {
        /// Feature digests.
        protocol_features: Vec<Checksum256>,
    },
    /// A proposed producer authority schedule.
    ProducerScheduleChange(ProducerAuthoritySchedule),
    /// The Savanna finality extension.
    Finality(FinalityExtension),
    /// An extension this version does not know.
    Unknown {
        /// Extension id.
        id: u16,
        /// Payload.
        data: Bytes,
    },
}

impl HeaderExtension {
    /// Decodes one raw extension; unknown ids are kept as they are.
    pub fn decode(ext: &Extension) -> Result<Self> {
        let data = &ext.1.0;
        Ok(match ext.0 {
            extension_id::PROTOCOL_FEATURE_ACTIVATION => {
                HeaderExtension::ProtocolFeatureActivation {
                    protocol_features: Vec::unpack_exact(data)?,
                }
            }
            extension_id::PRODUCER_SCHEDULE_CHANGE => HeaderExtension::ProducerScheduleChange(
                ProducerAuthoritySchedule::unpack_exact(data)?,
            ),
            extension_id::FINALITY => {
                HeaderExtension::Finality(FinalityExtension::unpack_exact(data)?)
            }
            id => HeaderExtension::Unknown {
                id,
                data: ext.1.clone(),
            },
        })
    }
}

/// Which digest the producer signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// Savanna (Spring 1.x after the transition): the block id.
    Savanna,
    /// Legacy (EOSIO/Leap, and Spring transition blocks): the legacy `sig_digest`.
    Legacy,
}

/// `block_header`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockHeader {
    /// Slot of the block.
    pub timestamp: BlockTimestamp,
    /// Producing account.
    pub producer: Name,
    /// Legacy confirmation count (0 under Savanna).
    pub confirmed: u16,
    /// Id of the previous block.
    pub previous: Checksum256,
    /// Merkle root of the transaction receipts.
    pub transaction_mroot: Checksum256,
    /// Merkle root of the action receipts (Savanna: finality mroot).
    pub action_mroot: Checksum256,
    /// Producer schedule version ([`SAVANNA_SCHEDULE_VERSION`] under Savanna).
    pub schedule_version: u32,
    /// A new legacy schedule, when this block promotes one.
    pub new_producers: Option<ProducerSchedule>,
    /// Header extensions.
    pub header_extensions: Vec<Extension>,
}

impl BlockHeader {
    /// Decodes a packed header, refusing trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        BlockHeader::unpack_exact(bytes)
    }

    /// `BE32(previous[0..4]) + 1`.
    pub fn block_num(&self) -> Result<u32> {
        num_from_id(&self.previous)
            .checked_add(1)
            .ok_or_else(|| Error::invalid("block header", "previous block number is u32::MAX"))
    }

    /// `sha256(pack(header))`.
    pub fn digest(&self) -> Checksum256 {
        Checksum256::hash(&self.packed())
    }

    /// The block id: the header digest with its first 4 bytes replaced by `BE32(block_num)`.
    pub fn id(&self) -> Result<Checksum256> {
        let mut id = self.digest();
        id.0[..4].copy_from_slice(&self.block_num()?.to_be_bytes());
        Ok(id)
    }

    /// Savanna when the header carries Savanna's schedule version, else legacy (this includes
    /// Spring's transition blocks, which carry a finality extension but sign the legacy digest).
    pub fn kind(&self) -> BlockKind {
        if self.schedule_version == SAVANNA_SCHEDULE_VERSION {
            BlockKind::Savanna
        } else {
            BlockKind::Legacy
        }
    }

    /// The legacy signing digest.
    pub fn legacy_sig_digest(
        &self,
        blockroot_merkle_root: &Checksum256,
        pending_schedule_hash: &Checksum256,
    ) -> Checksum256 {
        legacy_sig_digest(&self.digest(), blockroot_merkle_root, pending_schedule_hash)
    }

    /// The digest the producer key signs: the block id for Savanna blocks; for legacy blocks the
    /// legacy digest over the blockroot merkle root and the pending schedule hash, which the
    /// header does not carry and the caller must give.
    pub fn signing_digest(
        &self,
        legacy_inputs: Option<(&Checksum256, &Checksum256)>,
    ) -> Result<Checksum256> {
        match (self.kind(), legacy_inputs) {
            (BlockKind::Savanna, _) => self.id(),
            (BlockKind::Legacy, Some((bm, sh))) => Ok(self.legacy_sig_digest(bm, sh)),
            (BlockKind::Legacy, None) => Err(Error::invalid(
                "legacy block header",
                "the signed digest needs the blockroot merkle root and the pending schedule hash",
            )),
        }
    }

    /// The decoded header extensions.
    pub fn extensions(&self) -> Result<Vec<HeaderExtension>> {
        self.header_extensions
            .iter()
            .map(HeaderExtension::decode)
            .collect()
    }

    /// The finality extension, when present and well-formed.
    pub fn finality_extension(&self) -> Result<Option<FinalityExtension>> {
        self.header_extensions
            .iter()
            .find(|e| e.0 == extension_id::FINALITY)
            .map(|e| FinalityExtension::unpack_exact(&e.1.0))
            .transpose()
    }
}

/// `sha256(sha256(header_digest ‖ blockroot_merkle_root) ‖ pending_schedule_hash)`.
pub fn legacy_sig_digest(
    header_digest: &Checksum256,
    blockroot_merkle_root: &Checksum256,
    pending_schedule_hash: &Checksum256,
) -> Checksum256 {
    let header_bmroot = Checksum256::hash_parts(&[&header_digest.0, &blockroot_merkle_root.0]);
    Checksum256::hash_parts(&[&header_bmroot.0, &pending_schedule_hash.0])
}

/// The block number encoded in the first 4 bytes of a block id (big-endian).
pub fn num_from_id(id: &Checksum256) -> u32 {
    u32::from_be_bytes([id.0[0], id.0[1], id.0[2], id.0[3]])
}

impl Pack for BlockHeader {
    fn pack(&self, out: &mut Vec<u8>) {
        self.timestamp.pack(out);
        self.producer.pack(out);
        self.confirmed.pack(out);
        self.previous.pack(out);
        self.transaction_mroot.pack(out);
        self.action_mroot.pack(out);
        self.schedule_version.pack(out);
        self.new_producers.pack(out);
        self.header_extensions.pack(out);
    }
}

impl Unpack for BlockHeader {
    const WHAT: &'static str = "block_header";
    const MIN_SIZE: usize = 116;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(BlockHeader {
            timestamp: BlockTimestamp::unpack(r)?,
            producer: Name::unpack(r)?,
            confirmed: r.u16("confirmed")?,
            previous: Checksum256::unpack(r)?,
            transaction_mroot: Checksum256::unpack(r)?,
            action_mroot: Checksum256::unpack(r)?,
            schedule_version: r.u32("schedule_version")?,
            new_producers: Option::unpack(r)?,
            header_extensions: Vec::unpack(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const EOS_400838396: &str = "b24e565d703055c744e47236000017e44efb304a3d81378887b7f1e9cff1b4c2f7a065f5368b337a69bed5f57addf196c51b021c50ea09b482e09e00ab1ecf7207535c13089d20b003455faaca988bf47442736dc9d7ac73580d5f936a8fc0f6d09580687d305cd1cd4c564a1159000000800001020007fb4ee417010000";

    #[test]
    fn eos_savanna_block() {
        let h = BlockHeader::decode(&hex::decode(EOS_400838396).unwrap()).unwrap();
        assert_eq!(h.block_num().unwrap(), 400838396);
        assert_eq!(h.producer.to_string(), "atticlabeosb");
        assert_eq!(h.kind(), BlockKind::Savanna);
        assert_eq!(
            h.id().unwrap().to_string(),
            "17e44efcfcd9cb439ab93de5f1e4328c4d02382281da17f0478f6f2810ee4789"
        );
        let fin = h.finality_extension().unwrap().unwrap();
        assert_eq!(
            fin.qc_claim,
            QcClaim {
                block_num: 400838395,
                is_strong_qc: true
            }
        );
        assert_eq!(h.timestamp.to_string(), "2024-10-23T03:17:45.000");
    }

    #[test]
    fn finality_extension_with_both_diffs_round_trips() {
        let key =
            PublicKey::parse("EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV").unwrap();
        let authority =
            BlockSigningAuthority::V0(crate::antelope::actions::BlockSigningAuthorityV0 {
                threshold: 1,
                keys: vec![crate::antelope::actions::KeyWeight { key, weight: 1 }],
            });
        let ext = FinalityExtension {
            qc_claim: QcClaim {
                block_num: 7,
                is_strong_qc: false,
            },
            new_finalizer_policy_diff: Some(FinalizerPolicyDiff {
                generation: 1,
                threshold: 2,
                finalizers_diff: OrderedDiff {
                    remove_indexes: vec![],
                    insert_indexes: vec![(
                        0,
                        FinalizerAuthority {
                            description: "f1".into(),
                            weight: 1,
                            public_key: Bytes(vec![9; 96]),
                        },
                    )],
                },
            }),
            new_proposer_policy_diff: Some(ProposerPolicyDiff {
                version: 1,
                proposal_time: BlockTimestamp(5),
                producer_auth_diff: OrderedDiff {
                    remove_indexes: vec![0],
                    insert_indexes: vec![(
                        0,
                        ProducerAuthority {
                            producer_name: Name::new("eosio").unwrap(),
                            authority,
                        },
                    )],
                },
            }),
        };
        let bytes = ext.packed();
        assert_eq!(FinalityExtension::unpack_exact(&bytes).unwrap(), ext);
        // A BLS key of the wrong size is refused.
        let mut bad = ext.clone();
        if let Some(d) = bad.new_finalizer_policy_diff.as_mut() {
            d.finalizers_diff.insert_indexes[0].1.public_key = Bytes(vec![1; 48]);
        }
        assert!(FinalityExtension::unpack_exact(&bad.packed()).is_err());
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(h) = BlockHeader::decode(&bytes) {
                let _ = (h.id(), h.extensions());
                prop_assert_eq!(h.packed(), bytes);
            }
        }
    }
}
