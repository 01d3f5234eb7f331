//! Cross-connection oracles over every attempt of a run: exclusivity, liveness, rejection
//! hygiene and placement consistency (docs/race-patterns.md maps each to its race).
//!
//! They judge the client's view, so each rule is stated so that only a server fault can
//! break it: exclusivity needs a causal witness (both connections served a frame after the
//! other was accepted), and liveness treats any attempt whose fate is unknown (aborted, timed
//! out, reset mid-handshake) as possibly still live for the grace period.

use crate::model::{
    Answer, Attempt, BadToken, Cause, ConnPlan, ConnReport, Forge, Involved, LenientAcceptance,
    OracleKind, Outcome, Placement, Plan, Policy, Probe, RejectPolicy, SessionKey, StatedClaims,
    Violation, EXPIRY_SKEW,
};
use std::collections::{BTreeMap, BTreeSet};

/// Slack on the exclusivity witness (see `exclusivity`).
const WITNESS_SLACK_US: u64 = 1_000;

/// One attempt with the plan facts the rules need.
struct Seen<'a> {
    conn: &'a ConnPlan,
    attempt: &'a Attempt,
    jti: &'a str,
    /// The token's subject: its user, whom a server may keep one session for whatever
    /// token each connection presents.
    sub: &'a str,
    forge: Option<&'a Forge>,
    /// What the server said last before a Close that ended the attempt unaccepted
    /// ([`ConnReport::said_before_close`]); kept for a connection of one attempt only,
    /// whose it surely is.
    said_before_close: Option<&'a str>,
    /// The server's Close ended the attempt in words that read as a takeover, declared or
    /// not ([`takeover_close`]).
    taken_over: bool,
}

/// Whether the server ended `attempt` with a Close that reads as a takeover
/// ([`super::takeover::reads_as_takeover`]: its code, or its reason, which
/// `closed_after_acceptance` keeps for the connection's first such close).
fn takeover_close(attempt: &Attempt, closed_after_acceptance: Option<&Answer>) -> bool {
    let Some(Cause::ServerClose(code)) = attempt.cause else {
        return false;
    };
    let reason = closed_after_acceptance
        .filter(|answer| answer.cause == Cause::ServerClose(code))
        .map_or("", |answer| answer.body.trim());
    super::takeover::reads_as_takeover(code, reason)
}

/// Every attempt of the run with its connection's plan and token.
fn seen<'a>(plan: &'a Plan, reports: &'a [ConnReport]) -> Vec<Seen<'a>> {
    let by_id: BTreeMap<u32, &ConnPlan> = plan.conns.iter().map(|c| (c.id, c)).collect();
    reports
        .iter()
        .filter_map(|r| by_id.get(&r.id).map(|c| (r, *c)))
        .filter_map(|(report, conn)| {
            let token = plan.tokens.get(conn.token as usize)?;
            let said_before_close = match report.attempts.len() {
                1 => report.said_before_close.as_deref(),
                _ => None,
            };
            Some(report.attempts.iter().map(move |attempt| Seen {
                conn,
                attempt,
                jti: &token.jti,
                sub: &token.sub,
                forge: token.forge.as_ref(),
                said_before_close,
                taken_over: takeover_close(attempt, report.closed_after_acceptance.as_ref()),
            }))
        })
        .flatten()
        .collect()
}

/// Whether the session oracles judge attempt `a` at all: not when the server shed it under
/// load ([`Attempt::is_shed`]: "not now" says nothing about the token), nor when it answered
/// the upgrade with an HTTP status that is no refusal (a 200 page: the server does not
/// speak WebSocket there, a protocol fault the verdict reports).
fn judged(a: &Attempt) -> bool {
    !a.is_shed() && !a.cause.as_ref().is_some_and(Cause::is_http_fault)
}

/// Runs every enabled session oracle, including the verdicts of the probe phase.
pub fn check(plan: &Plan, reports: &[ConnReport], probes: &[Probe]) -> Vec<Violation> {
    let seen = seen(plan, reports);
    let rules = &plan.oracles.session;
    let unread = unread(plan, &seen);
    // Liveness and consistency leave out what the server did not judge: shed attempts,
    // protocol faults, and tokens sent where the server does not read them.
    let read = |s: &Seen<'_>| {
        judged(s.attempt) && (unread.is_empty() || !unread.contains(&placement_of(plan, s)))
    };
    let mut out = Vec::new();
    let mut by_jti: BTreeMap<&str, Vec<&Seen<'_>>> = BTreeMap::new();
    let mut by_sub: BTreeMap<&str, Vec<&Seen<'_>>> = BTreeMap::new();
    for s in &seen {
        by_jti.entry(s.jti).or_default().push(s);
        // A forged token holds no session of its subject's: a user's by valid tokens only.
        if s.forge.is_none() {
            by_sub.entry(s.sub).or_default().push(s);
        }
    }
    // Tokens the server took again after the run: whatever refused them before, it was
    // no rule of taking each token once.
    let taken_again: BTreeSet<&str> = probes
        .iter()
        .filter(|p| p.accepted)
        .map(|p| p.jti.as_str())
        .collect();
    if let Some(max) = rules.max_live {
        let by_key = match rules.per {
            SessionKey::Token => &by_jti,
            SessionKey::User => &by_sub,
        };
        // The server ends older sessions itself somewhere in the run (a takeover close).
        let takes_over = seen.iter().any(|s| s.attempt.replaced || s.taken_over);
        for group in by_key.values() {
            out.extend(exclusivity(plan, group, max, takes_over));
        }
    }
    for (jti, group) in &by_jti {
        if let Some(liveness) = rules.liveness {
            let reused = taken_again.contains(jti);
            let user = group
                .first()
                .filter(|s| s.forge.is_none())
                .and_then(|s| by_sub.get(s.sub))
                .map_or(group.as_slice(), Vec::as_slice);
            out.extend(self::liveness(
                plan,
                (group, user),
                &read,
                (&liveness, reused),
            ));
        }
    }
    out.extend(
        seen.iter()
            .filter(|s| judged(s.attempt))
            .filter_map(|s| hygiene(plan, s)),
    );
    if rules.consistency {
        let read: Vec<&Seen<'_>> = seen.iter().filter(|s| read(s)).collect();
        out.extend(consistency(plan, &read));
    }
    out.extend(
        probes
            .iter()
            .filter(|p| !p.accepted)
            .filter_map(|p| leaked(plan, &seen, p)),
    );
    out
}

/// A probe refused after every connection with its token had ended: a leaked session.
/// Not one past its token's `exp`, refused by token policy ([`token_policy`]) or closed
/// with a rate limit's words ([`Probe::rate_limited`]).
fn leaked(plan: &Plan, seen: &[Seen<'_>], probe: &Probe) -> Option<Violation> {
    // Only a clean refusal says "still held"; a probe that could not connect at all
    // (server gone, reset, timeout) proves nothing about sessions.
    // A refusal that says the session is still held ([`Probe::held`]) says so whatever
    // the scenario declares, and is no "who are you".
    let reject = &plan.oracles.session.reject;
    let refused = probe.held || probe.cause.as_ref().is_some_and(|c| reject.is_clean(c));
    // A token past its `exp` is refused for that alone: no session is proven held.
    if !refused
        || probe.expired
        || probe.rate_limited
        || (!probe.held && probe.cause.as_ref().is_some_and(token_policy))
    {
        return None;
    }
    let forge = seen
        .iter()
        .find(|s| s.jti == probe.jti)
        .and_then(|s| s.forge);
    if probe.at_us >= valid_until_us(plan, forge) {
        return None;
    }
    let last = seen
        .iter()
        .filter(|s| s.jti == probe.jti)
        .max_by_key(|s| s.attempt.started_us)?;
    let cause = probe
        .cause
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_else(|| "no answer".into());
    let ended = seen
        .iter()
        .filter(|s| s.jti == probe.jti)
        .filter_map(|s| s.attempt.ended_us)
        .max()
        .unwrap_or(0);
    Some(violation(
        plan,
        OracleKind::Liveness,
        last,
        ended,
        format!(
            "after the run, jti {} (no longer used) is accepted again",
            probe.jti
        ),
        format!("probe refused with {cause}: the server still holds a session for it"),
        &[last],
    ))
}

/// Whether refusing a token the server has already served is its token policy, not a
/// session it still holds: "who are you" (HTTP 401 or 403, a close 4401 or 4403, the
/// declared refusal message). A server that takes each token once (replay protection on
/// `jti`, RFC 7519 section 4.1.7) or revokes it when its session closes says that; one
/// that still holds a session answers "in use" (409). A close 1008 says "policy" without
/// saying which, and stays a held session.
///
/// Only these codes, never one the scenario lists in `reject.close`: a listed code may as
/// well be the server's "in use" (a 4409), and taking it for token policy would hide a
/// leaked session.
pub fn token_policy(cause: &Cause) -> bool {
    matches!(
        cause,
        Cause::Http(401 | 403) | Cause::ServerClose(4401 | 4403) | Cause::RefusedInBand(_)
    )
}

/// Until when (µs from the run start) a token is surely still valid: tokens are minted
/// just before the run starts, so `exp` lands about `ttl` (or the shifted `exp`) later; a
/// second of margin covers the minting lead and clock granularity. A refusal after that is
/// expiry, not a liveness fault.
fn valid_until_us(plan: &Plan, forge: Option<&Forge>) -> u64 {
    let exp_us = match forge {
        Some(Forge::Shift {
            exp_s: Some(exp), ..
        }) => (*exp).max(0) as u64 * 1_000_000,
        _ => plan.auth.ttl.as_micros() as u64,
    };
    exp_us.saturating_sub(EXPIRY_SKEW.as_micros() as u64)
}

/// Whether a correct server may refuse a token (a forged or time-shifted one): its
/// refusal is never a liveness fault. Whether accepting it is a fault is [`refusal`].
fn must_reject(forge: Option<&Forge>) -> bool {
    forge.is_some_and(Forge::must_reject)
}

/// What accepting a token means for a correct server under the scenario's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A valid token (or one not yet judged, like an expiring shift): accepting it is fine.
    Optional,
    /// Every correct server refuses it: accepting it is a violation.
    Required,
    /// Refusing it is the server's policy: accepting it is a lenient acceptance.
    Policy(BadToken),
    /// Refusing it is the server's policy, and the scenario declares that policy strict:
    /// accepting it is a violation.
    Declared,
}

/// Whether the server may refuse token `token` (an index into `plan.tokens`) presented
/// `at_us` after the run's start: a forged token, or a time shift then invalid (each
/// refused by a correct server, or by its policy). A valid token, one stampede does not
/// know, or one not judged at that instant: `false`.
pub fn may_be_refused(plan: &Plan, token: u32, at_us: u64) -> bool {
    let forge = plan
        .tokens
        .get(token as usize)
        .and_then(|t| t.forge.as_ref());
    refusal(plan, forge, at_us) != Refusal::Optional
}

/// What `forge` asks of a correct server: catalogue entries by their policy for the
/// scenario's `[auth]` (see [`BadToken::policy_for`]) and its `reject.policy`; expired and
/// not-yet-valid shifts are required refusals.
fn refusal(plan: &Plan, forge: Option<&Forge>, at_us: u64) -> Refusal {
    let stated = StatedClaims {
        aud: plan.auth.aud.is_some(),
        iss: plan.auth.iss.is_some(),
    };
    let reject_policy = plan.oracles.session.reject.policy;
    match forge {
        None => Refusal::Optional,
        Some(Forge::Bad { name }) => match (name.policy_for(stated), reject_policy) {
            (Policy::ServerPolicy, RejectPolicy::Lenient) => Refusal::Policy(*name),
            (Policy::ServerPolicy, RejectPolicy::Strict) => Refusal::Declared,
            _ => Refusal::Required,
        },
        Some(f @ Forge::Shift { .. }) => match validity(f, at_us) {
            Validity::Invalid => Refusal::Required,
            Validity::Valid | Validity::Edge => Refusal::Optional,
        },
        Some(f) if f.must_reject() => Refusal::Required,
        Some(_) => Refusal::Optional,
    }
}

/// Uncertainty around a time-shifted token's validity edges: tokens are minted a little
/// before the run starts and JWT times are whole seconds (rounded down), so a shift's
/// edge falls up to this much before its nominal instant in run time.
const EDGE_US: i64 = EXPIRY_SKEW.as_micros() as i64;

/// Whether a time-shifted token is valid when presented `at_us` after the run start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Validity {
    Valid,
    /// Expired (`exp` passed) or not yet valid (`nbf` ahead): a correct server refuses it.
    Invalid,
    /// Within [`EDGE_US`] before `exp` or `nbf`: either answer is correct.
    Edge,
}

/// A shift's validity at `at_us` (µs from the run start; the shift counts from the
/// minting instant, rounded down to the second, just before it). RFC 7519: a token is
/// expired from `exp` on and not valid before `nbf`. Other forges are judged without time.
fn validity(forge: &Forge, at_us: u64) -> Validity {
    let Forge::Shift { exp_s, nbf_s, .. } = forge else {
        return Validity::Valid;
    };
    let at = i64::try_from(at_us).unwrap_or(i64::MAX);
    let us = |s: i64| s.saturating_mul(1_000_000);
    let mut v = Validity::Valid;
    if let Some(exp) = exp_s.map(us) {
        if at >= exp {
            return Validity::Invalid;
        }
        if at > exp.saturating_sub(EDGE_US) {
            v = Validity::Edge;
        }
    }
    if let Some(nbf) = nbf_s.map(us) {
        if at < nbf.saturating_sub(EDGE_US) {
            return Validity::Invalid;
        }
        if at < nbf {
            v = Validity::Edge;
        }
    }
    v
}

/// The lenient acceptances of a run, sorted by when the attempt began: every accepted
/// attempt whose token is a bad-token entry a correct server may accept by its policy
/// ([`BadToken::policy_for`] under the plan's `[auth] aud`/`iss`). Empty when the scenario
/// declares `reject.policy = "strict"`: then [`check`] reports those as violations.
pub fn lenient(plan: &Plan, reports: &[ConnReport]) -> Vec<LenientAcceptance> {
    let mut out: Vec<LenientAcceptance> = seen(plan, reports)
        .iter()
        .filter(|s| s.attempt.outcome == Outcome::Accepted)
        .filter_map(|s| match refusal(plan, s.forge, s.attempt.started_us) {
            Refusal::Policy(entry) => Some(LenientAcceptance {
                entry,
                conn: s.conn.id,
                user: s.conn.user,
                group: plan.group_name(s.conn),
                jti: s.jti.to_string(),
                at_ms: s.attempt.started_us as f64 / 1000.0,
            }),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    out
}

/// How long after a newer connection's acceptance a takeover may still be ending the older
/// one: a server that greets the newcomer first and then tells the older session it was
/// replaced (a last message, then its close) serves both for that moment, by its policy,
/// not by a race; so does one that answers a request the older session sent before the
/// newcomer came (the answer, then the close). Declared in `[oracles] reject.replaced`, or
/// said by the close itself ([`super::takeover::reads_as_takeover`]: a 4409, a reason
/// "session replaced"), undeclared: the verdict then notes the policy and how to declare
/// it.
const HANDOVER_US: u64 = 1_000_000;

/// Whether `older` was ended by a takeover close (declared, or reading as one) within
/// [`HANDOVER_US`] of another connection's acceptance at `newer_accepted_us`: what it was
/// served meanwhile is the handover, no witness of two sessions at once. So is an older
/// session whose own script closed it in that time, before the server's takeover close
/// could reach it, on a server that ends older sessions so elsewhere in the run
/// (`takes_over`): its last answer was owed before the newcomer came. A server that never
/// does gets no such grace.
fn handed_over(older: &Seen<'_>, newer_accepted_us: u64, takes_over: bool) -> bool {
    let closed_first = takes_over && matches!(older.attempt.cause, Some(Cause::ClientClose(_)));
    (older.attempt.replaced || older.taken_over || closed_first)
        && older
            .attempt
            .ended_us
            .is_some_and(|end| end <= newer_accepted_us.saturating_add(HANDOVER_US))
}

/// `takes_over`: the server ended some older session of the run with a takeover close
/// ([`handed_over`]).
fn exclusivity(plan: &Plan, group: &[&Seen<'_>], max: u32, takes_over: bool) -> Option<Violation> {
    // Served: from acceptance to the last frame the server sent on it. Read times come
    // from different tasks, so a frame sent before the other connection's acceptance can
    // be read a little after it: only service at least WITNESS_SLACK_US past the *other*
    // connection's acceptance counts (never trimmed against a connection's own).
    let served: Vec<(usize, u64, u64)> = group
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.attempt.accepted_us?, s.attempt.last_frame_us?)))
        .collect();
    let witnesses = |&(j, acc_j, last_j): &(usize, u64, u64)| -> Vec<(usize, u64)> {
        // Everyone accepted no later than j who was served past j's acceptance, while j
        // was served past theirs: each pair is a causal witness, and since every one of
        // them was served past acc_j + slack, they witness each other too.
        let mut set: Vec<(usize, u64)> = served
            .iter()
            .filter(|&&(i, acc_i, last_i)| {
                i != j
                    && acc_i <= acc_j
                    && last_i > acc_j.saturating_add(WITNESS_SLACK_US)
                    && last_j > acc_i.saturating_add(WITNESS_SLACK_US)
                    // Either may be the older session the takeover ended: the two
                    // welcomes may reach us in the other order than the server sent them.
                    && !handed_over(group[i], acc_j, takes_over)
                    && !handed_over(group[j], acc_i, takes_over)
            })
            .map(|&(i, acc_i, _)| (i, acc_i))
            .collect();
        set.push((j, acc_j));
        // Report order, as the rest of the oracles list connections.
        set.sort_by_key(|&(i, _)| i);
        set
    };
    let (at, set) = served
        .iter()
        .map(|x| (x.1, witnesses(x)))
        .max_by_key(|(at, set)| (set.len(), std::cmp::Reverse(*at)))?;
    if set.len() <= max as usize {
        return None;
    }
    let involved: Vec<&Seen<'_>> = set.iter().map(|&(i, _)| group[i]).collect();
    let first = involved[0];
    Some(violation(
        plan,
        OracleKind::Exclusivity,
        first,
        at,
        match plan.oracles.session.per {
            SessionKey::Token => format!(
                "at most {max} connection(s) served at once for jti {}",
                first.jti
            ),
            SessionKey::User => format!(
                "at most {max} connection(s) served at once for user {}",
                first.sub
            ),
        },
        format!(
            "{} connections each served after the other was accepted{}",
            set.len(),
            ended_older(&involved).unwrap_or_else(|| one_after_the_other(&involved))
        ),
        &involved,
    ))
}

/// When the server itself closed the older of the connections over the limit, with a code
/// of its own, within [`HANDOVER_US`] of a newer one's acceptance: a note that it may be
/// ending the older session on purpose (a takeover its close does not name: a 1000
/// "bye"), and how to declare it, rather than the advice to allow several sessions. `None`
/// otherwise.
fn ended_older(involved: &[&Seen<'_>]) -> Option<String> {
    let newest = involved
        .iter()
        .filter_map(|s| s.attempt.accepted_us)
        .max()?;
    // The older one the server closed, its code, and how long after the newest's acceptance.
    let (older, code, after_us) = involved.iter().find_map(|s| {
        let Some(Cause::ServerClose(code)) = s.attempt.cause else {
            return None;
        };
        let after = s.attempt.ended_us?.checked_sub(newest)?;
        (s.attempt.accepted_us? < newest && after <= HANDOVER_US).then_some((s, code, after))
    })?;
    let after_ms = after_us / 1_000;
    Some(format!(
        "; the server closed conn {} (close {code}) {after_ms} ms after the newest was \
         accepted: if it ends an older session when its token connects again (a takeover), \
         what it served meanwhile is that handover: declare the close ([oracles] reject = \
         {{ replaced = [{code}] }})",
        older.conn.id
    ))
}

/// A gap between one connection's acceptance and the opening of another that no
/// handshake race spans (a check-then-act window is the server's handshake, a few ms).
const SEQUENTIAL_US: u64 = 50_000;

/// When the connections over the limit were opened one after the other (the last one
/// opened at least [`SEQUENTIAL_US`] after the first was accepted), a note saying so:
/// such a server may allow several connections per token by design, a policy the scenario
/// can state, rather than lose a race. Empty otherwise.
fn one_after_the_other(involved: &[&Seen<'_>]) -> String {
    let first_accepted = involved.iter().filter_map(|s| s.attempt.accepted_us).min();
    let last_opened = involved.iter().map(|s| s.attempt.started_us).max();
    match (first_accepted, last_opened) {
        (Some(accepted), Some(opened)) if opened >= accepted.saturating_add(SEQUENTIAL_US) => {
            format!(
                "; the last was opened {} ms after the first was accepted, one after the other: \
                 if the target allows several connections per token by design, say so in the \
                 scenario ([oracles] exclusive = {{ max_live = N }} or false)",
                (opened - accepted) / 1_000
            )
        }
        _ => String::new(),
    }
}

/// Liveness over one jti's attempts (`group`); `read`: whether a refusal is the server's
/// judgement of the token (see [`check`]). Every attempt of the token's user (`user`, the
/// attempts of every token with its `sub`, `group`'s among them) counts as a possible
/// holder: a server may keep one session per user, whatever token each connection of the
/// user presents.
/// `taken_again`: the server accepted the token after the run (its probe), or any attempt
/// of it after a refusal: then a refusal of it once served is no token policy (a server
/// that takes each token once takes it never again), and is judged like any other.
fn liveness(
    plan: &Plan,
    (group, user): (&[&Seen<'_>], &[&Seen<'_>]),
    read: &dyn Fn(&Seen<'_>) -> bool,
    (spec, taken_again): (&crate::model::LivenessSpec, bool),
) -> Vec<Violation> {
    let held_after = HeldAfter {
        unclean_us: spec.grace.as_micros() as u64,
        clean_us: spec.cleanup.as_micros() as u64,
    };
    let mut out = Vec::new();
    for r in group.iter().filter(|s| {
        read(s)
            && s.attempt.outcome == Outcome::Rejected
            && !must_reject(s.forge)
            && !s.attempt.token_expired
            && s.attempt.ended_us.unwrap_or(u64::MAX) < valid_until_us(plan, s.forge)
    }) {
        // The server decided somewhere between sending the request and our seeing the answer.
        let from = r.attempt.started_us;
        let to = r.attempt.ended_us.unwrap_or(u64::MAX);
        let holder = user
            .iter()
            .find(|o| !std::ptr::eq(**o, *r) && possibly_live(o.attempt, from, to, held_after));
        let served_before = group.iter().any(|o| {
            !std::ptr::eq(*o, *r)
                && o.attempt.outcome == Outcome::Accepted
                && o.attempt.started_us <= from
        });
        let accepted_after = group
            .iter()
            .any(|o| o.attempt.outcome == Outcome::Accepted && o.attempt.started_us > from);
        let policy = served_before
            && !taken_again
            && !accepted_after
            && r.attempt.cause.as_ref().is_some_and(token_policy);
        if holder.is_none() && !policy {
            let answer = cause_text(r.attempt);
            // The witness: the refusal, and the last earlier session with this jti (when it
            // ended shows how long after its end the token was still refused).
            let previous = group
                .iter()
                .filter(|o| !std::ptr::eq(**o, *r) && o.attempt.started_us <= from)
                .max_by_key(|o| o.attempt.ended_us.unwrap_or(u64::MAX));
            let mut involved = vec![*r];
            involved.extend(previous.copied());
            // An earlier refusal was no session to have ended (an abandoned or unanswered
            // handshake may have been one).
            let session = previous.filter(|p| p.attempt.outcome != Outcome::Rejected);
            let after = match session.and_then(|p| p.attempt.ended_us) {
                Some(end) => format!(
                    " {:.1} ms after the last session ended",
                    from.saturating_sub(end) as f64 / 1000.0
                ),
                None => String::new(),
            };
            out.push(violation(
                plan,
                OracleKind::Liveness,
                r,
                from,
                format!("a valid token whose jti {} is not live is accepted", r.jti),
                format!(
                    "refused with {answer}{after}; no other connection with this jti, nor of \
                     its user, could be live"
                ),
                &involved,
            ));
        }
    }
    out
}

/// How long after its end a session may still be held, µs: after an unclean end (the
/// liveness `grace`) and after a clean close (its `cleanup`).
#[derive(Clone, Copy)]
struct HeldAfter {
    unclean_us: u64,
    clean_us: u64,
}

/// Whether the server could legitimately have held `o`'s session at some instant of
/// `[from, to]`: `o` had begun by `to` and had not surely ended by `from`.
fn possibly_live(o: &Attempt, from: u64, to: u64, held_after: HeldAfter) -> bool {
    // Refused itself after its upgrade, it may have held the session while it was open,
    // if it came first: two racing logins both turned away cannot each have held it for
    // the other (the user was left with none).
    if o.started_us > to || (o.outcome == Outcome::Rejected && o.started_us >= from) {
        return false;
    }
    let held = o.outcome == Outcome::Accepted || o.upgraded_us.is_some() || o.indeterminate();
    if !held {
        return false;
    }
    match o.ended_us {
        None => true,
        Some(end) if o.clean_end => end.saturating_add(held_after.clean_us) > from,
        Some(end) => end.saturating_add(held_after.unclean_us) > from,
    }
}

fn hygiene(plan: &Plan, s: &Seen<'_>) -> Option<Violation> {
    let a = s.attempt;
    let reject = &plan.oracles.session.reject;
    let refusal = refusal(plan, s.forge, a.started_us);
    let bad = refusal != Refusal::Optional;
    let problem = match (a.outcome, &a.cause, refusal) {
        (Outcome::Accepted, _, Refusal::Required) => "accepted",
        (Outcome::Accepted, _, Refusal::Declared) => "accepted, against the strict policy",
        (Outcome::Rejected, Some(cause @ crate::model::Cause::Http(_)), _)
            if !clean_status(plan, s, cause) =>
        {
            "refused with an unexpected status"
        }
        (Outcome::Failed, Some(crate::model::Cause::ServerClose(1011)), _) => {
            "closed with 1011 (internal error)"
        }
        // We gave up and closed before the server answered (it may wait for an init
        // message that never came, as graphql-transport-ws does for its init timeout):
        // the server was never judged, so there is nothing to blame it for.
        (Outcome::Failed, Some(crate::model::Cause::ClientClose(_)), _) => return None,
        (Outcome::Failed, _, _) if bad => "not refused cleanly",
        _ => return None,
    };
    let what = match s.forge {
        Some(f) if bad => format!("forged token ({})", forge_label(f)),
        _ => "token".to_string(),
    };
    let expected = format!("{what} refused with {}", reject.describe());
    Some(violation(
        plan,
        OracleKind::RejectionHygiene,
        s,
        a.started_us,
        expected,
        match s.said_before_close {
            // Why it closed, in the server's words (an in-band refusal not declared).
            Some(said) => format!("{problem}: {} after {said}", cause_text(a)),
            None => format!("{problem}: {}", cause_text(a)),
        },
        &[s],
    ))
}

/// Whether `s`'s attempt, refused at the upgrade with the HTTP status of `cause`, was
/// refused cleanly: a status `reject.http` lists; a request too large to read (an
/// oversized token, [`crate::model::Cause::is_too_large`]), as clean as any listed
/// refusal; or, unless the policy is strict, a bad token's 4xx that states a refusal (a
/// 400 for a malformed one): the server's own words, which the verdict's hint says how to
/// list ([`super::refusal::undeclared_refusal`]).
fn clean_status(plan: &Plan, s: &Seen<'_>, cause: &crate::model::Cause) -> bool {
    let reject = &plan.oracles.session.reject;
    let listed = matches!(cause, crate::model::Cause::Http(code) if reject.http.contains(code));
    let own_words = reject.policy == RejectPolicy::Lenient
        && super::refusal::undeclared_refusal(plan, s.conn.token, s.attempt, cause);
    listed || cause.is_too_large() || own_words
}

fn consistency<'a>(plan: &Plan, seen: &[&'a Seen<'a>]) -> Vec<Violation> {
    // forge label → placement label → (accepted, refused) attempts
    let mut verdicts: BTreeMap<String, BTreeMap<String, Vec<&Seen<'_>>>> = BTreeMap::new();
    for s in seen.iter().copied().filter(|s| s.forge.is_some()) {
        // A time-shifted token's verdict changes with time: compare it only among
        // attempts on the same side of its edges, and not at all near them.
        let validity = s
            .forge
            .map_or(Validity::Valid, |f| validity(f, s.attempt.started_us));
        if validity == Validity::Edge {
            continue;
        }
        if matches!(s.attempt.outcome, Outcome::Accepted | Outcome::Rejected) {
            let mut forge = s.forge.map(forge_label).unwrap_or_default();
            if matches!(s.forge, Some(Forge::Shift { .. })) {
                forge.push_str(if validity == Validity::Valid {
                    " while valid"
                } else {
                    " once invalid"
                });
            }
            let placement = placement_label(plan.placement_of(s.conn));
            verdicts
                .entry(forge)
                .or_default()
                .entry(placement)
                .or_default()
                .push(s);
        }
    }
    let mut out = Vec::new();
    for (forge, by_placement) in verdicts {
        let accepted_at =
            |v: &Vec<&Seen<'_>>| v.iter().any(|s| s.attempt.outcome == Outcome::Accepted);
        let acc: Vec<&String> = by_placement
            .iter()
            .filter(|(_, v)| accepted_at(v))
            .map(|(p, _)| p)
            .collect();
        let rej: Vec<&String> = by_placement
            .iter()
            .filter(|(_, v)| !accepted_at(v))
            .map(|(p, _)| p)
            .collect();
        if acc.is_empty() || rej.is_empty() {
            continue;
        }
        let involved: Vec<&Seen<'_>> = by_placement
            .values()
            .filter_map(|v| v.first().copied())
            .collect();
        let first = involved[0];
        out.push(violation(
            plan,
            OracleKind::Consistency,
            first,
            first.attempt.started_us,
            format!("token {forge} gets one verdict whatever its placement"),
            format!("accepted via {acc:?}, refused via {rej:?}"),
            &involved,
        ));
    }
    out
}

/// The placements (`header`, `query`, `subprotocol`...) the server does not read tokens
/// from, in order: every valid (unforged) token sent there, at least one, was refused
/// cleanly (a refusal `[oracles] reject` lists), while a valid token sent another way was
/// accepted. Their refusals say nothing about the tokens: liveness and consistency leave
/// those connections out, and the verdict's hint says so.
pub fn unread_placements(plan: &Plan, reports: &[ConnReport]) -> Vec<String> {
    unread(plan, &seen(plan, reports))
}

fn unread(plan: &Plan, seen: &[Seen<'_>]) -> Vec<String> {
    let reject = &plan.oracles.session.reject;
    // placement → (valid attempts judged, of which refused cleanly, of which accepted)
    let mut by: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for s in seen
        .iter()
        .filter(|s| s.forge.is_none() && judged(s.attempt))
    {
        if !matches!(
            s.attempt.outcome,
            Outcome::Accepted | Outcome::Rejected | Outcome::Failed
        ) {
            continue;
        }
        let e = by.entry(placement_of(plan, s)).or_default();
        e.0 += 1;
        let clean = s.attempt.outcome == Outcome::Rejected
            && s.attempt.cause.as_ref().is_some_and(|c| reject.is_clean(c));
        e.1 += u64::from(clean);
        e.2 += u64::from(s.attempt.outcome == Outcome::Accepted);
    }
    let accepted_somewhere = by.values().any(|e| e.2 > 0);
    if !accepted_somewhere {
        return Vec::new();
    }
    by.into_iter()
        .filter(|(_, (judged, clean, _))| *judged > 0 && clean == judged)
        .map(|(p, _)| p)
        .collect()
}

/// The placement label of an attempt's connection.
fn placement_of(plan: &Plan, s: &Seen<'_>) -> String {
    placement_label(plan.placement_of(s.conn))
}

fn forge_label(f: &Forge) -> String {
    match f {
        Forge::Catalogue => "catalogue".into(),
        Forge::Bad { name } => name.to_string(),
        Forge::Shift {
            exp_s,
            nbf_s,
            iat_s,
        } => {
            let part = |k: &str, v: &Option<i64>| v.map(|v| format!("{k}{v:+}s"));
            let parts: Vec<String> = [part("exp", exp_s), part("nbf", nbf_s), part("iat", iat_s)]
                .into_iter()
                .flatten()
                .collect();
            format!("shift({})", parts.join(","))
        }
    }
}

/// The placement's kind (`header`, `query`, `subprotocol`...), robust to new variants.
fn placement_label(p: &Placement) -> String {
    match serde_json::to_value(p) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Object(m)) => m.keys().next().cloned().unwrap_or_default(),
        _ => "unknown".into(),
    }
}

fn cause_text(a: &Attempt) -> String {
    a.cause
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_else(|| "no answer".into())
}

fn violation(
    plan: &Plan,
    oracle: OracleKind,
    who: &Seen<'_>,
    at_us: u64,
    expected: String,
    seen: String,
    involved: &[&Seen<'_>],
) -> Violation {
    Violation {
        oracle,
        conn: who.conn.id,
        user: who.conn.user,
        group: plan.group_name(who.conn),
        jti: who.jti.to_string(),
        at_ms: at_us as f64 / 1000.0,
        expected,
        seen,
        correlation: None,
        involved: involved
            .iter()
            .map(|s| Involved {
                conn: s.conn.id,
                jti: s.jti.to_string(),
                planned_start_ms: s.conn.start.as_secs_f64() * 1000.0,
                attempt_start_ms: s.attempt.started_us as f64 / 1000.0,
                answer: format!("{:?}: {}", s.attempt.outcome, cause_text(s.attempt))
                    .to_lowercase(),
            })
            .collect(),
        learned: false,
        unreadable: false,
        ended: None,
        window_ms: None,
        late_ms: None,
        after_request_ms: None,
        conn_end_ms: None,
        cut_by_run_ms: None,
        step: None,
        misread: None,
    }
}

/// Whether the run exercised the race the session oracles look for (a "sometimes"
/// property): tokens shared by several connections, and how many of them had two
/// handshakes in flight at the same moment. Shared tokens that never overlapped leave the
/// exclusivity verdict inconclusive. Attempts the server shed ([`Attempt::is_shed`]) are
/// left out: "not now" came before its session logic, so they exercised no race.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Coverage {
    pub shared_tokens: usize,
    pub overlapping_tokens: usize,
    /// Overlapping tokens whose attempts could show whether the server served two at once
    /// (see `could_witness`). Absent from result files written before it: 0.
    #[serde(default)]
    pub witnessable_tokens: usize,
    /// Shared tokens whose handshakes overlapped only with attempts the server shed: the
    /// collisions load shedding took from the run (not in `overlapping_tokens`). Absent
    /// from result files written before it: 0.
    #[serde(default)]
    pub shed_tokens: usize,
}

impl Coverage {
    /// Tokens were meant to collide, and none did; or they did, but nothing that came back
    /// could tell whether the server served two connections at once.
    pub fn inconclusive(&self) -> bool {
        self.shared_tokens > 0 && (self.overlapping_tokens == 0 || self.witnessable_tokens == 0)
    }
}

/// Whether one of a token's attempts started while `max_live` others of it were accepted
/// and not yet ended: the limit was full, and the server had to answer a connection over it.
fn at_the_limit(attempts: &[&Attempt], max_live: u32) -> bool {
    attempts
        .iter()
        .any(|a| live_as_it_started(attempts, a) >= max_live)
}

/// How many of `attempts` (one token's), other than `a`, were accepted and not yet ended
/// when `a` started: the sessions a server holding a per-token limit had to count.
pub(crate) fn live_as_it_started(attempts: &[&Attempt], a: &Attempt) -> u32 {
    attempts
        .iter()
        .filter(|o| !std::ptr::eq(**o, a))
        .filter(|o| {
            o.accepted_us.is_some_and(|at| at <= a.started_us)
                && o.ended_us.is_none_or(|end| end > a.started_us)
        })
        .count() as u32
}

/// Whether the attempts of one token could witness exclusivity either way. Fewer than two
/// accepted: the server decided (it refused the rest). Two accepted: a close or reset from
/// the server shows it let one go; two sessions alive at once, the earlier-accepted one
/// served a frame after the later's acceptance, show whether it still served both (the
/// later one served too) or kept the earlier (the later never served). The later one
/// served while the earlier heard nothing more (its script asked nothing) cannot tell a
/// server that served both from one that let the earlier go without a word. Two accepted that then
/// heard nothing and were never let go (one exchange each, then our own close), or whose
/// sessions we ended before the other began, could have been served both at once or not:
/// the oracle cannot tell.
fn could_witness(attempts: &[&Attempt]) -> bool {
    let accepted: Vec<(&Attempt, u64)> = attempts
        .iter()
        .filter_map(|a| Some((*a, a.accepted_us?)))
        .collect();
    if accepted.len() < 2 {
        return true;
    }
    let served_after = |a: &Attempt, other_acc: u64| {
        a.last_frame_us
            .is_some_and(|l| l > other_acc.saturating_add(WITNESS_SLACK_US))
    };
    // Replaced: the server's declared takeover close crossed our own.
    let let_go = |a: &Attempt| {
        a.ended_us.is_some()
            && (a.replaced
                || matches!(
                    a.cause,
                    Some(Cause::ServerClose(_) | Cause::InvalidClose(_) | Cause::Reset)
                ))
    };
    let ended_before = |a: &Attempt, other_acc: u64| a.ended_us.is_some_and(|e| e <= other_acc);
    accepted.iter().enumerate().any(|(i, &(a, acc_a))| {
        accepted.iter().skip(i + 1).any(|&(b, acc_b)| {
            let overlapped = !ended_before(a, acc_b) && !ended_before(b, acc_a);
            let_go(a)
                || let_go(b)
                // The earlier-accepted one served past the later's acceptance: whether the
                // later was served too then says which the server kept. The later one is
                // served past the earlier's acceptance whenever it is served at all, which
                // says nothing of the earlier's session.
                || (overlapped && {
                    let (first, second_acc) = if acc_a <= acc_b { (a, acc_b) } else { (b, acc_a) };
                    served_after(first, second_acc)
                })
        })
    })
}

/// The note on an exclusivity limit counted per token that no token could put to the
/// test: no token is presented by two connections, while some user has several, each
/// with a token of its own (`connections_per_user = 3`, `token = "per-connection"`). A
/// server whose limit is per user is judged with `exclusive = { per = "user" }`. `None`
/// otherwise.
pub fn per_token_note(plan: &Plan) -> Option<String> {
    let max = plan.oracles.session.max_live?;
    if plan.oracles.session.per != SessionKey::Token {
        return None;
    }
    let per_token = conns_per_key(plan, |slot| slot);
    // A user of a group with several connections (`connections_per_user`), each
    // presenting a valid token of its own.
    let mut per_user: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    for c in &plan.conns {
        let valid = plan
            .tokens
            .get(c.token as usize)
            .is_some_and(|t| t.forge.is_none());
        if valid {
            *per_user.entry((c.group, c.user)).or_default() += 1;
        }
    }
    let most = per_user.values().copied().max().unwrap_or(0);
    if per_token.values().any(|n| *n > 1) || most <= max as usize {
        return None;
    }
    Some(format!(
        "exclusivity counts sessions per token, and no token was presented by two \
         connections, while a user had up to {most}, each with a token of its own: its \
         limit of {max} was never put to the test; if the server's limit is per user, \
         `[oracles] exclusive = {{ max_live = {max}, per = \"user\" }}` judges it"
    ))
}

/// The note on exclusivity violations of tokens from a source (`[auth] tokens`: a list,
/// a file, a command) that several connections presented: a shared credential (a
/// password, an API key, a list shorter than its users, reused in turn) is judged one
/// session at a time, and a server that lets one credential hold many sessions does so
/// by its own policy. `None` for minted tokens or no such violation.
pub fn shared_credential_note(plan: &Plan, kept: &[Violation]) -> Option<String> {
    plan.auth.tokens.as_ref()?;
    let shared: BTreeSet<&str> = kept
        .iter()
        .filter(|v| v.oracle == OracleKind::Exclusivity)
        .map(|v| crate::model::planned_jti(&v.jti))
        .filter(|label| label.contains('#'))
        .collect();
    let first = shared.iter().next()?;
    let more = shared.len() - 1;
    let others = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(format!(
        "the exclusivity violations are on tokens of [auth] tokens ({first}{others}) that \
         several connections presented (a source with fewer tokens than connections reuses \
         them in turn): if the server lets one credential hold several sessions (a shared \
         password or API key), that is its policy, judged with [oracles] exclusive = false"
    ))
}

/// How many connections of the plan present a token under each key (`key_of` a token
/// slot: the slot itself, or its subject's [`Plan::subject_slots`]).
fn conns_per_key(plan: &Plan, key_of: impl Fn(u32) -> u32) -> BTreeMap<u32, usize> {
    let mut per_key = BTreeMap::new();
    for c in &plan.conns {
        *per_key.entry(key_of(c.token)).or_default() += 1;
    }
    per_key
}

/// How far the run exercised the race on its shared tokens (see [`Coverage`]); with
/// `exclusive = { per = "user" }`, on its users with several connections (counted as
/// tokens).
pub fn coverage(plan: &Plan, reports: &[ConnReport]) -> Coverage {
    // What the limit counts sessions by: the token slot, or its subject's first slot.
    let subjects = plan.subject_slots();
    let key_of = |slot: u32| match plan.oracles.session.per {
        SessionKey::Token => slot,
        SessionKey::User => subjects.get(slot as usize).copied().unwrap_or(slot),
    };
    let shared: Vec<u32> = conns_per_key(plan, key_of)
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(t, _)| *t)
        .collect();
    if plan.oracles.session.max_live.is_none() || shared.is_empty() {
        return Coverage::default();
    }
    let mut attempts_by_key: BTreeMap<u32, Vec<&Attempt>> = BTreeMap::new();
    for r in reports {
        attempts_by_key
            .entry(key_of(r.token))
            .or_default()
            .extend(&r.attempts);
    }
    let mut c = Coverage {
        shared_tokens: shared.len(),
        ..Coverage::default()
    };
    let max_live = plan.oracles.session.max_live.unwrap_or(1);
    for key in shared {
        let attempts = attempts_by_key.remove(&key).unwrap_or_default();
        let reached: Vec<&Attempt> = attempts.iter().copied().filter(|a| !a.is_shed()).collect();
        if max_live > 1 && at_the_limit(&reached, max_live) {
            // A limit above one is exercised by a connection that comes while it is full,
            // whenever its handshake ran: the server's answer to it is the judgement.
            c.overlapping_tokens += 1;
            c.witnessable_tokens += 1;
        } else if handshakes_overlap(&reached) {
            c.overlapping_tokens += 1;
            c.witnessable_tokens += usize::from(could_witness(&reached));
        } else if handshakes_overlap(&attempts) {
            c.shed_tokens += 1;
        }
    }
    c
}

/// Whether two of `attempts` had their handshakes in flight at the same moment: from the
/// request to the 101 (or the attempt's end; an unfinished one to the end of time).
fn handshakes_overlap(attempts: &[&Attempt]) -> bool {
    let mut windows: Vec<(u64, u64)> = attempts
        .iter()
        .map(|a| {
            (
                a.started_us,
                a.upgraded_us.or(a.ended_us).unwrap_or(u64::MAX),
            )
        })
        .collect();
    windows.sort_unstable();
    windows.windows(2).any(|w| w[1].0 < w[0].1)
}

#[cfg(test)]
mod tests;
