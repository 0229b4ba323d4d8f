//! Every vector from real chains passes: names, keys, invalid inputs, transaction ids and
//! digests, Savanna block ids, legacy sig_digests, fc-exact signatures and chain ids.

use oryx_proto::antelope::block::{BlockHeader, BlockKind};
use oryx_proto::antelope::chain::Genesis;
use oryx_proto::antelope::transaction::{PackedTransaction, Transaction, inflate};
use oryx_proto::antelope::{
    Bytes, Checksum256, Name, Pack, PrivateKey, PublicKey, Signature, Unpack,
};
use oryx_signer::backend::KeyBackend;
use oryx_signer::backend::soft::SoftKey;
use oryx_signer::signing::{SignOptions, finish, sign};
use oryx_tests::vectors::{label, load_all, opt, s, section, u64_field};
use serde_json::Value;

fn checksum(entry: &Value, field: &str) -> Checksum256 {
    Checksum256::from_hex(s(entry, field))
        .unwrap_or_else(|e| panic!("{}: {field}: {e}", label(entry)))
}

fn for_each(section_name: &str, mut f: impl FnMut(&Value)) -> usize {
    let mut n = 0;
    for (path, doc) in load_all() {
        for entry in section(&doc, section_name) {
            eprintln!("{} {section_name}: {}", path.display(), label(entry));
            f(entry);
            n += 1;
        }
    }
    n
}

#[test]
fn chain_ids() {
    let n = for_each("chain_ids", |e| {
        let g = Genesis::from_json(&e["genesis"].to_string()).expect("genesis parses");
        assert_eq!(
            hex::encode(g.packed()),
            s(e, "genesis_packed_hex"),
            "{}",
            label(e)
        );
        assert_eq!(
            g.chain_id().to_string(),
            s(e, "chain_id_hex"),
            "{}",
            label(e)
        );
    });
    assert!(n >= 2);
}

#[test]
fn names() {
    let n = for_each("names", |e| {
        let name = Name::new(s(e, "name")).expect("valid name");
        assert_eq!(name.value(), u64_field(e, "u64"));
        assert_eq!(hex::encode(name.packed()), s(e, "le_hex"));
        assert_eq!(name.to_string(), s(e, "name"));
        assert_eq!(
            Name::unpack_exact(&hex::decode(s(e, "le_hex")).expect("hex")).expect("decodes"),
            name
        );
    });
    assert!(n >= 5);
}

#[test]
fn invalid_names() {
    let n = for_each("invalid_names", |e| {
        assert!(
            Name::new(s(e, "name")).is_err(),
            "{} must be rejected",
            label(e)
        );
        if e.get("raw_u64_if_not_validated")
            .is_some_and(|v| !v.is_null())
        {
            assert_eq!(
                Name(u64_field(e, "raw_u64_if_not_validated")).to_string(),
                s(e, "normalizes_to")
            );
        }
    });
    assert!(n >= 3);
}

fn check_derivation(e: &Value, private_hex: &str) {
    if let Some(d) = opt(e, "private_key_derivation") {
        let input = d
            .strip_prefix("sha256(\"")
            .and_then(|r| r.strip_suffix("\")"))
            .expect("derivation form");
        assert_eq!(
            Checksum256::hash(input.as_bytes()).to_string(),
            private_hex,
            "{}",
            label(e)
        );
    }
}

#[test]
fn keys() {
    let n = for_each("keys", |e| {
        let kind = if s(e, "type") == "R1" {
            oryx_proto::antelope::KeyType::R1
        } else {
            oryx_proto::antelope::KeyType::K1
        };
        let bytes: [u8; 32] = hex::decode(s(e, "private_key_hex"))
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        let key = PrivateKey::from_bytes(kind, bytes).expect("valid private key");
        check_derivation(e, s(e, "private_key_hex"));
        assert_eq!(key.to_pvt_string().as_str(), s(e, "pvt"));
        assert_eq!(PrivateKey::parse(s(e, "pvt")).expect("pvt parses"), key);
        match opt(e, "wif") {
            Some(wif) => {
                assert_eq!(key.to_wif().expect("K1 has WIF").as_str(), wif);
                assert_eq!(PrivateKey::parse(wif).expect("wif parses"), key);
            }
            None => assert!(key.to_wif().is_none()),
        }
        let public = key.public_key();
        assert_eq!(hex::encode(public.as_bytes()), s(e, "public_key_hex"));
        assert_eq!(public.to_pub_string(), s(e, "pub"));
        assert_eq!(PublicKey::parse(s(e, "pub")).expect("pub parses"), public);
        assert_eq!(public.to_legacy_string().as_deref(), opt(e, "pub_legacy"));
        if let Some(legacy) = opt(e, "pub_legacy") {
            assert_eq!(PublicKey::parse(legacy).expect("legacy parses"), public);
        }
        assert_eq!(
            PublicKey::unpack_exact(&public.packed()).expect("binary"),
            public
        );
    });
    assert!(n >= 4);
}

#[test]
fn invalid_keys() {
    let n = for_each("invalid_keys", |e| {
        let text = s(e, "string");
        let rejected = match s(e, "kind") {
            "private" => PrivateKey::parse(text).is_err(),
            "public" => PublicKey::parse(text).is_err(),
            other => panic!("unknown kind {other}"),
        };
        assert!(rejected, "{} ({}) must be rejected", text, s(e, "reason"));
        if let Some(good) = opt(e, "corrected") {
            let accepted = match s(e, "kind") {
                "private" => PrivateKey::parse(good).is_ok(),
                _ => PublicKey::parse(good).is_ok(),
            };
            assert!(accepted, "corrected form {good} must parse");
        }
    });
    assert!(n >= 3);
}

/// Checks a signature entry: string ↔ binary, recovery to the stated key, and — when the
/// private key is known — that Oryx's software signer reproduces fc's exact attempt sequence.
fn check_signature(e: &Value, digest: &Checksum256) {
    let sig = Signature::parse(s(e, "signature")).expect("signature parses");
    assert_eq!(
        hex::encode(sig.as_bytes()),
        s(e, "signature_hex"),
        "{}",
        label(e)
    );
    assert_eq!(Signature::unpack_exact(&sig.packed()).expect("binary"), sig);
    let public = sig.recover(digest).expect("recovers (canonical)");
    assert_eq!(
        hex::encode(public.as_bytes()),
        s(e, "public_key_hex"),
        "{}",
        label(e)
    );
    assert_eq!(public.to_legacy_string().as_deref(), opt(e, "public_key"));
    assert_eq!(public.to_pub_string(), s(e, "public_key_pub_k1"));

    let Some(private_hex) = opt(e, "private_key_hex") else {
        return;
    };
    check_derivation(e, private_hex);
    let bytes: [u8; 32] = hex::decode(private_hex)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let key = SoftKey::new(PrivateKey::from_bytes(public.kind(), bytes).expect("valid key"));
    if let Some(wif) = opt(e, "wif") {
        assert_eq!(PrivateKey::parse(wif).expect("wif"), *key.private_key());
    }
    let signed = sign(&key, digest, SignOptions::default()).expect("signs");
    assert_eq!(signed.signature, sig, "{}: fc-exact signature", label(e));
    if let Some(attempt) = e.get("fc_attempt").and_then(Value::as_u64) {
        assert_eq!(
            u64::from(signed.attempts),
            attempt,
            "{}: fc attempt count",
            label(e)
        );
    }
    for rejected in e
        .get("rejected_attempts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let attempt = rejected["attempt"].as_u64().expect("attempt") as u32;
        let raw = key.sign_digest(digest, attempt).expect("raw");
        let got = finish(public, digest, &raw).expect("verifies");
        assert_eq!(
            hex::encode(got.as_bytes()),
            s(rejected, "signature_hex"),
            "{}: rejected attempt {attempt}",
            label(e)
        );
        assert!(!got.is_canonical());
    }
    if let Some(a0) = opt(e, "rfc6979_attempt0_signature_hex") {
        let raw = key.sign_digest(digest, 0).expect("raw");
        let got = finish(public, digest, &raw).expect("verifies");
        assert_eq!(
            hex::encode(got.as_bytes()),
            a0,
            "{}: RFC 6979 attempt 0",
            label(e)
        );
        assert_eq!(
            Some(got.is_canonical()),
            e.get("rfc6979_attempt0_is_canonical")
                .and_then(Value::as_bool)
        );
    }
}

#[test]
fn transactions() {
    let n = for_each("transactions", |e| {
        let packed = hex::decode(s(e, "packed_trx_hex")).expect("hex");
        if e.get("compression").and_then(Value::as_u64) == Some(1) {
            let wire = hex::decode(s(e, "packed_trx_wire_hex")).expect("hex");
            assert_eq!(inflate(&wire).expect("inflates"), packed, "{}", label(e));
        }
        let trx = Transaction::decode(&packed).expect("transaction decodes");
        assert_eq!(trx.packed(), packed, "re-packs byte-identically");
        let cfd: Vec<Bytes> = e["context_free_data_hex"]
            .as_array()
            .expect("cfd list")
            .iter()
            .map(|h| Bytes(hex::decode(h.as_str().expect("hex string")).expect("hex")))
            .collect();
        assert_eq!(trx.id(), checksum(e, "transaction_id_hex"), "{}", label(e));
        let chain = checksum(e, "chain_id_hex");
        let digest = trx.signing_digest(&chain, &cfd);
        assert_eq!(digest, checksum(e, "sig_digest_hex"), "{}", label(e));

        // The packed_transaction form digests the same, compressed or not.
        for compression in [
            oryx_proto::antelope::transaction::Compression::None,
            oryx_proto::antelope::transaction::Compression::Zlib,
        ] {
            let p = PackedTransaction::new(&trx, &cfd, vec![], compression).expect("packs");
            let back = PackedTransaction::unpack_exact(&p.packed()).expect("unpacks");
            assert_eq!(back.signing_digest(&chain).expect("digest"), digest);
        }

        let d = &e["decoded"];
        assert_eq!(trx.expiration.to_string(), s(d, "expiration"));
        assert_eq!(u64::from(trx.ref_block_num), u64_field(d, "ref_block_num"));
        assert_eq!(
            u64::from(trx.ref_block_prefix),
            u64_field(d, "ref_block_prefix")
        );
        assert_eq!(
            u64::from(trx.max_net_usage_words.0),
            u64_field(d, "max_net_usage_words")
        );
        assert_eq!(
            u64::from(trx.max_cpu_usage_ms),
            u64_field(d, "max_cpu_usage_ms")
        );
        assert_eq!(u64::from(trx.delay_sec.0), u64_field(d, "delay_sec"));
        for (list, actions) in [
            ("actions", &trx.actions),
            ("context_free_actions", &trx.context_free_actions),
        ] {
            let expected = d[list].as_array().expect("action list");
            assert_eq!(expected.len(), actions.len(), "{}: {list}", label(e));
            for (x, a) in expected.iter().zip(actions.iter()) {
                assert_eq!(a.account.to_string(), s(x, "account"));
                assert_eq!(a.name.to_string(), s(x, "name"));
                let auth: Vec<String> = a.authorization.iter().map(ToString::to_string).collect();
                let want: Vec<&str> = x["authorization"]
                    .as_array()
                    .expect("auth")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                assert_eq!(auth, want);
                assert_eq!(a.data.0.len() as u64, u64_field(x, "data_len"));
                assert_eq!(
                    Checksum256::hash(&a.data.0).to_string(),
                    s(x, "data_sha256")
                );
                if let Some(h) = opt(x, "data_hex") {
                    assert_eq!(hex::encode(&a.data.0), h);
                }
            }
        }
        assert_eq!(
            d["transaction_extensions"].as_array().map_or(0, Vec::len),
            trx.transaction_extensions.len()
        );
        check_signature(e, &digest);
    });
    assert!(n >= 4);
}

fn check_block(e: &Value, expect_kind: BlockKind) -> (BlockHeader, Checksum256) {
    let h = BlockHeader::decode(&hex::decode(s(e, "header_hex")).expect("hex"))
        .expect("header decodes");
    assert_eq!(
        hex::encode(h.packed()),
        s(e, "header_hex"),
        "re-packs byte-identically"
    );
    assert_eq!(
        u64::from(h.block_num().expect("block num")),
        u64_field(e, "block_num")
    );
    assert_eq!(h.producer.to_string(), s(e, "producer"));
    assert_eq!(h.timestamp.to_string(), s(e, "timestamp"));
    assert_eq!(
        u64::from(h.schedule_version),
        u64_field(e, "schedule_version")
    );
    assert_eq!(h.digest(), checksum(e, "header_digest_hex"));
    let id = h.id().expect("id");
    assert_eq!(id, checksum(e, "block_id_hex"), "{}", label(e));
    assert_eq!(h.kind(), expect_kind, "{}", label(e));
    (h, id)
}

#[test]
fn savanna_blocks() {
    let n = for_each("savanna_blocks", |e| {
        let (h, id) = check_block(e, BlockKind::Savanna);
        assert_eq!(
            id,
            checksum(e, "signed_digest_hex"),
            "Savanna producers sign the block id"
        );
        if let Some(fin) = e.get("finality_extension").filter(|v| !v.is_null()) {
            let ext = h
                .header_extensions
                .iter()
                .find(|x| u64::from(x.0) == u64_field(fin, "type"))
                .expect("extension present");
            assert_eq!(hex::encode(&ext.1.0), s(fin, "data_hex"));
            let decoded = h.finality_extension().expect("decodes").expect("present");
            assert_eq!(
                u64::from(decoded.qc_claim.block_num),
                u64_field(fin, "qc_claim_block_num")
            );
            assert_eq!(
                Some(decoded.qc_claim.is_strong_qc),
                fin.get("qc_claim_is_strong_qc").and_then(Value::as_bool)
            );
        }
        check_signature(e, &id);
    });
    assert!(n >= 1);
}

#[test]
fn legacy_blocks() {
    let n = for_each("legacy_blocks", |e| {
        let (h, _) = check_block(e, BlockKind::Legacy);
        let bm = checksum(e, "blockroot_merkle_root_hex");
        let header_bmroot = Checksum256::hash_parts(&[&h.digest().0, &bm.0]);
        assert_eq!(header_bmroot, checksum(e, "header_bmroot_hex"));
        let digest = h.legacy_sig_digest(&bm, &checksum(e, "pending_schedule_hash_hex"));
        assert_eq!(digest, checksum(e, "sig_digest_hex"), "{}", label(e));
        check_signature(e, &digest);
    });
    assert!(n >= 1);
}

#[test]
fn fc_signatures() {
    let n = for_each("fc_signatures", |e| {
        check_signature(e, &checksum(e, "digest_hex"))
    });
    assert!(n >= 2);
}

#[test]
fn invalid_signatures() {
    let n = for_each("invalid_signatures", |e| {
        let sig = Signature::parse(s(e, "signature")).expect("the string itself is well-formed");
        assert_eq!(hex::encode(sig.as_bytes()), s(e, "signature_hex"));
        let digest = checksum(e, "digest_hex");
        assert!(!sig.is_canonical(), "{} must not be canonical", label(e));
        assert!(
            sig.recover(&digest).is_err(),
            "{}: nodes reject it, so must Oryx",
            label(e)
        );
        let lenient = sig.recover_lenient(&digest).expect("recovers leniently");
        assert_eq!(
            hex::encode(lenient.as_bytes()),
            s(e, "lenient_recovered_public_key_hex")
        );
        if let (Some(private_hex), Some(attempt)) = (
            opt(e, "private_key_hex"),
            e.get("fc_attempt").and_then(Value::as_u64),
        ) {
            let bytes: [u8; 32] = hex::decode(private_hex)
                .expect("hex")
                .try_into()
                .expect("32 bytes");
            let key = SoftKey::new(PrivateKey::from_bytes(lenient.kind(), bytes).expect("key"));
            let raw = key.sign_digest(&digest, attempt as u32).expect("raw");
            assert_eq!(
                finish(lenient, &digest, &raw).expect("verifies"),
                sig,
                "fc computed and discarded exactly this"
            );
        }
    });
    assert!(n >= 2);
}
