//! The reference `oryx-signer bench` measures the signer against, started inside the bench's own
//! process: the least a correct signer must do, built from the same crates (tonic, rustls with
//! the signer's own TLS configuration, k256, the same files on the same disk), so the ratio
//! printed beside each number says how much the product adds on this machine, today.
//!
//! What it does per call, and nothing else (no policy, no audit chain, no admission control):
//! - `Status`: answers at once (the bare mTLS echo);
//! - `SignBlock`, two-sync form: decodes the header, computes its id, writes a 64-byte
//!   reservation in place and `fdatasync`s it, signs ([`RefKey`]: for a key computed in process
//!   with an in-memory K1 key through fc's canonical loop, the recovery id from k256, no
//!   verification; for a device key with that same key on its device, through the canonical
//!   loop and the one verification that finds the recovery id), appends a ~250-byte record to a
//!   log and `fdatasync`s it, answers; one-sync (write-ahead) form: appends and syncs a
//!   record before signing, signs, appends the outcome without a sync, answers;
//! - `SignTransaction`: decodes the transaction, computes its signing digest, signs, appends and
//!   syncs the record, answers (a transaction has no watermark).
//!
//! Every other call is UNIMPLEMENTED. The work runs inline on the runtime's thread, as a
//! minimal program would.

use std::fs::File;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use oryx_proto::antelope::block::BlockHeader;
use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Checksum256, KeyType, Signature, Unpack as _};
use oryx_proto::grpc::signer_server::{Signer, SignerServer};
use oryx_proto::grpc::{self};
use tonic::{Request, Response, Status};

use crate::backend::KeyBackend as _;
use crate::backend::soft::SoftKey;
use crate::server::TlsFiles;

/// How many `fdatasync`s a signature costs in the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Syncs {
    /// A reservation before signing and a record before the answer (today's design).
    Two,
    /// One record before signing that carries both, synced; the outcome appended after
    /// signing without a sync (the write-ahead design).
    One,
}

/// What the reference signs with, so that its signing time is the product's floor: an in-memory
/// K1 key when the product's key signs in process (a software K1 key), else the product's own
/// key through its backend (a PKCS#11 token, a YubiHSM), whose signatures need the recovery id
/// found by one verification ([`crate::signing::sign`]: the least any signer must do with them).
#[derive(Debug, Clone)]
pub(crate) enum RefKey {
    /// fc's canonical loop on an in-memory key.
    Memory(Arc<SoftKey>),
    /// The product's key on its device, signed with the options the signer uses for a block.
    Device(
        Arc<dyn crate::backend::KeyBackend>,
        crate::signing::SignOptions,
    ),
}

impl RefKey {
    /// Whether a reference for `backend`'s key signs on the device.
    pub(crate) fn is_device(backend: &dyn crate::backend::KeyBackend) -> bool {
        !(backend.signs_in_process() && backend.public_key().kind() == KeyType::K1)
    }

    /// The reference key for the product's `backend`; a device key signs with `opts` (the
    /// signer's for a block on the key's chain).
    pub(crate) fn new(
        backend: &Arc<dyn crate::backend::KeyBackend>,
        opts: crate::signing::SignOptions,
    ) -> Result<Self, String> {
        if Self::is_device(backend.as_ref()) {
            return Ok(RefKey::Device(backend.clone(), opts));
        }
        let key = SoftKey::generate(KeyType::K1).map_err(|e| e.to_string())?;
        Ok(RefKey::Memory(Arc::new(key)))
    }

    fn public_key(&self) -> oryx_proto::antelope::PublicKey {
        match self {
            RefKey::Memory(k) => *k.public_key(),
            RefKey::Device(b, _) => *b.public_key(),
        }
    }

    fn sign(&self, digest: &Checksum256) -> Result<Signature, Status> {
        match self {
            RefKey::Memory(k) => canonical_k1(k, digest),
            RefKey::Device(b, opts) => crate::signing::sign(b.as_ref(), digest, *opts)
                .map(|s| s.signature)
                .map_err(|e| Status::internal(e.to_string())),
        }
    }
}

/// The minimal signer's state.
struct Minimal {
    key: RefKey,
    reservation: File,
    log: Mutex<File>,
    syncs: Syncs,
}

/// Unimplemented calls.
fn no<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not part of the reference"))
}

impl Minimal {
    /// The durable work and the signature for `digest`.
    fn sign(&self, digest: &Checksum256) -> Result<grpc::SignResponse, Status> {
        let io = |e: std::io::Error| Status::internal(e.to_string());
        if self.syncs == Syncs::Two {
            self.reservation.write_all_at(&[7u8; 64], 0).map_err(io)?;
            self.reservation.sync_data().map_err(io)?;
        }
        let append = |record: String, sync: bool| -> Result<(), Status> {
            let mut log = self
                .log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            log.write_all(record.as_bytes()).map_err(io)?;
            if sync {
                log.sync_data().map_err(io)?;
            }
            Ok(())
        };
        let key = self.key.public_key();
        if self.syncs == Syncs::One {
            append(
                format!(
                    "{{\"key\":\"{key}\",\"digest\":\"{digest}\",\"decision\":\"reserved\"}}\n"
                ),
                true,
            )?;
        }
        let signature = self.key.sign(digest)?;
        let text = signature.to_string();
        append(
            format!(
                "{{\"key\":\"{key}\",\"digest\":\"{digest}\",\"decision\":\"signed\",\"signature\":\"{text}\"}}\n"
            ),
            self.syncs == Syncs::Two,
        )?;
        Ok(grpc::SignResponse {
            digest: digest.0.to_vec(),
            signature: Some(grpc::Signature {
                compact: signature.as_bytes().to_vec(),
                text,
            }),
            ..Default::default()
        })
    }
}

/// fc's canonical loop on an in-memory K1 key: the recovery id comes from k256 (flipped with a
/// low-S normalisation), nothing is verified.
fn canonical_k1(key: &SoftKey, digest: &Checksum256) -> Result<Signature, Status> {
    for attempt in 1..=64 {
        let raw = key
            .sign_digest(digest, attempt)
            .map_err(|e| Status::internal(e.to_string()))?;
        let sig = k256::ecdsa::Signature::from_scalars(raw.r, raw.s)
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut recid = raw.recid_hint.unwrap_or(0);
        let low = sig.normalize_s();
        if low != sig {
            recid ^= 1;
        }
        let sig = low;
        let (r, s) = sig.split_bytes();
        let (r, s): ([u8; 32], [u8; 32]) = (r.into(), s.into());
        let signature = Signature::from_parts(KeyType::K1, recid, &r, &s)
            .map_err(|e| Status::internal(e.to_string()))?;
        if signature.is_canonical() {
            return Ok(signature);
        }
    }
    Err(Status::internal("no canonical signature in 64 attempts"))
}

#[tonic::async_trait]
impl Signer for Minimal {
    async fn list_keys(
        &self,
        _: Request<grpc::ListKeysRequest>,
    ) -> Result<Response<grpc::ListKeysResponse>, Status> {
        no()
    }

    async fn sign_block(
        &self,
        req: Request<grpc::SignBlockRequest>,
    ) -> Result<Response<grpc::SignResponse>, Status> {
        let r = req.into_inner();
        let header = BlockHeader::unpack_exact(&r.header)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let digest = header
            .id()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        self.sign(&digest).map(Response::new)
    }

    async fn sign_transaction(
        &self,
        req: Request<grpc::SignTransactionRequest>,
    ) -> Result<Response<grpc::SignTransactionResponse>, Status> {
        let r = req.into_inner();
        let chain_id = <[u8; 32]>::try_from(r.chain_id.as_slice())
            .map(Checksum256)
            .map_err(|_| Status::invalid_argument("chain_id must be 32 bytes"))?;
        let Some(grpc::sign_transaction_request::Transaction::PackedTrx(packed)) = r.transaction
        else {
            return Err(Status::invalid_argument("packed_trx only"));
        };
        let trx =
            Transaction::decode(&packed).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let digest = trx.signing_digest(&chain_id, &[]);
        let signed = self.sign(&digest)?;
        Ok(Response::new(grpc::SignTransactionResponse {
            signature: signed.signature,
            digest: signed.digest,
            ..Default::default()
        }))
    }

    async fn check_transaction(
        &self,
        _: Request<grpc::CheckTransactionRequest>,
    ) -> Result<Response<grpc::CheckTransactionResponse>, Status> {
        no()
    }

    async fn sign_digest(
        &self,
        _: Request<grpc::SignDigestRequest>,
    ) -> Result<Response<grpc::SignResponse>, Status> {
        no()
    }

    async fn list_approvals(
        &self,
        _: Request<grpc::ListApprovalsRequest>,
    ) -> Result<Response<grpc::ListApprovalsResponse>, Status> {
        no()
    }

    async fn get_approval(
        &self,
        _: Request<grpc::GetApprovalRequest>,
    ) -> Result<Response<grpc::ApprovalRequest>, Status> {
        no()
    }

    async fn approve(
        &self,
        _: Request<grpc::ApproveRequest>,
    ) -> Result<Response<grpc::ApprovalRequest>, Status> {
        no()
    }

    async fn cancel_approval(
        &self,
        _: Request<grpc::CancelApprovalRequest>,
    ) -> Result<Response<grpc::ApprovalRequest>, Status> {
        no()
    }

    async fn generate_key(
        &self,
        _: Request<grpc::GenerateKeyRequest>,
    ) -> Result<Response<grpc::GenerateKeyResponse>, Status> {
        no()
    }

    async fn retire_key(
        &self,
        _: Request<grpc::RetireKeyRequest>,
    ) -> Result<Response<grpc::RetireKeyResponse>, Status> {
        no()
    }

    async fn sign_transcript(
        &self,
        _: Request<grpc::SignTranscriptRequest>,
    ) -> Result<Response<grpc::SignTranscriptResponse>, Status> {
        no()
    }

    async fn status(
        &self,
        _: Request<grpc::StatusRequest>,
    ) -> Result<Response<grpc::StatusResponse>, Status> {
        Ok(Response::new(grpc::StatusResponse::default()))
    }
}

/// A running reference server.
#[derive(Debug)]
pub(super) struct Reference {
    /// Where it listens (loopback, a free port).
    pub(super) addr: SocketAddr,
}

/// Starts a reference on the current runtime with the signer's TLS files, its files in `dir`.
pub(super) async fn start(
    tls: &TlsFiles,
    dir: &Path,
    syncs: Syncs,
    key: RefKey,
) -> Result<Reference, String> {
    let tag = match syncs {
        Syncs::Two => "2",
        Syncs::One => "1",
    };
    let open = |name: String| {
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let reservation = open(format!(".bench-reference-{tag}.wm"))?;
    reservation
        .write_all_at(&[0u8; 64], 0)
        .and_then(|()| reservation.sync_all())
        .map_err(|e| e.to_string())?;
    let log = open(format!(".bench-reference-{tag}.log"))?;
    let minimal = Minimal {
        key,
        reservation,
        log: Mutex::new(log),
        syncs,
    };
    let config = Arc::new(crate::server::tls_config(tls, None)?);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    let _ = tx.send(Ok::<_, std::io::Error>(tls)).await;
                }
            });
        }
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SignerServer::new(minimal))
            .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(rx)),
    );
    Ok(Reference { addr })
}

/// Removes the reference's files.
pub(super) fn clean(dir: &Path) {
    for tag in ["1", "2"] {
        for ext in ["wm", "log"] {
            let _ = std::fs::remove_file(dir.join(format!(".bench-reference-{tag}.{ext}")));
        }
    }
}
