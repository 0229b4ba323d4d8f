//! `oryx-policy`: pure permission decisions — no I/O, no async, no clock, no randomness.
//! Given a request (principal, key, chain, the caller's `now`, the decoded body), the signer's
//! [`Context`] and the caller's [`Counters`], a [`Policy`] answers [`Verdict::Allow`],
//! [`Verdict::Deny`] with a reason, or [`Verdict::NeedsApprovals`], names the rule that decided,
//! and lists the [`Charge`]s to record once the request is signed.
//!
//! Guards: default deny, and "a rule never allows a principal, key, kind or action it does not
//! name" (wildcards aside, which are linted).
//!
//! # The policy file
//!
//! ```toml
//! version = "2025-06-01.1"          # required; recorded in every audit entry
//!
//! [[rule]]
//! name = "custody-transfers"        # unique
//! principals = ["ops-laptop"]       # mTLS identities; "*" = any (linted)
//! keys = ["PUB_K1_..."]             # "*" = any (linted)
//! kinds = ["transaction"]           # block | transaction | digest
//! chains = ["eos"]                  # optional pin: the signer config's chain names, 64-hex ids, or eos, jungle4, kylin, wax, telos
//! rate = { max = 10, per_seconds = 3600 }
//! actions = ["eosio.token::transfer@custody1@active"]
//! deny_actions = ["eosio.token::transfer@custody1@owner"]
//! context_free_actions = "deny"     # or "allow_listed"; default deny
//! transaction_extensions = "deny"   # or "allow"; default deny
//! allow_unknown_action_data = false # default false
//! max_expiration_seconds = 3600
//! transfer = { max_per_tx = "100.0000 EOS", daily_budget = "1000.0000 EOS", recipients = ["exchange1"] }
//! approvals = { threshold = 2, approvers = ["PUB_K1_...", "PUB_K1_...", "PUB_K1_..."], set = "custody" }
//! ```
//!
//! Other transaction settings: `updateauth = { accounts = [..], permissions = [..] }`,
//! `linkauth = { accounts = [..] }`, `regproducer = { held_keys_only = true }`,
//! `only = "claimrewards" | "voteproducer"`,
//! `msig_proposed_actions = ["eosio::updateauth@custody1@owner", "eosio.token::transfer"]` (only on
//! a rule whose `actions` allow `eosio.msig::approve`). Unknown fields are errors everywhere;
//! transaction settings on a rule whose `kinds` lacks `transaction` are errors too.
//!
//! # Semantics
//!
//! - **Default deny.** A request no rule's scope matches is denied (`Decision::rule` is `None`).
//! - **First match decides.** Rules are considered in file order. A rule's *scope* is its
//!   principals, keys, kinds and (optional) chain pin; the first rule whose scope matches
//!   decides alone: if any of its constraints fails → `Deny` naming the rule and the reason;
//!   else if it has `approvals` → `NeedsApprovals`; else `Allow`. Later rules are not consulted,
//!   so put narrow rules before broad ones (a rule whose scope an earlier rule covers is linted).
//! - **Action patterns** are `contract::action` or `contract::action@actor@permission`; `*`
//!   may replace a whole component. With an authorization, an *allow* pattern requires every
//!   authorization of the action to match it (and at least one to exist); a *deny* pattern
//!   catches an action if any authorization matches. Without one, any authorization matches.
//! - **Transactions:** every action *and* every context-free action must pass: no
//!   `deny_actions` match (deny wins), an `actions` match (and the `only` action, if set), and
//!   its data must decode as a system action Oryx knows — unless `allow_unknown_action_data =
//!   true` — and that decoded action must be valid and within the rule's limits:
//!   - `eosio.token::transfer`: positive quantity; `to` in `transfer.recipients`; the
//!     transaction's total per symbol ≤ `max_per_tx`; the rolling 24 h spend of this key under
//!     this rule plus the total ≤ `daily_budget`. Transfers in a symbol other than the limits'
//!     are refused. Other token contracts are "unknown action data": no budget applies to them.
//!   - `eosio::updateauth` needs an `updateauth` table naming the account and permission;
//!     `linkauth`/`unlinkauth` need a `linkauth` table naming the account.
//!   - `regproducer`/`regproducer2` with `held_keys_only`: every producer key is in
//!     [`Context::held_keys`].
//!
//!   - `eosio.msig::approve` with `msig_proposed_actions`: [`Body::Transaction`] carries the
//!     proposed transaction of each approve, in action order; each must be the one its
//!     approve's `proposal_hash` pins (checked again here), and every action (and context-free
//!     action) of every proposal must match a `msig_proposed_actions` pattern (allow semantics,
//!     as for `actions`), else `Deny` naming the approve and the proposed action. Without
//!     `msig_proposed_actions` the rule may approve any proposal (linted); the signer still
//!     refuses an approve whose proposal it was not given. Every `eosio.token::transfer` in an
//!     approved proposal is held to the rule's `transfer` table like a direct one (positive,
//!     recipients, `max_per_tx` and the daily budget, charged when the approve is signed);
//!     approving proposals that may transfer without a `transfer` table is linted.
//!
//!   Context-free actions (or context-free data) refuse the transaction unless
//!   `context_free_actions = "allow_listed"`; a context-free action has no authorization, so it
//!   needs an `actions` pattern without one. Extensions refuse it unless
//!   `transaction_extensions = "allow"`. With `max_expiration_seconds = N`, the expiration must
//!   lie in `(now, now + N]`. A transaction without actions is refused.
//! - **Blocks and digests** are checked against scope, chain pin and rate only.
//! - **Rate:** with `rate = { max, per_seconds }`, a request is refused once `max` requests of
//!   this principal with this key were signed under this rule in the last `per_seconds`.
//! - **Charges:** an `Allow`/`NeedsApprovals` decision lists the rate hit and the spend to record
//!   if the request is eventually signed; a caller that waits for approvals should evaluate again
//!   before signing, so budgets and rates hold at signing time.
//!
//! # The seam
//!
//! The signer builds a [`Request`] from the decoded request it recomputed the digest from,
//! calls [`Policy::evaluate`] with its counters, and after signing calls
//! [`MemoryCounters::record`] (or its own store) with [`Decision::charges`].
#![forbid(unsafe_code)]

mod counters;
mod error;
mod evaluate;
mod lint;
mod pattern;
mod policy;
mod request;

pub use counters::{Charge, Counters, MemoryCounters, SPEND_WINDOW_SECS};
pub use error::PolicyError;
pub use evaluate::{Decision, Explanation, RuleTrace, Scope, Verdict};
pub use lint::{Lint, LintKind};
pub use pattern::{ActionPattern, AuthPattern, NamePattern};
pub use policy::{
    Approvals, ContextFree, Extensions, KeyPattern, LinkAuthLimits, MAX_VERSION_LEN, Only, Policy,
    Rate, RegProducerLimits, Rule, TransferLimits, UpdateAuthLimits,
};
pub use request::{Body, Context, Kind, Request};
