//! Shared helpers for integration tests: scenario text, runs in process, and a small
//! deliberately wrong golden-path server for oracle tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::result_large_err
)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stampede::run::{RunOptions, RunOutcome};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// The HS256 secret test scenarios and test servers share.
pub const TEST_SECRET: &str = "stampede-test-secret";

/// Every integration run is bounded by this, whatever happens.
pub const TEST_BOUND: Duration = Duration::from_secs(60);

/// The five events the golden-path protocol answers each request with, in order.
pub const GOLDEN_EVENTS: [&str; 5] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
];

/// Loads scenario text as if it were a file named `name`.
pub fn scenario(name: &str, text: &str) -> stampede::model::Scenario {
    match stampede::scenario::load_str(text, name) {
        Ok(s) => s,
        Err(e) => panic!("test scenario {name} does not load:\n{e}"),
    }
}

/// Runs a scenario in process (embedded reference server when `target` is None), bounded.
pub async fn run(
    s: &stampede::model::Scenario,
    target: Option<String>,
    out: Option<&std::path::Path>,
) -> RunOutcome {
    let opts = RunOptions {
        target,
        out: out.map(|p| p.to_path_buf()),
        ..Default::default()
    };
    let fut = stampede::run::run(s, &opts, CancellationToken::new());
    match tokio::time::timeout(TEST_BOUND, fut).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => panic!("run failed: {e}"),
        Err(_) => panic!("run did not finish within {TEST_BOUND:?}"),
    }
}

/// Starts the reference server in process with the test secret.
pub async fn spawn_reference(
    tls: Option<stampede::reference::TlsSetup>,
) -> stampede::reference::ServerHandle {
    let config = stampede::reference::TargetConfig {
        secret: TEST_SECRET.as_bytes().to_vec(),
        tls,
        ..Default::default()
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    stampede::reference::spawn(config, addr, CancellationToken::new())
        .await
        .unwrap()
}

/// A chat scenario: `users` users, each sends `messages` requests expecting the five events.
pub fn chat_scenario(name: &str, users: u32, messages: u32) -> String {
    format!(
        r#"
name = "{name}"
seed = 7
duration = "30s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[oracles]
identity = {{ field = "user_id" }}
sequence = {{ field = "seq" }}

[[group]]
name = "chatters"
users = {users}
arrival = {{ ramp = "200ms" }}
jitter = "uniform(0ms, 5ms)"
steps = [
  {{ expect = "connection_established", within = "5s" }},
  {{ repeat = {messages}, steps = [
    {{ send = {{ type = "user_message", run_id = "run-{{{{conn}}}}-{{{{run}}}}", thread_id = "t-{{{{user}}}}", content = "hi" }} }},
    {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "3s" }},
    {{ think = "fixed(5ms)" }},
  ] }},
  {{ close = 1000 }},
]
"#
    )
}

/// How the fake server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Never sends `tool_completed`.
    DropEvent,
    /// Events carry another user's id.
    WrongUser,
    /// `seq` skips a number.
    SeqGap,
    /// Sends a non-JSON text frame and then a frame over the client's size limit.
    Garbage,
    /// Resets the TCP connection after the first request.
    Reset,
    /// Accepts TCP and then says nothing, not even an answer to the upgrade.
    Silent,
    /// Correct, but every second event of a reply goes out as a binary frame (same JSON,
    /// same `seq` count): records the oracles do not read.
    BinaryHalf,
    /// Correct, but a reply's five events go out together, one frame holding a JSON array.
    BatchArray,
    /// Correct, but every second reply's first three events go out together, one frame
    /// holding a JSON array (with their `seq`s inside), the rest one by one.
    BatchSome,
    /// Never sends `tool_completed` (as [`Fault::DropEvent`]), and a kindless heartbeat
    /// (`{"heartbeat": n}`, binary and text) goes out before every event.
    DropEventWithHeartbeats,
    /// One request behind: a reply's last two events (`tool_completed`,
    /// `agent_completed`) go out only when the next request comes, before its reply; the
    /// last reply's never. Read as slow unless the script waits after its last request.
    LateCompletion,
}

/// A minimal golden-path server that does not check tokens and misbehaves on purpose.
pub async fn spawn_fake(fault: Fault) -> (String, CancellationToken) {
    spawn_server(move |tcp| fake_conn(tcp, fault)).await
}

/// Starts a loopback server; each accepted TCP connection goes to `serve`.
pub async fn spawn_server<F, Fut>(serve: F) -> (String, CancellationToken)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    tokio::spawn(serve(tcp));
                }
            }
        }
    });
    (format!("ws://{addr}/ws"), cancel)
}

/// How a [`spawn_rate_limited`] server sheds the upgrades over its limit.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Upgrades it admits before it sheds.
    pub admits: u32,
    /// How long it sheds, from the first upgrade over the limit, before it admits
    /// `admits` more; `None`: it never admits another.
    pub sheds_for: Option<Duration>,
    /// The whole HTTP answer to a shed upgrade.
    pub answer: &'static str,
}

/// A time-window rate limit's answer: 429 asking for a second's wait.
pub const TOO_MANY: &str = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nslow\n";

/// Overload with no end in sight: 503 naming no wait.
pub const UNAVAILABLE: &str =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbusy\n";

/// The fake golden-path server behind a rate limiter: it admits `limit.admits` upgrades,
/// then answers every upgrade with `limit.answer` until `limit.sheds_for` has passed
/// since the first one it shed, then admits again. The shedding starts at a count, not a
/// clock, so which connection is shed does not depend on how busy the machine is.
pub async fn spawn_rate_limited(limit: RateLimit) -> (String, CancellationToken) {
    use std::sync::{Arc, Mutex};
    // Admitted in this window, and since when it has been shedding.
    let state = Arc::new(Mutex::new((0u32, None::<std::time::Instant>)));
    spawn_server(move |tcp| {
        let admit = {
            let mut st = state.lock().unwrap();
            let over = st.1.is_some_and(|since| {
                limit
                    .sheds_for
                    .is_some_and(|sheds_for| since.elapsed() >= sheds_for)
            });
            if over {
                *st = (0, None);
            }
            if st.1.is_none() && st.0 < limit.admits {
                st.0 += 1;
                true
            } else {
                st.1.get_or_insert_with(std::time::Instant::now);
                false
            }
        };
        async move {
            if admit {
                fake_conn(tcp, Fault::None).await;
            } else {
                refuse_with(tcp, limit.answer).await;
            }
        }
    })
    .await
}

/// Reads the request head, writes `answer`, and ends the connection once the client has
/// read it (bounded: a client that never closes is let go after a second).
pub async fn refuse_with(mut tcp: tokio::net::TcpStream, answer: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    if tcp.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let _ = tcp.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.read_to_end(&mut head)).await;
}

/// Holds a TCP connection open, unread and unanswered, until the client gives up.
pub async fn hold_unanswered(mut tcp: tokio::net::TcpStream) {
    let mut sink = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut sink).await;
}

/// Accepts the upgrade and reads the (unverified) `sub` of its bearer token.
pub async fn accept_with_sub(
    tcp: tokio::net::TcpStream,
) -> Option<(
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    String,
)> {
    let mut sub = String::new();
    let callback =
        |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
         resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
            sub = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .and_then(unverified_sub)
                .unwrap_or_default();
            Ok(resp)
        };
    let ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
        .await
        .ok()?;
    Some((ws, sub))
}

/// Accepts the upgrade when `accept` takes its bearer token (else answers 401); returns the
/// stream and the token.
pub async fn accept_bearer(
    tcp: tokio::net::TcpStream,
    accept: impl Fn(&str) -> bool,
) -> Option<(ServerWs, String)> {
    accept_bearer_unless(tcp, |token| (!accept(token)).then_some(401)).await
}

/// Accepts the upgrade unless `refuse` answers its bearer token with an HTTP status;
/// returns the stream and the token.
pub async fn accept_bearer_unless(
    tcp: tokio::net::TcpStream,
    refuse: impl Fn(&str) -> Option<u16>,
) -> Option<(ServerWs, String)> {
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    let mut token = String::new();
    let callback = |req: &Request, resp: Response| {
        token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string();
        match refuse(&token) {
            None => Ok(resp),
            Some(status) => {
                let mut refusal = ErrorResponse::new(None);
                *refusal.status_mut() = status.try_into().unwrap();
                Err(refusal)
            }
        }
    };
    let ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
        .await
        .ok()?;
    Some((ws, token))
}

/// Serves one TCP connection as the fake golden-path server with `fault`.
pub async fn fake_conn(tcp: tokio::net::TcpStream, fault: Fault) {
    if fault == Fault::Silent {
        return hold_unanswered(tcp).await;
    }
    let Some((ws, sub)) = accept_with_sub(tcp).await else {
        return;
    };
    serve_fake(ws, sub, fault).await;
}

/// Serves an accepted connection of user `sub` as the fake golden-path server with
/// `fault`: for servers that decide the upgrade themselves.
pub async fn serve_fake(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    sub: String,
    fault: Fault,
) {
    let user = if fault == Fault::WrongUser {
        "someone-else".to_string()
    } else {
        sub.clone()
    };
    let mut seq = 0u64;
    let mut replies = 0u64;
    // A reply's events held back until the next request ([`Fault::LateCompletion`]).
    let mut withheld: Vec<String> = Vec::new();
    let hello = json!({"type": "connection_established", "user_id": sub, "connection_id": "c"});
    if ws
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        let Ok(req) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if fault == Fault::Reset {
            let tcp = ws.get_ref();
            let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
            return;
        }
        if fault == Fault::Garbage {
            let _ = ws.send(Message::Text("this is not json".into())).await;
            let _ = ws.send(Message::Text("x".repeat(2 << 20).into())).await;
            continue;
        }
        let run_id = req.get("run_id").cloned().unwrap_or(Value::Null);
        for held in std::mem::take(&mut withheld) {
            if ws.send(Message::Text(held.into())).await.is_err() {
                return;
            }
        }
        let mut batch = Vec::new();
        replies += 1;
        for ty in GOLDEN_EVENTS {
            if fault == Fault::DropEventWithHeartbeats {
                let beat = json!({"heartbeat": seq}).to_string();
                let _ = ws.send(Message::Text(beat.clone().into())).await;
                let _ = ws.send(Message::Binary(beat.into_bytes().into())).await;
            }
            if matches!(fault, Fault::DropEvent | Fault::DropEventWithHeartbeats)
                && ty == "tool_completed"
            {
                continue;
            }
            seq += if fault == Fault::SeqGap && ty == "tool_executing" {
                2
            } else {
                1
            };
            let event = json!({"type": ty, "run_id": run_id, "user_id": user, "seq": seq});
            if fault == Fault::LateCompletion && matches!(ty, "tool_completed" | "agent_completed")
            {
                withheld.push(event.to_string());
                continue;
            }
            let frame = match fault {
                Fault::BatchArray => {
                    batch.push(event);
                    continue;
                }
                Fault::BatchSome
                    if replies.is_multiple_of(2)
                        && ty != "tool_completed"
                        && ty != "agent_completed" =>
                {
                    batch.push(event);
                    if batch.len() == 3 {
                        let array = Value::Array(std::mem::take(&mut batch)).to_string();
                        if ws.send(Message::Text(array.into())).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                Fault::BinaryHalf if seq.is_multiple_of(2) => {
                    Message::Binary(event.to_string().into())
                }
                _ => Message::Text(event.to_string().into()),
            };
            if ws.send(frame).await.is_err() {
                return;
            }
        }
        if !batch.is_empty() {
            let frame = Value::Array(batch).to_string();
            if ws.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
        }
    }
}

/// The `sub` claim of a JWT, read without checking the signature (the fake trusts anyone).
pub fn unverified_sub(jwt: &str) -> Option<String> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_string)
}

/// A child `stampede` run that a test interrupts with a real SIGINT.
pub struct Interrupted {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// From the signal to the child's exit.
    pub after: Duration,
}

/// Sends `child` a real SIGINT, as Ctrl-C in a terminal would.
pub fn sigint(child: &tokio::process::Child) {
    signal(child, "INT");
}

/// Sends `child` the real signal `name` (`INT`, `TERM`) with `kill`.
pub fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().expect("the child is running").to_string();
    let signalled = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .expect("kill runs");
    assert!(signalled.success());
}

/// Runs `stampede ARGS`, sends it SIGINT once its stderr has printed a line `reached`
/// accepts (the phase to interrupt is under way; bounded by [`TEST_BOUND`]), and waits,
/// bounded, for it to end.
pub async fn interrupt_when(args: &[&str], reached: impl Fn(&str) -> bool) -> Interrupted {
    interrupt_n_when(args, reached, 1).await
}

/// [`interrupt_when`] with `signals` SIGINTs sent back to back (as `timeout -s INT` does:
/// the process, then its group).
pub async fn interrupt_n_when(
    args: &[&str],
    reached: impl Fn(&str) -> bool,
    signals: usize,
) -> Interrupted {
    signal_n_when(args, reached, "INT", signals).await
}

/// [`interrupt_n_when`] with the signal `name` (`INT`, `TERM`) instead of SIGINT.
pub async fn signal_n_when(
    args: &[&str],
    reached: impl Fn(&str) -> bool,
    name: &str,
    signals: usize,
) -> Interrupted {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    // Read stdout all along, so a full pipe never holds the child.
    let stdout = tokio::spawn(async move {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = String::new();
    let seen = tokio::time::timeout(TEST_BOUND, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            stderr.push_str(&line);
            stderr.push('\n');
            if reached(&line) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(seen, Ok(true)),
        "never reached the phase to interrupt:\n{stderr}"
    );
    for _ in 0..signals {
        signal(&child, name);
    }
    let at = tokio::time::Instant::now();
    let rest = read_on(lines);
    let status = tokio::time::timeout(TEST_BOUND, child.wait())
        .await
        .expect("it ends after the signal")
        .unwrap();
    let after = at.elapsed();
    stderr.push_str(
        &tokio::time::timeout(TEST_BOUND, rest)
            .await
            .unwrap()
            .unwrap(),
    );
    Interrupted {
        code: status.code(),
        stdout: tokio::time::timeout(TEST_BOUND, stdout)
            .await
            .unwrap()
            .unwrap(),
        stderr,
        after,
    }
}

/// Answers one golden-path request with the five events of its run (`run_id` as the
/// request's, `user_id` = `user`).
pub async fn answer_five(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    request: &str,
    user: &str,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let request: Value = serde_json::from_str(request).unwrap_or(Value::Null);
    let run_id = request.get("run_id").cloned().unwrap_or(Value::Null);
    for ty in GOLDEN_EVENTS {
        let event = json!({"type": ty, "run_id": run_id, "user_id": user});
        ws.send(Message::Text(event.to_string().into())).await?;
    }
    Ok(())
}

/// Serves an accepted golden-path connection of `user`: greets it, answers each request
/// with the five events until `close_at`, then closes it with `frame` and reads on until
/// the client answers the Close. Returns early when the client goes.
pub async fn serve_until_close(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    user: &str,
    close_at: tokio::time::Instant,
    frame: tokio_tungstenite::tungstenite::protocol::CloseFrame,
) {
    let hello = json!({"type": "connection_established", "user_id": user});
    if ws
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(close_at) => break,
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if answer_five(&mut ws, text.as_str(), user).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
    let _ = ws.send(Message::Close(Some(frame))).await;
    while let Some(Ok(_)) = ws.next().await {}
}

/// Hunts `s` (seed 1) against the server at `url` within `budget`, confirming a find
/// `confirm` times, bounded by [`TEST_BOUND`]: the outcome, and the names of the files it
/// wrote (repros) in its output folder, gone with it.
pub async fn hunt_at(
    s: &stampede::model::Scenario,
    url: &str,
    budget: Duration,
    confirm: u32,
) -> (stampede::hunt::HuntOutcome, Vec<String>) {
    let plan = stampede::plan::build(s, 1);
    let dir = tempfile::tempdir().unwrap();
    let hunted = tokio::time::timeout(TEST_BOUND, async {
        let runner = url_runner(&plan, url).await;
        let opts = stampede::hunt::HuntOptions {
            budget,
            seed: 1,
            out: dir.path().to_path_buf(),
            confirm,
        };
        stampede::hunt::hunt(s, &runner, &opts, &mut |_| {})
            .await
            .unwrap()
    })
    .await
    .expect("the hunt ends within the bound");
    let written = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    (hunted, written)
}

/// A hunt runner for `plan` against the server at `url`, with default options and a
/// token of its own.
pub async fn url_runner(plan: &stampede::model::Plan, url: &str) -> stampede::hunt::Runner {
    stampede::hunt::Runner::start(
        &stampede::run::Target::Url(url.to_string()),
        plan,
        RunOptions::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// A test server's WebSocket stream.
pub type ServerWs = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Greets a connection as the golden-path server does (`connection_established`, its
/// `user_id` the token's `sub`); `false` when the client is gone.
pub async fn greet(ws: &mut ServerWs, user: &str) -> bool {
    let hello = json!({"type": "connection_established", "user_id": user});
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .is_ok()
}

/// Sends a Close with `code` and `reason`, then reads until the client answers it.
pub async fn close_and_drain(ws: &mut ServerWs, code: u16, reason: &'static str) {
    use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = ws.send(Message::Close(Some(frame))).await;
    while let Some(Ok(_)) = ws.next().await {}
}

/// Accepts any bearer token's upgrade and greets the connection ([`greet`]): the stream
/// and the token's `sub`, or `None` when the client went away.
pub async fn accept_greeted(tcp: tokio::net::TcpStream) -> Option<(ServerWs, String)> {
    let (mut ws, token) = accept_bearer(tcp, |_| true).await?;
    let user = unverified_sub(&token).unwrap_or_default();
    greet(&mut ws, &user).await.then_some((ws, user))
}

/// A server that upgrades, sends `greeting` (a well-formed text frame) when given, then
/// these bytes as they are, and holds the socket until the client is done with it.
pub async fn spawn_faulty(
    greeting: Option<&'static str>,
    bytes: Vec<u8>,
) -> (String, CancellationToken) {
    let bytes = std::sync::Arc::new(bytes);
    spawn_server(move |tcp| {
        let bytes = bytes.clone();
        async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            if let Some(text) = greeting {
                if ws.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            let tcp = ws.get_mut();
            if tokio::io::AsyncWriteExt::write_all(tcp, &bytes)
                .await
                .is_err()
            {
                return;
            }
            let mut sink = [0u8; 256];
            while matches!(tokio::io::AsyncReadExt::read(tcp, &mut sink).await, Ok(n) if n > 0) {}
        }
    })
    .await
}

/// The rest of a child's stderr `lines`, read on as the child writes them (its stderr
/// stays a pipe somebody reads, so a full pipe never holds it) until it closes.
pub fn read_on(
    mut lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut rest = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    })
}
