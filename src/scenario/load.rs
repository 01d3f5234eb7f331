//! TOML → [`Scenario`] with file:line:column on every problem. (Stub: being written.)
use super::model::{Dist, Scenario};
use std::path::Path;
use std::time::Duration;

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{}", problems.iter().map(|p| format!("{}:{}:{}: {}", p.file, p.line, p.column, p.message)).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
}

pub fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ScenarioError::Io { path: path.display().to_string(), source })?;
    load_str(&text, &path.display().to_string())
}

pub fn load_str(_text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    Err(ScenarioError::Invalid {
        problems: vec![Problem { file: origin.into(), line: 1, column: 1, message: "not implemented".into() }],
    })
}

pub fn parse_duration(_s: &str) -> Result<Duration, String> {
    Err("not implemented".into())
}

pub fn parse_dist(_s: &str) -> Result<Dist, String> {
    Err("not implemented".into())
}
