#!/usr/bin/env bash
# Benchmarks nodeos's signing path through Oryx: `oryx-node bridge` on a unix socket, one mTLS
# connection to the real signer, SoftHSM2-held K1 and P-256 producer keys. For each key,
# `oryx-node bench` plays nodeos's KEOSD: signature provider and prints sign_digest p50/p99
# beside the floors it measured in the same run. Needs softhsm2. Extra arguments go to the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v softhsm2-util >/dev/null || { echo "install softhsm2 first (apt-get install softhsm2)" >&2; exit 1; }
cargo build --release -q -p oryx-signer -p oryx-node
bin=$PWD/target/release
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
source deploy/softhsm-signer.sh
softhsm_signer "$bin" "$dir" "127.0.0.1:$port"
chain=$SIGNER_CHAIN
for k in "$k1" "$r1"; do
  printf '\n[[keys]]\npublic_key = "%s"\nbackend = "hsm"\nchains = ["main"]\nblind_digest = true\n' "$k" >> "$cfg"
done
printf '\n[[allow]]\nprincipal = "node1"\nkeys = ["%s", "%s"]\nkinds = ["digest"]\n' "$k1" "$r1" >> "$cfg"
# What an operator does before a key's first blind digest: import the chain's head height as its
# watermark (here block 1), so the signer can bound blind block ids; the bench counts up from it.
zeros=$(printf '0%.0s' $(seq 64))
printf '[{"chain_id":"%s","key":"%s","block_num":1,"slot":1,"wall_slot":0,"digest":"%s","signature":null},
 {"chain_id":"%s","key":"%s","block_num":1,"slot":1,"wall_slot":0,"digest":"%s","signature":null}]\n' \
  "$chain" "$k1" "$zeros" "$chain" "$r1" "$zeros" > "$dir/head.json"
$bin/oryx-signer watermark import -c "$cfg" "$dir/head.json" > /dev/null

RUST_LOG=warn $bin/oryx-signer start -c "$cfg" > "$dir/signer.out" 2> "$dir/signer.err" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$dir/signer.out" 2>/dev/null && break; sleep 0.1; done

tls=$dir/signer/tls
cat > "$dir/oryx-node.toml" <<TOML
[signer]
address = "127.0.0.1:$port"
ca_cert = "$tls/ca.pem"
cert = "$tls/node1.pem"
key = "$tls/node1.key"

[bridge]
chain_id = "$chain"
unix_socket = "$dir/keosd.sock"
nodeos_timeout_ms = 5
TOML
RUST_LOG=warn $bin/oryx-node bridge -c "$dir/oryx-node.toml" > "$dir/bridge.out" 2> "$dir/bridge.err" &
pids+=($!)
for _ in $(seq 100); do grep -q "estimated sign_digest" "$dir/bridge.out" 2>/dev/null && break; sleep 0.1; done
cat "$dir/bridge.out"
for k in "$k1" "$r1"; do
  echo
  echo "== SoftHSM2 ${k:4:2} key"
  $bin/oryx-node bench -c "$dir/oryx-node.toml" --key "$k" --fsync-dir "$dir/signer/watermarks" "$@"
done
