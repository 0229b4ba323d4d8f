//! Table tests for every rule kind, through the public API only (the signer's seam).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use oryx_policy::{Body, Charge, Context, Decision, MemoryCounters, Policy, Scope, Verdict};
use oryx_proto::antelope::TimePointSec;
use oryx_proto::antelope::transaction::Transaction;

fn policy() -> Policy {
    let (k1, k2, k6) = (key(1), key(2), key(6));
    let (a3, a4, a5) = (key(3), key(4), key(5));
    let text = format!(
        r#"
version = "table-1"

[[rule]]
name = "producer-blocks"
principals = ["node1"]
keys = ["{k2}"]
kinds = ["block"]
chains = ["eos"]

[[rule]]
name = "digest-rate"
principals = ["node2"]
keys = ["{k2}"]
kinds = ["digest"]
rate = {{ max = 2, per_seconds = 60 }}

[[rule]]
name = "jungle-digests"
principals = ["node3"]
keys = ["{k2}"]
kinds = ["digest"]
chains = ["jungle4"]

[[rule]]
name = "custody-transfers"
principals = ["ops"]
keys = ["{k1}"]
kinds = ["transaction"]
chains = ["eos"]
actions = ["eosio.token::transfer@custody1@active"]
deny_actions = ["eosio.token::transfer@custody1@owner"]
max_expiration_seconds = 3600
transfer = {{ max_per_tx = "200.0000 EOS", daily_budget = "1000.0000 EOS", recipients = ["exchange1", "cold1"] }}

[[rule]]
name = "deny-wins"
principals = ["ops2"]
keys = ["{k1}"]
kinds = ["transaction"]
actions = ["eosio.token::transfer"]
deny_actions = ["eosio.token::transfer@custody1@owner"]

[[rule]]
name = "cfa-allowed"
principals = ["ops3"]
keys = ["{k1}"]
kinds = ["transaction"]
actions = ["eosio.token::transfer@custody1@active", "app::log"]
context_free_actions = "allow_listed"
transaction_extensions = "allow"
allow_unknown_action_data = true

[[rule]]
name = "cfa-default"
principals = ["ops4"]
keys = ["{k1}"]
kinds = ["transaction"]
actions = ["eosio.token::transfer@custody1@active", "app::log@custody1@active", "app::log"]

[[rule]]
name = "permission-admin"
principals = ["admin"]
keys = ["{k1}"]
kinds = ["transaction"]
actions = ["eosio::updateauth@custody1@owner", "eosio::linkauth@custody1@active"]
updateauth = {{ accounts = ["custody1"], permissions = ["active"] }}
linkauth = {{ accounts = ["custody1"] }}
approvals = {{ threshold = 2, approvers = ["{a3}", "{a4}", "{a5}"], set = "custody" }}

[[rule]]
name = "updateauth-without-table"
principals = ["admin2"]
keys = ["{k1}"]
kinds = ["transaction"]
actions = ["eosio::updateauth@custody1@active", "eosio::linkauth@custody1@active"]

[[rule]]
name = "regproducer"
principals = ["bp-team"]
keys = ["{k1}"]
kinds = ["transaction"]
actions = ["eosio::regproducer@producer1@active"]
regproducer = {{ held_keys_only = true }}

[[rule]]
name = "claimer"
principals = ["claimer"]
keys = ["{k6}"]
kinds = ["transaction"]
only = "claimrewards"

[[rule]]
name = "voter"
principals = ["voter"]
keys = ["{k6}"]
kinds = ["transaction"]
only = "voteproducer"
"#
    );
    Policy::parse(&text).unwrap()
}

fn context() -> Context {
    Context {
        held_keys: vec![key(2)],
    }
}

enum Expect {
    Allow,
    Deny(&'static str),
    Approvals,
}

const ACTIVE: &[&str] = &["custody1@active"];

fn expiring(mut t: Transaction, at: u32) -> Transaction {
    t.expiration = TimePointSec(at);
    t
}

fn cfa(mut t: Transaction, actions: Vec<oryx_proto::antelope::transaction::Action>) -> Transaction {
    t.context_free_actions = actions;
    t
}

#[test]
fn table() {
    let p = policy();
    let send = |q: &str| transfer(ACTIVE, "custody1", "exchange1", q);
    #[rustfmt::skip]
    let rows: Vec<(&str, oryx_policy::Request, Option<&str>, Expect)> = vec![
        // Scope: principal, key, kind, chain.
        ("block allowed", request("node1", key(2), "eos", block()), Some("producer-blocks"), Expect::Allow),
        ("block on another chain", request("node1", key(2), "jungle4", block()), None, Expect::Deny("default deny")),
        ("block with another key", request("node1", key(1), "eos", block()), None, Expect::Deny("default deny")),
        ("block by another principal", request("node9", key(2), "eos", block()), None, Expect::Deny("no rule lets principal \"node9\"")),
        ("digest by a block-only principal", request("node1", key(2), "eos", Body::Digest), None, Expect::Deny("for digest requests")),
        ("pinned digest on its chain", request("node3", key(2), "jungle4", Body::Digest), Some("jungle-digests"), Expect::Allow),
        ("pinned digest elsewhere", request("node3", key(2), "eos", Body::Digest), None, Expect::Deny("on chain eos")),
        // Transfers.
        ("transfer within limits", request("ops", key(1), "eos", tx(trx(vec![send("150.0000 EOS")]))), Some("custody-transfers"), Expect::Allow),
        ("transfer at max_per_tx", request("ops", key(1), "eos", tx(trx(vec![send("200.0000 EOS")]))), Some("custody-transfers"), Expect::Allow),
        ("transfer over max_per_tx", request("ops", key(1), "eos", tx(trx(vec![send("200.0001 EOS")]))), Some("custody-transfers"), Expect::Deny("transfers 200.0001 EOS, more than the 200.0000 EOS allowed per transaction")),
        ("two transfers summed over max_per_tx", request("ops", key(1), "eos", tx(trx(vec![send("120.0000 EOS"), send("100.0000 EOS")]))), Some("custody-transfers"), Expect::Deny("transfers 220.0000 EOS")),
        ("transfer to an unlisted recipient", request("ops", key(1), "eos", tx(trx(vec![transfer(ACTIVE, "custody1", "mallory", "1.0000 EOS")]))), Some("custody-transfers"), Expect::Deny("recipient mallory is not in transfer.recipients")),
        ("transfer in another symbol", request("ops", key(1), "eos", tx(trx(vec![send("1.0000 TLOS")]))), Some("custody-transfers"), Expect::Deny("transfer limits are in 4,EOS")),
        ("transfer in another precision", request("ops", key(1), "eos", tx(trx(vec![send("1.000 EOS")]))), Some("custody-transfers"), Expect::Deny("transfer limits are in 4,EOS")),
        ("transfer with an extra owner authorization", request("ops", key(1), "eos", tx(trx(vec![transfer(&["custody1@active", "custody1@owner"], "custody1", "exchange1", "1.0000 EOS")]))), Some("custody-transfers"), Expect::Deny("matches deny_actions pattern eosio.token::transfer@custody1@owner")),
        ("transfer by another actor", request("ops", key(1), "eos", tx(trx(vec![transfer(&["other@active"], "other", "exchange1", "1.0000 EOS")]))), Some("custody-transfers"), Expect::Deny("not allowed by any actions pattern")),
        ("transfer on another token contract", request("ops", key(1), "eos", tx(trx(vec![action("fake.token", "transfer", ACTIVE, vec![])]))), Some("custody-transfers"), Expect::Deny("action #0 fake.token::transfer (custody1@active): not allowed")),
        ("transfer on another chain", request("ops", key(1), "jungle4", tx(trx(vec![send("1.0000 EOS")]))), None, Expect::Deny("default deny")),
        ("malformed transfer data", request("ops", key(1), "eos", tx(trx(vec![action("eosio.token", "transfer", ACTIVE, vec![1, 2, 3])]))), Some("custody-transfers"), Expect::Deny("malformed action data")),
        ("no actions", request("ops", key(1), "eos", tx(trx(vec![]))), Some("custody-transfers"), Expect::Deny("has no actions")),
        // Expiration bound.
        ("expiration at the bound", request("ops", key(1), "eos", tx(expiring(trx(vec![send("1.0000 EOS")]), NOW + 3600))), Some("custody-transfers"), Expect::Allow),
        ("expiration past the bound", request("ops", key(1), "eos", tx(expiring(trx(vec![send("1.0000 EOS")]), NOW + 3601))), Some("custody-transfers"), Expect::Deny("expires 3601 s from now")),
        ("expiration now", request("ops", key(1), "eos", tx(expiring(trx(vec![send("1.0000 EOS")]), NOW))), Some("custody-transfers"), Expect::Deny("not after now")),
        ("expired", request("ops", key(1), "eos", tx(expiring(trx(vec![send("1.0000 EOS")]), NOW - 10))), Some("custody-transfers"), Expect::Deny("not after now")),
        // Deny wins.
        ("allowed by a bare pattern", request("ops2", key(1), "eos", tx(trx(vec![transfer(&["anyone@active"], "anyone", "bob", "1.0000 EOS")]))), Some("deny-wins"), Expect::Allow),
        ("deny wins over allow", request("ops2", key(1), "eos", tx(trx(vec![transfer(&["custody1@owner"], "custody1", "bob", "1.0000 EOS")]))), Some("deny-wins"), Expect::Deny("matches deny_actions")),
        // Context-free actions, extensions, unknown data.
        ("cfa denied by default", request("ops4", key(1), "eos", tx(cfa(trx(vec![send("1.0000 EOS")]), vec![action("app", "log", &[], vec![])]))), Some("cfa-default"), Expect::Deny("1 context-free action(s) and the rule denies them")),
        ("cfd denied by default", request("ops4", key(1), "eos", Body::Transaction { trx: trx(vec![send("1.0000 EOS")]), has_context_free_data: true, msig_proposals: vec![] }), Some("cfa-default"), Expect::Deny("context-free data")),
        ("extension denied by default", request("ops4", key(1), "eos", tx(with_extension(trx(vec![send("1.0000 EOS")])))), Some("cfa-default"), Expect::Deny("1 extension(s)")),
        ("unknown data denied by default", request("ops4", key(1), "eos", tx(trx(vec![action("app", "log", ACTIVE, vec![7])]))), Some("cfa-default"), Expect::Deny("not a system action Oryx decodes")),
        ("listed cfa allowed", request("ops3", key(1), "eos", Body::Transaction { trx: cfa(trx(vec![send("1.0000 EOS")]), vec![action("app", "log", &[], vec![7])]), has_context_free_data: true, msig_proposals: vec![] }), Some("cfa-allowed"), Expect::Allow),
        ("unlisted cfa refused", request("ops3", key(1), "eos", tx(cfa(trx(vec![send("1.0000 EOS")]), vec![action("app", "other", &[], vec![])]))), Some("cfa-allowed"), Expect::Deny("context-free action #0 app::other: not allowed")),
        ("cfa needs a pattern without authorization", request("ops3", key(1), "eos", tx(cfa(trx(vec![send("1.0000 EOS")]), vec![action("eosio.token", "transfer", &[], vec![])]))), Some("cfa-allowed"), Expect::Deny("context-free action #0 eosio.token::transfer: not allowed")),
        ("cfa with an authorization", request("ops3", key(1), "eos", tx(cfa(trx(vec![send("1.0000 EOS")]), vec![action("app", "log", ACTIVE, vec![])]))), Some("cfa-allowed"), Expect::Deny("cannot carry an authorization")),
        ("extension allowed", request("ops3", key(1), "eos", tx(with_extension(trx(vec![send("1.0000 EOS")])))), Some("cfa-allowed"), Expect::Allow),
        ("unknown data allowed", request("ops3", key(1), "eos", tx(trx(vec![action("app", "log", ACTIVE, vec![7])]))), Some("cfa-allowed"), Expect::Allow),
        // Permission changes, with approvals.
        ("updateauth needs approvals", request("admin", key(1), "eos", tx(trx(vec![updateauth(&["custody1@owner"], "custody1", "active", "owner")]))), Some("permission-admin"), Expect::Approvals),
        ("updateauth on an unlisted permission", request("admin", key(1), "eos", tx(trx(vec![updateauth(&["custody1@owner"], "custody1", "owner", "")]))), Some("permission-admin"), Expect::Deny("permission owner is not in updateauth.permissions")),
        ("updateauth on an unlisted account", request("admin", key(1), "eos", tx(trx(vec![updateauth(&["custody1@owner"], "other", "active", "owner")]))), Some("permission-admin"), Expect::Deny("account other is not in updateauth.accounts")),
        ("linkauth needs approvals", request("admin", key(1), "eos", tx(trx(vec![linkauth(ACTIVE, "custody1")]))), Some("permission-admin"), Expect::Approvals),
        ("linkauth on an unlisted account", request("admin", key(1), "eos", tx(trx(vec![linkauth(ACTIVE, "other")]))), Some("permission-admin"), Expect::Deny("account other is not in linkauth.accounts")),
        ("updateauth without an updateauth table", request("admin2", key(1), "eos", tx(trx(vec![updateauth(ACTIVE, "custody1", "active", "owner")]))), Some("updateauth-without-table"), Expect::Deny("no updateauth table")),
        ("linkauth without a linkauth table", request("admin2", key(1), "eos", tx(trx(vec![linkauth(ACTIVE, "custody1")]))), Some("updateauth-without-table"), Expect::Deny("no linkauth table")),
        // regproducer with held keys only.
        ("regproducer with a held key", request("bp-team", key(1), "eos", tx(trx(vec![regproducer(&["producer1@active"], "producer1", key(2))]))), Some("regproducer"), Expect::Allow),
        ("regproducer with a foreign key", request("bp-team", key(1), "eos", tx(trx(vec![regproducer(&["producer1@active"], "producer1", key(7))]))), Some("regproducer"), Expect::Deny("is not held by this signer")),
        // only.
        ("claimrewards-only key claims", request("claimer", key(6), "eos", tx(trx(vec![claimrewards(&["producer1@claimer"], "producer1")]))), Some("claimer"), Expect::Allow),
        ("claimrewards-only key transfers", request("claimer", key(6), "eos", tx(trx(vec![claimrewards(&["producer1@claimer"], "producer1"), send("1.0000 EOS")]))), Some("claimer"), Expect::Deny("action #1 eosio.token::transfer (custody1@active): the rule may only sign eosio::claimrewards")),
        ("voteproducer-only key votes", request("voter", key(6), "eos", tx(trx(vec![voteproducer(&["voter1@active"], "voter1", &["bp1", "bp2"])]))), Some("voter"), Expect::Allow),
        ("voteproducer-only key claims", request("voter", key(6), "eos", tx(trx(vec![claimrewards(&["producer1@active"], "producer1")]))), Some("voter"), Expect::Deny("may only sign eosio::voteproducer")),
        ("invalid vote (unsorted)", request("voter", key(6), "eos", tx(trx(vec![voteproducer(&["voter1@active"], "voter1", &["bp2", "bp1"])]))), Some("voter"), Expect::Deny("the chain would reject it")),
    ];
    let counters = MemoryCounters::new();
    for (what, req, rule, expect) in rows {
        let d = p.evaluate(&req, &context(), &counters);
        assert_eq!(d.rule.as_deref(), rule, "{what}: {d:?}");
        assert_eq!(d.policy_version, "table-1", "{what}");
        match (expect, &d.verdict) {
            (Expect::Allow, Verdict::Allow) => {}
            (Expect::Approvals, Verdict::NeedsApprovals { .. }) => {}
            (Expect::Deny(part), Verdict::Deny(reason)) => {
                assert!(reason.contains(part), "{what}: {reason:?} lacks {part:?}");
                if let Some(rule) = rule {
                    assert!(
                        reason.starts_with(&format!("rule {rule}: ")),
                        "{what}: {reason}"
                    );
                }
                assert!(d.charges.is_empty(), "{what}: a denial charges nothing");
            }
            (_, v) => panic!("{what}: unexpected {v:?}"),
        }
        // evaluate is explain's decision.
        assert_eq!(p.explain(&req, &context(), &counters).decision, d, "{what}");
    }
}

fn spend(p: &Policy, counters: &MemoryCounters, amount: &str, now: u32) -> Decision {
    let mut req = request(
        "ops",
        key(1),
        "eos",
        tx(trx(vec![transfer(ACTIVE, "custody1", "cold1", amount)])),
    );
    req.now = TimePointSec(now);
    if let Body::Transaction { trx, .. } = &mut req.body {
        trx.expiration = TimePointSec(now + 60);
    }
    p.evaluate(&req, &context(), counters)
}

#[test]
fn daily_budget_refusal_names_the_rule_and_the_amounts() {
    let p = policy();
    let mut counters = MemoryCounters::new();
    let mut now = NOW;
    for _ in 0..6 {
        let d = spend(&p, &counters, "150.0000 EOS", now);
        assert_eq!(d.verdict, Verdict::Allow);
        assert!(
            matches!(&d.charges[..], [Charge::Spend { rule, amount, .. }] if rule == "custody-transfers" && amount.to_string() == "150.0000 EOS")
        );
        counters.record(&d.charges, TimePointSec(now));
        now += 600;
    }
    let d = spend(&p, &counters, "150.0000 EOS", now);
    assert_eq!(
        d.verdict,
        Verdict::Deny(format!(
            "rule custody-transfers: daily budget of 1000.0000 EOS for {} would be exceeded: \
             spent 900.0000 EOS in the last 24 h + 150.0000 EOS requested",
            key(1)
        ))
    );
    assert_eq!(d.rule.as_deref(), Some("custody-transfers"));
    // What still fits is allowed.
    assert_eq!(
        spend(&p, &counters, "100.0000 EOS", now).verdict,
        Verdict::Allow
    );
    // A refusal is not recorded, so nothing was spent by it.
    let explanation = p.explain(
        &request(
            "ops",
            key(1),
            "eos",
            tx(trx(vec![transfer(
                ACTIVE,
                "custody1",
                "cold1",
                "150.0000 EOS",
            )])),
        ),
        &context(),
        &counters,
    );
    assert_eq!(
        explanation.rules[3].decided_by.as_deref(),
        Some("transfer.daily_budget")
    );
    // 24 h after the first spend, it has rolled out of the window.
    assert_eq!(
        spend(&p, &counters, "150.0000 EOS", NOW + 86_400).verdict,
        Verdict::Allow
    );
    // The budget is per key: another key under another rule is unaffected.
    assert_eq!(
        counters.spent(&key(2), "4,EOS".parse().unwrap(), TimePointSec(now)),
        0
    );
    use oryx_policy::Counters as _;
}

/// A budget limits what leaves through the key: renaming the rule (a policy reload) does not
/// reset what was spent (30 EOS spent under the old name still count).
#[test]
fn renaming_a_rule_does_not_reset_its_budget() {
    let budget = |name: &str| {
        Policy::parse(&format!(
            r#"
version = "{name}"
[[rule]]
name = "{name}"
principals = ["ops"]
keys = ["{}"]
kinds = ["transaction"]
actions = ["eosio.token::transfer@custody1@active"]
transfer = {{ daily_budget = "40.0000 EOS" }}
"#,
            key(1)
        ))
        .unwrap()
    };
    let mut counters = MemoryCounters::new();
    let first = spend(&budget("payouts"), &counters, "30.0000 EOS", NOW);
    assert_eq!(first.verdict, Verdict::Allow);
    counters.record(&first.charges, TimePointSec(NOW));
    match spend(
        &budget("payouts-renamed"),
        &counters,
        "30.0000 EOS",
        NOW + 10,
    )
    .verdict
    {
        Verdict::Deny(r) => assert!(r.contains("spent 30.0000 EOS"), "{r}"),
        v => panic!("the renamed rule started from zero: {v:?}"),
    }
}

#[test]
fn rate_limits_with_memory_counters() {
    let p = policy();
    let mut counters = MemoryCounters::new();
    let at = |t: u32| {
        let mut r = request("node2", key(2), "eos", Body::Digest);
        r.now = TimePointSec(t);
        r
    };
    for t in [NOW, NOW + 10] {
        let d = p.evaluate(&at(t), &context(), &counters);
        assert_eq!(d.verdict, Verdict::Allow, "{t}");
        assert_eq!(d.charges.len(), 1);
        counters.record(&d.charges, TimePointSec(t));
    }
    let d = p.evaluate(&at(NOW + 20), &context(), &counters);
    let Verdict::Deny(reason) = &d.verdict else {
        panic!("{d:?}")
    };
    assert!(
        reason.starts_with(
            "rule digest-rate: rate limit of 2 requests per 60 s for principal \"node2\""
        ),
        "{reason}"
    );
    assert!(reason.contains("(2 signed in the window)"), "{reason}");
    // A denied request is not recorded; once the first hit leaves the window, one more fits.
    let d = p.evaluate(&at(NOW + 60), &context(), &counters);
    assert_eq!(d.verdict, Verdict::Allow);
    // An unrecorded Allow uses nothing up: the caller records only what it signed.
    assert!(
        p.evaluate(&at(NOW + 60), &context(), &counters)
            .verdict
            .is_allow()
    );
    counters.record(&d.charges, TimePointSec(NOW + 60));
    assert!(
        !p.evaluate(&at(NOW + 69), &context(), &counters)
            .verdict
            .is_allow()
    );
    // Other principals have their own windows (and here, no rule).
    let mut other = at(NOW + 69);
    other.principal = "node3".into();
    assert_eq!(p.evaluate(&other, &context(), &counters).rule, None);
}

#[test]
fn approvals_verdict_carries_the_set() {
    let p = policy();
    let d = p.evaluate(
        &request(
            "admin",
            key(1),
            "eos",
            tx(trx(vec![linkauth(ACTIVE, "custody1")])),
        ),
        &context(),
        &MemoryCounters::new(),
    );
    assert_eq!(
        d.verdict,
        Verdict::NeedsApprovals {
            threshold: 2,
            approvers: vec![key(3), key(4), key(5)],
            set: "custody".into()
        }
    );
    assert_eq!(d.rule.as_deref(), Some("permission-admin"));
    // A failing constraint still denies: approvals never override a refusal.
    let d = p.evaluate(
        &request(
            "admin",
            key(1),
            "eos",
            tx(trx(vec![linkauth(ACTIVE, "other")])),
        ),
        &context(),
        &MemoryCounters::new(),
    );
    assert!(matches!(d.verdict, Verdict::Deny(_)));
}

#[test]
fn explain_lists_every_rule() {
    let p = policy();
    let e = p.explain(
        &request(
            "ops",
            key(1),
            "eos",
            tx(trx(vec![transfer(
                ACTIVE,
                "custody1",
                "mallory",
                "1.0000 EOS",
            )])),
        ),
        &context(),
        &MemoryCounters::new(),
    );
    assert_eq!(e.rules.len(), p.rules().len());
    assert_eq!(
        e.rules[0].scope,
        Scope::Missed("principal \"ops\" is not in principals".into())
    );
    assert_eq!(e.rules[3].scope, Scope::Matched);
    assert_eq!(
        e.rules[3].decided_by.as_deref(),
        Some("transfer.recipients")
    );
    assert!(e.rules[4..].iter().all(|t| t.scope == Scope::NotReached));
    let text = e.to_string();
    assert!(
        text.contains(
            "rule \"custody-transfers\" (line 26): scope matched; decided by transfer.recipients"
        ),
        "{text}"
    );
    assert!(
        text.contains("verdict: deny: rule custody-transfers: action #0"),
        "{text}"
    );

    let e = p.explain(
        &request("nobody", key(1), "eos", Body::Digest),
        &context(),
        &MemoryCounters::new(),
    );
    assert!(e.rules.iter().all(|t| matches!(t.scope, Scope::Missed(_))));
    assert_eq!(e.decision.rule, None);
}

#[test]
fn first_matching_rule_decides() {
    let k = key(1);
    let p = Policy::parse(&format!(
        r#"
version = "1"
[[rule]]
name = "narrow"
principals = ["ops"]
keys = ["{k}"]
kinds = ["transaction"]
actions = ["eosio::claimrewards"]

[[rule]]
name = "broad"
principals = ["ops"]
keys = ["{k}"]
kinds = ["transaction", "digest"]
actions = ["eosio.token::transfer"]
"#
    ))
    .unwrap();
    // The first rule's scope matches, so it decides, even though the second would allow.
    let d = p.evaluate(
        &request(
            "ops",
            k,
            "eos",
            tx(trx(vec![transfer(ACTIVE, "custody1", "bob", "1.0000 EOS")])),
        ),
        &Context::default(),
        &MemoryCounters::new(),
    );
    assert_eq!(d.rule.as_deref(), Some("narrow"));
    assert!(matches!(d.verdict, Verdict::Deny(_)));
    // Digest requests are outside the first rule's scope and reach the second.
    let d = p.evaluate(
        &request("ops", k, "eos", Body::Digest),
        &Context::default(),
        &MemoryCounters::new(),
    );
    assert_eq!(d.rule.as_deref(), Some("broad"));
    assert_eq!(d.verdict, Verdict::Allow);
}

/// `msig_proposed_actions`: a key that may approve eosio.msig proposals approves only proposals
/// whose every action matches; the proposals must be the ones the approves pin.
#[test]
fn msig_proposed_actions_constrain_what_a_key_approves() {
    use oryx_proto::antelope::actions::Propose;
    let k1 = key(1);
    // The rule "custody-approvals": ops may have k1 approve eosio.msig proposals, with `rest`.
    let approver = |rest: &str| {
        Policy::parse(&format!(
            "version = \"msig\"\n[[rule]]\nname = \"custody-approvals\"\nprincipals = [\"ops\"]\n\
             keys = [\"{k1}\"]\nkinds = [\"transaction\"]\n\
             actions = [\"eosio.msig::approve@custody1@active\"]\n{rest}\n"
        ))
        .unwrap()
    };
    let p = approver(
        r#"msig_proposed_actions = ["eosio::updateauth@alice@owner", "eosio.token::transfer"]"#,
    );
    let approve_of = |proposal: &Transaction| {
        Propose::build(
            n("proposer1"),
            n("rotate"),
            vec!["custody1@active".parse().unwrap()],
            proposal,
        )
        .unwrap()
        .approve("custody1@active".parse().unwrap())
        .to_action()
        .unwrap()
    };
    let body = |proposal: &Transaction, given: Vec<Transaction>| Body::Transaction {
        trx: trx(vec![approve_of(proposal)]),
        has_context_free_data: false,
        msig_proposals: given,
    };
    let decide = |b: Body| {
        p.evaluate(
            &request("ops", k1, "eos", b),
            &context(),
            &MemoryCounters::new(),
        )
        .verdict
    };
    let deny = |b: Body| match decide(b) {
        Verdict::Deny(r) => r,
        v => panic!("expected a denial, got {v:?}"),
    };

    let rotate = trx(vec![updateauth(&["alice@owner"], "alice", "owner", "")]);
    assert_eq!(decide(body(&rotate, vec![rotate.clone()])), Verdict::Allow);
    let pay = trx(vec![transfer(
        &["alice@active"],
        "alice",
        "bob",
        "1.0000 EOS",
    )]);
    assert_eq!(decide(body(&pay, vec![pay.clone()])), Verdict::Allow);

    // A proposed action outside the list is named.
    let link = trx(vec![
        updateauth(&["alice@owner"], "alice", "owner", ""),
        linkauth(&["alice@active"], "alice"),
    ]);
    let r = deny(body(&link, vec![link.clone()]));
    assert!(
        r.starts_with("rule custody-approvals: action #0 eosio.msig::approve (custody1@active) approves a proposal whose action #1 eosio::linkauth (alice@active) is not allowed by msig_proposed_actions"),
        "{r}"
    );
    // The authorization is part of the pattern.
    let active = trx(vec![updateauth(&["alice@active"], "alice", "owner", "")]);
    assert!(
        deny(body(&active, vec![active.clone()]))
            .contains("action #0 eosio::updateauth (alice@active)")
    );
    // The proposal must be given, and be the one the approve pins.
    assert!(
        deny(body(&rotate, vec![])).contains("1 eosio.msig::approve action(s) but 0 proposal(s)")
    );
    assert!(deny(body(&link, vec![rotate.clone()])).contains("pins proposal_hash"));

    // Proposed transfers are held to the rule's transfer limits, recipients and budget like
    // direct ones (a proposal of 9 999 EOS to an account not on the list was approved before).
    let limited = approver(
        r#"msig_proposed_actions = ["eosio.token::transfer"]
transfer = { max_per_tx = "100.0000 EOS", daily_budget = "150.0000 EOS", recipients = ["bob"] }"#,
    );
    let mut counters = MemoryCounters::new();
    let decide = |b: Body, counters: &MemoryCounters| {
        limited.evaluate(&request("ops", k1, "eos", b), &context(), counters)
    };
    let pay = |to: &str, amount: &str| trx(vec![transfer(&["alice@active"], "alice", to, amount)]);
    for (proposal, want) in [
        (
            pay("carol", "9999.0000 EOS"),
            "proposal 0 (approved by this transaction), action #0 eosio.token::transfer (alice@active): recipient carol is not in transfer.recipients",
        ),
        (
            pay("bob", "9999.0000 EOS"),
            "transfers 9999.0000 EOS (the proposals it approves included), more than the 100.0000 EOS allowed per transaction",
        ),
    ] {
        match decide(body(&proposal, vec![proposal.clone()]), &counters).verdict {
            Verdict::Deny(r) => assert!(r.contains(want), "{r}"),
            v => panic!("{want}: {v:?}"),
        }
    }
    let ok = pay("bob", "90.0000 EOS");
    let d = decide(body(&ok, vec![ok.clone()]), &counters);
    assert_eq!(d.verdict, Verdict::Allow);
    counters.record(&d.charges, TimePointSec(NOW));
    // The approved 90 EOS count against the daily budget: another 90 would exceed 150.
    match decide(body(&ok, vec![ok.clone()]), &counters).verdict {
        Verdict::Deny(r) => assert!(r.contains("daily budget of 150.0000 EOS"), "{r}"),
        v => panic!("budget: {v:?}"),
    }
}
