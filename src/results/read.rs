//! Reading a result directory back (the files `write_all` wrote): what `compare` and the
//! HTML report start from. A missing or corrupted file is an error that names the file;
//! only the optional files (`violations.jsonl`, `intervals.json`) may be absent.

use super::{Summary, SCHEMA_VERSION};
use crate::metrics::Histograms;
use crate::model::Violation;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The only histogram encoding `histograms.json` uses.
pub const HISTOGRAM_ENCODING: &str = "hdrhistogram-v2-deflate-base64";

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid {what}: {reason}")]
    Invalid {
        path: String,
        what: &'static str,
        reason: String,
    },
    #[error(
        "{path} is not a result directory: it holds no summary.json, nor does any folder up to three levels below it"
    )]
    NotResults { path: String },
    /// Every run folder found holds no `summary.json`: runs stopped before they wrote
    /// their results, nothing to read.
    #[error("{path} holds no run that can be read: {skipped}")]
    NoReadableRun { path: String, skipped: String },
    #[error(
        "{path} is a file, not a result: expected a result directory (results/<scenario>/<run>/, or a folder of them) or its summary.json"
    )]
    NotAResultFile { path: String },
}

/// One run's result files, parsed.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The result directory.
    pub dir: PathBuf,
    pub summary: Summary,
    pub histograms: Histograms,
    /// Every kept violation (`violations.jsonl`); empty when the file is absent.
    pub violations: Vec<Violation>,
    /// The time series, when the run wrote `intervals.json`.
    pub intervals: Option<Intervals>,
}

/// `intervals.json`: per-interval counts and gauges of one run.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Intervals {
    pub interval_ms: f64,
    pub series: Vec<IntervalPoint>,
}

/// One interval. `sent`, `received` and `violations` count what happened in the interval;
/// `live` is the number of open connections at its end.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct IntervalPoint {
    /// The interval's end, ms from the run start.
    pub t_ms: f64,
    /// Its length when it differs from `interval_ms` (the run's last interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(default)]
    pub live: f64,
    #[serde(default)]
    pub sent: f64,
    #[serde(default)]
    pub received: f64,
    #[serde(default)]
    pub violations: f64,
    /// `None` when no turn completed in the interval.
    #[serde(default)]
    pub turn_p99_ms: Option<f64>,
}

#[derive(Deserialize)]
struct HistogramFile {
    encoding: String,
    phases: BTreeMap<String, String>,
}

/// The result directory `path` names: its parent when it is a file (a `summary.json`),
/// else itself.
pub fn run_dir(path: &Path) -> PathBuf {
    if path.is_file() {
        path.parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    } else {
        path.to_path_buf()
    }
}

/// How many levels below a folder `run_dirs` looks for runs: the `--out` base folder
/// holds `<scenario>/<run>/`, so two suffice; one more tolerates a folder of such bases.
const RUN_DEPTH: usize = 3;

/// Files a run writes into its folder besides `summary.json`: `intervals.hlog` from its
/// start, the rest at its end. A folder that holds one of them but no `summary.json` is a
/// run stopped (killed) before it wrote its results. (`learned.toml` is left out: a file
/// of that name may be anyone's.)
const RUN_FILES: [&str; 5] = [
    "intervals.hlog",
    "histograms.json",
    "violations.jsonl",
    "intervals.json",
    "plan.json",
];

/// Why a folder of [`FoundRuns::skipped`] was skipped.
pub const NO_SUMMARY: &str = "no summary.json (a run stopped before it wrote its results?)";

/// What a search for runs found: the runs, and the run folders it had to skip.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FoundRuns {
    /// Result directories, each with its `summary.json`, sorted by path.
    pub runs: Vec<PathBuf>,
    /// Folders that hold a run's files but no `summary.json` ([`NO_SUMMARY`]), sorted by
    /// path: nothing in them can be read, and a search that left them out in silence would
    /// hide that a run is missing.
    pub skipped: Vec<PathBuf>,
}

/// How every command says it left out a run folder without a `summary.json`:
/// `skipped DIR: no summary.json (…)` (after `warning: ` on stderr), one wording for
/// `compare`, `merge` and `report`, and for the line a merged summary records.
pub fn skipped_warning(dir: &Path) -> String {
    format!("skipped {}: {NO_SUMMARY}", dir.display())
}

impl FoundRuns {
    /// The skipped folders as one line: `skipped DIR: no summary.json (…)`, `; `-separated.
    pub fn skipped_line(&self) -> String {
        self.skipped
            .iter()
            .map(|dir| skipped_warning(dir))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// These runs, or, when none was found, the error that `path` holds no run that can
    /// be read (naming what was skipped): for commands that need a run from each path.
    pub fn readable(self, path: &Path) -> Result<Self, ReadError> {
        if self.runs.is_empty() {
            return Err(ReadError::NoReadableRun {
                path: path.display().to_string(),
                skipped: self.skipped_line(),
            });
        }
        Ok(self)
    }
}

/// Whether `dir` is a run's folder without its `summary.json` (see [`RUN_FILES`]).
fn stopped_run(dir: &Path) -> bool {
    !dir.join("summary.json").is_file() && RUN_FILES.iter().any(|f| dir.join(f).is_file())
}

/// Result directories under `path`: `path` itself when it is a run (or a `summary.json`),
/// else every run in the folders below it, up to three levels down: a scenario folder
/// (`results/<scenario>/`), the `--out` base folder (`results/`), or a folder of those.
/// Sorted by path; a run's own subfolders are not searched. A folder where only runs
/// without a `summary.json` were found is an error that names them ([`find_runs`] lists
/// them beside the runs it found).
pub fn run_dirs(path: &Path) -> Result<Vec<PathBuf>, ReadError> {
    Ok(find_runs(path)?.readable(path)?.runs)
}

/// The runs [`run_dirs`] finds under `path`, and the run folders without a `summary.json`
/// it skipped (`path` itself when it is one). An error only when `path` holds neither.
pub fn find_runs(path: &Path) -> Result<FoundRuns, ReadError> {
    refuse_other_files(path)?;
    if !path.is_dir() || path.join("summary.json").is_file() {
        return Ok(FoundRuns {
            runs: vec![run_dir(path)],
            skipped: Vec::new(),
        });
    }
    let mut found = FoundRuns::default();
    if stopped_run(path) {
        found.skipped.push(path.to_path_buf());
        return Ok(found);
    }
    collect_runs(path, RUN_DEPTH, &mut found).map_err(|source| io(path, source))?;
    found.runs.sort();
    found.skipped.sort();
    if found.runs.is_empty() && found.skipped.is_empty() {
        return Err(ReadError::NotResults {
            path: path.display().to_string(),
        });
    }
    Ok(found)
}

fn collect_runs(dir: &Path, depth: usize, found: &mut FoundRuns) -> std::io::Result<()> {
    if depth == 0 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.join("summary.json").is_file() {
            found.runs.push(path);
        } else if stopped_run(&path) {
            found.skipped.push(path);
        } else {
            // An unreadable folder deeper down holds no run we could read anyway.
            let _ = collect_runs(&path, depth - 1, found);
        }
    }
    Ok(())
}

/// What [`newest_run`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct NewestRun {
    /// The newest run's directory.
    pub dir: PathBuf,
    /// How many runs it was chosen from.
    pub count: usize,
    /// The run folders without a `summary.json` left out of the choice (see
    /// [`FoundRuns::skipped`]): one of them may be newer than the run chosen.
    pub skipped: Vec<PathBuf>,
}

/// The newest run under `path` (see [`run_dirs`]) and how many there were: the latest
/// start its `summary.json` records (`started_at`), so that a folder copied or renamed
/// keeps its place; a run whose start does not read is placed by its folder's name (run
/// folders are named by their UTC start time), and runs that started together by name.
pub fn newest_run(path: &Path) -> Result<NewestRun, ReadError> {
    let FoundRuns { runs, skipped } = find_runs(path)?.readable(path)?;
    let count = runs.len();
    let newest = runs
        .into_iter()
        .map(|dir| (started(&dir), dir))
        .max_by(|(a_start, a), (b_start, b)| {
            a_start
                .cmp(b_start)
                .then_with(|| a.file_name().cmp(&b.file_name()))
                .then_with(|| a.cmp(b))
        })
        .map(|(_, dir)| dir)
        .ok_or_else(|| ReadError::NotResults {
            path: path.display().to_string(),
        })?;
    Ok(NewestRun {
        dir: newest,
        count,
        skipped,
    })
}

/// When the run in `dir` started: `started_at` from its `summary.json` (RFC 3339), else
/// the UTC time its folder is named by (`20260102T030405.678Z`, maybe with a `-n` or
/// `-merged` suffix); `None` when neither reads, which sorts before any time.
fn started(dir: &Path) -> Option<chrono::DateTime<chrono::Utc>> {
    #[derive(Deserialize)]
    struct Start {
        started_at: Option<String>,
    }
    let recorded = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Start>(&text).ok())
        .and_then(|s| s.started_at)
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
        .map(|at| at.with_timezone(&chrono::Utc));
    recorded.or_else(|| {
        let (stamp, _) = dir.file_name()?.to_str()?.split_once('Z')?;
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.3f")
            .ok()
            .map(|at| at.and_utc())
    })
}

/// A file given where a result is expected is its `summary.json` or a mistake (a scenario,
/// a repro): said as such, not as `summary.json` missing beside it.
fn refuse_other_files(path: &Path) -> Result<(), ReadError> {
    let summary = path.file_name().is_some_and(|n| n == "summary.json");
    if path.is_file() && !summary {
        return Err(ReadError::NotAResultFile {
            path: path.display().to_string(),
        });
    }
    Ok(())
}

/// Reads a whole run from its directory or its `summary.json`.
pub fn read_run(path: &Path) -> Result<RunData, ReadError> {
    refuse_other_files(path)?;
    let dir = run_dir(path);
    Ok(RunData {
        summary: read_summary(&dir.join("summary.json"))?,
        histograms: read_histograms(&dir.join("histograms.json"))?,
        violations: read_violations(&dir.join("violations.jsonl"))?,
        intervals: read_intervals(&dir.join("intervals.json"))?,
        dir,
    })
}

pub fn read_summary(path: &Path) -> Result<Summary, ReadError> {
    let what = "stampede summary";
    let mut value: serde_json::Value = parse_json(path, what)?;
    upgrade_v1(&mut value);
    judge_old_thresholds(&mut value);
    let summary: Summary =
        serde_json::from_value(value).map_err(|e| invalid(path, what, e.to_string()))?;
    if summary.schema_version > SCHEMA_VERSION {
        let reason = format!(
            "schema version {} is newer than this stampede understands ({SCHEMA_VERSION})",
            summary.schema_version
        );
        return Err(invalid(path, "stampede summary", reason));
    }
    Ok(summary)
}

/// Thresholds written before `judged` existed were judged whatever the verdict: in a run
/// that could not exercise its target, each read as breached for want of data. Read now,
/// they are marked as a run of that verdict writes them (not judged), so a report of an
/// old result does not show a wrong secret's thresholds as breaches.
fn judge_old_thresholds(summary: &mut serde_json::Value) {
    let exercised = summary
        .get("verdict")
        .cloned()
        .and_then(|v| serde_json::from_value::<crate::model::Verdict>(v).ok())
        .is_none_or(crate::model::Verdict::exercised);
    let Some(list) = summary
        .get_mut("thresholds")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return;
    };
    for t in list.iter_mut().filter_map(serde_json::Value::as_object_mut) {
        t.entry("judged")
            .or_insert(serde_json::Value::Bool(exercised));
    }
}

/// Schema 1 kept `received_per_sec` among the counters and could leave `verdict` empty;
/// schema 2 has it at the top level and always a verdict. Older fields read as they were.
fn upgrade_v1(summary: &mut serde_json::Value) {
    let version = summary
        .get("schema_version")
        .and_then(serde_json::Value::as_u64);
    if version.is_some_and(|v| v >= 2) {
        return;
    }
    let Some(top) = summary.as_object_mut() else {
        return;
    };
    let rate = top
        .get_mut("counters")
        .and_then(serde_json::Value::as_object_mut)
        .and_then(|c| c.remove("received_per_sec"));
    if let Some(rate) = rate {
        top.entry("received_per_sec").or_insert(rate);
    }
    if top.get("verdict").and_then(serde_json::Value::as_str) == Some("") {
        top.remove("verdict");
    }
}

pub fn read_histograms(path: &Path) -> Result<Histograms, ReadError> {
    let what = "stampede histogram file";
    let file: HistogramFile = parse_json(path, what)?;
    if file.encoding != HISTOGRAM_ENCODING {
        let reason = format!(
            "encoding {:?}, expected {HISTOGRAM_ENCODING:?}",
            file.encoding
        );
        return Err(invalid(path, what, reason));
    }
    Histograms::decode(&file.phases).map_err(|e| invalid(path, what, e.to_string()))
}

/// Every line of `violations.jsonl`; an absent file means none were kept.
pub fn read_violations(path: &Path) -> Result<Vec<Violation>, ReadError> {
    let Some(text) = read_optional(path)? else {
        return Ok(Vec::new());
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| invalid(path, "violations file", format!("line {}: {e}", i + 1)))
        })
        .collect()
}

pub fn read_intervals(path: &Path) -> Result<Option<Intervals>, ReadError> {
    match read_optional(path)? {
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| invalid(path, "intervals file", e.to_string())),
        None => Ok(None),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| io(path, source))?;
    serde_json::from_str(&text).map_err(|e| invalid(path, what, e.to_string()))
}

fn read_optional(path: &Path) -> Result<Option<String>, ReadError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io(path, source)),
    }
}

fn io(path: &Path, source: std::io::Error) -> ReadError {
    ReadError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn invalid(path: &Path, what: &'static str, reason: String) -> ReadError {
    ReadError::Invalid {
        path: path.display().to_string(),
        what,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A phase of `histograms.json` that declares 4 GiB of counts in 80 bytes is refused,
    /// naming the file and the phase, before anything is sized to it.
    #[test]
    fn a_crafted_histogram_is_an_error_naming_its_file_and_phase() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("histograms.json");
        let crafted = crate::metrics::encoded::fixtures::crafted(u32::MAX, 1, 60_000_000, &[2]);
        let file = serde_json::json!({
            "encoding": HISTOGRAM_ENCODING,
            "phases": { "turn": crafted },
        });
        std::fs::write(&path, file.to_string()).unwrap();
        let err = read_histograms(&path).unwrap_err().to_string();
        assert!(err.contains("histograms.json"), "{err}");
        assert!(err.contains("histogram turn"), "{err}");
        assert!(err.contains("4294967295 bytes of counts"), "{err}");
    }

    #[test]
    fn the_series_reads_back_as_the_report_reads_it() {
        let series = crate::metrics::IntervalSeries {
            interval_ms: 1000.0,
            series: vec![crate::metrics::IntervalPoint {
                t_ms: 1000.0,
                duration_ms: 1000.0,
                live: 4,
                sent: 2,
                received: 9,
                violations: 0,
                turn_p99_ms: None,
            }],
        };
        let json = serde_json::to_string(&series).unwrap();
        let read: Intervals = serde_json::from_str(&json).unwrap();
        assert_eq!(read.interval_ms, 1000.0);
        assert_eq!(read.series[0].received, 9.0);
        assert_eq!(read.series[0].turn_p99_ms, None);
    }

    /// The newest run is the latest recorded start; a start that does not read falls back
    /// to the UTC time the folder is named by, in the same order.
    #[test]
    fn the_newest_run_is_the_latest_start_recorded_or_named() {
        let tmp = tempfile::tempdir().unwrap();
        let put = |name: &str, started_at: &str| {
            let dir = tmp.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let s = Summary {
                started_at: started_at.into(),
                ..crate::results::fixture::summary()
            };
            std::fs::write(dir.join("summary.json"), serde_json::to_vec(&s).unwrap()).unwrap();
            dir
        };
        put("zz-copy", "2026-01-01T00:00:00+00:00");
        put("yy", "2026-01-03T00:00:00+01:00");
        let named = put("20260105T000000.000Z-merged", "not a time");
        let newest = |dir: PathBuf, count| NewestRun {
            dir,
            count,
            skipped: Vec::new(),
        };
        assert_eq!(newest_run(tmp.path()).unwrap(), newest(named, 3));
        let recorded = put("aa", "2026-01-06T00:00:00+00:00");
        assert_eq!(newest_run(tmp.path()).unwrap(), newest(recorded, 4));
    }

    /// A summary written before thresholds said whether they were judged: read as a run of
    /// its verdict writes them, not judged where the run could not exercise its target.
    #[test]
    fn old_thresholds_of_an_unusable_run_read_as_not_judged() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("summary.json");
        let mut s = crate::results::fixture::summary();
        s.thresholds = vec![crate::results::fixture::breached_threshold()];
        let old = |verdict: crate::model::Verdict| {
            let mut value = serde_json::to_value(Summary {
                verdict,
                ..s.clone()
            })
            .unwrap();
            value["thresholds"][0]
                .as_object_mut()
                .unwrap()
                .remove("judged");
            std::fs::write(&path, value.to_string()).unwrap();
            read_summary(&path).unwrap()
        };
        let unusable = old(crate::model::Verdict::TargetUnusable);
        assert!(!unusable.thresholds[0].judged);
        assert!(unusable.thresholds_met());
        let exercised = old(crate::model::Verdict::Clean);
        assert!(exercised.thresholds[0].judged);
        assert!(!exercised.thresholds_met());
    }
}
