//! [`AuditRejectedLayer`]: calls the gRPC layer refuses before any handler sees them.
//!
//! Guards: a protobuf that does not decode, one over the size limit, or an unknown method is
//! answered by tonic itself, so no handler audits it; this layer, around every call, sees the
//! answer instead. Any error status that carries no `oryx-reason` (every handler refusal does)
//! and is not UNAUTHENTICATED (no principal to name) is put on record as a MALFORMED refusal
//! of the certificate's principal, metered like every refusal. The answer itself is unchanged;
//! it leaves once the entry is written (or counted), like every refusal's.

use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::audit::AuditKind;
use crate::pipeline::Pipeline;

/// Wraps the gRPC service (see the module docs).
#[derive(Clone)]
pub(super) struct AuditRejectedLayer {
    pipeline: Arc<Pipeline>,
}

impl AuditRejectedLayer {
    /// Audits through `pipeline`.
    pub(super) fn new(pipeline: Arc<Pipeline>) -> Self {
        AuditRejectedLayer { pipeline }
    }
}

impl<S> tower_layer::Layer<S> for AuditRejectedLayer {
    type Service = AuditRejected<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditRejected {
            inner,
            pipeline: self.pipeline.clone(),
        }
    }
}

/// The wrapped service.
#[derive(Clone)]
pub(super) struct AuditRejected<S> {
    inner: S,
    pipeline: Arc<Pipeline>,
}

/// What the audit entry is about, from the call's path.
fn kind_of(path: &str) -> AuditKind {
    match path.rsplit('/').next().unwrap_or_default() {
        "SignBlock" => AuditKind::SignBlock,
        "SignTransaction" | "CheckTransaction" => AuditKind::SignTransaction,
        "SignDigest" => AuditKind::SignDigest,
        "Approve" | "CancelApproval" => AuditKind::Approval,
        "GenerateKey" => AuditKind::GenerateKey,
        "RetireKey" => AuditKind::RetireKey,
        "SignTranscript" => AuditKind::SignTranscript,
        _ => AuditKind::Call,
    }
}

/// The connection's client certificates, taken before the request goes in (an `Arc` clone;
/// parsed only for an answer that is audited, never on the signing path).
fn peer_certs<B>(req: &http::Request<B>) -> Option<PeerCerts> {
    req.extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()?
        .peer_certs()
}

type PeerCerts = Arc<Vec<tonic::transport::CertificateDer<'static>>>;

/// The refusal to audit, if the answer is one the handlers did not give: (code, message).
fn rejected(headers: &http::HeaderMap) -> Option<(tonic::Code, String)> {
    let status = tonic::Status::from_header_map(headers)?;
    // OK, UNAUTHENTICATED (nobody to name), and every handler refusal (it carries a reason and
    // its handler audited it).
    if matches!(
        status.code(),
        tonic::Code::Ok | tonic::Code::Unauthenticated
    ) || crate::client::reason(&status).is_some()
    {
        return None;
    }
    Some((status.code(), status.message().to_owned()))
}

impl<S, B, R> tower_service::Service<http::Request<B>> for AuditRejected<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let certs = peer_certs(&req);
        let uri = req.uri().clone();
        let pipeline = self.pipeline.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            let who = || super::principal_of(certs.as_ref()?.first()?.as_ref());
            if let Some((code, message)) = rejected(resp.headers())
                && let Some(who) = who()
            {
                let path = uri.path();
                let kind = kind_of(path);
                let message = format!("{path}: grpc-status {}: {message}", code as i32);
                // The answer waits for the audit (it blocks on fsync), as every refusal's does:
                // so a client cannot queue unbounded audit work behind instant refusals.
                let _ = tokio::task::spawn_blocking(move || {
                    pipeline.audit_malformed(&who, kind, &message);
                })
                .await;
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_answers_no_handler_gave_are_audited() {
        let mut h = http::HeaderMap::new();
        assert_eq!(rejected(&h), None);
        h.insert("grpc-status", "13".parse().unwrap());
        h.insert(
            "grpc-message",
            "failed%20to%20decode%20Protobuf%20message".parse().unwrap(),
        );
        assert_eq!(
            rejected(&h),
            Some((
                tonic::Code::Internal,
                "failed to decode Protobuf message".into()
            ))
        );
        h.insert(
            oryx_proto::grpc::REASON_METADATA,
            "MALFORMED".parse().unwrap(),
        );
        assert_eq!(
            rejected(&h),
            None,
            "a handler's refusal is audited by the handler"
        );
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", "16".parse().unwrap());
        assert_eq!(rejected(&h), None);
        assert_eq!(kind_of("/oryx.v1.Signer/SignBlock"), AuditKind::SignBlock);
        assert_eq!(kind_of("/oryx.v1.Signer/Nope"), AuditKind::Call);
    }
}
