//! `oryx-node`: the keosd bridge for nodeos, the block assembler, and the bridge benchmark.

use std::process::ExitCode;

use clap::Parser as _;
use oryx_node::commands::{Cli, run};

fn main() -> ExitCode {
    oryx_proto::process::quiet_on_broken_stdout();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oryx-node: {e}");
            ExitCode::FAILURE
        }
    }
}
