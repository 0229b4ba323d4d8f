#!/usr/bin/env bash
# Benchmarks the real signer with SoftHSM2-held K1 and R1 keys: a throwaway token, a signer
# directory, the release binary, then `oryx-signer bench` for each key. Needs softhsm2.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v softhsm2-util >/dev/null || { echo "install softhsm2 first (apt-get install softhsm2)" >&2; exit 1; }
cargo build --release -q -p oryx-signer
bin=$PWD/target/release/oryx-signer
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT

# A fixed free port: bench reads the address from the config.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
source deploy/softhsm-signer.sh
softhsm_signer "$(dirname "$bin")" "$dir" "127.0.0.1:$port"
for k in "$k1" "$r1"; do
  printf '\n[[keys]]\npublic_key = "%s"\nbackend = "hsm"\nchains = ["main"]\n' "$k" >> "$cfg"
done
printf '\n[[allow]]\nprincipal = "node1"\nkeys = ["%s", "%s"]\nkinds = ["block", "transaction"]\n' "$k1" "$r1" >> "$cfg"

RUST_LOG=warn $bin start -c "$cfg" > "$dir/out.log" 2> "$dir/err.log" &
pid=$!
for _ in $(seq 50); do grep -q "listening on" "$dir/out.log" 2>/dev/null && break; sleep 0.1; done
for k in "$k1" "$r1"; do
  echo "== SoftHSM2 ${k:4:2} key"
  $bin bench -c "$cfg" --key "$k" "$@"
done
echo "== audit log"
$bin audit verify "$dir/signer/audit/audit.jsonl"
