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

/// The value at `path` inside `msg`, or `None` when any part of the path is missing (a
/// key absent, an index out of range, a step into a string or number).
pub fn lookup<'a>(msg: &'a Value, path: &str) -> Option<&'a Value> {
    if path.starts_with('/') {
        return msg.pointer(path);
    }
    if path.is_empty() {
        return None;
    }
    path.split('.').try_fold(msg, |at, part| match at {
        Value::Object(map) => field(map, part),
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
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
pub fn key_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether [`key_text`] of `value` is `key`, without building it for a string (the common
/// case: every received message is compared with every open expectation's key).
pub fn key_is(value: &Value, key: &str) -> bool {
    match value {
        Value::String(s) => s == key,
        // The JSON text, as `key_text` gives it (`Value == str` would compare strings only).
        other => {
            let text = other.to_string();
            text == key
        }
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
