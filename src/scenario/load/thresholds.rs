//! `[thresholds]`: `"metric" = "<op> <value>"` pairs, e.g. `"turn.p99" = "< 2s"`.
//!
//! Dotted keys may be quoted (`"turn.p99"`) or bare (`turn.p99`, which TOML reads as nested
//! tables); nested tables are flattened back into one dotted key, so both spellings mean
//! the same threshold. Key and value are parsed by pure functions that return a message,
//! and the walk turns those into problems at the key's or the value's position.

use super::dist::parse_duration;
use super::walk::{found_unquoted, int_value, Ctx, Node};
use crate::model::OracleKind;
use crate::model::Phase;
use crate::model::{LatencyStat, MetricUnit, Step, Threshold, ThresholdMetric, ThresholdOp};
use std::collections::BTreeSet;
use std::ops::Range;
use toml::de::{DeTable, DeValue};

const ORACLES: [OracleKind; 3] = [
    OracleKind::Completeness,
    OracleKind::Identity,
    OracleKind::Ordering,
];
/// Keys that name a metric outright, with what they mean.
const NAMED: &[(&str, ThresholdMetric)] = &[
    ("errors", ThresholdMetric::ErrorRate),
    ("errors.rate", ThresholdMetric::ErrorRate),
    ("rejected", ThresholdMetric::RejectedRate),
    ("rejected.rate", ThresholdMetric::RejectedRate),
    ("failed", ThresholdMetric::FailedRate),
    ("failed.rate", ThresholdMetric::FailedRate),
    ("shed", ThresholdMetric::ShedRate),
    ("shed.rate", ThresholdMetric::ShedRate),
    ("errored", ThresholdMetric::ErroredRate),
    ("errored.rate", ThresholdMetric::ErroredRate),
    ("violations", ThresholdMetric::Violations),
    ("lenient_acceptances", ThresholdMetric::LenientAcceptances),
    ("unread_frames", ThresholdMetric::UnreadFrames),
    ("received_per_sec", ThresholdMetric::ReceivedPerSec),
    ("sent_per_sec", ThresholdMetric::SentPerSec),
];

/// Every threshold of the `[thresholds]` table, in file order. `steps` (each group's
/// script) supplies the event types that `event.<type>.rate` may name.
pub(super) fn thresholds(
    cx: &mut Ctx<'_>,
    node: Option<&Node<'_>>,
    steps: &[&[Step]],
) -> Vec<Threshold> {
    let Some(node) = node else {
        return Vec::new();
    };
    let Some(table) = cx.table("[thresholds]", node) else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    flatten(table, "", &mut entries);
    entries.sort_by_key(|e| e.key_span.start);
    let events = expected_events(steps);
    let timed = timed_phases(steps);
    entries
        .into_iter()
        .filter_map(|e| threshold(cx, &e, &events, &timed))
        .collect()
}

/// The phases only some steps time, with what times them: a threshold on one the
/// scenario never records could only read "no samples".
const STEP_TIMED: [(Phase, &str); 4] = [
    (Phase::Pong, "a `ping` step with `within`"),
    (Phase::FirstEvent, "an `expect` after a `send`"),
    (Phase::Turn, "an `expect` after a `send`"),
    (Phase::TurnRaw, "an `expect` after a `send`"),
];

/// Of [`STEP_TIMED`]'s phases, those some group's steps time.
fn timed_phases(scripts: &[&[Step]]) -> BTreeSet<Phase> {
    let mut out = BTreeSet::new();
    for steps in scripts {
        let (mut sent, mut turns) = (false, false);
        walk_timed(steps, &mut sent, &mut turns, &mut out);
        if turns {
            out.extend([Phase::FirstEvent, Phase::Turn, Phase::TurnRaw]);
        }
    }
    out
}

/// Walks `steps` in order: `sent` once a request has gone out, `turns` once an `expect`
/// (not `expect_none`) comes after one, which is what times a turn; a timed `ping` adds
/// its phase to `out`. A `repeat` whose body sends is walked as its second round sees it,
/// the first round's sends behind it (an `expect` before the body's `send` answers the
/// round before): once, however deep repeats nest.
fn walk_timed(steps: &[Step], sent: &mut bool, turns: &mut bool, out: &mut BTreeSet<Phase>) {
    for step in steps {
        match step {
            Step::Send { .. } | Step::SendText { .. } | Step::SendBinary { .. } => *sent = true,
            Step::Expect(e) if !e.absent && *sent => *turns = true,
            Step::Ping {
                within: Some(_), ..
            } => {
                out.insert(Phase::Pong);
            }
            Step::Repeat { steps, .. } => {
                *sent |= crate::model::deep_steps(steps).any(|s| {
                    matches!(
                        s,
                        Step::Send { .. } | Step::SendText { .. } | Step::SendBinary { .. }
                    )
                });
                walk_timed(steps, sent, turns, out);
            }
            _ => {}
        }
    }
}

/// One `key = value` leaf with its full dotted key.
struct Entry<'n, 'i> {
    key: String,
    key_span: Range<usize>,
    value: &'n Node<'i>,
}

fn flatten<'n, 'i>(table: &'n DeTable<'i>, prefix: &str, out: &mut Vec<Entry<'n, 'i>>) {
    for (key, value) in table.iter() {
        let full = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        match value.get_ref() {
            DeValue::Table(inner) => flatten(inner, &full, out),
            _ => out.push(Entry {
                key: full,
                key_span: key.span(),
                value,
            }),
        }
    }
}

fn threshold(
    cx: &mut Ctx<'_>,
    e: &Entry<'_, '_>,
    events: &BTreeSet<String>,
    timed: &BTreeSet<Phase>,
) -> Option<Threshold> {
    let metric = parse_metric(&e.key)
        .map_err(|m| cx.report(e.key_span.clone(), format!("thresholds: {m}")))
        .ok();
    if let Some(ThresholdMetric::Latency { phase, .. }) = &metric {
        let needs = STEP_TIMED.iter().find(|(p, _)| p == phase);
        if let (Some((phase, what)), false) = (needs, timed.contains(phase)) {
            let message = format!(
                "thresholds: {:?} measures the {} phase, which only {what} times, and no group \
                 has one: it could only read \"no samples\"",
                e.key,
                phase.name()
            );
            cx.report(e.key_span.clone(), message);
        }
    }
    if let Some(ThresholdMetric::EventRate { event }) = &metric {
        if !events.contains(event) {
            let known: Vec<&str> = events.iter().map(String::as_str).collect();
            let message = format!(
                "thresholds: event {event:?} is not in any expect pattern; expected one of: \
                 {}{}",
                if known.is_empty() {
                    "(no expect steps)".to_string()
                } else {
                    known.join(", ")
                },
                crate::model::words::did_you_mean(event, known.iter().copied())
            );
            cx.report(e.key_span.clone(), message);
        }
    }
    let DeValue::String(text) = e.value.get_ref() else {
        let value = e.value.get_ref();
        let message = match &metric {
            Some(metric) => {
                // The form this metric takes, not a latency's: `violations = 0` is told
                // `violations = "== 0"`.
                let (example, what) = condition_example(metric, value);
                let key = match e.key.contains('.') {
                    true => format!("{:?}", e.key),
                    false => e.key.clone(),
                };
                format!(
                    "thresholds.{}: expected a condition string, an operator (<, <=, >, >=, ==) \
                     then {what}, found {}; write {key} = \"{example}\"",
                    e.key,
                    found_unquoted(value)
                )
            }
            None => format!(
                "thresholds.{}: expected a condition string like \"< 2s\", found {}",
                e.key,
                found_unquoted(value)
            ),
        };
        cx.report(e.value.span(), message);
        return None;
    };
    let metric = metric?;
    let (op, limit, text) = parse_condition(metric.unit(), text)
        .map_err(|m| cx.report(e.value.span(), format!("thresholds.{}: {m}", e.key)))
        .ok()?;
    Some(Threshold {
        metric,
        op,
        limit,
        text,
    })
}

/// A condition `metric` takes, written from the number `value` where one was given in its
/// place (`violations = 3`: `"<= 3"`), and what follows its operator, for messages.
fn condition_example(metric: &ThresholdMetric, value: &DeValue<'_>) -> (String, &'static str) {
    let number = match value {
        DeValue::Integer(i) => int_value(i).and_then(|n| u64::try_from(n).ok()),
        _ => None,
    };
    match (metric.unit(), number) {
        (MetricUnit::Count, Some(n)) if n > 0 => (format!("<= {n}"), "a whole number"),
        (MetricUnit::Count, _) => ("== 0".to_string(), "a whole number"),
        (MetricUnit::PerSec, Some(n)) => (format!("> {n}/s"), "a rate per second"),
        (MetricUnit::PerSec, None) => ("> 100/s".to_string(), "a rate per second"),
        (MetricUnit::Fraction, _) if matches!(metric, ThresholdMetric::EventRate { .. }) => {
            (">= 99%".to_string(), "a percentage or a fraction")
        }
        (MetricUnit::Fraction, _) => ("< 0.1%".to_string(), "a percentage or a fraction"),
        (MetricUnit::Millis, _) => ("< 2s".to_string(), "a duration"),
    }
}

/// Event types that some `expect` pattern waits for, through `repeat`s.
fn expected_events(scripts: &[&[Step]]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for step in scripts
        .iter()
        .flat_map(|steps| crate::model::deep_steps(steps))
    {
        if let Step::Expect(e) = step {
            out.extend(e.pattern.iter().map(|p| p.event.clone()));
        }
    }
    out
}

/// `turn.p99`, `errors.rate`, `identity.violations`, `event.agent_completed.rate`...
pub fn parse_metric(key: &str) -> Result<ThresholdMetric, String> {
    if let Some((_, metric)) = NAMED.iter().find(|(name, _)| *name == key) {
        return Ok(metric.clone());
    }
    if let Some(event) = key
        .strip_prefix("event.")
        .and_then(|k| k.strip_suffix(".rate"))
    {
        if !event.is_empty() {
            return Ok(ThresholdMetric::EventRate {
                event: event.to_string(),
            });
        }
    }
    if let Some(oracle) = key.strip_suffix(".violations") {
        return oracle_metric(oracle);
    }
    let (head, stat) = key.split_once('.').unwrap_or((key, ""));
    match Phase::ALL.iter().find(|p| p.name() == head) {
        Some(phase) => latency_metric(*phase, stat),
        None => Err(format!(
            "unknown metric {key:?}{}; expected {}",
            metric_meant(key, head, stat),
            valid_metrics()
        )),
    }
}

fn oracle_metric(oracle: &str) -> Result<ThresholdMetric, String> {
    match ORACLES.iter().find(|o| o.name() == oracle) {
        Some(o) => Ok(ThresholdMetric::OracleViolations { oracle: *o }),
        None => {
            let names: Vec<&str> = ORACLES.iter().map(|o| o.name()).collect();
            Err(format!(
                "unknown oracle {oracle:?} in \"{oracle}.violations\"; expected one of: {}{}",
                names.join(", "),
                crate::model::words::did_you_mean(oracle, names.iter().copied())
            ))
        }
    }
}

fn latency_metric(phase: Phase, stat: &str) -> Result<ThresholdMetric, String> {
    match LatencyStat::ALL.iter().find(|(_, name)| *name == stat) {
        Some((stat, _)) => Ok(ThresholdMetric::Latency { phase, stat: *stat }),
        None => {
            let names: Vec<&str> = LatencyStat::ALL.iter().map(|(_, n)| *n).collect();
            Err(format!(
                "unknown statistic {stat:?} for phase {}; expected one of: {}",
                phase.name(),
                names.join(", ")
            ))
        }
    }
}

/// "; did you mean …?" for a mistyped metric `key` (`head`.`stat`): a phase's name close
/// to `head` with the same statistic (`trun.p99` → `turn.p99`), else a named metric close
/// to the whole key (`error.rate` → `errors.rate`); nothing when none is close.
fn metric_meant(key: &str, head: &str, stat: &str) -> String {
    let phase = crate::model::words::closest(head, Phase::ALL.iter().map(|p| p.name()));
    match phase {
        Some(phase) if !stat.is_empty() => format!("; did you mean \"{phase}.{stat}\"?"),
        _ => crate::model::words::did_you_mean(key, NAMED.iter().map(|(name, _)| *name)),
    }
}

fn valid_metrics() -> String {
    let phases: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
    let stats: Vec<&str> = LatencyStat::ALL.iter().map(|(_, n)| *n).collect();
    let oracles: Vec<&str> = ORACLES.iter().map(|o| o.name()).collect();
    format!(
        "<phase>.<stat> (phases: {}; stats: {}), errors.rate, rejected.rate, failed.rate, \
         shed.rate, errored.rate, \
         violations, <oracle>.violations ({}), lenient_acceptances, unread_frames, \
         received_per_sec, sent_per_sec or event.<type>.rate",
        phases.join(", "),
        stats.join(", "),
        oracles.join(", ")
    )
}

/// `"< 2s"` → (`Lt`, 2000.0 ms, `"< 2s"`): the limit in the metric's unit and the condition
/// normalized to one space after the operator.
pub fn parse_condition(unit: MetricUnit, text: &str) -> Result<(ThresholdOp, f64, String), String> {
    let t = text.trim();
    let Some((op, symbol)) = ThresholdOp::ALL.iter().find(|(_, s)| t.starts_with(s)) else {
        return Err(format!(
            "expected a condition like \"< 2s\": an operator (<, <=, >, >=, ==) then a value, found {text:?}"
        ));
    };
    let value = t[symbol.len()..].trim();
    let limit = parse_limit(unit, value)?;
    Ok((*op, limit, format!("{symbol} {value}")))
}

fn parse_limit(unit: MetricUnit, value: &str) -> Result<f64, String> {
    match unit {
        MetricUnit::Millis => parse_duration(value).map(|d| d.as_secs_f64() * 1000.0),
        MetricUnit::Fraction => parse_fraction(value),
        MetricUnit::Count => value
            .parse::<u64>()
            .map(|n| n as f64)
            .map_err(|_| format!("expected a whole number like \"0\", found {value:?}")),
        MetricUnit::PerSec => {
            let number = value.strip_suffix("/s").unwrap_or(value).trim();
            plain_number(number).ok_or_else(|| {
                format!("expected a rate per second like \"100\" or \"100/s\", found {value:?}")
            })
        }
    }
}

/// `"0.1%"` or `"0.001"`, as a fraction in 0..=1.
fn parse_fraction(value: &str) -> Result<f64, String> {
    let complaint = || {
        format!("expected a percentage like \"0.1%\" or a fraction like \"0.001\", found {value:?}")
    };
    let (number, scale) = match value.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (value, 1.0),
    };
    let fraction = plain_number(number).ok_or_else(complaint)? / scale;
    if fraction > 1.0 {
        return Err(format!("{} (at most 100%)", complaint()));
    }
    Ok(fraction)
}

/// A non-negative decimal written with digits and at most one point: no signs, exponents,
/// `inf` or `NaN`, which `f64::from_str` would otherwise accept.
fn plain_number(text: &str) -> Option<f64> {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let points = text.chars().filter(|c| *c == '.').count();
    if digits == 0 || points > 1 || digits + points != text.chars().count() {
        return None;
    }
    text.parse().ok()
}
