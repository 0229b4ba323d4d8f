//! Software keys held in memory, signing exactly as nodeos's fc does.
//!
//! Guards: byte-identical signatures to nodeos/cleos for the same key and digest. fc calls
//! libsecp256k1 with RFC 6979 HMAC-DRBG nonces and a counter that starts at 1 (the first DRBG
//! output is skipped) and increments until the signature is canonical; [`fc_nonce`] reproduces
//! the DRBG and the signing loop in [`crate::signing`] supplies the counter.
//!
//! For development, tests and offline use only: the secret is in process memory (zeroized on
//! drop), not in an HSM.

use hmac::{Hmac, KeyInit, Mac};
use oryx_proto::antelope::{Checksum256, KeyType, PrivateKey, PublicKey};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{BackendError, KeyBackend, RawSignature};

/// An in-memory key.
#[derive(Debug)]
pub struct SoftKey {
    key: PrivateKey,
    public: PublicKey,
}

impl SoftKey {
    /// Wraps a private key.
    pub fn new(key: PrivateKey) -> Self {
        let public = key.public_key();
        SoftKey { key, public }
    }

    /// Generates a fresh key from the operating system's random source.
    pub fn generate(kind: KeyType) -> Result<Self, BackendError> {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            getrandom::fill(&mut bytes[..])
                .map_err(|e| BackendError::Unavailable(format!("random source: {e}")))?;
            // Out-of-range scalars (probability ~2^-128) are simply drawn again.
            if let Ok(key) = PrivateKey::from_bytes(kind, *bytes) {
                return Ok(SoftKey::new(key));
            }
        }
    }

    /// The private key (for exporting a freshly generated development key).
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_hmac() -> ! {
    // Invariant: HMAC-SHA256 takes keys of every length (RFC 2104).
    unreachable!("HMAC-SHA256 rejected a key length")
}

/// libsecp256k1's `nonce_function_rfc6979(msg32, key32, algo16 = NULL, data = NULL, counter)`:
/// the HMAC-DRBG of RFC 6979 §3.2 seeded with `key32 ‖ msg32`, output number `counter`
/// (counting from 0).
pub fn fc_nonce(key32: &[u8; 32], msg32: &[u8; 32], counter: u32) -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    let mut v = Zeroizing::new([1u8; 32]);
    *k = hmac_sha256(&k[..], &[&v[..], &[0x00], key32, msg32]);
    *v = hmac_sha256(&k[..], &[&v[..]]);
    *k = hmac_sha256(&k[..], &[&v[..], &[0x01], key32, msg32]);
    *v = hmac_sha256(&k[..], &[&v[..]]);
    for i in 0..=counter {
        if i > 0 {
            *k = hmac_sha256(&k[..], &[&v[..], &[0x00]]);
            *v = hmac_sha256(&k[..], &[&v[..]]);
        }
        *v = hmac_sha256(&k[..], &[&v[..]]);
    }
    Zeroizing::new(*v)
}

fn sign_k1(
    key: &PrivateKey,
    digest: &Checksum256,
    attempt: u32,
) -> Result<RawSignature, BackendError> {
    use k256::{NonZeroScalar, Secp256k1};
    let fail = |what: &str| BackendError::Failed(format!("software K1 signing: {what}"));
    let d = Option::<NonZeroScalar>::from(NonZeroScalar::from_repr((*key.secret_bytes()).into()))
        .ok_or_else(|| fail("invalid key"))?;
    let nonce = fc_nonce(key.secret_bytes(), &digest.0, attempt);
    // A DRBG output of zero or above the order (probability ~2^-128) is not a valid nonce;
    // libsecp256k1 then asks for the next counter, which is what the caller's next attempt does.
    let k = Option::<NonZeroScalar>::from(NonZeroScalar::from_repr((*nonce).into()))
        .ok_or_else(|| fail("nonce out of range"))?;
    let (sig, recid) = ecdsa::hazmat::sign_prehashed::<Secp256k1>(&d, &k, &digest.0)
        .map_err(|_| fail("degenerate signature"))?;
    raw_from(sig.split_bytes(), recid.to_byte())
}

fn sign_r1(key: &PrivateKey, digest: &Checksum256) -> Result<RawSignature, BackendError> {
    let fail = |what: &str| BackendError::Failed(format!("software R1 signing: {what}"));
    let sk =
        p256::ecdsa::SigningKey::from_slice(key.secret_bytes()).map_err(|_| fail("invalid key"))?;
    let (sig, recid) = sk.sign_prehash_recoverable(&digest.0);
    raw_from(sig.split_bytes(), recid.to_byte())
}

fn raw_from<F: AsRef<[u8]>>((r, s): (F, F), recid: u8) -> Result<RawSignature, BackendError> {
    let conv = |b: F| -> Result<[u8; 32], BackendError> {
        b.as_ref()
            .try_into()
            .map_err(|_| BackendError::Failed("scalar is not 32 bytes".into()))
    };
    Ok(RawSignature {
        r: conv(r)?,
        s: conv(s)?,
        recid_hint: Some(recid),
    })
}

impl KeyBackend for SoftKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn signs_in_process(&self) -> bool {
        true
    }

    fn sign_digest(
        &self,
        digest: &Checksum256,
        attempt: u32,
    ) -> Result<RawSignature, BackendError> {
        match self.key.kind() {
            KeyType::K1 => sign_k1(&self.key, digest, attempt),
            KeyType::R1 => sign_r1(&self.key, digest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drbg_matches_rfc6979_a2_5_structure() {
        // Distinct counters give distinct nonces, and the sequence is deterministic.
        let a = fc_nonce(&[1; 32], &[2; 32], 0);
        let b = fc_nonce(&[1; 32], &[2; 32], 1);
        assert_ne!(*a, *b);
        assert_eq!(*b, *fc_nonce(&[1; 32], &[2; 32], 1));
    }
}
