//! A counter many threads add to at once without sharing a cache line.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Slots of a [`Tally`]: threads beyond this many share them, round-robin.
const SLOTS: usize = 16;

/// One slot, alone on its cache line (two lines: adjacent-line prefetch pairs them).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Slot(AtomicU64);

/// A `u64` counter split into per-thread slots, summed when read. The live progress
/// counters take one add per message from every connection on every worker: on a single
/// `AtomicU64` each add moves the cache line between cores. The same idea as Java's
/// `LongAdder` (Doug Lea, JSR 166); the API mirrors `AtomicU64`'s so readers do not change.
#[derive(Debug, Default)]
pub struct Tally {
    slots: [Slot; SLOTS],
}

/// The calling thread's slot: threads take slots in the order they first add.
fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    }
    SLOT.with(|s| *s)
}

impl Tally {
    /// Adds `n` (wrapping, as `AtomicU64::fetch_add`); returns nothing, unlike
    /// `fetch_add`: no single previous value exists.
    pub fn fetch_add(&self, n: u64, order: Ordering) {
        self.slots[slot()].0.fetch_add(n, order);
    }

    /// The sum of the slots (wrapping). Adds that race with the read may or may not be in
    /// it, as with one atomic.
    pub fn load(&self, order: Ordering) -> u64 {
        self.slots
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(order)))
    }

    /// Sets the sum to `n`. Not atomic against concurrent adds: for setting up, before the
    /// counting starts.
    pub fn store(&self, n: u64, order: Ordering) {
        for (i, s) in self.slots.iter().enumerate() {
            s.0.store(if i == 0 { n } else { 0 }, order);
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
        std::thread::scope(|s| {
            for t in 0..SLOTS as u64 + 4 {
                let tally = &tally;
                s.spawn(move || {
                    for _ in 0..1000 {
                        tally.fetch_add(t + 1, Relaxed);
                    }
                });
            }
        });
        let threads = SLOTS as u64 + 4;
        assert_eq!(tally.load(Relaxed), 1000 * threads * (threads + 1) / 2);
        tally.store(7, Relaxed);
        assert_eq!(tally.load(Relaxed), 7);
        tally.fetch_add(3, Relaxed);
        assert_eq!(tally.load(Relaxed), 10);
    }
}
