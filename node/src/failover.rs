//! The signer replicas a node may ask, and failover between them.
//!
//! Guards: a request goes to one replica at a time — the one that answered last, first. On a
//! transport failure, no answer within the attempt timeout, no connection, or an `UNAVAILABLE`
//! refusal (that replica's watermark store or key backend is down), the *identical* request
//! goes to the next replica, until one answers or the caller's deadline passes. That is safe
//! because replicas share one watermark: the next one returns the stored signature of the
//! identical request, or signs the same content. Any other refusal — `DOUBLE_SIGN` above all —
//! is the signers' answer and is never asked of another replica. Each replica keeps its own
//! connection ([`Upstream`]: reconnecting in the background), so a dead one costs nothing once
//! its connection is known to be gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oryx_proto::client::{ClientTls, reason};
use oryx_proto::grpc::signer_client::SignerClient;
use tonic::transport::Channel;

use crate::upstream::Upstream;

/// The longest one replica is given by default before the request goes to the next: above a
/// YubiHSM 2's slowest canonical K1 signature (several ~75 ms attempts). A replica that died
/// costs nothing (its connection fails at once); one that hangs (a paused process, a host gone
/// without a reset) costs this once, then the node asks the others first. With fast keys
/// (SoftHSM2, a network HSM) set `[signer] attempt_timeout_ms` to a few times the signer's p99.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);

/// Why no replica produced an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// A signer's refusal (it carries `oryx-reason`): final.
    #[error("{}", .0.message())]
    Refused(tonic::Status),
    /// Every replica was tried (or the deadline passed) without an answer.
    #[error("no signer replica answered: {0}")]
    Unavailable(String),
}

/// An answer and who gave it.
#[derive(Debug)]
pub struct Answer<T> {
    /// The response.
    pub value: T,
    /// The replica's address.
    pub replica: String,
    /// How many replicas were tried before this one.
    pub failovers: usize,
}

struct Replica {
    upstream: Upstream,
    answered: AtomicU64,
    failed: AtomicU64,
}

struct Inner {
    replicas: Vec<Replica>,
    preferred: AtomicUsize,
    attempt_timeout: Duration,
    failovers: AtomicU64,
}

/// The replica set; cheap to clone.
#[derive(Clone)]
pub struct Signers {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Signers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signers")
            .field("replicas", &self.addrs())
            .finish_non_exhaustive()
    }
}

impl Signers {
    /// Starts one background connection per replica (call inside a tokio runtime).
    pub fn start(addrs: &[String], tls: &ClientTls, attempt_timeout: Duration) -> Signers {
        Signers {
            inner: Arc::new(Inner {
                replicas: addrs
                    .iter()
                    .map(|a| Replica {
                        upstream: Upstream::start(a, tls.clone()),
                        answered: AtomicU64::new(0),
                        failed: AtomicU64::new(0),
                    })
                    .collect(),
                preferred: AtomicUsize::new(0),
                attempt_timeout,
                failovers: AtomicU64::new(0),
            }),
        }
    }

    /// The replicas' addresses, in configured order.
    pub fn addrs(&self) -> Vec<&str> {
        self.inner
            .replicas
            .iter()
            .map(|r| r.upstream.addr())
            .collect()
    }

    /// Sends the request `f` builds to one replica after another (see the module docs) until
    /// one answers, or `deadline` passes.
    pub async fn call<T, F, Fut>(&self, deadline: Duration, f: F) -> Result<Answer<T>, CallError>
    where
        F: Fn(SignerClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let started = Instant::now();
        let n = self.inner.replicas.len();
        let first = self.inner.preferred.load(Ordering::Relaxed) % n.max(1);
        let mut failures = Vec::new();
        for tried in 0..n {
            let remaining = deadline.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                failures.push("the deadline passed".to_string());
                break;
            }
            let idx = (first + tried) % n;
            let r = &self.inner.replicas[idx];
            let addr = r.upstream.addr();
            let conn = match r.upstream.connection() {
                Ok(c) => c,
                Err(e) => {
                    failures.push(e.to_string());
                    continue;
                }
            };
            let limit = remaining.min(self.inner.attempt_timeout);
            let failure = match tokio::time::timeout(limit, f(conn.client.clone())).await {
                Ok(Ok(resp)) => {
                    return Ok(self.answered(idx, tried, resp.into_inner()));
                }
                Err(_) => {
                    let why = format!("no answer within {} ms", limit.as_millis());
                    // A replica that stopped answering: drop the connection (the next request
                    // waits for a fresh one instead of hanging on it again).
                    r.upstream.connection_lost(conn.generation, &why);
                    format!("{addr}: {why}")
                }
                Ok(Err(status)) if r.upstream.observe_failure_on(conn.generation, &status) => {
                    format!("{addr}: connection failed: {}", status.message())
                }
                Ok(Err(status)) if reason(&status).as_deref() == Some("UNAVAILABLE") => {
                    format!("{addr}: UNAVAILABLE: {}", status.message())
                }
                // No `oryx-reason`: not the signer's decision (a proxy, a limit, a deadline).
                Ok(Err(status)) if reason(&status).is_none() => {
                    format!("{addr}: {:?}: {}", status.code(), status.message())
                }
                Ok(Err(status)) => {
                    // The replica answered; its refusal stands for all of them.
                    self.inner.preferred.store(idx, Ordering::Relaxed);
                    r.answered.fetch_add(1, Ordering::Relaxed);
                    return Err(CallError::Refused(status));
                }
            };
            r.failed.fetch_add(1, Ordering::Relaxed);
            if tried + 1 < n {
                tracing::warn!(
                    replica = addr,
                    "signer replica failed, asking the next: {failure}"
                );
            }
            failures.push(failure);
        }
        Err(CallError::Unavailable(failures.join("; ")))
    }

    fn answered<T>(&self, idx: usize, tried: usize, value: T) -> Answer<T> {
        let r = &self.inner.replicas[idx];
        r.answered.fetch_add(1, Ordering::Relaxed);
        let before = self.inner.preferred.swap(idx, Ordering::Relaxed);
        if tried > 0 {
            self.inner.failovers.fetch_add(1, Ordering::Relaxed);
        }
        if before != idx {
            tracing::info!(
                replica = r.upstream.addr(),
                "now signing through this replica"
            );
        }
        Answer {
            value,
            replica: r.upstream.addr().to_string(),
            failovers: tried,
        }
    }

    /// Whether any replica is connected.
    pub fn is_connected(&self) -> bool {
        self.inner
            .replicas
            .iter()
            .any(|r| r.upstream.is_connected())
    }

    /// Connections made so far, over every replica.
    pub fn connects(&self) -> u64 {
        self.inner
            .replicas
            .iter()
            .map(|r| r.upstream.connects())
            .sum()
    }

    /// `/healthz`: healthy while any replica is connected.
    pub fn health(&self) -> Result<(), crate::NodeError> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(crate::NodeError::SignerUnreachable)
        }
    }

    /// A connected replica's client and address, waiting up to `limit` for one.
    pub async fn wait_connected(&self, limit: Duration) -> Option<(SignerClient<Channel>, String)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let first = self.inner.preferred.load(Ordering::Relaxed);
            let n = self.inner.replicas.len();
            for i in 0..n {
                let r = &self.inner.replicas[(first + i) % n];
                if let Ok(c) = r.upstream.client() {
                    return Some((c, r.upstream.addr().to_string()));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The replicas' lines for `/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP oryx_node_signer_connected 1 while any signer replica is connected\n\
             oryx_node_signer_connected {}\n\
             oryx_node_signer_connects_total {}\n\
             # HELP oryx_node_signer_failovers_total Requests another replica answered after the preferred one failed\n\
             oryx_node_signer_failovers_total {}",
            u8::from(self.is_connected()),
            self.connects(),
            self.inner.failovers.load(Ordering::Relaxed),
        );
        let preferred = self.inner.preferred.load(Ordering::Relaxed);
        for (i, r) in self.inner.replicas.iter().enumerate() {
            let a = r.upstream.addr();
            let _ = writeln!(
                out,
                "oryx_node_signer_replica_connected{{replica=\"{a}\"}} {}\n\
                 oryx_node_signer_replica_preferred{{replica=\"{a}\"}} {}\n\
                 oryx_node_signer_replica_answers_total{{replica=\"{a}\"}} {}\n\
                 oryx_node_signer_replica_failures_total{{replica=\"{a}\"}} {}",
                u8::from(r.upstream.is_connected()),
                u8::from(i == preferred),
                r.answered.load(Ordering::Relaxed),
                r.failed.load(Ordering::Relaxed),
            );
        }
    }
}
