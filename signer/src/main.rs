//! `oryx-signer`: the signing daemon and its admin commands.

use clap::Parser;

fn main() -> std::process::ExitCode {
    oryx_proto::process::quiet_on_broken_stdout();
    let cli = oryx_signer::commands::Cli::parse();
    match oryx_signer::commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => oryx_signer::cli_error::report("oryx-signer", &e),
    }
}
