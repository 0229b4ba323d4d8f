//! `oryx-signer`: the signing daemon and the operator CLI.
//!
//! - [`backend`]: the [`backend::KeyBackend`] seam that every key store (soft, PKCS#11, YubiHSM)
//!   implements: sign one digest once, nothing else.
//! - [`signing`]: everything above the backends that turns a raw (r, s) into a signature nodes
//!   accept — low-S, recovery id, the K1 canonical loop — and verifies it by recovery before it
//!   leaves.
//! - [`watermark`]: double-sign protection — the rules and the durable store that records a
//!   reservation before any signature exists.
//! - [`audit`]: the hash-chained, append-only audit log, durable before every reply, and its
//!   verifier.
//! - [`approvals`]: requests waiting for M of N approvers, and the verification of approvals.
//! - [`lifecycle`], [`registry`], [`keyset`]: keys generated and retired at runtime (rotation
//!   ceremonies), their durable registry, and the key set the pipeline reads.
//! - [`secret`]: PINs, passwords and passphrases read from files, zeroized and never printed.
//! - [`cli`]: the `oryx` operator and approver CLI; [`commands`]: the `oryx-signer` daemon's
//!   commands; [`cli_error`]: the one error both trees return and `main` prints.
#![forbid(unsafe_code)]

pub mod approvals;
pub mod audit;
pub mod authz;
pub mod backend;
pub mod cli;
pub mod cli_error;
pub use oryx_proto::client;
pub mod clock;
pub mod commands;
pub mod config;
pub use oryx_proto::durable;
pub mod keyset;
pub mod lifecycle;
pub mod metrics;
pub mod pipeline;
pub mod pki;
pub mod providers;
pub mod r1verify;
pub mod registry;
pub mod secret;
pub mod server;
pub mod signing;
pub mod watermark;

pub use lifecycle::transcript_digest;
