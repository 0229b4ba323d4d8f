//! `oryx-signer`: the daemon's commands (`src/main.rs`) — `start` and the admin commands, one file
//! per subcommand, nested like the command line. The operator and approver CLI is the other tree,
//! [`crate::cli`] (`oryx`); both return a [`CliError`] that `main` prints as one line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cli_error::CliError;

pub mod audit;
pub mod bench;
pub mod certs;
pub mod init;
pub mod keys;
pub mod policy;
pub mod start;
pub mod watermark;

/// The `oryx-signer` command line.
#[derive(Debug, Parser)]
#[command(
    name = "oryx-signer",
    version,
    about = "Oryx signer: HSM-held keys, double-sign protection, audit log, over mTLS gRPC"
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a working configuration, a CA, server and client certificates and a default-deny
    /// allow-list into a new directory.
    Init(init::Init),
    /// Run the signer.
    Start(start::Start),
    /// Generate or list keys on a configured backend.
    #[command(subcommand)]
    Keys(keys::Keys),
    /// Show, export or import double-sign watermarks.
    #[command(subcommand)]
    Watermark(watermark::Watermark),
    /// Issue, revoke and list mTLS certificates with the operator CA (run where the CA
    /// directory is, offline).
    #[command(subcommand)]
    Certs(certs::Certs),
    /// Check a policy file.
    #[command(subcommand)]
    Policy(policy::Policy),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(audit::Audit),
    /// Drive a running signer over mTLS and print latency and throughput beside measured floors.
    Bench(bench::Bench),
}

/// The `--config` argument shared by commands that read the signer's configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The signer's configuration file.
    #[arg(long, short, default_value = "oryx-signer.toml")]
    pub config: PathBuf,
}

impl ConfigArg {
    /// Loads the configuration.
    pub fn load(&self) -> Result<crate::config::Config, CliError> {
        Ok(crate::config::Config::load(&self.config)?)
    }
}

/// Runs a command; `main` prints an `Err` as one line on stderr.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Init(c) => c.run(),
        Command::Start(c) => c.run(),
        Command::Keys(c) => c.run(),
        Command::Watermark(c) => c.run(),
        Command::Certs(c) => c.run(),
        Command::Audit(c) => c.run(),
        Command::Policy(c) => c.run(),
        Command::Bench(c) => c.run(),
    }
}
