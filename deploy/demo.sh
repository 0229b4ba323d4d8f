#!/usr/bin/env bash
# Demo of what Oryx can do today, on real data from real chains: decode and digest a Savanna
# block from EOS mainnet and a legacy block from Telos, show a transaction's signing digest,
# generate a key, sign a digest exactly as nodeos would, and recover the signer.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p oryx-signer --bin oryx
oryx=target/release/oryx
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { printf '\n== %s\n' "$*"; }

step "EOS mainnet block 400838396 (Savanna): the producer signs the block id"
$oryx inspect block b24e565d703055c744e47236000017e44efb304a3d81378887b7f1e9cff1b4c2f7a065f5368b337a69bed5f57addf196c51b021c50ea09b482e09e00ab1ecf7207535c13089d20b003455faaca988bf47442736dc9d7ac73580d5f936a8fc0f6d09580687d305cd1cd4c564a1159000000800001020007fb4ee417010000

step "Telos block 369358506 (legacy): sig_digest from header + blockroot merkle + schedule hash"
$oryx inspect block d65c565d60b0c634aaac32dd00001603f6a9fd5379e902f4cbce964b088aa44bc42001301b7da2c4fac64070356e000000000000000000000000000000000000000000000000000000000000000012276ff214cef1b78426f63f9e0d6256204119a077d7df4bc4032a0d6eef1508441800000000 \
  --blockroot-merkle a7570402c625d8500e3e308a39181f7b4f934f0256c776e66adb7adce18b526a \
  --schedule-hash 2c561d0eb30c1029fbd4b2e33f6c590de2e4b07420516db3139846cca7ac3893

step "A transfer as JSON: id, signing digest and decoded fields on EOS"
cat > "$tmp/transfer.json" <<'JSON'
{
  "expiration": "2026-11-21T12:00:00",
  "ref_block_num": 1234,
  "ref_block_prefix": 987654321,
  "actions": [{
    "account": "eosio.token", "name": "transfer",
    "authorization": [{"actor": "oryxcustody1", "permission": "active"}],
    "data": {"from": "oryxcustody1", "to": "exchangeacct", "quantity": "125.0000 EOS", "memo": "cold to hot"}
  }]
}
JSON
$oryx inspect tx --chain-id eos "$tmp/transfer.json"

step "A fresh software key, a signature exactly as nodeos would make it, and its recovery"
$oryx key generate --out "$tmp/key" --json > "$tmp/pub.json"
digest=$($oryx inspect tx --chain-id eos "$tmp/transfer.json" --json | sed -n 's/.*"sig_digest": "\([0-9a-f]*\)".*/\1/p')
sig=$($oryx sign-digest --key-file "$tmp/key" "$digest")
echo "signature: $sig"
$oryx inspect sig "$sig" --digest "$digest"
