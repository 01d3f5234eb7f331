//! Repro files: a self-contained plan plus the violation it reproduces.
//!
//! The file holds the expanded plan, not a seed: replay never depends on RNG or sampling
//! stability (race-patterns §0.2). Tokens are re-minted at replay time with fresh `jti`s,
//! so one replay's leaked session cannot make the next one fail.

use crate::oracle::{OracleKind, Violation};
use crate::plan::Plan;
use crate::report::{write_atomic, WriteError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped when the format changes meaning.
pub const REPRO_VERSION: u32 = 1;

/// A found race, replayable without its scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repro {
    pub version: u32,
    pub tool_version: String,
    pub scenario: String,
    pub scenario_hash: String,
    /// The seed and round that produced the plan.
    pub seed: u64,
    pub round: u32,
    /// Where it was found (replay may point elsewhere).
    pub target: String,
    /// The oracle whose violation this reproduces: the signature replay and shrink keep.
    pub oracle: OracleKind,
    /// The violations seen when it was found.
    pub evidence: Vec<Violation>,
    /// Reproduction rate measured so far: `(reproduced, runs)`.
    #[serde(default)]
    pub rate: Option<(u32, u32)>,
    pub plan: Plan,
}

#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    #[error("cannot read repro {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a stampede repro: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: repro version {found}, this stampede reads {REPRO_VERSION}")]
    Version { path: String, found: u32 },
    #[error("{0}")]
    Write(#[from] WriteError),
    #[error("cannot encode repro: {0}")]
    Encode(serde_json::Error),
}

impl Repro {
    pub fn load(path: &Path) -> Result<Repro, ReproError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ReproError::Read {
            path: shown.clone(),
            source,
        })?;
        let repro: Repro = serde_json::from_slice(&bytes).map_err(|source| ReproError::Parse {
            path: shown.clone(),
            source,
        })?;
        if repro.version != REPRO_VERSION {
            return Err(ReproError::Version {
                path: shown,
                found: repro.version,
            });
        }
        Ok(repro)
    }

    /// Writes `repro-<oracle>-<plan hash>.json` into `dir`; returns the path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, ReproError> {
        std::fs::create_dir_all(dir).map_err(|source| WriteError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let name = format!(
            "repro-{}-{}.json",
            self.oracle.name(),
            &self.plan.hash()[..12]
        );
        let path = dir.join(name);
        self.save_as(&path)?;
        Ok(path)
    }

    pub fn save_as(&self, path: &Path) -> Result<(), ReproError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(ReproError::Encode)?;
        write_atomic(path, &bytes)?;
        Ok(())
    }

    /// Connections in the plan.
    pub fn size(&self) -> usize {
        self.plan.conns.len()
    }
}

/// A copy of `plan` whose `jti`s are unique to this execution (shared tokens stay shared).
pub fn fresh_keys(plan: &Plan) -> Plan {
    static NONCE: AtomicU64 = AtomicU64::new(0);
    let n = NONCE.fetch_add(1, Ordering::Relaxed);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let mut fresh = plan.clone();
    for token in &mut fresh.tokens {
        let base = token
            .jti
            .split('~')
            .next()
            .unwrap_or(&token.jti)
            .to_string();
        token.jti = format!("{base}~{stamp:x}{n:x}");
    }
    fresh
}
