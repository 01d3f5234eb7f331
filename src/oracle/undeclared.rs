//! Server closes that read as a policy the scenario does not declare (rate limiting,
//! a takeover): counted by code for a verdict's hint, which then spells out the
//! `[oracles] reject` entry that would declare them.

use crate::model::{Answer, Attempt, Cause, ConnReport, RejectSpec};
use std::collections::BTreeMap;

/// The attempts closed with one code.
#[derive(Debug, Default)]
pub(super) struct Closed {
    pub(super) attempts: u64,
    /// The first close reason the server gave with this code (empty when none).
    pub(super) reason: String,
}

/// Closes by code, as the hint lists them.
pub(super) type ByCode = BTreeMap<u16, Closed>;

/// Counts an attempt closed with `code`, its reason read from `answer` (what the server
/// said with that close, if it is the one kept) when `reads_as(code, reason)`.
pub(super) fn count(
    by: &mut ByCode,
    code: u16,
    answer: Option<&Answer>,
    reads_as: fn(u16, &str) -> bool,
) {
    let reason = answer
        .filter(|answer| answer.cause == Cause::ServerClose(code))
        .map_or("", |answer| answer.body.trim());
    if !reads_as(code, reason) {
        return;
    }
    let closed = by.entry(code).or_default();
    closed.attempts += 1;
    if closed.reason.is_empty() {
        closed.reason = reason.to_string();
    }
}

/// `server_close_4429 ×3, reason "Too many requests"; …`, and how many attempts in all.
pub(super) fn seen(by: &ByCode) -> (u64, String) {
    let attempts = by.values().map(|c| c.attempts).sum();
    let seen: Vec<String> = by
        .iter()
        .map(|(code, c)| match c.reason.as_str() {
            "" => format!("server_close_{code} ×{}", c.attempts),
            reason => format!("server_close_{code} ×{}, reason {reason:?}", c.attempts),
        })
        .collect();
    (attempts, seen.join("; "))
}

/// How to declare the codes of `by` under `key` of `[oracles] reject` (`declared`: what
/// it lists now): add them, or move those `close` lists (a refusal of the token) there.
pub(super) fn declaration(reject: &RejectSpec, key: &str, declared: &[u16], by: &ByCode) -> String {
    let mut listed_under_key = declared.to_vec();
    listed_under_key.extend(by.keys().filter(|c| !declared.contains(c)));
    let in_close: Vec<u16> = by
        .keys()
        .copied()
        .filter(|c| reject.close.contains(c))
        .collect();
    if in_close.is_empty() {
        return format!("add `{key} = {listed_under_key:?}` to `[oracles] reject`");
    }
    let close: Vec<u16> = reject
        .close
        .iter()
        .copied()
        .filter(|c| !in_close.contains(c))
        .collect();
    format!(
        "move {in_close:?} from `close` (a refusal of the token) to `{key}`: `[oracles] reject \
         = {{ close = {close:?}, {key} = {listed_under_key:?} }}`"
    )
}

/// The server closes of `reports`' attempts that `unlisted` keeps (an attempt and its
/// close, a code `[oracles] reject` does not list), by code, each with the reason the
/// server gave (whatever it says).
pub(super) fn unlisted_closes<'r>(
    reports: impl Iterator<Item = &'r ConnReport>,
    unlisted: impl Fn(&Attempt, &Cause) -> bool,
) -> ByCode {
    let mut by = ByCode::new();
    for r in reports {
        for a in &r.attempts {
            let Some(cause @ Cause::ServerClose(code)) = &a.cause else {
                continue;
            };
            if unlisted(a, cause) {
                count(&mut by, *code, r.answer.as_ref(), |_, _| true);
            }
        }
    }
    by
}

/// `reject.close` with the codes of `by` it does not list yet added: the list that
/// declares them as refusals.
pub(super) fn close_with(reject: &RejectSpec, by: &ByCode) -> Vec<u16> {
    let mut close = reject.close.clone();
    close.extend(by.keys().filter(|c| !reject.close.contains(c)));
    close
}
