//! A correct server with an idle timeout: it closes a connection that sent it nothing for a
//! while (Close 1000 or 1001, "idle timeout"), here in the client's long `think` between
//! two request/answer turns. Declared in `[oracles] idle_timeout`, such a close is its
//! policy: counted (`closed_idle`), the script's remaining steps not run and no finding.
//! Undeclared, it stays a finding (a server closing a healthy connection mid-script is
//! what river #205's stale grace timer does), and the hint says how to declare it. A close
//! that comes sooner than the declared idle time, or while an answer is owed, stays a
//! finding even declared.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{scenario, spawn_server, TEST_SECRET};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use stampede::model::{Cause, OracleKind, Verdict};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// How the fake server behaves.
#[derive(Clone, Copy)]
struct Idle {
    /// It closes a connection that sent it nothing for this long...
    after: Duration,
    /// ...with this code and `reason` ("idle timeout", or none: a bare 1001).
    code: u16,
    reason: &'static str,
    /// It answers this many requests per connection, and ignores the later ones.
    answers: usize,
    /// Its idle timer runs only once the client has sent this many messages.
    timer_from: usize,
    /// It says goodbye (`{"type":"idle_timeout"}`) right before its idle Close, as Slack's
    /// RTM sends `goodbye`.
    goodbye: bool,
    /// It pushes `{"type":"heartbeat"}` this often while the client is silent, and its idle
    /// timer counts the client's silence only (Phoenix's: the client must heartbeat).
    beat: Option<Duration>,
}

/// Serves one connection: greets, answers requests with the five events, and closes the
/// connection once the client has sent nothing for `idle.after`.
async fn serve(idle: Idle, tcp: tokio::net::TcpStream) {
    let Some((mut ws, token)) = common::accept_bearer(tcp, |_| true).await else {
        return;
    };
    let user = common::unverified_sub(&token).unwrap_or_default();
    let hello = json!({"type": "connection_established", "user_id": user});
    if ws
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut received = 0;
    loop {
        let limit = if received >= idle.timer_from {
            idle.after
        } else {
            Duration::MAX
        };
        match next_or_beat(&mut ws, limit, idle.beat).await {
            Err(_) => {
                if idle.goodbye {
                    let bye = json!({"type": "idle_timeout"}).to_string();
                    let _ = ws.send(Message::Text(bye.into())).await;
                }
                let frame = CloseFrame {
                    code: CloseCode::from(idle.code),
                    reason: idle.reason.into(),
                };
                let _ = ws.send(Message::Close(Some(frame))).await;
                // Until the client answers the Close.
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                received += 1;
                if received <= idle.answers
                    && common::answer_five(&mut ws, text.as_str(), &user)
                        .await
                        .is_err()
                {
                    return;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(_) => return,
        }
    }
}

/// The next frame from the client within `limit`, pushing a heartbeat every `beat`
/// meanwhile (the client's silence is what the limit measures); `Err` when it ran out.
async fn next_or_beat(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    limit: Duration,
    beat: Option<Duration>,
) -> Result<Option<Result<Message, tokio_tungstenite::tungstenite::Error>>, ()> {
    let deadline = tokio::time::Instant::now().checked_add(limit);
    loop {
        let until_beat = beat.unwrap_or(Duration::MAX);
        let wait = match deadline {
            Some(d) => until_beat.min(d.saturating_duration_since(tokio::time::Instant::now())),
            None => until_beat,
        };
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(frame) => return Ok(frame),
            Err(_) if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) => return Err(()),
            Err(_) => {
                let beat = json!({"type": "heartbeat"}).to_string();
                if ws.send(Message::Text(beat.into())).await.is_err() {
                    return Ok(None);
                }
            }
        }
    }
}

/// Three connections, each a request and its answer, a 3 s think, another request and
/// its answer; `oracles`: extra lines of `[oracles]`.
fn idle_scenario(name: &str, oracles: &str) -> String {
    scenario_with(name, oracles, "")
}

/// [`idle_scenario`] with `before_think` (steps, each ending with a comma) before its think.
fn scenario_with(name: &str, oracles: &str, before_think: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = 3
duration = "30s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[oracles]
identity = {{ field = "user_id" }}
{oracles}

[[group]]
name = "thinkers"
users = 3
arrival = {{ ramp = "200ms" }}
steps = [
  {{ expect = "connection_established", within = "5s" }},
  {{ send = {{ type = "user_message", run_id = "a-{{{{conn}}}}", content = "hi" }} }},
  {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "5s" }},
  {before_think}
  {{ think = "3s" }},
  {{ send = {{ type = "user_message", run_id = "b-{{{{conn}}}}", content = "again" }} }},
  {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "5s" }},
  {{ close = 1000 }},
]
"#
    )
}

/// Runs [`idle_scenario`] against a server behaving as `idle`.
async fn run_against(idle: Idle, name: &str, oracles: &str) -> stampede::results::Summary {
    run_scenario(idle, name, &idle_scenario(name, oracles)).await
}

/// Runs scenario `text` against a server behaving as `idle`.
async fn run_scenario(idle: Idle, name: &str, text: &str) -> stampede::results::Summary {
    let (url, stop) = spawn_server(move |tcp| serve(idle, tcp)).await;
    let s = scenario(&format!("{name}.toml"), text);
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    outcome.results.summary
}

/// Checks that each of the three connections lost its last steps (one completeness
/// violation each, the verdict VIOLATIONS) and gives the hint.
fn three_findings(sum: &stampede::results::Summary) -> String {
    assert_eq!(
        sum.violations.of(OracleKind::Completeness),
        3,
        "{:?}",
        sum.violations
    );
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    sum.hint.clone().unwrap_or_default()
}

const TWO_SECONDS: Idle = Idle {
    after: Duration::from_secs(2),
    code: 1001,
    reason: "idle timeout",
    answers: usize::MAX,
    timer_from: 0,
    goodbye: false,
    beat: None,
};

/// Declared, the server's close 2 s into the 3 s think is its idle policy: a clean run,
/// every connection closed idle and counted (summary, console, hint), its last steps
/// never run and no finding. A Close 1000 reads the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_idle_timeout_close_is_counted_never_a_violation() {
    for code in [1001, 1000] {
        let idle = Idle {
            code,
            ..TWO_SECONDS
        };
        let sum = run_against(idle, "declared", "idle_timeout = \"2s\"").await;
        let c = &sum.counters;
        assert_eq!((c.accepted, c.closed_idle), (3, 3), "{c:?}");
        assert_eq!(
            c.ended_by.get(&Cause::ServerClose(code)).copied(),
            Some(3),
            "{c:?}"
        );
        assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
        assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
        let hint = sum.hint.clone().unwrap_or_default();
        // How long they were idle, by our clock, is a few ms short of the server's 2 s.
        assert!(
            hint.contains("the server closed 3 connections idle for 2."),
            "{hint}"
        );
        assert!(
            hint.contains(&format!(
                "s (server_close_{code} ×3; declared `idle_timeout = \"2s\"`): its idle \
                 policy, counted as `closed_idle`"
            )),
            "{hint}"
        );
        let mut console = Vec::new();
        stampede::report::render(&sum, &mut console).unwrap();
        let console = String::from_utf8(console).unwrap();
        assert!(console.contains("closed idle  3 accepted"), "{console}");
    }
}

/// Declared, an idle close that came before every connection reached an `expect` no
/// connection ever opened (its think outlasts the declared timeout) is no finding, but the
/// run never asked what that step asks: inconclusive, naming the step, never clean. The
/// same closes after a step whose request was asked before the think stay clean (above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_idle_close_before_any_connection_reached_a_step_is_inconclusive() {
    let text = idle_scenario("unreached", "idle_timeout = \"2s\"").replacen(
        r#"{ send = { type = "user_message", run_id = "b-{{conn}}", content = "again" } },
  { expect = "agent_started"#,
        r#"{ send = { type = "status", run_id = "b-{{conn}}" } },
  { expect = "status_report", correlate = "run_id", within = "5s" },
  { expect = "agent_started"#,
        1,
    );
    assert!(text.contains("status_report"), "{text}");
    let sum = run_scenario(TWO_SECONDS, "unreached", &text).await;
    assert_eq!(sum.counters.closed_idle, 3, "{:?}", sum.counters);
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::Inconclusive, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("no connection reached `expect status_report` of group `thinkers`"),
        "{hint}"
    );
    assert!(hint.contains("declared `idle_timeout = \"2s\"`"), "{hint}");
}

/// A server that pushes a heartbeat every 300 ms and times out a client silent for 2 s
/// (Phoenix's: the client must heartbeat): declared, its close in the think is its idle
/// policy, though its own heartbeats came until just before it. The client's silence is
/// what an idle timeout measures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_timeout_on_client_silence_is_policy_whatever_the_server_pushed() {
    let idle = Idle {
        beat: Some(Duration::from_millis(300)),
        ..TWO_SECONDS
    };
    let sum = run_against(idle, "beats", "idle_timeout = \"2s\"").await;
    let c = &sum.counters;
    assert_eq!((c.accepted, c.closed_idle), (3, 3), "{c:?}");
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations.first);
    assert_eq!(
        sum.verdict,
        stampede::model::Verdict::Clean,
        "{:?}",
        sum.hint
    );
}

/// A server whose idle timeout closes with a code of its own (Discord's gateway: 4009
/// "session timed out") is its policy once `idle_close` names the code; with the default
/// codes (1000, 1001) the same close stays a finding, whatever `idle_timeout` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_close_with_a_declared_code_of_its_own_is_its_policy() {
    let discord = Idle {
        code: 4009,
        reason: "idle timeout",
        ..TWO_SECONDS
    };
    let declared = run_against(
        discord,
        "own-code",
        "idle_timeout = \"2s\"\nidle_close = [4009]",
    )
    .await;
    assert_eq!(declared.counters.closed_idle, 3, "{:?}", declared.counters);
    assert_eq!(declared.violations.total, 0, "{:?}", declared.violations);
    assert_eq!(declared.verdict, Verdict::Clean, "{:?}", declared.hint);
    let hint = declared.hint.clone().unwrap_or_default();
    assert!(hint.contains("(server_close_4009 ×3; declared"), "{hint}");
    let default_codes = run_against(discord, "default-codes", "idle_timeout = \"2s\"").await;
    assert_eq!(
        default_codes.counters.closed_idle, 0,
        "{:?}",
        default_codes.counters
    );
    assert_eq!(
        default_codes.violations.of(OracleKind::Completeness),
        3,
        "{:?}",
        default_codes.violations
    );
    assert_eq!(
        default_codes.verdict,
        Verdict::Violations,
        "{:?}",
        default_codes.hint
    );
    // Undeclared altogether, the hint suggests the timeout and the code together.
    let undeclared = run_against(discord, "undeclared-code", "").await;
    assert_eq!(
        undeclared.verdict,
        Verdict::Violations,
        "{:?}",
        undeclared.hint
    );
    let hint = undeclared.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("(server_close_4009 ×3) with nothing pending: if it closes idle connections by policy, add `idle_timeout = \""),
        "{hint}"
    );
    // Every finding is on such a connection: the policy to declare comes before the hunt
    // (it read "…; hunt for a repro; the server closed 3 connections idle …").
    assert!(
        hint.contains(
            "every one is on a connection the server closed after a silence, as an idle \
             timeout does (see below): declare it if that is the server's policy; if not, \
             hunt for a repro"
        ) && !hint.contains("written; hunt for a repro"),
        "{hint}"
    );
    assert!(
        hint.contains("\"` and `idle_close = [1000, 1001, 4009]` to `[oracles]`"),
        "{hint}"
    );
    // Past the declared idle time with nothing owed: the hint says how to declare the code.
    let hint = default_codes.hint.clone().unwrap_or_default();
    assert!(
        hint.contains(
            "(server_close_4009 ×3), past the declared `idle_timeout = \"2s\"` but \
                       with a code `idle_close` does not list: if that is its idle timeout, add \
                       `idle_close = [1000, 1001, 4009]`"
        ),
        "{hint}"
    );
}

/// A server whose idle timeout closes with 1008 (policy violation, which `reject.close`
/// lists by default as a refusal of the token): undeclared, the hint suggests the timeout
/// with 1008 in `idle_close`; declared as `idle_close = [1008]` alone (the default
/// `reject.close` gives it up), its policy, clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_close_with_1008_reads_as_an_idle_timeout_and_declares_alone() {
    let policy = Idle {
        code: 1008,
        reason: "idle timeout",
        ..TWO_SECONDS
    };
    let undeclared = run_against(policy, "undeclared-1008", "").await;
    assert_eq!(
        undeclared.verdict,
        Verdict::Violations,
        "{:?}",
        undeclared.hint
    );
    let hint = undeclared.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("(server_close_1008 ×3) with nothing pending: if it closes idle connections by policy, add `idle_timeout = \"")
            && hint.contains("\"` and `idle_close = [1000, 1001, 1008]` to `[oracles]`"),
        "{hint}"
    );
    let declared = run_against(
        policy,
        "declared-1008",
        "idle_timeout = \"2s\"\nidle_close = [1008]",
    )
    .await;
    assert_eq!(declared.counters.closed_idle, 3, "{:?}", declared.counters);
    assert_eq!(declared.verdict, Verdict::Clean, "{:?}", declared.hint);
}

/// Undeclared, the same closes stay findings (the steps they cut off), and the hint says
/// they read as one idle timeout and how to declare it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeclared_idle_timeout_close_is_a_finding_and_the_hint_says_how_to_declare_it() {
    let sum = run_against(TWO_SECONDS, "undeclared", "").await;
    assert_eq!(sum.counters.closed_idle, 0, "{:?}", sum.counters);
    let hint = three_findings(&sum);
    assert!(
        hint.contains("the server closed 3 connections idle for 2."),
        "{hint}"
    );
    assert!(
        hint.contains(
            "s (server_close_1001 ×3) with nothing pending: if it closes idle connections by \
             policy, add `idle_timeout = \""
        ),
        "{hint}"
    );
    assert!(
        hint.contains(
            "\"` to `[oracles]`; or keep the connection busy during long thinks (a `ping` step, or the protocol's own heartbeat message where it has one, as a `send`)"
        ),
        "{hint}"
    );
    // The idle time it suggests: ours, a few ms short of the server's 2 s (rounded to
    // 100 ms, so "2s" unless the machine was slow to read the answer).
    let suggested = hint
        .split("add `idle_timeout = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default();
    assert!(["2s", "1900ms"].contains(&suggested), "{hint}");
}

/// Connections opened together and closed together by a bare 1001 (no reason) read as a
/// server going down, inconclusive: an idle timeout closes them so too, and the hint says
/// how to declare it beside the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_idle_close_of_connections_opened_together_names_the_idle_timeout_too() {
    let bare = Idle {
        reason: "",
        ..TWO_SECONDS
    };
    let text = idle_scenario("bare", "")
        .replace(r#"arrival = { ramp = "200ms" }"#, r#"arrival = "burst""#);
    let sum = run_scenario(bare, "bare", &text).await;
    let hint = sum.hint.clone().unwrap_or_default();
    assert_eq!(sum.verdict, Verdict::Inconclusive, "{hint}");
    assert!(
        hint.contains("going away all at once")
            && hint.contains("; or an idle timeout: the server closed 3 connections idle for"),
        "{hint}"
    );
    assert!(hint.contains("add `idle_timeout = \""), "{hint}");
}

/// A close well before the declared idle time (300 ms into the think, as river #205's
/// stale grace timer closes a healthy connection) is no idle policy: still a finding, no
/// `closed_idle`, and the hint says it came too soon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_sooner_than_the_declared_idle_timeout_is_still_a_violation() {
    let early = Idle {
        after: Duration::from_millis(300),
        code: 1000,
        reason: "idle timeout",
        answers: usize::MAX,
        timer_from: 0,
        goodbye: false,
        beat: None,
    };
    let sum = run_against(early, "early", "idle_timeout = \"2s\"").await;
    assert_eq!(sum.counters.closed_idle, 0, "{:?}", sum.counters);
    let hint = three_findings(&sum);
    assert!(
        hint.contains("sooner than the declared `idle_timeout = \"2s\"`: not its idle policy"),
        "{hint}"
    );
    assert!(!hint.contains("add `idle_timeout"), "{hint}");
}

/// A server that leaves the second request unanswered and closes 4 s later (its idle
/// timeout, past the declared 2 s) was not idle: it owed an answer. That close loses the
/// answer (a completeness violation), never the idle policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_close_while_an_answer_is_owed_is_still_a_violation() {
    let unanswered = Idle {
        after: Duration::from_secs(4),
        code: 1001,
        reason: "idle timeout",
        answers: 1,
        timer_from: 0,
        goodbye: false,
        beat: None,
    };
    let sum = run_against(unanswered, "owed", "idle_timeout = \"2s\"").await;
    assert_eq!(sum.counters.closed_idle, 0, "{:?}", sum.counters);
    assert_eq!(
        sum.violations.of(OracleKind::Completeness),
        3,
        "{:?}",
        sum.violations
    );
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
}

/// Our own sends are use too: a note the client sends 1.5 s into a think (no answer
/// wanted), then a server that closes 1 s after it, 2.5 s after its last answer. The
/// connection was idle 1 s, not 2.5 s: sooner than the declared 2 s, so a finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_soon_after_our_own_send_is_no_idle_timeout() {
    let after_note = Idle {
        after: Duration::from_secs(1),
        code: 1000,
        reason: "idle timeout",
        answers: 1,
        timer_from: 2,
        goodbye: false,
        beat: None,
    };
    let note = r#"{ think = "1500ms" },
  { send = { type = "note", content = "still here" } },"#;
    let text = scenario_with("note", "idle_timeout = \"2s\"", note);
    let sum = run_scenario(after_note, "note", &text).await;
    assert_eq!(sum.counters.closed_idle, 0, "{:?}", sum.counters);
    assert_eq!(
        sum.violations.of(OracleKind::Completeness),
        3,
        "{:?}",
        sum.violations
    );
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("idle for only 1.0 s (server_close_1000 ×3), sooner than"),
        "{hint}"
    );
}

/// A server whose idle timer starts only with the second request (a timer armed late,
/// as river #205's is left over from an earlier connection) lets each connection sit
/// silent for 3 s, then closes it 2 s into a later think. No idle timeout closes after 2 s
/// and lets 3 s pass: the closes stay findings, and the hint, which once suggested
/// declaring `idle_timeout = "2s"` and so hiding the bug, says why they are none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_close_after_a_longer_silence_survived_is_no_idle_timeout() {
    let armed_late = Idle {
        after: Duration::from_secs(2),
        code: 1000,
        reason: "idle timeout",
        answers: usize::MAX,
        timer_from: 2,
        goodbye: false,
        beat: None,
    };
    let earlier = r#"{ think = "3s" },
  { send = { type = "user_message", run_id = "c-{{conn}}", content = "more" } },
  { expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "5s" },"#;
    let text = scenario_with("armed-late", "", earlier);
    let sum = run_scenario(armed_late, "armed-late", &text).await;
    let hint = three_findings(&sum);
    assert!(!hint.contains("add `idle_timeout"), "{hint}");
    assert!(
        hint.contains("had stayed open through longer silences (3.0 s at the most)"),
        "{hint}"
    );
}

/// A Close read after a `pause_reads` may have come as the pause began: the server here
/// closes 300 ms after its answer, while the client is not reading for 3 s. Judged by
/// when it was read, the connection looked idle 3 s, past the declared 2 s; it was idle
/// for at most the time before the pause, so the close stays a finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_read_after_a_pause_is_timed_from_the_pause() {
    let early = Idle {
        after: Duration::from_millis(300),
        code: 1000,
        reason: "idle timeout",
        answers: usize::MAX,
        timer_from: 0,
        goodbye: false,
        beat: None,
    };
    let pause = r#"{ pause_reads = "3s" },"#;
    let text = scenario_with("paused", "idle_timeout = \"2s\"", pause);
    let sum = run_scenario(early, "paused", &text).await;
    assert_eq!(sum.counters.closed_idle, 0, "{:?}", sum.counters);
    assert_eq!(
        sum.violations.of(OracleKind::Completeness),
        3,
        "{:?}",
        sum.violations
    );
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
}

/// A goodbye message right before the idle Close is the server announcing it, not use:
/// declared, the close is still its idle policy, timed from the answer before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goodbye_right_before_the_idle_close_is_no_use() {
    let idle = Idle {
        goodbye: true,
        beat: None,
        ..TWO_SECONDS
    };
    let sum = run_against(idle, "goodbye", "idle_timeout = \"2s\"").await;
    let c = &sum.counters;
    assert_eq!((c.accepted, c.closed_idle), (3, 3), "{c:?}");
    assert_eq!(sum.violations.total, 0, "{:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::Clean, "{:?}", sum.hint);
}

/// Undeclared, a server that times out a silent client with a reason blaming a missed
/// heartbeat (Phoenix's: the client must beat) closed connections the client let die:
/// no race to hunt (it read VIOLATIONS, "declare it if that is the server's policy; if
/// not, hunt for a repro", and a hunt filed a repro), and no idle policy to declare:
/// inconclusive, saying how to beat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_for_a_missed_heartbeat_after_the_scripts_silence_are_no_race() {
    let idle = Idle {
        code: 1000,
        reason: "heartbeat timeout",
        ..TWO_SECONDS
    };
    let sum = run_against(idle, "unbeaten", "").await;
    assert!(sum.violations.total > 0, "{:?}", sum.violations);
    assert_eq!(sum.verdict, Verdict::Inconclusive, "{:?}", sum.hint);
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("closed for a missed heartbeat")
            && hint.contains("send it through the script's pauses"),
        "{hint}"
    );
    assert!(!hint.contains("idle_timeout ="), "{hint}");
}
