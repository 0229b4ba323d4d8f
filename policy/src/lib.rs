//! `oryx-policy`: pure permission decisions — no I/O, no async. Given a principal, a key, a
//! chain and a decoded request, a policy answers Allow, Deny(reason) or NeedsApprovals.
//!
//! The policy engine is built by the permission-policies issue; this crate holds its place in
//! the workspace so the signer's seam has a home. Until then nothing here allows anything.
#![forbid(unsafe_code)]
