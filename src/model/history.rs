//! The run history: what the swarm saw, as plain values. Attempts with their outcomes
//! and causes, per-connection reports and counters, probes, barrier spreads, and the
//! violations the oracles found in them.

use super::bad_token::BadToken;
use super::names::OracleKind;
use super::plan::Shard;
use super::spec::StepPlace;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Why a connection attempt was not accepted, or how an accepted one ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// The upgrade was refused with this HTTP status.
    Http(u16),
    /// The server sent a Close frame with this code (an empty Close frame: 1005, the
    /// RFC 6455 value for "no status code").
    ServerClose(u16),
    /// The server sent a Close frame with a code RFC 6455 §7.4 forbids on the wire (0-999,
    /// 1004-1006, 1015, 1016-2999, 5000 and up): a protocol error of the server's, named
    /// by its code. See [`Cause::of_close_code`].
    InvalidClose(u16),
    /// The client closed with this code, as planned.
    ClientClose(u16),
    /// The TCP connection was reset or dropped without a Close frame.
    Reset,
    /// A stage did not finish in time: `connect`, `tls`, `upgrade`, `probe`, or `send` (a
    /// frame write the server did not take within `[limits] send_timeout`: it stopped
    /// reading).
    Timeout(&'static str),
    /// Connecting failed (refused, unreachable, ...).
    Connect(String),
    /// This process ran out of file descriptors (EMFILE, ENFILE): stampede's own limit,
    /// never the target's failure.
    ClientFdLimit,
    /// No local port was free for another connection (EADDRNOTAVAIL on connect): the
    /// client machine's limit, never the target's failure.
    ClientPortsExhausted,
    /// The system connected from another local address than the `--source-addr` given (it
    /// does so for a broadcast address it let the socket bind): the client's setting,
    /// never the target's failure.
    ClientSourceIgnored,
    /// TLS handshake failed.
    Tls,
    /// The server broke the WebSocket protocol (bad frame, bad handshake response).
    Protocol,
    /// A frame or message exceeded the configured limit.
    Oversized,
    /// The run ended (duration or Ctrl-C) while the connection was open.
    Interrupted,
    /// We abandoned the handshake on purpose (FIN or RST).
    Aborted { rst: bool },
    /// The login request before the upgrade failed (`[auth] tokens = { login = ... }`):
    /// the upgrade was never tried, so it is no verdict of the WebSocket target's.
    LoginFailed,
    /// The server refused in band: before acceptance it sent a message of this kind, the
    /// one `[oracles] reject.message` declares (ActionCable's `disconnect` with reason
    /// `unauthorized`). Written `message_<kind>`.
    RefusedInBand(String),
}

impl serde::Serialize for Cause {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cause {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(Cause::parse(&text))
    }
}

impl Cause {
    /// Reads back what `Display` wrote; unknown text becomes a protocol cause.
    pub fn parse(text: &str) -> Cause {
        let num = |p: &str| text.strip_prefix(p).and_then(|n| n.parse().ok());
        if let Some(s) = num("http_") {
            return Cause::Http(s);
        }
        if let Some(c) = num("server_close_") {
            return Cause::ServerClose(c);
        }
        if let Some(c) = num("client_close_") {
            return Cause::ClientClose(c);
        }
        if let Some(c) = num("invalid_close_") {
            return Cause::InvalidClose(c);
        }
        if let Some(kind) = text.strip_prefix("message_") {
            return Cause::RefusedInBand(kind.to_string());
        }
        match text {
            "client_fd_limit" => Cause::ClientFdLimit,
            "client_ports_exhausted" => Cause::ClientPortsExhausted,
            "client_source_ignored" => Cause::ClientSourceIgnored,
            "reset" => Cause::Reset,
            "timeout_connect" => Cause::Timeout("connect"),
            "timeout_tls" => Cause::Timeout("tls"),
            "timeout_upgrade" => Cause::Timeout("upgrade"),
            "timeout_probe" => Cause::Timeout("probe"),
            "timeout_send" => Cause::Timeout("send"),
            "tls_error" => Cause::Tls,
            "oversized_frame" => Cause::Oversized,
            "interrupted" => Cause::Interrupted,
            "aborted_rst" => Cause::Aborted { rst: true },
            "aborted_fin" => Cause::Aborted { rst: false },
            "login_failed" => Cause::LoginFailed,
            other => match other.strip_prefix("connect_") {
                Some(kind) => Cause::Connect(kind.to_string()),
                None => Cause::Protocol,
            },
        }
    }
}

impl Cause {
    /// Whether this is a server Close a server may end a session with for a policy of its
    /// own (a token's expiry, a maximum connection age): a normal closure or going away
    /// (most servers say why in the reason only), a bare close (1005: no code), a policy
    /// violation (1008) or an application's own code (3000–4999, as 4001 "token
    /// expired"). A code that states a fault (a protocol or data error, an internal error
    /// 1011, a restart, load shedding) or an invalid one says something else.
    pub fn may_end_by_policy(&self) -> bool {
        matches!(
            self,
            Cause::ServerClose(1000 | 1001 | 1005 | 1008 | 3000..=4999)
        )
    }

    /// Whether RFC 6455 (§7.4, and the IANA registry's 1012-1014) lets an endpoint send
    /// `code` in a Close frame.
    pub fn close_code_allowed(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// A Close frame's code as received: [`Cause::ServerClose`] when allowed on the wire,
    /// else [`Cause::InvalidClose`].
    pub fn of_close_code(code: u16) -> Cause {
        if Cause::close_code_allowed(code) {
            Cause::ServerClose(code)
        } else {
            Cause::InvalidClose(code)
        }
    }

    /// Whether the client itself, not the target, is to blame (its fd or port limits, a
    /// source address the system did not use).
    pub fn is_client_side(&self) -> bool {
        matches!(
            self,
            Cause::ClientFdLimit | Cause::ClientPortsExhausted | Cause::ClientSourceIgnored
        )
    }

    /// Whether this is load shedding, "not now" rather than "not you": HTTP 429 (Too Many
    /// Requests) or 503 (Service Unavailable) to the upgrade, or a Close 1013 (try again
    /// later) before acceptance. A server's legitimate answer under load, whatever the
    /// token: never a session-oracle violation (see `oracle::session`).
    pub fn is_shed(&self) -> bool {
        matches!(self, Cause::Http(429 | 503) | Cause::ServerClose(1013))
    }

    /// Whether this is an HTTP refusal of a request too large to read: 413 Content Too
    /// Large, 414 URI Too Long (a token in the query), 431 Request Header Fields Too Large
    /// (a token in a header); RFC 9110, RFC 6585. A server's HTTP layer gives them by size
    /// alone, before its auth code reads the token: the bad-token catalogue's `oversized`
    /// entry draws them, and such a refusal of a forged token is as clean as a listed one.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Cause::Http(413 | 414 | 431))
    }

    /// Whether this is an HTTP answer to the upgrade that is no refusal: neither the 101
    /// nor a 4xx or 5xx (a 200 page, a 3xx redirect). A protocol fault, not a judgement of
    /// the token: the server does not speak WebSocket there.
    pub fn is_http_fault(&self) -> bool {
        matches!(self, Cause::Http(status) if !(400..=599).contains(status))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Http(s) => write!(f, "http_{s}"),
            Cause::ServerClose(c) => write!(f, "server_close_{c}"),
            Cause::InvalidClose(c) => write!(f, "invalid_close_{c}"),
            Cause::ClientFdLimit => write!(f, "client_fd_limit"),
            Cause::ClientPortsExhausted => write!(f, "client_ports_exhausted"),
            Cause::ClientSourceIgnored => write!(f, "client_source_ignored"),
            Cause::ClientClose(c) => write!(f, "client_close_{c}"),
            Cause::Reset => write!(f, "reset"),
            Cause::Timeout(stage) => write!(f, "timeout_{stage}"),
            Cause::Connect(kind) => write!(f, "connect_{kind}"),
            Cause::Tls => write!(f, "tls_error"),
            Cause::Protocol => write!(f, "protocol_error"),
            Cause::Oversized => write!(f, "oversized_frame"),
            Cause::Interrupted => write!(f, "interrupted"),
            Cause::LoginFailed => write!(f, "login_failed"),
            Cause::RefusedInBand(kind) => write!(f, "message_{kind}"),
            Cause::Aborted { rst: true } => write!(f, "aborted_rst"),
            Cause::Aborted { rst: false } => write!(f, "aborted_fin"),
        }
    }
}

/// Expected vs arrived for one event type: the "event success rate".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub expected: u64,
    pub arrived: u64,
}

/// Per-run counters; every field adds up under [`Counters::merge`]. Serialized as they
/// are into `summary.json` (`counters`), so a new counter reaches the results by itself.
/// Causes are keys in their string form (`http_409`, `server_close_1011`, `reset`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub attempted: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Handshakes we abandoned on purpose (`abort_handshake`).
    pub aborted: u64,
    /// Attempts the run's end (duration or Ctrl-C) cut before the server's answer was
    /// known: neither the target's success nor its failure.
    pub cut: u64,
    /// Attempts that failed for the client's own limits (`client_fd_limit`,
    /// `client_ports_exhausted`): never charged to the target.
    /// `attempted = accepted + rejected + failed + aborted + cut + client_errors`.
    pub client_errors: u64,
    /// Of the rejected and failed attempts, those the server shed under load
    /// ([`Attempt::is_shed`]: HTTP 429 or 503, a close 1013 or a code `[oracles]
    /// reject.shed` declares before acceptance): counted in
    /// `rejected`/`failed` and by cause as before, never a session-oracle violation.
    pub shed: u64,
    /// Of the accepted attempts, those the server later closed with a shedding code (1013
    /// try again later, or a `[oracles] reject.shed` code) while their script still ran
    /// ([`Attempt::shed_after_acceptance`]): load shedding too, so what their script still
    /// expected is counted as refused (`expectations_refused`), never a violation.
    pub shed_after_acceptance: u64,
    /// Attempts the server ended because another connection of their token took over,
    /// with a close code `[oracles] reject.replaced` declares (a 4409 "session replaced"):
    /// its way of keeping one session per token ([`Attempt::is_replaced`]), among the
    /// accepted or, when it came before acceptance, the rejected. What their scripts still
    /// expected is counted as refused (`expectations_refused`), never a violation.
    pub replaced: u64,
    /// Accepted attempts the server closed (1000 or 1001) after they had been idle for the
    /// scenario's declared `[oracles] idle_timeout`, while their script still ran
    /// ([`Attempt::is_closed_idle`]): its idle policy. Their unrun steps are no finding.
    pub closed_idle: u64,
    /// Accepted attempts the server closed once they had been open for the scenario's
    /// declared `[oracles] max_lifetime`, while their script still ran
    /// ([`Attempt::is_closed_at_lifetime`]): its connection lifetime policy. Their unrun
    /// steps are no finding.
    pub closed_at_lifetime: u64,
    /// Attempts the server closed or refused once the token stampede minted for them had
    /// expired ([`Attempt::closed_expired`], [`Attempt::refused_expired`]): the scenario's
    /// `[auth] ttl` ran out before its script did, its own misconfiguration. Among the
    /// accepted, rejected or failed; what their scripts still expected is refused, never a
    /// violation.
    pub expired: u64,
    /// Attempts whose Close the server did not answer within the close grace (2 s): it
    /// neither sent its own Close nor ended TCP, which RFC 6455 §5.5.1 requires of it. The
    /// client dropped them; they stay counted by our close code (`client_close_1000`),
    /// never a violation ([`Attempt::close_unanswered`]). Left out of files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub close_unanswered: u64,
    /// Of the rejected attempts, those refused after their upgrade had succeeded: a 101,
    /// then a Close or an in-band refusal before the scenario's acceptance (such as
    /// graphql-transport-ws's 4403 after `connection_init`). The WebSocket upgrade was
    /// accepted; the server's protocol refused them. Left out of files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejected_in_band: u64,
    /// Of the attempts, those whose details a connection did not keep: past the first
    /// and the latest [`ATTEMPTS_KEPT_FIRST`] and [`ATTEMPTS_KEPT_LATEST`] of each
    /// connection (a long reconnect loop), so that its memory follows the configuration
    /// and not the run's length. They are counted in full here (outcome and cause); the
    /// session oracles and the verdict's notes judge the attempts kept. Left out of
    /// files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts_not_kept: u64,
    /// Refusals and failures by cause (HTTP status, close code, reset, timeout...).
    pub refused_by: BTreeMap<Cause, u64>,
    /// How accepted connections ended.
    pub ended_by: BTreeMap<Cause, u64>,
    pub messages_sent: u64,
    /// Paced (open-model) sends that went out more than 5 ms after their intended time.
    pub late_sends: u64,
    /// Of those, the sends held at `[limits] max_in_flight` (the server owed that many
    /// answers): the offered load fell short because of the server, not the client. Left
    /// out of files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sends_held_in_flight: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
    /// Text records (frames, or the records a `record_separator` splits them into) that
    /// were not JSON: a finding, never a crash.
    #[serde(rename = "non_json_frames")]
    pub non_json: u64,
    /// Text records that were JSON, the ones the oracles read.
    pub json_records: u64,
    /// Of those, the records with no kind (no `type_field`, no `[oracles.kinds]` rule
    /// passed): what no expectation can match.
    pub kindless_records: u64,
    /// What the first of those was, by its field names, never its values (`an object
    /// with fields type, identifier`, `an array of 5`): what a run that read none of the
    /// server's records quotes, so a protocol the scenario was not written for shows
    /// itself. Left out of files when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kindless_shape: Option<Box<str>>,
    pub binary_frames: u64,
    /// Connections whose script made a send no `expect` follows (what the server does with
    /// it reaches no oracle). Left out of files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unjudged_senders: u64,
    /// Of those, the connections on which nothing came after their last such send, on the
    /// connection it went out on: what a server that drops it shows, as one that never
    /// answers such a send does. Left out of files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unjudged_unanswered: u64,
    /// The data frames that came after those last sends, on their connections. Left out
    /// of files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub after_unjudged_frames: u64,
    /// What the streaming oracles counted (they own these; the task copies them in).
    /// Messages sent to answer the server's in-band pings (`[[answer]]`): not requests,
    /// not in `messages_sent`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub in_band_answers: u64,
    /// Attempts whose in-band login waited for the server's challenge (`[auth] placement =
    /// { first_message = ..., after = KIND }`) until the attempt ended: the challenge never
    /// came, so the login never went out. Left out of files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub logins_unsent: u64,
    /// Of the expectations the server answered with its error event
    /// ([`ExpectCounts::expectations_errored`]), those whose whole answer then came all the
    /// same (every kind their pattern requires): the error settled them, but the request
    /// was served.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub answered_after_error: u64,
    /// Of the expectations cut ([`ExpectCounts::expectations_cut`]), uncorrelated ones
    /// (what the server sends unasked: a room's ticks) that got nothing at all on a
    /// connection whose request the server had refused with its error event after
    /// accepting it: a script that goes on after a refused join waits for what the refusal
    /// means it is not owed. Left out of files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expectations_after_refusal: u64,
    /// Required items of answers that came after their request's error event, counted in
    /// the event rates ([`ExpectCounts::events`]) whether or not the whole answer came: an
    /// answer that came only in part served nothing, so a verdict that asks whether any
    /// request was served reads the rates less these, and the whole answers
    /// (`answered_after_error`) apart.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub arrived_after_error: u64,
    #[serde(flatten)]
    pub expect: ExpectCounts,
    /// Connection tasks that panicked: a bug in stampede, never in the target.
    pub task_failures: u64,
}

/// Met expectations with `where` tests, counted by the step of their `expect`
/// ([`ExpectCounts::checked_met`]). Boxed, and nothing until the first: every connection's
/// state holds one, and most scenarios test no field. Serialized as the total (a count
/// read back from a file has no step: [`StepPlace::NONE`]).
#[derive(Debug, Clone, Default, PartialEq)]
// The box is the point: one pointer in every connection's state, not a `Vec`'s three words.
#[allow(clippy::box_collection)]
pub struct CheckedMet(Option<Box<Vec<(StepPlace, u64)>>>);

impl CheckedMet {
    /// `n` met at `place`.
    pub fn at_step(place: StepPlace, n: u64) -> CheckedMet {
        let mut met = CheckedMet::default();
        met.add(place, n);
        met
    }

    /// Counts `n` more met at `place`.
    pub fn add(&mut self, place: StepPlace, n: u64) {
        if n == 0 {
            return;
        }
        let steps = self.0.get_or_insert_with(Box::default);
        match steps.iter_mut().find(|(p, _)| *p == place) {
            Some((_, count)) => *count += n,
            None => steps.push((place, n)),
        }
    }

    /// Adds another connection's (or shard's) counts.
    pub fn merge(&mut self, other: &CheckedMet) {
        for &(place, n) in other.steps() {
            self.add(place, n);
        }
    }

    /// `(step, met)` for each step with any met, in the order first met.
    pub fn steps(&self) -> &[(StepPlace, u64)] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Met at every step together.
    pub fn total(&self) -> u64 {
        self.steps().iter().map(|(_, n)| n).sum()
    }

    /// Whether none was met.
    pub fn is_zero(&self) -> bool {
        self.total() == 0
    }

    /// Whether any was met at the step shown as `step` (`"3"`, `"2.1"`, as
    /// [`Violation::step`] names it). Where either place is unknown (`None`, a count read
    /// back from a file), any met counts: what cannot be told apart is taken to be there.
    pub fn passed_at(&self, step: Option<&str>) -> bool {
        self.steps().iter().any(|(place, _)| {
            let shown = place.shown();
            step.is_none() || shown.is_none() || shown.as_deref() == step
        })
    }
}

impl Serialize for CheckedMet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.total())
    }
}

impl<'de> Deserialize<'de> for CheckedMet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(CheckedMet::at_step(
            StepPlace::NONE,
            u64::deserialize(deserializer)?,
        ))
    }
}

/// How much of a record that was not JSON [`ExpectCounts::unread_sample`] keeps, bytes.
pub const UNREAD_SAMPLE_BYTES: usize = 48;

/// The streaming oracles' own counts for one connection (or, merged, a run): serialized
/// flat inside [`Counters`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExpectCounts {
    pub expectations: u64,
    pub expectations_met: u64,
    /// Expectations answered with an explicit error event instead of their sequence.
    pub expectations_errored: u64,
    /// Of `expectations_errored`, those opened while the attempt still waited for the
    /// server's acceptance in band (a request sent before its ack, on purpose: race
    /// pattern P2), which a server may refuse until it is ready.
    pub expectations_errored_early: u64,
    /// Expectations still open when the run was cut off (neither met nor violated), and
    /// those left with nothing to judge them by: they needed a value an earlier
    /// expectation was to capture, which it never did because the server refused that
    /// request with its error event.
    pub expectations_cut: u64,
    /// Expectations still open when the server cleanly refused their connection (a close
    /// code listed in `reject.close`, or the `reject.message` kind, before acceptance):
    /// the refusal is judged by the session oracles, not the refused connection's script
    /// (neither met nor violated).
    pub expectations_refused: u64,
    /// Expected vs arrived per event type (the summary also gives them as rates).
    pub events: BTreeMap<String, Tally>,
    /// Messages dropped from a full correlation buffer (`[oracles] max_buffered` messages
    /// or `max_buffered_bytes` bytes per connection).
    pub buffer_overflows: u64,
    /// What those dropped messages held in the buffer, in bytes (see
    /// `OracleSpec::max_buffered_bytes` for how a message is measured).
    pub buffer_overflow_bytes: u64,
    /// Replies that came back without a kind calibration saw in every reply to the same
    /// request (`learned.replies`), by `"REQUEST without KIND"`: counted, never violations
    /// (a correct server may send a kind only sometimes: a tool event when a tool ran, a
    /// rate-limited progress event). Left out of files when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub learned_replies_short: BTreeMap<String, u64>,
    /// Of `expectations_met`, those with `where` tests, by the step of their `expect`:
    /// their answers carried the fields tested, so a test failing on a missing field
    /// elsewhere is the server's, not a misnamed path ([`Misread::NoCheckedField`]); and a
    /// step whose checked answers all said no while another step's passed is that step's
    /// requests turned away, not a race. Files hold the total; left out when zero.
    #[serde(default, skip_serializing_if = "CheckedMet::is_zero")]
    pub checked_met: CheckedMet,
    /// Per capture name (`capture = { chal = "/1" }`): of the expectations that met their
    /// pattern, those that found a value at its path and those that did not. One never
    /// found in the whole run is a path the answers do not have, and every later
    /// `{{$name}}` went out as written: a broken script, not the server's doing. Left out
    /// of files when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub captures: BTreeMap<String, CaptureTally>,
    /// The answers' fields that some met expectation correlated on: a field no met
    /// expectation ever read a value at, anywhere in the run, is a path the answers do not
    /// have ([`Misread::NoCorrelationField`]), whatever kinds arrived for other
    /// expectations. A set, not a count: once every field of a connection is in it, a met
    /// expectation costs nothing more. Left out of files when empty.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub correlated_met: BTreeSet<String>,
    /// Records of a kind no step of their connection's script names, carrying none of the
    /// fields it correlates on, where it correlates on some (an uncorrelated script's
    /// answer of a misnamed kind would read the same): heartbeats, presence pings,
    /// broadcasts no step expects.
    /// No answer to any request: a server that sends only these past its greeting
    /// answered nothing. Left out of files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unclaimed: u64,
    /// The kind of the first of them (`"ping"`), for the verdict to name. Left out of
    /// files when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unclaimed_kind: Option<Box<str>>,
    /// The start of the first text record that was not JSON ([`UNREAD_SAMPLE_BYTES`],
    /// control characters escaped): what a scenario that cannot read the protocol was
    /// sent (Socket.IO's `42["event",…]`), for the verdict to quote. Redacted with every
    /// text of the run before it is shown. Left out of files when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread_sample: Option<Box<str>>,
    /// The first record without a kind that was a positional JSON array (Phoenix v2's
    /// `[join_ref, ref, topic, event, payload]`) one of whose elements was a kind the script
    /// expects: that element's index and the kind (`(3, "phx_reply")`), for the verdict to
    /// name the `type_field` that reads it (`"/3"`). Left out of files when `None`. Boxed:
    /// every connection's checker holds these counts, and 24 more bytes put its state in
    /// the allocator's next size class (512 bytes more per connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positional_kind: Option<Box<(usize, String)>>,
    /// Records whose `[oracles] identity` field held their connection's own user (its
    /// token's `sub`): a field that never does, anywhere in the run, names something
    /// else. Left out of files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub identity_matched: u64,
    /// Records the `[oracles] sequence` oracle read a number from (of its `kinds`, when it
    /// names some), and records of any kind that carried its `per` field: none anywhere
    /// names a field (or kinds) the server never sends, and the oracle judged nothing, or
    /// judged every record as one sequence. Left out of files when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sequence_numbered: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sequence_scoped: u64,
    /// Records the `[oracles] sequence` oracle passed over while it had read no number on
    /// their connection, in the two ways a misspelled `kinds` or `field` reads
    /// ([`SequenceMissed`]); `None` when there were none. Boxed: every connection's
    /// checker holds these counts inline, and few runs miss their sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_missed: Option<Box<SequenceMissed>>,
}

/// What the `[oracles] sequence` oracle passed over on connections where it read no
/// number ([`ExpectCounts::sequence_missed`]): the evidence that tells a misspelled
/// `kinds` or `field` from a run in which the numbered records never came.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SequenceMissed {
    /// Records of a kind outside its `kinds` that carried an integer at its field, and the
    /// first such kind: a kind spelled otherwise in the scenario.
    pub other_kinds: u64,
    pub other_kind: Option<String>,
    /// Records of the kinds it names without its field at all (a `null` is the field,
    /// holding no number; without `kinds` none are counted: a record without the field is
    /// one it skips), and the top-level fields the first one carried (at most 8): a field
    /// spelled or placed otherwise.
    pub unnumbered: u64,
    pub unnumbered_carried: Vec<String>,
}

impl SequenceMissed {
    /// Adds another connection's: counts add, the first kind and fields known stay.
    pub fn add(&mut self, o: &SequenceMissed) {
        self.other_kinds += o.other_kinds;
        self.unnumbered += o.unnumbered;
        if self.other_kind.is_none() {
            self.other_kind.clone_from(&o.other_kind);
        }
        if self.unnumbered_carried.is_empty() {
            self.unnumbered_carried.clone_from(&o.unnumbered_carried);
        }
    }
}

/// What a capture found in the messages that met its expectation ([`ExpectCounts::captures`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureTally {
    /// Its path, as the scenario wrote it.
    pub path: String,
    /// Met expectations whose messages held a value there.
    pub taken: u64,
    /// Met expectations whose messages held none.
    pub missed: u64,
    /// The shape of the first message of its pattern that held none (`an array of 2`, `an
    /// object with fields type, id`): what to compare the path with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub shape: String,
}

impl ExpectCounts {
    pub fn merge(&mut self, o: &ExpectCounts) {
        self.expectations += o.expectations;
        self.expectations_met += o.expectations_met;
        self.checked_met.merge(&o.checked_met);
        self.expectations_errored += o.expectations_errored;
        self.expectations_errored_early += o.expectations_errored_early;
        self.expectations_cut += o.expectations_cut;
        self.expectations_refused += o.expectations_refused;
        for (k, t) in &o.events {
            let mine = self.events.entry(k.clone()).or_default();
            mine.expected += t.expected;
            mine.arrived += t.arrived;
        }
        self.buffer_overflows += o.buffer_overflows;
        self.buffer_overflow_bytes += o.buffer_overflow_bytes;
        add_map(&mut self.learned_replies_short, &o.learned_replies_short);
        for (name, t) in &o.captures {
            self.captures.entry(name.clone()).or_default().add(t);
        }
        self.correlated_met.extend(o.correlated_met.iter().cloned());
        self.unclaimed += o.unclaimed;
        self.identity_matched += o.identity_matched;
        self.sequence_numbered += o.sequence_numbered;
        self.sequence_scoped += o.sequence_scoped;
        if let Some(theirs) = &o.sequence_missed {
            self.sequence_missed
                .get_or_insert_with(Box::default)
                .add(theirs);
        }
        if self.unread_sample.is_none() {
            self.unread_sample.clone_from(&o.unread_sample);
        }
        if self.positional_kind.is_none() {
            self.positional_kind.clone_from(&o.positional_kind);
        }
        if self.unclaimed_kind.is_none() {
            self.unclaimed_kind.clone_from(&o.unclaimed_kind);
        }
    }
}

impl CaptureTally {
    /// Adds another connection's tally of the same capture: counts add, the first path
    /// and shape known stay.
    pub fn add(&mut self, o: &CaptureTally) {
        if self.path.is_empty() {
            self.path.clone_from(&o.path);
        }
        if self.shape.is_empty() {
            self.shape.clone_from(&o.shape);
        }
        self.taken += o.taken;
        self.missed += o.missed;
    }
}

impl Counters {
    pub fn merge(&mut self, o: &Counters) {
        self.attempted += o.attempted;
        self.accepted += o.accepted;
        self.rejected += o.rejected;
        self.failed += o.failed;
        self.aborted += o.aborted;
        self.cut += o.cut;
        self.client_errors += o.client_errors;
        self.shed += o.shed;
        self.shed_after_acceptance += o.shed_after_acceptance;
        self.replaced += o.replaced;
        self.closed_idle += o.closed_idle;
        self.closed_at_lifetime += o.closed_at_lifetime;
        self.expired += o.expired;
        self.close_unanswered += o.close_unanswered;
        self.rejected_in_band += o.rejected_in_band;
        self.attempts_not_kept += o.attempts_not_kept;
        add_map(&mut self.refused_by, &o.refused_by);
        add_map(&mut self.ended_by, &o.ended_by);
        self.messages_sent += o.messages_sent;
        self.late_sends += o.late_sends;
        self.sends_held_in_flight += o.sends_held_in_flight;
        self.messages_received += o.messages_received;
        self.bytes_received += o.bytes_received;
        self.non_json += o.non_json;
        self.json_records += o.json_records;
        self.kindless_records += o.kindless_records;
        if self.kindless_shape.is_none() {
            self.kindless_shape.clone_from(&o.kindless_shape);
        }
        self.binary_frames += o.binary_frames;
        self.unjudged_senders += o.unjudged_senders;
        self.unjudged_unanswered += o.unjudged_unanswered;
        self.after_unjudged_frames += o.after_unjudged_frames;
        self.in_band_answers += o.in_band_answers;
        self.logins_unsent += o.logins_unsent;
        self.answered_after_error += o.answered_after_error;
        self.expectations_after_refusal += o.expectations_after_refusal;
        self.arrived_after_error += o.arrived_after_error;
        self.expect.merge(&o.expect);
        self.task_failures += o.task_failures;
    }

    /// Counts one judged attempt: attempted, then its outcome with its cause (refusals,
    /// aborts, cuts and client errors in `refused_by`, how an accepted connection ended in
    /// `ended_by`). The attempts are the history; these counters are derived from them,
    /// once. An attempt still pending here (never judged: a bug) counts as cut, so the
    /// outcome counters always add up to `attempted`.
    pub fn count_attempt(&mut self, a: &Attempt) {
        self.attempted += 1;
        let by_cause = match a.outcome {
            Outcome::Pending | Outcome::Cut => {
                self.cut += 1;
                &mut self.refused_by
            }
            Outcome::ClientError => {
                self.client_errors += 1;
                &mut self.refused_by
            }
            Outcome::Accepted => {
                self.accepted += 1;
                &mut self.ended_by
            }
            Outcome::Rejected => {
                self.rejected += 1;
                if a.upgraded_us.is_some() {
                    self.rejected_in_band += 1;
                }
                &mut self.refused_by
            }
            Outcome::Failed => {
                self.failed += 1;
                &mut self.refused_by
            }
            Outcome::Aborted => {
                self.aborted += 1;
                &mut self.refused_by
            }
        };
        if let Some(cause) = &a.cause {
            *by_cause.entry(cause.clone()).or_default() += 1;
        }
        if a.is_shed() {
            self.shed += 1;
        }
        if a.shed_after_acceptance() {
            self.shed_after_acceptance += 1;
        }
        if a.is_replaced() {
            self.replaced += 1;
        }
        if a.is_closed_idle() {
            self.closed_idle += 1;
        }
        if a.is_closed_at_lifetime() {
            self.closed_at_lifetime += 1;
        }
        if a.closed_expired() || a.refused_expired() {
            self.expired += 1;
        }
        if a.close_unanswered {
            self.close_unanswered += 1;
        }
    }
}

fn add_map<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// How an attempt was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not judged yet (the attempt is still open).
    Pending,
    Accepted,
    Rejected,
    Failed,
    /// We abandoned the handshake on purpose.
    Aborted,
    /// The run's end cut the attempt before its answer was known.
    Cut,
    /// The client's own limits stopped it (no file descriptor, no local port).
    ClientError,
}

/// One connection attempt (the first connect, a retry, or a reconnect); times in µs from `t0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub started_us: u64,
    /// When the 101 arrived.
    pub upgraded_us: Option<u64>,
    /// When the attempt counted as accepted.
    pub accepted_us: Option<u64>,
    /// The last data frame from the server: proof it was still serving this connection.
    pub last_frame_us: Option<u64>,
    pub ended_us: Option<u64>,
    pub outcome: Outcome,
    /// Why it was refused, or how it ended.
    pub cause: Option<Cause>,
    /// The server's Close frame was seen: a correct server released the session before it.
    pub clean_end: bool,
    /// The server shed it with a close code the scenario declares as shedding (`[oracles]
    /// reject.shed`, e.g. a 4429 "Too many requests"), before or after acceptance: set by
    /// the acceptance judge, which knows the scenario, so that [`Attempt::is_shed`] and
    /// [`Attempt::shed_after_acceptance`] need no plan. Left out of files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declared_shed: bool,
    /// The server ended it with a close code the scenario declares as a takeover
    /// (`[oracles] reject.replaced`, e.g. a 4409 "session replaced"): another connection of
    /// its token took over. Set by the acceptance judge, like `declared_shed`. Left out of
    /// files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaced: bool,
    /// The server closed it when its script had nothing left to send or expect (no
    /// expectation open, only pauses ahead before the script's end or its next close or
    /// reconnect): an ordinary end, whatever the code, never shedding
    /// ([`Attempt::shed_after_acceptance`]). Set by the swarm at the server's Close. Left
    /// out of files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub script_done: bool,
    /// How long the connection had been idle (no frame sent or received, the server's own
    /// Pings aside) when the server closed it (any code) while its script still ran and no
    /// answer was owed, in µs: what an idle timeout looks like when the code is one of
    /// `[oracles] idle_close`. Set by the swarm at the server's Close; `None` for every
    /// other end. Left out of files when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_close_us: Option<u64>,
    /// The longest the accepted connection stayed open through a silence, in µs: from
    /// the later of a request and the last data frame read to the next request, neither
    /// side sending a data frame (the server's Pings aside; a stretch with reads paused is
    /// left out). An idle timeout of the server's is longer than this. Set by the swarm
    /// when the attempt ends; `None` when it made no such silence. Left out of files when
    /// `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_survived_us: Option<u64>,
    /// That close came after the scenario's declared `[oracles] idle_timeout`
    /// ([`crate::model::IDLE_SLACK`] of it): the server's idle policy. Set by the swarm
    /// with `idle_close_us`. Left out of files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed_idle: bool,
    /// The server closed or refused it after its token's `exp` had passed, by our clock
    /// less [`crate::model::EXPIRED_WITHIN`] (clocks milliseconds apart): a valid token
    /// stampede minted, whose `exp` it knows (never a forged one, nor one from `[auth]
    /// tokens`), while its script still ran. The scenario's own `ttl` ran out, no finding:
    /// what its script still expected is refused ([`Attempt::closed_expired`]). Set by the
    /// swarm at the server's Close or refusal. Left out of files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub token_expired: bool,
    /// How long the connection had been open (since its 101) when the server closed it
    /// (any code) while its script still ran, in µs: what a maximum connection lifetime
    /// looks like. Set by the swarm at the server's Close; `None` for every other end.
    /// Left out of files when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_age_us: Option<u64>,
    /// That close came at the scenario's declared `[oracles] max_lifetime`
    /// ([`crate::model::IDLE_SLACK`] of it) with a code that may say so: the server's
    /// lifetime policy ([`Attempt::is_closed_at_lifetime`]). Never set beside
    /// `closed_idle` or `token_expired`, which explain the close already. Set by the swarm
    /// with `close_age_us`. Left out of files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed_at_lifetime: bool,
    /// The server closed it, accepted, while its script had paused reading or as it
    /// resumed (`pause_reads`), with a code a policy may use: its way with a slow reader
    /// (backpressure), which the pause tests, not a lost session. Never set beside
    /// `closed_idle`, `closed_at_lifetime` or `token_expired`. Left out of files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed_slow_reader: bool,
    /// The server's first word on it, before any accepted it, was an error event
    /// (`[oracles] error_event`): under the first-frame rule that accepts nothing (a
    /// refusal often says why before its Close), and an attempt we then closed ourselves
    /// failed rather than counting as accepted. Left out of files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error_before_acceptance: bool,
    /// It failed or was refused before acceptance, and the client tried again after it
    /// (a `reconnect`'s `backoff`): the script went on with the next attempt, so this one
    /// is no script left unrun. Left out of files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retried: bool,
    /// We sent our Close and the server neither answered it with its own nor ended TCP
    /// within the close grace (RFC 6455 §5.5.1 says it must answer): the client dropped
    /// the connection. Its cause stays our close (`client_close_<code>`). Left out of files
    /// when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub close_unanswered: bool,
}

impl Attempt {
    pub fn new(started_us: u64) -> Self {
        Attempt {
            started_us,
            upgraded_us: None,
            accepted_us: None,
            last_frame_us: None,
            ended_us: None,
            outcome: Outcome::Pending,
            cause: None,
            clean_end: false,
            declared_shed: false,
            replaced: false,
            script_done: false,
            idle_close_us: None,
            silence_survived_us: None,
            closed_idle: false,
            token_expired: false,
            close_age_us: None,
            closed_at_lifetime: false,
            error_before_acceptance: false,
            retried: false,
            closed_slow_reader: false,
            close_unanswered: false,
        }
    }

    /// Whether the server shed this attempt under load: refused or failed before
    /// acceptance with a shedding cause every server shares ([`Cause::is_shed`]) or one
    /// the scenario declares (`declared_shed`).
    pub fn is_shed(&self) -> bool {
        matches!(self.outcome, Outcome::Rejected | Outcome::Failed) && self.shed_cause()
    }

    /// Whether it ended by load shedding, whatever its outcome: a cause every server
    /// shares ([`Cause::is_shed`]) or a code the scenario declares (`declared_shed`).
    fn shed_cause(&self) -> bool {
        self.declared_shed || self.cause.as_ref().is_some_and(Cause::is_shed)
    }

    /// Whether the server shed this connection after accepting it: it ended the accepted
    /// connection with a Close 1013 (try again later) or a code the scenario declares as
    /// shedding (`declared_shed`) while its script still had steps to run. The server's
    /// policy under load, like a shed upgrade: what the connection's script still
    /// expected is refused, not missed. The same close once the script had nothing left
    /// ([`Attempt::script_done`]) sheds nothing: it is an ordinary end.
    pub fn shed_after_acceptance(&self) -> bool {
        self.outcome == Outcome::Accepted && self.shed_cause() && !self.script_done
    }

    /// Whether the server shed this attempt before it did any work: shed before
    /// acceptance ([`Attempt::is_shed`]), or after acceptance
    /// ([`Attempt::shed_after_acceptance`]) with no data frame after the one that
    /// accepted it (nothing was served). A run whose every attempt ends so exercised
    /// nothing.
    pub fn shed_before_work(&self) -> bool {
        self.is_shed() || (self.shed_after_acceptance() && !self.served_after_acceptance())
    }

    /// Whether the server sent a data frame after accepting this attempt (after the frame
    /// that accepted it, when a frame did).
    fn served_after_acceptance(&self) -> bool {
        matches!((self.accepted_us, self.last_frame_us), (Some(accepted), Some(last)) if last > accepted)
    }

    /// Whether the server ended this attempt because another connection of its token took
    /// over (a `reject.replaced` code, [`Attempt::replaced`]): accepted, or rejected when
    /// the takeover came before acceptance. The server keeping one session per token, not
    /// a refusal it owes the token an answer for: what the script still expected is
    /// refused, not missed.
    pub fn is_replaced(&self) -> bool {
        self.replaced && matches!(self.outcome, Outcome::Accepted | Outcome::Rejected)
    }

    /// Whether the server closed this accepted attempt by its declared idle policy
    /// ([`Attempt::closed_idle`]): what its script still expected is refused, its unrun
    /// steps no finding.
    pub fn is_closed_idle(&self) -> bool {
        self.closed_idle && self.outcome == Outcome::Accepted
    }

    /// Whether the server closed this accepted attempt at its declared maximum connection
    /// lifetime ([`Attempt::closed_at_lifetime`]): what its script still expected is
    /// refused, its unrun steps no finding.
    pub fn is_closed_at_lifetime(&self) -> bool {
        self.closed_at_lifetime && self.outcome == Outcome::Accepted
    }

    /// Whether the server closed this accepted attempt after its token had expired
    /// ([`Attempt::token_expired`]): the scenario's `ttl` ran out before its script did.
    pub fn closed_expired(&self) -> bool {
        self.token_expired && self.outcome == Outcome::Accepted
    }

    /// Whether the server refused this attempt (or closed it before accepting it) after
    /// its token had expired ([`Attempt::token_expired`]): a reconnect, or a connection
    /// that started after its token's `exp`.
    pub fn refused_expired(&self) -> bool {
        self.token_expired && matches!(self.outcome, Outcome::Rejected | Outcome::Failed)
    }

    /// Whether the upgrade outcome is unknown to the client: the server may have accepted
    /// and still hold a session (a timeout, a reset mid-handshake, our own abort).
    pub fn indeterminate(&self) -> bool {
        matches!(self.outcome, Outcome::Aborted | Outcome::Cut)
            || (self.upgraded_us.is_none()
                && matches!(self.cause, Some(Cause::Timeout(_) | Cause::Reset)))
    }
}

/// How many of a connection's first attempts it keeps in full, whatever follows
/// ([`Counters::attempts_not_kept`]): what the verdict reads of how a connection began.
pub const ATTEMPTS_KEPT_FIRST: usize = 32;

/// How many of a connection's latest attempts it keeps in full besides its first
/// [`ATTEMPTS_KEPT_FIRST`]: the ones in between are counted, not kept. 64 attempts of
/// 168 bytes: ~11 KB per connection at most, where a reconnect loop of a million
/// iterations (which validates) kept every one (the client's RSS grew ~0.8 KB per
/// attempt: 66 MB at 40,500 attempts of 20 connections).
pub const ATTEMPTS_KEPT_LATEST: usize = 32;

/// Appends `attempt` to a connection's `attempts`, keeping the first
/// [`ATTEMPTS_KEPT_FIRST`] and the latest [`ATTEMPTS_KEPT_LATEST`]: once they are full,
/// the oldest of the latest makes room and is handed back, for its caller to count
/// ([`Counters::attempts_not_kept`]). The first attempts say how the connection began
/// (the probe dials with them), the latest how it ended and the one in progress is always
/// last, where the connection updates it. Moves at most [`ATTEMPTS_KEPT_LATEST`]
/// attempts: once per attempt, never per message.
pub fn keep_attempt(attempts: &mut Vec<Attempt>, attempt: Attempt) -> Option<Attempt> {
    let dropped = (attempts.len() >= ATTEMPTS_KEPT_FIRST + ATTEMPTS_KEPT_LATEST)
        .then(|| attempts.remove(ATTEMPTS_KEPT_FIRST));
    attempts.push(attempt);
    dropped
}

/// What one connection task hands back.
#[derive(Debug, Clone)]
pub struct ConnReport {
    pub id: u32,
    /// When this connection's held upgrade bytes went out (collide), µs from `t0`.
    pub released_us: Option<u64>,
    pub token: u32,
    pub counters: Counters,
    /// The first violations of the streaming oracles (a bounded number per connection).
    pub violations: Vec<Violation>,
    /// Every violation of the streaming oracles by kind, kept or not.
    pub violations_by_oracle: BTreeMap<OracleKind, u64>,
    /// The first answer of this connection's that was not a 101 (a refusal or a broken
    /// handshake), as the server gave it.
    pub answer: Option<Answer>,
    /// The first explicit error event (`[oracles] error_event`) the server sent this
    /// connection, as an excerpt ([`excerpt`]): quoted when errors are all it answered.
    pub first_error: Option<String>,
    /// The first error event that refused a request this connection sent after the server
    /// had accepted it (in band, or at the upgrade): what a run whose requests were all
    /// refused quotes, over a refusal of a request sent before the ack (which may only say
    /// it came too early, whenever that refusal arrives).
    pub first_error_accepted: Option<String>,
    /// The last text message the server sent before the Close that ended an attempt of
    /// this connection before acceptance ([`Answer::quoted`]), when it sent one: an in-band
    /// refusal the scenario does not declare (`{"type":"disconnect","reason":
    /// "unauthorized"}`, then a Close 1000 that says nothing by itself) reads here.
    pub said_before_close: Option<String>,
    /// The latest record no expectation claimed when the server closed an accepted attempt
    /// of this connection before any of its expectations was met (the first such; its JSON
    /// cut at 160 bytes, or its kind), redacted: an in-band refusal that the acceptance
    /// rule took for acceptance (`{"type":"disconnect","reason":"unauthorized"}` as the
    /// first frame, then Close 1000).
    pub said_before_accepted_close: Option<String>,
    /// The server's Close that ended an accepted attempt of this connection (the first
    /// such), its code and reason as [`Answer`] shows them: a reason such as "session
    /// replaced" tells a takeover the scenario does not declare.
    pub closed_after_acceptance: Option<Answer>,
    /// How the server broke the WebSocket protocol on this connection (`protocol_error`),
    /// in plain words: RFC 6455's rule, or tungstenite's own words. The last such.
    pub protocol_fault: Option<String>,
    pub attempts: Vec<Attempt>,
    /// The steps (at most 16) at which the server answered a request of this connection
    /// with its error event after accepting it.
    pub errored_steps: Vec<super::StepPlace>,
    /// The steps at which an expectation of this connection was met, as a Bloom filter
    /// ([`super::StepPlace::bloom_bit`]): a step in `errored_steps` whose bit no valid
    /// connection set was refused every time it was asked.
    pub met_steps: u64,
    /// Records of kinds an uncorrelated `expect_none` forbade that came on this connection
    /// after the request before it but before it opened (unjudged: it counts from where it
    /// opens), and the first one's kind.
    pub forbidden_before: (u64, Option<String>),
    /// What a calibration connection observed; `None` outside calibration.
    pub observed: Option<Box<super::learned::Observation>>,
}

impl ConnReport {
    /// The report of connection `id` with token slot `token` that made `attempts` and
    /// saw nothing else: no counters, violations or answers (what the judges of attempts
    /// read, for their tests).
    pub fn of_attempts(id: u32, token: u32, attempts: Vec<Attempt>) -> ConnReport {
        ConnReport {
            id,
            released_us: None,
            token,
            counters: Counters::default(),
            violations: Vec::new(),
            violations_by_oracle: BTreeMap::new(),
            answer: None,
            first_error: None,
            first_error_accepted: None,
            said_before_close: None,
            said_before_accepted_close: None,
            closed_after_acceptance: None,
            protocol_fault: None,
            attempts,
            errored_steps: Vec::new(),
            met_steps: 0,
            forbidden_before: (0, None),
            observed: None,
        }
    }
}

/// What a server answered instead of a 101, or how the handshake broke: the status line
/// and the first bytes of the body (`HTTP/1.1 404 Not Found`, `<html>…`), or the protocol
/// error (`SecWebSocketAccept mismatch`). Shown in the summary so a user sees what the
/// target said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub cause: Cause,
    /// The HTTP status line, or what was wrong with the handshake.
    pub detail: String,
    /// The first bytes of the body (at most [`Answer::BODY_BYTES`]), lossy UTF-8 with
    /// control characters escaped; empty when there was none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// The seconds an HTTP refusal's `Retry-After` header asked the client to wait before
    /// trying again (its delta-seconds form; an HTTP-date is not read): what a server
    /// shedding load says about when it will take a connection again. Absent when the
    /// answer had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u32>,
}

impl Answer {
    /// How much of a body an answer keeps.
    pub const BODY_BYTES: usize = 160;

    /// An answer with `body` cut to [`Answer::BODY_BYTES`] (on a character boundary, `…`
    /// marking the cut) and made printable. The cut
    /// never splits a run of token characters (base64url and dots, what a compact JWT is
    /// made of): it ends before such a run instead. Redaction replaces whole tokens only,
    /// so half of a token echoed in a 401 body would otherwise be written out with its
    /// header and claims readable.
    pub fn new(cause: Cause, detail: String, body: &[u8]) -> Answer {
        Answer {
            cause,
            detail,
            body: Answer::printable(body),
            retry_after_s: None,
        }
    }

    /// This answer with the seconds its `Retry-After` header asked for.
    pub fn with_retry_after(mut self, seconds: Option<u32>) -> Answer {
        self.retry_after_s = seconds;
        self
    }

    /// What a server sent, as an answer shows it: at most [`Answer::BODY_BYTES`], cut
    /// where [`excerpt`] cuts (`…` marking the cut), lossy UTF-8 with control characters
    /// escaped.
    pub fn printable(body: &[u8]) -> String {
        let end = excerpt_end(body, Answer::BODY_BYTES);
        let mut text = escape_controls(&String::from_utf8_lossy(&body[..end]));
        if end < body.len() {
            // Said, so a cut body is not taken for the server's whole answer.
            text.push('…');
        }
        text
    }
    /// A text message a server sent, as a verdict's hint quotes it: at most
    /// [`Answer::BODY_BYTES`], cut where [`excerpt`] cuts, control characters escaped
    /// (quotes kept as sent, so JSON reads as JSON).
    pub fn quoted(text: &str) -> String {
        escape_controls(&excerpt(text, Answer::BODY_BYTES))
    }
}

/// `text` with its control and bidirectional formatting characters escaped
/// ([`super::words::push_shown`]: no terminal escapes, no line breaks, no reordering) and
/// everything else, quotes included, as sent: a JSON body reads as JSON.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        super::words::push_shown(&mut out, c);
    }
    out
}

/// Where an excerpt of `body` ends: at most `max` bytes, not inside a run of token
/// characters that goes on past that (redaction replaces whole tokens only: half of an
/// echoed token would be written out with its header and claims readable), nor inside a
/// UTF-8 character (it would show as U+FFFD).
fn excerpt_end(body: &[u8], max: usize) -> usize {
    let mut end = body.len().min(max);
    if end < body.len() && is_token_byte(body[end]) {
        end = body[..end]
            .iter()
            .rposition(|b| !is_token_byte(*b))
            .map_or(0, |p| p + 1);
    }
    while end > 0 && end < body.len() && body[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    end
}

/// At most `max` bytes of `text`, cut where [`Answer`]s cut their bodies (never inside a
/// token or a character), `…` marking a cut. Redaction reads the `…` as an excerpt's edge:
/// what a token's start cut there (one with separators in it, cut between two groups)
/// leaves before it is hidden, though shorter than a piece it finds anywhere else.
pub fn excerpt(text: &str, max: usize) -> String {
    let end = excerpt_end(text.as_bytes(), max);
    match text.get(..end) {
        Some(kept) if end < text.len() => format!("{kept}…"),
        _ => text.to_string(),
    }
}

/// The characters of a compact JWT (RFC 7519 §3: base64url segments joined by dots) and of
/// most opaque tokens.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=')
}

/// The spread of one barrier: how long after it fired each held request went out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarrierStats {
    pub group: String,
    pub connections: usize,
    /// Connections whose bytes went out at the release (the rest missed it).
    pub released: usize,
    pub fired_ms: f64,
    pub spread_p50_us: u64,
    pub spread_p99_us: u64,
    pub spread_max_us: u64,
    /// Set for a message rendezvous (absent for a handshake collide barrier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendezvous: Option<RendezvousInfo>,
    /// The part of a split run (`--shard`, `--workers`) that released it: set when parts
    /// are merged, where every part lists its own barriers (absent in a part's own result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

impl BarrierStats {
    /// The stats of a release that fired at `fired_us` (µs from the run start; `u64::MAX`
    /// when it never fired) for `connections` members, from each released member's lag
    /// after the firing in µs (`lags`, any order).
    pub fn of_release(
        group: String,
        connections: usize,
        mut lags: Vec<u64>,
        fired_us: u64,
    ) -> BarrierStats {
        lags.sort_unstable();
        // Nearest-rank percentiles: a few hundred lags, sorted once.
        let pick = |q: f64| {
            lags.get(((lags.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        BarrierStats {
            group,
            connections,
            released: lags.len(),
            fired_ms: if fired_us == u64::MAX {
                0.0
            } else {
                fired_us as f64 / 1000.0
            },
            spread_p50_us: pick(0.5),
            spread_p99_us: pick(0.99),
            spread_max_us: lags.last().copied().unwrap_or(0),
            rendezvous: None,
            shard: None,
        }
    }
}

/// What a message rendezvous adds to its [`BarrierStats`]: who arrived, and who did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RendezvousInfo {
    /// Which rendezvous of the group's script (1-based, in script order).
    pub step: u32,
    /// Which meeting of a rendezvous inside a `repeat` (the flattened iteration of the
    /// enclosing repeats, 0-based); absent outside repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u64>,
    /// Arrivals that would release at once.
    pub count: u32,
    /// Connections parked before the release.
    pub arrived: usize,
    /// The release came from the timeout, not from the last arrival.
    pub timed_out: bool,
    /// Connections of the group that were not parked at the release (at most
    /// [`RendezvousInfo::MISSING_SHOWN`] ids; `missing_total` counts them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<u32>,
    #[serde(default)]
    pub missing_total: usize,
    /// On a point's last entry: its meetings held after the
    /// [`RendezvousInfo::MEETINGS_LISTED`] listed ones, counted but not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_meetings: u64,
}

impl RendezvousInfo {
    /// How many missing connection ids a summary lists.
    pub const MISSING_SHOWN: usize = 20;
    /// How many meetings of one rendezvous point a summary lists.
    pub const MEETINGS_LISTED: usize = 100;
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One token's probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub token: u32,
    pub jti: String,
    pub accepted: bool,
    pub cause: Option<Cause>,
    /// When the probe was answered, µs from the run start.
    pub at_us: u64,
    /// Its token had expired when it was probed (a minted token past its `exp`, the
    /// scenario's `ttl`): a refusal of it proves nothing about a session still held.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
    /// The server's Close read as rate limiting (a 4429, a 1008 "too many connections":
    /// the oracles' shedding rules): "not now", which proves nothing
    /// about a session still held.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rate_limited: bool,
    /// The refusal said a session is still held, in its code (a close 4409 or 3409,
    /// echoing HTTP 409 Conflict) or its words ("session already active", "already
    /// connected": the oracles' takeover module reads them), whatever the scenario
    /// declares: a leaked session in the server's own words.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
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
    /// Whether the broken invariant was learned by calibration rather than declared by
    /// the scenario. Absent (false) in results written before learning existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub learned: bool,
    /// Whether records the scenario could not read (binary frames, text that is not JSON,
    /// JSON without a kind) reached the connection while the unmet expectation was open:
    /// what it missed may be in them, so it proves no loss (the verdict is unreadable when
    /// every violation is so). Absent (false) in results written before it existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreadable: bool,
    /// How the connection ended, when its end is what settled this violation (a
    /// completeness expectation still pending then, or the steps the end cut off): what
    /// judgements of that end read (the early-send refusal rule,
    /// `oracle::refusal`), never the `seen` text. Absent for every other violation, and in
    /// results and repros written before it existed (then no end is known: such a
    /// violation is never taken for a refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<StreamEnded>,
    /// For an expectation that missed its deadline: the time it was given (its `within`),
    /// in milliseconds, ending at `at_ms`. What a client stall inside that window is
    /// weighed against ([`ClientStalls`]). Absent for every other violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<f64>,
    /// For an expectation that missed its deadline (`window_ms`) and whose answer then
    /// came whole all the same, on the same connection: how long after it began waiting
    /// the answer was complete, in milliseconds (more than `window_ms`). A slow answer,
    /// not a lost one. Absent while the answer never came, and for every other violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_ms: Option<f64>,
    /// For a late answer (`late_ms`): how long after its connection's next request it
    /// came, in milliseconds, when that request went out after this one's deadline ran
    /// out and before the answer came. A server that answers a request only when the
    /// next one arrives (one request behind: a write held until the next read, or the
    /// previous request's id on each answer) shows every late answer so; a slow one
    /// answers its connection's last request too. Absent for every other violation, and
    /// in results written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_request_ms: Option<f64>,
    /// For an expectation that missed its deadline (`window_ms`) with no answer seen
    /// (`late_ms` absent): when its connection ended for good (its last attempt's end),
    /// in milliseconds since the run start. Set when the run's violations are gathered.
    /// A connection that ended sooner after the wait began than late answers to the same
    /// deadline took may have had its answer on the way: no loss proven (the verdict's
    /// hint, and `stampede merge`, which reads it back from `violations.jsonl`). Absent
    /// while the connection had not ended, for every other violation, and in results
    /// written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn_end_ms: Option<f64>,
    /// For a deadline missed with no answer seen (`late_ms` absent): how long after the
    /// deadline ran out the run's own end (its duration, a hunt's budget, Ctrl-C) cut its
    /// connection, when that was sooner than the deadline's `within`: the answer had less
    /// time to come late than it had to come in time, so no loss is proven (a slow server's
    /// answer may have been on its way). A hunt writes no repro of it, and a replay does not
    /// count it as reproducing one. Set when the run's violations are gathered; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_by_run_ms: Option<f64>,
    /// The script step of the expectation it is about, as the scenario file numbers it
    /// (`9.2`: the second step of the repeat at step 9; [`StepPlace`]):
    /// which of several alike `expect`s went unmet. Absent for other violations, and in
    /// results written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// For an unmet expectation none of whose kinds came for it while the server answered
    /// it otherwise: how the scenario may be misreading the answers ([`Misread`]). The
    /// verdict is unreadable when every violation is so and none of their kinds ever
    /// arrived for any expectation. Absent for every other violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misread: Option<Misread>,
}

/// How an unmet expectation's answers may have come in a shape its `expect` does not read
/// ([`Violation::misread`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misread {
    /// Records of its pattern's kinds came while it was open, without the field it
    /// correlates on (`correlate`): a wrong field name, or a server that does not echo it.
    NoCorrelationField {
        /// The field it correlates on.
        field: String,
        /// The top-level fields the first such record carried (a few, in its order).
        carried: Vec<String>,
        /// Its pattern's required kinds; when `came_with` is not empty, the kinds still
        /// owed, each of which came only without the field.
        kinds: Vec<String>,
        /// The pattern's kinds that came carrying the field (its first items, met), when
        /// the kinds still owed came only without it: a pattern correlated as a whole
        /// whose later kinds the server does not stamp (a subscription's `subscribed`
        /// echoes the request id, its `update`s do not). Empty otherwise, and in files
        /// written before it was kept.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        came_with: Vec<String>,
    },
    /// Records of its pattern's kinds came while it was open holding another value at the
    /// path it reads the answers' correlation value at: a value no request id is (a
    /// boolean, `null`, an object or an array), or a string or number. A `correlate` (or
    /// its `reply`) naming another field of the answer, as `reply = "/2"` for a Nostr
    /// `OK`'s accepted flag, or `"/3"` for its message; or another request's answer (a
    /// string or number some request sent), which the verdict tells apart by the whole run.
    OtherCorrelationValue {
        /// The path it reads the value at.
        field: String,
        /// The first such value: JSON (cut at 80 bytes) when no request id is, else its
        /// text (a string's without quotes, a number's digits).
        held: String,
        /// Whether it was a string or a number, as request ids are.
        id_like: bool,
        /// Whether this connection's own requests sent it (one whose expectation may
        /// never have opened, the run ending first): an answer come to the wrong request,
        /// whatever the rest of the run holds.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        sent: bool,
        /// Its pattern's required kinds.
        kinds: Vec<String>,
    },
    /// Records of kinds its pattern does not name came correlated with it, alone or
    /// beside some of the kinds it names: a wrong kind name (`agent_complete` for the
    /// `agent_completed` the server sends), a protocol that names its answers otherwise,
    /// or acks of its own (Phoenix's `phx_reply`) beside a kind truly lost. The verdict
    /// tells them apart by the whole run: a misreading when a kind it names never came on
    /// any connection and one that came is spelled close to it.
    OtherKinds {
        /// The kinds that came (the first few).
        came: Vec<String>,
        /// Its pattern's required kinds.
        kinds: Vec<String>,
    },
    /// Its correlated answer failed a `where` test on a field the answer does not carry
    /// at all: a wrong path (`statsu` for `status`), or a server that left the field out.
    /// For an uncorrelated expectation that none of its kinds met: records of its kinds
    /// came and were let pass for a field they lack.
    /// The verdict tells them apart by the whole run: a misreading when no expectation
    /// with `where` tests was met ([`ExpectCounts::checked_met`]).
    NoCheckedField {
        /// The path the test reads.
        path: String,
        /// The top-level fields the answer carried (a few, in its order).
        carried: Vec<String>,
        /// The answer's kind, as a one-kind list.
        kinds: Vec<String>,
    },
    /// Its correlated answer carried the field a `where` test reads, with another value
    /// (`success = false` where the test wants `true`): the server answered, and said no.
    /// No misreading by itself (a race may fail a test); the verdict reads it over the
    /// whole run: when every connection's checked answers said no and none said yes, the
    /// server turned every request away ([`ExpectCounts::checked_met`]).
    WrongValue {
        /// The path the test reads.
        path: String,
        /// The value the answer held there, as JSON (cut at 80 bytes): a refusal says the
        /// same everywhere (`false`, `"invalid_format"`), crossed answers another
        /// request's value each. Absent in results written before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        held: Option<String>,
        /// The value the test wants there, as JSON (cut at 80 bytes), when it wants one
        /// (`=`); absent for a pattern test, and in results written before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wanted: Option<String>,
        /// The answer's kind, as a one-kind list.
        kinds: Vec<String>,
    },
    /// Its answer carried the field a `where` test reads with the value the test writes,
    /// as another JSON type: `"true"` (a string) where the answer holds `true` (a
    /// boolean), `"3"` for `3`. A type slip in the scenario (TOML `"3"` is a string), which
    /// no answer of this server could pass.
    WrongType {
        /// The path the test reads.
        path: String,
        /// The value the test wants, as JSON (`"true"`).
        wanted: String,
        /// The value the answer held, as JSON (`true`).
        held: String,
        /// The pattern's kinds.
        kinds: Vec<String>,
    },
}

impl Misread {
    /// The pattern's required kinds (the failed answer's kind for
    /// [`Misread::NoCheckedField`]).
    pub fn kinds(&self) -> &[String] {
        match self {
            Misread::NoCorrelationField { kinds, .. }
            | Misread::OtherCorrelationValue { kinds, .. }
            | Misread::OtherKinds { kinds, .. }
            | Misread::NoCheckedField { kinds, .. }
            | Misread::WrongValue { kinds, .. }
            | Misread::WrongType { kinds, .. } => kinds,
        }
    }
}

/// How many characters of a correlation value [`Violation::expected_shown`] shows.
pub const CORRELATION_SHOWN: usize = 48;

impl Violation {
    /// What was expected, for which request (an unmet expectation's correlation value, at
    /// most [`CORRELATION_SHOWN`] characters) and where the scenario wrote it when known:
    /// `RESULT within 5s for run-3-17 (step 9.2)`. For every report that shows a violation:
    /// one of many alike `expect`s is told from the others by its request.
    pub fn expected_shown(&self) -> std::borrow::Cow<'_, str> {
        let value = self
            .correlation
            .as_deref()
            .filter(|_| self.oracle == OracleKind::Completeness);
        if value.is_none() && self.step.is_none() {
            return self.expected.as_str().into();
        }
        let mut shown = self.expected.clone();
        if let Some(value) = value {
            shown.push_str(" for ");
            match value.char_indices().nth(CORRELATION_SHOWN) {
                Some((cut, _)) => {
                    shown.push_str(&value[..cut]);
                    shown.push('…');
                }
                None => shown.push_str(value),
            }
        }
        if let Some(step) = &self.step {
            shown.push_str(&format!(" (step {step})"));
        }
        shown.into()
    }
}

/// The times this process itself did not run, as a thread that wakes every few
/// milliseconds saw them (a stall meter, after Gil Tene's jHiccup): an overloaded or
/// throttled machine (CPU quota, a VM's stolen time, swapping) stops the client, and a
/// co-located server, for a while, and an expectation whose deadline ran out then proves
/// nothing about the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientStalls {
    /// Stalls seen (each at least the meter's threshold).
    pub count: u64,
    /// The longest, in milliseconds.
    pub longest_ms: f64,
    /// All of them together, in milliseconds.
    pub total_ms: f64,
    /// The first few, in order (the rest only counted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<Stall>,
}

/// One stall: from `at_ms` (since the run start) for `ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stall {
    pub at_ms: f64,
    pub ms: f64,
}

impl ClientStalls {
    /// How long the client was stalled between `from_ms` and `to_ms` (since the run
    /// start), by the kept stalls.
    pub fn within(&self, from_ms: f64, to_ms: f64) -> f64 {
        self.kept
            .iter()
            .map(|s| ((s.at_ms + s.ms).min(to_ms) - s.at_ms.max(from_ms)).max(0.0))
            .sum()
    }

    /// Whether every stall is kept (so [`Self::within`] is exact).
    pub fn all_kept(&self) -> bool {
        self.kept.len() as u64 == self.count
    }
}

/// How an accepted connection's stream ended, as a violation settled by that end records
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEnded {
    /// The code of the server's Close frame when it sent one with a code allowed on the
    /// wire (RFC 6455 §7.4; an empty Close frame is 1005); `None` when the stream ended
    /// otherwise: a reset, a timeout, a Close with a forbidden code, a protocol fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
    /// Whether any event the pending expectation awaited had come before the end (a
    /// reply that started, then stopped). False when nothing had come, and when no
    /// expectation was pending (the steps the end cut off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub answered: bool,
}

/// A bad token whose refusal is the server's policy, accepted by the server: a finding of
/// its own, not a violation (unless the scenario declares a strict policy, when it is a
/// rejection-hygiene violation instead).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LenientAcceptance {
    /// The catalogue entry accepted (`empty-sub`, `wrong-iss`...).
    pub entry: BadToken,
    pub conn: u32,
    pub user: u32,
    pub group: String,
    /// The token's `jti` (never the token itself).
    pub jti: String,
    /// When the attempt began, milliseconds since the run start.
    pub at_ms: f64,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked answers are counted per step and merged per step; a file holds the total
    /// (as before the steps were kept), which reads back as a count of no step.
    #[test]
    fn checked_answers_count_per_step_and_files_hold_the_total() {
        let (join, post) = (StepPlace::of(&[2]), StepPlace::of(&[3, 1]));
        let mut a = ExpectCounts {
            checked_met: CheckedMet::at_step(join, 2),
            ..ExpectCounts::default()
        };
        let b = ExpectCounts {
            checked_met: CheckedMet::at_step(post, 1),
            ..ExpectCounts::default()
        };
        a.merge(&b);
        a.merge(&b);
        assert_eq!(a.checked_met.steps(), [(join, 2), (post, 2)]);
        assert_eq!(a.checked_met.total(), 4);
        let text = serde_json::to_string(&a).unwrap_or_default();
        assert!(text.contains(r#""checked_met":4"#), "{text}");
        let back: ExpectCounts = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back.checked_met.steps(), [(StepPlace::NONE, 4)]);
        let none = serde_json::to_string(&ExpectCounts::default()).unwrap_or_default();
        assert!(!none.contains("checked_met"), "{none}");
    }

    #[test]
    fn an_answer_never_keeps_part_of_a_token_the_cut_would_split() {
        let token = format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.sig",
            "eyJzdWIiOiJ1c2VyLTEifQ".repeat(8)
        );
        let body = format!(r#"{{"error":"token rejected","token":"{token}"}}"#);
        assert!(body.len() > Answer::BODY_BYTES);
        let answer = Answer::new(Cause::Http(401), "HTTP/1.1 401".into(), body.as_bytes());
        // Quotes as sent: a JSON body reads as JSON.
        assert_eq!(answer.body, r#"{"error":"token rejected","token":"…"#);
        // Control characters escaped: no line breaks, no terminal escapes.
        let controls = Answer::new(Cause::Http(400), String::new(), b"bad\n\x1b[31mred");
        assert_eq!(controls.body, "bad\\n\\u{1b}[31mred");
        // A body that is one long token keeps none of it.
        let bare = Answer::new(Cause::Http(401), String::new(), token.as_bytes());
        assert_eq!(bare.body, "…");
        // A body that fits, or a cut between words, is kept as before.
        let fits = Answer::new(Cause::Http(401), String::new(), b"unauthorized");
        assert_eq!(fits.body, "unauthorized");
        let words = "word ".repeat(40);
        let cut = Answer::new(Cause::Http(500), String::new(), words.as_bytes());
        assert_eq!(cut.body, format!("{}…", &words[..Answer::BODY_BYTES]));
    }

    #[test]
    fn an_answer_is_cut_between_characters_and_says_it_was_cut() {
        // 159 ASCII bytes, then a two-byte character across the 160-byte cut.
        let body = format!("{} é and more", "a".repeat(158));
        let answer = Answer::new(Cause::Http(500), String::new(), body.as_bytes());
        assert_eq!(answer.body, format!("{} …", "a".repeat(158)));
        assert!(!answer.body.contains('\u{FFFD}'), "{}", answer.body);
    }

    /// A connection's long reconnect loop keeps its first and latest attempts, the one in
    /// progress last, and hands back each one it drops, once: the counters made from what
    /// was kept and what was dropped are those of every attempt (the `Vec` grew with every
    /// attempt: ~0.8 KB each, 66 MB at 40,500 attempts of 20 connections).
    #[test]
    fn a_long_reconnect_loop_keeps_its_first_and_latest_attempts() {
        let kept_at_most = ATTEMPTS_KEPT_FIRST + ATTEMPTS_KEPT_LATEST;
        let made: u64 = 10_000;
        let mut attempts = Vec::new();
        let mut not_kept = Counters::default();
        let mut all = Counters::default();
        for i in 0..made {
            let mut a = Attempt::new(i);
            (a.outcome, a.cause) = if i % 3 == 0 {
                (Outcome::Rejected, Some(Cause::Http(409)))
            } else {
                (Outcome::Accepted, Some(Cause::ClientClose(1000)))
            };
            all.count_attempt(&a);
            if let Some(dropped) = keep_attempt(&mut attempts, a) {
                not_kept.count_attempt(&dropped);
                not_kept.attempts_not_kept += 1;
            }
            assert!(attempts.len() <= kept_at_most);
            assert_eq!(attempts.last().map(|a| a.started_us), Some(i));
        }
        assert_eq!(attempts.len(), kept_at_most);
        assert!(
            attempts.capacity() <= 2 * kept_at_most,
            "{}",
            attempts.capacity()
        );
        let started: Vec<u64> = attempts.iter().map(|a| a.started_us).collect();
        let first: Vec<u64> = (0..ATTEMPTS_KEPT_FIRST as u64).collect();
        let latest: Vec<u64> = (made - ATTEMPTS_KEPT_LATEST as u64..made).collect();
        assert_eq!(started, [first, latest].concat());
        let mut counters = not_kept;
        for a in &attempts {
            counters.count_attempt(a);
        }
        assert_eq!(counters.attempts_not_kept, made - kept_at_most as u64);
        counters.attempts_not_kept = 0;
        assert_eq!(counters, all, "every count exact");
    }

    #[test]
    fn merge_adds_every_field() {
        let mut a = Counters {
            attempted: 2,
            accepted: 1,
            ..Default::default()
        };
        a.refused_by.insert(Cause::Http(401), 1);
        a.attempts_not_kept = 5;
        a.expect.events.insert(
            "x".into(),
            Tally {
                expected: 3,
                arrived: 2,
            },
        );
        let mut b = a.clone();
        b.task_failures = 4;
        b.in_band_answers = 3;
        a.merge(&b);
        assert_eq!(a.in_band_answers, 3);
        assert_eq!(a.attempted, 4);
        assert_eq!(a.refused_by[&Cause::Http(401)], 2);
        assert_eq!(
            a.expect.events["x"],
            Tally {
                expected: 6,
                arrived: 4
            }
        );
        assert_eq!(a.task_failures, 4);
        assert_eq!(a.attempts_not_kept, 10);
    }

    #[test]
    fn causes_have_stable_names() {
        assert_eq!(Cause::Http(409).to_string(), "http_409");
        assert_eq!(Cause::ServerClose(1013).to_string(), "server_close_1013");
        assert_eq!(Cause::Timeout("upgrade").to_string(), "timeout_upgrade");
        for cause in [
            Cause::InvalidClose(999),
            Cause::ClientFdLimit,
            Cause::ClientPortsExhausted,
            Cause::ClientSourceIgnored,
            Cause::ServerClose(4000),
            Cause::Timeout("send"),
            Cause::Timeout("probe"),
            Cause::Interrupted,
            Cause::RefusedInBand("refused".into()),
        ] {
            assert_eq!(Cause::parse(&cause.to_string()), cause);
        }
        assert_eq!(
            Cause::RefusedInBand("unauthorized".into()).to_string(),
            "message_unauthorized"
        );
        assert_eq!(Cause::InvalidClose(1005).to_string(), "invalid_close_1005");
    }

    #[test]
    fn close_codes_are_recorded_as_received_and_invalid_ones_named() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1011, 1013, 1014, 3000, 4000, 4999,
        ] {
            assert_eq!(
                Cause::of_close_code(code),
                Cause::ServerClose(code),
                "{code}"
            );
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
            assert_eq!(
                Cause::of_close_code(code),
                Cause::InvalidClose(code),
                "{code}"
            );
        }
    }

    #[test]
    fn a_shed_close_sheds_only_with_script_left_and_counts_as_no_work_only_unserved() {
        let accepted = |last_frame_us: u64, declared_shed: bool, script_done: bool| Attempt {
            accepted_us: Some(10),
            last_frame_us: Some(last_frame_us),
            outcome: Outcome::Accepted,
            cause: Some(Cause::ServerClose(if declared_shed { 4429 } else { 1013 })),
            declared_shed,
            script_done,
            ..Attempt::new(0)
        };
        for declared in [false, true] {
            // Shed on the frame that accepted it: nothing served.
            let unserved = accepted(10, declared, false);
            assert!(unserved.shed_after_acceptance() && unserved.shed_before_work());
            // Served a reply first: shed, but the target was exercised.
            let served = accepted(20, declared, false);
            assert!(served.shed_after_acceptance() && !served.shed_before_work());
            // The script had nothing left: an ordinary end.
            let done = accepted(20, declared, true);
            assert!(!done.shed_after_acceptance() && !done.shed_before_work());
        }
        let mut refused = Attempt::new(0);
        refused.outcome = Outcome::Rejected;
        refused.cause = Some(Cause::ServerClose(1013));
        assert!(refused.shed_before_work());
    }

    #[test]
    fn every_attempt_lands_in_exactly_one_outcome_counter() {
        let mut c = Counters::default();
        let outcomes = [
            (Outcome::Accepted, Some(Cause::ClientClose(1000))),
            (Outcome::Rejected, Some(Cause::Http(401))),
            (Outcome::Failed, Some(Cause::InvalidClose(999))),
            (Outcome::Aborted, Some(Cause::Aborted { rst: true })),
            (Outcome::Cut, Some(Cause::Interrupted)),
            (Outcome::ClientError, Some(Cause::ClientFdLimit)),
            (Outcome::Pending, None),
        ];
        for (outcome, cause) in outcomes {
            let mut a = Attempt::new(0);
            a.outcome = outcome;
            a.cause = cause;
            c.count_attempt(&a);
        }
        assert_eq!(c.attempted, 7);
        assert_eq!(
            c.accepted + c.rejected + c.failed + c.aborted + c.cut + c.client_errors,
            c.attempted
        );
        assert_eq!((c.cut, c.client_errors, c.failed), (2, 1, 1));
        assert_eq!(c.refused_by[&Cause::ClientFdLimit], 1);
        assert_eq!(c.refused_by[&Cause::Interrupted], 1);
    }

    /// A refusal that came after the 101 (graphql-transport-ws's 4403 after
    /// `connection_init`) is counted apart among the rejected, as one at the upgrade (an
    /// HTTP 401) is not; merged counters add it, and a file leaves it out when zero.
    #[test]
    fn refusals_after_the_upgrade_are_counted_as_in_band() {
        let rejected = |cause: Cause, upgraded_us: Option<u64>| Attempt {
            outcome: Outcome::Rejected,
            cause: Some(cause),
            upgraded_us,
            ..Attempt::new(0)
        };
        let mut c = Counters::default();
        c.count_attempt(&rejected(Cause::ServerClose(4403), Some(20)));
        c.count_attempt(&rejected(Cause::Http(401), None));
        assert_eq!((c.rejected, c.rejected_in_band), (2, 1));
        let mut merged = c.clone();
        merged.merge(&c);
        assert_eq!((merged.rejected, merged.rejected_in_band), (4, 2));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["rejected_in_band"], 1);
        let none = serde_json::to_value(Counters::default()).unwrap();
        assert!(none.get("rejected_in_band").is_none(), "{none}");
    }
}
