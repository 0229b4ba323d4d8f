//! `oryx approve`: sign a request's binding digest with the approver's own key.
//!
//! Online: `oryx approve ID --key-file FILE` fetches the request, recomputes the transaction's
//! signing digest and the binding digest itself (refusing if the signer's differ), signs and
//! submits. Offline: `oryx approve --offline --request REQ.json --key-file FILE --out A.json`
//! does the same from a request file carried across the air gap (`oryx approvals show --json`)
//! and writes the approval for `oryx approvals submit`. Either way, an `eosio.msig::approve` is
//! signed off only if every proposed transaction in the request hashes to its approve's
//! `proposal_hash` (see [`super::approvals::check`]): the approval then covers the proposal.
//! The approver's key is a key file, or a key on a PKCS#11 token (`--pkcs11-module …
//! --key-label …`) that never leaves it.
//!
//! Guards (never a blind approval): what is approved is decoded from the request's own bytes
//! and shown (stderr) before anything is signed; a request file whose readable `transaction`
//! (or a proposal's) disagrees with its bytes is refused, as are a key outside the request's
//! approver set, an expired or closed request, and a repeated approval (said, not signed
//! again). Without `--yes` the approver confirms on a terminal; without one, `--yes` is
//! required.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::grpc;
use serde_json::{Value, json};

use crate::backend::KeyBackend;
use crate::backend::soft::SoftKey;
use crate::cli::remote::SignerArgs;
use crate::cli::sign_digest::read_key_file;
use crate::cli::{CliError, read_input};
use crate::signing::{SignOptions, sign};

/// Arguments.
#[derive(Debug, Args)]
pub struct Approve {
    /// The request id (online).
    id: Option<String>,
    /// The approver's private key file.
    #[arg(
        long,
        conflicts_with = "pkcs11_module",
        required_unless_present = "pkcs11_module"
    )]
    key_file: Option<PathBuf>,
    /// Or the approver's key on a PKCS#11 token: the module…
    #[arg(long, requires_all = ["token_label", "pin_file", "key_label"])]
    pkcs11_module: Option<PathBuf>,
    /// …the token's label…
    #[arg(long)]
    token_label: Option<String>,
    /// …a file with the user PIN…
    #[arg(long)]
    pin_file: Option<PathBuf>,
    /// …and the key's label on the token.
    #[arg(long)]
    key_label: Option<String>,
    /// Work from a request file instead of the signer.
    #[arg(long, requires = "request", requires = "out")]
    offline: bool,
    /// The request file (offline).
    #[arg(long)]
    request: Option<PathBuf>,
    /// Where to write the approval (offline).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Approve without asking (scripts): the decoded transaction is still printed first.
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    signer: Option<SignerArgs>,
}

impl Approve {
    /// The approver's key: a key file, or a key on a PKCS#11 token (never leaving it).
    fn approver_key(&self) -> Result<std::sync::Arc<dyn KeyBackend>, CliError> {
        if let Some(path) = &self.key_file {
            return Ok(std::sync::Arc::new(SoftKey::new(read_key_file(path)?)));
        }
        self.token_key()
    }

    #[cfg(feature = "pkcs11")]
    fn token_key(&self) -> Result<std::sync::Arc<dyn KeyBackend>, CliError> {
        use crate::backend::KeyProvider as _;
        use crate::backend::pkcs11::{Pkcs11Config, Pkcs11Provider};
        let (Some(module), Some(token_label), Some(pin_file), Some(key_label)) = (
            &self.pkcs11_module,
            &self.token_label,
            &self.pin_file,
            &self.key_label,
        ) else {
            return Err(CliError::Other("give --key-file, or --pkcs11-module with --token-label, --pin-file and --key-label".into()));
        };
        let config = Pkcs11Config {
            module: module.clone(),
            token_label: token_label.clone(),
            pin_file: pin_file.clone(),
            sessions: 1,
            parallel_k1_attempts: false,
        };
        let provider = Pkcs11Provider::open(&config).map_err(|e| CliError::Other(e.to_string()))?;
        let info = provider
            .list()
            .map_err(|e| CliError::Other(e.to_string()))?
            .into_iter()
            .find(|k| k.label == *key_label)
            .ok_or_else(|| {
                let why = provider
                    .skipped()
                    .unwrap_or_default()
                    .into_iter()
                    .find(|(l, _)| l == key_label)
                    .map_or_else(String::new, |(_, why)| {
                        format!(": a key with that label is there, but {why}")
                    });
                CliError::Other(format!(
                    "no usable key labelled {key_label:?} on token {token_label:?}{why}"
                ))
            })?;
        provider
            .open(&info.public_key)
            .map_err(|e| CliError::Other(e.to_string()))
    }

    #[cfg(not(feature = "pkcs11"))]
    fn token_key(&self) -> Result<std::sync::Arc<dyn KeyBackend>, CliError> {
        Err(CliError::Other(
            "this build has no PKCS#11 support (cargo feature pkcs11)".into(),
        ))
    }

    /// Checks and shows what `approver` is about to approve, and asks: see the module docs.
    /// `file` is the offline request file, whose readable parts must match its bytes.
    fn review(
        &self,
        req: &grpc::ApprovalRequest,
        file: Option<&Value>,
        approver: &oryx_proto::antelope::PublicKey,
    ) -> Result<super::approvals::Checked, CliError> {
        let refuse = |why: String| {
            Err(CliError::Other(format!(
                "request {}: {why}: not approved",
                req.id
            )))
        };
        let checked = super::approvals::check(req)?;
        let shown = super::approvals::to_json(req)?;
        if let Some(v) = file {
            if let Some(t) = v.get("transaction")
                && *t != shown["transaction"]
            {
                return refuse("its readable `transaction` does not match its packed_trx (the bytes the signer signs)".into());
            }
            let proposals = v.get("msig_proposals").and_then(Value::as_array);
            for (k, p) in proposals.into_iter().flatten().enumerate() {
                if let Some(t) = p.get("transaction")
                    && *t != shown["msig_proposals"][k]["transaction"]
                {
                    return refuse(format!(
                        "msig_proposals[{k}]: its readable `transaction` does not match its packed_trx"
                    ));
                }
            }
        }
        if !req.approvers.is_empty() && !req.approvers.contains(&approver.to_string()) {
            return refuse(format!(
                "{approver} is not in its approver set {:?} ({})",
                req.set,
                req.approvers.join(", ")
            ));
        }
        if !req.state.is_empty() && req.state != "pending" {
            return refuse(format!("it is {}", req.state));
        }
        let now = crate::clock::now_secs().0;
        if req.expires != 0 && req.expires <= now {
            return refuse(format!(
                "it expired at {}",
                oryx_proto::antelope::TimePointSec(req.expires)
            ));
        }
        // The transaction's own expiration, from its bytes (a request file's `expires` is only
        // a readable copy, and can be edited).
        let expiration =
            oryx_proto::antelope::transaction::Transaction::decode(&req.packed_trx)?.expiration;
        if expiration.0 <= now {
            return refuse(format!("its transaction expired at {expiration}"));
        }
        let summary = json!({
            "approving": req.id, "as": approver.to_string(), "key": req.public_key,
            "chain_id": shown["chain_id"], "expires": shown["expires"],
            "transaction": shown["transaction"], "msig_proposals": shown["msig_proposals"],
        });
        eprintln!("{summary:#}");
        if !self.yes {
            use std::io::IsTerminal as _;
            if !std::io::stdin().is_terminal() {
                return refuse(
                    "no terminal to confirm on: review the transaction above and pass --yes".into(),
                );
            }
            eprint!("Approve this transaction with {approver}? Type yes: ");
            let mut answer = String::new();
            std::io::stdin()
                .read_line(&mut answer)
                .map_err(|e| CliError::Other(format!("reading the answer: {e}")))?;
            if answer.trim() != "yes" {
                return refuse("not confirmed".into());
            }
        }
        Ok(checked)
    }

    /// Runs the command.
    pub fn run(&self) -> Result<Value, CliError> {
        let key = self.approver_key()?;
        if self.offline {
            let (Some(req_path), Some(out)) = (&self.request, &self.out) else {
                return Err(CliError::Other(
                    "--offline needs --request and --out".into(),
                ));
            };
            // Never over an existing file (the request itself, an earlier approval).
            if out.exists() {
                return Err(CliError::Other(format!(
                    "--out {} exists: choose a new file (nothing was signed)",
                    out.display()
                )));
            }
            let v: Value = serde_json::from_str(&read_input(req_path)?)
                .map_err(|e| CliError::Other(format!("{}: {e}", req_path.display())))?;
            let req = super::approvals::from_json(&v)?;
            let checked = self.review(&req, Some(&v), key.public_key())?;
            let signature = sign(
                key.as_ref(),
                &checked.binding_digest,
                SignOptions::default(),
            )
            .map_err(|e| CliError::Other(e.to_string()))?
            .signature;
            let approval = json!({"id": req.id, "signature": signature.to_string(), "binding_digest": checked.binding_digest.to_string()});
            {
                use std::io::Write as _;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(out)
                    .and_then(|mut f| f.write_all(format!("{approval:#}\n").as_bytes()))
                    .map_err(|e| CliError::io(out, e))?;
            }
            return Ok(approval);
        }
        let (Some(id), Some(signer)) = (&self.id, &self.signer) else {
            return Err(CliError::Other(
                "give the request id and the signer connection, or --offline".into(),
            ));
        };
        let id_for_get = id.clone();
        let req = signer.call(async move |c| {
            c.get_approval(grpc::GetApprovalRequest { id: id_for_get })
                .await
                .map(|r| r.into_inner())
        })?;
        let mine = key.public_key().to_string();
        if req.approved_by.contains(&mine) {
            return Ok(json!({"id": req.id, "state": req.state,
                "approvals": format!("{} of {}", req.approved_by.len(), req.threshold),
                "note": format!("{mine} approved this request already: nothing signed again")}));
        }
        let checked = self.review(&req, None, key.public_key())?;
        let signature = sign(
            key.as_ref(),
            &checked.binding_digest,
            SignOptions::default(),
        )
        .map_err(|e| CliError::Other(e.to_string()))?
        .signature;
        let id = id.clone();
        let sig_text = signature.to_string();
        let r = signer.call(async move |c| {
            c.approve(grpc::ApproveRequest {
                id,
                signature: sig_text,
            })
            .await
            .map(|r| r.into_inner())
        })?;
        Ok(
            json!({"id": r.id, "state": r.state, "approvals": format!("{} of {}", r.approved_by.len(), r.threshold), "signature": r.signature.map(|s| s.text)}),
        )
    }
}
