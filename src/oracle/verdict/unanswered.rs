//! Ignored past the greeting: the server let the connections in and sent what the scripts
//! wait for before their first request (an ack, a welcome: the `expect`s before the first
//! send), then answered not one request on any valid token's connection, and closed none.
//! Its unmet expectations say nothing about a race: the request path was never exercised,
//! most likely because the server does not speak the scenario's protocol or message format
//! (a request it does not recognise and silently drops). Never violations, never clean.
//!
//! Only total silence past the greeting counts. One answer anywhere (any message beyond
//! what the greeting can account for, any kind the greeting does not bring, an error
//! event), a close or reset from the server, or a violation of another oracle, and the run
//! is judged as usual: a server that answers some requests and drops others is the
//! dropped-events race this tool hunts. A kind no step names that came once on a stream
//! counts as the server speaking, though it names no request: another protocol's greeting
//! (ActionCable's `welcome` to a River script) cannot be told from the greeting of a
//! server that drops every request sent before it (the early-send race hitting every
//! connection), which must stay a finding. The one close that is no answer is the one that
//! says the server could not take what was sent as its protocol (RFC 6455 §7.4.1: 1002
//! protocol error, 1003 unsupported data, 1007 inconsistent data): a SignalR hub closing a
//! River handshake with 1002 "bad handshake" turned the message format away, it served
//! nothing.

use super::{plural, valid_token, Judgement};
use crate::model::{
    Action, Cause, ConnPlan, ConnReport, OracleKind, Outcome, Placement, Plan, Step, Verdict,
};
use std::collections::{BTreeMap, BTreeSet};

/// What the valid-token connections of a run got past their greeting.
#[derive(Debug, Default)]
struct PastGreeting {
    /// Requests sent (data frames of the script; an auth `first_message` left out).
    requests: u64,
    /// Whether anything came back past the greeting, or the server ended a connection
    /// otherwise than by refusing the message format
    /// ([`closed_for_protocol`](super::misreading::closed_for_protocol)).
    answered: bool,
    /// The server's closes that turned what was sent away as no message of its protocol
    /// ([`closed_for_protocol`](super::misreading::closed_for_protocol)), by code, and the
    /// first one's reason.
    format_refused: (BTreeMap<u16, u64>, Option<String>),
    /// Records that came of kinds no step names, naming no request
    /// ([`ExpectCounts::unclaimed`](crate::model::ExpectCounts::unclaimed)), and the kind
    /// of the first: no answers.
    unclaimed: (u64, Option<String>),
}

/// TARGET UNUSABLE when no request of any valid token's connection got any answer past
/// the greeting and the only violations are unmet expectations; `None` otherwise.
pub(super) fn ignored_requests(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    let unmet = by_oracle
        .get(&OracleKind::Completeness)
        .copied()
        .unwrap_or(0);
    let others = by_oracle.values().sum::<u64>() - unmet;
    if unmet == 0 || others > 0 {
        return None;
    }
    let past = past_greeting(plan, reports);
    if past.answered || past.requests == 0 {
        return None;
    }
    let requests = past.requests;
    let slow = match waited_past_deadlines(reports) {
        Some(ms) if ms < TOO_SOON_TO_TELL_MS => format!(
            ", or it answers slower than the scripts waited: every connection closed within \
             {ms:.0} ms of its deadline, too soon to see a late answer (a `think` after the \
             `expect`, or a longer `within`, tells)"
        ),
        _ => String::new(),
    };
    // Forged tokens' connections are judged by their refusals, whatever came after: said,
    // so that "closed no connection" does not read against the refusals the console shows.
    let forged = forged_refused(plan, reports);
    let (whose, judged) = match forged {
        0 => ("", String::new()),
        n => (
            " of a valid token's connection",
            format!(
                " (its refusals of the {} were judged, and broke nothing)",
                crate::model::words::plural(n, "forged token")
            ),
        ),
    };
    let closed = match &past.format_refused {
        (by_code, _) if by_code.is_empty() => "the server closed none of those connections".into(),
        (by_code, reason) => {
            let codes: Vec<String> = by_code
                .iter()
                .map(|(code, n)| format!("{code} ×{n}"))
                .collect();
            let reason = reason
                .as_ref()
                .map_or(String::new(), |r| format!(", the first with reason {r:?}"));
            format!(
                "the server closed connections only to say it could not take what was sent \
                 as its protocol ({}{reason})",
                codes.join(", ")
            )
        }
    };
    let heard = match &past.unclaimed {
        (0, _) => String::new(),
        (n, kind) => format!(
            "; all that came past it were {} of kinds no step names, naming no request{}: \
             keepalives or broadcasts, no answers",
            crate::model::words::plural(*n, "record"),
            kind.as_ref()
                .map_or(String::new(), |k| format!(" (the first: {k:?})"))
        ),
    };
    Some(Judgement {
        verdict: Verdict::TargetUnusable,
        hint: Some(format!(
            "no request{whose} got any answer past the handshake ({requests} sent, 0 \
             answered{heard}) and {closed}{judged}, so {unmet} \
             expectation{} went unmet: the request path was never exercised. The server may \
             not speak the scenario's protocol or message format (check the requests' fields \
             and type, the subprotocol, and [oracles] type_field), or it ignores these \
             requests{slow}; or it loses what comes too soon after the handshake on every \
             connection (a race whose window outlasts the script's first send: a `think` \
             before it tells)",
            plural(unmet)
        )),
    })
}

/// How many forged tokens' attempts the server refused (their refusals are what the
/// session oracles judge).
fn forged_refused(plan: &Plan, reports: &[ConnReport]) -> u64 {
    reports
        .iter()
        .filter(|r| !valid_token(plan, r.token))
        .flat_map(|r| &r.attempts)
        .filter(|a| a.outcome == Outcome::Rejected)
        .count() as u64
}

/// A connection that stayed open this long past an unmet expectation's deadline would
/// have seen an answer that was only slow (a server taking 1.3 s over a `within = "1s"`);
/// one closed sooner cannot tell a slow server from a deaf one.
const TOO_SOON_TO_TELL_MS: f64 = 1_000.0;

/// The longest any connection stayed open past the deadline of an expectation it left
/// unmet (a kept violation's instant), in ms: how long a late answer had to show. `None`
/// when a connection with one never ended (the run's end cut it: no bound), or none was
/// kept.
fn waited_past_deadlines(reports: &[ConnReport]) -> Option<f64> {
    let mut longest: Option<f64> = None;
    for r in reports {
        let unmet = r
            .violations
            .iter()
            .filter(|v| v.oracle == OracleKind::Completeness);
        for v in unmet {
            let ended_us = r.attempts.iter().filter_map(|a| a.ended_us).max()?;
            let waited = (ended_us as f64 / 1000.0 - v.at_ms).max(0.0);
            longest = Some(longest.map_or(waited, |l| l.max(waited)));
        }
    }
    longest
}

/// Adds up the requests of the valid-token connections and whether any got an answer.
fn past_greeting(plan: &Plan, reports: &[ConnReport]) -> PastGreeting {
    let by_id: BTreeMap<u32, &ConnPlan> = plan.conns.iter().map(|c| (c.id, c)).collect();
    let mut past = PastGreeting::default();
    for r in reports.iter().filter(|r| valid_token(plan, r.token)) {
        let Some(conn) = by_id.get(&r.id) else {
            // A report with no plan behind it: nothing says what its greeting was.
            past.answered = true;
            continue;
        };
        let greeting = greeting_of(plan, conn);
        let accepted = r
            .attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Accepted)
            .count() as u64;
        let upgraded = r
            .attempts
            .iter()
            .filter(|a| a.upgraded_us.is_some())
            .count() as u64;
        let auth_sends = match plan.placement_of(conn) {
            Placement::FirstMessage { .. } => upgraded,
            _ => 0,
        };
        let e = &r.counters.expect;
        // A heartbeat or a broadcast no step names answers no request.
        let received = r.counters.messages_received.saturating_sub(e.unclaimed);
        let beyond_greeting = received > greeting.messages * accepted;
        past.unclaimed.0 += e.unclaimed;
        if past.unclaimed.1.is_none() {
            past.unclaimed.1 = e.unclaimed_kind.as_deref().map(str::to_string);
        }
        let other_kinds = e
            .events
            .iter()
            .any(|(kind, tally)| tally.arrived > 0 && !greeting.kinds.contains(kind.as_str()));
        for a in r.attempts.iter().filter(|a| ended_by_server(a)) {
            match super::misreading::closed_for_protocol(plan, a) {
                Some(code) => {
                    *past.format_refused.0.entry(code).or_default() += 1;
                    if past.format_refused.1.is_none() {
                        past.format_refused.1 = r
                            .answer
                            .as_ref()
                            .filter(|answer| answer.cause == Cause::ServerClose(code))
                            .map(|answer| answer.body.trim().to_string())
                            .filter(|body| !body.is_empty());
                    }
                }
                None => past.answered = true,
            }
        }
        past.answered |= beyond_greeting || other_kinds || e.expectations_errored > 0;
        past.requests += r.counters.messages_sent.saturating_sub(auth_sends);
    }
    past
}

/// Whether the server (not the client, nor the run's end) ended an attempt after its
/// upgrade, accepted or not: a Close, a reset, a protocol fault, a frame too big, a send
/// it never took. That is an answer of a kind, judged as usual.
fn ended_by_server(a: &crate::model::Attempt) -> bool {
    a.upgraded_us.is_some()
        && !matches!(
            a.cause,
            None | Some(Cause::ClientClose(_) | Cause::Interrupted | Cause::Aborted { .. })
        )
}

/// What a connection waits for before its first request: the `expect`s before its first
/// send or ping (how many messages they take at least, and the kinds they name).
#[derive(Debug, Default)]
pub(super) struct Greeting<'a> {
    pub(super) messages: u64,
    pub(super) kinds: BTreeSet<&'a str>,
}

impl<'a> Greeting<'a> {
    /// Adds one `expect` of the greeting, by its pattern: at least one message, of the
    /// pattern's kinds.
    fn add(&mut self, pattern: &'a [crate::model::PatternItem]) {
        self.messages += 1;
        self.kinds.extend(pattern.iter().map(|i| i.event.as_str()));
    }
}

/// The greeting of `conn`: its script's or its explicit actions'. A `repeat` before the
/// first send counts once: fewer greeting messages only make an answer likelier to be seen.
fn greeting_of<'a>(plan: &'a Plan, conn: &'a ConnPlan) -> Greeting<'a> {
    if let Some(steps) = plan.script_of(conn) {
        return script_greeting(steps);
    }
    let mut greeting = Greeting::default();
    for action in &conn.actions {
        match action {
            Action::Expect(e) if !e.absent => greeting.add(&e.pattern),
            Action::Ping { .. } => break,
            a if a.is_send() => break,
            _ => {}
        }
    }
    greeting
}

/// The greeting of a script: its `expect`s before its first send or ping, a `repeat`'s
/// once.
pub(super) fn script_greeting(steps: &[Step]) -> Greeting<'_> {
    let mut greeting = Greeting::default();
    for step in crate::model::deep_steps(steps) {
        match step {
            Step::Expect(e) if !e.absent => greeting.add(&e.pattern),
            Step::Send { .. } | Step::SendText { .. } | Step::SendBinary { .. } => break,
            Step::Ping { .. } => break,
            _ => {}
        }
    }
    greeting
}
