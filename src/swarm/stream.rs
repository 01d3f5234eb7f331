//! A client byte stream (plain TCP or TLS over TCP) that can hold back the end of the
//! upgrade request until a barrier releases it: last-byte synchronization, the way a burst
//! of handshakes is made to land on the server together (docs/race-patterns.md, "Hitting
//! the window").

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
    hold: Option<Hold>,
    /// When the held bytes went out, once released; shared so it survives a failed upgrade.
    pub released_at: Arc<OnceLock<Instant>>,
}

struct Hold {
    /// Bytes from the first byte of the request's `\r\n\r\n` on.
    tail: Vec<u8>,
    written: usize,
    release: Pin<Box<WaitForCancellationFutureOwned>>,
    released: bool,
    barrier: Arc<Barrier>,
    /// Set when the barrier took the tail to write it itself.
    parked: Option<ParkedTail>,
}

const TERMINATOR: &[u8] = b"\r\n\r\n";

impl ClientStream {
    pub fn new(transport: Transport) -> Self {
        ClientStream {
            transport,
            hold: None,
            released_at: Arc::default(),
        }
    }

    /// Holds the request's final bytes until `barrier` releases them.
    pub(crate) fn held(transport: Transport, barrier: Arc<Barrier>) -> Self {
        let hold = Hold {
            tail: Vec::new(),
            written: 0,
            release: Box::pin(barrier.token.clone().cancelled_owned()),
            released: false,
            barrier,
            parked: None,
        };
        ClientStream {
            transport,
            hold: Some(hold),
            released_at: Arc::default(),
        }
    }

    /// Hands a plain-TCP tail to the barrier, which writes it at the release.
    fn park(&mut self) {
        let Transport::Plain(tcp) = &self.transport else {
            return;
        };
        let Some(hold) = self.hold.as_mut() else {
            return;
        };
        let Ok(dup) = std::os::fd::AsFd::as_fd(tcp).try_clone_to_owned() else {
            return;
        };
        let socket = std::net::TcpStream::from(dup);
        hold.parked = hold
            .barrier
            .park(socket, hold.tail.clone(), self.released_at.clone());
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
                self.hold = None;
                // A no-op when the barrier already stamped it.
                let _ = self.released_at.set(Instant::now());
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

/// Both halves, so one pinned reference serves reads and writes.
trait AsyncWriteRead: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWriteRead for T {}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().transport().poll_read(cx, buf)
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
