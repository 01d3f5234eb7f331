//! Evaluating a scenario's `[thresholds]` against a run's summary.
//!
//! A threshold whose metric has no data (no samples in the phase, nothing attempted, an
//! event never expected) counts as breached: a nightly job must not pass because the thing
//! it measures never happened.

use super::Summary;
use crate::model::{MetricUnit, Threshold, ThresholdMetric, ThresholdOp};

/// The verdict on one threshold (in `summary.json` as `thresholds`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThresholdResult {
    /// The canonical metric key, e.g. `turn.p99`.
    pub metric: String,
    pub op: ThresholdOp,
    /// The limit in the metric's unit (ms, fraction, count, per second).
    pub limit: f64,
    /// The condition as written, e.g. `< 2s`.
    pub condition: String,
    /// The measured value in the metric's unit; `None` when there was nothing to measure.
    pub actual: Option<f64>,
    /// Whether the threshold held: never in a run that could not judge it (`judged`).
    pub passed: bool,
    /// `false` in a run that could not exercise its target (unusable, misconfigured,
    /// client-limited, unreadable: [`Verdict::exercised`](crate::model::Verdict::exercised)):
    /// each threshold there would read as breached for want of data beside a verdict that
    /// names the cause, so the reports show it as not judged (JUnit: skipped) and no count
    /// of breaches takes it. Absent in files written before it existed: judged.
    #[serde(default = "judged_by_default")]
    pub judged: bool,
    /// One line, e.g. `turn.p99 = 2.31s, limit < 2s: BREACHED`, or `errored.rate: not
    /// judged, the run could not exercise the target (auth_misconfigured)`.
    pub message: String,
}

fn judged_by_default() -> bool {
    true
}

impl ThresholdResult {
    /// Judged and not held: what fails a clean run and what reports count as breached.
    pub fn breached(&self) -> bool {
        self.judged && !self.passed
    }
}

/// Checks every threshold, in order.
pub fn evaluate(summary: &Summary, thresholds: &[Threshold]) -> Vec<ThresholdResult> {
    thresholds.iter().map(|t| check(summary, t)).collect()
}

/// [`evaluate`], but nothing for a run stopped before its load started (Ctrl-C during
/// calibration): it measured nothing, and each threshold would read as breached for want
/// of samples beside a verdict that says nothing was exercised.
pub fn judged_thresholds(summary: &Summary, thresholds: &[Threshold]) -> Vec<ThresholdResult> {
    let before_load =
        summary.stopped == crate::model::StopReason::Interrupted && summary.counters.attempted == 0;
    if before_load {
        return Vec::new();
    }
    evaluate(summary, thresholds)
}

/// The results that failed (judged and not held).
pub fn breaches(results: &[ThresholdResult]) -> impl Iterator<Item = &ThresholdResult> {
    results.iter().filter(|r| r.breached())
}

fn check(summary: &Summary, t: &Threshold) -> ThresholdResult {
    let actual = measure(summary, &t.metric);
    let judged = summary.verdict.exercised();
    let passed = judged && actual.is_some_and(|v| t.op.holds(v, t.limit));
    let message = if judged {
        let shown = actual.map_or_else(
            || no_data(&t.metric).to_string(),
            |v| format_value(t.metric.unit(), v),
        );
        let verdict = if passed { "ok" } else { "BREACHED" };
        format!("{} = {shown}, limit {}: {verdict}", t.metric, t.text)
    } else {
        format!(
            "{} {}: not judged, the run could not exercise the target ({})",
            t.metric,
            t.text,
            summary.verdict.name()
        )
    };
    ThresholdResult {
        metric: t.metric.to_string(),
        op: t.op,
        limit: t.limit,
        condition: t.text.clone(),
        actual,
        passed,
        judged,
        message,
    }
}

/// The metric's value in its unit, or `None` when the run has no data for it.
pub fn measure(s: &Summary, metric: &ThresholdMetric) -> Option<f64> {
    let c = &s.counters;
    let of_attempted = |n: u64| (c.attempted > 0).then(|| n as f64 / c.attempted as f64);
    match metric {
        ThresholdMetric::Latency { phase, stat } => {
            let p = s.phases.get(phase.name()).filter(|p| p.count > 0)?;
            Some(match stat {
                crate::model::LatencyStat::P50 => p.p50_ms,
                crate::model::LatencyStat::P90 => p.p90_ms,
                crate::model::LatencyStat::P99 => p.p99_ms,
                crate::model::LatencyStat::P999 => p.p999_ms,
                crate::model::LatencyStat::Max => p.max_ms,
                crate::model::LatencyStat::Mean => p.mean_ms,
            })
        }
        ThresholdMetric::ErrorRate => of_attempted(c.rejected + c.failed),
        ThresholdMetric::RejectedRate => of_attempted(c.rejected),
        ThresholdMetric::FailedRate => of_attempted(c.failed),
        ThresholdMetric::ShedRate => of_attempted(c.shed + c.shed_after_acceptance),
        ThresholdMetric::ErroredRate => {
            let e = &c.expect;
            let judged = e
                .expectations
                .saturating_sub(e.expectations_cut)
                .saturating_sub(e.expectations_refused);
            (judged > 0).then(|| e.expectations_errored as f64 / judged as f64)
        }
        ThresholdMetric::Violations => Some(s.violations_found(None) as f64),
        ThresholdMetric::OracleViolations { oracle } => {
            Some(s.violations_found(Some(*oracle)) as f64)
        }
        ThresholdMetric::UnreadFrames => Some((c.non_json + c.binary_frames) as f64),
        ThresholdMetric::LenientAcceptances => Some(s.lenient.total as f64),
        ThresholdMetric::ReceivedPerSec => Some(s.received_per_sec),
        ThresholdMetric::SentPerSec => {
            (s.elapsed_ms > 0.0).then(|| c.messages_sent as f64 / (s.elapsed_ms / 1000.0))
        }
        ThresholdMetric::EventRate { event } => s
            .events
            .get(event)
            .filter(|e| e.expected > 0)
            .map(|e| e.rate),
    }
}

fn no_data(metric: &ThresholdMetric) -> &'static str {
    match metric {
        ThresholdMetric::Latency { .. } => "no samples",
        ThresholdMetric::EventRate { .. } => "never expected",
        ThresholdMetric::ErroredRate => "no expectation judged",
        _ => "no connections attempted",
    }
}

/// A value in its unit, for messages: `2.31s`, `850µs`, `0.05%`, `3`, `120.5/s`.
pub fn format_value(unit: MetricUnit, v: f64) -> String {
    match unit {
        MetricUnit::Millis => format_ms(v),
        MetricUnit::Fraction => format!("{}%", trim_decimals(v * 100.0, 3)),
        MetricUnit::Count => format!("{v:.0}"),
        MetricUnit::PerSec => format!("{}/s", trim_decimals(v, 1)),
    }
}

/// Milliseconds in the unit a person would use.
pub fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{}s", trim_decimals(ms / 1000.0, 2))
    } else if ms >= 1.0 {
        format!("{}ms", trim_decimals(ms, 2))
    } else {
        format!("{:.0}µs", ms * 1000.0)
    }
}

/// `v` with at most `places` decimals and no trailing zeros.
fn trim_decimals(v: f64, places: usize) -> String {
    let text = format!("{v:.places$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests;
