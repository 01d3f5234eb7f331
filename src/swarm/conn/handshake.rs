//! Opening and ending a connection: dial (with retries and reconnects), the aborted
//! handshake, and the goodbye of an interrupted run.

use super::*;
use crate::auth::Token;
use crate::model::TokenSource;
use crate::swarm::dial::Dialed;
use crate::swarm::login::LoginError;

/// What a dial's login step gave.
enum Login {
    /// The slot's own token is presented (no login source, or a forged slot).
    NotNeeded,
    /// The token the login returned.
    Token(Token),
    /// The login failed or the run ended during it; the attempt is recorded.
    Failed,
}

impl ConnRun {
    /// The run is over: say goodbye (1001, going away) without waiting long for the reply.
    pub(super) async fn close_interrupted(&mut self) {
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
            .end_stream(StreamEnd::Cut, "run ended", None, now);
        self.end_attempt(open, Cause::Interrupted, now);
    }

    /// Dials once, then once more after each backoff delay while the dial fails. A dial
    /// that gets through with delays left keeps them, and where the script resumes, for
    /// [`ConnRun::retry_unaccepted`]: an attempt the server ends before accepting it (a
    /// Close 1013 while it cleans up the previous session) is a failed attempt too.
    pub(super) async fn connect(&mut self, backoff: &[Duration]) -> bool {
        if let Some(rare) = self.rare.as_mut() {
            rare.retry = None;
        }
        let mut delays = backoff.iter();
        loop {
            if self.dial().await {
                if !delays.as_slice().is_empty() {
                    let retry = super::Retry {
                        cursor: self.cursor.clone(),
                        delays: delays.as_slice().to_vec(),
                    };
                    self.rare().retry = Some(retry);
                }
                return true;
            }
            let Some(delay) = delays.next() else {
                return false;
            };
            if let Some(failed) = self.attempts.last_mut() {
                failed.retried = true;
            }
            if self
                .sleep_until(super::super::later(Instant::now(), *delay))
                .await
                == Stop::Cancelled
            {
                return false;
            }
        }
    }

    /// After a `reconnect` with a `backoff` whose dial got through: when the server ended
    /// that attempt before accepting it (a refusal, a Close 1013 or 4409 while it cleans
    /// up the previous session, a reset), waits the next delay, puts the script back at
    /// the step after the `reconnect` and connects again, as a dial that failed would.
    /// `Some(connected)` when it tried; `None` when there was nothing to try (the attempt
    /// was accepted, we ended it, or no delay is left).
    pub(super) async fn retry_unaccepted(&mut self) -> Option<bool> {
        let retry = self.rare.as_mut()?.retry.take()?;
        let last = self.attempts.last()?;
        let by_server = matches!(last.outcome, Outcome::Rejected | Outcome::Failed)
            && !matches!(
                last.cause,
                None | Some(Cause::ClientClose(_) | Cause::Interrupted)
            );
        if !by_server {
            return None;
        }
        let (first, rest) = retry.delays.split_first()?;
        if let Some(ended) = self.attempts.last_mut() {
            ended.retried = true;
        }
        if self
            .sleep_until(super::super::later(Instant::now(), *first))
            .await
            == Stop::Cancelled
        {
            return Some(false);
        }
        self.cursor = retry.cursor;
        self.current = None;
        Some(self.connect(rest).await)
    }

    pub(super) async fn reconnect(&mut self, after: Duration, backoff: &[Duration]) -> bool {
        if self.open.is_some() {
            self.close(1000).await;
        }
        if self
            .sleep_until(super::super::later(Instant::now(), after))
            .await
            == Stop::Cancelled
        {
            return false;
        }
        self.connect(backoff).await
    }

    pub(super) async fn dial(&mut self) -> bool {
        let ctx = self.ctx.clone();
        let plan = &ctx.plan.conns[self.index];
        // The login exchange and the in-band first message are boxed: their states would
        // otherwise sit in every dial's state, and every connection of a burst is dialing
        // at once (the peak the allocator then keeps).
        let logged_in = match Box::pin(self.login()).await {
            Login::NotNeeded => None,
            Login::Token(token) => Some(token),
            Login::Failed => return false,
        };
        let token = logged_in
            .as_ref()
            .unwrap_or(&ctx.tokens[plan.token as usize]);
        let (placement, extras) = super::super::upgrade_of(&ctx, plan);
        let placement = placement.as_ref();
        let started = Instant::now();
        // Only the first connect of a collide connection waits on its barrier.
        let barrier = match (plan.barrier, self.attempts.is_empty()) {
            (Some(b), true) => ctx.barriers.get(b as usize).cloned(),
            _ => None,
        };
        let mut phases = Vec::with_capacity(3);
        let dialing = ctx
            .dialer
            .dial(token, (placement, extras.as_ref()), barrier, &mut phases);
        // Boxed: the handshake's large state lives only while dialing, not in every idle
        // connection's task for its whole life. The run ending (duration, Ctrl-C) stops a
        // handshake in progress too; its fate on the server is then unknown.
        let dialed = tokio::select! {
            biased;
            _ = self.stop.token().cancelled() => None,
            dialed = Box::pin(dialing) => Some(dialed),
        };
        // Kept now, handed over at the end: the dial's result (the whole WebSocket) must
        // not be alive across a wait, or it is part of every dial's state. A cut dial's
        // completed phases (its TCP connect) count too.
        let now = Instant::now();
        let mut due = false;
        for (phase, d) in phases {
            if phase == Phase::Tls {
                // A TLS handshake went through: the client takes the certificate.
                ctx.unreachable.certificate_taken();
            }
            due |= self.samples.add(phase, d, now);
        }
        let Some(Dialed {
            result,
            released_at,
        }) = dialed
        else {
            // Cut: the server's answer (and any session it holds) is unknown.
            let mut attempt = Attempt::new(self.since_t0(started));
            let judge = Judge {
                rules: &ctx.plan.oracles.session,
            };
            judge.cut(&mut attempt, self.since_t0(now));
            self.push_attempt(attempt);
            if due {
                Box::pin(self.samples.flush()).await;
            }
            return false;
        };
        if let Some(at) = released_at {
            let released = self.since_t0(at);
            self.rare().released_us = Some(released);
        }
        let mut attempt = Attempt::new(self.since_t0(started));
        let now_us = self.since_t0(Instant::now());
        let judge = Judge {
            rules: &ctx.plan.oracles.session,
        };
        let connected = match result {
            Ok(ws) => {
                ctx.live.live.fetch_add(1, Relaxed);
                ctx.unreachable.connected();
                ctx.unreachable.upgraded();
                self.checker.reset_stream();
                self.last_send_at = None;
                judge.upgraded(&mut attempt, now_us);
                if !super::frames::may_be_refused(&ctx, self.index, &attempt) {
                    ctx.unreachable.upgraded_valid();
                }
                if attempt.outcome == Outcome::Accepted {
                    ctx.unreachable.accepted();
                }
                self.push_attempt(attempt);
                let now = Instant::now();
                let open = Open {
                    ws,
                    upgraded_at: now,
                    paused_reads: None,
                    first_frame_seen: false,
                    judging: true,
                    refused_in_band: false,
                    ping_due: false,
                    answer_due: false,
                    sent_now: false,
                    sent_unread: false,
                    last_data_us: NO_DATA,
                    silence: Silence::since(self.since_t0(now)),
                    closing: None,
                };
                self.open = Some(open);
                // In-band auth: the token's first message goes out before anything else, or,
                // `after` the server's challenge, once that comes (`Rare::challenged`).
                if let Some(text) = crate::auth::first_message(placement, token) {
                    // Framed as every scripted send (SignalR's separator, Socket.IO's packet).
                    let text = crate::oracle::framing::frame_out(&ctx.plan.oracles, text);
                    match placement {
                        crate::model::Placement::FirstMessage {
                            after: Some(kind), ..
                        } => {
                            let rare = self.rare();
                            // The attempt before this one ended with its login held.
                            if rare.challenged.replace((kind.clone(), text)).is_some() {
                                rare.logins_unsent += 1;
                            }
                        }
                        _ => Box::pin(self.send_text(text)).await,
                    }
                }
                self.open.is_some()
            }
            Err(failure) => {
                match &failure.cause {
                    Cause::Connect(kind) if kind == "refused" => ctx.unreachable.refused(),
                    // Not connected, or nothing said about the target.
                    Cause::Connect(_) | Cause::LoginFailed => {}
                    cause if cause.is_client_side() => {}
                    _ => ctx.unreachable.connected(),
                }
                self.answer = self.answer.take().or(failure.answer);
                judge.dial_failed(&mut attempt, failure.cause, failure.rejected, now_us);
                // A refusal of a token past its `exp` (a reconnect late in a script longer
                // than `ttl`) is the scenario's own misconfiguration, not a finding.
                attempt.token_expired = attempt.outcome == Outcome::Rejected
                    && !attempt.is_shed()
                    && token.expired_at(std::time::SystemTime::now());
                // An HTTP status that is no refusal (a redirect, a 200 page) is an answer.
                let answered = matches!(attempt.cause, Some(Cause::Http(_)));
                if attempt.outcome == Outcome::Failed && !answered {
                    ctx.live.unanswered.fetch_add(1, Relaxed);
                }
                if self.attempts.is_empty() && self.refused_valid_token(&attempt) {
                    ctx.unreachable.auth_refused(self.index);
                }
                if self.attempts.is_empty() && matches!(attempt.cause, Some(Cause::Http(404 | 410)))
                {
                    ctx.unreachable.not_found(self.index);
                }
                if failure.certificate_refused {
                    ctx.unreachable.certificate_refused();
                }
                match &attempt.cause {
                    Some(Cause::Http(_)) => ctx.unreachable.upgrade_answered(),
                    Some(Cause::Timeout("upgrade")) if self.attempts.is_empty() => {
                        ctx.unreachable.upgrade_unanswered(self.index)
                    }
                    _ => {}
                }
                self.push_attempt(attempt);
                false
            }
        };
        if due {
            Box::pin(self.samples.flush()).await;
        }
        connected
    }

    /// Whether `attempt`, which did not get its 101, presented a token a correct server
    /// takes and was refused as unauthorized (HTTP 401, 403 or a status `[oracles]
    /// reject.http` declares), its token not past its `exp`: what a wrong secret does.
    fn refused_valid_token(&self, attempt: &Attempt) -> bool {
        let reject = &self.ctx.plan.oracles.session.reject;
        let refusal = |c: &Cause| crate::oracle::verdict::is_auth_refusal(reject, c);
        attempt.outcome == Outcome::Rejected
            && !attempt.token_expired
            && matches!(&attempt.cause, Some(c @ Cause::Http(_)) if refusal(c))
            && !super::frames::may_be_refused(&self.ctx, self.index, attempt)
    }

    /// With a login source, the token a login request returns now (timed as the `login`
    /// phase). A failed login (or the run ending during it) is recorded as this dial's
    /// attempt, `login_failed` (or cut): the upgrade was never tried.
    async fn login(&mut self) -> Login {
        let ctx = self.ctx.clone();
        let plan = &ctx.plan.conns[self.index];
        let Some(token) = ctx.tokens.get(plan.token as usize) else {
            return Login::NotNeeded;
        };
        let Some(TokenSource::Login(spec)) = ctx
            .plan
            .auth
            .tokens
            .as_ref()
            .filter(|_| token.needs_login())
        else {
            return Login::NotNeeded;
        };
        let group = ctx.plan.group_name(plan);
        let vars = crate::plan::Vars {
            user: plan.user,
            conn: plan.id,
            group: &group,
            sub: &token.sub,
            feed: ctx.plan.feed_of(plan),
        };
        let started = Instant::now();
        let judge = Judge {
            rules: &ctx.plan.oracles.session,
        };
        let mut attempt = Attempt::new(self.since_t0(started));
        let fetched = tokio::select! {
            biased;
            _ = self.stop.token().cancelled() => {
                judge.cut(&mut attempt, self.since_t0(Instant::now()));
                self.push_attempt(attempt);
                return Login::Failed;
            }
            // Boxed: the login exchange's state (its read buffer, a TLS handshake) is
            // large, and inline it would be part of every connect's state, logins or not.
            fetched = Box::pin(super::super::login::fetch(spec, &vars, ctx.dialer.login_tls.as_ref())) => fetched,
        };
        match fetched {
            Ok(value) => {
                self.record(Phase::Login, started.elapsed()).await;
                let token = token.with_value(value);
                self.note_login(&token);
                Login::Token(token)
            }
            Err(e) => {
                let detail = e.to_string();
                let body = match &e {
                    LoginError::Status(_, body) => body.as_slice(),
                    _ => b"",
                };
                self.answer = self
                    .answer
                    .take()
                    .or_else(|| Some(Box::new(Answer::new(Cause::LoginFailed, detail, body))));
                let now_us = self.since_t0(Instant::now());
                judge.dial_failed(&mut attempt, Cause::LoginFailed, false, now_us);
                self.push_attempt(attempt);
                Login::Failed
            }
        }
    }

    /// Sends the upgrade request, waits, then drops the socket: the handshake abort pattern.
    pub(super) async fn abort_handshake(&mut self, after: Duration, rst: bool) {
        let ctx = self.ctx.clone();
        let plan = &ctx.plan.conns[self.index];
        // Boxed, as in `dial`: the login exchange's state stays out of this one.
        let logged_in = match Box::pin(self.login()).await {
            Login::NotNeeded => None,
            Login::Token(token) => Some(token),
            Login::Failed => return,
        };
        let token = logged_in
            .as_ref()
            .unwrap_or(&ctx.tokens[plan.token as usize]);
        let (placement, extras) = super::super::upgrade_of(&ctx, plan);
        let placement = placement.as_ref();
        let mut attempt = Attempt::new(self.since_t0(Instant::now()));
        let mut phases = Vec::with_capacity(2);
        let aborting = ctx.dialer.abort(
            token,
            (placement, extras.as_ref()),
            (after, rst),
            &mut phases,
        );
        // The run ending stops it too: its fate on the server is then unknown.
        let aborted = tokio::select! {
            biased;
            _ = self.stop.token().cancelled() => None,
            aborted = Box::pin(aborting) => Some(aborted),
        };
        for (phase, d) in phases {
            self.record(phase, d).await;
        }
        let Some(aborted) = aborted else {
            let now_us = self.since_t0(Instant::now());
            let judge = Judge {
                rules: &ctx.plan.oracles.session,
            };
            judge.aborted(&mut attempt, Cause::Interrupted, now_us);
            self.push_attempt(attempt);
            return;
        };
        let now_us = self.since_t0(Instant::now());
        let judge = Judge {
            rules: &ctx.plan.oracles.session,
        };
        match aborted.result {
            Ok(answered) => {
                attempt.upgraded_us = answered.then_some(now_us);
                judge.aborted(&mut attempt, Cause::Aborted { rst }, now_us);
            }
            Err(failure) => {
                self.answer = self.answer.take().or(failure.answer);
                judge.dial_failed(&mut attempt, failure.cause, failure.rejected, now_us)
            }
        }
        self.push_attempt(attempt);
    }
}
