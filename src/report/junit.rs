//! JUnit XML for CI: one test suite per run, one test case per oracle and per threshold.
//!
//! The XML is written by hand (it is a handful of elements); every text and attribute goes
//! through [`escape`], which also drops the control characters XML 1.0 forbids.

use crate::model::{OracleKind, Violation};
use crate::results::{Summary, ThresholdResult};
use std::fmt::Write as _;

/// Violations quoted in a failing oracle's body.
const QUOTED_VIOLATIONS: usize = 10;
const ORACLES: [OracleKind; 3] = [
    OracleKind::Completeness,
    OracleKind::Identity,
    OracleKind::Ordering,
];

/// One test case before it is written out.
struct Case {
    classname: String,
    name: String,
    failure: Option<Failure>,
}

struct Failure {
    kind: &'static str,
    message: String,
    body: String,
}

/// The JUnit document for a run: suite `stampede.<scenario>`.
pub fn junit(summary: &Summary, thresholds: &[ThresholdResult]) -> String {
    let suite = format!("stampede.{}", summary.scenario);
    let mut cases: Vec<Case> = oracle_names(summary)
        .into_iter()
        .map(|name| oracle_case(summary, &suite, &name))
        .collect();
    cases.extend(thresholds.iter().map(|t| threshold_case(&suite, t)));
    document(summary, &suite, &cases)
}

/// The three built-in oracles plus any other name the summary counted violations under.
fn oracle_names(summary: &Summary) -> Vec<OracleKind> {
    let mut names: Vec<OracleKind> = ORACLES.to_vec();
    for name in summary.violations.by_oracle.keys() {
        if !names.contains(name) {
            names.push(*name);
        }
    }
    names
}

fn oracle_case(summary: &Summary, suite: &str, oracle: &OracleKind) -> Case {
    let name = oracle.name();
    let count = summary.violations.of(*oracle);
    let first: Vec<&Violation> = summary
        .violations
        .first
        .iter()
        .filter(|v| v.oracle.name() == name)
        .collect();
    let failure = (count > 0).then(|| {
        let message = match first.first() {
            Some(v) => format!("{count} violation(s); first: {}", describe(v)),
            None => format!("{count} violation(s)"),
        };
        let mut body: String = first
            .iter()
            .take(QUOTED_VIOLATIONS)
            .map(|v| describe(v) + "\n")
            .collect();
        if count as usize > first.len().min(QUOTED_VIOLATIONS) {
            body.push_str("... the full list is in violations.jsonl\n");
        }
        Failure {
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

fn describe(v: &Violation) -> String {
    format!(
        "at {:.1}ms conn {} user {} ({}) jti {}: expected {}, seen {}",
        v.at_ms, v.conn, v.user, v.group, v.jti, v.expected, v.seen
    )
}

fn threshold_case(suite: &str, t: &ThresholdResult) -> Case {
    let failure = (!t.passed).then(|| Failure {
        kind: "threshold",
        message: t.message.clone(),
        body: t.message.clone(),
    });
    Case {
        classname: format!("{suite}.threshold"),
        name: format!("{} {}", t.metric, t.condition),
        failure,
    }
}

fn document(summary: &Summary, suite: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let time = summary.elapsed_ms / 1000.0;
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"stampede\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">",
        cases.len()
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time:.3}\" timestamp=\"{}\">",
        escape(suite),
        cases.len(),
        escape(&summary.started_at)
    );
    write_properties(&mut xml, summary);
    for case in cases {
        write_case(&mut xml, case);
    }
    // Lenient acceptances are a note, not a failure: a threshold or a strict policy is
    // what turns them into one.
    if let Some(note) = super::text::lenient_note(summary) {
        let _ = writeln!(xml, "    <system-out>{}</system-out>", escape(&note));
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

fn write_properties(xml: &mut String, s: &Summary) {
    let props = [
        ("seed", s.seed.to_string()),
        ("scenario_hash", s.scenario_hash.clone()),
        ("plan_hash", s.plan_hash.clone()),
        ("target", s.target.clone()),
        ("stopped", s.stopped.to_string()),
        ("lenient_acceptances", s.lenient.total.to_string()),
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
        Some(f) => {
            let _ = writeln!(
                xml,
                ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                f.kind,
                escape(&f.message),
                escape(&f.body)
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
