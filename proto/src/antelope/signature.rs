//! Signatures: 65-byte compact `[27 + 4 + recid] ‖ r ‖ s` for K1 and R1, their `SIG_K1_` /
//! `SIG_R1_` strings and binary forms, public-key recovery and the canonical rules nodes enforce.
//!
//! Guards: [`Signature::recover`] refuses what nodeos refuses (non-canonical K1, high-S R1), so a
//! signature Oryx accepts or emits is one the chain accepts.

use std::fmt;
use std::str::FromStr;

use super::checksum::Checksum256;
use super::codec::{Pack, Reader, Unpack, write_varuint32};
use super::keys::{KeyType, PublicKey, decode_check, encode_check};
use crate::{Error, Result};

/// One ECDSA verification over `$curve` that also yields the recovery id (see
/// [`Signature::from_verified_parts`]); `None` when the signature does not verify.
macro_rules! verify_recid {
    ($curve:ident, $key:expr, $digest:expr, $r:expr, $s:expr) => {{
        use $curve::elliptic_curve::ff::{Field, PrimeField as _};
        use $curve::elliptic_curve::ops::MulByGeneratorVartime as _;
        use $curve::elliptic_curve::point::AffineCoordinates as _;
        use $curve::{FieldBytes, ProjectivePoint, Scalar};
        (|| {
            let q = $curve::ecdsa::VerifyingKey::from_sec1_bytes(&$key.as_bytes()[..]).ok()?;
            let q = ProjectivePoint::from(*q.as_affine());
            let r = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(*$r)))?;
            let s = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(*$s)))?;
            if r == <Scalar as Field>::ZERO || s == <Scalar as Field>::ZERO {
                return None;
            }
            let z = <Scalar as $curve::elliptic_curve::ops::Reduce<FieldBytes>>::reduce(
                &FieldBytes::from($digest.0),
            );
            let s_inv = Option::<Scalar>::from(s.invert())?;
            let big_r = ProjectivePoint::mul_by_generator_and_mul_add_vartime(
                &(z * s_inv),
                &(r * s_inv),
                &q,
            )
            .to_affine();
            if big_r == $curve::AffinePoint::IDENTITY {
                return None;
            }
            let x = big_r.x();
            if <Scalar as $curve::elliptic_curve::ops::Reduce<FieldBytes>>::reduce(&x) != r {
                return None;
            }
            let overflow = x[..] != $r[..];
            Some(u8::from(bool::from(big_r.y_is_odd())) | (u8::from(overflow) << 1))
        })()
    }};
}

/// The order of secp256k1 divided by two, big-endian (low-S bound).
const K1_HALF_ORDER: [u8; 32] =
    hex_literal32("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");
/// The order of P-256 divided by two, big-endian (low-S bound).
const R1_HALF_ORDER: [u8; 32] =
    hex_literal32("7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8");

const fn hex_literal32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex literal"),
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(b[2 * i]) << 4 | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// A compact recoverable signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    kind: KeyType,
    data: [u8; 65],
}

impl Signature {
    /// Builds a signature from its 65 compact bytes. The header byte must be 27..=34, as fc
    /// requires; whether it recovers is checked by [`Signature::recover`].
    pub fn from_bytes(kind: KeyType, data: [u8; 65]) -> Result<Self> {
        if !(27..35).contains(&data[0]) {
            return Err(Error::Signature("header byte must be 27..34"));
        }
        Ok(Signature { kind, data })
    }

    /// Assembles `[31 + recid] ‖ r ‖ s` (compressed-key form, as fc and nodeos produce).
    pub fn from_parts(kind: KeyType, recid: u8, r: &[u8; 32], s: &[u8; 32]) -> Result<Self> {
        if recid > 3 {
            return Err(Error::Signature("recovery id must be 0..3"));
        }
        let mut data = [0u8; 65];
        data[0] = 27 + 4 + recid;
        data[1..33].copy_from_slice(r);
        data[33..].copy_from_slice(s);
        Ok(Signature { kind, data })
    }

    /// The signature `(r, s)` by `key` over `digest`, with its recovery id found by one ECDSA
    /// verification instead of up to four recoveries: `R = s⁻¹·(z·G + r·Q)` must have
    /// `x(R) ≡ r (mod n)`, and then the recovery id is the parity of `y(R)`, plus 2 when
    /// `x(R) ≥ n`. Recovering with that id gives back `Q` by construction. An error when
    /// `(r, s)` is not a valid signature by `key` (no canonical or low-S rule is applied here).
    pub fn from_verified_parts(
        key: &PublicKey,
        digest: &Checksum256,
        r: &[u8; 32],
        s: &[u8; 32],
    ) -> Result<Self> {
        let recid = match key.kind() {
            KeyType::K1 => verify_recid!(k256, key, digest, r, s),
            KeyType::R1 => verify_recid!(p256, key, digest, r, s),
        }
        .ok_or(Error::Signature(
            "(r, s) is not a signature by this key over this digest",
        ))?;
        Self::from_parts(key.kind(), recid, r, s)
    }

    /// The curve.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// The 65 compact bytes.
    pub fn as_bytes(&self) -> &[u8; 65] {
        &self.data
    }

    /// The recovery id (0..3) from the header byte.
    pub fn recovery_id(&self) -> u8 {
        (self.data[0] - 27) & 3
    }

    /// r, big-endian.
    pub fn r(&self) -> &[u8] {
        &self.data[1..33]
    }

    /// s, big-endian.
    pub fn s(&self) -> &[u8] {
        &self.data[33..65]
    }

    /// Whether s is at most half the curve order.
    pub fn is_low_s(&self) -> bool {
        let half = match self.kind {
            KeyType::K1 => &K1_HALF_ORDER,
            KeyType::R1 => &R1_HALF_ORDER,
        };
        self.s() <= &half[..]
    }

    /// The rule nodes apply. K1: fc's `is_canonical` (r and s each in [2^247, 2^255)) and low-S;
    /// R1: low-S.
    pub fn is_canonical(&self) -> bool {
        match self.kind {
            KeyType::K1 => is_canonical_k1(&self.data) && self.is_low_s(),
            KeyType::R1 => self.is_low_s(),
        }
    }

    /// Recovers the signing key, refusing non-canonical signatures as nodeos does.
    pub fn recover(&self, digest: &Checksum256) -> Result<PublicKey> {
        if !self.is_canonical() {
            return Err(Error::Signature("signature is not canonical"));
        }
        self.recover_lenient(digest)
    }

    /// Recovers the signing key without the canonical rule (for inspecting foreign signatures).
    pub fn recover_lenient(&self, digest: &Checksum256) -> Result<PublicKey> {
        let sec1 = self.recover_sec1(digest)?;
        PublicKey::from_sec1(self.kind, &sec1)
    }

    /// Whether this signature recovers to `key` (no canonical rule; compare [`Self::is_canonical`]).
    pub fn recovers_to(&self, digest: &Checksum256, key: &PublicKey) -> bool {
        self.kind == key.kind()
            && self
                .recover_sec1(digest)
                .is_ok_and(|sec1| sec1[..] == key.as_bytes()[..])
    }

    fn recover_sec1(&self, digest: &Checksum256) -> Result<Vec<u8>> {
        let bad = || Error::Signature("does not recover to a public key");
        let rs = &self.data[1..65];
        let recid = self.recovery_id();
        let sec1: Vec<u8> = match self.kind {
            KeyType::K1 => {
                use k256::ecdsa::{RecoveryId, Signature as S, VerifyingKey};
                let sig = S::from_slice(rs).map_err(|_| bad())?;
                let id = RecoveryId::from_byte(recid).ok_or_else(bad)?;
                let vk =
                    VerifyingKey::recover_from_prehash(&digest.0, &sig, id).map_err(|_| bad())?;
                vk.to_sec1_point(true).as_bytes().to_vec()
            }
            KeyType::R1 => {
                use p256::ecdsa::{RecoveryId, Signature as S, VerifyingKey};
                let sig = S::from_slice(rs).map_err(|_| bad())?;
                let id = RecoveryId::from_byte(recid).ok_or_else(bad)?;
                let vk =
                    VerifyingKey::recover_from_prehash(&digest.0, &sig, id).map_err(|_| bad())?;
                vk.to_sec1_point(true).as_bytes().to_vec()
            }
        };
        Ok(sec1)
    }

    /// `SIG_K1_…` or `SIG_R1_…`.
    pub fn to_sig_string(&self) -> String {
        format!(
            "SIG_{}_{}",
            self.kind.label(),
            encode_check(&self.data, self.kind.label().as_bytes())
        )
    }

    /// Parses `SIG_K1_…` or `SIG_R1_…`.
    pub fn parse(text: &str) -> Result<Self> {
        let rest = text
            .strip_prefix("SIG_")
            .ok_or(Error::Signature("expected SIG_K1_ or SIG_R1_ prefix"))?;
        let (label, body) = rest
            .split_once('_')
            .ok_or(Error::Signature("expected SIG_K1_ or SIG_R1_ prefix"))?;
        let kind = KeyType::from_label(label).ok_or(Error::Signature(
            "unsupported signature type (only K1 and R1)",
        ))?;
        let data = decode_check::<65>(body, label.as_bytes()).map_err(Error::Signature)?;
        Signature::from_bytes(kind, *data)
    }
}

/// fc's `public_key::is_canonical` on a compact K1 signature.
pub fn is_canonical_k1(d: &[u8; 65]) -> bool {
    (d[1] & 0x80) == 0
        && !(d[1] == 0 && (d[2] & 0x80) == 0)
        && (d[33] & 0x80) == 0
        && !(d[33] == 0 && (d[34] & 0x80) == 0)
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sig_string())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl FromStr for Signature {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Signature::parse(s)
    }
}

impl Pack for Signature {
    fn pack(&self, out: &mut Vec<u8>) {
        write_varuint32(out, if self.kind == KeyType::K1 { 0 } else { 1 });
        out.extend_from_slice(&self.data);
    }
}

impl Unpack for Signature {
    const WHAT: &'static str = "signature";
    const MIN_SIZE: usize = 66;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        let kind = KeyType::from_index(r.varuint32("signature type")?, "signature type")?;
        Signature::from_bytes(kind, r.array("signature")?)
    }
}

super::codec::serde_as_string!(Signature);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_orders_match_the_curves() {
        // n/2 for secp256k1 and P-256, floor division.
        let k1_n = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
        let r1_n = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
        for (n, half) in [(k1_n, K1_HALF_ORDER), (r1_n, R1_HALF_ORDER)] {
            let n = hex::decode(n).expect("hex");
            let mut carry = 0u16;
            let mut out = [0u8; 32];
            for (i, b) in n.iter().enumerate() {
                let cur = carry << 8 | u16::from(*b);
                out[i] = (cur / 2) as u8;
                carry = cur % 2;
            }
            assert_eq!(out, half);
        }
    }
}

#[cfg(test)]
mod proptests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn signatures_round_trip(r1: bool, recid in 0u8..4, r in prop::array::uniform32(any::<u8>()), s in prop::array::uniform32(any::<u8>())) {
            let kind = if r1 { KeyType::R1 } else { KeyType::K1 };
            let sig = Signature::from_parts(kind, recid, &r, &s).unwrap();
            prop_assert_eq!(Signature::parse(&sig.to_sig_string()).unwrap(), sig);
            prop_assert_eq!(Signature::unpack_exact(&sig.packed()).unwrap(), sig);
            prop_assert_eq!(sig.recovery_id(), recid);
            // Recovery on arbitrary bytes fails cleanly or yields a key; it never panics.
            let _ = sig.recover_lenient(&Checksum256(r));
        }

        #[test]
        fn one_verification_finds_the_recovery_id(r1: bool, secret in prop::array::uniform32(1u8..), digest in prop::array::uniform32(any::<u8>())) {
            macro_rules! check {
                ($curve:ident, $kind:expr) => {{
                    let Ok(sk) = $curve::ecdsa::SigningKey::from_slice(&secret) else { return Ok(()) };
                    let (sig, id) = sk.sign_prehash_recoverable(&digest);
                    let bytes = sig.to_bytes();
                    let (r, s) = (<[u8; 32]>::try_from(&bytes[..32]).unwrap(), <[u8; 32]>::try_from(&bytes[32..]).unwrap());
                    let key = PublicKey::from_sec1($kind, sk.verifying_key().to_sec1_point(true).as_bytes()).unwrap();
                    let d = Checksum256(digest);
                    let found = Signature::from_verified_parts(&key, &d, &r, &s).unwrap();
                    prop_assert_eq!(found.recovery_id(), id.to_byte());
                    prop_assert!(found.recovers_to(&d, &key));
                    let mut other = digest;
                    other[31] ^= 1;
                    prop_assert!(Signature::from_verified_parts(&key, &Checksum256(other), &r, &s).is_err());
                    prop_assert!(Signature::from_verified_parts(&key, &d, &s, &r).is_err());
                }};
            }
            if r1 { check!(p256, KeyType::R1) } else { check!(k256, KeyType::K1) }
        }

        #[test]
        fn signature_parsers_never_panic(s in "\\PC{0,120}", b in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = Signature::parse(&s);
            let _ = Signature::parse(&format!("SIG_K1_{s}"));
            let _ = Signature::unpack_exact(&b);
        }
    }
}
