#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]
//! Verdicts and result lines that must say what really happened: a server that greets and
//! then ignores every request is unusable, not a race (while one that answers some and
//! drops others still is); a hunt's result line goes to stdout under `-q`; `shrink` of a
//! repro that does not reproduce writes nothing; an interrupted hunt that found nothing
//! says nothing was written.
//!
//! The servers are in-process fakes on loopback; the binary runs are bounded by [`BOUND`],
//! and Ctrl-C is a real SIGINT sent once the hunt printed its first round.

mod common;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stampede::model::{OracleKind, Verdict};
use std::path::Path;
use std::time::Duration;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// No test here may take longer than this, whatever the code under test does.
const BOUND: Duration = Duration::from_secs(90);

/// What the fake does with the requests that follow its greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answers {
    /// Reads every request and answers none, closing nothing.
    None,
    /// The same, but sends a heartbeat (a kind no step names, naming no request) for
    /// every request it reads.
    Heartbeats,
    /// Answers the first request of each connection, drops the second, and so on.
    EveryOther,
    /// Answers every request.
    All,
    /// Answers every request with its error event, and then with its whole answer all the
    /// same.
    ErrorThenAll,
    /// Answers every request with its error event, and then with records of these kinds,
    /// in this order, each naming the request (for [`greeted_scenario_expecting`]'s
    /// two-kind answers).
    ErrorThen(&'static [&'static str]),
    /// Answers a request of type `op` whose `id` starts with `ids_from` with its error event
    /// alone (an operation it does not take), and every other with its reply.
    Refuse {
        op: &'static str,
        ids_from: &'static str,
    },
}

/// Starts a fake that greets each connection with `hello` and then answers as `answers`
/// says; returns its URL and what stops it.
async fn spawn_greeter(answers: Answers) -> (String, tokio_util::sync::CancellationToken) {
    common::spawn_server(move |tcp| greet_then(tcp, answers)).await
}

async fn greet_then(tcp: tokio::net::TcpStream, answers: Answers) {
    let Some((mut ws, _)) = common::accept_with_sub(tcp).await else {
        return;
    };
    let text = |v: Value| Message::Text(v.to_string().into());
    if ws.send(text(json!({"type": "hello"}))).await.is_err() {
        return;
    }
    let mut requests = 0u64;
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(body) = msg else { continue };
        requests += 1;
        if answers == Answers::Heartbeats
            && ws.send(text(json!({"type": "heartbeat"}))).await.is_err()
        {
            return;
        }
        let answer = match answers {
            Answers::None | Answers::Heartbeats => false,
            Answers::EveryOther => requests % 2 == 1,
            Answers::All
            | Answers::ErrorThenAll
            | Answers::ErrorThen(_)
            | Answers::Refuse { .. } => true,
        };
        if !answer {
            continue;
        }
        let request: Value = serde_json::from_str(body.as_str()).unwrap_or(Value::Null);
        let error = json!({"type": "error", "code": "transient", "id": request.get("id").cloned()});
        let refused = match answers {
            Answers::Refuse { op, ids_from } => {
                request.get("type").and_then(Value::as_str) == Some(op)
                    && request
                        .get("id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| id.starts_with(ids_from))
            }
            _ => false,
        };
        let kinds: &[&str] = match answers {
            Answers::ErrorThen(kinds) => kinds,
            _ if refused => &[],
            _ => &["reply"],
        };
        let errs = refused || matches!(answers, Answers::ErrorThenAll | Answers::ErrorThen(_));
        if errs && ws.send(text(error)).await.is_err() {
            return;
        }
        for kind in kinds {
            let reply = json!({"type": kind, "id": request.get("id").cloned()});
            if ws.send(text(reply)).await.is_err() {
                return;
            }
        }
    }
}

/// Two users, each waiting for `hello`, then sending two requests that each expect their
/// `reply`; `hunt` adds a `[hunt]` table with that many rounds.
fn greeted_scenario(hunt_rounds: Option<u32>) -> String {
    greeted_scenario_with(hunt_rounds, "reply")
}

/// [`greeted_scenario`] whose requests each expect `started reply`: an answer of two
/// kinds, in that order.
fn greeted_scenario_expecting() -> String {
    greeted_scenario_with(None, "started reply")
}

/// [`greeted_scenario`] whose requests each expect `answer`.
fn greeted_scenario_with(hunt_rounds: Option<u32>, answer: &str) -> String {
    let hunt = hunt_rounds.map_or(String::new(), |n| format!("\n[hunt]\nrounds = {n}\n"));
    format!(
        r#"
name = "greeted"
seed = 3
duration = "10s"

[auth]
secret = {{ value = "{secret}" }}

[[group]]
name = "askers"
users = 2
steps = [
  {{ expect = "hello", within = "5s" }},
  {{ repeat = 2, steps = [
    {{ send = {{ type = "ask", id = "q-{{{{conn}}}}-{{{{run}}}}" }} }},
    {{ expect = "{answer}", correlate = "id", within = "300ms" }},
  ] }},
  {{ close = 1000 }},
]
{hunt}"#,
        secret = common::TEST_SECRET,
    )
}

/// [`greeted_scenario`] with a 2 s `within`, then two more requests of another type
/// (`frobnicate`, step 3), each expecting its `reply` too.
fn two_step_scenario() -> String {
    let frobnicate = r#"  { repeat = 2, steps = [
    { send = { type = "frobnicate", id = "f-{{conn}}-{{run}}" } },
    { expect = "reply", correlate = "id", within = "2s" },
  ] },
  { close = 1000 },"#;
    let text = greeted_scenario_with(None, "reply")
        .replace(r#"within = "300ms""#, r#"within = "2s""#)
        .replace("  { close = 1000 },", frobnicate);
    assert!(
        text.contains("frobnicate") && !text.contains("300ms"),
        "{text}"
    );
    text
}

/// A server that answers one step's every request with its error event (an operation it
/// does not know) while it serves the others never exercised that step: TARGET UNUSABLE
/// naming the step, not CLEAN with an error rate beside it. One that refuses that step on
/// one connection and serves it on the other refused by policy: still clean, with its
/// errors counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_the_server_refuses_every_request_of_is_unusable() {
    let scenario = common::scenario("two-steps.toml", &two_step_scenario());
    let judged = |ids_from| {
        let scenario = &scenario;
        async move {
            let (url, stop) = spawn_greeter(Answers::Refuse {
                op: "frobnicate",
                ids_from,
            })
            .await;
            let outcome = common::run(scenario, Some(url), None).await;
            stop.cancel();
            outcome.results.summary
        }
    };
    let everywhere = judged("f-").await;
    assert_eq!(
        everywhere.verdict,
        Verdict::TargetUnusable,
        "{:?}",
        everywhere.hint
    );
    let hint = everywhere.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("every request of step 3.2 with its error event")
            && hint.contains("on 2 connections")
            && hint.contains("served the script's other steps"),
        "{hint}"
    );
    assert_eq!(
        everywhere.counters.expect.expectations_met, 6,
        "hello and ask"
    );
    assert_eq!(everywhere.counters.expect.expectations_errored, 4);
    let one = judged("f-0-").await;
    assert_eq!(one.verdict, Verdict::Clean, "{:?}", one.hint);
    assert_eq!(one.counters.expect.expectations_errored, 2);
}

/// Every file under `dir`, however deep.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found
}

/// `stampede ARGS`, bounded; its exit code, stdout and stderr.
async fn stampede(args: &[&str]) -> (Option<i32>, String, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = timeout(BOUND, child).await.expect("bounded").unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A server that sends its greeting and then never answers a request (nor closes) never
/// exercised the request path: TARGET UNUSABLE, with a hint that says so, not a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_greets_then_ignores_every_request_is_unusable() {
    let (url, stop) = spawn_greeter(Answers::None).await;
    let scenario = common::scenario("greeted.toml", &greeted_scenario(None));
    let outcome = common::run(&scenario, Some(url), None).await;
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::TargetUnusable, "{:?}", s.hint);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("no request got any answer past the handshake (4 sent, 0 answered)")
            && hint.contains("may not speak the scenario's protocol or message format"),
        "{hint}"
    );
    stop.cancel();
}

/// Heartbeats are no answers: a server that sends one for every request and answers
/// none ignored them all, the same as a silent one (a heartbeat counted as an answer made
/// this a race to hunt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_only_sends_heartbeats_past_its_greeting_is_unusable() {
    let (url, stop) = spawn_greeter(Answers::Heartbeats).await;
    let scenario = common::scenario("greeted.toml", &greeted_scenario(None));
    let outcome = common::run(&scenario, Some(url), None).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::TargetUnusable, "{:?}", s.hint);
    assert_eq!(s.counters.expect.unclaimed, 4, "{:?}", s.counters);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("no request got any answer past the handshake (4 sent, 0 answered; all that came past it were 4 records of kinds no step names, naming no request (the first: \"heartbeat\")"),
        "{hint}"
    );
}

/// A server that answers some requests and silently drops the others is the
/// dropped-events race: violations, as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_some_requests_and_drops_others_is_violations() {
    let (url, stop) = spawn_greeter(Answers::EveryOther).await;
    let scenario = common::scenario("greeted.toml", &greeted_scenario(None));
    let outcome = common::run(&scenario, Some(url), None).await;
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Violations, "{:?}", s.hint);
    assert_eq!(s.violations.of(OracleKind::Completeness), 2, "{s:?}");
    stop.cancel();
}

/// A server that answers each request with its error event and then with its whole
/// answer all the same served every request: the error settles each expectation (an
/// allowed answer), but what came after it arrived and is counted so, and the run is no
/// "answered every request with its error event, nothing exercised" (TARGET UNUSABLE, the
/// event rates at 0%): clean, its hint saying the errors refused nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_errors_then_answers_in_full_served_its_requests() {
    let (url, stop) = spawn_greeter(Answers::ErrorThenAll).await;
    let scenario = common::scenario("greeted.toml", &greeted_scenario(None));
    let outcome = common::run(&scenario, Some(url), None).await;
    stop.cancel();
    let s = &outcome.results.summary;
    let e = &s.counters.expect;
    assert_eq!(s.verdict, Verdict::Clean, "{:?}", s.hint);
    assert_eq!(e.expectations_errored, 4, "{e:?}");
    let reply = e.events.get("reply").copied().unwrap_or_default();
    assert_eq!((reply.expected, reply.arrived), (4, 4), "{e:?}");
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("answered 4 of 6 expectations with its error event")
            && hint.contains("then sent the whole answer to every one of those requests")
            && !hint.contains("answered every request with its error event"),
        "{hint}"
    );
}

/// [`greeted_scenario_expecting`] run against a server that answers every request with
/// its error event and then with records of `kinds`: its summary.
async fn errored_then(kinds: &'static [&'static str]) -> stampede::results::Summary {
    let (url, stop) = spawn_greeter(Answers::ErrorThen(kinds)).await;
    let scenario = common::scenario("greeted.toml", &greeted_scenario_expecting());
    let outcome = common::run(&scenario, Some(url), None).await;
    stop.cancel();
    outcome.results.summary
}

/// Error, then the whole answer once and in order, with an answer of two kinds: served,
/// as with one kind (both kinds count as arrived, clean, the hint saying so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_errors_then_answers_in_full_and_in_order_served_its_requests() {
    let s = errored_then(&["started", "reply"]).await;
    let e = &s.counters.expect;
    assert_eq!(s.verdict, Verdict::Clean, "{:?}", s.hint);
    assert_eq!(e.expectations_errored, 4, "{e:?}");
    for kind in ["started", "reply"] {
        let t = e.events.get(kind).copied().unwrap_or_default();
        assert_eq!((t.expected, t.arrived), (4, 4), "{kind}: {e:?}");
    }
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("then sent the whole answer to every one of those requests"),
        "{hint}"
    );
}

/// After its error, the answer sent twice, or out of its pattern's order, is the finding
/// it is without the error: late duplicates (completeness), not clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_errors_then_answers_twice_or_out_of_order_is_violations() {
    for (kinds, duplicates) in [
        (&["started", "reply", "started", "reply"][..], 8),
        (&["reply", "started"][..], 4),
    ] {
        let s = errored_then(kinds).await;
        assert_eq!(s.verdict, Verdict::Violations, "{kinds:?}: {:?}", s.hint);
        assert_eq!(
            s.violations.of(OracleKind::Completeness),
            duplicates,
            "{kinds:?}: {s:?}"
        );
    }
}

/// After its error, only the first kind of each answer: no request was served (the
/// answers' last kind never came), so the server answered every request with its error
/// event, as when nothing followed it: target unusable. What came still counts as
/// arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_errors_then_answers_in_part_served_nothing() {
    let s = errored_then(&["started"]).await;
    let e = &s.counters.expect;
    assert_eq!(s.verdict, Verdict::TargetUnusable, "{:?}", s.hint);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("answered every request with its error event (4 errored, none met"),
        "{hint}"
    );
    let started = e.events.get("started").copied().unwrap_or_default();
    let reply = e.events.get("reply").copied().unwrap_or_default();
    assert_eq!((started.arrived, reply.arrived), (4, 0), "{e:?}");
}

/// `hunt` against the server that ignores every request stops at round 0 with that
/// verdict's exit code (5), writes no repro, and, under `-q`, says so on stdout, where
/// `run -q` prints its verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hunt_against_a_server_that_ignores_requests_writes_no_repro() {
    let (url, stop) = spawn_greeter(Answers::None).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("greeted.toml");
    std::fs::write(&path, greeted_scenario(Some(20))).unwrap();
    let out = dir.path().join("results");
    let (code, stdout, stderr) = stampede(&[
        "hunt",
        path.to_str().unwrap(),
        "--target",
        &url,
        "--no-learn",
        "--budget",
        "30s",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, Some(5), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "stopped: round 0 was target_unusable (no request got any answer past the handshake"
        ) && stdout.contains("no repro was written"),
        "the result line is on stdout: {stdout}\n--- stderr\n{stderr}"
    );
    assert!(files_under(&out).is_empty(), "{:?}", files_under(&out));
    stop.cancel();
}

/// `shrink` of a repro that does not reproduce (the early-message-drop repro against the
/// correct built-in server) has nothing to shrink: it says so, writes no file, and exits
/// 0 as `replay` does for a repro that no longer reproduces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shrink_of_a_repro_that_does_not_reproduce_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repro = dir.path().join("repro-completeness-000000000000.json");
    let kept =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/regressions/early-message-drop.json");
    std::fs::copy(&kept, &repro).unwrap();
    let repro = repro.to_str().unwrap();
    let (code, stdout, stderr) =
        stampede(&["replay", repro, "--reference", "--times", "2", "-q"]).await;
    assert_eq!(code, Some(0), "replay's code: {stdout}\n{stderr}");
    assert!(stdout.contains("violation 0/2 times"), "{stdout}");
    let (code, stdout, stderr) =
        stampede(&["shrink", repro, "--reference", "--times", "2", "-q"]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("the completeness violation did not reproduce (0/2)")
            && stdout.contains("nothing to shrink, nothing written"),
        "{stdout}"
    );
    assert!(!stdout.contains("minimal repro"), "{stdout}");
    assert_eq!(
        files_under(dir.path()).len(),
        1,
        "{:?}",
        files_under(dir.path())
    );
}

/// Ctrl-C (a real SIGINT) during a hunt that has found nothing: the notice promises no
/// files, and the result line says no violation was found and nothing was written; exit
/// 130, and the output folder stays empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_hunt_that_found_nothing_says_nothing_was_written() {
    let (url, stop) = spawn_greeter(Answers::All).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("greeted.toml");
    std::fs::write(&path, greeted_scenario(Some(1000))).unwrap();
    let out = dir.path().join("results");
    // Once the first round ended: the hunt is under way, with nothing found.
    let run = common::interrupt_when(
        &[
            "hunt",
            path.to_str().unwrap(),
            "--target",
            &url,
            "--no-learn",
            "--budget",
            "120s",
            "-o",
            out.to_str().unwrap(),
        ],
        |line| line.starts_with("round "),
    )
    .await;
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    assert_eq!(run.code, Some(130), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("interrupted after ")
            && stdout.contains("no violation found; nothing written"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("what the load ran so far is written")
            && stderr.contains("a repro is written only of a race it saw"),
        "{stderr}"
    );
    assert!(files_under(&out).is_empty(), "{:?}", files_under(&out));
    stop.cancel();
}

/// Three users whose scripts are `steps` (TOML array items), against a server whose
/// acceptance is its `connection_established` greeting.
fn eager(name: &str, steps: &str) -> stampede::model::Scenario {
    let text = format!(
        "name = \"{name}\"\nseed = 3\nduration = \"10s\"\n\n[auth]\nsecret = {{ value = \"{}\" }}\n\n\
         [oracles]\naccepted = {{ message = \"connection_established\" }}\n\n\
         [[group]]\nname = \"eager\"\nusers = 3\nsteps = [{steps}\n]\n",
        common::TEST_SECRET
    );
    common::scenario(&format!("{name}.toml"), &text)
}

/// Expectations errored, and of those errored early, in a run's summary.
fn errored(s: &stampede::results::Summary) -> (u64, u64) {
    let e = &s.counters.expect;
    (e.expectations_errored, e.expectations_errored_early)
}

/// Reads the first request before greeting and refuses it as too early (`not_ready`),
/// greets (`connection_established`), then refuses every later request as malformed
/// (`bad_format`).
async fn refuse_early(tcp: tokio::net::TcpStream) {
    refuse_early_then_late(tcp, false).await
}

/// [`refuse_early`], its refusal of the first request sent after its greeting when
/// `deferred` (the early request's refusal then arrives after acceptance).
async fn refuse_early_then_late(tcp: tokio::net::TcpStream, deferred: bool) {
    let Some((mut ws, user)) = common::accept_with_sub(tcp).await else {
        return;
    };
    let text = |v: Value| Message::Text(v.to_string().into());
    let refusal = |body: &str, code: &str| {
        let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        json!({"type": "error", "code": code, "id": request.get("id").cloned()})
    };
    let Some(Ok(Message::Text(first))) = ws.next().await else {
        return;
    };
    let early = text(refusal(first.as_str(), "not_ready"));
    let hello = text(json!({"type": "connection_established", "user_id": user}));
    let (one, two) = if deferred {
        (hello, early)
    } else {
        (early, hello)
    };
    if ws.send(one).await.is_err() || ws.send(two).await.is_err() {
        return;
    }
    while let Some(Ok(Message::Text(body))) = ws.next().await {
        if ws
            .send(text(refusal(body.as_str(), "bad_format")))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The same server, and a script that also sends after the ack: its requests are refused
/// then too, so the target is unusable, and the hint quotes the refusal after acceptance
/// (`bad_format`), not the early one that only says a request came too soon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_refused_after_the_ack_too_are_unusable_and_quoted_from_after_it() {
    for deferred in [false, true] {
        refused_after_the_ack_too(deferred).await;
    }
}

/// [`requests_refused_after_the_ack_too_are_unusable_and_quoted_from_after_it`], the early
/// request's refusal sent after the greeting when `deferred`: what is quoted is chosen by
/// when the refused request went out, not by when its refusal came.
async fn refused_after_the_ack_too(deferred: bool) {
    let (url, stop) = common::spawn_server(move |tcp| refuse_early_then_late(tcp, deferred)).await;
    let steps = r#"
  { send = { type = "ask", id = "q-{{conn}}-early" } },
  { expect = "reply", correlate = "id", within = "2s" },
  { expect = "connection_established", within = "2s" },
  { send = { type = "ask", id = "q-{{conn}}-late" } },
  { expect = "reply", correlate = "id", within = "2s" },
  { close = 1000 },"#;
    let outcome = common::run(&eager("eager-then-late", steps), Some(url), None).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::TargetUnusable, "{:?}", s.hint);
    assert_eq!(errored(s), (6, 3), "{:?}", s.counters.expect);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("the first after acceptance: {") && hint.contains("bad_format"),
        "{hint}"
    );
}

/// A server that refuses a request sent before it has accepted the connection in band:
/// it reads the first request before its greeting and answers it with its error event
/// (allowed: refused, not dropped), then greets. Every request of the scenario goes out
/// right after the upgrade (before the ack, on purpose: the early-send race), so every
/// answer is that refusal: INCONCLUSIVE, saying why and how to tell it from a request
/// format the server refuses, not TARGET UNUSABLE (the target is healthy) nor CLEAN (the
/// early path was never taken). The ordering is the server's, not a clock's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_requests_sent_before_its_ack_is_inconclusive() {
    let (url, stop) = common::spawn_server(refuse_early).await;
    let steps = r#"
  { send = { type = "ask", id = "q-{{conn}}" } },
  { expect = "reply", correlate = "id", within = "2s" },
  { close = 1000 },"#;
    let outcome = common::run(&eager("eager", steps), Some(url), None).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Inconclusive, "{:?}", s.hint);
    assert_eq!(errored(s), (3, 3), "{:?}", s.counters.expect);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("every one a request sent before the server had accepted its connection")
            && hint.contains("send one after the ack too"),
        "{hint}"
    );
}

/// A server with no greeting (the default first-frame acceptance) that answers every
/// request with its error event: its errors accept nothing, so no connection was ever
/// accepted, and the requests sent before its first frame are no "early" requests refused
/// before an acceptance that came: unusable, never inconclusive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_refusing_every_request_is_unusable_not_inconclusive() {
    async fn refuse_all(tcp: tokio::net::TcpStream) {
        let Some((mut ws, _)) = common::accept_with_sub(tcp).await else {
            return;
        };
        while let Some(Ok(Message::Text(body))) = ws.next().await {
            let request: Value = serde_json::from_str(body.as_str()).unwrap_or(Value::Null);
            let error =
                json!({"type": "error", "code": "bad_format", "id": request.get("id").cloned()});
            if ws
                .send(Message::Text(error.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let (url, stop) = common::spawn_server(refuse_all).await;
    let text = format!(
        r#"
name = "silent"
seed = 3
duration = "10s"

[auth]
secret = {{ value = "{secret}" }}

[[group]]
name = "askers"
users = 3
steps = [
  {{ send = {{ type = "ask", id = "q-{{{{conn}}}}" }} }},
  {{ expect = "reply", correlate = "id", within = "2s" }},
  {{ close = 1000 }},
]
"#,
        secret = common::TEST_SECRET,
    );
    let scenario = common::scenario("silent.toml", &text);
    let outcome = common::run(&scenario, Some(url), None).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::TargetUnusable, "{:?}", s.hint);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(!hint.contains("send one after the ack"), "{hint}");
}

/// A run of bad tokens alone against a server that upgrades each and then says nothing
/// (neither its acceptance nor a refusal) within the script's wait: no bad token was
/// judged, so the run proves nothing. It read CLEAN ("0 of 4 bad-token attempts refused
/// cleanly"), exit 0, as a server that refuses every forged token would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_the_server_never_answers_are_no_clean_run() {
    let (url, stop) = common::spawn_server(|tcp| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let text = r#"name = "bad-only-unanswered"
duration = "10s"

[oracles]
accepted = { message = "connection_ack" }

[[group]]
name = "bad"
users = 4
arrival = "burst"
forge = "catalogue"
steps = [ { expect = "connection_ack", within = "300ms" }, { close = 1000 } ]
"#;
    let outcome = timeout(
        BOUND,
        common::run(&common::scenario("bad-only.toml", text), Some(url), None),
    )
    .await
    .expect("bounded");
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.counters.accepted, 0, "{:?}", s.counters);
    assert_eq!(s.verdict, Verdict::Inconclusive, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains("answered none of the 4 bad-token attempts"),
        "{hint}"
    );
}
