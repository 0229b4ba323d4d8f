//! The producer's counters and SignBlock latency, for `/metrics` and `/healthz`.
//!
//! Guards: an operator sees a producer that stopped producing (refusals, failed slots, standby)
//! before the chain does.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::failover::Signers;
use crate::latency::Latency;
use crate::observe::Observed;

/// Shared between the producer loop and the metrics endpoint.
pub struct ProduceStats {
    signers: Signers,
    /// Blocks this instance had signed and logged.
    pub produced: AtomicU64,
    /// Blocks another instance had signed identically first (logged here too).
    pub replayed: AtomicU64,
    /// Blocks adopted from followed logs.
    pub adopted: AtomicU64,
    /// Signer refusals.
    pub refused: AtomicU64,
    /// Slots with no block because something failed (signer unreachable, a write, ...).
    pub failed_slots: AtomicU64,
    /// The head's block number.
    pub head: AtomicU64,
    /// Whether this instance is the active producer.
    pub active: AtomicBool,
    /// SignBlock round trips that returned a signature.
    pub sign_block: Latency,
}

impl ProduceStats {
    /// Counters for a producer talking to the signer replicas `signers`.
    pub fn new(signers: Signers) -> Self {
        ProduceStats {
            signers,
            produced: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            adopted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failed_slots: AtomicU64::new(0),
            head: AtomicU64::new(0),
            active: AtomicBool::new(true),
            sign_block: Latency::default(),
        }
    }

    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Observed for ProduceStats {
    fn render_metrics(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP oryx_node_blocks_total Blocks by how they reached this instance's log.\n\
             # TYPE oryx_node_blocks_total counter"
        );
        for (how, c) in [
            ("produced", &self.produced),
            ("replayed", &self.replayed),
            ("adopted", &self.adopted),
        ] {
            let _ = writeln!(
                out,
                "oryx_node_blocks_total{{how=\"{how}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "oryx_node_sign_refusals_total {}\noryx_node_failed_slots_total {}\n\
                          oryx_node_head_block_num {}\noryx_node_active {}",
            self.refused.load(Ordering::Relaxed),
            self.failed_slots.load(Ordering::Relaxed),
            self.head.load(Ordering::Relaxed),
            u8::from(self.active.load(Ordering::Relaxed)),
        );
        self.signers.render_metrics(&mut out);
        self.sign_block.render(
            "oryx_node_sign_block_seconds",
            "SignBlock round trips that returned a signature",
            &mut out,
        );
        out
    }

    fn health(&self) -> Result<(), crate::NodeError> {
        self.signers.health()
    }
}
