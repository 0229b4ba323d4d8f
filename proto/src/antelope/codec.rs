//! Antelope binary serialization (`fc::raw::pack`): little-endian integers, varuint32 lengths,
//! vectors, optionals and byte strings.
//!
//! Guards: decoding never panics and never allocates more than the input could hold — every
//! count is checked against the bytes that remain before anything is reserved.

use crate::{Error, Result};

/// A cursor over untrusted bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self, what: &'static str) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(Error::TrailingBytes { what, count }),
        }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated {
                what,
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes every byte that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a little-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian i64.
    pub fn i64(&mut self, what: &'static str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// Reads a bool byte (0 or 1; anything else is an error, as in fc).
    pub fn bool(&mut self, what: &'static str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(Error::invalid(what, format!("bool byte {b}"))),
        }
    }

    /// Reads a varuint32 (LEB128, at most 5 bytes, at most 32 bits).
    pub fn varuint32(&mut self, what: &'static str) -> Result<u32> {
        let mut value: u64 = 0;
        for i in 0..5 {
            let b = self.u8(what)?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                // A zero final byte after the first is a non-minimal encoding: nodeos never
                // writes one, and accepting it would let two byte strings mean one value.
                if b == 0 && i > 0 {
                    return Err(Error::VarUint);
                }
                return u32::try_from(value).map_err(|_| Error::VarUint);
            }
        }
        Err(Error::VarUint)
    }

    /// Reads a count for a sequence whose elements take at least `min_elem` bytes each, and
    /// refuses counts the remaining input cannot hold.
    pub fn count(&mut self, what: &'static str, min_elem: usize) -> Result<usize> {
        let len = self.varuint32(what)? as usize;
        let max = self.remaining() / min_elem.max(1);
        if len > max {
            return Err(Error::TooLong { what, len, max });
        }
        Ok(len)
    }

    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let len = self.count(what, 1)?;
        self.take(len, what)
    }
}

/// Appends the varuint32 encoding of `v`.
pub fn write_varuint32(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a length prefix for a sequence of `len` items.
///
/// Lengths above `u32::MAX` cannot be packed by Antelope; every caller bounds its inputs far
/// below that (transactions and headers are limited to a few MiB), so this saturates rather
/// than panicking.
pub fn write_len(out: &mut Vec<u8>, len: usize) {
    write_varuint32(out, u32::try_from(len).unwrap_or(u32::MAX));
}

/// Appends a length-prefixed byte string.
pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Implements serde for a type as its `Display` string, parsed back with `FromStr`: names,
/// keys, signatures, assets, checksums and times all travel in JSON as nodeos prints them.
macro_rules! serde_as_string {
    ($($t:ty),* $(,)?) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
pub(crate) use serde_as_string;

/// A value with an Antelope binary encoding.
pub trait Pack {
    /// Appends the encoding of `self` to `out`.
    fn pack(&self, out: &mut Vec<u8>);

    /// The encoding of `self` as a new buffer.
    fn packed(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.pack(&mut out);
        out
    }
}

/// A value that can be decoded from untrusted Antelope binary input.
pub trait Unpack: Sized {
    /// Name used in error messages.
    const WHAT: &'static str;
    /// Smallest number of bytes one encoded value takes (bounds vector counts).
    const MIN_SIZE: usize = 1;

    /// Decodes one value from the reader.
    fn unpack(r: &mut Reader<'_>) -> Result<Self>;

    /// Decodes a value that must span all of `bytes`.
    fn unpack_exact(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let v = Self::unpack(&mut r)?;
        r.finish(Self::WHAT)?;
        Ok(v)
    }
}

macro_rules! int_codec {
    ($($t:ty => $read:ident, $size:expr);* $(;)?) => {$(
        impl Pack for $t {
            fn pack(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
        impl Unpack for $t {
            const WHAT: &'static str = stringify!($t);
            const MIN_SIZE: usize = $size;
            fn unpack(r: &mut Reader<'_>) -> Result<Self> {
                r.$read(stringify!($t))
            }
        }
    )*};
}

int_codec! { u8 => u8, 1; u16 => u16, 2; u32 => u32, 4; u64 => u64, 8; i64 => i64, 8 }

impl Pack for bool {
    fn pack(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Unpack for bool {
    const WHAT: &'static str = "bool";
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        r.bool("bool")
    }
}

impl<T: Pack> Pack for Vec<T> {
    fn pack(&self, out: &mut Vec<u8>) {
        write_len(out, self.len());
        for item in self {
            item.pack(out);
        }
    }
}

impl<T: Unpack> Unpack for Vec<T> {
    const WHAT: &'static str = "vector";
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        let len = r.count(T::WHAT, T::MIN_SIZE)?;
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(T::unpack(r)?);
        }
        Ok(out)
    }
}

impl<T: Pack> Pack for Option<T> {
    fn pack(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.pack(out);
            }
        }
    }
}

impl<T: Unpack> Unpack for Option<T> {
    const WHAT: &'static str = "optional";
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        if r.bool(T::WHAT)? {
            Ok(Some(T::unpack(r)?))
        } else {
            Ok(None)
        }
    }
}

impl<A: Pack, B: Pack> Pack for (A, B) {
    fn pack(&self, out: &mut Vec<u8>) {
        self.0.pack(out);
        self.1.pack(out);
    }
}

impl<A: Unpack, B: Unpack> Unpack for (A, B) {
    const WHAT: &'static str = "pair";
    const MIN_SIZE: usize = A::MIN_SIZE + B::MIN_SIZE;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok((A::unpack(r)?, B::unpack(r)?))
    }
}

impl Pack for String {
    fn pack(&self, out: &mut Vec<u8>) {
        write_bytes(out, self.as_bytes());
    }
}

impl Unpack for String {
    const WHAT: &'static str = "string";
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        let b = r.bytes("string")?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::invalid("string", "not UTF-8"))
    }
}

/// An Antelope `bytes` value (`vector<char>`): length-prefixed, shown as hex in JSON.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({})", hex::encode(&self.0))
    }
}

impl Pack for Bytes {
    fn pack(&self, out: &mut Vec<u8>) {
        write_bytes(out, &self.0);
    }
}

impl Unpack for Bytes {
    const WHAT: &'static str = "bytes";
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Bytes(r.bytes("bytes")?.to_vec()))
    }
}

impl serde::Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s)
            .map(Bytes)
            .map_err(|e| serde::de::Error::custom(format!("invalid hex: {e}")))
    }
}

/// A varuint32 value as a field (e.g. `max_net_usage_words`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct VarUint32(pub u32);

impl Pack for VarUint32 {
    fn pack(&self, out: &mut Vec<u8>) {
        write_varuint32(out, self.0);
    }
}

impl Unpack for VarUint32 {
    const WHAT: &'static str = "varuint32";
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        r.varuint32("varuint32").map(VarUint32)
    }
}

/// Decodes lowercase or uppercase hex into exactly `N` bytes.
pub fn hex_array<const N: usize>(what: &'static str, text: &str) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text.trim(), &mut out).map_err(|e| Error::Hex {
        what,
        detail: if text.trim().len() != 2 * N {
            format!(
                "expected {} hex characters, got {}",
                2 * N,
                text.trim().len()
            )
        } else {
            e.to_string()
        },
    })?;
    Ok(out)
}

/// Decodes hex of any length.
pub fn hex_vec(what: &'static str, text: &str) -> Result<Vec<u8>> {
    hex::decode(text.trim()).map_err(|e| Error::Hex {
        what,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varuint32_known_encodings() {
        for (v, enc) in [
            (0u32, vec![0u8]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xac, 0x02]),
            (u32::MAX, vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            let mut out = Vec::new();
            write_varuint32(&mut out, v);
            assert_eq!(out, enc);
            assert_eq!(VarUint32::unpack_exact(&enc), Ok(VarUint32(v)));
        }
    }

    #[test]
    fn varuint32_rejects_overflow_and_overlong() {
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f]).varuint32("x"),
            Err(Error::VarUint)
        );
        assert_eq!(
            Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).varuint32("x"),
            Err(Error::VarUint)
        );
        assert_eq!(
            Reader::new(&[0x80, 0x00]).varuint32("x"),
            Err(Error::VarUint),
            "non-minimal"
        );
        assert!(matches!(
            Reader::new(&[0x80]).varuint32("x"),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        // Claims 2^32-1 u64s in a 5-byte input.
        let r = Vec::<u64>::unpack_exact(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(r, Err(Error::TooLong { .. })), "{r:?}");
    }

    #[test]
    fn bool_must_be_zero_or_one() {
        assert!(bool::unpack_exact(&[2]).is_err());
        assert_eq!(Option::<u8>::unpack_exact(&[1, 7]), Ok(Some(7)));
    }

    proptest! {
        #[test]
        fn varuint32_round_trips(v: u32) {
            let mut out = Vec::new();
            write_varuint32(&mut out, v);
            prop_assert_eq!(VarUint32::unpack_exact(&out)?, VarUint32(v));
        }

        #[test]
        fn vectors_of_bytes_round_trip(v: Vec<Vec<u8>>) {
            let v: Vec<Bytes> = v.into_iter().map(Bytes).collect();
            prop_assert_eq!(Vec::<Bytes>::unpack_exact(&v.packed())?, v);
        }
    }
}
