//! Opening one WebSocket: TCP connect, TLS, upgrade, each timed on its own, and every
//! failure classified by cause (never propagated as a tool error).

use super::barrier::Barrier;
use super::stream::{ClientStream, RawClose, Transport};
use crate::auth::{attach_with, Token, UpgradeExtras};
use crate::model::{Answer, Cause, Phase};
use crate::model::{Limits, Placement};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<ClientStream>;

/// A parsed and resolved target URL.
#[derive(Clone)]
pub struct Endpoint {
    /// The URL as shown (its `${NAME}` references unexpanded, a literal password masked:
    /// [`crate::model::url::shown_url`]): what messages show.
    pub url: String,
    /// The URL dialled: `url` with its references expanded ([`crate::model::url::dial_url`]).
    /// Never shown: it may hold a secret from the environment.
    dial_url: String,
    pub addr: SocketAddr,
    pub tls: bool,
    host: String,
    /// Whether the path or query holds placeholders to fill for each connection
    /// ([`crate::model::url::TARGET_PLACEHOLDERS`]): see [`Endpoint::url_for`].
    templated: bool,
}

impl std::fmt::Debug for Endpoint {
    /// The URL as written, never the one dialled.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// A target URL taken apart for the dialer, its host not yet resolved.
struct Parsed {
    /// As [`Endpoint::url`].
    url_shown: String,
    /// As [`Endpoint::dial_url`].
    dial_url: String,
    tls: bool,
    host: String,
    port: u16,
    templated: bool,
}

impl Parsed {
    /// Parses `url` as written, its `${NAME}` references expanded through `lookup`.
    fn of(url: &str, lookup: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<Parsed, UrlError> {
        let dial_url = crate::model::url::dial_url(url, lookup);
        // `url` may hold a literal password: every message names it as shown.
        let url_shown = crate::model::url::shown_url(url);
        let dial_url = dial_url.map_err(|source| UrlError::Env {
            url: url_shown.clone(),
            source,
        })?;
        // What the parser says of the expanded URL, with each value shown as its name.
        let shown = |text: &str| crate::model::url::redact_values(text, url, lookup);
        let invalid = |reason: &str| UrlError::Invalid {
            url: url_shown.clone(),
            reason: shown(reason),
        };
        // The host and port are resolved once: a placeholder there cannot be filled for
        // each connection. One in the path is checked in the shape every connection
        // dials (filled, its value percent-encoded).
        if let Some(problem) = crate::model::url::placeholder_problem(url) {
            return Err(invalid(&problem));
        }
        if let Some(problem) = crate::model::url::fragment_problem(&dial_url) {
            return Err(invalid(problem));
        }
        let templated = crate::model::url::is_templated(&dial_url);
        let uri: tokio_tungstenite::tungstenite::http::Uri = crate::plan::url_with_zeros(&dial_url)
            .parse()
            .map_err(|_| invalid("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => return Err(invalid("scheme must be ws:// or wss://")),
        };
        let host = uri
            .host()
            .ok_or_else(|| invalid("no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        // `Uri` takes `:99999` or `:abc` for no port at all: refuse it rather than dial the
        // scheme's default.
        let port = crate::model::url::explicit_port(&dial_url)
            .map_err(|reason| invalid(&reason))?
            .unwrap_or(if tls { 443 } else { 80 });
        Ok(Parsed {
            url_shown,
            dial_url,
            tls,
            host,
            port,
            templated,
        })
    }
}

/// The target URL is unusable. Each names the URL as shown: a value its `${NAME}`
/// references expand to, or a password written in it, is never shown.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("target {url}: {reason}")]
    Invalid { url: String, reason: String },
    #[error("target {url}: cannot resolve {host}: {reason}")]
    Resolve {
        url: String,
        host: String,
        reason: String,
    },
    /// A `${NAME}` of the URL the environment does not set (a repro replayed without it).
    #[error("target {url}: {source}")]
    Env {
        url: String,
        #[source]
        source: crate::model::EnvTextError,
    },
}

impl Endpoint {
    /// Parses a `ws://` or `wss://` URL, as written, and resolves its host once, so DNS
    /// is not counted as connect time. Its `${NAME}` references are expanded from the
    /// process's environment for the dial only.
    pub async fn resolve(url: &str) -> Result<Endpoint, UrlError> {
        Endpoint::resolve_with(url, &|name| std::env::var(name).ok()).await
    }

    /// [`Endpoint::resolve`], looking variables up through `lookup`.
    pub async fn resolve_with(
        url: &str,
        lookup: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Endpoint, UrlError> {
        let parsed = Parsed::of(url, lookup)?;
        // What the resolver says, with each value of the environment shown as its name.
        let shown = |text: &str| crate::model::url::redact_values(text, url, lookup);
        let resolve_err = |reason: String| UrlError::Resolve {
            url: parsed.url_shown.clone(),
            host: shown(&parsed.host),
            reason: shown(&reason),
        };
        let addr = tokio::net::lookup_host((parsed.host.as_str(), parsed.port))
            .await
            .map_err(|e| resolve_err(e.to_string()))?
            .next()
            .ok_or_else(|| resolve_err("no address".into()))?;
        Ok(Endpoint {
            url: parsed.url_shown,
            dial_url: parsed.dial_url,
            addr,
            tls: parsed.tls,
            host: parsed.host,
            templated: parsed.templated,
        })
    }

    /// Checks URL `url` as [`Endpoint::resolve_with`] does, short of resolving its host:
    /// its `${NAME}` references set, its placeholders where they may be, a `ws://` or
    /// `wss://` URL with a host and a valid port. What a run checks before it says
    /// anything of the target (the secret its tokens are signed with, the calibration).
    ///
    /// # Errors
    /// The [`UrlError`] that resolving would give, [`UrlError::Resolve`] aside.
    pub fn check(
        url: &str,
        lookup: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<(), UrlError> {
        Parsed::of(url, lookup).map(drop)
    }

    /// The URL connection `vars` dials when the target's path or query holds placeholders:
    /// this one's filled ([`crate::plan::expand_fixed_url`]). `None` when it holds none
    /// (every connection dials the endpoint's URL). Rendered once per dial, never kept
    /// with the connection; it may hold a value from the environment: never shown.
    pub(crate) fn url_for(&self, vars: &crate::plan::Vars<'_>) -> Option<String> {
        self.templated
            .then(|| crate::plan::expand_fixed_url(&self.dial_url, vars))
    }

    /// Whether each connection dials a URL of its own ([`Endpoint::url_for`]).
    pub(crate) fn is_templated(&self) -> bool {
        self.templated
    }

    fn server_name(&self) -> Option<ServerName<'static>> {
        ServerName::try_from(self.host.clone()).ok()
    }
}

/// Everything a connection needs to dial, shared read-only by all tasks.
pub struct Dialer {
    pub endpoint: Endpoint,
    pub tls: Option<TlsConnector>,
    pub limits: Limits,
    /// The local addresses to connect from, taken in turn (none: the system picks).
    pub sources: SourceAddrs,
    /// TLS for an `https://` login request (`[auth] tokens = { login = ... }`).
    pub login_tls: Option<TlsConnector>,
}

/// How a dial went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialFailure {
    pub cause: Cause,
    /// `true` when the server refused (HTTP status): a rejection, not a failure.
    pub rejected: bool,
    /// What the server said, when it said something other than a 101. Boxed, as a
    /// connection keeps it: a failure is returned by every step of the handshake, so it is
    /// kept small.
    pub answer: Option<Box<Answer>>,
    /// `true` when the client refused the server's certificate in the TLS handshake
    /// (an untrusted issuer, another host's name, out of date): the same for every
    /// attempt at that target, never the server's load.
    pub certificate_refused: bool,
}

impl DialFailure {
    pub(super) fn failed(cause: Cause) -> Self {
        DialFailure {
            cause,
            rejected: false,
            answer: None,
            certificate_refused: false,
        }
    }
}

/// The result of one dial (its timed phases go to the caller's list as they complete).
pub struct Dialed<T> {
    pub result: Result<T, DialFailure>,
    /// When a held (collide) request's last bytes went out, whatever the answer.
    pub released_at: Option<Instant>,
}

/// The upgrade request as HTTP/1.1 bytes, for raw-mode writes.
fn request_bytes(request: &Request) -> Vec<u8> {
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut out = format!("GET {target} HTTP/1.1\r\n").into_bytes();
    for (name, value) in request.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The local addresses a run connects from (`--source-addr`), handed out in turn so that
/// each carries an equal share of the connections. Empty: the system picks the address.
#[derive(Debug, Default)]
pub struct SourceAddrs {
    addrs: Box<[std::net::IpAddr]>,
    turn: std::sync::atomic::AtomicUsize,
}

/// A `--source-addr` address no connection could come from, found before the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--source-addr {addr}: {why}")]
pub struct SourceError {
    pub addr: std::net::IpAddr,
    /// What is wrong with it and what to do, in words.
    pub why: String,
}

impl SourceAddrs {
    /// `addrs`, each checked against the target `to` before any connection: an address a
    /// connection cannot come from would fail every connection given it, read as the
    /// client's limit or the server's fault halfway through the run.
    ///
    /// # Errors
    /// The first address that is the unspecified one, multicast or broadcast, of the other
    /// IP family than `to`, given twice, or not one this host can bind (`bind` is tried,
    /// reserving no port).
    pub fn checked(
        addrs: Vec<std::net::IpAddr>,
        to: SocketAddr,
    ) -> Result<SourceAddrs, SourceError> {
        for (i, &addr) in addrs.iter().enumerate() {
            let refuse = |why: String| Err(SourceError { addr, why });
            if addr.is_unspecified() {
                return refuse(
                    "the unspecified address: leave --source-addr out to have the system choose"
                        .into(),
                );
            }
            let broadcast = matches!(addr, std::net::IpAddr::V4(v4) if v4.is_broadcast());
            if addr.is_multicast() || broadcast {
                return refuse("a multicast or broadcast address opens no TCP connection".into());
            }
            if addr.is_ipv4() != to.is_ipv4() {
                let (this, that) = if to.is_ipv4() {
                    ("IPv6", "IPv4")
                } else {
                    ("IPv4", "IPv6")
                };
                return refuse(format!(
                    "an {this} address cannot reach the {that} target {to}: give addresses of \
                     the target's family"
                ));
            }
            if addrs[..i].contains(&addr) {
                return refuse(
                    "given twice: list each address once (each brings its own ports)".into(),
                );
            }
            if let Err(e) = bound_to(addr) {
                return refuse(format!(
                    "cannot bind it ({e}): give an address of this host"
                ));
            }
        }
        Ok(SourceAddrs::new(addrs))
    }

    /// `addrs` in the order connections take them, unchecked ([`Self::checked`]).
    pub fn new(addrs: Vec<std::net::IpAddr>) -> SourceAddrs {
        SourceAddrs {
            addrs: addrs.into_boxed_slice(),
            turn: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How many addresses there are (0: the system picks).
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Whether there are none (the system picks the address).
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The address for the next connection: the first, the second, …, then the first
    /// again. `None` when there are none.
    pub fn next(&self) -> Option<std::net::IpAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.addrs.get(turn % self.addrs.len()).copied()
    }
}

/// The system connected from another address than the source given ([`Cause::ClientSourceIgnored`]).
#[derive(Debug)]
struct SourceIgnored;

impl std::fmt::Display for SourceIgnored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connected from another address than the source given")
    }
}

impl std::error::Error for SourceIgnored {}

/// A TCP socket bound to `source`, its port left for `connect` to choose where the kernel
/// allows (Linux's `IP_BIND_ADDRESS_NO_PORT`, ip(7)): a port chosen at `bind` is reserved
/// against every other socket on the address, whatever its peer, while one chosen at
/// `connect` only has to make its 4-tuple unique, so connections to different servers can
/// share it. (Either way, ports to one server run out quickly past half the range:
/// `--source-addr` takes several addresses for that.)
///
/// # Errors
/// Creating or binding the socket failed (`EADDRNOTAVAIL` for an address not on this host).
fn bound_to(source: std::net::IpAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = match source {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    choose_port_at_connect(&socket);
    socket.bind(std::net::SocketAddr::new(source, 0))?;
    Ok(socket)
}

/// Best effort: on a kernel without the option (before Linux 4.2) `bind` reserves the port
/// as it always did.
#[cfg(target_os = "linux")]
fn choose_port_at_connect(socket: &tokio::net::TcpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is the socket's own and stays open for the call; the value is
    // a c_int and its size is the length passed with it.
    let _ = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

#[cfg(not(target_os = "linux"))]
fn choose_port_at_connect(_: &tokio::net::TcpSocket) {}

impl Dialer {
    /// Small buffers: tungstenite's defaults allocate 128 KiB per connection up front. The
    /// read buffer is what every idle connection keeps (our handshake, `upgrade`, hands
    /// over an empty one of this size), and tungstenite zeroes the space of each read
    /// first, so a small one is cheaper per message too. 512 bytes: a closed-loop echo or
    /// a few events per read; a flood of small echoes takes more reads than with 1 KiB.
    /// It grows to fit a bigger message (and stays so), up to the limit; beyond it a
    /// message is a finding. What a write may hold follows the same limit: a send up to
    /// `max_message_bytes` goes out (the loader refuses a larger one), with room for its
    /// frame header and what the socket has not taken yet of the one before.
    pub fn ws_config(&self) -> WebSocketConfig {
        let write_room = self
            .limits
            .max_message_bytes
            .max(1 << 20)
            .saturating_add(64 * 1024);
        WebSocketConfig::default()
            .read_buffer_size(512)
            .write_buffer_size(0)
            .max_write_buffer_size(write_room)
            .max_message_size(Some(self.limits.max_message_bytes))
            .max_frame_size(Some(self.limits.max_message_bytes))
    }

    /// Dials; with a `barrier`, the upgrade request's final bytes wait for its release.
    /// Each phase is timed into `phases` as it completes: a caller that stops the dial
    /// (the run ended) keeps the timings of what did complete.
    pub(crate) async fn dial(
        &self,
        token: &Token,
        how: (&Placement, &UpgradeExtras),
        barrier: Option<Arc<Barrier>>,
        phases: &mut Vec<(Phase, Duration)>,
    ) -> Dialed<Ws> {
        let deadline = super::later(Instant::now(), self.limits.handshake_timeout);
        let released = Arc::new(OnceLock::new());
        let result = self
            .dial_stages(token, how, barrier, &released, deadline, phases)
            .await;
        Dialed {
            result,
            released_at: released.get().copied(),
        }
    }

    /// Opens the connection and sends the upgrade request, waits `after` (reading any
    /// answer), then drops the socket, with an RST when `rst`. `Ok(true)` when the 101
    /// arrived before we gave up. Phases are timed into `phases`, as for [`Self::dial`].
    pub(crate) async fn abort(
        &self,
        token: &Token,
        how: (&Placement, &UpgradeExtras),
        (after, rst): (Duration, bool),
        phases: &mut Vec<(Phase, Duration)>,
    ) -> Dialed<bool> {
        let deadline = super::later(Instant::now(), self.limits.handshake_timeout);
        // Each stage has its deadline; the request write and the FIN need one too, or a
        // server that never reads could hold them.
        let stages = self.abort_stages(token, how, after, rst, deadline, phases);
        let result = match timeout_at(deadline + after, stages).await {
            Ok(result) => result,
            Err(_) => Err(DialFailure::failed(Cause::Timeout("upgrade"))),
        };
        Dialed {
            result,
            released_at: None,
        }
    }

    async fn abort_stages(
        &self,
        token: &Token,
        (placement, extras): (&Placement, &UpgradeExtras),
        after: Duration,
        rst: bool,
        deadline: Instant,
        phases: &mut Vec<(Phase, Duration)>,
    ) -> Result<bool, DialFailure> {
        let url = extras.url.as_deref().unwrap_or(&self.endpoint.dial_url);
        let request = attach_with(url, placement, extras, token)
            .map_err(|_| DialFailure::failed(Cause::Protocol))?;
        let mut stream = ClientStream::new(self.transport(deadline, phases).await?);
        stream
            .write_all(&request_bytes(&request))
            .await
            .map_err(|_| DialFailure::failed(Cause::Reset))?;
        let mut buf = [0u8; 512];
        let answer = timeout(after, stream.read(&mut buf)).await;
        let answered = matches!(answer, Ok(Ok(n)) if buf[..n].starts_with(b"HTTP/1.1 101"));
        if rst {
            let _ = stream.set_reset_on_close();
        } else {
            let _ = stream.shutdown().await;
        }
        drop(stream);
        Ok(answered)
    }

    /// A TCP connection to the endpoint, from the next source address when some are set
    /// (each has its own ephemeral ports: how one machine holds more connections to one
    /// server than a single address allows).
    async fn connect(&self) -> std::io::Result<TcpStream> {
        let Some(source) = self.sources.next() else {
            return TcpStream::connect(self.endpoint.addr).await;
        };
        let stream = bound_to(source)?.connect(self.endpoint.addr).await?;
        // Linux lets a socket bind a broadcast address (127.255.255.255), then connects
        // from an address of its own choosing: a connection not from the address given.
        if stream.local_addr()?.ip() != source {
            return Err(std::io::Error::other(SourceIgnored));
        }
        Ok(stream)
    }

    /// TCP connect and, for wss, the TLS handshake: each timed.
    async fn transport(
        &self,
        deadline: Instant,
        phases: &mut Vec<(Phase, Duration)>,
    ) -> Result<Transport, DialFailure> {
        let started = Instant::now();
        let tcp = timeout_at(deadline, self.connect())
            .await
            .map_err(|_| DialFailure::failed(Cause::Timeout("connect")))?
            .map_err(|e| DialFailure::failed(connect_cause(&e)))?;
        phases.push((Phase::TcpConnect, started.elapsed()));
        // Interactive protocol: small frames must not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        self.tls_stage(tcp, deadline, phases).await
    }

    async fn dial_stages(
        &self,
        token: &Token,
        (placement, extras): (&Placement, &UpgradeExtras),
        barrier: Option<Arc<Barrier>>,
        released: &Arc<OnceLock<Instant>>,
        deadline: Instant,
        phases: &mut Vec<(Phase, Duration)>,
    ) -> Result<Ws, DialFailure> {
        let url = extras.url.as_deref().unwrap_or(&self.endpoint.dial_url);
        let request = attach_with(url, placement, extras, token)
            .map_err(|_| DialFailure::failed(Cause::Protocol))?;
        let transport = self.transport(deadline, phases).await?;
        let (stream, deadline) = match barrier {
            // The handshake clock starts at the release, not while we wait for it.
            Some(b) => (
                ClientStream::held(transport, b, released.clone()),
                deadline + self.limits.handshake_timeout,
            ),
            None => (ClientStream::new(transport), deadline),
        };
        let sent = Instant::now();
        let upgrade = super::upgrade::upgrade(stream, request, self.ws_config());
        let ws = timeout_at(deadline, upgrade)
            .await
            .map_err(|_| DialFailure::failed(Cause::Timeout("upgrade")))??;
        // A held request was only complete on the wire at its release.
        let sent = released.get().copied().unwrap_or(sent);
        phases.push((Phase::Upgrade, sent.elapsed()));
        Ok(ws)
    }

    async fn tls_stage(
        &self,
        tcp: TcpStream,
        deadline: Instant,
        phases: &mut Vec<(Phase, Duration)>,
    ) -> Result<Transport, DialFailure> {
        let Some(connector) = (self.endpoint.tls).then_some(self.tls.as_ref()).flatten() else {
            return Ok(Transport::Plain(tcp));
        };
        let name = self
            .endpoint
            .server_name()
            .ok_or_else(|| DialFailure::failed(Cause::Tls))?;
        let started = Instant::now();
        // Boxed: the TLS handshake's state is large, and inline it would be part of every
        // dial's future, plain ones too (all alive at once in a burst of connects).
        let tls = timeout_at(deadline, Box::pin(connector.connect(name, tcp)))
            .await
            .map_err(|_| DialFailure::failed(Cause::Timeout("tls")))?
            .map_err(tls_failure)?;
        phases.push((Phase::Tls, started.elapsed()));
        Ok(Transport::Tls(Box::new(tls)))
    }
}

/// A failed TLS handshake, with what went wrong kept as its answer (`invalid peer
/// certificate: UnknownIssuer`, a CA the client does not trust): the answer line and
/// `summary.json` then say why, where the cause alone (`tls_error`) did not.
fn tls_failure(e: std::io::Error) -> DialFailure {
    let detail = format!("the TLS handshake failed: {e}");
    // tokio-rustls hands rustls's error on inside the I/O error.
    let certificate_refused = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| matches!(tls, rustls::Error::InvalidCertificate(_)));
    DialFailure {
        answer: Some(Box::new(Answer::new(Cause::Tls, detail, b""))),
        certificate_refused,
        ..DialFailure::failed(Cause::Tls)
    }
}

/// Maps a failed TCP connect to its cause. The client's own limits get causes of their
/// own, never charged to the target: out of file descriptors (EMFILE, ENFILE, from the
/// socket call) and out of local ports (EADDRNOTAVAIL: Linux's answer when every port of
/// `net.ipv4.ip_local_port_range` to this destination is taken).
pub fn connect_cause(e: &std::io::Error) -> Cause {
    if e.get_ref().is_some_and(|inner| inner.is::<SourceIgnored>()) {
        return Cause::ClientSourceIgnored;
    }
    match e.raw_os_error() {
        Some(errno) if errno == EMFILE || errno == ENFILE => Cause::ClientFdLimit,
        _ if e.kind() == std::io::ErrorKind::AddrNotAvailable => Cause::ClientPortsExhausted,
        _ => Cause::Connect(connect_kind(e.kind())),
    }
}

/// The label of a failed connect's error kind: snake case, without a leading
/// `connection_` (`ConnectionRefused` → `refused`, `TimedOut` → `timed_out`,
/// `HostUnreachable` → `host_unreachable`), so the cause reads `connect_refused`.
fn connect_kind(kind: std::io::ErrorKind) -> String {
    let name = format!("{kind:?}");
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    match snake.strip_prefix("connection_") {
        Some(rest) => rest.to_string(),
        None => snake,
    }
}

/// `errno` values for "too many open files" (per process, system-wide): the same on
/// Linux and the BSDs.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// How the server's Close frame is recorded: its code as sent, read off the wire (an
/// empty frame is 1005, "no status"); `frame` (tungstenite's reading, which turns a
/// forbidden code into 1002) only when the wire had none.
pub fn close_cause(ws: &Ws, frame: Option<&CloseFrame>) -> Cause {
    match ws.get_ref().last_close() {
        Some(RawClose::Code(code) | RawClose::CodeAndReason(code)) => Cause::of_close_code(code),
        Some(RawClose::Empty) => Cause::ServerClose(1005),
        // tungstenite fails the connection on a one-byte payload before handing it up.
        Some(RawClose::Truncated) => Cause::Protocol,
        None => Cause::ServerClose(frame.map_or(1005, |f| u16::from(f.code))),
    }
}

/// Whether the server's latest Close carried a reason after its code, as it was on the
/// wire: for a code RFC 6455 forbids, tungstenite hands up "Protocol violation" of its own
/// instead, and this alone says whether the server said anything.
pub fn close_had_reason(ws: &Ws) -> bool {
    matches!(ws.get_ref().last_close(), Some(RawClose::CodeAndReason(_)))
}

/// Maps a WebSocket error on an open connection to its cause. The server ending TCP
/// without a Close frame (RFC 6455's abnormal closure, 1006: a process killed, a proxy
/// timing out) is a reset, as one with an RST is, not a protocol fault. A write buffer
/// that filled up ([`Dialer::ws_config`]'s room: frames the socket would not take, such as
/// the pongs owed to a server that pings and never reads) is a server that stopped taking
/// our data, as a write that waited out `send_timeout` is: `timeout_send`, never a fault
/// of the protocol.
pub fn classify(e: &WsError) -> Cause {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        WsError::Io(_) | WsError::ConnectionClosed | WsError::AlreadyClosed => Cause::Reset,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Cause::Reset,
        WsError::WriteBufferFull(_) => Cause::Timeout("send"),
        WsError::Capacity(_) => Cause::Oversized,
        WsError::Tls(_) => Cause::Tls,
        WsError::Http(r) => Cause::Http(r.status().as_u16()),
        _ => Cause::Protocol,
    }
}

/// What the server did wrong when a read on an open connection failed as
/// `protocol_error` ([`classify`]), in plain words: RFC 6455's rule where tungstenite's
/// error names one, its own words otherwise. `None` for any other cause. `ws`: the
/// connection it came on, whose latest Close (as read off the wire) tells invalid UTF-8
/// in a Close reason from invalid UTF-8 in a text frame (tungstenite says the same of
/// both).
pub fn protocol_fault(e: &WsError, ws: Option<&Ws>) -> Option<String> {
    use tokio_tungstenite::tungstenite::error::ProtocolError as P;
    if classify(e) != Cause::Protocol {
        return None;
    }
    let in_close = ws.is_some_and(|ws| ws.get_ref().last_close().is_some());
    Some(match e {
        WsError::Utf8(_) if in_close => {
            "invalid UTF-8 in its Close frame's reason (RFC 6455 §5.5.1)".to_string()
        }
        WsError::Utf8(_) => "invalid UTF-8 in a text frame (RFC 6455 §8.1)".to_string(),
        WsError::Protocol(P::MaskedFrameFromServer) => {
            "a masked frame from the server (RFC 6455 §5.1: a server never masks)".to_string()
        }
        WsError::Protocol(P::NonZeroReservedBits) => {
            "reserved (RSV) bits set with no extension agreed (RFC 6455 §5.2)".to_string()
        }
        WsError::Protocol(P::ControlFrameTooBig) => {
            "a control frame over 125 bytes (RFC 6455 §5.5)".to_string()
        }
        // tungstenite's words: bounded as any quoted answer (they may carry a number).
        WsError::Protocol(p) => Answer::quoted(&p.to_string()),
        other => Answer::quoted(&other.to_string()),
    })
}

/// Shared, read-only dialing state.
pub type SharedDialer = Arc<Dialer>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    /// The port is chosen at `connect` (after `bind` the socket has none), so a worker's
    /// thousands of connections from one address do not search the bound ports one by one.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_socket_from_a_source_address_gets_its_port_at_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let source = std::net::IpAddr::from([127, 0, 0, 1]);
        let socket = bound_to(source).expect("bind to loopback");
        assert_eq!(socket.local_addr().expect("bound").port(), 0);
        let target = listener.local_addr().expect("listening");
        let stream = socket.connect(target).await.expect("connect");
        let local = stream.local_addr().expect("connected");
        assert_eq!(local.ip(), source);
        assert_ne!(local.port(), 0);
    }

    /// An address no connection could come from is refused before the run, saying why;
    /// usable ones pass.
    #[test]
    fn source_addresses_no_connection_could_use_are_refused() {
        let v4_target: SocketAddr = "127.0.0.1:9".parse().expect("an address");
        let v6_target: SocketAddr = "[::1]:9".parse().expect("an address");
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("an address");
        let why = |addrs: &[&str], to| {
            SourceAddrs::checked(addrs.iter().map(|a| ip(a)).collect(), to)
                .map(|s| s.len())
                .map_err(|e| e.to_string())
        };
        assert_eq!(why(&["127.0.0.2", "127.0.1.2"], v4_target), Ok(2));
        assert_eq!(why(&[], v4_target), Ok(0));
        let refused = [
            (vec!["0.0.0.0"], v4_target, "unspecified"),
            (vec!["224.0.0.1"], v4_target, "multicast or broadcast"),
            (vec!["255.255.255.255"], v4_target, "multicast or broadcast"),
            (
                vec!["::1"],
                v4_target,
                "an IPv6 address cannot reach the IPv4 target",
            ),
            (
                vec!["127.0.0.2"],
                v6_target,
                "an IPv4 address cannot reach the IPv6 target",
            ),
            (
                vec!["127.0.0.2", "127.0.1.2", "127.0.0.2"],
                v4_target,
                "given twice",
            ),
            (vec!["192.0.2.1"], v4_target, "cannot bind it"),
        ];
        for (addrs, to, said) in refused {
            let err = why(&addrs, to).expect_err("refused");
            assert!(err.contains(said), "{addrs:?}: {err}");
            assert!(err.starts_with("--source-addr "), "{err}");
        }
    }

    /// A connection the system made from another address than the one given (Linux binds
    /// the loopback broadcast address, then connects from 127.0.0.1) fails with a cause of
    /// the client's own; one from the address given connects.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_connection_not_from_the_source_given_fails_as_the_clients() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let url = format!("ws://{}/ws", listener.local_addr().expect("bound"));
        let endpoint = Endpoint::resolve(&url).await.expect("an endpoint");
        let dialer = |source: [u8; 4]| Dialer {
            endpoint: endpoint.clone(),
            tls: None,
            limits: Limits::default(),
            sources: SourceAddrs::new(vec![std::net::IpAddr::from(source)]),
            login_tls: None,
        };
        let given = dialer([127, 0, 0, 2]);
        let stream = given.connect().await.expect("connected");
        assert_eq!(
            stream.local_addr().expect("local").ip(),
            std::net::IpAddr::from([127, 0, 0, 2])
        );
        let broadcast = dialer([127, 255, 255, 255]);
        match broadcast.connect().await {
            Err(e) => assert_eq!(connect_cause(&e), Cause::ClientSourceIgnored, "{e}"),
            Ok(s) => panic!("connected from {:?}", s.local_addr()),
        }
    }

    #[test]
    fn source_addresses_are_taken_in_turn() {
        assert_eq!(SourceAddrs::default().next(), None);
        let a = std::net::IpAddr::from([127, 0, 0, 2]);
        let b = std::net::IpAddr::from([127, 0, 1, 2]);
        let sources = SourceAddrs::new(vec![a, b]);
        let turns: Vec<_> = (0..5).filter_map(|_| sources.next()).collect();
        assert_eq!(turns, [a, b, a, b, a]);
    }

    #[test]
    fn the_clients_own_limits_have_causes_of_their_own() {
        let errno = io::Error::from_raw_os_error;
        assert_eq!(connect_cause(&errno(EMFILE)), Cause::ClientFdLimit);
        assert_eq!(connect_cause(&errno(ENFILE)), Cause::ClientFdLimit);
        let no_port = io::Error::from(io::ErrorKind::AddrNotAvailable);
        assert_eq!(connect_cause(&no_port), Cause::ClientPortsExhausted);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(connect_cause(&refused), Cause::Connect("refused".into()));
        assert_eq!(connect_cause(&refused).to_string(), "connect_refused");
        assert!(!connect_cause(&refused).is_client_side());
        let kinds = [
            (io::ErrorKind::TimedOut, "timed_out"),
            (io::ErrorKind::HostUnreachable, "host_unreachable"),
            (io::ErrorKind::ConnectionReset, "reset"),
            (io::ErrorKind::PermissionDenied, "permission_denied"),
        ];
        for (kind, label) in kinds {
            assert_eq!(
                connect_cause(&io::Error::from(kind)),
                Cause::Connect(label.into())
            );
        }
    }

    /// A target whose path takes placeholders resolves its host once and gives each
    /// connection its own URL; one whose host takes a placeholder is refused, naming it.
    #[tokio::test]
    async fn a_templated_path_is_filled_per_connection_and_a_templated_host_refused() {
        let env = |name: &str| (name == "KEY").then(|| "k1".to_string());
        let endpoint = Endpoint::resolve_with("ws://127.0.0.1:9/ocpp/CP{{ user }}?k=${KEY}", &env)
            .await
            .unwrap();
        assert_eq!(endpoint.url, "ws://127.0.0.1:9/ocpp/CP{{ user }}?k=${KEY}");
        assert!(endpoint.is_templated());
        let vars = crate::plan::Vars {
            user: 7,
            conn: 3,
            group: "g",
            sub: "s",
            feed: None,
        };
        assert_eq!(
            endpoint.url_for(&vars).as_deref(),
            Some("ws://127.0.0.1:9/ocpp/CP7?k=k1")
        );
        let plain = Endpoint::resolve("ws://127.0.0.1:9/ws").await.unwrap();
        assert_eq!(plain.url_for(&vars), None);
        let err = Endpoint::resolve("ws://{{user}}.localhost:9/ws")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("placeholder \"{{user}}\" in the URL's host or port"),
            "{err}"
        );
        let err = Endpoint::resolve("ws://127.0.0.1:9/{{rn}}")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown placeholder \"{{rn}}\" in target"),
            "{err}"
        );
    }

    /// A server that ends TCP without a Close frame (abnormal closure, 1006) reset the
    /// connection; it is no protocol fault (it once read as `protocol_error`).
    #[test]
    fn tcp_ended_without_a_close_frame_is_a_reset() {
        use tokio_tungstenite::tungstenite::error::ProtocolError;
        let eof = WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake);
        assert_eq!(classify(&eof), Cause::Reset);
        let bad = WsError::Protocol(ProtocolError::NonZeroReservedBits);
        assert_eq!(classify(&bad), Cause::Protocol);
    }
}
