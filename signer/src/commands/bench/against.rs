//! The product against the reference ([`super::reference`]) in one run: the same client drives
//! both in alternating blocks (so a noisy moment hits both), and every number is printed beside
//! its reference and the ratio, with the target; a ratio above its target is flagged in
//! the output, never asserted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oryx_proto::antelope::{Checksum256, Name, Pack as _};
use oryx_proto::grpc;
use oryx_proto::grpc::signer_client::SignerClient;
use tonic::transport::Channel;

use super::reference::{self, RefKey, Syncs};
use super::{pct, savanna_header, transfer};
use crate::client::{ClientTls, connect};
use crate::server::TlsFiles;

/// What to run.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The signer's address.
    pub(super) addr: String,
    /// Client TLS (the same principal for the product and the reference).
    pub(super) tls: Arc<ClientTls>,

    /// Where the reference writes (the watermark directory: the same disk).
    pub(super) dir: std::path::PathBuf,
    /// The config file (the reference process reads its TLS files and directory from it).
    pub(super) config_path: std::path::PathBuf,
    /// The product's durable design: write-ahead (one sync) or two syncs.
    pub(super) write_ahead: bool,
    /// Whether the references sign with the key's own device ([`reference::RefKey`]).
    pub(super) device: bool,
    /// The chain and key the product signs with.
    pub(super) chain_id: Checksum256,
    /// The key, as text.
    pub(super) key: String,
    /// The first block height the product may sign.
    pub(super) first_height: u32,
    /// Alternating rounds.
    pub(super) rounds: u32,
    /// Calls per block of a round.
    pub(super) block: u32,
    /// Concurrent clients for throughput.
    pub(super) clients: u32,
    /// Calls per client for throughput.
    pub(super) per_client: u32,
}

/// One measured line: the product, its reference, the ratio and the target.
struct Line {
    what: String,
    product: f64,
    reference: f64,
    unit: &'static str,
    target: Target,
}

/// What a ratio (product / reference) must be.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// At or below this.
    AtMost(f64),
    /// At least 1.0 (throughput).
    AtLeastOne,
    /// Shown beside a targeted line to read it by; no target of its own.
    Informative,
}

impl Line {
    fn print(&self) {
        let ratio = self.product / self.reference.max(1e-12);
        let verdict = match self.target {
            Target::AtMost(max) => Some((ratio <= max, format!("≤ {max:.2}"))),
            Target::AtLeastOne => Some((ratio >= 1.0, "≥ 1.00".to_string())),
            Target::Informative => None,
        };
        let verdict = verdict.map_or_else(
            || "(no target)".to_string(),
            |(ok, target)| {
                format!(
                    "target {target:<7} {}",
                    if ok { "ok" } else { "ABOVE TARGET" }
                )
            },
        );
        println!(
            "  {:<52} {:>10.3} {:>10.3} {:<4} {:>6.2}  {verdict}",
            self.what, self.product, self.reference, self.unit, ratio,
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn block_request(plan: &Plan, n: u32) -> grpc::SignBlockRequest {
    grpc::SignBlockRequest {
        chain_id: plan.chain_id.0.to_vec(),
        public_key: plan.key.clone(),
        header: savanna_header(n, n, Name(0x5530_ea00_0000_0000)).packed(),
        ..Default::default()
    }
}

fn transaction_request(plan: &Plan, i: u32) -> grpc::SignTransactionRequest {
    grpc::SignTransactionRequest {
        chain_id: plan.chain_id.0.to_vec(),
        public_key: plan.key.clone(),
        transaction: Some(grpc::sign_transaction_request::Transaction::PackedTrx(
            transfer(i).packed(),
        )),
        ..Default::default()
    }
}

/// Times `n` calls of `call(i)` one at a time.
async fn timed<F, Fut>(n: u32, mut call: F) -> Result<Vec<Duration>, String>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        call(i).await.map_err(|e| e.message().to_string())?;
        out.push(t.elapsed());
    }
    Ok(out)
}

/// Requests per second from `clients` connections sending `per` SignTransaction calls each.
async fn throughput(plan: &Plan, addr: &str, base: u32) -> Result<f64, String> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..plan.clients {
        let plan = plan.clone();
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let mut client = connect(&addr, &plan.tls).await?;
            for i in 0..plan.per_client {
                client
                    .sign_transaction(transaction_request(&plan, base + c * 1_000_000 + i))
                    .await
                    .map_err(|e| format!("SignTransaction: {}", e.message()))?;
            }
            Ok::<u32, String>(plan.per_client)
        }));
    }
    let mut done = 0u32;
    for t in tasks {
        done += t.await.map_err(|e| e.to_string())??;
    }
    Ok(f64::from(done) / started.elapsed().as_secs_f64())
}

fn p(v: &mut [Duration], q: f64) -> f64 {
    v.sort();
    ms(pct(v, q))
}

/// Runs the comparison and prints it. The references run in a child process (this binary with
/// the hidden `--serve-reference`): a process of their own with their own runtime, as the
/// product has, so no wake-up is cheaper for them than for it.
pub(super) async fn run(plan: Plan) -> Result<(), String> {
    use std::io::BufRead as _;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .arg("bench")
        .arg("-c")
        .arg(&plan.config_path)
        .arg("--serve-reference")
        .arg("--key")
        .arg(&plan.key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the reference process: {e}"))?;
    let stdout = child.stdout.take().ok_or("reference process: no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut addr = || {
        lines
            .next()
            .and_then(Result::ok)
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            .ok_or_else(|| "the reference process did not start".to_string())
    };
    let addrs = addr().and_then(|two| Ok((two, addr()?)));
    let result = match addrs {
        Ok((two, one)) => compare(&plan, &two, &one).await,
        Err(e) => Err(e),
    };
    // Closing its stdin ends it.
    drop(child.stdin.take());
    let _ = child.wait();
    reference::clean(&plan.dir);
    result
}

/// `bench --serve-reference`: both references, their addresses on stdout (`two ADDR`, `one
/// ADDR`), until stdin closes.
pub(super) fn serve_references(
    config: &crate::config::Config,
    key: Option<&str>,
) -> Result<(), crate::cli_error::CliError> {
    use crate::cli_error::CliError;
    use std::io::Read as _;
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| CliError::io(p, e));
    let tls = TlsFiles {
        ca_pem: read(&config.server.ca_cert)?,
        cert_pem: read(&config.server.cert)?,
        key_pem: read(&config.server.key)?,
    };
    let dir = config.watermarks.dir.clone();
    let key_cfg = super::chosen_key(config, key)?;
    let backend = super::open_backend(config, &key_cfg)?;
    let (_, opts) = super::key_chain(config, &key_cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::other)?;
    rt.block_on(async move {
        let two = reference::start(&tls, &dir, Syncs::Two, RefKey::new(&backend, opts)?).await?;
        let one = reference::start(&tls, &dir, Syncs::One, RefKey::new(&backend, opts)?).await?;
        println!("two {}", two.addr);
        println!("one {}", one.addr);
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    })
    .map_err(CliError::Other)
}

async fn compare(plan: &Plan, two: &str, one: &str) -> Result<(), String> {
    let product: SignerClient<Channel> = connect(&plan.addr, &plan.tls).await?;
    let ref_two = connect(two, &plan.tls).await?;
    let ref_one = connect(one, &plan.tls).await?;

    // Sequential SignBlock, and Status against the bare echo, in alternating blocks.
    let (mut pb, mut r2, mut r1) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ps, mut pl, mut echo) = (Vec::new(), Vec::new(), Vec::new());
    let mut height = plan.first_height;
    for round in 0..plan.rounds {
        let start = height;
        pb.extend(
            timed(plan.block, |i| {
                let req = block_request(plan, start + i);
                let mut c = product.clone();
                async move { c.sign_block(req).await.map(drop) }
            })
            .await?,
        );
        height += plan.block;
        let h = round * plan.block;
        r2.extend(
            timed(plan.block, |i| {
                let req = block_request(plan, h + i + 1);
                let mut c = ref_two.clone();
                async move { c.sign_block(req).await.map(drop) }
            })
            .await?,
        );
        r1.extend(
            timed(plan.block, |i| {
                let req = block_request(plan, h + i + 1);
                let mut c = ref_one.clone();
                async move { c.sign_block(req).await.map(drop) }
            })
            .await?,
        );
        ps.extend(
            timed(plan.block, |_| {
                let mut c = product.clone();
                async move { c.status(grpc::StatusRequest {}).await.map(drop) }
            })
            .await?,
        );
        pl.extend(
            timed(plan.block, |_| {
                let mut c = product.clone();
                async move { c.list_keys(grpc::ListKeysRequest {}).await.map(drop) }
            })
            .await?,
        );
        echo.extend(
            timed(plan.block, |_| {
                let mut c = ref_two.clone();
                async move { c.status(grpc::StatusRequest {}).await.map(drop) }
            })
            .await?,
        );
    }
    // Throughput, product and reference alternately, twice each.
    let (mut pt, mut rt) = (Vec::new(), Vec::new());
    for k in 0..2u32 {
        pt.push(throughput(plan, &plan.addr, 10_000_000 * (k + 1)).await?);
        rt.push(throughput(plan, one, 10_000_000 * (k + 1)).await?);
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);

    let n = plan.rounds * plan.block;
    println!(
        "against the reference (its own process, same TLS configuration, same disk, {}; {n} calls \
         each in alternating blocks of {}):",
        if plan.device {
            "signing with the product's own key through its backend"
        } else {
            "signing with an in-memory K1 key"
        },
        plan.block
    );
    println!(
        "  {:<52} {:>10} {:>10} {:<4} {:>6}",
        "", "oryx", "reference", "", "ratio"
    );
    use Target::{AtLeastOne, AtMost};
    let line = |what: &str, product: f64, reference: f64, unit, target| Line {
        what: what.to_string(),
        product,
        reference,
        unit,
        target,
    };
    let (b50, b99) = (p(&mut pb, 0.5), p(&mut pb, 0.99));
    let (two50, two99, one50) = (p(&mut r2, 0.5), p(&mut r2, 0.99), p(&mut r1, 0.5));
    // The same design's minimum, by mean: a K1 key on a device signs with random nonces and
    // fc's canonical loop keeps about half of them, so its p50 falls between the one-attempt
    // and the two-attempt latencies and jumps between them from run to run; the mean does not.
    let minimum = if plan.write_ahead { &r1 } else { &r2 };
    let (b_mean, minimum_mean) = (ms(super::mean(&pb)), ms(super::mean(minimum)));
    let (echo50, s50, l50) = (p(&mut echo, 0.5), p(&mut ps, 0.5), p(&mut pl, 0.5));
    let tps = format!(
        "SignTransaction, {} clients, per s (reference: 1 sync)",
        plan.clients
    );
    let lines = [
        line(
            "SignBlock p50 (reference: 2 syncs)",
            b50,
            two50,
            "ms",
            AtMost(1.3),
        ),
        line(
            "SignBlock p99 (reference: 2 syncs)",
            b99,
            two99,
            "ms",
            AtMost(1.5),
        ),
        if plan.write_ahead {
            line(
                "SignBlock p50, same design's minimum (1 sync)",
                b50,
                one50,
                "ms",
                AtMost(1.15),
            )
        } else {
            line(
                "SignBlock p50, same design's minimum (2 syncs)",
                b50,
                two50,
                "ms",
                AtMost(1.15),
            )
        },
        line(
            "SignBlock mean, same design's minimum",
            b_mean,
            minimum_mean,
            "ms",
            Target::Informative,
        ),
        line(
            "SignBlock p50 (reference: 1 sync)",
            b50,
            one50,
            "ms",
            AtMost(1.3),
        ),
        line(
            "Status p50 (reference: bare echo)",
            s50,
            echo50,
            "ms",
            AtMost(1.3),
        ),
        line(
            "ListKeys p50 (reference: bare echo)",
            l50,
            echo50,
            "ms",
            AtMost(1.3),
        ),
        line(&tps, best(&pt), best(&rt), "/s", AtLeastOne),
    ];
    for l in &lines {
        l.print();
    }
    Ok(())
}
