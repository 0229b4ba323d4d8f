//! The `oryx` CLI.
