//! Property tests for the policy's invariants: default deny; no rule allows a principal, key,
//! kind or action it does not name; a rule with approvals never yields Allow.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use oryx_policy::{Body, Context, Kind, MemoryCounters, Policy, Request, Verdict};
use oryx_proto::antelope::transaction::Action;
use oryx_proto::antelope::{Name, TimePointSec};
use proptest::prelude::*;
use proptest::sample::subsequence as subset;

/// Principals rules may name; requests also use the last one, which no rule names.
const PRINCIPALS: [&str; 4] = ["ops", "node", "admin", "stranger"];
/// Key seeds rules may name (1..=3); requests also use 4.
const KEYS: [u8; 4] = [1, 2, 3, 4];
/// (contract, action) pairs rules may name (the first five); requests also use the last.
const ACTIONS: [(&str, &str); 6] = [
    ("eosio.token", "transfer"),
    ("eosio", "claimrewards"),
    ("eosio", "voteproducer"),
    ("app", "log"),
    ("app", "store"),
    ("other", "thing"),
];
const CHAINS: [&str; 2] = ["eos", "jungle4"];

#[derive(Debug, Clone)]
struct RuleSpec {
    principals: Vec<usize>,
    keys: Vec<usize>,
    kinds: Vec<usize>,
    actions: Vec<usize>,
    chain: Option<usize>,
    approvals: bool,
}

fn rule_spec(approvals: BoxedStrategy<bool>) -> impl Strategy<Value = RuleSpec> {
    (
        subset((0..3).collect::<Vec<_>>(), 1..=3),
        subset((0..3).collect::<Vec<_>>(), 1..=3),
        subset((0..3).collect::<Vec<_>>(), 1..=3),
        subset((0..5).collect::<Vec<_>>(), 1..=5),
        proptest::option::of(0..2usize),
        approvals,
    )
        .prop_map(
            |(principals, keys, kinds, actions, chain, approvals)| RuleSpec {
                principals,
                keys,
                kinds,
                actions,
                chain,
                approvals,
            },
        )
}

fn quoted(items: impl Iterator<Item = String>) -> String {
    format!(
        "[{}]",
        items
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn policy_text(rules: &[RuleSpec]) -> String {
    let mut text = String::from("version = \"prop\"\n");
    for (i, r) in rules.iter().enumerate() {
        text += &format!(
            "\n[[rule]]\nname = \"r{i}\"\nprincipals = {}\nkeys = {}\nkinds = {}\n",
            quoted(r.principals.iter().map(|&p| PRINCIPALS[p].to_string())),
            quoted(r.keys.iter().map(|&k| key(KEYS[k]).to_string())),
            quoted(r.kinds.iter().map(|&k| Kind::ALL[k].as_str().to_string())),
        );
        if r.kinds.contains(&1) {
            text += &format!(
                "allow_unknown_action_data = true\nactions = {}\n",
                quoted(
                    r.actions
                        .iter()
                        .map(|&a| format!("{}::{}", ACTIONS[a].0, ACTIONS[a].1))
                )
            );
        }
        if let Some(c) = r.chain {
            text += &format!("chains = [\"{}\"]\n", CHAINS[c]);
        }
        if r.approvals {
            text += &format!(
                "approvals = {{ threshold = 1, approvers = [\"{}\", \"{}\"], set = \"s\" }}\n",
                key(7),
                key(8)
            );
        }
    }
    text
}

/// A valid action of the given kind, so data decoding is never what refuses.
fn action_of(i: usize) -> Action {
    let auth = &["custody1@active"];
    match ACTIONS[i] {
        ("eosio.token", "transfer") => transfer(auth, "custody1", "bob", "1.0000 EOS"),
        ("eosio", "claimrewards") => claimrewards(auth, "custody1"),
        ("eosio", "voteproducer") => voteproducer(auth, "custody1", &["bp1"]),
        (c, a) => action(c, a, auth, vec![1, 2, 3]),
    }
}

fn request_strategy() -> impl Strategy<Value = Request> {
    (
        0..PRINCIPALS.len(),
        0..KEYS.len(),
        0..3usize,
        0..CHAINS.len(),
        proptest::collection::vec(0..ACTIONS.len(), 1..4),
        any::<u32>(),
    )
        .prop_map(|(p, k, kind, c, actions, block_num)| {
            let body = match Kind::ALL[kind] {
                Kind::Block => Body::Block {
                    block_num,
                    producer: Name::new("producer1").unwrap(),
                },
                Kind::Digest => Body::Digest,
                Kind::Transaction => tx(trx(actions.into_iter().map(action_of).collect())),
            };
            request(PRINCIPALS[p], key(KEYS[k]), CHAINS[c], body)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn an_empty_policy_denies_everything(req in request_strategy(), now: u32) {
        let p = Policy::parse("version = \"empty\"").unwrap();
        let mut req = req;
        req.now = TimePointSec(now);
        let d = p.evaluate(&req, &Context { held_keys: vec![req.key] }, &MemoryCounters::new());
        prop_assert!(matches!(d.verdict, Verdict::Deny(_)), "{:?}", d);
        prop_assert_eq!(d.rule, None);
        prop_assert!(d.charges.is_empty());
    }

    #[test]
    fn no_rule_allows_what_it_does_not_name(
        rules in proptest::collection::vec(rule_spec(any::<bool>().boxed()), 0..5),
        req in request_strategy(),
    ) {
        let p = Policy::parse(&policy_text(&rules)).unwrap();
        let d = p.evaluate(&req, &Context::default(), &MemoryCounters::new());
        if matches!(d.verdict, Verdict::Allow | Verdict::NeedsApprovals { .. }) {
            let name = d.rule.clone().unwrap();
            let rule = p.rules().iter().find(|r| r.name == name).unwrap();
            prop_assert!(rule.names_principal(&req.principal));
            prop_assert!(rule.names_key(&req.key));
            prop_assert!(rule.kinds.contains(&req.body.kind()));
            prop_assert!(rule.names_chain(&req.chain_id));
            // Nothing outside the universe rules draw from is ever allowed.
            prop_assert_ne!(req.principal.as_str(), "stranger");
            prop_assert_ne!(req.key, key(4));
            if let Body::Transaction { trx, .. } = &req.body {
                for a in &trx.actions {
                    prop_assert!(rule.names_action(a.account, a.name), "{}::{}", a.account, a.name);
                    prop_assert_ne!(a.account, Name::new("other").unwrap());
                }
            }
            prop_assert_eq!(rule.approvals.is_some(), !d.verdict.is_allow());
        } else {
            prop_assert!(d.charges.is_empty());
        }
    }

    #[test]
    fn a_rule_with_approvals_never_allows(
        rules in proptest::collection::vec(rule_spec(Just(true).boxed()), 1..5),
        req in request_strategy(),
    ) {
        let p = Policy::parse(&policy_text(&rules)).unwrap();
        let d = p.evaluate(&req, &Context::default(), &MemoryCounters::new());
        prop_assert!(!d.verdict.is_allow(), "{:?}", d);
    }
}

/// The universe is wide enough that the property above is not vacuous: some requests are
/// allowed.
#[test]
fn the_property_universe_allows_something() {
    let spec = RuleSpec {
        principals: vec![0],
        keys: vec![0],
        kinds: vec![0, 1, 2],
        actions: vec![0, 3],
        chain: None,
        approvals: false,
    };
    let p = Policy::parse(&policy_text(&[spec])).unwrap();
    let req = request(
        "ops",
        key(1),
        "eos",
        tx(trx(vec![action_of(0), action_of(3)])),
    );
    assert_eq!(
        p.evaluate(&req, &Context::default(), &MemoryCounters::new())
            .verdict,
        Verdict::Allow
    );
    let req = request(
        "ops",
        key(1),
        "eos",
        tx(trx(vec![action_of(0), action_of(4)])),
    );
    assert!(
        !p.evaluate(&req, &Context::default(), &MemoryCounters::new())
            .verdict
            .is_allow()
    );
}
