#!/usr/bin/env python3
"""Seeds fuzz/corpus/TARGET from the real-chain vectors and the repository's own examples.

Run once (or after a new vector set) before minimising: `python3 fuzz/seed.py`. Seeds are named
by content hash, so re-running adds nothing twice.
"""
import hashlib
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V = json.load(open(os.path.join(ROOT, "tests/vectors/antelope.json")))


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(ROOT, "fuzz/corpus", target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def varuint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


for t in V["transactions"]:
    raw = bytes.fromhex(t["packed_trx_hex"])
    if t.get("compression") in (None, "none", 0):
        put("transaction", raw)
    cfd = bytes.fromhex(t.get("context_free_data_hex") or "")
    # packed_transaction: signatures (none), compression, packed_cfd, packed_trx.
    comp = 1 if t.get("compression") in ("zlib", 1) else 0
    put("packed_transaction", b"\x00" + bytes([comp]) + varuint(len(cfd)) + cfd + varuint(len(raw)) + raw)
    put("grpc_requests", b"\x00" + b"\x1a" + varuint(len(raw)) + raw)
for b in V["savanna_blocks"] + V["legacy_blocks"]:
    h = bytes.fromhex(b["header_hex"])
    put("block_header", h)
    put("grpc_requests", b"\x01" + b"\x1a" + varuint(len(h)) + h)
for k in V["keys"]:
    for f in ("pvt", "pub", "pub_legacy", "wif"):
        if k.get(f):
            put("key_strings", k[f])
for s in V["fc_signatures"]:
    put("key_strings", s["signature"])
for k in V["invalid_keys"]:
    put("key_strings", k["string"])
for path in ("deploy/policy.toml",):
    put("policy_toml", open(os.path.join(ROOT, path)).read())
for i, body in enumerate([
    '["%s", "%s"]' % ("ab" * 32, V["keys"][0]["pub"]),
    '[{"expiration":"2026-11-21T12:00:00","ref_block_num":1,"ref_block_prefix":2,"actions":[]}, ["%s"], "%s"]' % (V["keys"][0]["pub"], V["chain_ids"][0]["chain_id_hex"]),
    "[]",
]):
    put("wallet", bytes([i]) + body.encode())
put("carried", json.dumps({"rows": [{"owner": "oryxproducer", "producer_key": V["keys"][0]["pub"], "is_active": 1, "url": "", "total_votes": "0", "unpaid_blocks": 0, "last_claim_time": "2024-01-01T00:00:00.000", "location": 0}], "total_producer_vote_weight": "0", "more": ""}))
put("carried", json.dumps({"active": {"version": 2, "producers": [{"producer_name": "oryxproducer", "authority": ["block_signing_authority_v0", {"threshold": 1, "keys": [{"key": V["keys"][0]["pub"], "weight": 1}]}]}]}, "pending": None, "proposed": None}))
put("carried", json.dumps({"chain_id": V["chain_ids"][0]["chain_id_hex"], "head_block_num": 7000003, "head_block_id": "006acfc3" + "33" * 28, "last_irreversible_block_num": 7000000, "last_irreversible_block_id": "006acfc0" + "5a" * 28, "head_block_time": "2026-12-07T10:00:00.000"}))
print("seeded", file=sys.stderr)
