//! What the reference server saw, as cheap atomic counters.
//!
//! Counters are only read for progress lines and test assertions, so they use
//! relaxed atomics. Lifecycle changes (accept, refusal, session start/end,
//! registry change, overflow; not per-frame counters) also bump a `watch`
//! generation, which lets a caller await a condition instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::watch;

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServerStats {
    /// Upgrades answered with 101.
    pub accepted: u64,
    /// Upgrades refused with 401 (missing, malformed, forged, expired token).
    pub rejected_unauthorized: u64,
    /// Upgrades refused with 409 because the token's `jti` was live.
    pub rejected_in_use: u64,
    /// Upgrades refused for another reason (wrong path: 404).
    pub rejected_other: u64,
    /// TLS or WebSocket handshakes that failed or timed out (client went away, garbage).
    pub handshake_failures: u64,
    /// JSON frames written to clients (every server frame, errors included).
    pub events_sent: u64,
    /// Connections past the upgrade and not yet finished.
    pub live: u64,
    /// Connections closed with 1013 because their outbound queue overflowed.
    pub overflows: u64,
    /// Text or binary frames received from clients.
    pub messages_received: u64,
    /// Runs started (one per accepted `user_message`).
    pub runs_started: u64,
    /// `jti` entries currently held in the session registry.
    pub registered: u64,
}

/// The live counters behind [`ServerStats`].
#[derive(Debug)]
pub(crate) struct Stats {
    accepted: AtomicU64,
    rejected_unauthorized: AtomicU64,
    rejected_in_use: AtomicU64,
    rejected_other: AtomicU64,
    handshake_failures: AtomicU64,
    events_sent: AtomicU64,
    live: AtomicU64,
    overflows: AtomicU64,
    messages_received: AtomicU64,
    runs_started: AtomicU64,
    changed: watch::Sender<u64>,
}

/// Which lifecycle counter to bump.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Accepted,
    RejectedUnauthorized,
    RejectedInUse,
    RejectedOther,
    HandshakeFailure,
    Overflow,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            accepted: AtomicU64::new(0),
            rejected_unauthorized: AtomicU64::new(0),
            rejected_in_use: AtomicU64::new(0),
            rejected_other: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
            events_sent: AtomicU64::new(0),
            live: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            runs_started: AtomicU64::new(0),
            changed: watch::Sender::new(0),
        }
    }

    pub(crate) fn bump(&self, counter: Counter) {
        let cell = match counter {
            Counter::Accepted => &self.accepted,
            Counter::RejectedUnauthorized => &self.rejected_unauthorized,
            Counter::RejectedInUse => &self.rejected_in_use,
            Counter::RejectedOther => &self.rejected_other,
            Counter::HandshakeFailure => &self.handshake_failures,
            Counter::Overflow => &self.overflows,
        };
        cell.fetch_add(1, Ordering::Relaxed);
        self.notify();
    }

    /// Wakes everyone waiting in [`Stats::subscribe`].
    pub(crate) fn notify(&self) {
        self.changed
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub(crate) fn event_sent(&self) {
        self.events_sent.fetch_add(1, Ordering::Relaxed);
    }

    // Per-frame counters stay lock-free: no `notify` on the hot path.
    pub(crate) fn message_received(&self) {
        self.messages_received.fetch_add(1, Ordering::Relaxed);
    }

    /// One per request, not per frame: cheap enough to wake waiters (tests wait on it).
    pub(crate) fn run_started(&self) {
        self.runs_started.fetch_add(1, Ordering::Relaxed);
        self.notify();
    }

    /// Counts a live session until the returned guard drops.
    pub(crate) fn live(&self) -> LiveGuard<'_> {
        self.live.fetch_add(1, Ordering::Relaxed);
        self.notify();
        LiveGuard { stats: self }
    }

    pub(crate) fn snapshot(&self, registered: usize) -> ServerStats {
        let get = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        ServerStats {
            accepted: get(&self.accepted),
            rejected_unauthorized: get(&self.rejected_unauthorized),
            rejected_in_use: get(&self.rejected_in_use),
            rejected_other: get(&self.rejected_other),
            handshake_failures: get(&self.handshake_failures),
            events_sent: get(&self.events_sent),
            live: get(&self.live),
            overflows: get(&self.overflows),
            messages_received: get(&self.messages_received),
            runs_started: get(&self.runs_started),
            registered: u64::try_from(registered).unwrap_or(u64::MAX),
        }
    }
}

/// Decrements `live` however the session ends.
pub(crate) struct LiveGuard<'a> {
    stats: &'a Stats,
}

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.stats.live.fetch_sub(1, Ordering::Relaxed);
        self.stats.notify();
    }
}
