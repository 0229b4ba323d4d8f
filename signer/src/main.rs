//! `oryx-signer`: the signing daemon and its admin commands.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = oryx_signer::commands::Cli::parse();
    match oryx_signer::commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => oryx_signer::cli_error::report("oryx-signer", &e),
    }
}
