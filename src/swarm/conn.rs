//! One connection's script: the task that runs a [`ConnPlan`] against the target.
//!
//! The task owns everything it records (counters, a sample buffer, its oracle state) and
//! returns it once as a [`ConnReport`]. Server misbehaviour (resets, garbage, oversized
//! frames, silence) ends up in that report as causes and violations; nothing here fails
//! the run.
//!
//! # States
//!
//! ```text
//!  WAITING  sleep until t0 + start
//!    |  \--cancel----------------------------------------------------------> FINISH
//!    v
//!  STEP  next action; cancel is checked first: cancelled --> GOODBYE -----> FINISH
//!    |-- Connect -----------------------------------------> DIALING
//!    |-- Reconnect{after, backoff}: CLOSING(1000) if open,
//!    |     sleep `after` (cancel: stays closed) ----------> DIALING (with backoff)
//!    |-- AbortHandshake ----------------------------------> ABORTING --> STEP (not open)
//!    |-- Send, Expect, Think, PaceAt, PauseReads --------> OPEN -----> STEP
//!    |     (skipped while not open)
//!    |-- Close{code} -------------------------------------> CLOSING(code) --> STEP
//!    '-- no action left: SETTLE expectations, CLOSING(1000) --------------> FINISH
//!
//!  DIALING   tcp --> tls (wss) --> upgrade request --> 101 --------------> OPEN
//!              |                    |                    (Judge::upgraded; an in-band
//!              |                    |                     token frame goes out first)
//!              |                    '-- collide, first dial only: HELD, the request's
//!              |                        last bytes parked at the barrier until release
//!              '-- fails (timeout_<stage>, connect, tls, HTTP status, protocol):
//!                  attempt Rejected (HTTP), ClientError (client_fd_limit,
//!                  client_ports_exhausted) or Failed --> BACKOFF: sleep the next delay
//!                  --> DIALING; no delay left (always for Connect) --> STEP (not open)
//!
//!  OPEN      pump: read frames, wake on timers (the step's instant, expectation
//!            deadlines, stale samples) until the step is done
//!              |-- data frame: Judge::data (may accept), oracles --> OPEN
//!              |-- server Close: Judge::server_close (a pending verdict becomes
//!              |     Rejected or Failed), answer it (<= 200 ms) --> ENDED
//!              '-- read/send error, EOF: lost (reset, protocol, oversized) --> ENDED
//!
//!  CLOSING   settle pending expectations, send Close(code), read up to CLOSE_GRACE
//!            (2 s) for the server's Close --> ENDED client_close_<code>
//!
//!  ABORTING  tcp, tls, send the upgrade request, read for `after`, drop (FIN or RST)
//!            --> attempt Aborted (or Failed when it could not even send)
//!
//!  GOODBYE   an open connection sends Close(1001) (<= 100 ms), no wait for the reply
//!            --> ENDED interrupted
//!
//!  ENDED     Judge::ended settles a pending verdict; the connection is not open
//!  FINISH    cut open expectations, end a still-open attempt (interrupted), flush
//!            samples, hand back the ConnReport
//! ```
//!
//! Timeouts: one `handshake_timeout` covers tcp + tls + upgrade (a held request's deadline
//! is one `handshake_timeout` later, for its wait at the barrier); a timed-out or
//! cancelled dial is indeterminate for the session oracles (the server may hold a
//! session). An expectation's `within` only records a
//! violation; the connection stays OPEN. CLOSING's grace and GOODBYE's 100 ms end the
//! attempt whether or not the server answered.
//!
//! Every frame write (`Send`, the in-band token frame, the Close frame in CLOSING) is
//! bounded by `[limits] send_timeout`: a server that stops reading fills the socket
//! buffers, and the write then ends the connection with `timeout_send` (ENDED) instead
//! of blocking the task forever.
//!
//! Cancellation (run duration or Ctrl-C) stops WAITING, DIALING (incl. HELD; the attempt
//! is recorded as cut, cause interrupted), ABORTING, BACKOFF and the sleep before a
//! reconnect, every OPEN wait (pump, PauseReads), every frame write and CLOSING's waits;
//! the loop then goes to GOODBYE. No state waits on the server without a bound.
//!
//! How ENDED settles what the script still owed (the streaming oracles): our own close
//! and a run cut by its duration or Ctrl-C cut it (neither met nor violated); a clean
//! refusal (the judge made the attempt `Rejected`) refuses it (the session oracles judge
//! the refusal, not the refused connection's script); any other end of an accepted
//! connection violates what was pending, and when nothing was pending, names the `send`
//! and `expect` steps it kept from running before the script's next `close` or
//! `reconnect` (`ConnChecker::server_ended`).

use super::dial::{classify, close_cause, close_had_reason, protocol_fault, Ws};
use super::RunCtx;
use crate::metrics::SampleBuffer;
use crate::model::{
    keep_attempt, Action, Answer, Attempt, Cause, ConnPlan, ConnReport, Counters, ExpectPlan,
    Outcome, PatternItem, Phase, MARKER,
};
use crate::oracle::frame::{fill, fill_str};
use crate::oracle::{ConnChecker, ConnIdentity, Judge, StreamEnd};
use crate::plan::{Cursor, Next, PatternKey};
use futures_util::{SinkExt, StreamExt};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

/// A send this much later than intended counts as late (above tokio's 1 ms timer tick and
/// ordinary scheduling noise; the same limit that marks a generator as behind).
const LATE: Duration = Duration::from_millis(5);

/// A `think` at least this long counts as idle: the connection gives back its per-message
/// buffers first (they would be regrown within the next turn if it were shorter).
const IDLE_THINK: Duration = Duration::from_secs(1);

/// What the loop runs for a send rendered from a compiled template (the text is rendered
/// apart; only the step's kind is read from this).
const SEND_STEP: Action = Action::Send {
    message: serde_json::Value::Null,
};

/// What `current` keeps of the action in progress: what naming it takes, nothing that is
/// copied or allocated per message. An expect keeps its pattern and timing, and becomes an
/// action again only when a lost connection names the step it was at.
enum Current {
    /// A send: its text is gone once written, and naming it takes nothing more.
    Send,
    Step(Action),
    Expect {
        pattern: HeldPattern,
        within: Duration,
        wait: bool,
        absent: bool,
    },
}

/// How [`Current::Expect`] holds its pattern.
enum HeldPattern {
    /// The cursor's copy, by name: holding it would add a count to it and take one off per
    /// expectation, two atomic updates that wait for every pending store.
    Kept(PatternKey),
    /// A pattern the cursor keeps no copy of (its items hold placeholders, or the plan is
    /// a repro's explicit actions).
    Own(Arc<[PatternItem]>),
}

impl Current {
    fn of(action: &Action, cursor: &Cursor) -> Self {
        match action {
            Action::Send { .. } => Current::Send,
            Action::Expect(e) => Current::of_expect(e, cursor),
            other => Current::Step(other.clone()),
        }
    }

    fn of_expect(e: &ExpectPlan, cursor: &Cursor) -> Self {
        let pattern = match cursor.pattern_key(&e.pattern) {
            Some(key) => HeldPattern::Kept(key),
            None => HeldPattern::Own(e.pattern.clone()),
        };
        Current::Expect {
            pattern,
            within: e.within,
            wait: e.wait,
            absent: e.absent,
        }
    }

    /// The action again; an expect's pattern read from `cursor`, the one that yielded it.
    fn to_action(&self, cursor: &Cursor) -> Action {
        match self {
            Current::Send => SEND_STEP,
            Current::Step(action) => action.clone(),
            Current::Expect {
                pattern,
                within,
                wait,
                absent,
            } => Action::Expect(Box::new(ExpectPlan {
                pattern: match pattern {
                    HeldPattern::Kept(key) => {
                        cursor.kept_pattern(*key).cloned().unwrap_or_default()
                    }
                    HeldPattern::Own(items) => items.clone(),
                },
                correlate: None,
                within: *within,
                wait: *wait,
                absent: *absent,
                rare: None,
            })),
        }
    }
}

/// How long an interrupted connection may take to send its Close frame.
const INTERRUPT_GRACE: Duration = Duration::from_millis(100);

/// How many actions past the one in progress a lost connection looks at to name the steps
/// it kept from running.
const CUT_OFF_SCANNED: usize = 10_000;

/// A frame read this long after a `pause_reads` ended was not waiting in the socket
/// through the pause: the loop reads what the pause left there as soon as it ends (a
/// client starved longer than this is a stall, judged apart). Within it, a server Close
/// may have come any time after the pause began.
const PAUSE_DRAINED: Duration = Duration::from_millis(250);

/// How long we wait for the server's side of a close handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Why a wait ended.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// The condition became true.
    Done,
    /// The requested instant arrived.
    Deadline,
    /// The connection is gone (or was never open).
    Lost,
    /// The run is over (duration or Ctrl-C).
    Cancelled,
}

/// Awaits a frame write or flush, raced with the run's end and bounded by `limit`: a
/// server that stops reading fills the socket buffers, and the write would wait forever.
async fn bounded(
    cancel: &CancellationToken,
    limit: Duration,
    io: impl std::future::Future<Output = Result<(), WsError>>,
) -> Wrote {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Wrote::Cancelled,
        done = timeout(limit, io) => match done {
            Ok(Ok(())) => Wrote::Sent,
            Ok(Err(e)) => Wrote::Failed(classify(&e)),
            Err(_) => Wrote::Failed(Cause::Timeout("send")),
        },
    }
}

/// How far [`ConnRun::send_now`] got.
enum SendNow {
    /// Sent (or the connection was lost trying).
    Done,
    /// Queued; the flush would have to wait.
    Flush,
    /// Nothing sent: the text goes the bounded way ([`ConnRun::send`]).
    Wait(String),
}

/// The counters every message moves ([`Counters`]' fields of the same names).
#[derive(Debug, Default)]
struct Traffic {
    messages_sent: u64,
    late_sends: u64,
    messages_received: u64,
    bytes_received: u64,
    non_json: u64,
    json_records: u64,
    kindless_records: u64,
    binary_frames: u64,
}

impl Traffic {
    fn add_to(&self, c: &mut Counters) {
        c.messages_sent += self.messages_sent;
        c.late_sends += self.late_sends;
        c.messages_received += self.messages_received;
        c.bytes_received += self.bytes_received;
        c.non_json += self.non_json;
        c.json_records += self.json_records;
        c.kindless_records += self.kindless_records;
        c.binary_frames += self.binary_frames;
    }
}

/// What a step left to await once started ([`ConnRun::next_step`]): what the task keeps
/// across the wait, instead of the plan's whole action.
enum Work {
    /// Nothing: it is done (or skipped: an expectation while the connection is not open).
    Done,
    /// The expectation just opened ([`ConnRun::open_expectation`]).
    Await {
        id: crate::oracle::ExpectId,
        /// To its end (a closed model), not only while the in-flight bound is reached.
        wait: bool,
        /// The sample buffer is due to be handed over first.
        flush: bool,
        /// The instant it opened at, read during this poll of the task.
        opened: Instant,
    },
    Connect,
    AbortHandshake {
        after: Duration,
        rst: bool,
    },
    Reconnect {
        after: Duration,
        backoff: Vec<Duration>,
    },
    /// A send went into the socket's buffer; the flush would have to wait.
    Flush,
    /// A text to send the bounded way ([`ConnRun::send`]).
    Send(String),
    /// Base64 of a binary frame to send.
    SendBinary(String),
    Ping {
        payload: String,
        within: Option<Duration>,
    },
    Think(Duration),
    PaceAt(Duration),
    PauseReads(Duration),
    Close(u16),
}

/// How a bounded frame write ended.
enum Wrote {
    Sent,
    /// The run ended first; the connection is left as it is for the goodbye.
    Cancelled,
    /// The write failed, or the server did not take it within `send_timeout`.
    Failed(Cause),
}

/// `repr(C)`: the fields every frame writes first, beside the socket's state.
#[repr(C)]
struct Open {
    /// The last data frame, µs since t0 ([`NO_DATA`] before the first; read through
    /// [`Open::last_data`]): the attempt's `last_frame_us` once it is settled (written to
    /// it when it ends). A sentinel, not an `Option`: its room holds [`Silence`]'s start.
    last_data_us: u64,
    /// Whether the first data frame has been timed.
    first_frame_seen: bool,
    /// Whether the attempt may still be pending, so that a data frame may settle it; once
    /// settled, a data frame does not read the attempt (one more cache line per message).
    judging: bool,
    /// The server refused the attempt in band (`[oracles] reject.message`) and kept the
    /// connection open: the frame's reader ends it ([`ConnRun::refused_in_band`]).
    refused_in_band: bool,
    /// A Socket.IO server's ping came and awaits its pong ([`ConnRun::after_text`]).
    ping_due: bool,
    /// A record an `[[answer]]` answers came: its answer waits in [`Rare::answers_due`]
    /// ([`ConnRun::after_text`]).
    answer_due: bool,
    /// The step just taken was a send that went out whole without a wait: the step after
    /// it, when it is an expectation, opens at that send's instant (microseconds ago)
    /// instead of reading the clock again. Cleared by every step ([`ConnRun::next_step`]).
    sent_now: bool,
    /// A send went out since the connection last read (a wait for frames, or the frames
    /// that had arrived): the next send of a flood reads what has arrived first
    /// ([`ConnRun::reads_before_send`]).
    sent_unread: bool,
    /// Set once we sent a Close: the server's Close then completes our handshake.
    closing: Option<u16>,
    /// When reads were last paused (`pause_reads`) and when they resumed: a server Close
    /// read as the pause ends may have come any time after it began, so an idle time or
    /// an age is measured up to then ([`PAUSE_DRAINED`]).
    paused_reads: Option<(Instant, Instant)>,
    /// The silences this connection stayed open through ([`ConnRun::note_silence`]): the
    /// longest is the attempt's `silence_survived_us` when it ends.
    silence: Silence,
    upgraded_at: Instant,
    ws: Ws,
}

/// [`Open::last_data_us`] before the connection's first data frame.
const NO_DATA: u64 = u64::MAX;

impl Open {
    /// The last data frame, µs since t0; `None` before the first.
    fn last_data(&self) -> Option<u64> {
        (self.last_data_us != NO_DATA).then_some(self.last_data_us)
    }
}

/// The longest silence an open connection stayed open through, in µs since t0: neither
/// side sent a data frame (the server's Pings aside) from the latest of the upgrade, the
/// last request and the last data frame read, until a request ended it. What an idle
/// timeout cannot have been shorter than. Kept as each frame and request happens, from
/// the instant read for it anyway: one clock subtraction per request, not three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Silence {
    /// Since when neither side sent a data frame.
    quiet_from_us: u64,
    /// The longest silence a request ended so far (0: none yet).
    longest_us: u64,
}

impl Silence {
    /// A connection upgraded at `upgraded_us`: quiet from then.
    fn since(upgraded_us: u64) -> Self {
        Silence {
            quiet_from_us: upgraded_us,
            longest_us: 0,
        }
    }

    /// A data frame was read at `at_us`.
    fn data(&mut self, at_us: u64) {
        self.quiet_from_us = self.quiet_from_us.max(at_us);
    }

    /// A request went out at `at_us`, ending the silence before it; `read_through`: false
    /// when reads were paused in it (what came meanwhile was not read, so it is left out).
    fn request(&mut self, at_us: u64, read_through: bool) {
        let from = self.quiet_from_us;
        self.quiet_from_us = from.max(at_us);
        if read_through {
            self.longest_us = self.longest_us.max(at_us.saturating_sub(from));
        }
    }
}

/// What the server said on a connection that a verdict may quote ([`Answer::quoted`]
/// excerpts): the refusal message of an attempt closed before acceptance, the first
/// error event.
#[derive(Debug, Default)]
pub(super) struct Said {
    /// The last text frame that left the current attempt pending, until a Close ends it.
    pending: Option<Box<str>>,
    /// What `pending` held when a Close ended a pending attempt (the first such).
    before_close: Option<Box<str>>,
    /// The latest record no expectation claimed when the server closed an accepted
    /// attempt before any expectation was met (the first such): an in-band refusal the
    /// acceptance rule took for acceptance.
    before_accepted_close: Option<Box<str>>,
    /// The first explicit error event (`[oracles] error_event`).
    first_error: Option<Box<str>>,
    /// The first such that refused a request sent after acceptance.
    first_error_accepted: Option<Box<str>>,
    /// The server's Close that ended an accepted attempt (the first such), its code and
    /// reason: a takeover the scenario does not declare reads in the reason.
    closed_accepted: Option<Box<Answer>>,
    /// How the server broke the WebSocket protocol on an open connection, in plain words
    /// ([`protocol_fault`](super::dial::protocol_fault)): the last such.
    protocol_fault: Option<Box<str>>,
}

/// `repr(C)`, its fields in the order written: what every message reads first, so that it
/// takes as few cache lines as it can (at a thousand connections, a connection's state
/// is out of a core's cache by its next message).
#[repr(C)]
pub(super) struct ConnRun {
    ctx: Arc<RunCtx>,
    index: usize,
    /// The run's end (its duration or Ctrl-C), watched on every wake-up.
    stop: super::stop::StopWatch,
    /// The read loop's timer, kept across reads (a fresh timer per read took the timer
    /// wheel's lock twice) and moved only to an earlier wake-up.
    timer: timer::WakeTimer,
    /// The counters every message moves: added to the connection's [`Counters`] (which span
    /// several cache lines, made only at the end) by [`ConnRun::finish`].
    traffic: Traffic,
    /// When the latest request went out on the current connection.
    last_send_at: Option<(Instant, Instant)>,
    intended_send: Option<Instant>,
    /// Violations already added to the live progress counter.
    violations_published: u64,
    /// Where this connection's sends carry `{{marker}}` (`Plan::marker_fields`): flood
    /// mode, `None` otherwise. Boxed: a thin pointer, 16 bytes less of every connection's
    /// state than a `Vec` (which is one allocation of a size class: see `size_tests`), for
    /// what only a flood's connections hold.
    #[allow(clippy::box_collection)] // the box is the point: a thin pointer
    markers: Option<Box<Vec<String>>>,
    /// Where the cursor renders each compiled send, kept across sends: no buffer grown
    /// from empty per message; while a short text frame is read, its copy
    /// ([`ConnRun::read_text`]). Given back in a long `think`.
    render_buf: String,
    attempts: Vec<Attempt>,
    /// The action in progress (`None` before the first and once the script is over).
    current: Option<Current>,
    samples: SampleBuffer,
    /// Where the script is: the action in progress is the cursor's last; what a
    /// connection that ends early kept from running is ahead of it.
    cursor: Cursor,
    checker: ConnChecker,
    open: Option<Open>,
    /// The first answer that was not a 101.
    /// Boxed: only a refused connection has one.
    answer: Option<Box<Answer>>,
    /// What only some connections have (a rendezvous absence, a login, a release):
    /// boxed, made on first use.
    rare: Option<Box<Rare>>,
    /// What the server said that a verdict may quote. Boxed: most connections never
    /// have any.
    said: Option<Box<Said>>,
}

/// How many distinct tokens a connection's logins returned it keeps to redact with: a
/// login source that returns a fresh token each time, in a long reconnect loop, kept one
/// per attempt.
const LOGINS_KEPT: usize = 16;

/// The tokens a connection's logins returned, for redaction: the distinct ones, at most
/// [`LOGINS_KEPT`]. Before they make room, what the connection holds is redacted with
/// them ([`ConnRun::note_login`]); a text kept later may still echo one that went, so a
/// connection that forgot any also hides whatever looks like a token in what it hands
/// back ([`crate::auth::hide_token_shaped`]): no token it was given is ever written out.
#[derive(Debug, Default)]
struct Logins {
    kept: Vec<crate::auth::Token>,
    /// Whether tokens were let go to make room.
    forgotten: bool,
}

impl Logins {
    /// Keeps `token` unless it is kept already. When full, hands back the tokens kept so
    /// far (for what the connection holds to be redacted with, before they go) and keeps
    /// `token` alone.
    fn note(&mut self, token: &crate::auth::Token) -> Option<Vec<crate::auth::Token>> {
        if self.kept.iter().any(|t| t.expose() == token.expose()) {
            return None;
        }
        let leaving = (self.kept.len() >= LOGINS_KEPT).then(|| {
            self.forgotten = true;
            std::mem::take(&mut self.kept)
        });
        self.kept.push(token.clone());
        leaving
    }
}

/// A send's frame held at a rendezvous ([`Rare::held`]).
type Held = (
    Arc<std::sync::OnceLock<Instant>>,
    Arc<super::barrier::Barrier>,
);

/// The parts of a connection's state only some connections use.
#[derive(Debug, Default)]
struct Rare {
    /// The next send's frame, held at a rendezvous: when it went out, and the meeting that
    /// releases it (its timeout extends that write's bound, and the request's turn counts
    /// from the release, not from when it was parked).
    held: Option<Held>,
    /// When its held upgrade bytes went out (collide), µs since t0.
    released_us: Option<u64>,
    /// The rendezvous points this connection is counted absent from (it reached one
    /// without an open connection): nobody waits for it there until it arrives again.
    absent_from: Vec<u32>,
    /// Tokens its login requests returned: redacted from what it hands back (the run's
    /// redactor knows only the tokens it had before the load).
    logins: Logins,
    /// The attempts it made but did not keep (past [`crate::model::ATTEMPTS_KEPT_FIRST`] and
    /// [`crate::model::ATTEMPTS_KEPT_LATEST`]), counted as each was dropped: what its counters add.
    /// Boxed: only a long reconnect loop has any.
    not_kept: Option<Box<Counters>>,
    /// What a `reconnect` with a `backoff` has left to try, once its dial got through,
    /// should the server end that attempt before accepting it ([`ConnRun::retry_unaccepted`]).
    retry: Option<Retry>,
    /// The last send it made that no `expect` follows ([`UnjudgedSend`]).
    after_unjudged: Option<UnjudgedSend>,
    /// `[[answer]]` messages rendered for the frame being handled, framed, in order:
    /// written once it is ([`ConnRun::after_text`]).
    answers_due: Vec<String>,
    /// How many answers each `[[answer]]` rule has rendered on this connection (indexed
    /// as `Plan::answers`): its `{{run}}`.
    answered: Vec<u64>,
    /// How many of those went out ([`Counters::in_band_answers`]).
    in_band_answers: u64,
    /// Open model: the start of the current paced block (read once per paced iteration,
    /// not per message: here, not in every connection's state).
    pace_base: Option<Instant>,
    /// Open model: when the connection last stopped waiting at `[limits] max_in_flight`
    /// (the server owed that many answers): a paced send due before then (the first
    /// after the wait, and those that catch up after it) was held by the server's
    /// backlog, not by the client ([`ConnRun::pace_at`]).
    in_flight_released: Option<Instant>,
    /// Paced sends that went out late because they were held at the in-flight bound
    /// ([`Counters::sends_held_in_flight`]).
    sends_held_in_flight: u64,
    /// The attempt's in-band auth message, framed, held until the server's record of this
    /// kind asks for it (`[auth] placement = { first_message = ..., after = KIND }`); set
    /// again at each upgrade.
    challenged: Option<(String, String)>,
    /// That message, asked for by the frame being handled: sent once it is
    /// ([`ConnRun::after_text`]).
    auth_due: Option<String>,
    /// Attempts that ended with their login still held ([`Counters::logins_unsent`]).
    logins_unsent: u64,
}

/// A send no `expect` follows, and the data frames received before it and (once the
/// connection it went out on ended) in all: what came after it is their difference.
#[derive(Debug, Clone, Copy)]
struct UnjudgedSend {
    before: u64,
    until_end: Option<u64>,
    /// The checker's [`strays`](crate::oracle::ConnChecker::strays) at the send and at the
    /// connection's end: what came after that was only heartbeats and broadcasts answered
    /// nothing.
    strays_before: u64,
    strays_until_end: Option<u64>,
}

/// Where the script resumes after a `reconnect` (the step after it), and the `backoff`
/// delays it has not used yet.
#[derive(Debug)]
struct Retry {
    cursor: crate::plan::Cursor,
    delays: Vec<Duration>,
}

mod frames;
mod handshake;
mod timer;

impl ConnRun {
    pub(super) fn new(
        ctx: Arc<RunCtx>,
        index: usize,
        stop: super::stop::RunStop,
        samples: SampleBuffer,
    ) -> Self {
        let plan = &ctx.plan.conns[index];
        let token = &ctx.tokens[plan.token as usize];
        let who = ConnIdentity {
            conn: plan.id,
            user: plan.user,
            group: ctx.plan.group_name(plan),
            jti: token.jti.clone(),
            sub: token.sub.clone(),
        };
        let fields = ctx.plan.reply_fields(plan);
        let mut cursor = Cursor::new(plan);
        let markers = ctx.plan.marker_fields(plan);
        let mut checker = ConnChecker::new(ctx.oracles.clone(), who, ctx.t0, fields);
        if ctx.plan.tests_fields(plan) {
            checker = checker.with_bodies();
        }
        let forge = ctx
            .plan
            .tokens
            .get(plan.token as usize)
            .and_then(|t| t.forge.as_ref());
        if forge.is_some() {
            checker = checker.without_learned();
        }
        if forge.is_some_and(crate::model::Forge::alters_subject) {
            checker = checker.without_identity();
        }
        if plan.is_scripted() {
            let kinds = ctx.script_kinds.get(plan.group as usize).cloned().flatten();
            checker = checker.claiming_only(kinds);
        }
        // Sends go out rendered from compiled templates unless the checker reads each one.
        if !checker.reads_sends() {
            let templates = ctx.templates.get(plan.group as usize).cloned().flatten();
            cursor = cursor.with_templates(templates);
        }
        ConnRun {
            ctx,
            index,
            stop: super::stop::StopWatch::new(stop),
            timer: timer::WakeTimer::new(),
            traffic: Traffic::default(),
            samples,
            checker,
            open: None,
            last_send_at: None,
            intended_send: None,
            attempts: Vec::new(),
            violations_published: 0,
            answer: None,
            said: None,
            cursor,
            current: None,
            markers: (!markers.is_empty()).then(|| Box::new(markers)),
            render_buf: String::new(),
            rare: None,
        }
    }

    /// The rare parts of the state, made on first use.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn plan(&self) -> &ConnPlan {
        &self.ctx.plan.conns[self.index]
    }

    /// Runs the connection's script to its end. Boxed: an `async fn`'s future keeps its
    /// by-value arguments twice (the argument and the local it moves into; rustc issue
    /// #62958), and a `ConnRun` is most of an idle connection's memory. The report is
    /// boxed and every rare wait (the start, a pause) is a box of its own: the task's cell
    /// is as large as the largest of the future's states and its output, for the whole
    /// life of the connection.
    pub(super) async fn run(mut self: Box<Self>) -> Box<ConnReport> {
        let intended = super::later(self.ctx.t0, self.plan().start);
        if Box::pin(self.sleep_until(intended)).await == Stop::Cancelled {
            return Box::pin(self.finish()).await;
        }
        Box::pin(self.record(
            Phase::GeneratorLag,
            Instant::now().saturating_duration_since(intended),
        ))
        .await;
        let ctx = self.ctx.clone();
        let conn = &ctx.plan.conns[self.index];
        let mut connected = false;
        while !self.stop.is_stopped() {
            // Lost since the last step: a `reconnect`'s attempt the server ended before
            // accepting it is tried again while its backoff lasts.
            if self.open.is_none() && connected {
                if let Some(again) = Box::pin(self.retry_unaccepted()).await {
                    connected = again;
                    continue;
                }
            }
            // The step is taken, and an expectation opened, in functions of their own: the
            // plan's action (and the cursor's answer) then take no room in this task while
            // it waits, only the small `Work` left to await.
            let Some(work) = self.next_step(conn, connected) else {
                break;
            };
            match work {
                // A step skipped because the connection is not open (it was lost, and the
                // script walks on to a `reconnect` or its end): a long loop of them awaits
                // nothing, so the task gives the scheduler a turn once its budget is spent;
                // on one thread the run's duration, Ctrl-C and every other connection
                // waited for the whole loop (a lost flood of 10^8 sends: minutes).
                Work::Done if self.open.is_none() => tokio::task::consume_budget().await,
                Work::Done => {}
                Work::Await {
                    id,
                    wait,
                    flush,
                    opened,
                } => {
                    // The opening instant stands in for the clock until the task yields.
                    let mut known_now = Some(opened);
                    if flush {
                        known_now = None;
                        Box::pin(self.samples.flush()).await;
                    }
                    // Not boxed, though its state is part of every connection's task: it
                    // runs for every expected answer, and a box of its own was an
                    // allocation per answer and a cache miss on every wake that no
                    // prefetch can get ahead of (it comes before any of this connection's
                    // code runs).
                    self.await_expectation(id, wait, known_now).await;
                }
                // Not boxed either, and no larger than the wait for an answer: an idle
                // connection spends its life here, and a box was a second allocation
                // beside its task's (and one per pause of a paced block).
                Work::Think(d) => self.think(d).await,
                Work::PaceAt(offset) => self.pace_at(offset).await,
                // Connecting and closing are boxed: their large, short-lived states would
                // otherwise be part of every connection's task for its whole life.
                Work::Connect => connected = Box::pin(self.connect(&[])).await,
                Work::AbortHandshake { after, rst } => {
                    Box::pin(self.abort_handshake(after, rst)).await
                }
                Work::Reconnect { after, backoff } => {
                    connected = Box::pin(self.reconnect(after, &backoff)).await
                }
                Work::Flush => Box::pin(self.flush_send()).await,
                Work::Send(text) => Box::pin(self.send(text)).await,
                Work::SendBinary(base64) => Box::pin(self.send_binary(&base64)).await,
                // Waiting states are boxed too: only the one in progress takes memory.
                Work::Ping { payload, within } => Box::pin(self.ping(&payload, within)).await,
                Work::PauseReads(d) => {
                    // Nothing is recorded while we do not read: hand samples over first.
                    Box::pin(self.samples.flush()).await;
                    let paused = Instant::now();
                    Box::pin(self.sleep_until(paused + d)).await;
                    if let Some(open) = self.open.as_mut() {
                        open.paused_reads = Some((paused, Instant::now()));
                    }
                }
                Work::Close(code) => Box::pin(self.close(code)).await,
            }
        }
        self.current = None;
        if self.stop.is_stopped() {
            Box::pin(self.close_interrupted()).await;
        } else {
            Box::pin(self.settle_pending()).await;
            Box::pin(self.close(1000)).await;
        }
        Box::pin(self.finish()).await
    }

    /// Settles what is still open and hands over what this connection saw. Takes `&mut self`
    /// (not `self`) so its future does not hold a second copy of the connection state.
    async fn finish(&mut self) -> Box<ConnReport> {
        let now = Instant::now();
        self.checker
            .end_stream(StreamEnd::Cut, "run ended", None, now);
        if let Some(open) = self.open.take() {
            self.end_attempt(open, Cause::Interrupted, now);
        }
        self.drain_checker_samples().await;
        self.samples.flush().await;
        // Made here, after the last await, from what the connection kept: its whole run's
        // state holds no counters of its own (`Counters` would take every connection past
        // its allocator size class: `size_tests`).
        // Those not kept ([`ConnRun::push_attempt`]) were counted as they left.
        let mut counters = self
            .rare
            .as_mut()
            .and_then(|r| r.not_kept.take())
            .map_or_else(Counters::default, |c| *c);
        for attempt in &self.attempts {
            counters.count_attempt(attempt);
        }
        self.traffic.add_to(&mut counters);
        self.count_after_unjudged(&mut counters);
        counters.in_band_answers = self.rare.as_ref().map_or(0, |r| r.in_band_answers);
        counters.sends_held_in_flight = self.rare.as_ref().map_or(0, |r| r.sends_held_in_flight);
        // The last attempt's login still held: its challenge never came either.
        counters.logins_unsent = self
            .rare
            .as_ref()
            .map_or(0, |r| r.logins_unsent + u64::from(r.challenged.is_some()));
        counters.answered_after_error = self.checker.answered_after_error();
        counters.expectations_after_refusal = self.checker.expectations_after_refusal();
        counters.arrived_after_error = self.checker.arrived_after_error();
        self.checker.settle_held_identity();
        counters.expect = self.checker.take_counts();
        let (errored_steps, met_steps) = self.checker.take_step_errors();
        let forbidden_before = self.checker.take_forbidden_before();
        counters.kindless_shape = self.checker.take_kindless_shape();
        let cursor = &self.cursor;
        self.checker
            .mark_values_sent(|value| cursor.sent_lately(value));
        self.redact_logins();
        let said = self.said.take().map(|s| *s).unwrap_or_default();
        let plan = self.plan();
        Box::new(ConnReport {
            id: plan.id,
            released_us: self.rare.as_ref().and_then(|r| r.released_us),
            token: plan.token,
            counters,
            violations: std::mem::take(&mut self.checker.violations),
            violations_by_oracle: std::mem::take(&mut self.checker.violated_by),
            answer: self.answer.take().map(|a| *a),
            first_error: said.first_error.map(String::from),
            first_error_accepted: said.first_error_accepted.map(String::from),
            said_before_close: said.before_close.map(String::from),
            said_before_accepted_close: said.before_accepted_close.map(String::from),
            closed_after_acceptance: said.closed_accepted.map(|a| *a),
            protocol_fault: said.protocol_fault.map(String::from),
            attempts: std::mem::take(&mut self.attempts),
            errored_steps,
            met_steps,
            forbidden_before,
            observed: self.checker.observed.take(),
        })
    }

    /// Keeps a token a login returned, to redact with. Once per login: when the tokens
    /// kept must make room, what the connection holds so far is redacted with them first.
    fn note_login(&mut self, token: &crate::auth::Token) {
        if let Some(leaving) = self.rare().logins.note(token) {
            self.redact_kept(&crate::auth::Redactor::new(&leaving), false);
        }
    }

    /// Replaces the tokens its logins returned, wherever the server may have echoed one
    /// into a violation or an answer, with their label; when it let some go
    /// ([`Logins`]), also hides whatever looks like a token.
    fn redact_logins(&mut self) {
        let Some(logins) = self.rare.as_ref().map(|r| &r.logins) else {
            return;
        };
        if logins.kept.is_empty() && !logins.forgotten {
            return;
        }
        let redactor = crate::auth::Redactor::new(&logins.kept);
        let forgotten = logins.forgotten;
        self.redact_kept(&redactor, forgotten);
    }

    /// Redacts with `redactor` every text the connection keeps of what the server said
    /// (violations, answers); with `token_shaped`, also hides whatever looks like a token.
    fn redact_kept(&mut self, redactor: &crate::auth::Redactor, token_shaped: bool) {
        let redact = |text: &mut String| {
            redactor.redact_in_place(text);
            if token_shaped {
                crate::auth::hide_token_shaped(text);
            }
        };
        for v in &mut self.checker.violations {
            redact(&mut v.expected);
            redact(&mut v.seen);
            if let Some(c) = &mut v.correlation {
                redact(c);
            }
        }
        if let Some(a) = &mut self.answer {
            redact(&mut a.detail);
            redact(&mut a.body);
        }
        if let Some(said) = &mut self.said {
            if let Some(a) = &mut said.closed_accepted {
                redact(&mut a.body);
            }
            for text in [
                &mut said.first_error,
                &mut said.first_error_accepted,
                &mut said.before_close,
                &mut said.before_accepted_close,
                &mut said.protocol_fault,
            ]
            .into_iter()
            .flatten()
            {
                let mut redacted = String::from(std::mem::take(text));
                redact(&mut redacted);
                *text = redacted.into_boxed_str();
            }
        }
    }

    /// [`Self::send`] as far as it goes without waiting: a plain send (no flood marker,
    /// no rendezvous holding it) that the connection is ready to take.
    fn send_now(&mut self, text: String) -> SendNow {
        use futures_util::Sink;
        use std::task::{Context, Poll, Waker};
        if self.markers.is_some() || self.rare.as_ref().is_some_and(|r| r.held.is_some()) {
            return SendNow::Wait(text);
        }
        let mut cx = Context::from_waker(Waker::noop());
        let ready = self
            .open
            .as_mut()
            .map(|open| Pin::new(&mut open.ws).poll_ready(&mut cx));
        if !matches!(ready, Some(Poll::Ready(Ok(())))) {
            // Not ready, failing or gone: the bounded write says which, as always.
            return SendNow::Wait(text);
        }
        let text = self.outgoing(text);
        let Some(open) = self.open.as_mut() else {
            return SendNow::Done;
        };
        let through = open.ws.get_ref().writes_through();
        let mut ws = Pin::new(&mut open.ws);
        let sent = match ws.as_mut().start_send(Message::Text(text.into())) {
            Err(e) => Err(e),
            Ok(()) => {
                // With `write_buffer_size` 0 tungstenite writes each message out at once;
                // its sink is ready again when the socket took all of it. On a stream that
                // writes through, that is the whole send: a flush would only register a
                // waker twice (four atomic updates, each waiting for every pending store).
                // Otherwise, or when the socket took part, the flush finishes it.
                let done = if through {
                    ws.as_mut().poll_ready(&mut cx)
                } else {
                    ws.poll_flush(&mut cx)
                };
                match done {
                    Poll::Ready(flushed) => flushed,
                    // Queued: the bounded flush takes it from here.
                    Poll::Pending => return SendNow::Flush,
                }
            }
        };
        let whole = sent.is_ok();
        self.sent(sent.map_or_else(|e| Wrote::Failed(classify(&e)), |()| Wrote::Sent));
        if let Some(open) = self.open.as_mut() {
            open.sent_now = whole;
        }
        SendNow::Done
    }

    /// Finishes a send [`Self::send_now`] queued: flushes it within the write bound.
    async fn flush_send(&mut self) {
        let limit = self.write_limit();
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let wrote = bounded(self.stop.token(), limit, open.ws.flush()).await;
        self.sent(wrote);
    }

    /// A frame held at a rendezvous went out at the release: the request's intended time is
    /// the release and its actual one its own write, so the turn does not count the wait
    /// for the others at the meeting (up to a whole arrival ramp) as the server's time.
    fn stamp_release(&mut self) {
        let Some((sent_at, meeting)) = self.rare.as_mut().and_then(|r| r.held.take()) else {
            return;
        };
        let Some(actual) = sent_at.get().copied() else {
            return;
        };
        let fired = meeting.fired_us.load(Relaxed);
        let intended = if fired == u64::MAX {
            actual
        } else {
            super::later(self.ctx.t0, Duration::from_micros(fired)).min(actual)
        };
        self.request_sent(intended, actual);
    }

    /// A request went out at `actual`, meant for `intended`: what its turn is timed from,
    /// and what the checker times a late answer that comes only after it from.
    fn request_sent(&mut self, intended: Instant, actual: Instant) {
        self.note_silence(actual);
        self.last_send_at = Some((intended, actual));
        self.checker.note_request(actual);
    }

    /// Keeps the longest silence the open connection stayed open through, ended by a
    /// request going out `at`: neither side sent a data frame (the server's Pings aside)
    /// since the later of the previous request, the last data frame read and the upgrade.
    /// What an idle timeout cannot have been shorter than. A silence with reads paused in
    /// it is left out: what came meanwhile was not read.
    fn note_silence(&mut self, at: Instant) {
        let at_us = self.since_t0(at);
        let last_request = self.last_send_at.map(|(_, actual)| actual);
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let from = last_request.map_or(open.upgraded_at, |r| r.max(open.upgraded_at));
        let paused_in_it = open.paused_reads.is_some_and(|(paused, _)| paused >= from);
        open.silence.request(at_us, !paused_in_it);
    }

    /// Keeps a connection attempt. Most connections make one or two: the first few take
    /// exactly the room they need (a growing `Vec` starts at four, 416 bytes that every
    /// idle connection of a run would hold for one attempt). A long reconnect loop keeps
    /// its first and latest attempts ([`keep_attempt`]); the one that makes room is
    /// counted here, so the connection's counters stay exact while its memory stays
    /// bounded. Runs once per attempt, never per message.
    fn push_attempt(&mut self, attempt: Attempt) {
        if self.attempts.len() < 4 {
            self.attempts.reserve_exact(1);
        }
        if let Some(dropped) = keep_attempt(&mut self.attempts, attempt) {
            let not_kept = self.rare().not_kept.get_or_insert_with(Box::default);
            not_kept.count_attempt(&dropped);
            not_kept.attempts_not_kept += 1;
        }
    }

    /// Counts a data frame that went out, or ends the connection whose write failed.
    fn sent(&mut self, wrote: Wrote) {
        match wrote {
            Wrote::Sent => {
                self.traffic.messages_sent += 1;
                self.ctx.live.sent.add(1);
                self.note_unjudged_send();
            }
            // The loop sees the cancel next and says goodbye.
            Wrote::Cancelled => {}
            Wrote::Failed(cause) => self.lose(cause, Instant::now()),
        }
    }

    /// Whether the send about to go (the cursor's step) reads what has arrived first: one
    /// right after another with nothing read between, in a loop no `expect` follows (a
    /// flood: of `{{marker}}` echoes, or of sends whose answers nothing reads). Without it
    /// a server whose answers filled the socket could no longer write, and a careful one
    /// closes such a reader (a slow consumer: Close 1013, or 1008) for what is the
    /// client's doing. Sends an `expect` follows (a pipelined burst, then its answers)
    /// leave the answers in the socket until their expectations are open: read earlier,
    /// they would wait among the unclaimed messages, whose bound a long burst outgrows.
    fn reads_before_send(&self) -> bool {
        if !self.open.as_ref().is_some_and(|o| o.sent_unread) {
            return false;
        }
        if self.markers.is_some() {
            return true;
        }
        let group = self.cursor.group() as usize;
        self.ctx
            .unjudged
            .get(group)
            .is_some_and(|places| places.contains(&self.cursor.step_place()))
    }

    /// A send went out: when no `expect` of the script follows its step, what comes after
    /// it is counted from here ([`Counters::unjudged_senders`]).
    fn note_unjudged_send(&mut self) {
        // Every send asks: the cursor's copy of the group, not the plan's entry (a line
        // that is out of the cache by the connection's next message).
        let group = self.cursor.group() as usize;
        let Some(places) = self.ctx.unjudged.get(group).filter(|p| !p.is_empty()) else {
            return;
        };
        let place = self.cursor.step_place();
        if places.contains(&place) {
            let before = self.traffic.messages_received;
            let strays_before = self.checker.strays();
            self.rare().after_unjudged = Some(UnjudgedSend {
                before,
                until_end: None,
                strays_before,
                strays_until_end: None,
            });
        }
    }

    /// Counts what came after this connection's last unjudged send, if it made one
    /// ([`Counters::unjudged_senders`]).
    fn count_after_unjudged(&self, counters: &mut Counters) {
        let Some(sent) = self.rare.as_ref().and_then(|r| r.after_unjudged) else {
            return;
        };
        let until = sent.until_end.unwrap_or(self.traffic.messages_received);
        let strays = sent
            .strays_until_end
            .unwrap_or_else(|| self.checker.strays())
            .saturating_sub(sent.strays_before);
        let after = until.saturating_sub(sent.before).saturating_sub(strays);
        counters.unjudged_senders += 1;
        counters.unjudged_unanswered += u64::from(after == 0);
        counters.after_unjudged_frames += after;
    }

    /// Sends one scripted frame (JSON text or verbatim text), with the scenario's record
    /// separator appended when it names one.
    async fn send(&mut self, text: String) {
        if self.reads_before_send() {
            Box::pin(self.read_ready()).await;
            // Lost while reading (a Close, a reset): the send is skipped, as any step of
            // a connection that is not open, not written to nothing.
            if self.open.is_none() {
                return;
            }
        }
        let text = self.outgoing(text);
        self.send_text(text).await;
    }

    /// A scripted frame's text as it goes out now: the request is marked sent, a flood
    /// marker gets the send time, the frame is encoded as `[oracles]` says
    /// ([`crate::oracle::framing::frame_out`]).
    fn outgoing(&mut self, mut text: String) -> String {
        self.mark_request();
        if let Some(open) = self.open.as_mut() {
            open.sent_unread = true;
        }
        if self.markers.is_some() && text.contains(MARKER) {
            // The intended time, not the actual one: a send that went out late is charged
            // to the latency, as for every other turn.
            let intended = self.last_send_at.map_or_else(Instant::now, |(i, _)| i);
            text = text.replace(MARKER, &self.since_t0(intended).to_string());
        }
        crate::oracle::framing::frame_out(&self.ctx.plan.oracles, text)
    }

    /// A request goes out now: its turn latency counts from its intended instant.
    fn mark_request(&mut self) {
        let actual = Instant::now();
        // Most sends have no intended instant of their own (only a paced one does): no
        // clock subtraction for them.
        let intended = match self.intended_send.take() {
            Some(intended) => {
                if actual.saturating_duration_since(intended) > LATE {
                    self.traffic.late_sends += 1;
                }
                intended
            }
            None => actual,
        };
        self.request_sent(intended, actual);
    }

    /// Sends a `send_binary` step's bytes as one binary frame (a request, like `send`).
    async fn send_binary(&mut self, base64: &str) {
        use base64::Engine;
        // The loader accepted only valid base64; a hand-edited plan's bad text sends nothing.
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(base64) else {
            return;
        };
        self.mark_request();
        self.send_frame(Message::Binary(bytes.into())).await;
    }

    /// Sends a Ping; with `within`, reads until its Pong (timed) or the deadline (a
    /// violation).
    async fn ping(&mut self, payload: &str, within: Option<Duration>) {
        let bytes = payload.as_bytes().to_vec();
        match self.write(Message::Ping(bytes.clone().into())).await {
            Wrote::Sent => {}
            Wrote::Cancelled => return,
            Wrote::Failed(cause) => return self.lose(cause, Instant::now()),
        }
        let Some(within) = within else {
            return;
        };
        let sent = Instant::now();
        self.checker.await_pong(bytes, within, sent);
        let stop = self
            .pump(Some(super::later(sent, within)), |ch| !ch.awaiting_pong())
            .await;
        self.drain_checker_samples().await;
        self.checker
            .pong_missed(Instant::now(), stop != Stop::Deadline);
    }

    async fn send_text(&mut self, text: String) {
        self.send_frame(Message::Text(text.into())).await;
    }

    /// Writes one data frame and counts it as sent.
    async fn send_frame(&mut self, frame: Message) {
        if self.open.is_none() {
            return;
        }
        let wrote = self.write(frame).await;
        self.stamp_release();
        self.sent(wrote);
    }

    /// Writes one frame, raced with the run's end and bounded by `[limits] send_timeout`:
    /// a server that stops reading fills the socket buffers, and an unbounded write would
    /// then hold this task (and the run, and Ctrl-C) forever.
    async fn write(&mut self, message: Message) -> Wrote {
        let limit = self.write_limit();
        let Some(open) = self.open.as_mut() else {
            return Wrote::Failed(Cause::Reset);
        };
        let mut send = open.ws.send(message);
        // Most writes go straight into the socket buffer: only one that has to wait gets a
        // timer (arming and cancelling one per frame was a visible share of a send's cost).
        if let Some(sent) = futures_util::FutureExt::now_or_never(&mut send) {
            return match sent {
                Ok(()) => Wrote::Sent,
                Err(e) => Wrote::Failed(classify(&e)),
            };
        }
        bounded(self.stop.token(), limit, send).await
    }

    /// The bound of the next frame write: `[limits] send_timeout`, plus the rendezvous's
    /// timeout while a frame is held for its release.
    fn write_limit(&self) -> Duration {
        let release = self
            .rare
            .as_ref()
            .and_then(|r| r.held.as_ref())
            .and_then(|(_, meeting)| meeting.quorum());
        self.ctx
            .plan
            .limits
            .send_timeout
            .saturating_add(release.map(|q| q.timeout).unwrap_or_default())
    }

    /// Arrives at meeting `iteration` of rendezvous `point`: the next send's frame (a long
    /// one's last byte) is held until it releases. A connection that is not open (or, in a hand-edited plan,
    /// has no send next) cannot take part: it is counted absent from the point, so nobody
    /// waits for it, until it arrives there again able to.
    fn rendezvous(&mut self, point: u32, iteration: u64, connected: bool) {
        let ctx = self.ctx.clone();
        let conn = &ctx.plan.conns[self.index];
        let send_next = matches!(
            self.cursor.ahead(&ctx.plan, conn, 1, |_| false).first(),
            Some(Action::Send { .. })
        );
        let counted_absent = self
            .rare
            .as_ref()
            .and_then(|r| r.absent_from.iter().position(|p| *p == point));
        if !(connected && send_next && self.open.is_some()) {
            if counted_absent.is_none() {
                self.rare().absent_from.push(point);
                ctx.rendezvous.absent(point);
            }
            return;
        }
        if let Some(at) = counted_absent {
            self.rare().absent_from.swap_remove(at);
            ctx.rendezvous.present(point);
        }
        // `None`: the meeting is long over; the send goes straight out.
        let Some(meeting) = ctx.rendezvous.meeting(point, iteration) else {
            return;
        };
        meeting.start_timer();
        if let Some(open) = self.open.as_mut() {
            let sent_at = open.ws.get_mut().hold_frame(meeting.clone(), conn.id);
            self.rare().held = Some((sent_at, meeting));
        }
    }

    /// Starts `action` (`rendered`: a compiled send's text): does what needs no wait, and
    /// returns what is left to await. `connected`: whether the script's connection is up.
    fn start(&mut self, action: Action, connected: bool) -> Work {
        // What `stream_ended` names as the step a lost connection was at: the action's
        // kind, and an expect's pattern (shared), not a copy of the whole step.
        self.current = Some(Current::of(&action, &self.cursor));
        match action {
            Action::Connect => Work::Connect,
            Action::AbortHandshake { after, rst } => Work::AbortHandshake { after, rst },
            Action::Reconnect { after, backoff } => Work::Reconnect { after, backoff },
            Action::Rendezvous { point, iteration } => {
                self.rendezvous(point, iteration, connected);
                Work::Done
            }
            _ if !connected || self.open.is_none() => Work::Done,
            Action::Send { message } => {
                self.checker.on_sent(&message);
                // `{{$name}}` captures are known only now: the cursor yields them as
                // written. Straight into a byte buffer: `Display` goes through a formatter.
                let text = if self.checker.captures.is_empty() {
                    serde_json::to_string(&message)
                } else {
                    serde_json::to_string(&fill(&message, &self.checker.captures))
                }
                .unwrap_or_else(|_| message.to_string());
                self.scripted_send(text)
            }
            Action::SendText { text } => {
                // `{{$name}}` captures are filled only now; a text without a placeholder
                // left goes as it is. Then as a `send` goes: straight into the socket when
                // it takes it, not through a future per send.
                let text = if text.contains("{{") {
                    match fill_str(&text, &self.checker.captures) {
                        serde_json::Value::String(s) => s,
                        other => crate::model::path::key_text(&other),
                    }
                } else {
                    text
                };
                self.scripted_send(text)
            }
            Action::SendBinary { base64 } => Work::SendBinary(base64),
            Action::Ping { payload, within } => Work::Ping { payload, within },
            // Opened by `next_step`.
            Action::Expect(_) => Work::Done,
            Action::Think(d) => Work::Think(d),
            Action::PaceStart => {
                self.rare().pace_base = Some(Instant::now());
                Work::Done
            }
            Action::PaceAt(offset) => Work::PaceAt(offset),
            Action::PauseReads(d) => Work::PauseReads(d),
            Action::Close { code } => Work::Close(code),
        }
    }

    /// [`Self::start`] for a send rendered from a compiled template ([`Next::Rendered`],
    /// most sends): a template holds no `{{$name}}`, and a checker that is handed compiled
    /// sends does not read them (see `new`). Apart from `start`'s match over every kind of
    /// step: this runs per message, and its code should stay small.
    fn start_rendered(&mut self, text: String, connected: bool) -> Work {
        self.current = Some(Current::Send);
        if !connected || self.open.is_none() {
            return Work::Done;
        }
        self.scripted_send(text)
    }

    /// A scripted send's work: a flood's send reads first, by the bounded path
    /// ([`Self::send`]); any other goes as far as it can now ([`Self::send_work`]). Inlined:
    /// tested inside the send's fast path, the check cost that path the inlining of the
    /// frame's start (+80 instructions a message, cachegrind).
    #[inline(always)]
    fn scripted_send(&mut self, text: String) -> Work {
        if self.reads_before_send() {
            return Work::Send(text);
        }
        self.send_work(text)
    }

    /// Sends `text` as far as it goes without waiting (most sends go straight into the
    /// socket: no future for them), and returns what is left to await.
    fn send_work(&mut self, text: String) -> Work {
        match self.send_now(text) {
            SendNow::Done => Work::Done,
            SendNow::Flush => Work::Flush,
            SendNow::Wait(text) => Work::Send(text),
        }
    }

    /// Takes the script's next step (`None`: it is over) as far as it goes without a wait,
    /// and returns what is left to await. A compiled send comes rendered; an expectation is
    /// opened here, or skipped while the connection is not open.
    fn next_step(&mut self, conn: &ConnPlan, connected: bool) -> Option<Work> {
        let after_send = self
            .open
            .as_mut()
            .is_some_and(|o| std::mem::take(&mut o.sent_now));
        self.render_buf.clear();
        // Matched as it came back, not unwrapped with `?` first: that copied the whole
        // answer (an `ExpectPlan`'s size) once more per step.
        let expect = match self.cursor.next_rendered(
            &self.ctx.plan,
            conn,
            &mut self.render_buf,
            self.checker.leftovers(),
        ) {
            None => return None,
            Some(Next::Expect(expect)) => expect,
            // An explicit plan's expectation (a repro's) takes the same way.
            Some(Next::Action(Action::Expect(expect))) => *expect,
            Some(Next::Action(action)) => return Some(self.start(action, connected)),
            // A copy of exactly its length: the frame's bytes then take the string as it
            // is, where a string with spare room needs a shared header of its own (a
            // second allocation per send).
            Some(Next::Rendered) => {
                let text = self.render_buf.as_str().to_owned();
                return Some(self.start_rendered(text, connected));
            }
        };
        self.current = Some(Current::of_expect(&expect, &self.cursor));
        if !connected || self.open.is_none() {
            return Some(Work::Done);
        }
        Some(self.open_expectation(expect, after_send))
    }

    /// Opens an expectation, without waiting: what to wait for next ([`Work::Await`]).
    /// `after_send`: the step before was a send that went out without a wait, whose
    /// instant it opens at ([`Open::sent_now`]).
    fn open_expectation(&mut self, expect: ExpectPlan, after_send: bool) -> Work {
        let wait = expect.wait;
        self.checker.at_step(self.cursor.step_place());
        // Sent before the server's acceptance in band (an early request, on purpose): its
        // refusal is told apart from a server that refuses every request.
        if self.open.as_ref().is_some_and(|o| o.judging)
            && self
                .attempts
                .last()
                .is_some_and(|a| a.outcome == Outcome::Pending)
        {
            self.checker.before_acceptance();
        }
        let now = match self.last_send_at {
            Some((_, actual)) if after_send => actual,
            _ => Instant::now(),
        };
        let id = self.checker.expect(expect, self.last_send_at, now);
        Work::Await {
            id,
            wait,
            opened: now,
            // Most often nothing to file (samples come from answers, not from opening an
            // expectation): checked here, without the call.
            flush: self.checker_has_news() && self.file_checker_samples(None),
        }
    }

    /// Waits for the expectation `id` just opened: for its end in a closed model (`wait`),
    /// else only while the in-flight bound is reached.
    async fn await_expectation(
        &mut self,
        id: crate::oracle::ExpectId,
        wait: bool,
        known_now: Option<Instant>,
    ) {
        if wait {
            self.pump_from(None, |ch| !ch.is_pending(id), known_now)
                .await;
        } else {
            // Open model: at the in-flight bound, read until one ends (each has a deadline)
            // before sending more, so a client that falls behind does not hold its backlog.
            let bound = self.ctx.plan.limits.max_in_flight;
            if self.checker.pending_count() >= bound {
                self.pump_from(None, |ch| ch.pending_count() < bound, known_now)
                    .await;
                self.rare().in_flight_released = Some(Instant::now());
            }
        }
    }

    /// Open model: reads until the block start + `offset`, then marks the next send's
    /// intended time, so a late send is charged to the server, not hidden.
    ///
    /// The generator's lag is the client's own lateness: a send held at `[limits]
    /// max_in_flight` past its instant waited for the server's answers (its turn still
    /// counts from the instant), so only what came after the bound let it go is the
    /// client's. Charging the wait to the client read a stalling server's run as "fell
    /// behind: timings not trustworthy", and `compare` never judged it.
    async fn pace_at(&mut self, offset: Duration) {
        let base = self.rare.as_ref().and_then(|r| r.pace_base);
        let intended = super::later(base.unwrap_or_else(Instant::now), offset);
        if Instant::now() < intended && self.pump(Some(intended), |_| false).await != Stop::Deadline
        {
            return;
        }
        let now = Instant::now();
        // Kept past this send: those due before the release that go out after it (the
        // catch-up after a hold) were held as much.
        let released = self.rare.as_ref().and_then(|r| r.in_flight_released);
        let from = match released {
            Some(released) if released > intended => {
                if now.saturating_duration_since(intended) > LATE {
                    self.rare().sends_held_in_flight += 1;
                }
                released
            }
            _ => intended,
        };
        self.record(Phase::GeneratorLag, now.saturating_duration_since(from))
            .await;
        self.intended_send = Some(intended);
    }

    async fn think(&mut self, d: Duration) {
        let intended = Instant::now() + d;
        if d >= IDLE_THINK {
            // A long idle stretch: hand the samples over now and give back the per-message
            // buffers, so an idle connection holds only what it needs to wake up.
            self.samples.flush().await;
            if !self.checker.has_pending() {
                self.checker.shrink();
            }
            self.render_buf = String::new();
        }
        if self.pump(Some(intended), |_| false).await == Stop::Deadline {
            self.record(
                Phase::GeneratorLag,
                Instant::now().saturating_duration_since(intended),
            )
            .await;
        }
    }

    /// Waits for every open expectation to be met or to time out.
    async fn settle_pending(&mut self) {
        if self.open.is_some() {
            self.pump(None, |ch| !ch.has_pending()).await;
        }
    }

    async fn close(&mut self, code: u16) {
        self.settle_pending().await;
        let Some(open) = self.open.as_mut() else {
            return;
        };
        open.closing = Some(code);
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        match self.write(Message::Close(Some(frame))).await {
            Wrote::Sent => {}
            // The loop (or `finish`) ends the attempt as interrupted.
            Wrote::Cancelled => return,
            Wrote::Failed(cause) => {
                self.lose(cause, Instant::now());
                return;
            }
        }
        let waited = self
            .pump(Some(Instant::now() + CLOSE_GRACE), |_| false)
            .await;
        if waited != Stop::Lost {
            // The server never answered our Close: the attempt still ends here. Counted
            // when the grace ran out (not when the run's end cut the wait): RFC 6455
            // §5.5.1 says it must answer, and a server that does not holds its side open.
            if waited == Stop::Deadline {
                if let Some(attempt) = self.attempts.last_mut() {
                    attempt.close_unanswered = true;
                }
            }
            if let Some(open) = self.open.take() {
                self.end_attempt(open, Cause::ClientClose(code), Instant::now());
            }
        }
    }

    async fn record(&mut self, phase: Phase, d: Duration) {
        self.samples.record(phase, d).await;
    }

    async fn drain_checker_samples(&mut self) {
        if self.file_checker_samples(None) {
            self.samples.flush().await;
        }
    }

    /// Whether [`Self::file_checker_samples`] has anything to do: samples to file or
    /// violations to publish.
    fn checker_has_news(&self) -> bool {
        !self.checker.samples.is_empty()
            || !self.checker.named_samples.is_empty()
            || self.checker.violated > self.violations_published
    }

    /// Moves the checker's samples into the sample buffer without waiting, stamped `at`
    /// (now when `None`), and publishes new violations; `true` when the buffer is due to be
    /// handed over.
    fn file_checker_samples(&mut self, at: Option<Instant>) -> bool {
        let mut due = false;
        // Drained in place: this runs for every frame, and the checker's buffer keeps its
        // capacity instead of being reallocated each time.
        if !self.checker.samples.is_empty() || !self.checker.named_samples.is_empty() {
            // One clock read for what one frame or step produced (a turn's samples).
            let at = at.unwrap_or_else(Instant::now);
            for (phase, d) in self.checker.samples.drain(..) {
                due |= self.samples.add(phase, d, at);
            }
            for (name, d) in self.checker.named_samples.drain(..) {
                let turn = self.ctx.turn_names.iter().position(|n| *n == name);
                if let Some(turn) = turn.and_then(|t| u16::try_from(t).ok()) {
                    due |= self.samples.add_turn(turn, d, at);
                }
            }
        }
        let total = self.checker.violated;
        if total > self.violations_published {
            let new = total - self.violations_published;
            self.ctx.live.violations.fetch_add(new, Relaxed);
            self.violations_published = total;
        }
        due
    }

    fn since_t0(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.ctx.t0).as_micros() as u64
    }

    /// Sleeps without reading (a slow reader, or waiting to start); stops early on cancel.
    async fn sleep_until(&self, at: Instant) -> Stop {
        tokio::select! {
            biased;
            _ = self.stop.token().cancelled() => Stop::Cancelled,
            _ = sleep_until(at) => Stop::Deadline,
        }
    }
}

#[cfg(test)]
mod login_tests {
    use super::{Logins, LOGINS_KEPT};

    /// A login source that returns a fresh token each time keeps at most [`LOGINS_KEPT`]
    /// of them, however long the connection loops, and hands back the ones that make room
    /// for what it holds to be redacted with first (every login's token was kept: one per
    /// attempt); a token returned again is kept once.
    #[test]
    fn a_long_loop_of_logins_keeps_a_bounded_number_of_tokens() {
        let base = crate::auth::tests::mint(crate::model::JwtAlg::Hs256, None);
        let mut logins = Logins::default();
        let mut handed_back = 0;
        for i in 0..1_000 {
            let token = base.with_value(format!("login-token-{i:08}"));
            if let Some(leaving) = logins.note(&token) {
                assert_eq!(leaving.len(), LOGINS_KEPT);
                handed_back += leaving.len();
            }
            assert!(logins.kept.len() <= LOGINS_KEPT, "{}", logins.kept.len());
            assert!(logins.note(&token).is_none(), "kept once");
        }
        assert!(logins.forgotten);
        assert_eq!(
            handed_back + logins.kept.len(),
            1_000,
            "each handed back once"
        );
    }
}

#[cfg(test)]
mod size_tests {
    /// mimalloc serves requests of 1,793 to 2,048 bytes from its 2,048-byte size class and
    /// the next ones from 2,560 (four classes per doubling).
    const SIZE_CLASS: usize = 2_048;

    /// Every connection's state is one allocation of [`super::ConnRun`]: a field that takes
    /// it past its allocator size class costs every connection 512 bytes (24 bytes of
    /// counts did: an idle connection 5.1 → 5.8 KiB, `benches/echo.rs --open`, 2026-12-04).
    /// What only some connections use goes in `Rare` or a box of its own. Since its
    /// counters left it (made at its end) and the paced block's start moved to `Rare`, it
    /// fits the 2,048-byte class: exactly, no room left.
    #[test]
    fn a_connections_state_stays_in_its_allocator_size_class() {
        let size = std::mem::size_of::<super::ConnRun>();
        eprintln!("ConnRun: {size} bytes");
        assert!(
            size <= SIZE_CLASS,
            "ConnRun is {size} bytes, past {SIZE_CLASS}"
        );
    }
}

#[cfg(test)]
mod current_tests {
    use super::*;

    /// The expect in progress names the cursor's copy of its pattern and holds no count on
    /// it, and becomes the same expectation again when a lost connection names its step.
    #[test]
    fn the_expect_in_progress_names_its_pattern_without_holding_it() {
        let text = r#"
name = "current"
duration = "5s"
[[group]]
name = "g"
users = 1
steps = [
  { repeat = 2, steps = [
    { send = { type = "echo", run_id = "{{run}}" } },
    { expect = "echo", correlate = "run_id", within = "5s" },
  ] },
]
"#;
        let scenario = crate::scenario::load_str(text, "current.toml").expect("loads");
        let plan = crate::plan::build(&scenario, 1);
        let conn = &plan.conns[0];
        let mut cursor = Cursor::new(conn);
        let expect = loop {
            match cursor.next(&plan, conn) {
                Some(Action::Expect(e)) => break e,
                Some(_) => {}
                None => panic!("the script expects"),
            }
        };
        let held = Arc::strong_count(&expect.pattern);
        let current = Current::of_expect(&expect, &cursor);
        assert!(matches!(
            current,
            Current::Expect {
                pattern: HeldPattern::Kept(_),
                ..
            }
        ));
        assert_eq!(Arc::strong_count(&expect.pattern), held, "no count added");
        let Action::Expect(again) = current.to_action(&cursor) else {
            panic!("an expect again");
        };
        assert!(Arc::ptr_eq(&again.pattern, &expect.pattern));
        assert_eq!((again.within, again.wait), (expect.within, expect.wait));
        // A pattern the cursor keeps no copy of is held as it is.
        let own: Arc<[PatternItem]> = expect.pattern.iter().cloned().collect();
        let explicit = ExpectPlan {
            pattern: own.clone(),
            ..(*expect).clone()
        };
        let Action::Expect(again) = Current::of_expect(&explicit, &cursor).to_action(&cursor)
        else {
            panic!("an expect again");
        };
        assert!(Arc::ptr_eq(&again.pattern, &own));
    }
}

#[cfg(test)]
mod silence_tests {
    use super::Silence;

    #[test]
    fn a_silence_runs_from_the_latest_frame_request_or_upgrade() {
        // Upgraded at 1 s; a request at 2 s ends 1 s of silence.
        let mut s = Silence::since(1_000_000);
        s.request(2_000_000, true);
        assert_eq!(s.longest_us, 1_000_000);
        // Its answer comes late, at 4.5 s: the next request, at 5 s, ends 0.5 s of
        // silence, not the 3 s since the request before.
        s.data(4_500_000);
        s.request(5_000_000, true);
        assert_eq!(s.longest_us, 1_000_000);
        // Then 2 s with neither side sending: the longest so far.
        s.request(7_000_000, true);
        assert_eq!(s.longest_us, 2_000_000);
    }

    #[test]
    fn a_silence_with_reads_paused_in_it_is_left_out_but_still_ends() {
        let mut s = Silence::since(0);
        s.request(5_000_000, false);
        assert_eq!(s.longest_us, 0, "what came during the pause was not read");
        // The next silence counts from that request, not from the upgrade.
        s.request(6_000_000, true);
        assert_eq!(s.longest_us, 1_000_000);
    }

    #[test]
    fn a_frame_read_before_the_last_request_does_not_move_the_start_back() {
        let mut s = Silence::since(0);
        s.request(2_000_000, true);
        // A record with an earlier instant (a frame's records share its arrival time,
        // filed after the send) never reopens a silence that already ended.
        s.data(1_500_000);
        s.request(3_900_000, true);
        assert_eq!(
            s.longest_us, 2_000_000,
            "1.9 s since the request, not 2.4 s"
        );
        s.request(6_500_000, true);
        assert_eq!(s.longest_us, 2_600_000);
    }
}
