//! The scenario spec: what `scenario::load` produces from TOML and `plan::build` compiles.
//!
//! These types carry no TOML spans: every check that needs a file position happens
//! while loading (see `load.rs`), so anything downstream can trust these values.

use super::learned::LearnedOracles;
use super::units::{duration_us, durations_us, opt_duration_us, shared_seq};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

mod auth;
mod env_text;
mod hunt;
mod message_secrets;
mod threshold;
mod tokens;
mod walk;

pub use auth::{
    token_lifetime, AuthSpec, JwtAlg, LoginSpec, Placement, SecretSource, SecretText, TokenSource,
    DEV_SECRET, EXPIRED_WITHIN, EXPIRY_SKEW,
};
pub use env_text::{
    body_names_credential, expand as expand_env, is_credential_header, pieces as env_pieces,
    EnvText, EnvTextError, EnvValues, Piece as EnvPiece,
};
pub use hunt::{HuntOrder, HuntSpec, Pressure, Sweep, DEFAULT_MAX_REPEAT, DEFAULT_MIN_GAP};
pub use message_secrets::{
    is_secret_field, message_not_stored, serialize_message, serialize_text, stored_message,
    stored_text, text_not_stored,
};
pub use threshold::{LatencyStat, MetricUnit, Threshold, ThresholdMetric, ThresholdOp};
pub use tokens::{
    AbortHow, AcceptRule, Forge, LivenessSpec, RejectPolicy, RejectSpec, SessionKey,
    SessionOracles, TokenReuse,
};
pub use walk::{deep_steps, DeepSteps};

/// A whole scenario file after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Name used for the results directory and reports.
    pub name: String,
    /// Free text shown in reports.
    pub description: Option<String>,
    /// Target URL (`ws://` or `wss://`) as written: its `${NAME}` references are kept and
    /// expanded only to dial, so no plan, result or message holds their values. `None`
    /// means "use --target, env, or the embedded server".
    pub target: Option<String>,
    /// Default seed (overridden by `--seed`).
    pub seed: u64,
    /// Hard stop for the whole run.
    #[serde(with = "duration_us")]
    pub duration: Duration,
    /// How tokens are minted and presented.
    pub auth: AuthSpec,
    /// User groups, in file order. Never empty.
    pub groups: Vec<Group>,
    /// Oracle configuration.
    pub oracles: OracleSpec,
    /// WebSocket client limits.
    pub limits: Limits,
    /// Ranges `stampede hunt` varies between rounds (`[hunt]`).
    #[serde(default)]
    pub hunt: HuntSpec,
    /// Pass/fail limits checked on the summary when the run ends (`[thresholds]`).
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
    /// What each connection answers the server's in-band pings with (`[[answer]]`), in
    /// file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<AnswerRule>,
    /// Hex SHA-256 of the scenario file's bytes: identifies the scenario in results.
    pub hash: String,
    /// Hex SHA-256 of the scenario as TOML reads it (its tables and values, keys in order
    /// of name), so that a comment, a blank line, spacing, quoting or the order of keys
    /// does not change it: what `compare` asks two runs to share. Empty in scenarios built
    /// by hand.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_hash: String,
}

impl Scenario {
    /// The seed a run uses: the flag's when given, else the scenario's own.
    pub fn seed_or(&self, flag: Option<u64>) -> u64 {
        flag.unwrap_or(self.seed)
    }
}

/// A group of virtual users that share arrival, timing and steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    /// Number of virtual users (>= 1).
    pub users: u32,
    /// Connections each user opens (>= 1).
    pub connections_per_user: u32,
    /// When connections start.
    pub arrival: Arrival,
    /// Added to each connection's arrival offset.
    pub jitter: Dist,
    /// Which connections share a token.
    pub token: TokenReuse,
    /// Forged or time-shifted tokens for this group (`None`: valid tokens).
    #[serde(default)]
    pub forge: Option<Forge>,
    /// Overrides `[auth] placement` for this group (mixing placements tests whether a
    /// server's auth paths agree).
    #[serde(default)]
    pub placement: Option<Placement>,
    /// The script every connection of this group runs, in order.
    pub steps: Vec<Step>,
    /// Upgrade headers for this group, added to `[auth] headers` (a name given in both
    /// takes this value). Values may hold the connection's placeholders, and are kept as
    /// written when they named environment variables (see [`EnvText`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, EnvText)>,
    /// Subprotocols this group's upgrades offer instead of `[auth] subprotocol`'s (empty:
    /// the run-wide ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subprotocols: Vec<String>,
    /// Per-user data (`feeder = { file = "users.csv" }`): `{{feed.COLUMN}}` placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feeder: Option<Feed>,
}

impl Group {
    /// Whether its connections park bytes to be released together: a collide arrival, or
    /// a `rendezvous` step anywhere in its script (each parked connection holds a second
    /// descriptor until the release).
    pub fn synchronizes(&self) -> bool {
        matches!(self.arrival, Arrival::Collide { .. })
            || deep_steps(&self.steps).any(|s| matches!(s, Step::Rendezvous { .. }))
    }
}

/// A data file of per-user values: user `u` of a group takes row `u mod rows` (in file
/// order, the same on every run). Plan and repro files store the path and columns, never
/// the rows (a feeder may hold passwords): a run reads the file again when a plan read
/// from a file has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feed {
    /// Resolved against the scenario file's folder.
    pub path: String,
    pub format: FeedFormat,
    /// Column names (CSV header, or the keys of the first JSON line), in file order.
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    #[serde(skip)]
    pub rows: std::sync::Arc<Vec<Vec<String>>>,
}

impl Feed {
    /// The row user `user` takes; `None` when the rows are not loaded.
    pub fn row(&self, user: u32) -> Option<&[String]> {
        let n = self.rows.len();
        (n > 0)
            .then(|| self.rows.get(user as usize % n))
            .flatten()
            .map(Vec::as_slice)
    }
}

/// How a feeder file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedFormat {
    /// Comma-separated values with a header row (RFC 4180 quoting).
    Csv,
    /// One JSON object per line; values that are not strings are used as their JSON text.
    Jsonl,
}

/// How the connections of a group are spread over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Connection i of n starts at `start + over * i / n`.
    Ramp {
        #[serde(with = "duration_us")]
        start: Duration,
        #[serde(with = "duration_us")]
        over: Duration,
    },
    /// A constant rate: connection i starts at `start + i / per_sec`.
    Rate {
        #[serde(with = "duration_us")]
        start: Duration,
        per_sec: f64,
    },
    /// Every connection starts at `at` (plus jitter): one synchronized burst.
    Burst {
        #[serde(with = "duration_us")]
        at: Duration,
    },
    /// Last-byte synchronization: every connection is opened early and sends its upgrade
    /// request except the final bytes; a barrier releases all those bytes together at `at`
    /// (or as soon as the connections could be pre-opened). Jitter is ignored.
    Collide {
        #[serde(with = "duration_us")]
        at: Duration,
    },
}

/// A random duration. All parameters are non-negative and well-formed after validation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dist {
    Fixed {
        #[serde(with = "duration_us")]
        value: Duration,
    },
    Uniform {
        #[serde(with = "duration_us")]
        low: Duration,
        #[serde(with = "duration_us")]
        high: Duration,
    },
    /// Normal, truncated at zero.
    Normal {
        #[serde(with = "duration_us")]
        mean: Duration,
        #[serde(with = "duration_us")]
        sd: Duration,
    },
    /// Exponential with the given mean.
    Exp {
        #[serde(with = "duration_us")]
        mean: Duration,
    },
}

impl Dist {
    /// The zero distribution (no jitter).
    pub const ZERO: Dist = Dist::Fixed {
        value: Duration::ZERO,
    };

    /// The least value a sample can take: a fixed value, a uniform's low end, zero for a
    /// normal (truncated at zero) or an exponential.
    pub fn least(&self) -> Duration {
        match *self {
            Dist::Fixed { value } => value,
            Dist::Uniform { low, .. } => low,
            Dist::Normal { .. } | Dist::Exp { .. } => Duration::ZERO,
        }
    }

    /// The mean (a uniform's midpoint; a normal's mean before its truncation at zero).
    pub fn mean(&self) -> Duration {
        match *self {
            Dist::Fixed { value } => value,
            Dist::Uniform { low, high } => low + (high.saturating_sub(low)) / 2,
            Dist::Normal { mean, .. } | Dist::Exp { mean } => mean,
        }
    }
}

/// Where a step is written in its group's script, packed in a `u64` so that an
/// expectation can carry it at no allocation: up to [`StepPlace::LEVELS`] 1-based
/// indices, one per nested `repeat` then the step's own (`[2, 1]`, shown `2.1`: the first
/// step inside the repeat at step 2), 16 bits each, outermost highest. `StepPlace::NONE`
/// (0) when unknown: the implicit connect, a plan of explicit actions, deeper nesting or
/// an index past 65,535.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct StepPlace(u64);

impl StepPlace {
    /// No place known.
    pub const NONE: StepPlace = StepPlace(0);
    /// The deepest path a place holds.
    pub const LEVELS: usize = 4;

    /// The place of the 1-based `path`; [`StepPlace::NONE`] when it is empty, deeper than
    /// [`StepPlace::LEVELS`], or holds 0 or an index past `u16::MAX`.
    pub fn of(path: &[usize]) -> StepPlace {
        if path.is_empty() || path.len() > Self::LEVELS {
            return Self::NONE;
        }
        let mut code = 0u64;
        for (level, &index) in path.iter().enumerate() {
            match u16::try_from(index) {
                Ok(i) if i > 0 => code |= u64::from(i) << (48 - 16 * level),
                _ => return Self::NONE,
            }
        }
        StepPlace(code)
    }

    /// This place's one bit of a 64-bit Bloom filter of places (Fibonacci hashing: the
    /// packed path times 2^64/φ, its top 6 bits): a set of the steps a connection met
    /// expectations at, kept in 8 bytes. A bit set may belong to another place too.
    pub fn bloom_bit(self) -> u64 {
        1u64 << (self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
    }

    /// The path as the scenario's notes and findings show it (`2.1`); `None` for
    /// [`StepPlace::NONE`].
    pub fn shown(self) -> Option<String> {
        let path: Vec<usize> = (0..Self::LEVELS)
            .map(|level| (self.0 >> (48 - 16 * level)) & 0xFFFF)
            .take_while(|&i| i > 0)
            .filter_map(|i| usize::try_from(i).ok())
            .collect();
        (!path.is_empty()).then(|| step_path_text(&path))
    }
}

/// A 1-based step path (`[2, 1]`: the first step inside the repeat at step 2) as notes,
/// findings and `validate` show it: `2.1`. Empty for an empty path.
pub fn step_path_text(path: &[usize]) -> String {
    path.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// One step of a connection's script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Send a JSON text frame built from a template (strings may hold `{{...}}` placeholders);
    /// any JSON value: an object, or an array (Phoenix v2 frames).
    /// Stored with its literal credential fields redacted ([`stored_message`]).
    Send {
        #[serde(serialize_with = "message_secrets::serialize_message")]
        template: serde_json::Value,
    },
    /// Send this text as it is (after placeholder expansion): a frame that is not JSON.
    /// Stored with its literal credential lines redacted ([`stored_text`]).
    SendText {
        #[serde(serialize_with = "message_secrets::serialize_text")]
        template: String,
    },
    /// Send a binary frame holding these bytes (standard base64 with padding; the scenario
    /// may write them as base64 or hex).
    SendBinary { base64: String },
    /// Send a Ping frame with this payload; with `within`, the matching Pong must arrive
    /// within it (timed as the `pong` phase; none in time is a completeness violation).
    Ping {
        payload: String,
        #[serde(
            default,
            with = "opt_duration_us",
            skip_serializing_if = "Option::is_none"
        )]
        within: Option<Duration>,
    },
    /// Expect an ordered event pattern.
    Expect(Expect),
    /// Keep reading, but send nothing, for a while.
    Think { dist: Dist },
    /// Stop reading for a while (slow reader).
    PauseReads { dist: Dist },
    /// Run the inner steps `times` times.
    Repeat {
        times: u32,
        steps: Vec<Step>,
        /// Open model: iteration `i` starts at `i * every` after the first, whatever the
        /// server does, and expectations inside do not block. `None`: one after another.
        #[serde(
            default,
            with = "opt_duration_us",
            skip_serializing_if = "Option::is_none"
        )]
        every: Option<Duration>,
    },
    /// Message rendezvous: park here until `count` connections of the group (all of them
    /// when `None`) have arrived, then release their next `send` together, the frames'
    /// last bytes written back to back. A connection waits at most `timeout` from the first
    /// arrival; then those present are released and the absent ones recorded as missing.
    /// Always directly followed by a `send`.
    Rendezvous {
        count: Option<u32>,
        #[serde(with = "duration_us")]
        timeout: Duration,
    },
    /// Send a Close frame with this code and wait for the server's Close.
    Close { code: u16 },
    /// Give up on the handshake: send the upgrade request, wait `after`, then close the
    /// socket (FIN or RST) before or whatever the server answered. Only as a first step.
    AbortHandshake { after: Dist, how: AbortHow },
    /// Open a new connection with the same token. `after` is the delay before the
    /// first attempt; `backoff` the delays before each retry of a failed attempt.
    Reconnect {
        after: Dist,
        #[serde(with = "durations_us")]
        backoff: Vec<Duration>,
    },
}

/// An expected, ordered sequence of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expect {
    /// The pattern, e.g. `agent_started agent_thinking+ agent_completed`. Shared: every
    /// expectation a loop registers from this step refers to the same items (a
    /// connection's copy of them, see `plan::Cursor`).
    #[serde(with = "shared_seq")]
    pub pattern: Arc<[PatternItem]>,
    /// Field that ties events to the last sent message (e.g. `run_id`); `None` = any message.
    /// It names where the value is read in the send, and in the answers too unless
    /// `correlate_reply` names another path.
    pub correlate: Option<String>,
    /// The answers' field that carries the sent value, when it is not `correlate`'s own path
    /// (`correlate = { send = "seq", reply = "seq_reply" }`: Mattermost's WebSocket API
    /// answers a request's `seq` in `seq_reply`, and its events carry a `seq` of their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlate_reply: Option<String>,
    /// Which send carrying the correlated field this expectation takes its value from,
    /// counted back from the latest (0, the usual case). The `k` correlated `expect`s
    /// answering a stretch of `s` sends that carry the field pair with them in order, the
    /// last `min(k, s)` sends with the first expectations: `send AUTH, send EVENT, expect
    /// OK, expect OK` waits for AUTH's OK (1) and for EVENT's (0), as a pipelining client
    /// would. Expectations past the sends take the latest (a request's ack, then its
    /// result). Set by the scenario loader from the step list (its `pair_correlated`:
    /// what a stretch is, loops included).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub earlier_send: u8,
    /// How many sends fewer back each iteration of the enclosing loop takes than the one
    /// before (0, the usual case: every iteration the same). Set for a loop of answers
    /// alone right after a stretch of sends (`repeat = 8, steps = [send]`, then `repeat =
    /// 8, steps = [expect]`): its expectations pair with those sends in order over all its
    /// iterations, iteration `i` taking `earlier_send - i × earlier_send_step` (at least
    /// 0, the latest), as the same `expect`s written out would.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub earlier_send_step: u8,
    /// Deadline, from the moment the expectation is registered.
    #[serde(with = "duration_us")]
    pub within: Duration,
    /// `true`: the script waits here until the pattern completes or times out.
    /// `false`: the script goes on; the expectation is checked in the background.
    pub wait: bool,
    /// Field tests every message of the pattern must pass (`where = { ... }`); strings may
    /// hold placeholders and `{{$name}}` captures.
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<FieldTest>,
    /// Values to capture from the messages that meet the pattern, for later steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capture: Vec<Capture>,
    /// `expect_none`: none of the pattern's kinds may arrive within `within`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
    /// `name = "ack"`: this expectation's turn latency also goes to a histogram of its own
    /// (`turns` in the summary). At most [`MAX_TURN_NAMES`] names per scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it claims are pushes, as the script is written, not answers to one request:
    /// correlated on a value an expectation on another field already answered (a STOMP
    /// subscription's `MESSAGE` after its `RECEIPT`), or that a send not carrying it
    /// published to since (a STOMP `SEND` after the `SUBSCRIBE`); uncorrelated, after a
    /// request a correlated `expect` already answered (a listener's message), or more records of one
    /// kind than the sends just before it (`said said said` after one post: a room's
    /// broadcasts). A push carries whoever caused it (a broadcast's author),
    /// so the learned identity oracle does not judge what it claims; a declared
    /// `[oracles] identity` still does. Set by the scenario loader, from the step list.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pushed: bool,
    /// Its correlation value is drawn afresh for each request: every send that carries the
    /// correlated field in its step list writes it with `{{uuid}}`, `{{random}}`, or
    /// `{{run}}` beside `{{conn}}`, so no other request, of the connection or another,
    /// shares it (a broadcast echoing another member's `{{run}}` alone would). A later record
    /// with that value is then this request's, whatever its `where` tests say: a second
    /// copy is a duplicate, one after the deadline a late answer (with a value a channel's
    /// requests share, a later record may be the next request's). Set by the scenario
    /// loader, from the step list.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
}

/// Distinct `expect` names a scenario may use: each is one more histogram per run.
pub const MAX_TURN_NAMES: usize = 16;

/// `capture = { sub_id = "/payload/id" }`: the value at `path` of a message that met the
/// expectation becomes `{{$name}}` in later steps of the same connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    pub name: String,
    pub path: String,
}

/// `[[answer]]`: a message every connection sends whenever it receives a record of kind
/// `on` (the record as the oracles read it: after `[oracles] framing`, `embedded_json`
/// and record separators), right after handling the frame that held it. Keeps a server
/// that pings in band (`{"type":"ping"}`, Pusher's `pusher:ping`) from dropping the
/// connection. An answer is no request: nothing is timed from it and it is not counted as
/// a sent message (`in_band_answers` counts it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerRule {
    /// The kind answered: the record's `[oracles] type_field` value.
    pub on: String,
    /// Values of the answered record, by path, usable as `{{$name}}` in `send`; a name
    /// not captured here is taken from the connection's `expect` captures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capture: Vec<Capture>,
    /// The message sent, a JSON template with a step `send`'s placeholders as written
    /// (`{{run}}` counts this rule's answers on the connection, from 1). Framed by
    /// `[oracles] framing` when it goes out.
    pub send: serde_json::Value,
}

/// One event type in a pattern with its repetition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternItem {
    pub event: String,
    pub repeat: Repeat,
}

/// How many times a pattern item may occur.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Repeat {
    /// Exactly once (`name`).
    One,
    /// One or more (`name+`).
    OneOrMore,
    /// Zero or more (`name*`).
    ZeroOrMore,
    /// Zero or one (`name?`).
    Optional,
}

impl Repeat {
    /// The mark a pattern writes after the item's kind: `""`, `"+"`, `"*"` or `"?"`.
    pub fn mark(self) -> &'static str {
        match self {
            Repeat::One => "",
            Repeat::OneOrMore => "+",
            Repeat::ZeroOrMore => "*",
            Repeat::Optional => "?",
        }
    }
}

/// A named message kind (`[oracles.kinds] confirm = { type = "confirm_subscription" }`): a
/// message whose fields pass every test is of that kind, whatever its `type_field` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindSpec {
    /// The name patterns use.
    pub name: String,
    /// All must hold. Never empty.
    pub when: Vec<FieldTest>,
}

/// One test on a message field, named by a path (see [`crate::model::path`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldTest {
    pub path: String,
    pub test: Test,
}

/// What a [`FieldTest`] asks of the value at its path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// Equal to this JSON value (`1` and `1.0` differ; `"1"` and `1` differ too).
    Equals(serde_json::Value),
    /// The field exists (any value, `null` included).
    Present,
    /// The field does not exist.
    Absent,
    /// A string matching this regular expression (`regex` crate syntax, unanchored).
    Matches(String),
}

/// The default `[oracles] max_buffered_bytes`: 1 MiB per connection.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 1 << 20;

fn default_max_buffered_bytes() -> usize {
    DEFAULT_MAX_BUFFERED_BYTES
}

fn is_default_max_buffered_bytes(n: &usize) -> bool {
    *n == DEFAULT_MAX_BUFFERED_BYTES
}

/// How much of a declared `[oracles] idle_timeout` a connection must have been idle for
/// its server's close to count as that policy: our clock starts at the last frame we saw
/// or sent, a little before the server's, and a server's timer may run a little early.
/// A declared `[oracles] max_lifetime` allows the same, for the same reasons (our clock
/// starts at the 101, after the server's at its accept).
pub const IDLE_SLACK: f64 = 0.9;

/// Oracle configuration. The defaults come from `[oracles]` being absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OracleSpec {
    /// Field path that names a message's event type (default `type`): a plain name, a
    /// dotted path or a JSON Pointer; a string value is the kind, an integer its decimal text.
    pub type_field: String,
    /// Named kinds tried first, in file order; the first that matches names the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<KindSpec>,
    /// Record separator (SignalR: `"\u001e"`): appended to every frame sent; a received
    /// frame is split on it into records, each judged as its own message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_separator: Option<String>,
    /// How text frames carry records: plain (JSON, or text), or Socket.IO's packets
    /// ([`Framing::SocketIo`]). Left out of plan files when plain.
    #[serde(default, skip_serializing_if = "Framing::is_plain")]
    pub framing: Framing,
    /// Field paths whose string value is JSON text (Pusher's `data`): a received record's
    /// string there is read as the object or array it holds, so paths reach inside it.
    /// Left out of plan files when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub embedded_json: Vec<String>,
    /// A received record that is a JSON array of objects is a batch: each element is a
    /// record of its own (a server that batches a reply's events into one frame). Off by
    /// default: an array is then one record (Phoenix v2 frames are arrays).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batched: bool,
    /// Event type of explicit error events (default `error`); an error correlated with a
    /// pending expectation resolves it without a violation.
    pub error_event: String,
    /// Identity: this field of every message that carries it must equal the token's `sub`.
    pub identity: Option<String>,
    /// Ordering: this per-connection field must increase by exactly one (or only increase,
    /// with [`OracleSpec::sequence_gaps`]).
    pub sequence: Option<String>,
    /// The sequence field may skip numbers (`[oracles] sequence = { field = "...",
    /// contiguous = false }`): a protocol that promises an increasing number, not a count
    /// of the frames sent (one that also counts what it receives, or numbers its events
    /// across a server-side queue), is judged only for going down or repeating. Left out
    /// of plan files when false, so older plans read back unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sequence_gaps: bool,
    /// The sequence runs per value of this field (`[oracles] sequence = { field = "seq",
    /// per = "symbol" }`): a feed that numbers each instrument, channel or subscription on
    /// its own (Binance's depth updates per symbol, Coinbase's `sequence` per
    /// `product_id`). Without it, one sequence per connection. Left out of plan files when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_per: Option<String>,
    /// Only records of these kinds carry the sequence (`kinds = ["update"]`): a heartbeat
    /// that repeats the last number, or a snapshot numbered apart, is not judged. Empty:
    /// every record that holds the field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence_kinds: Vec<String>,
    /// Messages kept while waiting for a matching expectation, per connection.
    pub max_buffered: usize,
    /// Bytes those kept messages may take, per connection: each is measured as its event
    /// type, the correlation fields and values it carries, plus a fixed overhead (the rest
    /// of the message is not kept). Past either bound the oldest is dropped and counted.
    /// Left out of plan files when it is the default, so older plans read back unchanged.
    #[serde(
        default = "default_max_buffered_bytes",
        skip_serializing_if = "is_default_max_buffered_bytes"
    )]
    pub max_buffered_bytes: usize,
    /// Cross-connection oracles on tokens and sessions.
    #[serde(default)]
    pub session: SessionOracles,
    /// `[oracles] idle_timeout`: the server closes a connection idle this long by policy.
    /// A server Close 1000 or 1001 that ends an accepted connection mid-script, owed no
    /// answer and idle at least [`IDLE_SLACK`] of this long, is then counted
    /// (`closed_idle`), never a violation (`oracle::idle`). Left out of plan files when
    /// not declared, so older plans read back unchanged.
    #[serde(
        default,
        with = "opt_duration_us",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
    /// `[oracles] idle_close`: the Close codes the server's idle timeout ends a
    /// connection with (default [`DEFAULT_IDLE_CLOSE`]: a normal closure or "going away";
    /// Discord's gateway uses 4009 "session timed out"). A server Close with another code
    /// never reads as an idle close. Left out of plan files when it is the default.
    #[serde(
        default = "default_idle_close",
        skip_serializing_if = "is_default_idle_close"
    )]
    pub idle_close: Vec<u16>,
    /// `[oracles] max_lifetime`: the server ends any connection once it has been open
    /// this long, whatever it is doing (AWS API Gateway after 2 hours, many proxies after
    /// N minutes). A server Close that may say so ([`Cause::may_end_by_policy`](crate::model::Cause::may_end_by_policy))
    /// ending an accepted connection mid-script at least [`IDLE_SLACK`] of this long after
    /// its 101 is then counted (`closed_at_lifetime`), never a violation. Left out of plan
    /// files when not declared, so older plans read back unchanged.
    #[serde(
        default,
        with = "opt_duration_us",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_lifetime: Option<Duration>,
    /// `[oracles] learn`: whether `run` and `hunt` calibrate first and check what they
    /// learned (default on; `--no-learn` also turns it off).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub learn: bool,
    /// Invariants learned by calibration, filled in by the run (never by the scenario
    /// file); empty when nothing was learned. Left out of plan files when empty.
    #[serde(default, skip_serializing_if = "LearnedOracles::is_empty")]
    pub learned: LearnedOracles,
    /// Set by the calibration phase only: every connection records an
    /// [`Observation`](super::learned::Observation). Never read from or written to files.
    #[serde(skip)]
    pub calibrating: bool,
}

/// How text frames carry records (`[oracles] framing`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// Each frame is one record (or several, split on `record_separator`): JSON, or text.
    #[default]
    Plain,
    /// `"socket.io"`: Engine.IO v4 packets carrying Socket.IO v5 packets, each read as a
    /// record `{"type", "nsp", "id", "data"}` and written from one; the server's pings
    /// answered (the oracle layer's `socketio` module).
    #[serde(rename = "socket.io")]
    SocketIo,
    /// `"stomp"`: STOMP 1.2 frames, each read as a record `{"type", "headers", "body"}`
    /// and written from one (the oracle layer's `stomp` module).
    Stomp,
}

impl OracleSpec {
    /// Whether a received text frame is read as it comes (no framing to decode, no
    /// embedded JSON to unwrap): most runs, on every message.
    pub fn reads_frames_as_they_are(&self) -> bool {
        self.framing.is_plain() && self.embedded_json.is_empty()
    }
}

impl Framing {
    /// Whether frames are read as they are.
    pub fn is_plain(&self) -> bool {
        *self == Framing::Plain
    }
}

/// The Close codes of an idle timeout unless `[oracles] idle_close` says others: a normal
/// closure (1000) or "going away" (1001), RFC 6455 §7.4.1.
pub const DEFAULT_IDLE_CLOSE: [u16; 2] = [1000, 1001];

fn default_idle_close() -> Vec<u16> {
    DEFAULT_IDLE_CLOSE.to_vec()
}

fn is_default_idle_close(codes: &Vec<u16>) -> bool {
    codes.as_slice() == DEFAULT_IDLE_CLOSE
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl Default for OracleSpec {
    fn default() -> Self {
        OracleSpec {
            type_field: "type".into(),
            kinds: Vec::new(),
            record_separator: None,
            framing: Framing::Plain,
            embedded_json: Vec::new(),
            batched: false,
            error_event: "error".into(),
            identity: None,
            sequence: None,
            sequence_per: None,
            sequence_kinds: Vec::new(),
            sequence_gaps: false,
            max_buffered: 256,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            session: SessionOracles::default(),
            idle_timeout: None,
            idle_close: default_idle_close(),
            max_lifetime: None,
            learn: true,
            learned: LearnedOracles::default(),
            calibrating: false,
        }
    }
}

/// WebSocket client limits: an oversized frame is a finding, not an out-of-memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest accepted message in bytes.
    pub max_message_bytes: usize,
    /// Connect + TLS + upgrade must finish within this.
    #[serde(with = "duration_us")]
    pub handshake_timeout: Duration,
    /// One frame write (a `send`, the token's first message, our Close) must be taken by
    /// the server within this; a server that stops reading ends the connection with
    /// `timeout_send` instead of blocking it forever. Left out of plan files when it is the
    /// default, so plans and repros written before it existed read back unchanged.
    #[serde(
        with = "duration_us",
        default = "default_send_timeout",
        skip_serializing_if = "is_default_send_timeout"
    )]
    pub send_timeout: Duration,
    /// Expectations one connection may have open at once (an open-model script, `every`
    /// paced, sends without waiting for answers). At the bound the connection reads until
    /// one is met or times out before it sends again; the wait shows as generator lag. It
    /// keeps a client that falls behind from holding every unanswered request of its
    /// backlog. Left out of plan files when it is the default.
    #[serde(
        default = "default_max_in_flight",
        skip_serializing_if = "is_default_max_in_flight"
    )]
    pub max_in_flight: usize,
}

/// The default `[limits] max_in_flight`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

fn default_max_in_flight() -> usize {
    DEFAULT_MAX_IN_FLIGHT
}

fn is_default_max_in_flight(n: &usize) -> bool {
    *n == DEFAULT_MAX_IN_FLIGHT
}

/// Connections one scenario may plan, over all groups: connection ids are u32 and every
/// connection costs memory while open (see [`CONNECTION_BYTES_ESTIMATE`]).
pub const MAX_CONNECTIONS: u64 = 1 << 22;

/// Actions one connection's script may expand to: loops cost nothing to plan, but step
/// numbers and the `{{run}}` counter stay within u32.
pub const MAX_ACTIONS_PER_CONNECTION: u64 = u32::MAX as u64;

/// What an open connection costs the client, roughly, in bytes (task, socket buffers,
/// oracle state; measured 13 KiB on Linux, rounded up): the memory estimate `validate`
/// states when it refuses a scenario's size.
pub const CONNECTION_BYTES_ESTIMATE: u64 = 16 * 1024;

/// The default `[limits] send_timeout`.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(10);

fn default_send_timeout() -> Duration {
    DEFAULT_SEND_TIMEOUT
}

fn is_default_send_timeout(d: &Duration) -> bool {
    *d == DEFAULT_SEND_TIMEOUT
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 1 << 20,
            handshake_timeout: Duration::from_secs(10),
            send_timeout: DEFAULT_SEND_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// Placeholders a `send` template or the `sub` template may use, filled in by `plan::build`:
/// `user` (user index in its group), `conn` (connection id, global), `run` (1-based send
/// counter of this connection), `group` (group name), `sub` (the token's subject),
/// `random` (16 hex digits from the seeded RNG), `uuid` (a v4-shaped id from the seeded RNG),
/// `marker` (filled by the engine when the frame goes out: the send's intended time, µs
/// since the run's start, read back from echoed messages; see `Plan::marker_fields`).
pub const PLACEHOLDERS: &[&str] = &[
    "user", "conn", "run", "group", "sub", "random", "uuid", "marker",
];

/// Every `{{$name}}` capture reference in `text`, in order: what the loader checks names
/// an earlier capture, and what a connection finds captured or not at run time.
pub fn capture_refs(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        let after = &rest[at + 2..];
        let Some(close) = after.find("}}") else { break };
        if let Some(name) = after[..close].trim().strip_prefix('$') {
            out.push(name);
        }
        rest = &after[close + 2..];
    }
    out
}

/// Placeholders that may be written `{{name:int}}`: alone in a string, the value goes out as
/// a JSON number (`id = "{{run:int}}"` sends `"id": 3`).
pub const INT_PLACEHOLDERS: &[&str] = &["user", "conn", "run"];

/// What is said of placeholder `{{name}}` where `context` (`send`, `target`) does not take
/// it: `allowed` lists what it takes (a `$` entry, which stands for captures, is not
/// listed).
pub fn placeholder_message(name: &str, allowed: &[&str], context: &str) -> String {
    if allowed.is_empty() {
        return format!("{context} takes no placeholders; found \"{{{{{name}}}}}\"");
    }
    let expected: Vec<String> = allowed
        .iter()
        .filter(|a| **a != "$")
        .map(|a| format!("{{{{{a}}}}}"))
        .collect();
    let expected = expected.join(", ");
    if PLACEHOLDERS.contains(&name) {
        return format!(
            "placeholder not available \"{{{{{name}}}}}\" in {context}; expected one of: {expected}"
        );
    }
    // The token is placed, not templated (it never appears in a plan or a result): where
    // it goes is [auth] placement's to say, the first message's included.
    // A text step's first message is text too: a JSON one is no use to a text protocol.
    if name == "token" {
        let first = match context {
            "send_text" => "placement = { first_text = \"AUTH {{token}}\" }",
            _ => "placement = { first_message = { type = \"auth\", token = \"{{token}}\" } }",
        };
        return format!(
            "\"{{{{token}}}}\" is not a placeholder of {context}: the token goes where [auth] \
             placement puts it (a header, the query, a cookie, a subprotocol, or the first \
             message: {first}, which waits for a server's challenge with `after = \"KIND\"` \
             in that table); expected one of: {expected}"
        );
    }
    let suggestion = match typed_otherwise(name, allowed) {
        Some(base) => format!("; did you mean \"{{{{{base}:int}}}}\"?"),
        None => closest_placeholder(name, allowed)
            .map_or_else(String::new, |c| format!("; did you mean \"{{{{{c}}}}}\"?")),
    };
    format!("unknown placeholder \"{{{{{name}}}}}\" in {context}; expected one of: {expected}{suggestion}")
}

/// The words placeholder names shorten: a typo of the word (`{{conection}}`) is far from
/// the short name by spelling, near it by meaning.
const SPELLED_OUT: &[(&str, &str)] = &[("conn", "connection"), ("sub", "subject")];

/// The placeholder `name` writes with another type than `:int` (`run:integer`,
/// `conn:number`), when it is one [`INT_PLACEHOLDERS`] lists and `allowed` takes: `:int`
/// is the one type a placeholder takes.
fn typed_otherwise<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let (base, kind) = name.split_once(':')?;
    let base = base.trim();
    (kind.trim() != "int" && INT_PLACEHOLDERS.contains(&base))
        .then(|| allowed.iter().copied().find(|a| *a == base))
        .flatten()
}

/// The placeholder of `allowed` that `name` (with its `:int`, if any) is a typo of, by its
/// name or the word it shortens ([`SPELLED_OUT`]); `None` when none is close.
fn closest_placeholder<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let base = name.strip_suffix(":int").map_or(name, str::trim_end);
    let names = allowed.iter().copied().filter(|a| *a != "$");
    let words = names.flat_map(|a| {
        let word = SPELLED_OUT.iter().find(|(n, _)| *n == a).map(|(_, w)| *w);
        std::iter::once(a).chain(word)
    });
    let found = super::words::closest(base, words)?;
    Some(
        SPELLED_OUT
            .iter()
            .find(|(_, w)| *w == found)
            .map_or(found, |(n, _)| *n),
    )
}

/// Placeholders the `sub` template may use (it is expanded before a connection exists).
pub const SUB_PLACEHOLDERS: &[&str] = &["user", "group"];

/// Serde's test for a default `earlier_send` or `earlier_send_step`.
fn is_zero(n: &u8) -> bool {
    *n == 0
}

#[cfg(test)]
mod step_place_tests {
    use super::StepPlace;

    #[test]
    fn a_step_place_packs_a_path_of_up_to_four_levels() {
        assert_eq!(StepPlace::of(&[9, 2]).shown().as_deref(), Some("9.2"));
        assert_eq!(StepPlace::of(&[1]).shown().as_deref(), Some("1"));
        let deepest = StepPlace::of(&[65_535, 1, 2, 3]);
        assert_eq!(deepest.shown().as_deref(), Some("65535.1.2.3"));
        for unknown in [&[][..], &[1, 2, 3, 4, 5], &[0], &[65_536], &[2, 0]] {
            assert_eq!(StepPlace::of(unknown), StepPlace::NONE, "{unknown:?}");
        }
        assert_eq!(StepPlace::NONE.shown(), None);
        assert_eq!(StepPlace::default(), StepPlace::NONE);
    }
}
