//! Failing fast on a target that is not there, or that takes none of the run's tokens.
//!
//! A closed port (a wrong URL, a server not started) refuses every TCP connection at
//! once, and nothing in the rest of the plan can be judged: a run under a long ramp would
//! otherwise wait out the whole ramp before saying so. Once the first
//! [`REFUSALS`] attempts were all refused at TCP and none connected, with more planned,
//! the run stops; its verdict is the target's (unusable) and says it stopped early. A
//! target that took one TCP connection first (a server that went down mid-run) is never
//! stopped this way: its later refusals are findings of the run.
//!
//! A wrong secret (or issuer, audience, key) is the same at the upgrade: the server
//! refuses every valid token's upgrade as unauthorized (HTTP 401 or 403, or a status
//! `[oracles] reject.http` declares). Once the first [`REFUSALS`] valid tokens' upgrades
//! were all refused so, and none got its 101, with more valid tokens' connections planned,
//! the run stops; its verdict is the scenario's (auth misconfigured). A server that
//! upgraded one valid token's connection first is never stopped this way; nor is one that
//! refuses after the upgrade (a Close 1008 or 4401), whose refusals are judged with the
//! rest of the run. Forged tokens count for neither: refusing them is what a server does.

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
    /// The same for valid tokens' upgrades refused as unauthorized, before any valid
    /// token's upgrade got its 101.
    planned_valid: u64,
    auth_refused: AtomicU64,
    upgraded_valid: AtomicBool,
    auth_fired: AtomicBool,
    stop: CancellationToken,
}

impl FailFast {
    /// For a plan of `planned` connections, `planned_valid` of them presenting a token a
    /// correct server accepts, whose run `stop` cancels.
    pub fn new(planned: usize, planned_valid: usize, stop: CancellationToken) -> FailFast {
        FailFast {
            planned: planned as u64,
            refused: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            fired: AtomicBool::new(false),
            planned_valid: planned_valid as u64,
            auth_refused: AtomicU64::new(0),
            upgraded_valid: AtomicBool::new(false),
            auth_fired: AtomicBool::new(false),
            stop,
        }
    }

    /// A valid token's upgrade got its 101 (whatever came after it): the server takes the
    /// run's tokens, or judges them after the upgrade.
    pub fn upgraded_valid(&self) {
        if !self.upgraded_valid.load(Relaxed) {
            self.upgraded_valid.store(true, Relaxed);
        }
    }

    /// A valid token's upgrade was refused as unauthorized: stops the run when that makes
    /// [`REFUSALS`] with no valid token upgraded and more valid tokens' connections
    /// planned.
    pub fn auth_refused(&self) {
        let n = self.auth_refused.fetch_add(1, Relaxed) + 1;
        let misconfigured =
            n >= REFUSALS && self.planned_valid > REFUSALS && !self.upgraded_valid.load(Relaxed);
        if misconfigured && !self.auth_fired.swap(true, Relaxed) {
            self.stop.cancel();
        }
    }

    /// How many valid tokens' upgrades had been refused when it stopped the run; `None`
    /// when it did not stop it for that.
    pub fn auth_fired(&self) -> Option<u64> {
        self.auth_fired
            .load(Relaxed)
            .then(|| self.auth_refused.load(Relaxed))
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
        let fail = FailFast::new(200, 200, stop.clone());
        for _ in 0..REFUSALS - 1 {
            fail.refused();
        }
        assert!(!stop.is_cancelled());
        assert_eq!(fail.fired(), None);
        fail.refused();
        assert!(stop.is_cancelled());
        assert_eq!(fail.fired(), Some(REFUSALS));

        let stop = CancellationToken::new();
        let reached = FailFast::new(200, 200, stop.clone());
        reached.connected();
        for _ in 0..3 * REFUSALS {
            reached.refused();
        }
        assert!(!stop.is_cancelled());
        assert_eq!(reached.fired(), None);

        // A plan no larger than the threshold runs to its end.
        let stop = CancellationToken::new();
        let small = FailFast::new(REFUSALS as usize, REFUSALS as usize, stop.clone());
        for _ in 0..REFUSALS {
            small.refused();
        }
        assert!(!stop.is_cancelled());
    }

    #[test]
    fn valid_tokens_refused_before_any_upgrade_stop_the_run_and_after_one_never() {
        let stop = CancellationToken::new();
        let fail = FailFast::new(300, 200, stop.clone());
        for _ in 0..REFUSALS - 1 {
            fail.auth_refused();
        }
        assert!(!stop.is_cancelled());
        fail.auth_refused();
        assert!(stop.is_cancelled());
        assert_eq!(fail.auth_fired(), Some(REFUSALS));
        assert_eq!(fail.fired(), None, "not for the TCP reason");

        let stop = CancellationToken::new();
        let took_one = FailFast::new(300, 200, stop.clone());
        took_one.upgraded_valid();
        for _ in 0..3 * REFUSALS {
            took_one.auth_refused();
        }
        assert!(!stop.is_cancelled());
        assert_eq!(took_one.auth_fired(), None);

        // Few valid tokens among many forged ones: run to the end.
        let stop = CancellationToken::new();
        let few = FailFast::new(300, REFUSALS as usize, stop.clone());
        for _ in 0..REFUSALS {
            few.auth_refused();
        }
        assert!(!stop.is_cancelled());
    }
}
