//! `stampede compare`: per-phase latency and throughput of two sets of runs, side by side.
//!
//! Each side's histograms are merged losslessly (the same samples, in one histogram), so
//! percentiles of several runs are real percentiles, not averages of percentiles. A row is
//! a regression when NEW is worse than BASE by more than all of: the tolerance, the noise
//! floor ([`LATENCY_FLOOR_MS`], [`THROUGHPUT_FLOOR`]) and the run-to-run spread (the widest
//! max − min of that value across either side's runs, when a side has two or more), and
//! when the percentile's sampling uncertainty cannot explain it: NEW's lower confidence
//! bound must lie above BASE's upper one (the bounds are the percentiles at
//! q ± z·√(q(1−q)/n), the usual order-statistic interval). A worse row that fails only that
//! test is shown as "within sampling noise". That interval assumes independent samples,
//! which a tail made of a few stalls is not, so a percentile also needs
//! [`MIN_TAIL_SAMPLES`] beyond it on each side to gate. `max` (one sample), thin tails and
//! the generator's own lag are shown but gate nothing unless a `--tolerance-for` names them.
//! The error rows ([`errors`]) compare how often connections and expectations failed and
//! how many violations the oracles found, and gate as the others do.
//!
//! A NEW run whose generator fell behind measured its own lateness with the server's: a
//! latency row gates only by as much as it grew beyond that lag ([`ClientLag`]), and the
//! throughput row (the load such a client managed to send) is not judged.

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

/// Latency differences below this are noise on any machine.
pub const LATENCY_FLOOR_MS: f64 = 0.05;
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
    /// error row's key (`errors.rate`, `unmet.rate`, `violations`).
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

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("no {0} runs given")]
    Empty(&'static str),
    /// The runs' scenario hashes differ (and `force` was not given).
    #[error("{0}; pass --force to compare anyway")]
    DifferentScenarios(String),
    #[error("bad pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
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
    /// NEW runs whose verdict is not clean while every BASE run's was.
    pub worse_verdicts: Vec<WorseVerdict>,
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
    /// The side without a single sample of it: `"base"`, `"new"`, or `"both"` (a
    /// `--tolerance-for` names a phase neither side measured).
    pub lacking: &'static str,
    /// How many samples the other side has.
    pub samples: u64,
    /// The `--tolerance-for` key that names this phase, if any: a gate that cannot be
    /// checked fails the comparison.
    pub gated_by: Option<String>,
}

/// A NEW run that ended with a worse verdict than the BASE runs (all clean).
#[derive(Debug, Clone, PartialEq)]
pub struct WorseVerdict {
    /// The NEW run's result directory.
    pub run: PathBuf,
    /// Its verdict (never clean).
    pub verdict: RunVerdict,
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
    /// Widest run-to-run range on either side; `None` with a single run per side.
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
    /// is [`Verdict::NotJudged`] or a NEW run ended `client_limited` where every BASE run
    /// was clean. Not a pass (the client's lag hid whatever the server did) and not a
    /// regression (the server is not shown to be slower).
    pub fn not_judged(&self) -> bool {
        !self.regressed()
            && (self.not_judged_rows().next().is_some()
                || self.worse_verdicts.iter().any(WorseVerdict::client_limited)
                || self.base_unexercised.is_some())
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
    let Side {
        runs: base,
        parts: base_parts,
        mut skipped,
    } = load_side(base, "base")?;
    let Side {
        runs: new,
        parts: new_parts,
        skipped: new_skipped,
    } = load_side(new, "new")?;
    skipped.extend(new_skipped);
    // A folder given as both BASE and NEW skips its stopped runs once.
    skipped.sort();
    skipped.dedup();
    let forced = check_scenarios(&base, &new, opts.force)?;
    let (merged_base, merged_new) = (merge(&base), merge(&new));
    let lagging = Lagging::of(&new);
    let sides = (base.as_slice(), new.as_slice(), lagging.as_ref());
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for phase in Phase::ALL {
        let (b, n) = (merged_base.get(phase), merged_new.get(phase));
        if b.is_empty() || n.is_empty() {
            missing.extend(one_sided(phase.name(), (b, n), opts));
            continue;
        }
        for stat in STATS {
            let metric = (phase.name(), phase, Which::Phase(phase));
            rows.push(latency_row(metric, stat, sides, (b, n), opts));
        }
    }
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
        for stat in STATS {
            let metric = (label.as_str(), Phase::Turn, Which::Turn(&name));
            rows.push(latency_row(metric, stat, sides, (b, n), opts));
        }
    }
    let mut throughput = throughput_row(&base, &new, opts);
    if lagging.is_some() && throughput.verdict == Verdict::Regression {
        // A client that fell behind sent less than the plan, whatever the server did.
        throughput.verdict = Verdict::NotJudged(CLIENT_FELL_BEHIND);
    }
    rows.push(throughput);
    rows.extend(errors::error_rows(&base, &new, opts));
    missing.extend(unmeasured_gates(opts, &rows, &missing));
    let scenario = base
        .first()
        .map(|r| r.summary.scenario.clone())
        .unwrap_or_default();
    let mut warnings: Vec<String> = base_parts.into_iter().chain(new_parts).collect();
    warnings.extend(base.iter().chain(&new).filter_map(warning));
    warnings.extend(single_run_note(base.len(), new.len(), &rows));
    warnings.extend(shared_runs_note(&base, &new));
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
    })
}

/// The note on regressions judged with one run on a side: how far two runs of one build
/// drift apart (a busy machine, a colder cache) is then unknown, so nothing weighs the
/// change against it, and a small one may be that drift. `None` with several runs each
/// side, or no latency or throughput regression.
fn single_run_note(base: usize, new: usize, rows: &[Row]) -> Option<String> {
    let regressed = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Regression)
        .count();
    (regressed > 0 && base.min(new) < 2).then(|| {
        format!(
            "{regressed} regression{} judged with one run on a side: how far runs of one \
             build drift apart is unknown, so a small change may be that drift; give \
             --base and --new three runs each (their spread then widens the margin)",
            if regressed == 1 { "" } else { "s" }
        )
    })
}

/// The note on runs that are on both sides (the same folder twice, or two globs that
/// match one run): a run compared with itself changes by nothing, so the comparison says
/// less than it seems to, or nothing at all. `None` when the sides share no run.
fn shared_runs_note(base: &[Run], new: &[Run]) -> Option<String> {
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
        format!(
            "BASE and NEW are the same run{} ({first}{more}): every change reads 0; compare \
             two different runs",
            if count == 1 { "" } else { "s" },
        )
    } else {
        format!(
            "{count} run{} on both sides ({first}{more}): each side's figures include the \
             other's, so a change between them reads smaller than it is",
            if count == 1 { " is" } else { "s are" },
        )
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

/// The `--tolerance-for` keys that name a phase neither side measured (no pings, a named
/// turn misspelled): a gate that cannot be checked fails, as a one-sided one does, rather
/// than passing in silence.
fn unmeasured_gates(opts: &CompareOptions, rows: &[Row], missing: &[Missing]) -> Vec<Missing> {
    opts.per_metric
        .keys()
        .filter(|key| {
            let covered_by_row = rows.iter().any(|r| r.metric == **key || r.phase == **key);
            let covered_by_missing = missing.iter().any(|m| m.gated_by.as_ref() == Some(*key));
            !covered_by_row && !covered_by_missing
        })
        .map(|key| {
            let phase = match key.rsplit_once('.') {
                Some((phase, stat)) if STATS.iter().any(|s| s.name() == stat) => phase,
                _ => key.as_str(),
            };
            Missing {
                phase: phase.to_string(),
                lacking: "both",
                samples: 0,
                gated_by: Some(key.clone()),
            }
        })
        .collect()
}

/// NEW runs that did not end clean, when every BASE run did.
/// The verdict of the first of `runs` when none of them exercised the target: figures
/// that describe no server. `None` when one did (or there are none).
fn unexercised(runs: &[Run]) -> Option<RunVerdict> {
    let first = runs.first()?.summary.verdict;
    runs.iter()
        .all(|r| !r.summary.verdict.exercised())
        .then_some(first)
}

fn worse_verdicts(base: &[Run], new: &[Run]) -> Vec<WorseVerdict> {
    if base.iter().any(|r| r.summary.verdict != RunVerdict::Clean) {
        return Vec::new();
    }
    new.iter()
        .filter(|r| r.summary.verdict != RunVerdict::Clean)
        .map(|r| WorseVerdict {
            run: r.path.clone(),
            verdict: r.summary.verdict,
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

/// Every run must share the first base run's scenario hash, unless `force`.
fn check_scenarios(base: &[Run], new: &[Run], force: bool) -> Result<Option<String>, CompareError> {
    let Some(first) = base.first() else {
        return Err(CompareError::Empty("base"));
    };
    let Some(other) = base
        .iter()
        .chain(new)
        .find(|r| r.summary.scenario_hash != first.summary.scenario_hash)
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
    } else if s.stopped == StopReason::Interrupted {
        Some(format!(
            "{path}: the run was interrupted; its results are partial"
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
/// `runs` holds each side's runs and the lag of NEW's that fell behind, if any.
fn latency_row(
    (name, phase, which): (&str, Phase, Which<'_>),
    stat: LatencyStat,
    runs: (&[Run], &[Run], Option<&Lagging>),
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
    let per_run = |side: &[Run]| -> Vec<f64> {
        side.iter()
            .filter_map(|r| which.of(&r.histograms))
            .map(|h| stat_ms(h, stat))
            .collect()
    };
    let spread = spread(&per_run(runs.0), &per_run(runs.1));
    let gate = if explicit.is_some() {
        None
    } else {
        ungated(phase, stat, merged)
    };
    let margins = Margins {
        tolerance,
        floor: LATENCY_FLOOR_MS,
        spread: spread.unwrap_or(0.0),
    };
    let verdict = beyond_sampling_noise(judge(new - base, base, &margins, gate), stat, merged);
    let client_lag = runs.2.map(|lagging| lagging.at(stat));
    // A lagging client's lateness is in NEW's latency: the row gates only by what it
    // grew beyond that.
    let verdict = match client_lag {
        Some(lag) => beyond_client_lag(verdict, lag.ms, stat, (base, new), &margins, merged),
        None => verdict,
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
    let (base, new) = (mean(&b), mean(&n));
    let spread = spread(&b, &n);
    let margins = Margins {
        tolerance,
        floor: THROUGHPUT_FLOOR,
        spread: spread.unwrap_or(0.0),
    };
    Row {
        metric: THROUGHPUT.to_string(),
        phase: "throughput".to_string(),
        stat: "recv/s".to_string(),
        verdict: judge(base - new, base, &margins, None),
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
