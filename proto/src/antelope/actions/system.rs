//! `eosio` system actions an operator signs: permission changes (`updateauth`, `linkauth`,
//! `unlinkauth`), producer registration (`regproducer`, `regproducer2`), votes and reward claims.
//!
//! Guards: permission changes are the most dangerous thing a producer signs, so every field —
//! including the optional `authorized_by` binary extension — is decoded and shown, never skipped.
//! The builders ([`UpdateAuth::to_action`], [`RegProducer::to_action`],
//! [`RegProducer2::to_action`]) refuse what the chain or system contract would refuse, and an
//! `updateauth` that would lock the team out of the account
//! ([`Authority::validate_for`]), before anything exists to sign.

use super::authority::{Authority, BlockSigningAuthority, HeldAuthority};
use super::permission::PermissionLevel;
use super::{EOSIO, REGPRODUCER, REGPRODUCER2, UPDATEAUTH, action_of};
use crate::antelope::keys::PublicKey;
use crate::antelope::name::Name;
use crate::antelope::transaction::Action;
use crate::{Error, Result};

const OWNER: Name = super::name("owner");
const ACTIVE: Name = super::name("active");

/// Longest producer URL the system contract accepts is 511 bytes (`url.size() < 512`).
pub const MAX_PRODUCER_URL_LEN: usize = 511;
/// Most producers one `voteproducer` may name.
pub const MAX_VOTED_PRODUCERS: usize = 30;

/// `eosio::updateauth`: sets `account@permission` to `auth`, under `parent`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateAuth {
    /// The account whose permission changes.
    pub account: Name,
    /// The permission created or replaced.
    pub permission: Name,
    /// Its parent permission (empty for `owner`).
    pub parent: Name,
    /// The new authority.
    pub auth: Authority,
    /// `binary_extension<name>`: the permission of `account` that authorizes the change, on
    /// system contracts that have it. Absent when no bytes follow `auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_by: Option<Name>,
}

action_codec!(UpdateAuth, "updateauth" { account, permission, parent, auth } ext authorized_by);

/// `eosio::linkauth`: requires `requirement` for `code::type` actions of `account`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkAuth {
    /// The account whose actions are linked.
    pub account: Name,
    /// The contract.
    pub code: Name,
    /// The action name (empty for every action of `code`).
    #[serde(rename = "type")]
    pub type_: Name,
    /// The permission that will be required.
    pub requirement: Name,
    /// `binary_extension<name>`: the authorizing permission of `account`, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_by: Option<Name>,
}

action_codec!(LinkAuth, "linkauth" { account, code, type_, requirement } ext authorized_by);

/// `eosio::unlinkauth`: removes a `linkauth`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlinkAuth {
    /// The account whose link is removed.
    pub account: Name,
    /// The contract.
    pub code: Name,
    /// The action name.
    #[serde(rename = "type")]
    pub type_: Name,
    /// `binary_extension<name>`: the authorizing permission of `account`, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_by: Option<Name>,
}

action_codec!(UnlinkAuth, "unlinkauth" { account, code, type_ } ext authorized_by);

/// `eosio::regproducer`: registers or updates a producer with one block-signing key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegProducer {
    /// The producer account.
    pub producer: Name,
    /// The key blocks will be signed with.
    pub producer_key: PublicKey,
    /// The producer's website.
    pub url: String,
    /// Location code (used to order the schedule).
    pub location: u16,
}

action_codec!(RegProducer, "regproducer" { producer, producer_key, url, location });

/// `eosio::regproducer2`: registers or updates a producer with a block-signing authority.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegProducer2 {
    /// The producer account.
    pub producer: Name,
    /// The keys (and threshold) blocks will be signed with.
    pub producer_authority: BlockSigningAuthority,
    /// The producer's website.
    pub url: String,
    /// Location code.
    pub location: u16,
}

action_codec!(RegProducer2, "regproducer2" { producer, producer_authority, url, location });

/// `eosio::voteproducer`: votes for up to 30 producers, or delegates to a proxy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteProducer {
    /// The voting account.
    pub voter: Name,
    /// The proxy voted through (empty name for none).
    pub proxy: Name,
    /// The producers voted for (sorted, unique; empty when voting through a proxy).
    pub producers: Vec<Name>,
}

action_codec!(VoteProducer, "voteproducer" { voter, proxy, producers });

/// `eosio::claimrewards`: pays out a producer's accumulated rewards.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRewards {
    /// The producer.
    pub owner: Name,
}

action_codec!(ClaimRewards, "claimrewards" { owner });

fn check_url(url: &str) -> Result<()> {
    if url.len() > MAX_PRODUCER_URL_LEN {
        return Err(Error::invalid(
            "producer url",
            format!(
                "{} bytes; the system contract accepts at most {MAX_PRODUCER_URL_LEN}",
                url.len()
            ),
        ));
    }
    Ok(())
}

impl RegProducer {
    /// Refuses what `regproducer` would: a URL of 512 bytes or more.
    pub fn validate(&self) -> Result<()> {
        check_url(&self.url)
    }
}

impl RegProducer2 {
    /// Refuses what `regproducer2` would: a URL of 512 bytes or more, or an invalid authority.
    pub fn validate(&self) -> Result<()> {
        check_url(&self.url)?;
        self.producer_authority.validate()
    }
}

impl RegProducer {
    /// `eosio::regproducer`, authorized by `authorizer` (a permission of the producer: the
    /// contract checks `require_auth(producer)`), after [`RegProducer::validate`].
    pub fn to_action(&self, authorizer: PermissionLevel) -> Result<Action> {
        self.validate()?;
        check_self_authorized("regproducer", self.producer, &authorizer)?;
        Ok(action_of(EOSIO, REGPRODUCER, vec![authorizer], self))
    }
}

impl RegProducer2 {
    /// `eosio::regproducer2`, authorized by `authorizer` (a permission of the producer), after
    /// [`RegProducer2::validate`]: an invalid block-signing authority is never built.
    pub fn to_action(&self, authorizer: PermissionLevel) -> Result<Action> {
        self.validate()?;
        check_self_authorized("regproducer2", self.producer, &authorizer)?;
        Ok(action_of(EOSIO, REGPRODUCER2, vec![authorizer], self))
    }
}

fn check_self_authorized(
    what: &'static str,
    account: Name,
    authorizer: &PermissionLevel,
) -> Result<()> {
    if authorizer.actor != account {
        return Err(Error::invalid(
            what,
            format!(
                "{account} must authorize its own {what}, not {authorizer}: authorize it with a \
                 permission of {account}"
            ),
        ));
    }
    Ok(())
}

impl UpdateAuth {
    /// Refuses what nodeos's native `updateauth` refuses without looking at chain state: an
    /// empty or reserved (`eosio.`) permission name, a permission that is its own parent,
    /// `owner` with a parent, `active` with a parent other than `owner`, any other permission
    /// without a parent, or an invalid authority ([`Authority::validate`]).
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| Error::invalid("updateauth", detail);
        if self.permission == Name(0) {
            return Err(bad(
                "the permission name is empty: name the permission to set".into(),
            ));
        }
        if self.permission.to_string().starts_with("eosio.") {
            return Err(bad(format!(
                "permission {} starts with `eosio.`, which is reserved: choose another name",
                self.permission
            )));
        }
        if self.permission == self.parent {
            return Err(bad(format!(
                "permission {} cannot be its own parent",
                self.permission
            )));
        }
        if self.permission == OWNER {
            if self.parent != Name(0) {
                return Err(bad(format!(
                    "owner has no parent, got {}: give an empty parent",
                    self.parent
                )));
            }
        } else if self.parent == Name(0) {
            return Err(bad(format!(
                "only owner may have an empty parent: give {} a parent",
                self.permission
            )));
        } else if self.permission == ACTIVE && self.parent != OWNER {
            return Err(bad(format!(
                "active's parent must stay owner, got {}",
                self.parent
            )));
        }
        self.auth.validate()
    }

    /// `eosio::updateauth`, authorized by `authorizer`, after [`UpdateAuth::validate`] and the
    /// lock-out guard ([`Authority::validate_for`] with what the team `held`s).
    ///
    /// The chain accepts the permission itself or any ancestor as authorizer; offline only the
    /// permission, its parent and `owner` are known to be such, so others are refused. When
    /// `authorized_by` is set, the system contract requires exactly that permission, so it must
    /// equal the authorizer's.
    pub fn to_action(&self, authorizer: PermissionLevel, held: &HeldAuthority) -> Result<Action> {
        self.validate()?;
        self.auth.validate_for(held)?;
        let bad = |detail: String| Error::invalid("updateauth", detail);
        if authorizer.actor != self.account {
            return Err(bad(format!(
                "{} must authorize changes to its own permissions, not {authorizer}",
                self.account
            )));
        }
        let p = authorizer.permission;
        if p != self.permission && p != self.parent && p != OWNER {
            return Err(bad(format!(
                "{authorizer} is not {}@{}, its parent or owner: authorize with one of those",
                self.account, self.permission
            )));
        }
        if let Some(by) = self.authorized_by
            && by != p
        {
            return Err(bad(format!(
                "authorized_by is {by} but the action is authorized by {authorizer}: make them \
                 the same permission"
            )));
        }
        Ok(action_of(EOSIO, UPDATEAUTH, vec![authorizer], self))
    }
}

impl VoteProducer {
    /// Refuses what `voteproducer` would: producers and a proxy at once, a proxy to oneself,
    /// more than 30 producers, or producers not sorted strictly ascending.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| Error::invalid("voteproducer", detail);
        if self.proxy != Name(0) {
            if !self.producers.is_empty() {
                return Err(bad(
                    "cannot vote for producers and a proxy at the same time".into(),
                ));
            }
            if self.proxy == self.voter {
                return Err(bad(format!("{} cannot proxy to itself", self.voter)));
            }
            return Ok(());
        }
        if self.producers.len() > MAX_VOTED_PRODUCERS {
            return Err(bad(format!(
                "{} producers; at most {MAX_VOTED_PRODUCERS} allowed",
                self.producers.len()
            )));
        }
        if let Some(pair) = self.producers.windows(2).find(|p| p[0] >= p[1]) {
            return Err(bad(format!(
                "producers must be unique and sorted: {} comes before {}",
                pair[0], pair[1]
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::antelope::actions::authority::{
        BlockSigningAuthorityV0, KeyWeight, PermissionLevelWeight,
    };
    use crate::antelope::actions::permission::PermissionLevel;
    use crate::antelope::codec::{Pack, Unpack};
    use serde_json::json;

    const DEV_KEY: &str = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV";
    const DEV_KEY_PACKED: &str =
        "0002c0ded2bc1f1305fb0faac5e6c03ee3a1924234985427b6167ca569d13df435cf";

    fn n(s: &str) -> Name {
        Name::new(s).expect("valid name")
    }

    fn key() -> PublicKey {
        PublicKey::parse(DEV_KEY).expect("valid key")
    }

    /// Real `updateauth` data from leap v5.0.3's deep-mind log (shared vectors,
    /// tx-1df1c2ab06533303, signed by alice@active).
    const REAL_UPDATEAUTH: &str = "0000000000855c34000000008090b1ca00000000a8ed32320100000000010000000000ea305500000000a8ed3232010000";

    fn real_updateauth() -> UpdateAuth {
        UpdateAuth {
            account: n("alice"),
            permission: n("test1"),
            parent: n("active"),
            auth: Authority {
                threshold: 1,
                keys: vec![],
                accounts: vec![PermissionLevelWeight {
                    permission: PermissionLevel::new(n("eosio"), n("active")),
                    weight: 1,
                }],
                waits: vec![],
            },
            authorized_by: None,
        }
    }

    /// The whole packed transaction REAL_UPDATEAUTH came from (tx-1df1c2ab06533303).
    const REAL_UPDATEAUTH_TRX: &str = "07e10b5e0400c2ba60b100000000010000000000ea30550040cbdaa86c52d5010000000000855c3400000000a8ed3232310000000000855c34000000008090b1ca00000000a8ed32320100000000010000000000ea305500000000a8ed323201000000";

    fn lvl(s: &str) -> PermissionLevel {
        s.parse().expect("valid level")
    }

    fn holds(accounts: &[&str], keys: &[PublicKey]) -> HeldAuthority {
        HeldAuthority {
            keys: keys.to_vec(),
            accounts: accounts.iter().map(|a| lvl(a)).collect(),
        }
    }

    #[test]
    fn updateauth_builder_rebuilds_the_real_action() {
        use crate::antelope::SystemAction;
        use crate::antelope::transaction::Transaction;
        let trx =
            Transaction::decode(&hex::decode(REAL_UPDATEAUTH_TRX).expect("hex")).expect("decodes");
        let built = real_updateauth()
            .to_action(lvl("alice@active"), &holds(&["eosio@active"], &[]))
            .expect("builds");
        assert_eq!(built, trx.actions[0]);
        assert_eq!(
            SystemAction::decode(built.account, built.name, &built.data.0),
            Some(Ok(SystemAction::UpdateAuth(real_updateauth())))
        );
    }

    #[test]
    fn updateauth_builder_refuses() {
        type Edit = fn(&mut UpdateAuth);
        let cases: [(&str, Edit); 9] = [
            ("permission name is empty", |u| u.permission = Name(0)),
            ("reserved", |u| u.permission = n("eosio.code")),
            ("its own parent", |u| u.parent = u.permission),
            ("owner has no parent", |u| u.permission = n("owner")),
            ("only owner may have an empty parent", |u| {
                u.parent = Name(0)
            }),
            ("active's parent must stay owner", |u| {
                u.permission = n("active");
                u.parent = n("test2");
            }),
            ("threshold must be above zero", |u| u.auth.threshold = 0),
            ("below the threshold", |u| u.auth.threshold = 2),
            ("authorized_by is owner", |u| {
                u.authorized_by = Some(n("owner"))
            }),
        ];
        let held = holds(&["eosio@active"], &[]);
        for (expected, edit) in cases {
            let mut u = real_updateauth();
            edit(&mut u);
            let err = u
                .to_action(lvl("alice@active"), &held)
                .expect_err(expected)
                .to_string();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
        // Lock-out: the team does not hold eosio@active, the only entry.
        let err = real_updateauth()
            .to_action(lvl("alice@active"), &holds(&["alice@active"], &[key()]))
            .expect_err("locked out")
            .to_string();
        assert!(err.contains("lock-out"), "{err}");
        // Authorizers: another account, or a permission not known to be an ancestor.
        for auth in ["bob@active", "alice@test5"] {
            assert!(
                real_updateauth().to_action(lvl(auth), &held).is_err(),
                "{auth}"
            );
        }
        for auth in ["alice@test1", "alice@active", "alice@owner"] {
            assert!(
                real_updateauth().to_action(lvl(auth), &held).is_ok(),
                "{auth}"
            );
        }
        // Rotating owner to a new key the team holds.
        let owner = UpdateAuth {
            account: n("alice"),
            permission: n("owner"),
            parent: Name(0),
            auth: Authority::single_key(key()),
            authorized_by: Some(n("owner")),
        };
        let action = owner
            .to_action(lvl("alice@owner"), &holds(&[], &[key()]))
            .expect("builds");
        assert_eq!(
            action.system_action(),
            Some(Ok(crate::antelope::SystemAction::UpdateAuth(owner.clone())))
        );
        assert!(
            owner
                .to_action(lvl("alice@owner"), &HeldAuthority::default())
                .is_err()
        );
    }

    #[test]
    fn regproducer_builders() {
        use crate::antelope::SystemAction;
        let r2 = RegProducer2 {
            producer: n("alice"),
            producer_authority: BlockSigningAuthority::V0(BlockSigningAuthorityV0 {
                threshold: 1,
                keys: vec![KeyWeight {
                    key: key(),
                    weight: 1,
                }],
            }),
            url: "https://example.com".into(),
            location: 0,
        };
        let action = r2.to_action(lvl("alice@active")).expect("builds");
        assert_eq!(
            (action.account, action.name),
            (n("eosio"), n("regproducer2"))
        );
        assert_eq!(action.authorization, vec![lvl("alice@active")]);
        assert_eq!(
            SystemAction::decode(action.account, action.name, &action.data.0),
            Some(Ok(SystemAction::RegProducer2(r2.clone())))
        );
        assert!(r2.to_action(lvl("bob@active")).is_err());
        let mut dup = r2.clone();
        dup.producer_authority = BlockSigningAuthority::V0(BlockSigningAuthorityV0 {
            threshold: 1,
            keys: vec![
                KeyWeight {
                    key: key(),
                    weight: 1,
                },
                KeyWeight {
                    key: key(),
                    weight: 1,
                },
            ],
        });
        assert!(dup.to_action(lvl("alice@active")).is_err());
        let mut long = r2.clone();
        long.url = "x".repeat(MAX_PRODUCER_URL_LEN + 1);
        assert!(long.to_action(lvl("alice@active")).is_err());

        let r1 = RegProducer {
            producer: n("alice"),
            producer_key: key(),
            url: String::new(),
            location: 0,
        };
        let action = r1.to_action(lvl("alice@active")).expect("builds");
        assert_eq!(
            SystemAction::decode(action.account, action.name, &action.data.0),
            Some(Ok(SystemAction::RegProducer(r1.clone())))
        );
        assert!(r1.to_action(lvl("eosio@active")).is_err());
    }

    #[test]
    fn real_updateauth_vector() {
        let bytes = hex::decode(REAL_UPDATEAUTH).expect("hex");
        let decoded = UpdateAuth::unpack_exact(&bytes).expect("decodes");
        // alice creates alice@test1 under alice@active, satisfied by eosio@active.
        assert_eq!(decoded, real_updateauth());
        assert_eq!(decoded.auth.validate(), Ok(()));
        assert_eq!(hex::encode(decoded.packed()), REAL_UPDATEAUTH);
        assert_eq!(
            serde_json::to_value(&decoded).expect("serializes"),
            json!({
                "account": "alice",
                "permission": "test1",
                "parent": "active",
                "auth": {
                    "threshold": 1,
                    "keys": [],
                    "accounts": [{"permission": {"actor": "eosio", "permission": "active"}, "weight": 1}],
                    "waits": [],
                },
            })
        );
    }

    #[test]
    fn updateauth_binary_extension() {
        let with = UpdateAuth {
            authorized_by: Some(n("owner")),
            ..real_updateauth()
        };
        let packed = with.packed();
        assert_eq!(
            hex::encode(&packed),
            format!("{REAL_UPDATEAUTH}0000000080ab26a7")
        );
        assert_eq!(UpdateAuth::unpack_exact(&packed), Ok(with.clone()));
        let v = serde_json::to_value(&with).expect("serializes");
        assert_eq!(v["authorized_by"], "owner");
        assert_eq!(
            serde_json::from_value::<UpdateAuth>(v).expect("parses"),
            with
        );
        // A partial extension is malformed, not "absent"; more than one is trailing bytes.
        assert!(matches!(
            UpdateAuth::unpack_exact(&packed[..packed.len() - 1]),
            Err(Error::Truncated { .. })
        ));
        let mut trailing = packed;
        trailing.push(0);
        assert!(matches!(
            UpdateAuth::unpack_exact(&trailing),
            Err(Error::TrailingBytes { .. })
        ));
    }

    #[test]
    fn linkauth_and_unlinkauth() {
        let link = LinkAuth {
            account: n("alice"),
            code: n("eosio"),
            type_: n("claimrewards"),
            requirement: n("claimer"),
            authorized_by: None,
        };
        let claimer = hex::encode(n("claimer").packed());
        let expected = format!("0000000000855c340000000000ea305580d3355c5de94c44{claimer}");
        assert_eq!(hex::encode(link.packed()), expected);
        assert_eq!(LinkAuth::unpack_exact(&link.packed()), Ok(link.clone()));
        let v = serde_json::to_value(&link).expect("serializes");
        assert_eq!(
            v,
            json!({"account": "alice", "code": "eosio", "type": "claimrewards", "requirement": "claimer"})
        );
        assert_eq!(serde_json::from_value::<LinkAuth>(v).expect("parses"), link);

        let link_ext = LinkAuth {
            authorized_by: Some(n("active")),
            ..link
        };
        assert_eq!(
            hex::encode(link_ext.packed()),
            format!("{expected}00000000a8ed3232")
        );
        assert_eq!(LinkAuth::unpack_exact(&link_ext.packed()), Ok(link_ext));

        let unlink = UnlinkAuth {
            account: n("alice"),
            code: n("eosio"),
            type_: n("claimrewards"),
            authorized_by: None,
        };
        assert_eq!(
            hex::encode(unlink.packed()),
            "0000000000855c340000000000ea305580d3355c5de94c44"
        );
        assert_eq!(
            UnlinkAuth::unpack_exact(&unlink.packed()),
            Ok(unlink.clone())
        );
        let v = serde_json::to_value(&unlink).expect("serializes");
        assert_eq!(
            v,
            json!({"account": "alice", "code": "eosio", "type": "claimrewards"})
        );
        assert!(
            serde_json::from_value::<UnlinkAuth>(
                json!({"account": "alice", "code": "eosio", "type_": "x"})
            )
            .is_err()
        );
        // Between 1 and 7 extra bytes cannot be an extension.
        let mut short_ext = unlink.packed();
        short_ext.extend_from_slice(&[1, 2, 3]);
        assert!(UnlinkAuth::unpack_exact(&short_ext).is_err());
    }

    #[test]
    fn regproducer_encoding() {
        let rp = RegProducer {
            producer: n("producer1"),
            producer_key: key(),
            url: "https://a.b".into(),
            location: 840,
        };
        let expected = format!(
            "00000857219de8ad{DEV_KEY_PACKED}0b{}4803",
            hex::encode("https://a.b")
        );
        assert_eq!(hex::encode(rp.packed()), expected);
        assert_eq!(RegProducer::unpack_exact(&rp.packed()), Ok(rp.clone()));
        let v = serde_json::to_value(&rp).expect("serializes");
        assert_eq!(
            v,
            json!({"producer": "producer1", "producer_key": key().to_string(), "url": "https://a.b", "location": 840})
        );
        assert_eq!(
            serde_json::from_value::<RegProducer>(v).expect("parses"),
            rp
        );
        assert_eq!(rp.validate(), Ok(()));
        assert!(
            RegProducer {
                url: "x".repeat(512),
                ..rp
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn regproducer2_encoding() {
        let rp = RegProducer2 {
            producer: n("producer1"),
            producer_authority: BlockSigningAuthority::V0(BlockSigningAuthorityV0 {
                threshold: 1,
                keys: vec![KeyWeight {
                    key: key(),
                    weight: 1,
                }],
            }),
            url: String::new(),
            location: 0,
        };
        // producer1, variant 0, threshold 1, one key of weight 1, empty url, location 0.
        let expected = [
            "00000857219de8ad",
            "00",
            "01000000",
            "01",
            DEV_KEY_PACKED,
            "0100",
            "00",
            "0000",
        ]
        .concat();
        assert_eq!(hex::encode(rp.packed()), expected);
        assert_eq!(RegProducer2::unpack_exact(&rp.packed()), Ok(rp.clone()));
        let v = serde_json::to_value(&rp).expect("serializes");
        assert_eq!(
            v,
            json!({
                "producer": "producer1",
                "producer_authority": ["block_signing_authority_v0", {"threshold": 1, "keys": [{"key": key().to_string(), "weight": 1}]}],
                "url": "",
                "location": 0,
            })
        );
        assert_eq!(
            serde_json::from_value::<RegProducer2>(v).expect("parses"),
            rp
        );
        assert_eq!(rp.validate(), Ok(()));
        let mut unknown_variant = rp.packed();
        unknown_variant[8] = 1;
        assert!(RegProducer2::unpack_exact(&unknown_variant).is_err());
    }

    #[test]
    fn voteproducer_encoding_and_rules() {
        let vote = VoteProducer {
            voter: n("voting"),
            proxy: Name(0),
            producers: vec![n("bp1"), n("bp2")],
        };
        assert_eq!(
            hex::encode(vote.packed()),
            "00000000b0e932dd000000000000000002000000000000423d000000000000443d"
        );
        assert_eq!(VoteProducer::unpack_exact(&vote.packed()), Ok(vote.clone()));
        let v = serde_json::to_value(&vote).expect("serializes");
        assert_eq!(
            v,
            json!({"voter": "voting", "proxy": "", "producers": ["bp1", "bp2"]})
        );
        assert_eq!(
            serde_json::from_value::<VoteProducer>(v).expect("parses"),
            vote
        );
        assert_eq!(vote.validate(), Ok(()));

        let unsorted = VoteProducer {
            producers: vec![n("bp2"), n("bp1")],
            ..vote.clone()
        };
        assert!(unsorted.validate().is_err());
        let dup = VoteProducer {
            producers: vec![n("bp1"), n("bp1")],
            ..vote.clone()
        };
        assert!(dup.validate().is_err());
        let both = VoteProducer {
            proxy: n("proxy1"),
            ..vote.clone()
        };
        assert!(both.validate().is_err());
        let to_self = VoteProducer {
            proxy: n("voting"),
            producers: vec![],
            ..vote.clone()
        };
        assert!(to_self.validate().is_err());
        let proxy = VoteProducer {
            proxy: n("proxy1"),
            producers: vec![],
            ..vote.clone()
        };
        assert_eq!(proxy.validate(), Ok(()));
        let many = VoteProducer {
            producers: (1..=31).map(Name).collect(),
            ..vote
        };
        assert!(many.validate().is_err());
    }

    #[test]
    fn claimrewards_encoding() {
        let c = ClaimRewards {
            owner: n("producer1"),
        };
        assert_eq!(hex::encode(c.packed()), "00000857219de8ad");
        assert_eq!(ClaimRewards::unpack_exact(&c.packed()), Ok(c.clone()));
        assert_eq!(
            serde_json::to_value(&c).expect("serializes"),
            json!({"owner": "producer1"})
        );
        assert!(ClaimRewards::unpack_exact(&c.packed()[..7]).is_err());
        assert!(ClaimRewards::unpack_exact(&[0; 9]).is_err());
    }

    #[test]
    fn truncations_are_errors() {
        let bytes = hex::decode(REAL_UPDATEAUTH).expect("hex");
        for len in 0..bytes.len() {
            assert!(
                UpdateAuth::unpack_exact(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
    }
}
