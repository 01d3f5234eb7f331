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
    /// Messages not kept because `messages` was full ([`Observation::MAX_MESSAGES`] or
    /// [`Observation::MAX_BYTES`]).
    pub dropped: u64,
    /// The length of the kept messages as JSON text, what [`Observation::MAX_BYTES`]
    /// bounds; [`Observation::MAX_BYTES`] once a message did not fit.
    pub kept_bytes: usize,
}

impl Observation {
    /// Messages kept per calibration connection: enough to see a few exchanges.
    pub const MAX_MESSAGES: usize = 512;
    /// The JSON text of the messages kept per calibration connection, at most: 512
    /// messages of up to `[limits] max_message_bytes` (1 MiB by default) each would be
    /// half a gigabyte per connection. 1 MiB, so a message of the default limit's size is
    /// kept when it comes first.
    pub const MAX_BYTES: usize = 1 << 20;
    /// Spans kept per calibration connection.
    pub const MAX_SPANS: usize = 128;

    /// Whether no further message is kept: it would only be counted as dropped.
    pub fn is_full(&self) -> bool {
        self.messages.len() >= Observation::MAX_MESSAGES
            || self.kept_bytes >= Observation::MAX_BYTES
    }

    /// Keeps `message` while there is room by count and by its JSON text's length,
    /// else counts it dropped. The messages kept are the first ones, in order: after one
    /// that does not fit, none is kept, however short (what is learned from them reads
    /// them as a stream).
    pub fn keep(&mut self, message: Value) {
        if self.is_full() {
            self.dropped += 1;
            return;
        }
        let bytes = json_len(&message);
        if self.kept_bytes.saturating_add(bytes) > Observation::MAX_BYTES {
            self.kept_bytes = Observation::MAX_BYTES;
            self.dropped += 1;
            return;
        }
        self.kept_bytes += bytes;
        self.messages.push(message);
    }
}

/// The length of `value` as compact JSON text, counted as it is written, not kept.
fn json_len(value: &Value) -> usize {
    /// Counts the bytes written to it.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a writer that never fails cannot fail; were it to, the
    // message counts as over any budget.
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::Observation;
    use serde_json::json;

    /// Large messages fill a calibration connection's observation by their bytes before
    /// its count: the first ones are kept, within [`Observation::MAX_BYTES`], and every
    /// other is counted dropped, a short one after them too (512 messages of up to 1 MiB
    /// each were kept: half a gigabyte per connection).
    #[test]
    fn an_observation_keeps_the_first_messages_within_its_byte_budget() {
        let big = "x".repeat(100_000);
        let mut obs = Observation::default();
        for i in 0..100 {
            obs.keep(json!({"type": "blob", "i": i, "data": big}));
        }
        obs.keep(json!({"type": "small"}));
        let text: usize = obs.messages.iter().map(|m| m.to_string().len()).sum();
        assert!(text <= Observation::MAX_BYTES, "{text} bytes kept");
        assert_eq!(obs.messages.len(), 10, "the first ten of ~100 KB");
        assert_eq!(obs.messages[9]["i"], 9);
        assert_eq!(obs.dropped, 91);
        assert!(obs.is_full());
        // Small messages are bounded by their count, as before.
        let mut small = Observation::default();
        for i in 0..1_000 {
            small.keep(json!({"type": "tick", "i": i}));
        }
        assert_eq!(small.messages.len(), Observation::MAX_MESSAGES);
        assert_eq!(small.dropped, 1_000 - Observation::MAX_MESSAGES as u64);
    }
}
