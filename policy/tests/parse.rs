//! Policy files: syntax and semantic errors report the right line; lints catch risky policies.
#![allow(clippy::unwrap_used)]

mod common;

use common::key;
use oryx_policy::{LintKind, Policy, PolicyError};

fn err(text: &str) -> PolicyError {
    Policy::parse(text).unwrap_err()
}

/// A valid rule (lines 3–8 after `version` on line 1), with `extra` lines appended from line 9.
fn with_rule(extra: &str) -> String {
    format!(
        "version = \"v1\"\n\
         \n\
         [[rule]]\n\
         name = \"r1\"\n\
         principals = [\"ops\"]\n\
         keys = [\"{}\"]\n\
         kinds = [\"transaction\"]\n\
         actions = [\"eosio.token::transfer@custody1@active\"]\n\
         {extra}",
        key(1)
    )
}

#[test]
fn the_example_parses() {
    let (k, a, b, c) = (key(1), key(2), key(3), key(4));
    let p = Policy::parse(&format!(
        r#"
version = "2025-06-01.1"
[[rule]]
name = "custody-transfers"
principals = ["ops-laptop"]
keys = ["{k}"]
kinds = ["transaction"]
chains = ["eos", "73e4385a2708e6d7048834fbc1079f2fabb17b3c125b146af438971e90716c4d"]
rate = {{ max = 10, per_seconds = 3600 }}
actions = ["eosio.token::transfer@custody1@active"]
deny_actions = ["eosio.token::transfer@custody1@owner"]
context_free_actions = "deny"
transaction_extensions = "deny"
allow_unknown_action_data = false
max_expiration_seconds = 3600
transfer = {{ max_per_tx = "100.0000 EOS", daily_budget = "1000.0000 EOS", recipients = ["exchange1"] }}
approvals = {{ threshold = 2, approvers = ["{a}", "{b}", "{c}"], set = "custody" }}
"#
    ))
    .unwrap();
    assert_eq!(p.version(), "2025-06-01.1");
    assert_eq!(p.rules().len(), 1);
    assert_eq!(p.rules()[0].line, 4);
    assert_eq!(p.rules()[0].chains.as_ref().map(Vec::len), Some(2));
    assert!(p.lint().is_empty(), "{:?}", p.lint());
    // Legacy EOS keys are accepted too.
    let legacy = k.to_legacy_string().unwrap();
    assert!(Policy::parse(&with_rule("").replace(&k.to_string(), &legacy)).is_ok());
}

#[test]
fn syntax_errors_carry_line_and_column() {
    // Unterminated array on line 6.
    let text = "version = \"v1\"\n\n[[rule]]\nname = \"r1\"\nprincipals = [\"ops\"]\nkinds = [\"block\"\nkeys = []\n";
    let e = err(text);
    assert!(matches!(e, PolicyError::Syntax { line: 6 | 7, .. }), "{e}");

    // Unknown field on line 9.
    let e = err(&with_rule("kindz = [\"block\"]\n"));
    let PolicyError::Syntax {
        line,
        column,
        message,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((*line, *column), (9, 1), "{e}");
    assert!(message.contains("kindz"), "{e}");
    assert!(e.to_string().starts_with("line 9, column 1: "), "{e}");

    // Unknown field inside an inline table.
    let e = err(&with_rule("transfer = { max = \"1.0000 EOS\" }\n"));
    assert_eq!(e.line(), Some(9), "{e}");
    assert!(e.to_string().contains("max"), "{e}");

    // Wrong type on line 9.
    let e = err(&with_rule("max_expiration_seconds = \"an hour\"\n"));
    assert_eq!(e.line(), Some(9), "{e}");

    // Missing version.
    let e = err("");
    assert!(e.to_string().contains("missing field `version`"), "{e}");
    // Missing keys: reported at the rule's [[rule]] header, line 2.
    let e =
        err("version = \"1\"\n[[rule]]\nname = \"x\"\nprincipals = [\"a\"]\nkinds = [\"block\"]\n");
    assert_eq!(e.to_string(), "line 2, column 1: missing field `keys`");
}

#[test]
fn semantic_errors_name_the_rule_and_line() {
    let (a, b) = (key(3), key(4));
    let rows: Vec<(String, usize, &str)> = vec![
        (
            with_rule(&format!(
                "approvals = {{ threshold = 0, approvers = [\"{a}\"], set = \"s\" }}\n"
            )),
            9,
            "threshold must be at least 1",
        ),
        (
            with_rule(&format!(
                "approvals = {{ threshold = 3, approvers = [\"{a}\", \"{b}\"], set = \"s\" }}\n"
            )),
            9,
            "2 approver(s) can never reach a threshold of 3",
        ),
        (
            with_rule(&format!(
                "approvals = {{ threshold = 1,\n  approvers = [\"{a}\",\n  \"{a}\"], set = \"s\" }}\n"
            )),
            11,
            "listed twice",
        ),
        (
            with_rule(
                "approvals = { threshold = 1, approvers = [\"PUB_K1_nope\"], set = \"s\" }\n",
            ),
            9,
            "is not a public key",
        ),
        (
            with_rule("").replace(
                &key(1).to_string(),
                "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CX",
            ),
            6,
            "keys: \"EOS6MR",
        ),
        (
            with_rule(
                "transfer = { max_per_tx = \"100 EOS\",\n daily_budget = \"1000.0000 EOS\" }\n",
            ),
            10,
            "max_per_tx is in 0,EOS but daily_budget is in 4,EOS",
        ),
        (
            with_rule("transfer = { max_per_tx = \"100.0000 eos\" }\n"),
            9,
            "transfer.max_per_tx",
        ),
        (
            with_rule("transfer = { daily_budget = \"0.0000 EOS\" }\n"),
            9,
            "not a positive amount",
        ),
        (
            with_rule("transfer = { recipients = [\"Bad Name\"] }\n"),
            9,
            "not an account name",
        ),
        (
            with_rule("").replace("[\"transaction\"]", "[\"transaction\", \"blocks\"]"),
            7,
            "unknown kind \"blocks\"",
        ),
        (with_rule("chains = [\"eos\", \"mainnet\"]\n"), 9, "chains:"),
        (
            with_rule("rate = { max = 0, per_seconds = 1 }\n"),
            9,
            "rate.max must be at least 1",
        ),
        (
            with_rule("context_free_actions = \"allow\"\n"),
            9,
            "not \"deny\" or \"allow_listed\"",
        ),
        (
            with_rule("only = \"transfer\"\n"),
            9,
            "not \"claimrewards\" or \"voteproducer\"",
        ),
        (
            with_rule("deny_actions = [\"eosio.token::trans*\"]\n"),
            9,
            "only as a whole component",
        ),
        (
            with_rule("").replace("custody1@active", "custody1.active"),
            8,
            "actions:",
        ),
        (
            with_rule("").replace("actions = [\"eosio.token::transfer@custody1@active\"]", ""),
            4,
            "must list the `actions`",
        ),
        (
            with_rule("").replace("[\"transaction\"]", "[\"block\"]"),
            8,
            "`actions` applies to transactions",
        ),
        (
            with_rule(
                "\n[[rule]]\nname = \"r1\"\nprincipals = [\"x\"]\nkeys = [\"*\"]\nkinds = [\"digest\"]\n",
            ),
            11,
            "duplicate rule name",
        ),
        (
            with_rule("msig_proposed_actions = [\"eosio::updateauth\"]\n"),
            9,
            "no `actions` pattern of this rule allows eosio.msig::approve",
        ),
        (
            with_rule("msig_proposed_actions = []\n")
                .replace("eosio.token::transfer", "eosio.msig::approve"),
            9,
            "`msig_proposed_actions` must not be empty",
        ),
        (
            with_rule("msig_proposed_actions = [\"eosio::update*\"]\n")
                .replace("eosio.token::transfer", "eosio.msig::approve"),
            9,
            "msig_proposed_actions: action \"update*\"",
        ),
        (
            with_rule("").replace("[\"ops\"]", "[]"),
            5,
            "`principals` must not be empty",
        ),
        (
            with_rule("").replace("version = \"v1\"", "version = \"  \""),
            1,
            "`version` must not be empty",
        ),
    ];
    for (text, line, part) in rows {
        let e = err(&text);
        assert_eq!(e.line(), Some(line), "{part}: {e}\n{text}");
        assert!(e.to_string().contains(part), "{part}: {e}");
        if line != 1 {
            assert!(e.to_string().contains("rule \"r1\""), "{e}");
        }
    }
}

fn kinds(text: &str) -> Vec<LintKind> {
    Policy::parse(text)
        .unwrap()
        .lint()
        .iter()
        .map(|l| l.kind)
        .collect()
}

#[test]
fn lints() {
    let (k1, k2, a, b) = (key(1), key(2), key(3), key(4));
    let rule = |name: &str, principals: &str, keys: &str, kinds: &str, rest: &str| {
        format!(
            "[[rule]]\nname = \"{name}\"\nprincipals = {principals}\nkeys = {keys}\nkinds = {kinds}\n{rest}\n"
        )
    };
    let v = "version = \"1\"\n";
    let one = format!("[\"{k1}\"]");

    // Clean.
    assert_eq!(
        kinds(&format!(
            "{v}{}",
            rule(
                "a",
                "[\"ops\"]",
                &one,
                "[\"transaction\"]",
                "actions = [\"eosio.token::transfer@c@active\"]"
            )
        )),
        vec![]
    );
    // Wildcards.
    assert_eq!(
        kinds(&format!(
            "{v}{}",
            rule(
                "a",
                "[\"*\"]",
                "[\"*\"]",
                "[\"transaction\"]",
                "actions = [\"eosio.token::*@c@active\"]"
            )
        )),
        vec![LintKind::Wildcard; 3]
    );
    // eosio.msig::approve without msig_proposed_actions: any proposal could be approved.
    let approver = |rest: &str| {
        kinds(&format!(
            "{v}{}",
            rule(
                "a",
                "[\"ops\"]",
                &one,
                "[\"transaction\"]",
                &format!("actions = [\"eosio.msig::approve@c@active\"]\n{rest}")
            )
        ))
    };
    assert_eq!(
        approver(""),
        vec![
            LintKind::MsigApproveUnconstrained,
            LintKind::MsigTransfersUnlimited
        ]
    );
    // Proposals that may transfer tokens need the rule's transfer limits (they hold for them).
    assert_eq!(
        approver("msig_proposed_actions = [\"eosio.token::transfer\"]"),
        vec![LintKind::MsigTransfersUnlimited]
    );
    assert_eq!(
        approver(
            "msig_proposed_actions = [\"eosio.token::transfer\"]\ntransfer = { max_per_tx = \"10.0000 EOS\" }"
        ),
        vec![]
    );
    assert_eq!(
        approver("msig_proposed_actions = [\"eosio::updateauth@c@owner\"]"),
        vec![]
    );
    assert_eq!(
        approver("msig_proposed_actions = [\"eosio::*\"]"),
        vec![LintKind::Wildcard]
    );
    // updateauth without approvals; linkauth on owner; owner permission.
    assert_eq!(
        kinds(&format!(
            "{v}{}",
            rule(
                "a",
                "[\"ops\"]",
                &one,
                "[\"transaction\"]",
                "actions = [\"eosio::updateauth@c@active\", \"eosio::linkauth@c@owner\", \"eosio::linkauth@c@active\", \"eosio::voteproducer@c@owner\"]\nupdateauth = { accounts = [\"c\"], permissions = [\"active\"] }\nlinkauth = { accounts = [\"c\"] }"
            )
        )),
        vec![
            LintKind::PermissionChangeWithoutApprovals,
            LintKind::PermissionChangeWithoutApprovals,
            LintKind::OwnerWithoutApprovals
        ]
    );
    // The same with approvals: only the missing spare approver is reported.
    let lints = Policy::parse(&format!("{v}{}", rule("a", "[\"ops\"]", &one, "[\"transaction\"]",
        &format!("actions = [\"eosio::updateauth@c@owner\"]\nupdateauth = {{ accounts = [\"c\"], permissions = [\"active\"] }}\napprovals = {{ threshold = 2, approvers = [\"{a}\", \"{b}\"], set = \"custody\" }}")))).unwrap().lint();
    assert_eq!(
        lints.iter().map(|l| l.kind).collect::<Vec<_>>(),
        vec![LintKind::NoSpareApprover]
    );
    assert_eq!(lints[0].line, 3);
    assert!(
        lints[0]
            .to_string()
            .starts_with("line 3: rule \"a\": warning: approval set \"custody\""),
        "{}",
        lints[0]
    );
    // A key for both blocks and transactions.
    assert_eq!(
        kinds(&format!(
            "{v}{}{}",
            rule(
                "blocks",
                "[\"node\"]",
                &format!("[\"{k1}\", \"{k2}\"]"),
                "[\"block\"]",
                ""
            ),
            rule(
                "trx",
                "[\"ops\"]",
                &one,
                "[\"transaction\"]",
                "actions = [\"eosio::claimrewards@p@claim\"]"
            )
        )),
        vec![LintKind::KeyForBlocksAndTransactions]
    );
    // Shadowing: the second rule's scope is inside the first's (wildcard principal, any chain).
    let text = format!(
        "{v}{}{}{}",
        rule(
            "broad",
            "[\"*\"]",
            &format!("[\"{k1}\", \"{k2}\"]"),
            "[\"digest\", \"block\"]",
            ""
        ),
        rule(
            "narrow",
            "[\"ops\"]",
            &one,
            "[\"digest\"]",
            "chains = [\"eos\"]"
        ),
        rule(
            "other-kind",
            "[\"ops\"]",
            &one,
            "[\"transaction\"]",
            "actions = [\"eosio::claimrewards@p@claim\"]"
        )
    );
    let lints = Policy::parse(&text).unwrap().lint();
    let shadowed: Vec<&str> = lints
        .iter()
        .filter(|l| l.kind == LintKind::Shadowed)
        .map(|l| l.rule.as_str())
        .collect();
    assert_eq!(shadowed, vec!["narrow"]);
    // A chain pin does not cover an unpinned rule.
    let text = format!(
        "{v}{}{}",
        rule(
            "pinned",
            "[\"ops\"]",
            &one,
            "[\"digest\"]",
            "chains = [\"eos\"]"
        ),
        rule("unpinned", "[\"ops\"]", &one, "[\"digest\"]", "")
    );
    assert!(Policy::parse(&text).unwrap().lint().is_empty());
}
