//! Reading: the wait loop every step uses, what each frame does, and how the connection's
//! attempt ends when the server closes or the connection breaks.

use super::*;
use crate::model::path::{lookup, Tree};
use crate::model::StepPlace;
use crate::oracle::frame::{for_each_frame_record, kind_of, Record};
use crate::oracle::framing;
use crate::oracle::ScriptPlace;
use crate::oracle::{idle, lifetime};
use crate::prefetch::Warm;
use futures_util::FutureExt;
use timer::Turn;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// The longest text frame read from a copy ([`ConnRun::read_text`]): what the copy costs
/// stays below what letting go of the frame late does, and the spare buffer stays small.
const COPIED_TEXT: usize = 256;

impl ConnRun {
    /// Where the next message's work reads: this state, and the heads of the buffers it
    /// reads first ([`Warm`]). Taken while they are in the cache, prefetched when the
    /// connection wakes; nothing in a run too small for it to pay ([`RunCtx::prefetch`]).
    fn warm(&self) -> Warm {
        let mut warm = Warm::default();
        if !self.ctx.prefetch {
            return warm;
        }
        // Not from `answer` on: no message reads them.
        warm.between(self, &self.answer);
        self.checker.warm(&mut warm);
        self.cursor.warm(&mut warm);
        warm.slice(&self.attempts[self.attempts.len().saturating_sub(1)..]);
        warm
    }

    /// Reads frames until `done` holds, `until` passes, the connection ends or the run stops.
    pub(super) async fn pump(
        &mut self,
        until: Option<Instant>,
        done: impl Fn(&ConnChecker) -> bool,
    ) -> Stop {
        self.pump_from(until, done, None).await
    }

    /// [`Self::pump`], given an instant read during this poll of the task, since its last
    /// wait ([`Turn::FirstAt`]): the first look at the timer reads no clock.
    pub(super) async fn pump_from(
        &mut self,
        until: Option<Instant>,
        done: impl Fn(&ConnChecker) -> bool,
        mut known_now: Option<Instant>,
    ) -> Stop {
        if let Some(open) = self.open.as_mut() {
            open.sent_unread = false;
        }
        loop {
            if done(&self.checker) {
                return Stop::Done;
            }
            // Also wake when buffered samples get old, so interval logs stay current.
            let wake_at = [until, self.checker.next_deadline(), self.samples.stale_at()]
                .into_iter()
                .flatten()
                .min();
            let warm = self.warm();
            let Some(open) = self.open.as_mut() else {
                return Stop::Lost;
            };
            // The first poll of this wait comes straight from the loop: the timer then
            // needs no poll unless it moved or may have fired (`WakeTimer`).
            let mut turn = known_now.take().map_or(Turn::First, Turn::FirstAt);
            // Straight from the loop the state is still in the cache: only a wake-up
            // finds it gone.
            let mut woken = false;
            let timer = &mut self.timer;
            let wake = tokio::select! {
                biased;
                _ = std::future::poll_fn(|cx| {
                    if std::mem::replace(&mut woken, true) {
                        warm.prefetch();
                    }
                    self.stop.poll_stopped(cx)
                }) => Wake::Cancelled,
                frame = open.ws.next() => Wake::Frame(frame),
                _ = std::future::poll_fn(|cx| {
                    timer.poll_until(wake_at, std::mem::replace(&mut turn, Turn::Woken), cx)
                }) => Wake::Timer,
            };
            match wake {
                Wake::Cancelled => return Stop::Cancelled,
                // Most frames: handled without a wait (and without a future of their own).
                Wake::Frame(Some(Ok(Message::Text(text)))) => {
                    let now = Instant::now();
                    if self.read_text(text, now) {
                        // Boxed: once per batch, and every waiting connection carries this loop.
                        Box::pin(self.samples.flush()).await;
                    }
                    if self
                        .open
                        .as_ref()
                        .is_some_and(|o| o.refused_in_band || o.ping_due || o.answer_due)
                        && !Box::pin(self.after_text(now)).await
                    {
                        return Stop::Lost;
                    }
                    // A server that sends text without pause (a feed faster than it is
                    // read, a flood) keeps the stream always ready, as control frames can
                    // (below): what is past due is done here too, one comparison a frame.
                    if wake_at.is_some_and(|at| now >= at) && self.past_due(now, until).await {
                        return Stop::Deadline;
                    }
                }
                Wake::Frame(frame) => {
                    // Boxed: handling a frame needs far more state than waiting for one,
                    // and every waiting connection (an idle one in a long `think`) would
                    // otherwise carry it.
                    if !Box::pin(self.on_frame(frame)).await {
                        return Stop::Lost;
                    }
                    // A server that sends control frames without end (pings, and never
                    // reads the pongs) keeps the stream always ready: the biased select
                    // would never reach the timer, and no deadline, nor the wait's end,
                    // would ever pass. What is past due is done here too.
                    let now = Instant::now();
                    if wake_at.is_some_and(|at| now >= at) && self.past_due(now, until).await {
                        return Stop::Deadline;
                    }
                }
                Wake::Timer => {
                    let now = Instant::now();
                    if self.timer_fired(now) {
                        // Boxed, as above.
                        Box::pin(self.samples.flush()).await;
                    }
                    if until.is_some_and(|u| now >= u) {
                        return Stop::Deadline;
                    }
                }
            }
        }
    }

    /// What the timer would have done by `now`, for a wait whose stream stays ready (its
    /// biased select then never polls the timer): expectations past their deadlines
    /// expire, their samples filed; `true` when the wait's end (`until`) has passed.
    async fn past_due(&mut self, now: Instant, until: Option<Instant>) -> bool {
        if self.timer_fired(now) {
            Box::pin(self.samples.flush()).await;
        }
        until.is_some_and(|u| now >= u)
    }

    /// What a text frame left to do: answer a Socket.IO ping and the records an
    /// `[[answer]]` answers, end a connection the server refused in band. `false` when the
    /// connection is gone.
    async fn after_text(&mut self, now: Instant) -> bool {
        let pinged = self
            .open
            .as_mut()
            .is_some_and(|o| std::mem::take(&mut o.ping_due));
        // Not once our Close went out: nothing may follow it (RFC 6455 §5.5.1).
        let closing = self.open.as_ref().is_some_and(|o| o.closing.is_some());
        if pinged && !closing {
            // Not a request: nothing is timed from it, and it is not counted as sent.
            if let Some(answer) = framing::answer(self.ctx.plan.oracles.framing) {
                if let Wrote::Failed(cause) = self.write(Message::Text(answer.into())).await {
                    self.lose(cause, Instant::now());
                    return false;
                }
            }
        }
        let answering = self
            .open
            .as_mut()
            .is_some_and(|o| std::mem::take(&mut o.answer_due));
        // The challenge's answer first: a scripted send, counted as one (not after our
        // Close, as every answer).
        let auth = self.rare.as_mut().and_then(|r| r.auth_due.take());
        if let (Some(text), false) = (auth, closing) {
            Box::pin(self.send_text(text)).await;
            if self.open.is_none() {
                return false;
            }
        }
        if answering {
            let due = self
                .rare
                .as_mut()
                .map(|r| std::mem::take(&mut r.answers_due))
                .unwrap_or_default();
            for text in due {
                // As the ping's answer: no request, nothing after our Close.
                if self.open.as_ref().is_none_or(|o| o.closing.is_some()) {
                    break;
                }
                match self.write(Message::Text(text.into())).await {
                    Wrote::Sent => self.rare().in_band_answers += 1,
                    Wrote::Cancelled => break,
                    Wrote::Failed(cause) => {
                        self.lose(cause, Instant::now());
                        return false;
                    }
                }
            }
        }
        if self.open.as_ref().is_some_and(|o| o.refused_in_band) {
            self.refused_in_band(now).await;
            return false;
        }
        true
    }

    /// What a wait's timer does when it fires, or when a frame finds it past due: expires
    /// the expectations whose deadlines passed and files their samples; `true` when the
    /// samples are due a flush.
    fn timer_fired(&mut self, now: Instant) -> bool {
        if self.bad_token_unaccepted() {
            self.checker.expire_unjudged(now);
        } else {
            self.checker.expire(now);
        }
        let due = self.file_checker_samples(Some(now));
        due || self.samples.stale(now)
    }

    /// Handles one read result; `false` when the connection is gone.
    pub(super) async fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> bool {
        let now = Instant::now();
        let message = match frame {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                let cause = classify(&e);
                if cause == Cause::Oversized {
                    Box::pin(self.refuse_oversized()).await;
                }
                use tokio_tungstenite::tungstenite::error::ProtocolError;
                if matches!(
                    e,
                    WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
                ) {
                    let detail = "the server ended TCP without a Close frame (abnormal closure, \
                                  1006)";
                    self.lose_saying(cause, detail.into(), now);
                } else if let Some(fault) = protocol_fault(&e, self.open.as_ref().map(|o| &o.ws)) {
                    self.lose_to_protocol_fault(cause, &fault, now);
                } else {
                    self.lose(cause, now);
                }
                return false;
            }
            None => {
                self.lose(Cause::Reset, now);
                return false;
            }
        };
        match message {
            Message::Text(text) => {
                if self.on_text(text.as_str(), now) {
                    self.samples.flush().await;
                }
                if self
                    .open
                    .as_ref()
                    .is_some_and(|o| o.refused_in_band || o.ping_due || o.answer_due)
                {
                    return Box::pin(self.after_text(now)).await;
                }
            }
            Message::Binary(bytes) => {
                self.data_frame(now, None).await;
                self.count_received(bytes.len());
                self.traffic.binary_frames += 1;
                // Socket.IO's binary frames are the attachments of a packet read already
                // (`45…`, `46…`): nothing the oracles could not read.
                if self.ctx.plan.oracles.framing != crate::model::Framing::SocketIo {
                    self.checker.on_binary(&bytes);
                }
            }
            Message::Close(frame) => {
                // The code as sent (tungstenite reports a forbidden one as 1002).
                let cause = self
                    .open
                    .as_ref()
                    .map(|o| close_cause(&o.ws, frame.as_ref()))
                    .unwrap_or(Cause::ServerClose(1005));
                // A forbidden code's reason is tungstenite's ("Protocol violation"), not
                // the server's: never quoted as its words.
                let frame = frame.filter(|_| !matches!(cause, Cause::InvalidClose(_)));
                let judge = Judge {
                    rules: &self.ctx.plan.oracles.session,
                };
                // Our Close crossed the server's own on an attempt it had not accepted: a
                // code other than ours (and other than none) is its verdict, sent before
                // ours reached it (an error frame ended the script's wait, and its `close`
                // went out while the server's refusal was on its way). So is, on an
                // accepted one, a code `reject.replaced` declares: the server let this
                // session go for a newer one (its "session replaced" error ended the
                // script's wait first).
                let pending = self
                    .attempts
                    .last()
                    .is_some_and(|a| a.outcome == Outcome::Pending);
                let replaced = judge.rules.reject.replaces(&cause);
                let crossed = self
                    .open
                    .as_ref()
                    .and_then(|o| o.closing)
                    .is_some_and(|mine| {
                        (pending || replaced)
                            && matches!(cause, Cause::ServerClose(c) if c != mine && c != 1005)
                    });
                let ours = self.open.as_ref().is_some_and(|o| o.closing.is_some()) && !crossed;
                let script_done = !ours && self.script_done();
                let idle = (!ours && !script_done)
                    .then(|| self.idle_before(&cause, now))
                    .flatten();
                let age = (!ours && !script_done)
                    .then(|| self.age_at_close(now))
                    .flatten();
                let expired =
                    !ours && !script_done && cause.may_end_by_policy() && self.token_expired_now();
                let bad_token = self.attempts.last().is_some_and(|a| {
                    a.outcome == Outcome::Pending && may_be_refused(&self.ctx, self.index, a)
                });
                // A takeover needs another connection of the token or its user: one alone
                // was not replaced, whatever its close says (a lost session, not the policy).
                let may_be_taken_over = self
                    .ctx
                    .shared_sessions
                    .get(self.plan().token as usize)
                    .copied()
                    .unwrap_or(true);
                // Read as a `pause_reads` ended, with a code a policy may use: the server
                // may have closed a slow reader (what the pause tests).
                let slow_reader = !ours
                    && !script_done
                    && self.read_as_pause_ended(now)
                    && matches!(cause, Cause::ServerClose(c) if slow_reader_code(c));
                let mut ended_pending = false;
                let mut ended_accepted = false;
                // Of this attempt only: the next one starts with nothing said. When we had
                // closed, `end_attempt` reads it (what an unaccepted attempt was told).
                let said = (!ours)
                    .then(|| self.said.as_mut().and_then(|s| s.pending.take()))
                    .flatten();
                if let Some(attempt) = self.attempts.last_mut() {
                    if ours {
                        // The server answering our Close: not its verdict on us.
                        attempt.clean_end = true;
                    } else {
                        ended_pending = attempt.outcome == Outcome::Pending;
                        ended_accepted = attempt.outcome == Outcome::Accepted;
                        attempt.script_done = ended_accepted && script_done;
                        judge.server_close(attempt, cause.clone(), bad_token);
                        if ended_accepted && !may_be_taken_over {
                            attempt.replaced = false;
                        }
                        attempt.token_expired = expired;
                        if let (true, Some(idle)) = (ended_accepted, idle) {
                            attempt.idle_close_us = Some(idle.as_micros() as u64);
                            attempt.closed_idle =
                                idle::closed_by_policy(&self.ctx.plan.oracles, &cause, idle);
                        }
                        if let (true, Some(age)) = (ended_accepted, age) {
                            attempt.close_age_us = Some(age.as_micros() as u64);
                            // An idle close or an expired token explains it already.
                            attempt.closed_at_lifetime = !attempt.closed_idle
                                && !expired
                                && lifetime::closed_by_policy(&self.ctx.plan.oracles, &cause, age);
                        }
                        attempt.closed_slow_reader = ended_accepted
                            && slow_reader
                            && !attempt.closed_idle
                            && !attempt.closed_at_lifetime
                            && !attempt.declared_shed
                            && !expired;
                    }
                }
                if ended_pending && self.answer.is_none() {
                    // A Close before acceptance is the server's answer, as a refused
                    // upgrade's status is: its code and reason are shown with the refusals.
                    self.answer = Some(Box::new(close_answer(&cause, frame.as_ref())));
                }
                if ended_accepted {
                    // Its reason may say why (a takeover the scenario does not declare).
                    let kept = self.said.get_or_insert_with(Box::default);
                    kept.closed_accepted
                        .get_or_insert_with(|| Box::new(close_answer(&cause, frame.as_ref())));
                    // What it said last, while nothing was met yet, may be the refusal: the
                    // first such close's only.
                    if kept.before_accepted_close.is_none() {
                        kept.before_accepted_close = self
                            .checker
                            .unclaimed_before_any_met()
                            .map(String::into_boxed_str);
                    }
                }
                if let (true, Some(text)) = (ended_pending, said) {
                    // And what the server said before it (an in-band refusal).
                    let kept = self.said.get_or_insert_with(Box::default);
                    kept.before_close.get_or_insert(text);
                }
                // Boxed, as the goodbye above: rare, and its close handshake would
                // otherwise sit in every waiting connection's future.
                let reason = frame.as_ref().map_or("", |f| f.reason.as_str());
                Box::pin(self.server_closed(cause, reason, now, crossed)).await;
                return false;
            }
            Message::Pong(payload) => {
                self.checker.on_pong(&payload, now);
                self.drain_checker_samples().await;
            }
            Message::Ping(_) | Message::Frame(_) => {}
        }
        true
    }

    /// A frame or message past `[limits] max_message_bytes` arrived (tungstenite stopped
    /// reading it at the limit): tells the server why with Close(1009, "message too big"),
    /// bounded like every goodbye; the attempt then ends as `oversized_frame`, a finding.
    async fn refuse_oversized(&mut self) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let frame = CloseFrame {
            code: CloseCode::Size,
            reason: "message too big".into(),
        };
        let _ = timeout(INTERRUPT_GRACE, open.ws.close(Some(frame))).await;
    }

    /// [`Self::on_text`] for a frame as it came. One of at most [`COPIED_TEXT`] bytes is
    /// read from a copy in the connection's spare buffer and let go first: letting go of
    /// a frame takes a count off its read buffer's (an atomic decrement, which waits for
    /// every store pending before it), and before the frame is read only the socket
    /// read's stores are pending, where after it every write of the oracles' would be.
    fn read_text(&mut self, text: Utf8Bytes, now: Instant) -> bool {
        if text.len() > COPIED_TEXT {
            return self.on_text(text.as_str(), now);
        }
        let mut copy = std::mem::take(&mut self.render_buf);
        copy.clear();
        copy.push_str(text.as_str());
        drop(text);
        let due = self.on_text(&copy, now);
        self.render_buf = copy;
        due
    }

    /// A text frame: each record is a message of its own (any JSON value: objects, Phoenix
    /// v2 arrays, SignalR records reach the oracles; text that is not JSON is counted as
    /// such). Files what it measured without waiting; `true` when the sample buffer is due
    /// to be handed over.
    fn on_text(&mut self, text: &str, now: Instant) -> bool {
        self.count_received(text.len());
        let due = self.read_records(text, now);
        // Once per frame: a frame's records share its arrival time.
        self.file_checker_samples(Some(now)) | due
    }

    /// Hands each record of a text frame to the checker. Borrows the run's context beside
    /// the fields it writes rather than cloning its `Arc`: a clone per message is two
    /// atomic updates of one counter that every connection on every worker shares.
    fn read_records(&mut self, text: &str, now: Instant) -> bool {
        let spec = &self.ctx.plan.oracles;
        let mut reading = Reading {
            ctx: &self.ctx,
            index: self.index,
            traffic: &mut self.traffic,
            samples: &mut self.samples,
            checker: &mut self.checker,
            open: &mut self.open,
            attempts: &mut self.attempts,
            markers: self.markers.as_deref().map_or(&[], Vec::as_slice),
            said: &mut self.said,
            answer: &mut self.answer,
            rare: &mut self.rare,
            frame: text,
            now,
        };
        let mut due = false;
        let mut any = false;
        // Plain frames (most runs) are read as they are; a protocol's packets are decoded
        // into records first.
        let transport = for_each_frame_record(spec, text, |record| {
            any = true;
            due |= match record {
                Record::Flat(msg) => reading.json(&msg),
                Record::Json(msg) => reading.json(&msg),
                Record::Text(text) => reading.not_json(text),
            };
        });
        if transport.ping {
            if let Some(o) = reading.open.as_mut() {
                o.ping_due = true;
            }
        }
        if transport.transport_only {
            // The engine's own packets: nothing for the oracles, nor a data frame.
            return false;
        }
        if !any {
            // Only separators or blanks: a data frame that says nothing.
            due |= reading.data_frame(None);
        }
        self.keep_if_pending(text);
        due
    }

    /// Keeps `text` as what the server said last before accepting the attempt, when the
    /// attempt is still pending after it (the frame that accepts it is not kept: most
    /// connections keep nothing).
    fn keep_if_pending(&mut self, text: &str) {
        // An open connection whose attempt is settled (most messages) does not read it.
        if self.open.as_ref().is_some_and(|o| !o.judging) {
            return;
        }
        if self
            .attempts
            .last()
            .is_some_and(|a| a.outcome == Outcome::Pending)
        {
            let said = self.said.get_or_insert_with(Box::default);
            said.pending = Some(Answer::quoted(text).into_boxed_str());
        }
    }

    /// Handles the frames that have already arrived, without waiting for more (between
    /// the sends of a flood: [`ConnRun::reads_before_send`]).
    pub(super) async fn read_ready(&mut self) {
        if let Some(open) = self.open.as_mut() {
            open.sent_unread = false;
        }
        loop {
            let Some(open) = self.open.as_mut() else {
                return;
            };
            let Some(frame) = open.ws.next().now_or_never() else {
                return;
            };
            if !self.on_frame(frame).await {
                return;
            }
        }
    }

    pub(super) fn count_received(&mut self, bytes: usize) {
        self.traffic.messages_received += 1;
        self.traffic.bytes_received += bytes as u64;
        self.ctx.live.received.add(1);
    }

    /// A data frame: times the first one, and may settle the attempt as accepted.
    pub(super) async fn data_frame(&mut self, now: Instant, event: Option<&str>) {
        if self.note_data_frame(now, event) {
            self.samples.flush().await;
        }
    }

    /// [`Self::data_frame`] without waiting: `true` when the sample buffer is due to be
    /// handed over.
    fn note_data_frame(&mut self, now: Instant, event: Option<&str>) -> bool {
        note_data(
            &self.ctx,
            &mut self.attempts,
            &mut self.open,
            &mut self.samples,
            now,
            event,
        )
    }

    /// The server's Close frame arrived; `closed` is its code as received.
    /// The server's Close (`closed`, with its `reason`, often the only words that say
    /// why: graphql-ws's 4409 "Subscriber for s already exists" is a script's mistake)
    /// ended the stream: what was pending is settled with both quoted.
    /// The server closed the connection with `closed` (its `reason`). `crossed`: its Close
    /// crossed our own and is its verdict all the same (a refusal, a declared takeover), so
    /// the attempt ends by its code, not by ours.
    pub(super) async fn server_closed(
        &mut self,
        closed: Cause,
        reason: &str,
        now: Instant,
        crossed: bool,
    ) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        let ours = open.closing;
        // Read before our side of the handshake: what the server's Close carried.
        let reasoned = close_had_reason(&open.ws);
        // Complete the close handshake so the server sees a clean close; bounded.
        let _ = timeout(Duration::from_millis(200), open.ws.close(None)).await;
        let code = match &closed {
            // Its reason, if it sent one, never reached us (see `on_frame`): the code alone.
            Cause::InvalidClose(c) if reasoned => {
                format!("invalid code {c} (and a reason stampede could not read)")
            }
            Cause::InvalidClose(c) => format!("invalid code {c} (no reason)"),
            Cause::ServerClose(c) => c.to_string(),
            other => other.to_string(),
        };
        // The code judgements read (a refusal is the server's policy): a valid one only.
        let close_code = match &closed {
            Cause::ServerClose(c) => Some(*c),
            _ => None,
        };
        let cause = match ours {
            Some(mine) if !crossed => Cause::ClientClose(mine),
            _ => closed,
        };
        let detail = match reason.trim() {
            "" => format!("server closed with {code}"),
            reason => format!(
                "server closed with {code} \"{}\"",
                crate::model::Answer::quoted(reason)
            ),
        };
        self.stream_ended(ours.is_some(), (&detail, close_code), now);
        self.end_attempt(open, cause, now);
    }

    /// The server refused the attempt with its declared refusal message (`[oracles]
    /// reject.message`) and left the connection open (Centrifugo answers an expired token
    /// with an error and waits for a refreshed one): the refusal is its answer, as a Close
    /// would have been. What the script still expected is refused, not missed, and we end
    /// the connection, as a client with no other token does, so the rest of its script is
    /// not asked of a connection the server turned away.
    async fn refused_in_band(&mut self, now: Instant) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        let _ = timeout(INTERRUPT_GRACE, open.ws.close(None)).await;
        let cause = self
            .attempts
            .last()
            .and_then(|a| a.cause.clone())
            .unwrap_or(Cause::ClientClose(1000));
        let detail = format!("refused in band ({cause})");
        self.checker
            .end_stream(StreamEnd::Refused, &detail, None, now);
        self.end_attempt(open, cause, now);
    }

    /// The connection broke without a Close frame (or a write could not go out).
    pub(super) fn lose(&mut self, cause: Cause, now: Instant) {
        let detail = if cause == Cause::Timeout("send") {
            // Either way the server stopped reading: a write waited out the bound, or what
            // the socket would not take (pongs to its pings too) filled the write buffer.
            format!(
                "the server stopped reading: it took no data for {:?}, or let a write \
                 buffer's worth pile up unsent (timeout_send)",
                self.ctx.plan.limits.send_timeout
            )
        } else {
            format!("connection lost ({cause})")
        };
        self.lose_saying(cause, detail, now);
    }

    /// The server broke the WebSocket protocol on the open connection (`fault` says how,
    /// [`protocol_fault`]): a deterministic fault of its own, not a race, so the witness
    /// names it, and an attempt it had not accepted keeps it as the server's answer (the
    /// answer line the verdict points at; boxed, made only here).
    #[cold]
    fn lose_to_protocol_fault(&mut self, cause: Cause, fault: &str, now: Instant) {
        let pending = self
            .attempts
            .last()
            .is_some_and(|a| a.outcome == Outcome::Pending);
        if pending && self.answer.is_none() {
            let detail = format!("after the 101, {fault}");
            self.answer = Some(Box::new(Answer::new(cause.clone(), detail, b"")));
        }
        self.said.get_or_insert_with(Box::default).protocol_fault = Some(fault.into());
        self.lose_saying(
            cause.clone(),
            format!("connection lost ({cause}: {fault})"),
            now,
        );
    }

    /// [`ConnRun::lose`], with `detail` wording the end for the witness.
    fn lose_saying(&mut self, cause: Cause, detail: String, now: Instant) {
        let Some(open) = self.open.take() else { return };
        self.stream_ended(open.closing.is_some(), (&detail, None), now);
        self.end_attempt(open, cause, now);
    }

    /// Settles what the script still owed when the connection ended other than by our
    /// goodbye; `ours`: we had sent our Close. Call before `end_attempt`, which settles a
    /// pending verdict: what counts here is the attempt as judged when the end came.
    /// `detail` words the end for the witness; `close_code` is the server's valid Close
    /// code, if it sent one.
    fn stream_ended(
        &mut self,
        ours: bool,
        (detail, close_code): (&str, Option<u16>),
        now: Instant,
    ) {
        let outcome = self.attempts.last().map(|a| a.outcome);
        if ours || self.stop.is_stopped() || self.bad_token_unaccepted() {
            self.checker
                .end_stream(StreamEnd::Cut, detail, close_code, now);
        } else if outcome == Some(Outcome::Rejected)
            || self.ended_by_policy(close_code)
            || (outcome != Some(Outcome::Accepted) && self.retry_follows())
        {
            // A server that sheds an accepted connection under load, or ends it because
            // another connection of its token took over, applies its policy: what the
            // script still expected is refused, not missed. So is an attempt it ended
            // before accepting it that a `reconnect`'s backoff tries again.
            self.checker
                .end_stream(StreamEnd::Refused, detail, close_code, now);
        } else if outcome == Some(Outcome::Accepted) {
            let plan = &self.ctx.plan;
            let conn = &plan.conns[self.index];
            // The step in progress, then what follows it up to the next step that ends or
            // replaces the connection anyway (bounded: a million-iteration loop is not
            // walked to its end to name a few steps).
            let cursor = &self.cursor;
            let mut window: Vec<Action> =
                self.current.iter().map(|c| c.to_action(cursor)).collect();
            let stop = |a: &Action| {
                matches!(
                    a,
                    Action::Close { .. }
                        | Action::Reconnect { .. }
                        | Action::Connect
                        | Action::AbortHandshake { .. }
                )
            };
            window.extend(self.cursor.ahead(plan, conn, CUT_OFF_SCANNED, stop));
            let actions = plan.actions_of(conn);
            let place = match self.current {
                Some(_) => ScriptPlace {
                    action: self.cursor.yielded().saturating_sub(1),
                    actions,
                    step: self.cursor.step_place(),
                },
                None => ScriptPlace {
                    action: actions,
                    actions,
                    step: StepPlace::NONE,
                },
            };
            let step = if self.current.is_some() {
                0
            } else {
                window.len()
            };
            self.checker
                .server_ended(&window, step, &place, detail, close_code, now);
        } else {
            self.checker
                .end_stream(StreamEnd::Lost, detail, close_code, now);
        }
    }

    /// Whether a `reconnect`'s backoff has a delay left to try again with, should the
    /// attempt now ending not have been accepted ([`ConnRun::retry_unaccepted`]).
    fn retry_follows(&self) -> bool {
        self.rare
            .as_ref()
            .and_then(|r| r.retry.as_ref())
            .is_some_and(|r| !r.delays.is_empty())
    }

    /// Whether the last attempt is a bad token's that the server has not accepted (failed
    /// by a 1011 or a reset, or still pending): rejection hygiene judges it, and its
    /// script, written for a server that took the token, owes nothing (its unmet
    /// `expect` would count the one fault twice, and one that timed out while the server
    /// waited for what the bad token never sent would blame a correct server).
    fn bad_token_unaccepted(&self) -> bool {
        self.attempts.last().is_some_and(|a| {
            matches!(a.outcome, Outcome::Failed | Outcome::Pending)
                && may_be_refused(&self.ctx, self.index, a)
        })
    }

    /// How long the client had left the connection idle when the server's Close (`cause`)
    /// came with no answer owed (no expectation waiting for the server to send something),
    /// whatever its code: whether the code is the idle timeout's
    /// ([`idle::reads_as_idle_close`]) is the caller's to judge, and the notes name the
    /// others. `None` otherwise. Read at a server's Close, before it ends the stream; the
    /// caller leaves out our own close and a script with nothing left.
    ///
    /// Idle is the client's silence: the time since its last data frame (or the upgrade).
    /// A server that times out a silent client closes it whatever it pushed meanwhile (its
    /// heartbeats, a goodbye: Phoenix's, Slack's), and one whose timer counts its own
    /// frames too closes no sooner than that.
    fn idle_before(&self, cause: &Cause, now: Instant) -> Option<Duration> {
        if !matches!(cause, Cause::ServerClose(_)) || self.checker.awaits_answer() {
            return None;
        }
        let (last_used, seen) = self.last_used_and_seen(now)?;
        Some(seen.saturating_duration_since(last_used))
    }

    /// When the open connection was last used (its last request, or the upgrade), and
    /// when a server Close read `now` may have come: read as a pause begun since that use
    /// ends (within [`PAUSE_DRAINED`] of its end), as the pause began (the least idle
    /// time or age it may have been, never more than the connection really sat idle or
    /// lived). One read later than that came after the pause, when it was read.
    fn last_used_and_seen(&self, now: Instant) -> Option<(Instant, Instant)> {
        let open = self.open.as_ref()?;
        let last_request = self.last_send_at.map(|(_, actual)| actual);
        let last_used = last_request.map_or(open.upgraded_at, |r| r.max(open.upgraded_at));
        let seen = match open.paused_reads {
            Some((paused, resumed))
                if paused > last_used
                    && resumed
                        .checked_add(PAUSE_DRAINED)
                        .is_none_or(|drained| now <= drained) =>
            {
                paused.min(now)
            }
            _ => now,
        };
        Some((last_used, seen))
    }

    /// Whether something read `now` was read as a `pause_reads` ended (within
    /// [`PAUSE_DRAINED`] of the pause's end) behind data the server had sent while the
    /// client did not read: a backlog, what makes a reader slow. A Close alone after a
    /// pause found nothing queued (an early idle close is no slow-reader policy).
    fn read_as_pause_ended(&self, now: Instant) -> bool {
        let Some(open) = self.open.as_ref() else {
            return false;
        };
        let Some((_, resumed)) = open.paused_reads else {
            return false;
        };
        let drained = resumed
            .checked_add(PAUSE_DRAINED)
            .is_none_or(|drained| now <= drained);
        let backlog = open
            .last_data()
            .is_some_and(|last| last >= self.since_t0(resumed));
        drained && backlog
    }

    /// How long the connection had been open (since its 101) when the server's Close came:
    /// what a maximum connection lifetime is measured against. Read at a server's Close,
    /// before it ends the stream. A Close read after a `pause_reads` with no send since
    /// may have come as the pause began (as [`Self::idle_before`] reads it): the age is
    /// then the least it may have been, so that a late read never makes an early close
    /// look like the declared lifetime (a close at the lifetime may then read as early: a
    /// finding, never a bug hidden).
    fn age_at_close(&self, now: Instant) -> Option<Duration> {
        let (_, seen) = self.last_used_and_seen(now)?;
        let upgraded_at = self.open.as_ref()?.upgraded_at;
        Some(seen.saturating_duration_since(upgraded_at))
    }

    /// Whether the token this connection presents had expired by now, as its server may
    /// judge it ([`crate::auth::Token::expired_at`]: only a valid token stampede minted).
    /// Read when the server closes an attempt, so that the scenario's own `ttl` running
    /// out before its script is told from a finding.
    fn token_expired_now(&self) -> bool {
        let conn = &self.ctx.plan.conns[self.index];
        self.ctx
            .tokens
            .get(conn.token as usize)
            .is_some_and(|t| t.expired_at(std::time::SystemTime::now()))
    }

    /// Whether the server's Close with `close_code` ended the current attempt by its
    /// policy: shed it (a 1013, or a `reject.shed` code [`Judge::server_close`] marked),
    /// replaced it by another connection of its token (a `reject.replaced` code, marked
    /// too), closed it idle past `[oracles] idle_timeout` or at `[oracles] max_lifetime`
    /// (both marked by `on_frame`), once accepted; or closed it, accepted or not, after
    /// its token had expired (marked by `on_frame`: the scenario's `ttl` ran out, no
    /// finding). Read before `end_attempt` sets the attempt's cause.
    fn ended_by_policy(&self, close_code: Option<u16>) -> bool {
        let Some(code) = close_code else {
            return false;
        };
        self.attempts.last().is_some_and(|a| {
            let shed = (a.declared_shed || Cause::ServerClose(code).is_shed()) && !a.script_done;
            a.token_expired
                || (a.outcome == Outcome::Accepted
                    && (a.replaced
                        || a.closed_idle
                        || a.closed_at_lifetime
                        || a.closed_slow_reader
                        || shed))
        })
    }

    /// Whether the script has nothing left to send or expect on this attempt: no
    /// expectation open, and only a met expectation or pauses (think, pacing, paused
    /// reads) in progress and ahead, up to the script's end or its next close, reconnect or connect. A server
    /// closing then ends the connection as an ordinary end, not by shedding it: nothing it
    /// owed was withheld. Read at a server's Close only (it looks ahead in the script).
    fn script_done(&self) -> bool {
        let idle = |a: &Action| {
            matches!(
                a,
                Action::Think(_) | Action::PaceStart | Action::PaceAt(_) | Action::PauseReads(_)
            )
        };
        let ends = |a: &Action| {
            matches!(
                a,
                Action::Close { .. }
                    | Action::Reconnect { .. }
                    | Action::Connect
                    | Action::AbortHandshake { .. }
            )
        };
        if self.checker.has_pending() {
            return false;
        }
        // An expect step still in progress with nothing pending is met (its frames and
        // the Close can come in one read).
        let in_progress_idle = self.current.as_ref().is_none_or(|c| {
            matches!(c, Current::Expect { .. }) || idle(&c.to_action(&self.cursor))
        });
        let plan = &self.ctx.plan;
        let conn = &plan.conns[self.index];
        in_progress_idle
            && self
                .cursor
                .ahead(plan, conn, CUT_OFF_SCANNED, ends)
                .iter()
                .all(idle)
    }

    pub(super) fn end_attempt(&mut self, open: Open, cause: Cause, now: Instant) {
        if let Some(attempt) = self.attempts.last_mut() {
            if let Some(last) = open.last_data() {
                attempt.last_frame_us = Some(last);
            }
            let longest = open.silence.longest_us;
            attempt.silence_survived_us = (longest > 0).then_some(longest);
        }
        // A frame held at a rendezvous went with the stream.
        drop(open);
        if let Some(rare) = self.rare.as_mut() {
            rare.held = None;
        }
        // What comes after an unjudged send counts on the connection it went out on.
        let received = self.traffic.messages_received;
        if let Some(sent) = self.rare.as_mut().and_then(|r| r.after_unjudged.as_mut()) {
            sent.until_end.get_or_insert(received);
            // Only a connection that made such a send counts its strays.
            sent.strays_until_end
                .get_or_insert_with(|| self.checker.strays());
        }
        self.ctx.live.live.fetch_sub(1, Relaxed);
        let at_us = self.since_t0(now);
        let judge = Judge {
            rules: &self.ctx.plan.oracles.session,
        };
        let Some(attempt) = self.attempts.last_mut() else {
            return;
        };
        judge.ended(attempt, cause.clone(), at_us);
        // Closed by us while the server had not accepted it: what the server said last
        // is the answer (a welcome of another kind than `[oracles] accepted` names), for
        // the verdict's "see the answer line".
        let unaccepted = attempt.outcome == Outcome::Failed
            && matches!(attempt.cause, Some(Cause::ClientClose(_)));
        let said = self.said.as_mut().and_then(|s| s.pending.take());
        if let (true, None, Some(text)) = (unaccepted, &self.answer, said) {
            let detail = "closed by the client, not accepted; the server's last message".into();
            self.answer = Some(Box::new(Answer::new(cause, detail, text.as_bytes())));
        }
        if self.attempts.len() == 1 {
            self.note_first_closed_unaccepted();
        }
    }
}

impl ConnRun {
    /// The connection's first attempt just ended: when the server closed it after the
    /// upgrade before accepting it for breaking its protocol, with a valid token, it counts
    /// toward stopping a run whose script the target does not speak
    /// ([`crate::swarm::unreachable::closes_unusably`]). An auth refusal after the upgrade
    /// never counts: a server refusing valid tokens for a while (an auth backend starting,
    /// a key cache loading under a burst) is a finding the rest of the run must show.
    fn note_first_closed_unaccepted(&self) {
        let Some(attempt) = self.attempts.first() else {
            return;
        };
        let Some(Cause::ServerClose(code)) = attempt.cause else {
            return;
        };
        let unaccepted = matches!(attempt.outcome, Outcome::Rejected | Outcome::Failed)
            && attempt.upgraded_us.is_some()
            && !attempt.token_expired;
        if unaccepted
            && crate::swarm::unreachable::closes_unusably(code)
            && !may_be_refused(&self.ctx, self.index, attempt)
        {
            self.ctx.unreachable.closed_unaccepted(self.index);
        }
    }
}

/// The answer a Close frame that ended a pending attempt gives: its code as sent, and its
/// reason as the body (server-chosen text, escaped like any answer body).
fn close_answer(
    cause: &Cause,
    frame: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>,
) -> Answer {
    let detail = match cause {
        Cause::ServerClose(code) | Cause::InvalidClose(code) => format!("Close {code}"),
        _ => "Close".to_string(),
    };
    let reason = frame.map_or(&b""[..], |f| f.reason.as_bytes());
    Answer::new(cause.clone(), detail, reason)
}

/// Whether a server Close with `code` may be its policy for a slow reader: a normal or
/// going-away close, a policy violation (1008), "message too big" (1009), or an
/// application's own code (3000–4999). A 1011 (internal error) or a protocol or data
/// error says something else and stays what it is; a 1013 is load shedding already.
fn slow_reader_code(code: u16) -> bool {
    matches!(code, 1000 | 1001 | 1008 | 1009 | 3000..=4999)
}

enum Wake {
    Cancelled,
    Frame(Option<Result<Message, WsError>>),
    Timer,
}

/// Keeps the first error event's text the attempt was sent, and the first that refused a
/// request sent after acceptance (`refused_late`), for what the verdict quotes.
/// Out of line, as [`judged_in_band`]: off the per-record path of most runs.
#[cold]
#[inline(never)]
fn keep_first_error(said: &mut Option<Box<Said>>, text: &str, refused_late: bool) {
    let said = said.get_or_insert_with(Box::default);
    said.first_error
        .get_or_insert_with(|| Answer::quoted(text).into_boxed_str());
    if refused_late {
        said.first_error_accepted
            .get_or_insert_with(|| Answer::quoted(text).into_boxed_str());
    }
}

/// A record `text` read while the attempt is being judged (in-band acceptance): tells the
/// checker a valid token's attempt was accepted, and marks the connection refused in band
/// when the record was the declared refusal, the refusal kept as the server's answer.
/// Out of line: once or twice per attempt, where the per-record path runs per message.
#[cold]
#[inline(never)]
fn judged_in_band(
    ctx: &RunCtx,
    index: usize,
    attempts: &[Attempt],
    checker: &mut ConnChecker,
    open: &mut Option<Open>,
    answer: &mut Option<Box<Answer>>,
    text: &str,
) {
    if accepted_valid(ctx, index, attempts) {
        checker.authenticated();
    }
    if let (Some(o), true) = (open.as_mut(), refused_in_band(attempts)) {
        o.refused_in_band = true;
        // The refusal is the server's answer, as a refused upgrade's status is: shown on
        // the answer line.
        let cause = attempts.last().and_then(|a| a.cause.clone());
        if let (None, Some(cause)) = (answer.as_ref(), cause) {
            let detail = "refused in band".to_string();
            *answer = Some(Box::new(Answer::new(cause, detail, text.as_bytes())));
        }
    }
}

/// Whether the last attempt is accepted and its token (that of connection `index`) one a
/// correct server takes: what [`ConnChecker::authenticated`] needs.
///
/// [`ConnChecker::authenticated`]: crate::oracle::ConnChecker::authenticated
fn accepted_valid(ctx: &RunCtx, index: usize, attempts: &[Attempt]) -> bool {
    attempts
        .last()
        .is_some_and(|a| a.outcome == Outcome::Accepted && !may_be_refused(ctx, index, a))
}

/// Whether connection `index`'s token is one a correct server may refuse when attempt `a`
/// presented it ([`crate::oracle::session::may_be_refused`]: a forged token, a time
/// shift then invalid).
pub(super) fn may_be_refused(ctx: &RunCtx, index: usize, a: &Attempt) -> bool {
    ctx.plan
        .conns
        .get(index)
        .is_some_and(|c| crate::oracle::session::may_be_refused(&ctx.plan, c.token, a.started_us))
}

/// Whether the last attempt was just refused by the declared refusal message
/// ([`Cause::RefusedInBand`]).
fn refused_in_band(attempts: &[Attempt]) -> bool {
    attempts
        .last()
        .is_some_and(|a| matches!(a.cause, Some(Cause::RefusedInBand(_))))
}

/// [`ConnRun::note_data_frame`] on the fields it touches, for a caller that holds others.
fn note_data(
    ctx: &RunCtx,
    attempts: &mut [Attempt],
    open: &mut Option<Open>,
    samples: &mut SampleBuffer,
    now: Instant,
    event: Option<&str>,
) -> bool {
    let at_us = now.saturating_duration_since(ctx.t0).as_micros() as u64;
    let judge = Judge {
        rules: &ctx.plan.oracles.session,
    };
    let judged = |attempt: &mut Attempt| match event {
        Some(kind) if kind == ctx.plan.oracles.error_event => {
            judge.error_frame(attempt, at_us, kind)
        }
        _ => judge.data(attempt, at_us, event),
    };
    let Some(open) = open.as_mut() else {
        if let Some(attempt) = attempts.last_mut() {
            judged(attempt);
        }
        return false;
    };
    if open.judging {
        if let Some(attempt) = attempts.last_mut() {
            judged(attempt);
            open.judging = attempt.outcome == Outcome::Pending;
            if attempt.outcome == Outcome::Accepted {
                ctx.unreachable.accepted();
            }
        }
    }
    open.last_data_us = at_us;
    open.silence.data(at_us);
    if open.first_frame_seen {
        return false;
    }
    open.first_frame_seen = true;
    let elapsed = now.saturating_duration_since(open.upgraded_at);
    samples.add(Phase::FirstFrame, elapsed, now)
}

/// The parts of a connection that the records of one received frame update, borrowed
/// beside each other ([`ConnRun::read_records`]).
struct Reading<'r> {
    ctx: &'r RunCtx,
    index: usize,
    traffic: &'r mut Traffic,
    samples: &'r mut SampleBuffer,
    checker: &'r mut ConnChecker,
    open: &'r mut Option<Open>,
    attempts: &'r mut Vec<Attempt>,
    markers: &'r [String],
    said: &'r mut Option<Box<Said>>,
    answer: &'r mut Option<Box<Answer>>,
    rare: &'r mut Option<Box<Rare>>,
    /// The frame's text, as the server sent it.
    frame: &'r str,
    /// When the frame arrived.
    now: Instant,
}

impl Reading<'_> {
    /// A JSON record, read in place or as a tree: `true` when the sample buffer is due to
    /// be handed over.
    fn json<J: Tree>(&mut self, msg: &J) -> bool {
        let Reading {
            ctx,
            index,
            traffic,
            samples,
            checker,
            open,
            attempts,
            markers,
            said,
            answer,
            rare,
            frame,
            now,
        } = self;
        let (index, now) = (*index, *now);
        let spec = &ctx.plan.oracles;
        traffic.json_records += 1;
        let event = kind_of(spec, msg);
        traffic.kindless_records += u64::from(event.is_none());
        // One branch for the scenarios that answer nothing, nor wait to authenticate.
        if !ctx.plan.answers.is_empty() || rare.as_ref().is_some_and(|r| r.challenged.is_some()) {
            due_answers(ctx, index, open, rare, checker, msg, event.as_deref());
        }
        // An error event: what the checker's errored counts were before it, to tell after
        // it whether it refused a request sent after acceptance.
        let errored_before =
            (event.as_deref() == Some(spec.error_event.as_str())).then(|| checker.errored());
        let judging = open.as_ref().is_some_and(|o| o.judging);
        let mut due = note_data(ctx, attempts, open, samples, now, event.as_deref());
        if judging {
            judged_in_band(ctx, index, attempts, checker, open, answer, frame);
        }
        match marker_of(markers, msg) {
            Some(sent_us) => {
                let sent = super::super::later(ctx.t0, Duration::from_micros(sent_us));
                let latency = now.saturating_duration_since(sent);
                due |= samples.add(Phase::Turn, latency, now);
                checker.on_echo(msg, now);
            }
            None => checker.on_record(msg, event.as_deref(), now),
        }
        if let Some((errored, early)) = errored_before {
            // It settled an expectation opened after acceptance: a refusal of a request
            // that did not come too early.
            let (errored_now, early_now) = checker.errored();
            let late = errored_now > errored && early_now == early;
            // A framed protocol's record as read (STOMP's headers, escapes undone), not its
            // frame as written on the wire.
            if ctx.plan.oracles.framing.is_plain() {
                keep_first_error(said, frame, late);
            } else {
                keep_first_error(said, &msg.to_value().to_string(), late);
            }
        }
        due
    }

    /// A record that is not JSON: `true` when the sample buffer is due to be handed over.
    fn not_json(&mut self, text: &str) -> bool {
        self.traffic.non_json += 1;
        self.checker.on_unreadable(text);
        self.data_frame(None)
    }

    /// [`note_data`] of the frame, its record's kind `event`.
    fn data_frame(&mut self, event: Option<&str>) -> bool {
        note_data(
            self.ctx,
            self.attempts,
            self.open,
            self.samples,
            self.now,
            event,
        )
    }
}

/// The send time (µs since the run's start) an echoed flood frame carries in one of the
/// connection's marker fields (`markers`), as sent (text) or turned into a number.
fn marker_of<J: Tree>(markers: &[String], msg: &J) -> Option<u64> {
    markers.iter().find_map(|path| {
        let found = lookup(msg, path)?;
        match found.text() {
            Some(s) => s.parse().ok(),
            None => found.uint(),
        }
    })
}

/// Renders the answer of each `[[answer]]` rule whose `on` is `event` (the kind of
/// `record`, received on connection `index`), framed, into [`Rare::answers_due`], and marks
/// the connection to write them once the frame is handled. Nothing on a connection that is
/// not open.
fn due_answers(
    ctx: &RunCtx,
    index: usize,
    open: &mut Option<Open>,
    rare: &mut Option<Box<Rare>>,
    checker: &ConnChecker,
    record: &impl Tree,
    event: Option<&str>,
) {
    let (Some(event), Some(o)) = (event, open.as_mut()) else {
        return;
    };
    // The server's challenge: the held auth message goes out once this frame is handled.
    if let Some(r) = rare.as_mut() {
        if r.challenged.as_ref().is_some_and(|(kind, _)| kind == event) {
            r.auth_due = r.challenged.take().map(|(_, text)| text);
            o.answer_due = true;
        }
    }
    let plan = &ctx.plan;
    let Some(conn) = plan.conns.get(index) else {
        return;
    };
    for (i, rule) in plan.answers.iter().enumerate() {
        if rule.on != event {
            continue;
        }
        let rare = rare.get_or_insert_with(Box::default);
        if rare.answered.len() < plan.answers.len() {
            rare.answered.resize(plan.answers.len(), 0);
        }
        let Some(count) = rare.answered.get_mut(i) else {
            continue;
        };
        *count += 1;
        if let Some(text) =
            super::super::answer::render_answer(plan, conn, i, *count, record, &checker.captures)
        {
            rare.answers_due
                .push(framing::frame_out(&plan.oracles, text));
            o.answer_due = true;
        }
    }
}
