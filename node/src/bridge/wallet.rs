//! The keosd wallet API's wire shapes: what nodeos and cleos send, and what keosd answers.
//!
//! Guards: pure parsing and rendering, no I/O. Every body is untrusted: a malformed one is an
//! error in keosd's own shape, never a panic, and nothing is forwarded to the signer for it.
//!
//! - `POST /v1/wallet/sign_digest` `["<64 hex>", "<public key>"]` → 201 `"SIG_K1_…"` (nodeos's
//!   `KEOSD:` signature provider sends exactly this);
//! - `POST /v1/wallet/get_public_keys` → 201 `["EOS…", "PUB_R1_…"]` (K1 keys in the legacy form,
//!   as keosd prints them);
//! - `POST /v1/wallet/sign_transaction` `[transaction, ["<key>", …], "<chain id>"]` → 201 the
//!   transaction with its `signatures` filled in (cleos's shape);
//! - `POST /v1/wallet/list_wallets` → 201 `["oryx *"]` (one unlocked wallet: the signer).
//!
//! Refusals are HTTP 500 `{"code":500,"message":"Internal Service Error","error":{"code","name",
//! "what","details":[{"message","file","line_number","method"}]}}`, which nodeos turns back into
//! an exception and logs.

use oryx_proto::antelope::{Checksum256, PublicKey};
use serde_json::{Map, Value, json};

/// Largest request body read (a packed transaction is at most 512 KiB; JSON hex doubles it).
pub const MAX_BODY_BYTES: usize = 2 << 20;

/// The wallet name `list_wallets` shows (`*` = unlocked, as keosd marks it).
pub const WALLET_NAME: &str = "oryx *";

/// One parsed wallet call.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// nodeos's block signature (or any blind digest).
    SignDigest {
        /// The digest (a Savanna block id, a legacy sig_digest, ...).
        digest: Checksum256,
        /// The key to sign with.
        key: PublicKey,
    },
    /// The keys the signer holds for this chain.
    GetPublicKeys,
    /// The (one) wallet.
    ListWallets,
    /// cleos's transaction signing.
    SignTransaction {
        /// The transaction object as sent (signatures and context_free_data included).
        transaction: Map<String, Value>,
        /// The keys to sign with, in order.
        keys: Vec<PublicKey>,
        /// The chain the transaction is for.
        chain_id: Checksum256,
    },
}

/// A keosd-shaped error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletError {
    /// HTTP status (500 for refusals, 404 for an unknown endpoint).
    pub status: u16,
    /// fc/chain exception code.
    pub code: i64,
    /// Exception name.
    pub name: String,
    /// Exception summary.
    pub what: String,
    /// The detail line (the signer's message, the parse error, ...).
    pub detail: String,
    /// The endpoint that failed (keosd's `method` field).
    pub method: String,
}

/// fc's `parse_error_exception` (malformed JSON).
pub const PARSE_ERROR: i64 = 4;
/// fc's `invalid_arg_exception` (well-formed JSON with a wrong value).
pub const INVALID_ARG: i64 = 5;
/// chain `wallet_exception`: the base of wallet errors (used for Oryx refusals).
pub const WALLET_EXCEPTION: i64 = 3_120_000;
/// chain `wallet_missing_pub_key_exception`.
pub const MISSING_PUB_KEY: i64 = 3_120_004;
/// chain `wallet_not_available_exception` (the signer cannot be reached).
pub const NOT_AVAILABLE: i64 = 3_120_006;

/// The most of a client's input an error repeats back (a refusal must not echo 100 KB).
const MAX_ECHO: usize = 512;

/// `s` cut to [`MAX_ECHO`] bytes on a character boundary, saying so.
fn clamp(s: &str) -> String {
    if s.len() <= MAX_ECHO {
        return s.to_string();
    }
    let mut end = MAX_ECHO;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut from {} bytes)", &s[..end], s.len())
}

impl WalletError {
    fn new(code: i64, name: &str, what: &str, detail: String, method: &str) -> Self {
        WalletError {
            status: 500,
            code,
            name: name.into(),
            what: what.into(),
            detail: clamp(&detail),
            method: clamp(method),
        }
    }

    /// A body that does not parse or has the wrong shape.
    pub fn bad_request(detail: String, method: &str) -> Self {
        Self::new(
            PARSE_ERROR,
            "parse_error_exception",
            "Parse Error",
            detail,
            method,
        )
    }

    /// A well-formed value that is wrong (bad key, wrong chain).
    pub fn invalid(detail: String, method: &str) -> Self {
        Self::new(
            INVALID_ARG,
            "invalid_arg_exception",
            "Invalid Argument",
            detail,
            method,
        )
    }

    /// An endpoint keosd has and this bridge refuses on purpose.
    pub fn unsupported(method: &str) -> Self {
        Self::new(
            WALLET_EXCEPTION,
            "wallet_exception",
            "Invalid wallet operation",
            format!(
                "{method} is not available: Oryx keys live in the signer's HSM, never in a wallet here; \
                 manage them with `oryx-signer keys`"
            ),
            method,
        )
    }

    /// No such endpoint.
    pub fn not_found(path: &str) -> Self {
        WalletError {
            status: 404,
            code: 0,
            name: "exception".into(),
            what: "unspecified".into(),
            detail: format!("Unknown Endpoint {}", clamp(path)),
            method: String::new(),
        }
    }

    /// The signer could not be reached.
    pub fn unavailable(detail: String, method: &str) -> Self {
        Self::new(
            NOT_AVAILABLE,
            "wallet_not_available_exception",
            "No available wallet",
            detail,
            method,
        )
    }

    /// The signer answered without a signature (a signer bug or a version mismatch): nodeos
    /// must get an error, never an empty signature.
    pub fn no_signature(what: &str, method: &str) -> Self {
        Self::new(
            WALLET_EXCEPTION,
            "wallet_exception",
            "Invalid wallet operation",
            format!(
                "{what}: the signer's answer carries no signature; check that oryx-node and \
                 oryx-signer are the same version and look at the signer's log"
            ),
            method,
        )
    }

    /// A refusal from the signer, named by its `oryx-reason`.
    pub fn refused(reason: Option<&str>, message: &str, method: &str) -> Self {
        let reason = reason.unwrap_or("UNSPECIFIED");
        let detail = format!("{reason}: {message}");
        match reason {
            "UNKNOWN_KEY" => Self::new(
                MISSING_PUB_KEY,
                "wallet_missing_pub_key_exception",
                "Missing public key",
                detail,
                method,
            ),
            "UNAVAILABLE" => Self::unavailable(detail, method),
            _ => WalletError {
                status: 500,
                code: WALLET_EXCEPTION,
                name: format!("oryx_{}", reason.to_ascii_lowercase()),
                what: format!("Oryx signer refused to sign ({reason})"),
                detail,
                method: method.into(),
            },
        }
    }

    /// The response body.
    pub fn body(&self) -> String {
        let message = if self.status == 404 {
            "Not Found"
        } else {
            "Internal Service Error"
        };
        json!({
            "code": self.status,
            "message": message,
            "error": {
                "code": self.code,
                "name": self.name,
                "what": self.what,
                "details": [{
                    "message": self.detail,
                    "file": "oryx-node",
                    "line_number": 0,
                    "method": self.method,
                }],
            },
        })
        .to_string()
    }
}

const PREFIX: &str = "/v1/wallet/";

/// Endpoints keosd has that manage local keys or wallet files: refused with an explanation.
const KEY_MANAGEMENT: [&str; 10] = [
    "create",
    "open",
    "lock",
    "lock_all",
    "unlock",
    "import_key",
    "remove_key",
    "create_key",
    "list_keys",
    "set_timeout",
];

/// Parses one request by its path and body.
pub fn parse(path: &str, body: &[u8]) -> Result<Call, WalletError> {
    let Some(method) = path.strip_prefix(PREFIX) else {
        return Err(WalletError::not_found(path));
    };
    match method {
        "sign_digest" => sign_digest(body),
        "get_public_keys" => {
            empty_or_null(body, method)?;
            Ok(Call::GetPublicKeys)
        }
        "list_wallets" => {
            empty_or_null(body, method)?;
            Ok(Call::ListWallets)
        }
        "sign_transaction" => sign_transaction(body),
        m if KEY_MANAGEMENT.contains(&m) => Err(WalletError::unsupported(m)),
        _ => Err(WalletError::not_found(path)),
    }
}

fn json_body(body: &[u8], method: &str) -> Result<Value, WalletError> {
    serde_json::from_slice(body)
        .map_err(|e| WalletError::bad_request(format!("request body is not JSON: {e}"), method))
}

fn empty_or_null(body: &[u8], method: &str) -> Result<(), WalletError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match json_body(body, method)? {
        Value::Null => Ok(()),
        Value::Array(a) if a.is_empty() => Ok(()),
        Value::Object(o) if o.is_empty() => Ok(()),
        other => Err(WalletError::bad_request(
            format!("{method} takes no parameters, got {other}"),
            method,
        )),
    }
}

fn string<'a>(v: &'a Value, what: &str, method: &str) -> Result<&'a str, WalletError> {
    v.as_str()
        .ok_or_else(|| WalletError::bad_request(format!("{what} must be a string"), method))
}

fn key(v: &Value, method: &str) -> Result<PublicKey, WalletError> {
    let s = string(v, "the public key", method)?;
    PublicKey::parse(s)
        .map_err(|e| WalletError::invalid(format!("public key {}: {e}", shown(s)), method))
}

/// A client's string as an error may quote it: at most 120 characters, escaped.
fn shown(s: &str) -> String {
    const MAX: usize = 120;
    let count = s.chars().count();
    if count <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}… ({count} characters)")
    }
}

fn checksum(v: &Value, what: &str, method: &str) -> Result<Checksum256, WalletError> {
    let s = string(v, what, method)?;
    if s.len() != 64 {
        return Err(WalletError::invalid(
            format!("{what} must be 64 hex characters, got {}", s.len()),
            method,
        ));
    }
    Checksum256::from_hex(s).map_err(|e| WalletError::invalid(format!("{what}: {e}"), method))
}

fn sign_digest(body: &[u8]) -> Result<Call, WalletError> {
    const M: &str = "sign_digest";
    let v = json_body(body, M)?;
    let Some([d, k]) = v
        .as_array()
        .map(Vec::as_slice)
        .and_then(|a| <&[Value; 2]>::try_from(a).ok())
    else {
        return Err(WalletError::bad_request(
            "sign_digest takes [\"<64 hex digest>\", \"<public key>\"]".into(),
            M,
        ));
    };
    Ok(Call::SignDigest {
        digest: checksum(d, "the digest", M)?,
        key: key(k, M)?,
    })
}

fn sign_transaction(body: &[u8]) -> Result<Call, WalletError> {
    const M: &str = "sign_transaction";
    let v = json_body(body, M)?;
    let Some([t, ks, c]) = v
        .as_array()
        .map(Vec::as_slice)
        .and_then(|a| <&[Value; 3]>::try_from(a).ok())
    else {
        return Err(WalletError::bad_request(
            "sign_transaction takes [transaction, [\"<public key>\", ...], \"<chain id>\"]".into(),
            M,
        ));
    };
    let Some(transaction) = t.as_object() else {
        return Err(WalletError::bad_request(
            "the transaction must be a JSON object".into(),
            M,
        ));
    };
    let Some(list) = ks.as_array() else {
        return Err(WalletError::bad_request(
            "the keys must be a JSON array".into(),
            M,
        ));
    };
    if list.is_empty() {
        return Err(WalletError::invalid(
            "no public keys given to sign with".into(),
            M,
        ));
    }
    let keys = list
        .iter()
        .map(|k| key(k, M))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Call::SignTransaction {
        transaction: transaction.clone(),
        keys,
        chain_id: checksum(c, "the chain id", M)?,
    })
}

/// cleos's signed-transaction object, taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitTransaction {
    /// The transaction proper, as JSON text the signer decodes.
    pub json: String,
    /// Its context-free data.
    pub context_free_data: Vec<Vec<u8>>,
    /// The signatures it already carries.
    pub signatures: Vec<Value>,
}

/// Splits cleos's signed-transaction object (see [`SplitTransaction`]).
pub fn split_transaction(trx: &Map<String, Value>) -> Result<SplitTransaction, WalletError> {
    const M: &str = "sign_transaction";
    let mut t = trx.clone();
    let signatures = match t.remove("signatures") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(WalletError::bad_request(
                "`signatures` must be an array".into(),
                M,
            ));
        }
    };
    let cfd = match t.remove("context_free_data") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .map(|d| {
                let s = string(d, "context_free_data entries", M)?;
                hex::decode(s)
                    .map_err(|e| WalletError::invalid(format!("context_free_data: {e}"), M))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(WalletError::bad_request(
                "`context_free_data` must be an array of hex strings".into(),
                M,
            ));
        }
    };
    Ok(SplitTransaction {
        json: Value::Object(t).to_string(),
        context_free_data: cfd,
        signatures,
    })
}

/// keosd's answer to `sign_transaction`: the transaction as sent, with the new signatures
/// appended to any it already carried.
pub fn signed_transaction(
    trx: &Map<String, Value>,
    mut existing: Vec<Value>,
    new: Vec<String>,
) -> Value {
    let mut out = trx.clone();
    existing.extend(new.into_iter().map(Value::String));
    out.insert("signatures".into(), Value::Array(existing));
    out.entry("context_free_data")
        .or_insert_with(|| Value::Array(vec![]));
    Value::Object(out)
}

/// A successful answer's body: a JSON string.
pub fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const K1: &str = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV";
    const D: &str = "0000000a22222222222222222222222222222222222222222222222222222222";

    #[test]
    fn nodeos_sign_digest_body_parses() {
        let body = format!("[\"{D}\",\"{K1}\"]");
        let Call::SignDigest { digest, key } =
            parse("/v1/wallet/sign_digest", body.as_bytes()).unwrap()
        else {
            panic!("wrong call")
        };
        assert_eq!(digest.to_string(), D);
        assert_eq!(key.to_legacy_string().unwrap(), K1);
    }

    /// A 100 KB bad key or path is not echoed back whole (nor its control characters raw).
    #[test]
    fn errors_do_not_echo_huge_input() {
        let huge = format!("EOS{}\n", "x".repeat(100_000));
        let body = serde_json::json!([D, huge]).to_string();
        let e = parse("/v1/wallet/sign_digest", body.as_bytes()).unwrap_err();
        let text = e.body();
        assert!(text.len() < 2 * 1024, "{} bytes", text.len());
        assert!(text.contains("characters"), "{text}");
        let path = format!("/v1/wallet/{}", "y".repeat(100_000));
        let e = parse(&path, b"[]").unwrap_err();
        assert!(e.body().len() < 2 * 1024);
        let e = parse(&format!("/v2/{}", "z".repeat(100_000)), b"[]").unwrap_err();
        assert!(e.body().len() < 2 * 1024);
    }

    #[test]
    fn malformed_bodies_get_keosd_errors() {
        let cases: [(&str, &str, i64); 9] = [
            ("sign_digest", "not json", PARSE_ERROR),
            ("sign_digest", "{}", PARSE_ERROR),
            ("sign_digest", &format!("[\"{D}\"]"), PARSE_ERROR),
            ("sign_digest", &format!("[\"{D}\",\"{K1}\",1]"), PARSE_ERROR),
            (
                "sign_digest",
                &format!("[\"{}\",\"{K1}\"]", &D[2..]),
                INVALID_ARG,
            ),
            (
                "sign_digest",
                &format!("[\"{}zz\",\"{K1}\"]", &D[2..]),
                INVALID_ARG,
            ),
            (
                "sign_digest",
                &format!("[\"{D}\",\"EOS1111\"]"),
                INVALID_ARG,
            ),
            (
                "sign_transaction",
                &format!("[{{}},[],\"{D}\"]"),
                INVALID_ARG,
            ),
            ("get_public_keys", "[1]", PARSE_ERROR),
        ];
        for (m, body, code) in cases {
            let e = parse(&format!("/v1/wallet/{m}"), body.as_bytes()).unwrap_err();
            assert_eq!((e.status, e.code), (500, code), "{m} {body}: {e:?}");
            let v: Value = serde_json::from_str(&e.body()).unwrap();
            assert_eq!(v["code"], 500);
            assert_eq!(v["error"]["code"], code);
            assert!(v["error"]["details"][0]["message"].is_string());
        }
        assert_eq!(parse("/v1/chain/get_info", b"").unwrap_err().status, 404);
        assert_eq!(
            parse("/v1/wallet/unlock", b"[]").unwrap_err().code,
            WALLET_EXCEPTION
        );
    }

    #[test]
    fn refusals_name_the_reason() {
        let e = WalletError::refused(
            Some("DOUBLE_SIGN"),
            "height 10 already signed",
            "sign_digest",
        );
        let v: Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["error"]["name"], "oryx_double_sign");
        assert_eq!(
            v["error"]["details"][0]["message"],
            "DOUBLE_SIGN: height 10 already signed"
        );
        assert_eq!(
            WalletError::refused(Some("UNKNOWN_KEY"), "x", "sign_digest").code,
            MISSING_PUB_KEY
        );
    }

    #[test]
    fn cleos_transaction_round_trip() {
        let trx = json!({
            "expiration": "2026-11-21T12:00:00",
            "ref_block_num": 1,
            "ref_block_prefix": 2,
            "max_net_usage_words": 0,
            "max_cpu_usage_ms": 0,
            "delay_sec": 0,
            "context_free_actions": [],
            "actions": [],
            "transaction_extensions": [],
            "signatures": ["SIG_K1_x"],
            "context_free_data": ["00ff"],
        });
        let body = json!([trx, [K1], D]).to_string();
        let Call::SignTransaction {
            transaction,
            keys,
            chain_id,
        } = parse("/v1/wallet/sign_transaction", body.as_bytes()).unwrap()
        else {
            panic!("wrong call")
        };
        assert_eq!((keys.len(), chain_id.to_string()), (1, D.to_string()));
        let split = split_transaction(&transaction).unwrap();
        assert!(!split.json.contains("signatures") && !split.json.contains("context_free_data"));
        assert_eq!(split.context_free_data, vec![vec![0, 0xff]]);
        let out = signed_transaction(&transaction, split.signatures, vec!["SIG_K1_y".into()]);
        assert_eq!(out["signatures"], json!(["SIG_K1_x", "SIG_K1_y"]));
        assert_eq!(out["context_free_data"], json!(["00ff"]));
    }

    proptest::proptest! {
        /// Whatever arrives on the socket, parsing answers with a call or a keosd error; it
        /// never panics (nodeos, cleos, or anything else that reaches the socket).
        #[test]
        fn parsing_never_panics(
            method in proptest::sample::select(vec![
                "sign_digest", "sign_transaction", "get_public_keys", "list_wallets", "unlock", "x",
            ]),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            text in "\\PC{0,200}",
        ) {
            let path = format!("/v1/wallet/{method}");
            for b in [&body[..], text.as_bytes()] {
                if let Err(e) = parse(&path, b) {
                    proptest::prop_assert!(e.status == 500 || e.status == 404);
                    let v: Value = serde_json::from_str(&e.body()).unwrap();
                    proptest::prop_assert!(v["error"]["details"][0]["message"].is_string());
                }
            }
        }

        /// Structurally plausible bodies with random field values: never a panic either.
        #[test]
        fn plausible_bodies_never_panic(
            a in "\\PC{0,80}",
            b in "\\PC{0,80}",
            n in proptest::prelude::any::<i64>(),
        ) {
            for body in [
                json!([a, b]),
                json!([n, b]),
                json!([{"actions": [{"data": a}]}, [b], a]),
                json!([{"signatures": n, "context_free_data": [a]}, [K1], D]),
                json!([{"context_free_data": [a, n]}, [K1], D]),
            ] {
                let text = body.to_string();
                let _ = parse("/v1/wallet/sign_digest", text.as_bytes());
                if let Ok(Call::SignTransaction { transaction, .. }) =
                    parse("/v1/wallet/sign_transaction", text.as_bytes())
                {
                    let _ = split_transaction(&transaction);
                }
            }
        }
    }
}
