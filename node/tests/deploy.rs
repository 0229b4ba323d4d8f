//! The node's example configuration and unit in `deploy/` parse and agree, so they never go
//! stale.
#![allow(clippy::unwrap_used)]

use std::path::Path;

fn deploy(file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy")
            .join(file),
    )
    .unwrap()
}

#[test]
fn example_config_parses_and_serves_loopback_only() {
    let config =
        oryx_node::config::Config::parse(&deploy("oryx-node.toml"), Path::new("/etc/oryx"))
            .unwrap_or_else(|e| panic!("deploy/oryx-node.toml: {e}"));
    assert_eq!(config.signer.ca_cert, Path::new("/etc/oryx/tls/ca.pem"));
    let bridge = config.bridge.unwrap();
    assert_eq!(
        bridge.nodeos_timeout_ms, 5,
        "nodeos's default keosd-provider-timeout"
    );
    assert!(bridge.listen.is_none_or(|a| a.ip().is_loopback()));
    assert_eq!(
        bridge.unix_socket.unwrap(),
        Path::new("/run/oryx-node/keosd.sock")
    );
}

#[test]
fn the_unit_runs_the_example_with_the_socket_in_its_runtime_directory() {
    let unit = deploy("systemd/oryx-node-bridge.service");
    assert!(
        unit.contains(
            "ExecStart=/usr/local/bin/oryx-node bridge --config /etc/oryx/oryx-node.toml"
        )
    );
    assert!(unit.contains("RuntimeDirectory=oryx-node"));
    // The config.ini line in the example names the same socket.
    let cfg = deploy("oryx-node.toml");
    assert!(cfg.contains("KEOSD:unix:///run/oryx-node/keosd.sock/v1/wallet/sign_digest"));
}

#[test]
fn example_produce_config_parses() {
    let config =
        oryx_node::config::Config::parse(&deploy("oryx-node-produce.toml"), Path::new("/etc/oryx"))
            .unwrap_or_else(|e| panic!("deploy/oryx-node-produce.toml: {e}"));
    let produce = config.produce.unwrap();
    assert_eq!(produce.follow.len(), 1);
    assert_eq!(produce.block_log, Path::new("/var/lib/oryx-node/a/blocks"));
    assert!(config.bridge.is_none());
}

#[test]
fn example_ha_config_asks_two_replicas() {
    let config =
        oryx_node::config::Config::parse(&deploy("ha/oryx-node.toml"), Path::new("/etc/oryx"))
            .unwrap_or_else(|e| panic!("deploy/ha/oryx-node.toml: {e}"));
    assert_eq!(
        config.signer.replicas(),
        ["10.20.0.2:7150", "10.20.0.3:7150"]
    );
    let bridge = config.bridge.unwrap();
    assert!(
        bridge.nodeos_timeout_ms > 5,
        "nodeos's timeout is raised for replicas"
    );
}
