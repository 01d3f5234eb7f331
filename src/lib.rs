//! stampede: a WebSocket load generator and race-condition fuzzer.
//!
//! # Layout
//! Data flows one way, each arrow a plain value:
//! `scenario` (TOML → [`scenario::Scenario`]) → `plan` (seeded, deterministic
//! [`plan::Plan`]) → `swarm` (one task per connection, returns what it saw) →
//! `oracle` + `metrics` → `report` (summary.json, histograms, console table).
//! `target` is the built-in reference server the quick start runs against.

pub mod auth;
pub mod cli;
pub mod error;
pub mod hunt;
pub mod metrics;
pub mod oracle;
pub mod plan;
pub mod report;
pub mod run;
pub mod scenario;
pub mod swarm;
pub mod target;
