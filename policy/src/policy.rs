//! The policy file: its TOML shape, and the validated [`Policy`] it parses into.
//!
//! Guards: parse, don't validate. Every string in the file (keys, chain ids, assets, names,
//! patterns) is turned into its typed value here, once, and every combination that could not
//! mean what the operator wrote (an approver set smaller than its threshold, a budget in another
//! symbol than its per-transaction cap, a transaction constraint on a block rule) is refused with
//! the rule and the line, so the evaluator only ever sees rules that make sense.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use oryx_proto::antelope::chain::parse_chain_id;
use oryx_proto::antelope::{Asset, Checksum256, Name, PublicKey};
use serde::Deserialize;
use toml::Spanned;

use crate::error::{PolicyError, line_col};
use crate::pattern::ActionPattern;
use crate::request::Kind;

/// Longest policy version accepted (it is copied into every audit entry).
pub const MAX_VERSION_LEN: usize = 256;

/// A parsed, validated policy. Build one with [`Policy::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) version: String,
    pub(crate) rules: Vec<Rule>,
}

/// A key in a rule's scope: a named key, or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPattern {
    /// `*`: any key (linted).
    Any,
    /// Exactly this key.
    Is(PublicKey),
}

impl fmt::Display for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyPattern::Any => f.write_str("*"),
            KeyPattern::Is(k) => write!(f, "{k}"),
        }
    }
}

/// A rate limit: at most `max` signed requests per principal and key in any `per_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in the window (at least 1).
    pub max: u32,
    /// Window length in seconds (at least 1).
    pub per_seconds: u32,
}

/// What to do with context-free actions (and context-free data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ContextFree {
    /// Refuse any transaction with context-free actions or context-free data (the default).
    #[default]
    Deny,
    /// Context-free actions must each pass the rule's `actions`/`deny_actions` like any action.
    AllowListed,
}

/// What to do with transaction extensions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Extensions {
    /// Refuse any transaction with extensions (the default).
    #[default]
    Deny,
    /// Accept them.
    Allow,
}

/// Limits on `eosio.token::transfer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferLimits {
    /// Most the transaction may move in total, per transaction.
    pub max_per_tx: Option<Asset>,
    /// Most this key may move under this rule in any 24 hours.
    pub daily_budget: Option<Asset>,
    /// Accounts that may receive; `None` = any.
    pub recipients: Option<Vec<Name>>,
}

impl TransferLimits {
    /// The symbol the amount limits are in, if any.
    pub fn symbol(&self) -> Option<oryx_proto::antelope::Symbol> {
        self.max_per_tx.or(self.daily_budget).map(|a| a.symbol)
    }
}

/// Accounts and permissions `eosio::updateauth` may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateAuthLimits {
    /// Accounts whose permissions may be changed.
    pub accounts: Vec<Name>,
    /// Permissions that may be changed.
    pub permissions: Vec<Name>,
}

/// Accounts `eosio::linkauth` / `eosio::unlinkauth` may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAuthLimits {
    /// Accounts whose links may be changed.
    pub accounts: Vec<Name>,
}

/// Limits on `eosio::regproducer` / `regproducer2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegProducerLimits {
    /// Every producer key registered must be one the signer holds.
    pub held_keys_only: bool,
}

/// The single system action a rule may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// Only `eosio::claimrewards`.
    ClaimRewards,
    /// Only `eosio::voteproducer`.
    VoteProducer,
}

impl Only {
    /// `(contract, action)` of the one allowed action.
    pub fn action(self) -> (Name, Name) {
        let (c, a) = match self {
            Only::ClaimRewards => ("eosio", "claimrewards"),
            Only::VoteProducer => ("eosio", "voteproducer"),
        };
        (
            Name::new(c).unwrap_or_default(),
            Name::new(a).unwrap_or_default(),
        )
    }

    /// The value as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Only::ClaimRewards => "claimrewards",
            Only::VoteProducer => "voteproducer",
        }
    }
}

/// M of N approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approvals {
    /// Approvals needed (at least 1, at most the number of approvers).
    pub threshold: u32,
    /// The approvers' public keys (distinct).
    pub approvers: Vec<PublicKey>,
    /// Name of the approver set, shown to approvers and in audit entries.
    pub set: String,
}

/// One validated `[[rule]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// 1-based line of the rule's `name`.
    pub line: usize,
    /// Principals in scope; `"*"` = any.
    pub principals: Vec<String>,
    /// Keys in scope.
    pub keys: Vec<KeyPattern>,
    /// Request kinds in scope.
    pub kinds: Vec<Kind>,
    /// Chains in scope; `None` = any chain.
    pub chains: Option<Vec<Checksum256>>,
    /// Rate limit per principal and key.
    pub rate: Option<Rate>,
    /// Allowed actions (transactions).
    pub actions: Vec<ActionPattern>,
    /// Denied actions; a match refuses the transaction even if `actions` allows it.
    pub deny_actions: Vec<ActionPattern>,
    /// Context-free actions and data.
    pub context_free_actions: ContextFree,
    /// Transaction extensions.
    pub transaction_extensions: Extensions,
    /// Whether actions that are not decodable system actions may be signed.
    pub allow_unknown_action_data: bool,
    /// Expiration must be in `(now, now + N]`.
    pub max_expiration_seconds: Option<u32>,
    /// Transfer limits.
    pub transfer: Option<TransferLimits>,
    /// `updateauth` limits; without them no `updateauth` is signed.
    pub updateauth: Option<UpdateAuthLimits>,
    /// `linkauth`/`unlinkauth` limits; without them none is signed.
    pub linkauth: Option<LinkAuthLimits>,
    /// `regproducer` limits.
    pub regproducer: Option<RegProducerLimits>,
    /// The one action this rule may sign.
    pub only: Option<Only>,
    /// What the proposals an `eosio.msig::approve` approves may contain: every action of
    /// every proposed transaction must match one of these; `None` = unconstrained (linted).
    pub msig_proposed_actions: Option<Vec<ActionPattern>>,
    /// Approvals required after every other constraint passed.
    pub approvals: Option<Approvals>,
}

impl Rule {
    /// Whether `principal` is in scope.
    pub fn names_principal(&self, principal: &str) -> bool {
        self.principals.iter().any(|p| p == "*" || p == principal)
    }

    /// Whether `key` is in scope.
    pub fn names_key(&self, key: &PublicKey) -> bool {
        self.keys.iter().any(|k| match k {
            KeyPattern::Any => true,
            KeyPattern::Is(k) => k == key,
        })
    }

    /// Whether `chain` is in scope.
    pub fn names_chain(&self, chain: &Checksum256) -> bool {
        self.chains.as_ref().is_none_or(|c| c.contains(chain))
    }

    /// Whether `(account, name)` is named by an allow pattern or by `only`.
    pub fn names_action(&self, account: Name, name: Name) -> bool {
        self.actions.iter().any(|p| p.names(account, name))
            || self.only.is_some_and(|o| o.action() == (account, name))
    }
}

// ---- The file as written -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Spanned<String>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    principals: Spanned<Vec<Spanned<String>>>,
    keys: Spanned<Vec<Spanned<String>>>,
    kinds: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    chains: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    rate: Option<Spanned<RawRate>>,
    #[serde(default)]
    actions: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    deny_actions: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    context_free_actions: Option<Spanned<String>>,
    #[serde(default)]
    transaction_extensions: Option<Spanned<String>>,
    #[serde(default)]
    allow_unknown_action_data: Option<Spanned<bool>>,
    #[serde(default)]
    max_expiration_seconds: Option<Spanned<u32>>,
    #[serde(default)]
    transfer: Option<Spanned<RawTransfer>>,
    #[serde(default)]
    updateauth: Option<Spanned<RawUpdateAuth>>,
    #[serde(default)]
    linkauth: Option<Spanned<RawLinkAuth>>,
    #[serde(default)]
    regproducer: Option<Spanned<RawRegProducer>>,
    #[serde(default)]
    only: Option<Spanned<String>>,
    #[serde(default)]
    msig_proposed_actions: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    approvals: Option<Spanned<RawApprovals>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    max: Spanned<u32>,
    per_seconds: Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransfer {
    #[serde(default)]
    max_per_tx: Option<Spanned<String>>,
    #[serde(default)]
    daily_budget: Option<Spanned<String>>,
    #[serde(default)]
    recipients: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpdateAuth {
    accounts: Spanned<Vec<Spanned<String>>>,
    permissions: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinkAuth {
    accounts: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegProducer {
    held_keys_only: Spanned<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovals {
    threshold: Spanned<u32>,
    approvers: Spanned<Vec<Spanned<String>>>,
    set: Spanned<String>,
}

// ---- Validation ----------------------------------------------------------------------------

/// Turns spans into lines and builds errors for one rule.
struct Ctx<'a> {
    text: &'a str,
    rule: Option<String>,
}

impl Ctx<'_> {
    fn line<T>(&self, s: &Spanned<T>) -> usize {
        line_col(self.text, s.span().start).0
    }

    fn err<T>(&self, at: &Spanned<T>, message: impl Into<String>) -> PolicyError {
        PolicyError::Invalid {
            rule: self.rule.clone(),
            line: Some(self.line(at)),
            message: message.into(),
        }
    }

    fn non_empty<'s, T>(
        &self,
        list: &'s Spanned<Vec<T>>,
        field: &str,
    ) -> Result<&'s [T], PolicyError> {
        if list.get_ref().is_empty() {
            Err(self.err(list, format!("`{field}` must not be empty")))
        } else {
            Ok(list.get_ref())
        }
    }

    fn names(
        &self,
        list: &Spanned<Vec<Spanned<String>>>,
        field: &str,
    ) -> Result<Vec<Name>, PolicyError> {
        self.non_empty(list, field)?
            .iter()
            .map(|s| {
                Name::new(s.get_ref())
                    .ok()
                    .filter(|n| n.value() != 0)
                    .ok_or_else(|| {
                        self.err(
                            s,
                            format!("{field}: {:?} is not an account name", s.get_ref()),
                        )
                    })
            })
            .collect()
    }

    fn patterns(
        &self,
        list: &Option<Spanned<Vec<Spanned<String>>>>,
        field: &str,
    ) -> Result<Vec<ActionPattern>, PolicyError> {
        let Some(list) = list else {
            return Ok(Vec::new());
        };
        self.non_empty(list, field)?
            .iter()
            .map(|s| {
                ActionPattern::parse(s.get_ref()).map_err(|e| self.err(s, format!("{field}: {e}")))
            })
            .collect()
    }

    fn asset(&self, s: &Spanned<String>, field: &str) -> Result<Asset, PolicyError> {
        let asset: Asset = s
            .get_ref()
            .parse()
            .map_err(|e| self.err(s, format!("transfer.{field}: {e}")))?;
        if asset.amount <= 0 {
            return Err(self.err(
                s,
                format!("transfer.{field}: {asset} is not a positive amount"),
            ));
        }
        Ok(asset)
    }

    fn key(&self, s: &Spanned<String>, field: &str) -> Result<PublicKey, PolicyError> {
        PublicKey::parse(s.get_ref()).map_err(|e| {
            self.err(
                s,
                format!("{field}: {:?} is not a public key: {e}", s.get_ref()),
            )
        })
    }
}

impl Policy {
    /// Parses and validates a policy file whose `chains` are chain ids or known aliases.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse_with_chains(text, &BTreeMap::new())
    }

    /// Parses and validates a policy file whose `chains` may also use the signer config's own
    /// chain names (`[[chains]] name`), the same vocabulary as `[[keys]] chains`: `chains` maps
    /// each to its id. A configured name wins over an alias of the same spelling.
    pub fn parse_with_chains(
        text: &str,
        chains: &BTreeMap<String, Checksum256>,
    ) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
            PolicyError::Syntax {
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        let top = Ctx { text, rule: None };
        let version = raw.version.get_ref().trim();
        if version.is_empty() {
            return Err(top.err(&raw.version, "`version` must not be empty"));
        }
        if version.len() > MAX_VERSION_LEN || version.chars().any(char::is_control) {
            return Err(top.err(
                &raw.version,
                format!(
                    "`version` must be at most {MAX_VERSION_LEN} bytes without control characters"
                ),
            ));
        }
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(raw.rule.len());
        for r in &raw.rule {
            let rule = validate_rule(text, r, chains)?;
            if !names.insert(rule.name.clone()) {
                return Err(PolicyError::Invalid {
                    rule: Some(rule.name.clone()),
                    line: Some(rule.line),
                    message: "duplicate rule name (names must be unique: counters and audit entries refer to them)"
                        .into(),
                });
            }
            rules.push(rule);
        }
        Ok(Policy {
            version: version.to_string(),
            rules,
        })
    }

    /// The policy's `version`, recorded in every audit entry.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// A rule's chain: a name of the signer's config, a known alias or 64 hex characters.
fn chain_id(text: &str, names: &BTreeMap<String, Checksum256>) -> Result<Checksum256, String> {
    if let Some(id) = names.get(text.trim()) {
        return Ok(*id);
    }
    parse_chain_id(text).map_err(|e| {
        if names.is_empty() {
            e.to_string()
        } else {
            format!(
                "{e}; or one of the signer config's chain names: {}",
                names.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    })
}

fn validate_rule(
    text: &str,
    r: &RawRule,
    names: &BTreeMap<String, Checksum256>,
) -> Result<Rule, PolicyError> {
    let name = r.name.get_ref().trim().to_string();
    let mut cx = Ctx { text, rule: None };
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(cx.err(&r.name, "rule `name` must be non-empty text"));
    }
    cx.rule = Some(name.clone());
    let line = cx.line(&r.name);

    let mut principals = Vec::new();
    for p in cx.non_empty(&r.principals, "principals")? {
        let p = p.get_ref().trim();
        if p.is_empty() {
            return Err(cx.err(&r.principals, "principals: empty principal"));
        }
        principals.push(p.to_string());
    }
    let mut keys = Vec::new();
    for k in cx.non_empty(&r.keys, "keys")? {
        keys.push(if k.get_ref() == "*" {
            KeyPattern::Any
        } else {
            KeyPattern::Is(cx.key(k, "keys")?)
        });
    }
    let mut kinds = Vec::new();
    for k in cx.non_empty(&r.kinds, "kinds")? {
        let kind = Kind::parse(k.get_ref()).ok_or_else(|| {
            cx.err(
                k,
                format!(
                    "kinds: unknown kind {:?} (expected block, transaction or digest)",
                    k.get_ref()
                ),
            )
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let chains = match &r.chains {
        None => None,
        Some(list) => Some(
            cx.non_empty(list, "chains")?
                .iter()
                .map(|c| {
                    chain_id(c.get_ref(), names).map_err(|e| cx.err(c, format!("chains: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let rate = match &r.rate {
        None => None,
        Some(rate) => {
            let raw = rate.get_ref();
            if *raw.max.get_ref() == 0 {
                return Err(cx.err(
                    &raw.max,
                    "rate.max must be at least 1 (to refuse everything, remove the rule)",
                ));
            }
            if *raw.per_seconds.get_ref() == 0 {
                return Err(cx.err(&raw.per_seconds, "rate.per_seconds must be at least 1"));
            }
            Some(Rate {
                max: *raw.max.get_ref(),
                per_seconds: *raw.per_seconds.get_ref(),
            })
        }
    };

    // Transaction-only settings must not sit on a rule that never sees a transaction: the
    // operator would believe they constrain something.
    if !kinds.contains(&Kind::Transaction) {
        let tx_only: [(&str, Option<usize>); 12] = [
            ("actions", r.actions.as_ref().map(|s| cx.line(s))),
            ("deny_actions", r.deny_actions.as_ref().map(|s| cx.line(s))),
            (
                "context_free_actions",
                r.context_free_actions.as_ref().map(|s| cx.line(s)),
            ),
            (
                "transaction_extensions",
                r.transaction_extensions.as_ref().map(|s| cx.line(s)),
            ),
            (
                "allow_unknown_action_data",
                r.allow_unknown_action_data.as_ref().map(|s| cx.line(s)),
            ),
            (
                "max_expiration_seconds",
                r.max_expiration_seconds.as_ref().map(|s| cx.line(s)),
            ),
            ("transfer", r.transfer.as_ref().map(|s| cx.line(s))),
            ("updateauth", r.updateauth.as_ref().map(|s| cx.line(s))),
            ("linkauth", r.linkauth.as_ref().map(|s| cx.line(s))),
            ("regproducer", r.regproducer.as_ref().map(|s| cx.line(s))),
            ("only", r.only.as_ref().map(|s| cx.line(s))),
            (
                "msig_proposed_actions",
                r.msig_proposed_actions.as_ref().map(|s| cx.line(s)),
            ),
        ];
        if let Some((field, at)) = tx_only.iter().find(|(_, at)| at.is_some()) {
            return Err(PolicyError::Invalid {
                rule: Some(name),
                line: *at,
                message: format!(
                    "`{field}` applies to transactions, but `kinds` does not include transaction"
                ),
            });
        }
    }

    let actions = cx.patterns(&r.actions, "actions")?;
    let deny_actions = cx.patterns(&r.deny_actions, "deny_actions")?;
    let context_free_actions = match &r.context_free_actions {
        None => ContextFree::Deny,
        Some(s) => match s.get_ref().as_str() {
            "deny" => ContextFree::Deny,
            "allow_listed" => ContextFree::AllowListed,
            other => {
                return Err(cx.err(
                    s,
                    format!("context_free_actions: {other:?} is not \"deny\" or \"allow_listed\""),
                ));
            }
        },
    };
    let transaction_extensions = match &r.transaction_extensions {
        None => Extensions::Deny,
        Some(s) => match s.get_ref().as_str() {
            "deny" => Extensions::Deny,
            "allow" => Extensions::Allow,
            other => {
                return Err(cx.err(
                    s,
                    format!("transaction_extensions: {other:?} is not \"deny\" or \"allow\""),
                ));
            }
        },
    };
    let max_expiration_seconds = match &r.max_expiration_seconds {
        Some(s) if *s.get_ref() == 0 => {
            return Err(cx.err(s, "max_expiration_seconds must be at least 1"));
        }
        other => other.as_ref().map(|s| *s.get_ref()),
    };
    let transfer = match &r.transfer {
        None => None,
        Some(t) => {
            let raw = t.get_ref();
            let max_per_tx = raw
                .max_per_tx
                .as_ref()
                .map(|s| cx.asset(s, "max_per_tx"))
                .transpose()?;
            let daily_budget = raw
                .daily_budget
                .as_ref()
                .map(|s| cx.asset(s, "daily_budget"))
                .transpose()?;
            if let (Some(max), Some(budget), Some(at)) =
                (max_per_tx, daily_budget, &raw.daily_budget)
                && max.symbol != budget.symbol
            {
                return Err(cx.err(
                        at,
                        format!(
                            "transfer: max_per_tx is in {} but daily_budget is in {}: they must use the same symbol and precision",
                            max.symbol, budget.symbol
                        ),
                    ));
            }
            let recipients = raw
                .recipients
                .as_ref()
                .map(|list| cx.names(list, "transfer.recipients"))
                .transpose()?;
            Some(TransferLimits {
                max_per_tx,
                daily_budget,
                recipients,
            })
        }
    };
    let updateauth = match &r.updateauth {
        None => None,
        Some(u) => Some(UpdateAuthLimits {
            accounts: cx.names(&u.get_ref().accounts, "updateauth.accounts")?,
            permissions: cx.names(&u.get_ref().permissions, "updateauth.permissions")?,
        }),
    };
    let linkauth = match &r.linkauth {
        None => None,
        Some(l) => Some(LinkAuthLimits {
            accounts: cx.names(&l.get_ref().accounts, "linkauth.accounts")?,
        }),
    };
    let regproducer = r.regproducer.as_ref().map(|p| RegProducerLimits {
        held_keys_only: *p.get_ref().held_keys_only.get_ref(),
    });
    let only = match &r.only {
        None => None,
        Some(s) => Some(match s.get_ref().as_str() {
            "claimrewards" => Only::ClaimRewards,
            "voteproducer" => Only::VoteProducer,
            other => {
                return Err(cx.err(
                    s,
                    format!("only: {other:?} is not \"claimrewards\" or \"voteproducer\""),
                ));
            }
        }),
    };
    if kinds.contains(&Kind::Transaction) && actions.is_empty() && only.is_none() {
        return Err(PolicyError::Invalid {
            rule: Some(name),
            line: Some(line),
            message: "a transaction rule must list the `actions` it allows (or set `only`)".into(),
        });
    }
    let msig_proposed_actions = match &r.msig_proposed_actions {
        None => None,
        Some(list) => {
            let msig = Name::new("eosio.msig").unwrap_or_default();
            let approve = Name::new("approve").unwrap_or_default();
            if !actions.iter().any(|p| p.names(msig, approve)) {
                return Err(cx.err(
                    list,
                    "msig_proposed_actions constrains what eosio.msig::approve may approve, but \
                     no `actions` pattern of this rule allows eosio.msig::approve",
                ));
            }
            Some(cx.patterns(&r.msig_proposed_actions, "msig_proposed_actions")?)
        }
    };
    let approvals = match &r.approvals {
        None => None,
        Some(a) => {
            let raw = a.get_ref();
            let threshold = *raw.threshold.get_ref();
            if threshold == 0 {
                return Err(cx.err(&raw.threshold, "approvals.threshold must be at least 1"));
            }
            let mut approvers = Vec::new();
            for s in cx.non_empty(&raw.approvers, "approvals.approvers")? {
                let key = cx.key(s, "approvals.approvers")?;
                if approvers.contains(&key) {
                    return Err(cx.err(s, format!("approvals.approvers: {key} is listed twice")));
                }
                approvers.push(key);
            }
            if approvers.len() < threshold as usize {
                return Err(cx.err(
                    &raw.approvers,
                    format!(
                        "approvals: {} approver(s) can never reach a threshold of {threshold}",
                        approvers.len()
                    ),
                ));
            }
            let set = raw.set.get_ref().trim();
            if set.is_empty() || set.chars().any(char::is_control) {
                return Err(cx.err(&raw.set, "approvals.set must be non-empty text"));
            }
            Some(Approvals {
                threshold,
                approvers,
                set: set.to_string(),
            })
        }
    };

    Ok(Rule {
        name,
        line,
        principals,
        keys,
        kinds,
        chains,
        rate,
        actions,
        deny_actions,
        context_free_actions,
        transaction_extensions,
        allow_unknown_action_data: r
            .allow_unknown_action_data
            .as_ref()
            .is_some_and(|b| *b.get_ref()),
        max_expiration_seconds,
        transfer,
        updateauth,
        linkauth,
        regproducer,
        only,
        msig_proposed_actions,
        approvals,
    })
}
