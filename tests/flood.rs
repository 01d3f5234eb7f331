#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Flood mode (issue 11): sends carrying `{{marker}}` wait for nothing; each echo's latency
//! is read back from the marker it carries, and every echo is counted once.

mod common;

use common::{run, scenario, spawn_server};
use futures_util::{SinkExt, StreamExt};

/// Echoes every text frame, as is.
async fn echo(tcp: tokio::net::TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_text() && ws.send(msg).await.is_err() {
            break;
        }
    }
}

#[test]
fn the_marker_field_is_found_where_the_template_puts_it() {
    let s = scenario(
        "markers.toml",
        r#"
name = "markers"
duration = "60s"
[[group]]
name = "g"
users = 1
steps = [
  { send = { type = "echo", meta = { sent = "{{marker}}", label = "m{{marker}}" } } },
]
"#,
    );
    let plan = stampede::plan::build(&s, 1);
    // Only a string that is exactly the placeholder can be read back.
    assert_eq!(plan.marker_fields(&plan.conns[0]), vec!["/meta/sent"]);
}

#[tokio::test]
async fn a_flood_counts_every_echo_and_times_it_from_its_marker() {
    let (url, stop) = spawn_server(echo).await;
    let s = scenario(
        "flood.toml",
        r#"
name = "flood"
duration = "60s"
[oracles]
exclusive = false
liveness = false
[[group]]
name = "g"
users = 4
steps = [
  { repeat = 250, steps = [ { send = { type = "echo", m = "{{marker}}" } } ] },
]
"#,
    );
    let outcome = run(&s, Some(url), None).await;
    stop.cancel();
    let summary = &outcome.results.summary;
    let c = &summary.counters;
    assert_eq!(c.messages_sent, 1000, "{c:?}");
    assert_eq!(c.messages_received, 1000, "{c:?}");
    assert_eq!(
        summary.violations.total, 0,
        "{:?}",
        summary.violations.first
    );
    // One latency per echo, none for anything else, and no echo kept as unclaimed.
    assert_eq!(summary.phases["turn"].count, 1000);
    assert_eq!(c.expect.buffer_overflows, 0);
}
