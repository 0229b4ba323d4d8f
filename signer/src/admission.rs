//! Admission of TCP connections before their TLS handshake.
//!
//! Guards: an unauthenticated peer never holds what an authenticated client needs. A connection
//! takes a *handshake slot* until its client certificate is verified, and a connection slot only
//! after (see `server::accept_loop`). Handshake slots are bounded in all and per source address;
//! when either bound is reached, the *oldest* pending handshake (of that source, or of all) is
//! dropped to make room, so a flood of silent or slow connections cannot lock out a client whose
//! handshake takes milliseconds: to keep one out, an attacker would have to open connections
//! faster than the bound per handshake time.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Handshakes pending at once, from every source.
pub const MAX_HANDSHAKES: usize = 128;
/// Handshakes pending at once from one source address.
pub const MAX_HANDSHAKES_PER_SOURCE: usize = 32;

/// The pending handshakes.
#[derive(Debug)]
pub struct Handshakes {
    max: usize,
    per_source: usize,
    state: Mutex<State>,
    evicted: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    /// By admission order: the first is the oldest. Dropping the sender evicts.
    pending: BTreeMap<u64, (IpAddr, oneshot::Sender<()>)>,
}

/// One pending handshake's slot: released when dropped.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    owner: Arc<Handshakes>,
    evicted: Option<oneshot::Receiver<()>>,
}

impl Handshakes {
    /// At most `max` pending handshakes, `per_source` of them from one address.
    pub fn new(max: usize, per_source: usize) -> Arc<Self> {
        Arc::new(Handshakes {
            max: max.max(1),
            per_source: per_source.max(1),
            state: Mutex::new(State::default()),
            evicted: AtomicU64::new(0),
        })
    }

    /// A slot for a new connection from `source`, making room by evicting the oldest pending
    /// handshake of that source (when it is at its bound) or of all (when they are). Returns
    /// the slot and whether something was evicted.
    pub fn admit(self: &Arc<Self>, source: IpAddr) -> (Slot, bool) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let from_source = s.pending.values().filter(|(a, _)| *a == source).count();
        let victim = if from_source >= self.per_source {
            s.pending
                .iter()
                .find(|(_, (a, _))| *a == source)
                .map(|(id, _)| *id)
        } else if s.pending.len() >= self.max {
            s.pending.keys().next().copied()
        } else {
            None
        };
        if let Some(id) = victim {
            s.pending.remove(&id);
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let id = s.next;
        s.next += 1;
        let (tx, rx) = oneshot::channel();
        s.pending.insert(id, (source, tx));
        (
            Slot {
                id,
                owner: Arc::clone(self),
                evicted: Some(rx),
            },
            victim.is_some(),
        )
    }

    /// Handshakes pending now.
    pub fn pending(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pending
            .len()
    }

    /// Handshakes evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}

impl Slot {
    /// Resolves when this handshake was evicted to make room for a newer one.
    pub async fn evicted(&mut self) {
        if let Some(rx) = self.evicted.as_mut() {
            let _ = rx.await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.owner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pending
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[tokio::test]
    async fn the_oldest_handshake_makes_room_per_source_and_in_all() {
        let h = Handshakes::new(4, 2);
        let (mut a1, _) = h.admit(ip(1));
        let (a2, _) = h.admit(ip(1));
        // The source is at its bound: its oldest goes, not another source's.
        let (a3, evicted) = h.admit(ip(1));
        assert!(evicted);
        a1.evicted().await;
        let (b1, _) = h.admit(ip(2));
        let (mut b2, _) = h.admit(ip(3));
        assert_eq!(h.pending(), 4);
        // Full: the oldest of all (a2) goes.
        let (_c, evicted) = h.admit(ip(4));
        assert!(evicted);
        assert_eq!(h.pending(), 4);
        assert_eq!(h.evicted(), 2);
        // A finished handshake frees its slot; the others are not evicted.
        drop(a3);
        drop(b1);
        assert_eq!(h.pending(), 2);
        let (_d, evicted) = h.admit(ip(5));
        assert!(!evicted);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), b2.evicted())
                .await
                .is_err(),
            "b2 still pending"
        );
        drop(a2);
    }
}
