//! The process allocator: mimalloc, called through its plain entry points.
//!
//! A connection allocates and frees a few small objects per message (a parsed answer, an
//! expectation's state, the outgoing frame), and glibc's malloc spent a quarter of the
//! client's instructions on them (callgrind, `benches/echo.rs`). mimalloc's own Rust
//! wrapper (`mimalloc::MiMalloc`) sends every request through `mi_malloc_aligned`, whose
//! fast path gives up on blocks over 1 KiB and on a page whose free list is momentarily
//! empty, and whose slow path then over-allocates blocks that are not a power of two
//! (`alloc-aligned.c`): ~78 instructions per allocation here, against ~31 for `mi_malloc`
//! (callgrind over ~294,000 allocations of `benches/echo.rs --only stampede`, each side).
//! Every mimalloc block is at least word-aligned (its size classes are multiples of the
//! word, its pages word-aligned), so a request that asks no more than that goes to
//! `mi_malloc`; only larger alignments take the aligned entry points. This is what the
//! standard library's own `System` allocator does with glibc (`MIN_ALIGN`).

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment every mimalloc block has whatever its size: one machine word.
const WORD: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator. Use it as `#[global_allocator] static A: Allocator =
/// Allocator;` (the `stampede` binary and the benches do).
#[derive(Debug, Clone, Copy, Default)]
pub struct Allocator;

/// Whether `mi_malloc`'s guaranteed alignment is enough for `layout`.
fn plain(layout: &Layout) -> bool {
    layout.align() <= WORD
}

/// Keeps resident memory following what the process allocates: opts the whole process out
/// of transparent huge pages (`prctl(PR_SET_THP_DISABLE)`, Linux). mimalloc asks for them on
/// its arenas (`MADV_HUGEPAGE`), and minutes into a run the kernel's khugepaged turns partly
/// used 2 MiB ranges into huge pages, making the untouched rest resident too: a soak's RSS
/// stepped up by 2–8 MB at 10–11 minutes and again later, whatever the load (`AnonHugePages`
/// in `/proc/PID/smaps` grew with it), and every fault on such a range cleared 2 MiB.
/// Call it first thing in `main`, before any thread starts (the `stampede` binary and the
/// benches do). Where the call fails or the platform has no such setting, nothing changes.
pub fn opt_out_of_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

/// How often a thread may hand its free pages back ([`collect_when_idle`]): at most 50
/// collections a second per worker, however often it parks. Short, because a worker that
/// goes idle after a burst (thousands of handshakes, then idle connections) parks one last
/// time and sleeps on: when that park came within this interval of its previous collection,
/// the burst's freed pages stayed resident for as long as the connections stayed idle. At
/// 250 ms, an idle connection's memory per core read 6.1–6.6 KiB (5,000 open,
/// `benches/echo.rs --open`), at 20 ms 5.5–5.8, on every park 5.4–5.5, against 4.9–5.0
/// on one thread (2026-12-04).
const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// Hands the calling thread's free pages back to the system (mimalloc's `mi_collect`), at
/// most once per `COLLECT_EVERY` on each thread. For a runtime worker about to park
/// (tokio's `on_thread_park`): a block one worker allocated and another freed waits for its
/// owner to allocate again before its page can go back, and a worker whose connections sat
/// idle after a burst of handshakes never does; its pages kept an idle connection's
/// memory per core ~4 KiB above one thread's. Does nothing when mimalloc is not the
/// process allocator's backend (the blocks it collects are its own).
pub fn collect_when_idle() {
    use std::cell::Cell;
    use std::time::Instant;
    thread_local! {
        static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    let now = Instant::now();
    let due = LAST.with(|last| {
        let due = last
            .get()
            .is_none_or(|at| now.duration_since(at) >= COLLECT_EVERY);
        if due {
            last.set(Some(now));
        }
        due
    });
    if due {
        // SAFETY: `mi_collect` only frees memory mimalloc holds and nothing references
        // (empty pages, delayed frees); it is callable from any thread at any time.
        unsafe { mi::mi_collect(false) };
    }
}

// SAFETY: each method forwards to the mimalloc entry point of the same contract
// (`GlobalAlloc`'s: a null pointer on failure, blocks freed by `mi_free` whatever entry
// point made them), choosing the plain one only where its guaranteed alignment (one
// word) meets the layout's.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl; mimalloc accepts any size, including zero.
        unsafe {
            if plain(&layout) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if plain(&layout) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract), so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract); the
        // new block keeps that alignment either way.
        unsafe {
            if plain(&layout) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size class from one byte to past the small-object limit, at each alignment
    /// up to a page: the block is aligned as asked, writable, and survives a realloc.
    #[test]
    fn blocks_have_the_alignment_asked_for() {
        let a = Allocator;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in (1..=2100).step_by(7).chain([4096, 1 << 20]) {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: a non-zero layout; the block is written within its size and
                // freed once, with the layout it was made with.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null(), "{size} bytes at {align}");
                    assert_eq!(p as usize % align, 0, "{size} bytes at {align}");
                    p.write_bytes(0xa5, size);
                    let q = a.realloc(p, layout, size * 2);
                    assert!(!q.is_null());
                    assert_eq!(q as usize % align, 0, "grown {size} bytes at {align}");
                    assert_eq!(q.add(size - 1).read(), 0xa5, "realloc kept the bytes");
                    a.dealloc(q, Layout::from_size_align_unchecked(size * 2, align));
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| z.add(i).read() == 0), "zeroed");
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
