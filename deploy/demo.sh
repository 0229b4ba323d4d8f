#!/usr/bin/env bash
# The demo, on a fresh machine: a signer with an encrypted software producer key
# (`oryx-signer init --dev`), started for real on loopback, driven over mTLS by the load tool
# (a stream of Savanna blocks, then transactions from 8 clients), a double-sign attempt refused,
# and then its watermark, metrics and hash-chained audit log checked. Finally the `oryx` CLI
# decodes a real EOS mainnet block.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p oryx-signer
bin=$PWD/target/release
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
step() { printf '\n== %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "oryx-signer init --dev: CA, server and client certificates, a software producer key, config"
port=$(free_port); mport=$(free_port)
$bin/oryx-signer init "$tmp/signer" --dev --listen "127.0.0.1:$port" --metrics "127.0.0.1:$mport"
cfg=$tmp/signer/oryx-signer.toml

step "oryx-signer start (mTLS only; logs in $tmp/signer.log)"
$bin/oryx-signer start -c "$cfg" > "$tmp/out.log" 2> "$tmp/signer.log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/out.log" 2>/dev/null && break; sleep 0.1; done
cat "$tmp/out.log"

step "oryx-signer bench: Savanna blocks one by one, a conflicting header, then transactions from 8 clients"
$bin/oryx-signer bench -c "$cfg" --blocks 300 --transactions 1000

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
kill -TERM "$pid"; wait "$pid" || true; pid=
$bin/oryx-signer audit verify "$tmp/signer/audit/audit.jsonl"

step "oryx inspect block: EOS mainnet block 400838396 (Savanna), the digest its producer signed"
cargo build --release -q -p oryx-signer --bin oryx
$bin/oryx inspect block b24e565d703055c744e47236000017e44efb304a3d81378887b7f1e9cff1b4c2f7a065f5368b337a69bed5f57addf196c51b021c50ea09b482e09e00ab1ecf7207535c13089d20b003455faaca988bf47442736dc9d7ac73580d5f936a8fc0f6d09580687d305cd1cd4c564a1159000000800001020007fb4ee417010000 | head -12
