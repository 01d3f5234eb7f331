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

/// Pushes the run's events into the connection's queue, `event_delay` apart,
/// until done, cancelled, or the queue overflows.
pub(crate) async fn drive(
    run: RunContext,
    outbox: Arc<Outbox>,
    cancel: CancellationToken,
    timing: RunTiming,
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
