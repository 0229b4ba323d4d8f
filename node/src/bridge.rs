//! The keosd wallet API for unmodified nodeos and cleos, forwarding to the signer.
//!
//! Guards: the bridge holds no key and decides nothing. Every signature comes from the signer,
//! which applies its watermark and policy; every refusal goes back to nodeos in keosd's error
//! shape, and so does an answer without a signature (never a 201 with an empty one). A signer
//! replica that stops answering (no answer within the attempt timeout, or a transport failure)
//! costs only its own connection: it is dropped, reconnected in the background, and the identical
//! request goes to the next replica ([`crate::failover`]). It listens only on a
//! unix socket created mode 0600 (inside a private directory, then renamed into place, so there
//! is no moment when another user could connect; one bridge per socket, by a lock) and,
//! optionally, on loopback TCP (unauthenticated: any local user can reach it).
//!
//! - [`wallet`]: the request and response shapes (pure);
//! - [`client`]: a keosd client that speaks exactly as nodeos (bench and tests);
//! - [`http`]: HTTP/1.1 with keep-alive on the unix socket and TCP listeners.

pub mod client;
pub mod http;
pub mod token;
pub mod wallet;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use oryx_proto::antelope::{Checksum256, PublicKey};
use oryx_proto::client::reason;
use oryx_proto::grpc;
use oryx_proto::grpc::signer_client::SignerClient;
use serde_json::Value;
use tonic::transport::Channel;

use crate::failover::{Answer, CallError, Signers};
use crate::latency::Latency;
use wallet::{Call, WalletError};

/// How long one request may take over every replica before the bridge gives up on it. nodeos
/// gives up much sooner; this only bounds what stuck signers can hold.
pub const UPSTREAM_DEADLINE: Duration = Duration::from_secs(10);

/// How long the key list from the signer is reused.
const KEYS_TTL: Duration = Duration::from_secs(5);

/// An answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// 201 on success (as keosd), 500 or 404 otherwise.
    pub status: u16,
    /// JSON text.
    pub body: String,
}

impl From<WalletError> for Reply {
    fn from(e: WalletError) -> Self {
        Reply {
            status: e.status,
            body: e.body(),
        }
    }
}

/// Counters shown on `/metrics`.
#[derive(Default)]
pub struct Counters {
    /// Signatures returned.
    pub signed: AtomicU64,
    /// Refusals from the signer.
    pub refused: AtomicU64,
    /// Requests that failed because the signer was unreachable.
    pub unreachable: AtomicU64,
    /// Malformed requests (never forwarded).
    pub malformed: AtomicU64,
}

/// The bridge: one per process.
pub struct Bridge {
    signers: Signers,
    chain: Checksum256,
    /// nodeos's `keosd-provider-timeout`.
    pub timeout: Duration,
    /// End-to-end latency of `sign_digest` (request read → answer ready).
    pub latency: Latency,
    /// Outcome counters.
    pub counters: Counters,
    keys: RwLock<Option<(Instant, Vec<grpc::KeyInfo>)>>,
}

impl Bridge {
    /// A bridge for `chain` over the signer replicas `signers`.
    pub fn new(signers: Signers, chain: Checksum256, timeout: Duration) -> Arc<Bridge> {
        Arc::new(Bridge {
            signers,
            chain,
            timeout,
            latency: Latency::default(),
            counters: Counters::default(),
            keys: RwLock::new(None),
        })
    }

    /// The chain nodeos runs.
    pub fn chain(&self) -> Checksum256 {
        self.chain
    }

    /// The signer replicas.
    pub fn signers(&self) -> &Signers {
        &self.signers
    }

    /// Answers one request.
    pub async fn handle(&self, path: &str, body: &[u8]) -> Reply {
        let call = match wallet::parse(path, body) {
            Ok(c) => c,
            Err(e) => {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(path, "refused a malformed request: {}", e.detail);
                return e.into();
            }
        };
        let out = match call {
            Call::SignDigest { digest, key } => {
                let t0 = Instant::now();
                let out = self.sign_digest(digest, &key).await;
                self.latency.record(t0.elapsed());
                out
            }
            Call::GetPublicKeys => self.public_keys().await.map(|keys| Reply {
                status: 201,
                body: Value::from(keys).to_string(),
            }),
            Call::ListWallets => Ok(Reply {
                status: 201,
                body: Value::from(vec![wallet::WALLET_NAME]).to_string(),
            }),
            Call::SignTransaction {
                transaction,
                keys,
                chain_id,
            } => self.sign_transaction(&transaction, &keys, chain_id).await,
        };
        out.unwrap_or_else(Reply::from)
    }

    /// Asks the signer replicas (failing over between them): the answer, or a keosd error.
    async fn ask<T, F, Fut>(&self, method: &str, what: &str, f: F) -> Result<Answer<T>, WalletError>
    where
        F: Fn(SignerClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match self.signers.call(UPSTREAM_DEADLINE, f).await {
            Ok(a) => Ok(a),
            Err(CallError::Unavailable(why)) => {
                self.counters.unreachable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{what}: {why}");
                Err(WalletError::unavailable(
                    format!("no signer replica answered: {why}"),
                    method,
                ))
            }
            Err(CallError::Refused(status)) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                let r = reason(&status);
                // Where the signer recorded the refusal, so an operator reading nodeos's log
                // can find the audit entry.
                let message = match oryx_proto::client::audit_position(&status) {
                    Some((seq, hash)) => {
                        format!("{} (signer audit {seq}:{hash})", status.message())
                    }
                    None => status.message().to_string(),
                };
                tracing::warn!(
                    reason = r.as_deref().unwrap_or("?"),
                    "{what} refused: {message}"
                );
                Err(WalletError::refused(r.as_deref(), &message, method))
            }
        }
    }

    async fn sign_digest(
        &self,
        digest: Checksum256,
        key: &PublicKey,
    ) -> Result<Reply, WalletError> {
        const M: &str = "sign_digest";
        let req = grpc::SignDigestRequest {
            chain_id: self.chain.0.to_vec(),
            public_key: key.to_string(),
            digest: digest.0.to_vec(),
        };
        let what = format!("sign_digest {digest} with {key}");
        let answer = self
            .ask(M, &what, |mut c| {
                let req = req.clone();
                async move { c.sign_digest(req).await }
            })
            .await?;
        let resp = answer.value;
        let sig = signature_text(resp.signature, &what, M)?;
        self.counters.signed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            block_num = resp.block_num,
            replayed = resp.replayed,
            replica = %answer.replica,
            failovers = answer.failovers,
            "signed digest {digest} with {key}"
        );
        Ok(Reply {
            status: 201,
            body: wallet::json_string(&sig),
        })
    }

    /// The signer's keys for this chain, K1 in keosd's legacy `EOS…` form.
    async fn public_keys(&self) -> Result<Vec<String>, WalletError> {
        Ok(self
            .key_infos()
            .await?
            .iter()
            .map(|k| {
                if k.legacy_public_key.is_empty() {
                    k.public_key.clone()
                } else {
                    k.legacy_public_key.clone()
                }
            })
            .collect())
    }

    async fn key_infos(&self) -> Result<Vec<grpc::KeyInfo>, WalletError> {
        const M: &str = "get_public_keys";
        if let Some((at, keys)) = &*self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            && at.elapsed() < KEYS_TTL
        {
            return Ok(keys.clone());
        }
        let all = self
            .ask(M, "list keys", |mut c| async move {
                c.list_keys(grpc::ListKeysRequest {}).await
            })
            .await?
            .value
            .keys;
        let keys: Vec<grpc::KeyInfo> = all
            .into_iter()
            .filter(|k| k.chain_ids.iter().any(|c| c[..] == self.chain.0[..]))
            .collect();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), keys.clone()));
        Ok(keys)
    }

    async fn sign_transaction(
        &self,
        trx: &serde_json::Map<String, Value>,
        keys: &[PublicKey],
        chain_id: Checksum256,
    ) -> Result<Reply, WalletError> {
        use grpc::sign_transaction_request::Transaction as T;
        const M: &str = "sign_transaction";
        let split = wallet::split_transaction(trx)?;
        let mut new = Vec::with_capacity(keys.len());
        for key in keys {
            let req = grpc::SignTransactionRequest {
                chain_id: chain_id.0.to_vec(),
                public_key: key.to_string(),
                transaction: Some(T::Json(split.json.clone())),
                context_free_data: split.context_free_data.clone(),
                msig_proposals: vec![],
            };
            let what = format!("sign_transaction with {key}");
            let resp = self
                .ask(M, &what, |mut c| {
                    let req = req.clone();
                    async move { c.sign_transaction(req).await }
                })
                .await?
                .value;
            let sig = signature_text(resp.signature, &what, M)?;
            let id = hex::encode(&resp.transaction_id);
            tracing::info!(transaction = %id, "signed transaction with {key}");
            new.push(sig);
        }
        self.counters
            .signed
            .fetch_add(new.len() as u64, Ordering::Relaxed);
        Ok(Reply {
            status: 201,
            body: wallet::signed_transaction(trx, split.signatures, new).to_string(),
        })
    }

    /// `/metrics` text.
    fn metrics_text(&self) -> String {
        let mut out = String::new();
        self.latency.render(
            "oryx_node_bridge_sign_digest_seconds",
            "sign_digest latency through the bridge (request read to answer ready)",
            &mut out,
        );
        let c = &self.counters;
        for (name, v) in [
            ("signed", &c.signed),
            ("refused", &c.refused),
            ("unreachable", &c.unreachable),
            ("malformed", &c.malformed),
        ] {
            out.push_str(&format!(
                "oryx_node_bridge_requests_total{{outcome=\"{name}\"}} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        let p99 = self.latency.recent().map_or(0.0, |q| q.p99.as_secs_f64());
        out.push_str(&format!(
            "# HELP oryx_node_bridge_p99_seconds p99 of the last {} sign_digest requests\n\
             oryx_node_bridge_p99_seconds {p99}\n\
             # HELP oryx_node_bridge_nodeos_timeout_seconds nodeos's keosd-provider-timeout as configured\n\
             oryx_node_bridge_nodeos_timeout_seconds {}\n\
                          # HELP oryx_node_bridge_over_timeout 1 when p99 is above nodeos's timeout: nodeos will miss blocks\n\
             oryx_node_bridge_over_timeout {}\n",
            crate::latency::WINDOW,
            self.timeout.as_secs_f64(),
            u8::from(p99 > self.timeout.as_secs_f64()),
        ));
        self.signers.render_metrics(&mut out);
        out
    }
}

/// The signature's text, or a keosd error when the signer's answer has none (nodeos must never
/// get an empty signature back as a success).
fn signature_text(
    sig: Option<grpc::Signature>,
    what: &str,
    method: &str,
) -> Result<String, WalletError> {
    match sig {
        Some(s) if !s.text.is_empty() => Ok(s.text),
        _ => {
            tracing::error!("{what}: the signer's answer has no signature");
            Err(WalletError::no_signature(what, method))
        }
    }
}

impl crate::observe::Observed for Bridge {
    fn render_metrics(&self) -> String {
        self.metrics_text()
    }

    fn health(&self) -> Result<(), crate::NodeError> {
        self.signers.health()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_answer_without_a_signature_is_a_wallet_error() {
        for sig in [
            None,
            Some(grpc::Signature {
                compact: vec![],
                text: String::new(),
            }),
        ] {
            let e = signature_text(sig, "sign_digest x", "sign_digest").unwrap_err();
            assert_eq!((e.status, e.code), (500, wallet::WALLET_EXCEPTION));
            assert!(e.detail.contains("no signature"), "{e:?}");
            let r = Reply::from(e);
            assert_ne!(r.status, 201);
        }
        let ok = grpc::Signature {
            compact: vec![1],
            text: "SIG_K1_x".into(),
        };
        assert_eq!(signature_text(Some(ok), "w", "m").unwrap(), "SIG_K1_x");
    }
}
