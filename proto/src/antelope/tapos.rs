//! TaPoS (transaction as proof of stake): the `ref_block_num`, `ref_block_prefix` and
//! `expiration` a transaction built on an air-gapped host takes from a node's JSON that the
//! operator carries over (`/v1/chain/get_info` or `/v1/chain/get_block`).
//!
//! Guards: a transaction bound to a block the chain never had, or whose expiration is past what
//! nodeos accepts, is refused by the chain only after approvers have signed it. So the carried
//! JSON is checked for internal consistency (block numbers against the numbers encoded in the
//! block ids, well-formed hex and times, the `ref_block_prefix` a node printed against the one
//! recomputed here) and the lifetime is bounded before anything is built on it. Pure: the caller
//! reads the file.

use serde_json::Value;

use super::block::num_from_id;
use super::transaction::{Action, Transaction};
use super::{Checksum256, TimePoint, TimePointSec};
use crate::{Error, Result};

/// Lifetime `oryx tapos` uses when none is given.
pub const DEFAULT_EXPIRE_IN_SECS: u32 = 3600;

/// nodeos refuses a transaction that expires more than `max_transaction_lifetime` seconds after
/// the block it would be included in (`tx_exp_too_far`); the chain default and the value on
/// every public chain is one hour.
pub const MAX_TRANSACTION_LIFETIME_SECS: u32 = 3600;

/// Longest lifetime Oryx gives a transaction proposed through `eosio.msig`. The contract only
/// checks that the proposal has not expired at `propose` and `exec`; this bound is Oryx's own,
/// so a forgotten proposal cannot stay executable for months.
pub const MAX_PROPOSAL_LIFETIME_SECS: u32 = 30 * 24 * 3600;

/// The two TaPoS fields of a transaction header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct TaposRef {
    /// Low 16 bits of the referenced block's number.
    pub ref_block_num: u16,
    /// Bytes 8..12 of the referenced block's id, read little-endian.
    pub ref_block_prefix: u32,
}

impl TaposRef {
    /// The TaPoS fields that reference the block with id `id` (its number is the id's first
    /// four bytes, big-endian).
    pub fn from_block_id(id: &Checksum256) -> Self {
        let b = id.as_bytes();
        TaposRef {
            // Truncation is the rule: only the low 16 bits are kept.
            ref_block_num: (num_from_id(id) & 0xffff) as u16,
            ref_block_prefix: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// Which block of a `get_info` answer to reference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RefBlock {
    /// `last_irreversible_block_id`: cannot be forked out, so the transaction cannot be
    /// invalidated by a fork switch (what cleos does by default).
    #[default]
    LastIrreversible,
    /// `head_block_id`: newest, but may still be forked out.
    Head,
}

/// A referenced block and the chain time to count the expiration from, parsed from a node's
/// JSON and checked for consistency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaposSource {
    /// The chain id (`get_info` carries it; `get_block` does not).
    pub chain_id: Option<Checksum256>,
    /// The referenced block's id.
    pub block_id: Checksum256,
    /// The referenced block's number (equal to the number encoded in `block_id`).
    pub block_num: u32,
    /// Chain time the expiration counts from: `head_block_time` of `get_info`, or the block's
    /// own `timestamp` for `get_block`.
    pub time: TimePoint,
}

// The field helpers below are shared with the other carried answers ([`super::carried`]).

pub(crate) fn bad(what: &'static str, detail: impl Into<String>) -> Error {
    Error::invalid(what, detail)
}

fn field<'a>(obj: &'a Value, what: &'static str, key: &str) -> Result<&'a Value> {
    obj.get(key).ok_or_else(|| {
        bad(
            what,
            format!("field `{key}` is missing: give the whole JSON answer of the node"),
        )
    })
}

pub(crate) fn str_field<'a>(obj: &'a Value, what: &'static str, key: &str) -> Result<&'a str> {
    field(obj, what, key)?
        .as_str()
        .ok_or_else(|| bad(what, format!("field `{key}` must be a string")))
}

fn u32_field(obj: &Value, what: &'static str, key: &str) -> Result<u32> {
    field(obj, what, key)?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad(what, format!("field `{key}` must be an integer in 0..2^32")))
}

fn id_field(obj: &Value, what: &'static str, key: &str) -> Result<Checksum256> {
    let text = str_field(obj, what, key)?;
    if text.len() != 64 || !text.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad(
            what,
            format!("field `{key}` must be 64 hex characters, got {text:?}"),
        ));
    }
    Checksum256::from_hex(text)
}

fn time_field(obj: &Value, what: &'static str, key: &str) -> Result<TimePoint> {
    TimePoint::parse(str_field(obj, what, key)?)
}

/// Refuses a block id whose encoded number is not the number printed beside it.
fn check_num(what: &'static str, key: &str, id: &Checksum256, num: u32) -> Result<()> {
    let encoded = num_from_id(id);
    if encoded != num {
        return Err(bad(
            what,
            format!(
                "`{key}` encodes block {encoded} but the answer says {num}: the JSON was edited \
                 or mixes two answers; fetch it again"
            ),
        ));
    }
    Ok(())
}

/// Parses a node's JSON answer, which must be an object (`what` names it in errors).
pub(crate) fn parse_object(text: &str, what: &'static str) -> Result<Value> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Error::Json(format!("{what}: {e}: give the node's JSON answer verbatim")))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(bad(what, "expected a JSON object"))
    }
}

impl TaposSource {
    /// Parses the answer of `/v1/chain/get_info` and references the block `which` names.
    ///
    /// Refuses an answer whose `head_block_num`/`last_irreversible_block_num` differ from the
    /// numbers encoded in the corresponding ids, whose irreversible block is above its head, or
    /// with a malformed chain id, id or time.
    pub fn from_get_info(text: &str, which: RefBlock) -> Result<Self> {
        Self::get_info(&parse_object(text, "get_info")?, which)
    }

    fn get_info(v: &Value, which: RefBlock) -> Result<Self> {
        const WHAT: &str = "get_info";
        let chain_id = id_field(v, WHAT, "chain_id")?;
        let head_id = id_field(v, WHAT, "head_block_id")?;
        let head_num = u32_field(v, WHAT, "head_block_num")?;
        check_num(WHAT, "head_block_id", &head_id, head_num)?;
        let lib_id = id_field(v, WHAT, "last_irreversible_block_id")?;
        let lib_num = u32_field(v, WHAT, "last_irreversible_block_num")?;
        check_num(WHAT, "last_irreversible_block_id", &lib_id, lib_num)?;
        if lib_num > head_num {
            return Err(bad(
                WHAT,
                format!(
                    "last irreversible block {lib_num} is above the head block {head_num}: the \
                     answer is inconsistent; fetch it again"
                ),
            ));
        }
        let time = time_field(v, WHAT, "head_block_time")?;
        let (block_id, block_num) = match which {
            RefBlock::LastIrreversible => (lib_id, lib_num),
            RefBlock::Head => (head_id, head_num),
        };
        Ok(TaposSource {
            chain_id: Some(chain_id),
            block_id,
            block_num,
            time,
        })
    }

    /// Parses the answer of `/v1/chain/get_block` and references that block.
    ///
    /// Refuses an answer whose `block_num` differs from the number encoded in `id`, whose
    /// `previous` (when present) is not the block before, or whose `ref_block_prefix` (nodeos
    /// prints it) differs from the one recomputed from `id`.
    pub fn from_get_block(text: &str) -> Result<Self> {
        Self::get_block(&parse_object(text, "get_block")?)
    }

    fn get_block(v: &Value) -> Result<Self> {
        const WHAT: &str = "get_block";
        let block_id = id_field(v, WHAT, "id")?;
        let block_num = u32_field(v, WHAT, "block_num")?;
        check_num(WHAT, "id", &block_id, block_num)?;
        if v.get("previous").is_some() {
            let previous = id_field(v, WHAT, "previous")?;
            if u64::from(num_from_id(&previous)) + 1 != u64::from(block_num) {
                return Err(bad(
                    WHAT,
                    format!(
                        "`previous` is block {} but this is block {block_num}: the answer is \
                         inconsistent; fetch it again",
                        num_from_id(&previous)
                    ),
                ));
            }
        }
        if v.get("ref_block_prefix").is_some() {
            let printed = u32_field(v, WHAT, "ref_block_prefix")?;
            let computed = TaposRef::from_block_id(&block_id).ref_block_prefix;
            if printed != computed {
                return Err(bad(
                    WHAT,
                    format!(
                        "`ref_block_prefix` {printed} is not the {computed} of `id`: the answer \
                         was edited; fetch it again"
                    ),
                ));
            }
        }
        let time = time_field(v, WHAT, "timestamp")?;
        Ok(TaposSource {
            chain_id: None,
            block_id,
            block_num,
            time,
        })
    }

    /// Parses either answer, telling them apart by their fields (`head_block_id` for
    /// `get_info`, `id` and `block_num` for `get_block`).
    pub fn from_json(text: &str, which: RefBlock) -> Result<Self> {
        let v = parse_object(text, "node answer")?;
        if v.get("head_block_id").is_some() {
            Self::get_info(&v, which)
        } else if v.get("id").is_some() && v.get("block_num").is_some() {
            if which == RefBlock::Head {
                return Err(bad(
                    "get_block",
                    "choosing the head block needs a get_info answer; a get_block answer names \
                     one block",
                ));
            }
            Self::get_block(&v)
        } else {
            Err(bad(
                "node answer",
                "neither a /v1/chain/get_info answer (no `head_block_id`) nor a \
                 /v1/chain/get_block answer (no `id` and `block_num`)",
            ))
        }
    }

    /// The TaPoS fields referencing [`TaposSource::block_id`].
    pub fn tapos(&self) -> TaposRef {
        TaposRef::from_block_id(&self.block_id)
    }

    /// `time` (rounded down to a whole second, as cleos does) plus `expire_in` seconds.
    ///
    /// Refuses a zero lifetime (nodeos refuses an already expired transaction) and one above
    /// `max_secs` (pass [`MAX_TRANSACTION_LIFETIME_SECS`] for a transaction pushed directly,
    /// [`MAX_PROPOSAL_LIFETIME_SECS`] for one proposed through `eosio.msig`).
    pub fn expiration(&self, expire_in: u32, max_secs: u32) -> Result<TimePointSec> {
        if expire_in == 0 {
            return Err(bad(
                "expiration",
                "a lifetime of 0 seconds is already expired: give at least 1",
            ));
        }
        if expire_in > max_secs {
            return Err(bad(
                "expiration",
                format!(
                    "{expire_in} s is above the {max_secs} s allowed: nodeos refuses a \
                     transaction expiring more than max_transaction_lifetime (3600 s) ahead; only \
                     an eosio.msig proposal may live longer"
                ),
            ));
        }
        let secs = self.time.0.div_euclid(1_000_000);
        u32::try_from(secs + i64::from(expire_in))
            .map(TimePointSec)
            .map_err(|_| {
                bad(
                    "expiration",
                    format!("{} + {expire_in} s is outside 1970..2106", self.time),
                )
            })
    }

    /// A transaction of `actions` referencing this block and expiring `expire_in` seconds
    /// after its time (no resource limits, no delay, no context-free actions or extensions).
    pub fn transaction(
        &self,
        actions: Vec<Action>,
        expire_in: u32,
        max_secs: u32,
    ) -> Result<Transaction> {
        let tapos = self.tapos();
        Ok(Transaction {
            expiration: self.expiration(expire_in, max_secs)?,
            ref_block_num: tapos.ref_block_num,
            ref_block_prefix: tapos.ref_block_prefix,
            max_net_usage_words: Default::default(),
            max_cpu_usage_ms: 0,
            delay_sec: Default::default(),
            context_free_actions: Vec::new(),
            actions,
            transaction_extensions: Vec::new(),
        })
    }

    /// Sets a transaction's `expiration`, `ref_block_num` and `ref_block_prefix`.
    pub fn apply(&self, trx: &mut Transaction, expire_in: u32, max_secs: u32) -> Result<()> {
        let expiration = self.expiration(expire_in, max_secs)?;
        let tapos = self.tapos();
        trx.expiration = expiration;
        trx.ref_block_num = tapos.ref_block_num;
        trx.ref_block_prefix = tapos.ref_block_prefix;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Block 2 of leap v5.0.3's deep-mind test chain: its id is the `producer_block_id` in the
    /// `APPLIED_TRANSACTION 2` trace of unittests/deep-mind/deep-mind.log, its timestamp is
    /// slot 1262304001. Transactions tx-aa30bc93a59737ce and tx-39ec55367e4e4d0d of the shared
    /// vectors (included in block 3) reference it with ref_block_num 2, ref_block_prefix
    /// 380908113.
    const LEAP_BLOCK_2_ID: &str =
        "0000000213588be25132b4167ced6df22b5439e376d5a20284190bb94a43e3e8";
    /// Block 3 of the same chain (`APPLIED_TRANSACTION 3` trace).
    const LEAP_BLOCK_3_ID: &str =
        "00000003ffc4d414883accbbe91f60218a47d4c1e1914fd6ebcc2051150df719";
    const LEAP_CHAIN_ID: &str = "44423079ed372a4dda0bf89c3a594df409eaa8c1535451b7d5ca6a3d7a376912";

    fn id(s: &str) -> Checksum256 {
        Checksum256::from_hex(s).expect("hex")
    }

    fn info() -> Value {
        json!({
            "server_version": "d133c641",
            "chain_id": LEAP_CHAIN_ID,
            "head_block_num": 3,
            "last_irreversible_block_num": 2,
            "last_irreversible_block_id": LEAP_BLOCK_2_ID,
            "head_block_id": LEAP_BLOCK_3_ID,
            "head_block_time": "2020-01-01T00:00:01.000",
            "head_block_producer": "eosio",
        })
    }

    fn block() -> Value {
        json!({
            "timestamp": "2020-01-01T00:00:00.500",
            "producer": "eosio",
            "id": LEAP_BLOCK_2_ID,
            "block_num": 2,
            "ref_block_prefix": 380_908_113u32,
        })
    }

    #[test]
    fn prefix_matches_real_transactions() {
        let vectors: Value =
            serde_json::from_str(include_str!("../../../tests/vectors/antelope.json"))
                .expect("vectors parse");
        let tapos = TaposRef::from_block_id(&id(LEAP_BLOCK_2_ID));
        let mut matched = 0;
        for trx in vectors["transactions"].as_array().expect("transactions") {
            let decoded = &trx["decoded"];
            if decoded["ref_block_num"] == 2 {
                assert_eq!(decoded["ref_block_prefix"], tapos.ref_block_prefix);
                let packed =
                    hex::decode(trx["packed_trx_hex"].as_str().expect("hex")).expect("hex");
                let t = Transaction::decode(&packed).expect("decodes");
                assert_eq!(
                    (t.ref_block_num, t.ref_block_prefix),
                    (tapos.ref_block_num, tapos.ref_block_prefix)
                );
                matched += 1;
            }
        }
        assert!(matched >= 2, "the vectors reference leap block 2 twice");
        assert_eq!(
            TaposRef::from_block_id(&id(LEAP_BLOCK_3_ID)),
            TaposRef {
                ref_block_num: 3,
                ref_block_prefix: 0xbbcc_3a88
            }
        );
    }

    #[test]
    fn block_num_is_truncated_to_16_bits() {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&0x0123_4567u32.to_be_bytes());
        b[8..12].copy_from_slice(&[0x01, 0x02, 0x03, 0x04]);
        assert_eq!(
            TaposRef::from_block_id(&Checksum256(b)),
            TaposRef {
                ref_block_num: 0x4567,
                ref_block_prefix: 0x0403_0201
            }
        );
    }

    #[test]
    fn get_info_uses_irreversible_by_default() {
        let text = info().to_string();
        let lib = TaposSource::from_get_info(&text, RefBlock::default()).expect("parses");
        assert_eq!(lib.chain_id, Some(id(LEAP_CHAIN_ID)));
        assert_eq!((lib.block_num, lib.block_id), (2, id(LEAP_BLOCK_2_ID)));
        assert_eq!(lib.tapos().ref_block_prefix, 380_908_113);
        assert_eq!(
            lib.expiration(5, MAX_TRANSACTION_LIFETIME_SECS)
                .map(|e| e.to_string()),
            Ok("2020-01-01T00:00:06".into())
        );
        let head = TaposSource::from_json(&text, RefBlock::Head).expect("parses");
        assert_eq!((head.block_num, head.block_id), (3, id(LEAP_BLOCK_3_ID)));
        assert_eq!(head.time, lib.time);
    }

    #[test]
    fn get_block_checks_the_printed_prefix() {
        let src = TaposSource::from_json(&block().to_string(), RefBlock::default()).expect("ok");
        assert_eq!(src.chain_id, None);
        assert_eq!(src.tapos().ref_block_num, 2);
        // The fraction is dropped: 00:00:00.500 + 6 s expires at 00:00:06, as in the vectors.
        assert_eq!(
            src.expiration(6, MAX_TRANSACTION_LIFETIME_SECS)
                .map(|e| e.to_string()),
            Ok("2020-01-01T00:00:06".into())
        );
        let mut trx = Transaction::decode(
            &hex::decode("06e10b5e02005132b41600000000010000000000ea30550000002a9bed3232010000000000ea305500000000a8ed3232201a99a59d87e06e09ec5b028a9cbb7749b4a5ad8819004365d02dc4379a8b724100").expect("hex"),
        )
        .expect("decodes");
        let expected = trx.clone();
        assert_eq!(
            src.transaction(trx.actions.clone(), 6, MAX_TRANSACTION_LIFETIME_SECS),
            Ok(expected.clone()),
            "rebuilds the real transaction from its actions and the block it references"
        );
        trx.ref_block_num = 0;
        trx.ref_block_prefix = 0;
        src.apply(&mut trx, 6, MAX_TRANSACTION_LIFETIME_SECS)
            .expect("applies");
        assert_eq!(trx, expected);
        assert!(
            TaposSource::from_json(&block().to_string(), RefBlock::Head).is_err(),
            "head needs get_info"
        );
    }

    #[test]
    fn inconsistent_answers_are_refused() {
        type Edit = fn(&mut Value);
        let info_cases: [(&str, Edit); 9] = [
            ("encodes block 3 but the answer says 4", |v| {
                v["head_block_num"] = json!(4)
            }),
            ("encodes block 2 but the answer says 1", |v| {
                v["last_irreversible_block_num"] = json!(1)
            }),
            ("above the head block", |v| {
                v["head_block_num"] = json!(2);
                v["head_block_id"] = json!(LEAP_BLOCK_2_ID);
                v["last_irreversible_block_num"] = json!(3);
                v["last_irreversible_block_id"] = json!(LEAP_BLOCK_3_ID);
            }),
            ("64 hex characters", |v| {
                v["head_block_id"] = json!(&LEAP_BLOCK_3_ID[2..])
            }),
            ("64 hex characters", |v| {
                v["chain_id"] = json!(format!("{}zz", &LEAP_CHAIN_ID[2..]))
            }),
            ("`chain_id` is missing", |v| {
                v.as_object_mut().map(|o| o.remove("chain_id"));
            }),
            ("must be a string", |v| v["head_block_time"] = json!(5)),
            ("integer", |v| v["head_block_num"] = json!(-3)),
            ("invalid time", |v| {
                v["head_block_time"] = json!("yesterday")
            }),
        ];
        for (expected, edit) in info_cases {
            let mut v = info();
            edit(&mut v);
            let err = TaposSource::from_get_info(&v.to_string(), RefBlock::default())
                .expect_err(expected)
                .to_string();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
        let block_cases: [(&str, Edit); 4] = [
            ("encodes block 2 but the answer says 3", |v| {
                v["block_num"] = json!(3)
            }),
            ("is not the 380908113", |v| v["ref_block_prefix"] = json!(1)),
            ("`previous` is block 3", |v| {
                v["previous"] = json!(LEAP_BLOCK_3_ID)
            }),
            ("`timestamp` is missing", |v| {
                v.as_object_mut().map(|o| o.remove("timestamp"));
            }),
        ];
        for (expected, edit) in block_cases {
            let mut v = block();
            edit(&mut v);
            let err = TaposSource::from_get_block(&v.to_string())
                .expect_err(expected)
                .to_string();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
        for junk in ["", "[]", "{}", "{\"id\": 1}", "not json"] {
            assert!(
                TaposSource::from_json(junk, RefBlock::default()).is_err(),
                "{junk}"
            );
        }
    }

    #[test]
    fn lifetime_is_bounded() {
        let src = TaposSource::from_get_block(&block().to_string()).expect("ok");
        assert!(src.expiration(0, MAX_TRANSACTION_LIFETIME_SECS).is_err());
        assert!(src.expiration(3600, MAX_TRANSACTION_LIFETIME_SECS).is_ok());
        let err = src
            .expiration(3601, MAX_TRANSACTION_LIFETIME_SECS)
            .expect_err("too far");
        assert!(err.to_string().contains("max_transaction_lifetime"));
        assert!(
            src.expiration(7 * 24 * 3600, MAX_PROPOSAL_LIFETIME_SECS)
                .is_ok()
        );
        let late = TaposSource {
            time: TimePoint(i64::from(u32::MAX) * 1_000_000),
            ..src
        };
        assert!(late.expiration(1, u32::MAX).is_err());
    }

    proptest::proptest! {
        /// Any block id whose number is printed correctly parses and yields its own TaPoS.
        #[test]
        fn any_consistent_block_parses(bytes: [u8; 32], slot in 0u32..2_000_000_000) {
            let block_id = Checksum256(bytes);
            let num = num_from_id(&block_id);
            let ms = 946_684_800_000i64 + i64::from(slot) * 500;
            let time = TimePoint(ms * 1000);
            let text = json!({"id": block_id.to_string(), "block_num": num, "timestamp": time.to_string()}).to_string();
            let src = TaposSource::from_get_block(&text).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(src.tapos(), TaposRef::from_block_id(&block_id));
            proptest::prop_assert_eq!(src.tapos().ref_block_num, (num & 0xffff) as u16);
            let wrong = json!({"id": block_id.to_string(), "block_num": num ^ 1, "timestamp": time.to_string()}).to_string();
            proptest::prop_assert!(TaposSource::from_get_block(&wrong).is_err());
        }
    }
}
