//! The `steps` script of a group: one inline table per step, nested through `repeat`.

use super::kinds::tests;
use super::template::{check_placeholders, to_json, valid_capture_name, CAPTURES};
use super::walk::{found, in_file_order, kind, Ctx, Fields, Node};
use crate::model::capture_refs;
use crate::model::path::{check, lookup};
use crate::model::{AbortHow, Capture, Dist, Expect, PatternItem, Repeat, Step, Test};
use std::collections::BTreeSet;
use std::time::Duration;
use toml::de::DeValue;

const STEP_KINDS: &[&str] = &[
    "send",
    "send_text",
    "send_binary",
    "ping",
    "expect",
    "expect_none",
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

/// Placeholders a `send` may hold: the plan's, and `{{$name}}` captures.
const SEND_PLACEHOLDERS: &[&str] = &[
    "user", "conn", "run", "group", "sub", "random", "uuid", "marker", CAPTURES,
];
/// A `send_text` takes the same but `{{marker}}`, which is read back from a JSON field.
const SEND_TEXT_PLACEHOLDERS: &[&str] = &[
    "user", "conn", "run", "group", "sub", "random", "uuid", CAPTURES,
];
/// Placeholders a pattern or an expect's field tests may hold: those that draw nothing from
/// the connection's random stream, and captures.
const EXPECT_PLACEHOLDERS: &[&str] = &["user", "conn", "run", "group", "sub", CAPTURES];

/// The `send` templates seen so far in a group, in file order, so an `expect` can only
/// correlate on a field that something actually sends; the names captured so far, so a
/// `{{$name}}` refers to an earlier capture; how deep in `repeat`s the walk is, since
/// `abort_handshake` may only open a group's script; whether it is inside a paced
/// `repeat` (`every`), and the group's size, for `rendezvous`.
#[derive(Default)]
pub(super) struct Sent {
    templates: Vec<serde_json::Value>,
    captures: BTreeSet<String>,
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

impl Sent {
    /// Reports every `{{$name}}` in `text` that no earlier `expect` captures.
    fn check_captures(&self, cx: &mut Ctx<'_>, node: &Node<'_>, text: &str) {
        for name in capture_refs(text) {
            if valid_capture_name(name) && !self.captures.contains(name) {
                let message = format!(
                    "\"{{{{${name}}}}}\" refers to no earlier capture; an expect before this step \
                     needs capture = {{ {name} = \"/path\" }}"
                );
                cx.report(node.span(), message);
            }
        }
    }

    fn check_captures_in(&self, cx: &mut Ctx<'_>, node: &Node<'_>, value: &serde_json::Value) {
        match value {
            serde_json::Value::String(s) => self.check_captures(cx, node, s),
            serde_json::Value::Array(items) => items
                .iter()
                .for_each(|v| self.check_captures_in(cx, node, v)),
            serde_json::Value::Object(map) => map
                .values()
                .for_each(|v| self.check_captures_in(cx, node, v)),
            _ => {}
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
    let deepest = pair_correlated(&mut out, sent.depth > 0);
    mark_pushes(&mut out);
    if deepest > PAIRED_MAX {
        cx.report(
            node.span(),
            format!(
                "steps: {deepest} sends here are each paired with a correlated expect after \
                 them (a pipelined burst), and one stretch pairs at most {PAIRED_MAX}: send \
                 fewer before their expects (two bursts of half)"
            ),
        );
    }
    out
}

/// The most sends one stretch pairs with correlated expects ([`Expect::earlier_send`] is a
/// `u8`: 255 sends back, and the latest).
const PAIRED_MAX: usize = 256;

/// Pairs every correlated `expect` of a script with its send again, in every step list,
/// as loading does ([`Expect::earlier_send`]): after the script's loops were given other
/// `times` (a hunt's pressure raising a pipelined burst and the loop that answers it),
/// which the pairing counts.
pub fn pair_again(steps: &mut [Step]) {
    fn in_list(steps: &mut [Step], looped: bool) {
        for step in steps.iter_mut() {
            if let Step::Repeat { steps: body, .. } = step {
                in_list(body, true);
            }
        }
        pair_correlated(steps, looped);
    }
    in_list(steps, false);
}

/// Sets each correlated `expect`'s [`Expect::earlier_send`] in one step list (`looped`:
/// a loop's body). The list alternates stretches of sends and of the expectations that
/// answer them (steps of other kinds, a `think`, a `ping`, a `rendezvous`, belong to
/// neither); the correlated expectations of each answering stretch pair, field by field
/// and in order, with the latest of the sends before it that carry their field, one each
/// (an uncorrelated `expect` among them, a keepalive, pairs with nothing). A loop of sends
/// alone belongs to the sends' stretch; a loop with expects of its own ends the stretch
/// before it, and the sends its body ends with start the next; `close` and `reconnect`
/// end both. The pairing is the same for every iteration of a loop (a body whose leading
/// expects outnumber the sends it ends with pairs its first iteration with those only),
/// but for a loop of answers alone right after the sends ([`pair_loop`]), whose
/// iterations pair with them in order. Returns the most sends any stretch paired (more
/// than [`PAIRED_MAX`] is refused).
fn pair_correlated(steps: &mut [Step], looped: bool) -> usize {
    let mut deepest = 0;
    // In a loop's body, the expects before its first send answer the sends the previous
    // iteration ended with (the sends before the loop, the first time).
    let mut sends: Vec<usize> = if looped {
        trailing_sends(steps)
    } else {
        Vec::new()
    };
    let mut expects: Vec<usize> = Vec::new();
    for at in 0..steps.len() {
        match &steps[at] {
            Step::Send { .. } | Step::SendText { .. } | Step::SendBinary { .. } => {
                if !expects.is_empty() {
                    deepest = deepest.max(pair_run(steps, &sends, &expects));
                    sends.clear();
                    expects.clear();
                }
                sends.push(at);
            }
            Step::Expect(_) => expects.push(at),
            // A loop of sends alone (`repeat = 2, steps = [send]`) is part of the stretch:
            // its latest sends are what the expects after it answer.
            Step::Repeat { steps: body, .. } if !expects_any(body) => {
                if !expects.is_empty() {
                    deepest = deepest.max(pair_run(steps, &sends, &expects));
                    sends.clear();
                    expects.clear();
                }
                sends.push(at);
            }
            // A loop of answers alone right after the sends answers them, over all its
            // iterations.
            Step::Repeat { steps: body, .. } if expects.is_empty() && answers_only(body) => {
                deepest = deepest.max(pair_loop(steps, &sends, at));
                sends.clear();
            }
            // A loop with expects of its own answers the stretch before it itself; the
            // sends it ends with start the next one.
            Step::Repeat { .. } => {
                deepest = deepest.max(pair_run(steps, &sends, &expects));
                sends.clear();
                expects.clear();
                sends.push(at);
            }
            Step::Close { .. } | Step::Reconnect { .. } => {
                deepest = deepest.max(pair_run(steps, &sends, &expects));
                sends.clear();
                expects.clear();
            }
            _ => {}
        }
    }
    deepest.max(pair_run(steps, &sends, &expects))
}

/// Marks the expectations of one list of `steps` (a group's, or a loop's body) that claim
/// pushes ([`Expect::pushed`]).
pub(super) fn mark_pushes(steps: &mut [Step]) {
    let pushed: Vec<usize> = (0..steps.len())
        .filter(|&at| claims_pushes(steps, at))
        .collect();
    for at in pushed {
        if let Step::Expect(e) = &mut steps[at] {
            e.pushed = true;
        }
    }
    let fresh: Vec<usize> = (0..steps.len())
        .filter(|&at| correlates_on_fresh_values(steps, at))
        .collect();
    for at in fresh {
        if let Step::Expect(e) = &mut steps[at] {
            e.fresh = true;
        }
    }
}

/// Whether the correlated `expect` at `at` of `steps` correlates on a value drawn afresh
/// per request ([`Expect::fresh`]): the list has sends carrying its field, and each of them
/// writes it with a per-send placeholder.
fn correlates_on_fresh_values(steps: &[Step], at: usize) -> bool {
    let Some(Step::Expect(e)) = steps.get(at) else {
        return false;
    };
    let Some(field) = e.correlate.as_deref().filter(|_| !e.absent) else {
        return false;
    };
    let mut carried = crate::model::deep_steps(steps)
        .filter_map(|s| match s {
            Step::Send { template } => lookup(template, field),
            _ => None,
        })
        .peekable();
    carried.peek().is_some() && carried.all(drawn_per_send)
}

/// Whether a sent value is drawn afresh for each send, and no other connection's could
/// be the same: a string holding `{{uuid}}` or `{{random}}`, or `{{run}}` (the send's
/// count on its connection) with `{{conn}}` (with an option, `{{run:int}}`, too). `{{run}}`
/// alone repeats on every connection, and another member's broadcast may echo it.
fn drawn_per_send(value: &serde_json::Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let names: Vec<&str> = text
        .split("{{")
        .skip(1)
        .map(|rest| {
            let inner = rest.split("}}").next().unwrap_or("").trim();
            inner.split(':').next().unwrap_or("").trim()
        })
        .collect();
    let has = |name: &str| names.contains(&name);
    has("uuid") || has("random") || (has("run") && has("conn"))
}

/// Whether the `expect` at `at` of `steps` claims pushes ([`Expect::pushed`]).
fn claims_pushes(steps: &[Step], at: usize) -> bool {
    let Some(Step::Expect(e)) = steps.get(at) else {
        return false;
    };
    if e.absent {
        return false;
    }
    let Some(field) = e.correlate.as_deref() else {
        return fans_in(steps, at, e);
    };
    // A send (or a loop's sends) carrying the correlated field, as pairing counts them.
    let carries = |step: &Step| sends_carrying(step, field) > 0;
    let mut other_send = false;
    for step in steps[..at].iter().rev() {
        if carries(step) {
            // A send between that does not carry it publishes to what it names (a STOMP
            // SEND after a SUBSCRIBE, with no receipt asked for); sends that carry it too
            // are pipelined requests.
            return other_send;
        }
        match step {
            // Answered on another field since the value went out: what comes on this one
            // now is pushed to it (a subscription's messages after its receipt).
            Step::Expect(x) if x.correlate.as_deref().is_some_and(|f| f != field) => return true,
            Step::Repeat { steps, .. } => {
                other_send |= crate::model::deep_steps(steps).any(is_send);
            }
            step => other_send |= is_send(step),
        }
    }
    // The value went out before this list (a loop's body): a send here that does not
    // carry it publishes to what it names.
    other_send
}

/// Whether `step` sends a frame (`send`, `send_text`, `send_binary`).
fn is_send(step: &Step) -> bool {
    matches!(
        step,
        Step::Send { .. } | Step::SendText { .. } | Step::SendBinary { .. }
    )
}

/// Whether an uncorrelated `expect` at `at` claims pushes: the request before it was
/// answered already by a correlated reply (a listener's message, after its join was
/// acknowledged), or, right after its sends, it takes with the uncorrelated `expect`s
/// of its kind after it more records of one kind than those sends (`said said said` after
/// one post: a room's broadcasts, every member's). Not a greeting (no send before it).
fn fans_in(steps: &[Step], at: usize, e: &Expect) -> bool {
    let Some(last_send) = steps[..at].iter().rposition(is_send) else {
        return false;
    };
    // Its request answered by a correlated reply already (a join's `joined`): what comes
    // next, unasked, is pushed. After an uncorrelated one (an `ack`), the request's reply
    // may still be on its way (`ack` then `profile`).
    if steps[last_send + 1..at]
        .iter()
        .any(|s| matches!(s, Step::Expect(x) if x.correlate.is_some() && !x.absent))
    {
        return true;
    }
    let Some(kind) = one_kind(e) else {
        return false;
    };
    let of_kind = |step: &Step| match step {
        Step::Expect(x) if x.correlate.is_none() && !x.absent && one_kind(x) == Some(kind) => {
            x.pattern.len()
        }
        _ => 0,
    };
    let after: usize = steps[at + 1..]
        .iter()
        .take_while(|s| !is_send(s) && !matches!(s, Step::Repeat { .. }))
        .map(of_kind)
        .sum();
    let taken = e.pattern.len() + after;
    let sends = steps[..=last_send]
        .iter()
        .rev()
        .take_while(|s| !matches!(s, Step::Expect(_)))
        .filter(|s| is_send(s))
        .count();
    taken >= 2 && taken > sends
}

/// The one kind every item of `e`'s pattern names, each once (`said said`), if so.
fn one_kind(e: &Expect) -> Option<&str> {
    let first = e.pattern.first()?;
    e.pattern
        .iter()
        .all(|i| i.repeat == Repeat::One && i.event == first.event)
        .then_some(first.event.as_str())
}

/// The sends (and loops of sends alone) after the last step of `steps` that expects.
fn trailing_sends(steps: &[Step]) -> Vec<usize> {
    let expecting = |s: &Step| match s {
        Step::Expect(_) => true,
        Step::Repeat { steps, .. } => expects_any(steps),
        _ => false,
    };
    let from = steps.iter().rposition(expecting).map_or(0, |i| i + 1);
    (from..steps.len())
        .filter(|&i| matches!(steps[i], Step::Send { .. } | Step::Repeat { .. }))
        .collect()
}

/// Whether `steps` hold an `expect` or `expect_none`, in loops too.
fn expects_any(steps: &[Step]) -> bool {
    crate::model::deep_steps(steps).any(|s| matches!(s, Step::Expect(_)))
}

/// How many sends carrying `field` `step` makes: one for a `send` that has it, a loop's
/// body's times its count.
fn sends_carrying(step: &Step, field: &str) -> usize {
    match step {
        Step::Send { template } => usize::from(lookup(template, field).is_some()),
        // A loop that expects too: the sends it ends with.
        Step::Repeat { steps, .. } if expects_any(steps) => trailing_sends(steps)
            .iter()
            .map(|&i| sends_carrying(&steps[i], field))
            .sum(),
        Step::Repeat { steps, times, .. } => steps
            .iter()
            .map(|s| sends_carrying(s, field))
            .sum::<usize>()
            .saturating_mul(*times as usize),
        _ => 0,
    }
}

/// [`pair_correlated`] for the correlated expectations at `run`, after the sends at
/// `sends`. Returns the most sends one field's expectations paired with.
fn pair_run(steps: &mut [Step], sends: &[usize], run: &[usize]) -> usize {
    let carrying = |field: &str| {
        sends
            .iter()
            .map(|&i| sends_carrying(&steps[i], field))
            .sum::<usize>()
    };
    let fields: BTreeSet<String> = run
        .iter()
        .filter_map(|&i| match &steps[i] {
            Step::Expect(e) if !e.absent => e.correlate.clone(),
            _ => None,
        })
        .collect();
    // Worked out over the steps as they are, then written.
    let mut backs: Vec<(usize, usize)> = Vec::new();
    let mut deepest = 0;
    for field in fields {
        let mine: Vec<usize> = run
            .iter()
            .copied()
            .filter(|&i| matches!(&steps[i], Step::Expect(e) if !e.absent && e.correlate.as_deref() == Some(field.as_str())))
            .collect();
        let paired = carrying(&field).min(mine.len());
        deepest = deepest.max(paired);
        backs.extend(
            mine.iter()
                .enumerate()
                .map(|(nth, &i)| (i, paired.saturating_sub(nth + 1))),
        );
    }
    for (i, back) in backs {
        if let Step::Expect(e) = &mut steps[i] {
            e.earlier_send = u8::try_from(back).unwrap_or(u8::MAX);
        }
    }
    deepest
}

/// Whether a loop's body holds only the answers to what was sent before it: no send, no
/// loop, nothing that ends the connection.
fn answers_only(body: &[Step]) -> bool {
    body.iter().all(|s| {
        !matches!(
            s,
            Step::Send { .. }
                | Step::SendText { .. }
                | Step::SendBinary { .. }
                | Step::Repeat { .. }
                | Step::Close { .. }
                | Step::Reconnect { .. }
        )
    })
}

/// [`pair_correlated`] for a loop of answers alone (the `repeat` at `at`,
/// [`answers_only`]) after the sends at `sends`: its correlated expectations pair, field by
/// field and in order over all its iterations, with the latest of those sends that carry
/// their field, as the same `expect`s written out would. A body with `k` expects of a field
/// takes `k` sends fewer back each iteration ([`Expect::earlier_send_step`]): `repeat = 8,
/// steps = [send]` and then `repeat = 8, steps = [expect]` pair iteration `i` with the
/// `i`-th send. Returns the most sends one field's expectations paired with.
fn pair_loop(steps: &mut [Step], sends: &[usize], at: usize) -> usize {
    let Some(Step::Repeat {
        steps: body, times, ..
    }) = steps.get(at)
    else {
        return 0;
    };
    let fields: BTreeSet<&str> = body
        .iter()
        .filter_map(|s| match s {
            Step::Expect(e) if !e.absent => e.correlate.as_deref(),
            _ => None,
        })
        .collect();
    // (index in the body, sends back at the first iteration, fewer per iteration)
    let mut backs: Vec<(usize, usize, usize)> = Vec::new();
    let mut deepest = 0;
    for field in fields {
        let carrying: usize = sends
            .iter()
            .map(|&i| sends_carrying(&steps[i], field))
            .sum();
        let mine: Vec<usize> = (0..body.len())
            .filter(|&i| matches!(&body[i], Step::Expect(e) if !e.absent && e.correlate.as_deref() == Some(field)))
            .collect();
        let paired = carrying.min(mine.len().saturating_mul(*times as usize));
        deepest = deepest.max(paired);
        backs.extend(
            mine.iter()
                .enumerate()
                .map(|(nth, &i)| (i, paired.saturating_sub(nth + 1), mine.len())),
        );
    }
    let Some(Step::Repeat { steps: body, .. }) = steps.get_mut(at) else {
        return deepest;
    };
    for (i, back, step) in backs {
        if let Some(Step::Expect(e)) = body.get_mut(i) {
            e.earlier_send = u8::try_from(back).unwrap_or(u8::MAX);
            e.earlier_send_step = u8::try_from(step).unwrap_or(u8::MAX);
        }
    }
    deepest
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
        "send_text" => send_text(cx, value, sent),
        "send_binary" => send_binary(cx, &f, value),
        "ping" => ping(cx, &f, value),
        "expect" => Step::Expect(expect(cx, &f, value, sent, false)),
        "expect_none" => Step::Expect(expect(cx, &f, value, sent, true)),
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
        "send_text" => &["send_text"],
        "send_binary" => &["send_binary", "encoding"],
        "ping" => &["ping", "within"],
        "expect" => &[
            "expect",
            "correlate",
            "within",
            "wait",
            "where",
            "capture",
            "name",
        ],
        "expect_none" => &["expect_none", "correlate", "within", "wait", "where"],
        "think" => &["think"],
        "pause_reads" => &["pause_reads"],
        "repeat" => &["repeat", "steps", "every"],
        "close" => &["close"],
        "abort_handshake" => &["abort_handshake"],
        "rendezvous" => &["rendezvous"],
        _ => &["reconnect"],
    }
}

/// `send = { ... }` (a JSON object) or `send = [ ... ]` (a JSON array, e.g. Phoenix v2).
fn send(cx: &mut Ctx<'_>, node: &Node<'_>, sent: &mut Sent) -> Step {
    match node.get_ref() {
        DeValue::Table(_) | DeValue::Array(_) => {}
        other => {
            let message = format!(
                "send: expected a table (a JSON object) like {{ type = \"ping\" }} or an array \
                 (a JSON array), found {}; use send_text = \"...\" for a frame that is not JSON",
                kind(other)
            );
            cx.report(node.span(), message);
        }
    }
    let template = to_json(cx, node, SEND_PLACEHOLDERS);
    sent.check_captures_in(cx, node, &template);
    sent.templates.push(template.clone());
    Step::Send { template }
}

/// Most bytes a Ping may carry (RFC 6455 §5.5: a control frame's payload is at most 125).
const MAX_PING_PAYLOAD: usize = 125;

/// `send_binary = "3q2+7w=="` (base64, the default) or `{ send_binary = "deadbeef",
/// encoding = "hex" }`: one binary frame with those bytes. Stored as standard base64.
fn send_binary(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, node: &Node<'_>) -> Step {
    use base64::Engine;
    let text = cx.string("send_binary", node).unwrap_or_default();
    let encoding = f.text_or(cx, "encoding", "base64");
    let bytes = match encoding.as_str() {
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64 ({e})")),
        "hex" => hex_bytes(text),
        other => {
            let span = f.get("encoding").map_or(node.span(), Node::span);
            let message =
                format!("send_binary encoding: expected \"base64\" or \"hex\", found {other:?}");
            cx.report(span, message);
            Ok(Vec::new())
        }
    };
    let bytes = bytes.unwrap_or_else(|why| {
        let message = format!(
            "send_binary: {found} is {why}",
            found = found(node.get_ref())
        );
        cx.report(node.span(), message);
        Vec::new()
    });
    Step::SendBinary {
        base64: base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

/// `"de ad be ef"` or `"deadbeef"` (spaces allowed between bytes).
fn hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("not hex (an odd number of digits)".into());
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| "not hex (digits 0-9, a-f)".to_string())
        })
        .collect()
}

/// `ping = "payload"`, optionally `within = "1s"`: a Ping frame, and the wait for its Pong.
fn ping(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, node: &Node<'_>) -> Step {
    let payload = cx.string("ping", node).unwrap_or_default().to_string();
    if payload.len() > MAX_PING_PAYLOAD {
        let message = format!(
            "ping: a Ping carries at most {MAX_PING_PAYLOAD} bytes (RFC 6455 §5.5), found {}",
            payload.len()
        );
        cx.report(node.span(), message);
    }
    Step::Ping {
        payload,
        within: f
            .get("within")
            .map(|_| f.positive_duration_or(cx, "within", DEFAULT_WITHIN)),
    }
}

/// `send_text = "..."`: a text frame sent as written, placeholders expanded.
fn send_text(cx: &mut Ctx<'_>, node: &Node<'_>, sent: &mut Sent) -> Step {
    let text = cx.string("send_text", node).unwrap_or_default().to_string();
    check_placeholders(cx, node.span(), &text, SEND_TEXT_PLACEHOLDERS, "send_text");
    sent.check_captures(cx, node, &text);
    Step::SendText { template: text }
}

fn expect(
    cx: &mut Ctx<'_>,
    f: &Fields<'_, '_>,
    node: &Node<'_>,
    sent: &mut Sent,
    absent: bool,
) -> Expect {
    let key = if absent { "expect_none" } else { "expect" };
    let pattern = cx
        .string(key, node)
        .map(|p| {
            check_placeholders(cx, node.span(), p, EXPECT_PLACEHOLDERS, key);
            sent.check_captures(cx, node, p);
            pattern(cx, node, p)
        })
        .unwrap_or_default();
    let (correlate, correlate_reply) = f
        .get("correlate")
        .map_or((None, None), |n| correlate(cx, n, sent));
    let checks = f
        .get("where")
        .map(|n| tests(cx, n, &format!("{key}.where"), false, EXPECT_PLACEHOLDERS))
        .unwrap_or_default();
    if let Some(n) = f.get("where") {
        for t in &checks {
            match &t.test {
                Test::Equals(v) => sent.check_captures_in(cx, n, v),
                Test::Matches(p) => sent.check_captures(cx, n, p),
                _ => {}
            }
        }
    }
    let capture = f.get("capture").map(|n| capture(cx, n)).unwrap_or_default();
    let name = f.get("name").and_then(|n| {
        let text = cx.string("name", n)?;
        let ok = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !ok {
            let message = format!(
                "expect name {text:?}: use letters, digits, \"_\", \"-\" and \".\" (it names a histogram)"
            );
            cx.report(n.span(), message);
        }
        Some(text.to_string())
    });
    sent.captures.extend(capture.iter().map(|c| c.name.clone()));
    Expect {
        pattern: pattern.into(),
        correlate,
        correlate_reply,
        earlier_send: 0,
        earlier_send_step: 0,
        within: f.positive_duration_or(cx, "within", DEFAULT_WITHIN),
        wait: f.bool_or(cx, "wait", true),
        checks,
        capture,
        absent,
        name,
        // Known once the whole list is read ([`crate::model::mark_pushes`]).
        pushed: false,
        fresh: false,
    }
}

/// `capture = { name = "path", ... }`.
pub(super) fn capture(cx: &mut Ctx<'_>, node: &Node<'_>) -> Vec<Capture> {
    let Some(table) = cx.table("capture", node) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, value) in in_file_order(table) {
        let name = name.get_ref().to_string();
        if !valid_capture_name(&name) {
            cx.report(
                value.span(),
                format!("capture: {name:?} is not a capture name (letters, digits and _)"),
            );
        }
        let Some(path) = cx.string(&format!("capture.{name}"), value) else {
            continue;
        };
        if let Err(why) = check(path) {
            cx.report(value.span(), format!("capture.{name}: {why}"));
        }
        out.push(Capture {
            name,
            path: path.to_string(),
        });
    }
    out
}

/// `correlate = "run_id"` (the same path in the send and its answers), or
/// `correlate = { send = "seq", reply = "seq_reply" }` (the value sent at one path comes back
/// at another): the send's path, and the reply's when it differs.
fn correlate(cx: &mut Ctx<'_>, node: &Node<'_>, sent: &Sent) -> (Option<String>, Option<String>) {
    let (send, reply) = match node.get_ref() {
        DeValue::Table(table) => {
            let f = Fields::new(cx, table, node.span(), "correlate", &["send", "reply"])
                .with_owner("correlate");
            let path = |cx: &mut Ctx<'_>, key: &str| {
                let n = f.require(cx, key)?;
                let path = cx.string(&format!("correlate.{key}"), n)?;
                match check(path) {
                    Ok(()) => Some((path.to_string(), n.span())),
                    Err(why) => {
                        cx.report(n.span(), format!("correlate.{key}: {why}"));
                        None
                    }
                }
            };
            let send = path(cx, "send");
            let reply = path(cx, "reply");
            match (send, reply) {
                (Some(send), Some((reply, _))) => (send, Some(reply)),
                _ => return (None, None),
            }
        }
        DeValue::String(_) => {
            let Some(field) = cx.string("correlate", node) else {
                return (None, None);
            };
            if let Err(why) = check(field) {
                cx.report(node.span(), format!("correlate: {why}"));
                return (None, None);
            }
            ((field.to_string(), node.span()), None)
        }
        other => {
            let message = format!(
                "correlate: expected a field path (\"run_id\") or {{ send = \"seq\", reply = \"seq_reply\" }}, found {}",
                found(other)
            );
            cx.report(node.span(), message);
            return (None, None);
        }
    };
    let (field, span) = send;
    if !sent.templates.iter().any(|t| lookup(t, &field).is_some()) {
        // The paths the earlier sends do set, for a misspelling of one (`runid`).
        let mut paths = Vec::new();
        for t in &sent.templates {
            field_paths(t, "", &mut paths);
        }
        let hint = crate::model::words::did_you_mean(&field, paths.iter().map(String::as_str));
        cx.report(
            span,
            format!("expect correlates on {field:?} but no earlier send sets it{hint}"),
        );
    }
    // The same path twice is the plain form.
    let reply = reply.filter(|r| *r != field);
    (Some(field), reply)
}

/// The dotted paths of `value`'s object members, nested ones too (`run_id`,
/// `payload.id`), pushed onto `out` after `prefix`.
fn field_paths(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    let Some(map) = value.as_object() else {
        return;
    };
    for (key, member) in map {
        let path = match prefix {
            "" => key.clone(),
            _ => format!("{prefix}.{key}"),
        };
        field_paths(member, &path, out);
        out.push(path);
    }
}

/// `"a b+ c* d?"`: whitespace-separated event names, each with an optional repetition mark.
fn pattern(cx: &mut Ctx<'_>, node: &Node<'_>, text: &str) -> Vec<PatternItem> {
    if let Some((at, message)) = broken_placeholder(text) {
        let span = super::template::offset_in(cx, &node.span(), text, at);
        cx.report(span, format!("expect: {message}"));
        // Its pieces would only be reported again as odd event names.
        return Vec::new();
    }
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

/// The first `{{` or `}}` in a pattern that makes no placeholder once whitespace splits the
/// pattern into items, as its offset in `text` and what to write instead. `{{ conn }}`,
/// fine in a send, would become the three event names `{{`, `conn` and `}}`, and a `}}`
/// that closes nothing is a typo. An unclosed `{{` is left to `check_placeholders`.
fn broken_placeholder(text: &str) -> Option<(usize, String)> {
    let from = |at: usize, what: &str| text.get(at..).and_then(|s| s.find(what)).map(|i| at + i);
    let mut rest = 0;
    loop {
        let close = from(rest, "}}")?;
        let Some(open) = from(rest, "{{").filter(|open| *open < close) else {
            let message =
                "\"}}\" closes no placeholder; placeholders look like {{conn}}".to_string();
            return Some((close, message));
        };
        let inside = text.get(open + 2..close).unwrap_or_default();
        if inside.contains(char::is_whitespace) {
            let name: String = inside.split_whitespace().collect();
            let message = format!(
                "\"{{{{{inside}}}}}\": a placeholder in a pattern is written without spaces, \
                 \"{{{{{name}}}}}\" (whitespace separates pattern items)"
            );
            return Some((open, message));
        }
        rest = close + 2;
    }
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
