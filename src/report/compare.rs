//! The comparison as a console table, or as JSON (`compare --json`).

use crate::model::words::plural;
use crate::results::compare::{
    describe, Comparison, Missing, Row, Unit, Verdict, WorseVerdict, CLIENT_FELL_BEHIND,
};
use crate::results::read::NO_SUMMARY;
use serde_json::{json, Value};
use std::io::{self, Write};

/// The comparison as one JSON object: `scenario`, `base_runs`/`new_runs` (paths),
/// `tolerance` (a fraction), `forced` (a note or null), `warnings`, `rows` (one per phase
/// statistic, then throughput, then the error rows: `metric`, `phase`, `stat`, `unit`,
/// `base`/`new` in it (`ms`; `per_sec`, messages/s for `received_per_sec`; `share`, 0 to 1
/// for `errors.rate` and `unmet.rate`; `per_run` for `violations`), `change` (a fraction
/// of base) and `spread` (in the unit) or null,
/// `tolerance`, `verdict` one of `unchanged`, `improved`, `regression`, `worse_ungated`,
/// `better_ungated` or `not_judged` with `ungated_because`, and `client_lag` on a latency
/// row when a NEW run's generator fell behind: `stat` (`p50`, `p99` or `max`) and `ms`, the
/// lag the row had to outgrow to gate, else null), `missing` (phases one side
/// lacks: `phase`, `lacking` side, the other side's `samples`, `gated_by` the
/// `--tolerance-for` key or null), `worse_verdicts` (NEW runs whose verdict is worse than
/// the best BASE run's: `run`, `verdict`, `base_best`), `skipped` (run folders left out
/// for want of a `summary.json`: `path`, `reason`; empty when none), `left_out` (runs left
/// out as interrupted or having measured nothing: paths), `unjudged` (what kept the
/// comparison from judging, in words), and `regressed` and `not_judged`, which decide the
/// exit code (1 and 8).
pub fn comparison_json(c: &Comparison) -> Value {
    let paths = |runs: &[std::path::PathBuf]| -> Vec<String> {
        runs.iter().map(|p| p.display().to_string()).collect()
    };
    let rows: Vec<Value> = c
        .rows
        .iter()
        .map(|r| {
            let (verdict, why) = match r.verdict {
                Verdict::Unchanged => ("unchanged", None),
                Verdict::Improved => ("improved", None),
                Verdict::Regression => ("regression", None),
                Verdict::WorseUngated(why) => ("worse_ungated", Some(why)),
                Verdict::BetterUngated(why) => ("better_ungated", Some(why)),
                Verdict::NotJudged(why) => ("not_judged", Some(why)),
            };
            json!({
                "metric": r.metric,
                "phase": r.phase,
                "stat": r.stat,
                "unit": r.unit.name(),
                "base": r.base,
                "new": r.new,
                "change": r.change,
                "spread": r.spread,
                "tolerance": r.tolerance,
                "verdict": verdict,
                "ungated_because": why,
                "client_lag": r.client_lag.map(|l| json!({ "stat": l.stat, "ms": l.ms })),
            })
        })
        .collect();
    let missing: Vec<Value> = c
        .missing
        .iter()
        .map(|m| {
            json!({
                "phase": m.phase,
                "lacking": m.lacking,
                "samples": m.samples,
                "gated_by": m.gated_by,
            })
        })
        .collect();
    let worse: Vec<Value> = c
        .worse_verdicts
        .iter()
        .map(|v| {
            json!({
                "run": v.run.display().to_string(),
                "verdict": v.verdict.name(),
                "base_best": v.base_best.name(),
            })
        })
        .collect();
    // The folders left out, for a reader of the JSON alone: stderr said them, but a CI step
    // that keeps only stdout would not know the verdict rests on fewer runs.
    let skipped: Vec<Value> = c
        .skipped
        .iter()
        .map(|dir| json!({ "path": dir.display().to_string(), "reason": NO_SUMMARY }))
        .collect();
    json!({
        "scenario": c.scenario,
        "base_runs": paths(&c.base_runs),
        "new_runs": paths(&c.new_runs),
        "tolerance": c.tolerance,
        "forced": c.forced,
        "warnings": c.warnings,
        "rows": rows,
        "missing": missing,
        "worse_verdicts": worse,
        "skipped": skipped,
        "left_out": paths(&c.left_out),
        // Every reason the result line gives, not only those the comparison kept in words.
        "unjudged": if c.not_judged() { not_judged_reasons(c) } else { c.unjudged.clone() },
        "regressed": c.regressed(),
        "not_judged": c.not_judged(),
    })
}

/// Writes the comparison: runs, warnings, one line per phase statistic, and the verdict.
pub fn render_comparison<W: Write>(c: &Comparison, w: &mut W) -> io::Result<()> {
    writeln!(
        w,
        "stampede compare · {} · {} vs {} · tolerance {}",
        c.scenario,
        plural(c.base_runs.len() as u64, "base run"),
        plural(c.new_runs.len() as u64, "new run"),
        percent(c.tolerance)
    )?;
    writeln!(w, "base  {}", describe(&c.base_runs))?;
    writeln!(w, "new   {}", describe(&c.new_runs))?;
    for note in c.forced.iter().chain(&c.warnings) {
        writeln!(w, "warning: {note}")?;
    }
    for m in &c.missing {
        writeln!(w, "warning: {}", missing_note(m))?;
    }
    for v in &c.worse_verdicts {
        let why = if v.client_limited() {
            ": the client's own limits, not judged"
        } else {
            ""
        };
        writeln!(
            w,
            "warning: {}: verdict {} where {}{why}",
            v.run.display(),
            v.verdict,
            base_verdicts(v)
        )?;
    }
    let width = phase_width(&c.rows);
    writeln!(
        w,
        "\n{:<width$}{:<8}{:>12} {:>12} {:>10} {:>10}  verdict",
        "phase (ms)", "stat", "base", "new", "change", "spread"
    )?;
    let mut last_phase = "";
    for row in &c.rows {
        let phase = if row.phase == last_phase {
            ""
        } else {
            row.phase.as_str()
        };
        last_phase = &row.phase;
        render_row(w, (phase, width), row)?;
    }
    render_verdict(c, w)
}

/// The phase column's width: as wide as the longest phase name (a named expectation's
/// `turn:subscription`) and one space, at least 14: a long name never runs into its
/// statistic.
fn phase_width(rows: &[Row]) -> usize {
    rows.iter()
        .map(|r| r.phase.chars().count() + 1)
        .fold(14, usize::max)
}

fn render_row<W: Write>(w: &mut W, (phase, width): (&str, usize), r: &Row) -> io::Result<()> {
    let change = r.change.map_or_else(|| "-".to_string(), signed_percent);
    // A share shows as a percentage, as its stat (`conn %`) says; the rest as they are.
    let shown = |v: f64| match r.unit {
        Unit::Share => v * 100.0,
        Unit::Ms | Unit::PerSec | Unit::PerRun => v,
    };
    let spread = r
        .spread
        .map_or_else(|| "-".to_string(), |s| format!("{:.3}", shown(s)));
    let verdict = match r.verdict {
        Verdict::Unchanged => String::new(),
        Verdict::Improved => "improved".to_string(),
        Verdict::Regression => match r.client_lag {
            // Said, so that a regression beside a lagging client is read as what it is:
            // more than the client's lateness could add.
            Some(lag) => format!(
                "REGRESSION (tolerance {}; beyond the client's lag {} of {:.1} ms)",
                percent(r.tolerance),
                lag.stat,
                lag.ms
            ),
            None => format!("REGRESSION (tolerance {})", percent(r.tolerance)),
        },
        Verdict::WorseUngated(why) => format!("worse, not gated: {why}"),
        Verdict::BetterUngated(why) => format!("better, not gated: {why}"),
        Verdict::NotJudged(why) => match r.client_lag {
            // A row timed from the intended send carries the lag, the client's part of it.
            Some(lag) if why == CLIENT_FELL_BEHIND => format!(
                "worse, NOT JUDGED: {why} (its lag {} of {:.1} ms may explain it)",
                lag.stat, lag.ms
            ),
            None if why == CLIENT_FELL_BEHIND && r.unit == Unit::Ms => format!(
                "worse, NOT JUDGED: {why} (timed from when the client got round to it, it \
                 holds the client's lateness)"
            ),
            _ => format!("worse, NOT JUDGED: {why}"),
        },
    };
    writeln!(
        w,
        // A space between the columns: a value wider than its column (a +139258.6%
        // change) still stands apart from the next.
        "{phase:<width$}{:<8}{:>12.3} {:>12.3} {change:>10} {spread:>10}  {verdict}",
        r.stat,
        shown(r.base),
        shown(r.new)
    )
}

/// What a missing phase's warning says.
fn missing_note(m: &Missing) -> String {
    let (has, lacks) = if m.lacking == "new" {
        ("base", "new")
    } else {
        ("new", "base")
    };
    let gate = match &m.gated_by {
        Some(key) => format!("; --tolerance-for {key} cannot be checked, so it fails"),
        None => String::new(),
    };
    format!(
        "phase {} has {} on {has} and none on {lacks}: not compared{gate}",
        m.phase,
        plural(m.samples, "sample"),
    )
}

/// A row as the result line names it: `turn.p99 +35.2%` (`(from 0)` when BASE had none).
fn metric_and_change(r: &Row) -> String {
    format!(
        "{} {}",
        r.metric,
        r.change.map_or_else(|| "(from 0)".into(), signed_percent)
    )
}

fn render_verdict<W: Write>(c: &Comparison, w: &mut W) -> io::Result<()> {
    let mut regressions: Vec<String> = c.regressions().map(metric_and_change).collect();
    regressions.extend(
        c.missing_gated()
            .map(|m| format!("{} missing from {}", m.phase, m.lacking)),
    );
    regressions.extend(
        c.worse_verdicts
            .iter()
            .filter(|v| !v.client_limited())
            .map(|v| format!("new run verdict {} (base {})", v.verdict, v.base_best)),
    );
    if regressions.is_empty() && c.not_judged() {
        writeln!(w, "\nresult: {}", not_judged_line(c))
    } else if regressions.is_empty() {
        writeln!(w, "\nresult: no regression")
    } else {
        writeln!(
            w,
            "\nresult: {}: {}",
            plural(regressions.len() as u64, "regression"),
            regressions.join(", ")
        )
    }
}

/// What the BASE runs ended with, as a worse NEW verdict's warning says it.
fn base_verdicts(v: &WorseVerdict) -> String {
    if v.every_base {
        format!("every base run was {}", v.base_best)
    } else {
        format!("a base run was {}", v.base_best)
    }
}

/// The result line of a comparison that could not judge what got worse
/// ([`not_judged_reasons`]).
fn not_judged_line(c: &Comparison) -> String {
    format!("not judged: {} (exit 8)", not_judged_reasons(c).join("; "))
}

/// Why a comparison could not judge what got worse, in words, one entry per reason: the
/// NEW runs' client fell behind or stalled (or ended client-limited), a side had no run
/// left to compare, no BASE run exercised the target, or a phase that got worse had too
/// few samples, so the server is shown neither slower nor as fast. What the console's
/// result line joins and the JSON's `unjudged` lists.
pub fn not_judged_reasons(c: &Comparison) -> Vec<String> {
    if c.rows.is_empty() && !c.unjudged.is_empty() {
        // A side with no run left: nothing else to say.
        return c.unjudged.clone();
    }
    if let Some(verdict) = c.base_unexercised {
        return vec![format!(
            "no base run exercised the target (verdict {verdict}), so there is no baseline \
             to compare with: run BASE again where it reaches its target"
        )];
    }
    let rows: Vec<String> = c
        .not_judged_rows()
        .filter(|r| r.verdict == Verdict::NotJudged(CLIENT_FELL_BEHIND))
        .map(metric_and_change)
        .collect();
    let limited = c
        .worse_verdicts
        .iter()
        .filter(|v| v.client_limited())
        .count();
    let mut what = Vec::new();
    if !rows.is_empty() {
        what.push(format!(
            "{} worse on a new run whose client fell behind ({})",
            plural(rows.len() as u64, "row"),
            rows.join(", ")
        ));
    }
    if limited > 0 {
        what.push(format!(
            "{} ended client_limited",
            plural(limited as u64, "new run")
        ));
    }
    let mut reasons = Vec::new();
    if !what.is_empty() {
        reasons.push(format!(
            "{}; those timings are not trustworthy, so the server is shown neither slower \
             nor as fast: run NEW again on a quieter machine",
            what.join("; ")
        ));
    }
    reasons.extend(c.unjudged.iter().cloned());
    reasons
}

fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p.fract() == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn signed_percent(fraction: f64) -> String {
    format!("{:+.1}%", fraction * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value wider than its column stands apart from the next one.
    #[test]
    fn wide_values_keep_their_columns_apart() {
        let row = Row {
            metric: "turn.p99".into(),
            phase: "turn".into(),
            stat: "p99".into(),
            base: 1.341,
            new: 1868.799,
            change: Some(1392.586),
            spread: None,
            tolerance: 0.1,
            verdict: Verdict::WorseUngated(crate::results::compare::TOO_FEW_SAMPLES),
            unit: Unit::Ms,
            client_lag: None,
        };
        let mut out = Vec::new();
        render_row(&mut out, ("turn", 14), &row).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(line.contains("1868.799 +139258.6%"), "{line}");
    }

    fn row(metric: &str, verdict: Verdict) -> Row {
        Row {
            metric: metric.into(),
            phase: "turn".into(),
            stat: "p99".into(),
            base: 10.0,
            new: 20.0,
            change: Some(1.0),
            spread: None,
            tolerance: 0.1,
            verdict,
            unit: Unit::Ms,
            client_lag: None,
        }
    }

    /// A comparison not judged for a reason only its rows hold (the NEW client fell
    /// behind) lists that reason in the JSON's `unjudged`, as its result line gives it: a
    /// CI step reading the JSON alone learns why.
    #[test]
    fn the_jsons_unjudged_lists_every_reason_the_result_line_gives() {
        let c = Comparison {
            scenario: "s".into(),
            base_runs: vec!["b".into()],
            new_runs: vec!["n".into()],
            tolerance: 0.1,
            forced: None,
            warnings: Vec::new(),
            skipped: Vec::new(),
            rows: vec![
                row("turn.p99", Verdict::NotJudged(CLIENT_FELL_BEHIND)),
                row("turn.p50", Verdict::Unchanged),
            ],
            missing: Vec::new(),
            worse_verdicts: Vec::new(),
            left_out: Vec::new(),
            unjudged: vec!["a thin phase".into()],
            base_unexercised: None,
        };
        assert!(c.not_judged());
        let json = comparison_json(&c);
        let listed: Vec<&str> = json["unjudged"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(
            listed[0].contains("client fell behind (turn.p99 +100.0%)"),
            "{listed:?}"
        );
        assert_eq!(listed[1], "a thin phase");
        let line = not_judged_line(&c);
        assert_eq!(line, format!("not judged: {} (exit 8)", listed.join("; ")));
        // Judged: `unjudged` holds what the comparison kept, nothing more.
        let judged = Comparison {
            rows: vec![row("turn.p99", Verdict::Regression)],
            unjudged: Vec::new(),
            ..c
        };
        assert_eq!(comparison_json(&judged)["unjudged"], serde_json::json!([]));
    }

    /// A phase name longer than the column (a named expectation's) stands apart from its
    /// statistic, and the header's columns line up with the rows'.
    #[test]
    fn a_long_phase_name_keeps_its_column_apart() {
        let row = Row {
            metric: "turn:subscription.p50".into(),
            phase: "turn:subscription".into(),
            stat: "p50".into(),
            base: 7.415,
            new: 7.291,
            change: Some(-0.017),
            spread: None,
            tolerance: 0.1,
            verdict: Verdict::Unchanged,
            unit: Unit::Ms,
            client_lag: None,
        };
        let width = phase_width(std::slice::from_ref(&row));
        assert_eq!(width, "turn:subscription".len() + 1);
        let mut out = Vec::new();
        render_row(&mut out, ("turn:subscription", width), &row).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(line.starts_with("turn:subscription p50"), "{line}");
    }
}
