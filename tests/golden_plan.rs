//! The plan bytes of a fixed scenario and seed are pinned: `plan::build` is a pure
//! function of (scenario, seed) whose output repro files and replays depend on, across
//! builds and versions. A deliberate change regenerates the file with
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
