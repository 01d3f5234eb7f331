#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Echo benchmark: stampede (oracles and histograms on) against a bare tokio-tungstenite
//! client, both closed-loop against the same echo server (a separate process), alternating,
//! with the ratios printed side by side. Asserts nothing.
//!
//! `cargo bench --bench echo` (env: STAMPEDE_ECHO_SECONDS per measurement, default 5;
//! STAMPEDE_ECHO_CONNS, default "100,1000"). Every phase is bounded.
//!
//! The bare client is the reference: one current-thread runtime, a 4 KiB read buffer, each
//! connection sends a 32-byte JSON message and waits for its echo, as fast as it can.
//! stampede runs the same loop as a scenario (`repeat` of a send and a correlated
//! `expect`) through its library, with every oracle and histogram it would use in a run.

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

/// The bare client: `conns` connections in closed loop for `seconds`.
fn bare(url: &str, conns: usize, seconds: u64) -> Figures {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cpu0 = cpu_time();
    let total = rt.block_on(async {
        let stop = Instant::now() + Duration::from_secs(seconds);
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
                while Instant::now() < stop {
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

/// stampede: the same loop as a scenario, run through the library.
fn stampede_run(url: &str, conns: usize, seconds: u64) -> Figures {
    let text = format!(
        r#"
name = "echo-bench"
duration = "{limit}s"
[oracles]
exclusive = false
liveness = false
[[group]]
name = "echo"
users = {conns}
arrival = "burst"
steps = [
  {{ repeat = 100000000, steps = [
    {{ send = {{ type = "echo", run_id = "{{{{conn}}}}-{{{{run}}}}" }} }},
    {{ expect = "echo", correlate = "run_id", within = "5s" }},
  ] }},
]
"#,
        limit = seconds
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

fn main() {
    if std::env::args().any(|a| a == "--echo-server") {
        serve_echo();
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
    println!(
        "{:>6}  {:>12} {:>12} {:>7}   {:>12} {:>12} {:>7}",
        "conns", "bare msg/s", "stampede", "ratio", "bare µs/msg", "stampede", "ratio"
    );
    for conns in sizes {
        let (mut b, mut s) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            b.push(bare(&url, conns, seconds));
            s.push(stampede_run(&url, conns, seconds));
        }
        let rate = |v: &[Figures]| median(v.iter().map(|f| f.msgs_per_sec).collect());
        let cpu = |v: &[Figures]| median(v.iter().map(|f| f.cpu_us_per_msg).collect());
        let (br, sr, bc, sc) = (rate(&b), rate(&s), cpu(&b), cpu(&s));
        println!(
            "{conns:>6}  {br:>12.0} {sr:>12.0} {:>6.2}×   {bc:>12.1} {sc:>12.1} {:>6.2}×",
            sr / br,
            sc / bc
        );
    }
    let _ = server.kill();
}
