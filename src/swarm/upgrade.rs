//! The client side of the WebSocket opening handshake (RFC 6455 §4.1), over our own
//! [`ClientStream`].
//!
//! Written here rather than taken from tungstenite's `client_async`, for memory: tungstenite
//! 0.30 reads the response through a 4 KiB chunk and hands its buffer over to the open
//! connection, and an idle connection should cost as little as possible (issue 11: ≤ 6 KiB
//! each). Here the response is read into a small, growing buffer that is dropped once
//! parsed; only the bytes the server sent after its 101 move on, into a read buffer of
//! `read_buffer_size`.
//!
//! The request bytes are tungstenite's own ([`generate_request`]), so the wire is what it
//! was; writing them through the stream and flushing keeps collide barriers working (the
//! stream parks the request's final bytes until the flush is released). Every way the
//! answer can be wrong gets the cause it had with tungstenite: another status is
//! [`Cause::Http`] with its status line and the first bytes of its body; a missing
//! `Upgrade`/`Connection` header, a wrong `Sec-WebSocket-Accept`, a subprotocol the client
//! did not offer (or none when some were offered), an extension when it offered none, a
//! malformed or oversized head are
//! [`Cause::Protocol`] with what was wrong (more than 124 headers: [`Cause::Oversized`]);
//! a reset or an end before the head is complete is [`Cause::Reset`] or
//! [`Cause::Protocol`].

use super::dial::{DialFailure, Ws};
use super::stream::ClientStream;
use crate::model::{Answer, Cause};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::handshake::client::{generate_request, Request};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

/// The longest response head accepted (status line and headers), in bytes. Real 101s are
/// a few hundred bytes; a server sending more is broken or hostile, and reading on would
/// only grow the buffer.
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Headers parsed at most: tungstenite's limit, so a response with more is still
/// [`Cause::Oversized`] (a 101 needs four or five).
const MAX_HEADERS: usize = 124;

/// How much each read of the response asks for. A 101 with a few headers fits in one;
/// the buffer grows by this much while the head is incomplete.
const READ_CHUNK: usize = 512;

/// How long a refusal's body may take to follow its head (a server that writes the two
/// apart): what it says is shown when it comes soon, never waited for long.
const BODY_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Sends `request` over `stream`, reads and checks the answer, and returns the open
/// WebSocket with any bytes the server sent after its 101 kept as the first bytes read.
/// Unbounded in time: the caller bounds it (`[limits] handshake_timeout`).
pub(crate) async fn upgrade(
    mut stream: ClientStream,
    request: Request,
    config: WebSocketConfig,
) -> Result<Ws, DialFailure> {
    // A request we cannot write (a header value that is not text) is a protocol error, as
    // it was with tungstenite.
    let offered = offered_subprotocols(&request).map_err(failure)?;
    // None, unless the scenario's headers offer some: stampede speaks no extension.
    let offers_extensions = request.headers().contains_key("Sec-WebSocket-Extensions");
    let (bytes, key) = generate_request(request).map_err(failure)?;
    stream.write_all(&bytes).await.map_err(io_failure)?;
    // A held stream (collide barrier) sends the request's final bytes here, at the release.
    stream.flush().await.map_err(io_failure)?;
    drop(bytes);
    let (head, leftover) = read_head(&mut stream).await?;
    check(
        &head,
        &derive_accept_key(key.as_bytes()),
        offered.as_deref(),
    )?;
    if !offers_extensions {
        check_no_extension(&head)?;
    }
    Ok(WebSocketStream::from_partially_read(stream, leftover, Role::Client, Some(config)).await)
}

/// The response head, parsed: what the checks need, owned.
#[derive(Debug, Default, PartialEq, Eq)]
struct Head {
    /// The minor version of HTTP/1.x: a 101 needs 1.1; a refusal is one in either.
    minor: u8,
    code: u16,
    /// `(name, value)` in the order sent; values as bytes (they need not be UTF-8).
    headers: Vec<(String, Vec<u8>)>,
    /// The bytes after the head in what was read: a refusal's body, or a 101's first frames.
    tail_len: usize,
}

impl Head {
    /// The first value of header `name` (case-insensitive), as tungstenite reads it.
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// How a refusal's body follows its head (RFC 9112 §6.3, "Message Body Length").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follows {
    /// `Content-Length` bytes.
    Bytes(usize),
    /// Chunks (`Transfer-Encoding: chunked`), up to the last, empty one.
    Chunks,
    /// Whatever comes until the server closes (HTTP/1.0, or `Connection: close`, with no
    /// length).
    UntilClose,
    /// Nothing said: nothing waited for.
    Nothing,
}

impl Follows {
    fn of(head: &Head, chunked: bool) -> Follows {
        let length = head
            .get("Content-Length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        let closes = head.minor == 0
            || head
                .get("Connection")
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"close"));
        match (chunked, length) {
            (true, _) => Follows::Chunks,
            (false, Some(n)) => Follows::Bytes(n),
            (false, None) if closes => Follows::UntilClose,
            (false, None) => Follows::Nothing,
        }
    }

    /// Whether `raw` holds as much of the body as an answer shows
    /// ([`Answer::BODY_BYTES`]), or all of it.
    fn enough(self, raw: &[u8]) -> bool {
        match self {
            Follows::Bytes(n) => raw.len() >= n.min(Answer::BODY_BYTES),
            Follows::Chunks => {
                raw.len() >= 4 * Answer::BODY_BYTES
                    || raw.windows(5).any(|w| w == b"0\r\n\r\n")
                    || dechunk(raw).len() >= Answer::BODY_BYTES
            }
            Follows::UntilClose => raw.len() >= Answer::BODY_BYTES,
            Follows::Nothing => true,
        }
    }
}

/// A refusal's body as sent (chunked still, when it is): `read` (what came with the head),
/// and what the head says follows, as far as an answer shows ([`Answer::BODY_BYTES`]),
/// until the server closes, and within [`BODY_WAIT`].
async fn rest_of_body(stream: &mut ClientStream, mut read: Vec<u8>, follows: Follows) -> Vec<u8> {
    let until = tokio::time::Instant::now() + BODY_WAIT;
    let mut chunk = [0u8; Answer::BODY_BYTES];
    while !follows.enough(&read) {
        match tokio::time::timeout_at(until, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => read.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    read
}

/// Reads until the response head is complete; returns it with the bytes after it.
async fn read_head(stream: &mut ClientStream) -> Result<(Head, Vec<u8>), DialFailure> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let room = MAX_HEAD_BYTES - buf.len();
        if room == 0 {
            return Err(protocol(format!(
                "response head longer than {MAX_HEAD_BYTES} bytes"
            )));
        }
        let len = buf.len();
        buf.resize(len + READ_CHUNK.min(room), 0);
        let n = match stream.read(&mut buf[len..]).await {
            Ok(n) => n,
            Err(e) => return Err(io_failure(e)),
        };
        buf.truncate(len + n);
        if n == 0 {
            return Err(failure(WsError::Protocol(
                ProtocolError::HandshakeIncomplete,
            )));
        }
        if let Some(head) = parse(&buf)? {
            let at = buf.len() - head.tail_len;
            // An exact-size copy: the read buffer starts from it (`from_partially_read`),
            // so a 101 with nothing after it leaves an empty one, sized by the config.
            let leftover = buf[at..].to_vec();
            if head.code != 101 {
                // An HTTP/1.0 server (a plain web server at the wrong address) refuses as
                // clearly as any: its status and body are the finding.
                let chunked = head
                    .get("Transfer-Encoding")
                    .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                let raw = rest_of_body(stream, leftover, Follows::of(&head, chunked)).await;
                let body = if chunked { dechunk(&raw) } else { raw };
                let mut failure = refused(head.minor, head.code, &body, retry_after(&head));
                if let (true, Some(answer), Some(to)) = (
                    (300..400).contains(&head.code),
                    failure.answer.as_mut(),
                    head.get("Location"),
                ) {
                    // Where it redirects is what the user is told to point the URL at.
                    answer.detail =
                        format!("{} (Location: {})", answer.detail, Answer::printable(to));
                }
                return Err(failure);
            }
            if head.minor < 1 {
                return Err(failure(WsError::Protocol(ProtocolError::WrongHttpVersion)));
            }
            return Ok((head, leftover));
        }
    }
}

/// Parses `buf` as a response head: `None` while incomplete. Kept out of the async
/// function so the header array lives on the stack of one call, not in the connection's
/// future.
fn parse(buf: &[u8]) -> Result<Option<Head>, DialFailure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let size = match response.parse(buf) {
        Ok(httparse::Status::Complete(size)) => size,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(named_tls(failure(WsError::from(e)), buf)),
    };
    Ok(Some(Head {
        minor: response.version.unwrap_or(0),
        code: response.code.unwrap_or(0),
        headers: response
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect(),
        tail_len: buf.len() - size,
    }))
}

/// Checks a 101 the way RFC 6455 §4.1 says a client must (points 2 to 6).
fn check(head: &Head, accept: &str, offered: Option<&[String]>) -> Result<(), DialFailure> {
    let fail = |e: ProtocolError| Err(failure(WsError::Protocol(e)));
    let is = |v: &[u8], want: &str| v.trim_ascii().eq_ignore_ascii_case(want.as_bytes());
    if !head.get("Upgrade").is_some_and(|v| is(v, "websocket")) {
        return fail(ProtocolError::MissingUpgradeWebSocketHeader);
    }
    // "contains a token that is ... "Upgrade"": a list such as `keep-alive, Upgrade` too.
    let upgrade_token = |v: &[u8]| v.split(|&b| b == b',').any(|t| is(t, "upgrade"));
    if !head.get("Connection").is_some_and(upgrade_token) {
        return fail(ProtocolError::MissingConnectionUpgradeHeader);
    }
    if head.get("Sec-WebSocket-Accept").map(<[u8]>::trim_ascii) != Some(accept.as_bytes()) {
        return fail(ProtocolError::SecWebSocketAcceptKeyMismatch);
    }
    let chosen = head.get("Sec-WebSocket-Protocol").map(<[u8]>::trim_ascii);
    let sub = |e: SubProtocolError| fail(ProtocolError::SecWebSocketSubProtocolError(e));
    match (chosen, offered) {
        (None, Some(_)) => sub(SubProtocolError::NoSubProtocol),
        (Some(_), None) => sub(SubProtocolError::ServerSentSubProtocolNoneRequested),
        (Some(c), Some(o)) if !o.iter().any(|p| p.as_bytes() == c) => {
            sub(SubProtocolError::InvalidSubProtocol)
        }
        _ => Ok(()),
    }
}

/// Fails a 101 that chose an extension when the request offered none (RFC 6455 §4.1, point
/// 5: "the client MUST Fail the WebSocket Connection"): a server that then compresses its
/// frames (permessage-deflate, RFC 7692) would send what no reader here can take, and one
/// that does not has broken the handshake all the same. An empty header chooses nothing.
fn check_no_extension(head: &Head) -> Result<(), DialFailure> {
    match head.get("Sec-WebSocket-Extensions").map(<[u8]>::trim_ascii) {
        Some(chosen) if !chosen.is_empty() => Err(protocol(format!(
            "the server's 101 chose the extension {} though the client offered none (RFC 6455 \
             §4.1: the client must fail the connection)",
            Answer::printable(chosen)
        ))),
        _ => Ok(()),
    }
}

/// The subprotocols the request offers, as tungstenite reads them (`None`: no header).
fn offered_subprotocols(request: &Request) -> Result<Option<Vec<String>>, WsError> {
    let Some(value) = request.headers().get("Sec-WebSocket-Protocol") else {
        return Ok(None);
    };
    let value = value.to_str()?;
    Ok(Some(
        value.split(',').map(|s| s.trim().to_string()).collect(),
    ))
}

/// The data of a chunked body (RFC 9112 §7.1) as far as it was read: the chunks joined,
/// without their size lines, so the answer shows the body as the server wrote it (and a
/// token split across two chunks is whole again for redaction). Stops at the last chunk,
/// at a malformed size line, or where the bytes read end.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    // The size line (with any `;name=value` extension) is httparse's to read.
    while let Ok(httparse::Status::Complete((at, size))) = httparse::parse_chunk_size(raw) {
        let data = &raw[at..];
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size == 0 {
            break;
        }
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size {
            break;
        }
        raw = &data[take..];
        raw = raw.strip_prefix(b"\r\n").unwrap_or(raw);
    }
    out
}

/// The delay a refusal's `Retry-After` header asks for, in its delta-seconds form (RFC
/// 9110 §10.2.3): `None` when there is none, or when it is an HTTP-date (the client's
/// clock need not agree with the server's) or not a number.
fn retry_after(head: &Head) -> Option<u32> {
    let value = std::str::from_utf8(head.get("Retry-After")?).ok()?.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Another status than 101: the server refused, with its status line, body and the
/// `Retry-After` delay it asked for (if any).
fn refused(minor: u8, code: u16, body: &[u8], retry_after_s: Option<u32>) -> DialFailure {
    let cause = Cause::Http(code);
    let reason = tokio_tungstenite::tungstenite::http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let line = format!("HTTP/1.{minor} {code} {reason}");
    DialFailure {
        answer: Some(Box::new(
            Answer::new(cause.clone(), line.trim_end().to_string(), body)
                .with_retry_after(retry_after_s),
        )),
        rejected: true,
        ..DialFailure::failed(cause)
    }
}

/// The server broke the handshake: `detail` says how.
fn protocol(detail: String) -> DialFailure {
    DialFailure {
        answer: Some(Box::new(Answer::new(Cause::Protocol, detail, &[]))),
        ..DialFailure::failed(Cause::Protocol)
    }
}

/// A failed upgrade, classified as an open connection's error would be.
fn failure(e: WsError) -> DialFailure {
    let cause = super::dial::classify(&e);
    DialFailure {
        answer: Some(Box::new(Answer::new(cause.clone(), e.to_string(), &[]))),
        ..DialFailure::failed(cause)
    }
}

/// `failed` with its answer saying, when the server's bytes open a TLS record (an alert or
/// a handshake, RFC 8446 §5.1: content type 21 or 22, then major version 3), that it
/// speaks TLS on this port: a `ws://` URL for a `wss://` server, which otherwise reads
/// as "invalid HTTP version".
fn named_tls(mut failed: DialFailure, buf: &[u8]) -> DialFailure {
    let tls_record = matches!(buf, [0x15 | 0x16, 0x03, ..]);
    if let (true, Some(answer)) = (tls_record, failed.answer.as_mut()) {
        answer.detail = format!(
            "{}: the server answered with a TLS record, so it speaks TLS on this port (use \
             wss://)",
            answer.detail
        );
    }
    failed
}

fn io_failure(e: std::io::Error) -> DialFailure {
    failure(WsError::Io(e))
}

#[cfg(test)]
#[path = "upgrade_tests.rs"]
mod tests;
