//! The verdict on each connection attempt, and its record for the session oracles.
//!
//! An attempt is judged once: accepted (by the scenario's rule), rejected (an HTTP refusal
//! or a configured close code before acceptance), failed (anything else before acceptance:
//! reset, 1011, timeout...), or aborted (we gave up on purpose).

use crate::model::{AcceptRule, Attempt, Cause, Counters, Outcome, SessionOracles};

/// Judges attempts by the scenario's rules and keeps the counters in step.
pub struct Judge<'a> {
    pub rules: &'a SessionOracles,
}

impl Judge<'_> {
    /// The 101 arrived.
    pub fn upgraded(&self, a: &mut Attempt, at_us: u64, c: &mut Counters) {
        a.upgraded_us = Some(at_us);
        if self.rules.accepted == AcceptRule::Upgrade {
            self.accept(a, at_us, c);
        }
    }

    /// A data frame arrived; `event` is its type when it was a JSON object with one.
    /// Returns true when this frame made the attempt accepted.
    pub fn data(&self, a: &mut Attempt, at_us: u64, event: Option<&str>, c: &mut Counters) -> bool {
        a.last_frame_us = Some(at_us);
        if a.outcome != Outcome::Pending {
            return false;
        }
        let accepts = match &self.rules.accepted {
            AcceptRule::Upgrade | AcceptRule::FirstFrame => true,
            AcceptRule::Message { event: wanted } => event == Some(wanted.as_str()),
        };
        if accepts {
            self.accept(a, at_us, c);
        }
        accepts
    }

    /// The server closed with `code`.
    pub fn server_close(&self, a: &mut Attempt, code: u16, c: &mut Counters) {
        a.clean_end = true;
        if a.outcome == Outcome::Pending {
            let cause = Cause::ServerClose(code);
            if self.rules.reject.close.contains(&code) {
                self.refuse(a, Outcome::Rejected, cause, c);
            } else {
                self.refuse(a, Outcome::Failed, cause, c);
            }
        }
    }

    /// The dial failed; an HTTP status is a rejection.
    pub fn dial_failed(
        &self,
        a: &mut Attempt,
        cause: Cause,
        rejected: bool,
        at_us: u64,
        c: &mut Counters,
    ) {
        let outcome = if rejected {
            Outcome::Rejected
        } else {
            Outcome::Failed
        };
        self.refuse(a, outcome, cause, c);
        a.ended_us = Some(at_us);
    }

    /// We abandoned the handshake.
    pub fn aborted(&self, a: &mut Attempt, cause: Cause, at_us: u64, c: &mut Counters) {
        a.outcome = Outcome::Aborted;
        a.cause = Some(cause.clone());
        a.ended_us = Some(at_us);
        *c.refused_by.entry(cause).or_default() += 1;
        c.aborted += 1;
    }

    /// The connection ended for `cause`. A still-pending verdict is settled: an attempt
    /// that died on its own failed; one we closed ourselves counts as accepted only when
    /// the rule needs nothing more than the upgrade or a frame it never got a chance to see.
    pub fn ended(&self, a: &mut Attempt, cause: Cause, at_us: u64, c: &mut Counters) {
        a.ended_us = Some(at_us);
        if a.outcome == Outcome::Pending {
            let died = matches!(
                cause,
                Cause::Reset | Cause::Protocol | Cause::Oversized | Cause::ServerClose(_)
            );
            if died || matches!(self.rules.accepted, AcceptRule::Message { .. }) {
                self.refuse(a, Outcome::Failed, cause.clone(), c);
                return;
            }
            self.accept(a, at_us, c);
        }
        if a.outcome == Outcome::Accepted {
            *c.ended_by.entry(cause.clone()).or_default() += 1;
            a.cause = Some(cause);
        }
    }

    fn accept(&self, a: &mut Attempt, at_us: u64, c: &mut Counters) {
        a.outcome = Outcome::Accepted;
        a.accepted_us = Some(at_us);
        c.accepted += 1;
    }

    fn refuse(&self, a: &mut Attempt, outcome: Outcome, cause: Cause, c: &mut Counters) {
        a.outcome = outcome;
        match outcome {
            Outcome::Rejected => c.rejected += 1,
            _ => c.failed += 1,
        }
        *c.refused_by.entry(cause.clone()).or_default() += 1;
        a.cause = Some(cause);
    }
}

#[cfg(test)]
mod tests;
