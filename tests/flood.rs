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

/// A loop of sends with no `expect` and no marker reads what has arrived between its
/// sends, as a flood with markers does: a flood cut by the run's duration has read the
/// echoes of what it sent (it read none: they waited until the close, which a run cut by
/// its duration never reads through), and the server was never left unable to write.
#[tokio::test]
async fn a_loop_of_sends_reads_between_them() {
    let (url, stop) = spawn_server(echo).await;
    let s = scenario(
        "sends.toml",
        r#"
name = "sends"
duration = "2s"
[oracles]
exclusive = false
liveness = false
[[group]]
name = "g"
users = 2
steps = [
  { repeat = 100000000, steps = [ { send = { type = "ask", n = "{{run}}" } } ] },
]
"#,
    );
    let outcome = run(&s, Some(url), None).await;
    stop.cancel();
    let c = &outcome.results.summary.counters;
    assert!(c.messages_sent > 0, "{c:?}");
    assert!(c.messages_received > 0, "{c:?}");
}

/// Answers three text frames, then closes (1000).
async fn answers_three_then_closes(tcp: tokio::net::TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let mut answered = 0;
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_text() {
            answered += 1;
            if ws.send(msg).await.is_err() {
                return;
            }
            if answered == 3 {
                let normal = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 1000.into(),
                    reason: "".into(),
                };
                let _ = ws.close(Some(normal)).await;
                // Drain until the client's Close (or its end).
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
        }
    }
}

/// A server that closes while a loop of sends runs: its Close is read between two sends,
/// the connection ends there for that Close, and no send after it is written to nothing
/// or counted as a loss of its own; the rest of the loop, walked without a connection,
/// still lets the run's duration end it (on this test's one thread it ran all 10^8
/// iterations first, past the minute the test allows).
#[tokio::test]
async fn a_close_read_between_sends_ends_the_loop_for_what_it_is() {
    let (url, stop) = spawn_server(answers_three_then_closes).await;
    let s = scenario(
        "closing.toml",
        r#"
name = "closing"
duration = "3s"
[oracles]
exclusive = false
liveness = false
[[group]]
name = "g"
users = 1
steps = [
  { repeat = 100000000, steps = [ { send = { type = "ask", n = "{{run}}" } } ] },
]
"#,
    );
    let outcome = run(&s, Some(url), None).await;
    stop.cancel();
    let c = &outcome.results.summary.counters;
    let ends: Vec<String> = c.ended_by.keys().map(ToString::to_string).collect();
    assert_eq!(ends, ["server_close_1000"], "{c:?}");
    assert!(c.messages_received >= 3, "{c:?}");
}

/// A pipelined burst whose answers outnumber the buffer of unclaimed messages (100
/// sends, then the 100 expectations that answer them one at a time, five events each:
/// the answers to the later requests wait among the unclaimed while the first is open,
/// past the bound of 256) is the client's own limit, said as such (exit 8, raise
/// `max_buffered`): it read "VIOLATIONS … hunt for a repro", as only the first few of each
/// connection's hundreds of unmet expectations are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_burst_past_the_buffer_is_the_client_s_limit() {
    let server = common::spawn_reference(None).await;
    let text = format!(
        r#"
name = "pipe"
duration = "30s"
[auth]
secret = {{ value = "{}" }}
[oracles]
learn = false
[[group]]
name = "g"
users = 2
steps = [
  {{ expect = "connection_established", within = "5s" }},
  {{ repeat = 100, steps = [ {{ send = {{ type = "user_message", run_id = "r-{{{{conn}}}}-{{{{run}}}}", thread_id = "t-{{{{user}}}}", content = "x" }} }} ] }},
  {{ repeat = 100, steps = [ {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "10s" }} ] }},
  {{ close = 1000 }},
]
"#,
        common::TEST_SECRET
    );
    let s = scenario("pipe.toml", &text);
    let outcome = run(&s, Some(server.url()), None).await;
    server.shutdown().await;
    let summary = &outcome.results.summary;
    assert!(
        summary.counters.expect.buffer_overflows > 0,
        "{:?}",
        summary.counters
    );
    assert_eq!(
        summary.verdict,
        stampede::model::Verdict::ClientLimited,
        "{:?}",
        summary.hint
    );
    let hint = summary.hint.clone().unwrap_or_default();
    assert!(hint.contains("max_buffered = 256"), "{hint}");
}
