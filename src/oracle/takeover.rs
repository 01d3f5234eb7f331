//! Takeovers: a "newest connection wins" server keeps one session per token by ending the
//! older session when the token connects again (a Close 4409 "session replaced"). Declared
//! in `[oracles] reject.replaced`, such a close is the server's policy: counted, what the
//! ended connection's script still expected refused, never a violation. Undeclared, it
//! reads as a lost answer (a completeness violation); when its code or reason reads as a
//! takeover, the verdict's hint says how to declare it.

use super::undeclared;
use crate::model::{Attempt, Cause, ConnReport, Outcome, Plan};

/// Words of a close reason that say "another connection took over" (lowercase; matched
/// anywhere in it).
const TAKEOVER_WORDS: [&str; 8] = [
    "replaced",
    "another session",
    "another connection",
    "logged in elsewhere",
    "signed in elsewhere",
    "superseded",
    "taken over",
    "takeover",
];

/// Words of a refusal that say a session of the token is still held (lowercase; matched
/// anywhere in it).
const HELD_WORDS: [&str; 9] = [
    "already active",
    "already connected",
    "already logged in",
    "already in use",
    "already open",
    "already exists",
    "session exists",
    "duplicate session",
    "session in use",
];

/// Whether a refusal says the token's session is still held: a close `code` (when one)
/// that echoes HTTP 409 Conflict (`4409`, `3409`), or refusal text (a close reason, an
/// in-band error record) saying so ("session already active", "already connected").
pub fn reads_as_held(code: Option<u16>, text: &str) -> bool {
    let text = text.to_lowercase();
    code.is_some_and(|c| (3000..=4999).contains(&c) && c % 1000 == 409)
        || HELD_WORDS.iter().any(|w| text.contains(w))
}

/// Whether `answer`, the server's Close `code` that ended an attempt, says in its words
/// that a session is still held ([`HELD_WORDS`]): a refusal of the newcomer.
fn says_held(answer: Option<&crate::model::Answer>, code: u16) -> bool {
    answer
        .filter(|a| a.cause == Cause::ServerClose(code))
        .is_some_and(|a| {
            let body = a.body.to_lowercase();
            HELD_WORDS.iter().any(|w| body.contains(w))
        })
}

/// Whether a close `code` with `reason` reads as a takeover: an application or library
/// code (3000-4999) that echoes HTTP 409 Conflict (`4409`, `3409`), or any code a server
/// sends whose reason says so ("session replaced", "logged in elsewhere": servers also
/// say it with 1000 or 1008).
pub fn reads_as_takeover(code: u16, reason: &str) -> bool {
    let reason = reason.to_lowercase();
    let says_so = TAKEOVER_WORDS.iter().any(|w| reason.contains(w));
    ((3000..=4999).contains(&code) && code % 1000 == 409)
        || ((1000..=4999).contains(&code) && says_so)
}

/// The note on the connections the server ended by a declared takeover
/// ([`Attempt::is_replaced`]): how many, and with which codes. `None` when none was.
pub fn replaced_note(reports: &[ConnReport]) -> Option<String> {
    let by = super::verdict::causes_of(reports, Attempt::is_replaced);
    let replaced: u64 = by.values().sum();
    (replaced > 0).then(|| {
        let codes: Vec<String> = by.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
        format!(
            "the server ended {replaced} connection{} because another connection of the same \
             token or user took over ({}, declared in `reject.replaced`): its way of keeping \
             one session per token or user, counted, and what their scripts still expected \
             is counted as refused, not as violations",
            if replaced == 1 { "" } else { "s" },
            codes.join(", ")
        )
    })
}

/// The note on server closes that read as a takeover ([`reads_as_takeover`]) and that the
/// scenario does not declare in `reject.replaced` (nor as shedding): how many, with which
/// codes and reasons, and the `[oracles] reject` that would declare them. `None` when
/// there were none.
pub fn undeclared_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let by = takeover_closes(plan, reports);
    if by.is_empty() {
        return None;
    }
    let reject = &plan.oracles.session.reject;
    let (attempts, seen) = undeclared::seen(&by);
    let declare = undeclared::declaration(reject, "replaced", &reject.replaced, &by);
    Some(format!(
        "the server closed {attempts} connection{} in a way that reads as a takeover by \
         another connection of the same token ({seen}): if it ends the older session when a \
         token connects again (\"newest connection wins\"), {declare}, and what their scripts \
         still expected counts as refused",
        if attempts == 1 { "" } else { "s" },
    ))
}

/// The close codes of [`undeclared_note`]'s closes, ascending: what a calibration reads
/// as the target's takeover policy. Empty when there were none.
pub fn undeclared_codes(plan: &Plan, reports: &[ConnReport]) -> Vec<u16> {
    // A map by code: its keys come ascending, once each.
    takeover_closes(plan, reports).keys().copied().collect()
}

/// The server closes, by code, that read as a takeover and that the scenario declares
/// neither as one nor as shedding: of accepted attempts (their reason in
/// [`ConnReport::closed_after_acceptance`]) and of attempts that failed before acceptance
/// (their reason in [`ConnReport::answer`]). Only connections whose token, or whose
/// user's, another connection of the plan presents too ([`Plan::sessions_shared`]): one
/// alone was taken over by nobody, whatever its close says. Not a connection refused over
/// the declared exclusivity limit ([`super::shedding::over_the_limit`]): never accepted
/// while its session had the limit's connections, it was the newcomer turned away, not an
/// older session another took over (the limit's own note says how to declare it).
fn takeover_closes(plan: &Plan, reports: &[ConnReport]) -> undeclared::ByCode {
    let over = super::shedding::over_the_limit(plan, reports);
    let shared = plan.sessions_shared();
    let token_of: std::collections::HashMap<u32, u32> =
        plan.conns.iter().map(|c| (c.id, c.token)).collect();
    let alone = |r: &ConnReport| {
        token_of
            .get(&r.id)
            .is_some_and(|t| !shared.get(*t as usize).copied().unwrap_or(true))
    };
    let mut by = undeclared::ByCode::new();
    for r in reports
        .iter()
        .filter(|r| !alone(r) && !over.contains(&r.id))
    {
        for a in &r.attempts {
            let Some(Cause::ServerClose(code)) = a.cause else {
                continue;
            };
            let answer = match a.outcome {
                _ if a.replaced || a.declared_shed || a.is_shed() => continue,
                Outcome::Accepted if !a.shed_after_acceptance() => &r.closed_after_acceptance,
                // Turned away before acceptance saying a session is held ("already
                // connected"): the newcomer refused, not an older session taken over.
                Outcome::Failed if says_held(r.answer.as_ref(), code) => continue,
                Outcome::Failed => &r.answer,
                _ => continue,
            };
            // The connection's first such close holds the reason.
            undeclared::count(&mut by, code, answer.as_ref(), reads_as_takeover);
        }
    }
    by
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_session_is_read_from_the_code_or_the_words() {
        assert!(reads_as_held(Some(4409), ""));
        assert!(reads_as_held(Some(1000), "Session already active"));
        assert!(reads_as_held(
            None,
            r#"{"type":"error","message":"already connected"}"#
        ));
        assert!(!reads_as_held(Some(4401), "unauthorized"));
        assert!(!reads_as_held(Some(1008), "policy"));
        assert!(!reads_as_held(
            None,
            r#"{"type":"error","message":"bad token"}"#
        ));
    }

    #[test]
    fn a_takeover_is_read_from_the_code_or_the_reason() {
        for (code, reason, want) in [
            (4409, "", true),
            (3409, "", true),
            (4000, "Session replaced", true),
            (4001, "logged in elsewhere", true),
            (4002, "superseded by a newer connection", true),
            (4003, "another session took over", true),
            (4000, "rate limit exceeded", false),
            (4401, "unauthorized", false),
            // A standard code says it only with its reason (the hint then says to move a
            // 1008 out of `close`).
            (1008, "session replaced", true),
            (1000, "logged in elsewhere", true),
            (1008, "", false),
            (1000, "", false),
            (1409, "", false),
        ] {
            assert_eq!(reads_as_takeover(code, reason), want, "{code} {reason:?}");
        }
    }
}
