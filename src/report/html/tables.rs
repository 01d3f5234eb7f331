//! The report's tables, as HTML fragments.

use super::{esc, phase_label, Side};
use crate::metrics::PhaseStats;
use crate::model::{Cause, Violation};
use crate::results::thresholds::format_ms;
use crate::results::Summary;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Violations listed in the table; the rest stay in `violations.jsonl`.
const LISTED_VIOLATIONS: usize = 200;
/// A change beyond this colours the cell (worse red, better green).
const NOTABLE_CHANGE: f64 = 0.10;

/// Per-phase percentiles; with a second run, its row follows each phase's and the first
/// run's cells show the change against it.
pub(super) fn phases(sides: &[Side<'_>]) -> String {
    let mut html = String::from(
        "<table class=\"data\"><thead><tr><th>phase</th><th class=\"num\">count</th><th class=\"num\">p50</th>\
         <th class=\"num\">p90</th><th class=\"num\">p99</th><th class=\"num\">p99.9</th><th class=\"num\">max</th>\
         <th class=\"num\">mean</th></tr></thead><tbody>",
    );
    let names = phase_names(sides);
    for name in &names {
        let other = sides.get(1).and_then(|s| s.run.summary.phases.get(name));
        for (i, side) in sides.iter().enumerate() {
            let Some(p) = side.run.summary.phases.get(name) else {
                continue;
            };
            let vs = if i == 0 { other } else { None };
            html.push_str(&phase_row(name, side, i, p, vs));
        }
    }
    // Named expectations' turns (`expect ... name = "ack"`), after the phases.
    let mut turns: Vec<&String> = Vec::new();
    for side in sides {
        for name in side.run.summary.turns.keys() {
            if !turns.contains(&name) {
                turns.push(name);
            }
        }
    }
    for name in turns {
        let label = format!("Turn: {name}");
        let other = sides.get(1).and_then(|s| s.run.summary.turns.get(name));
        for (i, side) in sides.iter().enumerate() {
            let Some(p) = side.run.summary.turns.get(name) else {
                continue;
            };
            let vs = if i == 0 { other } else { None };
            html.push_str(&phase_row(&label, side, i, p, vs));
        }
    }
    html.push_str("</tbody></table>");
    html
}

fn phase_names(sides: &[Side<'_>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for phase in crate::model::Phase::ALL {
        if sides
            .iter()
            .any(|s| s.run.summary.phases.contains_key(phase.name()))
        {
            names.push(phase.name().to_string());
        }
    }
    names
}

fn phase_row(
    name: &str,
    side: &Side<'_>,
    index: usize,
    p: &PhaseStats,
    vs: Option<&PhaseStats>,
) -> String {
    let label = if index == 0 {
        phase_label(name)
    } else {
        side.short
    };
    let class = if index == 0 { "" } else { " class=\"sub\"" };
    let mut row = format!(
        "<tr{class}><td>{}{}</td><td class=\"num\">{}</td>",
        side.swatch(),
        esc(label),
        thousands(p.count)
    );
    let values = [p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms, p.mean_ms];
    let others = vs.map(|v| [v.p50_ms, v.p90_ms, v.p99_ms, v.p999_ms, v.max_ms, v.mean_ms]);
    for (i, value) in values.iter().enumerate() {
        let delta = others
            .map(|o| delta(*value, o[i], true))
            .unwrap_or_default();
        let _ = write!(row, "<td class=\"num\">{}{delta}</td>", format_ms(*value));
    }
    row.push_str("</tr>");
    row
}

/// `<span>+12%</span>` for `value` against `base`; `higher_is_worse` picks the colours.
pub(super) fn delta(value: f64, base: f64, higher_is_worse: bool) -> String {
    if base == 0.0 || !value.is_finite() {
        return String::new();
    }
    let change = (value - base) / base;
    if (change * 100.0).round() == 0.0 {
        return String::new();
    }
    let worse = if higher_is_worse {
        change > NOTABLE_CHANGE
    } else {
        change < -NOTABLE_CHANGE
    };
    let better = if higher_is_worse {
        change < -NOTABLE_CHANGE
    } else {
        change > NOTABLE_CHANGE
    };
    let class = if worse {
        "delta worse"
    } else if better {
        "delta better"
    } else {
        "delta"
    };
    format!(" <span class=\"{class}\">{:+.0}%</span>", change * 100.0)
}

/// Connection and message counters, one column per run.
pub(super) fn counters(sides: &[Side<'_>]) -> String {
    type Get = fn(&Summary) -> String;
    let rows: [(&str, Get); 19] = [
        ("attempted", |s| thousands(s.counters.attempted)),
        ("accepted", |s| thousands(s.counters.accepted)),
        ("rejected (refused at the upgrade, or in band after it)", |s| {
            thousands(s.counters.rejected)
        }),
        (
            "rejected in band (of those: upgrade accepted, then refused before acceptance)",
            |s| thousands(s.counters.rejected_in_band),
        ),
        ("failed (no answer)", |s| thousands(s.counters.failed)),
        (
            "shed (of those: under load or while the server went down, not a violation)",
            |s| thousands(s.counters.shed),
        ),
        (
            "shed after acceptance (close 1013 or a reject.shed code)",
            |s| thousands(s.counters.shed_after_acceptance),
        ),
        (
            "replaced (a reject.replaced code: another connection took over)",
            |s| thousands(s.counters.replaced),
        ),
        (
            "closed idle (past the declared idle_timeout: the server's idle policy)",
            |s| thousands(s.counters.closed_idle),
        ),
        (
            "closed at lifetime (the declared max_lifetime: the server's policy)",
            |s| thousands(s.counters.closed_at_lifetime),
        ),
        (
            "expired (closed or refused after their token's exp: the scenario's ttl)",
            |s| thousands(s.counters.expired),
        ),
        (
            "close unanswered (our Close got none back within 2s: RFC 6455 §5.5.1, not a violation)",
            |s| thousands(s.counters.close_unanswered),
        ),
        ("messages sent", |s| thousands(s.counters.messages_sent)),
        ("messages received", |s| {
            thousands(s.counters.messages_received)
        }),
        ("received per second", |s| {
            format!("{:.1}", s.received_per_sec)
        }),
        ("bytes received", |s| thousands(s.counters.bytes_received)),
        ("expectations met", |s| {
            format!(
                "{} of {}",
                thousands(s.counters.expect.expectations_met),
                thousands(s.counters.expect.expectations)
            )
        }),
        ("non-JSON / binary frames", |s| {
            format!("{} / {}", s.counters.non_json, s.counters.binary_frames)
        }),
        ("buffer overflows", |s| {
            thousands(s.counters.expect.buffer_overflows)
        }),
    ];
    let mut html = String::from("<table class=\"data kv\"><thead><tr><th></th>");
    for side in sides {
        let _ = write!(
            html,
            "<th class=\"num\">{}{}</th>",
            side.swatch(),
            esc(side.short)
        );
    }
    html.push_str("</tr></thead><tbody>");
    for (label, get) in rows {
        let _ = write!(html, "<tr><td>{label}</td>");
        for side in sides {
            let _ = write!(html, "<td class=\"num\">{}</td>", get(&side.run.summary));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    html
}

/// A cause → count table with a bar for each cause's share; `None` when there are none.
pub(super) fn causes(title: &str, causes: &BTreeMap<Cause, u64>) -> Option<String> {
    let total: u64 = causes.values().sum();
    if total == 0 {
        return None;
    }
    let mut sorted: Vec<(&Cause, &u64)> = causes.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut html = format!(
        "<table class=\"data\"><thead><tr><th>{}</th><th class=\"num\">count</th><th class=\"bar-col\">share</th></tr></thead><tbody>",
        esc(title)
    );
    for (cause, count) in sorted {
        let share = *count as f64 / total as f64;
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&cause.to_string()),
            thousands(*count),
            bar(share, "neutral")
        );
    }
    html.push_str("</tbody></table>");
    Some(html)
}

/// Per event type: expected, arrived and the success rate.
pub(super) fn events(sides: &[Side<'_>]) -> Option<String> {
    let main = &sides.first()?.run.summary;
    if main.events.is_empty() {
        return None;
    }
    let mut html = String::from(
        "<table class=\"data\"><thead><tr><th>event</th><th class=\"num\">expected</th><th class=\"num\">arrived</th>\
         <th class=\"num\">rate</th><th class=\"bar-col\"></th></tr></thead><tbody>",
    );
    for (name, e) in &main.events {
        let kind = if e.rate >= 0.999 {
            "good"
        } else if e.rate >= 0.99 {
            "warn"
        } else {
            "bad"
        };
        let vs = sides
            .get(1)
            .and_then(|s| s.run.summary.events.get(name))
            .map(|o| delta(e.rate, o.rate, false))
            .unwrap_or_default();
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}{vs}</td><td>{}</td></tr>",
            esc(name),
            thousands(e.expected),
            thousands(e.arrived),
            percent(e.rate),
            bar(e.rate, kind)
        );
    }
    html.push_str("</tbody></table>");
    Some(html)
}

/// The scenario's thresholds, one row each: the condition, the outcome (`ok`, `breached`,
/// `not judged`) and the measured line; `None` without any.
pub(super) fn thresholds(results: &[crate::results::ThresholdResult]) -> Option<String> {
    if results.is_empty() {
        return None;
    }
    let mut html = String::from(
        "<table class=\"data\"><thead><tr><th>threshold</th><th>outcome</th><th>measured</th>\
         </tr></thead><tbody>",
    );
    for t in results {
        let (outcome, kind) = if !t.judged {
            ("not judged", "neutral")
        } else if t.passed {
            ("ok", "good")
        } else {
            ("breached", "bad")
        };
        let _ = write!(
            html,
            "<tr><td><code>{} {}</code></td><td class=\"outcome {kind}\">{outcome}</td><td>{}</td></tr>",
            esc(&t.metric),
            esc(&t.condition),
            esc(&t.message)
        );
    }
    html.push_str("</tbody></table>");
    Some(html)
}

/// The first violations with who, when, what was expected and what was seen; without
/// the token id column when the run presented no token (`no_token`).
pub(super) fn violations(list: &[Violation], total: u64, no_token: bool) -> String {
    let jti_head = if no_token { "" } else { "<th>jti</th>" };
    let mut html = format!(
        "<table class=\"data violations\"><thead><tr><th class=\"num\">at</th><th>oracle</th><th class=\"num\">conn</th>\
         <th class=\"num\">user</th><th>group</th>{jti_head}<th>expected</th><th>seen</th></tr></thead><tbody>",
    );
    for v in list.iter().take(LISTED_VIOLATIONS) {
        let name = v.oracle.name();
        let correlation = v
            .correlation
            .as_deref()
            .map(|c| format!("<div class=\"corr\">{}</div>", esc(c)))
            .unwrap_or_default();
        // Learned by calibration, not declared by the scenario: say so beside the oracle.
        let learned = if v.learned {
            " <small>learned</small>"
        } else {
            ""
        };
        let jti = if no_token {
            String::new()
        } else {
            format!("<td><code>{}</code></td>", esc(&v.jti))
        };
        let _ = write!(
            html,
            "<tr><td class=\"num\">{:.3}s</td><td><span class=\"tag tag-{name}\">{name}</span>{learned}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td>{jti}<td>{}{correlation}</td><td>{}</td></tr>",
            v.at_ms / 1000.0,
            v.conn,
            v.user,
            esc(&v.group),
            esc(&v.expected_shown()),
            esc(&v.seen)
        );
    }
    html.push_str("</tbody></table>");
    let shown = list.len().min(LISTED_VIOLATIONS) as u64;
    if total > shown {
        let _ = write!(html, "<p class=\"note\">Showing the first {shown} of {} violations; every kept one is in <code>violations.jsonl</code>.</p>", thousands(total));
    }
    html
}

fn bar(fraction: f64, kind: &str) -> String {
    let width = (fraction.clamp(0.0, 1.0) * 100.0).max(0.5);
    format!(
        "<div class=\"bar\"><div class=\"fill {kind}\" style=\"width:{width:.1}%\"></div></div>"
    )
}

pub(super) fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p == 100.0 || p == 0.0 {
        format!("{p:.0}%")
    } else if !(1.0..99.0).contains(&p) {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// `12345` → `12,345`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
