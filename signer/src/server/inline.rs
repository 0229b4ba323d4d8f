//! Where a signing request runs on the daemon's multi-thread runtime.
//!
//! Handing the worker's tasks on first (`block_in_place`) wakes another thread on every
//! request — on a 2-vCPU machine that costs a sequential signer about a tenth of its latency
//! (issue 14's measurements in the README) — so the one request in flight runs on its worker as
//! it is (*inline*), provided:
//! - no other signing request is in flight when it starts (a counter every signing request
//!   holds while it runs): so at most one worker is ever held this way, and a burst of
//!   concurrent requests hands off and shares the audit log's group commit;
//! - the runtime has another worker;
//! - the watermarks are this process's own files (`!shared()`): a shared store's reservation
//!   is network round trips, and never holds a worker.
//!
//! Guards: other clients are not held behind an inline request for much longer than
//! [`RESCUE_AFTER`] (best effort: the watchdog's sleeps overshoot, and the OS scheduler may
//! add to it). The worker that takes a request is usually the one that holds tokio's I/O
//! driver, while its idle sibling waits on a condvar and is not woken by anything until a task
//! lands in a run queue; so a watchdog thread watches the inline request
//! and, once it has run for [`RESCUE_AFTER`], spawns an empty task into the runtime from
//! outside: tokio wakes the idle worker for it, which then finds the driver free and serves
//! every other connection. `a_stuck_signing_request_stalls_no_other_client`
//! (tests/write_ahead.rs) holds this against tokio's behaviour, with the watchdog asleep when
//! the request arrives. A request that ends sooner (a
//! software key and a local sync take ~0.5 ms) wakes nobody. Not covered: a task woken during
//! the inline request's own poll sits in its worker's LIFO slot, which tokio never lets
//! another worker take, so it waits for the request (in practice the same client's HTTP/2
//! connection task). The watchdog serves the runtime it was started on; a request on any other
//! runtime hands off.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

/// How long an inline request runs before another worker is woken for the other clients. The
/// watchdog wakes about once per this while requests flow (each wake of a thread costs ~25 µs
/// of CPU on this project's VM: at 1 ms that was ~6 % of a sequential signer's CPU), and a
/// request it rescues pays for the woken worker (a K1 block on SoftHSM2, 2–3 ms with two
/// attempts at once on both vCPUs: at 2 ms its ratio to the reference was 1.09–1.36, at 5 ms
/// 1.02–1.15). Software keys and P-256 blocks end well before it.
const RESCUE_AFTER: Duration = Duration::from_millis(5);
/// Looks without an inline request running after which the watchdog sleeps until the next one
/// (a look is at most [`RESCUE_AFTER`] after the one before: about a second).
const IDLE_LOOKS: u32 = {
    let looks = 1_000_000 / RESCUE_AFTER.as_micros();
    if looks == 0 { 1 } else { looks as u32 }
};

/// The inline gate and its watchdog.
#[derive(Debug)]
pub(super) struct Inline {
    /// Signing requests in flight (inline or handed off).
    in_flight: AtomicUsize,
    /// Whether requests may run inline at all (the watermark store is local).
    allowed: bool,
    /// When the inline request now running started (ns after `epoch`, never 0); 0 when none.
    since: AtomicU64,
    /// The `since` of the last inline request the watchdog woke a worker for.
    rescued: AtomicU64,
    epoch: Instant,
    /// The watchdog thread and the runtime it serves, started with the first inline request
    /// (`None`: it could not be started, and no request runs inline).
    watchdog: OnceLock<Option<(std::thread::Thread, tokio::runtime::Id)>>,
    /// Whether the watchdog sleeps until the next inline request.
    parked: AtomicBool,
}

/// One signing request counted in [`Inline::in_flight`] until it is dropped (unwinding too).
pub(super) struct Counted<'a>(&'a Inline);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An inline request running: cleared from [`Inline::since`] when dropped (unwinding too).
struct Running<'a>(&'a Inline);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.since.store(0, Ordering::Release);
    }
}

impl Inline {
    pub(super) fn new(allowed: bool) -> Self {
        Inline {
            in_flight: AtomicUsize::new(0),
            allowed,
            since: AtomicU64::new(0),
            rescued: AtomicU64::new(0),
            epoch: Instant::now(),
            watchdog: OnceLock::new(),
            parked: AtomicBool::new(false),
        }
    }

    /// Counts a request in; `(guard, whether it runs inline)` for a runtime with `workers`.
    pub(super) fn enter(&self, workers: usize) -> (Counted<'_>, bool) {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        (Counted(self), self.allowed && before == 0 && workers > 1)
    }

    /// Runs `f` on this worker, watched (see the module), or hands the worker's tasks on first
    /// (`block_in_place`) when no watchdog could be started. Call only when [`Inline::enter`]
    /// said inline, from a worker of `rt`.
    pub(super) fn run<T>(
        self: &Arc<Self>,
        rt: &tokio::runtime::Handle,
        f: impl FnOnce() -> T,
    ) -> T {
        let watchdog = self
            .watchdog
            .get_or_init(|| start_watchdog(self, rt.clone()));
        let Some(watchdog) = watchdog
            .as_ref()
            .filter(|(_, id)| *id == rt.id())
            .map(|(thread, _)| thread)
        else {
            return tokio::task::block_in_place(f);
        };
        let started = self.now().max(1);
        // SeqCst with the watchdog's `parked` then `since`: one of the two sees the other.
        self.since.store(started, Ordering::SeqCst);
        let _running = Running(self);
        if self.parked.load(Ordering::SeqCst) {
            watchdog.unpark();
        }
        f()
    }

    /// Nanoseconds since `epoch`.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// One look of the watchdog at `now` (ns after `epoch`): whether to wake a worker for the
    /// inline request running (at most once per request), and, when one runs, how long to
    /// sleep before the next look — until that request is [`RESCUE_AFTER`] old, or
    /// [`RESCUE_AFTER`] once it has been rescued. With no request running the next look is
    /// [`RESCUE_AFTER`] away: a request that starts in between is then at most that old. So the
    /// watchdog wakes about once per [`RESCUE_AFTER`] while requests flow, not once per tick.
    fn look(&self, now: u64) -> (bool, Option<Duration>) {
        let since = self.since.load(Ordering::Acquire);
        if since == 0 {
            return (false, None);
        }
        let after = RESCUE_AFTER.as_nanos() as u64;
        let age = now.saturating_sub(since);
        if age < after {
            return (false, Some(Duration::from_nanos(after - age)));
        }
        (
            self.rescued.swap(since, Ordering::AcqRel) != since,
            Some(RESCUE_AFTER),
        )
    }
}

impl Drop for Inline {
    /// Wakes a sleeping watchdog so that it finds the gate gone and ends.
    fn drop(&mut self) {
        if let Some(Some((thread, _))) = self.watchdog.get() {
            thread.unpark();
        }
    }
}

/// The watchdog thread: ends when the gate is gone.
fn start_watchdog(
    inline: &Arc<Inline>,
    rt: tokio::runtime::Handle,
) -> Option<(std::thread::Thread, tokio::runtime::Id)> {
    let id = rt.id();
    let weak: Weak<Inline> = Arc::downgrade(inline);
    let spawned = std::thread::Builder::new()
        .name("oryx-inline-watchdog".into())
        .spawn(move || {
            let mut idle = 0u32;
            loop {
                let Some(inline) = weak.upgrade() else { return };
                let (wake, sleep) = inline.look(inline.now());
                if wake {
                    // From outside the runtime: tokio queues it and wakes an idle worker.
                    drop(rt.spawn(async {}));
                }
                match sleep {
                    Some(_) => idle = 0,
                    None => idle += 1,
                }
                if idle >= IDLE_LOOKS {
                    idle = 0;
                    inline.parked.store(true, Ordering::SeqCst);
                    // A request that stored `since` before this load is seen here; one after
                    // it sees `parked` and unparks (park then returns at once).
                    if inline.since.load(Ordering::SeqCst) == 0 {
                        drop(inline);
                        std::thread::park();
                    } else {
                        drop(inline);
                    }
                    if let Some(inline) = weak.upgrade() {
                        inline.parked.store(false, Ordering::SeqCst);
                    }
                    continue;
                }
                drop(inline);
                std::thread::sleep(sleep.unwrap_or(RESCUE_AFTER));
            }
        });
    match spawned {
        Ok(handle) => Some((handle.thread().clone(), id)),
        // No thread: nothing would watch, so every request hands off instead.
        Err(e) => {
            tracing::error!(error = %e, "cannot start the inline watchdog: signing requests hand off");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_request_on_a_local_store_with_a_spare_worker_runs_inline() {
        let gate = Inline::new(true);
        let (first, inline) = gate.enter(2);
        assert!(inline, "the only request in flight runs inline");
        let (second, inline) = gate.enter(2);
        assert!(!inline, "a second one in flight hands off");
        drop(first);
        let (third, inline) = gate.enter(2);
        assert!(!inline, "still one in flight (the second)");
        drop((second, third));
        assert!(!gate.enter(1).1, "no worker would be left");
        assert!(gate.enter(2).1, "counted out again on drop");
        assert!(
            !Inline::new(false).enter(2).1,
            "a shared store never runs inline"
        );
    }

    #[test]
    fn the_watchdog_wakes_a_worker_once_per_long_request() {
        let gate = Inline::new(true);
        let after = RESCUE_AFTER.as_nanos() as u64;
        assert_eq!(gate.look(after * 10), (false, None), "no request running");
        gate.since.store(1_000, Ordering::Release);
        assert_eq!(
            gate.look(900),
            (false, Some(RESCUE_AFTER)),
            "a request stored after the clock was read: just started"
        );
        assert_eq!(
            gate.look(1_000 + after - 300),
            (false, Some(Duration::from_nanos(300))),
            "not yet: the next look when it is due"
        );
        assert_eq!(
            gate.look(1_000 + after),
            (true, Some(RESCUE_AFTER)),
            "long enough"
        );
        assert_eq!(
            gate.look(1_000 + after * 5),
            (false, Some(RESCUE_AFTER)),
            "once per request"
        );
        gate.since.store(9_000_000, Ordering::Release);
        assert_eq!(
            gate.look(9_000_000 + after),
            (true, Some(RESCUE_AFTER)),
            "the next long request"
        );
    }
}
