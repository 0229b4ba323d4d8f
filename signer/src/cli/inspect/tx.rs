//! `oryx inspect tx --chain-id ID INPUT`: the id, the signing digest and every action decoded.
//!
//! INPUT is hex (`pack(transaction)` or a whole `packed_transaction`), a JSON file (a
//! transaction, a signed transaction with `signatures`/`context_free_data`, or a packed
//! transaction with `packed_trx`), or `-` for stdin. Signatures that come with it are recovered
//! to their keys against the computed digest.

use std::path::Path;

use clap::Args;
use oryx_proto::antelope::chain::{chain_name, parse_chain_id};
use oryx_proto::antelope::transaction::{Action, PackedTransaction, Transaction};
use oryx_proto::antelope::{Bytes, Checksum256, Signature, SystemAction, Unpack};
use serde_json::{Value, json};

use crate::cli::{CliError, read_input_or_stdin};

/// Arguments.
#[derive(Debug, Args)]
pub struct InspectTx {
    /// Chain id in hex, or a known chain: eos, jungle4, kylin, wax, telos.
    #[arg(long)]
    pub chain_id: String,
    /// Hex, a path to a JSON or hex file, or `-` for stdin.
    pub input: String,
}

/// A transaction with what travelled with it.
#[derive(Debug)]
pub struct Loaded {
    /// The transaction.
    pub trx: Transaction,
    /// Context-free data.
    pub context_free_data: Vec<Bytes>,
    /// Signatures that came with it.
    pub signatures: Vec<Signature>,
}

/// Reads INPUT as described in the module docs.
pub fn load(input: &str) -> Result<Loaded, CliError> {
    parse(&input_text(input)?)
}

/// INPUT's text: stdin for `-`, the file it names, or INPUT itself.
pub fn input_text(input: &str) -> Result<String, CliError> {
    if input == "-" || Path::new(input).is_file() {
        read_input_or_stdin(input)
    } else {
        Ok(input.to_string())
    }
}

/// Parses INPUT's text: hex or JSON, as described in the module docs.
pub fn parse(text: &str) -> Result<Loaded, CliError> {
    let text = text.trim();
    if text.starts_with('{') {
        return from_json(text);
    }
    let bytes = hex::decode(text).map_err(|_| {
        CliError::Other("input is neither hex, a JSON object, nor a readable file".into())
    })?;
    if let Ok(trx) = Transaction::decode(&bytes) {
        return Ok(Loaded {
            trx,
            context_free_data: Vec::new(),
            signatures: Vec::new(),
        });
    }
    let packed = PackedTransaction::unpack_exact(&bytes).map_err(|e| {
        CliError::Other(format!(
            "hex is neither a transaction nor a packed_transaction: {e}"
        ))
    })?;
    from_packed(&packed)
}

fn from_packed(packed: &PackedTransaction) -> Result<Loaded, CliError> {
    Ok(Loaded {
        trx: packed.transaction()?,
        context_free_data: packed.context_free_data()?,
        signatures: packed.signatures.clone(),
    })
}

fn from_json(text: &str) -> Result<Loaded, CliError> {
    let json_err = |e: serde_json::Error| CliError::Input(oryx_proto::Error::Json(e.to_string()));
    let mut v: Value = serde_json::from_str(text).map_err(json_err)?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| CliError::Other("JSON input must be an object".into()))?;
    if obj.contains_key("packed_trx") {
        // A signed transaction file of `oryx ceremony` carries both forms: the packed one is
        // authoritative, and the expanded one must say the same.
        let packed_fields = [
            "signatures",
            "compression",
            "packed_context_free_data",
            "packed_trx",
        ];
        let packed: serde_json::Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| packed_fields.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let expanded = obj.contains_key("actions");
        if let Some(k) = obj
            .keys()
            .find(|k| !expanded && !packed_fields.contains(&k.as_str()))
        {
            return Err(CliError::Other(format!(
                "unknown field `{k}` in a packed transaction"
            )));
        }
        let packed: PackedTransaction =
            serde_json::from_value(Value::Object(packed)).map_err(json_err)?;
        let loaded = from_packed(&packed)?;
        if expanded {
            for k in ["compression", "packed_context_free_data", "packed_trx"] {
                obj.remove(k);
            }
            let plain = from_json(&v.to_string())?;
            if plain.trx != loaded.trx
                || plain.context_free_data != loaded.context_free_data
                || plain.signatures != loaded.signatures
            {
                return Err(CliError::Other(
                    "the expanded transaction and packed_trx in this file differ: refusing it"
                        .into(),
                ));
            }
        }
        return Ok(loaded);
    }
    let signatures: Vec<Signature> = match obj.remove("signatures") {
        Some(s) => serde_json::from_value(s).map_err(json_err)?,
        None => Vec::new(),
    };
    let context_free_data: Vec<Bytes> = match obj.remove("context_free_data") {
        Some(c) => serde_json::from_value(c).map_err(json_err)?,
        None => Vec::new(),
    };
    let trx: Transaction = serde_json::from_value(v).map_err(json_err)?;
    Ok(Loaded {
        trx,
        context_free_data,
        signatures,
    })
}

/// A signed transaction in the form nodeos's `push_transaction` (and `cleos push transaction`)
/// takes, which `oryx inspect tx` reads too: the transaction's fields with `signatures`,
/// `context_free_data`, `compression`, `packed_context_free_data` and `packed_trx`.
pub fn push_form(
    trx: &Transaction,
    context_free_data: &[Bytes],
    signatures: &[Signature],
) -> Result<Value, CliError> {
    use oryx_proto::antelope::Pack as _;
    let mut v = serde_json::to_value(trx).map_err(|e| CliError::Other(e.to_string()))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| CliError::Other("a transaction is not a JSON object".into()))?;
    obj.insert("signatures".into(), json!(signatures));
    obj.insert(
        "context_free_data".into(),
        json!(
            context_free_data
                .iter()
                .map(|d| hex::encode(&d.0))
                .collect::<Vec<_>>()
        ),
    );
    obj.insert("compression".into(), json!("none"));
    obj.insert(
        "packed_context_free_data".into(),
        json!(if context_free_data.is_empty() {
            String::new()
        } else {
            hex::encode(context_free_data.to_vec().packed())
        }),
    );
    obj.insert("packed_trx".into(), json!(hex::encode(trx.packed())));
    Ok(v)
}

/// An eosio.msig proposed transaction as reviewers see it: its id (the `proposal_hash` an
/// approve pins), expiration, delay and every action decoded.
pub fn proposed_json(t: &Transaction) -> Value {
    json!({
        "id": t.id().to_string(),
        "expiration": t.expiration,
        "delay_sec": t.delay_sec.0,
        "context_free_actions": t.context_free_actions.iter().map(action_json).collect::<Vec<_>>(),
        "actions": t.actions.iter().map(action_json).collect::<Vec<_>>(),
    })
}

/// One action for display: raw fields, and named fields for system actions.
pub fn action_json(a: &Action) -> Value {
    let mut out = json!({
        "account": a.account,
        "name": a.name,
        "authorization": a.authorization.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "data_len": a.data.0.len(),
        "data_sha256": Checksum256::hash(&a.data.0).to_string(),
        "data_hex": hex::encode(&a.data.0),
    });
    match a.system_action() {
        Some(Ok(SystemAction::Propose(p))) => {
            out["data"] = SystemAction::Propose(p.clone()).to_json();
            // Approvers review the proposed transaction itself, not just its bytes.
            out["proposed_transaction"] = match p.transaction() {
                Ok(t) => proposed_json(&t),
                Err(e) => json!({ "error": e.to_string() }),
            };
        }
        Some(Ok(decoded)) => out["data"] = decoded.to_json(),
        Some(Err(e)) => {
            out["data_error"] = json!(format!("malformed {}::{} data: {e}", a.account, a.name))
        }
        None => {}
    }
    out
}

/// The full description of a transaction on a chain.
pub fn describe(loaded: &Loaded, chain_id: &Checksum256) -> Value {
    let trx = &loaded.trx;
    let digest = trx.signing_digest(chain_id, &loaded.context_free_data);
    let signatures: Vec<Value> = loaded
        .signatures
        .iter()
        .map(|s| match s.recover_lenient(&digest) {
            Ok(k) => json!({"signature": s, "public_key": k.to_pub_string(), "legacy": k.to_legacy_string(), "canonical": s.is_canonical()}),
            Err(e) => json!({"signature": s, "error": e.to_string()}),
        })
        .collect();
    json!({
        "id": trx.id().to_string(),
        "sig_digest": digest.to_string(),
        "chain_id": chain_id.to_string(),
        "chain": chain_name(chain_id),
        "expiration": trx.expiration,
        "ref_block_num": trx.ref_block_num,
        "ref_block_prefix": trx.ref_block_prefix,
        "max_net_usage_words": trx.max_net_usage_words.0,
        "max_cpu_usage_ms": trx.max_cpu_usage_ms,
        "delay_sec": trx.delay_sec.0,
        "context_free_actions": trx.context_free_actions.iter().map(action_json).collect::<Vec<_>>(),
        "actions": trx.actions.iter().map(action_json).collect::<Vec<_>>(),
        "transaction_extensions": trx.transaction_extensions,
        "context_free_data": loaded.context_free_data,
        "signatures": signatures,
        "packed_trx": hex::encode(oryx_proto::antelope::Pack::packed(trx)),
    })
}

impl InspectTx {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let chain_id = parse_chain_id(&self.chain_id)?;
        Ok(describe(&load(&self.input)?, &chain_id))
    }
}
