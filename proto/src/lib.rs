//! Oryx wire formats.
//!
//! - [`antelope`]: the Antelope binary formats (names, assets, keys, signatures, transactions,
//!   block headers) and the digests the chain checks. Pure functions over bytes and values: no
//!   I/O, no clocks, no randomness, so they can be trusted, tested against real-chain vectors and
//!   fuzzed.
//! - [`blocklog`]: the producer's block log (append-only, crash-safe) and its readers; file I/O at
//!   the edge, shared by `oryx-node produce` and `oryx inspect blocklog`.
//! - [`stats`]: latency windows (p50/p99 of recent samples) the signer and the node share.
//! - `grpc` (feature `grpc`, on by default): the signer's gRPC service `oryx.v1.Signer`
//!   (generated from `oryx/v1/signer.proto`).
//! - `client` (feature `grpc`): the mTLS client for that service.
//!
//! Without the `grpc` feature this crate pulls in no async runtime, HTTP/2, TLS or tonic, so
//! `oryx-policy` can depend on the formats and stay pure.
//!
//! Every decoder here takes untrusted bytes: it returns an [`Error`] and never panics.
#![forbid(unsafe_code)]

pub mod antelope;
pub mod blocklog;
#[cfg(feature = "grpc")]
pub mod client;
pub mod durable;
mod error;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod process;
pub mod stats;

pub use error::Error;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
