#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Echo benchmark: stampede (oracles and histograms on) against a bare tokio-tungstenite
//! client, both closed-loop against the same echo server (a separate process), alternating,
//! with the ratios printed side by side. Asserts nothing.
//!
//! `cargo bench --bench echo` (env: STAMPEDE_ECHO_SECONDS per measurement, default 5;
//! STAMPEDE_ECHO_CONNS, default "100,1000"; STAMPEDE_ECHO_ROUNDS, default 5). Every phase
//! is bounded. Each row gives the medians of its rounds, then the range of the rounds' own
//! CPU ratios (each round's stampede against the bare client measured just before it): on
//! a shared VM one round's ratio moves by several percent, and a target a few percent away
//! is only decided by where most rounds fall.
//!
//! Instruction counts (repeatable on a loaded machine, unlike wall-clock figures): run one
//! client once, a fixed number of messages per connection, under callgrind:
//! `valgrind --tool=callgrind target/release/deps/echo-* --only stampede --conns 100
//! --count 200` (or `--only bare`). The echo server is a child process, not traced. The
//! difference between two counts, divided by the extra messages, is the cost per message
//! without the setup. `STAMPEDE_ECHO_BODY` replaces the steps of stampede's loop (e.g.
//! `{ send_text = '{"type":"echo"}' }, { expect = "echo", within = "5s" },`), to measure
//! what one kind of step costs against another.
//!
//! The bare client is the reference: one current-thread runtime, a 4 KiB read buffer, each
//! connection sends a 32-byte JSON message and waits for its echo, as fast as it can.
//! stampede runs the same loop as a scenario (`repeat` of a send and a correlated
//! `expect`) through its library, with every oracle and histogram it would use in a run,
//! twice: on one runtime thread, as the bare client (`stampede --threads 1`), which
//! compares the two clients' code per message; and on one thread per core (the default),
//! whose threads then share this machine's cores with the echo server's (on 2 cores that
//! cost 5–22% more CPU per message at 1,000 connections on 2026-12-01: tokio's idle
//! workers search for work and park, and every wake-up may cross cores). `--only stampede
//! --threads 1` runs the first alone. The last column runs stampede in flood mode (one
//! thread): a `repeat` of sends carrying `{{marker}}`, open loop (nothing waits for the
//! echo), latency read back from the markers.
//!
//! Opening connections (`cargo bench --bench echo -- --open`, or after the echo table;
//! env STAMPEDE_OPEN_CONNS, default 5000; STAMPEDE_OPEN_ROUNDS, default 5): the bare client
//! and stampede each open that many connections at once (burst arrival) to the same echo
//! server and hold them idle, alternating, each measurement in a fresh child process so
//! that one's freed heap does not flatter the next one's memory figure. Prints
//! connections/s (from the first connect until all are open) and the growth of the
//! child's resident memory per open, idle connection, medians and ratios.

/// The allocator the `stampede` binary uses (src/main.rs), so the library runs here as it
/// does there.
#[global_allocator]
static ALLOCATOR: stampede::allocator::Allocator = stampede::allocator::Allocator;

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// CPU time (user + system) of this process so far, all its threads.
fn cpu_time() -> Duration {
    // The kernel's exact count (CLOCK_PROCESS_CPUTIME_ID, nanoseconds): `/proc/self/stat`
    // gives the same total rounded to 10 ms clock ticks, 0.05 µs a message over a
    // 200,000-message run, a step as large as the differences measured. Through libc, not
    // rustix: rustix calls the vDSO directly, which valgrind (cachegrind) does not map.
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Echo server mode: the bench binary re-runs itself with `--echo-server`.
fn serve_echo() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // A deep accept queue (the kernel caps it at somaxconn, 4096 here), as the built-in
        // server has: with tokio's default of 1024, a burst of 5,000 connects overflows it,
        // and the opening figure measures SYN retransmission (1 s) instead of the clients.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(65_535).unwrap();
        println!("ws://{}/ws", listener.local_addr().unwrap());
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn start_echo_server() -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--echo-server")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the echo server");
    let stdout = child.stdout.take().unwrap();
    let url = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .next()
        .expect("the echo server prints its URL");
    (child, url)
}

/// What one measurement gave.
#[derive(Debug, Clone, Copy)]
struct Figures {
    msgs_per_sec: f64,
    cpu_us_per_msg: f64,
}

/// How long a measurement runs: for a time, or a fixed number of messages per connection.
#[derive(Debug, Clone, Copy)]
enum Length {
    Seconds(u64),
    Count(u64),
}

/// The bare client: `conns` connections in closed loop for a time or a count.
fn bare(url: &str, conns: usize, length: Length) -> Figures {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cpu0 = cpu_time();
    let total = rt.block_on(async {
        let (stop, count) = match length {
            Length::Seconds(s) => (Instant::now() + Duration::from_secs(s), u64::MAX),
            Length::Count(n) => (Instant::now() + Duration::from_secs(600), n),
        };
        let mut tasks = tokio::task::JoinSet::new();
        let started = Instant::now();
        for c in 0..conns {
            let url = url.to_string();
            tasks.spawn(async move {
                let config = WebSocketConfig::default().read_buffer_size(4096);
                let (mut ws, _) =
                    tokio_tungstenite::connect_async_with_config(url, Some(config), true)
                        .await
                        .unwrap();
                let mut n = 0u64;
                while n < count && Instant::now() < stop {
                    let text = format!("{{\"type\":\"echo\",\"run_id\":\"{c}-{n}\"}}");
                    ws.send(Message::text(text)).await.unwrap();
                    match ws.next().await {
                        Some(Ok(_)) => n += 1,
                        _ => break,
                    }
                }
                let _ = ws.close(None).await;
                n
            });
        }
        let mut total = 0u64;
        while let Some(Ok(n)) = tasks.join_next().await {
            total += n;
        }
        (total, started.elapsed())
    });
    let cpu = cpu_time().saturating_sub(cpu0);
    Figures {
        msgs_per_sec: total.0 as f64 / total.1.as_secs_f64(),
        cpu_us_per_msg: cpu.as_micros() as f64 / total.0.max(1) as f64,
    }
}

/// How many threads drive stampede's connections.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Threads {
    /// One, as the bare client (`--threads 1`): the two clients' code compared on equal
    /// footing.
    One,
    /// One per core (the default): the runtime's worker threads then share the cores with
    /// the echo server's.
    PerCore,
}

/// stampede: the same loop as a scenario, run through the library. `flood`: open loop
/// instead, sends that wait for nothing, latency read back from the `{{marker}}` each
/// echo carries.
fn stampede_run(url: &str, conns: usize, length: Length, flood: bool, threads: Threads) -> Figures {
    let (seconds, repeat) = match length {
        Length::Seconds(s) => (s, 100_000_000),
        Length::Count(n) => (600, n),
    };
    // STAMPEDE_ECHO_BODY swaps the loop's body for another (a profiler's what-if: a
    // `send_text`, an uncorrelated `expect`), the same TOML steps the `repeat` holds.
    let body = if let Ok(body) = std::env::var("STAMPEDE_ECHO_BODY") {
        body
    } else if flood {
        r#"{ send = { type = "echo", m = "{{marker}}" } },"#.to_string()
    } else {
        r#"{ send = { type = "echo", run_id = "{{conn}}-{{run}}" } },
    { expect = "echo", correlate = "run_id", within = "5s" },"#
            .to_string()
    };
    let text = format!(
        r#"
name = "echo-bench"
duration = "{seconds}s"
[oracles]
exclusive = false
liveness = false
[[group]]
name = "echo"
users = {conns}
arrival = "burst"
steps = [
  {{ repeat = {repeat}, steps = [
    {body}
  ] }},
]
"#
    );
    let scenario = stampede::scenario::load_str(&text, "echo-bench.toml").unwrap();
    let rt = runtime(threads);
    let cpu0 = cpu_time();
    let opts = stampede::run::RunOptions {
        target: Some(url.to_string()),
        ..Default::default()
    };
    let outcome = rt
        .block_on(stampede::run::run(
            &scenario,
            &opts,
            CancellationToken::new(),
        ))
        .unwrap();
    let cpu = cpu_time().saturating_sub(cpu0);
    let s = &outcome.results.summary;
    let received = s.counters.messages_received;
    Figures {
        msgs_per_sec: received as f64 / (s.elapsed_ms / 1000.0),
        cpu_us_per_msg: cpu.as_micros() as f64 / received.max(1) as f64,
    }
}

/// The runtime a stampede measurement runs on: one thread drives everything (as the bare
/// client's current-thread runtime), or the default, one worker per core.
fn runtime(threads: Threads) -> tokio::runtime::Runtime {
    let mut builder = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread(),
        Threads::PerCore => {
            // As the `stampede` binary builds its runtime.
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.on_thread_park(stampede::allocator::collect_when_idle);
            builder
        }
    };
    builder.enable_all().build().unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The value after `--name` on the command line.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

/// `--only bare|stampede|flood --conns N --count M`: one client, once, for a profiler.
fn only(which: &str) {
    let conns: usize = arg("--conns").and_then(|v| v.parse().ok()).unwrap_or(100);
    let count: u64 = arg("--count").and_then(|v| v.parse().ok()).unwrap_or(200);
    let (mut server, url) = start_echo_server();
    let length = Length::Count(count);
    // `--threads 1`: stampede on one thread, as the bare client.
    let threads = match arg("--threads").as_deref() {
        Some("1") => Threads::One,
        _ => Threads::PerCore,
    };
    let f = match which {
        "bare" => bare(&url, conns, length),
        "flood" => stampede_run(&url, conns, length, true, threads),
        _ => stampede_run(&url, conns, length, false, threads),
    };
    println!(
        "{which}: {conns} connections × {count}: {:.0} msg/s, {:.2} µs CPU/msg",
        f.msgs_per_sec, f.cpu_us_per_msg
    );
    let _ = server.kill();
}

/// Resident set size of this process, in KiB, from /proc.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What one opening measurement gave (a child process's line: `open N SECS RSS0 RSS1`).
#[derive(Debug, Clone, Copy)]
struct Opened {
    /// stampede's lead before its run start (0 for the bare client), in ms.
    lead_ms: f64,
    open: u64,
    conns_per_sec: f64,
    kib_per_conn: f64,
}

/// How long a child waits for all its connections.
const OPEN_BOUND: Duration = Duration::from_secs(60);

/// How long a child holds its connections once all are open before measuring (env
/// STAMPEDE_OPEN_HOLD_MS, default 3000): the idle state, once the allocator has handed
/// back the pages the burst of handshakes used for a moment (after 500 ms they were still
/// held: stampede's figure read 5–6.3 KiB per connection then, 2.4–5.2 after 3 s, the
/// same children). Longer to take a heap profile of the idle state (`valgrind
/// --tool=massif` on the child, then `vgdb detailed_snapshot` during the hold).
fn open_hold() -> Duration {
    let ms = std::env::var("STAMPEDE_OPEN_HOLD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    Duration::from_millis(ms)
}

/// The bare client opens `conns` connections at once on one current-thread runtime and
/// holds them; prints the child's line.
fn open_bare(url: &str, conns: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opened = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let all = std::sync::Arc::new(tokio::sync::Notify::new());
        let hold = CancellationToken::new();
        let before = rss_kib();
        let started = Instant::now();
        for _ in 0..conns {
            let (url, opened, all, hold) =
                (url.to_string(), opened.clone(), all.clone(), hold.clone());
            tokio::spawn(async move {
                let config = WebSocketConfig::default().read_buffer_size(4096);
                let Ok((ws, _)) =
                    tokio_tungstenite::connect_async_with_config(url, Some(config), true).await
                else {
                    return;
                };
                if opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == conns {
                    all.notify_one();
                }
                hold.cancelled().await;
                drop(ws);
            });
        }
        let _ = tokio::time::timeout(OPEN_BOUND, all.notified()).await;
        let secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(open_hold()).await;
        let open = opened.load(std::sync::atomic::Ordering::Relaxed);
        println!("open {open} {secs} {before} {}", rss_kib());
    });
}

/// stampede opens `conns` connections in one burst (no token, no oracle that needs
/// traffic) and holds them idle; prints the child's line.
fn open_stampede(url: &str, conns: u64, threads: Threads) {
    use std::sync::atomic::Ordering::Relaxed;
    let text = format!(
        r#"
name = "open-bench"
duration = "120s"
[auth]
secret = {{ value = "open-bench-secret" }}
placement = "none"
[oracles]
exclusive = false
liveness = false
[[group]]
name = "idle"
users = {conns}
arrival = "burst"
steps = [{{ think = "100s" }}]
"#
    );
    let scenario = stampede::scenario::load_str(&text, "open-bench.toml").unwrap();
    let rt = runtime(threads);
    rt.block_on(async {
        // The plan and tokens are built first: the figure is what open connections cost.
        let plan = std::sync::Arc::new(stampede::plan::build(&scenario, 1));
        let keys = stampede::auth::Keys::hmac(plan.auth.alg, b"open-bench-secret").unwrap();
        let tokens = stampede::auth::mint_all(&plan.tokens, &plan.auth, &keys).unwrap();
        let dialer = stampede::swarm::Dialer {
            endpoint: stampede::swarm::Endpoint::resolve(url).await.unwrap(),
            tls: None,
            limits: plan.limits,
            sources: Default::default(),
            login_tls: None,
        };
        let live = std::sync::Arc::new(stampede::metrics::Live::default());
        let cancel = CancellationToken::new();
        let before = rss_kib();
        let started = Instant::now();
        let run = tokio::spawn(stampede::swarm::run(
            plan,
            dialer,
            tokens,
            live.clone(),
            Default::default(),
            cancel.clone(),
        ));
        while live.live.load(Relaxed) < conns as i64 && started.elapsed() < OPEN_BOUND {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Counted from the run's start t0: before it, the swarm spawns every task and waits
        // out its lead (20 ms + 3 µs per connection) so that no connection starts late, a
        // fixed delay rather than a rate; printed apart.
        let all_open = Instant::now();
        let t0 = live.load_started.get().copied().unwrap_or(started);
        let secs = all_open.saturating_duration_since(t0).as_secs_f64();
        let lead_ms = t0.saturating_duration_since(started).as_secs_f64() * 1000.0;
        tokio::time::sleep(open_hold()).await;
        let open = live.live.load(Relaxed).max(0);
        println!("open {open} {secs} {before} {} {lead_ms}", rss_kib());
        cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), run).await;
    });
}

/// Runs one opening measurement in a child process and reads its line back.
fn open_child(which: &str, url: &str, conns: u64) -> Opened {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--open-child",
            which,
            "--url",
            url,
            "--conns",
            &conns.to_string(),
        ])
        .stderr(Stdio::null())
        .output()
        .expect("run the opening child");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("open "))
        .unwrap_or("open 0 1 0 0");
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let (open, secs, before, after) = (f[0], f[1], f[2], f[3]);
    Opened {
        lead_ms: f.get(4).copied().unwrap_or(0.0),
        open: open as u64,
        conns_per_sec: open / secs.max(1e-9),
        kib_per_conn: (after - before).max(0.0) / open.max(1.0),
    }
}

/// Waits (at most 20 s) until the server at `url` holds no connection: the last child's
/// connections, closed as it exited, are still being torn down by the server for a while,
/// and a child that starts meanwhile measures that teardown rather than its own opening.
/// Read from the kernel's socket table (`/proc/net/tcp`): any socket on the server's port
/// but its listener and those in TIME_WAIT.
fn await_server_idle(url: &str) {
    let port = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    let busy = || {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        table.lines().skip(1).any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            // 0A: LISTEN, 06: TIME_WAIT.
            local_port == Some(port) && !matches!(f.get(3), Some(&"0A") | Some(&"06"))
        })
    };
    let until = Instant::now() + Duration::from_secs(20);
    while busy() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Alternates bare and stampede openings and prints medians and ratios.
fn open_bench(url: &str) {
    let conns: u64 = std::env::var("STAMPEDE_OPEN_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let rounds: usize = std::env::var("STAMPEDE_OPEN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    println!("opening {conns} connections at once, held idle; {rounds} alternating rounds");
    println!("(stampede on one thread, as the bare client; per core: the default; stampede's");
    println!("rate counts from its run start, after the lead in which it spawns its tasks)");
    let (mut b, mut s, mut p) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        b.push(open_child("bare", url, conns));
        await_server_idle(url);
        s.push(open_child("stampede1", url, conns));
        await_server_idle(url);
        p.push(open_child("stampede", url, conns));
        await_server_idle(url);
        let (lb, ls, lp) = (b[round], s[round], p[round]);
        println!(
            "  round {round}: bare {} open, {:.0}/s, {:.2} KiB/conn; stampede {} open, {:.0}/s, {:.2} KiB/conn (lead {:.0} ms); per core {} open, {:.0}/s, {:.2} KiB/conn",
            lb.open, lb.conns_per_sec, lb.kib_per_conn, ls.open, ls.conns_per_sec, ls.kib_per_conn,
            ls.lead_ms, lp.open, lp.conns_per_sec, lp.kib_per_conn
        );
    }
    let rate = |v: &[Opened]| median(v.iter().map(|o| o.conns_per_sec).collect());
    let kib = |v: &[Opened]| median(v.iter().map(|o| o.kib_per_conn).collect());
    let (br, sr, pr) = (rate(&b), rate(&s), rate(&p));
    let (bk, sk, pk) = (kib(&b), kib(&s), kib(&p));
    println!(
        "{:>8} {:>12} {:>10} {:>6} {:>10} {:>6}   {:>12} {:>10} {:>6} {:>10} {:>6}",
        "conns",
        "bare conn/s",
        "stampede",
        "ratio",
        "per core",
        "ratio",
        "bare KiB/conn",
        "stampede",
        "ratio",
        "per core",
        "ratio"
    );
    println!(
        "{conns:>8} {br:>12.0} {sr:>10.0} {:>5.2}× {pr:>10.0} {:>5.2}×   {bk:>12.2} {sk:>10.2} {:>5.2}× {pk:>10.2} {:>5.2}×",
        sr / br,
        pr / br,
        sk / bk,
        pk / bk
    );
}

fn main() {
    // As the `stampede` binary starts (src/main.rs): without it, huge-page faults cleared
    // 2 MiB at a time for stampede's growing heap and not for the bare client's.
    stampede::allocator::opt_out_of_huge_pages();
    if std::env::args().any(|a| a == "--echo-server") {
        serve_echo();
        return;
    }
    if let Some(which) = arg("--open-child") {
        let url = arg("--url").unwrap();
        let conns: u64 = arg("--conns").and_then(|v| v.parse().ok()).unwrap_or(5000);
        let _ = rlimit::increase_nofile_limit(conns * 2 + 1024);
        match which.as_str() {
            "bare" => open_bare(&url, conns),
            "stampede1" => open_stampede(&url, conns, Threads::One),
            _ => open_stampede(&url, conns, Threads::PerCore),
        }
        return;
    }
    if let Some(which) = arg("--only") {
        only(&which);
        return;
    }
    if std::env::args().any(|a| a == "--open") {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let (mut server, url) = start_echo_server();
        open_bench(&url);
        let _ = server.kill();
        return;
    }
    let seconds: u64 = std::env::var("STAMPEDE_ECHO_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let sizes: Vec<usize> = std::env::var("STAMPEDE_ECHO_CONNS")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let rounds: usize = std::env::var("STAMPEDE_ECHO_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(5);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (mut server, url) = start_echo_server();
    println!("echo server at {url}; {seconds}s per measurement, alternating, {rounds} rounds each");
    println!("stampede: one thread, as the bare client (--threads 1); per core: the default,");
    println!("its threads sharing the cores with the echo server's. flood: open loop, one");
    println!("thread, latency from markers; its ratio is to bare closed loop.");
    println!(
        "{:>6}  {:>10} {:>10} {:>6}   {:>10} {:>10} {:>6}   {:>10} {:>6} {:>10} {:>6}   {:>10} {:>6}",
        "conns",
        "bare msg/s",
        "stampede",
        "ratio",
        "bare µs/msg",
        "stampede",
        "ratio",
        "per core/s",
        "ratio",
        "µs/msg",
        "ratio",
        "flood msg/s",
        "ratio",
    );
    println!(
        "{:>6}  CPU ratio of each round (stampede, one thread / bare)",
        ""
    );
    for conns in sizes {
        let (mut b, mut s, mut p, mut f) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let length = Length::Seconds(seconds);
        for _ in 0..rounds {
            b.push(bare(&url, conns, length));
            s.push(stampede_run(&url, conns, length, false, Threads::One));
            p.push(stampede_run(&url, conns, length, false, Threads::PerCore));
            f.push(stampede_run(&url, conns, length, true, Threads::One));
        }
        let rate = |v: &[Figures]| median(v.iter().map(|f| f.msgs_per_sec).collect());
        let cpu = |v: &[Figures]| median(v.iter().map(|f| f.cpu_us_per_msg).collect());
        let (br, bc) = (rate(&b), cpu(&b));
        let (sr, sc, pr, pc, fr) = (rate(&s), cpu(&s), rate(&p), cpu(&p), rate(&f));
        println!(
            "{conns:>6}  {br:>10.0} {sr:>10.0} {:>5.2}×   {bc:>10.2} {sc:>10.2} {:>5.2}×   {pr:>10.0} {:>5.2}× {pc:>10.2} {:>5.2}×   {fr:>10.0} {:>5.2}×",
            sr / br,
            sc / bc,
            pr / br,
            pc / bc,
            fr / br
        );
        let mut each: Vec<f64> = b
            .iter()
            .zip(&s)
            .map(|(b, s)| s.cpu_us_per_msg / b.cpu_us_per_msg)
            .collect();
        each.sort_by(f64::total_cmp);
        let shown: Vec<String> = each.iter().map(|r| format!("{r:.2}×")).collect();
        println!("{:>6}  {}", "", shown.join(" "));
    }
    open_bench(&url);
    let _ = server.kill();
}
