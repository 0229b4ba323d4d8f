//! Lints: policies that are valid but probably not what the operator meant.
//!
//! Guards: the operator → config boundary. A wildcard, an owner or permission change that needs
//! no approvals, an approver set with no spare approver, a key that signs both blocks and
//! transactions, an `eosio.msig::approve` that may approve any proposal (no
//! `msig_proposed_actions`), or a rule that can never be reached is reported by
//! `oryx-signer policy check` before the policy goes live.

use std::fmt;

use oryx_proto::antelope::Name;

use crate::pattern::{ActionPattern, NamePattern};
use crate::policy::{KeyPattern, Policy, Rule};
use crate::request::Kind;

/// What a lint is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LintKind {
    /// `*` in principals, keys or actions.
    Wildcard,
    /// `updateauth`/`linkauth` (permission changes) allowed without approvals.
    PermissionChangeWithoutApprovals,
    /// Signing with an `owner` permission allowed without approvals.
    OwnerWithoutApprovals,
    /// As many approvers as the threshold: losing one approver locks the key.
    NoSpareApprover,
    /// A key used for both block and transaction signing.
    KeyForBlocksAndTransactions,
    /// An earlier rule's scope covers this one's: it is never reached.
    Shadowed,
    /// `eosio.msig::approve` allowed without `msig_proposed_actions`: the key may approve any
    /// proposal.
    MsigApproveUnconstrained,
    /// `eosio.msig::approve` of proposals that may transfer tokens, without `transfer` limits:
    /// approved transfers are unlimited.
    MsigTransfersUnlimited,
}

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    /// What it is about.
    pub kind: LintKind,
    /// The rule concerned.
    pub rule: String,
    /// Line of the rule's name.
    pub line: usize,
    /// Explanation for the operator.
    pub message: String,
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: rule {:?}: warning: {}",
            self.line, self.rule, self.message
        )
    }
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap_or_default()
}

fn could_name(p: &ActionPattern, contract: &str, action: &str) -> bool {
    p.contract.matches(name(contract)) && p.action.matches(name(action))
}

/// Whether the pattern may allow an authorization by `owner`.
fn may_use_owner(p: &ActionPattern) -> bool {
    p.auth.is_none_or(|a| a.permission.matches(name("owner")))
}

fn covers_strings(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| x == "*") || b.iter().all(|x| x != "*" && a.contains(x))
}

fn covers_keys(a: &[KeyPattern], b: &[KeyPattern]) -> bool {
    a.contains(&KeyPattern::Any) || b.iter().all(|x| *x != KeyPattern::Any && a.contains(x))
}

/// Whether `a`'s scope includes all of `b`'s.
fn covers(a: &Rule, b: &Rule) -> bool {
    covers_strings(&a.principals, &b.principals)
        && covers_keys(&a.keys, &b.keys)
        && b.kinds.iter().all(|k| a.kinds.contains(k))
        && match (&a.chains, &b.chains) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(ca), Some(cb)) => cb.iter().all(|c| ca.contains(c)),
        }
}

impl Policy {
    /// Warnings about a valid policy, in file order.
    pub fn lint(&self) -> Vec<Lint> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let mut warn = |kind, message: String| {
                out.push(Lint {
                    kind,
                    rule: rule.name.clone(),
                    line: rule.line,
                    message,
                });
            };
            if rule.principals.iter().any(|p| p == "*") {
                warn(
                    LintKind::Wildcard,
                    "principals contains \"*\": any authenticated client may use these keys".into(),
                );
            }
            if rule.keys.contains(&KeyPattern::Any) {
                warn(
                    LintKind::Wildcard,
                    "keys contains \"*\": every key the signer holds is in scope".into(),
                );
            }
            for p in rule.actions.iter().filter(|p| p.has_wildcard()) {
                warn(
                    LintKind::Wildcard,
                    format!("actions pattern {p} contains \"*\""),
                );
            }
            let proposed = rule.msig_proposed_actions.as_deref().unwrap_or_default();
            for p in proposed.iter().filter(|p| p.has_wildcard()) {
                warn(
                    LintKind::Wildcard,
                    format!("msig_proposed_actions pattern {p} contains \"*\""),
                );
            }
            // `actions` implies a transaction rule (parse refuses it otherwise).
            if rule.msig_proposed_actions.is_none()
                && let Some(p) = rule
                    .actions
                    .iter()
                    .find(|p| could_name(p, "eosio.msig", "approve"))
            {
                warn(
                    LintKind::MsigApproveUnconstrained,
                    format!(
                        "{p} lets this rule approve any eosio.msig proposal: set msig_proposed_actions to the actions a proposal may contain"
                    ),
                );
            }
            let approves = rule
                .actions
                .iter()
                .find(|p| could_name(p, "eosio.msig", "approve"));
            let may_transfer = rule.msig_proposed_actions.is_none()
                || proposed
                    .iter()
                    .any(|p| could_name(p, "eosio.token", "transfer"));
            if let Some(p) = approves
                && may_transfer
                && rule.transfer.is_none()
            {
                warn(
                    LintKind::MsigTransfersUnlimited,
                    format!(
                        "{p} approves proposals that may transfer tokens, and the rule has no transfer limits: set transfer = {{ max_per_tx, daily_budget, recipients }} (they hold for proposed transfers too)"
                    ),
                );
            }
            if rule.approvals.is_none() && rule.kinds.contains(&Kind::Transaction) {
                for p in &rule.actions {
                    if could_name(p, "eosio", "updateauth") {
                        warn(
                            LintKind::PermissionChangeWithoutApprovals,
                            format!(
                                "{p} lets this rule change account permissions (eosio::updateauth) without approvals"
                            ),
                        );
                    } else if could_name(p, "eosio", "linkauth") && may_use_owner(p) {
                        warn(
                            LintKind::PermissionChangeWithoutApprovals,
                            format!(
                                "{p} lets this rule sign eosio::linkauth with an owner permission without approvals"
                            ),
                        );
                    } else if p
                        .auth
                        .is_some_and(|a| a.permission == NamePattern::Is(name("owner")))
                    {
                        warn(
                            LintKind::OwnerWithoutApprovals,
                            format!("{p} signs with an owner permission without approvals"),
                        );
                    }
                }
            }
            if let Some(a) = &rule.approvals
                && a.approvers.len() == a.threshold as usize
            {
                warn(
                    LintKind::NoSpareApprover,
                    format!(
                        "approval set {:?} has exactly {} approvers for a threshold of {}: losing one approver's key locks this rule",
                        a.set, a.threshold, a.threshold
                    ),
                );
            }
            if rule.kinds.contains(&Kind::Block) {
                for key in rule.keys.iter().filter_map(|k| match k {
                    KeyPattern::Is(k) => Some(k),
                    KeyPattern::Any => None,
                }) {
                    let other = self.rules.iter().find(|r| {
                        r.kinds.contains(&Kind::Transaction)
                            && r.keys.contains(&KeyPattern::Is(*key))
                    });
                    if let Some(other) = other {
                        warn(
                            LintKind::KeyForBlocksAndTransactions,
                            format!(
                                "key {key} signs blocks here and transactions in rule {:?}: keep producer keys and account keys apart",
                                other.name
                            ),
                        );
                    }
                }
            }
            if let Some(earlier) = self.rules[..i].iter().find(|e| covers(e, rule)) {
                warn(
                    LintKind::Shadowed,
                    format!(
                        "never reached: rule {:?} (line {}) comes first and its scope covers this rule's",
                        earlier.name, earlier.line
                    ),
                );
            }
        }
        out
    }
}
