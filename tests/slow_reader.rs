//! A server that closes a slow reader (a client that stopped reading while it had events
//! to send) with a policy code: what a script's `pause_reads` tests. Read as the pause
//! ends, that close is the server's backpressure policy, not a lost session; the same
//! close with no pause in the script is the loss it always was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{scenario, spawn_server, TEST_SECRET};
use futures_util::StreamExt;
use stampede::model::{Cause, OracleKind, Verdict};
use tokio_tungstenite::tungstenite::Message;

/// Greets, and once the first request comes, sends its first event and closes with 1008
/// "slow consumer" 50 ms later instead of the rest: the script that paused its reads
/// meanwhile reads both as its pause ends.
async fn close_the_reader(tcp: tokio::net::TcpStream) {
    let Some((mut ws, _)) = common::accept_greeted(tcp).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            let request: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            let started = serde_json::json!({"type": "agent_started", "run_id": request["run_id"]});
            let _ = futures_util::SinkExt::send(&mut ws, Message::Text(started.to_string().into()))
                .await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            common::close_and_drain(&mut ws, 1008, "slow consumer").await;
            return;
        }
    }
}

/// Three users: a request, then (`pause`) reads paused for 400 ms, then the five events
/// expected.
fn slow_scenario(pause: bool) -> String {
    let pause = if pause {
        "{ pause_reads = \"400ms\" },"
    } else {
        ""
    };
    format!(
        r#"
name = "slow"
seed = 3
duration = "20s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[[group]]
name = "readers"
users = 3
steps = [
  {{ expect = "connection_established", within = "3s" }},
  {{ send = {{ type = "user_message", run_id = "a-{{{{conn}}}}", content = "hi" }} }},
  {pause}
  {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "3s" }},
  {{ close = 1000 }},
]
"#
    )
}

/// The Close read as the pause ends is the server's slow-reader policy: counted and said,
/// its script's unmet answer refused, the run clean (it once read as three lost answers
/// and "hunt for a repro"). Without the pause the same close loses the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_closed_as_its_pause_ends_is_the_servers_policy() {
    let (url, stop) = spawn_server(close_the_reader).await;
    let paused = common::run(
        &scenario("slow.toml", &slow_scenario(true)),
        Some(url.clone()),
        None,
    )
    .await;
    let reading = common::run(
        &scenario("fast.toml", &slow_scenario(false)),
        Some(url),
        None,
    )
    .await;
    stop.cancel();

    let sum = &paused.results.summary;
    assert_eq!(
        sum.counters
            .ended_by
            .get(&Cause::ServerClose(1008))
            .copied(),
        Some(3),
        "{:?}",
        sum.counters
    );
    assert_eq!(sum.violations.total, 0, "{:#?}", paused.results.violations);
    assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("the server closed 3 connections as their scripts stopped pausing their reads (server_close_1008 ×3)"),
        "{hint}"
    );

    let sum = &reading.results.summary;
    assert_eq!(
        sum.violations.of(OracleKind::Completeness),
        3,
        "{:?}",
        sum.violations
    );
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
}
