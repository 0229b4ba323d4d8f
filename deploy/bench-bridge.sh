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

chain=0261640fa4c4b1243f429b3bc69f18050bfc8b87645a218cc3b337ee34d8fa81   # private: bench raises watermarks
port=$(free_port)
$bin/oryx-signer init "$dir/signer" --chain $chain --listen "127.0.0.1:$port" --metrics 127.0.0.1:0 >/dev/null
mkdir -p "$dir/tokens"
export SOFTHSM2_CONF=$dir/softhsm2.conf
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir/tokens" > "$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 12345678 >/dev/null
module=$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -1)
printf '1234\n' > "$dir/signer/secrets/pin"
cfg=$dir/signer/oryx-signer.toml
printf '\n[backends.hsm]\ntype = "pkcs11"\nmodule = "%s"\ntoken_label = "bench"\npin_file = "secrets/pin"\nsessions = 4\n' "$module" >> "$cfg"
k1=$($bin/oryx-signer keys generate -c "$cfg" --backend hsm --label k1 --json | sed 's/.*"public_key":"\([^"]*\)".*/\1/')
r1=$($bin/oryx-signer keys generate -c "$cfg" --backend hsm --label r1 --r1 --json | sed 's/.*"public_key":"\([^"]*\)".*/\1/')
for k in "$k1" "$r1"; do
  printf '\n[[keys]]\npublic_key = "%s"\nbackend = "hsm"\nchains = ["main"]\nblind_digest = true\n' "$k" >> "$cfg"
done
printf '\n[[allow]]\nprincipal = "node1"\nkeys = ["%s", "%s"]\nkinds = ["digest"]\n' "$k1" "$r1" >> "$cfg"
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
