//! Rate and spend counters: the only state a decision depends on, kept by the caller.
//!
//! Guards: the policy stays pure. It reads counters through the [`Counters`] trait and returns
//! the [`Charge`]s to record; the caller records them only once the request is actually signed,
//! so a refused or failed request never uses up a rate window or a budget.
//! [`MemoryCounters`] is a plain in-memory implementation (no clock: every call is given `now`).

use std::collections::{HashMap, VecDeque};

use oryx_proto::antelope::{Asset, PublicKey, Symbol, TimePointSec};

/// Length of the rolling spend window: 24 hours.
pub const SPEND_WINDOW_SECS: u32 = 24 * 60 * 60;

/// Counter readings the policy needs. Implemented by the caller (the signer keeps them durably).
pub trait Counters {
    /// Signed requests charged to `rule` for this principal and key in the `window_secs` seconds
    /// up to `now`.
    fn requests(
        &self,
        rule: &str,
        principal: &str,
        key: &PublicKey,
        window_secs: u32,
        now: TimePointSec,
    ) -> u32;

    /// Amount of `symbol` spent with this key in the 24 hours up to `now`, in the symbol's
    /// smallest unit, whichever rule allowed it: a budget limits what leaves through the key,
    /// so renaming, splitting or reloading rules never resets what was spent.
    fn spent(&self, key: &PublicKey, symbol: Symbol, now: TimePointSec) -> i64;
}

/// Something to record if, and only if, the request is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    /// One request against a rule's rate limit.
    Request {
        /// The rule with the rate limit.
        rule: String,
        /// The principal.
        principal: String,
        /// The key.
        key: PublicKey,
        /// The rate limit's window, so a store knows how long to keep the hit.
        window_secs: u32,
    },
    /// An amount against the key's daily budget (counted per key and symbol).
    Spend {
        /// The rule that allowed it (recorded, not part of the count's key).
        rule: String,
        /// The key.
        key: PublicKey,
        /// The amount (positive), in the budget's symbol.
        amount: Asset,
    },
}

/// In-memory counters: a sliding log of hits and spends, pruned as it is written.
///
/// Pure data: the caller supplies `now` on every call. Memory stays bounded because a hit is only
/// recorded after the rate check let it through, and entries leave the log once their window ends.
#[derive(Debug, Clone, Default)]
pub struct MemoryCounters {
    hits: HashMap<(String, String, PublicKey), VecDeque<(u32, u32)>>,
    spends: HashMap<(PublicKey, Symbol), VecDeque<(u32, i64)>>,
}

/// Whether a time `t` lies in the window of `window` seconds ending at `now`. Entries from the
/// future (the caller's clock moved back) count: a counter must never under-count.
fn in_window(t: u32, window: u32, now: TimePointSec) -> bool {
    t > now.0.saturating_sub(window)
}

impl MemoryCounters {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the charges of a signed request at `now`, and forgets entries whose window ended.
    pub fn record(&mut self, charges: &[Charge], now: TimePointSec) {
        for charge in charges {
            match charge {
                Charge::Request {
                    rule,
                    principal,
                    key,
                    window_secs,
                } => {
                    let log = self
                        .hits
                        .entry((rule.clone(), principal.clone(), *key))
                        .or_default();
                    log.retain(|&(t, w)| in_window(t, w, now));
                    log.push_back((now.0, *window_secs));
                }
                Charge::Spend { key, amount, .. } => {
                    let log = self.spends.entry((*key, amount.symbol)).or_default();
                    log.retain(|&(t, _)| in_window(t, SPEND_WINDOW_SECS, now));
                    log.push_back((now.0, amount.amount));
                }
            }
        }
    }
}

impl MemoryCounters {
    /// Takes back charges [`MemoryCounters::record`]ed at `now` for a request that was then
    /// not signed (one entry per charge, the newest match), so a reservation that came to
    /// nothing uses up nothing.
    pub fn release(&mut self, charges: &[Charge], now: TimePointSec) {
        for charge in charges {
            match charge {
                Charge::Request {
                    rule,
                    principal,
                    key,
                    window_secs,
                } => {
                    if let Some(log) = self.hits.get_mut(&(rule.clone(), principal.clone(), *key))
                        && let Some(i) = log.iter().rposition(|&e| e == (now.0, *window_secs))
                    {
                        log.remove(i);
                    }
                }
                Charge::Spend { key, amount, .. } => {
                    if let Some(log) = self.spends.get_mut(&(*key, amount.symbol))
                        && let Some(i) = log.iter().rposition(|&e| e == (now.0, amount.amount))
                    {
                        log.remove(i);
                    }
                }
            }
        }
    }
}

impl Counters for MemoryCounters {
    fn requests(
        &self,
        rule: &str,
        principal: &str,
        key: &PublicKey,
        window_secs: u32,
        now: TimePointSec,
    ) -> u32 {
        let count = self
            .hits
            .get(&(rule.to_string(), principal.to_string(), *key))
            .map_or(0, |log| {
                log.iter()
                    .filter(|&&(t, _)| in_window(t, window_secs, now))
                    .count()
            });
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    fn spent(&self, key: &PublicKey, symbol: Symbol, now: TimePointSec) -> i64 {
        let total: i128 = self.spends.get(&(*key, symbol)).map_or(0, |log| {
            log.iter()
                .filter(|&&(t, _)| in_window(t, SPEND_WINDOW_SECS, now))
                .map(|&(_, amount)| i128::from(amount))
                .sum()
        });
        i64::try_from(total).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use oryx_proto::antelope::{KeyType, PrivateKey};

    fn key(i: u8) -> PublicKey {
        PrivateKey::from_bytes(KeyType::K1, [i; 32])
            .unwrap()
            .public_key()
    }

    #[test]
    fn windows_slide() {
        let mut c = MemoryCounters::new();
        let hit = Charge::Request {
            rule: "r".into(),
            principal: "p".into(),
            key: key(1),
            window_secs: 60,
        };
        c.record(std::slice::from_ref(&hit), TimePointSec(1000));
        c.record(std::slice::from_ref(&hit), TimePointSec(1030));
        assert_eq!(c.requests("r", "p", &key(1), 60, TimePointSec(1030)), 2);
        assert_eq!(c.requests("r", "p", &key(1), 60, TimePointSec(1060)), 1);
        assert_eq!(c.requests("r", "p", &key(1), 60, TimePointSec(1090)), 0);
        assert_eq!(c.requests("r", "q", &key(1), 60, TimePointSec(1030)), 0);
        assert_eq!(c.requests("r", "p", &key(2), 60, TimePointSec(1030)), 0);
        assert_eq!(c.requests("other", "p", &key(1), 60, TimePointSec(1030)), 0);
        // A clock that moved back still sees the hits.
        assert_eq!(c.requests("r", "p", &key(1), 60, TimePointSec(900)), 2);
        // Recording prunes what left its window.
        c.record(&[hit], TimePointSec(5000));
        assert_eq!(c.hits.values().next().map(VecDeque::len), Some(1));
    }

    #[test]
    fn spend_is_a_rolling_day() {
        let eos: Symbol = "4,EOS".parse().unwrap();
        let spend = |amount| Charge::Spend {
            rule: "r".into(),
            key: key(1),
            amount: Asset::new(amount, eos).unwrap(),
        };
        let mut c = MemoryCounters::new();
        c.record(&[spend(100)], TimePointSec(10));
        c.record(&[spend(50)], TimePointSec(20));
        assert_eq!(c.spent(&key(1), eos, TimePointSec(20)), 150);
        assert_eq!(
            c.spent(&key(1), eos, TimePointSec(10 + SPEND_WINDOW_SECS)),
            50
        );
        assert_eq!(
            c.spent(&key(1), eos, TimePointSec(20 + SPEND_WINDOW_SECS)),
            0
        );
        let wax: Symbol = "8,WAX".parse().unwrap();
        assert_eq!(c.spent(&key(1), wax, TimePointSec(20)), 0);
    }
}
