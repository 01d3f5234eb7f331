//! Race hunting: seeded exploration round after round, repro files, replay on demand and
//! shrinking to the few connections a race needs.

mod repro;
mod shrink;
mod space;

pub use repro::{fresh_keys, ReferenceServer, Repro, ReproError, OLDEST_READ, REPRO_VERSION};
pub use shrink::{shrink, ShrinkOptions, ShrinkOutcome};
pub use space::{draw, round_seed, separate};

use crate::auth::Keys;
use crate::metrics::Live;
use crate::model::{OracleKind, Plan, Scenario, Verdict, Violation};
use crate::plan;
use crate::run::{self, Bound, RunError, RunOptions, RunOutcome, Target};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Why a hunt, replay or shrink could not go on.
#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Repro(#[from] ReproError),
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
        Ok(Runner {
            target: target.clone(),
            bound,
            opts,
            cancel,
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
        let opts = RunOptions {
            out: None,
            ..self.opts.clone()
        };
        let plan = Arc::new(fresh_keys(plan));
        let live = Arc::new(Live::default());
        Ok(run::execute(plan, &self.bound, live, &opts, self.cancel.child_token()).await?)
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
            let outcome = self.once(plan).await?;
            if broke(&outcome, oracle) {
                return Ok(outcome
                    .results
                    .violations
                    .into_iter()
                    .filter(|v| v.oracle == oracle)
                    .take(10)
                    .collect());
            }
        }
        Ok(Vec::new())
    }

    /// Runs `plan` up to `times` times and counts runs that broke `oracle`. With `need`,
    /// stops as soon as the answer is known (reached, or out of reach).
    pub async fn rate(
        &self,
        plan: &Plan,
        oracle: OracleKind,
        times: u32,
        need: Option<u32>,
    ) -> Result<Rate, Error> {
        let mut rate = Rate {
            reproduced: 0,
            runs: 0,
            unjudged: None,
        };
        for i in 0..times {
            if self.cancel.is_cancelled() {
                break;
            }
            if let Some(need) = need {
                if rate.reproduced >= need || rate.reproduced + (times - i) < need {
                    break;
                }
            }
            let outcome = self.once(plan).await?;
            rate.runs += 1;
            let summary = &outcome.results.summary;
            // A target that stopped being usable answers nothing about the race: stop and
            // say so rather than count a "not reproduced".
            if !summary.verdict.exercised() {
                rate.unjudged = Some(Unjudged {
                    verdict: summary.verdict,
                    hint: summary.hint.clone().unwrap_or_default(),
                });
                break;
            }
            if broke(&outcome, oracle) {
                rate.reproduced += 1;
            }
        }
        Ok(rate)
    }
}

/// How often a plan reproduced a violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    pub reproduced: u32,
    pub runs: u32,
    /// Set when a run could not judge the target (unusable, misconfigured): the count
    /// stopped there.
    pub unjudged: Option<Unjudged>,
}

/// Why a hunt, replay or shrink could not judge the target, with its hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unjudged {
    pub verdict: Verdict,
    pub hint: String,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.reproduced, self.runs)
    }
}

/// Whether a run broke `oracle`.
pub fn broke(outcome: &RunOutcome, oracle: OracleKind) -> bool {
    outcome.broke(oracle)
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
    pub connections: usize,
    pub violations: u64,
    pub elapsed: Duration,
}

/// How a hunt ended.
#[derive(Debug)]
pub struct HuntOutcome {
    pub rounds: u32,
    pub elapsed: Duration,
    pub found: Option<Found>,
    /// The hunt stopped because a round could not judge the target (unusable,
    /// misconfigured, client-limited) or did not finish its plan: never a repro.
    pub stopped: Option<Unjudged>,
}

#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub repro: Repro,
    pub rate: Rate,
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
pub async fn hunt(
    scenario: &Scenario,
    runner: &Runner,
    opts: &HuntOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<HuntOutcome, Error> {
    let started = Instant::now();
    let mut round = 0;
    while round < scenario.hunt.rounds
        && started.elapsed() < opts.budget
        && !runner.cancel.is_cancelled()
    {
        let seed = if round == 0 {
            opts.seed
        } else {
            round_seed(opts.seed, round)
        };
        let mut plan = plan::build(&draw(scenario, round, opts.seed), seed);
        separate(&mut plan, &scenario.hunt, round, opts.seed);
        plan.duration = plan.duration.min(
            opts.budget
                .saturating_sub(started.elapsed())
                .max(Duration::from_secs(1)),
        );
        // A round cut short only because the budget capped its duration is no finding.
        let capped = plan.duration < scenario.duration;
        let outcome = runner.once(&plan).await?;
        let summary = &outcome.results.summary;
        let violations = summary.violations.total;
        progress(&Progress {
            round,
            connections: plan.conns.len(),
            violations,
            elapsed: started.elapsed(),
        });
        if let Some(stopped) = unjudged(summary, capped || runner.cancel.is_cancelled()) {
            return Ok(HuntOutcome {
                rounds: round + 1,
                elapsed: started.elapsed(),
                found: None,
                stopped: Some(stopped),
            });
        }
        if let Some(oracle) = PRIORITY.into_iter().find(|o| broke(&outcome, *o)) {
            let found = record(
                scenario,
                runner,
                opts,
                Candidate { plan, round, seed },
                oracle,
                &outcome,
            )
            .await?;
            return Ok(HuntOutcome {
                rounds: round + 1,
                elapsed: started.elapsed(),
                found: Some(found),
                stopped: None,
            });
        }
        round += 1;
    }
    Ok(HuntOutcome {
        rounds: round,
        elapsed: started.elapsed(),
        found: None,
        stopped: None,
    })
}

/// A round that cannot be a repro and ends the hunt: the target unusable or misconfigured,
/// or a plan cut by its own duration (not by the budget, not by Ctrl-C) before it finished.
fn unjudged(summary: &crate::results::Summary, cut_by_us: bool) -> Option<Unjudged> {
    let cut = summary.verdict == Verdict::Incomplete && !cut_by_us;
    (!summary.verdict.exercised() || cut).then(|| Unjudged {
        verdict: summary.verdict,
        hint: summary.hint.clone().unwrap_or_default(),
    })
}

/// The plan of one round, with what produced it.
struct Candidate {
    plan: Plan,
    round: u32,
    seed: u64,
}

/// Measures a find's rate and writes its repro file.
async fn record(
    scenario: &Scenario,
    runner: &Runner,
    opts: &HuntOptions,
    found: Candidate,
    oracle: OracleKind,
    outcome: &RunOutcome,
) -> Result<Found, Error> {
    let Candidate { plan, round, seed } = found;
    let evidence = outcome
        .results
        .violations
        .iter()
        .filter(|v| v.oracle == oracle)
        .take(10)
        .cloned()
        .collect();
    let rate = runner.rate(&plan, oracle, opts.confirm, None).await?;
    let repro = Repro {
        version: REPRO_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: scenario.name.clone(),
        scenario_hash: scenario.hash.clone(),
        seed,
        round,
        target: runner.url().to_string(),
        reference: ReferenceServer::of(&runner.target),
        oracle,
        evidence,
        rate: Some((rate.reproduced, rate.runs)),
        plan,
    };
    let path = repro.save(&opts.out.join(&scenario.name))?;
    Ok(Found { path, repro, rate })
}
