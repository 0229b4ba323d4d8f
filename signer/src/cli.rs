//! `oryx`: the operator and approver CLI (`src/bin/oryx.rs`) — see what is being signed, convert
//! and generate keys, sign a digest offline, approve requests, run key ceremonies. The daemon's
//! own commands are the other tree, [`crate::commands`] (`oryx-signer`).
//!
//! Guards: every command returns a [`CliError`] that `main` prints as one clear line on stderr
//! with a non-zero exit ([`crate::cli_error`], shared with `oryx-signer`); with
//! `--json` the field names are stable, so scripts and other tools can rely on them. Private
//! keys are read from files (or stdin), never echoed in errors.

use std::path::Path;

use clap::{Parser, Subcommand};
use serde_json::Value;

pub mod approvals;
pub mod approve;
pub mod ceremony;
pub mod inspect;
pub mod key;
mod output;
pub mod remote;
pub mod sign_digest;
pub mod tapos;

pub use crate::cli_error::CliError;
pub use output::print;

/// The `oryx` command line.
#[derive(Debug, Parser)]
#[command(
    name = "oryx",
    version,
    about = "Oryx operator and approver CLI: inspect what is signed, manage keys"
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode a transaction, block header or signature and show its digest.
    #[command(subcommand)]
    Inspect(inspect::Inspect),
    /// Convert or generate keys.
    #[command(subcommand)]
    Key(key::Key),
    /// Sign a 32-byte digest with a software key from a file (tests and offline use).
    SignDigest(sign_digest::SignDigest),
    /// Requests waiting for approvals: list, show, submit offline approvals.
    #[command(subcommand)]
    Approvals(approvals::Approvals),
    /// Approve a request with your own key, online or offline.
    Approve(approve::Approve),
    /// TaPoS fields and expiration from a carried get_info/get_block JSON answer.
    Tapos(tapos::Tapos),
    /// Key rotation and multisig ceremonies with a signed transcript.
    #[command(subcommand)]
    Ceremony(ceremony::Ceremony),
}

/// Runs one command and returns what it prints.
pub fn run(cli: &Cli) -> Result<Value, CliError> {
    match &cli.command {
        Command::Inspect(cmd) => cmd.run(),
        Command::Key(cmd) => cmd.run(),
        Command::SignDigest(cmd) => cmd.run(cli.json),
        Command::Approvals(cmd) => cmd.run(),
        Command::Approve(cmd) => cmd.run(),
        Command::Tapos(cmd) => cmd.run(),
        Command::Ceremony(cmd) => cmd.run(),
    }
}

/// Largest input file the CLI reads (a transaction is at most 512 KiB on chain; hex doubles it).
pub const MAX_INPUT_BYTES: u64 = 4 << 20;

/// Reads a whole input file, refusing anything larger than [`MAX_INPUT_BYTES`].
pub(crate) fn read_input(path: &Path) -> Result<String, CliError> {
    let file = std::fs::File::open(path).map_err(|e| CliError::io(path, e))?;
    read_capped(file, &path.display().to_string(), |e| CliError::io(path, e))
}

/// The file named by `arg`, or standard input when it is `-`, capped like [`read_input`].
pub(crate) fn read_input_or_stdin(arg: &str) -> Result<String, CliError> {
    if arg != "-" {
        return read_input(Path::new(arg));
    }
    read_capped(std::io::stdin().lock(), "stdin", |e| {
        CliError::Other(format!("stdin: {e}"))
    })
}

/// Reads at most [`MAX_INPUT_BYTES`] from `r` (named `what` in errors).
fn read_capped(
    r: impl std::io::Read,
    what: &str,
    io_error: impl FnOnce(std::io::Error) -> CliError,
) -> Result<String, CliError> {
    use std::io::Read as _;
    let mut text = String::new();
    r.take(MAX_INPUT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io_error)?;
    if text.len() as u64 > MAX_INPUT_BYTES {
        return Err(CliError::Other(format!(
            "{what}: larger than {MAX_INPUT_BYTES} bytes"
        )));
    }
    Ok(text)
}
