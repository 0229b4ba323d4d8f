//! `oryx ceremony rotate-auth start|resume`: `updateauth` of an account's owner or active
//! permission to a new key (given, or generated in the HSM) or a whole new authority.
//!
//! The carried `get_account` answer says what the permissions are now: the permission's parent,
//! the authority its authorizer has (the signing key must satisfy it alone), and which other
//! permissions of the account the team can satisfy. With the keys the signer holds (ListKeys,
//! plus `--held-key` for keys held elsewhere) that is the lock-out guard's input.
//!
//! Guards: unsorted or repeated keys, weights below the threshold, and an authority the team
//! could no longer satisfy are refused before anything is generated, written or signed; the
//! authority and the held set the guard used are recorded, and `verify` re-runs the guard.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};
use oryx_proto::antelope::actions::{Authority, HeldAuthority, UpdateAuth};
use oryx_proto::antelope::carried::{AccountPermissions, authority_from_json};
use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Checksum256, Name, PermissionLevel, PublicKey};
use oryx_proto::grpc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::other;
use super::session::Session;
use super::steps::{self, AuthorityChange, KeyGenerated, TxData};
use super::{
    TaposParams, TxArgs, describe, finish_signing, generate_key, key_type, list_keys,
    placeholder_key, public_keys, push_hint,
};
use crate::cli::remote::SignerArgs;
use crate::cli::{CliError, read_input};

/// The ceremony kind.
pub const KIND: &str = "rotate-auth";
/// The transaction's name (`updateauth.json`).
const TX: &str = "updateauth";

/// Authority rotation.
#[derive(Debug, Subcommand)]
pub enum RotateAuth {
    /// Start (or continue, with the same parameters) a rotation in a new directory.
    Start(Box<Start>),
    /// Continue from the last recorded step.
    Resume(super::Resume),
    /// End a rotation that will not finish: cancel its pending request and retire the key it
    /// generated (the authority on chain stays as it was).
    Abort(super::Abort),
}

impl RotateAuth {
    /// Runs the subcommand.
    pub fn run(&self) -> Result<Value, CliError> {
        match self {
            RotateAuth::Start(c) => c.run(),
            RotateAuth::Resume(c) => c.run_with(&[KIND], advance),
            RotateAuth::Abort(c) => abort(c),
        }
    }
}

/// The note an `abort` leaves; `resume` refuses a ceremony that has it.
const ABORTED: &str = "ceremony aborted";

fn is_aborted(s: &Session) -> bool {
    s.t.entries
        .iter()
        .any(|e| e.step == steps::NOTE && e.data["text"] == ABORTED)
}

/// `rotate-auth abort`.
fn abort(this: &super::Abort) -> Result<Value, CliError> {
    let signer = &this.signer;
    let mut s = Session::open(&this.dir, &[KIND])?;
    let generated = s
        .get::<KeyGenerated>(steps::KEY_GENERATED, None)?
        .map(|k| k.public_key);
    if !is_aborted(&s) {
        super::close_request(
            &mut s,
            signer,
            TX,
            this.force,
            &format!(
                "{TX} was signed: if it was pushed, the permission's authority on chain is the new \
                 one{}, and this abort would leave it to a retired key. Pass --force only if it \
                 was never pushed",
                generated.map_or(String::new(), |k| format!(" ({k})"))
            ),
        )?;
        let retired = s.get::<steps::Retired>(steps::RETIRED, None)?.is_some();
        if let (Some(k), false) = (generated, retired) {
            super::retire_generated(&mut s, signer, k)?;
        }
        s.record(steps::NOTE, &json!({ "text": ABORTED }))?;
    }
    let status = json!({
        "status": "aborted",
        "retired": generated.map(|k| k.to_string()),
        "next": [format!("keep the transcript: `oryx ceremony verify {}`", s.dir.join(super::session::TRANSCRIPT).display())],
    });
    let sealed = s.seal(signer)?;
    Ok(super::report(status, sealed))
}

/// Arguments of `start`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["new_key", "generate_label", "authority"])))]
pub struct Start {
    /// The ceremony directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// The account.
    #[arg(long)]
    pub account: Name,
    /// The permission to change (owner or active).
    #[arg(long)]
    pub permission: Name,
    /// The new authority is this key alone (threshold 1, weight 1).
    #[arg(long)]
    pub new_key: Option<PublicKey>,
    /// …or a key generated in the HSM under this label (with --backend, --chain).
    #[arg(long, requires = "backend")]
    pub generate_label: Option<String>,
    /// The backend to generate in.
    #[arg(long)]
    pub backend: Option<String>,
    /// K1 or R1 (generated key).
    #[arg(long, default_value = "K1")]
    pub key_type: String,
    /// A chain name of the signer's config the generated key may sign for (repeatable).
    #[arg(long = "chain")]
    pub chains: Vec<String>,
    /// …or an authority from a JSON file: threshold, keys, accounts, waits (sorted as the
    /// chain requires).
    #[arg(long)]
    pub authority: Option<PathBuf>,
    /// The carried answer of /v1/chain/get_account for the account.
    #[arg(long)]
    pub current: PathBuf,
    /// The key the signer signs updateauth with (it must satisfy the authorizer alone).
    #[arg(long)]
    pub signing_key: PublicKey,
    /// The permission of the account that authorizes the change: the permission itself, its
    /// parent or owner. Default: the parent (owner for owner).
    #[arg(long)]
    pub authorizer: Option<Name>,
    /// A key the team holds outside this signer, counted by the lock-out guard (repeatable).
    #[arg(long = "held-key")]
    pub held_keys: Vec<PublicKey>,
    /// Another account's permission the team can satisfy, counted by the lock-out guard
    /// (repeatable, ACTOR@PERMISSION).
    #[arg(long = "held-account")]
    pub held_accounts: Vec<PermissionLevel>,
    #[command(flatten)]
    pub(crate) tx: TxArgs,
    /// Check everything and print the transaction that would be signed; generate, sign and
    /// write nothing (ListKeys is still asked, for the lock-out guard).
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
}

/// The new authority, as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Target {
    /// One key.
    NewKey { key: PublicKey },
    /// One key generated in the HSM.
    Generate {
        backend: String,
        label: String,
        key_type: String,
        chains: Vec<String>,
    },
    /// A whole authority.
    Authority { authority: Authority },
}

/// What `start` records as the ceremony's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    chain_id: Checksum256,
    account: Name,
    permission: Name,
    parent: Name,
    authorizer: PermissionLevel,
    signing_key: PublicKey,
    target: Target,
    current: Authority,
    /// Every permission of the account (name, parent, authority) from get_account.
    permissions: Vec<(Name, Name, Authority)>,
    held_keys: Vec<PublicKey>,
    held_accounts: Vec<PermissionLevel>,
    tapos: TaposParams,
}

impl Params {
    /// The lock-out guard's input: `signer_keys` (ListKeys) and the extra held keys; the
    /// account's other permissions that those keys satisfy alone; the extra held accounts.
    fn held(&self, signer_keys: &[PublicKey]) -> HeldAuthority {
        let mut keys: Vec<PublicKey> = signer_keys.to_vec();
        for k in &self.held_keys {
            if !keys.contains(k) {
                keys.push(*k);
            }
        }
        let by_keys = HeldAuthority {
            keys: keys.clone(),
            accounts: vec![],
        };
        let mut accounts: Vec<PermissionLevel> = self
            .permissions
            .iter()
            .filter(|(name, _, auth)| *name != self.permission && auth.satisfiable_by(&by_keys))
            .map(|(name, _, _)| PermissionLevel::new(self.account, *name))
            .collect();
        for a in &self.held_accounts {
            if !accounts.contains(a) {
                accounts.push(*a);
            }
        }
        HeldAuthority { keys, accounts }
    }

    fn update(&self, auth: Authority) -> UpdateAuth {
        UpdateAuth {
            account: self.account,
            permission: self.permission,
            parent: self.parent,
            auth,
            authorized_by: None,
        }
    }

    /// The checked updateauth transaction (validation and lock-out guard included).
    fn transaction(&self, auth: &Authority, held: &HeldAuthority) -> Result<Transaction, CliError> {
        let action = self.update(auth.clone()).to_action(self.authorizer, held)?;
        self.tapos.transaction(vec![action])
    }
}

impl Start {
    fn params(&self) -> Result<Params, CliError> {
        let (chain_id, tapos) = self.tx.resolve()?;
        let text = read_input(&self.current)?;
        let acct = AccountPermissions::from_get_account(&text)?;
        let name = self.current.display();
        if acct.account != self.account {
            return Err(other(format!(
                "{name} is the get_account answer of {}, not --account {}",
                acct.account, self.account
            )));
        }
        let listed = || {
            acct.permissions
                .iter()
                .map(|p| p.name.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let perm = acct.get(self.permission).ok_or_else(|| {
            other(format!(
                "{name}: {} has no permission {} (it has {}); rotate-auth changes existing \
                 permissions",
                self.account,
                self.permission,
                listed()
            ))
        })?;
        let authorizer_name = self.authorizer.unwrap_or(if perm.parent == Name(0) {
            perm.name
        } else {
            perm.parent
        });
        let authorizer_perm = acct.get(authorizer_name).ok_or_else(|| {
            other(format!(
                "{name}: {} has no permission {authorizer_name} to authorize with (it has {})",
                self.account,
                listed()
            ))
        })?;
        let weight = authorizer_perm.auth.held_weight(&HeldAuthority {
            keys: vec![self.signing_key],
            accounts: vec![],
        });
        if weight < u64::from(authorizer_perm.auth.threshold) {
            return Err(other(format!(
                "--signing-key {} carries weight {weight} in {}@{authorizer_name}, whose \
                 threshold is {}: one signature by it cannot authorize the change; sign with a \
                 key of {authorizer_name} that meets the threshold alone",
                self.signing_key, self.account, authorizer_perm.auth.threshold
            )));
        }
        let target = match (&self.new_key, &self.generate_label, &self.authority) {
            (Some(key), None, None) => Target::NewKey { key: *key },
            (None, Some(label), None) => {
                if self.chains.is_empty() {
                    return Err(other(
                        "--generate-label needs --chain NAME (the signer's chain names the new \
                         key may sign for)",
                    ));
                }
                Target::Generate {
                    backend: self.backend.clone().unwrap_or_default(),
                    label: label.clone(),
                    key_type: key_type(&self.key_type)?.to_string(),
                    chains: self.chains.clone(),
                }
            }
            (None, None, Some(path)) => {
                let v: Value = serde_json::from_str(&read_input(path)?)
                    .map_err(|e| other(format!("{}: {e}", path.display())))?;
                let authority = authority_from_json(&v)
                    .map_err(|e| other(format!("{}: {e}", path.display())))?;
                Target::Authority { authority }
            }
            _ => {
                return Err(other(
                    "give exactly one of --new-key, --generate-label or --authority",
                ));
            }
        };
        Ok(Params {
            chain_id,
            account: self.account,
            permission: self.permission,
            parent: perm.parent,
            authorizer: PermissionLevel::new(self.account, authorizer_name),
            signing_key: self.signing_key,
            target,
            current: perm.auth.clone(),
            permissions: acct
                .permissions
                .iter()
                .map(|p| (p.name, p.parent, p.auth.clone()))
                .collect(),
            held_keys: self.held_keys.clone(),
            held_accounts: self.held_accounts.clone(),
            tapos,
        })
    }

    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let p = self.params()?;
        let signer = &self.signer;
        let transcript = super::transcript_key(signer)?;
        let infos = list_keys(signer)?;
        let signer_keys = usable(public_keys(&infos)?, &transcript);
        if !signer_keys.contains(&p.signing_key) {
            return Err(other(format!(
                "the signer does not hold --signing-key {}",
                p.signing_key
            )));
        }
        // Everything that can be checked before a key exists is checked now, before anything
        // is generated or written.
        let (auth, placeholder) = match &p.target {
            Target::NewKey { key } => (Authority::single_key(*key), None),
            Target::Authority { authority } => (authority.clone(), None),
            Target::Generate {
                backend,
                label,
                key_type: kt,
                ..
            } => {
                let existing = infos
                    .iter()
                    .find(|k| &k.label == label && &k.backend == backend)
                    .map(|k| PublicKey::parse(&k.public_key))
                    .transpose()?;
                match existing {
                    Some(k) => (Authority::single_key(k), None),
                    None => {
                        let k = placeholder_key(key_type(kt)?)?;
                        (Authority::single_key(k), Some(k))
                    }
                }
            }
        };
        let mut held = p.held(&signer_keys);
        if let Some(k) = placeholder {
            // The generated key will be in the HSM.
            held.keys.push(k);
        }
        let trx = p.transaction(&auth, &held)?;
        // The policy must let the signing key sign this updateauth (a new owner key the policy
        // does not know yet is refused here, before a key is generated).
        let approvals =
            super::check_transaction(signer, TX, &p.chain_id, &p.signing_key, &trx, placeholder)?;
        if self.dry_run {
            return Ok(json!({
                "status": "dry-run: nothing was generated, signed or written",
                "new_key": placeholder.map(|k| format!("{k} (PLACEHOLDER: start generates the real key)")),
                "current": p.current,
                "new": auth,
                "held": held,
                                "would_sign": [{"transaction": TX, "signing_key": p.signing_key.to_string(), "needs_approvals": approvals, "decoded": describe(&trx, &p.chain_id)}],
            }));
        }
        super::start(&self.dir, KIND, &p, signer, advance)
    }
}

/// The signer's keys the lock-out guard may count: not the transcript key, which signs only
/// transcripts and can never satisfy a permission.
fn usable(mut keys: Vec<PublicKey>, transcript: &PublicKey) -> Vec<PublicKey> {
    keys.retain(|k| k != transcript);
    keys
}

fn advance(
    s: &mut Session,
    signer: &SignerArgs,
    p: &Params,
    approvals: &[PathBuf],
) -> Result<Value, CliError> {
    if is_aborted(s) {
        return Err(other(
            "this rotation was aborted: start a new one in another directory",
        ));
    }
    let change = match s.get::<AuthorityChange>(steps::AUTHORITY, None)? {
        Some(c) => c,
        None => {
            let new = match &p.target {
                Target::NewKey { key } => Authority::single_key(*key),
                Target::Authority { authority } => authority.clone(),
                Target::Generate {
                    backend,
                    label,
                    key_type,
                    chains,
                } => {
                    let k = match s.get::<KeyGenerated>(steps::KEY_GENERATED, None)? {
                        Some(k) => k,
                        None => {
                            let k = generate_key(
                                signer,
                                grpc::GenerateKeyRequest {
                                    backend: backend.clone(),
                                    label: label.clone(),
                                    key_type: key_type.clone(),
                                    successor_of: String::new(),
                                    chains: chains.clone(),
                                    blind_digest: false,
                                },
                            )?;
                            s.record(steps::KEY_GENERATED, &k)?;
                            k
                        }
                    };
                    Authority::single_key(k.public_key)
                }
            };
            let transcript = super::transcript_key(signer)?;
            let signer_keys = usable(public_keys(&list_keys(signer)?)?, &transcript);
            let held = p.held(&signer_keys);
            // Checked again with what the signer holds now, before it is recorded.
            p.transaction(&new, &held)?;
            let c = AuthorityChange {
                account: p.account,
                permission: p.permission,
                parent: p.parent,
                authorizer: p.authorizer,
                current: p.current.clone(),
                new,
                held,
            };
            s.record(steps::AUTHORITY, &c)?;
            c
        }
    };
    let trx = p.transaction(&change.new, &change.held)?;
    s.record_tx(TxData::new(TX, p.chain_id, p.signing_key, &trx, vec![]))?;
    let state = s.sign(signer, TX, approvals)?;
    let file = s.dir.join(format!("{TX}.json")).display().to_string();
    let next = vec![
        push_hint(&file),
        "then carry get_account back and check the permission shows the new authority".into(),
    ];
    let mut out = finish_signing(s, signer, TX, state, next)?;
    out["new_authority"] = json!(change.new);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oryx_proto::antelope::KeyType;
    use oryx_proto::antelope::actions::KeyWeight;

    fn n(s: &str) -> Name {
        Name::new(s).expect("name")
    }

    fn key(i: u8) -> PublicKey {
        let secret = Checksum256::hash(&[i]).0;
        oryx_proto::antelope::PrivateKey::from_bytes(KeyType::K1, secret)
            .expect("key")
            .public_key()
    }

    fn params(owner: Authority, active: Authority, target: Target) -> Params {
        Params {
            chain_id: Checksum256([7; 32]),
            account: n("oryxproducer"),
            permission: n("owner"),
            parent: Name(0),
            authorizer: PermissionLevel::new(n("oryxproducer"), n("owner")),
            signing_key: key(1),
            target,
            current: owner.clone(),
            permissions: vec![
                (n("owner"), Name(0), owner),
                (n("active"), n("owner"), active),
            ],
            held_keys: vec![],
            held_accounts: vec![],
            tapos: TaposParams {
                block_id: Checksum256([1; 32]),
                block_num: 0x0101_0101,
                time: oryx_proto::antelope::TimePoint(1_900_000_000_000_000),
                expire_in: 600,
            },
        }
    }

    fn sorted(mut keys: Vec<(PublicKey, u16)>) -> Vec<KeyWeight> {
        keys.sort_by_key(|(k, _)| oryx_proto::antelope::Pack::packed(k));
        keys.into_iter()
            .map(|(key, weight)| KeyWeight { key, weight })
            .collect()
    }

    #[test]
    fn the_guard_counts_held_keys_and_the_accounts_they_satisfy() {
        let owner = Authority::single_key(key(1));
        let active = Authority::single_key(key(2));
        let p = params(owner, active, Target::NewKey { key: key(3) });
        // The signer holds key 2: active is satisfiable, so oryxproducer@active is held.
        let held = p.held(&[key(2)]);
        assert_eq!(held.accounts.len(), 1);
        let with_active = Authority {
            threshold: 2,
            keys: sorted(vec![(key(3), 1)]),
            accounts: vec![oryx_proto::antelope::actions::PermissionLevelWeight {
                permission: PermissionLevel::new(n("oryxproducer"), n("active")),
                weight: 1,
            }],
            waits: vec![],
        };
        let e = p
            .transaction(&with_active, &held)
            .expect_err("key 3 is not held: weight 1 of 2");
        assert!(e.to_string().contains("lock-out"), "{e}");
        let held = p.held(&[key(2), key(3)]);
        p.transaction(&with_active, &held).expect("both held");
    }

    #[test]
    fn unsorted_and_underweight_authorities_are_refused() {
        let p = params(
            Authority::single_key(key(1)),
            Authority::single_key(key(2)),
            Target::NewKey { key: key(3) },
        );
        let held = p.held(&[key(1), key(2), key(3), key(4)]);
        let mut keys = sorted(vec![(key(3), 1), (key(4), 1)]);
        keys.reverse();
        let unsorted = Authority {
            threshold: 1,
            keys,
            accounts: vec![],
            waits: vec![],
        };
        let e = p.transaction(&unsorted, &held).expect_err("unsorted");
        assert!(e.to_string().contains("out of order"), "{e}");
        let underweight = Authority {
            threshold: 3,
            keys: sorted(vec![(key(3), 1), (key(4), 1)]),
            accounts: vec![],
            waits: vec![],
        };
        let e = p.transaction(&underweight, &held).expect_err("weights");
        assert!(e.to_string().contains("below the threshold"), "{e}");
    }
}
