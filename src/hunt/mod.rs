//! Race hunting: seeded exploration round after round, repro files, replay on demand and
//! shrinking to the few connections a race needs.
//!
//! Pieces a caller running its own families of rounds can use one by one: [`hunt`] (one
//! scenario, with health probes between rounds and `[hunt] pressure` escalation),
//! [`probe_plan`] + [`Runner::probe`] (is the target healthy now?),
//! [`Runner::reset_target`] (`--reset`, or a restart of the built-in server),
//! [`Runner::measure_health`] (replay a broken-target finding), and [`pressure`] +
//! [`apply_pressure`] (the level of any round).

pub mod battery;
mod health;
mod repro;
mod sends;
mod shrink;
mod space;
pub mod timing;

pub use health::{
    answer_of, health_size, health_violation, probe_plan, probe_steps, run_reset_command,
    shrink_health, HealthFinding, HealthShed, ProbeAnswer, ProbeRun, Reset, ResetError, Shed,
    NO_RESET_SHRINK, PROBE_LIMIT, RESET_TIMEOUT, SHED_BACKOFF, SHED_WAIT_CAP,
};
pub use repro::{ReferenceServer, Repro, ReproError, OLDEST_READ, REPRO_VERSION};
pub use sends::{Capped, SendScale};
pub use shrink::{shrink, ShrinkOptions, ShrinkOutcome, Signature};
pub use space::{apply_pressure, draw, pressure, round_seed, separate, Level};

use crate::auth::Keys;
use crate::metrics::Live;
use crate::model::{OracleKind, Plan, Scenario, StopReason, Verdict, Violation};
use crate::plan;
use crate::run::{self, Bound, RunError, RunOptions, RunOutcome, Target};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A run under a budget is stopped this long before the budget's end, so its goodbyes, its
/// results and the caller's own wrap-up still land inside the budget.
pub const WIND_DOWN: Duration = Duration::from_millis(500);

/// A run under a budget starts only when at least this much of it is left: a shorter one
/// could not even open its connections.
pub const MIN_RUN: Duration = Duration::from_millis(250);

/// The part of a hunt's `--budget` calibration may use at most (a quarter: the rounds
/// need the rest), as the instant it must have ended by when the budget starts at
/// `started`. Calibration's own limit ([`run::learn::LIMIT`]) still applies.
pub fn calibration_end(started: Instant, budget: Duration) -> Instant {
    started + budget / 4
}

/// Why a hunt, replay or shrink could not go on.
#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Repro(#[from] ReproError),
    #[error(transparent)]
    Reset(#[from] ResetError),
    /// The `--reset` command failed before the first replay of a find: the find's repro
    /// is written all the same, unconfirmed (no replay ran), rather than lost.
    #[error(
        "{source}, before the first replay of the {oracle} violation round {round} found: its \
         repro is written, unconfirmed (no replay ran), at {}; replay it once the reset works",
        path.display()
    )]
    ResetAfterFind {
        path: PathBuf,
        round: u32,
        oracle: OracleKind,
        #[source]
        source: ResetError,
    },
}

/// Shorthand for this module's results.
type Error = HuntError;

/// Runs plans against one bound target, each with fresh token ids.
pub struct Runner {
    /// What the runner was asked to run against (`bound` is where that turned out to be).
    pub target: Target,
    pub bound: Bound,
    pub opts: RunOptions,
    pub cancel: CancellationToken,
    /// What calibration learned when `opts.learn` asked for it (once, at the start): every
    /// plan this runner runs checks it, unless the plan carries its own or its scenario
    /// says `[oracles] learn = false`.
    pub learned: crate::model::LearnedOracles,
    /// What calibration did (connections made, whether its time bound cut it, how long
    /// it took); `None` when it did not run (or Ctrl-C stopped it).
    pub calibration: Option<crate::oracle::learn::Proposal>,
    /// How the target is put back in its first state before each replay and shrink try
    /// ([`Runner::reset_target`]): [`Reset::BuiltIn`] for the built-in server,
    /// [`Reset::None`] for a URL until `--reset` sets a command.
    pub reset: Reset,
}

impl Runner {
    /// A runner against `target`, bound for `plan`'s auth (the reference server is
    /// started, with its bug if any). Stop it with [`Runner::close`].
    pub async fn start(
        target: &Target,
        plan: &Plan,
        opts: RunOptions,
        cancel: CancellationToken,
    ) -> Result<Runner, Error> {
        let bound = run::bind(target, plan, &cancel).await?;
        let mut calibration = None;
        if opts.learn && plan.oracles.learn {
            match run::learn::calibrate(plan, &bound, &opts, &cancel).await {
                Ok(proposal) => calibration = Some(proposal),
                // Ctrl-C while calibrating: no round will run, and the caller still says
                // what was done (nothing) rather than fail.
                Err(RunError::Interrupted) => {}
                Err(err) => {
                    bound.close().await;
                    return Err(err.into());
                }
            }
        }
        let learned = calibration
            .as_ref()
            .map(|p| p.learned.clone())
            .unwrap_or_default();
        let reset = if bound.is_reference() {
            Reset::BuiltIn
        } else {
            Reset::None
        };
        Ok(Runner {
            target: target.clone(),
            bound,
            // Learned once here; the runs themselves do not calibrate again.
            opts: RunOptions {
                learn: false,
                ..opts
            },
            cancel,
            learned,
            calibration,
            reset,
        })
    }

    /// A runner against the built-in reference server, verifying what `plan` mints, with
    /// `bug` planted (and its window) or none.
    pub async fn reference(
        plan: &Plan,
        bug: Option<crate::reference::Bug>,
        window: Option<Duration>,
        cancel: CancellationToken,
    ) -> Result<Runner, Error> {
        let target = Target::Reference { bug, window };
        Runner::start(&target, plan, RunOptions::default(), cancel).await
    }

    /// The URL runs go to.
    pub fn url(&self) -> &str {
        &self.bound.url
    }

    /// The keys tokens are minted with.
    pub fn keys(&self) -> &Keys {
        &self.bound.keys
    }

    /// Stops the reference server, if this runner started one.
    pub async fn close(self) {
        self.bound.close().await;
    }

    /// One execution; writes no result files.
    pub async fn once(&self, plan: &Plan) -> Result<RunOutcome, Error> {
        self.run(plan, None).await
    }

    /// One execution that ends by `budget_end` (a budget's deadline): the plan's duration
    /// is capped by what is left (less [`WIND_DOWN`]), and a run still going then (its
    /// probe phase, say) is stopped like Ctrl-C. `None` when less than [`MIN_RUN`] was
    /// left, or on Ctrl-C before the run could start: nothing ran (the caller tells the two
    /// apart by [`Runner::cancel`]). `Some((outcome, cut))`, `cut` when the budget stopped
    /// it.
    pub async fn once_by(
        &self,
        plan: &Plan,
        budget_end: Instant,
    ) -> Result<Option<(RunOutcome, bool)>, Error> {
        let stop_at = budget_end.checked_sub(WIND_DOWN).unwrap_or(budget_end);
        let left = stop_at.saturating_duration_since(Instant::now());
        if left < MIN_RUN || self.cancel.is_cancelled() {
            return Ok(None);
        }
        let mut plan = plan.clone();
        plan.duration = plan.duration.min(left);
        let outcome = match self.run(&plan, Some(stop_at)).await {
            Ok(outcome) => outcome,
            // Ctrl-C while the run was being set up (its host resolving): nothing ran.
            Err(HuntError::Run(RunError::Interrupted)) => return Ok(None),
            Err(err) => return Err(err),
        };
        let cut = outcome.results.summary.stopped == StopReason::Interrupted
            && !self.cancel.is_cancelled();
        Ok(Some((outcome, cut)))
    }

    /// Runs `plan` with fresh token ids, stopped at `stop_at` if still going then.
    async fn run(&self, plan: &Plan, stop_at: Option<Instant>) -> Result<RunOutcome, Error> {
        let opts = RunOptions {
            out: None,
            ..self.opts.clone()
        };
        // `run::execute` gives it `jti`s of this execution's own.
        let mut plan = plan.clone();
        if plan.oracles.learn && plan.oracles.learned.is_empty() {
            // Learned on the probe plan; this plan may put several connections on one user.
            let tokens_read = self.calibration.as_ref().and_then(|p| p.tokens_read);
            plan.oracles.learned = self.learned.clone().scoped(plan.shares_users(tokens_read));
        }
        let plan = Arc::new(plan);
        let live = Arc::new(Live::default());
        let cancel = self.cancel.child_token();
        let run = run::execute(plan, &self.bound, live, &opts, cancel.clone());
        let Some(stop_at) = stop_at else {
            return Ok(run.await?);
        };
        tokio::pin!(run);
        let outcome = tokio::select! {
            outcome = &mut run => outcome,
            _ = tokio::time::sleep_until(stop_at) => {
                cancel.cancel();
                run.await
            }
        };
        Ok(outcome?)
    }

    /// The `oracle` violations of the first of up to `tries` runs that breaks it: fresh
    /// evidence for a plan that changed (a shrunk repro must not show the original's).
    pub async fn evidence(
        &self,
        plan: &Plan,
        oracle: OracleKind,
        tries: u32,
    ) -> Result<Vec<Violation>, Error> {
        for _ in 0..tries {
            if self.cancel.is_cancelled() {
                break;
            }
            self.reset_target().await?;
            let outcome = self.once(plan).await?;
            if broke(&outcome, oracle) {
                return Ok(first_of(&outcome, oracle, &|_| true));
            }
        }
        Ok(Vec::new())
    }

    /// Replays `repro` up to `times` times (no budget; Ctrl-C stops it) and counts the runs
    /// that broke its oracle, judged as the hunt that found it judged: a violation its
    /// policy rule excuses ([`Repro::policy`]) never counts.
    ///
    /// Unlike a hunt's or a shrink's measures (whose candidates may lack the race on
    /// purpose), a replay that could not have broken the oracle stops it as unjudged
    /// ([`unexercised`]): a repro is replayed to say whether the race is still there.
    pub async fn replay(&self, repro: &Repro, times: u32) -> Result<Measured, Error> {
        let wanted = |v: &Violation| !repro.excuses(v);
        let measure = Measure {
            oracle: repro.oracle,
            times,
            need: None,
            budget_end: None,
            strict: true,
        };
        self.measure_with(&repro.plan, measure, (&wanted, repro.policy))
            .await
    }

    /// Runs `plan` up to `times` times and counts runs that broke `oracle`. With `need`,
    /// stops as soon as the answer is known (reached, or out of reach). Stops early on
    /// Ctrl-C (the rate then says so).
    pub async fn rate(
        &self,
        plan: &Plan,
        oracle: OracleKind,
        times: u32,
        need: Option<u32>,
    ) -> Result<Rate, Error> {
        Ok(self.measure(plan, oracle, times, need, None).await?.rate)
    }

    /// [`Runner::rate`] within a budget ending at `budget_end` (each replay's duration
    /// capped by what is left, see [`Runner::once_by`]), keeping the violations of the
    /// first run that broke `oracle` as evidence. A replay the budget cut short proves
    /// nothing either way and is not counted; the rate then says the budget ran out.
    pub async fn measure(
        &self,
        plan: &Plan,
        oracle: OracleKind,
        times: u32,
        need: Option<u32>,
        budget_end: Option<Instant>,
    ) -> Result<Measured, Error> {
        self.measure_where(plan, oracle, times, need, budget_end, (&|_| true, None))
            .await
    }

    /// [`Runner::measure`] counting only the runs with an `oracle` violation that `wanted`
    /// accepts (shrinking: the same expectation with the same kind of evidence); the
    /// evidence kept is those violations.
    pub async fn measure_where(
        &self,
        plan: &Plan,
        oracle: OracleKind,
        times: u32,
        need: Option<u32>,
        budget_end: Option<Instant>,
        (wanted, excuse): (Wanted<'_>, Option<Excuse>),
    ) -> Result<Measured, Error> {
        let measure = Measure {
            oracle,
            times,
            need,
            budget_end,
            strict: false,
        };
        self.measure_with(plan, measure, (wanted, excuse)).await
    }

    /// [`Runner::measure_where`] as `m` says.
    async fn measure_with(
        &self,
        plan: &Plan,
        m: Measure,
        (wanted, excuse): (Wanted<'_>, Option<Excuse>),
    ) -> Result<Measured, Error> {
        let Measure {
            oracle,
            times,
            need,
            budget_end,
            strict,
        } = m;
        let mut rate = Rate {
            reproduced: 0,
            runs: 0,
            planned: times,
            short: None,
            shed: 0,
        };
        let mut evidence = Vec::new();
        let mut others = BTreeMap::new();
        for i in 0..times {
            if self.cancel.is_cancelled() {
                rate.short = Some(Short::Interrupted);
                break;
            }
            if let Some(need) = need {
                if rate.reproduced >= need || rate.reproduced + (times - i) < need {
                    break;
                }
            }
            // Each replay starts from the target's first state when it can be reset.
            self.reset_by(budget_end).await?;
            let outcome = match budget_end {
                None => match self.once(plan).await {
                    Ok(outcome) => outcome,
                    Err(HuntError::Run(RunError::Interrupted)) => {
                        rate.short = Some(Short::Interrupted);
                        break;
                    }
                    Err(err) => return Err(err),
                },
                Some(end) => match self.once_by(plan, end).await? {
                    Some((outcome, false)) => outcome,
                    Some((_, true)) | None => {
                        rate.short = Some(self.cut_reason());
                        break;
                    }
                },
            };
            if self.cancel.is_cancelled() {
                // Cut by Ctrl-C: proves nothing either way.
                rate.short = Some(Short::Interrupted);
                break;
            }
            // A target that stopped being usable answers nothing about the race: stop and
            // say so rather than count a "not reproduced".
            if let Some(unjudged) = Unjudged::of_excusing(&outcome, true, excuse) {
                rate.short = Some(Short::Unjudged(unjudged));
                break;
            }
            let matching = first_of(&outcome, oracle, wanted);
            let reproduced = broke(&outcome, oracle) && !matching.is_empty();
            // A run that did not break the oracle answers only if it could have: one that
            // accepted no connection, or never set up what the oracle judges (no two
            // connections shared a token), is no "not reproduced".
            // A run whose every refusal the repro's policy rule excuses was a clean answer
            // (the request refused out loud), though no connection was accepted.
            let excused = excused_refusals(&outcome, excuse);
            let unexercised =
                || excused_by_verdict(&outcome).or_else(|| unexercised(&outcome, oracle));
            if let (true, false, false, Some(unjudged)) =
                (strict, reproduced, excused, unexercised())
            {
                rate.short = Some(Short::Unjudged(unjudged));
                break;
            }
            rate.runs += 1;
            // Only a replay says what else broke (a hunt's or shrink's candidates are
            // judged on their own oracle alone).
            if strict {
                for other in others_broken(&outcome, oracle, excuse) {
                    *others.entry(other).or_insert(0) += 1;
                }
            }
            if reproduced {
                rate.reproduced += 1;
                if evidence.is_empty() {
                    evidence = matching;
                }
            }
        }
        Ok(Measured {
            rate,
            evidence,
            others,
        })
    }
}

/// A replay whose violations its inconclusive verdict excuses (the server went down under
/// it, a deploy or a crash): neither the race reproduced nor its absence. A hunt's round
/// so judged is only not judged, and the hunt goes on (a deploy ends; a target that stays
/// down stops the next round).
fn excused_by_verdict(outcome: &RunOutcome) -> Option<Unjudged> {
    let s = &outcome.results.summary;
    (s.verdict == Verdict::Inconclusive && s.violations.total > 0).then(|| Unjudged {
        verdict: s.verdict,
        hint: s.hint.clone().unwrap_or_default(),
    })
}

/// Why a run that did not break `oracle` could not have: it accepted no connection (none
/// meant to be refused: a plan of forged tokens only judges their refusals), or, for
/// exclusivity, no two of its connections presented one token (or were one user's, as
/// sessions are kept). `None` when it could have.
fn unexercised(outcome: &RunOutcome, oracle: OracleKind) -> Option<Unjudged> {
    let s = &outcome.results.summary;
    let planned = outcome.plan.conns.len();
    // A plan whose connections all abort their handshakes on purpose asks no acceptance:
    // what it judges comes after it (the probe of a leaked slot).
    let asks_acceptance = planned == 0
        || outcome
            .plan
            .conns
            .iter()
            .any(|c| !aborts_only(&outcome.plan, c));
    if asks_acceptance
        && s.counters.accepted == 0
        && !(forged_only(&outcome.plan) && s.counters.rejected > 0)
    {
        let hint = match planned {
            0 => "its plan has no connection, so nothing was judged".to_string(),
            n => format!(
                "the target accepted none of its {}, so nothing was judged",
                crate::model::words::plural(n as u64, "planned connection")
            ),
        };
        return Some(Unjudged {
            verdict: Verdict::Inconclusive,
            hint,
        });
    }
    let exclusive = outcome.plan.oracles.session.max_live.is_some();
    (oracle == OracleKind::Exclusivity && exclusive && s.coverage.shared_tokens == 0).then(|| {
        Unjudged {
            verdict: Verdict::Inconclusive,
            hint: "no two of its connections shared a token, so exclusivity was not exercised"
                .into(),
        }
    })
}

/// What a series of runs measures: `oracle` over up to `times` runs, stopping once `need`
/// reproductions are reached or out of reach, within `budget_end`; `strict`: a run that
/// could not have broken the oracle stops the series as unjudged ([`unexercised`]).
#[derive(Debug, Clone, Copy)]
struct Measure {
    oracle: OracleKind,
    times: u32,
    need: Option<u32>,
    budget_end: Option<Instant>,
    strict: bool,
}

/// The oracles other than `oracle` that `outcome` broke, judged as the repro's own is:
/// what its policy rule (`excuse`) excuses, and what a slow client or a misspelled kind
/// explains, is no break.
fn others_broken(
    outcome: &RunOutcome,
    oracle: OracleKind,
    excuse: Option<Excuse>,
) -> std::collections::BTreeSet<OracleKind> {
    outcome
        .results
        .violations
        .iter()
        .map(|v| v.oracle)
        .filter(|o| *o != oracle)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|o| broke_unexcused(outcome, *o, excuse))
        .collect()
}

/// Whether connection `c` of `plan` only aborts its handshake (its first step, and its
/// only connect, an `abort_handshake`): it never asks to be accepted.
fn aborts_only(plan: &Plan, c: &crate::model::ConnPlan) -> bool {
    use crate::model::{Action, Step};
    if !c.is_scripted() {
        let reconnects = c
            .actions
            .iter()
            .any(|a| matches!(a, Action::Reconnect { .. }));
        return matches!(c.actions.first(), Some(Action::AbortHandshake { .. })) && !reconnects;
    }
    plan.scripts.get(c.group as usize).is_some_and(|script| {
        let reconnects =
            crate::model::deep_steps(script).any(|s| matches!(s, Step::Reconnect { .. }));
        matches!(script.first(), Some(Step::AbortHandshake { .. })) && !reconnects
    })
}

/// Which violations of a replay count as reproducing a find.
type Wanted<'a> = &'a (dyn Fn(&Violation) -> bool + Sync);

/// The first (up to 10) violations of `oracle` in a run that `wanted` accepts.
fn first_of(
    outcome: &RunOutcome,
    oracle: OracleKind,
    wanted: &(dyn Fn(&Violation) -> bool + Sync),
) -> Vec<Violation> {
    let slow = slow_of(outcome);
    let misspelled = misspelled_of(outcome);
    outcome
        .results
        .violations
        .iter()
        .filter(|v| v.oracle == oracle && wanted(v) && !is_among(v, &slow))
        .filter(|v| !is_among(v, &misspelled))
        .take(10)
        .cloned()
        .collect()
}

/// What a series of replays showed.
#[derive(Debug, Clone)]
pub struct Measured {
    pub rate: Rate,
    /// The `oracle` violations of the first replay that broke it (empty when none did).
    pub evidence: Vec<Violation>,
    /// Other oracles the judged replays broke, and in how many replays each: a fix of one
    /// race that brings another (an identity swap where a token was served twice) is no
    /// pass.
    pub others: BTreeMap<OracleKind, u32>,
}

/// Why fewer replays or rounds ran than were asked for (other than the answer being known
/// early).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Short {
    /// The wall-clock budget ran out.
    Budget,
    /// Ctrl-C.
    Interrupted,
    /// A run could not judge the target (unusable, misconfigured, client-limited) or did
    /// not finish its own plan: it answers nothing about the race, so nothing more ran and
    /// nothing became a repro.
    Unjudged(Unjudged),
}

/// Why a run could not judge the target: its verdict and hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unjudged {
    pub verdict: Verdict,
    pub hint: String,
}

impl Unjudged {
    /// Whether `other` gives the same reason: the same verdict and the same hint but for
    /// its figures (counts of connections and sends vary from round to round).
    fn alike(&self, other: &Unjudged) -> bool {
        let words = |hint: &str| {
            hint.chars()
                .filter(|c| !c.is_ascii_digit())
                .collect::<String>()
        };
        self.verdict == other.verdict && words(&self.hint) == words(&other.hint)
    }

    /// The run's verdict when it cannot stand for the race: the target unusable or
    /// misconfigured, a plan cut by its own duration (`cut_by_us` when the budget or
    /// Ctrl-C cut it instead: that proves nothing about the target), or violations that
    /// may all be an undeclared rate limit
    /// ([`crate::results::Summary::rate_limiting_may_explain`]).
    pub fn of(outcome: &RunOutcome, cut_by_us: bool) -> Option<Unjudged> {
        let s = &outcome.results.summary;
        let incomplete = s.verdict == Verdict::Incomplete && !cut_by_us;
        // Violations that may all be a rate limit the scenario does not declare: a repro
        // would only show that policy again (the hint says how to declare it).
        let hint = s.hint.clone().unwrap_or_default();
        if s.rate_limiting_may_explain {
            // Neither a race nor a clean answer: inconclusive (exit 4), never the exit
            // code of a race found.
            return Some(Unjudged {
                verdict: Verdict::Inconclusive,
                hint: format!("its violations may all be the server's rate limiting: {hint}"),
            });
        }
        (!s.verdict.exercised() || incomplete).then_some(Unjudged {
            verdict: s.verdict,
            hint,
        })
    }

    /// [`Unjudged::of`] under the policy rule `excuse`: a run whose every violation the
    /// rule excuses (`excused_refusals`) is judged by it, not unjudged.
    pub fn of_excusing(
        outcome: &RunOutcome,
        cut_by_us: bool,
        excuse: Option<Excuse>,
    ) -> Option<Unjudged> {
        if excused_refusals(outcome, excuse) {
            return None;
        }
        Unjudged::of(outcome, cut_by_us)
    }
}

/// Whether a run that could not judge the target (the server closed every valid token's
/// connection before accepting it: misconfigured or unusable) did so only by what `excuse`
/// calls the server's policy: every violation it saw, none left unkept, is one the rule
/// excuses. A run alone cannot tell a policy close from a token the server never read,
/// so its verdict says it judged nothing; a hunt hands a rule only where it knows the
/// target accepts its tokens (the battery's early-send family, once a probe saw one
/// accepted), and there such a run is a clean answer: the request was refused out loud.
fn excused_refusals(outcome: &RunOutcome, excuse: Option<Excuse>) -> bool {
    let Some(excuse) = excuse else {
        return false;
    };
    let s = &outcome.results.summary;
    let kept = &outcome.results.violations;
    matches!(
        s.verdict,
        Verdict::AuthMisconfigured | Verdict::TargetUnusable
    ) && s.violations.total > 0
        && kept.len() as u64 == s.violations.total
        && kept.iter().all(|v| excuse.excuses(v))
}

/// How often a plan reproduced a violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    pub reproduced: u32,
    /// Replays that ran to their end (a replay cut by the budget or Ctrl-C is not counted).
    pub runs: u32,
    /// Replays asked for.
    pub planned: u32,
    /// Why fewer than `planned` ran, when it was not that the answer was already known.
    pub short: Option<Short>,
    /// Replays of a broken-target finding not judged because the server was still
    /// shedding the health probe when its wait ran out (load shedding, not a broken
    /// target): neither runs nor reproductions.
    pub shed: u32,
}

impl Rate {
    /// Why fewer than `planned` replays ran, in words: `budget ran out before 10`,
    /// `interrupted before 10`, `stopped before 10: the next run's verdict was target_unusable`, `2 not judged: the
    /// server was shedding the health probe`; `None` when none was cut short.
    pub fn cut_short(&self) -> Option<String> {
        let stopped = self.short.as_ref().map(|short| match short {
            Short::Budget => format!("budget ran out before {}", self.planned),
            Short::Interrupted => format!("interrupted before {}", self.planned),
            Short::Unjudged(u) => format!(
                "stopped before {}: the next run's verdict was {}",
                self.planned, u.verdict
            ),
        });
        let shed = (self.shed > 0).then(|| {
            format!(
                "{} not judged: the server was shedding the health probe",
                self.shed
            )
        });
        match (stopped, shed) {
            (Some(stopped), Some(shed)) => Some(format!("{stopped}; {shed}")),
            (stopped, shed) => stopped.or(shed),
        }
    }
}

impl Rate {
    /// What the replays of a find that is no find showed, in words: `reproduced 3/10 on
    /// replay`, or, when none ran, `not replayed (budget ran out before 10)` (not `0/0`,
    /// which reads as a rate measured).
    pub fn replayed_words(&self) -> String {
        if self.runs > 0 {
            return format!("reproduced {self} on replay");
        }
        match self.cut_short() {
            Some(why) => format!("not replayed ({why})"),
            None => "not replayed (--times 0)".to_string(),
        }
    }
}

impl std::fmt::Display for Rate {
    /// `3/10`; cut short: `3/4 (budget ran out before 10)`, `3/4 (interrupted before 10)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.reproduced, self.runs)?;
        match self.cut_short() {
            Some(why) => write!(f, " ({why})"),
            None => Ok(()),
        }
    }
}

/// Whether a run broke `oracle`.
pub fn broke(outcome: &RunOutcome, oracle: OracleKind) -> bool {
    outcome.broke(oracle)
}

/// A rule saying which violations are the server's stated policy rather than a finding.
/// A hunt given one counts those apart ([`HuntOutcome::excused`]) and finds only what it
/// does not excuse; its repro records the rule ([`Repro::policy`]) so that `replay` and
/// `shrink` judge the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Excuse {
    /// The battery's early-send family: a request refused with an explicit Close code
    /// before any of its reply came ([`crate::oracle::refusal::refused_by_close`]).
    RefusalClose,
}

impl Excuse {
    /// Whether `v` is the server's policy under this rule.
    pub fn excuses(self, v: &Violation) -> bool {
        match self {
            Excuse::RefusalClose => crate::oracle::refusal::refused_by_close(v).is_some(),
        }
    }
}

/// Whether a run broke `oracle` by a violation that is neither the server's policy
/// (`excuse`) nor slowness ([`slow_of`]). A connection keeps only its first violations, so
/// the ones not kept count as neither.
fn broke_unexcused(outcome: &RunOutcome, oracle: OracleKind, excuse: Option<Excuse>) -> bool {
    if !broke(outcome, oracle) {
        return false;
    }
    let excused = excused_of(outcome, excuse);
    let slow = slow_of(outcome);
    let misspelled = misspelled_of(outcome);
    let set_aside = excused
        .iter()
        .chain(&slow)
        .chain(misspelled.iter().filter(|v| !is_among(v, &slow)))
        .filter(|v| v.oracle == oracle)
        .count() as u64;
    outcome.results.summary.violations.of(oracle) > set_aside
}

/// The violations of a run that `excuse` excuses.
fn excused_of(outcome: &RunOutcome, excuse: Option<Excuse>) -> Vec<&Violation> {
    match excuse {
        None => Vec::new(),
        Some(excuse) => outcome
            .results
            .violations
            .iter()
            .filter(|v| excuse.excuses(v))
            .collect(),
    }
}

/// The violations of a run that are slowness, not a race ([`verdict::late_answers`]:
/// answers that came whole after their `within`): the run's verdict tells them apart from
/// a loss, and a hunt finds no race in them and writes no repro of them, nor counts them
/// as reproducing one. A server slow under one load may not be under a replay's.
///
/// So are the deadlines missed with no answer seen on a connection the run's own end cut
/// sooner after them than their `within` ([`Violation::cut_by_run_ms`]): not proven lost.
/// A round a hunt's budget shortened cut its connections so, and its repro, keeping that
/// duration, cut every replay so: "reproduced" against a server that was only slow.
fn slow_of(outcome: &RunOutcome) -> Vec<&Violation> {
    let mut slow = crate::oracle::verdict::late_answers(&outcome.results.violations);
    slow.extend(
        outcome
            .results
            .violations
            .iter()
            .filter(|v| v.cut_by_run_ms.is_some() && v.late_ms.is_none()),
    );
    slow
}

/// The violations of a run that are a kind misspelled in its script
/// ([`verdict::misspelled`](crate::oracle::verdict::misspelled)), beside whatever else
/// broke: no race, so a hunt writes no repro of them nor counts them as reproducing one.
fn misspelled_of(outcome: &RunOutcome) -> Vec<&Violation> {
    let events = &outcome.results.summary.events;
    let arrived = |kind: &str| events.get(kind).is_some_and(|e| e.arrived > 0);
    crate::oracle::verdict::misspelled(&outcome.plan, &outcome.results.violations, &arrived)
}

/// What a hunt (or a battery family) that found no race says of the answers it set aside
/// as late ([`HuntOutcome::late`]); `None` when there were none. The run's verdict counts
/// them as violations: silence about them would read as a contradiction.
pub fn late_note(late: u64) -> Option<String> {
    if late == 0 {
        return None;
    }
    let answers = crate::model::words::plural(late, "answer");
    Some(format!(
        "set aside {answers} that came whole after the `within` they were given ran out: \
         slowness, not a race, so no repro was written of them; raise `within` if it is \
         stricter than the server's objective, or find what slows the server"
    ))
}

/// What a hunt (or a battery family) that found no race says of the deadlines it set aside
/// as not proven lost ([`HuntOutcome::unproven`]); `None` when there were none.
pub fn unproven_note(unproven: u64) -> Option<String> {
    if unproven == 0 {
        return None;
    }
    let deadlines = crate::model::words::plural(unproven, "deadline");
    Some(format!(
        "set aside {deadlines} missed with no answer seen on a connection a round's own end \
         (its budget, Ctrl-C) cut sooner after them than their `within`: not proven lost, \
         so no repro was written of them; a longer budget lets the rounds run past them"
    ))
}

/// What a hunt (or a battery family) that found no race says of the expectations it set
/// aside as a kind misspelled in the script ([`HuntOutcome::misspelled`]); `None` when
/// there were none. The rounds' verdicts counted them: silence would read as a
/// contradiction.
pub fn misspelled_note(misspelled: u64) -> Option<String> {
    if misspelled == 0 {
        return None;
    }
    let unmet = crate::model::words::plural(misspelled, "unmet expectation");
    Some(format!(
        "set aside {unmet} of a kind the script seems to misspell (it never came, while a \
         kind spelled close to it did, correlated, in its place): the scenario's mistake, \
         not a race, so no repro was written of them; fix the kind's spelling"
    ))
}

/// Whether `v` is one of `among` (the same violation, not an equal one).
fn is_among(v: &Violation, among: &[&Violation]) -> bool {
    among.iter().any(|a| std::ptr::eq(*a, v))
}

/// What to hunt for and for how long.
#[derive(Debug, Clone)]
pub struct HuntOptions {
    pub budget: Duration,
    pub seed: u64,
    /// Where repro files go (`<out>/<scenario>/`).
    pub out: PathBuf,
    /// Replays used to measure a find's reproduction rate.
    pub confirm: u32,
}

/// One line of progress.
#[derive(Debug, Clone)]
pub struct Progress {
    pub round: u32,
    /// The round's connections that dialled ([`RunOutcome::dialled`]): what it opened,
    /// never more than `planned`.
    pub connections: usize,
    /// The connections the round's plan held.
    pub planned: usize,
    pub violations: u64,
    /// The round's verdict and hint when it could not judge the target (the hunt stops on
    /// it: [`Unjudged::of`]); its violations are then no findings (every valid token
    /// refused reads as liveness violations), and a progress line says the verdict instead
    /// of counting them.
    pub unjudged: Option<Unjudged>,
    /// The round's verdict and hint when it judged no race though the hunt goes on (it
    /// was inconclusive, e.g. shedding ate its coverage, or the server sent nothing back):
    /// neither clean nor a finding, so a progress line says why instead of "0 violations".
    pub not_judged: Option<Unjudged>,
    /// Ctrl-C stopped the round before its plan finished: without a violation, what it
    /// ran proves nothing, and a progress line says so instead of "0 violations".
    pub interrupted: bool,
    pub elapsed: Duration,
    /// With `[hunt] pressure`: the round's level, with what the level saw so far.
    pub pressure: Option<LevelStats>,
}

/// What the rounds at one pressure level reached (`[hunt] pressure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelStats {
    pub level: u32,
    /// Users of each group at this level.
    pub users: Vec<u32>,
    /// Sends one connection of each group makes at this level (its send-bearing
    /// `repeat`s raised), groups in order.
    pub sends: Vec<u64>,
    /// The shortest gap between sends inside a raised block at this level (`every`, else
    /// `think`); `None` when no group has one.
    pub send_gap: Option<Duration>,
    /// The most connections one round at this level planned.
    pub connections: usize,
    /// Rounds run at this level, how many of them were clean, and how many could not judge
    /// the race (inconclusive: it was never exercised; or the target unusable): neither
    /// clean nor a finding.
    pub rounds: u32,
    pub clean: u32,
    pub not_judged: u32,
    /// The widest start jitter bound swept at this level, when swept.
    pub jitter: Option<Duration>,
    /// The release spread of its collide barriers and rendezvous meetings (the worst
    /// p99 and max over every release of every round at this level, µs); `None` when no
    /// round had one.
    pub spread_p99_us: Option<u64>,
    pub spread_max_us: Option<u64>,
    /// Whether this is the highest level the ceiling and the client allow, and what
    /// stops it there.
    pub ceiling: bool,
    pub limited_by: String,
}

/// Whether a round judged the race: `Some(true)` clean, `Some(false)` violations, `None`
/// when its verdict says the race was not exercised or its violations prove nothing
/// (inconclusive), or the target could not be judged at all: silence then is no pass.
fn judged(outcome: &RunOutcome) -> Option<bool> {
    let s = &outcome.results.summary;
    if s.violations.total > 0 {
        // Violations the verdict calls inconclusive are no finding: a restart cut them
        // (`went_away`), or a server that takes each token once refused tokens shown
        // twice. Nothing was judged either way.
        return (s.verdict != Verdict::Inconclusive).then_some(false);
    }
    // A round in which the target accepted no connection (a server that never answers the
    // upgrade, a round the budget cut before any answer) exercised nothing, whatever its
    // verdict; unless none was meant to get in: a plan of forged tokens only judged the
    // server's rejection of each (a server that let one in breaks rejection hygiene).
    if s.counters.accepted == 0 && !(forged_only(&outcome.plan) && s.counters.rejected > 0) {
        return None;
    }
    // Nor did one in which the server sent nothing back to a script that expects nothing
    // (a handshake the script never completes): only the handshakes were judged.
    if crate::oracle::verdict::sent_nothing_back(&s.counters).is_some() {
        return None;
    }
    (s.verdict.exercised() && s.verdict != Verdict::Inconclusive).then_some(true)
}

/// Whether every connection of `plan` presents a forged token (and it has some): no
/// connection of it is meant to be accepted.
fn forged_only(plan: &Plan) -> bool {
    !plan.conns.is_empty()
        && plan.conns.iter().all(|c| {
            plan.tokens
                .get(c.token as usize)
                .is_some_and(|t| t.forge.is_some())
        })
}

/// Whether a round judged the race as its plan stands ([`judged`]): one the hunt's budget
/// or Ctrl-C cut (`cut_by_us`) before its plan finished judged only part of it, and with
/// no violation in that part proves nothing (a golden path's 5 s ramp in a 1 s budget).
/// A violation in it is a fact all the same ([`judged`] is `Some(false)`).
fn judged_whole(outcome: &RunOutcome, cut_by_us: bool) -> bool {
    match judged(outcome) {
        None => false,
        Some(false) => true,
        Some(true) => !(cut_by_us && outcome.results.summary.verdict == Verdict::Incomplete),
    }
}

/// The rounds of a hunt that judged nothing ([`judged_whole`]), and why: the reason a round the
/// budget left whole gave, which a round it shortened (whose own reason is the budget)
/// must not hide when every round judged nothing.
#[derive(Debug, Default)]
struct NotJudged {
    rounds: u32,
    /// Of those, the rounds that judged nothing only because the budget (or Ctrl-C) cut
    /// them before their plan finished ([`judged_whole`]).
    only_cut: u32,
    /// The latest round's reason.
    last: Option<Unjudged>,
    /// The latest reason of a round the budget neither shortened nor stopped.
    last_whole: Option<Unjudged>,
    /// Whole rounds in a row, up to the latest, that judged nothing for the same reason
    /// ([`Unjudged::alike`]); a shortened round or another reason starts it over.
    alike: u32,
    /// The hunt stopped on [`ALIKE_ROUNDS`] of them ([`NotJudged::settled`]).
    settled: bool,
}

/// Whole rounds in a row that judged nothing for the same reason, none judged before
/// them, after which a hunt stops: its rounds differ in seed and timing only, and what
/// keeps a round from judging the race (a send nothing answers, a server that sends
/// nothing back) is in the scenario and the target, not in the seed. A nightly hunt of
/// such a scenario answered the same after its whole budget (50 rounds, 22 s here).
pub const ALIKE_ROUNDS: u32 = 5;

impl NotJudged {
    /// Counts a round that judged nothing, for `why`; `shortened` when the budget capped
    /// or stopped it, `only_cut` when that is all that was wrong with it.
    fn count(&mut self, why: Unjudged, shortened: bool, only_cut: bool) {
        self.rounds += 1;
        self.only_cut += u32::from(only_cut);
        if shortened {
            self.alike = 0;
        } else {
            let same = self.alike > 0 && self.last_whole.as_ref().is_some_and(|w| w.alike(&why));
            self.alike = if same { self.alike + 1 } else { 1 };
            self.last_whole = Some(why.clone());
        }
        self.last = Some(why);
    }

    /// Whether the hunt may stop here, `rounds_left` rounds before its end: the last
    /// `needed` rounds (at least [`ALIKE_ROUNDS`]) judged nothing for the same reason and
    /// no round judged anything, so the rest would not either.
    fn settled(&mut self, judged_rounds: u32, rounds_left: u32, needed: u32) -> bool {
        let needed = needed.max(ALIKE_ROUNDS);
        self.settled = judged_rounds == 0 && rounds_left > 0 && self.alike >= needed;
        self.settled
    }

    /// Whether every one of the rounds so far judged nothing, whole, for one reason
    /// ([`Unjudged::alike`]), and `then` (a round that stops the hunt, `None` when none
    /// does) for it too: the hunt may then say "every one of the N rounds was …". A hunt
    /// whose first round the server went down in and whose second found the target
    /// unusable had two reasons, not one.
    fn all_alike(&self, rounds: u32, then: Option<&Unjudged>) -> bool {
        let before = self.rounds == rounds && self.alike == self.rounds;
        match then {
            None => rounds > 0 && before,
            Some(why) => {
                rounds == 0 || (before && self.last_whole.as_ref().is_some_and(|w| w.alike(why)))
            }
        }
    }

    /// Why the rounds judged nothing: what the last whole round said, else (every round
    /// shortened by the budget) the last round's reason; when the hunt stopped on rounds
    /// alike ([`NotJudged::settled`]), saying so.
    fn reason(&self) -> Option<Unjudged> {
        let mut why = self.last_whole.clone().or_else(|| self.last.clone())?;
        if self.settled {
            why.hint.push_str(&format!(
                " (the hunt stopped after {} rounds that each judged nothing for this \
                 reason: its rounds differ only in seed and timing, so the rest would not \
                 judge the race either)",
                self.alike
            ));
        }
        Some(why)
    }
}

/// Whether the server shed every attempt of a run under load (HTTP 429 or 503, a 1013 or a
/// declared shed code, before any work): it answered "not now" to all of it.
fn shed_throughout(outcome: &RunOutcome) -> bool {
    let c = &outcome.results.summary.counters;
    c.attempted > 0 && c.shed >= c.attempted
}

/// Why a round that [`judged`] nothing stands for no pass: its verdict and hint. A round
/// in which the server sent nothing back is inconclusive as a run (its hint says so); one
/// the run still called clean (its handshakes judged a race of their own) reads as
/// incomplete here: the script it was for never ran, and what did not run proves
/// nothing. A round whose own verdict is incomplete because the budget shortened or
/// stopped it (`budget_cut`; the run itself saw that as its duration running out, or as
/// an interruption) says the budget did; one the server sent nothing back keeps that
/// reason, whatever the budget.
fn not_judged_round(outcome: &RunOutcome, budget_cut: bool) -> Unjudged {
    let s = &outcome.results.summary;
    let silent = crate::oracle::verdict::sent_nothing_back(&s.counters).is_some();
    let verdict = match s.verdict {
        Verdict::Clean if silent => Verdict::Incomplete,
        other => other,
    };
    let hint = if budget_cut && s.verdict == Verdict::Incomplete {
        budget_cut_hint(&s.counters, outcome.plan.limits.handshake_timeout)
    } else {
        s.hint.clone().unwrap_or_default()
    };
    Unjudged { verdict, hint }
}

/// The hint of a round the hunt's budget stopped before its plan finished: when no
/// upgrade had been answered by then, that the target answered none (what a run the
/// scenario's duration cut says), else that what did not run proves nothing.
fn budget_cut_hint(c: &crate::model::Counters, handshake_timeout: Duration) -> String {
    if c.accepted == 0 && c.cut > 0 {
        format!(
            "the hunt's budget ran out before the round's plan finished, and no connection \
             got an answer to its upgrade before then ({} cut waiting for the 101): the \
             target takes TCP connections but answered no WebSocket upgrade. Check the \
             URL's path and that it speaks WebSocket, or raise --budget so a round outlasts \
             [limits] handshake_timeout ({handshake_timeout:?}) to see it time out",
            c.cut
        )
    } else {
        "the hunt's budget ran out before the round's plan finished: what did not run \
         proves nothing (raise --budget)"
            .into()
    }
}

impl LevelStats {
    fn new(level: &Level) -> LevelStats {
        LevelStats {
            level: level.level,
            users: level.users.clone(),
            sends: level.sends.clone(),
            send_gap: level.send_gap,
            connections: 0,
            rounds: 0,
            clean: 0,
            not_judged: 0,
            jitter: None,
            spread_p99_us: None,
            spread_max_us: None,
            ceiling: level.ceiling,
            limited_by: level.limited_by.clone(),
        }
    }

    /// Counts one round at this level.
    fn add(&mut self, level: &Level, outcome: &RunOutcome, connections: usize) {
        let summary = &outcome.results.summary;
        self.rounds += 1;
        match judged(outcome) {
            Some(true) => self.clean += 1,
            Some(false) => {}
            None => self.not_judged += 1,
        }
        self.connections = self.connections.max(connections);
        self.jitter = self.jitter.max(level.jitter);
        for b in &summary.barriers {
            self.spread_p99_us = self.spread_p99_us.max(Some(b.spread_p99_us));
            self.spread_max_us = self.spread_max_us.max(Some(b.spread_max_us));
        }
    }
}

impl LevelStats {
    /// `8 users/group, 16 sends/connection 2.5ms apart` (groups joined with `+`; the gap
    /// only when a raised block has one, whether it came from an `every` or a `think`).
    pub fn shape(&self) -> String {
        let users: Vec<String> = self.users.iter().map(u32::to_string).collect();
        let sends: Vec<String> = self.sends.iter().map(u64::to_string).collect();
        let mut out = format!(
            "{} {}/group, {} {}/connection",
            users.join("+"),
            plural(self.users.iter().map(|&u| u64::from(u)), "user", "users"),
            sends.join("+"),
            plural(self.sends.iter().copied(), "send", "sends"),
        );
        if let Some(gap) = self.send_gap {
            out += &format!(" {gap:?} apart");
        }
        out
    }
}

/// `one` when every count is 1 (`1 user/group`, `1+1 send/connection`), else `many`.
fn plural(
    mut counts: impl Iterator<Item = u64>,
    one: &'static str,
    many: &'static str,
) -> &'static str {
    if counts.all(|n| n == 1) {
        one
    } else {
        many
    }
}

impl std::fmt::Display for LevelStats {
    /// `pressure level 2: 8 users/group, 16 sends/connection 2.5ms apart, 16 connections;
    /// 2/2 rounds clean; jitter up to 2ms; release spread p99 120µs max 310µs (ceiling:
    /// max_users 8 and max_repeat 32)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pressure level {}: {}", self.level, self.shape())?;
        write!(
            f,
            ", {} {}; {}/{} rounds clean",
            self.connections,
            if self.connections == 1 {
                "connection"
            } else {
                "connections"
            },
            self.clean,
            self.rounds
        )?;
        if self.not_judged > 0 {
            write!(f, " ({} not judged: inconclusive)", self.not_judged)?;
        }
        // A level that swept no jitter (one round, or `jitter` unset) says nothing of it.
        if let Some(j) = self.jitter.filter(|j| !j.is_zero()) {
            write!(f, "; jitter up to {j:?}")?;
        }
        match (self.spread_p99_us, self.spread_max_us) {
            (Some(p99), Some(max)) => write!(f, "; release spread p99 {p99}µs max {max}µs")?,
            _ => write!(f, "; no synchronized release")?,
        }
        if self.ceiling {
            write!(f, " (ceiling: {})", self.limited_by)?;
        }
        Ok(())
    }
}

/// The connection attempts of a hunt's rounds (or a battery family's), and how many of
/// them the server shed under load (HTTP 429 or 503, a close 1013, a declared shed code):
/// "not now", which judged nothing, so `--json` says how much of the load went that way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundsShed {
    /// Attempts the server shed, before accepting them or after
    /// ([`crate::model::Counters::shed`], [`crate::model::Counters::shed_after_acceptance`]).
    pub shed: u64,
    /// Attempts made ([`crate::model::Counters::attempted`]).
    pub attempted: u64,
}

impl RoundsShed {
    /// Adds one round's counters.
    pub fn count(&mut self, c: &crate::model::Counters) {
        self.shed += c.shed + c.shed_after_acceptance;
        self.attempted += c.attempted;
    }

    /// What a hunt that found no race says of them: what was shed judged nothing, so a
    /// hunt against a server that shed much of its load covered that much less. `None`
    /// when nothing was shed.
    pub fn note(&self) -> Option<String> {
        (self.shed > 0).then(|| {
            format!(
                "the server shed {} of the rounds' {} attempts under load (HTTP 429 or 503, \
                 Close 1013, a declared shed code): not now, so what was shed judged nothing; \
                 fewer users a round (`[hunt] users`) keep more of them judged",
                self.shed, self.attempted
            )
        })
    }

    /// Adds another hunt's.
    pub fn merge(&mut self, other: RoundsShed) {
        self.shed += other.shed;
        self.attempted += other.attempted;
    }
}

/// How a hunt ended.
#[derive(Debug)]
pub struct HuntOutcome {
    pub rounds: u32,
    /// Rounds that ran to a verdict that could not judge the race (inconclusive): neither
    /// clean nor a finding. When every round was, the hunt is `Short::Unjudged`.
    pub not_judged: u32,
    /// Of those, the rounds the budget or Ctrl-C only cut short before their plan
    /// finished (no violation in what ran): not the target's doing.
    pub cut_short: u32,
    /// Every round judged nothing, whole, for the one reason `short` gives (so "every one
    /// of the N rounds was …" is true of them); false when the reasons differed.
    pub alike_throughout: bool,
    pub elapsed: Duration,
    pub found: Option<Found>,
    /// Why it stopped before `[hunt] rounds` without a find: the budget, Ctrl-C, or a
    /// round that could not judge the target.
    pub short: Option<Short>,
    /// With `[hunt] pressure`: each level reached, in order (the last is the highest).
    pub pressure: Vec<LevelStats>,
    /// Violations the hunt's [`Excuse`] set aside as the server's policy: how many, and
    /// the first, for the report. Zero without an excuse.
    pub excused: u64,
    pub first_excused: Option<Violation>,
    /// Violations the hunt set aside as slowness, not a race (`slow_of`): answers that
    /// came whole after their `within` ran out.
    pub late: u64,
    /// Violations the hunt set aside as not proven lost (`slow_of`): deadlines missed with
    /// no answer seen on a connection a round's own end cut sooner after them than their
    /// `within` ([`Violation::cut_by_run_ms`]).
    pub unproven: u64,
    /// Violations the hunt set aside as a kind misspelled in the script (`misspelled_of`):
    /// expectations of a kind that never came while one spelled close to it did.
    pub misspelled: u64,
    /// Every round's counters added up: what came after the connections' last sends no
    /// `expect` follows ([`Counters::unjudged_senders`](crate::model::Counters::unjudged_senders)),
    /// among the rest.
    pub counters: crate::model::Counters,
    /// Health probes the server shed (HTTP 429 or 503, close 1013, a declared shed code):
    /// how often, and how many it was still shedding when their wait ran out (the round
    /// before each not judged for target health).
    pub health_shed: HealthShed,
    /// The rounds' attempts, and how many the server shed.
    pub shed: RoundsShed,
    /// Bad tokens the rounds' server accepted where refusing them is its policy (lenient
    /// acceptances, not violations), by catalogue entry, over every round.
    pub lenient: BTreeMap<String, u64>,
}

/// A violation a hunt saw, written as a repro, with how its replays went.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub repro: Repro,
    pub rate: Rate,
    /// How far into the hunt the round that saw it ended: the time to the find, before
    /// its confirming replays (which [`HuntOutcome::elapsed`] includes).
    pub seen_after: Duration,
    /// Whether it needs its timing: a confirmed find replayed spaced out
    /// ([`timing::spaced`]) after its confirming replays, within the budget.
    pub timing: timing::Timing,
}

impl Found {
    /// Whether at least one replay reproduced it: only then is it a find. A violation seen
    /// once that no replay reproduced (or that no replay was run for: `--times 0`, the
    /// budget, a broken target without `--reset`) is an unconfirmed suspect; `hunt` and
    /// the battery both say so and exit 4 (inconclusive).
    pub fn confirmed(&self) -> bool {
        self.rate.reproduced > 0
    }
}

/// Session oracles name the race itself; per-message oracles are often its consequences.
const PRIORITY: [OracleKind; 7] = [
    OracleKind::Exclusivity,
    OracleKind::Identity,
    OracleKind::Liveness,
    OracleKind::RejectionHygiene,
    OracleKind::Consistency,
    OracleKind::Completeness,
    OracleKind::Ordering,
];

/// Explores rounds drawn from the scenario's `[hunt]` ranges until a violation or the budget.
/// The budget covers everything: each round's duration is capped by what is left, and the
/// confirmation replays of a find share what remains (the rate says how many fitted).
pub async fn hunt(
    scenario: &Scenario,
    runner: &Runner,
    opts: &HuntOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<HuntOutcome, Error> {
    hunt_excusing(scenario, runner, opts, None, progress).await
}

/// [`hunt`], where the violations `excuse` accepts are the server's policy: counted in
/// [`HuntOutcome::excused`], left out of the rounds' violation counts, never a find, and
/// not counted as reproductions when a find is confirmed.
pub async fn hunt_excusing(
    scenario: &Scenario,
    runner: &Runner,
    opts: &HuntOptions,
    excuse: Option<Excuse>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<HuntOutcome, Error> {
    let mut excused = 0u64;
    let mut first_excused = None;
    let mut late = 0u64;
    let mut unproven = 0u64;
    let mut misspelled = 0u64;
    let mut counters = crate::model::Counters::default();
    let mut lenient: BTreeMap<String, u64> = BTreeMap::new();
    let started = Instant::now();
    let budget_end = started + opts.budget;
    let mut round = 0;
    let mut short = None;
    // Health: the probe must pass before the first round for a later failure to mean
    // anything; a target never seen healthy is judged by the rounds alone, as before.
    // A probe the server was still shedding at the start leaves the target unseen healthy:
    // nothing after can be said to have broken it.
    let probe = probe_plan(scenario, opts.seed);
    let mut health_shed = HealthShed::default();
    let first = runner.probe(&probe, Some(budget_end)).await?;
    if let Some(first) = &first {
        health_shed.count(first);
    }
    let mut healthy = first.filter(|a| a.healthy);
    // Probed after every round once seen healthy, even while a server that went down
    // saying so is unseen healthy again (`healthy` cleared until a probe passes).
    let probing = healthy.is_some();
    // The rounds run since the target was last reset (the hunt's start).
    let mut since_reset: Vec<Plan> = Vec::new();
    // Pressure escalation stops where this machine could no longer hold a round.
    let client_max = scenario.hunt.pressure.as_ref().and_then(|_| {
        // Collide barriers and rendezvous hold a duplicate descriptor per parked
        // connection.
        let synchronized = scenario.groups.iter().any(|g| g.synchronizes());
        run::max_connections(runner.bound.is_reference(), synchronized)
    });
    let mut levels: Vec<LevelStats> = Vec::new();
    // Rounds that could not judge the race, and why.
    let mut not_judged = NotJudged::default();
    // Rounds that judged the target (their verdict stands for it).
    let mut judged_rounds = 0u32;
    // Rounds run at the highest `[hunt] pressure` level, the ceiling.
    let mut ceiling_rounds = 0u32;
    let mut rounds_shed = RoundsShed::default();
    while round < scenario.hunt.rounds {
        if runner.cancel.is_cancelled() {
            short = Some(Short::Interrupted);
            break;
        }
        let seed = if round == 0 {
            opts.seed
        } else {
            round_seed(opts.seed, round)
        };
        let mut drawn = draw(scenario, round, opts.seed);
        let level = pressure(scenario, &drawn, round, client_max);
        if let Some(level) = &level {
            apply_pressure(&mut drawn, level);
        }
        let mut plan = plan::build(&drawn, seed);
        separate(&mut plan, &scenario.hunt, round, opts.seed);
        let Some((outcome, cut)) = runner.once_by(&plan, budget_end).await? else {
            short = Some(Short::Budget);
            break;
        };
        // A round shortened or stopped by the budget proves nothing about the target's
        // own plan; one cut by the scenario's own duration does. A round whose duration
        // the budget capped but that finished within it was not shortened.
        let capped = outcome.plan.duration < scenario.duration
            && outcome.results.summary.stopped == crate::model::StopReason::Duration;
        let cut_by_us = cut || capped;
        rounds_shed.count(&outcome.results.summary.counters);
        for (entry, n) in &outcome.results.summary.lenient.by_entry {
            *lenient.entry(entry.clone()).or_default() += n;
        }
        // What was actually run (its duration capped by the budget) is what a repro keeps.
        plan.duration = outcome.plan.duration;
        // A repro keeps the learned invariants its run checked, so replays check them too.
        plan.oracles.learned = outcome.plan.oracles.learned.clone();
        let set_aside = excused_of(&outcome, excuse);
        excused += set_aside.len() as u64;
        if first_excused.is_none() {
            first_excused = set_aside.first().map(|v| (*v).clone());
        }
        let slow: Vec<&Violation> = slow_of(&outcome)
            .into_iter()
            .filter(|v| !is_among(v, &set_aside))
            .collect();
        let cut = slow.iter().filter(|v| v.late_ms.is_none()).count() as u64;
        late += slow.len() as u64 - cut;
        unproven += cut;
        let typos: Vec<&Violation> = misspelled_of(&outcome)
            .into_iter()
            .filter(|v| !is_among(v, &set_aside) && !is_among(v, &slow))
            .collect();
        misspelled += typos.len() as u64;
        counters.merge(&outcome.results.summary.counters);
        // Violations its verdict excuses (a server that went down under the round) are
        // no findings: the round line says why it was not judged instead.
        let violations = match excused_by_verdict(&outcome).is_some() {
            true => 0,
            false => outcome
                .results
                .summary
                .violations
                .total
                .saturating_sub((set_aside.len() + slow.len() + typos.len()) as u64),
        };
        if let Some(level) = &level {
            if levels.last().is_none_or(|l| l.level != level.level) {
                levels.push(LevelStats::new(level));
            }
            if let Some(stats) = levels.last_mut() {
                stats.add(level, &outcome, plan.conns.len());
            }
        }
        // Decided before the progress line, so that the line says what the round was.
        let mut unjudged =
            Unjudged::of_excusing(&outcome, cut_by_us || runner.cancel.is_cancelled(), excuse);
        // A round the server shed throughout after earlier rounds were judged (a rate
        // limit the probe between rounds used up): "not now" for that round, not a target
        // that cannot be judged; the next round's probe waits the shedding out.
        let shed_only = judged_rounds > 0 && shed_throughout(&outcome);
        if shed_only {
            unjudged = None;
        }
        // Ctrl-C cut the round short as the budget does; its hint says it was interrupted.
        let shortened = cut_by_us || runner.cancel.is_cancelled();
        let round_not_judged = (unjudged.is_none()
            && (shed_only || !judged_whole(&outcome, shortened)))
        .then(|| not_judged_round(&outcome, cut_by_us));
        judged_rounds += u32::from(unjudged.is_none() && round_not_judged.is_none());
        progress(&Progress {
            round,
            connections: outcome.dialled,
            planned: plan.conns.len(),
            violations,
            unjudged: unjudged.clone(),
            not_judged: round_not_judged.clone(),
            interrupted: runner.cancel.is_cancelled(),
            elapsed: started.elapsed(),
            pressure: level.as_ref().and(levels.last().cloned()),
        });
        since_reset.push(plan.clone());
        // Before judging the round: if it left the target broken, that is the finding,
        // not whatever its own connections (or the next round's) then suffered.
        if probing {
            let mut answer = runner.probe(&probe, Some(budget_end)).await?;
            if let Some(first) = answer.as_ref().filter(|a| a.broken()) {
                // Once more before calling the target broken: one probe lost to a busy
                // machine is not a finding.
                health_shed.count(first);
                answer = runner.probe(&probe, Some(budget_end)).await?;
            }
            if let Some(answer) = &answer {
                health_shed.count(answer);
            }
            // A server that said it was going down (a restart, a deploy) was stopped, not
            // broken by the round: the round is not judged, the target is unseen healthy
            // until a probe passes again (a deploy ends), and one still down stops the
            // next round (unusable).
            let went_away = outcome.results.summary.server_went_away;
            match (answer, healthy.clone()) {
                (Some(after), Some(before)) if after.broken() && !went_away => {
                    let seen_after = started.elapsed();
                    let mut found = record_broken(
                        scenario,
                        runner,
                        opts,
                        (Candidate { plan, round, seed }, budget_end),
                        (&probe, before, after),
                        since_reset,
                    )
                    .await?;
                    found.seen_after = seen_after;
                    return Ok(HuntOutcome {
                        rounds: round + 1,
                        not_judged: not_judged.rounds,
                        alike_throughout: false,
                        cut_short: not_judged.only_cut,
                        elapsed: started.elapsed(),
                        found: Some(found),
                        short: None,
                        pressure: levels,
                        excused,
                        first_excused,
                        late,
                        unproven,
                        misspelled,
                        counters: counters.clone(),
                        health_shed,
                        shed: rounds_shed,
                        lenient,
                    });
                }
                (Some(after), _) if after.healthy => healthy = Some(after),
                (Some(after), _) if after.broken() => healthy = None,
                // Still shed when its wait ran out (the server's load shedding, not a
                // broken target), or no answer: this round is not judged for health.
                _ => {}
            }
        }
        if let Some(unjudged) = unjudged {
            return Ok(HuntOutcome {
                rounds: round + 1,
                // This round too: its verdict could not judge the race.
                not_judged: not_judged.rounds + 1,
                alike_throughout: not_judged.all_alike(round, Some(&unjudged)),
                cut_short: not_judged.only_cut,
                elapsed: started.elapsed(),
                found: None,
                short: Some(Short::Unjudged(unjudged)),
                pressure: levels,
                excused,
                first_excused,
                late,
                unproven,
                misspelled,
                counters: counters.clone(),
                health_shed,
                shed: rounds_shed,
                lenient,
            });
        }
        if let Some(why) = round_not_judged {
            // A round fine but for the cut: the budget's doing, not the target's. So is
            // one the budget stopped after the target had accepted connections, though
            // what ran by then judged nothing (forged tokens not yet refused, no answer
            // sent back yet): the cut, not the target, left it unjudged.
            let summary = &outcome.results.summary;
            let only_cut = judged(&outcome) == Some(true)
                || (cut_by_us
                    && summary.verdict == Verdict::Incomplete
                    && summary.counters.accepted > 0);
            not_judged.count(why, cut_by_us, only_cut);
        }
        // A round the budget cut short still counts what it saw: a violation is a fact,
        // unless the round's verdict explains it away ([`judged`]: a restart cut it).
        let broken = (judged(&outcome) == Some(false))
            .then(|| {
                PRIORITY
                    .into_iter()
                    .find(|o| broke_unexcused(&outcome, *o, excuse))
            })
            .flatten();
        if let Some(oracle) = broken {
            let seen_after = started.elapsed();
            let mut found = record(
                scenario,
                runner,
                opts,
                (Candidate { plan, round, seed }, budget_end),
                (oracle, excuse),
                &outcome,
            )
            .await?;
            found.seen_after = seen_after;
            return Ok(HuntOutcome {
                rounds: round + 1,
                not_judged: not_judged.rounds,
                alike_throughout: false,
                cut_short: not_judged.only_cut,
                elapsed: started.elapsed(),
                found: Some(found),
                short: None,
                pressure: levels,
                excused,
                first_excused,
                late,
                unproven,
                misspelled,
                counters: counters.clone(),
                health_shed,
                shed: rounds_shed,
                lenient,
            });
        }
        round += 1;
        if level.as_ref().is_some_and(|l| l.ceiling) {
            ceiling_rounds += 1;
        }
        // Rounds under `[hunt] pressure` grow from level to level: a later one may judge
        // what the first ones could not. Once at the highest level, they differ in seed and
        // timing only, as rounds without pressure do: alike for a whole sweep of its
        // jitter (`rounds_per_level`, or five), they settle the hunt too.
        let needed = match &scenario.hunt.pressure {
            None => Some(ALIKE_ROUNDS),
            Some(p) => {
                let sweep = p.rounds_per_level.max(ALIKE_ROUNDS);
                (ceiling_rounds >= sweep).then_some(sweep)
            }
        };
        if let Some(needed) = needed {
            let left = scenario.hunt.rounds.saturating_sub(round);
            if not_judged.settled(judged_rounds, left, needed) {
                break;
            }
        }
    }
    if runner.cancel.is_cancelled() {
        short = Some(Short::Interrupted);
    }
    // Not one round exercised the race: that is no clean hunt.
    // When every round was only cut by the budget, the budget ran out: a battery's family
    // says so, and `hunt` calls the whole incomplete.
    if round > 0 && not_judged.rounds == round {
        let only_cut = not_judged.only_cut == not_judged.rounds;
        if let Some(why) = not_judged.reason() {
            match short {
                // The budget stopped every round, whether it also ended the loop or the
                // loop ended on its own just after: the budget ran out.
                None | Some(Short::Budget) if only_cut => short = Some(Short::Budget),
                None | Some(Short::Budget) => short = Some(Short::Unjudged(why)),
                _ => {}
            }
        }
    }
    Ok(HuntOutcome {
        rounds: round,
        not_judged: not_judged.rounds,
        alike_throughout: not_judged.all_alike(round, None),
        cut_short: not_judged.only_cut,
        elapsed: started.elapsed(),
        found: None,
        short,
        pressure: levels,
        excused,
        first_excused,
        late,
        unproven,
        misspelled,
        counters: counters.clone(),
        health_shed,
        shed: rounds_shed,
        lenient,
    })
}

/// The plan of one round, with what produced it.
struct Candidate {
    plan: Plan,
    round: u32,
    seed: u64,
}

/// Measures a find's rate within what is left of the budget and writes its repro file.
async fn record(
    scenario: &Scenario,
    runner: &Runner,
    opts: &HuntOptions,
    (found, budget_end): (Candidate, Instant),
    (oracle, excuse): (OracleKind, Option<Excuse>),
    outcome: &RunOutcome,
) -> Result<Found, Error> {
    let Candidate { plan, round, seed } = found;
    // A replay reproduces the find only with a violation the excuse does not cover.
    let wanted = |v: &Violation| excuse.is_none_or(|excuse| !excuse.excuses(v));
    let evidence = first_of(outcome, oracle, &wanted);
    let measured = runner
        .measure_where(
            &plan,
            oracle,
            opts.confirm,
            None,
            Some(budget_end),
            (&wanted, excuse),
        )
        .await;
    let rate = match measured {
        Ok(measured) => measured.rate,
        // A reset that fails before the first replay would lose what the round saw: its
        // repro is written first, unmeasured, and the error names it.
        Err(HuntError::Reset(source)) => {
            let unmeasured = Rate {
                reproduced: 0,
                runs: 0,
                planned: opts.confirm,
                short: None,
                shed: 0,
            };
            let found = Candidate { plan, round, seed };
            let reproduces = (oracle, evidence, None, excuse);
            let saved = save_found(scenario, runner, opts, found, reproduces, unmeasured)?;
            return Err(HuntError::ResetAfterFind {
                path: saved.path,
                round,
                oracle,
                source,
            });
        }
        Err(other) => return Err(other),
    };
    let timing = match rate.reproduced {
        0 => timing::Timing::Unchecked,
        _ => {
            timing_of(
                runner,
                &plan,
                (oracle, &evidence, excuse),
                (&rate, budget_end),
            )
            .await
        }
    };
    let found = Candidate { plan, round, seed };
    let mut found = save_found(
        scenario,
        runner,
        opts,
        found,
        (oracle, evidence, None, excuse),
        rate,
    )?;
    found.timing = timing;
    Ok(found)
}

/// The timing check of a confirmed find of `oracle` (its `evidence`, its confirming
/// `rate`) made by `plan`: the plan spaced out ([`timing::spaced`]) replayed, within the
/// budget, as many times as [`timing::runs_to_tell`] says its rate needs. The first replay
/// that breaks the expectation the evidence leads with (its oracle and `expected`, however
/// it broke: another ending, one connection after the other) settles it as not needing its
/// timing; all of them clean of it (and of any expectation the find's round did not also
/// break), as needing it. One that broke something else, or could not judge the target,
/// a reset or run that failed, the budget or Ctrl-C leave it unchecked: the find itself
/// stands.
async fn timing_of(
    runner: &Runner,
    plan: &Plan,
    (oracle, evidence, excuse): (OracleKind, &[Violation], Option<Excuse>),
    (rate, budget_end): (&Rate, Instant),
) -> timing::Timing {
    use timing::Timing;
    let (Some(spaced), Some(first), Some(runs)) = (
        timing::spaced(plan),
        evidence.first(),
        timing::runs_to_tell(rate.reproduced, rate.runs),
    ) else {
        return Timing::Unchecked;
    };
    let expected = Signature::of(first, plan).expected;
    // What the find's own round broke, read once (a spaced replay may keep many
    // violations).
    let seen_in_round: Vec<String> = evidence
        .iter()
        .map(|e| Signature::of(e, plan).expected)
        .collect();
    let same = |v: &Violation| {
        excuse.is_none_or(|e| !e.excuses(v)) && Signature::of(v, &spaced).expected == expected
    };
    for _ in 0..runs {
        if runner.cancel.is_cancelled() || runner.reset_by(Some(budget_end)).await.is_err() {
            return Timing::Unchecked;
        }
        let Ok(Some((outcome, false))) = runner.once_by(&spaced, budget_end).await else {
            return Timing::Unchecked;
        };
        if runner.cancel.is_cancelled() || Unjudged::of_excusing(&outcome, true, excuse).is_some() {
            return Timing::Unchecked;
        }
        if !first_of(&outcome, oracle, &same).is_empty() {
            return Timing::NotNeeded {
                every_time: rate.reproduced == rate.runs,
            };
        }
        // Another expectation broke, one the find's own round did not (those it did, a
        // liveness probe right after the run's end meeting the same lagging cleanup, are
        // not spaced out): it says nothing of this find's timing.
        if outcome
            .results
            .violations
            .iter()
            .any(|v| !seen_in_round.contains(&Signature::of(v, &spaced).expected))
        {
            return Timing::Unchecked;
        }
    }
    Timing::Needed { runs }
}

/// What a repro reproduces: the oracle, its evidence, for a broken target the health
/// finding, and the policy rule the hunt judged by.
type Reproduces = (
    OracleKind,
    Vec<Violation>,
    Option<HealthFinding>,
    Option<Excuse>,
);

/// Writes the repro of `found` (what it reproduces) with its confirmation `rate`.
fn save_found(
    scenario: &Scenario,
    runner: &Runner,
    opts: &HuntOptions,
    found: Candidate,
    (oracle, evidence, health, policy): Reproduces,
    rate: Rate,
) -> Result<Found, Error> {
    let Candidate { plan, round, seed } = found;
    let repro = Repro {
        round,
        reference: ReferenceServer::of(&runner.target),
        evidence,
        // No replay fitted in the budget: no rate measured, rather than 0/0.
        rate: (rate.runs > 0).then_some((rate.reproduced, rate.runs)),
        health,
        policy,
        ..Repro::for_plan(scenario, seed, plan, runner.url().to_string(), oracle)
    };
    let path = repro.save(&opts.out.join(&scenario.name))?;
    Ok(Found {
        path,
        repro,
        rate,
        seen_after: Duration::ZERO,
        timing: timing::Timing::Unchecked,
    })
}

/// Records a broken-target finding: round `found.round` left the target failing the
/// health probe it passed before. The repro's plan is that round's; the rounds before
/// it since the hunt's start ride along (damage can accumulate). Confirmation replays
/// (reset, the rounds, the probe) need a reset; without one the rate stays unmeasured.
async fn record_broken(
    scenario: &Scenario,
    runner: &Runner,
    opts: &HuntOptions,
    (found, budget_end): (Candidate, Instant),
    (probe, before, after): (&Plan, ProbeAnswer, ProbeAnswer),
    mut since_reset: Vec<Plan>,
) -> Result<Found, Error> {
    let Candidate { plan, round, seed } = found;
    since_reset.pop();
    let mut health = HealthFinding {
        broken_by_round: round,
        probe: probe.clone(),
        before,
        after,
        earlier: since_reset,
    };
    let evidence = vec![health_violation(
        probe,
        &health.before,
        &health.after,
        Some(round),
    )];
    let mut rate = Rate {
        reproduced: 0,
        runs: 0,
        planned: opts.confirm,
        short: None,
        shed: 0,
    };
    if runner.reset.possible() {
        // The breaking round alone first: when it suffices, the repro is that small.
        let alone = runner
            .measure_health(
                std::slice::from_ref(&plan),
                probe,
                opts.confirm,
                None,
                Some(budget_end),
            )
            .await?
            .rate;
        if alone.reproduced > 0 || health.earlier.is_empty() {
            health.earlier.clear();
            rate = alone;
        } else {
            rate = runner
                .measure_health(
                    &health.plans(&plan),
                    probe,
                    opts.confirm,
                    None,
                    Some(budget_end),
                )
                .await?
                .rate;
        }
    }
    let found = Candidate { plan, round, seed };
    let what = (OracleKind::TargetHealth, evidence, Some(health), None);
    save_found(scenario, runner, opts, found, what, rate)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The rounds' shed attempts count those shed after acceptance too (a Close 1013 in
    /// the middle of a script), and a hunt that found nothing says how many were shed.
    #[test]
    fn attempts_shed_before_and_after_acceptance_are_said() {
        let mut shed = RoundsShed::default();
        assert_eq!(shed.note(), None);
        let c = crate::model::Counters {
            attempted: 40,
            shed: 3,
            shed_after_acceptance: 5,
            ..Default::default()
        };
        shed.count(&c);
        shed.count(&crate::model::Counters {
            attempted: 10,
            ..Default::default()
        });
        assert_eq!((shed.shed, shed.attempted), (8, 50));
        let note = shed.note().unwrap_or_default();
        assert!(
            note.starts_with("the server shed 8 of the rounds' 50 attempts under load"),
            "{note}"
        );
    }

    /// A find's replays in words: a rate when some ran, and when none did, why, never
    /// `0/0` (a battery's suspect read "reproduced 0/0 (budget ran out before 10)").
    #[test]
    fn replays_none_of_which_ran_are_not_a_rate() {
        let rate = |reproduced, runs, short| Rate {
            reproduced,
            runs,
            planned: 10,
            short,
            shed: 0,
        };
        assert_eq!(
            rate(0, 0, Some(Short::Budget)).replayed_words(),
            "not replayed (budget ran out before 10)"
        );
        assert_eq!(
            rate(0, 0, None).replayed_words(),
            "not replayed (--times 0)"
        );
        assert_eq!(
            rate(1, 4, Some(Short::Budget)).replayed_words(),
            "reproduced 1/4 (budget ran out before 10) on replay"
        );
    }

    /// A round's outcome: its summary's verdict and hint, `sent` messages sent and none
    /// received, nothing expected.
    pub(crate) fn round(verdict: Verdict, hint: &str, sent: u64) -> RunOutcome {
        let text = "name = \"r\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{ close = 1000 }]\n";
        let scenario = crate::scenario::load_str(text, "r.toml").unwrap();
        let mut summary = crate::results::fixture::summary();
        summary.verdict = verdict;
        summary.hint = Some(hint.into());
        summary.violations = Default::default();
        summary.counters.messages_sent = sent;
        summary.counters.messages_received = 0;
        summary.counters.expect = Default::default();
        RunOutcome {
            results: crate::results::Results {
                summary,
                histograms: Default::default(),
                violations: Vec::new(),
                intervals: Default::default(),
            },
            plan: Arc::new(plan::build(&scenario, 1)),
            dialled: 1,
            dir: None,
            unsaved: None,
        }
    }

    /// A round in which no connection got in judged nothing, unless none was meant to:
    /// forged tokens only, each refused, judged the server's rejection of them.
    #[test]
    fn a_hunt_names_the_late_answers_it_set_aside() {
        assert_eq!(late_note(0), None);
        let one = late_note(1).unwrap_or_default();
        assert!(
            one.starts_with("set aside 1 answer that came whole after")
                && one.contains("slowness, not a race"),
            "{one}"
        );
        let many = late_note(60).unwrap_or_default();
        assert!(many.starts_with("set aside 60 answers that"), "{many}");
    }

    #[test]
    fn a_hunt_names_the_misspelled_expectations_it_set_aside() {
        assert_eq!(misspelled_note(0), None);
        let one = misspelled_note(1).unwrap_or_default();
        assert!(
            one.starts_with("set aside 1 unmet expectation of a kind the script seems to misspell")
                && one.contains("not a race"),
            "{one}"
        );
        let many = misspelled_note(3).unwrap_or_default();
        assert!(many.starts_with("set aside 3 unmet expectations"), "{many}");
    }

    #[test]
    fn a_round_of_forged_tokens_all_refused_is_judged() {
        let forged = |text: &str| {
            let scenario = crate::scenario::load_str(text, "f.toml").unwrap();
            let mut outcome = round(Verdict::Clean, "", 0);
            outcome.plan = Arc::new(plan::build(&scenario, 1));
            outcome.results.summary.counters.accepted = 0;
            outcome.results.summary.counters.rejected = 2;
            outcome
        };
        let all_forged = forged(
            "name = \"f\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 2\nforge = \"wrong-signature\"\nsteps = [{ close = 1000 }]\n",
        );
        assert_eq!(judged(&all_forged), Some(true));
        let valid = forged(
            "name = \"f\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 2\nsteps = [{ close = 1000 }]\n",
        );
        assert_eq!(
            judged(&valid),
            None,
            "valid tokens all refused judged nothing"
        );
    }

    /// A hunt whose every round judged nothing gives the reason those rounds gave (the
    /// server sent nothing back), not the budget's that shortened its last round; only
    /// when the budget shortened every round is the budget the reason.
    #[test]
    fn rounds_that_judged_nothing_give_their_own_reason_not_the_budgets() {
        let silent = round(
            Verdict::Clean,
            "the server sent nothing back (8 messages sent, 0 received) and no step expects an answer",
            8,
        );
        let stopped = round(
            Verdict::Incomplete,
            "interrupted before the plan finished: partial results",
            4,
        );
        let mut rounds = NotJudged::default();
        rounds.count(not_judged_round(&silent, false), false, false);
        rounds.count(not_judged_round(&silent, false), false, false);
        rounds.count(not_judged_round(&stopped, true), true, true);
        assert_eq!((rounds.rounds, rounds.only_cut), (3, 1));
        let why = rounds.reason().unwrap();
        assert_eq!(why.verdict, Verdict::Incomplete);
        assert!(
            why.hint.starts_with("the server sent nothing back"),
            "{}",
            why.hint
        );
        // A round the budget shortened in which the server still said nothing says so.
        let shortened = not_judged_round(&silent, true);
        assert!(
            shortened.hint.starts_with("the server sent nothing back"),
            "{}",
            shortened.hint
        );
        let mut all_cut = NotJudged::default();
        all_cut.count(not_judged_round(&stopped, true), true, true);
        let why = all_cut.reason().unwrap();
        assert!(
            why.hint.starts_with("the hunt's budget ran out"),
            "{}",
            why.hint
        );
    }

    /// A hunt stops on rounds alike only when that many whole rounds in a row judged
    /// nothing for one reason (figures aside) and none judged anything.
    #[test]
    fn every_round_is_named_alike_only_when_each_gave_the_one_reason() {
        let silent = Unjudged {
            verdict: Verdict::Inconclusive,
            hint: "the server sent nothing back (4 messages sent, 0 received)".into(),
        };
        let unusable = Unjudged {
            verdict: Verdict::TargetUnusable,
            hint: "no connection was accepted".into(),
        };
        let mut rounds = NotJudged::default();
        rounds.count(silent.clone(), false, false);
        rounds.count(silent.clone(), false, false);
        assert!(rounds.all_alike(2, None));
        assert!(rounds.all_alike(2, Some(&silent)));
        // A round that stops the hunt for another reason after them.
        assert!(!rounds.all_alike(2, Some(&unusable)));
        // A shortened round among them.
        rounds.count(silent.clone(), true, false);
        assert!(!rounds.all_alike(3, None));
        // A first round that stops the hunt is alike with itself.
        assert!(NotJudged::default().all_alike(0, Some(&unusable)));
        // Rounds judged before: not every one.
        let mut one = NotJudged::default();
        one.count(silent.clone(), false, false);
        assert!(!one.all_alike(2, None));
    }

    #[test]
    fn rounds_alike_settle_a_hunt_only_in_a_row_and_with_nothing_judged() {
        let why = |verdict, hint: &str| Unjudged {
            verdict,
            hint: hint.into(),
        };
        let silent = |sent: u32| {
            why(
                Verdict::Inconclusive,
                &format!("the server sent nothing back ({sent} messages sent, 0 received)"),
            )
        };
        let mut rounds = NotJudged::default();
        for sent in 1..ALIKE_ROUNDS {
            rounds.count(silent(sent * 7), false, false);
        }
        assert!(!rounds.settled(0, 10, ALIKE_ROUNDS), "one round short");
        // Another reason, then a shortened round, each start the count over.
        rounds.count(
            why(Verdict::Inconclusive, "shedding ate the coverage"),
            false,
            false,
        );
        assert_eq!(rounds.alike, 1);
        rounds.count(silent(3), true, true);
        assert_eq!(rounds.alike, 0);
        for sent in 0..ALIKE_ROUNDS {
            rounds.count(silent(sent), false, false);
        }
        // The same words with another verdict are another reason.
        let mut other = NotJudged::default();
        other.count(
            why(
                Verdict::Incomplete,
                "the server sent nothing back (1 messages sent, 0 received)",
            ),
            false,
            false,
        );
        other.count(silent(1), false, false);
        assert_eq!(other.alike, 1);
        assert!(
            !rounds.settled(1, 10, ALIKE_ROUNDS),
            "a round judged something"
        );
        assert!(!rounds.settled(0, 0, ALIKE_ROUNDS), "no round left to skip");
        // A sweep longer than five (`rounds_per_level` at the pressure ceiling) needs as
        // many alike.
        assert!(!rounds.settled(0, 10, ALIKE_ROUNDS + 1), "a sweep of six");
        assert!(rounds.settled(0, 10, ALIKE_ROUNDS));
        let hint = rounds.reason().unwrap().hint;
        assert!(
            hint.starts_with("the server sent nothing back (4 messages"),
            "{hint}"
        );
        assert!(
            hint.contains(&format!("stopped after {ALIKE_ROUNDS} rounds")),
            "{hint}"
        );
    }
}
