//! Learned invariants: calibration finds identity, sequence and reply patterns the
//! scenario does not declare, a run checks them (violations marked learned), a correct
//! server gets none, candidates that fail in calibration are dropped, and `stampede learn`
//! prints TOML that pastes into a scenario. In process, on loopback, bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{accept_with_sub, scenario, spawn_server, TEST_BOUND, TEST_SECRET};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use stampede::model::{OracleKind, Verdict};
use stampede::reference::Bug;
use stampede::run::{RunOptions, RunOutcome};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// The golden-path chat with no `[oracles]` at all: identity and sequence are not declared.
fn undeclared_chat(users: u32) -> String {
    format!(
        r#"
name = "undeclared-chat"
seed = 3
duration = "30s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[[group]]
name = "chatters"
users = {users}
arrival = "burst"
jitter = "uniform(0ms, 3ms)"
steps = [
  {{ expect = "connection_established", within = "5s" }},
  {{ send = {{ type = "user_message", run_id = "run-{{{{conn}}}}", thread_id = "t-{{{{user}}}}", content = "hi" }} }},
  {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "5s" }},
  {{ close = 1000 }},
]
"#
    )
}

async fn run_with(s: &stampede::model::Scenario, opts: RunOptions) -> RunOutcome {
    let fut = stampede::run::run(s, &opts, CancellationToken::new());
    match tokio::time::timeout(TEST_BOUND, fut).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => panic!("run failed: {e}"),
        Err(_) => panic!("run did not finish within {TEST_BOUND:?}"),
    }
}

/// [`run_with`] calibrating first (`--learn`), nothing else changed.
async fn run_learning(s: &stampede::model::Scenario) -> RunOutcome {
    run_with(
        s,
        RunOptions {
            learn: true,
            ..RunOptions::default()
        },
    )
    .await
}

fn learned_violations(outcome: &RunOutcome, oracle: OracleKind) -> usize {
    outcome
        .results
        .violations
        .iter()
        .filter(|v| v.oracle == oracle && v.learned)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learned_identity_catches_the_planted_swap() {
    let s = scenario("undeclared-chat.toml", &undeclared_chat(80));
    assert!(
        s.oracles.identity.is_none(),
        "the scenario must not declare identity"
    );
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_with(
        &s,
        RunOptions {
            bug: Some(Bug::IdentitySwap),
            // A wide window: 80 handshakes within ~3 ms interleave inside it for sure.
            bug_window: Some(Duration::from_millis(50)),
            out: Some(dir.path().to_path_buf()),
            learn: true,
            ..RunOptions::default()
        },
    )
    .await;
    let summary = &outcome.results.summary;
    // Calibration is one connection at a time: the swap needs two, so it learned identity.
    assert_eq!(summary.learned.identity, vec!["user_id".to_string()]);
    assert!(
        summary.violations.of(OracleKind::Identity) > 0,
        "{summary:?}"
    );
    assert!(learned_violations(&outcome, OracleKind::Identity) > 0);
    assert!(outcome
        .results
        .violations
        .iter()
        .filter(|v| v.oracle == OracleKind::Identity)
        .all(|v| v.learned));
    // Every run saves what it learned, as TOML that parses.
    let run_dir = outcome.dir.clone().unwrap();
    let text = std::fs::read_to_string(run_dir.join("learned.toml")).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(v["oracles"]["identity"]["field"].as_str(), Some("user_id"));
    // And the summary file says which violations were learned.
    let json = std::fs::read_to_string(run_dir.join("summary.json")).unwrap();
    assert!(json.contains("\"learned\": true"), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_server_teaches_identity_and_sequence_and_breaks_nothing() {
    let s = scenario("undeclared-chat.toml", &undeclared_chat(60));
    let outcome = run_with(
        &s,
        RunOptions {
            reference: true,
            learn: true,
            ..RunOptions::default()
        },
    )
    .await;
    let summary = &outcome.results.summary;
    assert_eq!(summary.learned.identity, vec!["user_id".to_string()]);
    assert_eq!(summary.learned.sequence, vec!["seq".to_string()]);
    assert_eq!(summary.learned.replies.len(), 1, "{:?}", summary.learned);
    assert_eq!(summary.violations.total, 0, "{:?}", summary.violations);
    assert_eq!(summary.verdict, Verdict::Clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learning_off_checks_only_what_is_declared() {
    let text = undeclared_chat(40).replace("[auth]", "[oracles]\nlearn = false\n\n[auth]");
    let s = scenario("no-learn.toml", &text);
    let outcome = run_with(
        &s,
        RunOptions {
            bug: Some(Bug::IdentitySwap),
            bug_window: Some(Duration::from_millis(50)),
            learn: true,
            ..RunOptions::default()
        },
    )
    .await;
    assert!(outcome.results.summary.learned.is_empty());
    assert_eq!(
        outcome.results.summary.violations.of(OracleKind::Identity),
        0
    );
}

/// A protocol of its own: `op` names requests, `kind` names events, the user sits in
/// `data.owner`, `data.n` counts this connection's messages from 1, `global` counts the
/// whole server's, and `peer` is the user except on a connection's third message. With
/// `shared_owner`, `data.owner` is the user of the latest handshake (a cross-user race
/// that needs two connections open at once).
async fn spawn_nested(shared_owner: bool) -> (String, CancellationToken) {
    let global = Arc::new(AtomicU64::new(0));
    let latest = Arc::new(Mutex::new(String::new()));
    spawn_server(move |tcp| {
        let global = global.clone();
        let latest = latest.clone();
        async move {
            let Some((mut ws, sub)) = accept_with_sub(tcp).await else {
                return;
            };
            *latest.lock().unwrap() = sub.clone();
            let mut n = 0u64;
            let mut frame = |kind: &str| {
                n += 1;
                let owner = if shared_owner {
                    latest.lock().unwrap().clone()
                } else {
                    sub.clone()
                };
                let peer = if n == 3 {
                    "nobody".to_string()
                } else {
                    sub.clone()
                };
                let g = global.fetch_add(1, Ordering::Relaxed);
                json!({"kind": kind, "data": {"owner": owner, "n": n}, "global": g, "peer": peer})
                    .to_string()
            };
            if ws.send(Message::Text(frame("hello").into())).await.is_err() {
                return;
            }
            while let Some(Ok(msg)) = ws.next().await {
                match msg {
                    Message::Text(_) => {
                        for kind in ["ack", "result"] {
                            if ws.send(Message::Text(frame(kind).into())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Message::Close(_) => {
                        let _ = ws.close(None).await;
                        return;
                    }
                    _ => {}
                }
            }
        }
    })
    .await
}

fn nested_scenario(target: &str, users: u32) -> stampede::model::Scenario {
    scenario("nested.toml", &nested_text(target, users))
}

/// The head of a scenario against `target` whose records name their kind in `kind`:
/// its name, seed, duration, the test secret and `[oracles] type_field`.
fn kinded_head(name: &str, target: &str) -> String {
    format!(
        "name = \"{name}\"\nseed = 5\nduration = \"30s\"\ntarget = \"{target}\"\n\n[auth]\n\
         secret = {{ value = \"{TEST_SECRET}\" }}\n\n[oracles]\ntype_field = \"kind\"\n"
    )
}

/// The text of [`nested_scenario`].
fn nested_text(target: &str, users: u32) -> String {
    kinded_head("nested", target)
        + &format!(
            r#"
[[group]]
name = "clients"
users = {users}
arrival = "burst"
jitter = "uniform(0ms, 3ms)"
steps = [
  {{ expect = "hello", within = "5s" }},
  {{ repeat = 3, steps = [
    {{ send = {{ op = "ping", kind = "ping" }} }},
    {{ expect = "ack result", within = "5s" }},
    {{ think = "fixed(30ms)" }},
  ] }},
  {{ close = 1000 }},
]
"#
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learning_is_generic_and_drops_what_fails_in_calibration() {
    let (url, stop) = spawn_nested(false).await;
    let s = nested_scenario(&url, 30);
    let outcome = run_learning(&s).await;
    stop.cancel();
    let learned = &outcome.results.summary.learned;
    // `peer` broke on every connection's third message and `global` went on across
    // connections: both were dropped in calibration.
    assert_eq!(learned.identity, vec!["data.owner".to_string()]);
    assert_eq!(learned.sequence, vec!["data.n".to_string()]);
    assert_eq!(learned.replies.len(), 1);
    assert_eq!(learned.replies[0].request, "ping");
    assert_eq!(learned.replies[0].events, vec!["ack", "result"]);
    let summary = &outcome.results.summary;
    assert_eq!(summary.violations.total, 0, "{:?}", summary.violations);
    assert_eq!(summary.verdict, Verdict::Clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_identity_race_is_reported_as_learned() {
    let (url, stop) = spawn_nested(true).await;
    let s = nested_scenario(&url, 30);
    let outcome = run_learning(&s).await;
    stop.cancel();
    assert_eq!(
        outcome.results.summary.learned.identity,
        vec!["data.owner".to_string()]
    );
    // 30 connections open together for ~100 ms each: most messages name the latest user.
    assert!(learned_violations(&outcome, OracleKind::Identity) > 0);
}

/// A hunt that finds a violation of a learned invariant says so in the find itself, with a
/// note to check that it holds for the server before chasing it (a shared event bus makes
/// the same finding on a correct server); a declared invariant's find carries neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hunt_find_of_a_learned_invariant_says_learned() {
    let (url, stop) = spawn_nested(true).await;
    let dir = tempfile::tempdir().unwrap();
    let text = nested_text(&url, 30);
    let path = dir.path().join("nested.toml");
    std::fs::write(&path, &text).unwrap();
    let out_dir = dir.path().join("out");
    let hunt = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
            .arg("hunt")
            .arg(&path)
            .args(["--budget", "40s", "--times", "1", "-q", "-o"])
            .arg(&out_dir)
            .output()
            .unwrap()
    });
    let out = tokio::time::timeout(TEST_BOUND, hunt)
        .await
        .expect("the hunt is bounded")
        .unwrap();
    stop.cancel();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("found learned identity violation"),
        "{stdout}"
    );
    assert!(
        stdout.contains("note         learned in calibration, one connection at a time"),
        "{stdout}"
    );
}

/// A chat room: every request is answered `ack result` on its own connection, and its
/// text goes to every member, the sender included, as `chat` naming the sender in
/// `data.owner` (a broadcast, as chat rooms and SignalR groups do).
async fn spawn_room() -> (String, CancellationToken) {
    let (room, _) = tokio::sync::broadcast::channel::<String>(1024);
    spawn_server(move |tcp| {
        let room = room.clone();
        async move {
            let Some((mut ws, sub)) = accept_with_sub(tcp).await else {
                return;
            };
            let mut heard = room.subscribe();
            let frame = |kind: &str, owner: &str| {
                json!({"kind": kind, "data": {"owner": owner}}).to_string()
            };
            if ws
                .send(Message::Text(frame("hello", &sub).into()))
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::select! {
                    said = heard.recv() => {
                        let Ok(said) = said else { continue };
                        if ws.send(Message::Text(said.into())).await.is_err() {
                            return;
                        }
                    }
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(_))) => {
                            for kind in ["ack", "result"] {
                                if ws.send(Message::Text(frame(kind, &sub).into())).await.is_err() {
                                    return;
                                }
                            }
                            let _ = room.send(frame("chat", &sub));
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            let _ = ws.close(None).await;
                            return;
                        }
                        _ => {}
                    },
                }
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_members_broadcast_is_not_a_learned_identity_violation() {
    let (url, stop) = spawn_room().await;
    let s = nested_scenario(&url, 20);
    let outcome = run_learning(&s).await;
    stop.cancel();
    let summary = &outcome.results.summary;
    // Alone in calibration, each connection heard only its own chat lines: the owner field
    // is learned. Under load every member hears the others' lines, which no expectation of
    // theirs claims: a correct room, no violation.
    assert_eq!(summary.learned.identity, vec!["data.owner".to_string()]);
    assert!(
        summary.counters.messages_received > 20 * 8,
        "members heard each other: {} messages",
        summary.counters.messages_received
    );
    assert_eq!(summary.violations.total, 0, "{:?}", summary.violations);
    assert_eq!(summary.verdict, Verdict::Clean);
}

#[test]
fn stampede_learn_prints_toml_that_pastes_into_a_scenario() {
    let root = env!("CARGO_MANIFEST_DIR");
    let path = format!("{root}/scenarios/burst-connect.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["learn", &path])
        .env_remove("STAMPEDE_TARGET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let v: toml::Value = toml::from_str(&printed).unwrap();
    assert_eq!(v["oracles"]["identity"]["field"].as_str(), Some("user_id"));
    assert_eq!(v["oracles"]["sequence"]["field"].as_str(), Some("seq"));
    // Pasted into the scenario, it declares those oracles.
    let original = std::fs::read_to_string(&path).unwrap();
    let pasted = scenario("burst-connect.toml", &format!("{original}\n{printed}"));
    assert_eq!(pasted.oracles.identity.as_deref(), Some("user_id"));
    assert_eq!(pasted.oracles.sequence.as_deref(), Some("seq"));
}

/// Calibration presents the scenario's own tokens (`[auth] tokens`), not minted ones: a
/// target that accepts only the listed opaque tokens teaches the same replies as one that
/// accepts minted tokens (before the fix, every calibration connection was refused with 401
/// and nothing was learned while the load itself was accepted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibration_presents_the_tokens_of_the_token_source() {
    let (url, stop) = spawn_server(|tcp| async move {
        let Some((mut ws, _token)) = common::accept_bearer(tcp, |t| t.starts_with("tok-")).await
        else {
            return;
        };
        let hello = json!({"kind": "hello"}).to_string();
        if ws.send(Message::Text(hello.into())).await.is_err() {
            return;
        }
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                Message::Text(_) => {
                    for kind in ["ack", "result"] {
                        let frame = json!({ "kind": kind }).to_string();
                        if ws.send(Message::Text(frame.into())).await.is_err() {
                            return;
                        }
                    }
                }
                Message::Close(_) => {
                    let _ = ws.close(None).await;
                    return;
                }
                _ => {}
            }
        }
    })
    .await;
    let text = format!(
        r#"
name = "listed"
seed = 5
duration = "30s"
target = "{url}"

[auth]
tokens = {{ list = ["tok-a", "tok-b", "tok-c"] }}

[oracles]
type_field = "kind"

[[group]]
name = "clients"
users = 3
steps = [
  {{ expect = "hello", within = "5s" }},
  {{ send = {{ kind = "ping" }} }},
  {{ expect = "ack result", within = "5s" }},
  {{ close = 1000 }},
]
"#
    );
    let s = scenario("listed.toml", &text);
    let outcome = run_learning(&s).await;
    stop.cancel();
    let summary = &outcome.results.summary;
    assert_eq!(summary.verdict, Verdict::Clean, "{:?}", summary.violations);
    assert_eq!(summary.learned.replies.len(), 1, "{:?}", summary.learned);
    assert_eq!(summary.learned.replies[0].events, vec!["ack", "result"]);
}

/// A server that refuses the first connection it sees (calibration's) with 400 and takes
/// the rest: calibration learned nothing, and the run says why on its learned line and in
/// its verdict's hint, not only in learned.toml (a wrong subprotocol refused calibration
/// and was said nowhere, helper-112 #2).
/// Greets with a `hello` and reads until the client's Close (or the stream's end).
async fn hello_until_close(ws: &mut common::ServerWs) {
    let hello = json!({"type": "hello"}).to_string();
    let _ = ws.send(Message::Text(hello.into())).await;
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calibration_the_target_refused_is_said_by_the_run() {
    let seen = Arc::new(AtomicU64::new(0));
    let (url, stop) = spawn_server(move |tcp| {
        let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            let refuse = |_: &str| first.then_some(400);
            if let Some((mut ws, _)) = common::accept_bearer_unless(tcp, refuse).await {
                hello_until_close(&mut ws).await;
            }
        }
    })
    .await;
    let text = format!(
        r#"
name = "refused-calibration"
seed = 5
duration = "30s"
target = "{url}"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[[group]]
name = "clients"
users = 2
steps = [ {{ expect = "hello", within = "5s" }}, {{ close = 1000 }} ]
"#
    );
    let s = scenario("refused.toml", &text);
    let outcome = run_learning(&s).await;
    stop.cancel();
    let summary = &outcome.results.summary;
    assert_eq!(
        summary.learned.unaccepted.as_deref(),
        Some("the target accepted no calibration connection (http_400)")
    );
    let mut console = Vec::new();
    stampede::report::render(summary, &mut console).unwrap();
    let console = String::from_utf8(console).unwrap();
    assert!(
        console.contains(
            "learned      nothing: the target accepted no calibration connection (http_400)"
        ),
        "{console}"
    );
    let hint = summary.hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains("before the load, the target accepted no calibration connection (http_400)"),
        "{hint}"
    );
}

/// A server that accepts every connection and answers every request with its error
/// event: unusable, and its hint does not say the server went down after calibration
/// (calibration's connections were accepted, and so were the load's: it was up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_unusable_though_up_is_not_said_to_have_gone_down() {
    let (url, stop) = spawn_server(|tcp| async move {
        let Some((mut ws, _)) = common::accept_bearer(tcp, |_| true).await else {
            return;
        };
        let hello = json!({"type": "hello"}).to_string();
        if ws.send(Message::Text(hello.into())).await.is_err() {
            return;
        }
        while let Some(Ok(Message::Text(_))) = ws.next().await {
            let error = json!({"type": "error", "code": "bad_request"}).to_string();
            if ws.send(Message::Text(error.into())).await.is_err() {
                return;
            }
        }
    })
    .await;
    let text = format!(
        r#"
name = "up-but-refusing"
seed = 5
duration = "30s"
target = "{url}"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[[group]]
name = "clients"
users = 2
steps = [
  {{ expect = "hello", within = "5s" }},
  {{ send = {{ type = "ask" }} }},
  {{ expect = "reply", within = "2s" }},
  {{ close = 1000 }},
]
"#
    );
    let outcome = run_learning(&scenario("refusing.toml", &text)).await;
    stop.cancel();
    let summary = &outcome.results.summary;
    let hint = summary.hint.as_deref().unwrap_or_default();
    assert_eq!(summary.verdict, Verdict::TargetUnusable, "{hint}");
    assert!(
        hint.contains("answered every request with its error event") && !hint.contains("went down"),
        "{hint}"
    );
}

/// A room that broadcasts every `say` to every member, the speaker in `from`: one user at a
/// time, calibration sees `from` always equal to the token's subject; under load every
/// member hears the others. The script filters on `from` (`where`), so `from` is not
/// learned as identity and the correct server gets no violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_the_script_filters_on_is_not_learned_as_identity() {
    let (room, _) = tokio::sync::broadcast::channel::<String>(1024);
    let (url, stop) = spawn_server(move |tcp| {
        let room = room.clone();
        async move {
            let Some((mut ws, sub)) = accept_with_sub(tcp).await else {
                return;
            };
            let mut heard = room.subscribe();
            let hello = json!({"kind": "hello"}).to_string();
            if ws.send(Message::Text(hello.into())).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(t))) => {
                            let said: serde_json::Value =
                                serde_json::from_str(t.as_str()).unwrap_or_default();
                            let out = json!({"kind": "said", "from": sub, "text": said["text"]});
                            let _ = room.send(out.to_string());
                        }
                        Some(Ok(Message::Close(_))) => {
                            let _ = ws.close(None).await;
                            return;
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                    Ok(out) = heard.recv() => {
                        if ws.send(Message::Text(out.into())).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    })
    .await;
    let text = kinded_head("room", &url)
        + r#"
[[group]]
name = "members"
users = 12
arrival = "burst"
jitter = "uniform(0ms, 3ms)"
steps = [
  { expect = "hello", within = "5s" },
  { send = { kind = "say", text = "hi-{{conn}}" } },
  { expect = "said", within = "5s", where = { text = "hi-{{conn}}", from = "{{sub}}" } },
  { think = "fixed(200ms)" },
  { close = 1000 },
]
"#;
    let s = scenario("room.toml", &text);
    let outcome = run_learning(&s).await;
    stop.cancel();
    let summary = &outcome.results.summary;
    assert!(summary.learned.identity.is_empty(), "{:?}", summary.learned);
    assert_eq!(summary.violations.total, 0, "{:?}", summary.violations);
    assert_eq!(summary.verdict, Verdict::Clean);
}

/// `stampede learn` against a target that accepts nothing learned nothing: it says so and
/// exits with the unusable-target code, never 0.
#[test]
fn stampede_learn_fails_when_nothing_was_accepted() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["learn", &format!("{root}/scenarios/burst-connect.toml")])
        .args(["--target", &format!("ws://127.0.0.1:{port}/ws")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("Nothing was learned"), "{printed}");
    let said = String::from_utf8(out.stderr).unwrap();
    assert!(
        said.contains("accepted no calibration connection"),
        "{said}"
    );
}

/// `stampede hunt` calibrates as `learn` does, and a target that accepted no calibration
/// connection gets `learn`'s account of it on the `learned` line, never "no invariant
/// held" (which blames the invariants for what the target did).
#[test]
fn stampede_hunt_says_what_learn_says_when_nothing_was_accepted() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let root = env!("CARGO_MANIFEST_DIR");
    let scenario = format!("{root}/scenarios/burst-connect.toml");
    let target = format!("ws://127.0.0.1:{port}/ws");
    let learn = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["learn", &scenario, "--target", &target])
        .output()
        .unwrap();
    let said = String::from_utf8(learn.stderr).unwrap();
    // `error: WHAT: nothing was learned; CHECK`
    let line = said
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| panic!("{said}"));
    let (what, check) = line
        .split_once(": nothing was learned; ")
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        what.starts_with("the target accepted no calibration connection (connect_"),
        "{what}"
    );
    // Nothing listens there: the port, not the server's protocol, is what to check.
    assert_eq!(
        check,
        format!(
            "nothing accepted the TCP connection at 127.0.0.1:{port}: check the URL's port \
             and that the server is running"
        )
    );

    let out = tempfile::tempdir().unwrap();
    let hunt = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            "hunt", &scenario, "--target", &target, "--budget", "10s", "-o",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let said = String::from_utf8(hunt.stderr).unwrap();
    assert!(
        said.contains(&format!("learned      nothing: {what}; {check}\n")),
        "{said}"
    );
    assert!(!said.contains("no invariant held"), "{said}");
    assert_eq!(hunt.status.code(), Some(5), "{said}");
}

/// `stampede learn` against a target that closes every connection right after its 101
/// with `code` and `reason`, the scenario's `[oracles]` holding `reject`: its output.
async fn learn_against_a_close(
    code: u16,
    reason: &'static str,
    reject: &str,
) -> std::process::Output {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let (url, stop) = spawn_server(move |tcp| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let _ = ws.send(Message::Close(Some(frame))).await;
        let _ = ws.next().await;
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("closing.toml");
    std::fs::write(
        &path,
        format!("{}\n[oracles]\n{reject}\n", undeclared_chat(2)),
    )
    .unwrap();
    let learn = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
            .arg("learn")
            .arg(&path)
            .args(["--target", &url])
            .output()
            .unwrap()
    });
    let out = tokio::time::timeout(TEST_BOUND, learn)
        .await
        .expect("learn is bounded")
        .unwrap();
    stop.cancel();
    out
}

/// A target that sheds every calibration connection before accepting it: `learn` says the
/// target shed load, the same for a 1013 and for a code of the server's own that the
/// scenario declares in `reject.shed` (4429), and sends no one to check the URL. The same
/// 4429 undeclared is no shedding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibration_says_the_target_shed_load_for_1013_and_declared_codes() {
    for (code, reject, shed) in [
        (1013u16, "", true),
        (4429, "reject = { shed = [4429] }", true),
        (4429, "", false),
    ] {
        let out = learn_against_a_close(code, "Too many requests", reject).await;
        let said = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(5), "{code} {reject:?}: {said}");
        let line = format!(
            "error: the target accepted no calibration connection (server_close_{code}: load \
             shedding): nothing was learned; the target sheds load: calibrate when it is less \
             busy"
        );
        assert_eq!(said.contains(&line), shed, "{code} {reject:?}: {said}");
        assert_eq!(
            said.contains("check the URL"),
            !shed,
            "{code} {reject:?}: {said}"
        );
    }
}

/// A target that refuses every calibration connection with a close code of its own that
/// the scenario declares as its token refusal (`reject = { close = [4004] }`, Discord's
/// "Authentication failed"): `learn` sends the user to the token settings, exit 6, as it
/// does for a 401. The same 4004 undeclared says nothing about tokens: exit 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibration_refused_with_a_declared_refusal_code_says_check_the_tokens() {
    for (reject, exit) in [("reject = { close = [4004] }", 6), ("", 5)] {
        let out = learn_against_a_close(4004, "Authentication failed", reject).await;
        let said = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(exit), "{reject:?}: {said}");
        assert_eq!(
            said.contains("check the token settings ([auth])"),
            exit == 6,
            "{reject:?}: {said}"
        );
    }
}

/// A server whose `user_seq` counts per user: every connection of a user draws from one
/// counter, stamped on its `hello` and on the `ack` and `result` each request gets. With
/// `skip_when_crowded`, a reply sent while another connection is open skips a number (a
/// counter that breaks under load only; calibration's connections are one at a time, and
/// the one before has long gone by the time the next one's first request is answered).
async fn spawn_user_counter(skip_when_crowded: bool) -> (String, CancellationToken) {
    let counters: Arc<Mutex<std::collections::HashMap<String, u64>>> = Arc::default();
    let open = Arc::new(AtomicU64::new(0));
    spawn_server(move |tcp| {
        let counters = counters.clone();
        let open = open.clone();
        async move {
            let Some((mut ws, sub)) = accept_with_sub(tcp).await else {
                return;
            };
            open.fetch_add(1, Ordering::SeqCst);
            let frame = |kind: &str| {
                let crowded = kind != "hello" && open.load(Ordering::SeqCst) > 1;
                let mut counters = counters.lock().unwrap();
                let n = counters.entry(sub.clone()).or_default();
                *n += if skip_when_crowded && crowded { 2 } else { 1 };
                json!({"type": kind, "user_id": sub, "user_seq": *n}).to_string()
            };
            let mut out = vec![frame("hello")];
            while let Some(text) = out.pop() {
                if ws.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
                if !out.is_empty() {
                    continue;
                }
                match ws.next().await {
                    Some(Ok(Message::Text(_))) => {
                        // Numbered in sending order; popped from the end.
                        let ack = frame("ack");
                        out = vec![frame("result"), ack];
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
            // Closed before the close reply: the next calibration connection finds it gone.
            open.fetch_sub(1, Ordering::SeqCst);
            let _ = ws.close(None).await;
        }
    })
    .await
}

/// `users` users of `per_user` connections each (distinct tokens); every request waits at a
/// rendezvous of all of them, so a user's connections take turns on that user's counter.
fn user_counter_scenario(target: &str, users: u32, per_user: u32) -> stampede::model::Scenario {
    let text = format!(
        r#"
name = "user-counter"
seed = 9
duration = "30s"
target = "{target}"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[[group]]
name = "clients"
users = {users}
connections_per_user = {per_user}
arrival = "burst"
steps = [
  {{ expect = "hello", within = "5s" }},
  {{ repeat = 3, steps = [
    {{ rendezvous = "all" }},
    {{ send = {{ type = "ping" }} }},
    {{ expect = "ack result", within = "5s" }},
  ] }},
  {{ close = 1000 }},
]
"#
    );
    scenario("user-counter.toml", &text)
}

/// A per-user counter seen by two connections of one user is no ordering violation:
/// calibration (one connection per user) learned it, the run sets it aside and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_user_counter_on_two_connections_per_user_is_set_aside() {
    let (url, stop) = spawn_user_counter(false).await;
    let s = user_counter_scenario(&url, 4, 2);
    let outcome = run_learning(&s).await;
    stop.cancel();
    let summary = &outcome.results.summary;
    assert_eq!(
        summary.violations.of(OracleKind::Ordering),
        0,
        "{:?}",
        summary.violations
    );
    assert_eq!(summary.verdict, Verdict::Clean, "{:?}", summary.violations);
    assert!(summary.learned.sequence.is_empty(), "{:?}", summary.learned);
    assert_eq!(
        summary.learned.sequence_set_aside,
        vec!["user_seq".to_string()]
    );
    // Identity holds on every connection of a user: still learned, still checked.
    assert_eq!(summary.learned.identity, vec!["user_id".to_string()]);
    let line = stampede::report::learned_line(&summary.learned);
    assert!(
        line.contains(
            "sequence user_seq set aside (not checked): several connections share a user"
        ),
        "{line}"
    );
}

/// One connection per user: the learned sequence is still checked, and a counter that
/// skips under load is a learned ordering violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learned_sequence_still_catches_a_skip_with_one_connection_per_user() {
    let (url, stop) = spawn_user_counter(true).await;
    let s = user_counter_scenario(&url, 4, 1);
    let outcome = run_learning(&s).await;
    stop.cancel();
    let summary = &outcome.results.summary;
    assert_eq!(
        summary.learned.sequence,
        vec!["user_seq".to_string()],
        "{:?}",
        summary.learned
    );
    assert!(summary.learned.sequence_set_aside.is_empty());
    assert!(learned_violations(&outcome, OracleKind::Ordering) > 0);
    assert_eq!(summary.verdict, Verdict::Violations);
}

/// A hunt calibrates once, on its probe plan, and runs other plans with what it learned: a
/// round with two connections per user sets the learned sequence aside, though the probe
/// plan (one connection per user) checked it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hunt_round_with_two_connections_per_user_sets_the_learned_sequence_aside() {
    let (url, stop) = spawn_user_counter(false).await;
    let probe = stampede::plan::build(&user_counter_scenario(&url, 4, 1), 9);
    let round = stampede::plan::build(&user_counter_scenario(&url, 4, 2), 9);
    let opts = RunOptions {
        learn: true,
        ..RunOptions::default()
    };
    let target = stampede::run::Target::Url(url);
    let outcome = tokio::time::timeout(TEST_BOUND, async {
        let runner = stampede::hunt::Runner::start(&target, &probe, opts, CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(runner.learned.sequence, vec!["user_seq".to_string()]);
        let outcome = runner.once(&round).await.unwrap();
        runner.close().await;
        outcome
    })
    .await
    .expect("the hunt round did not finish in time");
    stop.cancel();
    let summary = &outcome.results.summary;
    assert_eq!(
        summary.violations.of(OracleKind::Ordering),
        0,
        "{:?}",
        summary.violations
    );
    assert_eq!(
        summary.learned.sequence_set_aside,
        vec!["user_seq".to_string()]
    );
}

/// A server that answers every request with one message of the kind the request asks for
/// (`reply_as`), echoing its `id`: in calibration the ids went up by one across two kinds,
/// yet they are the client's own numbers, which a correct server may answer in any order
/// under load. Never learned as a sequence (it once was, and a JSON-RPC server answering a
/// rate-limit error ahead of a pipelined result broke it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_the_server_echoes_is_not_learned_as_a_sequence() {
    let (url, stop) = spawn_server(|tcp| async move {
        let Some((mut ws, _)) = accept_with_sub(tcp).await else {
            return;
        };
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            let request: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let answer = json!({"kind": request["reply_as"], "id": request["id"]});
            if ws
                .send(Message::Text(answer.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
    })
    .await;
    let text = kinded_head("echoed-ids", &url)
        + r#"
[[group]]
name = "clients"
users = 6
arrival = "burst"
steps = [
  { repeat = 3, steps = [
    { send = { op = "req", id = "{{run:int}}", reply_as = "alpha" } },
    { expect = "alpha", correlate = "id", within = "5s" },
    { send = { op = "req", id = "{{run:int}}", reply_as = "beta" } },
    { expect = "beta", correlate = "id", within = "5s" },
  ] },
  { close = 1000 },
]
"#;
    let outcome = run_learning(&scenario("echoed-ids.toml", &text)).await;
    stop.cancel();
    let summary = &outcome.results.summary;
    assert!(
        !summary.learned.sequence.contains(&"id".to_string()),
        "{:?}",
        summary.learned
    );
    assert_eq!(summary.verdict, Verdict::Clean, "{:?}", summary.hint);
}

/// Serves `before_down` connections one after another (a greeting, then until the client's
/// Close), then goes down: its listener closed as the last one ends, before the close
/// handshake completes, so nothing after it reaches a listener. A run of `users`
/// calibrating first, against it.
async fn run_against_one_gone_after(before_down: usize, users: u32) -> RunOutcome {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut listener = Some(listener);
        for served in 1..=before_down {
            let Some(open) = &listener else {
                return;
            };
            let Ok((tcp, _)) = open.accept().await else {
                return;
            };
            let Some((mut ws, _)) = common::accept_bearer(tcp, |_| true).await else {
                return;
            };
            hello_until_close(&mut ws).await;
            if served == before_down {
                // Down before the client sees its close answered.
                listener = None;
            }
            let _ = ws.flush().await;
            let _ = tokio::time::timeout(TEST_BOUND, ws.next()).await;
        }
    });
    let text = format!(
        r#"
name = "gone-after-calibration"
seed = 5
duration = "30s"
target = "{url}"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[oracles]
exclusive = false
liveness = false

[[group]]
name = "clients"
users = {users}
steps = [ {{ expect = "hello", within = "5s" }}, {{ close = 1000 }} ]
"#
    );
    let outcome = run_learning(&scenario("gone.toml", &text)).await;
    server.abort();
    outcome
}

/// A server that goes down right after calibration, or during it: the load finds the port
/// closed. The target is unusable, and the hint says calibration had been accepted there a
/// moment before (all its connections, or some), so the URL and port it tells the user to
/// check are not what went wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_between_calibration_and_the_load_is_said_so() {
    for (before_down, said) in [
        (
            2,
            "calibration, just before the load, had 2 connections accepted at this URL: the \
             server went down or stopped taking connections between calibration and the load",
        ),
        (
            1,
            "calibration, just before the load, had 1 of its 2 connections accepted at this \
             URL: the server went down or stopped taking connections during calibration",
        ),
    ] {
        let outcome = run_against_one_gone_after(before_down, 2).await;
        let summary = &outcome.results.summary;
        let hint = summary.hint.as_deref().unwrap_or_default();
        assert_eq!(summary.verdict, Verdict::TargetUnusable, "{hint}");
        // What calibration saw first: it says what the URL check below it cannot.
        assert!(
            hint.contains("nothing accepted the TCP connection") && hint.starts_with(said),
            "{before_down}: {hint}"
        );
    }
}

/// `learn` and `hunt` connect from `--source-addr` as `run` does: an address of this host
/// works, and one it does not have is refused before any connection, naming it (were the
/// option ignored, both would run from the system's choice and exit as usual).
#[test]
fn learn_and_hunt_connect_from_the_source_addresses_given() {
    let root = env!("CARGO_MANIFEST_DIR");
    let path = format!("{root}/scenarios/burst-connect.toml");
    let stampede = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args(args)
            .env_remove("STAMPEDE_TARGET")
            .output()
            .unwrap()
    };
    let own = stampede(&["learn", &path, "--source-addr", "127.0.0.2"]);
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    // TEST-NET-1 (RFC 5737): no host has it.
    let foreign = "192.0.2.1";
    for args in [
        vec!["learn", &path, "--source-addr", foreign],
        vec![
            "hunt",
            &path,
            "--reference",
            "--budget",
            "20s",
            "--source-addr",
            foreign,
        ],
    ] {
        let out = stampede(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(foreign), "{args:?}: {stderr}");
    }
}

/// What the README says `learn` prints of refusals is what it prints: one bad-token
/// connection's answer, only when a group of the scenario forges tokens a correct server
/// must refuse; a scenario without one tries no refusal and prints none.
#[test]
fn the_readme_says_when_learn_prints_how_a_bad_token_was_answered() {
    let root = env!("CARGO_MANIFEST_DIR");
    let learn = |scenario: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args(["learn", scenario, "--reference"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let plain = learn(&format!("{root}/scenarios/golden-path.toml"));
    assert!(
        plain.contains("valid-token connections accepted"),
        "{plain}"
    );
    assert!(!plain.contains("Bad token"), "{plain}");
    assert!(!plain.contains("refused"), "{plain}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forged.toml");
    let text = r#"
name = "forged"
duration = "2s"

[[group]]
name = "good"
users = 2
steps = [{ expect = "connection_established", within = "2s" }, { close = 1000 }]

[[group]]
name = "bad"
users = 1
forge = "alg-none"
steps = [{ expect = "connection_established", within = "2s" }, { close = 1000 }]
"#;
    std::fs::write(&path, text).unwrap();
    let forged = learn(path.to_str().unwrap());
    assert!(
        forged.contains("# Bad token alg-none: refused with HTTP 401.\n"),
        "{forged}"
    );

    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `stampede learn "))
        .expect("the README's learn row");
    // No claim that every learn says how tokens are refused: the line, and when it comes.
    assert!(
        !row.contains("how tokens are accepted and refused"),
        "{row}"
    );
    assert!(
        row.contains("`# Bad token alg-none: refused with HTTP 401.`")
            && row.contains("(`forge`)")
            && row.contains("a scenario without such a group tries no refusal"),
        "{row}"
    );
}
