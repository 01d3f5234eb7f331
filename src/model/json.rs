//! Reading a received record as JSON: serde_json's answer, reached sooner for the shapes
//! servers send most.
//!
//! Every record of every received frame is read (RFC 8259 JSON, into a [`Borrowed`]
//! value). For a short message, serde_json's general machinery (its visitor calls, its
//! string scanner's set-up per string) costs more than the rest of the oracles' work on
//! it: about 2,300 instructions of the ~10,700 stampede spends per echoed 32-byte message
//! (callgrind, `benches/echo.rs`). [`read`] first tries a small reader that takes only
//! the common shapes — objects, arrays, strings without escapes, integers of up to 18
//! digits, `true`, `false`, `null` — and builds the very value serde_json would; anything
//! else (an escape, a fraction or exponent, deep nesting, any error) goes to serde_json
//! whole, so what is accepted, refused and built never differs from serde_json's (a
//! property test compares the two on generated and mangled texts).

mod flat;

use super::path::Borrowed;
pub use flat::{flat, slots, Node, Slots, FLAT_MEMBERS};
use serde_json_borrow::ObjectAsVec;
use std::borrow::Cow;

/// Nesting the quick reader follows before it leaves the text to serde_json (whose own
/// limit is 128): bounds its recursion on a server's deeply nested text.
const QUICK_DEPTH: u8 = 64;

/// Integer digits the quick reader reads itself: 18 always fit `u64` and `i64`.
const QUICK_DIGITS: usize = 18;

/// `text` as one JSON value, strings and keys borrowed from it where they hold no escape.
///
/// # Errors
/// serde_json's error when `text` is not one JSON value (surrounding whitespace aside).
pub fn read(text: &str) -> Result<Borrowed<'_>, serde_json::Error> {
    match quick(text) {
        Some(value) => Ok(value),
        None => serde_json::from_str(text),
    }
}

/// The value when `text` is one of the common shapes (see the module docs); `None` leaves
/// it to serde_json, whatever the reason.
fn quick(text: &str) -> Option<Borrowed<'_>> {
    let mut reader = Reader { text, at: 0 };
    let value = reader.value(0)?;
    reader.skip_whitespace();
    (reader.at == text.len()).then_some(value)
}

/// A position in the text being read.
struct Reader<'a> {
    text: &'a str,
    /// Byte offset of the next unread byte.
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Takes the next byte.
    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    /// RFC 8259's whitespace: space, tab, line feed, carriage return.
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn value(&mut self, depth: u8) -> Option<Borrowed<'a>> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => self.string().map(|s| Borrowed::Str(Cow::Borrowed(s))),
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b't' => self.literal("true", Borrowed::Bool(true)),
            b'f' => self.literal("false", Borrowed::Bool(false)),
            b'n' => self.literal("null", Borrowed::Null),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    /// A string at its opening quote, when nothing in it is escaped (or a control
    /// character, which JSON forbids unescaped). Inlined into its two callers (cachegrind,
    /// the echo bench: the same instructions per message as out of line, 526 L1
    /// instruction misses against 543).
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at + 1;
        let rest = self.text.as_bytes().get(start..)?;
        let len = string_end(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // Both ends sit next to an ASCII quote: character boundaries.
        self.text.get(start..start + len)
    }

    fn literal<T>(&mut self, word: &str, value: T) -> Option<T> {
        let rest = self.text.as_bytes().get(self.at..)?;
        if !rest.starts_with(word.as_bytes()) {
            return None;
        }
        self.at += word.len();
        Some(value)
    }

    /// An integer as serde_json reads one: `u64` when not negative, `i64` when negative.
    /// A fraction, an exponent, a leading zero, `-0` (a float to serde_json) or more than
    /// [`QUICK_DIGITS`] digits are left to serde_json.
    fn integer(&mut self) -> Option<Borrowed<'a>> {
        let negative = self.peek() == Some(b'-');
        let start = self.at + usize::from(negative);
        let digits = self.text.as_bytes().get(start..)?;
        let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 || count > QUICK_DIGITS || (count > 1 && digits[0] == b'0') {
            return None;
        }
        // A fraction or exponent after it is no delimiter: whatever holds this value
        // gives up there.
        self.at = start + count;
        let magnitude = digits[..count]
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        let number = match negative {
            false => magnitude.into(),
            true if magnitude == 0 => return None,
            true => (-i64::try_from(magnitude).ok()?).into(),
        };
        Some(Borrowed::Number(number))
    }

    fn object(&mut self, depth: u8) -> Option<Borrowed<'a>> {
        let mut object = ObjectAsVec::default();
        self.members(depth, b'}', |reader, depth| {
            let key = reader.key()?;
            // A repeated key is kept twice, as serde_json_borrow keeps it.
            object.insert_unchecked_and_get_mut(key, reader.value(depth)?);
            Some(())
        })?;
        Some(Borrowed::Object(object))
    }

    /// An object member's key at its opening quote, and the colon after it.
    fn key(&mut self) -> Option<&'a str> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let key = self.string()?;
        self.skip_whitespace();
        (self.bump() == Some(b':')).then_some(key)
    }

    fn array(&mut self, depth: u8) -> Option<Borrowed<'a>> {
        let mut items = Vec::new();
        self.members(depth, b']', |reader, depth| {
            items.push(reader.value(depth)?);
            Some(())
        })?;
        Some(Borrowed::Array(items))
    }

    /// The members of an object or array at its opening bracket, up to `close`: each read
    /// by `member` (at the nesting below `depth`, whitespace before it skipped), separated
    /// by commas. `None` past [`QUICK_DEPTH`] or at anything else.
    fn members(
        &mut self,
        depth: u8,
        close: u8,
        mut member: impl FnMut(&mut Self, u8) -> Option<()>,
    ) -> Option<()> {
        let depth = Some(depth + 1).filter(|d| *d <= QUICK_DEPTH)?;
        self.at += 1;
        self.skip_whitespace();
        if self.peek() == Some(close) {
            self.at += 1;
            return Some(());
        }
        loop {
            self.skip_whitespace();
            member(self, depth)?;
            self.skip_whitespace();
            match self.bump()? {
                b',' => {}
                b if b == close => return Some(()),
                _ => return None,
            }
        }
    }
}

/// The bytes a plain string cannot hold: a quote, a backslash, a control character (below
/// 0x20), as a table indexed by byte.
static STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stops[b] = true;
        b += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

/// Bytes [`string_end`] looks at one at a time before it reads words: most strings in
/// messages (kinds, ids, field names) end within them, and the word scan's set-up (five
/// 64-bit constants, the registers to hold them) cost more than a short string's bytes.
const SHORT_STRING: usize = 16;

/// The index of the first byte of `bytes` that a plain string cannot hold ([`STOPS`]).
/// The first [`SHORT_STRING`] bytes one at a time, then eight at a time: a byte-by-byte
/// scan of a long string took ~13 instructions a byte (cachegrind, the echo bench's
/// 33-byte messages: ~300 of the ~9,000 stampede ran per message). The word tests are the
/// "has a zero byte" and "has a byte less than n" of Sean Eron Anderson's *Bit Twiddling
/// Hacks*; each may flag bytes above its first true match (a borrow), never below, so the
/// lowest flagged byte is the first match.
fn string_end(bytes: &[u8]) -> Option<usize> {
    let short = bytes.len().min(SHORT_STRING);
    if let Some(end) = bytes[..short].iter().position(|&b| STOPS[usize::from(b)]) {
        return Some(end);
    }
    long_string_end(bytes, short)
}

/// [`string_end`] past its first `at` bytes, eight at a time. Out of line: most strings
/// end before it.
#[inline(never)]
fn long_string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES << 7;
    let zero_byte = |word: u64| word.wrapping_sub(ONES) & !word;
    while let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let found = (zero_byte(word ^ (ONES * u64::from(b'"')))
            | zero_byte(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word))
            & HIGHS;
        if found != 0 {
            // Little-endian: the lowest bits are the first byte.
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    bytes
        .get(at..)?
        .iter()
        .position(|&b| STOPS[usize::from(b)])
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::path::Tree;
    use proptest::prelude::*;

    /// What serde_json makes of `text`.
    fn serde(text: &str) -> Option<Borrowed<'_>> {
        serde_json::from_str(text).ok()
    }

    #[test]
    fn the_common_shapes_are_read_quickly_and_as_serde_json_reads_them() {
        for text in [
            r#"{"type":"echo","run_id":"0-1"}"#,
            " { \"a\" : [1, -2, true, false, null, {}, []], \"b\": {\"c\": \"é\"} }\n",
            "[1,null,\"topic\",\"phx_reply\",{\"status\":\"ok\"}]",
            "123456789012345678",
            "-5",
            "0",
            r#"{"a":1,"a":2}"#,
            "\"\"",
        ] {
            let quick = quick(text);
            assert!(quick.is_some(), "{text} left to serde_json");
            assert_eq!(quick, serde(text), "{text}");
        }
    }

    #[test]
    fn what_the_quick_reader_does_not_take_is_left_to_serde_json() {
        for text in [
            r#"{"a":"line\nbreak"}"#,
            r#"{"k\"ey":1}"#,
            "1.5",
            "1e3",
            "-0",
            "1234567890123456789",
            "01",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "\"tab\there\"",
            "truex",
            "{} {}",
            "",
            "  ",
            "-",
            "[",
            "{\"a\":",
        ] {
            assert_eq!(quick(text), None, "{text:?} read quickly");
            assert_eq!(read(text).ok(), serde(text), "{text:?}");
        }
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(quick(&deep), None);
        assert!(read(&deep).is_ok());
        let too_deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(read(&too_deep).is_err(), "serde_json's own limit holds");
    }

    /// Near-JSON texts: JSON's structure around leaves and separators drawn from valid and
    /// almost valid spellings (control characters in strings, `-0`, leading zeros,
    /// fractions, long integers, trailing commas...).
    fn jsonish() -> impl Strategy<Value = String> {
        // Mostly valid choices, so that whole texts are often valid and the quick reader
        // answers; the others, often enough to meet each case many times a run.
        let one_of = |valid: Vec<&'static str>, broken: Vec<&'static str>| prop_oneof![8 => prop::sample::select(valid), 1 => prop::sample::select(broken)];
        let leaf = prop_oneof![
            4 => one_of(
                vec!["\"a\"", "\"\"", "\"é\"", "0", "-7", "true", "false", "null"],
                vec![
                    "\"a\tb\"", "\"a\u{1}\"", "\"a\\nb\"", "\"a\\\"b\"", "\"\\u00e9\"",
                    "\"a", "-0", "01", "-01", "1.5", "1.", "1e5", "1E+2", "-", "1234567890123456789",
                    "-123456789012345678", "18446744073709551615", "tru", "nul", "x", "",
                ],
            )
            .prop_map(String::from),
            1 => any::<i64>().prop_map(|n| n.to_string()),
            1 => any::<u64>().prop_map(|n| n.to_string()),
        ];
        leaf.prop_recursive(4, 32, 4, move |inner| {
            let separator = one_of(vec![",", ", ", " ,\n"], vec![",,", ""]);
            let space = one_of(vec!["", " ", "\n\t", "\r"], vec!["\u{b}"]);
            let key = one_of(
                vec!["\"k\"", "\"\"", "\"é\""],
                vec!["\"k\\\"\"", "k", "\"k\t\""],
            );
            let colon = one_of(vec![":", " : "], vec![""]);
            let trailing = one_of(vec![""], vec![","]);
            prop_oneof![
                (
                    prop::collection::vec(inner.clone(), 0..4),
                    separator.clone(),
                    space.clone()
                )
                    .prop_map(|(items, sep, sp)| format!("{sp}[{}]{sp}", items.join(sep))),
                (
                    prop::collection::vec((key, colon, inner), 0..4),
                    separator,
                    space,
                    trailing
                )
                    .prop_map(|(members, sep, sp, tail)| {
                        let members: Vec<String> = members
                            .into_iter()
                            .map(|(k, c, v)| format!("{k}{c}{v}"))
                            .collect();
                        format!("{sp}{{{}{tail}}}{sp}", members.join(sep))
                    }),
            ]
        })
    }

    /// Values serde_json writes, compact or pretty, then perhaps one byte changed.
    fn written() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            "[a-z\"\\\\\\n é]{0,6}".prop_map(serde_json::Value::from),
        ];
        let value = leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::vec(("[a-c\"]{0,2}", inner), 0..4).prop_map(|members| {
                    serde_json::Value::Object(members.into_iter().collect())
                }),
            ]
        });
        (
            value,
            any::<bool>(),
            any::<Option<(prop::sample::Index, u8)>>(),
        )
            .prop_map(|(value, pretty, change)| {
                let text = match pretty {
                    true => serde_json::to_string_pretty(&value),
                    false => serde_json::to_string(&value),
                }
                .unwrap_or_default();
                let mut bytes = text.into_bytes();
                if let (Some((at, byte)), false) = (change, bytes.is_empty()) {
                    let at = at.index(bytes.len());
                    bytes[at] = b"{}[]:,\" 0-.e\\ax"[usize::from(byte) % 15];
                }
                String::from_utf8_lossy(&bytes).into_owned()
            })
    }

    proptest! {
        /// Any bytes, the three stops and the bytes around them (0x1f, 0x20, 0x21, 0x5b,
        /// 0x5d, 0x7f, 0x80, 0xff) often, at every offset of a word.
        #[test]
        fn string_end_finds_the_first_stop_as_a_byte_scan_does(
            bytes in prop::collection::vec(
                prop_oneof![
                    4 => prop::sample::select(b"a\"\\\x00\x1f\x20\x21\x5b\x5d\x7f\x80\xff".to_vec()),
                    1 => any::<u8>(),
                ],
                0..40,
            )
        ) {
            let scanned = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(string_end(&bytes), scanned);
        }
    }

    proptest! {
        // Cheap cases (~0.2 ms each): enough of them to meet each rare spelling often.
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn read_agrees_with_serde_json(text in prop_oneof![jsonish(), written()]) {
            if let Some(value) = quick(&text) {
                prop_assert_eq!(Some(value), serde(&text));
            }
            prop_assert_eq!(read(&text).ok(), serde(&text));
        }

        /// A flat record answers every look-up as the tree of the same text: its members,
        /// their strings, integers, names, how they show and compare; and a text is read
        /// flat exactly when its tree is an object of at most FLAT_MEMBERS members none of
        /// which is an object or an array, read by the quick reader.
        #[test]
        fn a_flat_record_answers_as_its_tree(text in prop_oneof![jsonish(), flat_objects(), written()]) {
            let mut slots = slots();
            let read_flat = flat(&text, &mut slots);
            let tree = quick(&text);
            let shaped = tree.as_ref().and_then(Borrowed::as_object).is_some_and(|o| {
                o.len() <= FLAT_MEMBERS
                    && o.iter().all(|(_, v)| !matches!(v, Borrowed::Object(_) | Borrowed::Array(_)))
            });
            prop_assert_eq!(read_flat.is_some(), shaped, "{:?}", text);
            if let (Some(read_flat), Some(tree)) = (read_flat, tree) {
                agree(&read_flat, &tree)?;
            }
        }
    }

    /// Objects of scalar members, valid or nearly, some past FLAT_MEMBERS.
    fn flat_objects() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            prop::sample::select(vec![
                "\"a\"",
                "\"\"",
                "\"é\"",
                "0",
                "-7",
                "true",
                "false",
                "null",
                "-0",
                "01",
                "1.5",
                "\"a\\nb\"",
                "{}",
                "[]",
                "tru",
                "123456789012345678",
                "1234567890123456789",
            ])
            .prop_map(String::from),
            any::<i64>().prop_map(|n| n.to_string()),
        ];
        let key = prop::sample::select(vec!["\"k\"", "\"type\"", "\"\"", "\"é\"", "\"k\\\"\""]);
        let space = prop::sample::select(vec!["", " ", "\n\t"]);
        prop::collection::vec((key, leaf), 0..=FLAT_MEMBERS + 1).prop_flat_map(move |members| {
            space.clone().prop_map(move |sp| {
                let members: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{sp}{k}{sp}:{sp}{v}{sp}"))
                    .collect();
                format!("{sp}{{{}}}{sp}", members.join(","))
            })
        })
    }

    /// Values a `where` or a field test compares against: each shape, and values the
    /// generated texts hold.
    fn wants() -> Vec<serde_json::Value> {
        use serde_json::json;
        vec![
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-7),
            json!(1.0),
            json!(""),
            json!("a"),
            json!("é"),
            json!([]),
            json!({}),
            json!({"k": 0}),
            json!([null]),
            json!(u64::MAX),
            json!(i64::MIN),
        ]
    }

    /// `node` answers as `tree`, and each member as the tree's.
    fn agree(node: &Node, tree: &Borrowed) -> Result<(), TestCaseError> {
        prop_assert_eq!(node.text(), tree.text());
        prop_assert_eq!(node.int(), tree.int());
        prop_assert_eq!(node.uint(), tree.uint());
        prop_assert_eq!(node.null(), tree.null());
        prop_assert_eq!(node.is_object(), Tree::is_object(tree));
        prop_assert_eq!(node.array_len(), tree.array_len());
        prop_assert_eq!(node.member_names(), tree.member_names());
        prop_assert_eq!(node.to_value(), tree.to_value());
        prop_assert_eq!(node.to_string(), tree.to_string());
        prop_assert_eq!(node.shape(), tree.shape());
        prop_assert!(node.same_as(&tree.to_value()));
        for want in wants() {
            prop_assert_eq!(node.same_as(&want), tree.same_as(&want), "{}", want);
        }
        for name in tree
            .member_names()
            .unwrap_or_default()
            .into_iter()
            .chain(["", "absent"])
        {
            match (node.member(name), tree.member(name)) {
                (Some(n), Some(t)) => agree(n, t)?,
                (n, t) => prop_assert_eq!(n.is_none(), t.is_none(), "member {:?}", name),
            }
        }
        prop_assert_eq!(node.element(0).is_none(), tree.element(0).is_none());
        Ok(())
    }

    #[test]
    fn a_short_object_of_plain_members_is_read_flat_and_others_are_not() {
        let mut kept = slots();
        let echo = flat(
            r#" {"type":"echo","run_id":"0-1","n":-5,"n":7} "#,
            &mut kept,
        );
        let echo = echo.expect("read flat");
        assert_eq!(echo.member("run_id").and_then(Tree::text), Some("0-1"));
        assert_eq!(
            echo.member("n").and_then(Tree::int),
            Some(7),
            "the last of a repeated key"
        );
        assert_eq!(
            crate::model::path::lookup(&echo, "/type").and_then(Tree::text),
            Some("echo")
        );
        let many = format!(
            "{{{}}}",
            (0..=FLAT_MEMBERS)
                .map(|i| format!("\"k{i}\":{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        for other in [
            r#"{"a":"line\nbreak"}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":[]}"#,
            r#"{"a":1.5}"#,
            "[1]",
            "\"a\"",
            "{} {}",
            "",
            many.as_str(),
        ] {
            let mut slots = slots();
            assert_eq!(flat(other, &mut slots), None, "{other:?}");
            assert!(
                read(other).is_ok() || other == "{} {}" || other.is_empty(),
                "{other:?}"
            );
        }
    }
}
