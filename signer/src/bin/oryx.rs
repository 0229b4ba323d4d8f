//! `oryx`: the operator and approver CLI.

use std::io::Write as _;

use clap::Parser;
use oryx_signer::cli::{Cli, print, run};
use oryx_signer::cli_error::{CliError, report};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(value) => {
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{}", print(&value, cli.json)).and_then(|()| out.flush()) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                // The reader took what it wanted and left (`oryx inspect … | head`): done.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => report("oryx", &CliError::Other(format!("writing to stdout: {e}"))),
            }
        }
        Err(e) => report("oryx", &e),
    }
}
