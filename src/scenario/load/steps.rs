//! The `steps` script of a group: one inline table per step, nested through `repeat`.

use super::template::to_json;
use super::walk::{found, kind, Ctx, Fields, Node};
use crate::model::{AbortHow, Dist, Expect, PatternItem, Repeat, Step, PLACEHOLDERS};
use std::collections::BTreeSet;
use std::time::Duration;
use toml::de::DeValue;

const STEP_KINDS: &[&str] = &[
    "send",
    "expect",
    "think",
    "pause_reads",
    "repeat",
    "close",
    "reconnect",
    "abort_handshake",
    "rendezvous",
];
/// How long a rendezvous waits, from its first arrival, when the scenario does not say.
const DEFAULT_RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_WITHIN: Duration = Duration::from_secs(10);
const NORMAL_CLOSE: u16 = 1000;

/// Top-level fields set by the `send` steps seen so far in a group, in file order, so an
/// `expect` can only correlate on a field that something actually sends; and how deep in
/// `repeat`s the walk is, since `abort_handshake` may only open a group's script; whether
/// it is inside a paced `repeat` (`every`), and the group's size, for `rendezvous`.
#[derive(Default)]
pub(super) struct Sent {
    fields: BTreeSet<String>,
    depth: u32,
    paced: bool,
    /// Connections in the group (users × connections_per_user), when known.
    group_size: Option<u64>,
}

impl Sent {
    /// The walk state at the top of a group of `group_size` connections.
    pub(super) fn for_group(group_size: Option<u64>) -> Self {
        Sent {
            group_size,
            ..Sent::default()
        }
    }
}

/// A `steps` array (a group's or a `repeat`'s); it must not be empty.
pub(super) fn steps(cx: &mut Ctx<'_>, node: &Node<'_>, sent: &mut Sent) -> Vec<Step> {
    let Some(items) = cx.array("steps", node) else {
        return Vec::new();
    };
    if items.is_empty() {
        cx.report(node.span(), "steps: expected at least one step");
    }
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Some(step) = step(cx, item, sent) else {
            continue;
        };
        if matches!(step, Step::AbortHandshake { .. }) && (index > 0 || sent.depth > 0) {
            let message = "abort_handshake replaces the connect, so it must be the first step \
                           of a group (not after another step, not inside repeat)";
            cx.report(item.span(), message);
        }
        if matches!(step, Step::Rendezvous { .. }) {
            rendezvous_placement(cx, item, items.get(index + 1), sent);
        }
        out.push(step);
    }
    out
}

/// A rendezvous releases the next send, so one must follow it directly; a paced `repeat`
/// keeps its own schedule, which a wait for others would break.
fn rendezvous_placement(cx: &mut Ctx<'_>, item: &Node<'_>, next: Option<&Node<'_>>, sent: &Sent) {
    let next_is_send = next.is_some_and(|n| match n.get_ref() {
        DeValue::Table(t) => t.get("send").is_some(),
        _ => false,
    });
    if !next_is_send {
        let message = "rendezvous releases the next send together, so a send step must \
                       follow it directly";
        cx.report(item.span(), message);
    }
    if sent.paced {
        let message = "rendezvous cannot be inside a repeat with `every` (a paced block keeps \
                       its own schedule)";
        cx.report(item.span(), message);
    }
}

fn step(cx: &mut Ctx<'_>, node: &Node<'_>, sent: &mut Sent) -> Option<Step> {
    let DeValue::Table(table) = node.get_ref() else {
        let message = format!(
            "step: expected a table like {{ think = \"1s\" }}, found {}",
            kind(node.get_ref())
        );
        cx.report(node.span(), message);
        return None;
    };
    let step_kind = cx.one_of("step", table, node.span(), STEP_KINDS)?;
    let section = format!("{step_kind} step");
    let f = Fields::new(cx, table, node.span(), section, step_keys(step_kind));
    let value = f.get(step_kind)?;
    Some(match step_kind {
        "send" => send(cx, value, sent),
        "expect" => Step::Expect(expect(cx, &f, value, sent)),
        "think" => Step::Think {
            dist: cx.dist("think", value).unwrap_or(Dist::ZERO),
        },
        "pause_reads" => Step::PauseReads {
            dist: cx.dist("pause_reads", value).unwrap_or(Dist::ZERO),
        },
        "repeat" => repeat(cx, &f, value, sent),
        "close" => Step::Close {
            code: close_code(cx, value),
        },
        "abort_handshake" => abort_handshake(cx, value),
        "rendezvous" => rendezvous(cx, value, sent),
        _ => reconnect(cx, value),
    })
}

fn step_keys(step_kind: &str) -> &'static [&'static str] {
    match step_kind {
        "send" => &["send"],
        "expect" => &["expect", "correlate", "within", "wait"],
        "think" => &["think"],
        "pause_reads" => &["pause_reads"],
        "repeat" => &["repeat", "steps", "every"],
        "close" => &["close"],
        "abort_handshake" => &["abort_handshake"],
        "rendezvous" => &["rendezvous"],
        _ => &["reconnect"],
    }
}

fn send(cx: &mut Ctx<'_>, node: &Node<'_>, sent: &mut Sent) -> Step {
    match node.get_ref() {
        DeValue::Table(table) => sent
            .fields
            .extend(table.keys().map(|k| k.get_ref().to_string())),
        other => {
            let message = format!(
                "send: expected a table (the JSON object to send) like {{ type = \"ping\" }}, found {}",
                kind(other)
            );
            cx.report(node.span(), message);
        }
    }
    Step::Send {
        template: to_json(cx, node, PLACEHOLDERS),
    }
}

fn expect(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, node: &Node<'_>, sent: &Sent) -> Expect {
    let pattern = cx
        .string("expect", node)
        .map(|p| pattern(cx, node, p))
        .unwrap_or_default();
    let correlate = f.get("correlate").and_then(|n| correlate(cx, n, sent));
    Expect {
        pattern,
        correlate,
        within: f.positive_duration_or(cx, "within", DEFAULT_WITHIN),
        wait: f.bool_or(cx, "wait", true),
    }
}

fn correlate(cx: &mut Ctx<'_>, node: &Node<'_>, sent: &Sent) -> Option<String> {
    let field = cx.string("correlate", node)?;
    if field.is_empty() {
        cx.report(node.span(), "correlate: expected a field name, found \"\"");
    } else if !sent.fields.contains(field) {
        cx.report(
            node.span(),
            format!("expect correlates on {field:?} but no earlier send sets it"),
        );
    }
    Some(field.to_string())
}

/// `"a b+ c* d?"`: whitespace-separated event names, each with an optional repetition mark.
fn pattern(cx: &mut Ctx<'_>, node: &Node<'_>, text: &str) -> Vec<PatternItem> {
    let items: Vec<PatternItem> = text
        .split_whitespace()
        .filter_map(|word| match pattern_item(word) {
            Ok(item) => Some(item),
            Err(why) => {
                cx.report(node.span(), format!("expect: pattern item {word:?} {why}"));
                None
            }
        })
        .collect();
    if text.split_whitespace().next().is_none() {
        let message = "expect: the pattern is empty; expected event names like \"agent_started agent_thinking+\"";
        cx.report(node.span(), message);
    }
    items
}

fn pattern_item(word: &str) -> Result<PatternItem, &'static str> {
    let (event, repeat) = match word.char_indices().last() {
        Some((at, '+')) => (&word[..at], Repeat::OneOrMore),
        Some((at, '*')) => (&word[..at], Repeat::ZeroOrMore),
        Some((at, '?')) => (&word[..at], Repeat::Optional),
        _ => (word, Repeat::One),
    };
    if event.is_empty() {
        return Err("has no event name");
    }
    if event.contains(['+', '*', '?']) {
        return Err("may end in one of +, * or ? only");
    }
    Ok(PatternItem {
        event: event.to_string(),
        repeat,
    })
}

fn repeat(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, node: &Node<'_>, sent: &mut Sent) -> Step {
    let times = f.int(cx, "repeat", node, 1, u32::MAX.into());
    sent.depth += 1;
    let paced = sent.paced || f.get("every").is_some();
    let outer = std::mem::replace(&mut sent.paced, paced);
    let steps = match f.require(cx, "steps") {
        Some(inner) => steps(cx, inner, sent),
        None => Vec::new(),
    };
    sent.paced = outer;
    sent.depth -= 1;
    let every = f
        .get("every")
        .map(|_| f.positive_duration_or(cx, "every", Duration::from_secs(1)));
    Step::Repeat {
        times: times.and_then(|t| u32::try_from(t).ok()).unwrap_or(1),
        steps,
        every,
    }
}

/// `close = 1000` or `close = true`; only codes an endpoint may send (RFC 6455 §7.4).
fn close_code(cx: &mut Ctx<'_>, node: &Node<'_>) -> u16 {
    let code = match node.get_ref() {
        DeValue::Boolean(true) => return NORMAL_CLOSE,
        DeValue::Integer(_) => cx.integer("close", node),
        other => {
            let message = format!(
                "close: expected a close code like 1000, or true, found {}",
                found(other)
            );
            cx.report(node.span(), message);
            return NORMAL_CLOSE;
        }
    };
    match code
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| sendable(*c))
    {
        Some(code) => code,
        None => {
            let shown = cx.text().get(node.span()).unwrap_or_default().to_string();
            let message = format!(
                "close code {shown} cannot be sent; expected 1000-1003, 1007-1014 or 3000-4999"
            );
            cx.report(node.span(), message);
            NORMAL_CLOSE
        }
    }
}

fn sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn reconnect(cx: &mut Ctx<'_>, node: &Node<'_>) -> Step {
    let defaults = Step::Reconnect {
        after: Dist::ZERO,
        backoff: Vec::new(),
    };
    let table = match node.get_ref() {
        DeValue::Boolean(true) => return defaults,
        DeValue::Table(table) => table,
        other => {
            let message = format!(
                "reconnect: expected true or a table like {{ after = \"100ms\" }}, found {}",
                found(other)
            );
            cx.report(node.span(), message);
            return defaults;
        }
    };
    let f = Fields::new(cx, table, node.span(), "reconnect", &["after", "backoff"]);
    let backoff = f
        .get("backoff")
        .and_then(|n| cx.array("backoff", n))
        .unwrap_or_default();
    Step::Reconnect {
        after: f.dist_or(cx, "after", Dist::ZERO),
        backoff: backoff
            .iter()
            .filter_map(|n| cx.duration("backoff", n))
            .collect(),
    }
}

/// `abort_handshake = { after = "uniform(0ms, 2ms)", how = "rst" }`, or `true` (at once,
/// with an RST).
fn abort_handshake(cx: &mut Ctx<'_>, node: &Node<'_>) -> Step {
    let defaults = Step::AbortHandshake {
        after: Dist::ZERO,
        how: AbortHow::Rst,
    };
    let table = match node.get_ref() {
        DeValue::Boolean(true) => return defaults,
        DeValue::Table(table) => table,
        other => {
            let message = format!(
                "abort_handshake: expected true or a table like \
                 {{ after = \"uniform(0ms, 2ms)\", how = \"rst\" }}, found {}",
                found(other)
            );
            cx.report(node.span(), message);
            return defaults;
        }
    };
    let f = Fields::new(cx, table, node.span(), "abort_handshake", &["after", "how"])
        .with_owner("abort_handshake");
    Step::AbortHandshake {
        after: f.dist_or(cx, "after", Dist::ZERO),
        how: f.choice(
            cx,
            "how",
            &[("rst", AbortHow::Rst), ("fin", AbortHow::Fin)],
            AbortHow::Rst,
        ),
    }
}

/// `rendezvous = "all"` (or `true`), `rendezvous = 300`, or
/// `rendezvous = { count = 300 | "all", timeout = "5s" }`.
fn rendezvous(cx: &mut Ctx<'_>, node: &Node<'_>, sent: &Sent) -> Step {
    let mut step = Step::Rendezvous {
        count: None,
        timeout: DEFAULT_RENDEZVOUS_TIMEOUT,
    };
    let Step::Rendezvous { count, timeout } = &mut step else {
        return step;
    };
    match node.get_ref() {
        DeValue::Table(table) => {
            let f = Fields::new(cx, table, node.span(), "rendezvous", &["count", "timeout"])
                .with_owner("rendezvous");
            if let Some(n) = f.get("count") {
                *count = rendezvous_count(cx, n, sent);
            }
            *timeout = f.positive_duration_or(cx, "timeout", DEFAULT_RENDEZVOUS_TIMEOUT);
        }
        _ => *count = rendezvous_count(cx, node, sent),
    }
    step
}

/// `"all"`, `true` or a number of connections from 1 to the group's size.
fn rendezvous_count(cx: &mut Ctx<'_>, node: &Node<'_>, sent: &Sent) -> Option<u32> {
    match node.get_ref() {
        DeValue::String(s) if s.as_ref() == "all" => None,
        DeValue::Boolean(true) => None,
        DeValue::Integer(_) => {
            let n = cx.integer("rendezvous count", node)?;
            let most = sent.group_size.map_or(i128::from(u32::MAX), i128::from);
            if n < 1 || n > most {
                let message = format!(
                    "rendezvous count {n}: expected \"all\" or 1 to {most} (the group's connections)"
                );
                cx.report(node.span(), message);
                return None;
            }
            u32::try_from(n).ok()
        }
        other => {
            let message = format!(
                "rendezvous: expected \"all\", a number of connections, or a table like \
                 {{ count = 300, timeout = \"5s\" }}, found {}",
                found(other)
            );
            cx.report(node.span(), message);
            None
        }
    }
}
