//! One accepted connection: client frames in, runs started, events out.
//!
//! Every server frame goes through one bounded queue ([`Outbox`]) and is
//! written by this task alone, which stamps `seq`: so `seq` grows by exactly one
//! in wire order. Producers never wait: a push into a full queue flags an
//! overflow, and the connection ends with an explicit `queue_overflow` error
//! and close 1013 instead of a silent drop.
//!
//! Reading and writing share this one task, so nothing can reach the wire
//! between "the client's Close was read" and "the `jti` was released": a client
//! that has seen the server's Close can reconnect with the same token at once.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::{sleep_until, timeout, Instant, Sleep};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::bugs::Bug;
use super::conn::close_with;
use super::protocol::{self, Event, RunContext, UserMessage};
use super::registry::JtiGuard;
use super::run::{self, RunTiming};
use super::stats::{Counter, Stats};
use super::Shared;

/// How long closing a connection may take (sending Close, awaiting the reply).
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Events written before one flush.
const WRITE_BATCH: usize = 64;

/// An accepted connection, ready to run.
pub(crate) struct Session {
    pub conn_id: u64,
    /// The token's `sub`: every event of this connection carries it.
    pub user: Arc<str>,
    pub guard: Option<JtiGuard>,
    /// Planted bug `early-message-drop`: until then frames are dropped and
    /// `connection_established` is held back.
    pub ready_at: Option<Instant>,
}

/// The producer side of a connection's outbound queue.
pub(crate) struct Outbox {
    tx: mpsc::Sender<Event>,
    overflow: CancellationToken,
    flagged: AtomicBool,
    stats: Arc<Stats>,
}

impl Outbox {
    /// Queues an event; false if the connection is over (overflow or gone).
    pub(crate) fn push(&self, event: Event) -> bool {
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                if !self.flagged.swap(true, Ordering::AcqRel) {
                    self.stats.bump(Counter::Overflow);
                    self.overflow.cancel();
                }
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    fn overflowed(&self) -> bool {
        self.overflow.is_cancelled()
    }

    /// A queue of `capacity` not tied to any connection, and its consumer (unit tests).
    #[cfg(test)]
    pub(crate) fn detached(capacity: usize) -> (Arc<Outbox>, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let outbox = Outbox {
            tx,
            overflow: CancellationToken::new(),
            flagged: AtomicBool::new(false),
            stats: Arc::new(Stats::new()),
        };
        (Arc::new(outbox), rx)
    }
}

/// Stamps `seq` on each frame in the order it is handed to the socket.
struct Writer {
    seq: u64,
    stats: Arc<Stats>,
}

impl Writer {
    fn frame(&mut self, event: Event) -> Message {
        let text = protocol::encode(event, self.seq);
        self.seq += 1;
        self.stats.event_sent();
        Message::text(text)
    }
}

enum Step {
    Shutdown,
    Overflow,
    Ready,
    Incoming(Option<Result<Message, WsError>>),
    Outgoing(Event),
}

enum End {
    ClientClosed,
    Overflow,
    Shutdown,
    Failed(WsError),
    Gone,
}

/// Runs a session until the client leaves, the queue overflows or `cancel` fires.
pub(crate) async fn run<S>(
    mut ws: WebSocketStream<S>,
    session: Session,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _live = shared.stats.live();
    let Session {
        conn_id,
        user,
        mut guard,
        ready_at,
    } = session;
    let (tx, mut rx) = mpsc::channel(shared.config.queue_capacity.max(1));
    let outbox = Arc::new(Outbox {
        tx,
        overflow: CancellationToken::new(),
        flagged: AtomicBool::new(false),
        stats: Arc::clone(&shared.stats),
    });
    // Planted bug `session-id-collision`: this session's runs may answer into another
    // connection's queue.
    let run_outbox = if shared.config.bug == Some(Bug::SessionIdCollision) {
        shared.bugs.route_session(&outbox, shared.config.bug_window)
    } else {
        Arc::clone(&outbox)
    };
    let runs = cancel.child_token();
    let _stop_runs = runs.clone().drop_guard();
    let mut writer = Writer {
        seq: 0,
        stats: Arc::clone(&shared.stats),
    };
    let established = protocol::connection_established(&user, &format!("c{conn_id}"));
    let mut ready_timer: Option<Pin<Box<Sleep>>> = ready_at.map(|at| Box::pin(sleep_until(at)));
    let mut pending_established = Some(established);
    if ready_timer.is_none() {
        if let Some(event) = pending_established.take() {
            if ws.send(writer.frame(event)).await.is_err() {
                return;
            }
        }
    }
    let reader = Reader {
        shared: &shared,
        outbox: &outbox,
        run_outbox: &run_outbox,
        runs: &runs,
        user: &user,
    };

    let end = loop {
        if outbox.overflowed() {
            break End::Overflow;
        }
        let step = tokio::select! {
            () = cancel.cancelled() => Step::Shutdown,
            () = outbox.overflow.cancelled() => Step::Overflow,
            () = ready(&mut ready_timer), if ready_timer.is_some() => Step::Ready,
            incoming = ws.next() => Step::Incoming(incoming),
            Some(event) = rx.recv() => Step::Outgoing(event),
        };
        match step {
            Step::Shutdown => break End::Shutdown,
            Step::Overflow => break End::Overflow,
            Step::Ready => {
                ready_timer = None;
                if let Some(event) = pending_established.take() {
                    if ws.send(writer.frame(event)).await.is_err() {
                        break End::Gone;
                    }
                }
            }
            Step::Incoming(Some(Ok(Message::Close(_)))) => break End::ClientClosed,
            Step::Incoming(Some(Ok(message))) => reader.on_message(message, ready_timer.is_some()),
            Step::Incoming(Some(Err(err))) => break End::Failed(err),
            Step::Incoming(None) => break End::Gone,
            Step::Outgoing(event) => {
                let written = tokio::select! {
                    () = cancel.cancelled() => break End::Shutdown,
                    written = write_batch(&mut ws, &mut writer, event, &mut rx) => written,
                };
                if written.is_err() {
                    break End::Gone;
                }
            }
        }
    };
    runs.cancel();
    finish(&mut ws, end, guard.take(), &mut writer).await;
}

/// Ends the connection; the `jti` is released before any Close goes out.
async fn finish<S>(
    ws: &mut WebSocketStream<S>,
    end: End,
    guard: Option<JtiGuard>,
    writer: &mut Writer,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(guard) = guard {
        guard.release();
    }
    match end {
        End::ClientClosed => {
            // tungstenite queued the Close reply when it read the client's
            // Close; flushing sends it (and then reports the close as an error).
            let _ = timeout(CLOSE_TIMEOUT, ws.flush()).await;
        }
        End::Overflow => {
            let error = writer.frame(protocol::error("queue_overflow", None));
            let sent = timeout(CLOSE_TIMEOUT, ws.send(error)).await;
            if matches!(sent, Ok(Ok(()))) {
                close_with(ws, CloseCode::Again, "queue_overflow").await;
            }
        }
        End::Shutdown => close_with(ws, CloseCode::Away, "server shutting down").await,
        End::Failed(err) => {
            tracing::debug!(%err, "connection failed");
            let code = match err {
                WsError::Capacity(_) => Some(CloseCode::Size),
                WsError::Utf8(_) => Some(CloseCode::Invalid),
                WsError::Protocol(_) => Some(CloseCode::Protocol),
                _ => None,
            };
            if let Some(code) = code {
                close_with(ws, code, "").await;
            }
        }
        End::Gone => {}
    }
}

/// Reads until the peer's side is closed (used after sending our Close).
pub(crate) async fn drain<S>(ws: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(Ok(_)) = ws.next().await {}
}

async fn ready(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Writes `first` and whatever else is queued (up to a batch), then flushes.
async fn write_batch<S>(
    ws: &mut WebSocketStream<S>,
    writer: &mut Writer,
    first: Event,
    rx: &mut mpsc::Receiver<Event>,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.feed(writer.frame(first)).await?;
    for _ in 1..WRITE_BATCH {
        let Ok(event) = rx.try_recv() else { break };
        ws.feed(writer.frame(event)).await?;
    }
    ws.flush().await
}

/// Handles client data frames.
struct Reader<'a> {
    shared: &'a Arc<Shared>,
    outbox: &'a Arc<Outbox>,
    /// Where run events go: `outbox`, except under `session-id-collision`.
    run_outbox: &'a Arc<Outbox>,
    runs: &'a CancellationToken,
    user: &'a Arc<str>,
}

impl Reader<'_> {
    fn on_message(&self, message: Message, before_ready: bool) {
        let text = match message {
            Message::Text(text) => Some(text),
            Message::Binary(_) => None,
            // Pings are answered by tungstenite; Close is handled by the caller.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => return,
        };
        self.shared.stats.message_received();
        if before_ready {
            // Planted bug `early-message-drop`: the session is not in the
            // dispatcher yet, so the frame has nowhere to go.
            return;
        }
        let parsed = text.as_deref().map_or(
            Err(protocol::Invalid { run_id: None }),
            protocol::parse_client_text,
        );
        match parsed {
            Ok(message) => self.start_run(message),
            Err(invalid) => {
                self.outbox.push(protocol::error(
                    "invalid_message",
                    invalid.run_id.as_deref(),
                ));
            }
        }
    }

    fn start_run(&self, message: UserMessage) {
        let config = &self.shared.config;
        let lose_tool_completed = match config.bug {
            Some(Bug::BurstEventLoss) => self.shared.bugs.run_overflows_burst(config.bug_window),
            Some(Bug::MassEventLoss) => self.shared.bugs.run_overflows_mass(config.bug_window),
            _ => false,
        };
        let timing = RunTiming {
            response_delay: config.response_delay,
            event_delay: config.event_delay,
            thinking_events: config.thinking_events,
            lose_tool_completed,
        };
        let context = RunContext {
            message,
            user_id: Arc::clone(self.user),
        };
        self.shared.stats.run_started();
        if let Some(gate) = &self.shared.stall {
            gate.on_run_start();
        }
        tokio::spawn(run::drive(
            context,
            Arc::clone(self.run_outbox),
            self.runs.clone(),
            timing,
            self.shared.stall.clone(),
        ));
    }
}
