//! `stampede compare`: per-phase latency and throughput of two sets of runs, side by side.
//!
//! Each side's histograms are merged losslessly (the same samples, in one histogram), so
//! percentiles of several runs are real percentiles, not averages of percentiles. A row is
//! a regression when NEW is worse than BASE by more than all of: the tolerance, the noise
//! floor ([`LATENCY_FLOOR_MS`], [`THROUGHPUT_FLOOR`]) and BASE's run-to-run spread (the
//! max − min of that value across BASE's runs, when it has two or more: BASE is the
//! reference for how far runs of one build drift apart; NEW's own inconsistency is part of
//! what is tested, so it never widens the margin), and when the percentile's sampling
//! uncertainty cannot explain it: NEW's lower confidence bound must lie above BASE's upper
//! one (the bounds are the percentiles at q ± z·√(q(1−q)/n), the usual order-statistic
//! interval). A worse row that fails only that test is shown as "within sampling noise".
//! That interval assumes independent samples, which a tail made of a few stalls is not, so
//! a percentile also needs [`MIN_TAIL_SAMPLES`] beyond it on each side to gate. `max` (one
//! sample), thin tails and the generator's own lag are shown but gate nothing unless a
//! `--tolerance-for` names them. The error rows ([`errors`]) compare how often connections
//! and expectations failed and how many violations the oracles found, and gate as the
//! others do.
//!
//! What cannot be judged is said so, and is not a pass ([`Comparison::not_judged`], exit
//! 8):
//!
//! - A NEW run whose generator fell behind measured its own lateness with the server's: a
//!   latency row gates only by as much as it grew beyond that lag ([`ClientLag`]), and the
//!   throughput row (the load such a client managed to send) is not judged.
//! - A NEW run whose client stalled (its process did not run for 100 ms or more:
//!   `generator.client_stalls` in its summary) measured those pauses, and a co-located
//!   server's, as latency: a latency row the stalls may explain (NEW's time spent stalled
//!   could hold the tail beyond its percentile, and it grew by no more than the longest
//!   stall), and a throughput row that fell by no more than that share of time, are not
//!   judged ([`CLIENT_STALLED`]); a larger change still gates.
//! - A phase whose median got worse with too few samples to gate: the comparison says
//!   what would let it judge (more users, longer runs).
//! - A percentile that got worse with too few samples beyond it to gate, when more of
//!   NEW's samples lie beyond the slowest of BASE's than chance explains (a tail grown past
//!   anything BASE saw, [`tail_grew`]).
//! - Interrupted runs, and runs that measured nothing, are left out of their side with a
//!   warning; a side left with no run is not judged.
//!
//! Runs that cannot be compared are refused ([`CompareError`]): shards of different slices
//! of a plan, or a shard against a whole run (merge the shards first). Runs of different
//! seeds or planned connection counts are compared with a warning; with different planned
//! connections the throughput row does not gate.

mod args;
pub mod errors;
mod stats;

pub use args::{describe, expand, parse_tolerance, parse_tolerance_for};

use stats::{
    beyond_client_lag, beyond_sampling_noise, change, judge, mean, spread, stat_ms, ungated,
    Margins,
};

use super::read::{find_runs, read_histograms, read_summary, run_dirs, FoundRuns, ReadError};
use super::{GeneratorSummary, Summary};
use crate::metrics::Histograms;
use crate::model::{LatencyStat, Phase, StopReason, Verdict as RunVerdict};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Latency differences below this are noise on any machine. Measured on loopback (six
/// golden-path runs of one build, 30 ordered pairs): sub-millisecond phases (tcp_connect,
/// upgrade, first_event) drift up to 0.07 ms between runs beyond their sampling noise
/// here, and 0.13 ms on another machine; 0.3 ms leaves twice that, and a sub-millisecond
/// server that got slower by a third of a millisecond (0.3 → 0.7 ms) still gates.
pub const LATENCY_FLOOR_MS: f64 = 0.3;
/// With a single BASE run, how far runs of one build drift apart is unknown; a latency
/// row then takes it as this fraction of BASE's value. Measured: across 30 ordered pairs
/// of six golden-path runs of one build, a turn percentile that gates drifted up to 10.3%
/// (p90; p50 2.1%, p99 8.6%), so one run against one run fired on runs of one build at a
/// 10% tolerance. Twice that still catches a server 8 ms slower (turn +58%). With two or
/// more BASE runs their measured spread is used instead.
pub const SINGLE_RUN_SPREAD: f64 = 0.2;
/// Throughput differences below this (messages/s) are noise.
pub const THROUGHPUT_FLOOR: f64 = 1.0;
/// z for the percentiles' confidence bounds: 99% two-sided, so a nightly gate rarely
/// fires on sampling noise alone.
pub const CONFIDENCE_Z: f64 = 2.576;
/// The Wilson score interval of a share, `k` of `n`, at `z` (a normal quantile: 1.645 for
/// a one-sided 95% bound, 2.576 for [`CONFIDENCE_Z`]), clamped to [0, 1]; `(0, 1)` when
/// `n` is 0. Unlike p ± z·√(p(1−p)/n) it does not shrink to nothing at 0 or n of n, so a
/// few replays that all agreed still leave room for chance.
pub fn wilson(k: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = k as f64 / n;
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denominator;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Why a latency or throughput row that got worse is not judged when a NEW run's generator
/// fell behind ([`Verdict::NotJudged`]): a latency row no worse than the lag explains, or
/// the throughput row.
pub const CLIENT_FELL_BEHIND: &str = "the client fell behind";

/// Why a latency or throughput row that got worse is not judged when a NEW run's client
/// stalled ([`Verdict::NotJudged`]): its process did not run for a while, and the pause is
/// in its latencies (with the built-in server in the same process, the server's too).
pub const CLIENT_STALLED: &str = "the client stalled";

/// Why the throughput row does not gate when the runs planned different connection counts
/// ([`Verdict::WorseUngated`], [`Verdict::BetterUngated`]): a smaller plan sends less.
pub const PLANS_DIFFER: &str = "planned connections differ";

/// Why the throughput row is not judged when a side is a merge whose rates are not the
/// whole run's load (its shards did not run side by side, or ran for different durations:
/// the merge's warnings say which).
pub const RATES_PARTIAL: &str = "a merged side's rates are not the whole run's load";

/// Why a percentile row does not gate when a side has fewer than [`MIN_TAIL_SAMPLES`]
/// samples beyond it.
pub const TOO_FEW_SAMPLES: &str = "too few samples";

/// A percentile gates only when each side has at least this many samples beyond it.
pub const MIN_TAIL_SAMPLES: f64 = 10.0;
/// The throughput row's key.
pub const THROUGHPUT: &str = "received_per_sec";
const STATS: [LatencyStat; 5] = [
    LatencyStat::P50,
    LatencyStat::P90,
    LatencyStat::P99,
    LatencyStat::P999,
    LatencyStat::Max,
];

/// How strict the comparison is.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// Allowed worsening as a fraction (0.1 = 10%).
    pub tolerance: f64,
    /// Per-metric tolerances: `turn.p99`, a whole phase (`turn`), `received_per_sec`, or an
    /// error row's key (`errors.rate`, `unmet.rate`, `shed.rate`, `violations`).
    pub per_metric: BTreeMap<String, f64>,
    /// Compare runs of different scenarios anyway.
    pub force: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            tolerance: 0.10,
            per_metric: BTreeMap::new(),
            force: false,
        }
    }
}

/// Why two sets of runs cannot be compared (a usage error: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A result file could not be read or parsed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A side named no run.
    #[error("no {0} runs given")]
    Empty(&'static str),
    /// A path given as BASE or NEW does not exist.
    #[error("{} does not exist", .0.display())]
    NotFound(PathBuf),
    /// The runs are different slices of a split plan (`--shard`), or a shard and a whole
    /// run: one holds connections the other does not, so every figure differs by the plan.
    #[error("{0}")]
    DifferentSlices(String),
    /// The runs' scenario hashes differ (and `force` was not given).
    #[error("{0}; pass --force to compare anyway")]
    DifferentScenarios(String),
    /// A glob that does not parse, or whose matches cannot be read.
    #[error("bad pattern {pattern:?}: {reason}")]
    Pattern {
        /// The glob as given.
        pattern: String,
        /// What was wrong with it.
        reason: String,
    },
    /// `--tolerance-for` keys (`keys`, joined) that name metrics neither side measured.
    #[error(
        "--tolerance-for {keys}: no such metric in these runs (a phase they do not measure, \
         or a misspelled turn name); they have: {known}"
    )]
    UnmeasuredGate {
        /// The keys, joined by commas.
        keys: String,
        /// The metrics (phases, named turns, other rows' keys) the runs have.
        known: String,
    },
    /// The same runs on both sides (a folder given twice, a run and its copy): every
    /// change would read 0.
    #[error("{0}")]
    SameRuns(String),
    /// A glob that matches nothing.
    #[error("{0} matches nothing")]
    NoMatch(String),
    /// Every run folder a side's paths hold lacks its `summary.json`.
    #[error("no {side} run left to compare: {skipped}")]
    NothingReadable {
        side: &'static str,
        /// The folders skipped, said as [`super::FoundRuns::skipped_line`] says them.
        skipped: String,
    },
}

/// What the comparison found.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub scenario: String,
    pub base_runs: Vec<PathBuf>,
    pub new_runs: Vec<PathBuf>,
    pub tolerance: f64,
    /// Set when the scenario hashes differ and `force` let the comparison go on.
    pub forced: Option<String>,
    /// Runs whose timings deserve doubt (generator fell behind, interrupted).
    pub warnings: Vec<String>,
    /// Run folders found in BASE's or NEW's folders that hold no `summary.json` (runs
    /// stopped before they wrote their results), left out of the comparison.
    pub skipped: Vec<PathBuf>,
    /// One row per phase and statistic, then the throughput row, then the error rows.
    pub rows: Vec<Row>,
    /// Phases (and named turns) with samples on one side only: nothing to compare them
    /// with, so they have no rows.
    pub missing: Vec<Missing>,
    /// NEW runs whose verdict is worse than the best BASE run's.
    pub worse_verdicts: Vec<WorseVerdict>,
    /// Runs left out of their side: interrupted (Ctrl-C), or that measured nothing (no
    /// connection attempted): their figures describe no load, so they are no baseline and
    /// no slowdown. A warning names each.
    pub left_out: Vec<PathBuf>,
    /// What kept the comparison from judging what got worse, in words (a side left with no
    /// run, a phase with too few samples, a NEW client that stalled): each makes the
    /// comparison [`Comparison::not_judged`] when nothing regressed.
    pub unjudged: Vec<String>,
    /// Set when no BASE run exercised the target (each ended target unusable, auth
    /// misconfigured, unreadable, …), with that verdict: there is no baseline, so NEW is
    /// shown neither worse nor as good ([`Comparison::not_judged`]).
    pub base_unexercised: Option<RunVerdict>,
}

/// A latency phase (or named turn) that one side measured and the other did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    /// The phase's name (`turn`), or a named turn's (`turn:ack`).
    pub phase: String,
    /// The side without a single sample of it: `"base"` or `"new"`. (A `--tolerance-for`
    /// naming a phase neither side measured is refused: [`CompareError::UnmeasuredGate`].)
    pub lacking: &'static str,
    /// How many samples the other side has.
    pub samples: u64,
    /// The `--tolerance-for` key that names this phase, if any: a gate that cannot be
    /// checked fails the comparison.
    pub gated_by: Option<String>,
}

/// A NEW run that ended with a worse verdict than the best BASE run's.
#[derive(Debug, Clone, PartialEq)]
pub struct WorseVerdict {
    /// The NEW run's result directory.
    pub run: PathBuf,
    /// Its verdict (never clean).
    pub verdict: RunVerdict,
    /// The best verdict among the BASE runs, which this one is worse than.
    pub base_best: RunVerdict,
    /// Whether every BASE run ended with `base_best`.
    pub every_base: bool,
}

impl WorseVerdict {
    /// Whether the run's verdict is the client's own limits: no regression of the
    /// server's, but nothing judged either.
    pub fn client_limited(&self) -> bool {
        self.verdict == RunVerdict::ClientLimited
    }
}

/// One compared value.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `turn.p99`, `received_per_sec`, or an error row's key (`errors.rate`).
    pub metric: String,
    pub phase: String,
    pub stat: String,
    /// In the row's [`Unit`]: milliseconds for latency rows, messages/s for the
    /// throughput row, a share from 0 to 1 or a count per run for the error rows.
    pub base: f64,
    pub new: f64,
    /// (new − base) / base; `None` when base is zero.
    pub change: Option<f64>,
    /// BASE's run-to-run range (max − min over its runs); `None` with a single BASE run.
    pub spread: Option<f64>,
    pub tolerance: f64,
    pub verdict: Verdict,
    /// What `base`, `new` and `spread` are in.
    pub unit: Unit,
    /// On a latency row, when a NEW run's generator fell behind: that lag at the row's
    /// level, which the row had to outgrow to be a regression. `None` otherwise.
    pub client_lag: Option<ClientLag>,
}

/// How late the client was, at the level a latency row is compared with: the worst NEW
/// run whose generator fell behind, read from its lag histogram (`histograms.json`) or,
/// without one, its `summary.json` (`generator`). A latency counts from when the client
/// meant to send, so the client's lateness adds at most about this much to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientLag {
    /// The lag's statistic: the row's own (`p99.9` for a p99.9 row) when every lagging
    /// run's lag histogram is at hand; else the nearest level summary.json keeps: `p50` for
    /// a p50 row, `p99` for the percentiles between (and the mean), `max` for a max.
    pub stat: &'static str,
    /// The lag, in milliseconds.
    pub ms: f64,
}

/// The worst lag among the NEW runs whose generator fell behind: at each level
/// summary.json keeps, and each run's lag histogram when every one of them has its
/// samples.
struct Lagging {
    p50: f64,
    p99: f64,
    max: f64,
    /// The lagging runs' lag histograms (`histograms.json`); empty when any of them holds
    /// no sample (results written without it): then the levels above are what there is.
    histograms: Vec<Hist>,
}

impl Lagging {
    /// `None` when no NEW run fell behind: then every timing is judged as it is. Only NEW's
    /// lag matters: a BASE that fell behind reads slower than its server was, so a NEW
    /// still worse than it is worse still than the truth.
    fn of(new: &[Run]) -> Option<Lagging> {
        let lagging: Vec<&GeneratorSummary> = new
            .iter()
            .map(|r| &r.summary.generator)
            .filter(|g| g.fell_behind)
            .collect();
        let worst =
            |f: fn(&GeneratorSummary) -> f64| lagging.iter().map(|g| f(g)).fold(0.0, f64::max);
        let histograms: Vec<Hist> = new
            .iter()
            .filter(|r| r.summary.generator.fell_behind)
            .map(|r| r.histograms.get(Phase::GeneratorLag).clone())
            .collect();
        let histograms = if histograms.iter().all(|h| !h.is_empty()) {
            histograms
        } else {
            Vec::new()
        };
        (!lagging.is_empty()).then(|| Lagging {
            p50: worst(|g| g.lag_p50_ms),
            p99: worst(|g| g.lag_p99_ms),
            max: worst(|g| g.lag_max_ms),
            histograms,
        })
    }

    /// The lag a latency statistic is compared with: the same statistic of the lagging
    /// runs' lag histograms (the worst run's), when they are at hand; else the same level
    /// where summary.json has it, the lag's p99 for the percentiles between p50 and max
    /// (and the mean, which compare does not show). A p99.9 row compared with the lag's
    /// p99 would be charged with the lag's rarer, longer stalls.
    fn at(&self, stat: LatencyStat) -> ClientLag {
        if !self.histograms.is_empty() {
            let ms = self
                .histograms
                .iter()
                .map(|h| stat_ms(h, stat))
                .fold(0.0, f64::max);
            return ClientLag {
                stat: stat.name(),
                ms,
            };
        }
        let (stat, ms) = match stat {
            LatencyStat::P50 => ("p50", self.p50),
            LatencyStat::P90 | LatencyStat::P99 | LatencyStat::P999 | LatencyStat::Mean => {
                ("p99", self.p99)
            }
            LatencyStat::Max => ("max", self.max),
        };
        ClientLag { stat, ms }
    }
}

/// What a row's values are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds: the latency rows.
    Ms,
    /// Messages per second: the throughput row.
    PerSec,
    /// A share from 0 to 1 (failed connection attempts, unmet expectations), shown as a
    /// percentage.
    Share,
    /// A count, the mean per run: violations.
    PerRun,
}

impl Unit {
    /// Its name in `compare --json`.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::PerSec => "per_sec",
            Unit::Share => "share",
            Unit::PerRun => "per_run",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Unchanged,
    Improved,
    Regression,
    /// Worse beyond the margins, but the row does not gate (the reason says why).
    WorseUngated(&'static str),
    /// Better beyond the margins, on a row that does not gate: as little a finding as its
    /// mirror image (a single sample, too few samples, the generator's own lag).
    BetterUngated(&'static str),
    /// Worse beyond the margins on a side whose measurement cannot be trusted (a NEW run
    /// whose generator fell behind: a latency no worse than the client's own delay could
    /// make it, the throughput, the load the client managed to send). Neither a regression
    /// of the server's nor a pass: the comparison exits 8 when nothing else regressed.
    NotJudged(&'static str),
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression)
    }

    /// Missing phases that a `--tolerance-for` names: each fails the comparison.
    pub fn missing_gated(&self) -> impl Iterator<Item = &Missing> {
        self.missing.iter().filter(|m| m.gated_by.is_some())
    }

    /// Whether the comparison fails: a regressed row, a gated phase one side lacks, or a
    /// NEW run whose verdict is worse than the BASE runs' (other than `client_limited`:
    /// the client's own limits are no regression of the server's, see [`Self::not_judged`]).
    pub fn regressed(&self) -> bool {
        self.regressions().next().is_some()
            || self.missing_gated().next().is_some()
            || self.worse_verdicts.iter().any(|v| !v.client_limited())
    }

    /// Rows that got worse on a NEW side whose client fell behind
    /// ([`Verdict::NotJudged`]).
    pub fn not_judged_rows(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::NotJudged(_)))
    }

    /// Whether the comparison could not judge what got worse: nothing regressed, but a row
    /// is [`Verdict::NotJudged`], a NEW run ended `client_limited` where a BASE run was
    /// clean, no BASE run exercised the target, or something in [`Self::unjudged`] (a side
    /// with no run left, a phase too thin to judge that got worse). Not a pass (what got
    /// worse may be the server's) and not a regression (the server is not shown to be
    /// slower).
    pub fn not_judged(&self) -> bool {
        !self.regressed()
            && (self.not_judged_rows().next().is_some()
                || self.worse_verdicts.iter().any(WorseVerdict::client_limited)
                || self.base_unexercised.is_some()
                || !self.unjudged.is_empty())
    }
}

/// One run's measurements.
struct Run {
    path: PathBuf,
    summary: Summary,
    histograms: Histograms,
}

/// Compares the runs under `base` with those under `new` (result directories, summary
/// files, or directories of result directories).
pub fn compare(
    base: &[PathBuf],
    new: &[PathBuf],
    opts: &CompareOptions,
) -> Result<Comparison, CompareError> {
    let base = load_side(base, "base")?;
    let new = load_side(new, "new")?;
    compare_sides(base, new, opts)
}

/// [`compare`] of the runs two sides' paths held.
fn compare_sides(base: Side, new: Side, opts: &CompareOptions) -> Result<Comparison, CompareError> {
    let Side {
        runs: base,
        parts: base_parts,
        mut skipped,
    } = base;
    let Side {
        runs: new,
        parts: new_parts,
        skipped: new_skipped,
    } = new;
    skipped.extend(new_skipped);
    // A folder given as both BASE and NEW skips its stopped runs once.
    skipped.sort();
    skipped.dedup();
    let forced = check_scenarios(&base, &new, opts.force)?;
    check_slices(&base, &new)?;
    let shared = match shared_runs_note(&base, &new) {
        Some(Shared::All(message)) => return Err(CompareError::SameRuns(message)),
        Some(Shared::Some(note)) => Some(note),
        None => None,
    };
    let scenario = base
        .first()
        .map(|r| r.summary.scenario.clone())
        .unwrap_or_default();
    let mut warnings: Vec<String> = base_parts.into_iter().chain(new_parts).collect();
    warnings.extend(plan_differences(&base, &new));
    let (base, base_out) = leave_out_unmeasured(base);
    let (new, new_out) = leave_out_unmeasured(new);
    let left_out: Vec<PathBuf> = base_out.iter().chain(&new_out).cloned().collect();
    warnings.extend(base_out.iter().chain(&new_out).map(|dir| {
        format!(
            "{}: left out: the run was interrupted or measured nothing, so its figures \
             describe no load",
            dir.display()
        )
    }));
    let mut unjudged: Vec<String> = [("base", &base, &base_out), ("new", &new, &new_out)]
        .into_iter()
        .filter(|(_, kept, out)| kept.is_empty() && !out.is_empty())
        .map(|(side, _, out)| {
            format!(
                "no {side} run left to compare: {} interrupted or measured nothing; run \
                 {} again to its end",
                crate::model::words::plural(out.len() as u64, "run"),
                side.to_uppercase()
            )
        })
        .collect();
    if !unjudged.is_empty() {
        return Ok(Comparison {
            scenario,
            warnings,
            worse_verdicts: Vec::new(),
            base_unexercised: None,
            base_runs: base.into_iter().map(|r| r.path).collect(),
            new_runs: new.into_iter().map(|r| r.path).collect(),
            tolerance: opts.tolerance,
            forced,
            skipped,
            rows: Vec::new(),
            missing: Vec::new(),
            left_out,
            unjudged,
        });
    }
    let (merged_base, merged_new) = (merge(&base), merge(&new));
    let lagging = Lagging::of(&new);
    let stalls = Stalls::of(&new);
    let sides = NewSide {
        base: &base,
        lagging: lagging.as_ref(),
        stalls,
    };
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    // Phases that got worse with too few samples to judge any of their rows.
    let mut thin = Vec::new();
    // Tails that grew past anything BASE saw, with too few samples beyond them to gate.
    let mut grown = Vec::new();
    let judge_tails = lagging.is_none() && stalls.is_none();
    for phase in Phase::ALL {
        let (b, n) = (merged_base.get(phase), merged_new.get(phase));
        if b.is_empty() || n.is_empty() {
            missing.extend(one_sided(phase.name(), (b, n), opts));
            continue;
        }
        let first = rows.len();
        for stat in STATS {
            let metric = (phase.name(), phase, Which::Phase(phase));
            rows.push(latency_row(metric, stat, &sides, (b, n), opts));
        }
        if phase != Phase::GeneratorLag && thin_and_worse(&rows[first..]) {
            thin.push(phase.name().to_string());
        } else if phase != Phase::GeneratorLag && judge_tails {
            grown.extend(grown_tail(phase.name(), &rows[first..], (b, n)));
        }
    }
    closed_loop_turn_raw(&mut rows);
    // Named expectations' turns present on both sides: metrics `turn:NAME.p99`.
    let mut names: Vec<String> = merged_base
        .turns()
        .chain(merged_new.turns())
        .map(|(n, _)| n.to_string())
        .collect();
    names.sort();
    names.dedup();
    let empty = crate::metrics::new_histogram();
    for name in names {
        let label = format!("{}{name}", crate::metrics::TURN_PREFIX);
        let b = merged_base.turn(&name).unwrap_or(&empty);
        let n = merged_new.turn(&name).unwrap_or(&empty);
        if b.is_empty() || n.is_empty() {
            missing.extend(one_sided(&label, (b, n), opts));
            continue;
        }
        let first = rows.len();
        for stat in STATS {
            let metric = (label.as_str(), Phase::Turn, Which::Turn(&name));
            rows.push(latency_row(metric, stat, &sides, (b, n), opts));
        }
        if thin_and_worse(&rows[first..]) {
            thin.push(label);
        } else if judge_tails {
            grown.extend(grown_tail(&label, &rows[first..], (b, n)));
        }
    }
    let mut throughput = throughput_row(&base, &new, opts);
    if throughput.verdict == Verdict::Regression {
        // A client that fell behind sent less than the plan, whatever the server did; one
        // that stalled sent nothing while it stalled (by as much as the share of its time
        // it spent so).
        let lost = throughput.change.map_or(0.0, |c| -c);
        if stalls.is_some_and(|s| lost <= s.share) {
            throughput.verdict = Verdict::NotJudged(CLIENT_STALLED);
        } else if lagging.is_some() {
            throughput.verdict = Verdict::NotJudged(CLIENT_FELL_BEHIND);
        }
    }
    rows.push(throughput);
    rows.extend(errors::error_rows(&base, &new, opts));
    unmeasured_gates(opts, &rows, &missing)?;
    warnings.extend(base.iter().chain(&new).filter_map(warning));
    // What a merge warned of when it made a result (shards started apart: its rates are
    // not one run's load) is said again wherever that result is judged.
    warnings.extend(base.iter().chain(&new).flat_map(merge_warnings));
    warnings.extend(single_run_note(base.len(), &rows));
    warnings.extend(shared);
    unjudged.extend(stalled_note(&new, &rows));
    unjudged.extend(partial_rates_note(&rows));
    unjudged.extend(thin_phases_note(&thin));
    unjudged.extend(grown);
    Ok(Comparison {
        scenario,
        warnings,
        worse_verdicts: worse_verdicts(&base, &new),
        base_unexercised: unexercised(&base),
        base_runs: base.into_iter().map(|r| r.path).collect(),
        new_runs: new.into_iter().map(|r| r.path).collect(),
        tolerance: opts.tolerance,
        forced,
        skipped,
        rows,
        missing,
        left_out,
        unjudged,
    })
}

/// The warnings a merged result recorded when it was made, each naming the result.
fn merge_warnings(run: &Run) -> Vec<String> {
    if run.summary.merged_from.is_none() {
        return Vec::new();
    }
    let path = run.path.display();
    run.summary
        .warnings
        .iter()
        .map(|w| format!("{path}: merged with a warning: {w}"))
        .collect()
}

/// BASE's runs (their spread), and what of NEW's client keeps its timings from being
/// judged.
struct NewSide<'a> {
    base: &'a [Run],
    /// The lag of NEW's runs whose generator fell behind, if any.
    lagging: Option<&'a Lagging>,
    /// How NEW's clients stalled, when any did ([`CLIENT_STALLED`]).
    stalls: Option<Stalls>,
}

/// How NEW's clients stalled (their processes did not run for 100 ms or more): the share
/// of NEW's time spent stalled, over all its runs, and the longest stall.
#[derive(Debug, Clone, Copy)]
struct Stalls {
    share: f64,
    longest_ms: f64,
}

impl Stalls {
    /// `None` when no NEW run's client stalled.
    fn of(new: &[Run]) -> Option<Stalls> {
        let stalled = |r: &&Run| r.summary.generator.client_stalls.count > 0;
        let longest_ms = new
            .iter()
            .filter(stalled)
            .map(|r| r.summary.generator.client_stalls.longest_ms)
            .fold(f64::NAN, f64::max);
        if longest_ms.is_nan() {
            return None;
        }
        let total: f64 = new
            .iter()
            .map(|r| r.summary.generator.client_stalls.total_ms)
            .sum();
        let elapsed: f64 = new.iter().map(|r| r.summary.elapsed_ms).sum();
        Some(Stalls {
            share: (total / elapsed.max(1.0)).min(1.0),
            longest_ms,
        })
    }

    /// Whether the stalls may explain a percentile `stat` grown by `grew_ms`: a stall
    /// delays what is in flight while it lasts, by at most its length, so it moves a
    /// percentile only when the time spent stalled could hold the whole tail beyond it
    /// (half the samples for p50, one in a hundred for p99; any for `max`), and by no more
    /// than the longest stall. One stall of 150 ms in a minute excuses no slower median.
    fn may_explain(&self, stat: LatencyStat, grew_ms: f64) -> bool {
        let tail = match stat {
            LatencyStat::P50 | LatencyStat::Mean => 0.5,
            LatencyStat::P90 => 0.1,
            LatencyStat::P99 => 0.01,
            LatencyStat::P999 => 0.001,
            LatencyStat::Max => 0.0,
        };
        self.share >= tail && grew_ms <= self.longest_ms
    }
}

/// Interrupted runs, and runs that attempted no connection (stopped during calibration),
/// apart from the rest: their figures describe no load, so a throughput "100% lower" or a
/// latency of a few early connections would be judged as the server's.
fn leave_out_unmeasured(runs: Vec<Run>) -> (Vec<Run>, Vec<PathBuf>) {
    let (out, kept): (Vec<Run>, Vec<Run>) = runs.into_iter().partition(|r| {
        r.summary.stopped == StopReason::Interrupted || r.summary.counters.attempted == 0
    });
    (kept, out.into_iter().map(|r| r.path).collect())
}

/// Why a throughput that got worse on a merged side is not judged ([`RATES_PARTIAL`]), in
/// words: without it, the only reason would be the row's own.
fn partial_rates_note(rows: &[Row]) -> Option<String> {
    let row = rows
        .iter()
        .find(|r| r.verdict == Verdict::NotJudged(RATES_PARTIAL))?;
    Some(format!(
        "{} got worse, but {RATES_PARTIAL} (its shards did not run side by side): merge \
         shards that ran together, or compare their latencies only",
        row.metric
    ))
}

/// The note on NEW runs whose client stalled, when it kept a row that got worse from being
/// judged. `None` when no row was left [`Verdict::NotJudged`] for it.
fn stalled_note(new: &[Run], rows: &[Row]) -> Option<String> {
    let worse: Vec<&str> = rows
        .iter()
        .filter(|r| r.verdict == Verdict::NotJudged(CLIENT_STALLED))
        .map(|r| r.metric.as_str())
        .collect();
    let first = worse.first()?;
    let stalls = new
        .iter()
        .map(|r| &r.summary.generator.client_stalls)
        .filter(|s| s.count > 0);
    let count: u64 = stalls.clone().map(|s| s.count).sum();
    let longest = stalls.map(|s| s.longest_ms).fold(0.0, f64::max);
    Some(format!(
        "{} worse ({first}{}) on NEW runs whose client stalled {} (longest {longest:.0} ms): \
         those pauses, the client's own (and a built-in server's), are in its latencies",
        crate::model::words::plural(worse.len() as u64, "row"),
        if worse.len() > 1 { ", …" } else { "" },
        crate::model::words::plural(count, "time"),
    ))
}

/// The note on phases whose median got worse with too few samples to gate (`thin`, their
/// names): nothing judged them, so the comparison cannot pass them. `None` when there are
/// none.
fn thin_phases_note(thin: &[String]) -> Option<String> {
    let first = thin.first()?;
    Some(format!(
        "{} got worse with too few samples to judge ({first}{}: a median needs {} \
         samples on each side, a percentile {} beyond it); run more users or longer runs",
        crate::model::words::plural(thin.len() as u64, "phase"),
        if thin.len() > 1 { ", …" } else { "" },
        MIN_TAIL_SAMPLES * 2.0,
        MIN_TAIL_SAMPLES,
    ))
}

/// How many samples of NEW beyond the slowest of BASE's (by the tolerance, at least
/// [`LATENCY_FLOOR_MS`]) say a tail grew: more than BASE's own samples make likely. Of
/// `n` samples from BASE's distribution, about n / (BASE's count + 1) lie beyond BASE's
/// slowest; the lower bound of NEW's share there ([`wilson`] at [`CONFIDENCE_Z`]) must
/// exceed that, and at least [`TAIL_GREW_FROM`] must lie there (of 600 NEW samples
/// against 1,800 BASE ones, two beyond would pass the bound, and runs of one build put
/// that many there about one time in twenty; on a busy machine, one stall of the client
/// delays the answers of every connection waiting then together, and put three of 1,000
/// there in one of four runs of one build against three of its own).
fn tail_grew(beyond: u64, new_count: u64, base_count: u64) -> bool {
    let (lower, _) = wilson(beyond, new_count, CONFIDENCE_Z);
    beyond >= TAIL_GREW_FROM && lower > 1.0 / (base_count as f64 + 1.0)
}

/// The fewest NEW samples beyond BASE's slowest that [`tail_grew`] reads as a grown tail.
const TAIL_GREW_FROM: u64 = 5;

/// The note on a phase (`label`, its rows) whose percentile got worse with too few samples
/// beyond it to gate, when NEW's samples beyond the slowest of BASE's are more than chance
/// ([`tail_grew`]): a tail that grew past anything BASE saw (a server stalling now and
/// then), which the comparison cannot pass (not judged, exit 8). `None` otherwise: a tail
/// of a few samples moves by several times between runs of one build, and that alone is
/// no finding.
fn grown_tail(label: &str, rows: &[Row], (b, n): (&Hist, &Hist)) -> Option<String> {
    let row = rows
        .iter()
        .filter(|r| r.verdict == Verdict::WorseUngated(TOO_FEW_SAMPLES))
        .filter(|r| r.stat != LatencyStat::P50.name() && r.stat != LatencyStat::Max.name())
        .max_by(|x, y| x.change.unwrap_or(0.0).total_cmp(&y.change.unwrap_or(0.0)))?;
    let base_max_us = b.max();
    let margin_us = (base_max_us as f64 * row.tolerance).max(LATENCY_FLOOR_MS * 1000.0);
    let above = base_max_us
        .saturating_add(margin_us.ceil() as u64)
        .saturating_add(1);
    let beyond = if n.max() >= above {
        n.count_between(above, n.max())
    } else {
        0
    };
    if !tail_grew(beyond, n.len(), b.len()) {
        return None;
    }
    Some(format!(
        "{label}'s tail grew past anything BASE saw: {beyond} of NEW's {} samples lie beyond \
         BASE's slowest of {} ({:.3} ms) by more than the tolerance, more than chance, though \
         too few lie beyond its {} to gate it ({:.3} → {:.3} ms); run more users or longer \
         runs, or gate it with --tolerance-for {}",
        n.len(),
        b.len(),
        base_max_us as f64 / 1000.0,
        row.stat,
        row.base,
        row.new,
        row.metric,
    ))
}

/// Whether a phase's median (in `rows`, all of one phase) got worse beyond the margins
/// with too few samples to gate: nothing in the phase was judged. A tail alone that got
/// worse is not enough: of a handful of samples, the highest is one sample, and runs of
/// one build differ there by several times (three loopback TCP connects: 0.6 ms, then
/// 0.9 ms).
fn thin_and_worse(rows: &[Row]) -> bool {
    rows.iter().any(|r| {
        r.stat == LatencyStat::P50.name() && r.verdict == Verdict::WorseUngated(TOO_FEW_SAMPLES)
    })
}

/// The note on regressions judged with one BASE run: how far two runs of one build drift
/// apart (a busy machine, a colder cache) is then unknown, so nothing weighs the change
/// against it, and a small one may be that drift. `None` with several BASE runs, or no
/// regression.
fn single_run_note(base: usize, rows: &[Row]) -> Option<String> {
    let regressed = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Regression)
        .count();
    (regressed > 0 && base < 2).then(|| {
        format!(
            "{regressed} regression{} judged with one run on a side (BASE): how far runs of \
             one build drift apart is unknown (a latency row assumed {:.0}% of BASE), so a \
             small change may be that drift; give --base three runs (their spread then \
             sets the margin)",
            if regressed == 1 { "" } else { "s" },
            SINGLE_RUN_SPREAD * 100.0
        )
    })
}

/// Runs on both sides.
enum Shared {
    /// Every run of each side is on the other: the comparison would say nothing.
    All(String),
    /// Some are: a warning.
    Some(String),
}

/// The note on runs that are on both sides (the same folder twice, or two globs that
/// match one run): a run compared with itself changes by nothing, so the comparison says
/// less than it seems to, or nothing at all. `None` when the sides share no run.
fn shared_runs_note(base: &[Run], new: &[Run]) -> Option<Shared> {
    let base = run_set(base);
    let new = run_set(new);
    // A copy of a run (`cp -r`) is the same run under another name: its summary, start
    // instant and all, is the same.
    let same: Vec<&PathBuf> = new
        .iter()
        .filter(|(p, s)| base.contains_key(*p) || base.values().any(|b| b == *s))
        .map(|(p, _)| p)
        .collect();
    let first = same.first()?.display();
    let count = same.len();
    let more = if count > 1 { ", …" } else { "" };
    Some(if count == new.len() && count == base.len() {
        Shared::All(format!(
            "BASE and NEW are the same run{} ({first}{more}): every change would read 0; \
             compare two different runs",
            if count == 1 { "" } else { "s" },
        ))
    } else {
        Shared::Some(format!(
            "{count} run{} on both sides ({first}{more}): each side's figures include the \
             other's, so a change between them reads smaller than it is",
            if count == 1 { " is" } else { "s are" },
        ))
    })
}

/// One side's runs by real path (the same run however it was named:
/// `results/x/run-1`, `./results/x/run-1/`, named twice), with their summaries.
fn run_set(runs: &[Run]) -> std::collections::BTreeMap<PathBuf, &crate::results::Summary> {
    runs.iter()
        .map(|r| {
            let real = std::fs::canonicalize(&r.path).unwrap_or_else(|_| r.path.clone());
            (real, &r.summary)
        })
        .collect()
}

/// The phase `name` when exactly one side has samples of it, with the `--tolerance-for`
/// key that names it (the phase, or one of its statistics).
fn one_sided(name: &str, (base, new): (&Hist, &Hist), opts: &CompareOptions) -> Option<Missing> {
    let (lacking, samples) = match (base.is_empty(), new.is_empty()) {
        (false, true) => ("new", base.len()),
        (true, false) => ("base", new.len()),
        _ => return None,
    };
    let gated_by = opts
        .per_metric
        .keys()
        .find(|key| {
            key.as_str() == name
                || key
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|stat| STATS.iter().any(|s| s.name() == stat))
        })
        .cloned();
    Some(Missing {
        phase: name.to_string(),
        lacking,
        samples,
        gated_by,
    })
}

/// Refuses `--tolerance-for` keys that name a metric neither side measured (no pings, a
/// misspelled named turn, `unmet.rate` of a scenario that expects nothing): a gate that
/// cannot be checked is a mistake in the command, not a regression of the server's, and
/// the error names the metrics these runs have.
fn unmeasured_gates(
    opts: &CompareOptions,
    rows: &[Row],
    missing: &[Missing],
) -> Result<(), CompareError> {
    let unmeasured: Vec<&str> = opts
        .per_metric
        .keys()
        .filter(|key| {
            let covered_by_row = rows.iter().any(|r| r.metric == **key || r.phase == **key);
            let covered_by_missing = missing.iter().any(|m| m.gated_by.as_ref() == Some(*key));
            !covered_by_row && !covered_by_missing
        })
        .map(String::as_str)
        .collect();
    if unmeasured.is_empty() {
        return Ok(());
    }
    // The phases with rows (`turn`, `turn:ack`), then the other rows' keys.
    let mut known: Vec<&str> = Vec::new();
    for row in rows {
        let key = if row.unit == Unit::Ms {
            row.phase.as_str()
        } else {
            row.metric.as_str()
        };
        if !known.contains(&key) {
            known.push(key);
        }
    }
    known.extend(missing.iter().map(|m| m.phase.as_str()));
    Err(CompareError::UnmeasuredGate {
        keys: unmeasured.join(", "),
        known: known.join(", "),
    })
}

/// The verdict of the first of `runs` when none of them exercised the target: figures
/// that describe no server. `None` when one did (or there are none).
fn unexercised(runs: &[Run]) -> Option<RunVerdict> {
    let first = runs.first()?.summary.verdict;
    runs.iter()
        .all(|r| !r.summary.verdict.exercised())
        .then_some(first)
}

/// NEW runs whose verdict is worse than the best BASE run's: one unclean BASE run beside
/// clean ones does not excuse an unclean NEW.
fn worse_verdicts(base: &[Run], new: &[Run]) -> Vec<WorseVerdict> {
    let Some(best) = base
        .iter()
        .map(|r| r.summary.verdict)
        .max_by_key(|v| v.severity())
    else {
        return Vec::new();
    };
    let every_base = base.iter().all(|r| r.summary.verdict == best);
    new.iter()
        .filter(|r| r.summary.verdict.severity() < best.severity())
        .map(|r| WorseVerdict {
            run: r.path.clone(),
            verdict: r.summary.verdict,
            base_best: best,
            every_base,
        })
        .collect()
}

/// What one side's paths held.
struct Side {
    runs: Vec<Run>,
    /// A note on the split runs' parts it left out (see [`drop_parts`]).
    parts: Option<String>,
    /// The run folders without a `summary.json` it skipped.
    skipped: Vec<PathBuf>,
}

/// One side's runs; an error when run folders without a `summary.json` were all there was.
fn load_side(paths: &[PathBuf], side: &'static str) -> Result<Side, CompareError> {
    let mut runs = Vec::new();
    let mut skipped = FoundRuns::default();
    for path in paths {
        if !path.exists() {
            return Err(CompareError::NotFound(path.clone()));
        }
        // A run found by searching a folder (or a glob's folder) rather than named.
        let searched = !(path.is_file() || path.join("summary.json").is_file());
        let found = find_runs(path)?;
        skipped.skipped.extend(found.skipped);
        for dir in found.runs {
            let run = Run {
                summary: read_summary(&dir.join("summary.json"))?,
                histograms: read_histograms(&dir.join("histograms.json"))?,
                path: dir,
            };
            runs.push((run, searched));
        }
    }
    for dir in unreached_parts(&runs) {
        let run = Run {
            summary: read_summary(&dir.join("summary.json"))?,
            histograms: read_histograms(&dir.join("histograms.json"))?,
            path: dir,
        };
        if run.summary.shard.is_some() {
            runs.push((run, true));
        }
    }
    let (runs, note) = drop_parts(runs, side);
    if runs.is_empty() && !skipped.skipped.is_empty() {
        return Err(CompareError::NothingReadable {
            side,
            skipped: skipped.skipped_line(),
        });
    }
    if runs.is_empty() {
        return Err(CompareError::Empty(side));
    }
    Ok(Side {
        runs,
        parts: note,
        skipped: skipped.skipped,
    })
}

/// The runs in the `…-workers/` folders beside the merged runs found by searching a folder
/// that the search did not reach (a shard lies three levels down in its `…-workers/`
/// folder, `worker-i/<scenario>/<start>/`, deeper than a scenario's folder is searched),
/// so that [`drop_parts`] says it left them out whichever way the folder was named.
fn unreached_parts(runs: &[(Run, bool)]) -> Vec<PathBuf> {
    let real = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let found: std::collections::BTreeSet<PathBuf> =
        runs.iter().map(|(r, _)| real(&r.path)).collect();
    let mut folders = std::collections::BTreeSet::new();
    for (run, searched) in runs {
        if !*searched || run.summary.merged_from.is_none() {
            continue;
        }
        let Some(Ok(entries)) = run.path.parent().map(std::fs::read_dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let workers = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("-workers"));
            if workers && path.is_dir() {
                folders.insert(path);
            }
        }
    }
    folders
        .iter()
        .filter_map(|folder| run_dirs(folder).ok())
        .flatten()
        .filter(|dir| !found.contains(&real(dir)))
        .collect()
}

/// A `--workers` run keeps its shards' results in a `…-workers/` folder beside the merged
/// run, so a glob or folder that holds the merged run holds its parts too: counted as
/// runs, they would count its connections twice and widen the spread. Shards found by
/// searching a folder are left out when the side holds a merged run; a shard named on its
/// own still counts. The note says what was left out.
fn drop_parts(runs: Vec<(Run, bool)>, side: &str) -> (Vec<Run>, Option<String>) {
    let merged = runs.iter().any(|(r, _)| r.summary.merged_from.is_some());
    let (parts, kept): (Vec<_>, Vec<_>) = runs
        .into_iter()
        .partition(|(r, searched)| merged && *searched && r.summary.shard.is_some());
    let note = parts.first().map(|(first, _)| {
        // The `…-workers/` folder names them all; a hand-made layout, the first shard.
        let workers = |dir: &&std::path::Path| {
            dir.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("-workers"))
        };
        let place = first.path.ancestors().find(workers).unwrap_or(&first.path);
        format!(
            "{}: left out {} of a split run (under {}): the merged result beside them \
             holds their connections; name a shard's folder to compare it alone",
            side.to_uppercase(),
            crate::model::words::plural(parts.len() as u64, "shard"),
            place.display(),
        )
    });
    (kept.into_iter().map(|(r, _)| r).collect(), note)
}

/// Every run must be the same slice of its plan: all whole runs, or all the same shard
/// (`--shard i/n`). A shard holds some of the plan's connections, so against a whole run
/// (or another slice) every count and rate differs by the plan, not the server.
fn check_slices(base: &[Run], new: &[Run]) -> Result<(), CompareError> {
    let Some(first) = base.first() else {
        return Ok(());
    };
    let Some(other) = base
        .iter()
        .chain(new)
        .find(|r| r.summary.shard != first.summary.shard)
    else {
        return Ok(());
    };
    let slice = |r: &Run| match r.summary.shard {
        Some(shard) => format!("shard {shard} of a split run"),
        None => "a whole run".to_string(),
    };
    Err(CompareError::DifferentSlices(format!(
        "cannot compare runs of different slices of the plan: {} is {} but {} is {}; each \
         holds other connections, so every figure would differ by the plan: `stampede \
         merge` the shards of each split run first and compare the merged runs",
        first.path.display(),
        slice(first),
        other.path.display(),
        slice(other),
    )))
}

/// Warnings on runs that differ in what they planned: another seed (other connections,
/// other timings), or another number of planned connections (then the throughput row does
/// not gate, [`PLANS_DIFFER`]).
fn plan_differences(base: &[Run], new: &[Run]) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(first) = base.first() else {
        return warnings;
    };
    let all = || base.iter().chain(new);
    if let Some(other) = all().find(|r| r.summary.seed != first.summary.seed) {
        warnings.push(format!(
            "runs of different seeds: {} ran seed {} but {} ran seed {}; a seed plans the \
             connections and their timings, so part of a change may be the plan's: run both \
             builds with the same --seed",
            first.path.display(),
            first.summary.seed,
            other.path.display(),
            other.summary.seed,
        ));
    }
    let planned = first.summary.connections_planned;
    if let Some(other) = all().find(|r| r.summary.connections_planned != planned) {
        warnings.push(format!(
            "runs of different plans: {} planned {planned} connections but {} planned {}; \
             the throughput row does not gate",
            first.path.display(),
            other.path.display(),
            other.summary.connections_planned,
        ));
    }
    warnings
}

/// Every run must share the first base run's scenario hash, unless `force`.
fn check_scenarios(base: &[Run], new: &[Run], force: bool) -> Result<Option<String>, CompareError> {
    let Some(first) = base.first() else {
        return Err(CompareError::Empty("base"));
    };
    let Some(other) = base
        .iter()
        .chain(new)
        .find(|r| !r.summary.same_scenario(&first.summary))
    else {
        return Ok(None);
    };
    let message = format!(
        "cannot compare runs of different scenarios: {} ran {:?} (hash {:.12}) but {} ran {:?} (hash {:.12})",
        first.path.display(),
        first.summary.scenario,
        first.summary.scenario_hash,
        other.path.display(),
        other.summary.scenario,
        other.summary.scenario_hash,
    );
    if force {
        Ok(Some(format!("{message} (compared anyway: --force)")))
    } else {
        Err(CompareError::DifferentScenarios(message))
    }
}

fn merge(runs: &[Run]) -> Histograms {
    let mut all = Histograms::new();
    for run in runs {
        all.merge(&run.histograms);
    }
    all
}

fn warning(run: &Run) -> Option<String> {
    let s = &run.summary;
    let path = run.path.display();
    if s.generator.fell_behind {
        Some(format!(
            "{path}: the generator fell behind (lag p99 {:.1}ms); its timings are not trustworthy",
            s.generator.lag_p99_ms
        ))
    } else if s.generator.client_stalls.count > 0 {
        let stalls = &s.generator.client_stalls;
        Some(format!(
            "{path}: its client stalled {} (longest {:.0} ms); its timings include those \
             pauses",
            crate::model::words::plural(stalls.count, "time"),
            stalls.longest_ms
        ))
    } else if !s.verdict.exercised() || s.verdict == RunVerdict::Incomplete {
        // Latency of a run that never exercised the target (or did not finish) is no
        // baseline: say so beside every figure it contributes to.
        Some(format!(
            "{path}: verdict {}; its figures do not describe the target",
            s.verdict
        ))
    } else {
        None
    }
}

pub(crate) type Hist = hdrhistogram::Histogram<u64>;

/// Which latency histogram of a run a metric reads: a phase's, or a named turn's.
#[derive(Clone, Copy)]
enum Which<'a> {
    Phase(Phase),
    Turn(&'a str),
}

impl Which<'_> {
    fn of<'h>(&self, h: &'h Histograms) -> Option<&'h Hist> {
        match self {
            Which::Phase(p) => Some(h.get(*p)),
            Which::Turn(name) => h.turn(name),
        }
    }
}

/// One latency metric: `(name, phase, pick)`; a named turn judges as the `turn` phase.
/// `runs` holds each side's runs and what of NEW's client keeps its timings from being
/// judged.
/// A closed loop sends each request when the client gets to it, so its `turn_raw` (timed
/// from the send) holds the same samples as its `turn` (timed from the intended send): a
/// `turn_raw` row left unjudged for a lagging client, with the very base and new figures
/// of its `turn` row, takes that row's verdict (judged beyond the client's lag). Two rows
/// of one measurement read "REGRESSION" and "NOT JUDGED" side by side otherwise.
fn closed_loop_turn_raw(rows: &mut [Row]) {
    let turns: Vec<(String, f64, f64, Verdict, Option<ClientLag>)> = rows
        .iter()
        .filter(|r| r.phase == Phase::Turn.name())
        .map(|r| (r.stat.clone(), r.base, r.new, r.verdict, r.client_lag))
        .collect();
    for r in rows.iter_mut().filter(|r| {
        r.phase == Phase::TurnRaw.name() && r.verdict == Verdict::NotJudged(CLIENT_FELL_BEHIND)
    }) {
        let same = turns
            .iter()
            .find(|(stat, base, new, ..)| *stat == r.stat && *base == r.base && *new == r.new);
        if let Some((_, _, _, verdict, lag)) = same {
            r.verdict = *verdict;
            r.client_lag = *lag;
        }
    }
}

fn latency_row(
    (name, phase, which): (&str, Phase, Which<'_>),
    stat: LatencyStat,
    runs: &NewSide<'_>,
    merged: (&Hist, &Hist),
    opts: &CompareOptions,
) -> Row {
    let metric = format!("{name}.{}", stat.name());
    let explicit = opts
        .per_metric
        .get(&metric)
        .or_else(|| opts.per_metric.get(name));
    let tolerance = explicit.copied().unwrap_or(opts.tolerance);
    let (base, new) = (stat_ms(merged.0, stat), stat_ms(merged.1, stat));
    // BASE's drift alone: NEW's is what is tested. A BASE run whose generator fell behind
    // (flagged untrustworthy) measured its own lateness: its timings would widen the
    // margin of every row by the client's lag, hiding a slower tail; it counts in the
    // spread only when every BASE run fell behind.
    let trusted: Vec<&Run> = runs
        .base
        .iter()
        .filter(|r| !r.summary.generator.fell_behind)
        .collect();
    let spread_runs: Vec<&Run> = match trusted.is_empty() {
        true => runs.base.iter().collect(),
        false => trusted,
    };
    let per_run: Vec<f64> = spread_runs
        .iter()
        .filter_map(|r| which.of(&r.histograms))
        .map(|h| stat_ms(h, stat))
        .collect();
    let spread = spread(&per_run);
    let gate = if explicit.is_some() {
        None
    } else {
        ungated(phase, stat, merged)
    };
    // One BASE run: its drift is unknown, so it is assumed (a tail percentile of one run
    // of one build differs from another's by up to 10%, see SINGLE_RUN_SPREAD).
    let margins = Margins {
        tolerance,
        floor: LATENCY_FLOOR_MS,
        spread: spread.unwrap_or(base * SINGLE_RUN_SPREAD),
    };
    let verdict = beyond_sampling_noise(judge(new - base, base, &margins, gate), stat, merged);
    // A lagging client's lateness is in NEW's latency: a turn or a first event, timed
    // from its intended send, gates only by what it grew beyond that lag (its row carries
    // it). Every other phase (`turn_raw` too) is timed from when the client got round to
    // it, and read when it got round to that: a client too busy to keep its schedule also
    // noticed each connect, upgrade and answer late, by more than its lag (identical
    // builds read tcp_connect.p90 +267% against a 2 ms lag), so a worse one is not judged
    // at all, and no lag is said beside it.
    let from_intended = matches!(phase, Phase::Turn | Phase::FirstEvent);
    let client_lag = runs
        .lagging
        .filter(|_| from_intended)
        .map(|lagging| lagging.at(stat));
    let verdict = match client_lag {
        Some(lag) => beyond_client_lag(verdict, lag.ms, stat, (base, new), &margins, merged),
        None if runs.lagging.is_some() && verdict == Verdict::Regression => {
            Verdict::NotJudged(CLIENT_FELL_BEHIND)
        }
        None => verdict,
    };
    // A client that stalled measured its pauses (and a built-in server's) as latency: a
    // change the stalls may explain is not judged ([`Stalls::may_explain`]).
    let verdict = match (verdict, runs.stalls) {
        (Verdict::Regression | Verdict::NotJudged(_), Some(stalls))
            if stalls.may_explain(stat, new - base) =>
        {
            Verdict::NotJudged(CLIENT_STALLED)
        }
        (other, _) => other,
    };
    Row {
        verdict,
        client_lag,
        change: change(base, new),
        phase: name.to_string(),
        stat: stat.name().to_string(),
        metric,
        base,
        new,
        spread,
        tolerance,
        unit: Unit::Ms,
    }
}

fn throughput_row(base: &[Run], new: &[Run], opts: &CompareOptions) -> Row {
    let tolerance = opts
        .per_metric
        .get(THROUGHPUT)
        .copied()
        .unwrap_or(opts.tolerance);
    let values =
        |side: &[Run]| -> Vec<f64> { side.iter().map(|r| r.summary.received_per_sec).collect() };
    let (b, n) = (values(base), values(new));
    let (base_rate, new_rate) = (mean(&b), mean(&n));
    let spread = spread(&b);
    let margins = Margins {
        tolerance,
        floor: THROUGHPUT_FLOOR,
        spread: spread.unwrap_or(0.0),
    };
    // Runs of different plans send different loads: their rates say nothing of the server.
    let planned = |r: &Run| r.summary.connections_planned;
    let plans_differ = base
        .iter()
        .chain(new)
        .any(|r| base.first().is_some_and(|f| planned(f) != planned(r)));
    let gate = plans_differ.then_some(PLANS_DIFFER);
    // A merge's warnings all say its time, and every rate over it, is not one run's.
    let partial = base
        .iter()
        .chain(new)
        .any(|r| r.summary.merged_from.is_some() && !r.summary.warnings.is_empty());
    let (base, new) = (base_rate, new_rate);
    let verdict = match judge(base - new, base, &margins, gate) {
        Verdict::Regression | Verdict::WorseUngated(_) if partial => {
            Verdict::NotJudged(RATES_PARTIAL)
        }
        Verdict::Improved | Verdict::BetterUngated(_) if partial => {
            Verdict::BetterUngated(RATES_PARTIAL)
        }
        v => v,
    };
    Row {
        metric: THROUGHPUT.to_string(),
        phase: "throughput".to_string(),
        stat: "recv/s".to_string(),
        verdict,
        change: change(base, new),
        base,
        new,
        spread,
        tolerance,
        unit: Unit::PerSec,
        client_lag: None,
    }
}

#[cfg(test)]
mod tests;
