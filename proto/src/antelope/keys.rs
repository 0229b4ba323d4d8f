//! Public and private keys: K1 (secp256k1) and R1 (NIST P-256), in every string form Antelope
//! uses and in their binary forms.
//!
//! Guards: parsers are strict. A string is accepted only with the right prefix, the right length,
//! the right checksum (ripemd160 with the type suffix, ripemd160 for legacy `EOS…`, double
//! SHA-256 for WIF with version byte 0x80) and a value that is a real point or a valid scalar.
//! Private keys are zeroized on drop, print as `<redacted>`, and never appear in an error.

use std::fmt;
use std::str::FromStr;

use ripemd::Ripemd160;
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::codec::{Pack, Reader, Unpack};
use crate::{Error, Result};

/// The curve of a key or signature. The discriminant is the variant index on the wire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum KeyType {
    /// secp256k1, as used by every producer key today.
    K1,
    /// NIST P-256, supported by most HSMs natively.
    R1,
}

impl KeyType {
    /// The label used in string forms and checksums: `K1` or `R1`.
    pub fn label(self) -> &'static str {
        match self {
            KeyType::K1 => "K1",
            KeyType::R1 => "R1",
        }
    }

    fn index(self) -> u32 {
        match self {
            KeyType::K1 => 0,
            KeyType::R1 => 1,
        }
    }

    pub(crate) fn from_index(index: u32, what: &'static str) -> Result<Self> {
        match index {
            0 => Ok(KeyType::K1),
            1 => Ok(KeyType::R1),
            2 => Err(Error::invalid(
                what,
                "WebAuthn (WA) keys and signatures are not supported",
            )),
            i => Err(Error::invalid(what, format!("unknown key type index {i}"))),
        }
    }

    pub(crate) fn from_label(label: &str) -> Option<Self> {
        match label {
            "K1" => Some(KeyType::K1),
            "R1" => Some(KeyType::R1),
            _ => None,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// `base58(data ‖ ripemd160(data ‖ suffix)[0..4])`.
pub(crate) fn encode_check(data: &[u8], suffix: &[u8]) -> String {
    let mut h = Ripemd160::new();
    h.update(data);
    h.update(suffix);
    let sum = h.finalize();
    let mut buf = Zeroizing::new(Vec::with_capacity(data.len() + 4));
    buf.extend_from_slice(data);
    buf.extend_from_slice(&sum[..4]);
    bs58::encode(&buf[..]).into_string()
}

/// The longest base58 text of `bytes` bytes: log(256)/log(58) < 1.3658 characters per byte
/// (a leading zero byte is one `1`, never more).
pub(crate) const fn base58_max_len(bytes: usize) -> usize {
    bytes * 13658 / 10000 + 1
}

/// Decodes base58 and checks a ripemd160 checksum with `suffix`; returns exactly `N` bytes.
/// Text longer than `N + 4` bytes can encode is refused before decoding: base58 decoding is
/// quadratic in the length, and these strings come from outside.
pub(crate) fn decode_check<const N: usize>(
    text: &str,
    suffix: &[u8],
) -> std::result::Result<Zeroizing<[u8; N]>, &'static str> {
    if text.len() > base58_max_len(N + 4) {
        return Err("too long");
    }
    let raw = Zeroizing::new(bs58::decode(text).into_vec().map_err(|_| "not base58")?);
    if raw.len() != N + 4 {
        return Err("wrong length");
    }
    let (data, sum) = raw.split_at(N);
    let mut h = Ripemd160::new();
    h.update(data);
    h.update(suffix);
    if h.finalize()[..4] != *sum {
        return Err("bad checksum");
    }
    let mut out = Zeroizing::new([0u8; N]);
    out.copy_from_slice(data);
    Ok(out)
}

/// A validated public key: a compressed point on its curve.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey {
    kind: KeyType,
    data: [u8; 33],
}

impl PublicKey {
    /// Builds a key from 33 compressed SEC1 bytes, checking that they are a point on the curve.
    pub fn from_bytes(kind: KeyType, data: [u8; 33]) -> Result<Self> {
        let ok = match kind {
            KeyType::K1 => k256::PublicKey::from_sec1_bytes(&data).is_ok(),
            KeyType::R1 => p256::PublicKey::from_sec1_bytes(&data).is_ok(),
        };
        if !ok || !(data[0] == 2 || data[0] == 3) {
            return Err(Error::Key {
                kind: "public",
                reason: "not a compressed point on the curve",
            });
        }
        Ok(PublicKey { kind, data })
    }

    /// Builds a key from SEC1 bytes in compressed (33) or uncompressed (65) form, as HSMs return.
    pub fn from_sec1(kind: KeyType, sec1: &[u8]) -> Result<Self> {
        let bad = || Error::Key {
            kind: "public",
            reason: "not a SEC1 point on the curve",
        };
        let compressed: Vec<u8> = match kind {
            KeyType::K1 => {
                let pk = k256::PublicKey::from_sec1_bytes(sec1).map_err(|_| bad())?;
                k256::ecdsa::VerifyingKey::from(&pk)
                    .to_sec1_point(true)
                    .as_bytes()
                    .to_vec()
            }
            KeyType::R1 => {
                let pk = p256::PublicKey::from_sec1_bytes(sec1).map_err(|_| bad())?;
                p256::ecdsa::VerifyingKey::from(&pk)
                    .to_sec1_point(true)
                    .as_bytes()
                    .to_vec()
            }
        };
        let data: [u8; 33] = compressed.try_into().map_err(|_| bad())?;
        Ok(PublicKey { kind, data })
    }

    /// The curve.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// The 33 compressed SEC1 bytes.
    pub fn as_bytes(&self) -> &[u8; 33] {
        &self.data
    }

    /// `PUB_K1_…` or `PUB_R1_…`.
    pub fn to_pub_string(&self) -> String {
        format!(
            "PUB_{}_{}",
            self.kind.label(),
            encode_check(&self.data, self.kind.label().as_bytes())
        )
    }

    /// The legacy `EOS…` form; K1 only.
    pub fn to_legacy_string(&self) -> Option<String> {
        self.to_legacy_string_with_prefix("EOS")
    }

    /// The legacy form with another chain's prefix (e.g. `FIO`); K1 only.
    pub fn to_legacy_string_with_prefix(&self, prefix: &str) -> Option<String> {
        (self.kind == KeyType::K1).then(|| format!("{prefix}{}", encode_check(&self.data, b"")))
    }

    /// Parses `PUB_K1_`, `PUB_R1_` or legacy `EOS…`.
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_with_legacy_prefix(text, "EOS")
    }

    /// Parses `PUB_K1_`, `PUB_R1_` or the legacy form with the given prefix.
    pub fn parse_with_legacy_prefix(text: &str, legacy_prefix: &str) -> Result<Self> {
        let err = |reason| Error::Key {
            kind: "public",
            reason,
        };
        let (kind, data) = if let Some(rest) = text.strip_prefix("PUB_") {
            let (label, body) = rest
                .split_once('_')
                .ok_or(err("expected PUB_K1_ or PUB_R1_"))?;
            let kind =
                KeyType::from_label(label).ok_or(err("unsupported key type (only K1 and R1)"))?;
            (
                kind,
                decode_check::<33>(body, label.as_bytes()).map_err(err)?,
            )
        } else if let Some(body) = text
            .strip_prefix(legacy_prefix)
            .filter(|_| !legacy_prefix.is_empty())
        {
            (KeyType::K1, decode_check::<33>(body, b"").map_err(err)?)
        } else {
            return Err(err("expected PUB_K1_, PUB_R1_ or EOS prefix"));
        };
        PublicKey::from_bytes(kind, *data)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_pub_string())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PublicKey::parse(s)
    }
}

impl Pack for PublicKey {
    fn pack(&self, out: &mut Vec<u8>) {
        super::codec::write_varuint32(out, self.kind.index());
        out.extend_from_slice(&self.data);
    }
}

impl Unpack for PublicKey {
    const WHAT: &'static str = "public_key";
    const MIN_SIZE: usize = 34;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        let kind = KeyType::from_index(r.varuint32("public key type")?, "public key type")?;
        PublicKey::from_bytes(kind, r.array("public key")?)
    }
}

super::codec::serde_as_string!(PublicKey);

/// A private key held in memory: software keys for development, tests and approvers' key files.
/// Zeroized on drop; never printed.
#[derive(Clone)]
pub struct PrivateKey {
    kind: KeyType,
    data: Zeroizing<[u8; 32]>,
}

impl PrivateKey {
    /// Builds a key from 32 big-endian bytes, refusing zero and values not below the order.
    pub fn from_bytes(kind: KeyType, mut data: [u8; 32]) -> Result<Self> {
        let ok = match kind {
            KeyType::K1 => k256::SecretKey::from_slice(&data).is_ok(),
            KeyType::R1 => p256::SecretKey::from_slice(&data).is_ok(),
        };
        let key = PrivateKey {
            kind,
            data: Zeroizing::new(data),
        };
        data.zeroize();
        if !ok {
            return Err(Error::Key {
                kind: "private",
                reason: "not a valid scalar (zero or not below the curve order)",
            });
        }
        Ok(key)
    }

    /// The curve.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// The secret scalar, big-endian. Handle with care.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.data
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let compressed: Vec<u8> = match self.kind {
            KeyType::K1 => match k256::SecretKey::from_slice(&self.data[..]) {
                Ok(sk) => k256::ecdsa::VerifyingKey::from(&sk.public_key())
                    .to_sec1_point(true)
                    .as_bytes()
                    .to_vec(),
                Err(_) => Vec::new(),
            },
            KeyType::R1 => match p256::SecretKey::from_slice(&self.data[..]) {
                Ok(sk) => p256::ecdsa::VerifyingKey::from(&sk.public_key())
                    .to_sec1_point(true)
                    .as_bytes()
                    .to_vec(),
                Err(_) => Vec::new(),
            },
        };
        let mut data = [0u8; 33];
        // The scalar was validated on construction, so the compressed point is 33 bytes.
        if compressed.len() == 33 {
            data.copy_from_slice(&compressed);
        }
        PublicKey {
            kind: self.kind,
            data,
        }
    }

    /// `PVT_K1_…` or `PVT_R1_…`.
    pub fn to_pvt_string(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "PVT_{}_{}",
            self.kind.label(),
            encode_check(&self.data[..], self.kind.label().as_bytes())
        ))
    }

    /// The WIF form (`5…`); K1 only.
    pub fn to_wif(&self) -> Option<Zeroizing<String>> {
        if self.kind != KeyType::K1 {
            return None;
        }
        let mut buf = Zeroizing::new(Vec::with_capacity(37));
        buf.push(0x80);
        buf.extend_from_slice(&self.data[..]);
        let sum = Sha256::digest(Sha256::digest(&buf[..]));
        buf.extend_from_slice(&sum[..4]);
        Some(Zeroizing::new(bs58::encode(&buf[..]).into_string()))
    }

    /// Parses `PVT_K1_…`, `PVT_R1_…` or a WIF string.
    pub fn parse(text: &str) -> Result<Self> {
        let err = |reason| Error::Key {
            kind: "private",
            reason,
        };
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("PVT_") {
            let (label, body) = rest
                .split_once('_')
                .ok_or(err("expected PVT_K1_ or PVT_R1_"))?;
            let kind =
                KeyType::from_label(label).ok_or(err("unsupported key type (only K1 and R1)"))?;
            let data = decode_check::<32>(body, label.as_bytes()).map_err(err)?;
            return PrivateKey::from_bytes(kind, *data);
        }
        if text.len() > base58_max_len(37) {
            return Err(err("too long for a PVT_ key or a WIF"));
        }
        let raw = Zeroizing::new(
            bs58::decode(text)
                .into_vec()
                .map_err(|_| err("not PVT_ and not base58 WIF"))?,
        );
        if raw.len() != 37 {
            return Err(err("wrong length for WIF"));
        }
        let sum = Sha256::digest(Sha256::digest(&raw[..33]));
        if sum[..4] != raw[33..] {
            return Err(err("bad checksum"));
        }
        if raw[0] != 0x80 {
            return Err(err("WIF version byte is not 0x80"));
        }
        let mut data = [0u8; 32];
        data.copy_from_slice(&raw[1..33]);
        PrivateKey::from_bytes(KeyType::K1, data)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.kind)
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        use subtle_eq::ct_eq;
        self.kind == other.kind && ct_eq(&self.data[..], &other.data[..])
    }
}

mod subtle_eq {
    /// Constant-time comparison, so comparing keys does not leak their bytes through timing.
    pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Pack for PrivateKey {
    fn pack(&self, out: &mut Vec<u8>) {
        super::codec::write_varuint32(out, self.kind.index());
        out.extend_from_slice(&self.data[..]);
    }
}

impl Unpack for PrivateKey {
    const WHAT: &'static str = "private_key";
    const MIN_SIZE: usize = 33;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        let kind = KeyType::from_index(r.varuint32("private key type")?, "private key type")?;
        PrivateKey::from_bytes(kind, r.array("private key")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings from outside are bounded by what their format can hold before base58 decoding
    /// (quadratic in the length): an 80 000-character key or signature is refused at once,
    /// while the longest real encodings still decode.
    #[test]
    fn oversized_base58_is_refused_before_decoding() {
        for n in [32usize, 33, 37, 65, 69] {
            for fill in [0u8, 1, 0x7f, 0xff] {
                let text = bs58::encode(vec![fill; n]).into_string();
                assert!(
                    text.len() <= base58_max_len(n),
                    "{n} bytes of {fill}: {text}"
                );
            }
        }
        let long = "1".repeat(80_000);
        for text in [
            format!("PUB_K1_{long}"),
            format!("EOS{long}"),
            format!("PVT_K1_{long}"),
            long.clone(),
        ] {
            let e = PublicKey::parse(&text)
                .map(|_| ())
                .or_else(|_| PrivateKey::parse(&text).map(|_| ()))
                .expect_err("refused");
            assert!(e.to_string().contains("too long"), "{e}");
        }
        let e = crate::antelope::Signature::parse(&format!("SIG_K1_{long}")).expect_err("refused");
        assert!(e.to_string().contains("too long"), "{e}");
    }

    #[test]
    fn dev_key_forms() {
        let k = PrivateKey::parse("5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD3")
            .expect("valid WIF");
        let p = k.public_key();
        assert_eq!(
            p.to_legacy_string().as_deref(),
            Some("EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV")
        );
        assert_eq!(
            PublicKey::parse("EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"),
            Ok(p)
        );
        assert_eq!(format!("{k:?}"), "PrivateKey(K1, <redacted>)");
    }

    #[test]
    fn errors_never_echo_the_key() {
        let s = "5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD4";
        let e = PrivateKey::parse(s).expect_err("bad checksum").to_string();
        assert!(!e.contains(&s[5..20]), "{e}");
    }

    #[test]
    fn rejects_zero_and_wrong_type() {
        assert!(PrivateKey::from_bytes(KeyType::K1, [0; 32]).is_err());
        assert!(PrivateKey::from_bytes(KeyType::R1, [0xff; 32]).is_err());
        assert!(
            PublicKey::from_bytes(KeyType::K1, [2; 33]).is_err()
                || PublicKey::from_bytes(KeyType::K1, [4; 33]).is_err()
        );
        assert!(PublicKey::parse("PUB_WA_xyz").is_err());
    }
}

#[cfg(test)]
mod proptests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = KeyType> {
        prop_oneof![Just(KeyType::K1), Just(KeyType::R1)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn keys_round_trip_through_every_form(kind in kind(), bytes in prop::array::uniform32(any::<u8>())) {
            let Ok(key) = PrivateKey::from_bytes(kind, bytes) else { return Ok(()) };
            prop_assert_eq!(PrivateKey::parse(&key.to_pvt_string()).unwrap(), key.clone());
            prop_assert_eq!(PrivateKey::unpack_exact(&key.packed()).unwrap(), key.clone());
            if let Some(wif) = key.to_wif() {
                prop_assert_eq!(PrivateKey::parse(&wif).unwrap(), key.clone());
            }
            let public = key.public_key();
            prop_assert_eq!(PublicKey::parse(&public.to_pub_string()).unwrap(), public);
            prop_assert_eq!(PublicKey::unpack_exact(&public.packed()).unwrap(), public);
            if let Some(legacy) = public.to_legacy_string() {
                prop_assert_eq!(PublicKey::parse(&legacy).unwrap(), public);
            }
        }

        #[test]
        fn key_parsers_never_panic(s in "\\PC{0,80}", b in prop::collection::vec(any::<u8>(), 0..70)) {
            let _ = PublicKey::parse(&s);
            let _ = PrivateKey::parse(&s);
            let _ = PublicKey::unpack_exact(&b);
            let _ = PrivateKey::unpack_exact(&b);
            let _ = PublicKey::parse(&format!("PUB_K1_{s}"));
            let _ = PrivateKey::parse(&format!("PVT_R1_{s}"));
        }
    }
}
