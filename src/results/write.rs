//! Result files, each written atomically (temp file + rename), so a crash or Ctrl-C never
//! leaves a half-written summary behind.

use super::Results;
use crate::model::Plan;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot encode {path}: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
}

/// `BASE/<scenario>/<UTC timestamp>/`, made unique if two runs start in the same millisecond.
pub fn results_dir(base: &Path, scenario: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let dir = base.join(scenario).join(&stamp);
    if !dir.exists() {
        return dir;
    }
    (1..)
        .map(|n| base.join(scenario).join(format!("{stamp}-{n}")))
        .find(|d| !d.exists())
        .unwrap_or(dir)
}

/// Writes summary.json, histograms.json, violations.jsonl, intervals.json and plan.json
/// into `dir` (the run streamed intervals.hlog there already).
pub fn write_all(dir: &Path, results: &Results, plan: &Plan) -> Result<(), WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
    write_json(&dir.join("summary.json"), &results.summary.written())?;
    let histograms = serde_json::json!({
        "encoding": "hdrhistogram-v2-deflate-base64",
        "unit": "microseconds",
        "phases": results.histograms.encode(),
    });
    write_json(&dir.join("histograms.json"), &histograms)?;
    write_lines(dir, &results.violations)?;
    write_json(&dir.join("intervals.json"), &results.intervals)?;
    write_json(&dir.join("plan.json"), plan)
}

/// A merged series in the shape a single run writes (`metrics::IntervalSeries`): counts
/// and the live gauge as integers, and every point's `duration_ms`, a whole interval's
/// included. Read back, every count is a float ([`super::read::IntervalPoint`]), which is
/// how the merge added them; they are sums of integers, so rounding loses nothing.
fn as_written(intervals: &super::read::Intervals) -> crate::metrics::IntervalSeries {
    let count = |v: f64| v.max(0.0).round() as u64;
    crate::metrics::IntervalSeries {
        interval_ms: intervals.interval_ms,
        series: intervals
            .series
            .iter()
            .map(|p| crate::metrics::IntervalPoint {
                t_ms: p.t_ms,
                duration_ms: p.duration_ms.unwrap_or(intervals.interval_ms),
                live: p.live.round() as i64,
                sent: count(p.sent),
                received: count(p.received),
                violations: count(p.violations),
                turn_p99_ms: p.turn_p99_ms,
            })
            .collect(),
    }
}

/// Writes a merged result (`stampede merge`): summary.json, histograms.json,
/// violations.jsonl, intervals.json when the parts had them, and intervals.hlog when they
/// are shards that each have one; no plan.json (each part's plan is in its own directory).
/// Returns a note when the parts' interval logs could not be merged: the rest is written,
/// the merged log left out.
pub fn write_merged(dir: &Path, merged: &super::MergedRun) -> Result<Option<String>, WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
    write_json(&dir.join("summary.json"), &merged.summary.written())?;
    let histograms = serde_json::json!({
        "encoding": "hdrhistogram-v2-deflate-base64",
        "unit": "microseconds",
        "phases": merged.histograms.encode(),
    });
    write_json(&dir.join("histograms.json"), &histograms)?;
    write_lines(dir, &merged.violations)?;
    if let Some(intervals) = &merged.intervals {
        write_json(&dir.join("intervals.json"), &as_written(intervals))?;
    }
    if merged.interval_logs.is_empty() {
        return Ok(None);
    }
    let parts: Vec<&Path> = merged.interval_logs.iter().map(PathBuf::as_path).collect();
    let log = dir.join("intervals.hlog");
    // A part's log cut short (a worker killed mid-line) must not cost the merged result.
    Ok(super::hlog::merge_logs(&parts, &log).err().map(|e| {
        let _ = std::fs::remove_file(&log);
        format!("no intervals.hlog: {e}")
    }))
}

fn write_lines(dir: &Path, violations: &[crate::model::Violation]) -> Result<(), WriteError> {
    let mut lines = Vec::new();
    for v in violations {
        let line = serde_json::to_string(v).map_err(|source| json(dir, source))?;
        lines.extend_from_slice(line.as_bytes());
        lines.push(b'\n');
    }
    write_atomic(&dir.join("violations.jsonl"), &lines)
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), WriteError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| json(path, source))?;
    write_atomic(path, &bytes)
}

/// Writes next to the destination, syncs, then renames over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let tmp = path.with_extension("tmp");
    // Errors name the file asked for: the temporary one beside it is ours, not the user's,
    // and goes when the write fails (a folder where the file should be left `FILE.tmp`).
    let mut file = std::fs::File::create(&tmp).map_err(|source| io(path, source))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path, source));
    }
    Ok(())
}

fn io(path: &Path, source: std::io::Error) -> WriteError {
    WriteError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn json(path: &Path, source: serde_json::Error) -> WriteError {
    WriteError::Json {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that fails (a folder stands where the file should go) leaves no temporary
    /// file beside it, and its error names the file asked for, not the temporary one.
    #[test]
    fn a_failed_write_leaves_no_temporary_file_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("junit.xml");
        std::fs::create_dir(&target).unwrap();
        let err = write_atomic(&target, b"<testsuites/>")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("cannot write {}:", target.display())),
            "{err}"
        );
        assert!(!target.with_extension("tmp").exists());
        let written = dir.path().join("ok.json");
        write_atomic(&written, b"{}").unwrap();
        assert_eq!(std::fs::read(&written).unwrap(), b"{}");
        assert!(!written.with_extension("tmp").exists());
    }
}
