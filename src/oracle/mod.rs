//! Oracles: invariants checked on what the server sent back.
//!
//! They run streaming, inside each connection task, as the frames arrive
//! ([`ConnChecker`]); their state per connection is bounded (pending expectations, a
//! capped buffer of not-yet-claimed messages, the last sequence number), so a long soak
//! does not grow. A violation carries its witness: who, when, expected vs seen.

mod checker;
mod pattern;

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
}

impl OracleKind {
    pub fn name(self) -> &'static str {
        match self {
            OracleKind::Completeness => "completeness",
            OracleKind::Identity => "identity",
            OracleKind::Ordering => "ordering",
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
}
