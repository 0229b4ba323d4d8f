//! `/metrics` and `/healthz` on loopback, for whichever daemon runs (bridge or producer).
//!
//! Guards: the endpoint is read-only and capped at [`MAX_CONNECTIONS`] connections; it shows
//! counters and latencies, never key material or request contents.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::NodeError;

/// Most metrics connections open at once.
pub const MAX_CONNECTIONS: usize = 16;

/// What a daemon shows on its observability port.
pub trait Observed: Send + Sync + 'static {
    /// The Prometheus text exposition.
    fn render_metrics(&self) -> String;
    /// `Ok` when healthy, else why not (the `/healthz` body, with 503).
    fn health(&self) -> Result<(), NodeError>;
}

/// Serves `/metrics` and `/healthz` until the task is dropped.
pub async fn serve(listener: TcpListener, what: Arc<dyn Observed>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("metrics accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!("refused a metrics connection: {MAX_CONNECTIONS} already open");
            continue;
        };
        let what = Arc::clone(&what);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let what = Arc::clone(&what);
                async move {
                    let (status, body) = match req.uri().path() {
                        "/metrics" => (StatusCode::OK, what.render_metrics()),
                        "/healthz" => match what.health() {
                            Ok(()) => (StatusCode::OK, "ok\n".to_string()),
                            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
                        },
                        _ => (StatusCode::NOT_FOUND, "not found\n".to_string()),
                    };
                    let mut resp = Response::new(Full::new(Bytes::from(body)));
                    *resp.status_mut() = status;
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
            drop(permit);
        });
    }
}
