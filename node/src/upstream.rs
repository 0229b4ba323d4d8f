//! The one long-lived mTLS connection from the node to a signer (one per replica; see
//! [`crate::failover`] for choosing among them).
//!
//! Guards: requests never wait on a dead connection. While the signer is unreachable every call
//! fails at once with [`Unreachable`] (nodeos retries at its next slot anyway), and one background
//! task reconnects with exponential backoff (50 ms doubling to 5 s), so a signer restart is
//! picked up within one backoff step and a down signer is not hammered.
//!
//! Every connection gets a generation number, kept with the client under one lock: a failure
//! seen on a connection drops it only while it is still the current one, so a late failure from
//! an old connection can never discard a fresh healthy one, and "connected" is true exactly when
//! there is a client to hand out.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use oryx_proto::client::{CONNECT_TIMEOUT, ClientTls, connect, reason};
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

/// One connection handed out: the client and the generation it belongs to (pass it back to
/// [`Upstream::observe_failure_on`] or [`Upstream::connection_lost`]).
#[derive(Clone)]
pub struct Connection {
    /// Which connection this is (1 for the first, +1 per reconnection).
    pub generation: u64,
    /// The client on it.
    pub client: SignerClient<Channel>,
}

struct Inner {
    addr: String,
    tls: ClientTls,
    slot: RwLock<Slot<SignerClient<Channel>>>,
    wake: Notify,
}

/// The current connection and its generation, and why the last one went away; pure, so the
/// generation rules are tested without a network.
#[derive(Debug)]
struct Slot<C> {
    current: Option<(u64, C)>,
    generations: u64,
    last_error: String,
}

impl<C: Clone> Slot<C> {
    fn new() -> Self {
        Slot {
            current: None,
            generations: 0,
            last_error: "not connected yet".into(),
        }
    }

    /// Installs a new connection; returns its generation.
    fn install(&mut self, c: C) -> u64 {
        self.generations += 1;
        self.current = Some((self.generations, c));
        self.generations
    }

    fn get(&self) -> Option<(u64, C)> {
        self.current.clone()
    }

    fn is_up(&self) -> bool {
        self.current.is_some()
    }

    /// Drops the connection of `generation` if it is still the current one; returns whether it
    /// did. A stale generation (already replaced) changes nothing.
    fn lose(&mut self, generation: u64, why: &str) -> bool {
        match &self.current {
            Some((g, _)) if *g == generation => {
                self.current = None;
                self.last_error = why.to_string();
                true
            }
            _ => false,
        }
    }

    /// A connection attempt failed (nothing is installed meanwhile).
    fn attempt_failed(&mut self, why: String) {
        self.last_error = why;
    }
}

impl Upstream {
    /// Starts connecting to `addr` in the background (call inside a tokio runtime).
    pub fn start(addr: &str, tls: ClientTls) -> Upstream {
        let inner = Arc::new(Inner {
            addr: addr.to_string(),
            tls,
            slot: RwLock::new(Slot::new()),
            wake: Notify::new(),
        });
        tokio::spawn(maintain(Arc::clone(&inner)));
        Upstream { inner }
    }

    fn slot(&self) -> std::sync::RwLockReadGuard<'_, Slot<SignerClient<Channel>>> {
        self.inner.slot()
    }

    /// The connected client with its generation, or [`Unreachable`] at once.
    pub fn connection(&self) -> Result<Connection, Unreachable> {
        let slot = self.slot();
        match slot.get() {
            Some((generation, client)) => Ok(Connection { generation, client }),
            None => Err(Unreachable {
                addr: self.inner.addr.clone(),
                last_error: slot.last_error.clone(),
            }),
        }
    }

    /// The connected client, or [`Unreachable`] at once. Prefer [`Upstream::connection`], whose
    /// generation lets a failure drop only the connection it happened on.
    pub fn client(&self) -> Result<SignerClient<Channel>, Unreachable> {
        self.connection().map(|c| c.client)
    }

    /// Looks at a failed call on connection `generation`: when the connection itself failed
    /// (no `oryx-reason`: the signer did not answer), drops it, if it is still the current
    /// one, so the background task reconnects. Returns whether it was a transport failure.
    pub fn observe_failure_on(&self, generation: u64, status: &tonic::Status) -> bool {
        if !is_transport_failure(status) {
            return false;
        }
        self.connection_lost(generation, status.message());
        true
    }

    /// Connection `generation` is dead (a transport failure, or a call that outlived its
    /// deadline): drops it if it is still the current one and wakes the reconnecting task.
    /// Returns whether it was dropped (false: already replaced or already gone).
    pub fn connection_lost(&self, generation: u64, why: &str) -> bool {
        let dropped = self.inner.slot_mut().lose(generation, why);
        if dropped {
            self.inner.wake.notify_one();
        }
        dropped
    }

    /// Whether a connection is up now (exactly when [`Upstream::connection`] would give one).
    pub fn is_connected(&self) -> bool {
        self.slot().is_up()
    }

    /// How many connections have been made so far (1 after the first, +1 per reconnection):
    /// the current generation.
    pub fn connects(&self) -> u64 {
        self.slot().generations
    }

    /// The signer's address.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }
}

impl Inner {
    fn slot(&self) -> std::sync::RwLockReadGuard<'_, Slot<SignerClient<Channel>>> {
        self.slot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot_mut(&self) -> std::sync::RwLockWriteGuard<'_, Slot<SignerClient<Channel>>> {
        self.slot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A status the transport produced (the signer never answered), as opposed to a refusal the
/// signer sent, which always carries an `oryx-reason`.
pub fn is_transport_failure(status: &tonic::Status) -> bool {
    reason(status).is_none()
        && matches!(
            status.code(),
            tonic::Code::Unavailable
                | tonic::Code::Unknown
                | tonic::Code::Internal
                // The connection closed under the call (hyper's "canceled").
                | tonic::Code::Cancelled
        )
}

async fn maintain(inner: Arc<Inner>) {
    let mut backoff = BACKOFF.0;
    let mut failures = 0u64;
    loop {
        // A permit stored by `notify_one` before this wait is not lost, so a drop between the
        // check and the wait still wakes it.
        if inner.slot().is_up() {
            inner.wake.notified().await;
            continue;
        }
        // The whole attempt is bounded, HTTP/2 setup included (a peer that accepts TCP and
        // then says nothing must not stall reconnection).
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect(&inner.addr, &inner.tls))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "connect to signer at {}: no connection within {} s (host down or \
                     unreachable?)",
                    inner.addr,
                    CONNECT_TIMEOUT.as_secs()
                ))
            });
        match attempt {
            Ok(c) => {
                let generation = inner.slot_mut().install(c);
                if generation == 1 {
                    tracing::info!(signer = %inner.addr, generation, "connected to the signer");
                } else {
                    tracing::info!(signer = %inner.addr, generation, after_failures = failures, "reconnected to the signer");
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
                inner.slot_mut().attempt_failed(e);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_late_failure_from_an_old_connection_keeps_the_new_one() {
        let mut s = Slot::<&str>::new();
        assert!(!s.is_up());
        let g1 = s.install("first");
        assert_eq!(s.get(), Some((g1, "first")));
        // The first connection dies and the task reconnects...
        assert!(s.lose(g1, "broken pipe"));
        assert!(!s.is_up());
        assert_eq!(s.last_error, "broken pipe");
        let g2 = s.install("second");
        assert_ne!(g1, g2);
        // ...then a late failure from a call on the first one arrives: nothing changes.
        assert!(!s.lose(g1, "late"));
        assert_eq!(s.get(), Some((g2, "second")));
        assert!(s.is_up());
        assert_eq!(s.last_error, "broken pipe");
    }

    #[test]
    fn a_failure_between_install_and_use_leaves_a_consistent_state() {
        // The old race: a stale take() between storing the client and `connected = true` left
        // "connected" with no client. Now both are one value.
        let mut s = Slot::<u8>::new();
        let g1 = s.install(1);
        assert!(s.lose(g1, "x"));
        let g2 = s.install(2);
        assert!(!s.lose(g1, "stale"));
        assert_eq!(s.is_up(), s.get().is_some());
        assert!(s.lose(g2, "deadline"));
        assert_eq!(s.is_up(), s.get().is_some());
        assert!(!s.is_up());
        // Losing the same generation twice is a no-op.
        assert!(!s.lose(g2, "again"));
        assert_eq!(s.last_error, "deadline");
    }

    #[test]
    fn generations_only_grow() {
        let mut s = Slot::<()>::new();
        let gens: Vec<u64> = (0..5)
            .map(|_| {
                let g = s.install(());
                s.lose(g, "x");
                g
            })
            .collect();
        assert!(gens.windows(2).all(|w| w[0] < w[1]), "{gens:?}");
    }
}
