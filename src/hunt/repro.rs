//! Repro files: a self-contained plan plus the violation it reproduces.
//!
//! The file holds the expanded plan, not a seed: replay never depends on RNG or sampling
//! stability (docs/race-patterns.md, "Replay and shrinking"). Tokens are re-minted at
//! replay time with fresh `jti`s, so one replay's leaked session cannot make the next one
//! fail.

use crate::model::Plan;
use crate::model::{OracleKind, Violation};
use crate::results::{write_atomic, WriteError};
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
    #[error("{path}: invalid plan: {reason}")]
    Invalid { path: String, reason: String },
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
        repro.plan.check().map_err(|reason| ReproError::Invalid {
            path: shown,
            reason,
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn repro() -> Repro {
        let text = "name = \"r\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 2\nconnections_per_user = 2\ntoken = \"per-user\"\nsteps = [{ close = 1000 }]\n";
        let s = crate::scenario::load_str(text, "r.toml").unwrap();
        Repro {
            version: REPRO_VERSION,
            tool_version: "t".into(),
            scenario: s.name.clone(),
            scenario_hash: s.hash.clone(),
            seed: 1,
            round: 0,
            target: "ws://127.0.0.1:1/ws".into(),
            oracle: OracleKind::Exclusivity,
            evidence: Vec::new(),
            rate: Some((3, 4)),
            plan: crate::plan::build(&s, 1),
        }
    }

    #[test]
    fn a_repro_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let r = repro();
        let path = r.save(dir.path()).unwrap();
        assert_eq!(Repro::load(&path).unwrap(), r);
    }

    #[test]
    fn a_hand_edited_repro_with_a_dangling_token_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = repro();
        r.plan.conns[0].token = 99;
        let path = dir.path().join("bad.json");
        r.save_as(&path).unwrap();
        let err = Repro::load(&path).unwrap_err().to_string();
        assert!(err.contains("token 99"), "{err}");
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(Repro::load(&path), Err(ReproError::Parse { .. })));
    }

    #[test]
    fn fresh_keys_keep_shared_tokens_shared_and_change_every_jti() {
        let r = repro();
        let a = fresh_keys(&r.plan);
        let b = fresh_keys(&a);
        assert_eq!(a.tokens.len(), r.plan.tokens.len());
        for ((orig, x), y) in r.plan.tokens.iter().zip(&a.tokens).zip(&b.tokens) {
            assert!(x.jti.starts_with(&orig.jti) && x.jti != orig.jti);
            assert_ne!(x.jti, y.jti);
            assert!(y.jti.starts_with(&orig.jti), "suffixes do not pile up");
        }
        assert_eq!(a.conns[0].token, a.conns[1].token);
    }
}
