//! JUnit XML for CI: one test suite per run; one test case per oracle that was on, per
//! threshold, and for the verdict (a failure for violations, an error for a run that could
//! not judge the target, whose oracle cases are then skipped).
//!
//! The XML is written by hand (it is a handful of elements); every text and attribute goes
//! through [`escape`], which also drops the control characters XML 1.0 forbids.

use crate::model::words::plural;
use crate::model::{OracleKind, Verdict, Violation};
use crate::results::{Summary, ThresholdResult};
use crate::scenario::ScenarioError;
use std::fmt::Write as _;

/// Violations quoted in a failing oracle's body.
const QUOTED_VIOLATIONS: usize = 10;

/// One test case before it is written out.
struct Case {
    classname: String,
    name: String,
    failure: Option<Failure>,
}

struct Failure {
    /// `failure` (the target broke something), `error` (the run could not judge it) or
    /// `skipped` (an oracle of such a run).
    element: &'static str,
    kind: &'static str,
    message: String,
    body: String,
}

/// The JUnit document for a run: suite `stampede.<scenario>`, one case per oracle that was
/// on, one per threshold, and one for the verdict.
pub fn junit(summary: &Summary) -> String {
    junit_runs(std::slice::from_ref(summary))
}

/// One document for several runs (`run --seeds`): a suite per run, named with its seed.
pub fn junit_runs(summaries: &[Summary]) -> String {
    let several = summaries.len() > 1;
    let suites: Vec<(String, &Summary, Vec<Case>)> = summaries
        .iter()
        .map(|s| {
            let suite = if several {
                format!("stampede.{}.seed{}", s.scenario, s.seed)
            } else {
                format!("stampede.{}", s.scenario)
            };
            let cases = cases(s, &suite);
            (suite, s, cases)
        })
        .collect();
    document(&suites)
}

fn cases(summary: &Summary, suite: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = oracle_names(summary)
        .into_iter()
        .map(|name| oracle_case(summary, suite, &name))
        .collect();
    cases.extend(summary.thresholds.iter().map(|t| threshold_case(suite, t)));
    cases.push(verdict_case(summary, suite));
    cases
}

/// The oracles that were on, plus any other that counted violations.
fn oracle_names(summary: &Summary) -> Vec<OracleKind> {
    let mut names: Vec<OracleKind> = summary.oracles.clone();
    for name in summary.violations.by_oracle.keys() {
        if !names.contains(name) {
            names.push(*name);
        }
    }
    names
}

/// The verdict as a case: a failure for violations, an error for a run that could not
/// judge the target (unusable, misconfigured, incomplete, inconclusive, client-limited).
fn verdict_case(summary: &Summary, suite: &str) -> Case {
    let verdict = summary.verdict;
    let failure = (verdict != Verdict::Clean).then(|| Failure {
        element: if verdict == Verdict::Violations {
            "failure"
        } else {
            "error"
        },
        kind: verdict.name(),
        message: format!(
            "{}: {}",
            verdict.name(),
            summary.hint.as_deref().unwrap_or("")
        ),
        body: summary
            .answers
            .iter()
            .map(|a| format!("{}: {} {}\n", a.cause, a.detail, a.body))
            .collect(),
    });
    Case {
        classname: format!("{suite}.verdict"),
        name: "verdict".into(),
        failure,
    }
}

/// An oracle as a case: a failure naming its violations, a pass without any, and
/// `skipped` in a run that could not judge the target (unusable, misconfigured,
/// client-limited, unreadable) or accepted no connection (cut before its load): its
/// violations are no findings, and its silence is no pass, as the console says. So are
/// violations the verdict excuses ([`Summary::violations_found`]: an inconclusive run's).
fn oracle_case(summary: &Summary, suite: &str, oracle: &OracleKind) -> Case {
    let name = oracle.name();
    // A run that accepted no connection (cut before the load started) judged nothing
    // either, whatever its verdict.
    let skipped = |message: String| Case {
        classname: format!("{suite}.oracle"),
        name: name.to_string(),
        failure: Some(Failure {
            element: "skipped",
            kind: summary.verdict.name(),
            message,
            body: String::new(),
        }),
    };
    if !summary.verdict.exercised() || summary.counters.accepted == 0 {
        return skipped(format!(
            "not judged: the run could not judge the target ({}; see the verdict)",
            summary.verdict.name()
        ));
    }
    let count = summary.violations.of(*oracle);
    if count > 0 && summary.violations_found(Some(*oracle)) == 0 {
        // The verdict excuses them (an inconclusive run's: a server that went down cut
        // them): counted, no findings, and no pass either.
        return skipped(format!(
            "{}, not findings: the verdict says why ({})",
            plural(count, "violation"),
            summary.verdict.name()
        ));
    }
    let first: Vec<&Violation> = summary
        .violations
        .first
        .iter()
        .filter(|v| v.oracle.name() == name)
        .collect();
    let failure = (count > 0).then(|| {
        let message = match first.first() {
            Some(v) => format!(
                "{}; first: {}",
                plural(count, "violation"),
                describe(v, summary.probe.no_token)
            ),
            None => plural(count, "violation"),
        };
        let mut body: String = first
            .iter()
            .take(QUOTED_VIOLATIONS)
            .map(|v| describe(v, summary.probe.no_token) + "\n")
            .collect();
        if count as usize > first.len().min(QUOTED_VIOLATIONS) {
            body.push_str("... the full list is in violations.jsonl\n");
        }
        Failure {
            element: "failure",
            kind: "violation",
            message,
            body,
        }
    });
    Case {
        classname: format!("{suite}.oracle"),
        name: name.to_string(),
        failure,
    }
}

/// One violation in a line; its token's id left out when the run presented none
/// (`no_token`: the plan's ids would read as tokens sent).
fn describe(v: &Violation, no_token: bool) -> String {
    let jti = super::jti_shown(&v.jti, no_token);
    format!(
        "at {:.1}ms conn {} user {} ({}){jti}: expected {}, seen {}",
        v.at_ms,
        v.conn,
        v.user,
        v.group,
        v.expected_shown(),
        v.seen
    )
}

/// A threshold as a case: a failure when breached, `skipped` in a run that could not
/// exercise the target (its breach there is a want of data, not a measurement).
fn threshold_case(suite: &str, t: &ThresholdResult) -> Case {
    let failure = if !t.judged {
        Some(Failure {
            element: "skipped",
            kind: "threshold",
            message: t.message.clone(),
            body: String::new(),
        })
    } else {
        (!t.passed).then(|| Failure {
            element: "failure",
            kind: "threshold",
            message: t.message.clone(),
            body: t.message.clone(),
        })
    };
    Case {
        classname: format!("{suite}.threshold"),
        name: format!("{} {}", t.metric, t.condition),
        failure,
    }
}

/// The JUnit document for a run whose scenario (`path`) could not be loaded or validated:
/// [`refusal`] with one case, `scenario`, erring with the error's kind and text (each
/// problem's file:line:column).
pub fn scenario_error(path: &std::path::Path, error: &ScenarioError) -> String {
    refusal(path, "scenario", error.kind(), &error.to_string())
}

/// The JUnit document for a run of the scenario at `path` that was refused before it
/// started (exit 2: the scenario did not load, a malformed target, flags that do not
/// combine): one suite, `stampede.<file stem>`, with one case, `case`, erring with type
/// `kind` and `text`, so that a CI step reading the file reports the failure instead of
/// finding no results.
pub fn refusal(path: &std::path::Path, case: &str, kind: &'static str, text: &str) -> String {
    let stem = path
        .file_stem()
        .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    let suite = format!("stampede.{stem}");
    // The first line in the message; every one in the body.
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let message = match lines.count() {
        0 => first.to_string(),
        more => format!("{first} (and {more} more: see the body)"),
    };
    let case = Case {
        classname: format!("{suite}.{case}"),
        name: case.into(),
        failure: Some(Failure {
            element: "error",
            kind,
            message,
            body: text.to_string(),
        }),
    };
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(
        "<testsuites name=\"stampede\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\">\n",
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\" timestamp=\"{}\">",
        escape(&suite),
        chrono::Utc::now().to_rfc3339()
    );
    write_case(&mut xml, &case);
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

fn document(suites: &[(String, &Summary, Vec<Case>)]) -> String {
    let count = |pick: fn(&Case) -> bool| -> usize {
        suites
            .iter()
            .map(|(_, _, c)| c.iter().filter(|c| pick(c)).count())
            .sum()
    };
    let failures = count(|c| c.failure.as_ref().is_some_and(|f| f.element == "failure"));
    let errors = count(|c| c.failure.as_ref().is_some_and(|f| f.element == "error"));
    let skipped = count(|c| c.failure.as_ref().is_some_and(|f| f.element == "skipped"));
    let tests = count(|_| true);
    let time: f64 = suites.iter().map(|(_, s, _)| s.elapsed_ms / 1000.0).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"stampede\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">"
    );
    for (suite, summary, cases) in suites {
        write_suite(&mut xml, suite, summary, cases);
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn write_suite(xml: &mut String, suite: &str, summary: &Summary, cases: &[Case]) {
    let of = |element: &str| {
        cases
            .iter()
            .filter(|c| c.failure.as_ref().is_some_and(|f| f.element == element))
            .count()
    };
    let time = summary.elapsed_ms / 1000.0;
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{time:.3}\" timestamp=\"{}\">",
        escape(suite),
        cases.len(),
        of("failure"),
        of("error"),
        of("skipped"),
        escape(&summary.started_at)
    );
    write_properties(xml, summary);
    for case in cases {
        write_case(xml, case);
    }
    // Lenient acceptances are a note, not a failure: a threshold or a strict policy is
    // what turns them into one.
    if let Some(note) = super::text::lenient_note(summary) {
        let _ = writeln!(xml, "    <system-out>{}</system-out>", escape(&note));
    }
    xml.push_str("  </testsuite>\n");
}

fn write_properties(xml: &mut String, s: &Summary) {
    let props = [
        ("seed", s.seed.to_string()),
        ("scenario_hash", s.scenario_hash.clone()),
        ("plan_hash", s.plan_hash.clone()),
        // Results written before passwords were masked may still hold one.
        ("target", crate::model::url::shown_url(&s.target)),
        ("stopped", s.stopped.to_string()),
        ("verdict", s.verdict.to_string()),
        ("lenient_acceptances", s.lenient.total.to_string()),
        // Attempts the server shed under load: among the rejected and failed, no violation.
        ("shed", s.counters.shed.to_string()),
        // Accepted connections shed later, and those a newer one of their token took over
        // (`reject.replaced`): the server's policy, no violation either.
        (
            "shed_after_acceptance",
            s.counters.shed_after_acceptance.to_string(),
        ),
        ("replaced", s.counters.replaced.to_string()),
        // Accepted connections closed idle past `[oracles] idle_timeout`: its policy too.
        ("closed_idle", s.counters.closed_idle.to_string()),
        // And those closed at their declared `[oracles] max_lifetime`.
        (
            "closed_at_lifetime",
            s.counters.closed_at_lifetime.to_string(),
        ),
        // Closed or refused once their token expired: the scenario's own `ttl`.
        ("expired", s.counters.expired.to_string()),
        // Our Closes the server never answered (RFC 6455 §5.5.1): a protocol fault of its
        // own, said beside the verdict it does not change.
        ("close_unanswered", s.counters.close_unanswered.to_string()),
        ("tool_version", s.tool_version.clone()),
    ];
    xml.push_str("    <properties>\n");
    for (name, value) in props {
        let _ = writeln!(
            xml,
            "      <property name=\"{name}\" value=\"{}\"/>",
            escape(&value)
        );
    }
    xml.push_str("    </properties>\n");
}

fn write_case(xml: &mut String, case: &Case) {
    let _ = write!(
        xml,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
        escape(&case.classname),
        escape(&case.name)
    );
    match &case.failure {
        None => xml.push_str("/>\n"),
        Some(f) if f.element == "skipped" => {
            let _ = writeln!(
                xml,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                escape(&f.message)
            );
        }
        Some(f) => {
            let _ = writeln!(
                xml,
                ">\n      <{el} type=\"{}\" message=\"{}\">{}</{el}>\n    </testcase>",
                f.kind,
                escape(&f.message),
                escape(&f.body),
                el = f.element,
            );
        }
    }
}

/// Escapes text for XML content and attributes, dropping characters XML 1.0 cannot hold.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
