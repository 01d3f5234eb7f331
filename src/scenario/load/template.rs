//! `{{placeholder}}` checks and the TOML → JSON conversion of `send` templates.
//!
//! Placeholders are checked here, where each string still has its span, so `plan::build`
//! can expand them without ever failing.

use super::walk::{in_file_order, int_value, Ctx, Node};
use serde_json::{Map, Number, Value};
use std::ops::Range;
use toml::de::DeValue;

const OPEN: &str = "{{";
const CLOSE: &str = "}}";

/// Reports every `{{name}}` in `value` whose name is not in `allowed`, and every unclosed `{{`.
/// `context` names the template in messages (`send`, `auth.sub`).
pub(super) fn check_placeholders(
    cx: &mut Ctx<'_>,
    span: Range<usize>,
    value: &str,
    allowed: &[&str],
    context: &str,
) {
    let mut rest = 0;
    while let Some(found) = value.get(rest..).and_then(|s| s.find(OPEN)) {
        let open = rest + found;
        let name_start = open + OPEN.len();
        let Some(len) = value.get(name_start..).and_then(|s| s.find(CLOSE)) else {
            let message = format!(
                "unclosed \"{OPEN}\" in {context}; placeholders look like {OPEN}user{CLOSE}"
            );
            cx.report(offset_in(cx, &span, value, open), message);
            return;
        };
        // Spaces inside the braces are allowed, as `plan::template` trims them too.
        let name = value
            .get(name_start..name_start + len)
            .unwrap_or_default()
            .trim();
        let base = name.strip_suffix(":int").map_or(name, str::trim_end);
        let typed_ok = base == name || crate::model::INT_PLACEHOLDERS.contains(&base);
        let capture = name
            .strip_prefix('$')
            .filter(|_| allowed.contains(&CAPTURES));
        if capture.is_some_and(|c| !valid_capture_name(c)) {
            let message = format!(
                "\"{OPEN}{name}{CLOSE}\" in {context}: a capture name is letters, digits and _"
            );
            cx.report(offset_in(cx, &span, value, open), message);
        } else if capture.is_none() && !typed_ok {
            let message = format!(
                "\"{OPEN}{name}{CLOSE}\" in {context}: only {} take \":int\"",
                crate::model::INT_PLACEHOLDERS.join(", ")
            );
            cx.report(offset_in(cx, &span, value, open), message);
        } else if let Some(column) = base
            .strip_prefix("feed.")
            .filter(|_| capture.is_none() && allowed.contains(&"conn"))
        {
            let missing = match &cx.feed_columns {
                Some(columns) if columns.is_empty() => Some(format!(
                    "\"{OPEN}{name}{CLOSE}\" in {context}: the group has no feeder; add \
                     feeder = {{ file = \"users.csv\" }}"
                )),
                Some(columns) if !columns.iter().any(|c| c == column) => Some(format!(
                    "\"{OPEN}{name}{CLOSE}\" in {context}: the group's feeder has no column \
                     {column:?}; its columns: {}",
                    columns.join(", ")
                )),
                _ => None,
            };
            if let Some(message) = missing {
                cx.report(offset_in(cx, &span, value, open), message);
            }
        } else if capture.is_none() && !allowed.contains(&base) {
            let message = crate::model::placeholder_message(name, allowed, context);
            cx.report(offset_in(cx, &span, value, open), message);
        }
        rest = name_start + len + CLOSE.len();
    }
}

/// In an `allowed` list: `{{$name}}` capture references are allowed too (whether the
/// name was captured earlier is checked by the steps, which know the captures).
pub(super) const CAPTURES: &str = "$";

/// A capture's name: letters, digits and `_`, not empty.
pub(super) fn valid_capture_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Points into a string literal when the source spells it verbatim (no escapes, one line);
/// otherwise at the literal's start, which is still the right line.
pub(super) fn offset_in(cx: &Ctx<'_>, span: &Range<usize>, value: &str, at: usize) -> Range<usize> {
    let raw = cx.text().get(span.clone()).unwrap_or_default();
    let verbatim = raw.len() == value.len() + 2 && raw.get(1..raw.len() - 1) == Some(value);
    let start = if verbatim {
        span.start + 1 + at
    } else {
        span.start
    };
    start..start
}

/// Converts a `send` value to the JSON it stands for, checking every string's placeholders.
pub(super) fn to_json(cx: &mut Ctx<'_>, node: &Node<'_>, allowed: &[&str]) -> Value {
    to_json_in(cx, node, allowed, "send")
}

/// [`to_json`] for any template; `context` names it in messages (`auth.claims`).
pub(super) fn to_json_in(
    cx: &mut Ctx<'_>,
    node: &Node<'_>,
    allowed: &[&str],
    context: &str,
) -> Value {
    match node.get_ref() {
        DeValue::String(s) => {
            check_placeholders(cx, node.span(), s, allowed, context);
            Value::String(s.to_string())
        }
        DeValue::Integer(i) => match int_value(i).and_then(json_integer) {
            Some(n) => Value::Number(n),
            None => unrepresentable(cx, node, context, "integer out of JSON's range"),
        },
        DeValue::Float(f) => match f.as_str().parse().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => unrepresentable(cx, node, context, "JSON has no NaN or infinity"),
        },
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(_) => unrepresentable(
            cx,
            node,
            context,
            "JSON has no datetimes; quote it to send a string",
        ),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| to_json_in(cx, v, allowed, context))
                .collect(),
        ),
        DeValue::Table(table) => {
            let mut object = Map::new();
            for (key, value) in in_file_order(table) {
                if key.get_ref().contains("{{") {
                    // It would go out as written: a key `k{{conn}}` is sent `k{{conn}}`.
                    cx.report(
                        key.span(),
                        format!(
                            "{context}: placeholders are filled in values, not in keys: \
                             {:?} would be sent as written; put the placeholder in a value",
                            key.get_ref()
                        ),
                    );
                }
                let value = to_json_in(cx, value, allowed, context);
                object.insert(key.get_ref().to_string(), value);
            }
            Value::Object(object)
        }
    }
}

fn json_integer(n: i128) -> Option<Number> {
    i64::try_from(n)
        .map(Number::from)
        .ok()
        .or_else(|| u64::try_from(n).map(Number::from).ok())
}

fn unrepresentable(cx: &mut Ctx<'_>, node: &Node<'_>, context: &str, why: &str) -> Value {
    let raw = cx.text().get(node.span()).unwrap_or_default().to_string();
    cx.report(
        node.span(),
        format!("{context}: {raw} cannot be sent as JSON ({why})"),
    );
    Value::Null
}
