//! The harness of the tests that drive the real `oryx-signer` binary (the signer's and the node's
//! integration tests): a signer directory made by `oryx-signer init`, the daemon started on
//! 127.0.0.1:0, mTLS clients with the certificates init issued, SoftHSM2 tokens, block headers.
//!
//! The binaries are found beside the test executable (see [`bin`]).
// A failed step of a test's setup is the test's failure, reported where it happened.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use oryx_proto::antelope::block::{BlockHeader, SAVANNA_SCHEDULE_VERSION};
use oryx_proto::antelope::transaction::Extension;
use oryx_proto::antelope::{BlockTimestamp, Bytes, Checksum256, Name, PublicKey};
use oryx_proto::client::{ClientTls, connect};
use oryx_proto::grpc::signer_client::SignerClient;
use tonic::transport::Channel;

/// The `oryx-signer` binary, beside the test executable: an integration test runs from
/// `target/<profile>/deps/`, and Cargo puts the binaries in `target/<profile>/`. (This library is
/// built once for every caller, so Cargo's `CARGO_BIN_EXE_oryx-signer` is never set here.)
///
/// The signer's own integration tests get it built by Cargo. Other packages' tests get it from
/// `cargo test --workspace`, which builds every binary before running any test; with
/// `cargo test -p oryx-node` alone, run `cargo build -p oryx-signer` (same target directory)
/// first, and again after changing the signer: an old binary is used as it is.
pub fn bin() -> PathBuf {
    sibling_bin("oryx-signer")
}

/// The binary `name` (a target of any workspace package) beside the test executable; panics
/// saying how to build it when it is missing.
pub fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let p = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.is_file(),
        "{} is missing: build it first (cargo build -p oryx-signer with this target directory, \
         or run cargo test --workspace, which builds every binary)",
        p.display()
    );
    p
}

/// Runs `oryx-signer` with arguments and returns stdout, panicking with stderr on failure.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oryx-signer {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `oryx-signer` with arguments, which must fail, and returns its stderr.
pub fn run_refused(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).output().unwrap();
    assert!(!out.status.success(), "oryx-signer {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `oryx-signer init DIR` with port 0 listeners and two client principals; the CA directory
/// goes to `DIR/ca` (inside the temporary directory, unlike a real deployment's).
pub fn init(dir: &Path, dev: bool) {
    let d = dir.to_str().unwrap();
    let ca = ca_dir(dir);
    let mut args = vec![
        "init",
        d,
        "--ca-dir",
        ca.to_str().unwrap(),
        "--chain",
        "eos",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--client",
        "node1",
        "--client",
        "intruder",
    ];
    if dev {
        args.push("--dev");
    }
    run(&args, &[]);
}

/// Where [`init`] puts the CA directory.
pub fn ca_dir(dir: &Path) -> PathBuf {
    dir.join("ca")
}

/// Writes a secret file (PIN, password, passphrase) readable by its owner only, as the signer
/// demands.
pub fn write_secret(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The config file `init` wrote in `dir`.
pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("oryx-signer.toml")
}

/// Appends TOML to the config.
pub fn append_config(dir: &Path, toml: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(config_path(dir))
        .unwrap();
    writeln!(f, "\n{toml}").unwrap();
}

/// The first `[[keys]]` public key in the config.
pub fn first_key(dir: &Path) -> PublicKey {
    let text = std::fs::read_to_string(config_path(dir)).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("public_key = "))
        .unwrap();
    PublicKey::parse(line.trim_start_matches("public_key = ").trim_matches('"')).unwrap()
}

/// The running daemon.
pub struct Signer {
    /// The daemon's process (SIGKILLed on drop).
    pub child: Child,
    /// Where the gRPC service listens.
    pub addr: String,
    /// Where the metrics endpoint listens, when configured.
    pub metrics: Option<String>,
    /// The signer directory.
    pub dir: PathBuf,
}

impl Signer {
    /// Starts the daemon and waits for `listening on`.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Signer {
        let mut child = Command::new(bin())
            .args(["start", "-c", config_path(dir).to_str().unwrap()])
            .envs(env.iter().copied())
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut metrics = None;
        loop {
            let Some(Ok(line)) = lines.next() else {
                let status = child.wait().unwrap();
                panic!("oryx-signer exited before listening: {status}");
            };
            if let Some(a) = line.strip_prefix("metrics on ") {
                metrics = Some(a.to_string());
            }
            if let Some(a) = line.strip_prefix("listening on ") {
                // Keep draining stdout so the daemon never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines.by_ref() {});
                return Signer {
                    child,
                    addr: a.to_string(),
                    metrics,
                    dir: dir.to_path_buf(),
                };
            }
        }
    }

    /// A client with principal `name`'s certificate.
    pub async fn client(&self, name: &str) -> SignerClient<Channel> {
        connect(&self.addr, &self.tls(name)).await.unwrap()
    }

    /// Principal `name`'s client TLS settings (certificate and key issued by `init`).
    pub fn tls(&self, name: &str) -> ClientTls {
        let t = self.dir.join("tls");
        ClientTls::from_files(
            &t.join("ca.pem"),
            &t.join(format!("{name}.pem")),
            &t.join(format!("{name}.key")),
            "localhost",
        )
        .unwrap()
    }

    /// Writes the address it listens on into its config, so a restart in the same directory
    /// comes back on the same port (where clients look for it).
    pub fn pin_port(&self) {
        let cfg = config_path(&self.dir);
        let text = std::fs::read_to_string(&cfg).unwrap();
        let pinned = text.replacen(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"{}\"", self.addr),
            1,
        );
        std::fs::write(&cfg, pinned).unwrap();
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// The audit log.
    pub fn audit_path(&self) -> PathBuf {
        self.dir.join("audit/audit.jsonl")
    }

    /// Every audit entry, as JSON, in log order.
    pub fn audit_entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.audit_path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The EOS mainnet chain id, hex.
pub const EOS: &str = "aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906";

/// The EOS mainnet chain id, bytes.
pub fn eos() -> Vec<u8> {
    hex::decode(EOS).unwrap()
}

/// A response's signature, parsed; its text and binary forms must agree.
pub fn sig_of(s: &Option<oryx_proto::grpc::Signature>) -> oryx_proto::antelope::Signature {
    let s = s.as_ref().unwrap();
    let parsed = oryx_proto::antelope::Signature::parse(&s.text).unwrap();
    assert_eq!(
        parsed.as_bytes()[..],
        s.compact[..],
        "text and binary forms agree"
    );
    parsed
}

/// SignBlock for `header` on EOS with `key`.
pub async fn sign_block(
    c: &mut SignerClient<Channel>,
    key: &PublicKey,
    header: &BlockHeader,
) -> Result<oryx_proto::grpc::SignResponse, tonic::Status> {
    use oryx_proto::antelope::Pack as _;
    c.sign_block(oryx_proto::grpc::SignBlockRequest {
        chain_id: eos(),
        public_key: key.to_string(),
        header: header.packed(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner())
}

/// A Savanna header at height `n` and slot `slot`; `variant` changes its content.
pub fn savanna(n: u32, slot: u32, variant: u8) -> BlockHeader {
    let mut previous = [0x22u8; 32];
    previous[..4].copy_from_slice(&(n - 1).to_be_bytes());
    BlockHeader {
        timestamp: BlockTimestamp(slot),
        producer: Name::new("oryxproducer").unwrap(),
        confirmed: 0,
        previous: Checksum256(previous),
        transaction_mroot: Checksum256([variant; 32]),
        action_mroot: Checksum256::default(),
        schedule_version: SAVANNA_SCHEDULE_VERSION,
        new_producers: None,
        header_extensions: vec![Extension(
            2,
            Bytes([&(n - 1).to_le_bytes()[..], &[1, 0, 0]].concat()),
        )],
    }
}

/// A legacy header at height `n`.
pub fn legacy(n: u32, slot: u32) -> BlockHeader {
    BlockHeader {
        schedule_version: 7,
        header_extensions: vec![],
        ..savanna(n, slot, 0)
    }
}

/// The wall clock's current block slot (heights above it are unused by earlier tests).
pub fn now_slot() -> u32 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    BlockTimestamp::from_unix_ms(ms).unwrap().slot()
}

const SOFTHSM_INSTALL: &str = "SoftHSM2 is required: install it (`apt-get install softhsm2`; \
     tests/run does this) and run again";

/// softhsm2: a fresh token labelled `label` with user PIN `pin`, its token directory and config
/// in `dir`. Returns (the `SOFTHSM2_CONF` path every process using it must be given, the module).
pub fn softhsm_token(dir: &Path, label: &str, pin: &str) -> (PathBuf, PathBuf) {
    let module = softhsm_module();
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let init = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", label])
        .args(["--pin", pin, "--so-pin", "12345678"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap_or_else(|e| panic!("softhsm2-util: {e}. {SOFTHSM_INSTALL}"));
    assert!(
        init.status.success(),
        "softhsm2-util --init-token failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    (conf, module)
}

/// The SoftHSM2 PKCS#11 module: the usual places, then where the Debian package put it.
pub fn softhsm_module() -> PathBuf {
    let mut candidates: Vec<PathBuf> = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib64/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
        "/usr/lib64/pkcs11/libsofthsm2.so",
        "/usr/lib/pkcs11/libsofthsm2.so",
        "/opt/homebrew/lib/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Ok(out) = Command::new("dpkg")
        .args(["-L", "softhsm2", "libsofthsm2"])
        .output()
    {
        candidates.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.ends_with("/libsofthsm2.so"))
                .map(PathBuf::from),
        );
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("the SoftHSM2 module libsofthsm2.so was not found. {SOFTHSM_INSTALL}")
        })
}

/// Adds a SoftHSM2 backend named `hsm` on a fresh token to the signer directory's config;
/// returns the `SOFTHSM2_CONF` path every process must be given.
pub fn softhsm_backend(dir: &Path, label: &str) -> PathBuf {
    let (conf, module) = softhsm_token(dir, label, "4321");
    write_secret(&dir.join("secrets/pin"), "4321\n");
    append_config(
        dir,
        &format!(
            "[backends.hsm]\ntype = \"pkcs11\"\nmodule = \"{}\"\ntoken_label = \"{label}\"\npin_file = \"secrets/pin\"\n",
            module.display()
        ),
    );
    conf
}

/// `oryx-signer keys generate` in the `hsm` backend.
pub fn hsm_key(dir: &Path, conf: &Path, label: &str, r1: bool) -> PublicKey {
    let cfg = config_path(dir);
    let mut args = vec![
        "keys",
        "generate",
        "-c",
        cfg.to_str().unwrap(),
        "--backend",
        "hsm",
        "--label",
        label,
        "--json",
    ];
    if r1 {
        args.push("--r1");
    }
    let out: serde_json::Value =
        serde_json::from_str(&run(&args, &[("SOFTHSM2_CONF", conf.to_str().unwrap())])).unwrap();
    PublicKey::parse(out["public_key"].as_str().unwrap()).unwrap()
}

/// Lists `keys` under `[[keys]]` (backend `hsm`, chain `main`) and lets `node1` use them for
/// `kinds`.
pub fn configure_hsm_keys(dir: &Path, keys: &[PublicKey], kinds: &str, blind_digest: bool) {
    for k in keys {
        append_config(
            dir,
            &format!(
                "[[keys]]\npublic_key = \"{k}\"\nbackend = \"hsm\"\nchains = [\"main\"]\nblind_digest = {blind_digest}\n"
            ),
        );
    }
    let list: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    append_config(
        dir,
        &format!(
            "[[allow]]\nprincipal = \"node1\"\nkeys = [{}]\nkinds = {kinds}\n",
            list.join(", ")
        ),
    );
    if blind_digest {
        start_watermarks(dir, keys, &[]);
    }
}

/// What an operator does before a key's first blind digest on a public chain: imports a head
/// height as its watermark (on chain `main` = EOS), so the signer has something to bound blind
/// block ids by. The tests' chains start at block 1, imported as signed long ago (wall slot 0),
/// so the tests' own heights are all within reach.
pub fn start_watermarks(dir: &Path, keys: &[PublicKey], env: &[(&str, &str)]) {
    let records: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            serde_json::json!({"chain_id": EOS, "key": k.to_string(), "block_num": 1,
                "slot": 1, "wall_slot": 0, "digest": "00".repeat(32), "signature": null})
        })
        .collect();
    let file = dir.join("head-watermarks.json");
    std::fs::write(&file, serde_json::Value::Array(records).to_string()).unwrap();
    run(
        &[
            "watermark",
            "import",
            "-c",
            config_path(dir).to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        env,
    );
}

/// One GET on loopback: (status, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}
