//! Scenario files: TOML in, a validated `Scenario` out.
//!
//! `load` walks a spanned TOML tree once, checking shape (unknown fields, wrong types) and
//! meaning (durations, distributions, templates, empty groups) as it goes. Every problem is
//! collected with its file:line:column, so a user fixes a file in one go.

pub mod feed;
mod load;

pub use load::battery::{is_battery, load_battery_file, load_battery_str, Battery, Family, Level};
pub use load::locate::{position as written_at, Locator};
#[cfg(test)]
pub(crate) use load::REPRO_FIELDS;
pub use load::{
    load_file, load_file_checked, load_file_to_run, load_str, pair_again, parse_dist,
    parse_duration, parse_metric, Problem, ScenarioError, ScenarioFile,
};
