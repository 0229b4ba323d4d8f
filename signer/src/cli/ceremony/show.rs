//! `oryx ceremony show FILE`: a transcript's steps in one line each, the transactions decoded,
//! and whether the transcript verifies.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::antelope::SystemAction;
use serde_json::{Value, json};

use super::steps::{self, data};
use super::transcript::{Entry, Transcript, verify};
use crate::cli::{CliError, read_input};

/// Arguments.
#[derive(Debug, Args)]
pub struct Show {
    /// The transcript (DIR/transcript.json).
    pub file: PathBuf,
}

impl Show {
    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let text = read_input(&self.file)?;
        let t = Transcript::parse(&text).map_err(CliError::Other)?;
        let read = super::verify::sibling_reader(&self.file);
        let verified = verify(&text, None, &read);
        Ok(json!({
            "ceremony": t.ceremony,
            "kind": t.kind,
            "params": t.params,
            "verified": verified.is_ok(),
            "problem": verified.err(),
            "steps": summary(&t),
            "signatures": t.signatures.iter().map(|s| format!("entries 0..={} signed by {} (audit log #{})", s.seq, s.public_key, s.audit.as_ref().map_or_else(|| "-".into(), |a| a.seq.to_string()))).collect::<Vec<_>>(),
        }))
    }
}

/// One line per entry.
pub fn summary(t: &Transcript) -> Vec<String> {
    t.entries.iter().map(line).collect()
}

fn line(e: &Entry) -> String {
    let what = describe(e).unwrap_or_else(|err| format!("(unreadable: {err})"));
    format!("#{} {} {}: {what}", e.seq, e.time, e.step)
}

fn keys(list: &[oryx_proto::antelope::PublicKey]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(e: &Entry) -> Result<String, String> {
    Ok(match e.step.as_str() {
        steps::BEGIN => format!(
            "{} ceremony {}",
            e.data.get("kind").and_then(Value::as_str).unwrap_or("?"),
            e.data
                .get("ceremony")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ),
        steps::KEY_GENERATED => {
            let k: steps::KeyGenerated = data(e)?;
            format!(
                "{} {} in backend {} as {:?}{}",
                if k.existing {
                    "found existing"
                } else {
                    "generated"
                },
                k.public_key,
                k.backend,
                k.label,
                k.successor_of
                    .map(|o| format!(", successor of {o}"))
                    .unwrap_or_default()
            )
        }
        steps::AUTHORITY => {
            let a: steps::AuthorityChange = data(e)?;
            format!(
                "{}@{} from {} to {}, authorized by {}; team holds {} key(s), {} account(s)",
                a.account,
                a.permission,
                serde_json::to_string(&a.current).unwrap_or_default(),
                serde_json::to_string(&a.new).unwrap_or_default(),
                a.authorizer,
                a.held.keys.len(),
                a.held.accounts.len()
            )
        }
        steps::TRANSACTION => {
            let d: steps::TxData = data(e)?;
            let trx = d.decode()?;
            let actions: Vec<String> = trx
                .actions
                .iter()
                .map(|a| {
                    let auth: Vec<String> =
                        a.authorization.iter().map(ToString::to_string).collect();
                    let body = match a.system_action() {
                        Some(Ok(sa)) => action_data(&sa),
                        _ => format!("data {}", hex::encode(&a.data.0)),
                    };
                    format!("{}::{} by {} {body}", a.account, a.name, auth.join("+"))
                })
                .collect();
            format!(
                "{} id {} expires {}, to be signed by {} (digest {}): {}",
                d.tx,
                d.id,
                trx.expiration,
                d.signing_key,
                d.signing_digest,
                actions.join("; ")
            )
        }
        steps::APPROVAL_REQUESTED => {
            let r: steps::ApprovalRequested = data(e)?;
            format!(
                "{} needs {} of [{}] (set {}): request {}, expires {}",
                r.tx,
                r.threshold,
                keys(&r.approvers),
                r.set,
                r.request_id,
                r.expires
            )
        }
        steps::APPROVAL_SUBMITTED => {
            let a: steps::ApprovalSubmitted = data(e)?;
            format!("approval of request {} by {}", a.request_id, a.approver)
        }
        steps::APPROVAL_COLLECTED => {
            let a: steps::ApprovalSubmitted = data(e)?;
            format!(
                "approval of request {} by {} (given online, as the signer counted it)",
                a.request_id, a.approver
            )
        }
        steps::SIGNED => {
            let s: steps::Signed = data(e)?;
            format!(
                "{} signed by {}{}{}",
                s.tx,
                s.public_key,
                if s.approved_by.is_empty() {
                    String::new()
                } else {
                    format!(", approved by {}", keys(&s.approved_by))
                },
                s.audit
                    .map(|a| format!(" (signer audit #{})", a.seq))
                    .unwrap_or_default()
            )
        }
        steps::OUTPUT => {
            let o: steps::Output = data(e)?;
            format!("wrote {} (sha256 {})", o.file, o.sha256)
        }
        steps::ON_CHAIN => {
            let c: steps::OnChain = data(e)?;
            format!(
                "{} answer shows {} signing with {}",
                c.source,
                c.producer,
                keys(&c.keys)
            )
        }
        steps::RETIRED => {
            let r: steps::Retired = data(e)?;
            let handovers: Vec<String> = r
                .handovers
                .iter()
                .map(|h| format!("block {} slot {} on {}", h.block_num, h.slot, h.chain_id))
                .collect();
            format!(
                "retired {}{}{}; watermarks handed over: {}",
                r.public_key,
                r.successor
                    .map(|s| format!(", successor {s}"))
                    .unwrap_or_default(),
                if r.already_retired {
                    " (already retired)"
                } else {
                    ""
                },
                if handovers.is_empty() {
                    "none".into()
                } else {
                    handovers.join(", ")
                }
            )
        }
        _ => e
            .data
            .get("text")
            .and_then(Value::as_str)
            .map_or_else(|| e.data.to_string(), str::to_string),
    })
}

fn action_data(a: &SystemAction) -> String {
    let mut v = a.to_json();
    // A proposal is shown by its id; the transaction entry has the bytes.
    if let (SystemAction::Propose(p), Some(trx)) = (a, v.get_mut("trx_hex")) {
        *trx = json!(format!("(proposed transaction id {})", p.proposal_hash()));
    }
    v.to_string()
}
