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

$bin init "$dir/signer" --chain 0261640fa4c4b1243f429b3bc69f18050bfc8b87645a218cc3b337ee34d8fa81 --listen 127.0.0.1:0 --metrics 127.0.0.1:0 >/dev/null
mkdir -p "$dir/tokens"
export SOFTHSM2_CONF=$dir/softhsm2.conf
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir/tokens" > "$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 12345678 >/dev/null
module=$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -1)
printf '1234\n' > "$dir/signer/secrets/pin"
cfg=$dir/signer/oryx-signer.toml
printf '\n[backends.hsm]\ntype = "pkcs11"\nmodule = "%s"\ntoken_label = "bench"\npin_file = "secrets/pin"\nsessions = 4\n' "$module" >> "$cfg"
k1=$($bin keys generate -c "$cfg" --backend hsm --label k1 --json | sed 's/.*"public_key":"\([^"]*\)".*/\1/')
r1=$($bin keys generate -c "$cfg" --backend hsm --label r1 --r1 --json | sed 's/.*"public_key":"\([^"]*\)".*/\1/')
for k in "$k1" "$r1"; do
  printf '\n[[keys]]\npublic_key = "%s"\nbackend = "hsm"\nchains = ["main"]\n' "$k" >> "$cfg"
done
printf '\n[[allow]]\nprincipal = "node1"\nkeys = ["%s", "%s"]\nkinds = ["block", "transaction"]\n' "$k1" "$r1" >> "$cfg"

# Listen on a fixed free port: bench reads the address from the config.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "0,/^listen = \"127.0.0.1:0\"/s//listen = \"127.0.0.1:$port\"/" "$cfg"
RUST_LOG=warn $bin start -c "$cfg" > "$dir/out.log" 2> "$dir/err.log" &
pid=$!
for _ in $(seq 50); do grep -q "listening on" "$dir/out.log" 2>/dev/null && break; sleep 0.1; done
for k in "$k1" "$r1"; do
  echo "== SoftHSM2 ${k:4:2} key"
  $bin bench -c "$cfg" --key "$k" "$@"
done
echo "== audit log"
$bin audit verify "$dir/signer/audit/audit.jsonl"
