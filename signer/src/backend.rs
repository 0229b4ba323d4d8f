//! Key backends: the one seam between Oryx and the devices that hold keys.
//!
//! Guards: a backend signs one 32-byte digest once and returns the raw (r, s). It never retries,
//! normalises or checks watermarks: those live above it, once, in [`crate::signing`], so no
//! backend can skip them.

use std::fmt;

use oryx_proto::antelope::{Checksum256, PublicKey};

pub mod soft;

/// A raw ECDSA signature as a device returns it, before normalisation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawSignature {
    /// r, big-endian.
    pub r: [u8; 32],
    /// s, big-endian (may be high).
    pub s: [u8; 32],
    /// The recovery id for this (r, s) before any low-S flip, when the backend knows it (software
    /// keys do; HSMs do not). Only a hint: it is verified by recovery like any other guess.
    pub recid_hint: Option<u8>,
}

impl fmt::Debug for RawSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RawSignature(r={}, s={})",
            hex::encode(self.r),
            hex::encode(self.s)
        )
    }
}

/// Why a backend could not sign. Never carries key material or PINs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The device or its session is not reachable now; retrying later may work.
    #[error("key backend unavailable: {0}")]
    Unavailable(String),
    /// The device refused or failed the operation.
    #[error("key backend failed: {0}")]
    Failed(String),
}

/// A signing key whose secret never leaves its device.
pub trait KeyBackend: fmt::Debug + Send + Sync {
    /// Public key this backend signs for.
    fn public_key(&self) -> &PublicKey;

    /// Signs a 32-byte digest once. `attempt` counts from 1 for each digest; deterministic
    /// software keys use it as fc's RFC 6979 nonce counter, devices with random nonces ignore it.
    fn sign_digest(&self, digest: &Checksum256, attempt: u32)
    -> Result<RawSignature, BackendError>;
}
