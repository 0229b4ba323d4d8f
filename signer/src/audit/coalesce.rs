//! [`RefusalGate`]: how many refusals of one principal the log writes one by one.
//!
//! Guards: a principal that sends refusable requests as fast as it can (one with no rights at
//! all passes mTLS and can) cannot grow the log at its own pace. Each principal has a bucket of
//! [`RefusalLimit::burst`] lines, refilled at [`RefusalLimit::per_minute`]; a refusal beyond it
//! is *held*: counted by kind and reason code, never dropped, and written as one `refusals` /
//! `coalesced` entry before that principal's next refusal that is written one by one, or by the
//! periodic flush (`AuditLog::flush_refusals`, every few seconds and at shutdown). Signatures,
//! failures, double-sign refusals (evidence) and every other decision are always written one
//! by one. Pure bookkeeping: time is
//! passed in, and the log does the writing.

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime};

use super::{AuditDecision, AuditKind, AuditRecord, time};

/// How many refusals of one principal are written one by one (`[audit.refusals]` in the
/// config).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefusalLimit {
    /// Written at once before holding starts (0 counts as 1).
    pub burst: u32,
    /// Written per minute after that.
    pub per_minute: u32,
}

impl Default for RefusalLimit {
    /// 60 at once, then one a second: far above an honest client's mistakes, and a flood adds
    /// at most ~1 KB/s per principal plus one summary line per flush.
    fn default() -> Self {
        RefusalLimit {
            burst: 60,
            per_minute: 60,
        }
    }
}

/// Principals tracked at once; beyond, refusals are accounted to one shared bucket.
const MAX_PRINCIPALS: usize = 4096;
/// The shared bucket's principal.
const OTHERS: &str = "<other principals>";
/// Distinct (kind, code) pairs a summary names; the rest are summed.
const MAX_PAIRS: usize = 16;

/// Refusals held for one principal.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Held {
    principal: String,
    count: u64,
    first: SystemTime,
    last: SystemTime,
    /// Count per (kind, reason code).
    by: BTreeMap<(&'static str, String), u64>,
    limit: RefusalLimit,
}

impl Held {
    /// How many refusals it counts.
    pub(super) fn count(&self) -> u64 {
        self.count
    }

    /// The entry that puts these refusals on record.
    pub(super) fn record(&self) -> AuditRecord {
        let at = |t| time::rfc3339_micros(t).unwrap_or_default();
        let mut pairs: Vec<_> = self.by.iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut parts: Vec<String> = pairs
            .iter()
            .take(MAX_PAIRS)
            .map(|((kind, code), n)| format!("{n} × {kind} {code}"))
            .collect();
        let rest: u64 = pairs.iter().skip(MAX_PAIRS).map(|(_, n)| **n).sum();
        if rest > 0 {
            parts.push(format!("{rest} × other"));
        }
        AuditRecord {
            reason: Some(format!(
                "{} refusals not written one by one (over {} at once or {} a minute) from {} to \
                 {}: {}",
                self.count,
                self.limit.burst,
                self.limit.per_minute,
                at(self.first),
                at(self.last),
                parts.join(", ")
            )),
            ..AuditRecord::new(
                self.principal.clone(),
                AuditKind::Refusals,
                AuditDecision::Coalesced,
            )
        }
    }

    /// Adds `other`'s counts (a summary that could not be written, put back).
    fn merge(&mut self, other: Held) {
        self.count = self.count.saturating_add(other.count);
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        for (k, n) in other.by {
            let e = self.by.entry(k).or_default();
            *e = e.saturating_add(n);
        }
    }
}

/// One principal's bucket and what it holds.
#[derive(Debug)]
struct Account {
    tokens: f64,
    refilled: Instant,
    held: Option<Held>,
}

/// What to do with a refusal.
#[derive(Debug, PartialEq)]
pub(super) enum Admit {
    /// Write it, after this principal's held refusals (if any).
    Write(Option<Held>),
    /// Held: counted, to be written in a summary.
    Hold,
}

/// Per-principal buckets (see the module docs).
#[derive(Debug)]
pub(super) struct RefusalGate {
    limit: RefusalLimit,
    accounts: HashMap<String, Account>,
}

impl RefusalGate {
    /// A gate with `limit`.
    pub(super) fn new(limit: RefusalLimit) -> Self {
        RefusalGate {
            limit: RefusalLimit {
                burst: limit.burst.max(1),
                ..limit
            },
            accounts: HashMap::new(),
        }
    }

    /// Whether `record` is one the gate meters: a refusal or a rejected approval, except a
    /// double-sign refusal, which is evidence (its key, digest and position are kept one by
    /// one; only a principal allowed to sign with the key gets that far).
    pub(super) fn meters(record: &AuditRecord) -> bool {
        matches!(
            record.decision,
            AuditDecision::Refused | AuditDecision::Rejected
        ) && record.signature.is_none()
            && record.intent.is_none()
            && reason_code(record) != "DOUBLE_SIGN"
    }

    /// Decides about one refusal of `record.principal` at `now` (`wall` for the summary).
    pub(super) fn admit(&mut self, record: &AuditRecord, now: Instant, wall: SystemTime) -> Admit {
        let limit = self.limit;
        let principal = self.account_name(&record.principal, now);
        let acct = self
            .accounts
            .entry(principal.clone())
            .or_insert_with(|| Account {
                tokens: f64::from(limit.burst),
                refilled: now,
                held: None,
            });
        let minutes = now.saturating_duration_since(acct.refilled).as_secs_f64() / 60.0;
        acct.tokens =
            (acct.tokens + minutes * f64::from(limit.per_minute)).min(f64::from(limit.burst));
        acct.refilled = now;
        if acct.tokens >= 1.0 {
            acct.tokens -= 1.0;
            return Admit::Write(acct.held.take());
        }
        let held = acct.held.get_or_insert_with(|| Held {
            principal,
            count: 0,
            first: wall,
            last: wall,
            by: BTreeMap::new(),
            limit,
        });
        held.count = held.count.saturating_add(1);
        held.last = held.last.max(wall);
        let by = held
            .by
            .entry((record.kind.as_str(), reason_code(record)))
            .or_default();
        *by = by.saturating_add(1);
        Admit::Hold
    }

    /// Takes every principal's held refusals (for the periodic flush).
    pub(super) fn take_held(&mut self) -> Vec<Held> {
        self.accounts
            .values_mut()
            .filter_map(|a| a.held.take())
            .collect()
    }

    /// Puts back a summary the log could not write, so its counts are not lost.
    pub(super) fn restore(&mut self, held: Held, now: Instant) {
        let acct = self
            .accounts
            .entry(held.principal.clone())
            .or_insert_with(|| Account {
                tokens: 0.0,
                refilled: now,
                held: None,
            });
        match &mut acct.held {
            Some(h) => h.merge(held),
            None => acct.held = Some(held),
        }
    }

    /// The account a principal's refusals go to: its own, or the shared one once
    /// [`MAX_PRINCIPALS`] are tracked (idle, full buckets are forgotten first).
    fn account_name(&mut self, principal: &str, now: Instant) -> String {
        if self.accounts.contains_key(principal) || self.accounts.len() < MAX_PRINCIPALS {
            return principal.to_owned();
        }
        let (burst, rate) = (
            f64::from(self.limit.burst),
            f64::from(self.limit.per_minute),
        );
        self.accounts.retain(|_, a| {
            let minutes = now.saturating_duration_since(a.refilled).as_secs_f64() / 60.0;
            a.held.is_some() || a.tokens + minutes * rate < burst
        });
        if self.accounts.len() < MAX_PRINCIPALS {
            principal.to_owned()
        } else {
            OTHERS.to_owned()
        }
    }
}

/// The refusal's reason code: the `CODE:` its reason starts with (`-` if none).
fn reason_code(record: &AuditRecord) -> String {
    let code = record
        .reason
        .as_deref()
        .and_then(|r| r.split_once(':'))
        .map(|(c, _)| c)
        .filter(|c| {
            !c.is_empty() && c.len() <= 32 && c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        });
    code.unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    fn refusal(principal: &str, code: &str) -> AuditRecord {
        AuditRecord {
            reason: Some(format!("{code}: no")),
            ..AuditRecord::new(principal, AuditKind::SignDigest, AuditDecision::Refused)
        }
    }

    #[test]
    fn a_burst_is_written_then_the_rest_is_held_and_counted() {
        let mut g = RefusalGate::new(RefusalLimit {
            burst: 3,
            per_minute: 60,
        });
        let (t0, w) = (Instant::now(), SystemTime::now());
        for _ in 0..3 {
            assert_eq!(
                g.admit(&refusal("a", "POLICY_DENIED"), t0, w),
                Admit::Write(None)
            );
        }
        for i in 0..10 {
            let code = if i < 7 { "POLICY_DENIED" } else { "MALFORMED" };
            assert_eq!(g.admit(&refusal("a", code), t0, w), Admit::Hold);
        }
        // Another principal has its own bucket.
        assert_eq!(
            g.admit(&refusal("b", "MALFORMED"), t0, w),
            Admit::Write(None)
        );
        // A second later one token is back: the held ten go first.
        let Admit::Write(Some(held)) = g.admit(
            &refusal("a", "POLICY_DENIED"),
            t0 + Duration::from_secs(1),
            w,
        ) else {
            panic!("expected the held refusals");
        };
        assert_eq!(held.count(), 10);
        let r = held.record();
        assert_eq!(r.principal, "a");
        assert_eq!(
            (r.kind, r.decision),
            (AuditKind::Refusals, AuditDecision::Coalesced)
        );
        let reason = r.reason.unwrap();
        assert!(
            reason.starts_with("10 refusals not written one by one"),
            "{reason}"
        );
        assert!(
            reason.contains("7 × sign_digest POLICY_DENIED, 3 × sign_digest MALFORMED"),
            "{reason}"
        );
        assert!(g.take_held().is_empty());
    }

    #[test]
    fn held_refusals_are_flushed_and_put_back_when_the_write_fails() {
        let mut g = RefusalGate::new(RefusalLimit {
            burst: 1,
            per_minute: 1,
        });
        let (t0, w) = (Instant::now(), SystemTime::now());
        g.admit(&refusal("a", "X"), t0, w);
        g.admit(&refusal("a", "X"), t0, w);
        g.admit(&refusal("a", "X"), t0, w);
        let mut held = g.take_held();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].count(), 2);
        g.restore(held.pop().unwrap(), t0);
        g.admit(&refusal("a", "Y"), t0, w);
        let held = g.take_held();
        assert_eq!(held[0].count(), 3);
        assert!(
            held[0]
                .record()
                .reason
                .unwrap()
                .contains("2 × sign_digest X, 1 × sign_digest Y")
        );
    }

    #[test]
    fn only_refusals_are_metered_and_odd_reasons_get_a_placeholder_code() {
        assert!(RefusalGate::meters(&refusal("a", "X")));
        assert!(!RefusalGate::meters(&refusal("a", "DOUBLE_SIGN")));
        let signed = AuditRecord::new("a", AuditKind::SignBlock, AuditDecision::Signed);
        assert!(!RefusalGate::meters(&signed));
        let failed = AuditRecord::new("a", AuditKind::SignBlock, AuditDecision::Failed);
        assert!(!RefusalGate::meters(&failed));
        let odd = AuditRecord {
            reason: Some("lower: case".into()),
            ..refusal("a", "X")
        };
        assert_eq!(reason_code(&odd), "-");
    }

    #[test]
    fn principals_beyond_the_cap_share_one_bucket() {
        let mut g = RefusalGate::new(RefusalLimit {
            burst: 1,
            per_minute: 0,
        });
        let (t0, w) = (Instant::now(), SystemTime::now());
        for i in 0..MAX_PRINCIPALS {
            g.admit(&refusal(&format!("p{i}"), "X"), t0, w);
        }
        assert_eq!(g.admit(&refusal("new-1", "X"), t0, w), Admit::Write(None));
        assert_eq!(g.admit(&refusal("new-2", "X"), t0, w), Admit::Hold);
        let held = g.take_held();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].record().principal, OTHERS);
    }
}
