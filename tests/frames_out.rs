//! What a script can put on the wire besides JSON text: binary frames (`send_binary`),
//! Pings with a timed Pong (`ping`), a group's own subprotocols, and a `first_message`
//! ending with the record separator. A loopback fake records what it received.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod common;

use common::{run, scenario, spawn_server};
use futures_util::StreamExt;
use stampede::model::OracleKind;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

/// What one connection offered and sent.
#[derive(Debug, Default, Clone)]
struct Seen {
    offered: String,
    texts: Vec<String>,
    binaries: Vec<Vec<u8>>,
    pings: Vec<Vec<u8>>,
}

/// A fake that selects the first subprotocol offered and records every frame. With
/// `reads = false` it never reads after the upgrade (so it never answers a Ping).
async fn spawn_recorder(
    reads: bool,
) -> (
    String,
    tokio_util::sync::CancellationToken,
    Arc<Mutex<Vec<Seen>>>,
) {
    let all = Arc::new(Mutex::new(Vec::new()));
    let log = all.clone();
    let (url, stop) = spawn_server(move |tcp| {
        let log = log.clone();
        async move {
            let mut seen = Seen::default();
            let callback = |req: &Request, mut resp: Response| {
                seen.offered = req
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if let Some(first) = seen.offered.split(',').next().filter(|p| !p.is_empty()) {
                    resp.headers_mut()
                        .insert("sec-websocket-protocol", first.trim().parse().unwrap());
                }
                Ok(resp)
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                return;
            };
            if !reads {
                // Hold the connection without reading: no Pong goes out. The client gives
                // up on its close handshake after its grace and drops the socket.
                let mut idle = ws.into_inner();
                let mut sink = Vec::new();
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut idle, &mut sink).await;
                return;
            }
            while let Some(Ok(msg)) = ws.next().await {
                match msg {
                    Message::Text(t) => seen.texts.push(t.to_string()),
                    Message::Binary(b) => seen.binaries.push(b.to_vec()),
                    Message::Ping(p) => seen.pings.push(p.to_vec()),
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            log.lock().unwrap().push(seen);
        }
    })
    .await;
    (url, stop, all)
}

const SCENARIO: &str = r#"
name = "frames-out"
seed = 1
duration = "20s"

[auth]
subprotocol = "run-wide"
placement = { first_message = '{"type": "auth", "token": "{{token}}"}' }

[oracles]
record_separator = "\u001e"
liveness = false

[[group]]
name = "binary"
users = 2
subprotocol = ["group-proto", "group-proto-v0"]
steps = [
  { send_binary = "3q2+7w==" },
  { send_binary = "de ad 00 01", encoding = "hex" },
  { ping = "are-you-there", within = "3s" },
  { close = 1000 },
]

[[group]]
name = "plain"
users = 1
steps = [{ ping = "x" }, { ping = "y", within = "3s" }, { close = 1000 }]
"#;

#[tokio::test]
async fn binary_frames_pings_group_subprotocols_and_a_separated_first_message_reach_the_server() {
    let (url, stop, seen) = spawn_recorder(true).await;
    let outcome = run(&scenario("frames.toml", SCENARIO), Some(url), None).await;
    stop.cancel();
    assert!(
        outcome.results.violations.is_empty(),
        "{:#?}",
        outcome.results.violations
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    let (binary, plain): (Vec<&Seen>, Vec<&Seen>) = seen
        .iter()
        .partition(|s| s.offered.starts_with("group-proto"));
    assert_eq!(binary.len(), 2);
    for s in &binary {
        assert_eq!(
            s.offered, "group-proto, group-proto-v0",
            "the group's own, not [auth]'s"
        );
        assert_eq!(
            s.binaries,
            [vec![0xde, 0xad, 0xbe, 0xef], vec![0xde, 0xad, 0x00, 0x01]]
        );
        assert_eq!(s.pings, [b"are-you-there".to_vec()]);
    }
    assert_eq!(plain[0].offered, "run-wide");
    assert_eq!(plain[0].pings, [b"x".to_vec(), b"y".to_vec()]);
    for s in &seen {
        assert_eq!(s.texts.len(), 1, "{s:?}");
        assert!(
            s.texts[0].starts_with(r#"{"type":"auth","token":"ey"#),
            "{s:?}"
        );
        assert!(
            s.texts[0].ends_with("\"}\u{1e}"),
            "the separator ends the first message: {s:?}"
        );
    }
    let summary = &outcome.results.summary;
    assert_eq!(
        summary.phases["pong"].count, 3,
        "each awaited Pong is timed"
    );
    assert_eq!(
        summary.counters.messages_sent,
        4 + 3,
        "binary frames and first messages"
    );
}

#[tokio::test]
async fn a_pong_that_does_not_come_in_time_is_a_violation() {
    let (url, stop, _) = spawn_recorder(false).await;
    let text = r#"
name = "no-pong"
seed = 1
duration = "20s"
[oracles]
liveness = false
[[group]]
name = "g"
users = 1
steps = [{ ping = "hello", within = "300ms" }, { close = 1000 }]
"#;
    let outcome = run(&scenario("no-pong.toml", text), Some(url), None).await;
    stop.cancel();
    let v: Vec<_> = outcome
        .results
        .violations
        .iter()
        .filter(|v| v.oracle == OracleKind::Completeness)
        .collect();
    assert_eq!(v.len(), 1, "{:#?}", outcome.results.violations);
    assert_eq!(v[0].expected, "pong \"hello\" within 300ms");
    assert_eq!(v[0].seen, "no pong");
}

/// `placement = { first_text = "AUTH {{token}}" }`: a protocol of text lines gets its
/// first message as written, the token and the connection's placeholders filled in, not
/// as a JSON string.
#[tokio::test]
async fn a_first_text_is_sent_as_written_with_its_token() {
    let (url, stop, seen) = spawn_recorder(true).await;
    let text = r#"
name = "first-text"
seed = 1
duration = "20s"
[auth]
placement = { first_text = "AUTH {{token}} user-{{user}}" }
[oracles]
liveness = false
[[group]]
name = "g"
users = 2
steps = [{ ping = "x", within = "3s" }, { close = 1000 }]
"#;
    let outcome = run(&scenario("first-text.toml", text), Some(url), None).await;
    stop.cancel();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    let mut users: Vec<&str> = Vec::new();
    for s in &seen {
        assert_eq!(s.texts.len(), 1, "{s:?}");
        let line = &s.texts[0];
        let mut words = line.split(' ');
        assert_eq!(words.next(), Some("AUTH"), "{line}");
        let token = words.next().unwrap_or_default();
        assert!(
            token.starts_with("ey") && token.split('.').count() == 3,
            "{line}"
        );
        users.push(words.next().unwrap_or_default());
        assert_eq!(words.next(), None, "{line}");
    }
    users.sort_unstable();
    assert_eq!(users, ["user-0", "user-1"]);
    assert_eq!(outcome.results.summary.counters.messages_sent, 2);
}
