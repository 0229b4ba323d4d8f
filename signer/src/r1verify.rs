//! P-256 verification that also yields the recovery id, on OpenSSL's optimised curve code.
//!
//! Guards the same thing as [`Signature::from_verified_parts`] (the pure-Rust reference in
//! `oryx-proto`): a (r, s) is accepted only if it is a valid ECDSA signature by `key` over
//! `digest`, and the recovery id returned is the one that recovers `key`. It exists because every
//! R1 signature the signer returns is verified first, and on the development machine OpenSSL's
//! P-256 (`ecp_nistz256`) does that in about a fifth of the time (`cargo bench -p oryx-signer`).
//! A property test keeps both implementations in agreement, on valid and invalid input.
//!
//! All inputs are public (key, digest, signature), so variable-time arithmetic is fine here.
//!
//! [`Signature::from_verified_parts`]: oryx_proto::antelope::Signature::from_verified_parts

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcPoint};
use openssl::nid::Nid;
use oryx_proto::antelope::{Checksum256, KeyType, PublicKey};

/// The curve and its order, built once.
struct Curve {
    group: EcGroup,
    order: BigNum,
}

fn curve() -> Option<&'static Curve> {
    static CURVE: OnceLock<Option<Curve>> = OnceLock::new();
    CURVE
        .get_or_init(|| {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).ok()?;
            let mut order = BigNum::new().ok()?;
            let mut ctx = BigNumContext::new().ok()?;
            group.order(&mut order, &mut ctx).ok()?;
            Some(Curve { group, order })
        })
        .as_ref()
}

/// `key` as an uncompressed point (65 bytes), decompressed once per key: the modular square
/// root is about a fifth of a verification. Bounded: the signer verifies only its own keys.
fn point_of(c: &Curve, key: &PublicKey, ctx: &mut BigNumContext) -> Option<EcPoint> {
    use openssl::ec::PointConversionForm;
    static CACHE: OnceLock<RwLock<HashMap<[u8; 33], Vec<u8>>>> = OnceLock::new();
    const MAX_CACHED: usize = 1024;
    let compressed = *key.as_bytes();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(bytes) = cache.read().ok()?.get(&compressed) {
        return EcPoint::from_bytes(&c.group, bytes, ctx).ok();
    }
    let point = EcPoint::from_bytes(&c.group, &compressed[..], ctx).ok()?;
    let bytes = point
        .to_bytes(&c.group, PointConversionForm::UNCOMPRESSED, ctx)
        .ok()?;
    let mut map = cache.write().ok()?;
    if map.len() >= MAX_CACHED {
        map.clear();
    }
    map.insert(compressed, bytes);
    Some(point)
}

/// The recovery id of the P-256 signature `(r, s)` by `key` over `digest`, or `None` when it is
/// not one (or `key` is not an R1 key).
pub fn recovery_id(
    key: &PublicKey,
    digest: &Checksum256,
    r: &[u8; 32],
    s: &[u8; 32],
) -> Option<u8> {
    if key.kind() != KeyType::R1 {
        return None;
    }
    let c = curve()?;
    let mut ctx = BigNumContext::new().ok()?;
    let q = point_of(c, key, &mut ctx)?;
    let r_bn = BigNum::from_slice(r).ok()?;
    let s_bn = BigNum::from_slice(s).ok()?;
    let zero = BigNum::new().ok()?;
    for v in [&r_bn, &s_bn] {
        if *v <= zero || *v >= c.order {
            return None;
        }
    }
    // z = digest mod n (P-256's order has 256 bits: no truncation).
    let digest_bn = BigNum::from_slice(&digest.0).ok()?;
    let mut z = BigNum::new().ok()?;
    z.nnmod(&digest_bn, &c.order, &mut ctx).ok()?;
    let mut w = BigNum::new().ok()?;
    w.mod_inverse(&s_bn, &c.order, &mut ctx).ok()?;
    let mut u1 = BigNum::new().ok()?;
    u1.mod_mul(&z, &w, &c.order, &mut ctx).ok()?;
    let mut u2 = BigNum::new().ok()?;
    u2.mod_mul(&r_bn, &w, &c.order, &mut ctx).ok()?;
    // R = u1·G + u2·Q: the signature is valid when R is finite and x(R) ≡ r (mod n).
    let mut big_r = EcPoint::new(&c.group).ok()?;
    big_r.mul_full(&c.group, &u1, &q, &u2, &mut ctx).ok()?;
    if big_r.is_infinity(&c.group) {
        return None;
    }
    let (mut x, mut y) = (BigNum::new().ok()?, BigNum::new().ok()?);
    big_r
        .affine_coordinates(&c.group, &mut x, &mut y, &mut ctx)
        .ok()?;
    let mut x_mod_n = BigNum::new().ok()?;
    x_mod_n.nnmod(&x, &c.order, &mut ctx).ok()?;
    if x_mod_n != r_bn {
        return None;
    }
    let overflow = x != r_bn;
    Some(u8::from(y.is_bit_set(0)) | (u8::from(overflow) << 1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::backend::KeyBackend as _;
    use crate::backend::soft::SoftKey;
    use oryx_proto::antelope::{PrivateKey, Signature};
    use proptest::prelude::*;

    fn parts(sig: &Signature) -> ([u8; 32], [u8; 32]) {
        (sig.r().try_into().unwrap(), sig.s().try_into().unwrap())
    }

    /// The reference: the pure-Rust verification in oryx-proto.
    fn reference(key: &PublicKey, d: &Checksum256, r: &[u8; 32], s: &[u8; 32]) -> Option<u8> {
        Signature::from_verified_parts(key, d, r, s)
            .ok()
            .map(|sig| sig.recovery_id())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn agrees_with_the_reference(secret in any::<[u8; 32]>(), msg in any::<[u8; 8]>(), flip in 0usize..96) {
            let Ok(pk) = PrivateKey::from_bytes(KeyType::R1, secret) else { return Ok(()) };
            let key = SoftKey::new(pk);
            let public = *key.public_key();
            let digest = Checksum256::hash(&msg);
            let sig = crate::signing::sign(&key, &digest, Default::default()).unwrap().signature;
            let (r, s) = parts(&sig);
            // A valid signature: both find the same recovery id, the one in the signature.
            prop_assert_eq!(recovery_id(&public, &digest, &r, &s), Some(sig.recovery_id()));
            prop_assert_eq!(reference(&public, &digest, &r, &s), Some(sig.recovery_id()));
            // One flipped bit in r, s or the digest: both refuse (or, never, both accept).
            let (mut r2, mut s2, mut d2) = (r, s, digest);
            match flip / 32 {
                0 => r2[flip % 32] ^= 1,
                1 => s2[flip % 32] ^= 1,
                _ => d2.0[flip % 32] ^= 1,
            }
            prop_assert_eq!(recovery_id(&public, &d2, &r2, &s2), reference(&public, &d2, &r2, &s2));
            prop_assert_eq!(recovery_id(&public, &d2, &r2, &s2), None);
        }
    }

    #[test]
    fn refuses_out_of_range_scalars_other_keys_and_k1() {
        let key = SoftKey::new(PrivateKey::from_bytes(KeyType::R1, [7; 32]).unwrap());
        let other = SoftKey::new(PrivateKey::from_bytes(KeyType::R1, [8; 32]).unwrap());
        let digest = Checksum256::hash(b"block");
        let sig = crate::signing::sign(&key, &digest, Default::default())
            .unwrap()
            .signature;
        let (r, s) = parts(&sig);
        assert!(recovery_id(key.public_key(), &digest, &r, &s).is_some());
        assert_eq!(recovery_id(other.public_key(), &digest, &r, &s), None);
        assert_eq!(recovery_id(key.public_key(), &digest, &[0; 32], &s), None);
        assert_eq!(recovery_id(key.public_key(), &digest, &r, &[0; 32]), None);
        assert_eq!(
            recovery_id(key.public_key(), &digest, &[0xff; 32], &s),
            None
        );
        assert_eq!(
            recovery_id(key.public_key(), &digest, &r, &[0xff; 32]),
            None
        );
        let k1 = SoftKey::new(PrivateKey::from_bytes(KeyType::K1, [7; 32]).unwrap());
        assert_eq!(recovery_id(k1.public_key(), &digest, &r, &s), None);
    }
}
