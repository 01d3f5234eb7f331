//! `[thresholds]`: every metric and unit parses, and each kind of mistake is pointed at.

use super::*;

/// A valid file with a send and an expect step (events `a`, `b`) after it, and
/// `thresholds` as the table body.
fn with_thresholds(body: &str) -> String {
    format!(
        "name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ send = {{ type = \"go\" }} }}, {{ expect = \"a b+\" }}]\n[thresholds]\n{body}\n"
    )
}

fn only(body: &str) -> Threshold {
    let mut all = load(&with_thresholds(body)).thresholds;
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

#[test]
fn every_metric_kind_parses_to_its_unit() {
    let t = only("\"turn.p99\" = \"< 2s\"");
    assert_eq!(
        t.metric,
        ThresholdMetric::Latency {
            phase: crate::model::Phase::Turn,
            stat: LatencyStat::P99
        }
    );
    assert_eq!(
        (t.op, t.limit, t.text.as_str()),
        (ThresholdOp::Lt, 2000.0, "< 2s")
    );
    let t = only("\"upgrade.p99.9\" = \"<=500ms\"");
    assert_eq!(t.metric.to_string(), "upgrade.p99.9");
    assert_eq!(
        (t.op, t.limit, t.text.as_str()),
        (ThresholdOp::Le, 500.0, "<= 500ms")
    );
    let t = only("\"errors.rate\" = \"< 0.1%\"");
    assert_eq!((t.metric, t.limit), (ThresholdMetric::ErrorRate, 0.001));
    assert_eq!(only("rejected = \"< 0.01\"").limit, 0.01);
    let t = only("violations = \"== 0\"");
    assert_eq!(
        (t.metric, t.op, t.limit),
        (ThresholdMetric::Violations, ThresholdOp::Eq, 0.0)
    );
    let t = only("\"completeness.violations\" = \"== 0\"");
    assert_eq!(
        t.metric,
        ThresholdMetric::OracleViolations {
            oracle: OracleKind::Completeness
        }
    );
    let t = only("lenient_acceptances = \"== 0\"");
    assert_eq!(
        (t.metric.clone(), t.op, t.limit),
        (ThresholdMetric::LenientAcceptances, ThresholdOp::Eq, 0.0)
    );
    assert_eq!(t.metric.unit(), MetricUnit::Count);
    assert_eq!(t.metric.to_string(), "lenient_acceptances");
    let t = only("received_per_sec = \"> 100/s\"");
    assert_eq!(
        (t.metric, t.op, t.limit),
        (ThresholdMetric::ReceivedPerSec, ThresholdOp::Gt, 100.0)
    );
    let t = only("\"event.b.rate\" = \">= 99%\"");
    assert_eq!(t.metric, ThresholdMetric::EventRate { event: "b".into() });
    assert_eq!((t.op, t.limit), (ThresholdOp::Ge, 0.99));
}

#[test]
fn bare_dotted_keys_and_subtables_mean_the_same() {
    let quoted = load(&with_thresholds(
        "\"turn.p99\" = \"< 2s\"\n\"tls.p99.9\" = \"< 1s\"",
    ))
    .thresholds;
    let bare = load(&with_thresholds(
        "turn.p99 = \"< 2s\"\ntls.p99.9 = \"< 1s\"",
    ))
    .thresholds;
    assert_eq!(quoted, bare);
    assert_eq!(quoted.len(), 2);
    assert_eq!(
        quoted[0].metric.to_string(),
        "turn.p99",
        "file order is kept"
    );
}

#[test]
fn thresholds_are_optional() {
    assert!(load(&with_top("")).thresholds.is_empty());
}

#[test]
fn unknown_metric_lists_what_is_valid() {
    let (line, column, message) = problem(&with_thresholds("\"turn.p95\" = \"< 2s\""));
    assert_eq!((line, column), (8, 1));
    assert!(
        message.contains("unknown statistic \"p95\" for phase turn"),
        "{message}"
    );
    assert!(message.contains("p99.9"), "{message}");
    let (_, _, message) = problem(&with_thresholds("latency = \"< 2s\""));
    assert!(message.contains("unknown metric \"latency\""), "{message}");
    // A typo is answered with the name it likely meant, its statistic kept.
    let (_, _, message) = problem(&with_thresholds("\"trun.p99\" = \"< 2s\""));
    assert!(
        message.contains("unknown metric \"trun.p99\"; did you mean \"turn.p99\"?"),
        "{message}"
    );
    let (_, _, message) = problem(&with_thresholds("\"error.rate\" = \"< 1%\""));
    assert!(
        message.contains("did you mean \"errors.rate\"?"),
        "{message}"
    );
    assert!(
        message.contains("tcp_connect") && message.contains("event.<type>.rate"),
        "{message}"
    );
    assert_problem(
        &with_thresholds("\"auth.violations\" = \"== 0\""),
        "unknown oracle \"auth\"",
    );
    assert_problem(
        &with_thresholds("\"event.zzz.rate\" = \"> 99%\""),
        "expected one of: a, b",
    );
    // Typos of an oracle or of an expected event get a guess too.
    assert_problem(
        &with_thresholds("\"identiy.violations\" = \"== 0\""),
        "; did you mean \"identity\"?",
    );
}

#[test]
fn bad_operator_or_value_is_pointed_at() {
    let (line, column, message) = problem(&with_thresholds("\"turn.p99\" = \"2s\""));
    assert_eq!((line, column), (8, 14));
    assert!(
        message.contains("an operator (<, <=, >, >=, ==)"),
        "{message}"
    );
    assert_problem(&with_thresholds("\"turn.p99\" = \"< 2\""), "missing unit");
    assert_problem(&with_thresholds("errors = \"< 150%\""), "at most 100%");
    assert_problem(&with_thresholds("errors = \"< 1e-3\""), "percentage like");
    assert_problem(&with_thresholds("violations = \"< 0.5\""), "whole number");
    assert_problem(
        &with_thresholds("received_per_sec = \"> fast\""),
        "rate per second",
    );
    assert_problem(
        &with_thresholds("violations = 0"),
        "expected a condition string",
    );
}

/// A bare number where a condition goes is told the form its metric takes, not a
/// latency's `"< 2s"`.
#[test]
fn a_number_for_a_condition_is_told_its_metric_form() {
    let (_, _, message) = problem(&with_thresholds("violations = 0"));
    assert_eq!(
        message,
        "thresholds.violations: expected a condition string, an operator (<, <=, >, >=, ==) \
         then a whole number, found the integer 0; write violations = \"== 0\""
    );
    assert_problem(
        &with_thresholds("\"completeness.violations\" = 3"),
        "found the integer 3; write \"completeness.violations\" = \"<= 3\"",
    );
    assert_problem(
        &with_thresholds("received_per_sec = 100"),
        "then a rate per second, found the integer 100; write received_per_sec = \"> 100/s\"",
    );
    assert_problem(
        &with_thresholds("errors = 0.5"),
        "then a percentage or a fraction, found the float 0.5; write errors = \"< 0.1%\"",
    );
    assert_problem(
        &with_thresholds("\"event.b.rate\" = 1"),
        "write \"event.b.rate\" = \">= 99%\"",
    );
    assert_problem(
        &with_thresholds("\"turn.p99\" = true"),
        "then a duration, found a boolean; write \"turn.p99\" = \"< 2s\"",
    );
    assert_problem(&with_thresholds("\"turn.p99\" = \"!= 2s\""), "an operator");
}

#[test]
fn every_problem_is_reported_at_once() {
    let all = problems(&with_thresholds(
        "x = \"< 1\"\n\"turn.p99\" = \"2s\"\nviolations = \"== -1\"",
    ));
    assert_eq!(all.len(), 3, "{all:#?}");
}

/// A latency threshold on a phase only some steps time, in a scenario with none of them,
/// could only read "no samples": refused at its key, naming the step it needs.
#[test]
fn a_threshold_on_a_phase_no_step_times_is_refused() {
    let (line, column, message) = problem(&with_thresholds("\"pong.p99\" = \"< 1s\""));
    assert_eq!((line, column), (8, 1), "{message}");
    assert!(
        message.contains("\"pong.p99\" measures the pong phase")
            && message.contains("a `ping` step with `within`"),
        "{message}"
    );
    // A ping step without `within` times nothing.
    let untimed = with_steps("{ ping = \"x\" }")
        .replace("\n]\n", "\n]\n[thresholds]\n\"pong.max\" = \"< 1s\"\n");
    assert_problem(&untimed, "the pong phase");
    let timed = with_steps("{ ping = \"x\", within = \"1s\" }")
        .replace("\n]\n", "\n]\n[thresholds]\n\"pong.max\" = \"< 1s\"\n");
    assert_eq!(load(&timed).thresholds.len(), 1);
    // Turn latencies need an expect step somewhere.
    let no_expect = with_steps("{ send = { type = \"hi\" } }")
        .replace("\n]\n", "\n]\n[thresholds]\n\"turn.p99\" = \"< 1s\"\n");
    assert_problem(&no_expect, "only an `expect` after a `send` times");
    // A greeting's expect, or an expect_none, times no turn; a repeat's expect before
    // its send answers the last round's request.
    for steps in [
        "{ expect = \"hello\" }, { send = { type = \"hi\" } }",
        "{ send = { type = \"hi\" } }, { expect_none = \"oops\", within = \"1s\" }",
    ] {
        let text =
            with_steps(steps).replace("\n]\n", "\n]\n[thresholds]\n\"turn.p99\" = \"< 1s\"\n");
        assert_problem(&text, "the turn phase");
    }
    let looped =
        with_steps("{ repeat = 3, steps = [{ expect = \"ack\" }, { send = { type = \"hi\" } }] }")
            .replace(
                "\n]\n",
                "\n]\n[thresholds]\n\"first_event.p99\" = \"< 1s\"\n",
            );
    assert_eq!(load(&looped).thresholds.len(), 1);
    // Phases every connection times are never refused.
    assert_eq!(only("\"upgrade.p99\" = \"< 1s\"").limit, 1000.0);
}
