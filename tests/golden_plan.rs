//! The plan bytes of a fixed scenario and seed are pinned: `plan::build` is a pure
//! function of (scenario, seed) whose output repro files and replays depend on, across
//! builds and versions. So are the actions its connections walk (`golden-plan-actions.json`):
//! a plan keeps repeats as loops and the draws inside (think times, `{{random}}`, ...) are
//! made as a connection walks them, so the plan bytes alone no longer pin them. A deliberate change regenerates the file with
//! `STAMPEDE_BLESS=1 cargo test --test golden_plan` and says why in its commit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn the_golden_scenario_compiles_to_the_pinned_plan_bytes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let scenario = stampede::scenario::load_file(&dir.join("golden-plan.toml")).unwrap();
    let plan = stampede::plan::build(&scenario, scenario.seed);
    let json = format!("{}\n", plan.to_json().unwrap());
    let pinned_path = dir.join("golden-plan.json");
    if std::env::var_os("STAMPEDE_BLESS").is_some() {
        std::fs::write(&pinned_path, &json).unwrap();
    }
    let pinned = std::fs::read_to_string(&pinned_path).unwrap();
    assert!(
        json == pinned,
        "the plan of tests/fixtures/golden-plan.toml changed; first difference at byte {}",
        json.bytes()
            .zip(pinned.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(json.len().min(pinned.len()))
    );
    // The pinned file reads back into the same plan (repro files store plans this way).
    let back: stampede::model::Plan = serde_json::from_str(&pinned).unwrap();
    assert_eq!(back, plan);
}

#[test]
fn the_golden_plans_connections_walk_the_pinned_actions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let scenario = stampede::scenario::load_file(&dir.join("golden-plan.toml")).unwrap();
    let plan = stampede::plan::build(&scenario, scenario.seed);
    let walked: Vec<(u32, Vec<stampede::model::Action>)> = plan
        .conns
        .iter()
        .map(|c| (c.id, stampede::plan::expand_conn(&plan, c, 1000).unwrap()))
        .collect();
    let json = format!("{}\n", serde_json::to_string_pretty(&walked).unwrap());
    let pinned_path = dir.join("golden-plan-actions.json");
    if std::env::var_os("STAMPEDE_BLESS").is_some() {
        std::fs::write(&pinned_path, &json).unwrap();
    }
    let pinned = std::fs::read_to_string(&pinned_path).unwrap();
    assert!(
        json == pinned,
        "the actions of tests/fixtures/golden-plan.toml changed; first difference at byte {}",
        json.bytes()
            .zip(pinned.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(json.len().min(pinned.len()))
    );
}

#[test]
fn a_plan_written_before_scripts_existed_still_reads_and_walks() {
    // golden-plan.json as pinned before plans kept repeats as loops: every connection's
    // actions expanded in the file. Old repro files hold plans like it.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = std::fs::read_to_string(dir.join("golden-plan-expanded-v1.json")).unwrap();
    let plan: stampede::model::Plan = serde_json::from_str(&text).unwrap();
    plan.check().unwrap();
    assert!(plan.scripts.is_empty());
    for conn in &plan.conns {
        assert!(!conn.is_scripted());
        let walked = stampede::plan::expand_conn(&plan, conn, 1000).unwrap();
        assert_eq!(walked, conn.actions);
    }
    assert_eq!(plan.sends(), 18, "3 sends for each of the 6 chatters");
}
