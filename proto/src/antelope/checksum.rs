//! Fixed-size hashes (`checksum256_type`, `block_id_type`, chain ids) and the SHA-256 helper.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use super::codec::{Pack, Reader, Unpack, hex_array};
use crate::{Error, Result};

/// A 32-byte hash: transaction ids, digests, block ids, chain ids, merkle roots.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checksum256(pub [u8; 32]);

impl Checksum256 {
    /// SHA-256 of `data`.
    pub fn hash(data: &[u8]) -> Self {
        Checksum256(Sha256::digest(data).into())
    }

    /// SHA-256 of several byte strings, concatenated.
    pub fn hash_parts(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Checksum256(h.finalize().into())
    }

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self> {
        hex_array("checksum256", text).map(Checksum256)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Checksum256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Checksum256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum256({self})")
    }
}

impl FromStr for Checksum256 {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Checksum256::from_hex(s)
    }
}

impl Pack for Checksum256 {
    fn pack(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Unpack for Checksum256 {
    const WHAT: &'static str = "checksum256";
    const MIN_SIZE: usize = 32;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        r.array("checksum256").map(Checksum256)
    }
}

super::codec::serde_as_string!(Checksum256);
