//! In-band pings a scenario does not answer. Many servers ping in their own messages
//! (`{"type":"ping"}`, Pusher's `pusher:ping`) and close a client that does not answer
//! (a 4000 "ping timeout", Pusher's 4201 "Pong reply not received"). Undeclared, those
//! closes cut scripts mid-way, and at a steady age they look like a lifetime or idle
//! policy, which declaring would make a clean run of connections the client itself let
//! die. When the close reasons say so, the hint says to answer the pings (`[[answer]]`).

use crate::model::{Cause, ConnReport};

/// Words of a close reason that blame a missed answer to a ping (lowercase, anywhere).
const PING_WORDS: [&str; 5] = ["ping", "pong", "heartbeat", "keepalive", "keep-alive"];

/// Whether a close reason says the client missed answering a ping (`PING_WORDS`).
pub fn says_ping_missed(reason: &str) -> bool {
    let reason = reason.to_lowercase();
    PING_WORDS.iter().any(|w| reason.contains(w))
}

/// The note on connections the server closed mid-script with a reason that blames a missed
/// ping ([`says_ping_missed`]): how many, with which code and reason, and `[[answer]]`
/// that answers them. `None` when there were none.
pub fn unanswered_note(reports: &[ConnReport]) -> Option<String> {
    let mut closed = 0u64;
    let mut first: Option<(u16, &str)> = None;
    for r in reports {
        let Some(answer) = &r.closed_after_acceptance else {
            continue;
        };
        let Cause::ServerClose(code) = answer.cause else {
            continue;
        };
        let reason = answer.body.trim();
        let cut = r
            .attempts
            .iter()
            .any(|a| a.cause == Some(answer.cause.clone()) && super::idle::closed_mid_script(a));
        if cut && says_ping_missed(reason) {
            closed += 1;
            first.get_or_insert((code, reason));
        }
    }
    let (code, reason) = first?;
    Some(format!(
        "the server closed {} mid-script blaming a missed ping (close {code} {reason:?}): \
         if it pings in its own messages, answer them with `[[answer]]` (`on` = its ping's \
         kind, `send` = its pong); if the client must beat on its own (Phoenix's \
         `heartbeat` on topic `phoenix`, STOMP's lone end of line, `send_text = \"\\n\"`), \
         send it through the script's pauses (a `repeat` of a shorter `think` and that \
         send); not a lifetime or idle declaration, which would \
         excuse connections the client let die",
        crate::model::words::plural(closed, "connection"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_that_blames_a_missed_ping_is_told_apart() {
        for reason in [
            "ping timeout",
            "Pong reply not received",
            "heartbeat missed",
        ] {
            assert!(says_ping_missed(reason), "{reason}");
        }
        for reason in ["idle timeout", "max connection age", "going away", ""] {
            assert!(!says_ping_missed(reason), "{reason}");
        }
    }
}
