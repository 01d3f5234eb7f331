//! A received record that is one object of a few plain members, read into a small index
//! on the stack instead of a tree on the heap.
//!
//! Most records are such an object (`{"type":"echo","run_id":"3-17"}`), in which the
//! oracles look up two or three members. Building a [`Borrowed`](super::Borrowed) tree for
//! one (a vector of members, a value per member, all dropped after the frame) cost more
//! than every other step of reading it (callgrind, `benches/echo.rs`: ~1,000 of the ~8,200
//! instructions stampede ran per echoed message). [`flat`] reads such a text in one pass
//! into the caller's slots: each member's key and its value's JSON text. Every answer a
//! [`Node`] gives is the one the tree of the same text gives (a property test compares the
//! two); any other text is left to the tree.

use super::{QUICK_DIGITS, STOPS};
use crate::model::path::Tree;
use serde_json::{Map, Value};
use std::fmt;

/// Members a flat record holds at most: an object with more is read into a tree.
pub const FLAT_MEMBERS: usize = 8;

/// The slots [`flat`] reads an object's members into (key, value), in written order.
pub type Slots<'r> = [(&'r str, Node<'r>); FLAT_MEMBERS];

/// Empty slots for [`flat`].
pub fn slots<'r>() -> Slots<'r> {
    [("", Node::Scalar("null")); FLAT_MEMBERS]
}

/// A flat record, or one of its members' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node<'r> {
    /// The object: its members (key without quotes, value), in written order, a repeated
    /// key as often as written.
    Object(&'r [(&'r str, Node<'r>)]),
    /// A member's value as its JSON text: a string with its quotes (no escape, no control
    /// character), an integer of at most [`QUICK_DIGITS`] digits, `true`, `false`, `null`.
    Scalar(&'r str),
}

/// `text` read into `slots` when it is one JSON object (RFC 8259; whitespace around it and
/// its tokens allowed) of at most [`FLAT_MEMBERS`] members whose values are each a
/// string without escapes or control characters, an integer of at most [`QUICK_DIGITS`]
/// digits (no leading zero, not `-0`), `true`, `false` or `null`: the object's node.
/// `None` for any other text (an array, a nested value, a fraction, an escape, more
/// members, anything that is not JSON), which the tree reader takes.
pub fn flat<'r>(text: &'r str, slots: &'r mut Slots<'r>) -> Option<Node<'r>> {
    let bytes = text.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_whitespace(bytes, at + 1);
    let mut count = 0;
    if bytes.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            let slot = slots.get_mut(count)?;
            if bytes.get(at) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(bytes, at)?;
            let key = text.get(at + 1..key_end - 1)?;
            at = skip_whitespace(bytes, key_end);
            if bytes.get(at) != Some(&b':') {
                return None;
            }
            let start = skip_whitespace(bytes, at + 1);
            let end = scalar_end(bytes, start)?;
            *slot = (key, Node::Scalar(text.get(start..end)?));
            count += 1;
            at = skip_whitespace(bytes, end);
            match bytes.get(at)? {
                b',' => at = skip_whitespace(bytes, at + 1),
                b'}' => {
                    at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    if skip_whitespace(bytes, at) != bytes.len() {
        return None;
    }
    let slots: &'r Slots<'r> = slots;
    Some(Node::Object(slots.get(..count)?))
}

/// The first offset from `at` that is not RFC 8259 whitespace.
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

/// The end (exclusive, past the closing quote) of the string at its opening quote `at`,
/// when nothing in it is escaped nor a control character.
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let rest = bytes.get(at + 1..)?;
    let len = rest.iter().position(|&b| STOPS[usize::from(b)])?;
    (rest.get(len) == Some(&b'"')).then_some(at + 1 + len + 1)
}

/// The end (exclusive) of the scalar at `at` as [`Node::Scalar`] takes one; `None` for a
/// container or anything else.
fn scalar_end(bytes: &[u8], at: usize) -> Option<usize> {
    let literal = |word: &[u8]| {
        let rest = bytes.get(at..)?;
        rest.starts_with(word).then_some(at + word.len())
    };
    match bytes.get(at)? {
        b'"' => string_end(bytes, at),
        b't' => literal(b"true"),
        b'f' => literal(b"false"),
        b'n' => literal(b"null"),
        b'-' | b'0'..=b'9' => {
            let negative = bytes.get(at) == Some(&b'-');
            let start = at + usize::from(negative);
            let digits = bytes.get(start..)?;
            let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
            let zero = digits.first() == Some(&b'0');
            // A leading zero, `-0` (a float to serde_json), too many digits: the tree's.
            let refused =
                count == 0 || count > QUICK_DIGITS || (count > 1 && zero) || (negative && zero);
            (!refused).then_some(start + count)
        }
        _ => None,
    }
}

impl<'r> Node<'r> {
    /// The sign and magnitude of an integer scalar.
    fn integer(&self) -> Option<(bool, u64)> {
        let Node::Scalar(text) = self else {
            return None;
        };
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, *text),
        };
        if digits.is_empty() {
            return None;
        }
        // At most QUICK_DIGITS digits: no overflow.
        let magnitude = digits.bytes().try_fold(0u64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
        })?;
        Some((negative, magnitude))
    }
}

impl Tree for Node<'_> {
    fn member(&self, key: &str) -> Option<&Self> {
        let Node::Object(members) = self else {
            return None;
        };
        // From the end: a repeated key reads as its last value, as in the tree.
        members
            .iter()
            .rev()
            .find_map(|(k, v)| (*k == key).then_some(v))
    }
    fn element(&self, _index: usize) -> Option<&Self> {
        None
    }
    fn text(&self) -> Option<&str> {
        match self {
            Node::Scalar(text) => text.strip_prefix('"')?.strip_suffix('"'),
            Node::Object(_) => None,
        }
    }
    fn int(&self) -> Option<i64> {
        match self.integer()? {
            (false, n) => i64::try_from(n).ok(),
            (true, n) => i64::try_from(n).ok().map(|n| -n),
        }
    }
    fn uint(&self) -> Option<u64> {
        match self.integer()? {
            (false, n) => Some(n),
            (true, _) => None,
        }
    }
    fn null(&self) -> bool {
        *self == Node::Scalar("null")
    }
    fn to_value(&self) -> Value {
        match self {
            // Each text is one value serde_json reads (`flat` takes nothing it refuses).
            Node::Scalar(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            // Inserted in order, as serde_json reads an object: a repeated key keeps its
            // first place and its last value.
            Node::Object(members) => {
                let mut map = Map::new();
                for (key, value) in *members {
                    map.insert((*key).to_string(), value.to_value());
                }
                Value::Object(map)
            }
        }
    }
    fn same_as(&self, want: &Value) -> bool {
        match want {
            Value::Null => self.null(),
            Value::Bool(b) => *self == Node::Scalar(if *b { "true" } else { "false" }),
            Value::String(s) => self.text() == Some(s.as_str()),
            // No fraction here: an integer is never the same as a float (`1` is not `1.0`).
            Value::Number(n) => {
                !n.is_f64()
                    && self.integer().is_some()
                    && self.int() == n.as_i64()
                    && self.uint() == n.as_u64()
            }
            Value::Object(_) => self.is_object() && self.to_value() == *want,
            Value::Array(_) => false,
        }
    }
    fn member_names(&self) -> Option<Vec<&str>> {
        match self {
            Node::Object(members) => Some(members.iter().map(|(k, _)| *k).collect()),
            Node::Scalar(_) => None,
        }
    }
    fn array_len(&self) -> Option<usize> {
        None
    }
    fn is_object(&self) -> bool {
        matches!(self, Node::Object(_))
    }
}

/// As the tree of the same text shows itself: serde_json's compact form of the value.
impl fmt::Display for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_value())
    }
}
