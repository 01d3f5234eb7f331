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

/// Expands a text template (`send_text`, pattern names): every placeholder as text.
pub fn expand_text<R: Rng + ?Sized>(
    template: &str,
    vars: &Vars<'_>,
    run: u64,
    rng: &mut R,
) -> String {
    expand_str(template, |name| lookup(name, vars, run, rng))
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
    let mut rest = s;
    while let Some(open) = find_pair(rest, b'{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match find_pair(after, b'}') {
            Some(close) => {
                let name = after[..close].trim();
                match value(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[open..open + 2 + close + 2]),
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
    fn sub_template_uses_user_and_group() {
        assert_eq!(
            expand_sub("{{group}}-user-{{user}}", 3, "chat"),
            "chat-user-3"
        );
    }
}
