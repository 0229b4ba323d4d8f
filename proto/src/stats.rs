//! Latency windows (the most recent samples of one path and their p50/p99) and Prometheus
//! latency histograms.
//!
//! Guards: the signer and the node report the same quantities the same way (nearest rank over
//! the last [`WINDOW`] samples, histograms in one text format), so a node can add the signer's
//! signing time to its own round trip and compare the sum with nodeos's timeout.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// How many recent samples a window keeps.
pub const WINDOW: usize = 4096;

/// p50 and p99 of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantiles {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// How many samples.
    pub count: usize,
}

/// Nearest-rank quantiles of `samples` (reordered in place); `None` when empty. Two linear
/// selections, not a sort: a full window costs ~10 µs, not ~100 (ListKeys reports one per key).
pub fn quantiles(samples: &mut [Duration]) -> Option<Quantiles> {
    let n = samples.len();
    if n == 0 {
        return None;
    }
    let index = |q: f64| ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    let (i50, i99) = (index(0.50), index(0.99));
    let p99 = *samples.select_nth_unstable(i99).1;
    // Everything before i99 is now at most p99, and holds the i50-th smallest.
    let p50 = if i50 < i99 {
        *samples[..i99].select_nth_unstable(i50).1
    } else {
        p99
    };
    Some(Quantiles { p50, p99, count: n })
}

/// The last [`WINDOW`] samples of one path.
#[derive(Debug, Default)]
pub struct Window {
    recent: Mutex<VecDeque<Duration>>,
}

impl Window {
    /// Records one sample, dropping the oldest when full.
    pub fn record(&self, d: Duration) {
        let mut r = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if r.len() == WINDOW {
            r.pop_front();
        }
        r.push_back(d);
    }

    /// Quantiles over the window (`None` before the first sample).
    pub fn quantiles(&self) -> Option<Quantiles> {
        let mut v: Vec<Duration> = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        quantiles(&mut v)
    }
}

/// Microseconds, saturating at `u32::MAX` (for wire fields).
pub fn micros_u32(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// A cumulative latency histogram over fixed bucket bounds in microseconds, rendered in
/// seconds in the Prometheus text format.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds_us: &'static [u64],
    buckets: Vec<u64>,
    count: u64,
    sum_us: u64,
}

impl Histogram {
    /// An empty histogram with upper bounds `bounds_us` (ascending).
    pub fn new(bounds_us: &'static [u64]) -> Self {
        Histogram {
            bounds_us,
            buckets: vec![0; bounds_us.len()],
            count: 0,
            sum_us: 0,
        }
    }

    /// Records one sample of `us` microseconds.
    pub fn record_us(&mut self, us: u64) {
        for (n, bound) in self.buckets.iter_mut().zip(self.bounds_us) {
            if us <= *bound {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// How many samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `_bucket`, `_sum` and `_count` lines of series `name`, with `labels`
    /// (`k="v",...`, or empty) on every line. The caller writes `# HELP` and `# TYPE`.
    pub fn render(&self, name: &str, labels: &str, out: &mut String) {
        let sep = if labels.is_empty() { "" } else { "," };
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        for (bound, n) in self.bounds_us.iter().zip(&self.buckets) {
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn selection_agrees_with_sorting() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for n in [1usize, 2, 3, 50, 99, 100, 101, 4096] {
            let v: Vec<Duration> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    Duration::from_nanos(seed >> 44)
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_unstable();
            let at = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
            let q = quantiles(&mut v.clone()).unwrap();
            assert_eq!((q.p50, q.p99, q.count), (at(0.5), at(0.99), n), "n = {n}");
        }
    }

    #[test]
    fn nearest_rank_quantiles() {
        let mut v: Vec<Duration> = (1..=100).map(ms).collect();
        let q = quantiles(&mut v).unwrap();
        assert_eq!((q.p50, q.p99, q.count), (ms(50), ms(99), 100));
        assert_eq!(quantiles(&mut []), None);
        let q = quantiles(&mut [ms(7)]).unwrap();
        assert_eq!((q.p50, q.p99), (ms(7), ms(7)));
    }

    #[test]
    fn the_window_keeps_the_most_recent_samples() {
        let w = Window::default();
        assert_eq!(w.quantiles(), None);
        for _ in 0..WINDOW {
            w.record(ms(100));
        }
        for _ in 0..WINDOW {
            w.record(ms(1));
        }
        let q = w.quantiles().unwrap();
        assert_eq!((q.p99, q.count), (ms(1), WINDOW));
    }

    #[test]
    fn histograms_render_cumulative_buckets_in_seconds() {
        let mut h = Histogram::new(&[500, 1_000]);
        for us in [400, 900, 2_000] {
            h.record_us(us);
        }
        let mut out = String::new();
        h.render("x_seconds", "", &mut out);
        assert_eq!(
            out,
            "x_seconds_bucket{le=\"0.0005\"} 1\nx_seconds_bucket{le=\"0.001\"} 2\n\
             x_seconds_bucket{le=\"+Inf\"} 3\nx_seconds_sum 0.0033\nx_seconds_count 3\n"
        );
        let mut out = String::new();
        h.render("x_seconds", "kind=\"a\"", &mut out);
        assert!(
            out.contains("x_seconds_bucket{kind=\"a\",le=\"0.001\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_sum{kind=\"a\"} 0.0033\n"), "{out}");
        assert_eq!(h.count(), 3);
    }
}
