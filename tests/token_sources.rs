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
            let mut token = String::new();
            let callback =
                |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                 resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                    token = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .unwrap_or_default()
                        .to_string();
                    if TOKENS.contains(&token.as_str()) {
                        Ok(resp)
                    } else {
                        let mut refusal = tokio_tungstenite::tungstenite::handshake::server::ErrorResponse::new(None);
                        *refusal.status_mut() = 401.try_into().unwrap();
                        Err(refusal)
                    }
                };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
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
    // Slots 0, 1, 2 get tokens 0, 1, 0: fewer tokens than users are reused in turn (the
    // liveness probes after the load dial each slot's token once more).
    let count = |t: &str| seen.iter().filter(|s| *s == t).count();
    assert_eq!(count(TOKENS[0]), 2 * count(TOKENS[1]), "{seen:?}");
    assert_eq!(count(TOKENS[0]) + count(TOKENS[1]), seen.len(), "{seen:?}");
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
        assert!(started.elapsed() < std::time::Duration::from_secs(4));
    }
}
