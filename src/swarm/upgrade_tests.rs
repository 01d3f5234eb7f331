//! The handshake against raw loopback servers that answer each upgrade a chosen way.

use super::*;
use crate::swarm::stream::Transport;
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// Every test's bound: a broken handshake must fail, not hang.
const BOUND: Duration = Duration::from_secs(10);

/// A server for one connection: reads the request head, then writes what `reply` makes of
/// the request's `Sec-WebSocket-Key` (in one write), then holds the socket open until the
/// client goes.
async fn server(reply: impl FnOnce(&str) -> Vec<u8> + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let key = text
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_default();
        let _ = tcp.write_all(&reply(&key)).await;
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    addr
}

/// A correct 101 for `key`, with `extra` header lines.
fn switching(key: &str, extra: &str) -> Vec<u8> {
    let accept = derive_accept_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// An unmasked server text frame.
fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x81];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Upgrades a fresh connection to `addr`, offering `subprotocols` when given.
async fn dial(addr: SocketAddr, subprotocols: Option<&str>) -> Result<Ws, DialFailure> {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    if let Some(offer) = subprotocols {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", offer.parse().unwrap());
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = ClientStream::new(Transport::Plain(tcp));
    let config = WebSocketConfig::default().read_buffer_size(512);
    tokio::time::timeout(BOUND, upgrade(stream, request, config))
        .await
        .expect("the handshake ends in time")
}

async fn next_text(ws: &mut Ws) -> String {
    match tokio::time::timeout(BOUND, ws.next()).await.unwrap() {
        Some(Ok(Message::Text(t))) => t.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

fn failed(result: Result<Ws, DialFailure>) -> DialFailure {
    match result {
        Ok(_) => panic!("the handshake should have failed"),
        Err(f) => f,
    }
}

fn detail(f: &DialFailure) -> String {
    f.answer
        .as_ref()
        .map(|a| a.detail.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn frames_sent_in_the_same_write_as_the_101_are_not_lost() {
    // One small frame, then one bigger than the read chunk and the read buffer.
    let big = vec![b'x'; 3000];
    let big2 = big.clone();
    let addr = server(move |key| {
        let mut out = switching(key, "");
        out.extend(text_frame(br#"{"type":"hello"}"#));
        out.extend(text_frame(&big2));
        out
    })
    .await;
    let mut ws = dial(addr, None).await.unwrap();
    assert_eq!(next_text(&mut ws).await, r#"{"type":"hello"}"#);
    assert_eq!(next_text(&mut ws).await.as_bytes(), &big[..]);
}

#[tokio::test]
async fn a_wrong_accept_key_is_a_protocol_error() {
    let addr = server(|_| switching("not-the-key", "")).await;
    let f = failed(dial(addr, None).await);
    assert_eq!(f.cause, Cause::Protocol);
    assert!(!f.rejected);
    assert!(detail(&f).contains("Sec-WebSocket-Accept"), "{f:?}");
}

/// A plain HTTP/1.0 server refuses like any other (its status and body are the finding);
/// only a 101 over HTTP/1.0 is a broken handshake.
#[tokio::test]
async fn an_http_1_0_refusal_is_a_refusal_and_an_http_1_0_101_a_protocol_error() {
    let addr = server(|_| b"HTTP/1.0 404 File not found\r\n\r\nnot here".to_vec()).await;
    let f = failed(dial(addr, None).await);
    assert_eq!(f.cause, Cause::Http(404));
    assert!(f.rejected);
    let answer = f.answer.unwrap();
    assert_eq!(answer.detail, "HTTP/1.0 404 Not Found");
    assert_eq!(answer.body, "not here");
    let addr = server(|key| {
        let mut reply = switching(key, "");
        reply[5..8].copy_from_slice(b"1.0");
        reply
    })
    .await;
    let f = failed(dial(addr, None).await);
    assert_eq!(f.cause, Cause::Protocol);
    assert!(!f.rejected);
    assert!(detail(&f).contains("HTTP version"), "{f:?}");
}

#[tokio::test]
async fn a_non_101_status_keeps_its_code_line_and_body() {
    let addr =
        server(|_| b"HTTP/1.1 403 Nope\r\nContent-Length: 9\r\n\r\nforbidden".to_vec()).await;
    let f = failed(dial(addr, None).await);
    assert_eq!(f.cause, Cause::Http(403));
    assert!(f.rejected);
    let answer = f.answer.unwrap();
    assert_eq!(answer.detail, "HTTP/1.1 403 Forbidden");
    assert_eq!(answer.body, "forbidden");
}

/// A redirect's answer line says where it redirects: what the verdict tells the user to
/// point the URL at.
#[tokio::test]
async fn a_redirect_names_where_it_points() {
    let addr = server(|_| {
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: wss://example.test/ws\r\nContent-Length: 0\r\n\r\n"
            .to_vec()
    })
    .await;
    let answer = failed(dial(addr, None).await).answer.unwrap();
    assert_eq!(answer.cause, Cause::Http(301));
    assert_eq!(
        answer.detail,
        "HTTP/1.1 301 Moved Permanently (Location: wss://example.test/ws)"
    );
}

#[tokio::test]
async fn a_shedding_refusal_keeps_the_delay_its_retry_after_asks_for() {
    let addr = server(|_| {
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After:  2 \r\nContent-Length: 4\r\n\r\nbusy"
            .to_vec()
    })
    .await;
    let answer = failed(dial(addr, None).await).answer.unwrap();
    assert_eq!(answer.cause, Cause::Http(429));
    assert_eq!(answer.retry_after_s, Some(2));
    // An HTTP-date, a negative or no number at all asks for nothing this client reads.
    for value in ["Wed, 21 Oct 2015 07:28:00 GMT", "-1", "", "1.5"] {
        let head = Head {
            headers: vec![("retry-after".into(), value.as_bytes().to_vec())],
            ..Head::default()
        };
        assert_eq!(retry_after(&head), None, "{value:?}");
    }
    assert_eq!(retry_after(&Head::default()), None);
}

#[tokio::test]
async fn a_chunked_refusal_body_is_shown_without_its_chunk_sizes() {
    let addr = server(|_| {
        b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n\
          7\r\ninvalid\r\n6;ext=1\r\n token\r\n0\r\n\r\n"
            .to_vec()
    })
    .await;
    let answer = failed(dial(addr, None).await).answer.unwrap();
    assert_eq!(answer.body, "invalid token");
    // A body cut off inside a chunk keeps what was read of it.
    assert_eq!(dechunk(b"5\r\nhel"), b"hel");
    assert_eq!(dechunk(b"zz\r\nnot chunked"), b"");
}

#[tokio::test]
async fn a_head_longer_than_the_bound_is_a_clear_protocol_error() {
    // 20 headers of 1 KiB each and no end: more than 16 KiB, far fewer than 124 headers.
    let addr = server(|_| {
        let mut out = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
        for i in 0..20 {
            out.extend(format!("X-Pad-{i}: {}\r\n", "a".repeat(1024)).bytes());
        }
        out
    })
    .await;
    let f = failed(dial(addr, None).await);
    assert_eq!(f.cause, Cause::Protocol);
    assert!(detail(&f).contains("16384 bytes"), "{f:?}");
}

#[tokio::test]
async fn too_many_headers_garbage_and_an_early_end_keep_their_causes() {
    let addr = server(|_| {
        let mut out = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
        for i in 0..200 {
            out.extend(format!("X-{i}: a\r\n").bytes());
        }
        out.extend(b"\r\n");
        out
    })
    .await;
    assert_eq!(failed(dial(addr, None).await).cause, Cause::Oversized);

    let addr = server(|_| b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()).await;
    let f = failed(dial(addr, None).await);
    assert_eq!(f.cause, Cause::Protocol);
    assert!(!detail(&f).contains("TLS"), "{f:?}");

    // A TLS server's alert to a plain request: garbage still, named as TLS.
    let addr = server(|_| vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]).await;
    let f = failed(dial(addr, None).await);
    assert_eq!(f.cause, Cause::Protocol);
    assert!(
        detail(&f).contains("speaks TLS on this port (use wss://)"),
        "{f:?}"
    );

    // The server closes its side mid-head.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = tcp.read(&mut buf).await;
        let _ = tcp.write_all(b"HTTP/1.1 101 Swit").await;
    });
    let f = failed(dial(addr, None).await);
    assert!(matches!(f.cause, Cause::Protocol | Cause::Reset), "{f:?}");
}

#[tokio::test]
async fn subprotocols_are_checked_against_the_offer() {
    let chosen = |p: &'static str| move |key: &str| switching(key, p);
    // Chosen from the offer: fine.
    let addr = server(chosen("Sec-WebSocket-Protocol: v2\r\n")).await;
    assert!(dial(addr, Some("v1, v2")).await.is_ok());
    // Not offered.
    let addr = server(chosen("Sec-WebSocket-Protocol: graphql-ws\r\n")).await;
    let f = failed(dial(addr, Some("v1, v2")).await);
    assert_eq!(f.cause, Cause::Protocol);
    assert!(detail(&f).contains("subprotocol"), "{f:?}");
    // Nothing offered, one chosen.
    let addr = server(chosen("Sec-WebSocket-Protocol: v1\r\n")).await;
    let f = failed(dial(addr, None).await);
    assert_eq!(f.cause, Cause::Protocol);
    assert!(detail(&f).contains("none was requested"), "{f:?}");
    // Offered, none chosen.
    let addr = server(chosen("")).await;
    let f = failed(dial(addr, Some("v1")).await);
    assert_eq!(f.cause, Cause::Protocol);
    assert!(detail(&f).contains("no subprotocol"), "{f:?}");
}

/// An extension the client did not offer (permessage-deflate, whose compressed frames no
/// reader here takes) fails the handshake, naming it; one the scenario's headers offered,
/// or an empty header, does not.
#[tokio::test]
async fn an_extension_the_client_did_not_offer_fails_the_handshake() {
    let deflate = |key: &str| switching(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    let addr = server(deflate).await;
    let f = failed(dial(addr, None).await);
    assert_eq!(f.cause, Cause::Protocol);
    let said = detail(&f);
    assert!(
        said.contains("chose the extension permessage-deflate though the client offered none"),
        "{said}"
    );
    let addr = server(|key: &str| switching(key, "Sec-WebSocket-Extensions: \r\n")).await;
    assert!(dial(addr, None).await.is_ok());
    // Offered in the scenario's headers: the server may choose it.
    let addr = server(deflate).await;
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Extensions",
        "permessage-deflate".parse().unwrap(),
    );
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = ClientStream::new(Transport::Plain(tcp));
    let config = WebSocketConfig::default().read_buffer_size(512);
    let offered = tokio::time::timeout(BOUND, upgrade(stream, request, config)).await;
    assert!(matches!(offered, Ok(Ok(_))));
}

#[tokio::test]
async fn upgrade_and_connection_headers_are_required_a_token_list_is_fine() {
    let addr = server(|key| {
        let accept = derive_accept_key(key.as_bytes());
        format!("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n").into_bytes()
    })
    .await;
    assert!(dial(addr, None).await.is_ok());
    let addr = server(|key| {
        let accept = derive_accept_key(key.as_bytes());
        format!("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
            .into_bytes()
    })
    .await;
    let f = failed(dial(addr, None).await);
    assert!(detail(&f).contains("Upgrade: websocket"), "{f:?}");
    let addr = server(|key| {
        let accept = derive_accept_key(key.as_bytes());
        format!("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: close\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
            .into_bytes()
    })
    .await;
    let f = failed(dial(addr, None).await);
    assert!(detail(&f).contains("Connection: upgrade"), "{f:?}");
}

/// A refusal's body written apart from its head is read as far as its `Content-Length`
/// says (up to what an answer shows); one that never comes is waited for only briefly.
#[tokio::test]
async fn a_refusals_body_that_follows_its_head_is_read_within_a_bound() {
    use tokio::io::AsyncWriteExt as _;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap();
    let (mut peer, _) = listener.accept().await.unwrap();
    let mut stream = ClientStream::new(Transport::Plain(client));
    let head = |headers: &[(&str, &str)], minor: u8| Head {
        minor,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        ..Head::default()
    };
    let nine = Follows::of(&head(&[("Content-Length", "9")], 1), false);
    assert_eq!(nine, Follows::Bytes(9));
    peer.write_all(b"forbidden").await.unwrap();
    assert_eq!(
        rest_of_body(&mut stream, Vec::new(), nine).await,
        b"forbidden"
    );
    // Part of it came with the head; the rest was promised and never sent.
    peer.write_all(b"bid").await.unwrap();
    let started = std::time::Instant::now();
    let body = rest_of_body(&mut stream, b"for".to_vec(), nine).await;
    assert_eq!(body, b"forbid");
    assert!(
        started.elapsed() < BODY_WAIT * 20,
        "{:?}",
        started.elapsed()
    );
    // Chunked: read up to the last chunk, shown without the sizes.
    let chunks = Follows::of(&head(&[], 1), true);
    assert_eq!(chunks, Follows::Chunks);
    peer.write_all(b"3\r\nbid\r\n0\r\n\r\n").await.unwrap();
    let raw = rest_of_body(&mut stream, b"3\r\nfor\r\n".to_vec(), chunks).await;
    assert_eq!(dechunk(&raw), b"forbid");
    // No length, and HTTP/1.0 or `Connection: close`: until the server closes.
    assert_eq!(Follows::of(&head(&[], 0), false), Follows::UntilClose);
    let closing = Follows::of(&head(&[("Connection", "close")], 1), false);
    assert_eq!(closing, Follows::UntilClose);
    peer.write_all(b"den").await.unwrap();
    peer.shutdown().await.unwrap();
    assert_eq!(
        rest_of_body(&mut stream, b"forbid".to_vec(), closing).await,
        b"forbidden"
    );
    // No length said on a kept connection: nothing more is waited for.
    let nothing = Follows::of(&head(&[], 1), false);
    assert_eq!(nothing, Follows::Nothing);
    assert_eq!(
        rest_of_body(&mut stream, b"x".to_vec(), nothing).await,
        b"x"
    );
}
