//! A counter many threads add to at once without sharing a cache line, and without an
//! atomic read-modify-write in the common case.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Slots each held by one thread alone: the first this many threads to add get one each.
const OWN_SLOTS: usize = 64;

/// Slots the threads after those share, round-robin.
const SHARED_SLOTS: usize = 16;

/// One slot, alone on its cache line (two lines: adjacent-line prefetch pairs them).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Slot(AtomicU64);

/// A `u64` counter split into per-thread slots, summed when read. The live progress
/// counters take one add per message from every connection on every worker: on a single
/// `AtomicU64` each add moves the cache line between cores. The same idea as Java's
/// `LongAdder` (Doug Lea, JSR 166). A thread that holds its slot alone adds with a load
/// and a store: an atomic add (x86 `LOCK XADD`) would also wait for every store the
/// thread has pending, on the path of every message. `load` and `store` mirror
/// `AtomicU64`'s, so readers do not change. 64 + 16 slots of 128 bytes: 10 KiB per
/// counter.
#[derive(Debug)]
pub struct Tally {
    own: [Slot; OWN_SLOTS],
    shared: [Slot; SHARED_SLOTS],
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            own: std::array::from_fn(|_| Slot::default()),
            shared: std::array::from_fn(|_| Slot::default()),
        }
    }
}

/// Where the calling thread adds: the `n`-th thread to add holds own slot `n` when
/// `n < OWN_SLOTS`, else shares a shared slot.
#[derive(Debug, Clone, Copy)]
enum Place {
    Own(usize),
    Shared(usize),
}

/// The calling thread's place, taken on its first add.
fn place() -> Place {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static PLACE: Place = {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            if n < OWN_SLOTS {
                Place::Own(n)
            } else {
                Place::Shared(n % SHARED_SLOTS)
            }
        };
    }
    PLACE.with(|p| *p)
}

impl Tally {
    /// Adds `n` (wrapping). Relaxed: readers see it eventually, in no order with other
    /// memory, as with `fetch_add(n, Relaxed)`.
    pub fn add(&self, n: u64) {
        self.add_at(place(), n);
    }

    fn add_at(&self, place: Place, n: u64) {
        match place {
            Place::Own(at) => {
                // Its only writer: no other add can come between the load and the store.
                let slot = &self.own[at].0;
                slot.store(
                    slot.load(Ordering::Relaxed).wrapping_add(n),
                    Ordering::Relaxed,
                );
            }
            Place::Shared(at) => {
                self.shared[at].0.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    fn slots(&self) -> impl Iterator<Item = &AtomicU64> {
        self.own.iter().chain(&self.shared).map(|s| &s.0)
    }

    /// The sum of the slots (wrapping). Adds that race with the read may or may not be in
    /// it, as with one atomic.
    pub fn load(&self, order: Ordering) -> u64 {
        self.slots()
            .fold(0u64, |sum, s| sum.wrapping_add(s.load(order)))
    }

    /// Sets the sum to `n`. Not atomic against concurrent adds: for setting up, before the
    /// counting starts.
    pub fn store(&self, n: u64, order: Ordering) {
        for (i, s) in self.slots().enumerate() {
            s.store(if i == 0 { n } else { 0 }, order);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn adds_from_many_threads_sum_exactly() {
        let tally = Tally::default();
        // More threads than own slots, so that some share: every add counts either way.
        let threads = (OWN_SLOTS + 2 * SHARED_SLOTS) as u64;
        std::thread::scope(|s| {
            for t in 0..threads {
                let tally = &tally;
                s.spawn(move || {
                    for _ in 0..1000 {
                        tally.add(t + 1);
                    }
                });
            }
        });
        assert_eq!(tally.load(Relaxed), 1000 * threads * (threads + 1) / 2);
        tally.store(7, Relaxed);
        assert_eq!(tally.load(Relaxed), 7);
        tally.add(3);
        assert_eq!(tally.load(Relaxed), 10);
    }

    /// The load-and-store path, whichever place the test harness's threads got: each
    /// thread its own slot, every add counted.
    #[test]
    fn adds_on_own_slots_sum_exactly() {
        let tally = Tally::default();
        std::thread::scope(|s| {
            for slot in 0..OWN_SLOTS {
                let tally = &tally;
                s.spawn(move || {
                    for _ in 0..1000 {
                        tally.add_at(Place::Own(slot), 1);
                    }
                });
            }
        });
        assert_eq!(tally.load(Relaxed), 1000 * OWN_SLOTS as u64);
    }
}
