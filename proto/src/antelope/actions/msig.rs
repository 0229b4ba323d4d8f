//! `eosio.msig` actions: proposing, approving, executing and cancelling multisig proposals.
//!
//! Guards: a `propose` is accepted only if its `trx` is one well-formed packed transaction that
//! spans exactly the rest of the action data, so the bytes an approver is shown as "the proposed
//! transaction" are the bytes the contract stores. Decoding those bytes into a readable
//! transaction belongs to `transaction.rs` ([`Propose::transaction`]); here they are kept verbatim.
//!
//! The builders ([`Propose::build`], [`Approve::with_hash`], and `to_action` on each action)
//! produce ready-to-sign [`Action`]s authorized exactly as the contract checks
//! (`require_auth(proposer)`, `require_auth(level)`, `require_auth(executer)`,
//! `require_auth(canceler)`), and an `approve` that always carries `proposal_hash`: the
//! contract's `assert_sha256` over the stored packed transaction, so an approval cannot count
//! for a proposal that was cancelled and re-proposed with other content under the same name.

use super::permission::PermissionLevel;
use super::{APPROVE, CANCEL, EOSIO_MSIG, EXEC, PROPOSE, UNAPPROVE, action_of};
use crate::antelope::checksum::Checksum256;
use crate::antelope::codec::{Bytes, Pack, Reader, Unpack};
use crate::antelope::name::Name;
use crate::antelope::transaction::{Action, Transaction};
use crate::{Error, Result};

/// The `proposal_hash` `eosio.msig::approve` checks: `sha256` of the packed proposed
/// transaction, exactly the bytes the contract stored (which is also that transaction's id).
pub fn proposal_hash(packed_trx: &[u8]) -> Checksum256 {
    Checksum256::hash(packed_trx)
}

fn bad_msig(detail: String) -> Error {
    Error::invalid("eosio.msig", detail)
}

/// Refuses an authorizer that is not `actor`: the contract's `require_auth(actor)` would fail.
fn check_actor(role: &str, actor: Name, auth: &PermissionLevel) -> Result<()> {
    if auth.actor != actor {
        return Err(bad_msig(format!(
            "the {role} is {actor} but the action would be authorized by {auth}: authorize it \
             with a permission of {actor}"
        )));
    }
    Ok(())
}

/// `eosio.msig::propose`: stores a transaction for the `requested` permissions to approve.
///
/// In JSON the proposed transaction is carried as packed hex under `trx_hex` (nodeos would print
/// a `trx` object; decoding it is left to the transaction module).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Propose {
    /// The account proposing (pays the RAM).
    pub proposer: Name,
    /// The proposal's name, unique per proposer.
    pub proposal_name: Name,
    /// The permissions whose approval is requested.
    pub requested: Vec<PermissionLevel>,
    /// The packed `transaction`, exactly as it appears in the action data (no length prefix:
    /// it is the last field, so it runs to the end).
    #[serde(rename = "trx_hex")]
    pub trx: Bytes,
}

impl Propose {
    /// The packed proposed transaction, as the contract stores it and approvers sign off on.
    pub fn proposed_trx_bytes(&self) -> &[u8] {
        &self.trx.0
    }

    /// The proposed transaction, decoded by the transaction module.
    pub fn transaction(&self) -> Result<Transaction> {
        Transaction::unpack_exact(&self.trx.0)
    }
}

impl Propose {
    /// Builds a `propose` of `trx`, refusing what the contract would refuse or could never
    /// execute: no requested approvals, a requested level named twice (the second could never
    /// approve), a transaction without actions, or one with context-free actions (`exec`
    /// refuses them).
    pub fn build(
        proposer: Name,
        proposal_name: Name,
        requested: Vec<PermissionLevel>,
        trx: &Transaction,
    ) -> Result<Self> {
        if requested.is_empty() {
            return Err(bad_msig(
                "no requested approvals: name the permission levels that must approve".into(),
            ));
        }
        for (i, level) in requested.iter().enumerate() {
            if requested[..i].contains(level) {
                return Err(bad_msig(format!(
                    "requested[{i}] ({level}) is named twice: list each approver once"
                )));
            }
        }
        if trx.actions.is_empty() {
            return Err(bad_msig(
                "the proposed transaction has no actions: there would be nothing to execute".into(),
            ));
        }
        if !trx.context_free_actions.is_empty() {
            return Err(bad_msig(
                "the proposed transaction has context-free actions, which eosio.msig::exec \
                 refuses: move them out of the proposal"
                    .into(),
            ));
        }
        Ok(Propose {
            proposer,
            proposal_name,
            requested,
            trx: Bytes(trx.packed()),
        })
    }

    /// The `proposal_hash` an `approve` of this proposal must carry.
    pub fn proposal_hash(&self) -> Checksum256 {
        proposal_hash(&self.trx.0)
    }

    /// The `approve` of this proposal by `level`, carrying its `proposal_hash`.
    pub fn approve(&self, level: PermissionLevel) -> Approve {
        Approve::with_hash(
            self.proposer,
            self.proposal_name,
            level,
            self.proposal_hash(),
        )
    }

    /// `eosio.msig::propose`, authorized by `authorizer` (a permission of the proposer).
    pub fn to_action(&self, authorizer: PermissionLevel) -> Result<Action> {
        check_actor("proposer", self.proposer, &authorizer)?;
        Ok(action_of(EOSIO_MSIG, PROPOSE, vec![authorizer], self))
    }
}

impl Pack for Propose {
    fn pack(&self, out: &mut Vec<u8>) {
        self.proposer.pack(out);
        self.proposal_name.pack(out);
        self.requested.pack(out);
        out.extend_from_slice(&self.trx.0);
    }
}

impl Unpack for Propose {
    const WHAT: &'static str = "propose";
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        let proposer = Name::unpack(r)?;
        let proposal_name = Name::unpack(r)?;
        let requested = Vec::unpack(r)?;
        let trx = r.rest();
        check_transaction_shape(trx)?;
        Ok(Propose {
            proposer,
            proposal_name,
            requested,
            trx: Bytes(trx.to_vec()),
        })
    }
}

/// Smallest packed action: two names, an empty authorization list and empty data.
const MIN_ACTION_SIZE: usize = 8 + 8 + 1 + 1;
/// Smallest transaction extension: a u16 type and empty data.
const MIN_EXTENSION_SIZE: usize = 2 + 1;

/// Walks a packed `transaction` without keeping it: header, context-free actions, actions,
/// extensions, and nothing after. Refuses truncated, oversized-count and trailing input.
fn check_transaction_shape(bytes: &[u8]) -> Result<()> {
    let mut r = Reader::new(bytes);
    r.u32("trx expiration")?;
    r.u16("trx ref_block_num")?;
    r.u32("trx ref_block_prefix")?;
    r.varuint32("trx max_net_usage_words")?;
    r.u8("trx max_cpu_usage_ms")?;
    r.varuint32("trx delay_sec")?;
    for what in ["trx context_free_actions", "trx actions"] {
        let count = r.count(what, MIN_ACTION_SIZE)?;
        for _ in 0..count {
            r.u64("trx action account")?;
            r.u64("trx action name")?;
            Vec::<PermissionLevel>::unpack(&mut r)?;
            r.bytes("trx action data")?;
        }
    }
    let count = r.count("trx transaction_extensions", MIN_EXTENSION_SIZE)?;
    for _ in 0..count {
        r.u16("trx extension type")?;
        r.bytes("trx extension data")?;
    }
    r.finish("proposed transaction")
}

/// `eosio.msig::approve`: adds `level`'s approval to a proposal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// The proposer.
    pub proposer: Name,
    /// The proposal.
    pub proposal_name: Name,
    /// The permission approving.
    pub level: PermissionLevel,
    /// `binary_extension<checksum256>`: when present, the approval only counts if the proposed
    /// transaction's id is this hash, so a cancelled-and-reproposed transaction is not approved
    /// by accident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_hash: Option<Checksum256>,
}

action_codec!(Approve, "approve" { proposer, proposal_name, level } ext proposal_hash);

impl Approve {
    /// An approval that only counts if the stored proposal's packed transaction hashes to
    /// `proposal_hash` (see [`proposal_hash`]).
    pub fn with_hash(
        proposer: Name,
        proposal_name: Name,
        level: PermissionLevel,
        proposal_hash: Checksum256,
    ) -> Self {
        Approve {
            proposer,
            proposal_name,
            level,
            proposal_hash: Some(proposal_hash),
        }
    }

    /// `eosio.msig::approve`, authorized by `level` itself (`require_auth(level)`). Refuses an
    /// approval without `proposal_hash`: Oryx never approves content it has not pinned.
    pub fn to_action(&self) -> Result<Action> {
        if self.proposal_hash.is_none() {
            return Err(bad_msig(
                "approve without proposal_hash: build it with Approve::with_hash or \
                 Propose::approve so it only counts for the reviewed transaction"
                    .into(),
            ));
        }
        Ok(action_of(EOSIO_MSIG, APPROVE, vec![self.level], self))
    }
}

/// Whether `action` calls `eosio.msig::approve`.
pub fn is_approve(action: &Action) -> bool {
    (action.account, action.name) == (EOSIO_MSIG, APPROVE)
}

/// Checks the proposed transactions that travel with `trx`: `proposals[k]` must be
/// `pack(transaction)` of the proposal the `k`-th `eosio.msig::approve` of `trx.actions` approves,
/// pinned by that approve's `proposal_hash`. Returns them decoded, in action order.
///
/// Refuses: a count that differs from the number of approves (proposals without any approve
/// included), an approve whose data does not decode or that carries no `proposal_hash`, a
/// proposal whose sha256 is not that hash, a proposal that is not one canonically encoded
/// transaction, and an approve among the context-free actions (it cannot be authorized).
///
/// Since the chain only counts the approval if the stored proposal hashes to `proposal_hash`,
/// whoever reviews (or a policy that checks) the returned transactions reviews what the
/// approval can execute.
pub fn pinned_proposals<P: AsRef<[u8]>>(
    trx: &Transaction,
    proposals: &[P],
) -> Result<Vec<Transaction>> {
    let bad = |detail: String| Error::invalid("msig_proposals", detail);
    if let Some(i) = trx.context_free_actions.iter().position(is_approve) {
        return Err(bad(format!(
            "context-free action #{i} is eosio.msig::approve, which cannot be authorized there"
        )));
    }
    let approves: Vec<(usize, &Action)> = trx
        .actions
        .iter()
        .enumerate()
        .filter(|(_, a)| is_approve(a))
        .collect();
    if approves.is_empty() && !proposals.is_empty() {
        return Err(bad(format!(
            "{} proposal(s) given but the transaction has no eosio.msig::approve: give msig_proposals \
             only with approves",
            proposals.len()
        )));
    }
    if approves.len() != proposals.len() {
        return Err(bad(format!(
            "the transaction has {} eosio.msig::approve action(s) but {} proposal(s) were given: \
             give pack(transaction) of each approved proposal, in action order",
            approves.len(),
            proposals.len()
        )));
    }
    let mut out = Vec::with_capacity(proposals.len());
    for (k, ((index, action), bytes)) in approves.into_iter().zip(proposals).enumerate() {
        let bytes = bytes.as_ref();
        let approve = Approve::unpack_exact(&action.data.0).map_err(|e| {
            bad(format!(
                "action #{index} (eosio.msig::approve) does not decode: {e}"
            ))
        })?;
        let what = format!(
            "action #{index} (eosio.msig::approve of {}/{})",
            approve.proposer, approve.proposal_name
        );
        let Some(pinned) = approve.proposal_hash else {
            return Err(bad(format!(
                "{what} has no proposal_hash, so it would approve whatever the proposal holds: \
                 build it with Approve::with_hash (or Propose::approve)"
            )));
        };
        let given = proposal_hash(bytes);
        if given != pinned {
            return Err(bad(format!(
                "msig_proposals[{k}] hashes to {given} but {what} pins proposal_hash {pinned}: \
                 give the exact packed transaction stored under that proposal"
            )));
        }
        let proposed = Transaction::decode(bytes).map_err(|e| {
            bad(format!(
                "msig_proposals[{k}] is not a packed transaction: {e}"
            ))
        })?;
        if proposed.packed() != bytes {
            return Err(bad(format!(
                "msig_proposals[{k}] is not canonically encoded (it does not re-pack to the same bytes)"
            )));
        }
        out.push(proposed);
    }
    Ok(out)
}

/// `eosio.msig::unapprove`: withdraws `level`'s approval.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unapprove {
    /// The proposer.
    pub proposer: Name,
    /// The proposal.
    pub proposal_name: Name,
    /// The permission withdrawing its approval.
    pub level: PermissionLevel,
}

action_codec!(Unapprove, "unapprove" { proposer, proposal_name, level });

impl Unapprove {
    /// `eosio.msig::unapprove`, authorized by `level` itself (`require_auth(level)`).
    pub fn to_action(&self) -> Action {
        action_of(EOSIO_MSIG, UNAPPROVE, vec![self.level], self)
    }
}

/// `eosio.msig::exec`: executes an approved proposal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The proposer.
    pub proposer: Name,
    /// The proposal.
    pub proposal_name: Name,
    /// The account paying for execution.
    pub executer: Name,
}

action_codec!(Exec, "exec" { proposer, proposal_name, executer });

impl Exec {
    /// `eosio.msig::exec`, authorized by `authorizer` (a permission of the executer).
    pub fn to_action(&self, authorizer: PermissionLevel) -> Result<Action> {
        check_actor("executer", self.executer, &authorizer)?;
        Ok(action_of(EOSIO_MSIG, EXEC, vec![authorizer], self))
    }
}

/// `eosio.msig::cancel`: deletes a proposal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    /// The proposer.
    pub proposer: Name,
    /// The proposal.
    pub proposal_name: Name,
    /// The account cancelling (the proposer, or anyone after expiry).
    pub canceler: Name,
}

action_codec!(Cancel, "cancel" { proposer, proposal_name, canceler });

impl Cancel {
    /// `eosio.msig::cancel`, authorized by `authorizer` (a permission of the canceler). Only the
    /// proposer may cancel before the proposed transaction expires; anyone may after.
    pub fn to_action(&self, authorizer: PermissionLevel) -> Result<Action> {
        check_actor("canceler", self.canceler, &authorizer)?;
        Ok(action_of(EOSIO_MSIG, CANCEL, vec![authorizer], self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use serde_json::json;

    fn n(s: &str) -> Name {
        Name::new(s).expect("valid name")
    }

    fn level(s: &str) -> PermissionLevel {
        s.parse().expect("valid permission level")
    }

    /// A real packed transaction (the updateauth of shared vectors tx-1df1c2ab06533303).
    const REAL_TRX: &str = "07e10b5e0400c2ba60b100000000010000000000ea30550040cbdaa86c52d5010000000000855c3400000000a8ed3232310000000000855c34000000008090b1ca00000000a8ed32320100000000010000000000ea305500000000a8ed323201000000";

    fn propose() -> Propose {
        Propose {
            proposer: n("alice"),
            proposal_name: n("myprop"),
            requested: vec![level("bob@active"), level("eosio@active")],
            trx: Bytes(hex::decode(REAL_TRX).expect("hex")),
        }
    }

    #[test]
    fn propose_encoding() {
        let p = propose();
        let expected = format!(
            "0000000000855c34{}02{}{}{REAL_TRX}",
            "00000000547aab97",
            "0000000000000e3d00000000a8ed3232",
            "0000000000ea305500000000a8ed3232"
        );
        assert_eq!(hex::encode(p.packed()), expected);
        let decoded = Propose::unpack_exact(&p.packed()).expect("decodes");
        assert_eq!(decoded, p);
        assert_eq!(hex::encode(decoded.proposed_trx_bytes()), REAL_TRX);
        let v = serde_json::to_value(&p).expect("serializes");
        assert_eq!(
            v,
            json!({
                "proposer": "alice",
                "proposal_name": "myprop",
                "requested": [{"actor": "bob", "permission": "active"}, {"actor": "eosio", "permission": "active"}],
                "trx_hex": REAL_TRX,
            })
        );
        assert_eq!(serde_json::from_value::<Propose>(v).expect("parses"), p);
    }

    #[test]
    fn proposed_transaction_decodes() {
        let trx = propose().transaction().expect("decodes");
        assert_eq!(trx.actions.len(), 1);
        let inner = trx.actions[0]
            .system_action()
            .expect("known")
            .expect("valid");
        assert_eq!(
            (inner.account(), inner.name()),
            (n("eosio"), n("updateauth"))
        );
        assert_eq!(hex::encode(trx.packed()), REAL_TRX);
    }

    proptest::proptest! {
        /// `propose` accepts exactly the transactions the transaction module decodes.
        #[test]
        fn shape_check_agrees_with_transaction_decoding(at: usize, byte: u8, cut in 0usize..4) {
            let mut trx = hex::decode(REAL_TRX).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let at = at % trx.len();
            trx[at] = byte;
            trx.truncate(trx.len() - cut);
            proptest::prop_assert_eq!(check_transaction_shape(&trx).is_ok(), Transaction::unpack_exact(&trx).is_ok());
        }
    }

    #[test]
    fn propose_refuses_malformed_transactions() {
        let packed = propose().packed();
        for len in 0..packed.len() {
            assert!(
                Propose::unpack_exact(&packed[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut trailing = packed.clone();
        trailing.push(0);
        assert!(matches!(
            Propose::unpack_exact(&trailing),
            Err(Error::TrailingBytes { .. })
        ));
        // An action count the remaining bytes cannot hold.
        let mut huge = packed;
        let actions_count_at = 8 + 8 + 1 + 32 + 4 + 2 + 4 + 1 + 1 + 1 + 1;
        assert_eq!(huge[actions_count_at], 1);
        huge[actions_count_at] = 100;
        assert!(matches!(
            Propose::unpack_exact(&huge),
            Err(Error::TooLong { .. })
        ));
        assert!(check_transaction_shape(&[]).is_err());
    }

    #[test]
    fn approve_with_and_without_proposal_hash() {
        let a = Approve {
            proposer: n("alice"),
            proposal_name: n("myprop"),
            level: level("bob@active"),
            proposal_hash: None,
        };
        let base = "0000000000855c3400000000547aab970000000000000e3d00000000a8ed3232";
        assert_eq!(hex::encode(a.packed()), base);
        assert_eq!(Approve::unpack_exact(&a.packed()), Ok(a.clone()));
        let v = serde_json::to_value(&a).expect("serializes");
        assert_eq!(
            v,
            json!({"proposer": "alice", "proposal_name": "myprop", "level": {"actor": "bob", "permission": "active"}})
        );
        assert_eq!(serde_json::from_value::<Approve>(v).expect("parses"), a);

        let hash = Checksum256::hash(&hex::decode(REAL_TRX).expect("hex"));
        let with = Approve {
            proposal_hash: Some(hash),
            ..a
        };
        assert_eq!(hex::encode(with.packed()), format!("{base}{hash}"));
        assert_eq!(Approve::unpack_exact(&with.packed()), Ok(with.clone()));
        let v = serde_json::to_value(&with).expect("serializes");
        assert_eq!(v["proposal_hash"], hash.to_string());
        assert_eq!(serde_json::from_value::<Approve>(v).expect("parses"), with);
        // A partial hash is malformed.
        assert!(Approve::unpack_exact(&with.packed()[..40]).is_err());
    }

    /// The id of shared vectors tx-1df1c2ab06533303 (REAL_TRX), as nodeos reported it.
    const REAL_TRX_ID: &str = "1df1c2ab06533303d4172d84dd42b5e5ed8297f65fa0214b0a4f439788d47b47";

    #[test]
    fn proposal_hash_is_what_the_contract_hashes() {
        let trx = Transaction::decode(&hex::decode(REAL_TRX).expect("hex")).expect("decodes");
        let requested = vec![level("bob@active"), level("eosio@active")];
        let p = Propose::build(n("alice"), n("myprop"), requested.clone(), &trx).expect("builds");
        let action = p
            .to_action(level("alice@active"))
            .expect("proposer authorizes");
        // The contract reads proposer, proposal_name and requested from the action data, then
        // stores every remaining byte as `packed_transaction` and later checks
        // `assert_sha256(packed_transaction, proposal_hash)`.
        let mut r = Reader::new(&action.data.0);
        Name::unpack(&mut r).expect("proposer");
        Name::unpack(&mut r).expect("proposal_name");
        assert_eq!(Vec::<PermissionLevel>::unpack(&mut r), Ok(requested));
        let stored = r.rest();
        assert_eq!(hex::encode(stored), REAL_TRX);
        let expected = Checksum256::from_hex(REAL_TRX_ID).expect("hex");
        assert_eq!(proposal_hash(stored), expected);
        assert_eq!(p.proposal_hash(), expected);
        assert_eq!(trx.id(), expected);
        let approve = p.approve(level("bob@active"));
        assert_eq!(approve.proposal_hash, Some(expected));
        let packed = approve.to_action().expect("builds").data.0;
        assert_eq!(&packed[packed.len() - 32..], expected.as_bytes());
    }

    #[test]
    fn builders_authorize_as_the_contract_requires() {
        use crate::antelope::SystemAction;
        let trx = Transaction::decode(&hex::decode(REAL_TRX).expect("hex")).expect("decodes");
        let p = Propose::build(n("alice"), n("myprop"), vec![level("bob@active")], &trx)
            .expect("builds");
        let approve = p.approve(level("bob@active"));
        let unapprove = Unapprove {
            proposer: n("alice"),
            proposal_name: n("myprop"),
            level: level("bob@active"),
        };
        let exec = Exec {
            proposer: n("alice"),
            proposal_name: n("myprop"),
            executer: n("carol"),
        };
        let cancel = Cancel {
            proposer: n("alice"),
            proposal_name: n("myprop"),
            canceler: n("alice"),
        };
        let built = [
            (
                p.to_action(level("alice@active")),
                SystemAction::Propose(p.clone()),
                "alice@active",
            ),
            (
                approve.to_action(),
                SystemAction::Approve(approve.clone()),
                "bob@active",
            ),
            (
                Ok(unapprove.to_action()),
                SystemAction::Unapprove(unapprove.clone()),
                "bob@active",
            ),
            (
                exec.to_action(level("carol@active")),
                SystemAction::Exec(exec.clone()),
                "carol@active",
            ),
            (
                cancel.to_action(level("alice@owner")),
                SystemAction::Cancel(cancel.clone()),
                "alice@owner",
            ),
        ];
        for (action, expected, auth) in built {
            let action = action.expect("builds");
            assert_eq!(action.account, n("eosio.msig"));
            assert_eq!(action.authorization, vec![level(auth)]);
            // Round trip: the action data decodes, canonically, to what was built.
            assert_eq!(action.system_action(), Some(Ok(expected.clone())));
            assert_eq!(action.name, expected.name());
            assert_eq!(action.data.0, expected.pack_data());
        }
        // Wrong authorizers are refused with the role named.
        for (err, role) in [
            (p.to_action(level("bob@active")), "proposer"),
            (exec.to_action(level("alice@active")), "executer"),
            (cancel.to_action(level("bob@active")), "canceler"),
        ] {
            let msg = err.expect_err(role).to_string();
            assert!(msg.contains(role), "{msg}");
        }
        // An approve without a pinned hash is never built.
        let unpinned = Approve {
            proposal_hash: None,
            ..approve
        };
        assert!(unpinned.to_action().is_err());
    }

    /// The groundwork of an owner rotation through eosio.msig, end to end in pure code: TaPoS
    /// from a carried get_block answer, a guarded updateauth, a proposal of it, and an approval
    /// pinned to the proposed transaction's id.
    #[test]
    fn owner_rotation_proposal_flow() {
        use crate::antelope::actions::{Authority, HeldAuthority, UpdateAuth};
        use crate::antelope::keys::PublicKey;
        use crate::antelope::tapos::{MAX_PROPOSAL_LIFETIME_SECS, TaposSource};
        let new_key =
            PublicKey::parse("EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV").expect("key");
        let rotate = UpdateAuth {
            account: n("alice"),
            permission: n("owner"),
            parent: Name(0),
            auth: Authority::single_key(new_key),
            authorized_by: None,
        };
        let held = HeldAuthority {
            keys: vec![new_key],
            accounts: vec![],
        };
        let action = rotate
            .to_action(level("alice@owner"), &held)
            .expect("guarded");
        let src = TaposSource::from_get_block(
            r#"{"id": "0000000213588be25132b4167ced6df22b5439e376d5a20284190bb94a43e3e8", "block_num": 2, "timestamp": "2020-01-01T00:00:00.500"}"#,
        )
        .expect("block");
        let trx = src
            .transaction(vec![action], 7 * 24 * 3600, MAX_PROPOSAL_LIFETIME_SECS)
            .expect("trx");
        assert_eq!(trx.expiration.to_string(), "2020-01-08T00:00:00");
        let p = Propose::build(
            n("custody"),
            n("rotowner"),
            vec![level("alice@owner")],
            &trx,
        )
        .expect("proposal");
        assert_eq!(p.transaction(), Ok(trx.clone()));
        let approve = p.approve(level("alice@owner"));
        assert_eq!(approve.proposal_hash, Some(trx.id()));
        // The same rotation to a key nobody holds is never built.
        assert!(
            rotate
                .to_action(level("alice@owner"), &HeldAuthority::default())
                .is_err()
        );
    }

    #[test]
    fn propose_refuses_what_could_never_execute() {
        let trx = Transaction::decode(&hex::decode(REAL_TRX).expect("hex")).expect("decodes");
        let build = |requested: Vec<PermissionLevel>, trx: &Transaction| {
            Propose::build(n("alice"), n("myprop"), requested, trx)
                .expect_err("refused")
                .to_string()
        };
        assert!(build(vec![], &trx).contains("no requested approvals"));
        assert!(
            build(vec![level("bob@active"), level("bob@active")], &trx).contains("requested[1]")
        );
        let empty = Transaction {
            actions: vec![],
            ..trx.clone()
        };
        assert!(build(vec![level("bob@active")], &empty).contains("no actions"));
        let cfa = Transaction {
            context_free_actions: trx.actions.clone(),
            ..trx
        };
        assert!(build(vec![level("bob@active")], &cfa).contains("context-free"));
    }

    /// The proposals that travel with approves are pinned by each approve's proposal_hash, in
    /// action order; anything missing, extra, unpinned or different is refused.
    #[test]
    fn proposals_are_pinned_by_the_approves() {
        let proposed = hex::decode(REAL_TRX).expect("hex");
        let p = propose();
        let approve = p.approve(level("bob@active")).to_action().expect("pinned");
        let wrapper = |actions: Vec<Action>| Transaction {
            actions,
            ..Transaction::decode(&proposed).expect("decodes")
        };
        let one = wrapper(vec![approve.clone()]);
        let ok = pinned_proposals(&one, &[&proposed[..]]).expect("pinned");
        assert_eq!(ok, vec![Transaction::decode(&proposed).expect("decodes")]);
        let no_proposals: &[&[u8]] = &[];
        assert!(
            pinned_proposals(&wrapper(vec![]), no_proposals)
                .expect("none")
                .is_empty()
        );

        let refused = |trx: &Transaction, proposals: &[&[u8]]| {
            pinned_proposals(trx, proposals)
                .expect_err("refused")
                .to_string()
        };
        assert!(refused(&one, &[]).contains("1 eosio.msig::approve action(s) but 0 proposal(s)"));
        assert!(refused(&one, &[&proposed[..], &proposed[..]]).contains("but 2 proposal(s)"));
        let unrelated = wrapper(vec![
            Transaction::decode(&proposed).expect("decodes").actions[0].clone(),
        ]);
        assert!(refused(&unrelated, &[&proposed[..]]).contains("no eosio.msig::approve"));
        let mut other = proposed.clone();
        other[0] ^= 1;
        assert!(refused(&one, &[&other[..]]).contains("pins proposal_hash"));
        let unpinned = Approve {
            proposal_hash: None,
            ..p.approve(level("bob@active"))
        };
        let unpinned = action_of(EOSIO_MSIG, APPROVE, vec![level("bob@active")], &unpinned);
        assert!(refused(&wrapper(vec![unpinned]), &[&proposed[..]]).contains("no proposal_hash"));
        let garbage = [1u8, 2, 3];
        let pinned_to_garbage = Approve::with_hash(
            n("alice"),
            n("myprop"),
            level("bob@active"),
            proposal_hash(&garbage),
        )
        .to_action()
        .expect("pinned");
        assert!(
            refused(&wrapper(vec![pinned_to_garbage]), &[&garbage[..]])
                .contains("not a packed transaction")
        );
        let cfa = Transaction {
            context_free_actions: vec![approve],
            ..one
        };
        assert!(refused(&cfa, &[&proposed[..]]).contains("context-free action #0"));
    }

    #[test]
    fn unapprove_exec_cancel() {
        let u = Unapprove {
            proposer: n("alice"),
            proposal_name: n("myprop"),
            level: level("bob@active"),
        };
        assert_eq!(
            hex::encode(u.packed()),
            "0000000000855c3400000000547aab970000000000000e3d00000000a8ed3232"
        );
        assert_eq!(Unapprove::unpack_exact(&u.packed()), Ok(u.clone()));
        let mut trailing = u.packed();
        trailing.extend_from_slice(&[0; 32]);
        assert!(matches!(
            Unapprove::unpack_exact(&trailing),
            Err(Error::TrailingBytes { .. })
        ));

        let e = Exec {
            proposer: n("alice"),
            proposal_name: n("myprop"),
            executer: n("bob"),
        };
        assert_eq!(
            hex::encode(e.packed()),
            "0000000000855c3400000000547aab970000000000000e3d"
        );
        assert_eq!(Exec::unpack_exact(&e.packed()), Ok(e.clone()));
        let v = serde_json::to_value(&e).expect("serializes");
        assert_eq!(
            v,
            json!({"proposer": "alice", "proposal_name": "myprop", "executer": "bob"})
        );
        assert_eq!(serde_json::from_value::<Exec>(v).expect("parses"), e);

        let c = Cancel {
            proposer: n("alice"),
            proposal_name: n("myprop"),
            canceler: n("alice"),
        };
        assert_eq!(
            hex::encode(c.packed()),
            "0000000000855c3400000000547aab970000000000855c34"
        );
        assert_eq!(Cancel::unpack_exact(&c.packed()), Ok(c.clone()));
        let v = serde_json::to_value(&c).expect("serializes");
        assert_eq!(
            v,
            json!({"proposer": "alice", "proposal_name": "myprop", "canceler": "alice"})
        );
        assert!(
            serde_json::from_value::<Cancel>(
                json!({"proposer": "alice", "proposal_name": "myprop", "executer": "alice"})
            )
            .is_err()
        );
    }
}
