#!/usr/bin/env bash
# Benchmarks the real signer with a software K1 key (`init --dev`) against the reference signer
# `oryx-signer bench` starts in its own process (issue 14's ratios): the release binary, a
# throwaway signer directory on fixed loopback ports, then RUNS runs of `oryx-signer bench`.
#   deploy/bench-soft.sh [RUNS] [bench arguments…]
# WRITE_AHEAD=false benchmarks the two-sync path ([watermarks] write_ahead = false).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
cargo build --release -q -p oryx-signer
bin=$PWD/target/release/oryx-signer
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); mport=$(free_port)
$bin init "$dir/signer" --dev --listen "127.0.0.1:$port" --metrics "127.0.0.1:$mport" > /dev/null
if [ "${WRITE_AHEAD:-true}" = false ]; then
  sed -i 's/^\[watermarks\]$/[watermarks]\nwrite_ahead = false/' "$dir/signer/oryx-signer.toml"
fi
echo "write_ahead = $(grep -c '^write_ahead = false' "$dir/signer/oryx-signer.toml" | sed 's/1/false/;s/0/true/')"
RUST_LOG=warn $bin start -c "$dir/signer/oryx-signer.toml" > "$dir/out.log" 2> "$dir/err.log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$dir/out.log" 2>/dev/null && break; sleep 0.1; done
for r in $(seq "$runs"); do
  echo "== run $r of $runs ($(date -u +%H:%M:%S))"
  $bin bench -c "$dir/signer/oryx-signer.toml" "$@"
done
