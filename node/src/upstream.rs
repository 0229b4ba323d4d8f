//! The one long-lived mTLS connection from the node to the signer.
//!
//! Guards: requests never wait on a dead connection. While the signer is unreachable every call
//! fails at once with [`Unreachable`] (nodeos retries at its next slot anyway), and one background
//! task reconnects with exponential backoff (50 ms doubling to 5 s), so a signer restart is
//! picked up within one backoff step and a down signer is not hammered.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use oryx_proto::client::{ClientTls, connect, reason};
use oryx_proto::grpc::signer_client::SignerClient;
use tokio::sync::Notify;
use tonic::transport::Channel;

/// First and largest wait between reconnection attempts.
pub const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(5));

/// The signer cannot be reached now.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the signer at {addr} is unreachable ({last_error}); reconnecting in the background")]
pub struct Unreachable {
    /// The signer's address.
    pub addr: String,
    /// What the last connection attempt said.
    pub last_error: String,
}

/// A handle on the connection; cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    addr: String,
    tls: ClientTls,
    client: RwLock<Option<SignerClient<Channel>>>,
    last_error: RwLock<String>,
    wake: Notify,
    connected: AtomicBool,
    connects: AtomicU64,
}

impl Upstream {
    /// Starts connecting to `addr` in the background (call inside a tokio runtime).
    pub fn start(addr: &str, tls: ClientTls) -> Upstream {
        let inner = Arc::new(Inner {
            addr: addr.to_string(),
            tls,
            client: RwLock::new(None),
            last_error: RwLock::new("not connected yet".into()),
            wake: Notify::new(),
            connected: AtomicBool::new(false),
            connects: AtomicU64::new(0),
        });
        tokio::spawn(maintain(Arc::clone(&inner)));
        Upstream { inner }
    }

    /// The connected client, or [`Unreachable`] at once.
    pub fn client(&self) -> Result<SignerClient<Channel>, Unreachable> {
        let guard = self
            .inner
            .client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.clone().ok_or_else(|| self.unreachable())
    }

    fn unreachable(&self) -> Unreachable {
        Unreachable {
            addr: self.inner.addr.clone(),
            last_error: self
                .inner
                .last_error
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    /// Looks at a failed call: when the connection itself failed (no `oryx-reason`: the signer
    /// did not answer), drops it so the background task reconnects. Returns whether it did.
    pub fn observe_failure(&self, status: &tonic::Status) -> bool {
        if !is_transport_failure(status) {
            return false;
        }
        *self
            .inner
            .last_error
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = status.message().to_string();
        self.inner
            .client
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        self.inner.connected.store(false, Ordering::SeqCst);
        self.inner.wake.notify_one();
        true
    }

    /// Whether a connection is up now.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::SeqCst)
    }

    /// How many connections have been made so far (1 after the first, +1 per reconnection).
    pub fn connects(&self) -> u64 {
        self.inner.connects.load(Ordering::SeqCst)
    }

    /// The signer's address.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Waits until connected, up to `limit`.
    pub async fn wait_connected(
        &self,
        limit: Duration,
    ) -> Result<SignerClient<Channel>, Unreachable> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Ok(c) = self.client() {
                return Ok(c);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.unreachable());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A status the transport produced (the signer never answered), as opposed to a refusal the
/// signer sent, which always carries an `oryx-reason`.
pub fn is_transport_failure(status: &tonic::Status) -> bool {
    reason(status).is_none()
        && matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
        )
}

async fn maintain(inner: Arc<Inner>) {
    let mut backoff = BACKOFF.0;
    let mut failures = 0u64;
    loop {
        if inner.connected.load(Ordering::SeqCst) {
            inner.wake.notified().await;
            continue;
        }
        match connect(&inner.addr, &inner.tls).await {
            Ok(c) => {
                *inner
                    .client
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c);
                inner.connected.store(true, Ordering::SeqCst);
                let n = inner.connects.fetch_add(1, Ordering::SeqCst) + 1;
                if n == 1 {
                    tracing::info!(signer = %inner.addr, "connected to the signer");
                } else {
                    tracing::info!(signer = %inner.addr, after_failures = failures, "reconnected to the signer");
                }
                backoff = BACKOFF.0;
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                // One line per doubling, not one per attempt.
                if failures.is_power_of_two() {
                    tracing::warn!(signer = %inner.addr, failures, retry_in_ms = backoff.as_millis() as u64, "signer unreachable: {e}");
                }
                *inner
                    .last_error
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = e;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        }
    }
}
