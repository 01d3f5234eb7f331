//! Oracles: invariants checked on what the server sent back.
//!
//! They run streaming, inside each connection task, as the frames arrive
//! ([`ConnChecker`]); their state per connection is bounded (pending expectations, a
//! capped buffer of not-yet-claimed messages, the last sequence number), so a long soak
//! does not grow. A violation carries its witness: who, when, expected vs seen.

mod checker;
mod pattern;
pub mod session;

pub use checker::{ConnChecker, ConnIdentity, ExpectId, Resolution, StreamEnd};
pub use pattern::{Fed, PatternState};

use serde::{Deserialize, Serialize};

/// Which invariant broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OracleKind {
    /// A request did not get its expected sequence, in order, in time (and no explicit error).
    Completeness,
    /// A message carried another user's identity.
    Identity,
    /// The per-connection sequence field skipped, repeated or went back.
    Ordering,
    /// More connections sharing one `jti` were served at once than allowed.
    Exclusivity,
    /// A valid token whose `jti` was not live was refused.
    Liveness,
    /// A bad token was accepted, or a refusal was not clean (1011, reset, timeout, odd status).
    RejectionHygiene,
    /// The same token got different verdicts through different placements.
    Consistency,
}

impl OracleKind {
    pub fn name(self) -> &'static str {
        match self {
            OracleKind::Completeness => "completeness",
            OracleKind::Identity => "identity",
            OracleKind::Ordering => "ordering",
            OracleKind::Exclusivity => "exclusivity",
            OracleKind::Liveness => "liveness",
            OracleKind::RejectionHygiene => "rejection_hygiene",
            OracleKind::Consistency => "consistency",
        }
    }
}

/// One broken invariant, with enough context to see what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub oracle: OracleKind,
    pub conn: u32,
    pub user: u32,
    pub group: String,
    /// The token's `jti` (never the token itself).
    pub jti: String,
    /// Milliseconds since the run start.
    pub at_ms: f64,
    pub expected: String,
    pub seen: String,
    /// The correlation value involved, e.g. the `run_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation: Option<String>,
    /// Every connection the violation rests on (session oracles), so the interleaving shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub involved: Vec<Involved>,
}

/// A connection a violation rests on, with what the server answered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Involved {
    pub conn: u32,
    pub jti: String,
    /// Planned start offset, ms from the run start.
    pub planned_start_ms: f64,
    /// When this attempt actually began, ms from the run start.
    pub attempt_start_ms: f64,
    pub answer: String,
}
