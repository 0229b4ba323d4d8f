//! `oryx inspect block HEX [--blockroot-merkle HEX --schedule-hash HEX]`: block number, id,
//! producer, slot, kind, and the digest the producer signs.
//!
//! HEX is a `block_header` or a `signed_block_header` (header + producer signature); for the
//! latter the signing key is recovered when the signed digest is known.

use clap::Args;
use oryx_proto::antelope::block::{BlockHeader, BlockKind};
use oryx_proto::antelope::codec::{Reader, hex_vec};
use oryx_proto::antelope::{Checksum256, Signature, Unpack};
use serde_json::{Value, json};

use crate::cli::CliError;

/// Arguments.
#[derive(Debug, Args)]
pub struct InspectBlock {
    /// The packed block header (or signed block header), in hex.
    pub header: String,
    /// Legacy blocks: the blockroot merkle root of the block's parent state.
    #[arg(long, requires = "schedule_hash")]
    pub blockroot_merkle: Option<String>,
    /// Legacy blocks: the pending schedule hash.
    #[arg(long, requires = "blockroot_merkle")]
    pub schedule_hash: Option<String>,
}

/// Decodes a header, optionally followed by a producer signature.
pub fn decode_header(bytes: &[u8]) -> Result<(BlockHeader, Option<Signature>), CliError> {
    if let Ok(h) = BlockHeader::decode(bytes) {
        return Ok((h, None));
    }
    let mut r = Reader::new(bytes);
    let header = BlockHeader::unpack(&mut r)?;
    let sig = Signature::unpack(&mut r)?;
    r.finish("signed_block_header")?;
    Ok((header, Some(sig)))
}

impl InspectBlock {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let bytes = hex_vec("block header", &self.header)?;
        let (h, sig) = decode_header(&bytes)?;
        let id = h.id()?;
        let kind = h.kind();
        let sig_digest = match (kind, &self.blockroot_merkle, &self.schedule_hash) {
            (BlockKind::Savanna, _, _) => Some(id),
            (BlockKind::Legacy, Some(bm), Some(sh)) => {
                Some(h.legacy_sig_digest(&Checksum256::from_hex(bm)?, &Checksum256::from_hex(sh)?))
            }
            _ => None,
        };
        let mut out = json!({
            "block_num": h.block_num()?,
            "id": id.to_string(),
            "producer": h.producer,
            "timestamp": h.timestamp,
            "slot": h.timestamp.slot(),
            "kind": kind,
            "sig_digest": sig_digest.map(|d| d.to_string()),
            "header_digest": h.digest().to_string(),
            "previous": h.previous,
            "confirmed": h.confirmed,
            "transaction_mroot": h.transaction_mroot,
            "action_mroot": h.action_mroot,
            "schedule_version": h.schedule_version,
            "new_producers": h.new_producers,
            "header_extensions": h.extensions()?,
        });
        if sig_digest.is_none() {
            out["note"] = json!(
                "legacy block: pass --blockroot-merkle and --schedule-hash to compute the signed digest"
            );
        }
        if let Some(sig) = sig {
            out["producer_signature"] = json!(sig);
            if let Some(d) = sig_digest {
                out["signing_key"] = json!(sig.recover_lenient(&d).ok().map(|k| k.to_pub_string()));
            }
        }
        Ok(out)
    }
}
