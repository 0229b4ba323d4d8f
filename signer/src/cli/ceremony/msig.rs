//! `oryx ceremony msig propose|approve|unapprove|exec|cancel|resume`: one eosio.msig action,
//! signed with a custody key through SignTransaction (and its approvals), in its own ceremony
//! directory with a transcript, and written as a signed transaction file.
//!
//! Guards: `propose` refuses what the contract would (no requested approvers, a level named
//! twice, a proposal without actions or with context-free actions, one that has expired by the
//! TaPoS time); `approve` always carries `proposal_hash` = sha256 of the proposed transaction and
//! sends that transaction along (`msig_proposals`) so the signer and the approvers review what is
//! approved, not just a name.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use oryx_proto::antelope::actions::msig;
use oryx_proto::antelope::transaction::{Action, Transaction};
use oryx_proto::antelope::{Bytes, Checksum256, Name, Pack, PermissionLevel, PublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::other;
use super::session::Session;
use super::steps::TxData;
use super::{TaposParams, TxArgs, describe, finish_signing, push_hint};
use crate::cli::CliError;
use crate::cli::inspect::tx;
use crate::cli::remote::SignerArgs;

/// eosio.msig ceremonies.
#[derive(Debug, Subcommand)]
pub enum Msig {
    /// eosio.msig::propose a transaction (JSON, or hex of a packed transaction).
    Propose(Box<Propose>),
    /// eosio.msig::approve a proposal, pinned to its content by proposal_hash.
    Approve(Box<Approve>),
    /// eosio.msig::unapprove.
    Unapprove(Box<Unapprove>),
    /// eosio.msig::exec.
    Exec(Box<Exec>),
    /// eosio.msig::cancel.
    Cancel(Box<Cancel>),
    /// Continue any msig ceremony from its last recorded step.
    Resume(super::Resume),
}

impl Msig {
    /// Runs the subcommand.
    pub fn run(&self) -> Result<Value, CliError> {
        let (common, action) = match self {
            Msig::Resume(r) => return r.run_with(KINDS, advance),
            Msig::Propose(c) => (&c.common, c.action()?),
            Msig::Approve(c) => (&c.common, c.action()?),
            Msig::Unapprove(c) => (&c.common, c.action()),
            Msig::Exec(c) => (&c.common, c.action()),
            Msig::Cancel(c) => (&c.common, c.action()),
        };
        common.run(action)
    }
}

/// What every msig command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// The ceremony directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// The custody key the signer signs with.
    #[arg(long)]
    pub signing_key: PublicKey,
    #[command(flatten)]
    pub(crate) tx: TxArgs,
    /// Print the transaction that would be signed; sign and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

/// Which proposal.
#[derive(Debug, Args)]
pub struct ProposalId {
    /// The proposer.
    #[arg(long)]
    pub proposer: Name,
    /// The proposal's name.
    #[arg(long)]
    pub proposal_name: Name,
}

/// Arguments of `propose`.
#[derive(Debug, Args)]
pub struct Propose {
    #[command(flatten)]
    pub(crate) id: ProposalId,
    /// A permission level whose approval is requested (ACTOR@PERMISSION, repeatable).
    #[arg(long = "requested", required = true)]
    pub requested: Vec<PermissionLevel>,
    /// The proposed transaction: a JSON file, or hex of pack(transaction) or of a
    /// packed_transaction (with its own expiration, up to 30 days).
    #[arg(long)]
    pub trx: String,
    /// The proposer's permission that authorizes propose.
    #[arg(long, default_value = "active")]
    pub permission: Name,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Arguments of `approve`.
#[derive(Debug, Args)]
pub struct Approve {
    #[command(flatten)]
    pub(crate) id: ProposalId,
    /// The approving permission level (ACTOR@PERMISSION); it authorizes the approve.
    #[arg(long)]
    pub level: PermissionLevel,
    /// The proposed transaction: a JSON file, hex, or a carried get_table_rows answer of
    /// eosio.msig's `proposal` table (scope = proposer), whose row holds the stored bytes.
    #[arg(long)]
    pub proposal: String,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Arguments of `unapprove`.
#[derive(Debug, Args)]
pub struct Unapprove {
    #[command(flatten)]
    pub(crate) id: ProposalId,
    /// The permission level withdrawing its approval; it authorizes the unapprove.
    #[arg(long)]
    pub level: PermissionLevel,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Arguments of `exec`.
#[derive(Debug, Args)]
pub struct Exec {
    #[command(flatten)]
    pub(crate) id: ProposalId,
    /// The account executing (and paying).
    #[arg(long)]
    pub executer: Name,
    /// The executer's permission that authorizes exec.
    #[arg(long, default_value = "active")]
    pub permission: Name,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Arguments of `cancel`.
#[derive(Debug, Args)]
pub struct Cancel {
    #[command(flatten)]
    pub(crate) id: ProposalId,
    /// The account cancelling (the proposer, or anyone once the proposal expired).
    #[arg(long)]
    pub canceler: Name,
    /// The canceler's permission that authorizes cancel.
    #[arg(long, default_value = "active")]
    pub permission: Name,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// The action, as the ceremony's parameters record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action", deny_unknown_fields)]
enum MsigAction {
    Propose {
        proposer: Name,
        proposal_name: Name,
        requested: Vec<PermissionLevel>,
        trx: Bytes,
        authorizer: PermissionLevel,
    },
    Approve {
        proposer: Name,
        proposal_name: Name,
        level: PermissionLevel,
        proposal: Bytes,
    },
    Unapprove {
        proposer: Name,
        proposal_name: Name,
        level: PermissionLevel,
    },
    Exec {
        proposer: Name,
        proposal_name: Name,
        executer: Name,
        authorizer: PermissionLevel,
    },
    Cancel {
        proposer: Name,
        proposal_name: Name,
        canceler: Name,
        authorizer: PermissionLevel,
    },
}

impl MsigAction {
    /// The transaction's name (and the ceremony kind `msig-NAME`).
    fn name(&self) -> &'static str {
        match self {
            MsigAction::Propose { .. } => "propose",
            MsigAction::Approve { .. } => "approve",
            MsigAction::Unapprove { .. } => "unapprove",
            MsigAction::Exec { .. } => "exec",
            MsigAction::Cancel { .. } => "cancel",
        }
    }

    /// The action and the proposals its approves pin (for `msig_proposals`).
    fn build(&self) -> Result<(Action, Vec<Bytes>), CliError> {
        Ok(match self {
            MsigAction::Propose {
                proposer,
                proposal_name,
                requested,
                trx,
                authorizer,
            } => {
                let t = Transaction::decode(&trx.0)?;
                let p = msig::Propose::build(*proposer, *proposal_name, requested.clone(), &t)?;
                (p.to_action(*authorizer)?, vec![])
            }
            MsigAction::Approve {
                proposer,
                proposal_name,
                level,
                proposal,
            } => {
                let a = msig::Approve::with_hash(
                    *proposer,
                    *proposal_name,
                    *level,
                    msig::proposal_hash(&proposal.0),
                );
                (a.to_action()?, vec![proposal.clone()])
            }
            MsigAction::Unapprove {
                proposer,
                proposal_name,
                level,
            } => (
                msig::Unapprove {
                    proposer: *proposer,
                    proposal_name: *proposal_name,
                    level: *level,
                }
                .to_action(),
                vec![],
            ),
            MsigAction::Exec {
                proposer,
                proposal_name,
                executer,
                authorizer,
            } => (
                msig::Exec {
                    proposer: *proposer,
                    proposal_name: *proposal_name,
                    executer: *executer,
                }
                .to_action(*authorizer)?,
                vec![],
            ),
            MsigAction::Cancel {
                proposer,
                proposal_name,
                canceler,
                authorizer,
            } => (
                msig::Cancel {
                    proposer: *proposer,
                    proposal_name: *proposal_name,
                    canceler: *canceler,
                }
                .to_action(*authorizer)?,
                vec![],
            ),
        })
    }
}

/// What `start` records as the ceremony's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    chain_id: Checksum256,
    signing_key: PublicKey,
    tapos: TaposParams,
    msig: MsigAction,
}

impl Params {
    fn transaction(&self) -> Result<(Transaction, Vec<Bytes>), CliError> {
        let (action, proposals) = self.msig.build()?;
        Ok((self.tapos.transaction(vec![action])?, proposals))
    }
}

/// Reads a proposed transaction: a JSON or hex transaction (`oryx inspect tx` inputs), or a
/// carried get_table_rows answer of eosio.msig's `proposal` table holding `proposal_name`.
fn load_proposal(input: &str, proposal_name: Option<Name>) -> Result<Transaction, CliError> {
    let text = tx::input_text(input)?;
    if let (Some(name), Ok(v)) = (proposal_name, serde_json::from_str::<Value>(&text))
        && let Some(rows) = v.get("rows").and_then(Value::as_array)
    {
        let row = rows
            .iter()
            .find(|r| r.get("proposal_name").and_then(Value::as_str) == Some(&name.to_string()))
            .ok_or_else(|| {
                other(format!(
                    "{input}: no row for proposal {name} among {} rows: fetch get_table_rows \
                     {{\"code\":\"eosio.msig\",\"scope\":PROPOSER,\"table\":\"proposal\",\
                     \"json\":true,\"lower_bound\":\"{name}\",\"limit\":1}}",
                    rows.len()
                ))
            })?;
        let hex_text = row
            .get("packed_transaction")
            .and_then(Value::as_str)
            .ok_or_else(|| other(format!("{input}: the row has no packed_transaction")))?;
        let bytes = hex::decode(hex_text)
            .map_err(|e| other(format!("{input}: packed_transaction: {e}")))?;
        return Ok(Transaction::decode(&bytes)?);
    }
    let loaded = tx::parse(&text)?;
    if !loaded.context_free_data.is_empty() {
        return Err(other(format!(
            "{input}: the proposed transaction carries context-free data, which a proposal \
             cannot"
        )));
    }
    Ok(loaded.trx)
}

impl Propose {
    fn action(&self) -> Result<MsigAction, CliError> {
        let trx = load_proposal(&self.trx, None)?;
        Ok(MsigAction::Propose {
            proposer: self.id.proposer,
            proposal_name: self.id.proposal_name,
            requested: self.requested.clone(),
            trx: Bytes(trx.packed()),
            authorizer: PermissionLevel::new(self.id.proposer, self.permission),
        })
    }
}

impl Approve {
    fn action(&self) -> Result<MsigAction, CliError> {
        let trx = load_proposal(&self.proposal, Some(self.id.proposal_name))?;
        Ok(MsigAction::Approve {
            proposer: self.id.proposer,
            proposal_name: self.id.proposal_name,
            level: self.level,
            proposal: Bytes(trx.packed()),
        })
    }
}

impl Unapprove {
    fn action(&self) -> MsigAction {
        MsigAction::Unapprove {
            proposer: self.id.proposer,
            proposal_name: self.id.proposal_name,
            level: self.level,
        }
    }
}

impl Exec {
    fn action(&self) -> MsigAction {
        MsigAction::Exec {
            proposer: self.id.proposer,
            proposal_name: self.id.proposal_name,
            executer: self.executer,
            authorizer: PermissionLevel::new(self.executer, self.permission),
        }
    }
}

impl Cancel {
    fn action(&self) -> MsigAction {
        MsigAction::Cancel {
            proposer: self.id.proposer,
            proposal_name: self.id.proposal_name,
            canceler: self.canceler,
            authorizer: PermissionLevel::new(self.canceler, self.permission),
        }
    }
}

impl Common {
    fn run(&self, action: MsigAction) -> Result<Value, CliError> {
        let (chain_id, tapos) = self.tx.resolve()?;
        let p = Params {
            chain_id,
            signing_key: self.signing_key,
            tapos,
            msig: action,
        };
        let (trx, proposals) = p.transaction()?;
        if let MsigAction::Propose { trx: proposed, .. } = &p.msig {
            let t = Transaction::decode(&proposed.0)?;
            if t.expiration.0 <= trx.expiration.0.saturating_sub(p.tapos.expire_in) {
                return Err(other(format!(
                    "the proposed transaction expired at {}, before the chain time of the TaPoS \
                     answer: give it a later expiration",
                    t.expiration
                )));
            }
        }
        if self.dry_run {
            let proposals: Vec<Value> = proposals
                .iter()
                .filter_map(|b| Transaction::decode(&b.0).ok())
                .map(|t| describe(&t, &p.chain_id))
                .collect();
            return Ok(json!({
                "status": "dry-run: nothing was signed or written",
                "would_sign": [{"transaction": p.msig.name(), "signing_key": p.signing_key.to_string(), "decoded": describe(&trx, &p.chain_id)}],
                "proposals_reviewed": proposals,
            }));
        }
        let kind = format!("msig-{}", p.msig.name());
        super::start(&self.dir, &kind, &p, &self.signer, advance)
    }
}

/// Every msig kind.
const KINDS: &[&str] = &[
    "msig-propose",
    "msig-approve",
    "msig-unapprove",
    "msig-exec",
    "msig-cancel",
];

fn advance(
    s: &mut Session,
    signer: &SignerArgs,
    p: &Params,
    approvals: &[PathBuf],
) -> Result<Value, CliError> {
    let tx = p.msig.name();
    let (trx, proposals) = p.transaction()?;
    s.record_tx(TxData::new(tx, p.chain_id, p.signing_key, &trx, proposals))?;
    let state = s.sign(signer, tx, approvals)?;
    let file = s.dir.join(format!("{tx}.json")).display().to_string();
    finish_signing(s, signer, tx, state, vec![push_hint(&file)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use oryx_proto::antelope::SystemAction;

    fn n(s: &str) -> Name {
        Name::new(s).expect("name")
    }

    fn proposed() -> Transaction {
        serde_json::from_value(json!({
            "expiration": "2030-01-01T00:00:00", "ref_block_num": 1, "ref_block_prefix": 2,
            "actions": [{"account": "eosio.token", "name": "transfer",
                "authorization": [{"actor": "oryxcustody1", "permission": "active"}],
                "data": {"from": "oryxcustody1", "to": "exchangeacct", "quantity": "1.0000 EOS", "memo": ""}}]
        }))
        .expect("transaction")
    }

    fn params(msig: MsigAction) -> Params {
        Params {
            chain_id: Checksum256([7; 32]),
            signing_key: super::super::placeholder_key(oryx_proto::antelope::KeyType::K1)
                .expect("key"),
            tapos: TaposParams {
                block_id: Checksum256([1; 32]),
                block_num: 0x0101_0101,
                time: oryx_proto::antelope::TimePoint(1_800_000_000_000_000),
                expire_in: 600,
            },
            msig,
        }
    }

    #[test]
    fn approve_pins_the_proposal_and_carries_it() {
        let proposal = Bytes(proposed().packed());
        let level: PermissionLevel = "custodian1@active".parse().expect("level");
        let p = params(MsigAction::Approve {
            proposer: n("oryxcustody1"),
            proposal_name: n("payout"),
            level,
            proposal: proposal.clone(),
        });
        let (t, proposals) = p.transaction().expect("builds");
        assert_eq!(proposals, vec![proposal.clone()]);
        assert_eq!(t.actions[0].authorization, vec![level]);
        match t.actions[0].system_action() {
            Some(Ok(SystemAction::Approve(a))) => {
                assert_eq!(a.proposal_hash, Some(msig::proposal_hash(&proposal.0)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn propose_refuses_what_the_contract_refuses() {
        let p = params(MsigAction::Propose {
            proposer: n("oryxcustody1"),
            proposal_name: n("payout"),
            requested: vec![],
            trx: Bytes(proposed().packed()),
            authorizer: "oryxcustody1@active".parse().expect("level"),
        });
        let e = p.transaction().expect_err("no approvers");
        assert!(e.to_string().contains("no requested approvals"), "{e}");
    }

    #[test]
    fn proposals_load_from_a_carried_proposal_table() {
        let trx = proposed();
        let table = json!({"rows": [{"proposal_name": "payout", "packed_transaction": hex::encode(trx.packed())}], "more": false});
        let got = load_proposal(&table.to_string(), Some(n("payout"))).expect("found");
        assert_eq!(got, trx);
        let e = load_proposal(&table.to_string(), Some(n("other"))).expect_err("absent");
        assert!(e.to_string().contains("no row for proposal other"), "{e}");
    }
}
