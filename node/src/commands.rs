//! The `oryx-node` subcommands, one file each.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::NodeError;

pub mod bench;
pub mod bridge;
pub mod produce;

/// oryx-node: the producer host's side of Oryx.
#[derive(Debug, Parser)]
#[command(name = "oryx-node", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the keosd wallet API to nodeos on a unix socket (and optionally loopback TCP).
    Bridge(bridge::Args),
    /// Assemble and sign blocks for a local test chain.
    Produce(produce::Args),
    /// Measure sign_digest latency through a running bridge, beside its floors.
    Bench(bench::Args),
}

/// Runs one subcommand.
pub fn run(cli: Cli) -> Result<(), NodeError> {
    init_tracing();
    match cli.command {
        Command::Bridge(a) => bridge::run(a),
        Command::Produce(a) => produce::run(a),
        Command::Bench(a) => bench::run(a),
    }
}

/// `-c FILE`, shared by the daemons.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The configuration file.
    #[arg(short, long, default_value = "/etc/oryx/oryx-node.toml")]
    pub config: PathBuf,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| oryx_proto::process::LogStderr)
        .try_init();
}

/// A single-threaded tokio runtime: the node's work is one request at a time on a few
/// connections, and keeping every task (HTTP connection, gRPC client, HTTP/2 connection) on one
/// thread saves the cross-thread wake-ups that dominate a sub-millisecond round trip.
pub fn local_runtime() -> Result<tokio::runtime::Runtime, NodeError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(NodeError::Runtime)
}

/// A multi-threaded tokio runtime for a daemon.
pub fn runtime() -> Result<tokio::runtime::Runtime, NodeError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(NodeError::Runtime)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}; stop with SIGINT");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
