//! Scenario files: TOML in, a validated [`Scenario`] out.
//!
//! `load` does the work in two passes over a spanned TOML tree: shape (unknown fields,
//! wrong types) and meaning (durations, distributions, templates, empty groups). Every
//! problem is collected with its file:line:column, so a user fixes a file in one go.

mod load;
pub mod model;

pub use load::{load_file, load_str, parse_dist, parse_duration, Problem, ScenarioError};
pub use model::*;
