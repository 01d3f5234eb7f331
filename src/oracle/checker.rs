//! The per-connection streaming checker: completeness, identity and ordering.
//!
//! The invariants every record is checked against live in `checker/invariants.rs`; what a
//! failed expectation says came instead, in `checker/diagnosis.rs`.

use super::frame::{describe, fill, fill_str, holds_capture, kind_of, passes};
use super::pattern::{required_items, Fed, PatternState, Progress};
use crate::model::history::excerpt;
use crate::model::path::{key_is, key_text, lookup, Tree};
use crate::model::Observation;
use crate::model::{
    Action, Capture, ExpectCounts, ExpectPlan, ExpectRare, FieldTest, Leftovers, Misread,
    OracleKind, OracleSpec, PatternItem, Phase, Phases, StepPlace, StreamEnded, Tally, Test,
    Violation,
};
use crate::prefetch::Warm;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Violations kept per connection; the rest are only counted.
const MAX_KEPT: usize = 32;

/// How the `expected` of the steps a server's end cut off begins (`the script to go on:
/// 3 more steps (…)`): a completeness violation that is no unmet expectation.
pub const CUT_OFF: &str = "the script to go on";

/// The `expected` of a record that came for a request whose pattern was already met in
/// full and does not allow it (a duplicate delivery, or more of a stream than the pattern
/// says).
pub const ANSWERED_IN_FULL: &str = "nothing more for a request already answered in full";
/// The `expected` of a record that came for a request the server had answered with its
/// error event, when the answer sent after the error cannot take it (a second copy, or an
/// event out of the pattern's order): no pattern was met in full there.
pub const ANSWERED_WITH_ERROR: &str =
    "nothing out of its pattern for a request already answered with an error";
/// Correlation values of finished expectations remembered, to flag late duplicates.
const RECENT_DONE: usize = 64;
/// Event types remembered per expectation for the violation message.
const SEEN_KEPT: usize = 16;
/// Room for open expectations a connection keeps once they are all settled: the capacity
/// a `Vec` of this size takes at its first push (4), so a connection that fell behind once
/// holds afterwards what it held before (8 kept ~4 KiB more per connection: a soak's memory
/// stepped up 10% after one 3 s stall and stayed there).
const KEPT_ROOM: usize = 4;
/// The most room a settled expectation's `seen` text may keep for the next one.
const SPARE_SEEN_BYTES: usize = 1024;
/// Unclaimed records an unmet expectation's witness shows (the latest); the rest are only
/// counted.
const UNCLAIMED_SHOWN: usize = 3;
/// Bytes of one unclaimed record's JSON a witness shows.
const UNCLAIMED_BYTES: usize = 160;
/// Steps named in an early-end violation; the rest are only counted.
const STEPS_NAMED: usize = 3;
/// Event kinds remembered per reply span (a hostile server may invent any number).
const SPAN_KINDS: usize = 64;
/// How a missed Pong's violation begins its `expected` text, before the Ping's payload
/// quoted: `pong "p1" within 500ms`. An `expect` of a `pong` kind reads `pong within …`.
const PONG_EXPECTED: &str = "pong ";

/// Whether `v` is a Ping whose Pong missed its deadline ([`ConnChecker::pong_missed`]): a
/// late Pong still says when it came ([`Violation::late_ms`]), as a correlated `expect`'s
/// late answer does.
pub(crate) fn is_missed_pong(v: &Violation) -> bool {
    v.step.is_none()
        && v.correlation.is_none()
        && v.expected
            .strip_prefix(PONG_EXPECTED)
            .is_some_and(|rest| rest.starts_with('"'))
}

/// The replies to the latest request: its kind and the event kinds received since it was
/// sent, until the first expectation after it ended (learned completeness).
struct Span {
    request: String,
    events: BTreeSet<String>,
    /// The first expectation registered after the request: the span closes when it ends.
    /// Another request before that replaces the span unjudged (requests in flight together
    /// share their replies, so no span could be told apart).
    expect: Option<ExpectId>,
}

/// Who a connection is, for violation records.
#[derive(Debug, Clone)]
pub struct ConnIdentity {
    pub conn: u32,
    pub user: u32,
    pub group: String,
    pub jti: String,
    pub sub: String,
}

/// Handle to a registered expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectId(u64);

/// How an expectation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Met,
    /// An explicit error event answered it: allowed by the protocol, not a violation.
    Errored,
    Violated,
    /// The run ended first: neither met nor violated.
    Cut,
    /// The server cleanly refused the connection: neither met nor violated.
    Refused,
}

/// How a connection's stream ended, for what is still pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The server closed or the connection broke.
    Lost,
    /// We stopped: the run's duration, Ctrl-C, or our own close.
    Cut,
    /// The server cleanly refused the connection: a close code listed in `reject.close`,
    /// or the message `reject.message` names, before the attempt was accepted (the judge
    /// made it `Rejected`). What was pending
    /// belongs to a refused attempt, which the session oracles judge (rejection hygiene,
    /// liveness); its own script is not judged for completeness. Also a connection the
    /// server shed after accepting it (a Close 1013 or a `reject.shed` code): its policy
    /// under load, not a lost message.
    Refused,
}

struct Pending {
    id: ExpectId,
    state: PatternState,
    correlate: Option<(String, String)>,
    /// The request this answers: `(intended, actual)` send instants; `None` for
    /// expectations with no send before them (a greeting), which record no turn latency.
    sent_at: Option<(Instant, Instant)>,
    deadline: Instant,
    within: Duration,
    /// The kinds that arrived for it, space-separated (at most [`SEEN_KEPT`]; one string,
    /// not one per event: this runs for every answer).
    seen: String,
    seen_count: usize,
    /// A record this scenario cannot read arrived while it was open that could be part of
    /// its answer (one holding its correlation value, or any, when it is uncorrelated):
    /// what it misses may be in there.
    unread_seen: bool,
    /// `expect_none`: met when the deadline passes with none of the pattern's kinds.
    absent: bool,
    /// Opened while the attempt still waited for the server's acceptance in band
    /// ([`ConnChecker::before_acceptance`]).
    early: bool,
    /// Where the `expect` is written, for the violation ([`ConnChecker::at_step`]).
    step: StepPlace,
    /// Correlated records of kinds its pattern does not name (a typo'd kind, a protocol
    /// that names its replies otherwise): how many, and the first few kinds, for what a
    /// violation says it saw. Boxed: most expectations see none.
    strays: Option<Box<Strays>>,
    /// Field tests, captures and a name, which most expectations have none of: the plan's
    /// box, moved here, so that an open expectation (read on every message) takes fewer
    /// cache lines. `None` when it holds none of the three.
    extras: Option<Box<ExpectRare>>,
}

/// Correlated records of kinds outside an expectation's pattern ([`Pending::strays`]).
#[derive(Default)]
struct Strays {
    count: u64,
    /// The first [`STRAYS_NAMED`] distinct kinds, in arrival order.
    kinds: Vec<String>,
    /// Whether other kinds came after those.
    more: bool,
    /// Records of its pattern's kinds that came while it was open without the field it
    /// correlates on: a misnamed `correlate`, or a server that does not echo it.
    fieldless: u64,
    /// The top-level fields of the first of those (at most [`CARRIED_NAMED`]).
    carried: Vec<String>,
    /// The distinct kinds of those records, in arrival order (at most [`STRAYS_NAMED`]).
    fieldless_kinds: Vec<String>,
    /// The first other value a record of its pattern's kinds held at the field it
    /// correlates on ([`Misread::OtherCorrelationValue`]): JSON when no request id is (a
    /// boolean, `null`, an object, an array), else its key text; and whether it was a
    /// string or a number.
    other_value: Option<(String, bool)>,
    /// An uncorrelated expectation's: the first record of its pattern's kinds it let pass
    /// because a `where` test reads a field the record does not carry at all, the test's
    /// path and the record's top-level fields (a misnamed path, as for a correlated
    /// answer's [`Misread::NoCheckedField`]; a record that carries the field with another
    /// value is someone else's, and not noted; one that carries the value written but as
    /// another JSON type is a type slip, [`Misread::WrongType`]).
    untested: Option<Misread>,
    /// An uncorrelated expectation's: records of its pattern's kinds it let pass because a
    /// `where` test read another value there (another member's broadcast, or the server's
    /// own answer failing the test), and the first of them as `KIND with PATH = VALUE`.
    where_failed: u64,
    where_failed_first: Option<String>,
}

/// The sequences of `[oracles] sequence.per` values one connection keeps the last number
/// of: a feed of a few hundred instruments on one connection fits.
const SEQUENCES_KEPT: usize = 256;

/// The last sequence number seen on a stream ([`ConnChecker`]'s `last_seq`): none yet,
/// one, or, with `[oracles] sequence.per`, one per value of that field, at most
/// [`SEQUENCES_KEPT`] (the least recent dropped: its next number starts it again, not read
/// as a gap). Boxed there: most runs scope none, and a connection's state stays in its
/// allocator size class.
#[derive(Debug, Default)]
enum LastSeq {
    #[default]
    Unseen,
    One(i64),
    // Boxed on purpose: a `Vec` inline would make every checker 16 bytes larger.
    #[allow(clippy::box_collection)]
    Per(Box<Vec<(Box<str>, i64)>>),
}

/// How many elements of a positional record [`ConnChecker::positional_kind`] looks at.
const POSITIONS_LOOKED_AT: usize = 8;

/// How many kinds of unclaimed records a connection tells apart
/// ([`ConnChecker::count_unclaimed`]).
const UNCLAIMED_KINDS: usize = 4;

/// How many fields of a record without the correlation field an unmet expectation names.
const CARRIED_NAMED: usize = 6;

/// Whether `value` is one no request id is: a boolean, `null`, an object or an array (a
/// string or a number may be one).
fn is_no_id<J: Tree>(value: &J) -> bool {
    if value.text().is_some() || value.int().is_some() || value.uint().is_some() {
        return false;
    }
    // The rest: null, an object, an array, a boolean, or a float (written out only then).
    value.null() || value.is_object() || value.array_len().is_some() || {
        let text = value.to_string();
        text == "true" || text == "false"
    }
}

/// How many refused requests' correlation values a connection keeps
/// ([`ConnChecker::refused`]).
const REFUSED_KEPT: usize = 8;

/// How much of a value no request id is an unmet expectation quotes.
const NO_ID_BYTES: usize = 80;

/// How many stray kinds an unmet expectation names.
const STRAYS_NAMED: usize = 3;

/// A correlation value holding `{{$name}}` captures, filled from `captures` (the key text
/// of what they hold). Out of line: rare, and off the per-message path.
#[cold]
#[inline(never)]
fn filled(value: &str, captures: &BTreeMap<String, Value>) -> String {
    key_text(&fill_str(value, captures))
}

impl Pending {
    fn checks(&self) -> &[FieldTest] {
        self.extras.as_ref().map_or(&[], |e| &e.checks)
    }

    fn capture(&self) -> &[Capture] {
        self.extras.as_ref().map_or(&[], |e| &e.capture)
    }

    fn name(&self) -> Option<&str> {
        self.extras.as_ref().and_then(|e| e.name.as_deref())
    }
}

/// A record of a kind no step of the script names ([`ConnChecker::claiming_only`]): not
/// kept, but the latest few are what a witness shows the server said.
struct Ignored {
    at: Instant,
    /// Its kind.
    kind: Box<str>,
    /// Its JSON cut at [`UNCLAIMED_BYTES`] when the checker keeps bodies, else its kind.
    shown: String,
}

struct Buffered {
    event: String,
    /// `(field, value)` for every correlation field this connection uses.
    keys: Vec<(String, String)>,
    /// The correlation fields (bits by index, the first 8) whose value here no request id
    /// is ([`is_no_id`]): an expectation that opens after it and gets none of its kinds
    /// may be reading the wrong path ([`Strays::other_value`]).
    no_ids: u8,
    /// For an error event correlated with no open expectation: whether it says the
    /// connection is not authenticated on a connection already accepted (see
    /// [`ConnChecker::settle_by_error`]), judged when it arrived.
    contradicts: bool,
    /// The message itself, kept only when some expectation tests fields or captures.
    body: Option<Value>,
    /// Arrival time: latency is measured to when the event came, not when it was claimed.
    at: Instant,
    /// What it counts against `max_buffered_bytes`.
    bytes: usize,
    /// The values of the learned identity fields it carries, judged if an expectation of
    /// this connection claims it (see [`ConnChecker::check_learned_identity`]).
    learned_ids: Vec<(usize, Value)>,
}

impl Buffered {
    /// What a buffered message costs in memory: its record, kind, correlation keys and,
    /// when kept, its body (estimated by [`value_bytes`]).
    fn measure(event: &str, keys: &[(String, String)], body: Option<&Value>) -> usize {
        std::mem::size_of::<Buffered>()
            + event.len()
            + keys
                .iter()
                .map(|(f, v)| std::mem::size_of::<(String, String)>() + f.len() + v.len())
                .sum::<usize>()
            + body.map_or(0, value_bytes)
    }
}

/// An estimate of the memory a JSON value holds: its node, its strings' bytes, and per
/// object entry the key, the value and the map's bookkeeping (a hash and an index slot;
/// objects keep their keys in written order). Close enough to bound a buffer by.
fn value_bytes(value: &Value) -> usize {
    let node = std::mem::size_of::<Value>();
    match value {
        Value::String(s) => node + s.len(),
        Value::Array(items) => node + items.iter().map(value_bytes).sum::<usize>(),
        Value::Object(map) => {
            node + map
                .iter()
                .map(|(k, v)| {
                    std::mem::size_of::<String>()
                        + 2 * std::mem::size_of::<usize>()
                        + k.len()
                        + value_bytes(v)
                })
                .sum::<usize>()
        }
        _ => node,
    }
}

/// What registering an expectation took from the buffer.
#[derive(Default)]
struct Claim {
    indices: Vec<usize>,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
    out_of_order: Option<String>,
    /// A correlated answer that failed the field tests: its kind and body.
    failed: Option<(String, Value)>,
    /// Buffered records of a correlated expectation's kinds, carrying its value, that came
    /// after the records that completed it and that its finished pattern cannot take:
    /// more for a request already answered in full (a duplicate delivered before its
    /// `expect` opened), as their index in the buffer and kind.
    duplicates: Vec<(usize, String)>,
    /// A claimed record that passed a `where` test on a `{{$name}}` capture, though it came
    /// before the answer that gave the capture its value: its kind, the capture's name, and
    /// how much sooner. The server used the value before it announced it (a notification
    /// for a subscription id sent ahead of the subscribe's result), which a client routing
    /// by the value would drop.
    before_announced: Option<(String, String, Duration)>,
}

/// [`Claim::before_announced`] for buffered record `b`, which `p` takes: the first capture
/// its `where` tests name that was taken after `b` came.
fn announced_after(
    p: &Pending,
    b: &Buffered,
    rare: Option<&CheckerRare>,
) -> Option<(String, String, Duration)> {
    let times = &rare?.captured_at;
    let extras = p.extras.as_deref()?;
    extras.checks.iter().find_map(|t| {
        let text = match &t.test {
            Test::Equals(Value::String(s)) | Test::Matches(s) => s.as_str(),
            _ => return None,
        };
        crate::model::capture_refs(text)
            .into_iter()
            .find_map(|name| {
                let (_, taken) = times.iter().find(|(n, _)| n == name)?;
                let sooner = taken
                    .checked_duration_since(b.at)
                    .filter(|d| !d.is_zero())?;
                Some((b.event.clone(), name.to_string(), sooner))
            })
    })
}

/// Feeds buffered messages that belong to `p`, in arrival order; their captures go to
/// `captures` (what a message lacked, to `tallies`).
fn claim_buffered(
    p: &mut Pending,
    buffer: &VecDeque<Buffered>,
    (captures, tallies, rare): Captures<'_>,
) -> Claim {
    let mut claim = Claim::default();
    for (i, b) in buffer.iter().enumerate() {
        if !belongs(p, b) || !in_pattern(p, &b.event) {
            continue;
        }
        if let Some(body) = &b.body {
            if first_failed(p, body, captures).is_some() {
                // An answer that fails the field tests: the caller reports it when it is
                // the correlated answer; an uncorrelated expectation is not its business.
                if p.correlate.is_some() {
                    claim.indices.push(i);
                    claim.failed = Some((b.event.clone(), body.clone()));
                    break;
                }
                continue;
            }
        }
        let mut trial = p.state.clone();
        match trial.feed(&b.event) {
            // An uncorrelated expectation just skips messages that do not fit it.
            Fed::Unexpected if p.correlate.is_none() => continue,
            Fed::Unexpected => {
                claim.indices.push(i);
                claim.out_of_order = Some(b.event.clone());
                break;
            }
            fed => {
                p.state = trial;
                if claim.before_announced.is_none() {
                    claim.before_announced = announced_after(p, b, rare.as_deref());
                }
                if let Some(body) = &b.body {
                    take_captures(p, body, b.at, (captures, tallies, rare));
                }
                note_seen(p, &b.event);
                claim.indices.push(i);
                claim.first_at.get_or_insert(b.at);
                claim.last_at = Some(b.at);
                if fed == Fed::Complete {
                    // A push's value is a channel's: the others on it are other pushes.
                    if p.correlate.is_some() && !claims_pushes(p) {
                        claim.duplicates = duplicates_after(p, buffer, i);
                    }
                    break;
                }
            }
        }
    }
    claim
}

/// The buffered records after index `from` that belong to `p` (complete now) and that
/// its finished pattern cannot take ([`Claim::duplicates`]).
fn duplicates_after(p: &Pending, buffer: &VecDeque<Buffered>, from: usize) -> Vec<(usize, String)> {
    let mut state = p.state.clone();
    buffer
        .iter()
        .enumerate()
        .skip(from + 1)
        .filter(|(_, b)| belongs(p, b) && in_pattern(p, &b.event))
        .filter_map(|(i, b)| match state.clone().feed(&b.event) {
            Fed::Unexpected => Some((i, b.event.clone())),
            // A trailing optional item it may still take.
            _ => {
                state.feed(&b.event);
                None
            }
        })
        .collect()
}

/// Streaming oracles for one connection.
///
/// `repr(C)`, its fields in the order written: what every message reads comes first, so
/// that it takes as few cache lines as it can (a thousand connections' checkers do not
/// stay in a core's cache between one connection's messages).
#[repr(C)]
pub struct ConnChecker {
    spec: Arc<OracleSpec>,
    pending: Vec<Pending>,
    /// Latency samples produced by the last calls; the task drains them.
    pub samples: Vec<(Phases, Duration)>,
    /// Every violation found, including those beyond the kept ones.
    pub violated: u64,
    /// Events expected and arrived per item of this connection's first few patterns,
    /// found by the pattern's address: a map keyed by kind name cost two lookups per
    /// message, each reading the map's node and a key string that a thousand connections
    /// had long pushed out of the cache.
    tallies: Vec<PatternTally>,
    /// The `seen` text of the last settled expectation, emptied, for the next one: one
    /// string per connection instead of one per expectation (this runs for every answer).
    spare_seen: String,
    /// Where the next expectation's `expect` is written ([`Self::at_step`]).
    next_step: StepPlace,
    /// The steps at which an expectation was met, as a 64-bit Bloom filter of their places
    /// ([`StepPlace::bloom_bit`]): what tells a step whose every request the server
    /// answered with its error event from one it served some of ([`Self::take_step_errors`]).
    /// A false positive only keeps a refused step from being called so.
    met_steps: u64,
    /// Whether the next expectation opens before the attempt's acceptance in band
    /// ([`Self::before_acceptance`]).
    next_early: bool,
    /// Keep buffered messages' bodies (some expectation tests fields or captures).
    keep_bodies: bool,
    /// Whether learned invariants apply (off for forged tokens: what calibration learned
    /// from valid tokens says nothing about, e.g., a token with an empty `sub`).
    learned_on: bool,
    /// Whether the declared identity applies (off for a forged token that names another
    /// subject than the plan's: an empty `sub`, none, a second `sub`).
    identity_on: bool,
    /// Whether this stream kept an unread record (`unread.recent`): read by every
    /// expectation as it opens, so kept here, beside what it reads anyway, not there.
    unread_kept: bool,
    /// Expectations answered with the error event whose whole answer then came all the
    /// same ([`Self::answered_after_error`]). A `u16`, saturating, in the padding after the
    /// flags above: one more word here would take every connection's state into its
    /// allocator's next size class.
    answered_after_error: u16,
    /// Finished expectations: a hash of their correlation value ([`key_hash`]) and where
    /// their pattern stopped, so an event the pattern still allows (a trailing `x*`) is
    /// accepted, not flagged. A hash, not the text: the text would live 64 expectations
    /// longer than its expectation, and freeing that cold string and allocating in its
    /// place cost every message two cache misses at a thousand connections.
    /// Each names its pattern by its slot in `tallies`: 24 bytes with nothing to drop, so
    /// the ring (64 of them, per connection) takes 1.5 KiB, and replacing its oldest
    /// entry reads nothing (an entry holding its pattern took 48 bytes, and dropping it
    /// read a cold line on every answer).
    recent_done: VecDeque<Done>,
    /// What the last settled expectation left for the next one ([`Self::leftovers`]).
    leftovers: Leftovers,
    /// The open reply span, when learned completeness or calibration needs one.
    span: Option<Box<Span>>,
    next_id: u64,
    /// When this connection's latest request went out ([`Self::note_request`]): a late
    /// answer that came after a later request than its own says how long after it
    /// ([`Violation::after_request_ms`]).
    last_request: Option<Instant>,
    /// Turn latencies of named expectations produced by the last calls, by name; the task
    /// drains them too.
    pub named_samples: Vec<(String, Duration)>,
    buffer: VecDeque<Buffered>,
    /// Values captured by expectations (`capture = { name = "path" }`), by name: what later
    /// sends fill `{{$name}}` with. Bounded by the names the script captures.
    pub captures: BTreeMap<String, Value>,
    correlate_fields: Vec<String>,
    /// Boxed, like the other parts only some moments read: every idle connection keeps a
    /// checker.
    who: Box<ConnIdentity>,
    /// What this connection saw, when calibrating; taken by the task at the end.
    pub observed: Option<Box<Observation>>,
    /// Expectations registered and how they ended, events expected and arrived (the
    /// latter complete once `tallies` are folded in: [`ConnChecker::take_counts`]).
    counts: ExpectCounts,
    /// The same for the patterns without a slot in `tallies` (made afresh per
    /// expectation, or past [`TALLIED_PATTERNS`]): each holds its pattern.
    recent_done_unslotted: VecDeque<DoneUnslotted>,
    /// The correlation values (hashed) of the latest requests the server answered with
    /// its error event ([`REFUSED_KEPT`]): a later expectation of the same request (its
    /// result after its ack) is owed nothing once the request was refused. Each with when
    /// the error came, for an `expect_none` of that error opened after it
    /// ([`Self::absence_broken_before`]).
    /// With the instant its request went out, when known: an expectation of the same
    /// request correlated on another field (a publish's push, by the message's id) is owed
    /// nothing either.
    refused: VecDeque<(u64, Instant, Option<Instant>)>,
    /// Correlated expectations whose deadline ran out while their request's send instants
    /// were known: an answer that comes whole later is timed from its request
    /// ([`Self::answered_late`]). The latest [`LATE_WAITS`] only; empty (no allocation)
    /// until a deadline runs out.
    late_waits: VecDeque<LateWait>,
    /// The kinds of unclaimed records naming no request seen on this stream, and how many
    /// of each came ([`Self::count_unclaimed`]); empty until one comes.
    unclaimed_seen: Vec<(String, u32)>,
    last_seq: LastSeq,
    /// The sum of the buffer's `Buffered::bytes`.
    buffered_bytes: usize,
    t0: Instant,
    /// Every kind an expectation of this connection's script could claim
    /// ([`Self::claiming_only`]); `None`: any.
    claimable: Option<Arc<BTreeSet<String>>>,
    /// The latest [`UNCLAIMED_SHOWN`] records of kinds no step names ([`Ignored`]).
    ignored: VecDeque<Ignored>,
    saw_uncorrelated_error: bool,
    /// The server accepted this attempt of a valid token ([`ConnChecker::authenticated`]):
    /// an error that says "not authenticated" then is no allowed answer.
    authenticated: bool,
    /// Required items of answers that came after their request's error event, counted as
    /// arrived ([`Self::arrived_after_error`]), whether or not the whole answer came. A
    /// `u32`, saturating, in the padding after the two flags above, for the reason
    /// `answered_after_error` gives.
    arrived_after_error: u32,
    /// Records received that no expectation could read: an expectation that saw nothing
    /// says so, since a scenario missing the protocol's record separator, or reading the
    /// kind from the wrong field, looks like silence otherwise.
    unread: Unread,
    pub violations: Vec<Violation>,
    /// The same, by oracle.
    pub violated_by: BTreeMap<OracleKind, u64>,
    /// What few connections hold: an awaited Pong, learned identity findings set aside.
    rare: Option<Box<CheckerRare>>,
}

/// The Close code by which a server says it failed (RFC 6455 §7.4.1: 1011, an unexpected
/// condition prevented it from fulfilling the request): an error it sent before explains
/// nothing of what the close then cut.
const SERVER_FAILED: u16 = 1011;

/// The parts of a [`ConnChecker`] few connections use, boxed.
#[derive(Default)]
struct CheckerRare {
    /// Expectations cut as not owed after a refused request
    /// ([`ConnChecker::expectations_after_refusal`]).
    after_refusal: u64,
    /// When the server last refused a request it named, after acceptance, on this stream
    /// ([`ConnChecker::refusal_last_word`]).
    refused_at: Option<Instant>,
    /// The Ping a `ping` step with `within` sent, awaiting its Pong; kept past its
    /// deadline, until the next ping, to say when a late Pong came.
    pong: Option<AwaitedPong>,
    /// Learned identity findings on records an uncorrelated expectation claimed after a
    /// request went out (at most [`HELD_IDENTITY_KEPT`]): judged when the stream ends,
    /// unless records of that kind were then left unclaimed
    /// ([`ConnChecker::settle_held_identity`]).
    held_identity: Vec<HeldIdentity>,
    /// The latest [`STRAYS_KEPT`] correlated records of kinds the expectation they
    /// correlated with does not name: `(key_hash of the correlation value, key_hash of the
    /// kind, when)`, for an `expect_none` of that kind opened after it
    /// ([`ConnChecker::absence_broken_before`]).
    strays: VecDeque<(u64, u64, Instant)>,
    /// When each `{{$name}}` capture took the value it holds (the arrival of the record it
    /// came from; the first such record when the value came again): a buffered record that
    /// passes a test on it, come sooner, was sent before the value was announced
    /// ([`Claim::before_announced`]).
    captured_at: Vec<(String, Instant)>,
    /// The last value of each learned sequence field (`spec.learned.sequence`, same order;
    /// empty until one is read): here, not in the checker, which every connection holds
    /// inline, and few runs learn a sequence.
    learned_seq: Vec<Option<i64>>,
    /// The steps (at most [`ERRORED_STEPS_KEPT`]) at which the server answered a request
    /// sent after its acceptance with its error event ([`ConnChecker::take_step_errors`]).
    errored_steps: Vec<StepPlace>,
    /// Records of kinds an uncorrelated `expect_none` forbids that came after the request
    /// before it but before it opened, and the first one's kind: unjudged, for an
    /// uncorrelated absence counts from where it opens ([`ConnChecker::take_forbidden_before`]).
    forbidden_before: (u64, Option<String>),
    /// Set while an error event that names no request settles the oldest unanswered
    /// expectation (a guess that it answered that one): such a refusal names no step
    /// ([`ConnChecker::note_errored_step`]), for it may be another request's (a send no
    /// `expect` follows).
    settling_unnamed_error: bool,
}

/// How many steps with a refused request a connection names
/// ([`CheckerRare::errored_steps`]); a script refused at more steps than that is judged on
/// its first ones.
const ERRORED_STEPS_KEPT: usize = 16;

/// How many correlated strays a connection remembers ([`CheckerRare::strays`]).
const STRAYS_KEPT: usize = 16;

/// A learned identity finding set aside ([`CheckerRare::held_identity`]).
struct HeldIdentity {
    /// The kind of the record it was found on.
    kind: String,
    /// The learned identity values the record carried ([`ConnChecker::learned_ids`]).
    ids: Vec<(usize, Value)>,
    /// When the record came.
    at: Instant,
}

/// How many learned identity findings a stream sets aside; past them, the rest are not
/// judged (the first ones say as much as the rest would).
const HELD_IDENTITY_KEPT: usize = 64;

/// A Ping a `ping` step sent with `within`.
#[derive(Debug)]
struct AwaitedPong {
    payload: Vec<u8>,
    sent: Instant,
    /// How long its Pong may take.
    within: Duration,
    /// The index of the violation its deadline raised, once it passed (the Pong is late).
    missed: Option<usize>,
}

impl ConnChecker {
    pub fn new(
        spec: Arc<OracleSpec>,
        who: ConnIdentity,
        t0: Instant,
        correlate_fields: Vec<String>,
    ) -> Self {
        ConnChecker {
            who: Box::new(who),
            t0,
            correlate_fields,
            pending: Vec::new(),
            buffer: VecDeque::new(),
            buffered_bytes: 0,
            recent_done: VecDeque::new(),
            recent_done_unslotted: VecDeque::new(),
            refused: VecDeque::new(),
            late_waits: VecDeque::new(),
            last_request: None,
            unclaimed_seen: Vec::new(),
            last_seq: LastSeq::Unseen,
            saw_uncorrelated_error: false,
            authenticated: false,
            unread: Unread::default(),
            spare_seen: String::new(),
            next_step: StepPlace::NONE,
            met_steps: 0,
            next_early: false,
            leftovers: Leftovers::default(),
            next_id: 0,
            violations: Vec::new(),
            samples: Vec::new(),
            named_samples: Vec::new(),
            violated: 0,
            violated_by: BTreeMap::new(),
            counts: ExpectCounts::default(),
            tallies: Vec::new(),
            captures: BTreeMap::new(),
            rare: None,
            keep_bodies: false,
            span: None,
            observed: spec.calibrating.then(Box::default),
            learned_on: true,
            identity_on: true,
            unread_kept: false,
            answered_after_error: 0,
            arrived_after_error: 0,
            claimable: None,
            ignored: VecDeque::new(),
            spec,
        }
    }

    /// Keeps the bodies of buffered messages, so expectations registered after their
    /// messages arrived can test fields and capture values. Costs memory (up to
    /// `max_buffered` messages per connection): only for scripts that need it.
    pub fn with_bodies(mut self) -> Self {
        self.keep_bodies = true;
        self
    }

    /// Keeps unclaimed records only of these kinds (every kind the connection's script
    /// expects; `None`: any): a record of a kind no step names can never be claimed, and
    /// buffered it would push out one that could (a server's heartbeat every 50 ms filled
    /// the buffer and dropped a correlated reply).
    pub fn claiming_only(mut self, kinds: Option<Arc<BTreeSet<String>>>) -> Self {
        self.claimable = kinds;
        self
    }

    /// Turns the learned invariants off for this connection: its token is forged or
    /// time-shifted, so what valid tokens taught does not apply to it.
    pub fn without_learned(mut self) -> Self {
        self.learned_on = false;
        self
    }

    /// Turns the declared identity off for this connection: its token is forged to name
    /// another subject than the plan's (`empty-sub`, `missing-sub`, `duplicate-sub-keys`),
    /// so a server that accepts it rightly answers as whoever the token names, not as the
    /// plan's user.
    pub fn without_identity(mut self) -> Self {
        self.identity_on = false;
        self
    }

    /// Gives back the capacity of the per-message buffers that are empty (pending
    /// expectations, unclaimed messages, samples): for a connection about to sit idle.
    pub fn shrink(&mut self) {
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
        if self.buffer.is_empty() {
            self.buffer = VecDeque::new();
        }
        if self.samples.is_empty() {
            self.samples = Vec::new();
        }
        if self.named_samples.is_empty() {
            self.named_samples = Vec::new();
        }
        self.spare_seen = String::new();
        self.leftovers = Leftovers::default();
    }

    /// A fresh connection (reconnect): the sequence restarts, old messages are void.
    pub fn reset_stream(&mut self) {
        // What the ending stream left unclaimed says whether what was set aside on it was
        // a broadcast: settled before the buffer goes.
        self.settle_held_identity();
        self.last_seq = LastSeq::Unseen;
        self.forget_learned_sequences();
        self.span = None;
        if let Some(obs) = &mut self.observed {
            obs.streams.push(obs.messages.len());
        }
        self.buffer.clear();
        self.ignored.clear();
        self.buffered_bytes = 0;
        self.unread.recent.clear();
        self.unread_kept = false;
        self.saw_uncorrelated_error = false;
        if let Some(rare) = self.rare.as_mut() {
            rare.refused_at = None;
        }
        self.authenticated = false;
        // A new stream's greeting is its own.
        self.unclaimed_seen.clear();
    }

    /// The server accepted the connection's current attempt, its token a valid one: from
    /// now on an error event that says the connection is not authenticated
    /// (`says_unauthenticated`) answers no request as an allowed error does; it is the
    /// server contradicting its own acceptance (an ack sent before the session was
    /// ready: race pattern P7), a completeness violation.
    pub fn authenticated(&mut self) {
        self.authenticated = true;
    }

    /// The expectation counts so far, events included (tests read them mid-run; the
    /// engine takes them once, at the end: [`Self::take_counts`]).
    #[cfg(test)]
    pub(crate) fn counts(&mut self) -> &ExpectCounts {
        self.fold_tallies();
        &self.counts
    }

    /// Takes what the first record without a kind was ([`Counters::kindless_shape`]),
    /// leaving `None`.
    ///
    /// [`Counters::kindless_shape`]: crate::model::Counters::kindless_shape
    pub fn take_kindless_shape(&mut self) -> Option<Box<str>> {
        self.unread.kindless_shape.take()
    }

    /// The steps at which the server answered a request of this connection with its error
    /// event after accepting it, and a Bloom filter of those at which an expectation was
    /// met (`(errored, met)`, [`StepPlace::bloom_bit`]): what the verdict reads a step the
    /// server turned every request of away by. Leaves both empty.
    pub fn take_step_errors(&mut self) -> (Vec<StepPlace>, u64) {
        let errored = self
            .rare
            .as_mut()
            .map(|r| std::mem::take(&mut r.errored_steps))
            .unwrap_or_default();
        (errored, std::mem::take(&mut self.met_steps))
    }

    /// Records of kinds an uncorrelated `expect_none` forbade that came after the request
    /// before it but before it opened, unjudged, and the first one's kind (`(0, None)`
    /// when none). Leaves none.
    pub fn take_forbidden_before(&mut self) -> (u64, Option<String>) {
        self.rare
            .as_mut()
            .map(|r| std::mem::take(&mut r.forbidden_before))
            .unwrap_or_default()
    }

    /// An uncorrelated `expect_none` (`p`) opening: counts the buffered records of its
    /// kinds that came since the connection's last request, which it does not judge (it
    /// counts from now) but which a user who wrote it after an `expect` of the ack may
    /// have meant it to ([`Self::take_forbidden_before`]).
    fn note_forbidden_before(&mut self, p: &Pending) {
        let Some(request) = self.last_request else {
            return;
        };
        let mut came = self
            .buffer
            .iter()
            .filter(|b| b.at >= request && in_pattern(p, &b.event));
        let Some(first) = came.next() else {
            return;
        };
        let (n, kind) = (1 + came.count() as u64, first.event.clone());
        let before = &mut self.rare.get_or_insert_with(Box::default).forbidden_before;
        before.0 += n;
        before.1.get_or_insert(kind);
    }

    /// Keeps `step` among those at which a request was refused with the error event.
    /// Once per refused request, never per message that is served.
    fn note_errored_step(&mut self, step: StepPlace) {
        let guessed = self.rare.as_ref().is_some_and(|r| r.settling_unnamed_error);
        if step == StepPlace::NONE || guessed {
            return;
        }
        let kept = &mut self.rare.get_or_insert_with(Box::default).errored_steps;
        if kept.len() < ERRORED_STEPS_KEPT && !kept.contains(&step) {
            kept.push(step);
        }
    }

    /// Takes the expectation counts (events included), leaving zeros.
    pub fn take_counts(&mut self) -> ExpectCounts {
        self.fold_tallies();
        std::mem::take(&mut self.counts)
    }

    /// Moves the per-pattern tallies into `counts.events`, by kind.
    fn fold_tallies(&mut self) {
        for t in &mut self.tallies {
            for i in required_items(&t.items) {
                let Some(tally) = t.per_item.get_mut(i) else {
                    continue;
                };
                let total = self
                    .counts
                    .events
                    .entry(t.items[i].event.clone())
                    .or_default();
                total.expected += tally.expected;
                total.arrived += tally.arrived;
                *tally = Tally::default();
            }
        }
    }

    /// Counts, when an expectation settles, what its pattern expected and got, per
    /// required kind. Returns the pattern's slot in `tallies`, if it has one.
    fn tally(&mut self, state: &PatternState, what: Tallied) -> Option<usize> {
        let items = state.items();
        let at = match self.tally_slot(items) {
            Some(at) => Some(at),
            None if self.tallies.len() < TALLIED_PATTERNS => {
                self.tallies.push(PatternTally {
                    items: items.clone(),
                    per_item: vec![Tally::default(); items.len()],
                });
                Some(self.tallies.len() - 1)
            }
            // Patterns made afresh per expectation (placeholders in kinds): by name.
            None => None,
        };
        let Some(per_item) = at.and_then(|at| self.tallies.get_mut(at)) else {
            self.tally_by_name(state, what);
            return None;
        };
        let per_item = &mut per_item.per_item;
        if matches!(what, Tallied::Answered) {
            bump(per_item, required_items(items), |t| t.expected += 1);
        }
        bump(per_item, state.arrived_required_items(), |t| t.arrived += 1);
        at
    }

    /// The slot in `tallies` of the pattern `items`, if it has one.
    fn tally_slot(&self, items: &Arc<[PatternItem]>) -> Option<usize> {
        self.tallies
            .iter()
            .position(|t| Arc::ptr_eq(&t.items, items))
    }

    /// [`Self::tally`] for a pattern without a slot of its own, in `counts.events`.
    fn tally_by_name(&mut self, state: &PatternState, what: Tallied) {
        let events = &mut self.counts.events;
        if matches!(what, Tallied::Answered) {
            for e in state.required_events() {
                bump_kind(events, e, |t| t.expected += 1);
            }
        }
        for e in state.arrived_required() {
            bump_kind(events, e, |t| t.arrived += 1);
        }
    }

    /// Says where the next [`Self::expect`]'s step is written in the script, for the
    /// violation it may end in (which of several alike `expect`s went unmet).
    pub fn at_step(&mut self, place: StepPlace) {
        self.next_step = place;
    }

    /// Says that the next [`Self::expect`] opens while the attempt still waits for the
    /// server's acceptance in band (its request went out before the ack): an error event
    /// answering it may be the server refusing a request that came too early, which the
    /// verdict tells apart from a server that refuses every request
    /// ([`ExpectCounts::expectations_errored_early`]).
    pub fn before_acceptance(&mut self) {
        self.next_early = true;
    }

    /// Registers an expectation for a request sent at `sent_at`, matching buffered messages.
    /// Takes the plan by value: its strings move into the open expectation (this runs once
    /// per expected answer).
    pub fn expect(
        &mut self,
        plan: ExpectPlan,
        sent_at: Option<(Instant, Instant)>,
        now: Instant,
    ) -> ExpectId {
        let id = ExpectId(self.next_id);
        self.next_id += 1;
        if let Some(span) = self
            .span
            .as_mut()
            .filter(|s| s.expect.is_none() && !plan.absent)
        {
            span.expect = Some(id);
        }
        self.counts.expectations += 1;
        let ExpectPlan {
            pattern,
            correlate,
            within,
            wait: _,
            absent,
            rare,
        } = plan;
        let mut pending = Pending {
            id,
            state: PatternState::new(pattern),
            // A request that carried a captured value correlates on what was sent.
            correlate: correlate.map(|(field, value)| {
                // No capture yet, nothing to fill (`filled` leaves an unknown name as
                // written): most connections capture nothing, and the scan ran per answer.
                let value = if !self.captures.is_empty() && holds_capture(&value) {
                    filled(&value, &self.captures)
                } else {
                    value
                };
                (field, value)
            }),
            sent_at,
            deadline: now + within,
            within,
            seen: std::mem::take(&mut self.spare_seen),
            seen_count: 0,
            unread_seen: false,
            absent,
            early: std::mem::take(&mut self.next_early),
            step: std::mem::take(&mut self.next_step),
            strays: None,
            extras: rare.filter(|r| r.judged()),
        };
        if self.counts.expectations_errored > 0 && needs_uncaptured(&pending, &self.captures) {
            // What it tests was to come from an answer the server refused with its error
            // (nothing captured): this request depended on the refused one. Nothing judges
            // it, as nothing judges one the run's end cut; it is no error answer of its own
            // (the error rate counts the refused request once).
            self.pending.push(pending);
            self.resolve(self.pending.len() - 1, Resolution::Cut);
            return id;
        }
        if absent {
            // An uncorrelated absence counts from now: what arrived before is not its own.
            // A correlated one also judges what its request got before it opened.
            let broken = match pending.correlate {
                Some(_) => self.absence_broken_before(&pending),
                None => {
                    self.note_forbidden_before(&pending);
                    None
                }
            };
            self.pending.push(pending);
            if let Some(seen) = broken {
                self.violate_absence(self.pending.len() - 1, seen, now);
            }
            return id;
        }
        if !self.unread_kept && self.buffer.is_empty() {
            // Most expectations: nothing came before them to claim or to explain. An
            // uncorrelated one may misname a kind no step names that came before it.
            if pending.correlate.is_none() && !self.ignored.is_empty() {
                self.note_ignored_since_request(&mut pending);
            }
            self.pending.push(pending);
        } else {
            self.open_against_buffer(pending, now);
        }
        id
    }

    /// [`Self::expect`]'s end for an expectation opened with records already buffered or
    /// unreadable ones kept: claims what it can of them, and settles it when they do.
    /// Out of line: most expectations open with nothing there, and every one runs
    /// `expect`'s code (a per-message path that should fit the instruction cache).
    #[cold]
    #[inline(never)]
    fn open_against_buffer(&mut self, mut pending: Pending, now: Instant) {
        if self.unread_kept {
            // What it waits for may have come already, in a record no one could read.
            pending.unread_seen = self
                .unread
                .recent
                .iter()
                .any(|record| held_earlier(&self.spec, &pending, record));
        }
        let captures = (
            &mut self.captures,
            &mut self.counts.captures,
            &mut self.rare,
        );
        let claim = claim_buffered(&mut pending, &self.buffer, captures);
        // Claimed and duplicate records leave the buffer together, the highest index
        // first so that the others stay where they are.
        let mut taken: Vec<usize> = claim.indices.clone();
        taken.extend(claim.duplicates.iter().map(|(i, _)| *i));
        taken.sort_unstable();
        let own = owns_its_claims(&pending);
        let pushed = claims_pushes(&pending);
        for i in taken.iter().rev() {
            if let Some(b) = self.buffer.remove(*i) {
                self.buffered_bytes -= b.bytes;
                if pushed {
                    // Pushes carry whoever caused them: not judged ([`claims_pushes`]).
                } else if own {
                    self.judge_learned_ids(&b.learned_ids, now);
                } else {
                    self.hold_learned_ids(b.event, b.learned_ids, b.at);
                }
            }
        }
        let key = pending.correlate.as_ref().map(|(_, value)| value.clone());
        // What else the buffer says of it, when it took nothing there (most often the
        // buffer is empty: nothing to read).
        let unclaimed = claim.indices.is_empty() && !self.buffer.is_empty();
        let error = unclaimed
            .then(|| self.buffered_error_for(&pending))
            .flatten();
        if unclaimed && error.is_none() {
            self.note_buffered_other_value(&mut pending);
            self.note_buffered_untested(&mut pending);
        }
        if claim.indices.is_empty() {
            self.note_ignored_since_request(&mut pending);
        }
        self.pending.push(pending);
        let idx = self.pending.len() - 1;
        if let Some(b) = error.and_then(|i| self.buffer.remove(i)) {
            self.buffered_bytes -= b.bytes;
            let body = b.body.unwrap_or_default();
            self.settle_by_error(idx, &body, b.contradicts, now);
            return;
        }
        if let Some((event, body)) = claim.failed {
            self.failed_checks(idx, &event, &body, now);
        } else if let Some(event) = claim.out_of_order {
            self.out_of_order(idx, &event, now);
        } else if let Some(first_at) = claim.first_at {
            self.after_feed(idx, Some(first_at), claim.last_at.unwrap_or(now));
        }
        if let Some((event, name, sooner)) = claim.before_announced {
            self.violate(
                OracleKind::Ordering,
                now,
                format!("{event} only after the answer that gave {{{{${name}}}}}"),
                format!(
                    "{event} carrying it {:.1} ms before that answer",
                    sooner.as_secs_f64() * 1000.0
                ),
                key.clone(),
            );
        }
        // Delivered twice before it opened: what the late path calls a duplicate when it
        // comes after.
        for (_, event) in claim.duplicates {
            self.violate(
                OracleKind::Completeness,
                now,
                ANSWERED_IN_FULL.to_string(),
                event,
                key.clone(),
            );
        }
    }

    /// A Ping with `payload` went out at `now`; its Pong is due within `within`.
    pub fn await_pong(&mut self, payload: Vec<u8>, within: Duration, now: Instant) {
        self.rare.get_or_insert_default().pong = Some(AwaitedPong {
            payload,
            sent: now,
            within,
            missed: None,
        });
    }

    /// Whether a Ping still waits for its Pong (before its deadline).
    pub fn awaiting_pong(&self) -> bool {
        self.rare
            .as_ref()
            .and_then(|r| r.pong.as_ref())
            .is_some_and(|p| p.missed.is_none())
    }

    /// A Pong arrived: the one awaited (same payload) is timed as the `pong` phase. Others
    /// (unsolicited, RFC 6455 §5.5.3 allows them) are ignored.
    ///
    /// One that comes after its deadline is timed too (the latency is what it is), and
    /// the violation its deadline raised says when it came: late, not lost.
    pub fn on_pong(&mut self, payload: &[u8], now: Instant) {
        let awaited = self
            .rare
            .as_mut()
            .and_then(|r| r.pong.take_if(|p| p.payload.as_slice() == payload));
        let Some(awaited) = awaited else {
            return;
        };
        let took = now.saturating_duration_since(awaited.sent);
        self.samples.push((Phase::Pong.into(), took));
        if let Some(v) = awaited.missed.and_then(|at| self.violations.get_mut(at)) {
            v.seen = format!("no pong in time; it came after {}ms", took.as_millis());
            // Slow, not lost: read as a late answer is ([`Violation::late_ms`]).
            v.late_ms = Some(took.as_secs_f64() * 1000.0);
        }
    }

    /// The awaited Pong did not come in time: a completeness violation. `lost`: the
    /// connection ended first (then nothing is judged: its end is judged on its own).
    pub fn pong_missed(&mut self, now: Instant, lost: bool) {
        let awaited = self
            .rare
            .as_mut()
            .and_then(|r| r.pong.take_if(|p| p.missed.is_none()));
        let Some(mut awaited) = awaited else {
            return;
        };
        if lost {
            return;
        }
        let payload = String::from_utf8_lossy(&awaited.payload).into_owned();
        let kept = self.violations.len();
        let expected = format!(
            "{PONG_EXPECTED}{payload:?} within {}ms",
            awaited.within.as_millis()
        );
        if self
            .violate(
                OracleKind::Completeness,
                now,
                expected,
                "no pong".into(),
                None,
            )
            .is_some()
        {
            // The time it had, as an `expect`'s violation gives its `within`.
            if let Some(v) = self.violations.get_mut(kept) {
                v.window_ms = Some(awaited.within.as_secs_f64() * 1000.0);
            }
            // Kept: a late Pong may still say when it came.
            awaited.missed = Some(kept);
            self.rare.get_or_insert_default().pong = Some(awaited);
        }
    }

    pub fn is_pending(&self, id: ExpectId) -> bool {
        self.pending.iter().any(|p| p.id == id)
    }

    /// Expectations settled by an error event so far, and of those the ones opened before
    /// the attempt's acceptance (`(expectations_errored, expectations_errored_early)`).
    pub fn errored(&self) -> (u64, u64) {
        (
            self.counts.expectations_errored,
            self.counts.expectations_errored_early,
        )
    }

    /// The latest record no expectation claimed (its JSON cut at `UNCLAIMED_BYTES` when
    /// the checker keeps bodies, else its kind), while no expectation of the connection has
    /// been met: what a server that then closes it said last, an in-band refusal the
    /// acceptance rule took for acceptance (`{"type":"disconnect","reason":"unauthorized"}`
    /// as the first frame). `None` once one was met, or with nothing unclaimed. Read only
    /// when the server closes an accepted attempt.
    pub fn unclaimed_before_any_met(&self) -> Option<String> {
        if self.counts.expectations_met > 0 {
            return None;
        }
        let buffered = self.buffer.back().map(|b| {
            let text = match &b.body {
                Some(body) => excerpt(&body.to_string(), UNCLAIMED_BYTES),
                None => b.event.clone(),
            };
            (b.at, text)
        });
        let ignored = self.ignored.back().map(|i| (i.at, i.shown.clone()));
        [buffered, ignored]
            .into_iter()
            .flatten()
            .max_by_key(|(at, _)| *at)
            .map(|(_, text)| text)
    }

    /// Records of kinds no step names that named no request, received so far (every
    /// stream): [`ExpectCounts::unclaimed`] and, besides, the one record of each kind seen
    /// only once on this stream, which that count leaves to count as an answer may. What
    /// came after a send no `expect` follows is no answer to it when it is only these (a
    /// heartbeat, a broadcast), first sighting or not.
    pub fn strays(&self) -> u64 {
        self.counts.unclaimed + self.once_strays()
    }

    /// The kinds of such records that came only once on this stream so far (each one
    /// record [`ExpectCounts::unclaimed`] leaves out).
    fn once_strays(&self) -> u64 {
        self.unclaimed_seen.iter().filter(|(_, n)| *n == 1).count() as u64
    }

    /// Expectations open now.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether an expectation waits for the server to send something (an `expect_none`
    /// waiting out its time asks nothing of it): the server owes an answer.
    pub fn awaits_answer(&self) -> bool {
        self.pending.iter().any(|p| !p.absent)
    }

    /// The earliest expectation deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// Handles one JSON record from the server: an object, an array, any value. Its kind
    /// comes from [`kind_of`]; a record without one reaches only identity and ordering.
    pub fn on_message<J: Tree>(&mut self, msg: &J, now: Instant) {
        let spec = self.spec.clone();
        let kind = kind_of(&spec, msg);
        self.on_record(msg, kind.as_deref(), now);
    }

    /// A record arrived that is not JSON (`text`): counted for what the violations it
    /// leaves say.
    pub fn on_unreadable(&mut self, text: &str) {
        self.unread.not_json += 1;
        if self.counts.unread_sample.is_none() {
            let start = excerpt(text, crate::model::history::UNREAD_SAMPLE_BYTES);
            self.counts.unread_sample = Some(crate::model::Answer::quoted(&start).into());
        }
        self.note_unread_frame(text.as_bytes(), Unreadable::Text);
        self.forget_sequence();
    }

    /// A binary frame arrived (`bytes`): the oracles read text, so it is counted, as
    /// [`Self::on_unreadable`], for what a violation that saw nothing says.
    pub fn on_binary(&mut self, bytes: &[u8]) {
        self.unread.binary += 1;
        self.note_unread_frame(bytes, Unreadable::Binary);
        self.forget_sequence();
    }

    /// An unread record may hold what an open expectation waits for: a correlated one when
    /// the record holds its correlation value (a heartbeat does not); an uncorrelated one
    /// when the record names a kind of its pattern (newline-joined JSON, a batch, a record
    /// with a separator the scenario does not split on all name it; a `ping` line does
    /// not), or whatever it holds when kinds come from `[oracles.kinds]` rules (a rule's
    /// kind need not be written in the record), the pattern names none, or the record is
    /// a `binary` frame (an encoding may hide the name).
    ///
    /// A text record that is not JSON is kept (the last [`UNREAD_KEPT`]) for the
    /// expectations that open after it ([`Self::expect`]).
    fn note_unread_frame(&mut self, record: &[u8], what: Unreadable) {
        let by_rules = !self.spec.kinds.is_empty();
        let binary = what == Unreadable::Binary;
        for p in self.pending.iter_mut().filter(|p| !p.unread_seen) {
            p.unread_seen = may_hold(p, record, binary, by_rules);
        }
        if what == Unreadable::Text {
            let recent = &mut self.unread.recent;
            if recent.len() == UNREAD_KEPT {
                recent.remove(0);
            }
            recent.push(record[..record.len().min(UNREAD_KEPT_BYTES)].into());
            self.unread_kept = true;
        }
    }

    /// A JSON record without a kind: no expectation reads it, but it may hold what one
    /// waits for (a reply batched into one array), and sequence numbers inside it (the
    /// array's events) that the top level does not show: when its text names a sequence
    /// field, the next number read starts the count again. A heartbeat that names neither
    /// changes nothing.
    fn kindless_record<J: Tree>(&mut self, msg: &J) {
        let waiting = self.pending.iter().any(|p| !p.unread_seen);
        let sequenced = self.spec.sequence.is_some() || !self.spec.learned.sequence.is_empty();
        if !waiting && !sequenced {
            return;
        }
        let text = msg.to_value().to_string();
        if waiting {
            self.note_unread_frame(text.as_bytes(), Unreadable::Kindless);
        }
        if sequenced && self.names_sequence(&text) {
            self.forget_sequence();
        }
    }

    /// Where a record without a kind that is a positional JSON array holds one the script
    /// expects: the first of its first [`POSITIONS_LOOKED_AT`] elements that is a string an
    /// open expectation's pattern names, or any expectation of the script may claim, and
    /// that string.
    fn positional_kind<J: Tree>(&self, msg: &J) -> Option<(usize, String)> {
        let len = msg.array_len()?.min(POSITIONS_LOOKED_AT);
        (0..len).find_map(|i| {
            let text = msg.element(i)?.text()?;
            let expected = self.pending.iter().any(|p| p.state.mentions(text))
                || self.claimable.as_ref().is_some_and(|k| k.contains(text));
            expected.then(|| (i, text.to_string()))
        })
    }

    /// Whether `text` names a sequence field (declared or learned; its last path segment,
    /// quoted as a JSON key).
    fn names_sequence(&self, text: &str) -> bool {
        let fields = self.spec.sequence.iter().chain(&self.spec.learned.sequence);
        fields
            .filter_map(|path| path.rsplit('.').next())
            .any(|name| holds(text.as_bytes(), format!("\"{name}\"").as_bytes()))
    }

    /// A record the oracles cannot read may carry the next sequence number: the next one
    /// read starts the count again rather than read as a gap (what it skipped is unknown,
    /// not lost).
    fn forget_sequence(&mut self) {
        self.last_seq = LastSeq::Unseen;
        self.forget_learned_sequences();
    }

    /// The learned sequences start again (each field's last value forgotten).
    fn forget_learned_sequences(&mut self) {
        if let Some(rare) = self.rare.as_mut() {
            rare.learned_seq.iter_mut().for_each(|s| *s = None);
        }
    }

    /// An echo of one of our own flood frames (it carries our marker): judged by the
    /// oracles that look at every message (identity, ordering), never matched against or
    /// kept for an expectation; its latency is the engine's to record.
    pub fn on_echo<J: Tree>(&mut self, msg: &J, now: Instant) {
        self.check_identity(msg, now);
        self.check_sequence(msg, None, now);
    }

    /// [`Self::on_message`] for a record whose kind (`kind_of` with this checker's spec)
    /// the caller already has: the engine needs it for the acceptance judge anyway.
    pub fn on_record<J: Tree>(&mut self, msg: &J, kind: Option<&str>, now: Instant) {
        if self.observed.is_some() {
            self.observe(msg);
        }
        self.check_identity(msg, now);
        self.check_sequence(msg, kind, now);
        self.check_learned_sequence(msg, now);
        let Some(event) = kind else {
            self.on_kindless(msg);
            return;
        };
        if self.span.is_some() {
            self.span_saw(event);
        }
        let absence_broke = self.check_absent(event, msg, now);
        if event == self.spec.error_event && !self.wants_error(msg) {
            self.on_error_event(msg, now);
            return;
        }
        if let Some(idx) = self
            .pending
            .iter()
            .position(|p| !p.absent && correlated_match(p, msg))
        {
            if in_pattern(&self.pending[idx], event) {
                if !claims_pushes(&self.pending[idx]) {
                    self.check_learned_identity(msg, now);
                }
                if first_failed(&self.pending[idx], msg, &self.captures).is_some() {
                    self.failed_checks(idx, event, msg, now);
                } else {
                    self.feed(idx, event, msg, now);
                }
            } else {
                note_stray(&mut self.pending[idx], event);
                self.keep_stray(idx, event, now);
            }
            return;
        }
        self.on_uncorrelated(event, msg, now, absence_broke);
    }

    /// A learning run keeps the first records it reads ([`Observation`]).
    #[cold]
    #[inline(never)]
    fn observe<J: Tree>(&mut self, msg: &J) {
        if let Some(obs) = &mut self.observed {
            if obs.is_full() {
                obs.dropped += 1;
            } else {
                obs.keep(msg.to_value());
            }
        }
    }

    /// The kinds a traced expectation's span saw.
    #[cold]
    #[inline(never)]
    fn span_saw(&mut self, event: &str) {
        if let Some(span) = &mut self.span {
            if span.events.len() < SPAN_KINDS {
                span.events.insert(event.to_string());
            }
        }
    }

    /// A record with no kind this scenario can read: counted, and its shape kept once for
    /// the verdict's advice. Out of line (as every rare case of [`Self::on_record`]): the
    /// per-message path is what should fit the instruction cache.
    #[inline(never)]
    fn on_kindless<J: Tree>(&mut self, msg: &J) {
        self.unread.kindless += 1;
        self.kindless_record(msg);
        if self.counts.positional_kind.is_none() {
            self.counts.positional_kind = self.positional_kind(msg).map(Box::new);
        }
        if self.unread.kindless_shape.is_none() {
            let field = &self.spec.type_field;
            let mut shape = msg.shape();
            if let Some(value) = lookup(msg, field) {
                // The field is there, its value is no kind (a float, -0, an integer
                // past 64 bits, an object...).
                let _ = write!(
                    shape,
                    ", whose {field:?} is {} (a kind is a string or an integer)",
                    value.shape()
                );
            } else if msg.array_len().is_some() && lookup(msg, &format!("0.{field}")).is_some() {
                // Records of a batch: the elements carry the kind.
                let _ = write!(
                    shape,
                    " whose elements carry {field:?}, a batch ([oracles] batched = true \
                     reads each element as a record)"
                );
            }
            self.unread.kindless_shape = Some(shape.into_boxed_str());
        }
    }

    /// A record of a kind that no open correlated expectation claims: an uncorrelated one
    /// may, else it is late, finished, ignored or buffered.
    #[inline(never)]
    fn on_uncorrelated<J: Tree>(&mut self, event: &str, msg: &J, now: Instant, judged: bool) {
        self.note_fieldless(event, msg);
        let captures = &self.captures;
        let uncorrelated = self.pending.iter().position(|p| {
            !p.absent
                && p.correlate.is_none()
                && in_pattern(p, event)
                && p.state.clone().feed(event) != Fed::Unexpected
                && first_failed(p, msg, captures).is_none()
        });
        if let Some(idx) = uncorrelated {
            if claims_pushes(&self.pending[idx]) {
                // A room's broadcasts, as the script says: whoever caused them, not whose.
            } else if owns_its_claims(&self.pending[idx]) {
                self.check_learned_identity(msg, now);
            } else if self.learned_on && !self.spec.learned.identity.is_empty() {
                let ids = self.learned_ids(msg);
                self.hold_learned_ids(event.to_string(), ids, now);
            }
            self.feed(idx, event, msg, now);
            return;
        }
        self.note_untested(event, msg);
        if let Some((key, expected)) = self.late_for_finished(msg, event, now) {
            if judged {
                // The script's `expect_none` for that request judged it already.
                return;
            }
            // A duplicate delivery, or an extra answer the pattern does not allow.
            let expected = expected.to_string();
            self.violate(
                OracleKind::Completeness,
                now,
                expected,
                event.to_string(),
                Some(key),
            );
            return;
        }
        let unclaimable = self.claimable.as_ref().is_some_and(|k| !k.contains(event));
        if unclaimable {
            // An uncorrelated expectation waiting meanwhile may be misnaming this kind
            // (`resp` for the `res` that came): noted as for a correlated one, for the
            // verdict to tell a typo from a loss ([`Misread::OtherKinds`]); whatever
            // finished request the record also names (Home Assistant's events carry
            // their subscription's `id`, whose `result` was met long before).
            for p in self
                .pending
                .iter_mut()
                .filter(|p| p.correlate.is_none() && !p.absent)
            {
                note_stray(p, event);
            }
        }
        if self.finished(msg) {
            // Allowed by the finished pattern (or not its business): nothing to keep.
            return;
        }
        if unclaimable {
            // No step expects this kind: nothing could claim it. The latest few are kept
            // as what the server said, for a witness.
            let names_none = !self.correlate_fields.is_empty()
                && !self
                    .correlate_fields
                    .iter()
                    .any(|f| lookup(msg, f).is_some());
            if names_none {
                // Nor does it name a request, where the script's answers do: a heartbeat,
                // a broadcast, no answer. (Where none do, it may be a misnamed answer.)
                self.count_unclaimed(event);
            }
            if self.ignored.len() >= UNCLAIMED_SHOWN {
                self.ignored.pop_front();
            }
            let shown = if self.keep_bodies {
                excerpt(&msg.to_value().to_string(), UNCLAIMED_BYTES)
            } else {
                event.to_string()
            };
            self.ignored.push_back(Ignored {
                at: now,
                kind: event.into(),
                shown,
            });
            return;
        }
        self.buffer_message(event, msg, now);
    }

    /// Resolves every expectation whose deadline has passed as cut: neither met nor
    /// violated. For a connection whose script the server owes nothing yet: a bad token's
    /// that the server has neither accepted nor refused (a graphql-transport-ws server
    /// waits for the `connection_init` a missing token never sent), which rejection
    /// hygiene judges by what the server does with it.
    pub fn expire_unjudged(&mut self, now: Instant) {
        while let Some(idx) = self.pending.iter().position(|p| p.deadline <= now) {
            self.resolve(idx, Resolution::Cut);
        }
    }

    /// When the server refused this connection's latest request with its error event,
    /// naming it (a correlated refusal, after the connection was accepted: not one sent
    /// early on purpose), and no request went out since: the server's last word on what
    /// the script asked. `None` otherwise.
    fn refusal_last_word(&self) -> Option<Instant> {
        let at = self.rare.as_ref()?.refused_at?;
        self.last_request.is_none_or(|r| r <= at).then_some(at)
    }

    /// Whether `p`, an uncorrelated expectation (what the server sends unasked) that got
    /// nothing at all, opened after the refusal that is the server's last word
    /// ([`Self::refusal_last_word`]): a script that goes on after a join turned away
    /// (`room_full`) and waits for the room's events, asking nothing more. Not owed.
    /// One opened before the refusal, one after a later request (a join elsewhere, a
    /// valid input), or one that got a wrong record is still judged.
    fn not_owed_after_refusal(&self, p: &Pending) -> bool {
        let opened = p.deadline.checked_sub(p.within);
        p.correlate.is_none()
            && !p.absent
            && p.seen_count == 0
            && p.strays.is_none()
            && self
                .refusal_last_word()
                .is_some_and(|at| opened.is_some_and(|o| o >= at))
    }

    /// Cuts the pending expectation at `idx` as not owed after a refusal
    /// ([`Self::not_owed_after_refusal`]), counted apart.
    fn cut_after_refusal(&mut self, idx: usize) -> StepPlace {
        self.rare.get_or_insert_with(Box::default).after_refusal += 1;
        self.resolve(idx, Resolution::Cut)
    }

    /// Resolves every expectation whose deadline has passed.
    pub fn expire(&mut self, now: Instant) {
        while let Some(idx) = self.pending.iter().position(|p| p.deadline <= now) {
            let p = &self.pending[idx];
            if p.absent {
                // Nothing forbidden came in time: that is what was expected.
                self.resolve(idx, Resolution::Met);
                continue;
            }
            let sent = p.sent_at.map(|(_, actual)| actual);
            let refused = p.correlate.as_ref().is_some_and(|(_, v)| {
                let key = key_hash(v);
                self.refused
                    .iter()
                    .any(|(k, _, of)| *k == key || (sent.is_some() && *of == sent))
            });
            if refused {
                // Its request was refused with an error: nothing more is owed for it.
                self.resolve(idx, Resolution::Errored);
                continue;
            }
            if self.not_owed_after_refusal(p) {
                // The refusal is counted once, as an error answer.
                self.cut_after_refusal(idx);
                continue;
            }
            let expected = format!("{} within {:?}", p.state.remaining(), p.within);
            let seen = seen_text(
                p,
                &self.unread,
                (&self.buffer, &self.ignored),
                &self.spec.type_field,
            );
            let key = p.correlate.as_ref().map(|(_, v)| v.clone());
            if let (Some(value), Some((intended, actual))) = (&key, p.sent_at) {
                let items = p.state.items();
                let wait = LateWait {
                    key: key_hash(value),
                    intended,
                    actual,
                    name: p.name().map(Box::from),
                    one_record: items.len() == 1
                        && items.iter().all(|i| i.repeat == crate::model::Repeat::One),
                    checks: (!p.checks().is_empty()).then(|| p.checks().into()),
                };
                keep_recent_n(&mut self.late_waits, wait, LATE_WAITS);
            }
            let unread = p.unread_seen;
            let window = Some(p.within);
            let misread = misread_of(p);
            let step = self.resolve(idx, Resolution::Violated);
            if let Some(v) = self.violate_unmet(now, (expected, seen), key, (unread, window)) {
                v.misread = misread;
                v.step = step.shown();
            }
        }
    }

    /// The connection ended: settles what is still pending. `detail` says how, for the
    /// witness; `close_code` is the server's Close code when it sent a valid one, recorded
    /// on the violations this end settles ([`Violation::ended`]) for judgements to read.
    pub fn end_stream(
        &mut self,
        how: StreamEnd,
        detail: &str,
        close_code: Option<u16>,
        now: Instant,
    ) {
        // The server says it failed: no error before it explains what it cut.
        let failed = close_code == Some(SERVER_FAILED);
        while !self.pending.is_empty() {
            if how == StreamEnd::Lost && !failed && self.not_owed_after_refusal(&self.pending[0]) {
                // A refusal, then the server closed (a STOMP ERROR's close, a full room's):
                // what the script waited for unasked was not owed either way.
                self.cut_after_refusal(0);
                continue;
            }
            let resolution = match how {
                // The wait for an absence did not run its course: neither met nor violated.
                _ if self.pending[0].absent => Resolution::Cut,
                StreamEnd::Cut => Resolution::Cut,
                StreamEnd::Refused => Resolution::Refused,
                StreamEnd::Lost if self.saw_uncorrelated_error && !failed => Resolution::Errored,
                StreamEnd::Lost => Resolution::Violated,
            };
            let p = &self.pending[0];
            let expected = p.state.remaining();
            let seen = format!(
                "{}; then {detail}",
                seen_text(
                    p,
                    &self.unread,
                    (&self.buffer, &self.ignored),
                    &self.spec.type_field
                )
            );
            let ended = StreamEnded {
                close_code,
                answered: p.seen_count > 0,
            };
            let key = p.correlate.as_ref().map(|(_, v)| v.clone());
            let unread = p.unread_seen;
            let step = if resolution == Resolution::Errored {
                self.settle_errored(0, now)
            } else {
                self.resolve(0, resolution)
            };
            if resolution == Resolution::Violated {
                if let Some(v) = self.violate_ended(now, (expected, seen), key, ended) {
                    v.unreadable = unread;
                    v.step = step.shown();
                }
            }
        }
    }

    /// The server ended an accepted connection on its own (a Close frame, a reset, a
    /// protocol fault, a write it would not take) while the script was at `step` of
    /// `actions`. Settles what is pending as [`StreamEnd::Lost`]; when that flagged
    /// nothing (no expectation was pending) and the server had not explained itself with an
    /// uncorrelated error event, the steps the end kept from running are the finding: one
    /// completeness violation naming them (see [`steps_cut_off`] for when the script
    /// expects the end). The caller leaves out our own close, a run cut by its duration or
    /// Ctrl-C (those are [`StreamEnd::Cut`]) and a clean refusal ([`StreamEnd::Refused`]).
    ///
    /// `actions[step]` is the step in progress (the engine passes a window of the script
    /// around it); `place` says where that is in the script, for the message. `detail` and
    /// `close_code` as for `Checker::end_stream`.
    pub fn server_ended(
        &mut self,
        actions: &[Action],
        step: usize,
        place: &ScriptPlace,
        detail: &str,
        close_code: Option<u16>,
        now: Instant,
    ) {
        let before = self.violated;
        // The server said why first: an error naming no request, or the refusal of the
        // script's latest request; unless the close says the server failed (1011).
        let explained = (self.saw_uncorrelated_error || self.refusal_last_word().is_some())
            && close_code != Some(SERVER_FAILED);
        self.end_stream(StreamEnd::Lost, detail, close_code, now);
        if explained || self.violated > before {
            return;
        }
        let cut = steps_cut_off(actions, step);
        if cut.is_empty() {
            return;
        }
        let mut names: Vec<String> = cut.iter().take(STEPS_NAMED).map(|a| step_name(a)).collect();
        if cut.len() > STEPS_NAMED {
            names.push("...".into());
        }
        let plural = if cut.len() == 1 { "" } else { "s" };
        let expected = format!(
            "{CUT_OFF}: {} more step{plural} ({})",
            cut.len(),
            names.join(", ")
        );
        let at = actions.get(step).map(step_name).unwrap_or_default();
        let seen = format!("{detail} at {}", place.describe(&at));
        let ended = StreamEnded {
            close_code,
            answered: false,
        };
        self.violate_ended(now, (expected, seen), None, ended);
    }

    fn feed<J: Tree>(&mut self, idx: usize, event: &str, msg: &J, now: Instant) {
        let p = &mut self.pending[idx];
        let captures = (
            &mut self.captures,
            &mut self.counts.captures,
            &mut self.rare,
        );
        take_captures(p, msg, now, captures);
        let first = (p.state.matched() == 0).then_some(now);
        let fed = p.state.feed(event);
        // What it saw is kept for a violation to name. An event that completes the pattern
        // has it met at once (`after_feed`), its list cleared unread: most answers, so not
        // written for them.
        if !matches!(fed, Fed::Complete) {
            note_seen(p, event);
        }
        match fed {
            Fed::Unexpected => self.out_of_order(idx, event, now),
            _ => self.after_feed(idx, first, now),
        }
    }

    /// [`Self::resolve`]'s shrink of the open expectations' room after a backlog. Out of
    /// line, as each rare case of `resolve` (which runs once per expected answer).
    #[cold]
    #[inline(never)]
    fn give_back_room(&mut self) {
        self.pending.shrink_to(KEPT_ROOM);
    }

    /// What an expectation with field tests or captures counts when met.
    #[cold]
    #[inline(never)]
    fn met_extras(&mut self, p: &Pending) {
        if !p.checks().is_empty() {
            self.counts.checked_met.add(p.step, 1);
        }
        self.tally_captures(p);
    }

    /// Counts, for each capture of `p` (just met), whether its messages held a value at
    /// its path ([`crate::model::ExpectCounts::captures`]).
    fn tally_captures(&mut self, p: &Pending) {
        for c in p.capture() {
            let taken = self.captures.contains_key(&c.name);
            let tally = self.counts.captures.entry(c.name.clone()).or_default();
            if tally.path.is_empty() {
                tally.path.clone_from(&c.path);
            }
            if taken {
                tally.taken += 1;
            } else {
                tally.missed += 1;
            }
        }
    }

    /// A correlated answer of a pattern kind failed the expectation's field tests: the
    /// expectation is violated at once, naming the test and what the field held.
    fn failed_checks<J: Tree>(&mut self, idx: usize, event: &str, msg: &J, now: Instant) {
        let p = &self.pending[idx];
        let Some(test) = first_failed(p, msg, &self.captures) else {
            return;
        };
        let shown = filled_test(test, &self.captures);
        let expected = format!("{event} with {}", describe(&shown));
        let (held, misread) = failed_test_words(test, &shown, msg, event, &self.captures);
        let misread = Some(misread);
        let seen = format!("{event} with {held}{}", said_why(msg, &test.path));
        let key = p.correlate.as_ref().map(|(_, v)| v.clone());
        let step = self.resolve(idx, Resolution::Violated);
        if let Some(value) = &key {
            // It came, with the wrong content: arrived, for the rates.
            self.arrived_after_failure(key_hash(value), event);
        }
        if let Some(v) = self.violate(OracleKind::Completeness, now, expected, seen, key) {
            v.step = step.shown();
            v.misread = misread;
        }
    }

    /// Whether `msg`, an `event` come for the correlated expectation (`key`, a
    /// [`key_hash`]) whose deadline ran out, fails that expectation's field tests: then it
    /// is no late answer (the request was answered, wrongly, and late), and its violation
    /// says what came and reads as the wrong value it is ([`Misread::WrongValue`]), not
    /// as slowness. Its request is no longer waited for. `false` when the expectation had
    /// no tests, or `msg` passes them.
    fn late_fails_where<J: Tree>(&mut self, key: u64, msg: &J, event: &str, now: Instant) -> bool {
        let Some(at) = self.late_waits.iter().rposition(|w| w.key == key) else {
            return false;
        };
        let Some(wait) = self.late_waits.get(at) else {
            return false;
        };
        let Some(test) = wait
            .checks
            .as_deref()
            .and_then(|checks| failed_test(checks, msg, &self.captures))
            .cloned()
        else {
            return false;
        };
        let after = now.saturating_duration_since(wait.intended);
        self.late_waits.remove(at);
        let shown = filled_test(&test, &self.captures);
        let (held, misread) = failed_test_words(&test, &shown, msg, event, &self.captures);
        let missed = self.violations.iter_mut().rev().find(|v| {
            v.window_ms.is_some()
                && v.late_ms.is_none()
                && v.correlation.as_deref().map(key_hash) == Some(key)
        });
        if let Some(v) = missed {
            let _ = write!(
                v.seen,
                "; then {event} with {held} came for it after {:.0} ms, failing {}",
                after.as_secs_f64() * 1000.0,
                describe(&shown)
            );
            v.misread.get_or_insert(misread);
        }
        true
    }

    /// `expect_none`: a forbidden kind arrived (correlated when the expectation is, and
    /// passing its field tests) before the deadline.
    /// Judges `event` against the open absences (`expect_none`); `true` when one
    /// correlated with it broke: the script said what no more of that request looks like,
    /// so the record is that finding alone, not a late duplicate besides.
    fn check_absent<J: Tree>(&mut self, event: &str, msg: &J, now: Instant) -> bool {
        let captures = &self.captures;
        let Some(idx) = self.pending.iter().position(|p| {
            p.absent
                && in_pattern(p, event)
                && (p.correlate.is_none() || correlated_match(p, msg))
                && first_failed(p, msg, captures).is_none()
        }) else {
            return false;
        };
        let correlated = self.pending[idx].correlate.is_some();
        self.violate_absence(idx, event.to_string(), now);
        correlated
    }

    fn out_of_order(&mut self, idx: usize, event: &str, now: Instant) {
        let p = &mut self.pending[idx];
        if !last_seen_is(p, event) {
            note_seen(p, event);
        }
        let expected = format!(
            "{} in order (still to come: {})",
            pattern_text(p.state.pattern()),
            p.state.remaining()
        );
        let seen = seen_text(
            p,
            &self.unread,
            (&self.buffer, &self.ignored),
            &self.spec.type_field,
        );
        let key = p.correlate.as_ref().map(|(_, v)| v.clone());
        let unread = p.unread_seen;
        // A kind of the pattern misnamed (`nxt+ complete` answered `next`, `next`,
        // `complete`) puts the next one out of order: read as one unmet at its deadline is,
        // for the verdict to tell the slip from a reordering.
        let misread = misread_of(p);
        let step = self.resolve(idx, Resolution::Violated);
        if let Some(value) = &key {
            // It came, in the wrong place: arrived, for the rates.
            self.arrived_after_failure(key_hash(value), event);
        }
        if let Some(v) = self.violate_unmet(now, (expected, seen), key, (unread, None)) {
            v.misread = misread;
            v.step = step.shown();
        }
    }

    /// A completeness violation of an expectation that went unmet, marked `unreadable`
    /// when unread records came while it was open, with the time it was given (`window`)
    /// when its deadline ran out.
    fn violate_unmet(
        &mut self,
        now: Instant,
        (expected, seen): (String, String),
        correlation: Option<String>,
        (unreadable, window): (bool, Option<Duration>),
    ) -> Option<&mut Violation> {
        let v = self.violate(OracleKind::Completeness, now, expected, seen, correlation)?;
        v.unreadable = unreadable;
        v.window_ms = window.map(|w| w.as_secs_f64() * 1000.0);
        Some(v)
    }

    /// Records turn latencies; `first_at` is set when this feed brought the first event.
    /// Equal latencies go out as one sample of several phases: a single-event answer's
    /// first event is its turn, and a request sent when it was meant to has a raw turn
    /// equal to its turn (most of a closed loop's answers: one sample instead of three).
    fn after_feed(&mut self, idx: usize, first_at: Option<Instant>, now: Instant) {
        let p = &self.pending[idx];
        let first = match (first_at, p.sent_at) {
            (Some(at), Some((intended, _))) => Some((at, at.saturating_duration_since(intended))),
            _ => None,
        };
        let done = p.state.is_complete().then_some(p.sent_at).flatten();
        let Some((intended, actual)) = done else {
            if let Some((_, first)) = first {
                self.samples.push((Phase::FirstEvent.into(), first));
            }
            if p.state.is_complete() {
                self.resolve(idx, Resolution::Met);
            }
            return;
        };
        // One clock subtraction fewer when the first event completed it.
        let turn = match first {
            Some((at, first)) if at == now => first,
            _ => now.saturating_duration_since(intended),
        };
        let raw = if actual == intended {
            turn
        } else {
            now.saturating_duration_since(actual)
        };
        let mut phases = Phases::from(Phase::Turn);
        for (phase, value) in [
            (Phase::FirstEvent, first.map(|(_, d)| d)),
            (Phase::TurnRaw, Some(raw)),
        ] {
            match value {
                Some(v) if v == turn => phases = phases.with(phase),
                Some(v) => self.samples.push((phase.into(), v)),
                None => {}
            }
        }
        self.samples.push((phases, turn));
        if let Some(name) = p.name() {
            self.named_samples.push((name.to_string(), turn));
        }
        self.resolve(idx, Resolution::Met);
    }

    /// Settles the expectation at `idx` as `how`; returns where its `expect` was written,
    /// for a violation of it to name.
    fn resolve(&mut self, idx: usize, how: Resolution) -> StepPlace {
        // The last one (most often the only one) without `remove`'s shift of the rest (a
        // call to `memmove` per answer, for nothing to move).
        let last = if idx + 1 == self.pending.len() {
            self.pending.pop()
        } else {
            None
        };
        let mut p = match last {
            Some(p) => p,
            None => self.pending.remove(idx),
        };
        let step = p.step;
        let mut seen = std::mem::take(&mut p.seen);
        seen.clear();
        // Kept for the next expectation unless a very long kind name made it big.
        if seen.capacity() <= SPARE_SEEN_BYTES {
            self.spare_seen = seen;
        }
        if self.pending.is_empty() && self.pending.capacity() > KEPT_ROOM {
            // A backlog (a paced connection that fell behind, up to `max_in_flight`) is
            // over: give its room back, so memory follows what is open, not the worst
            // moment of a long run.
            self.give_back_room();
        }
        if self.span.as_ref().is_some_and(|s| s.expect == Some(p.id)) {
            self.close_span(how == Resolution::Met);
        }
        let slot = if matches!(how, Resolution::Cut | Resolution::Refused) {
            // Neither met nor missed (the run ended first, or the server cleanly refused
            // the connection): out of the event rates, as it is out of the verdict.
            self.tally_slot(p.state.items())
        } else if p.absent {
            // An absence expects none of its kinds: what came of them only arrived.
            self.tally(&p.state, Tallied::Arrived)
        } else {
            self.tally(&p.state, Tallied::Answered)
        };
        if how == Resolution::Met && p.extras.is_some() {
            self.met_extras(&p);
        }
        if how == Resolution::Met {
            // Off the per-message path once every field this connection correlates on
            // has been met: a length compare.
            // (A checker told of no fields records every one.)
            let all_met = !self.correlate_fields.is_empty()
                && self.counts.correlated_met.len() >= self.correlate_fields.len();
            if let (Some((field, _)), false) = (&p.correlate, all_met) {
                self.note_field_read(field);
            }
        }
        match how {
            Resolution::Met => {
                self.counts.expectations_met += 1;
                self.met_steps |= step.bloom_bit();
            }
            Resolution::Errored => {
                self.counts.expectations_errored += 1;
                self.counts.expectations_errored_early += u64::from(p.early);
                if !p.early {
                    self.note_errored_step(step);
                }
            }
            Resolution::Cut => self.counts.expectations_cut += 1,
            Resolution::Refused => self.counts.expectations_refused += 1,
            Resolution::Violated => {}
        }
        // Unless a finished expectation keeps it, the pattern goes back to the connection.
        let unkept = match (&p.correlate, p.absent) {
            (Some((_, value)), false) => {
                // A push's value is a channel's (a subscription's): every later push on it
                // is no late duplicate of this one, as for a `where`-tested expectation
                // (whose value may be a channel's too), unless its value was drawn for its
                // request alone: then what else comes with it is still its own.
                let alone = (tests_nothing(&p) || fresh_value(&p)) && !claims_pushes(&p);
                let ended = match (how, alone) {
                    (Resolution::Violated, true) => Ended::Failed,
                    (Resolution::Errored, true) => Ended::Errored,
                    (Resolution::Violated | Resolution::Errored, false) => Ended::FailedTested,
                    (_, true) => Ended::Settled,
                    (_, false) => Ended::SettledTested,
                };
                self.keep_done(key_hash(value), p.state, slot, ended)
            }
            _ => Some(p.state),
        };
        if let Some(state) = unkept {
            self.leftovers.pattern = Some(state.into_items());
        }
        if let Some(pair) = p.correlate {
            self.leftovers.correlate = Some(pair);
        }
        step
    }

    /// Keeps a settled correlated expectation (correlation value hashed to `key`) for the
    /// answers that may still come after it: where its pattern stopped, when the pattern has
    /// a tally `slot`, else its whole `state`. Returns the state when it was not kept.
    fn keep_done(
        &mut self,
        key: u64,
        state: PatternState,
        slot: Option<usize>,
        ended: Ended,
    ) -> Option<PatternState> {
        let arrived = arrived_mask(&state);
        match slot.and_then(|s| u8::try_from(s).ok()) {
            Some(slot) => {
                let at = state.progress();
                let done = Done {
                    key,
                    at,
                    slot,
                    ended,
                    arrived,
                };
                keep_recent(&mut self.recent_done, done);
                Some(state)
            }
            None => {
                let done = DoneUnslotted {
                    key,
                    state,
                    ended,
                    arrived,
                };
                keep_recent(&mut self.recent_done_unslotted, done);
                None
            }
        }
    }

    /// Adds where the next message's checks read first ([`Warm`]): the open expectations,
    /// the first's correlation value and pattern, the tallies.
    pub fn warm(&self, warm: &mut Warm) {
        warm.slice(&self.pending);
        if let Some(p) = self.pending.first() {
            if let Some((_, value)) = &p.correlate {
                warm.slice(value.as_bytes());
            }
            warm.slice(p.state.items());
        }
        if let Some(t) = self.tallies.first() {
            warm.slice(&self.tallies);
            warm.slice(&t.per_item);
        }
    }

    /// What the last settled expectation left (its correlation strings, its pattern), for
    /// the next one's plan to be made of ([`crate::plan::Cursor::next_rendered`] takes
    /// them): no two strings allocated and freed, and no count added to and taken from the
    /// pattern's, per expected answer.
    pub fn leftovers(&mut self) -> &mut Leftovers {
        &mut self.leftovers
    }

    /// Whether the open expectation an error event `msg` answers names the error event in
    /// its pattern (the one correlated with it, or, when none is, one that correlates
    /// nothing): the script asked for that error (a request meant to fail), so it meets
    /// the pattern like any answer, its `where` tested, rather than settling it as a
    /// refusal.
    fn wants_error<J: Tree>(&self, msg: &J) -> bool {
        let error = self.spec.error_event.as_str();
        match self
            .pending
            .iter()
            .find(|p| !p.absent && correlated_match(p, msg))
        {
            Some(p) => p.state.mentions(error),
            None => self
                .pending
                .iter()
                .any(|p| !p.absent && p.correlate.is_none() && p.state.mentions(error)),
        }
    }

    fn on_error_event<J: Tree>(&mut self, msg: &J, now: Instant) {
        // Read only on a connection the server accepted (errors are rare).
        let contradicts = self.authenticated && says_unauthenticated(&msg.to_string());
        if let Some(idx) = self.pending.iter().position(|p| correlated_match(p, msg)) {
            self.settle_by_error(idx, msg, contradicts, now);
            return;
        }
        let correlated = self
            .correlate_fields
            .iter()
            .any(|f| lookup(msg, f).is_some_and(|v| !v.null()));
        if correlated {
            // The refusal of a request whose deadline ran out: late, not lost.
            if let Some(key) = self.late_wait_of(msg) {
                self.answered_late(key, now, true);
                return;
            }
            // A request whose `expect` correlates nothing (`input_ack` after an input,
            // while a join elsewhere in the script correlates on `id`), refused with an error
            // naming it: that expectation's answer, as an error naming no request would be.
            if let Some(idx) = self.awaiting_latest_request() {
                self.settle_by_error(idx, msg, contradicts, now);
                return;
            }
            // Its request's expectation may open later (a pipelined request's, a script
            // that thinks before its `expect`): it settles that one when it does.
            let event = self.spec.error_event.clone();
            if let Some(kept) = self.buffer_message(&event, msg, now) {
                kept.contradicts = contradicts;
            }
            return;
        }
        // An error that names no request (many servers answer a request they cannot serve
        // with a bare `{"type":"error"}`) answers the oldest request that has had no
        // answer yet, as a server answering in order would: an allowed answer, never a
        // missed one. Had it been about no request in particular (e.g. queue_overflow),
        // that request's own answer, if it still comes, is taken as a late one.
        let error_event = self.spec.error_event.as_str();
        if let Some(idx) = self
            .pending
            .iter()
            .position(|p| !p.absent && p.seen_count == 0 && !p.state.mentions(error_event))
        {
            self.rare
                .get_or_insert_with(Box::default)
                .settling_unnamed_error = true;
            self.settle_by_error(idx, msg, contradicts, now);
            if let Some(rare) = self.rare.as_mut() {
                rare.settling_unnamed_error = false;
            }
        }
        // And whatever is pending when the server then closes was explicitly refused, not
        // silently dropped.
        self.saw_uncorrelated_error = true;
    }

    /// The uncorrelated expectation that waits for the answer to the connection's latest
    /// request (opened right after it), nothing of its pattern come yet, and not asking
    /// for the error event: what an error naming a request no pending expectation
    /// correlates with answers.
    fn awaiting_latest_request(&self) -> Option<usize> {
        let latest = self.last_request?;
        let error = self.spec.error_event.as_str();
        self.pending.iter().position(|p| {
            p.correlate.is_none()
                && !p.absent
                && p.seen_count == 0
                && p.sent_at.is_some_and(|(_, actual)| actual == latest)
                && !p.state.mentions(error)
        })
    }

    /// The [`key_hash`] of the correlation value `msg` carries when an expectation with it
    /// ran out of time unanswered ([`Self::late_waits`]).
    fn late_wait_of<J: Tree>(&self, msg: &J) -> Option<u64> {
        self.correlate_fields
            .iter()
            .filter_map(|f| lookup(msg, f))
            .map(|v| key_hash(&key_text(v)))
            .find(|key| self.late_waits.iter().any(|w| w.key == *key))
    }

    /// Settles the expectation at `idx` as refused by an error that came `at`, keeping its
    /// correlation value for the request's later expectations ([`Self::refused`]).
    fn settle_errored(&mut self, idx: usize, at: Instant) -> StepPlace {
        let p = &self.pending[idx];
        if let Some((_, value)) = &p.correlate {
            let sent = p.sent_at.map(|(_, actual)| actual);
            keep_recent_n(&mut self.refused, (key_hash(value), at, sent), REFUSED_KEPT);
            if !p.early {
                self.rare.get_or_insert_with(Box::default).refused_at = Some(at);
            }
        }
        self.resolve(idx, Resolution::Errored)
    }

    /// What broke a correlated `expect_none` before it opened, as its violation shows it:
    /// its request (the one sent last, at `p.sent_at`) got one of its forbidden kinds
    /// already, as the error that refused the `expect` before it, or as a record buffered
    /// while no expectation of that request was open (the script thought first; that
    /// record is claimed). Records that came before the request went out are another
    /// request's. Out of line: absences are rare.
    #[cold]
    #[inline(never)]
    fn absence_broken_before(&mut self, p: &Pending) -> Option<String> {
        let (_, value) = p.correlate.as_ref()?;
        let since = p.sent_at.map(|(_, actual)| actual);
        let after_send = |at: Instant| since.is_none_or(|sent| at >= sent);
        let error = self.spec.error_event.as_str();
        let key = key_hash(value);
        // The refusing error's body is not kept: an absence with field tests cannot be
        // told of it.
        if in_pattern(p, error)
            && tests_nothing(p)
            && self
                .refused
                .iter()
                .any(|(k, at, _)| *k == key && after_send(*at))
        {
            return Some(format!(
                "{error} (before this expect_none opened: it answered the expect before it)"
            ));
        }
        let stray = self.rare.as_ref().and_then(|r| {
            r.strays
                .iter()
                .filter(|(k, _, at)| *k == key && after_send(*at))
                .find_map(|(_, kind, _)| {
                    p.state
                        .pattern()
                        .iter()
                        .find(|i| key_hash(&i.event) == *kind)
                })
        });
        if let Some(item) = stray {
            return Some(format!(
                "{} (before this expect_none opened, while the expect before it waited)",
                item.event
            ));
        }
        let captures = &self.captures;
        let i = self.buffer.iter().position(|b| {
            belongs(p, b)
                && in_pattern(p, &b.event)
                && after_send(b.at)
                && b.body.as_ref().map_or(tests_nothing(p), |body| {
                    first_failed(p, body, captures).is_none()
                })
        })?;
        let b = self.buffer.remove(i)?;
        self.buffered_bytes -= b.bytes;
        Some(format!("{} (before this expect_none opened)", b.event))
    }

    /// Remembers a correlated record of kind `event` that the open expectation at `idx`
    /// does not name ([`CheckerRare::strays`]): an `expect_none` of that kind for the same
    /// request, opened after it, judges it. Out of line: strays are rare.
    #[cold]
    #[inline(never)]
    fn keep_stray(&mut self, idx: usize, event: &str, now: Instant) {
        let Some((_, value)) = &self.pending[idx].correlate else {
            return;
        };
        let entry = (key_hash(value), key_hash(event), now);
        let strays = &mut self.rare.get_or_insert_default().strays;
        keep_recent_n(strays, entry, STRAYS_KEPT);
    }

    /// Files the violation of the absence at `idx`, broken by what `seen` says.
    fn violate_absence(&mut self, idx: usize, seen: String, now: Instant) {
        let p = &self.pending[idx];
        let names: Vec<&str> = p.state.pattern().iter().map(|i| i.event.as_str()).collect();
        let expected = format!("no {} within {:?}", names.join(" or "), p.within);
        let key = p.correlate.as_ref().map(|(_, v)| v.clone());
        let step = self.resolve(idx, Resolution::Violated);
        if let Some(v) = self.violate(OracleKind::Completeness, now, expected, seen, key) {
            v.step = step.shown();
        }
    }

    /// Settles pending expectation `idx` with the error `msg`: an allowed answer, unless it
    /// `contradicts` the server's acceptance of the connection (it says the connection is
    /// not authenticated): then a completeness violation that quotes it.
    fn settle_by_error<J: Tree>(&mut self, idx: usize, msg: &J, contradicts: bool, now: Instant) {
        if !contradicts {
            self.settle_errored(idx, now);
            return;
        }
        let p = &self.pending[idx];
        let expected = format!("{} within {:?}", p.state.remaining(), p.within);
        let key = p.correlate.as_ref().map(|(_, v)| v.clone());
        let seen = format!(
            "{} after the server had accepted the connection: it says the connection is not \
             authenticated, as if the acceptance came before the session was ready",
            crate::model::Answer::quoted(&msg.to_string())
        );
        let step = self.resolve(idx, Resolution::Violated);
        if let Some(v) = self.violate_unmet(now, (expected, seen), key, (false, None)) {
            v.step = step.shown();
        }
    }

    /// How many uncorrelated expectations of this connection got nothing after the server
    /// had refused one of its requests with its error event, and were cut as not owed
    /// ([`crate::model::Counters::expectations_after_refusal`]).
    pub fn expectations_after_refusal(&self) -> u64 {
        self.rare.as_ref().map_or(0, |r| r.after_refusal)
    }

    /// How many expectations this connection's server answered with its error event and
    /// then with their whole answer all the same: served, though the error settled them.
    pub fn answered_after_error(&self) -> u64 {
        u64::from(self.answered_after_error)
    }

    /// How many required items of answers this connection's server sent after answering
    /// their request with its error event were counted as arrived, of whole answers
    /// ([`Self::answered_after_error`]) and of those that stayed in part: what the event
    /// rates hold that served no request unless its answer came whole.
    pub fn arrived_after_error(&self) -> u64 {
        u64::from(self.arrived_after_error)
    }

    /// Whether [`Self::on_sent`] reads the messages sent (learned completeness or
    /// calibration); when not, the engine need not hand them over as values.
    pub fn reads_sends(&self) -> bool {
        let judged = self.learned_on && !self.spec.learned.replies.is_empty();
        self.observed.is_some() || judged
    }

    /// A request went out on this connection: opens its reply span when learned
    /// completeness or calibration needs one (its kind by the scenario's `type_field`).
    pub fn on_sent(&mut self, msg: &Value) {
        if !self.reads_sends() {
            return;
        }
        self.span = kind_of(&self.spec, msg).map(|request| {
            Box::new(Span {
                request: request.into_owned(),
                events: BTreeSet::new(),
                expect: None,
            })
        });
    }

    /// The first expectation after a request ended: the span closes. When it was met, the
    /// event kinds learned for that request must all have arrived by now.
    #[cold]
    #[inline(never)]
    fn close_span(&mut self, met: bool) {
        let Some(span) = self.span.take() else {
            return;
        };
        if !met {
            return;
        }
        if let Some(obs) = &mut self.observed {
            if obs.spans.len() < Observation::MAX_SPANS {
                obs.spans
                    .push((span.request.clone(), span.events.iter().cloned().collect()));
            }
        }
        let spec = self.spec.clone();
        let Some(reply) = spec
            .learned
            .replies
            .iter()
            .find(|r| r.request == span.request)
        else {
            return;
        };
        // Counted, not judged: calibration saw these kinds in every reply, but a correct
        // server may send a kind only sometimes (a tool event when a tool ran, a progress
        // event its rate limit let through); to require one, a scenario names it.
        for kind in reply.events.iter().filter(|e| !span.events.contains(*e)) {
            *self
                .counts
                .learned_replies_short
                .entry(format!("{} without {kind}", span.request))
                .or_default() += 1;
        }
    }

    /// The correlation value of a finished expectation this event belongs to, when the
    /// finished pattern cannot take it (it may still take trailing optional items), and
    /// the finding's `expected`: [`ANSWERED_WITH_ERROR`] when the expectation ended with
    /// the error event, else [`ANSWERED_IN_FULL`].
    fn late_for_finished<J: Tree>(
        &mut self,
        msg: &J,
        event: &str,
        now: Instant,
    ) -> Option<(String, &'static str)> {
        let (fields, keys): (Vec<usize>, Vec<String>) = self
            .correlate_fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| lookup(msg, f).map(|v| (i, key_text(v))))
            .unzip();
        let hashes: Vec<u64> = keys.iter().map(|k| key_hash(k)).collect();
        // A late answer shows the answers carry the values at that path: it is read.
        let read_at = |key: u64| {
            let at = hashes.iter().position(|h| *h == key)?;
            fields.get(at).copied()
        };
        // The newest with the key: a value a script reuses belongs to its latest expectation.
        let (hash, expected) = match self
            .recent_done
            .iter_mut()
            .rev()
            .find(|d| hashes.contains(&d.key))
        {
            Some(done) if done.ended == Ended::SettledTested => return None,
            Some(done) if done.ended != Ended::Settled => {
                let (key, ended) = (done.key, done.ended);
                // After an error, the answer sent anyway is judged as a met one's later
                // events are: a second copy, or an event out of its pattern's order, is the
                // same finding with the error before it as without.
                let late = ended == Ended::Errored && {
                    let items = self.tallies.get(usize::from(done.slot))?.items.clone();
                    let mut state = PatternState::resume(items, done.at);
                    let late = is_late(&mut state, event);
                    done.at = state.progress();
                    late
                };
                if ended == Ended::Failed && self.late_fails_where(key, msg, event, now) {
                    // It came, with the wrong content: arrived, for the rates.
                    self.arrived_after_failure(key, event);
                    return None;
                }
                if self.arrived_after_end(key, ended, event, now) {
                    self.note_field_at(read_at(key));
                }
                late.then_some((key, ANSWERED_WITH_ERROR))?
            }
            Some(done) => {
                let items = self.tallies.get(usize::from(done.slot))?.items.clone();
                let mut state = PatternState::resume(items, done.at);
                let late = is_late(&mut state, event);
                done.at = state.progress();
                late.then_some((done.key, ANSWERED_IN_FULL))?
            }
            None => {
                let done = self
                    .recent_done_unslotted
                    .iter_mut()
                    .rev()
                    .find(|d| hashes.contains(&d.key))?;
                if done.ended == Ended::SettledTested {
                    return None;
                }
                if done.ended != Ended::Settled {
                    let (key, ended) = (done.key, done.ended);
                    // As above: after an error, the same checks as after a met one.
                    let late = ended == Ended::Errored && is_late(&mut done.state, event);
                    if ended == Ended::Failed && self.late_fails_where(key, msg, event, now) {
                        self.arrived_after_failure(key, event);
                        return None;
                    }
                    if self.arrived_after_end(key, ended, event, now) {
                        self.note_field_at(read_at(key));
                    }
                    late.then_some((key, ANSWERED_WITH_ERROR))?
                } else {
                    is_late(&mut done.state, event).then_some((done.key, ANSWERED_IN_FULL))?
                }
            }
        };
        // The message's own key: the one whose hash matched.
        let at = hashes.iter().position(|h| *h == hash)?;
        keys.into_iter().nth(at).map(|key| (key, expected))
    }

    /// An event of a sequence that already failed (out of order, a failed field test, its
    /// deadline) or was answered with the error event, counted as arrived in the event
    /// rates, once per required item, whatever its place (a sequence that lost its third
    /// event still delivered its fifth). `key`: the [`key_hash`] of its correlation value;
    /// the newest finished expectation with it. `None` when it counted nothing (a kind its
    /// pattern does not require, or one already counted); else whether this arrival was
    /// the last of its required items to come: the answer is now whole, if late.
    fn arrived_after_failure(&mut self, key: u64, event: &str) -> Option<bool> {
        if let Some(done) = self.recent_done.iter_mut().rev().find(|d| d.key == key) {
            let tally = self.tallies.get_mut(usize::from(done.slot))?;
            let i = newly_arrived(&tally.items, &mut done.arrived, event)?;
            bump(&mut tally.per_item, std::iter::once(i), |t| t.arrived += 1);
            return Some(all_arrived(&tally.items, done.arrived));
        }
        let mut unslotted = self.recent_done_unslotted.iter_mut().rev();
        let done = unslotted.find(|d| d.key == key)?;
        newly_arrived(done.state.pattern(), &mut done.arrived, event)?;
        bump_kind(&mut self.counts.events, event, |t| t.arrived += 1);
        Some(all_arrived(done.state.pattern(), done.arrived))
    }

    /// `event` came for a finished expectation (correlated by `key`, a [`key_hash`]) that
    /// had failed or been answered with the error event: counted as arrived
    /// ([`Self::arrived_after_failure`]), never a late duplicate after a failure (the
    /// failure is its sequence's one finding; after an error the caller checks for those).
    /// When its answer came whole after all: a late answer to the one
    /// ([`Self::answered_late`]), the request served anyway to the other
    /// ([`Self::answered_after_error`]: the error still settled it, an allowed answer, but
    /// nothing was refused); one that stays in part after an error served nothing, and
    /// what of it came is counted apart ([`Self::arrived_after_error`]). `true` when the
    /// answer is now whole.
    fn arrived_after_end(&mut self, key: u64, ended: Ended, event: &str, now: Instant) -> bool {
        let Some(whole) = self.arrived_after_failure(key, event) else {
            return false;
        };
        match ended {
            Ended::Failed if whole => self.answered_late(key, now, false),
            Ended::Errored => {
                self.arrived_after_error = self.arrived_after_error.saturating_add(1);
                if whole {
                    self.answered_after_error = self.answered_after_error.saturating_add(1);
                }
            }
            Ended::Failed | Ended::Settled | Ended::SettledTested | Ended::FailedTested => {}
        }
        whole
    }

    /// A request went out on this connection at `actual` (what a late answer that comes
    /// only after a later request is measured from, [`Violation::after_request_ms`]).
    pub fn note_request(&mut self, actual: Instant) {
        self.last_request = Some(actual);
    }

    /// The answer to an expectation whose deadline ran out (correlated by `key`, a
    /// [`key_hash`]) came whole after all: its kept violation says when
    /// ([`Violation::late_ms`]), so that it reads as slow, not lost.
    ///
    /// Its request known, the answer's turn is recorded as every met one's is: leaving
    /// out the slowest answers would flatter the latency figures. `refused`: what came was
    /// the error event refusing the request, late (said so, and no turn recorded, as for
    /// a refusal in time).
    fn answered_late(&mut self, key: u64, now: Instant, refused: bool) {
        let request = self
            .late_waits
            .iter()
            .rposition(|w| w.key == key)
            .and_then(|at| self.late_waits.remove(at));
        let own_request = request.as_ref().map(|w| w.actual);
        let turn = request.map(|w| {
            if refused {
                return now.saturating_duration_since(w.intended);
            }
            // As an answer in time's: one sample of every phase it measures alike.
            let turn = now.saturating_duration_since(w.intended);
            let mut phases = Phases::from(Phase::Turn);
            if w.one_record {
                phases = phases.with(Phase::FirstEvent);
            }
            if w.actual == w.intended {
                phases = phases.with(Phase::TurnRaw);
            } else {
                self.samples.push((
                    Phase::TurnRaw.into(),
                    now.saturating_duration_since(w.actual),
                ));
            }
            self.samples.push((phases, turn));
            if let Some(name) = w.name {
                self.named_samples.push((name.into(), turn));
            }
            turn
        });
        let now_ms = now.saturating_duration_since(self.t0).as_secs_f64() * 1000.0;
        let missed = self.violations.iter_mut().rev().find(|v| {
            v.window_ms.is_some()
                && v.late_ms.is_none()
                && v.correlation.as_deref().map(key_hash) == Some(key)
        });
        if let Some(v) = missed {
            // From its request; else from when the wait began, `window_ms` before the
            // deadline ran out at `at_ms`.
            let late = turn.map_or_else(
                || v.window_ms.unwrap_or_default() + (now_ms - v.at_ms).max(0.0),
                |t| t.as_secs_f64() * 1000.0,
            );
            v.late_ms = Some(late);
            let what = if refused {
                "the server's error event refusing it"
            } else {
                "it"
            };
            let _ = write!(v.seen, "; {what} came after {late:.0} ms");
            // A later request went out after the deadline ran out, and the answer came
            // only after it: how long after (one request behind, or slow).
            let t0 = self.t0;
            let ms = |at: Instant| at.saturating_duration_since(t0).as_secs_f64() * 1000.0;
            let later = self
                .last_request
                .filter(|&last| own_request.is_some_and(|own| last > own))
                .filter(|&last| ms(last) >= v.at_ms && last <= now);
            if let Some(last) = later {
                let after = ms(now) - ms(last);
                v.after_request_ms = Some(after);
                let _ = write!(v.seen, ", {after:.0} ms after the next request went out");
            }
        }
    }

    fn finished<J: Tree>(&self, msg: &J) -> bool {
        self.correlate_fields
            .iter()
            .filter_map(|f| lookup(msg, f))
            .map(value_hash)
            .any(|h| {
                self.recent_done.iter().any(|d| d.key == h)
                    || self.recent_done_unslotted.iter().any(|d| d.key == h)
            })
    }

    /// Keeps a message no expectation claimed yet, within `max_buffered` messages and
    /// `max_buffered_bytes` bytes: the oldest go first, and a message bigger than the
    /// whole byte bound is not kept at all; each one dropped is counted with its bytes.
    fn buffer_message<J: Tree>(
        &mut self,
        event: &str,
        msg: &J,
        at: Instant,
    ) -> Option<&mut Buffered> {
        let mut keys: Vec<(String, String)> = Vec::new();
        let mut no_ids = 0u8;
        for (i, f) in self.correlate_fields.iter().enumerate() {
            let Some(v) = lookup(msg, f) else {
                continue;
            };
            if i < 8 && is_no_id(v) {
                no_ids |= 1 << i;
            }
            keys.push((f.clone(), key_text(v)));
        }
        // An error's body too: it is quoted if it settles an expectation as a violation.
        let body = (self.keep_bodies || event == self.spec.error_event).then(|| msg.to_value());
        let bytes = Buffered::measure(event, &keys, body.as_ref());
        if bytes > self.spec.max_buffered_bytes {
            self.counts.buffer_overflows += 1;
            self.counts.buffer_overflow_bytes += bytes as u64;
            return None;
        }
        while !self.buffer.is_empty()
            && (self.buffer.len() >= self.spec.max_buffered
                || self.buffered_bytes + bytes > self.spec.max_buffered_bytes)
        {
            if let Some(old) = self.buffer.pop_front() {
                self.buffered_bytes -= old.bytes;
                self.counts.buffer_overflows += 1;
                self.counts.buffer_overflow_bytes += old.bytes as u64;
            }
        }
        self.buffered_bytes += bytes;
        let learned_ids = self.learned_ids(msg);
        self.buffer.push_back(Buffered {
            event: event.to_string(),
            keys,
            no_ids,
            contradicts: false,
            body,
            at,
            bytes,
            learned_ids,
        });
        self.buffer.back_mut()
    }

    /// A violation of a learned invariant: like [`Self::violate`], marked learned.
    fn violate_learned(
        &mut self,
        oracle: OracleKind,
        now: Instant,
        expected: String,
        seen: String,
    ) {
        if let Some(v) = self.violate(oracle, now, expected, seen, None) {
            v.learned = true;
        }
    }

    /// A completeness violation settled by the stream's end, recording that end.
    fn violate_ended(
        &mut self,
        now: Instant,
        (expected, seen): (String, String),
        correlation: Option<String>,
        ended: StreamEnded,
    ) -> Option<&mut Violation> {
        let v = self.violate(OracleKind::Completeness, now, expected, seen, correlation)?;
        v.ended = Some(ended);
        Some(v)
    }

    /// Counts a violation of `oracle` and keeps it while fewer than [`MAX_KEPT`] are kept:
    /// the kept one, for the caller to add what only it knows (the step of the expectation
    /// it settled, how the stream ended); `None` past the cap.
    fn violate(
        &mut self,
        oracle: OracleKind,
        now: Instant,
        expected: String,
        seen: String,
        correlation: Option<String>,
    ) -> Option<&mut Violation> {
        *self.violated_by.entry(oracle).or_default() += 1;
        self.violated += 1;
        if self.violations.len() >= MAX_KEPT {
            return None;
        }
        self.violations.push(Violation {
            oracle,
            conn: self.who.conn,
            user: self.who.user,
            group: self.who.group.clone(),
            jti: self.who.jti.clone(),
            at_ms: now.saturating_duration_since(self.t0).as_secs_f64() * 1000.0,
            expected,
            seen,
            correlation,
            involved: Vec::new(),
            learned: false,
            unreadable: false,
            ended: None,
            window_ms: None,
            late_ms: None,
            after_request_ms: None,
            conn_end_ms: None,
            cut_by_run_ms: None,
            step: None,
            misread: None,
        });
        self.violations.last_mut()
    }
}

/// The steps after `step` that needed the connection and never ran because it ended at
/// `step`: every `send` and `expect` up to the script's next `close`, `reconnect` or
/// connect (each of those ends or replaces the connection anyway). Waiting steps (`think`,
/// `pause_reads`, pacing) ask nothing of the server and are not counted. Empty when the
/// script expects the end there: the next step that talks to the server is a `close` or a
/// `reconnect`, or there is none (the script was over).
pub fn steps_cut_off(actions: &[Action], step: usize) -> Vec<&Action> {
    actions
        .iter()
        .skip(step.saturating_add(1))
        .take_while(|a| {
            !matches!(
                a,
                Action::Close { .. }
                    | Action::Reconnect { .. }
                    | Action::Connect
                    | Action::AbortHandshake { .. }
            )
        })
        .filter(|a| a.is_send() || matches!(a, Action::Expect(_)))
        .collect()
}

/// Where a connection's script was when the server ended it, for the finding's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptPlace {
    /// The 0-based number of the action in progress among the connection's actions (the
    /// implicit connect first, each loop iteration's steps again).
    pub action: u64,
    /// How many actions the connection has in all.
    pub actions: u64,
    /// The step as the scenario file numbers it: 1-based, dotted inside a `repeat` (`2.1`
    /// is the first step of the repeat at step 2), as `validate` and the verdict's notes
    /// name steps; [`StepPlace::NONE`] for the implicit connect and for a plan of explicit
    /// actions (a repro's), whose actions are its steps.
    pub step: StepPlace,
}

impl ScriptPlace {
    /// `step 2.1 (expect y; action 7 of 12)`, or `step 7 of 12 (expect y)` without a
    /// script step. `name` is the step's [`step_name`]. Read up to " at step " by
    /// `shrink`, which compares findings without where they happened.
    fn describe(&self, name: &str) -> String {
        let action = self.action.saturating_add(1);
        match self.step.shown() {
            Some(step) => format!("step {step} ({name}; action {action} of {})", self.actions),
            None => format!("step {action} of {} ({name})", self.actions),
        }
    }
}

/// A pattern as the scenario writes it: `agent_started agent_thinking+ agent_completed`.
fn pattern_text(items: &[PatternItem]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|i| format!("{}{}", i.event, i.repeat.mark()))
        .collect();
    items.join(" ")
}

/// A step as the scenario names it: `send`, `expect agent_started agent_thinking+`, ...
fn step_name(action: &Action) -> String {
    match action {
        Action::Connect => "connect".into(),
        Action::AbortHandshake { .. } => "abort_handshake".into(),
        Action::Send { .. } => "send".into(),
        Action::SendText { .. } => "send_text".into(),
        Action::SendBinary { .. } => "send_binary".into(),
        Action::Ping { .. } => "ping".into(),
        Action::Expect(e) => format!("expect {}", pattern_text(&e.pattern)),
        Action::Think(_) => "think".into(),
        Action::PaceStart | Action::PaceAt(_) => "paced repeat".into(),
        Action::PauseReads(_) => "pause_reads".into(),
        Action::Close { code } => format!("close {code}"),
        Action::Reconnect { .. } => "reconnect".into(),
        Action::Rendezvous { .. } => "rendezvous".into(),
    }
}

/// Words of an error that say the connection is not authenticated, or its session not
/// set up yet (lowercase, matched anywhere in the error's JSON text): the server's
/// authentication and session, not its authorization ("forbidden" for a room is policy)
/// and not an expired token. After the server accepted the connection, either is the ack
/// sent before the session was ready (race pattern P7).
const UNAUTHENTICATED: [&str; 14] = [
    "not_authenticated",
    "not authenticated",
    "unauthenticated",
    "authentication required",
    "authentication_required",
    "not logged in",
    "login required",
    "session not found",
    "session not ready",
    "session_not_ready",
    "connection not ready",
    "session not initialized",
    "session not initialised",
    "session not established",
];

/// Whether an error's text says the connection is not authenticated (and not that its
/// token expired, which a session may legitimately outlive: race pattern P5).
fn says_unauthenticated(text: &str) -> bool {
    let text = text.to_lowercase();
    !text.contains("expired") && UNAUTHENTICATED.iter().any(|w| text.contains(w))
}

fn correlated_match<J: Tree>(p: &Pending, msg: &J) -> bool {
    match &p.correlate {
        Some((field, value)) => lookup(msg, field).is_some_and(|v| key_is(v, value)),
        None => false,
    }
}

fn belongs(p: &Pending, b: &Buffered) -> bool {
    match &p.correlate {
        Some((field, value)) => b.keys.iter().any(|(f, v)| f == field && v == value),
        None => true,
    }
}

/// Event types absent from a pattern (telemetry, heartbeats) are not its business.
fn in_pattern(p: &Pending, event: &str) -> bool {
    p.state.mentions(event)
}

/// The first of `p`'s field tests `msg` fails, `{{$name}}` captures resolved. Inline, its
/// test of whether `p` has any: most have none, and every answer asks (the tests
/// themselves are looked at out of line).
#[inline]
fn first_failed<'p, J: Tree>(
    p: &'p Pending,
    msg: &J,
    captures: &BTreeMap<String, Value>,
) -> Option<&'p FieldTest> {
    let extras = p.extras.as_deref()?;
    failed_test(&extras.checks, msg, captures)
}

/// `test` as findings show it: the value it wants with its `{{$name}}` captures filled.
fn filled_test(test: &FieldTest, captures: &BTreeMap<String, Value>) -> FieldTest {
    FieldTest {
        path: test.path.clone(),
        test: match &test.test {
            Test::Equals(v) => Test::Equals(fill(v, captures)),
            other => other.clone(),
        },
    }
}

/// Top-level fields whose name says why a record said no (`error`, `reason`), in the
/// order they are looked for.
const WHY_FIELDS: [&str; 5] = ["error", "reason", "message", "detail", "code"];

/// What a record that failed a field test at `tested` says of why, beside it: the first
/// top-level field whose name is one of [`WHY_FIELDS`] (`, and error =
/// {"name":"Duplicate",…}`: a refusal's reason, which tells a script that sends an id
/// again from a server that lost its state); empty when it has none.
fn said_why<J: Tree>(msg: &J, tested: &str) -> String {
    let tested = tested.trim_start_matches('/');
    let names = msg.member_names().unwrap_or_default();
    WHY_FIELDS
        .iter()
        .find_map(|why| {
            let name = names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(why) && **n != tested)?;
            let value = lookup(msg, name)?;
            let shown = excerpt(&value.to_value().to_string(), NO_ID_BYTES);
            Some(format!(", and {name} = {shown}"))
        })
        .unwrap_or_default()
}

/// What a record held where the field test `test` failed on it (`shown`: the test with its
/// captures filled, as findings show it), and how the script may have misread the server
/// by it: the value at the path (a type the test does not take, or another value), or
/// no such field (what the record held nearest to it).
fn failed_test_words<J: Tree>(
    test: &FieldTest,
    shown: &FieldTest,
    msg: &J,
    event: &str,
    captures: &BTreeMap<String, Value>,
) -> (String, Misread) {
    match lookup(msg, &test.path) {
        Some(v) => (
            format!("{} = {v}", test.path),
            match type_slip(test, v, captures) {
                Some((wanted, held)) => Misread::WrongType {
                    path: test.path.clone(),
                    wanted,
                    held,
                    kinds: vec![event.to_string()],
                },
                None => Misread::WrongValue {
                    path: test.path.clone(),
                    held: Some(excerpt(&v.to_value().to_string(), NO_ID_BYTES)),
                    wanted: match &shown.test {
                        Test::Equals(w) => Some(excerpt(&w.to_string(), NO_ID_BYTES)),
                        _ => None,
                    },
                    kinds: vec![event.to_string()],
                },
            },
        ),
        None => (
            match nearest_held(msg, &test.path) {
                Some(held) => format!("no {} ({held})", test.path),
                None => format!("no {}", test.path),
            },
            Misread::NoCheckedField {
                path: test.path.clone(),
                carried: carried_names(msg),
                kinds: vec![event.to_string()],
            },
        ),
    }
}

/// Whether `p`'s correlation value or field tests refer to a `{{$name}}` capture that
/// `captures` does not hold. Out of line: read only on a connection whose server refused
/// a request with its error event.
#[cold]
#[inline(never)]
fn needs_uncaptured(p: &Pending, captures: &BTreeMap<String, Value>) -> bool {
    use super::frame::{names_uncaptured, value_names_uncaptured};
    let in_value = p
        .correlate
        .as_ref()
        .is_some_and(|(_, v)| holds_capture(v) && names_uncaptured(v, captures));
    let in_tests = p.extras.as_ref().is_some_and(|e| {
        e.checks.iter().any(|t| match &t.test {
            Test::Equals(v) => value_names_uncaptured(v, captures),
            Test::Matches(pattern) => names_uncaptured(pattern, captures),
            _ => false,
        })
    });
    in_value || in_tests
}

/// Whether what `p` claims is this connection's own for a learned identity: an answer
/// correlated with its request, or a greeting (no request before it). An uncorrelated
/// expectation after a request claims any record of its kinds, another member's broadcast
/// too (a chat room, a SignalR group), which carries that member's subject from a correct
/// server; calibration saw one connection at a time and could not tell the two apart.
/// Whether what `p` claims are pushes as its script is written ([`ExpectRare::pushed`]):
/// they carry whoever caused them (a broadcast's author), so the learned identity oracle
/// does not judge them.
fn claims_pushes(p: &Pending) -> bool {
    p.extras.as_ref().is_some_and(|e| e.pushed)
}

/// Whether `p`'s correlation value was drawn afresh for its request
/// ([`ExpectRare::fresh`]): no other request of the connection shares it.
fn fresh_value(p: &Pending) -> bool {
    p.extras.as_ref().is_some_and(|e| e.fresh)
}

fn owns_its_claims(p: &Pending) -> bool {
    p.correlate.is_some() || p.sent_at.is_none()
}

/// Whether `p` tests no field (`where`): what it matches is told by kind and correlation
/// alone.
fn tests_nothing(p: &Pending) -> bool {
    p.extras.as_ref().is_none_or(|e| e.checks.is_empty())
}

/// [`first_failed`] of an expectation with extras.
#[inline(never)]
fn failed_test<'p, J: Tree>(
    checks: &'p [FieldTest],
    msg: &J,
    captures: &BTreeMap<String, Value>,
) -> Option<&'p FieldTest> {
    let resolve = |s: &str| holds_capture(s).then(|| fill_str(s, captures));
    checks.iter().find(|t| !passes(t, msg, &resolve))
}

/// The captured values by name, and what each capture found ([`CaptureTally`]).
/// And the connection's rare state, where each capture's time goes
/// ([`CheckerRare::captured_at`]).
type Captures<'a> = (
    &'a mut BTreeMap<String, Value>,
    &'a mut BTreeMap<String, crate::model::CaptureTally>,
    &'a mut Option<Box<CheckerRare>>,
);

/// Stores `p`'s captures from a message of its pattern (a path the message lacks captures
/// nothing; a later send then shows the reference as written, and the first such message's
/// shape is kept for the verdict to show).
fn take_captures<J: Tree>(
    p: &Pending,
    msg: &J,
    at: Instant,
    (captures, tallies, rare): Captures<'_>,
) {
    for c in p.capture() {
        if let Some(v) = lookup(msg, &c.path) {
            let value = v.to_value();
            // The time its value was first announced: a server that gives the same one
            // again (a topic's id for each subscription to it) announced it then.
            let again = captures.get(&c.name) == Some(&value);
            captures.insert(c.name.clone(), value);
            let times = &mut rare.get_or_insert_default().captured_at;
            match times.iter_mut().find(|(name, _)| *name == c.name) {
                Some(_) if again => {}
                Some((_, when)) => *when = at,
                None => times.push((c.name.clone(), at)),
            }
        } else {
            let tally = tallies.entry(c.name.clone()).or_default();
            if tally.shape.is_empty() {
                tally.shape = msg.shape();
            }
        }
    }
}

/// Whether `record` holds `value` (a correlation value) anywhere.
/// Whether an unread `record` (a `binary` frame or text) may hold what `p` waits for (see
/// [`ConnChecker::note_unread_frame`]); `by_rules`: kinds come from `[oracles.kinds]`.
fn may_hold(p: &Pending, record: &[u8], binary: bool, by_rules: bool) -> bool {
    match &p.correlate {
        Some((_, value)) => holds(record, value.as_bytes()),
        None if binary || by_rules => true,
        None => {
            let items = p.state.pattern();
            items.is_empty() || items.iter().any(|i| holds(record, i.event.as_bytes()))
        }
    }
}

/// Whether a text `record` that was not JSON, received before expectation `p` opened, may
/// hold what `p` waits for: its correlation value, or, for an uncorrelated one, a JSON
/// document on one of its lines (newline-joined records, NDJSON) or between record
/// separators (0x1E) whose kind is in `p`'s pattern. Stricter than [`may_hold`] for a
/// record that came while `p` waited: a heartbeat line that came before says nothing
/// about what `p` waits for.
fn held_earlier(spec: &OracleSpec, p: &Pending, record: &[u8]) -> bool {
    if let Some((_, value)) = &p.correlate {
        return holds(record, value.as_bytes());
    }
    let items = p.state.pattern();
    record
        .split(|b| *b == b'\n' || *b == 0x1e)
        .filter_map(|piece| serde_json::from_slice::<Value>(piece).ok())
        .filter_map(|doc| kind_of(spec, &doc).map(|k| k.into_owned()))
        .any(|kind| items.iter().any(|i| i.event == kind))
}

fn holds(record: &[u8], value: &[u8]) -> bool {
    !value.is_empty() && memchr::memmem::find(record, value).is_some()
}

/// Applies `f` to the tallies of the items `at`.
fn bump(per_item: &mut [Tally], at: impl Iterator<Item = usize>, f: impl Fn(&mut Tally)) {
    for i in at {
        if let Some(t) = per_item.get_mut(i) {
            f(t);
        }
    }
}

/// Applies `f` to `event`'s tally, made on first sight. Looked up first: an owned key only
/// for an event seen for the first time.
fn bump_kind(events: &mut BTreeMap<String, Tally>, event: &str, f: impl Fn(&mut Tally)) {
    match events.get_mut(event) {
        Some(t) => f(t),
        None => f(events.entry(event.to_string()).or_default()),
    }
}

/// A finished expectation as [`ConnChecker`]'s `recent_done` keeps it.
#[derive(Debug, Clone, Copy)]
struct Done {
    /// The hash of its correlation value ([`key_hash`]).
    key: u64,
    /// Where its pattern stopped.
    at: Progress,
    /// Its pattern's slot in `tallies`.
    slot: u8,
    /// How it ended: violated or answered with the error event, its later events are
    /// counted as arrived ([`ConnChecker::arrived_after_end`]); violated, they are the rest
    /// of its sequence, no late duplicates.
    ended: Ended,
    /// Its required items counted as arrived ([`arrived_mask`]).
    arrived: u16,
}

/// How a finished correlated expectation ended, for what still comes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Met, cut or refused: what comes after is allowed by its pattern, or a duplicate.
    Settled,
    /// Violated: what comes after is the rest of a failed sequence (a late answer).
    Failed,
    /// Answered with the error event: what comes after is the answer sent anyway, counted
    /// as arrived (a server that says "error" and then sends the whole answer did serve
    /// the request), and judged as a met one's is: a second copy, or an event out of its
    /// pattern's order, is a late duplicate all the same.
    Errored,
    /// Met, cut or refused, with `where` tests, or claiming pushes (a channel's value): what
    /// comes after for its correlation value is its answer only if it passes those tests,
    /// which the entry no longer holds, and a value other requests share (a channel's)
    /// brings their answers too: neither a duplicate nor counted.
    SettledTested,
    /// Violated or answered with the error event, with `where` tests or claiming pushes:
    /// what comes after is
    /// counted as arrived, but is no late answer nor the answer sent anyway (it may be
    /// another request's on a shared value: the next request's broadcast).
    FailedTested,
}

// The ring's entry stays as small as its doc on `recent_done` says: 64 per connection.
const _: () = assert!(std::mem::size_of::<Done>() <= 24);

/// [`Done`] of a pattern without a slot in `tallies`: it holds its pattern.
#[derive(Debug)]
struct DoneUnslotted {
    key: u64,
    state: PatternState,
    ended: Ended,
    arrived: u16,
}

/// Required items past this many are left out of [`Done::arrived`]: their late arrivals
/// after a failure are not counted (a sequence of more than 16 required kinds is rare).
const MASKED_ITEMS: usize = u16::BITS as usize;

/// The required items of `state`'s pattern that have arrived, one bit each.
fn arrived_mask(state: &PatternState) -> u16 {
    state
        .arrived_required_items()
        .filter(|&i| i < MASKED_ITEMS)
        .fold(0, |mask, i| mask | 1 << i)
}

/// Whether `mask` counts every required item of `items` (those past [`MASKED_ITEMS`]
/// cannot be told, and count as not).
fn all_arrived(items: &[PatternItem], mask: u16) -> bool {
    required_items(items).all(|i| i < MASKED_ITEMS && mask & (1 << i) != 0)
}

/// The first required item of `items` named `event` that `mask` does not count yet;
/// counted in `mask` now.
fn newly_arrived(items: &[PatternItem], mask: &mut u16, event: &str) -> Option<usize> {
    let i = required_items(items)
        .take_while(|&i| i < MASKED_ITEMS)
        .find(|&i| items[i].event == event && *mask & (1 << i) == 0)?;
    *mask |= 1 << i;
    Some(i)
}

/// Keeps `done` among the last [`RECENT_DONE`] finished expectations.
fn keep_recent<T>(ring: &mut VecDeque<T>, done: T) {
    keep_recent_n(ring, done, RECENT_DONE);
}

/// Keeps `item` among the last `n` of `ring`.
fn keep_recent_n<T>(ring: &mut VecDeque<T>, item: T, n: usize) {
    if ring.len() >= n {
        ring.pop_front();
    }
    ring.push_back(item);
}

/// How many missed deadlines a connection remembers the requests of, for answers that
/// come late ([`ConnChecker::answered_late`]): as many as it remembers finished
/// expectations (a late answer is known as one only while its expectation is among them),
/// so that every answer known to be late is timed. Fewer left a paced connection's
/// slowest answers out of the latency figures: a server 2.7 s behind a request every
/// 50 ms has ~35 requests past their deadlines at once, and the oldest, slowest answers
/// were the ones forgotten (56 bytes each, held only while deadlines are missed).
const LATE_WAITS: usize = RECENT_DONE;

/// A correlated expectation whose deadline ran out ([`ConnChecker::late_waits`]).
struct LateWait {
    /// [`key_hash`] of its correlation value.
    key: u64,
    /// Its request's send instants.
    intended: Instant,
    actual: Instant,
    /// Its `name`, when it has one: a late answer's turn latency goes to its name's
    /// histogram too, as an answer in time's does.
    name: Option<Box<str>>,
    /// Its pattern is one record (`echo`): the answer's first event is its last, and its
    /// first-event latency its turn.
    one_record: bool,
    /// Its field tests (`where`), when it has any: a late record that fails them is no
    /// late answer ([`ConnChecker::late_fails_where`]).
    checks: Option<Box<[FieldTest]>>,
}

/// Whether `event`, arriving for a finished expectation whose pattern stopped at `state`,
/// is a late duplicate: its pattern names it and does not allow it (a trailing `x*` does,
/// and then takes it). Only for one that was met: what follows a failed one is the rest
/// of its sequence.
fn is_late(state: &mut PatternState, event: &str) -> bool {
    state.mentions(event) && state.feed(event) == Fed::Unexpected
}

/// Patterns per connection whose events are tallied by item ([`ConnChecker::tally`]);
/// a script has a few expect steps, and patterns made afresh per expectation go by name.
const TALLIED_PATTERNS: usize = 8;

/// The event tallies of one pattern, per item; holding the pattern keeps its address
/// from being reused by another while it identifies this one.
#[derive(Debug)]
struct PatternTally {
    items: Arc<[PatternItem]>,
    per_item: Vec<Tally>,
}

/// What a settled expectation adds to its pattern's tallies. Counted when it settles, not
/// when it opens: one look-up per expectation, not two, and one cut by the run's end or
/// refused with its connection is out of the event rates without taking back what its
/// opening added (the tallies are read only once every expectation has settled,
/// [`ConnChecker::take_counts`]).
#[derive(Debug, Clone, Copy)]
enum Tallied {
    /// Met, errored or violated: each required kind counts as expected, and as arrived if
    /// it came.
    Answered,
    /// An absence (`expect_none`) settled: only what came of its kinds, as arrived.
    Arrived,
}

/// What the ring of finished expectations keeps of a correlation value: its 64-bit
/// foldhash (fixed seed; a few instructions per byte where std's SipHash took ~160 per
/// message). Two different values among the last 64 sharing a hash: one chance in 2^58.
fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0).hash_one(key)
}

/// [`key_hash`] of a received value's [`key_text`], without building the text for a
/// string (most keys): this runs for every message no open expectation claims.
fn value_hash<J: Tree>(value: &J) -> u64 {
    match value.text() {
        Some(text) => key_hash(text),
        None => key_hash(&key_text(value)),
    }
}

/// Records a connection received that no expectation could read.
#[derive(Debug, Default)]
struct Unread {
    /// Records that were not JSON.
    not_json: u64,
    /// Binary frames.
    binary: u64,
    /// JSON records without a kind, and the shape of the first (its field names).
    kindless: u64,
    kindless_shape: Option<Box<str>>,
    /// The last few text records of this stream that were not JSON ([`UNREAD_KEPT`], each
    /// cut to [`UNREAD_KEPT_BYTES`]): an expectation opened after them may have been
    /// answered in one (a reply and the push it announces joined in one frame by a newline
    /// the scenario does not split on: [`held_earlier`]). Empty, and never allocated, on
    /// most connections.
    recent: Vec<Box<[u8]>>,
}

/// What kind of record no expectation could read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unreadable {
    /// Text that is not JSON.
    Text,
    /// A binary frame.
    Binary,
    /// A JSON record without a kind.
    Kindless,
}

/// How many unread records a stream keeps for the expectations opened after them, and how
/// much of each: a bound, whatever the traffic.
const UNREAD_KEPT: usize = 4;
const UNREAD_KEPT_BYTES: usize = 2048;

mod diagnosis;
mod invariants;
use diagnosis::*;
pub use invariants::sequence_number;

#[cfg(test)]
mod tests;
