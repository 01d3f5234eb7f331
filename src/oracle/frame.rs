//! What a received frame says: its records (a frame may pack several, separated by the
//! scenario's record separator), and each record's kind.
//!
//! A record's kind comes from the first `[oracles.kinds]` rule it passes, in file order;
//! failing those, from the value at `type_field` (a string as it is, an integer as its
//! decimal text, so SignalR's `"type": 1` is kind `1`). A record with neither has no kind:
//! it still reaches the identity and ordering oracles, and counts as a data frame.

use crate::model::json::{self, Node};
use crate::model::path::{lookup, Borrowed, Tree};
use crate::model::{FieldTest, OracleSpec, Test};
use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

/// One record of a received text frame, borrowed from the frame's text.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    /// Any JSON value: an object, an array (Phoenix v2), a number...
    Json(Borrowed<'a>),
    /// A JSON object of a few plain members, read into an index on the stack
    /// ([`json::flat`]): the value `Json` would hold, without its tree. Only
    /// [`for_each_record`] gives these.
    Flat(Node<'a>),
    /// Text that does not parse as JSON.
    Text(&'a str),
}

/// Splits a text frame into records: on `separator` when the scenario names one (empty and
/// whitespace-only pieces, such as the one after a trailing separator, are dropped), else
/// the whole frame is one record. `batched` (`[oracles] batched`): a record that is a
/// JSON array of objects is a batch, one record per element (an empty batch holds none).
/// Every JSON record as [`Record::Json`].
pub fn decode<'a>(text: &'a str, separator: Option<&'a str>, batched: bool) -> Vec<Record<'a>> {
    let mut all = Vec::new();
    for_each_piece(text, separator, |piece| {
        read_piece(piece, batched, &mut |record| all.push(record));
    });
    all
}

/// [`decode`], one record at a time, handed to `each` in frame order (no list per frame,
/// none per batch), an object of a few plain members as [`Record::Flat`] (which lives only
/// for the call). Plain loops rather than an iterator chain: every received frame goes
/// through here, and the chain's nested adapters cost more than the records' handling.
pub fn for_each_record(
    text: &str,
    separator: Option<&str>,
    batched: bool,
    mut each: impl FnMut(Record<'_>),
) {
    for_each_piece(text, separator, |piece| {
        // Not a batch: an object is never one.
        let mut slots = json::slots();
        if let Some(node) = json::flat(piece, &mut slots) {
            return each(Record::Flat(node));
        }
        read_piece(piece, batched, &mut each);
    });
}

/// What a received text frame said of its transport, beside its records
/// ([`for_each_frame_record`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameTransport {
    /// The server asked for a heart-beat answer ([`super::framing::answer`]).
    pub ping: bool,
    /// The frame held only the protocol's own packets (heart-beats, acknowledgements): no
    /// record for the oracles, and no data frame.
    pub transport_only: bool,
}

/// Each record of received text frame `text` as the oracles read it, handed to `each` in
/// frame order: a protocol's packets decoded first when `spec` names a framing or embedded
/// JSON ([`super::framing::decode`]), then every body split into records as
/// [`for_each_record`] splits a plain frame. The one reading of a frame, for the run and
/// for the liveness probe alike. A plain frame (most runs) goes straight to
/// [`for_each_record`]: this is on every received message's path.
#[inline]
pub fn for_each_frame_record(
    spec: &OracleSpec,
    text: &str,
    mut each: impl FnMut(Record<'_>),
) -> FrameTransport {
    let separator = spec.record_separator.as_deref();
    if spec.reads_frames_as_they_are() {
        for_each_record(text, separator, spec.batched, each);
        return FrameTransport::default();
    }
    let decoded = super::framing::decode(spec, text);
    for body in &decoded.bodies {
        for_each_record(body, separator, spec.batched, &mut each);
    }
    FrameTransport {
        ping: decoded.ping,
        transport_only: decoded.is_transport(),
    }
}

/// The pieces of a frame, split on `separator` (see [`decode`]).
fn for_each_piece<'a>(text: &'a str, separator: Option<&str>, mut one: impl FnMut(&'a str)) {
    match separator.filter(|s| !s.is_empty()) {
        Some(sep) => text
            .split(sep)
            .filter(|piece| !piece.trim().is_empty())
            .for_each(one),
        None => one(text),
    }
}

/// The records of one piece, read as a tree (or as text when it is not JSON).
fn read_piece<'a>(piece: &'a str, batched: bool, each: &mut impl FnMut(Record<'a>)) {
    match json::read(piece) {
        Ok(Borrowed::Array(items)) if batched && items.iter().all(Tree::is_object) => {
            items.into_iter().map(Record::Json).for_each(each);
        }
        Ok(value) => each(Record::Json(value)),
        Err(_) => each(Record::Text(piece)),
    }
}

/// Whether a record is a batch of records: a JSON array of objects (an empty one holds
/// none). What `[oracles] batched` reads element by element, and what calibration learns
/// nothing from when the scenario does not declare it (a field under an element's
/// position is where a record fell in one batch, no field of the protocol).
pub fn is_batch<J: Tree>(msg: &J) -> bool {
    msg.array_len().is_some() && (0..).map_while(|i| msg.element(i)).all(J::is_object)
}

/// The kind of a record (see the module docs); `None` when nothing names it. Borrowed
/// from the spec or the record when it can be (every received record has its kind taken).
pub fn kind_of<'a, J: Tree>(spec: &'a OracleSpec, msg: &'a J) -> Option<Cow<'a, str>> {
    for kind in &spec.kinds {
        if kind.when.iter().all(|t| passes(t, msg, &|_| None)) {
            return Some(Cow::Borrowed(&kind.name));
        }
    }
    let found = lookup(msg, &spec.type_field)?;
    if let Some(s) = found.text() {
        return Some(Cow::Borrowed(s));
    }
    let integer = found.int().map(|i| i.to_string());
    integer
        .or_else(|| found.uint().map(|u| u.to_string()))
        .map(Cow::Owned)
}

/// Whether `msg` passes `test`. `resolve` turns an expected string that names a captured
/// variable (`"{{$id}}"`) into its value; `None` leaves the string as written.
pub fn passes<J: Tree>(test: &FieldTest, msg: &J, resolve: &dyn Fn(&str) -> Option<Value>) -> bool {
    let found = lookup(msg, &test.path);
    match &test.test {
        Test::Present => found.is_some(),
        Test::Absent => found.is_none(),
        Test::Equals(Value::String(s)) => match resolve(s) {
            Some(v) => found.is_some_and(|f| f.same_as(&v)),
            None => found.and_then(Tree::text) == Some(s.as_str()),
        },
        Test::Equals(want) => found.is_some_and(|f| f.same_as(want)),
        Test::Matches(pattern) => match (found.and_then(Tree::text), regex(pattern)) {
            (Some(text), Some(re)) => re.is_match(text),
            _ => false,
        },
    }
}

/// Fills `{{$name}}` capture references in `value` from `captures`: a string that is exactly
/// one reference becomes the captured value itself (a number stays a number); a reference
/// inside a longer string becomes the value's text. A name never captured (the expect that
/// should have captured it failed, and said so) stays as written.
pub fn fill(value: &Value, captures: &BTreeMap<String, Value>) -> Value {
    match value {
        Value::String(s) if s.contains("{{$") => fill_str(s, captures),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, captures)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, captures)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether `s` holds a `{{$name}}` capture reference for [`fill_str`] to resolve. A byte
/// scan: it runs for every correlated expectation, and a substring search's set-up costs
/// more than scanning the few bytes of a correlation value.
pub fn holds_capture(s: &str) -> bool {
    s.as_bytes().windows(3).any(|w| w == b"{{$")
}

/// Whether `s` refers to a `{{$name}}` that `captures` does not hold
/// ([`crate::model::capture_refs`]): a value the connection was to capture and never did.
pub fn names_uncaptured(s: &str, captures: &BTreeMap<String, Value>) -> bool {
    crate::model::capture_refs(s)
        .into_iter()
        .any(|name| !captures.contains_key(name))
}

/// Whether any string in `value` (keys aside) refers to a capture `captures` does not hold
/// ([`names_uncaptured`]).
pub fn value_names_uncaptured(value: &Value, captures: &BTreeMap<String, Value>) -> bool {
    match value {
        Value::String(s) => holds_capture(s) && names_uncaptured(s, captures),
        Value::Array(items) => items.iter().any(|v| value_names_uncaptured(v, captures)),
        Value::Object(map) => map.values().any(|v| value_names_uncaptured(v, captures)),
        _ => false,
    }
}

/// [`fill`] for one string.
pub fn fill_str(s: &str, captures: &BTreeMap<String, Value>) -> Value {
    let whole = s
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .filter(|inner| !inner.contains("{{") && !inner.contains("}}"))
        .and_then(|inner| inner.trim().strip_prefix('$'));
    if let Some(v) = whole.and_then(|name| captures.get(name)) {
        return v.clone();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let name = after[..close].trim().strip_prefix('$');
        match name.and_then(|n| captures.get(n)) {
            Some(v) => out.push_str(&crate::model::path::key_text(v)),
            None => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Value::String(out)
}

/// How a test reads in a violation: `/payload/status = "ok"`, `message present`.
pub fn describe(test: &FieldTest) -> String {
    match &test.test {
        Test::Present => format!("{} present", test.path),
        Test::Absent => format!("{} absent", test.path),
        Test::Equals(v) => format!("{} = {v}", test.path),
        Test::Matches(p) => format!("{} ~ /{p}/", test.path),
    }
}

/// Distinct patterns kept compiled; a scenario has a handful, placeholders may add one per
/// connection, and past this bound a pattern is compiled each time instead of growing.
const REGEX_CACHE: usize = 4096;

/// The compiled pattern (validation compiled every pattern once, so `None` means a pattern
/// that slipped past it: it matches nothing).
fn regex(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(map) = cache.lock() {
        if let Some(re) = map.get(pattern) {
            return Some(re.clone());
        }
    }
    let re = Regex::new(pattern).ok()?;
    if let Ok(mut map) = cache.lock() {
        if map.len() < REGEX_CACHE {
            map.insert(pattern.to_string(), re.clone());
        }
    }
    Some(re)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::KindSpec;
    use serde_json::json;

    fn t(path: &str, test: Test) -> FieldTest {
        FieldTest {
            path: path.into(),
            test,
        }
    }

    #[test]
    fn records_split_on_the_separator_and_keep_non_objects() {
        let owned = |records: Vec<Record>| -> Vec<Result<Value, String>> {
            records
                .into_iter()
                .map(|r| match r {
                    Record::Json(v) => Ok(v.to_value()),
                    Record::Flat(v) => Ok(v.to_value()),
                    Record::Text(t) => Err(t.to_string()),
                })
                .collect()
        };
        let frame = "{}\u{1e}{\"type\":1,\"target\":\"X\"}\u{1e}";
        assert_eq!(
            owned(decode(frame, Some("\u{1e}"), false)),
            vec![Ok(json!({})), Ok(json!({"type": 1, "target": "X"}))]
        );
        let phoenix = "[1,null,\"t\",\"e\",{}]";
        for batched in [false, true] {
            assert_eq!(
                owned(decode(phoenix, None, batched)),
                vec![Ok(json!([1, null, "t", "e", {}]))],
                "an array of other things is one record, batched or not"
            );
        }
        assert_eq!(
            owned(decode("hello", None, false)),
            vec![Err("hello".into())]
        );
        assert_eq!(
            owned(decode("{}\u{1e}", None, false)),
            vec![Err("{}\u{1e}".into())]
        );
    }

    /// `[oracles] batched`: a JSON array of objects is one record per element, in order,
    /// in each separated piece too; without it, the array is one record.
    #[test]
    fn a_batch_of_records_is_read_element_by_element_when_declared() {
        let batch = r#"[{"type":"a","id":1},{"type":"b","id":1}]"#;
        let kinds = |records: Vec<Record>| -> Vec<Value> {
            records
                .into_iter()
                .filter_map(|r| match r {
                    Record::Json(v) => Some(v.to_value()),
                    Record::Flat(v) => Some(v.to_value()),
                    Record::Text(_) => None,
                })
                .collect()
        };
        assert_eq!(
            kinds(decode(batch, None, true)),
            vec![json!({"type": "a", "id": 1}), json!({"type": "b", "id": 1})]
        );
        assert_eq!(kinds(decode(batch, None, false)).len(), 1);
        assert!(
            decode("[]", None, true).is_empty(),
            "an empty batch holds nothing"
        );
        let lines = format!("{batch}\n{{\"type\":\"c\"}}\n");
        assert_eq!(kinds(decode(&lines, Some("\n"), true)).len(), 3);
    }

    /// Every received record is read borrowed (flat when an object of plain members),
    /// calibration's and the tests' records owned: kinds and field tests must agree on all.
    #[test]
    fn borrowed_and_owned_records_get_the_same_kinds_and_tests() {
        let spec = OracleSpec {
            kinds: vec![KindSpec {
                name: "confirm".into(),
                when: vec![t("/payload/n", Test::Equals(json!(1)))],
            }],
            ..OracleSpec::default()
        };
        let texts = [
            r#"{"type":"a","payload":{"n":1}}"#,
            r#"{"type":"a","payload":{"n":1.0}}"#,
            r#"{"type":7,"payload":{"n":-1}}"#,
            r#"{"type":-7}"#,
            r#"{"type":18446744073709551615}"#,
            r#"{"type":"first","type":"last"}"#,
            r#"{"ty\"pe":"escaped key","type":"b\u00e9"}"#,
            r#"["1","2","room","phx_reply",{"status":"ok"}]"#,
        ];
        let tests = [
            t("payload", Test::Equals(json!({"n": 1}))),
            t("payload.n", Test::Equals(json!(-1))),
            t("/payload/n", Test::Equals(json!(1.0))),
            t("type", Test::Equals(json!("b\u{e9}"))),
            t("ty\"pe", Test::Present),
            t("/4/status", Test::Matches("^o".into())),
        ];
        for text in texts {
            let borrowed: Borrowed = serde_json::from_str(text).unwrap();
            let owned: Value = serde_json::from_str(text).unwrap();
            assert_eq!(kind_of(&spec, &borrowed), kind_of(&spec, &owned), "{text}");
            // Read flat when it can be: an object of plain members (no escape, no fraction,
            // no integer past 18 digits, nothing nested).
            let mut slots = json::slots();
            let flat = json::flat(text, &mut slots);
            let plain = text.starts_with('{')
                && !text.contains(['\\', '.'])
                && !text.contains("18446744073709551615")
                && !text.contains(":{");
            assert_eq!(flat.is_some(), plain, "{text}");
            if let Some(flat) = &flat {
                assert_eq!(kind_of(&spec, flat), kind_of(&spec, &owned), "{text}");
            }
            for test in &tests {
                let want = passes(test, &owned, &|_| None);
                assert_eq!(passes(test, &borrowed, &|_| None), want, "{text} {test:?}");
                if let Some(flat) = &flat {
                    assert_eq!(passes(test, flat, &|_| None), want, "{text} {test:?}");
                }
            }
        }
    }

    #[test]
    fn kinds_by_rule_then_type_field_strings_or_integers() {
        let spec = OracleSpec {
            kinds: vec![
                KindSpec {
                    name: "confirm".into(),
                    when: vec![t("type", Test::Equals(json!("confirm_subscription")))],
                },
                KindSpec {
                    name: "data".into(),
                    when: vec![t("message", Test::Present), t("type", Test::Absent)],
                },
            ],
            ..OracleSpec::default()
        };
        let k = |v: Value| kind_of(&spec, &v).map(Cow::into_owned);
        assert_eq!(
            k(json!({"type": "confirm_subscription"})).as_deref(),
            Some("confirm")
        );
        assert_eq!(
            k(json!({"identifier": "x", "message": {}})).as_deref(),
            Some("data")
        );
        assert_eq!(k(json!({"type": "welcome"})).as_deref(), Some("welcome"));
        assert_eq!(k(json!({"type": 1})).as_deref(), Some("1"));
        assert_eq!(k(json!({"type": 1.5})), None);
        assert_eq!(k(json!({"identifier": "x"})), None);
        let v2 = OracleSpec {
            type_field: "/3".into(),
            ..OracleSpec::default()
        };
        assert_eq!(
            kind_of(&v2, &json!(["1", "1", "room", "phx_reply", {}])).as_deref(),
            Some("phx_reply")
        );
    }

    #[test]
    fn tests_compare_types_resolve_captures_and_match_patterns() {
        let m = json!({"payload": {"status": "ok", "n": 1, "id": "sub-7"}});
        let none = |_: &str| None;
        assert!(passes(
            &t("/payload/status", Test::Equals(json!("ok"))),
            &m,
            &none
        ));
        assert!(!passes(
            &t("/payload/status", Test::Equals(json!("error"))),
            &m,
            &none
        ));
        assert!(passes(&t("payload.n", Test::Equals(json!(1))), &m, &none));
        assert!(!passes(
            &t("payload.n", Test::Equals(json!("1"))),
            &m,
            &none
        ));
        assert!(passes(
            &t("payload.id", Test::Matches("^sub-[0-9]+$".into())),
            &m,
            &none
        ));
        assert!(!passes(
            &t("payload.n", Test::Matches("1".into())),
            &m,
            &none
        ));
        let cap = |s: &str| (s == "{{$id}}").then(|| json!("sub-7"));
        assert!(passes(
            &t("payload.id", Test::Equals(json!("{{$id}}"))),
            &m,
            &cap
        ));
        let mut caps = BTreeMap::new();
        caps.insert("n".to_string(), json!(7));
        assert_eq!(
            fill(
                &json!({"id": "{{$n}}", "s": "x-{{$n}}", "u": "{{$nope}}"}),
                &caps
            ),
            json!({"id": 7, "s": "x-7", "u": "{{$nope}}"})
        );
        assert_eq!(
            describe(&t("/payload/status", Test::Equals(json!("ok")))),
            "/payload/status = \"ok\""
        );
    }
}
