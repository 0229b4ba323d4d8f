//! `oryx-signer` commands: one file per subcommand, nested like the command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub mod audit;
pub mod bench;
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
    pub fn load(&self) -> Result<crate::config::Config, String> {
        crate::config::Config::load(&self.config).map_err(|e| e.to_string())
    }
}

/// Runs a command; `Err` is one line for stderr.
pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Init(c) => c.run(),
        Command::Start(c) => c.run(),
        Command::Keys(c) => c.run(),
        Command::Watermark(c) => c.run(),
        Command::Audit(c) => c.run(),
        Command::Policy(c) => c.run(),
        Command::Bench(c) => c.run(),
    }
}
