//! Loading a connection's state into the cache ahead of use, all of it at once.
//!
//! At a thousand connections, a connection's state has left the core's caches by its next
//! message, and its code then reaches that state one field at a time: each cache line a
//! miss, and each miss waits for the one before it (the next address is often in the line
//! being loaded). Asked for together when the connection wakes, the lines load side by
//! side (the CPU keeps a dozen or more misses in flight) while the socket is read. The
//! hint is the x86 `PREFETCHT0` instruction (Intel SDM vol. 2, "PREFETCHh"); elsewhere it
//! does nothing.

/// Connections per worker thread from which prefetching pays ([`pays`]).
pub const FROM_CONNECTIONS_PER_THREAD: usize = 200;

/// Whether a run of `connections` driven by `threads` worker threads prefetches a waking
/// connection's state. Under a few hundred connections per thread their states stay in
/// the core's L2 cache between messages, and working out and asking for ~100 lines costs
/// more than it saves: measured on one thread (`benches/echo.rs`, user time per echoed
/// message), the prefetch cost 2.5% at 100 connections and saved 4% at 300 and 14% at
/// 1,000.
pub fn pays(connections: usize, threads: usize) -> bool {
    connections >= FROM_CONNECTIONS_PER_THREAD.saturating_mul(threads.max(1))
}

/// How many stretches one [`Warm`] holds; more are left out. A connection adds 12.
const SPANS: usize = 12;

/// The most bytes one stretch asks for: a long buffer's head is what the next message
/// reads.
const MOST_PER_SPAN: usize = 512;

/// Stretches of memory (addresses and lengths, not borrows: the owner may be borrowed
/// mutably while the prefetch runs) to load before they are used. Compact (~130 bytes):
/// the read loop holds one in every waiting connection's task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Warm {
    starts: [usize; SPANS],
    /// Lengths in bytes, at most `u16::MAX` each (a longer value is cut there).
    lens: [u16; SPANS],
    used: u8,
}

impl Warm {
    /// Adds where `value` lies, all of it.
    pub fn value<T>(&mut self, value: &T) {
        self.push(value as *const T as usize, std::mem::size_of::<T>());
    }

    /// Adds the bytes from where `first` starts to where `end` starts (nothing when `end`
    /// comes first): the fields of a `repr(C)` struct from one to another.
    pub fn between<A, B>(&mut self, first: &A, end: &B) {
        let start = first as *const A as usize;
        self.push(start, (end as *const B as usize).saturating_sub(start));
    }

    /// Adds the head of `items` (at most `MOST_PER_SPAN` bytes).
    pub fn slice<T>(&mut self, items: &[T]) {
        let len = std::mem::size_of_val(items).min(MOST_PER_SPAN);
        if len > 0 {
            self.push(items.as_ptr() as usize, len);
        }
    }

    fn push(&mut self, start: usize, len: usize) {
        let at = usize::from(self.used);
        if let (Some(s), Some(l)) = (self.starts.get_mut(at), self.lens.get_mut(at)) {
            *s = start;
            *l = u16::try_from(len).unwrap_or(u16::MAX);
            self.used += 1;
        }
    }

    /// Asks for every cache line of every stretch, waiting for none. Runs on every
    /// wake-up of every connection, over a hundred lines or so: the loop is kept to the
    /// hint, one add and one compare per line.
    #[inline]
    pub fn prefetch(&self) {
        let used = usize::from(self.used).min(SPANS);
        for i in 0..used {
            let start = self.starts[i];
            let first = start & !63;
            let lines = (start - first + usize::from(self.lens[i])).div_ceil(64);
            for k in 0..lines {
                hint(first.wrapping_add(k * 64));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn hint(address: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: a prefetch is a hint: it loads nothing into the program and cannot fault,
    // whatever the address.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(address as *const i8) };
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn hint(_address: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_pays_from_a_few_hundred_connections_per_thread() {
        assert!(
            !pays(100, 1),
            "a hundred connections' states stay in the cache"
        );
        assert!(pays(1_000, 1));
        assert!(pays(FROM_CONNECTIONS_PER_THREAD, 1));
        assert!(!pays(1_000, 8), "125 per thread");
        assert!(pays(2_000, 8));
        assert!(!pays(100, 0), "no threads reads as one");
    }

    #[test]
    fn it_keeps_at_most_its_stretches_and_the_head_of_a_long_buffer() {
        let long = vec![0u8; 4096];
        let mut warm = Warm::default();
        warm.slice(&long);
        assert_eq!(
            (warm.starts[0], warm.lens[0]),
            (long.as_ptr() as usize, MOST_PER_SPAN as u16)
        );
        warm.slice::<u64>(&[]);
        assert_eq!(warm.used, 1, "an empty buffer adds nothing");
        #[repr(C)]
        struct Pair {
            first: u64,
            then: [u8; 100],
        }
        let pair = Pair {
            first: 1,
            then: [0; 100],
        };
        warm.between(&pair.then, &pair.first);
        warm.between(&pair.first, &pair.then);
        assert_eq!(warm.lens[1], 0, "an end before the start adds nothing");
        assert_eq!(warm.lens[2], 8);
        warm.value(&[0u8; 70_000]);
        assert_eq!(warm.lens[3], u16::MAX, "a longer value is cut");
        for _ in 0..2 * SPANS {
            warm.value(&long);
        }
        assert_eq!(usize::from(warm.used), SPANS);
        // Any address, even one not mapped, is only a hint.
        Warm {
            starts: [usize::MAX - 10; SPANS],
            lens: [100; SPANS],
            used: SPANS as u8,
        }
        .prefetch();
        warm.prefetch();
    }
}
