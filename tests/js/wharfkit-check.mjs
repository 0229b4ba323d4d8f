#!/usr/bin/env node
// Independent cross-check of Oryx's Antelope serialization and signatures
// using @wharfkit/antelope (a JS implementation that shares no code with Oryx).
//
// Reads ONE JSON document on stdin, writes ONE JSON document on stdout.
// Exit status: 0 whenever the input could be read (bad *items* are reported as
// ok:false inside the output); 1 when stdin is not JSON, is not an object, or a
// section has the wrong shape (e.g. "signatures" is not an array, build.count is
// not a non-negative integer). See README.md for the protocol.

import {
    ABI,
    ABIDecoder,
    Action,
    Bytes,
    Checksum256,
    KeyType,
    Name,
    PrivateKey,
    PublicKey,
    Serializer,
    Signature,
    TimePointSec,
    Transaction,
} from '@wharfkit/antelope'

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

const HEX64 = /^[0-9a-fA-F]{64}$/
const HEX = /^(?:[0-9a-fA-F]{2})*$/

function errMsg(e) {
    return e && e.message ? e.message : String(e)
}

function checksum256(value, what) {
    if (typeof value !== 'string' || !HEX64.test(value)) {
        throw new Error(`${what} must be 64 hex characters`)
    }
    return Checksum256.from(value.toLowerCase())
}

function hexBytes(value, what) {
    if (typeof value !== 'string' || !HEX.test(value)) {
        throw new Error(`${what} must be an even-length hex string`)
    }
    return Bytes.from(value.toLowerCase(), 'hex')
}

function bytesToBigInt(u8) {
    let v = 0n
    for (const b of u8) v = (v << 8n) | BigInt(b)
    return v
}

// Curve orders, used only for the informational low-S flag.
const CURVE_N = {
    K1: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
    R1: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
}

// Informational signature properties (they do NOT affect "ok"):
//  - low_s: s <= n/2 (BIP-0062 style canonicality)
//  - eosio_canonical: the historic fc::ecc::public_key::is_canonical rule
//    (r and s each 32 bytes with no high bit set and no unnecessary zero pad).
function signatureFlags(sig) {
    if (sig.type !== KeyType.K1 && sig.type !== KeyType.R1) return {}
    const c = sig.data.array
    const s = bytesToBigInt(c.subarray(33, 65))
    const n = CURVE_N[sig.type]
    return {
        low_s: s <= n / 2n,
        eosio_canonical:
            !(c[1] & 0x80) &&
            !(c[1] === 0 && !(c[2] & 0x80)) &&
            !(c[33] & 0x80) &&
            !(c[33] === 0 && !(c[34] & 0x80)),
    }
}

function keyForms(key) {
    const out = {recovered: String(key)}
    if (key.type === KeyType.K1) out.recovered_legacy = key.toLegacyString()
    return out
}

// Decode a whole buffer as `type`, failing on trailing bytes (wharfkit's
// Serializer.decode silently ignores trailing data, so we drive the decoder
// ourselves and check its final position).
function decodeExact(bytes, args) {
    const decoder = new ABIDecoder(bytes.array, new TextDecoder('utf-8', {fatal: true}))
    const value = Serializer.decode({...args, data: decoder})
    const pos = decoder.getPosition()
    if (pos !== bytes.length) {
        throw new Error(`${bytes.length - pos} trailing byte(s) after ${pos} decoded bytes`)
    }
    return value
}

// ---------------------------------------------------------------------------
// ABIs (minimal, hand-written; only the actions this script builds)
// ---------------------------------------------------------------------------

function abiDef(structs) {
    return ABI.from({
        version: 'eosio::abi/1.2',
        types: [],
        variants: [],
        structs: structs.map(([name, fields]) => ({
            name,
            base: '',
            fields: fields.map(([n, t]) => ({name: n, type: t})),
        })),
        actions: structs.map(([name]) => ({name, type: name, ricardian_contract: ''})),
        tables: [],
        ricardian_clauses: [],
        action_results: [],
    })
}

const TOKEN_ABI = abiDef([
    [
        'transfer',
        [
            ['from', 'name'],
            ['to', 'name'],
            ['quantity', 'asset'],
            ['memo', 'string'],
        ],
    ],
])

const SYSTEM_ABI = abiDef([
    [
        'voteproducer',
        [
            ['voter', 'name'],
            ['proxy', 'name'],
            ['producers', 'name[]'],
        ],
    ],
    ['claimrewards', [['owner', 'name']]],
    [
        'regproducer',
        [
            ['producer', 'name'],
            ['producer_key', 'public_key'],
            ['url', 'string'],
            ['location', 'uint16'],
        ],
    ],
])

const ABIS = {'eosio.token': TOKEN_ABI, eosio: SYSTEM_ABI}

// Decode an action's data with the built-in ABIs. Returns plain JSON
// (assets as "1.0000 EOS", names as strings, public keys as PUB_K1_...),
// or null if the contract/action is not one we know.
function decodeActionFields(action) {
    const abi = ABIS[String(action.account)]
    if (!abi) return null
    const type = abi.getActionType(action.name)
    if (!type) return null
    const value = decodeExact(action.data, {type, abi})
    // Re-encode to make sure the ABI round trip is byte-identical.
    const again = Serializer.encode({object: value, type, abi})
    if (!again.equals(action.data)) {
        throw new Error(`action ${action.account}::${action.name} data does not re-encode identically`)
    }
    return Serializer.objectify(value)
}

// ---------------------------------------------------------------------------
// Section 1: signatures
// ---------------------------------------------------------------------------

function checkSignature(item) {
    const out = {ok: false}
    try {
        if (!item || typeof item !== 'object') throw new Error('item must be an object')
        const digest = checksum256(item.digest, 'digest')
        const sig = Signature.from(item.signature)
        Object.assign(out, signatureFlags(sig))
        const recovered = sig.recoverDigest(digest)
        Object.assign(out, keyForms(recovered))
        const expected = PublicKey.from(item.public_key)
        out.expected = String(expected)
        const matches = recovered.equals(expected)
        const verified = sig.verifyDigest(digest, expected)
        out.recovered_matches = matches
        out.verified = verified
        out.ok = matches && verified
        if (!out.ok) {
            out.error = !matches
                ? `recovered key ${out.recovered} != expected ${out.expected}` +
                  (verified
                      ? ' (verifyDigest accepts r,s for the expected key, so the recovery-id byte is wrong)'
                      : '')
                : 'recovered key matches but verifyDigest rejected'
        }
    } catch (e) {
        out.ok = false
        out.error = errMsg(e)
    }
    return out
}

// ---------------------------------------------------------------------------
// Section 2: transactions
// ---------------------------------------------------------------------------

// Antelope signing digest:
//   sha256(chain_id || pack(transaction) || cfd_digest)
// where cfd_digest = sha256(pack(vector<bytes> context_free_data)) if the cfd
// vector is non-empty, else 32 zero bytes.
//
// NOTE: wharfkit's Transaction.signingDigest(chainId) / signingData() (v1.2.0)
// does NOT support context-free data: it always appends 32 zero bytes. For the
// non-empty case we therefore compute the formula ourselves with wharfkit's
// Checksum256.hash / Bytes / Serializer.encode('bytes[]') utilities.
function signingDigest(chainId, packedTrx, cfd) {
    let cfdDigest
    if (cfd.length > 0) {
        cfdDigest = Checksum256.hash(Serializer.encode({object: cfd, type: 'bytes[]'})).array
    } else {
        cfdDigest = new Uint8Array(32)
    }
    const data = Bytes.from(chainId.array).appending(packedTrx).appending(cfdDigest)
    return Checksum256.hash(data)
}

function checkTransaction(item) {
    const out = {ok: false, errors: []}
    const errors = out.errors
    try {
        if (!item || typeof item !== 'object') throw new Error('item must be an object')
        const chainId = checksum256(item.chain_id, 'chain_id')
        const packed = hexBytes(item.packed_trx, 'packed_trx')
        const cfdIn = item.context_free_data === undefined ? [] : item.context_free_data
        if (!Array.isArray(cfdIn)) throw new Error('context_free_data must be an array')
        const cfd = cfdIn.map((h, i) => hexBytes(h, `context_free_data[${i}]`))

        const trx = decodeExact(packed, {type: Transaction})
        out.decoded = Serializer.objectify(trx)

        const reencoded = Serializer.encode({object: trx})
        if (!reencoded.equals(packed)) {
            errors.push(
                `re-encoding is not byte-identical: got ${reencoded.hexString}, expected ${packed.hexString}`
            )
        }

        // Best-effort decode of known action data (eosio.token / eosio).
        out.actions_decoded = trx.actions.map((a) => {
            const entry = {account: String(a.account), name: String(a.name), fields: null}
            try {
                entry.fields = decodeActionFields(a)
            } catch (e) {
                entry.error = errMsg(e)
            }
            return entry
        })

        // id: wharfkit's transaction.id (sha256 of its own re-encoding); also
        // cross-check against sha256 of the bytes as given.
        const id = trx.id
        out.id = id.hexString
        const rawId = Checksum256.hash(packed)
        if (!rawId.equals(id)) errors.push(`sha256(packed_trx) ${rawId.hexString} != wharfkit id ${out.id}`)
        if (item.id !== undefined) {
            const given = checksum256(item.id, 'id')
            if (!given.equals(id)) errors.push(`id mismatch: given ${given.hexString}, wharfkit ${out.id}`)
        }

        // sig_digest
        let digest
        if (cfd.length === 0) {
            digest = trx.signingDigest(chainId)
            const manual = signingDigest(chainId, packed, cfd)
            if (!manual.equals(digest)) {
                errors.push(
                    `wharfkit signingDigest ${digest.hexString} != manual digest over given bytes ${manual.hexString}`
                )
            }
        } else {
            // wharfkit cannot do this one (see signingDigest() above).
            digest = signingDigest(chainId, packed, cfd)
        }
        out.sig_digest = digest.hexString
        if (item.sig_digest !== undefined) {
            const given = checksum256(item.sig_digest, 'sig_digest')
            if (!given.equals(digest)) {
                errors.push(`sig_digest mismatch: given ${given.hexString}, wharfkit ${out.sig_digest}`)
            }
        }

        // signatures: each must recover (over the digest computed here) to one of public_keys
        const sigs = item.signatures === undefined ? [] : item.signatures
        const keysIn = item.public_keys === undefined ? [] : item.public_keys
        if (!Array.isArray(sigs)) throw new Error('signatures must be an array')
        if (!Array.isArray(keysIn)) throw new Error('public_keys must be an array')
        const keys = []
        keysIn.forEach((k, i) => {
            try {
                keys.push(PublicKey.from(k))
            } catch (e) {
                errors.push(`public_keys[${i}]: ${errMsg(e)}`)
            }
        })
        out.recovered = []
        sigs.forEach((s, i) => {
            try {
                const sig = Signature.from(s)
                const rec = sig.recoverDigest(digest)
                out.recovered.push(String(rec))
                const match = keys.find((k) => k.equals(rec))
                if (!match) {
                    errors.push(`signatures[${i}] recovers to ${rec}, which is not in public_keys`)
                } else if (!sig.verifyDigest(digest, match)) {
                    errors.push(`signatures[${i}] recovers to ${rec} but verifyDigest rejected it`)
                }
            } catch (e) {
                out.recovered.push(null)
                errors.push(`signatures[${i}]: ${errMsg(e)}`)
            }
        })
    } catch (e) {
        errors.push(errMsg(e))
    }
    out.ok = errors.length === 0
    return out
}

// ---------------------------------------------------------------------------
// Section 3: deterministic transaction builder
// ---------------------------------------------------------------------------

// mulberry32: tiny 32-bit PRNG, good enough for test-vector generation.
function mulberry32(seed) {
    let a = seed >>> 0
    return function next() {
        a = (a + 0x6d2b79f5) >>> 0
        let t = a
        t = Math.imul(t ^ (t >>> 15), t | 1)
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
        return (t ^ (t >>> 14)) >>> 0
    }
}

// Per-item seed so that item i depends only on (seed, i).
function itemSeed(seed, index) {
    const lo = Number(BigInt.asUintN(32, BigInt(seed)))
    const hi = Number(BigInt.asUintN(32, BigInt(seed) >> 32n))
    let h = Math.imul(lo ^ 0x9e3779b9, 0x85ebca6b) >>> 0
    h = Math.imul(h ^ (h >>> 13) ^ hi, 0xc2b2ae35) >>> 0
    h = Math.imul(h ^ (h >>> 16) ^ index, 0x27d4eb2f) >>> 0
    return (h ^ (h >>> 15)) >>> 0
}

class Rng {
    constructor(seed) {
        this.next32 = mulberry32(seed)
    }
    u32() {
        return this.next32()
    }
    /** integer in [0, n) for n <= 2^32 */
    below(n) {
        return Math.floor((this.u32() / 4294967296) * n)
    }
    /** integer in [lo, hi] */
    range(lo, hi) {
        return lo + this.below(hi - lo + 1)
    }
    chance(p) {
        return this.u32() / 4294967296 < p
    }
    pick(arr) {
        return arr[this.below(arr.length)]
    }
    bytes(n) {
        const out = new Uint8Array(n)
        for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff
        return out
    }
    /** BigInt in [0, 2^bits) */
    bigBits(bits) {
        let v = 0n
        for (let i = 0; i < bits; i += 32) v = (v << 32n) | BigInt(this.u32())
        return BigInt.asUintN(bits, v)
    }
    /** varuint32-ish value exercising all encoded lengths (1..5 bytes) */
    varuint() {
        if (this.chance(0.5)) return 0
        const bits = this.pick([7, 14, 21, 28, 32])
        return Number(this.bigBits(bits))
    }
}

const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyz12345'

// Valid Antelope name: 1-12 chars from [a-z1-5], with an occasional '.' in an
// interior position (never first or last, so it round-trips and never ends in '.').
function randomName(rng) {
    const len = rng.range(1, 12)
    let s = ''
    for (let i = 0; i < len; i++) {
        if (i > 0 && i < len - 1 && rng.chance(0.08)) s += '.'
        else s += NAME_CHARS[rng.below(NAME_CHARS.length)]
    }
    return s
}

function randomPermission(rng) {
    return rng.chance(0.7) ? 'active' : rng.chance(0.5) ? 'owner' : randomName(rng)
}

function randomAuth(rng, actor) {
    const auth = [{actor: actor || randomName(rng), permission: randomPermission(rng)}]
    if (rng.chance(0.2)) auth.push({actor: randomName(rng), permission: randomPermission(rng)})
    return auth
}

const MEMO_EXTRA = ['é', 'ü', '✓', '€', '漢', '🚀', ' ', '"', '\\', '\n']

function randomMemo(rng) {
    const len = rng.chance(0.2) ? 0 : rng.range(1, 60)
    let s = ''
    for (let i = 0; i < len; i++) {
        s += rng.chance(0.1) ? rng.pick(MEMO_EXTRA) : String.fromCharCode(rng.range(0x20, 0x7e))
    }
    return s
}

function randomQuantity(rng) {
    const [precision, sym] = rng.chance(0.5) ? [4, 'EOS'] : [8, 'WAX']
    // amount in [0, 2^62) (Antelope's max asset amount is 2^62-1), spread over magnitudes
    const units = rng.bigBits(rng.range(1, 62))
    let digits = units.toString().padStart(precision + 1, '0')
    const str = `${digits.slice(0, -precision)}.${digits.slice(-precision)} ${sym}`
    return str
}

const K1_N = CURVE_N.K1

// Deterministic K1 key: 32 PRNG bytes, redrawn until 0 < k < n.
function randomK1PublicKey(rng) {
    for (;;) {
        const bytes = rng.bytes(32)
        const k = bytesToBigInt(bytes)
        if (k === 0n || k >= K1_N) continue
        return new PrivateKey(KeyType.K1, Bytes.from(bytes)).toPublic()
    }
}

function sortedUniqueNames(rng, count) {
    const seen = new Map()
    for (let i = 0; i < count; i++) {
        const n = Name.from(randomName(rng))
        seen.set(n.value.toString(), n)
    }
    return [...seen.values()]
        .sort((a, b) => {
            const x = BigInt(a.value.toString())
            const y = BigInt(b.value.toString())
            return x < y ? -1 : x > y ? 1 : 0
        })
        .map(String)
}

function randomAction(rng) {
    switch (rng.below(5)) {
        case 0: {
            const from = randomName(rng)
            return {
                account: 'eosio.token',
                name: 'transfer',
                authorization: randomAuth(rng, from),
                data: {from, to: randomName(rng), quantity: randomQuantity(rng), memo: randomMemo(rng)},
            }
        }
        case 1: {
            const voter = randomName(rng)
            return {
                account: 'eosio',
                name: 'voteproducer',
                authorization: randomAuth(rng, voter),
                data: {voter, proxy: '', producers: sortedUniqueNames(rng, rng.range(0, 30))},
            }
        }
        case 2: {
            const owner = randomName(rng)
            return {account: 'eosio', name: 'claimrewards', authorization: randomAuth(rng, owner), data: {owner}}
        }
        case 3: {
            const producer = randomName(rng)
            return {
                account: 'eosio',
                name: 'regproducer',
                authorization: randomAuth(rng, producer),
                data: {
                    producer,
                    producer_key: String(randomK1PublicKey(rng)),
                    url: rng.chance(0.1) ? '' : `https://${producer.replace(/\./g, '-')}.example`,
                    location: rng.range(0, 65535),
                },
            }
        }
        default: {
            let account = randomName(rng)
            while (account === 'eosio' || account.startsWith('eosio.')) account = randomName(rng)
            return {
                account,
                name: randomName(rng),
                authorization: randomAuth(rng),
                data: Bytes.from(rng.bytes(rng.range(0, 64))), // raw hex data, no ABI
            }
        }
    }
}

function buildOne(chainId, seed, index) {
    const rng = new Rng(itemSeed(seed, index))
    const header = {
        expiration: TimePointSec.fromInteger(rng.u32()),
        ref_block_num: rng.below(65536),
        ref_block_prefix: rng.u32(),
        max_net_usage_words: rng.varuint(),
        max_cpu_usage_ms: rng.chance(0.5) ? 0 : rng.below(256),
        delay_sec: rng.varuint(),
    }
    const specs = []
    const n = rng.range(1, 3)
    for (let i = 0; i < n; i++) specs.push(randomAction(rng))

    const actions = specs.map((s) => Action.from(s, ABIS[s.account]))
    const trx = Transaction.from({...header, context_free_actions: [], actions, transaction_extensions: []})
    const packed = Serializer.encode({object: trx})

    // Self-check: decode our own bytes and re-encode.
    const back = decodeExact(packed, {type: Transaction})
    if (!Serializer.encode({object: back}).equals(packed)) {
        throw new Error('built transaction does not round-trip')
    }

    return {
        ok: true,
        chain_id: chainId.hexString,
        packed_trx: packed.hexString,
        id: trx.id.hexString,
        // no context-free data here, so wharfkit's signingDigest is correct
        sig_digest: trx.signingDigest(chainId).hexString,
        json: Serializer.objectify(trx),
        actions_decoded: actions.map((a) => ({
            account: String(a.account),
            name: String(a.name),
            fields: decodeActionFields(a),
        })),
    }
}

function buildSection(build) {
    if (!build || typeof build !== 'object' || Array.isArray(build)) {
        throw new InputError('"build" must be an object')
    }
    const {count, seed} = build
    if (!Number.isSafeInteger(count) || count < 0) throw new InputError('build.count must be a non-negative integer')
    if (!Number.isSafeInteger(seed)) throw new InputError('build.seed must be an integer')
    let chainId = null
    let chainErr = null
    try {
        chainId = checksum256(build.chain_id, 'build.chain_id')
    } catch (e) {
        chainErr = errMsg(e)
    }
    const out = []
    for (let i = 0; i < count; i++) {
        if (chainErr) {
            out.push({ok: false, error: chainErr})
            continue
        }
        try {
            out.push(buildOne(chainId, seed, i))
        } catch (e) {
            out.push({ok: false, error: errMsg(e)})
        }
    }
    return out
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

class InputError extends Error {}

function section(input, key) {
    const v = input[key]
    if (v === undefined || v === null) return []
    if (!Array.isArray(v)) throw new InputError(`"${key}" must be an array`)
    return v
}

async function readStdin() {
    const chunks = []
    for await (const chunk of process.stdin) chunks.push(chunk)
    return Buffer.concat(chunks).toString('utf8')
}

async function main() {
    let input
    try {
        input = JSON.parse(await readStdin())
        if (!input || typeof input !== 'object' || Array.isArray(input)) {
            throw new InputError('input must be a JSON object')
        }
    } catch (e) {
        return fail(`unreadable input: ${errMsg(e)}`)
    }
    let output
    try {
        output = {
            signatures: section(input, 'signatures').map(checkSignature),
            transactions: section(input, 'transactions').map(checkTransaction),
            built: input.build === undefined || input.build === null ? [] : buildSection(input.build),
        }
    } catch (e) {
        if (e instanceof InputError) return fail(`unreadable input: ${e.message}`)
        throw e
    }
    process.stdout.write(JSON.stringify(output, null, 2) + '\n')
}

function fail(message) {
    process.stderr.write(message + '\n')
    process.stdout.write(JSON.stringify({error: message}) + '\n')
    process.exitCode = 1
}

main().catch((e) => {
    process.stderr.write(`internal error: ${e && e.stack ? e.stack : e}\n`)
    process.exitCode = 2
})
