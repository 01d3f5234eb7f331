//! A server going down mid-run: it closes its callers, unanswered, within a few
//! milliseconds of each other, saying so (Close 1001 "server restarting (deploy)", or 1012
//! service restart, or a bare 1001 with no reason, as Python `websockets` sends on
//! SIGTERM), as a rolling deploy does. What the scripts still expected was cut by
//! the restart, not lost by a race: the run is inconclusive, never violations, and a hunt
//! writes no repro for it. The same closes with a reason that says nothing of going down
//! (a 1001 "bye") stay findings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{scenario, spawn_server, TEST_BOUND, TEST_SECRET};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use stampede::model::Verdict;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Connections the scenario opens at once.
const USERS: usize = 3;

/// How the server says goodbye when it goes down.
#[derive(Clone, Copy)]
struct Goodbye {
    code: u16,
    reason: &'static str,
}

/// The upgrade accepted (any bearer token) and the greeting sent; `None` when either failed.
async fn greeted(
    tcp: tokio::net::TcpStream,
) -> Option<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
    let (mut ws, _) = common::accept_bearer(tcp, |_| true).await?;
    let hello = json!({"type": "connection_established"}).to_string();
    ws.send(Message::Text(hello.into())).await.ok()?;
    Some(ws)
}

/// Greets, reads one request and closes with `bye` instead of answering it: a burst of
/// callers is closed within a few milliseconds, as a restart closes them all.
async fn serve(tcp: tokio::net::TcpStream, bye: Goodbye) {
    let Some(mut ws) = greeted(tcp).await else {
        return;
    };
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(_))) => break,
            Some(Ok(_)) => continue,
            _ => return,
        }
    }
    let frame = CloseFrame {
        code: CloseCode::from(bye.code),
        reason: bye.reason.into(),
    };
    let _ = ws.close(Some(frame)).await;
    // Lets the client read the Close (bounded: it answers at once).
    let _ = tokio::time::timeout(TEST_BOUND, ws.next()).await;
}

fn text() -> String {
    format!(
        r#"
name = "deploy-mid-run"
duration = "20s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[oracles]
exclusive = false
liveness = false

[[group]]
name = "callers"
users = {USERS}
arrival = "burst"
steps = [
  {{ expect = "connection_established", within = "5s" }},
  {{ send = {{ type = "call", id = "{{{{conn}}}}" }} }},
  {{ expect = "result", correlate = "id", within = "10s" }},
]
"#
    )
}

async fn run_against(bye: Goodbye) -> stampede::results::Summary {
    let (url, stop) = spawn_server(move |tcp| serve(tcp, bye)).await;
    let outcome = common::run(&scenario("deploy.toml", &text()), Some(url), None).await;
    stop.cancel();
    outcome.results.summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_going_down_mid_run_is_inconclusive_not_a_race() {
    for bye in [
        Goodbye {
            code: 1001,
            reason: "server restarting (deploy)",
        },
        Goodbye {
            code: 1012,
            reason: "",
        },
    ] {
        let sum = run_against(bye).await;
        assert_eq!(sum.verdict, Verdict::Inconclusive, "{:?}", sum.hint);
        let hint = sum.hint.unwrap_or_default();
        assert!(
            hint.contains(&format!("the server closed {USERS} connections within"))
                && hint.contains(&format!("Close {}", bye.code))
                && hint.contains("not a race"),
            "{hint}"
        );
        // A restart's closes are no policy to declare: the hint never says to.
        assert!(
            !hint.contains("max_lifetime") && !hint.contains("idle_timeout ="),
            "{hint}"
        );
        assert_eq!(sum.violations.total, USERS as u64, "{hint}");
    }
    // Going away with no reason at all (Python `websockets` on SIGTERM), to every
    // connection at once: the server going down too.
    let sum = run_against(Goodbye {
        code: 1001,
        reason: "",
    })
    .await;
    assert_eq!(sum.verdict, Verdict::Inconclusive, "{:?}", sum.hint);
    // Going away with no word of going down: a server closing its callers unanswered.
    let sum = run_against(Goodbye {
        code: 1001,
        reason: "bye",
    })
    .await;
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
}

/// A hunt against the restarting server finds nothing and writes no repro: every round's
/// violations are the restart's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hunt_writes_no_repro_for_a_restart() {
    let bye = Goodbye {
        code: 1001,
        reason: "server restarting (deploy)",
    };
    let (url, stop) = spawn_server(move |tcp| serve(tcp, bye)).await;
    let text = format!("{}\n[hunt]\nrounds = 3\n", text());
    let s = scenario("deploy.toml", &text);
    let (hunted, written) = common::hunt_at(&s, &url, std::time::Duration::from_secs(40), 3).await;
    stop.cancel();
    assert!(
        hunted.found.is_none(),
        "{:?}",
        hunted.found.map(|f| f.repro.oracle)
    );
    assert_eq!(
        hunted.not_judged, hunted.rounds,
        "every round judged nothing"
    );
    assert!(
        written.iter().all(|f| !f.starts_with("repro")),
        "{written:?}"
    );
}

/// A replay against a server going down stops, unjudged: what the restart cut is neither
/// the race reproduced nor its absence (a fix checked against a deploy would read as
/// failed), and `replay` exits with the run's inconclusive verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_against_a_restart_neither_reproduces_nor_rules_out() {
    let bye = Goodbye {
        code: 1001,
        reason: "server restarting (deploy)",
    };
    let (url, stop) = spawn_server(move |tcp| serve(tcp, bye)).await;
    let s = scenario("deploy.toml", &text());
    let plan = stampede::plan::build(&s, 1);
    let repro = stampede::hunt::Repro::for_plan(
        &s,
        1,
        plan.clone(),
        url.clone(),
        stampede::model::OracleKind::Completeness,
    );
    let measured = tokio::time::timeout(TEST_BOUND, async {
        let runner = common::url_runner(&plan, &url).await;
        runner.replay(&repro, 3).await.unwrap()
    })
    .await
    .expect("the replay ends within the bound");
    stop.cancel();
    let rate = measured.rate;
    assert_eq!((rate.reproduced, rate.runs), (0, 0), "{rate:?}");
    match rate.short {
        Some(stampede::hunt::Short::Unjudged(u)) => {
            assert_eq!(u.verdict, Verdict::Inconclusive, "{}", u.hint);
            assert!(u.hint.contains("not a race"), "{}", u.hint);
        }
        other => panic!("not stopped as unjudged: {other:?}"),
    }
}

/// A server that goes down for good during a hunt's round, saying so: the first
/// connection (the health probe before the round) is served; every later one is closed
/// 1001 "server restarting (deploy)" at its request, and the server then stops listening.
struct GoesDown {
    accepted: std::sync::atomic::AtomicUsize,
    stop: std::sync::OnceLock<tokio_util::sync::CancellationToken>,
}

async fn serve_then_go_down(tcp: tokio::net::TcpStream, down: std::sync::Arc<GoesDown>) {
    let index = down
        .accepted
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let Some(mut ws) = greeted(tcp).await else {
        return;
    };
    let Some(Ok(Message::Text(text))) = tokio::time::timeout(TEST_BOUND, ws.next())
        .await
        .ok()
        .flatten()
    else {
        return;
    };
    if index == 0 {
        let request: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        let answer = json!({"type": "result", "id": request["id"]}).to_string();
        let _ = ws.send(Message::Text(answer.into())).await;
        let _ = tokio::time::timeout(TEST_BOUND, ws.next()).await;
        return;
    }
    let frame = CloseFrame {
        code: CloseCode::from(1001),
        reason: "server restarting (deploy)".into(),
    };
    let _ = ws.close(Some(frame)).await;
    if let Some(stop) = down.stop.get() {
        stop.cancel();
    }
    let _ = tokio::time::timeout(TEST_BOUND, ws.next()).await;
}

/// A server stopped during a hunt's round, saying it was going down, is found down by the
/// health probe after it: the round is inconclusive (a deploy, not a race), no round is
/// blamed for breaking the target (no repro), and the next round, finding it still down,
/// stops the hunt as unusable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_mid_hunt_is_no_broken_target() {
    let down = std::sync::Arc::new(GoesDown {
        accepted: Default::default(),
        stop: std::sync::OnceLock::new(),
    });
    let serving = down.clone();
    let (url, stop) = spawn_server(move |tcp| serve_then_go_down(tcp, serving.clone())).await;
    let _ = down.stop.set(stop.clone());
    let text = format!("{}\n[hunt]\nrounds = 3\n", text());
    let s = scenario("deploy.toml", &text);
    let (hunted, written) = common::hunt_at(&s, &url, std::time::Duration::from_secs(40), 3).await;
    stop.cancel();
    assert!(
        hunted.found.is_none(),
        "{:?}",
        hunted.found.map(|f| f.repro.oracle)
    );
    match &hunted.short {
        Some(stampede::hunt::Short::Unjudged(u)) => {
            assert_eq!(u.verdict, Verdict::TargetUnusable, "{}", u.hint);
        }
        other => panic!("not stopped as unjudged: {other:?}"),
    }
    assert_eq!(
        hunted.rounds, 2,
        "the stopped round, then the one that found it down"
    );
    // Two reasons (the server went down, then unusable): not "every one of the 2 rounds
    // was target unusable".
    assert_eq!(hunted.not_judged, 2);
    assert!(!hunted.alike_throughout);
    assert!(
        written.iter().all(|f| !f.starts_with("repro")),
        "{written:?}"
    );
}

/// How long after its upgrade [`close_at_age`] lets each connection go.
const AGE: std::time::Duration = std::time::Duration::from_millis(200);

/// Greets, then closes the connection with a bare 1001 [`AGE`] after it opened, whatever
/// it was waiting for: a timer per connection (river #205's grace timer, firing on live
/// connections), not a server going down.
async fn close_at_age(tcp: tokio::net::TcpStream) {
    let opened = tokio::time::Instant::now();
    let Some(mut ws) = greeted(tcp).await else {
        return;
    };
    // Reads (and never answers) until the connection's time is up.
    let _ = tokio::time::timeout_at(opened + AGE, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let frame = CloseFrame {
        code: CloseCode::from(1001),
        reason: "".into(),
    };
    let _ = ws.close(Some(frame)).await;
    let _ = tokio::time::timeout(TEST_BOUND, ws.next()).await;
}

/// Bare 1001s that reach connections opened 300 ms apart, each at the same age: within the
/// second a restart's closes may take, but every connection let go on a timer of its own
/// while the server kept serving the next: a fault to hunt, not a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_at_one_age_of_connections_opened_apart_are_no_restart() {
    let (url, stop) = spawn_server(close_at_age).await;
    let text = text()
        .replace(&format!("users = {USERS}"), "users = 4")
        .replace(r#"arrival = "burst""#, r#"arrival = { ramp = "900ms" }"#);
    assert!(
        text.contains("ramp") && text.contains("users = 4"),
        "{text}"
    );
    let outcome = common::run(&scenario("aged.toml", &text), Some(url), None).await;
    stop.cancel();
    let sum = outcome.results.summary;
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    assert_eq!(sum.violations.total, 4, "{:?}", sum.hint);
}

/// Greets, reads one request and, once every caller's request is in (`dead` fired by the
/// last), drops the connection without a Close frame: what the kernel does with a killed
/// process's sockets. The listener stops too (see the test), so later connects are
/// refused.
async fn die_with_all(
    tcp: tokio::net::TcpStream,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    dead: tokio_util::sync::CancellationToken,
) {
    let Some(mut ws) = greeted(tcp).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_text() {
            break;
        }
    }
    if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == USERS {
        dead.cancel();
    }
    let _ = tokio::time::timeout(TEST_BOUND, dead.cancelled()).await;
    drop(ws);
}

/// Serves with `handler`, whose connections share a count and a `dead` token (fired by
/// the last of [`USERS`]); with `listener_dies`, the listener stops when it fires, as a
/// killed process's does. The URL, the listener's stop, and `dead`.
async fn spawn_mortal<Fut>(
    handler: fn(
        tokio::net::TcpStream,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
        tokio_util::sync::CancellationToken,
    ) -> Fut,
    listener_dies: bool,
) -> (
    String,
    tokio_util::sync::CancellationToken,
    tokio_util::sync::CancellationToken,
)
where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let dead = tokio_util::sync::CancellationToken::new();
    let (url, stop) = {
        let dead = dead.clone();
        spawn_server(move |tcp| handler(tcp, count.clone(), dead.clone())).await
    };
    if listener_dies {
        let (listener, died) = (stop.clone(), dead.clone());
        tokio::spawn(async move {
            died.cancelled().await;
            listener.cancel();
        });
    }
    (url, stop, dead)
}

/// A server killed mid-run (`kill -9`, an out-of-memory kill): every open connection cut
/// at once without a Close frame, and the late group's connects refused. Inconclusive,
/// named as the server going down, never a race to hunt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_run_is_inconclusive_not_a_race() {
    let (url, stop, dead) = spawn_mortal(die_with_all, true).await;
    let late = r#"
[[group]]
name = "late"
users = 2
arrival = { ramp = "100ms", start = "3s" }
steps = [{ expect = "connection_established", within = "5s" }]
"#;
    let text = format!("{}{late}", text());
    let outcome = common::run(&scenario("killed.toml", &text), Some(url), None).await;
    stop.cancel();
    dead.cancel();
    let sum = outcome.results.summary;
    assert_eq!(sum.verdict, Verdict::Inconclusive, "{:?}", sum.hint);
    let hint = sum.hint.unwrap_or_default();
    assert!(
        hint.contains(&format!(
            "it cut all {USERS} connections it had open within"
        )) && hint.contains("without a Close frame")
            && hint.contains("2 later attempts of the run refused")
            && hint.contains("not a race"),
        "{hint}"
    );
}

/// The same cut of every connection at once, by a server that stays up and takes the
/// probe's connections after the run: no server gone down but one that dropped every
/// session, a fault to hunt (violations).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_connection_while_staying_up_is_no_crash() {
    let (url, stop, dead) = spawn_mortal(die_with_all, false).await;
    let text = text().replace("liveness = false", "liveness = true");
    assert!(text.contains("liveness = true"), "{text}");
    let outcome = common::run(&scenario("dropped.toml", &text), Some(url), None).await;
    stop.cancel();
    dead.cancel();
    let sum = outcome.results.summary;
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    assert!(
        !sum.hint.unwrap_or_default().contains("went down"),
        "a server that took the probe's connections did not go down"
    );
}

/// Greets, answers the one request, and once every caller has its answer (`dead` fired by
/// the last) drops the connection without a Close frame: killed after the scripts' last
/// expectation, while they only think.
async fn answer_then_die(
    tcp: tokio::net::TcpStream,
    answered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    dead: tokio_util::sync::CancellationToken,
) {
    let Some(mut ws) = greeted(tcp).await else {
        return;
    };
    let id = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let call: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                break call["id"].clone();
            }
            Some(Ok(_)) => continue,
            _ => return,
        }
    };
    let result = json!({"type": "result", "id": id}).to_string();
    if ws.send(Message::Text(result.into())).await.is_err() {
        return;
    }
    if answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == USERS {
        dead.cancel();
    }
    let _ = tokio::time::timeout(TEST_BOUND, dead.cancelled()).await;
    drop(ws);
}

/// Killed after every expectation was met, the connections only thinking before their
/// close, and refusing the probe after the run: no oracle broke, but no clean run either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_after_the_last_answer_leaves_no_clean_run() {
    let (url, stop, dead) = spawn_mortal(answer_then_die, true).await;
    let text = text().replace("liveness = false", "liveness = true");
    // The callers think before closing: the server goes down while they do.
    let text = text.replace(
        r#"within = "10s" },
]"#,
        r#"within = "10s" },
  { think = "2s" },
  { close = 1000 },
]"#,
    );
    assert!(
        text.contains("think") && text.contains("liveness = true"),
        "{text}"
    );
    let outcome = common::run(&scenario("killed-late.toml", &text), Some(url), None).await;
    stop.cancel();
    dead.cancel();
    let sum = outcome.results.summary;
    assert_eq!(sum.verdict, Verdict::Inconclusive, "{:?}", sum.hint);
    let hint = sum.hint.unwrap_or_default();
    assert!(
        hint.starts_with("no oracle broke, but the server went down")
            && hint.contains("tried again after it refused"),
        "{hint}"
    );
}
