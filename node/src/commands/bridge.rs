//! `oryx-node bridge -c FILE`: the keosd wallet API for nodeos, forwarding to the signer.
//!
//! Prints `bridge listening on unix://PATH` / `bridge listening on http://ADDR` and
//! `metrics on ADDR` on stdout once each listener is up (scripts and tests wait for them).
//!
//! Guards: one bridge per unix socket (a second one is refused while the first holds
//! `<socket>.lock`), and on shutdown only the socket this bridge created is removed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oryx_proto::grpc;

use crate::NodeError;
use crate::bridge::token::ListenToken;
use crate::bridge::{Bridge, http};
use crate::commands::{ConfigArg, local_runtime, shutdown_signal};
use crate::config::Config;
use crate::failover::Signers;
use crate::latency::quantiles;

/// Arguments of `bridge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
}

/// How often the measured p99 is compared with nodeos's timeout.
const CHECK_EVERY: Duration = Duration::from_secs(10);

/// Runs the bridge until SIGINT/SIGTERM.
pub fn run(args: Args) -> Result<(), NodeError> {
    let cfg = Config::load(&args.config.config)?;
    let Some(b) = &cfg.bridge else {
        return Err(NodeError::ConfigFile {
            path: args.config.config.clone(),
            problem: "no [bridge] section: add one with chain_id and unix_socket (see deploy/oryx-node.toml)".into(),
        });
    };
    let chain = b.chain()?;
    let tls = cfg.client_tls()?;
    let timeout = Duration::from_millis(b.nodeos_timeout_ms);
    local_runtime()?.block_on(async {
        let signers = Signers::start(&cfg.signer.replicas(), &tls, cfg.signer.attempt_timeout());
        let bridge = Bridge::new(signers, chain, timeout);
        // Held until the end: the lock on `<socket>.lock`, and on drop the socket's removal
        // (only if it is still the one this bridge created).
        let mut socket_guard = None;
        if let Some(p) = &b.unix_socket {
            let (l, guard) = http::bind_unix(p)?;
            socket_guard = Some(guard);
            println!("bridge listening on unix://{}", p.display());
            tokio::spawn(http::serve_unix(l, Arc::clone(&bridge)));
        }
        if let (Some(a), Some(token_file)) = (b.listen, &b.listen_token_file) {
            let token = Arc::new(ListenToken::from_file(token_file)?);
            let (l, at) = http::bind_tcp(a).await?;
            println!("bridge listening on http://{at}");
            println!(
                "nodeos: KEOSD:http://{at}/<the token in {}>/v1/wallet/sign_digest",
                token_file.display()
            );
            tokio::spawn(http::serve_tcp(l, Arc::clone(&bridge), token));
        }
        if let Some(o) = &cfg.observability {
            let (l, at) = http::bind_tcp(o.listen).await?;
            println!("metrics on {at}");
            tokio::spawn(crate::observe::serve(l, Arc::clone(&bridge) as _));
        }
        tokio::spawn(startup_probe(Arc::clone(&bridge)));
        tokio::spawn(watch_latency(Arc::clone(&bridge)));
        shutdown_signal().await;
        drop(socket_guard);
        tracing::info!("bridge stopped");
        Ok(())
    })
}

/// Round trips measured at startup.
const PROBES: usize = 50;

/// At startup: the signer round trip (Status) and, once known, the signer's own signing time
/// per key; a WARN when their sum is above nodeos's timeout.
async fn startup_probe(bridge: Arc<Bridge>) {
    let signers = bridge.signers().clone();
    let Some((mut client, replica)) = signers.wait_connected(Duration::from_secs(30)).await else {
        tracing::warn!(
            signers = ?signers.addrs(),
            "no signer replica is reachable yet: nodeos's signing requests fail until one is"
        );
        return;
    };
    tracing::info!(%replica, "measuring the round trip to this signer replica");
    let mut rtts = Vec::with_capacity(PROBES);
    for _ in 0..PROBES {
        let t0 = Instant::now();
        if client.status(grpc::StatusRequest {}).await.is_err() {
            return;
        }
        rtts.push(t0.elapsed());
    }
    let Some(q) = quantiles(&mut rtts) else {
        return;
    };
    let keys = match client.list_keys(grpc::ListKeysRequest {}).await {
        Ok(r) => r.into_inner().keys,
        Err(s) => {
            tracing::warn!(
                reason = oryx_proto::client::reason(&s).as_deref().unwrap_or("?"),
                "cannot list the signer's keys: {}",
                s.message()
            );
            vec![]
        }
    };
    println!(
        "signer round trip p50 {:.3} ms, p99 {:.3} ms; nodeos timeout {} ms",
        ms(q.p50),
        ms(q.p99),
        bridge.timeout.as_millis()
    );
    let chain = bridge.chain();
    for k in keys
        .iter()
        .filter(|k| k.blind_digest && k.chain_ids.iter().any(|c| c[..] == chain.0[..]))
    {
        if k.sign_samples == 0 {
            tracing::info!(key = %k.public_key, "the signer has not measured this key's signing time yet");
            continue;
        }
        let sign = Duration::from_micros(u64::from(k.sign_p99_us));
        let estimate = q.p99 + sign;
        println!(
            "key {} ({}): signer signs in p50 {:.3} ms, p99 {:.3} ms; estimated sign_digest p99 {:.3} ms",
            k.public_key,
            k.backend,
            f64::from(k.sign_p50_us) / 1e3,
            ms(sign),
            ms(estimate)
        );
        if let Some(w) = over_timeout(q.p99, sign, bridge.timeout) {
            tracing::warn!(key = %k.public_key, "{w}");
        }
    }
    if q.p99 > bridge.timeout {
        tracing::warn!(
            "the signer round trip alone has p99 {:.2} ms, above nodeos's keosd-provider-timeout of {} ms: \
             nodeos will miss blocks; raise keosd-provider-timeout in config.ini or move the signer closer",
            ms(q.p99),
            bridge.timeout.as_millis()
        );
    }
}

/// The warning when a round trip plus the signer's signing time exceeds nodeos's timeout.
pub fn over_timeout(round_trip: Duration, signing: Duration, timeout: Duration) -> Option<String> {
    let estimate = round_trip + signing;
    (estimate > timeout).then(|| {
        format!(
            "estimated sign_digest p99 {:.2} ms (round trip {:.2} + signing {:.2}) is above nodeos's \
             keosd-provider-timeout of {} ms: nodeos will drop these signatures and miss blocks; \
             raise keosd-provider-timeout in config.ini (a YubiHSM 2 needs about 75 ms per signature)",
            ms(estimate),
            ms(round_trip),
            ms(signing),
            timeout.as_millis()
        )
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Every [`CHECK_EVERY`]: compares the measured p99 of recent `sign_digest`s with the timeout.
async fn watch_latency(bridge: Arc<Bridge>) {
    let mut warned_at: Option<Instant> = None;
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let Some(q) = bridge.latency.recent() else {
            continue;
        };
        if q.count < 10 || q.p99 <= bridge.timeout {
            continue;
        }
        if warned_at.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            continue;
        }
        warned_at = Some(Instant::now());
        tracing::warn!(
            "sign_digest p99 is {:.2} ms over the last {} requests, above nodeos's keosd-provider-timeout of {} ms: \
             nodeos drops these signatures and misses blocks; raise keosd-provider-timeout \
             (a YubiHSM 2 needs about 75 ms per signature)",
            q.p99.as_secs_f64() * 1e3,
            q.count,
            bridge.timeout.as_millis()
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_yubihsm_behind_nodeos_default_timeout_is_flagged() {
        let ms = Duration::from_millis;
        let w = over_timeout(Duration::from_micros(300), ms(75), ms(5)).unwrap();
        assert!(
            w.contains("75.30 ms") && w.contains("keosd-provider-timeout of 5 ms"),
            "{w}"
        );
        assert_eq!(over_timeout(Duration::from_micros(300), ms(1), ms(5)), None);
        assert!(over_timeout(Duration::from_micros(300), ms(75), ms(100)).is_none());
    }
}
