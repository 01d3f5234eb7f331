//! The comparison as a console table.

use crate::results::compare::{describe, Comparison, Row, Verdict};
use std::io::{self, Write};

/// Writes the comparison: runs, warnings, one line per phase statistic, and the verdict.
pub fn render_comparison<W: Write>(c: &Comparison, w: &mut W) -> io::Result<()> {
    writeln!(
        w,
        "stampede compare · {} · {} base run(s) vs {} new run(s) · tolerance {}",
        c.scenario,
        c.base_runs.len(),
        c.new_runs.len(),
        percent(c.tolerance)
    )?;
    writeln!(w, "base  {}", describe(&c.base_runs))?;
    writeln!(w, "new   {}", describe(&c.new_runs))?;
    for note in c.forced.iter().chain(&c.warnings) {
        writeln!(w, "warning: {note}")?;
    }
    writeln!(
        w,
        "\n{:<14}{:<8}{:>12}{:>12}{:>10}{:>10}  verdict",
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
        render_row(w, phase, row)?;
    }
    render_verdict(c, w)
}

fn render_row<W: Write>(w: &mut W, phase: &str, r: &Row) -> io::Result<()> {
    let change = r.change.map_or_else(|| "-".to_string(), signed_percent);
    let spread = r
        .spread
        .map_or_else(|| "-".to_string(), |s| format!("{s:.3}"));
    let verdict = match r.verdict {
        Verdict::Unchanged => String::new(),
        Verdict::Improved => "improved".to_string(),
        Verdict::Regression => format!("REGRESSION (tolerance {})", percent(r.tolerance)),
        Verdict::WorseUngated(why) => format!("worse, not gated: {why}"),
    };
    writeln!(
        w,
        "{phase:<14}{:<8}{:>12.3}{:>12.3}{change:>10}{spread:>10}  {verdict}",
        r.stat, r.base, r.new
    )
}

fn render_verdict<W: Write>(c: &Comparison, w: &mut W) -> io::Result<()> {
    let regressions: Vec<String> = c
        .regressions()
        .map(|r| {
            format!(
                "{} {}",
                r.metric,
                r.change.map_or_else(|| "(from 0)".into(), signed_percent)
            )
        })
        .collect();
    if regressions.is_empty() {
        writeln!(w, "\nresult: no regression")
    } else {
        writeln!(
            w,
            "\nresult: {} regression(s): {}",
            regressions.len(),
            regressions.join(", ")
        )
    }
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
