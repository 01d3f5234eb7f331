//! The compact console summary.

use crate::model::Phase;
use crate::model::Verdict;
use crate::results::Summary;
use std::io::{self, Write};

/// Renders the summary table; volatile values (times) are formatted, never reordered.
pub fn render<W: Write>(s: &Summary, w: &mut W) -> io::Result<()> {
    let target_note = if s.embedded_target {
        " (embedded reference server)"
    } else {
        ""
    };
    writeln!(
        w,
        "stampede {} · {} · seed {} · {}{}",
        s.tool_version, s.scenario, s.seed, s.target, target_note
    )?;
    writeln!(
        w,
        "ran {:.2}s of {:.0}s ({}) · {} connections planned",
        s.elapsed_ms / 1000.0,
        s.duration_ms / 1000.0,
        s.stopped,
        s.connections_planned
    )?;
    let c = &s.counters;
    writeln!(
        w,
        "\nconnections  attempted {}  accepted {}  rejected {}  failed {}",
        c.attempted, c.accepted, c.rejected, c.failed
    )?;
    for (label, map) in [("refused by", &c.refused_by), ("ended by", &c.ended_by)] {
        if !map.is_empty() {
            let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(w, "  {label:<11}{}", parts.join("  "))?;
        }
    }
    writeln!(
        w,
        "messages     sent {}  received {}  ({:.1}/s received)",
        c.messages_sent, c.messages_received, s.received_per_sec
    )?;
    if c.non_json + c.binary_frames + c.expect.buffer_overflows > 0 {
        writeln!(
            w,
            "  findings   non-JSON {}  binary {}  buffer overflows {}",
            c.non_json, c.binary_frames, c.expect.buffer_overflows
        )?;
    }
    render_phases(s, w)?;
    render_events(s, w)?;
    render_violations(s, w)?;
    for b in &s.barriers {
        writeln!(
            w,
            "barrier      {}: {}/{} released together at {:.1}ms; spread p50 {}µs  p99 {}µs  max {}µs",
            b.group, b.released, b.connections, b.fired_ms, b.spread_p50_us, b.spread_p99_us, b.spread_max_us
        )?;
    }
    if s.probe.tokens > 0 {
        writeln!(
            w,
            "probe        {} tokens reconnected after the run, {} refused{}",
            s.probe.tokens,
            s.probe.refused,
            if s.probe.inconclusive > 0 {
                format!(
                    ", {} unanswered or cut (inconclusive)",
                    s.probe.inconclusive
                )
            } else {
                String::new()
            }
        )?;
    }
    if s.verdict == Verdict::Inconclusive {
        writeln!(
            w,
            "INCONCLUSIVE: {} tokens were shared, but no two handshakes with the same token overlapped",
            s.coverage.shared_tokens
        )?;
    }
    let g = &s.generator;
    let verdict = if g.fell_behind {
        "FELL BEHIND: timings are not trustworthy"
    } else {
        "on schedule"
    };
    writeln!(
        w,
        "\ngenerator lag p50 {:.3}ms  p99 {:.3}ms  max {:.3}ms  ({verdict})",
        g.lag_p50_ms, g.lag_p99_ms, g.lag_max_ms
    )
}

fn render_phases<W: Write>(s: &Summary, w: &mut W) -> io::Result<()> {
    writeln!(
        w,
        "\n{:<14}{:>8}{:>10}{:>10}{:>10}{:>10}{:>10}",
        "phase (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
    )?;
    // Timeline order, not alphabetical: connect → TLS → upgrade → first frame → turn.
    let ordered = Phase::ALL.iter().filter(|p| **p != Phase::GeneratorLag);
    for (name, p) in ordered.filter_map(|p| s.phases.get(p.name()).map(|stats| (p.name(), stats))) {
        writeln!(
            w,
            "{name:<14}{:>8}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}",
            p.count, p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms
        )?;
    }
    Ok(())
}

fn render_events<W: Write>(s: &Summary, w: &mut W) -> io::Result<()> {
    if s.events.is_empty() {
        return Ok(());
    }
    writeln!(
        w,
        "\n{:<24}{:>10}{:>10}{:>9}",
        "event", "expected", "arrived", "rate"
    )?;
    for (name, e) in &s.events {
        writeln!(
            w,
            "{name:<24}{:>10}{:>10}{:>8.1}%",
            e.expected,
            e.arrived,
            e.rate * 100.0
        )?;
    }
    Ok(())
}

/// Involved connections listed under each violation of the console summary.
const INVOLVED_SHOWN: usize = 4;

fn render_violations<W: Write>(s: &Summary, w: &mut W) -> io::Result<()> {
    let v = &s.violations;
    if v.total == 0 {
        return writeln!(w, "\nviolations   none");
    }
    let parts: Vec<String> = v
        .by_oracle
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(w, "\nviolations   {}  ({})", v.total, parts.join(", "))?;
    for x in v.first.iter().take(5) {
        writeln!(
            w,
            "  {:>9.1}ms  {:<12} conn {} user {} jti {}  expected {}  seen {}",
            x.at_ms,
            x.oracle.name(),
            x.conn,
            x.user,
            x.jti,
            x.expected,
            x.seen
        )?;
        // The interleaving behind a session-oracle verdict: who started when, and what
        // the server answered each.
        for i in x.involved.iter().take(INVOLVED_SHOWN) {
            writeln!(
                w,
                "               conn {:<5} jti {}  planned {:.1}ms  started {:.3}ms  {}",
                i.conn, i.jti, i.planned_start_ms, i.attempt_start_ms, i.answer
            )?;
        }
        if x.involved.len() > INVOLVED_SHOWN {
            writeln!(
                w,
                "               … {} more connections",
                x.involved.len() - INVOLVED_SHOWN
            )?;
        }
    }
    if v.total > 5 {
        writeln!(w, "  … {} more in violations.jsonl", v.total - 5)?;
    }
    Ok(())
}
