//! Key backends: the one seam between Oryx and the devices that hold keys.
//!
//! Guards: a backend signs one 32-byte digest once and returns the raw (r, s). It never retries,
//! normalises or checks watermarks: those live above it, once, in [`crate::signing`], so no
//! backend can skip them.

use std::fmt;

use std::sync::Arc;

use oryx_proto::antelope::{Checksum256, KeyType, PublicKey};

#[cfg(feature = "pkcs11")]
pub mod pkcs11;
pub mod soft;
pub mod soft_file;
#[cfg(feature = "yubihsm")]
pub mod yubihsm;

/// A raw ECDSA signature as a device returns it, before normalisation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawSignature {
    /// r, big-endian.
    pub r: [u8; 32],
    /// s, big-endian (may be high).
    pub s: [u8; 32],
    /// The recovery id for this (r, s) before any low-S flip, when the backend knows it (software
    /// keys do; HSMs do not). Informational: the signer derives the id itself while verifying.
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

impl From<crate::secret::SecretError> for BackendError {
    /// A PIN, password or passphrase file that cannot be read or is empty: the operator must fix
    /// the file, so no retry helps. The message names the file, never the secret.
    fn from(e: crate::secret::SecretError) -> Self {
        BackendError::Failed(e.to_string())
    }
}

/// A signing key whose secret never leaves its device.
pub trait KeyBackend: fmt::Debug + Send + Sync {
    /// Public key this backend signs for.
    fn public_key(&self) -> &PublicKey;

    /// Signs a 32-byte digest once. `attempt` counts from 1 for each digest; deterministic
    /// software keys use it as fc's RFC 6979 nonce counter, devices with random nonces ignore it.
    fn sign_digest(&self, digest: &Checksum256, attempt: u32)
    -> Result<RawSignature, BackendError>;

    /// How many signatures the device can compute at once (e.g. a PKCS#11 session pool). The
    /// signing layer may then ask for several K1 attempts in parallel to find a canonical one
    /// sooner. Deterministic backends keep the default of 1.
    fn parallelism(&self) -> usize {
        1
    }

    /// Whether the key signs in this process from the same key material its public key was
    /// derived from, so a signature's `recid_hint` is exact and needs no verification by
    /// recovery (software keys). Devices answer false: their output is always checked.
    fn signs_in_process(&self) -> bool {
        false
    }
}

/// A key as a provider lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// The operator's name for the key (PKCS#11 `CKA_LABEL`, YubiHSM label, file name).
    pub label: String,
    /// The backend's own id for it (PKCS#11 `CKA_ID` hex, YubiHSM object id, file path).
    pub id: String,
    /// The public key.
    pub public_key: PublicKey,
}

/// Where keys are created, listed and opened: one PKCS#11 token, one YubiHSM, one key directory.
///
/// Guards: keys are generated *inside* the device and marked non-extractable where the device
/// supports it; nothing here returns secret material.
pub trait KeyProvider: fmt::Debug + Send + Sync {
    /// A short name for logs and metrics: `pkcs11`, `yubihsm`, `soft`.
    fn kind(&self) -> &'static str;

    /// Generates a new key on the device under `label`. Refuses a label already in use.
    fn generate(&self, label: &str, kind: KeyType) -> Result<KeyInfo, BackendError>;

    /// Every signing key the provider holds.
    fn list(&self) -> Result<Vec<KeyInfo>, BackendError>;

    /// Keys on the device that `list` leaves out because they cannot be used, each as (label,
    /// why), so a lookup by label can say why it found nothing.
    fn skipped(&self) -> Result<Vec<(String, String)>, BackendError> {
        Ok(Vec::new())
    }

    /// Opens the key with this public key for signing.
    fn open(&self, public_key: &PublicKey) -> Result<Arc<dyn KeyBackend>, BackendError>;

    /// Whether the device and its session are usable now (for `/readyz`).
    fn health(&self) -> Result<(), BackendError>;
}
