//! A correct "newest connection wins" server: when a token connects again, it ends the
//! older, already accepted session with its own close code (4409 "session replaced")
//! before it serves the new one. At most one session per token, as exclusivity wants.
//! Declared in `[oracles] reject.replaced`, those closes are its policy: counted, what the
//! ended scripts still expected refused, never a violation. Undeclared, they stay lost
//! answers, and the hint says how to declare them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{scenario, spawn_server, TEST_SECRET};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use stampede::model::{Cause, OracleKind, Verdict};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// What a newcomer hands the older session of its token: it is told once that session
/// has sent its Close, and only then serves.
type Kick = oneshot::Sender<()>;

/// The live session of each token: its connection number and how to end it.
type Sessions = Arc<Mutex<HashMap<String, (u64, oneshot::Sender<Kick>)>>>;

/// Sessions of one server, and how it ends the older one.
#[derive(Clone)]
struct NewestWins {
    sessions: Sessions,
    next: Arc<AtomicU64>,
    code: u16,
    reason: &'static str,
    /// How long the server takes to upgrade (a session-store write before the 101): the
    /// handshakes of a token's two connections, opened 100 ms apart, overlap, so the run
    /// exercised what exclusivity judges.
    upgrade_after: std::time::Duration,
    /// How long the server takes over the first request of each connection (zero: it
    /// answers at once); a takeover meanwhile leaves it unanswered.
    first_answer_after: std::time::Duration,
    /// `None`: the newcomer waits until the older session has sent its Close. `Some(d)`:
    /// the newcomer is greeted at once, and `d` later the older session gets a last
    /// message ("session_replaced") and then its Close: both are served meanwhile.
    handover: Option<std::time::Duration>,
    /// One session per user (the token's `sub`) instead of one per token.
    by_user: bool,
    /// "Oldest connection wins": a newcomer whose token's session is live is closed with
    /// `code` and `reason` before its greeting (turned away, not a takeover).
    oldest_wins: bool,
    /// The older session is first told with an error event (`{"type":"error","code":
    /// "session_replaced"}`), and its Close follows 200 ms later: an answer it waited for
    /// is settled by the error, and a script that closes next crosses the server's Close.
    kick_error: bool,
}

impl NewestWins {
    /// Ends the older session of a token with `code` and `reason` before it serves the
    /// newcomer, answers every request at once, and upgrades after 400 ms.
    fn new(code: u16, reason: &'static str) -> Self {
        NewestWins {
            sessions: Arc::default(),
            next: Arc::default(),
            code,
            reason,
            upgrade_after: std::time::Duration::from_millis(400),
            first_answer_after: Default::default(),
            handover: None,
            by_user: false,
            oldest_wins: false,
            kick_error: false,
        }
    }

    /// Serves on a loopback port: its URL and how to stop it.
    async fn spawn(self) -> (String, tokio_util::sync::CancellationToken) {
        spawn_server(move |tcp| serve(self.clone(), tcp)).await
    }
}

/// The fake golden-path server with a "newest connection wins" policy, ending an older
/// session with `code` and `reason`; it answers each connection's first request after
/// `first_answer_after`.
async fn spawn_newest_wins(
    code: u16,
    reason: &'static str,
    first_answer_after: std::time::Duration,
) -> (String, tokio_util::sync::CancellationToken) {
    let server = NewestWins {
        first_answer_after,
        ..NewestWins::new(code, reason)
    };
    server.spawn().await
}

/// [`spawn_newest_wins`] (4409, at once) keeping one session per user: a connection of
/// the user with another token ends the older session all the same.
async fn spawn_newest_wins_per_user() -> (String, tokio_util::sync::CancellationToken) {
    let server = NewestWins {
        by_user: true,
        ..NewestWins::new(4409, "session replaced")
    };
    server.spawn().await
}

/// [`spawn_newest_wins`] with a handover: the newcomer is greeted first, and the older
/// session is told and closed (4409) `after` later.
async fn spawn_handover(
    after: std::time::Duration,
) -> (String, tokio_util::sync::CancellationToken) {
    let server = NewestWins {
        handover: Some(after),
        ..NewestWins::new(4409, "session replaced")
    };
    server.spawn().await
}

/// Serves one connection: takes its token's session over (ending the older one first),
/// greets, answers every request with the five events, and ends with its own Close when
/// a newer connection of its token takes over.
async fn serve(server: NewestWins, tcp: tokio::net::TcpStream) {
    tokio::time::sleep(server.upgrade_after).await;
    let Some((mut ws, token)) = common::accept_bearer(tcp, |_| true).await else {
        return;
    };
    let user = common::unverified_sub(&token).unwrap_or_default();
    let key = if server.by_user { user.clone() } else { token };
    let id = server.next.fetch_add(1, Ordering::Relaxed);
    if server.oldest_wins && server.sessions.lock().unwrap().contains_key(&key) {
        common::close_and_drain(&mut ws, server.code, server.reason).await;
        return;
    }
    let (kick, mut kicked) = oneshot::channel::<Kick>();
    let older = server
        .sessions
        .lock()
        .unwrap()
        .insert(key.clone(), (id, kick));
    if let Some((_, older)) = older {
        let (closed, older_closed) = oneshot::channel();
        match server.handover {
            None => {
                if older.send(closed).is_ok() {
                    let _ = older_closed.await;
                }
            }
            // Greeted first (below); the older one is ended meanwhile.
            Some(after) => {
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = older.send(closed);
                });
            }
        }
    }
    let hello = json!({"type": "connection_established", "user_id": user});
    if ws
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    // The first request, while the server works on it.
    let mut owed: Option<(tokio::time::Instant, String)> = None;
    let mut first = !server.first_answer_after.is_zero();
    loop {
        let due = owed.as_ref().map(|(at, _)| *at);
        tokio::select! {
            newer = &mut kicked => {
                let Ok(closed) = newer else { return };
                if server.handover.is_some() {
                    let bye = json!({"type": "session_replaced"});
                    let _ = ws.send(Message::Text(bye.to_string().into())).await;
                }
                if server.kick_error {
                    let bye = json!({"type": "error", "code": "session_replaced"});
                    let _ = ws.send(Message::Text(bye.to_string().into())).await;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                let frame = CloseFrame {
                    code: CloseCode::from(server.code),
                    reason: server.reason.into(),
                };
                let _ = ws.send(Message::Close(Some(frame))).await;
                let _ = closed.send(());
                // Until the client answers the Close.
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)),
                if due.is_some() =>
            {
                let request = owed.take().map(|(_, request)| request).unwrap_or_default();
                if common::answer_five(&mut ws, &request, &user).await.is_err() {
                    break;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) if first => {
                    first = false;
                    let at = tokio::time::Instant::now() + server.first_answer_after;
                    owed = Some((at, text.to_string()));
                }
                Some(Ok(Message::Text(text))) => {
                    if common::answer_five(&mut ws, text.as_str(), &user).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    let mut sessions = server.sessions.lock().unwrap();
    if sessions.get(&key).is_some_and(|(owner, _)| *owner == id) {
        sessions.remove(&key);
    }
}

/// Pairs of connections sharing a token, opened 100 ms apart (a ramp of 10 over 1 s):
/// the second takes the session over while the first is still in its script (thinking
/// between two requests), so the first is the one the server ends. `reject`: the inside of
/// `[oracles] reject`, if any.
fn takeover_scenario(name: &str, reject: Option<&str>) -> String {
    let reject = reject.map_or(String::new(), |r| format!("reject = {{ {r} }}\n"));
    format!(
        r#"
name = "{name}"
seed = 7
duration = "30s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[oracles]
identity = {{ field = "user_id" }}
exclusive = {{ max_live = 1 }}
liveness = {{ grace = "500ms" }}
{reject}
[[group]]
name = "sessions"
users = 10
token = {{ share = 2 }}
arrival = {{ ramp = "1s" }}
steps = [
  {{ expect = "connection_established", within = "5s" }},
  {{ send = {{ type = "user_message", run_id = "a-{{{{conn}}}}", content = "hi" }} }},
  {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "3s" }},
  {{ think = "fixed(1500ms)" }},
  {{ send = {{ type = "user_message", run_id = "b-{{{{conn}}}}", content = "again" }} }},
  {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "3s" }},
  {{ close = 1000 }},
]
"#
    )
}

/// [`takeover_scenario`] with the takeover declared, for 5 users of 2 connections each,
/// every connection minting its own token, and `exclusive` as given.
fn per_user_scenario(exclusive: &str) -> String {
    let text = takeover_scenario("per-user", Some("replaced = [4409]"))
        .replace(
            "users = 10\ntoken = { share = 2 }",
            "users = 5\nconnections_per_user = 2\ntoken = \"per-connection\"",
        )
        .replace("exclusive = { max_live = 1 }", exclusive);
    assert!(
        text.contains("connections_per_user = 2") && text.contains(exclusive),
        "{text}"
    );
    text
}

/// Declared, the takeover closes are the server's policy: a clean run, every connection
/// accepted, one of each pair replaced and counted (summary, hint, console), and
/// exclusivity and liveness hold. The takeover comes while the older connection thinks
/// between its requests (its later steps never run: no "steps cut off" finding), or, when
/// the server is slow to answer a first request, while that answer is still owed (refused,
/// not missed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_takeover_close_is_counted_never_a_violation() {
    for (first_answer_after, refused) in [(0, 0), (1000, 5)] {
        let after = std::time::Duration::from_millis(first_answer_after);
        let (url, stop) = spawn_newest_wins(4409, "session replaced", after).await;
        let s = scenario(
            "takeover.toml",
            &takeover_scenario("takeover", Some("replaced = [4409]")),
        );
        let outcome = common::run(&s, Some(url), None).await;
        stop.cancel();
        declared_takeover_is_clean(&outcome.results.summary, refused);
    }
}

/// The checks of a run of [`takeover_scenario`] with the takeover declared, `refused` of
/// its expectations refused.
fn declared_takeover_is_clean(sum: &stampede::results::Summary, refused: u64) {
    let c = &sum.counters;
    // 5 tokens, each presented twice: the older of each pair was replaced.
    assert_eq!((c.accepted, c.replaced), (10, 5), "{c:?}");
    assert_eq!(
        c.ended_by.get(&Cause::ServerClose(4409)).copied(),
        Some(5),
        "{c:?}"
    );
    assert_eq!(c.expect.expectations_refused, refused, "{c:?}");
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains(
            "the server ended 5 connections because another connection of the same token or \
             user took over (server_close_4409 ×5, declared in `reject.replaced`)"
        ),
        "{hint}"
    );
    assert!(!hint.contains("reads as a takeover"), "declared: {hint}");
    let mut console = Vec::new();
    stampede::report::render(sum, &mut console).unwrap();
    let console = String::from_utf8(console).unwrap();
    assert!(
        console.contains("replaced     5 (a reject.replaced code"),
        "{console}"
    );
}

/// The takeover told first with an error event, which settles the answer the older
/// connection waited for; its script closes at once, and its Close crosses the server's
/// declared 4409: still the server's takeover (replaced, counted), and the run clean,
/// not "the server let none go: inconclusive".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_close_crossing_the_scripts_own_is_still_the_takeover() {
    let server = NewestWins {
        first_answer_after: std::time::Duration::from_millis(1000),
        kick_error: true,
        ..NewestWins::new(4409, "session replaced")
    };
    let (url, stop) = server.spawn().await;
    // The older connection closes right after its first answer (or the error in its place).
    let text = takeover_scenario("crossed", Some("replaced = [4409]"));
    let think = text.find("  { think").expect("the scenario thinks");
    let closed = format!("{}  {{ close = 1000 }},\n]\n", &text[..think]);
    let outcome = common::run(&scenario("crossed.toml", &closed), Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.counters.replaced, 5, "{:?}", sum.counters);
    // Listed by the server's code, not by the script's own Close it crossed.
    let ended_by = &sum.counters.ended_by;
    assert_eq!(
        ended_by.get(&Cause::ServerClose(4409)),
        Some(&5),
        "{ended_by:?}"
    );
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
}

/// A server keeping one session per user takes over from a connection of the user that
/// presents another token (each connection mints its own): declared, its policy all the
/// same. Without looking at the tokens' subjects, each older session counted as alone,
/// its takeover close a lost session: 5 violations on a correct server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_takeover_by_another_token_of_the_same_user_is_its_policy() {
    let (url, stop) = spawn_newest_wins_per_user().await;
    let text = per_user_scenario("exclusive = { max_live = 1 }");
    let outcome = common::run(&scenario("per-user.toml", &text), Some(url), None).await;
    stop.cancel();
    declared_takeover_is_clean(&outcome.results.summary, 0);
}

/// `exclusive = { max_live = 1, per = "user" }`: one session per user, whatever token each
/// connection presents. The server keeping one per user is clean; one that keeps one per
/// token (each connection minting its own, so it never takes over) served both of a user
/// at once: an exclusivity violation per user, named by user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_per_user_is_judged_across_a_users_tokens() {
    let text = per_user_scenario("exclusive = { max_live = 1, per = \"user\" }");
    let (url, stop) = spawn_newest_wins_per_user().await;
    let outcome = common::run(&scenario("per-user.toml", &text), Some(url), None).await;
    stop.cancel();
    declared_takeover_is_clean(&outcome.results.summary, 0);

    let (url, stop) = NewestWins::new(4409, "session replaced").spawn().await;
    let outcome = common::run(&scenario("per-user.toml", &text), Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.counters.replaced, 0, "{:?}", sum.counters);
    assert_eq!(
        sum.violations.of(OracleKind::Exclusivity),
        5,
        "{:?}",
        sum.violations
    );
    assert!(
        outcome
            .results
            .violations
            .iter()
            .filter(|v| v.oracle == OracleKind::Exclusivity)
            .all(|v| v.expected.contains("served at once for user user-")),
        "{:#?}",
        outcome.results.violations
    );
}

/// A takeover that greets the newcomer first and tells the older session a moment later
/// (a last message, then the declared close) serves both for that moment: its policy's
/// handover, no exclusivity violation. Without the handover rule, the older session's last
/// message, read 30 ms after the newcomer's acceptance, witnessed two sessions at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_takeover_that_greets_the_newcomer_first_is_no_exclusivity_violation() {
    let (url, stop) = spawn_handover(std::time::Duration::from_millis(30)).await;
    let s = scenario(
        "handover.toml",
        &takeover_scenario("handover", Some("replaced = [4409]")),
    );
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(
        (sum.counters.accepted, sum.counters.replaced),
        (10, 5),
        "{:?}",
        sum.counters
    );
    assert_eq!(
        sum.violations.of(OracleKind::Exclusivity),
        0,
        "{:?}",
        sum.violations
    );
    assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
}

/// Undeclared, a takeover close still loses what the ended connection's script expected
/// (a completeness violation, as before), and the hint suggests the declaration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeclared_takeover_close_is_a_finding_and_the_hint_says_how_to_declare_it() {
    let (url, stop) = spawn_newest_wins(4409, "session replaced", Default::default()).await;
    let s = scenario("undeclared.toml", &takeover_scenario("undeclared", None));
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.counters.replaced, 0, "{:?}", sum.counters);
    assert_eq!(
        sum.violations.of(OracleKind::Completeness),
        5,
        "{:?}",
        sum.violations
    );
    assert_eq!(sum.violations.of(OracleKind::Exclusivity), 0);
    assert_eq!(sum.violations.of(OracleKind::Liveness), 0);
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains(
            "reads as a takeover by another connection of the same token (server_close_4409 \
             ×5, reason \"session replaced\")"
        ),
        "{hint}"
    );
    assert!(
        hint.contains("add `replaced = [4409]` to `[oracles] reject`"),
        "{hint}"
    );

    // A code of its own that says nothing, with a reason that does.
    let (url, stop) = spawn_newest_wins(4000, "logged in elsewhere", Default::default()).await;
    let s = scenario("elsewhere.toml", &takeover_scenario("elsewhere", None));
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let hint = outcome.results.summary.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("add `replaced = [4000]` to `[oracles] reject`"),
        "{hint}"
    );
}

/// A server that keeps the older session and turns the newcomer away before greeting it
/// (4409 "already connected"): no takeover, and no hint says to declare one (`replaced`
/// would have the verdict read the newcomers' refusals as older sessions ended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_turned_away_as_already_connected_reads_as_no_takeover() {
    // One session per user, each connection with a token of its own: the scenario's
    // exclusivity (per token) does not say the newcomer is over a limit.
    let server = NewestWins {
        oldest_wins: true,
        by_user: true,
        ..NewestWins::new(4409, "already connected")
    };
    let (url, stop) = server.spawn().await;
    let text = takeover_scenario("oldest", None).replace(
        "users = 10\ntoken = { share = 2 }",
        "users = 5\nconnections_per_user = 2\ntoken = \"per-connection\"",
    );
    assert!(text.contains("connections_per_user = 2"), "{text}");
    let s = scenario("oldest.toml", &text);
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.counters.replaced, 0, "{:?}", sum.counters);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        sum.counters.failed + sum.counters.rejected > 0,
        "newcomers turned away: {:?}",
        sum.counters
    );
    assert!(!hint.contains("reads as a takeover"), "{hint}");
    assert!(!hint.contains("replaced = [4409]"), "{hint}");
}

/// A server that ends every session with 4409 "session replaced" when its first request
/// comes, unanswered, though no other connection of the token exists: a lost session
/// that only calls itself a takeover.
async fn drop_as_replaced(tcp: tokio::net::TcpStream) {
    let Some((mut ws, _)) = common::accept_greeted(tcp).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(_) = message {
            common::close_and_drain(&mut ws, 4409, "session replaced").await;
            return;
        }
    }
}

/// A connection whose token no other connection presents was taken over by nobody: a
/// declared `replaced` close ending it is a lost session (its unanswered request a
/// completeness violation, once a clean run), and undeclared, no hint suggests declaring
/// it (it once did, and a user who followed it hid every loss).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_close_on_a_token_no_other_connection_presents_is_a_loss() {
    let (url, stop) = spawn_server(drop_as_replaced).await;
    for reject in [Some("replaced = [4409]"), None] {
        let text = takeover_scenario("alone", reject)
            .replace("token = { share = 2 }", "token = \"per-connection\"");
        assert!(text.contains("per-connection"), "{text}");
        let outcome = common::run(&scenario("alone.toml", &text), Some(url.clone()), None).await;
        let sum = &outcome.results.summary;
        assert_eq!(sum.counters.replaced, 0, "{:?}", sum.counters);
        assert_eq!(
            sum.violations.of(OracleKind::Completeness),
            10,
            "{:?}",
            sum.violations
        );
        assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
        let hint = sum.hint.clone().unwrap_or_default();
        assert!(!hint.contains("took over"), "{reject:?}: {hint}");
        assert!(!hint.contains("reads as a takeover"), "{reject:?}: {hint}");
    }
    stop.cancel();
}
