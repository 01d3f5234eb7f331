//! `[[answer]]` tables: what every connection sends when the server pings it in band.

use super::steps::capture;
use super::template::{check_placeholders, to_json, valid_capture_name, CAPTURES};
use super::walk::{found, kind, Ctx, Fields, Node};
use crate::model::capture_refs;
use crate::model::{deep_steps, AnswerRule, Framing, Scenario, Step};
use serde_json::Value;
use std::collections::BTreeSet;
use toml::de::DeValue;

const ANSWER_KEYS: &[&str] = &["on", "capture", "send"];

/// Placeholders an answer's `send` may hold: a step `send`'s, but `{{marker}}` (an answer
/// is timed from nothing).
const ANSWER_PLACEHOLDERS: &[&str] = &[
    "user", "conn", "run", "group", "sub", "random", "uuid", CAPTURES,
];

/// Every `[[answer]]` of the file, in file order. Read after the groups and `[oracles]`:
/// a `{{$name}}` may name what an `expect` of any group captures, and the send is checked
/// against the framing.
pub(super) fn answers(
    cx: &mut Ctx<'_>,
    node: Option<&Node<'_>>,
    scenario: &Scenario,
) -> Vec<AnswerRule> {
    let Some(node) = node else {
        return Vec::new();
    };
    let DeValue::Array(items) = node.get_ref() else {
        let message = format!(
            "answer: expected [[answer]] tables, found {}",
            found(node.get_ref())
        );
        cx.report(node.span(), message);
        return Vec::new();
    };
    let captured: BTreeSet<&str> = scenario
        .groups
        .iter()
        .flat_map(|g| deep_steps(&g.steps))
        .filter_map(|step| match step {
            Step::Expect(e) => Some(e),
            _ => None,
        })
        .flat_map(|e| e.capture.iter().map(|c| c.name.as_str()))
        .collect();
    items
        .iter()
        .filter_map(|item| answer(cx, item, &captured, scenario.oracles.framing))
        .collect()
}

/// One `[[answer]]` table: `on` (a non-empty kind), optional `capture`, `send`.
fn answer(
    cx: &mut Ctx<'_>,
    node: &Node<'_>,
    captured: &BTreeSet<&str>,
    framing: Framing,
) -> Option<AnswerRule> {
    let table = cx.table("answer", node)?;
    let f = Fields::new(cx, table, node.span(), "[[answer]]", ANSWER_KEYS);
    let on = match f.require(cx, "on") {
        Some(n) => match cx.string("on", n) {
            Some("") => {
                cx.report(
                    n.span(),
                    "on: expected the kind of record to answer (its [oracles] type_field \
                     value), like on = \"ping\"; found an empty string",
                );
                None
            }
            other => other.map(str::to_string),
        },
        None => None,
    };
    let capture = f.get("capture").map(|n| capture(cx, n)).unwrap_or_default();
    let send = f.require(cx, "send").map(|n| send(cx, n));
    let (on, send) = (on?, send?);
    let own: BTreeSet<&str> = capture.iter().map(|c| c.name.as_str()).collect();
    if let Some(n) = f.get("send") {
        check_captures(cx, n, &send, &|name| {
            own.contains(name) || captured.contains(name)
        });
        let problem = match framing {
            Framing::SocketIo => super::socket_io_send_problem(&send),
            Framing::Stomp => super::stomp_send_problem(&send),
            Framing::Plain => None,
        };
        if let Some(why) = problem {
            cx.report(n.span(), format!("answer send: {why}"));
        }
    }
    Some(AnswerRule { on, capture, send })
}

/// `send = { ... }` or `[ ... ]` (a JSON object or array, as a step's `send`), or a string
/// holding JSON text (`send = '{"event":"pusher:pong","data":{}}'`).
fn send(cx: &mut Ctx<'_>, node: &Node<'_>) -> Value {
    match node.get_ref() {
        DeValue::Table(_) | DeValue::Array(_) => to_json(cx, node, ANSWER_PLACEHOLDERS),
        DeValue::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                check_strings(cx, node, &value);
                value
            }
            Err(e) => {
                let message = format!(
                    "send: expected a table (a JSON object) like {{ type = \"pong\" }}, an \
                     array, or a string holding JSON text; this string is no JSON ({e})"
                );
                cx.report(node.span(), message);
                Value::Null
            }
        },
        other => {
            let message = format!(
                "send: expected a table (a JSON object) like {{ type = \"pong\" }}, an array, \
                 or a string holding JSON text, found {}",
                kind(other)
            );
            cx.report(node.span(), message);
            Value::Null
        }
    }
}

/// Checks the placeholders of every string in `value` (parsed from JSON text at `node`).
fn check_strings(cx: &mut Ctx<'_>, node: &Node<'_>, value: &Value) {
    match value {
        Value::String(s) => check_placeholders(cx, node.span(), s, ANSWER_PLACEHOLDERS, "send"),
        Value::Array(items) => items.iter().for_each(|v| check_strings(cx, node, v)),
        Value::Object(map) => map.values().for_each(|v| check_strings(cx, node, v)),
        _ => {}
    }
}

/// Reports every `{{$name}}` in `value` that `known` does not hold.
fn check_captures(cx: &mut Ctx<'_>, node: &Node<'_>, value: &Value, known: &dyn Fn(&str) -> bool) {
    match value {
        Value::String(s) => {
            for name in capture_refs(s) {
                if valid_capture_name(name) && !known(name) {
                    let message = format!(
                        "\"{{{{${name}}}}}\" is captured by neither this answer nor any expect; \
                         add capture = {{ {name} = \"/path\" }} to the answer (a field of the \
                         record answered) or to an expect"
                    );
                    cx.report(node.span(), message);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| check_captures(cx, node, v, known)),
        Value::Object(map) => map
            .values()
            .for_each(|v| check_captures(cx, node, v, known)),
        _ => {}
    }
}
