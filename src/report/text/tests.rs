use super::*;
use crate::model::{BarrierStats, Shard};
use crate::results::fixture::summary;

fn text(s: &Summary) -> String {
    let mut out = Vec::new();
    render(s, &mut out).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("the report is UTF-8")
}

/// The fixture's violations are two completeness ones of conn 7; listed, each shows this.
const LISTED: &str = "conn 7 user 3 (chatters) jti jti-7";

/// The verdicts of runs that could not judge their target.
const UNJUDGED: [Verdict; 4] = [
    Verdict::AuthMisconfigured,
    Verdict::TargetUnusable,
    Verdict::Unreadable,
    Verdict::ClientLimited,
];

#[test]
fn a_run_that_could_not_judge_its_target_counts_its_violations_on_one_line() {
    for verdict in UNJUDGED {
        let s = Summary {
            verdict,
            ..summary()
        };
        let out = text(&s);
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("violations"))
            .collect();
        assert_eq!(lines.len(), 1, "{verdict}: {out}");
        assert!(
            lines[0].starts_with(
                "violations   not judged: 2 counted (completeness 2), what the verdict names, \
                 not findings"
            ),
            "{verdict}: {out}"
        );
        assert!(!out.contains(LISTED), "{verdict} lists them: {out}");
        assert!(!out.contains("… "), "{verdict}: {out}");
    }
}

/// A target no connection was accepted by was never used: whatever refused it (a 404, a
/// refused subprotocol, silence), the line says it was not judged, with no oracle's
/// count (its refusals seen through the oracles) and never "none". A target unusable after
/// accepting connections, and a misconfigured secret, still count theirs as not findings.
#[test]
fn a_target_never_used_leaves_the_oracles_counts_out() {
    let never_used = |total: u64| {
        let mut s = Summary {
            verdict: Verdict::TargetUnusable,
            ..summary()
        };
        s.counters.accepted = 0;
        s.violations.total = total;
        s.violations.by_oracle = [
            (crate::model::OracleKind::Liveness, total / 2),
            (
                crate::model::OracleKind::RejectionHygiene,
                total - total / 2,
            ),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
        text(&s)
    };
    for total in [6, 0] {
        let out = never_used(total);
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("violations"))
            .collect();
        assert_eq!(
            lines,
            [
                "violations   not judged: no connection was accepted, the target was never used \
              (see the verdict)"
            ],
            "{out}"
        );
        assert!(
            !out.contains("liveness") && !out.contains("rejection_hygiene"),
            "{out}"
        );
    }
    let mut misconfigured = Summary {
        verdict: Verdict::AuthMisconfigured,
        ..summary()
    };
    misconfigured.counters.accepted = 0;
    assert!(text(&misconfigured).contains("what the verdict names, not findings"));
}

#[test]
fn findings_are_still_listed() {
    let s = Summary {
        verdict: Verdict::Violations,
        ..summary()
    };
    let out = text(&s);
    assert!(out.contains("violations   2  (completeness 2)\n"), "{out}");
    assert_eq!(out.matches(LISTED).count(), 2, "{out}");
    assert!(!out.contains("not findings"), "{out}");
}

fn barrier(shard: Option<Shard>) -> BarrierStats {
    BarrierStats {
        shard,
        ..BarrierStats::of_release("colliders".into(), 80, vec![100, 200, 300], 133_700)
    }
}

/// A barrier no connection reached (a closed port under `collide`) says so, not that
/// none went out "together" at its release.
#[test]
fn a_barrier_none_reached_is_said_as_such() {
    let s = Summary {
        barriers: vec![BarrierStats::of_release("sharers".into(), 9, Vec::new(), 0)],
        ..summary()
    };
    let out = text(&s);
    assert!(
        out.contains("barrier      sharers: none of 9 released (none reached it)\n")
            && !out.contains("released together"),
        "{out}"
    );
}

#[test]
fn a_merged_result_names_the_part_of_each_barrier() {
    let s = Summary {
        barriers: vec![
            barrier(Some(Shard { index: 0, count: 2 })),
            barrier(Some(Shard { index: 1, count: 2 })),
        ],
        ..summary()
    };
    let out = text(&s);
    assert!(
        out.contains("barrier      colliders (shard 0/2): 3/80 released together at 133.7ms"),
        "{out}"
    );
    assert!(
        out.contains("barrier      colliders (shard 1/2): 3/80 released together"),
        "{out}"
    );
    let meeting = BarrierStats {
        rendezvous: Some(crate::model::RendezvousInfo {
            step: 2,
            iteration: Some(0),
            count: 80,
            arrived: 3,
            timed_out: false,
            missing: Vec::new(),
            missing_total: 0,
            more_meetings: 0,
        }),
        ..barrier(Some(Shard { index: 1, count: 2 }))
    };
    let met = text(&Summary {
        barriers: vec![meeting],
        ..summary()
    });
    assert!(
        met.contains("rendezvous   colliders #2, iteration 1 (shard 1/2): 3/80 arrived"),
        "{met}"
    );
    let whole = Summary {
        barriers: vec![barrier(None)],
        ..summary()
    };
    assert!(
        text(&whole).contains("barrier      colliders: 3/80 released together"),
        "{}",
        text(&whole)
    );
}

#[test]
fn a_planned_duration_shows_as_short_as_it_is_exact() {
    assert_eq!(planned_seconds(60_000.0), "60s");
    assert_eq!(planned_seconds(300.0), "0.3s");
    assert_eq!(planned_seconds(1_250.0), "1.25s");
    // Under a millisecond, as set (`--duration 1us`), not "0s".
    assert_eq!(planned_seconds(0.001), "1µs");
    let mut s = summary();
    s.duration_ms = 300.0;
    s.elapsed_ms = 300.0;
    assert!(text(&s).contains("ran 0.30s of 0.3s"), "{}", text(&s));
}

#[test]
fn the_header_says_why_the_run_stopped_in_words() {
    let mut s = summary();
    s.duration_ms = 20_000.0;
    s.elapsed_ms = 190.0;
    for (stopped, said) in [
        (
            StopReason::Completed,
            "ran 0.19s of 20s (all connections ended)",
        ),
        (StopReason::Duration, "(duration reached)"),
        (StopReason::Interrupted, "(interrupted)"),
        // Refused by the server is all it says of the tokens: valid to us, not to it.
        (
            StopReason::AuthRefused,
            "(stopped early: every token refused)",
        ),
    ] {
        s.stopped = stopped;
        assert!(text(&s).contains(said), "{}", text(&s));
    }
}

#[test]
fn probes_refused_as_token_policy_say_so() {
    let mut s = summary();
    s.probe = crate::results::ProbeSummary {
        tokens: 10,
        refused: 10,
        refused_by_policy: 10,
        ..Default::default()
    };
    let out = text(&s);
    assert!(
        out.contains(
            "0 accepted, 10 refused (10 with \"who are you\": the server takes a token once"
        ),
        "{out}"
    );
}

/// A run that carried no token (`placement = "none"`) probes connections, not tokens.
#[test]
fn probes_of_a_run_without_tokens_count_connections() {
    let mut s = summary();
    s.probe = crate::results::ProbeSummary {
        tokens: 20,
        no_token: true,
        ..Default::default()
    };
    let out = text(&s);
    assert!(
        out.contains("probe        20 connections tried again after the run: 20 accepted"),
        "{out}"
    );
    s.probe.no_token = false;
    assert!(text(&s).contains("20 tokens tried again"), "{}", text(&s));
}

#[test]
fn probes_refused_once_their_token_expired_say_so() {
    let mut s = summary();
    s.probe = crate::results::ProbeSummary {
        tokens: 4,
        refused: 4,
        refused_expired: 4,
        ..Default::default()
    };
    let out = text(&s);
    assert!(
        out.contains("0 accepted, 4 refused (4 after their token expired: the scenario's `ttl`")
            && !out.contains("who are you"),
        "{out}"
    );
}

#[test]
fn shed_probes_are_told_apart_from_unanswered_ones() {
    let mut s = summary();
    s.probe = crate::results::ProbeSummary {
        tokens: 6,
        refused: 1,
        inconclusive: 4,
        shed: 3,
        shed_by: vec!["declared shed code 4429".into(), "HTTP 503".into()],
        refused_by_policy: 0,
        refused_expired: 0,
        no_token: false,
    };
    let out = text(&s);
    assert!(
        out.contains(
            "probe        6 tokens tried again after the run: 1 accepted, 1 refused, 3 shed by \
             the server: declared shed code 4429, HTTP 503 (shedding is policy, not an answer: \
             those probes prove nothing), 1 unanswered or cut (proving nothing)\n"
        ),
        "{out}"
    );
    // Results written before shed probes were counted read as they did.
    s.probe.shed = 0;
    s.probe.shed_by.clear();
    assert!(
        out_line(&text(&s)).ends_with("1 refused, 4 unanswered or cut (proving nothing)"),
        "{}",
        text(&s)
    );
}

fn out_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("probe"))
        .unwrap_or_default()
}

#[test]
fn a_password_in_an_old_results_target_is_shown_masked() {
    let mut s = summary();
    s.target = "ws://user:old-secret-77@127.0.0.1:9/ws".into();
    let out = text(&s);
    assert!(!out.contains("old-secret-77"), "{out}");
    assert!(out.contains("ws://user:***@127.0.0.1:9/ws"), "{out}");
    let junit = crate::report::junit(&s);
    assert!(!junit.contains("old-secret-77"), "{junit}");
}

/// Replies short of a kind calibration saw every time are one line, the most frequent
/// first, saying they were not judged; none, no line.
#[test]
fn replies_short_of_calibration_are_counted_on_a_line_of_their_own() {
    let mut s = summary();
    assert!(!text(&s).contains("replies short of calibration"));
    s.counters.expect.learned_replies_short = [
        ("ask without tool".to_string(), 4),
        ("ask without progress".to_string(), 9),
    ]
    .into();
    let out = text(&s);
    let line = out
        .lines()
        .find(|l| l.contains("replies short of calibration"))
        .unwrap_or_else(|| panic!("no line in:\n{out}"));
    assert!(line.contains("not judged"), "{line}");
    assert!(
        line.contains("ask without progress ×9, ask without tool ×4"),
        "{line}"
    );
}

/// A Close's text is its reason, quoted, not a body; an HTTP answer's text is its body.
#[test]
fn an_answer_line_says_reason_for_a_close_and_body_for_http() {
    let s = Summary {
        answers: vec![
            Answer::new(
                Cause::ServerClose(4429),
                "Close 4429".into(),
                b"too many requests",
            ),
            Answer::new(Cause::Http(404), "HTTP/1.1 404 Not Found".into(), b"<html>"),
            Answer::new(Cause::ServerClose(1008), "Close 1008".into(), b""),
        ],
        ..summary()
    };
    let out = text(&s);
    assert!(
        out.contains("answer       server_close_4429: Close 4429  reason: \"too many requests\"\n"),
        "{out}"
    );
    assert!(
        out.contains("answer       http_404: HTTP/1.1 404 Not Found  body: <html>\n"),
        "{out}"
    );
    assert!(
        out.contains("answer       server_close_1008: Close 1008\n"),
        "{out}"
    );
}

/// A `reconnect` makes more attempts than connections: the report says why the counts
/// differ, and says nothing when they do not.
#[test]
fn more_attempts_than_connections_are_explained() {
    let mut s = summary();
    s.counters.attempted = s.connections_planned as u64 * 2;
    let out = text(&s);
    let expected = format!(
        "  attempts     {} attempts for {} connections: reconnects and retries",
        s.counters.attempted, s.connections_planned
    );
    assert!(out.contains(&expected), "{out}");
    s.counters.attempted = s.connections_planned as u64;
    assert!(!text(&s).contains("reconnects and retries"), "{}", text(&s));
}

/// A refusal after a successful upgrade (graphql-transport-ws's 4403 after
/// `connection_init`) is said to be one on the connections line: "accepted 0 rejected 20"
/// alone reads as upgrades the server turned away.
#[test]
fn refusals_after_a_successful_upgrade_are_said_to_be_in_band() {
    let mut s = summary();
    s.counters.attempted = 20;
    s.counters.accepted = 0;
    s.counters.rejected = 20;
    s.counters.failed = 0;
    s.counters.rejected_in_band = 20;
    let out = text(&s);
    assert!(
        out.contains(
            "connections  attempted 20  accepted 0  rejected 20 (in band: upgrade accepted, \
             then refused)  failed 0"
        ),
        "{out}"
    );
    s.counters.rejected_in_band = 5;
    let out = text(&s);
    assert!(
        out.contains("rejected 20 (5 of them in band: upgrade accepted, then refused)  failed 0"),
        "{out}"
    );
    // Refused at the upgrade (an HTTP 401): nothing more.
    s.counters.rejected_in_band = 0;
    let out = text(&s);
    assert!(
        out.contains("rejected 20  failed 0") && !out.contains("in band"),
        "{out}"
    );
}

/// The shed count's words fit a restart's 503s as well as load shed: the verdict's note
/// says which it was, and the count must not contradict it.
#[test]
fn the_shed_count_does_not_call_a_restart_load_shedding() {
    let mut s = Summary {
        verdict: Verdict::Inconclusive,
        ..summary()
    };
    s.counters.shed = 3;
    let out = text(&s);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("shed "))
        .unwrap_or_default();
    assert!(
        line.contains("3 (HTTP 429/503") && line.contains("while the server went down"),
        "{out}"
    );
    assert!(!line.contains("load shedding"), "{line}");
}

/// An inconclusive run's violations (expectations a server going down cut) are excused by
/// its verdict: listed for what they were, and said to be no findings.
#[test]
fn an_inconclusive_runs_violations_are_listed_as_no_findings() {
    let s = Summary {
        verdict: Verdict::Inconclusive,
        ..summary()
    };
    let out = text(&s);
    assert!(
        out.contains("violations   2  (completeness 2)  not findings: the verdict says why\n"),
        "{out}"
    );
    assert_eq!(out.matches(LISTED).count(), 2, "{out}");
}

/// A named turn longer than the phase column (`turn subscription`) widens the column for
/// every row: the figures stay under their headings.
#[test]
fn a_long_turn_name_keeps_the_phase_table_in_line() {
    let mut s = summary();
    let stats = crate::metrics::PhaseStats {
        count: 1,
        p50_ms: 9.479,
        p90_ms: 9.479,
        p99_ms: 9.479,
        p999_ms: 9.479,
        max_ms: 9.479,
        mean_ms: 9.479,
    };
    s.phases.insert("turn".into(), stats.clone());
    s.turns.insert("subscription_confirmed".into(), stats);
    let out = text(&s);
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("phase (ms)"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(table.len() >= 3, "{out}");
    let ends: Vec<usize> = table.iter().map(|l| l.chars().count()).collect();
    assert!(ends.iter().all(|e| *e == ends[0]), "{table:#?}");
    assert!(
        table
            .iter()
            .any(|l| l.starts_with("turn subscription_confirmed ")),
        "{table:#?}"
    );
}

/// Calibration that learned nothing the scenario does not declare is "nothing new": a
/// declared field may well have held on every calibration connection.
#[test]
fn nothing_learned_beyond_the_declared_is_nothing_new() {
    let line = learned_line(&crate::model::LearnedOracles::default());
    assert!(line.starts_with("learned      nothing new"), "{line}");
    assert!(line.contains("but those the scenario declares"), "{line}");
}

/// A kind longer than the column (Pusher's `pusher_internal:subscription_succeeded`)
/// widens it: every row's counts stay under their headings.
#[test]
fn the_event_table_is_as_wide_as_its_longest_kind() {
    let mut s = summary();
    for (kind, expected) in [("pusher_internal:subscription_succeeded", 20), ("chat", 7)] {
        let rate = crate::results::EventRate {
            expected,
            arrived: expected,
            rate: 1.0,
        };
        s.events.insert(kind.into(), rate);
    }
    let out = text(&s);
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("event "))
        .take(1 + s.events.len())
        .collect();
    assert!(table.len() > 2, "{out}");
    // `rate` and each row's `100.0%` end in the same column.
    let widths: std::collections::BTreeSet<usize> =
        table.iter().map(|l| l.trim_end().len()).collect();
    assert_eq!(widths.len(), 1, "{}", table.join("\n"));
}

/// A run that presents no token (`placement = "none"`) lists its violations without the
/// plan's token ids, which would read as tokens the connections sent.
#[test]
fn violations_of_a_run_without_tokens_show_no_token_id() {
    let mut s = Summary {
        verdict: Verdict::Violations,
        ..summary()
    };
    assert_eq!(text(&s).matches(LISTED).count(), 2);
    s.probe.no_token = true;
    let out = text(&s);
    assert!(!out.contains("jti"), "{out}");
    assert_eq!(
        out.matches("conn 7 user 3 (chatters)  expected").count(),
        2,
        "{out}"
    );
}

/// A shard's result and a merged one say so on the run's line: without it a slice of the
/// plan, or several processes' runs combined, read as one whole run.
#[test]
fn a_shard_or_a_merge_says_so_on_the_run_line() {
    let run_line = |s: &Summary| {
        text(s)
            .lines()
            .find(|l| l.starts_with("ran "))
            .map(str::to_string)
            .unwrap_or_default()
    };
    let mut s = summary();
    assert!(!run_line(&s).contains(" · shard") && !run_line(&s).contains("merged"));
    s.shard = Some(Shard { index: 1, count: 4 });
    assert!(
        run_line(&s).ends_with(" planned · shard 1/4"),
        "{}",
        run_line(&s)
    );
    s.merged_from = Some(4);
    assert!(
        run_line(&s).ends_with(" planned · 4 runs merged"),
        "{}",
        run_line(&s)
    );
    s.merged_from = Some(1);
    assert!(
        run_line(&s).ends_with(" planned · 1 run merged alone"),
        "{}",
        run_line(&s)
    );
}

/// A threshold breached for want of data in a run that could not exercise its target
/// (a wrong secret: nothing was judged) is not a second finding beside the verdict.
#[test]
fn thresholds_of_a_run_that_could_not_exercise_its_target_are_not_judged() {
    let breached = crate::results::ThresholdResult {
        metric: "errored.rate".into(),
        op: crate::model::ThresholdOp::Eq,
        limit: 0.0,
        condition: "== 0".into(),
        actual: None,
        passed: false,
        judged: true,
        message: "errored.rate = no expectation judged, limit == 0: BREACHED".into(),
    };
    let unjudged = crate::results::ThresholdResult {
        judged: false,
        message: "errored.rate == 0: not judged".into(),
        ..breached.clone()
    };
    for verdict in UNJUDGED {
        let s = Summary {
            verdict,
            thresholds: vec![unjudged.clone()],
            ..summary()
        };
        let out = text(&s);
        assert!(
            out.contains(&format!(
                "thresholds   not judged: the run could not exercise the target ({}; see the \
                 verdict)\n",
                verdict.name()
            )),
            "{verdict}: {out}"
        );
        assert!(!out.contains("BREACHED"), "{verdict}: {out}");
    }
    let s = Summary {
        verdict: Verdict::Violations,
        thresholds: vec![breached],
        ..summary()
    };
    let out = text(&s);
    assert!(out.contains("thresholds   1 of 1 breached\n"), "{out}");
    assert!(out.contains("limit == 0: BREACHED"), "{out}");
}

/// A run in which no phase completed (a closed port) says so instead of a bare header.
#[test]
fn a_run_without_latency_samples_says_none_were_measured() {
    let mut s = summary();
    s.phases.clear();
    s.turns.clear();
    let out = text(&s);
    assert!(
        out.contains("latency      none measured: no connection completed a phase\n"),
        "{out}"
    );
    assert!(!out.contains("phase (ms)"), "{out}");
    assert!(text(&summary()).contains("phase (ms)"));
}

/// A generator that fell behind in a run that timed nothing (a closed port on an
/// overloaded machine) has no timings to call untrustworthy: it says it started late.
#[test]
fn a_lagging_generator_in_a_run_that_timed_nothing_does_not_distrust_timings() {
    let mut s = summary();
    s.generator.fell_behind = true;
    assert!(text(&s).contains("FELL BEHIND: timings are not trustworthy"));
    s.phases
        .retain(|name, _| name == Phase::GeneratorLag.name());
    s.turns.clear();
    s.phases.insert(
        Phase::GeneratorLag.name().into(),
        crate::results::fixture::phase(10, 30.0, 90.0),
    );
    let out = text(&s);
    assert!(!out.contains("not trustworthy"), "{out}");
    assert!(
        out.contains("FELL BEHIND: connections started late; no latency was measured"),
        "{out}"
    );
}

/// A clean run whose generator fell behind says so on the verdict line too (as the HTML
/// badge does): CLEAN judges what came back, not the latency figures above it. A
/// generator on schedule, or one that timed nothing, adds nothing there.
#[test]
fn a_clean_verdict_says_when_its_timings_are_not_trustworthy() {
    let mut s = summary();
    s.hint = Some("every expectation met".into());
    let verdict_line = |s: &Summary| {
        text(s)
            .lines()
            .find(|l| l.starts_with("verdict"))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        verdict_line(&s),
        "verdict      CLEAN: every expectation met"
    );
    s.generator.fell_behind = true;
    let line = verdict_line(&s);
    assert!(
        line.starts_with("verdict      CLEAN: every expectation met; latency not trustworthy: the generator fell behind"),
        "{line}"
    );
    s.phases
        .retain(|name, _| name == Phase::GeneratorLag.name());
    s.turns.clear();
    assert_eq!(
        verdict_line(&s),
        "verdict      CLEAN: every expectation met"
    );
}

/// What the run's own end cut (`interrupted` in summary.json) reads as the run's end on
/// the console, and as interrupted only when Ctrl-C ended the run.
#[test]
fn connections_cut_by_the_runs_end_are_not_said_interrupted() {
    let mut s = summary();
    s.counters.ended_by = [(crate::model::Cause::Interrupted, 5)].into();
    s.stopped = crate::model::StopReason::Duration;
    let by_duration = text(&s);
    assert!(
        by_duration.contains("ended by     run_end 5"),
        "{by_duration}"
    );
    s.stopped = crate::model::StopReason::Interrupted;
    let by_ctrl_c = text(&s);
    assert!(
        by_ctrl_c.contains("ended by     interrupted 5"),
        "{by_ctrl_c}"
    );
}

/// Paced sends that went out late are said on the console, with how many of them the
/// in-flight bound held (the server owed answers): the offered rate fell short.
#[test]
fn late_paced_sends_are_said_with_those_the_in_flight_bound_held() {
    let mut s = summary();
    assert!(!text(&s).contains("  late  "), "none late, nothing said");
    s.counters.late_sends = 30;
    s.counters.messages_sent = 100;
    let line = |s: &Summary| {
        text(s)
            .lines()
            .find(|l| l.starts_with("  late  "))
            .map(str::to_string)
            .unwrap_or_default()
    };
    let own = line(&s);
    assert!(own.contains("30 of 100 sent more than 5 ms after"), "{own}");
    assert!(!own.contains("max_in_flight"), "{own}");
    s.counters.sends_held_in_flight = 12;
    let held = line(&s);
    assert!(
        held.contains("12 of them held at [limits] max_in_flight"),
        "{held}"
    );
    s.counters.sends_held_in_flight = 30;
    assert!(
        line(&s).contains(", held at [limits] max_in_flight while"),
        "{}",
        line(&s)
    );
}

/// Thresholds an interrupted run met were met by the part that ran: said so, not as a
/// whole run's pass.
#[test]
fn thresholds_met_by_an_interrupted_run_say_it_was_part_of_it() {
    let mut s = summary();
    s.thresholds = vec![crate::results::ThresholdResult {
        passed: true,
        actual: Some(0.5),
        ..crate::results::fixture::breached_threshold()
    }];
    assert!(
        text(&s).contains("thresholds   all 1 met\n"),
        "{}",
        text(&s)
    );
    s.stopped = crate::model::StopReason::Interrupted;
    assert!(
        text(&s).contains("thresholds   all 1 met by the part that ran before Ctrl-C"),
        "{}",
        text(&s)
    );
}

/// A clean run that breached a threshold still says what its hint says (what the run
/// judged: requests all answered with the server's error event, attempts shed), often why
/// the threshold broke; it said only "CLEAN, but thresholds were breached".
#[test]
fn a_clean_run_that_breached_a_threshold_keeps_its_hint() {
    let mut s = summary();
    s.verdict = Verdict::Clean;
    s.hint = Some("80 of 140 expectations met (60 answered with the server's error event)".into());
    s.thresholds = vec![crate::results::fixture::breached_threshold()];
    let out = text(&s);
    assert!(
        out.contains(
            "verdict      CLEAN, but thresholds were breached (exit 1): 80 of 140 expectations met"
        ),
        "{out}"
    );
}
