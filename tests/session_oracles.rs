//! The shipped issue-3 scenarios against the reference server: clean when it is correct,
//! and the matching session-oracle violation, naming the `jti`s and offsets involved, when
//! one race or auth bug is planted.
//!
//! Planted windows are widened to 50 ms so that a busy 2-core machine still lands in them;
//! the runs in this file take turns (one server and one swarm at a time) for the same reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use stampede::hunt::Runner;
use stampede::model::{OracleKind, Violation};
use stampede::reference::Bug;
use stampede::run::{execute, RunOptions, RunOutcome};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

const WINDOW: Duration = Duration::from_millis(50);
/// Every run here is bounded by this, whatever happens.
const BOUND: Duration = Duration::from_secs(60);

/// One run at a time: the scenarios are timing-sensitive and the machine may have 2 cores.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn shipped(name: &str) -> stampede::model::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    stampede::scenario::load_file(&path).unwrap()
}

/// Runs the shipped scenario `name` against an in-process reference server, with `bug`
/// planted (or correct), bounded in time.
async fn run(name: &str, bug: Option<Bug>) -> RunOutcome {
    let _turn = SERIAL.lock().await;
    let s = shipped(name);
    let plan = stampede::plan::build(&s, s.seed);
    let cancel = CancellationToken::new();
    let runner = Runner::reference(&plan, bug, Some(WINDOW), cancel.child_token())
        .await
        .unwrap();
    let outcome = tokio::time::timeout(
        BOUND,
        execute(
            Arc::new(plan),
            &runner.bound,
            Default::default(),
            &RunOptions::default(),
            cancel.child_token(),
        ),
    )
    .await;
    runner.close().await;
    match outcome {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => panic!("{name} against {bug:?}: run failed: {e}"),
        Err(_) => panic!("{name} against {bug:?}: not done within {BOUND:?}"),
    }
}

/// The console summary, as `stampede run` prints it.
fn text(outcome: &RunOutcome) -> String {
    let mut out = Vec::new();
    stampede::report::render(&outcome.results.summary, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The JSON summary (`summary.json`, `stampede run --json`).
fn json(outcome: &RunOutcome) -> serde_json::Value {
    serde_json::to_value(&outcome.results.summary).unwrap()
}

fn of(outcome: &RunOutcome, oracle: OracleKind) -> Vec<&Violation> {
    outcome
        .results
        .violations
        .iter()
        .filter(|v| v.oracle == oracle)
        .collect()
}

/// A correct server: no violation of any oracle, a conclusive verdict, exit 0.
fn assert_clean(name: &str, outcome: &RunOutcome) {
    let s = &outcome.results.summary;
    assert_eq!(
        s.violations.total,
        0,
        "{name}: false positives {:#?}",
        outcome
            .results
            .violations
            .iter()
            .take(5)
            .collect::<Vec<_>>()
    );
    assert_eq!(s.counters.failed, 0, "{name}: {:?}", s.counters.refused_by);
    assert_eq!(s.verdict.name(), "clean", "{name}");
    assert_eq!(
        stampede::cli::error::of_run(&outcome.results.summary),
        0,
        "{name}"
    );
    assert!(text(outcome).contains("violations   none"), "{name}");
}

/// The summary's first violations (JSON) include `v` with its involved connections, and
/// the console summary names its oracle, `jti` and every shown involved connection.
fn assert_reported(outcome: &RunOutcome, v: &Violation) {
    let summary = json(outcome);
    let first = summary["violations"]["first"].as_array().unwrap();
    let listed = first
        .iter()
        .find(|x| x["conn"] == v.conn && x["oracle"] == v.oracle.name())
        .unwrap_or_else(|| panic!("{v:?} is not among the summary's first violations"));
    assert_eq!(listed["jti"], v.jti.as_str());
    let involved = listed["involved"].as_array().unwrap();
    assert_eq!(involved.len(), v.involved.len());
    for i in involved {
        assert!(i["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert!(i["planned_start_ms"].as_f64().is_some());
        assert!(i["attempt_start_ms"].as_f64().is_some());
        assert!(i["answer"].as_str().is_some_and(|a| !a.is_empty()));
    }
    let shown = text(outcome);
    let line = shown
        .lines()
        .position(|l| l.contains(v.oracle.name()) && l.contains(&format!("jti {}", v.jti)))
        .unwrap_or_else(|| {
            panic!(
                "{} / {} not in the summary:\n{shown}",
                v.oracle.name(),
                v.jti
            )
        });
    let lines: Vec<&str> = shown.lines().collect();
    for (k, i) in v.involved.iter().take(4).enumerate() {
        let l = lines[line + 1 + k];
        assert!(
            l.contains(&format!("conn {}", i.conn))
                && l.contains(&i.jti)
                && l.contains(&format!("planned {:.1}ms", i.planned_start_ms))
                && l.contains(&format!("started {:.3}ms", i.attempt_start_ms)),
            "involved connection {i:?} not shown under its violation:\n{shown}"
        );
    }
}

/// Violations the summary lists first (by time), restricted to one oracle.
fn listed(outcome: &RunOutcome, oracle: OracleKind) -> Vec<&Violation> {
    outcome
        .results
        .summary
        .violations
        .first
        .iter()
        .filter(|v| v.oracle == oracle)
        .collect()
}

// ---- token-reuse-burst ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reuse_burst_is_clean_on_the_reference_server() {
    let outcome = run("token-reuse-burst", None).await;
    assert_clean("token-reuse-burst", &outcome);
    let s = &outcome.results.summary;
    // 80 tokens, 4 connections each: exactly one served per token, the rest refused with 409.
    assert_eq!(s.counters.attempted, 320);
    assert_eq!(s.counters.accepted, 80);
    assert_eq!(
        s.counters
            .refused_by
            .get(&stampede::model::Cause::parse("http_409")),
        Some(&240)
    );
    assert!(
        s.coverage.overlapping_tokens > 0,
        "the race was exercised: {:?}",
        s.coverage
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reuse_burst_catches_token_check_then_act() {
    let outcome = run("token-reuse-burst", Some(Bug::TokenCheckThenAct)).await;
    let found = of(&outcome, OracleKind::Exclusivity);
    assert!(
        !found.is_empty(),
        "{:?}",
        outcome.results.summary.violations
    );
    for v in &found {
        assert!(v.involved.len() >= 2, "{v:?}");
        let mut conns: Vec<u32> = v.involved.iter().map(|i| i.conn).collect();
        conns.dedup();
        assert_eq!(conns.len(), v.involved.len(), "distinct connections: {v:?}");
        for i in &v.involved {
            assert_eq!(i.jti, v.jti, "one token shared: {v:?}");
            assert!(i.answer.starts_with("accepted"), "{i:?}");
            assert!(i.attempt_start_ms >= 0.0 && i.attempt_start_ms < 20_000.0);
        }
    }
    // Every token of the collide group was let through more than once.
    let colliders = found.iter().filter(|v| v.group == "colliders").count();
    assert!(colliders >= 20, "{colliders} of 40 colliding tokens caught");
    assert_reported(&outcome, listed(&outcome, OracleKind::Exclusivity)[0]);
    assert_eq!(stampede::cli::error::of_run(&outcome.results.summary), 1);
}

// ---- reconnect-storm ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_is_clean_on_the_reference_server() {
    let outcome = run("reconnect-storm", None).await;
    assert_clean("reconnect-storm", &outcome);
    let s = &outcome.results.summary;
    // 300 users × 3 connects, 30 aborts and their reconnects.
    assert_eq!(s.counters.accepted, 930);
    assert_eq!(
        s.counters
            .refused_by
            .get(&stampede::model::Cause::parse("aborted_rst")),
        Some(&30)
    );
    assert!(!s
        .counters
        .refused_by
        .contains_key(&stampede::model::Cause::Http(409)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_catches_reconnect_lag() {
    let outcome = run("reconnect-storm", Some(Bug::ReconnectLag)).await;
    let found = of(&outcome, OracleKind::Liveness);
    // 600 reconnects 0-10 ms after a close: how many land inside the bug's window depends
    // on how busy the machine is (57 seen at load 8, hundreds when quiet); the clean test
    // above shows the correct server gives none, so a few dozen are the bug, not noise.
    assert!(
        found.len() >= 20,
        "{} liveness violations: {:?}",
        found.len(),
        outcome.results.summary.violations
    );
    for v in &found {
        assert!(v.seen.contains("http_409"), "{v:?}");
        assert!(v.expected.contains(&v.jti));
        let refused = v.involved.iter().find(|i| i.conn == v.conn).unwrap();
        assert_eq!(refused.jti, v.jti);
        assert!(refused.answer.contains("http_409"), "{refused:?}");
        // The refused attempt is a reconnect: it began after the connection's planned start.
        assert!(
            refused.attempt_start_ms > refused.planned_start_ms,
            "{refused:?}"
        );
    }
    assert_reported(&outcome, listed(&outcome, OracleKind::Liveness)[0]);
    assert!(of(&outcome, OracleKind::Exclusivity).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_catches_abort_leak() {
    let outcome = run("reconnect-storm", Some(Bug::AbortLeak)).await;
    let found = of(&outcome, OracleKind::Liveness);
    assert!(
        !found.is_empty(),
        "{:?}",
        outcome.results.summary.violations
    );
    assert!(
        found.iter().all(|v| v.group == "quitters"),
        "only the aborted handshakes leak: {found:?}"
    );
    assert!(
        outcome.results.summary.probe.refused > 0,
        "the probe phase sees the leaked sessions: {:?}",
        outcome.results.summary.probe
    );
}

// ---- bad-tokens -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_all_refused_cleanly_by_the_reference_server() {
    let outcome = run("bad-tokens", None).await;
    assert_clean("bad-tokens", &outcome);
    let s = &outcome.results.summary;
    // 3 × 26 catalogue entries and 3 × 3 × 4 time-shifted tokens refused; 3 × 4 valid served.
    assert_eq!(s.counters.attempted, 126);
    assert_eq!(
        s.counters
            .refused_by
            .get(&stampede::model::Cause::parse("http_401")),
        Some(&114)
    );
    assert_eq!(s.counters.accepted, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_catch_accept_alg_none() {
    let outcome = run("bad-tokens", Some(Bug::AcceptAlgNone)).await;
    let found = of(&outcome, OracleKind::RejectionHygiene);
    // alg none, None, NONE, nOnE through each of the three placements.
    assert_eq!(found.len(), 12, "{found:#?}");
    for v in &found {
        assert!(v.expected.contains("forged token (alg-none"), "{v:?}");
        assert!(v.seen.starts_with("accepted"), "{v:?}");
        assert_eq!(v.involved.len(), 1);
        assert_eq!(v.involved[0].jti, v.jti);
        assert!(v.involved[0].answer.starts_with("accepted"));
    }
    // Every placement accepts them, so the verdicts agree: no consistency finding.
    assert!(of(&outcome, OracleKind::Consistency).is_empty());
    let first = listed(&outcome, OracleKind::RejectionHygiene)[0];
    assert_reported(&outcome, first);
    assert!(text(&outcome).contains("forged token (alg-none"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_catch_malformed_token_1011() {
    let outcome = run("bad-tokens", Some(Bug::MalformedToken1011)).await;
    let found = of(&outcome, OracleKind::RejectionHygiene);
    assert!(
        !found.is_empty(),
        "{:?}",
        outcome.results.summary.violations
    );
    for v in &found {
        assert!(v.seen.contains("server_close_1011"), "{v:?}");
        assert!(v.involved[0].answer.contains("server_close_1011"), "{v:?}");
    }
    let names: Vec<&str> = found
        .iter()
        .filter_map(|v| v.expected.split(['(', ')']).nth(1))
        .collect();
    // Tokens that are not JWTs at all (jsonwebtoken's InvalidToken / Base64 errors), in each
    // of the three placements. (`bad-base64` keeps a valid structure for the signature
    // check, which fails first: a 401 even on this server.)
    for structural in ["garbage", "truncated", "two-segments", "four-segments"] {
        let n = names.iter().filter(|n| **n == structural).count();
        assert_eq!(n, 3, "{structural} caught {n} times: {names:?}");
    }
    assert_reported(&outcome, listed(&outcome, OracleKind::RejectionHygiene)[0]);
    assert!(text(&outcome).contains("server_close_1011"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_catch_query_skips_expiry() {
    let outcome = run("bad-tokens", Some(Bug::QuerySkipsExpiry)).await;
    let found = of(&outcome, OracleKind::Consistency);
    // Expired 30 s ago, and expired at the minting instant: accepted via the query only.
    let labels: Vec<&str> = found
        .iter()
        .filter_map(|v| v.expected.split_whitespace().nth(1))
        .collect();
    assert!(labels.contains(&"shift(exp-30s)"), "{found:#?}");
    assert!(labels.contains(&"shift(exp+0s)"), "{found:#?}");
    for v in &found {
        assert!(
            v.seen.contains(r#"accepted via ["query"]"#) && v.seen.contains("header"),
            "{v:?}"
        );
        // One connection per placement, each with its own token of that kind.
        assert_eq!(v.involved.len(), 3, "{v:?}");
        let accepted: Vec<_> = v
            .involved
            .iter()
            .filter(|i| i.answer.starts_with("accepted"))
            .collect();
        assert_eq!(accepted.len(), 1, "{v:?}");
        let mut jtis: Vec<&str> = v.involved.iter().map(|i| i.jti.as_str()).collect();
        jtis.sort_unstable();
        jtis.dedup();
        assert_eq!(jtis.len(), 3);
    }
    // The future-nbf tokens are still refused everywhere: the bug is only about exp.
    assert!(!labels.iter().any(|l| l.contains("nbf")), "{labels:?}");
    assert_reported(&outcome, listed(&outcome, OracleKind::Consistency)[0]);
}
