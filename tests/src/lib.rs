//! Shared helpers for Oryx's end-to-end and conformance tests.
//!
//! - [`harness`]: the real `oryx-signer` binary in a temp dir, its mTLS clients, SoftHSM2 tokens
//!   and block headers, for the signer's and the node's integration tests;
//! - [`vectors`]: loading the real-chain vectors (`tests/vectors/antelope.json`, plus any file
//!   named by `ORYX_VECTORS` and the shared copy beside the repository when present);
//! - [`wharfkit`]: driving `@wharfkit/antelope` (npm) through `tests/js/wharfkit-check.mjs`, an
//!   independent implementation to check Oryx against;
//! - [`etcd`]: a real etcd cluster on loopback ports with TLS client certificates, for the
//!   replicated watermark store; [`replicas`]: signer replicas of one key on such a cluster;
//!   [`checker`]: no height or slot signed for two digests, every signature recovering.

pub mod checker;
pub mod etcd;
pub mod harness;
pub mod replicas;
pub mod vectors;
pub mod wharfkit;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}
