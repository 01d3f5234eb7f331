//! Collide barriers: connections park the final bytes of their upgrade requests here, and
//! at the release instant one task writes them all back to back.
//!
//! Waking every connection task and letting each write its own bytes costs a scheduler
//! round per connection (about 10 µs each on a small machine: ~1 ms for 100). Writing the
//! parked bytes from one loop through duplicated socket handles costs one `send` each, so
//! the release spread is the length of that loop. TLS connections cannot be written from
//! outside their stream (the bytes must be encrypted in order), so they are woken instead.
//!
//! The same barrier serves message rendezvous: connections park the last byte of their
//! next frame, and the release comes from the last expected arrival (a quorum) or from a
//! timeout after the first one, instead of from the plan's clock.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A tail parked for direct release.
struct Parked {
    socket: std::net::TcpStream,
    tail: Vec<u8>,
    /// How much of the tail the release wrote; the connection writes the rest, if any.
    written: Arc<AtomicUsize>,
    sent_at: Arc<OnceLock<Instant>>,
}

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
    /// When it fired, µs from `t0` (`u64::MAX` until then).
    pub fired_us: AtomicU64,
    t0: Instant,
    inner: Mutex<Inner>,
    quorum: Option<Quorum>,
    /// A rendezvous released by its timeout rather than by its last arrival.
    pub timed_out: AtomicBool,
    timer_started: AtomicBool,
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
        Arc::new(Barrier {
            token,
            fired_us: AtomicU64::new(u64::MAX),
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

    /// Releases the barrier once: stamps the instant, writes every parked tail, wakes
    /// everyone. Later calls do nothing.
    pub fn fire(&self, timed_out: bool) {
        let now = self.t0.elapsed().as_micros() as u64;
        if self
            .fired_us
            .compare_exchange(u64::MAX, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
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
            for p in inner.parked.iter_mut() {
                if let Ok(n) = p.socket.write(&p.tail) {
                    p.written.store(n, Ordering::Release);
                    if n == p.tail.len() {
                        let _ = p.sent_at.set(Instant::now());
                    }
                }
            }
            // Close the duplicates now: the connections own their sockets.
            inner.parked.clear();
            // Still under the lock: a `park` waiting on it must see the release and write
            // its own tail, not park one nobody will send.
            self.token.cancel();
        }
        self.token.cancel();
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
