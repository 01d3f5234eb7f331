//! Explicit refusals: a server that answers a request it will not serve with a Close
//! frame carrying a refusal code (graphql-transport-ws closes 4401 on a `subscribe` sent
//! before its `connection_ack`) states its policy; a request dropped without a word is
//! the finding. The battery's early-send family judges by this ([`refused_by_close`]).

use crate::model::{OracleKind, Violation};

/// Whether a Close code the server sent is an explicit refusal: a protocol or policy
/// code (1002 protocol error, 1003 unsupported data, 1007 invalid payload, 1008 policy
/// violation, 1009 too big, 1010 extension) or an application code (3000-4999).
/// Not a refusal: 1000 and 1001 (a normal end says nothing about the request), 1005 and
/// 1006 (no code at all), 1011 (the server failed: a fault, not a policy), 1012-1014
/// (restart, try again later, bad gateway: transient, not an answer to the request).
pub fn is_refusal_code(code: u16) -> bool {
    matches!(code, 1002 | 1003 | 1007..=1010 | 3000..=4999)
}

/// The refusal code of a completeness violation whose connection ended with the server's
/// Close frame carrying an explicit refusal code ([`is_refusal_code`]) before any of the
/// awaited events came: the server answered the request with a refusal, it did not drop
/// it. `None` for anything else (events that came and then stopped, a reset, a timeout,
/// a close without a refusal code, another oracle).
///
/// Reads the witness text the engine writes for an ended stream (`nothing; then server
/// closed with 4401`, or `server closed with 4401 at step 2 of 3 (expect)` when no
/// expectation was pending).
pub fn refused_by_close(v: &Violation) -> Option<u16> {
    if v.oracle != OracleKind::Completeness {
        return None;
    }
    const CLOSED: &str = "server closed with ";
    let rest = match v.seen.split_once("; then ") {
        // Events of the awaited pattern came: the request was served, then cut off.
        Some((events, _)) if !events.starts_with("nothing") => return None,
        Some((_, end)) => end,
        None => v.seen.as_str(),
    };
    let code = rest.strip_prefix(CLOSED)?;
    let digits: String = code.chars().take_while(char::is_ascii_digit).collect();
    let code: u16 = digits.parse().ok()?;
    is_refusal_code(code).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completeness(seen: &str) -> Violation {
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
        }
    }

    #[test]
    fn an_explicit_close_before_any_event_is_a_refusal() {
        let v = completeness("nothing; then server closed with 4401");
        assert_eq!(refused_by_close(&v), Some(4401));
        let v = completeness("server closed with 1008 at step 2 of 3 (expect)");
        assert_eq!(refused_by_close(&v), Some(1008));
    }

    #[test]
    fn drops_faults_and_partial_answers_are_not_refusals() {
        for seen in [
            // The silent drop the early-send family looks for.
            "nothing; then timed out after 2s",
            "nothing; then server closed with 1000",
            "nothing; then server closed with 1011",
            "nothing; then server closed with 1013",
            "nothing; then server closed with invalid code 1006",
            "nothing; then connection lost (reset)",
            // Served, then cut: not a refusal of the request.
            "next; then server closed with 4401",
        ] {
            assert_eq!(refused_by_close(&completeness(seen)), None, "{seen}");
        }
        let mut other = completeness("nothing; then server closed with 4401");
        other.oracle = OracleKind::Liveness;
        assert_eq!(refused_by_close(&other), None);
    }
}
