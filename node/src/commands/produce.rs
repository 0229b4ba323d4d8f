//! `oryx-node produce -c FILE`: the block assembler loop (see [`crate::produce::producer`]).

use crate::NodeError;
use crate::commands::{ConfigArg, runtime, shutdown_signal};
use crate::config::Config;
use crate::failover::Signers;
use crate::produce::producer::Producer;

/// Arguments of `produce`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
}

/// Runs the producer loop until SIGINT or SIGTERM.
pub fn run(args: Args) -> Result<(), NodeError> {
    let path = &args.config.config;
    let cfg = Config::load(path)?;
    let produce = cfg.produce.as_ref().ok_or_else(|| NodeError::ConfigFile {
        path: path.clone(),
        problem: "no [produce] section: add one with chain_id, producer, public_key and block_log"
            .into(),
    })?;
    let settings = produce.settings()?;
    let tls = cfg.client_tls()?;
    runtime()?.block_on(async move {
        let signers = Signers::start(&cfg.signer.replicas(), &tls, cfg.signer.attempt_timeout());
        let mut producer = Producer::open(settings, signers)?;
        if let Some(o) = &cfg.observability {
            let (l, at) = crate::bridge::http::bind_tcp(o.listen).await?;
            println!("metrics on {at}");
            tokio::spawn(crate::observe::serve(l, producer.stats() as _));
        }
        producer.run(shutdown_signal()).await;
        Ok(())
    })
}
