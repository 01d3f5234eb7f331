//! `stampede report`: one self-contained HTML page for a run, optionally overlaid with a
//! second run (`--vs`).
//!
//! Everything is inline: the CSS, and the plots as SVG drawn in Rust with plotters. The
//! page loads nothing, runs no script and references no URL, so it opens the same from a
//! CI artifact, an e-mail or a laptop with no network.

mod header;
mod plots;
mod tables;

use crate::model::Phase;
use crate::results::RunData;
use header::{cards, legend, masthead};
use plots::{Gauge, Series};
use plotters::style::RGBColor;
use std::fmt::Write as _;

const STYLE: &str = include_str!("html/style.css");
const MAIN_COLOR: RGBColor = RGBColor(0x25, 0x63, 0xeb);
const VS_COLOR: RGBColor = RGBColor(0xd9, 0x77, 0x06);
/// Plot sizes match the width they get on the page, so SVG text keeps its size.
const PERCENTILE_PLOT: (u32, u32) = (530, 270);
const STRIP_PLOT: (u32, u32) = (1088, 130);
const TIME_PLOT: (u32, u32) = (344, 210);

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error("cannot draw a plot: {0}")]
    Plot(String),
}

/// One run on the page, with the colour and name it goes by.
pub(super) struct Side<'a> {
    run: &'a RunData,
    color: RGBColor,
    /// `this run` or `vs`.
    short: &'static str,
    /// Whether two runs share the page (colour swatches only mean something then).
    paired: bool,
}

impl Side<'_> {
    fn swatch(&self) -> String {
        if !self.paired {
            return String::new();
        }
        let RGBColor(r, g, b) = self.color;
        format!("<span class=\"swatch\" style=\"background:#{r:02x}{g:02x}{b:02x}\"></span>")
    }

    fn name(&self) -> String {
        self.run.dir.file_name().map_or_else(
            || self.run.dir.display().to_string(),
            |n| n.to_string_lossy().to_string(),
        )
    }
}

/// The whole page for `run`, with `vs` overlaid when given.
pub fn render_html(run: &RunData, vs: Option<&RunData>) -> Result<String, HtmlError> {
    let paired = vs.is_some();
    let mut sides = vec![Side {
        run,
        color: MAIN_COLOR,
        short: "this run",
        paired,
    }];
    if let Some(vs) = vs {
        sides.push(Side {
            run: vs,
            color: VS_COLOR,
            short: "vs",
            paired,
        });
    }
    let s = &run.summary;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\
         <title>stampede · {}</title><style>{STYLE}</style></head><body><main class=\"page\">",
        esc(&s.scenario)
    );
    html.push_str(&masthead(&sides));
    html.push_str(&cards(&sides));
    html.push_str(&latency_section(&sides)?);
    html.push_str(&over_time_section(&sides)?);
    html.push_str(&connections_section(&sides));
    html.push_str(&events_section(&sides));
    html.push_str(&thresholds_section(s));
    html.push_str(&violations_section(&sides)?);
    html.push_str(&footer(&sides));
    html.push_str("</main></body></html>\n");
    Ok(html)
}

fn latency_section(sides: &[Side<'_>]) -> Result<String, HtmlError> {
    let mut html = String::from(
        "<section><h2>Latency by percentile</h2><p class=\"note\">Each curve is the full HdrHistogram of a phase: \
         latency (log scale) at every percentile, on an axis that gives each extra nine the same width.</p>",
    );
    if sides.len() > 1 {
        html.push_str(&legend(sides));
    }
    html.push_str("<div class=\"plots\">");
    for phase in Phase::ALL {
        let series: Vec<Series<'_, _>> = sides
            .iter()
            .map(|s| Series {
                color: s.color,
                data: s.run.histograms.get(phase),
            })
            .filter(|s| !s.data.is_empty())
            .collect();
        if series.is_empty() {
            continue;
        }
        let counts: Vec<String> = series
            .iter()
            .map(|s| tables::thousands(s.data.len()))
            .collect();
        let _ = write!(
            html,
            "<figure><figcaption><b>{}</b><span>{} · {} samples</span></figcaption>{}</figure>",
            phase_label(phase.name()),
            phase_note(phase),
            counts.join(" / "),
            plots::percentiles(&series, PERCENTILE_PLOT)?
        );
    }
    html.push_str("</div><h3>Percentiles</h3>");
    html.push_str(&tables::phases(sides));
    html.push_str("</section>");
    Ok(html)
}

fn over_time_section(sides: &[Side<'_>]) -> Result<String, HtmlError> {
    let series: Vec<Series<'_, _>> = sides
        .iter()
        .filter_map(|s| {
            s.run.intervals.as_ref().map(|i| Series {
                color: s.color,
                data: i,
            })
        })
        .collect();
    if series.is_empty() {
        return Ok(String::new());
    }
    let mut html = String::from("<section><h2>Over time</h2><div class=\"plots three\">");
    for (gauge, title) in [
        (Gauge::Live, "Live connections"),
        (Gauge::ReceivedPerSec, "Messages received per second"),
        (Gauge::TurnP99, "Turn p99 per interval"),
    ] {
        let _ = write!(
            html,
            "<figure><figcaption><b>{title}</b></figcaption>{}</figure>",
            plots::over_time(&series, gauge, TIME_PLOT)?
        );
    }
    html.push_str("</div></section>");
    Ok(html)
}

fn connections_section(sides: &[Side<'_>]) -> String {
    let s = &sides[0].run.summary;
    let mut html =
        String::from("<section><h2>Connections and messages</h2><div class=\"columns\"><div>");
    html.push_str(&tables::counters(sides));
    html.push_str("</div><div>");
    let refused = tables::causes("refused or failed by", &s.counters.refused_by);
    let ended = tables::causes("connection ended by", &s.counters.ended_by);
    for table in [refused, ended].into_iter().flatten() {
        html.push_str(&table);
    }
    html.push_str("</div></div></section>");
    html
}

fn events_section(sides: &[Side<'_>]) -> String {
    match tables::events(sides) {
        Some(table) => format!("<section><h2>Expected events</h2><p class=\"note\">How many of the events that <code>expect</code> steps waited for arrived.</p>{table}</section>"),
        None => String::new(),
    }
}

fn thresholds_section(s: &crate::results::Summary) -> String {
    match tables::thresholds(&s.thresholds) {
        Some(table) => format!("<section><h2>Thresholds</h2><p class=\"note\">The scenario's <code>[thresholds]</code>: a breach fails a clean run (exit 1); in a run that could not exercise its target none is judged.</p>{table}</section>"),
        None => String::new(),
    }
}

fn violations_section(sides: &[Side<'_>]) -> Result<String, HtmlError> {
    let mut html = String::from("<section><h2>Violations</h2>");
    let main = sides[0].run;
    if !main.summary.verdict.exercised() {
        // As the console: against a target the run could not judge, what the oracles saw
        // is the misconfiguration, not a race; listing each refused connection would bury
        // the verdict that says what to fix.
        let _ = write!(
            html,
            "<p class=\"note\">Not judged: the run could not exercise the target ({}; see the \
             verdict). The {} the oracles counted are what the verdict names, not findings; \
             violations.jsonl keeps them.</p></section>",
            esc(main.summary.verdict.name()),
            tables::thousands(main.summary.violations.total)
        );
        return Ok(html);
    }
    if main.summary.violations.total == 0 {
        html.push_str("<p class=\"all-clear\">No oracle found a violation in this run.</p>");
    }
    for side in sides {
        let list = if side.run.violations.is_empty() {
            &side.run.summary.violations.first
        } else {
            &side.run.violations
        };
        if list.is_empty() {
            continue;
        }
        let _ = write!(html, "<figure class=\"strip\"><figcaption>{}<b>{}</b><span>{} on the run's timeline</span></figcaption>{}</figure>", side.swatch(), side.short, tables::thousands(side.run.summary.violations.total), plots::violation_strip(list, side.run.summary.elapsed_ms, STRIP_PLOT)?);
    }
    let list = if main.violations.is_empty() {
        &main.summary.violations.first
    } else {
        &main.violations
    };
    if !list.is_empty() {
        html.push_str(&tables::violations(
            list,
            main.summary.violations.total,
            main.summary.probe.no_token,
        ));
    }
    if let Some(note) = super::text::lenient_note(&main.summary) {
        let _ = write!(
            html,
            "<p class=\"note lenient\"><b>Lenient acceptances.</b> {}</p>",
            esc(&note)
        );
    }
    html.push_str("</section>");
    Ok(html)
}

fn footer(sides: &[Side<'_>]) -> String {
    let dirs: Vec<String> = sides
        .iter()
        .map(|s| {
            format!(
                "{} <code>{}</code>",
                s.short,
                esc(&s.run.dir.display().to_string())
            )
        })
        .collect();
    format!("<footer>Results: {}. Made by stampede {} from summary.json, histograms.json and violations.jsonl.</footer>", dirs.join(" · "), esc(&sides[0].run.summary.tool_version))
}

pub(super) fn phase_label(name: &str) -> &str {
    match name {
        "tcp_connect" => "TCP connect",
        "tls" => "TLS handshake",
        "upgrade" => "WebSocket upgrade",
        "first_frame" => "First frame",
        "first_event" => "First event",
        "turn" => "Turn",
        "turn_raw" => "Turn (raw)",
        "generator_lag" => "Generator lag",
        other => other,
    }
}

fn phase_note(phase: Phase) -> &'static str {
    match phase {
        Phase::TcpConnect => "connect() to established",
        Phase::Tls => "TLS handshake",
        Phase::Upgrade => "upgrade request to 101",
        Phase::FirstFrame => "101 to the first server frame",
        Phase::FirstEvent => "request to its first event",
        Phase::Turn => "intended send to the last expected event (corrected)",
        Phase::TurnRaw => "actual send to the last expected event (raw)",
        Phase::GeneratorLag => "how late actions started",
        Phase::Login => "login request to its answer (before the upgrade)",
        Phase::Pong => "ping step to its pong",
    }
}

fn esc(text: &str) -> String {
    super::junit::escape(text)
}
