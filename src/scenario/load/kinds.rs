//! Message kinds and framing in `[oracles]`: `type_field` as a path, `[oracles.kinds]`
//! (named field tests), `record_separator`; and the field tests `expect` steps use.

use super::walk::{found, in_file_order, Ctx, Fields, Node};
use crate::model::path::check;
use crate::model::{FieldTest, KindSpec, Test};
use toml::de::DeValue;

/// A field path under `key`, checked, or `default` when absent.
pub(super) fn path_or(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, key: &str, default: &str) -> String {
    let path = f.text_or(cx, key, default);
    if let (Err(why), Some(node)) = (check(&path), f.get(key)) {
        cx.report(node.span(), format!("{key}: {why}"));
    }
    path
}

/// `[oracles.kinds]`: `name = { path = value, ..., has = "path" | ["path", ...] }`, in file
/// order (the first kind a message passes names it).
pub(super) fn kinds(cx: &mut Ctx<'_>, node: &Node<'_>) -> Vec<KindSpec> {
    let Some(table) = cx.table("oracles.kinds", node) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, value) in in_file_order(table) {
        let name = name.get_ref().to_string();
        let context = format!("oracles.kinds.{name}");
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || "+*?".contains(c)) {
            cx.report(
                value.span(),
                format!("{context}: a kind name is one word without +, * or ? (patterns use it)"),
            );
        }
        let when = tests(cx, value, &context, true, &[]);
        if when.is_empty() {
            cx.report(
                value.span(),
                format!(
                    "{context}: expected at least one test, like {{ type = \"confirm_subscription\" }} \
                     or {{ has = \"message\" }}"
                ),
            );
        }
        out.push(KindSpec { name, when });
    }
    out
}

/// A table of field tests: each key is a field path and its value what the field must be:
///
/// - a string, integer, float, boolean or array: equal to it (an expect's strings may hold
///   placeholders, expanded by the plan, and `{{$name}}` captures, resolved at run time);
/// - `{ matches = "regex" }`: a string matching the pattern;
/// - `{ present = true }` / `{ present = false }`: the field exists / does not;
///
/// and the key `has` (when `with_has`) takes a path or a list of paths that must exist.
/// `allowed`: the placeholders strings may hold (none in `[oracles.kinds]`, which is the
/// same for every connection).
pub(super) fn tests(
    cx: &mut Ctx<'_>,
    node: &Node<'_>,
    context: &str,
    with_has: bool,
    allowed: &[&str],
) -> Vec<FieldTest> {
    let Some(table) = cx.table(context, node) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in in_file_order(table) {
        let key = key.get_ref();
        if with_has && *key == "has" {
            let paths: Vec<&Node<'_>> = match value.get_ref() {
                DeValue::Array(items) => items.iter().collect(),
                _ => vec![value],
            };
            for p in paths {
                if let Some(path) = cx.string(&format!("{context}.has"), p) {
                    if let Err(why) = check(path) {
                        cx.report(p.span(), format!("{context}.has: {why}"));
                    }
                    out.push(FieldTest {
                        path: path.to_string(),
                        test: Test::Present,
                    });
                }
            }
            continue;
        }
        if let Err(why) = check(key) {
            cx.report(value.span(), format!("{context}: {why}"));
        }
        if let Some(test) = test(cx, value, &format!("{context}.{key}"), allowed) {
            out.push(FieldTest {
                path: key.to_string(),
                test,
            });
        }
    }
    out
}

fn test(cx: &mut Ctx<'_>, node: &Node<'_>, context: &str, allowed: &[&str]) -> Option<Test> {
    let DeValue::Table(table) = node.get_ref() else {
        let value = super::template::to_json_in(cx, node, allowed, context);
        return Some(Test::Equals(value));
    };
    let f = Fields::new(cx, table, node.span(), context, &["matches", "present"]);
    if let Some(n) = f.get("matches") {
        let pattern = cx.string(&format!("{context}.matches"), n)?;
        if let Err(e) = regex::Regex::new(pattern) {
            cx.report(
                n.span(),
                format!("{context}.matches: not a valid regular expression: {e}"),
            );
        }
        return Some(Test::Matches(pattern.to_string()));
    }
    if let Some(n) = f.get("present") {
        let present = cx.boolean(&format!("{context}.present"), n)?;
        return Some(if present { Test::Present } else { Test::Absent });
    }
    cx.report(
        node.span(),
        format!(
            "{context}: expected a value to compare with, {{ matches = \"regex\" }} or \
             {{ present = true }}, found {}",
            found(node.get_ref())
        ),
    );
    None
}

/// `record_separator = "\u001e"`: a non-empty string.
pub(super) fn separator(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> Option<String> {
    let node = node?;
    let sep = cx.string("oracles.record_separator", node)?;
    if sep.is_empty() {
        cx.report(
            node.span(),
            "oracles.record_separator: expected a non-empty string like \"\\u001e\"",
        );
        return None;
    }
    Some(sep.to_string())
}

/// `framing = "socket.io"`, `"stomp"` (or `"plain"`, the default).
pub(super) fn framing(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> crate::model::Framing {
    use crate::model::Framing;
    let Some(node) = node else {
        return Framing::Plain;
    };
    match cx.string("oracles.framing", node) {
        Some("socket.io") => Framing::SocketIo,
        Some("stomp") => Framing::Stomp,
        Some("plain") => Framing::Plain,
        Some(other) => {
            let message = format!(
                "oracles.framing: expected \"socket.io\", \"stomp\" or \"plain\", found {other:?}"
            );
            cx.report(node.span(), message);
            Framing::Plain
        }
        None => Framing::Plain,
    }
}

/// A list of field paths (`embedded_json = ["data"]`), each checked.
pub(super) fn paths(cx: &mut Ctx<'_>, node: Option<&Node<'_>>, key: &str) -> Vec<String> {
    let Some(node) = node else {
        return Vec::new();
    };
    let DeValue::Array(items) = node.get_ref() else {
        cx.report(
            node.span(),
            format!(
                "{key}: expected an array of field paths like [\"data\"], found {}",
                found(node.get_ref())
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(path) = cx.string(key, item) else {
            continue;
        };
        match crate::model::path::check(path) {
            Ok(()) => out.push(path.to_string()),
            Err(why) => cx.report(item.span(), format!("{key}: {why}")),
        }
    }
    out
}
