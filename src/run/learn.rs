//! Calibration: before the load, a few connections of different users, one at a time,
//! walk the scenario's script against the target; what they saw every time becomes the
//! learned invariants the run then checks beside the declared ones
//! ([`crate::oracle::learn`] decides what holds).
//!
//! Bounded: at most [`USERS`] valid-token connections and one bad-token connection, each
//! cut at [`PER_CONN`] (or the plan's duration, if shorter) and with a handshake bound of at
//! most [`HANDSHAKE`]; calibration stops at the first valid connection the target does not
//! accept (an unreachable or misconfigured target teaches nothing, and the run's verdict
//! says why). Calibration tokens get their own `jti`s, so a server that tracks token ids
//! never sees the run's own tokens early.
//!
//! Bounded as a whole too: it ends by [`LIMIT`] after it starts, or earlier by
//! [`RunOptions::calibration_end`] (`hunt` gives it a share of `--budget`); a connection
//! still going then is stopped like Ctrl-C, none starts with less than [`MIN_CONN`] left,
//! and the proposal says it was cut ([`Proposal::cut`]). `run` calibrates before its
//! `--duration` starts: the load keeps its whole shape, and calibration adds at most
//! [`LIMIT`].

use super::{dialer, Bound, RunError, RunOptions};
use crate::auth;
use crate::metrics::{IntervalConfig, Live};
use crate::model::{
    planned_jti, Attempt, Cause, ConnPlan, ConnReport, Forge, Observation, Outcome, Plan, Step,
    RUN_SUFFIX,
};
use crate::oracle::learn::{self, Proposal, Sample};
use crate::swarm;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Valid-token calibration connections (different users), one after another.
pub const USERS: usize = 3;
/// The longest one calibration connection may take.
pub const PER_CONN: Duration = Duration::from_secs(5);
/// The handshake bound of a calibration connection.
pub const HANDSHAKE: Duration = Duration::from_secs(3);
/// The longest calibration as a whole may take, whatever the target does.
pub const LIMIT: Duration = Duration::from_secs(10);
/// A calibration connection starts only with at least this much of calibration's time
/// left: a shorter one could not even be accepted and answered.
pub const MIN_CONN: Duration = Duration::from_millis(250);

/// Calibrates against the bound target and proposes invariants (see the module docs).
/// Errors only for what stops any run (a URL that does not resolve, a TLS setup, keys);
/// a target that misbehaves during calibration just teaches less.
pub async fn calibrate(
    plan: &Plan,
    bound: &Bound,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> Result<Proposal, RunError> {
    let started = Instant::now();
    let end = opts
        .calibration_end
        .map_or(started + LIMIT, |end| end.min(started + LIMIT));
    let mut observed: Vec<(String, Observation, bool)> = Vec::new();
    let mut valid = (0, 0);
    let mut unaccepted = None;
    let mut unaccepted_shed = false;
    let mut unaccepted_auth = false;
    let mut unaccepted_slow = None;
    let reject = &plan.oracles.session.reject;
    let conns = valid_conns(plan);
    let bad = bad_conn(plan);
    let planned = conns.len() + usize::from(bad.is_some());
    let mut cut = false;
    // Calibration presents the tokens the load will (a file's, a command's, a login's),
    // not minted ones the target may never accept: read once, here, like the run does.
    // Bounded by calibration's end too: a token command slower than that leaves no time
    // to calibrate, which is said (`cut`), not waited out.
    let opaque = match &plan.auth.tokens {
        Some(source) => match tokio::time::timeout_at(end, auth::read_tokens(source)).await {
            Ok(read) => Some(read?),
            Err(_) => None,
        },
        None => Some(Vec::new()),
    };
    let (conns, opaque) = match opaque {
        Some(opaque) => (conns, opaque),
        None => {
            cut = true;
            (Vec::new(), Vec::new())
        }
    };
    for conn in conns {
        if cancel.is_cancelled() {
            break;
        }
        let Some(Solo {
            report,
            complete,
            timed_out,
        }) = once(plan, conn, &opaque, bound, opts, (cancel, end)).await?
        else {
            cut = true;
            break;
        };
        valid.0 += 1;
        // Stopped by calibration's own time bound, not by the target: what it saw so far
        // still teaches, and a handshake it cut is no refusal.
        cut |= timed_out;
        let sub = plan
            .tokens
            .get(conn.token as usize)
            .map(|t| t.sub.clone())
            .unwrap_or_default();
        // A refusal in band that the acceptance rule took for acceptance (an auth-worded
        // first frame, then the server's Close) accepted nothing.
        let in_band = report
            .as_ref()
            .is_some_and(|r| crate::oracle::verdict::refused_in_band_anywhere(plan, r));
        let accepted = !in_band
            && report
                .as_ref()
                .and_then(|r| r.attempts.first())
                .is_some_and(|a| a.outcome == Outcome::Accepted);
        if !accepted && !timed_out {
            let cause = refused_by(report.as_ref());
            unaccepted_slow = slower_than_calibration(plan, &cause);
            unaccepted_auth = in_band || crate::oracle::verdict::is_auth_refusal(reject, &cause);
            unaccepted = Some(cause);
            // Judged by the scenario's rules like any run's attempt: a declared
            // `reject.shed` code sheds as a 1013 does.
            unaccepted_shed = report
                .as_ref()
                .and_then(|r| r.attempts.first())
                .is_some_and(Attempt::is_shed);
        }
        let Some(report) = report.filter(|_| accepted) else {
            break;
        };
        valid.1 += 1;
        let seen = report.observed.map(|o| *o).unwrap_or_default();
        observed.push((sub, seen, complete));
    }
    let samples: Vec<Sample<'_>> = observed
        .iter()
        .map(|(sub, observed, complete)| Sample {
            sub,
            observed,
            complete: *complete,
        })
        .collect();
    let mut proposal = learn::propose(&plan.oracles, &samples);
    learn::drop_tested(&mut proposal, &plan.where_paths());
    let (sends, correlated) = client_written(plan);
    learn::drop_echoed(&mut proposal, &sends, &correlated);
    // Read tokens (a file, a list, a command's output) are dealt round-robin: fewer of them
    // than slots puts one user on several connections. Minted and login tokens: none read.
    proposal.tokens_read = Some(opaque.len()).filter(|n| *n > 0);
    proposal.learned =
        std::mem::take(&mut proposal.learned).scoped(plan.shares_users(proposal.tokens_read));
    proposal.valid = valid;
    proposal.unaccepted = unaccepted;
    proposal.unaccepted_shed = unaccepted_shed;
    proposal.unaccepted_auth = unaccepted_auth;
    proposal.unaccepted_slow = unaccepted_slow;
    proposal.planned = planned;
    if valid.1 > 0 && !cut && !cancel.is_cancelled() {
        if let Some((conn, name)) = bad {
            match once(plan, conn, &opaque, bound, opts, (cancel, end)).await? {
                // Cut by the time bound: no answer is not the target's answer.
                None
                | Some(Solo {
                    timed_out: true, ..
                }) => cut = true,
                Some(Solo { report: None, .. }) => {}
                Some(Solo {
                    report: Some(report),
                    ..
                }) => {
                    let answer = match report.attempts.first() {
                        Some(a) if a.outcome == Outcome::Accepted => {
                            learn::BAD_TOKEN_ACCEPTED.to_string()
                        }
                        Some(a) => a
                            .cause
                            .as_ref()
                            .map(learn::refusal_text)
                            .unwrap_or_else(|| "no answer".into()),
                        None => "no attempt".into(),
                    };
                    proposal.refusals.push((name, answer));
                }
            }
        }
    }
    proposal.cut = cut;
    proposal.interrupted = cancel.is_cancelled();
    proposal.elapsed = started.elapsed();
    Ok(proposal)
}

/// What the scripts' client writes itself ([`learn::drop_echoed`]): every `send`
/// template, and every `expect`'s `correlate` and `correlate_reply` path.
fn client_written(plan: &Plan) -> (Vec<&serde_json::Value>, Vec<&str>) {
    let mut sends = Vec::new();
    let mut correlated = Vec::new();
    for step in plan
        .scripts
        .iter()
        .flat_map(|s| crate::model::deep_steps(s))
    {
        match step {
            Step::Send { template } => sends.push(template),
            Step::Expect(e) => correlated.extend(
                e.correlate
                    .iter()
                    .chain(&e.correlate_reply)
                    .map(String::as_str),
            ),
            _ => {}
        }
    }
    (sends, correlated)
}

/// Calibration's handshake bound, when a connection that ended with `cause` ran it out
/// (the TLS or upgrade stage's timeout) and it is shorter than the scenario's `handshake_timeout`:
/// the target may answer within the scenario's bound, as the load then waits. `None`
/// otherwise.
fn slower_than_calibration(plan: &Plan, cause: &Cause) -> Option<Duration> {
    let bound = solo_handshake(plan);
    // Past TCP: the server took the connection and was slow to finish the handshake (a
    // connect that timed out is a host nothing answers at, said as such).
    let handshake = matches!(cause, Cause::Timeout("tls" | "upgrade"));
    (handshake && bound < plan.limits.handshake_timeout).then_some(bound)
}

/// The handshake bound of a calibration connection of `plan` ([`HANDSHAKE`] at most).
fn solo_handshake(plan: &Plan) -> Duration {
    plan.limits.handshake_timeout.min(HANDSHAKE)
}

/// How a calibration connection that was not accepted ended (`interrupted` when it made
/// no attempt with a cause).
fn refused_by(report: Option<&ConnReport>) -> Cause {
    report
        .and_then(|r| r.attempts.first())
        .and_then(|a| a.cause.clone())
        .unwrap_or(Cause::Interrupted)
}

/// Up to [`USERS`] connections with valid tokens of distinct subjects whose script opens
/// a connection (not an aborted handshake), first planned first.
fn valid_conns(plan: &Plan) -> Vec<&ConnPlan> {
    let mut subs = BTreeSet::new();
    plan.conns
        .iter()
        .filter(|c| opens(plan, c))
        .filter(|c| {
            plan.tokens
                .get(c.token as usize)
                .is_some_and(|t| t.forge.is_none() && subs.insert(t.sub.clone()))
        })
        .take(USERS)
        .collect()
}

/// One connection with a token every correct server refuses, and the token's name.
fn bad_conn(plan: &Plan) -> Option<(&ConnPlan, String)> {
    plan.conns.iter().filter(|c| opens(plan, c)).find_map(|c| {
        let forge = plan.tokens.get(c.token as usize)?.forge.as_ref()?;
        let name = match forge {
            Forge::Bad { name } => name.name().to_string(),
            Forge::Shift { .. } if forge.must_reject() => "time-shifted".to_string(),
            _ => return None,
        };
        Some((c, name))
    })
}

/// Whether the connection's script begins by opening a connection.
fn opens(plan: &Plan, c: &ConnPlan) -> bool {
    match c.actions.first() {
        Some(first) => matches!(first, crate::model::Action::Connect),
        None => !matches!(
            plan.scripts.get(c.group as usize).and_then(|s| s.first()),
            Some(Step::AbortHandshake { .. })
        ),
    }
}

/// One calibration connection as it ran.
struct Solo {
    /// Its report (`None` when it made none).
    report: Option<ConnReport>,
    /// Whether it walked its whole script (neither a bound nor Ctrl-C cut it).
    complete: bool,
    /// Whether calibration's time bound (not [`PER_CONN`] or the plan's duration) cut it.
    timed_out: bool,
}

/// Runs `conn` alone, at once, observed. `opaque`: the tokens of `[auth] tokens` (empty
/// when stampede mints them); a valid slot gets the one the run would give it. Ends by
/// `end` (stopped like Ctrl-C then); `None` when less than [`MIN_CONN`] was left: nothing
/// ran.
async fn once(
    plan: &Plan,
    conn: &ConnPlan,
    opaque: &[auth::Opaque],
    bound: &Bound,
    opts: &RunOptions,
    (cancel, end): (&CancellationToken, Instant),
) -> Result<Option<Solo>, RunError> {
    let left = end.saturating_duration_since(Instant::now());
    if left < MIN_CONN {
        return Ok(None);
    }
    let mut solo = solo(plan, conn);
    let capped = left <= solo.duration || left < solo.limits.handshake_timeout;
    solo.duration = solo.duration.min(left);
    solo.limits.handshake_timeout = solo.limits.handshake_timeout.min(left);
    let dialer = dialer(&solo, bound, opts, cancel).await?;
    let mut tokens = auth::mint_all(&solo.tokens, &solo.auth, &bound.keys)?;
    if let Some(source) = &plan.auth.tokens {
        // The run gives the k-th valid slot the source's token k mod n (`assign`).
        let k = plan
            .tokens
            .iter()
            .take(conn.token as usize)
            .filter(|t| t.forge.is_none())
            .count();
        let own: Vec<auth::Opaque> = opaque
            .get(k % opaque.len().max(1))
            .cloned()
            .into_iter()
            .collect();
        auth::assign_source(&mut tokens, &solo.tokens, source, &own);
    }
    let stop = cancel.child_token();
    let run = swarm::run(
        Arc::new(solo),
        dialer,
        tokens,
        Arc::new(Live::default()),
        IntervalConfig::default(),
        stop.clone(),
    );
    tokio::pin!(run);
    // The duration above bounds the script; this bounds whatever else a connection might
    // still be waiting on at `end` (its close handshake, a token source).
    let out = tokio::select! {
        out = &mut run => out,
        _ = tokio::time::sleep_until(end) => {
            stop.cancel();
            run.await
        }
    };
    let complete = !out.hit_duration && !out.interrupted;
    let report = out.reports.into_iter().next();
    let accepted = report
        .as_ref()
        .and_then(|r| r.attempts.first())
        .is_some_and(|a| a.outcome == Outcome::Accepted);
    // Cut by calibration's time bound: a bound it capped (or the stop above) fired, and the
    // connection did not finish its script accepted.
    // So is one the scenario's own duration cut before it was accepted (`--duration 1ms`):
    // the target was never given the time to answer, which is no refusal of it.
    let cut_by_duration = out.hit_duration && !accepted;
    let timed_out = cut_by_duration
        || ((capped || stop.is_cancelled())
            && !cancel.is_cancelled()
            && Instant::now() >= end
            && !(complete && accepted));
    Ok(Some(Solo {
        report,
        complete,
        timed_out,
    }))
}

/// A plan of `conn` alone: started at once, no collide barrier, rendezvous that release a
/// single arrival, no probe phase, its token with a calibration `jti`, bounded by
/// [`PER_CONN`] and [`HANDSHAKE`], every connection observed.
fn solo(plan: &Plan, conn: &ConnPlan) -> Plan {
    let mut solo = plan.clone();
    let token = plan.tokens.get(conn.token as usize).cloned();
    solo.tokens = token
        .map(|mut t| {
            // Its own `jti`, unlike any run's: one calibration's session must not meet
            // another's, nor the load's.
            t.jti = format!(
                "{}{RUN_SUFFIX}calibration{}",
                planned_jti(&t.jti),
                crate::plan::run_nonce()
            );
            vec![t]
        })
        .unwrap_or_default();
    solo.conns = vec![ConnPlan {
        token: 0,
        start: Duration::ZERO,
        barrier: None,
        ..conn.clone()
    }];
    solo.barriers.clear();
    for r in &mut solo.rendezvous {
        r.count = 1;
    }
    solo.duration = plan.duration.min(PER_CONN);
    solo.limits.handshake_timeout = solo_handshake(plan);
    solo.oracles.session.liveness = None;
    solo.oracles.learned = Default::default();
    solo.oracles.calibrating = true;
    solo
}
