//! Pressure escalation (`[hunt] pressure`): clean rounds raise the users per group level by
//! level up to a ceiling; a loss that needs more concurrent runs than the scenario starts
//! with is found only with it, and the correct server ends at the ceiling with nothing.
//!
//! `burst-event-loss` drops `tool_completed` once more than 4 runs start inside its
//! window (widened to 50 ms, so a busy 2-core machine still lands in it): the scenario
//! starts 2 users, which never lose anything.
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
}
