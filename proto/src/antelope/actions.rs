//! ABI-less codecs for the system actions a block producer's operators sign most: token
//! transfers, permission changes, producer registration, votes, reward claims and multisig.
//!
//! Guards: what a human reads is exactly what is signed. Each action is decoded byte-exactly from
//! its action data — every field, including binary extensions — and [`SystemAction::decode`]
//! refuses data that is truncated, has trailing bytes, or does not re-pack to the very same bytes
//! (a backstop should any field ever decode from two encodings), so the decoded view can never
//! differ from the signed bytes.
//! Decoding never panics on any input.

use crate::antelope::codec::{Pack, Reader, Unpack};
use crate::antelope::name::Name;
use crate::{Error, Result};

/// Implements `Pack`/`Unpack` for an action struct from its fields in ABI order, with an
/// optional trailing `binary_extension` field (an `Option` that is present only if bytes remain).
macro_rules! action_codec {
    ($t:ident, $what:literal { $($field:ident),* $(,)? } $(ext $ext:ident)?) => {
        impl $crate::antelope::codec::Pack for $t {
            fn pack(&self, out: &mut Vec<u8>) {
                $($crate::antelope::codec::Pack::pack(&self.$field, out);)*
                $(if let Some(v) = &self.$ext {
                    $crate::antelope::codec::Pack::pack(v, out);
                })?
            }
        }

        impl $crate::antelope::codec::Unpack for $t {
            const WHAT: &'static str = $what;
            fn unpack(r: &mut $crate::antelope::codec::Reader<'_>) -> $crate::Result<Self> {
                // Struct expression fields are evaluated in the order written: the ABI order.
                Ok($t {
                    $($field: $crate::antelope::codec::Unpack::unpack(r)?,)*
                    $($ext: $crate::antelope::actions::binary_extension(r)?,)?
                })
            }
        }
    };
}

pub mod authority;
pub mod msig;
pub mod permission;
pub mod system;
pub mod token;

pub use authority::{
    Authority, BlockSigningAuthority, BlockSigningAuthorityV0, HeldAuthority, KeyWeight,
    PermissionLevelWeight, WaitWeight,
};
pub use msig::{Approve, Cancel, Exec, Propose, Unapprove};
pub use permission::PermissionLevel;
pub use system::{
    ClaimRewards, LinkAuth, RegProducer, RegProducer2, UnlinkAuth, UpdateAuth, VoteProducer,
};
pub use token::Transfer;

/// Reads a `binary_extension<T>`: absent when the input is exhausted, otherwise one whole `T`.
///
/// Only meaningful for the last field of top-level action data, which is the only place the
/// system contracts use it.
fn binary_extension<T: Unpack>(r: &mut Reader<'_>) -> Result<Option<T>> {
    if r.remaining() == 0 {
        Ok(None)
    } else {
        T::unpack(r).map(Some)
    }
}

/// An action calling `account::name`, authorized by `authorization`, with `data` packed: what
/// the builders of the action modules return.
fn action_of<T: Pack>(
    account: Name,
    name: Name,
    authorization: Vec<PermissionLevel>,
    data: &T,
) -> crate::antelope::transaction::Action {
    crate::antelope::transaction::Action {
        account,
        name,
        authorization,
        data: crate::antelope::codec::Bytes(data.packed()),
    }
}

/// Encodes a name at compile time. Only used on the literals below, whose round trip through
/// `Name`'s `Display` is checked by a test.
const fn name(s: &str) -> Name {
    let b = s.as_bytes();
    let mut value = 0u64;
    let mut i = 0;
    while i < b.len() && i < 13 {
        let c = b[i];
        let v = match c {
            b'a'..=b'z' => (c - b'a') as u64 + 6,
            b'1'..=b'5' => (c - b'1') as u64 + 1,
            _ => 0,
        };
        if i < 12 {
            value |= v << (64 - 5 * (i + 1));
        } else {
            value |= v & 0x0f;
        }
        i += 1;
    }
    Name(value)
}

const EOSIO: Name = name("eosio");
const EOSIO_TOKEN: Name = name("eosio.token");
const EOSIO_MSIG: Name = name("eosio.msig");
const TRANSFER: Name = name("transfer");
const UPDATEAUTH: Name = name("updateauth");
const LINKAUTH: Name = name("linkauth");
const UNLINKAUTH: Name = name("unlinkauth");
const REGPRODUCER: Name = name("regproducer");
const REGPRODUCER2: Name = name("regproducer2");
const VOTEPRODUCER: Name = name("voteproducer");
const CLAIMREWARDS: Name = name("claimrewards");
const PROPOSE: Name = name("propose");
const APPROVE: Name = name("approve");
const UNAPPROVE: Name = name("unapprove");
const EXEC: Name = name("exec");
const CANCEL: Name = name("cancel");

/// Declares [`SystemAction`], [`KNOWN_ACTIONS`] and the per-variant dispatch from one table, so
/// the (account, action) of a variant cannot differ between decoding, encoding and JSON.
macro_rules! system_actions {
    ($($(#[$doc:meta])* $variant:ident($ty:ty) = $account:ident :: $action:ident,)*) => {
        /// A decoded system action whose meaning does not depend on a fetched ABI.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum SystemAction {
            $($(#[$doc])* $variant($ty),)*
        }

        /// Every (contract account, action name) pair [`SystemAction`] decodes.
        pub const KNOWN_ACTIONS: &[(Name, Name)] = &[$(($account, $action)),*];

        impl SystemAction {
            fn unpack_for(account: Name, name: Name, data: &[u8]) -> Option<Result<Self>> {
                match (account, name) {
                    $(($account, $action) => Some(<$ty>::unpack_exact(data).map(SystemAction::$variant)),)*
                    _ => None,
                }
            }

            fn deserialize_for(account: Name, name: Name, value: &serde_json::Value) -> Option<Result<Self>> {
                match (account, name) {
                    $(($account, $action) => Some(
                        <$ty as serde::Deserialize>::deserialize(value)
                            .map(SystemAction::$variant)
                            .map_err(|e| Error::Json(format!("{account}::{name}: {e}"))),
                    ),)*
                    _ => None,
                }
            }

            /// The contract the action belongs to (`eosio`, `eosio.token` or `eosio.msig`).
            pub fn account(&self) -> Name {
                match self {
                    $(SystemAction::$variant(_) => $account,)*
                }
            }

            /// The action name, e.g. `updateauth`.
            pub fn name(&self) -> Name {
                match self {
                    $(SystemAction::$variant(_) => $action,)*
                }
            }

            /// The action data: the packed fields, exactly as they go into the transaction.
            pub fn pack_data(&self) -> Vec<u8> {
                match self {
                    $(SystemAction::$variant(a) => a.packed(),)*
                }
            }

            /// The fields as a JSON object, with the ABI's field names (as nodeos'
            /// `abi_bin_to_json` prints them; a `propose` carries its transaction as `trx_hex`).
            pub fn to_json(&self) -> serde_json::Value {
                let value = match self {
                    $(SystemAction::$variant(a) => serde_json::to_value(a),)*
                };
                // Cannot fail: every field serializes to a string, number, array or object
                // with string keys.
                value.unwrap_or(serde_json::Value::Null)
            }
        }
    };
}

system_actions! {
    /// `eosio.token::transfer`.
    Transfer(Transfer) = EOSIO_TOKEN::TRANSFER,
    /// `eosio::updateauth`.
    UpdateAuth(UpdateAuth) = EOSIO::UPDATEAUTH,
    /// `eosio::linkauth`.
    LinkAuth(LinkAuth) = EOSIO::LINKAUTH,
    /// `eosio::unlinkauth`.
    UnlinkAuth(UnlinkAuth) = EOSIO::UNLINKAUTH,
    /// `eosio::regproducer`.
    RegProducer(RegProducer) = EOSIO::REGPRODUCER,
    /// `eosio::regproducer2`.
    RegProducer2(RegProducer2) = EOSIO::REGPRODUCER2,
    /// `eosio::voteproducer`.
    VoteProducer(VoteProducer) = EOSIO::VOTEPRODUCER,
    /// `eosio::claimrewards`.
    ClaimRewards(ClaimRewards) = EOSIO::CLAIMREWARDS,
    /// `eosio.msig::propose`.
    Propose(Propose) = EOSIO_MSIG::PROPOSE,
    /// `eosio.msig::approve`.
    Approve(Approve) = EOSIO_MSIG::APPROVE,
    /// `eosio.msig::unapprove`.
    Unapprove(Unapprove) = EOSIO_MSIG::UNAPPROVE,
    /// `eosio.msig::exec`.
    Exec(Exec) = EOSIO_MSIG::EXEC,
    /// `eosio.msig::cancel`.
    Cancel(Cancel) = EOSIO_MSIG::CANCEL,
}

impl SystemAction {
    /// Decodes the data of `account::name`.
    ///
    /// `None` when `(account, name)` is not a known system action (a token contract other than
    /// `eosio.token` is not assumed to share its ABI). `Some(Err)` when the bytes are malformed:
    /// truncated, with trailing bytes, with an invalid value, or not in the one canonical
    /// encoding that re-packs to the same bytes.
    pub fn decode(account: Name, name: Name, data: &[u8]) -> Option<Result<SystemAction>> {
        let decoded = Self::unpack_for(account, name, data)?;
        Some(decoded.and_then(|action| {
            if action.pack_data() == data {
                Ok(action)
            } else {
                Err(Error::invalid(
                    "action data",
                    format!("{account}::{name} is not canonically encoded"),
                ))
            }
        }))
    }

    /// Parses the fields of `account::name` from a JSON object (as [`SystemAction::to_json`]
    /// writes it), refusing unknown fields.
    ///
    /// `None` when `(account, name)` is not a known system action; `Some(Err)` when the object
    /// does not describe a valid action. The result is re-decoded from its own packing, so JSON
    /// input obeys every rule binary input does.
    pub fn from_json(
        account: Name,
        name: Name,
        value: &serde_json::Value,
    ) -> Option<Result<SystemAction>> {
        if (account, name) == (EOSIO_MSIG, PROPOSE) && value.get("trx").is_some() {
            return Some(Err(Error::Json(
                "eosio.msig::propose: give the proposed transaction as packed hex in `trx_hex`; a `trx` \
                 object is not decoded here"
                    .into(),
            )));
        }
        let parsed = Self::deserialize_for(account, name, value)?;
        Some(parsed.and_then(
            |action| match Self::decode(account, name, &action.pack_data()) {
                Some(Ok(again)) if again == action => Ok(action),
                Some(Err(e)) => Err(e),
                _ => Err(Error::Json(format!(
                    "{account}::{name}: does not survive a pack/unpack round trip"
                ))),
            },
        ))
    }

    /// Refuses actions that decode but that the chain or system contract would reject: an
    /// invalid `updateauth` (see [`UpdateAuth::validate`]), an invalid `regproducer2`
    /// authority or over-long producer URL, or a `voteproducer` breaking the voting rules.
    pub fn validate(&self) -> Result<()> {
        match self {
            SystemAction::UpdateAuth(a) => a.validate(),
            SystemAction::RegProducer(a) => a.validate(),
            SystemAction::RegProducer2(a) => a.validate(),
            SystemAction::VoteProducer(a) => a.validate(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::antelope::codec::Bytes;
    use crate::antelope::keys::PublicKey;
    use proptest::prelude::*;
    use serde_json::json;

    fn n(s: &str) -> Name {
        Name::new(s).expect("valid name")
    }

    const DEV_KEY: &str = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV";
    const REAL_UPDATEAUTH: &str = "0000000000855c34000000008090b1ca00000000a8ed32320100000000010000000000ea305500000000a8ed3232010000";
    const REAL_TRX: &str = "07e10b5e0400c2ba60b100000000010000000000ea30550040cbdaa86c52d5010000000000855c3400000000a8ed3232310000000000855c34000000008090b1ca00000000a8ed32320100000000010000000000ea305500000000a8ed323201000000";

    fn level(s: &str) -> PermissionLevel {
        s.parse().expect("valid level")
    }

    fn key() -> PublicKey {
        PublicKey::parse(DEV_KEY).expect("valid key")
    }

    /// One valid example of every kind, some with their binary extension present.
    fn samples() -> Vec<SystemAction> {
        vec![
            SystemAction::Transfer(Transfer {
                from: n("alice"),
                to: n("bob"),
                quantity: "1.0000 EOS".parse().expect("asset"),
                memo: "hi".into(),
            }),
            SystemAction::UpdateAuth(UpdateAuth {
                account: n("alice"),
                permission: n("test1"),
                parent: n("active"),
                auth: Authority::single_key(key()),
                authorized_by: Some(n("owner")),
            }),
            SystemAction::LinkAuth(LinkAuth {
                account: n("alice"),
                code: n("eosio"),
                type_: n("claimrewards"),
                requirement: n("claimer"),
                authorized_by: None,
            }),
            SystemAction::UnlinkAuth(UnlinkAuth {
                account: n("alice"),
                code: n("eosio"),
                type_: n("claimrewards"),
                authorized_by: Some(n("active")),
            }),
            SystemAction::RegProducer(RegProducer {
                producer: n("producer1"),
                producer_key: key(),
                url: "https://a.b".into(),
                location: 840,
            }),
            SystemAction::RegProducer2(RegProducer2 {
                producer: n("producer1"),
                producer_authority: BlockSigningAuthority::V0(BlockSigningAuthorityV0 {
                    threshold: 1,
                    keys: vec![KeyWeight {
                        key: key(),
                        weight: 1,
                    }],
                }),
                url: "https://a.b".into(),
                location: 0,
            }),
            SystemAction::VoteProducer(VoteProducer {
                voter: n("voting"),
                proxy: Name(0),
                producers: vec![n("bp1"), n("bp2")],
            }),
            SystemAction::ClaimRewards(ClaimRewards {
                owner: n("producer1"),
            }),
            SystemAction::Propose(Propose {
                proposer: n("alice"),
                proposal_name: n("myprop"),
                requested: vec![level("bob@active")],
                trx: Bytes(hex::decode(REAL_TRX).expect("hex")),
            }),
            SystemAction::Approve(Approve {
                proposer: n("alice"),
                proposal_name: n("myprop"),
                level: level("bob@active"),
                proposal_hash: Some(crate::antelope::Checksum256::hash(b"trx")),
            }),
            SystemAction::Unapprove(Unapprove {
                proposer: n("alice"),
                proposal_name: n("myprop"),
                level: level("bob@active"),
            }),
            SystemAction::Exec(Exec {
                proposer: n("alice"),
                proposal_name: n("myprop"),
                executer: n("bob"),
            }),
            SystemAction::Cancel(Cancel {
                proposer: n("alice"),
                proposal_name: n("myprop"),
                canceler: n("alice"),
            }),
        ]
    }

    #[test]
    fn name_constants_are_the_names_they_spell() {
        let expected = [
            (EOSIO, "eosio"),
            (EOSIO_TOKEN, "eosio.token"),
            (EOSIO_MSIG, "eosio.msig"),
            (TRANSFER, "transfer"),
            (UPDATEAUTH, "updateauth"),
            (LINKAUTH, "linkauth"),
            (UNLINKAUTH, "unlinkauth"),
            (REGPRODUCER, "regproducer"),
            (REGPRODUCER2, "regproducer2"),
            (VOTEPRODUCER, "voteproducer"),
            (CLAIMREWARDS, "claimrewards"),
            (PROPOSE, "propose"),
            (APPROVE, "approve"),
            (UNAPPROVE, "unapprove"),
            (EXEC, "exec"),
            (CANCEL, "cancel"),
        ];
        for (constant, text) in expected {
            assert_eq!(Ok(constant), Name::new(text), "{text}");
        }
        // Shared vectors: eosio.token and transfer.
        assert_eq!(hex::encode(EOSIO_TOKEN.packed()), "00a6823403ea3055");
        assert_eq!(hex::encode(TRANSFER.packed()), "000000572d3ccdcd");
    }

    #[test]
    fn every_kind_is_listed_once_and_sampled() {
        let samples = samples();
        assert_eq!(samples.len(), KNOWN_ACTIONS.len());
        for (sample, known) in samples.iter().zip(KNOWN_ACTIONS) {
            assert_eq!((sample.account(), sample.name()), *known);
        }
        let mut unique = KNOWN_ACTIONS.to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), KNOWN_ACTIONS.len());
    }

    #[test]
    fn samples_round_trip_through_bytes_and_json() {
        for a in samples() {
            let data = a.pack_data();
            let decoded = SystemAction::decode(a.account(), a.name(), &data);
            assert_eq!(
                decoded,
                Some(Ok(a.clone())),
                "{}::{}",
                a.account(),
                a.name()
            );
            let v = a.to_json();
            assert!(v.is_object(), "{v}");
            let parsed = SystemAction::from_json(a.account(), a.name(), &v);
            assert_eq!(parsed, Some(Ok(a.clone())), "{v}");
            assert_eq!(a.validate(), Ok(()), "{}::{}", a.account(), a.name());
        }
    }

    #[test]
    fn transfer_known_encoding() {
        let data =
            hex::decode("0000000000855c340000000000000e3d102700000000000004454f5300000000026869")
                .expect("hex");
        let a = SystemAction::decode(EOSIO_TOKEN, TRANSFER, &data)
            .expect("known")
            .expect("valid");
        assert_eq!(
            a.to_json(),
            json!({"from": "alice", "to": "bob", "quantity": "1.0000 EOS", "memo": "hi"})
        );
        assert_eq!(a.pack_data(), data);
        // Same bytes, another contract: its ABI is not assumed.
        assert_eq!(SystemAction::decode(n("fake.token"), TRANSFER, &data), None);
        assert_eq!(SystemAction::decode(EOSIO, TRANSFER, &data), None);
        assert_eq!(SystemAction::decode(EOSIO, n("newaccount"), &data), None);
    }

    #[test]
    fn real_updateauth_decodes() {
        let data = hex::decode(REAL_UPDATEAUTH).expect("hex");
        let a = SystemAction::decode(EOSIO, UPDATEAUTH, &data)
            .expect("known")
            .expect("valid");
        assert_eq!(
            a.to_json(),
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
        assert_eq!(a.validate(), Ok(()));
        assert_eq!(hex::encode(a.pack_data()), REAL_UPDATEAUTH);
    }

    #[test]
    fn malformed_data_is_an_error_for_every_kind() {
        for a in samples() {
            let data = a.pack_data();
            let (account, name) = (a.account(), a.name());
            let mut trailing = data.clone();
            trailing.push(0);
            assert!(
                matches!(SystemAction::decode(account, name, &trailing), Some(Err(_))),
                "{account}::{name}"
            );
            for len in 0..data.len() {
                match SystemAction::decode(account, name, &data[..len]) {
                    Some(Err(_)) => {}
                    // Cutting exactly the binary extension leaves a valid action without it.
                    Some(Ok(short)) => assert_eq!(
                        short.pack_data(),
                        &data[..len],
                        "{account}::{name} at {len}"
                    ),
                    None => panic!("{account}::{name} is known"),
                }
            }
        }
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        // The memo length 2 written as a two-byte varuint (0x82 0x00).
        let data =
            hex::decode("0000000000855c340000000000000e3d102700000000000004454f530000000082006869")
                .expect("hex");
        let r = SystemAction::decode(EOSIO_TOKEN, TRANSFER, &data);
        // The codec refuses it already; the re-pack check in `decode` is the backstop for any
        // encoding the codec might ever accept in two forms.
        assert!(matches!(r, Some(Err(_))), "{r:?}");
    }

    #[test]
    fn from_json_errors() {
        assert_eq!(
            SystemAction::from_json(EOSIO, n("newaccount"), &json!({})),
            None
        );
        let bad = [
            (
                EOSIO_TOKEN,
                TRANSFER,
                json!({"from": "alice", "to": "bob", "quantity": "1.0000 EOS"}),
            ),
            (EOSIO_TOKEN, TRANSFER, json!("not an object")),
            (
                EOSIO,
                CLAIMREWARDS,
                json!({"owner": "producer1", "extra": true}),
            ),
            (
                EOSIO,
                VOTEPRODUCER,
                json!({"voter": "v", "proxy": "", "producers": "bp1"}),
            ),
            (
                EOSIO_MSIG,
                PROPOSE,
                json!({"proposer": "alice", "proposal_name": "p", "requested": [], "trx_hex": "00"}),
            ),
            (
                EOSIO_MSIG,
                PROPOSE,
                json!({"proposer": "alice", "proposal_name": "p", "requested": [], "trx": {}}),
            ),
        ];
        for (account, name, value) in bad {
            let r = SystemAction::from_json(account, name, &value);
            assert!(
                matches!(r, Some(Err(_))),
                "{account}::{name} {value}: {r:?}"
            );
        }
        let r = SystemAction::from_json(EOSIO_MSIG, PROPOSE, &json!({"trx": {}}));
        assert!(r.is_some_and(|r| r.is_err_and(|e| e.to_string().contains("trx_hex"))));
    }

    #[test]
    fn validate_dispatches() {
        let bad_auth = SystemAction::UpdateAuth(UpdateAuth {
            account: n("alice"),
            permission: n("active"),
            parent: n("owner"),
            auth: Authority {
                threshold: 2,
                ..Authority::single_key(key())
            },
            authorized_by: None,
        });
        assert!(bad_auth.validate().is_err());
        let bad_vote = SystemAction::VoteProducer(VoteProducer {
            voter: n("voting"),
            proxy: Name(0),
            producers: vec![n("bp2"), n("bp1")],
        });
        assert!(bad_vote.validate().is_err());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(kind in 0..KNOWN_ACTIONS.len(), data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let (account, name) = KNOWN_ACTIONS[kind];
            match SystemAction::decode(account, name, &data) {
                Some(Ok(a)) => prop_assert_eq!(a.pack_data(), data),
                Some(Err(_)) => {}
                None => prop_assert!(false, "{}::{} is known", account, name),
            }
        }

        #[test]
        fn decoding_mutated_samples_never_panics(kind in 0..KNOWN_ACTIONS.len(), at: usize, byte: u8, cut: usize) {
            let sample = &samples()[kind];
            let mut data = sample.pack_data();
            let at = at % data.len();
            data[at] = byte;
            data.truncate(data.len() - cut % 3);
            if let Some(Ok(a)) = SystemAction::decode(sample.account(), sample.name(), &data) {
                prop_assert_eq!(a.pack_data(), data);
                let v = a.to_json();
                prop_assert_eq!(SystemAction::from_json(a.account(), a.name(), &v), Some(Ok(a)));
            }
        }

        #[test]
        fn from_json_never_panics(kind in 0..KNOWN_ACTIONS.len(), text in "\\PC{0,24}", number: u32) {
            let (account, name) = KNOWN_ACTIONS[kind];
            let value = json!({
                "from": text, "to": text, "quantity": text, "memo": text, "account": text, "permission": text,
                "parent": text, "auth": {"threshold": number, "keys": [], "accounts": [], "waits": []},
                "owner": text, "proposer": text, "proposal_name": text, "level": text, "trx_hex": text,
            });
            let _ = SystemAction::from_json(account, name, &value);
        }
    }
}
