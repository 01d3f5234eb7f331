//! A hunt's find says whether it needs its timing: replayed with every send spaced out and
//! the connections started one after another, a race's window is never hit and the plan
//! runs clean, while a server that fails the script every time (or a script it turns
//! away every time) breaks the same way. The first is a race to shrink; the second is
//! none, whatever a hunt "confirmed".
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{accept_greeted, answer_five, chat_scenario, hunt_at, scenario, spawn_fake, Fault};
use futures_util::StreamExt;
use stampede::hunt::timing::{Timing, GAP};
use stampede::model::OracleKind;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// How long the windowed server below drops requests after its greeting: well under
/// [`GAP`], and far over what a client answering the greeting at once takes.
const NOT_READY: Duration = Duration::from_millis(80);

/// A golden-path server that is not ready for [`NOT_READY`] after its greeting and drops
/// what comes in that time without a word (race pattern: a message before the session is
/// ready); every later request gets its five events.
async fn serve_not_ready_at_first(tcp: tokio::net::TcpStream) {
    let Some((mut ws, user)) = accept_greeted(tcp).await else {
        return;
    };
    let ready = tokio::time::Instant::now() + NOT_READY;
    while let Some(Ok(frame)) = ws.next().await {
        if let Message::Text(text) = frame {
            if tokio::time::Instant::now() >= ready
                && answer_five(&mut ws, text.as_str(), &user).await.is_err()
            {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_dropped_while_the_server_is_not_ready_needs_its_timing() {
    assert!(NOT_READY * 3 < GAP);
    let (url, stop) = common::spawn_server(serve_not_ready_at_first).await;
    let s = scenario("not-ready.toml", &chat_scenario("not-ready", 2, 2));
    let (outcome, _) = hunt_at(&s, &url, Duration::from_secs(40), 2).await;
    stop.cancel();
    let found = outcome
        .found
        .expect("the first request of each connection is dropped");
    assert_eq!(found.repro.oracle, OracleKind::Completeness);
    assert!(found.confirmed(), "{}", found.rate);
    assert_eq!(
        found.timing,
        Timing::Needed { runs: 3 },
        "spaced out, every request was served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_server_never_sends_is_no_timing_race() {
    let (url, stop) = spawn_fake(Fault::DropEvent).await;
    let s = scenario("never.toml", &chat_scenario("never", 2, 2));
    let (outcome, _) = hunt_at(&s, &url, Duration::from_secs(40), 2).await;
    stop.cancel();
    let found = outcome.found.expect("tool_completed never comes");
    assert_eq!(found.repro.oracle, OracleKind::Completeness);
    assert!(found.confirmed(), "{}", found.rate);
    assert_eq!(
        found.timing,
        Timing::NotNeeded { every_time: true },
        "spaced out, it broke the same way"
    );
}
