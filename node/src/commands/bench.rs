//! `oryx-node bench -c FILE --key PUB`: `sign_digest` latency through a running bridge, the way
//! nodeos asks (one kept-alive connection on the bridge's unix socket, Savanna block ids at
//! increasing heights, one request at a time), in alternating blocks with the same call sent
//! straight to the signer (`SignDigest` on a gRPC connection of its own), beside floors measured
//! in the same run, and the issue-14 ratio: via the bridge against (bridge HTTP + direct), p50s.
//!
//! - the bridge's own HTTP round trip (`list_wallets`, answered without the signer);
//! - one mTLS gRPC round trip to the signer (`Status`);
//! - the signer's own signing time for the key (backend, normalisation, recovery), as it reports
//!   in `ListKeys` after the run;
//! - one 64-byte write + fdatasync in `--fsync-dir` (the signer's pipeline makes one in
//!   write-ahead mode, two in sequence otherwise).
//!
//! Guards: it signs made-up blocks and so raises the key's watermark; it refuses a public chain
//! unless `--allow-public-chain` is given.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use oryx_proto::antelope::chain::chain_name;
use oryx_proto::antelope::{Checksum256, PublicKey, Signature};
use oryx_proto::grpc;
use oryx_proto::stats::{Quantiles, quantiles};
use serde_json::json;

use crate::NodeError;
use crate::bridge::client::KeosdClient;
use crate::commands::{ConfigArg, runtime};
use crate::config::Config;

/// The most `sign_digest` through the bridge may take at p50, as a multiple of the bridge's own
/// HTTP round trip plus the same call made straight to the signer (issue 14).
const BRIDGE_TARGET: f64 = 1.3;

/// Calls per block when the bridge and the direct call alternate.
const ALTERNATE: u32 = 100;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    /// The producer key to sign with (held by the signer, `blind_digest = true`).
    #[arg(long)]
    key: String,
    /// Timed sign_digest requests.
    #[arg(long, default_value_t = 2000)]
    requests: u32,
    /// Samples of each floor.
    #[arg(long, default_value_t = 500)]
    floor_samples: u32,
    /// Where to measure fdatasync (put it on the signer's watermark disk).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    fsync_dir: PathBuf,
    /// Sign on a public chain anyway (raises a production key's watermark: never on a live key).
    #[arg(long)]
    allow_public_chain: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(args: Args) -> Result<(), NodeError> {
    let cfg = Config::load(&args.config.config)?;
    let bridge = cfg.bridge.as_ref().ok_or_else(|| {
        NodeError::Config("bench drives the bridge: the config has no [bridge] section".into())
    })?;
    let chain = bridge.chain()?;
    if let Some(name) = chain_name(&chain)
        && !args.allow_public_chain
    {
        return Err(NodeError::Usage(format!(
            "the bridge's chain is {name}: bench signs made-up blocks and would raise a production key's \
             watermark; use a private chain (oryx-signer init --dev) or pass --allow-public-chain"
        )));
    }
    let key = PublicKey::parse(&args.key)
        .map_err(|e| NodeError::Usage(format!("--key {}: {e}", args.key)))?;
    // `shown` is the URL as printed: the TCP listener's token stays out of the output.
    let (url, shown) = match (&bridge.unix_socket, bridge.listen) {
        (Some(p), _) => {
            let url = format!("unix://{}/v1/wallet/sign_digest", p.display());
            (url.clone(), url)
        }
        (None, Some(a)) => {
            let file = bridge.listen_token_file.as_deref().ok_or_else(|| {
                NodeError::Config("[bridge] listen needs listen_token_file".into())
            })?;
            let token = crate::bridge::token::ListenToken::from_file(file)?;
            (
                format!("http://{a}/{}/v1/wallet/sign_digest", token.expose()),
                format!("http://{a}/<token>/v1/wallet/sign_digest"),
            )
        }
        (None, None) => {
            return Err(NodeError::Config(
                "the bridge has no listener configured".into(),
            ));
        }
    };
    let mut nodeos = KeosdClient::connect(&url)?;

    // Just above the key's watermark (a blind id may run only a few blocks ahead of it): the
    // refusal of height 1 names the stored block; count up from the one after it.
    let mut height = 1u32;
    for attempt in 0.. {
        let a = nodeos.sign_digest(&block_id(height), &key)?;
        if a.status == 201 {
            break;
        }
        let stored = stored_block(&a.body);
        match stored {
            Some(n) if a.body.contains("DOUBLE_SIGN") && attempt < 3 => {
                height = n.checked_add(1).ok_or_else(|| {
                    NodeError::Bench("the key's watermark is at the last block number".into())
                })?;
            }
            _ => {
                return Err(NodeError::Bench(format!(
                    "the bridge refused the first request: {}",
                    a.body
                )));
            }
        }
    }
    // The same call straight to the signer on a connection of its own, in alternating blocks
    // with the bridge (one shared height counter), so a noisy moment hits both.
    let mut straight = Direct::connect(&cfg)?;
    let (mut signed, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        height += 1;
        sign_one(&mut nodeos, height, &key)?;
    }
    let mut left = args.requests;
    while left > 0 {
        let n = left.min(ALTERNATE);
        for _ in 0..n {
            height += 1;
            signed.push(sign_one(&mut nodeos, height, &key)?);
        }
        for _ in 0..n {
            height += 1;
            direct.push(straight.sign_digest(&chain, &key, height)?);
        }
        left -= n;
    }
    let signed = quantiles(&mut signed).ok_or_else(|| NodeError::Bench("no requests".into()))?;
    let direct = quantiles(&mut direct).ok_or_else(no_samples)?;

    let mut http = Vec::new();
    for _ in 0..args.floor_samples {
        let t0 = Instant::now();
        let a = nodeos.post("/v1/wallet/list_wallets", "")?;
        if a.status != 201 {
            return Err(NodeError::Bench(format!("list_wallets: {}", a.body)));
        }
        http.push(t0.elapsed());
    }
    let http = quantiles(&mut http).ok_or_else(no_samples)?;
    let fsync = fsync_floor(&args.fsync_dir, args.floor_samples)?;
    let rtt = straight.round_trips(args.floor_samples)?;
    let sign = straight.signing_time(&key)?;

    let floor_sum = http.p50 + rtt.p50 + sign.p50 + 2 * fsync.p50;
    let ratio = signed.p99.as_secs_f64() / floor_sum.as_secs_f64();
    // Issue 14's bridge target: what the bridge adds beyond its own HTTP round trip.
    let bridge_floor = http.p50 + direct.p50;
    let bridge_ratio = signed.p50.as_secs_f64() / bridge_floor.as_secs_f64();
    let timeout = Duration::from_millis(bridge.nodeos_timeout_ms);
    if args.json {
        let q =
            |q: &Quantiles| json!({"p50_ms": ms(q.p50), "p99_ms": ms(q.p99), "samples": q.count});
        println!(
            "{}",
            json!({
                "key": key.to_string(),
                "sign_digest": q(&signed),
                "floors": {"bridge_http": q(&http), "signer_rtt": q(&rtt), "signer_sign": q(&sign), "fdatasync": q(&fsync)},
                "sign_digest_direct": q(&direct),
                "floor_sum_ms": ms(floor_sum),
                "p99_over_floor_sum": ratio,
                "p50_over_http_plus_direct": bridge_ratio,
                "nodeos_timeout_ms": bridge.nodeos_timeout_ms,
            })
        );
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let row = |out: &mut std::io::StdoutLock<'_>, name: &str, q: &Quantiles| {
        let _ = writeln!(out, "  {name:<44} {:>8.3} {:>8.3}", ms(q.p50), ms(q.p99));
    };
    let _ = writeln!(
        out,
        "sign_digest through the bridge ({shown} -> mTLS -> signer), key {key}\n\
         {} requests one at a time on one kept-alive connection\n\
         {:<46} {:>8} {:>8}",
        args.requests, "", "p50 ms", "p99 ms"
    );
    row(&mut out, "sign_digest via the bridge", &signed);
    row(
        &mut out,
        "SignDigest direct to the signer (no bridge)",
        &direct,
    );
    let _ = writeln!(out, "floors:");
    row(&mut out, "bridge HTTP round trip (list_wallets)", &http);
    row(&mut out, "signer mTLS gRPC round trip (Status)", &rtt);
    row(&mut out, "signer signing time (backend + verify)", &sign);
    row(&mut out, "64-byte write + fdatasync", &fsync);
    let _ = writeln!(
        out,
        "via the bridge / (bridge HTTP + direct), p50s: {:.3} / {:.3} ms = {bridge_ratio:.2}  \
         target ≤ {BRIDGE_TARGET:.2}  {}",
        ms(signed.p50),
        ms(bridge_floor),
        if bridge_ratio <= BRIDGE_TARGET {
            "ok"
        } else {
            "ABOVE TARGET"
        }
    );
    let _ = writeln!(
        out,
        "floor sum (http + rtt + sign + 2 x fdatasync, p50s): {:.3} ms\n\
         p99 / floor sum: {ratio:.2}x\n\
         nodeos keosd-provider-timeout: {} ms; p99 uses {:.0}% of it",
        ms(floor_sum),
        timeout.as_millis(),
        100.0 * signed.p99.as_secs_f64() / timeout.as_secs_f64()
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The block number a double-sign refusal says is stored (`stored: block N, …`).
fn stored_block(body: &str) -> Option<u32> {
    let rest = &body[body.find("stored: block ")? + "stored: block ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A made-up Savanna block id at `height` (its first four bytes are the height).
fn block_id(height: u32) -> Checksum256 {
    let mut seed = b"oryx-node bench block ".to_vec();
    seed.extend_from_slice(&height.to_be_bytes());
    let mut id = Checksum256::hash(&seed);
    id.0[..4].copy_from_slice(&height.to_be_bytes());
    id
}

fn no_samples() -> NodeError {
    NodeError::Bench("no samples".into())
}

/// One `sign_digest` through the bridge, checked: how long the call took (the check that the
/// signature recovers to the key comes after, untimed, as the direct calls make none).
fn sign_one(nodeos: &mut KeosdClient, height: u32, key: &PublicKey) -> Result<Duration, NodeError> {
    let at = |why: String| NodeError::Bench(format!("height {height}: {why}"));
    let id = block_id(height);
    let t0 = Instant::now();
    let a = nodeos.sign_digest(&id, key)?;
    let took = t0.elapsed();
    if a.status != 201 {
        return Err(at(a.body));
    }
    let text: String = serde_json::from_str(&a.body).map_err(|e| at(format!("{e}: {}", a.body)))?;
    let sig = Signature::parse(&text).map_err(|e| at(e.to_string()))?;
    if !sig.recovers_to(&id, key) {
        return Err(at(format!("the signature does not recover to {key}")));
    }
    Ok(took)
}

fn fsync_floor(dir: &std::path::Path, samples: u32) -> Result<Quantiles, NodeError> {
    let (mut f, path) = create_scratch(dir)?;
    let mut measure = || -> std::io::Result<Vec<Duration>> {
        let mut v = Vec::new();
        for i in 0..samples {
            use std::io::{Seek as _, SeekFrom};
            let t0 = Instant::now();
            f.seek(SeekFrom::Start(0))?;
            f.write_all(&[i as u8; 64])?;
            f.sync_data()?;
            v.push(t0.elapsed());
        }
        Ok(v)
    };
    let measured = measure().map_err(NodeError::io("cannot write and fdatasync", &path));
    // Removed whatever happened: the file is ours (created exclusively), nothing else's.
    let _ = std::fs::remove_file(&path);
    quantiles(&mut measured?).ok_or_else(no_samples)
}

/// A new file in `dir`, created exclusively (`O_CREAT|O_EXCL`, mode 0600): an existing file or
/// a symlink planted at the name (e.g. by another user in /tmp) is never opened or followed.
fn create_scratch(dir: &std::path::Path) -> Result<(std::fs::File, std::path::PathBuf), NodeError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut last = None;
    for n in 0..100u32 {
        let path = dir.join(format!(".oryx-node-bench-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(path),
            Err(e) => {
                return Err(NodeError::Bench(format!(
                    "cannot create a scratch file {} for the fsync measurement: {e}; \
                     choose a writable --fsync-dir",
                    path.display()
                )));
            }
        }
    }
    Err(NodeError::Bench(format!(
        "cannot create a scratch file in {} for the fsync measurement: names up to {} exist; \
         remove stale .oryx-node-bench-* files or choose another --fsync-dir",
        dir.display(),
        last.map_or_else(String::new, |p| p.display().to_string())
    )))
}

/// A gRPC connection straight to the signer (the first replica: the one the bridge asks
/// first), on a runtime of its own.
struct Direct {
    rt: tokio::runtime::Runtime,
    client: oryx_proto::grpc::signer_client::SignerClient<tonic::transport::Channel>,
}

impl Direct {
    fn connect(cfg: &Config) -> Result<Self, NodeError> {
        let tls = cfg.client_tls()?;
        let rt = runtime()?;
        let first = cfg.signer.replicas().into_iter().next().unwrap_or_default();
        let client = rt
            .block_on(oryx_proto::client::connect(&first, &tls))
            .map_err(NodeError::SignerConnect)?;
        Ok(Direct { rt, client })
    }

    /// One `SignDigest` of the block id at `height`, timed.
    fn sign_digest(
        &mut self,
        chain: &Checksum256,
        key: &PublicKey,
        height: u32,
    ) -> Result<Duration, NodeError> {
        let request = grpc::SignDigestRequest {
            chain_id: chain.0.to_vec(),
            public_key: key.to_string(),
            digest: block_id(height).0.to_vec(),
        };
        let t0 = Instant::now();
        self.rt
            .block_on(self.client.sign_digest(request))
            .map_err(|s| NodeError::signer_call(format!("SignDigest at height {height}"), &s))?;
        Ok(t0.elapsed())
    }

    /// `samples` mTLS round trips (`Status`).
    fn round_trips(&mut self, samples: u32) -> Result<Quantiles, NodeError> {
        let mut v = Vec::new();
        for _ in 0..samples {
            let t0 = Instant::now();
            self.rt
                .block_on(self.client.status(grpc::StatusRequest {}))
                .map_err(|s| NodeError::signer_call("Status", &s))?;
            v.push(t0.elapsed());
        }
        quantiles(&mut v).ok_or_else(no_samples)
    }

    /// The signer's own signing time for `key`, as `ListKeys` reports it.
    fn signing_time(&mut self, key: &PublicKey) -> Result<Quantiles, NodeError> {
        let keys = self
            .rt
            .block_on(self.client.list_keys(grpc::ListKeysRequest {}))
            .map_err(|s| NodeError::signer_call("ListKeys", &s))?
            .into_inner()
            .keys;
        let info = keys
            .iter()
            .find(|k| PublicKey::parse(&k.public_key).is_ok_and(|p| &p == key))
            .ok_or_else(|| NodeError::Bench(format!("the signer does not list {key}")))?;
        Ok(Quantiles {
            p50: Duration::from_micros(info.sign_p50_us.into()),
            p99: Duration::from_micros(info.sign_p99_us.into()),
            count: info.sign_samples as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_fsync_file_never_follows_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let planted = dir
            .path()
            .join(format!(".oryx-node-bench-{}-0", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let q = fsync_floor(dir.path(), 3).unwrap();
        assert_eq!(q.count, 3);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // The planted link is left alone; our own file is gone.
        assert!(std::fs::symlink_metadata(&planted).is_ok());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
