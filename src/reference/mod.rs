//! The reference server: speaks the golden-path protocol
//! (`docs/protocol.md`) so the quick start, the examples and the
//! tests have a target, and plants one race at a time ([`Bug`]) so the race
//! hunter has something to find.
//!
//! # Layout
//! - `conn`: TCP → TLS → WebSocket upgrade; auth and the `jti` claim run in the
//!   upgrade callback, so refusals are plain HTTP 401/409.
//! - `session`: one task per connection, one bounded outbound queue, one writer
//!   that stamps `seq`; `run` pushes a run's events into that queue.
//! - `auth`, `registry`, `protocol`, `tls`, `stats`: what their names say.
//! - `bugs`: the planted races, each behind a `config.bug` check so the correct
//!   path stays as it is.
//!
//! [`serve`] is the seam (mini-redis style): it serves a listener until the
//! token fires. [`spawn`] binds, starts [`serve`] in a task and returns a
//! [`ServerHandle`] for tests and the CLI.

mod auth;
mod bugs;
mod conn;
mod protocol;
mod registry;
mod run;
mod session;
mod stats;
mod tls;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub(crate) use auth::{JWT_SUBPROTOCOL, TOKEN_QUERY_PARAM, TOKEN_SUBPROTOCOL_PREFIX};
pub use bugs::{Bug, UnknownBug};
pub use stats::ServerStats;
pub use tls::TlsSetup;

use auth::Verifier;
use bugs::BugState;
use registry::Registry;
use stats::Stats;

/// How long connections get to close after the token fires.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Upper bound for [`ServerHandle::shutdown`].
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// How often, and how far apart, [`ServerHandle::restart`] tries a refused bind again.
const REBIND_TRIES: u32 = 20;
const REBIND_PAUSE: Duration = Duration::from_millis(50);
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// How the reference server behaves.
#[derive(Clone)]
pub struct TargetConfig {
    /// HMAC secret HS256/384/512 tokens are verified with.
    pub secret: Vec<u8>,
    /// PEM public key: RS256 (RSA key) or ES256 (P-256 key) tokens are accepted too.
    pub public_key_pem: Option<Vec<u8>>,
    /// Required `aud`; `None` refuses any token that has one.
    pub audience: Option<String>,
    /// Required `iss`; `None` refuses any token that has one.
    pub issuer: Option<String>,
    /// Pause between the events of one run.
    pub event_delay: Duration,
    /// `agent_thinking` events per run.
    pub thinking_events: u32,
    /// Per-connection outbound queue; overflowing it ends the connection with 1013.
    pub queue_capacity: usize,
    /// Extra delay before `agent_started` (simulates a slower release).
    pub response_delay: Duration,
    /// A one-time stall: when run number `.0` (server-wide, 1-based) starts, every run
    /// holds its events for `.1`. Default none.
    pub stall: Option<(u64, Duration)>,
    /// `Some` to serve `wss://`.
    pub tls: Option<TlsSetup>,
    /// A planted race; `None` is the correct server.
    pub bug: Option<Bug>,
    /// Width of the planted race's window.
    pub bug_window: Duration,
    /// Bound on the TLS and WebSocket handshakes (slowloris guard).
    pub handshake_timeout: Duration,
    /// A correct server with a lenient bad-token policy: with no `issuer` configured it
    /// accepts any `iss`; it lets a missing or empty `sub` through, takes a token without
    /// `exp` as one that never expires, reads a numeric-string `exp` as its number, keeps
    /// the last of duplicate claim names, and verifies tokens up to 32 KiB (the strict
    /// default refuses each, and anything over 8 KiB). Default false.
    pub lenient: bool,
    /// Bind with SO_REUSEPORT, so several server processes can share one port and the
    /// kernel spreads connections over them (each under its own open-file limit).
    pub reuse_port: bool,
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            secret: b"stampede-dev-secret".to_vec(),
            public_key_pem: None,
            audience: None,
            issuer: None,
            event_delay: Duration::from_millis(2),
            thinking_events: 2,
            queue_capacity: 1000,
            response_delay: Duration::ZERO,
            stall: None,
            tls: None,
            bug: None,
            bug_window: Duration::from_millis(5),
            handshake_timeout: Duration::from_secs(10),
            lenient: false,
            reuse_port: false,
        }
    }
}

impl std::fmt::Debug for TargetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetConfig")
            .field("secret", &"<redacted>")
            .field("public_key", &self.public_key_pem.is_some())
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("event_delay", &self.event_delay)
            .field("thinking_events", &self.thinking_events)
            .field("queue_capacity", &self.queue_capacity)
            .field("response_delay", &self.response_delay)
            .field("tls", &self.tls)
            .field("bug", &self.bug)
            .field("bug_window", &self.bug_window)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("lenient", &self.lenient)
            .finish()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The bound socket could not report its address.
    #[error("cannot read the listening address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A PEM file could not be read or parsed.
    #[error("cannot read PEM file {}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the certificate, key or protocol versions.
    #[error("TLS configuration rejected: {0}")]
    Tls(#[from] rustls::Error),
    /// The public key is not an RSA or P-256 PEM public key.
    #[error("cannot use the JWT public key: {0}")]
    Key(String),
    /// The server task panicked or was aborted.
    #[error("server task failed: {0}")]
    Task(String),
    /// The server's own runtime (see [`spawn_apart`]) could not be started.
    #[error("cannot start the server's runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// State every connection of one server shares.
pub(crate) struct Shared {
    pub config: Arc<TargetConfig>,
    pub stats: Arc<Stats>,
    pub registry: Arc<Registry>,
    pub verifier: Verifier,
    pub bugs: BugState,
    pub stall: Option<Arc<run::StallGate>>,
    next_conn: AtomicU64,
}

impl Shared {
    fn new(config: Arc<TargetConfig>) -> Result<Self, TargetError> {
        let stats = Arc::new(Stats::new());
        Ok(Self {
            verifier: Verifier::new(&config)?,
            registry: Arc::new(Registry::new(Arc::clone(&stats))),
            stall: config
                .stall
                .map(|(after, d)| Arc::new(run::StallGate::new(after, d))),
            stats,
            bugs: BugState::default(),
            next_conn: AtomicU64::new(1),
            config,
        })
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn snapshot(&self) -> ServerStats {
        self.stats.snapshot(self.registry.len())
    }
}

/// A running server started by [`spawn`]. Dropping it stops the server.
pub struct ServerHandle {
    addr: SocketAddr,
    url: String,
    ca_pem: Option<String>,
    config: Arc<TargetConfig>,
    acceptor: Option<TlsAcceptor>,
    /// The token [`spawn`] was given: every generation's own token is a child of it.
    parent: CancellationToken,
    /// The generation serving now; [`ServerHandle::restart`] replaces it.
    serving: std::sync::Mutex<Serving>,
    /// The runtime the server's tasks run on ([`ServerHandle::restart`] starts the next
    /// generation there too).
    runtime: tokio::runtime::Handle,
    /// That runtime, when the server has one of its own ([`spawn_apart`]).
    own: Option<OwnRuntime>,
}

/// A runtime started for one server: shut down in the background when dropped (a runtime
/// may not be dropped where it could block, as inside another runtime's task).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// One generation of a server: its shared state, its token and its accept task.
struct Serving {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: Option<JoinHandle<Result<(), TargetError>>>,
}

impl ServerHandle {
    /// The generation serving now (a poisoned lock only means a panic elsewhere
    /// mid-swap of plain fields: keep going).
    fn serving(&self) -> std::sync::MutexGuard<'_, Serving> {
        self.serving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.serving().shared)
    }

    /// Binds the server's address again for a new generation, on the server's runtime. The
    /// old generation's listening socket is closed by then, but a child process this
    /// process is starting (a `--reset` command, another test's) holds a copy of it between
    /// its fork and its exec, and the address stays in use for that long: a refused bind
    /// is tried again, [`REBIND_TRIES`] times [`REBIND_PAUSE`] apart (at most 1 s).
    async fn listen_again(&self) -> Result<TcpListener, TargetError> {
        let addr = self.addr;
        let mut tries = 0;
        loop {
            let bound = {
                let _on_server_runtime = self.runtime.enter();
                listen(addr, self.config.reuse_port)
            };
            match bound {
                Ok(listener) => return Ok(listener),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < REBIND_TRIES => {
                    tries += 1;
                    tokio::time::sleep(REBIND_PAUSE).await;
                }
                Err(source) => return Err(TargetError::Bind { addr, source }),
            }
        }
    }

    /// Restarts the server on the same address: the current generation stops
    /// (its connections closed, bounded like [`ServerHandle::shutdown`]) and a
    /// fresh one, with no state at all (registry, planted bugs' state, counters),
    /// serves the same URL and certificate. The built-in equivalent of `--reset`.
    ///
    /// # Errors
    /// [`TargetError::Bind`] when the address cannot be bound again.
    pub async fn restart(&self) -> Result<(), TargetError> {
        let (cancel, task) = {
            let mut serving = self.serving();
            (serving.cancel.clone(), serving.task.take())
        };
        cancel.cancel();
        if let Some(mut task) = task {
            if timeout(SHUTDOWN_TIMEOUT, &mut task).await.is_err() {
                task.abort();
            }
        }
        let shared = Arc::new(Shared::new(Arc::clone(&self.config))?);
        let cancel = self.parent.child_token();
        let listener = self.listen_again().await?;
        let task = {
            // The accept loop runs on the server's own runtime, whichever runtime asked for
            // the restart.
            let _on_server_runtime = self.runtime.enter();
            self.runtime.spawn(accept_loop(
                listener,
                Arc::clone(&shared),
                self.acceptor.clone(),
                cancel.clone(),
            ))
        };
        *self.serving() = Serving {
            shared,
            cancel,
            task: Some(task),
        };
        Ok(())
    }
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://IP:PORT/ws`, or `wss://localhost:PORT/ws` with TLS.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// PEM of the self-signed certificate, for clients to trust.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A snapshot of the counters.
    /// Whether this server is the correct one: no planted bug, no one-time stall.
    pub fn is_correct(&self) -> bool {
        self.config.bug.is_none() && self.config.stall.is_none()
    }

    /// The race planted in it and its window, when one is: `("identity-swap", 50 ms)`.
    pub fn planted(&self) -> Option<(&'static str, Duration)> {
        self.config
            .bug
            .map(|bug| (bug.name(), self.config.bug_window))
    }

    pub fn stats(&self) -> ServerStats {
        self.shared().snapshot()
    }

    /// Waits until `done` holds for the counters (re-checked on every
    /// connection lifecycle change); bound it with a timeout.
    pub async fn wait_for(&self, done: impl Fn(&ServerStats) -> bool) -> ServerStats {
        let shared = self.shared();
        let mut changed = shared.stats.subscribe();
        loop {
            let stats = shared.snapshot();
            if done(&stats) {
                return stats;
            }
            if changed.changed().await.is_err() {
                return stats;
            }
        }
    }

    /// Stops accepting, closes connections (1001) and joins, bounded.
    pub async fn shutdown(self) {
        let (cancel, task) = {
            let mut serving = self.serving();
            (serving.cancel.clone(), serving.task.take())
        };
        cancel.cancel();
        if let Some(mut task) = task {
            if timeout(SHUTDOWN_TIMEOUT, &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    /// Serves until the cancel token given to [`spawn`] fires.
    pub async fn wait(self) -> Result<(), TargetError> {
        let task = self.serving().task.take();
        match task {
            Some(task) => task
                .await
                .map_err(|err| TargetError::Task(err.to_string()))?,
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.parent.cancel();
    }
}

/// Binds `addr` (port 0: a free port below the kernel's ephemeral range, so that
/// [`ServerHandle::restart`] finds it free again) and serves in a background task; returns
/// once the socket is listening. The server stops when `cancel` fires, on
/// [`ServerHandle::shutdown`], or when the handle is dropped.
pub async fn spawn(
    config: TargetConfig,
    addr: SocketAddr,
    cancel: CancellationToken,
) -> Result<ServerHandle, TargetError> {
    let material = config.tls.as_ref().map(tls::build).transpose()?;
    let config = Arc::new(config);
    let shared = Arc::new(Shared::new(Arc::clone(&config))?);
    let listener = listen_first(addr, shared.config.reuse_port)
        .map_err(|source| TargetError::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(TargetError::LocalAddr)?;
    let url = url_for(addr, material.is_some());
    let (acceptor, ca_pem) = match material {
        Some(material) => (Some(material.acceptor), material.ca_pem),
        None => (None, None),
    };
    let parent = cancel.child_token();
    let cancel = parent.child_token();
    let task = tokio::spawn(accept_loop(
        listener,
        Arc::clone(&shared),
        acceptor.clone(),
        cancel.clone(),
    ));
    Ok(ServerHandle {
        addr,
        url,
        ca_pem,
        config,
        acceptor,
        parent,
        serving: std::sync::Mutex::new(Serving {
            shared,
            cancel,
            task: Some(task),
        }),
        runtime: tokio::runtime::Handle::current(),
        own: None,
    })
}

/// [`spawn`] on a runtime of the server's own (its worker threads, one per core, named
/// `stampede-server`, in the idle scheduling class: [`crate::priority::idle_this_thread`]),
/// for a server inside the load generator's process at a run with releases: a load
/// generator thread that wakes (a connection's start, a release's writes) takes the core
/// from the server at once, instead of waiting out its time slice. The runtime stops with
/// the server.
///
/// # Errors
/// [`TargetError::Runtime`] when the runtime cannot be started; otherwise as [`spawn`].
pub async fn spawn_apart(
    config: TargetConfig,
    addr: SocketAddr,
    cancel: CancellationToken,
) -> Result<ServerHandle, TargetError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("stampede-server")
        .on_thread_start(|| {
            let _ = crate::priority::idle_this_thread();
        })
        .enable_all()
        .build()
        .map_err(TargetError::Runtime)?;
    let started = runtime.spawn(spawn(config, addr, cancel));
    // Owned before the first await: dropped safely even if this future is.
    let own = OwnRuntime(Some(runtime));
    let mut handle = started
        .await
        .map_err(|err| TargetError::Task(err.to_string()))??;
    handle.own = Some(own);
    Ok(handle)
}

/// Serves `listener` until `cancel` fires, then closes connections (bounded).
pub async fn serve(
    listener: TcpListener,
    config: Arc<TargetConfig>,
    cancel: CancellationToken,
) -> Result<(), TargetError> {
    let acceptor = config
        .tls
        .as_ref()
        .map(tls::build)
        .transpose()?
        .map(|material| material.acceptor);
    accept_loop(listener, Arc::new(Shared::new(config)?), acceptor, cancel).await
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    cancel: CancellationToken,
) -> Result<(), TargetError> {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            Some(joined) = connections.join_next() => {
                if let Err(err) = joined {
                    tracing::warn!(%err, "connection task failed");
                }
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                connections.spawn(conn::handle(
                    stream,
                    tls.clone(),
                    Arc::clone(&shared),
                    cancel.child_token(),
                ));
            }
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    drop(listener);
    let drained = timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
    Ok(())
}

fn url_for(addr: SocketAddr, tls: bool) -> String {
    if tls {
        return format!("wss://localhost:{}/ws", addr.port());
    }
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("ws://{}/ws", SocketAddr::new(ip, addr.port()))
}

/// Binds with a deep accept backlog: a synchronized burst of connects must not overflow
/// the queue (the OS default here is 128), or clients see 1 s SYN retransmits and the
/// burst is no longer a burst.
/// Binds `addr` for the server's first generation. Port 0 picks a free port below the
/// kernel's ephemeral range (`net.ipv4.ip_local_port_range`), where the kernel never puts
/// a client's source port: [`ServerHandle::restart`] binds the same port again, and an
/// ephemeral port freed by the old generation may meanwhile be the source port of any
/// outgoing connection on the machine, which makes the bind fail (seen in the tests, which
/// run many clients side by side). Falls back to the kernel's choice when no such port is
/// free after a few tries, when the range leaves no room below it, and with
/// `SO_REUSEPORT` (a port shared with another listener would bind rather than fail).
fn listen_first(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    /// Lowest port tried.
    const FLOOR: u16 = 20_000;
    const TRIES: usize = 32;
    if addr.port() != 0 || reuse_port {
        return listen(addr, reuse_port);
    }
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_from > FLOOR {
        for _ in 0..TRIES {
            let port = rand::random_range(FLOOR..ephemeral_from);
            if let Ok(listener) = listen(SocketAddr::new(addr.ip(), port), reuse_port) {
                return Ok(listener);
            }
        }
    }
    listen(addr, reuse_port)
}

fn listen(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(4096)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The old generation's socket still held elsewhere (as a child process between fork
    /// and exec holds it): the restart's bind waits for it instead of failing.
    #[tokio::test]
    async fn a_restart_waits_for_the_address_held_a_moment_elsewhere() {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let server = spawn(TargetConfig::default(), loopback, CancellationToken::new())
            .await
            .unwrap();
        // Stop the generation by hand, then hold its address from another socket.
        let (cancel, task) = {
            let mut serving = server.serving();
            (serving.cancel.clone(), serving.task.take())
        };
        cancel.cancel();
        task.unwrap().await.unwrap().unwrap();
        let holder = std::net::TcpListener::bind(server.addr()).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            drop(holder);
        });
        let listener = server.listen_again().await;
        assert!(listener.is_ok(), "{:?}", listener.err());
        // A listening socket on the address refuses the bind: this one bound only once the
        // holder was gone (without the retries, it fails at once).
        assert!(release.join().is_ok());
        assert_eq!(listener.unwrap().local_addr().unwrap(), server.addr());
    }
}
