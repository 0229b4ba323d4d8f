//! From a raw (r, s) to a signature nodes accept — once, above every backend.
//!
//! Guards:
//! - every signature is low-S and carries the recovery id that recovers the expected key;
//! - K1 signatures are canonical in fc's sense unless the chain has said otherwise
//!   ([`SignOptions::require_canonical`]); a non-canonical result is thrown away and the backend
//!   asked again, a bounded number of times;
//! - every signature from a device is verified by recovery against the expected key before it
//!   is returned: a backend that signs with the wrong key, or returns garbage, produces an
//!   error, never a signature. A software key signs in this process with the key its public key
//!   was derived from, and k256 hands back the exact recovery id, so its signature is assembled
//!   without a recovery (~130 µs saved); debug builds (every test) still verify it.

use oryx_proto::antelope::{Checksum256, KeyType, PublicKey, Signature};

use crate::backend::{BackendError, KeyBackend, RawSignature};

/// Per-chain signing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignOptions {
    /// Demand fc-canonical K1 signatures. True for every chain that has not activated
    /// `ALLOW_NON_CANONICAL_SIGNATURES`.
    pub require_canonical: bool,
    /// How many times the backend may be asked for one digest. About half of all K1
    /// signatures are canonical, so 64 attempts fail with probability 2^-64.
    pub max_attempts: u32,
    /// For latency-critical requests (blocks): ask a device with random nonces for two K1
    /// attempts at once, when it can compute them in parallel. Halves the expected rounds
    /// (1.33 instead of 2) and the tail, at the cost of ~1/3 more device calls.
    pub speculative: bool,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            require_canonical: true,
            max_attempts: 64,
            speculative: false,
        }
    }
}

impl SignOptions {
    /// The rules of a configured chain.
    pub fn for_chain(chain: &crate::config::ChainConfig) -> Self {
        SignOptions {
            require_canonical: chain.require_canonical,
            ..SignOptions::default()
        }
    }

    /// The same rules for a block: latency-critical, so a device with random nonces is asked
    /// for two K1 attempts at once when it can compute them in parallel.
    pub fn for_block(self) -> Self {
        SignOptions {
            speculative: true,
            ..self
        }
    }
}

/// Why no signature came out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The backend failed or is unavailable.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The backend returned a signature that does not verify against its key.
    #[error(
        "the key backend returned a signature that does not recover to {expected}: refusing it"
    )]
    DoesNotVerify {
        /// The key the backend claims to hold.
        expected: PublicKey,
    },
    /// No canonical signature within the attempt budget.
    #[error("no canonical signature after {attempts} attempts")]
    NoCanonical {
        /// Attempts made.
        attempts: u32,
    },
}

/// A verified signature and how many backend calls it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed {
    /// The signature, low-S, canonical as required, verified by recovery.
    pub signature: Signature,
    /// Backend calls made (1 for most R1 and about half of K1 signatures).
    pub attempts: u32,
}

/// Signs `digest` with `backend` under `opts`.
pub fn sign(
    backend: &dyn KeyBackend,
    digest: &Checksum256,
    opts: SignOptions,
) -> Result<Signed, SignError> {
    let expected = *backend.public_key();
    let max = opts.max_attempts.max(1);
    // R1 has no canonical loop; K1 loops only when the chain requires canonical signatures.
    let must_be_canonical = expected.kind() == KeyType::K1 && opts.require_canonical;
    if must_be_canonical && opts.speculative && backend.parallelism() >= 2 {
        return sign_speculative(backend, digest, max);
    }
    for attempt in 1..=max {
        let raw = backend.sign_digest(digest, attempt)?;
        // The canonical rule looks only at r and the low-S s, so a non-canonical result is
        // dropped before paying for the recovery that verifies it (about half of all attempts).
        if must_be_canonical && !canonical_k1(&raw) {
            continue;
        }
        let signature = match raw.recid_hint.filter(|_| backend.signs_in_process()) {
            Some(hint) => assemble(expected, digest, &raw, hint)?,
            None => finish(expected, digest, &raw)?,
        };
        if !must_be_canonical || signature.is_canonical() {
            return Ok(Signed {
                signature,
                attempts: attempt,
            });
        }
    }
    Err(SignError::NoCanonical { attempts: max })
}

/// Turns a raw (r, s) from any source into a low-S signature with the recovery id that recovers
/// `expected`, verified by that recovery.
pub fn finish(
    expected: PublicKey,
    digest: &Checksum256,
    raw: &RawSignature,
) -> Result<Signature, SignError> {
    let kind = expected.kind();
    let not_ours = || SignError::DoesNotVerify { expected };
    let (s, _flipped) = low_s(kind, &raw.s).ok_or_else(not_ours)?;
    // One verification that also yields the recovery id (cheaper than trial recoveries:
    // K1 needed 1.5 recoveries on average without a device hint, R1 the same at 3.5× the cost).
    // R1 on OpenSSL's P-256 code, which is about five times faster here than the pure-Rust one.
    if kind == KeyType::R1 {
        let recid =
            crate::r1verify::recovery_id(&expected, digest, &raw.r, &s).ok_or_else(not_ours)?;
        return Signature::from_parts(kind, recid, &raw.r, &s).map_err(|_| not_ours());
    }
    Signature::from_verified_parts(&expected, digest, &raw.r, &s).map_err(|_| not_ours())
}

/// A signature computed in process with its exact recovery id `hint` (before any low-S flip):
/// low-S and the id adjusted, no recovery. Debug builds verify it anyway.
fn assemble(
    expected: PublicKey,
    digest: &Checksum256,
    raw: &RawSignature,
    hint: u8,
) -> Result<Signature, SignError> {
    let not_ours = || SignError::DoesNotVerify { expected };
    let (s, flipped) = low_s(expected.kind(), &raw.s).ok_or_else(not_ours)?;
    let signature = Signature::from_parts(expected.kind(), hint ^ u8::from(flipped), &raw.r, &s)
        .map_err(|_| not_ours())?;
    #[cfg(debug_assertions)]
    if signature.recover_lenient(digest).ok() != Some(expected) {
        return Err(not_ours());
    }
    #[cfg(not(debug_assertions))]
    let _ = digest;
    Ok(signature)
}

/// K1 attempts two at a time on a device that can sign in parallel; the first canonical result
/// (in attempt order, so the outcome does not depend on thread timing) is verified and returned.
fn sign_speculative(
    backend: &dyn KeyBackend,
    digest: &Checksum256,
    max: u32,
) -> Result<Signed, SignError> {
    let expected = *backend.public_key();
    let mut attempt = 1;
    while attempt <= max {
        let second_allowed = attempt < max;
        let (a, b) = std::thread::scope(|s| {
            let second =
                second_allowed.then(|| s.spawn(|| backend.sign_digest(digest, attempt + 1)));
            let first = backend.sign_digest(digest, attempt);
            (first, second.map(|h| h.join()))
        });
        let b = b.map(|r| {
            r.unwrap_or_else(|_| Err(BackendError::Failed("signing thread panicked".into())))
        });
        for (n, raw) in [(attempt, Some(a)), (attempt + 1, b)] {
            let Some(raw) = raw else { continue };
            let raw = raw?;
            if canonical_k1(&raw) {
                let signature = finish(expected, digest, &raw)?;
                if signature.is_canonical() {
                    return Ok(Signed {
                        signature,
                        attempts: n,
                    });
                }
            }
        }
        attempt += 2;
    }
    Err(SignError::NoCanonical { attempts: max })
}

/// fc's canonical rule on (r, low-S s), before the recovery id is known.
fn canonical_k1(raw: &RawSignature) -> bool {
    let Some((s, _)) = low_s(KeyType::K1, &raw.s) else {
        // Not a valid scalar: let `finish` report the bad signature.
        return true;
    };
    let mut compact = [0u8; 65];
    compact[1..33].copy_from_slice(&raw.r);
    compact[33..].copy_from_slice(&s);
    oryx_proto::antelope::signature::is_canonical_k1(&compact)
}

/// Returns `(min(s, n - s), flipped)`, or `None` when s is zero or not below the order.
fn low_s(kind: KeyType, s: &[u8; 32]) -> Option<([u8; 32], bool)> {
    fn flip<F: AsRef<[u8]>>(bytes: F) -> Option<[u8; 32]> {
        bytes.as_ref().try_into().ok()
    }
    match kind {
        KeyType::K1 => {
            let scalar =
                Option::<k256::NonZeroScalar>::from(k256::NonZeroScalar::from_repr((*s).into()))?;
            let high = bool::from(k256::elliptic_curve::scalar::IsHigh::is_high(
                scalar.as_ref(),
            ));
            if high {
                Some((flip((-*scalar.as_ref()).to_bytes())?, true))
            } else {
                Some((*s, false))
            }
        }
        KeyType::R1 => {
            let scalar =
                Option::<p256::NonZeroScalar>::from(p256::NonZeroScalar::from_repr((*s).into()))?;
            let high = bool::from(p256::elliptic_curve::scalar::IsHigh::is_high(
                scalar.as_ref(),
            ));
            if high {
                Some((flip((-*scalar.as_ref()).to_bytes())?, true))
            } else {
                Some((*s, false))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::backend::soft::SoftKey;
    use oryx_proto::antelope::PrivateKey;
    use proptest::prelude::*;

    /// A backend that returns whatever (r, s) the test feeds it, as an HSM with random nonces
    /// might, computed honestly from a known key and an arbitrary nonce.
    #[derive(Debug)]
    struct FixedNonce {
        key: PrivateKey,
        public: PublicKey,
        nonce: [u8; 32],
        high_s: bool,
    }

    impl KeyBackend for FixedNonce {
        fn public_key(&self) -> &PublicKey {
            &self.public
        }
        fn parallelism(&self) -> usize {
            2
        }
        fn sign_digest(
            &self,
            digest: &Checksum256,
            attempt: u32,
        ) -> Result<RawSignature, BackendError> {
            let mut nonce = self.nonce;
            nonce[31] = nonce[31].wrapping_add(attempt as u8);
            let d = k256::NonZeroScalar::from_repr((*self.key.secret_bytes()).into()).unwrap();
            let k =
                Option::<k256::NonZeroScalar>::from(k256::NonZeroScalar::from_repr(nonce.into()))
                    .ok_or_else(|| BackendError::Failed("nonce".into()))?;
            let (sig, _) = ecdsa::hazmat::sign_prehashed::<k256::Secp256k1>(&d, &k, &digest.0)
                .map_err(|_| BackendError::Failed("sign".into()))?;
            let (r, s) = sig.split_bytes();
            let mut s: [u8; 32] = s.as_slice().try_into().unwrap();
            if self.high_s {
                let sc = k256::NonZeroScalar::from_repr(s.into()).unwrap();
                s = (-*sc.as_ref()).to_bytes().as_slice().try_into().unwrap();
            }
            Ok(RawSignature {
                r: r.as_slice().try_into().unwrap(),
                s,
                recid_hint: None,
            })
        }
    }

    #[test]
    fn fc_exact_on_a_leap_block() {
        // leap deep-mind block 3: fc's attempt 1 is not canonical, attempt 2 is what nodeos signed.
        let key = SoftKey::new(
            PrivateKey::parse("5JUCZstnDNUiqamXsks6H9Cvvpum4K8EVtP3Nhqrz4s16cHQ3C7").unwrap(),
        );
        let digest = Checksum256::from_hex(
            "5bd5a337cc8b13af20908f88a7eaa6491ed7a23a2d655461cb39debc98171fb6",
        )
        .unwrap();
        let signed = sign(&key, &digest, SignOptions::default()).unwrap();
        assert_eq!(signed.attempts, 2);
        assert_eq!(
            hex::encode(signed.signature.as_bytes()),
            "1f4efab24108b62d2edcccf3ffec0ab6382ee0cfef4d5653f37e07734c76a3535d0a131a9f342707a49d910a4521a16815a28c8c0dcf017ef30ded2fa875e894d1"
        );
        let lenient = sign(
            &key,
            &digest,
            SignOptions {
                require_canonical: false,
                max_attempts: 1,
                ..SignOptions::default()
            },
        )
        .unwrap();
        assert_eq!(
            hex::encode(lenient.signature.as_bytes()),
            "1f8266037ead9f001d2aebebd38a4ddc36a08a43c8eda3c44d62b7c406b4d1c22d150d5238aeaa5afc17c0a145668f193fea098b68a38d13b2c43baa770c7c13ac"
        );
    }

    #[test]
    fn wrong_key_is_refused() {
        let a = SoftKey::generate(KeyType::K1).unwrap();
        let b = SoftKey::generate(KeyType::K1).unwrap();
        let digest = Checksum256::hash(b"x");
        let raw = a.sign_digest(&digest, 1).unwrap();
        assert!(matches!(
            finish(*b.public_key(), &digest, &raw),
            Err(SignError::DoesNotVerify { .. })
        ));
        let garbage = RawSignature {
            r: [0; 32],
            s: [0; 32],
            recid_hint: None,
        };
        assert!(finish(*a.public_key(), &digest, &garbage).is_err());
    }

    #[test]
    fn r1_signatures_are_low_s_and_recover() {
        let key = SoftKey::generate(KeyType::R1).unwrap();
        for i in 0..20u8 {
            let digest = Checksum256::hash(&[i]);
            let signed = sign(&key, &digest, SignOptions::default()).unwrap();
            assert_eq!(signed.attempts, 1);
            assert!(signed.signature.is_low_s());
            assert_eq!(
                signed.signature.recover(&digest).unwrap(),
                *key.public_key()
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn k1_from_random_r_s_is_low_s_canonical_and_recoverable(
            key in prop::array::uniform32(1u8..),
            nonce in prop::array::uniform32(1u8..),
            digest in prop::array::uniform32(any::<u8>()),
            high_s: bool,
        ) {
            let key = PrivateKey::from_bytes(KeyType::K1, key);
            prop_assume!(key.is_ok());
            let key = key.unwrap();
            let backend = FixedNonce { public: key.public_key(), key, nonce, high_s };
            let digest = Checksum256(digest);
            for speculative in [false, true] {
                let opts = SignOptions { speculative, ..SignOptions::default() };
                let signed = sign(&backend, &digest, opts).unwrap();
                prop_assert!(signed.signature.is_low_s());
                prop_assert!(signed.signature.is_canonical());
                prop_assert_eq!(signed.signature.recover(&digest).unwrap(), backend.public);
            }
        }
    }
}
