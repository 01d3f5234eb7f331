//! Formatting results for people and CI: the console table, one self-contained HTML page,
//! JUnit XML. Every function here reads values from `results` and writes text.

pub mod html;
mod junit;
mod text;

pub use html::{render_html, HtmlError};
pub use junit::{
    junit, junit_runs, refusal as junit_refusal, scenario_error as junit_scenario_error,
};
pub use text::{learned_line, render};
mod compare;
pub use compare::{comparison_json, render_comparison};

/// `" jti ID"` for a violation's line, or nothing when the run presented no token
/// (`no_token`, `placement = "none"`): the plan's bookkeeping ids would read as tokens
/// the connections sent.
pub fn jti_shown(jti: &str, no_token: bool) -> String {
    if no_token {
        String::new()
    } else {
        format!(" jti {jti}")
    }
}
