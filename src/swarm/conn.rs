//! One connection's script: the task that runs a [`ConnPlan`] against the target.
//!
//! The task owns everything it records (counters, a sample buffer, its oracle state) and
//! returns it once as a [`ConnReport`]. Server misbehaviour (resets, garbage, oversized
//! frames, silence) ends up in that report as causes and violations; nothing here fails
//! the run.

use super::attempt::{Attempt, Judge};
use super::dial::{classify, Ws};
use super::{ConnReport, RunCtx};
use crate::metrics::{Cause, Counters, Phase, SampleBuffer};
use crate::oracle::{ConnChecker, ConnIdentity, StreamEnd};
use crate::plan::{Action, ConnPlan, ExpectPlan};
use futures_util::{SinkExt, StreamExt};
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

/// How long an interrupted connection may take to send its Close frame.
const INTERRUPT_GRACE: Duration = Duration::from_millis(100);

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

struct Open {
    ws: Ws,
    upgraded_at: Instant,
    /// Whether the first data frame has been timed.
    first_frame_seen: bool,
    /// Set once we sent a Close: the server's Close then completes our handshake.
    closing: Option<u16>,
}

pub(super) struct ConnRun {
    ctx: Arc<RunCtx>,
    index: usize,
    cancel: CancellationToken,
    counters: Counters,
    samples: SampleBuffer,
    checker: ConnChecker,
    open: Option<Open>,
    /// When the latest request went out on the current connection.
    last_send_at: Option<(Instant, Instant)>,
    /// Open model: the start of the current paced block, and the next send's intended time.
    pace_base: Option<Instant>,
    intended_send: Option<Instant>,
    attempts: Vec<Attempt>,
    /// Violations already added to the live progress counter.
    violations_published: u64,
    released_us: Option<u64>,
}

impl ConnRun {
    pub(super) fn new(
        ctx: Arc<RunCtx>,
        index: usize,
        cancel: CancellationToken,
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
        let fields = correlate_fields(plan);
        let checker = ConnChecker::new(ctx.oracles.clone(), who, ctx.t0, fields);
        ConnRun {
            ctx,
            index,
            cancel,
            counters: Counters::default(),
            samples,
            checker,
            open: None,
            last_send_at: None,
            pace_base: None,
            intended_send: None,
            attempts: Vec::new(),
            violations_published: 0,
            released_us: None,
        }
    }

    fn plan(&self) -> &ConnPlan {
        &self.ctx.plan.conns[self.index]
    }

    pub(super) async fn run(mut self) -> ConnReport {
        let intended = self.ctx.t0 + self.plan().start;
        if self.sleep_until(intended).await == Stop::Cancelled {
            return Box::pin(self.finish()).await;
        }
        self.record(
            Phase::GeneratorLag,
            Instant::now().saturating_duration_since(intended),
        )
        .await;
        let ctx = self.ctx.clone();
        let actions = &ctx.plan.conns[self.index].actions;
        let mut connected = false;
        for action in actions {
            if self.cancel.is_cancelled() {
                break;
            }
            match action {
                // Connecting and closing are boxed: their large, short-lived states would
                // otherwise be part of every connection's task for its whole life.
                Action::Connect => connected = Box::pin(self.connect(&[])).await,
                Action::AbortHandshake { after, rst } => {
                    Box::pin(self.abort_handshake(*after, *rst)).await
                }
                Action::Reconnect { after, backoff } => {
                    connected = Box::pin(self.reconnect(*after, backoff)).await
                }
                _ if !connected || self.open.is_none() => continue,
                Action::Send { message } => self.send(message).await,
                // Waiting states are boxed too: only the one in progress takes memory.
                Action::Expect(expect) => Box::pin(self.expect(expect)).await,
                Action::Think(d) => Box::pin(self.think(*d)).await,
                Action::PaceStart => self.pace_base = Some(Instant::now()),
                Action::PaceAt(offset) => Box::pin(self.pace_at(*offset)).await,
                Action::PauseReads(d) => {
                    // Nothing is recorded while we do not read: hand samples over first.
                    self.samples.flush().await;
                    self.sleep_until(Instant::now() + *d).await;
                }
                Action::Close { code } => Box::pin(self.close(*code)).await,
            }
        }
        if self.cancel.is_cancelled() {
            Box::pin(self.close_interrupted()).await;
        } else {
            Box::pin(self.settle_pending()).await;
            Box::pin(self.close(1000)).await;
        }
        Box::pin(self.finish()).await
    }

    /// The run is over: say goodbye (1001, going away) without waiting long for the reply.
    async fn close_interrupted(&mut self) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        let frame = CloseFrame {
            code: CloseCode::Away,
            reason: "".into(),
        };
        let _ = timeout(INTERRUPT_GRACE, open.ws.send(Message::Close(Some(frame)))).await;
        let now = Instant::now();
        self.checker
            .end_stream(StreamEnd::Cut, "run ended", now, &mut self.counters);
        self.end_attempt(open, Cause::Interrupted, now);
    }

    /// Settles what is still open and hands over what this connection saw. Takes `&mut self`
    /// (not `self`) so its future does not hold a second copy of the connection state.
    async fn finish(&mut self) -> ConnReport {
        let now = Instant::now();
        self.checker
            .end_stream(StreamEnd::Cut, "run ended", now, &mut self.counters);
        if let Some(open) = self.open.take() {
            self.end_attempt(open, Cause::Interrupted, now);
        }
        self.drain_checker_samples().await;
        self.samples.flush().await;
        let plan = self.plan();
        ConnReport {
            id: plan.id,
            released_us: self.released_us,
            token: plan.token,
            counters: std::mem::take(&mut self.counters),
            violations: std::mem::take(&mut self.checker.violations),
            attempts: std::mem::take(&mut self.attempts),
        }
    }

    /// Dials once, then once more after each backoff delay while the dial fails.
    async fn connect(&mut self, backoff: &[Duration]) -> bool {
        let mut delays = backoff.iter();
        loop {
            if self.dial().await {
                return true;
            }
            let Some(delay) = delays.next() else {
                return false;
            };
            if self.sleep_until(Instant::now() + *delay).await == Stop::Cancelled {
                return false;
            }
        }
    }

    async fn reconnect(&mut self, after: Duration, backoff: &[Duration]) -> bool {
        if self.open.is_some() {
            self.close(1000).await;
        }
        if self.sleep_until(Instant::now() + after).await == Stop::Cancelled {
            return false;
        }
        self.connect(backoff).await
    }

    async fn dial(&mut self) -> bool {
        let ctx = self.ctx.clone();
        let plan = &ctx.plan.conns[self.index];
        let token = &ctx.tokens[plan.token as usize];
        let placement = ctx.plan.placement_of(plan);
        let started = Instant::now();
        self.counters.attempted += 1;
        // Only the first connect of a collide connection waits on its barrier.
        let barrier = match (plan.barrier, self.attempts.is_empty()) {
            (Some(b), true) => ctx.barriers.get(b as usize).cloned(),
            _ => None,
        };
        let dialed = ctx.dialer.dial(token, (placement, &ctx.extras), barrier);
        // Boxed: the handshake's large state lives only while dialing, not in every idle
        // connection's task for its whole life.
        let dialed = Box::pin(dialed).await;
        for (phase, d) in dialed.phases {
            self.record(phase, d).await;
        }
        if let Some(at) = dialed.released_at {
            self.released_us = Some(self.since_t0(at));
        }
        let mut attempt = Attempt::new(self.since_t0(started));
        let now_us = self.since_t0(Instant::now());
        let judge = Judge {
            rules: &ctx.plan.oracles.session,
        };
        match dialed.result {
            Ok(ws) => {
                ctx.live.live.fetch_add(1, Relaxed);
                self.checker.reset_stream();
                self.last_send_at = None;
                judge.upgraded(&mut attempt, now_us, &mut self.counters);
                self.attempts.push(attempt);
                let open = Open {
                    ws,
                    upgraded_at: Instant::now(),
                    first_frame_seen: false,
                    closing: None,
                };
                self.open = Some(open);
                // In-band auth: the token's first message goes out before anything else.
                if let Some(text) = crate::auth::first_message(placement, token) {
                    self.send_text(text).await;
                }
                self.open.is_some()
            }
            Err(failure) => {
                judge.dial_failed(
                    &mut attempt,
                    failure.cause,
                    failure.rejected,
                    now_us,
                    &mut self.counters,
                );
                self.attempts.push(attempt);
                false
            }
        }
    }

    /// Sends the upgrade request, waits, then drops the socket: the handshake abort pattern.
    async fn abort_handshake(&mut self, after: Duration, rst: bool) {
        let ctx = self.ctx.clone();
        let plan = &ctx.plan.conns[self.index];
        let token = &ctx.tokens[plan.token as usize];
        let placement = ctx.plan.placement_of(plan);
        self.counters.attempted += 1;
        let mut attempt = Attempt::new(self.since_t0(Instant::now()));
        let aborted = ctx
            .dialer
            .abort(token, (placement, &ctx.extras), after, rst);
        let aborted = Box::pin(aborted).await;
        for (phase, d) in aborted.phases {
            self.record(phase, d).await;
        }
        let now_us = self.since_t0(Instant::now());
        let judge = Judge {
            rules: &ctx.plan.oracles.session,
        };
        match aborted.result {
            Ok(answered) => {
                attempt.upgraded_us = answered.then_some(now_us);
                judge.aborted(
                    &mut attempt,
                    Cause::Aborted { rst },
                    now_us,
                    &mut self.counters,
                );
            }
            Err(failure) => judge.dial_failed(
                &mut attempt,
                failure.cause,
                failure.rejected,
                now_us,
                &mut self.counters,
            ),
        }
        self.attempts.push(attempt);
    }

    async fn send(&mut self, message: &serde_json::Value) {
        let actual = Instant::now();
        let intended = self.intended_send.take().unwrap_or(actual);
        if actual.saturating_duration_since(intended) > LATE {
            self.counters.late_sends += 1;
        }
        self.last_send_at = Some((intended, actual));
        self.send_text(message.to_string()).await;
    }

    async fn send_text(&mut self, text: String) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        match open.ws.send(Message::Text(text.into())).await {
            Ok(()) => {
                self.counters.messages_sent += 1;
                self.ctx.live.sent.fetch_add(1, Relaxed);
            }
            Err(e) => self.lose(classify(&e), Instant::now()),
        }
    }

    async fn expect(&mut self, expect: &ExpectPlan) {
        let now = Instant::now();
        let id = self
            .checker
            .expect(expect, self.last_send_at, now, &mut self.counters);
        self.drain_checker_samples().await;
        if expect.wait {
            self.pump(None, |ch| !ch.is_pending(id)).await;
        }
    }

    /// Open model: reads until the block start + `offset`, then marks the next send's
    /// intended time, so a late send is charged to the server, not hidden.
    async fn pace_at(&mut self, offset: Duration) {
        let intended = self.pace_base.unwrap_or_else(Instant::now) + offset;
        if Instant::now() < intended && self.pump(Some(intended), |_| false).await != Stop::Deadline
        {
            return;
        }
        self.record(
            Phase::GeneratorLag,
            Instant::now().saturating_duration_since(intended),
        )
        .await;
        self.intended_send = Some(intended);
    }

    async fn think(&mut self, d: Duration) {
        let intended = Instant::now() + d;
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
        if let Err(e) = open.ws.send(Message::Close(Some(frame))).await {
            self.lose(classify(&e), Instant::now());
            return;
        }
        if self
            .pump(Some(Instant::now() + CLOSE_GRACE), |_| false)
            .await
            != Stop::Lost
        {
            // The server never answered our Close: the attempt still ends here.
            if let Some(open) = self.open.take() {
                self.end_attempt(open, Cause::ClientClose(code), Instant::now());
            }
        }
    }

    /// Reads frames until `done` holds, `until` passes, the connection ends or the run stops.
    async fn pump(&mut self, until: Option<Instant>, done: impl Fn(&ConnChecker) -> bool) -> Stop {
        loop {
            if done(&self.checker) {
                return Stop::Done;
            }
            // Also wake when buffered samples get old, so interval logs stay current.
            let wake_at = [until, self.checker.next_deadline(), self.samples.stale_at()]
                .into_iter()
                .flatten()
                .min();
            let Some(open) = self.open.as_mut() else {
                return Stop::Lost;
            };
            let wake = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => Wake::Cancelled,
                frame = open.ws.next() => Wake::Frame(frame),
                _ = sleep_opt(wake_at) => Wake::Timer,
            };
            match wake {
                Wake::Cancelled => return Stop::Cancelled,
                Wake::Frame(frame) => {
                    if !self.on_frame(frame).await {
                        return Stop::Lost;
                    }
                }
                Wake::Timer => {
                    let now = Instant::now();
                    self.checker.expire(now, &mut self.counters);
                    self.drain_checker_samples().await;
                    self.samples.flush_if_stale(now).await;
                    if until.is_some_and(|u| now >= u) {
                        return Stop::Deadline;
                    }
                }
            }
        }
    }

    /// Handles one read result; `false` when the connection is gone.
    async fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> bool {
        let now = Instant::now();
        let message = match frame {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                self.lose(classify(&e), now);
                return false;
            }
            None => {
                self.lose(Cause::Reset, now);
                return false;
            }
        };
        match message {
            Message::Text(text) => {
                self.count_received(text.len());
                match serde_json::from_str::<serde_json::Value>(text.as_str()) {
                    Ok(serde_json::Value::Object(map)) => {
                        let type_field = &self.ctx.plan.oracles.type_field;
                        let event = map.get(type_field).and_then(|v| v.as_str());
                        self.data_frame(now, event).await;
                        self.checker.on_message(&map, now, &mut self.counters);
                        self.drain_checker_samples().await;
                    }
                    _ => {
                        self.data_frame(now, None).await;
                        self.counters.non_json += 1;
                    }
                }
            }
            Message::Binary(bytes) => {
                self.data_frame(now, None).await;
                self.count_received(bytes.len());
                self.counters.binary_frames += 1;
            }
            Message::Close(frame) => {
                let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                let judge = Judge {
                    rules: &self.ctx.plan.oracles.session,
                };
                if let Some(attempt) = self.attempts.last_mut() {
                    judge.server_close(attempt, code, &mut self.counters);
                }
                self.server_closed(code, now).await;
                return false;
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        true
    }

    fn count_received(&mut self, bytes: usize) {
        self.counters.messages_received += 1;
        self.counters.bytes_received += bytes as u64;
        self.ctx.live.received.fetch_add(1, Relaxed);
    }

    /// A data frame: times the first one, and may settle the attempt as accepted.
    async fn data_frame(&mut self, now: Instant, event: Option<&str>) {
        let at_us = self.since_t0(now);
        let judge = Judge {
            rules: &self.ctx.plan.oracles.session,
        };
        if let Some(attempt) = self.attempts.last_mut() {
            judge.data(attempt, at_us, event, &mut self.counters);
        }
        let Some(open) = self.open.as_mut() else {
            return;
        };
        if !open.first_frame_seen {
            open.first_frame_seen = true;
            let elapsed = now.saturating_duration_since(open.upgraded_at);
            self.record(Phase::FirstFrame, elapsed).await;
        }
    }

    async fn server_closed(&mut self, code: u16, now: Instant) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        let ours = open.closing;
        // Complete the close handshake so the server sees a clean close; bounded.
        let _ = timeout(Duration::from_millis(200), open.ws.close(None)).await;
        let cause = match ours {
            Some(mine) => Cause::ClientClose(mine),
            None => Cause::ServerClose(code),
        };
        let how = if ours.is_some() {
            StreamEnd::Cut
        } else {
            StreamEnd::Lost
        };
        self.checker.end_stream(
            how,
            &format!("server closed with {code}"),
            now,
            &mut self.counters,
        );
        self.end_attempt(open, cause, now);
    }

    /// The connection broke without a Close frame.
    fn lose(&mut self, cause: Cause, now: Instant) {
        let Some(open) = self.open.take() else { return };
        let how = if open.closing.is_some() {
            StreamEnd::Cut
        } else {
            StreamEnd::Lost
        };
        self.checker.end_stream(
            how,
            &format!("connection lost ({cause})"),
            now,
            &mut self.counters,
        );
        self.end_attempt(open, cause, now);
    }

    fn end_attempt(&mut self, open: Open, cause: Cause, now: Instant) {
        drop(open);
        self.ctx.live.live.fetch_sub(1, Relaxed);
        let at_us = self.since_t0(now);
        let judge = Judge {
            rules: &self.ctx.plan.oracles.session,
        };
        if let Some(attempt) = self.attempts.last_mut() {
            judge.ended(attempt, cause, at_us, &mut self.counters);
        }
    }

    async fn record(&mut self, phase: Phase, d: Duration) {
        self.samples.record(phase, d).await;
    }

    async fn drain_checker_samples(&mut self) {
        for (phase, d) in std::mem::take(&mut self.checker.samples) {
            self.samples.record(phase, d).await;
        }
        let total = self.counters.total_violations();
        if total > self.violations_published {
            self.ctx
                .live
                .violations
                .fetch_add(total - self.violations_published, Relaxed);
            self.violations_published = total;
        }
    }

    fn since_t0(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.ctx.t0).as_micros() as u64
    }

    /// Sleeps without reading (a slow reader, or waiting to start); stops early on cancel.
    async fn sleep_until(&self, at: Instant) -> Stop {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Stop::Cancelled,
            _ = sleep_until(at) => Stop::Deadline,
        }
    }
}

enum Wake {
    Cancelled,
    Frame(Option<Result<Message, WsError>>),
    Timer,
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Correlation fields this connection's expectations use (usually just one).
fn correlate_fields(plan: &ConnPlan) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    for action in &plan.actions {
        if let Action::Expect(ExpectPlan {
            correlate: Some((field, _)),
            ..
        }) = action
        {
            if !fields.contains(field) {
                fields.push(field.clone());
            }
        }
    }
    fields
}
