//! One TCP connection up to an accepted session: TLS, the WebSocket upgrade
//! with its auth callback, and the planted-bug hooks that sit around it.
//!
//! Auth and the `jti` claim happen synchronously inside tungstenite's request
//! callback, so a refusal is a plain HTTP 401/409 and the claim is atomic. The
//! claim travels out of the callback as a guard; if the upgrade then fails, the
//! guard drops and the `jti` is free again.

use std::sync::Arc;

use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::header::{
    HeaderValue, SEC_WEBSOCKET_PROTOCOL, WWW_AUTHENTICATE,
};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{accept_hdr_async_with_config, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::auth::{self, TokenError};
use super::bugs::{slot_wait, Bug, Slot, SlowFirstWrite};
use super::registry::JtiGuard;
use super::session::{self, Session, CLOSE_TIMEOUT};
use super::stats::Counter;
use super::Shared;

/// The only path the server upgrades.
const WS_PATH: &str = "/ws";
/// Read buffer per connection: small, so idle connections stay cheap.
const READ_BUFFER_BYTES: usize = 4 * 1024;
const WRITE_BUFFER_BYTES: usize = 8 * 1024;
/// Largest client message or frame accepted.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// What the request callback decided, handed out of the callback.
pub(crate) enum Admission {
    Granted {
        user: Arc<str>,
        jti: String,
        /// `None` only on bug paths that claim the `jti` later.
        guard: Option<JtiGuard>,
    },
    /// Planted bug `malformed-token-1011`: let through, fail after the upgrade.
    Malformed,
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// Serves one accepted TCP connection until it ends.
pub(crate) async fn handle(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    // Events are small and latency is what clients measure.
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%err, "set_nodelay failed");
    }
    let Some(acceptor) = tls else {
        return upgrade(stream, shared, cancel).await;
    };
    let handshake = tokio::select! {
        () = cancel.cancelled() => return,
        handshake = timeout(shared.config.handshake_timeout, acceptor.accept(stream)) => handshake,
    };
    match handshake {
        Ok(Ok(stream)) => upgrade(stream, shared, cancel).await,
        Ok(Err(err)) => {
            tracing::debug!(%err, "TLS handshake failed");
            shared.stats.bump(Counter::HandshakeFailure);
        }
        Err(_) => shared.stats.bump(Counter::HandshakeFailure),
    }
}

async fn upgrade<S>(stream: S, shared: Arc<Shared>, cancel: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if matches!(shared.config.bug, Some(Bug::AbortLeak | Bug::SlotLeak)) {
        let stream = SlowFirstWrite::new(stream, shared.config.bug_window);
        websocket(stream, shared, cancel).await;
    } else {
        websocket(stream, shared, cancel).await;
    }
}

// The callback's `Result<Response, ErrorResponse>` is tungstenite's signature.
#[allow(clippy::result_large_err)]
async fn websocket<S>(stream: S, shared: Arc<Shared>, cancel: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn_id = shared.next_conn_id();
    // Planted bug `slot-leak`: a slot is held from here until the 101 is out.
    let slot = if shared.config.bug == Some(Bug::SlotLeak) {
        tokio::select! {
            () = cancel.cancelled() => return,
            slot = shared.bugs.take_slot(slot_wait(shared.config.bug_window)) => Some(slot),
        }
    } else {
        None
    };
    let mut admission = None;
    let callback = |request: &Request, response: Response| {
        admit(&shared, conn_id, request, response, &mut admission)
    };
    let upgraded = tokio::select! {
        () = cancel.cancelled() => return,
        upgraded = timeout(
            shared.config.handshake_timeout,
            accept_hdr_async_with_config(stream, callback, Some(ws_config())),
        ) => upgraded,
    };
    let exhausted = matches!(slot, Some(Slot::Exhausted));
    if let Some(slot) = slot {
        // A refusal is an answer, not an abort: only a handshake the client walked away
        // from (or that timed out) takes the error path that forgets the slot.
        slot.settle(matches!(upgraded, Ok(Ok(_)) | Ok(Err(WsError::Http(_)))));
    }
    let mut ws = match upgraded {
        Ok(Ok(ws)) => ws,
        // Refused by `admit`, which counted it.
        Ok(Err(WsError::Http(_))) => return,
        // The client went away or sent garbage. A claimed `jti` is released
        // when `admission` drops at the end of this function.
        Ok(Err(_)) | Err(_) => {
            shared.stats.bump(Counter::HandshakeFailure);
            return;
        }
    };
    shared.stats.bump(Counter::Accepted);
    if exhausted {
        // 1011, not 1013: a leaked slot is the server's fault, not load it sheds.
        close_with(&mut ws, CloseCode::Error, "no handshake slot").await;
        return;
    }
    let session = match admission {
        Some(Admission::Granted { user, jti, guard }) => {
            settle(&shared, conn_id, user, &jti, guard, &cancel).await
        }
        Some(Admission::Malformed) => {
            // The bug: token decoding was deferred to the session, and its
            // error surfaces as an internal error instead of a 401.
            close_with(&mut ws, CloseCode::Error, "internal error").await;
            None
        }
        None => None,
    };
    if let Some(session) = session {
        session::run(ws, session, shared, cancel).await;
    }
}

/// The upgrade request callback: path, token, `jti` claim, subprotocol.
#[allow(clippy::result_large_err)]
fn admit(
    shared: &Shared,
    conn_id: u64,
    request: &Request,
    mut response: Response,
    admission: &mut Option<Admission>,
) -> Result<Response, ErrorResponse> {
    if request.uri().path() != WS_PATH {
        shared.stats.bump(Counter::RejectedOther);
        return Err(refusal(StatusCode::NOT_FOUND, "not_found"));
    }
    if let Some(selected) = auth::select_subprotocol(request) {
        if let Ok(value) = HeaderValue::from_str(selected) {
            response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
    }
    let bug = shared.config.bug;
    let verified = auth::extract_token(request)
        .map_err(|err| TokenError::Invalid(err.to_string()))
        .and_then(|(token, source)| {
            let checks = auth::Checks::for_request(bug, source);
            shared.verifier.verify(&token, checks)
        });
    let identity = match verified {
        Ok(identity) => identity,
        Err(TokenError::Malformed) if bug == Some(Bug::MalformedToken1011) => {
            *admission = Some(Admission::Malformed);
            return Ok(response);
        }
        Err(err) => {
            tracing::debug!(conn = conn_id, %err, "upgrade refused: 401");
            shared.stats.bump(Counter::RejectedUnauthorized);
            let mut refused = refusal(StatusCode::UNAUTHORIZED, "unauthorized");
            refused.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            return Err(refused);
        }
    };
    let Ok(guard) = claim(shared, &identity.jti, conn_id) else {
        tracing::debug!(conn = conn_id, "upgrade refused: 409 token_in_use");
        shared.stats.bump(Counter::RejectedInUse);
        return Err(refusal(StatusCode::CONFLICT, "token_in_use"));
    };
    if bug == Some(Bug::IdentitySwap) {
        shared.bugs.set_current_user(&identity.sub);
    }
    *admission = Some(Admission::Granted {
        user: Arc::from(identity.sub),
        jti: identity.jti,
        guard,
    });
    Ok(response)
}

/// The token's `jti` is live on another connection.
struct InUse;

fn claim(shared: &Shared, jti: &str, conn_id: u64) -> Result<Option<JtiGuard>, InUse> {
    match shared.config.bug {
        // Check now, insert after an await in `settle`.
        Some(Bug::TokenCheckThenAct) if shared.registry.contains(jti) => Err(InUse),
        Some(Bug::TokenCheckThenAct) => Ok(None),
        // Insert raw: releasing is left to the session, which an aborted
        // handshake never reaches.
        Some(Bug::AbortLeak) => {
            let guard = shared.registry.try_claim(jti, conn_id).ok_or(InUse)?;
            guard.leak();
            Ok(None)
        }
        Some(Bug::ReconnectLag) => {
            let guard = shared.registry.try_claim(jti, conn_id).ok_or(InUse)?;
            Ok(Some(guard.with_release_delay(shared.config.bug_window)))
        }
        _ => shared
            .registry
            .try_claim(jti, conn_id)
            .map(Some)
            .ok_or(InUse),
    }
}

/// Turns an admission into a session, running the post-upgrade bug hooks.
async fn settle(
    shared: &Shared,
    conn_id: u64,
    mut user: Arc<str>,
    jti: &str,
    mut guard: Option<JtiGuard>,
    cancel: &CancellationToken,
) -> Option<Session> {
    let window = shared.config.bug_window;
    let mut ready_at = None;
    match shared.config.bug {
        Some(Bug::TokenCheckThenAct) => {
            pause(window, cancel).await?;
            shared.registry.insert_unguarded(jti, conn_id);
            guard = Some(JtiGuard::adopt(&shared.registry, jti, conn_id));
        }
        Some(Bug::AbortLeak) => guard = Some(JtiGuard::adopt(&shared.registry, jti, conn_id)),
        Some(Bug::IdentitySwap) => {
            pause(window, cancel).await?;
            user = shared.bugs.current_user().unwrap_or(user);
        }
        Some(Bug::EarlyMessageDrop) => ready_at = Instant::now().checked_add(window),
        _ => {}
    }
    Some(Session {
        conn_id,
        user,
        guard,
        ready_at,
    })
}

/// Sleeps unless cancelled first (`None`).
async fn pause(duration: std::time::Duration, cancel: &CancellationToken) -> Option<()> {
    tokio::select! {
        () = cancel.cancelled() => None,
        () = tokio::time::sleep(duration) => Some(()),
    }
}

fn refusal(status: StatusCode, body: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(body.to_owned()));
    *response.status_mut() = status;
    response
}

/// Sends a Close frame and waits (bounded) for the client's reply.
pub(crate) async fn close_with<S>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let closing = async {
        ws.send(Message::Close(Some(frame))).await?;
        session::drain(ws).await;
        Ok::<(), WsError>(())
    };
    if let Ok(Err(err)) = timeout(CLOSE_TIMEOUT, closing).await {
        tracing::debug!(%err, "close failed");
    }
}
