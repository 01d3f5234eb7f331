//! Command-line inputs of `compare`: globs, tolerances, and how run lists are shown.

use super::{CompareError, STATS, THROUGHPUT};
use crate::model::{words, Phase};
use std::path::PathBuf;

/// Expands glob patterns (`results/nightly/*`); other arguments pass through unchanged.
pub fn expand(patterns: &[String]) -> Result<Vec<PathBuf>, CompareError> {
    let mut out = Vec::new();
    for pattern in patterns {
        if !pattern.contains(['*', '?', '[']) {
            out.push(PathBuf::from(pattern));
            continue;
        }
        let bad = |reason: String| CompareError::Pattern {
            pattern: pattern.clone(),
            reason,
        };
        let paths = glob::glob(pattern).map_err(|e| bad(e.to_string()))?;
        let mut matched: Vec<PathBuf> = paths
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if matched.is_empty() {
            return Err(CompareError::NoMatch(pattern.clone()));
        }
        matched.sort();
        out.extend(matched);
    }
    Ok(out)
}

/// `10%` → 0.1. A bare number is refused: `10` could mean 10% or 1000%.
pub fn parse_tolerance(text: &str) -> Result<f64, String> {
    let number = text
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| format!("expected a percentage like 10%, found {text:?}"))?;
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v / 100.0),
        _ => Err(format!("expected a percentage like 10%, found {text:?}")),
    }
}

/// `turn.p99=20%`, `turn=20%`, `received_per_sec=5%` or an error row's key
/// (`errors.rate=50%`) → (key, fraction).
pub fn parse_tolerance_for(text: &str) -> Result<(String, f64), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected METRIC=PERCENT like turn.p99=20%, found {text:?}"))?;
    let key = key.trim();
    let (phase, stat) = match key.strip_prefix(crate::metrics::TURN_PREFIX) {
        // A named turn (`turn:ack.p99`, `turn:ack`): names may hold dots, stats do not.
        Some(_) => match key.rsplit_once('.') {
            Some((name, stat)) if STATS.iter().any(|s| s.name() == stat) => (name, stat),
            _ => (key, ""),
        },
        None => key.split_once('.').unwrap_or((key, "")),
    };
    // A named turn needs a name after its prefix; any other phase is one of ours.
    let named_turn = phase
        .strip_prefix(crate::metrics::TURN_PREFIX)
        .is_some_and(|name| !name.is_empty());
    let known_phase = Phase::ALL.iter().any(|p| p.name() == phase) || named_turn;
    let known_stat = stat.is_empty() || STATS.iter().any(|s| s.name() == stat);
    let other_row = key == THROUGHPUT || super::errors::KEYS.contains(&key);
    if !(other_row || known_phase && known_stat) {
        let phases: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
        let stats: Vec<&str> = STATS.iter().map(|s| s.name()).collect();
        // A typo: the phase (or statistic) it likely meant, the rest kept.
        let meant = match (known_phase, known_stat) {
            (false, _) => words::closest(phase, phases.iter().copied()).map(|p| {
                if stat.is_empty() {
                    p.to_string()
                } else {
                    format!("{p}.{stat}")
                }
            }),
            (true, false) => {
                words::closest(stat, stats.iter().copied()).map(|s| format!("{phase}.{s}"))
            }
            (true, true) => None,
        }
        .or_else(|| {
            let rows = std::iter::once(THROUGHPUT).chain(super::errors::KEYS.iter().copied());
            words::closest(key, rows).map(str::to_string)
        })
        .map_or_else(String::new, |m| format!("; did you mean {m:?}?"));
        return Err(format!(
            "unknown metric {key:?}{meant}; expected <phase>[.<stat>] (phases: {}, or turn:<expect name>; stats: {}), {THROUGHPUT} or {}",
            phases.join(", "),
            stats.join(", "),
            super::errors::KEYS.join(", ")
        ));
    }
    Ok((key.to_string(), parse_tolerance(value)?))
}

/// The run directories a path stands for, for messages.
pub fn describe(paths: &[PathBuf]) -> String {
    match paths {
        [] => "none".into(),
        [one] => one.display().to_string(),
        [first, rest @ ..] => format!("{} (+{} more)", first.display(), rest.len()),
    }
}
