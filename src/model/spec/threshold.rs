//! `[thresholds]`: pass/fail limits on a run's summary, checked when the run ends.
//!
//! The types only say what a threshold is; `scenario::load` parses them with file
//! positions, and `report::thresholds` evaluates them against a summary.

use crate::model::{OracleKind, Phase};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One limit, e.g. `turn.p99 < 2s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub metric: ThresholdMetric,
    pub op: ThresholdOp,
    /// In the metric's unit (see [`MetricUnit`]): ms, a fraction, a count or a rate per second.
    pub limit: f64,
    /// The condition as the file wrote it, e.g. `< 2s`: what messages quote.
    pub text: String,
}

/// What a threshold measures. [`fmt::Display`] gives the canonical key (`errors.rate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMetric {
    /// A percentile (or max, mean) of one phase's latency.
    Latency { phase: Phase, stat: LatencyStat },
    /// (rejected + failed) / attempted connections.
    ErrorRate,
    /// rejected / attempted connections (the server answered the upgrade with an error).
    RejectedRate,
    /// failed / attempted connections (no answer: refused, reset, timed out).
    FailedRate,
    /// Attempts the server shed under load (HTTP 429 or 503, a close 1013 or a declared
    /// `reject.shed` code, before acceptance or after it: [`crate::model::Counters::shed`]
    /// and [`crate::model::Counters::shed_after_acceptance`]) / attempted connections:
    /// the server's policy, never a violation, but a load it turned away.
    ShedRate,
    /// Expectations the server answered with its error event (`expectations_errored`) /
    /// the expectations judged (every one but those cut by the run's end or refused with
    /// their connection): requests the server refused in its own words, which are allowed
    /// answers, not violations.
    ErroredRate,
    /// Violations of every oracle that the verdict counts as findings (none in a run whose
    /// verdict excuses them: an inconclusive one, one that could not judge its target).
    Violations,
    /// The same, of one oracle (`completeness`, `identity`, `ordering`).
    OracleViolations { oracle: OracleKind },
    /// Frames no oracle could read: text records that were not JSON and binary frames (a
    /// server of garbage, or one of another protocol), which break no oracle by themselves:
    /// `unread_frames = "== 0"` makes them fatal.
    UnreadFrames,
    /// Bad tokens accepted where refusing them is the server's policy (lenient
    /// acceptances; not violations): `lenient_acceptances = "== 0"` makes them fatal.
    LenientAcceptances,
    /// Messages received per second of the run.
    ReceivedPerSec,
    /// Messages sent per second of the run.
    SentPerSec,
    /// arrived / expected for one event type of the `expect` patterns.
    EventRate { event: String },
}

/// The statistics of a phase that a threshold can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyStat {
    P50,
    P90,
    P99,
    P999,
    Max,
    Mean,
}

/// How a measured value must relate to the limit for the threshold to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// The unit a metric's value and limit are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricUnit {
    /// Milliseconds; written as a duration (`"2s"`, `"500ms"`).
    Millis,
    /// A fraction in 0..=1; written as a percentage (`"0.1%"`) or a fraction (`"0.001"`).
    Fraction,
    /// A whole number (`"0"`).
    Count,
    /// Per second (`"100"` or `"100/s"`).
    PerSec,
}

impl LatencyStat {
    /// Every stat with its name in keys, in display order.
    pub const ALL: [(LatencyStat, &'static str); 6] = [
        (LatencyStat::P50, "p50"),
        (LatencyStat::P90, "p90"),
        (LatencyStat::P99, "p99"),
        (LatencyStat::P999, "p99.9"),
        (LatencyStat::Max, "max"),
        (LatencyStat::Mean, "mean"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("?", |(_, n)| n)
    }
}

impl ThresholdOp {
    /// Every operator with its spelling; two-character ones first so `<=` is not read as `<`.
    pub const ALL: [(ThresholdOp, &'static str); 5] = [
        (ThresholdOp::Le, "<="),
        (ThresholdOp::Ge, ">="),
        (ThresholdOp::Eq, "=="),
        (ThresholdOp::Lt, "<"),
        (ThresholdOp::Gt, ">"),
    ];

    pub fn symbol(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(o, _)| *o == self)
            .map_or("?", |(_, s)| s)
    }

    /// Whether `actual` satisfies `actual <op> limit`.
    pub fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            ThresholdOp::Lt => actual < limit,
            ThresholdOp::Le => actual <= limit,
            ThresholdOp::Gt => actual > limit,
            ThresholdOp::Ge => actual >= limit,
            ThresholdOp::Eq => actual == limit,
        }
    }
}

impl ThresholdMetric {
    pub fn unit(&self) -> MetricUnit {
        match self {
            ThresholdMetric::Latency { .. } => MetricUnit::Millis,
            ThresholdMetric::ErrorRate
            | ThresholdMetric::RejectedRate
            | ThresholdMetric::FailedRate
            | ThresholdMetric::ShedRate
            | ThresholdMetric::ErroredRate
            | ThresholdMetric::EventRate { .. } => MetricUnit::Fraction,
            ThresholdMetric::Violations
            | ThresholdMetric::OracleViolations { .. }
            | ThresholdMetric::LenientAcceptances
            | ThresholdMetric::UnreadFrames => MetricUnit::Count,
            ThresholdMetric::ReceivedPerSec | ThresholdMetric::SentPerSec => MetricUnit::PerSec,
        }
    }
}

impl fmt::Display for ThresholdMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThresholdMetric::Latency { phase, stat } => {
                write!(f, "{}.{}", phase.name(), stat.name())
            }
            ThresholdMetric::ErrorRate => f.write_str("errors.rate"),
            ThresholdMetric::RejectedRate => f.write_str("rejected.rate"),
            ThresholdMetric::FailedRate => f.write_str("failed.rate"),
            ThresholdMetric::ShedRate => f.write_str("shed.rate"),
            ThresholdMetric::ErroredRate => f.write_str("errored.rate"),
            ThresholdMetric::Violations => f.write_str("violations"),
            ThresholdMetric::OracleViolations { oracle } => {
                write!(f, "{}.violations", oracle.name())
            }
            ThresholdMetric::LenientAcceptances => f.write_str("lenient_acceptances"),
            ThresholdMetric::UnreadFrames => f.write_str("unread_frames"),
            ThresholdMetric::ReceivedPerSec => f.write_str("received_per_sec"),
            ThresholdMetric::SentPerSec => f.write_str("sent_per_sec"),
            ThresholdMetric::EventRate { event } => write!(f, "event.{event}.rate"),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.metric, self.text)
    }
}
