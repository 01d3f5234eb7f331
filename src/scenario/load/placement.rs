//! `placement = ...`: where the token travels, in `[auth]` and per group.

use super::template::to_json_in;
use super::walk::{found, Ctx, Fields, Node};
use crate::model::Placement;
use serde_json::Value;
use std::ops::Range;
use toml::de::{DeTable, DeValue};

const PLACEMENT_KINDS: &[&str] = &[
    "header",
    "query",
    "subprotocol",
    "cookie",
    "first_message",
    "first_text",
];
const DEFAULT_SUBPROTOCOL: &str = "jwt-auth";
const DEFAULT_COOKIE: &str = "token";
/// The only placeholder a first message may hold.
const FIRST_MESSAGE_PLACEHOLDERS: &[&str] = &["token", "user", "conn", "group", "sub"];

/// `Authorization: Bearer <token>`, the default.
pub(super) fn bearer() -> Placement {
    Placement::Header {
        name: "Authorization".into(),
        prefix: "Bearer ".into(),
    }
}

/// The graphql-ws style init message of `placement = "first_message"`.
fn default_first_message() -> Placement {
    Placement::FirstMessage {
        template: serde_json::json!({"type": "connection_init", "payload": {"token": "{{token}}"}}),
        text: false,
        after: None,
    }
}

/// A placement value; `section` names it in messages (`auth.placement`).
pub(super) fn placement(cx: &mut Ctx<'_>, node: &Node<'_>, section: &str) -> Placement {
    match node.get_ref() {
        DeValue::String(s) => match s.as_ref() {
            "header" => bearer(),
            "query" => Placement::Query {
                param: "token".into(),
            },
            "subprotocol" => Placement::Subprotocol {
                offer: vec![DEFAULT_SUBPROTOCOL.into()],
                prefix: "jwt.".into(),
            },
            "cookie" => Placement::Cookie {
                name: DEFAULT_COOKIE.into(),
            },
            "first_message" => default_first_message(),
            "none" => Placement::None,
            _ => bad_placement(cx, node, section),
        },
        DeValue::Table(table) => placement_table(cx, table, node.span(), section),
        _ => bad_placement(cx, node, section),
    }
}

/// The placements a string names.
const NAMED: [&str; 6] = [
    "header",
    "query",
    "subprotocol",
    "cookie",
    "first_message",
    "none",
];

fn bad_placement(cx: &mut Ctx<'_>, node: &Node<'_>, section: &str) -> Placement {
    let hint = match node.get_ref() {
        // A form that takes its text: named alone, it has none.
        DeValue::String(s) if s.as_ref() == "first_text" => {
            "; first_text takes the text to send: { first_text = \"AUTH {{token}}\" }".to_string()
        }
        DeValue::String(s) => crate::model::words::did_you_mean(s, NAMED),
        _ => String::new(),
    };
    let message = format!(
        "{section}: expected \"header\", \"query\", \"subprotocol\", \"cookie\", \"first_message\", \
         \"none\" or a table like {{ header = \"X-Token\" }} or {{ first_text = \"AUTH {{{{token}}}}\" }}, \
         found {}{hint}",
        found(node.get_ref())
    );
    cx.report(node.span(), message);
    bearer()
}

fn placement_table(
    cx: &mut Ctx<'_>,
    table: &DeTable<'_>,
    span: Range<usize>,
    section: &str,
) -> Placement {
    let Some(kind) = cx.one_of(section, table, span.clone(), PLACEMENT_KINDS) else {
        return bearer();
    };
    let known = match kind {
        "header" => vec!["header", "prefix"],
        "subprotocol" => vec!["subprotocol", "offer"],
        "first_message" | "first_text" => vec![kind, "after"],
        other => vec![other],
    };
    let f = Fields::new(cx, table, span, section, &known).with_owner(section);
    match kind {
        "header" => header_placement(cx, &f, section),
        "subprotocol" => subprotocol_placement(cx, &f, section),
        "cookie" => {
            let name = f.req_text(cx, "cookie");
            if !name.is_empty() && !is_token(&name) {
                let message =
                    format!("{section}: cookie name {name:?} may only use HTTP token characters");
                report_at(cx, &f, "cookie", message);
            }
            Placement::Cookie { name }
        }
        "first_message" => first_message(cx, &f, section),
        "first_text" => first_text(cx, &f, section),
        _ => {
            let param = f.req_text(cx, "query");
            if !param
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
            {
                let message = format!("{section}: query parameter {param:?} may only use letters, digits, -, ., _ and ~");
                report_at(cx, &f, "query", message);
            }
            Placement::Query { param }
        }
    }
}

fn header_placement(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, section: &str) -> Placement {
    let name = f.req_text(cx, "header");
    if !is_token(&name) {
        report_at(
            cx,
            f,
            "header",
            format!("{section}: {name:?} is not a valid HTTP header name"),
        );
    }
    // "Bearer " belongs to the Authorization scheme; other headers carry the bare token.
    let default_prefix = if name.eq_ignore_ascii_case("authorization") {
        "Bearer "
    } else {
        ""
    };
    let prefix = f
        .get("prefix")
        .and_then(|n| cx.string("prefix", n))
        .unwrap_or(default_prefix);
    if prefix.chars().any(char::is_control) {
        let message = format!("{section}: prefix must not contain control characters");
        report_at(cx, f, "prefix", message);
    }
    Placement::Header {
        name,
        prefix: prefix.to_string(),
    }
}

fn subprotocol_placement(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, section: &str) -> Placement {
    let prefix = f
        .get("subprotocol")
        .and_then(|n| cx.string("subprotocol", n))
        .unwrap_or_default();
    if !prefix.is_empty() && !is_token(prefix) {
        let message =
            format!("{section}: subprotocol prefix {prefix:?} may only use HTTP token characters");
        report_at(cx, f, "subprotocol", message);
    }
    let offer = match f.get("offer") {
        None => vec![DEFAULT_SUBPROTOCOL.to_string()],
        Some(node) => offers(cx, node),
    };
    Placement::Subprotocol {
        offer,
        prefix: prefix.to_string(),
    }
}

/// `first_message = { type = "auth", token = "{{token}}" }`, or the same as JSON text.
fn first_message(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, section: &str) -> Placement {
    let Some(node) = f.get("first_message") else {
        return default_first_message();
    };
    let context = format!("{section} first_message");
    let template = match node.get_ref() {
        DeValue::Table(_) => to_json_in(cx, node, FIRST_MESSAGE_PLACEHOLDERS, &context),
        DeValue::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                super::template::check_placeholders(
                    cx,
                    node.span(),
                    text,
                    FIRST_MESSAGE_PLACEHOLDERS,
                    &context,
                );
                value
            }
            Err(e) => {
                cx.report(
                    node.span(),
                    format!(
                        "{context}: not valid JSON text: {e} (a protocol of text lines sends \
                         its first message with {{ first_text = \"AUTH {{{{token}}}}\" }})"
                    ),
                );
                Value::Null
            }
        },
        other => {
            let message = format!(
                "{context}: expected a table like {{ type = \"auth\", token = \"{{{{token}}}}\" }} \
                 or JSON text, found {}",
                found(other)
            );
            cx.report(node.span(), message);
            Value::Null
        }
    };
    if !template.is_null() && !mentions_token(&template) {
        cx.report(
            node.span(),
            format!("{context}: the message never uses {{{{token}}}}"),
        );
    }
    Placement::FirstMessage {
        template,
        text: false,
        after: after(cx, f, section),
    }
}

/// `after = "auth_required"`: the kind of the server's record that asks for the first
/// message (a challenge), which then waits for it instead of going out with the upgrade.
fn after(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, section: &str) -> Option<String> {
    let node = f.get("after")?;
    match cx.string("after", node) {
        Some("") => {
            let message = format!(
                "{section} after: expected the kind of the server's record that asks for the \
                 token (its [oracles] type_field value), like after = \"auth_required\"; found \
                 an empty string"
            );
            cx.report(node.span(), message);
            None
        }
        other => other.map(str::to_string),
    }
}

/// `first_text = "AUTH {{token}}"`: a text frame sent as written (placeholders filled), for
/// a protocol of text lines, where `first_message` sends JSON.
fn first_text(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, section: &str) -> Placement {
    let context = format!("{section} first_text");
    let before = cx.problem_count();
    let line = f.req_text(cx, "first_text");
    if let Some(node) = f.get("first_text") {
        super::template::check_placeholders(
            cx,
            node.span(),
            &line,
            FIRST_MESSAGE_PLACEHOLDERS,
            &context,
        );
        // Said only of a text found right otherwise: a number, an empty text or a
        // misspelled {{TOKEN}} has its own problem, and this one on top says nothing.
        let fine = cx.problem_count() == before;
        if fine && !names_token(&line) {
            cx.report(
                node.span(),
                format!("{context}: the text never uses {{{{token}}}}"),
            );
        }
    }
    Placement::FirstMessage {
        template: Value::String(line),
        text: true,
        after: after(cx, f, section),
    }
}

/// Whether `text` holds `{{token}}` (spaces inside the braces allowed).
fn names_token(text: &str) -> bool {
    text.replace(' ', "").contains("{{token}}")
}

fn mentions_token(value: &Value) -> bool {
    match value {
        Value::String(s) => names_token(s),
        Value::Array(items) => items.iter().any(mentions_token),
        Value::Object(map) => map.values().any(mentions_token),
        _ => false,
    }
}

fn offers(cx: &mut Ctx<'_>, node: &Node<'_>) -> Vec<String> {
    let items = cx.array("offer", node).unwrap_or_default();
    let mut offer = Vec::new();
    for item in items {
        let Some(text) = cx.string("offer", item) else {
            continue;
        };
        if !is_token(text) {
            cx.report(
                item.span(),
                format!("offer: {text:?} is not a valid subprotocol name"),
            );
        }
        offer.push(text.to_string());
    }
    offer
}

pub(super) fn report_at(
    cx: &mut Ctx<'_>,
    f: &Fields<'_, '_>,
    key: &str,
    message: impl Into<String>,
) {
    let span = f.get(key).map_or_else(|| f.span(), |n| n.span());
    cx.report(span, message);
}

/// An HTTP token (RFC 9110 §5.6.2): what header names and subprotocols must be.
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}
