//! Chain state carried across the air gap: the JSON answers of `/v1/chain/get_producers`,
//! `/v1/chain/get_table_rows` (`eosio` `eosio` `producers`), `/v1/chain/get_producer_schedule`
//! and `/v1/chain/get_account` that an operator fetched on an online host, parsed for what a
//! ceremony needs.
//!
//! Guards: a ceremony acts on these answers (retires a key once the chain shows its successor;
//! builds an `updateauth` from an account's permissions), so they are read strictly: a missing
//! or mistyped field, binary rows, a producer that is absent or inactive, or a permission tree
//! that does not hang together is refused with a message that says what to fetch instead.
//! Pure: the caller reads the file.

use serde_json::Value;

use super::actions::{Authority, BlockSigningAuthority};
use super::keys::PublicKey;
use super::name::Name;
use super::tapos::{bad, parse_object, str_field};
use crate::{Error, Result};

/// Which answer a producer row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerSource {
    /// `/v1/chain/get_producers` (has `total_producer_vote_weight`).
    GetProducers,
    /// `/v1/chain/get_table_rows` with code `eosio`, scope `eosio`, table `producers`.
    GetTableRows,
}

impl ProducerSource {
    /// The answer's name, for messages and transcripts.
    pub fn label(self) -> &'static str {
        match self {
            ProducerSource::GetProducers => "get_producers",
            ProducerSource::GetTableRows => "get_table_rows",
        }
    }
}

/// One producer as the system contract stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRow {
    /// The producer account.
    pub owner: Name,
    /// Whether the producer is registered and active (`is_active` 1).
    pub is_active: bool,
    /// The legacy single key (`producer_key`).
    pub producer_key: PublicKey,
    /// The block-signing authority, when the contract stores one (`producer_authority`).
    pub producer_authority: Option<BlockSigningAuthority>,
}

impl ProducerRow {
    /// Every key the chain would accept blocks from for this producer: `producer_key` and the
    /// keys of `producer_authority`.
    pub fn keys(&self) -> Vec<PublicKey> {
        let mut keys = vec![self.producer_key];
        if let Some(BlockSigningAuthority::V0(a)) = &self.producer_authority {
            for k in &a.keys {
                if !keys.contains(&k.key) {
                    keys.push(k.key);
                }
            }
        }
        keys
    }

    /// Whether `key` signs this producer's blocks: `producer_key`, or a key of
    /// `producer_authority` whose weight alone reaches the threshold.
    pub fn signs_with(&self, key: &PublicKey) -> bool {
        if self.producer_key == *key {
            return true;
        }
        match &self.producer_authority {
            Some(BlockSigningAuthority::V0(a)) => a
                .keys
                .iter()
                .any(|k| k.key == *key && u32::from(k.weight) >= a.threshold),
            None => false,
        }
    }
}

fn producer_row(row: &Value, i: usize) -> Result<ProducerRow> {
    const WHAT: &str = "producer row";
    if row.is_string() {
        return Err(bad(
            WHAT,
            format!(
                "rows[{i}] is binary (hex): fetch the table with \"json\": true so the rows are \
                 objects"
            ),
        ));
    }
    let owner = Name::new(str_field(row, WHAT, "owner")?)?;
    let is_active = match row.get("is_active") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => true,
        Some(Value::Number(n)) if n.as_u64() == Some(0) => false,
        Some(Value::Bool(b)) => *b,
        _ => {
            return Err(bad(
                WHAT,
                format!("rows[{i}] ({owner}): field `is_active` is missing or not 0/1"),
            ));
        }
    };
    let producer_key = PublicKey::parse(str_field(row, WHAT, "producer_key")?)?;
    let producer_authority = match row.get("producer_authority") {
        None | Some(Value::Null) => None,
        // Older contracts print an absent binary extension as an empty string.
        Some(Value::String(s)) if s.is_empty() => None,
        Some(v) => Some(
            serde_json::from_value::<BlockSigningAuthority>(v.clone()).map_err(|e| {
                bad(
                    WHAT,
                    format!("rows[{i}] ({owner}): producer_authority does not decode: {e}"),
                )
            })?,
        ),
    };
    Ok(ProducerRow {
        owner,
        is_active,
        producer_key,
        producer_authority,
    })
}

/// Finds `producer` in a carried `get_producers` or `get_table_rows eosio eosio producers`
/// answer. Refuses an answer that is neither, binary rows, and a producer that is not listed
/// (saying how to fetch its row).
pub fn find_producer(text: &str, producer: Name) -> Result<(ProducerSource, ProducerRow)> {
    const WHAT: &str = "producers answer";
    let v = parse_object(text, WHAT)?;
    let source = if v.get("total_producer_vote_weight").is_some() {
        ProducerSource::GetProducers
    } else if v.get("more").is_some() {
        ProducerSource::GetTableRows
    } else {
        return Err(bad(
            WHAT,
            "neither a /v1/chain/get_producers answer (no `total_producer_vote_weight`) nor a \
             /v1/chain/get_table_rows answer (no `more`)",
        ));
    };
    let rows = v
        .get("rows")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(WHAT, "field `rows` is missing or not an array"))?;
    for (i, row) in rows.iter().enumerate() {
        let r = producer_row(row, i)?;
        if r.owner == producer {
            return Ok((source, r));
        }
    }
    Err(bad(
        WHAT,
        format!(
            "{producer} is not among the {} rows: fetch its row, e.g. get_table_rows \
             {{\"code\":\"eosio\",\"scope\":\"eosio\",\"table\":\"producers\",\"json\":true,\
             \"lower_bound\":\"{producer}\",\"limit\":1}}",
            rows.len()
        ),
    ))
}

/// A producer in the *active* schedule of a carried `get_producer_schedule` answer: the keys
/// the chain takes its blocks from now (a registration changes the schedule only later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// The active schedule's version.
    pub version: u32,
    /// The keys that can sign alone (weight at or above the threshold).
    pub keys: Vec<PublicKey>,
}

/// Whether `text` looks like a `get_producer_schedule` answer (it has `active`).
pub fn is_schedule(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| v.get("active").is_some())
}

/// Finds `producer` in the active schedule of a carried `get_producer_schedule` answer, in the
/// block-signing-authority form (`authority`) or the older `block_signing_key` form.
pub fn find_scheduled(text: &str, producer: Name) -> Result<Scheduled> {
    const WHAT: &str = "get_producer_schedule answer";
    let v = parse_object(text, WHAT)?;
    let active = v
        .get("active")
        .filter(|a| a.is_object())
        .ok_or_else(|| bad(WHAT, "field `active` is missing or not an object"))?;
    let version = active
        .get("version")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad(WHAT, "active.version is missing or not a number"))?;
    let producers = active
        .get("producers")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(WHAT, "active.producers is missing or not an array"))?;
    for (i, p) in producers.iter().enumerate() {
        let name = Name::new(str_field(p, WHAT, "producer_name")?)?;
        if name != producer {
            continue;
        }
        let keys = match (p.get("authority"), p.get("block_signing_key")) {
            (Some(a), _) => {
                let BlockSigningAuthority::V0(a) =
                    serde_json::from_value::<BlockSigningAuthority>(a.clone())
                        .map_err(|e| bad(WHAT, format!("active.producers[{i}].authority: {e}")))?;
                a.keys
                    .iter()
                    .filter(|k| u32::from(k.weight) >= a.threshold)
                    .map(|k| k.key)
                    .collect()
            }
            (None, Some(Value::String(k))) => vec![PublicKey::parse(k)?],
            _ => {
                return Err(bad(
                    WHAT,
                    format!(
                        "active.producers[{i}] has neither `authority` nor `block_signing_key`"
                    ),
                ));
            }
        };
        return Ok(Scheduled { version, keys });
    }
    Err(bad(
        WHAT,
        format!(
            "{producer} is not in the active schedule (version {version}, {} producers): it \
             produces no blocks now",
            producers.len()
        ),
    ))
}

/// One permission of an account, from `get_account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPermission {
    /// Its name.
    pub name: Name,
    /// Its parent (empty for `owner`).
    pub parent: Name,
    /// Its authority.
    pub auth: Authority,
}

/// The permissions of an account, from a carried `get_account` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPermissions {
    /// The account.
    pub account: Name,
    /// Its permissions, in the answer's order.
    pub permissions: Vec<AccountPermission>,
}

impl AccountPermissions {
    /// Parses `/v1/chain/get_account`. Refuses an answer without `account_name` or
    /// `permissions`, a permission whose `required_auth` does not decode, a permission named
    /// twice, and one whose parent is not listed.
    pub fn from_get_account(text: &str) -> Result<Self> {
        const WHAT: &str = "get_account";
        let v = parse_object(text, WHAT)?;
        let account = Name::new(str_field(&v, WHAT, "account_name")?)?;
        let list = v
            .get("permissions")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(WHAT, "field `permissions` is missing or not an array"))?;
        let mut permissions: Vec<AccountPermission> = Vec::with_capacity(list.len());
        for (i, p) in list.iter().enumerate() {
            let name = Name::new(str_field(p, WHAT, "perm_name")?)?;
            let parent_text = str_field(p, WHAT, "parent")?;
            let parent = if parent_text.is_empty() {
                Name(0)
            } else {
                Name::new(parent_text)?
            };
            let required = p.get("required_auth").ok_or_else(|| {
                bad(
                    WHAT,
                    format!("permissions[{i}] ({name}): field `required_auth` is missing"),
                )
            })?;
            let auth = authority_from_json(required).map_err(|e| {
                bad(
                    WHAT,
                    format!("permissions[{i}] ({name}): required_auth does not decode: {e}"),
                )
            })?;
            if permissions.iter().any(|q| q.name == name) {
                return Err(bad(
                    WHAT,
                    format!("permissions[{i}] ({name}) is listed twice: fetch the answer again"),
                ));
            }
            permissions.push(AccountPermission { name, parent, auth });
        }
        for p in &permissions {
            if p.parent != Name(0) && !permissions.iter().any(|q| q.name == p.parent) {
                return Err(bad(
                    WHAT,
                    format!(
                        "permission {}'s parent {} is not listed: fetch the whole answer",
                        p.name, p.parent
                    ),
                ));
            }
        }
        Ok(AccountPermissions {
            account,
            permissions,
        })
    }

    /// The permission named `name`.
    pub fn get(&self, name: Name) -> Option<&AccountPermission> {
        self.permissions.iter().find(|p| p.name == name)
    }
}

/// An authority as nodeos prints it (keys as `EOS…` or `PUB_…`; `accounts` and `waits` may be
/// absent in hand-written files).
pub fn authority_from_json(v: &Value) -> Result<Authority> {
    let mut v = v.clone();
    if let Some(obj) = v.as_object_mut() {
        for key in ["keys", "accounts", "waits"] {
            obj.entry(key).or_insert_with(|| Value::Array(vec![]));
        }
    }
    serde_json::from_value(v).map_err(|e| Error::Json(format!("authority: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEV_KEY: &str = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV";
    const ALICE_KEY: &str = "PUB_K1_8d5yGFrYpdXW1SUmaavRZKm5X7Bp9jK634JABCYPciwTnKmsGx";

    fn key(s: &str) -> PublicKey {
        PublicKey::parse(s).expect("valid key")
    }

    fn n(s: &str) -> Name {
        Name::new(s).expect("valid name")
    }

    fn row(owner: &str, key: &str, authority: Option<Value>) -> Value {
        let mut r = json!({
            "owner": owner, "total_votes": "0.00000000000000000", "producer_key": key,
            "is_active": 1, "url": "https://example.invalid", "unpaid_blocks": 0,
            "last_claim_time": "1970-01-01T00:00:00.000", "location": 0
        });
        if let Some(a) = authority {
            r["producer_authority"] = a;
        }
        r
    }

    #[test]
    fn get_producers_and_table_rows_find_the_row() {
        let producers = json!({
            "rows": [row("alice", DEV_KEY, None), row("oryxproducer", ALICE_KEY, None)],
            "total_producer_vote_weight": "0.00000000000000000", "more": ""
        });
        let (src, r) = find_producer(&producers.to_string(), n("oryxproducer")).expect("found");
        assert_eq!(src, ProducerSource::GetProducers);
        assert!(r.is_active && r.signs_with(&key(ALICE_KEY)) && !r.signs_with(&key(DEV_KEY)));

        let auth = json!(["block_signing_authority_v0", {"threshold": 1, "keys": [{"key": DEV_KEY, "weight": 1}]}]);
        let table = json!({"rows": [row("oryxproducer", ALICE_KEY, Some(auth))], "more": false, "next_key": ""});
        let (src, r) = find_producer(&table.to_string(), n("oryxproducer")).expect("found");
        assert_eq!(src, ProducerSource::GetTableRows);
        assert!(
            r.signs_with(&key(DEV_KEY)),
            "a key of producer_authority counts"
        );
        assert_eq!(r.keys().len(), 2);
    }

    #[test]
    fn bad_producer_answers_are_refused_with_a_reason() {
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "verbatim"),
            ("[1]".into(), "JSON object"),
            (json!({"rows": []}).to_string(), "neither"),
            (json!({"rows": ["00aa"], "more": false}).to_string(), "\"json\": true"),
            (
                json!({"rows": [row("alice", DEV_KEY, None)], "more": false}).to_string(),
                "not among the 1 rows",
            ),
            (
                json!({"rows": [{"owner": "oryxproducer", "is_active": 1}], "more": false})
                    .to_string(),
                "producer_key",
            ),
            (
                json!({"rows": [row("oryxproducer", "EOSnope", None)], "more": false}).to_string(),
                "public key",
            ),
            (
                json!({"rows": [row("oryxproducer", DEV_KEY, Some(json!(["v9", {}])))], "more": false})
                    .to_string(),
                "producer_authority",
            ),
        ];
        for (text, want) in cases {
            let e = find_producer(&text, n("oryxproducer"))
                .expect_err(&text)
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    fn account(perms: Value) -> String {
        json!({"account_name": "oryxproducer", "head_block_num": 5, "permissions": perms})
            .to_string()
    }

    #[test]
    fn get_account_permissions() {
        let text = account(json!([
            {"perm_name": "active", "parent": "owner", "required_auth": {"threshold": 1,
                "keys": [{"key": DEV_KEY, "weight": 1}], "accounts": [], "waits": []}},
            {"perm_name": "owner", "parent": "", "required_auth": {"threshold": 1,
                "keys": [{"key": ALICE_KEY, "weight": 1}], "accounts": [
                    {"permission": {"actor": "custodian", "permission": "active"}, "weight": 1}],
                "waits": []}, "linked_actions": []}
        ]));
        let a = AccountPermissions::from_get_account(&text).expect("parses");
        assert_eq!(a.account, n("oryxproducer"));
        let owner = a.get(n("owner")).expect("owner");
        assert_eq!(owner.parent, Name(0));
        assert_eq!(owner.auth.accounts.len(), 1);
        assert_eq!(a.get(n("active")).expect("active").parent, n("owner"));
    }

    #[test]
    fn bad_get_account_answers_are_refused_with_a_reason() {
        let auth = json!({"threshold": 1, "keys": [{"key": DEV_KEY, "weight": 1}]});
        let cases: Vec<(String, &str)> = vec![
            (json!({"permissions": []}).to_string(), "account_name"),
            (
                json!({"account_name": "oryxproducer"}).to_string(),
                "permissions",
            ),
            (
                account(json!([{"perm_name": "owner", "parent": ""}])),
                "required_auth` is missing",
            ),
            (
                account(
                    json!([{"perm_name": "owner", "parent": "", "required_auth": {"threshold": 1, "keys": [{"key": "x", "weight": 1}]}}]),
                ),
                "required_auth does not decode",
            ),
            (
                account(json!([{"perm_name": "active", "parent": "owner", "required_auth": auth}])),
                "parent owner is not listed",
            ),
            (
                account(json!([
                    {"perm_name": "owner", "parent": "", "required_auth": auth},
                    {"perm_name": "owner", "parent": "", "required_auth": auth}
                ])),
                "listed twice",
            ),
        ];
        for (text, want) in cases {
            let e = AccountPermissions::from_get_account(&text)
                .expect_err(&text)
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn the_active_schedule_names_the_keys_blocks_come_from() {
        let sched = |producer: serde_json::Value| {
            json!({"active": {"version": 9, "producers": [
                {"producer_name": "other", "block_signing_key": DEV_KEY}, producer]},
                "pending": null, "proposed": null})
            .to_string()
        };
        let text = sched(
            json!({"producer_name": "alice", "authority": ["block_signing_authority_v0",
            {"threshold": 2, "keys": [{"key": ALICE_KEY, "weight": 2}, {"key": DEV_KEY, "weight": 1}]}]}),
        );
        assert!(is_schedule(&text));
        let s = find_scheduled(&text, n("alice")).expect("listed");
        assert_eq!(s.version, 9);
        assert_eq!(
            s.keys,
            vec![key(ALICE_KEY)],
            "a key below the threshold cannot sign alone"
        );
        let legacy = sched(json!({"producer_name": "alice", "block_signing_key": ALICE_KEY}));
        assert_eq!(
            find_scheduled(&legacy, n("alice")).expect("listed").keys,
            vec![key(ALICE_KEY)]
        );
        let e = find_scheduled(&text, n("bob"))
            .expect_err("absent")
            .to_string();
        assert!(e.contains("not in the active schedule"), "{e}");
        assert!(!is_schedule(r#"{"rows": [], "more": ""}"#));
        assert!(find_scheduled(r#"{"active": 3}"#, n("alice")).is_err());
    }
}
