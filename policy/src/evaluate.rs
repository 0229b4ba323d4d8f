//! Evaluation: the first rule whose scope matches decides; every constraint of that rule must
//! pass; otherwise the request is denied.
//!
//! Guards: default deny, and "a rule never allows what it does not name". Nothing here reads a
//! clock, a file or a random source: the same policy, request, context and counters always give
//! the same decision, which is what `oryx-signer policy explain` replays.

use std::collections::BTreeMap;
use std::fmt;

use oryx_proto::antelope::actions::msig::{is_approve, pinned_proposals};
use oryx_proto::antelope::chain::chain_name;
use oryx_proto::antelope::transaction::{Action, Transaction};
use oryx_proto::antelope::{Asset, Checksum256, Pack, PublicKey, Symbol, SystemAction};

use crate::counters::{Charge, Counters};
use crate::pattern::ActionPattern;
use crate::policy::{ContextFree, Extensions, Policy, Rule};
use crate::request::{Body, Context, Request};

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allow, deny or wait for approvals.
    pub verdict: Verdict,
    /// The rule that decided; `None` when no rule's scope matched (default deny).
    pub rule: Option<String>,
    /// The version of the policy that decided.
    pub policy_version: String,
    /// What to record (with [`crate::MemoryCounters::record`] or the caller's own store) if, and
    /// only if, the request is signed. Empty for a denial.
    pub charges: Vec<Charge>,
}

/// Allow, deny or wait for approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Sign.
    Allow,
    /// Refuse, with a reason that names the rule (or says that no rule matched).
    Deny(String),
    /// Every constraint passed; sign only once `threshold` of `approvers` approved this exact
    /// request.
    NeedsApprovals {
        /// Approvals needed.
        threshold: u32,
        /// Keys whose approvals count.
        approvers: Vec<PublicKey>,
        /// Name of the approver set.
        set: String,
    },
}

impl Verdict {
    /// Whether this is [`Verdict::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow)
    }
}

/// How one rule fared in [`Policy::explain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTrace {
    /// The rule.
    pub rule: String,
    /// Its line in the policy file.
    pub line: usize,
    /// Whether its scope matched.
    pub scope: Scope,
    /// For the deciding rule: the constraint that decided (`"all constraints passed"` or
    /// `"approvals"` when none refused).
    pub decided_by: Option<String>,
}

/// Whether a rule's scope (principal, key, kind, chain) matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// It matched: this rule decided.
    Matched,
    /// It did not; the first part that differed.
    Missed(String),
    /// An earlier rule decided; this one was not considered.
    NotReached,
}

/// Every rule considered for one request, and the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// One entry per rule, in file order.
    pub rules: Vec<RuleTrace>,
    /// The decision, as [`Policy::evaluate`] returns it.
    pub decision: Decision,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "policy version {}", self.decision.policy_version)?;
        for t in &self.rules {
            match &t.scope {
                Scope::Matched => writeln!(
                    f,
                    "  rule {:?} (line {}): scope matched; decided by {}",
                    t.rule,
                    t.line,
                    t.decided_by.as_deref().unwrap_or("?")
                )?,
                Scope::Missed(why) => {
                    writeln!(f, "  rule {:?} (line {}): skipped: {why}", t.rule, t.line)?;
                }
                Scope::NotReached => {
                    writeln!(f, "  rule {:?} (line {}): not reached", t.rule, t.line)?;
                }
            }
        }
        match &self.decision.verdict {
            Verdict::Allow => write!(f, "verdict: allow"),
            Verdict::Deny(reason) => write!(f, "verdict: deny: {reason}"),
            Verdict::NeedsApprovals {
                threshold,
                approvers,
                set,
            } => write!(
                f,
                "verdict: needs {threshold} of {} approvals from set {set:?}",
                approvers.len()
            ),
        }
    }
}

/// A constraint that refused, and why.
struct Refusal {
    constraint: &'static str,
    reason: String,
}

fn refuse(constraint: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        constraint,
        reason: reason.into(),
    }
}

fn chain_label(id: &Checksum256) -> String {
    chain_name(id).map_or_else(|| id.to_string(), str::to_string)
}

impl Policy {
    /// Decides one request. Pure: reads only its arguments.
    pub fn evaluate(&self, req: &Request, ctx: &Context, counters: &dyn Counters) -> Decision {
        self.explain(req, ctx, counters).decision
    }

    /// Decides one request and says how: each rule, whether its scope matched, and which
    /// constraint decided.
    pub fn explain(&self, req: &Request, ctx: &Context, counters: &dyn Counters) -> Explanation {
        let mut traces = Vec::with_capacity(self.rules.len());
        let mut decision = None;
        for rule in &self.rules {
            if decision.is_some() {
                traces.push(RuleTrace {
                    rule: rule.name.clone(),
                    line: rule.line,
                    scope: Scope::NotReached,
                    decided_by: None,
                });
                continue;
            }
            if let Err(why) = scope(rule, req) {
                traces.push(RuleTrace {
                    rule: rule.name.clone(),
                    line: rule.line,
                    scope: Scope::Missed(why),
                    decided_by: None,
                });
                continue;
            }
            let (verdict, charges, decided_by) = match check(rule, req, ctx, counters) {
                Err(r) => (
                    Verdict::Deny(format!("rule {}: {}", rule.name, r.reason)),
                    Vec::new(),
                    r.constraint.to_string(),
                ),
                Ok(charges) => match &rule.approvals {
                    Some(a) => (
                        Verdict::NeedsApprovals {
                            threshold: a.threshold,
                            approvers: a.approvers.clone(),
                            set: a.set.clone(),
                        },
                        charges,
                        "approvals".to_string(),
                    ),
                    None => (
                        Verdict::Allow,
                        charges,
                        "all constraints passed".to_string(),
                    ),
                },
            };
            traces.push(RuleTrace {
                rule: rule.name.clone(),
                line: rule.line,
                scope: Scope::Matched,
                decided_by: Some(decided_by),
            });
            decision = Some(Decision {
                verdict,
                rule: Some(rule.name.clone()),
                policy_version: self.version.clone(),
                charges,
            });
        }
        let decision = decision.unwrap_or_else(|| Decision {
            verdict: Verdict::Deny(format!(
                "no rule lets principal {:?} use {} for {} requests on chain {} (default deny)",
                req.principal,
                req.key,
                req.body.kind(),
                chain_label(&req.chain_id)
            )),
            rule: None,
            policy_version: self.version.clone(),
            charges: Vec::new(),
        });
        Explanation {
            rules: traces,
            decision,
        }
    }
}

/// `Ok` when the rule's scope names the request's principal, key, kind and chain.
fn scope(rule: &Rule, req: &Request) -> Result<(), String> {
    if !rule.names_principal(&req.principal) {
        return Err(format!(
            "principal {:?} is not in principals",
            req.principal
        ));
    }
    if !rule.names_key(&req.key) {
        return Err(format!("key {} is not in keys", req.key));
    }
    let kind = req.body.kind();
    if !rule.kinds.contains(&kind) {
        return Err(format!("kind {kind} is not in kinds"));
    }
    if !rule.names_chain(&req.chain_id) {
        return Err(format!(
            "chain {} is not in chains",
            chain_label(&req.chain_id)
        ));
    }
    Ok(())
}

/// Every constraint of a rule whose scope matched; the charges to record on success.
fn check(
    rule: &Rule,
    req: &Request,
    ctx: &Context,
    counters: &dyn Counters,
) -> Result<Vec<Charge>, Refusal> {
    let mut charges = Vec::new();
    if let Body::Transaction {
        trx,
        has_context_free_data,
        msig_proposals,
    } = &req.body
    {
        check_transaction(
            rule,
            req,
            (trx, msig_proposals),
            *has_context_free_data,
            ctx,
            counters,
            &mut charges,
        )?;
    }
    if let Some(rate) = rule.rate {
        let used = counters.requests(
            &rule.name,
            &req.principal,
            &req.key,
            rate.per_seconds,
            req.now,
        );
        if used >= rate.max {
            return Err(refuse(
                "rate",
                format!(
                    "rate limit of {} requests per {} s for principal {:?} and key {} reached \
                     ({used} signed in the window)",
                    rate.max, rate.per_seconds, req.principal, req.key
                ),
            ));
        }
        charges.push(Charge::Request {
            rule: rule.name.clone(),
            principal: req.principal.clone(),
            key: req.key,
            window_secs: rate.per_seconds,
        });
    }
    Ok(charges)
}

fn describe(action: &Action, context_free: bool, index: usize) -> String {
    let auth: Vec<String> = action
        .authorization
        .iter()
        .map(ToString::to_string)
        .collect();
    format!(
        "{}action #{index} {}::{}{}",
        if context_free { "context-free " } else { "" },
        action.account,
        action.name,
        if auth.is_empty() {
            String::new()
        } else {
            format!(" ({})", auth.join(", "))
        }
    )
}

fn check_transaction(
    rule: &Rule,
    req: &Request,
    (trx, proposals): (&Transaction, &[Transaction]),
    has_context_free_data: bool,
    ctx: &Context,
    counters: &dyn Counters,
    charges: &mut Vec<Charge>,
) -> Result<(), Refusal> {
    if !trx.transaction_extensions.is_empty() && rule.transaction_extensions == Extensions::Deny {
        return Err(refuse(
            "transaction_extensions",
            format!(
                "the transaction carries {} extension(s) and the rule does not allow transaction extensions",
                trx.transaction_extensions.len()
            ),
        ));
    }
    if rule.context_free_actions == ContextFree::Deny {
        if !trx.context_free_actions.is_empty() {
            return Err(refuse(
                "context_free_actions",
                format!(
                    "the transaction has {} context-free action(s) and the rule denies them",
                    trx.context_free_actions.len()
                ),
            ));
        }
        if has_context_free_data {
            return Err(refuse(
                "context_free_actions",
                "the transaction has context-free data and the rule denies context-free actions",
            ));
        }
    }
    if let Some(max) = rule.max_expiration_seconds {
        let ahead = i64::from(trx.expiration.0) - i64::from(req.now.0);
        if ahead <= 0 {
            return Err(refuse(
                "max_expiration_seconds",
                format!(
                    "the transaction expires at {}, not after now ({})",
                    trx.expiration, req.now
                ),
            ));
        }
        if ahead > i64::from(max) {
            return Err(refuse(
                "max_expiration_seconds",
                format!(
                    "the transaction expires {ahead} s from now ({}), more than the {max} s allowed",
                    trx.expiration
                ),
            ));
        }
    }
    if trx.actions.is_empty() {
        return Err(refuse("actions", "the transaction has no actions"));
    }

    let mut transfers: BTreeMap<Symbol, i128> = BTreeMap::new();
    let all = trx
        .context_free_actions
        .iter()
        .enumerate()
        .map(|(i, a)| (a, true, i))
        .chain(trx.actions.iter().enumerate().map(|(i, a)| (a, false, i)));
    for (action, context_free, index) in all {
        if context_free && !action.authorization.is_empty() {
            return Err(refuse(
                "context_free_actions",
                format!(
                    "{}: a context-free action cannot carry an authorization (the chain rejects it)",
                    describe(action, true, index)
                ),
            ));
        }
        check_action(rule, action, ctx, &mut transfers).map_err(|r| {
            refuse(
                r.constraint,
                format!("{}: {}", describe(action, context_free, index), r.reason),
            )
        })?;
    }
    // The proposals the transaction's eosio.msig approves consent to: their actions must match
    // `msig_proposed_actions`, and their transfers are held to the rule's recipients, per-
    // transaction limit and budget like direct ones (the budget is charged when the approve is
    // signed: approving is consenting to the spend).
    if let Some(patterns) = &rule.msig_proposed_actions {
        check_msig_proposals(patterns, trx, proposals)?;
    }
    for (p, proposal) in proposals.iter().enumerate() {
        for (i, action) in proposal.actions.iter().enumerate() {
            if let Some(Ok(SystemAction::Transfer(t))) = action.system_action() {
                check_transfer(rule, &t, &mut transfers).map_err(|r| {
                    refuse(
                        r.constraint,
                        format!(
                            "proposal {p} (approved by this transaction), {}: {}",
                            describe(action, false, i),
                            r.reason
                        ),
                    )
                })?;
            }
        }
    }

    if let Some(limits) = &rule.transfer {
        for (&symbol, &total) in &transfers {
            if let Some(limit_symbol) = limits.symbol()
                && symbol != limit_symbol
            {
                return Err(refuse(
                    "transfer",
                    format!(
                        "the transaction transfers {} but the rule's transfer limits are in {limit_symbol}",
                        symbol
                    ),
                ));
            }
            let requested = show(total, symbol);
            let included = if proposals.is_empty() {
                ""
            } else {
                " (the proposals it approves included)"
            };
            if let Some(max) = limits.max_per_tx
                && total > i128::from(max.amount)
            {
                return Err(refuse(
                    "transfer.max_per_tx",
                    format!(
                        "the transaction transfers {requested}{included}, more than the {max} allowed per transaction"
                    ),
                ));
            }
            if let Some(budget) = limits.daily_budget {
                let spent = counters.spent(&req.key, symbol, req.now);
                if i128::from(spent) + total > i128::from(budget.amount) {
                    return Err(refuse(
                        "transfer.daily_budget",
                        format!(
                            "daily budget of {budget} for {} would be exceeded: spent {} in the last 24 h + {requested} requested{included}",
                            req.key,
                            show(i128::from(spent), symbol)
                        ),
                    ));
                }
                // Within the budget, so within ±2^62.
                let amount = Asset {
                    amount: i64::try_from(total).unwrap_or(i64::MAX),
                    symbol,
                };
                charges.push(Charge::Spend {
                    rule: rule.name.clone(),
                    key: req.key,
                    amount,
                });
            }
        }
    }
    Ok(())
}

/// `msig_proposed_actions`: the proposals the transaction's approves pin must be the ones given
/// (checked again here, so the policy never rests on the caller's pairing), and every action of
/// every one must match a pattern.
fn check_msig_proposals(
    patterns: &[ActionPattern],
    trx: &Transaction,
    proposals: &[Transaction],
) -> Result<(), Refusal> {
    let packed: Vec<Vec<u8>> = proposals.iter().map(Pack::packed).collect();
    pinned_proposals(trx, &packed)
        .map_err(|e| refuse("msig_proposed_actions", format!("approved proposals: {e}")))?;
    let approves = trx
        .actions
        .iter()
        .enumerate()
        .filter(|(_, a)| is_approve(a));
    for ((index, approve), proposal) in approves.zip(proposals) {
        let proposed = proposal
            .context_free_actions
            .iter()
            .enumerate()
            .map(|(i, a)| (a, true, i))
            .chain(
                proposal
                    .actions
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (a, false, i)),
            );
        for (action, context_free, i) in proposed {
            if !patterns.iter().any(|p| p.allows(action)) {
                return Err(refuse(
                    "msig_proposed_actions",
                    format!(
                        "{} approves a proposal whose {} is not allowed by msig_proposed_actions",
                        describe(approve, false, index),
                        describe(action, context_free, i)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// An amount for a message; totals beyond an asset's range are shown saturated.
fn show(amount: i128, symbol: Symbol) -> Asset {
    Asset {
        amount: i64::try_from(amount).unwrap_or(i64::MAX),
        symbol,
    }
}

/// One transfer (direct, or in an approved proposal): positive, to an allowed recipient;
/// added to the per-symbol totals the limits and budget are checked on.
fn check_transfer(
    rule: &Rule,
    t: &oryx_proto::antelope::actions::Transfer,
    transfers: &mut BTreeMap<Symbol, i128>,
) -> Result<(), Refusal> {
    if t.quantity.amount <= 0 {
        return Err(refuse(
            "transfer",
            format!("quantity {} is not positive", t.quantity),
        ));
    }
    if let Some(recipients) = rule.transfer.as_ref().and_then(|l| l.recipients.as_ref())
        && !recipients.contains(&t.to)
    {
        return Err(refuse(
            "transfer.recipients",
            format!("recipient {} is not in transfer.recipients", t.to),
        ));
    }
    *transfers.entry(t.quantity.symbol).or_default() += i128::from(t.quantity.amount);
    Ok(())
}

/// One action (or context-free action) against the rule.
fn check_action(
    rule: &Rule,
    action: &Action,
    ctx: &Context,
    transfers: &mut BTreeMap<Symbol, i128>,
) -> Result<(), Refusal> {
    if let Some(p) = rule.deny_actions.iter().find(|p| p.denies(action)) {
        return Err(refuse(
            "deny_actions",
            format!("matches deny_actions pattern {p}"),
        ));
    }
    if let Some(only) = rule.only
        && (action.account, action.name) != only.action()
    {
        let (c, a) = only.action();
        return Err(refuse("only", format!("the rule may only sign {c}::{a}")));
    }
    if !rule.actions.is_empty() && !rule.actions.iter().any(|p| p.allows(action)) {
        return Err(refuse(
            "actions",
            "not allowed by any actions pattern of the rule",
        ));
    }
    let decoded = match action.system_action() {
        None if rule.allow_unknown_action_data => return Ok(()),
        None => {
            return Err(refuse(
                "allow_unknown_action_data",
                "not a system action Oryx decodes, and the rule does not set allow_unknown_action_data",
            ));
        }
        Some(Err(e)) => {
            return Err(refuse("action data", format!("malformed action data: {e}")));
        }
        Some(Ok(a)) => a,
    };
    decoded
        .validate()
        .map_err(|e| refuse("action data", format!("the chain would reject it: {e}")))?;
    match &decoded {
        SystemAction::Transfer(t) => check_transfer(rule, t, transfers)?,
        SystemAction::UpdateAuth(u) => {
            let Some(limits) = &rule.updateauth else {
                return Err(refuse(
                    "updateauth",
                    "the rule has no updateauth table naming the accounts and permissions it may change",
                ));
            };
            if !limits.accounts.contains(&u.account) {
                return Err(refuse(
                    "updateauth",
                    format!("account {} is not in updateauth.accounts", u.account),
                ));
            }
            if !limits.permissions.contains(&u.permission) {
                return Err(refuse(
                    "updateauth",
                    format!(
                        "permission {} is not in updateauth.permissions",
                        u.permission
                    ),
                ));
            }
        }
        SystemAction::LinkAuth(l) => link(rule, l.account)?,
        SystemAction::UnlinkAuth(l) => link(rule, l.account)?,
        SystemAction::RegProducer(p) => held(rule, ctx, std::slice::from_ref(&p.producer_key))?,
        SystemAction::RegProducer2(p) => {
            let oryx_proto::antelope::actions::BlockSigningAuthority::V0(auth) =
                &p.producer_authority;
            let keys: Vec<PublicKey> = auth.keys.iter().map(|k| k.key).collect();
            held(rule, ctx, &keys)?;
        }
        _ => {}
    }
    Ok(())
}

fn link(rule: &Rule, account: oryx_proto::antelope::Name) -> Result<(), Refusal> {
    let Some(limits) = &rule.linkauth else {
        return Err(refuse(
            "linkauth",
            "the rule has no linkauth table naming the accounts it may change",
        ));
    };
    if limits.accounts.contains(&account) {
        Ok(())
    } else {
        Err(refuse(
            "linkauth",
            format!("account {account} is not in linkauth.accounts"),
        ))
    }
}

fn held(rule: &Rule, ctx: &Context, keys: &[PublicKey]) -> Result<(), Refusal> {
    if rule.regproducer.is_some_and(|r| r.held_keys_only)
        && let Some(k) = keys.iter().find(|k| !ctx.held_keys.contains(k))
    {
        return Err(refuse(
            "regproducer.held_keys_only",
            format!("producer key {k} is not held by this signer"),
        ));
    }
    Ok(())
}
