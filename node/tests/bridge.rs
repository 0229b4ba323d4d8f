//! The keosd bridge, driven exactly as nodeos drives keosd: the `KEOSD:unix://…/v1/wallet/
//! sign_digest` URL split the way fc's http client splits it, Boost.Beast's request headers, one
//! kept-alive connection for every request; and as cleos drives it for transactions. Real signer
//! (SoftHSM2 K1 and P-256 keys) behind real mTLS; every signature checked by recovery here and
//! by `@wharfkit/antelope`.
//!
//! Needs the `oryx-signer` binary beside this test executable: `cargo test --workspace` builds
//! it; before `cargo test -p oryx-node`, run `cargo build -p oryx-signer` (same target directory).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use oryx_node::bridge::client::KeosdClient;
use oryx_proto::antelope::actions::PermissionLevel;
use oryx_proto::antelope::actions::Transfer;
use oryx_proto::antelope::codec::Pack as _;
use oryx_proto::antelope::transaction::{Action, Transaction};
use oryx_proto::antelope::{Bytes, Checksum256, Name, PublicKey, Signature, TimePointSec};
use oryx_tests::harness::*;
use serde_json::{Value, json};

fn post(c: &mut KeosdClient, path: &str, body: &str) -> (u16, String, String) {
    let a = c.post(path, body).unwrap();
    (a.status, a.head, a.body)
}

fn sign_digest(c: &mut KeosdClient, digest: &Checksum256, key: &PublicKey) -> (u16, String) {
    let a = c.sign_digest(digest, key).unwrap();
    (a.status, a.body)
}

/// A running `oryx-node bridge`.
struct Bridge {
    child: Child,
    /// What the bridge printed after its listeners came up.
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    unix: PathBuf,
    tcp: String,
    metrics: String,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TCP listener's token in the tests' bridge config.
const TOKEN: &str = "4f7e1c0a9b3d5e2f8a6c4b1d0e9f7a3c";

/// The TCP listener's `sign_digest` URL, with the token.
fn tcp_url(addr: &str) -> String {
    format!("http://{addr}/{TOKEN}/v1/wallet/sign_digest")
}

fn write_node_config(dir: &Path, signer_addr: &str) -> PathBuf {
    let tls = dir.join("tls");
    let cfg = dir.join("oryx-node.toml");
    write_secret(&dir.join("bridge-token"), &format!("{TOKEN}\n"));
    std::fs::write(
        &cfg,
        format!(
            "[signer]\naddress = \"{signer_addr}\"\nca_cert = \"{t}/ca.pem\"\ncert = \"{t}/node1.pem\"\nkey = \"{t}/node1.key\"\n\n\
             [bridge]\nchain_id = \"eos\"\nunix_socket = \"{sock}\"\nlisten = \"127.0.0.1:0\"\nlisten_token_file = \"{token}\"\nnodeos_timeout_ms = 5\n\n\
             [observability]\nlisten = \"127.0.0.1:0\"\n",
            t = tls.display(),
                        sock = dir.join("keosd.sock").display(),
            token = dir.join("bridge-token").display(),
        ),
    )
    .unwrap();
    cfg
}

fn start_bridge(cfg: &Path) -> Bridge {
    let mut b = Bridge {
        child: Command::new(env!("CARGO_BIN_EXE_oryx-node"))
            .args(["bridge", "-c", cfg.to_str().unwrap()])
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
        output: Default::default(),
        unix: PathBuf::new(),
        tcp: String::new(),
        metrics: String::new(),
    };
    let mut lines = BufReader::new(b.child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("bridge exited").unwrap();
        if let Some(p) = line.strip_prefix("bridge listening on unix://") {
            b.unix = PathBuf::from(p);
        } else if let Some(a) = line.strip_prefix("bridge listening on http://") {
            b.tcp = a.to_string();
        } else if let Some(a) = line.strip_prefix("metrics on ") {
            b.metrics = a.to_string();
            let output = std::sync::Arc::clone(&b.output);
            std::thread::spawn(move || {
                for l in lines.map_while(Result::ok) {
                    output.lock().unwrap().push(l);
                }
            });
            wait_healthy(&b, 200);
            return b;
        }
    }
}

/// Waits for `/healthz` to answer `want` (a guard against a hang, not a performance bound).
fn wait_healthy(b: &Bridge, want: u16) {
    for _ in 0..3000 {
        if http_get(&b.metrics, "/healthz").0 == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("bridge /healthz never became {want} within 60 s");
}

fn sig(body: &str) -> Signature {
    let s: String = serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    Signature::parse(&s).unwrap()
}

/// A keosd error body: (error.code, error.name, details[0].message).
fn keosd_error(status: u16, body: &str) -> (i64, String, String) {
    assert_eq!(status, 500, "{body}");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["code"], 500, "{body}");
    assert_eq!(v["message"], "Internal Service Error", "{body}");
    let e = &v["error"];
    assert!(e["what"].is_string(), "{body}");
    (
        e["code"].as_i64().unwrap(),
        e["name"].as_str().unwrap().to_string(),
        e["details"][0]["message"].as_str().unwrap().to_string(),
    )
}

fn setup(dir: &Path) -> (Vec<(String, String)>, Vec<PublicKey>) {
    init(dir, false);
    let conf = softhsm_backend(dir, "bridge");
    let env = vec![(
        "SOFTHSM2_CONF".to_string(),
        conf.to_str().unwrap().to_string(),
    )];
    let keys = vec![
        hsm_key(dir, &conf, "producer-k1", false),
        hsm_key(dir, &conf, "producer-r1", true),
    ];
    configure_hsm_keys(dir, &keys, r#"["block", "transaction", "digest"]"#, true);
    (env, keys)
}

/// A signer (SoftHSM2 K1 and P-256 keys, its port pinned so it can restart in place) with a
/// bridge in front of it. Fields drop in order: bridge, signer, then the directory.
struct Rig {
    bridge: Bridge,
    signer: Signer,
    keys: Vec<PublicKey>,
    env: Vec<(String, String)>,
    cfg: PathBuf,
    url: String,
    dir: tempfile::TempDir,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (env, keys) = setup(dir.path());
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let signer = Signer::start(dir.path(), &env_ref);
    signer.pin_port();
    let cfg = write_node_config(dir.path(), &signer.addr);
    let bridge = start_bridge(&cfg);
    let url = format!("unix://{}/v1/wallet/sign_digest", bridge.unix.display());
    Rig {
        bridge,
        signer,
        keys,
        env,
        cfg,
        url,
        dir,
    }
}

impl Rig {
    /// nodeos's connection to the bridge.
    fn nodeos(&self) -> KeosdClient {
        KeosdClient::connect(&self.url).unwrap()
    }

    /// Starts the signer again in the same directory (same port).
    fn restart_signer(&mut self) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        self.signer = Signer::start(self.dir.path(), &env);
    }
}

fn transfer_trx(i: u32) -> Transaction {
    let alice = Name::new("alice").unwrap();
    let data = Transfer {
        from: alice,
        to: Name::new("bob").unwrap(),
        quantity: "1.0000 EOS".parse().unwrap(),
        memo: format!("oryx bridge test {i}"),
    };
    Transaction {
        expiration: TimePointSec(1_900_000_000 + i),
        ref_block_num: 7,
        ref_block_prefix: 0x1234_5678,
        max_net_usage_words: Default::default(),
        max_cpu_usage_ms: 0,
        delay_sec: Default::default(),
        context_free_actions: vec![],
        actions: vec![Action {
            account: Name::new("eosio.token").unwrap(),
            name: Name::new("transfer").unwrap(),
            authorization: vec![PermissionLevel {
                actor: alice,
                permission: Name::new("active").unwrap(),
            }],
            data: Bytes(data.packed()),
        }],
        transaction_extensions: vec![],
    }
}

#[test]
fn nodeos_signs_savanna_blocks_and_cleos_signs_transactions_through_the_bridge() {
    let r = rig();
    let (bridge, keys, url) = (&r.bridge, &r.keys[..], &r.url);
    let mut nodeos = r.nodeos();
    assert_eq!(nodeos.path, "/v1/wallet/sign_digest");

    // The socket is the operator's alone.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&bridge.unix)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // get_public_keys, as keosd answers it: K1 in the legacy form.
    let (status, _, body) = post(&mut nodeos, "/v1/wallet/get_public_keys", "");
    assert_eq!(status, 201, "{body}");
    let listed: Vec<String> = serde_json::from_str(&body).unwrap();
    for k in keys {
        let want = k.to_legacy_string().unwrap_or_else(|| k.to_string());
        assert!(listed.contains(&want), "{want} not in {listed:?}");
    }

    let mut checks = Vec::new();
    let base = 1_000u32;
    for (ki, key) in keys.iter().enumerate() {
        for n in base..base + 12 {
            let id = savanna(n, n, ki as u8).id().unwrap();
            let (status, body) = sign_digest(&mut nodeos, &id, key);
            assert_eq!(status, 201, "height {n}: {body}");
            let s = sig(&body);
            assert_eq!(&s.recover(&id).unwrap(), key, "height {n}");
            checks.push(json!({"digest": id.to_string(), "signature": s.to_string(), "public_key": key.to_string()}));
            if n == base + 5 {
                // nodeos retrying the same block: the same signature, not a second one.
                let (status, again) = sign_digest(&mut nodeos, &id, key);
                assert_eq!((status, &again), (201, &body));
                // A different block id at the same height: keosd's error shape, reason named.
                let other = savanna(n, n, 0x7f).id().unwrap();
                let (status, body) = sign_digest(&mut nodeos, &other, key);
                let (code, name, detail) = keosd_error(status, &body);
                assert_eq!(
                    (code, name.as_str()),
                    (3_120_000, "oryx_double_sign"),
                    "{body}"
                );
                assert!(detail.starts_with("DOUBLE_SIGN"), "{detail}");
                // ... and where the signer recorded the refusal, for the operator.
                assert!(detail.contains("(signer audit "), "{detail}");
                // And a lower height.
                let (status, body) =
                    sign_digest(&mut nodeos, &savanna(n - 1, n - 1, 9).id().unwrap(), key);
                assert_eq!(keosd_error(status, &body).1, "oryx_double_sign");
            }
        }
    }

    // Bad input: keosd-shaped errors, nothing forwarded, the connection stays usable.
    let (status, _, body) = post(&mut nodeos, "/v1/wallet/sign_digest", "[\"00\",");
    assert_eq!(keosd_error(status, &body).0, 4);
    let unknown =
        PublicKey::parse("PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63").unwrap();
    let (status, body) = sign_digest(
        &mut nodeos,
        &savanna(base + 50, 1, 0).id().unwrap(),
        &unknown,
    );
    // (Authorization comes first, so a key nobody may use is not revealed to exist or not.)
    assert_eq!(keosd_error(status, &body).1, "oryx_policy_denied", "{body}");
    let (status, _, body) = post(&mut nodeos, "/v1/wallet/unlock", "[\"default\",\"pw\"]");
    assert!(keosd_error(status, &body).2.contains("HSM"), "{body}");
    let (status, _, _) = post(&mut nodeos, "/v1/chain/get_info", "");
    assert_eq!(status, 404);

    // The same over loopback TCP (`KEOSD:http://127.0.0.1:PORT/<token>/v1/wallet/sign_digest`),
    // kept alive too.
    let mut tcp = KeosdClient::connect(&tcp_url(&bridge.tcp)).unwrap();
    for n in base + 12..base + 15 {
        let id = savanna(n, n, 0).id().unwrap();
        let (status, body) = sign_digest(&mut tcp, &id, &keys[0]);
        assert_eq!(status, 201, "{body}");
        assert_eq!(sig(&body).recover(&id).unwrap(), keys[0]);
    }
    // Another local user without the token (none, a wrong one, one character off) is refused
    // with a bare 404 that echoes nothing, and nothing is signed.
    let wrong = format!("{}0", &TOKEN[..TOKEN.len() - 1]);
    for url in [
        format!("http://{}/v1/wallet/sign_digest", bridge.tcp),
        format!("http://{}/{wrong}/v1/wallet/sign_digest", bridge.tcp),
        format!("http://{}/{TOKEN}x/v1/wallet/sign_digest", bridge.tcp),
    ] {
        let mut stranger = KeosdClient::connect(&url).unwrap();
        let id = savanna(base + 15, base + 15, 0).id().unwrap();
        let (status, body) = sign_digest(&mut stranger, &id, &keys[0]);
        assert_eq!((status, body.as_str()), (404, "not found\n"), "{url}");
    }
    let id = savanna(base + 15, base + 15, 0).id().unwrap();
    assert_eq!(sign_digest(&mut tcp, &id, &keys[0]).0, 201);

    // cleos: [transaction, [keys], chain_id] → the transaction with both signatures.
    let chain = Checksum256::from_hex(EOS).unwrap();
    let mut trx_checks = Vec::new();
    for i in 0..3 {
        let trx = transfer_trx(i);
        let mut obj = serde_json::to_value(&trx).unwrap();
        obj["signatures"] = json!([]);
        obj["context_free_data"] = json!([]);
        let key_strings: Vec<String> = keys
            .iter()
            .map(|k| k.to_legacy_string().unwrap_or_else(|| k.to_string()))
            .collect();
        let req = json!([obj, key_strings, EOS]).to_string();
        let mut cleos = KeosdClient::connect(url).unwrap();
        let (status, _, body) = post(&mut cleos, "/v1/wallet/sign_transaction", &req);
        assert_eq!(status, 201, "{body}");
        let signed: Value = serde_json::from_str(&body).unwrap();
        let sigs = signed["signatures"].as_array().unwrap();
        assert_eq!(sigs.len(), 2, "{body}");
        assert_eq!(signed["actions"], obj["actions"]);
        let digest = trx.signing_digest(&chain, &[]);
        for (s, k) in sigs.iter().zip(keys) {
            let s = Signature::parse(s.as_str().unwrap()).unwrap();
            assert_eq!(&s.recover(&digest).unwrap(), k);
        }
        trx_checks.push(json!({
            "chain_id": EOS,
            "packed_trx": hex::encode(trx.packed()),
            "context_free_data": [],
            "id": trx.id().to_string(),
            "sig_digest": digest.to_string(),
            "signatures": sigs,
            "public_keys": keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    }

    // An independent implementation agrees with every signature.
    let out =
        oryx_tests::wharfkit::check(&json!({"signatures": checks, "transactions": trx_checks}));
    for r in out["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .chain(out["transactions"].as_array().unwrap())
    {
        assert_eq!(r["ok"], true, "{r}");
    }

    // At startup the bridge added the signer's self-tested signing time to its round trip.
    for k in keys {
        let prefix = format!("key {k} (pkcs11): signer signs in p50 ");
        let printed = (0..500).any(|_| {
            let found = bridge
                .output
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.starts_with(&prefix) && l.contains("estimated sign_digest p99"));
            if !found {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            found
        });
        assert!(
            printed,
            "no startup estimate for {k}: {:?}",
            bridge.output.lock().unwrap()
        );
    }

    // The bridge measured itself.
    let (_, metrics) = http_get(&bridge.metrics, "/metrics");
    assert!(
        metrics.contains("oryx_node_bridge_sign_digest_seconds_count"),
        "{metrics}"
    );
    assert!(
        metrics.contains("oryx_node_signer_connected 1"),
        "{metrics}"
    );
    let count = |outcome: &str| -> u64 {
        let prefix = format!("oryx_node_bridge_requests_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap()
            .parse()
            .unwrap()
    };
    // (The refused strangers never reach the bridge's handler: they are not counted.)
    assert_eq!(count("signed"), 2 * 12 + 2 + 3 + 1 + 3 * 2);
    assert_eq!(count("malformed"), 3); // bad JSON, unlock, an unknown endpoint
    assert_eq!(count("refused"), 2 * 2 + 1); // per key a conflict and a lower height; the unknown key
}

#[test]
fn the_bridge_reconnects_after_a_signer_restart() {
    let mut r = rig();
    let mut nodeos = r.nodeos();
    let keys = r.keys.clone();
    let id = savanna(500, 500, 0).id().unwrap();
    let (status, first) = sign_digest(&mut nodeos, &id, &keys[0]);
    assert_eq!(status, 201, "{first}");

    r.signer.kill();
    // nodeos hears keosd's "no wallet available", promptly, on the same connection.
    let (status, body) = sign_digest(&mut nodeos, &savanna(501, 501, 0).id().unwrap(), &keys[0]);
    let (code, name, _) = keosd_error(status, &body);
    assert_eq!(
        (code, name.as_str()),
        (3_120_006, "wallet_not_available_exception"),
        "{body}"
    );
    wait_healthy(&r.bridge, 503);

    r.restart_signer();
    wait_healthy(&r.bridge, 200);
    // The watermark survived the restart: the retry of the signed block gets the same
    // signature, the next height is signed.
    let (status, again) = sign_digest(&mut nodeos, &id, &keys[0]);
    assert_eq!((status, again), (201, first));
    let next = savanna(501, 501, 0).id().unwrap();
    let (status, body) = sign_digest(&mut nodeos, &next, &keys[0]);
    assert_eq!(status, 201, "{body}");
    assert_eq!(sig(&body).recover(&next).unwrap(), keys[0]);
    let (_, metrics) = http_get(&r.bridge.metrics, "/metrics");
    assert!(
        metrics.contains("oryx_node_signer_connects_total 2"),
        "{metrics}"
    );
}

/// Sends `sig` (`STOP`, `CONT`) to a process.
fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

#[test]
fn the_bridge_drops_a_connection_to_a_signer_that_stopped_answering() {
    // A frozen signer (SIGSTOP) looks like a host that lost power: TCP stays "up", nothing
    // answers. The bridge must notice, say so on /healthz, and reconnect once it is back.
    let r = rig();
    let (bridge, keys) = (&r.bridge, &r.keys[..]);
    let mut nodeos = r.nodeos();
    let id = savanna(800, 800, 0).id().unwrap();
    let (status, body) = sign_digest(&mut nodeos, &id, &keys[0]);
    assert_eq!(status, 201, "{body}");

    let pid = r.signer.child.id();
    signal(pid, "STOP");
    // The call fails (keepalive or the bridge's deadline, whichever comes first) with keosd's
    // "no wallet available", and the dead connection is dropped.
    let (status, body) = sign_digest(&mut nodeos, &savanna(801, 801, 0).id().unwrap(), &keys[0]);
    let (code, name, _) = keosd_error(status, &body);
    assert_eq!(
        (code, name.as_str()),
        (3_120_006, "wallet_not_available_exception"),
        "{body}"
    );
    wait_healthy(bridge, 503);

    signal(pid, "CONT");
    wait_healthy(bridge, 200);
    // (The frozen request may have been signed on resume: go above it.)
    let next = savanna(803, 803, 0).id().unwrap();
    let (status, body) = sign_digest(&mut nodeos, &next, &keys[0]);
    assert_eq!(status, 201, "{body}");
    assert_eq!(sig(&body).recover(&next).unwrap(), keys[0]);
    let (_, metrics) = http_get(&bridge.metrics, "/metrics");
    let connects: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("oryx_node_signer_connects_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(connects >= 2, "{metrics}");
}

#[test]
fn a_second_bridge_on_the_same_socket_is_refused_and_the_first_keeps_serving() {
    let r = rig();
    let (first, keys, cfg) = (&r.bridge, &r.keys[..], &r.cfg);
    let mut nodeos = r.nodeos();
    let id = savanna(700, 700, 0).id().unwrap();
    let (status, body) = sign_digest(&mut nodeos, &id, &keys[0]);
    assert_eq!(status, 201, "{body}");
    let socket_before = std::fs::symlink_metadata(&first.unix).unwrap();

    // Same config, same unix_socket (its TCP listeners take fresh ports).
    let out = Command::new(env!("CARGO_BIN_EXE_oryx-node"))
        .args(["bridge", "-c", cfg.to_str().unwrap()])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("another bridge") && stderr.contains("keosd.sock.lock"),
        "{stderr}"
    );
    assert!(!stdout.contains("bridge listening"), "{stdout}");

    // The first bridge's socket is untouched and still answers, on the kept-alive connection
    // and on a new one.
    use std::os::unix::fs::MetadataExt as _;
    let socket_after = std::fs::symlink_metadata(&first.unix).unwrap();
    assert_eq!(
        (socket_before.dev(), socket_before.ino()),
        (socket_after.dev(), socket_after.ino())
    );
    let next = savanna(701, 701, 0).id().unwrap();
    let (status, body) = sign_digest(&mut nodeos, &next, &keys[0]);
    assert_eq!(status, 201, "{body}");
    assert_eq!(sig(&body).recover(&next).unwrap(), keys[0]);
    let mut fresh = r.nodeos();
    let (status, body) = sign_digest(&mut fresh, &savanna(702, 702, 0).id().unwrap(), &keys[0]);
    assert_eq!(status, 201, "{body}");
}

#[test]
fn the_bench_plays_nodeos_and_prints_floors() {
    let r = rig();
    let (keys, cfg) = (&r.keys[..], &r.cfg);
    let bench = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_oryx-node"))
            .args([
                "bench",
                "-c",
                cfg.to_str().unwrap(),
                "--key",
                &keys[1].to_string(),
            ])
            .args(["--requests", "30", "--floor-samples", "10", "--json"])
            .args(extra)
            .output()
            .unwrap()
    };
    // It raises watermarks, so a public chain needs an explicit yes.
    let refused = bench(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--allow-public-chain"));
    let out = bench(&["--allow-public-chain"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sign_digest"]["samples"], 30);
    for floor in ["bridge_http", "signer_rtt", "signer_sign", "fdatasync"] {
        assert!(v["floors"][floor]["p50_ms"].as_f64().unwrap() > 0.0, "{v}");
    }
    assert!(v["p99_over_floor_sum"].as_f64().unwrap() > 0.0, "{v}");
    // The direct calls alternate with the bridged ones, as many of each.
    assert_eq!(v["sign_digest_direct"]["samples"], 30);
    assert!(
        v["p50_over_http_plus_direct"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    // A second run starts above the first one's watermark by itself.
    assert!(bench(&["--allow-public-chain"]).status.success());
}

/// Idle connections cannot lock nodeos or cleos out of the loopback TCP listener: with every
/// slot held by silent and half-sent connections, a new client still gets in (one of those gives
/// way), and nodeos's own kept-alive connection, which has completed requests, keeps working.
#[test]
fn idle_connections_give_way_to_a_new_client() {
    use std::io::Write as _;
    let rig = rig();
    let url = tcp_url(&rig.bridge.tcp);
    let base = now_slot();
    let signs = |c: &mut KeosdClient, n: u32| {
        let id = savanna(n, n, 0).id().unwrap();
        let (status, body) = sign_digest(c, &id, &rig.keys[0]);
        assert_eq!(status, 201, "block {n}: {body}");
    };
    let mut nodeos = KeosdClient::connect(&url).unwrap();
    signs(&mut nodeos, base);
    // More idle connections than there are slots: silent ones, and ones that stop halfway
    // through a request's headers.
    let mut idle = Vec::new();
    for i in 0..oryx_node::bridge::http::MAX_CONNECTIONS + 10 {
        let mut s = std::net::TcpStream::connect(&rig.bridge.tcp).unwrap();
        if i % 2 == 0 {
            s.write_all(b"POST /v1/wallet/sign_digest HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
        }
        idle.push(s);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut cleos = KeosdClient::connect(&url).unwrap();
    signs(&mut cleos, base + 1);
    signs(&mut nodeos, base + 2);
    drop(idle);
}
