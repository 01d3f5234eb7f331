#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Hostile servers: in-process fakes on loopback that never let a WebSocket through, a
//! server with another secret, a plan cut by its duration. Each must give its own verdict
//! (never "clean"), the exit code of that verdict, and a hint; a hunt against them stops
//! and writes no repro.

mod common;

use common::{scenario, spawn_reference, TEST_BOUND, TEST_SECRET};
use stampede::cli::error::{exit, of_run};
use stampede::hunt::{self, HuntOptions};
use stampede::model::{Cause, Verdict};
use stampede::run::{RunOptions, RunOutcome};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Four users whose handshakes must finish within 400 ms; each expects its greeting.
fn small(name: &str, secret: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = 3
duration = "5s"

[auth]
secret = {{ value = "{secret}" }}

[limits]
handshake_timeout = "400ms"

[[group]]
name = "g"
users = 4
arrival = {{ ramp = "20ms" }}
steps = [{{ expect = "connection_established", within = "1s" }}, {{ close = 1000 }}]
"#
    )
}

async fn run_at(url: &str, text: &str, tls: stampede::swarm::TlsOptions) -> RunOutcome {
    let opts = RunOptions {
        target: Some(url.to_string()),
        tls,
        ..Default::default()
    };
    run_with(text, &opts).await
}

/// Runs scenario `text` with `opts`, bounded by [`TEST_BOUND`].
async fn run_with(text: &str, opts: &RunOptions) -> RunOutcome {
    let s = scenario("hostile.toml", text);
    let fut = stampede::run::run(&s, opts, CancellationToken::new());
    tokio::time::timeout(TEST_BOUND, fut)
        .await
        .expect("bounded")
        .expect("the run itself works")
}

/// What a raw fake answers an upgrade request with.
#[derive(Debug, Clone, Copy)]
enum Raw {
    Http404,
    Http200,
    Garbage,
    WrongAccept,
    UnofferedSubprotocol,
    /// A correct 101 that selects no subprotocol, whatever was offered.
    NoSubprotocol,
    EndlessHeaders,
    ResetMid101,
    Silence,
    Trickled101,
}

/// A TCP server that answers every upgrade the `Raw` way; stops with the token.
async fn spawn_raw(raw: Raw) -> (String, CancellationToken) {
    spawn_raw_by(move |_| raw).await
}

/// A raw fake whose `n`-th connection (from 0) gets `answer_of(n)`.
async fn spawn_raw_by(
    answer_of: impl Fn(usize) -> Raw + Send + Sync + 'static,
) -> (String, CancellationToken) {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        for n in 0.. {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else { break };
            let cancel = cancel.clone();
            let raw = answer_of(n);
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = answer(stream, raw) => {}
                }
            });
        }
    });
    (url, stop)
}

/// Reads the request head (bounded) and returns its `Sec-WebSocket-Key`.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&head)
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default()
}

fn accept_header(key: &str) -> String {
    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes())
}

fn switching(accept: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
}

async fn answer(mut stream: TcpStream, raw: Raw) {
    let key = read_head(&mut stream).await;
    let tick = Duration::from_millis(50);
    let _ = match raw {
        Raw::Http404 => {
            let body = "<html><body>no such page</body></html>";
            let text = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(text.as_bytes()).await
        }
        Raw::Http200 => {
            let text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
            stream.write_all(text.as_bytes()).await
        }
        Raw::Garbage => stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await,
        Raw::WrongAccept => {
            let text = switching("bm90IHRoZSByaWdodCBrZXk=", "");
            stream.write_all(text.as_bytes()).await
        }
        Raw::UnofferedSubprotocol => {
            let text = switching(
                &accept_header(&key),
                "Sec-WebSocket-Protocol: graphql-ws\r\n",
            );
            stream.write_all(text.as_bytes()).await
        }
        Raw::NoSubprotocol => {
            let text = switching(&accept_header(&key), "");
            stream.write_all(text.as_bytes()).await
        }
        Raw::EndlessHeaders => {
            let _ = stream
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\n")
                .await;
            loop {
                if stream.write_all(b"X-Pad: aaaaaaaa\r\n").await.is_err() {
                    break Ok(());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Raw::ResetMid101 => {
            let _ = stream.write_all(b"HTTP/1.1 101 Swit").await;
            // SO_LINGER 0: the close sends an RST instead of a FIN.
            let socket = socket2::SockRef::from(&stream);
            let _ = socket.set_linger(Some(Duration::ZERO));
            drop(stream);
            return;
        }
        Raw::Silence => {
            // Hold the socket open, answering nothing, until the client gives up.
            let mut buf = [0u8; 64];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            Ok(())
        }
        Raw::Trickled101 => {
            for byte in switching(&accept_header(&key), "").bytes() {
                if stream.write_all(&[byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(tick).await;
            }
            Ok(())
        }
    };
    // Keep the socket until the client closes it (a fake never hangs the client).
    let mut buf = [0u8; 64];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

fn assert_unusable(outcome: &RunOutcome, why: &str, cause: &str) {
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::TargetUnusable, "{why}: {:?}", s.hint);
    assert_eq!(of_run(s), exit::TARGET_UNUSABLE, "{why}");
    assert_eq!(s.counters.accepted, 0, "{why}");
    let hint = s.hint.clone().unwrap_or_default();
    assert!(hint.contains(cause), "{why}: hint {hint:?} lacks {cause}");
    // The console says so too, never "violations none" beside a clean exit.
    let mut text = Vec::new();
    stampede::report::render(s, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("verdict      TARGET UNUSABLE"),
        "{why}:\n{text}"
    );
    // Never used: what the oracles counted (a 404's refusals) is left out, as is "none".
    assert!(
        text.contains("violations   not judged: no connection was accepted"),
        "{why}:\n{text}"
    );
}

#[tokio::test]
async fn servers_that_never_let_a_websocket_through_are_target_unusable() {
    let cases = [
        (Raw::Http404, "404 page", "http_404"),
        (Raw::Http200, "plain HTTP 200", "http_200"),
        (Raw::Garbage, "not HTTP at all", "protocol_error"),
        (
            Raw::WrongAccept,
            "wrong Sec-WebSocket-Accept",
            "protocol_error",
        ),
        (
            Raw::UnofferedSubprotocol,
            "a subprotocol the client did not offer",
            "protocol_error",
        ),
        // tungstenite gives up on too many headers, or the handshake times out first.
        (Raw::EndlessHeaders, "endless headers", ""),
        (Raw::ResetMid101, "RST in the middle of the 101", ""),
        (Raw::Silence, "silence", "timeout_upgrade"),
        (
            Raw::Trickled101,
            "101 trickled a byte at a time",
            "timeout_upgrade",
        ),
    ];
    for (raw, why, cause) in cases {
        let (url, stop) = spawn_raw(raw).await;
        let outcome = run_at(&url, &small("hostile", TEST_SECRET), Default::default()).await;
        stop.cancel();
        assert_unusable(&outcome, why, cause);
    }
}

#[tokio::test]
async fn a_non_101_answer_shows_its_status_line_and_body() {
    let (url, stop) = spawn_raw(Raw::Http404).await;
    let outcome = run_at(&url, &small("hostile", TEST_SECRET), Default::default()).await;
    stop.cancel();
    let s = &outcome.results.summary;
    let answer = s.answers.first().expect("the 404 is kept");
    assert_eq!(answer.cause, Cause::Http(404));
    assert_eq!(answer.detail, "HTTP/1.1 404 Not Found");
    assert!(answer.body.contains("no such page"), "{answer:?}");
    let json = serde_json::to_value(s).unwrap();
    assert_eq!(json["answers"][0]["detail"], "HTTP/1.1 404 Not Found");
}

#[tokio::test]
async fn a_closed_port_is_target_unusable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    drop(listener);
    let outcome = run_at(&url, &small("hostile", TEST_SECRET), Default::default()).await;
    assert_unusable(&outcome, "closed port", "connect_refused");
}

#[tokio::test]
async fn tls_mismatches_are_target_unusable() {
    let server = spawn_reference(Some(stampede::reference::TlsSetup::SelfSigned)).await;
    let port = server.url().rsplit(':').next().unwrap().to_string();
    let port = port.split('/').next().unwrap().to_string();
    // wss:// without trusting the self-signed certificate.
    let wss = format!("wss://localhost:{port}/ws");
    let outcome = run_at(&wss, &small("hostile", TEST_SECRET), Default::default()).await;
    assert_unusable(&outcome, "wss without trust", "tls_error");
    // ws:// to a TLS port.
    let ws = format!("ws://127.0.0.1:{port}/ws");
    let outcome = run_at(&ws, &small("hostile", TEST_SECRET), Default::default()).await;
    assert_unusable(&outcome, "ws to a TLS port", "");
    server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_secret_is_auth_misconfigured_not_a_race() {
    let server = spawn_reference(None).await;
    let outcome = run_at(
        &server.url(),
        &small("hostile", "not-the-server-secret"),
        Default::default(),
    )
    .await;
    server.shutdown().await;
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::AuthMisconfigured, "{:?}", s.hint);
    assert_eq!(of_run(s), exit::AUTH_MISCONFIGURED);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(hint.contains("http_401 ×4"), "{hint}");
    assert!(hint.contains("secret"), "{hint}");
    // The liveness "violations" it caused are shown as what they are.
    let mut text = Vec::new();
    stampede::report::render(s, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("what the verdict names, not findings"),
        "{text}"
    );
}

/// A wrong secret under a ramp does not wait the ramp out: once the first ten valid
/// tokens' upgrades were all refused (401) and none got through, the run stops and says
/// so, its verdict the scenario's.
#[tokio::test]
async fn a_wrong_secret_stops_the_run_early() {
    let server = spawn_reference(None).await;
    let text = ramped("not-the-server-secret");
    let outcome = run_at(&server.url(), &text, Default::default()).await;
    server.shutdown().await;
    let s = &outcome.results.summary;
    assert_eq!(of_run(s), exit::AUTH_MISCONFIGURED);
    assert_stopped_early(
        s,
        (Verdict::AuthMisconfigured, "auth_refused"),
        &["the first 10 tokens' upgrades were all refused as unauthorized"],
    );
}

/// `small`'s scenario with 200 users arriving over 4 s: long enough for an early stop to
/// show.
fn ramped(secret: &str) -> String {
    small("hostile", secret)
        .replace("users = 4", "users = 200")
        .replace("ramp = \"20ms\"", "ramp = \"4s\"")
}

/// The run of [`ramped`] stopped early with `verdict` and the stop reason `stopped`:
/// after ten attempts and before the 200th, the hint holding `words` and how many never
/// started.
fn assert_stopped_early(
    s: &stampede::results::Summary,
    (verdict, stopped): (Verdict, &str),
    words: &[&str],
) {
    assert_eq!(s.verdict, verdict, "{:?}", s.hint);
    assert_eq!(s.stopped.name(), stopped);
    let attempted = s.counters.attempted;
    assert!((10..200).contains(&attempted), "{:?}", s.counters);
    let hint = s.hint.clone().unwrap_or_default();
    for w in words.iter().chain(&["never started"]) {
        assert!(hint.contains(w), "{w:?} not in {hint}");
    }
}

/// A wrong path under a ramp does not wait the ramp out either: once the first ten
/// upgrades were all answered 404 and none got through, the run stops and says so, its
/// verdict the target's, with the path to check.
#[tokio::test]
async fn a_wrong_path_stops_the_run_early() {
    let server = spawn_reference(None).await;
    let url = server.url();
    let wrong = format!("{}/no-such-path", url.rsplit_once('/').unwrap().0);
    let outcome = run_at(&wrong, &ramped(TEST_SECRET), Default::default()).await;
    server.shutdown().await;
    let words = [
        "check the URL's path",
        "upgrades were all answered 404 or 410",
    ];
    assert_stopped_early(
        &outcome.results.summary,
        (Verdict::TargetUnusable, "not_found"),
        &words,
    );
}

/// A path that took calibration's connections just before the load is there: the load's
/// 404s after them are the server's to answer for, and the run goes to its end.
#[tokio::test]
async fn a_path_calibration_was_upgraded_at_is_not_stopped_for_its_404s() {
    let (url, stop) = spawn_raw_by(|n| {
        if n < 3 {
            Raw::NoSubprotocol
        } else {
            Raw::Http404
        }
    })
    .await;
    let opts = RunOptions {
        target: Some(url),
        learn: true,
        ..Default::default()
    };
    let outcome = run_with(&ramped(TEST_SECRET), &opts).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.stopped.name(), "completed", "{:?}", s.hint);
    assert_eq!(s.counters.attempted, 200, "{:?}", s.counters);
}

/// A certificate the client refuses is refused for every attempt alike: once the first
/// ten TLS handshakes refused it, the run stops, and the hint says what to do about it.
#[tokio::test]
async fn an_untrusted_certificate_stops_the_run_early() {
    let server = spawn_reference(Some(stampede::reference::TlsSetup::SelfSigned)).await;
    let port = server.url().rsplit(':').next().unwrap().to_string();
    let port = port.split('/').next().unwrap().to_string();
    let wss = format!("wss://localhost:{port}/ws");
    let outcome = run_at(&wss, &ramped(TEST_SECRET), Default::default()).await;
    server.shutdown().await;
    let words = ["--ca-file", "refused the server's certificate"];
    assert_stopped_early(
        &outcome.results.summary,
        (Verdict::TargetUnusable, "certificate_refused"),
        &words,
    );
}

#[tokio::test]
async fn a_plan_cut_by_its_duration_is_incomplete() {
    let server = spawn_reference(None).await;
    let text = small("hostile", TEST_SECRET)
        .replace("duration = \"5s\"", "duration = \"600ms\"")
        .replace(
            "{ close = 1000 }",
            "{ think = \"fixed(30s)\" }, { close = 1000 }",
        );
    let outcome = run_at(&server.url(), &text, Default::default()).await;
    server.shutdown().await;
    let s = &outcome.results.summary;
    assert_eq!(s.stopped.name(), "duration");
    assert_eq!(s.verdict, Verdict::Incomplete, "{:?}", s.hint);
    assert_eq!(of_run(s), exit::INCOMPLETE);
}

/// Hunts `s` against `url` (budget 30 s, seed 1, three confirmations, repros into `out`),
/// bounded by [`TEST_BOUND`], and closes the runner.
async fn hunt_at(
    url: String,
    s: &stampede::model::Scenario,
    out: &std::path::Path,
) -> hunt::HuntOutcome {
    let runner = common::url_runner(&stampede::plan::build(s, s.seed), &url).await;
    let opts = HuntOptions {
        budget: Duration::from_secs(30),
        seed: 1,
        out: out.to_path_buf(),
        confirm: 3,
    };
    let outcome = tokio::time::timeout(TEST_BOUND, hunt::hunt(s, &runner, &opts, &mut |_| {}))
        .await
        .unwrap()
        .unwrap();
    runner.close().await;
    outcome
}

#[tokio::test]
async fn a_hunt_against_an_unusable_target_stops_without_a_repro() {
    let (url, stop) = spawn_raw(Raw::Http404).await;
    let s = scenario("hostile.toml", &small("hostile-hunt", TEST_SECRET));
    let dir = tempfile::tempdir().unwrap();
    let outcome = hunt_at(url, &s, dir.path()).await;
    stop.cancel();
    assert!(outcome.found.is_none());
    let Some(hunt::Short::Unjudged(stopped)) = outcome.short else {
        panic!("the hunt says why it stopped: {:?}", outcome.short);
    };
    assert_eq!(stopped.verdict, Verdict::TargetUnusable);
    assert_eq!(outcome.rounds, 1, "no point in a second round");
    assert_eq!(outcome.not_judged, 1, "that round judged nothing");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no repro"
    );
}

/// A WebSocket server that takes every upgrade and every frame and answers nothing (a
/// SignalR hub whose handshake the scenario never completes: its sends lack the record
/// separator), until the client closes.
async fn spawn_silent() -> (String, CancellationToken) {
    common::spawn_server(|tcp| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut ws).await {}
    })
    .await
}

/// A hunt of two users that each send one request nothing answers, then close, with
/// `hunt` as its `[hunt]` table's lines.
fn silent_hunt(name: &str, hunt: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = 3
duration = "5s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[oracles]
learn = false

[[group]]
name = "callers"
users = 2
steps = [
  {{ send = {{ protocol = "json", version = 1 }} }},
  {{ think = "20ms" }},
  {{ close = 1000 }},
]

[hunt]
{hunt}
"#
    )
}

/// `run` calls a server that sent nothing back to a script that expects nothing
/// inconclusive (it was clean, with a hint that only the handshakes were judged: a
/// protocol whose handshake the script never completes reads just so); a hunt's rounds
/// like that judged no script, so the hunt is no clean "no violation": it stops
/// inconclusive (exit 4) with that hint.
#[tokio::test]
async fn a_hunt_against_a_server_that_sends_nothing_back_is_not_judged() {
    let text = silent_hunt("silent-hunt", "rounds = 9");
    let (url, stop) = spawn_silent().await;
    let run = run_at(&url, &text, Default::default()).await;
    let s = &run.results.summary;
    assert_eq!(s.verdict, Verdict::Inconclusive, "{:?}", s.hint);
    let hint = s.hint.clone().unwrap_or_default();
    // The script's send is SignalR's handshake without its terminator: said first.
    assert!(
        hint.starts_with("the scenario sends SignalR's hub handshake")
            && hint.contains("the server sent nothing back"),
        "{hint}"
    );

    let s = scenario("silent.toml", &text);
    let dir = tempfile::tempdir().unwrap();
    let outcome = hunt_at(url, &s, dir.path()).await;
    stop.cancel();
    assert!(outcome.found.is_none());
    // Rounds alike in what kept them from judging: the hunt stops after five of its nine.
    assert_eq!(
        (outcome.rounds, outcome.not_judged),
        (hunt::ALIKE_ROUNDS, hunt::ALIKE_ROUNDS)
    );
    let Some(hunt::Short::Unjudged(stopped)) = outcome.short else {
        panic!(
            "a hunt that judged no script is no pass: {:?}",
            outcome.short
        );
    };
    assert_eq!(stopped.verdict, Verdict::Inconclusive, "{}", stopped.hint);
    assert_eq!(
        stampede::cli::error::of_verdict(stopped.verdict),
        exit::INCONCLUSIVE
    );
    assert!(stopped.hint.starts_with(&hint), "{}", stopped.hint);
    assert!(
        stopped
            .hint
            .ends_with("so the rest would not judge the race either)"),
        "{}",
        stopped.hint
    );
}

/// Under `[hunt] pressure` the rounds grow from level to level, so rounds alike do not
/// stop the hunt while a higher level is left to try; at the ceiling they differ in seed
/// and timing only, and five alike there settle it too (it ran every round of its budget).
#[tokio::test]
async fn a_hunt_under_pressure_against_a_silent_server_stops_at_its_ceiling() {
    let text = silent_hunt(
        "silent-pressure",
        "rounds = 14\npressure = { max_users = 4, factor = 2, rounds_per_level = 1 }",
    );
    let (url, stop) = spawn_silent().await;
    let s = scenario("silent-pressure.toml", &text);
    let dir = tempfile::tempdir().unwrap();
    let outcome = hunt_at(url, &s, dir.path()).await;
    stop.cancel();
    assert!(outcome.found.is_none());
    // Level 0 (2 users), then the ceiling (4 users) from the second round: five rounds
    // there, alike, and it stops.
    let top = outcome.pressure.last().expect("levels reached");
    assert!(top.ceiling, "{top:?}");
    assert_eq!(top.users, vec![4]);
    assert_eq!(
        (outcome.rounds, outcome.not_judged),
        (1 + hunt::ALIKE_ROUNDS, 1 + hunt::ALIKE_ROUNDS)
    );
    let Some(hunt::Short::Unjudged(stopped)) = outcome.short else {
        panic!("a hunt that judged nothing is no pass: {:?}", outcome.short);
    };
    assert!(
        stopped
            .hint
            .ends_with("so the rest would not judge the race either)"),
        "{}",
        stopped.hint
    );
}

/// `[auth] subprotocol` is offered on every upgrade; a server that answers without
/// selecting one of the offered subprotocols lets no connection through (a finding with
/// its own answer), and the built-in server selects it.
#[tokio::test]
async fn a_server_that_ignores_the_offered_subprotocol_is_a_finding() {
    let offered = small("hostile", TEST_SECRET).replace(
        "[auth]\n",
        "[auth]\nsubprotocol = [\"graphql-transport-ws\", \"v2\"]\n",
    );
    assert!(offered.contains("graphql-transport-ws"));
    let (url, stop) = spawn_raw(Raw::NoSubprotocol).await;
    let outcome = run_at(&url, &offered, Default::default()).await;
    // Without the option the same fake's 101 goes through: the refusal is the subprotocol's.
    let plain = run_at(&url, &small("hostile", TEST_SECRET), Default::default()).await;
    stop.cancel();
    assert_unusable(&outcome, "no subprotocol selected", "protocol_error");
    let answer = outcome
        .results
        .summary
        .answers
        .first()
        .expect("an answer is kept");
    assert!(
        answer.detail.to_lowercase().contains("subprotocol"),
        "{answer:?}"
    );
    assert_eq!(plain.results.summary.counters.accepted, 4);

    let server = spawn_reference(None).await;
    let outcome = run_at(&server.url(), &offered, Default::default()).await;
    server.shutdown().await;
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Clean, "{:?}", s.hint);
    assert_eq!(s.counters.accepted, 4);
}
