//! The session oracles of `[oracles]`: `exclusive`, `liveness`, `reject`, `consistency`,
//! `accepted`. Each is on with its default when absent.

use super::walk::{found, Ctx, Fields, Node};
use crate::model::words::did_you_mean;
use crate::model::{
    AcceptRule, KindSpec, LivenessSpec, RejectPolicy, RejectSpec, SessionKey, SessionOracles,
};
use toml::de::DeValue;

/// The session oracles from the keys of `[oracles]`; `kinds`: its `[oracles.kinds]`, which
/// `reject.message` names one of.
pub(super) fn session(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, kinds: &[KindSpec]) -> SessionOracles {
    let defaults = SessionOracles::default();
    let (max_live, per) = f
        .get("exclusive")
        .map_or((defaults.max_live, defaults.per), |n| {
            exclusive(cx, n, defaults.max_live)
        });
    SessionOracles {
        max_live,
        per,
        liveness: f
            .get("liveness")
            .map_or(defaults.liveness, |n| liveness(cx, n, defaults.liveness)),
        reject: f.get("reject").map_or_else(
            || defaults.reject.clone(),
            |n| reject(cx, n, &defaults.reject, kinds),
        ),
        consistency: f.bool_or(cx, "consistency", defaults.consistency),
        accepted: f
            .get("accepted")
            .map_or_else(|| defaults.accepted.clone(), |n| accepted(cx, n)),
    }
}

/// `exclusive = { max_live = 1, per = "user" }` (`per` defaults to `"token"`), `true`
/// (the default limit) or `false` (off).
fn exclusive(cx: &mut Ctx<'_>, node: &Node<'_>, default: Option<u32>) -> (Option<u32>, SessionKey) {
    match node.get_ref() {
        DeValue::Boolean(false) => (None, SessionKey::Token),
        DeValue::Boolean(true) => (default, SessionKey::Token),
        DeValue::Table(table) => {
            let f = Fields::new(
                cx,
                table,
                node.span(),
                "oracles.exclusive",
                &["max_live", "per"],
            )
            .with_owner("oracles.exclusive");
            let max = f
                .require(cx, "max_live")
                .and_then(|n| f.int(cx, "max_live", n, 1, u32::MAX.into()));
            let per = f
                .get("per")
                .map_or(SessionKey::Token, |n| session_key(cx, n));
            (max.and_then(|m| u32::try_from(m).ok()).or(default), per)
        }
        other => {
            let message = format!(
                "oracles.exclusive: expected {{ max_live = 1 }}, true or false, found {}",
                found(other)
            );
            cx.report(node.span(), message);
            (default, SessionKey::Token)
        }
    }
}

/// `per = "token"` or `"user"`: what exclusivity's limit counts sessions by.
fn session_key(cx: &mut Ctx<'_>, node: &Node<'_>) -> SessionKey {
    match node.get_ref() {
        DeValue::String(s) if s == "token" => SessionKey::Token,
        DeValue::String(s) if s == "user" => SessionKey::User,
        other => {
            let message = format!(
                "oracles.exclusive.per: expected \"token\" or \"user\", found {}",
                found(other)
            );
            cx.report(node.span(), message);
            SessionKey::Token
        }
    }
}

/// `liveness = { grace = "500ms", cleanup = "300ms" }`, `true` or `false`.
fn liveness(
    cx: &mut Ctx<'_>,
    node: &Node<'_>,
    default: Option<LivenessSpec>,
) -> Option<LivenessSpec> {
    match node.get_ref() {
        DeValue::Boolean(false) => None,
        DeValue::Boolean(true) => default,
        DeValue::Table(table) => {
            let known = &["grace", "cleanup"];
            let f = Fields::new(cx, table, node.span(), "oracles.liveness", known)
                .with_owner("oracles.liveness");
            let fallback = default.map_or(std::time::Duration::ZERO, |d| d.grace);
            Some(LivenessSpec {
                grace: f.duration_or(cx, "grace", fallback),
                cleanup: f.duration_or(cx, "cleanup", std::time::Duration::ZERO),
            })
        }
        other => {
            let message = format!(
                "oracles.liveness: expected {{ grace = \"500ms\", cleanup = \"0ms\" }}, true or \
                 false, found {}",
                found(other)
            );
            cx.report(node.span(), message);
            default
        }
    }
}

/// `reject = { http = [401, 403, 409], close = [1008], message = "refused", shed = [4429],
/// replaced = [4409], policy = "lenient" }`; a key left out keeps its default. `message`
/// names a kind of `kinds`; `shed` lists close codes the server sheds load with, `replaced`
/// those it ends a session with when another connection of its token takes over (a code
/// in one list only).
fn reject(
    cx: &mut Ctx<'_>,
    node: &Node<'_>,
    default: &RejectSpec,
    kinds: &[KindSpec],
) -> RejectSpec {
    let known = ["http", "close", "message", "shed", "replaced", "policy"];
    let Some(f) = Fields::section(cx, Some(node), "oracles.reject", &known) else {
        return default.clone();
    };
    let f = f.with_owner("oracles.reject");
    let http = codes(cx, &f, "http", (400, 599)).unwrap_or_else(|| default.http.clone());
    let close = codes(cx, &f, "close", CLOSE_CODES);
    let shed = codes(cx, &f, "shed", CLOSE_CODES);
    let replaced = codes(cx, &f, "replaced", CLOSE_CODES);
    // A list left to its default gives up the codes another list names: `replaced =
    // [1008]` says what this server's 1008 means, over the default `close = [1008]`.
    let written: Vec<u16> = [&close, &shed, &replaced]
        .into_iter()
        .flatten()
        .flatten()
        .copied()
        .collect();
    let or_default = |list: Option<Vec<u16>>, default: &[u16]| {
        list.unwrap_or_else(|| {
            default
                .iter()
                .copied()
                .filter(|c| !written.contains(c))
                .collect()
        })
    };
    let close = or_default(close, &default.close);
    let shed = or_default(shed, &default.shed);
    let replaced = or_default(replaced, &default.replaced);
    // One code cannot say two things: "not you" (a refusal the oracles judge), "not now"
    // (shedding they leave out) or "another connection took over" (a takeover). Each list
    // is checked against the ones before it: only lists the scenario wrote can clash.
    let lists = [
        ("close", "a refusal of the token", &close),
        ("shed", "load shedding", &shed),
        ("replaced", "a takeover by another connection", &replaced),
    ];
    for (at, (key, meaning, list)) in lists.iter().enumerate() {
        for (i, code) in list.iter().enumerate() {
            let clash = lists[..at]
                .iter()
                .find(|(_, _, codes)| codes.contains(code));
            let message = if never_on_the_wire(*code) {
                format!(
                    "oracles.reject.{key}: close code {code} is never sent on the wire (RFC \
                     6455 §7.4.1)"
                )
            } else if let Some((other, other_meaning, _)) = clash {
                format!(
                    "oracles.reject.{key}: close code {code} is in `{other}` too: a code is \
                     either {other_meaning} ({other}) or {meaning} ({key}), not both"
                )
            } else {
                continue;
            };
            cx.report(item_span(&f, key, i), message);
        }
    }
    let message = f
        .get("message")
        .and_then(|node| refusal_kind(cx, node, kinds))
        .or_else(|| default.message.clone());
    if http.is_empty() && close.is_empty() && message.is_none() {
        cx.report(
            f.span(),
            "oracles.reject: no clean way to refuse is left; list at least one code",
        );
    }
    let policy = f.choice(cx, "policy", &RejectPolicy::ALL, default.policy);
    RejectSpec {
        http,
        close,
        message,
        shed,
        replaced,
        policy,
    }
}

/// `idle_close = [4009]`: the Close codes of the server's idle timeout (`fallback` when
/// left out), each one a code a server can send (1000–4999, not 1004–1006 or 1015) and in
/// none of the `reject` lists the scenario wrote (a code says one thing). A `reject.close`
/// left to its default gives up the codes listed here, as it does those of `replaced`:
/// `idle_close = [1008]` says what this server's 1008 means. Refused: an empty list, and
/// the list without `idle_timeout` (the codes alone declare no policy).
pub(super) fn idle_close(
    cx: &mut Ctx<'_>,
    f: &Fields<'_, '_>,
    fallback: &[u16],
    reject: &mut RejectSpec,
) -> Vec<u16> {
    let key = "idle_close";
    let (Some(node), Some(codes)) = (f.get(key), codes(cx, f, key, CLOSE_CODES)) else {
        return fallback.to_vec();
    };
    if !close_written(f) {
        reject.close.retain(|c| !codes.contains(c));
        if reject.http.is_empty() && reject.close.is_empty() && reject.message.is_none() {
            cx.report(
                node.span(),
                "[oracles] idle_close takes the last close code of reject.close's default, and \
                 reject lists no HTTP status: no clean way to refuse is left; list at least \
                 one in reject",
            );
        }
    }
    let lists = [
        ("close", "a refusal of the token", &reject.close),
        ("shed", "load shedding", &reject.shed),
        (
            "replaced",
            "a takeover by another connection",
            &reject.replaced,
        ),
    ];
    for (i, code) in codes.iter().enumerate() {
        let clash = lists.iter().find(|(_, _, list)| list.contains(code));
        let message = if never_on_the_wire(*code) {
            format!(
                "[oracles] idle_close: close code {code} is never sent on the wire (RFC 6455 \
                 §7.4.1); expected codes from 1000 to 4999"
            )
        } else if let Some((other, meaning, _)) = clash {
            format!(
                "[oracles] idle_close: close code {code} is in `reject.{other}` too: a code is \
                 either {meaning} (reject.{other}) or the idle timeout's (idle_close), not both"
            )
        } else {
            continue;
        };
        cx.report(item_span(f, key, i), message);
    }
    if matches!(node.get_ref(), DeValue::Array(items) if items.is_empty()) {
        cx.report(
            node.span(),
            "[oracles] idle_close is empty; expected the close codes of the server's idle \
             timeout, e.g. [1000, 1001] (the default) or [4009]",
        );
    } else if f.get("idle_timeout").is_none() {
        cx.report(
            node.span(),
            "[oracles] idle_close without idle_timeout: the codes alone declare no policy; \
             expected idle_timeout = \"30s\" (how long the server lets a connection sit idle) \
             beside it",
        );
    }
    codes
}

/// The range a close code of a server's may take (RFC 6455 §7.4).
const CLOSE_CODES: (u16, u16) = (1000, 4999);

/// The array of codes at `key`, each within `range` and listed once (others reported at
/// their item); `None` when `key` is absent or holds no array (reported).
fn codes(
    cx: &mut Ctx<'_>,
    f: &Fields<'_, '_>,
    key: &str,
    (min, max): (u16, u16),
) -> Option<Vec<u16>> {
    let list = f.get(key).and_then(|n| cx.array(key, n))?;
    let mut codes: Vec<u16> = Vec::with_capacity(list.len());
    for item in list {
        let Some(code) = f
            .int(cx, key, item, min.into(), max.into())
            .and_then(|code| u16::try_from(code).ok())
        else {
            continue;
        };
        if codes.contains(&code) {
            // A repeat is harmless to the oracles but says the author meant another code.
            let owner = f.owner();
            cx.report(
                item.span(),
                format!("{owner} has {key} listing {code} twice; expected each code once"),
            );
            continue;
        }
        codes.push(code);
    }
    Some(codes)
}

/// Close codes RFC 6455 §7.4.1 reserves for reports inside an endpoint: no Close frame
/// ever carries them, so no list of codes a server sends may hold them.
fn never_on_the_wire(code: u16) -> bool {
    matches!(code, 1004..=1006 | 1015)
}

/// Whether the scenario wrote `[oracles] reject.close` itself (a list left to its default
/// gives up codes other lists name).
fn close_written(oracles: &Fields<'_, '_>) -> bool {
    oracles
        .get("reject")
        .is_some_and(|node| matches!(node.get_ref(), DeValue::Table(t) if t.contains_key("close")))
}

/// Where item `i` of the array at `key` is written, for a message about it (the table's
/// span when the value is no array).
fn item_span(f: &Fields<'_, '_>, key: &str, i: usize) -> std::ops::Range<usize> {
    f.get(key)
        .and_then(|n| match n.get_ref() {
            DeValue::Array(items) => items.get(i).map(|item| item.span()),
            _ => None,
        })
        .unwrap_or_else(|| f.span())
}

/// `reject.message`: the name of an `[oracles.kinds]` entry. Only a declared kind: a
/// refusal is judged by what the message holds (ActionCable sends `disconnect` for a
/// restart too, and only its `reason` says "unauthorized"), so the scenario states it.
fn refusal_kind(cx: &mut Ctx<'_>, node: &Node<'_>, kinds: &[KindSpec]) -> Option<String> {
    let name = cx.string("message", node)?;
    if kinds.iter().any(|k| k.name == name) {
        return Some(name.to_string());
    }
    let message = if kinds.is_empty() {
        format!(
            "oracles.reject.message: {name:?} names no kind: [oracles.kinds] declares none; \
             declare it there, e.g. {name} = {{ type = {name:?} }} (the records of that \
             type), or, where only a field tells a refusal (ActionCable's disconnect), \
             {name} = {{ type = \"disconnect\", reason = \"unauthorized\" }}"
        )
    } else {
        let names: Vec<String> = kinds.iter().map(|k| format!("{:?}", k.name)).collect();
        let hint = did_you_mean(name, kinds.iter().map(|k| k.name.as_str()));
        format!(
            "oracles.reject.message: {name:?} is not a kind of [oracles.kinds] (declared: {}){hint}",
            names.join(", ")
        )
    };
    cx.report(node.span(), message);
    None
}

/// `accepted = "upgrade" | "first_frame" | { message = "connection_established" }`.
fn accepted(cx: &mut Ctx<'_>, node: &Node<'_>) -> AcceptRule {
    let expected = "oracles.accepted: expected \"upgrade\", \"first_frame\" or \
                    { message = \"connection_established\" }";
    match node.get_ref() {
        DeValue::String(s) if s == "upgrade" => AcceptRule::Upgrade,
        DeValue::String(s) if s == "first_frame" => AcceptRule::FirstFrame,
        DeValue::Table(table) => {
            let f = Fields::new(cx, table, node.span(), "oracles.accepted", &["message"])
                .with_owner("oracles.accepted");
            AcceptRule::Message {
                event: f.req_text(cx, "message"),
            }
        }
        other => {
            cx.report(node.span(), format!("{expected}, found {}", found(other)));
            SessionOracles::default().accepted
        }
    }
}
