//! `permission_level`: the `actor@permission` pair that authorizes an action.
//!
//! Guards: the text form is strict — exactly one `@` between two non-empty, valid names — so the
//! authority an approver reads is the one the chain checks.

use std::fmt;
use std::str::FromStr;

use crate::antelope::codec::{Pack, Reader, Unpack};
use crate::antelope::name::Name;
use crate::{Error, Result};

/// An account and one of its permissions, e.g. `alice@active`.
///
/// Ordered as nodeos orders it: by actor, then by permission, each as its u64 value.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct PermissionLevel {
    /// The account.
    pub actor: Name,
    /// The permission of that account.
    pub permission: Name,
}

impl PermissionLevel {
    /// Builds `actor@permission`.
    pub fn new(actor: Name, permission: Name) -> Self {
        PermissionLevel { actor, permission }
    }
}

impl fmt::Display for PermissionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.actor, self.permission)
    }
}

impl FromStr for PermissionLevel {
    type Err = Error;
    /// Parses `actor@permission`. Both parts are required: `alice` alone is refused rather than
    /// defaulted to `alice@active`, so nothing is signed under a permission nobody wrote.
    fn from_str(s: &str) -> Result<Self> {
        let (actor, permission) = s.split_once('@').ok_or_else(|| {
            Error::invalid("permission level", format!("{s:?} is not actor@permission"))
        })?;
        if actor.is_empty() || permission.is_empty() {
            return Err(Error::invalid(
                "permission level",
                format!("{s:?}: actor and permission must both be non-empty"),
            ));
        }
        Ok(PermissionLevel {
            actor: Name::new(actor)?,
            permission: Name::new(permission)?,
        })
    }
}

impl Pack for PermissionLevel {
    fn pack(&self, out: &mut Vec<u8>) {
        self.actor.pack(out);
        self.permission.pack(out);
    }
}

impl Unpack for PermissionLevel {
    const WHAT: &'static str = "permission_level";
    const MIN_SIZE: usize = 16;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Ok(PermissionLevel {
            actor: Name::unpack(r)?,
            permission: Name::unpack(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> Name {
        Name::new(s).expect("valid name")
    }

    #[test]
    fn text_form() {
        let p: PermissionLevel = "alice@active".parse().expect("valid");
        assert_eq!(p, PermissionLevel::new(n("alice"), n("active")));
        assert_eq!(p.to_string(), "alice@active");
        for bad in [
            "alice",
            "@active",
            "alice@",
            "alice@active@x",
            "Alice@active",
            "alice@toolongpermission",
            "",
        ] {
            assert!(bad.parse::<PermissionLevel>().is_err(), "{bad}");
        }
    }

    #[test]
    fn binary_and_json() {
        let p = PermissionLevel::new(n("eosio"), n("active"));
        assert_eq!(hex::encode(p.packed()), "0000000000ea305500000000a8ed3232");
        assert_eq!(PermissionLevel::unpack_exact(&p.packed()), Ok(p));
        assert!(PermissionLevel::unpack_exact(&p.packed()[..15]).is_err());
        let json = serde_json::to_value(p).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"actor": "eosio", "permission": "active"})
        );
        assert_eq!(
            serde_json::from_value::<PermissionLevel>(json).expect("parses"),
            p
        );
        let extra = serde_json::json!({"actor": "eosio", "permission": "active", "weight": 1});
        assert!(serde_json::from_value::<PermissionLevel>(extra).is_err());
    }

    #[test]
    fn orders_by_actor_then_permission() {
        let a = PermissionLevel::new(n("alice"), n("owner"));
        let b = PermissionLevel::new(n("bob"), n("active"));
        let c = PermissionLevel::new(n("bob"), n("owner"));
        assert!(a < b && b < c);
    }

    proptest! {
        #[test]
        fn round_trips(actor in 1u64.., permission in 1u64..) {
            let p = PermissionLevel::new(Name(actor), Name(permission));
            prop_assert_eq!(p.to_string().parse::<PermissionLevel>()?, p);
            prop_assert_eq!(PermissionLevel::unpack_exact(&p.packed())?, p);
        }
    }
}
