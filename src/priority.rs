//! The scheduling priority of the load generator's runtime threads during a run that
//! releases connections together (a collide barrier or a message rendezvous).
//!
//! Such a release writes hundreds of frames within a millisecond. When the target runs on
//! the same machine (loopback tests, a small CI box, the embedded reference server), each
//! write wakes a server thread, and Linux's fair scheduler (EEVDF, since 6.6) may run the
//! woken thread at once on a core the load generator is writing from; the release then
//! waits out a time slice, and what should take half a millisecond takes two. Where the
//! process may raise its priority (root, `CAP_SYS_NICE`, or an `RLIMIT_NICE` allowance),
//! [`raise`] sets the runtime's threads to nice [`TIMING_NICE`] for the length of the run,
//! so a server at the default priority waits for the release instead of interrupting it.
//! The embedded reference server goes further: at such a run its threads are its own and
//! in the idle class ([`idle_this_thread`], no privilege needed), so that any load
//! generator thread that wakes takes the core from it at once. Measured on a 2-core
//! machine, 300 connections released at a rendezvous against the embedded server: release
//! spread p99 under 1 ms in 20 of 20 runs raised and 18 of 20 without the privilege
//! (against 18 of 40 before either); against a server process of its own at the default
//! priority, 31 of 32 raised against about half; `docs/hunting.md` has the figures.
//!
//! Elsewhere, nothing changes: a process that may not raise its priority runs as before,
//! and a run without a release never changes it. The threads are those registered with
//! [`register_current_thread`] (the binary registers its runtime's threads from the
//! runtime builder's `on_thread_start`), so a library user's runtime is left alone.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// The nice value the registered threads run at while raised (default 0; lower runs
/// first): a weight about 28 times the default's (the kernel's `sched_prio_to_weight`),
/// the level at which, measured on a 2-core machine, a co-located server stopped
/// interrupting releases (at -10, 21 of 32 runs were still under 1 ms against 30 of 32).
pub const TIMING_NICE: i32 = -15;

/// The threads [`raise`] raises, and what it raised while held.
static REGISTRY: Registry = Registry::new();

/// Adds the calling thread to those [`raise`] raises (for a runtime builder's
/// `on_thread_start`, and the thread that drives the runtime): raised at once if a
/// [`Raised`] is live (a worker thread may start after the run began). Does nothing where
/// thread ids are not known.
pub fn register_current_thread() {
    if let Some(id) = os::current_thread() {
        REGISTRY.add(id);
    }
}

/// Removes the calling thread (for a runtime builder's `on_thread_stop`), so that a
/// thread id the kernel hands to another thread later is never touched.
pub fn unregister_current_thread() {
    if let Some(id) = os::current_thread() {
        REGISTRY.remove(id);
    }
}

/// Raises every registered thread whose nice value is above [`TIMING_NICE`] to it, until
/// the last [`Raised`] is dropped (raises nest: overlapping runs share one); a thread the
/// kernel refuses (no permission) is left as it is.
pub fn raise() -> Raised<'static> {
    REGISTRY.raise()
}

/// Registered threads held at [`TIMING_NICE`] while this lives.
#[derive(Debug)]
pub struct Raised<'a> {
    registry: &'a Registry,
    count: usize,
}

impl Raised<'_> {
    /// How many threads are raised (0 where the process may not raise its priority, or
    /// no thread is registered).
    pub fn count(&self) -> usize {
        self.count
    }
}

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        self.registry.lower();
    }
}

#[derive(Debug, Default)]
struct State {
    /// Registered threads, by kernel thread id.
    threads: Vec<i32>,
    /// Live [`Raised`] values.
    holders: usize,
    /// The threads raised, with their nice values before.
    raised: Vec<(i32, i32)>,
}

#[derive(Debug)]
struct Registry(Mutex<State>);

impl Registry {
    const fn new() -> Registry {
        Registry(Mutex::new(State {
            threads: Vec::new(),
            holders: 0,
            raised: Vec::new(),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves lists that are still lists.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, id: i32) {
        let mut state = self.state();
        state.threads.push(id);
        if state.holders > 0 {
            if let Some(before) = raise_one(id) {
                state.raised.push(before);
            }
        }
    }

    fn remove(&self, id: i32) {
        let mut state = self.state();
        state.threads.retain(|&t| t != id);
        state.raised.retain(|&(t, _)| t != id);
    }

    fn is_empty(&self) -> bool {
        self.state().threads.is_empty()
    }

    fn raise(&self) -> Raised<'_> {
        let mut state = self.state();
        state.holders += 1;
        if state.holders == 1 {
            state.raised = state
                .threads
                .iter()
                .filter_map(|&id| raise_one(id))
                .collect();
        }
        Raised {
            registry: self,
            count: state.raised.len(),
        }
    }

    fn lower(&self) {
        let mut state = self.state();
        state.holders = state.holders.saturating_sub(1);
        if state.holders == 0 {
            for (id, nice) in std::mem::take(&mut state.raised) {
                os::set_nice(id, nice);
            }
        }
    }
}

/// Sets thread `id` to [`TIMING_NICE`] if it runs above it and the kernel lets us: then
/// `(id, its nice value before)`.
fn raise_one(id: i32) -> Option<(i32, i32)> {
    let nice = os::nice(id)?;
    (nice > TIMING_NICE && os::set_nice(id, TIMING_NICE)).then_some((id, nice))
}

/// Sets the calling thread to [`TIMING_NICE`] for the rest of its life, where the process
/// may: for threads that only ever work at a release (the release's helper threads), so
/// that they are not outranked by the raised runtime threads. Whether it was set.
pub fn raise_this_thread() -> bool {
    os::current_thread().is_some_and(|me| {
        os::nice(me).is_some_and(|nice| nice <= TIMING_NICE || os::set_nice(me, TIMING_NICE))
    })
}

/// Puts the calling thread in the idle scheduling class (`SCHED_IDLE`, Linux's
/// sched(7)): it runs only when no thread of another class wants the core, and any such
/// thread that wakes takes the core from it at once (a normal thread that wakes may wait
/// out the running one's slice). For the embedded reference server's threads at a run
/// with releases (`reference::spawn_apart`): the load generator's connection starts and
/// release writes never wait for it. Needs no privilege. Whether it was set.
pub fn idle_this_thread() -> bool {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadPriority, ThreadSchedulePolicy,
    };
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    )
    .is_ok()
}

/// Whether some thread is registered: the process manages its threads' priority (the
/// binary does; a library user's runtime does not).
pub fn managed() -> bool {
    !REGISTRY.is_empty()
}

#[cfg(target_os = "linux")]
mod os {
    use rustix::process::{getpriority_process, setpriority_process, Pid};

    pub fn current_thread() -> Option<i32> {
        Some(rustix::thread::gettid().as_raw_nonzero().get())
    }

    /// A thread's nice value (on Linux, `PRIO_PROCESS` with a thread id is that thread).
    pub fn nice(id: i32) -> Option<i32> {
        getpriority_process(Some(Pid::from_raw(id)?)).ok()
    }

    /// Whether the kernel set it.
    pub fn set_nice(id: i32, nice: i32) -> bool {
        Pid::from_raw(id).is_some_and(|pid| setpriority_process(Some(pid), nice).is_ok())
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    pub fn current_thread() -> Option<i32> {
        None
    }
    pub fn nice(_id: i32) -> Option<i32> {
        None
    }
    pub fn set_nice(_id: i32, _nice: i32) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    /// A thread registered with a registry of the test's own (parked on a channel) and
    /// this unregistered one: raise twice, drop one, check, drop the other, check. Whether
    /// the raise is allowed depends on who runs the test; both outcomes are checked.
    #[test]
    fn raise_sets_only_registered_threads_and_drop_restores_them() {
        let registry = Registry::new();
        let (id_tx, id_rx) = channel();
        let (done_tx, done_rx) = channel::<()>();
        let parked = std::thread::spawn(move || {
            let _ = id_tx.send(os::current_thread());
            let _ = done_rx.recv();
        });
        let Ok(registered) = id_rx.recv() else {
            panic!("the registered thread did not start");
        };
        if let Some(id) = registered {
            registry.add(id);
        }
        let me = os::current_thread();
        let before = (registered.and_then(os::nice), me.and_then(os::nice));
        let raised = registry.raise();
        let nested = registry.raise();
        let count = raised.count();
        drop(raised);
        // Still held by the nested one.
        let during = (registered.and_then(os::nice), me.and_then(os::nice));
        drop(nested);
        let after = (registered.and_then(os::nice), me.and_then(os::nice));
        let _ = done_tx.send(());
        assert!(parked.join().is_ok());

        if cfg!(target_os = "linux") {
            assert!(before.0.is_some(), "a thread's nice value is readable");
        }
        if count > 0 {
            assert_eq!(during.0, Some(TIMING_NICE), "raised while held");
        } else {
            assert_eq!(during.0, before.0, "unchanged where the raise is refused");
        }
        assert_eq!(
            during.1, before.1,
            "an unregistered thread is never touched"
        );
        assert_eq!(after, before, "restored when dropped");
    }

    #[test]
    fn idle_this_thread_puts_the_thread_in_the_idle_class() {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        let outcome = std::thread::spawn(|| {
            let set = idle_this_thread();
            (set, thread_priority::unix::thread_schedule_policy())
        })
        .join();
        let Ok((set, policy)) = outcome else {
            panic!("the test thread panicked");
        };
        if cfg!(target_os = "linux") {
            assert!(set, "no privilege is needed");
            assert_eq!(
                policy.ok(),
                Some(ThreadSchedulePolicy::Normal(
                    NormalThreadSchedulePolicy::Idle
                ))
            );
        }
    }

    #[test]
    fn raise_this_thread_sets_the_timing_nice_where_allowed() {
        let outcome = std::thread::spawn(|| {
            let me = os::current_thread();
            let before = me.and_then(os::nice);
            let raised = raise_this_thread();
            (before, raised, me.and_then(os::nice))
        })
        .join();
        let Ok((before, raised, after)) = outcome else {
            panic!("the test thread panicked");
        };
        if raised {
            assert_eq!(after.map(|n| n <= TIMING_NICE), Some(true));
        } else {
            assert_eq!(after, before, "unchanged where the raise is refused");
        }
    }

    #[test]
    fn a_thread_registered_while_raised_is_raised_and_restored() {
        let registry = Registry::new();
        let raised = registry.raise();
        let (id_tx, id_rx) = channel();
        let (done_tx, done_rx) = channel::<()>();
        let late = std::thread::spawn(move || {
            let _ = id_tx.send(os::current_thread());
            let _ = done_rx.recv();
        });
        let Ok(Some(id)) = id_rx.recv() else {
            return; // no thread ids here: nothing to raise
        };
        let before = os::nice(id);
        registry.add(id);
        let during = os::nice(id);
        let may = std::thread::spawn(raise_this_thread)
            .join()
            .unwrap_or(false);
        drop(raised);
        let after = os::nice(id);
        let _ = done_tx.send(());
        assert!(late.join().is_ok());
        if may {
            assert_eq!(during, Some(TIMING_NICE), "raised on registration");
        } else {
            assert_eq!(during, before);
        }
        assert_eq!(after, before, "restored with the others");
    }
}
