//! Authorization: may this principal have this key sign this request?
//!
//! Guards: default deny. The [`Authorizer`] seam sees the decoded request (block position,
//! transaction, or a blind digest), so content rules can apply. Two implementations:
//! - [`PolicyAuthorizer`]: the `oryx-policy` engine over a policy file (`policy = "…"` in the
//!   config), with rate and spend counters, hot-reloadable (a bad file keeps the old policy);
//! - [`AllowList`]: the config's `[[allow]]` rules (principal → keys → request kinds), for
//!   setups without a policy file.

use std::sync::{Arc, Mutex, RwLock};

use oryx_policy::{Body, Charge, Context, MemoryCounters, Policy, Request, Verdict};
use oryx_proto::antelope::{PublicKey, TimePointSec};

use crate::config::{AllowRule, RequestKind};

/// What an authorizer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// Go ahead; record `charges` once the request is signed.
    Allow {
        /// Rate and spend to record after signing.
        charges: Vec<Charge>,
    },
    /// Refused, with the reason (naming the rule and, for budgets, the amounts).
    Deny(String),
    /// `threshold` of `approvers` must approve first.
    NeedsApprovals {
        /// Rate and spend to record once the approved request is signed.
        charges: Vec<Charge>,
        /// Approvals needed.
        threshold: u32,
        /// Who may approve.
        approvers: Vec<PublicKey>,
        /// The approver set's name.
        set: String,
    },
}

impl Authorization {
    /// Takes the charges it reserved (none for a denial), to hand to a [`ChargeHold`].
    pub fn take_charges(&mut self) -> Vec<Charge> {
        match self {
            Authorization::Allow { charges } | Authorization::NeedsApprovals { charges, .. } => {
                std::mem::take(charges)
            }
            Authorization::Deny(_) => Vec::new(),
        }
    }
}

/// The charges one authorization reserved, held until the request ends: [`ChargeHold::keep`]
/// makes them durable once a signature exists; dropped without it (a refusal, a replay, a
/// failure, a request stored for approvals), they are taken back.
#[must_use = "reserved charges are taken back when the hold is dropped"]
pub struct ChargeHold<'a> {
    authz: &'a dyn Authorizer,
    charges: Vec<Charge>,
    now: TimePointSec,
    kept: bool,
}

impl<'a> ChargeHold<'a> {
    /// Holds `charges`, reserved by `authz` at `now`.
    pub fn new(authz: &'a dyn Authorizer, charges: Vec<Charge>, now: TimePointSec) -> Self {
        ChargeHold {
            authz,
            charges,
            now,
            kept: false,
        }
    }

    /// A signature exists: the charges stay, durably. They stay even when that fails (the
    /// signature is then withheld): budgets err on the strict side.
    pub fn keep(mut self) -> Result<(), String> {
        self.kept = true;
        self.authz.signed(&self.charges, self.now)
    }
}

impl Drop for ChargeHold<'_> {
    fn drop(&mut self) {
        if !self.kept && !self.charges.is_empty() {
            self.authz.release(&self.charges, self.now);
        }
    }
}

/// Decides whether a request may proceed to the watermark and the key.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// The decision for one request. Its charges (rate hits, spend) are *reserved* in the same
    /// step as the check (atomically: concurrent requests see each other's reservations), and
    /// must end in [`Authorizer::signed`] or [`Authorizer::release`].
    fn authorize(&self, req: &Request) -> Authorization;

    /// Makes the reserved charges of a signed request durable: an `Err` means the record could
    /// not be kept, and the signature must be withheld.
    fn signed(&self, charges: &[Charge], now: TimePointSec) -> Result<(), String>;

    /// Takes back the reserved charges of a request that was not signed (`now`: the request's
    /// time, as given to [`Authorizer::authorize`]).
    fn release(&self, _charges: &[Charge], _now: TimePointSec) {}

    /// The version of the rules in force (recorded in every audit entry).
    fn version(&self) -> String;

    /// The keys the signer now holds and may use (after GenerateKey or RetireKey), for rules
    /// that look at them. The allow-list has none.
    fn set_held_keys(&self, _keys: Vec<PublicKey>) {}

    /// Whether some rule names `principal` (only such a principal may list the signer's keys
    /// and status: a certificate with no rights learns nothing).
    fn names_principal(&self, principal: &str) -> bool;

    /// What [`Authorizer::authorize`] would decide for `req` now, were `also_held` held too,
    /// reserving nothing (CheckTransaction). The charges it names are not reserved.
    fn check(&self, req: &Request, _also_held: &[PublicKey]) -> Authorization {
        let mut a = self.authorize(req);
        let charges = a.take_charges();
        self.release(&charges, req.now);
        a
    }
}

/// A policy decision as the pipeline acts on it.
fn authorization(decision: oryx_policy::Decision) -> Authorization {
    match decision.verdict {
        Verdict::Allow => Authorization::Allow {
            charges: decision.charges,
        },
        Verdict::Deny(reason) => Authorization::Deny(reason),
        Verdict::NeedsApprovals {
            threshold,
            approvers,
            set,
        } => Authorization::NeedsApprovals {
            charges: decision.charges,
            threshold,
            approvers,
            set,
        },
    }
}

/// The request kind of a policy body.
pub fn kind_of(body: &Body) -> RequestKind {
    match body {
        Body::Block { .. } => RequestKind::Block,
        Body::Transaction { .. } => RequestKind::Transaction,
        Body::Digest => RequestKind::Digest,
    }
}

/// The built-in allow-list from the config.
#[derive(Debug, Clone)]
pub struct AllowList {
    rules: Vec<AllowRule>,
    version: String,
}

impl AllowList {
    /// Builds the list; `version` identifies it in audit entries (e.g. a hash of the config).
    pub fn new(rules: Vec<AllowRule>, version: String) -> Self {
        AllowList { rules, version }
    }
}

impl Authorizer for AllowList {
    fn names_principal(&self, principal: &str) -> bool {
        self.rules.iter().any(|r| r.principal == principal)
    }

    fn authorize(&self, req: &Request) -> Authorization {
        let kind = kind_of(&req.body);
        let allowed = self.rules.iter().any(|r| {
            r.principal == req.principal && r.keys.contains(&req.key) && r.kinds.contains(&kind)
        });
        if allowed {
            Authorization::Allow {
                charges: Vec::new(),
            }
        } else {
            Authorization::Deny(format!(
                "no allow rule lets {:?} use {} for {} requests",
                req.principal,
                req.key,
                kind.as_str()
            ))
        }
    }

    fn signed(&self, _charges: &[Charge], _now: TimePointSec) -> Result<(), String> {
        Ok(())
    }

    fn version(&self) -> String {
        self.version.clone()
    }
}

/// The policy engine with its counters.
///
/// Charges are reserved in memory when a request is authorized (under the same lock as the
/// check, so concurrent requests cannot all pass one budget) and taken back if it is not signed.
/// Counters are journaled: every spend (daily budgets) and every rate-limit hit is appended to a
/// JSON-lines file and fdatasynced before the signature is released, and what is still inside
/// its window is replayed at start, so a restart resets neither a budget nor a rate limit. The
/// replay also compacts the file to the lines it kept.
#[derive(Debug)]
pub struct PolicyAuthorizer {
    policy: RwLock<Arc<Policy>>,
    counters: Mutex<MemoryCounters>,
    context: RwLock<Arc<Context>>,
    journal: Option<Mutex<std::fs::File>>,
    journal_path: Option<std::path::PathBuf>,
}

/// How far back the journal is replayed (the budget window, plus a margin).
const REPLAY_SECS: u32 = oryx_policy::SPEND_WINDOW_SECS + 3600;

impl PolicyAuthorizer {
    /// Uses `policy`; `held_keys` are the keys this signer holds (for `regproducer` rules).
    /// Counters are in memory only; see [`PolicyAuthorizer::with_journal`].
    pub fn new(policy: Policy, held_keys: Vec<PublicKey>) -> Self {
        PolicyAuthorizer {
            policy: RwLock::new(Arc::new(policy)),
            counters: Mutex::new(MemoryCounters::new()),
            context: RwLock::new(Arc::new(Context { held_keys })),
            journal: None,
            journal_path: None,
        }
    }

    /// Keeps spends and rate-limit hits in `path` (created if missing), replaying from it now
    /// what is still inside its window, and rewriting it (atomically) to just those lines when
    /// it held more.
    pub fn with_journal(
        mut self,
        path: &std::path::Path,
        now: TimePointSec,
    ) -> Result<Self, String> {
        let err = |e: std::io::Error| format!("spend journal {}: {e}", path.display());
        if let Ok(text) = std::fs::read_to_string(path) {
            // A last line without its newline is a write a crash cut short: it was never synced,
            // so no signature was released for it.
            let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
            let mut counters = self
                .counters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut kept = String::new();
            for (i, line) in complete.lines().enumerate() {
                let (at, charge) = parse_charge(line)
                    .map_err(|e| format!("spend journal {} line {}: {e}", path.display(), i + 1))?;
                let window = match &charge {
                    Charge::Request { window_secs, .. } => *window_secs,
                    Charge::Spend { .. } => REPLAY_SECS,
                };
                if at.0.saturating_add(window) >= now.0 {
                    counters.record(&[charge], at);
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
            if kept.len() < text.len() {
                oryx_proto::durable::write_atomic(path, kept.as_bytes(), 0o600)
                    .map_err(|e| err(e.source))?;
            }
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(path).map_err(err)?;
        self.journal = Some(Mutex::new(file));
        self.journal_path = Some(path.to_path_buf());
        Ok(self)
    }

    /// Replaces the policy (after the caller parsed the new one successfully).
    pub fn replace(&self, policy: Policy) {
        *self
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
    }

    fn current(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Authorizer for PolicyAuthorizer {
    fn names_principal(&self, principal: &str) -> bool {
        self.current()
            .rules()
            .iter()
            .any(|r| r.names_principal(principal))
    }

    fn check(&self, req: &Request, also_held: &[PublicKey]) -> Authorization {
        let policy = self.current();
        let mut context = Context::clone(
            &self
                .context
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        context.held_keys.extend_from_slice(also_held);
        let d = {
            let counters = self
                .counters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            policy.evaluate(req, &context, &*counters)
        };
        authorization(d)
    }

    fn authorize(&self, req: &Request) -> Authorization {
        let policy = self.current();
        let context = self
            .context
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // Checked and charged under one lock: a budget or rate limit is never passed by
        // requests that each saw it before the others were charged.
        let decision = {
            let mut counters = self
                .counters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let d = policy.evaluate(req, &context, &*counters);
            if !matches!(d.verdict, Verdict::Deny(_)) {
                counters.record(&d.charges, req.now);
            }
            d
        };
        authorization(decision)
    }

    fn signed(&self, charges: &[Charge], now: TimePointSec) -> Result<(), String> {
        if let (Some(journal), false) = (&self.journal, charges.is_empty()) {
            use std::io::Write as _;
            let lines: String = charges.iter().map(|c| charge_line(c, now)).collect();
            let mut f = journal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f.write_all(lines.as_bytes())
                .and_then(|()| f.sync_data())
                .map_err(|e| {
                    let path = self
                        .journal_path
                        .as_deref()
                        .unwrap_or(std::path::Path::new(""));
                    format!("spend journal {}: {e}", path.display())
                })?;
        }
        Ok(())
    }

    fn release(&self, charges: &[Charge], now: TimePointSec) {
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .release(charges, now);
    }

    fn version(&self) -> String {
        self.current().version().to_string()
    }

    fn set_held_keys(&self, keys: Vec<PublicKey>) {
        *self
            .context
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(Context { held_keys: keys });
    }
}

/// One journal line for a charge.
fn charge_line(charge: &Charge, now: TimePointSec) -> String {
    let v = match charge {
        Charge::Spend { rule, key, amount } => {
            serde_json::json!({"time": now.0, "rule": rule, "key": key.to_string(), "amount": amount.to_string()})
        }
        Charge::Request {
            rule,
            principal,
            key,
            window_secs,
        } => {
            serde_json::json!({"time": now.0, "rule": rule, "principal": principal, "key": key.to_string(), "window_secs": window_secs})
        }
    };
    format!("{v}\n")
}

/// A journal line: a spend (`amount`) or a rate-limit hit (`principal`, `window_secs`).
fn parse_charge(line: &str) -> Result<(TimePointSec, Charge), String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let field = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("missing {k}"))
    };
    let time = v
        .get("time")
        .and_then(serde_json::Value::as_u64)
        .and_then(|t| u32::try_from(t).ok())
        .ok_or("missing time")?;
    let key = PublicKey::parse(field("key")?).map_err(|e| e.to_string())?;
    if let Some(window) = v.get("window_secs") {
        let window_secs = window
            .as_u64()
            .and_then(|w| u32::try_from(w).ok())
            .ok_or("window_secs is not a number of seconds")?;
        return Ok((
            TimePointSec(time),
            Charge::Request {
                rule: field("rule")?.to_string(),
                principal: field("principal")?.to_string(),
                key,
                window_secs,
            },
        ));
    }
    let amount = field("amount")?
        .parse()
        .map_err(|e: oryx_proto::Error| e.to_string())?;
    Ok((
        TimePointSec(time),
        Charge::Spend {
            rule: field("rule")?.to_string(),
            key,
            amount,
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use oryx_proto::antelope::{Checksum256, Name};

    fn req(principal: &str, key: PublicKey, body: Body) -> Request {
        Request {
            principal: principal.into(),
            key,
            chain_id: Checksum256::default(),
            now: TimePointSec(0),
            body,
        }
    }

    #[test]
    fn the_spend_journal_replays_the_last_day_and_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spend.jsonl");
        let key =
            PublicKey::parse("PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63").unwrap();
        let policy = || Policy::parse("version = \"v\"\n").unwrap();
        let spend = |amount: &str| Charge::Spend {
            rule: "r".into(),
            key,
            amount: amount.parse().unwrap(),
        };
        let now = TimePointSec(1_000_000);
        let a = PolicyAuthorizer::new(policy(), vec![])
            .with_journal(&path, now)
            .unwrap();
        a.signed(&[spend("1.0000 EOS")], TimePointSec(now.0 - 100_000))
            .unwrap(); // older than a day
        a.signed(&[spend("2.0000 EOS")], now).unwrap();
        drop(a);
        // A crash mid-write leaves a partial line: ignored.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"time\": 1000000, \"rule\": \"r\"");
        std::fs::write(&path, &text).unwrap();
        let b = PolicyAuthorizer::new(policy(), vec![])
            .with_journal(&path, now)
            .unwrap();
        let symbol = "1.0000 EOS"
            .parse::<oryx_proto::antelope::Asset>()
            .unwrap()
            .symbol;
        let spent = oryx_policy::Counters::spent(&*b.counters.lock().unwrap(), &key, symbol, now);
        assert_eq!(spent, 20_000, "only the last day's 2.0000 EOS counts");
        // The replay compacted the file: the old spend and the torn tail are gone, so the next
        // line starts on a line of its own.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.ends_with('\n'));
        b.signed(&[spend("3.0000 EOS")], now).unwrap();
        drop(b);
        let c = PolicyAuthorizer::new(policy(), vec![])
            .with_journal(&path, now)
            .unwrap();
        let spent = oryx_policy::Counters::spent(&*c.counters.lock().unwrap(), &key, symbol, now);
        assert_eq!(spent, 50_000);
        drop(c);
        // A damaged complete line refuses to start, naming the line.
        std::fs::write(&path, "not json\n").unwrap();
        let e = PolicyAuthorizer::new(policy(), vec![])
            .with_journal(&path, now)
            .unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn rate_limit_hits_survive_a_restart_for_their_window_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spend.jsonl");
        let key =
            PublicKey::parse("PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63").unwrap();
        let policy = || Policy::parse("version = \"v\"\n").unwrap();
        let hit = |window_secs| Charge::Request {
            rule: "r".into(),
            principal: "node1".into(),
            key,
            window_secs,
        };
        let now = TimePointSec(1_000_000);
        let a = PolicyAuthorizer::new(policy(), vec![])
            .with_journal(&path, now)
            .unwrap();
        a.signed(&[hit(60)], TimePointSec(now.0 - 30)).unwrap();
        a.signed(&[hit(60)], TimePointSec(now.0 - 10)).unwrap();
        a.signed(&[hit(3600)], TimePointSec(now.0 - 120)).unwrap();
        drop(a);
        let count = |a: &PolicyAuthorizer, window, at: TimePointSec| {
            oryx_policy::Counters::requests(
                &*a.counters.lock().unwrap(),
                "r",
                "node1",
                &key,
                window,
                at,
            )
        };
        // Restarted now: all three hits are still inside their windows.
        let b = PolicyAuthorizer::new(policy(), vec![])
            .with_journal(&path, now)
            .unwrap();
        assert_eq!(count(&b, 60, now), 2);
        assert_eq!(count(&b, 3600, now), 3);
        drop(b);
        // Restarted 100 s later: the 60 s hits have left their window (and the file).
        let later = TimePointSec(now.0 + 100);
        let c = PolicyAuthorizer::new(policy(), vec![])
            .with_journal(&path, later)
            .unwrap();
        assert_eq!(count(&c, 60, later), 0);
        assert_eq!(count(&c, 3600, later), 1);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn allow_list_is_default_deny_and_exact() {
        let key =
            PublicKey::parse("PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63").unwrap();
        let other =
            PublicKey::parse("PUB_K1_5P52UyPoYL7vMiSREPvqxh6WebuMAunCMK4w53J7Gu6zrTunYm").unwrap();
        let block = || Body::Block {
            block_num: 1,
            producer: Name::default(),
        };
        let empty = AllowList::new(vec![], "v0".into());
        assert!(matches!(
            empty.authorize(&req("node1", key, block())),
            Authorization::Deny(_)
        ));
        let list = AllowList::new(
            vec![AllowRule {
                principal: "node1".into(),
                keys: vec![key],
                kinds: vec![RequestKind::Block],
            }],
            "v1".into(),
        );
        assert!(matches!(
            list.authorize(&req("node1", key, block())),
            Authorization::Allow { .. }
        ));
        assert!(matches!(
            list.authorize(&req("node2", key, block())),
            Authorization::Deny(_)
        ));
        assert!(matches!(
            list.authorize(&req("node1", other, block())),
            Authorization::Deny(_)
        ));
        assert!(matches!(
            list.authorize(&req("node1", key, Body::Digest)),
            Authorization::Deny(_)
        ));
    }

    /// Checked and charged atomically: 16 concurrent 10 EOS transfers against a 10 EOS daily
    /// budget, or against a rate of 1 per hour, each "signing" for 20 ms between its check and
    /// its charge, get exactly one go-ahead (before, 7 of 16 and 3 of 16 were signed). A request
    /// that ends without a signature gives its reservation back.
    #[test]
    fn concurrent_requests_cannot_all_pass_one_budget_or_rate_limit() {
        use std::sync::{Arc, Barrier};
        let key =
            PublicKey::parse("PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63").unwrap();
        let transfer = move |n: u16| {
            let trx: oryx_proto::antelope::transaction::Transaction =
                serde_json::from_value(serde_json::json!({
                    "expiration": "2030-01-01T00:00:00", "ref_block_num": n, "ref_block_prefix": 2,
                    "actions": [{"account": "eosio.token", "name": "transfer",
                        "authorization": [{"actor": "oryxcustody1", "permission": "active"}],
                        "data": {"from": "oryxcustody1", "to": "exchangeacct",
                                 "quantity": "10.0000 EOS", "memo": ""}}]
                }))
                .unwrap();
            Request {
                now: TimePointSec(1_900_000_000),
                ..req(
                    "ops",
                    key,
                    Body::Transaction {
                        trx,
                        has_context_free_data: false,
                        msig_proposals: vec![],
                    },
                )
            }
        };
        for limits in [
            "transfer = { daily_budget = \"10.0000 EOS\" }",
            "rate = { max = 1, per_seconds = 3600 }",
        ] {
            let policy = Policy::parse(&format!(
                "version = \"v\"\n[[rule]]\nname = \"payouts\"\nprincipals = [\"ops\"]\n\
                 keys = [\"{key}\"]\nkinds = [\"transaction\"]\n\
                 actions = [\"eosio.token::transfer@oryxcustody1@active\"]\n{limits}\n"
            ))
            .unwrap();
            let a = Arc::new(PolicyAuthorizer::new(policy, vec![]));
            // A request that is refused later (or replayed) gives its reservation back.
            {
                let r = transfer(0);
                let mut auth = a.authorize(&r);
                assert!(matches!(auth, Authorization::Allow { .. }), "{limits}");
                let _dropped = ChargeHold::new(a.as_ref(), auth.take_charges(), r.now);
            }
            let barrier = Arc::new(Barrier::new(16));
            let signed: usize = (1..=16u16)
                .map(|n| {
                    let (a, barrier) = (a.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let r = transfer(n);
                        barrier.wait();
                        let mut auth = a.authorize(&r);
                        let hold = ChargeHold::new(a.as_ref(), auth.take_charges(), r.now);
                        match auth {
                            Authorization::Allow { .. } => {
                                std::thread::sleep(std::time::Duration::from_millis(20));
                                hold.keep().unwrap();
                                1
                            }
                            _ => 0,
                        }
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .sum();
            assert_eq!(signed, 1, "{limits}");
        }
    }
}
