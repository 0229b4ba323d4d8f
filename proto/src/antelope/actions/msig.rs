//! `eosio.msig` actions: proposing, approving, executing and cancelling multisig proposals.
//!
//! Guards: a `propose` is accepted only if its `trx` is one well-formed packed transaction that
//! spans exactly the rest of the action data, so the bytes an approver is shown as "the proposed
//! transaction" are the bytes the contract stores. Decoding those bytes into a readable
//! transaction belongs to `transaction.rs` ([`Propose::transaction`]); here they are kept verbatim.

use super::permission::PermissionLevel;
use crate::Result;
use crate::antelope::checksum::Checksum256;
use crate::antelope::codec::{Bytes, Pack, Reader, Unpack};
use crate::antelope::name::Name;
use crate::antelope::transaction::Transaction;

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
