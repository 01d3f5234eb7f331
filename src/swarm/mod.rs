//! The swarm: executes a [`Plan`] with one lightweight task per connection.
//!
//! All tasks share one run start `t0` and sleep until their own absolute instant
//! (`t0 + start`), so a slow spawn or a busy runtime shows up as generator lag instead of
//! silently shifting every later connection. The run stops at the plan's duration or when
//! the caller's token is cancelled (Ctrl-C); either way every task returns what it has.

mod answer;
mod barrier;
mod conn;
pub mod dial;
mod login;
mod probe;
mod release;
mod rendezvous;
mod stall;
mod stop;
mod stream;
pub mod tls;
pub(crate) mod unreachable;
mod upgrade;

pub use dial::{Dialer, Endpoint, SourceAddrs, SourceError, UrlError};
pub use probe::TAIL as PROBE_TAIL;
pub use tls::{client_config, TlsError, TlsOptions};

use crate::auth::Token;
use crate::metrics::{Aggregated, Aggregator, Histograms, IntervalConfig, IntervalSeries, Live};
use crate::model::{BarrierStats, Cause, ConnPlan, ConnReport, OracleSpec, Placement, Plan, Probe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the whole swarm hands back. `Default`: a swarm that never started.
#[derive(Debug, Default)]
pub struct SwarmOutput {
    pub reports: Vec<ConnReport>,
    pub histograms: Histograms,
    /// One point per interval (counts, live connections, turn p99).
    pub intervals: IntervalSeries,
    pub elapsed: Duration,
    /// The caller cancelled (Ctrl-C) before the plan finished.
    pub interrupted: bool,
    /// The caller cancelled during the probe phase, after the plan had finished: the
    /// load's results stand; the probes it cut are inconclusive.
    pub probe_interrupted: bool,
    /// The plan's duration ran out before every connection finished.
    pub hit_duration: bool,
    /// Why the run stopped early, when its first attempts all failed one way that says
    /// the target cannot be used as configured (`unreachable::FailFast`: a closed port, a
    /// wrong secret, a wrong path, a refused certificate), and how many had failed so.
    pub stopped_early: Option<(crate::model::StopReason, u64)>,
    /// Tasks that panicked (a bug in stampede, never in the target).
    pub task_failures: u64,
    /// For a plan that releases connections together: whether the runtime's threads ran
    /// raised above a co-located server's (`crate::priority`). `None` without releases.
    pub releases_raised: Option<bool>,
    /// How tightly each collide barrier and each rendezvous meeting released its
    /// connections.
    pub barriers: Vec<BarrierStats>,
    /// The probe phase: every valid token used, reconnected once after the run. Probes cut
    /// by the phase's bound ([`PROBE_TAIL`] after the planned duration) or by Ctrl-C are
    /// here too, unanswered, with `Cause::Interrupted`.
    pub probes: Vec<Probe>,
    /// When this process itself did not run during the load (`ClientStalls`).
    pub stalls: crate::model::ClientStalls,
}

/// `at + d`, or far in the future when that does not fit an `Instant` (a duration from a
/// scenario may be up to 2^64 µs; `Instant + Duration` would panic on it).
pub(crate) fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Shared, read-only state of a run.
pub(crate) struct RunCtx {
    pub plan: Arc<Plan>,
    pub dialer: Dialer,
    pub tokens: Vec<Token>,
    pub oracles: Arc<OracleSpec>,
    pub t0: Instant,
    pub live: Arc<Live>,
    pub barriers: Vec<Arc<barrier::Barrier>>,
    /// The meetings of the plan's message rendezvous points.
    pub rendezvous: rendezvous::Meetings,
    /// Extra upgrade headers and Origin, the same for every connection.
    pub extras: crate::auth::UpgradeExtras,
    /// `Plan::turn_names`: a named expectation's turn histogram is its index here.
    pub turn_names: Vec<String>,
    /// Each group's compiled `send` templates (by group index), shared by its connections.
    pub templates: Vec<Option<Arc<crate::plan::SendTemplates>>>,
    /// Each group's [`Plan::script_kinds`] (by group index), shared by its connections.
    pub script_kinds: Vec<Option<Arc<std::collections::BTreeSet<String>>>>,
    /// Each group's sends no `expect` follows (by group index,
    /// [`unjudged_places`](crate::oracle::verdict::unjudged_places)): a connection counts
    /// what came after the last of them it made.
    pub unjudged: Vec<Vec<crate::model::StepPlace>>,
    /// [`Plan::sessions_shared`]: by token, whether another connection presents it, or
    /// another token of its user, too.
    pub shared_sessions: Vec<bool>,
    /// Stops the run early when the target refuses every TCP connection.
    pub unreachable: unreachable::FailFast,
    /// Whether a waking connection's state is prefetched ([`crate::prefetch::pays`]: the
    /// run's connections per worker thread of the runtime it runs on).
    pub prefetch: bool,
}

/// Compiles each group's `send` templates once (from its first scripted connection: a
/// group's connections share its script and its correlation fields).
fn send_templates(plan: &Plan) -> Vec<Option<Arc<crate::plan::SendTemplates>>> {
    let mut out: Vec<Option<Arc<crate::plan::SendTemplates>>> = vec![None; plan.groups.len()];
    let mut done = vec![false; plan.groups.len()];
    for conn in &plan.conns {
        let g = conn.group as usize;
        if conn.is_scripted() && done.get(g) == Some(&false) {
            done[g] = true;
            out[g] = crate::plan::SendTemplates::of(plan, conn);
        }
    }
    out
}

/// How connection `conn` presents itself on the upgrade: its placement (the group's or
/// `[auth]`'s; a `first_message` with the connection's placeholders filled), its extra
/// headers (`[auth] headers`, then the group's, values filled the same way) and, when the
/// target URL's path or query holds placeholders, the URL it dials with them filled
/// ([`Endpoint::url_for`]). Borrowed as they are when nothing needs filling, which is the
/// common case. Called once per dial: nothing filled here is kept with the connection.
pub(crate) fn upgrade_of<'a>(
    ctx: &'a RunCtx,
    conn: &'a ConnPlan,
) -> (
    std::borrow::Cow<'a, Placement>,
    std::borrow::Cow<'a, crate::auth::UpgradeExtras>,
) {
    use std::borrow::Cow;
    let placement = ctx.plan.placement_of(conn);
    let templated = |s: &str| s.contains("{{");
    let first_message = matches!(placement, Placement::FirstMessage { template, .. } if templated(&template.to_string()));
    let own = ctx.plan.headers_of(conn);
    let protocols = ctx.plan.subprotocols_of(conn);
    let headers = !own.is_empty()
        || !protocols.is_empty()
        || ctx.extras.headers.iter().any(|(_, v)| templated(v));
    let url = ctx.dialer.endpoint.is_templated();
    if !first_message && !headers && !url {
        return (Cow::Borrowed(placement), Cow::Borrowed(&ctx.extras));
    }
    let group = ctx.plan.group_name(conn);
    let sub = ctx
        .tokens
        .get(conn.token as usize)
        .map(|t| t.sub.clone())
        .unwrap_or_default();
    let vars = crate::plan::Vars {
        user: conn.user,
        conn: conn.id,
        group: &group,
        sub: &sub,
        feed: ctx.plan.feed_of(conn),
    };
    let placement = match placement {
        Placement::FirstMessage {
            template,
            text,
            after,
        } if first_message => Cow::Owned(Placement::FirstMessage {
            template: crate::plan::expand_fixed(template, &vars),
            text: *text,
            after: after.clone(),
        }),
        other => Cow::Borrowed(other),
    };
    if !headers && !url {
        return (placement, Cow::Borrowed(&ctx.extras));
    }
    let mut extras = ctx.extras.clone();
    extras.url = ctx.dialer.endpoint.url_for(&vars);
    if !protocols.is_empty() {
        extras.subprotocols = protocols.to_vec();
    }
    for (name, value) in own {
        extras
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        extras
            .headers
            .push((name.clone(), value.as_str().to_owned()));
    }
    for (_, value) in &mut extras.headers {
        if templated(value) {
            *value = crate::plan::expand_fixed_text(value, &vars);
        }
    }
    (placement, Cow::Owned(extras))
}

/// Runs the plan to completion, to its duration, or until `cancel` fires. Samples are
/// sliced into `intervals` from the run start (and streamed to its log, if any).
pub async fn run(
    plan: Arc<Plan>,
    dialer: Dialer,
    tokens: Vec<Token>,
    live: Arc<Live>,
    intervals: IntervalConfig,
    cancel: CancellationToken,
) -> SwarmOutput {
    // Leave time to spawn every task before the first planned start.
    let lead = Duration::from_millis(20) + Duration::from_micros(3 * plan.conns.len() as u64);
    let t0 = Instant::now() + lead;
    let _ = live.load_started.set(t0.into_std());
    let run_cancel = cancel.child_token();
    let deadline = later(t0, plan.duration);
    let barriers = plan
        .barriers
        .iter()
        .map(|_| barrier::Barrier::new(run_cancel.child_token(), t0))
        .collect();
    let rendezvous = rendezvous::Meetings::new(plan.clone(), t0, run_cancel.clone());
    // A release must not wait for a co-located server's threads: raised for the run, where
    // the process may (see `priority`).
    let raised = plan.releases_together().then(crate::priority::raise);
    let releases_raised = raised.as_ref().map(|r| r.count() > 0);
    if releases_raised == Some(false) && crate::priority::managed() {
        // Once per process: a hunt runs many rounds, and its report has no place for it.
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            tracing::warn!(
                "releases run at the default priority (no CAP_SYS_NICE or RLIMIT_NICE): a server on this machine can interrupt them; see docs/hunting.md, \"How the release is kept tight\""
            );
        });
    }
    let plan_auth = plan.auth.clone();
    let turn_names = plan.turn_names();
    let templates = send_templates(&plan);
    let script_kinds = (0..plan.scripts.len())
        .map(|g| plan.script_kinds(g).map(Arc::new))
        .collect();
    let shared_sessions = plan.sessions_shared();
    let unjudged = plan
        .scripts
        .iter()
        .map(|script| crate::oracle::verdict::unjudged_places(script))
        .collect();
    let unreachable =
        unreachable::FailFast::for_plan(&plan, dialer.endpoint.is_templated(), run_cancel.clone());
    // Calibration's connections were upgraded and accepted just before the load: the path
    // takes WebSockets, the client takes the server's certificate, and the server its
    // tokens and protocol.
    if live.calibration_accepted.load(Ordering::Relaxed) > 0 {
        unreachable.upgraded();
        unreachable.accepted();
    }
    let threads = tokio::runtime::Handle::current().metrics().num_workers();
    let prefetch = crate::prefetch::pays(plan.conns.len(), threads);
    let ctx = Arc::new(RunCtx {
        prefetch,
        shared_sessions,
        unreachable,
        oracles: Arc::new(plan.oracles.clone()),
        plan,
        dialer,
        tokens,
        t0,
        live,
        barriers,
        rendezvous,
        extras: crate::auth::UpgradeExtras::from_plan(&plan_auth),
        turn_names,
        templates,
        script_kinds,
        unjudged,
    });
    for index in 0..ctx.barriers.len() {
        tokio::spawn(fire_barrier(ctx.clone(), index));
    }
    let aggregator = Aggregator::spawn(t0, intervals, ctx.live.clone());
    let stall_meter = stall::StallMeter::start(t0);
    let mut tasks = JoinSet::new();
    let run_stop = stop::RunStop::new(run_cancel.clone());
    for index in 0..ctx.plan.conns.len() {
        let task = Box::new(conn::ConnRun::new(
            ctx.clone(),
            index,
            run_stop.clone(),
            aggregator.buffer(),
        ));
        tasks.spawn(task.run());
    }
    let (reports, task_failures, hit_duration) =
        collect(&mut tasks, &ctx, deadline, &run_cancel).await;
    let stalls = stall_meter.finish();
    let Aggregated {
        histograms,
        intervals,
    } = aggregator.finish().await;
    let mut histograms = histograms;
    histograms.name_turns(&ctx.turn_names);
    // One instant for both: the run's length and where a progress display stops its clock.
    let ended = Instant::now();
    let elapsed = ended.saturating_duration_since(t0);
    let _ = ctx.live.load_ended.set(ended.into_std());
    let barriers = barrier_stats(&ctx, &reports);
    // Probe after a run that completed or reached its duration (its cut connections closed
    // with 1001; the quiet period covers the server's cleanup), not after Ctrl-C; Ctrl-C
    // during the probe stops it. It ends by `duration + probe::TAIL` from the run start.
    // Whether Ctrl-C stopped the load itself; one that comes only during the probe leaves
    // the load's results whole (`probe_interrupted`).
    let interrupted = cancel.is_cancelled();
    let probes = match ctx.plan.oracles.session.liveness {
        Some(liveness) if !interrupted => {
            let probe_deadline = deadline + PROBE_TAIL;
            probe::run(&ctx, &reports, liveness, probe_deadline, &cancel).await
        }
        _ => Vec::new(),
    };
    drop(raised);
    SwarmOutput {
        releases_raised,
        barriers,
        probes,
        reports,
        histograms,
        intervals,
        elapsed,
        interrupted,
        probe_interrupted: !interrupted && cancel.is_cancelled(),
        hit_duration,
        stopped_early: ctx.unreachable.stopped_early(),
        task_failures,
        stalls,
    }
}

/// Fires a barrier at its planned release: every held request goes out at once.
async fn fire_barrier(ctx: Arc<RunCtx>, index: usize) {
    let (Some(plan), Some(barrier)) = (ctx.plan.barriers.get(index), ctx.barriers.get(index))
    else {
        return;
    };
    tokio::select! {
        _ = barrier.token.cancelled() => return,
        _ = tokio::time::sleep_until(later(ctx.t0, plan.release)) => {}
    }
    barrier.fire(false);
}

fn barrier_stats(ctx: &RunCtx, reports: &[ConnReport]) -> Vec<BarrierStats> {
    let mut out = Vec::new();
    for (index, (plan, barrier)) in ctx.plan.barriers.iter().zip(&ctx.barriers).enumerate() {
        let fired = barrier.fired_us.load(std::sync::atomic::Ordering::Relaxed);
        let members: std::collections::BTreeSet<u32> = ctx
            .plan
            .conns
            .iter()
            .filter(|c| c.barrier == Some(index as u32))
            .map(|c| c.id)
            .collect();
        if members.is_empty() {
            // None of its connections is in this shard: nothing to say of it here.
            continue;
        }
        // A barrier that never fired (the run ended first) released nobody together.
        let lags: Vec<u64> = reports
            .iter()
            .filter(|r| fired != u64::MAX && members.contains(&r.id))
            .filter_map(|r| r.released_us)
            .map(|at| at.saturating_sub(fired))
            .collect();
        let group = ctx
            .plan
            .groups
            .get(plan.group as usize)
            .cloned()
            .unwrap_or_default();
        out.push(BarrierStats::of_release(group, members.len(), lags, fired));
    }
    out.extend(ctx.rendezvous.summary());
    out
}

/// Whether a connection made at least one attempt before it ended. One the run's end or
/// Ctrl-C stopped before its start never dialled: the progress display does not count it
/// as done, so its `done` never exceeds the summary's `attempted`.
fn dialled(report: &ConnReport) -> bool {
    !report.attempts.is_empty()
}

/// Whether the run's end stopped a connection that had dialled before its script ended:
/// its last attempt was cut (interrupted).
fn stopped(report: &ConnReport) -> bool {
    report
        .attempts
        .last()
        .is_some_and(|a| a.cause == Some(Cause::Interrupted))
}

async fn collect(
    tasks: &mut JoinSet<Box<ConnReport>>,
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
                    if dialled(&report) {
                        ctx.live.finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    if stopped(&report) {
                        ctx.live.stopped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    reports.push(*report);
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

#[cfg(test)]
mod later_tests {
    use super::*;

    #[test]
    fn an_offset_past_what_an_instant_holds_saturates_instead_of_panicking() {
        let now = Instant::now();
        let far = later(now, Duration::from_micros(u64::MAX).saturating_mul(1000));
        assert!(far > now + Duration::from_secs(50 * 365 * 24 * 3600));
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
