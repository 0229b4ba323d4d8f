//! The signer's gRPC service, `oryx.v1.Signer`, generated from `proto/oryx/v1/signer.proto`.
//!
//! Guards: one versioned wire contract between `oryx-node`, the `oryx` CLI and the signer.

#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
mod generated {
    tonic::include_proto!("oryx.v1");
}

pub use generated::*;

/// The metadata key that carries a refusal's [`Reason`] name.
pub const REASON_METADATA: &str = "oryx-reason";

/// The metadata key that carries the id of a request stored for approvals.
pub const REQUEST_ID_METADATA: &str = "oryx-request-id";

/// The metadata key that carries a refusal's audit log position, `SEQ:HASH` (the form
/// `oryx-signer audit verify --anchor` takes).
pub const AUDIT_METADATA: &str = "oryx-audit";

/// Largest message either side decodes (a transaction is at most 512 KiB on chain).
pub const MAX_MESSAGE_BYTES: usize = 2 << 20;
