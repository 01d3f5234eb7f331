//! Planted races for `stampede serve --bug NAME`.
//!
//! Each bug is written the way real teams write it (an await between a check
//! and the matching write, a shared slot read after an await, cleanup deferred
//! after close, …) and opens a deliberate window of [`TargetConfig::bug_window`]
//! (a few ms by default): a plain ramp rarely lands in it, a synchronized burst
//! does. Without a bug the server takes none of these paths.
//!
//! [`TargetConfig::bug_window`]: super::TargetConfig::bug_window

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::session::Outbox;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Runs that may start inside one window before `burst-event-loss` drops events.
pub(crate) const BURST_RUNS: u32 = 4;

/// Runs that may start inside one (sliding) window before `mass-event-loss` drops events:
/// an order of magnitude above [`BURST_RUNS`], so only a message rendezvous of a hundred or
/// more connections reaches it.
pub(crate) const MASS_RUNS: usize = 99;

/// Handshake slots of `slot-leak`: each aborted handshake leaks one for good.
pub(crate) const HANDSHAKE_SLOTS: usize = 32;

/// How long `slot-leak` makes a handshake wait for a slot, in windows, before it gives
/// up: the connection is then upgraded and closed at once with 1011 (internal error). Not
/// 1013 (try again later): that is load shedding, the server's "not now", which stampede
/// waits out and never calls a broken target; a leaked slot is a fault, and says so.
/// Scaled with the window (rather than a fixed 3 s) so tests that widen the window keep
/// the wait in proportion and replays of a broken server stay short.
const SLOT_WAIT_WINDOWS: u32 = 10;
/// The shortest `slot-leak` wait, whatever the window.
const MIN_SLOT_WAIT: Duration = Duration::from_millis(100);

/// `slot-leak`: how long a handshake waits for a slot when the window is `window`.
pub(crate) fn slot_wait(window: Duration) -> Duration {
    (window * SLOT_WAIT_WINDOWS).max(MIN_SLOT_WAIT)
}

/// One planted race.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// Registry check, an await, then the insert: same-`jti` upgrades inside
    /// the window are all accepted.
    TokenCheckThenAct,
    /// The handshake writes the user into a shared slot that the session reads
    /// after an await: interleaved handshakes get each other's identity.
    IdentitySwap,
    /// Messages that arrive before the session is marked ready are dropped.
    EarlyMessageDrop,
    /// When more than a few runs start inside one window, `tool_completed` of
    /// the extra runs is silently skipped.
    BurstEventLoss,
    /// The `jti` is released only a window after close: a fast reconnect gets 409.
    ReconnectLag,
    /// A handshake aborted after the request but before the 101 leaks its
    /// registry entry: the token is refused with 409 forever after.
    AbortLeak,
    /// A structurally malformed token passes the upgrade and the session then
    /// closes with 1011 instead of a 401.
    #[serde(rename = "malformed-token-1011")]
    MalformedToken1011,
    /// Tokens whose header says `alg: none` (any case) are accepted unsigned.
    AcceptAlgNone,
    /// The `?token=` path skips the `exp` check: an expired token is accepted
    /// through the query and refused through the header or subprotocol.
    QuerySkipsExpiry,
    /// Like `burst-event-loss` an order of magnitude up: only when 100 or more runs
    /// start inside one (sliding) window do the runs beyond the 99th lose
    /// `tool_completed`.
    MassEventLoss,
    /// Every handshake holds one of 32 slots until its 101 is written (a window
    /// later); an aborted handshake never gives its slot back. Once all are leaked,
    /// every connection waits 10 windows for a slot and is then closed with 1011.
    SlotLeak,
    /// Session ids are cut from the clock: two sessions created inside one window
    /// (necessarily different users: a same-token pair is refused) share an id, and
    /// the later one's run events are routed to the earlier one's connection.
    SessionIdCollision,
}

impl Bug {
    /// Every planted bug, in `--list-bugs` order.
    pub const ALL: [Bug; 12] = [
        Bug::TokenCheckThenAct,
        Bug::IdentitySwap,
        Bug::EarlyMessageDrop,
        Bug::BurstEventLoss,
        Bug::ReconnectLag,
        Bug::AbortLeak,
        Bug::MalformedToken1011,
        Bug::AcceptAlgNone,
        Bug::QuerySkipsExpiry,
        Bug::MassEventLoss,
        Bug::SlotLeak,
        Bug::SessionIdCollision,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Bug::TokenCheckThenAct => "token-check-then-act",
            Bug::IdentitySwap => "identity-swap",
            Bug::EarlyMessageDrop => "early-message-drop",
            Bug::BurstEventLoss => "burst-event-loss",
            Bug::ReconnectLag => "reconnect-lag",
            Bug::AbortLeak => "abort-leak",
            Bug::MalformedToken1011 => "malformed-token-1011",
            Bug::AcceptAlgNone => "accept-alg-none",
            Bug::QuerySkipsExpiry => "query-skips-expiry",
            Bug::MassEventLoss => "mass-event-loss",
            Bug::SlotLeak => "slot-leak",
            Bug::SessionIdCollision => "session-id-collision",
        }
    }

    /// One line for `--list-bugs`.
    pub fn describe(self) -> &'static str {
        match self {
            Bug::TokenCheckThenAct => {
                "jti registry checked, then an await, then inserted: same-token upgrades inside the window are all accepted"
            }
            Bug::IdentitySwap => {
                "handshake stores the user in a shared slot read back after an await: interleaved handshakes swap identities"
            }
            Bug::EarlyMessageDrop => {
                "messages sent before connection_established (within the window after the 101) are silently dropped"
            }
            Bug::BurstEventLoss => {
                "more than 4 runs starting within one window: the extra runs silently lose tool_completed"
            }
            Bug::ReconnectLag => {
                "jti released a window after close: a fast reconnect with the same token gets 409"
            }
            Bug::AbortLeak => {
                "handshake aborted after the request, before the 101, leaks its jti: the token gets 409 forever"
            }
            Bug::MalformedToken1011 => {
                "a structurally broken token (garbage, truncated, wrong segment count) passes the upgrade, then the session closes with 1011"
            }
            Bug::AcceptAlgNone => {
                "unsigned tokens with alg none (any case) are accepted: anyone can claim any sub"
            }
            Bug::QuerySkipsExpiry => {
                "the ?token= auth path skips the exp check: expired tokens pass via the query, not the header"
            }
            Bug::MassEventLoss => {
                "100 or more runs starting within one window: the runs beyond the 99th silently lose tool_completed"
            }
            Bug::SlotLeak => {
                "each aborted handshake leaks one of 32 slots; once all leak, every connection waits 10 windows, then gets close 1011"
            }
            Bug::SessionIdCollision => {
                "two users' sessions created within one window share a session id: the later one's events go to the earlier one"
            }
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--bug` value that names no planted bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bug `{given}`; known: {}{}", known_names(), crate::model::words::did_you_mean(given, Bug::ALL.map(Bug::name)))]
pub struct UnknownBug {
    /// What was given.
    pub given: String,
}

fn known_names() -> String {
    Bug::ALL.map(Bug::name).join(", ")
}

impl FromStr for Bug {
    type Err = UnknownBug;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .into_iter()
            .find(|bug| bug.name() == s)
            .ok_or_else(|| UnknownBug {
                given: s.to_owned(),
            })
    }
}

/// Server-wide state some bugs share between connections.
#[derive(Debug, Default)]
pub(crate) struct BugState {
    /// `identity-swap`: meant to be request-local, but it is one slot per server.
    current_user: Mutex<Option<Arc<str>>>,
    /// `burst-event-loss`: runs started in the current window.
    burst: Mutex<Option<(Instant, u32)>>,
    /// `mass-event-loss`: start instants of the runs of the last window, oldest first.
    mass: Mutex<VecDeque<Instant>>,
    /// `slot-leak`: the handshake slots (a slot leaked is a permit forgotten).
    slots: OnceLock<Arc<Semaphore>>,
    /// `session-id-collision`: the last session created, when, and where its events go.
    last_session: Mutex<Option<(Instant, Weak<Outbox>)>>,
}

/// What `slot-leak` gives a handshake: a slot it must give back once its 101 is out (or
/// leak if the handshake fails), or nothing after [`slot_wait`].
pub(crate) enum Slot {
    /// Held until [`Slot::settle`].
    Held(OwnedSemaphorePermit),
    /// No slot came within [`slot_wait`]: the connection is to be closed with 1011.
    Exhausted,
}

impl Slot {
    /// Ends the handshake's hold: a handshake that completed gives the slot back; one that
    /// failed (the client went away) takes the error path that forgets it. That is the bug.
    pub(crate) fn settle(self, upgraded: bool) {
        if let Slot::Held(permit) = self {
            if upgraded {
                drop(permit);
            } else {
                permit.forget();
            }
        }
    }
}

impl BugState {
    pub(crate) fn set_current_user(&self, user: &str) {
        *self
            .current_user
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::from(user));
    }

    pub(crate) fn current_user(&self) -> Option<Arc<str>> {
        self.current_user
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a run start; true if it is beyond [`BURST_RUNS`] in this window
    /// (its results slot was overwritten, so it will lose an event).
    pub(crate) fn run_overflows_burst(&self, window: Duration) -> bool {
        let now = Instant::now();
        let mut burst = self.burst.lock().unwrap_or_else(PoisonError::into_inner);
        let count = match burst.as_mut() {
            Some((started, count)) if now.duration_since(*started) <= window => {
                *count += 1;
                *count
            }
            _ => {
                *burst = Some((now, 1));
                1
            }
        };
        count > BURST_RUNS
    }

    /// Records a run start for `mass-event-loss`; true if more than [`MASS_RUNS`] runs
    /// (this one included) started within the last `window`. The window slides, so a
    /// burst that straddles a boundary still counts whole.
    pub(crate) fn run_overflows_mass(&self, window: Duration) -> bool {
        let now = Instant::now();
        let mut starts = self.mass.lock().unwrap_or_else(PoisonError::into_inner);
        while starts
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            starts.pop_front();
        }
        starts.push_back(now);
        starts.len() > MASS_RUNS
    }

    fn slots(&self) -> Arc<Semaphore> {
        Arc::clone(
            self.slots
                .get_or_init(|| Arc::new(Semaphore::new(HANDSHAKE_SLOTS))),
        )
    }

    /// `slot-leak`: waits up to `wait` for a handshake slot.
    pub(crate) async fn take_slot(&self, wait: Duration) -> Slot {
        match tokio::time::timeout(wait, self.slots().acquire_owned()).await {
            Ok(Ok(permit)) => Slot::Held(permit),
            // Timed out, or the semaphore was closed (never done): no slot.
            Ok(Err(_)) | Err(_) => Slot::Exhausted,
        }
    }

    /// `slot-leak`: slots not leaked (held by handshakes in flight or free).
    #[cfg(test)]
    pub(crate) fn free_slots(&self) -> usize {
        self.slots().available_permits()
    }

    /// `session-id-collision`: registers a new session's outbox and returns where its run
    /// events go: the outbox of a session created less than `window` before (its id is
    /// the same), else its own.
    pub(crate) fn route_session(&self, own: &Arc<Outbox>, window: Duration) -> Arc<Outbox> {
        let now = Instant::now();
        let mut last = self
            .last_session
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((created, earlier)) = last.as_ref() {
            if now.duration_since(*created) <= window {
                if let Some(earlier) = earlier.upgrade() {
                    return earlier;
                }
            }
        }
        *last = Some((now, Arc::downgrade(own)));
        Arc::clone(own)
    }
}

/// `abort-leak`: the first write (the 101) waits for the window, as if the
/// server awaited a session-store write after registering the `jti`. A client
/// that resets in that gap makes the handshake fail after the registry insert.
pub(crate) struct SlowFirstWrite<S> {
    inner: S,
    delay: Option<Pin<Box<Sleep>>>,
}

impl<S> SlowFirstWrite<S> {
    pub(crate) fn new(inner: S, delay: Duration) -> Self {
        Self {
            inner,
            delay: Some(Box::pin(tokio::time::sleep(delay))),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SlowFirstWrite<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SlowFirstWrite<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(delay) = self.delay.as_mut() {
            ready!(delay.as_mut().poll(cx));
            self.delay = None;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>().unwrap(), bug);
            let json = serde_json::to_string(&bug).unwrap();
            assert_eq!(json, format!("\"{}\"", bug.name()));
            assert!(!bug.describe().contains('\n'));
        }
        let err = "nope".parse::<Bug>().unwrap_err();
        assert!(err.to_string().contains("abort-leak"));
    }

    #[tokio::test]
    async fn burst_counts_runs_inside_one_window() {
        let state = BugState::default();
        let window = Duration::from_secs(60);
        let lost = (0..BURST_RUNS + 2)
            .filter(|_| state.run_overflows_burst(window))
            .count();
        assert_eq!(lost, 2);
    }

    #[tokio::test]
    async fn mass_loss_needs_a_hundred_runs_in_one_window() {
        let state = BugState::default();
        let window = Duration::from_secs(60);
        let lost = (0..MASS_RUNS + 3)
            .filter(|_| state.run_overflows_mass(window))
            .count();
        assert_eq!(lost, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn mass_loss_window_slides() {
        let state = BugState::default();
        let window = Duration::from_millis(5);
        for _ in 0..MASS_RUNS {
            assert!(!state.run_overflows_mass(window));
        }
        // Past the window the earlier runs no longer count: a slow trickle never loses.
        tokio::time::advance(Duration::from_millis(6)).await;
        for _ in 0..MASS_RUNS {
            assert!(!state.run_overflows_mass(window));
        }
        assert!(state.run_overflows_mass(window));
    }

    #[tokio::test(start_paused = true)]
    async fn slots_leak_only_on_failed_handshakes_until_none_is_left() {
        let state = BugState::default();
        let wait = Duration::from_millis(100);
        for _ in 0..10 {
            state.take_slot(wait).await.settle(true);
        }
        assert_eq!(
            state.free_slots(),
            HANDSHAKE_SLOTS,
            "completed handshakes give back"
        );
        for leaked in 1..=HANDSHAKE_SLOTS {
            state.take_slot(wait).await.settle(false);
            assert_eq!(state.free_slots(), HANDSHAKE_SLOTS - leaked);
        }
        let before = Instant::now();
        assert!(matches!(state.take_slot(wait).await, Slot::Exhausted));
        assert!(
            before.elapsed() >= wait,
            "an exhausted server makes everyone wait"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_created_within_one_window_share_a_route() {
        let state = BugState::default();
        let window = Duration::from_millis(5);
        let (a, mut a_rx) = Outbox::detached(8);
        let (b, _b_rx) = Outbox::detached(8);
        let (c, mut c_rx) = Outbox::detached(8);
        assert!(Arc::ptr_eq(&state.route_session(&a, window), &a));
        // Created inside a's window: b's run events land in a's queue.
        let b_route = state.route_session(&b, window);
        assert!(Arc::ptr_eq(&b_route, &a));
        assert!(b_route.push(crate::reference::protocol::error("x", Some("b-run"))));
        assert!(a_rx.try_recv().is_ok());
        // A window later a new session gets its own route again.
        tokio::time::advance(Duration::from_millis(6)).await;
        let c_route = state.route_session(&c, window);
        assert!(Arc::ptr_eq(&c_route, &c));
        assert!(c_route.push(crate::reference::protocol::error("x", None)));
        assert!(c_rx.try_recv().is_ok());
    }
}
