//! Refused at the door: the server let every valid token's connection through the upgrade,
//! then closed each one itself before accepting it, with a close code the scenario does
//! not list in `[oracles] reject.close` (4000, 4001, 4401, 1000 or 1011 right after the
//! 101, or after a message that does not accept under `accepted = { message = ... }`,
//! such as an error), and accepted none. Such a run exercised nothing: a wrong secret
//! seen through a server that refuses in its own way, or a script that does not fit the
//! server. It is never a race (its unmet expectations are the refusal seen through the
//! oracles) and never clean.
//!
//! That holds when the connections sent a message of their script before the server's
//! close, and the oracles saw something break: a close after a request may be a server's
//! policy for it (graphql-transport-ws closes 4401 on a `subscribe` sent before its ack),
//! but when not one valid token's connection was accepted in the whole run, nothing tells
//! a policy from a token the server never read (`placement = "header"` for a server that
//! reads `connection_init`), and neither is a race. A hunt that knows better (the
//! battery's early-send family, whose probe saw the token accepted) says so with its own
//! policy rule, never through this verdict.
//!
//! The close says whether the refusal reads as auth: its code (1008, 4401, 4403), its
//! reason, or the last message the server sent before it (an in-band refusal the scenario
//! does not declare: `{"type":"disconnect","reason":"unauthorized"}` and then Close 1000).
//! Such a message may itself be what accepted the connection, under an acceptance rule
//! that takes the 101 or the first frame for it (ActionCable's refusal is its first
//! frame): a connection the server then closed before any expectation was met, whose
//! close or last unclaimed message reads as an auth refusal, was turned away all the same.

use super::{auth_check, is_auth_refusal, our_tokens, top_causes, valid_token, Judgement};
use crate::auth::Redactor;
use crate::model::{
    AcceptRule, Attempt, Cause, ConnReport, Outcome, Placement, Plan, Step, Verdict,
};
use crate::oracle::refusal::is_refusal_code;
use std::collections::BTreeMap;

/// How the valid-token connections of a run were turned away at the door.
#[derive(Debug, Default)]
struct Door {
    /// The server's closes, by cause.
    closes: BTreeMap<Cause, u64>,
    /// The close reasons the server gave (the first few distinct ones as shown).
    reasons: Vec<Said>,
    /// Whether a connection sent a message of its script (not its auth message) before
    /// the server's close.
    script_sent: bool,
    /// Whether the server sent a message before its close (an in-band refusal, declared
    /// with `reject.message`).
    received: bool,
    /// The last messages the server sent before its close (the first few distinct ones
    /// as shown).
    messages: Vec<Said>,
    /// Where the valid tokens travelled (the first few distinct placements), for the hint.
    placements: Vec<String>,
    /// Attempts the acceptance rule counted accepted that the server refused in band
    /// ([`refused_in_band`]).
    accepted_refusals: u64,
}

/// A text the server sent: as sent, which is what is read for what it says (an auth
/// word, the protocol, a rate limit; the redaction's own `<part of a token>` must not
/// read as an auth word), and as a hint shows it, its tokens hidden.
#[derive(Debug)]
struct Said {
    sent: String,
    shown: String,
}

/// How many distinct close reasons a hint quotes.
const REASONS: usize = 2;

pub(super) use crate::oracle::refusal::reads_as_auth_refusal as auth_reason;

/// The verdict of a run refused at the door (see the module docs), or `None` for any
/// other run. `opaque`: the kind of `[auth] tokens` source, for the hint; `redactor`
/// hides the tokens in what the server said before the hint quotes it.
pub(super) fn refused_at_door(
    plan: &Plan,
    reports: &[ConnReport],
    opaque: Option<&str>,
    redactor: &Redactor,
) -> Option<Judgement> {
    let door = door(plan, reports, redactor)?;
    let reject = &plan.oracles.session.reject;
    let auth = door.closes.keys().any(|c| is_auth_refusal(reject, c))
        || door.reasons.iter().any(|r| auth_reason(&r.sent))
        || door.messages.iter().any(|m| auth_reason(&m.sent));
    let seen = match (door.accepted_refusals, &plan.oracles.session.accepted) {
        (0, _) | (_, AcceptRule::Message { .. }) => seen(&door),
        (n, rule) => format!(
            "{}; {} counted as accepted by `accepted = \"{}\"`, which took the refusal for \
             acceptance (`accepted = {{ message = KIND }}` names what accepts)",
            seen(&door),
            crate::model::words::plural(n, "attempt"),
            if *rule == AcceptRule::Upgrade {
                "upgrade"
            } else {
                "first_frame"
            }
        ),
    };
    let declare = declare(plan, &door);
    // Advice to wait for the server first, only where a script does not already.
    let waits_first = plan
        .scripts
        .iter()
        .all(|s| matches!(s.first(), Some(Step::Expect(_))));
    let after = match (
        door.script_sent,
        waits_first,
        &plan.oracles.session.accepted,
    ) {
        // The acceptance it waits for is named: what to expect first.
        (true, false, AcceptRule::Message { event }) => format!(
            " (each had sent its first message before the server's `{event}` came: a server \
             that refuses requests until it has accepted closes them so, as \
             graphql-transport-ws closes a subscribe before its ack with 4401; begin the \
             script with `{{ expect = \"{event}\" }}` first)"
        ),
        (true, false, _) => " (each had sent its first message: if the server refuses that \
                              until something comes first, begin the script with an \
                              `expect` of it)"
            .to_string(),
        (true, true, _) => " (each had sent a message of its script)".to_string(),
        (false, _, _) => String::new(),
    };
    // A reason that names the subprotocol says what to check before any token.
    let subprotocol = door
        .reasons
        .iter()
        .any(|r| r.sent.to_lowercase().contains("protocol"));
    // Valid to us, not necessarily to the server: named by where they came from.
    let tokens = our_tokens(opaque);
    // Every close says the client broke the server's protocol (RFC 6455's 1002, 1003,
    // 1007): another protocol's first messages, not a token to declare a refusal of.
    let protocol = !door.closes.is_empty()
        && door.closes.keys().all(|c| {
            matches!(c, Cause::ServerClose(code)
                if super::misreading::PROTOCOL_CLOSES.contains(code))
        });
    // Every close says the server is going away or restarting (1001, 1012): a server
    // shutting down, no refusal of a token to declare.
    let going_away = !door.closes.is_empty()
        && door
            .closes
            .keys()
            .all(|c| matches!(c, Cause::ServerClose(1001 | 1012)));
    let (verdict, hint) = if going_away && !auth {
        (
            Verdict::TargetUnusable,
            format!(
                "the server closed the connection of every {tokens} before accepting it \
                 ({seen}){after}: going away (1001) or restarting (1012), as a server shutting \
                 down does: nothing was exercised; rerun once it is up"
            ),
        )
    } else if protocol && !auth {
        (
            Verdict::TargetUnusable,
            format!(
                "the server closed the connection of every {tokens} before accepting it \
                 ({seen}), its word for a client that broke its protocol{after}: nothing was \
                 exercised, and no token was judged. The script does not speak the server's \
                 protocol there: check its first messages (a handshake the protocol needs \
                 first, their fields and framing: [oracles] record_separator) and the \
                 subprotocol against the server's"
            ),
        )
    } else if subprotocol && !auth {
        (
            Verdict::TargetUnusable,
            format!(
                "the server closed the connection of every {tokens} before accepting it \
                 ({seen}), its reason naming the protocol: nothing was exercised. Check \
                 the subprotocols offered (Sec-WebSocket-Protocol: [auth] subprotocol, and a \
                 subprotocol placement's `offer`) against those the server speaks"
            ),
        )
    } else if auth {
        (
            Verdict::AuthMisconfigured,
            format!(
                "the server closed the connection of every {tokens} before accepting it \
                 ({seen}), a refusal the scenario does not declare{after}: {}, and that the \
                 server reads the token where it travels ({}: [auth] placement); if that is \
                 how it refuses a token, declare it: {declare}",
                auth_check(opaque),
                door.placements.join(", ")
            ),
        )
    } else {
        (
            Verdict::TargetUnusable,
            format!(
                "the server closed the connection of every {tokens} before accepting it \
                 ({seen}){after}: nothing was exercised. If that is how it refuses a token, \
                 declare it ({declare}) and {}, and that the server reads the token where it \
                 travels ({}: [auth] placement); else check the subprotocol and the first \
                 messages the protocol needs",
                auth_check(opaque),
                door.placements.join(", ")
            ),
        )
    };
    Some(Judgement {
        verdict,
        hint: Some(hint),
    })
}

/// How the valid-token connections were turned away, when every one of them was (see the
/// module docs); `None` when any was accepted, met an expectation, was refused in a way
/// the scenario declares, or ended otherwise than by the server's close, or when a bad
/// token's connection was accepted. What the server said is kept as the hint shows it,
/// its tokens hidden by `redactor`.
fn door(plan: &Plan, reports: &[ConnReport], redactor: &Redactor) -> Option<Door> {
    let mut d = Door::default();
    let mut valid_judged = 0u64;
    // Where each connection carries its token, by id (a shard's are a slice of the plan's:
    // an id is no index); made only once a report needs it, for most runs leave at their
    // first accepted attempt.
    let placements = std::cell::OnceCell::new();
    let placement = |id: u32| {
        placements
            .get_or_init(|| {
                plan.conns
                    .iter()
                    .map(|c| (c.id, plan.placement_of(c)))
                    .collect::<BTreeMap<u32, &Placement>>()
            })
            .get(&id)
            .copied()
    };
    for r in reports {
        let valid = valid_token(plan, r.token);
        let mut judged = 0u64;
        let mut upgraded = 0u64;
        for a in &r.attempts {
            if matches!(
                a.outcome,
                Outcome::Aborted | Outcome::Pending | Outcome::Cut
            ) {
                continue;
            }
            judged += 1;
            if !valid {
                // A bad token's connection accepted is a finding of its own (one refused
                // in band is not accepted, whatever the rule counted).
                if a.outcome == Outcome::Accepted && !refused_in_band(plan, r, a) {
                    return None;
                }
                continue;
            }
            if refused_in_band(plan, r, a) {
                d.accepted_refusals += 1;
            } else if !turned_away(a) {
                return None;
            }
            upgraded += 1;
            if let Some(cause) = &a.cause {
                *d.closes.entry(cause.clone()).or_default() += 1;
            }
        }
        if !valid || judged == 0 {
            continue;
        }
        if r.counters.expect.expectations_met > 0 {
            return None;
        }
        valid_judged += judged;
        if let Some(close) = r
            .answer
            .as_ref()
            .filter(|a| matches!(a.cause, Cause::ServerClose(_) | Cause::InvalidClose(_)))
        {
            keep_shown(&mut d.reasons, close.body.trim(), redactor);
        }
        let said = r
            .said_before_close
            .as_deref()
            .or(r.said_before_accepted_close.as_deref());
        if let Some(said) = said {
            keep_shown(&mut d.messages, said.trim(), redactor);
        }
        let placed = placement(r.id);
        if let Some(p) = placed {
            keep_distinct(&mut d.placements, &placement_text(p));
        }
        let auth_messages = match placed {
            Some(Placement::FirstMessage { .. }) => upgraded,
            _ => 0,
        };
        d.script_sent |= r.counters.messages_sent > auth_messages;
        d.received |= r.counters.messages_received > 0;
    }
    (valid_judged > 0).then_some(d)
}

/// Adds `text` to `kept` unless empty, already there, or [`REASONS`] are kept.
fn keep_distinct(kept: &mut Vec<String>, text: &str) {
    if !text.is_empty() && kept.len() < REASONS && !kept.iter().any(|k| k == text) {
        kept.push(text.to_string());
    }
}

/// Adds `text` to `kept` unless empty, already there as shown (its tokens hidden), or
/// [`REASONS`] are kept. Compared as shown: a server that echoes each connection's own
/// token (`bad session <token>`) says one thing, which a hint quotes once.
fn keep_shown(kept: &mut Vec<Said>, text: &str, redactor: &Redactor) {
    // Full: nothing more is quoted, so nothing more is redacted (one per connection).
    if text.is_empty() || kept.len() >= REASONS {
        return;
    }
    let shown = redactor.redact(text);
    if !kept.iter().any(|k| k.shown == shown) {
        kept.push(Said {
            sent: text.to_string(),
            shown: shown.into_owned(),
        });
    }
}

/// Where a placement puts the token, in words for a hint: `the upgrade header
/// Authorization`, `the query parameter token`, `the first message`.
pub(super) fn placement_text(p: &Placement) -> String {
    match p {
        Placement::Header { name, .. } => format!("the upgrade header {name}"),
        Placement::Query { param } => format!("the query parameter {param}"),
        Placement::Subprotocol { .. } => "the Sec-WebSocket-Protocol offer".into(),
        Placement::Cookie { name } => format!("the cookie {name}"),
        Placement::FirstMessage { .. } => "the first message after the upgrade".into(),
        Placement::None => "nowhere (placement none)".into(),
    }
}

/// Whether the server turned attempt `a` away itself after its 101: closed it before
/// accepting it, with a code the scenario does not list (a listed one makes the attempt
/// `Rejected`: the auth rule and the session oracles judge that).
fn turned_away(a: &Attempt) -> bool {
    a.outcome == Outcome::Failed
        && a.upgraded_us.is_some()
        && matches!(
            a.cause,
            Some(Cause::ServerClose(_) | Cause::InvalidClose(_))
        )
}

/// INCONCLUSIVE when the only violations are rejection hygiene's, each on a bad token's
/// connection the server refused in band, in words the scenario does not declare: a last
/// message before its Close that reads as an auth refusal (ActionCable's
/// `{"type":"disconnect","reason":"unauthorized"}`, then Close 1000), whether the attempt
/// then failed unaccepted ([`turned_away`]) or the acceptance rule took that message for
/// acceptance ([`refused_in_band`]), its Close no fault of the server's own (not 1011).
/// The server refused the token, as it must; the
/// scenario has not said how, so the refusals could not be judged, and the hint spells out
/// the declaration. `None` for any other run.
pub(super) fn forged_refused_in_band(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<crate::model::OracleKind, u64>,
    kept: &[crate::model::Violation],
) -> Option<Judgement> {
    use crate::model::OracleKind;
    let hygiene = by_oracle.get(&OracleKind::RejectionHygiene).copied()?;
    if hygiene == 0 || by_oracle.values().sum::<u64>() != hygiene {
        return None;
    }
    // What the server said last before closing each bad token's connection, when that
    // refused it in band.
    fn said_refusal<'r>(plan: &Plan, r: &'r ConnReport) -> Option<&'r str> {
        if valid_token(plan, r.token) {
            return None;
        }
        // A close that is no fault of the server's own (1011 "internal error" is one,
        // whatever it said first: rejection hygiene judges that).
        let no_fault =
            |a: &Attempt| matches!(a.cause, Some(Cause::ServerClose(code)) if code != 1011);
        // A Close whose code states the refusal (a 4401 the strict policy does not list)
        // is the refusal, whatever was said before it (a greeting, a challenge): the
        // undeclared code is rejection hygiene's finding, not in-band words to declare.
        let says_it = |a: &Attempt| matches!(a.cause, Some(Cause::ServerClose(code)) if is_refusal_code(code));
        let unaccepted = r.said_before_close.as_deref().filter(|said| {
            auth_reason(said)
                && r.attempts
                    .iter()
                    .any(|a| turned_away(a) && no_fault(a) && !says_it(a))
        });
        let accepted = r.said_before_accepted_close.as_deref().filter(|_| {
            r.attempts
                .iter()
                .any(|a| refused_in_band(plan, r, a) && no_fault(a))
        });
        unaccepted.or(accepted)
    }
    let refusals: Vec<(u32, &str)> = reports
        .iter()
        .filter_map(|r| said_refusal(plan, r).map(|said| (r.id, said)))
        .collect();
    if kept.is_empty()
        || !kept
            .iter()
            .all(|v| refusals.iter().any(|(id, _)| *id == v.conn))
    {
        return None;
    }
    let said = refusals.first()?.1;
    let declare = refusal_kind(plan, said).unwrap_or_else(|| {
        "its kind in [oracles.kinds] and `[oracles] reject = { message = KIND }`".to_string()
    });
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!(
            "every rejection-hygiene violation ({hygiene}) is a bad token the server refused \
             in band, in words the scenario does not declare ({said}, then its Close): the \
             bad tokens' refusals were not judged, and none is a race. Declare the refusal: \
             {declare}"
        )),
    })
}

/// Whether the server refused an attempt of `r` in band though the acceptance rule took
/// it for accepted (`refused_in_band`): what calibration must not count as accepted.
pub fn refused_in_band_anywhere(plan: &Plan, r: &ConnReport) -> bool {
    r.attempts.iter().any(|a| refused_in_band(plan, r, a))
}

/// Whether the server refused attempt `a` of `r` in band though the acceptance rule took
/// it for accepted: a rule that takes the 101 or the first frame for acceptance (not a
/// message of a kind), a server close that ended it, and, as the connection met no
/// expectation, the close's reason or the last message no expectation claimed reading as
/// an auth refusal (ActionCable's `{"type":"disconnect","reason":"unauthorized"}` as the
/// first frame, then Close 1000).
fn refused_in_band(plan: &Plan, r: &ConnReport, a: &Attempt) -> bool {
    let closed = matches!(
        a.cause,
        Some(Cause::ServerClose(_) | Cause::InvalidClose(_))
    );
    let weak_rule = !matches!(plan.oracles.session.accepted, AcceptRule::Message { .. });
    let says_auth = || {
        r.said_before_accepted_close
            .as_deref()
            .is_some_and(auth_reason)
            || r.closed_after_acceptance
                .as_ref()
                .is_some_and(|close| auth_reason(&close.body))
    };
    a.outcome == Outcome::Accepted
        && closed
        && weak_rule
        && r.counters.expect.expectations_met == 0
        && says_auth()
}

/// What the server did, for the hint: `server_close_4401 ×20, reason "unauthorized"`,
/// `server_close_1000 ×10, after the message {"type":"disconnect"}`.
fn seen(d: &Door) -> String {
    let mut out = top_causes(&d.closes);
    match d.reasons.as_slice() {
        [] => {}
        [one] => out.push_str(&format!(", reason {:?}", one.shown)),
        many => out.push_str(&format!(
            ", reasons {}",
            many.iter()
                .map(|r| format!("{:?}", r.shown))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    if !d.messages.is_empty() {
        let plural = if d.messages.len() == 1 { "" } else { "s" };
        out.push_str(&format!(
            ", after the message{plural} {}",
            d.messages
                .iter()
                .map(|m| m.shown.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    out
}

/// How to declare the refusal seen: a message the server sent before its close, as
/// `reject.message`; and the scenario's `reject.close` with the codes seen added, except
/// a normal end or a fault (1000, 1001, 1011...) behind such a message (the message is
/// the refusal; the close alone says nothing) and the codes no list may hold (1005: no
/// code at all). The codes already in force are restated, and said to be: a `close` list
/// written replaces the one in force (the default `[1008]` included), so leaving them out
/// would stop counting them as refusals; a reader must still tell them from those seen.
fn declare(plan: &Plan, d: &Door) -> String {
    let message = match d.messages.iter().find_map(|m| refusal_kind(plan, &m.sent)) {
        Some(rule) => format!("the message it sends before the close, as `reject.message`: {rule}"),
        None => "the message it sends before the close, as `reject.message` (its kind in \
                 [oracles.kinds])"
            .to_string(),
    };
    let in_force = &plan.oracles.session.reject.close;
    let mut seen: Vec<u16> = Vec::new();
    let mut shed = Vec::new();
    // A code the scenario gave its idle timeout cannot be a refusal too (`validate` would
    // refuse the line): said, not suggested.
    let mut idle: Vec<u16> = Vec::new();
    for cause in d.closes.keys() {
        let Cause::ServerClose(code) = cause else {
            continue;
        };
        let listable = !matches!(code, 1004..=1006 | 1015);
        let says = is_refusal_code(*code) || !d.received;
        // A rate limit's close is the server shedding load, not refusing the token.
        let sheds = d
            .reasons
            .iter()
            .map(|r| r.sent.as_str())
            .chain([""])
            .any(|reason| crate::oracle::shedding::reads_as_rate_limit(*code, reason));
        if sheds {
            shed.push(*code);
        } else if crate::oracle::idle::declared_idle_code(&plan.oracles, *code) {
            if !idle.contains(code) {
                idle.push(*code);
            }
        } else if listable && says && !in_force.contains(code) && !seen.contains(code) {
            seen.push(*code);
        }
    }
    let added = !seen.is_empty();
    let list = |codes: &[u16]| {
        codes
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !shed.is_empty() && !added {
        return format!(
            "`[oracles] reject = {{ shed = [{}] }}` if that close is its rate limit (a shed \
             connection is counted, never judged)",
            list(&shed)
        );
    }
    let close: Vec<u16> = in_force.iter().chain(&seen).copied().collect();
    let mut close = format!("`[oracles] reject = {{ close = [{}] }}`", list(&close));
    if added && !in_force.is_empty() {
        let (seen_are, kept_stay) = (
            if seen.len() == 1 {
                "is the code"
            } else {
                "are the codes"
            },
            if in_force.len() == 1 { "stays" } else { "stay" },
        );
        close.push_str(&format!(
            ", where {} {seen_are} it closed with and {} {kept_stay} only because a `close` \
             list written replaces the one in force",
            list(&seen),
            list(in_force)
        ));
    }
    let idle_note = (!idle.is_empty()).then(|| {
        let is = if idle.len() == 1 { "is" } else { "are" };
        format!(
            "{} {is} the idle timeout's here (`idle_close`), which a refusal cannot share",
            list(&idle)
        )
    });
    let ways = match (added, d.received) {
        (true, true) => format!("{close}, or {message}"),
        (true, false) => close,
        (false, true) => message,
        (false, false) => {
            return idle_note.map_or_else(
                || "its close code in `[oracles] reject.close`".to_string(),
                |note| format!("not by its close code: {note}"),
            )
        }
    };
    match idle_note {
        Some(note) => format!("{ways} ({note})"),
        None => ways,
    }
}

/// The declaration of an in-band refusal `message` that reads as auth (a JSON object, as
/// the hint quotes it): a kind matching its type and the field that says auth, and
/// `reject.message` naming it. `None` when it is no such object.
fn refusal_kind(plan: &Plan, message: &str) -> Option<String> {
    let serde_json::Value::Object(fields) = serde_json::from_str(message).ok()? else {
        return None;
    };
    let type_field = plan.oracles.type_field.as_str();
    let string = |key: &str| fields.get(key).and_then(serde_json::Value::as_str);
    let said = fields
        .keys()
        .map(String::as_str)
        .filter(|k| *k != type_field)
        .find(|k| string(k).is_some_and(auth_reason))?;
    let mut matches = Vec::new();
    if let Some(kind) = string(type_field) {
        matches.push((type_field, kind));
    }
    matches.push((said, string(said)?));
    let rule = matches
        .iter()
        .map(|(k, v)| format!("{} = {}", toml_key(k), serde_json::Value::from(*v)))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "`[oracles.kinds] refused = {{ {rule} }}` and `[oracles] reject = {{ message = \"refused\" }}`"
    ))
}

/// `key` as a TOML key: bare when it may be, else quoted.
pub(super) fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_string()
    } else {
        serde_json::Value::from(key).to_string()
    }
}
