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

/// The principal of the connection's client certificate, if any.
fn principal<B>(req: &http::Request<B>) -> Option<String> {
    let info = req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>()?;
    let certs = info.peer_certs()?;
    super::principal_of(certs.first()?.as_ref())
}

/// The refusal to audit, if the answer is one the handlers did not give: (code, message).
fn rejected(headers: &http::HeaderMap) -> Option<(String, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?;
    // OK, and UNAUTHENTICATED (nobody to name).
    if code == "0" || code == "16" || headers.contains_key(oryx_proto::grpc::REASON_METADATA) {
        return None;
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    Some((code.to_owned(), message))
}

/// grpc-message is percent-encoded; undo it (invalid sequences are kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
        let who = principal(&req);
        let path = req.uri().path().to_owned();
        let pipeline = self.pipeline.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            if let (Some(who), Some((code, message))) = (who, rejected(resp.headers())) {
                let kind = kind_of(&path);
                let message = format!("{path}: grpc-status {code}: {message}");
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
            Some(("13".into(), "failed to decode Protobuf message".into()))
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
        assert_eq!(percent_decode("a%zzb%41"), "a%zzbA");
    }
}
