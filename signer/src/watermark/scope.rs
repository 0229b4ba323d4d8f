//! Watermark scopes: which watermark guards a key's blocks. The watermark guards the
//! *producer*, not one key: a key signs under its policy identity's watermark (itself, or for a
//! successor made by a rotation, the root of its `successor_of` chain — from the moment the
//! successor exists), and all keys of one producer account on one chain share one watermark when
//! the config groups them (`[[watermarks.producers]]`). So no two keys of one producer sign two
//! blocks at one height: not a producer key and its successor, not two keys of one authority.
//!
//! Guards (DESIGN.md §4):
//! - a key reserves only under [`Scopes::of`] its identity;
//! - before a shared watermark is first used in a process, each other key that signs under it
//!   has its own watermark *sealed* ([`super::WatermarkStore::seal`]): the shared watermark is
//!   raised to it, then the key's own is closed for good, by compare-and-swap on the key's. So a
//!   key added to a group brings its history along, a replica still running the old config
//!   (signing under the key's own watermark) is stopped, and a key taken out of its group signs
//!   nothing until an operator imports a watermark for it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use oryx_proto::antelope::{Checksum256, Name, Pack as _, PublicKey, Unpack as _};

use super::{StoreError, WatermarkKey, WatermarkStore};

/// Whose signatures one watermark guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// One key (the default).
    Key(PublicKey),
    /// Every key of a producer account's configured group.
    Producer(Name),
}

/// The marker byte of a producer scope in [`Scope::packed`] (a packed key starts with its key
/// type: 0 or 1).
const PRODUCER_TAG: u8 = 0xff;
/// How [`Scope`]'s text form marks a producer (never the start of a key's text).
const PRODUCER_PREFIX: &str = "producer:";

impl Scope {
    /// Fixed-width binary identity (34 bytes: a packed key, or the producer tag and name).
    pub fn packed(&self) -> Vec<u8> {
        match self {
            Scope::Key(k) => k.packed(),
            Scope::Producer(p) => {
                let mut b = vec![0u8; 34];
                b[0] = PRODUCER_TAG;
                b[1..9].copy_from_slice(&p.0.to_le_bytes());
                b
            }
        }
    }

    /// The inverse of [`Scope::packed`].
    pub fn unpack(b: &[u8]) -> Option<Scope> {
        if b.len() != 34 {
            return None;
        }
        if b[0] == PRODUCER_TAG {
            if b[9..].iter().any(|&x| x != 0) {
                return None;
            }
            return Some(Scope::Producer(Name(u64::from_le_bytes(
                b[1..9].try_into().ok()?,
            ))));
        }
        PublicKey::unpack_exact(b).ok().map(Scope::Key)
    }

    /// The key, for a key's own watermark.
    pub fn key(&self) -> Option<&PublicKey> {
        match self {
            Scope::Key(k) => Some(k),
            Scope::Producer(_) => None,
        }
    }
}

/// The text form used in store paths: the key (`PUB_K1_…`) or `producer:<account>`.
impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Key(k) => write!(f, "{k}"),
            Scope::Producer(p) => write!(f, "{PRODUCER_PREFIX}{p}"),
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix(PRODUCER_PREFIX) {
            Some(p) => {
                let name: Name = p.parse().map_err(|e| format!("{s:?}: {e}"))?;
                // Names parse leniently; only the canonical spelling names a scope.
                if name.to_string() != p {
                    return Err(format!("{s:?}: not a canonical account name"));
                }
                Ok(Scope::Producer(name))
            }
            None => PublicKey::parse(s)
                .map(Scope::Key)
                .map_err(|e| format!("{s:?}: {e}")),
        }
    }
}

/// As its text form (the audit log's write-ahead entries name the watermark they reserved).
impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One configured group: on `chain_id`, `keys` sign as `producer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The chain.
    pub chain_id: Checksum256,
    /// The producer account.
    pub producer: Name,
    /// Its block-signing keys.
    pub keys: Vec<PublicKey>,
}

/// Which watermark each key signs under, and which producer watermarks this process has settled.
#[derive(Debug, Default)]
pub struct Scopes {
    producer_of: HashMap<(Checksum256, PublicKey), Name>,
    members: HashMap<WatermarkKey, Vec<PublicKey>>,
    settled: Mutex<HashSet<WatermarkKey>>,
    /// Chains where a blind digest may be a watermark's first position.
    unbounded_blind_start: HashSet<Checksum256>,
    /// Watermarks seen to exist (they never go away but by an operator's forced import).
    started: Mutex<HashSet<WatermarkKey>>,
}

impl Scopes {
    /// Scopes from validated groups (a key in at most one group per chain).
    pub fn new(groups: &[Group]) -> Self {
        let mut s = Scopes::default();
        for g in groups {
            let wk = WatermarkKey {
                chain_id: g.chain_id,
                scope: Scope::Producer(g.producer),
            };
            for k in &g.keys {
                s.producer_of.insert((g.chain_id, *k), g.producer);
            }
            s.members.insert(wk, g.keys.clone());
        }
        s
    }

    /// The same, letting a blind digest start a watermark on `chains` (private chains only).
    pub fn with_unbounded_blind_start(mut self, chains: &[Checksum256]) -> Self {
        self.unbounded_blind_start = chains.iter().copied().collect();
        self
    }

    /// Whether a blind Savanna block id may be reserved under `wk`: only once the watermark
    /// exists (a full block signed, or an imported head), since a blind id's height is only
    /// four bytes anyone can choose; or on a chain configured to start from any. Looks in the
    /// store once per watermark and process.
    pub fn blind_may_start(
        &self,
        wk: &WatermarkKey,
        store: &dyn WatermarkStore,
    ) -> Result<bool, StoreError> {
        if self.unbounded_blind_start.contains(&wk.chain_id) || lock(&self.started).contains(wk) {
            return Ok(true);
        }
        let exists = store.get(wk)?.is_some();
        if exists {
            lock(&self.started).insert(*wk);
        }
        Ok(exists)
    }

    /// The watermark the signatures of a key with policy identity `key` reserve under on
    /// `chain_id`.
    pub fn of(&self, chain_id: Checksum256, key: PublicKey) -> WatermarkKey {
        match self.producer_of.get(&(chain_id, key)) {
            Some(p) => WatermarkKey {
                chain_id,
                scope: Scope::Producer(*p),
            },
            None => WatermarkKey::of_key(chain_id, key),
        }
    }

    /// Makes `wk` safe to reserve under: seals into it the own watermark of every key that
    /// signs under it — a producer's configured keys, and `others()` (the successors whose
    /// identity resolves to it) — once per process. Sealing is idempotent, so racing callers
    /// and other replicas doing the same are harmless.
    pub fn settle(
        &self,
        wk: &WatermarkKey,
        others: impl FnOnce() -> Vec<PublicKey>,
        store: &dyn WatermarkStore,
    ) -> Result<(), StoreError> {
        if lock(&self.settled).contains(wk) {
            return Ok(());
        }
        let grouped = self.members.get(wk).into_iter().flatten().copied();
        for m in grouped.chain(others()) {
            let own = WatermarkKey::of_key(wk.chain_id, m);
            if own != *wk {
                store.seal(&own, wk)?;
            }
        }
        lock(&self.settled).insert(*wk);
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::backend::{KeyBackend, soft::SoftKey};
    use oryx_proto::antelope::KeyType;

    fn key() -> PublicKey {
        *SoftKey::generate(KeyType::K1).unwrap().public_key()
    }

    #[test]
    fn scope_text_and_bytes_round_trip() {
        for s in [
            Scope::Key(key()),
            Scope::Producer("oryxproducer".parse().unwrap()),
            Scope::Producer(Name(0)),
        ] {
            assert_eq!(s.to_string().parse::<Scope>().unwrap(), s, "{s}");
            assert_eq!(Scope::unpack(&s.packed()), Some(s));
        }
        assert!("producer:ORYX".parse::<Scope>().is_err());
        assert!("PUB_K1_nope".parse::<Scope>().is_err());
        let mut b = Scope::Producer(Name(7)).packed();
        b[20] = 1;
        assert_eq!(Scope::unpack(&b), None);
    }

    #[test]
    fn grouped_keys_share_one_watermark_per_chain() {
        let (a, b, c) = (key(), key(), key());
        let chain = Checksum256([1; 32]);
        let other = Checksum256([2; 32]);
        let p: Name = "oryxproducer".parse().unwrap();
        let s = Scopes::new(&[Group {
            chain_id: chain,
            producer: p,
            keys: vec![a, b],
        }]);
        assert_eq!(s.of(chain, a).scope, Scope::Producer(p));
        assert_eq!(s.of(chain, a), s.of(chain, b));
        assert_ne!(s.of(chain, a), s.of(chain, c));
        assert_eq!(s.of(other, a), WatermarkKey::of_key(other, a));
        assert_eq!(s.of(chain, c), WatermarkKey::of_key(chain, c));
    }
}
