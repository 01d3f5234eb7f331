//! A client byte stream (plain TCP or TLS over TCP) that can hold back the end of the
//! upgrade request until a barrier releases it: last-byte synchronization, the way a burst
//! of handshakes is made to land on the server together (docs/race-patterns.md, "Hitting
//! the window"). After the upgrade, the same hold can take the next frame (a short one
//! whole, a long one's last byte) for a message rendezvous ([`ClientStream::hold_frame`]).

use super::barrier::{Barrier, ParkedTail};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::WaitForCancellationFutureOwned;

/// What the WebSocket runs over.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A transport plus an optional hold on the upgrade request's terminator.
pub struct ClientStream {
    transport: Transport,
    /// Boxed: only a connection at a collide barrier or a rendezvous holds bytes back,
    /// and every open connection's stream would otherwise carry the hold's room.
    hold: Option<Box<Hold>>,
    /// When the held bytes went out, once released; shared so it survives a failed upgrade.
    pub released_at: Arc<OnceLock<Instant>>,
    /// Reads the server's Close frames off the wire, code as sent.
    sniffer: CloseSniffer,
}

/// What a hold keeps back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HoldWhat {
    /// The upgrade request's terminator, `\r\n\r\n`, and anything after it.
    Terminator,
    /// The next frame written, whole when short, else its last byte (and anything after).
    Frame,
}

struct Hold {
    what: HoldWhat,
    /// Bytes from the first held byte on.
    tail: Vec<u8>,
    written: usize,
    release: Pin<Box<WaitForCancellationFutureOwned>>,
    released: bool,
    barrier: Arc<Barrier>,
    /// Set when the barrier took the tail to write it itself.
    parked: Option<ParkedTail>,
    /// When the held bytes went out.
    sent_at: Arc<OnceLock<Instant>>,
    /// The connection, counted as an arrival when its bytes are parked (rendezvous only).
    conn: Option<u32>,
}

const TERMINATOR: &[u8] = b"\r\n\r\n";

/// Frames up to this size are held whole at a rendezvous; a longer one goes out but for
/// its last byte. A small frame is one TCP segment either way, and sending none of it early
/// keeps the server's TCP in delayed-ACK mode: a part-frame that sat unanswered past the
/// delayed-ACK timeout makes the server acknowledge the last byte at once, which on loopback
/// runs inside the release's `send` and doubles its cost.
const WHOLE_FRAME_MAX: usize = 1024;

impl ClientStream {
    pub fn new(transport: Transport) -> Self {
        ClientStream {
            transport,
            hold: None,
            released_at: Arc::default(),
            sniffer: CloseSniffer::default(),
        }
    }

    /// Whether a write is on the wire when it returns: plain TCP, nothing held back. Then a
    /// flush has nothing to do (TCP's is a no-op); over TLS, or with a hold, it may.
    pub fn writes_through(&self) -> bool {
        self.hold.is_none() && matches!(self.transport, Transport::Plain(_))
    }

    /// Holds the request's final bytes until `barrier` releases them; the instant they go
    /// out is stored in `released_at` (the caller's handle: the dial reads it after the
    /// upgrade, whatever became of the stream).
    pub(crate) fn held(
        transport: Transport,
        barrier: Arc<Barrier>,
        released_at: Arc<OnceLock<Instant>>,
    ) -> Self {
        let hold = Hold::new(HoldWhat::Terminator, barrier, released_at.clone(), None);
        ClientStream {
            transport,
            hold: Some(Box::new(hold)),
            released_at,
            sniffer: CloseSniffer::default(),
        }
    }

    /// Holds the next frame written (whole up to [`WHOLE_FRAME_MAX`] bytes, else its last
    /// byte) until `barrier` (a message rendezvous) releases it; parking it counts `conn` as arrived. Returns where the
    /// instant the byte went out will be stored.
    pub(crate) fn hold_frame(
        &mut self,
        barrier: Arc<Barrier>,
        conn: u32,
    ) -> Arc<OnceLock<Instant>> {
        let sent_at: Arc<OnceLock<Instant>> = Arc::default();
        self.hold = Some(Box::new(Hold::new(
            HoldWhat::Frame,
            barrier,
            sent_at.clone(),
            Some(conn),
        )));
        sent_at
    }

    /// Hands the tail to the barrier: a plain-TCP one through a duplicate of the socket,
    /// which the release writes; a TLS one is only counted (its connection is woken to
    /// write it).
    fn park(&mut self) {
        let socket = match &self.transport {
            Transport::Plain(tcp) => std::os::fd::AsFd::as_fd(tcp)
                .try_clone_to_owned()
                .ok()
                .map(std::net::TcpStream::from),
            Transport::Tls(_) => None,
        };
        let Some(hold) = self.hold.as_mut() else {
            return;
        };
        hold.parked = hold
            .barrier
            .park(socket, hold.tail.clone(), hold.sent_at.clone(), hold.conn);
    }

    /// The payload of the latest Close frame the server sent, as it was on the wire.
    pub fn last_close(&self) -> Option<RawClose> {
        self.sniffer.last
    }

    fn tcp(&self) -> &TcpStream {
        match &self.transport {
            Transport::Plain(s) => s,
            Transport::Tls(s) => s.get_ref().0,
        }
    }

    /// Makes the next close send an RST instead of a FIN (abortive close).
    pub fn set_reset_on_close(&self) -> io::Result<()> {
        socket2::SockRef::from(self.tcp()).set_linger(Some(std::time::Duration::ZERO))
    }

    fn transport(&mut self) -> Pin<&mut (dyn AsyncWriteRead + '_)> {
        match &mut self.transport {
            Transport::Plain(s) => Pin::new(s),
            Transport::Tls(s) => Pin::new(s.as_mut()),
        }
    }

    /// Waits for the barrier, then writes the held bytes.
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let Some(hold) = self.hold.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            if hold.tail.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if !hold.released {
                ready!(hold.release.as_mut().poll(cx));
                hold.released = true;
                if let Some(parked) = &hold.parked {
                    // The barrier wrote this much for us; anything left is ours to write.
                    hold.written = parked.written.load(std::sync::atomic::Ordering::Acquire);
                }
            }
            if hold.written == hold.tail.len() {
                // A no-op when the barrier already stamped it.
                let _ = hold.sent_at.set(Instant::now());
                self.hold = None;
                return Poll::Ready(Ok(()));
            }
            let (tail, from) = (std::mem::take(&mut hold.tail), hold.written);
            let result = self.transport().poll_write(cx, &tail[from..]);
            let hold = self
                .hold
                .as_mut()
                .ok_or_else(|| io::Error::other("hold vanished"))?;
            hold.tail = tail;
            hold.written += ready!(result)?;
        }
    }
}

impl Hold {
    fn new(
        what: HoldWhat,
        barrier: Arc<Barrier>,
        sent_at: Arc<OnceLock<Instant>>,
        conn: Option<u32>,
    ) -> Self {
        Hold {
            what,
            tail: Vec::new(),
            written: 0,
            release: Box::pin(barrier.token.clone().cancelled_owned()),
            released: false,
            barrier,
            parked: None,
            sent_at,
            conn,
        }
    }
}

/// Both halves, so one pinned reference serves reads and writes.
trait AsyncWriteRead: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWriteRead for T {}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(this.transport().poll_read(cx, buf))?;
        this.sniffer.feed(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(hold) = this.hold.as_mut() {
            if !hold.tail.is_empty() {
                // Already holding: keep anything more behind the barrier too.
                hold.tail.extend_from_slice(buf);
                return Poll::Ready(Ok(buf.len()));
            }
            if hold.what == HoldWhat::Frame {
                // A long frame goes out now but for its last byte; after a partial write the
                // caller comes back with the rest, and at last with that byte alone. A short
                // one is held whole ([`WHOLE_FRAME_MAX`]).
                if buf.len() > WHOLE_FRAME_MAX {
                    let most = buf.len() - 1;
                    return this.transport().poll_write(cx, &buf[..most]);
                }
                hold.tail = buf.to_vec();
                if !buf.is_empty() {
                    this.park();
                }
                return Poll::Ready(Ok(buf.len()));
            }
            match buf.windows(TERMINATOR.len()).position(|w| w == TERMINATOR) {
                Some(0) => {
                    hold.tail = buf.to_vec();
                    this.park();
                    return Poll::Ready(Ok(buf.len()));
                }
                // Everything before the terminator goes out now; partial writes are fine,
                // the terminator is still ahead in the caller's next buffer.
                Some(at) => return this.transport().poll_write(cx, &buf[..at]),
                None => {}
            }
        }
        this.transport().poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_release(cx))?;
        this.transport().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().transport().poll_shutdown(cx)
    }
}

/// What a Close frame from the server carried, read before tungstenite sees it: tungstenite
/// reports a code RFC 6455 forbids on the wire (999, 1005, ...) as 1002, and the code
/// actually sent is a finding of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawClose {
    /// An empty payload: no status code.
    Empty,
    /// A one-byte payload: not even a code (tungstenite fails the connection).
    Truncated,
    /// The two-byte code, as sent, and nothing after it.
    Code(u16),
    /// The two-byte code, as sent, and a reason after it. tungstenite hands up its own
    /// reason ("Protocol violation") for a code RFC 6455 forbids: the server's is then
    /// known to exist, never what it said.
    CodeAndReason(u16),
}

/// Follows the server's side of the connection frame by frame (headers only; payloads are
/// skipped, except a Close frame's first two bytes). Starts in the HTTP response.
#[derive(Debug, Default)]
struct CloseSniffer {
    state: Sniff,
    last: Option<RawClose>,
}

#[derive(Debug)]
enum Sniff {
    /// In the HTTP response: how much of its `\r\n\r\n` end has been seen.
    Http(usize),
    /// A frame header: its bytes so far (at most 2 + 8 + 4).
    Header { bytes: [u8; 14], have: usize },
    /// A payload: bytes left; for a Close frame, its length, mask and code bytes so far.
    Payload { left: u64, close: Option<CloseRead> },
}

impl Default for Sniff {
    fn default() -> Self {
        Sniff::Http(0)
    }
}

#[derive(Debug, Clone, Copy)]
struct CloseRead {
    len: u64,
    mask: Option<[u8; 4]>,
    code: [u8; 2],
    have: usize,
}

impl Sniff {
    fn header() -> Sniff {
        Sniff::Header {
            bytes: [0; 14],
            have: 0,
        }
    }
}

/// Header bytes a frame needs once its first two are known.
fn header_len(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

impl CloseSniffer {
    /// Takes the next bytes read from the server.
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if matches!(self.state, Sniff::Header { have: 0, .. }) {
                data = skip_whole_frames(data);
                if data.is_empty() {
                    return;
                }
            }
            match &mut self.state {
                Sniff::Http(matched) => {
                    let mut used = 0;
                    for &b in data {
                        used += 1;
                        *matched = if b == TERMINATOR[*matched] {
                            *matched + 1
                        } else {
                            usize::from(b == b'\r')
                        };
                        if *matched == TERMINATOR.len() {
                            break;
                        }
                    }
                    if *matched == TERMINATOR.len() {
                        self.state = Sniff::header();
                    }
                    data = &data[used..];
                }
                Sniff::Header { bytes, have } => {
                    let need = if *have >= 2 { header_len(bytes[1]) } else { 2 };
                    let take = (need - *have).min(data.len());
                    bytes[*have..*have + take].copy_from_slice(&data[..take]);
                    *have += take;
                    data = &data[take..];
                    if *have >= 2 && *have == header_len(bytes[1]) {
                        let header = *bytes;
                        let have = *have;
                        self.state = self.start_payload(&header[..have]);
                    }
                }
                Sniff::Payload { left, close } => {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                    if let Some(c) = close {
                        for &b in data[..take].iter().take(2usize.saturating_sub(c.have)) {
                            let key = c.mask.map_or(0, |m| m[c.have % 4]);
                            c.code[c.have] = b ^ key;
                            c.have += 1;
                        }
                    }
                    *left -= take as u64;
                    data = &data[take..];
                    if *left == 0 {
                        let close = *close;
                        self.state = Sniff::header();
                        if let Some(c) = close {
                            self.last = Some(c.finish());
                        }
                    }
                }
            }
        }
    }

    /// The state after a complete `header`; an empty Close frame is recorded right away.
    fn start_payload(&mut self, header: &[u8]) -> Sniff {
        // A whole header holds its extended length.
        let len = payload_len(header).unwrap_or_default();
        let mask = (header[1] & 0x80 != 0).then(|| {
            let at = header.len() - 4;
            [header[at], header[at + 1], header[at + 2], header[at + 3]]
        });
        let close = (header[0] & 0x0f == 0x8).then_some(CloseRead {
            len,
            mask,
            code: [0; 2],
            have: 0,
        });
        if len == 0 {
            if let Some(c) = close {
                self.last = Some(c.finish());
            }
            return Sniff::header();
        }
        Sniff::Payload { left: len, close }
    }
}

/// What follows the whole frames but Close ones at the start of `data`, which starts at a
/// frame's first byte: most reads hold whole data frames, each looked at in place instead
/// of its header copied byte by byte into [`Sniff::Header`]. Stops at a Close frame and at
/// a frame that `data` does not hold whole, for [`CloseSniffer::feed`]'s general path.
fn skip_whole_frames(mut data: &[u8]) -> &[u8] {
    while let [b0, b1, ..] = *data {
        if b0 & 0x0f == 0x8 {
            break;
        }
        let header = header_len(b1);
        let end = data
            .get(..header)
            .and_then(payload_len)
            .and_then(|len| usize::try_from(len).ok())
            .and_then(|len| len.checked_add(header))
            .filter(|end| *end <= data.len());
        let Some(end) = end else {
            break;
        };
        data = &data[end..];
    }
    data
}

/// The payload length a frame's `header` gives (RFC 6455 §5.2: 7 bits, or 16 or 64 after
/// them); `None` when `header` is too short to hold it.
fn payload_len(header: &[u8]) -> Option<u64> {
    let extended = header.get(2..)?;
    match header.get(1)? & 0x7f {
        126 => extended
            .first_chunk::<2>()
            .map(|b| u64::from(u16::from_be_bytes(*b))),
        127 => extended.first_chunk::<8>().map(|b| u64::from_be_bytes(*b)),
        n => Some(u64::from(n)),
    }
}

impl CloseRead {
    fn finish(self) -> RawClose {
        match self.len {
            0 => RawClose::Empty,
            1 => RawClose::Truncated,
            2 => RawClose::Code(u16::from_be_bytes(self.code)),
            _ => RawClose::CodeAndReason(u16::from_be_bytes(self.code)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes the peer has received so far, without waiting for more.
    fn received(peer: &mut std::net::TcpStream) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match peer.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => return out,
            }
        }
    }

    /// A plain stream with nothing held writes through: a message tungstenite takes (with
    /// `write_buffer_size` 0, as the dialer configures it) is on the wire once its sink is
    /// ready again, no flush needed (what `ConnRun::send_now` relies on). A held stream
    /// does not write through.
    #[tokio::test]
    async fn a_plain_stream_writes_a_message_through_without_a_flush() {
        use futures_util::Sink;
        use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_nonblocking(true).unwrap();
        let stream = ClientStream::new(Transport::Plain(client));
        assert!(stream.writes_through());
        let config = WebSocketConfig::default().write_buffer_size(0);
        let mut ws =
            tokio_tungstenite::WebSocketStream::from_raw_socket(stream, Role::Client, Some(config))
                .await;
        let mut ws = std::pin::Pin::new(&mut ws);
        ws.as_mut()
            .start_send(tokio_tungstenite::tungstenite::Message::text("hello"))
            .unwrap();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(matches!(
            ws.as_mut().poll_ready(&mut cx),
            Poll::Ready(Ok(()))
        ));
        // A write on loopback is in the peer's queue when it returns: two header bytes, a
        // four-byte mask, the five of the text.
        assert_eq!(received(&mut peer).len(), 2 + 4 + 5);

        let barrier = Barrier::rendezvous(
            tokio_util::sync::CancellationToken::new(),
            Instant::now(),
            super::super::barrier::Quorum {
                count: 2,
                members: 2,
                absent: Arc::default(),
                timeout: std::time::Duration::from_secs(30),
            },
        );
        let client = TcpStream::connect(addr).await.unwrap();
        let held = ClientStream::held(Transport::Plain(client), barrier, Arc::default());
        assert!(!held.writes_through());
    }

    #[tokio::test]
    async fn a_short_frame_is_held_whole_and_a_long_one_but_for_its_last_byte() {
        use super::super::barrier::Quorum;
        use tokio::io::AsyncWriteExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for (len, before_release) in [
            (10, 0),
            (WHOLE_FRAME_MAX, 0),
            (WHOLE_FRAME_MAX + 1, WHOLE_FRAME_MAX),
            (3 * WHOLE_FRAME_MAX, 3 * WHOLE_FRAME_MAX - 1),
        ] {
            let client = TcpStream::connect(addr).await.unwrap();
            let (mut peer, _) = listener.accept().unwrap();
            peer.set_nonblocking(true).unwrap();
            let mut stream = ClientStream::new(Transport::Plain(client));
            // Two members, one arrives: the meeting waits until fired by hand.
            let quorum = Quorum {
                count: 2,
                members: 2,
                absent: Arc::default(),
                timeout: std::time::Duration::from_secs(30),
            };
            let barrier = Barrier::rendezvous(
                tokio_util::sync::CancellationToken::new(),
                Instant::now(),
                quorum,
            );
            let sent_at = stream.hold_frame(barrier.clone(), 0);
            let frame: Vec<u8> = (0..len).map(|i| i as u8).collect();
            stream.write_all(&frame).await.unwrap();
            // A write on loopback is in the peer's queue when it returns.
            let early = received(&mut peer);
            assert_eq!(
                early.len(),
                before_release,
                "{len}-byte frame before the release"
            );
            assert!(sent_at.get().is_none());
            barrier.fire(false);
            stream.flush().await.unwrap();
            assert!(
                sent_at.get().is_some(),
                "the release stamps when it went out"
            );
            let mut all = early;
            all.extend(received(&mut peer));
            assert_eq!(all, frame, "{len}-byte frame, whole and once");
        }
    }

    /// A server frame (unmasked unless `mask`), `opcode` with `payload`.
    fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(m | n as u8),
            n if n <= 0xffff => {
                out.push(m | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(m | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }

    fn close(code: u16) -> Vec<u8> {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(b"bye");
        frame(0x8, &p, None)
    }

    /// Feeds `bytes` in chunks of `chunk` and returns what the sniffer saw last.
    fn sniff(bytes: &[u8], chunk: usize) -> Option<RawClose> {
        let mut s = CloseSniffer::default();
        for part in bytes.chunks(chunk) {
            s.feed(part);
        }
        s.last
    }

    #[test]
    fn the_close_code_is_read_as_sent_after_the_response_and_any_frames() {
        let mut wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        wire.extend(frame(0x1, br#"{"type":"hello"}"#, None));
        // Lengths of 7, 16 and 64 bits, a masked frame, and two data frames in one read.
        wire.extend(frame(0x1, &[b'a'; 300], None));
        wire.extend(frame(0x1, b"masked", Some([9, 8, 7, 6])));
        wire.extend(frame(0x2, &vec![7u8; 70_000], None));
        wire.extend(frame(0x9, b"ping", None));
        wire.extend(close(999));
        for chunk in [1, 2, 3, 7, 64, 100_000] {
            assert_eq!(
                sniff(&wire, chunk),
                Some(RawClose::CodeAndReason(999)),
                "chunk {chunk}"
            );
        }
    }

    /// Whole frames of every header size in one read: the sniffer ends at the next frame's
    /// first byte, and reads the Close that comes after them.
    #[test]
    fn whole_frames_in_one_read_leave_the_sniffer_at_the_next_header() {
        let mut s = CloseSniffer::default();
        s.feed(b"HTTP/1.1 101 OK\r\n\r\n");
        let frames = [
            frame(0x1, b"a", None),
            frame(0x1, &[b'b'; 300], None),
            frame(0x2, &vec![7; 70_000], None),
            frame(0x1, b"masked text", Some([1, 2, 3, 4])),
        ]
        .concat();
        s.feed(&frames);
        assert!(
            matches!(s.state, Sniff::Header { have: 0, .. }),
            "{:?}",
            s.state
        );
        assert_eq!(s.last, None);
        s.feed(&close(4001));
        assert_eq!(s.last, Some(RawClose::CodeAndReason(4001)));
    }

    #[test]
    fn empty_truncated_masked_and_later_closes() {
        let head = b"HTTP/1.1 101 OK\r\n\r\n".to_vec();
        let with = |tail: Vec<u8>| [head.clone(), tail].concat();
        assert_eq!(
            sniff(&with(frame(0x8, b"", None)), 1),
            Some(RawClose::Empty)
        );
        assert_eq!(
            sniff(&with(frame(0x8, b"\x03", None)), 1),
            Some(RawClose::Truncated)
        );
        // A code alone, masked; `close` sends one with a reason.
        let masked = frame(0x8, &1005u16.to_be_bytes(), Some([1, 2, 3, 4]));
        assert_eq!(sniff(&with(masked), 2), Some(RawClose::Code(1005)));
        let two = [close(4000), close(1000)].concat();
        assert_eq!(sniff(&with(two), 5), Some(RawClose::CodeAndReason(1000)));
        // Nothing but frames of data: no close.
        assert_eq!(sniff(&with(frame(0x1, b"x", None)), 1), None);
        // A "\r\r\n\r\n" still ends the response.
        let odd = [b"HTTP/1.1 101 OK\r\r\n\r\n".to_vec(), close(3000)].concat();
        assert_eq!(sniff(&odd, 1), Some(RawClose::CodeAndReason(3000)));
    }
}
