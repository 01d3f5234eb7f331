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
pub mod expiry;
pub mod frame;
pub mod framing;
pub mod idle;
pub mod keepalive;
pub mod learn;
pub mod lifetime;
mod pattern;
pub mod refusal;
pub mod session;
pub mod shedding;
pub mod socketio;
pub mod stomp;
pub mod takeover;
mod undeclared;
pub mod verdict;

use crate::model::{OracleKind, Plan};

pub use acceptance::Judge;
pub use checker::{
    sequence_number, steps_cut_off, ConnChecker, ConnIdentity, ExpectId, Resolution, ScriptPlace,
    StreamEnd, ANSWERED_IN_FULL, ANSWERED_WITH_ERROR, CUT_OFF,
};
pub use pattern::{Fed, PatternState};

/// The oracles a plan turns on: completeness when any connection expects something,
/// identity and ordering when their fields are named, and the session oracles as
/// configured (rejection hygiene always).
pub fn oracles_on(plan: &Plan) -> Vec<OracleKind> {
    let spec = &plan.oracles;
    let expects = plan.has_expect();
    [
        (OracleKind::Completeness, expects),
        (OracleKind::Identity, spec.identity.is_some()),
        (OracleKind::Ordering, spec.sequence.is_some()),
        (OracleKind::Exclusivity, spec.session.max_live.is_some()),
        (OracleKind::Liveness, spec.session.liveness.is_some()),
        (OracleKind::RejectionHygiene, true),
        (OracleKind::Consistency, spec.session.consistency),
    ]
    .into_iter()
    .filter_map(|(kind, on)| on.then_some(kind))
    .collect()
}
