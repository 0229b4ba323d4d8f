//! `oryx-signer bench`: load a running signer over mTLS and print what it costs beside the
//! floors measured in the same run on the same machine.
//!
//! - SignBlock latency (p50/p99) for a stream of Savanna headers, one at a time, as a producer
//!   sends them;
//! - SignTransaction throughput with N concurrent clients, each on its own connection;
//! - floors: one raw backend signature (the key opened locally from the same config), one 64-byte
//!   write + fdatasync in the watermark directory, one mTLS gRPC round trip (ListKeys).
//!
//! Numbers are printed, never asserted: machines are noisy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use oryx_proto::antelope::block::BlockHeader;
use oryx_proto::antelope::transaction::{Action, Transaction};
use oryx_proto::antelope::{
    BlockTimestamp, Bytes, Checksum256, Name, Pack, PermissionLevel, TimePointSec, VarUint32,
};
use oryx_proto::grpc;

use crate::cli_error::CliError;
use crate::client::{ClientTls, connect};
use crate::commands::ConfigArg;

mod against;
mod reference;

/// Arguments.
#[derive(Debug, Args)]
pub struct Bench {
    #[command(flatten)]
    config: ConfigArg,
    /// Client principal: uses `tls/NAME.pem` and `tls/NAME.key` beside the config.
    #[arg(long, default_value = "node1")]
    client: String,
    /// SignBlock requests to time.
    #[arg(long, default_value_t = 500)]
    blocks: u32,
    /// SignTransaction requests in total.
    #[arg(long, default_value_t = 2000)]
    transactions: u32,
    /// Concurrent SignTransaction clients.
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
    /// The key to use (default: the first configured key).
    #[arg(long)]
    key: Option<String>,
    /// Run against a public chain's id anyway. The bench signs made-up blocks at heights above
    /// the key's watermark, so a production key would then refuse the real blocks at those
    /// heights: only for keys that never produce on that chain.
    #[arg(long)]
    allow_public_chain: bool,
    /// Rounds of the comparison with the reference (each a block of every call kind).
    #[arg(long, default_value_t = 6)]
    rounds: u32,
    /// Calls per block of a round.
    #[arg(long, default_value_t = 50)]
    block: u32,
    /// Concurrent clients for the throughput comparison.
    #[arg(long, default_value_t = 16)]
    clients: u32,
    /// SignTransaction calls per client in the throughput comparison.
    #[arg(long, default_value_t = 100)]
    per_client: u32,
    /// Internal: serve the references in this process (the bench starts it as a child, so the
    /// references run in a process of their own, as the product does) until stdin closes.
    #[arg(long, hide = true)]
    serve_reference: bool,
}

/// The key `--key` names (by its text, or its legacy `EOS…` text), else the first configured.
fn chosen_key(
    config: &crate::config::Config,
    key: Option<&str>,
) -> Result<crate::config::KeyConfig, CliError> {
    match key {
        Some(k) => config.keys.iter().find(|c| {
            c.public_key.to_string() == k || c.public_key.to_legacy_string().as_deref() == Some(k)
        }),
        None => config.keys.first(),
    }
    .cloned()
    .ok_or_else(|| CliError::Other("no such key in the config".into()))
}

/// The chain the bench signs on — `key`'s first, named as the config allows (name, alias or
/// id) — and the options the signer signs a block with there.
fn key_chain(
    config: &crate::config::Config,
    key: &crate::config::KeyConfig,
) -> Result<(Checksum256, crate::signing::SignOptions), CliError> {
    let id = key
        .chains
        .first()
        .and_then(|n| config.chain_id(n))
        .ok_or_else(|| CliError::Other("the key names no chain".into()))?;
    let chain = config
        .chains
        .iter()
        .find(|c| config.chain_id(&c.name) == Some(id))
        .ok_or_else(|| CliError::Other("the key's chain is not configured".into()))?;
    Ok((
        id,
        crate::signing::SignOptions::for_chain(chain).for_block(),
    ))
}

/// The bench key's backend, opened locally from the same config.
fn open_backend(
    config: &crate::config::Config,
    key: &crate::config::KeyConfig,
) -> Result<std::sync::Arc<dyn crate::backend::KeyBackend>, CliError> {
    let providers = crate::providers::open_all(config)?;
    Ok(providers
        .get(&key.backend)
        .ok_or_else(|| CliError::Other("backend missing".into()))?
        .open(&key.public_key)?)
}

/// The mean of `v` (zero when empty).
fn mean(v: &[Duration]) -> Duration {
    v.iter().sum::<Duration>() / u32::try_from(v.len().max(1)).unwrap_or(u32::MAX)
}

/// Percentile of sorted durations.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    pct(&v, 0.5)
}

/// The signer's `(sum seconds, count)` per stage from its `/metrics`, if it can be reached.
fn stage_totals(metrics: Option<std::net::SocketAddr>) -> Option<Vec<(String, f64, u64)>> {
    use std::io::{Read as _, Write as _};
    let addr = metrics?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let value = |line: &str| line.rsplit(' ').next()?.parse::<f64>().ok();
    let mut out: Vec<(String, f64, u64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("oryx_stage_duration_seconds_") else {
            continue;
        };
        let Some((field, tail)) = rest.split_once("{stage=\"") else {
            continue;
        };
        let Some((stage, _)) = tail.split_once('"') else {
            continue;
        };
        let i = match out.iter().position(|(s, _, _)| s == stage) {
            Some(i) => i,
            None => {
                out.push((stage.to_string(), 0.0, 0));
                out.len() - 1
            }
        };
        match field {
            "sum" => out[i].1 = value(line)?,
            "count" => out[i].2 = value(line)? as u64,
            _ => {}
        }
    }
    Some(out)
}

/// Mean time per stage between two `/metrics` readings, as one line.
fn stage_means(before: &[(String, f64, u64)], after: &[(String, f64, u64)]) -> String {
    let mut parts = Vec::new();
    for (stage, sum, count) in after {
        let (s0, c0) = before
            .iter()
            .find(|(s, _, _)| s == stage)
            .map_or((0.0, 0), |(_, s, c)| (*s, *c));
        if *count > c0 {
            let mean = (sum - s0) / (count - c0) as f64;
            parts.push(format!("{stage} {:.3} ms", mean * 1e3));
        }
    }
    parts.join(", ")
}

/// A Savanna header for block `n` at slot `slot`.
pub fn savanna_header(n: u32, slot: u32, producer: Name) -> BlockHeader {
    let mut previous = [0x11u8; 32];
    previous[..4].copy_from_slice(&(n - 1).to_be_bytes());
    BlockHeader {
        timestamp: BlockTimestamp(slot),
        producer,
        confirmed: 0,
        previous: Checksum256(previous),
        transaction_mroot: Checksum256::default(),
        action_mroot: Checksum256::hash(&n.to_le_bytes()),
        schedule_version: oryx_proto::antelope::block::SAVANNA_SCHEDULE_VERSION,
        new_producers: None,
        header_extensions: vec![oryx_proto::antelope::transaction::Extension(
            2,
            Bytes([&(n - 1).to_le_bytes()[..], &[1, 0, 0]].concat()),
        )],
    }
}

fn transfer(i: u32) -> Transaction {
    let alice = Name(0x3440_0000_0000_0000 | u64::from(i));
    Transaction {
        expiration: TimePointSec(2_000_000_000),
        ref_block_num: (i & 0xffff) as u16,
        ref_block_prefix: i,
        max_net_usage_words: VarUint32(0),
        max_cpu_usage_ms: 0,
        delay_sec: VarUint32(0),
        context_free_actions: vec![],
        actions: vec![Action {
            account: Name(0x5530_ea03_3482_a600),
            name: Name(0xcdcd_3c2d_5700_0000),
            authorization: vec![PermissionLevel {
                actor: alice,
                permission: Name(0x3232_eda8_0000_0000),
            }],
            data: Bytes(i.to_le_bytes().repeat(8)),
        }],
        transaction_extensions: vec![],
    }
}

impl Bench {
    /// Runs the benchmark.
    pub fn run(self) -> Result<(), CliError> {
        let config = self.config.load()?;
        if self.serve_reference {
            return against::serve_references(&config, self.key.as_deref());
        }
        let base = self
            .config
            .config
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf();
        let tls = ClientTls::from_files(
            &config.server.ca_cert,
            &base.join(format!("tls/{}.pem", self.client)),
            &base.join(format!("tls/{}.key", self.client)),
            "localhost",
        )?;
        let key_cfg = chosen_key(&config, self.key.as_deref())?;
        let (chain_id, opts) = key_chain(&config, &key_cfg)?;
        if let Some(name) = oryx_proto::antelope::chain::chain_name(&chain_id)
            && !self.allow_public_chain
        {
            return Err(CliError::Other(format!(
                "the key's chain is {name}: bench signs made-up blocks and would raise a production key's watermark; \
                 use a development chain (`oryx-signer init --dev`) or pass --allow-public-chain"
            )));
        }
        let mut addr = config.server.listen.to_string();
        if config.server.listen.ip().is_unspecified() {
            addr = format!("127.0.0.1:{}", config.server.listen.port());
        }

        // Start above whatever this key has signed on this chain (read-only look at the store).
        let above = {
            use crate::watermark::WatermarkStore as _;
            let store = crate::watermark::file::FileStore::open_read_only(&config.watermarks.dir)
                .map_err(CliError::other)?;
            // The watermark the key signs under (its producer's, when grouped).
            let key =
                crate::watermark::Scopes::new(&config.producer_groups().map_err(CliError::other)?)
                    .of(chain_id, key_cfg.public_key);
            store
                .get(&key)
                .map_err(CliError::other)?
                .map_or(0, |w| w.block_num.max(w.slot))
        };

        // Floor 1: the raw backend, opened locally from the same config.
        let backend = open_backend(&config, &key_cfg)?;
        let device = reference::RefKey::is_device(backend.as_ref());
        let mut raw = Vec::new();
        for i in 0..200u32 {
            let d = Checksum256::hash(&i.to_le_bytes());
            let t = Instant::now();
            backend.sign_digest(&d, 1)?;
            raw.push(t.elapsed());
        }
        let raw_sign = median(raw);
        // The signature as the signer returns it for a block: the same calls with the same options
        // (canonical loop, parallel attempts, recovery id: `signing::sign`), beside the signer's
        // own `sign` stage (a mean).
        let mut finished = Vec::new();
        for i in 0..200u32 {
            let d = Checksum256::hash(&(i + 1_000).to_le_bytes());
            let t = Instant::now();
            crate::signing::sign(backend.as_ref(), &d, opts)
                .map_err(|e| CliError::Other(format!("bench signature: {e}")))?;
            finished.push(t.elapsed());
        }
        let finished_mean = mean(&finished);
        let finished_sign = median(finished);
        // The same device calls from two threads at once: whether the backend signs in
        // parallel (what `parallel_k1_attempts` and concurrent clients can gain).
        let per_thread = 200u32;
        let started = Instant::now();
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..2u32)
                .map(|t| {
                    let backend = &backend;
                    s.spawn(move || {
                        for i in 0..per_thread {
                            let d = Checksum256::hash(&(t * per_thread + i).to_le_bytes());
                            backend.sign_digest(&d, 1)?;
                        }
                        Ok::<(), CliError>(())
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .map_err(|_| CliError::Other("bench thread panicked".into()))?
            })
        })?;
        let raw_tps_two = f64::from(2 * per_thread) / started.elapsed().as_secs_f64();

        // Floor 2: one small write + fdatasync where the watermarks live.
        let probe_path = config.watermarks.dir.join(".bench-fsync");
        let mut syncs = Vec::new();
        {
            use std::os::unix::fs::FileExt as _;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&probe_path)
                .map_err(|e| CliError::io(&probe_path, e))?;
            for i in 0..200u64 {
                let t = Instant::now();
                f.write_all_at(&[i as u8; 64], 0)
                    .and_then(|()| f.sync_data())
                    .map_err(|e| CliError::io(&probe_path, e))?;
                syncs.push(t.elapsed());
            }
        }
        let _ = std::fs::remove_file(&probe_path);
        let fsync = median(syncs);

        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(CliError::other)?;
        // Where the signer's time goes (its per-stage histograms), when its metrics port is
        // a fixed one this command can find in the config.
        let metrics_addr = config
            .observability
            .as_ref()
            .map(|o| o.listen)
            .filter(|a| a.port() != 0);
        rt.block_on(async move {
            let mut client = connect(&addr, &tls).await?;
            // Floor 3: an mTLS gRPC round trip on a warm connection.
            let mut rtts = Vec::new();
            for _ in 0..200 {
                let t = Instant::now();
                client
                    .list_keys(grpc::ListKeysRequest {})
                    .await
                    .map_err(|e| e.to_string())?;
                rtts.push(t.elapsed());
            }
            let rtt = median(rtts);

            // SignBlock latency: heights above anything signed before (the wall clock's slot).
            let base_slot = crate::clock::now_slot().max(above.saturating_add(1));
            let stages_before = stage_totals(metrics_addr);
            let mut lat = Vec::new();
            for i in 0..self.blocks {
                let n = base_slot + i;
                let header = savanna_header(n, base_slot + i, Name(0x5530_ea00_0000_0000));
                let t = Instant::now();
                client
                    .sign_block(grpc::SignBlockRequest {
                        chain_id: chain_id.0.to_vec(),
                        public_key: key_cfg.public_key.to_string(),
                        header: header.packed(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| {
                        format!(
                            "SignBlock: {} ({:?})",
                            e.message(),
                            crate::client::reason(&e)
                        )
                    })?;
                lat.push(t.elapsed());
            }
            let stages = match (stages_before, stage_totals(metrics_addr)) {
                (Some(b), Some(a)) => stage_means(&b, &a),
                _ => "unknown (give the signer a fixed [observability] port to see them)".into(),
            };
            // Double-sign protection at the last height: an identical retry gets the same
            // signature back; a different header at that height is refused.
            let last = base_slot + self.blocks.max(1) - 1;
            let request = |h: &BlockHeader| grpc::SignBlockRequest {
                chain_id: chain_id.0.to_vec(),
                public_key: key_cfg.public_key.to_string(),
                header: h.packed(),
                ..Default::default()
            };
            let same = savanna_header(last, last, Name(0x5530_ea00_0000_0000));
            let mut conflicting = same.clone();
            conflicting.transaction_mroot = Checksum256([0xee; 32]);
            let replay = client.sign_block(request(&same)).await.map(|r| r.into_inner().replayed);
            let conflict = client.sign_block(request(&conflicting)).await;
            let double_sign = match (&replay, &conflict) {
                (Ok(true), Err(e)) if crate::client::reason(e).as_deref() == Some("DOUBLE_SIGN") => {
                    format!("identical retry replayed; conflicting header at block {last} refused: DOUBLE_SIGN")
                }
                _ => format!("UNEXPECTED: replay {replay:?}, conflict {:?}", conflict.map(|r| r.into_inner())),
            };
            lat.sort();
            let (p50, p99) = (pct(&lat, 0.5), pct(&lat, 0.99));

            // SignTransaction throughput with N clients.
            let per = self.transactions / self.concurrency.max(1);
            let started = Instant::now();
            let mut tasks = Vec::new();
            let tls = Arc::new(tls);
            for c in 0..self.concurrency.max(1) {
                let tls = tls.clone();
                let addr = addr.clone();
                let key = key_cfg.public_key.to_string();
                tasks.push(tokio::spawn(async move {
                    let mut client = connect(&addr, &tls).await?;
                    for i in 0..per {
                        let trx = transfer(c * 1_000_000 + i);
                        client
                            .sign_transaction(grpc::SignTransactionRequest {
                                chain_id: chain_id.0.to_vec(),
                                public_key: key.clone(),
                                transaction: Some(
                                    grpc::sign_transaction_request::Transaction::PackedTrx(
                                        trx.packed(),
                                    ),
                                ),
                                context_free_data: vec![],
                                msig_proposals: vec![],
                            })
                            .await
                            .map_err(|e| format!("SignTransaction: {}", e.message()))?;
                    }
                    Ok::<u32, String>(per)
                }));
            }
            let mut done = 0u32;
            for t in tasks {
                done += t.await.map_err(|e| e.to_string())??;
            }
            let secs = started.elapsed().as_secs_f64();
            let tps = f64::from(done) / secs;
            let raw_tps = 1.0 / raw_sign.as_secs_f64().max(1e-9);

            // The transport's own ceiling: the same number of clients and requests, each a
            // ListKeys (mTLS + gRPC, nothing signed, nothing written).
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..self.concurrency.max(1) {
                let tls = tls.clone();
                let addr = addr.clone();
                tasks.push(tokio::spawn(async move {
                    let mut client = connect(&addr, &tls).await?;
                    for _ in 0..per {
                        client
                            .list_keys(grpc::ListKeysRequest {})
                            .await
                            .map_err(|e| format!("ListKeys: {}", e.message()))?;
                    }
                    Ok::<u32, String>(per)
                }));
            }
            let mut calls = 0u32;
            for t in tasks {
                calls += t.await.map_err(|e| e.to_string())??;
            }
            let transport_rps = f64::from(calls) / started.elapsed().as_secs_f64();
            // The floor sum is one of each; the pipeline itself cannot go below two syncs
            // in sequence (the reservation, then the audit entry).
            let floor = raw_sign + fsync + rtt;
            let pipeline_floor = floor + fsync;
            println!("floors (medians, this run):");
            println!(
                "  raw backend sign         {}  ({:.0}/s from one thread, {raw_tps_two:.0}/s from two)",
                ms(raw_sign),
                1.0 / raw_sign.as_secs_f64().max(1e-9)
            );
            println!(
                "  finished signature       {}  (mean {}: the canonical loop and the recovery id)",
                ms(finished_sign),
                ms(finished_mean)
            );
            println!("  64-byte write+fdatasync  {}", ms(fsync));
            println!("  mTLS gRPC round trip     {}", ms(rtt));
            println!("  floor sum (sign + sync + rtt)          {}", ms(floor));
            println!(
                "  pipeline floor (sign + 2 syncs + rtt)  {}",
                ms(pipeline_floor)
            );
            println!("SignBlock ({} sequential requests):", self.blocks);
            println!(
                "  p50 {}  p99 {}  p99/floor-sum {:.2}  p99/pipeline-floor {:.2}",
                ms(p50),
                ms(p99),
                p99.as_secs_f64() / floor.as_secs_f64(),
                p99.as_secs_f64() / pipeline_floor.as_secs_f64()
            );
            println!("  inside the signer, mean per block: {stages}");
            println!("  {double_sign}");
            println!(
                "SignTransaction ({done} requests, {} clients):",
                self.concurrency
            );
            println!(
                "  {tps:.0}/s  raw backend {raw_tps:.0}/s (one thread)  ratio {:.2}",
                tps / raw_tps
            );
            println!(
                "  transport ceiling (ListKeys, same clients): {transport_rps:.0}/s  raw backend / ceiling {:.2}",
                raw_tps / transport_rps
            );
            against::run(against::Plan {
                addr: addr.clone(),
                tls: tls.clone(),
                dir: config.watermarks.dir.clone(),
                config_path: self.config.config.clone(),
                write_ahead: config.watermarks.write_ahead,
                device,
                chain_id,
                key: key_cfg.public_key.to_string(),
                first_height: last + 1,
                rounds: self.rounds,
                block: self.block.max(1),
                clients: self.clients.max(1),
                per_client: self.per_client.max(1),
            })
            .await?;
            Ok(())
        })
    }
}
