//! `oryx-node`: the producer-host side of Oryx.
//!
//! - [`bridge`]: the keosd wallet API for unmodified nodeos and cleos, forwarding to the signer
//!   over one long-lived mTLS connection per replica ([`upstream`]), failing over between
//!   replicas ([`failover`]). It holds no key.
//! - [`produce`]: the content-aware block assembler that hands the signer whole headers.
//! - [`observe`]: `/metrics` and `/healthz` for either daemon.
//! - [`latency`]: the node's own end-to-end latency, compared with nodeos's timeout.
//! - [`error`]: [`NodeError`], what can fail, by what a caller can do about it.
//!
//! Guards: nothing here ever holds a private key; everything the node sends the signer can be
//! refused there, and a refusal is passed on to nodeos in keosd's error shape.
#![forbid(unsafe_code)]

pub mod bridge;
pub mod commands;
pub mod config;
pub mod error;
pub mod failover;
pub mod latency;
pub mod observe;
pub mod produce;
pub mod upstream;

pub use error::NodeError;
