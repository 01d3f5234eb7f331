//! A server that pings in band (`{"type":"ping","nonce":N}` every 150 ms) and closes with
//! 4000 "ping timeout" a connection that has not sent the matching
//! `{"type":"pong","nonce":N}` within 400 ms, as many custom servers (and Pusher, and
//! graphql-transport-ws) do. With `[[answer]]` each connection answers every ping and the
//! run is clean, the answers counted; without it the server's close cuts every script.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{scenario, spawn_server, TEST_SECRET};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stampede::model::Verdict;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const PING_EVERY: Duration = Duration::from_millis(150);
const PONG_WITHIN: Duration = Duration::from_millis(400);

/// Serves one connection: pings every [`PING_EVERY`], closes 4000 when a ping's pong is
/// [`PONG_WITHIN`] late, and answers each `echo` request with an `echo` of its `run_id`.
async fn serve(tcp: tokio::net::TcpStream) {
    let Some((mut ws, _token)) = common::accept_bearer(tcp, |_| true).await else {
        return;
    };
    let mut tick = tokio::time::interval(PING_EVERY);
    tick.tick().await;
    let mut nonce = 0u64;
    // Pings not answered yet, oldest first, with when they went out.
    let mut owed: VecDeque<(u64, Instant)> = VecDeque::new();
    loop {
        let deadline = owed.front().map(|(_, at)| *at + PONG_WITHIN);
        tokio::select! {
            _ = tick.tick() => {
                nonce += 1;
                let ping = json!({"type": "ping", "nonce": nonce}).to_string();
                if ws.send(Message::Text(ping.into())).await.is_err() {
                    return;
                }
                owed.push_back((nonce, Instant::now()));
            }
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let frame = CloseFrame {
                    code: CloseCode::from(4000),
                    reason: "ping timeout".into(),
                };
                let _ = ws.send(Message::Close(Some(frame))).await;
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            frame = ws.next() => {
                let Some(Ok(Message::Text(text))) = frame else {
                    match frame {
                        Some(Ok(_)) => continue,
                        _ => return,
                    }
                };
                let Ok(msg) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                match msg["type"].as_str() {
                    Some("pong") => {
                        let n = msg["nonce"].as_u64();
                        owed.retain(|(o, _)| Some(*o) != n);
                    }
                    Some("echo") => {
                        let echo = json!({"type": "echo", "run_id": msg["run_id"]}).to_string();
                        if ws.send(Message::Text(echo.into())).await.is_err() {
                            return;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Three users, three request/answer turns with a 1 s think between them; `answer`:
/// top-level tables appended.
fn pinged_scenario(name: &str, answer: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = 5
duration = "20s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[[group]]
name = "talkers"
users = 3
arrival = {{ ramp = "100ms" }}
steps = [
  {{ send = {{ type = "echo", run_id = "a-{{{{conn}}}}" }} }},
  {{ expect = "echo", correlate = "run_id", within = "2s" }},
  {{ think = "1s" }},
  {{ send = {{ type = "echo", run_id = "b-{{{{conn}}}}" }} }},
  {{ expect = "echo", correlate = "run_id", within = "2s" }},
  {{ think = "1s" }},
  {{ send = {{ type = "echo", run_id = "c-{{{{conn}}}}" }} }},
  {{ expect = "echo", correlate = "run_id", within = "2s" }},
  {{ close = 1000 }},
]
{answer}
"#
    )
}

async fn run_pinged(name: &str, answer: &str) -> stampede::results::Summary {
    let (url, stop) = spawn_server(serve).await;
    let s = scenario(&format!("{name}.toml"), &pinged_scenario(name, answer));
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    outcome.results.summary
}

/// Answered, every ping gets its pong: no 4000, a clean run, the answers counted (and
/// shown) apart from the script's sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_pings_keep_the_connections_open() {
    let answer = r#"
[[answer]]
on = "ping"
capture = { nonce = "nonce" }
send = { type = "pong", nonce = "{{$nonce}}" }
"#;
    let sum = run_pinged("answered", answer).await;
    let c = &sum.counters;
    assert_eq!(sum.violations.total, 0, "{:?} {c:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::Clean, "{:?} {c:?}", sum.hint);
    assert_eq!(c.accepted, 3, "{c:?}");
    assert!(
        c.ended_by
            .keys()
            .all(|k| k.to_string() != "server_close_4000"),
        "{c:?}"
    );
    // Three connections, each open about 2 s, pinged every 150 ms.
    assert!(c.in_band_answers >= 3 * 6, "{c:?}");
    assert_eq!(c.messages_sent, 9, "{c:?}");
    let mut console = Vec::new();
    stampede::report::render(&sum, &mut console).unwrap();
    let console = String::from_utf8(console).unwrap();
    assert!(console.contains("in-band pings ([[answer]]"), "{console}");
}

/// Unanswered, the server's 4000 "ping timeout" ends every connection in its first think:
/// their later turns never run, and the run is not clean. The hint blames the missed
/// pings and says to answer them, never to declare the closes a lifetime or idle policy
/// (which would make a clean run of connections the client let die).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_pings_get_the_connections_closed() {
    let sum = run_pinged("unanswered", "").await;
    let c = &sum.counters;
    assert_eq!(c.in_band_answers, 0, "{c:?}");
    assert!(sum.violations.total > 0, "{:?} {c:?}", sum.violations);
    assert_ne!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
    assert!(
        c.ended_by
            .keys()
            .any(|k| k.to_string() == "server_close_4000"),
        "{c:?}"
    );
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("blaming a missed ping (close 4000 \"ping timeout\")")
            && hint.contains("answer them with `[[answer]]`"),
        "{hint}"
    );
    assert!(
        !hint.contains("declare [oracles] max_lifetime") && !hint.contains("idle_timeout ="),
        "{hint}"
    );
}

/// The plan carries the scenario's answers (a repro replays them); a plan written before
/// answers existed (no `answers` key) still loads, and one without answers writes none.
#[test]
fn the_plan_carries_the_answers_and_old_plans_still_load() {
    let answer = "[[answer]]\non = \"ping\"\ncapture = { n = \"nonce\" }\n\
                  send = { type = \"pong\", nonce = \"{{$n}}\" }\n";
    let s = scenario("carried.toml", &pinged_scenario("carried", answer));
    assert_eq!(s.answers.len(), 1);
    let plan = stampede::plan::build(&s, 1);
    assert_eq!(plan.answers, s.answers);
    let mut saved = serde_json::to_value(&plan).unwrap();
    saved.as_object_mut().unwrap().remove("answers");
    let old: stampede::model::Plan = serde_json::from_value(saved).unwrap();
    assert!(old.answers.is_empty());
    let none = stampede::plan::build(&scenario("none.toml", &pinged_scenario("none", "")), 1);
    assert!(serde_json::to_value(&none)
        .unwrap()
        .get("answers")
        .is_none());
}
