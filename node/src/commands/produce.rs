//! `oryx-node produce -c FILE`: the block assembler loop.

use crate::commands::ConfigArg;

/// Arguments of `produce`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
}

/// Runs the producer loop.
pub fn run(args: Args) -> Result<(), String> {
    Err(format!(
        "produce ({}): the block assembler is not built yet",
        args.config.config.display()
    ))
}
