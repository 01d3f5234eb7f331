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

use super::{Borrowed, Reader};
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
    /// character), an integer of at most [`super::QUICK_DIGITS`] digits, `true`, `false`, `null`.
    Scalar(&'r str),
}

/// `text` read into `slots` when it is one JSON object (RFC 8259; whitespace around it and
/// its tokens allowed) of at most [`FLAT_MEMBERS`] members whose values are each a scalar
/// the quick reader takes (a string without escapes or control characters, an integer of
/// at most 18 digits, `true`, `false`, `null`): the object's node. `None` for any other
/// text (an array, a nested value, a fraction, an escape, more members, anything that is
/// not JSON), which the tree reader takes. Read by the quick reader's own steps
/// ([`Reader`]), so a flat record is always one it would have read.
pub fn flat<'r>(text: &'r str, slots: &'r mut Slots<'r>) -> Option<Node<'r>> {
    let mut reader = Reader::new(text);
    reader.skip_whitespace();
    if reader.peek() != Some(b'{') {
        return None;
    }
    let mut count = 0;
    reader.members(0, b'}', |reader, depth| {
        let slot = slots.get_mut(count)?;
        let key = reader.key()?;
        reader.skip_whitespace();
        let start = reader.at;
        // A scalar only: a container is left to the tree before anything is built of it.
        if matches!(reader.peek()?, b'{' | b'[') {
            return None;
        }
        reader.value(depth)?;
        *slot = (key, Node::Scalar(text.get(start..reader.at)?));
        count += 1;
        Some(())
    })?;
    reader.skip_whitespace();
    if reader.at != text.len() {
        return None;
    }
    let slots: &'r Slots<'r> = slots;
    Some(Node::Object(slots.get(..count)?))
}

impl Node<'_> {
    /// The number of a scalar, as the quick reader reads it (the tree's number).
    fn number(&self) -> Option<serde_json_borrow::Number> {
        let Node::Scalar(text) = self else {
            return None;
        };
        match Reader::new(text).value(0)? {
            Borrowed::Number(n) => Some(n),
            _ => None,
        }
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
        self.number()?.as_i64()
    }
    fn uint(&self) -> Option<u64> {
        self.number()?.as_u64()
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
                    && self.number().is_some()
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
