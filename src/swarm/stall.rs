//! The stall meter: a thread of its own that sleeps a few milliseconds at a time and
//! records how much later than asked it woke (after Gil Tene's jHiccup). When the machine
//! is overloaded or throttled (a CPU quota, a VM's stolen time, swapping), every thread of
//! this process stops for a while, this one too, and the overshoot measures it. The verdict
//! weighs a missed deadline against the stalls inside its window ([`ClientStalls`]).
//!
//! Its memory is bounded ([`KEPT`] stalls, the rest counted), it stops by itself within
//! one tick of [`StallMeter::finish`], and nothing waits for it: its thread is not joined.

use crate::model::{ClientStalls, Stall};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the meter sleeps each time.
const TICK: Duration = Duration::from_millis(5);

/// An overshoot at least this long is a stall: scheduling jitter on a busy but healthy
/// machine stays far below it, and it is short against any deadline a scenario sets.
const STALL: Duration = Duration::from_millis(50);

/// Stalls kept with their times; later ones are only counted.
const KEPT: usize = 256;

/// A running meter. Dropping it without [`Self::finish`] stops it too.
pub(crate) struct StallMeter {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<ClientStalls>>,
}

impl StallMeter {
    /// Starts measuring; stall times count from `t0` (negative before it: the lead in
    /// which the tasks are spawned counts as 0).
    pub(crate) fn start(t0: Instant) -> StallMeter {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(ClientStalls::default()));
        let (thread_stop, thread_seen) = (stop.clone(), seen.clone());
        let spawned = std::thread::Builder::new()
            .name("stampede-stall-meter".into())
            .spawn(move || measure(t0, &thread_stop, &thread_seen));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the stall meter: client stalls go unmeasured");
        }
        StallMeter { stop, seen }
    }

    /// Stops the meter and returns what it saw.
    pub(crate) fn finish(self) -> ClientStalls {
        self.stop.store(true, Ordering::Relaxed);
        // The meter holds the lock only to record a stall: never for long.
        self.seen
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

impl Drop for StallMeter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn measure(t0: Instant, stop: &AtomicBool, seen: &Mutex<ClientStalls>) {
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now() + TICK;
        std::thread::sleep(TICK);
        let woke = Instant::now();
        let late = woke.saturating_duration_since(asked);
        if late >= STALL {
            if let Ok(mut s) = seen.lock() {
                note(&mut s, asked.saturating_duration_since(t0), late);
            }
        }
    }
}

/// Adds a stall that began `at` after the run start and lasted `late`.
fn note(s: &mut ClientStalls, at: Duration, late: Duration) {
    let ms = late.as_secs_f64() * 1000.0;
    s.count += 1;
    s.total_ms += ms;
    s.longest_ms = s.longest_ms.max(ms);
    if s.kept.len() < KEPT {
        s.kept.push(Stall {
            at_ms: at.as_secs_f64() * 1000.0,
            ms,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_are_counted_in_full_and_kept_up_to_the_bound() {
        let mut s = ClientStalls::default();
        for i in 0..KEPT as u64 + 10 {
            note(
                &mut s,
                Duration::from_millis(i * 100),
                Duration::from_millis(60),
            );
        }
        assert_eq!(s.count, KEPT as u64 + 10);
        assert_eq!(s.kept.len(), KEPT);
        assert!(!s.all_kept());
        assert!((s.total_ms - 60.0 * s.count as f64).abs() < 1e-6);
        // The stall at 100 ms lasts to 160 ms: 40 ms of it fall in [120, 300].
        assert!((s.within(120.0, 300.0) - (40.0 + 60.0)).abs() < 1e-6);
    }

    /// (The end-to-end test, `tests/client_stall.rs`, stops the whole process with
    /// SIGSTOP.)
    #[test]
    fn a_finished_meter_hands_over_what_it_saw_and_stops() {
        let meter = StallMeter::start(Instant::now());
        let seen = meter.seen.clone();
        let stop = meter.stop.clone();
        let stalls = meter.finish();
        assert!(stop.load(Ordering::Relaxed));
        assert!(stalls.count as usize >= stalls.kept.len());
        assert_eq!(*seen.lock().unwrap(), ClientStalls::default());
    }
}
