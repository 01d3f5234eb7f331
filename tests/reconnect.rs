//! A server that refuses a reconnect while it still cleans up the token's previous
//! session (a Close before its welcome), then takes the next try: a `reconnect` with a
//! `backoff` tries again, as real clients do, and the script goes on with the attempt
//! that got through. Without a backoff the refusal ends the script there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{scenario, spawn_server, TEST_SECRET};
use futures_util::StreamExt;
use stampede::model::{Cause, Verdict};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::Message;

/// Connections each token has made so far.
type Seen = Arc<Mutex<HashMap<String, u32>>>;

/// Serves one connection. A token's second connection (its first reconnect) is refused
/// after the 101 with 4409 "cleanup in progress", before any welcome; every other one is
/// greeted and answered with the five events per request. Counted, not timed: the same
/// on a busy machine.
async fn serve(seen: Seen, tcp: tokio::net::TcpStream) {
    let Some((mut ws, token)) = common::accept_bearer(tcp, |_| true).await else {
        return;
    };
    let nth = {
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(token.clone()).or_default();
        *n += 1;
        *n
    };
    if nth == 2 {
        common::close_and_drain(&mut ws, 4409, "cleanup in progress").await;
        return;
    }
    let user = common::unverified_sub(&token).unwrap_or_default();
    if !common::greet(&mut ws, &user).await {
        return;
    }
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            if common::answer_five(&mut ws, text.as_str(), &user)
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Three users, each doing one request, closing, reconnecting (with `backoff`, the
/// inside of the `reconnect` table after `after`) and doing one more.
fn resume_scenario(backoff: &str) -> String {
    format!(
        r#"
name = "resume"
seed = 5
duration = "20s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[oracles]
accepted = {{ message = "connection_established" }}

[[group]]
name = "mobile"
users = 3
steps = [
  {{ expect = "connection_established", within = "3s" }},
  {{ send = {{ type = "user_message", run_id = "a-{{{{conn}}}}", content = "hi" }} }},
  {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "3s" }},
  {{ close = 1000 }},
  {{ reconnect = {{ after = "0ms"{backoff} }} }},
  {{ expect = "connection_established", within = "3s" }},
  {{ send = {{ type = "user_message", run_id = "b-{{{{conn}}}}", content = "again" }} }},
  {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "3s" }},
  {{ close = 1000 }},
]
"#
    )
}

/// With a backoff, the refused reconnect is tried again and the script's second half runs
/// on the attempt that got through: every expectation met, no violation, the refusals
/// counted and said (it once went unretried: the second half never ran, and the
/// refused attempt's unmet welcome was a completeness violation). Without a backoff the
/// script ends at the refusal, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_refused_before_its_welcome_is_tried_again_by_its_backoff() {
    let seen = Seen::default();
    let (url, stop) = spawn_server(move |tcp| serve(seen.clone(), tcp)).await;
    let text = resume_scenario(", backoff = [\"20ms\", \"40ms\"]");
    let outcome = common::run(&scenario("resume.toml", &text), Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    let c = &sum.counters;
    assert_eq!((c.attempted, c.accepted, c.failed), (9, 6, 3), "{c:?}");
    assert_eq!(
        c.refused_by
            .get(&Cause::ServerClose(4409))
            .copied()
            .unwrap_or(0)
            + c.ended_by
                .get(&Cause::ServerClose(4409))
                .copied()
                .unwrap_or(0),
        3,
        "{c:?}"
    );
    assert_eq!(c.expect.expectations_met, 12, "{:?}", c.expect);
    assert_eq!(sum.violations.total, 0, "{:#?}", outcome.results.violations);
    assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains(
            "3 attempts not accepted (server_close_4409 ×3) were tried again by the \
             `reconnect` backoff"
        ),
        "{hint}"
    );

    let seen = Seen::default();
    let (url, stop) = spawn_server(move |tcp| serve(seen.clone(), tcp)).await;
    let outcome = common::run(
        &scenario("once.toml", &resume_scenario("")),
        Some(url),
        None,
    )
    .await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.counters.attempted, 6, "{:?}", sum.counters);
    assert_eq!(
        sum.counters.expect.expectations_met, 6,
        "{:?}",
        sum.counters.expect
    );
    assert_ne!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
}

/// When each token's last connection ended, for [`serve_with_cleanup`].
type Ended = Arc<Mutex<HashMap<String, std::time::Instant>>>;

/// How long [`serve_with_cleanup`] keeps a session after its connection ends.
const CLEANUP: std::time::Duration = std::time::Duration::from_millis(300);

/// A server that releases a session [`CLEANUP`] after its connection ends, by design (a
/// store write after the Close): a reconnect of the token before then is refused with
/// HTTP 409 "in use"; otherwise it greets and answers as [`serve`] does.
async fn serve_with_cleanup(ended: Ended, tcp: tokio::net::TcpStream) {
    let held = |token: &str| {
        let ended = ended.lock().unwrap();
        let busy = ended.get(token).is_some_and(|at| at.elapsed() < CLEANUP);
        busy.then_some(409)
    };
    let Some((mut ws, token)) = common::accept_bearer_unless(tcp, held).await else {
        return;
    };
    let user = common::unverified_sub(&token).unwrap_or_default();
    if common::greet(&mut ws, &user).await {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                if common::answer_five(&mut ws, text.as_str(), &user)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    ended
        .lock()
        .unwrap()
        .insert(token, std::time::Instant::now());
}

/// A reconnect refused "in use" right after a clean close is the finding "a reconnect
/// refused because cleanup lags" (liveness), backoff or not; declared as the server's
/// design (`liveness = { cleanup = "2s" }`), it is none, and the probe phase waits the
/// cleanup out before it tries the tokens again (it once probed at once, and read the
/// session still being released as one leaked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_cleanup_after_a_clean_close_is_no_leak() {
    let backoff = ", backoff = [\"400ms\", \"800ms\"]";
    let declared = resume_scenario(backoff).replace(
        "accepted = { message = \"connection_established\" }",
        "accepted = { message = \"connection_established\" }\nliveness = { cleanup = \"2s\" }",
    );
    assert!(declared.contains("cleanup = \"2s\""), "{declared}");
    for (text, declared) in [(declared, true), (resume_scenario(backoff), false)] {
        let ended = Ended::default();
        let (url, stop) = spawn_server(move |tcp| serve_with_cleanup(ended.clone(), tcp)).await;
        let outcome = common::run(&scenario("cleanup.toml", &text), Some(url), None).await;
        stop.cancel();
        let sum = &outcome.results.summary;
        // Each reconnect came at once, inside the cleanup, and was refused; its retry got
        // through: every script ran whole.
        assert!(
            sum.counters.refused_by.get(&Cause::Http(409)).copied() >= Some(3),
            "{:?}",
            sum.counters
        );
        assert_eq!(
            sum.counters.expect.expectations_met, 12,
            "{:?}",
            sum.counters.expect
        );
        let leaks = sum.violations.of(stampede::model::OracleKind::Liveness);
        if declared {
            assert_eq!(leaks, 0, "{:#?}", outcome.results.violations);
            assert_eq!(sum.probe.refused, 0, "{:?}", sum.probe);
            assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
        } else {
            assert!(leaks >= 3, "{:#?}", outcome.results.violations);
        }
    }
}

/// Greets every connection, then reads until it ends.
async fn greet_and_wait(tcp: tokio::net::TcpStream) {
    let Some((mut ws, token)) = common::accept_bearer(tcp, |_| true).await else {
        return;
    };
    let user = common::unverified_sub(&token).unwrap_or_default();
    if common::greet(&mut ws, &user).await {
        while let Some(Ok(_)) = ws.next().await {}
    }
}

/// A long reconnect loop keeps each connection's first and latest attempts, and counts
/// the rest exactly: a connection's memory follows the configuration, not how long it
/// loops (every attempt was kept: ~0.8 KB each, 66 MB at 40,500 attempts of 20 users).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_reconnect_loop_keeps_a_bounded_number_of_attempts_and_counts_all() {
    const USERS: u64 = 4;
    const LOOPS: u64 = 600;
    let (url, stop) = spawn_server(greet_and_wait).await;
    let text = format!(
        r#"
name = "loop"
seed = 5
duration = "60s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[oracles]
accepted = {{ message = "connection_established" }}

[[group]]
name = "loopers"
users = {USERS}
steps = [
  {{ expect = "connection_established", within = "3s" }},
  {{ repeat = {LOOPS}, steps = [
    {{ close = 1000 }},
    {{ reconnect = {{ after = "0ms" }} }},
    {{ expect = "connection_established", within = "3s" }},
  ] }},
  {{ close = 1000 }},
]
"#
    );
    let outcome = common::run(&scenario("loop.toml", &text), Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    let c = &sum.counters;
    let made = USERS * (LOOPS + 1);
    assert_eq!((c.attempted, c.accepted), (made, made), "{c:?}");
    assert_eq!(
        c.ended_by
            .get(&Cause::ClientClose(1000))
            .copied()
            .unwrap_or(0),
        made,
        "{c:?}"
    );
    assert_eq!(c.expect.expectations_met, made, "{:?}", c.expect);
    let kept = USERS
        * (stampede::model::ATTEMPTS_KEPT_FIRST + stampede::model::ATTEMPTS_KEPT_LATEST) as u64;
    assert_eq!(c.attempts_not_kept, made - kept, "{c:?}");
    assert_eq!(sum.violations.total, 0, "{:#?}", outcome.results.violations);
    assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
    let mut console = Vec::new();
    stampede::report::render(sum, &mut console).unwrap();
    let console = String::from_utf8(console).unwrap();
    assert!(
        console.contains(&format!(
            "{} attempts of a long reconnect loop",
            made - kept
        )),
        "{console}"
    );
}
