//! One run: the event sequence answering one `user_message`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::protocol::{run_event, run_steps, RunContext, Step};
use super::session::Outbox;

/// How a run paces its events.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunTiming {
    pub response_delay: Duration,
    pub event_delay: Duration,
    pub thinking_events: u32,
    /// Planted bug `burst-event-loss`: this run skips `tool_completed`.
    pub lose_tool_completed: bool,
}

/// A one-time server-wide stall (`serve --stall`): when run number `after` starts, every
/// run holds its events for `duration`. The open-model test uses it to show coordinated
/// omission: a closed-loop client sees the stall once, an open one sees it as it is.
#[derive(Debug)]
pub(crate) struct StallGate {
    after: u64,
    duration: Duration,
    runs: std::sync::atomic::AtomicU64,
    until: std::sync::OnceLock<tokio::time::Instant>,
}

impl StallGate {
    pub fn new(after: u64, duration: Duration) -> Self {
        StallGate {
            after,
            duration,
            runs: Default::default(),
            until: Default::default(),
        }
    }

    /// Counts a run start; the `after`-th one arms the stall.
    pub fn on_run_start(&self) {
        let n = self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n == self.after {
            let _ = self.until.set(tokio::time::Instant::now() + self.duration);
        }
    }

    async fn hold(&self, cancel: &CancellationToken) -> bool {
        match self.until.get() {
            Some(until) if tokio::time::Instant::now() < *until => tokio::select! {
                () = cancel.cancelled() => false,
                () = tokio::time::sleep_until(*until) => true,
            },
            _ => !cancel.is_cancelled(),
        }
    }
}

/// Pushes the run's events into the connection's queue, `event_delay` apart,
/// until done, cancelled, or the queue overflows.
pub(crate) async fn drive(
    run: RunContext,
    outbox: Arc<Outbox>,
    cancel: CancellationToken,
    timing: RunTiming,
    stall: Option<Arc<StallGate>>,
) {
    if !pause(timing.response_delay, &cancel).await {
        return;
    }
    for (index, step) in run_steps(timing.thinking_events).enumerate() {
        if index > 0 && !pause(timing.event_delay, &cancel).await {
            return;
        }
        if step == Step::ToolCompleted && timing.lose_tool_completed {
            continue;
        }
        if let Some(gate) = &stall {
            if !gate.hold(&cancel).await {
                return;
            }
        }
        if !outbox.push(run_event(&run, step)) {
            return;
        }
    }
}

/// Waits `duration` (not at all when zero); false if cancelled.
async fn pause(duration: Duration, cancel: &CancellationToken) -> bool {
    if duration.is_zero() {
        return !cancel.is_cancelled();
    }
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}
