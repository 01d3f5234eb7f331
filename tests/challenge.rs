//! A server that asks for the token in band only after it greets (Home Assistant's
//! `auth_required`, a challenge-response login): it upgrades anyone, sends its challenge
//! [`CHALLENGE_AFTER`] later, and closes 4001 "auth before challenge" a connection whose
//! first message came before it. With `[auth] placement = { first_message = ..., after =
//! "auth_required" }` every connection answers the challenge and is served; the same
//! message sent with the upgrade is refused on every connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{scenario, spawn_server, TEST_BOUND, TEST_SECRET};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stampede::model::Verdict;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// How long after the upgrade the server sends its challenge: long enough that a login
/// sent with the upgrade (the client writes it as soon as the 101 is read) arrives within
/// it on a busy machine too.
const CHALLENGE_AFTER: Duration = Duration::from_millis(500);

/// The next text frame as JSON; `None` when the connection ended (or `bound` ran out).
async fn next_json(ws: &mut common::ServerWs, bound: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(bound, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(text.as_str()).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// The tokens a [`serve`] that takes each token once has taken.
type Taken = std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

async fn serve(tcp: tokio::net::TcpStream) {
    serve_taking(tcp, None).await
}

/// [`serve`]; with `taken`, a login before the challenge is read after it (as Home
/// Assistant does), and a token presented again (a session still held: a leak the
/// liveness probe after the run must see) is refused, `auth_invalid` then Close 1008.
async fn serve_taking(tcp: tokio::net::TcpStream, taken: Option<Taken>) {
    // The token comes in band: the upgrade carries none, and any is taken.
    let Some((mut ws, _)) = common::accept_bearer(tcp, |_| true).await else {
        return;
    };
    // Anything the client says before the challenge is a login out of turn, unless the
    // server reads it after (`taken`'s).
    let early = match &taken {
        Some(_) => {
            tokio::time::sleep(CHALLENGE_AFTER).await;
            None
        }
        None => tokio::time::timeout(CHALLENGE_AFTER, ws.next()).await.ok(),
    };
    if let Some(Some(Ok(_))) = early {
        let frame = CloseFrame {
            code: CloseCode::from(4001),
            reason: "auth before challenge".into(),
        };
        let _ = ws.close(Some(frame)).await;
        let _ = tokio::time::timeout(TEST_BOUND, ws.next()).await;
        return;
    }
    let challenge = json!({"type": "auth_required"}).to_string();
    if ws.send(Message::Text(challenge.into())).await.is_err() {
        return;
    }
    let Some(auth) = next_json(&mut ws, TEST_BOUND).await else {
        return;
    };
    // A JWT's three parts, in the field the protocol names.
    let jwt = auth["access_token"].as_str().unwrap_or_default();
    if auth["type"] != "auth" || jwt.split('.').count() != 3 {
        let refused = json!({"type": "auth_invalid"}).to_string();
        let _ = ws.send(Message::Text(refused.into())).await;
        let _ = ws.close(None).await;
        return;
    }
    let again = taken.is_some_and(|t| !t.lock().unwrap().insert(jwt.to_string()));
    if again {
        let refused = json!({"type": "auth_invalid"}).to_string();
        let _ = ws.send(Message::Text(refused.into())).await;
        let frame = CloseFrame {
            code: CloseCode::from(1008),
            reason: "session already open".into(),
        };
        let _ = ws.close(Some(frame)).await;
        let _ = tokio::time::timeout(TEST_BOUND, ws.next()).await;
        return;
    }
    let ok = json!({"type": "auth_ok"}).to_string();
    if ws.send(Message::Text(ok.into())).await.is_err() {
        return;
    }
    while let Some(msg) = next_json(&mut ws, TEST_BOUND).await {
        let echo = json!({"type": "echo", "id": msg["id"]}).to_string();
        if ws.send(Message::Text(echo.into())).await.is_err() {
            return;
        }
    }
}

/// Three users who log in in band, then make one request; `after`: what the placement
/// adds to its `first_message` table.
fn text(after: &str) -> String {
    format!(
        r#"
name = "challenged"
duration = "10s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}
placement = {{ first_message = {{ type = "auth", access_token = "{{{{token}}}}" }}{after} }}

[oracles]
accepted = {{ message = "auth_ok" }}

[[group]]
name = "g"
users = 3
arrival = {{ ramp = "50ms" }}
steps = [
  {{ expect = "auth_ok", within = "2s" }},
  {{ send = {{ type = "call", id = "{{{{conn}}}}" }} }},
  {{ expect = "echo", correlate = "id", within = "2s" }},
  {{ close = 1000 }},
]
"#
    )
}

async fn run(after: &str) -> stampede::results::Summary {
    let (url, stop) = spawn_server(serve).await;
    let s = scenario("challenged.toml", &text(after));
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    outcome.results.summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_message_after_the_challenge_is_answered_in_turn() {
    let sum = run(", after = \"auth_required\"").await;
    let c = &sum.counters;
    assert_eq!(sum.verdict, Verdict::Clean, "{:?} {c:?}", sum.hint);
    assert_eq!(c.accepted, 3, "{c:?}");
    assert_eq!(c.expect.expectations_met, 6, "{c:?}");
    // The login and the request on each connection: the login counts as a send.
    assert_eq!(c.messages_sent, 6, "{c:?}");
    // The probe after the run waits for the challenge too: every token taken again.
    let p = &sum.probe;
    assert_eq!((p.tokens, p.refused, p.inconclusive), (3, 0, 0), "{p:?}");

    // Sent with the upgrade, the login comes out of turn: refused everywhere, no run.
    let sum = run("").await;
    assert_ne!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
    assert_eq!(sum.counters.accepted, 0, "{:?}", sum.counters);
    let closed = sum
        .counters
        .refused_by
        .get(&stampede::model::Cause::ServerClose(4001));
    assert_eq!(closed, Some(&3), "{:?}", sum.counters.refused_by);
}

/// The liveness probe after the run reads acceptance as the run does: by the `auth_ok`
/// message, not by the greeting that comes first. A server that refuses every token
/// presented again (a session it still holds) is a leak the probe sees, with the login
/// sent at once or after the challenge; taken as accepted, the greeting hid it and the
/// run read clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_after_the_run_waits_for_the_acceptance_message() {
    for after in ["", ", after = \"auth_required\""] {
        let taken: Taken = Default::default();
        let (url, stop) = spawn_server(move |tcp| serve_taking(tcp, Some(taken.clone()))).await;
        let s = scenario("challenged.toml", &text(after));
        let outcome = common::run(&s, Some(url), None).await;
        stop.cancel();
        let sum = outcome.results.summary;
        let p = &sum.probe;
        assert_eq!((p.tokens, p.refused), (3, 3), "{after:?}: {p:?}");
        assert_eq!(
            sum.verdict,
            Verdict::Violations,
            "{after:?}: {:?}",
            sum.hint
        );
        assert!(
            sum.violations
                .by_oracle
                .contains_key(&stampede::model::OracleKind::Liveness),
            "{after:?}: {:?}",
            sum.violations
        );
    }
}

/// A challenge that never comes (`after` misspelled) leaves every login unsent: the run
/// counts those attempts, and its verdict says first that the login waited for a kind
/// that never came, rather than only that acceptance never came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_that_never_comes_is_named_first() {
    let sum = run(", after = \"auth_requird\"").await;
    assert_ne!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
    assert_eq!(sum.counters.logins_unsent, 3, "{:?}", sum.counters);
    let hint = sum.hint.unwrap_or_default();
    assert!(
        hint.starts_with(
            "the first message waits for the server's \"auth_requird\" ([auth] placement's \
             `after`), which never came on 3 attempts"
        ),
        "{hint}"
    );
}
