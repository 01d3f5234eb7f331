//! The probe phase: after the run (and a quiet period), reconnect with every valid token
//! used once more. A refusal means the server still holds a session nobody has: a leak,
//! the most common way a race leaves state behind (docs/race-patterns.md, "Leaked
//! sessions").

use super::RunCtx;
use crate::auth::UpgradeExtras;
use crate::model::{AcceptRule, Cause, ConnReport, Outcome, Placement, Probe};
use futures_util::{SinkExt, StreamExt};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Probes in flight at once: enough to be quick, few enough not to be a burst of its own.
const PARALLEL: usize = 32;
/// How long one probe may take to connect, at least ([`probe_bound`]).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connected probe waits for a policy close, and then for its own close.
const PROBE_ANSWER: Duration = Duration::from_millis(500);
/// The probe phase ends at the latest this long after the run's planned duration (quiet
/// period included): `duration` + `TAIL` bounds the whole run. Probes still in flight
/// then, and tokens not probed yet, are inconclusive: they prove nothing either way.
pub const TAIL: Duration = Duration::from_secs(5);

/// Probes every valid token that some attempt used (once, however many slots share it),
/// after the liveness `grace` when any attempt ended uncleanly and after its `cleanup` in
/// any case (the server may still be cleaning up, by its design after a clean close). Stops at `deadline` or when
/// `cancel` fires (Ctrl-C): what was not answered by then is recorded as inconclusive
/// (`Cause::Interrupted`, never a leak).
pub(super) async fn run(
    ctx: &std::sync::Arc<RunCtx>,
    reports: &[ConnReport],
    liveness: crate::model::LivenessSpec,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Vec<Probe> {
    // Only tokens the server may have held a session for: accepted, or fate unknown.
    let used: BTreeSet<u32> = reports
        .iter()
        .filter(|r| {
            r.attempts
                .iter()
                .any(|a| a.outcome == Outcome::Accepted || a.indeterminate())
        })
        .map(|r| r.token)
        .collect();
    // Each token is presented the way its first connection presented it; one pass, not a
    // search per token.
    let mut placements = BTreeMap::new();
    for conn in &ctx.plan.conns {
        placements.entry(conn.token).or_insert_with(|| {
            let (placement, extras) = super::upgrade_of(ctx, conn);
            (placement.into_owned(), extras.into_owned())
        });
    }
    // One probe per token, not per slot: slots that share a token (fewer tokens in a
    // source than slots, reused in turn) share its label, and probes of one token at once
    // are concurrent uses of it that a server allowing one session per token refuses.
    let mut labels: BTreeSet<&str> = BTreeSet::new();
    let mut queue: VecDeque<(u32, (Placement, UpgradeExtras))> = used
        .into_iter()
        .filter(|slot| {
            ctx.tokens
                .get(*slot as usize)
                .is_some_and(|t| !t.must_reject() && t.is_placed() && labels.insert(t.jti.as_str()))
        })
        .map(|slot| {
            let placement = placements
                .get(&slot)
                .cloned()
                .unwrap_or_else(|| (ctx.plan.auth.placement.clone(), ctx.extras.clone()));
            (slot, placement)
        })
        .collect();
    let unclean = reports
        .iter()
        .flat_map(|r| &r.attempts)
        .any(|a| !a.clean_end && a.outcome != Outcome::Rejected);
    let quiet = match unclean {
        true => liveness.grace.max(liveness.cleanup),
        false => liveness.cleanup,
    };
    let mut stopped = false;
    if !quiet.is_zero() && !queue.is_empty() {
        let quiet_end = (Instant::now() + quiet).min(deadline);
        stopped = tokio::select! {
            biased;
            _ = cancel.cancelled() => true,
            _ = sleep_until(quiet_end) => Instant::now() >= deadline,
        };
    }
    let bound = probe_bound(reports, ctx.plan.limits.handshake_timeout);
    let mut tasks = JoinSet::new();
    // Slots in flight, so the ones cut by the deadline can be named.
    let mut in_flight: BTreeSet<u32> = BTreeSet::new();
    let mut out = Vec::new();
    while !stopped {
        while tasks.len() < PARALLEL {
            let Some((slot, placement)) = queue.pop_front() else {
                break;
            };
            in_flight.insert(slot);
            tasks.spawn(probe_one(ctx.clone(), slot, placement, bound));
        }
        if tasks.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => stopped = true,
            _ = sleep_until(deadline) => stopped = true,
            joined = tasks.join_next() => match joined {
                Some(Ok(p)) => {
                    in_flight.remove(&p.token);
                    out.push(p);
                }
                // A probe task that panicked (a bug here) stays "in flight": inconclusive.
                Some(Err(e)) => tracing::error!(error = %e, "probe task failed"),
                None => break,
            },
        }
    }
    // Dropping the set aborts what is still in flight.
    tasks.abort_all();
    let at_us = ctx.t0.elapsed().as_micros() as u64;
    let cut = in_flight
        .into_iter()
        .chain(queue.into_iter().map(|(slot, _)| slot))
        .filter_map(|slot| ctx.tokens.get(slot as usize).map(|t| (slot, t)))
        .map(|(slot, token)| Probe {
            token: slot,
            jti: token.jti.clone(),
            accepted: false,
            cause: Some(Cause::Interrupted),
            at_us,
            expired: false,
            rate_limited: false,
            held: false,
        });
    out.extend(cut);
    out.sort_by_key(|p| p.token);
    out
}

/// How long one probe may take to connect: [`PROBE_TIMEOUT`], or, against a server the
/// load saw take longer over a handshake that succeeded, twice the slowest such
/// handshake, up to the scenario's `handshake_timeout`: a probe bounded more tightly than
/// the server was seen to need proves nothing about it.
fn probe_bound(reports: &[ConnReport], handshake_timeout: Duration) -> Duration {
    let slowest = reports
        .iter()
        .flat_map(|r| &r.attempts)
        .filter_map(|a| a.upgraded_us.map(|up| up.saturating_sub(a.started_us)))
        .max()
        .unwrap_or(0);
    let wanted = Duration::from_micros(slowest.saturating_mul(2)).min(handshake_timeout);
    PROBE_TIMEOUT.max(wanted)
}

/// The wait an HTTP 429 or 503 refusal asked for in its `Retry-After` (delta-seconds),
/// when it is no longer than the probe phase's whole [`TAIL`]; `None` for any other
/// answer.
fn retry_after<T>(result: &Result<T, super::dial::DialFailure>) -> Option<Duration> {
    let failure = result.as_ref().err()?;
    if !matches!(failure.cause, Cause::Http(429 | 503)) {
        return None;
    }
    let wait = Duration::from_secs(u64::from(failure.answer.as_ref()?.retry_after_s?));
    (wait <= TAIL).then_some(wait)
}

/// Records a probe reads, at most, waiting for the server's challenge or acceptance.
const CHALLENGE_FRAMES: usize = 8;

/// One read of a probe, waited for at most [`PROBE_ANSWER`].
type Read = Result<
    Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    tokio::time::error::Elapsed,
>;

/// What one read of a probe held: the kinds of a text frame's records, in order (`None`
/// for a record of no kind, or not JSON; none for a frame of the framing's own packets,
/// a heart-beat), another data frame, a Close, nothing within [`PROBE_ANSWER`], or the
/// end of the stream (the read failed, or the connection ended).
enum Seen {
    /// The kinds, and whether the frame's text says a session is still held
    /// ([`crate::oracle::takeover::reads_as_held`]).
    Records(Vec<Option<String>>, bool),
    Other,
    Close(Message),
    Waited,
    Ended,
}

impl Seen {
    /// Whether a record of kind `kind` came.
    fn holds(&self, kind: &str) -> bool {
        matches!(self, Seen::Records(kinds, _) if kinds.iter().flatten().any(|k| k == kind))
    }
}

/// [`Seen`] of `read`, and whether the frame asked for a heart-beat answer: records read
/// as the run reads them (the framing's packets decoded, split on the record separator,
/// batches opened), so that a probe of a Socket.IO or STOMP server sees its `connect` or
/// `CONNECTED` as the run did.
fn seen(read: Read, spec: &crate::model::OracleSpec) -> (Seen, bool) {
    match read {
        Ok(Some(Ok(Message::Text(text)))) => {
            let (kinds, ping) = kinds_in(spec, text.as_str());
            let held = crate::oracle::takeover::reads_as_held(None, text.as_str());
            (Seen::Records(kinds, held), ping)
        }
        Ok(Some(Ok(close @ Message::Close(_)))) => (Seen::Close(close), false),
        Ok(Some(Ok(_))) => (Seen::Other, false),
        Err(_) => (Seen::Waited, false),
        Ok(Some(Err(_)) | None) => (Seen::Ended, false),
    }
}

/// The kinds of the records in text frame `text`, as the oracles read them, and whether
/// it asked for a heart-beat answer ([`crate::oracle::framing::decode`]).
fn kinds_in(spec: &crate::model::OracleSpec, text: &str) -> (Vec<Option<String>>, bool) {
    use crate::oracle::frame::{for_each_frame_record, kind_of, Record};
    use std::borrow::Cow;
    let mut kinds = Vec::new();
    let transport = for_each_frame_record(spec, text, |record| {
        kinds.push(match record {
            Record::Flat(msg) => kind_of(spec, &msg).map(Cow::into_owned),
            Record::Json(msg) => kind_of(spec, &msg).map(Cow::into_owned),
            Record::Text(_) => None,
        });
    });
    (kinds, transport.ping)
}

/// Reads one frame within [`PROBE_ANSWER`]: what it held, a heart-beat request answered
/// as the run answers it (a Socket.IO server closes a client that leaves its pings
/// unanswered, and that close is no refusal of the token).
async fn read_seen<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    spec: &crate::model::OracleSpec,
) -> Seen
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (seen, ping) = seen(timeout(PROBE_ANSWER, ws.next()).await, spec);
    if ping {
        if let Some(answer) = crate::oracle::framing::answer(spec.framing) {
            let _ = timeout(PROBE_ANSWER, ws.send(Message::Text(answer.into()))).await;
        }
    }
    seen
}

/// Reads until the server's record of kind `kind` (the challenge the run's first message
/// waited for), within [`CHALLENGE_FRAMES`] reads of [`PROBE_ANSWER`] each (a slow
/// challenge is waited for): `None` once it came (or the wait ran out: the message goes
/// anyway, as nothing else would tell), or the Close that ended it first, for the refusal
/// check.
async fn challenge<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    kind: &str,
    spec: &crate::model::OracleSpec,
) -> Option<Message>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for _ in 0..CHALLENGE_FRAMES {
        match read_seen(ws, spec).await {
            seen if seen.holds(kind) => return None,
            Seen::Close(close) => return Some(close),
            Seen::Ended => return None,
            Seen::Records(..) | Seen::Other | Seen::Waited => {}
        }
    }
    None
}

async fn probe_one(
    ctx: std::sync::Arc<RunCtx>,
    slot: u32,
    (placement, extras): (Placement, UpgradeExtras),
    bound: Duration,
) -> Probe {
    let token = &ctx.tokens[slot as usize];
    // As the dial starts: a server judges `exp` when the token arrives.
    let expired = token.expired_at(std::time::SystemTime::now());
    let placement = &placement;
    // Bounded on its own: an unanswered probe is inconclusive (only a clean refusal counts
    // as a leak), so there is no point waiting out a long handshake timeout, unless the
    // load saw the server take that long ([`probe_bound`]).
    // Its phases are not the run's: a probe times nothing.
    let dial = || async {
        let mut phases = Vec::new();
        let dial = ctx
            .dialer
            .dial(token, (placement, &extras), None, &mut phases);
        match timeout(bound, dial).await {
            Ok(dialed) => dialed.result,
            Err(_) => Err(super::dial::DialFailure::failed(Cause::Timeout("probe"))),
        }
    };
    let mut result = dial().await;
    // Shed with a `Retry-After` the probe phase can wait out: waited, and tried once more
    // (a shed probe proves nothing). The phase's deadline aborts a wait that outlasts it.
    if let Some(wait) = retry_after(&result) {
        tokio::time::sleep(wait).await;
        result = dial().await;
    }
    let mut rate_limited = false;
    // The refusal said the session is still held, in its code or its words.
    let mut held = false;
    let (accepted, cause) = match result {
        Ok(mut ws) => {
            // In-band auth: present the token the same way the run did, after the
            // server's challenge when the run waited for one (a Close instead is the
            // answer read below).
            // Every wait is bounded: a server that stops reading must not hold the probe.
            let mut ended = None;
            if let Some(text) = crate::auth::first_message(placement, token) {
                if let Placement::FirstMessage {
                    after: Some(kind), ..
                } = placement
                {
                    ended = challenge(&mut ws, kind, &ctx.plan.oracles).await;
                }
                let text = crate::oracle::framing::frame_out(&ctx.plan.oracles, text);
                if ended.is_none() {
                    let _ = timeout(PROBE_ANSWER, ws.send(Message::Text(text.into()))).await;
                }
            }
            // Accepted by a message (`[oracles] accepted = { message = KIND }`): only that
            // message accepts; the frames before it (a greeting, a challenge) are no
            // answer, and none at all within the bound proves nothing.
            let answered = match &ctx.plan.oracles.session.accepted {
                AcceptRule::Message { event } => {
                    let (answer, said_held) =
                        by_message(&mut ws, ended, event, &ctx.plan.oracles).await;
                    held |= said_held;
                    answer
                }
                _ => {
                    // A policy close as the first frame is a refusal too; so is one right
                    // after a first frame that reads as an auth refusal (ActionCable's
                    // `{"type":"disconnect","reason":"unauthorized"}`, then Close 1000),
                    // which an acceptance by the first frame would count as taken.
                    let mut first = match ended {
                        Some(frame) => Ok(Some(Ok(frame))),
                        None => timeout(PROBE_ANSWER, ws.next()).await,
                    };
                    if let Ok(Some(Ok(Message::Text(text)))) = &first {
                        if crate::oracle::refusal::reads_as_auth_refusal(text.as_str()) {
                            held |= crate::oracle::takeover::reads_as_held(None, text.as_str());
                            first = timeout(PROBE_ANSWER, ws.next()).await;
                        }
                    }
                    match first {
                        Ok(Some(Ok(frame @ Message::Close(Some(_))))) => Answer::Refused(frame),
                        _ => Answer::Accepted,
                    }
                }
            };
            let refused = match answered {
                Answer::Accepted => None,
                Answer::InBand(kind) => Some(Cause::RefusedInBand(kind)),
                Answer::Unanswered => Some(Cause::Timeout("probe")),
                Answer::Refused(Message::Close(Some(f))) => {
                    let cause = super::dial::close_cause(&ws, Some(&f));
                    rate_limited = matches!(cause, Cause::ServerClose(code)
                        if crate::oracle::shedding::reads_as_rate_limit(code, &f.reason));
                    let code = match cause {
                        Cause::ServerClose(code) => Some(code),
                        _ => None,
                    };
                    held |= crate::oracle::takeover::reads_as_held(code, &f.reason);
                    Some(cause)
                }
                // A bare Close: no word of refusal, and no acceptance either.
                Answer::Refused(_) => Some(Cause::Timeout("probe")),
            };
            let _ = timeout(PROBE_ANSWER, ws.close(None)).await;
            let _ = timeout(PROBE_ANSWER, ws.flush()).await;
            (refused.is_none(), refused)
        }
        Err(f) => (false, Some(f.cause)),
    };
    // Said with the answer only: text that said so before a connection cut without a word
    // is no refusal.
    let held = held
        && !rate_limited
        && matches!(cause, Some(Cause::ServerClose(_) | Cause::RefusedInBand(_)));
    Probe {
        token: slot,
        jti: token.jti.clone(),
        accepted,
        cause,
        at_us: ctx.t0.elapsed().as_micros() as u64,
        expired,
        rate_limited,
        held,
    }
}

/// How the server answered a probe.
enum Answer {
    /// The `[oracles] accepted` message came.
    Accepted,
    /// A Close came first: judged as any first frame is.
    Refused(Message),
    /// The declared refusal message (`[oracles] reject.message`) came first.
    InBand(String),
    /// Neither within [`CHALLENGE_FRAMES`] reads of [`PROBE_ANSWER`] each (a slow
    /// acceptance is waited for), or the stream ended first.
    Unanswered,
}

/// Reads until the record of kind `accept` (accepted), the declared refusal message or a
/// Close (refused; `ended`: the Close the challenge's wait already read), or the bound
/// runs out (unanswered): what a server accepting by a message answered the probe, and
/// whether a frame of its refusal said the session is still held. Of a frame of several
/// records, the first that accepts or refuses decides.
async fn by_message<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    ended: Option<Message>,
    accept: &str,
    spec: &crate::model::OracleSpec,
) -> (Answer, bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Some(close) = ended {
        return (Answer::Refused(close), false);
    }
    let refusal = spec.session.reject.message.as_deref();
    // Whether a frame before the answer said the session is still held (an error record
    // the scenario does not declare as its refusal, then a Close).
    let mut said_held = false;
    for _ in 0..CHALLENGE_FRAMES {
        match read_seen(ws, spec).await {
            Seen::Records(kinds, held) => {
                said_held |= held;
                let decides = kinds
                    .into_iter()
                    .flatten()
                    .find(|k| k == accept || Some(k.as_str()) == refusal);
                match decides {
                    Some(k) if k == accept => return (Answer::Accepted, false),
                    Some(k) => return (Answer::InBand(k), said_held),
                    None => {}
                }
            }
            Seen::Close(close) => return (Answer::Refused(close), said_held),
            Seen::Ended => return (Answer::Unanswered, false),
            Seen::Other | Seen::Waited => {}
        }
    }
    (Answer::Unanswered, false)
}
