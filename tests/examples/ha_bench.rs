//! The HA benchmark (`deploy/bench-ha.sh`, or after `cargo build --release -p oryx-signer -p
//! oryx-node`: `cargo run --release -p oryx-tests --example ha_bench`): signatures through two
//! signer replicas on a 3-member loopback etcd cluster (TLS with client certificates), beside
//! the floors measured in the same run, in alternating rounds:
//!
//! - the mTLS round trip (`ListKeys`, nothing signed) and one etcd transaction of the store's
//!   shape (compare the revision, put two keys) on its own;
//! - `SignBlock` on a single signer with the file store, and on a replica with etcd: the HA path
//!   should add no more than 1.3× the etcd transaction's round trip;
//! - `sign_digest` through `oryx-node bridge` as nodeos sends it, to the single signer and to
//!   the replicas;
//! - take-over: one block per 500 ms slot through the node's failover while the replica in use
//!   is SIGKILLed (target: at most 1 missed slot), then while the etcd leader is (at most 3).
//!
//! `ORYX_BENCH_N` sets the requests per round (default 300). Ratios above target are printed as
//! `OVER TARGET`; nothing here asserts.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use oryx_node::bridge::client::KeosdClient;
use oryx_node::failover::Signers;
use oryx_proto::antelope::{Checksum256, Pack as _, PublicKey};
use oryx_proto::grpc;
use oryx_proto::grpc::signer_client::SignerClient;
use oryx_proto::stats::{Quantiles, quantiles};
use oryx_tests::etcd::EtcdCluster;
use oryx_tests::harness::{Signer, first_key, init, now_slot, savanna, sibling_bin};
use oryx_tests::replicas::{replica_dirs, start_all};
use tonic::transport::Channel;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[derive(Default)]
struct Series(Vec<Duration>);

impl Series {
    fn q(&self) -> Quantiles {
        let mut v = self.0.clone();
        quantiles(&mut v).unwrap()
    }
}

/// A bridge process in front of `addrs`; answers on its unix socket.
struct Bridge {
    child: Child,
    url: String,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bridge(dir: &Path, signer_dir: &Path, addrs: &[String]) -> Bridge {
    std::fs::create_dir_all(dir).unwrap();
    let tls = signer_dir.join("tls");
    let sock = dir.join("keosd.sock");
    let list = addrs
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let cfg = dir.join("oryx-node.toml");
    std::fs::write(
        &cfg,
        format!(
            "[signer]\naddresses = [{list}]\nattempt_timeout_ms = 200\nca_cert = \"{t}/ca.pem\"\ncert = \"{t}/node1.pem\"\nkey = \"{t}/node1.key\"\n\n\
             [bridge]\nchain_id = \"eos\"\nunix_socket = \"{s}\"\nnodeos_timeout_ms = 50\n",
            t = tls.display(),
            s = sock.display(),
        ),
    )
    .unwrap();
    let mut child = Command::new(sibling_bin("oryx-node"))
        .args(["bridge", "-c", cfg.to_str().unwrap()])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().unwrap().unwrap();
        if line.starts_with("bridge listening on unix://") {
            std::thread::spawn(move || for _ in lines.by_ref() {});
            break;
        }
    }
    Bridge {
        child,
        url: format!("unix://{}/v1/wallet/sign_digest", sock.display()),
    }
}

/// The mTLS round trip: `ListKeys` answers from memory (`Status` would probe the watermark
/// store, etcd included).
async fn rtt(c: &mut SignerClient<Channel>, n: usize, out: &mut Series) {
    for _ in 0..n {
        let t = Instant::now();
        c.list_keys(grpc::ListKeysRequest {}).await.unwrap();
        out.0.push(t.elapsed());
    }
}

/// `n` SignBlocks one after the other; `gap` between them (a producer asks once per 500 ms
/// slot, a burst back to back).
async fn sign_blocks(
    c: &mut SignerClient<Channel>,
    key: &PublicKey,
    next: &mut u32,
    base: u32,
    (n, gap): (usize, Duration),
    out: &mut Series,
) {
    for _ in 0..n {
        tokio::time::sleep(gap).await;
        *next += 1;
        let req = grpc::SignBlockRequest {
            chain_id: oryx_tests::harness::eos(),
            public_key: key.to_string(),
            header: savanna(*next, base + *next, 1).packed(),
            ..Default::default()
        };
        let t = Instant::now();
        c.sign_block(req).await.unwrap();
        out.0.push(t.elapsed());
    }
}

fn bridge_digests(url: &str, key: &PublicKey, next: &mut u32, n: usize, out: &mut Series) {
    let mut c = KeosdClient::connect(url).unwrap();
    for _ in 0..n {
        *next += 1;
        let mut id = [0x5a; 32];
        id[..4].copy_from_slice(&next.to_be_bytes());
        let t = Instant::now();
        let a = c.sign_digest(&Checksum256(id), key).unwrap();
        out.0.push(t.elapsed());
        assert_eq!(a.status, 201, "{}", a.body);
    }
}

async fn etcd_txns(cluster: &EtcdCluster, n: usize, out: &mut Series) {
    let mut c = cluster.client(&cluster.endpoints()).await;
    let (num, slot) = ("/bench/floor/num", "/bench/floor/slot");
    let mut rev = c
        .put(num, vec![0u8; 4], None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    for i in 0..n {
        let mut v = (i as u32 + 1).to_be_bytes().to_vec();
        v.extend_from_slice(&[b'x'; 160]);
        let txn = Txn::new()
            .when(vec![Compare::mod_revision(num, CompareOp::Equal, rev)])
            .and_then(vec![
                TxnOp::put(num, v, None),
                TxnOp::put(slot, (i as u32).to_be_bytes().to_vec(), None),
            ])
            .or_else(vec![TxnOp::get(num, None)]);
        let t = Instant::now();
        let r = c.txn(txn).await.unwrap();
        out.0.push(t.elapsed());
        assert!(r.succeeded());
        rev = r.header().unwrap().revision();
    }
}

/// One block per 500 ms slot through the node's failover for `slots` slots; `fault` runs at the
/// start of slot `at`. Returns the slots whose block was not signed within the slot, and prints
/// each missed slot with what the node heard.
async fn takeover(
    node: &Signers,
    key: &PublicKey,
    next: &mut u32,
    base: u32,
    slots: u32,
    at: u32,
    mut fault: impl FnMut(),
) -> u32 {
    let slot = Duration::from_millis(500);
    let mut missed = 0;
    let mut fault_at: Option<Instant> = None;
    for s in 0..slots {
        let start = Instant::now();
        if s == at {
            fault();
            fault_at = Some(Instant::now());
        }
        *next += 1;
        let req = grpc::SignBlockRequest {
            chain_id: oryx_tests::harness::eos(),
            public_key: key.to_string(),
            header: savanna(*next, base + *next, 1).packed(),
            ..Default::default()
        };
        let left = slot.saturating_sub(start.elapsed());
        let answer = node
            .call(left, |mut c| {
                let req = req.clone();
                async move { c.sign_block(req).await }
            })
            .await;
        if answer.is_err() || start.elapsed() > slot {
            missed += 1;
            let why = answer.err().map_or("late".to_string(), |e| e.to_string());
            println!(
                "  slot {s} missed, answer {} ms after the fault: {}",
                fault_at.map_or(0, |f| f.elapsed().as_millis()),
                why.chars().take(200).collect::<String>()
            );
        }
        tokio::time::sleep(slot.saturating_sub(start.elapsed())).await;
    }
    missed
}

fn line(name: &str, q: &Quantiles) {
    println!(
        "{name:<44} p50 {:>7.3} ms   p99 {:>7.3} ms",
        ms(q.p50),
        ms(q.p99)
    );
}

/// The mean of each of a signer's stages (`reserve`, `sign`, `audit`, `queue`) from `/metrics`.
fn stage_means(signer: &Signer) -> String {
    let Some(addr) = &signer.metrics else {
        return "no metrics".into();
    };
    let (_, text) = oryx_tests::harness::http_get(addr, "/metrics");
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    ["queue", "reserve", "sign", "audit"]
        .iter()
        .filter_map(|stage| {
            let sum = value(&format!(
                "oryx_stage_duration_seconds_sum{{stage=\"{stage}\"}}"
            ))?;
            let n = value(&format!(
                "oryx_stage_duration_seconds_count{{stage=\"{stage}\"}}"
            ))?;
            Some(format!("{stage} {:.3} ms", sum / n.max(1.0) * 1e3))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict(ratio: f64, target: f64) -> &'static str {
    if ratio <= target { "ok" } else { "OVER TARGET" }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("ORYX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let cluster = EtcdCluster::start(3);
    let base = now_slot() - 100_000;
    let dirs = replica_dirs(&cluster, 2, &[], 10, base + 10);
    let mut replicas = start_all(&dirs);
    let single_dir = tempfile::tempdir().unwrap();
    init(single_dir.path(), true);
    let single = Signer::start(single_dir.path(), &[]);
    let single_key = first_key(single_dir.path());
    let mut single_c = single.client("node1").await;
    let mut ha_c = replicas[0].client("node1").await;
    let tmp = tempfile::tempdir().unwrap();
    let addrs: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();
    let ha_bridge = start_bridge(&tmp.path().join("ha"), &dirs.dirs[0], &addrs);
    let single_bridge = start_bridge(
        &tmp.path().join("single"),
        single_dir.path(),
        std::slice::from_ref(&single.addr),
    );

    let (mut round_trip, mut txn, mut file, mut ha) = (
        Series::default(),
        Series::default(),
        Series::default(),
        Series::default(),
    );
    let (mut br_file, mut br_ha) = (Series::default(), Series::default());
    let (mut next_single, mut next_ha) = (10u32, 10u32);
    // Warm every path once.
    rtt(&mut single_c, 20, &mut Series::default()).await;
    let warm = (20, Duration::ZERO);
    let mut scratch = Series::default();
    sign_blocks(
        &mut single_c,
        &single_key,
        &mut next_single,
        base,
        warm,
        &mut scratch,
    )
    .await;
    sign_blocks(&mut ha_c, &dirs.key, &mut next_ha, base, warm, &mut scratch).await;
    let (burst, paced) = ((n, Duration::ZERO), (n / 3, Duration::from_millis(20)));
    let (mut file_paced, mut ha_paced) = (Series::default(), Series::default());
    for round in 0..3 {
        rtt(&mut single_c, n, &mut round_trip).await;
        etcd_txns(&cluster, n, &mut txn).await;
        sign_blocks(
            &mut single_c,
            &single_key,
            &mut next_single,
            base,
            burst,
            &mut file,
        )
        .await;
        sign_blocks(&mut ha_c, &dirs.key, &mut next_ha, base, burst, &mut ha).await;
        let file_p = &mut file_paced;
        sign_blocks(
            &mut single_c,
            &single_key,
            &mut next_single,
            base,
            paced,
            file_p,
        )
        .await;
        sign_blocks(
            &mut ha_c,
            &dirs.key,
            &mut next_ha,
            base,
            paced,
            &mut ha_paced,
        )
        .await;
        let (url_f, url_h) = (single_bridge.url.clone(), ha_bridge.url.clone());
        let (k_s, k_h) = (single_key, dirs.key);
        let (mut ns, mut nh) = (next_single, next_ha);
        let (bf, bh, ns, nh) = tokio::task::spawn_blocking(move || {
            let (mut bf, mut bh) = (Series::default(), Series::default());
            bridge_digests(&url_f, &k_s, &mut ns, n, &mut bf);
            bridge_digests(&url_h, &k_h, &mut nh, n, &mut bh);
            (bf, bh, ns, nh)
        })
        .await
        .unwrap();
        next_single = ns;
        next_ha = nh;
        br_file.0.extend(bf.0);
        br_ha.0.extend(bh.0);
        eprintln!("round {} of 3 done", round + 1);
    }

    println!(
        "\nHA benchmark: {} requests per path in 3 alternating rounds",
        3 * n
    );
    println!("floors:");
    line("  mTLS round trip (ListKeys)", &round_trip.q());
    line("  etcd transaction (CAS, 2 puts), alone", &txn.q());
    println!("paths:");
    line("  SignBlock, single signer (file store)", &file.q());
    line("  SignBlock, replica (etcd)", &ha.q());
    line("  SignBlock every 20 ms, single signer", &file_paced.q());
    line("  SignBlock every 20 ms, replica (etcd)", &ha_paced.q());
    line("  bridge sign_digest, single signer", &br_file.q());
    line("  bridge sign_digest, replicas (etcd)", &br_ha.q());
    for (what, a, b) in [
        ("SignBlock back to back", &file, &ha),
        ("SignBlock every 20 ms", &file_paced, &ha_paced),
        ("bridge sign_digest back to back", &br_file, &br_ha),
    ] {
        let (a, b, t) = (a.q(), b.q(), txn.q());
        let p50 = (ms(b.p50) - ms(a.p50)) / ms(t.p50);
        let p99 = (ms(b.p99) - ms(a.p99)) / ms(t.p99);
        println!(
            "{what}: HA adds {:.3} ms at p50 = {p50:.2}× the etcd transaction ({}), {:.3} ms at p99 = {p99:.2}× ({}) [target ≤ 1.3×]",
            ms(b.p50) - ms(a.p50),
            verdict(p50, 1.3),
            ms(b.p99) - ms(a.p99),
            verdict(p99, 1.3),
        );
    }

    println!(
        "stage means (every request so far): single signer: {}",
        stage_means(&single)
    );
    println!(
        "stage means (every request so far): replica a: {}",
        stage_means(&replicas[0])
    );

    // Take-over, one block per 500 ms slot through the node's failover.
    let tls = replicas[0].tls("node1");
    let node = Signers::start(&addrs, &tls, Duration::from_millis(200));
    node.wait_connected(Duration::from_secs(5)).await.unwrap();
    let mut victim = Some(replicas.remove(0));
    let missed = takeover(&node, &dirs.key, &mut next_ha, base, 8, 3, || {
        if let Some(mut r) = victim.take() {
            r.kill();
        }
    })
    .await;
    println!(
        "take-over, the replica in use SIGKILLed: {missed} of 8 slots missed ({}; target ≤ 1)",
        verdict(f64::from(missed), 1.0)
    );
    let mut cluster = cluster;
    let leader = cluster.leader();
    let mut killed = false;
    let missed = takeover(&node, &dirs.key, &mut next_ha, base, 10, 3, || {
        if !killed {
            cluster.kill(leader);
            killed = true;
        }
    })
    .await;
    println!(
        "take-over, the etcd leader SIGKILLed: {missed} of 10 slots missed ({}; target ≤ 3; election timeout 500 ms)",
        verdict(f64::from(missed), 3.0)
    );
}
