//! The verdict on each connection attempt, and its record for the session oracles.
//!
//! An attempt is judged once: accepted (by the scenario's rule), rejected (an HTTP refusal
//! (4xx, 5xx), a configured close code, a close 1013 or a `reject.shed` code (try again
//! later: load shedding) or the declared refusal message before acceptance), failed
//! (anything else before acceptance: reset, 1011, an invalid close code, timeout, an HTTP
//! answer that is no refusal such as a 200...), aborted (we gave up on purpose), cut
//! (the run ended before the answer was known) or a client error (stampede's own fd or
//! port limit: never the target's failure).

use super::refusal::is_refusal_code;
use crate::model::{AcceptRule, Attempt, Cause, Outcome, SessionOracles};

/// Judges attempts by the scenario's rules. It writes only the attempt: the counters of
/// accepted, rejected, failed and aborted attempts are derived from the attempts when the
/// connection ends (`Counters::count_attempt`).
pub struct Judge<'a> {
    pub rules: &'a SessionOracles,
}

impl Judge<'_> {
    /// The 101 arrived.
    pub fn upgraded(&self, a: &mut Attempt, at_us: u64) {
        a.upgraded_us = Some(at_us);
        if self.rules.accepted == AcceptRule::Upgrade {
            self.accept(a, at_us);
        }
    }

    /// A data frame arrived; `event` is its kind when it had one. Returns true when this
    /// frame made the attempt accepted. A message of the kind `[oracles] reject.message`
    /// declares, before acceptance, refuses the attempt cleanly
    /// ([`Cause::RefusedInBand`]), as a listed close code would.
    pub fn data(&self, a: &mut Attempt, at_us: u64, event: Option<&str>) -> bool {
        a.last_frame_us = Some(at_us);
        if a.outcome != Outcome::Pending {
            return false;
        }
        if let (Some(kind), Some(refusal)) = (event, self.rules.reject.message.as_deref()) {
            if kind == refusal {
                self.refuse(a, Outcome::Rejected, Cause::RefusedInBand(kind.to_string()));
                return false;
            }
        }
        let accepts = match &self.rules.accepted {
            AcceptRule::Upgrade | AcceptRule::FirstFrame => true,
            AcceptRule::Message { event: wanted } => event == Some(wanted.as_str()),
        };
        if accepts {
            self.accept(a, at_us);
        }
        accepts
    }

    /// An error event (`[oracles] error_event`, of kind `kind`) arrived. Under the
    /// first-frame rule it accepts nothing: a server refusing a token often says why
    /// before its Close (`{"type":"error","code":"unauthorized"}`, then Close 1008), and
    /// an attempt it was the first word on is no longer one the server may have accepted
    /// unseen ([`Judge::ended`]). Under the other rules it is judged as any frame.
    pub fn error_frame(&self, a: &mut Attempt, at_us: u64, kind: &str) -> bool {
        if a.outcome == Outcome::Pending && self.rules.accepted == AcceptRule::FirstFrame {
            a.last_frame_us = Some(at_us);
            a.error_before_acceptance = true;
            return false;
        }
        self.data(a, at_us, Some(kind))
    }

    /// The server closed with `cause` ([`Cause::ServerClose`], or [`Cause::InvalidClose`]
    /// for a code RFC 6455 forbids on the wire, which is never a clean refusal). Before
    /// acceptance, a listed code, a 1013 or a `reject.shed` code (try again later: the
    /// server sheds load, [`RejectSpec::sheds`]) refuses the attempt; any other code fails
    /// it. A declared shed code is marked on the attempt ([`Attempt::declared_shed`]),
    /// after acceptance too: the server then shed an accepted connection
    /// ([`Attempt::shed_after_acceptance`]). A `reject.replaced` code (another connection
    /// of the token took over) is marked too ([`Attempt::replaced`]); before acceptance it
    /// rejects the attempt, which liveness then judges like any refusal (the connection
    /// that took over must have been there).
    ///
    /// `bad_token`: the attempt presented a token the server may refuse (a forged one,
    /// [`crate::oracle::session::may_be_refused`]). Before acceptance, such a token closed
    /// with a code that states a refusal ([`is_refusal_code`]: 1008, an application's own
    /// 3000–4999 such as graphql-transport-ws's 4401 and 4403) is refused in the server's
    /// own words even when `reject.close` does not list the code: the server did what it
    /// must, and its scenario has not yet said how (the verdict's hint says how to
    /// declare it). Not under `reject.policy = "strict"`, which holds the server to the
    /// declared ways. A valid token closed so fails, as before.
    ///
    /// [`RejectSpec::sheds`]: crate::model::RejectSpec::sheds
    /// [`is_refusal_code`]: crate::oracle::refusal::is_refusal_code
    pub fn server_close(&self, a: &mut Attempt, cause: Cause, bad_token: bool) {
        a.clean_end = true;
        let reject = &self.rules.reject;
        // Only a valid code: an invalid one is never a clean refusal, shedding or takeover.
        let valid = matches!(cause, Cause::ServerClose(_));
        let shed = valid && reject.sheds(&cause);
        let replaced = valid && reject.replaces(&cause);
        if matches!(a.outcome, Outcome::Pending | Outcome::Accepted) {
            a.declared_shed = shed && !cause.is_shed();
            a.replaced = replaced;
        }
        if a.outcome == Outcome::Pending {
            // Strict: only the declared ways are clean refusals.
            let refused_in_its_words = bad_token
                && reject.policy == crate::model::RejectPolicy::Lenient
                && matches!(cause, Cause::ServerClose(code) if is_refusal_code(code));
            if valid && (reject.is_clean(&cause) || shed || replaced || refused_in_its_words) {
                self.refuse(a, Outcome::Rejected, cause);
            } else {
                self.refuse(a, Outcome::Failed, cause);
            }
        }
    }

    /// The dial failed; an HTTP refusal (4xx, 5xx) is a rejection, the client's own limits
    /// are its own ([`Outcome::ClientError`]), anything else the target's failure: an HTTP
    /// answer that is no refusal (a 200 page, a redirect) too, for the server does not
    /// speak WebSocket there.
    pub fn dial_failed(&self, a: &mut Attempt, cause: Cause, rejected: bool, at_us: u64) {
        let outcome = if cause.is_client_side() {
            Outcome::ClientError
        } else if rejected && !cause.is_http_fault() {
            Outcome::Rejected
        } else {
            Outcome::Failed
        };
        self.refuse(a, outcome, cause);
        a.ended_us = Some(at_us);
    }

    /// The run ended (duration, Ctrl-C) while this attempt's answer was still unknown.
    pub fn cut(&self, a: &mut Attempt, at_us: u64) {
        self.refuse(a, Outcome::Cut, Cause::Interrupted);
        a.ended_us = Some(at_us);
    }

    /// We abandoned the handshake.
    pub fn aborted(&self, a: &mut Attempt, cause: Cause, at_us: u64) {
        a.outcome = Outcome::Aborted;
        a.cause = Some(cause.clone());
        a.ended_us = Some(at_us);
    }

    /// The connection ended for `cause`. A still-pending verdict is settled: an attempt
    /// that died on its own (reset, protocol fault, oversized frame, server Close, an
    /// invalid close code, a write the server would not take) failed; one the run's end
    /// cut while its rule still waited for a message is cut; one we closed ourselves counts
    /// as accepted only when the rule needs nothing more than the upgrade or a frame it
    /// never got a chance to see (an error event as the server's first word is one it
    /// saw, [`Judge::error_frame`]: failed).
    pub fn ended(&self, a: &mut Attempt, cause: Cause, at_us: u64) {
        a.ended_us = Some(at_us);
        if a.outcome == Outcome::Pending {
            // A server that stopped reading (`timeout_send`) failed it too: we only gave
            // up on a write it would never take.
            let died = matches!(
                cause,
                Cause::Reset
                    | Cause::Tls
                    | Cause::Protocol
                    | Cause::Oversized
                    | Cause::ServerClose(_)
                    | Cause::InvalidClose(_)
                    | Cause::Timeout("send")
            );
            let waiting = matches!(self.rules.accepted, AcceptRule::Message { .. });
            if cause == Cause::Interrupted && waiting {
                self.cut(a, at_us);
                return;
            }
            if died || waiting || a.error_before_acceptance {
                self.refuse(a, Outcome::Failed, cause.clone());
                return;
            }
            self.accept(a, at_us);
        }
        if a.outcome == Outcome::Accepted {
            a.cause = Some(cause);
        }
    }

    fn accept(&self, a: &mut Attempt, at_us: u64) {
        a.outcome = Outcome::Accepted;
        a.accepted_us = Some(at_us);
    }

    fn refuse(&self, a: &mut Attempt, outcome: Outcome, cause: Cause) {
        a.outcome = outcome;
        a.cause = Some(cause);
    }
}

#[cfg(test)]
mod tests;
