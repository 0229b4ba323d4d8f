//! `oryx`: the operator and approver CLI.

use clap::Parser;
use oryx_signer::cli::{Cli, print, run};
use oryx_signer::cli_error::report;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(value) => {
            println!("{}", print(&value, cli.json));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => report("oryx", &e),
    }
}
