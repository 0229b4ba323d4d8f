//! Transactions: `transaction`, `action`, extensions, `packed_transaction` (with zlib), the
//! transaction id and the signing digest, plus the JSON shape cleos and nodeos use.
//!
//! Guards: the digest an approver is shown is `sha256(chain_id ‖ pack(trx) ‖ cfd_digest)` over
//! the *uncompressed* packed transaction, exactly as nodeos verifies it; compressed input is
//! inflated under a size limit so a zlib bomb cannot exhaust memory.

use std::io::Read as _;

use serde::{Deserialize, Serialize};

use super::actions::SystemAction;
use super::codec::{Bytes, Pack, Reader, Unpack, VarUint32};
use super::{Checksum256, Name, PermissionLevel, Signature, TimePointSec};
use crate::{Error, Result};

/// Largest uncompressed transaction Oryx will inflate or decode (nodeos limits transactions to
/// `max_transaction_net_usage`, 512 KiB on every public chain).
pub const MAX_UNPACKED_TRX_BYTES: usize = 1 << 20;

/// One contract call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// Contract account.
    pub account: Name,
    /// Action name.
    pub name: Name,
    /// Permissions that authorise it.
    pub authorization: Vec<PermissionLevel>,
    /// Serialized action data.
    pub data: Bytes,
}

impl Action {
    /// The decoded system action, when this is one Oryx knows (`None` otherwise).
    pub fn system_action(&self) -> Option<Result<SystemAction>> {
        SystemAction::decode(self.account, self.name, &self.data.0)
    }
}

impl Pack for Action {
    fn pack(&self, out: &mut Vec<u8>) {
        self.account.pack(out);
        self.name.pack(out);
        self.authorization.pack(out);
        self.data.pack(out);
    }
}

impl Unpack for Action {
    const WHAT: &'static str = "action";
    const MIN_SIZE: usize = 18;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Action {
            account: Name::unpack(r)?,
            name: Name::unpack(r)?,
            authorization: Vec::unpack(r)?,
            data: Bytes::unpack(r)?,
        })
    }
}

/// The JSON form accepted for an action: `data` is hex, or an object for a known system action.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionJson {
    account: Name,
    name: Name,
    authorization: Vec<PermissionLevel>,
    data: serde_json::Value,
    #[serde(default)]
    hex_data: Option<Bytes>,
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let j = ActionJson::deserialize(d)?;
        let data = match (&j.data, j.hex_data) {
            (_, Some(hex)) => hex,
            (serde_json::Value::String(s), None) => Bytes(
                hex::decode(s)
                    .map_err(|e| D::Error::custom(format!("action data: invalid hex: {e}")))?,
            ),
            (v @ serde_json::Value::Object(_), None) => {
                match SystemAction::from_json(j.account, j.name, v) {
                    Some(Ok(action)) => Bytes(action.pack_data()),
                    Some(Err(e)) => {
                        return Err(D::Error::custom(format!(
                            "{}::{} data: {e}",
                            j.account, j.name
                        )));
                    }
                    None => {
                        return Err(D::Error::custom(format!(
                            "{}::{} is not a system action Oryx can encode without an ABI: give its data as hex",
                            j.account, j.name
                        )));
                    }
                }
            }
            _ => {
                return Err(D::Error::custom(
                    "action data must be a hex string or an object",
                ));
            }
        };
        Ok(Action {
            account: j.account,
            name: j.name,
            authorization: j.authorization,
            data,
        })
    }
}

/// An extension: `pair<uint16, vector<char>>`, shown in JSON as `[type, "hex"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension(pub u16, pub Bytes);

impl Pack for Extension {
    fn pack(&self, out: &mut Vec<u8>) {
        self.0.pack(out);
        self.1.pack(out);
    }
}

impl Unpack for Extension {
    const WHAT: &'static str = "extension";
    const MIN_SIZE: usize = 3;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Extension(r.u16("extension type")?, Bytes::unpack(r)?))
    }
}

/// A transaction as it is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// Time after which the chain refuses it.
    pub expiration: TimePointSec,
    /// Low 16 bits of a recent block number (TaPoS).
    pub ref_block_num: u16,
    /// Bytes 8..12 of that block's id, little-endian (TaPoS).
    pub ref_block_prefix: u32,
    /// NET limit in 8-byte words (0 = none).
    #[serde(default)]
    pub max_net_usage_words: VarUint32,
    /// CPU limit in ms (0 = none).
    #[serde(default)]
    pub max_cpu_usage_ms: u8,
    /// Delay in seconds.
    #[serde(default)]
    pub delay_sec: VarUint32,
    /// Actions that run without authorization checks and see context-free data.
    #[serde(default)]
    pub context_free_actions: Vec<Action>,
    /// The actions.
    pub actions: Vec<Action>,
    /// Transaction extensions.
    #[serde(default)]
    pub transaction_extensions: Vec<Extension>,
}

impl Transaction {
    /// The transaction id: `sha256(pack(trx))`.
    pub fn id(&self) -> Checksum256 {
        Checksum256::hash(&self.packed())
    }

    /// The digest signers sign: `sha256(chain_id ‖ pack(trx) ‖ cfd_digest)`.
    pub fn signing_digest(
        &self,
        chain_id: &Checksum256,
        context_free_data: &[Bytes],
    ) -> Checksum256 {
        signing_digest(chain_id, &self.packed(), context_free_data)
    }

    /// Decodes `pack(trx)`, refusing oversized input.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_UNPACKED_TRX_BYTES {
            return Err(Error::TooLong {
                what: "transaction",
                len: bytes.len(),
                max: MAX_UNPACKED_TRX_BYTES,
            });
        }
        Transaction::unpack_exact(bytes)
    }
}

/// `sha256(chain_id ‖ packed_trx ‖ cfd_digest)` over an already packed transaction.
pub fn signing_digest(
    chain_id: &Checksum256,
    packed_trx: &[u8],
    context_free_data: &[Bytes],
) -> Checksum256 {
    Checksum256::hash_parts(&[
        &chain_id.0,
        packed_trx,
        &context_free_data_digest(context_free_data),
    ])
}

/// 32 zero bytes without context-free data, else `sha256(pack(vector<bytes>))`.
pub fn context_free_data_digest(context_free_data: &[Bytes]) -> [u8; 32] {
    if context_free_data.is_empty() {
        [0; 32]
    } else {
        Checksum256::hash(&context_free_data.to_vec().packed()).0
    }
}

impl Pack for Transaction {
    fn pack(&self, out: &mut Vec<u8>) {
        self.expiration.pack(out);
        self.ref_block_num.pack(out);
        self.ref_block_prefix.pack(out);
        self.max_net_usage_words.pack(out);
        self.max_cpu_usage_ms.pack(out);
        self.delay_sec.pack(out);
        self.context_free_actions.pack(out);
        self.actions.pack(out);
        self.transaction_extensions.pack(out);
    }
}

impl Unpack for Transaction {
    const WHAT: &'static str = "transaction";
    const MIN_SIZE: usize = 15;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Transaction {
            expiration: TimePointSec::unpack(r)?,
            ref_block_num: r.u16("ref_block_num")?,
            ref_block_prefix: r.u32("ref_block_prefix")?,
            max_net_usage_words: VarUint32::unpack(r)?,
            max_cpu_usage_ms: r.u8("max_cpu_usage_ms")?,
            delay_sec: VarUint32::unpack(r)?,
            context_free_actions: Vec::unpack(r)?,
            actions: Vec::unpack(r)?,
            transaction_extensions: Vec::unpack(r)?,
        })
    }
}

/// How `packed_trx` and `packed_context_free_data` are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// As packed.
    #[default]
    None,
    /// zlib (RFC 1950).
    Zlib,
}

impl Serialize for Compression {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
        })
    }
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s == "none" || s == "0" => Ok(Compression::None),
            serde_json::Value::String(s) if s == "zlib" || s == "1" => Ok(Compression::Zlib),
            serde_json::Value::Number(n) if n.as_u64() == Some(0) => Ok(Compression::None),
            serde_json::Value::Number(n) if n.as_u64() == Some(1) => Ok(Compression::Zlib),
            other => Err(serde::de::Error::custom(format!(
                "compression must be \"none\" or \"zlib\", got {other}"
            ))),
        }
    }
}

/// A transaction as it travels (`packed_transaction_v0`): signatures, compression, context-free
/// data and the transaction bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackedTransaction {
    /// Signatures over the signing digest.
    pub signatures: Vec<Signature>,
    /// How the two byte fields are stored.
    pub compression: Compression,
    /// `pack(vector<bytes>)` of the context-free data, possibly compressed.
    #[serde(default)]
    pub packed_context_free_data: Bytes,
    /// `pack(trx)`, possibly compressed.
    pub packed_trx: Bytes,
}

impl PackedTransaction {
    /// Packs a transaction, compressing both byte fields when asked.
    pub fn new(
        trx: &Transaction,
        context_free_data: &[Bytes],
        signatures: Vec<Signature>,
        compression: Compression,
    ) -> Result<Self> {
        let cfd = if context_free_data.is_empty() {
            Vec::new()
        } else {
            context_free_data.to_vec().packed()
        };
        let (packed_trx, packed_cfd) = match compression {
            Compression::None => (trx.packed(), cfd),
            Compression::Zlib => (
                deflate(&trx.packed())?,
                if cfd.is_empty() { cfd } else { deflate(&cfd)? },
            ),
        };
        Ok(PackedTransaction {
            signatures,
            compression,
            packed_context_free_data: Bytes(packed_cfd),
            packed_trx: Bytes(packed_trx),
        })
    }

    /// `pack(trx)`, inflated if compressed.
    pub fn unpacked_trx(&self) -> Result<Vec<u8>> {
        match self.compression {
            Compression::None => Ok(self.packed_trx.0.clone()),
            Compression::Zlib => inflate(&self.packed_trx.0),
        }
    }

    /// The transaction.
    pub fn transaction(&self) -> Result<Transaction> {
        Transaction::decode(&self.unpacked_trx()?)
    }

    /// The context-free data entries.
    pub fn context_free_data(&self) -> Result<Vec<Bytes>> {
        if self.packed_context_free_data.0.is_empty() {
            return Ok(Vec::new());
        }
        let raw = match self.compression {
            Compression::None => self.packed_context_free_data.0.clone(),
            Compression::Zlib => inflate(&self.packed_context_free_data.0)?,
        };
        Vec::<Bytes>::unpack_exact(&raw)
    }

    /// The transaction id (over the uncompressed transaction).
    pub fn id(&self) -> Result<Checksum256> {
        Ok(Checksum256::hash(&self.unpacked_trx()?))
    }

    /// The signing digest (over the uncompressed transaction and context-free data).
    pub fn signing_digest(&self, chain_id: &Checksum256) -> Result<Checksum256> {
        Ok(signing_digest(
            chain_id,
            &self.unpacked_trx()?,
            &self.context_free_data()?,
        ))
    }
}

impl Pack for Compression {
    fn pack(&self, out: &mut Vec<u8>) {
        out.push(match self {
            Compression::None => 0,
            Compression::Zlib => 1,
        });
    }
}

impl Unpack for Compression {
    const WHAT: &'static str = "compression";
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        match r.u8("compression")? {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Zlib),
            b => Err(Error::invalid("compression", format!("unknown value {b}"))),
        }
    }
}

impl Pack for PackedTransaction {
    fn pack(&self, out: &mut Vec<u8>) {
        self.signatures.pack(out);
        self.compression.pack(out);
        self.packed_context_free_data.pack(out);
        self.packed_trx.pack(out);
    }
}

impl Unpack for PackedTransaction {
    const WHAT: &'static str = "packed_transaction";
    const MIN_SIZE: usize = 4;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(PackedTransaction {
            signatures: Vec::unpack(r)?,
            compression: Compression::unpack(r)?,
            packed_context_free_data: Bytes::unpack(r)?,
            packed_trx: Bytes::unpack(r)?,
        })
    }
}

/// zlib-compresses `data`.
pub fn deflate(data: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data)
        .map_err(|e| Error::Compression(e.to_string()))?;
    enc.finish().map_err(|e| Error::Compression(e.to_string()))
}

/// Inflates zlib data, refusing output above [`MAX_UNPACKED_TRX_BYTES`].
pub fn inflate(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let limit = MAX_UNPACKED_TRX_BYTES as u64 + 1;
    flate2::read::ZlibDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Error::Compression(e.to_string()))?;
    if out.len() > MAX_UNPACKED_TRX_BYTES {
        return Err(Error::Compression(format!(
            "inflates to more than {MAX_UNPACKED_TRX_BYTES} bytes"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const ACTIVATE: &str = "06e10b5e02005132b41600000000010000000000ea30550000002a9bed3232010000000000ea305500000000a8ed3232201a99a59d87e06e09ec5b028a9cbb7749b4a5ad8819004365d02dc4379a8b724100";

    #[test]
    fn deep_mind_activate_digest() {
        let trx = Transaction::decode(&hex::decode(ACTIVATE).unwrap()).unwrap();
        assert_eq!(
            trx.id().to_string(),
            "aa30bc93a59737ce708fd4d691b61d7858bfb309c4cf883e77a6a161b5a4abe5"
        );
        let chain = Checksum256::from_hex(
            "44423079ed372a4dda0bf89c3a594df409eaa8c1535451b7d5ca6a3d7a376912",
        )
        .unwrap();
        assert_eq!(
            trx.signing_digest(&chain, &[]).to_string(),
            "48a9a716e1606729e967780bd4699e2487f3acc972c2c61ad62f8f7d7f51a473"
        );
        // The JSON form round-trips to the same bytes.
        let json = serde_json::to_string(&trx).unwrap();
        let back: Transaction = serde_json::from_str(&json).unwrap();
        assert_eq!(back.packed(), trx.packed());
    }

    #[test]
    fn zlib_packed_transaction_digests_uncompressed() {
        let trx = Transaction::decode(&hex::decode(ACTIVATE).unwrap()).unwrap();
        let cfd = vec![Bytes(vec![1, 2, 3])];
        let packed = PackedTransaction::new(&trx, &cfd, vec![], Compression::Zlib).unwrap();
        let wire = PackedTransaction::unpack_exact(&packed.packed()).unwrap();
        assert_eq!(wire.transaction().unwrap(), trx);
        assert_eq!(wire.context_free_data().unwrap(), cfd);
        let chain = Checksum256([7; 32]);
        assert_eq!(
            wire.signing_digest(&chain).unwrap(),
            trx.signing_digest(&chain, &cfd)
        );
        assert_ne!(
            trx.signing_digest(&chain, &cfd),
            trx.signing_digest(&chain, &[])
        );
    }

    #[test]
    fn zlib_bombs_are_refused() {
        let bomb = deflate(&vec![0u8; MAX_UNPACKED_TRX_BYTES + 10]).unwrap();
        assert!(matches!(inflate(&bomb), Err(Error::Compression(_))));
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = Transaction::decode(&bytes);
            let _ = PackedTransaction::unpack_exact(&bytes).map(|p| (p.transaction(), p.context_free_data()));
            let _ = inflate(&bytes);
        }
    }
}
