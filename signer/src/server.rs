//! The gRPC front of the signer, and its only file that speaks gRPC: mTLS, principal
//! extraction, request decoding into the services' domain values, response building, and the
//! mapping of refusals to gRPC statuses ([`to_status`], the one place that happens).
//!
//! Guards: there is no plaintext listener — a connection without a client certificate signed by
//! the operator CA fails the TLS handshake and never reaches the pipeline. The principal is the
//! client certificate's identity (first SAN DNS name or URI, else the subject CN). Each request
//! runs to its end inside one poll the server never cancels: if the client hangs up, reserve →
//! sign → commit → audit still completes. A signing request holds a runtime worker only when it
//! is the only one in flight, the watermarks are this process's own and another worker is left,
//! watched so that other clients wait for it at most ~5 ms ([`Inline`]); any other hands its
//! worker's tasks on first.

use std::sync::Arc;

use oryx_proto::antelope::transaction::{PackedTransaction, Transaction};
use oryx_proto::antelope::{Bytes, Checksum256, KeyType, PublicKey, Signature, Unpack};
use oryx_proto::grpc::signer_server::{Signer, SignerServer};
use oryx_proto::grpc::{self, REASON_METADATA};
use oryx_proto::stats::micros_u32;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

mod inline;
mod memo;
mod rejected;

use inline::Inline;

use crate::approvals::PendingRequest;
use crate::audit::AuditEntryRef;
use crate::config::RequestKind;
use crate::keyset::KeyEntry;
use crate::lifecycle::{GenerateKey, Lifecycle, RetireKey, SignTranscript};
use crate::metrics::ReadyCheck;
use crate::pipeline::{BlockRequest, Outcome, Pipeline};
use crate::pki::Revocations;
use crate::refusal::{Reason, Refused, refused};

/// Largest request the signer decodes (see [`grpc::MAX_MESSAGE_BYTES`]).
pub const MAX_REQUEST_BYTES: usize = grpc::MAX_MESSAGE_BYTES;

/// What the gRPC service needs besides the pipeline.
pub struct SignerService {
    pipeline: Arc<Pipeline>,
    /// Chains whose blind digests are Savanna block ids.
    savanna_chains: Vec<Checksum256>,
    lifecycle: Arc<Lifecycle>,
    ready: ReadyCheck,
    /// The last readiness answer and when it was taken: `Status` reuses a *ready* answer for
    /// [`READY_REUSE`], so a client polling `Status` does not run the disk and device probes on
    /// every call; a not-ready one is probed again each time, so recovery shows at once
    /// (`/readyz` always probes).
    last_ready: Arc<std::sync::Mutex<Option<LastReady>>>,
    /// The TLS settings in force (set by [`serve`]): every request's certificate is checked
    /// against their revocation list and its expiry, so a connection opened before a
    /// revocation or outliving its certificate is refused too.
    tls: Option<Arc<TlsState>>,
    /// Client certificates read before, by their exact DER bytes: one X.509 parse per
    /// certificate rather than per request.
    peers: Arc<PeerCache>,
    /// Public keys named in requests before, by their exact text.
    keys: Arc<KeyCache>,
    /// Which signing requests run on their worker without handing its tasks on.
    inline: Arc<Inline>,
}

/// [`Peer`]s by certificate bytes.
type PeerCache = memo::Memo<Vec<u8>, Arc<Peer>>;

/// Public keys by their text in requests (parsing one decompresses its point).
type KeyCache = memo::Memo<String, PublicKey>;

/// The longest key text [`KeyCache`] remembers (a K1 or R1 key's text is 53–57 characters).
const KEY_TEXT_MAX: usize = 64;

/// How many certificates [`PeerCache`], and how many key texts [`KeyCache`], remember.
const MEMO_LIMIT: usize = 1024;

impl std::fmt::Debug for SignerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerService")
            .field("keys", &self.pipeline.keys.active().len())
            .finish_non_exhaustive()
    }
}

impl SignerService {
    /// The request's decoded fields, or its MALFORMED refusal, audited first: the principal
    /// passed mTLS, so even an undecodable attempt is on record.
    async fn decoded<T>(
        &self,
        who: &str,
        kind: RequestKind,
        fields: Result<T, Status>,
    ) -> Result<T, Status> {
        match fields {
            Ok(t) => Ok(t),
            Err(status) => {
                let pipeline = self.pipeline.clone();
                let (who, message) = (who.to_string(), status.message().to_string());
                detached(move || pipeline.audit_undecodable(&who, kind, &message)).await?;
                Err(status)
            }
        }
    }

    /// Builds the service.
    pub fn new(
        pipeline: Arc<Pipeline>,
        savanna_chains: Vec<Checksum256>,
        lifecycle: Arc<Lifecycle>,
        ready: ReadyCheck,
    ) -> Self {
        SignerService {
            savanna_chains,
            lifecycle,
            ready,
            last_ready: Arc::default(),
            tls: None,
            peers: Arc::new(PeerCache::new(MEMO_LIMIT)),
            keys: Arc::new(KeyCache::new(MEMO_LIMIT)),
            inline: Arc::new(Inline::new(!pipeline.watermarks.shared())),
            pipeline,
        }
    }

    /// The principal the request's client certificate names, once the certificate is checked
    /// against the revocation list and expiry in force.
    fn principal<T>(&self, req: &Request<T>) -> Result<String, Status> {
        let certs = req
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let der: &[u8] = leaf.as_ref();
        let peer = self.peers.get_or_make(der, |der| {
            Peer::of(der).map(Arc::new).ok_or_else(|| {
                Status::unauthenticated("client certificate names no principal (SAN or CN)")
            })
        })?;
        // Revocation and expiry are checked on every request, cached or not.
        if let Some(tls) = &self.tls {
            tls.admit(&peer)?;
        }
        Ok(peer.principal.clone())
    }
}

/// The refusal as a gRPC status, with the machine-readable reason in metadata.
pub fn to_status(r: &Refused) -> Status {
    let code = match r.reason {
        Reason::DoubleSign
        | Reason::WrongChain
        | Reason::NeedsApprovals
        | Reason::KeyRetired
        | Reason::NotConfigured => tonic::Code::FailedPrecondition,
        Reason::PolicyDenied
        | Reason::BlindNotAllowed
        | Reason::ApprovalRejected
        | Reason::NotAdmin => tonic::Code::PermissionDenied,
        Reason::UnknownKey => tonic::Code::NotFound,
        Reason::Malformed => tonic::Code::InvalidArgument,
        Reason::Unavailable => tonic::Code::Unavailable,
        Reason::Internal => tonic::Code::Internal,
    };
    let mut status = Status::new(code, r.message.clone());
    if let Ok(v) = r.reason.as_str().parse() {
        status.metadata_mut().insert(REASON_METADATA, v);
    }
    if let Some(Ok(v)) = r.request_id.as_deref().map(str::parse) {
        status
            .metadata_mut()
            .insert(oryx_proto::grpc::REQUEST_ID_METADATA, v);
    }
    // The audit position goes only to principals that passed authorization: one that has no
    // rights, or sent something undecodable, should not learn how busy the signer is.
    let disclosed = !matches!(
        r.reason,
        Reason::PolicyDenied | Reason::NotAdmin | Reason::Malformed
    );
    if let Some(Ok(v)) = r
        .audit
        .as_ref()
        .filter(|_| disclosed)
        .map(|a| a.to_string().parse())
    {
        status
            .metadata_mut()
            .insert(oryx_proto::grpc::AUDIT_METADATA, v);
    }
    status
}

fn malformed(message: impl Into<String>) -> Status {
    to_status(&refused(Reason::Malformed, message))
}

/// The principal named by the client certificate: its one DNS or URI subject alternative name;
/// the subject CN only for a certificate without a SAN extension. A certificate with a SAN
/// extension that cannot be read, or with several names, names no principal.
pub fn principal_of(cert_der: &[u8]) -> Option<String> {
    Peer::of(cert_der).map(|p| p.principal)
}

/// What a request's client certificate says, read once per request.
#[derive(Debug)]
struct Peer {
    principal: String,
    serial: Vec<u8>,
    /// Unix seconds.
    not_after: i64,
}

impl Peer {
    fn of(cert_der: &[u8]) -> Option<Peer> {
        use x509_parser::prelude::*;
        let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
        Some(Peer {
            principal: cert_principal(&cert)?,
            serial: cert.raw_serial().to_vec(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

fn cert_principal(cert: &x509_parser::certificate::X509Certificate<'_>) -> Option<String> {
    use x509_parser::prelude::*;
    match cert.subject_alternative_name() {
        Ok(Some(san)) => {
            let mut names = san.value.general_names.iter().filter_map(|n| match n {
                GeneralName::DNSName(n) | GeneralName::URI(n) => Some((*n).to_string()),
                _ => None,
            });
            let first = names.next()?;
            names.next().is_none().then_some(first)
        }
        Ok(None) => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string),
        Err(_) => None,
    }
}

fn checksum(what: &str, b: &[u8]) -> Result<Checksum256, Status> {
    b.try_into()
        .map(Checksum256)
        .map_err(|_| malformed(format!("{what} must be 32 bytes, got {}", b.len())))
}

fn public_key(text: &str) -> Result<PublicKey, Status> {
    PublicKey::parse(text.trim()).map_err(|e| malformed(format!("public_key: {e}")))
}

impl SignerService {
    /// A signing request's public key ([`public_key`], remembered by its trimmed text; a text
    /// longer than any key's is parsed, and refused, without being remembered).
    fn request_key(&self, text: &str) -> Result<PublicKey, Status> {
        let text = text.trim();
        if text.len() > KEY_TEXT_MAX {
            return public_key(text);
        }
        self.keys.get_or_make(text, public_key)
    }
}

fn signature_msg(s: &Signature) -> grpc::Signature {
    grpc::Signature {
        compact: s.as_bytes().to_vec(),
        text: s.to_string(),
    }
}

/// An outcome's signature, with the text its audit record made.
fn outcome_signature(o: &Outcome) -> grpc::Signature {
    grpc::Signature {
        compact: o.signature.as_bytes().to_vec(),
        text: o.text.clone().unwrap_or_else(|| o.signature.to_string()),
    }
}

/// An optional key field: empty means none.
fn optional_key(field: &str, text: &str) -> Result<Option<PublicKey>, Refused> {
    match text.trim() {
        "" => Ok(None),
        s => PublicKey::parse(s)
            .map(Some)
            .map_err(|e| refused(Reason::Malformed, format!("{field}: {e}"))),
    }
}

fn generate_request(r: grpc::GenerateKeyRequest) -> Result<GenerateKey, Refused> {
    let key_type = match r.key_type.to_ascii_uppercase().as_str() {
        "K1" => KeyType::K1,
        "R1" => KeyType::R1,
        other => {
            return Err(refused(
                Reason::Malformed,
                format!("key_type: {other:?}; give K1 or R1"),
            ));
        }
    };
    Ok(GenerateKey {
        successor_of: optional_key("successor_of", &r.successor_of)?,
        backend: r.backend,
        label: r.label,
        key_type,
        chains: r.chains,
        blind_digest: r.blind_digest,
    })
}

fn retire_request(r: &grpc::RetireKeyRequest) -> Result<RetireKey, Refused> {
    let key = PublicKey::parse(r.public_key.trim())
        .map_err(|e| refused(Reason::Malformed, format!("public_key: {e}")))?;
    Ok(RetireKey {
        key,
        successor: optional_key("successor", &r.successor)?,
    })
}

fn transcript_request(r: grpc::SignTranscriptRequest) -> Result<SignTranscript, Refused> {
    let head = r.head.as_slice().try_into().map(Checksum256).map_err(|_| {
        refused(
            Reason::Malformed,
            format!("head must be 32 bytes, got {}", r.head.len()),
        )
    })?;
    Ok(SignTranscript {
        ceremony: r.ceremony,
        head,
    })
}

/// A SignTransactionRequest's transaction in any of its three shapes, with its context-free
/// data (public for the fuzzer).
pub fn transaction(
    t: Option<grpc::sign_transaction_request::Transaction>,
    context_free_data: Vec<Vec<u8>>,
) -> Result<(Transaction, Vec<Bytes>), String> {
    use grpc::sign_transaction_request::Transaction as T;
    let cfd: Vec<Bytes> = context_free_data.into_iter().map(Bytes).collect();
    match t {
        Some(T::PackedTrx(b)) => Transaction::decode(&b)
            .map(|t| (t, cfd))
            .map_err(|e| e.to_string()),
        Some(T::Json(j)) => serde_json::from_str::<Transaction>(&j)
            .map(|t| (t, cfd))
            .map_err(|e| format!("transaction JSON: {e}")),
        Some(T::PackedTransaction(b)) => PackedTransaction::unpack_exact(&b)
            .and_then(|p| Ok((p.transaction()?, p.context_free_data()?)))
            .map_err(|e| e.to_string()),
        None => Err("no transaction given".into()),
    }
}

/// A key as ListKeys and GenerateKey show it, with its recent signing times.
pub fn key_info(entry: &KeyEntry) -> grpc::KeyInfo {
    let mut info = grpc::KeyInfo {
        public_key: entry.text().to_owned(),
        legacy_public_key: entry.legacy_text().to_owned(),
        label: entry.label.clone(),
        backend: entry.backend_kind.clone(),
        chain_ids: entry.chains.iter().map(|c| c.0.to_vec()).collect(),
        blind_digest: entry.blind_digest,
        predecessors: entry.predecessors.iter().map(|k| k.to_string()).collect(),
        ..Default::default()
    };
    if let Some(q) = entry.sign_time.quantiles() {
        info.sign_p50_us = micros_u32(q.p50);
        info.sign_p99_us = micros_u32(q.p99);
        info.sign_samples = u32::try_from(q.count).unwrap_or(u32::MAX);
    }
    info
}

fn sign_response(o: Outcome) -> grpc::SignResponse {
    grpc::SignResponse {
        digest: o.digest.0.to_vec(),
        signature: Some(outcome_signature(&o)),
        replayed: o.replayed,
        block_num: o.block_num,
        slot: o.slot,
    }
}

/// A pending request on the wire.
fn approval_msg(r: PendingRequest) -> grpc::ApprovalRequest {
    let state = r.status(crate::clock::now_secs()).to_string();
    let signature = match &r.state {
        crate::approvals::State::Signed { signature } => Some(signature_msg(signature)),
        _ => None,
    };
    grpc::ApprovalRequest {
        id: r.id,
        requester: r.requester,
        chain_id: r.chain_id.0.to_vec(),
        public_key: r.key.to_string(),
        packed_trx: r.packed_trx.0,
        context_free_data: r.context_free_data.into_iter().map(|b| b.0).collect(),
        signing_digest: r.signing_digest.0.to_vec(),
        binding_digest: r.binding_digest.0.to_vec(),
        threshold: r.threshold,
        approvers: r.approvers.iter().map(ToString::to_string).collect(),
        set: r.set,
        created: r.created.0,
        expires: r.expires.0,
        approved_by: r.approvals.iter().map(|a| a.approver.to_string()).collect(),
        approvals: r
            .approvals
            .iter()
            .map(|a| grpc::ApprovalSignature {
                approver: a.approver.to_string(),
                signature: a.signature.to_string(),
                at: a.at.0,
            })
            .collect(),
        state,
        signature,
        msig_proposals: r.msig_proposals.into_iter().map(|b| b.0).collect(),
        audit: r.audit.map(audit_ref),
    }
}

/// An audit position on the wire.
fn audit_ref(a: AuditEntryRef) -> grpc::AuditRef {
    grpc::AuditRef {
        seq: a.seq,
        hash: a.hash,
    }
}

impl SignerService {
    /// Runs a signing request, timing its wait for a thread. On the daemon's multi-thread
    /// runtime it runs to its end inside one poll, so a client that hangs up cannot cut it in
    /// half and no thread has to be woken for its answer: on its worker as it is when
    /// [`Inline`] allows, else in place after handing the worker's other tasks on
    /// (`block_in_place`). Elsewhere (a current-thread runtime) on a blocking thread,
    /// [`detached`].
    async fn signing<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Pipeline) -> T + Send + 'static,
    ) -> Result<T, Status> {
        let pipeline = self.pipeline.clone();
        let queued = std::time::Instant::now();
        let run = move || {
            pipeline
                .metrics
                .stage(crate::metrics::Stage::Queue, queued.elapsed());
            f(&pipeline)
        };
        let rt = tokio::runtime::Handle::current();
        match rt.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                let (_counted, inline) = self.inline.enter(rt.metrics().num_workers());
                Ok(if inline {
                    self.inline.run(&rt, run)
                } else {
                    tokio::task::block_in_place(run)
                })
            }
            _ => detached(run).await,
        }
    }
}

/// Runs `f` on a blocking thread that is not cancelled when the caller goes away.
async fn detached<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        to_status(&refused(
            Reason::Internal,
            format!("signing task failed: {e}"),
        ))
    })
}

#[tonic::async_trait]
impl Signer for SignerService {
    async fn list_keys(
        &self,
        req: Request<grpc::ListKeysRequest>,
    ) -> Result<Response<grpc::ListKeysResponse>, Status> {
        let who = self.principal(&req)?;
        self.pipeline
            .may_list(&who, "ListKeys")
            .map_err(|e| to_status(&e))?;
        let keys = self
            .pipeline
            .keys
            .active()
            .iter()
            .map(|e| key_info(e))
            .collect();
        Ok(Response::new(grpc::ListKeysResponse { keys }))
    }

    async fn sign_block(
        &self,
        req: Request<grpc::SignBlockRequest>,
    ) -> Result<Response<grpc::SignResponse>, Status> {
        let who = self.principal(&req)?;
        let r = req.into_inner();
        let fields = (|| {
            let legacy = match (
                r.blockroot_merkle_root.is_empty(),
                r.pending_schedule_hash.is_empty(),
            ) {
                (true, true) => None,
                (false, false) => Some((
                    checksum("blockroot_merkle_root", &r.blockroot_merkle_root)?,
                    checksum("pending_schedule_hash", &r.pending_schedule_hash)?,
                )),
                _ => {
                    return Err(malformed(
                        "give both blockroot_merkle_root and pending_schedule_hash, or neither",
                    ));
                }
            };
            Ok(BlockRequest {
                chain_id: checksum("chain_id", &r.chain_id)?,
                key: self.request_key(&r.public_key)?,
                header: r.header,
                legacy,
            })
        })();
        let block = self.decoded(&who, RequestKind::Block, fields).await?;
        let out = self.signing(move |p| p.sign_block(&who, &block)).await?;
        out.map(|o| Response::new(sign_response(o)))
            .map_err(|e| to_status(&e))
    }

    async fn sign_transaction(
        &self,
        req: Request<grpc::SignTransactionRequest>,
    ) -> Result<Response<grpc::SignTransactionResponse>, Status> {
        let who = self.principal(&req)?;
        let r = req.into_inner();
        let fields = checksum("chain_id", &r.chain_id)
            .and_then(|c| Ok((c, self.request_key(&r.public_key)?)));
        let (chain_id, key) = self.decoded(&who, RequestKind::Transaction, fields).await?;
        let proposals: Vec<Bytes> = r.msig_proposals.into_iter().map(Bytes).collect();
        let decoded = transaction(r.transaction, r.context_free_data);
        let out = self
            .signing(move |pipeline| match decoded {
                Ok((trx, cfd)) => {
                    pipeline.sign_transaction(&who, chain_id, key, &trx, &cfd, &proposals)
                }
                Err(m) => {
                    Err(pipeline.refuse_malformed(&who, RequestKind::Transaction, chain_id, key, m))
                }
            })
            .await?;
        out.map(|(o, id)| {
            Response::new(grpc::SignTransactionResponse {
                digest: o.digest.0.to_vec(),
                transaction_id: id.0.to_vec(),
                signature: Some(outcome_signature(&o)),
                audit: o.audit.map(audit_ref),
            })
        })
        .map_err(|e| to_status(&e))
    }

    async fn check_transaction(
        &self,
        req: Request<grpc::CheckTransactionRequest>,
    ) -> Result<Response<grpc::CheckTransactionResponse>, Status> {
        let who = self.principal(&req)?;
        let outer = req.into_inner();
        let generated = outer
            .to_be_generated
            .iter()
            .map(|k| public_key(k))
            .collect::<Result<Vec<_>, _>>()?;
        let r = outer
            .request
            .ok_or_else(|| malformed("CheckTransaction: no request"))?;
        let chain_id = checksum("chain_id", &r.chain_id)?;
        let key = public_key(&r.public_key)?;
        let proposals: Vec<Bytes> = r.msig_proposals.into_iter().map(Bytes).collect();
        let (trx, cfd) = transaction(r.transaction, r.context_free_data).map_err(malformed)?;
        let pipeline = self.pipeline.clone();
        let out = detached(move || {
            pipeline.check_transaction(&who, chain_id, key, &trx, &cfd, &proposals, &generated)
        })
        .await?;
        out.map(|v| {
            Response::new(match v {
                crate::pipeline::Verdict::Sign => grpc::CheckTransactionResponse::default(),
                crate::pipeline::Verdict::Approvals {
                    threshold,
                    approvers,
                    set,
                } => grpc::CheckTransactionResponse {
                    needs_approvals: true,
                    threshold,
                    approvers: u32::try_from(approvers).unwrap_or(u32::MAX),
                    approver_set: set,
                },
            })
        })
        .map_err(|e| to_status(&e))
    }

    async fn sign_digest(
        &self,
        req: Request<grpc::SignDigestRequest>,
    ) -> Result<Response<grpc::SignResponse>, Status> {
        let who = self.principal(&req)?;
        let r = req.into_inner();
        let fields = (|| {
            Ok((
                checksum("chain_id", &r.chain_id)?,
                self.request_key(&r.public_key)?,
                checksum("digest", &r.digest)?,
            ))
        })();
        let (chain_id, key, digest) = self.decoded(&who, RequestKind::Digest, fields).await?;
        let savanna = self.savanna_chains.contains(&chain_id);
        let out = self
            .signing(move |p| p.sign_digest(&who, chain_id, key, digest, savanna))
            .await?;
        out.map(|o| Response::new(sign_response(o)))
            .map_err(|e| to_status(&e))
    }

    async fn list_approvals(
        &self,
        req: Request<grpc::ListApprovalsRequest>,
    ) -> Result<Response<grpc::ListApprovalsResponse>, Status> {
        let who = self.principal(&req)?;
        let pipeline = self.pipeline.clone();
        let out = detached(move || pipeline.list_approvals(&who)).await?;
        out.map(|list| {
            Response::new(grpc::ListApprovalsResponse {
                requests: list.into_iter().map(approval_msg).collect(),
            })
        })
        .map_err(|e| to_status(&e))
    }

    async fn get_approval(
        &self,
        req: Request<grpc::GetApprovalRequest>,
    ) -> Result<Response<grpc::ApprovalRequest>, Status> {
        let who = self.principal(&req)?;
        let id = req.into_inner().id;
        let pipeline = self.pipeline.clone();
        let out = detached(move || pipeline.get_approval(&who, &id)).await?;
        out.map(|r| Response::new(approval_msg(r)))
            .map_err(|e| to_status(&e))
    }

    async fn approve(
        &self,
        req: Request<grpc::ApproveRequest>,
    ) -> Result<Response<grpc::ApprovalRequest>, Status> {
        let who = self.principal(&req)?;
        let r = req.into_inner();
        let pipeline = self.pipeline.clone();
        let out = detached(move || pipeline.approve_submitted(&who, &r.id, &r.signature)).await?;
        out.map(|r| Response::new(approval_msg(r)))
            .map_err(|e| to_status(&e))
    }

    async fn cancel_approval(
        &self,
        req: Request<grpc::CancelApprovalRequest>,
    ) -> Result<Response<grpc::ApprovalRequest>, Status> {
        let who = self.principal(&req)?;
        let id = req.into_inner().id;
        let pipeline = self.pipeline.clone();
        let out = detached(move || pipeline.cancel_approval(&who, &id)).await?;
        out.map(|r| Response::new(approval_msg(r)))
            .map_err(|e| to_status(&e))
    }

    async fn generate_key(
        &self,
        req: Request<grpc::GenerateKeyRequest>,
    ) -> Result<Response<grpc::GenerateKeyResponse>, Status> {
        let who = self.principal(&req)?;
        let r = generate_request(req.into_inner());
        let lifecycle = self.lifecycle.clone();
        let out = detached(move || lifecycle.generate_key(&who, r)).await?;
        out.map(|(g, at)| {
            Response::new(grpc::GenerateKeyResponse {
                key: Some(key_info(&g.entry)),
                existing: g.existing,
                successor_of: g.successor_of.map(|k| k.to_string()).unwrap_or_default(),
                audit: Some(audit_ref(at)),
            })
        })
        .map_err(|e| to_status(&e))
    }

    async fn retire_key(
        &self,
        req: Request<grpc::RetireKeyRequest>,
    ) -> Result<Response<grpc::RetireKeyResponse>, Status> {
        let who = self.principal(&req)?;
        let r = retire_request(&req.into_inner());
        let lifecycle = self.lifecycle.clone();
        let out = detached(move || lifecycle.retire_key(&who, r)).await?;
        out.map(|(r, at)| {
            Response::new(grpc::RetireKeyResponse {
                handovers: r
                    .handovers
                    .iter()
                    .map(|h| grpc::WatermarkHandover {
                        chain_id: h.chain_id.0.to_vec(),
                        block_num: h.block_num,
                        slot: h.slot,
                    })
                    .collect(),
                already_retired: r.already_retired,
                audit: Some(audit_ref(at)),
            })
        })
        .map_err(|e| to_status(&e))
    }

    async fn sign_transcript(
        &self,
        req: Request<grpc::SignTranscriptRequest>,
    ) -> Result<Response<grpc::SignTranscriptResponse>, Status> {
        let who = self.principal(&req)?;
        let r = transcript_request(req.into_inner());
        let lifecycle = self.lifecycle.clone();
        let out = detached(move || lifecycle.sign_transcript(&who, r)).await?;
        out.map(|(t, at)| {
            Response::new(grpc::SignTranscriptResponse {
                digest: t.digest.0.to_vec(),
                signature: Some(signature_msg(&t.signature)),
                public_key: t.public_key.to_string(),
                audit: Some(audit_ref(at)),
            })
        })
        .map_err(|e| to_status(&e))
    }

    async fn status(
        &self,
        req: Request<grpc::StatusRequest>,
    ) -> Result<Response<grpc::StatusResponse>, Status> {
        let who = self.principal(&req)?;
        self.pipeline
            .may_list(&who, "Status")
            .map_err(|e| to_status(&e))?;
        let cached = self
            .last_ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|(at, problems)| problems.is_empty() && at.elapsed() < READY_REUSE)
            .map(|(_, p)| p.clone());
        let problems = match cached {
            Some(p) => p,
            None => {
                let ready = self.ready.clone();
                let p = detached(move || ready()).await?;
                *self
                    .last_ready
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((std::time::Instant::now(), p.clone()));
                p
            }
        };
        Ok(Response::new(grpc::StatusResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            ready: problems.is_empty(),
            problems,
            keys: self.pipeline.keys.active().len() as u32,
            transcript_key: self
                .lifecycle
                .transcript_key()
                .map(|k| k.to_string())
                .unwrap_or_default(),
        }))
    }
}

/// mTLS material, already read from disk.
#[derive(Clone)]
pub struct TlsFiles {
    /// Operator CA (PEM) that client certificates must chain to.
    pub ca_pem: Vec<u8>,
    /// Server certificate chain (PEM).
    pub cert_pem: Vec<u8>,
    /// Server private key (PEM).
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsFiles(<redacted>)")
    }
}

/// A readiness answer (the problems found, none when ready) and when it was taken.
type LastReady = (std::time::Instant, Vec<String>);

/// How long `Status` reuses a readiness answer.
pub const READY_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Most authenticated connections served at once; a connection is counted once its client
/// certificate is verified, and one beyond this is closed then.
pub const MAX_CONNECTIONS: usize = 256;
/// A TLS handshake (and so a client certificate) must complete within this.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The server's TLS settings in force: the rustls configuration (with the revocation list) and
/// the list itself, replaced together by [`TlsState::reload`] (on SIGHUP). A list that cannot
/// be read or is not signed by the CA keeps the one in force.
pub struct TlsState {
    files: TlsFiles,
    crl: Option<std::path::PathBuf>,
    current: std::sync::RwLock<(Arc<rustls::ServerConfig>, Arc<Revocations>)>,
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsState")
            .field("crl", &self.crl)
            .finish_non_exhaustive()
    }
}

impl TlsState {
    /// Reads the revocation list (if configured) and builds the configuration.
    pub fn load(files: TlsFiles, crl: Option<std::path::PathBuf>) -> Result<Self, String> {
        let current = Self::build(&files, crl.as_deref())?;
        Ok(TlsState {
            files,
            crl,
            current: std::sync::RwLock::new(current),
        })
    }

    /// Re-reads the revocation list and puts it in force; how many certificates it revokes.
    /// On error nothing changes.
    pub fn reload(&self) -> Result<usize, String> {
        let next = Self::build(&self.files, self.crl.as_deref())?;
        let n = next.1.len();
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(n)
    }

    fn build(
        files: &TlsFiles,
        crl: Option<&std::path::Path>,
    ) -> Result<(Arc<rustls::ServerConfig>, Arc<Revocations>), String> {
        let (crl_pem, revoked) = match crl {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("revocation list {}: {e}", path.display()))?;
                let list = Revocations::load(&pem, &files.ca_pem)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                (Some(pem), list)
            }
            None => (None, Revocations::default()),
        };
        let config = tls_config(files, crl_pem.as_deref())?;
        Ok((Arc::new(config), Arc::new(revoked)))
    }

    fn config(&self) -> Arc<rustls::ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .clone()
    }

    /// Refuses a revoked or expired certificate.
    fn admit(&self, peer: &Peer) -> Result<(), Status> {
        let revoked = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            .contains(&peer.serial);
        if revoked {
            tracing::warn!(principal = %peer.principal, "request on a connection whose client certificate is revoked: refused");
            return Err(Status::unauthenticated("client certificate revoked"));
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if peer.not_after <= now {
            return Err(Status::unauthenticated("client certificate expired"));
        }
        Ok(())
    }
}

/// The rustls server configuration: TLS 1.2/1.3, client certificates required and verified
/// against the operator CA (and the revocation list in `crl_pem`, if any), ALPN h2.
pub fn tls_config(tls: &TlsFiles, crl_pem: Option<&[u8]>) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&tls.ca_pem) {
        roots
            .add(ca.map_err(|e| format!("CA certificate: {e}"))?)
            .map_err(|e| format!("CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the CA file holds no certificate".into());
    }
    let crls = match crl_pem {
        Some(pem) => rustls::pki_types::CertificateRevocationListDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("revocation list: {e}"))?,
        None => Vec::new(),
    };
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .with_crls(crls)
    .build()
    .map_err(|e| format!("client certificate verifier: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&tls.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("server certificate: {e}"))?;
    let key =
        PrivateKeyDer::from_pem_slice(&tls.key_pem).map_err(|e| format!("server key: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("server certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A TLS connection that holds one of the [`MAX_CONNECTIONS`] permits until it closes.
struct Conn {
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = <tokio_rustls::server::TlsStream<tokio::net::TcpStream> as tonic::transport::server::Connected>::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.tls.connect_info()
    }
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tls).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tls).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}

/// Accepts TCP connections and completes their TLS handshakes, handing finished ones to the
/// gRPC server. A handshake holds a slot of [`crate::admission::Handshakes`] (bounded, the
/// oldest evicted first, with a timeout); only a verified client certificate takes one of the
/// [`MAX_CONNECTIONS`] connection slots, so unauthenticated peers never crowd out clients. A
/// peer that never finishes the handshake, or has no valid client certificate, is dropped
/// without reaching anything else.
fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Arc<TlsState>,
    tx: tokio::sync::mpsc::Sender<Result<Conn, std::io::Error>>,
) {
    use crate::admission::{Handshakes, MAX_HANDSHAKES, MAX_HANDSHAKES_PER_SOURCE};
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let handshakes = Handshakes::new(MAX_HANDSHAKES, MAX_HANDSHAKES_PER_SOURCE);
    // Failed handshakes are an unauthenticated peer's doing: one line per doubling, not one
    // per attempt.
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (mut slot, evicted) = handshakes.admit(peer.ip());
            if evicted && handshakes.evicted().is_power_of_two() {
                tracing::warn!(
                    evicted = handshakes.evicted(),
                    max = MAX_HANDSHAKES,
                    per_source = MAX_HANDSHAKES_PER_SOURCE,
                    "too many unfinished TLS handshakes: dropping the oldest to admit new connections"
                );
            }
            // Small request/response pairs: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms.
            let _ = stream.set_nodelay(true);
            // The configuration in force now: a reloaded revocation list applies from the next
            // connection on.
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
            let tx = tx.clone();
            let permits = permits.clone();
            let failed = failed.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                let outcome = tokio::select! {
                    r = handshake => r,
                    () = slot.evicted() => return,
                };
                drop(slot);
                let why = match outcome {
                    Ok(Ok(tls)) => {
                        let Ok(permit) = permits.try_acquire_owned() else {
                            tracing::warn!(
                                max = MAX_CONNECTIONS,
                                "connection limit reached: closing an authenticated connection"
                            );
                            return;
                        };
                        let _ = tx
                            .send(Ok(Conn {
                                tls,
                                _permit: permit,
                            }))
                            .await;
                        return;
                    }
                    Ok(Err(e)) => format!("TLS handshake refused: {e}"),
                    Err(_) => "TLS handshake timed out".to_string(),
                };
                let n = failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(%peer, failed_handshakes = n, "{why}");
                } else {
                    tracing::debug!(%peer, "{why}");
                }
            });
        }
    });
}

/// Serves the signer on `listener` over mTLS until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<TlsState>,
    mut service: SignerService,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    service.tls = Some(tls.clone());
    let audit_rejected = rejected::AuditRejectedLayer::new(service.pipeline.clone());
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    accept_loop(listener, tls, tx);
    let svc = SignerServer::new(service).max_decoding_message_size(MAX_REQUEST_BYTES);
    Server::builder()
        .layer(audit_rejected)
        .max_concurrent_streams(Some(64))
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        .add_service(svc)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::ReceiverStream::new(rx), shutdown)
        .await
        .map_err(|e| format!("gRPC server: {e}"))
}
