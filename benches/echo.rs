#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Echo benchmark: stampede (oracles and histograms on) against a bare tokio-tungstenite
//! client, both closed-loop against the same echo server (a separate process), alternating,
//! with the ratios printed side by side. Asserts nothing.
//!
//! `cargo bench --bench echo` (env: STAMPEDE_ECHO_SECONDS per measurement, default 5;
//! STAMPEDE_ECHO_CONNS, default "100,1000"). Every phase is bounded.
//!
//! Instruction counts (repeatable on a loaded machine, unlike wall-clock figures): run one
//! client once, a fixed number of messages per connection, under callgrind:
//! `valgrind --tool=callgrind target/release/deps/echo-* --only stampede --conns 100
//! --count 200` (or `--only bare`). The echo server is a child process, not traced. The
//! difference between two counts, divided by the extra messages, is the cost per message
//! without the setup.
//!
//! The bare client is the reference: one current-thread runtime, a 4 KiB read buffer, each
//! connection sends a 32-byte JSON message and waits for its echo, as fast as it can.
//! stampede runs the same loop as a scenario (`repeat` of a send and a correlated
//! `expect`) through its library, with every oracle and histogram it would use in a run.
//! A third column runs stampede in flood mode: a `repeat` of sends carrying `{{marker}}`,
//! open loop (nothing waits for the echo), latency read back from the markers.

/// The allocator the `stampede` binary uses (src/main.rs), so the library runs here as it
/// does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// CPU time (user + system) of this process so far, from /proc (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

/// Echo server mode: the bench binary re-runs itself with `--echo-server`.
fn serve_echo() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
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

/// stampede: the same loop as a scenario, run through the library. `flood`: open loop
/// instead, sends that wait for nothing, latency read back from the `{{marker}}` each
/// echo carries.
fn stampede_run(url: &str, conns: usize, length: Length, flood: bool) -> Figures {
    let (seconds, repeat) = match length {
        Length::Seconds(s) => (s, 100_000_000),
        Length::Count(n) => (600, n),
    };
    let body = if flood {
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
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
    let f = match which {
        "bare" => bare(&url, conns, length),
        "flood" => stampede_run(&url, conns, length, true),
        _ => stampede_run(&url, conns, length, false),
    };
    println!(
        "{which}: {conns} connections × {count}: {:.0} msg/s, {:.1} µs CPU/msg",
        f.msgs_per_sec, f.cpu_us_per_msg
    );
    let _ = server.kill();
}

fn main() {
    if std::env::args().any(|a| a == "--echo-server") {
        serve_echo();
        return;
    }
    if let Some(which) = arg("--only") {
        only(&which);
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
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (mut server, url) = start_echo_server();
    println!("echo server at {url}; {seconds}s per measurement, alternating, 3 rounds each");
    println!("(flood: stampede open loop, latency from markers; its ratio is to bare closed loop)");
    println!(
        "{:>6}  {:>10} {:>10} {:>7}   {:>10} {:>10} {:>7}   {:>10} {:>7}",
        "conns",
        "bare msg/s",
        "stampede",
        "ratio",
        "bare µs/msg",
        "stampede",
        "ratio",
        "flood msg/s",
        "ratio"
    );
    for conns in sizes {
        let (mut b, mut s, mut f) = (Vec::new(), Vec::new(), Vec::new());
        let length = Length::Seconds(seconds);
        for _ in 0..3 {
            b.push(bare(&url, conns, length));
            s.push(stampede_run(&url, conns, length, false));
            f.push(stampede_run(&url, conns, length, true));
        }
        let rate = |v: &[Figures]| median(v.iter().map(|f| f.msgs_per_sec).collect());
        let cpu = |v: &[Figures]| median(v.iter().map(|f| f.cpu_us_per_msg).collect());
        let (br, sr, bc, sc, fr) = (rate(&b), rate(&s), cpu(&b), cpu(&s), rate(&f));
        println!(
            "{conns:>6}  {br:>10.0} {sr:>10.0} {:>6.2}×   {bc:>10.1} {sc:>10.1} {:>6.2}×   {fr:>10.0} {:>6.2}×",
            sr / br,
            sc / bc,
            fr / br
        );
    }
    let _ = server.kill();
}
