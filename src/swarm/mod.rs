//! The swarm: executes a [`Plan`] with one lightweight task per connection.
//!
//! All tasks share one run start `t0` and sleep until their own absolute instant
//! (`t0 + start`), so a slow spawn or a busy runtime shows up as generator lag instead of
//! silently shifting every later connection. The run stops at the plan's duration or when
//! the caller's token is cancelled (Ctrl-C); either way every task returns what it has.

mod conn;
pub mod dial;
mod stream;
pub mod tls;

pub use dial::{Dialer, Target, UrlError};
pub use tls::{client_config, TlsError, TlsOptions};

use crate::auth::Token;
use crate::metrics::{Aggregator, Counters, Histograms};
use crate::oracle::Violation;
use crate::plan::Plan;
use crate::scenario::OracleSpec;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Live figures for a progress display; updated with relaxed atomics, read occasionally.
#[derive(Debug, Default)]
pub struct Live {
    pub live: AtomicI64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub violations: AtomicU64,
    pub finished: AtomicU64,
}

/// One connection attempt (the first connect, or a reconnect), times in µs from `t0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub started_us: u64,
    pub upgraded_us: Option<u64>,
    pub ended_us: u64,
    pub accepted: bool,
    /// Why it was refused or how it ended.
    pub cause: Option<String>,
}

/// What one connection task hands back.
#[derive(Debug, Clone)]
pub struct ConnReport {
    pub id: u32,
    pub token: u32,
    pub counters: Counters,
    pub violations: Vec<Violation>,
    pub attempts: Vec<Attempt>,
}

/// What the whole swarm hands back.
#[derive(Debug)]
pub struct SwarmOutput {
    pub reports: Vec<ConnReport>,
    pub histograms: Histograms,
    pub elapsed: Duration,
    /// The caller cancelled (Ctrl-C) before the plan finished.
    pub interrupted: bool,
    /// The plan's duration ran out before every connection finished.
    pub hit_duration: bool,
    /// Tasks that panicked (a bug in stampede, never in the target).
    pub task_failures: u64,
}

/// Shared, read-only state of a run.
pub(crate) struct RunCtx {
    pub plan: Arc<Plan>,
    pub dialer: Dialer,
    pub tokens: Vec<Token>,
    pub oracles: Arc<OracleSpec>,
    pub t0: Instant,
    pub live: Arc<Live>,
}

/// Runs the plan to completion, to its duration, or until `cancel` fires.
pub async fn run(
    plan: Arc<Plan>,
    dialer: Dialer,
    tokens: Vec<Token>,
    live: Arc<Live>,
    cancel: CancellationToken,
) -> SwarmOutput {
    // Leave time to spawn every task before the first planned start.
    let lead = Duration::from_millis(20) + Duration::from_micros(3 * plan.conns.len() as u64);
    let t0 = Instant::now() + lead;
    let run_cancel = cancel.child_token();
    let deadline = t0 + plan.duration;
    let ctx = Arc::new(RunCtx {
        oracles: Arc::new(plan.oracles.clone()),
        plan,
        dialer,
        tokens,
        t0,
        live,
    });
    let aggregator = Aggregator::spawn();
    let mut tasks = JoinSet::new();
    for index in 0..ctx.plan.conns.len() {
        let task = conn::ConnRun::new(ctx.clone(), index, run_cancel.clone(), aggregator.buffer());
        tasks.spawn(task.run());
    }
    let (reports, task_failures, hit_duration) =
        collect(&mut tasks, &ctx, deadline, &run_cancel).await;
    let histograms = aggregator.finish().await;
    SwarmOutput {
        reports,
        histograms,
        elapsed: t0.elapsed(),
        interrupted: cancel.is_cancelled(),
        hit_duration,
        task_failures,
    }
}

async fn collect(
    tasks: &mut JoinSet<ConnReport>,
    ctx: &RunCtx,
    deadline: Instant,
    run_cancel: &CancellationToken,
) -> (Vec<ConnReport>, u64, bool) {
    let mut reports = Vec::with_capacity(tasks.len());
    let mut failures = 0;
    let mut hit_duration = false;
    let deadline_timer = tokio::time::sleep_until(deadline);
    tokio::pin!(deadline_timer);
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(report)) => {
                    ctx.live.finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    reports.push(report);
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "connection task failed");
                    failures += 1;
                }
                None => break,
            },
            _ = &mut deadline_timer, if !hit_duration => {
                hit_duration = true;
                run_cancel.cancel();
            }
        }
    }
    reports.sort_by_key(|r| r.id);
    (reports, failures, hit_duration)
}
