#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The engine against a deliberately wrong server: each fault must surface as the right
//! finding, and never crash the run.

mod common;

use common::{chat_scenario, run, scenario, spawn_fake, Fault};

async fn run_against(fault: Fault, users: u32, messages: u32) -> stampede::run::RunOutcome {
    let (url, stop) = spawn_fake(fault).await;
    let s = scenario("engine.toml", &chat_scenario("engine", users, messages));
    let outcome = run(&s, Some(url), None).await;
    stop.cancel();
    outcome
}

#[tokio::test]
async fn a_correct_server_gives_zero_violations_and_full_metrics() {
    let outcome = run_against(Fault::None, 10, 3).await;
    let s = &outcome.results.summary;
    assert_eq!(s.violations.total, 0, "{:?}", s.violations.first);
    assert_eq!(s.counters.attempted, 10);
    assert_eq!(s.counters.accepted, 10);
    assert_eq!(s.counters.messages_sent, 30);
    // 1 connection_established + 30 × 5 events
    assert_eq!(s.counters.messages_received, 10 + 150);
    assert_eq!(s.counters.expect.expectations_met, 10 + 30);
    for phase in [
        "tcp_connect",
        "upgrade",
        "first_frame",
        "first_event",
        "turn",
        "generator_lag",
    ] {
        assert!(
            s.phases.get(phase).is_some_and(|p| p.count > 0),
            "phase {phase} missing: {:?}",
            s.phases.keys()
        );
    }
    assert_eq!(s.phases["turn"].count, 30);
    assert_eq!(s.events["agent_completed"].expected, 30);
    assert_eq!(s.events["agent_completed"].arrived, 30);
    assert_eq!(s.stopped.name(), "completed");
    assert_eq!(stampede::cli::error::of_run(&outcome.results.summary), 0);
}

#[tokio::test]
async fn a_dropped_event_is_a_completeness_violation() {
    let outcome = run_against(Fault::DropEvent, 3, 2).await;
    let s = &outcome.results.summary;
    assert_eq!(
        s.violations
            .by_oracle
            .get(&stampede::model::OracleKind::Completeness),
        Some(&6),
        "{:?}",
        s.violations
    );
    let v = &s.violations.first[0];
    assert!(v.expected.contains("tool_completed"), "{}", v.expected);
    assert!(v
        .correlation
        .as_deref()
        .is_some_and(|r| r.starts_with("run-")));
    assert_eq!(s.events["tool_completed"].arrived, 0);
    assert_eq!(s.events["agent_started"].arrived, 6);
    assert_eq!(stampede::cli::error::of_run(&outcome.results.summary), 1);
}

#[tokio::test]
async fn another_users_events_are_identity_violations() {
    let outcome = run_against(Fault::WrongUser, 2, 1).await;
    let s = &outcome.results.summary;
    assert_eq!(
        s.violations
            .by_oracle
            .get(&stampede::model::OracleKind::Identity),
        Some(&10),
        "{:?}",
        s.violations.by_oracle
    );
    assert!(s.violations.first[0].seen.contains("someone-else"));
    assert!(!s.violations.first[0].jti.is_empty());
}

#[tokio::test]
async fn a_sequence_gap_is_an_ordering_violation() {
    let outcome = run_against(Fault::SeqGap, 2, 2).await;
    let s = &outcome.results.summary;
    assert_eq!(
        s.violations
            .by_oracle
            .get(&stampede::model::OracleKind::Ordering),
        Some(&4),
        "{:?}",
        s.violations.by_oracle
    );
}

#[tokio::test]
async fn garbage_and_oversized_frames_are_findings_not_crashes() {
    let outcome = run_against(Fault::Garbage, 2, 1).await;
    let s = &outcome.results.summary;
    assert_eq!(s.counters.non_json, 2);
    assert_eq!(
        s.counters
            .ended_by
            .get(&stampede::model::Cause::parse("oversized_frame")),
        Some(&2),
        "{:?}",
        s.counters.ended_by
    );
    assert_eq!(
        s.violations
            .by_oracle
            .get(&stampede::model::OracleKind::Completeness),
        Some(&2)
    );
    assert!(s.violations.first[0].seen.contains("oversized_frame"));
}

#[tokio::test]
async fn a_reset_mid_turn_is_recorded_with_its_cause() {
    let outcome = run_against(Fault::Reset, 2, 2).await;
    let s = &outcome.results.summary;
    assert_eq!(
        s.counters
            .ended_by
            .get(&stampede::model::Cause::parse("reset")),
        Some(&2),
        "{:?}",
        s.counters.ended_by
    );
    assert!(s.violations.first.iter().all(|v| v.seen.contains("reset")));
}

#[tokio::test]
async fn a_silent_server_is_a_handshake_timeout_not_a_hang() {
    let (url, stop) = spawn_fake(Fault::Silent).await;
    let text = chat_scenario("silent", 3, 1).replace(
        "[oracles]",
        "[limits]\nhandshake_timeout = \"300ms\"\n\n[oracles]",
    );
    let s = scenario("silent.toml", &text);
    let outcome = run(&s, Some(url), None).await;
    stop.cancel();
    let c = &outcome.results.summary.counters;
    assert_eq!((c.attempted, c.failed), (3, 3));
    assert_eq!(
        c.refused_by
            .get(&stampede::model::Cause::parse("timeout_upgrade")),
        Some(&3),
        "{:?}",
        c.refused_by
    );
    assert!(outcome.results.summary.elapsed_ms < 5_000.0);
}

#[tokio::test]
async fn the_run_duration_stops_a_handshake_in_progress() {
    let (url, stop) = spawn_fake(Fault::Silent).await;
    let text = chat_scenario("stuck", 2, 1)
        .replace("duration = \"30s\"", "duration = \"500ms\"")
        .replace(
            "[oracles]",
            "[limits]\nhandshake_timeout = \"20s\"\n\n[oracles]",
        );
    let outcome = run(&scenario("stuck.toml", &text), Some(url), None).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.stopped.name(), "duration");
    assert!(
        s.elapsed_ms < 3_000.0,
        "took {} ms: the handshake ignored the run's end",
        s.elapsed_ms
    );
    assert_eq!(
        s.counters
            .refused_by
            .get(&stampede::model::Cause::parse("interrupted")),
        Some(&2),
        "{:?}",
        s.counters.refused_by
    );
    assert_eq!(
        s.violations.total, 0,
        "an interrupted handshake proves nothing"
    );
    // What did complete before the cut is timed: both TCP connects, no upgrade.
    let h = &outcome.results.histograms;
    assert_eq!(h.get(stampede::model::Phase::TcpConnect).len(), 2);
    assert!(h.get(stampede::model::Phase::Upgrade).is_empty());
}
