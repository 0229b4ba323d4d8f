#!/usr/bin/env bash
# The HA benchmark: two signer replicas (soft keys) on a 3-member etcd cluster on loopback,
# SignBlock and the bridge's sign_digest beside their floors (mTLS round trip, one etcd
# transaction, the single-signer file-store path) and the take-over when the replica in use or
# the etcd leader is killed. Needs etcd (apt-get install etcd-server) and protoc
# (protobuf-compiler); tests/run installs both. ORYX_BENCH_N sets requests per round.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p oryx-signer -p oryx-node
cargo run --release -q -p oryx-tests --example ha_bench
