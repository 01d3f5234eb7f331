//! The read loop's timer: one tokio [`Sleep`] per connection, touched as little as it can
//! be. Every expected answer moves the loop's next wake-up (the expectation's deadline);
//! resetting and polling the `Sleep` each time read and wrote its entry, a cache line of
//! its own that a thousand connections had long pushed out of the cache (the largest
//! single stall of the read loop at 1,000 connections).
//!
//! So the timer only ever moves earlier: a later wake-up keeps the armed one, which may
//! then fire early (a spurious wake-up the loop takes as a timer tick: it settles nothing
//! and re-arms). And the first poll of a wait skips the `Sleep` while the clock is short of
//! the armed instant: an earlier poll of this same task registered it, so its firing wakes
//! the task, and every later poll of the wait polls it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep};

/// Which poll of a wait [`WakeTimer::poll_until`] is asked in.
#[derive(Debug, Clone, Copy)]
pub(super) enum Turn {
    /// A later poll (the task woke): the timer is polled whenever it is due to be.
    Woken,
    /// The wait's first poll, straight from the loop: the clock tells whether the armed
    /// instant may have passed.
    First,
    /// The wait's first poll, with an instant read during this same poll of the task,
    /// which stands in for the clock (one read less per expected answer). The timer driver
    /// runs only between polls of tasks, so it cannot have fired a timer armed for later
    /// than that instant. Not for an instant read before an `.await` that may have
    /// yielded.
    FirstAt(Instant),
}

/// A [`Sleep`] armed for the earliest wake-up asked of it, and the instant it is armed for
/// (`None` once it fired, or before its first use).
pub(super) struct WakeTimer {
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl WakeTimer {
    /// Not registered with the runtime's timer until first polled.
    pub(super) fn new() -> Self {
        WakeTimer {
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed: None,
        }
    }

    /// Ready once `at` (or an earlier instant the timer was armed for) has passed; pending
    /// forever when `None`. `turn`: whether this is the first poll of a wait, made by the
    /// task that polled the timer before (the loop comes round without the task having
    /// slept), and what it knows of the time.
    pub(super) fn poll_until(
        &mut self,
        at: Option<Instant>,
        turn: Turn,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let Some(at) = at else {
            return Poll::Pending;
        };
        match self.armed {
            Some(armed) if armed <= at => {
                let now = match turn {
                    Turn::Woken => None,
                    Turn::First => Some(Instant::now()),
                    Turn::FirstAt(now) => Some(now),
                };
                if now.is_some_and(|now| now < armed) {
                    // Cannot have fired yet, and its firing wakes this task.
                    return Poll::Pending;
                }
            }
            _ => {
                self.sleep.as_mut().reset(at);
                self.armed = Some(at);
            }
        }
        let fired = self.sleep.as_mut().poll(cx);
        if fired.is_ready() {
            self.armed = None;
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::time::Duration;

    /// Polls the timer once for `at`, with a waker that counts its wake-ups.
    fn poll_once(
        timer: &mut WakeTimer,
        at: Option<Instant>,
        fresh: bool,
        woken: &std::sync::Arc<Woken>,
    ) -> Poll<()> {
        let turn = if fresh { Turn::First } else { Turn::Woken };
        poll_turn(timer, at, turn, woken)
    }

    fn poll_turn(
        timer: &mut WakeTimer,
        at: Option<Instant>,
        turn: Turn,
        woken: &std::sync::Arc<Woken>,
    ) -> Poll<()> {
        let waker = std::task::Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        timer.poll_until(at, turn, &mut cx)
    }

    #[derive(Default)]
    struct Woken(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Woken {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn woken(w: &Woken) -> usize {
        w.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_earliest_instant_asked_and_then_rearms() {
        let mut timer = WakeTimer::new();
        let t0 = Instant::now();
        wait(&mut timer, t0 + Duration::from_millis(50)).await;
        assert!(Instant::now() >= t0 + Duration::from_millis(50));
        assert_eq!(
            timer.armed, None,
            "a fired timer is armed again on its next use"
        );
        wait(&mut timer, t0 + Duration::from_millis(120)).await;
        assert!(Instant::now() >= t0 + Duration::from_millis(120));
    }

    /// Waits as the read loop does: a fresh first poll, then the task's wake-ups.
    async fn wait(timer: &mut WakeTimer, at: Instant) {
        let mut turn = Turn::First;
        poll_fn(|cx| timer.poll_until(Some(at), std::mem::replace(&mut turn, Turn::Woken), cx))
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_instant_keeps_the_armed_one_and_an_earlier_moves_it() {
        let woken_by = std::sync::Arc::new(Woken::default());
        let mut timer = WakeTimer::new();
        let t0 = Instant::now();
        let first = t0 + Duration::from_millis(100);
        assert!(poll_once(&mut timer, Some(first), true, &woken_by).is_pending());
        assert_eq!(timer.armed, Some(first));
        // Later: kept (it fires early; the loop takes that as a tick).
        let later = t0 + Duration::from_millis(300);
        assert!(poll_once(&mut timer, Some(later), true, &woken_by).is_pending());
        assert_eq!(timer.armed, Some(first));
        // Earlier: moved.
        let earlier = t0 + Duration::from_millis(40);
        assert!(poll_once(&mut timer, Some(earlier), true, &woken_by).is_pending());
        assert_eq!(timer.armed, Some(earlier));
        tokio::time::advance(Duration::from_millis(40)).await;
        assert!(
            woken(&woken_by) >= 1,
            "its firing wakes the task that polled it"
        );
        assert!(poll_once(&mut timer, Some(later), false, &woken_by).is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_that_fired_unpolled_is_seen_by_the_next_fresh_wait() {
        // The task woke for a frame after the timer had fired, and that wait ended with the
        // frame (the timer's branch not polled): the next wait's first poll must still see
        // the timer, which will not wake anyone again.
        let woken_by = std::sync::Arc::new(Woken::default());
        let mut timer = WakeTimer::new();
        let at = Instant::now() + Duration::from_millis(10);
        assert!(poll_once(&mut timer, Some(at), true, &woken_by).is_pending());
        tokio::time::advance(Duration::from_millis(25)).await;
        assert!(poll_once(&mut timer, Some(at), true, &woken_by).is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_poll_given_the_time_reads_no_clock() {
        let woken_by = std::sync::Arc::new(Woken::default());
        let mut timer = WakeTimer::new();
        let t0 = Instant::now();
        let at = t0 + Duration::from_millis(10);
        assert!(poll_once(&mut timer, Some(at), true, &woken_by).is_pending());
        tokio::time::advance(Duration::from_millis(25)).await;
        // The instant given is the time it goes by: before the armed one, the timer is not
        // polled (the clock, read, would have said it fired).
        assert!(poll_turn(&mut timer, Some(at), Turn::FirstAt(t0), &woken_by).is_pending());
        assert!(poll_turn(
            &mut timer,
            Some(at),
            Turn::FirstAt(Instant::now()),
            &woken_by
        )
        .is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_to_wait_for_is_pending() {
        let woken_by = std::sync::Arc::new(Woken::default());
        let mut timer = WakeTimer::new();
        assert!(poll_once(&mut timer, None, true, &woken_by).is_pending());
        assert!(poll_once(&mut timer, None, false, &woken_by).is_pending());
        assert_eq!(timer.armed, None);
    }
}
