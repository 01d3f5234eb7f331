//! Load shedding a scenario has not declared. A server that sheds load with a close code
//! of its own (a 4429 "Too many requests") before acceptance reads, undeclared, as a
//! failure (its script's expectations unmet), and, listed in `[oracles] reject.close`, as
//! a refusal of the token (liveness). When such a code, or its reason, reads as rate
//! limiting, the verdict's hint says how to declare it as shedding (`reject.shed`).

use super::undeclared;
use crate::model::{Cause, ConnReport, Outcome, Plan, SessionKey};
use std::collections::{BTreeMap, BTreeSet};

/// Words of a close reason that say "not now" (lowercase; matched anywhere in it).
const RATE_WORDS: [&str; 13] = [
    "rate limit",
    "rate-limit",
    "ratelimit",
    "rate_limit",
    "rate exceeded",
    "too many",
    "throttl",
    "slow down",
    // A connection cap: Pusher's 4100 "Over capacity".
    "capacity",
    "overload",
    "server busy",
    "too busy",
    "try again later",
];

/// Whether a close `code` with `reason` reads as rate limiting: an application or library
/// code (3000-4999) that echoes HTTP 429 (`4429`, `3429`), or whose reason says so ("Too
/// many requests", "rate limit exceeded"); or a 1008 (policy violation) whose reason says
/// so: a connection cap ("too many connections") is a limit, not a refusal of the token,
/// though 1008 alone is as often "who are you" and stays a refusal.
///
/// Not a reason that says only that the client repeated a message its protocol takes
/// once: graphql-transport-ws closes a second `connection_init` with 4429 "Too many
/// initialisation requests", the script's doing, not the server's load ("rate limit
/// exceeded during initialization" still says rate limit).
pub fn reads_as_rate_limit(code: u16, reason: &str) -> bool {
    let reason = reason.to_lowercase();
    let init = reason.contains("initialisation") || reason.contains("initialization");
    let other_words = RATE_WORDS
        .iter()
        .filter(|w| **w != "too many")
        .any(|w| reason.contains(w));
    if init && !other_words {
        return false;
    }
    let says_so = RATE_WORDS.iter().any(|w| reason.contains(w));
    match code {
        1008 => says_so,
        3000..=4999 => code % 1000 == 429 || says_so,
        _ => false,
    }
}

/// The note on closes before acceptance that read as rate limiting
/// ([`reads_as_rate_limit`]) and that the scenario does not declare as shedding: how many,
/// with which codes and reasons, and the `[oracles] reject` that would declare them.
/// `None` when there were none.
pub fn undeclared_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let over = over_the_limit(plan, reports);
    let (before, after) = (
        rate_limit_closes(reports, false, &over),
        rate_limit_closes(reports, true, &over),
    );
    let when = match (before.is_empty(), after.is_empty()) {
        (true, true) => return None,
        (false, true) => " before acceptance",
        (true, false) => " after accepting them",
        (false, false) => "",
    };
    let mut by = before;
    for (code, closed) in after {
        let into = by.entry(code).or_default();
        into.attempts += closed.attempts;
        if into.reason.is_empty() {
            into.reason = closed.reason;
        }
    }
    let reject = &plan.oracles.session.reject;
    let (attempts, seen) = undeclared::seen(&by);
    let declare = undeclared::declaration(reject, "shed", &reject.shed, &by);
    Some(format!(
        "the server closed {attempts} attempt{}{when} in a way that reads as rate limiting \
         ({seen}): if that is how it sheds load, {declare}, and they count as shed, like a \
         1013",
        if attempts == 1 { "" } else { "s" },
    ))
}

/// The close codes of [`undeclared_note`]: those the server closed attempts with, before
/// or after accepting them, in a way that reads as rate limiting, not declared as
/// shedding.
pub fn undeclared_codes(plan: &Plan, reports: &[ConnReport]) -> Vec<u16> {
    let over = over_the_limit(plan, reports);
    let mut codes: Vec<u16> = rate_limit_closes(reports, false, &over)
        .into_keys()
        .collect();
    codes.extend(rate_limit_closes(reports, true, &over).into_keys());
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// The server closes, by code, that read as rate limiting and were not counted as shed:
/// of attempts before acceptance, or (`accepted`) of accepted ones (a gateway's 4008
/// "Rate limited." to a client that sent too fast). Connections in `over` (refused over
/// the declared exclusivity limit, [`over_the_limit`]) are left out before acceptance.
fn rate_limit_closes(
    reports: &[ConnReport],
    accepted: bool,
    over: &BTreeSet<u32>,
) -> undeclared::ByCode {
    let mut by = undeclared::ByCode::new();
    for r in reports {
        if !accepted && over.contains(&r.id) {
            continue;
        }
        for a in &r.attempts {
            let Some(Cause::ServerClose(code)) = a.cause else {
                continue;
            };
            let answer = match a.outcome {
                _ if a.is_shed() || a.declared_shed => continue,
                // The connection's first such close holds its reason.
                Outcome::Accepted if accepted && !a.shed_after_acceptance() => {
                    r.closed_after_acceptance.as_ref()
                }
                Outcome::Rejected | Outcome::Failed if !accepted => r.answer.as_ref(),
                _ => continue,
            };
            undeclared::count(&mut by, code, answer, reads_as_rate_limit);
        }
    }
    by
}

/// The connections (report ids) the server never accepted while the declared exclusivity
/// limit (`[oracles] exclusive = { max_live = N }`) explains it: their session (their
/// token, or their user with `per = "user"`) had at least `N` other connections accepted
/// in the run. A "too many connections" close of such a one is that limit enforced, not
/// load shed. Empty without the declaration.
pub fn over_the_limit(plan: &Plan, reports: &[ConnReport]) -> BTreeSet<u32> {
    let session = &plan.oracles.session;
    let Some(max_live) = session.max_live else {
        return BTreeSet::new();
    };
    let key = |r: &ConnReport| match session.per {
        SessionKey::Token => r.token.to_string(),
        SessionKey::User => plan
            .tokens
            .get(r.token as usize)
            .map_or_else(|| r.token.to_string(), |t| t.sub.clone()),
    };
    let accepted = |r: &ConnReport| r.attempts.iter().any(|a| a.outcome == Outcome::Accepted);
    let mut served: BTreeMap<String, u32> = BTreeMap::new();
    for r in reports.iter().filter(|r| accepted(r)) {
        *served.entry(key(r)).or_default() += 1;
    }
    reports
        .iter()
        .filter(|r| !accepted(r) && !r.attempts.is_empty())
        .filter(|r| served.get(&key(r)).copied().unwrap_or(0) >= max_live)
        .map(|r| r.id)
        .collect()
}

/// The note on attempts the server closed before accepting them, over the declared
/// exclusivity limit ([`over_the_limit`]), with a code `[oracles] reject.close` does not
/// list: the limit enforced, and the declaration that reads them as its refusal. `None`
/// when there were none.
pub fn over_limit_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let over = over_the_limit(plan, reports);
    let reject = &plan.oracles.session.reject;
    let over_limit = reports.iter().filter(|r| over.contains(&r.id));
    let by = undeclared::unlisted_closes(over_limit, |a, cause| {
        a.outcome != Outcome::Accepted && !reject.is_clean(cause) && !reject.sheds(cause)
    });
    if by.is_empty() {
        return None;
    }
    let (attempts, seen) = undeclared::seen(&by);
    let close = undeclared::close_with(reject, &by);
    let session = &plan.oracles.session;
    let per = match session.per {
        SessionKey::Token => "token",
        SessionKey::User => "user",
    };
    Some(format!(
        "the server closed {} before accepting them ({seen}), each of a {per} that already \
         had {} accepted: the declared exclusivity limit (`max_live = {}` per {per}) \
         enforced, not load shed; `[oracles] reject = {{ close = {close:?} }}` reads them as \
         its refusal",
        crate::model::words::plural(attempts, "attempt"),
        crate::model::words::plural(session.max_live.unwrap_or(0), "connection"),
        session.max_live.unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiting_is_read_from_the_code_or_the_reason() {
        for (code, reason, want) in [
            (4429, "", true),
            (3429, "", true),
            (4008, "Too Many Requests", true),
            (4000, "rate limit exceeded", true),
            (4000, "Throttled", true),
            (4100, "Over capacity", true),
            (4000, "Server busy, try again later", true),
            (4000, "separate sessions", false),
            (4401, "unauthorized", false),
            // graphql-transport-ws: a second `connection_init`, the script's.
            (4429, "Too many initialisation requests", false),
            (4429, "too many initialization requests", false),
            (4429, "Rate limit exceeded during initialization", true),
            // A 1008 only by its reason (a connection cap): alone, or with an auth
            // reason, it refuses the token. 1013 sheds anyway.
            (1008, "too many connections", true),
            (1008, "", false),
            (1008, "invalid token", false),
            (1429, "", false),
        ] {
            assert_eq!(reads_as_rate_limit(code, reason), want, "{code} {reason:?}");
        }
    }
}
