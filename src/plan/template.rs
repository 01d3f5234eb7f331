//! `{{placeholder}}` expansion in message templates (names in `scenario::PLACEHOLDERS`).
//! Random placeholders draw from the ChaCha stream of the step being expanded (`draw_rng`).

use rand::Rng;
use serde_json::Value;

/// Values known when a connection's script is expanded.
pub struct Vars<'a> {
    pub user: u32,
    pub conn: u32,
    pub group: &'a str,
    pub sub: &'a str,
    /// The connection's feeder columns and row (`{{feed.COLUMN}}`), if its group has one.
    pub feed: Option<(&'a [String], &'a [String])>,
}

/// Expands every string inside `template`. Unknown placeholders were rejected by validation;
/// should one slip through it is left as written, which shows up plainly on the wire.
pub fn expand<R: Rng + ?Sized>(template: &Value, vars: &Vars<'_>, run: u64, rng: &mut R) -> Value {
    // A clone keeps the maps' hash tables as they are; rebuilding each map (collecting the
    // expanded entries) rehashed every key on every send.
    let mut out = template.clone();
    expand_in_place(&mut out, vars, run, rng);
    out
}

/// Expands the placeholders of `value` where they are, depth first in document order (the
/// order random draws are taken in).
fn expand_in_place<R: Rng + ?Sized>(value: &mut Value, vars: &Vars<'_>, run: u64, rng: &mut R) {
    match value {
        // Most strings of a template hold no placeholder: no search, no rebuild.
        Value::String(s) if !s.as_bytes().contains(&b'{') => {}
        Value::String(s) => {
            *value = match typed(s) {
                Some(name) => {
                    match lookup(name, vars, run, rng).and_then(|v| v.parse::<u64>().ok()) {
                        Some(n) => Value::from(n),
                        None => return,
                    }
                }
                None => Value::String(expand_str(s, |name| lookup(name, vars, run, rng))),
            }
        }
        Value::Array(items) => {
            for item in items {
                expand_in_place(item, vars, run, rng);
            }
        }
        Value::Object(map) => {
            for (_, v) in map.iter_mut() {
                expand_in_place(v, vars, run, rng);
            }
        }
        _ => {}
    }
}

/// A `send` template compiled once per run: its compact JSON text, split at the strings
/// that hold placeholders. Rendering one is string concatenation, the same bytes
/// `serde_json::to_string(&expand(..))` gives (same draws, in the same document order),
/// without building, serializing and dropping a `Value` per send.
#[derive(Debug, Clone)]
pub struct Compiled {
    pieces: Vec<Piece>,
    /// Slot pieces, in order: how many texts [`Compiled::render`] hands back.
    slots: usize,
    /// What a rendered message usually takes: the literal text and a little per slot.
    len_hint: usize,
    /// For each correlated field path the message carries, by its index in the paths it
    /// was compiled for: where its value comes from.
    keys: Vec<(usize, Key)>,
    /// Whether it holds `{{sub}}`: the only placeholder whose value lives in the token,
    /// read only for the templates that need it.
    reads_sub: bool,
    /// Whether it reads anything of [`Vars`] beyond the user and connection numbers (the
    /// group's name, the feed, a name only [`lookup`] knows): the cursor builds the rest of
    /// `Vars` (two plan look-ups per send) only for the templates that need it.
    reads_names: bool,
}

#[derive(Debug, Clone)]
enum Piece {
    /// JSON text as it goes out.
    Literal(String),
    /// A string with placeholders, split at them when compiled: expanded, then written as
    /// a JSON string. The flag: its text never needs escaping (see [`plain`]), so it is
    /// written between quotes without a scan.
    Text(Vec<Seg>, bool),
    /// A string that is exactly one typed placeholder of a counter (`{{run:int}}`): its
    /// digits, a JSON number.
    Int(Var),
}

/// A piece of a string template: [`expand_into`]'s scan, done once when the template is
/// compiled rather than on every send.
#[derive(Debug, Clone)]
enum Seg {
    /// Text as written.
    Lit(String),
    /// A placeholder, and the text it was written as (sent as it is when it has no value).
    Var { var: Var, written: String },
}

/// A placeholder's name, resolved when compiled for the counters and names every send
/// reads.
#[derive(Debug, Clone)]
enum Var {
    User,
    Conn,
    Run,
    Group,
    Sub,
    /// Any other name, as written between the braces (trimmed): see [`lookup`].
    Other(String),
}

impl Var {
    fn of(name: &str) -> Var {
        // Inside a longer string a typed placeholder is text like any other.
        match name.strip_suffix(":int").map_or(name, str::trim_end) {
            "user" => Var::User,
            "conn" => Var::Conn,
            "run" => Var::Run,
            "group" => Var::Group,
            "sub" => Var::Sub,
            _ => Var::Other(name.to_string()),
        }
    }
}

/// `s` split at its placeholders, as [`expand_into`] reads them: an unclosed `{{` and
/// everything after it is text.
fn segments(s: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut literal = String::new();
    let mut rest = s;
    while let Some(open) = find_pair(rest, b'{') {
        literal.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = find_pair(after, b'}') else {
            literal.push_str(&rest[open..]);
            rest = "";
            break;
        };
        if !literal.is_empty() {
            segs.push(Seg::Lit(std::mem::take(&mut literal)));
        }
        segs.push(Seg::Var {
            var: Var::of(after[..close].trim()),
            written: rest[open..open + 2 + close + 2].to_string(),
        });
        rest = &after[close + 2..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        segs.push(Seg::Lit(literal));
    }
    segs
}

/// Whether a string split into `segs` is JSON text as it is, whatever the values: its
/// literal parts hold nothing [`push_json_str`] escapes, and its placeholders are counters
/// (digits, and always filled).
fn plain(segs: &[Seg]) -> bool {
    segs.iter().all(|seg| match seg {
        Seg::Lit(t) => !t.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20),
        Seg::Var { var, .. } => matches!(var, Var::User | Var::Conn | Var::Run),
    })
}

/// Where a correlated field's value (`json_key` of it) comes from.
#[derive(Debug, Clone)]
pub enum Key {
    /// Fixed by the template.
    Const(String),
    /// The text of the n-th slot.
    Slot(usize),
}

impl Compiled {
    /// Compiles `template` for a connection whose expectations correlate on `correlated`.
    /// `None` when the template needs the general path: `{{$name}}` captures (filled at
    /// send time), a typed placeholder whose value may not be a number, or a correlated
    /// path that lands on an object or array holding placeholders.
    pub fn new(template: &Value, correlated: &[String]) -> Option<Compiled> {
        let mut c = Compiled {
            pieces: Vec::new(),
            slots: 0,
            len_hint: 0,
            keys: Vec::new(),
            reads_sub: false,
            reads_names: false,
        };
        let mut literal = String::new();
        c.walk(template, &mut literal)?;
        if !literal.is_empty() {
            c.pieces.push(Piece::Literal(literal));
        }
        let literal_len: usize = c
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Literal(t) => t.len(),
                Piece::Text(segs, _) => {
                    let text: usize = segs
                        .iter()
                        .map(|s| match s {
                            Seg::Lit(t) => t.len(),
                            Seg::Var { .. } => 0,
                        })
                        .sum();
                    text + 2
                }
                Piece::Int(_) => 8,
            })
            .sum();
        c.len_hint = literal_len + 16 * c.slots;
        c.reads_sub = c.pieces.iter().any(|p| match p {
            Piece::Text(segs, _) => segs
                .iter()
                .any(|s| matches!(s, Seg::Var { var: Var::Sub, .. })),
            Piece::Int(var) => matches!(var, Var::Sub),
            Piece::Literal(_) => false,
        });
        let named = |var: &Var| matches!(var, Var::Group | Var::Sub | Var::Other(_));
        c.reads_names = c.pieces.iter().any(|p| match p {
            Piece::Text(segs, _) => segs
                .iter()
                .any(|s| matches!(s, Seg::Var { var, .. } if named(var))),
            Piece::Int(var) => named(var),
            Piece::Literal(_) => false,
        });
        for (at, path) in correlated.iter().enumerate() {
            let Some(node) = crate::model::path::lookup(template, path) else {
                continue;
            };
            let key = if holds_placeholder(node) {
                // A placeholder string: its slot is its rank among the template's
                // placeholder strings in document order.
                let Value::String(_) = node else {
                    return None;
                };
                Key::Slot(slot_rank(template, node)?)
            } else {
                Key::Const(super::json_key(node))
            };
            c.keys.push((at, key));
        }
        Some(c)
    }

    fn walk(&mut self, value: &Value, literal: &mut String) -> Option<()> {
        match value {
            Value::String(s) if s.as_bytes().contains(&b'{') => {
                if s.contains("{{$") {
                    return None;
                }
                if !literal.is_empty() {
                    self.pieces.push(Piece::Literal(std::mem::take(literal)));
                }
                let piece = match typed(s) {
                    Some(name @ ("user" | "conn" | "run")) => Piece::Int(Var::of(name)),
                    Some(_) => return None,
                    None => {
                        let segs = segments(s);
                        let plain = plain(&segs);
                        Piece::Text(segs, plain)
                    }
                };
                self.pieces.push(piece);
                self.slots += 1;
            }
            Value::Array(items) => {
                literal.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        literal.push(',');
                    }
                    self.walk(item, literal)?;
                }
                literal.push(']');
            }
            Value::Object(map) => {
                literal.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        literal.push(',');
                    }
                    literal.push_str(&serde_json::to_string(k).ok()?);
                    literal.push(':');
                    self.walk(v, literal)?;
                }
                literal.push('}');
            }
            other => literal.push_str(&serde_json::to_string(other).ok()?),
        }
        Some(())
    }

    /// Appends the message for `run` to `out`, and sets `slots[i]` to slot i's text
    /// (unescaped), reusing the strings already there (a connection keeps one list).
    pub fn render<R: Rng + ?Sized>(
        &self,
        vars: &Vars<'_>,
        run: u64,
        rng: &mut R,
        out: &mut String,
        slots: &mut Vec<String>,
    ) {
        out.reserve(self.len_hint);
        if slots.len() < self.slots {
            slots.resize_with(self.slots, String::new);
        }
        let mut at = slots.iter_mut();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Text(segs, plain) => {
                    let Some(text) = at.next() else { return };
                    text.clear();
                    for seg in segs {
                        match seg {
                            Seg::Lit(t) => text.push_str(t),
                            Seg::Var { var, written } => {
                                if !push_var(text, var, vars, run, rng) {
                                    text.push_str(written);
                                }
                            }
                        }
                    }
                    if *plain {
                        out.push('"');
                        out.push_str(text);
                        out.push('"');
                    } else {
                        push_json_str(out, text);
                    }
                }
                Piece::Int(var) => {
                    let Some(text) = at.next() else { return };
                    text.clear();
                    push_var(text, var, vars, run, rng);
                    out.push_str(text);
                }
            }
        }
    }

    /// Whether rendering reads `{{sub}}` ([`Vars::sub`]).
    pub fn reads_sub(&self) -> bool {
        self.reads_sub
    }

    /// Whether rendering reads more of [`Vars`] than [`Vars::user`] and [`Vars::conn`]: when
    /// it does not, the other fields may be left empty.
    pub fn reads_names(&self) -> bool {
        self.reads_names
    }

    /// The correlated field paths the message carries (their indexes in the paths given to
    /// [`Compiled::new`]), with where each value comes from.
    pub fn keys(&self) -> &[(usize, Key)] {
        &self.keys
    }

    /// How many slot texts [`Compiled::render`] hands back.
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.slots
    }
}

/// Whether a string somewhere in `value` would be expanded.
fn holds_placeholder(value: &Value) -> bool {
    match value {
        Value::String(s) => s.as_bytes().contains(&b'{'),
        Value::Array(items) => items.iter().any(holds_placeholder),
        Value::Object(map) => map.values().any(holds_placeholder),
        _ => false,
    }
}

/// The rank of the string `node` (by address) among `template`'s placeholder strings, in
/// document order.
fn slot_rank(template: &Value, node: &Value) -> Option<usize> {
    fn visit(v: &Value, node: &Value, rank: &mut usize) -> Option<usize> {
        match v {
            Value::String(s) if s.as_bytes().contains(&b'{') => {
                if std::ptr::eq(v, node) {
                    return Some(*rank);
                }
                *rank += 1;
                None
            }
            Value::Array(items) => items.iter().find_map(|i| visit(i, node, rank)),
            Value::Object(map) => map.values().find_map(|i| visit(i, node, rank)),
            _ => None,
        }
    }
    visit(template, node, &mut 0)
}

/// Appends placeholder `var`'s value to `out` (the counters and names without a string
/// of their own); `false`, appending nothing, when it has none (see [`lookup`]). Inlined
/// into [`Compiled::render`]: every send's counters go through it, and the call cost as
/// much as the digits; the other names ([`push_other`]) stay out of line.
#[inline(always)]
fn push_var<R: Rng + ?Sized>(
    out: &mut String,
    var: &Var,
    vars: &Vars<'_>,
    run: u64,
    rng: &mut R,
) -> bool {
    // itoa, not `write!`: these run once per send, and the formatter machinery cost more
    // than the rest of the render.
    let mut digits = itoa::Buffer::new();
    match var {
        Var::User => out.push_str(digits.format(vars.user)),
        Var::Conn => out.push_str(digits.format(vars.conn)),
        Var::Run => out.push_str(digits.format(run)),
        Var::Group => out.push_str(vars.group),
        Var::Sub => out.push_str(vars.sub),
        Var::Other(name) => return push_other(out, name, vars, run, rng),
    }
    true
}

/// [`push_var`] for a name only [`lookup`] knows (`{{random}}`, a feed column, ...).
#[inline(never)]
fn push_other<R: Rng + ?Sized>(
    out: &mut String,
    name: &str,
    vars: &Vars<'_>,
    run: u64,
    rng: &mut R,
) -> bool {
    match lookup(name, vars, run, rng) {
        Some(v) => {
            out.push_str(&v);
            true
        }
        None => false,
    }
}

/// [`expand_str`] appending to `out`; `value` appends a placeholder's value, or returns
/// `false` to leave the placeholder as written.
fn expand_into(out: &mut String, s: &str, mut value: impl FnMut(&str, &mut String) -> bool) {
    let mut rest = s;
    while let Some(open) = find_pair(rest, b'{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match find_pair(after, b'}') {
            Some(close) => {
                let name = after[..close].trim();
                if !value(name, out) {
                    out.push_str(&rest[open..open + 2 + close + 2]);
                }
                rest = &after[close + 2..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
}

/// Writes `s` as a JSON string, escaped as serde_json escapes it (`"`, `\` and control
/// characters; everything else as it is).
fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        match serde_json::to_string(s) {
            Ok(escaped) => out.push_str(&escaped),
            Err(_) => out.push_str("\"\""),
        }
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Expands a text template (`send_text`, pattern names): every placeholder as text.
pub fn expand_text<R: Rng + ?Sized>(
    template: &str,
    vars: &Vars<'_>,
    run: u64,
    rng: &mut R,
) -> String {
    expand_str(template, |name| lookup(name, vars, run, rng))
}

/// The path and query of a target URL (`tail`, from [`crate::model::url::path_start`])
/// with the connection's placeholders filled, each value percent-encoded
/// ([`crate::model::url::percent_encoded`]: a `/`, `?` or space in a value stays in the
/// value). Only the placeholders that draw nothing are filled (validation allows no
/// others); any other is left as written.
pub fn expand_url_tail(tail: &str, vars: &Vars<'_>) -> String {
    expand_str(tail, |name| match name {
        "random" | "uuid" | "run" | "marker" => None,
        name => lookup(name, vars, 0, &mut super::NoRng)
            .map(|value| crate::model::url::percent_encoded(&value)),
    })
}

/// `text` with every placeholder written `0` (an unclosed `{{` stays as written).
pub fn expand_as_zero(text: &str) -> String {
    expand_str(text, |_| Some("0".to_string()))
}

/// `"{{run:int}}"`, a string that is exactly one typed placeholder: the name, whose value
/// then goes out as a JSON number rather than a string.
fn typed(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") {
        return None;
    }
    inner.trim().strip_suffix(":int").map(str::trim_end)
}

/// Expands the `sub` claim template.
pub fn expand_sub(template: &str, user: u32, group: &str) -> String {
    expand_str(template, |name| match name {
        "user" => Some(user.to_string()),
        "group" => Some(group.to_string()),
        _ => None,
    })
}

fn lookup<R: Rng + ?Sized>(name: &str, vars: &Vars<'_>, run: u64, rng: &mut R) -> Option<String> {
    // Inside a longer string a typed placeholder is text like any other.
    let name = name.strip_suffix(":int").map_or(name, str::trim_end);
    Some(match name {
        "user" => vars.user.to_string(),
        "conn" => vars.conn.to_string(),
        "run" => run.to_string(),
        "group" => vars.group.to_string(),
        "sub" => vars.sub.to_string(),
        "random" => format!("{:016x}", rng.random::<u64>()),
        "uuid" => uuid_v4(rng.random::<u128>()),
        other => {
            let column = other.strip_prefix("feed.")?;
            let (columns, row) = vars.feed?;
            let at = columns.iter().position(|c| c == column)?;
            row.get(at)?.clone()
        }
    })
}

fn uuid_v4(bits: u128) -> String {
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Where `pair` (two equal ASCII bytes, `{{` or `}}`) first occurs in `s`. Per-send
/// templates are short: a byte scan beats setting up a substring searcher each time.
fn find_pair(s: &str, pair: u8) -> Option<usize> {
    s.as_bytes()
        .windows(2)
        .position(|w| w[0] == pair && w[1] == pair)
}

fn expand_str(s: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    expand_into(&mut out, s, |name, out| match value(name) {
        Some(v) => {
            out.push_str(&v);
            true
        }
        None => false,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    fn vars() -> Vars<'static> {
        Vars {
            user: 7,
            conn: 42,
            group: "g",
            sub: "user-7",
            feed: None,
        }
    }

    #[test]
    fn feed_columns_expand_from_the_row() {
        let columns = ["name".to_string(), "n".to_string()];
        let row = ["ada".to_string(), "3".to_string()];
        let vars = Vars {
            feed: Some((&columns, &row)),
            ..vars()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let out = expand_text("{{feed.name}}/{{feed.n}}/{{feed.x}}", &vars, 1, &mut rng);
        assert_eq!(out, "ada/3/{{feed.x}}");
        let none = expand_text("{{feed.name}}", &self::vars(), 1, &mut rng);
        assert_eq!(none, "{{feed.name}}", "no feeder: left as written");
    }

    /// A target URL's path and query take the connection's values, percent-encoded so a
    /// value's `/`, `?` or space stays in it; its host is never touched.
    #[test]
    fn a_target_url_is_filled_in_its_path_with_values_percent_encoded() {
        let columns = ["id".to_string()];
        let row = ["CP 01/a".to_string()];
        let vars = Vars {
            sub: "user 7?x",
            feed: Some((&columns, &row)),
            ..vars()
        };
        assert_eq!(
            crate::plan::expand_fixed_url(
                "ws://h{{user}}:9/ocpp/CP{{user}}/{{ conn }}?g={{group}}&s={{sub}}&f={{feed.id}}&r={{random}}",
                &vars
            ),
            "ws://h{{user}}:9/ocpp/CP7/42?g=g&s=user%207%3Fx&f=CP%2001%2Fa&r={{random}}"
        );
        assert_eq!(
            crate::plan::expand_fixed_url("wss://h/ws", &vars),
            "wss://h/ws"
        );
        assert_eq!(
            crate::plan::url_with_zeros(
                "ws://u:${PW}@h{{x}}:9/ocpp/CP{{user}}?c={{ conn }}&i={{user:int}}&u={{user"
            ),
            "ws://u:${PW}@h{{x}}:9/ocpp/CP0?c=0&i=0&u={{user"
        );
    }

    #[test]
    fn counters_and_names_expand_everywhere() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let t = json!({"run_id": "r-{{conn}}-{{run}}", "nested": ["{{user}}", {"s": "{{ sub }}@{{group}}"}], "n": 3});
        let v = expand(&t, &vars(), 5, &mut rng);
        assert_eq!(
            v,
            json!({"run_id": "r-42-5", "nested": ["7", {"s": "user-7@g"}], "n": 3})
        );
    }

    #[test]
    fn random_ids_are_seeded_and_distinct() {
        let t = json!("{{random}} {{random}} {{uuid}}");
        let a = expand(&t, &vars(), 1, &mut ChaCha8Rng::seed_from_u64(3));
        let b = expand(&t, &vars(), 1, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a, b);
        let parts: Vec<&str> = a.as_str().unwrap().split(' ').collect();
        assert_ne!(parts[0], parts[1]);
        assert_eq!(parts[0].len(), 16);
        assert_eq!(parts[2].len(), 36);
        assert_eq!(&parts[2][14..15], "4", "uuid version nibble");
    }

    #[test]
    fn unknown_and_unclosed_placeholders_stay_verbatim() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let v = expand(&json!("a {{nope}} b {{user"), &vars(), 1, &mut rng);
        assert_eq!(v, json!("a {{nope}} b {{user"));
    }

    #[test]
    fn typed_placeholders_give_numbers_when_alone() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let t = json!({"id": "{{run:int}}", "conn": "{{ conn:int }}", "text": "n{{run:int}}", "s": "{{run}}"});
        let v = expand(&t, &vars(), 5, &mut rng);
        assert_eq!(v, json!({"id": 5, "conn": 42, "text": "n5", "s": "5"}));
    }

    #[test]
    fn capture_references_stay_for_the_swarm() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let v = expand(&json!({"id": "{{$sub_id}}"}), &vars(), 1, &mut rng);
        assert_eq!(v, json!({"id": "{{$sub_id}}"}));
    }

    #[test]
    fn compiled_sends_render_the_bytes_expand_then_serialize_gives() {
        let templates = [
            json!({"type": "echo", "run_id": "{{conn}}-{{run}}"}),
            json!({"id": "{{run:int}}", "c": "{{ conn:int }}", "q": "say \"{{user}}\"\n", "n": [1, 2.5, null, true, {"k\"": "{{random}}"}], "u": "{{uuid}}", "e": {}, "a": []}),
            json!(["{{group}}", "{{sub}}", "{brace}", 7]),
            json!("{{random}}-{{random}}"),
            json!(42),
            // Placeholders split once at compile time: unknown names and unclosed braces
            // stay as written, a typed one inside text is text, feed columns expand.
            json!({"a": "x{{nope}}y{{ user }}z", "b": "{{conn", "c": "}}{{run:int}}!", "d": "{{feed.name}}{{feed.gone}}", "e": "{{{{user}}}}"}),
        ];
        for t in &templates {
            let c = Compiled::new(t, &[]).unwrap();
            // One slot list for every send, as a cursor keeps it: each render starts over.
            let mut slots = Vec::new();
            for run in [1, 9] {
                let want = serde_json::to_string(&expand(
                    t,
                    &vars(),
                    run,
                    &mut ChaCha8Rng::seed_from_u64(run),
                ))
                .unwrap();
                let mut out = String::new();
                c.render(
                    &vars(),
                    run,
                    &mut ChaCha8Rng::seed_from_u64(run),
                    &mut out,
                    &mut slots,
                );
                assert_eq!(out, want, "{t}");
                assert_eq!(slots.len(), c.slots());
                slots.iter_mut().for_each(|s| s.push_str("left over"));
            }
        }
    }

    #[test]
    fn plain_texts_and_counter_only_templates_render_as_expand_then_serialize() {
        // Texts of counters whose literal parts need no escaping go out between quotes
        // without a scan; a template that reads only counters is rendered (by the cursor)
        // with the names left empty. Both give the general path's bytes; the flag says
        // which templates read names.
        let columns = ["name".to_string()];
        let row = ["ada".to_string()];
        let full = Vars {
            feed: Some((&columns, &row)),
            ..vars()
        };
        let blank = Vars {
            group: "",
            sub: "",
            feed: None,
            ..vars()
        };
        let cases = [
            (json!({"type": "echo", "run_id": "{{conn}}-{{run}}"}), false),
            (
                json!({"a": "{{user}}:{{conn}}:{{run}}", "b": ["x{{run}}", "{{ user }}"]}),
                false,
            ),
            (
                json!({"q": "say \"{{user}}\"", "t": "tab\t{{run}}", "s": "back\\{{conn}}"}),
                false,
            ),
            (
                json!({"i": "{{run:int}}", "c": "{{conn:int}}", "u": "{{user}}"}),
                false,
            ),
            (json!({"g": "{{group}}-{{run}}"}), true),
            (json!({"s": "{{sub}}"}), true),
            (json!({"f": "{{feed.name}}"}), true),
            (json!({"r": "{{random}}-{{run}}"}), true),
            (json!({"n": "{{nope}}-{{run}}"}), true),
        ];
        let mut slots = Vec::new();
        for (t, names) in &cases {
            let c = Compiled::new(t, &[]).unwrap();
            assert_eq!(c.reads_names(), *names, "{t}");
            let given = if *names { &full } else { &blank };
            for run in [1, 12, 345] {
                let want = serde_json::to_string(&expand(
                    t,
                    &full,
                    run,
                    &mut ChaCha8Rng::seed_from_u64(run),
                ))
                .unwrap();
                let mut out = String::new();
                c.render(
                    given,
                    run,
                    &mut ChaCha8Rng::seed_from_u64(run),
                    &mut out,
                    &mut slots,
                );
                assert_eq!(out, want, "{t}");
            }
        }
    }

    #[test]
    fn compiled_sends_name_where_correlated_values_come_from() {
        let t = json!({"type": "echo", "run_id": "{{conn}}-{{run}}", "n": "{{run:int}}", "o": {"x": 1}});
        let fields = ["run_id", "type", "n", "o", "missing"].map(String::from);
        let c = Compiled::new(&t, &fields).unwrap();
        let keys: Vec<String> = c
            .keys()
            .iter()
            .map(|(at, k)| match k {
                Key::Const(v) => format!("{}={v}", fields[*at]),
                Key::Slot(i) => format!("{}@{i}", fields[*at]),
            })
            .collect();
        assert_eq!(keys, ["run_id@0", "type=echo", "n@1", r#"o={"x":1}"#]);
        let (mut out, mut slots) = (String::new(), Vec::new());
        c.render(
            &vars(),
            5,
            &mut ChaCha8Rng::seed_from_u64(1),
            &mut out,
            &mut slots,
        );
        assert_eq!(slots, ["42-5", "5"]);
    }

    #[test]
    fn templates_needing_the_general_path_do_not_compile() {
        assert!(Compiled::new(&json!({"id": "{{$sub_id}}"}), &[]).is_none());
        assert!(Compiled::new(&json!({"n": "{{random:int}}"}), &[]).is_none());
        let nested = json!({"o": {"id": "{{run}}"}});
        assert!(Compiled::new(&nested, &["o".to_string()]).is_none());
        assert!(Compiled::new(&nested, &["o.id".to_string()]).is_some());
    }

    #[test]
    fn sub_template_uses_user_and_group() {
        assert_eq!(
            expand_sub("{{group}}-user-{{user}}", 3, "chat"),
            "chat-user-3"
        );
    }
}
