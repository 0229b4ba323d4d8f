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
        /// Approvals needed.
        threshold: u32,
        /// Who may approve.
        approvers: Vec<PublicKey>,
        /// The approver set's name.
        set: String,
    },
}

/// Decides whether a request may proceed to the watermark and the key.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// The decision for one request.
    fn authorize(&self, req: &Request) -> Authorization;

    /// Records what a signed request used (rate hits, spend).
    fn signed(&self, charges: &[Charge], now: TimePointSec);

    /// The version of the rules in force (recorded in every audit entry).
    fn version(&self) -> String;
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

    fn signed(&self, _charges: &[Charge], _now: TimePointSec) {}

    fn version(&self) -> String {
        self.version.clone()
    }
}

/// The policy engine with its counters.
///
/// Counters live in memory: rate windows and the rolling daily spend restart empty when the
/// signer restarts.
#[derive(Debug)]
pub struct PolicyAuthorizer {
    policy: RwLock<Arc<Policy>>,
    counters: Mutex<MemoryCounters>,
    context: Context,
}

impl PolicyAuthorizer {
    /// Uses `policy`; `held_keys` are the keys this signer holds (for `regproducer` rules).
    pub fn new(policy: Policy, held_keys: Vec<PublicKey>) -> Self {
        PolicyAuthorizer {
            policy: RwLock::new(Arc::new(policy)),
            counters: Mutex::new(MemoryCounters::new()),
            context: Context { held_keys },
        }
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
    fn authorize(&self, req: &Request) -> Authorization {
        let policy = self.current();
        let decision = {
            let counters = self
                .counters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            policy.evaluate(req, &self.context, &*counters)
        };
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
                threshold,
                approvers,
                set,
            },
        }
    }

    fn signed(&self, charges: &[Charge], now: TimePointSec) {
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record(charges, now);
    }

    fn version(&self) -> String {
        self.current().version().to_string()
    }
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
}
