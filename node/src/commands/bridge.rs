//! `oryx-node bridge` (being built).

use crate::commands::ConfigArg;

/// Arguments of `bridge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
}

/// Runs `bridge`.
pub fn run(_args: Args) -> Result<(), String> {
    Err("bridge: not built yet".into())
}
