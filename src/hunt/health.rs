//! Target health: a probe between hunt rounds, and resetting the target.
//!
//! A round can leave the target broken for everyone (a leaked slot per aborted handshake,
//! until none is left): the next round's connections then fail through no fault of
//! their own. The hunt therefore probes the target after every round with one fresh valid
//! connection doing the scenario's first exchange ([`probe_plan`]); the first probe that
//! fails after one that passed names the round that broke it, and the finding's repro
//! keeps the rounds that led there. Replaying or shrinking such a finding is only faithful
//! against a target put back in its first state before each try: `--reset CMD`, or for
//! the built-in server a restart ([`Reset`]).
//!
//! A probe the server sheds (HTTP 429 or 503, close 1013, a code `[oracles] reject.shed`
//! declares, a close before acceptance whose reason reads as rate limiting: a 4429, a
//! 1008 "too many connections") is the server's answer under load, "not now", as everywhere else in stampede:
//! the probe waits as the server asks (its `Retry-After`, else [`SHED_BACKOFF`]) and tries
//! again, for [`SHED_WAIT_CAP`] at most. Still shed then, the probe is inconclusive
//! ([`ProbeAnswer::shedding`]): neither healthy nor broken, so the round before it is not
//! judged for target health. A rate limit is the server's policy, never a broken target.

use super::{
    HuntError, Measured, Rate, Repro, ReproError, Runner, Short, ShrinkOptions, ShrinkOutcome,
    Unjudged,
};
use crate::model::{
    Arrival, Dist, Group, OracleKind, Plan, Scenario, Step, StopReason, TokenReuse, Verdict,
    Violation,
};
use crate::process_group::{own_group, GroupKill};
use crate::reference::TargetError;
use crate::run::RunOutcome;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::time::Instant;

/// Longest a health probe may take: a healthy target answers its first exchange in
/// milliseconds; one that makes a valid connection wait longer than this is not healthy.
pub const PROBE_LIMIT: Duration = Duration::from_secs(5);

/// Longest the health probe waits, its tries included, for a server that sheds it to take
/// it: a rate limit's window is seconds long. Still shed then, the probe is inconclusive.
pub const SHED_WAIT_CAP: Duration = Duration::from_secs(5);

/// How long the health probe waits after a shed answer that names no `Retry-After`.
pub const SHED_BACKOFF: Duration = Duration::from_millis(500);

/// The shortest wait between tries whatever the server asks (`Retry-After: 0` included):
/// a probe must not hammer a server that is shedding load.
const MIN_SHED_WAIT: Duration = Duration::from_millis(100);

/// Longest a `--reset` command may run unless told otherwise.
pub const RESET_TIMEOUT: Duration = Duration::from_secs(60);

/// How the target is put back in its first state before each replay and shrink try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reset {
    /// It cannot be: an external target without `--reset`.
    None,
    /// The built-in reference server, restarted on the same address (fresh state).
    BuiltIn,
    /// A shell command (`sh -c`), bounded by `timeout`; it must exit 0.
    Command { command: String, timeout: Duration },
}

/// Why the target could not be reset.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("--reset `{command}` could not start: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("--reset `{command}` failed ({status}){}", stderr_line(.stderr))]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("--reset `{command}` did not finish within {after:?} (killed)")]
    TimedOut { command: String, after: Duration },
    #[error("cannot restart the built-in server: {0}")]
    Restart(#[from] TargetError),
}

/// How much of a `--reset` command's stderr is kept: its last 64 KiB, as much as a token
/// command's (`auth::source`). All of it is read, so a chatty command never blocks on a
/// full pipe, but memory stays bounded whatever it prints.
const MAX_RESET_STDERR: usize = 64 << 10;

/// Longest stderr line an error quotes, in characters: the reason, not a dump.
const MAX_QUOTED_LINE: usize = 200;

/// `: <last line of stderr>` when there is one, cut at [`MAX_QUOTED_LINE`] characters
/// (and saying so).
fn stderr_line(stderr: &str) -> String {
    let Some(line) = stderr.lines().rev().find(|l| !l.trim().is_empty()) else {
        return String::new();
    };
    let line = line.trim();
    match line.char_indices().nth(MAX_QUOTED_LINE) {
        Some((cut, _)) => format!(
            ": {}… (cut at {MAX_QUOTED_LINE} characters)",
            line.get(..cut).unwrap_or_default()
        ),
        None => format!(": {line}"),
    }
}

/// Everything `reader` gives until its end, keeping only the last `keep` bytes.
async fn read_tail(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    keep: usize,
) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut tail = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        tail.extend_from_slice(buf.get(..n).unwrap_or_default());
        // Cut only past twice the bound, so a long stream is not shifted on every read.
        if tail.len() > 2 * keep {
            tail.drain(..tail.len() - keep);
        }
    }
    if tail.len() > keep {
        tail.drain(..tail.len() - keep);
    }
    Ok(tail)
}

impl Reset {
    /// Whether a reset is possible at all.
    pub fn possible(&self) -> bool {
        *self != Reset::None
    }
}

/// Runs a `--reset` command: `sh -c command` in a process group of its own, stdin closed,
/// bounded by `timeout` (the shell and everything it started are killed then). Its stdout is discarded; the last line of its stderr (of its last
/// 64 KiB, cut at 200 characters) is quoted when it fails.
///
/// # Errors
/// [`ResetError`] when it cannot start, exits non-zero or runs past `timeout`.
pub async fn run_reset_command(command: &str, timeout: Duration) -> Result<(), ResetError> {
    let mut child = own_group(
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true),
    )
    .spawn()
    .map_err(|source| ResetError::Spawn {
        command: command.to_string(),
        source,
    })?;
    // Given up on (the timeout, or Ctrl-C dropping this future), the whole group goes:
    // killing the shell alone left what it started running.
    let mut group = GroupKill::new(child.id());
    let Some(stderr) = child.stderr.take() else {
        return Err(ResetError::Spawn {
            command: command.to_string(),
            source: std::io::Error::other("its stderr could not be read"),
        });
    };
    // Its stderr is read to its end but only its tail kept: `wait_with_output` kept all
    // of it, however much the command printed.
    let collect = async {
        let (stderr, status) = tokio::join!(read_tail(stderr, MAX_RESET_STDERR), child.wait());
        status.and_then(|status| Ok((status, stderr?)))
    };
    let (status, stderr) = match tokio::time::timeout(timeout, collect).await {
        Ok(Ok(output)) => {
            group.disarm();
            output
        }
        Ok(Err(source)) => {
            return Err(ResetError::Spawn {
                command: command.to_string(),
                source,
            })
        }
        // Dropping the future drops the child, which kills it (kill_on_drop), and `group`
        // kills what it started.
        Err(_) => {
            return Err(ResetError::TimedOut {
                command: command.to_string(),
                after: timeout,
            })
        }
    };
    if status.success() {
        return Ok(());
    }
    Err(ResetError::Failed {
        command: command.to_string(),
        status: status.to_string(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// What a health probe saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    /// The connection was accepted and its exchange completed, every expectation met.
    pub healthy: bool,
    /// One line: `accepted; 1/1 expectations met` or what went wrong
    /// (`refused: http_500 …`, `accepted, then expected …; seen …`, or, when the server
    /// was still shedding it, `shed: http_429 …`).
    pub answer: String,
    /// How long the probe's last try took, ms.
    pub elapsed_ms: f64,
    /// The load shedding the probe waited through, when the server shed it at all. Left
    /// out of files when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shed: Option<Shed>,
}

/// How a server shed a health probe before it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shed {
    /// Shed answers, each followed by the wait the server asked for.
    pub times: u32,
    /// The last of them (`http_429 HTTP/1.1 429 Too Many Requests, Retry-After 1s`).
    pub answer: String,
    /// The server was still shedding when the wait ([`SHED_WAIT_CAP`]) or the budget ran
    /// out: the probe is inconclusive.
    pub unresolved: bool,
}

impl ProbeAnswer {
    /// Whether the server was still shedding the probe when its wait ran out: the probe
    /// says nothing of the target's health.
    pub fn shedding(&self) -> bool {
        self.shed.as_ref().is_some_and(|s| s.unresolved)
    }

    /// Whether the probe found the target broken: it failed, and not by load shedding.
    pub fn broken(&self) -> bool {
        !self.healthy && !self.shedding()
    }
}

/// The health probe of `scenario`: one connection of its first group with valid tokens
/// (the first group when none has), its token fresh, starting at once, doing the group's
/// first exchange ([`probe_steps`]) and closing, within [`PROBE_LIMIT`]. Only the
/// per-connection oracles stay on (no liveness probe phase).
pub fn probe_plan(scenario: &Scenario, seed: u64) -> Plan {
    let mut s = scenario.clone();
    let group = s
        .groups
        .iter()
        .find(|g| g.forge.is_none())
        .or(s.groups.first())
        .cloned();
    if let Some(group) = group {
        s.groups = vec![Group {
            name: format!("{}-health-probe", group.name),
            users: 1,
            connections_per_user: 1,
            arrival: Arrival::Burst { at: Duration::ZERO },
            jitter: Dist::Fixed {
                value: Duration::ZERO,
            },
            token: TokenReuse::PerConnection,
            forge: None,
            steps: probe_steps(&group.steps),
            ..group
        }];
    }
    s.duration = PROBE_LIMIT;
    s.oracles.session.liveness = None;
    s.oracles.session.max_live = None;
    s.thresholds.clear();
    crate::plan::build(&s, seed)
}

/// A script's first exchange: the `expect`s before its first `send`, that send, and the
/// `expect`s answering it (up to the next send, reconnect or close), then a close. With no
/// send: the `expect`s that follow the handshake. Aborted handshakes, reconnects before
/// anything was kept, pauses and rendezvous are left out; a `repeat` counts once.
pub fn probe_steps(steps: &[Step]) -> Vec<Step> {
    let mut out = Vec::new();
    let mut sent = false;
    for step in crate::model::deep_steps(steps) {
        match step {
            Step::Expect(_) => out.push(step.clone()),
            Step::Send { .. } | Step::SendText { .. } if !sent => {
                sent = true;
                out.push(step.clone());
            }
            Step::Reconnect { .. } if out.is_empty() => {}
            Step::Send { .. } | Step::SendText { .. } | Step::Reconnect { .. } => break,
            Step::Close { .. } if !out.is_empty() => break,
            _ => {}
        }
    }
    out.push(Step::Close { code: 1000 });
    out
}

/// Whether a probe run was healthy, and what it saw. A run the server shed is neither
/// healthy nor broken: its answer is [`ProbeAnswer::shedding`] (one shed answer).
pub fn answer_of(outcome: &RunOutcome) -> ProbeAnswer {
    let elapsed_ms = outcome.results.summary.elapsed_ms;
    if shed_wait(outcome).is_some() {
        let how = shed_words(outcome);
        return ProbeAnswer {
            healthy: false,
            answer: format!("shed: {how}"),
            elapsed_ms,
            shed: Some(Shed {
                times: 1,
                answer: how,
                unresolved: true,
            }),
        };
    }
    let (healthy, answer) = judge_probe(outcome);
    ProbeAnswer {
        healthy,
        answer,
        elapsed_ms,
        shed: None,
    }
}

/// How long a probe run asks the probe to wait when the server shed it (HTTP 429 or 503,
/// close 1013, a declared `reject.shed` code, before or after acceptance; or a close
/// before acceptance that reads as rate limiting, [`rate_limited`]): the `Retry-After` it
/// gave, else [`SHED_BACKOFF`], never under [`MIN_SHED_WAIT`]. `None` when it was not shed.
fn shed_wait(outcome: &RunOutcome) -> Option<Duration> {
    let s = &outcome.results.summary;
    if s.counters.shed + s.counters.shed_after_acceptance == 0 && rate_limited(s).is_none() {
        return None;
    }
    let asked = s.answers.iter().find_map(|a| a.retry_after_s);
    Some(
        asked
            .map_or(SHED_BACKOFF, |secs| Duration::from_secs(u64::from(secs)))
            .max(MIN_SHED_WAIT),
    )
}

/// The Close that turned a probe run's connection away before acceptance with a rate
/// limit's code or words ([`crate::oracle::shedding::reads_as_rate_limit`]: a 4429, a
/// 1008 "too many connections"), when that is what happened: a rate limit the scenario
/// does not declare is "not now" still, never a target the rounds broke.
fn rate_limited(s: &crate::results::Summary) -> Option<&crate::model::Answer> {
    if s.counters.accepted > 0 {
        return None;
    }
    s.answers.iter().find(|a| match a.cause {
        crate::model::Cause::ServerClose(code) => {
            crate::oracle::shedding::reads_as_rate_limit(code, a.body.trim())
        }
        _ => false,
    })
}

/// How a probe run was shed, in words: `http_429 HTTP/1.1 429 Too Many Requests,
/// Retry-After 1s`, or the close code (and a rate limit's reason) that shed it.
fn shed_words(outcome: &RunOutcome) -> String {
    let s = &outcome.results.summary;
    if let Some(a) = rate_limited(s).filter(|_| s.counters.shed == 0) {
        return format!("{} {}, reason \"{}\"", a.cause, a.detail, a.body.trim());
    }
    match s
        .answers
        .iter()
        .find(|a| a.cause.is_shed())
        .or(s.answers.first())
    {
        Some(a) => {
            let detail = format!("{} {}", a.cause, a.detail);
            match a.retry_after_s {
                Some(secs) => format!("{}, Retry-After {secs}s", detail.trim_end()),
                None => detail.trim_end().to_string(),
            }
        }
        None => match s.counters.refused_by.keys().next() {
            Some(cause) => cause.to_string(),
            None => "closed with a shedding code after acceptance".to_string(),
        },
    }
}

/// Whether a probe run the server did not shed was healthy, and what it saw.
fn judge_probe(outcome: &RunOutcome) -> (bool, String) {
    let s = &outcome.results.summary;
    let c = &s.counters;
    let met = c.expect.expectations_met;
    let wanted = c.expect.expectations;
    let first_violation = outcome.results.violations.first();
    if c.accepted == 0 {
        let why = match (s.answers.first(), c.refused_by.keys().next()) {
            (Some(a), _) => format!("refused: {} {}", a.cause, a.detail),
            (None, Some(cause)) => format!("failed: {cause}"),
            (None, None) => format!("no answer to the upgrade within {PROBE_LIMIT:?}"),
        };
        (false, why)
    } else if let Some(v) = first_violation {
        (
            false,
            format!("accepted, then expected {}; seen {}", v.expected, v.seen),
        )
    } else if met < wanted || s.stopped != StopReason::Completed {
        (
            false,
            format!("accepted, but {met}/{wanted} expectations met within {PROBE_LIMIT:?}"),
        )
    } else {
        (true, format!("accepted; {met}/{wanted} expectations met"))
    }
}

/// A health probe's last run, after waiting out the server's load shedding
/// ([`Runner::probe_run`]).
pub struct ProbeRun {
    /// The last try's run.
    pub outcome: RunOutcome,
    /// The shedding waited through; `None` when the server shed no try.
    pub shed: Option<Shed>,
}

/// What the server's load shedding did to a hunt's health probes, for its output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthShed {
    /// Shed answers to the health probe, the ones waited out included.
    pub answers: u32,
    /// Probes the server was still shedding when their wait ran out: each inconclusive,
    /// so the round before it was not judged for target health.
    pub inconclusive: u32,
    /// The last shed answer (`http_429 HTTP/1.1 429 Too Many Requests, Retry-After 1s`).
    pub last: Option<String>,
}

impl HealthShed {
    /// Counts the shedding `answer` waited through, if any.
    pub fn count(&mut self, answer: &ProbeAnswer) {
        if let Some(shed) = &answer.shed {
            self.add(shed);
        }
    }

    /// Counts one probe's shedding.
    pub fn add(&mut self, shed: &Shed) {
        self.answers += shed.times;
        self.inconclusive += u32::from(shed.unresolved);
        self.last = Some(shed.answer.clone());
    }

    /// Adds what another hunt's probes saw (a battery's levels).
    pub fn merge(&mut self, other: &HealthShed) {
        self.answers += other.answers;
        self.inconclusive += other.inconclusive;
        if other.last.is_some() {
            self.last.clone_from(&other.last);
        }
    }

    /// One line on it, `None` when the server shed no health probe: `the server shed the
    /// health probe 4 times (http_429 …): load shedding, waited out as it asked, never a
    /// broken target`, or, when it was still shedding at the end of a wait, `…; 1 probe
    /// was still shed after waiting up to 5s as it asked: inconclusive, not a broken
    /// target (…), so target health was not judged there`.
    pub fn note(&self) -> Option<String> {
        let last = self.last.as_deref()?;
        let times = crate::model::words::plural(self.answers, "time");
        if self.inconclusive == 0 {
            return Some(format!(
                "the server shed the health probe {times} ({last}): load shedding, waited out as it asked, never a broken target"
            ));
        }
        let still = crate::model::words::plural_as(self.inconclusive, "probe was", "probes were");
        Some(format!(
            "the server shed the health probe {times} ({last}); {still} still shed after waiting up to {}s as it asked: inconclusive, not a broken target (load shedding says nothing of whether a round broke it), so target health was not judged there",
            SHED_WAIT_CAP.as_secs()
        ))
    }
}

impl Runner {
    /// Puts the target back in its first state ([`Reset`]); false when it cannot be.
    ///
    /// # Errors
    /// [`HuntError::Reset`] when the command fails or times out, or the built-in server
    /// cannot bind its address again.
    pub async fn reset_target(&self) -> Result<bool, HuntError> {
        self.reset_by(None).await
    }

    /// [`Runner::reset_target`] ending by `budget_end` when given: a `--reset` command's
    /// timeout is capped by what is left of the budget. False, with nothing reset, when the
    /// budget ran out or Ctrl-C came first (the command is killed): the caller's next run
    /// finds no time left, or the cancellation, and says so.
    ///
    /// # Errors
    /// As [`Runner::reset_target`]; a command cut by the budget or Ctrl-C is no error.
    pub async fn reset_by(&self, budget_end: Option<Instant>) -> Result<bool, HuntError> {
        if self.cancel.is_cancelled() {
            return Ok(false);
        }
        match &self.reset {
            Reset::None => Ok(false),
            Reset::Command { command, timeout } => {
                let left = budget_end.map(|end| end.saturating_duration_since(Instant::now()));
                let limit = left.map_or(*timeout, |left| left.min(*timeout));
                let cut_by_budget = left.is_some_and(|left| left < *timeout);
                tokio::select! {
                    // Dropping the command's future kills it and its process group.
                    _ = self.cancel.cancelled() => Ok(false),
                    done = run_reset_command(command, limit) => match done {
                        Ok(()) => Ok(true),
                        Err(ResetError::TimedOut { .. }) if cut_by_budget => Ok(false),
                        Err(err) => Err(err.into()),
                    },
                }
            }
            Reset::BuiltIn => match &self.bound.server {
                Some(server) => {
                    server.restart().await.map_err(ResetError::from)?;
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    /// One health probe with `probe` (see [`probe_plan`]), ending by `budget_end` if
    /// given, waiting out load shedding ([`Runner::probe_run`]). `None` when the budget
    /// left no room or cut it, or on Ctrl-C: no answer.
    pub async fn probe(
        &self,
        probe: &Plan,
        budget_end: Option<Instant>,
    ) -> Result<Option<ProbeAnswer>, HuntError> {
        let Some(run) = self.probe_run(probe, budget_end).await? else {
            return Ok(None);
        };
        if self.cancel.is_cancelled() {
            return Ok(None);
        }
        let mut answer = answer_of(&run.outcome);
        answer.shed = run.shed;
        Ok(Some(answer))
    }

    /// Runs `probe` until the server stops shedding it: after each shed answer (HTTP 429
    /// or 503, close 1013, a declared `reject.shed` code) it waits what the server asked
    /// (`Retry-After`, else [`SHED_BACKOFF`]) and tries again, as long as that wait ends
    /// within [`SHED_WAIT_CAP`] of the first try and before `budget_end`. A server still
    /// shedding then leaves the last run shed ([`Shed::unresolved`]). `None` when the
    /// budget left no room for a try or cut it, or on Ctrl-C (a wait ends at once then).
    ///
    /// # Errors
    /// As [`Runner::once`].
    pub async fn probe_run(
        &self,
        probe: &Plan,
        budget_end: Option<Instant>,
    ) -> Result<Option<ProbeRun>, HuntError> {
        let give_up = Instant::now() + SHED_WAIT_CAP;
        let last_resume = budget_end.map_or(give_up, |end| end.min(give_up));
        let mut shed: Option<Shed> = None;
        loop {
            let Some(outcome) = self.probe_once(probe, budget_end).await? else {
                return Ok(None);
            };
            let Some(wait) = shed_wait(&outcome) else {
                if let Some(shed) = &mut shed {
                    shed.unresolved = false;
                }
                return Ok(Some(ProbeRun { outcome, shed }));
            };
            let times = shed.as_ref().map_or(0, |s| s.times) + 1;
            shed = Some(Shed {
                times,
                answer: shed_words(&outcome),
                unresolved: true,
            });
            if Instant::now() + wait > last_resume {
                return Ok(Some(ProbeRun { outcome, shed }));
            }
            if !self.pause(wait).await {
                return Ok(None);
            }
        }
    }

    /// One run of `probe`, ending by `budget_end` if given. `None` when the budget left no
    /// room or cut it, or on Ctrl-C.
    async fn probe_once(
        &self,
        probe: &Plan,
        budget_end: Option<Instant>,
    ) -> Result<Option<RunOutcome>, HuntError> {
        match budget_end {
            None => match self.once(probe).await {
                Ok(outcome) => Ok(Some(outcome)),
                Err(HuntError::Run(crate::run::RunError::Interrupted)) => Ok(None),
                Err(err) => Err(err),
            },
            Some(end) => match self.once_by(probe, end).await? {
                Some((outcome, false)) => Ok(Some(outcome)),
                Some((_, true)) | None => Ok(None),
            },
        }
    }

    /// Sleeps `wait`; false, at once, when Ctrl-C comes first.
    async fn pause(&self, wait: Duration) -> bool {
        tokio::select! {
            () = self.cancel.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// Replays a broken-target finding up to `times` times: each try resets the target,
    /// checks it is healthy, runs `plans` in order and probes it again; a try reproduced
    /// when that last probe failed. The evidence is the first failing probe's
    /// [`health_violation`]. Without a reset only one try is faithful (the target stays
    /// as the last one left it), so one is made. A try whose probe the server was still
    /// shedding ([`ProbeAnswer::shedding`]) is not judged: counted in [`Rate::shed`],
    /// neither a run nor a reproduction; when no try was judged for that alone, the rate
    /// is inconclusive.
    pub async fn measure_health(
        &self,
        plans: &[Plan],
        probe: &Plan,
        times: u32,
        need: Option<u32>,
        budget_end: Option<Instant>,
    ) -> Result<Measured, HuntError> {
        let times = if self.reset.possible() {
            times
        } else {
            times.min(1)
        };
        let mut rate = Rate {
            reproduced: 0,
            runs: 0,
            planned: times,
            short: None,
            shed: 0,
        };
        let mut evidence = Vec::new();
        'tries: for i in 0..times {
            if self.cancel.is_cancelled() {
                rate.short = Some(Short::Interrupted);
                break;
            }
            if let Some(need) = need {
                if rate.reproduced >= need || rate.reproduced + (times - i) < need {
                    break;
                }
            }
            self.reset_by(budget_end).await?;
            let Some(before) = self.probe(probe, budget_end).await? else {
                rate.short = Some(self.cut_reason());
                break;
            };
            if before.shedding() {
                rate.shed += 1;
                continue;
            }
            if !before.healthy {
                rate.short = Some(Short::Unjudged(Unjudged {
                    verdict: Verdict::TargetUnusable,
                    hint: format!(
                        "the health probe failed before the repro ran{}: {}",
                        if self.reset.possible() {
                            " (right after the reset)"
                        } else {
                            " (no --reset: the target may still be broken from before)"
                        },
                        before.answer
                    ),
                }));
                break;
            }
            for plan in plans {
                let done = match budget_end {
                    None => Some(self.once(plan).await?),
                    Some(end) => match self.once_by(plan, end).await? {
                        Some((outcome, false)) => Some(outcome),
                        Some((_, true)) | None => None,
                    },
                };
                if done.is_none() || self.cancel.is_cancelled() {
                    rate.short = Some(self.cut_reason());
                    break 'tries;
                }
            }
            let Some(after) = self.probe(probe, budget_end).await? else {
                rate.short = Some(self.cut_reason());
                break;
            };
            if after.shedding() {
                rate.shed += 1;
                continue;
            }
            rate.runs += 1;
            if !after.healthy {
                rate.reproduced += 1;
                if evidence.is_empty() {
                    evidence = vec![health_violation(probe, &before, &after, None)];
                }
            }
        }
        if rate.runs == 0 && rate.shed > 0 && rate.short.is_none() {
            rate.short = Some(Short::Unjudged(shedding_throughout(rate.shed)));
        }
        Ok(Measured {
            rate,
            evidence,
            others: Default::default(),
        })
    }

    /// Why a series stopped early: Ctrl-C when it came, else the budget.
    pub(super) fn cut_reason(&self) -> Short {
        if self.cancel.is_cancelled() {
            Short::Interrupted
        } else {
            Short::Budget
        }
    }
}

/// Why a replay of a broken-target finding judged nothing: the server was still shedding
/// the health probe after every one of its `tries`.
fn shedding_throughout(tries: u32) -> Unjudged {
    Unjudged {
        verdict: Verdict::Inconclusive,
        hint: format!(
            "the server was still shedding the health probe (HTTP 429/503, close 1013 or a declared shed code) after waiting up to {}s as it asked, in {}: load shedding says nothing of whether the rounds broke it",
            SHED_WAIT_CAP.as_secs(),
            if tries == 1 {
                "its one try".to_string()
            } else {
                format!("all {tries} tries")
            },
        ),
    }
}

/// The violation a broken target is reported as: the probe's answer before (expected)
/// and after (seen).
pub fn health_violation(
    probe: &Plan,
    before: &ProbeAnswer,
    after: &ProbeAnswer,
    round: Option<u32>,
) -> Violation {
    let when = round.map_or_else(|| "the repro".to_string(), |r| format!("round {r}"));
    Violation {
        oracle: OracleKind::TargetHealth,
        conn: 0,
        user: 0,
        group: probe.groups.first().cloned().unwrap_or_default(),
        jti: String::new(),
        at_ms: 0.0,
        expected: format!(
            "a fresh valid connection's first exchange to succeed after {when}, as before it ({})",
            before.answer
        ),
        seen: after.answer.clone(),
        correlation: None,
        involved: Vec::new(),
        learned: false,
        unreadable: false,
        ended: None,
        window_ms: None,
        late_ms: None,
        after_request_ms: None,
        conn_end_ms: None,
        cut_by_run_ms: None,
        step: None,
        misread: None,
    }
}

/// Health facts a broken-target repro keeps beside its plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthFinding {
    /// The round after which the probe first failed.
    pub broken_by_round: u32,
    /// The probe (one connection doing the scenario's first exchange).
    pub probe: Plan,
    /// Its answer after the last round it passed, and after the breaking round.
    pub before: ProbeAnswer,
    pub after: ProbeAnswer,
    /// The rounds before the breaking one since the target was last reset (the hunt's
    /// start), in order: damage can accumulate over them. A replay runs them, then the
    /// repro's plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Plan>,
}

impl HealthFinding {
    /// Every plan a replay runs, in order: the earlier rounds, then `last`.
    pub fn plans(&self, last: &Plan) -> Vec<Plan> {
        let mut plans = self.earlier.clone();
        plans.push(last.clone());
        plans
    }
}

/// Why `shrink` keeps a broken-target finding whole when the target cannot be reset.
pub const NO_RESET_SHRINK: &str = "not reducing a broken-target finding without --reset: each try would run against the target the try before it broke, so no smaller cause could be told apart (give --reset CMD)";

/// Connections over all of a broken-target repro's plans.
pub fn health_size(repro: &Repro) -> usize {
    match &repro.health {
        Some(h) => h.earlier.iter().map(|p| p.conns.len()).sum::<usize>() + repro.size(),
        None => repro.size(),
    }
}

/// Shrinks a broken-target finding: drops earlier rounds (the breaking round alone
/// first, then halves, then single rounds) while reset + the rounds left + the probe
/// still leaves the target broken in at least half as many tries as the whole did, then
/// bisects on how many of the breaking round's connections run (the first k). Every try
/// resets the target first, so needs a reset: without one the repro is returned whole
/// ([`NO_RESET_SHRINK`] says why).
pub async fn shrink_health(
    repro: &Repro,
    runner: &Runner,
    opts: ShrinkOptions,
) -> Result<ShrinkOutcome, HuntError> {
    let started = Instant::now();
    let budget_end = started + opts.budget;
    let Some(health) = repro.health.clone() else {
        return Err(HuntError::Repro(ReproError::Invalid {
            path: repro.scenario.clone(),
            reason: "a target_health repro without its health record".into(),
        }));
    };
    let size = health_size(repro);
    let whole = health.plans(&repro.plan);
    let before = runner
        .measure_health(&whole, &health.probe, opts.times, None, Some(budget_end))
        .await?
        .rate;
    if !runner.reset.possible() {
        return Ok(ShrinkOutcome {
            before: (size, before.clone()),
            after: (size, before),
            candidates: 0,
            short: None,
            repro: repro.clone(),
            unconfirmed: None,
        });
    }
    let reserve = started.elapsed();
    let candidates_end = budget_end.checked_sub(reserve).unwrap_or(started);
    let need = ((f64::from(before.reproduced) / 2.0).ceil() as u32).max(1);
    let mut earlier = health.earlier.clone();
    let mut last = repro.plan.clone();
    let mut tried = 0;
    let mut short = None;
    let (probe, times) = (&health.probe, opts.times);
    let holds = |plans: Vec<Plan>| async move {
        let rate = runner
            .measure_health(&plans, probe, times, Some(need), Some(candidates_end))
            .await?
            .rate;
        Ok::<_, HuntError>((rate.reproduced >= need, rate.short))
    };
    if before.reproduced > 0 && !earlier.is_empty() {
        let mut chunk = earlier.len();
        'search: while chunk >= 1 && !earlier.is_empty() {
            let mut at = 0;
            while at < earlier.len() {
                if tried >= opts.max_candidates {
                    break 'search;
                }
                let mut candidate = earlier.clone();
                let end = (at + chunk).min(candidate.len());
                candidate.drain(at..end);
                let mut plans = candidate.clone();
                plans.push(last.clone());
                tried += 1;
                let (held, cut) = holds(plans).await?;
                if cut.is_some() && !held {
                    short = cut;
                    break 'search;
                }
                if held {
                    earlier = candidate;
                } else {
                    at = end;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2).min(earlier.len().max(1));
        }
    }
    // The breaking round's connections: damage that accumulates grows with their number
    // (one leaked slot per aborted handshake), so the fewest that still break the target
    // are found by bisecting on how many of them run (the first k, in id order), each
    // try against a freshly reset target. Dropping arbitrary subsets (ddmin) would cost
    // far more tries for the same answer.
    if before.reproduced > 0 && short.is_none() && last.conns.len() > 1 {
        let ids: Vec<u32> = last.conns.iter().map(|c| c.id).collect();
        // Invariant: the first `high` connections break the target; the first `low` do not
        // (or were not tried: 0).
        let (mut low, mut high) = (0usize, ids.len());
        while high - low > 1 && tried < opts.max_candidates {
            let mid = low + (high - low) / 2;
            let candidate = super::shrink::subset_plan(&last, &ids[..mid]);
            let mut plans = earlier.clone();
            plans.push(candidate);
            tried += 1;
            let (held, cut) = holds(plans).await?;
            if held {
                high = mid;
            } else if cut.is_some() {
                short = cut;
                break;
            } else {
                low = mid;
            }
        }
        if high < ids.len() {
            last = super::shrink::subset_plan(&last, &ids[..high]);
        }
    }
    let mut shrunk = repro.clone();
    let mut kept = health.clone();
    kept.earlier = earlier;
    let after = runner
        .measure_health(
            &kept.plans(&last),
            &kept.probe,
            opts.times,
            None,
            Some(budget_end),
        )
        .await?;
    if let Some(v) = after.evidence.first() {
        shrunk.evidence = vec![v.clone()];
    }
    shrunk.health = Some(kept);
    shrunk.plan = last;
    shrunk.rate = (after.rate.runs > 0).then_some((after.rate.reproduced, after.rate.runs));
    shrunk.reference = super::ReferenceServer::of(&runner.target);
    shrunk.target = runner.url().to_string();
    let after_size = health_size(&shrunk);
    Ok(ShrinkOutcome {
        before: (size, before),
        after: (after_size, after.rate),
        candidates: tried,
        short,
        repro: shrunk,
        unconfirmed: None,
    }
    .confirmed(repro))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `--reset` command past its timeout is killed with everything it started: its
    /// grandchild (`sleep 300`) ends too, instead of running on under PID 1.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_reset_command_past_its_timeout_is_killed_with_what_it_started() {
        use crate::process_group::testing::{cleanup, ends, grandchild, sleeping_grandchild};
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = sleeping_grandchild(&pidfile);
        let done = run_reset_command(&command, Duration::from_secs(2)).await;
        assert!(matches!(done, Err(ResetError::TimedOut { .. })), "{done:?}");
        let pid = grandchild(&pidfile).await;
        let ended = ends(&pid).await;
        cleanup(&pid);
        assert!(
            ended,
            "the reset's grandchild {pid} still runs after its timeout"
        );
    }

    /// A `--reset` command given up on before its timeout (Ctrl-C drops its future) is
    /// killed with everything it started.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_reset_command_dropped_by_ctrl_c_is_killed_with_what_it_started() {
        use crate::process_group::testing::{cleanup, ends, grandchild, sleeping_grandchild};
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = sleeping_grandchild(&pidfile);
        // Boxed, so that `drop` drops the future itself (as `select!` does at Ctrl-C).
        let mut reset = Box::pin(run_reset_command(&command, Duration::from_secs(60)));
        let pid = tokio::select! {
            done = &mut reset => panic!("the reset ended by itself: {done:?}"),
            pid = grandchild(&pidfile) => pid,
        };
        drop(reset);
        let ended = ends(&pid).await;
        cleanup(&pid);
        assert!(
            ended,
            "the reset's grandchild {pid} still runs after Ctrl-C"
        );
    }

    /// What a reset that succeeds leaves running on purpose (a server it restarted in the
    /// background) stays: only a command given up on loses its group.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_reset_that_succeeds_leaves_what_it_started_in_the_background() {
        use crate::process_group::testing::{cleanup, ends, ends_within, grandchild};
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = format!(
            "sleep 300 >/dev/null 2>&1 & echo $! > '{}'",
            pidfile.display()
        );
        run_reset_command(&command, Duration::from_secs(10))
            .await
            .unwrap();
        let pid = grandchild(&pidfile).await;
        // A SIGKILL just sent takes a moment to end its target: give it one.
        let killed = ends_within(&pid, Duration::from_secs(1)).await;
        cleanup(&pid);
        assert!(!killed, "the background process {pid} was killed");
        assert!(ends(&pid).await);
    }

    fn steps(text: &str) -> Vec<Step> {
        let s = crate::scenario::load_str(text, "p.toml").unwrap();
        s.groups[0].steps.clone()
    }

    const HEAD: &str = "name = \"p\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 3\n";

    #[test]
    fn the_probe_does_the_first_exchange_only() {
        let script = format!(
            "{HEAD}steps = [\n  {{ expect = \"connection_established\", within = \"2s\" }},\n  {{ send = {{ type = \"user_message\", run_id = \"r\" }} }},\n  {{ expect = \"agent_started agent_completed\", within = \"3s\" }},\n  {{ send = {{ type = \"user_message\", run_id = \"s\" }} }},\n  {{ expect = \"agent_started\" }},\n  {{ close = 1000 }},\n]\n"
        );
        let probe = probe_steps(&steps(&script));
        assert_eq!(probe.len(), 4, "{probe:?}");
        assert!(matches!(probe[1], Step::Send { .. }));
        assert!(matches!(probe[3], Step::Close { code: 1000 }));
    }

    #[test]
    fn the_probe_of_an_aborting_script_is_the_handshake_and_its_greeting() {
        let script = format!(
            "{HEAD}steps = [\n  {{ abort_handshake = {{ after = \"1ms\", how = \"rst\" }} }},\n  {{ reconnect = {{ after = \"400ms\" }} }},\n  {{ expect = \"connection_established\", within = \"2s\" }},\n  {{ close = 1000 }},\n]\n"
        );
        let probe = probe_steps(&steps(&script));
        assert_eq!(probe.len(), 2, "{probe:?}");
        assert!(matches!(probe[0], Step::Expect(_)));
        let s = crate::scenario::load_str(&script, "p.toml").unwrap();
        let plan = probe_plan(&s, 1);
        assert_eq!(plan.conns.len(), 1);
        assert_eq!(plan.duration, PROBE_LIMIT);
        assert!(plan.oracles.session.liveness.is_none());
    }

    fn answer(healthy: bool, shed: Option<(u32, &str, bool)>) -> ProbeAnswer {
        ProbeAnswer {
            healthy,
            answer: String::new(),
            elapsed_ms: 1.0,
            shed: shed.map(|(times, answer, unresolved)| Shed {
                times,
                answer: answer.into(),
                unresolved,
            }),
        }
    }

    #[test]
    fn a_probe_still_shed_is_neither_healthy_nor_broken_and_the_note_counts_it() {
        let waited_out = answer(
            true,
            Some((2, "http_429 HTTP/1.1 429, Retry-After 1s", false)),
        );
        let still_shed = answer(false, Some((3, "http_503 HTTP/1.1 503", true)));
        let refused = answer(false, None);
        assert!(!waited_out.shedding() && !waited_out.broken());
        assert!(still_shed.shedding() && !still_shed.broken());
        assert!(refused.broken() && !refused.shedding());

        let mut shed = HealthShed::default();
        shed.count(&refused);
        assert_eq!(shed.note(), None, "nothing shed, nothing to say");
        shed.count(&waited_out);
        let note = shed.note().unwrap();
        assert!(
            note.contains("2 times (http_429") && note.contains("waited out as it asked"),
            "{note}"
        );
        let mut level = HealthShed::default();
        level.count(&still_shed);
        shed.merge(&level);
        assert_eq!((shed.answers, shed.inconclusive), (5, 1));
        let note = shed.note().unwrap();
        assert!(
            note.contains("5 times (http_503") && note.contains("1 probe was still shed"),
            "{note}"
        );
    }

    /// A probe run turned away by a Close that reads as rate limiting (1008 "too many
    /// connections", which the scenario did not declare as shedding) was shed: the probe
    /// waits and tries again, and never calls the target broken for it. A plain 1008 is a
    /// refusal still.
    #[test]
    fn a_probe_closed_for_a_rate_limit_is_shed_not_a_broken_target() {
        let closed = |reason: &str| {
            let mut outcome = crate::hunt::tests::round(Verdict::AuthMisconfigured, "", 0);
            let s = &mut outcome.results.summary;
            s.counters.accepted = 0;
            s.counters.shed = 0;
            s.answers = vec![crate::model::Answer::new(
                crate::model::Cause::ServerClose(1008),
                "Close 1008".into(),
                reason.as_bytes(),
            )];
            outcome
        };
        let limited = answer_of(&closed("too many connections"));
        assert!(limited.shedding() && !limited.broken(), "{limited:?}");
        assert_eq!(
            limited.answer,
            "shed: server_close_1008 Close 1008, reason \"too many connections\""
        );
        let refused = closed("invalid token");
        assert_eq!(shed_wait(&refused), None);
        assert!(answer_of(&refused).shed.is_none());
    }

    #[test]
    fn a_probe_answer_written_before_shedding_was_counted_still_reads() {
        let old =
            r#"{"healthy": false, "answer": "failed: server_close_1011", "elapsed_ms": 502.2}"#;
        let read: ProbeAnswer = serde_json::from_str(old).unwrap();
        assert_eq!(read.shed, None);
        assert!(read.broken());
        let written = serde_json::to_string(&read).unwrap();
        assert!(!written.contains("shed"), "left out when none: {written}");
    }

    #[tokio::test]
    async fn a_reset_command_that_fails_or_hangs_is_a_clear_error() {
        run_reset_command("true", Duration::from_secs(5))
            .await
            .unwrap();
        let failed = run_reset_command("echo no such target >&2; exit 3", Duration::from_secs(5))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            failed.contains("failed") && failed.contains("no such target"),
            "{failed}"
        );
        let started = std::time::Instant::now();
        let hung = run_reset_command("sleep 30", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(hung, ResetError::TimedOut { .. }), "{hung}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// A reset that prints megabytes to stderr, its last line thousands of characters
    /// long, fails with that line cut (and said so), and keeps no more than the last
    /// 64 KiB of what it printed.
    #[tokio::test]
    async fn a_reset_commands_stderr_is_kept_bounded_and_its_quoted_line_cut() {
        let command = "head -c 4000000 /dev/zero | tr '\\0' 'x' >&2; echo >&2; \
                       head -c 5000 /dev/zero | tr '\\0' 'y' >&2; exit 3";
        let err = run_reset_command(command, Duration::from_secs(20))
            .await
            .unwrap_err();
        let ResetError::Failed { stderr, .. } = &err else {
            panic!("{err}");
        };
        assert!(
            stderr.len() <= MAX_RESET_STDERR,
            "{} bytes kept",
            stderr.len()
        );
        assert!(stderr.ends_with(&"y".repeat(100)), "the tail is kept");
        let said = err.to_string();
        assert!(said.contains(&"y".repeat(MAX_QUOTED_LINE)), "{said}");
        assert!(!said.contains(&"y".repeat(MAX_QUOTED_LINE + 1)), "{said}");
        assert!(said.contains("cut at 200 characters"), "{said}");
        assert!(said.len() < 400, "{said}");
    }
}
