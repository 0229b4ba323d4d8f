//! `oryx-signer`: the signing daemon, its admin commands, and the operator CLI.
//!
//! The daemon, from the wire inwards (each layer imports only the ones below it):
//!
//! - [`server`]: the only file that speaks gRPC — mTLS, the principal, decoding requests into
//!   domain values, building responses, and mapping [`refusal::Refused`] to a status once.
//! - [`pipeline`] (with `pipeline::approvals`): the one signing path — entry points for
//!   SignBlock, SignTransaction and SignDigest, then one spine (retire gate → authorize → reserve
//!   → sign → commit → audit) that approved requests take too. [`lifecycle`]: GenerateKey,
//!   RetireKey, SignTranscript (admins only), on the same key set, watermarks and audit log.
//! - [`authz`] (over the pure `oryx-policy`): who may have which key sign what.
//! - [`refusal`]: the answers every service gives — reasons, refusals, the admin check.
//! - the custody core: [`keyset`] (keys and their retire gate), [`signing`] (low-S, recovery id,
//!   the K1 canonical loop, verification), [`backend`] (sign one digest once: soft, PKCS#11,
//!   YubiHSM), [`watermark`] (double-sign rules and the durable store), [`audit`] (the
//!   hash-chained log, durable before every reply), [`approvals`] (pending requests and approval
//!   verification), [`registry`] (keys generated and retired at runtime), [`secret`] (PINs,
//!   passwords and passphrases read from files, zeroized, never printed).
//! - [`metrics`]: counters, stage histograms and `/metrics`, `/healthz`, `/readyz`.
//!
//! The binaries: [`commands`] is `oryx-signer` (start the daemon, init, keys, watermarks, audit,
//! policy, bench); [`cli`] is `oryx`, the operator and approver CLI that talks to a signer;
//! [`cli_error`] is the one error both return and `main` prints.
#![forbid(unsafe_code)]

pub mod admission;
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
pub mod refusal;
pub mod registry;
pub mod secret;
pub mod server;
pub mod signing;
pub mod wal;
pub mod watermark;

pub use lifecycle::transcript_digest;
