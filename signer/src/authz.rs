//! Authorization: may this principal use this key for this kind of request on this chain?
//!
//! Guards: default deny. The [`Authorizer`] trait is the seam the policy engine (`oryx-policy`)
//! fills; until then [`AllowList`] answers from the config's `[[allow]]` rules, which name
//! principals, keys and request kinds explicitly and have no wildcards.

use oryx_proto::antelope::{Checksum256, PublicKey};

use crate::config::{AllowRule, RequestKind};

/// Decides whether a request may proceed to the watermark and the key.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// `Ok` to allow; `Err(reason)` to deny, naming what is missing.
    fn authorize(
        &self,
        principal: &str,
        key: &PublicKey,
        chain_id: &Checksum256,
        kind: RequestKind,
    ) -> Result<(), String>;

    /// The version of the rules that decided (recorded in every audit entry).
    fn version(&self) -> String;
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
    fn authorize(
        &self,
        principal: &str,
        key: &PublicKey,
        _chain_id: &Checksum256,
        kind: RequestKind,
    ) -> Result<(), String> {
        let allowed = self
            .rules
            .iter()
            .any(|r| r.principal == principal && r.keys.contains(key) && r.kinds.contains(&kind));
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "no allow rule lets {principal:?} use {key} for {} requests",
                kind.as_str()
            ))
        }
    }

    fn version(&self) -> String {
        self.version.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn default_deny_and_exact_matches() {
        let key =
            PublicKey::parse("PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63").unwrap();
        let other =
            PublicKey::parse("PUB_K1_5P52UyPoYL7vMiSREPvqxh6WebuMAunCMK4w53J7Gu6zrTunYm").unwrap();
        let chain = Checksum256::default();
        let empty = AllowList::new(vec![], "v0".into());
        assert!(
            empty
                .authorize("node1", &key, &chain, RequestKind::Block)
                .is_err()
        );
        let list = AllowList::new(
            vec![AllowRule {
                principal: "node1".into(),
                keys: vec![key],
                kinds: vec![RequestKind::Block],
            }],
            "v1".into(),
        );
        assert!(
            list.authorize("node1", &key, &chain, RequestKind::Block)
                .is_ok()
        );
        assert!(
            list.authorize("node2", &key, &chain, RequestKind::Block)
                .is_err()
        );
        assert!(
            list.authorize("node1", &other, &chain, RequestKind::Block)
                .is_err()
        );
        assert!(
            list.authorize("node1", &key, &chain, RequestKind::Digest)
                .is_err()
        );
    }
}
