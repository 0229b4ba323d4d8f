//! Prometheus metrics and the `/metrics`, `/healthz`, `/readyz` endpoints on a loopback port.
//!
//! Guards: an operator (and a load balancer in front of several signers) can see when the
//! signer must not be sent work: `/readyz` turns 503 when a key backend or the watermark store
//! is down. Counters and latency histograms per request kind and outcome; no key material.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use oryx_proto::stats::Histogram;

use crate::config::RequestKind;

/// Latency buckets in microseconds (nodeos gives a keosd signer 5 ms by default).
const BUCKETS_US: [u64; 12] = [
    100, 250, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 50_000, 100_000,
];

/// Buckets for the steps inside a request, in microseconds: finer at the low end, where a sync
/// or a software signature lands.
const STAGE_BUCKETS_US: [u64; 14] = [
    50, 100, 150, 250, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 50_000, 100_000,
];

/// A step of a signed request, timed on its own so an operator can see where the time goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a blocking thread after the request was decoded.
    Queue,
    /// The watermark reservation: decide and write durably.
    Reserve,
    /// Backend calls (K1: the canonical loop) and verification by recovery.
    Sign,
    /// The audit entry, durable (shared syncs included).
    Audit,
}

impl Stage {
    const ALL: [Stage; 4] = [Stage::Queue, Stage::Reserve, Stage::Sign, Stage::Audit];

    fn as_str(self) -> &'static str {
        match self {
            Stage::Queue => "queue",
            Stage::Reserve => "reserve",
            Stage::Sign => "sign",
            Stage::Audit => "audit",
        }
    }
}

/// The signer's counters and histograms.
#[derive(Debug)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
    /// One histogram per [`Stage`], indexed by `stage as usize`: no shared map on the hot path.
    stages: [Mutex<Histogram>; 4],
    ready_checks_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::default(),
            stages: std::array::from_fn(|_| Mutex::new(Histogram::new(&STAGE_BUCKETS_US))),
            ready_checks_failed: AtomicU64::default(),
        }
    }
}

impl Metrics {
    /// Records one request's outcome and latency.
    pub fn observe(&self, kind: RequestKind, outcome: &'static str, latency_us: u64) {
        let mut map = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry((kind.as_str(), outcome))
            .or_insert_with(|| Histogram::new(&BUCKETS_US))
            .record_us(latency_us);
    }

    /// Records how long one step of a request took.
    pub fn stage(&self, stage: Stage, elapsed: std::time::Duration) {
        self.stages[stage as usize]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record_us(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    /// Counts a failed readiness probe.
    pub fn ready_failed(&self) {
        self.ready_checks_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let map = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        out.push_str("# HELP oryx_requests_total Signing requests by kind and outcome.\n# TYPE oryx_requests_total counter\n");
        for ((kind, outcome), h) in map.iter() {
            let _ = writeln!(
                out,
                "oryx_requests_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {}",
                h.count()
            );
        }
        out.push_str("# HELP oryx_request_duration_seconds Time from request to answer.\n# TYPE oryx_request_duration_seconds histogram\n");
        for ((kind, outcome), h) in map.iter() {
            h.render(
                "oryx_request_duration_seconds",
                &format!("kind=\"{kind}\",outcome=\"{outcome}\""),
                &mut out,
            );
        }
        drop(map);
        let mut described = false;
        for stage in Stage::ALL {
            let h = self.stages[stage as usize]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if h.count() == 0 {
                continue;
            }
            if !described {
                out.push_str("# HELP oryx_stage_duration_seconds Time in each step of a request: queue (for a blocking thread), reserve (durable watermark), sign (backend and verification), audit (durable entry).\n# TYPE oryx_stage_duration_seconds histogram\n");
                described = true;
            }
            h.render(
                "oryx_stage_duration_seconds",
                &format!("stage=\"{}\"", stage.as_str()),
                &mut out,
            );
        }
        let _ = writeln!(
            out,
            "# HELP oryx_ready_checks_failed_total Readiness probes that found a backend or the store down.\n# TYPE oryx_ready_checks_failed_total counter\noryx_ready_checks_failed_total {}",
            self.ready_checks_failed.load(Ordering::Relaxed)
        );
        out
    }
}

/// Returns what makes the signer unready now (empty = ready): what `/readyz` and the Status call
/// report.
pub type ReadyCheck = std::sync::Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// Serves `/metrics`, `/healthz` and `/readyz` (HTTP/1.1, one request per connection) until the
/// listener fails. `ready` returns the problems that make the signer unready (empty = ready).
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
    ready: ReadyCheck,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let metrics = metrics.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            // Read the request head (up to 1 KiB, 5 s): a request may arrive in pieces.
            let mut buf = [0u8; 1024];
            let mut n = 0;
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
            while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                match tokio::time::timeout_at(deadline, stream.read(&mut buf[n..])).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(k)) => n += k,
                }
            }
            let line = String::from_utf8_lossy(&buf[..n]);
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/metrics" => ("200 OK", metrics.render()),
                "/healthz" => ("200 OK", "ok\n".to_string()),
                "/readyz" => {
                    let problems = tokio::task::spawn_blocking(move || ready())
                        .await
                        .unwrap_or_else(|e| vec![e.to_string()]);
                    if problems.is_empty() {
                        ("200 OK", "ready\n".to_string())
                    } else {
                        metrics.ready_failed();
                        (
                            "503 Service Unavailable",
                            format!("not ready:\n{}\n", problems.join("\n")),
                        )
                    }
                }
                _ => ("404 Not Found", "not found\n".to_string()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(resp.as_bytes()).await;
        });
    }
}
