#!/usr/bin/env bash
# The demo, on a fresh machine: a signer with an encrypted software producer key
# (`oryx-signer init --dev`, a private chain), started for real on loopback; `oryx-node produce`
# assembling Savanna blocks at 500 ms slots and having each signed over mTLS; the block log
# verified by `oryx inspect blocklog`; then `oryx-node bridge` answering requests exactly as
# nodeos sends them (an identical retry of the last block gets the stored signature, a
# conflicting block at that height is refused in keosd's error shape); the bridge benchmark; and
# finally the watermark, metrics and hash-chained audit log checked. (`deploy/bench-*.sh` run
# the full benchmarks with SoftHSM2 keys.)
set -euo pipefail
cd "$(dirname "$0")/.."
# The signer links the system OpenSSL (P-256 verification): its headers are needed to build.
if ! pkg-config --exists openssl 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config
  else
    echo "demo: install OpenSSL's headers first (apt-get install libssl-dev pkg-config)" >&2; exit 1
  fi
fi
cargo build --release -q -p oryx-signer -p oryx-node
bin=$PWD/target/release
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
step() { printf '\n== %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stop() { kill -TERM "$1"; wait "$1" || true; }

step "oryx-signer init --dev: CA, server and client certificates, a software producer key, config"
port=$(free_port); mport=$(free_port)
$bin/oryx-signer init "$tmp/signer" --dev --listen "127.0.0.1:$port" --metrics "127.0.0.1:$mport" | tee "$tmp/init.log"
cfg=$tmp/signer/oryx-signer.toml
key=$(sed -n 's/^producer key: \(PUB_K1_[^ ]*\).*/\1/p' "$tmp/init.log")
chain=$(sed -n 's/^chain_id = "\(.*\)"/\1/p' "$cfg")

step "oryx-signer start (mTLS only; logs in $tmp/signer.log)"
$bin/oryx-signer start -c "$cfg" > "$tmp/out.log" 2> "$tmp/signer.log" &
signer=$!; pids+=($signer)
for _ in $(seq 100); do grep -q "listening on" "$tmp/out.log" 2>/dev/null && break; sleep 0.1; done
cat "$tmp/out.log"

tls=$tmp/signer/tls
mkdir -p "$tmp/node"
cat > "$tmp/node/oryx-node.toml" <<TOML
[signer]
address = "127.0.0.1:$port"
ca_cert = "$tls/ca.pem"
cert = "$tls/node1.pem"
key = "$tls/node1.key"

[produce]
chain_id = "$chain"
producer = "oryxproducer"
public_key = "$key"
block_log = "blocks"

[bridge]
chain_id = "$chain"
unix_socket = "$tmp/node/keosd.sock"
TOML

step "oryx-node produce: Savanna blocks at 500 ms slots, each signed by the signer and verified (6 s)"
RUST_LOG=info NO_COLOR=1 $bin/oryx-node produce -c "$tmp/node/oryx-node.toml" 2> "$tmp/produce.log" &
producer=$!; pids+=($producer)
sleep 6
stop "$producer"
grep "produced block" "$tmp/produce.log" | sed 's/^.*INFO //' | head -5
echo "..."

step "oryx inspect blocklog --verify: every signature recovers to the producer key, every block links"
$bin/oryx inspect blocklog "$tmp/node/blocks" --verify --key "$key" | tail -8

step "oryx-node bridge: the keosd wallet API nodeos uses (KEOSD:unix://$tmp/node/keosd.sock/v1/wallet/sign_digest)"
RUST_LOG=warn $bin/oryx-node bridge -c "$tmp/node/oryx-node.toml" > "$tmp/bridge.out" 2> "$tmp/bridge.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "estimated sign_digest" "$tmp/bridge.out" 2>/dev/null && break; sleep 0.1; done
cat "$tmp/bridge.out"
last_id=$($bin/oryx inspect blocklog "$tmp/node/blocks" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["blocks"][-1]["id"])')
python3 - "$tmp/node/keosd.sock" "$last_id" "$key" <<'PY'
import http.client, json, socket, sys
path, last_id, key = sys.argv[1:]
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(path)
c = Unix("localhost")   # one kept-alive connection, as nodeos keeps
def post(endpoint, body):
    c.request("POST", "/v1/wallet/" + endpoint, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse(); return r.status, json.loads(r.read())
print("get_public_keys:", post("get_public_keys", None))
status, sig = post("sign_digest", [last_id, key])
print(f"the last block again (nodeos retrying): {status} {sig}")
other = last_id[:8] + "00" * 28
status, err = post("sign_digest", [other, key])
print(f"another block at that height: {status} {err['error']['name']}: {err['error']['details'][0]['message'][:110]}")
PY

step "oryx-node bench: sign_digest through the bridge as nodeos asks, beside its floors (above the watermark)"
$bin/oryx-node bench -c "$tmp/node/oryx-node.toml" --key "$key" --requests 300 --floor-samples 100 --fsync-dir "$tmp/signer/watermarks"

step "watermark"
$bin/oryx-signer watermark show -c "$cfg"

step "metrics and readiness"
python3 - "$mport" <<'PY'
import sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
print("readyz:", urllib.request.urlopen(base + "/readyz").read().decode().strip())
for line in urllib.request.urlopen(base + "/metrics").read().decode().splitlines():
    if line.startswith("oryx_requests_total"):
        print(line)
PY

step "stop, then verify the audit log's hash chain"
stop "$signer"
$bin/oryx-signer audit verify "$tmp/signer/audit/audit.jsonl"

step "oryx inspect block: EOS mainnet block 400838396 (Savanna), the digest its producer signed"
$bin/oryx inspect block b24e565d703055c744e47236000017e44efb304a3d81378887b7f1e9cff1b4c2f7a065f5368b337a69bed5f57addf196c51b021c50ea09b482e09e00ab1ecf7207535c13089d20b003455faaca988bf47442736dc9d7ac73580d5f936a8fc0f6d09580687d305cd1cd4c564a1159000000800001020007fb4ee417010000 | head -12
