//! `oryx-node bench` (being built).

use crate::commands::ConfigArg;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
}

/// Runs `bench`.
pub fn run(_args: Args) -> Result<(), String> {
    Err("bench: not built yet".into())
}
