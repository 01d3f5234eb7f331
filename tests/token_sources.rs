//! `[auth] tokens`: tokens from a file, a list, a command's output and a login request
//! reach the server as they are, are named by their labels (`file#2`) in whatever a run
//! records, and are never written to a result file or the plan.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod common;

use common::{run, scenario, spawn_server};

use futures_util::SinkExt;
use serde_json::json;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const TOKENS: [&str; 2] = ["opaque-token-alpha-000001", "opaque-token-bravo-000002"];

/// A server that accepts only `TOKENS` as bearer tokens, records each one it saw, and
/// greets with a `hello` whose `user_id` echoes the token (so the identity oracle records
/// a violation holding it: what a run writes must show its label instead).
async fn spawn_checker() -> (String, CancellationToken, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let (url, stop) = spawn_server(move |tcp| {
        let log = log.clone();
        async move {
            let Some((mut ws, token)) = common::accept_bearer(tcp, |t| TOKENS.contains(&t)).await
            else {
                return;
            };
            log.lock().unwrap().push(token.clone());
            let hello = json!({"type": "hello", "user_id": token});
            let _ = ws.send(Message::Text(hello.to_string().into())).await;
            let _ = futures_util::StreamExt::next(&mut ws).await;
        }
    })
    .await;
    (url, stop, seen)
}

fn scenario_text(tokens: &str, users: u32) -> String {
    format!(
        r#"
name = "token-sources"
seed = 5
duration = "20s"
[auth]
tokens = {tokens}
[oracles]
identity = {{ field = "user_id" }}
[[group]]
name = "users"
users = {users}
steps = [ {{ expect = "hello", within = "3s" }}, {{ close = 1000 }} ]
"#
    )
}

/// Every file under `dir`, read as text.
fn all_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out += &all_text(&path);
        } else {
            out += &String::from_utf8_lossy(&std::fs::read(&path).unwrap());
        }
    }
    out
}

/// Runs `tokens` with 3 users (so one of the two tokens is reused) and checks what the
/// server saw and what the run wrote. Returns the labels the violations named.
async fn run_source(tokens: &str, base: &std::path::Path) -> Vec<String> {
    let (url, stop, seen) = spawn_checker().await;
    let path = base.join("s.toml");
    std::fs::write(&path, scenario_text(tokens, 3)).unwrap();
    let s = stampede::scenario::load_file(&path).unwrap();
    let out = base.join("out");
    let outcome = run(&s, Some(url), Some(&out)).await;
    stop.cancel();
    let seen = seen.lock().unwrap().clone();
    // Slots 0, 1, 2 get tokens 0, 1, 0: fewer tokens than users are reused in turn; the
    // liveness probes after the load dial each token once more (once, not per slot).
    let count = |t: &str| seen.iter().filter(|s| *s == t).count();
    assert_eq!((count(TOKENS[0]), count(TOKENS[1])), (3, 2), "{seen:?}");
    assert_eq!(seen.len(), 5, "{seen:?}");
    let c = &outcome.results.summary.counters;
    assert_eq!(
        c.expect.expectations_met, 3,
        "every connection was accepted"
    );
    let written = all_text(&out) + &outcome.plan.to_json().unwrap();
    for t in TOKENS {
        assert!(!written.contains(t), "a token was written: {t}");
    }
    let mut labels: Vec<String> = outcome
        .results
        .violations
        .iter()
        .map(|v| {
            assert!(!v.seen.contains("opaque-token"), "{}", v.seen);
            v.jti.clone()
        })
        .collect();
    labels.sort();
    assert!(
        written.contains("<token jti="),
        "the echoed token is named by its label"
    );
    labels
}

#[tokio::test]
async fn tokens_from_a_file_reach_the_server_in_order_and_are_named_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.txt");
    std::fs::write(&file, format!("{}\n\n{}\n", TOKENS[0], TOKENS[1])).unwrap();
    // Relative to the scenario file.
    let labels = run_source(r#"{ file = "tokens.txt" }"#, dir.path()).await;
    assert_eq!(labels, ["file#1", "file#1", "file#3"]);
}

#[tokio::test]
async fn tokens_from_a_list_reach_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let list = format!(r#"{{ list = ["{}", "{}"] }}"#, TOKENS[0], TOKENS[1]);
    let labels = run_source(&list, dir.path()).await;
    assert_eq!(labels, ["list#1", "list#1", "list#2"]);
}

#[tokio::test]
async fn tokens_from_a_command_reach_the_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.txt"), TOKENS.join("\n")).unwrap();
    // Run in the scenario file's folder.
    let command = r#"{ command = "cat t.txt", timeout = "5s" }"#;
    let labels = run_source(command, dir.path()).await;
    assert_eq!(labels, ["command#1", "command#1", "command#2"]);
}

#[tokio::test]
async fn a_failing_or_slow_command_is_a_clear_error() {
    for (command, says) in [
        (r#"{ command = "echo nope >&2; exit 3" }"#, "nope"),
        (
            r#"{ command = "sleep 5", timeout = "200ms" }"#,
            "did not finish within",
        ),
        (r#"{ command = "true" }"#, "is empty"),
        // One token twice would carry two labels: refused by line, never shown.
        (
            r#"{ command = "echo tok-a; echo tok-b; echo; echo tok-a" }"#,
            "auth.tokens command's output: lines 1 and 4 are the same token",
        ),
    ] {
        let s = scenario("s.toml", &scenario_text(command, 1));
        let opts = stampede::run::RunOptions {
            target: Some("ws://127.0.0.1:9/ws".into()),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let err = stampede::run::run(&s, &opts, CancellationToken::new())
            .await
            .err()
            .expect("the run fails");
        assert!(err.to_string().contains(says), "{command}: {err}");
        assert!(!err.to_string().contains("tok-"), "{command}: {err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(4));
    }
}

/// A loopback login endpoint: reads one request, answers `status` with
/// `{"data": {"token": "login-token-for-<user>-0000"}}` for the body's `user` (or
/// `{"error": "no such user"}` when `status` is not 200). Returns its URL and the bodies it received.
async fn spawn_login(status: u16) -> (String, Arc<Mutex<Vec<String>>>) {
    spawn_login_with(status, false).await
}

/// [`spawn_login`]; with `fresh`, each token it issues is a new one of 32 hex digits,
/// as a login that opens a new session each time.
async fn spawn_login_with(status: u16, fresh: bool) -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let issued = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let log = bodies.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let log = log.clone();
            let issued = issued.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Until the head and the Content-Length body are in (the client says how long).
                let body = loop {
                    let Ok(n) = tcp.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .map_or(0, |l| l.trim().parse().unwrap());
                    if body.len() >= length {
                        break body.to_string();
                    }
                };
                log.lock().unwrap().push(body.clone());
                let user = serde_json::from_str::<serde_json::Value>(&body).unwrap()["user"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let answer = if status == 200 {
                    let token = if fresh {
                        let n = issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        // Random-looking, as a session token is: no two share a stretch
                        // (a shared prefix would be redacted as a piece of another).
                        let a = u64::from(n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                        let b = a.rotate_left(29) ^ 0xD1B5_4A32_D192_ED03;
                        format!("{a:016x}{b:016x}")
                    } else {
                        format!("login-token-for-{user}-0000")
                    };
                    json!({"data": {"token": token}})
                } else {
                    json!({"error": "no such user"})
                }
                .to_string();
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = tcp.write_all(response.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}/login"), bodies)
}

/// A server that accepts only tokens the login endpoint issued, records them, and greets.
async fn spawn_login_checker() -> (String, CancellationToken, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let (url, stop) = spawn_server(move |tcp| {
        let log = log.clone();
        async move {
            let (mut ws, token) =
                match common::accept_bearer(tcp, |t| t.starts_with("login-token-for-")).await {
                    Some(accepted) => accepted,
                    None => return,
                };
            log.lock().unwrap().push(token.clone());
            let hello = json!({"type": "hello", "user_id": token});
            let _ = ws.send(Message::Text(hello.to_string().into())).await;
            let _ = futures_util::StreamExt::next(&mut ws).await;
        }
    })
    .await;
    (url, stop, seen)
}

fn login_scenario(login_url: &str) -> String {
    scenario_text(
        &format!(
            r#"{{ login = "{login_url}", body = '{{"user": "u{{{{user}}}}"}}', token = "data.token", timeout = "3s" }}"#
        ),
        3,
    )
}

#[tokio::test]
async fn a_login_request_before_each_upgrade_fetches_the_token_and_is_timed() {
    let (login_url, bodies) = spawn_login(200).await;
    let (url, stop, seen) = spawn_login_checker().await;
    let dir = tempfile::tempdir().unwrap();
    let s = scenario("login.toml", &login_scenario(&login_url));
    let outcome = run(&s, Some(url), Some(dir.path())).await;
    stop.cancel();
    let mut bodies = bodies.lock().unwrap().clone();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            r#"{"user": "u0"}"#,
            r#"{"user": "u1"}"#,
            r#"{"user": "u2"}"#
        ]
    );
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            "login-token-for-u0-0000",
            "login-token-for-u1-0000",
            "login-token-for-u2-0000"
        ]
    );
    let summary = &outcome.results.summary;
    assert_eq!(summary.counters.expect.expectations_met, 3);
    assert_eq!(summary.phases["login"].count, 3, "each login is timed");
    // The echoed token is named by its label, in memory and on disk.
    let labels: Vec<&str> = outcome
        .results
        .violations
        .iter()
        .map(|v| v.jti.as_str())
        .collect();
    assert_eq!(labels.len(), 3);
    assert!(labels.iter().all(|l| l.starts_with("login#")), "{labels:?}");
    let written = all_text(dir.path()) + &outcome.plan.to_json().unwrap();
    assert!(
        !written.contains("login-token-for"),
        "a login token was written"
    );
    assert!(written.contains("<token jti=login#"));
}

#[tokio::test]
async fn a_failed_login_is_its_own_cause_and_never_the_targets_refusal() {
    let (login_url, _) = spawn_login(500).await;
    let (url, stop, seen) = spawn_login_checker().await;
    let s = scenario("login.toml", &login_scenario(&login_url));
    let outcome = run(&s, Some(url), None).await;
    stop.cancel();
    assert!(seen.lock().unwrap().is_empty(), "no upgrade was tried");
    let c = &outcome.results.summary.counters;
    assert_eq!(
        c.refused_by.get(&stampede::model::Cause::LoginFailed),
        Some(&3),
        "{c:?}"
    );
    assert_eq!(
        c.rejected, 0,
        "a failed login is no refusal of the target's"
    );
    // The login's answer is shown, status and body, as an upgrade refusal's is.
    let answers = &outcome.results.summary.answers;
    assert!(
        answers
            .iter()
            .any(|a| a.detail == "login answered 500" && a.body.contains("no such user")),
        "{answers:?}"
    );
    assert!(
        outcome
            .results
            .violations
            .iter()
            .all(|v| v.oracle != stampede::model::OracleKind::Liveness),
        "{:#?}",
        outcome.results.violations
    );
}

#[tokio::test]
async fn refused_listed_tokens_point_at_the_source_not_the_signing_secret() {
    let (url, stop, seen) = spawn_checker().await;
    let list = r#"{ list = ["not-a-token-the-server-knows"] }"#;
    let outcome = run(
        &scenario("s.toml", &scenario_text(list, 2)),
        Some(url),
        None,
    )
    .await;
    stop.cancel();
    assert!(seen.lock().unwrap().is_empty());
    let summary = &outcome.results.summary;
    assert_eq!(summary.verdict, stampede::model::Verdict::AuthMisconfigured);
    let hint = summary.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("check the tokens the [auth] tokens list gives"),
        "{hint}"
    );
    // Named by where they came from: not "valid", which the server said they are not.
    assert!(
        hint.starts_with("every token the [auth] tokens list gave was refused ("),
        "{hint}"
    );
}

#[tokio::test]
async fn a_login_body_takes_the_users_feeder_row() {
    let (login_url, bodies) = spawn_login(200).await;
    let (url, stop, seen) = spawn_login_checker().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.csv"),
        "name,password\nada,pw-a\nbob,pw-b\n",
    )
    .unwrap();
    let text = format!(
        r#"
name = "login-feed"
seed = 5
duration = "20s"
[auth]
tokens = {{ login = "{login_url}", body = '{{"user": "{{{{feed.name}}}}", "password": "{{{{feed.password}}}}"}}', token = "data.token" }}
[[group]]
name = "users"
users = 2
feeder = {{ file = "users.csv" }}
steps = [ {{ expect = "hello", within = "3s" }}, {{ close = 1000 }} ]
"#
    );
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    let s = stampede::scenario::load_file(&path).unwrap();
    let outcome = run(&s, Some(url), None).await;
    stop.cancel();
    let mut bodies = bodies.lock().unwrap().clone();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            r#"{"user": "ada", "password": "pw-a"}"#,
            r#"{"user": "bob", "password": "pw-b"}"#
        ]
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(outcome.results.summary.counters.expect.expectations_met, 2);
    assert!(
        !outcome.plan.to_json().unwrap().contains("pw-a"),
        "feeder rows are not in the plan"
    );
}

/// A server that holds one session per token: a second concurrent use of a token is
/// refused with 409 while the first is live (a charger id's connection, an exclusive
/// session). Greets with `hello` and holds the connection until the client leaves.
async fn spawn_one_session_per_token() -> (String, CancellationToken) {
    let live: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
    spawn_server(move |tcp| {
        let live = live.clone();
        async move {
            let taken = |t: &str| (!live.lock().unwrap().insert(t.to_string())).then_some(409);
            let Some((mut ws, token)) = common::accept_bearer_unless(tcp, taken).await else {
                return;
            };
            let hello = json!({"type": "hello"});
            let _ = ws.send(Message::Text(hello.to_string().into())).await;
            while let Some(Ok(m)) = futures_util::StreamExt::next(&mut ws).await {
                if m.is_close() {
                    break;
                }
            }
            live.lock().unwrap().remove(&token);
        }
    })
    .await
}

/// One token in the file for four users who connect one after another: the server never
/// sees two of them at once, and after the run the token is probed once, not once per
/// user (four probes at once would be three concurrent uses the server rightly refuses,
/// read as a leaked session).
#[tokio::test]
async fn a_token_shared_by_several_users_is_probed_once_after_the_run() {
    let (url, stop) = spawn_one_session_per_token().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens.txt"), format!("{}\n", TOKENS[0])).unwrap();
    let text = r#"
name = "one-charger"
seed = 5
duration = "20s"
[auth]
tokens = { file = "tokens.txt" }
[oracles]
learn = false
[[group]]
name = "users"
users = 4
arrival = { ramp = "1200ms" }
steps = [ { expect = "hello", within = "3s" }, { close = 1000 } ]
"#;
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    let s = stampede::scenario::load_file(&path).unwrap();
    let outcome = run(&s, Some(url), None).await;
    stop.cancel();
    let probe = outcome.results.summary.probe.clone();
    assert!(
        outcome.results.violations.is_empty(),
        "violations: {:#?}",
        outcome.results.violations
    );
    assert_eq!(outcome.results.summary.counters.expect.expectations_met, 4);
    assert_eq!((probe.tokens, probe.refused), (1, 0), "{probe:?}");
}

/// How long the [`spawn_late_registry`] server's check-then-act window stays open: wide,
/// so that a busy 2-core machine still lands every colliding upgrade inside it.
const RACE_WINDOW: std::time::Duration = std::time::Duration::from_millis(150);

/// A server meant to hold one session per token, with a planted check-then-act race: the
/// upgrade checks that its token holds no session (409 if one does), but the session is
/// recorded only [`RACE_WINDOW`] after the upgrade, so upgrades that collide all pass the
/// check. Greets with `hello`, answers every text frame with a `reply`, and lets the token
/// go when the client leaves.
async fn spawn_late_registry() -> (String, CancellationToken) {
    let live: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
    spawn_server(move |tcp| {
        let live = live.clone();
        async move {
            let taken = |t: &str| live.lock().unwrap().contains(t).then_some(409);
            let Some((mut ws, token)) = common::accept_bearer_unless(tcp, taken).await else {
                return;
            };
            // The planted race: the registry write lands late.
            tokio::time::sleep(RACE_WINDOW).await;
            live.lock().unwrap().insert(token.clone());
            let hello = json!({"type": "hello"});
            if ws
                .send(Message::Text(hello.to_string().into()))
                .await
                .is_ok()
            {
                while let Some(Ok(m)) = futures_util::StreamExt::next(&mut ws).await {
                    if m.is_close() {
                        break;
                    }
                    if m.is_text() {
                        let reply = json!({"type": "reply"});
                        if ws
                            .send(Message::Text(reply.to_string().into()))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            live.lock().unwrap().remove(&token);
        }
    })
    .await
}

/// One token in the file shared by four users whose upgrades collide: the server's late
/// registry serves all four at once, an exclusivity violation of 4 connections. Shrinking
/// it keeps the race with the 2 connections it needs. It stayed at 4 (`4 → 4 connections;
/// 36 candidates tried`): a 2-connection candidate's violation says "2 connections", which
/// the repro's evidence ("4 connections") was matched against word for word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_file_token_exclusivity_repro_shrinks_to_two_connections() {
    use stampede::hunt::{self, ShrinkOptions};
    use stampede::model::OracleKind;
    let (url, stop) = spawn_late_registry().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens.txt"), format!("{}\n", TOKENS[0])).unwrap();
    let text = r#"
name = "charger-collide"
seed = 1
duration = "10s"
[auth]
tokens = { file = "tokens.txt" }
[oracles]
learn = false
[[group]]
name = "chargers"
users = 4
arrival = "collide"
steps = [
  { expect = "hello", within = "3s" },
  { think = "20ms" },
  { send = { type = "ping" } },
  { expect = "reply", within = "3s" },
  { close = 1000 },
]
"#;
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    let s = stampede::scenario::load_file(&path).unwrap();
    let plan = stampede::plan::build(&s, s.seed);
    let shrunk = tokio::time::timeout(common::TEST_BOUND, async {
        let runner = common::url_runner(&plan, &url).await;
        // The repro as a hunt writes it: evidence of all four served at once.
        let mut evidence = Vec::new();
        for _ in 0..3 {
            let run = runner.once(&plan).await.unwrap();
            evidence = run
                .results
                .violations
                .into_iter()
                .filter(|v| v.oracle == OracleKind::Exclusivity)
                .collect();
            if evidence.iter().any(|v| v.seen.starts_with("4 connections")) {
                break;
            }
        }
        assert!(
            evidence.iter().any(|v| v.seen.starts_with("4 connections")),
            "the four colliding upgrades were not all served at once: {evidence:#?}"
        );
        let mut repro = hunt::Repro::for_plan(
            &s,
            s.seed,
            plan.clone(),
            url.clone(),
            OracleKind::Exclusivity,
        );
        repro.evidence = evidence;
        let opts = ShrinkOptions {
            times: 3,
            max_candidates: 40,
            budget: std::time::Duration::from_secs(40),
        };
        let out = hunt::shrink(&repro, &runner, opts).await.unwrap();
        runner.close().await;
        out
    })
    .await
    .expect("the shrink ends within the bound");
    stop.cancel();
    assert_eq!(shrunk.before.0, 4);
    assert_eq!(
        shrunk.after.0, 2,
        "{} candidates tried, rate after {}",
        shrunk.candidates, shrunk.after.1
    );
    assert!(shrunk.after.1.reproduced >= 1, "{}", shrunk.after.1);
    let seen = &shrunk.repro.evidence[0].seen;
    assert!(seen.starts_with("2 connections"), "{seen}");
}

/// A server that accepts tokens the login endpoint issued and greets every connection
/// with a `hello` whose `user_id` echoes the first token it ever saw: an identity
/// violation on each, holding a token its connection logged in with long before.
async fn spawn_first_token_echo() -> (String, CancellationToken, Arc<Mutex<Option<String>>>) {
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = first.clone();
    let (url, stop) = spawn_server(move |tcp| {
        let first = first.clone();
        async move {
            let Some((mut ws, token)) = common::accept_bearer(tcp, |_| true).await else {
                return;
            };
            let echoed = first.lock().unwrap().get_or_insert(token).clone();
            let hello = json!({"type": "hello", "user_id": echoed});
            let _ = ws.send(Message::Text(hello.to_string().into())).await;
            while let Some(Ok(_)) = futures_util::StreamExt::next(&mut ws).await {}
        }
    })
    .await;
    (url, stop, seen)
}

/// A connection that logs in before each of many reconnects, getting a fresh token each
/// time, keeps only the latest few to redact with; a token it let go that the server
/// echoes later is still never written out, nor held in what the run hands back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_a_login_long_ago_is_never_written() {
    let (login_url, bodies) = spawn_login_with(200, true).await;
    let (url, stop, first) = spawn_first_token_echo().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
name = "logins"
seed = 5
duration = "30s"
[auth]
tokens = {{ login = "{login_url}", body = '{{"user": "u{{{{user}}}}"}}', token = "data.token", timeout = "3s" }}
[oracles]
identity = {{ field = "user_id" }}
accepted = {{ message = "hello" }}
[[group]]
name = "users"
users = 1
steps = [
  {{ expect = "hello", within = "3s" }},
  {{ repeat = 40, steps = [
    {{ close = 1000 }},
    {{ reconnect = {{ after = "0ms" }} }},
    {{ expect = "hello", within = "3s" }},
  ] }},
  {{ close = 1000 }},
]
"#
    );
    let outcome = run(&scenario("logins.toml", &text), Some(url), Some(dir.path())).await;
    stop.cancel();
    assert_eq!(bodies.lock().unwrap().len(), 41, "a login before each dial");
    let violations = &outcome.results.violations;
    // Past the first 16 logins the echoed (first) token is one the connection let go.
    assert!(violations.len() > 16, "{}", violations.len());
    let written = all_text(dir.path()) + &format!("{violations:?}");
    let first = first.lock().unwrap().clone().unwrap();
    assert!(
        !written.contains(&first) && !written.contains(&first[..16]),
        "a login token was written"
    );
    assert!(
        written.contains("<token jti=login#1>"),
        "labelled while kept"
    );
    assert!(
        written.contains("<token-like text>"),
        "hidden once let go: {violations:#?}"
    );
}
