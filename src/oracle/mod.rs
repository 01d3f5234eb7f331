//! Oracles: every judgement on what the server did. Acceptance (was an attempt accepted,
//! refused or failed, by the scenario's rules), the streaming per-connection checks, the
//! session oracles over all attempts, and the run's verdict.
//!
//! They run streaming, inside each connection task, as the frames arrive
//! ([`ConnChecker`]); their state per connection is bounded (pending expectations, a
//! capped buffer of not-yet-claimed messages, the last sequence number), so a long soak
//! does not grow. A violation carries its witness: who, when, expected vs seen.

mod acceptance;
mod checker;
mod pattern;
pub mod session;

pub use acceptance::Judge;
pub use checker::{steps_cut_off, ConnChecker, ConnIdentity, ExpectId, Resolution, StreamEnd};
pub use pattern::{Fed, PatternState};

use crate::model::Verdict;

/// The one verdict of a run: violations beat inconclusive beats clean.
pub fn verdict(violations: u64, coverage: &session::Coverage) -> Verdict {
    if violations > 0 {
        Verdict::Violations
    } else if coverage.inconclusive() {
        Verdict::Inconclusive
    } else {
        Verdict::Clean
    }
}
