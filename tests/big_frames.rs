#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Large frames nobody asked for (issue 11): a server that pushes ~600 KB events the
//! script does not expect, then one past `[limits] max_message_bytes`. The unwanted events
//! are kept only up to `max_buffered_bytes` (the rest dropped and counted); the oversized
//! one ends the connection as a counted `oversized_frame`, with our Close(1009), not an
//! out-of-memory or a crash.

mod common;

use common::{run, scenario, spawn_server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const USERS: u64 = 4;
const NOISE: u64 = 8;
const NOISE_BYTES: usize = 600_000;

/// Answers the first request after `NOISE` unwanted big events, then sends one frame past
/// the 1 MiB limit and reports the close code of the client's next frame.
async fn noisy(tcp: tokio::net::TcpStream, codes: mpsc::UnboundedSender<Option<u16>>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let Some(Ok(Message::Text(request))) = ws.next().await else {
        return;
    };
    let request: Value = serde_json::from_str(request.as_str()).unwrap_or(Value::Null);
    let pad = "x".repeat(NOISE_BYTES);
    for _ in 0..NOISE {
        let noise = json!({"type": "noise", "pad": pad});
        if ws.send(Message::text(noise.to_string())).await.is_err() {
            return;
        }
    }
    let pong = json!({"type": "pong", "run_id": request["run_id"], "ok": true});
    if ws.send(Message::text(pong.to_string())).await.is_err() {
        return;
    }
    let big = json!({"type": "noise", "pad": "y".repeat(2 << 20)});
    let _ = ws.send(Message::text(big.to_string())).await;
    // The client stops reading at its limit; what it sends next is its goodbye.
    let code = loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            _ => break None,
        }
    };
    let _ = codes.send(code);
}

#[tokio::test]
async fn big_unwanted_frames_are_bounded_and_an_oversized_one_is_a_finding() {
    let (tx, mut codes) = mpsc::unbounded_channel();
    let (url, stop) = spawn_server(move |tcp| noisy(tcp, tx.clone())).await;
    // `where` makes the checker keep whole bodies of unclaimed messages: the costly case.
    let s = scenario(
        "big-frames.toml",
        &format!(
            r#"
name = "big-frames"
duration = "60s"
[oracles]
exclusive = false
liveness = false
[[group]]
name = "g"
users = {USERS}
steps = [
  {{ send = {{ type = "ping", run_id = "r{{{{conn}}}}" }} }},
  {{ expect = "pong", correlate = "run_id", within = "20s", where = {{ ok = true }} }},
  {{ think = "20s" }},
  # Never reached (the oversized frame ends the connection first): it names `noise`, so
  # the unwanted events are kinds the script could claim and are kept, up to the bound
  # (a kind no step names is not kept at all).
  {{ expect = "noise", within = "1s" }},
]
"#
        ),
    );
    let outcome = run(&s, Some(url), None).await;
    stop.cancel();
    let c = &outcome.results.summary.counters;
    assert_eq!(c.expect.expectations_met, USERS, "{c:?}");
    // Two 600 KB bodies never fit in the 1 MiB bound: each arrival drops the one before
    // (or, when its own measure is past the bound, is not kept at all).
    assert!(
        (USERS * (NOISE - 1)..=USERS * NOISE).contains(&c.expect.buffer_overflows),
        "{c:?}"
    );
    assert!(c.expect.buffer_overflow_bytes >= USERS * (NOISE - 1) * NOISE_BYTES as u64);
    assert_eq!(
        c.ended_by
            .get(&stampede::model::Cause::parse("oversized_frame")),
        Some(&USERS),
        "{:?}",
        c.ended_by
    );
    for _ in 0..USERS {
        let code = tokio::time::timeout(Duration::from_secs(10), codes.recv())
            .await
            .expect("every connection reports its close code")
            .expect("the server task is alive");
        assert_eq!(code, Some(1009), "the client says why it stops reading");
    }
}

/// Greets, then answers each `ping` with a `pong` padded to `pad` bytes, except the
/// connection whose `run_id` is `lose` (if any): it gets nothing back.
async fn padded(tcp: tokio::net::TcpStream, pad: usize, lose: Option<&'static str>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    // A greeting as large as the answers when no answer is lost: the first frame.
    let welcome = match lose {
        Some(_) => json!({"type": "welcome"}),
        None if pad > 10_000 => json!({"type": "welcome", "pad": "w".repeat(pad)}),
        None => json!({"type": "welcome"}),
    };
    if ws.send(Message::text(welcome.to_string())).await.is_err() {
        return;
    }
    while let Some(Ok(Message::Text(request))) = ws.next().await {
        let request: Value = serde_json::from_str(request.as_str()).unwrap_or(Value::Null);
        if lose.is_some_and(|l| request["run_id"] == l) {
            continue;
        }
        let pong = json!({"type": "pong", "run_id": request["run_id"], "pad": "z".repeat(pad)});
        if ws.send(Message::text(pong.to_string())).await.is_err() {
            return;
        }
    }
}

fn padded_scenario() -> stampede::model::Scenario {
    scenario(
        "padded.toml",
        r#"
name = "padded"
duration = "20s"
[oracles]
exclusive = false
liveness = false
[limits]
max_message_bytes = 4096
[[group]]
name = "g"
users = 3
steps = [
  { send = { type = "ping", run_id = "r{{conn}}" } },
  { expect = "pong", correlate = "run_id", within = "5s" },
  { close = 1000 },
]
"#,
    )
}

/// Every answer larger than `[limits] max_message_bytes`: each connection closed 1009 by
/// this client before it could read what it waited for. The client's limit, not a loss
/// to hunt: client limited, naming the setting. Beside a connection whose answer never
/// came at all, the loss stands.
#[tokio::test]
async fn answers_over_the_clients_frame_limit_are_the_clients_limit_not_a_race() {
    let (url, stop) = spawn_server(|tcp| padded(tcp, 8_000, None)).await;
    let outcome = run(&padded_scenario(), Some(url), None).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(
        s.verdict,
        stampede::model::Verdict::ClientLimited,
        "{:?}",
        s.hint
    );
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("max_message_bytes = 4096 bytes (3 connections so)"),
        "{hint}"
    );
    // The greeting too large already: nothing accepted, the client's limit all the same.
    let (url, stop) = spawn_server(|tcp| padded(tcp, 12_000, None)).await;
    let first = run(&padded_scenario(), Some(url), None).await;
    stop.cancel();
    let s = &first.results.summary;
    assert_eq!(
        s.verdict,
        stampede::model::Verdict::ClientLimited,
        "{:?}",
        s.hint
    );
    assert!(
        s.hint
            .as_deref()
            .unwrap_or_default()
            .contains("first frames were larger"),
        "{:?}",
        s.hint
    );
    let (url, stop) = spawn_server(|tcp| padded(tcp, 8_000, Some("r1"))).await;
    let lossy = run(&padded_scenario(), Some(url), None).await;
    stop.cancel();
    let s = &lossy.results.summary;
    assert_eq!(
        s.verdict,
        stampede::model::Verdict::Violations,
        "{:?}",
        s.hint
    );
}
