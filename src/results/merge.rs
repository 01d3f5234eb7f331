//! Combining the results of several runs of one (scenario, seed), e.g. the shards of a run
//! spread over processes or machines (`--shard i/n`), into one result, exactly: counters
//! add, HdrHistograms merge (so every percentile is recomputed, not averaged), violations
//! and lenient acceptances are pooled, and the verdict is the worst of the parts.

use super::read::{IntervalPoint, Intervals, RunData};
use super::{
    EventRate, GeneratorSummary, LenientSummary, ProbeSummary, Summary, ViolationSummary,
    LAG_LIMIT_MS, MAX_ANSWERS, SCHEMA_VERSION, SUMMARY_VIOLATIONS,
};
use crate::metrics::{Histograms, PhaseStats};
use crate::model::{Counters, Phase, StopReason, Verdict, Violation};
use std::collections::{BTreeMap, BTreeSet};

/// Why runs cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    #[error(
        "{path} is a run of {what} {theirs}, the others of {ours}: only runs of one scenario \
         and seed merge"
    )]
    Mismatch {
        path: String,
        what: &'static str,
        ours: String,
        theirs: String,
    },
    #[error("{path} holds shard {shard}, which another run already holds")]
    DuplicateShard { path: String, shard: String },
}

/// One merged result: what `write_merged` writes.
#[derive(Debug, Clone)]
pub struct MergedRun {
    pub summary: Summary,
    pub histograms: Histograms,
    pub violations: Vec<Violation>,
    pub intervals: Option<Intervals>,
    /// Shards missing from a sharded set (their connections are not in the result).
    pub missing_shards: Vec<u32>,
}

/// Merges `runs` (all of one scenario and seed; shards distinct).
pub fn merge(runs: &[RunData]) -> Result<MergedRun, MergeError> {
    let first = runs.first().ok_or(MergeError::Empty)?;
    check_compatible(runs)?;
    let mut counters = Counters::default();
    let mut histograms = Histograms::new();
    let mut violations: Vec<Violation> = Vec::new();
    let mut summary = first.summary.clone();
    summary.violations = ViolationSummary::default();
    let mut lenient = Vec::new();
    let mut answers = Vec::new();
    let mut oracles = BTreeSet::new();
    for run in runs {
        let s = &run.summary;
        counters.merge(&s.counters);
        histograms.merge(&run.histograms);
        violations.extend(run.violations.iter().cloned());
        for (oracle, n) in &s.violations.by_oracle {
            *summary.violations.by_oracle.entry(*oracle).or_default() += n;
        }
        summary.violations.total += s.violations.total;
        lenient.extend(s.lenient.first.iter().cloned());
        for a in &s.answers {
            if answers.len() < MAX_ANSWERS
                && !answers
                    .iter()
                    .any(|k: &crate::model::Answer| k.cause == a.cause)
            {
                answers.push(a.clone());
            }
        }
        oracles.extend(s.oracles.iter().copied());
    }
    violations.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    summary.violations.first = violations
        .iter()
        .take(SUMMARY_VIOLATIONS)
        .cloned()
        .collect();
    summary.lenient = merged_lenient(runs, &mut lenient);
    summary.answers = answers;
    summary.oracles = oracles.into_iter().collect();
    fill_totals(&mut summary, runs, &counters, &histograms);
    summary.counters = counters;
    let worst = Verdict::worst(runs.iter().map(|r| r.summary.verdict)).unwrap_or_default();
    summary.verdict = worst;
    summary.hint = runs
        .iter()
        .find(|r| r.summary.verdict == worst)
        .and_then(|r| r.summary.hint.clone());
    Ok(MergedRun {
        missing_shards: missing_shards(runs),
        summary,
        histograms,
        violations,
        intervals: merged_intervals(runs),
    })
}

/// Every run must be of the same scenario (hash) and seed, and shards must not repeat.
fn check_compatible(runs: &[RunData]) -> Result<(), MergeError> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let mut shards = BTreeSet::new();
    for run in runs {
        let path = run.dir.display().to_string();
        let s = &run.summary;
        let mismatch = |what, ours: String, theirs: String| MergeError::Mismatch {
            path: path.clone(),
            what,
            ours,
            theirs,
        };
        if s.scenario_hash != first.summary.scenario_hash {
            return Err(mismatch(
                "scenario",
                first.summary.scenario.clone(),
                s.scenario.clone(),
            ));
        }
        if s.seed != first.summary.seed {
            return Err(mismatch(
                "seed",
                first.summary.seed.to_string(),
                s.seed.to_string(),
            ));
        }
        if let Some(shard) = s.shard {
            if !shards.insert((shard.index, shard.count)) {
                return Err(MergeError::DuplicateShard {
                    path,
                    shard: shard.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Figures recomputed from the merged parts: phases from the merged histograms, rates
/// over the longest part, the generator's lag, sums of probes and planned connections.
fn fill_totals(s: &mut Summary, runs: &[RunData], c: &Counters, h: &Histograms) {
    s.schema_version = SCHEMA_VERSION;
    s.elapsed_ms = runs
        .iter()
        .map(|r| r.summary.elapsed_ms)
        .fold(0.0, f64::max);
    s.connections_planned = runs.iter().map(|r| r.summary.connections_planned).sum();
    s.stopped = runs
        .iter()
        .map(|r| r.summary.stopped)
        .max_by_key(|s| match s {
            StopReason::Completed => 0,
            StopReason::Duration => 1,
            StopReason::Interrupted => 2,
        })
        .unwrap_or_default();
    s.received_per_sec = c.messages_received as f64 / (s.elapsed_ms / 1000.0).max(1e-9);
    s.phases = Phase::ALL
        .iter()
        .filter(|p| !h.get(**p).is_empty())
        .map(|p| (p.name().to_string(), PhaseStats::of(h.get(*p))))
        .collect();
    s.events = c
        .expect
        .events
        .iter()
        .map(|(k, t)| {
            let rate = if t.expected == 0 {
                1.0
            } else {
                t.arrived as f64 / t.expected as f64
            };
            let r = EventRate {
                expected: t.expected,
                arrived: t.arrived,
                rate,
            };
            (k.clone(), r)
        })
        .collect();
    let lag = PhaseStats::of(h.get(Phase::GeneratorLag));
    s.generator = GeneratorSummary {
        lag_p50_ms: lag.p50_ms,
        lag_p99_ms: lag.p99_ms,
        lag_max_ms: lag.max_ms,
        fell_behind: lag.p99_ms > LAG_LIMIT_MS,
    };
    s.probe = runs.iter().fold(ProbeSummary::default(), |mut p, r| {
        p.tokens += r.summary.probe.tokens;
        p.refused += r.summary.probe.refused;
        p.inconclusive += r.summary.probe.inconclusive;
        p
    });
    s.coverage.shared_tokens = runs.iter().map(|r| r.summary.coverage.shared_tokens).sum();
    s.coverage.overlapping_tokens = runs
        .iter()
        .map(|r| r.summary.coverage.overlapping_tokens)
        .sum();
    s.barriers = runs
        .iter()
        .flat_map(|r| r.summary.barriers.iter().cloned())
        .collect();
    // Thresholds were checked on each part; the parts' results say nothing about the
    // whole, so they are dropped (`stampede merge --scenario FILE` checks them again).
    s.thresholds = Vec::new();
    s.shard = None;
    s.merged_from = Some(runs.len());
    s.plan_hash = if runs.len() == 1 {
        s.plan_hash.clone()
    } else {
        String::new()
    };
}

fn merged_lenient(
    runs: &[RunData],
    first: &mut [crate::model::LenientAcceptance],
) -> LenientSummary {
    let mut by_entry: BTreeMap<String, u64> = BTreeMap::new();
    for r in runs {
        for (entry, n) in &r.summary.lenient.by_entry {
            *by_entry.entry(entry.clone()).or_default() += n;
        }
    }
    first.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    LenientSummary {
        total: runs.iter().map(|r| r.summary.lenient.total).sum(),
        by_entry,
        first: first.iter().take(20).cloned().collect(),
    }
}

/// The shards of the set's count that no run holds.
fn missing_shards(runs: &[RunData]) -> Vec<u32> {
    let Some(count) = runs.iter().find_map(|r| r.summary.shard.map(|s| s.count)) else {
        return Vec::new();
    };
    let held: BTreeSet<u32> = runs
        .iter()
        .filter_map(|r| r.summary.shard.map(|s| s.index))
        .collect();
    (0..count).filter(|i| !held.contains(i)).collect()
}

/// Interval series added point by point (each part's intervals count from its own start,
/// which for parallel shards is the same instant give or take the process start).
fn merged_intervals(runs: &[RunData]) -> Option<Intervals> {
    let parts: Vec<&Intervals> = runs.iter().filter_map(|r| r.intervals.as_ref()).collect();
    let first = parts.first()?;
    let len = parts.iter().map(|p| p.series.len()).max().unwrap_or(0);
    let mut series: Vec<IntervalPoint> = Vec::with_capacity(len);
    for i in 0..len {
        let points: Vec<&IntervalPoint> = parts.iter().filter_map(|p| p.series.get(i)).collect();
        let Some(base) = points.first() else { continue };
        let mut point = (*base).clone();
        point.sent = points.iter().map(|p| p.sent).sum();
        point.received = points.iter().map(|p| p.received).sum();
        point.violations = points.iter().map(|p| p.violations).sum();
        point.live = points.iter().map(|p| p.live).sum();
        point.turn_p99_ms = points
            .iter()
            .filter_map(|p| p.turn_p99_ms)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        series.push(point);
    }
    Some(Intervals {
        interval_ms: first.interval_ms,
        series,
    })
}
