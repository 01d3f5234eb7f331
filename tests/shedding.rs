//! A server's legitimate answers that are no refusal of the token: load shedding (HTTP 429
//! or 503, a close 1013 before acceptance), an HTTP 200 where the upgrade should be (a
//! protocol fault, not a refusal), and a placement the server does not read tokens from.
//! None of them is a session-oracle violation; each is counted and said.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{chat_scenario, fake_conn, scenario, spawn_server, Fault};
use futures_util::SinkExt;
use stampede::cli::error::{exit, of_run};
use stampede::model::{Cause, OracleKind, Verdict};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Reads a request head (bounded); returns its bytes.
async fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

/// Answers the upgrade with `status` and waits for the client to hang up.
async fn answer_http(mut stream: TcpStream, status: &str) {
    let _ = read_head(&mut stream).await;
    respond_http(stream, status).await;
}

/// Answers a request whose head was read with `status`, and waits for the client to hang
/// up.
async fn respond_http(mut stream: TcpStream, status: &str) {
    let text = format!(
        "HTTP/1.1 {status}\r\nRetry-After: 1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
    );
    let _ = stream.write_all(text.as_bytes()).await;
    let mut buf = [0u8; 64];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Accepts the upgrade, then closes at once with 1013 (try again later).
async fn close_1013(stream: TcpStream) {
    close_with(stream, 1013, "busy").await;
}

/// Accepts the upgrade, then closes at once with `code` and `reason`.
async fn close_with(stream: TcpStream, code: u16, reason: &'static str) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = ws.send(Message::Close(Some(frame))).await;
    let _ = futures_util::StreamExt::next(&mut ws).await;
}

#[derive(Debug, Clone, Copy)]
enum Shed {
    Http429,
    Http503,
    Close1013,
    /// The server's own code: 4429 "Too many requests".
    Close4429,
}

/// The fake golden-path server, shedding every third connection with `how`.
async fn spawn_shedding(how: Shed) -> (String, tokio_util::sync::CancellationToken) {
    let seen = Arc::new(AtomicU64::new(0));
    spawn_server(move |tcp| {
        let n = seen.fetch_add(1, Ordering::Relaxed);
        async move {
            if n % 3 != 2 {
                return fake_conn(tcp, Fault::None).await;
            }
            match how {
                Shed::Http429 => answer_http(tcp, "429 Too Many Requests").await,
                Shed::Http503 => answer_http(tcp, "503 Service Unavailable").await,
                Shed::Close1013 => close_1013(tcp).await,
                Shed::Close4429 => close_with(tcp, 4429, "Too many requests").await,
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_server_that_sheds_load_is_counted_and_never_a_violation() {
    for (how, cause) in [
        (Shed::Http429, Cause::Http(429)),
        (Shed::Http503, Cause::Http(503)),
        (Shed::Close1013, Cause::ServerClose(1013)),
    ] {
        let (url, stop) = spawn_shedding(how).await;
        let s = scenario("shed.toml", &chat_scenario("shed", 30, 1));
        let outcome = common::run(&s, Some(url), None).await;
        stop.cancel();
        let sum = &outcome.results.summary;
        let c = &sum.counters;
        // Every third connection was shed: 10 of 30.
        assert_eq!(c.shed, 10, "{how:?}: {c:?}");
        assert_eq!(
            c.refused_by.get(&cause).copied(),
            Some(10),
            "{how:?}: {c:?}"
        );
        assert_eq!(c.accepted, 20, "{how:?}: {c:?}");
        // Counted among the rejected, as before: the error rates see them.
        assert_eq!(c.rejected, 10, "{how:?}: {c:?}");
        for oracle in [
            OracleKind::Liveness,
            OracleKind::RejectionHygiene,
            OracleKind::Consistency,
            OracleKind::Completeness,
        ] {
            assert_eq!(sum.violations.of(oracle), 0, "{how:?} {oracle:?}: {sum:?}");
        }
        assert_eq!(sum.verdict, Verdict::Clean, "{how:?}: {:?}", sum.hint);
        let hint = sum.hint.clone().unwrap_or_default();
        assert!(hint.contains("shed"), "{how:?}: {hint}");
        // The console says so.
        let mut text = Vec::new();
        stampede::report::render(sum, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("shed"), "{how:?}:\n{text}");
    }
}

/// A server that sheds every attempt was never exercised: no verdict on it, and the hint
/// says it shed load rather than send the user to check the URL.
#[tokio::test]
async fn a_server_that_sheds_every_attempt_is_unusable_for_its_load() {
    for (how, cause) in [
        (Shed::Http429, Cause::Http(429)),
        (Shed::Close1013, Cause::ServerClose(1013)),
    ] {
        let (url, stop) = spawn_server(move |tcp| async move {
            match how {
                Shed::Close1013 => close_1013(tcp).await,
                _ => answer_http(tcp, "429 Too Many Requests").await,
            }
        })
        .await;
        let s = scenario("all-shed.toml", &chat_scenario("all-shed", 6, 1));
        let outcome = common::run(&s, Some(url), None).await;
        stop.cancel();
        let sum = &outcome.results.summary;
        assert_eq!(sum.counters.shed, 6, "{how:?}: {:?}", sum.counters);
        assert_eq!(
            sum.counters.refused_by.get(&cause).copied(),
            Some(6),
            "{how:?}"
        );
        assert_eq!(
            sum.verdict,
            Verdict::TargetUnusable,
            "{how:?}: {:?}",
            sum.hint
        );
        let hint = sum.hint.clone().unwrap_or_default();
        assert!(
            hint.starts_with("the server shed every attempt (")
                && hint.contains("): nothing was exercised; run at a rate it takes"),
            "{how:?}: {hint}"
        );
        assert!(!hint.contains("check the URL"), "{how:?}: {hint}");
    }
}

#[tokio::test]
async fn an_http_200_to_an_upgrade_is_a_protocol_fault_not_a_refusal() {
    let (url, stop) = spawn_server(|tcp| async move { answer_http(tcp, "200 OK").await }).await;
    let s = scenario("ok.toml", &chat_scenario("ok", 12, 1));
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    let c = &sum.counters;
    assert_eq!(c.rejected, 0, "{c:?}");
    assert_eq!(c.failed, 12, "{c:?}");
    assert_eq!(
        c.refused_by.get(&Cause::Http(200)).copied(),
        Some(12),
        "{c:?}"
    );
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::TargetUnusable, "{:?}", sum.hint);
}

/// A proxy in front of the reference server that does not read the subprotocol: a
/// request with no token in its `Authorization` header or its query is refused 401.
async fn ignore_subprotocol(mut client: TcpStream, upstream: std::net::SocketAddr) {
    let head = read_head(&mut client).await;
    let text = String::from_utf8_lossy(&head).to_lowercase();
    let first = text.lines().next().unwrap_or_default().to_string();
    if !text.contains("\r\nauthorization:") && !first.contains("token=") {
        let _ = client
            .write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

#[tokio::test]
async fn a_placement_the_server_does_not_read_is_said_not_a_violation() {
    // A lenient server accepts `wrong-iss` through the placements it reads: refused
    // through the one it does not, that was a consistency "violation".
    let config = stampede::reference::TargetConfig {
        secret: common::TEST_SECRET.as_bytes().to_vec(),
        lenient: true,
        ..Default::default()
    };
    let reference = reference_with(config).await;
    let upstream = reference.addr();
    let (url, stop) = spawn_server(move |tcp| ignore_subprotocol(tcp, upstream)).await;
    let s = shipped_with_test_secret("bad-tokens.toml");
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.violations.of(OracleKind::Liveness), 0, "{sum:?}");
    assert_eq!(sum.violations.of(OracleKind::Consistency), 0, "{sum:?}");
    assert_ne!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    // Header and query were judged as ever: the lenient acceptances are there.
    assert!(sum.counters.accepted > 0, "{:?}", sum.counters);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("does not read tokens from subprotocol"),
        "{hint}"
    );
    reference.shutdown().await;
}

/// Shed attempts still count in `[thresholds]` error rates: a limit they pass fails the run.
#[tokio::test]
async fn shed_attempts_count_in_the_error_rate_thresholds() {
    let (url, stop) = spawn_shedding(Shed::Http429).await;
    let text =
        chat_scenario("shed-limits", 30, 1) + "\n[thresholds]\n\"errors.rate\" = \"< 20%\"\n";
    let s = scenario("shed-limits.toml", &text);
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    let limit = sum
        .thresholds
        .iter()
        .find(|t| t.metric == "errors.rate")
        .expect("the errors.rate threshold is judged");
    assert!(!limit.passed, "{}", limit.message);
    assert_eq!(limit.actual, Some(10.0 / 30.0), "{}", limit.message);
    // The run is clean of violations; the breached limit fails it (exit 1).
    assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
    assert_eq!(of_run(sum), exit::VIOLATIONS);
}

/// `chat_scenario` with `reject` (the inside of its table) in `[oracles]`.
fn chat_with_reject(name: &str, reject: &str) -> String {
    let text = chat_scenario(name, 30, 1);
    let at = "[oracles]\n";
    assert!(text.contains(at), "{text}");
    text.replacen(at, &format!("{at}reject = {{ {reject} }}\n"), 1)
}

/// A server that sheds with a close code of its own (4429 "Too many requests") before
/// acceptance: declared in `reject.shed`, it counts as shed exactly like a 1013; left
/// undeclared (its unmet expectations are violations) or listed in `reject.close` (a
/// refusal of the token), the hint says how to declare it.
#[tokio::test]
async fn a_declared_shed_close_code_counts_as_shed_like_1013() {
    let (url, stop) = spawn_shedding(Shed::Close4429).await;
    let declared = scenario(
        "shed-4429.toml",
        &chat_with_reject("shed-4429", "shed = [4429]"),
    );
    let outcome = common::run(&declared, Some(url.clone()), None).await;
    let sum = &outcome.results.summary;
    let c = &sum.counters;
    assert_eq!((c.shed, c.rejected, c.failed), (10, 10, 0), "{c:?}");
    assert_eq!(
        c.refused_by.get(&Cause::ServerClose(4429)).copied(),
        Some(10),
        "{c:?}"
    );
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(hint.contains("the server shed 10 of 30"), "{hint}");
    assert!(!hint.contains("rate limiting"), "declared: {hint}");
    // The probes after the run meet the same shedding: "not now" proves nothing about a
    // session still held, so none of them counts as refused.
    assert_eq!(sum.probe.refused, 0, "{:?}", sum.probe);
    assert!(sum.probe.inconclusive > 0, "{:?}", sum.probe);
    // And the report says the server shed them, by the declared code: an answer of
    // policy, not a probe left unanswered.
    assert_eq!(sum.probe.shed, sum.probe.inconclusive, "{:?}", sum.probe);
    assert_eq!(
        sum.probe.shed_by,
        ["declared shed code 4429"],
        "{:?}",
        sum.probe
    );
    let mut text = Vec::new();
    stampede::report::render(sum, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("probe"))
        .unwrap_or_else(|| panic!("no probe line:\n{text}"));
    assert!(
        line.ends_with(&format!(
            "0 refused, {} shed by the server: declared shed code 4429 (shedding is policy, \
             not an answer: those probes prove nothing)",
            sum.probe.shed
        )),
        "{line}"
    );

    // Undeclared: each shed connection's script went unmet, and the hint says how to
    // declare the code.
    let undeclared = scenario("undeclared.toml", &chat_scenario("undeclared", 30, 1));
    let outcome = common::run(&undeclared, Some(url.clone()), None).await;
    let sum = &outcome.results.summary;
    assert_eq!(
        (sum.counters.shed, sum.counters.failed),
        (0, 10),
        "{:?}",
        sum.counters
    );
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains(
            "reads as rate limiting (server_close_4429 ×10, reason \"Too many requests\")"
        ),
        "{hint}"
    );
    assert!(
        hint.contains("add `shed = [4429]` to `[oracles] reject`"),
        "{hint}"
    );
    // Every violation is a script those closes cut: no hunt before the declaration (a
    // hunt stops at such a round, as at one that could not judge the target).
    assert!(
        hint.contains("they may be rate limiting, which a repro would only show again")
            && !hint.contains("hunt for a repro"),
        "{hint}"
    );
    assert!(sum.rate_limiting_may_explain);
    // Stopped as inconclusive (exit 4), never as a race found (exit 1).
    let stopped = stampede::hunt::Unjudged::of(&outcome, false).unwrap();
    assert_eq!(stopped.verdict, Verdict::Inconclusive);
    assert!(stopped
        .hint
        .starts_with("its violations may all be the server's rate limiting: "));

    // Listed as a refusal of the token: the hint says to move it.
    let listed = scenario(
        "listed.toml",
        &chat_with_reject("listed", "close = [1008, 4429]"),
    );
    let outcome = common::run(&listed, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.counters.shed, 0, "{:?}", sum.counters);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("move [4429] from `close` (a refusal of the token) to `shed`"),
        "{hint}"
    );
    assert!(
        hint.contains("`[oracles] reject = { close = [1008], shed = [4429] }`"),
        "{hint}"
    );
    assert!(
        hint.contains("they may be rate limiting, which a repro would only show again")
            && !hint.contains("hunt for a repro"),
        "{hint}"
    );
}

/// A rate limiter that lets one upgrade per credential through to `upstream` and sheds
/// every later one with a 429 (the credential: the request line, where a query token
/// rides, and the `Authorization` and `Sec-WebSocket-Protocol` headers). `seen`: the
/// credentials let through.
async fn one_upgrade_per_token(
    mut client: TcpStream,
    upstream: std::net::SocketAddr,
    seen: Arc<Mutex<HashSet<String>>>,
) {
    let head = read_head(&mut client).await;
    let text = String::from_utf8_lossy(&head);
    let credential: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, line)| {
            let line = line.to_ascii_lowercase();
            *i == 0
                || line.starts_with("authorization:")
                || line.starts_with("sec-websocket-protocol:")
        })
        .map(|(_, line)| line)
        .collect();
    let first = seen.lock().unwrap().insert(credential.join("\n"));
    if !first {
        return respond_http(client, "429 Too Many Requests").await;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// The planted token-check-then-act race behind a proxy that sheds every upgrade but the
/// first of each token: every collision the scenario arranged met a 429, not the
/// server's session logic. That exercised no race: inconclusive, never clean, and the
/// hint says shedding took the coverage.
/// The planted token-check-then-act race behind [`one_upgrade_per_token`]: its URL, what
/// stops the proxy, and the reference server (shut it down at the end).
async fn race_behind_a_shedding_proxy() -> (
    String,
    tokio_util::sync::CancellationToken,
    stampede::reference::ServerHandle,
) {
    let config = stampede::reference::TargetConfig {
        secret: common::TEST_SECRET.as_bytes().to_vec(),
        bug: Some(stampede::reference::Bug::TokenCheckThenAct),
        bug_window: std::time::Duration::from_millis(50),
        ..Default::default()
    };
    let reference = reference_with(config).await;
    let upstream = reference.addr();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let (url, stop) =
        spawn_server(move |tcp| one_upgrade_per_token(tcp, upstream, Arc::clone(&seen))).await;
    (url, stop, reference)
}

/// The token-check-then-act race scenario, signed with the test secret.
fn race_scenario() -> stampede::model::Scenario {
    shipped_with_test_secret("races/token-check-then-act.toml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shedding_every_collision_leaves_the_race_inconclusive() {
    let (url, stop, reference) = race_behind_a_shedding_proxy().await;
    let s = race_scenario();
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    reference.shutdown().await;
    let sum = &outcome.results.summary;
    // 4 users, 2 connections each sharing the user's token: the second of each is shed.
    assert_eq!(sum.counters.accepted, 4, "{:?}", sum.counters);
    assert_eq!(sum.counters.shed, 4, "{:?}", sum.counters);
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    let c = &sum.coverage;
    assert_eq!(
        (c.shared_tokens, c.overlapping_tokens, c.shed_tokens),
        (4, 0, 4),
        "{c:?}"
    );
    assert_eq!(sum.verdict, Verdict::Inconclusive, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("shedding ate the race's coverage: on 4 of the 4 shared tokens"),
        "{hint}"
    );
}

/// The fake golden-path server, except that every `every`th connection (every third: 3;
/// all: 1), once accepted and greeted, is closed with `code` when its first request
/// arrives: its answer still owed.
async fn spawn_shedding_accepted(
    code: u16,
    every: u64,
) -> (String, tokio_util::sync::CancellationToken) {
    let seen = Arc::new(AtomicU64::new(0));
    spawn_server(move |tcp| {
        let n = seen.fetch_add(1, Ordering::Relaxed);
        async move {
            if n % every != every - 1 {
                return fake_conn(tcp, Fault::None).await;
            }
            let Some((mut ws, sub)) = common::accept_with_sub(tcp).await else {
                return;
            };
            let hello = serde_json::json!({"type": "connection_established", "user_id": sub});
            if ws
                .send(Message::Text(hello.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
            // The request arrives; the server, busy, lets the connection go instead.
            let _ = futures_util::StreamExt::next(&mut ws).await;
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: "busy".into(),
            };
            let _ = ws.send(Message::Close(Some(frame))).await;
            let _ = futures_util::StreamExt::next(&mut ws).await;
        }
    })
    .await
}

/// A server that sheds an accepted connection (Close 1013, or a code the scenario declares
/// in `reject.shed`) with an answer still owed applies its policy under load: counted as
/// shed after acceptance, its pending expectations refused, said in the hint, never a
/// violation. An undeclared code there still loses the answer: a completeness violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_sheds_an_accepted_connection_is_counted_never_a_violation() {
    for (code, reject) in [(1013, None), (4429, Some("shed = [4429]"))] {
        let (url, stop) = spawn_shedding_accepted(code, 3).await;
        let text = match reject {
            Some(reject) => chat_with_reject("shed-later", reject),
            None => chat_scenario("shed-later", 30, 1),
        };
        let outcome = common::run(&scenario("shed-later.toml", &text), Some(url), None).await;
        stop.cancel();
        let sum = &outcome.results.summary;
        let c = &sum.counters;
        // Every third connection was shed after its acceptance: 10 of 30.
        assert_eq!(
            (c.accepted, c.shed_after_acceptance, c.shed),
            (30, 10, 0),
            "{code}: {c:?}"
        );
        assert_eq!(
            c.ended_by.get(&Cause::ServerClose(code)).copied(),
            Some(10),
            "{code}: {c:?}"
        );
        assert!(c.expect.expectations_refused >= 10, "{code}: {c:?}");
        assert_eq!(sum.violations.total, 0, "{code}: {:?}", sum.violations);
        assert_eq!(sum.verdict, Verdict::Clean, "{code}: {:?}", sum.hint);
        let hint = sum.hint.clone().unwrap_or_default();
        assert!(
            hint.contains("the server shed 10 accepted connections under load"),
            "{code}: {hint}"
        );
        let mut console = Vec::new();
        stampede::report::render(sum, &mut console).unwrap();
        let console = String::from_utf8(console).unwrap();
        assert!(console.contains("shed later   10 accepted"), "{console}");
    }

    // A code the scenario does not declare as shedding, mid-script: the answer the server
    // owed is lost, as before.
    let (url, stop) = spawn_shedding_accepted(4000, 3).await;
    let s = scenario("closed-later.toml", &chat_scenario("closed-later", 30, 1));
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.counters.shed_after_acceptance, 0, "{:?}", sum.counters);
    assert_eq!(
        sum.violations.of(OracleKind::Completeness),
        10,
        "{:?}",
        sum.violations
    );
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
}

/// A close after acceptance whose code reads as rate limiting (a 4429, as a gateway closes
/// a client that sent too fast), undeclared: still the lost answers it is, but the hint
/// says it may be rate limiting and how to declare it, and a hunt stops there as
/// inconclusive instead of writing a repro of the policy (it once "confirmed" a race).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_close_after_acceptance_is_said_and_not_hunted() {
    let (url, stop) = spawn_shedding_accepted(4429, 3).await;
    let s = scenario("limited.toml", &chat_scenario("limited", 30, 1));
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("closed 10 attempts after accepting them in a way that reads as rate limiting (server_close_4429 ×10")
            && hint.contains("add `shed = [4429]` to `[oracles] reject`"),
        "{hint}"
    );
    assert!(sum.rate_limiting_may_explain, "{hint}");
    let stopped = stampede::hunt::Unjudged::of(&outcome, false).map(|u| u.verdict);
    assert_eq!(stopped, Some(Verdict::Inconclusive));
}

/// A hunt whose rounds shedding made inconclusive says so round by round (the progress
/// line's verdict and why), not "0 violations", and finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hunt_round_made_inconclusive_by_shedding_says_so() {
    let (url, stop, reference) = race_behind_a_shedding_proxy().await;
    // Two rounds, under a budget no busy machine needs.
    let mut s = race_scenario();
    s.hunt.rounds = 2;
    let plan = stampede::plan::build(&s, 1);
    let runner = stampede::hunt::Runner::start(
        &stampede::run::Target::Url(url),
        &plan,
        stampede::run::RunOptions::default(),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = stampede::hunt::HuntOptions {
        budget: std::time::Duration::from_secs(30),
        seed: 1,
        out: dir.path().to_path_buf(),
        confirm: 1,
    };
    let mut rounds = Vec::new();
    let outcome = tokio::time::timeout(
        common::TEST_BOUND,
        stampede::hunt::hunt(&s, &runner, &opts, &mut |p| rounds.push(p.clone())),
    )
    .await
    .expect("the hunt ends within its budget")
    .unwrap();
    stop.cancel();
    reference.shutdown().await;
    assert!(outcome.found.is_none(), "shedding is no find");
    assert_eq!((rounds.len(), outcome.not_judged), (2, 2), "{rounds:?}");
    let first = &rounds[0];
    assert_eq!(first.violations, 0, "{first:?}");
    assert!(first.unjudged.is_none(), "the hunt went on: {first:?}");
    let why = first.not_judged.as_ref().expect("the round judged no race");
    assert_eq!(why.verdict, Verdict::Inconclusive, "{why:?}");
    assert!(
        why.hint.starts_with("shedding ate the race's coverage"),
        "{}",
        why.hint
    );
}

/// The reference server in process on loopback, configured by `config`.
async fn reference_with(
    config: stampede::reference::TargetConfig,
) -> stampede::reference::ServerHandle {
    stampede::reference::spawn(
        config,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// A scenario shipped under `scenarios/` (`path` below it), signing with the test secret.
fn shipped_with_test_secret(path: &str) -> stampede::model::Scenario {
    let file = format!("{}/scenarios/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&file).unwrap();
    let text = format!(
        "{text}\n[auth]\nsecret = {{ value = \"{}\" }}\n",
        common::TEST_SECRET
    );
    let name = path.rsplit('/').next().unwrap_or(path);
    scenario(name, &text)
}

/// A server that accepts, greets, answers the first request with `reply` (when `answer`),
/// then closes with 1013 (try again later) at once: the connection is then mid-`think`, no
/// expectation open (without `answer`: with the reply still owed).
async fn spawn_answer_then_1013(answer: bool) -> (String, tokio_util::sync::CancellationToken) {
    spawn_server(move |tcp| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        let hello = serde_json::json!({"type": "connection_established"});
        if ws
            .send(Message::Text(hello.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
        // A probe after the run sends nothing: it is closed the same way, unanswered.
        let asked = futures_util::StreamExt::next(&mut ws).await;
        if let (true, Some(Ok(Message::Text(_)))) = (answer, asked) {
            let reply = serde_json::json!({"type": "reply"});
            let _ = ws.send(Message::Text(reply.to_string().into())).await;
        }
        let frame = CloseFrame {
            code: CloseCode::from(1013),
            reason: "busy".into(),
        };
        let _ = ws.send(Message::Close(Some(frame))).await;
        let _ = futures_util::StreamExt::next(&mut ws).await;
    })
    .await
}

/// Six users, each asking once and then thinking; `then` is what their scripts do after.
fn ask_then_think(then: &str) -> String {
    format!(
        r#"
name = "ask-then-think"
duration = "20s"

[[group]]
name = "g"
users = 6
steps = [
  {{ expect = "connection_established", within = "5s" }},
  {{ send = {{ type = "ask" }} }},
  {{ expect = "reply", within = "5s" }},
  {{ think = "fixed(2s)" }},
  {then}
]
"#
    )
}

/// A 1013 with nothing pending is shedding only when the script still had steps to run:
/// once its last step was satisfied, it is an ordinary end (not shed, not "every attempt
/// shed"); with a send and an expectation still ahead, it is shed after acceptance. And
/// connections the server served before shedding them were exercised: never "every
/// attempt shed, nothing exercised".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1013_after_the_script_is_done_is_an_ordinary_end_and_one_before_is_shed() {
    let (url, stop) = spawn_answer_then_1013(true).await;
    let done = scenario("done.toml", &ask_then_think(""));
    let outcome = common::run(&done, Some(url.clone()), None).await;
    let sum = &outcome.results.summary;
    let c = &sum.counters;
    assert_eq!(
        (c.accepted, c.shed, c.shed_after_acceptance),
        (6, 0, 0),
        "{c:?}"
    );
    assert_eq!(
        c.ended_by.get(&Cause::ServerClose(1013)).copied(),
        Some(6),
        "{c:?}"
    );
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(!hint.contains("shed"), "{hint}");

    let more = scenario(
        "more.toml",
        &ask_then_think(
            "{ send = { type = \"ask\" } },\n  { expect = \"reply\", within = \"5s\" },",
        ),
    );
    let outcome = common::run(&more, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    let c = &sum.counters;
    assert_eq!(
        (c.accepted, c.shed, c.shed_after_acceptance),
        (6, 0, 6),
        "{c:?}"
    );
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    assert_ne!(sum.verdict, Verdict::TargetUnusable, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("the server shed 6 accepted connections under load"),
        "{hint}"
    );
    assert!(!hint.contains("shed every attempt"), "{hint}");
}

/// The other side: a server that accepts and greets every connection, then sheds it with
/// the reply still owed, served nothing: every attempt shed before any work, so nothing
/// was exercised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_sheds_every_accepted_connection_before_serving_it_is_unusable() {
    let (url, stop) = spawn_answer_then_1013(false).await;
    let s = scenario("unserved.toml", &ask_then_think(""));
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    let c = &sum.counters;
    assert_eq!((c.accepted, c.shed_after_acceptance), (6, 6), "{c:?}");
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::TargetUnusable, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(hint.contains("shed every attempt"), "{hint}");
}

/// A server that sheds the first time a token comes back (HTTP 429 with `Retry-After: 1`)
/// and takes it after: the probe after the run waits out the `Retry-After` and tries
/// once more, so each probe proves something (it was shed, proving nothing, every time).
// The upgrade callback's error type is tungstenite's own HTTP response.
#[allow(clippy::result_large_err)]
#[tokio::test]
async fn a_probe_shed_with_retry_after_waits_it_out_and_tries_again() {
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    let seen: Arc<Mutex<HashSet<String>>> = Arc::new(Mutex::new(HashSet::new()));
    let shed: Arc<Mutex<HashSet<String>>> = Arc::new(Mutex::new(HashSet::new()));
    let (url, stop) = spawn_server(move |tcp| {
        let (seen, shed) = (seen.clone(), shed.clone());
        async move {
            let callback = |req: &Request, resp: Response| {
                let token = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let again = !seen.lock().unwrap().insert(token.clone());
                if again && shed.lock().unwrap().insert(token) {
                    let mut busy = ErrorResponse::new(Some("busy".into()));
                    *busy.status_mut() =
                        tokio_tungstenite::tungstenite::http::StatusCode::TOO_MANY_REQUESTS;
                    busy.headers_mut().insert(
                        "retry-after",
                        tokio_tungstenite::tungstenite::http::HeaderValue::from_static("1"),
                    );
                    return Err(busy);
                }
                Ok(resp)
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                return;
            };
            while let Some(Ok(_)) = futures_util::StreamExt::next(&mut ws).await {}
        }
    })
    .await;
    let text = format!(
        "name = \"retry-after\"\nduration = \"5s\"\n[auth]\nsecret = {{ value = \"{}\" }}\n\
         [oracles]\nlearn = false\n[[group]]\nname = \"g\"\nusers = 3\nsteps = [{{ close = 1000 }}]\n",
        common::TEST_SECRET
    );
    let s = scenario("retry-after.toml", &text);
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let p = &outcome.results.summary.probe;
    assert_eq!(p.tokens, 3, "{p:?}");
    assert_eq!((p.inconclusive, p.shed, p.refused), (0, 0, 0), "{p:?}");
}

/// Greets, answers the first `ping` with its `pong`, and sheds the connection (Close
/// 4429) at the next one: every connection it accepts served a little, then let go.
async fn serve_once_then_shed(tcp: tokio::net::TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let hello = serde_json::json!({"type": "hello"}).to_string();
    if ws.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    let mut served = 0;
    while let Some(Ok(Message::Text(text))) = futures_util::StreamExt::next(&mut ws).await {
        let ping: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        if served == 1 {
            common::close_and_drain(&mut ws, 4429, "slow down").await;
            return;
        }
        served += 1;
        if pong(&mut ws, &ping).await.is_err() {
            return;
        }
    }
}

/// Answers `ping` with a `pong` of its `id`.
async fn pong(
    ws: &mut common::ServerWs,
    ping: &serde_json::Value,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let pong = serde_json::json!({"type": "pong", "id": ping["id"]}).to_string();
    ws.send(Message::Text(pong.into())).await
}

/// A server that sheds every connection it accepts before its script ends (a declared
/// shed code at the second request): nothing broke, but what the scripts had left was
/// never asked, so the planned load was not applied: inconclusive, not a clean pass that
/// a CI job would read as the load tested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_sheds_every_accepted_connection_leaves_the_run_inconclusive() {
    let (url, stop) = spawn_server(serve_once_then_shed).await;
    let text = format!(
        r#"
name = "shed-all"
duration = "20s"
[auth]
secret = {{ value = "{}" }}
[oracles]
reject = {{ shed = [4429] }}
[[group]]
name = "pingers"
users = 4
steps = [
  {{ expect = "hello", within = "5s" }},
  {{ repeat = 5, steps = [
    {{ send = {{ type = "ping", id = "p-{{{{conn}}}}-{{{{run}}}}" }} }},
    {{ expect = "pong", correlate = "id", within = "2s" }},
  ] }},
  {{ close = 1000 }},
]
"#,
        common::TEST_SECRET
    );
    let outcome = common::run(&scenario("shed-all.toml", &text), Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.counters.shed_after_acceptance, 4, "{:?}", sum.counters);
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::Inconclusive, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.starts_with("the server shed every connection it accepted (4 of them")
            && hint.contains("planned load was not applied"),
        "{hint}"
    );
}

/// Welcomes each user's first connection and answers its `ping`; sheds every later one
/// (a reconnect) with Close 1013 before a word.
async fn sheds_reconnects(
    tcp: tokio::net::TcpStream,
    seen: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
) {
    let Some((mut ws, sub)) = common::accept_with_sub(tcp).await else {
        return;
    };
    if !seen.lock().map(|mut s| s.insert(sub)).unwrap_or(false) {
        common::close_and_drain(&mut ws, 1013, "try again later").await;
        return;
    }
    let hello = serde_json::json!({"type": "hello"}).to_string();
    if ws.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    while let Some(Ok(Message::Text(text))) = futures_util::StreamExt::next(&mut ws).await {
        let ping: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        if pong(&mut ws, &ping).await.is_err() {
            return;
        }
    }
}

/// Every reconnect shed (1013 before acceptance): each connection ended shed with the
/// second half of its script never run, so the planned load was not applied:
/// inconclusive, not "clean: 4 of 8 expectations met".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_sheds_every_reconnect_leaves_the_run_inconclusive() {
    let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let (url, stop) = spawn_server(move |tcp| sheds_reconnects(tcp, seen.clone())).await;
    let text = format!(
        r#"
name = "shed-reconnects"
duration = "20s"
[auth]
secret = {{ value = "{}" }}
[[group]]
name = "pingers"
users = 4
steps = [
  {{ expect = "hello", within = "5s" }},
  {{ send = {{ type = "ping", id = "a-{{{{conn}}}}" }} }},
  {{ expect = "pong", correlate = "id", within = "2s" }},
  {{ close = 1000 }},
  {{ reconnect = {{ after = "0ms" }} }},
  {{ expect = "hello", within = "5s" }},
  {{ send = {{ type = "ping", id = "b-{{{{conn}}}}" }} }},
  {{ expect = "pong", correlate = "id", within = "2s" }},
  {{ close = 1000 }},
]
"#,
        common::TEST_SECRET
    );
    let outcome = common::run(&scenario("shed-reconnects.toml", &text), Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::Inconclusive, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.starts_with("the server shed every connection it accepted (4 of them"),
        "{hint}"
    );
}
