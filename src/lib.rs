//! stampede: a WebSocket load generator and race-condition fuzzer.
//!
//! # Layout
//! Layers, bottom to top. A module may import only from layers below it; the
//! `layers` test reads every `use crate::` line and fails on an arrow upwards or a cycle.
//!
//! 0. `model`: the shared nouns (scenario spec, plan, run history, names). Imports nothing.
//! 0. `priority`: the runtime threads' scheduling priority at a release (the OS only).
//! 0. `allocator`: the process allocator (mimalloc) the binary and the benches install.
//! 0. `prefetch`: loading a connection's state into the cache ahead of use (a CPU hint).
//! 0. `process_group`: the user's commands (`--reset`, a token command) in a group of
//!    their own, killed whole when given up on.
//! 1. `auth`: minting, forging and placing tokens.
//! 2. `scenario`: TOML → [`model::Scenario`], every problem with file:line:column.
//! 2. `plan`: the compiler, (scenario, seed) → [`model::Plan`]; pure.
//! 2. `metrics`: HdrHistograms per phase, the sample aggregator, interval logs.
//! 3. `oracle`: every judgement, acceptance included; findings returned as values.
//! 4. `swarm`: the engine; runs a plan, emits history and samples; reads only the plan.
//! 4. `reference`: the built-in reference server the quick start runs against.
//! 5. `results`: the summary, result files (write, read), `compare` and thresholds.
//! 6. `report`: formatting only (text table, HTML, JUnit).
//! 7. `run`: orchestration: endpoint, swarm, oracles, results.
//! 8. `hunt`: rounds, repro files, replay and shrink.
//! 9. `cli`: clap, live progress, `Error` and the exit-code table.
//!
//! Data flows one way: scenario → plan → swarm → history → oracle and metrics →
//! results → report.

pub mod allocator;
pub mod model;
pub mod prefetch;
pub mod priority;
pub mod process_group;

pub mod auth;

pub mod metrics;
pub mod plan;
pub mod scenario;

pub mod oracle;

pub mod reference;
pub mod swarm;

pub mod results;

pub mod report;

pub mod run;

pub mod hunt;

pub mod cli;

/// The layer of each top-level module, bottom (0) to top, as the layout above gives it.
/// Read by the `layers` test.
pub const LAYERS: &[(&str, u8)] = &[
    ("model", 0),
    ("priority", 0),
    ("allocator", 0),
    ("prefetch", 0),
    ("process_group", 0),
    ("auth", 1),
    ("scenario", 2),
    ("plan", 2),
    ("metrics", 2),
    ("oracle", 3),
    ("swarm", 4),
    ("reference", 4),
    ("results", 5),
    ("report", 6),
    ("run", 7),
    ("hunt", 8),
    ("cli", 9),
];
