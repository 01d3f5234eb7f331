//! Learned invariants: what a calibration phase (a few connections, one at a time, before
//! the load) saw the target do every time, to be checked under load beside the declared
//! oracles, and what a calibration connection recorded to learn them from.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Invariants learned from the target, checked beside the declared oracles; a violation of
/// one is marked `learned`. Empty when nothing was learned (or learning is off).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedOracles {
    /// Field paths whose value was the token's `sub` in every message that carried them,
    /// on every calibration connection (at least two users).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity: Vec<String>,
    /// Per-connection integer fields that went up by exactly one from message to message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence: Vec<String>,
    /// The event kinds each request kind got back, every time, before its first met
    /// expectation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<LearnedReply>,
    /// Sequence fields calibration learned that the run does not check, because several of
    /// its connections present one user (see [`LearnedOracles::scoped`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence_set_aside: Vec<String>,
    /// Integer fields that went up by exactly one on some calibration connections and
    /// skipped or went back on others: not learned (calibration keeps only what held
    /// every time), but said, since a sequence bug that shows in calibration looks just
    /// like this. `(field, connections it held on, connections it was on)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence_broken: Vec<(String, usize, usize)>,
    /// Why calibration learned nothing, when the target did not accept its valid-token
    /// connection (`the target accepted no calibration connection (http_400)`): the load
    /// went on all the same, and the run's learned line and verdict say it, since what
    /// refused calibration (a wrong subprotocol, path or secret) is what a user fixes
    /// first. Not an invariant: [`LearnedOracles::is_empty`] does not count it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unaccepted: Option<String>,
}

/// A counter calibration did not learn because it broke on some of its connections
/// ([`LearnedOracles::sequence_broken`]), as the console line and `learned.toml` say it.
pub fn broken_words(field: &str, held: usize, of: usize) -> String {
    format!(
        "sequence {field} not learned: up by one on {held} of {of} calibration connections, \
         skipped or back on the others (a sequence bug shows so; declare [oracles] sequence \
         to judge it under load)"
    )
}

/// Why a learned sequence is set aside, as the console line and `learned.toml` say it.
pub const SEQUENCE_SET_ASIDE_WHY: &str = "several connections share a user (sub), and \
calibration, one connection per user, cannot tell a per-connection counter from a per-user one";

impl LearnedOracles {
    /// Whether nothing was learned: nothing to check and nothing set aside.
    pub fn is_empty(&self) -> bool {
        self.identity.is_empty()
            && self.sequence.is_empty()
            && self.replies.is_empty()
            && self.sequence_set_aside.is_empty()
            && self.sequence_broken.is_empty()
    }

    /// The part of these invariants a plan may check, `shared_users` when several of its
    /// connections present one user ([`crate::model::Plan::shares_users`]). Calibration
    /// opens one connection per user, so a counter it saw go up by one per connection may
    /// be the user's, which two connections of that user each see with gaps: there the
    /// learned sequence fields are set aside, not checked. Identity (the user's own `sub`
    /// on every connection of that user) and reply patterns stay.
    pub fn scoped(mut self, shared_users: bool) -> Self {
        if shared_users {
            let sequence = std::mem::take(&mut self.sequence);
            for field in sequence {
                if !self.sequence_set_aside.contains(&field) {
                    self.sequence_set_aside.push(field);
                }
            }
        }
        self
    }
}

/// "A request of kind `request` gets back at least one of each of `events` before the
/// expectation that follows it is met."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedReply {
    /// The sent message's kind (its `type_field`).
    pub request: String,
    /// Event kinds, sorted.
    pub events: Vec<String>,
}

/// What one calibration connection saw: every JSON message (up to
/// [`Observation::MAX_MESSAGES`]) and, per request it sent, the event kinds received from
/// that send until the first expectation after it was met.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Received messages, in arrival order, across reconnects marked by `streams`.
    pub messages: Vec<Value>,
    /// Index into `messages` where each new connection (a reconnect) began, after the first.
    pub streams: Vec<usize>,
    /// `(request kind, event kinds seen)` per closed span.
    pub spans: Vec<(String, Vec<String>)>,
    /// Messages not kept because `messages` was full.
    pub dropped: u64,
}

impl Observation {
    /// Messages kept per calibration connection: enough to see a few exchanges.
    pub const MAX_MESSAGES: usize = 512;
    /// Spans kept per calibration connection.
    pub const MAX_SPANS: usize = 128;
}
