#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Scale benchmark: client memory per idle connection and messages/s against the
//! reference server running as a separate process on loopback.
//!
//! `cargo bench --bench scale` (env: STAMPEDE_BENCH_CONNS, default 10000;
//! STAMPEDE_BENCH_USERS, default 200; STAMPEDE_BENCH_MESSAGES, default 50).
//! Prints figures; asserts nothing. Bounded: every phase has a timeout.

/// The allocator the `stampede` binary uses (src/main.rs), so the library runs here as it
/// does there.
#[global_allocator]
static ALLOCATOR: stampede::allocator::Allocator = stampede::allocator::Allocator;

use stampede::metrics::Live;
use stampede::scenario::load_str;
use stampede::swarm::{self, Dialer, Endpoint, TlsOptions};
use stampede::{auth, plan};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "stampede-bench-secret";

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size of a process, in KiB, from /proc.
fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Starts `stampede serve` on an ephemeral port and returns it with its URL.
fn start_server() -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["serve", "--addr", "127.0.0.1:0", "--event-delay", "0ms"])
        .env("STAMPEDE_JWT_SECRET", SECRET)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the reference server");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("ws://"))
                .map(str::to_string)
        })
        .expect("server prints its URL");
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

fn scenario(name: &str, body: &str) -> stampede::model::Scenario {
    let text = format!(
        "name = \"{name}\"\nduration = \"120s\"\n[auth]\nsecret = {{ value = \"{SECRET}\" }}\n{body}"
    );
    load_str(&text, name).unwrap_or_else(|e| panic!("bench scenario: {e}"))
}

/// The plan and its tokens, built before anything is measured.
struct Prepared {
    plan: Arc<stampede::model::Plan>,
    tokens: Vec<auth::Token>,
}

fn prepare(s: &stampede::model::Scenario) -> Prepared {
    let plan = Arc::new(plan::build(s, 1));
    let keys = auth::Keys::hmac(plan.auth.alg, SECRET.as_bytes()).expect("keys");
    let tokens = auth::mint_all(&plan.tokens, &plan.auth, &keys).expect("tokens");
    Prepared { plan, tokens }
}

async fn swarm_for(
    prepared: Prepared,
    url: &str,
    live: Arc<Live>,
    cancel: CancellationToken,
) -> swarm::SwarmOutput {
    let endpoint = Endpoint::resolve(url).await.expect("endpoint");
    let dialer = Dialer {
        endpoint,
        tls: None,
        limits: prepared.plan.limits,
        sources: Default::default(),
        login_tls: None,
    };
    let _ = TlsOptions::default();
    swarm::run(
        prepared.plan,
        dialer,
        prepared.tokens,
        live,
        Default::default(),
        cancel,
    )
    .await
}

async fn idle_memory(url: &str, conns: u32) {
    let s = scenario(
        "bench-idle",
        &format!(
            "[[group]]\nname = \"idle\"\nusers = {conns}\narrival = {{ ramp = \"3s\" }}\nsteps = [\n  {{ expect = \"connection_established\", within = \"30s\" }},\n  {{ think = \"100s\" }},\n]\n"
        ),
    );
    // The plan and tokens (~1 KiB per connection here) are built first, so the figure
    // below is what an open, idle connection costs the engine.
    let prepared = prepare(&s);
    let me = std::process::id().to_string();
    let before = rss_kib(&me);
    let live = Arc::new(Live::default());
    let cancel = CancellationToken::new();
    let run = tokio::spawn(swarm_for_owned(
        prepared,
        url.to_string(),
        live.clone(),
        cancel.clone(),
    ));
    let started = Instant::now();
    while live.live.load(Relaxed) < i64::from(conns) && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = live.live.load(Relaxed);
    let after = rss_kib(&me);
    cancel.cancel();
    let _ = run.await;
    let per = (after.saturating_sub(before)) as f64 / open.max(1) as f64;
    println!(
        "idle connections open     {open} of {conns} (in {:.1}s)",
        started.elapsed().as_secs_f64()
    );
    println!("client RSS                {before} KiB before, {after} KiB with all open");
    println!("client memory per idle    {per:.1} KiB/connection");
}

async fn swarm_for_owned(
    prepared: Prepared,
    url: String,
    live: Arc<Live>,
    cancel: CancellationToken,
) {
    let _ = swarm_for(prepared, &url, live, cancel).await;
}

async fn throughput(url: &str, users: u32, messages: u32) {
    let s = scenario(
        "bench-throughput",
        &format!(
            "[[group]]\nname = \"chat\"\nusers = {users}\narrival = {{ ramp = \"500ms\" }}\nsteps = [\n  {{ expect = \"connection_established\", within = \"10s\" }},\n  {{ repeat = {messages}, steps = [\n    {{ send = {{ type = \"user_message\", run_id = \"r-{{{{conn}}}}-{{{{run}}}}\", thread_id = \"t\", content = \"x\" }} }},\n    {{ expect = \"agent_started agent_thinking+ tool_executing tool_completed agent_completed\", correlate = \"run_id\", within = \"10s\" }},\n  ] }},\n  {{ close = 1000 }},\n]\n"
        ),
    );
    let live = Arc::new(Live::default());
    let started = Instant::now();
    let out = swarm_for(prepare(&s), url, live.clone(), CancellationToken::new()).await;
    let secs = started.elapsed().as_secs_f64();
    let received = live.received.load(Relaxed);
    let sent = live.sent.load(Relaxed);
    let turn = out.histograms.get(stampede::model::Phase::Turn);
    let violations: u64 = out
        .reports
        .iter()
        .map(|r| r.violations_by_oracle.values().sum::<u64>())
        .sum();
    println!("throughput run            {users} users × {messages} requests in {secs:.2}s");
    println!(
        "messages/s received       {:.0}  (sent {:.0}/s)",
        received as f64 / secs,
        sent as f64 / secs
    );
    println!(
        "turn p50 / p99 / max      {:.2} / {:.2} / {:.2} ms   violations {violations}",
        turn.value_at_quantile(0.5) as f64 / 1000.0,
        turn.value_at_quantile(0.99) as f64 / 1000.0,
        turn.max() as f64 / 1000.0
    );
}

fn main() {
    // As the `stampede` binary starts (src/main.rs).
    stampede::allocator::opt_out_of_huge_pages();
    // `cargo test --benches` runs this binary with --bench absent; skip the heavy work then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("scale bench: run with `cargo bench --bench scale`");
        return;
    }
    let conns = env_u32("STAMPEDE_BENCH_CONNS", 10_000);
    let users = env_u32("STAMPEDE_BENCH_USERS", 200);
    let messages = env_u32("STAMPEDE_BENCH_MESSAGES", 50);
    let _ = rlimit::increase_nofile_limit(u64::from(conns) * 2 + 1024);
    let (mut server, url) = start_server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("reference server          {url} (pid {})", server.id());
        throughput(&url, users, messages).await;
        idle_memory(&url, conns).await;
        println!(
            "server RSS                {} KiB",
            rss_kib(&server.id().to_string())
        );
    });
    let _ = server.kill();
    let _ = server.wait();
}
