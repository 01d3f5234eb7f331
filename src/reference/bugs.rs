//! Planted races for `stampede serve --bug NAME`.
//!
//! Each bug is written the way real teams write it (an await between a check
//! and the matching write, a shared slot read after an await, cleanup deferred
//! after close, …) and opens a deliberate window of [`TargetConfig::bug_window`]
//! (a few ms by default): a plain ramp rarely lands in it, a synchronized burst
//! does. Without a bug the server takes none of these paths.
//!
//! [`TargetConfig::bug_window`]: super::TargetConfig::bug_window

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Runs that may start inside one window before `burst-event-loss` drops events.
pub(crate) const BURST_RUNS: u32 = 4;

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
}

impl Bug {
    /// Every planted bug, in `--list-bugs` order.
    pub const ALL: [Bug; 9] = [
        Bug::TokenCheckThenAct,
        Bug::IdentitySwap,
        Bug::EarlyMessageDrop,
        Bug::BurstEventLoss,
        Bug::ReconnectLag,
        Bug::AbortLeak,
        Bug::MalformedToken1011,
        Bug::AcceptAlgNone,
        Bug::QuerySkipsExpiry,
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
}
