//! `oryx-node produce` end to end: the real node binary against the real signer binary over
//! mTLS; block logs read back with the library reader and checked with `oryx inspect blocklog`.
//!
//! Needs the signer's binaries `oryx-signer` and `oryx` beside this test executable:
//! `cargo test --workspace` builds them; before `cargo test -p oryx-node`, run
//! `cargo build -p oryx-signer` (same target directory).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oryx_node::produce::Mode;
use oryx_node::produce::assemble::Unsigned;
use oryx_proto::antelope::actions::PermissionLevel;
use oryx_proto::antelope::signed_block::SignedBlock;
use oryx_proto::antelope::transaction::{Action, Compression, PackedTransaction, Transaction};
use oryx_proto::antelope::{
    BlockTimestamp, Bytes, Checksum256, Name, Pack, PublicKey, Signature, TimePointSec, VarUint32,
};
use oryx_proto::blocklog::{self, Head};
use oryx_proto::grpc;
use oryx_tests::harness::*;

/// Guards against a hang, not a performance threshold.
const PATIENCE: Duration = Duration::from_secs(90);

/// A running `oryx-node produce`, its stderr collected line by line.
struct Node {
    child: Child,
    config: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Node {
    fn start(config: &Path, lines: Arc<Mutex<Vec<String>>>) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_oryx-node"))
            .args(["produce", "-c", config.to_str().unwrap()])
            .env("RUST_LOG", "oryx_node=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&lines);
        let tag = config
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = strip_ansi(&line);
                if std::env::var_os("ORYX_TEST_ECHO").is_some() {
                    eprintln!("[{tag}] {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });
        Node {
            child,
            config: config.to_path_buf(),
            lines,
        }
    }

    fn restart(&mut self) {
        *self = Node::start(&self.config.clone(), Arc::clone(&self.lines));
    }

    /// Block numbers this instance had signed first (not replays of another's identical block).
    fn produced(&self) -> Vec<u32> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("produced block") && l.contains("replayed=false"))
            .filter_map(|l| field(l, "block_num"))
            .collect()
    }

    fn log_contains(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn field(line: &str, name: &str) -> Option<u32> {
    let at = line.find(&format!(" {name}="))?;
    line[at + name.len() + 2..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The blocks of every instance's log by height, checking that no two logs hold different
/// blocks at one height.
fn one_chain(dirs: &[PathBuf]) -> BTreeMap<u32, Vec<u8>> {
    let mut by_height: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for d in dirs {
        for (bytes, b) in blocks(d) {
            let n = b.header.block_num().unwrap();
            if let Some(other) = by_height.insert(n, bytes.clone()) {
                assert_eq!(other, bytes, "two different blocks at height {n}");
            }
        }
    }
    by_height
}

/// Writes an `oryx-node.toml` for one instance in `dir`.
fn node_config(
    dir: &Path,
    signer: &Signer,
    key: &PublicKey,
    spool: &Path,
    follow: &[&Path],
    extra: &str,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let tls = signer.dir.join("tls");
    let follow: Vec<String> = follow
        .iter()
        .map(|f| format!("\"{}\"", f.display()))
        .collect();
    let text = format!(
        "[signer]\naddress = \"{addr}\"\nca_cert = \"{tls}/ca.pem\"\ncert = \"{tls}/node1.pem\"\nkey = \"{tls}/node1.key\"\n\n\
         [produce]\nchain_id = \"eos\"\nproducer = \"oryxproducer\"\npublic_key = \"{key}\"\n\
         block_log = \"blocks\"\nspool = \"{spool}\"\nfollow = [{follow}]\ntakeover_slots = 4\n{extra}",
        addr = signer.addr,
        tls = tls.display(),
        spool = spool.display(),
        follow = follow.join(", "),
    );
    let path = dir.join("oryx-node.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A transaction signed by the signer, unique by `nonce`.
async fn signed_trx(signer: &Signer, key: &PublicKey, nonce: &str) -> PackedTransaction {
    let expiration = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600) as u32;
    let trx = Transaction {
        expiration: TimePointSec(expiration),
        ref_block_num: 1,
        ref_block_prefix: 2,
        max_net_usage_words: VarUint32(0),
        max_cpu_usage_ms: 0,
        delay_sec: VarUint32(0),
        context_free_actions: vec![],
        actions: vec![Action {
            account: Name::new("eosio.null").unwrap(),
            name: Name::new("nonce").unwrap(),
            authorization: vec![PermissionLevel {
                actor: Name::new("oryxproducer").unwrap(),
                permission: Name::new("active").unwrap(),
            }],
            data: Bytes(nonce.to_string().packed()),
        }],
        transaction_extensions: vec![],
    };
    let mut c = signer.client("node1").await;
    let r = c
        .sign_transaction(grpc::SignTransactionRequest {
            chain_id: eos(),
            public_key: key.to_string(),
            transaction: Some(grpc::sign_transaction_request::Transaction::PackedTrx(
                trx.packed(),
            )),
            context_free_data: vec![],
            msig_proposals: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let sig = Signature::parse(&r.signature.unwrap().text).unwrap();
    PackedTransaction::new(&trx, &[], vec![sig], Compression::None).unwrap()
}

/// Drops a transaction into the spool the way a relay does: a temporary name, then a rename.
fn spool_put(spool: &Path, name: &str, p: &PackedTransaction, json: bool) {
    let tmp = spool.join(format!(".{name}.tmp"));
    if json {
        std::fs::write(&tmp, serde_json::to_vec(p).unwrap()).unwrap();
        std::fs::rename(&tmp, spool.join(format!("{name}.json"))).unwrap();
    } else {
        std::fs::write(&tmp, p.packed()).unwrap();
        std::fs::rename(&tmp, spool.join(format!("{name}.bin"))).unwrap();
    }
}

/// Three transactions into every spool, named after `tag`.
async fn spool_some(
    signer: &Signer,
    key: &PublicKey,
    spools: &[PathBuf],
    tag: &str,
    want: &mut HashSet<Checksum256>,
) {
    for i in 0..3 {
        let p = signed_trx(signer, key, &format!("{tag}-{i}")).await;
        want.insert(p.id().unwrap());
        for spool in spools {
            spool_put(spool, &format!("{tag}-{i:03}"), &p, i % 2 == 0);
        }
    }
}

fn blocks(dir: &Path) -> Vec<(Vec<u8>, SignedBlock)> {
    match blocklog::read_all(&dir.join("blocks")) {
        Ok((entries, _)) => entries.into_iter().map(|e| (e.bytes, e.block)).collect(),
        Err(_) => Vec::new(),
    }
}

fn head_num(dir: &Path) -> u32 {
    blocks(dir)
        .last()
        .map_or(0, |(_, b)| b.header.block_num().unwrap())
}

fn included_ids(blocks: &[(Vec<u8>, SignedBlock)]) -> Vec<Checksum256> {
    blocks
        .iter()
        .flat_map(|(_, b)| b.transactions.iter().map(|r| r.trx_id().unwrap()))
        .collect()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A block the signer has signed but the node never logged (its answer was lost, or the node
/// died first): built on the head of `ndir`'s log, left in its pending file, signed directly.
async fn signed_but_unlogged(signer: &Signer, key: &PublicKey, ndir: &Path) -> Unsigned {
    let chain = blocks(ndir);
    let head = Head::of(&chain.last().unwrap().1).unwrap();
    let block = Unsigned::build(
        Mode::Savanna,
        Name::new("oryxproducer").unwrap(),
        &head,
        BlockTimestamp(now_slot() + 2),
        vec![],
        None,
    );
    block.write_pending(&ndir.join("blocks")).unwrap();
    let mut c = signer.client("node1").await;
    c.sign_block(grpc::SignBlockRequest {
        chain_id: eos(),
        public_key: key.to_string(),
        header: block.header.packed(),
        ..Default::default()
    })
    .await
    .unwrap();
    block
}

/// `oryx inspect blocklog DIR --verify --key KEY --json`.
fn inspect_verify(dir: &Path, key: &PublicKey) -> Result<serde_json::Value, String> {
    inspect_verify_with(dir, key, &[])
}

fn inspect_verify_with(
    dir: &Path,
    key: &PublicKey,
    extra: &[&str],
) -> Result<serde_json::Value, String> {
    let out = Command::new(sibling_bin("oryx"))
        .args(["inspect", "blocklog"])
        .arg(dir)
        .args(["--verify", "--key", &key.to_string(), "--json"])
        .args(extra)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// A signer with a software producer key (`init --dev`) in `tmp/signer`, and an empty spool
/// directory `tmp/spool`.
fn soft_signer(tmp: &Path) -> (Signer, PublicKey, PathBuf) {
    let sdir = tmp.join("signer");
    std::fs::create_dir_all(&sdir).unwrap();
    init(&sdir, true);
    let key = first_key(&sdir);
    let signer = Signer::start(&sdir, &[]);
    let spool = tmp.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    (signer, key, spool)
}

/// Spooled transactions (JSON and binary, before and during the run) land in verified blocks
/// with matching merkle roots, leave the spool, and a restart continues from the logged head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produces_blocks_with_spooled_transactions() {
    let tmp = tempfile::tempdir().unwrap();
    let (signer, key, spool) = soft_signer(tmp.path());

    let mut want = HashSet::new();
    for i in 0..5 {
        let p = signed_trx(&signer, &key, &format!("before-{i}")).await;
        want.insert(p.id().unwrap());
        spool_put(&spool, &format!("{i:03}"), &p, i % 2 == 0);
    }
    std::fs::write(
        spool.join("999-garbage.json"),
        b"{\"not\": \"a transaction\"}",
    )
    .unwrap();

    let ndir = tmp.path().join("node");
    let metrics = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let cfg = node_config(
        &ndir,
        &signer,
        &key,
        &spool,
        &[],
        &format!("\n[observability]\nlisten = \"{metrics}\"\n"),
    );
    let mut node = Node::start(&cfg, Arc::new(Mutex::new(Vec::new())));
    wait_until("the first five transactions in blocks", || {
        let got: HashSet<_> = included_ids(&blocks(&ndir)).into_iter().collect();
        want.is_subset(&got)
    });
    for i in 5..7 {
        let p = signed_trx(&signer, &key, &format!("during-{i}")).await;
        want.insert(p.id().unwrap());
        spool_put(&spool, &format!("{i:03}"), &p, i % 2 == 0);
    }
    wait_until("the two later transactions in blocks", || {
        let got: HashSet<_> = included_ids(&blocks(&ndir)).into_iter().collect();
        want.is_subset(&got)
    });
    // The producer shows what it did on /metrics (a block reaches the log just before it is
    // counted, so wait for the count).
    let produced = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("oryx_node_blocks_total{how=\"produced\"} ")?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    wait_until("two produced blocks counted", || {
        produced(&http_get(&metrics, "/metrics").1) >= 2
    });
    let (_, text) = http_get(&metrics, "/metrics");
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in {text}"))
    };
    assert!(
        value("oryx_node_blocks_total{how=\"produced\"}") >= 2,
        "{text}"
    );
    assert!(value("oryx_node_head_block_num") >= 3, "{text}");
    assert_eq!(value("oryx_node_active"), 1, "{text}");
    assert_eq!(value("oryx_node_signer_connected"), 1, "{text}");
    assert!(value("oryx_node_sign_block_seconds_count") >= 2, "{text}");
    assert_eq!(http_get(&metrics, "/healthz").0, 200);
    let before = head_num(&ndir);
    wait_until("a few more blocks", || head_num(&ndir) >= before + 3);
    node.stop();

    let chain = blocks(&ndir);
    let ids = included_ids(&chain);
    assert_eq!(ids.len(), want.len(), "every transaction exactly once");
    assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), want);
    for (_, b) in &chain {
        assert!(
            b.transaction_mroot_matches(),
            "block {:?}",
            b.header.block_num()
        );
        let id = b.header.id().unwrap();
        assert_eq!(b.producer_signature.recover(&id).unwrap(), key);
    }
    // The spool is empty; the files moved to included/, the garbage to rejected/.
    let left: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        std::fs::read_dir(spool.join("included")).unwrap().count(),
        7
    );
    assert!(spool.join("rejected/999-garbage.json").exists());
    assert!(node.log_contains("rejected a transaction file"));

    let v = inspect_verify(&ndir.join("blocks"), &key).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["count"].as_u64().unwrap() as usize, chain.len());
    // The wrong key fails verification with a reason and a non-zero exit.
    let other = PublicKey::parse("EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV").unwrap();
    let err = inspect_verify(&ndir.join("blocks"), &other).unwrap_err();
    assert!(err.contains("not by"), "{err}");

    // A crash after the signer signed but before the block was logged: the block is in the
    // pending file and the signer's watermark, not in the log. On restart the node restores
    // its head from the log, replays the identical request (the signer answers with the
    // stored signature), logs that block, and builds on it.
    let orphan = signed_but_unlogged(&signer, &key, &ndir).await;
    let n = chain.len();
    node.restart();
    wait_until("blocks after the restart", || blocks(&ndir).len() >= n + 3);
    node.stop();
    assert!(node.log_contains("logged a block the signer had already signed"));
    let after = blocks(&ndir);
    assert_eq!(
        after[n].1.header, orphan.header,
        "the signed-but-unlogged block"
    );
    assert_eq!(after[n + 1].1.header.previous, orphan.header.id().unwrap());
    inspect_verify(&ndir.join("blocks"), &other).unwrap_err();
    inspect_verify(&ndir.join("blocks"), &key).unwrap();
}

/// The signer signs a block but its answer never arrives (here: the node is down, and the signer
/// is down too when the node comes back). The node must send that identical block again, slot
/// after slot, until the signer answers with the stored signature: building a different block
/// at that height would be refused forever, and the chain would halt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_block_is_sent_again_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut signer, key, spool) = soft_signer(tmp.path());
    signer.pin_port();
    let ndir = tmp.path().join("node");
    let ncfg = node_config(&ndir, &signer, &key, &spool, &[], "");
    let mut node = Node::start(&ncfg, Arc::new(Mutex::new(Vec::new())));
    wait_until("three blocks", || blocks(&ndir).len() >= 3);
    node.stop();

    let n = blocks(&ndir).len();
    let unanswered = signed_but_unlogged(&signer, &key, &ndir).await;
    signer.kill();

    node.restart();
    // Several slots with the signer away: every one must keep the pending block.
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(blocks(&ndir).len(), n);
    let _signer = Signer::start(&signer.dir.clone(), &[]);
    wait_until("blocks after the signer is back", || {
        blocks(&ndir).len() >= n + 2
    });
    node.stop();
    let after = blocks(&ndir);
    assert_eq!(
        after[n].1.header, unanswered.header,
        "the block the signer had signed"
    );
    assert_eq!(
        after[n + 1].1.header.previous,
        unanswered.header.id().unwrap()
    );
    assert!(node.log_contains("sending the unanswered pending block again"));
    inspect_verify(&ndir.join("blocks"), &key).unwrap();
}

/// Two instances of one producer against one signer (SoftHSM2 key): one wins each height, the
/// other is refused and stands by following its log; the active one is SIGKILLed, the standby
/// takes over, the killed one restarts and follows. At the end the two logs hold one chain:
/// one block per height, identical bytes where both have it, continuous, every block verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_one_block_per_height() {
    let tmp = tempfile::tempdir().unwrap();
    let sdir = tmp.path().join("signer");
    std::fs::create_dir_all(&sdir).unwrap();
    init(&sdir, false);
    let conf = softhsm_backend(&sdir, "oryx");
    let key = hsm_key(&sdir, &conf, "producer", false);
    configure_hsm_keys(&sdir, &[key], "[\"block\", \"transaction\"]", false);
    let signer = Signer::start(&sdir, &[("SOFTHSM2_CONF", conf.to_str().unwrap())]);
    // Each instance has its own spool (separate hosts); the relay drops every transaction
    // into both.
    let (adir, bdir) = (tmp.path().join("a"), tmp.path().join("b"));
    let spools = [adir.join("spool"), bdir.join("spool")];
    for s in &spools {
        std::fs::create_dir_all(s).unwrap();
    }
    let acfg = node_config(
        &adir,
        &signer,
        &key,
        &spools[0],
        &[&bdir.join("blocks")],
        "",
    );
    let bcfg = node_config(
        &bdir,
        &signer,
        &key,
        &spools[1],
        &[&adir.join("blocks")],
        "",
    );
    let dirs = [adir.clone(), bdir.clone()];
    let mut want = HashSet::new();
    spool_some(&signer, &key, &spools, "start", &mut want).await;
    // A starts first; B starts with a transaction only it has, so its first block differs
    // from A's at the same height and the signer has to refuse one of them.
    let a = Node::start(&acfg, Arc::new(Mutex::new(Vec::new())));
    wait_until("A's first blocks", || head_num(&adir) >= 5);
    let only_b = signed_trx(&signer, &key, "only-b").await;
    spool_put(&spools[1], "000-only-b", &only_b, true);
    let b = Node::start(&bcfg, Arc::new(Mutex::new(Vec::new())));
    let mut nodes = [a, b];

    let top = |dirs: &[PathBuf; 2]| dirs.iter().map(|d| head_num(d)).max().unwrap();
    // B builds a different block at the same height as A only if its first slot comes before
    // A's block for that slot reaches A's log (otherwise B adopts it and stands by without
    // trying, which is right, but shows no refusal). On a loaded machine that can miss: start
    // B again until a conflict has happened.
    let conflict = |nodes: &[Node; 2]| nodes.iter().any(|n| n.log_contains("DOUBLE_SIGN"));
    for _ in 0..8 {
        let deadline = Instant::now() + Duration::from_secs(4);
        while !conflict(&nodes) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if conflict(&nodes) {
            break;
        }
        nodes[1].stop();
        nodes[1].restart();
    }
    assert!(
        conflict(&nodes),
        "no conflicting attempt after 8 starts of B"
    );
    wait_until("20 blocks", || top(&dirs) >= 21);
    // The active instance is the one that produced the latest block.
    let last = |n: &Node| n.produced().last().copied().unwrap_or(0);
    let active = if last(&nodes[0]) > last(&nodes[1]) {
        0
    } else {
        1
    };
    let standby = 1 - active;
    assert!(
        nodes.iter().any(
            |n| n.log_contains("the signer refused the block") && n.log_contains("DOUBLE_SIGN")
        ),
        "the instance that lost a height logs the refusal with its reason"
    );
    nodes[active].kill();
    let killed_at = top(&dirs);
    spool_some(&signer, &key, &spools, "after-kill", &mut want).await;
    wait_until("the standby takes over and produces 15 blocks", || {
        nodes[standby]
            .produced()
            .iter()
            .filter(|n| **n > killed_at)
            .count()
            >= 15
    });
    assert!(nodes[standby].log_contains("trying to take over"));
    // The killed instance comes back, follows the new active one, and may win heights again.
    nodes[active].restart();
    spool_some(&signer, &key, &spools, "after-restart", &mut want).await;
    let target = (top(&dirs) + 20).max(63);
    wait_until("20 more blocks, both logs caught up", || {
        head_num(&dirs[0]) >= target && head_num(&dirs[1]) >= target
    });
    for n in &mut nodes {
        n.stop();
    }

    // One chain across both logs.
    let by_height = one_chain(&dirs);
    let heights: Vec<u32> = by_height.keys().copied().collect();
    assert_eq!(heights[0], 2, "the chain starts at block 2");
    assert!(heights.len() >= 60, "{} heights", heights.len());
    let mut previous = None;
    for (i, (n, bytes)) in by_height.iter().enumerate() {
        assert_eq!(*n, heights[0] + i as u32, "heights are continuous");
        let b = SignedBlock::decode(bytes).unwrap();
        let id = b.header.id().unwrap();
        assert_eq!(b.producer_signature.recover(&id).unwrap(), key, "block {n}");
        assert!(b.transaction_mroot_matches());
        if let Some(p) = previous {
            assert_eq!(b.header.previous, p, "block {n} links to {}", n - 1);
        }
        previous = Some(id);
    }
    // Every spooled transaction is in the chain exactly once.
    let all: Vec<(Vec<u8>, SignedBlock)> = by_height
        .values()
        .map(|b| (b.clone(), SignedBlock::decode(b).unwrap()))
        .collect();
    let ids = included_ids(&all);
    let unique: HashSet<Checksum256> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "no transaction twice");
    assert!(
        want.is_subset(&unique),
        "every relayed transaction is in the chain"
    );
    for d in &dirs {
        inspect_verify(&d.join("blocks"), &key).unwrap();
    }
}

/// Legacy headers: the configured schedule version, the legacy `sig_digest` (blockroot merkle
/// root and pending schedule hash sent with the header) signed and verified, legacy merkle roots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_headers_are_signed_and_verify() {
    use oryx_proto::antelope::block::BlockKind;
    let tmp = tempfile::tempdir().unwrap();
    let (signer, key, spool) = soft_signer(tmp.path());
    let mut want = HashSet::new();
    for i in 0..3 {
        let p = signed_trx(&signer, &key, &format!("legacy-{i}")).await;
        want.insert(p.id().unwrap());
        spool_put(&spool, &format!("{i:03}"), &p, i == 0);
    }
    let ndir = tmp.path().join("node");
    let cfg = node_config(
        &ndir,
        &signer,
        &key,
        &spool,
        &[],
        "legacy = true\nschedule_version = 3\n",
    );
    let mut node = Node::start(&cfg, Arc::new(Mutex::new(Vec::new())));
    wait_until("legacy blocks with the transactions", || {
        let chain = blocks(&ndir);
        chain.len() >= 5 && want.is_subset(&included_ids(&chain).into_iter().collect())
    });
    node.stop();
    let chain = blocks(&ndir);
    for (_, b) in &chain {
        assert_eq!(b.header.kind(), BlockKind::Legacy);
        assert_eq!(b.header.schedule_version, 3);
        assert!(b.transaction_mroot_matches());
    }
    let hash = oryx_node::produce::assemble::legacy_schedule_hash(
        3,
        Name::new("oryxproducer").unwrap(),
        &key,
    );
    assert!(
        node.log_contains(&hash.to_string()),
        "the node logs the schedule hash"
    );
    let dir = ndir.join("blocks");
    let v = inspect_verify_with(&dir, &key, &["--schedule-hash", &hash.to_string()]).unwrap();
    assert_eq!(v["verified"], true);
    let err = inspect_verify(&dir, &key).unwrap_err();
    assert!(err.contains("--schedule-hash"), "{err}");
    let wrong = Checksum256([1; 32]).to_string();
    let err = inspect_verify_with(&dir, &key, &["--schedule-hash", &wrong]).unwrap_err();
    assert!(
        err.contains("not by") || err.contains("does not recover"),
        "{err}"
    );
}

/// A rotation's hand-over retires the key `oryx-node produce` was configured with: the active
/// instance moves to the successor the signer names (on its `KEY_RETIRED` refusal) and the
/// standby moves when it sees a followed block signed by it — no config edit, no restart, no
/// height signed twice, and the log verifies with the key history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_follows_a_rotation_hand_over_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let sdir = tmp.path().join("signer");
    std::fs::create_dir_all(&sdir).unwrap();
    init(&sdir, true);
    let text = std::fs::read_to_string(config_path(&sdir)).unwrap();
    std::fs::write(config_path(&sdir), format!("admins = [\"node1\"]\n{text}")).unwrap();
    let old = first_key(&sdir);
    let signer = Signer::start(&sdir, &[]);
    let spool = tmp.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let (adir, bdir) = (tmp.path().join("a"), tmp.path().join("b"));
    let acfg = node_config(&adir, &signer, &old, &spool, &[&bdir.join("blocks")], "");
    let bcfg = node_config(&bdir, &signer, &old, &spool, &[&adir.join("blocks")], "");
    let a = Node::start(&acfg, Arc::new(Mutex::new(Vec::new())));
    wait_until("A's first blocks", || head_num(&adir) >= 5);
    let b = Node::start(&bcfg, Arc::new(Mutex::new(Vec::new())));
    wait_until("B follows", || head_num(&bdir) >= 7);

    // The ceremony's two signer calls: a successor, then the hand-over.
    let mut admin = signer.client("node1").await;
    let new = admin
        .generate_key(grpc::GenerateKeyRequest {
            backend: "dev".into(),
            label: "producer-2".into(),
            key_type: "K1".into(),
            successor_of: old.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    let new = PublicKey::parse(&new.public_key).unwrap();
    let listed = admin
        .list_keys(grpc::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    let info = listed
        .iter()
        .find(|k| k.public_key == new.to_string())
        .unwrap();
    assert_eq!(info.predecessors, vec![old.to_string()]);
    // Before the hand-over the old key keeps producing.
    let before = head_num(&adir);
    wait_until("blocks after the successor exists", || {
        head_num(&adir) >= before + 3
    });
    assert!(blocks(&adir.join("blocks")).iter().all(|(_, b)| {
        b.producer_signature
            .recover(&b.header.id().unwrap())
            .unwrap()
            == old
    }));
    admin
        .retire_key(grpc::RetireKeyRequest {
            public_key: old.to_string(),
            successor: new.to_string(),
        })
        .await
        .unwrap();
    let handed = head_num(&adir).max(head_num(&bdir));
    let mut nodes = [a, b];
    let dirs = [adir.clone(), bdir.clone()];
    wait_until("10 blocks after the hand-over in both logs", || {
        dirs.iter().all(|d| head_num(d) >= handed + 10)
    });
    let moved = "producing with its successor";
    wait_until("both instances say they moved", || {
        nodes.iter().all(|n| n.log_contains(moved))
    });
    for n in &mut nodes {
        n.stop();
    }

    // One chain, each height once; old key up to the hand-over, new key after, never back.
    let by_height = one_chain(&dirs);
    let signers: Vec<PublicKey> = by_height
        .values()
        .map(|bytes| {
            let b = SignedBlock::decode(bytes).unwrap();
            b.producer_signature
                .recover(&b.header.id().unwrap())
                .unwrap()
        })
        .collect();
    let switch = signers.iter().position(|k| *k == new).unwrap();
    assert!(signers[..switch].iter().all(|k| *k == old));
    assert!(signers[switch..].iter().all(|k| *k == new));
    let heights: Vec<u32> = by_height.keys().copied().collect();
    assert!(
        heights.windows(2).all(|w| w[1] == w[0] + 1),
        "no height missing across the switch"
    );
    let history = ["--key", &new.to_string()];
    for d in &dirs {
        inspect_verify_with(&d.join("blocks"), &old, &history).unwrap();
        // The old key alone does not verify the log past the hand-over.
        assert!(inspect_verify(&d.join("blocks"), &old).is_err());
    }
}
