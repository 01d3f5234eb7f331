//! The reference server, in process on 127.0.0.1:0, driven by a raw
//! tokio-tungstenite client. Every test is bounded by a timeout; waits are on
//! frames or on the server's counters (`wait_for`), never on sleeps.

// Helpers outside `#[test]` fns panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use stampede::reference::{self, Bug, ServerHandle, TargetConfig, TlsSetup};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

const SECRET: &[u8] = b"test-secret";
const LIMIT: Duration = Duration::from_secs(20);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn bounded<F: Future>(test: F) -> F::Output {
    timeout(LIMIT, test).await.expect("test timed out")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(claims: &Value, secret: &[u8], alg: Algorithm) -> String {
    encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn token(sub: &str, jti: &str) -> String {
    let claims = json!({"sub": sub, "jti": jti, "iat": now(), "exp": now() + 600});
    sign(&claims, SECRET, Algorithm::HS256)
}

fn config() -> TargetConfig {
    TargetConfig {
        secret: SECRET.to_vec(),
        event_delay: Duration::from_millis(1),
        ..TargetConfig::default()
    }
}

fn buggy(bug: Bug, window_ms: u64) -> TargetConfig {
    TargetConfig {
        bug: Some(bug),
        bug_window: Duration::from_millis(window_ms),
        ..config()
    }
}

async fn start(config: TargetConfig) -> ServerHandle {
    let addr = "127.0.0.1:0".parse().unwrap();
    reference::spawn(config, addr, CancellationToken::new())
        .await
        .unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Placement {
    Header,
    Subprotocol,
    Query,
}

const PLACEMENTS: [Placement; 3] = [Placement::Header, Placement::Subprotocol, Placement::Query];

async fn connect_with(
    server: &ServerHandle,
    token: &str,
    placement: Placement,
) -> Result<Ws, WsError> {
    let url = match placement {
        Placement::Query => format!("{}?token={token}", server.url()),
        _ => server.url(),
    };
    let mut request = url.into_client_request()?;
    let (name, value) = match placement {
        Placement::Header => ("authorization", format!("Bearer {token}")),
        Placement::Subprotocol => ("sec-websocket-protocol", format!("jwt-auth, jwt.{token}")),
        Placement::Query => return connect_async(request).await.map(|(ws, _)| ws),
    };
    request
        .headers_mut()
        .insert(name, HeaderValue::from_str(&value).unwrap());
    connect_async(request).await.map(|(ws, _)| ws)
}

async fn connect(server: &ServerHandle, token: &str) -> Result<Ws, WsError> {
    connect_with(server, token, Placement::Header).await
}

/// The HTTP status of a refused upgrade, with its body.
fn refusal(result: &Result<Ws, WsError>) -> Option<(u16, String)> {
    match result {
        Err(WsError::Http(response)) => Some((
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        _ => None,
    }
}

/// The next JSON frame; panics on Close or end of stream.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }
}

async fn send_json(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

fn user_message(run_id: &str) -> Value {
    json!({"type": "user_message", "run_id": run_id, "thread_id": "t1", "content": "hello"})
}

/// Reads frames until `runs` `agent_completed` events have arrived.
async fn read_until_completed(ws: &mut Ws, runs: usize) -> Vec<Value> {
    let mut frames = Vec::new();
    let mut completed = 0;
    while completed < runs {
        let frame = next_json(ws).await;
        completed += usize::from(frame["type"] == "agent_completed");
        frames.push(frame);
    }
    frames
}

/// Closes cleanly and waits for the server's Close and the end of the stream.
async fn close(mut ws: Ws) {
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

fn types_of(frames: &[Value], run_id: &str) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["run_id"] == run_id)
        .map(|f| f["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_placement_is_accepted_with_the_token_user() {
    bounded(async {
        let server = start(config()).await;
        for (i, placement) in PLACEMENTS.into_iter().enumerate() {
            let user = format!("user-{i}");
            let mut ws = connect_with(&server, &token(&user, &format!("j{i}")), placement)
                .await
                .unwrap_or_else(|e| panic!("{placement:?}: {e}"));
            let hello = next_json(&mut ws).await;
            assert_eq!(hello["type"], "connection_established", "{placement:?}");
            assert_eq!(hello["user_id"], user.as_str());
            assert!(hello["connection_id"].is_string());
            assert_eq!(hello["seq"], 0);
        }
        assert_eq!(server.stats().accepted, 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_stream_the_full_sequence_with_gap_free_seq() {
    bounded(async {
        let server = start(TargetConfig {
            thinking_events: 3,
            ..config()
        })
        .await;
        let mut ws = connect(&server, &token("alice", "j1")).await.unwrap();
        send_json(&mut ws, user_message("r1")).await;
        send_json(&mut ws, user_message("r2")).await;
        let hello = next_json(&mut ws).await;
        let mut frames = vec![hello];
        frames.extend(read_until_completed(&mut ws, 2).await);
        let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (0..frames.len() as u64).collect::<Vec<_>>());
        let expected = [
            "agent_started",
            "agent_thinking",
            "agent_thinking",
            "agent_thinking",
            "tool_executing",
            "tool_completed",
            "agent_completed",
        ];
        for run in ["r1", "r2"] {
            assert_eq!(types_of(&frames, run), expected, "{run}");
        }
        for event in &frames[1..] {
            assert_eq!(event["user_id"], "alice");
            assert_eq!(event["thread_id"], "t1");
        }
        let done = frames
            .iter()
            .find(|f| f["type"] == "agent_completed")
            .unwrap();
        assert!(done["result"].is_string());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_401() {
    bounded(async {
        let server = start(config()).await;
        let t = now();
        let bad = [
            ("garbage", "not-a-jwt".to_owned()),
            ("two segments", "abc.def".to_owned()),
            (
                "expired",
                sign(
                    &json!({"sub": "u", "jti": "a", "exp": t - 10}),
                    SECRET,
                    Algorithm::HS256,
                ),
            ),
            (
                "exp now",
                sign(
                    &json!({"sub": "u", "jti": "b", "exp": t}),
                    SECRET,
                    Algorithm::HS256,
                ),
            ),
            (
                "future nbf",
                sign(
                    &json!({"sub": "u", "jti": "c", "exp": t + 600, "nbf": t + 300}),
                    SECRET,
                    Algorithm::HS256,
                ),
            ),
            (
                "wrong secret",
                sign(
                    &json!({"sub": "u", "jti": "d", "exp": t + 600}),
                    b"other",
                    Algorithm::HS256,
                ),
            ),
            (
                "HS384 with another secret",
                sign(
                    &json!({"sub": "u", "jti": "e", "exp": t + 600}),
                    b"other",
                    Algorithm::HS384,
                ),
            ),
            (
                "missing jti",
                sign(
                    &json!({"sub": "u", "exp": t + 600}),
                    SECRET,
                    Algorithm::HS256,
                ),
            ),
            (
                "empty sub",
                sign(
                    &json!({"sub": "", "jti": "f", "exp": t + 600}),
                    SECRET,
                    Algorithm::HS256,
                ),
            ),
            (
                "missing exp",
                sign(&json!({"sub": "u", "jti": "g"}), SECRET, Algorithm::HS256),
            ),
            (
                "string exp",
                sign(
                    &json!({"sub": "u", "jti": "h", "exp": "never"}),
                    SECRET,
                    Algorithm::HS256,
                ),
            ),
        ];
        for (label, bad_token) in &bad {
            for placement in PLACEMENTS {
                let result = connect_with(&server, bad_token, placement).await;
                let (status, _) =
                    refusal(&result).unwrap_or_else(|| panic!("{label}: not refused"));
                assert_eq!(status, 401, "{label} via {placement:?}");
            }
        }
        let missing = connect_async(server.url()).await.map(|(ws, _)| ws);
        assert_eq!(refusal(&missing).map(|r| r.0), Some(401));
        let wrong_path = server.url().replace("/ws", "/other");
        let mut request = wrong_path.into_client_request().unwrap();
        let auth = HeaderValue::from_str(&format!("Bearer {}", token("u", "z"))).unwrap();
        request.headers_mut().insert("authorization", auth);
        let result = connect_async(request).await.map(|(ws, _)| ws);
        assert_eq!(refusal(&result).map(|r| r.0), Some(404));
        let stats = server.stats();
        assert_eq!(stats.rejected_unauthorized, bad.len() as u64 * 3 + 1);
        assert_eq!(stats.accepted, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_jti_is_refused_while_live_and_reusable_after_close() {
    bounded(async {
        let server = start(config()).await;
        let shared = token("alice", "one-session");
        let first = connect(&server, &shared).await.unwrap();
        for placement in PLACEMENTS {
            let second = connect_with(&server, &shared, placement).await;
            assert_eq!(refusal(&second), Some((409, "token_in_use".to_owned())));
        }
        close(first).await;
        let mut again = connect(&server, &shared)
            .await
            .expect("reconnect after close");
        assert_eq!(
            next_json(&mut again).await["type"],
            "connection_established"
        );
        assert_eq!(server.stats().rejected_in_use, 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn synchronized_burst_of_one_token_admits_exactly_one() {
    bounded(async {
        let server = Arc::new(start(config()).await);
        let shared = token("alice", "burst");
        let barrier = Arc::new(Barrier::new(20));
        let attempts: Vec<_> = (0..20)
            .map(|i| {
                let (server, barrier, shared) = (server.clone(), barrier.clone(), shared.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    connect_with(&server, &shared, PLACEMENTS[i % 3]).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for attempt in attempts {
            results.push(attempt.await.unwrap());
        }
        let accepted = results.iter().filter(|r| r.is_ok()).count();
        let in_use = results
            .iter()
            .filter(|r| refusal(r).is_some_and(|(s, _)| s == 409))
            .count();
        assert_eq!((accepted, in_use), (1, 19));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_sent_right_after_the_upgrade_is_answered() {
    bounded(async {
        let server = start(config()).await;
        let mut ws = connect(&server, &token("alice", "early")).await.unwrap();
        send_json(&mut ws, user_message("r-early")).await;
        let frames = read_until_completed(&mut ws, 1).await;
        assert_eq!(frames[0]["type"], "connection_established");
        assert_eq!(
            types_of(&frames, "r-early").last().unwrap(),
            "agent_completed"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_gets_queue_overflow_then_1013() {
    bounded(async {
        let server = start(TargetConfig {
            event_delay: Duration::ZERO,
            thinking_events: 1000,
            queue_capacity: 8,
            ..config()
        })
        .await;
        let mut ws = connect(&server, &token("alice", "slow")).await.unwrap();
        for i in 0..200 {
            send_json(&mut ws, user_message(&format!("r{i}"))).await;
        }
        server.wait_for(|s| s.overflows >= 1).await;
        let mut expected_seq = 0;
        let close = loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(frame["seq"], expected_seq, "seq must have no gap");
                    expected_seq += 1;
                    if frame["type"] == "error" {
                        assert_eq!(frame["code"], "queue_overflow");
                        assert_eq!(frame["run_id"], Value::Null);
                    }
                }
                Some(Ok(Message::Close(frame))) => break frame,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(close.unwrap().code, CloseCode::Again);
        // Reading on sends our Close reply, completing the handshake.
        while let Some(Ok(_)) = ws.next().await {}
        server.wait_for(|s| s.live == 0 && s.registered == 0).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_messages_get_an_error_event() {
    bounded(async {
        let server = start(config()).await;
        let mut ws = connect(&server, &token("alice", "invalid")).await.unwrap();
        next_json(&mut ws).await;
        ws.send(Message::text("not json")).await.unwrap();
        ws.send(Message::text(r#"{"type":"bogus","run_id":"r7"}"#))
            .await
            .unwrap();
        ws.send(Message::text(r#"{"type":"user_message"}"#))
            .await
            .unwrap();
        ws.send(Message::binary(vec![0xff, 0x00])).await.unwrap();
        let expected_run_ids = [Value::Null, json!("r7"), Value::Null, Value::Null];
        for expected in expected_run_ids {
            let error = next_json(&mut ws).await;
            assert_eq!(
                (error["type"].clone(), error["code"].clone()),
                (json!("error"), json!("invalid_message"))
            );
            assert_eq!(error["run_id"], expected);
        }
        send_json(&mut ws, user_message("r-after")).await;
        let frames = read_until_completed(&mut ws, 1).await;
        assert_eq!(types_of(&frames, "r-after").len(), 6);
    })
    .await;
}

fn client_tls(ca_pem: &str) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn wss_hello(server: &ServerHandle, ca_pem: &str) -> Value {
    assert!(server.url().starts_with("wss://localhost:"));
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = client_tls(ca_pem).connect(name, tcp).await.unwrap();
    let mut request = server.url().into_client_request().unwrap();
    let auth = HeaderValue::from_str(&format!("Bearer {}", token("tls-user", "tls"))).unwrap();
    request.headers_mut().insert("authorization", auth);
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    match ws.next().await {
        Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected connection_established, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_a_self_signed_certificate() {
    bounded(async {
        let server = start(TargetConfig {
            tls: Some(TlsSetup::SelfSigned),
            ..config()
        })
        .await;
        let ca = server.ca_pem().unwrap().to_owned();
        let hello = wss_hello(&server, &ca).await;
        assert_eq!(hello["user_id"], "tls-user");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_pem_files() {
    bounded(async {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, generated.cert.pem()).unwrap();
        std::fs::write(&key_path, generated.signing_key.serialize_pem()).unwrap();
        let tls = TlsSetup::Pem {
            cert_path,
            key_path,
        };
        let server = start(TargetConfig {
            tls: Some(tls),
            ..config()
        })
        .await;
        assert!(server.ca_pem().is_none());
        let hello = wss_hello(&server, &generated.cert.pem()).await;
        assert_eq!(hello["type"], "connection_established");
        let missing = TlsSetup::Pem {
            cert_path: dir.path().join("nope.pem"),
            key_path: dir.path().join("nope.key"),
        };
        let addr = "127.0.0.1:0".parse().unwrap();
        let config = TargetConfig {
            tls: Some(missing),
            ..config()
        };
        assert!(reference::spawn(config, addr, CancellationToken::new())
            .await
            .is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_closes_connections_with_1001() {
    bounded(async {
        let cancel = CancellationToken::new();
        let addr = "127.0.0.1:0".parse().unwrap();
        let server = reference::spawn(config(), addr, cancel.clone())
            .await
            .unwrap();
        let mut ws = connect(&server, &token("alice", "bye")).await.unwrap();
        next_json(&mut ws).await;
        cancel.cancel();
        let close = loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => {}
                other => panic!("expected Close, got {other:?}"),
            }
        };
        assert_eq!(close.unwrap().code, CloseCode::Away);
        while let Some(Ok(_)) = ws.next().await {}
        server.wait().await.unwrap();
    })
    .await;
}

// ---- planted bugs: each reachable on purpose, absent on the correct server ----

/// Two upgrades with one token, released together; returns how many were accepted.
async fn same_token_pair(server: &ServerHandle) -> usize {
    let shared = token("alice", "pair");
    let (a, b) = tokio::join!(connect(server, &shared), connect(server, &shared));
    usize::from(a.is_ok()) + usize::from(b.is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_token_check_then_act_admits_both() {
    bounded(async {
        let server = start(buggy(Bug::TokenCheckThenAct, 300)).await;
        assert_eq!(same_token_pair(&server).await, 2);
        let correct = start(config()).await;
        assert_eq!(same_token_pair(&correct).await, 1);
    })
    .await;
}

/// Two users upgrading together; returns the user_id each connection was given.
async fn interleaved_identities(server: &ServerHandle) -> [(String, Value); 2] {
    let (alice, bob) = (token("alice", "ja"), token("bob", "jb"));
    let (a, b) = tokio::join!(connect(server, &alice), connect(server, &bob));
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    let (hello_a, hello_b) = (next_json(&mut a).await, next_json(&mut b).await);
    [
        ("alice".to_owned(), hello_a["user_id"].clone()),
        ("bob".to_owned(), hello_b["user_id"].clone()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_identity_swap_gives_a_user_another_identity() {
    bounded(async {
        let server = start(buggy(Bug::IdentitySwap, 300)).await;
        let seen = interleaved_identities(&server).await;
        assert!(
            seen.iter().any(|(user, got)| got != user.as_str()),
            "{seen:?}"
        );
        let correct = start(config()).await;
        let seen = interleaved_identities(&correct).await;
        assert!(
            seen.iter().all(|(user, got)| got == user.as_str()),
            "{seen:?}"
        );
    })
    .await;
}

/// Sends r1 before the ack and r2 after it; returns the frames up to r2's end.
async fn message_before_ack(server: &ServerHandle) -> Vec<Value> {
    let mut ws = connect(server, &token("alice", "ack")).await.unwrap();
    send_json(&mut ws, user_message("r1")).await;
    let mut frames = Vec::new();
    loop {
        let frame = next_json(&mut ws).await;
        let established = frame["type"] == "connection_established";
        frames.push(frame);
        if established {
            break;
        }
    }
    send_json(&mut ws, user_message("r2")).await;
    loop {
        let frame = next_json(&mut ws).await;
        let done = frame["type"] == "agent_completed" && frame["run_id"] == "r2";
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_early_message_drop_loses_a_message_sent_before_the_ack() {
    bounded(async {
        let server = start(buggy(Bug::EarlyMessageDrop, 300)).await;
        let frames = message_before_ack(&server).await;
        assert!(types_of(&frames, "r1").is_empty());
        let stats = server.stats();
        assert_eq!((stats.messages_received, stats.runs_started), (2, 1));
        let correct = start(config()).await;
        message_before_ack(&correct).await;
        assert_eq!(correct.stats().runs_started, 2);
    })
    .await;
}

/// Ten runs started at once on one connection; returns how many tool_completed arrived.
async fn tool_completed_in_burst(server: &ServerHandle) -> usize {
    let mut ws = connect(server, &token("alice", "burst-runs"))
        .await
        .unwrap();
    for i in 0..10 {
        send_json(&mut ws, user_message(&format!("r{i}"))).await;
    }
    let frames = read_until_completed(&mut ws, 10).await;
    frames
        .iter()
        .filter(|f| f["type"] == "tool_completed")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_burst_event_loss_skips_tool_completed() {
    bounded(async {
        let server = start(buggy(Bug::BurstEventLoss, 2000)).await;
        assert!(tool_completed_in_burst(&server).await < 10);
        let correct = start(config()).await;
        assert_eq!(tool_completed_in_burst(&correct).await, 10);
    })
    .await;
}

/// Closes a session cleanly and reconnects at once with the same token.
async fn fast_reconnect(server: &ServerHandle) -> Result<Ws, WsError> {
    let shared = token("alice", "again");
    close(connect(server, &shared).await.unwrap()).await;
    connect(server, &shared).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_reconnect_lag_refuses_a_fast_reconnect() {
    bounded(async {
        let server = start(buggy(Bug::ReconnectLag, 2000)).await;
        assert_eq!(
            refusal(&fast_reconnect(&server).await).map(|r| r.0),
            Some(409)
        );
        let correct = start(config()).await;
        assert!(fast_reconnect(&correct).await.is_ok());
    })
    .await;
}

/// Sends an upgrade request, waits until the server has registered the token,
/// then resets the connection before reading the 101.
async fn abort_mid_upgrade(server: &ServerHandle, token: &str) {
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n",
        server.addr()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    server.wait_for(|s| s.registered >= 1).await;
    tcp.set_zero_linger().unwrap();
    drop(tcp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_abort_leak_keeps_the_token_busy_forever() {
    bounded(async {
        let leaked = token("alice", "aborted");
        let server = start(buggy(Bug::AbortLeak, 300)).await;
        abort_mid_upgrade(&server, &leaked).await;
        server.wait_for(|s| s.handshake_failures >= 1).await;
        assert_eq!(server.stats().registered, 1);
        assert_eq!(
            refusal(&connect(&server, &leaked).await).map(|r| r.0),
            Some(409)
        );

        let correct = start(config()).await;
        abort_mid_upgrade(&correct, &leaked).await;
        correct.wait_for(|s| s.registered == 0).await;
        assert!(connect(&correct, &leaked).await.is_ok());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_malformed_token_closes_with_1011() {
    bounded(async {
        let server = start(buggy(Bug::MalformedToken1011, 5)).await;
        let mut ws = connect(&server, "not-a-jwt")
            .await
            .expect("upgrade let through");
        match ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Error),
            other => panic!("expected Close 1011, got {other:?}"),
        }
        let correct = start(config()).await;
        let refused = connect(&correct, "not-a-jwt").await;
        assert_eq!(refusal(&refused).map(|r| r.0), Some(401));
    })
    .await;
}

#[test]
fn every_bug_has_a_name_and_a_line() {
    for bug in Bug::ALL {
        assert_eq!(bug.name().parse::<Bug>().unwrap(), bug);
        assert!(!bug.describe().is_empty());
    }
}

/// Port 0 binds below the kernel's ephemeral range, so a restart on the same port cannot
/// find it taken as some client's source port; and the restarted server serves there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_zero_stays_out_of_the_ephemeral_range_and_restart_serves_on_it() {
    bounded(async {
        let ephemeral_from: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .unwrap_or(32_768);
        let server = start(config()).await;
        if ephemeral_from > 20_000 {
            assert!(
                server.addr().port() < ephemeral_from,
                "port {} is in the ephemeral range from {ephemeral_from}",
                server.addr().port()
            );
        }
        assert!(connect(&server, &token("u-1", "j-1")).await.is_ok());
        server.restart().await.unwrap();
        assert!(connect(&server, &token("u-2", "j-2")).await.is_ok());
    })
    .await;
}
