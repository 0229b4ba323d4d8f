//! A real etcd v3 cluster for tests: Debian's `etcd` binary (package `etcd-server`, installed by
//! `tests/run`), members on loopback ports picked at start (never etcd's default 2379/2380),
//! data in a temporary directory, clients over TLS with client certificates
//! (`--client-cert-auth`), as the README's HA section tells operators to run it.
//!
//! Every member is a child process this harness started; dropping the cluster kills each one by
//! its PID. Faults: [`EtcdCluster::kill`] (SIGKILL), [`EtcdCluster::pause`] / [`EtcdCluster::resume`]
//! (SIGSTOP / SIGCONT), [`EtcdCluster::restart`] (same data directory), and [`Partition`]: members
//! also serve clients on 127.0.0.2, and a partition drops (nftables) every packet between
//! 127.0.0.2 and their client ports, so a process that reaches the cluster through
//! [`EtcdCluster::endpoints_on`]`("127.0.0.2")` is cut off while the others are not.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// The `etcd` binary: `ORYX_ETCD` or `etcd` on the PATH.
pub fn etcd_bin() -> PathBuf {
    std::env::var_os("ORYX_ETCD").map_or_else(|| PathBuf::from("etcd"), PathBuf::from)
}

/// A free loopback port (bound and released: another process could take it in between, which
/// the member's start would then report).
pub fn free_port() -> u16 {
    // The kernel may hand a just-released port out again: never return one twice in a process
    // (two members of one cluster on one port fail to start).
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// PEM files of the cluster's small PKI.
#[derive(Debug, Clone)]
pub struct EtcdTls {
    /// The CA that issued the members' and the client's certificates.
    pub ca: PathBuf,
    /// A client certificate (CN `oryx-signer`).
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

fn write_pki(dir: &Path) -> (EtcdTls, PathBuf, PathBuf) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "oryx test etcd CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let issue = |cn: &str, sans: Vec<SanType>, usage: Vec<ExtendedKeyUsagePurpose>| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans;
        p.extended_key_usages = usage;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (server_cert, server_key) = issue(
        "127.0.0.1",
        vec![
            SanType::IpAddress("127.0.0.1".parse().unwrap()),
            SanType::IpAddress("127.0.0.2".parse().unwrap()),
            SanType::DnsName("localhost".try_into().unwrap()),
        ],
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    );
    let (client_cert, client_key) = issue(
        "oryx-signer",
        vec![SanType::DnsName("oryx-signer".try_into().unwrap())],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    );
    let tls = EtcdTls {
        ca: write("etcd-ca.pem", &ca.pem()),
        cert: write("etcd-client.pem", &client_cert),
        key: write("etcd-client.key", &client_key),
    };
    (
        tls,
        write("etcd-server.pem", &server_cert),
        write("etcd-server.key", &server_key),
    )
}

#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// A running etcd cluster on loopback.
#[derive(Debug)]
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    initial_cluster: String,
    server_cert: PathBuf,
    server_key: PathBuf,
    /// The client side of the cluster's PKI.
    pub tls: EtcdTls,
}

impl EtcdCluster {
    /// Starts `n` members and waits until every one answers over TLS.
    pub fn start(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (tls, server_cert, server_key) = write_pki(dir.path());
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            dir,
            members,
            initial_cluster,
            server_cert,
            server_key,
            tls,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_ready(i);
        }
        cluster
    }

    /// The directory holding the PKI, the members' data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let data = self.dir.path().join(format!("{}.etcd", m.name));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", m.name)))
            .unwrap();
        let client = format!("https://127.0.0.1:{}", m.client_port);
        let listen = format!("{client},https://127.0.0.2:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new(etcd_bin())
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &listen])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", "oryx-test"])
            .args(["--initial-cluster-state", "new"])
            .arg("--cert-file")
            .arg(&self.server_cert)
            .arg("--key-file")
            .arg(&self.server_key)
            .arg("--trusted-ca-file")
            .arg(&self.tls.ca)
            .arg("--client-cert-auth")
            // What the README tells operators to set (pre-vote, compaction, a quota), with the
            // election timing tightened for loopback.
            .arg("--pre-vote")
            .args(["--auto-compaction-mode", "revision"])
            .args(["--auto-compaction-retention", "10000"])
            .args(["--quota-backend-bytes", &(256u64 << 20).to_string()])
            .args(["--heartbeat-interval", "50"])
            .args(["--election-timeout", "500"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (install etcd-server: apt-get install etcd-server)",
                    etcd_bin().display()
                )
            });
        self.members[i].child = Some(child);
    }

    /// The client URL of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("https://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// Every member's client URL on loopback address `host` (127.0.0.1 or 127.0.0.2).
    pub fn endpoints_on(&self, host: &str) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("https://{host}:{}", m.client_port))
            .collect()
    }

    /// The members' client ports.
    pub fn client_ports(&self) -> Vec<u16> {
        self.members.iter().map(|m| m.client_port).collect()
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("https://127.0.0.1:{}", self.members[i].client_port)
    }

    /// The PID of member `i` (while it runs).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    fn signal(&self, i: usize, sig: &str) {
        if let Some(pid) = self.pid(i) {
            let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
        }
    }

    /// SIGKILL member `i` and reap it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP member `i`.
    pub fn pause(&self, i: usize) {
        self.signal(i, "-STOP");
    }

    /// SIGCONT member `i`.
    pub fn resume(&self, i: usize) {
        self.signal(i, "-CONT");
    }

    /// Starts a killed member again on its data directory and waits until it answers.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ready(i);
    }

    /// Member `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join(format!("{}.log", self.members[i].name)),
        )
        .unwrap_or_default()
    }

    /// A TLS client connected to `endpoints`.
    pub async fn client(&self, endpoints: &[String]) -> etcd_client::Client {
        etcd_client::Client::connect(
            endpoints,
            Some(self.connect_options(Duration::from_secs(2))),
        )
        .await
        .unwrap()
    }

    /// TLS with the cluster's client certificate, and `timeout` for connecting and for each
    /// request.
    fn connect_options(&self, timeout: Duration) -> etcd_client::ConnectOptions {
        let read = |p: &Path| std::fs::read(p).unwrap();
        let tls = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(read(&self.tls.ca)))
            .identity(etcd_client::Identity::from_pem(
                read(&self.tls.cert),
                read(&self.tls.key),
            ))
            .domain_name("127.0.0.1");
        etcd_client::ConnectOptions::new()
            .with_tls(tls)
            .with_connect_timeout(timeout)
            .with_timeout(timeout)
    }

    /// Member `i`'s status (its id and the leader it knows), or `None` when it does not answer.
    fn status(&self, i: usize) -> Option<(u64, u64)> {
        // On a thread of its own, so it works from async tests too.
        std::thread::scope(|scope| scope.spawn(|| self.status_blocking(i)).join().unwrap())
    }

    fn status_blocking(&self, i: usize) -> Option<(u64, u64)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let opts = self.connect_options(Duration::from_millis(500));
            let mut c = etcd_client::Client::connect([self.endpoint(i)], Some(opts))
                .await
                .ok()?;
            let s = c.status().await.ok()?;
            Some((s.header()?.member_id(), s.leader()))
        })
    }

    fn wait_ready(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.status(i), Some((_, leader)) if leader != 0) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "etcd member {i} did not become ready in 30 s; its log:\n{}",
            self.log(i)
        );
    }

    /// The index of the current leader (waiting up to 10 s for one).
    pub fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let ids: Vec<Option<(u64, u64)>> = (0..self.members.len())
                .map(|i| {
                    if self.members[i].child.is_some() {
                        self.status(i)
                    } else {
                        None
                    }
                })
                .collect();
            for (i, s) in ids.iter().enumerate() {
                if let Some((id, leader)) = s
                    && id == leader
                {
                    return i;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no etcd leader within 10 s");
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            // A paused member must be woken to die cleanly.
            self.resume(i);
            self.kill(i);
        }
    }
}

/// A network partition between 127.0.0.2 and the cluster's client ports (both directions),
/// with nftables; healed when dropped.
#[derive(Debug)]
pub struct Partition {
    table: String,
}

fn nft(args: &str) {
    let out = Command::new("nft").arg(args).output().unwrap_or_else(|e| {
        panic!("cannot run nft: {e} (install nftables: apt-get install nftables)")
    });
    assert!(
        out.status.success(),
        "nft {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Partition {
    /// Cuts 127.0.0.2 off from every member's client port.
    pub fn cut(cluster: &EtcdCluster) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let table = format!(
            "oryx_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let ports = cluster
            .client_ports()
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        nft(&format!("add table inet {table}"));
        nft(&format!(
            "add chain inet {table} out {{ type filter hook output priority 0; policy accept; }}"
        ));
        nft(&format!(
            "add rule inet {table} out ip daddr 127.0.0.2 tcp dport {{ {ports} }} drop"
        ));
        nft(&format!(
            "add rule inet {table} out ip saddr 127.0.0.2 tcp sport {{ {ports} }} drop"
        ));
        Partition { table }
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .arg(format!("delete table inet {}", self.table))
            .status();
    }
}
