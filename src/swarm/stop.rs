//! The run's end as a connection watches for it: on every wake-up and before every step.
//!
//! A [`CancellationToken`] answers `is_cancelled` under its tree's mutex, and its wait
//! re-registers with the token's `Notify` (another mutex) each time it is polled. Every
//! connection of a run shares one token, and a connection asks several times per message,
//! so those locks were a visible share of a message's cost, and on a multi-threaded
//! runtime a cache line every core fought over. [`StopWatch`] registers the wait once
//! (again only when the task's waker changes) with a waker of its own that raises the
//! run's flag ([`RunStop`]) before waking the task; after that, asking costs one atomic
//! load of a line every connection reads and only the end writes, so it stays in every
//! core's cache (a flag per connection was one more cold line per message at a thousand
//! connections).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A run's cancellation token and the flag its watchers raise once it fires. Clones share
/// both: make one per token.
#[derive(Clone)]
pub(super) struct RunStop {
    token: CancellationToken,
    fired: Arc<AtomicBool>,
}

impl RunStop {
    pub(super) fn new(token: CancellationToken) -> Self {
        RunStop {
            token,
            fired: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A connection's view of the run's cancellation token.
pub(super) struct StopWatch {
    run: RunStop,
    /// The token's wait, registered with a [`Fire`] for `task`.
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The task the registered wait wakes; `None` until the first poll.
    task: Option<Waker>,
}

/// What the token's wait wakes: raises the run's flag, then wakes the task.
struct Fire {
    fired: Arc<AtomicBool>,
    task: Waker,
}

impl Wake for Fire {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl StopWatch {
    pub(super) fn new(run: RunStop) -> Self {
        StopWatch {
            wait: Box::pin(run.token.clone().cancelled_owned()),
            run,
            task: None,
        }
    }

    /// The token itself, for the rare waits that race it on their own.
    pub(super) fn token(&self) -> &CancellationToken {
        &self.run.token
    }

    /// Whether the run is over: one atomic load once a wait is registered.
    pub(super) fn is_stopped(&self) -> bool {
        // Before any watcher registered, nothing raises the flag: ask the token.
        self.run.fired.load(Ordering::Acquire)
            || (self.task.is_none() && self.run.token.is_cancelled())
    }

    /// `Ready` once the run is over; otherwise registers this task to be woken then.
    pub(super) fn poll_stopped(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.run.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if self.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        let fire = Arc::new(Fire {
            fired: self.run.fired.clone(),
            task: cx.waker().clone(),
        });
        let polled = self
            .wait
            .as_mut()
            .poll(&mut Context::from_waker(&Waker::from(fire)));
        if polled.is_ready() {
            self.run.fired.store(true, Ordering::Release);
        }
        self.task = Some(cx.waker().clone());
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[tokio::test]
    async fn a_cancel_after_the_wait_is_registered_is_seen_by_the_flag_and_wakes_the_task() {
        let token = CancellationToken::new();
        let mut watch = StopWatch::new(RunStop::new(token.clone()));
        assert!(!watch.is_stopped());
        // Registers the wait: pending.
        let first = poll_fn(|cx| Poll::Ready(watch.poll_stopped(cx))).await;
        assert!(first.is_pending());
        assert!(!watch.is_stopped());
        let canceller = tokio::spawn(async move { token.cancel() });
        // Woken by the cancel (a lost wake-up would hang here; bounded).
        let woke = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            poll_fn(|cx| watch.poll_stopped(cx)),
        )
        .await;
        assert!(woke.is_ok());
        assert!(watch.is_stopped());
        canceller.await.expect("the canceller ran");
    }

    #[tokio::test]
    async fn a_token_cancelled_before_the_first_poll_is_ready_at_once() {
        let token = CancellationToken::new();
        let mut watch = StopWatch::new(RunStop::new(token.clone()));
        token.cancel();
        assert!(watch.is_stopped());
        let polled = poll_fn(|cx| Poll::Ready(watch.poll_stopped(cx))).await;
        assert!(polled.is_ready());
        assert!(watch.is_stopped());
    }

    /// A waker that counts its wake-ups.
    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_new_waker_registers_the_wait_again() {
        let token = CancellationToken::new();
        let mut watch = StopWatch::new(RunStop::new(token.clone()));
        // Registered with a waker that wakes nobody ...
        assert!(watch
            .poll_stopped(&mut Context::from_waker(Waker::noop()))
            .is_pending());
        // ... then polled with another: the cancel must wake that one.
        let count = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        assert!(watch
            .poll_stopped(&mut Context::from_waker(&waker))
            .is_pending());
        token.cancel();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(watch.is_stopped());
        assert!(watch
            .poll_stopped(&mut Context::from_waker(&waker))
            .is_ready());
    }
}
