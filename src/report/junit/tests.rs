use super::*;
use crate::model::ThresholdOp;
use crate::results::fixture::summary;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use std::collections::BTreeMap;

/// Every element (start or empty) with its unescaped attributes, in document order; panics
/// when the document is not well-formed.
fn elements(xml: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                out.push(element(&e));
            }
            Ok(Event::Empty(e)) => out.push(element(&e)),
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "not well-formed at {}: {e}\n{xml}",
                reader.buffer_position()
            ),
        }
    }
    assert_eq!(depth, 0, "unclosed elements");
    out
}

fn element(e: &BytesStart<'_>) -> (String, BTreeMap<String, String>) {
    let name = String::from_utf8_lossy(e.name().as_ref()).to_string();
    let attrs = e
        .attributes()
        .map(|a| {
            let a = a.unwrap();
            let key = String::from_utf8_lossy(a.key.as_ref()).to_string();
            (
                key,
                a.normalized_value(XmlVersion::Implicit1_0)
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    (name, attrs)
}

fn result(metric: &str, condition: &str, passed: bool) -> ThresholdResult {
    ThresholdResult {
        metric: metric.into(),
        op: ThresholdOp::Lt,
        limit: 1.0,
        condition: condition.into(),
        actual: Some(2.0),
        passed,
        judged: true,
        message: format!(
            "{metric} = 2, limit {condition}: {}",
            if passed { "ok" } else { "BREACHED" }
        ),
    }
}

#[test]
fn one_case_per_oracle_and_threshold_with_failures_counted() {
    let thresholds = [
        result("turn.p99", "< 2s", false),
        result("violations", "== 0", true),
    ];
    let mut s = summary();
    s.thresholds = thresholds.to_vec();
    s.verdict = crate::model::Verdict::Violations;
    s.hint = Some("oracles broke (completeness 2)".into());
    let xml = junit(&s);
    let els = elements(&xml);
    let suite = &els.iter().find(|(n, _)| n == "testsuite").unwrap().1;
    assert_eq!(suite["name"], "stampede.golden <path>");
    assert_eq!(
        (suite["tests"].as_str(), suite["failures"].as_str()),
        ("6", "3")
    );
    let cases: Vec<&str> = els
        .iter()
        .filter(|(n, _)| n == "testcase")
        .map(|(_, a)| a["name"].as_str())
        .collect();
    assert_eq!(
        cases,
        [
            "completeness",
            "identity",
            "ordering",
            "turn.p99 < 2s",
            "violations == 0",
            "verdict"
        ]
    );
    let failures: Vec<&BTreeMap<String, String>> = els
        .iter()
        .filter(|(n, _)| n == "failure")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(failures.len(), 3);
    assert!(
        failures[0]["message"].starts_with("2 violations; first: at 1200.5ms conn 7"),
        "{:?}",
        failures[0]
    );
    assert!(failures[0]["message"].contains("seen <close 1011> & \"nothing\""));
    assert_eq!(failures[1]["message"], "turn.p99 = 2, limit < 2s: BREACHED");
    assert_eq!(
        failures[2]["message"],
        "violations: oracles broke (completeness 2)"
    );
}

#[test]
fn a_run_that_could_not_judge_the_target_is_an_error_and_lists_only_oracles_that_were_on() {
    let mut s = summary();
    s.violations = Default::default();
    s.oracles = vec![OracleKind::Completeness];
    s.verdict = crate::model::Verdict::TargetUnusable;
    s.hint = Some("no connection got through the upgrade (http_404 ×4)".into());
    s.answers = vec![crate::model::Answer::new(
        crate::model::Cause::Http(404),
        "HTTP/1.1 404 Not Found".into(),
        b"<html>nope</html>",
    )];
    let els = elements(&junit(&s));
    let cases: Vec<&str> = els
        .iter()
        .filter(|(n, _)| n == "testcase")
        .map(|(_, a)| a["name"].as_str())
        .collect();
    assert_eq!(cases, ["completeness", "verdict"]);
    let error = &els.iter().find(|(n, _)| n == "error").unwrap().1;
    assert_eq!(error["type"], "target_unusable");
    assert!(error["message"].contains("http_404 ×4"), "{error:?}");
    let suite = &els.iter().find(|(n, _)| n == "testsuite").unwrap().1;
    assert_eq!(
        (
            suite["failures"].as_str(),
            suite["errors"].as_str(),
            suite["skipped"].as_str()
        ),
        ("0", "1", "1")
    );
    // The oracle is skipped, not passed: a run that judged nothing proves nothing.
    let skipped = &els.iter().find(|(n, _)| n == "skipped").unwrap().1;
    assert!(skipped["message"].starts_with("not judged"), "{skipped:?}");
    // Nor are its violations failures (a wrong secret's liveness violations): the console
    // calls them no findings.
    let mut misconfigured = summary();
    misconfigured.verdict = crate::model::Verdict::AuthMisconfigured;
    let els = elements(&junit(&misconfigured));
    assert!(!els.iter().any(|(n, _)| n == "failure"), "{els:?}");
    assert!(els.iter().any(|(n, _)| n == "skipped"), "{els:?}");
    // Cut before its load started (incomplete, nothing accepted): nothing passes.
    let mut cut = summary();
    cut.violations = Default::default();
    cut.verdict = crate::model::Verdict::Incomplete;
    cut.counters.accepted = 0;
    let els = elements(&junit(&cut));
    let skipped = els.iter().filter(|(n, _)| n == "skipped").count();
    assert_eq!(skipped, cut.oracles.len(), "{els:?}");
    // An inconclusive run's violations (a server that went down cut them) are no
    // findings either: the oracles that saw them are skipped, saying so, not failed.
    let mut excused = summary();
    excused.verdict = crate::model::Verdict::Inconclusive;
    let els = elements(&junit(&excused));
    assert!(!els.iter().any(|(n, _)| n == "failure"), "{els:?}");
    let skipped: Vec<&String> = els
        .iter()
        .filter(|(n, _)| n == "skipped")
        .map(|(_, a)| &a["message"])
        .collect();
    assert!(
        skipped.iter().any(|m| m.contains("not findings")),
        "{skipped:?}"
    );
}

#[test]
fn several_runs_are_one_suite_each() {
    let mut a = summary();
    a.seed = 1;
    let mut b = summary();
    b.seed = 2;
    b.verdict = crate::model::Verdict::Violations;
    let els = elements(&junit_runs(&[a, b]));
    let suites: Vec<&str> = els
        .iter()
        .filter(|(n, _)| n == "testsuite")
        .map(|(_, a)| a["name"].as_str())
        .collect();
    assert_eq!(
        suites,
        [
            "stampede.golden <path>.seed1",
            "stampede.golden <path>.seed2"
        ]
    );
    let top = &els.iter().find(|(n, _)| n == "testsuites").unwrap().1;
    // Each run: 3 oracle cases + the verdict; failures: 2 completeness + b's verdict.
    assert_eq!(
        (top["tests"].as_str(), top["failures"].as_str()),
        ("8", "3")
    );
}

#[test]
fn session_oracles_that_broke_get_their_own_case() {
    let mut s = summary();
    s.violations.by_oracle.insert(OracleKind::Exclusivity, 1);
    s.violations.total += 1;
    let els = elements(&junit(&s));
    let session = els
        .iter()
        .find(|(n, a)| n == "testcase" && a["name"] == "exclusivity");
    assert!(session.is_some());
    let failures = els.iter().filter(|(n, _)| n == "failure").count();
    assert_eq!(failures, 2);
}

#[test]
fn a_clean_run_has_no_failures() {
    let mut s = summary();
    s.violations = Default::default();
    s.thresholds = vec![result("turn.p99", "< 2s", true)];
    let xml = junit(&s);
    assert!(!xml.contains("<failure"));
    let suite = elements(&xml)
        .into_iter()
        .find(|(n, _)| n == "testsuite")
        .unwrap()
        .1;
    assert_eq!(suite["failures"], "0");
}

#[test]
fn lenient_acceptances_are_a_note_not_a_failure() {
    let mut s = summary();
    s.violations = Default::default();
    let quiet = junit(&s);
    assert!(!quiet.contains("<system-out>"), "{quiet}");
    s.lenient.total = 6;
    s.lenient.by_entry = [("empty-sub".to_string(), 3), ("wrong-iss".to_string(), 3)].into();
    let xml = junit(&s);
    assert!(!xml.contains("<failure"), "{xml}");
    let els = elements(&xml);
    let property = els
        .iter()
        .find(|(n, a)| n == "property" && a["name"] == "lenient_acceptances")
        .unwrap();
    assert_eq!(property.1["value"], "6");
    let note = xml
        .lines()
        .find(|l| l.contains("<system-out>"))
        .unwrap_or_else(|| panic!("no note in {xml}"));
    assert!(
        note.contains(
            "6 bad tokens accepted by server policy, not violations (empty-sub 3, wrong-iss 3)"
        ),
        "{note}"
    );
}

/// The attempts the server shed are a property beside the verdict, never a failure.
#[test]
fn shed_attempts_are_a_property() {
    let mut s = summary();
    s.violations = Default::default();
    s.counters.shed = 12;
    s.counters.shed_after_acceptance = 3;
    s.counters.replaced = 5;
    s.counters.closed_idle = 7;
    s.counters.closed_at_lifetime = 4;
    s.counters.expired = 2;
    s.counters.close_unanswered = 6;
    let xml = junit(&s);
    assert!(!xml.contains("<failure"), "{xml}");
    let els = elements(&xml);
    for (name, value) in [
        ("shed", "12"),
        ("shed_after_acceptance", "3"),
        ("replaced", "5"),
        ("closed_idle", "7"),
        ("closed_at_lifetime", "4"),
        ("expired", "2"),
        ("close_unanswered", "6"),
    ] {
        let property = els
            .iter()
            .find(|(n, a)| n == "property" && a["name"] == name)
            .unwrap_or_else(|| panic!("no {name} property in {xml}"));
        assert_eq!(property.1["value"], value, "{name}");
    }
}

#[test]
fn escape_handles_markup_quotes_and_control_characters() {
    assert_eq!(
        escape("a<b>&\"c'\u{1}\td"),
        "a&lt;b&gt;&amp;&quot;c&apos;\td"
    );
    let mut s = summary();
    s.scenario = "x\u{7}]]>&<".into();
    elements(&junit(&s));
}

/// A run that presents no token (`placement = "none"`) describes its violations without
/// the plan's token ids, which would read as tokens sent.
#[test]
fn violations_of_a_run_without_tokens_carry_no_token_id() {
    let mut s = summary();
    s.verdict = crate::model::Verdict::Violations;
    assert!(junit(&s).contains(" jti jti-7: expected"));
    s.probe.no_token = true;
    let xml = junit(&s);
    assert!(!xml.contains("jti"), "{xml}");
    assert!(xml.contains("conn 7 user 3 ("), "{xml}");
}

/// A threshold of a run that could not exercise its target is skipped, as its oracles are:
/// its breach there is a want of data, and the verdict's error names the cause.
#[test]
fn thresholds_of_a_run_that_could_not_exercise_the_target_are_skipped() {
    let mut s = summary();
    s.violations = Default::default();
    s.verdict = crate::model::Verdict::AuthMisconfigured;
    let unjudged = ThresholdResult {
        judged: false,
        message: "errored.rate == 0: not judged, the run could not exercise the target \
                  (auth_misconfigured)"
            .into(),
        ..result("errored.rate", "== 0", false)
    };
    s.thresholds = vec![unjudged];
    let els = elements(&junit(&s));
    let suite = &els.iter().find(|(n, _)| n == "testsuite").unwrap().1;
    assert_eq!(suite["failures"], "0", "{els:?}");
    let case = els
        .iter()
        .position(|(n, a)| n == "testcase" && a["name"] == "errored.rate == 0")
        .expect("the threshold's case");
    let (name, attrs) = &els[case + 1];
    assert_eq!(name, "skipped");
    assert!(
        attrs["message"].contains("not judged, the run could not exercise the target"),
        "{attrs:?}"
    );
    s.verdict = crate::model::Verdict::Violations;
    s.thresholds = vec![result("errored.rate", "== 0", false)];
    let els = elements(&junit(&s));
    assert!(els
        .iter()
        .any(|(n, a)| n == "failure" && a["message"] == "errored.rate = 2, limit == 0: BREACHED"));
}
