//! Violations that are the script misreading the server, not a race: an `expect` waiting
//! for a kind, a value or a field the server spells or places otherwise, answers that
//! were all the server's error event, a capture never found, a typo in a kind.

use super::went_away::{close_reason, only_unmet};
use super::*;
use crate::model::StepPlace;

/// What a hint of [`answered_only_errors`] says: the run's note on errors
/// ([`super::errored_note`]) is left out after it.
pub(super) const ANSWERED_ALL_WITH_ERRORS: &str = "answered every request with its error event";

/// The server answered every request of every valid-token connection with its error
/// event (`[oracles] error_event`) and met not one: the connections got through the
/// upgrade (and maybe its greeting: an ack, a welcome), but the target turned each request
/// away in band. Its closes say why: all with an auth code (1008, 4401, 4403) is a
/// misconfigured secret or token; anything else, a script or target that does not fit.
/// Never clean: nothing the script is for was exercised. What the handshake met does not
/// count ([`greeting_kinds`]); a request whose whole answer came after its error was
/// served ([`Counters::answered_after_error`]), but part of one serves nothing, though
/// it counts as arrived ([`Counters::arrived_after_error`]); a scenario that expects
/// the error event in some `expect` declares errors as answers, and is judged as usual.
/// Connections with bad tokens (the catalogue's) are left out: an error is their right
/// answer.
pub(super) fn answered_only_errors(
    plan: &Plan,
    reports: &[ConnReport],
    opaque: Option<&str>,
) -> Option<Judgement> {
    if expects_errors(plan) {
        return None;
    }
    let kinds = AnswerKinds::of(plan);
    // A request of its own that went unanswered (neither met nor errored, not late) on a
    // valid connection: the server dropped some requests and refused others, a loss.
    let dropped = reports
        .iter()
        .filter(|r| valid_token(plan, r.token))
        .flat_map(|r| &r.violations)
        .any(|v| {
            v.oracle == OracleKind::Completeness && v.correlation.is_some() && v.late_ms.is_none()
        });
    if dropped {
        return None;
    }
    let (mut errored, mut early, mut met, mut answered) = (0u64, 0u64, 0u64, 0u64);
    // Answers that came after their request's error: whole, they served it; in part, they
    // served nothing, though the event rates count what came of them.
    let (mut whole_after_error, mut after_error) = (0u64, 0u64);
    let (mut first_error, mut first_accepted): (Option<&str>, Option<&str>) = (None, None);
    let mut closes: BTreeMap<Cause, u64> = BTreeMap::new();
    for r in reports {
        if !valid_token(plan, r.token) {
            continue;
        }
        errored += r.counters.expect.expectations_errored;
        early += r.counters.expect.expectations_errored_early;
        met += r.counters.expect.expectations_met;
        answered += answered_past(r, &kinds);
        whole_after_error += r.counters.answered_after_error;
        after_error += r.counters.arrived_after_error;
        first_error = first_error.or(r.first_error.as_deref());
        first_accepted = first_accepted.or(r.first_error_accepted.as_deref());
        for a in &r.attempts {
            if let Some(c @ (Cause::ServerClose(_) | Cause::InvalidClose(_))) = &a.cause {
                *closes.entry(c.clone()).or_default() += 1;
            }
        }
    }
    // What arrived of the kinds that answer requests says whether one was served; with
    // no greeting and no such kind (a script whose sends only an `expect_none` follows:
    // a met one brought nothing), any expectation met does.
    let only_absences = kinds.greeting.is_empty() && kinds.answers.is_empty();
    // A request whose whole answer followed its error was served; the part of an answer
    // that followed its error and stopped short served nothing: what came of it is left
    // out of what arrived. (With no whole one, every item counted after an error is of
    // such a part. Counted whatever its kind: an errored expectation's kinds are answer
    // kinds, but for a correlated `expect` before the first send, a greeting's, rare.)
    let served = whole_after_error > 0 || answered.saturating_sub(after_error) > 0;
    if errored == 0 || served || (only_absences && met > 0) {
        return None;
    }
    let past = if kinds.greeting.is_empty() {
        String::new()
    } else {
        " past the handshake".to_string()
    };
    // An error after acceptance says why requests are refused; one before it may only say
    // a request came too early.
    let quoted = match (first_accepted, first_error) {
        (Some(late), Some(first)) if late != first => {
            format!(", the first after acceptance: {late}")
        }
        (Some(e), _) | (None, Some(e)) => format!(", the first: {e}"),
        (None, None) => String::new(),
    };
    let answered = format!(
        "the server {ANSWERED_ALL_WITH_ERRORS} ({errored} errored, none met{past}{quoted})"
    );
    let reject = &plan.oracles.session.reject;
    // Early, that is before an acceptance that did come: a server that accepted none (its
    // errors accept nothing under the first-frame rule) is judged as unusable below.
    let accepted = reports
        .iter()
        .filter(|r| valid_token(plan, r.token))
        .flat_map(|r| &r.attempts)
        .any(|a| a.outcome == Outcome::Accepted);
    if early == errored && accepted && closes.keys().all(|c| !is_auth_refusal(reject, c)) {
        // Every refused request went out before the server had accepted its connection in
        // band (a script that sends before the ack, on purpose): a server may refuse such
        // a request until it is ready (allowed: no drop), or may refuse this request
        // whenever it comes. Nothing tells the two apart, and what the script is for (a
        // request the server took) never happened: no target unusable, nor clean.
        return Some(Judgement {
            verdict: Verdict::Inconclusive,
            hint: Some(format!(
                "{answered}, every one a request sent before the server had accepted its \
                 connection: refusing a request that comes too early is allowed (no drop), \
                 so the early path was never taken; to tell that from a request format this \
                 server refuses, send one after the ack too"
            )),
        });
    }
    if !closes.is_empty() && closes.keys().all(|c| is_auth_refusal(reject, c)) {
        let check = auth_check(opaque);
        return Some(Judgement {
            verdict: Verdict::AuthMisconfigured,
            hint: Some(format!(
                "{answered} and closed every connection with an auth code ({}): {check}",
                top_causes(&closes)
            )),
        });
    }
    let closed = if closes.is_empty() {
        String::new()
    } else {
        format!(", then closed ({})", top_causes(&closes))
    };
    Some(Judgement {
        verdict: Verdict::TargetUnusable,
        hint: Some(format!(
            "{answered}{closed}: nothing the script is for was exercised; the script, its \
             tokens or the target do not fit this server (if that error is an answer the \
             script expects, name it in an `expect`, with another `[oracles] error_event`)"
        )),
    })
}

/// The kinds of expected records that say a request was served: those the correlated
/// `expect`s answering each stretch of sends name, or the first `expect` after it
/// ([`answer_kinds`]), less the greeting's
/// ([`greeting_kinds`]); when no `expect` follows a send, every kind past the greeting.
/// A keepalive or a broadcast a later step expects arrives whether or not the server
/// served the request.
pub(super) struct AnswerKinds<'p> {
    greeting: std::collections::BTreeSet<&'p str>,
    answers: std::collections::BTreeSet<&'p str>,
}

impl<'p> AnswerKinds<'p> {
    fn of(plan: &'p Plan) -> Self {
        let greeting = greeting_kinds(plan);
        let mut answers = std::collections::BTreeSet::new();
        for script in &plan.scripts {
            let mut stretch = None;
            answer_kinds(script, &mut stretch, &mut answers);
            answers_of(stretch.unwrap_or_default(), &mut answers);
        }
        answers.retain(|k| !greeting.contains(k));
        AnswerKinds { greeting, answers }
    }

    fn is_answer(&self, kind: &str) -> bool {
        match self.answers.is_empty() {
            true => !self.greeting.contains(kind),
            false => self.answers.contains(kind),
        }
    }
}

/// The records that arrived on `r` of the kinds that answer requests ([`AnswerKinds`]):
/// what its requests got back.
pub(super) fn answered_past(r: &ConnReport, kinds: &AnswerKinds<'_>) -> u64 {
    r.counters
        .expect
        .events
        .iter()
        .filter(|(kind, _)| kinds.is_answer(kind))
        .map(|(_, tally)| tally.arrived)
        .sum()
}

/// Adds to `kinds` the kinds that answer each stretch of sends in `steps`: those its
/// correlated `expect`s name, or, when none is correlated, those of the first `expect`
/// after it (a keepalive expected among correlated answers answers no request).
/// `stretch`: the expectations met since the latest send, `None` before the first; a
/// loop's body is walked twice, for a send at its end answered at its start.
pub(super) fn answer_kinds<'a>(
    steps: &'a [Step],
    stretch: &mut Option<Vec<&'a crate::model::Expect>>,
    kinds: &mut std::collections::BTreeSet<&'a str>,
) {
    for step in steps {
        match step {
            Step::Expect(e) if !e.absent => {
                if let Some(answers) = stretch.as_mut() {
                    answers.push(e);
                }
            }
            Step::Repeat { steps, .. } => {
                answer_kinds(steps, stretch, kinds);
                answer_kinds(steps, stretch, kinds);
            }
            Step::Send { .. } | Step::SendText { .. } | Step::SendBinary { .. } => {
                if stretch.as_ref().is_some_and(|a| !a.is_empty()) {
                    answers_of(stretch.take().unwrap_or_default(), kinds);
                }
                stretch.get_or_insert_with(Vec::new);
            }
            _ => {}
        }
    }
}

/// The kinds of a stretch's answers ([`answer_kinds`]) into `kinds`.
pub(super) fn answers_of<'a>(
    answers: Vec<&'a crate::model::Expect>,
    kinds: &mut std::collections::BTreeSet<&'a str>,
) {
    let correlated: Vec<&crate::model::Expect> = answers
        .iter()
        .copied()
        .filter(|e| e.correlate.is_some())
        .collect();
    let named = match correlated.is_empty() {
        true => answers.into_iter().take(1).collect(),
        false => correlated,
    };
    for e in named {
        kinds.extend(e.pattern.iter().map(|i| i.event.as_str()));
    }
}

/// The kinds a connection's greeting brings: the acceptance message (`[oracles] accepted
/// = { message = ... }`) and what each script expects before its first send. Met, they
/// say the handshake worked, not that any request was served.
pub(super) fn greeting_kinds(plan: &Plan) -> std::collections::BTreeSet<&str> {
    let mut kinds = std::collections::BTreeSet::new();
    if let AcceptRule::Message { event } = &plan.oracles.session.accepted {
        kinds.insert(event.as_str());
    }
    for script in &plan.scripts {
        kinds.extend(unanswered::script_greeting(script).kinds);
    }
    kinds
}

/// Whether some `expect` of the scenario names its error event: errors are answers it
/// expects.
pub(super) fn expects_errors(plan: &Plan) -> bool {
    expects_kind(plan, &plan.oracles.error_event)
}

/// Whether some `expect` (not an `expect_none`) of the scenario, loops included, names
/// `kind` in its pattern.
pub(super) fn expects_kind(plan: &Plan, kind: &str) -> bool {
    let names = |step: &Step| match step {
        Step::Expect(e) => !e.absent && e.pattern.iter().any(|i| i.event == kind),
        _ => false,
    };
    plan.scripts
        .iter()
        .any(|s| crate::model::deep_steps(s).any(names))
}

/// The server answered, yet not one record had a kind the scenario could read (none was
/// JSON, or none carried `type_field` or passed an `[oracles.kinds]` rule), and every
/// violation is an unmet expectation: those are the scenario failing to read the protocol
/// (SignalR's records without `[oracles] record_separator`, a binary protocol, kinds in
/// another field), not the server failing it. A run with any record of a kind, or with a
/// violation of another oracle (a token served twice is a finding whatever the records
/// say), is judged as usual. `type_field` is the scenario's, for the hint.
pub(super) fn unreadable(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
    redactor: &Redactor,
) -> Option<Judgement> {
    let type_field = plan.oracles.type_field.as_str();
    let (json, kindless, text, binary) = records_read(reports);
    let unmet = by_oracle
        .get(&OracleKind::Completeness)
        .copied()
        .unwrap_or(0);
    let others = by_oracle.values().sum::<u64>() - unmet;
    let answered = json + text + binary > 0;
    // A Close or a refusal is an answer too (a server's policy for what the script did,
    // e.g. 4401 for a request before its ack): only total silence is unreadable.
    let closed_by_server = reports
        .iter()
        .flat_map(|r| &r.attempts)
        .any(|a| a.outcome == Outcome::Rejected || matches!(a.cause, Some(Cause::ServerClose(_))));
    if !answered && !closed_by_server && unmet > 0 && others == 0 {
        return Some(Judgement {
            verdict: Verdict::Unreadable,
            hint: Some(format!(
                "the server sent nothing after the upgrade, on any connection, and closed \
                 none, so {}: check the messages the protocol needs first (a handshake, a \
                 join or subscribe, [oracles] record_separator) before charging the server",
                unmet_words(reports, unmet)
            )),
        });
    }
    if json > kindless || !answered || others > 0 {
        return None;
    }
    // Nothing broke, yet nothing was read either: no expectation, no identity check saw a
    // record. A run that checked nothing the server sent is no clean run.
    let checked = reports.iter().any(|r| {
        let e = &r.counters.expect;
        e.expectations_met > 0 || e.identity_matched > 0
    });
    if unmet == 0 && checked {
        return None;
    }
    let sample = unread_sample(reports, redactor);
    let (got, check) = unread_parts(
        (text, binary, kindless),
        (sample, kindless_shape(reports, redactor)),
        positional_kind(reports).map(|p| (p, sends_objects(plan))),
        type_field,
    );
    let so = match unmet {
        0 => "nothing the server sent was checked".to_string(),
        n => unmet_words(reports, n),
    };
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "the server answered ({}) but not one record had a kind the scenario reads, so \
             {so}: check {}",
            got.join(", "),
            check.join("; ")
        )),
    })
}

/// `unmet` completeness violations in words: `4 expectations went unmet`, or, when every
/// kept one is steps a server's end cut off, `the scripts of 4 connections were cut off`
/// (a scenario with no `expect` has no expectation to miss).
pub(super) fn unmet_words(reports: &[ConnReport], unmet: u64) -> String {
    let cut_off = |v: &Violation| v.expected.starts_with(crate::oracle::CUT_OFF);
    let mut kept = reports
        .iter()
        .flat_map(|r| &r.violations)
        .filter(|v| v.oracle == OracleKind::Completeness)
        .peekable();
    if kept.peek().is_some() && kept.all(cut_off) {
        return format!(
            "the scripts of {unmet} connection{} were cut off",
            plural(unmet)
        );
    }
    format!("{unmet} expectation{} went unmet", plural(unmet))
}

/// The start of the first text record of the run that was not JSON
/// ([`crate::model::ExpectCounts::unread_sample`]), redacted: what the hint quotes.
pub(super) fn unread_sample(reports: &[ConnReport], redactor: &Redactor) -> Option<String> {
    reports
        .iter()
        .find_map(|r| r.counters.expect.unread_sample.as_deref())
        .map(|s| redactor.redact(s).into_owned())
}

/// What the run's first JSON record without a kind was, by its field names
/// ([`Counters::kindless_shape`]), redacted.
pub(super) fn kindless_shape(reports: &[ConnReport], redactor: &Redactor) -> Option<String> {
    reports
        .iter()
        .find_map(|r| r.counters.kindless_shape.as_deref())
        .map(|s| redactor.redact(s).into_owned())
}

/// The first record without a kind that was a positional array holding a kind the script
/// expects ([`crate::model::ExpectCounts::positional_kind`]): the element's index and the kind.
pub(super) fn positional_kind(reports: &[ConnReport]) -> Option<&(usize, String)> {
    reports
        .iter()
        .find_map(|r| r.counters.expect.positional_kind.as_deref())
}

/// Whether the scripts send JSON objects, every `send` of them (and send at least once):
/// a server answering them in positional arrays may speak another version of the
/// protocol than the one the scenario was written for.
pub(super) fn sends_objects(plan: &Plan) -> bool {
    let mut sends = plan
        .scripts
        .iter()
        .flat_map(|script| crate::model::deep_steps(script))
        .filter_map(|step| match step {
            Step::Send { template } => Some(template.is_object()),
            _ => None,
        })
        .peekable();
    sends.peek().is_some() && sends.all(|object| object)
}

/// Whether the scenario speaks Phoenix channels: one of its sends is a Phoenix event of
/// the protocol's own (`phx_join`, `phx_leave`: element 3 of a v2 array, or `event` of a
/// v1 object), or its error event or an `expect` names one (`phx_reply`, `phx_error`).
fn speaks_phoenix(plan: &Plan) -> bool {
    let phx = |v: Option<&serde_json::Value>| {
        v.and_then(serde_json::Value::as_str)
            .is_some_and(|e| e.starts_with("phx_"))
    };
    let steps = || {
        plan.scripts
            .iter()
            .flat_map(|script| crate::model::deep_steps(script))
    };
    let sends = steps().any(|step| match step {
        Step::Send { template } => phx(template.get(3)) || phx(template.get("event")),
        _ => false,
    });
    let expects = steps().any(|step| match step {
        Step::Expect(e) => e.pattern.iter().any(|i| i.event.starts_with("phx_")),
        _ => false,
    });
    sends || expects || plan.oracles.error_event.starts_with("phx_")
}

/// Whether `message` is SignalR's hub protocol handshake: an object of exactly
/// `protocol` (a string, `"json"` or `"messagepack"`) and `version` (a number), as ASP.NET
/// Core SignalR's clients open every connection with.
fn signalr_handshake(message: &serde_json::Value) -> bool {
    message.as_object().is_some_and(|o| {
        o.len() == 2
            && o.get("protocol").is_some_and(serde_json::Value::is_string)
            && o.get("version").is_some_and(serde_json::Value::is_number)
    })
}

/// For a run that was not clean: a scenario that sends SignalR's hub handshake
/// (`{"protocol":"json","version":1}`, as a `send`, a `send_text` or the auth first
/// message) with no `[oracles] record_separator`. A SignalR server reads a record only up
/// to its 0x1E terminator, so it waits for the rest of a handshake sent without one and
/// answers nothing (or, lenient, answers with records the scenario cannot split). `None`
/// for a scenario that sets a separator or sends no such handshake.
pub(super) fn signalr_separator_note(plan: &Plan) -> Option<String> {
    if plan.oracles.record_separator.is_some() {
        return None;
    }
    let first_message = match &plan.auth.placement {
        crate::model::Placement::FirstMessage { template, .. } => Some(template.clone()),
        _ => None,
    };
    let sent = plan
        .scripts
        .iter()
        .flat_map(|script| crate::model::deep_steps(script))
        .filter_map(|step| match step {
            Step::Send { template } => Some(template.clone()),
            Step::SendText { template } => serde_json::from_str(template).ok(),
            _ => None,
        });
    first_message
        .into_iter()
        .chain(sent)
        .any(|m| signalr_handshake(&m))
        .then(|| {
            "the scenario sends SignalR's hub handshake ({\"protocol\", \"version\"}) with no \
             [oracles] record_separator: SignalR ends every record with 0x1E, the handshake too \
             (a server waits for it before answering) and its own records alike; set [oracles] \
             record_separator = \"\\u001e\" (appended to every send; received frames are \
             split on it)"
                .to_string()
        })
}

/// The target URL's `vsn` query parameter, when it has one (`Some("")` for a bare `vsn`).
/// The URL is read as RFC 3986 (`http::Uri`, what the handshake sends), the query split at
/// `&` and `=` as HTML forms write one.
fn vsn_of(target: &str) -> Option<String> {
    let uri: tokio_tungstenite::tungstenite::http::Uri = target.parse().ok()?;
    uri.query()?
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some(("vsn", value)) => Some(value.to_string()),
            None if pair == "vsn" => Some(String::new()),
            _ => None,
        })
}

/// For a run whose answers could not be read: a Phoenix scenario written for serializer
/// v2 (it sends JSON arrays) against a `target` whose URL does not ask for v2. Phoenix
/// servers pick the serializer from the URL's `vsn` query parameter, v1 (JSON objects)
/// when there is none: such a server cannot decode the scenario's arrays, and whatever it
/// sends the scenario cannot read. `None` otherwise (a scenario of v1's objects needs no
/// `vsn`).
pub(super) fn phoenix_vsn_note(plan: &Plan, target: &str) -> Option<String> {
    let arrays = plan
        .scripts
        .iter()
        .flat_map(|script| crate::model::deep_steps(script))
        .any(|step| matches!(step, Step::Send { template } if template.is_array()));
    if !arrays || !speaks_phoenix(plan) {
        return None;
    }
    let asks = match vsn_of(target) {
        Some(v) if v.starts_with('2') => return None,
        Some(v) => format!("asks for vsn={v}"),
        None => "has no `vsn` query parameter (so v1, JSON objects)".to_string(),
    };
    Some(format!(
        "the scenario speaks Phoenix channels in serializer v2's JSON arrays, and the target \
         URL {asks}: Phoenix servers pick the serializer from `vsn`, and v2 needs \
         `?vsn=2.0.0` in the URL"
    ))
}

/// What the server sent that no expectation could read (`text` records that are not JSON,
/// `binary` frames, `kindless` JSON records), and what to check for each; `sample` and
/// `shape`: the first text record's start and the first kindless record's shape, quoted
/// when known; `positional`: where
/// a positional array held a kind the script expects ([`positional_kind`]), and whether the
/// scripts send objects ([`sends_objects`]).
pub(super) fn unread_parts(
    (text, binary, kindless): (u64, u64, u64),
    (sample, shape): (Option<String>, Option<String>),
    positional: Option<(&(usize, String), bool)>,
    type_field: &str,
) -> (Vec<String>, Vec<String>) {
    let mut got = Vec::new();
    let mut check = Vec::new();
    if text > 0 {
        let first = sample.map_or(String::new(), |s| format!(", the first began `{s}`"));
        got.push(format!(
            "{text} non-JSON text record{}{first}",
            plural(text)
        ));
        check.push(
            "[oracles] record_separator (SignalR ends each record with \\u001e; JSON records \
             joined by newlines, NDJSON, need \"\\n\"); Socket.IO's packets (`0{\"sid\":…}`, \
             `42[\"event\",…]`) need [oracles] framing = \"socket.io\", STOMP frames \
             (`MESSAGE\\n…`) framing = \"stomp\""
                .into(),
        );
    }
    if binary > 0 {
        got.push(format!("{binary} binary frame{}", plural(binary)));
        check.push("that the protocol speaks JSON text".to_string());
    }
    if kindless > 0 {
        let first = shape.map_or(String::new(), |s| format!(", the first {s}"));
        got.push(format!(
            "{kindless} JSON record{} without a kind{first}",
            plural(kindless)
        ));
        check.push(match positional {
            Some(((index, kind), true)) => format!(
                "the protocol's version: the records are positional JSON arrays (element \
                 {index} held {kind:?}, a kind the script expects), where the scenario sends \
                 JSON objects, so the server may speak another version or serializer of the \
                 protocol than the scenario was written for (Phoenix: `vsn=1.0.0` in the URL \
                 is the object form, `vsn=2.0.0` the arrays): connect for the form the \
                 scenario speaks, or write it in arrays (sends as arrays, type_field = \
                 \"/{index}\", `correlate` and `where` paths as JSON Pointers)"
            ),
            Some(((index, kind), false)) => format!(
                "where the records name their kind: they are positional JSON arrays, and \
                 element {index} held {kind:?}, a kind the script expects: [oracles] \
                 type_field = \"/{index}\" (a JSON Pointer) reads it there (now {type_field:?})"
            ),
            None => format!(
                "where the records name their kind: [oracles] type_field (now {type_field:?}) \
                 or [oracles.kinds]; for frames that are JSON arrays of records, [oracles] \
                 batched = true; for positional arrays, a JSON Pointer to the element that \
                 holds the kind (type_field = \"/3\")"
            ),
        });
    }
    (got, check)
}

/// Unmet expectations, every one of which saw records the scenario cannot read arrive
/// while it was open ([`Violation::unreadable`]: a server that batches events into a JSON
/// array, sends some as binary frames, or joins records with a newline the scenario does
/// not split on): what they missed may be in those records, so they prove no loss, and a
/// hunt must not chase them. `None` when another oracle broke or one unmet expectation
/// saw nothing unreadable.
pub(super) fn unmet_over_unread(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
    type_field: &str,
    redactor: &Redactor,
) -> Option<Judgement> {
    let (unmet, kept) = only_unmet(reports, by_oracle)?;
    if !kept
        .iter()
        .all(|v| v.oracle == OracleKind::Completeness && v.unreadable)
    {
        return None;
    }
    // Connections closed in a way that reads as rate limiting explain their unmet
    // expectations better than a record unread beside them (the limit's own error
    // message, in a shape the scenario does not read): the rate limit is said instead.
    if !crate::oracle::shedding::undeclared_codes(plan, reports).is_empty() {
        return None;
    }
    let sum = |f: fn(&Counters) -> u64| reports.iter().map(|r| f(&r.counters)).sum::<u64>();
    let (got, check) = unread_parts(
        (
            sum(|c| c.non_json),
            sum(|c| c.binary_frames),
            sum(|c| c.kindless_records),
        ),
        (
            unread_sample(reports, redactor),
            kindless_shape(reports, redactor),
        ),
        positional_kind(reports).map(|p| (p, sends_objects(plan))),
        type_field,
    );
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "{unmet} expectation{} went unmet while the server sent records the scenario \
             cannot read ({}): what they missed may be in those, so they prove no loss. \
             Check {} before charging the server",
            plural(unmet),
            got.join(", "),
            check.join("; ")
        )),
    })
}

/// RFC 6455 §7.4.1's "internal error": the server met a condition it could not handle.
const INTERNAL_ERROR: u16 = 1011;

/// Every valid-token connection the server accepted was closed by it with one and the same
/// application or policy code (not a normal close, a restart or load shedding) after the
/// script had sent on it, no kind the script expects past its greeting ever arrived, and
/// the only violations are the unmet expectations those closes cut: the server refuses
/// what the script sends (Twitch EventSub's 4001 "client sent inbound traffic"), so nothing
/// the script is for was exercised. A race cuts some connections, not every one the same
/// way. Target unusable, with the code and the server's reason; but 1011, the server's
/// own failure on every request, is violations.
pub(super) fn closed_on_request(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    only_unmet(reports, by_oracle)?;
    let kinds = AnswerKinds::of(plan);
    let mut code = None;
    let mut reason = "";
    let mut closed = 0u64;
    for r in reports.iter().filter(|r| valid_token(plan, r.token)) {
        if !r.attempts.iter().any(|a| a.outcome == Outcome::Accepted) {
            continue;
        }
        let Some(Cause::ServerClose(c)) = r.closed_after_acceptance.as_ref().map(|a| &a.cause)
        else {
            return None;
        };
        if answered_past(r, &kinds) > 0
            || r.counters.messages_sent == 0
            || *code.get_or_insert(*c) != *c
        {
            return None;
        }
        reason = close_reason(r);
        closed += 1;
    }
    let code = code?;
    // Normal closes, restarts, going away and load shedding are judged elsewhere, and so
    // are the session policies a scenario declares or a close says (a takeover that
    // nobody took over is a lost session), and auth codes: "unauthorized" on a connection
    // the server had accepted is the ack-before-ready race (P7), not a refused script. So
    // is "you broke the protocol" after the server's own named ack
    // ([`closed_for_protocol`]).
    let reject = &plan.oracles.session.reject;
    let acknowledged = matches!(plan.oracles.session.accepted, AcceptRule::Message { .. });
    if matches!(code, 1000 | 1001 | 1012 | 1013)
        || (acknowledged && PROTOCOL_CLOSES.contains(&code))
        || reject.sheds(&Cause::ServerClose(code))
        || reject.close.contains(&code)
        || reject.replaced.contains(&code)
        || is_auth_refusal(reject, &Cause::ServerClose(code))
        || crate::oracle::shedding::reads_as_rate_limit(code, reason)
        || crate::oracle::takeover::reads_as_takeover(code, reason)
    {
        return None;
    }
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason:?})")
    };
    // 1011 is the server failing (RFC 6455 §7.4.1: "an unexpected condition"), never a
    // refusal: a request it cannot take, a correct server refuses in words; one it crashes
    // on is its fault, on every connection of this run (not every run: it may take load).
    if code == INTERNAL_ERROR {
        return Some(Judgement {
            verdict: Verdict::Violations,
            hint: Some(format!(
                "the server failed every connection it accepted ({closed}) with 1011 \
                 (internal error){reason} after the script sent on it, and answered none of \
                 its requests: a fault on every request of this run, which its log explains \
                 (a request it cannot take is refused, not crashed on); whether one \
                 connection alone meets it or it takes this load, a repro shows (hunt, then \
                 shrink)"
            )),
        });
    }
    Some(Judgement {
        verdict: Verdict::TargetUnusable,
        hint: Some(format!(
            "the server closed every connection it accepted ({closed}) with {code}{reason} \
             after the script sent on it, and answered none of its requests: it refuses what \
             the script sends, so nothing the script is for was exercised. Check the script's \
             messages against the protocol (what it may send, and when); not a race"
        )),
    })
}

/// Whether an unmet expectation's kinds came holding, at its correlation path, the value
/// another kept violation's request sent, or one its own connection's requests sent
/// ([`Misread::OtherCorrelationValue`]): answers delivered to the wrong request.
pub(super) fn crossed_answers(kept: &[&Violation]) -> bool {
    let requested: BTreeSet<&str> = kept
        .iter()
        .filter_map(|v| v.correlation.as_deref())
        .collect();
    kept.iter().any(|v| {
        matches!(&v.misread, Some(Misread::OtherCorrelationValue { held, id_like: true, sent, .. })
            if *sent || requested.contains(held.as_str()))
    })
}

/// Whether a checked answer that said no ([`Misread::WrongValue`]) held the very value
/// another `expect` of the scenario wants at that path: the answer to another request,
/// come under this one's id (a server a request late with its ids), not a refusal.
pub(super) fn wanted_elsewhere(plan: &Plan, kept: &[&Violation]) -> bool {
    let wants = |steps: &[Step], path: &str, held: &serde_json::Value| {
        crate::model::deep_steps(steps).any(|s| match s {
            Step::Expect(e) => e
                .checks
                .iter()
                .any(|t| t.path == path && matches!(&t.test, Test::Equals(v) if v == held)),
            _ => false,
        })
    };
    kept.iter().any(|v| match &v.misread {
        Some(Misread::WrongValue {
            path,
            held: Some(held),
            ..
        }) => serde_json::from_str(held)
            .is_ok_and(|held| plan.scripts.iter().any(|s| wants(s, path, &held))),
        _ => false,
    })
}

/// Whether `a` and `b` are the same letters and digits, told apart only by case,
/// separators or spaces (`n-0` and `n0`, `user_1` and `User-1`): one value spelled two
/// ways. Another request's value (`n1` for `n0`) is no such thing.
pub(super) fn same_but_spelling(a: &str, b: &str) -> bool {
    let letters = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let (a, b) = (letters(a), letters(b));
    !a.is_empty() && a == b
}

/// Every unmet expectation failed a `where` test that wants a string, on an answer that
/// held another spelling of it ([`same_but_spelling`]: `"n0"` where the test wants
/// `"n-0"`), and no expectation of those steps was met anywhere in the run
/// ([`checked_met_at_their_steps`]): the test's value is written otherwise than the answers (and most likely
/// the request) write it, a slip in the scenario, not a loss. Unreadable, naming both.
/// Values that are no near spelling of each other (`false` for `true`, another request's
/// result) are judged by the rules after it.
pub(super) fn value_slip(
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    let (unmet, kept) = only_unmet(reports, by_oracle)?;
    if checked_met_at_their_steps(reports, &kept) {
        return None;
    }
    let slips: Vec<(&str, String, String)> = kept
        .iter()
        .map(|v| match &v.misread {
            Some(Misread::WrongValue {
                path,
                held: Some(held),
                wanted: Some(wanted),
                ..
            }) => {
                let text = |json: &str| serde_json::from_str::<String>(json).ok();
                let (held, wanted) = (text(held)?, text(wanted)?);
                let close = held != wanted && same_but_spelling(&held, &wanted);
                close.then_some((path.as_str(), held, wanted))
            }
            _ => None,
        })
        .collect::<Option<_>>()?;
    let (path, held, wanted) = slips.first()?;
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "{unmet} expectation{} went unmet, each on a `where` test of {path:?} whose answer \
             held the value it wants spelled another way (the first: wants {wanted:?}, \
             held {held:?}), and no answer passed that step's tests anywhere: the test's value is \
             written otherwise than the answers write it (a placeholder spelled differently \
             from the send's?), a slip in the scenario, not a loss. Did you mean {held:?}?",
            plural(unmet)
        )),
    })
}

/// Every valid-token connection the server accepted had a checked answer say no (a
/// `where` test on a field the answer carried, with another value: `success = false`
/// where `true` was wanted: [`Misread::WrongValue`]), no checked answer passed at any step
/// where one said no, and the only violations are unmet expectations: the server turned
/// every such request away (a request format it does not take: an id of the wrong type, a
/// field missing; or one it refuses by policy), so what those steps check was never
/// exercised. Checked answers passing at another step (a join the server took before the
/// post it refuses) change nothing. A race fails some answers, not every one on every
/// connection. Target unusable, never a race to hunt.
pub(super) fn said_no_everywhere(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    let (unmet, kept) = only_unmet(reports, by_oracle)?;
    let served = || {
        reports.iter().filter(|r| {
            valid_token(plan, r.token) && r.attempts.iter().any(|a| a.outcome == Outcome::Accepted)
        })
    };
    // Judged group by group: a group whose every connection had a checked answer say no
    // is turned away whatever another group, served without a violation, did (a policy
    // on posting, with readers reading fine). A group with a loss of its own keeps it.
    let group_of = groups_by_conn(plan);
    let refusing: BTreeSet<&str> = kept
        .iter()
        .filter(|v| said_no(v).is_some())
        .map(|v| v.group.as_str())
        .collect();
    let in_refusing = |r: &ConnReport| {
        group_of
            .get(&r.id)
            .is_none_or(|group| refusing.contains(group))
    };
    let everywhere = served()
        .filter(|r| in_refusing(r))
        .all(|r| r.violations.iter().any(|v| said_no(v).is_some()))
        && served()
            .filter(|r| !in_refusing(r))
            .all(|r| r.violations_by_oracle.values().all(|&n| n == 0));
    let first = kept.iter().find(|v| said_no(v).is_some())?;
    if !everywhere || checked_passed_where_refused(&group_of, reports, &kept) {
        return None;
    }
    if crossed_values(&kept) || crossed_answers(&kept) || wanted_elsewhere(plan, &kept) {
        return None;
    }
    // Expectations that were met (without a `where` test, or with one at another step):
    // the server took those requests, and only the refused steps' were turned away.
    let others_met = reports
        .iter()
        .any(|r| r.counters.expect.expectations_met > 0);
    let steps = refused_steps(plan, &kept);
    let checked = steps
        .as_ref()
        .map_or("its checked requests".to_string(), |s| {
            format!("its requests checked at {s}")
        });
    let turned_away = match (others_met, &steps) {
        (true, Some(steps)) => format!(
            "it turned those requests away and answered others, whose expectations were \
             met (those it takes), so what the tests check at {steps} was never exercised"
        ),
        (true, None) => "it turned those requests away and answered others, whose \
                         expectations were met (those it takes), so what the tests check \
                         was never exercised"
            .into(),
        (false, _) => {
            "it turned every request away, so nothing the script is for was exercised".into()
        }
    };
    Some(Judgement {
        verdict: Verdict::TargetUnusable,
        hint: Some(format!(
            "the server answered {checked} on every connection with a value the `where` test \
             refuses, and none with one it takes (the first: expected {}; seen {}): \
             {turned_away} ({unmet} expectation{} unmet). Check the requests against what \
             the server takes (a field of the wrong type, one missing; a request it refuses \
             by policy, a room the user may not join) and what its answers say, or the \
             `where` test itself",
            first.expected_shown(),
            first.seen,
            plural(unmet)
        )),
    })
}

/// A checked answer that said no ([`Misread::WrongValue`]): the path its test read, the
/// value it held and the one the test wants, as JSON (each `None` when not known).
pub(super) struct SaidNo<'a> {
    pub path: &'a str,
    pub held: Option<&'a str>,
    pub wanted: Option<&'a str>,
}

/// `v` as a checked answer that said no; `None` for every other violation.
pub(super) fn said_no(v: &Violation) -> Option<SaidNo<'_>> {
    match &v.misread {
        Some(Misread::WrongValue {
            path, held, wanted, ..
        }) => Some(SaidNo {
            path,
            held: held.as_deref(),
            wanted: wanted.as_deref(),
        }),
        _ => None,
    }
}

/// Whether the checked answers that said no ([`Misread::WrongValue`]) look crossed rather
/// than refused ([`said_no_everywhere`]): they held more than one value, and one of them is
/// what another of them wanted (`result = "B"` where `"A"` was wanted, and the other way
/// round: each answer another request's), or one of them wanted no value the verdict
/// knows (a test other than equality), so none can be told from another request's. One
/// value everywhere (`"forbidden"`), or refusals worded per user (`"user-3-denied"`,
/// `"user-4-denied"`) where every test wants `"ok"`, is a refusal.
fn crossed_values(kept: &[&Violation]) -> bool {
    let said: Vec<SaidNo<'_>> = kept.iter().filter_map(|v| said_no(v)).collect();
    let held: BTreeSet<&str> = said.iter().filter_map(|s| s.held).collect();
    if held.len() < 2 {
        return false;
    }
    let wanted: BTreeSet<&str> = said.iter().filter_map(|s| s.wanted).collect();
    said.iter().any(|s| s.wanted.is_none()) || held.iter().any(|h| wanted.contains(h))
}

/// Whether a checked answer passed, on any connection, at a step where one said no
/// ([`said_no_everywhere`]): there the server takes the request, and the refusals are some
/// answers' (a loss), not the step's ([`crate::model::CheckedMet::passed_at`]: an unknown step counts
/// as that one).
fn checked_passed_where_refused(
    group_of: &std::collections::HashMap<u32, &str>,
    reports: &[ConnReport],
    kept: &[&Violation],
) -> bool {
    let refused: BTreeSet<(&str, Option<&str>)> = kept
        .iter()
        .filter(|v| said_no(v).is_some())
        .map(|v| (v.group.as_str(), v.step.as_deref()))
        .collect();
    // Step numbers restart in every group: a pass at another group's step 3 is not one at
    // this group's (`group_of`, [`groups_by_conn`]). A connection the plan does not know (a
    // report read back alone) may be of any group.
    reports.iter().any(|r| {
        let own = group_of.get(&r.id).copied();
        refused.iter().any(|&(group, step)| {
            own.is_none_or(|own| own == group) && r.counters.expect.checked_met.passed_at(step)
        })
    })
}

/// Each planned connection's group name, by connection id.
fn groups_by_conn(plan: &Plan) -> std::collections::HashMap<u32, &str> {
    plan.conns
        .iter()
        .filter_map(|c| Some((c.id, plan.groups.get(c.group as usize)?.as_str())))
        .collect()
}

/// A step the server answered every request of with its error event (`[oracles]
/// error_event`) and served none of, though it served others: every valid-token connection
/// that asked it, once accepted, was refused there ([`ConnReport::errored_steps`]), and no
/// expectation was met at it on any ([`ConnReport::met_steps`]). An operation the server
/// does not know, a request format it does not take, or one it refuses by policy: what that
/// step checks was never exercised, so the run is not clean whatever else passed (the
/// README's `target_unusable` row). One whose whole answer came after its error was served
/// ([`Counters::answered_after_error`]). A request refused before the server accepted its
/// connection is no such refusal (a server may refuse one until it is ready); bad tokens'
/// connections are left out (an error is their right answer). `None` when every step
/// errored somewhere was also served somewhere.
pub(super) fn refused_step(plan: &Plan, reports: &[ConnReport]) -> Option<Judgement> {
    let group_of = groups_by_conn(plan);
    let valid = || reports.iter().filter(|r| valid_token(plan, r.token));
    // The steps met at, per group (step numbers restart in every group's script). A
    // connection whose requests got their whole answer after an error was served at the
    // steps it was refused at, which ones the count does not say: all of them are served.
    let mut met: BTreeMap<&str, u64> = BTreeMap::new();
    for r in valid() {
        let group = group_of.get(&r.id).copied().unwrap_or_default();
        let served_after_error = match r.counters.answered_after_error {
            0 => 0,
            _ => r
                .errored_steps
                .iter()
                .fold(0, |bits, s| bits | s.bloom_bit()),
        };
        *met.entry(group).or_default() |= r.met_steps | served_after_error;
    }
    // Each refused step, with the connections refused there and the first error quoted.
    let mut refused: BTreeMap<(&str, StepPlace), (u64, Option<&str>)> = BTreeMap::new();
    for r in valid() {
        let group = group_of.get(&r.id).copied().unwrap_or_default();
        let met_in_group = met.get(group).copied().unwrap_or_default();
        for &step in &r.errored_steps {
            if met_in_group & step.bloom_bit() != 0 {
                continue;
            }
            let entry = refused.entry((group, step)).or_default();
            entry.0 += 1;
            entry.1 = entry.1.or(r.first_error_accepted.as_deref());
        }
    }
    let ((group, step), (connections, first)) = refused.iter().next()?;
    let named = step_of_group(plan, group, &step.shown()?);
    let also = match refused.len() {
        1 => String::new(),
        n => format!(" (and {} other step{})", n - 1, plural((n - 1) as u64)),
    };
    let quoted = first.map_or(String::new(), |e| format!(" (the first: {e})"));
    Some(Judgement {
        verdict: Verdict::TargetUnusable,
        hint: Some(format!(
            "the server answered every request of {named}{also} with its error event{quoted}, \
             on {} and after accepting them, and none with what the step expects, while it \
             served the script's other steps: it turned that step away, so what it checks \
             was never exercised. Check its request against what the server takes (an \
             operation it knows, a field of the right name and type); if the server refuses \
             it by policy, `expect` its error there",
            crate::model::words::plural(*connections, "connection")
        )),
    })
}

/// [`refused_step`] where the server then closed each connection it refused at that step
/// (STOMP's ERROR frame, then its close): the expectations after it went unmet, cut by
/// that close, never asked. Every violation is such an unmet expectation, on a connection
/// refused at a step served nowhere, and kept whole (`by_oracle` counts none beyond
/// them): the script's request was turned away, no race. `None` otherwise.
pub(super) fn refused_step_then_closed(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    let (unmet, kept) = only_unmet(reports, by_oracle)?;
    if kept.len() as u64 != unmet || !kept.iter().all(|v| v.ended.is_some()) {
        return None;
    }
    // Looked up once, not per violation: a large run keeps a violation on each of many
    // connections.
    let refused_here: BTreeSet<u32> = reports
        .iter()
        .filter(|r| !r.errored_steps.is_empty())
        .map(|r| r.id)
        .collect();
    if !kept.iter().all(|v| refused_here.contains(&v.conn)) {
        return None;
    }
    let mut j = refused_step(plan, reports)?;
    if let Some(hint) = j.hint.as_mut() {
        hint.push_str(&format!(
            ". It then closed each connection it refused there, so the {unmet} expectation{} \
             after that step went unmet unasked: they follow from the refusal, no race",
            plural(unmet)
        ));
    }
    Some(j)
}

/// A step as the verdict names it: `step 3`, or `step 3 of group "posters"` when the plan
/// has more than one group (step numbers restart in every group).
fn step_of_group(plan: &Plan, group: &str, step: &str) -> String {
    if plan.groups.len() > 1 {
        format!("step {step} of group {group:?}")
    } else {
        format!("step {step}")
    }
}

/// The steps whose checked answers said no, as the scenario numbers its `expect`s (`step
/// 3`, `steps 2.1 and 4`); `None` when none is known.
pub(super) fn refused_steps(plan: &Plan, kept: &[&Violation]) -> Option<String> {
    let steps: BTreeSet<(&str, &str)> = kept
        .iter()
        .filter(|v| said_no(v).is_some())
        .filter_map(|v| Some((v.group.as_str(), v.step.as_deref()?)))
        .collect();
    // Step numbers restart in every group: with more than one, each step is named with
    // its group ("step 3 of group \"posters\" and step 5 of group \"readers\"").
    let grouped = plan.groups.len() > 1;
    let items: Vec<String> = steps
        .into_iter()
        .map(|(group, step)| {
            if grouped {
                step_of_group(plan, group, step)
            } else {
                step.to_string()
            }
        })
        .collect();
    let (listed, many) = match items.as_slice() {
        [] => return None,
        [one] => (one.clone(), false),
        [rest @ .., last] => (format!("{} and {last}", rest.join(", ")), true),
    };
    Some(match (grouped, many) {
        (true, _) => listed,
        (false, false) => format!("step {listed}"),
        (false, true) => format!("steps {listed}"),
    })
}

/// Every valid-token connection the server accepted had an expectation answered, correlated
/// with its request, only with kinds its pattern does not name ([`Misread::OtherKinds`]),
/// the kinds it names never came on any connection, and the only violations are unmet
/// expectations: the server answered every request with something else (Pusher's
/// `pusher:subscription_error` to a subscribe whose auth it refuses), a refusal in band the
/// scenario does not declare as its error event; the expectations after it on the same
/// connections, unmet too, follow from it. A race loses some answers, not every
/// one on every connection; but a race may lose one kind everywhere while an info record
/// comes for each request (Supabase Realtime's `system` after a join whose changes never
/// come), so only kinds whose names say no ([`names_a_refusal`]) read as a refusal. Target
/// unusable, never a race to hunt. A kind spelled close to the one named is a misreading
/// instead ([`misread`], judged before).
pub(super) fn answered_otherwise_everywhere(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    let (unmet, kept) = only_unmet(reports, by_oracle)?;
    let other_kinds = |v: &Violation| {
        v.correlation.is_some() && matches!(v.misread, Some(Misread::OtherKinds { .. }))
    };
    let arrived = |kind: &String| {
        reports
            .iter()
            .filter_map(|r| r.counters.expect.events.get(kind))
            .any(|t| t.arrived > 0)
    };
    let mut came = BTreeSet::new();
    let mut named = BTreeSet::new();
    for v in kept.iter().filter(|v| other_kinds(v)) {
        if let Some(Misread::OtherKinds { came: c, kinds }) = &v.misread {
            if kinds.iter().any(arrived) {
                return None;
            }
            came.extend(c.iter().map(String::as_str));
            named.extend(kinds.iter().map(String::as_str));
        }
    }
    let mut served = reports.iter().filter(|r| {
        valid_token(plan, r.token) && r.attempts.iter().any(|a| a.outcome == Outcome::Accepted)
    });
    if !served.all(|r| r.violations.iter().any(other_kinds))
        || came.is_empty()
        || !came.iter().all(|k| names_a_refusal(k))
    {
        return None;
    }
    let declare = match came.len() {
        1 => format!(
            "; if {} is its error answer, declare `[oracles] error_event = {:?}` and the \
             verdict quotes what it says",
            quoted(&came),
            came.iter().next().copied().unwrap_or_default()
        ),
        _ => String::new(),
    };
    // Expectations met elsewhere: the server served those requests, and turned away only
    // the ones answered so.
    let others_met = reports
        .iter()
        .any(|r| r.counters.expect.expectations_met > 0);
    let turned_away = if others_met {
        "it turned those requests away in band and served others, whose expectations were \
         met, so what the refused ones check was never exercised"
    } else {
        "it turned every request away in band, so nothing the script is for was exercised"
    };
    Some(Judgement {
        verdict: Verdict::TargetUnusable,
        hint: Some(format!(
            "the server answered the requests of every connection with {}, correlated with \
             them, and never with what their patterns name ({}): {turned_away} ({unmet} \
             expectation{} unmet). Check the requests against what the server takes \
             (credentials a channel needs, a name it knows){declare}",
            quoted(&came),
            quoted(&named),
            plural(unmet)
        )),
    })
}

/// The violations of a run that are a kind misspelled in the script, whatever else broke
/// beside them (`typo`: a kind its pattern names that arrived on no connection,
/// `arrived` saying which did, and a kind spelled close to it that came correlated in its
/// place). The verdict reads a run of nothing else as unreadable; beside a real loss they
/// still are no race, and a hunt must not write a repro of them (it confirmed one built on
/// `RESULTS` for the `RESULT` the server sends, while a real race went on beside it).
pub fn misspelled<'v>(
    plan: &Plan,
    violations: &'v [Violation],
    arrived: &impl Fn(&str) -> bool,
) -> Vec<&'v Violation> {
    let sent = sent_kinds(plan);
    let arrived = |kind: &String| arrived(kind);
    violations
        .iter()
        .filter(|v| v.correlation.is_some())
        .filter(|v| {
            v.misread
                .as_ref()
                .is_some_and(|m| typo(m, &arrived, &sent).is_some())
        })
        .collect()
}

/// The note on violations answered, correlated with their request, only with kinds their
/// pattern does not name, where a kind it names arrived on no connection of the run: the
/// server may never send that kind (`PONG` where it answers `RESULT`), which makes the
/// `expect` wrong, not the server; or a race lost it everywhere (Supabase Realtime's
/// changes after a join), which the hunt tells. Said beside the violations, never instead.
/// `None` when every named kind arrived somewhere.
pub(super) fn never_arrived_note(reports: &[ConnReport], kept: &[Violation]) -> Option<String> {
    let arrived = |kind: &str| {
        reports
            .iter()
            .filter_map(|r| r.counters.expect.events.get(kind))
            .any(|t| t.arrived > 0)
    };
    let mut missing = BTreeSet::new();
    let mut came = BTreeSet::new();
    for v in kept.iter().filter(|v| v.correlation.is_some()) {
        if let Some(Misread::OtherKinds { came: c, kinds }) = &v.misread {
            let lost: Vec<&str> = kinds
                .iter()
                .map(String::as_str)
                .filter(|k| !arrived(k))
                .collect();
            if !lost.is_empty() {
                missing.extend(lost);
                came.extend(c.iter().map(String::as_str));
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "{} never arrived on any connection, while {} came correlated with those requests: \
         either the server loses {} every time or never sends {} (then the `expect` is \
         what needs fixing); a hunt's find says which kind of fault it is: replayed with \
         its sends spaced out, a race runs clean",
        quoted(&missing),
        quoted(&came),
        if missing.len() == 1 { "it" } else { "them" },
        if missing.len() == 1 { "it" } else { "them" },
    ))
}

/// Close codes by which a server says the client broke its protocol (RFC 6455 §7.4.1):
/// 1002 protocol error, 1003 data it cannot accept, 1007 a payload that does not fit.
pub(super) const PROTOCOL_CLOSES: [u16; 3] = [1002, 1003, 1007];

/// The code of the server's close that ended attempt `a` when it says the client broke the
/// protocol ([`PROTOCOL_CLOSES`]), unless the server had acknowledged the session first:
/// the scenario names its acceptance message (`accepted = { message = "connection_ack" }`)
/// and the attempt got it. A client that waited for the server's own ack and then heard
/// "you broke the protocol" may have met the server's race (a graphql-transport-ws server
/// closing a `subscribe` sent after its `connection_ack` with 1002 "subscribe before
/// connection_ack"): judged as usual, never read as a script that does not speak the
/// protocol.
pub(super) fn closed_for_protocol(plan: &Plan, a: &Attempt) -> Option<u16> {
    let acknowledged = matches!(plan.oracles.session.accepted, AcceptRule::Message { .. })
        && a.outcome == Outcome::Accepted;
    match a.cause {
        Some(Cause::ServerClose(code)) if PROTOCOL_CLOSES.contains(&code) && !acknowledged => {
            Some(code)
        }
        _ => None,
    }
}

/// Every valid-token connection that dialled had an attempt the server closed with a code
/// that says the client broke its protocol ([`PROTOCOL_CLOSES`]), and every violation is an
/// expectation such a close cut before anything it awaited came: the script does not speak
/// the server's protocol there (a handshake left out, a message it refuses to read), which
/// no race explains. A race may make a server close some connections so; not every one.
/// Target unusable, naming the code and the server's reason.
pub(super) fn broke_the_protocol(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    let (unmet, kept) = only_unmet(reports, by_oracle)?;
    let cut_by = |v: &Violation| {
        v.ended
            .filter(|end| !end.answered)
            .and_then(|end| end.close_code)
            .filter(|code| PROTOCOL_CLOSES.contains(code))
    };
    let code = cut_by(kept.first()?)?;
    if !kept.iter().all(|v| cut_by(v) == Some(code)) {
        return None;
    }
    let closed_so = |r: &ConnReport| {
        r.attempts
            .iter()
            .any(|a| closed_for_protocol(plan, a) == Some(code))
    };
    let mut dialled = reports
        .iter()
        .filter(|r| valid_token(plan, r.token) && !r.attempts.is_empty())
        .peekable();
    dialled.peek()?;
    if !dialled.all(closed_so) {
        return None;
    }
    let reason = reports
        .iter()
        .flat_map(|r| [r.answer.as_ref(), r.closed_after_acceptance.as_ref()])
        .flatten()
        .find(|a| a.cause == Cause::ServerClose(code))
        .map(|a| a.body.trim())
        .filter(|reason| !reason.is_empty())
        .map(|reason| format!(" {reason:?}"))
        .unwrap_or_default();
    Some(Judgement {
        verdict: Verdict::TargetUnusable,
        hint: Some(format!(
            "the server closed an attempt of every connection with {code}{reason}, its word \
             for a client that broke its protocol, before the {unmet} expectation{} it cut \
             got anything: the script does not speak the server's protocol there (a \
             handshake or a required field left out, a message it will not read). Check the \
             steps before each cut against the protocol; this is no race to hunt",
            plural(unmet)
        )),
    })
}

/// Every violation is an unmet expectation whose connection the server then broke the
/// WebSocket protocol on (a frame no correct server sends: invalid UTF-8 in a text frame,
/// a masked frame, reserved bits), the same fault on each (as its report keeps it:
/// [`ConnReport::protocol_fault`]), and it did so on every valid-token connection it
/// accepted, two or more: what the server sends is what to fix, before any hunt. How many
/// connections, and the fault.
pub(super) fn same_fault_everywhere(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<(u64, String)> {
    let (_, kept) = only_unmet(reports, by_oracle)?;
    let faulted = every_accepted_ended_by(plan, reports, &Cause::Protocol)?;
    if !kept.iter().all(|v| faulted.contains(&v.conn)) {
        return None;
    }
    let mut faults = reports
        .iter()
        .filter(|r| faulted.contains(&r.id))
        .map(|r| r.protocol_fault.as_deref());
    let first = faults.next()??;
    faults
        .all(|fault| fault == Some(first))
        .then(|| (faulted.len() as u64, first.to_string()))
}

/// The valid-token connections the server accepted, when every one of them, two or more,
/// had an accepted attempt that ended with `cause`: what happened every time. `None`
/// otherwise.
fn every_accepted_ended_by(
    plan: &Plan,
    reports: &[ConnReport],
    cause: &Cause,
) -> Option<BTreeSet<u32>> {
    let mut ended = BTreeSet::new();
    for r in reports.iter().filter(|r| valid_token(plan, r.token)) {
        let mut accepted = r
            .attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Accepted)
            .peekable();
        if accepted.peek().is_none() {
            continue;
        }
        if !accepted.any(|a| a.cause.as_ref() == Some(cause)) {
            return None;
        }
        ended.insert(r.id);
    }
    (ended.len() >= 2).then_some(ended)
}

/// Every violation is an unmet expectation on a connection the server then stopped
/// reading (`timeout_send`: a write waited out `send_timeout`, or what the socket would not
/// take, the pongs its pings are owed among it, filled the write buffer), and it did so
/// on every valid-token connection it accepted, two or more: the same every time, no
/// race, and a request that never went out was never asked. How many connections.
pub(super) fn stopped_reading_everywhere(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<u64> {
    let (_, kept) = only_unmet(reports, by_oracle)?;
    let blocked = every_accepted_ended_by(plan, reports, &Cause::Timeout("send"))?;
    kept.iter()
        .all(|v| blocked.contains(&v.conn))
        .then_some(blocked.len() as u64)
}

/// Beside violations the server's stopping reading on some connections explains in part
/// (not on every one it accepted: [`stopped_reading_everywhere`] says that instead): how
/// many of the kept unmet expectations were on connections that ended `timeout_send`, the
/// server no longer reading them. Their requests piled up unsent, so what those waited
/// for was never asked; the rest are judged as usual. `None` when none were.
pub(super) fn stopped_reading_note(reports: &[ConnReport], kept: &[Violation]) -> Option<String> {
    let send_timeout = Cause::Timeout("send");
    let blocked: BTreeSet<u32> = reports
        .iter()
        .filter(|r| {
            r.attempts
                .iter()
                .any(|a| a.outcome == Outcome::Accepted && a.cause.as_ref() == Some(&send_timeout))
        })
        .map(|r| r.id)
        .collect();
    let on_blocked = kept
        .iter()
        .filter(|v| v.oracle == OracleKind::Completeness && blocked.contains(&v.conn))
        .count();
    if on_blocked == 0 {
        return None;
    }
    let (they, them) = if blocked.len() == 1 {
        ("it", "it")
    } else {
        ("they", "them")
    };
    Some(format!(
        "{on_blocked} of the {} violations kept {} on {} connection{} the server stopped \
         reading (timeout_send): what {they} wrote piled up unsent, so what {they} waited for \
         was never asked; the server's log says why it stopped reading {them}",
        kept.len(),
        if on_blocked == 1 { "was" } else { "were" },
        blocked.len(),
        plural(blocked.len() as u64),
    ))
}

/// Words of a record kind that says a request was refused (lowercase, matched anywhere):
/// `pusher:subscription_error`, `subscribe_failed`, `access_denied`; `nack` and `err` as whole words ([`REFUSAL_WHOLE_WORDS`]).
const REFUSAL_WORDS: [&str; 9] = [
    "error",
    "fail",
    "denied",
    "reject",
    "refus",
    "invalid",
    "unauthori",
    "forbidden",
    "exception",
];

/// Short refusal words matched only as a whole word of a kind (`err`, `ws_err`, `Err`):
/// inside a word they are other words (`deferred`, `interrupt`).
const REFUSAL_WHOLE_WORDS: [&str; 3] = ["err", "nak", "nack"];

/// Whether a record kind's name says no ([`REFUSAL_WORDS`], [`REFUSAL_WHOLE_WORDS`]).
pub(super) fn names_a_refusal(kind: &str) -> bool {
    let kind = kind.to_lowercase();
    REFUSAL_WORDS.iter().any(|w| kind.contains(w))
        || kind
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| REFUSAL_WHOLE_WORDS.contains(&word))
}

/// The unreadable verdict of a run with violations or error answers whose script captures
/// a value at a path that none of the messages meeting its `expect` held, on any
/// connection: every later `{{$name}}` went out as written, so what the server then did
/// (an error, a refusal, no answer) answers a broken request, not a race. A capture found on some connections and
/// not on others is the server's inconsistency, judged as usual.
pub(super) fn capture_never_found(
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    let errored = reports
        .iter()
        .any(|r| r.counters.expect.expectations_errored > 0);
    if by_oracle.values().sum::<u64>() == 0 && !errored {
        return None;
    }
    let mut run: BTreeMap<&str, crate::model::CaptureTally> = BTreeMap::new();
    for (name, t) in reports.iter().flat_map(|r| &r.counters.expect.captures) {
        run.entry(name.as_str()).or_default().add(t);
    }
    let (name, never) = run.iter().find(|(_, t)| t.missed > 0 && t.taken == 0)?;
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "`capture = {{ {name} = {:?} }}` found nothing at that path in any of the {} \
             answer{} that met its `expect`: every later \"{{{{${name}}}}}\" went out as \
             written, and what the server made of it is no finding. Check the path against \
             what that answer holds (the first was {}); fix it before charging the server",
            never.path,
            never.missed,
            plural(never.missed),
            never.shape
        )),
    })
}

/// `text` with each run of digits written `#` (`"user-1012"` → `"user-#"`): the shape a
/// family of ids shares.
pub(super) fn shape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// Values of a misnamed identity field the hint quotes.
pub(super) const IDENTITY_VALUES_SHOWN: usize = 3;

/// Every violation is of the declared `[oracles] identity` field, which never held its
/// connection's own user on any connection of the run
/// ([`ExpectCounts::identity_matched`](crate::model::ExpectCounts::identity_matched)),
/// and held values that differ from record to record, none the user of any token of the
/// run: the field names something else (a subscription's or a message's id), so its
/// mismatches are no leaks. Unreadable. So is one value on every record (two or more, or
/// on two or more connections) that is no user of the run (Home Assistant's `event.origin`, `"LOCAL"`
/// everywhere): the field names something else, or the server never fills it, which
/// every record shows and no hunt needs to find; no user's events went to another. Any
/// value that is another user of the run, or shaped as the run's users are ([`shape`]:
/// one user stamped on everything, a leak from outside the run), stays a finding.
pub(super) fn identity_misnamed(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    let field = plan.oracles.identity.as_deref()?;
    let mismatched = by_oracle.get(&OracleKind::Identity).copied().unwrap_or(0);
    let total: u64 = by_oracle.values().sum();
    let matched: u64 = reports
        .iter()
        .map(|r| r.counters.expect.identity_matched)
        .sum();
    if mismatched == 0 || total != mismatched || matched > 0 {
        return None;
    }
    let prefix = format!("{field} = ");
    let mut values: Vec<&str> = Vec::new();
    let mut conns = BTreeSet::new();
    for v in reports.iter().flat_map(|r| &r.violations) {
        if v.oracle != OracleKind::Identity || v.learned {
            continue;
        }
        let value = v.seen.strip_prefix(&prefix)?;
        conns.insert(v.conn);
        if !values.contains(&value) {
            values.push(value);
        }
    }
    // Users' shapes too: `"user-1012"` where the run's users are `"user-0"`… is someone's
    // user, a leak of users from outside the run, not a field that names something else.
    let users: BTreeSet<String> = plan
        .tokens
        .iter()
        .map(|t| shape(&serde_json::Value::from(t.sub.as_str()).to_string()))
        .collect();
    if values.is_empty() || values.iter().any(|v| users.contains(&shape(v))) {
        return None;
    }
    if let [only] = values.as_slice() {
        // On one record alone nothing says it is the same everywhere.
        if conns.len() < 2 && mismatched < 2 {
            return None;
        }
        return Some(Judgement {
            verdict: Verdict::Unreadable,
            hint: Some(format!(
                "the `[oracles] identity` field {field:?} held {only} on every record of all \
                 {} connections that had it ({mismatched} record{} checked), never its \
                 connection's own user: no user's events went to another. It names something \
                 else, or the server never fills it (which every record shows: no race to \
                 hunt). Point `identity` at the field that carries the user (the token's \
                 `sub`)",
                conns.len(),
                plural(mismatched),
            )),
        });
    }
    let mut shown: Vec<&str> = values.iter().take(IDENTITY_VALUES_SHOWN).copied().collect();
    if values.len() > IDENTITY_VALUES_SHOWN {
        shown.push("…");
    }
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "the `[oracles] identity` field {field:?} never held its connection's own user \
             on any connection ({mismatched} record{} checked, none did), and what it held \
             ({}) is no user of this run: it names something else (a subscription's or a \
             message's id), so these are no leaks. Point `identity` at the field that \
             carries the user (the token's `sub`)",
            plural(mismatched),
            shown.join(", ")
        )),
    })
}

/// The kinds the scripts' `send` steps write (their `type_field`, when a plain string):
/// what the server may echo or push on its own schedule (a `ping` of its own), never a
/// misspelling of the answer an `expect` waits for.
pub(super) fn sent_kinds(plan: &Plan) -> BTreeSet<&str> {
    let field = plan.oracles.type_field.as_str();
    plan.scripts
        .iter()
        .flat_map(|script| crate::model::deep_steps(script))
        .filter_map(|step| match step {
            Step::Send { template } => {
                crate::model::path::lookup(template, field).and_then(serde_json::Value::as_str)
            }
            _ => None,
        })
        .collect()
}

/// The unreadable verdict of a run whose every violation is an expectation unmet while
/// the server answered it in a shape it does not read ([`Violation::misread`]), when the
/// scenario misreads the protocol, which is no loss by the server: every one got its
/// kinds without the field it correlates on, and not one of those kinds ever arrived for
/// any expectation of the run (a misnamed `correlate` field); or every one got
/// correlated records of a kind its pattern does not name, spelled close to a kind it
/// names that never arrived on any connection of the run (a misnamed kind, [`typo`]).
/// `None` otherwise: a kind that arrived for some expectation shows the reading works,
/// and what went missing elsewhere stands.
pub(super) fn misread(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    let (unmet, all) = only_unmet(reports, by_oracle)?;
    let (kept, after) = misread_and_after(&all)?;
    let misreads: Vec<&Misread> = kept.iter().filter_map(|v| v.misread.as_ref()).collect();
    let arrived = |kind: &String| {
        reports
            .iter()
            .filter_map(|r| r.counters.expect.events.get(kind))
            .any(|t| t.arrived > 0)
    };
    if let Some(j) = unread_test_field(reports, unmet, (&misreads, &kept)) {
        return Some(j);
    }
    if let Some(j) = type_slips(plan, unmet, &misreads) {
        return Some(j);
    }
    // Correlated records of other kinds are often the protocol's own acks (Phoenix's
    // `phx_reply`) beside a kind truly lost: they say "misread" only as a typo does.
    let about_correlation = |m: &&Misread| {
        matches!(
            m,
            Misread::NoCorrelationField { .. } | Misread::OtherCorrelationValue { .. }
        )
    };
    if !misreads.iter().all(about_correlation) {
        let sent = sent_kinds(plan);
        let typos: Vec<(&str, &str)> = misreads
            .iter()
            .map(|m| typo(m, &arrived, &sent))
            .collect::<Option<_>>()?;
        let (missing, came) = typos.first()?;
        // Uncorrelated, a kind that came as they waited may be a heartbeat spelled close
        // to theirs (`ping` for `pong`): said as what came, not as an answer.
        let (what, how, these) = if kept.iter().all(|v| v.correlation.is_none()) {
            (
                "a kind their patterns do not name came as they waited",
                "",
                "records of that kind",
            )
        } else {
            (
                "the server answered them with a kind their patterns do not name",
                ", correlated with them",
                "these answers",
            )
        };
        return Some(Judgement {
            verdict: Verdict::Unreadable,
            hint: Some(format!(
                "{unmet} expectation{} went unmet, yet {what}: {missing:?} never came on any \
                 connection, while {came:?} did{how}. Did you mean {came:?}? The scenario does \
                 not read {these}, so they prove no loss; fix the kind name in the `expect` \
                 before charging the server",
                plural(unmet)
            )),
        });
    }
    // A misnamed correlation field: no expectation correlated on it was met anywhere,
    // whatever kinds arrived for others (an uncorrelated `expect` of the same kind met).
    let never_met = |field: &String| {
        !reports
            .iter()
            .any(|r| r.counters.expect.correlated_met.contains(field))
    };
    // Another value at the correlation path names a wrong path only when it cannot be a
    // request's: a boolean, null, an object; or one string or number the answers hold
    // everywhere (a message, a version). Ids that differ from answer to answer, or one a
    // kept request sent ([`crossed_answers`]), are answers come to the wrong request.
    let held_ids: Vec<&str> = misreads
        .iter()
        .filter_map(|m| match m {
            Misread::OtherCorrelationValue {
                held,
                id_like: true,
                ..
            } => Some(held.as_str()),
            _ => None,
        })
        .collect();
    let one_constant = held_ids.len() >= 2 && held_ids.iter().all(|h| *h == held_ids[0]);
    let varied = |m: &&Misread| matches!(m, Misread::OtherCorrelationValue { id_like: true, .. });
    if crossed_answers(&kept) || (!one_constant && misreads.iter().any(varied)) {
        return None;
    }
    let field_never_read = |m: &&Misread| match m {
        Misread::NoCorrelationField { field, .. }
        | Misread::OtherCorrelationValue { field, .. } => never_met(field),
        _ => false,
    };
    if !misreads.iter().all(field_never_read)
        && misreads.iter().any(|m| m.kinds().iter().any(arrived))
    {
        return None;
    }
    let shown = |v: &[String]| v.join(", ");
    let told = match misreads.first()? {
        Misread::NoCorrelationField {
            field,
            kinds,
            came_with,
            ..
        } if !came_with.is_empty() => format!(
            "the kinds their patterns still owed ({}) came, but only without the field they \
             correlate on ({field:?}), while the kinds before them ({}) came carrying it: a \
             correlated pattern claims only records that carry the field, and the server \
             stamps its first answers, not the rest; correlate the kinds that carry it in one \
             `expect`, and expect the others in a step of their own",
            shown(kinds),
            came_with.join(" ")
        ),
        Misread::NoCorrelationField {
            field,
            carried,
            kinds,
            ..
        } => format!(
            "records of their kinds ({}) came without the field they correlate on ({field:?}; \
             the first {}), and no expectation ever got one: check `correlate` (the \
             field the answers echo the request's value in)",
            shown(kinds),
            if carried.is_empty() {
                // An array's elements have positions, not names.
                "was no object: an array's positions read /0, /1, …".to_string()
            } else {
                format!("carried {}", shown(carried))
            }
        ),
        Misread::OtherCorrelationValue {
            field,
            held,
            id_like,
            kinds,
            ..
        } => other_value_told(field, held, *id_like, &shown(kinds)),
        // Judged above ([`unread_test_field`]); an answer that said no is no misreading.
        Misread::NoCheckedField { .. } | Misread::WrongValue { .. } | Misread::WrongType { .. } => {
            return None
        }
        Misread::OtherKinds { came, kinds } => format!(
            "the server answered them with kinds their patterns do not name ({}), and none \
             of the kinds they name ({}) ever came: check the kind names in the `expect` \
             patterns",
            shown(came),
            shown(kinds)
        ),
    };
    let later = match after {
        0 => String::new(),
        n => format!(
            " ({n} of them later on the same connections, whose scripts went on past a step \
             they could not read)"
        ),
    };
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "{unmet} expectation{} went unmet{later}, yet {told}. The scenario does not read \
             these answers, so they prove no loss; fix it before charging the server",
            plural(unmet)
        )),
    })
}

/// The kept unmet expectations that read as misread ([`Violation::misread`]), and how many
/// others there are, each later on a connection where one was misread: a script that went
/// on past a step it could not read (a join whose answer it could not see) proves no loss
/// after it either. `None` when none was misread, or another came on a connection where
/// nothing was, or before anything was.
fn misread_and_after<'a>(kept: &[&'a Violation]) -> Option<(Vec<&'a Violation>, usize)> {
    let (read, other): (Vec<&Violation>, Vec<&Violation>) =
        kept.iter().partition(|v| v.misread.is_some());
    let downstream = |v: &&Violation| read.iter().any(|m| m.conn == v.conn && m.at_ms <= v.at_ms);
    (!read.is_empty() && other.iter().all(downstream)).then_some((read, other.len()))
}

/// What the unreadable hint says of answers holding another value at the correlation
/// path ([`Misread::OtherCorrelationValue`]).
pub(super) fn other_value_told(field: &str, held: &str, id_like: bool, kinds: &str) -> String {
    let (held, why) = if id_like {
        (
            format!("{held:?}"),
            "the same in every one, where the requests sent values of their own",
        )
    } else {
        (
            held.to_string(),
            "which no request id is (a server that could not read a request answers `null` \
             there: JSON-RPC's parse and invalid-request errors)",
        )
    };
    format!(
        "records of their kinds ({kinds}) held {held} at the path they read the request's \
         value at ({field:?}), {why}, and no expectation ever got its value there: check \
         `correlate` (the field the answers echo the request's value in; `reply = \"…\"` \
         when it is not the request's path) and the requests' format"
    )
}

/// The unreadable verdict of a run whose every unmet expectation failed a `where` test
/// whose value its answers held as another JSON type ([`Misread::WrongType`]: `"true"`
/// written for `true`): no answer could pass it. `None` otherwise, and when the test's
/// type was chosen on purpose ([`typed_on_purpose`]): then the answers' type is the
/// server's to answer for.
pub(super) fn type_slips(plan: &Plan, unmet: u64, misreads: &[&Misread]) -> Option<Judgement> {
    let mut first = None;
    for m in misreads {
        let Misread::WrongType {
            path, wanted, held, ..
        } = m
        else {
            return None;
        };
        first.get_or_insert((path, wanted, held));
    }
    let (path, wanted, held) = first?;
    if typed_on_purpose(plan, path) {
        return None;
    }
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "{unmet} expectation{} went unmet, yet their answers held the value a `where` test \
             wants as another type: {path:?} = {held} where the test writes {wanted}. Did you \
             mean {path:?} = {held}? (In TOML, quotes make a string.) The scenario does not \
             read these answers, so they prove no loss; fix it before charging the server",
            plural(unmet)
        )),
    })
}

/// Whether some `where` test of the scenario at `path` writes its value as a typed
/// placeholder alone (`id = "{{run:int}}"`): the number was asked for, not a string
/// quoted by mistake, so an answer holding the value as a string is the server's answer.
fn typed_on_purpose(plan: &Plan, path: &str) -> bool {
    let typed = |v: &serde_json::Value| {
        v.as_str().is_some_and(|s| {
            s.strip_prefix("{{")
                .and_then(|s| s.strip_suffix("}}"))
                .is_some_and(|inner| inner.trim().ends_with(":int"))
        })
    };
    plan.scripts.iter().any(|steps| {
        crate::model::deep_steps(steps).any(|s| match s {
            Step::Expect(e) => e
                .checks
                .iter()
                .any(|t| t.path == path && matches!(&t.test, Test::Equals(v) if typed(v))),
            _ => false,
        })
    })
}

/// Whether an expectation with `where` tests was met at the step of one of `kept`'s
/// violations, on any connection ([`crate::model::CheckedMet::passed_at`]): the answers
/// there carry what that step tests, so its failures are the server's. A `where` met at
/// another step says nothing of this one's path (a typo in one of two tests was charged
/// to the server because the other passed).
fn checked_met_at_their_steps(reports: &[ConnReport], kept: &[&Violation]) -> bool {
    kept.iter().any(|v| {
        reports
            .iter()
            .any(|r| r.counters.expect.checked_met.passed_at(v.step.as_deref()))
    })
}

/// The unreadable verdict of a run whose every unmet expectation failed a `where` test
/// on a field its answer does not carry ([`Misread::NoCheckedField`]), when no
/// expectation of those steps with `where` tests was met anywhere in the run
/// ([`checked_met_at_their_steps`]): a misnamed path, which no answer could pass, not a
/// server that leaves a field out (one met test of the step shows the answers carry what
/// it tests). `None` otherwise, and for any other misreading.
pub(super) fn unread_test_field(
    reports: &[ConnReport],
    unmet: u64,
    (misreads, kept): (&[&Misread], &[&Violation]),
) -> Option<Judgement> {
    let mut paths = std::collections::BTreeSet::new();
    let mut kinds = std::collections::BTreeSet::new();
    let mut carried = None;
    for m in misreads {
        let Misread::NoCheckedField {
            path,
            carried: c,
            kinds: k,
        } = m
        else {
            return None;
        };
        paths.insert(path.as_str());
        kinds.extend(k.iter().map(String::as_str));
        carried.get_or_insert(c);
    }
    if checked_met_at_their_steps(reports, kept) {
        return None;
    }
    let paths: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
    let kinds: Vec<String> = kinds.iter().map(|k| format!("`{k}`")).collect();
    let (records, split) = match kinds.is_empty() {
        true => (String::new(), String::new()),
        false => (
            format!("; the records lacking it were of kind {}", kinds.join(", ")),
            " and that every kind the pattern names carries it (a `where` tests each record \
             of its pattern: a kind without the field, such as a stream's closing message, \
             belongs in an `expect` of its own)"
                .to_string(),
        ),
    };
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "{unmet} expectation{} went unmet, yet each failed a `where` test on a field no \
             answer carried ({}{}{records}), and no expectation of those steps was ever met: \
             check the field path in `where`{split}. The scenario does not read these \
             answers, so they prove no loss; fix it before charging the server",
            plural(unmet),
            paths.join(", "),
            // An array frame (Phoenix v2's) has no field names to list.
            carried
                .filter(|c| !c.is_empty())
                .map(|c| format!("; the first carried {}", c.join(", ")))
                .unwrap_or_default()
        )),
    })
}

/// The kind `m`'s pattern names that never arrived in the run (`arrived` says which did)
/// and the kind that came correlated in its place spelled close to it
/// ([`crate::model::words::closest`]): `agent_complete` and `agent_completed`. `None`
/// for a [`Misread::NoCorrelationField`], when every kind it names arrived somewhere (a
/// kind some connections got and others did not is a loss), or when nothing that came
/// is spelled close: acks of another name beside a lost kind (`phx_reply` beside
/// `postgres_changes`) are no typo, nor is a kind the scripts send (`sent`, a `ping` the
/// server pushes too, beside the `pong` it never answered).
pub(super) fn typo<'m>(
    m: &'m Misread,
    arrived: &impl Fn(&String) -> bool,
    sent: &BTreeSet<&str>,
) -> Option<(&'m str, &'m str)> {
    let Misread::OtherKinds { came, kinds } = m else {
        return None;
    };
    // A kind the script sends itself (a `ping` the server pushes too) misspells nothing.
    let candidates = || {
        came.iter()
            .map(String::as_str)
            .filter(|c| !sent.contains(c))
    };
    kinds
        .iter()
        .filter(|k| !arrived(k))
        .find_map(|k| crate::model::words::closest(k, candidates()).map(|c| (k.as_str(), c)))
}

/// Kinds as a hint lists them: `` `a`, `b` ``.
fn quoted(kinds: &BTreeSet<&str>) -> String {
    kinds
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `[oracles] sequence` oracle read no number anywhere in a run, and what it passed
/// over says the scenario names it otherwise than the server writes it
/// ([`crate::model::SequenceMissed`]): records of a kind spelled close to one of its `kinds` carried a
/// number at its field (`ticks` for `tick`), or records of the kinds it names came without
/// the field at all (without `kinds`, a record without the field is one it skips). The oracle judged nothing, and a server
/// with gaps reads the same: unreadable, never clean, for a nightly gate must not go
/// green on it. `None` when it read a number, or passed over nothing that says so (the
/// numbered records never came: the clean verdict's note says it was not exercised).
pub(super) fn sequence_misnamed(plan: &Plan, reports: &[ConnReport]) -> Option<Judgement> {
    let field = plan.oracles.sequence.as_deref()?;
    let counters = sum_counters(reports);
    if counters.expect.sequence_numbered > 0 {
        return None;
    }
    let missed = counters.expect.sequence_missed.as_deref()?;
    let kinds = &plan.oracles.sequence_kinds;
    let named = kinds.join(", ");
    let spelled_close = missed
        .other_kind
        .as_deref()
        .filter(|k| crate::model::words::closest(k, kinds.iter().map(String::as_str)).is_some());
    let reading = if let (Some(kind), true) = (spelled_close, missed.other_kinds > 0) {
        format!(
            "{} of kind {kind:?} carried a number at {field:?}, and its kinds are {named}: \
             if those are the sequence, `kinds` names {kind:?}",
            crate::model::words::plural(missed.other_kinds, "record")
        )
    } else if missed.unnumbered > 0 {
        let of = if kinds.is_empty() {
            String::new()
        } else {
            format!(" of its kinds ({named})")
        };
        let carried = match missed.unnumbered_carried.as_slice() {
            [] => String::new(),
            fields => format!(" (the first carried {})", fields.join(", ")),
        };
        format!(
            "{}{of} came without a field {field:?}{carried}: `field` names the one that \
             numbers them (a path such as \"/meta/seq\" for a nested one)",
            crate::model::words::plural(missed.unnumbered, "record")
        )
    } else {
        return None;
    };
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "the `[oracles] sequence` oracle read no number in the whole run, so it judged \
             nothing (a server with gaps or reordered records reads the same): {reading}"
        )),
    })
}

/// Violations of the `[oracles] sequence` oracle on records without its `per` field, when
/// no record of the run, of any kind, carried that field
/// ([`ExpectCounts::sequence_scoped`](crate::model::ExpectCounts::sequence_scoped)) while
/// some carried the number (a misspelled `per = "sym"` where the records say `symbol`):
/// every record's number ran as one sequence, which interleaved symbols break on every
/// switch. The script's reading, no race: unreadable, whatever else broke beside them
/// (said, to be judged once `per` is fixed: charged to the server, the misread breaks
/// would send a hunt after them).
pub(super) fn sequence_per_misnamed(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    let per = plan.oracles.sequence_per.as_deref()?;
    let field = plan.oracles.sequence.as_deref()?;
    let (numbered, scoped) = reports.iter().fold((0u64, 0u64), |(n, s), r| {
        let c = &r.counters.expect;
        (n + c.sequence_numbered, s + c.sequence_scoped)
    });
    let total: u64 = by_oracle.values().sum();
    let unscoped = format!("(no {per})");
    let breaks =
        |v: &&Violation| v.oracle == OracleKind::Ordering && v.expected.ends_with(&unscoped);
    let kept = reports.iter().flat_map(|r| &r.violations);
    let misread = kept.clone().filter(breaks).count() as u64;
    let others = kept.filter(|v| !breaks(v)).count();
    if total == 0 || numbered == 0 || scoped > 0 || misread == 0 {
        return None;
    }
    let besides = match others {
        0 => String::new(),
        n => format!(
            " ({} besides them, of other kinds, to judge again once it is fixed)",
            crate::model::words::plural(n as u64, "violation")
        ),
    };
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "the `[oracles] sequence` per field {per:?} was on no record of the run ({numbered} \
             record{} numbered at {field:?}), so every record's number ran as one sequence, and \
             its breaks are the script's reading, not the server's order{besides}: point \
             `per` at the field that names each sequence (a symbol, a channel), or leave it \
             out for one sequence per connection",
            plural(numbered),
        )),
    })
}
