//! `authority` (the value of an account permission) and `block_signing_authority` (the keys a
//! producer signs blocks with).
//!
//! Guards: [`Authority::validate`] and [`BlockSigningAuthorityV0::validate`] refuse what the chain
//! and the system contract would refuse, with a message naming the rule, so an operator is told
//! before signing an `updateauth` or `regproducer2` that could never execute.

use std::cmp::Ordering;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;

use super::permission::PermissionLevel;
use crate::antelope::codec::{Pack, Reader, Unpack, write_varuint32};
use crate::antelope::keys::PublicKey;
use crate::{Error, Result};

/// Most entries (keys + accounts + waits) nodeos accepts in one authority.
pub const MAX_AUTHORITY_ENTRIES: usize = 1 << 16;

/// A key and the weight its signature contributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyWeight {
    /// The public key.
    pub key: PublicKey,
    /// Its weight.
    pub weight: u16,
}

/// Another account's permission and the weight its satisfaction contributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionLevelWeight {
    /// The permission that must be satisfied.
    pub permission: PermissionLevel,
    /// Its weight.
    pub weight: u16,
}

/// A delay and the weight waiting it out contributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitWeight {
    /// The delay in seconds.
    pub wait_sec: u32,
    /// Its weight.
    pub weight: u16,
}

/// A weighted threshold over keys, other permissions and delays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    /// Total weight needed.
    pub threshold: u32,
    /// Keys, sorted strictly ascending by their packed bytes.
    pub keys: Vec<KeyWeight>,
    /// Permissions, sorted strictly ascending by (actor, permission).
    pub accounts: Vec<PermissionLevelWeight>,
    /// Delays, sorted strictly ascending.
    pub waits: Vec<WaitWeight>,
}

fn bad_authority(detail: String) -> Error {
    Error::invalid("authority", detail)
}

impl Authority {
    /// An authority satisfied by one key alone (threshold 1, weight 1).
    pub fn single_key(key: PublicKey) -> Self {
        Authority {
            threshold: 1,
            keys: vec![KeyWeight { key, weight: 1 }],
            accounts: vec![],
            waits: vec![],
        }
    }

    /// Checks the rules of `eosio::chain::validate(authority)`: threshold above zero; at most
    /// 65 536 entries; keys strictly ascending by packed bytes (so unique); accounts strictly
    /// ascending by actor then permission; waits strictly ascending with the first above zero
    /// seconds; total weight at least the threshold.
    ///
    /// Stricter than nodeos in one respect: a zero weight is refused. The chain accepts it, but
    /// such an entry can never contribute and is almost certainly a mistake in what is signed.
    pub fn validate(&self) -> Result<()> {
        if self.threshold == 0 {
            return Err(bad_authority(
                "threshold must be above zero: set it to the weight that must sign".into(),
            ));
        }
        let entries = self.keys.len() + self.accounts.len() + self.waits.len();
        if entries > MAX_AUTHORITY_ENTRIES {
            return Err(bad_authority(format!(
                "{entries} entries, at most {MAX_AUTHORITY_ENTRIES} allowed: remove some"
            )));
        }
        let mut packed_prev: Option<Vec<u8>> = None;
        for (i, k) in self.keys.iter().enumerate() {
            let packed = k.key.packed();
            match packed_prev.as_ref().map(|prev| prev.cmp(&packed)) {
                Some(Ordering::Equal) => {
                    return Err(bad_authority(format!(
                        "keys[{i}] ({}) repeats keys[{}]: keys must be unique; list each key once",
                        k.key,
                        i - 1
                    )));
                }
                Some(Ordering::Greater) => {
                    return Err(bad_authority(format!(
                        "keys[{i}] ({}) is out of order: keys must be sorted ascending by their \
                         packed bytes (type byte, then key bytes), as cleos sorts them",
                        k.key
                    )));
                }
                _ => {}
            }
            if k.weight == 0 {
                return Err(bad_authority(format!(
                    "keys[{i}] ({}) has weight 0: remove it or give it a weight of at least 1",
                    k.key
                )));
            }
            packed_prev = Some(packed);
        }
        for (i, pair) in self.accounts.windows(2).enumerate() {
            match pair[0].permission.cmp(&pair[1].permission) {
                Ordering::Equal => {
                    return Err(bad_authority(format!(
                        "accounts[{}] ({}) repeats accounts[{i}]: accounts must be unique; list \
                         each permission once",
                        i + 1,
                        pair[1].permission
                    )));
                }
                Ordering::Greater => {
                    return Err(bad_authority(format!(
                        "accounts[{}] ({}) is out of order: accounts must be sorted ascending by \
                         actor, then permission",
                        i + 1,
                        pair[1].permission
                    )));
                }
                Ordering::Less => {}
            }
        }
        if let Some((i, a)) = self
            .accounts
            .iter()
            .enumerate()
            .find(|(_, a)| a.weight == 0)
        {
            return Err(bad_authority(format!(
                "accounts[{i}] ({}) has weight 0: remove it or give it a weight of at least 1",
                a.permission
            )));
        }
        if self.waits.first().is_some_and(|w| w.wait_sec == 0) {
            return Err(bad_authority(
                "waits[0] has wait_sec 0: a wait must be at least 1 second; remove it".into(),
            ));
        }
        for (i, pair) in self.waits.windows(2).enumerate() {
            match pair[0].wait_sec.cmp(&pair[1].wait_sec) {
                Ordering::Equal => {
                    return Err(bad_authority(format!(
                        "waits[{}] (wait_sec {}) repeats waits[{i}]: waits must be unique; merge \
                         their weights",
                        i + 1,
                        pair[1].wait_sec
                    )));
                }
                Ordering::Greater => {
                    return Err(bad_authority(format!(
                        "waits[{}] (wait_sec {}) is out of order: waits must be sorted ascending",
                        i + 1,
                        pair[1].wait_sec
                    )));
                }
                Ordering::Less => {}
            }
        }
        if let Some((i, w)) = self.waits.iter().enumerate().find(|(_, w)| w.weight == 0) {
            return Err(bad_authority(format!(
                "waits[{i}] (wait_sec {}) has weight 0: remove it or give it a weight of at least 1",
                w.wait_sec
            )));
        }
        let total = self.total_weight();
        if total < u64::from(self.threshold) {
            return Err(bad_authority(format!(
                "total weight {total} is below the threshold {}: the authority can never be \
                 satisfied; lower the threshold or add weight",
                self.threshold
            )));
        }
        Ok(())
    }

    /// Sum of every weight (a u64, so it cannot overflow).
    pub fn total_weight(&self) -> u64 {
        let keys = self.keys.iter().map(|k| u64::from(k.weight));
        let accounts = self.accounts.iter().map(|a| u64::from(a.weight));
        let waits = self.waits.iter().map(|w| u64::from(w.weight));
        keys.chain(accounts).chain(waits).sum()
    }

    /// Whether the holders of `held` alone reach the threshold, without waiting out any delay.
    ///
    /// Counts the weight of every key in `held.keys` and every permission level in
    /// `held.accounts` named exactly (an `alice@owner` holder is *not* counted for an
    /// `alice@active` entry, although the chain would accept it): the guard may refuse an
    /// authority the team could in fact satisfy, never the reverse. Waits never count, since a
    /// lock-out that can only be lifted by a delayed transaction is still a lock-out for a
    /// ceremony.
    pub fn satisfiable_by(&self, held: &HeldAuthority) -> bool {
        self.held_weight(held) >= u64::from(self.threshold) && self.threshold > 0
    }

    /// Weight the holders of `held` contribute (keys and exactly named accounts; no waits).
    pub fn held_weight(&self, held: &HeldAuthority) -> u64 {
        let keys = self
            .keys
            .iter()
            .filter(|k| held.keys.contains(&k.key))
            .map(|k| u64::from(k.weight));
        let accounts = self
            .accounts
            .iter()
            .filter(|a| held.accounts.contains(&a.permission))
            .map(|a| u64::from(a.weight));
        keys.chain(accounts).sum()
    }

    /// [`Authority::validate`], then the lock-out guard: refuses an authority that `held` could
    /// not satisfy, naming the weight the team would have and the weight it needs.
    pub fn validate_for(&self, held: &HeldAuthority) -> Result<()> {
        self.validate()?;
        if !self.satisfiable_by(held) {
            return Err(bad_authority(format!(
                "lock-out: the keys and accounts the team holds carry weight {} but the threshold \
                 is {}: add a held key or account, raise its weight, or lower the threshold",
                self.held_weight(held),
                self.threshold
            )));
        }
        Ok(())
    }
}

/// What a team can sign with: its keys, and the permissions of other accounts it controls.
/// The input of the lock-out guard ([`Authority::satisfiable_by`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldAuthority {
    /// Public keys whose private keys the team controls (in its HSMs).
    #[serde(default)]
    pub keys: Vec<PublicKey>,
    /// Permission levels of other accounts the team can satisfy.
    #[serde(default)]
    pub accounts: Vec<PermissionLevel>,
}

impl Pack for KeyWeight {
    fn pack(&self, out: &mut Vec<u8>) {
        self.key.pack(out);
        self.weight.pack(out);
    }
}

impl Unpack for KeyWeight {
    const WHAT: &'static str = "key_weight";
    const MIN_SIZE: usize = PublicKey::MIN_SIZE + 2;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(KeyWeight {
            key: PublicKey::unpack(r)?,
            weight: r.u16("key weight")?,
        })
    }
}

impl Pack for PermissionLevelWeight {
    fn pack(&self, out: &mut Vec<u8>) {
        self.permission.pack(out);
        self.weight.pack(out);
    }
}

impl Unpack for PermissionLevelWeight {
    const WHAT: &'static str = "permission_level_weight";
    const MIN_SIZE: usize = PermissionLevel::MIN_SIZE + 2;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(PermissionLevelWeight {
            permission: PermissionLevel::unpack(r)?,
            weight: r.u16("permission weight")?,
        })
    }
}

impl Pack for WaitWeight {
    fn pack(&self, out: &mut Vec<u8>) {
        self.wait_sec.pack(out);
        self.weight.pack(out);
    }
}

impl Unpack for WaitWeight {
    const WHAT: &'static str = "wait_weight";
    const MIN_SIZE: usize = 6;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(WaitWeight {
            wait_sec: r.u32("wait_sec")?,
            weight: r.u16("wait weight")?,
        })
    }
}

impl Pack for Authority {
    fn pack(&self, out: &mut Vec<u8>) {
        self.threshold.pack(out);
        self.keys.pack(out);
        self.accounts.pack(out);
        self.waits.pack(out);
    }
}

impl Unpack for Authority {
    const WHAT: &'static str = "authority";
    const MIN_SIZE: usize = 7;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Authority {
            threshold: r.u32("authority threshold")?,
            keys: Vec::unpack(r)?,
            accounts: Vec::unpack(r)?,
            waits: Vec::unpack(r)?,
        })
    }
}

/// The only `block_signing_authority` variant: a weighted threshold over keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSigningAuthorityV0 {
    /// Total weight needed.
    pub threshold: u32,
    /// Keys and their weights (unique; order is not checked by the contract).
    pub keys: Vec<KeyWeight>,
}

impl BlockSigningAuthorityV0 {
    /// Checks the rules of the system contract's `block_signing_authority_v0::is_valid`: threshold
    /// above zero, no key twice, total weight (which must fit in a u32) at least the threshold.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| Error::invalid("block signing authority", detail);
        if self.threshold == 0 {
            return Err(bad("threshold must be above zero".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, k) in self.keys.iter().enumerate() {
            if !seen.insert(k.key) {
                return Err(bad(format!("keys[{i}] ({}) appears twice", k.key)));
            }
        }
        let total: u64 = self.keys.iter().map(|k| u64::from(k.weight)).sum();
        if total > u64::from(u32::MAX) {
            return Err(bad(format!("total weight {total} overflows 32 bits")));
        }
        if total < u64::from(self.threshold) {
            return Err(bad(format!(
                "total weight {total} is below the threshold {}: the producer could never sign a block",
                self.threshold
            )));
        }
        Ok(())
    }
}

impl Pack for BlockSigningAuthorityV0 {
    fn pack(&self, out: &mut Vec<u8>) {
        self.threshold.pack(out);
        self.keys.pack(out);
    }
}

impl Unpack for BlockSigningAuthorityV0 {
    const WHAT: &'static str = "block_signing_authority_v0";
    const MIN_SIZE: usize = 5;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(BlockSigningAuthorityV0 {
            threshold: r.u32("block signing threshold")?,
            keys: Vec::unpack(r)?,
        })
    }
}

/// `block_signing_authority`: a variant (varuint32 index) whose only member is index 0.
///
/// JSON is nodeos' variant form: `["block_signing_authority_v0", {"threshold": 1, "keys": [...]}]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BlockSigningAuthority {
    /// Index 0.
    V0(BlockSigningAuthorityV0),
}

const V0_TAG: &str = "block_signing_authority_v0";

impl BlockSigningAuthority {
    /// Checks the contained authority (see [`BlockSigningAuthorityV0::validate`]).
    pub fn validate(&self) -> Result<()> {
        match self {
            BlockSigningAuthority::V0(v0) => v0.validate(),
        }
    }
}

impl Pack for BlockSigningAuthority {
    fn pack(&self, out: &mut Vec<u8>) {
        match self {
            BlockSigningAuthority::V0(v0) => {
                write_varuint32(out, 0);
                v0.pack(out);
            }
        }
    }
}

impl Unpack for BlockSigningAuthority {
    const WHAT: &'static str = "block_signing_authority";
    const MIN_SIZE: usize = 6;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        match r.varuint32("block_signing_authority variant")? {
            0 => Ok(BlockSigningAuthority::V0(BlockSigningAuthorityV0::unpack(
                r,
            )?)),
            i => Err(Error::invalid(
                "block_signing_authority",
                format!("unknown variant index {i} (only 0 = {V0_TAG} exists)"),
            )),
        }
    }
}

impl serde::Serialize for BlockSigningAuthority {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            BlockSigningAuthority::V0(v0) => {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element(V0_TAG)?;
                t.serialize_element(v0)?;
                t.end()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for BlockSigningAuthority {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct VariantVisitor;

        impl<'de> Visitor<'de> for VariantVisitor {
            type Value = BlockSigningAuthority;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "[\"{V0_TAG}\", {{\"threshold\": ..., \"keys\": [...]}}]")
            }

            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let tag: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                if tag != V0_TAG {
                    return Err(de::Error::custom(format!(
                        "unknown block_signing_authority variant {tag:?} (only {V0_TAG} exists)"
                    )));
                }
                let v0: BlockSigningAuthorityV0 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(BlockSigningAuthority::V0(v0))
            }
        }

        d.deserialize_seq(VariantVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::antelope::name::Name;
    use serde_json::json;

    const DEV_KEY: &str = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV";
    const ALICE_KEY: &str = "PUB_K1_8d5yGFrYpdXW1SUmaavRZKm5X7Bp9jK634JABCYPciwTnKmsGx";

    fn key(s: &str) -> PublicKey {
        PublicKey::parse(s).expect("valid key")
    }

    fn perm(s: &str) -> PermissionLevel {
        s.parse().expect("valid permission level")
    }

    fn kw(s: &str, weight: u16) -> KeyWeight {
        KeyWeight {
            key: key(s),
            weight,
        }
    }

    fn pw(s: &str, weight: u16) -> PermissionLevelWeight {
        PermissionLevelWeight {
            permission: perm(s),
            weight,
        }
    }

    /// A real newaccount from leap v5.0.3's deep-mind log (shared vectors, tx-e833edff0c910791):
    /// creator, name, then the owner and active authorities of `alice`.
    const NEWACCOUNT_ALICE: &str = "0000000000ea30550000000000855c3401000000010002bb30f6894f29bb6fca635b1df728ad77e48fdd6123ce5e4455b0f71e072e7df80100010000000000855c3400804a1401ea305501000001000000010003ebcf44b45a71d4f225768f602d1e2e2b25ef779ee9897fe744bf1a16e85423d50100010000000000855c3400804a1401ea3055010000";

    #[test]
    fn decodes_real_authorities() {
        let data = hex::decode(NEWACCOUNT_ALICE).expect("hex");
        let mut r = Reader::new(&data);
        assert_eq!(
            Name::unpack(&mut r).map(|n| n.to_string()),
            Ok("eosio".into())
        );
        assert_eq!(
            Name::unpack(&mut r).map(|n| n.to_string()),
            Ok("alice".into())
        );
        let owner = Authority::unpack(&mut r).expect("owner");
        let active = Authority::unpack(&mut r).expect("active");
        assert_eq!(r.finish("newaccount"), Ok(()));

        assert_eq!(owner.threshold, 1);
        assert_eq!(
            hex::encode(owner.keys[0].key.as_bytes()),
            "02bb30f6894f29bb6fca635b1df728ad77e48fdd6123ce5e4455b0f71e072e7df8"
        );
        assert_eq!(owner.keys[0].weight, 1);
        assert_eq!(owner.accounts, vec![pw("alice@eosio.code", 1)]);
        assert!(owner.waits.is_empty());
        assert_eq!(active.keys, vec![kw(ALICE_KEY, 1)]);
        assert_eq!(active.accounts, vec![pw("alice@eosio.code", 1)]);
        assert_eq!(owner.validate(), Ok(()));
        assert_eq!(active.validate(), Ok(()));

        let mut again = Vec::new();
        Name::new("eosio").expect("name").pack(&mut again);
        Name::new("alice").expect("name").pack(&mut again);
        owner.pack(&mut again);
        active.pack(&mut again);
        assert_eq!(hex::encode(again), NEWACCOUNT_ALICE);
    }

    #[test]
    fn json_matches_nodeos_field_names() {
        let a = Authority {
            threshold: 2,
            keys: vec![kw(DEV_KEY, 1)],
            accounts: vec![pw("bob@active", 1)],
            waits: vec![WaitWeight {
                wait_sec: 3600,
                weight: 1,
            }],
        };
        let v = serde_json::to_value(&a).expect("serializes");
        assert_eq!(
            v,
            json!({
                "threshold": 2,
                "keys": [{"key": key(DEV_KEY).to_string(), "weight": 1}],
                "accounts": [{"permission": {"actor": "bob", "permission": "active"}, "weight": 1}],
                "waits": [{"wait_sec": 3600, "weight": 1}],
            })
        );
        assert_eq!(serde_json::from_value::<Authority>(v).expect("parses"), a);
        // Legacy EOS… keys are accepted on input.
        let legacy = json!({"threshold": 1, "keys": [{"key": DEV_KEY, "weight": 1}], "accounts": [], "waits": []});
        assert_eq!(
            serde_json::from_value::<Authority>(legacy).expect("parses"),
            Authority::single_key(key(DEV_KEY))
        );
        let typo = json!({"threshold": 1, "keys": [], "acounts": [], "waits": []});
        assert!(serde_json::from_value::<Authority>(typo).is_err());
    }

    fn valid() -> Authority {
        let mut keys = vec![kw(DEV_KEY, 1), kw(ALICE_KEY, 1)];
        keys.sort_by_key(|k| k.key.packed());
        Authority {
            threshold: 3,
            keys,
            accounts: vec![
                pw("alice@active", 1),
                pw("alice@owner", 1),
                pw("bob@active", 1),
            ],
            waits: vec![
                WaitWeight {
                    wait_sec: 10,
                    weight: 1,
                },
                WaitWeight {
                    wait_sec: 20,
                    weight: 1,
                },
            ],
        }
    }

    #[test]
    fn validate_accepts_sorted_authorities() {
        assert_eq!(valid().validate(), Ok(()));
        assert_eq!(Authority::single_key(key(DEV_KEY)).validate(), Ok(()));
        let accounts_only = Authority {
            threshold: 1,
            accounts: vec![pw("eosio@active", 1)],
            ..Authority::default()
        };
        assert_eq!(accounts_only.validate(), Ok(()));
    }

    #[test]
    fn validate_refuses_what_the_chain_refuses() {
        type Mutation = fn(&mut Authority);
        let cases: [(&str, Mutation); 13] = [
            ("threshold must be above zero", |a| a.threshold = 0),
            ("below the threshold", |a| a.threshold = 8),
            ("keys[1] (", |a| a.keys.reverse()),
            ("is out of order: keys must be sorted", |a| a.keys.reverse()),
            ("repeats keys[0]", |a| a.keys[1] = a.keys[0].clone()),
            ("has weight 0: remove it", |a| a.keys[0].weight = 0),
            ("is out of order: accounts must be sorted", |a| {
                a.accounts.swap(0, 1)
            }),
            ("accounts[2] (alice@owner) repeats accounts[1]", |a| {
                a.accounts[2] = a.accounts[1].clone()
            }),
            ("accounts[2] (bob@active) has weight 0", |a| {
                a.accounts[2].weight = 0
            }),
            ("waits[0] has wait_sec 0", |a| a.waits[0].wait_sec = 0),
            ("waits[1] (wait_sec 10) repeats waits[0]", |a| {
                a.waits[1].wait_sec = 10
            }),
            ("waits[1] (wait_sec 10) is out of order", |a| {
                a.waits.reverse()
            }),
            ("waits[1] (wait_sec 20) has weight 0", |a| {
                a.waits[1].weight = 0
            }),
        ];
        for (expected, mutate) in cases {
            let mut a = valid();
            mutate(&mut a);
            let err = a.validate().expect_err(expected).to_string();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
        let too_many = Authority {
            threshold: 1,
            waits: (1..=(MAX_AUTHORITY_ENTRIES as u32 + 1))
                .map(|s| WaitWeight {
                    wait_sec: s,
                    weight: 1,
                })
                .collect(),
            ..Authority::default()
        };
        assert!(too_many.validate().is_err());
    }

    #[test]
    fn block_signing_authority_codec_and_json() {
        let bsa = BlockSigningAuthority::V0(BlockSigningAuthorityV0 {
            threshold: 1,
            keys: vec![kw(DEV_KEY, 1)],
        });
        let expected = format!(
            "0001000000010002{}0100",
            "c0ded2bc1f1305fb0faac5e6c03ee3a1924234985427b6167ca569d13df435cf"
        );
        assert_eq!(hex::encode(bsa.packed()), expected);
        assert_eq!(
            BlockSigningAuthority::unpack_exact(&bsa.packed()),
            Ok(bsa.clone())
        );
        let v = serde_json::to_value(&bsa).expect("serializes");
        assert_eq!(
            v,
            json!(["block_signing_authority_v0", {"threshold": 1, "keys": [{"key": key(DEV_KEY).to_string(), "weight": 1}]}])
        );
        assert_eq!(
            serde_json::from_value::<BlockSigningAuthority>(v).expect("parses"),
            bsa
        );
        for bad in [
            json!(["block_signing_authority_v1", {"threshold": 1, "keys": []}]),
            json!(["block_signing_authority_v0"]),
            json!(["block_signing_authority_v0", {"threshold": 1, "keys": []}, 3]),
            json!({"threshold": 1, "keys": []}),
        ] {
            assert!(
                serde_json::from_value::<BlockSigningAuthority>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let mut unknown = bsa.packed();
        unknown[0] = 1;
        assert!(BlockSigningAuthority::unpack_exact(&unknown).is_err());
    }

    #[test]
    fn block_signing_authority_validation() {
        let ok = BlockSigningAuthorityV0 {
            threshold: 2,
            keys: vec![kw(ALICE_KEY, 1), kw(DEV_KEY, 1)],
        };
        assert_eq!(ok.validate(), Ok(()));
        let dup = BlockSigningAuthorityV0 {
            threshold: 1,
            keys: vec![kw(DEV_KEY, 1), kw(DEV_KEY, 1)],
        };
        assert!(dup.validate().is_err());
        assert!(
            BlockSigningAuthorityV0 {
                threshold: 0,
                keys: vec![kw(DEV_KEY, 1)]
            }
            .validate()
            .is_err()
        );
        assert!(
            BlockSigningAuthorityV0 {
                threshold: 3,
                ..ok.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            BlockSigningAuthorityV0 {
                threshold: 1,
                keys: vec![]
            }
            .validate()
            .is_err()
        );
    }

    fn held(keys: &[&str], accounts: &[&str]) -> HeldAuthority {
        HeldAuthority {
            keys: keys.iter().map(|k| key(k)).collect(),
            accounts: accounts.iter().map(|a| perm(a)).collect(),
        }
    }

    #[test]
    fn lockout_guard_table() {
        // valid(): threshold 3; two keys, three accounts and two waits, each of weight 1.
        let cases: [(&[&str], &[&str], bool); 8] = [
            (&[DEV_KEY, ALICE_KEY], &["bob@active"], true),
            (&[DEV_KEY], &["alice@active", "alice@owner"], true),
            (&[DEV_KEY, ALICE_KEY], &[], false),
            // Waits never count, even though keys + waits would reach 3.
            (&[DEV_KEY], &["bob@active"], false),
            (&[], &[], false),
            // Only exactly named permissions count: bob@owner is not bob@active.
            (&[DEV_KEY, ALICE_KEY], &["bob@owner"], false),
            // Holding things the authority does not name adds nothing.
            (
                &[DEV_KEY],
                &["carol@active", "dave@active", "erin@active"],
                false,
            ),
            (&[], &["alice@active", "alice@owner", "bob@active"], true),
        ];
        let a = valid();
        for (keys, accounts, expected) in cases {
            let h = held(keys, accounts);
            assert_eq!(a.satisfiable_by(&h), expected, "{keys:?} {accounts:?}");
            assert_eq!(
                a.validate_for(&h).is_ok(),
                expected,
                "{keys:?} {accounts:?}"
            );
        }
        let err = a
            .validate_for(&held(&[DEV_KEY], &[]))
            .expect_err("locked out")
            .to_string();
        assert!(
            err.contains("lock-out") && err.contains("weight 1") && err.contains("threshold is 3"),
            "{err}"
        );
        // An invalid authority is refused for its own reason, before the guard.
        let mut bad = valid();
        bad.keys.reverse();
        let err = bad
            .validate_for(&held(&[DEV_KEY, ALICE_KEY], &["bob@active"]))
            .expect_err("unsorted")
            .to_string();
        assert!(err.contains("sorted"), "{err}");
        // A heavy single key satisfies a threshold alone.
        let heavy = Authority {
            threshold: 2,
            keys: vec![kw(DEV_KEY, 2)],
            ..Authority::default()
        };
        assert!(heavy.satisfiable_by(&held(&[DEV_KEY], &[])));
        assert!(!Authority::default().satisfiable_by(&held(&[DEV_KEY], &[])));
    }

    #[test]
    fn held_authority_json() {
        let h: HeldAuthority = serde_json::from_value(
            json!({"keys": [DEV_KEY], "accounts": [{"actor": "bob", "permission": "active"}]}),
        )
        .expect("parses");
        assert_eq!(h, held(&[DEV_KEY], &["bob@active"]));
        assert!(serde_json::from_value::<HeldAuthority>(json!({"key": [DEV_KEY]})).is_err());
    }

    /// A fixed pool of distinct, sorted keys and permission levels for the property tests.
    fn pool() -> (Vec<PublicKey>, Vec<PermissionLevel>) {
        use crate::antelope::keys::{KeyType, PrivateKey};
        let mut keys: Vec<PublicKey> = (1u8..=8)
            .map(|i| {
                let secret = crate::antelope::Checksum256::hash(&[i]).0;
                PrivateKey::from_bytes(KeyType::K1, secret)
                    .expect("a sha256 output is a valid scalar")
                    .public_key()
            })
            .collect();
        keys.sort_by_key(|k| k.packed());
        let accounts = [
            "alice@active",
            "alice@owner",
            "bob@active",
            "carol@active",
            "dave@custody",
        ]
        .iter()
        .map(|p| perm(p))
        .collect();
        (keys, accounts)
    }

    fn build(
        key_mask: u8,
        acct_mask: u8,
        weights: &[u16; 16],
        waits: &[u32],
        threshold_frac: f64,
    ) -> Authority {
        let (pool_keys, pool_accounts) = pool();
        let keys: Vec<KeyWeight> = pool_keys
            .into_iter()
            .enumerate()
            .filter(|(i, _)| key_mask & (1 << i) != 0)
            .map(|(i, key)| KeyWeight {
                key,
                weight: weights[i],
            })
            .collect();
        let accounts: Vec<PermissionLevelWeight> = pool_accounts
            .into_iter()
            .enumerate()
            .filter(|(i, _)| acct_mask & (1 << i) != 0)
            .map(|(i, permission)| PermissionLevelWeight {
                permission,
                weight: weights[8 + i],
            })
            .collect();
        let mut w: Vec<u32> = waits.to_vec();
        w.sort_unstable();
        w.dedup();
        let waits: Vec<WaitWeight> = w
            .into_iter()
            .map(|wait_sec| WaitWeight {
                wait_sec,
                weight: 1,
            })
            .collect();
        let mut a = Authority {
            threshold: 1,
            keys,
            accounts,
            waits,
        };
        let total = a.total_weight();
        // At least 1, at most the total (which fits in u32: at most 13 * 65535 + waits).
        let t = ((total as f64 * threshold_frac) as u64).clamp(1, total.max(1));
        a.threshold = u32::try_from(t).unwrap_or(1);
        a
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(64))]

        /// Any authority built sorted, unique, with non-zero weights and a reachable threshold
        /// validates, survives a pack round trip, and is satisfiable by holding everything it
        /// names (when its waits are not needed).
        #[test]
        fn random_valid_authority_validates(
            key_mask: u8,
            acct_mask in 0u8..32,
            weights in proptest::array::uniform16(1u16..),
            waits in proptest::collection::vec(1u32..1_000_000, 0..4),
            frac in 0.0f64..1.0,
        ) {
            let a = build(key_mask, acct_mask, &weights, &waits, frac);
            proptest::prop_assume!(!a.keys.is_empty() || !a.accounts.is_empty() || !a.waits.is_empty());
            proptest::prop_assert_eq!(a.validate(), Ok(()));
            proptest::prop_assert_eq!(Authority::unpack_exact(&a.packed()), Ok(a.clone()));
            let everything = HeldAuthority {
                keys: a.keys.iter().map(|k| k.key).collect(),
                accounts: a.accounts.iter().map(|p| p.permission).collect(),
            };
            let without_waits = a.total_weight() - a.waits.len() as u64;
            proptest::prop_assert_eq!(
                a.satisfiable_by(&everything),
                without_waits >= u64::from(a.threshold)
            );
            proptest::prop_assert!(!a.satisfiable_by(&HeldAuthority::default()));
        }

        /// Reversing two or more distinct keys breaks the order the chain requires.
        #[test]
        fn shuffled_keys_are_refused(
            key_mask: u8,
            weights in proptest::array::uniform16(1u16..),
            swap_a: usize,
            swap_b: usize,
        ) {
            let mut a = build(key_mask, 0, &weights, &[], 0.5);
            proptest::prop_assume!(a.keys.len() >= 2);
            let (i, j) = (swap_a % a.keys.len(), swap_b % a.keys.len());
            proptest::prop_assume!(i != j);
            a.keys.swap(i, j);
            let err = a.validate().expect_err("unsorted").to_string();
            proptest::prop_assert!(err.contains("sorted ascending"), "{}", err);
        }

        /// Zeroing any weight is refused, naming the entry.
        #[test]
        fn zero_weight_is_refused(key_mask in 1u8.., weights in proptest::array::uniform16(1u16..), at: usize) {
            let mut a = build(key_mask, 0, &weights, &[], 0.0);
            let at = at % a.keys.len();
            a.keys[at].weight = 0;
            let err = a.validate().expect_err("zero weight").to_string();
            let expected = format!("keys[{at}]");
            proptest::prop_assert!(err.contains(&expected), "{}", err);
        }
    }

    #[test]
    fn malformed_authorities_are_errors() {
        let packed = valid().packed();
        for len in 0..packed.len() {
            assert!(
                Authority::unpack_exact(&packed[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut trailing = packed.clone();
        trailing.push(0);
        assert!(matches!(
            Authority::unpack_exact(&trailing),
            Err(Error::TrailingBytes { .. })
        ));
        // A key count no input could hold is refused before allocating.
        assert!(matches!(
            Authority::unpack_exact(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(Error::TooLong { .. })
        ));
    }
}
