//! One conformance suite for every key backend: the same test bodies run against software keys
//! (`tests/soft.rs`, the `soft` key directory), SoftHSM2 over PKCS#11 (`tests/pkcs11.rs`) and the
//! YubiHSM 2 MockHsm (`tests/yubihsm.rs`).
//!
//! A backend's test file says `mod conformance;` and defines, at its root,
//! `fn run_conformance(test: &str, case: fn(&Subject))`: it builds the backend under test (a fresh
//! directory, token or device) and runs `case` against it; `test` is the test's full name, for
//! backends that re-run a test in a child process. Each case below is one `#[test]` in every file
//! that includes this module, named `conformance::<case>`.
//!
//! What only one backend has (PKCS#11 session loss and module restarts, PINs and passwords,
//! YubiHSM capabilities and domains, key file encryption, each backend's label rules) stays in
//! that backend's own tests. Where the backends legitimately differ on something the suite
//! checks, [`Subject`] has a field for it that says why.

use oryx_proto::antelope::{Checksum256, KeyType, PublicKey, Signature};
use oryx_signer::backend::{KeyBackend, KeyProvider};
use oryx_signer::signing::{SignOptions, sign};

mod cases;

/// A key backend under test.
pub(crate) struct Subject<'a> {
    /// What [`KeyProvider::kind`] says.
    pub(crate) kind: &'static str,
    /// Opens a provider on the directory, token or device under test. Every call opens another
    /// one on the same keys, as a restarted signer would.
    pub(crate) provider: &'a dyn Fn() -> Box<dyn KeyProvider>,
    /// Words in the refusal to generate a key under a label already in use (each backend words
    /// it its own way: PKCS#11 "already in use", the others "already exists").
    pub(crate) label_taken: &'static str,
    /// Words in the refusal to open a key the backend does not hold, before the key itself.
    pub(crate) no_such_key: &'static str,
    /// Whether a raw signature carries a recovery id hint: software keys compute it while
    /// signing, HSMs return only (r, s).
    pub(crate) recid_hint: bool,
}

/// Checks what [`sign`] promises for every backend: the signature is low-S, recovers to `key`
/// over `digest` and, for K1, is canonical.
fn check(key: &PublicKey, digest: &Checksum256, signature: &Signature) {
    assert_eq!(signature.recover(digest).unwrap(), *key);
    assert!(signature.is_low_s(), "high-S signature {signature}");
    if key.kind() == KeyType::K1 {
        assert!(
            signature.is_canonical(),
            "non-canonical K1 signature {signature}"
        );
    }
}

/// Signs `n` random digests with `backend` through [`sign`], checking each signature.
pub(crate) fn sign_and_check(backend: &dyn KeyBackend, n: usize) {
    for _ in 0..n {
        let mut digest = [0u8; 32];
        getrandom::fill(&mut digest).unwrap();
        let digest = Checksum256(digest);
        let signed = sign(backend, &digest, SignOptions::default()).unwrap();
        check(backend.public_key(), &digest, &signed.signature);
    }
}

/// One `#[test]` per case, named after it, handing the case to the including file's
/// `run_conformance`.
macro_rules! tests {
    ($($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                crate::run_conformance(concat!("conformance::", stringify!($case)), cases::$case);
            }
        )*
    };
}

tests!(
    generate_list_and_open,
    fifty_signatures_per_key_recover_and_k1_is_canonical,
    duplicate_label_is_refused,
    unknown_key_is_refused_on_open,
    eight_threads_sign_concurrently,
);
