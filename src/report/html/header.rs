//! The top of the page: title, verdict, run facts, the legend and the headline cards.

use super::{esc, phase_label, tables, Side};
use crate::model::words::short_hash;
use crate::model::{Counters, Phase, StopReason, Verdict};
use crate::results::thresholds::format_ms;
use crate::results::Summary;
use std::fmt::Write as _;

pub(super) fn masthead(sides: &[Side<'_>]) -> String {
    let s = &sides[0].run.summary;
    let (verdict, class) = verdict(s);
    let mut html = format!(
        "<header class=\"masthead\"><div class=\"eyebrow\">stampede report</div>\
         <div class=\"title-row\"><h1>{}</h1><span class=\"verdict {class}\">{verdict}</span></div><dl class=\"meta\">",
        esc(&s.scenario)
    );
    // Results written before passwords were masked may still hold one.
    let shown = crate::model::url::shown_url(&s.target);
    let target = match (s.planted_words(), s.embedded_target) {
        (Some(planted), _) => format!("{shown} (built-in reference server with {planted})"),
        (None, true) => format!("{shown} (built-in reference server)"),
        (None, false) => shown,
    };
    let ran = format!(
        "{} of {} planned · {}{}",
        format_ms(s.elapsed_ms),
        format_ms(s.duration_ms),
        s.stopped,
        s.parts_shown()
            .map_or_else(String::new, |parts| format!(" · {parts}"))
    );
    let items = [
        ("started", when(&s.started_at)),
        ("ran", ran),
        ("target", target),
        ("seed", s.seed.to_string()),
        (
            "connections planned",
            tables::thousands(s.connections_planned as u64),
        ),
        ("scenario hash", short_hash(&s.scenario_hash).to_string()),
        ("plan hash", plan_hash_shown(s)),
        ("stampede", s.tool_version.clone()),
    ];
    for (k, v) in items {
        let _ = write!(html, "<div><dt>{k}</dt><dd>{}</dd></div>", esc(&v));
    }
    html.push_str("</dl>");
    // What the verdict rests on and what to do: the console's verdict line, whole.
    if let Some(hint) = &s.hint {
        let _ = write!(html, "<p class=\"hint\">{}</p>", esc(hint));
    }
    // A merged result's warnings, as the merge printed them: its rates may not be one
    // run's, which the figures below do not show.
    for warning in &s.warnings {
        let _ = write!(
            html,
            "<p class=\"hint\"><b>Warning:</b> {}</p>",
            esc(warning)
        );
    }
    // What the console says beside its tables (calibration, the probes, the client's
    // stalls): a page that left them out read as a run without them.
    for (label, text) in crate::report::text::run_notes(s) {
        let _ = write!(
            html,
            "<p class=\"hint\"><b>{}:</b> {}</p>",
            esc(label),
            esc(&text)
        );
    }
    if sides.len() > 1 {
        html.push_str(&legend(sides));
    }
    html.push_str("</header>");
    html
}

/// The plan hash, or what stands for it in a merged result whose parts ran different
/// plans (each shard its own slice): blank read as a field left unwritten.
fn plan_hash_shown(s: &Summary) -> String {
    match (s.plan_hash.is_empty(), s.merged_from) {
        (false, _) => short_hash(&s.plan_hash).to_string(),
        (true, Some(_)) => "one per part (merged)".to_string(),
        (true, None) => "not recorded".to_string(),
    }
}

pub(super) fn legend(sides: &[Side<'_>]) -> String {
    let mut html = String::from("<div class=\"legend\">");
    for side in sides {
        let summary = &side.run.summary;
        let mut extra = String::new();
        if !summary.same_scenario(&sides[0].run.summary) {
            extra.push_str(" · <strong>different scenario</strong>");
        }
        // A shard (or a merge of runs) beside a whole run: its counts and rates are a
        // part's, which its "+100%" beside the other's would not say.
        let parts = summary.parts_shown();
        if let Some(parts) = &parts {
            let differ = sides
                .iter()
                .any(|o| o.run.summary.parts_shown() != Some(parts.clone()));
            let _ = match differ {
                true => write!(extra, " · <strong>{}</strong>", esc(parts)),
                false => write!(extra, " · {}", esc(parts)),
            };
        }
        let _ = write!(
            html,
            "<span>{}<b>{}</b> {} · seed {}{extra}</span>",
            side.swatch(),
            side.short,
            esc(&side.name()),
            summary.seed
        );
    }
    html.push_str("</div>");
    html
}

/// The badge reads the run's one verdict; "no violations" only for a clean run.
fn verdict(s: &Summary) -> (String, &'static str) {
    match s.verdict {
        Verdict::Violations => (
            if s.violations.total == 1 {
                "1 violation".to_string()
            } else {
                format!("{} violations", tables::thousands(s.violations.total))
            },
            "bad",
        ),
        Verdict::TargetUnusable => ("target unusable".into(), "bad"),
        Verdict::AuthMisconfigured => ("auth misconfigured".into(), "bad"),
        Verdict::ClientLimited => ("client limited".into(), "warn"),
        Verdict::Unreadable => ("answers unreadable".into(), "bad"),
        Verdict::Incomplete if s.stopped == StopReason::Interrupted => {
            ("interrupted".into(), "warn")
        }
        Verdict::Incomplete => ("incomplete".into(), "warn"),
        Verdict::Inconclusive => ("inconclusive".into(), "warn"),
        Verdict::Clean if !s.thresholds_met() => ("thresholds breached".into(), "bad"),
        Verdict::Clean if s.generator.fell_behind => ("generator fell behind".into(), "warn"),
        Verdict::Clean => ("no violations".into(), "good"),
    }
}

pub(super) fn cards(sides: &[Side<'_>]) -> String {
    let s = &sides[0].run.summary;
    let vs = sides.get(1).map(|v| &v.run.summary);
    let mut html = String::from("<section class=\"cards\">");
    for card in traffic_cards(s, vs).into_iter().chain(outcome_cards(s, vs)) {
        html.push_str(&card);
    }
    html.push_str("</section>");
    html
}

/// Connections, errors, throughput.
fn traffic_cards(s: &Summary, vs: Option<&Summary>) -> [String; 3] {
    let c = &s.counters;
    let error_rate = if c.attempted == 0 {
        0.0
    } else {
        (c.rejected + c.failed) as f64 / c.attempted as f64
    };
    [
        card(
            "connections accepted",
            &tables::thousands(c.accepted),
            &format!("of {} attempted", tables::thousands(c.attempted)),
            vs.map(|v| (c.accepted as f64, v.counters.accepted as f64, false)),
        ),
        card(
            "connection errors",
            &tables::percent(error_rate),
            &connection_errors(c),
            None,
        ),
        card(
            "messages received",
            &format!("{:.0}/s", s.received_per_sec),
            &format!("{} in total", tables::thousands(c.messages_received)),
            vs.map(|v| (s.received_per_sec, v.received_per_sec, false)),
        ),
    ]
}

/// The errors card's line: `10 rejected · 2 failed`, and `· 8 shed` when the server shed
/// any of them under load (counted among them, never a violation).
fn connection_errors(c: &Counters) -> String {
    let shed = if c.shed > 0 {
        format!(" · {} shed", c.shed)
    } else {
        String::new()
    };
    format!("{} rejected · {} failed{shed}", c.rejected, c.failed)
}

/// Headline latency, violations, generator lag.
fn outcome_cards(s: &Summary, vs: Option<&Summary>) -> [String; 3] {
    let headline = headline_phase(s);
    let main = headline.and_then(|p| s.phases.get(p));
    let other = headline.and_then(|p| vs?.phases.get(p));
    let by_oracle: Vec<String> = s
        .violations
        .by_oracle
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let lag = if s.generator.fell_behind && s.timed_anything() {
        "fell behind: timings not trustworthy"
    } else if s.generator.fell_behind {
        "fell behind: nothing was timed"
    } else {
        "on schedule"
    };
    [
        card(
            &format!("{} p99", headline.map_or("latency", phase_label)),
            &main.map_or("—".into(), |p| format_ms(p.p99_ms)),
            &main.map_or(String::new(), |p| format!("p50 {}", format_ms(p.p50_ms))),
            main.zip(other).map(|(a, b)| (a.p99_ms, b.p99_ms, true)),
        ),
        card(
            "violations",
            &if s.verdict.exercised() {
                tables::thousands(s.violations.total)
            } else {
                "not judged".into()
            },
            &if by_oracle.is_empty() && !s.verdict.exercised() {
                // Nothing reached the oracles: silence here is no pass.
                "the target was not judged (see the verdict)".into()
            } else if !s.verdict.exercised() {
                // What the oracles counted is the misconfiguration seen through them.
                format!(
                    "{} counted ({}): what the verdict names, not findings",
                    tables::thousands(s.violations.total),
                    by_oracle.join(" · ")
                )
            } else if by_oracle.is_empty() {
                "every oracle held".into()
            } else {
                by_oracle.join(" · ")
            },
            None,
        ),
        card(
            "generator lag p99",
            &format_ms(s.generator.lag_p99_ms),
            lag,
            None,
        ),
    ]
}

/// `compare`: (this, other, higher_is_worse) for a delta line under the value.
fn card(label: &str, value: &str, sub: &str, compare: Option<(f64, f64, bool)>) -> String {
    let delta = compare
        .map(|(a, b, worse)| {
            format!(
                "<div class=\"card-vs\">vs {}{}</div>",
                compact_value(b, label),
                tables::delta(a, b, worse)
            )
        })
        .unwrap_or_default();
    format!(
        "<div class=\"card\"><div class=\"card-label\">{}</div><div class=\"card-value\">{}</div><div class=\"card-sub\">{}</div>{delta}</div>",
        esc(label),
        esc(value),
        esc(sub)
    )
}

fn compact_value(v: f64, label: &str) -> String {
    if label.ends_with("p99") {
        format_ms(v)
    } else if label.starts_with("messages") {
        format!("{v:.0}/s")
    } else {
        tables::thousands(v as u64)
    }
}

/// The phase a reader looks at first: the turn when there is one.
fn headline_phase(s: &Summary) -> Option<&'static str> {
    [
        Phase::Turn,
        Phase::FirstEvent,
        Phase::Upgrade,
        Phase::TcpConnect,
    ]
    .into_iter()
    .map(Phase::name)
    .find(|p| s.phases.get(*p).is_some_and(|x| x.count > 0))
}

fn when(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}
