//! Target health: the probe between hunt rounds, broken-target findings, `--reset`.
//!
//! The target here is a small loopback server with damage that accumulates across
//! rounds: every connection that ends without a Close (an aborted handshake, a reset)
//! leaks one of [`SLOTS`] slots, and once none is left every upgrade gets 500 (a failure,
//! not load shedding: a 503 would be waited out as the server's "not now"). A control
//! port resets it (answers `ok` once the slots are back), so `--reset` has something
//! real to do and the test can count how often it ran.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use stampede::hunt::{self, HuntError, HuntOptions, Reset, ResetError, Runner, ShrinkOptions};
use stampede::model::OracleKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Slots the leaky server has: three aborting users leak 3 a round, so round 1 breaks it.
const SLOTS: u32 = 5;

/// Every test is bounded by this, whatever happens.
const BOUND: Duration = Duration::from_secs(90);

/// Three users abort their handshake with an RST, reconnect and expect the greeting.
const SCENARIO: &str = r#"
name = "leaky-aborts"
duration = "3s"

[auth]
secret = { value = "stampede-test-secret" }

[[group]]
name = "quitters"
users = 3
arrival = { ramp = "10ms" }
steps = [
  { abort_handshake = { after = "1ms", how = "rst" } },
  { reconnect = { after = "50ms" } },
  { expect = "connection_established", within = "2s" },
  { close = 1000 },
]

[hunt]
rounds = 6
"#;

/// The leaky server: its URL, its leak counter and its reset counter.
struct Leaky {
    url: String,
    control: SocketAddr,
    resets: Arc<AtomicU32>,
    _stop: tokio_util::sync::DropGuard,
}

impl Leaky {
    /// `--reset` for it: connect to the control port and wait for its `ok`.
    fn reset_command(&self) -> String {
        format!(
            "bash -c 'exec 3<>/dev/tcp/{}/{}; read -r line <&3; [ \"$line\" = ok ]'",
            self.control.ip(),
            self.control.port()
        )
    }
}

async fn spawn_leaky() -> Leaky {
    let leaked = Arc::new(AtomicU32::new(0));
    let resets = Arc::new(AtomicU32::new(0));
    let lost = Arc::clone(&leaked);
    let (url, stop) = common::spawn_server(move |tcp| leaky_conn(tcp, Arc::clone(&lost))).await;
    let control_listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let control = control_listener.local_addr().unwrap();
    let (slots, count, halt) = (Arc::clone(&leaked), Arc::clone(&resets), stop.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = halt.cancelled() => break,
                accepted = control_listener.accept() => {
                    let Ok((mut tcp, _)) = accepted else { continue };
                    slots.store(0, Ordering::SeqCst);
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = tcp.write_all(b"ok\n").await;
                }
            }
        }
    });
    Leaky {
        url,
        control,
        resets,
        _stop: stop.drop_guard(),
    }
}

/// One connection of the leaky server.
async fn leaky_conn(mut tcp: tokio::net::TcpStream, leaked: Arc<AtomicU32>) {
    if leaked.load(Ordering::SeqCst) >= SLOTS {
        let _ = tcp
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 9\r\n\r\nno slots\n")
            .await;
        return;
    }
    let Some((mut ws, sub)) = common::accept_with_sub(tcp).await else {
        leaked.fetch_add(1, Ordering::SeqCst);
        return;
    };
    let hello = json!({"type": "connection_established", "user_id": sub, "connection_id": "c"});
    if ws
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        leaked.fetch_add(1, Ordering::SeqCst);
        return;
    }
    // A slot is given back only by a Close; any other end leaks it.
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(_))) => {
                let _ = ws.close(None).await;
                return;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                leaked.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

async fn runner_for(url: &str, reset: Reset) -> Runner {
    let s = common::scenario("leaky-aborts.toml", SCENARIO);
    let mut runner = common::url_runner(&stampede::plan::build(&s, 1), url).await;
    runner.reset = reset;
    runner
}

fn hunt_opts(dir: &std::path::Path, confirm: u32) -> HuntOptions {
    HuntOptions {
        budget: Duration::from_secs(60),
        seed: 1,
        out: dir.to_path_buf(),
        confirm,
    }
}

#[tokio::test]
async fn hunt_names_the_round_that_left_the_target_broken_and_the_repro_replays_with_reset() {
    tokio::time::timeout(BOUND, async {
        let leaky = spawn_leaky().await;
        let reset = Reset::Command {
            command: leaky.reset_command(),
            timeout: Duration::from_secs(10),
        };
        let runner = runner_for(&leaky.url, reset).await;
        let s = common::scenario("leaky-aborts.toml", SCENARIO);
        let dir = tempfile::tempdir().unwrap();
        let outcome = hunt::hunt(&s, &runner, &hunt_opts(dir.path(), 3), &mut |_| {})
            .await
            .unwrap();
        let found = outcome.found.expect("the broken target is a finding");
        let repro = &found.repro;
        assert_eq!(repro.oracle, OracleKind::TargetHealth);
        let health = repro.health.as_ref().unwrap();
        // 3 leaks a round against 5 slots: round 0 leaves 2, round 1 takes the rest.
        assert_eq!(health.broken_by_round, 1);
        assert_eq!(outcome.rounds, 2);
        assert!(health.before.healthy && !health.after.healthy);
        assert!(
            health.after.answer.contains("500"),
            "{}",
            health.after.answer
        );
        // Round 1 alone leaks 3 of 5: the repro keeps round 0 too, and reproduces.
        assert_eq!(health.earlier.len(), 1, "the accumulated rounds ride along");
        assert!(found.rate.reproduced >= 2, "rate {}", found.rate);
        assert!(
            leaky.resets.load(Ordering::SeqCst) >= 3,
            "the reset ran before each confirmation"
        );
        let violation = &repro.evidence[0];
        assert_eq!(violation.oracle, OracleKind::TargetHealth);
        assert!(
            violation.expected.contains("round 1"),
            "{}",
            violation.expected
        );

        // The file round-trips, and replays against the correct (built-in, restarted
        // each try) server without breaking it.
        let back = hunt::Repro::load(&found.path).unwrap();
        assert_eq!(back.oracle, repro.oracle);
        let kept = back.health.as_ref().unwrap();
        assert_eq!(kept.broken_by_round, 1);
        assert_eq!(kept.earlier.len(), 1);
        assert_eq!(kept.after, health.after);
        let correct = Runner::reference(&repro.plan, None, None, CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(correct.reset, Reset::BuiltIn);
        let h = repro.health.as_ref().unwrap();
        let rate = correct
            .measure_health(&h.plans(&back.plan), &h.probe, 2, None, None)
            .await
            .unwrap()
            .rate;
        assert_eq!((rate.reproduced, rate.runs), (0, 2), "{rate}");
        correct.close().await;

        // Without a reset, shrink keeps the finding whole.
        let no_reset = runner_for(&leaky.url, Reset::None).await;
        let resets = leaky.resets.load(Ordering::SeqCst);
        let kept = hunt::shrink_health(&back, &no_reset, ShrinkOptions::default())
            .await
            .unwrap();
        assert_eq!(kept.candidates, 0);
        assert_eq!(kept.repro.health, back.health, "kept whole");
        assert_eq!(leaky.resets.load(Ordering::SeqCst), resets, "no reset ran");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn every_replay_try_runs_the_reset_command_first() {
    tokio::time::timeout(BOUND, async {
        let leaky = spawn_leaky().await;
        let reset = Reset::Command {
            command: leaky.reset_command(),
            timeout: Duration::from_secs(10),
        };
        let runner = runner_for(&leaky.url, reset).await;
        let s = common::scenario("leaky-aborts.toml", SCENARIO);
        let plan = stampede::plan::build(&s, 1);
        let rate = runner
            .rate(&plan, OracleKind::Completeness, 3, None)
            .await
            .unwrap();
        assert_eq!(rate.runs, 3, "{rate}");
        // Reset before each: every run found 5 fresh slots, so none was refused.
        assert_eq!(rate.reproduced, 0, "{rate}");
        assert_eq!(leaky.resets.load(Ordering::SeqCst), 3);
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_failing_or_hanging_reset_is_a_clear_error_not_a_hang() {
    tokio::time::timeout(BOUND, async {
        let leaky = spawn_leaky().await;
        let s = common::scenario("leaky-aborts.toml", SCENARIO);
        let plan = stampede::plan::build(&s, 1);
        for (command, timeout) in [
            (
                "echo target restart refused >&2; exit 7",
                Duration::from_secs(10),
            ),
            ("sleep 30", Duration::from_millis(300)),
        ] {
            let reset = Reset::Command {
                command: command.into(),
                timeout,
            };
            let runner = runner_for(&leaky.url, reset).await;
            let err = runner
                .rate(&plan, OracleKind::Completeness, 2, None)
                .await
                .unwrap_err();
            match &err {
                HuntError::Reset(ResetError::Failed { .. }) => {
                    assert!(err.to_string().contains("restart refused"), "{err}")
                }
                HuntError::Reset(ResetError::TimedOut { .. }) => {
                    assert!(err.to_string().contains("did not finish"), "{err}")
                }
                other => panic!("unexpected error: {other}"),
            }
        }
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn the_built_in_reset_restarts_the_server_with_fresh_state_on_the_same_url() {
    tokio::time::timeout(BOUND, async {
        let s = common::scenario("leaky-aborts.toml", SCENARIO);
        let plan = stampede::plan::build(&s, 1);
        let runner = Runner::reference(&plan, None, None, CancellationToken::new())
            .await
            .unwrap();
        let url = runner.url().to_string();
        let outcome = runner.once(&plan).await.unwrap();
        assert_eq!(outcome.results.summary.counters.accepted, 3);
        let server = runner.bound.server.as_ref().unwrap();
        assert!(server.stats().accepted >= 3);
        assert!(runner.reset_target().await.unwrap());
        assert_eq!(
            server.stats().accepted,
            0,
            "a fresh server counts from zero"
        );
        assert_eq!(runner.url(), url);
        let again = runner.once(&plan).await.unwrap();
        assert_eq!(again.results.summary.counters.accepted, 3);
        runner.close().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn the_hunt_command_says_which_round_left_the_target_broken() {
    tokio::time::timeout(BOUND, async {
        let leaky = spawn_leaky().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leaky-aborts.toml");
        std::fs::write(&path, SCENARIO).unwrap();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
            .arg("hunt")
            .arg(&path)
            .args(["--target", &leaky.url, "--budget", "40s", "--times", "2"])
            .args(["--reset", &leaky.reset_command()])
            .arg("-o")
            .arg(dir.path())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains("the target was left broken by round 1"),
            "{stdout}"
        );
        assert!(
            stdout.contains("health probe after:  refused: http_500"),
            "{stdout}"
        );
        assert!(stdout.contains("confirmed 2/2 on replay"), "{stdout}");
        assert!(stdout.contains("repro-target_health-"), "{stdout}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn shrink_with_a_reset_drops_the_rounds_and_connections_the_damage_does_not_need() {
    tokio::time::timeout(BOUND, async {
        let leaky = spawn_leaky().await;
        let reset = Reset::Command {
            command: leaky.reset_command(),
            timeout: Duration::from_secs(10),
        };
        let runner = runner_for(&leaky.url, reset).await;
        let s = common::scenario("leaky-aborts.toml", SCENARIO);
        let plan = stampede::plan::build(&s, 1);
        let probe = hunt::probe_plan(&s, 1);
        let healthy = hunt::ProbeAnswer {
            healthy: true,
            answer: "accepted; 1/1 expectations met".into(),
            elapsed_ms: 1.0,
            shed: None,
        };
        let broken = hunt::ProbeAnswer {
            healthy: false,
            answer: "refused: http_500".into(),
            elapsed_ms: 1.0,
            shed: None,
        };
        // Four rounds of 3 leaks each where two suffice to use up 5 slots.
        let repro = hunt::Repro {
            version: hunt::REPRO_VERSION,
            tool_version: "test".into(),
            scenario: s.name.clone(),
            scenario_hash: s.hash.clone(),
            seed: 1,
            round: 3,
            target: leaky.url.clone(),
            reference: None,
            oracle: OracleKind::TargetHealth,
            evidence: vec![hunt::health_violation(&probe, &healthy, &broken, Some(3))],
            rate: None,
            health: Some(hunt::HealthFinding {
                broken_by_round: 3,
                probe,
                before: healthy,
                after: broken,
                earlier: vec![plan.clone(), plan.clone(), plan.clone()],
            }),
            policy: None,
            plan,
        };
        let opts = ShrinkOptions {
            times: 2,
            budget: Duration::from_secs(60),
            ..ShrinkOptions::default()
        };
        let shrunk = hunt::shrink_health(&repro, &runner, opts).await.unwrap();
        assert_eq!(shrunk.before.1.reproduced, 2, "{}", shrunk.before.1);
        let kept = shrunk.repro.health.as_ref().unwrap();
        assert_eq!(
            kept.earlier.len(),
            1,
            "one earlier round plus the breaking one"
        );
        // Then the breaking round keeps only the connections the damage needs: 3 leaks
        // before it, 2 of its 3 in it, and the 5 slots are gone (1 more would not do).
        assert_eq!(shrunk.after.0, SLOTS as usize, "{:?}", shrunk.after);
        assert_eq!(shrunk.repro.plan.conns.len(), 2);
        assert_eq!(shrunk.after.1.reproduced, 2, "{}", shrunk.after.1);
        assert!(shrunk.candidates >= 2);
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_probe_the_target_never_answers_is_unhealthy_and_bounded() {
    tokio::time::timeout(BOUND, async {
        let (url, _stop) = common::spawn_fake(common::Fault::Silent).await;
        let runner = runner_for(&url, Reset::None).await;
        let s = common::scenario("leaky-aborts.toml", SCENARIO);
        let started = std::time::Instant::now();
        let answer = runner
            .probe(&hunt::probe_plan(&s, 1), None)
            .await
            .unwrap()
            .expect("an answer");
        assert!(!answer.healthy, "{answer:?}");
        assert!(
            answer.answer.contains("no answer") || answer.answer.contains("failed"),
            "{}",
            answer.answer
        );
        assert!(started.elapsed() < hunt::PROBE_LIMIT + Duration::from_secs(10));
    })
    .await
    .expect("bounded");
}

/// Three users, each greeted and closing; no liveness probe phase, so a round opens
/// exactly three connections and the limit below is met at a known count.
const GREETED: &str = r#"
name = "greeted"
duration = "3s"

[auth]
secret = { value = "stampede-test-secret" }

[oracles]
liveness = false

[[group]]
name = "greeted"
users = 3
arrival = { ramp = "10ms" }
steps = [
  { expect = "connection_established", within = "2s" },
  { close = 1000 },
]

[hunt]
rounds = 3
"#;

/// A rate limit of 4 upgrades, then 429 `Retry-After: 1` for 1.5 s: the health probe
/// before a round and the round's three connections use it up, so the probe after every
/// round is shed, twice (at once, and again a second later), and taken at the third try.
const WINDOW_LIMIT: common::RateLimit = common::RateLimit {
    admits: 4,
    sheds_for: Some(Duration::from_millis(1500)),
    answer: common::TOO_MANY,
};

/// The same 4 upgrades, then 503 for good: a server shedding past the probe's wait.
const SHEDS_ON: common::RateLimit = common::RateLimit {
    admits: 4,
    sheds_for: None,
    answer: common::UNAVAILABLE,
};

async fn greeted_runner(url: &str, reset: Reset) -> (stampede::model::Scenario, Runner) {
    let s = common::scenario("greeted.toml", GREETED);
    let mut runner = common::url_runner(&stampede::plan::build(&s, 1), url).await;
    runner.reset = reset;
    (s, runner)
}

/// The bug a user hit: a server's legitimate rate limit (429 with `Retry-After`) answered
/// the probe right after round 0 and the hunt called the target left broken by it. The
/// probe now waits as asked and the rounds go on.
#[tokio::test]
async fn a_rate_limited_target_is_shedding_load_not_broken_and_the_hunt_goes_on() {
    tokio::time::timeout(BOUND, async {
        let (url, _stop) = common::spawn_rate_limited(WINDOW_LIMIT).await;
        let (s, runner) = greeted_runner(&url, Reset::None).await;
        let dir = tempfile::tempdir().unwrap();
        let outcome = hunt::hunt(&s, &runner, &hunt_opts(dir.path(), 3), &mut |_| {})
            .await
            .unwrap();
        let found = outcome.found.as_ref().map(|f| &f.repro.evidence);
        assert!(found.is_none(), "a rate limit is no finding: {found:?}");
        assert_eq!(outcome.rounds, 3, "every round ran");
        assert!(outcome.short.is_none(), "{:?}", outcome.short);
        let shed = &outcome.health_shed;
        assert!(
            shed.answers >= 3,
            "the probe after each round was shed: {shed:?}"
        );
        assert_eq!(shed.inconclusive, 0, "each was waited out: {shed:?}");
        let last = shed.last.as_deref().unwrap_or_default();
        assert!(
            last.contains("http_429") && last.contains("Retry-After 1s"),
            "{last}"
        );
        runner.close().await;
    })
    .await
    .expect("bounded");
}

/// A rate limit of 5 upgrades per window: the probe and round 0's three connections, then
/// the probe after round 0, leave round 1 none: the server sheds all of it. That round is
/// "not now", not a target that cannot be judged (it once ended the hunt as target
/// unusable, exit 5, after a round had passed): it counts as not judged, the probe after
/// it waits the shedding out, and the hunt goes on to its last round.
#[tokio::test]
async fn a_round_shed_throughout_after_judged_rounds_is_not_judged_and_the_hunt_goes_on() {
    tokio::time::timeout(BOUND, async {
        let limit = common::RateLimit {
            admits: 5,
            ..WINDOW_LIMIT
        };
        let (url, _stop) = common::spawn_rate_limited(limit).await;
        let (s, runner) = greeted_runner(&url, Reset::None).await;
        let dir = tempfile::tempdir().unwrap();
        let outcome = hunt::hunt(&s, &runner, &hunt_opts(dir.path(), 3), &mut |_| {})
            .await
            .unwrap();
        assert!(outcome.short.is_none(), "{:?}", outcome.short);
        assert!(outcome.found.is_none());
        assert_eq!(outcome.rounds, 3, "every round ran");
        assert!(outcome.not_judged >= 1, "{}", outcome.not_judged);
        runner.close().await;
    })
    .await
    .expect("bounded");
}

/// Replaying a broken-target repro against a rate-limited target: the probe after the
/// rounds is shed, waited out and passes, so no try reproduces a broken target.
#[tokio::test]
async fn a_replay_against_a_rate_limited_target_reproduces_no_broken_target() {
    tokio::time::timeout(BOUND, async {
        let (url, _stop) = common::spawn_rate_limited(WINDOW_LIMIT).await;
        let reset = Reset::Command {
            command: "true".into(),
            timeout: Duration::from_secs(10),
        };
        let (s, runner) = greeted_runner(&url, reset).await;
        let plan = stampede::plan::build(&s, 1);
        let probe = hunt::probe_plan(&s, 1);
        let measured = runner
            .measure_health(&[plan], &probe, 2, None, None)
            .await
            .unwrap();
        let rate = &measured.rate;
        assert_eq!((rate.reproduced, rate.runs, rate.shed), (0, 2, 0), "{rate}");
        assert!(measured.evidence.is_empty());
        runner.close().await;
    })
    .await
    .expect("bounded");
}

/// A server still shedding when the probe's wait runs out is inconclusive, not broken:
/// the hunt says it was shedding and finds nothing, and the wait is bounded.
#[tokio::test]
async fn a_target_shedding_past_the_probes_wait_is_inconclusive_not_broken() {
    tokio::time::timeout(BOUND, async {
        let (url, _stop) = common::spawn_rate_limited(SHEDS_ON).await;
        let (mut s, runner) = greeted_runner(&url, Reset::None).await;
        s.hunt.rounds = 1;
        let dir = tempfile::tempdir().unwrap();
        let outcome = hunt::hunt(&s, &runner, &hunt_opts(dir.path(), 3), &mut |_| {})
            .await
            .unwrap();
        let found = outcome.found.as_ref().map(|f| &f.repro.evidence);
        assert!(found.is_none(), "load shedding is no finding: {found:?}");
        assert_eq!(outcome.rounds, 1);
        let shed = &outcome.health_shed;
        assert_eq!(shed.inconclusive, 1, "{shed:?}");
        assert!(shed.answers >= 2, "tried again after the backoff: {shed:?}");
        let note = shed.note().unwrap();
        assert!(
            note.contains("http_503") && note.contains("target health was not judged"),
            "{note}"
        );

        // One probe on its own: shed to the end of its wait, which is bounded.
        let started = std::time::Instant::now();
        let answer = runner
            .probe(&hunt::probe_plan(&s, 1), None)
            .await
            .unwrap()
            .expect("an answer");
        assert!(answer.shedding() && !answer.broken(), "{answer:?}");
        assert!(
            answer.answer.starts_with("shed: http_503"),
            "{}",
            answer.answer
        );
        assert!(
            started.elapsed() < hunt::SHED_WAIT_CAP + hunt::PROBE_LIMIT,
            "{:?}",
            started.elapsed()
        );
        runner.close().await;
    })
    .await
    .expect("bounded");
}

/// A server that truly breaks (it stops taking connections after round 0: refused) is
/// still a broken target: load shedding is the only failure the probe waits out.
#[tokio::test]
async fn a_target_that_stops_accepting_is_still_left_broken() {
    tokio::time::timeout(BOUND, async {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        // The probe before round 0 and its three connections, then the listener is gone.
        tokio::spawn(async move {
            for _ in 0..4 {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(common::fake_conn(tcp, common::Fault::None));
            }
        });
        let (s, runner) = greeted_runner(&url, Reset::None).await;
        let dir = tempfile::tempdir().unwrap();
        let outcome = hunt::hunt(&s, &runner, &hunt_opts(dir.path(), 0), &mut |_| {})
            .await
            .unwrap();
        let found = outcome.found.expect("the broken target is a finding");
        assert_eq!(found.repro.oracle, OracleKind::TargetHealth);
        let health = found.repro.health.as_ref().unwrap();
        assert_eq!(health.broken_by_round, 0);
        assert!(health.after.broken(), "{:?}", health.after);
        assert!(
            health.after.answer.contains("connect"),
            "{}",
            health.after.answer
        );
        assert_eq!(outcome.health_shed, hunt::HealthShed::default());
        runner.close().await;
    })
    .await
    .expect("bounded");
}

/// The command: a hunt against a rate-limited target ends clean and says how often the
/// server shed the health probe.
#[tokio::test]
async fn the_hunt_command_waits_out_a_rate_limit_and_says_so() {
    tokio::time::timeout(BOUND, async {
        let (url, _stop) = common::spawn_rate_limited(WINDOW_LIMIT).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("greeted.toml");
        std::fs::write(&path, GREETED).unwrap();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
            .arg("hunt")
            .arg(&path)
            .args(["--target", &url, "--budget", "40s", "--times", "3"])
            .args(["--reset", "true", "--no-learn"])
            .arg("-o")
            .arg(dir.path())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(stdout.contains("no violation in 3 rounds"), "{stdout}");
        assert!(
            stdout.contains("note: the server shed the health probe")
                && stdout.contains("waited out as it asked"),
            "{stdout}"
        );
        assert!(!stdout.contains("left broken"), "{stdout}");
    })
    .await
    .expect("bounded");
}
