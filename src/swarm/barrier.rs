//! Collide barriers: connections park the final bytes of their upgrade requests here, and
//! at the release instant one task writes them all back to back.
//!
//! Waking every connection task and letting each write its own bytes costs a scheduler
//! round per connection (about 10 µs each on a small machine: ~1 ms for 100). Writing the
//! parked bytes from one loop through duplicated socket handles costs one `send` each, so
//! the release spread is the length of that loop. TLS connections cannot be written from
//! outside their stream (the bytes must be encrypted in order), so they are woken instead.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A request tail parked for direct release.
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

/// One collide barrier at run time.
pub(crate) struct Barrier {
    /// Cancelled after the release: wakes every held connection.
    pub token: CancellationToken,
    /// When it fired, µs from `t0` (`u64::MAX` until then).
    pub fired_us: AtomicU64,
    parked: Mutex<Vec<Parked>>,
}

impl Barrier {
    pub fn new(token: CancellationToken) -> Arc<Self> {
        Arc::new(Barrier {
            token,
            fired_us: AtomicU64::new(u64::MAX),
            parked: Mutex::new(Vec::new()),
        })
    }

    /// Parks `tail` for `socket` (a duplicate of the connection's descriptor). Returns
    /// false when the barrier has already fired: the caller writes the bytes itself.
    pub fn park(
        &self,
        socket: std::net::TcpStream,
        tail: Vec<u8>,
        sent_at: Arc<OnceLock<Instant>>,
    ) -> Option<ParkedTail> {
        let mut parked = self.parked.lock().ok()?;
        if self.token.is_cancelled() {
            return None;
        }
        let handle = ParkedTail::default();
        parked.push(Parked {
            socket,
            tail,
            written: handle.written.clone(),
            sent_at,
        });
        Some(handle)
    }

    /// Writes every parked tail, then wakes everyone. A tail that does not go out whole in
    /// one non-blocking write is left to its connection (its `sent_at` stays unset).
    pub fn release(&self) {
        if let Ok(mut parked) = self.parked.lock() {
            for p in parked.iter_mut() {
                if let Ok(n) = p.socket.write(&p.tail) {
                    p.written.store(n, Ordering::Release);
                    if n == p.tail.len() {
                        let _ = p.sent_at.set(Instant::now());
                    }
                }
            }
            // Close the duplicates now: the connections own their sockets.
            parked.clear();
            // Still under the lock: a `park` waiting on it must see the release and write
            // its own tail, not park one nobody will send.
            self.token.cancel();
        }
        self.token.cancel();
    }
}
