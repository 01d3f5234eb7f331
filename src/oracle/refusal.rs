//! Explicit refusals: a server that answers a request it will not serve with a Close
//! frame carrying a refusal code (graphql-transport-ws closes 4401 on a `subscribe` sent
//! before its `connection_ack`) states its policy; a request dropped without a word is
//! the finding. The battery's early-send family judges by this ([`refused_by_close`]).
//! So does the acceptance judge for a bad token closed before acceptance with such a
//! code the scenario does not list ([`undeclared_note`] says how to list it), and rejection
//! hygiene for a bad token refused at the upgrade with an HTTP status that states a
//! refusal ([`is_refusal_status`]) but is not listed ([`undeclared_status_note`]), unless
//! `[oracles] reject.policy` is `"strict"`.

use super::undeclared;
use crate::model::{ConnReport, OracleKind, Outcome, Plan, Violation};

/// Whether a Close code the server sent is an explicit refusal: a protocol or policy
/// code (1002 protocol error, 1003 unsupported data, 1007 invalid payload, 1008 policy
/// violation, 1009 too big, 1010 extension) or an application code (3000-4999).
/// Not a refusal: 1000 and 1001 (a normal end says nothing about the request), 1005 and
/// 1006 (no code at all), 1011 (the server failed: a fault, not a policy), 1012-1014
/// (restart, try again later, bad gateway: transient, not an answer to the request).
pub fn is_refusal_code(code: u16) -> bool {
    matches!(code, 1002 | 1003 | 1007..=1010 | 3000..=4999)
}

/// Whether an HTTP status answering the upgrade states a refusal of the request: a 4xx
/// (RFC 9110 §15.5; RFC 6750 §3.1 answers a malformed credential 400 `invalid_request`
/// and a bad one 401 `invalid_token`), except those that say something other than "not
/// this request": 404 and 410 (no such path), 405 (no such method there), 408 (the
/// server timed out), 426 (another protocol) and 429 (too many requests: load, not the
/// token). A 5xx is a server fault, never a refusal.
pub fn is_refusal_status(status: u16) -> bool {
    (400..=499).contains(&status) && !matches!(status, 404 | 405 | 408 | 410 | 426 | 429)
}

/// Words of a close reason that say "who are you" rather than "not now" or "wrong
/// protocol" (lowercase; matched anywhere in the reason).
const AUTH_WORDS: [&str; 12] = [
    "auth",
    "token",
    "jwt",
    "credential",
    "forbidden",
    "signature",
    "expired",
    "login",
    "permission",
    "denied",
    "identity",
    "not allowed",
];

/// Whether a close reason (or a message) reads as an auth refusal (`unauthorized`,
/// `invalid token`, `Forbidden`, `jwt expired`...).
pub fn reads_as_auth_refusal(reason: &str) -> bool {
    let reason = reason.to_lowercase();
    AUTH_WORDS.iter().any(|w| reason.contains(w))
}

/// The refusal code of a completeness violation whose connection ended with the server's
/// Close frame carrying an explicit refusal code ([`is_refusal_code`]) before any of the
/// awaited events came: the server answered the request with a refusal, it did not drop
/// it. `None` for anything else (events that came and then stopped, a reset, a timeout,
/// a close without a refusal code, another oracle).
///
/// Reads the structured end the checker records on the violation ([`Violation::ended`]),
/// never the witness text, so rewording a witness cannot change a verdict. A violation
/// read from a file written before that field existed has no end recorded, and is no
/// refusal.
pub fn refused_by_close(v: &Violation) -> Option<u16> {
    if v.oracle != OracleKind::Completeness {
        return None;
    }
    let ended = v.ended?;
    // Events of the awaited pattern came: the request was served, then cut off.
    if ended.answered {
        return None;
    }
    ended.close_code.filter(|code| is_refusal_code(*code))
}

/// The note on bad tokens the server refused before accepting them with a Close code
/// `[oracles] reject` does not list (the acceptance judge reads a refusal code as a
/// refusal for a token the server may refuse, [`crate::oracle::Judge::server_close`]):
/// counted, no finding, and the declaration that would make them the scenario's contract
/// spelled out. `None` when there was none.
pub fn undeclared_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let reject = &plan.oracles.session.reject;
    let by = undeclared::unlisted_closes(reports.iter(), |a, cause| {
        let listed = reject.is_clean(cause) || reject.sheds(cause) || reject.replaces(cause);
        a.outcome == Outcome::Rejected && !listed
    });
    if by.is_empty() {
        return None;
    }
    let (attempts, seen) = undeclared::seen(&by);
    // A code the scenario gave its idle timeout (`idle_close`) cannot be a refusal too:
    // the server uses it for both, and only the other codes can be declared.
    let idle: Vec<u16> = by
        .keys()
        .copied()
        .filter(|c| super::idle::declared_idle_code(&plan.oracles, *c))
        .collect();
    let declarable: undeclared::ByCode =
        by.into_iter().filter(|(c, _)| !idle.contains(c)).collect();
    let state = if declarable.is_empty() {
        let plural = if idle.len() == 1 { "it is" } else { "they are" };
        format!("{plural} the idle timeout's here (`idle_close`), so a code stays undeclared")
    } else {
        let close = undeclared::close_with(reject, &declarable);
        format!("`[oracles] reject = {{ close = {close:?} }}` states it")
    };
    Some(format!(
        "the server refused {} before accepting them with a close code `[oracles] reject` \
         does not list ({seen}): read as its refusal, no finding; {state}",
        crate::model::words::plural(attempts, "bad token")
    ))
}

/// The note on bad tokens the server refused at the upgrade with an HTTP status that
/// states a refusal ([`is_refusal_status`]) but `[oracles] reject.http` does not list,
/// under the lenient policy (rejection hygiene reads those as the server's refusal):
/// counted, no finding, and the `http` list that would declare them spelled out. `None`
/// when there was none, under the strict policy (each is a violation then), or when no
/// attempt of the run got its 101 (nothing says the server speaks WebSocket there).
pub fn undeclared_status_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let reject = &plan.oracles.session.reject;
    if reject.policy == crate::model::RejectPolicy::Strict {
        return None;
    }
    // With no 101 anywhere, a 400 may be an HTTP server taking no upgrade at all: the
    // verdict says that, and this note would contradict it.
    let upgraded = reports
        .iter()
        .flat_map(|r| &r.attempts)
        .any(|a| a.upgraded_us.is_some());
    if !upgraded {
        return None;
    }
    let mut by: std::collections::BTreeMap<u16, u64> = Default::default();
    for r in reports {
        for a in &r.attempts {
            if let Some(cause @ crate::model::Cause::Http(status)) = &a.cause {
                if undeclared_refusal(plan, r.token, a, cause) {
                    *by.entry(*status).or_default() += 1;
                }
            }
        }
    }
    if by.is_empty() {
        return None;
    }
    let seen: Vec<String> = by.iter().map(|(s, n)| format!("http_{s} ×{n}")).collect();
    let mut http = reject.http.clone();
    http.extend(by.keys().filter(|s| !reject.http.contains(s)));
    // RFC 6750's words only where they apply: its malformed request is answered 400.
    let rfc = match by.contains_key(&400) {
        true => " (RFC 6750 answers a malformed token 400)",
        false => "",
    };
    Some(format!(
        "the server refused {} at the upgrade with an HTTP status `[oracles] reject` does not \
         list ({}): a refusal in its own words{rfc}, no finding; `[oracles] reject = {{ http \
         = {http:?} }}` states it",
        crate::model::words::plural(by.values().sum::<u64>(), "bad token"),
        seen.join(", ")
    ))
}

/// Whether attempt `a` of token `token`, refused with `cause`, is a bad token's refusal
/// in the server's own words: an HTTP status `reject.http` does not list that states a
/// refusal ([`is_refusal_status`]; a request too large to read is clean anyway), for a
/// token the server may refuse at that instant. The policy is the caller's to check.
pub fn undeclared_refusal(
    plan: &Plan,
    token: u32,
    a: &crate::model::Attempt,
    cause: &crate::model::Cause,
) -> bool {
    let crate::model::Cause::Http(status) = cause else {
        return false;
    };
    a.outcome == Outcome::Rejected
        && !plan.oracles.session.reject.http.contains(status)
        && !cause.is_too_large()
        && is_refusal_status(*status)
        && super::session::may_be_refused(plan, token, a.started_us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StreamEnded;

    fn completeness(seen: &str, ended: Option<StreamEnded>) -> Violation {
        Violation {
            oracle: OracleKind::Completeness,
            conn: 0,
            user: 0,
            group: "g".into(),
            jti: "j".into(),
            at_ms: 0.0,
            expected: "next complete".into(),
            seen: seen.into(),
            correlation: None,
            involved: Vec::new(),
            learned: false,
            unreadable: false,
            ended,
            window_ms: None,
            late_ms: None,
            after_request_ms: None,
            conn_end_ms: None,
            cut_by_run_ms: None,
            step: None,
            misread: None,
        }
    }

    /// The server's Close with `code` before any awaited event.
    fn closed(code: u16) -> Option<StreamEnded> {
        Some(StreamEnded {
            close_code: Some(code),
            answered: false,
        })
    }

    #[test]
    fn an_explicit_close_before_any_event_is_a_refusal() {
        let v = completeness("nothing; then server closed with 4401", closed(4401));
        assert_eq!(refused_by_close(&v), Some(4401));
        let v = completeness(
            "server closed with 1008 at step 2 of 3 (expect)",
            closed(1008),
        );
        assert_eq!(refused_by_close(&v), Some(1008));
    }

    #[test]
    fn drops_faults_and_partial_answers_are_not_refusals() {
        let lost = Some(StreamEnded {
            close_code: None,
            answered: false,
        });
        for (seen, ended) in [
            // The silent drop the early-send family looks for (a timeout: no end).
            ("nothing; then timed out after 2s", None),
            ("nothing; then server closed with 1000", closed(1000)),
            ("nothing; then server closed with 1011", closed(1011)),
            ("nothing; then server closed with 1013", closed(1013)),
            ("nothing; then server closed with invalid code 1006", lost),
            ("nothing; then connection lost (reset)", lost),
            // Served, then cut: not a refusal of the request.
            (
                "next; then server closed with 4401",
                Some(StreamEnded {
                    close_code: Some(4401),
                    answered: true,
                }),
            ),
        ] {
            assert_eq!(refused_by_close(&completeness(seen, ended)), None, "{seen}");
        }
        let mut other = completeness("nothing; then server closed with 4401", closed(4401));
        other.oracle = OracleKind::Liveness;
        assert_eq!(refused_by_close(&other), None);
    }

    /// The verdict follows the recorded end alone: any rewording of the witness (or a
    /// witness that names another code) leaves it as it was.
    #[test]
    fn the_witness_wording_cannot_change_the_verdict() {
        let wordings = [
            "nothing; then server closed with 4401",
            "no events; the peer sent Close(4401)",
            "nothing; then server closed with 1000",
            "next; then server closed with 4401",
            "server closed with 4401 at step 2 of 3 (expect)",
            "",
        ];
        let ends = [
            (closed(4401), Some(4401)),
            (closed(1008), Some(1008)),
            (closed(1000), None),
            (closed(1011), None),
            (
                Some(StreamEnded {
                    close_code: Some(4401),
                    answered: true,
                }),
                None,
            ),
            (None, None),
        ];
        for (ended, verdict) in ends {
            for seen in wordings {
                assert_eq!(
                    refused_by_close(&completeness(seen, ended)),
                    verdict,
                    "{seen:?} with {ended:?}"
                );
            }
        }
    }

    /// A violation read from a file written before the end was recorded (no `ended`)
    /// still reads, and is never taken for a refusal, whatever its witness says.
    #[test]
    fn an_old_violation_without_a_recorded_end_reads_and_is_no_refusal() {
        let old = r#"{"oracle":"completeness","conn":2,"user":1,"group":"g","jti":"j","at_ms":3.5,"expected":"next complete","seen":"nothing; then server closed with 4401"}"#;
        let v: Violation = serde_json::from_str(old).unwrap();
        assert_eq!(v.ended, None);
        assert_eq!(refused_by_close(&v), None);
        // And a new one round-trips its end.
        let new = completeness("anything", closed(4401));
        let text = serde_json::to_string(&new).unwrap();
        assert!(text.contains(r#""ended":{"close_code":4401}"#), "{text}");
        let back: Violation = serde_json::from_str(&text).unwrap();
        assert_eq!(refused_by_close(&back), Some(4401));
    }
}
