//! Action patterns: `contract::action` or `contract::action@actor@permission`.
//!
//! Guards: a pattern names exactly what it allows. `*` is accepted only as a whole component (and
//! linted); anything else must be a valid Antelope name, so a typo cannot silently widen a rule.
//! When a pattern names an authorization, *every* authorization of the action must match it for
//! an allow (an action cannot smuggle in an extra `@owner`), while any single matching
//! authorization is enough for a deny.

use std::fmt;

use oryx_proto::antelope::transaction::Action;
use oryx_proto::antelope::{Name, PermissionLevel};

/// One component of a pattern: a name, or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamePattern {
    /// `*`: any name.
    Any,
    /// Exactly this name.
    Is(Name),
}

impl NamePattern {
    fn parse(text: &str, what: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(NamePattern::Any);
        }
        if text.contains('*') {
            return Err(format!(
                "{what} {text:?}: `*` is allowed only as a whole component"
            ));
        }
        if text.is_empty() {
            return Err(format!("{what} is empty"));
        }
        Name::new(text)
            .map(NamePattern::Is)
            .map_err(|e| format!("{what} {text:?}: {e}"))
    }

    /// Whether `name` matches.
    pub fn matches(self, name: Name) -> bool {
        match self {
            NamePattern::Any => true,
            NamePattern::Is(n) => n == name,
        }
    }

    /// Whether every name this matches, `other` matches too.
    pub fn covers(self, other: NamePattern) -> bool {
        match (self, other) {
            (NamePattern::Any, _) => true,
            (NamePattern::Is(a), NamePattern::Is(b)) => a == b,
            (NamePattern::Is(_), NamePattern::Any) => false,
        }
    }

    /// Whether this is `*`.
    pub fn is_any(self) -> bool {
        self == NamePattern::Any
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamePattern::Any => f.write_str("*"),
            NamePattern::Is(n) => write!(f, "{n}"),
        }
    }
}

/// `actor@permission`, each possibly `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthPattern {
    /// The authorizing account.
    pub actor: NamePattern,
    /// Its permission.
    pub permission: NamePattern,
}

impl AuthPattern {
    /// Whether `level` matches.
    pub fn matches(self, level: &PermissionLevel) -> bool {
        self.actor.matches(level.actor) && self.permission.matches(level.permission)
    }
}

/// A pattern over actions: `contract::action`, optionally `@actor@permission`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionPattern {
    /// The contract account.
    pub contract: NamePattern,
    /// The action name.
    pub action: NamePattern,
    /// The authorization, when the pattern names one.
    pub auth: Option<AuthPattern>,
}

impl ActionPattern {
    /// Parses `contract::action` or `contract::action@actor@permission`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = || {
            format!(
                "{text:?} is not contract::action or contract::action@actor@permission \
                 (e.g. eosio.token::transfer@custody1@active)"
            )
        };
        let (contract, rest) = text.split_once("::").ok_or_else(expected)?;
        let (action, auth) = match rest.split_once('@') {
            None => (rest, None),
            Some((action, level)) => {
                let (actor, permission) = level.split_once('@').ok_or_else(expected)?;
                let auth = AuthPattern {
                    actor: NamePattern::parse(actor, "actor")?,
                    permission: NamePattern::parse(permission, "permission")?,
                };
                (action, Some(auth))
            }
        };
        Ok(ActionPattern {
            contract: NamePattern::parse(contract, "contract")?,
            action: NamePattern::parse(action, "action")?,
            auth,
        })
    }

    /// Whether the contract and action name match, regardless of authorization.
    pub fn names(&self, account: Name, name: Name) -> bool {
        self.contract.matches(account) && self.action.matches(name)
    }

    /// Whether this pattern, in an allow list, allows `action`: contract and name match, and if
    /// the pattern names an authorization, the action has at least one and all of them match.
    pub fn allows(&self, action: &Action) -> bool {
        self.names(action.account, action.name)
            && self.auth.is_none_or(|auth| {
                !action.authorization.is_empty()
                    && action.authorization.iter().all(|l| auth.matches(l))
            })
    }

    /// Whether this pattern, in a deny list, catches `action`: contract and name match, and if
    /// the pattern names an authorization, at least one authorization matches.
    pub fn denies(&self, action: &Action) -> bool {
        self.names(action.account, action.name)
            && self
                .auth
                .is_none_or(|auth| action.authorization.iter().any(|l| auth.matches(l)))
    }

    /// Whether any component is `*`.
    pub fn has_wildcard(&self) -> bool {
        self.contract.is_any()
            || self.action.is_any()
            || self
                .auth
                .is_some_and(|a| a.actor.is_any() || a.permission.is_any())
    }
}

impl fmt::Display for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}", self.contract, self.action)?;
        if let Some(auth) = self.auth {
            write!(f, "@{}@{}", auth.actor, auth.permission)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use oryx_proto::antelope::Bytes;

    fn action(account: &str, name: &str, auth: &[&str]) -> Action {
        Action {
            account: Name::new(account).unwrap(),
            name: Name::new(name).unwrap(),
            authorization: auth.iter().map(|a| a.parse().unwrap()).collect(),
            data: Bytes(vec![]),
        }
    }

    #[test]
    fn parses_and_prints() {
        for text in [
            "eosio.token::transfer",
            "eosio.token::transfer@custody1@active",
            "eosio::*",
            "*::*@*@*",
        ] {
            assert_eq!(ActionPattern::parse(text).unwrap().to_string(), text);
        }
        for bad in [
            "eosio.token",
            "eosio.token::transfer@custody1",
            "eosio.token::transfer@custody1.active",
            "eosio::trans*",
            "eosio::",
            "::transfer",
            "EOSIO::transfer",
            "eosio::transfer@a@b@c",
        ] {
            assert!(ActionPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allow_needs_every_authorization_deny_needs_one() {
        let p = ActionPattern::parse("eosio.token::transfer@custody1@active").unwrap();
        assert!(p.allows(&action("eosio.token", "transfer", &["custody1@active"])));
        assert!(!p.allows(&action(
            "eosio.token",
            "transfer",
            &["custody1@active", "custody1@owner"]
        )));
        assert!(!p.allows(&action("eosio.token", "transfer", &[])));
        assert!(!p.allows(&action("eosio.token", "issue", &["custody1@active"])));
        assert!(p.denies(&action(
            "eosio.token",
            "transfer",
            &["other@active", "custody1@active"]
        )));
        assert!(!p.denies(&action("eosio.token", "transfer", &["other@active"])));
        let bare = ActionPattern::parse("eosio.token::transfer").unwrap();
        assert!(bare.allows(&action("eosio.token", "transfer", &[])));
        assert!(bare.denies(&action("eosio.token", "transfer", &["x@y"])));
    }
}
