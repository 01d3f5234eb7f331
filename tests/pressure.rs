//! Pressure escalation (`[hunt] pressure`): clean rounds raise the users per group level by
//! level up to a ceiling; a loss that needs more concurrent runs than the scenario starts
//! with is found only with it, and the correct server ends at the ceiling with nothing.
//!
//! `burst-event-loss` drops `tool_completed` once more than 4 runs start inside its
//! window (widened to 50 ms, so a busy 2-core machine still lands in it): the scenario
//! starts 2 users, which never lose anything. The same loss is reached on one connection
//! by raising its sends in flight: a paced `repeat` of 2 sends 40 ms apart never has more
//! than 2 runs in a window; raised to 8 sends 10 ms apart it has 5 or more.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use stampede::hunt::{self, HuntOptions, Runner};
use stampede::model::OracleKind;
use stampede::reference::Bug;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WINDOW: Duration = Duration::from_millis(50);
const BOUND: Duration = Duration::from_secs(120);

fn scenario(pressure: bool) -> stampede::model::Scenario {
    let table = if pressure {
        "pressure = { max_users = 16, factor = 2, rounds_per_level = 1, jitter = [\"0ms\", \"1ms\"] }\n"
    } else {
        ""
    };
    let text = format!(
        r#"
name = "pressure"
duration = "5s"

[[group]]
name = "burst"
users = 2
arrival = "collide"
steps = [
  {{ expect = "connection_established", within = "2s" }},
  {{ rendezvous = "all" }},
  {{ send = {{ type = "user_message", run_id = "r-{{{{conn}}}}", thread_id = "t-{{{{user}}}}", content = "x" }} }},
  {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "3s" }},
  {{ close = 1000 }},
]

[hunt]
rounds = 6
{table}"#
    );
    common::scenario("pressure.toml", &text)
}

async fn hunt_it(s: &stampede::model::Scenario, bug: Option<Bug>) -> hunt::HuntOutcome {
    let plan = stampede::plan::build(s, 1);
    let runner = Runner::reference(&plan, bug, Some(WINDOW), CancellationToken::new())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = HuntOptions {
        budget: Duration::from_secs(60),
        seed: 1,
        out: dir.path().to_path_buf(),
        confirm: 2,
    };
    let outcome = tokio::time::timeout(BOUND, hunt::hunt(s, &runner, &opts, &mut |_| {}))
        .await
        .expect("bounded")
        .unwrap();
    runner.close().await;
    outcome
}

#[tokio::test]
async fn escalation_finds_a_loss_the_scenario_as_written_never_reaches() {
    let plain = hunt_it(&scenario(false), Some(Bug::BurstEventLoss)).await;
    assert!(
        plain.found.is_none(),
        "2 runs at a time never lose an event"
    );
    assert_eq!(plain.rounds, 6);
    assert!(plain.pressure.is_empty());

    let raised = hunt_it(&scenario(true), Some(Bug::BurstEventLoss)).await;
    let found = raised.found.expect("more than 4 runs together lose events");
    assert_eq!(found.repro.oracle, OracleKind::Completeness);
    // Levels 0 (2 users) and 1 (4) are clean; the find comes at 8 users or more.
    let levels: Vec<u32> = raised.pressure.iter().map(|l| l.users[0]).collect();
    assert_eq!(&levels[..2], &[2, 4], "{levels:?}");
    assert!(found.repro.size() > 4, "{} connections", found.repro.size());
    assert!(raised.pressure[..2].iter().all(|l| l.clean == l.rounds));
    // The rendezvous measured how tightly each level's sends left.
    assert!(raised.pressure.iter().all(|l| l.spread_p99_us.is_some()));
}

#[tokio::test]
async fn escalation_on_the_correct_server_ends_at_the_ceiling_with_no_finding() {
    let outcome = hunt_it(&scenario(true), None).await;
    assert!(outcome.found.is_none());
    assert_eq!(outcome.rounds, 6);
    let top = outcome.pressure.last().unwrap();
    assert_eq!(top.users, vec![16]);
    assert!(top.ceiling, "{top}");
    assert_eq!(top.limited_by, "max_users 16");
    let levels: Vec<u32> = outcome.pressure.iter().map(|l| l.level).collect();
    assert_eq!(
        levels,
        vec![0, 1, 2, 3],
        "rounds 3, 4, 5 all at the ceiling"
    );
    assert_eq!(top.rounds, 3);
    assert!(top.to_string().contains("(ceiling: max_users 16)"), "{top}");
    // One round per level sweeps a single jitter bound: a level whose bound is 0 says
    // nothing of jitter, and only the ceiling level names a limit.
    assert!(
        outcome
            .pressure
            .iter()
            .any(|l| l.jitter == Some(Duration::ZERO)),
        "some level swept only the 0 ms bound: {:?}",
        outcome
            .pressure
            .iter()
            .map(|l| l.jitter)
            .collect::<Vec<_>>()
    );
    for level in &outcome.pressure {
        let line = level.to_string();
        assert!(!line.contains("jitter up to 0"), "{line}");
        assert_eq!(line.contains("(ceiling:"), level.ceiling, "{line}");
    }
}

/// One user, one connection: a paced block of `repeat` sends `every` apart, between
/// thinks of 60 ms so the health probe's own run (before and after each round) never
/// shares a 50 ms window with the round's runs.
fn one_connection(max_repeat: u32) -> stampede::model::Scenario {
    let text = format!(
        r#"
name = "sends-in-flight"
duration = "5s"

[[group]]
name = "one"
users = 1
steps = [
  {{ expect = "connection_established", within = "2s" }},
  {{ think = "60ms" }},
  {{ repeat = 2, every = "40ms", steps = [
    {{ send = {{ type = "user_message", run_id = "r-{{{{conn}}}}-{{{{run}}}}", thread_id = "t-{{{{user}}}}", content = "x" }} }},
    {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "3s" }},
  ] }},
  {{ think = "60ms" }},
  {{ close = 1000 }},
]

[hunt]
rounds = 6
pressure = {{ max_users = 1, factor = 2, rounds_per_level = 1, max_repeat = {max_repeat} }}
"#
    );
    common::scenario("sends-in-flight.toml", &text)
}

#[tokio::test]
async fn raising_the_sends_of_one_connection_finds_a_loss_its_two_sends_never_reach() {
    // max_repeat 1 (below the 2 written): nothing can rise, every round is level 0.
    let flat = hunt_it(&one_connection(1), Some(Bug::BurstEventLoss)).await;
    assert!(
        flat.found.is_none(),
        "2 runs 40 ms apart never lose an event"
    );
    assert_eq!(flat.rounds, 6);
    let only: Vec<u32> = flat.pressure.iter().map(|l| l.level).collect();
    assert_eq!(only, vec![0], "{:?}", flat.pressure);

    let raised = hunt_it(&one_connection(32), Some(Bug::BurstEventLoss)).await;
    let found = raised
        .found
        .expect("8 or more runs 10 ms apart on one connection lose events");
    assert_eq!(found.repro.oracle, OracleKind::Completeness);
    // Levels 0 (2 sends, 40 ms apart) and 1 (4, 20 ms) never have 5 runs in a window.
    let sends: Vec<u64> = raised.pressure.iter().map(|l| l.sends[0]).collect();
    assert_eq!(&sends[..2], &[2, 4], "{sends:?}");
    assert!(raised.pressure[..2].iter().all(|l| l.clean == l.rounds));
    let gaps: Vec<_> = raised.pressure.iter().map(|l| l.send_gap).collect();
    assert_eq!(gaps[1], Some(Duration::from_millis(20)), "{gaps:?}");
    // Users never rose: the sends found it. The repro keeps the raised script, so its
    // replays (and a shrink) run the level's sends, not the scenario's two.
    assert!(raised.pressure.iter().all(|l| l.users == vec![1]));
    let top = raised.pressure.last().unwrap();
    assert!(top.sends[0] >= 8 && top.clean < top.rounds, "{top}");
    let plan = &found.repro.plan;
    assert_eq!(plan.conns.len(), 1);
    let planned = stampede::model::script_size(&plan.scripts[0]).sends;
    assert!(planned >= 8, "the repro's plan sends {planned}");
    assert!(
        found.rate.reproduced >= 1,
        "replays of the raised plan: {}",
        found.rate
    );
}

#[tokio::test]
async fn raising_sends_on_the_correct_server_ends_at_the_repeat_ceiling_with_no_finding() {
    let outcome = hunt_it(&one_connection(32), None).await;
    assert!(outcome.found.is_none());
    assert_eq!(outcome.rounds, 6);
    let sends: Vec<u64> = outcome.pressure.iter().map(|l| l.sends[0]).collect();
    assert_eq!(
        sends,
        vec![2, 4, 8, 16, 32],
        "rounds 4 and 5 at the ceiling"
    );
    let top = outcome.pressure.last().unwrap();
    assert!(top.ceiling && top.rounds == 2, "{top}");
    assert_eq!(top.limited_by, "max_users 1 and max_repeat 32");
    // 32 sends over the block's 80 ms: 2.5 ms apart.
    assert_eq!(top.send_gap, Some(Duration::from_micros(2500)));
    let line = top.to_string();
    assert!(
        line.contains("1 user/group, 32 sends/connection 2.5ms apart, 1 connection;"),
        "{line}"
    );
}
