//! Failing fast on a target that is not there.
//!
//! A closed port (a wrong URL, a server not started) refuses every TCP connection at
//! once, and nothing in the rest of the plan can be judged: a run under a long ramp would
//! otherwise wait out the whole ramp before saying so. Once the first
//! [`REFUSALS`] attempts were all refused at TCP and none connected, with more planned,
//! the run stops; its verdict is the target's (unusable) and says it stopped early. A
//! target that took one TCP connection first (a server that went down mid-run) is never
//! stopped this way: its later refusals are findings of the run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use tokio_util::sync::CancellationToken;

/// How many TCP refusals, with no connection made, stop the run.
pub const REFUSALS: u64 = 10;

/// The run's count of TCP refusals before any connection was made; cancels the run's
/// token once it reaches [`REFUSALS`].
#[derive(Debug)]
pub struct FailFast {
    /// Connections in the plan: a plan of no more than [`REFUSALS`] is never stopped (it
    /// ends as soon anyway).
    planned: u64,
    refused: AtomicU64,
    connected: AtomicBool,
    fired: AtomicBool,
    stop: CancellationToken,
}

impl FailFast {
    /// For a plan of `planned` connections whose run `stop` cancels.
    pub fn new(planned: usize, stop: CancellationToken) -> FailFast {
        FailFast {
            planned: planned as u64,
            refused: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            fired: AtomicBool::new(false),
            stop,
        }
    }

    /// A TCP connection was made (whatever came after it): the target is there.
    pub fn connected(&self) {
        if !self.connected.load(Relaxed) {
            self.connected.store(true, Relaxed);
        }
    }

    /// A TCP connect was refused (ECONNREFUSED): stops the run when that makes
    /// [`REFUSALS`] with none connected and more connections planned.
    pub fn refused(&self) {
        let n = self.refused.fetch_add(1, Relaxed) + 1;
        let unreachable = n >= REFUSALS && self.planned > REFUSALS && !self.connected.load(Relaxed);
        if unreachable && !self.fired.swap(true, Relaxed) {
            self.stop.cancel();
        }
    }

    /// How many refusals there were when it stopped the run; `None` when it did not.
    pub fn fired(&self) -> Option<u64> {
        self.fired.load(Relaxed).then(|| self.refused.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_before_any_connection_stop_the_run_and_after_one_never() {
        let stop = CancellationToken::new();
        let fail = FailFast::new(200, stop.clone());
        for _ in 0..REFUSALS - 1 {
            fail.refused();
        }
        assert!(!stop.is_cancelled());
        assert_eq!(fail.fired(), None);
        fail.refused();
        assert!(stop.is_cancelled());
        assert_eq!(fail.fired(), Some(REFUSALS));

        let stop = CancellationToken::new();
        let reached = FailFast::new(200, stop.clone());
        reached.connected();
        for _ in 0..3 * REFUSALS {
            reached.refused();
        }
        assert!(!stop.is_cancelled());
        assert_eq!(reached.fired(), None);

        // A plan no larger than the threshold runs to its end.
        let stop = CancellationToken::new();
        let small = FailFast::new(REFUSALS as usize, stop.clone());
        for _ in 0..REFUSALS {
            small.refused();
        }
        assert!(!stop.is_cancelled());
    }
}
