//! The race battery: every family of a `[battery]` file in turn, each a hunt per pressure
//! level, against one target.
//!
//! The `--budget` is split as the battery goes: each family may use what is left divided
//! by the families still to run, so time a clean family does not use flows on. A family
//! walks its levels lowest pressure first, asking [`Hooks`] before each whether the
//! target is still healthy and after each clean one which level comes next, and stops at
//! its first find (confirmed and written as a repro, like `hunt`). A target found broken
//! between levels ends the battery: nothing run against it afterwards could be judged.

use super::{
    hunt_excusing, Excuse, Found, HealthShed, HuntError, HuntOptions, Progress, RoundsShed, Runner,
    Shed, Short, MIN_RUN,
};
use crate::model::{OracleKind, Plan, Verdict, Violation};
use crate::plan;
use crate::scenario::{Battery, Family, Level, ScenarioError};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::Instant;

/// Why a battery could not go on.
#[derive(Debug, thiserror::Error)]
pub enum BatteryError {
    #[error(transparent)]
    Hunt(#[from] HuntError),
    /// A family's generated scenario did not load (a request template the loader refuses).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// What a health probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// The probe's exchange failed: why, in words, and whether its connection was
    /// accepted first (the target takes the battery's tokens; what failed came after).
    Broken {
        why: String,
        accepted: bool,
    },
    /// The server was still shedding the probe (HTTP 429 or 503, close 1013, a declared
    /// shed code) when its wait ran out: load shedding, neither healthy nor broken.
    Shedding(Shed),
    /// Not enough budget left to probe.
    Unknown,
}

/// What the battery's health probes have shown of the target so far.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    /// A probe passed: a target never seen healthy cannot have been left broken by
    /// anything the battery did.
    healthy: bool,
    /// A probe's connection was accepted: the target takes the battery's tokens, so a
    /// request it refuses with a close is its policy, not a token it never read.
    accepted: bool,
}

/// A boxed future of a hook (hooks are called through a trait object).
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, HuntError>> + Send + 'a>>;

/// What a family asks of the battery around it. The defaults ([`ProbeHooks`]) probe with
/// the battery's one-connection exchange and walk the family's declared levels.
// Each level runs through `hunt`, which also probes the target between its rounds (a
// target a round left broken is a `target_health` finding whose repro keeps the rounds
// since the last healthy probe) and resets it (`--reset`, or a restart of the built-in
// server) before each confirmation; these hooks add the probe between levels.
pub trait Hooks: Sync {
    /// Whether the target still answers a fresh valid connection, by `budget_end`.
    fn probe_health<'a>(
        &'a self,
        runner: &'a Runner,
        budget_end: Instant,
    ) -> HookFuture<'a, Health>;

    /// After level `clean` of `levels` ran clean: the index of the next level, or `None`
    /// to end the family.
    fn escalate(&self, family: Family, clean: usize, levels: &[Level]) -> Option<usize> {
        let _ = family;
        (clean + 1 < levels.len()).then_some(clean + 1)
    }
}

/// The default hooks: the probe plan is one fresh valid connection doing the first
/// exchange ([`Battery::probe`]).
#[derive(Debug, Clone)]
pub struct ProbeHooks {
    pub probe: Plan,
}

impl ProbeHooks {
    /// Hooks probing with `battery`'s probe scenario under `seed`. The probe asks one
    /// thing, whether a fresh connection is served, so it has no probe phase of its own
    /// (liveness off): reconnecting its token right after its close would test a race
    /// (`reconnect`'s), not health.
    pub fn new(battery: &Battery, seed: u64) -> Self {
        let mut probe = battery.probe.clone();
        probe.oracles.session.liveness = None;
        ProbeHooks {
            probe: plan::build(&probe, seed),
        }
    }
}

impl Hooks for ProbeHooks {
    fn probe_health<'a>(
        &'a self,
        runner: &'a Runner,
        budget_end: Instant,
    ) -> HookFuture<'a, Health> {
        Box::pin(async move {
            // A probe the server sheds is waited out as it asks, as `hunt`'s is.
            let Some(run) = runner.probe_run(&self.probe, Some(budget_end)).await? else {
                return Ok(Health::Unknown);
            };
            if let Some(shed) = run.shed.filter(|s| s.unresolved) {
                return Ok(Health::Shedding(shed));
            }
            let outcome = run.outcome;
            let summary = &outcome.results.summary;
            if summary.violations.total == 0 && summary.verdict.exercised() {
                return Ok(Health::Healthy);
            }
            let first = outcome.results.violations.first().map_or_else(
                || format!("verdict {}", summary.verdict),
                |v| {
                    format!(
                        "{}: expected {}; seen {}",
                        v.oracle.name(),
                        v.expected,
                        v.seen
                    )
                },
            );
            Ok(Health::Broken {
                why: first,
                accepted: summary.counters.accepted > 0,
            })
        })
    }
}

/// The plan the battery's runner calibrates on (learned invariants): the probe's first
/// exchange, done by [`crate::run::learn::USERS`] different users one at a time. With a
/// single user calibration cannot tell a field carrying the token's subject (identity)
/// from a constant, and the identity families would need `[battery] identity`.
pub fn calibration_plan(battery: &Battery, seed: u64) -> Plan {
    let mut calibration = battery.probe.clone();
    for g in &mut calibration.groups {
        g.users = g.users.max(crate::run::learn::USERS as u32);
    }
    plan::build(&calibration, seed)
}

/// What to run and for how long.
#[derive(Debug, Clone)]
pub struct BatteryOptions {
    /// Wall-clock budget for every family together, confirmations included.
    pub budget: Duration,
    pub seed: u64,
    /// Where repro files go (`<out>/<battery name>-<family>/`).
    pub out: PathBuf,
    /// Replays measuring a find's reproduction rate.
    pub confirm: u32,
}

/// What the battery reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A family starts: its levels.
    Family {
        family: Family,
        levels: &'a [Level],
        budget: Duration,
    },
    /// A level starts (0-based index).
    Level {
        family: Family,
        index: usize,
        level: &'a Level,
    },
    /// A round of the current level ended.
    Round(&'a Progress),
    /// A family ended.
    Done(&'a FamilyReport),
}

/// One level as it ran.
#[derive(Debug, Clone)]
pub struct LevelReport {
    pub label: String,
    pub rounds: u32,
    /// Of those, the rounds that judged the race whole (not cut short, not unable to
    /// exercise it).
    pub judged: u32,
    /// The most connections one of its rounds opened.
    pub max_connections: usize,
}

/// How a family ended.
#[derive(Debug)]
pub enum FamilyEnd {
    /// Every level ran clean.
    Clean,
    /// A violation, confirmed (reproduced by at least one replay) and written as a repro.
    Found(Box<Found>),
    /// A violation seen once that no replay reproduced, or that the budget left no replay
    /// for: written as a repro, reported as a suspect, never as a find.
    Suspect(Box<Found>),
    /// The health probe failed before the level named (index): an earlier level (or
    /// family) left the target broken.
    Broken { before_level: usize, why: String },
    /// The battery lacks what the family needs (a reply pattern).
    Skipped,
    /// Stopped early: the budget, Ctrl-C, or a round that could not judge the target.
    Short(Short),
}

/// One family's result.
#[derive(Debug)]
pub struct FamilyReport {
    pub family: Family,
    pub levels: Vec<LevelReport>,
    pub end: FamilyEnd,
    pub elapsed: Duration,
    /// What the family learned of the target's policy and set aside rather than judged,
    /// one line each (`refuses a request sent before its ack: close 4401 (12 of 12)`).
    pub policy: Vec<String>,
    /// Other things worth saying about how the family ran (a health probe that never
    /// passed, so the rounds judged the target alone).
    pub notes: Vec<String>,
    /// Its rounds' attempts, and how many the server shed under load.
    pub shed: RoundsShed,
}

impl FamilyReport {
    /// Whether the budget ended the family before any of its rounds judged the race
    /// whole: it ran nothing, or only rounds the budget cut short. Not a clean family.
    pub fn budget_left_unjudged(&self) -> bool {
        matches!(self.end, FamilyEnd::Short(Short::Budget))
            && self.levels.iter().all(|l| l.judged == 0)
    }

    /// The highest pressure reached: the most connections one round opened.
    pub fn pressure(&self) -> usize {
        self.levels
            .iter()
            .map(|l| l.max_connections)
            .max()
            .unwrap_or(0)
    }
}

/// The whole battery's result.
#[derive(Debug)]
pub struct BatteryOutcome {
    /// The families that ran, in order (fewer than planned when the battery stopped).
    pub families: Vec<FamilyReport>,
    /// Every family the battery was to run, in order.
    pub planned: Vec<Family>,
    pub elapsed: Duration,
}

impl BatteryOutcome {
    /// The families that found something.
    pub fn found(&self) -> impl Iterator<Item = (&FamilyReport, &Found)> {
        self.families.iter().filter_map(|f| match &f.end {
            FamilyEnd::Found(found) => Some((f, found.as_ref())),
            _ => None,
        })
    }

    /// The families that ended with an unconfirmed suspect.
    pub fn suspects(&self) -> impl Iterator<Item = (&FamilyReport, &Found)> {
        self.families.iter().filter_map(|f| match &f.end {
            FamilyEnd::Suspect(found) => Some((f, found.as_ref())),
            _ => None,
        })
    }

    /// The planned families that never ran (the battery stopped before them).
    pub fn not_run(&self) -> Vec<Family> {
        self.planned
            .iter()
            .copied()
            .filter(|p| !self.families.iter().any(|f| f.family == *p))
            .collect()
    }

    /// Whether a family found the target broken.
    pub fn broken(&self) -> bool {
        self.families
            .iter()
            .any(|f| matches!(f.end, FamilyEnd::Broken { .. }))
    }
}

/// Runs the battery's families in turn against `runner` (one target for all: a real
/// target's state carries over too), within `opts.budget`.
pub async fn run(
    battery: &Battery,
    runner: &Runner,
    opts: &BatteryOptions,
    hooks: &dyn Hooks,
    report: &mut dyn FnMut(&Event<'_>),
) -> Result<BatteryOutcome, BatteryError> {
    let started = Instant::now();
    let budget_end = started + opts.budget;
    let mut families = Vec::new();
    let mut seen = Seen::default();
    for (i, family) in battery.families.iter().copied().enumerate() {
        let left = budget_end.saturating_duration_since(Instant::now());
        let remaining = u32::try_from(battery.families.len() - i).unwrap_or(1);
        let share = left / remaining.max(1);
        let mut levels = battery.levels(family)?;
        let mut policy = Vec::new();
        if family == Family::SameToken && !levels.is_empty() && !runner.cancel.is_cancelled() {
            let end = Instant::now() + share;
            match calibrate_sessions(battery, runner, opts.seed, end).await? {
                Some(Sessions::Concurrent(note)) => {
                    for level in &mut levels {
                        level.scenario.oracles.session.max_live = None;
                    }
                    policy.push(note);
                }
                Some(Sessions::Takeover(codes, note)) => {
                    for level in &mut levels {
                        let replaced = &mut level.scenario.oracles.session.reject.replaced;
                        replaced.extend(codes.iter().copied());
                        replaced.sort_unstable();
                        replaced.dedup();
                    }
                    policy.push(note);
                }
                None => {}
            }
        }
        report(&Event::Family {
            family,
            levels: &levels,
            budget: share,
        });
        let family_report = if levels.is_empty() {
            FamilyReport {
                family,
                levels: Vec::new(),
                end: FamilyEnd::Skipped,
                elapsed: Duration::ZERO,
                policy,
                notes: Vec::new(),
                shed: RoundsShed::default(),
            }
        } else if runner.cancel.is_cancelled() {
            FamilyReport {
                family,
                levels: Vec::new(),
                end: FamilyEnd::Short(Short::Interrupted),
                elapsed: Duration::ZERO,
                policy,
                notes: Vec::new(),
                shed: RoundsShed::default(),
            }
        } else {
            let end = Instant::now() + share;
            let bounds = (end, &mut seen);
            let mut r = run_family(family, &levels, runner, opts, hooks, bounds, report).await?;
            policy.append(&mut r.policy);
            r.policy = policy;
            r
        };
        report(&Event::Done(&family_report));
        let stop = matches!(
            family_report.end,
            FamilyEnd::Broken { .. } | FamilyEnd::Short(Short::Interrupted)
        );
        // A find's confirmations leave the target as the last replay left it: broken,
        // for damage that accumulates. The next family starts from a reset target when
        // there is a way to reset it (`--reset`, or the built-in server's restart), so it
        // is not reported broken by the family before it.
        let found = matches!(family_report.end, FamilyEnd::Found(_));
        families.push(family_report);
        if stop {
            break;
        }
        if found && i + 1 < battery.families.len() && runner.reset.possible() {
            runner.reset_by(Some(budget_end)).await?;
        }
    }
    Ok(BatteryOutcome {
        families,
        planned: battery.families.clone(),
        elapsed: started.elapsed(),
    })
}

/// What a family treats as the server's policy rather than a finding: for `early-send`,
/// a request refused with an explicit Close code before anything of its reply came
/// (graphql-transport-ws closes 4401 on a `subscribe` before its ack): the family looks
/// for a request dropped without a word, not for a refusal.
pub fn excuse(family: Family) -> Option<Excuse> {
    match family {
        Family::EarlySend => Some(Excuse::RefusalClose),
        _ => None,
    }
}

/// What the `same-token` family's calibration found the target's policy to be for two
/// sessions of one token, each with the line saying so.
enum Sessions {
    /// It serves both: exclusivity is not judged.
    Concurrent(String),
    /// It ends the older one when the token connects again, with these close codes (a
    /// takeover the scenario does not declare): they count as `replaced`, never as a race.
    Takeover(Vec<u16>, String),
}

/// The `same-token` family's calibration ([`Battery::sessions_calibration`]): when the
/// target serves two sessions of one token opened one after the other (not racing),
/// concurrent sessions are its policy and the family does not judge exclusivity (unless
/// the file declares `[oracles] exclusive`); when it ends the older one with a close that
/// reads as a takeover ([`Summary::undeclared_takeover`](crate::results::Summary::undeclared_takeover)),
/// "newest connection wins" is its policy, and the family's scenarios declare those codes
/// `replaced`. `None` when the target keeps one session per token otherwise (or
/// calibration could not tell: the oracles stay as written).
async fn calibrate_sessions(
    battery: &Battery,
    runner: &Runner,
    seed: u64,
    budget_end: Instant,
) -> Result<Option<Sessions>, BatteryError> {
    let scenario = battery.sessions_calibration()?;
    let plan = plan::build(&scenario, seed);
    let Some((outcome, cut)) = runner.once_by(&plan, budget_end).await? else {
        return Ok(None);
    };
    if cut {
        return Ok(None);
    }
    let codes = outcome.results.summary.undeclared_takeover.clone();
    if !codes.is_empty() {
        let listed: Vec<String> = codes.iter().map(u16::to_string).collect();
        let note = format!(
            "the target ends the older session of a token when it connects again (close {}: \
             \"newest connection wins\", its policy): those closes count as replaced, not \
             as a race; declare `[oracles] reject = {{ replaced = [{}] }}` to say so yourself",
            listed.join(", "),
            listed.join(", ")
        );
        return Ok(Some(Sessions::Takeover(codes, note)));
    }
    if battery.declared_exclusive || !outcome.broke(OracleKind::Exclusivity) {
        return Ok(None);
    }
    Ok(Some(Sessions::Concurrent(
        "the target serves two sessions of one token opened one after the other (its policy): exclusivity not judged; identity, completeness and the other oracles are".to_string(),
    )))
}

/// One family: its levels in the order [`Hooks::escalate`] gives, health probed before
/// each, until a find, a broken target, or `family_end`.
async fn run_family(
    family: Family,
    levels: &[Level],
    runner: &Runner,
    opts: &BatteryOptions,
    hooks: &dyn Hooks,
    (family_end, seen): (Instant, &mut Seen),
    report: &mut dyn FnMut(&Event<'_>),
) -> Result<FamilyReport, BatteryError> {
    let started = Instant::now();
    let mut notes = Vec::new();
    let mut ran = Vec::new();
    let mut index = Some(0);
    let mut excused = 0u64;
    let mut first_excused: Option<Violation> = None;
    // Answers that came after their `within`, set aside by the family's hunts.
    let mut late = 0u64;
    let mut unproven = 0u64;
    // Unmet expectations of a kind the script misspells, set aside by the family's hunts.
    let mut misspelled = 0u64;
    // Bad tokens accepted by the server's policy (lenient acceptances), by entry.
    let mut lenient: BTreeMap<String, u64> = BTreeMap::new();
    let report_of = |ran, end, excused: u64, first: Option<Violation>| {
        FamilyReport {
        family,
        levels: ran,
        end,
        elapsed: started.elapsed(),
        policy: first
            .and_then(|v| crate::oracle::refusal::refused_by_close(&v))
            .map(|code| {
                format!(
                    "the target refuses a request sent before its ack with close {code} ({} refused; its policy, not a silent drop)",
                    excused
                )
            })
            .into_iter()
            .collect(),
        notes: Vec::new(),
        shed: RoundsShed::default(),
    }
    };
    // Health probes the server shed, the battery's and its hunts': said once, at the end.
    let mut shed = HealthShed::default();
    // The rounds' attempts the server shed, over every level.
    let mut rounds_shed = RoundsShed::default();
    // Every way out of the levels ends here, with how the family ended.
    let end = loop {
        let Some((i, level)) = index.and_then(|i| Some((i, levels.get(i)?))) else {
            break FamilyEnd::Clean;
        };
        if runner.cancel.is_cancelled() {
            break FamilyEnd::Short(Short::Interrupted);
        }
        if family_end.saturating_duration_since(Instant::now()) < MIN_RUN {
            break FamilyEnd::Short(Short::Budget);
        }
        let mut health = hooks.probe_health(runner, family_end).await?;
        if matches!(health, Health::Broken { .. }) && seen.healthy {
            // Once more before calling the target broken: one probe lost to a busy
            // machine, or to the very race a family looks for, is not a broken target.
            health = hooks.probe_health(runner, family_end).await?;
        }
        match &health {
            Health::Healthy => seen.accepted = true,
            Health::Broken { accepted, .. } => seen.accepted |= *accepted,
            Health::Shedding(waited) => shed.add(waited),
            Health::Unknown => {}
        }
        match health {
            Health::Healthy => seen.healthy = true,
            Health::Broken { why, .. } if seen.healthy => {
                break FamilyEnd::Broken {
                    before_level: i,
                    why,
                };
            }
            // Never seen healthy (its first exchange may hit the race the families look
            // for, as a graphql-ws server closing 4401 right after its ack does): nothing
            // the battery did broke it, so its rounds judge it alone, as `hunt` does.
            Health::Broken { why, .. } => {
                if notes.is_empty() {
                    notes.push(format!(
                        "the health probe failed before level {} ({why}) and has not passed yet: the rounds judge the target alone",
                        i + 1
                    ));
                }
            }
            // The server's load shedding says nothing of its health: the level runs, and
            // the family's note counts it.
            Health::Shedding(_) | Health::Unknown => {}
        }
        report(&Event::Level {
            family,
            index: i,
            level,
        });
        let hunt_opts = HuntOptions {
            budget: family_end.saturating_duration_since(Instant::now()),
            seed: opts.seed.wrapping_add(i as u64),
            out: opts.out.clone(),
            confirm: opts.confirm,
        };
        let mut max_connections = 0;
        // The family's policy rule holds only for a target known to take the tokens:
        // without that, a request closed before acceptance may be a token never read.
        let excuse = excuse(family).filter(|_| seen.accepted);
        let outcome = hunt_excusing(
            &level.scenario,
            runner,
            &hunt_opts,
            excuse,
            &mut |p: &Progress| {
                max_connections = max_connections.max(p.connections);
                report(&Event::Round(p));
            },
        )
        .await?;
        excused += outcome.excused;
        late += outcome.late;
        unproven += outcome.unproven;
        misspelled += outcome.misspelled;
        for (entry, n) in &outcome.lenient {
            *lenient.entry(entry.clone()).or_default() += n;
        }
        shed.merge(&outcome.health_shed);
        rounds_shed.merge(outcome.shed);
        if first_excused.is_none() {
            first_excused = outcome.first_excused.clone();
        }
        ran.push(LevelReport {
            label: level.label.clone(),
            rounds: outcome.rounds,
            judged: outcome.rounds.saturating_sub(outcome.not_judged),
            max_connections,
        });
        if let Some(found) = outcome.found {
            // Confirmed means reproduced by a replay; a violation seen once is a suspect.
            break if found.confirmed() {
                FamilyEnd::Found(Box::new(found))
            } else {
                FamilyEnd::Suspect(Box::new(found))
            };
        }
        if let Some(short) = outcome.short {
            // A level the budget ended proves the lower ones clean, nothing above them.
            break FamilyEnd::Short(short);
        }
        index = hooks.escalate(family, i, levels);
    };
    let mut family_report = report_of(ran, end, excused, first_excused);
    family_report.policy.extend(lenient_policy(&lenient));
    family_report.notes.append(&mut notes);
    family_report.shed = rounds_shed;
    family_report.notes.extend(shed.note());
    family_report.notes.extend(super::late_note(late));
    family_report.notes.extend(super::unproven_note(unproven));
    family_report
        .notes
        .extend(super::misspelled_note(misspelled));
    Ok(family_report)
}

/// The `policy:` line for bad tokens the target accepted where refusing them is its
/// policy (a validly signed, current token without `sub` or `exp`, as geth's engine API
/// takes: RFC 7519 makes every registered claim optional), by catalogue entry; `None`
/// when there were none. They are lenient acceptances, never a find.
pub fn lenient_policy(by_entry: &BTreeMap<String, u64>) -> Option<String> {
    let total: u64 = by_entry.values().sum();
    if total == 0 {
        return None;
    }
    let parts: Vec<String> = by_entry.iter().map(|(k, n)| format!("{k} {n}")).collect();
    Some(format!(
        "the target accepts bad tokens whose refusal is a server's choice ({}): {}, not \
         violations; `[oracles] reject = {{ policy = \"strict\" }}` judges them",
        parts.join(", "),
        crate::model::words::plural(total, "lenient acceptance"),
    ))
}

/// The verdict that made a round unjudgeable, for output.
pub fn unjudged_verdict(end: &FamilyEnd) -> Option<Verdict> {
    match end {
        FamilyEnd::Short(Short::Unjudged(u)) => Some(u.verdict),
        _ => None,
    }
}
