//! Protocols that are not "JSON objects with a string `type`": small in-process fakes
//! speaking each framing, each with a planted fault, against scenarios that use field
//! paths, kinds, record separators, field tests, captures and absences.
//!
//! Each fake answers the shapes its protocol uses (Phoenix v2 arrays, SignalR 0x1E records
//! with integer kinds, ActionCable type-less data frames, a subscribe/ack protocol whose
//! ids are captured). Every test runs the same scenario against the correct fake (clean)
//! and the faulty one (the violation that names the fault).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod common;

use common::{run, scenario, spawn_server, TEST_SECRET};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stampede::cli::error::{exit, of_run};
use stampede::model::{OracleKind, Verdict};
use stampede::run::RunOutcome;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Answers one received text frame with the frames to send back; `None` closes.
type Handler = dyn Fn(&str, &mut Conn) -> Option<Vec<String>> + Send + Sync;

/// Per-connection state of a fake.
#[derive(Default)]
struct Conn {
    joined: Vec<String>,
    subscriptions: Vec<String>,
    next: u32,
}

/// Starts a fake on loopback: `greeting` goes out after the upgrade, then `handler`
/// answers each text frame. Returns the URL and the stop token.
async fn spawn(greeting: Vec<String>, handler: Arc<Handler>) -> (String, CancellationToken) {
    spawn_server(move |tcp| serve(tcp, greeting.clone(), handler.clone())).await
}

/// One connection of a fake: the greeting, then `handler` answers each text frame.
async fn serve(tcp: tokio::net::TcpStream, greeting: Vec<String>, handler: Arc<Handler>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    for g in greeting {
        if ws.send(Message::Text(g.into())).await.is_err() {
            return;
        }
    }
    let mut conn = Conn::default();
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        let Some(out) = handler(text.as_str(), &mut conn) else {
            let _ = ws.close(None).await;
            return;
        };
        for frame in out {
            if ws.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
        }
    }
}

async fn run_against(name: &str, text: &str, url: String) -> RunOutcome {
    let s = scenario(name, text);
    run(&s, Some(url), None).await
}

/// Runs scenario `text` against a fake with no greeting that answers with `handler`.
async fn run_fake(handler: Arc<Handler>, name: &str, text: &str) -> RunOutcome {
    let (url, stop) = spawn(Vec::new(), handler).await;
    let outcome = run_against(name, text, url).await;
    stop.cancel();
    outcome
}

fn completeness(outcome: &RunOutcome) -> Vec<(String, String)> {
    outcome
        .results
        .violations
        .iter()
        .filter(|v| v.oracle == OracleKind::Completeness)
        .map(|v| (v.expected.clone(), v.seen.clone()))
        .collect()
}

fn assert_clean(outcome: &RunOutcome, expectations: u64) {
    let c = &outcome.results.summary.counters;
    assert!(
        outcome.results.violations.is_empty(),
        "violations: {:#?}",
        outcome.results.violations
    );
    assert_eq!(c.expect.expectations, expectations);
    assert_eq!(c.expect.expectations_met, expectations);
    assert_eq!(c.non_json, 0, "every frame reached the oracles");
}

fn head(name: &str, users: u32) -> String {
    format!(
        "name = \"{name}\"\nseed = 3\nduration = \"20s\"\n[auth]\nsecret = {{ value = \"{TEST_SECRET}\" }}\n\
         placement = {{ query = \"token\" }}\n"
    ) + &format!("# {users} users\n")
}

// ---- Phoenix v2: frames are arrays [join_ref, ref, topic, event, payload] ----

const PHOENIX: &str = r#"
[oracles]
type_field = "/3"
error_event = "phx_error"

[[group]]
name = "joiners"
users = 3
steps = [
  { send = ["{{run}}", "{{run}}", "room:{{conn}}", "phx_join", {}] },
  { expect = "phx_reply", correlate = "/1", within = "2s", where = { "/4/status" = "ok", "/2" = "room:{{conn}}" } },
  { send = ["0", "{{run}}", "room:{{conn}}", "ping", { n = "{{run:int}}" }] },
  { expect = "phx_reply", correlate = "/1", within = "2s", where = { "/4/status" = "ok", "/4/response/n" = 2 } },
  { close = 1000 },
]
"#;

/// `refuse_second`: a second push on a joined topic is answered `status: "error"` (the
/// reply of a refused join, reply-status-not-checkable).
fn phoenix(refuse_second: bool) -> Arc<Handler> {
    Arc::new(move |text, conn| {
        let frame: Value = serde_json::from_str(text).ok()?;
        let topic = frame.get(2)?.as_str()?.to_string();
        let event = frame.get(3)?.as_str()?;
        let status = if event == "phx_join" {
            conn.joined.push(topic.clone());
            "ok"
        } else if refuse_second || !conn.joined.contains(&topic) {
            "error"
        } else {
            "ok"
        };
        let response = json!({"n": frame.pointer("/4/n")});
        let reply = json!([frame[0], frame[1], topic, "phx_reply", {"status": status, "response": response}]);
        Some(vec![reply.to_string()])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phoenix_v2_arrays_are_sent_and_their_reply_status_checked() {
    let text = head("phoenix-v2", 3) + PHOENIX;
    let (url, stop) = spawn(Vec::new(), phoenix(false)).await;
    let good = run_against("phoenix.toml", &text, url).await;
    stop.cancel();
    assert_clean(&good, 6);
    assert_eq!(good.results.summary.counters.messages_received, 6);

    let (url, stop) = spawn(Vec::new(), phoenix(true)).await;
    let bad = run_against("phoenix.toml", &text, url).await;
    stop.cancel();
    let found = completeness(&bad);
    assert_eq!(found.len(), 3, "one per connection: {found:#?}");
    for (expected, seen) in found {
        assert_eq!(expected, "phx_reply with /4/status = \"ok\"");
        assert_eq!(seen, "phx_reply with /4/status = \"error\"");
    }
    assert_eq!(bad.results.summary.counters.expect.expectations_met, 3);
}

/// A Phoenix endpoint that picks its serializer from the URL's `vsn`, as Phoenix does:
/// with `vsn=2.0.0` it reads and answers arrays ([`phoenix`]); without (v1, JSON
/// objects, the default) an array is a frame it cannot decode, and it answers nothing.
async fn phoenix_by_vsn(tcp: tokio::net::TcpStream) {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let mut v2 = false;
    let pick = |request: &Request, response: Response| {
        v2 = request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|pair| pair == "vsn=2.0.0"));
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, pick).await else {
        return;
    };
    let handler = phoenix(false);
    let mut conn = Conn::default();
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        if !v2 {
            continue;
        }
        for frame in handler(text.as_str(), &mut conn).unwrap_or_default() {
            if ws.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
        }
    }
}

/// A Phoenix v2 scenario (arrays) against a URL without `?vsn=2.0.0`: the server speaks
/// v1 and answers nothing it could read, and the unreadable verdict names the likely
/// cause (the serializer is picked from `vsn`); with it in the URL, the same server
/// serves every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phoenix_v2_scenario_without_vsn_in_the_url_is_told_to_add_it() {
    let text = head("phoenix-v2", 3) + PHOENIX;
    let (url, stop) = spawn_server(phoenix_by_vsn).await;
    let base = format!("{}/socket/websocket", url.strip_suffix("/ws").unwrap());
    let bare = run_against("phoenix.toml", &text, base.clone()).await;
    let asked = run_against("phoenix.toml", &text, format!("{base}?vsn=2.0.0")).await;
    stop.cancel();
    let s = &bare.results.summary;
    assert_eq!(s.verdict, Verdict::Unreadable, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains("has no `vsn` query parameter")
            && hint.contains("Phoenix servers pick the serializer from `vsn`")
            && hint.contains("v2 needs `?vsn=2.0.0` in the URL"),
        "{hint}"
    );
    assert_clean(&asked, 6);
}

// ---- SignalR: 0x1E-terminated records, several per frame, integer kinds ----

const RS: char = '\u{1e}';

const SIGNALR: &str = r#"
[oracles]
record_separator = "\u001e"

[oracles.kinds]
handshake = { type = { present = false }, error = { present = false } }
group1 = { type = 1, "/arguments/0" = "group1" }
group2 = { type = 1, "/arguments/0" = "group2" }
completion = { type = 3 }

[[group]]
name = "callers"
users = 2
steps = [
  { send = { protocol = "json", version = 1 } },
  { expect = "handshake", within = "2s" },
  { send = { type = 1, invocationId = "{{run}}", target = "SendToGroups", arguments = ["hi-{{conn}}"] } },
  { expect = "group1 group2 completion", correlate = "invocationId", within = "2s" },
  { expect_none = "group2", within = "100ms" },
  { close = 1000 },
]
"#;

/// A hub that insists on terminated records (an unterminated handshake is refused, as
/// SignalR does) and packs its answer into one frame of several records. `skip_group2`:
/// the caller is not yet in group2 and never hears its own group2 message.
fn signalr(skip_group2: bool) -> Arc<Handler> {
    Arc::new(move |text, conn| {
        let record = text.strip_suffix(RS)?;
        let msg: Value = serde_json::from_str(record).ok()?;
        if msg.get("protocol").is_some() {
            return Some(vec![format!("{{}}{RS}")]);
        }
        conn.next += 1;
        let id = msg.get("invocationId").cloned().unwrap_or(Value::Null);
        let mut frame = String::new();
        for g in ["group1", "group2"] {
            if g == "group2" && skip_group2 {
                continue;
            }
            let m = json!({"type": 1, "target": "ReceiveMessage", "arguments": [g, msg["arguments"][0]], "invocationId": id});
            frame.push_str(&format!("{m}{RS}"));
        }
        frame.push_str(&format!(
            "{}{RS}",
            json!({"type": 3, "invocationId": id, "result": null})
        ));
        Some(vec![frame])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signalr_records_and_integer_kinds_reach_the_oracles() {
    let text = head("signalr", 2) + SIGNALR;
    let (url, stop) = spawn(Vec::new(), signalr(false)).await;
    let good = run_against("signalr.toml", &text, url).await;
    stop.cancel();
    assert_clean(&good, 6);
    // Frames, not records: one for the handshake and one packing the answer's three
    // records, per caller.
    assert_eq!(good.results.summary.counters.messages_received, 4);

    let (url, stop) = spawn(Vec::new(), signalr(true)).await;
    let bad = run_against("signalr.toml", &text, url).await;
    stop.cancel();
    let found = completeness(&bad);
    assert_eq!(found.len(), 2, "{found:#?}");
    for (expected, seen) in found {
        assert_eq!(
            expected,
            "group1 group2 completion in order (still to come: group2 completion)"
        );
        assert_eq!(seen, "group1 completion");
    }
}

/// A lenient hub: whatever it is sent, it answers with one terminated completion record.
fn lenient_hub() -> Arc<Handler> {
    Arc::new(|_, _| {
        let record = json!({"type": 3, "invocationId": "1", "result": null});
        Some(vec![format!("{record}{RS}")])
    })
}

const HUB_CALL: &str = r#"
[oracles.kinds]
completion = { type = 3 }

[[group]]
name = "callers"
users = 2
steps = [
  { send = { type = 1, invocationId = "1", target = "Echo", arguments = [] } },
  { expect = "completion", within = "300ms" },
  { close = 1000 },
]
"#;

/// The scenario, not the server, is wrong: without `record_separator` no SignalR record
/// parses, so every expectation goes unmet. That is its own verdict with the fix in its
/// hint, never "violations"; the same scenario with the separator is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_missing_the_record_separator_is_unreadable_not_a_race() {
    let (url, stop) = spawn(Vec::new(), lenient_hub()).await;
    let missing = run_against("hub.toml", &(head("hub", 2) + HUB_CALL), url.clone()).await;
    let with_separator = head("hub", 2) + "[oracles]\nrecord_separator = \"\\u001e\"\n" + HUB_CALL;
    let fixed = run_against("hub.toml", &with_separator, url).await;
    stop.cancel();

    let s = &missing.results.summary;
    assert_eq!(s.verdict, Verdict::Unreadable, "{:?}", s.hint);
    assert_eq!(of_run(s), exit::UNREADABLE);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(hint.contains("2 non-JSON text records"), "{hint}");
    assert!(hint.contains("record_separator"), "{hint}");
    assert_eq!(
        (s.counters.non_json, s.counters.json_records),
        (2, 0),
        "both answers arrived, neither was read"
    );
    let mut text = Vec::new();
    stampede::report::render(s, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("what the verdict names, not findings"),
        "{text}"
    );

    assert_eq!(fixed.results.summary.verdict, Verdict::Clean);
    assert_clean(&fixed, 2);
    assert_eq!(fixed.results.summary.counters.json_records, 2);
}

/// JSON records whose kind sits where the scenario does not look (no `type_field` in
/// them, no kinds rule): the same mismatch, with the field to fix in the hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_the_kind_field_are_unreadable_not_a_race() {
    let text = head("hub", 2)
        + r#"
[oracles]
record_separator = "\u001e"
type_field = "kind"

[[group]]
name = "callers"
users = 2
steps = [
  { send = { type = 1, invocationId = "1", target = "Echo", arguments = [] } },
  { expect = "3", within = "300ms" },
  { close = 1000 },
]
"#;
    let (url, stop) = spawn(Vec::new(), lenient_hub()).await;
    let outcome = run_against("hub.toml", &text, url.clone()).await;
    let fixed = run_against("hub.toml", &text.replace("\"kind\"", "\"type\""), url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Unreadable, "{:?}", s.hint);
    let hint = s.hint.clone().unwrap_or_default();
    // The verdict shows what the records were (names, never values): where the kind is.
    assert!(
        hint.contains(
            "2 JSON records without a kind, the first an object with fields type, \
             invocationId, result"
        ),
        "{hint}"
    );
    assert!(hint.contains("type_field (now \"kind\")"), "{hint}");
    assert_eq!(s.counters.kindless_records, 2);
    for (_, seen) in completeness(&outcome) {
        assert!(
            seen.contains("the first an object with fields type, invocationId, result"),
            "{seen}"
        );
    }
    // Read by its integer kind once the field is right.
    assert_eq!(fixed.results.summary.verdict, Verdict::Clean);
    assert_clean(&fixed, 2);
}

// ---- ActionCable: data frames carry no type; the user is nested ----

const CABLE: &str = r#"
[oracles]
accepted = { message = "welcome" }
identity = { field = "message.user" }

[oracles.kinds]
data = { has = "message", type = { present = false } }

[[group]]
name = "chatters"
users = 3
steps = [
  { expect = "welcome", within = "2s" },
  { send = { command = "subscribe", identifier = '{"channel":"ChatChannel","room":"r{{conn}}"}' } },
  { expect = "confirm_subscription", correlate = "identifier", within = "2s" },
  { send = { command = "message", identifier = '{"channel":"ChatChannel","room":"r{{conn}}"}', data = '{"action":"speak","nonce":"n{{conn}}"}' } },
  { expect = "data", correlate = "identifier", within = "500ms", where = { "message.nonce" = "n{{conn}}" } },
  { close = 1000 },
]
"#;

/// `drop_first`: the first `message` command after a subscribe is lost (the command
/// raced the subscription's registration, rails/rails #25381).
fn cable(drop_first: bool) -> Arc<Handler> {
    Arc::new(move |text, conn| {
        let msg: Value = serde_json::from_str(text).ok()?;
        let identifier = msg.get("identifier")?.as_str()?.to_string();
        match msg.get("command")?.as_str()? {
            "subscribe" => {
                if !drop_first {
                    conn.subscriptions.push(identifier.clone());
                }
                let confirm = json!({"identifier": identifier, "type": "confirm_subscription"});
                Some(vec![confirm.to_string()])
            }
            "message" if !conn.subscriptions.contains(&identifier) => {
                conn.subscriptions.push(identifier);
                Some(Vec::new())
            }
            "message" => {
                let data: Value = serde_json::from_str(msg["data"].as_str()?).ok()?;
                let out = json!({"identifier": identifier, "message": {"kind": "spoken", "nonce": data["nonce"], "user": "nobody-checks-tokens-here"}});
                Some(vec![out.to_string()])
            }
            _ => Some(Vec::new()),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actioncable_typeless_frames_are_expected_by_kind_and_nested_identity() {
    let welcome = vec![json!({"type": "welcome"}).to_string()];
    // The fake's broadcasts name a fixed user: the nested identity oracle must see it.
    let text = head("cable", 3) + CABLE;
    let (url, stop) = spawn(welcome.clone(), cable(false)).await;
    let good = run_against("cable.toml", &text, url).await;
    stop.cancel();
    let c = &good.results.summary.counters;
    assert_eq!(
        c.expect.expectations_met, 9,
        "{:#?}",
        good.results.violations
    );
    let identity: Vec<_> = good
        .results
        .violations
        .iter()
        .filter(|v| v.oracle == OracleKind::Identity)
        .collect();
    assert_eq!(identity.len(), 3);
    assert!(identity[0].seen.starts_with("message.user = \"nobody"));
    assert!(completeness(&good).is_empty());

    let (url, stop) = spawn(welcome, cable(true)).await;
    let bad = run_against("cable.toml", &text, url).await;
    stop.cancel();
    let found = completeness(&bad);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].0.starts_with("data within"), "{found:#?}");
    assert_eq!(found[0].1, "nothing");
}

/// The cable fake, dropping the `message` command on the connections of odd rooms (r1,
/// r3): the race hitting some connections and not others.
fn cable_dropping_odd_rooms() -> Arc<Handler> {
    let serve = cable(false);
    Arc::new(move |text, conn| {
        let odd = [r#"\"r1\""#, r#"\"r3\""#].iter().any(|r| text.contains(r));
        if odd && text.contains("\"command\":\"message\"") {
            return Some(Vec::new());
        }
        serve(text, conn)
    })
}

/// The cable script as first written, with its unjudged send's broadcast never expected:
/// the script, as every test of it here writes it.
fn unjudged_cable_script(users: u32) -> String {
    let data_expect = CABLE
        .lines()
        .find(|l| l.contains(r#"{ expect = "data""#))
        .unwrap_or_default();
    // Long enough for an answer the fake sends at once, on a busy machine.
    head("unjudged", users)
        + &CABLE
            .replace(data_expect, r#"  { think = "1s" },"#)
            .replace("identity = { field = \"message.user\" }\n", "")
            .replace("users = 3", &format!("users = {users}"))
}

/// A hunt that finds nothing adds up what came after the unjudged sends over its rounds:
/// the connections the fake dropped the command on, in every round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hunt_adds_up_what_came_after_the_sends_nothing_judges() {
    let welcome = vec![json!({"type": "welcome"}).to_string()];
    let text = unjudged_cable_script(4) + "\n[hunt]\nrounds = 2\n";
    let s = scenario("unjudged.toml", &text);
    let (url, stop) = spawn(welcome, cable_dropping_odd_rooms()).await;
    let (hunted, written) = common::hunt_at(&s, &url, std::time::Duration::from_secs(60), 2).await;
    stop.cancel();
    assert!(hunted.found.is_none() && written.is_empty(), "{written:?}");
    assert_eq!(hunted.rounds, 2);
    let after = &hunted.counters;
    assert_eq!(
        (
            after.unjudged_senders,
            after.unjudged_unanswered,
            after.after_unjudged_frames
        ),
        (8, 4, 4)
    );
    let note = stampede::oracle::verdict::after_unjudged_note(after).unwrap_or_default();
    assert!(
        note.contains("nothing more came on 4 of the 8 connections that made it, while the others received 4 frames"),
        "{note}"
    );
}

/// The cable script as first written (rails/rails #25381's case): the `message` command
/// is sent and nothing expects its broadcast. Against the fixed server the broadcasts
/// came on every connection: clean, saying the send went unjudged and what came. Against
/// one that drops every command, or the race hitting some connections, nothing came
/// after it on some: inconclusive, never clean (it was clean with a note, exit 0 on the
/// buggy server), saying on how many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_clean_only_when_something_came_after_the_send_nothing_judges() {
    let welcome = vec![json!({"type": "welcome"}).to_string()];
    let text = unjudged_cable_script(4);
    assert!(
        !text.contains("expect = \"data\"") && !text.contains("identity"),
        "{text}"
    );
    let mut notes = Vec::new();
    for (handler, verdict) in [
        (cable(false), Verdict::Clean),
        (cable(true), Verdict::Inconclusive),
        (cable_dropping_odd_rooms(), Verdict::Inconclusive),
    ] {
        let (url, stop) = spawn(welcome.clone(), handler).await;
        let outcome = run_against("unjudged.toml", &text, url).await;
        stop.cancel();
        let s = &outcome.results.summary;
        assert_eq!(s.verdict, verdict, "{:?}", s.hint);
        let hint = s.hint.clone().unwrap_or_default();
        assert!(
            hint.contains("the send at `chatters` step 4 is not judged")
                || hint.contains("after the send at `chatters` step 4, which no `expect` follows"),
            "{hint}"
        );
        notes.push(hint);
    }
    assert!(
        notes[0].contains("every one of the 4 connections that made it received more (4 frames, read by no `expect`)"),
        "{}",
        notes[0]
    );
    assert!(
        notes[1].contains("nothing more came on any of the 4 connections that made it"),
        "{}",
        notes[1]
    );
    assert!(
        notes[2].contains("nothing more came on 2 of the 4 connections that made it (the others received 2 frames)"),
        "{}",
        notes[2]
    );
}

/// A server that drops the unjudged command but sends its heartbeat after it (ActionCable's
/// `{"type":"ping"}`, here once, as a 3 s ping comes during a longer `think`): a record of
/// a kind no step names that names no request is no answer, first sighting or not. The run
/// was clean, "every one … received more"; it is inconclusive, nothing more came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_after_the_send_nothing_judges_is_no_answer() {
    let welcome = vec![json!({"type": "welcome"}).to_string()];
    let serve = cable(false);
    let dropping_with_ping: Arc<Handler> = Arc::new(move |text, conn| {
        if text.contains("\"command\":\"message\"") {
            return Some(vec![
                json!({"type": "ping", "message": 1_765_000_000}).to_string()
            ]);
        }
        serve(text, conn)
    });
    let (url, stop) = spawn(welcome, dropping_with_ping).await;
    let outcome = run_against("unjudged.toml", &unjudged_cable_script(4), url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Inconclusive, "{:?}", s.hint);
    assert_eq!(
        (s.counters.unjudged_senders, s.counters.unjudged_unanswered),
        (4, 4),
        "{:?}",
        s.counters
    );
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("nothing more came on any of the 4 connections that made it"),
        "{hint}"
    );
}

/// What came after an unjudged send counts on the connection it went out on: the
/// greeting of the connection a `reconnect` opens after it is no answer to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_came_after_an_unjudged_send_counts_on_its_own_connection() {
    let welcome = vec![json!({"type": "welcome"}).to_string()];
    let text = head("reconnected", 2)
        + r#"
[oracles]
accepted = { message = "welcome" }

[[group]]
name = "chatters"
users = 2
steps = [
  { expect = "welcome", within = "2s" },
  { send = { command = "message", identifier = "r{{conn}}", data = "{}" } },
  { think = "300ms" },
  { reconnect = { after = "0ms" } },
  { expect = "welcome", within = "2s" },
  { close = 1000 },
]
"#;
    let (url, stop) = spawn(welcome, cable(true)).await;
    let outcome = run_against("reconnected.toml", &text, url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Inconclusive, "{:?}", s.hint);
    assert_eq!(s.counters.expect.expectations_met, 4, "{s:?}");
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("after the send at `chatters` step 2, which no `expect` follows")
            && hint.contains("nothing more came on any of the 2 connections that made it"),
        "{hint}"
    );
}

// ---- ActionCable refusing in band: a disconnect message, then Close 1000 ----

/// Members with valid tokens subscribe; gatecrashers present `alg: none` tokens. `REJECT`
/// is replaced by the scenario's `reject` line (or nothing).
const CABLE_GATE: &str = r#"
[oracles]
accepted = { message = "welcome" }
REJECT

[oracles.kinds]
refused = { type = "disconnect", reason = "unauthorized" }

[[group]]
name = "members"
users = 3
steps = [
  { expect = "welcome", within = "2s" },
  { send = { command = "subscribe", identifier = "r{{conn}}" } },
  { expect = "confirm_subscription", correlate = "identifier", within = "2s", where = { identifier = "r{{conn}}" } },
  { close = 1000 },
]

[[group]]
name = "gatecrashers"
users = 2
forge = "alg-none"
steps = [
  { expect = "welcome", within = "2s" },
  { close = 1000 },
]
"#;

/// An ActionCable-like server that checks the `token` query parameter (HS256 with
/// `secret`, `exp` and `sub` required) after the upgrade, as Rails' `connect` does: a
/// token it will not take gets `{"type":"disconnect","reason":"unauthorized",...}` and
/// Close 1000, which alone says nothing; a good one gets `welcome`, and each `subscribe`
/// its `confirm_subscription`.
async fn spawn_cable_gate(secret: &'static str) -> (String, CancellationToken) {
    spawn_gate(secret, Refuse::InBand).await
}

/// How [`spawn_gate`] refuses a token it will not take.
#[derive(Clone, Copy)]
enum Refuse {
    /// ActionCable's `disconnect` message, then Close 1000.
    InBand,
    /// The `disconnect` message alone, the connection left open for the client to end (as
    /// Centrifugo answers an expired token and waits for a refreshed one).
    InBandKeptOpen,
    /// A Close with this code (4401 "Unauthorized", as graphql-transport-ws), nothing before.
    Close(u16),
    /// `{"type":"error","code":"unauthorized"}`, then a Close with this code.
    ErrorThenClose(u16),
}

/// [`spawn_cable_gate`], refusing a token it will not take as `refuse` says.
async fn spawn_gate(secret: &'static str, refuse: Refuse) -> (String, CancellationToken) {
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    spawn_server(move |tcp| async move {
        let mut token = String::new();
        let callback = |req: &Request, resp: Response| {
            token = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")))
                .unwrap_or_default()
                .to_string();
            Ok(resp)
        };
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
            return;
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        let key = DecodingKey::from_secret(secret.as_bytes());
        let first = if decode::<Value>(&token, &key, &validation).is_ok() {
            json!({"type": "welcome"})
        } else if let Refuse::Close(code) | Refuse::ErrorThenClose(code) = refuse {
            if let Refuse::ErrorThenClose(_) = refuse {
                let error = json!({"type": "error", "code": "unauthorized"});
                let _ = ws.send(Message::Text(error.to_string().into())).await;
            }
            let unauthorized = CloseFrame {
                code: CloseCode::from(code),
                reason: "Unauthorized".into(),
            };
            let _ = ws.close(Some(unauthorized)).await;
            while let Some(Ok(_)) = ws.next().await {}
            return;
        } else {
            let refusal =
                json!({"type": "disconnect", "reason": "unauthorized", "reconnect": false});
            let _ = ws.send(Message::Text(refusal.to_string().into())).await;
            if let Refuse::InBandKeptOpen = refuse {
                // Whatever comes is ignored until the client closes.
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            let normal = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            let _ = ws.close(Some(normal)).await;
            // Drain until the client answers the Close.
            while let Some(Ok(_)) = ws.next().await {}
            return;
        };
        if ws
            .send(Message::Text(first.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(text) = msg else { continue };
            let Ok(cmd) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            if cmd["command"] == "subscribe" {
                let confirm =
                    json!({"identifier": cmd["identifier"], "type": "confirm_subscription"});
                if ws
                    .send(Message::Text(confirm.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    })
    .await
}

/// A clean run of [`CABLE_GATE`] whose three members were accepted and two gatecrashers
/// refused `by`.
fn assert_gatecrashers_refused(outcome: &RunOutcome, by: stampede::model::Cause) {
    let s = &outcome.results.summary;
    assert!(
        outcome.results.violations.is_empty(),
        "{:#?}",
        outcome.results.violations
    );
    assert_eq!(s.verdict, Verdict::Clean, "{:?}", s.hint);
    assert_eq!(
        (s.counters.accepted, s.counters.rejected, s.counters.failed),
        (3, 2, 0)
    );
    assert_eq!(s.counters.refused_by.get(&by), Some(&2), "{:?}", s.counters);
}

/// A scenario written for another protocol (no `accepted = { message }`: the first frame
/// accepts) against the cable gate, its tokens signed with the public development secret
/// because the variable it names is unset: the gate's refusal is the first frame, which
/// the rule counts as acceptance, then Close 1000. Still refused at the door (it read as
/// completeness violations, exit 1), auth misconfigured, the hint saying first that the
/// development secret signed the tokens, and that the rule took the refusal for
/// acceptance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_band_refusal_as_the_first_frame_is_auth_misconfigured() {
    let text = head("cable-gate", 3) + &CABLE_GATE.replace("REJECT", "");
    let text = text[..text.find("[[group]]\nname = \"gatecrashers\"").unwrap()]
        .replace("accepted = { message = \"welcome\" }\n", "")
        .replace(
            &format!("{{ value = \"{TEST_SECRET}\" }}"),
            "{ env = \"STAMPEDE_TEST_NEVER_SET\", default = \"stampede-dev-secret\" }",
        );
    assert!(
        text.contains("STAMPEDE_TEST_NEVER_SET") && !text.contains("accepted ="),
        "{text}"
    );
    let (url, stop) = spawn_cable_gate(TEST_SECRET).await;
    // Calibrating first, as the `run` command does.
    let gate = scenario("cable-gate.toml", &text);
    let opts = stampede::run::RunOptions {
        target: Some(url),
        learn: true,
        ..Default::default()
    };
    let run = stampede::run::run(&gate, &opts, CancellationToken::new());
    let outcome = tokio::time::timeout(common::TEST_BOUND, run)
        .await
        .expect("bounded")
        .expect("run");
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::AuthMisconfigured, "{:?}", s.hint);
    assert_eq!(of_run(s), exit::AUTH_MISCONFIGURED);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(
        hint.starts_with(
            "STAMPEDE_TEST_NEVER_SET is not set, so stampede's public development secret is \
             in use, and the tokens were signed with it (set STAMPEDE_TEST_NEVER_SET to the \
             server's secret); "
        ) && hint.contains(
            r#"after the message {"type":"disconnect","reason":"unauthorized","reconnect":false}"#
        ) && hint.contains("3 attempts counted as accepted by `accepted = \"first_frame\"`"),
        "{hint}"
    );
    // The probe after the run reads the same refusal as one: "3 accepted" contradicted
    // the verdict. Refused by a Close 1000, no session held: no leak.
    assert_eq!((s.probe.tokens, s.probe.refused), (3, 3), "{:?}", s.probe);
    assert_eq!(
        s.violations.of(OracleKind::Liveness),
        0,
        "{:?}",
        s.violations
    );
    // Calibration before the load counted none accepted either (`learn` said "3 of 3
    // valid-token connections accepted", exit 0).
    let unaccepted = outcome
        .plan
        .oracles
        .learned
        .unaccepted
        .clone()
        .unwrap_or_default();
    assert!(
        unaccepted.contains("accepted no calibration connection (server_close_1000"),
        "{unaccepted:?}"
    );
}

/// A declared in-band refusal after which the server keeps the connection open is as
/// clean as one it closes after: the refused connections' pending `welcome` is refused, not
/// missed (it used to time out into a completeness violation each), and the client ends
/// the connection itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_sent_in_band_on_a_connection_left_open_is_a_clean_refusal() {
    let declared =
        head("cable-gate", 5) + &CABLE_GATE.replace("REJECT", "reject = { message = \"refused\" }");
    let (url, stop) = spawn_gate(TEST_SECRET, Refuse::InBandKeptOpen).await;
    let outcome = run_against("cable-gate.toml", &declared, url).await;
    stop.cancel();
    assert_gatecrashers_refused(
        &outcome,
        stampede::model::Cause::RefusedInBand("refused".into()),
    );
    let s = &outcome.results.summary;
    assert_eq!(s.counters.expect.expectations_met, 6);
    assert_eq!(s.counters.expect.expectations_refused, 2);
    // The refusal is the server's answer, shown as a refused upgrade's status is.
    let answer = s
        .answers
        .iter()
        .find(|a| a.cause == stampede::model::Cause::RefusedInBand("refused".into()))
        .unwrap_or_else(|| panic!("{:#?}", s.answers));
    assert!(
        answer.body.contains(r#""reason":"unauthorized""#),
        "{answer:?}"
    );
}

/// With `reject = { message = "refused" }`, the server's in-band refusal of a bad token is
/// as clean as a listed close code: counted as rejected, no rejection-hygiene violation, the
/// refused connection's script not judged. Without it, the same answer is a bad token not
/// refused cleanly, whose violation shows the record that said why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_sent_in_band_is_a_clean_refusal_when_declared() {
    let declared =
        head("cable-gate", 5) + &CABLE_GATE.replace("REJECT", "reject = { message = \"refused\" }");
    let (url, stop) = spawn_cable_gate(TEST_SECRET).await;
    let clean = run_against("cable-gate.toml", &declared, url.clone()).await;
    let undeclared = run_against(
        "cable-gate.toml",
        &(head("cable-gate", 5) + &CABLE_GATE.replace("REJECT", "")),
        url,
    )
    .await;
    stop.cancel();

    assert_gatecrashers_refused(
        &clean,
        stampede::model::Cause::RefusedInBand("refused".into()),
    );
    let s = &clean.results.summary;
    // The members' two expectations each were met; the refused ones were not judged.
    assert_eq!(s.counters.expect.expectations_met, 6);
    assert_eq!(s.counters.expect.expectations_refused, 2);

    let s = &undeclared.results.summary;
    assert_eq!(
        (s.counters.accepted, s.counters.rejected, s.counters.failed),
        (3, 0, 2)
    );
    let hygiene: Vec<_> = undeclared
        .results
        .violations
        .iter()
        .filter(|v| v.oracle == OracleKind::RejectionHygiene)
        .collect();
    assert_eq!(hygiene.len(), 2, "{:#?}", undeclared.results.violations);
    // It shows what the server said before its Close; the gatecrashers' unmet `welcome`
    // is the same fault, counted once (it was a completeness violation each too).
    assert!(
        hygiene[0].seen.contains("server_close_1000 after")
            && hygiene[0].seen.contains("unauthorized"),
        "{hygiene:#?}"
    );
    assert_eq!(
        completeness(&undeclared),
        [],
        "{:#?}",
        undeclared.results.violations
    );
}

/// A server that refuses a bad token with an application close code the scenario does not
/// list (4401 "Unauthorized", graphql-transport-ws's) before accepting it refused it in
/// its own words: counted as rejected, no rejection-hygiene violation, the refused
/// script not judged, a clean run whose hint spells out the `reject` line that states it
/// (it once read as VIOLATIONS, completeness and hygiene each, and `hunt` "confirmed" it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_closed_with_an_unlisted_refusal_code_is_refused_not_a_race() {
    let (url, stop) = spawn_gate(TEST_SECRET, Refuse::Close(4401)).await;
    let outcome = run_against(
        "close-gate.toml",
        &(head("close-gate", 5) + &CABLE_GATE.replace("REJECT", "")),
        url,
    )
    .await;
    stop.cancel();
    assert_gatecrashers_refused(&outcome, stampede::model::Cause::ServerClose(4401));
    let s = &outcome.results.summary;
    assert_eq!(s.counters.expect.expectations_refused, 2);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains(
            "the server refused 2 bad tokens before accepting them with a close code \
             `[oracles] reject` does not list (server_close_4401 ×2, reason \"Unauthorized\")"
        ) && hint.contains("`[oracles] reject = { close = [1008, 4401] }` states it"),
        "{hint}"
    );
}

/// The same server, with 4401 the scenario's idle timeout code (`idle_close`): a code
/// cannot be both, so the hint does not suggest listing it in `reject.close` (a line the
/// scenario would then be refused for), and says why it stays undeclared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_with_the_idle_timeouts_code_is_not_suggested_as_a_refusal_code() {
    let (url, stop) = spawn_gate(TEST_SECRET, Refuse::Close(4401)).await;
    let idle = "idle_timeout = \"2s\"\nidle_close = [4401]";
    let outcome = run_against(
        "close-gate-idle.toml",
        &(head("close-gate-idle", 5) + &CABLE_GATE.replace("REJECT", idle)),
        url,
    )
    .await;
    stop.cancel();
    assert_gatecrashers_refused(&outcome, stampede::model::Cause::ServerClose(4401));
    let hint = outcome.results.summary.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("(server_close_4401 ×2, reason \"Unauthorized\")")
            && hint.contains(
                "it is the idle timeout's here (`idle_close`), so a code stays undeclared"
            )
            && !hint.contains("close = [1008, 4401]"),
        "{hint}"
    );
}

/// A wrong secret against that server, 4401 the idle timeout's code: every valid token
/// refused, an auth misconfiguration whose hint does not tell the user to declare 4401 a
/// refusal (a line `validate` would refuse), and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_refused_with_the_idle_timeouts_code_is_not_told_to_declare_it() {
    let (url, stop) = spawn_gate(TEST_SECRET, Refuse::Close(4401)).await;
    let idle = "idle_timeout = \"2s\"\nidle_close = [4401]";
    let text = head("wrong-secret-idle", 5) + &CABLE_GATE.replace("REJECT", idle);
    let members_only = text[..text.find("[[group]]\nname = \"gatecrashers\"").unwrap()]
        .replace(TEST_SECRET, "not-the-servers-secret");
    let outcome = run_against("wrong-secret-idle.toml", &members_only, url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::AuthMisconfigured, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains(
            "4401 is the idle timeout's here (`idle_close`), which a refusal cannot share"
        ) && !hint.contains("close = [1008, 4401]")
            && !hint.contains("close = [4401]"),
        "{hint}"
    );
}

/// A refusal that says why first (an error frame, then the Close) is a refusal still:
/// under the first-frame rule the error accepts nothing, and a Close that crossed the
/// script's own `close` (the error ended its wait) is the server's verdict. Then 1008
/// (listed) is a clean refusal, where it once read as bad tokens accepted; and 1011 is
/// the fault it is, where it once went unseen behind the script's close (a clean run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_that_says_why_first_is_judged_by_its_close() {
    let first_frame = head("error-gate", 5)
        + &CABLE_GATE
            .replace("REJECT", "")
            .replace("accepted = { message = \"welcome\" }", "");
    assert!(!first_frame.contains("accepted ="), "{first_frame}");
    let (url, stop) = spawn_gate(TEST_SECRET, Refuse::ErrorThenClose(1008)).await;
    let refused = run_against("error-gate.toml", &first_frame, url).await;
    stop.cancel();
    assert_gatecrashers_refused(&refused, stampede::model::Cause::ServerClose(1008));

    let by_message = head("error-gate", 5) + &CABLE_GATE.replace("REJECT", "");
    let (url, stop) = spawn_gate(TEST_SECRET, Refuse::ErrorThenClose(1011)).await;
    let crashed = run_against("error-gate.toml", &by_message, url).await;
    stop.cancel();
    let s = &crashed.results.summary;
    assert_eq!(s.verdict, Verdict::Violations, "{:?}", s.hint);
    let hygiene: Vec<_> = crashed
        .results
        .violations
        .iter()
        .filter(|v| v.oracle == OracleKind::RejectionHygiene)
        .collect();
    assert_eq!(hygiene.len(), 2, "{:#?}", crashed.results.violations);
    assert!(hygiene[0].seen.contains("closed with 1011"), "{hygiene:#?}");

    // Without the error first, the gatecrashers' unmet `expect` is the same fault: it is
    // counted once, by rejection hygiene (it once added a completeness violation each).
    let (url, stop) = spawn_gate(TEST_SECRET, Refuse::Close(1011)).await;
    let plain = run_against("error-gate.toml", &by_message, url).await;
    stop.cancel();
    let oracles: Vec<_> = plain.results.violations.iter().map(|v| v.oracle).collect();
    assert_eq!(
        oracles,
        [OracleKind::RejectionHygiene; 2],
        "{:#?}",
        plain.results.violations
    );
}

/// A server that welcomes with a kind other than the one `[oracles] accepted` waits for
/// accepts no connection by the scenario's rule: the scenario cannot read its welcome
/// (unreadable, naming the kind waited for), and the verdict sends the user to the answer
/// line, which shows what the server said last (once there was none to see).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_of_another_kind_is_shown_on_the_answer_line() {
    let text = head("other-welcome", 3)
        + &CABLE_GATE.replace("REJECT", "").replace(
            "accepted = { message = \"welcome\" }",
            "accepted = { message = \"hello\" }",
        );
    let members_only = text[..text.find("[[group]]\nname = \"gatecrashers\"").unwrap()].to_string();
    let (url, stop) = spawn_gate(TEST_SECRET, Refuse::Close(1008)).await;
    let outcome = run_against("other-welcome.toml", &members_only, url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Unreadable, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("never with \"hello\""), "{hint}");
    assert!(hint.contains("the answer line"), "{hint}");
    // The script waits for a greeting (of another kind): no word of closing too soon.
    assert!(!hint.contains("after the scripts closed"), "{hint}");
    let answer = s
        .answers
        .iter()
        .find(|a| a.cause == stampede::model::Cause::ClientClose(1000))
        .unwrap_or_else(|| panic!("{:#?}", s.answers));
    assert!(answer.body.contains("confirm_subscription"), "{answer:?}");
}

/// Scripts that send first and never wait for the kind `[oracles] accepted` waits for
/// may close before it comes (an ack that comes late): the unreadable verdict says so
/// beside checking the kind, and how to wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_that_send_first_and_never_wait_for_the_ack_are_told_it_may_come_late() {
    let text = head("send-first", 3)
        + &CABLE_GATE
            .replace("REJECT", "")
            .replace(
                "accepted = { message = \"welcome\" }",
                "accepted = { message = \"hello\" }",
            )
            .replacen("  { expect = \"welcome\", within = \"2s\" },\n", "", 1);
    let members_only = text[..text.find("[[group]]\nname = \"gatecrashers\"").unwrap()].to_string();
    assert!(
        members_only.contains("steps = [\n  { send"),
        "{members_only}"
    );
    let (url, stop) = spawn_gate(TEST_SECRET, Refuse::Close(1008)).await;
    let outcome = run_against("send-first.toml", &members_only, url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Unreadable, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains(
            "or it came after the scripts closed: none of them waits for it (an `expect = \"hello\"` before their first `send` does)"
        ),
        "{hint}"
    );
    // Scripts that linger before their close gave a late ack its time: no such clause.
    let lingering = members_only.replacen(
        "  { close = 1000 },\n",
        "  { think = \"300ms\" },\n  { close = 1000 },\n",
        1,
    );
    assert_ne!(lingering, members_only);
    let (url, stop) = spawn_gate(TEST_SECRET, Refuse::Close(1008)).await;
    let outcome = run_against("send-first-linger.toml", &lingering, url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Unreadable, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(!hint.contains("after the scripts closed"), "{hint}");
}

/// A wrong secret against a server that refuses in band: every valid token turned away by
/// the declared refusal message is an auth misconfiguration (exit 6), never a race and
/// never "check the subprotocol". Undeclared, the last message before the close says
/// `unauthorized`: still an auth misconfiguration, whose hint quotes the message and
/// spells out how to declare it; the unmet expectation shows the refusal record itself
/// (the scenario keeps bodies: it has a `where`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_refused_in_band_is_auth_misconfigured() {
    let members_only = |reject: &str| {
        let text = head("cable-gate", 3) + &CABLE_GATE.replace("REJECT", reject);
        // The gatecrashers' group left out: only valid tokens, signed with the wrong secret.
        let text = text[..text.find("[[group]]\nname = \"gatecrashers\"").unwrap()].to_string();
        text.replace(TEST_SECRET, "not-the-servers-secret")
    };
    let (url, stop) = spawn_cable_gate(TEST_SECRET).await;
    let declared = run_against(
        "cable-gate.toml",
        &members_only("reject = { message = \"refused\" }"),
        url.clone(),
    )
    .await;
    let undeclared = run_against("cable-gate.toml", &members_only(""), url).await;
    stop.cancel();

    let s = &declared.results.summary;
    assert_eq!(s.verdict, Verdict::AuthMisconfigured, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("message_refused ×3"), "{hint}");
    assert!(hint.contains("signing secret"), "{hint}");
    // Valid to us, not to the server: the tokens are named by the key that signed them.
    assert!(
        hint.starts_with("every token signed with the scenario's key was refused ("),
        "{hint}"
    );
    assert_eq!(of_run(&declared.results.summary), exit::AUTH_MISCONFIGURED);
    // Each upgrade succeeded and the refusal came after it: counted as in band, and the
    // connections line says so, where "accepted 0 rejected 3" read as upgrades refused.
    let c = &s.counters;
    assert_eq!(
        (c.accepted, c.rejected, c.rejected_in_band),
        (0, 3, 3),
        "{c:?}"
    );
    let mut console = Vec::new();
    stampede::report::render(s, &mut console).unwrap();
    let console = String::from_utf8(console).unwrap();
    assert!(
        console.contains("accepted 0  rejected 3 (in band: upgrade accepted, then refused)"),
        "{console}"
    );

    // Undeclared, the refusal message still says what it is: auth (exit 6), and the hint
    // says how to declare it.
    let s = &undeclared.results.summary;
    assert_eq!(s.verdict, Verdict::AuthMisconfigured, "{:?}", s.hint);
    assert_eq!(of_run(s), exit::AUTH_MISCONFIGURED);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains(r#"server_close_1000 ×3, after the message {"type":"disconnect","reason":"unauthorized","reconnect":false}"#)
            && hint.contains("signing secret")
            && hint.contains(r#"`[oracles.kinds] refused = { type = "disconnect", reason = "unauthorized" }` and `[oracles] reject = { message = "refused" }`"#),
        "{hint}"
    );
    let found = completeness(&undeclared);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_eq!(
        found[0].1,
        "nothing (unclaimed: {\"type\":\"disconnect\",\"reason\":\"unauthorized\",\"reconnect\":false}); \
         then server closed with 1000"
    );
}

/// A reply path no answer has (`seq_reply_id`), beside an uncorrelated `expect` of the
/// same kind that is met: no correlated expectation on that path was met anywhere in the
/// run, so the path is misread (UNREADABLE naming it), however the kind arrived for the
/// other expectation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_path_no_answer_has_is_unreadable_though_its_kind_came() {
    let text = head("mattermost", 3)
        + &MATTERMOST
            .replacen(
                "correlate = { send = \"seq\", reply = \"seq_reply\" }, within",
                "within",
                1,
            )
            .replace("reply = \"seq_reply\" }", "reply = \"seq_reply_id\" }");
    assert!(
        text.contains("reply = \"seq_reply_id\" }, within"),
        "{text}"
    );
    assert_eq!(text.matches("correlate").count(), 1, "{text}");
    let (url, stop) = spawn(Vec::new(), mattermost(false)).await;
    let outcome = run_against("mattermost.toml", &text, url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Unreadable, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains("without the field they correlate on (\"seq_reply_id\""),
        "{hint}"
    );
}

// ---- Captures: a subscription id chosen by the server, used in later sends ----

const SUBSCRIBE: &str = r#"
[[group]]
name = "subscribers"
users = 2
steps = [
  { send = { type = "subscribe", topic = "t{{conn}}" } },
  { expect = "subscribed", within = "2s", capture = { sid = "/sid", n = "/n" } },
  { send = { type = "publish", sid = "{{$sid}}", n = "{{$n}}", note = "for {{$sid}}" } },
  { expect = "event", correlate = "sid", within = "2s", where = { sid = "{{$sid}}", echo = "for {{$sid}}", n = { matches = "^[0-9]+$" } } },
  { expect_none = "error", within = "150ms" },
  { close = 1000 },
]
"#;

/// Ids are chosen here (`s-<n>`); a publish naming an unknown id, or an `n` that is not
/// the number handed out, gets an error. `late_error`: an error follows every event.
fn subscriber(late_error: bool) -> Arc<Handler> {
    Arc::new(move |text, conn| {
        let msg: Value = serde_json::from_str(text).ok()?;
        match msg.get("type")?.as_str()? {
            "subscribe" => {
                conn.next += 7;
                let sid = format!("s-{}", conn.next);
                conn.subscriptions.push(sid.clone());
                Some(vec![
                    json!({"type": "subscribed", "sid": sid, "n": conn.next}).to_string(),
                ])
            }
            "publish" => {
                let sid = msg["sid"].as_str().unwrap_or_default().to_string();
                let number_ok = msg["n"].as_u64() == Some(u64::from(conn.next));
                if !conn.subscriptions.contains(&sid) || !number_ok {
                    return Some(vec![json!({"type": "error", "sid": sid}).to_string()]);
                }
                let n = format!("{}", conn.next);
                let mut out = vec![
                    json!({"type": "event", "sid": sid, "n": n, "echo": msg["note"]}).to_string(),
                ];
                if late_error {
                    out.push(json!({"type": "error", "reason": "late"}).to_string());
                }
                Some(out)
            }
            _ => Some(Vec::new()),
        }
    })
}

/// A market feed: a `subscribe` naming `req` is acknowledged `subscribed` with that `req`,
/// then three `update`s of the book, which carry no `req` unless `stamped` (most feeds
/// stamp only the acknowledgement). `lose_for`: the connection (its `req`) whose updates
/// are lost.
fn feed(stamped: bool, lose_for: Option<&'static str>) -> Arc<Handler> {
    Arc::new(move |text, _conn| {
        let msg: Value = serde_json::from_str(text).ok()?;
        let req = msg.get("req")?.as_str()?.to_string();
        let mut out = vec![json!({"type": "subscribed", "req": req}).to_string()];
        if lose_for != Some(req.as_str()) {
            for seq in 1..=3 {
                let mut update = json!({"type": "update", "symbol": "BTC", "px": seq});
                if stamped {
                    update["req"] = json!(req);
                }
                out.push(update.to_string());
            }
        }
        Some(out)
    })
}

const FEED: &str = r#"
[[group]]
name = "traders"
users = 3
steps = [
  { send = { op = "subscribe", symbol = "BTC", req = "r-{{conn}}" } },
  { expect = "subscribed update+", correlate = "req", within = "1s" },
  { close = 1000 },
]
"#;

/// A pattern correlated as a whole against a feed that stamps only its acknowledgement:
/// the updates came on every connection, never carrying `req`, so no pattern could be
/// met. That is the scenario misreading the feed (unreadable, what to write instead), not
/// three lost subscriptions to hunt. The same feed stamping its updates is clean, and one
/// that loses one connection's updates stays a loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correlated_pattern_whose_later_kinds_never_carry_the_field_is_misread() {
    let text = head("feed", 3) + FEED;
    let unstamped = run_fake(feed(false, None), "feed.toml", &text).await;
    let s = &unstamped.results.summary;
    assert_eq!(s.verdict, Verdict::Unreadable, "{:?}", s.hint);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("still owed (update)") && hint.contains("(subscribed) came carrying it"),
        "{hint}"
    );
    let stamped = run_fake(feed(true, None), "feed.toml", &text).await;
    assert_clean(&stamped, 3);
    let lossy = run_fake(feed(true, Some("r-1")), "feed.toml", &text).await;
    let s = &lossy.results.summary;
    assert_eq!(s.verdict, Verdict::Violations, "{:?}", s.hint);
    assert_eq!(completeness(&lossy).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_ids_fill_later_sends_and_checks_and_absences_are_judged() {
    let text = head("captures", 2) + SUBSCRIBE;
    let (url, stop) = spawn(Vec::new(), subscriber(false)).await;
    let good = run_against("captures.toml", &text, url).await;
    stop.cancel();
    assert_clean(&good, 6);

    let (url, stop) = spawn(Vec::new(), subscriber(true)).await;
    let bad = run_against("captures.toml", &text, url).await;
    stop.cancel();
    let found = completeness(&bad);
    assert_eq!(found.len(), 2, "{found:#?}");
    for (expected, seen) in found {
        assert_eq!(expected, "no error within 150ms");
        assert_eq!(seen, "error");
    }
    // The actions a connection walks carry the references as written: the swarm filled
    // them when it sent.
    let conn = &bad.plan.conns[0];
    let sends: Vec<String> = stampede::plan::expand_conn(&bad.plan, conn, 100)
        .unwrap()
        .iter()
        .filter_map(|a| match a {
            stampede::model::Action::Send { message } => Some(message.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sends[1],
        r#"{"type":"publish","sid":"{{$sid}}","n":"{{$n}}","note":"for {{$sid}}"}"#
    );
}

/// The same script with a capture path the `subscribed` answer does not have (`/id` for
/// its `sid`): the literal `{{$sid}}` goes out, the correct server refuses it, and the run
/// is unreadable, naming the capture and the answer's shape, never a server violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_that_never_finds_its_path_is_a_broken_script_not_a_violation() {
    let text = head("captures", 2) + &SUBSCRIBE.replace("sid = \"/sid\"", "sid = \"/id\"");
    assert!(text.contains("sid = \"/id\""));
    let (url, stop) = spawn(Vec::new(), subscriber(false)).await;
    let outcome = run_against("captures.toml", &text, url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.counters.expect.expectations_errored, 2, "refused in band");
    assert_eq!(s.verdict, Verdict::Unreadable, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(
        hint.starts_with(
            "`capture = { sid = \"/id\" }` found nothing at that path in any of the 2 answers"
        ),
        "{hint}"
    );
    assert!(
        hint.contains("an object with fields type, sid, n"),
        "{hint}"
    );
}

/// A push (no correlation) filtered by `where`: with the field's path right the run is
/// clean; misspelled (`topik`), every tick is let pass as someone else's and every
/// expectation goes unmet, which is a misread path (UNREADABLE naming it), not a loss; and
/// so is a value written as another type (`n = "7"` for the pushed `7`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncorrelated_where_no_push_could_pass_is_unreadable() {
    let ticker: Arc<Handler> = Arc::new(|text, _conn| {
        let msg: Value = serde_json::from_str(text).ok()?;
        let topic = msg.get("topic")?.clone();
        Some(vec![
            json!({"type": "tick", "topic": topic, "n": 7}).to_string()
        ])
    });
    let script = |tests: &str| {
        head("ticks", 3)
            + &format!(
                r#"
[[group]]
name = "watchers"
users = 3
steps = [
  {{ send = {{ type = "watch", topic = "t{{{{conn}}}}" }} }},
  {{ expect = "tick", within = "1s", where = {{ {tests} }} }},
  {{ close = 1000 }},
]
"#
            )
    };
    let run_with = |tests: &'static str| {
        let ticker = ticker.clone();
        async move {
            let (url, stop) = spawn(Vec::new(), ticker).await;
            let outcome = run_against("ticks.toml", &script(tests), url).await;
            stop.cancel();
            outcome
        }
    };
    assert_clean(&run_with(r#"topic = "t{{conn}}", n = 7"#).await, 3);
    for (tests, told) in [
        (
            r#"topik = "t{{conn}}""#,
            "a field no answer carried (\"topik\"; the first carried type, topic, n; the records",
        ),
        (
            r#"topic = "t{{conn}}", n = "7""#,
            "\"n\" = 7 where the test writes \"7\". Did you mean \"n\" = 7?",
        ),
    ] {
        let outcome = run_with(tests).await;
        let s = &outcome.results.summary;
        assert_eq!(s.verdict, Verdict::Unreadable, "{tests}: {:?}", s.hint);
        let hint = s.hint.as_deref().unwrap_or_default();
        assert!(hint.contains(told), "{tests}: {hint}");
    }
}

// ---- Errors for answers: a server that acks, then refuses every request in band ----

const ACKED: &str = r#"
[oracles]
accepted = { message = "connection_ack" }

[[group]]
name = "subscribers"
users = 4
steps = [
  { expect = "connection_ack", within = "2s" },
  { send = { id = "s-{{conn}}", type = "subscribe", payload = { query = "subscription { ticks }" } } },
  { expect = "next+ complete", correlate = "id", within = "2s" },
  { expect_none = "error", within = "50ms" },
  { close = 1000 },
]
"#;

/// A graphql-transport-ws-like server: `connection_init` gets its ack; a `subscribe`
/// whose id ends in a digit `refuse` names gets an `error` message instead of its `next`
/// and `complete`.
fn acked(refuse: fn(u32) -> bool) -> Arc<Handler> {
    acked_naming(refuse, true)
}

/// [`acked`], its errors carrying the request's `id` or not (`name_request`).
fn acked_naming(refuse: fn(u32) -> bool, name_request: bool) -> Arc<Handler> {
    Arc::new(move |text, _conn| {
        let msg: Value = serde_json::from_str(text).ok()?;
        match msg.get("type")?.as_str()? {
            "connection_init" => Some(vec![json!({"type": "connection_ack"}).to_string()]),
            "subscribe" => {
                let id = msg["id"].as_str().unwrap_or_default().to_string();
                let n: u32 = id.trim_start_matches("s-").parse().unwrap_or(0);
                if refuse(n) {
                    let mut error = json!({"type": "error", "id": id, "payload": [
                        {"message": "Cannot query field \"ticks\" on type \"Subscription\"."}
                    ]});
                    if !name_request {
                        error.as_object_mut()?.remove("id");
                    }
                    return Some(vec![error.to_string()]);
                }
                Some(vec![
                    json!({"type": "next", "id": id, "payload": {"data": {"ticks": 1}}})
                        .to_string(),
                    json!({"type": "complete", "id": id}).to_string(),
                ])
            }
            _ => Some(Vec::new()),
        }
    })
}

/// A server that acks every connection and answers every request with `error`: the ack
/// met is the handshake, not a request served, so the run is never clean: target unusable
/// (exit 5), the hint quoting the error. One that refuses only some requests under the
/// same script served the others: errors are allowed answers there, judged as usual (clean
/// here), and the hint says how many there were, quoting the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_every_request_with_an_error_is_not_clean() {
    let text = head("acked", 4)
        + "placement = { first_message = { type = \"connection_init\", payload = { token = \"{{token}}\" } } }\n";
    let text = text.replace("placement = { query = \"token\" }\n", "") + ACKED;
    let (url, stop) = spawn(Vec::new(), acked(|_| true)).await;
    let refused = run_against("acked.toml", &text, url).await;
    stop.cancel();
    let s = &refused.results.summary;
    assert_eq!(s.counters.expect.expectations_errored, 4);
    assert_eq!(s.verdict, Verdict::TargetUnusable, "{:?}", s.hint);
    assert_eq!(of_run(s), exit::TARGET_UNUSABLE);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains(
            "answered every request with its error event (4 errored, none met past the handshake"
        ) && hint.contains(r#"the first: {"type":"error","id":"s-"#)
            && hint.contains(r#"Cannot query field \"ticks\" on type \"Subscription\"."#),
        "{hint}"
    );

    let (url, stop) = spawn(Vec::new(), acked(|n| n % 2 == 1)).await;
    let some = run_against("acked.toml", &text, url).await;
    stop.cancel();
    let s = &some.results.summary;
    assert_eq!(s.counters.expect.expectations_errored, 2);
    assert_eq!(s.verdict, Verdict::Clean, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains("the server answered 2 of 12 expectations with its error event (counted, not violations; the first: {")
            && hint.contains("Cannot query field"),
        "the errors are said, not hidden: {hint}"
    );

    let (url, stop) = spawn(Vec::new(), acked(|_| false)).await;
    let served = run_against("acked.toml", &text, url).await;
    stop.cancel();
    assert_clean(&served, 12);
}

/// A bad token that presents nothing (`missing`: no `connection_init` sent) leaves a
/// graphql-transport-ws server waiting, as it must: the script's `connection_ack` times
/// out, and that is no completeness violation (the script of a token the server has not
/// accepted owes nothing; rejection hygiene judges what the server does with it). It once
/// failed a correct server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_the_server_keeps_waiting_for_owes_its_script_nothing() {
    let text = head("missing", 2)
        + "placement = { first_message = { type = \"connection_init\", payload = { token = \"{{token}}\" } } }\n";
    let missing = ACKED.replace("users = 4", "users = 2")
        + &ACKED
            .replace(
                "name = \"subscribers\"",
                "name = \"missing\"\nforge = \"missing\"",
            )
            .replace("users = 4", "users = 1")
            .replace(
                "\"connection_ack\", within = \"2s\"",
                "\"connection_ack\", within = \"300ms\"",
            )
            .split("[[group]]")
            .nth(1)
            .map(|g| format!("[[group]]{g}"))
            .unwrap();
    let text = text.replace("placement = { query = \"token\" }\n", "") + &missing;
    assert!(text.contains("forge = \"missing\""), "{text}");
    let (url, stop) = spawn(Vec::new(), acked(|_| false)).await;
    let outcome = run_against("missing.toml", &text, url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.counters.accepted, 2, "{:?}", s.counters);
    assert_eq!(s.violations.total, 0, "{:#?}", outcome.results.violations);
    assert!(
        s.counters.expect.expectations_cut >= 1,
        "{:?}",
        s.counters.expect
    );
}

/// A graphql-transport-ws-like server that acks `connection_init` before the session is
/// ready (graphql-ws issue 501's kind of race): a `subscribe` in the window gets
/// `{"type":"error","code":"not_authenticated"}` after the ack. That contradicts the
/// acceptance: completeness violations (it once passed as an allowed error, a clean run).
/// The same server without the window is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_error_after_the_ack_is_a_violation() {
    let text = head("acked", 4)
        + "placement = { first_message = { type = \"connection_init\", payload = { token = \"{{token}}\" } } }\n";
    let text = text.replace("placement = { query = \"token\" }\n", "") + ACKED;
    let racy = |window: bool| -> Arc<Handler> {
        let served = acked(|_| false);
        Arc::new(move |text, conn| {
            let msg: Value = serde_json::from_str(text).ok()?;
            let id = msg.get("id").and_then(Value::as_str).unwrap_or_default();
            let n: u32 = id.trim_start_matches("s-").parse().unwrap_or(0);
            if window && msg.get("type")?.as_str()? == "subscribe" && n % 2 == 1 {
                let error = json!({"type": "error", "id": id, "code": "not_authenticated"});
                return Some(vec![error.to_string()]);
            }
            served(text, conn)
        })
    };
    let (url, stop) = spawn(Vec::new(), racy(true)).await;
    let raced = run_against("acked.toml", &text, url).await;
    stop.cancel();
    let s = &raced.results.summary;
    assert_eq!(s.verdict, Verdict::Violations, "{:?}", s.hint);
    let unmet = completeness(&raced);
    assert_eq!(unmet.len(), 2, "{unmet:#?}");
    assert!(
        unmet
            .iter()
            .all(|(_, seen)| seen.contains("not_authenticated")),
        "{unmet:#?}"
    );

    let (url, stop) = spawn(Vec::new(), racy(false)).await;
    let ready = run_against("acked.toml", &text, url).await;
    stop.cancel();
    assert_clean(&ready, 12);
}

/// Many servers answer a request they cannot serve with an error that names no request
/// (`{"type":"error","message":...}`, no id): that error answers the oldest request still
/// unanswered. Every request answered so is a target that serves nothing (unusable, as
/// with named errors), never a run of unmet expectations (completeness violations).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_that_name_no_request_answer_the_oldest_open_one() {
    let text = head("acked", 4)
        + "placement = { first_message = { type = \"connection_init\", payload = { token = \"{{token}}\" } } }\n";
    let text = text.replace("placement = { query = \"token\" }\n", "") + ACKED;
    let (url, stop) = spawn(Vec::new(), acked_naming(|_| true, false)).await;
    let refused = run_against("acked.toml", &text, url).await;
    stop.cancel();
    let s = &refused.results.summary;
    assert_eq!(s.violations.total, 0, "{:?}", s.violations);
    assert_eq!(s.counters.expect.expectations_errored, 4);
    assert_eq!(s.verdict, Verdict::TargetUnusable, "{:?}", s.hint);

    // Some refused, the rest served: the errors are answers, the run judged as usual.
    let (url, stop) = spawn(Vec::new(), acked_naming(|n| n % 2 == 1, false)).await;
    let some = run_against("acked.toml", &text, url).await;
    stop.cancel();
    let s = &some.results.summary;
    assert_eq!(s.violations.total, 0, "{:?}", s.violations);
    assert_eq!(s.counters.expect.expectations_errored, 2);
    assert_eq!(s.verdict, Verdict::Clean, "{:?}", s.hint);
}

/// Every scenario shipped anywhere under `scenarios/` (the protocol ones included) loads.
#[test]
fn every_shipped_scenario_loads_and_each_protocol_ships_one() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files = Vec::new();
    walk(&root, &mut files);
    for path in &files {
        // A battery (`hunt.toml`) loads when every family's generated levels do.
        match stampede::scenario::load_battery_file(path) {
            Ok(Some(battery)) => {
                for family in &battery.families {
                    if let Err(e) = battery.levels(*family) {
                        panic!("{} ({}) does not load:\n{e}", path.display(), family.name());
                    }
                }
            }
            Ok(None) => {
                if let Err(e) = stampede::scenario::load_file(path) {
                    panic!("{} does not load:\n{e}", path.display());
                }
            }
            Err(e) => panic!("{} does not load:\n{e}", path.display()),
        }
    }
    for name in [
        "graphql-transport-ws",
        "phoenix-v2",
        "actioncable",
        "signalr",
    ] {
        let path = root.join("protocols").join(format!("{name}.toml"));
        assert!(files.contains(&path), "{} is missing", path.display());
    }
}

// ---- Placeholders on the upgrade: headers (run-wide and per group), first_message ----

/// Greets with the upgrade's `x-user` and `x-room` headers, then answers the first message
/// (`{"type": "auth", "user": ...}`) with `authed` naming that user.
async fn spawn_header_echo() -> (String, CancellationToken) {
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
                    tokio::spawn(async move {
                        let mut seen = json!({"type": "hello"});
                        let callback = |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                                        resp| {
                            for h in ["x-user", "x-room"] {
                                let v = req.headers().get(h).and_then(|v| v.to_str().ok());
                                seen[h.replace('-', "_")] = json!(v);
                            }
                            Ok(resp)
                        };
                        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                            return;
                        };
                        if ws.send(Message::Text(seen.to_string().into())).await.is_err() {
                            return;
                        }
                        while let Some(Ok(Message::Text(text))) = ws.next().await {
                            let Ok(msg) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                            let reply = json!({"type": "authed", "user": msg["user"], "has_token": msg["token"].as_str().is_some_and(|t| t.len() > 20)});
                            if ws.send(Message::Text(reply.to_string().into())).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        }
    });
    (format!("ws://{addr}/"), cancel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_headers_and_the_first_message_take_the_connections_placeholders() {
    let text = format!(
        r#"
name = "headers"
duration = "10s"
[auth]
secret = {{ value = "{TEST_SECRET}" }}
sub = "u-{{{{group}}}}-{{{{user}}}}"
placement = {{ first_message = {{ type = "auth", token = "{{{{token}}}}", user = "{{{{sub}}}}" }} }}
headers = {{ "X-User" = "{{{{sub}}}}", "X-Room" = "lobby" }}

[[group]]
name = "a"
users = 2
headers = {{ "X-Room" = "r{{{{conn}}}}" }}
steps = [
  {{ expect = "hello", within = "2s", where = {{ x_user = "{{{{sub}}}}", x_room = "r{{{{conn}}}}" }} }},
  {{ expect = "authed", within = "2s", where = {{ user = "{{{{sub}}}}", has_token = true }} }},
  {{ close = 1000 }},
]

[[group]]
name = "b"
users = 1
steps = [
  {{ expect = "hello", within = "2s", where = {{ x_user = "u-b-0", x_room = "lobby" }} }},
  {{ close = 1000 }},
]
"#
    );
    let (url, stop) = spawn_header_echo().await;
    let outcome = run_against("headers.toml", &text, url).await;
    stop.cancel();
    assert_clean(&outcome, 5);
}

// ---- Placeholders in the target URL's path: OCPP chargers name themselves there ----

/// Accepts every upgrade, recording its request target (path and query) in arrival order,
/// then reads until the client closes.
async fn spawn_path_recorder() -> (
    String,
    CancellationToken,
    Arc<std::sync::Mutex<Vec<String>>>,
) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let (url, stop) = spawn_server(move |tcp| {
        let record = record.clone();
        async move {
            let callback = |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                            resp| {
                record.lock().unwrap().push(req.uri().to_string());
                Ok(resp)
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                return;
            };
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
    let base = url.strip_suffix("/ws").unwrap().to_string();
    (base, stop, seen)
}

/// `target = "ws://host/ocpp/CP{{user}}/{{conn}}?g={{group}}"`: each connection's upgrade
/// asks for its own path, calibration's too, and the liveness probe after the run asks
/// for the path of the token's first connection; the summary names the URL as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connection_dials_the_target_path_with_its_own_placeholders_filled() {
    let (base, stop, seen) = spawn_path_recorder().await;
    let target = format!("{base}/ocpp/CP{{{{user}}}}/{{{{conn}}}}?g={{{{group}}}}");
    let text = format!(
        r#"
name = "ocpp"
duration = "10s"
target = "{target}"
[auth]
secret = {{ value = "{TEST_SECRET}" }}

[[group]]
name = "cp"
users = 3
connections_per_user = 2
token = "per-user"
steps = [{{ close = 1000 }}]
"#
    );
    let s = scenario("ocpp.toml", &text);
    let opts = stampede::run::RunOptions {
        learn: true,
        ..Default::default()
    };
    let run = stampede::run::run(&s, &opts, CancellationToken::new());
    let outcome = tokio::time::timeout(common::TEST_BOUND, run)
        .await
        .expect("bounded")
        .expect("run");
    stop.cancel();
    assert_eq!(outcome.results.summary.target, target, "named as written");
    let seen = seen.lock().unwrap().clone();
    let plan = &outcome.plan;
    let path = |c: &stampede::model::ConnPlan| format!("/ocpp/CP{}/{}?g=cp", c.user, c.id);
    let mut load: Vec<String> = plan.conns.iter().map(path).collect();
    load.sort();
    // Each token is probed once, as its first connection dialled.
    let mut probed = Vec::new();
    let mut tokens = std::collections::BTreeSet::new();
    for conn in &plan.conns {
        if tokens.insert(conn.token) {
            probed.push(path(conn));
        }
    }
    probed.sort();
    assert_eq!(tokens.len(), 3, "one token per user");
    // Calibration first, then the load, then the probe: each strictly after the other.
    let n = load.len() + probed.len();
    assert!(seen.len() > n, "calibration dialled too: {seen:?}");
    let (calibration, rest) = seen.split_at(seen.len() - n);
    let (mut got_load, mut got_probed) = (rest[..load.len()].to_vec(), rest[load.len()..].to_vec());
    got_load.sort();
    got_probed.sort();
    assert_eq!(got_load, load, "{seen:?}");
    assert_eq!(got_probed, probed, "{seen:?}");
    for p in calibration {
        let filled = p
            .strip_prefix("/ocpp/CP")
            .and_then(|p| p.strip_suffix("?g=cp"))
            .is_some_and(|ids| {
                ids.split('/')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
        assert!(filled, "calibration dialled {p:?}: {seen:?}");
    }
}

// ---- Named expectations: a latency histogram each, in the summary, text, HTML, compare ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_expectations_get_their_own_turn_histograms_everywhere() {
    let text = head("named", 2)
        + r#"
[[group]]
name = "subscribers"
users = 2
steps = [
  { send = { type = "subscribe", topic = "t{{conn}}" } },
  { expect = "subscribed", within = "2s", capture = { sid = "/sid", n = "/n" }, name = "ack" },
  { send = { type = "publish", sid = "{{$sid}}", n = "{{$n}}", note = "x" } },
  { expect = "event", correlate = "sid", within = "2s", name = "event" },
  { close = 1000 },
]
"#;
    let dir = tempfile::tempdir().unwrap();
    let s = scenario("named.toml", &text);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (url, stop) = spawn(Vec::new(), subscriber(false)).await;
        let outcome = run(&s, Some(url), Some(dir.path())).await;
        stop.cancel();
        assert_clean(&outcome, 4);
        let turns = &outcome.results.summary.turns;
        assert_eq!(turns.keys().collect::<Vec<_>>(), ["ack", "event"]);
        assert_eq!(turns["ack"].count, 2);
        assert_eq!(turns["event"].count, 2);
        // Every named turn is also in the run-wide turn phase.
        assert_eq!(outcome.results.summary.phases["turn"].count, 4);
        let mut out = Vec::new();
        stampede::report::render(&outcome.results.summary, &mut out).unwrap();
        let printed = String::from_utf8(out).unwrap();
        assert!(printed.contains("\nturn ack "), "{printed}");
        let json = serde_json::to_value(&outcome.results.summary).unwrap();
        assert_eq!(json["turns"]["event"]["count"], 2);
        runs.push(outcome.dir.clone().unwrap());
    }
    let data = stampede::results::read_run(&runs[0]).unwrap();
    assert_eq!(data.summary.turns["ack"].count, 2);
    let html = stampede::report::render_html(&data, None).unwrap();
    assert!(html.contains("Turn: ack"));
    let c = stampede::results::compare(
        &runs[..1],
        &runs[1..],
        &stampede::results::CompareOptions::default(),
    )
    .unwrap();
    let metrics: Vec<&str> = c.rows.iter().map(|r| r.metric.as_str()).collect();
    assert!(metrics.contains(&"turn:ack.p99"), "{metrics:?}");
    assert!(metrics.contains(&"turn:event.p50"), "{metrics:?}");
}

// ---- Mattermost: a request's `seq` is answered in `seq_reply`; events carry a `seq` of
// their own (the server's event counter) ----

const MATTERMOST: &str = r#"
[oracles]
type_field = "event"
[oracles.kinds]
reply = { has = "seq_reply" }

[[group]]
name = "typists"
users = 3
steps = [
  { send = { action = "user_typing", seq = "{{run:int}}", data = { channel_id = "c{{conn}}" } } },
  { expect = "reply", correlate = { send = "seq", reply = "seq_reply" }, within = "2s" },
  { send = { action = "get_statuses", seq = "{{run:int}}" } },
  { expect = "reply", correlate = { send = "seq", reply = "seq_reply" }, within = "2s", where = { status = "OK" } },
  { close = 1000 },
]
"#;

/// Answers each request `{"status": "OK", "seq_reply": seq}` after an event whose own `seq`
/// is the server's counter (it starts at the request's, so a correlation on `seq` in the
/// answers would take the event for the reply). `misroute`: the second request is
/// answered with the first one's `seq_reply`.
fn mattermost(misroute: bool) -> Arc<Handler> {
    Arc::new(move |text, conn| {
        let msg: Value = serde_json::from_str(text).ok()?;
        let seq = msg.get("seq")?.as_i64()?;
        conn.next += 1;
        let event = json!({"event": "typing", "seq": seq, "data": {}});
        let answered = if misroute && conn.next == 2 {
            seq - 1
        } else {
            seq
        };
        let reply = json!({"status": "OK", "seq_reply": answered});
        Some(vec![event.to_string(), reply.to_string()])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_correlated_at_another_path_is_matched_to_its_request() {
    let text = head("mattermost", 3) + MATTERMOST;
    let (url, stop) = spawn(Vec::new(), mattermost(false)).await;
    let good = run_against("mattermost.toml", &text, url).await;
    stop.cancel();
    assert_clean(&good, 6);

    let (url, stop) = spawn(Vec::new(), mattermost(true)).await;
    let bad = run_against("mattermost.toml", &text, url).await;
    stop.cancel();
    // Per connection: the first request's reply came twice (the second one misrouted),
    // and the second request never got its own.
    let found = completeness(&bad);
    let count = |expected: &str, seen: &str| {
        found
            .iter()
            .filter(|(e, s)| e == expected && s.starts_with(seen))
            .count()
    };
    assert_eq!(found.len(), 6, "{found:#?}");
    assert_eq!(
        count(
            "nothing more for a request already answered in full",
            "reply"
        ),
        3
    );
    assert_eq!(count("reply within 2s", "nothing"), 3);
    assert_eq!(
        bad.results.summary.verdict,
        Verdict::Violations,
        "{found:#?}"
    );
}

// ---- Nostr (NIP-01 + NIP-42): two requests in flight, each answered by an `OK` ----

const NOSTR: &str = r#"
[oracles]
type_field = "/0"

[[group]]
name = "writers"
users = 3
steps = [
  { send = ["AUTH", { id = "auth-{{conn}}", kind = 22242 }] },
  { send = ["EVENT", { id = "ev-{{conn}}", kind = 1, content = "hello" }] },
  { expect = "OK", correlate = { send = "/1/id", reply = "/1" }, within = "2s", where = { "/2" = true } },
  { expect = "OK", correlate = { send = "/1/id", reply = "/1" }, within = "2s", where = { "/2" = true } },
  { close = 1000 },
]
"#;

/// A relay that answers an `EVENT` before the `AUTH` sent ahead of it (both `OK`s come
/// once the event is in, the event's first). `drop_early`: the planted NIP-42 race, an
/// event that arrives before the relay has answered the client's `AUTH` is dropped
/// without an `OK`.
fn relay(drop_early: bool) -> Arc<Handler> {
    Arc::new(move |text, conn| {
        let frame: Value = serde_json::from_str(text).ok()?;
        let id = frame[1]["id"].as_str()?.to_string();
        let ok = |id: &str| json!(["OK", id, true, ""]).to_string();
        match frame[0].as_str()? {
            "AUTH" => {
                conn.joined.push(id);
                Some(Vec::new())
            }
            "EVENT" if drop_early => Some(conn.joined.drain(..).map(|a| ok(&a)).collect()),
            "EVENT" => {
                let auth = conn.joined.drain(..).map(|a| ok(&a));
                Some(std::iter::once(ok(&id)).chain(auth).collect())
            }
            _ => Some(Vec::new()),
        }
    })
}

/// Two sends in flight, then one `expect` for each: the expectations pair with the sends
/// in order (AUTH's `OK`, then EVENT's), whichever answer comes first, so a relay that
/// answers both is clean and one that drops the early event misses that event's `OK`
/// alone, not AUTH's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expectations_after_two_sends_pair_with_them_in_order() {
    let text = head("nostr", 3) + NOSTR;
    let correct = run_fake(relay(false), "nostr.toml", &text).await;
    assert_clean(&correct, 6);
    assert_eq!(correct.results.summary.verdict, Verdict::Clean);

    let racy = run_fake(relay(true), "nostr.toml", &text).await;
    let s = &racy.results.summary;
    assert_eq!(s.verdict, Verdict::Violations, "{:?}", s.hint);
    assert_eq!(s.counters.expect.expectations_met, 3, "AUTH's OKs are met");
    let unmet: Vec<&str> = racy
        .results
        .violations
        .iter()
        .map(|v| v.step.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(unmet, ["4", "4", "4"], "the event's OK, the second expect");
}

/// A `reply` path naming the `OK`'s accepted flag (`/2`) or its message (`/3`) instead of
/// the id it echoes (`/1`): every answer holds `true` (which no request id is), or `""`
/// (which no request sent), there, and no expectation is ever met, so the run is
/// unreadable, not a loss charged to a relay that answered all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_path_holding_no_id_is_unreadable_not_a_loss() {
    let text = head("nostr", 3) + &NOSTR.replace("reply = \"/1\"", "reply = \"/2\"");
    assert_eq!(text.matches("reply = \"/2\"").count(), 2, "{text}");
    let outcome = run_fake(relay(false), "nostr.toml", &text).await;
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Unreadable, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("held true at the path"), "{hint}");
    assert!(hint.contains("(\"/2\")"), "{hint}");
    // The OK's message (`/3`, empty): a string, though one no request sent.
    let text = head("nostr", 3) + &NOSTR.replace("reply = \"/1\"", "reply = \"/3\"");
    let outcome = run_fake(relay(false), "nostr.toml", &text).await;
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Unreadable, "{:?}", s.hint);
    let hint = s.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("held \"\" at the path"), "{hint}");
}

/// An answer that comes before its expectation opens (the script thinks between the
/// request and the `expect`) is kept with its value at the reply path (`seq_reply`), not
/// the request's (`seq`), so the expectation claims it when it opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_kept_before_its_expectation_opens_is_claimed_at_the_reply_path() {
    let thinking = MATTERMOST.replace(
        "data = { channel_id = \"c{{conn}}\" } } },",
        "data = { channel_id = \"c{{conn}}\" } } },\n  { think = \"150ms\" },",
    );
    assert!(thinking.contains("think"), "{thinking}");
    let text = head("mattermost", 3) + &thinking;
    let good = run_fake(mattermost(false), "mattermost.toml", &text).await;
    assert_clean(&good, 6);
}

// ---- Pipelined JSON-RPC: a burst of requests, then their answers ----

const PIPELINED: &str = r#"
[oracles]
type_field = "kind"

[[group]]
name = "pipeliners"
users = 3
steps = [
  { repeat = 8, steps = [{ send = { jsonrpc = "2.0", id = "{{run:int}}", method = "echo" } }] },
  { repeat = 8, steps = [{ expect = "result", correlate = "id", within = "2s" }] },
  { close = 1000 },
]
"#;

/// Answers every request with its `id`, except the one whose id is `lost`.
fn pipelined(lost: Option<u64>) -> Arc<Handler> {
    Arc::new(move |text: &str, _: &mut Conn| {
        let request: Value = serde_json::from_str(text).ok()?;
        let id = request["id"].as_u64()?;
        let answer = json!({"jsonrpc": "2.0", "kind": "result", "id": id, "result": id});
        Some(match lost == Some(id) {
            true => Vec::new(),
            false => vec![answer.to_string()],
        })
    })
}

/// A loop of 8 sends and then a loop of 8 correlated expects (the natural way to write a
/// pipelined burst) pairs iteration `i` of the answers with the `i`-th request: a server
/// answering every one is clean (it once failed 7 of 8 per connection, every iteration
/// waiting for the last id), and one that loses the 5th request's answer breaks exactly
/// that expectation on each connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_of_answers_pairs_with_a_burst_of_requests_in_order() {
    let text = head("pipelined", 3) + PIPELINED;
    let outcome = run_fake(pipelined(None), "pipelined.toml", &text).await;
    assert_clean(&outcome, 24);
    assert_eq!(outcome.results.summary.verdict, Verdict::Clean);
    let outcome = run_fake(pipelined(Some(5)), "pipelined.toml", &text).await;
    let lost = &outcome.results.violations;
    assert_eq!(lost.len(), 3, "{lost:#?}");
    assert!(
        lost.iter().all(|v| v.correlation.as_deref() == Some("5")),
        "{lost:#?}"
    );
}

/// A server that ends the connection with a Close whose reason says why (graphql-ws's
/// 4409 "Subscriber for <id> already exists", a script that reused a subscription id):
/// the unmet expectation quotes the reason with the code, the words that tell a user
/// the script is at fault. It once said only "server closed with 4409".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_reason_is_quoted_with_its_code_in_what_it_cut_off() {
    let (url, stop) = spawn_server(|tcp| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        if let Some(Ok(Message::Text(text))) = ws.next().await {
            let request: Value = serde_json::from_str(&text).unwrap_or_default();
            let id = request["id"].as_str().unwrap_or_default();
            let reason = format!("Subscriber for {id} already exists");
            let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: 4409.into(),
                reason: reason.into(),
            };
            let _ = ws.close(Some(frame)).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
    let text = head("closed", 2)
        + r#"
[oracles]
type_field = "type"

[[group]]
name = "subscribers"
users = 2
steps = [
  { send = { type = "subscribe", id = "s-{{conn}}" } },
  { expect = "next", correlate = "id", within = "2s" },
]
"#;
    let outcome = run_against("closed.toml", &text, url).await;
    stop.cancel();
    let found = completeness(&outcome);
    assert_eq!(found.len(), 2, "{found:#?}");
    for (_, seen) in &found {
        assert!(
            seen.starts_with("nothing; then server closed with 4409 \"Subscriber for s-")
                && seen.ends_with(" already exists\""),
            "{seen}"
        );
    }
}

// ---- Socket.IO: Engine.IO v4 packets carrying Socket.IO v5 packets ----

const SOCKET_IO: &str = r#"
[oracles]
framing = "socket.io"
accepted = { message = "connect" }
reject = { message = "refused" }

[oracles.kinds]
refused = { type = "connect_error" }

[[group]]
name = "talkers"
users = 3
steps = [
  { expect = "connect", within = "2s" },
  { send = ["join", "room-{{conn}}"] },
  { expect = "joined", within = "2s", where = { "/data/0" = "room-{{conn}}" } },
  { send = { type = "say", id = "{{run}}", data = [{ room = "room-{{conn}}", text = "hi" }] } },
  { expect = "ack", correlate = "id", within = "2s", where = { "/data/0/ok" = true } },
  { expect = "said", within = "1s", where = { "/data/0/room" = "room-{{conn}}" } },
  { close = 1000 },
]
"#;

/// The scenario's head: the token goes in Socket.IO's CONNECT packet (`40{"token":…}`),
/// signed with `secret`.
fn socket_io_head(secret: &str) -> String {
    format!(
        "name = \"socketio\"\nseed = 3\nduration = \"20s\"\n[auth]\nsecret = {{ value = \"{secret}\" }}\n\
         placement = {{ first_message = {{ type = \"connect\", data = {{ token = \"{{{{token}}}}\" }} }} }}\n"
    ) + SOCKET_IO
}

/// What the fake sends first: Engine.IO's open packet, then a ping at once.
fn engine_greeting() -> Vec<String> {
    let open = json!({"sid": "e1", "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000});
    vec![format!("0{open}"), "2".into()]
}

/// [`socket_io`], also sending an application event named `error` (a notice, no error
/// answer: Socket.IO reserves no such name) before each ack.
fn socket_io_noisy(drop_said: bool) -> Arc<Handler> {
    let serve = socket_io(drop_said);
    Arc::new(move |text, conn| {
        let mut out = serve(text, conn)?;
        if text.contains("\"say\"") {
            out.insert(
                0,
                format!("42{}", json!(["error", {"message": "rate limit notice"}])),
            );
        }
        Some(out)
    })
}

/// A Socket.IO server: checks the CONNECT packet's token (`44` refuses it), ends a client
/// that sends an event before answering its ping (as a server whose `pingTimeout` passed),
/// acknowledges `say` and broadcasts `said` to the room, unless `drop_said` (the room's
/// broadcast is lost).
fn socket_io(drop_said: bool) -> Arc<Handler> {
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
    Arc::new(move |text, conn| {
        if text == "3" {
            conn.next += 1;
            return Some(Vec::new());
        }
        if let Some(auth) = text.strip_prefix("40") {
            let auth: Value = serde_json::from_str(auth).ok()?;
            let key = DecodingKey::from_secret(TEST_SECRET.as_bytes());
            let valid = decode::<Value>(
                auth["token"].as_str()?,
                &key,
                &Validation::new(Algorithm::HS256),
            )
            .is_ok();
            let answer = if valid {
                r#"40{"sid":"s1"}"#
            } else {
                r#"44{"message":"unauthorized"}"#
            };
            return Some(vec![answer.into()]);
        }
        let event = text.strip_prefix("42")?;
        if conn.next == 0 {
            return None;
        }
        let digits = event.bytes().take_while(u8::is_ascii_digit).count();
        let (id, args) = event.split_at(digits);
        let args: Vec<Value> = serde_json::from_str(args).ok()?;
        match args.first()?.as_str()? {
            "join" => {
                conn.joined.push(args.get(1)?.as_str()?.to_string());
                Some(vec![format!("42{}", json!(["joined", args[1]]))])
            }
            "say" => {
                let mut out = vec![format!("43{id}{}", json!([{"ok": true}]))];
                if !drop_said {
                    out.push(format!("42{}", json!(["said", args.get(1)?])));
                }
                // A ping right behind: it is read while the script's Close is out.
                out.push("2".into());
                Some(out)
            }
            _ => Some(Vec::new()),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_packets_are_read_written_and_pinged_back() {
    let text = socket_io_head(TEST_SECRET);
    let (url, stop) = spawn(engine_greeting(), socket_io(false)).await;
    let good = run_against("socketio.toml", &text, url).await;
    stop.cancel();
    // Every expectation met: the pong went out before the first event (the server ends a
    // client that has not answered its ping), the ack correlated on its id.
    assert_clean(&good, 12);
    assert_eq!(good.results.summary.verdict, Verdict::Clean);
    // A ping read after the script's Close went out is not answered: nothing may follow
    // a Close, and each connection ends as the script closed it.
    let ended = &good.results.summary.counters.ended_by;
    assert_eq!(
        ended.get(&stampede::model::Cause::ClientClose(1000)),
        Some(&3),
        "{ended:?}"
    );

    let (url, stop) = spawn(engine_greeting(), socket_io(true)).await;
    let bad = run_against("socketio.toml", &text, url).await;
    stop.cancel();
    let found = completeness(&bad);
    assert_eq!(found.len(), 3, "{found:#?}");
    for (expected, seen) in found {
        assert!(expected.starts_with("said within 1s"), "{expected}");
        assert!(seen.starts_with("nothing"), "{seen}");
    }
    assert_eq!(bad.results.summary.verdict, Verdict::Violations);
}

/// A Socket.IO server strict about heart-beats: after the open packet, a CONNECT packet
/// gets a ping first, and only once that ping is answered (`3`) the CONNECT ack
/// (`40{"sid":…}`); a client that leaves the ping unanswered for 300 ms is closed 1008, as
/// a server closes one whose `pingTimeout` passed. Then it acknowledges nothing else.
async fn socket_io_pinging(tcp: tokio::net::TcpStream) {
    use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let open = json!({"sid": "e1", "upgrades": [], "pingInterval": 300, "pingTimeout": 300});
    if ws
        .send(Message::Text(format!("0{open}").into()))
        .await
        .is_err()
    {
        return;
    }
    let mut pinged_at = None;
    loop {
        let wait = pinged_at.map_or(common::TEST_BOUND, |at: tokio::time::Instant| {
            (at + std::time::Duration::from_millis(300))
                .saturating_duration_since(tokio::time::Instant::now())
        });
        let next = match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return,
            Err(_) => {
                let frame = CloseFrame {
                    code: CloseCode::from(1008),
                    reason: "ping timeout".into(),
                };
                let _ = ws.close(Some(frame)).await;
                let _ = tokio::time::timeout(common::TEST_BOUND, ws.next()).await;
                return;
            }
        };
        if next.as_str().starts_with("40") {
            pinged_at = Some(tokio::time::Instant::now());
            if ws.send(Message::Text("2".into())).await.is_err() {
                return;
            }
        } else if next.as_str() == "3" && pinged_at.take().is_some() {
            let ack = Message::Text(r#"40{"sid":"s1"}"#.into());
            if ws.send(ack).await.is_err() {
                return;
            }
        }
    }
}

/// The liveness probe after the run reads the server's answer as the run does: the
/// Socket.IO CONNECT ack (`40{…}`, kind `connect`) accepts it, and the server's ping is
/// answered. Read as plain JSON, no probe saw the ack, and the server closed each one
/// 1008 for its unanswered ping: a "session still held" confirmed on a correct server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_after_a_socket_io_run_reads_its_packets_and_answers_its_pings() {
    let head = socket_io_head(TEST_SECRET);
    let steps = head.find("steps = [").unwrap();
    let text = format!(
        "{}steps = [\n  {{ expect = \"connect\", within = \"2s\" }},\n  {{ close = 1000 }},\n]\n",
        &head[..steps]
    );
    let (url, stop) = spawn_server(socket_io_pinging).await;
    let outcome = run_against("socketio-pings.toml", &text, url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.counters.expect.expectations_met, 3, "{:?}", s.hint);
    assert_eq!(s.probe.tokens, 3, "{:?}", s.probe);
    assert_eq!(
        (s.probe.refused, s.probe.inconclusive),
        (0, 0),
        "{:?}",
        s.probe
    );
    assert_eq!(s.violations.total, 0, "{:?}", outcome.results.violations);
    assert_eq!(s.verdict, Verdict::Clean, "{:?}", s.hint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_io_connect_error_for_every_token_is_auth_misconfigured() {
    let text = socket_io_head("not-the-servers-secret");
    let (url, stop) = spawn(engine_greeting(), socket_io(false)).await;
    let outcome = run_against("socketio.toml", &text, url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::AuthMisconfigured, "{:?}", s.hint);
    assert_eq!((s.counters.accepted, s.counters.rejected), (0, 3));
}

// ---- STOMP 1.2: COMMAND, headers, body, NUL ----

/// The framing's defaults at work: CONNECTED accepts, ERROR refuses.
const STOMP: &str = r#"
[oracles]
framing = "stomp"

[[group]]
name = "subscribers"
users = 3
steps = [
  { expect = "CONNECTED", within = "2s" },
  { send = { type = "SUBSCRIBE", headers = { id = "sub-{{conn}}", destination = "/topic/room-{{conn}}", receipt = "r-{{conn}}" } } },
  { expect = "RECEIPT", correlate = { send = "/headers/receipt", reply = "/headers/receipt-id" }, within = "2s" },
  { send = { type = "SEND", headers = { destination = "/app/say" }, body = { room = "room-{{conn}}", text = "hi" } } },
  { expect = "MESSAGE", correlate = { send = "/headers/id", reply = "/headers/subscription" }, within = "1s", where = { "/body/text" = "hi" } },
  { close = 1000 },
]
"#;

/// The scenario's head: the token goes in the CONNECT frame's `Authorization` header,
/// signed with `secret`.
fn stomp_head(secret: &str) -> String {
    format!(
        "name = \"stomp\"\nseed = 3\nduration = \"20s\"\n[auth]\nsecret = {{ value = \"{secret}\" }}\n\
         placement = {{ first_message = {{ type = \"CONNECT\", headers = {{ \"accept-version\" = \"1.2\", host = \"localhost\", Authorization = \"Bearer {{{{token}}}}\" }} }} }}\n"
    ) + STOMP
}

/// A STOMP frame as the fake reads it: command, headers (in order), body.
type StompFrame = (String, Vec<(String, String)>, String);

/// One STOMP frame's command, headers (first of a name counts) and body.
fn stomp_frame(text: &str) -> Option<StompFrame> {
    let frame = text.trim_start_matches('\n').strip_suffix('\0')?;
    let (head, body) = frame.split_once("\n\n")?;
    let mut lines = head.lines();
    let command = lines.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some((command, headers, body.to_string()))
}

/// A STOMP broker: checks the CONNECT frame's bearer token (`ERROR` refuses it), answers
/// a SUBSCRIBE's receipt, sends a heart-beat after CONNECTED, and delivers a SEND to the
/// subscriptions of its room as MESSAGE frames, unless `drop_first` (the subscription is
/// registered only after the first SEND reached the room: the receipt went out first).
fn stomp_broker(drop_first: bool) -> Arc<Handler> {
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
    Arc::new(move |text, conn| {
        let (command, headers, body) = stomp_frame(text)?;
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        match command.as_str() {
            "CONNECT" => {
                let token = header("Authorization")?;
                let key = DecodingKey::from_secret(TEST_SECRET.as_bytes());
                let validation = Validation::new(Algorithm::HS256);
                let valid =
                    decode::<Value>(token.strip_prefix("Bearer ")?, &key, &validation).is_ok();
                Some(if valid {
                    vec![
                        "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0".into(),
                        "\n".into(),
                    ]
                } else {
                    vec!["ERROR\nmessage:unauthorized\n\nbad token\0".into()]
                })
            }
            "SUBSCRIBE" => {
                let (id, destination) = (header("id")?, header("destination")?);
                conn.subscriptions.push(format!("{id} {destination}"));
                let receipt = header("receipt")?;
                Some(vec![format!("RECEIPT\nreceipt-id:{receipt}\n\n\0")])
            }
            "SEND" => {
                conn.next += 1;
                if drop_first && conn.next == 1 {
                    return Some(Vec::new());
                }
                let msg: Value = serde_json::from_str(&body).ok()?;
                let topic = format!("/topic/{}", msg["room"].as_str()?);
                let out = conn
                    .subscriptions
                    .iter()
                    .filter_map(|s| s.split_once(' '))
                    .filter(|(_, d)| *d == topic)
                    .map(|(id, d)| {
                        format!(
                            "MESSAGE\nsubscription:{id}\nmessage-id:{}\ndestination:{d}\n\
                             content-type:application/json\n\n{body}\0",
                            conn.next
                        )
                    })
                    .collect();
                Some(out)
            }
            _ => Some(Vec::new()),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_frames_are_read_and_written_with_headers_and_bodies() {
    let text = stomp_head(TEST_SECRET);
    let good = run_fake(stomp_broker(false), "stomp.toml", &text).await;
    // The receipt correlated with its SUBSCRIBE, each MESSAGE with its subscription; the
    // broker's heart-beat no record.
    assert_clean(&good, 9);
    assert_eq!(good.results.summary.verdict, Verdict::Clean);

    let bad = run_fake(stomp_broker(true), "stomp.toml", &text).await;
    let found = completeness(&bad);
    assert_eq!(found.len(), 3, "{found:#?}");
    for (expected, seen) in found {
        assert!(expected.starts_with("MESSAGE within 1s"), "{expected}");
        assert!(seen.starts_with("nothing"), "{seen}");
    }

    let refused = run_fake(
        stomp_broker(false),
        "stomp.toml",
        &stomp_head("not-the-brokers-secret"),
    )
    .await;
    let s = &refused.results.summary;
    assert_eq!(s.verdict, Verdict::AuthMisconfigured, "{:?}", s.hint);
}

// ---- Pusher protocol: `data` is JSON carried as a string ----

const PUSHER: &str = r#"
[oracles]
type_field = "event"
embedded_json = ["data"]
accepted = { message = "pusher:connection_established" }

[[group]]
name = "listeners"
users = 3
steps = [
  { expect = "pusher:connection_established", within = "2s", where = { "data.activity_timeout" = 120 } },
  { send = { event = "pusher:subscribe", data = { channel = "room-{{conn}}" } } },
  { expect = "pusher_internal:subscription_succeeded", correlate = { send = "data.channel", reply = "channel" }, within = "2s" },
  { send = { event = "client-say", channel = "room-{{conn}}", data = { text = "hi" } } },
  { expect = "chat", correlate = "channel", within = "1s", where = { "data.text" = "hi" } },
  { close = 1000 },
]
"#;

/// A Pusher-protocol server (Soketi, Laravel Reverb): every `data` it sends is JSON
/// written as a string. A `client-say` comes back to the channel as `chat`, its text
/// upper-cased when `shout` (the field test must see inside the string to tell).
fn pusher(shout: bool) -> Arc<Handler> {
    Arc::new(move |text, _conn| {
        let msg: Value = serde_json::from_str(text).ok()?;
        let as_string = |v: Value| Value::String(v.to_string());
        match msg["event"].as_str()? {
            "pusher:subscribe" => {
                let channel = msg["data"]["channel"].clone();
                let ok = json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"});
                Some(vec![ok.to_string()])
            }
            "client-say" => {
                let mut said = msg["data"]["text"].as_str()?.to_string();
                if shout {
                    said = said.to_uppercase();
                }
                let data = as_string(json!({"text": said, "user": "someone"}));
                let chat = json!({"event": "chat", "channel": msg["channel"], "data": data});
                Some(vec![chat.to_string()])
            }
            _ => Some(Vec::new()),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_carried_in_a_string_is_read_inside() {
    let established = json!({"event": "pusher:connection_established",
        "data": json!({"socket_id": "1.2", "activity_timeout": 120}).to_string()});
    let greeting = vec![established.to_string()];
    let text = head("pusher", 3) + PUSHER;
    let (url, stop) = spawn(greeting.clone(), pusher(false)).await;
    let good = run_against("pusher.toml", &text, url).await;
    stop.cancel();
    assert_clean(&good, 9);

    let (url, stop) = spawn(greeting.clone(), pusher(true)).await;
    let bad = run_against("pusher.toml", &text, url).await;
    stop.cancel();
    let found = completeness(&bad);
    assert_eq!(found.len(), 3, "{found:#?}");
    for (expected, _) in found {
        assert!(expected.contains("data.text"), "{expected}");
    }

    // Without `embedded_json` the same server's answers cannot pass a field test inside
    // `data`: nothing is met that looks inside it.
    let blind = text.replace("embedded_json = [\"data\"]\n", "");
    let (url, stop) = spawn(greeting, pusher(false)).await;
    let unread = run_against("pusher.toml", &blind, url).await;
    stop.cancel();
    assert!(unread.results.summary.counters.expect.expectations_met < 9);
}

/// Under `framing = "socket.io"`, what `[oracles]` leaves out is the protocol's: CONNECT
/// accepts, CONNECT_ERROR refuses (a wrong secret is auth misconfigured), and an event
/// named `error` is an application's event, no error answer that would settle what the
/// script waits for (a lost broadcast read clean).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_defaults_accept_refuse_and_leave_error_events_alone() {
    let bare = |secret: &str| {
        socket_io_head(secret)
            .replace("accepted = { message = \"connect\" }\n", "")
            .replace("reject = { message = \"refused\" }\n", "")
            .replace(
                "[oracles.kinds]\nrefused = { type = \"connect_error\" }\n",
                "",
            )
    };
    assert!(!bare(TEST_SECRET).contains("accepted"));
    let (url, stop) = spawn(engine_greeting(), socket_io(false)).await;
    let refused = run_against("socketio.toml", &bare("not-the-servers-secret"), url).await;
    stop.cancel();
    let s = &refused.results.summary;
    assert_eq!(s.verdict, Verdict::AuthMisconfigured, "{:?}", s.hint);

    let (url, stop) = spawn(engine_greeting(), socket_io_noisy(true)).await;
    let lost = run_against("socketio.toml", &bare(TEST_SECRET), url).await;
    stop.cancel();
    assert_eq!(
        completeness(&lost).len(),
        3,
        "{:#?}",
        lost.results.violations
    );
    assert_eq!(lost.results.summary.verdict, Verdict::Violations);

    let (url, stop) = spawn(engine_greeting(), socket_io_noisy(false)).await;
    let good = run_against("socketio.toml", &bare(TEST_SECRET), url).await;
    stop.cancel();
    assert_clean(&good, 12);
}

/// A scenario that does not set `framing` against a Socket.IO server: the hint says so
/// first (its first message, plain JSON, is no packet the server reads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_io_server_read_without_its_framing_is_named() {
    let text = socket_io_head(TEST_SECRET).replace("framing = \"socket.io\"\n", "");
    let (url, stop) = spawn(engine_greeting(), socket_io(false)).await;
    let outcome = run_against("socketio.toml", &text, url).await;
    stop.cancel();
    let hint = outcome.results.summary.hint.unwrap_or_default();
    assert!(
        hint.starts_with(
            "the server speaks Socket.IO (what it sent, or the scenario's target and messages, \
             are Socket.IO's): set [oracles] framing = \"socket.io\"; "
        ),
        "{hint}"
    );
}

/// A send larger than the write room a connection had before (1 MiB) goes out whole when
/// `[limits] max_message_bytes` makes room for it (it ended its connection as a protocol
/// error charged to the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_up_to_max_message_bytes_goes_out() {
    let blob = "x".repeat(1_500_000);
    let text = head("big", 1)
        + &format!(
            "[limits]\nmax_message_bytes = 2097152\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [\n  \
             {{ send = {{ type = \"big\", id = \"b\", blob = \"{blob}\" }} }},\n  \
             {{ expect = \"got\", correlate = \"id\", within = \"5s\" }},\n  {{ close = 1000 }},\n]\n"
        );
    let got = Arc::new(|text: &str, _: &mut Conn| {
        let msg: Value = serde_json::from_str(text).ok()?;
        let size = msg["blob"].as_str()?.len();
        Some(vec![
            json!({"type": "got", "id": msg["id"], "size": size}).to_string()
        ])
    });
    let outcome = run_fake(got, "big.toml", &text).await;
    assert_clean(&outcome, 1);
}

/// One credential for every user (a shared password, `tokens = { list = [...] }` shorter
/// than the users): the exclusivity violations its concurrent use makes come with a note
/// that a server letting one credential hold many sessions does so by its policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_credential_names_its_policy_beside_exclusivity() {
    let text = "name = \"shared\"\nseed = 3\nduration = \"20s\"\n[auth]\n\
                tokens = { list = [\"guest\"] }\nplacement = { query = \"token\" }\n\
                [[group]]\nname = \"g\"\nusers = 3\nsteps = [\n  \
                { expect = \"welcome\", within = \"2s\" },\n  { think = \"300ms\" },\n  \
                { send = { type = \"ping\", n = \"{{conn}}\" } },\n  \
                { expect = \"pong\", correlate = \"n\", within = \"2s\" },\n  \
                { close = 1000 },\n]\n";
    let welcome = vec![json!({"type": "welcome"}).to_string()];
    let pong = Arc::new(|text: &str, _: &mut Conn| {
        let msg: Value = serde_json::from_str(text).ok()?;
        Some(vec![json!({"type": "pong", "n": msg["n"]}).to_string()])
    });
    let (url, stop) = spawn(welcome, pong).await;
    let outcome = run_against("shared.toml", text, url).await;
    stop.cancel();
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::Violations, "{:?}", s.hint);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("tokens of [auth] tokens (list#1) that several connections presented")
            && hint.contains("judged with [oracles] exclusive = false"),
        "{hint}"
    );
}

/// A STOMP scenario without its framing against a broker that stays silent (a CONNECT
/// without its NUL is no frame to it): the scenario's own messages name the framing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stomp_scenario_without_its_framing_is_named_by_its_messages() {
    let text = stomp_head(TEST_SECRET).replace("framing = \"stomp\"\n", "");
    let silent = Arc::new(|_: &str, _: &mut Conn| Some(Vec::new()));
    let outcome = run_fake(silent, "stomp.toml", &text).await;
    let hint = outcome.results.summary.hint.unwrap_or_default();
    assert!(
        hint.starts_with("the server speaks STOMP") && hint.contains("framing = \"stomp\""),
        "{hint}"
    );
}

/// No token travels (`placement = "none"`): the CONNECT the script sends carries the
/// credentials, and a broker refusing every one is told apart from a token problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_the_script_sends_are_what_a_refusal_points_at() {
    let text = "name = \"stomp\"\nseed = 3\nduration = \"20s\"\n[auth]\nplacement = \"none\"\n\
                [oracles]\nframing = \"stomp\"\n[[group]]\nname = \"g\"\nusers = 2\nsteps = [\n  \
                { send = { type = \"CONNECT\", headers = { \"accept-version\" = \"1.2\", Authorization = \"Bearer wrong\" } } },\n  \
                { expect = \"CONNECTED\", within = \"2s\" },\n  { close = 1000 },\n]\n";
    let outcome = run_fake(stomp_broker(false), "stomp.toml", text).await;
    let s = &outcome.results.summary;
    assert_eq!(s.verdict, Verdict::AuthMisconfigured, "{:?}", s.hint);
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.starts_with("every connection was refused")
            && hint.contains("check the credentials the script itself sends")
            && !hint.contains("signing secret"),
        "{hint}"
    );
}

/// An uncorrelated expectation whose `where` every record of its kinds failed says what
/// they held, not only that nothing came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_failed_a_where_are_named_when_nothing_passed() {
    let text = socket_io_head(TEST_SECRET).replace(
        r#"{ expect = "joined", within = "2s", where = { "/data/0" = "room-{{conn}}" } }"#,
        r#"{ expect = "joined", within = "300ms", where = { "/data/0" = "lobby" } }"#,
    );
    assert!(text.contains("lobby"));
    let (url, stop) = spawn(engine_greeting(), socket_io(false)).await;
    let outcome = run_against("socketio.toml", &text, url).await;
    stop.cancel();
    let seen: Vec<String> = outcome
        .results
        .violations
        .iter()
        .filter(|v| v.expected.starts_with("joined"))
        .map(|v| v.seen.clone())
        .collect();
    assert_eq!(seen.len(), 3, "{:#?}", outcome.results.violations);
    for s in seen {
        assert!(
            s.starts_with("nothing (1 record of its kinds failed its where, the first (joined) held /data/0 = \"room-"),
            "{s}"
        );
    }
}

/// A server that never lets a user's session go: the first connection of each user is
/// welcomed; any later one (the liveness probe after the run) is closed with `code` and
/// `reason` before a word.
async fn never_lets_go(
    tcp: tokio::net::TcpStream,
    seen: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    (code, reason): (u16, &'static str),
) {
    use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
    let Some((mut ws, sub)) = common::accept_with_sub(tcp).await else {
        return;
    };
    let first = seen.lock().map(|mut s| s.insert(sub)).unwrap_or(false);
    if !first {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let _ = ws.close(Some(frame)).await;
        let _ = tokio::time::timeout(common::TEST_BOUND, ws.next()).await;
        return;
    }
    let welcome = json!({"type": "welcome"}).to_string();
    if ws.send(Message::Text(welcome.into())).await.is_err() {
        return;
    }
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            break;
        }
    }
}

/// The probe after the run refused in the server's own words that the session is still
/// held ("session already active", whatever its code, or a 4409): a leaked session, a
/// liveness violation, though the scenario declares no such code. A "who are you" close
/// (4401 "unauthorized") is the server's token policy, and a plain normal close proves
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_refused_saying_the_session_is_held_is_a_leak_in_any_code() {
    let text = format!(
        "name = \"held\"\nduration = \"10s\"\n[auth]\nsecret = {{ value = \"{TEST_SECRET}\" }}\n\
         [[group]]\nname = \"g\"\nusers = 3\nsteps = [{{ expect = \"welcome\", within = \"2s\" }}, {{ close = 1000 }}]\n"
    );
    for (close, leaks) in [
        ((1000, "session already active"), 3),
        ((4409, "conflict"), 3),
        ((4401, "unauthorized"), 0),
        ((1000, "bye"), 0),
    ] {
        let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let (url, stop) = spawn_server(move |tcp| never_lets_go(tcp, seen.clone(), close)).await;
        let outcome = run_against("held.toml", &text, url).await;
        stop.cancel();
        let s = &outcome.results.summary;
        assert_eq!(s.probe.tokens, 3, "{close:?}: {:?}", s.probe);
        assert_eq!(
            s.violations.of(OracleKind::Liveness),
            leaks,
            "{close:?}: {:?}",
            s.hint
        );
    }
}
