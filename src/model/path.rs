//! Field paths: how a scenario names a field inside a message.
//!
//! Three spellings, all resolved by [`lookup`]:
//! - a plain name (`run_id`): the top-level field of an object, as before paths existed;
//! - a dotted path (`payload.status`, `arguments.0`): object keys and array indices
//!   separated by dots;
//! - a JSON Pointer (RFC 6901: `/payload/status`, `/3`, `/a~1b` for the key `a/b`).
//!
//! A dotted path cannot name a key that itself holds a dot; a pointer can.

use serde_json::Value;
use std::borrow::Cow;
use std::fmt::Display;

/// A received message when it is read straight from its frame: strings and keys borrowed
/// from the frame's text, objects as `(key, value)` lists in written order (see the
/// `serde_json_borrow` crate). Reading one costs a fraction of building a [`Value`] (no
/// string copies, no per-object hash map), which every received record would pay.
pub type Borrowed<'a> = serde_json_borrow::Value<'a>;

/// A JSON document a path can be looked up in: an owned [`Value`] (templates, captures,
/// calibration's records) or a [`Borrowed`] message read from a frame. The oracles are
/// written once against this.
pub trait Tree: Display {
    /// The member `key` of an object (the last one, when the text repeats a key, as
    /// `JSON.parse` and `serde_json` read it); `None` for anything else.
    fn member(&self, key: &str) -> Option<&Self>;
    /// The element `index` of an array; `None` for anything else.
    fn element(&self, index: usize) -> Option<&Self>;
    /// The text of a string.
    fn text(&self) -> Option<&str>;
    /// An integer that fits `i64`.
    fn int(&self) -> Option<i64>;
    /// An integer that fits `u64`.
    fn uint(&self) -> Option<u64>;
    fn null(&self) -> bool;
    /// An owned copy (for what outlives the frame: captures, kept bodies, witnesses).
    fn to_value(&self) -> Value;
    /// Whether this is the JSON value `want` (as `==` on [`Value`]s: `1` is not `1.0`,
    /// object members in any order).
    fn same_as(&self, want: &Value) -> bool;
    /// The top-level names of an object, in written order, for a witness (names only,
    /// never values); `None` for anything else.
    fn member_names(&self) -> Option<Vec<&str>>;
    /// The length of an array; `None` for anything else.
    fn array_len(&self) -> Option<usize>;
    /// Whether this is an object.
    fn is_object(&self) -> bool;

    /// What the value is, for a witness: `an object with fields type, ref, payload`,
    /// `an array of 5`, `a string`... At most [`SHAPE_NAMES`] names, each cut to
    /// [`SHAPE_NAME_CHARS`] characters: a server picks them.
    fn shape(&self) -> String {
        if let Some(names) = self.member_names() {
            let mut shown: Vec<String> = names
                .iter()
                .take(SHAPE_NAMES)
                .map(|n| shown_name(n))
                .collect();
            if names.len() > SHAPE_NAMES {
                shown.push(format!("{} more", names.len() - SHAPE_NAMES));
            }
            return match shown.is_empty() {
                true => "an empty object".into(),
                false => format!("an object with fields {}", shown.join(", ")),
            };
        }
        if let Some(len) = self.array_len() {
            return format!("an array of {len}");
        }
        let kind = if self.text().is_some() {
            "a string"
        } else if self.null() {
            "null"
        } else if self.to_value().is_boolean() {
            "a boolean"
        } else {
            "a number"
        };
        kind.into()
    }
}

/// A server-chosen name as a witness may show it: control and bidirectional formatting
/// characters escaped ([`super::words::push_shown`]), cut to [`SHAPE_NAME_CHARS`]
/// characters with `…`.
fn shown_name(name: &str) -> String {
    let mut shown = String::new();
    for c in name.chars().take(SHAPE_NAME_CHARS) {
        super::words::push_shown(&mut shown, c);
    }
    if name.chars().nth(SHAPE_NAME_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

/// Field names a [`Tree::shape`] lists.
pub const SHAPE_NAMES: usize = 8;
/// Characters of each name a [`Tree::shape`] keeps.
pub const SHAPE_NAME_CHARS: usize = 32;

impl Tree for Value {
    fn member(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => field(map, key),
            _ => None,
        }
    }
    fn element(&self, index: usize) -> Option<&Value> {
        self.as_array()?.get(index)
    }
    fn text(&self) -> Option<&str> {
        self.as_str()
    }
    fn int(&self) -> Option<i64> {
        self.as_i64()
    }
    fn uint(&self) -> Option<u64> {
        self.as_u64()
    }
    fn null(&self) -> bool {
        self.is_null()
    }
    fn to_value(&self) -> Value {
        self.clone()
    }
    fn same_as(&self, want: &Value) -> bool {
        self == want
    }
    fn member_names(&self) -> Option<Vec<&str>> {
        Some(self.as_object()?.keys().map(String::as_str).collect())
    }
    fn array_len(&self) -> Option<usize> {
        self.as_array().map(Vec::len)
    }
    fn is_object(&self) -> bool {
        Value::is_object(self)
    }
}

impl Tree for Borrowed<'_> {
    fn member(&self, key: &str) -> Option<&Self> {
        let object = self.as_object()?;
        // From the end: a repeated key reads as its last value, as in an owned Value.
        object
            .as_vec()
            .iter()
            .rev()
            .find_map(|(k, v)| (&**k == key).then_some(v))
    }
    fn element(&self, index: usize) -> Option<&Self> {
        self.as_array()?.get(index)
    }
    fn text(&self) -> Option<&str> {
        self.as_str()
    }
    fn int(&self) -> Option<i64> {
        self.as_i64()
    }
    fn uint(&self) -> Option<u64> {
        self.as_u64()
    }
    fn null(&self) -> bool {
        self.is_null()
    }
    fn to_value(&self) -> Value {
        Value::from(self)
    }
    fn same_as(&self, want: &Value) -> bool {
        match (self, want) {
            (Borrowed::Null, Value::Null) => true,
            (Borrowed::Bool(a), Value::Bool(b)) => a == b,
            (Borrowed::Str(a), Value::String(b)) => a == b,
            (Borrowed::Number(a), Value::Number(b)) => match b.as_f64().filter(|_| b.is_f64()) {
                Some(f) => a.is_f64() && a.as_f64() == Some(f),
                None => !a.is_f64() && a.as_i64() == b.as_i64() && a.as_u64() == b.as_u64(),
            },
            // Containers: compared as owned values (rare: a `where` on a whole object).
            (Borrowed::Array(_) | Borrowed::Object(_), Value::Array(_) | Value::Object(_)) => {
                self.to_value() == *want
            }
            _ => false,
        }
    }
    fn member_names(&self) -> Option<Vec<&str>> {
        Some(
            self.as_object()?
                .as_vec()
                .iter()
                .map(|(k, _)| &**k)
                .collect(),
        )
    }
    fn array_len(&self) -> Option<usize> {
        self.as_array().map(<[_]>::len)
    }
    fn is_object(&self) -> bool {
        matches!(self, Borrowed::Object(_))
    }
}

/// The value at `path` inside `msg`, or `None` when any part of the path is missing (a
/// key absent, an index out of range, a step into a string or number).
pub fn lookup<'a, J: Tree>(msg: &'a J, path: &str) -> Option<&'a J> {
    if let Some(pointer) = path.strip_prefix('/') {
        return pointer.split('/').try_fold(msg, |at, token| {
            let token = unescape(token);
            at.member(&token)
                .or_else(|| pointer_index(&token).and_then(|i| at.element(i)))
        });
    }
    if path.is_empty() {
        return None;
    }
    // Most paths are one plain name (`type`, `run_id`), looked up for every message:
    // a byte scan settles that without setting up a split.
    if !path.bytes().any(|b| b == b'.') {
        return step(msg, path);
    }
    path.split('.').try_fold(msg, step)
}

/// [`lookup`] on an owned [`Value`], for changing what it finds (a field holding JSON
/// text, read as that JSON: `[oracles] embedded_json`).
pub fn lookup_mut<'a>(msg: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let step_mut = |at: &'a mut Value, part: &str, index: Option<usize>| match at {
        Value::Object(map) => map.get_mut(part),
        Value::Array(items) => index.and_then(|i| items.get_mut(i)),
        _ => None,
    };
    if let Some(pointer) = path.strip_prefix('/') {
        return pointer.split('/').try_fold(msg, |at, token| {
            let token = unescape(token);
            step_mut(at, &token, pointer_index(&token))
        });
    }
    if path.is_empty() {
        return None;
    }
    path.split('.')
        .try_fold(msg, |at, part| step_mut(at, part, part.parse().ok()))
}

/// One part of a dotted path: a member, else an array index.
fn step<'a, J: Tree>(at: &'a J, part: &str) -> Option<&'a J> {
    at.member(part)
        .or_else(|| part.parse::<usize>().ok().and_then(|i| at.element(i)))
}

/// A JSON Pointer reference token with `~1` (`/`) and `~0` (`~`) undone, in that order
/// (RFC 6901 §4).
fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// An array index as a JSON Pointer writes it: decimal digits, no leading zero (RFC 6901
/// §4), so `01` names nothing.
fn pointer_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

/// The field `key` of an object. Messages are small: up to a few fields, comparing keys
/// in order costs less than hashing the key (SipHash) to probe the map's index.
fn field<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    const SCANNED: usize = 8;
    if map.len() <= SCANNED {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
}

/// Why a path cannot be used: empty, a pointer with a bad `~` escape, or a dotted path with
/// an empty part (`a..b`, `.a`, `a.`).
pub fn check(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("a field path cannot be empty".into());
    }
    if let Some(rest) = path.strip_prefix('/') {
        let bad_escape = rest.split('/').any(|part| {
            part.split('~')
                .skip(1)
                .any(|s| !(s.starts_with('0') || s.starts_with('1')))
        });
        if bad_escape {
            return Err(format!(
                "{path:?}: in a JSON Pointer \"~\" must be followed by 0 (for ~) or 1 (for /)"
            ));
        }
        return Ok(());
    }
    if path.split('.').any(str::is_empty) {
        return Err(format!(
            "{path:?}: a dotted path has an empty part; write a.b.0 or a JSON Pointer /a/b/0"
        ));
    }
    Ok(())
}

/// The string form of a value when it names or correlates something: strings as they
/// are, anything else (integers, booleans, arrays) as its JSON text.
pub fn key_text<J: Tree>(value: &J) -> String {
    match value.text() {
        Some(s) => s.to_string(),
        None => value.to_string(),
    }
}

/// Whether [`key_text`] of `value` is `key`, without building it for a string (the common
/// case: every received message is compared with every open expectation's key).
pub fn key_is<J: Tree>(value: &J, key: &str) -> bool {
    match value.text() {
        Some(s) => s == key,
        // The JSON text, as `key_text` gives it (`Value == str` would compare strings only).
        None => value.to_string() == key,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn key_is_agrees_with_key_text() {
        for v in [
            json!("r-1"),
            json!(42),
            json!(true),
            json!(["a", 1]),
            json!(null),
        ] {
            let text = key_text(&v);
            assert!(key_is(&v, &text), "{v}");
            assert!(!key_is(&v, &format!("{text}x")), "{v}");
        }
        assert!(!key_is(&json!(42), "\"42\""));
    }

    #[test]
    fn small_and_large_objects_find_every_field() {
        for n in [1usize, 8, 9, 40] {
            let mut map = serde_json::Map::new();
            for i in 0..n {
                map.insert(format!("k{i}"), Value::from(i));
            }
            let msg = Value::Object(map);
            for i in 0..n {
                assert_eq!(lookup(&msg, &format!("k{i}")), Some(&Value::from(i)), "{n}");
            }
            assert_eq!(lookup(&msg, "k"), None);
        }
    }

    #[test]
    fn plain_dotted_and_pointer_paths_reach_the_same_fields() {
        let m = json!({"type": "a", "payload": {"status": "ok", "list": [{"id": 7}]}, "a.b": 1, "x/y": 2});
        assert_eq!(lookup(&m, "type"), Some(&json!("a")));
        assert_eq!(lookup(&m, "payload.status"), Some(&json!("ok")));
        assert_eq!(lookup(&m, "/payload/status"), Some(&json!("ok")));
        assert_eq!(lookup(&m, "payload.list.0.id"), Some(&json!(7)));
        assert_eq!(lookup(&m, "/payload/list/0/id"), Some(&json!(7)));
        assert_eq!(lookup(&m, "/x~1y"), Some(&json!(2)));
        assert_eq!(lookup(&m, "a.b"), None, "a dotted path splits on dots");
        assert_eq!(lookup(&m, "/a.b"), Some(&json!(1)));
        assert_eq!(lookup(&m, "payload.list.1"), None);
        assert_eq!(lookup(&m, "type.x"), None);
        assert_eq!(lookup(&m, ""), None);
    }

    #[test]
    fn arrays_at_the_top_are_indexed() {
        let m = json!(["1", "2", "room:1", "phx_reply", {"status": "error"}]);
        assert_eq!(lookup(&m, "/3"), Some(&json!("phx_reply")));
        assert_eq!(lookup(&m, "3"), Some(&json!("phx_reply")));
        assert_eq!(lookup(&m, "/4/status"), Some(&json!("error")));
        assert_eq!(lookup(&m, "4.status"), Some(&json!("error")));
        assert_eq!(lookup(&m, "type"), None);
    }

    /// A received message is read borrowed; what was written for owned values must hold
    /// for it: pointers with escapes and strict indexes, dotted paths, repeated keys.
    #[test]
    fn borrowed_messages_resolve_paths_as_owned_ones_do() {
        let text = r#"{"a":{"b":[10,{"c":"x"}]},"a/b":1,"t~":2,"k":"first","k":"last","n":-3}"#;
        let borrowed: Borrowed = serde_json::from_str(text).unwrap();
        let owned: Value = serde_json::from_str(text).unwrap();
        for path in [
            "/a/b/1/c", "/a/b/01", "/a/b/0", "/a~1b", "/t~0", "a.b.1.c", "a.b.0", "k", "/k", "n",
            "a.b.2", "a.x", "/", "k.0",
        ] {
            let b = lookup(&borrowed, path).map(Tree::to_value);
            assert_eq!(b.as_ref(), lookup(&owned, path), "{path}");
            if let Some(found) = lookup(&borrowed, path) {
                assert_eq!(key_text(found), key_text(&found.to_value()), "{path}");
            }
        }
        assert_eq!(lookup(&borrowed, "k").and_then(Tree::text), Some("last"));
        assert_eq!(
            lookup(&borrowed, "/a/b/01"),
            None,
            "no leading zeros in a pointer"
        );
        assert_eq!(lookup(&borrowed, "n").and_then(Tree::int), Some(-3));
    }

    /// A witness shows what a record is without its values, bounded whatever the server
    /// sends.
    #[test]
    fn shapes_name_fields_not_values_and_stay_bounded() {
        let text = r#"{"event":"phx_reply","ref":"1","payload":{"token":"secret"}}"#;
        let borrowed: Borrowed = serde_json::from_str(text).unwrap();
        let owned: Value = serde_json::from_str(text).unwrap();
        let shape = borrowed.shape();
        assert_eq!(shape, "an object with fields event, ref, payload");
        assert_eq!(owned.shape(), shape);
        let many: Value = (0..20)
            .map(|i| (format!("{}{i}", "k".repeat(100)), json!(i)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let shape = many.shape();
        assert!(shape.ends_with(", 12 more"), "{shape}");
        assert!(shape.len() < 8 * 34 + 64, "{shape}");
        assert_eq!(json!([1, 2]).shape(), "an array of 2");
        assert_eq!(json!(true).shape(), "a boolean");
        assert_eq!(json!(3).shape(), "a number");
        assert_eq!(json!({}).shape(), "an empty object");
        let hostile = json!({"bad\nkey\u{1b}[31m\u{0}z": 1});
        assert_eq!(
            hostile.shape(),
            "an object with fields bad\\nkey\\u{1b}[31m\\u{0}z"
        );
        let long = json!({"k".repeat(40): 1}).shape();
        assert!(long.ends_with(&format!("{}…", "k".repeat(32))), "{long}");
    }

    #[test]
    fn bad_paths_are_named() {
        assert!(check("a.b").is_ok());
        assert!(check("/a/~0b/~1c").is_ok());
        assert!(check("").is_err());
        assert!(check("a..b").is_err());
        assert!(check("/a~2").is_err());
    }

    #[test]
    fn key_text_keeps_strings_and_renders_the_rest() {
        assert_eq!(key_text(&json!("x")), "x");
        assert_eq!(key_text(&json!(1)), "1");
        assert_eq!(key_text(&json!(true)), "true");
    }
}
