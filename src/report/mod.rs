//! The run summary: built from the swarm's output, written to `results/`, printed as a table.

pub mod compare;
#[cfg(test)]
mod fixture;
pub mod html;
mod junit;
pub mod progress;
pub mod read;
mod text;
pub mod thresholds;
mod write;

pub use compare::{compare, render_comparison, CompareError, CompareOptions, Comparison};
pub use html::{render_html, HtmlError};
pub use junit::junit;
pub use progress::Progress;
pub use read::{read_run, ReadError, RunData};
pub use text::render;
pub use thresholds::{evaluate, ThresholdResult};
pub use write::{results_dir, write_all, write_atomic, WriteError};

use crate::metrics::{Counters, Histograms, Phase, PhaseStats};
use crate::oracle::Violation;
use crate::plan::Plan;
use crate::swarm::SwarmOutput;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped whenever a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;
/// Violations listed in the summary; all of them go to `violations.jsonl`.
const SUMMARY_VIOLATIONS: usize = 100;
/// Generator lag p99 above this means the load generator could not keep its schedule.
const LAG_LIMIT_MS: f64 = 5.0;

/// Everything `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    pub tool_version: String,
    pub scenario: String,
    pub scenario_hash: String,
    pub seed: u64,
    pub plan_hash: String,
    pub target: String,
    pub embedded_target: bool,
    pub started_at: String,
    pub elapsed_ms: f64,
    pub duration_ms: f64,
    /// `completed`, `duration` (hard stop reached) or `interrupted` (Ctrl-C).
    pub stopped: String,
    pub connections_planned: usize,
    pub counters: CounterSummary,
    pub phases: BTreeMap<String, PhaseStats>,
    pub events: BTreeMap<String, EventRate>,
    pub violations: ViolationSummary,
    pub generator: GeneratorSummary,
    /// `clean`, `violations`, or `inconclusive` (the race the scenario aims at never
    /// happened: e.g. tokens shared by several connections whose handshakes never overlapped).
    #[serde(default)]
    pub verdict: String,
    #[serde(default)]
    pub coverage: crate::oracle::session::Coverage,
    /// The probe phase: tokens reconnected after the run, and how many were refused.
    #[serde(default)]
    pub probe: ProbeSummary,
    /// Collide barriers: how tightly each released its connections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub barriers: Vec<crate::swarm::BarrierStats>,
}

/// Counters with causes as readable keys (`http_409`, `server_close_1011`, `reset`...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterSummary {
    pub attempted: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub failed: u64,
    pub refused_by: BTreeMap<String, u64>,
    pub ended_by: BTreeMap<String, u64>,
    pub messages_sent: u64,
    /// Open-model sends that left more than 5 ms after their intended time (their latency
    /// still counts from the intended time).
    #[serde(default)]
    pub late_sends: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
    pub received_per_sec: f64,
    pub non_json_frames: u64,
    pub binary_frames: u64,
    pub expectations: u64,
    pub expectations_met: u64,
    pub expectations_errored: u64,
    pub expectations_cut: u64,
    pub buffer_overflows: u64,
    pub task_failures: u64,
}

/// Tokens reconnected after the run; a refusal is a leaked session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSummary {
    pub tokens: usize,
    pub refused: usize,
}

/// The "event success rate" for one event type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EventRate {
    pub expected: u64,
    pub arrived: u64,
    pub rate: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ViolationSummary {
    pub total: u64,
    pub by_oracle: BTreeMap<String, u64>,
    /// The first violations by time; the full list is in `violations.jsonl`.
    pub first: Vec<Violation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorSummary {
    pub lag_p50_ms: f64,
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
    /// True when lag p99 exceeded the limit: timings in this run are not trustworthy.
    pub fell_behind: bool,
}

/// What the summary is built from besides the swarm output.
pub struct RunInfo<'a> {
    pub plan: &'a Plan,
    pub target: &'a str,
    pub embedded_target: bool,
    pub started_at: String,
}

/// The merged results of a run, before formatting.
pub struct Results {
    pub summary: Summary,
    pub histograms: Histograms,
    pub violations: Vec<Violation>,
    /// The time series (`intervals.json`).
    pub intervals: crate::metrics::IntervalSeries,
}

/// Merges every connection's report into one summary.
pub fn build(info: &RunInfo<'_>, out: SwarmOutput) -> Results {
    let mut counters = Counters::default();
    let mut violations = crate::oracle::session::check(info.plan, &out.reports, &out.probes);
    let coverage = crate::oracle::session::coverage(info.plan, &out.reports);
    for v in &violations {
        *counters
            .violations
            .entry(v.oracle.name().to_string())
            .or_default() += 1;
    }
    for r in out.reports {
        counters.merge(&r.counters);
        violations.extend(r.violations);
    }
    violations.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    let elapsed_s = out.elapsed.as_secs_f64().max(1e-9);
    let stopped = if out.interrupted {
        "interrupted"
    } else if out.hit_duration {
        "duration"
    } else {
        "completed"
    };
    let lag = PhaseStats::of(out.histograms.get(Phase::GeneratorLag));
    let mut summary = Summary {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: info.plan.scenario.clone(),
        scenario_hash: info.plan.scenario_hash.clone(),
        seed: info.plan.seed,
        plan_hash: info.plan.hash(),
        target: info.target.to_string(),
        embedded_target: info.embedded_target,
        started_at: info.started_at.clone(),
        elapsed_ms: out.elapsed.as_secs_f64() * 1000.0,
        duration_ms: info.plan.duration.as_secs_f64() * 1000.0,
        stopped: stopped.to_string(),
        connections_planned: info.plan.conns.len(),
        counters: counter_summary(&counters, elapsed_s, out.task_failures),
        phases: Phase::ALL
            .iter()
            .filter(|p| !out.histograms.get(**p).is_empty())
            .map(|p| (p.name().to_string(), PhaseStats::of(out.histograms.get(*p))))
            .collect(),
        events: counters
            .events
            .iter()
            .map(|(k, t)| (k.clone(), event_rate(t.expected, t.arrived)))
            .collect(),
        violations: ViolationSummary {
            total: counters.total_violations(),
            by_oracle: counters.violations.clone(),
            first: violations
                .iter()
                .take(SUMMARY_VIOLATIONS)
                .cloned()
                .collect(),
        },
        barriers: out.barriers.clone(),
        verdict: String::new(),
        coverage,
        probe: ProbeSummary {
            tokens: out.probes.len(),
            refused: out.probes.iter().filter(|p| !p.accepted).count(),
        },
        generator: GeneratorSummary {
            lag_p50_ms: lag.p50_ms,
            lag_p99_ms: lag.p99_ms,
            lag_max_ms: lag.max_ms,
            fell_behind: lag.p99_ms > LAG_LIMIT_MS,
        },
    };
    summary.verdict = verdict(&summary, &coverage).to_string();
    Results {
        summary,
        histograms: out.histograms,
        violations,
        intervals: out.intervals,
    }
}

/// `violations` beats `inconclusive` beats `clean`.
fn verdict(summary: &Summary, coverage: &crate::oracle::session::Coverage) -> &'static str {
    if summary.violations.total > 0 {
        "violations"
    } else if coverage.inconclusive() {
        "inconclusive"
    } else {
        "clean"
    }
}

fn counter_summary(c: &Counters, elapsed_s: f64, task_failures: u64) -> CounterSummary {
    let keyed = |m: &BTreeMap<crate::metrics::Cause, u64>| {
        m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    CounterSummary {
        attempted: c.attempted,
        accepted: c.accepted,
        rejected: c.rejected,
        failed: c.failed,
        refused_by: keyed(&c.refused_by),
        ended_by: keyed(&c.ended_by),
        messages_sent: c.messages_sent,
        late_sends: c.late_sends,
        messages_received: c.messages_received,
        bytes_received: c.bytes_received,
        received_per_sec: c.messages_received as f64 / elapsed_s,
        non_json_frames: c.non_json,
        binary_frames: c.binary_frames,
        expectations: c.expectations,
        expectations_met: c.expectations_met,
        expectations_errored: c.expectations_errored,
        expectations_cut: c.expectations_cut,
        buffer_overflows: c.buffer_overflows,
        task_failures,
    }
}

fn event_rate(expected: u64, arrived: u64) -> EventRate {
    let rate = if expected == 0 {
        1.0
    } else {
        arrived as f64 / expected as f64
    };
    EventRate {
        expected,
        arrived,
        rate,
    }
}
