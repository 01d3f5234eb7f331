//! Message rendezvous against the reference server: every connection of a group parks its
//! next send and the release writes the frames' last bytes back to back. The spread is
//! printed (timing is never asserted: this machine may be busy); what is asserted is that
//! everyone arrived and went out at the release, or, with a timeout, who was missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{run, scenario, TEST_SECRET};
use stampede::model::{BarrierStats, OracleKind};

fn rendezvous_scenario(users: u32, think: &str, rendezvous: &str) -> String {
    format!(
        r#"
name = "rendezvous"
seed = 3
duration = "40s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[[group]]
name = "senders"
users = {users}
arrival = {{ ramp = "300ms" }}
steps = [
  {{ expect = "connection_established", within = "10s" }},
  {{ think = "{think}" }},
  {{ rendezvous = {rendezvous} }},
  {{ send = {{ type = "user_message", run_id = "r-{{{{conn}}}}", thread_id = "t-{{{{user}}}}", content = "x" }} }},
  {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "10s" }},
  {{ close = 1000 }},
]
"#
    )
}

fn the_rendezvous(stats: &[BarrierStats]) -> &BarrierStats {
    let found: Vec<&BarrierStats> = stats.iter().filter(|b| b.rendezvous.is_some()).collect();
    assert_eq!(found.len(), 1, "one rendezvous point: {stats:?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_sends_are_released_together() {
    let text = rendezvous_scenario(300, "fixed(0ms)", r#"{ count = "all", timeout = "20s" }"#);
    let s = scenario("rendezvous.toml", &text);
    let outcome = run(&s, None, None).await;
    let summary = &outcome.results.summary;
    let b = the_rendezvous(&summary.barriers);
    let rv = b.rendezvous.as_ref().unwrap();
    println!(
        "rendezvous of 300: arrived {} released {} at {:.1}ms; spread p50 {}µs p99 {}µs max {}µs",
        rv.arrived, b.released, b.fired_ms, b.spread_p50_us, b.spread_p99_us, b.spread_max_us
    );
    assert_eq!(b.connections, 300);
    assert_eq!(rv.arrived, 300, "everyone parked before the release");
    assert!(
        !rv.timed_out,
        "the last arrival released it, not the timeout"
    );
    assert_eq!(rv.missing_total, 0);
    assert_eq!(b.released, 300, "every held byte went out at the release");
    assert!(b.fired_ms > 0.0);
    // The sends went through: the correct server answered every run in full.
    assert_eq!(summary.counters.messages_sent, 300);
    assert!(
        !outcome.broke(OracleKind::Completeness),
        "{:?}",
        summary.violations.first
    );
    // The console says it.
    let mut text = Vec::new();
    stampede::report::render(summary, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("rendezvous   senders #1: 300/300 arrived, 300 sends released together"),
        "{text}"
    );
    // This test's runtime registers no thread with `stampede::priority`: nothing is
    // raised, and the console says so.
    assert_eq!(summary.releases_raised, Some(false));
    assert!(
        text.contains("release      threads at the default priority"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_releases_those_present_and_names_the_missing() {
    // Arrivals spread over 3 s, a 200 ms timeout from the first: the latecomers are
    // missing, go straight through, and nobody waits for them.
    let text = rendezvous_scenario(
        16,
        "uniform(0ms, 3s)",
        r#"{ count = "all", timeout = "200ms" }"#,
    );
    let s = scenario("rendezvous.toml", &text);
    let started = std::time::Instant::now();
    let outcome = run(&s, None, None).await;
    let summary = &outcome.results.summary;
    let b = the_rendezvous(&summary.barriers);
    let rv = b.rendezvous.as_ref().unwrap();
    println!("timeout: {rv:?}, {:?}", started.elapsed());
    assert!(rv.timed_out, "{rv:?}");
    assert!(rv.missing_total >= 1, "{rv:?}");
    assert_eq!(rv.arrived + rv.missing_total, 16, "{rv:?}");
    assert_eq!(rv.missing.len(), rv.missing_total.min(20));
    // The latecomers' sends still went out (after the release, on their own).
    assert_eq!(summary.counters.messages_sent, 16);
    assert!(!outcome.broke(OracleKind::Completeness));
    let mut text = Vec::new();
    stampede::report::render(summary, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("(timed out)"), "{text}");
    assert!(text.contains("missing: conn "), "{text}");
}

/// A parked send's turn counts from the release, not from when it was parked: arrivals
/// ramp over a second, so the first connection parks about a second before the last one
/// releases the meeting, and a turn that counted that wait would last as long (it did,
/// before the release was stamped as the request's time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_sends_turn_counts_from_the_release() {
    let text = rendezvous_scenario(20, "fixed(0ms)", r#"{ count = "all", timeout = "20s" }"#)
        .replace(r#"ramp = "300ms""#, r#"ramp = "1s""#);
    let s = scenario("rendezvous.toml", &text);
    let outcome = run(&s, None, None).await;
    let summary = &outcome.results.summary;
    let b = the_rendezvous(&summary.barriers);
    assert_eq!(b.released, 20, "{b:?}");
    // The last connection starts at 950 ms; the first parks within its handshake.
    assert!(b.fired_ms >= 950.0, "{b:?}");
    for phase in ["turn", "turn_raw", "first_event"] {
        let stats = &summary.phases[phase];
        println!("{phase}: {stats:?}");
        assert_eq!(stats.count, 20, "{phase}");
        assert!(
            stats.max_ms < 400.0,
            "{phase} max {} ms counts the wait at the meeting (released at {} ms)",
            stats.max_ms,
            b.fired_ms
        );
    }
}

/// The shipped scenario: against the planted burst loss, the released sends start
/// hundreds of runs inside one window and completeness catches the lost events; against
/// the correct server the same run is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_rendezvous_scenario_finds_the_burst_loss_and_nothing_on_the_correct_server() {
    use stampede::reference::Bug;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/races/burst-event-loss-rendezvous.toml");
    let s = stampede::scenario::load_file(&path).unwrap();
    let plan = stampede::plan::build(&s, s.seed);
    for bug in [Some(Bug::BurstEventLoss), None] {
        let runner = stampede::hunt::Runner::reference(
            &plan,
            bug,
            None,
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
        let outcome = tokio::time::timeout(common::TEST_BOUND, runner.once(&plan))
            .await
            .expect("bounded")
            .unwrap();
        let summary = &outcome.results.summary;
        for b in summary.barriers.iter() {
            let rv = b.rendezvous.as_ref().unwrap();
            println!(
                "{bug:?} #{}: {}/{} arrived, {} released; spread p50 {}µs p99 {}µs max {}µs",
                rv.step,
                rv.arrived,
                b.connections,
                b.released,
                b.spread_p50_us,
                b.spread_p99_us,
                b.spread_max_us
            );
            assert_eq!((rv.arrived, b.released), (300, 300), "{bug:?}: {rv:?}");
        }
        assert_eq!(summary.barriers.len(), 2);
        let lost = summary.violations.of(OracleKind::Completeness);
        match bug {
            Some(_) => assert!(lost >= 100, "only {lost} lost events found"),
            None => assert_eq!(lost, 0, "{:?}", summary.violations.first),
        }
        runner.close().await;
    }
}

/// A rendezvous inside a `repeat`: each iteration is a meeting of its own (the plan keeps
/// the loop; the cursor says which meeting). Three of ten connections are refused: they
/// reach every meeting without a connection, are counted absent, and no meeting waits for
/// them until its (long) timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_iteration_of_a_repeat_is_a_meeting_and_refused_connections_are_not_waited_for() {
    use stampede::model::{Action, BadToken, Forge};
    let text = format!(
        r#"
name = "rendezvous-loop"
seed = 5
duration = "40s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[[group]]
name = "loop"
users = 10
arrival = {{ ramp = "200ms" }}
steps = [
  {{ expect = "connection_established", within = "10s" }},
  {{ repeat = 3, steps = [
    {{ rendezvous = {{ count = "all", timeout = "30s" }} }},
    {{ send = {{ type = "user_message", run_id = "r-{{{{conn}}}}-{{{{run}}}}", thread_id = "t-{{{{user}}}}", content = "x" }} }},
    {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "10s" }},
  ] }},
  {{ close = 1000 }},
]
"#
    );
    let s = scenario("rendezvous-loop.toml", &text);
    let mut plan = stampede::plan::build(&s, s.seed);
    assert_eq!(
        plan.rendezvous.len(),
        1,
        "one point, however many iterations"
    );
    assert_eq!(plan.rendezvous[0].meetings, 3);
    assert!(plan.conns.iter().all(|c| c.is_scripted()));
    // The script walked: three meetings of point 0.
    let walked = stampede::plan::expand_conn(&plan, &plan.conns[0], 100).unwrap();
    let meetings: Vec<(u32, u64)> = walked
        .iter()
        .filter_map(|a| match a {
            Action::Rendezvous { point, iteration } => Some((*point, *iteration)),
            _ => None,
        })
        .collect();
    assert_eq!(meetings, [(0, 0), (0, 1), (0, 2)]);
    let refused: Vec<u32> = vec![2, 5, 8];
    for c in plan.conns.iter().filter(|c| refused.contains(&c.id)) {
        plan.tokens[c.token as usize].forge = Some(Forge::Bad {
            name: BadToken::Garbage,
        });
    }
    let runner = stampede::hunt::Runner::reference(
        &plan,
        None,
        None,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(common::TEST_BOUND, runner.once(&plan))
        .await
        .expect("bounded")
        .unwrap();
    let took = started.elapsed();
    runner.close().await;
    let summary = &outcome.results.summary;
    let entries: Vec<&BarrierStats> = summary
        .barriers
        .iter()
        .filter(|b| b.rendezvous.is_some())
        .collect();
    assert_eq!(entries.len(), 3, "{:?}", summary.barriers);
    for (i, b) in entries.iter().enumerate() {
        let rv = b.rendezvous.as_ref().unwrap();
        println!(
            "meeting {}: {}/{} arrived, {} released at {:.1}ms; spread p50 {}µs p99 {}µs",
            i, rv.arrived, b.connections, b.released, b.fired_ms, b.spread_p50_us, b.spread_p99_us
        );
        assert_eq!((rv.step, rv.iteration), (1, Some(i as u64)));
        assert_eq!(b.connections, 10);
        assert_eq!((rv.arrived, b.released), (7, 7), "{rv:?}");
        assert!(!rv.timed_out, "nobody waited for the refused: {rv:?}");
        assert_eq!(rv.missing, refused);
        assert_eq!(rv.more_meetings, 0);
    }
    // The 30 s timeout never ran out (the run itself is bounded well below it).
    assert!(took < std::time::Duration::from_secs(25), "{took:?}");
    assert_eq!(summary.counters.messages_sent, 21);
    assert!(
        !outcome.broke(OracleKind::Completeness),
        "{:?}",
        summary.violations.first
    );
    let mut text = Vec::new();
    stampede::report::render(summary, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("rendezvous   loop #1, iteration 3: 7/10 arrived, 7 sends released together"),
        "{text}"
    );
}
