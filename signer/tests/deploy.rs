//! The example configuration in `deploy/` parses and passes every check, so it never goes stale.
#![allow(clippy::unwrap_used)]

use std::path::Path;

#[test]
fn example_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/oryx-signer.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = oryx_signer::config::Config::parse(&text, Path::new("/etc/oryx"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(config.keys.len(), 2);
    assert!(
        !config.allow_soft_keys,
        "the production example must not allow software keys"
    );
    assert_eq!(config.server.ca_cert, Path::new("/etc/oryx/tls/ca.pem"));
    assert!(config.observability.unwrap().listen.ip().is_loopback());
}

#[test]
fn systemd_unit_runs_the_example_config() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/oryx-signer.service"),
    )
    .unwrap();
    assert!(unit.contains(
        "ExecStart=/usr/local/bin/oryx-signer start --config /etc/oryx/oryx-signer.toml"
    ));
    assert!(
        unit.contains("LimitCORE=0"),
        "no core dumps of a process holding PINs"
    );
}
