//! A correct server with a maximum connection lifetime: it ends every connection a fixed
//! time after accepting it, whatever the connection is doing (AWS API Gateway after 2
//! hours, proxies after N minutes), here with Close 1001 "max connection age" 1 s in, while
//! the client's script still runs. Declared in `[oracles] max_lifetime`, such a close is
//! its policy: counted (`closed_at_lifetime`), the script's remaining steps not run and no
//! finding, the run clean. Undeclared, it stays a finding and the hint says how to declare
//! it; a close sooner than the declared lifetime stays a finding too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{scenario, spawn_server, TEST_SECRET};
use stampede::model::{Cause, OracleKind, Verdict};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// How long the fake server lets a connection live.
const LIFETIME: Duration = Duration::from_secs(1);

/// Serves one connection: greets, answers requests with the five events, and closes it
/// with 1001 "max connection age" [`LIFETIME`] after accepting it, whatever it is doing.
async fn serve(tcp: tokio::net::TcpStream) {
    let Some((ws, token)) = common::accept_bearer(tcp, |_| true).await else {
        return;
    };
    let close_at = tokio::time::Instant::now() + LIFETIME;
    let user = common::unverified_sub(&token).unwrap_or_default();
    let frame = CloseFrame {
        code: CloseCode::Away,
        reason: "max connection age".into(),
    };
    common::serve_until_close(ws, &user, close_at, frame).await;
}

/// Three connections, each eight request/answer turns 250 ms apart (at least 2 s, longer
/// than the server lets them live; never idle long enough to read as an idle timeout);
/// `oracles`: extra lines of `[oracles]`.
fn lifetime_scenario(name: &str, oracles: &str) -> String {
    scenario_text(
        name,
        oracles,
        r#"
  { expect = "connection_established", within = "5s" },
  { repeat = 8, steps = [
    { send = { type = "user_message", run_id = "r-{{conn}}-{{run}}", content = "hi" } },
    { expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "5s" },
    { think = "250ms" },
  ] },
  { close = 1000 },"#,
    )
}

/// Three connections of `steps` (the lines of the group's `steps` array), with `oracles`
/// as extra lines of `[oracles]`.
fn scenario_text(name: &str, oracles: &str, steps: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = 5
duration = "30s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[oracles]
identity = {{ field = "user_id" }}
{oracles}

[[group]]
name = "soakers"
users = 3
steps = [{steps}
]
"#
    )
}

/// Runs [`lifetime_scenario`] against the server.
async fn run_with(name: &str, oracles: &str) -> stampede::results::Summary {
    let (url, stop) = spawn_server(serve).await;
    let s = scenario(&format!("{name}.toml"), &lifetime_scenario(name, oracles));
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    outcome.results.summary
}

/// Undeclared, the closes 1 s in cut the scripts short: findings, as before, and the
/// hint names the age they all came at and the declaration that would make them policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_closes_at_one_age_are_findings_with_a_hint_to_declare() {
    let sum = run_with("undeclared", "").await;
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    assert!(
        sum.violations
            .by_oracle
            .get(&OracleKind::Completeness)
            .is_some_and(|n| *n > 0),
        "{:?}",
        sum.violations
    );
    assert_eq!(sum.counters.closed_at_lifetime, 0, "{:?}", sum.counters);
    let hint = sum.hint.clone().unwrap_or_default();
    // Our clock reads the age a few ms off the server's 1 s.
    assert!(
        hint.contains("the server closed 3 connections at ~1"),
        "{hint}"
    );
    assert!(
        hint.contains("(server_close_1001 ×3) mid-script: if that is its policy"),
        "{hint}"
    );
    assert!(
        hint.contains("declare [oracles] max_lifetime = \"1"),
        "{hint}"
    );
}

/// Declared, the same closes are the server's lifetime policy: a clean run, every
/// connection counted as closed at its lifetime (summary, console, hint), its unrun steps
/// no finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_closes_at_the_lifetime_are_counted_never_a_violation() {
    let sum = run_with("declared", "max_lifetime = \"1s\"").await;
    let c = &sum.counters;
    assert_eq!((c.accepted, c.closed_at_lifetime), (3, 3), "{c:?}");
    assert_eq!(
        c.ended_by.get(&Cause::ServerClose(1001)).copied(),
        Some(3),
        "{c:?}"
    );
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations.first);
    assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("3 connections closed at the declared `max_lifetime = \"1s\"`"),
        "{hint}"
    );
    assert!(!hint.contains("declare [oracles]"), "{hint}");
    let mut console = Vec::new();
    stampede::report::render(&sum, &mut console).unwrap();
    let console = String::from_utf8(console).unwrap();
    assert!(console.contains("lifetime     3 accepted"), "{console}");
}

/// Declared 5 s, a server that closes at 1 s closes sooner than its declared lifetime:
/// still findings, and the hint says they came too soon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_sooner_than_the_declared_lifetime_stay_findings() {
    let sum = run_with("too-soon", "max_lifetime = \"5s\"").await;
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    assert_eq!(sum.counters.closed_at_lifetime, 0, "{:?}", sum.counters);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("sooner than the declared `max_lifetime = \"5s\"`"),
        "{hint}"
    );
}

/// A connection that paused its reads early in its script and then sat in a long `think`
/// (a request still to come) reads the close at the declared lifetime well after the
/// pause: its age is the lifetime, not the moment the pause began (which once made the
/// close read 1 s early: a finding). No connection reached its request, so the run asked
/// nothing of the server: inconclusive, never clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_early_in_the_script_leaves_a_later_close_at_its_lifetime() {
    let text = scenario_text(
        "paused-then-thinking",
        "max_lifetime = \"1s\"",
        r#"
  { expect = "connection_established", within = "5s" },
  { pause_reads = "100ms" },
  { think = "3s" },
  { send = { type = "user_message", run_id = "r-{{conn}}", content = "hi" } },
  { expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "5s" },
  { close = 1000 },"#,
    );
    let (url, stop) = spawn_server(serve).await;
    let s = scenario("paused-then-thinking.toml", &text);
    let sum = common::run(&s, Some(url), None).await.results.summary;
    stop.cancel();
    assert_eq!(sum.counters.closed_at_lifetime, 3, "{:?}", sum.hint);
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations.first);
    assert_eq!(sum.verdict, Verdict::Inconclusive, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("no connection reached `expect agent_started"),
        "{hint}"
    );
}
