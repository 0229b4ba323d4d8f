//! `oryx ceremony …`: key rotation and multisig ceremonies run from the air-gapped side, each in
//! its own directory with a hash-chained, audit-key-signed transcript.
//!
//! - `rotate-producer start|resume|finish`: a new producer key generated in the HSM,
//!   `regproducer`/`regproducer2` signed (with approvals), the old key retired once the chain
//!   shows the new one, its watermarks handed to the successor.
//! - `rotate-auth start|resume`: `updateauth` of owner/active to a new key or authority, refused
//!   before anything is signed when it is malformed or would lock the team out.
//! - `msig propose|approve|unapprove|exec|cancel|resume`: eosio.msig actions signed with a
//!   custody key.
//! - `verify FILE`, `show FILE`: check a transcript; summarize it.
//!
//! Guards: see [`session`] (resumable, idempotent, one ceremony per directory) and
//! [`transcript`] (tamper evidence). `--dry-run` contacts nothing that changes state: it
//! prints each transaction that would be signed and writes nothing.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use oryx_proto::antelope::block::num_from_id;
use oryx_proto::antelope::chain::parse_chain_id;
use oryx_proto::antelope::tapos::{
    DEFAULT_EXPIRE_IN_SECS, MAX_TRANSACTION_LIFETIME_SECS, RefBlock, TaposSource,
};
use oryx_proto::antelope::transaction::{Action, Transaction};
use oryx_proto::antelope::{Checksum256, KeyType, PrivateKey, PublicKey, TimePoint};
use oryx_proto::grpc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::remote::SignerArgs;
use super::{CliError, read_input};

pub mod msig;
pub mod rotate_auth;
pub mod rotate_producer;
pub mod session;
pub mod show;
pub mod steps;
pub mod transcript;
pub mod verify;

/// Ceremony commands.
#[derive(Debug, Subcommand)]
pub enum Ceremony {
    /// Rotate a block producer's signing key: generate, regproducer, retire the old key.
    #[command(subcommand)]
    RotateProducer(rotate_producer::RotateProducer),
    /// Rotate an account's owner or active authority (updateauth) with the lock-out guard.
    #[command(subcommand)]
    RotateAuth(rotate_auth::RotateAuth),
    /// eosio.msig actions signed with a custody key.
    #[command(subcommand)]
    Msig(msig::Msig),
    /// Check a transcript: chain, audit-key signatures, digests and signatures of every step.
    Verify(verify::Verify),
    /// A transcript's steps, readable.
    Show(show::Show),
}

impl Ceremony {
    /// Runs the subcommand.
    pub fn run(&self) -> Result<Value, CliError> {
        match self {
            Ceremony::RotateProducer(c) => c.run(),
            Ceremony::RotateAuth(c) => c.run(),
            Ceremony::Msig(c) => c.run(),
            Ceremony::Verify(c) => c.run(),
            Ceremony::Show(c) => c.run(),
        }
    }
}

/// A failure explained in one line.
pub(crate) fn other(msg: impl Into<String>) -> CliError {
    CliError::Other(msg.into())
}

/// The steps a ceremony kind runs from its recorded parameters (each skipped when recorded).
pub(crate) type Advance<P> =
    fn(&mut session::Session, &SignerArgs, &P, &[PathBuf]) -> Result<Value, CliError>;

/// Starts (or continues, with the same parameters) the ceremony `kind` in `dir` and runs it.
pub(crate) fn start<P: Serialize>(
    dir: &std::path::Path,
    kind: &str,
    params: &P,
    signer: &SignerArgs,
    advance: Advance<P>,
) -> Result<Value, CliError> {
    let value = serde_json::to_value(params).map_err(|e| other(e.to_string()))?;
    let mut s = session::Session::start(dir, kind, value)?;
    let result = advance(&mut s, signer, params, &[]);
    // A first step that failed leaves no directory behind to trip the corrected `start`.
    if result.is_err() && s.untouched() {
        s.discard()?;
    }
    result
}

/// Arguments of every `abort`.
#[derive(Debug, Args)]
pub struct Abort {
    /// The ceremony directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Abort even though the ceremony's transaction was signed (only if it was never pushed:
    /// on chain it would name a key the abort retires).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

/// The first part of every `abort`: the ceremony's transaction `tx`, when signed (here, or on
/// the signer by approvals given online since the last run), needs `force` (`signed_warning`
/// says why); while its approval request is pending, the request is cancelled so no approval
/// releases it later.
pub(crate) fn close_request(
    s: &mut session::Session,
    signer: &SignerArgs,
    tx: &str,
    force: bool,
    signed_warning: &str,
) -> Result<(), CliError> {
    let request = s.get::<steps::ApprovalRequested>(steps::APPROVAL_REQUESTED, Some(tx))?;
    let state = match &request {
        Some(r) => Some(session::get_approval(signer, &r.request_id)?.state),
        None => None,
    };
    let signed = s.t.last(steps::SIGNED, Some(tx)).is_some() || state.as_deref() == Some("signed");
    if signed && !force {
        return Err(other(signed_warning));
    }
    if let (Some(r), Some("pending")) = (&request, state.as_deref()) {
        let id = r.request_id.clone();
        signer.call(async move |c| {
            c.cancel_approval(grpc::CancelApprovalRequest { id })
                .await
                .map(|r| r.into_inner())
        })?;
        s.record(
            steps::NOTE,
            &json!({"text": format!("approval request {} cancelled by abort", r.request_id)}),
        )?;
    }
    Ok(())
}

/// The rest of an `abort` that generated a key: RetireKey of it (no successor), recorded.
pub(crate) fn retire_generated(
    s: &mut session::Session,
    signer: &SignerArgs,
    key: PublicKey,
) -> Result<(), CliError> {
    let req = grpc::RetireKeyRequest {
        public_key: key.to_string(),
        successor: String::new(),
    };
    let resp = signer.call(async move |c| c.retire_key(req).await.map(|r| r.into_inner()))?;
    s.record(
        steps::RETIRED,
        &steps::Retired {
            public_key: key,
            successor: None,
            handovers: Vec::new(),
            already_retired: resp.already_retired,
            audit: session::audit_pos(resp.audit),
        },
    )
}

/// Arguments of every `resume`.
#[derive(Debug, Args)]
pub struct Resume {
    /// The ceremony directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// An approval file from `oryx approve --offline` to submit (repeatable).
    #[arg(long = "approval")]
    pub approvals: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

impl Resume {
    /// Opens the ceremony in `--dir` (one of `kinds`) and continues it from its last recorded
    /// step with its recorded parameters.
    pub(crate) fn run_with<P: serde::de::DeserializeOwned>(
        &self,
        kinds: &[&str],
        advance: Advance<P>,
    ) -> Result<Value, CliError> {
        let mut s = session::Session::open(&self.dir, kinds)?;
        let p: P = s.params()?;
        advance(&mut s, &self.signer, &p, &self.approvals)
    }
}

/// What every transaction-building command takes: the chain and the carried TaPoS answer.
#[derive(Debug, Clone, Args)]
pub struct TxArgs {
    /// Chain id in hex, or a known chain: eos, jungle4, kylin, wax, telos.
    #[arg(long)]
    pub chain_id: String,
    /// The carried JSON answer of /v1/chain/get_info (or get_block) to take TaPoS from, as for
    /// `oryx tapos` (the last irreversible block is referenced).
    #[arg(
        long,
        required_unless_present = "ref_block_id",
        conflicts_with = "ref_block_id"
    )]
    pub tapos: Option<PathBuf>,
    /// Or TaPoS typed in: the id of the block to reference (64 hex; its number and prefix are
    /// read from it, e.g. `last_irreversible_block_id` read off an online host)…
    #[arg(long, requires = "ref_time")]
    pub ref_block_id: Option<String>,
    /// …and the chain time the expiration counts from (ISO 8601 UTC, e.g. that answer's
    /// `head_block_time`).
    #[arg(long, requires = "ref_block_id")]
    pub ref_time: Option<String>,
    /// Seconds from the answer's time until the transaction expires (at most 3600: approvals
    /// must be collected and the transaction pushed within it).
    #[arg(long, default_value_t = DEFAULT_EXPIRE_IN_SECS)]
    pub expire_in: u32,
}

/// TaPoS as a ceremony records it among its parameters (so a resumed run builds the same
/// transaction without the carried file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaposParams {
    /// The referenced block.
    pub block_id: Checksum256,
    /// Its number.
    pub block_num: u32,
    /// The time the expiration counts from.
    pub time: TimePoint,
    /// Lifetime in seconds.
    pub expire_in: u32,
}

impl TxArgs {
    /// The chain id and TaPoS, checked: the answer's chain (get_info) must be `--chain-id`, and
    /// the transaction must not be expired already by this host's clock.
    pub fn resolve(&self) -> Result<(Checksum256, TaposParams), CliError> {
        let chain_id = parse_chain_id(&self.chain_id)?;
        let (src, from) = match (&self.tapos, &self.ref_block_id, &self.ref_time) {
            (Some(path), _, _) => {
                let text = read_input(path)?;
                (
                    TaposSource::from_json(&text, RefBlock::LastIrreversible)?,
                    path.display().to_string(),
                )
            }
            (None, Some(id), Some(time)) => {
                let block_id = Checksum256::from_hex(id.trim()).map_err(|e| {
                    other(format!("--ref-block-id: {e} (give the block id, 64 hex)"))
                })?;
                let time =
                    TimePoint::parse(time.trim()).map_err(|e| other(format!("--ref-time: {e}")))?;
                let src = TaposSource {
                    chain_id: None,
                    block_num: num_from_id(&block_id),
                    block_id,
                    time,
                };
                (src, "--ref-block-id/--ref-time".to_string())
            }
            _ => {
                return Err(other(
                    "give --tapos FILE, or --ref-block-id with --ref-time",
                ));
            }
        };
        if let Some(c) = src.chain_id
            && c != chain_id
        {
            return Err(other(format!(
                "{from}: the answer is from chain {c}, not --chain-id {chain_id}"
            )));
        }
        let p = TaposParams {
            block_id: src.block_id,
            block_num: src.block_num,
            time: src.time,
            expire_in: self.expire_in,
        };
        let expiration = src.expiration(self.expire_in, MAX_TRANSACTION_LIFETIME_SECS)?;
        let now = crate::clock::now_secs();
        if expiration <= now {
            return Err(other(format!(
                "{}: a transaction referencing it expires at {expiration}, but it is {now} \
                 already: carry a fresh get_info answer (or check this host's clock)",
                from
            )));
        }
        Ok((chain_id, p))
    }
}

impl TaposParams {
    /// A transaction of `actions` with this TaPoS and expiration.
    pub fn transaction(&self, actions: Vec<Action>) -> Result<Transaction, CliError> {
        let src = TaposSource {
            chain_id: None,
            block_id: self.block_id,
            block_num: self.block_num,
            time: self.time,
        };
        Ok(src.transaction(actions, self.expire_in, MAX_TRANSACTION_LIFETIME_SECS)?)
    }
}

/// The stand-in for a key a dry run does not generate: a fixed, well-known key that no HSM
/// holds, shown as a placeholder.
pub fn placeholder_key(kind: KeyType) -> Result<PublicKey, CliError> {
    let secret = Checksum256::hash(b"oryx ceremony dry-run placeholder key").0;
    Ok(PrivateKey::from_bytes(kind, secret)?.public_key())
}

/// Parses `K1`/`R1`.
pub fn key_type(text: &str) -> Result<KeyType, CliError> {
    match text.to_ascii_uppercase().as_str() {
        "K1" => Ok(KeyType::K1),
        "R1" => Ok(KeyType::R1),
        _ => Err(other(format!("--key-type {text:?}: give K1 or R1"))),
    }
}

/// A transaction decoded for a dry run's or a summary's reader.
pub fn describe(trx: &Transaction, chain_id: &Checksum256) -> Value {
    let loaded = super::inspect::tx::Loaded {
        trx: trx.clone(),
        context_free_data: vec![],
        signatures: vec![],
    };
    super::inspect::tx::describe(&loaded, chain_id)
}

/// What a command prints after a run: its status, the transcript's head and any next steps.
pub(crate) fn report(mut status: Value, sealed: Value) -> Value {
    if let Some(obj) = status.as_object_mut() {
        obj.insert("transcript".into(), sealed);
    }
    status
}

/// ListKeys: every key the signer holds.
pub(crate) fn list_keys(signer: &SignerArgs) -> Result<Vec<grpc::KeyInfo>, CliError> {
    signer.call(async move |c| {
        c.list_keys(grpc::ListKeysRequest {})
            .await
            .map(|r| r.into_inner().keys)
    })
}

/// The signer's transcript key (`[audit] signing_key`), asked before a ceremony generates or
/// signs anything: without one its transcript could never be signed.
pub(crate) fn transcript_key(signer: &SignerArgs) -> Result<PublicKey, CliError> {
    let status = signer.call(async move |c| {
        c.status(grpc::StatusRequest {})
            .await
            .map(|r| r.into_inner())
    })?;
    if status.transcript_key.is_empty() {
        return Err(other(
            "the signer has no [audit] signing_key, so this ceremony's transcript could not be \
             signed: nothing was generated or signed. Configure it first (a [[keys]] entry with \
             chains = [] named by audit.signing_key)",
        ));
    }
    Ok(PublicKey::parse(&status.transcript_key)?)
}

/// CheckTransaction before anything is generated: would the signer sign `trx` (built with a
/// placeholder for a key still to be generated) with `key` — policy rule, chain, key? A
/// refusal now says what the later signature would be refused for, while nothing exists yet.
/// Returns the approvals it will need, if any.
pub(crate) fn check_transaction(
    signer: &SignerArgs,
    what: &str,
    chain_id: &Checksum256,
    key: &PublicKey,
    trx: &Transaction,
    placeholder: Option<PublicKey>,
) -> Result<Option<String>, CliError> {
    let req = grpc::CheckTransactionRequest {
        request: Some(grpc::SignTransactionRequest {
            chain_id: chain_id.0.to_vec(),
            public_key: key.to_string(),
            transaction: Some(grpc::sign_transaction_request::Transaction::PackedTrx(
                oryx_proto::antelope::Pack::packed(trx),
            )),
            ..Default::default()
        }),
        to_be_generated: placeholder.iter().map(ToString::to_string).collect(),
    };
    let answer =
        signer.try_call(async move |c| c.check_transaction(req).await.map(|r| r.into_inner()))?;
    match answer {
        Ok(r) if r.needs_approvals => Ok(Some(format!(
            "{} of {} approvers in set {:?}",
            r.threshold, r.approvers, r.approver_set
        ))),
        Ok(_) => Ok(None),
        Err(status) => Err(other(format!(
            "the signer would refuse to sign {what} with {key} ({}): {}. Nothing was generated, \
             signed or written; fix the policy or the parameters first",
            oryx_proto::client::reason(&status).unwrap_or_else(|| format!("{:?}", status.code())),
            status.message()
        ))),
    }
}

/// The public keys of a ListKeys answer.
pub(crate) fn public_keys(infos: &[grpc::KeyInfo]) -> Result<Vec<PublicKey>, CliError> {
    infos
        .iter()
        .map(|k| Ok(PublicKey::parse(&k.public_key)?))
        .collect()
}

/// GenerateKey, checking the answer: the key carries `label`, and when `successor_of` is
/// given, the signer reports that same predecessor.
pub(crate) fn generate_key(
    signer: &SignerArgs,
    req: grpc::GenerateKeyRequest,
) -> Result<steps::KeyGenerated, CliError> {
    let sent = req.clone();
    let resp = signer.call(async move |c| c.generate_key(req).await.map(|r| r.into_inner()))?;
    let info = resp
        .key
        .ok_or_else(|| other("GenerateKey answered without a key"))?;
    let public_key = PublicKey::parse(&info.public_key)?;
    if !info.label.is_empty() && info.label != sent.label {
        return Err(other(format!(
            "GenerateKey answered with a key labelled {:?}, not {:?}",
            info.label, sent.label
        )));
    }
    let successor_of = if sent.successor_of.is_empty() {
        None
    } else {
        let old = PublicKey::parse(&sent.successor_of)?;
        if !resp.successor_of.is_empty() && PublicKey::parse(&resp.successor_of)? != old {
            return Err(other(format!(
                "label {:?} on backend {} already holds {public_key}, the successor of {}, not \
                 of {old}: choose another label",
                sent.label, sent.backend, resp.successor_of
            )));
        }
        Some(old)
    };
    Ok(steps::KeyGenerated {
        backend: sent.backend,
        label: sent.label,
        key_type: sent.key_type,
        public_key,
        successor_of,
        existing: resp.existing,
        audit: session::audit_pos(resp.audit),
    })
}

/// The usual ending of a run that signed (or waits for) one transaction.
pub(crate) fn finish_signing(
    s: &mut session::Session,
    signer: &SignerArgs,
    tx: &str,
    state: session::SignState,
    next: Vec<String>,
) -> Result<Value, CliError> {
    let status = match state {
        session::SignState::Waiting(v) => v,
        session::SignState::Signed(signed) => {
            let out = s.write_signed(tx)?;
            json!({
                "status": "signed",
                "transaction": tx,
                "signature": signed.signature.to_string(),
                "signed_by": signed.public_key.to_string(),
                "approved_by": signed.approved_by.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "file": s.dir.join(&out.file).display().to_string(),
                "next": next,
            })
        }
    };
    let sealed = s.seal(signer)?;
    Ok(report(status, sealed))
}

/// How to push a signed transaction file from the online host.
pub(crate) fn push_hint(file: &str) -> String {
    format!(
        "online host: `cleos push transaction --skip-sign {file}` or \
         `curl -d @{file} $NODE/v1/chain/send_transaction`"
    )
}
