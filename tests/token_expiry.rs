//! A scenario whose token `ttl` is shorter than its script: a server that enforces `exp`
//! closes each connection once its token expired (Close 4001 "token expired") and refuses
//! the reconnect with it (HTTP 401). That is the scenario's own misconfiguration, never a
//! race: the run is inconclusive, its hint says to raise `[auth] ttl` or shorten the
//! script, and nothing is a finding. The same close before `exp` stays a finding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{scenario, spawn_server, TEST_SECRET};
use serde_json::Value;
use stampede::model::{OracleKind, Verdict};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// When the fake server closes an accepted connection with 4001 "token expired".
#[derive(Clone, Copy)]
enum Closes {
    /// Right when its token's `exp` passes (as a server that enforces `exp` does).
    AtExp,
    /// This long after accepting it, whatever `exp` says (a server whose clock is wrong).
    After(Duration),
    /// This long before its token's `exp` (a server that ends sessions early).
    BeforeExp(Duration),
}

/// Seconds since the Unix epoch, with their fraction.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The `exp` claim of a JWT, read without checking the signature.
fn unverified_exp(jwt: &str) -> Option<f64> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_f64()
}

/// Serves one connection: refuses an expired token with 401, greets, answers requests
/// with the five events, and closes with 4001 "token expired" as `closes` says.
async fn serve(closes: Closes, tcp: tokio::net::TcpStream) {
    let fresh = |t: &str| unverified_exp(t).is_some_and(|exp| unix_now() < exp);
    let Some((ws, token)) = common::accept_bearer(tcp, fresh).await else {
        return;
    };
    let user = common::unverified_sub(&token).unwrap_or_default();
    let close_in = match closes {
        Closes::AtExp => {
            let exp = unverified_exp(&token).unwrap_or(0.0);
            Duration::from_secs_f64((exp - unix_now()).max(0.0))
        }
        Closes::After(d) => d,
        Closes::BeforeExp(d) => {
            let exp = unverified_exp(&token).unwrap_or(0.0);
            Duration::from_secs_f64((exp - unix_now() - d.as_secs_f64()).max(0.0))
        }
    };
    let close_at = tokio::time::Instant::now() + close_in;
    let frame = CloseFrame {
        code: CloseCode::from(4001),
        reason: "token expired".into(),
    };
    common::serve_until_close(ws, &user, close_at, frame).await;
}

/// Two connections whose script takes at least 3 s (three request/answer turns, each
/// followed by a 1 s think), then a reconnect with the same token; tokens live `ttl`.
fn expiring_scenario(name: &str, ttl: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = 3
duration = "30s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}
ttl = "{ttl}"

[oracles]
identity = {{ field = "user_id" }}
learn = false

[[group]]
name = "talkers"
users = 2
steps = [
  {{ expect = "connection_established", within = "5s" }},
  {{ repeat = 3, steps = [
    {{ send = {{ type = "user_message", run_id = "r-{{{{conn}}}}-{{{{run}}}}", content = "hi" }} }},
    {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "5s" }},
    {{ think = "1s" }},
  ] }},
  {{ reconnect = true }},
  {{ expect = "connection_established", within = "5s" }},
  {{ close = 1000 }},
]
"#
    )
}

/// Runs [`expiring_scenario`] with `ttl` against a server that closes as `closes` says.
async fn run_against(closes: Closes, name: &str, ttl: &str) -> stampede::results::Summary {
    let (url, stop) = spawn_server(move |tcp| serve(closes, tcp)).await;
    let s = scenario(&format!("{name}.toml"), &expiring_scenario(name, ttl));
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    outcome.results.summary
}

/// Tokens that live 2 s under a script of at least 3 s: the server closes each connection
/// when its token expires and refuses its reconnect. No finding, and no clean run either:
/// inconclusive, the hint counting them and saying what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_after_the_token_expired_are_the_scenario_s_own_misconfiguration() {
    let sum = run_against(Closes::AtExp, "expired", "2s").await;
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations.first);
    assert_eq!(sum.verdict, Verdict::Inconclusive, "{:?}", sum.hint);
    assert_eq!(stampede::cli::error::of_verdict(sum.verdict), 4);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains(
            "the server closed 2 connections and refused 2 reconnects after their token \
             expired (ttl 2s, scripts run at least 3s): raise [auth] ttl or shorten the script"
        ),
        "{hint}"
    );
    assert_eq!(sum.counters.expired, 4, "{:?}", sum.counters);
    let mut console = Vec::new();
    stampede::report::render(&sum, &mut console).unwrap();
    let console = String::from_utf8(console).unwrap();
    assert!(
        console.contains("  expired      4 closed or refused after their token's exp"),
        "{console}"
    );
    // Said once, and neither as a server that takes each token once nor as an idle timeout.
    assert_eq!(
        hint.matches("after their token expired").count(),
        1,
        "{hint}"
    );
    assert!(
        !hint.contains("who are you") && !hint.contains("idle"),
        "{hint}"
    );
}

/// The same close, 300 ms after acceptance while the token has seconds left, is no
/// expiry: a server closing healthy connections mid-script stays a finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_before_the_token_expired_stays_a_finding() {
    let sum = run_against(
        Closes::After(Duration::from_millis(300)),
        "not-expired",
        "10s",
    )
    .await;
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    assert!(
        sum.violations
            .by_oracle
            .get(&OracleKind::Completeness)
            .is_some_and(|n| *n > 0),
        "{:?}",
        sum.violations
    );
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(!hint.contains("token expired"), "{hint}");
    assert_eq!(sum.counters.expired, 0, "{:?}", sum.counters);
}

/// A close 600 ms before `exp` (a server whose sessions end early: an off-by-one on its
/// clock) is no expiry either: only clocks a few milliseconds apart are allowed for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_shortly_before_exp_stays_a_finding() {
    let sum = run_against(Closes::BeforeExp(Duration::from_millis(600)), "early", "2s").await;
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(!hint.contains("after their token expired"), "{hint}");
}
