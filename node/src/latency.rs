//! The node's own end-to-end latency: a window of recent samples for p50/p99, and a Prometheus
//! histogram.
//!
//! Guards: an operator learns *before* nodeos starts missing blocks that the signing path is
//! slower than `keosd-provider-timeout` (a real YubiHSM 2 needs ~75 ms per ECDSA signature,
//! fifteen times nodeos's default of 5 ms).

use std::sync::Mutex;
use std::time::Duration;

use oryx_proto::stats::{Histogram, Window};
pub use oryx_proto::stats::{Quantiles, WINDOW, quantiles};

/// Histogram bucket bounds in microseconds.
const BUCKETS_US: [u64; 14] = [
    250, 500, 1_000, 2_000, 3_000, 4_000, 5_000, 7_500, 10_000, 25_000, 50_000, 100_000, 250_000,
    1_000_000,
];

/// Latency samples of one path.
pub struct Latency {
    window: Window,
    histogram: Mutex<Histogram>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            window: Window::default(),
            histogram: Mutex::new(Histogram::new(&BUCKETS_US)),
        }
    }
}

impl Latency {
    /// Records one sample.
    pub fn record(&self, d: Duration) {
        self.window.record(d);
        self.histogram
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Quantiles over the recent window.
    pub fn recent(&self) -> Option<Quantiles> {
        self.window.quantiles()
    }

    /// The Prometheus histogram `name` (seconds).
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        self.histogram
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .render(name, "", out);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_histogram_counts_every_sample_and_the_window_only_recent_ones() {
        let l = Latency::default();
        let (slow, fast) = (Duration::from_millis(100), Duration::from_micros(900));
        (0..WINDOW).for_each(|_| l.record(slow));
        (0..WINDOW).for_each(|_| l.record(fast));
        assert_eq!(l.recent().map(|q| q.p99), Some(fast));
        let mut out = String::new();
        l.render("x_seconds", "test", &mut out);
        for want in [
            format!("x_seconds_count {}", 2 * WINDOW),
            format!("x_seconds_bucket{{le=\"0.001\"}} {WINDOW}"),
            format!("x_seconds_bucket{{le=\"+Inf\"}} {}", 2 * WINDOW),
        ] {
            assert!(out.contains(&want), "{want} in {out}");
        }
    }
}
