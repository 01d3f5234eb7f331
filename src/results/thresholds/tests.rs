use super::*;
use crate::model::{BadToken, LenientAcceptance};
use crate::results::fixture::summary;
use crate::scenario::load_str;

/// The thresholds of a scenario whose `[thresholds]` table is `body`.
fn thresholds(body: &str) -> Vec<Threshold> {
    let text = format!(
        "name = \"t\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\n\
         steps = [{{ send = {{ type = \"go\" }} }}, {{ expect = \"agent_started agent_completed\" }}]\n[thresholds]\n{body}\n"
    );
    match load_str(&text, "t.toml") {
        Ok(s) => s.thresholds,
        Err(e) => panic!("{e}"),
    }
}

fn one(body: &str) -> ThresholdResult {
    evaluate(&summary(), &thresholds(body)).remove(0)
}

#[test]
fn breach_message_names_value_limit_and_verdict() {
    let r = one("\"turn.p99\" = \"< 2s\"");
    assert!(!r.passed);
    assert_eq!(r.actual, Some(2310.0));
    assert_eq!(r.message, "turn.p99 = 2.31s, limit < 2s: BREACHED");
    let r = one("\"turn.p99\" = \"<= 2.31s\"");
    assert!(r.passed, "{}", r.message);
    assert_eq!(r.message, "turn.p99 = 2.31s, limit <= 2.31s: ok");
}

#[test]
fn rates_are_fractions_of_attempted() {
    let r = one("\"errors.rate\" = \"< 1%\"");
    assert_eq!(r.actual, Some(0.01));
    assert!(!r.passed, "1% is not < 1%");
    assert_eq!(r.message, "errors.rate = 1%, limit < 1%: BREACHED");
    assert!(one("errors = \"<= 1%\"").passed);
    assert_eq!(one("rejected = \"< 1%\"").actual, Some(0.006));
    assert_eq!(one("failed = \"< 1%\"").actual, Some(0.004));
}

/// Attempts the server shed under load, refused before acceptance or closed after it, of
/// those attempted: a clean run whose server turned most of its load away fails a
/// `shed.rate` limit (its policy is no violation, and `rejected.rate` sees only refusals
/// before acceptance).
#[test]
fn the_shed_rate_counts_sheds_before_and_after_acceptance() {
    let mut sum = summary();
    sum.counters.attempted = 30;
    (sum.counters.shed, sum.counters.shed_after_acceptance) = (2, 21);
    let r = evaluate(&sum, &thresholds("\"shed.rate\" = \"< 5%\"")).remove(0);
    assert_eq!(r.actual, Some(23.0 / 30.0));
    assert!(!r.passed, "{}", r.message);
    assert!(
        r.message.starts_with("shed.rate = 76.667%"),
        "{}",
        r.message
    );
    sum.counters.shed_after_acceptance = 0;
    assert!(
        evaluate(&sum, &thresholds("shed = \"<= 10%\""))
            .remove(0)
            .passed
    );
}

/// Expectations the server answered with its error event, of those judged (the cut and
/// the refused left out); none judged is no data, a breach.
#[test]
fn the_errored_rate_is_of_the_judged_expectations() {
    let mut sum = summary();
    let e = &mut sum.counters.expect;
    (e.expectations, e.expectations_met, e.expectations_errored) = (120, 90, 10);
    (e.expectations_cut, e.expectations_refused) = (15, 5);
    let judge = |s: &Summary, body: &str| evaluate(s, &thresholds(body)).remove(0);
    let r = judge(&sum, "\"errored.rate\" = \"< 5%\"");
    assert_eq!(r.actual, Some(0.1));
    assert_eq!(r.message, "errored.rate = 10%, limit < 5%: BREACHED");
    assert!(judge(&sum, "errored = \"<= 10%\"").passed);
    let none = &mut sum.counters.expect;
    (
        none.expectations,
        none.expectations_cut,
        none.expectations_refused,
    ) = (5, 5, 0);
    let r = judge(&sum, "errored = \"< 5%\"");
    assert!(!r.passed && r.actual.is_none(), "{}", r.message);
}

#[test]
fn counts_throughput_and_events() {
    let r = one("violations = \"== 0\"");
    assert_eq!((r.actual, r.passed), (Some(2.0), false));
    assert!(one("\"identity.violations\" = \"== 0\"").passed);
    assert!(!one("\"completeness.violations\" = \"== 0\"").passed);
    let r = one("received_per_sec = \"> 100\"");
    assert_eq!((r.actual, r.passed), (Some(1500.0), true));
    assert_eq!(r.message, "received_per_sec = 1500/s, limit > 100: ok");
    assert_eq!(one("sent_per_sec = \">= 300/s\"").actual, Some(300.0));
    let r = one("\"event.agent_completed.rate\" = \">= 99%\"");
    assert!(r.passed, "{}", r.message);
    assert!(!one("\"event.agent_completed.rate\" = \"> 99%\"").passed);
}

#[test]
fn lenient_acceptances_are_a_count() {
    let lenient = [
        LenientAcceptance {
            entry: BadToken::EmptySub,
            conn: 1,
            user: 0,
            group: "g".into(),
            jti: "a".into(),
            at_ms: 1.0,
        },
        LenientAcceptance {
            entry: BadToken::WrongIss,
            conn: 2,
            user: 1,
            group: "g".into(),
            jti: "b".into(),
            at_ms: 2.0,
        },
    ];
    let clean = one("lenient_acceptances = \"== 0\"");
    assert_eq!((clean.actual, clean.passed), (Some(0.0), true));
    let mut s = summary();
    s.lenient = crate::results::LenientSummary::of(&lenient);
    let r = evaluate(&s, &thresholds("lenient_acceptances = \"== 0\"")).remove(0);
    assert_eq!((r.actual, r.passed), (Some(2.0), false));
    assert_eq!(r.message, "lenient_acceptances = 2, limit == 0: BREACHED");
    let r = evaluate(&s, &thresholds("lenient_acceptances = \"<= 2\"")).remove(0);
    assert!(r.passed, "{}", r.message);
}

#[test]
fn missing_data_is_a_breach() {
    let r = one("\"tls.p99\" = \"< 1s\"");
    assert_eq!((r.actual, r.passed), (None, false));
    assert_eq!(r.message, "tls.p99 = no samples, limit < 1s: BREACHED");
    let mut s = summary();
    s.counters.attempted = 0;
    let r = evaluate(&s, &thresholds("errors = \"< 1%\"")).remove(0);
    assert!(!r.passed);
    assert!(
        r.message.contains("no connections attempted"),
        "{}",
        r.message
    );
}

#[test]
fn breaches_keeps_only_failures_in_order() {
    let all = evaluate(
        &summary(),
        &thresholds("violations = \"== 0\"\n\"turn.p50\" = \"< 1s\"\n\"turn.p99\" = \"< 2s\""),
    );
    let failed: Vec<&str> = breaches(&all).map(|r| r.metric.as_str()).collect();
    assert_eq!(failed, ["violations", "turn.p99"]);
}

#[test]
fn values_are_formatted_in_human_units() {
    assert_eq!(format_ms(0.85), "850µs");
    assert_eq!(format_ms(12.345), "12.35ms");
    assert_eq!(format_ms(2000.0), "2s");
    assert_eq!(format_value(MetricUnit::Fraction, 0.0005), "0.05%");
    assert_eq!(format_value(MetricUnit::Count, 3.0), "3");
}

/// A run Ctrl-C stopped before its load measured nothing: its thresholds are not judged
/// (each read as breached for want of samples); one stopped mid-load is judged as ever.
#[test]
fn a_run_stopped_before_its_load_judges_no_threshold() {
    let t = thresholds("\"turn.p99\" = \"< 2s\"");
    let mut s = summary();
    s.stopped = crate::model::StopReason::Interrupted;
    assert_eq!(judged_thresholds(&s, &t).len(), 1, "stopped mid-load");
    s.counters = Default::default();
    assert!(judged_thresholds(&s, &t).is_empty());
}

/// A run that could not exercise its target (here a wrong secret) judges no threshold:
/// each is kept, marked not judged (no "BREACHED" in summary.json or --json), and none
/// counts as breached, where a run that exercised it breaches the same threshold.
#[test]
fn a_run_that_could_not_exercise_its_target_judges_no_threshold() {
    let t = thresholds("\"errored.rate\" = \"== 0\"");
    let mut s = summary();
    s.counters.expect = Default::default();
    let exercised = evaluate(&s, &t).remove(0);
    assert!(exercised.judged && !exercised.passed, "{exercised:?}");
    assert!(exercised.message.ends_with("BREACHED"), "{exercised:?}");
    s.verdict = crate::model::Verdict::AuthMisconfigured;
    let all = evaluate(&s, &t);
    let r = all[0].clone();
    assert!(!r.judged && !r.passed && !r.breached(), "{r:?}");
    assert_eq!(
        r.message,
        "errored.rate == 0: not judged, the run could not exercise the target \
         (auth_misconfigured)"
    );
    assert_eq!(breaches(&all).count(), 0);
    s.thresholds = all;
    assert!(s.thresholds_met());
    // Files written before the field read as judged.
    let mut old = serde_json::to_value(&r).unwrap();
    old.as_object_mut().unwrap().remove("judged");
    let read: ThresholdResult = serde_json::from_value(old).unwrap();
    assert!(read.judged);
}

/// `violations` counts what the verdict calls findings: an inconclusive run's violations
/// (a server that went down cut them; the verdict says they are no findings) breach no
/// `violations = "== 0"`, as `compare` leaves them out too; a violations run's all count.
#[test]
fn violations_the_verdict_excuses_are_not_counted() {
    let mut sum = summary();
    sum.verdict = crate::model::Verdict::Violations;
    let judge = |s: &Summary, body: &str| evaluate(s, &thresholds(body)).remove(0);
    assert_eq!(judge(&sum, "violations = \"== 0\"").actual, Some(2.0));
    sum.verdict = crate::model::Verdict::Inconclusive;
    let r = judge(&sum, "violations = \"== 0\"");
    assert!(r.passed, "{}", r.message);
    assert_eq!(r.actual, Some(0.0));
    assert!(judge(&sum, "\"completeness.violations\" = \"== 0\"").passed);
}

/// `unread_frames` counts the frames no oracle could read: non-JSON text records and
/// binary frames, which a server of garbage sends while every expectation is met.
#[test]
fn unread_frames_are_a_count_of_non_json_and_binary_frames() {
    let mut sum = summary();
    sum.counters.non_json = 60;
    sum.counters.binary_frames = 40;
    let r = evaluate(&sum, &thresholds("unread_frames = \"== 0\"")).remove(0);
    assert_eq!((r.actual, r.passed), (Some(100.0), false));
    assert_eq!(r.message, "unread_frames = 100, limit == 0: BREACHED");
}
