//! `oryx-node`: the producer-host side of Oryx — the keosd-compatible bridge for unmodified
//! nodeos and the content-aware block assembler. Both arrive with the oryx-node issue; the
//! crate is laid out now so the workspace has its final shape.
#![forbid(unsafe_code)]
