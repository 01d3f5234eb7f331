//! Writing the parked tails of a barrier at its release, on more than one core when the
//! machine has one to spare.
//!
//! On loopback a `send` runs the server's receive path inline (TCP input, the wake-up of
//! its poller), so one write of a parked tail costs 2–7 µs and a single loop over 300
//! tails takes 1–2 ms. The receive path of each write runs on the core that wrote it, so
//! the loop is split: the releasing thread takes tails one at a time from the front of the
//! list and helper threads on the other cores take them from the back, until none is left.
//! A helper that wakes late (the kernel has to schedule it) only finds fewer tails left;
//! the release is never slower than one loop. Helpers are plain threads pinned to one core
//! each, started once per process and parked between releases; they are woken before the
//! warm pass ([`warm`]), so they have a core by the time the first tail goes out.
//!
//! What it gives (300 connections idle since their handshakes, loopback, 2 cores, embedded
//! server): a release spread p99 of about 0.55 ms when both cores write, against 1.1–1.3 ms
//! for one loop. On a machine with no core to spare the first write's wake-up of the
//! server (placed on the writer's core by the kernel, which then runs it first) can take one
//! writer's core for a time slice, and the other writes the rest alone; where the process
//! may, the run raises its threads above the server's so that this does not happen
//! ([`crate::priority`]; the helpers run raised from their start).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// A tail parked for direct release.
pub(crate) struct Parked {
    /// A duplicate of the connection's descriptor (non-blocking, as the original).
    pub socket: std::net::TcpStream,
    pub tail: Vec<u8>,
    /// How much of the tail the release wrote; the connection writes the rest, if any.
    pub written: Arc<AtomicUsize>,
    pub sent_at: Arc<OnceLock<Instant>>,
}

/// Releases with fewer tails than this are written by the releasing thread alone: waking
/// a helper costs tens of µs, more than it would save.
const SHARED_FROM: usize = 32;

/// At most this many helper threads, whatever the core count.
const MAX_HELPERS: usize = 3;

/// One release: the tails and who has taken which.
struct Job {
    parked: Vec<Parked>,
    /// Set once the tails may go out (after the warm pass and the release stamp).
    go: AtomicBool,
    /// The tails nobody has taken: indexes from the low half up to the high half.
    ends: AtomicU64,
    /// Tails taken and finished (written or failed).
    finished: AtomicUsize,
    /// Per tail: bytes written and when, kept here (one contiguous array) and handed to
    /// the connections after the loop, so the loop touches as little memory as it can.
    outcomes: Vec<OnceLock<(usize, Instant)>>,
}

/// Which end of the list a writer takes tails from.
#[derive(Clone, Copy)]
enum End {
    /// The releasing thread: first parked, first out.
    Front,
    /// Helpers: they warm and write from the back, so what each warmed is what it writes.
    Back,
}

impl Job {
    /// Takes the next tail from `end`: its index, or `None` when none is left. The two
    /// ends share one word (front index low, back index high), so a tail is taken once.
    fn take(&self, end: End) -> Option<usize> {
        let mut taken = None;
        let _ = self
            .ends
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (front, back) = (word & 0xffff_ffff, word >> 32);
                if front >= back {
                    taken = None;
                    return None;
                }
                Some(match end {
                    End::Front => {
                        taken = Some(front);
                        word + 1
                    }
                    End::Back => {
                        taken = Some(back - 1);
                        word - (1 << 32)
                    }
                })
            });
        taken.map(|i| i as usize)
    }

    /// Takes and writes tails from `end` until none is left.
    fn work(&self, end: End) {
        while let Some(index) = self.take(end) {
            let (Some(p), Some(outcome)) = (self.parked.get(index), self.outcomes.get(index))
            else {
                return;
            };
            // One non-blocking write: a tail that does not go out whole is left to its
            // connection.
            if let Ok(n) = (&p.socket).write(&p.tail) {
                let _ = outcome.set((n, Instant::now()));
            }
            self.finished.fetch_add(1, Ordering::Release);
        }
    }

    /// Hands each connection what the release wrote of its tail.
    fn publish(&self) {
        for (p, outcome) in self.parked.iter().zip(&self.outcomes) {
            if let Some(&(n, at)) = outcome.get() {
                p.written.store(n, Ordering::Release);
                if n == p.tail.len() {
                    let _ = p.sent_at.set(at);
                }
            }
        }
    }
}

/// Touches each tail's socket once (a zero-length `send`: no packet, nothing the server
/// sees), so that the write loop finds the kernel's socket state, and the list itself, in
/// the cache: on connections quiet since their handshakes this takes about a third off
/// each write.
fn warm(parked: &[Parked]) {
    for p in parked {
        let _ = (&p.socket).write(&[]);
        std::hint::black_box(p.tail.first());
    }
}

/// Longest a woken helper waits for the go before it yields its core between looks.
const SPIN: Duration = Duration::from_millis(2);

/// Writes every tail once (one non-blocking write each) and records, per tail, how much
/// went out and when; returns when all are done. This thread takes tails in order from
/// the front, so the first parked go out first; helpers take them from the back. Before the first write: the helpers are woken, every socket is
/// touched once ([`warm`]; the helpers are getting a core meanwhile), and `stamp` runs (the
/// release instant), so the loop that follows is as short as it can be.
pub(crate) fn write_all(parked: Vec<Parked>, stamp: impl FnOnce()) {
    // The two ends share one 64-bit word; tails past 2^32 (far beyond any descriptor
    // limit) would be left to their connections.
    let count = parked.len().min(u32::MAX as usize);
    let job = Arc::new(Job {
        outcomes: (0..parked.len()).map(|_| OnceLock::new()).collect(),
        parked,
        go: AtomicBool::new(false),
        ends: AtomicU64::new((count as u64) << 32),
        finished: AtomicUsize::new(0),
    });
    // Kept on its core while it writes, so that it does not move onto a helper's.
    let _held = (count >= SHARED_FROM).then(|| {
        let held = cpu::hold_here();
        share(&job, held.cpu());
        held
    });
    warm(&job.parked);
    stamp();
    job.go.store(true, Ordering::Release);
    job.work(End::Front);
    // The helpers' last tails: each is one non-blocking write already under way.
    while job.finished.load(Ordering::Acquire) < count {
        std::thread::yield_now();
    }
    job.publish();
}

/// A helper's part of `job`: until the go, warm the sockets from the back in its own
/// core's cache (the releasing thread warms them all from the front); then take tails
/// from the back.
fn help(job: &Job) {
    let woke = std::time::Instant::now();
    let mut warmed = job.parked.iter().rev();
    while !job.go.load(Ordering::Acquire) {
        match warmed.next() {
            Some(p) => warm(std::slice::from_ref(p)),
            None if woke.elapsed() < SPIN => std::hint::spin_loop(),
            None => std::thread::yield_now(),
        }
    }
    job.work(End::Back);
}

/// Starts the helper threads now, so that the first release does not pay for it (a
/// thread's start costs more than a whole release). Idempotent.
pub(crate) fn start_helpers() {
    let _ = helpers();
}

/// A helper thread and the core it is pinned to (`None` where threads are not pinned).
struct Helper {
    cpu: Option<usize>,
    jobs: Sender<Arc<Job>>,
}

/// Hands `job` to the helpers on other cores than `here`, the releasing thread's. A
/// helper woken on the releasing thread's own core would take that core from the release
/// (the kernel runs a thread that has slept long first), so each helper is pinned to a
/// core of its own and the one on this core stays asleep.
fn share(job: &Arc<Job>, here: Option<usize>) {
    for helper in helpers()
        .iter()
        .filter(|h| h.cpu.is_none() || h.cpu != here)
        .take(MAX_HELPERS)
    {
        let _ = helper.jobs.send(job.clone());
    }
}

/// The helper threads, started on first use: one per core this process may run on, the
/// first [`MAX_HELPERS`] + 1 of them, each pinned to its core; none on one core or where a
/// thread cannot be started. Where cores cannot be listed or pinned, [`MAX_HELPERS`] at
/// most, one fewer than the cores, unpinned.
fn helpers() -> &'static [Helper] {
    static HELPERS: OnceLock<Vec<Helper>> = OnceLock::new();
    HELPERS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pinned: Vec<Option<usize>> = cpu::allowed()
            .into_iter()
            .take(MAX_HELPERS + 1)
            .map(Some)
            .collect();
        let places = if pinned.len() > 1 {
            pinned
        } else {
            vec![None; cores.saturating_sub(1).min(MAX_HELPERS)]
        };
        places
            .into_iter()
            .enumerate()
            .filter_map(|(i, cpu)| {
                let (tx, rx) = channel::<Arc<Job>>();
                std::thread::Builder::new()
                    .name(format!("stampede-release-{i}"))
                    .spawn(move || {
                        if let Some(cpu) = cpu {
                            cpu::pin(cpu);
                        }
                        // Not outranked by the runtime's threads when a run raises them.
                        let _ = crate::priority::raise_this_thread();
                        while let Ok(job) = rx.recv() {
                            help(&job);
                        }
                    })
                    .ok()
                    .map(|_| Helper { cpu, jobs: tx })
            })
            .collect()
    })
}

/// Cores: which this process may use, which this thread is on, pinning a thread to one.
#[cfg(target_os = "linux")]
mod cpu {
    use rustix::thread::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};

    /// The cores this process may run on (its affinity mask), in order; empty when unknown.
    pub fn allowed() -> Vec<usize> {
        match sched_getaffinity(None) {
            Ok(set) => (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The calling thread kept on the core it runs on, until the value is dropped (its
    /// former affinity comes back).
    pub struct Held {
        cpu: usize,
        before: Option<CpuSet>,
    }

    impl Held {
        pub fn cpu(&self) -> Option<usize> {
            Some(self.cpu)
        }
    }

    impl Drop for Held {
        fn drop(&mut self) {
            if let Some(before) = &self.before {
                let _ = sched_setaffinity(None, before);
            }
        }
    }

    /// Keeps the calling thread on its current core (see [`Held`]).
    pub fn hold_here() -> Held {
        let before = sched_getaffinity(None).ok();
        let cpu = sched_getcpu();
        if before.is_some() {
            pin(cpu);
        }
        Held { cpu, before }
    }

    /// Pins the calling thread to `cpu`; left unpinned if the kernel refuses.
    pub fn pin(cpu: usize) {
        let mut set = CpuSet::new();
        set.set(cpu);
        let _ = sched_setaffinity(None, &set);
    }
}

#[cfg(not(target_os = "linux"))]
mod cpu {
    pub fn allowed() -> Vec<usize> {
        Vec::new()
    }
    pub struct Held;
    impl Held {
        pub fn cpu(&self) -> Option<usize> {
            None
        }
    }
    pub fn hold_here() -> Held {
        Held
    }
    pub fn pin(_cpu: usize) {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    /// `count` loopback connections: (client end, server end).
    fn pairs(count: usize) -> Vec<(TcpStream, TcpStream)> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (0..count)
            .map(|_| {
                let client = TcpStream::connect(addr).unwrap();
                let (server, _) = listener.accept().unwrap();
                client.set_nonblocking(true).unwrap();
                (client, server)
            })
            .collect()
    }

    #[test]
    fn every_tail_goes_out_once_to_its_own_connection() {
        // Above the sharing threshold, so helpers (where the machine has them) take part.
        let count = SHARED_FROM * 4;
        let conns = pairs(count);
        let mut handles = Vec::new();
        let parked: Vec<Parked> = conns
            .iter()
            .enumerate()
            .map(|(i, (client, _))| {
                let written = Arc::new(AtomicUsize::new(0));
                let sent_at: Arc<OnceLock<Instant>> = Arc::default();
                handles.push((written.clone(), sent_at.clone()));
                Parked {
                    socket: client.try_clone().unwrap(),
                    tail: format!("tail-{i:04}").into_bytes(),
                    written,
                    sent_at,
                }
            })
            .collect();
        write_all(parked, || {});
        for (i, ((_, server), (written, sent_at))) in conns.iter().zip(&handles).enumerate() {
            let expected = format!("tail-{i:04}");
            assert_eq!(written.load(Ordering::Acquire), expected.len(), "tail {i}");
            assert!(sent_at.get().is_some(), "tail {i} has its instant");
            // Exactly its own bytes, once: a second copy would show as more bytes.
            server
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut got = vec![0u8; expected.len()];
            (&*server).read_exact(&mut got).unwrap();
            assert_eq!(got, expected.as_bytes());
            server.set_nonblocking(true).unwrap();
            let mut more = [0u8; 16];
            assert!(
                (&*server).read(&mut more).is_err(),
                "tail {i} was written more than once"
            );
        }
    }

    #[test]
    fn both_ends_together_take_every_tail_once() {
        let job = Arc::new(Job {
            parked: Vec::new(),
            go: AtomicBool::new(true),
            ends: AtomicU64::new(10_000 << 32),
            finished: AtomicUsize::new(0),
            outcomes: Vec::new(),
        });
        let takers: Vec<_> = [End::Front, End::Back, End::Back, End::Front]
            .into_iter()
            .map(|end| {
                let job = job.clone();
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(i) = job.take(end) {
                        mine.push(i);
                    }
                    (end, mine)
                })
            })
            .collect();
        let mut all = Vec::new();
        for taker in takers {
            let (end, mine) = taker.join().unwrap();
            // Each end hands out its indexes in its own order.
            let ordered = match end {
                End::Front => mine.windows(2).all(|w| w[0] < w[1]),
                End::Back => mine.windows(2).all(|w| w[0] > w[1]),
            };
            assert!(ordered);
            all.extend(mine);
        }
        all.sort_unstable();
        assert_eq!(all, (0..10_000).collect::<Vec<_>>());
        assert_eq!(job.take(End::Front), None);
        assert_eq!(job.take(End::Back), None);
    }

    #[test]
    fn a_tail_that_cannot_be_written_is_left_to_its_connection() {
        let conns = pairs(1);
        let (client, _) = &conns[0];
        let written = Arc::new(AtomicUsize::new(0));
        let sent_at: Arc<OnceLock<Instant>> = Arc::default();
        // Shut down for writing: the release's write fails.
        client.shutdown(std::net::Shutdown::Write).unwrap();
        write_all(
            vec![Parked {
                socket: client.try_clone().unwrap(),
                tail: b"x".to_vec(),
                written: written.clone(),
                sent_at: sent_at.clone(),
            }],
            || {},
        );
        assert_eq!(written.load(Ordering::Acquire), 0);
        assert!(sent_at.get().is_none());
    }
}
