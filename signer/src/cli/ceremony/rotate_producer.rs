//! `oryx ceremony rotate-producer start|resume|finish`: rotate a block producer's signing key.
//!
//! 1. `start`: records the parameters; GenerateKey in the HSM (label = idempotency key,
//!    successor of the old key); builds `regproducer` (or `regproducer2` with a one-key
//!    block-signing authority) on the carried TaPoS; SignTransaction with the account's key.
//!    When the policy needs approvals, the request is recorded and the command stops, saying
//!    who must approve.
//! 2. `resume`: continues from the last recorded step (submits carried approval files, polls
//!    the request once); when signed, writes `DIR/regproducer.json` for the online host.
//! 3. `finish --carried FILE`: a carried get_producers/get_table_rows answer that shows the new
//!    key registered is reported (nothing retired: blocks switch keys only with the active
//!    schedule); once a carried get_producer_schedule answer's *active* schedule names the new
//!    key, RetireKey(old, successor = new): the old key is refused from then on, and the new
//!    one goes on under the same watermark.
//!
//! 4. `abort`: a rotation that will not finish retires its new key (RetireKey without a
//!    successor, audited) and records it; the ceremony cannot be resumed or finished after.
//!    Until then the new key shares the old key's watermark, so even a ceremony abandoned
//!    without `abort` leaves no key that can sign a height the producer signed.
//!
//! Guards: the key is generated at most once (recorded, and found again by its label); the
//! old key is only retired after the chain's active schedule is shown to use the new one.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use oryx_proto::antelope::actions::{
    BlockSigningAuthority, BlockSigningAuthorityV0, KeyWeight, RegProducer, RegProducer2,
};
use oryx_proto::antelope::carried::{find_producer, find_scheduled, is_schedule};
use oryx_proto::antelope::{Checksum256, Name, PermissionLevel, PublicKey};
use oryx_proto::grpc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::other;
use super::session::Session;
use super::steps::{self, Handover, KeyGenerated, OnChain, Output, Retired, TxData};
use super::{
    TaposParams, TxArgs, describe, finish_signing, generate_key, key_type, list_keys,
    placeholder_key, push_hint, report,
};
use crate::cli::remote::SignerArgs;
use crate::cli::{CliError, read_input};

/// The ceremony kind.
pub const KIND: &str = "rotate-producer";
/// The transaction's name in the transcript and the output file (`regproducer.json`).
const TX: &str = "regproducer";

/// Producer-key rotation.
#[derive(Debug, Subcommand)]
pub enum RotateProducer {
    /// Start (or continue, with the same parameters) a rotation in a new directory.
    Start(Box<Start>),
    /// Continue a rotation from its last recorded step.
    Resume(super::Resume),
    /// Retire the old key once the chain shows the new one.
    Finish(Finish),
    /// End a rotation that will not finish: retire its new key (the old one signs on).
    Abort(super::Abort),
}

impl RotateProducer {
    /// Runs the subcommand.
    pub fn run(&self) -> Result<Value, CliError> {
        match self {
            RotateProducer::Start(c) => c.run(),
            RotateProducer::Resume(c) => c.run_with(&[KIND], advance),
            RotateProducer::Finish(c) => c.run(),
            RotateProducer::Abort(c) => abort(c),
        }
    }
}

/// Arguments of `start`.
#[derive(Debug, Args)]
pub struct Start {
    /// The ceremony directory (transcript, request and signed transaction files).
    #[arg(long)]
    pub dir: PathBuf,
    /// The producer account.
    #[arg(long)]
    pub producer: Name,
    /// The producer key being replaced (held by the signer).
    #[arg(long)]
    pub old_key: PublicKey,
    /// The signer backend to generate the new key in (a name under [backends]).
    #[arg(long)]
    pub backend: String,
    /// The new key's label on the device (a resumed ceremony finds the key again by it).
    #[arg(long)]
    pub label: String,
    /// K1 or R1.
    #[arg(long, default_value = "K1")]
    pub key_type: String,
    /// The account key the signer signs regproducer with.
    #[arg(long)]
    pub signing_key: PublicKey,
    /// The producer's permission that authorizes regproducer.
    #[arg(long, default_value = "active")]
    pub permission: Name,
    /// The producer's URL (as registered now, or the new one).
    #[arg(long)]
    pub url: String,
    /// The producer's location code.
    #[arg(long, default_value_t = 0)]
    pub location: u16,
    /// Register with regproducer2 (block_signing_authority v0 holding the new key) instead
    /// of regproducer.
    #[arg(long)]
    pub regproducer2: bool,
    #[command(flatten)]
    pub(crate) tx: TxArgs,
    /// Print the transaction that would be signed; generate, sign and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

/// Arguments of `finish`.
#[derive(Debug, Args)]
pub struct Finish {
    /// The ceremony directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// A carried answer of /v1/chain/get_producer_schedule whose active schedule names the new
    /// key (retires the old one), or of get_producers / get_table_rows (eosio, eosio, producers,
    /// json) showing it registered (reported; nothing retired).
    #[arg(long)]
    pub carried: PathBuf,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

/// The ceremony's new key when an `abort` retired it (a [`Retired`] step of that key).
fn aborted(s: &Session) -> Result<Option<Retired>, CliError> {
    let key = s.get::<KeyGenerated>(steps::KEY_GENERATED, None)?;
    let retired = s.get::<Retired>(steps::RETIRED, None)?;
    Ok(match (key, retired) {
        (Some(k), Some(r)) if r.public_key == k.public_key => Some(r),
        _ => None,
    })
}

/// Refuses to go on with an aborted ceremony.
fn not_aborted(s: &Session) -> Result<(), CliError> {
    match aborted(s)? {
        Some(r) => Err(other(format!(
            "this rotation was aborted: its new key {} is retired. Start a new rotation in \
             another directory",
            r.public_key
        ))),
        None => Ok(()),
    }
}

/// `rotate-producer abort`.
fn abort(this: &super::Abort) -> Result<Value, CliError> {
    let signer = &this.signer;
    let mut s = Session::open(&this.dir, &[KIND])?;
    let p: Params = s.params()?;
    let Some(key) = s.get::<KeyGenerated>(steps::KEY_GENERATED, None)? else {
        return Err(other(
            "no key was generated in this ceremony: nothing to retire (if a GenerateKey \
             answer was lost, `resume` records the key first; then abort)",
        ));
    };
    let new_key = key.public_key;
    if let Some(r) = s.get::<Retired>(steps::RETIRED, None)?
        && r.public_key == p.old_key
    {
        return Err(other(format!(
            "this rotation finished: {} is retired and {new_key} signs for {}; nothing to \
             abort",
            p.old_key, p.producer
        )));
    }
    if aborted(&s)?.is_none() {
        super::close_request(
            &mut s,
            signer,
            TX,
            this.force,
            &format!(
                "{TX} naming {new_key} was signed: if it was pushed, the chain expects the \
                 new key and retiring it stops the producer. Push a regproducer with the \
                 old key first, or pass --force if it was never pushed"
            ),
        )?;
        super::retire_generated(&mut s, signer, new_key)?;
    }
    let status = json!({
        "status": "aborted",
        "retired": new_key.to_string(),
        "signs_on": p.old_key.to_string(),
        "next": [format!("keep the transcript: `oryx ceremony verify {}`", s.dir.join(super::session::TRANSCRIPT).display())],
    });
    let sealed = s.seal(signer)?;
    Ok(report(status, sealed))
}

/// What `start` records as the ceremony's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    chain_id: Checksum256,
    producer: Name,
    old_key: PublicKey,
    backend: String,
    label: String,
    key_type: String,
    signing_key: PublicKey,
    permission: Name,
    url: String,
    location: u16,
    regproducer2: bool,
    tapos: TaposParams,
}

impl Params {
    /// The regproducer/regproducer2 transaction registering `new_key`.
    fn transaction(
        &self,
        new_key: PublicKey,
    ) -> Result<oryx_proto::antelope::transaction::Transaction, CliError> {
        let authorizer = PermissionLevel::new(self.producer, self.permission);
        let action = if self.regproducer2 {
            RegProducer2 {
                producer: self.producer,
                producer_authority: BlockSigningAuthority::V0(BlockSigningAuthorityV0 {
                    threshold: 1,
                    keys: vec![KeyWeight {
                        key: new_key,
                        weight: 1,
                    }],
                }),
                url: self.url.clone(),
                location: self.location,
            }
            .to_action(authorizer)?
        } else {
            RegProducer {
                producer: self.producer,
                producer_key: new_key,
                url: self.url.clone(),
                location: self.location,
            }
            .to_action(authorizer)?
        };
        self.tapos.transaction(vec![action])
    }
}

/// What the signer can tell before a key exists: it holds the old key and the signing key,
/// and serves the ceremony's chain with both (ListKeys lists active keys only), and its policy
/// lets the signing key sign this regproducer (CheckTransaction, with a placeholder for the new
/// key). A rotation that would be refused later generates nothing.
fn precheck(signer: &SignerArgs, p: &Params) -> Result<(), CliError> {
    super::transcript_key(signer)?;
    let infos = list_keys(signer)?;
    for (what, key) in [("--old-key", p.old_key), ("--signing-key", p.signing_key)] {
        let info = infos
            .iter()
            .find(|k| PublicKey::parse(&k.public_key).ok() == Some(key))
            .ok_or_else(|| {
                other(format!(
                    "the signer holds no active key {key} ({what}): nothing was generated"
                ))
            })?;
        if !info.chain_ids.iter().any(|c| c[..] == p.chain_id.0[..]) {
            return Err(other(format!(
                "{what} {key} is not configured for chain {} on the signer (check --chain-id): \
                 nothing was generated",
                p.chain_id
            )));
        }
    }
    let placeholder = placeholder_key(key_type(&p.key_type)?)?;
    let trx = p.transaction(placeholder)?;
    super::check_transaction(
        signer,
        TX,
        &p.chain_id,
        &p.signing_key,
        &trx,
        Some(placeholder),
    )?;
    Ok(())
}

/// Before regproducer is signed: the rotation still stands — the old key is still active (not
/// retired to another successor meanwhile) and so is the new one (not aborted). A stale
/// ceremony gets nothing signed that would point the chain at a key that no longer signs.
fn still_current(signer: &SignerArgs, p: &Params, new_key: &PublicKey) -> Result<(), CliError> {
    let active = super::public_keys(&list_keys(signer)?)?;
    for (what, key) in [("the old key", p.old_key), ("the new key", *new_key)] {
        if !active.contains(&key) {
            return Err(other(format!(
                "{what} {key} is no longer an active key on the signer (retired, or rotated \
                 by another ceremony): this rotation is stale and regproducer is not signed. \
                 End it with `oryx ceremony rotate-producer abort`"
            )));
        }
    }
    Ok(())
}

impl Start {
    fn params(&self) -> Result<Params, CliError> {
        let (chain_id, tapos) = self.tx.resolve()?;
        let kind = key_type(&self.key_type)?;
        if self.old_key == self.signing_key {
            return Err(other(
                "--signing-key is the producer key being replaced: regproducer is signed with \
                 the account's active (or --permission) key",
            ));
        }
        if self.label.trim().is_empty() {
            return Err(other("--label is empty: name the new key"));
        }
        Ok(Params {
            chain_id,
            producer: self.producer,
            old_key: self.old_key,
            backend: self.backend.clone(),
            label: self.label.clone(),
            key_type: kind.to_string(),
            signing_key: self.signing_key,
            permission: self.permission,
            url: self.url.clone(),
            location: self.location,
            regproducer2: self.regproducer2,
            tapos,
        })
    }

    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let params = self.params()?;
        // A new ceremony is checked before its directory exists (an existing one, resumed by
        // `start`, before GenerateKey if that is still to do).
        let new = !self.dir.join(super::session::TRANSCRIPT).exists();
        if new || self.dry_run {
            precheck(&self.signer, &params)?;
        }
        if self.dry_run {
            let new_key = placeholder_key(key_type(&params.key_type)?)?;
            let trx = params.transaction(new_key)?;
            return Ok(json!({
                "status": "dry-run: nothing was generated, signed or written",
                "new_key": format!("{new_key} (PLACEHOLDER: start generates the real key in backend {} with label {:?})", params.backend, params.label),
                "signing_key": params.signing_key.to_string(),
                "would_sign": [{"transaction": TX, "decoded": describe(&trx, &params.chain_id)}],
                "then": format!("finish: RetireKey({}) with the new key as successor", params.old_key),
            }));
        }
        super::start(&self.dir, KIND, &params, &self.signer, advance)
    }
}

/// Every step `start` and `resume` run, each skipped when already recorded.
fn advance(
    s: &mut Session,
    signer: &SignerArgs,
    p: &Params,
    approvals: &[PathBuf],
) -> Result<Value, CliError> {
    not_aborted(s)?;
    if let Some(r) = s.get::<Retired>(steps::RETIRED, None)?
        && r.public_key == p.old_key
    {
        return Ok(json!({
            "status": "complete",
            "note": format!(
                "this rotation finished: {} is retired and its successor signs; nothing to sign or push again",
                p.old_key
            ),
            "new_key": r.successor.map(|k| k.to_string()),
        }));
    }
    let key = match s.get::<KeyGenerated>(steps::KEY_GENERATED, None)? {
        Some(k) => k,
        None => {
            precheck(signer, p)?;
            let k = generate_key(
                signer,
                grpc::GenerateKeyRequest {
                    backend: p.backend.clone(),
                    label: p.label.clone(),
                    key_type: p.key_type.clone(),
                    successor_of: p.old_key.to_string(),
                    chains: vec![],
                    blind_digest: false,
                },
            )?;
            s.record(steps::KEY_GENERATED, &k)?;
            k
        }
    };
    if s.t.last(steps::SIGNED, Some(TX)).is_none() {
        still_current(signer, p, &key.public_key)?;
    }
    let trx = p.transaction(key.public_key)?;
    s.record_tx(TxData::new(TX, p.chain_id, p.signing_key, &trx, vec![]))?;
    let state = s.sign(signer, TX, approvals)?;
    let file = s.dir.join(format!("{TX}.json")).display().to_string();
    let next = vec![
        push_hint(&file),
        format!(
            "keep the old key signing (nodeos: a signature-provider for both keys); when the \
             chain's active schedule names the new key, carry get_producer_schedule back and run \
             `oryx ceremony rotate-producer finish --dir {} --carried FILE` (a carried \
             get_producers only confirms the registration)",
            s.dir.display()
        ),
    ];
    let mut out = finish_signing(s, signer, TX, state, next)?;
    out["new_key"] = json!(key.public_key.to_string());
    Ok(out)
}

/// [`OnChain::source`] of the evidence `finish` retires on.
const SCHEDULE: &str = "get_producer_schedule";

impl Finish {
    /// A carried producers answer (get_producers / get_table_rows): shows the registration, not
    /// yet the switch, so nothing is retired; says what to carry next.
    fn registered(&self, text: &str, p: &Params, new_key: PublicKey) -> Result<Value, CliError> {
        let (source, row) = find_producer(text, p.producer)?;
        if !row.is_active {
            return Err(other(format!(
                "{}: {} is not an active producer (is_active 0): the old key is not retired",
                self.carried.display(),
                p.producer
            )));
        }
        let keys: Vec<String> = row.keys().iter().map(ToString::to_string).collect();
        if !row.signs_with(&new_key) {
            return Err(other(format!(
                "{}: {} signs with {} on chain, not the new key {new_key}: push {TX}.json, \
                 wait until it is irreversible, and carry a fresh answer. The old key is not \
                 retired",
                self.carried.display(),
                p.producer,
                keys.join(", ")
            )));
        }
        Ok(json!({
            "status": "registered",
            "source": source.label(),
            "registered_keys": keys,
            "note": format!(
                "{} is registered with {new_key}, but blocks switch keys only when the active \
                 schedule does: the old key is not retired and signs on. Carry \
                 /v1/chain/get_producer_schedule once its `active` schedule names the new key, \
                 and run finish again with it",
                p.producer
            ),
        }))
    }

    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let signer = &self.signer;
        let mut s = Session::open(&self.dir, &[KIND])?;
        let p: Params = s.params()?;
        not_aborted(&s)?;
        if s.get::<Output>(steps::OUTPUT, Some(TX))?.is_none() {
            let state = if s.t.last(steps::SIGNED, Some(TX)).is_some() {
                "signed but its file is not written"
            } else {
                "not signed yet"
            };
            return Err(other(format!(
                "{TX} is {state}: run `oryx ceremony rotate-producer resume --dir {}` first",
                self.dir.display()
            )));
        }
        let key: KeyGenerated = s
            .get(steps::KEY_GENERATED, None)?
            .ok_or_else(|| other("no key generated in this ceremony"))?;
        let new_key = key.public_key;
        let finished_before = s.get::<Retired>(steps::RETIRED, None)?.is_some();
        // The old key retires only on evidence that the chain takes the producer's blocks from
        // the new key: its *active schedule* names it. A registration (get_producers) changes
        // the schedule only later; retiring then would miss every block in between.
        let scheduled = s
            .get::<OnChain>(steps::ON_CHAIN, None)?
            .is_some_and(|o| o.source == SCHEDULE);
        if !finished_before && !scheduled {
            let text = read_input(&self.carried)?;
            if !is_schedule(&text) {
                return self.registered(&text, &p, new_key);
            }
            let sch = find_scheduled(&text, p.producer)?;
            if !sch.keys.contains(&new_key) {
                return Err(other(format!(
                    "{}: the active schedule (version {}) takes {}'s blocks from {}, not yet from \
                     the new key {new_key}: wait until it does (the schedule changes after \
                     regproducer once a new schedule is proposed and becomes irreversible) and \
                     carry a fresh answer. The old key is not retired",
                    self.carried.display(),
                    sch.version,
                    p.producer,
                    if sch.keys.is_empty() {
                        "no key at or above its threshold".to_string()
                    } else {
                        sch.keys
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )));
            }
            s.record(
                steps::ON_CHAIN,
                &OnChain {
                    source: SCHEDULE.into(),
                    carried_sha256: Checksum256::hash(text.as_bytes()),
                    producer: p.producer,
                    keys: sch.keys,
                    new_key,
                },
            )?;
        }
        let retired = match s.get::<Retired>(steps::RETIRED, None)? {
            Some(r) => r,
            None => {
                let req = grpc::RetireKeyRequest {
                    public_key: p.old_key.to_string(),
                    successor: new_key.to_string(),
                };
                let resp =
                    signer.call(async move |c| c.retire_key(req).await.map(|r| r.into_inner()))?;
                let handovers = resp
                    .handovers
                    .iter()
                    .map(|h| {
                        Ok(Handover {
                            chain_id: Checksum256(h.chain_id.clone().try_into().map_err(|_| {
                                other("RetireKey: a hand-over's chain id is not 32 bytes")
                            })?),
                            block_num: h.block_num,
                            slot: h.slot,
                        })
                    })
                    .collect::<Result<Vec<_>, CliError>>()?;
                let r = Retired {
                    public_key: p.old_key,
                    successor: Some(new_key),
                    handovers,
                    already_retired: resp.already_retired,
                    audit: super::session::audit_pos(resp.audit),
                };
                s.record(steps::RETIRED, &r)?;
                r
            }
        };
        let status = json!({
            "status": "complete",
            "retired": p.old_key.to_string(),
            "successor": new_key.to_string(),
                        "already_retired": finished_before || retired.already_retired,
            "handovers": retired.handovers,
            "next": [format!("keep the transcript: `oryx ceremony verify {}`", s.dir.join(super::session::TRANSCRIPT).display())],
        });
        let sealed = s.seal(signer)?;
        Ok(report(status, sealed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oryx_proto::antelope::SystemAction;

    fn params(regproducer2: bool) -> Params {
        Params {
            chain_id: Checksum256([7; 32]),
            producer: Name::new("oryxproducer").expect("name"),
            old_key: placeholder_key(oryx_proto::antelope::KeyType::R1).expect("key"),
            backend: "hsm".into(),
            label: "producer-2".into(),
            key_type: "K1".into(),
            signing_key: placeholder_key(oryx_proto::antelope::KeyType::R1).expect("key"),
            permission: Name::new("active").expect("name"),
            url: "https://example.invalid".into(),
            location: 0,
            regproducer2,
            tapos: TaposParams {
                block_id: Checksum256([1; 32]),
                block_num: 0x0101_0101,
                time: oryx_proto::antelope::TimePoint(1_900_000_000_000_000),
                expire_in: 600,
            },
        }
    }

    #[test]
    fn builds_regproducer_and_regproducer2_with_the_new_key() {
        let new_key = placeholder_key(oryx_proto::antelope::KeyType::K1).expect("key");
        let t = params(false).transaction(new_key).expect("builds");
        match t.actions[0].system_action() {
            Some(Ok(SystemAction::RegProducer(r))) => assert_eq!(r.producer_key, new_key),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            t.actions[0].authorization[0].to_string(),
            "oryxproducer@active"
        );
        assert_eq!(t.expiration.0, 1_900_000_600);
        let t = params(true).transaction(new_key).expect("builds");
        match t.actions[0].system_action() {
            Some(Ok(SystemAction::RegProducer2(r))) => {
                let BlockSigningAuthority::V0(a) = r.producer_authority;
                assert_eq!((a.threshold, a.keys[0].key), (1, new_key));
            }
            other => panic!("{other:?}"),
        }
    }
}
