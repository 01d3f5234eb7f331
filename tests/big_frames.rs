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
