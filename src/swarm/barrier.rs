//! Collide barriers: connections park the final bytes of their upgrade requests here, and
//! at the release instant they are written back to back ([`super::release`]).
//!
//! Waking every connection task and letting each write its own bytes costs a scheduler
//! round per connection (about 10 µs each on a small machine: ~1 ms for 100). Writing the
//! parked bytes from one loop through duplicated socket handles costs one `send` each, so
//! the release spread is the length of that loop (shared with helper threads where the
//! machine has cores to spare). TLS connections cannot be written from
//! outside their stream (the bytes must be encrypted in order), so they are woken instead.
//!
//! The same barrier serves message rendezvous: connections park their next frame (a long
//! one's last byte), and the release comes from the last expected arrival (a quorum) or from a
//! timeout after the first one, instead of from the plan's clock.

use super::release::{self, Parked};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a connection keeps of a parked tail.
#[derive(Clone, Default)]
pub(crate) struct ParkedTail {
    pub written: Arc<AtomicUsize>,
}

/// A connection that arrived at a rendezvous before its release.
#[derive(Clone)]
pub(crate) struct Arrival {
    pub conn: u32,
    /// When its held bytes went out (set by the release, or by the connection itself when
    /// it had to write them: TLS, or a partial write).
    pub sent_at: Arc<OnceLock<Instant>>,
}

/// When a rendezvous releases without waiting for the clock.
pub(crate) struct Quorum {
    /// Arrivals that release everyone present.
    pub count: usize,
    /// Connections whose scripts have this meeting.
    pub members: usize,
    /// Members of the point counted absent (they reached it without an open connection):
    /// nobody waits for them. Shared by every meeting of the point, and read at each check.
    pub absent: Arc<AtomicUsize>,
    /// Longest wait from the first arrival.
    pub timeout: Duration,
}

#[derive(Default)]
struct Inner {
    parked: Vec<Parked>,
    arrivals: Vec<Arrival>,
}

/// One collide barrier or message rendezvous at run time.
pub(crate) struct Barrier {
    /// Cancelled after the release: wakes every held connection.
    pub token: CancellationToken,
    /// When it fired (its first tail went out), µs from `t0` (`u64::MAX` until then).
    pub fired_us: AtomicU64,
    /// Set by the first [`Barrier::fire`]: the release is under way.
    firing: AtomicBool,
    t0: Instant,
    inner: Mutex<Inner>,
    quorum: Option<Quorum>,
    /// A rendezvous released by its timeout rather than by its last arrival.
    pub timed_out: AtomicBool,
    timer_started: AtomicBool,
}

/// When it fired and whether by its timeout: what a connection's state shows of the
/// meeting it holds a frame for (the rest is the meeting's own).
impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::sync::atomic::Ordering::Relaxed;
        f.debug_struct("Barrier")
            .field("fired_us", &self.fired_us.load(Relaxed))
            .field("timed_out", &self.timed_out.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl Barrier {
    /// A collide barrier: released by the plan's clock ([`Barrier::fire`]).
    pub fn new(token: CancellationToken, t0: Instant) -> Arc<Self> {
        Self::build(token, t0, None)
    }

    /// A message rendezvous: released by its quorum or its timeout.
    pub fn rendezvous(token: CancellationToken, t0: Instant, quorum: Quorum) -> Arc<Self> {
        Self::build(token, t0, Some(quorum))
    }

    fn build(token: CancellationToken, t0: Instant, quorum: Option<Quorum>) -> Arc<Self> {
        release::start_helpers();
        Arc::new(Barrier {
            token,
            fired_us: AtomicU64::new(u64::MAX),
            firing: AtomicBool::new(false),
            t0,
            inner: Mutex::new(Inner::default()),
            quorum,
            timed_out: AtomicBool::new(false),
            timer_started: AtomicBool::new(false),
        })
    }

    /// Parks `tail` for `socket` (a duplicate of the connection's descriptor; `None` for
    /// TLS, whose connection is woken to write it). `conn` counts an arrival at a
    /// rendezvous; the last one expected releases everyone, itself included, before this
    /// returns. `None` when the barrier has already fired: the caller writes the bytes
    /// itself.
    pub fn park(
        &self,
        socket: Option<std::net::TcpStream>,
        tail: Vec<u8>,
        sent_at: Arc<OnceLock<Instant>>,
        conn: Option<u32>,
    ) -> Option<ParkedTail> {
        let handle = ParkedTail::default();
        let full = {
            let mut inner = self.inner.lock().ok()?;
            if self.token.is_cancelled() {
                return None;
            }
            if let Some(conn) = conn {
                inner.arrivals.push(Arrival {
                    conn,
                    sent_at: sent_at.clone(),
                });
            }
            if let Some(socket) = socket {
                inner.parked.push(Parked {
                    socket,
                    tail,
                    written: handle.written.clone(),
                    sent_at,
                });
            }
            self.full(&inner)
        };
        if full {
            self.fire(false);
        }
        Some(handle)
    }

    /// Releases a rendezvous whose quorum a change of the absent count completed (or
    /// does nothing).
    pub fn recheck(&self) {
        let full = match self.inner.lock() {
            Ok(inner) if !self.token.is_cancelled() => self.full(&inner),
            _ => false,
        };
        if full {
            self.fire(false);
        }
    }

    /// Whether every arrival the quorum waits for is here.
    fn full(&self, inner: &Inner) -> bool {
        self.quorum.as_ref().is_some_and(|q| {
            let can_come = q.members.saturating_sub(q.absent.load(Ordering::Acquire));
            inner.arrivals.len() >= q.count.min(can_come)
        })
    }

    /// Starts the rendezvous timeout (once, at the first arrival): when it runs out, those
    /// present are released. Stops with the run.
    pub fn start_timer(self: &Arc<Self>) {
        let Some(quorum) = &self.quorum else { return };
        if self.timer_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let at = super::later(Instant::now(), quorum.timeout);
        let barrier = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = barrier.token.cancelled() => {}
                _ = tokio::time::sleep_until(at) => barrier.fire(true),
            }
        });
    }

    /// Releases the barrier once: writes every parked tail, stamps the instant the first
    /// one goes out, wakes everyone. Later calls do nothing.
    pub fn fire(&self, timed_out: bool) {
        if self.firing.swap(true, Ordering::AcqRel) {
            return;
        }
        if timed_out {
            self.timed_out.store(true, Ordering::Release);
        }
        self.release();
    }

    /// Writes every parked tail, then wakes everyone. A tail that does not go out whole in
    /// one non-blocking write is left to its connection (its `sent_at` stays unset).
    fn release(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            // The instant is stamped just before the first tail goes out; the duplicates
            // close once written (the connections own their sockets).
            release::write_all(std::mem::take(&mut inner.parked), || self.stamp());
            // Still under the lock: a `park` waiting on it must see the release and write
            // its own tail, not park one nobody will send.
            self.token.cancel();
        }
        self.stamp();
        self.token.cancel();
    }

    /// Records the release instant (once).
    fn stamp(&self) {
        let now = self.t0.elapsed().as_micros() as u64;
        let _ = self
            .fired_us
            .compare_exchange(u64::MAX, now, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The connections parked before the release.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.inner
            .lock()
            .map(|i| i.arrivals.clone())
            .unwrap_or_default()
    }

    /// The quorum, for a rendezvous.
    pub fn quorum(&self) -> Option<&Quorum> {
        self.quorum.as_ref()
    }
}
