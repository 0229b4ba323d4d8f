//! Signer replicas for the HA tests: one `oryx-signer init --dev` directory copied N times (the
//! same producer key, CA and client certificates in each, as replicas holding the same key in
//! their own HSMs), each with `[watermarks.etcd]` pointing at a test [`EtcdCluster`] under one
//! prefix and its own replica name, a starting watermark imported, then the real daemons.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};

use oryx_proto::antelope::PublicKey;

use crate::etcd::EtcdCluster;
use crate::harness::{EOS, Signer, config_path, first_key, init, run};

/// Copies a directory tree (files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The replicas' directories and the key they share.
#[derive(Debug)]
pub struct ReplicaDirs {
    /// Holds every directory.
    pub base: tempfile::TempDir,
    /// One signer directory per replica (`a`, `b`, `c`, …).
    pub dirs: Vec<PathBuf>,
    /// The producer key every replica holds.
    pub key: PublicKey,
}

/// The `[watermarks.etcd]` section of replica `name`, reaching the cluster on `host`.
pub fn etcd_section(cluster: &EtcdCluster, host: &str, prefix: &str, name: &str) -> String {
    let endpoints = cluster
        .endpoints_on(host)
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "[watermarks.etcd]\nendpoints = [{endpoints}]\nprefix = \"{prefix}\"\nreplica = \"{name}\"\n\
         ca_cert = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\ntimeout_ms = 500\nconnect_timeout_ms = 300\n",
        cluster.tls.ca.display(),
        cluster.tls.cert.display(),
        cluster.tls.key.display()
    )
}

/// `n` replica directories on `cluster` (replica `i` reaches it on `hosts[i]`, 127.0.0.1 when
/// `hosts` is shorter), with a starting watermark at `start_block` imported for the key.
pub fn replica_dirs(
    cluster: &EtcdCluster,
    n: usize,
    hosts: &[&str],
    start_block: u32,
    start_slot: u32,
) -> ReplicaDirs {
    let base = tempfile::tempdir().unwrap();
    let first = base.path().join("a");
    init(&first, true);
    let key = first_key(&first);
    let prefix = format!("/oryx/test-{}", std::process::id());
    let names: Vec<String> = (0..n)
        .map(|i| ((b'a' + i as u8) as char).to_string())
        .collect();
    // Copies first, while `a` is still the plain `init` directory.
    for name in &names[1..] {
        copy_dir(&first, &base.path().join(name));
    }
    let dirs: Vec<PathBuf> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let dir = base.path().join(name);
            let host = hosts.get(i).copied().unwrap_or("127.0.0.1");
            let section = etcd_section(cluster, host, &prefix, name);
            let mut text = std::fs::read_to_string(config_path(&dir)).unwrap();
            text.push('\n');
            text.push_str(&section);
            std::fs::write(config_path(&dir), text).unwrap();
            dir
        })
        .collect();
    let start = base.path().join("start.json");
    std::fs::write(
        &start,
        format!(
            "[{{\"chain_id\": \"{EOS}\", \"key\": \"{key}\", \"block_num\": {start_block}, \"slot\": {start_slot}, \
             \"wall_slot\": 0, \"digest\": \"{}\", \"signature\": null}}]",
            "00".repeat(32)
        ),
    )
    .unwrap();
    run(
        &[
            "watermark",
            "import",
            "-c",
            config_path(&dirs[0]).to_str().unwrap(),
            start.to_str().unwrap(),
        ],
        &[],
    );
    ReplicaDirs { base, dirs, key }
}

/// Starts the daemon of every replica.
pub fn start_all(dirs: &ReplicaDirs) -> Vec<Signer> {
    dirs.dirs.iter().map(|d| Signer::start(d, &[])).collect()
}
