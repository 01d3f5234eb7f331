//! The stall meter: a task that sleeps 50 milliseconds at a time and records how much
//! later than asked it woke (after Gil Tene's jHiccup, whose meter is a thread). When the
//! machine is overloaded or throttled (a CPU quota, a VM's stolen time, swapping), the
//! whole process stops for a while and the overshoot measures it; so does a runtime too
//! busy to keep its own clock. Either way the client could not keep time, and the verdict
//! weighs a missed deadline against the stalls inside its window ([`ClientStalls`]).
//!
//! A task, not a thread: a thread of its own made a one-thread run a multi-threaded
//! process and took ~15% off the rate at which it opened 5,000 connections
//! (`benches/echo.rs --open`, side by side), however rarely it woke.
//!
//! Its memory is bounded ([`KEPT`] stalls, the rest counted), and it ends when
//! [`StallMeter::finish`] is called or the meter is dropped.

use crate::model::{ClientStalls, Stall};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long the meter sleeps each time.
const TICK: Duration = Duration::from_millis(50);

/// An overshoot at least this long is a stall: scheduling jitter on a busy but healthy
/// machine stays far below it, and it is short against any deadline a scenario sets.
const STALL: Duration = Duration::from_millis(100);

/// Stalls kept with their times; later ones are only counted.
const KEPT: usize = 256;

/// A running meter (a task on the run's runtime). Dropping it stops it too.
pub(crate) struct StallMeter {
    task: tokio::task::JoinHandle<()>,
    seen: Arc<Mutex<ClientStalls>>,
}

impl StallMeter {
    /// Starts measuring; stall times count from `t0`.
    pub(crate) fn start(t0: Instant) -> StallMeter {
        let seen = Arc::new(Mutex::new(ClientStalls::default()));
        let task = tokio::spawn(measure(t0, seen.clone()));
        StallMeter { task, seen }
    }

    /// Stops the meter and returns what it saw.
    pub(crate) fn finish(self) -> ClientStalls {
        self.task.abort();
        // The meter holds the lock only to record a stall, and never across an await.
        self.seen
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

impl Drop for StallMeter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn measure(t0: Instant, seen: Arc<Mutex<ClientStalls>>) {
    loop {
        let asked = Instant::now() + TICK;
        tokio::time::sleep_until(asked).await;
        let late = Instant::now().saturating_duration_since(asked);
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

    /// (The end-to-end test, `tests/serve_cli.rs`, stops the whole process with
    /// SIGSTOP.)
    #[tokio::test(start_paused = true)]
    async fn a_late_wake_up_is_a_stall_and_finish_hands_it_over() {
        let t0 = Instant::now();
        let meter = StallMeter::start(t0);
        // The meter arms its first sleep; then the clock passes its wake-up by 400 ms
        // before it runs, as when the process was stopped.
        tokio::task::yield_now().await;
        tokio::time::advance(TICK + Duration::from_millis(400)).await;
        tokio::task::yield_now().await;
        let stalls = meter.finish();
        assert_eq!(stalls.count, 1, "{stalls:?}");
        assert!(stalls.longest_ms >= 400.0, "{stalls:?}");
        assert_eq!(stalls.kept[0].at_ms, TICK.as_secs_f64() * 1000.0);
    }
}
