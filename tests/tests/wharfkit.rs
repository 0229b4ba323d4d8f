//! An independent implementation agrees with Oryx: `@wharfkit/antelope` (npm) verifies
//! signatures Oryx makes over random digests and transactions, and Oryx decodes, digests and
//! re-encodes transactions that wharfkit builds.

use oryx_proto::antelope::transaction::{Action, Transaction};
use oryx_proto::antelope::{Checksum256, KeyType, Pack};
use oryx_signer::backend::KeyBackend;
use oryx_signer::backend::soft::SoftKey;
use oryx_signer::signing::{SignOptions, sign};
use oryx_tests::vectors::{load_all, s, section};
use oryx_tests::wharfkit;
use serde_json::{Value, json};

/// A deterministic digest stream, so a failure can be reproduced.
fn digest(i: u32) -> Checksum256 {
    Checksum256::hash(format!("oryx-wharfkit-{i}").as_bytes())
}

#[test]
fn wharfkit_verifies_oryx_signatures_over_random_digests() {
    let keys: Vec<SoftKey> = (0..4)
        .map(|i| {
            SoftKey::generate(if i % 2 == 0 { KeyType::K1 } else { KeyType::R1 }).expect("key")
        })
        .collect();
    let mut items = Vec::new();
    for i in 0..200u32 {
        let key = &keys[i as usize % keys.len()];
        let d = digest(i);
        let signed = sign(key, &d, SignOptions::default()).expect("signs");
        items.push(json!({
            "digest": d.to_string(),
            "signature": signed.signature.to_sig_string(),
            "public_key": key.public_key().to_pub_string(),
        }));
    }
    // A control the checker must refuse: a valid signature under the wrong key.
    items.push(json!({
        "digest": digest(0).to_string(),
        "signature": items[0]["signature"],
        "public_key": keys[2].public_key().to_pub_string(),
    }));
    let out = wharfkit::check(&json!({ "signatures": items }));
    let results = out["signatures"].as_array().expect("results");
    assert_eq!(results.len(), 201);
    for (i, r) in results[..200].iter().enumerate() {
        assert_eq!(r["ok"], true, "item {i}: {r}");
        assert_eq!(r["low_s"], true, "item {i}: {r}");
    }
    for r in results[..200].iter().step_by(2) {
        assert_eq!(r["eosio_canonical"], true, "K1: {r}");
    }
    assert_eq!(
        results[200]["ok"], false,
        "wrong key must fail: {}",
        results[200]
    );
}

#[test]
fn wharfkit_checks_oryx_signed_vector_transactions() {
    let key = SoftKey::generate(KeyType::K1).expect("key");
    let mut items = Vec::new();
    for (_, doc) in load_all() {
        for e in section(&doc, "transactions") {
            let trx = Transaction::decode(&hex::decode(s(e, "packed_trx_hex")).expect("hex"))
                .expect("decodes");
            let chain = Checksum256::from_hex(s(e, "chain_id_hex")).expect("chain");
            let cfd: Vec<oryx_proto::antelope::Bytes> =
                serde_json::from_value(e["context_free_data_hex"].clone()).expect("cfd");
            let d = trx.signing_digest(&chain, &cfd);
            let signed = sign(&key, &d, SignOptions::default()).expect("signs");
            items.push(json!({
                "chain_id": chain.to_string(),
                "packed_trx": hex::encode(trx.packed()),
                "context_free_data": cfd,
                "id": trx.id().to_string(),
                "sig_digest": d.to_string(),
                "signatures": [signed.signature.to_sig_string(), s(e, "signature")],
                "public_keys": [key.public_key().to_pub_string(), s(e, "public_key_pub_k1")],
            }));
        }
    }
    assert!(!items.is_empty());
    let out = wharfkit::check(&json!({ "transactions": items }));
    for r in out["transactions"].as_array().expect("results") {
        assert_eq!(r["ok"], true, "{r}");
    }
}

/// Compares Oryx's decoding of a system action with the fields wharfkit encoded from its ABI.
fn compare_fields(oryx: &Value, wharf: &Value, what: &str) {
    let wharf = wharf.as_object().expect("fields object");
    for (k, v) in wharf {
        assert_eq!(
            oryx.get(k),
            Some(v),
            "{what}: field {k}: oryx {oryx} vs wharfkit {}",
            Value::Object(wharf.clone())
        );
    }
}

#[test]
fn oryx_decodes_wharfkit_built_transactions() {
    let chain = "aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906";
    let out =
        wharfkit::check(&json!({ "build": { "chain_id": chain, "count": 150, "seed": 20261121 } }));
    let built = out["built"].as_array().expect("built");
    assert_eq!(built.len(), 150);
    let chain = Checksum256::from_hex(chain).expect("chain");
    let key = SoftKey::generate(KeyType::K1).expect("key");
    let mut signed_back = Vec::new();
    let mut system_actions = 0;
    for b in built {
        assert_eq!(b["ok"], true, "{b}");
        let bytes = hex::decode(s(b, "packed_trx")).expect("hex");
        let trx = Transaction::decode(&bytes)
            .unwrap_or_else(|e| panic!("oryx cannot decode {}: {e}", s(b, "packed_trx")));
        assert_eq!(trx.packed(), bytes, "re-encodes byte-identically");
        assert_eq!(trx.id().to_string(), s(b, "id"));
        assert_eq!(
            trx.signing_digest(&chain, &[]).to_string(),
            s(b, "sig_digest")
        );
        // wharfkit's JSON form decodes to the same transaction.
        let from_json: Transaction =
            serde_json::from_value(b["json"].clone()).expect("JSON form parses");
        assert_eq!(from_json, trx);
        for (a, wd) in trx
            .actions
            .iter()
            .zip(b["actions_decoded"].as_array().expect("decoded"))
        {
            check_action(a, wd, &mut system_actions);
        }
        let d = trx.signing_digest(&chain, &[]);
        signed_back.push(json!({
            "chain_id": chain.to_string(),
            "packed_trx": s(b, "packed_trx"),
            "context_free_data": [],
            "id": s(b, "id"),
            "sig_digest": d.to_string(),
            "signatures": [sign(&key, &d, SignOptions::default()).expect("signs").signature.to_sig_string()],
            "public_keys": [key.public_key().to_pub_string()],
        }));
    }
    assert!(
        system_actions > 100,
        "the generator should produce system actions ({system_actions})"
    );
    let out = wharfkit::check(&json!({ "transactions": signed_back }));
    for r in out["transactions"].as_array().expect("results") {
        assert_eq!(r["ok"], true, "{r}");
    }
}

fn check_action(a: &Action, wharf: &Value, system_actions: &mut usize) {
    let fields = &wharf["fields"];
    match a.system_action() {
        Some(decoded) => {
            let decoded = decoded.unwrap_or_else(|e| panic!("{}::{}: {e}", a.account, a.name));
            compare_fields(
                &decoded.to_json(),
                fields,
                &format!("{}::{}", a.account, a.name),
            );
            *system_actions += 1;
        }
        None => assert!(
            fields.is_null() || !fields.is_object() || a.account.to_string() != "eosio.token"
        ),
    }
}
