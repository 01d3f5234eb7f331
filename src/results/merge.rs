//! Combining the results of several runs of one (scenario, seed), e.g. the shards of a run
//! spread over processes or machines (`--shard i/n`), into one result, exactly: counters
//! add, HdrHistograms merge (so every percentile is recomputed, not averaged), violations
//! and lenient acceptances are pooled, and the verdict is the worst of the parts. The
//! merged time is the shards' span or the pooled whole runs' summed time ([`MergedTime`]),
//! and every rate is over it.

use super::read::{IntervalPoint, Intervals, RunData};
use super::ThresholdResult;
use super::{
    GeneratorSummary, LenientSummary, ProbeSummary, Summary, ViolationSummary, LAG_LIMIT_MS,
    MAX_ANSWERS, SCHEMA_VERSION, SUMMARY_VIOLATIONS,
};
use crate::metrics::{Histograms, PhaseStats};
use crate::model::{
    ClientStalls, Counters, Phase, Shard, StopReason, Threshold, Verdict, Violation,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Why runs cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    /// Every run folder the paths given hold lacks its `summary.json` (killed runs).
    #[error("no run left to merge: {skipped}")]
    NothingReadable {
        /// The folders skipped, said as [`super::read::FoundRuns::skipped_line`] says them.
        skipped: String,
    },
    #[error(
        "{path} is a run of {what} {theirs}, the others of {ours}: only runs of one scenario \
         and seed merge"
    )]
    Mismatch {
        path: String,
        what: &'static str,
        ours: String,
        theirs: String,
    },
    /// Two parts hold the same shard of a split.
    #[error(
        "{other} and {path} both hold shard {shard}: give each shard once (a shard merged \
         twice would count its connections twice)"
    )]
    DuplicateShard {
        path: String,
        other: String,
        shard: String,
    },
    /// One whole run given twice: the same directory, or copies of one run.
    #[error(
        "{other} and {path} are the same run ({why}): give each run once (a run merged \
         twice would count its connections twice)"
    )]
    DuplicateRun {
        path: String,
        other: String,
        why: String,
    },
    #[error(
        "{path} is {theirs}, the others are {ours}: shards merge with the other shards of \
         one split (same count), a whole run only with whole runs"
    )]
    ShardMix {
        path: String,
        ours: String,
        theirs: String,
    },
    /// The merged result would be written over, inside or around one of the runs merged:
    /// it would overwrite that run's files, or be found beside them by the next merge of
    /// that folder.
    #[error(
        "the merged result's folder {out} {how} {input}, which this merge reads: give \
         --out a folder outside every run merged"
    )]
    OutputIsInput {
        out: String,
        input: String,
        how: &'static str,
    },
    /// The merged result's folder is already something: a file, or a folder with files in
    /// it (another run, last night's merge). Written there, the result would replace that
    /// run's files and leave the rest beside its own, one folder then holding two runs.
    #[error(
        "the merged result's folder {out} {what}: a merge writes a result of its own, \
         nothing was written; give --out a new or empty folder (or leave it out for a new \
         one under results/)"
    )]
    OutputTaken { out: String, what: String },
}

/// One merged result: what `write_merged` writes.
#[derive(Debug, Clone)]
pub struct MergedRun {
    pub summary: Summary,
    pub histograms: Histograms,
    pub violations: Vec<Violation>,
    pub intervals: Option<Intervals>,
    /// The parts' `intervals.hlog` files, to merge into the result's
    /// ([`super::hlog::merge_logs`]): those of shards that ran side by side, when every one
    /// has one; none for pooled whole runs (their intervals have no common clock).
    pub interval_logs: Vec<PathBuf>,
    /// Shards missing from a sharded set (their connections are not in the result).
    pub missing_shards: Vec<u32>,
    /// What the summary's `elapsed_ms`, and so every rate in it, measures.
    pub time: MergedTime,
    /// What the merge saw that keeps its figures from being one run's, in words (shards
    /// that started far apart, parts planned for different durations): said, not refused
    /// (`merge_warnings`).
    pub warnings: Vec<String>,
}

impl MergedRun {
    /// Records `lines`, which the caller said on stderr before merging (so that they are
    /// said even when the merge fails), first among the summary's warnings, and not among
    /// [`Self::warnings`], which are said after the merge: a reader of the result
    /// (`report`) must be told what the result lacks, as the console was (run folders
    /// skipped for want of a `summary.json`, workers lost).
    pub fn record_said(&mut self, lines: &[String]) {
        self.summary.warnings.splice(0..0, lines.iter().cloned());
    }
}

/// What a merged result's `elapsed_ms` measures. Every rate in the result (messages
/// received and sent per second, the interval series) is over that one figure, so the
/// time printed and the rates beside it always agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergedTime {
    /// The shards of one split ran side by side: from the first one's start to the last
    /// one's end.
    Span,
    /// Whole runs pooled ran one after another, minutes or days apart: their summed
    /// time, the gaps between them left out (the rate is the pooled load's, not diluted
    /// by the idle hours between two nightly runs), and their summed planned duration.
    Summed,
}

impl MergedTime {
    /// Shards are timed as a span, anything else (whole runs, merged results) as a sum;
    /// [`check_compatible`] has made sure the parts are all one or all the other.
    fn of(runs: &[RunData]) -> Self {
        if runs.iter().all(|r| r.summary.shard.is_some()) {
            MergedTime::Span
        } else {
            MergedTime::Summed
        }
    }
}

/// Merges `runs` (all of one scenario and seed; shards distinct).
pub fn merge(runs: &[RunData]) -> Result<MergedRun, MergeError> {
    let first = runs.first().ok_or(MergeError::Empty)?;
    check_compatible(runs)?;
    let mut counters = Counters::default();
    let mut histograms = Histograms::new();
    let mut violations: Vec<Violation> = Vec::new();
    let mut summary = first.summary.clone();
    summary.violations = ViolationSummary::default();
    // The merged run starts when its earliest part did, as its `elapsed_ms` counts (a
    // span from the earliest start, or summed time from it): `started_at` plus
    // `elapsed_ms` is then the last part's end, as it is a single run's.
    if let Some(earliest) = earliest(runs) {
        summary.started_at = earliest.summary.started_at.clone();
    }
    // Parts that ran against different servers (shards each with its own built-in one, a
    // mistyped URL) say so: the header names every target, not only the first.
    let mut targets: Vec<&str> = Vec::new();
    for run in runs {
        if !targets.contains(&run.summary.target.as_str()) {
            targets.push(&run.summary.target);
        }
    }
    summary.target = targets.join(", ");
    // The built-in server's only when every part ran against one: a pool with one part
    // against a real server is no reference run, whichever part is named first.
    summary.embedded_target = runs.iter().all(|r| r.summary.embedded_target);
    // One planted race when every part had it; parts of different servers say no one.
    let first_bug = runs.first().and_then(|r| r.summary.planted_bug.clone());
    summary.planted_bug = first_bug.filter(|bug| {
        runs.iter()
            .all(|r| r.summary.planted_bug.as_ref() == Some(bug))
    });
    let mut lenient = Vec::new();
    let mut answers = Vec::new();
    let mut oracles = BTreeSet::new();
    let mut takeover = BTreeSet::new();
    for run in runs {
        let s = &run.summary;
        counters.merge(&s.counters);
        histograms.merge(&run.histograms);
        violations.extend(run.violations.iter().cloned());
        for (oracle, n) in &s.violations.by_oracle {
            *summary.violations.by_oracle.entry(*oracle).or_default() += n;
        }
        summary.violations.total += s.violations.total;
        lenient.extend(s.lenient.first.iter().cloned());
        for a in &s.answers {
            if answers.len() < MAX_ANSWERS
                && !answers
                    .iter()
                    .any(|k: &crate::model::Answer| k.cause == a.cause)
            {
                answers.push(a.clone());
            }
        }
        oracles.extend(s.oracles.iter().copied());
        takeover.extend(s.undeclared_takeover.iter().copied());
    }
    summary.undeclared_takeover = takeover.into_iter().collect();
    violations.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    summary.violations.first = violations
        .iter()
        .take(SUMMARY_VIOLATIONS)
        .cloned()
        .collect();
    summary.lenient = merged_lenient(runs, &mut lenient);
    summary.answers = answers;
    summary.oracles = oracles.into_iter().collect();
    let time = MergedTime::of(runs);
    fill_totals(&mut summary, (runs, time), &counters, &histograms);
    summary.counters = counters;
    let missing = missing_shards(runs);
    // A shard that held no connection judged nothing (its own verdict is inconclusive):
    // the others judge the split, unless every part is empty.
    let held = |r: &&RunData| r.summary.connections_planned > 0;
    let judging: Vec<&RunData> = match runs.iter().filter(held).count() {
        0 => runs.iter().collect(),
        _ => runs.iter().filter(held).collect(),
    };
    let parts = judging.iter().map(|r| r.summary.verdict);
    // A split with shards missing did not run their connections: like a plan that did
    // not finish, what did not run proves nothing, and silence is no pass.
    let incomplete = (!missing.is_empty()).then_some(Verdict::Incomplete);
    let worst = Verdict::worst(parts.chain(incomplete)).unwrap_or_default();
    summary.verdict = worst;
    summary.hint = match judging.iter().find(|r| r.summary.verdict == worst) {
        // Its counts are the whole's, not one part's.
        Some(_) if worst == Verdict::Violations => Some(crate::oracle::verdict::violations_hint(
            &summary.violations.by_oracle,
            &violations,
            // No connection's report in a results file: nothing told per connection.
            &[],
        )),
        // One part's words, its counts its own (`connect_refused ×10` of 20): said whose,
        // unless they could be said of the whole (a clean run's count).
        Some(r) => {
            let alike = judging
                .iter()
                .filter(|o| o.summary.verdict == worst)
                .count();
            let all_alike = alike == judging.len();
            let whole = (worst == Verdict::Clean && all_alike)
                .then(|| whole_clean_hint(r, &summary))
                .flatten();
            whole.or_else(|| {
                let hint = r.summary.hint.as_deref()?;
                let who = r.dir.display();
                Some(if judging.len() == 1 {
                    hint.to_string()
                } else if all_alike {
                    format!("each of the {alike} parts merged judged so; in {who}: {hint}")
                } else {
                    format!(
                        "{alike} of the {} parts merged judged so, {who} among them: {hint}",
                        judging.len()
                    )
                })
            })
        }
        None => Some(format!(
            "shards {missing:?} of {} are missing: merge every shard of the split",
            first.summary.shard.map_or(0, |s| s.count)
        )),
    };
    // The thresholds the parts were judged by, judged again on the whole: a part's
    // verdict on them is its own share's, not the whole's (a latency limit one shard
    // breached may hold over all, a violation count each kept may not).
    let (thresholds, unread) = parts_thresholds(runs);
    summary.thresholds = super::judged_thresholds(&summary, &thresholds);
    summary.thresholds.extend(unread);
    let intervals = match time {
        MergedTime::Span => merged_intervals(runs),
        MergedTime::Summed => concatenated_intervals(runs),
    };
    let logs: Vec<PathBuf> = runs.iter().map(|r| r.dir.join("intervals.hlog")).collect();
    let interval_logs = if time == MergedTime::Span && logs.iter().all(|l| l.is_file()) {
        logs
    } else {
        Vec::new()
    };
    let warnings = merge_warnings(runs, time, &summary);
    summary.warnings = recorded_warnings(runs, &warnings);
    Ok(MergedRun {
        warnings,
        interval_logs,
        missing_shards: missing,
        summary,
        histograms,
        violations,
        intervals,
        time,
    })
}

/// Refuses an output folder `out` that is one of `inputs` (the folders or
/// `summary.json` files named to the merge, and the runs found in them), lies inside one,
/// or holds one: writing there would overwrite a run merged, or leave the merged result
/// among the runs the next merge of that folder reads. Paths are compared canonicalized
/// (`out` need not exist yet: its nearest existing ancestor is).
pub fn check_output(out: &Path, inputs: &[PathBuf]) -> Result<(), MergeError> {
    let out_real = real_path(out);
    for input in inputs {
        let folder = super::read::run_dir(input);
        let real = real_path(&folder);
        let how = if real == out_real {
            "is"
        } else if out_real.starts_with(&real) {
            "lies inside"
        } else if real.starts_with(&out_real) {
            "holds"
        } else {
            continue;
        };
        return Err(MergeError::OutputIsInput {
            out: out.display().to_string(),
            input: folder.display().to_string(),
            how,
        });
    }
    Ok(())
}

/// Refuses an output folder `out` that exists and is not an empty folder: a file, a run's
/// folder, a folder of runs or of anything else ([`MergeError::OutputTaken`]).
pub fn check_output_unused(out: &Path) -> Result<(), MergeError> {
    let taken = |what: String| {
        Err(MergeError::OutputTaken {
            out: out.display().to_string(),
            what,
        })
    };
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return taken("is a file".into());
    }
    let entries = match std::fs::read_dir(out) {
        Ok(entries) => entries.count(),
        Err(e) => return taken(format!("cannot be read ({e})")),
    };
    if out.join("summary.json").is_file() {
        return taken("holds a run already (its summary.json)".into());
    }
    match entries {
        0 => Ok(()),
        1 => taken("is not empty (1 entry)".into()),
        n => taken(format!("is not empty ({n} entries)")),
    }
}

/// Warnings for parts whose `violations.jsonl` is gone though they kept violations (their
/// summary counts some): the merged `violations.jsonl` cannot hold theirs, and says so
/// rather than pass for the whole list. `runs`: each part and whether its folder has the
/// file.
pub fn lost_violations_warnings(runs: &[(&RunData, bool)]) -> Vec<String> {
    runs.iter()
        .filter(|(run, has_file)| !has_file && run.violations.is_empty())
        .filter(|(run, _)| run.summary.violations.total > 0)
        .map(|(run, _)| {
            format!(
                "{} has no violations.jsonl though it found {}: the merged violations.jsonl \
                 lacks its kept ones (its counts are in the merged figures)",
                run.dir.display(),
                crate::model::words::plural(run.summary.violations.total, "violation")
            )
        })
        .collect()
}

/// `path` canonicalized; for a path that does not exist yet, its nearest existing
/// ancestor canonicalized with the rest appended (`..` and `.` of the rest resolved by
/// name).
fn real_path(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    let mut head = absolute.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(head) {
            let mut out = real;
            for part in rest.iter().rev() {
                match part.to_str() {
                    Some("..") => {
                        out.pop();
                    }
                    Some(".") => {}
                    _ => out.push(part),
                }
            }
            return out;
        }
        match (head.parent(), head.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                head = parent;
            }
            // `..` as the last component: no file name; keep it for the resolution above.
            (Some(parent), None) if head.ends_with("..") => {
                rest.push("..".into());
                head = parent;
            }
            _ => return absolute,
        }
    }
}

/// Every run must be of the same scenario (hash) and seed; shards must be of one split
/// (one count) and must not repeat, and a whole run does not merge with shards (its
/// connections are theirs too: they would count twice).
fn check_compatible(runs: &[RunData]) -> Result<(), MergeError> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    // What identifies a part, with the first part that had it: its directory, then its
    // shard of the split (shards) or its start time (whole runs).
    let mut dirs: BTreeMap<PathBuf, &RunData> = BTreeMap::new();
    let mut shards: BTreeMap<(u32, u32), &RunData> = BTreeMap::new();
    let mut starts: BTreeMap<&str, &RunData> = BTreeMap::new();
    for run in runs {
        let path = run.dir.display().to_string();
        let shown = |other: &RunData| other.dir.display().to_string();
        let dir = std::fs::canonicalize(&run.dir).unwrap_or_else(|_| run.dir.clone());
        if let Some(other) = dirs.insert(dir, run) {
            return Err(MergeError::DuplicateRun {
                other: shown(other),
                path,
                why: "the same directory, given twice".into(),
            });
        }
        let s = &run.summary;
        let mismatch = |what, ours: String, theirs: String| MergeError::Mismatch {
            path: path.clone(),
            what,
            ours,
            theirs,
        };
        if s.scenario_hash != first.summary.scenario_hash {
            // One name, two texts (the file edited between the runs): the hashes tell them
            // apart where the names do not.
            let shown = |summary: &Summary| {
                if s.scenario == first.summary.scenario {
                    format!(
                        "{} (file hash {})",
                        summary.scenario,
                        crate::model::words::short_hash(&summary.scenario_hash)
                    )
                } else {
                    summary.scenario.clone()
                }
            };
            return Err(mismatch("scenario", shown(&first.summary), shown(s)));
        }
        if s.seed != first.summary.seed {
            return Err(mismatch(
                "seed",
                first.summary.seed.to_string(),
                s.seed.to_string(),
            ));
        }
        let split = |shard: Option<Shard>| match shard {
            Some(s) => format!("a shard of {}", s.count),
            None => "a whole run".to_string(),
        };
        if s.shard.map(|s| s.count) != first.summary.shard.map(|s| s.count) {
            return Err(MergeError::ShardMix {
                path,
                ours: split(first.summary.shard),
                theirs: split(s.shard),
            });
        }
        match s.shard {
            Some(shard) => {
                if let Some(other) = shards.insert((shard.index, shard.count), run) {
                    return Err(MergeError::DuplicateShard {
                        other: shown(other),
                        path,
                        shard: shard.to_string(),
                    });
                }
            }
            // Two whole runs that started at the same instant are one run, copied.
            None => {
                if let Some(other) = starts.insert(&s.started_at, run) {
                    return Err(MergeError::DuplicateRun {
                        other: shown(other),
                        path,
                        why: format!("both started at {}", s.started_at),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Shards that started further apart than this, or a tenth of the time they ran when that
/// is longer, did not run side by side.
const START_SPREAD_MS: f64 = 1_000.0;

/// What keeps the merged figures from being one run's, in words. Neither is refused:
/// shards started late (pods scheduled minutes apart) or with another `--duration` merge
/// exactly, counters and histograms alike; only the time and the rates over it are not
/// the whole run's load, and nothing else would say so.
/// - Shards whose starts are further apart than a tenth of the time they ran (the longest
///   part's, at most the planned duration; at least [`START_SPREAD_MS`]): the merged time
///   is their span, in which they did not all run at once, so every rate over it is
///   diluted (a plan whose connections all ended in 6 s of its 60 loses a fifth of its
///   rate to shards started 1.5 s apart).
/// - Parts planned for different durations (`duration_ms`; merged results, whose planned
///   duration is a sum, left out): they did not run one plan.
fn merge_warnings(runs: &[RunData], time: MergedTime, merged: &Summary) -> Vec<String> {
    use super::thresholds::format_ms;
    let mut warnings = Vec::new();
    let planned = runs
        .iter()
        .map(|r| r.summary.duration_ms)
        .fold(0.0, f64::max);
    let starts: Vec<(f64, &RunData)> = runs
        .iter()
        .filter_map(|r| Some((started_ms(r)?, r)))
        .collect();
    let first = starts.iter().min_by(|a, b| a.0.total_cmp(&b.0));
    let last = starts.iter().max_by(|a, b| a.0.total_cmp(&b.0));
    // The time the parts ran, when known: a plan that ended early is diluted by a late
    // start as much as its own time, not the plan's.
    let ran = runs
        .iter()
        .map(|r| r.summary.elapsed_ms)
        .fold(0.0, f64::max);
    let ran = if ran > 0.0 { ran.min(planned) } else { planned };
    if let (MergedTime::Span, Some((t0, a)), Some((t1, b))) = (time, first, last) {
        let apart = t1 - t0;
        if apart > (ran / 10.0).max(START_SPREAD_MS) {
            warnings.push(format!(
                "the shards started {} apart ({} at {}, {} at {}), more than a tenth of the \
                 {} they ran: the merged time is their span ({}), in which they did not all \
                 run at once, so every rate in the result (received_per_sec, sent_per_sec, \
                 the interval series) is over stretches where only some of them ran and is \
                 not the whole run's load; the counts and latencies are exact. Start the \
                 shards together (one Job whose pods start at once) for the whole run's rates",
                format_ms(apart),
                a.dir.display(),
                a.summary.started_at,
                b.dir.display(),
                b.summary.started_at,
                format_ms(ran),
                format_ms(merged.elapsed_ms),
            ));
        }
    }
    // Each planned duration, with the parts planned for it, in the order first met.
    let mut durations: Vec<(f64, Vec<&RunData>)> = Vec::new();
    for run in runs.iter().filter(|r| r.summary.merged_from.is_none()) {
        let d = run.summary.duration_ms;
        match durations.iter_mut().find(|(seen, _)| *seen == d) {
            Some((_, parts)) => parts.push(run),
            None => durations.push((d, vec![run])),
        }
    }
    if durations.len() > 1 {
        let listed: Vec<String> = durations
            .iter()
            .map(|(d, parts)| match parts.as_slice() {
                [one] => format!("{} in {}", format_ms(*d), one.dir.display()),
                [first, ..] => format!(
                    "{} in {} parts, {} among them",
                    format_ms(*d),
                    parts.len(),
                    first.dir.display()
                ),
                [] => format_ms(*d),
            })
            .collect();
        warnings.push(format!(
            "the parts were planned for different durations ({}): they did not run one plan \
             (a --duration given to some and not the others?), so the merged result is not \
             one run's: its planned duration ({}) is not every part's, and its rates mix \
             loads of different lengths",
            listed.join("; "),
            format_ms(merged.duration_ms),
        ));
    }
    if let Some(servers) = different_servers(runs) {
        warnings.push(format!(
            "the parts ran against different built-in servers ({servers}): the merged result \
             names no planted bug, and its findings are those of the parts that had one"
        ));
    }
    warnings
}

/// The built-in servers the parts ran against, when they differ in the race planted in
/// them: `planted bug identity-swap (window 50ms) in a, the correct one in b`; `None`
/// when every part had the same one, or none ran against a built-in server.
fn different_servers(runs: &[RunData]) -> Option<String> {
    let embedded: Vec<&RunData> = runs.iter().filter(|r| r.summary.embedded_target).collect();
    let first = embedded.first()?;
    let differ = embedded
        .iter()
        .any(|r| r.summary.planted_bug != first.summary.planted_bug);
    differ.then(|| {
        embedded
            .iter()
            .map(|r| {
                let server = r
                    .summary
                    .planted_words()
                    .unwrap_or_else(|| "the correct one".into());
                format!("{server} in {}", r.dir.display())
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// What the merged summary records as its warnings ([`Summary::warnings`]): this merge's
/// own, then those each part recorded (a merged result merged again), named by the part,
/// each once: a report of the result says what the merges said when they ran.
fn recorded_warnings(runs: &[RunData], own: &[String]) -> Vec<String> {
    let mut recorded = own.to_vec();
    for run in runs {
        for warning in &run.summary.warnings {
            let said = format!("in {}: {warning}", run.dir.display());
            if !recorded.contains(&said) {
                recorded.push(said);
            }
        }
    }
    recorded
}

/// From the earliest part's start (`started_at`, RFC 3339) to the latest part's end
/// (start + `elapsed_ms`), in ms; `None` when a start does not read as a time.
fn union_span_ms(runs: &[RunData]) -> Option<f64> {
    let mut first = f64::INFINITY;
    let mut last = f64::NEG_INFINITY;
    for r in runs {
        let start_ms = started_ms(r)?;
        first = first.min(start_ms);
        last = last.max(start_ms + r.summary.elapsed_ms);
    }
    (last >= first).then_some(last - first)
}

/// A part's start (`started_at`, RFC 3339) in ms since the epoch; `None` when it does not
/// read as a time.
fn started_ms(run: &RunData) -> Option<f64> {
    let start = chrono::DateTime::parse_from_rfc3339(&run.summary.started_at).ok()?;
    Some(start.timestamp_micros() as f64 / 1000.0)
}

/// The merged `elapsed_ms`, as `time` measures it. A span is never shorter than the
/// longest part (a start that does not read as a time leaves only that).
fn merged_elapsed_ms(runs: &[RunData], time: MergedTime) -> f64 {
    let elapsed = runs.iter().map(|r| r.summary.elapsed_ms);
    match time {
        MergedTime::Summed => elapsed.sum(),
        MergedTime::Span => {
            let longest = elapsed.fold(0.0, f64::max);
            union_span_ms(runs).map_or(longest, |span| span.max(longest))
        }
    }
}

/// Figures recomputed from the merged parts: phases from the merged histograms, the time
/// ([`MergedTime`]) and the rates over it, the generator's lag, sums of probes and planned
/// connections.
fn fill_totals(
    s: &mut Summary,
    (runs, time): (&[RunData], MergedTime),
    c: &Counters,
    h: &Histograms,
) {
    s.schema_version = SCHEMA_VERSION;
    s.elapsed_ms = merged_elapsed_ms(runs, time);
    if time == MergedTime::Summed {
        // "ran 8s of 8s": the planned time beside the run time is the pool's too.
        s.duration_ms = runs.iter().map(|r| r.summary.duration_ms).sum();
    }
    s.connections_planned = runs.iter().map(|r| r.summary.connections_planned).sum();
    s.connections_accepted = runs.iter().map(|r| r.summary.connections_accepted).sum();
    s.stopped = runs
        .iter()
        .map(|r| r.summary.stopped)
        .max_by_key(|s| match s {
            StopReason::Completed => 0,
            StopReason::Duration => 1,
            StopReason::Unreachable
            | StopReason::AuthRefused
            | StopReason::NotFound
            | StopReason::CertificateRefused
            | StopReason::UpgradeUnanswered
            | StopReason::ClosedUnaccepted => 2,
            StopReason::Interrupted => 3,
        })
        .unwrap_or_default();
    s.received_per_sec = c.messages_received as f64 / (s.elapsed_ms / 1000.0).max(1e-9);
    s.phases = Phase::ALL
        .iter()
        .filter(|p| !h.get(**p).is_empty())
        .map(|p| (p.name().to_string(), PhaseStats::of(h.get(*p))))
        .collect();
    // Named expectations' turns, from the merged histograms (by name) like the phases.
    s.turns = h
        .turns()
        .map(|(name, t)| (name.to_string(), PhaseStats::of(t)))
        .collect();
    s.events = super::event_rates(&c.expect.events);
    let lag = PhaseStats::of(h.get(Phase::GeneratorLag));
    s.generator = GeneratorSummary {
        lag_p50_ms: lag.p50_ms,
        lag_p99_ms: lag.p99_ms,
        lag_max_ms: lag.max_ms,
        fell_behind: lag.p99_ms > LAG_LIMIT_MS,
        client_stalls: merged_stalls(runs.iter().map(|r| &r.summary.generator.client_stalls)),
    };
    s.probe = runs.iter().fold(ProbeSummary::default(), |mut p, r| {
        p.tokens += r.summary.probe.tokens;
        p.refused += r.summary.probe.refused;
        p.inconclusive += r.summary.probe.inconclusive;
        p.shed += r.summary.probe.shed;
        p.refused_by_policy += r.summary.probe.refused_by_policy;
        p.refused_expired += r.summary.probe.refused_expired;
        p.no_token |= r.summary.probe.no_token;
        for way in &r.summary.probe.shed_by {
            if !p.shed_by.contains(way) {
                p.shed_by.push(way.clone());
            }
        }
        p
    });
    s.coverage.shared_tokens = runs.iter().map(|r| r.summary.coverage.shared_tokens).sum();
    s.coverage.overlapping_tokens = runs
        .iter()
        .map(|r| r.summary.coverage.overlapping_tokens)
        .sum();
    s.coverage.witnessable_tokens = runs
        .iter()
        .map(|r| r.summary.coverage.witnessable_tokens)
        .sum();
    s.coverage.shed_tokens = runs.iter().map(|r| r.summary.coverage.shed_tokens).sum();
    s.barriers = runs.iter().flat_map(shard_barriers).collect();
    // Raised only where every part that released was.
    s.releases_raised = runs
        .iter()
        .filter_map(|r| r.summary.releases_raised)
        .reduce(|a, b| a && b);
    // Thresholds were checked on each part; the parts' results say nothing about the
    // whole: [`merge`] judges the same thresholds again once the verdict is known.
    s.thresholds = Vec::new();
    s.shard = None;
    s.merged_from = Some(runs.len());
    s.source_addrs = Vec::new();
    for addr in runs.iter().flat_map(|r| &r.summary.source_addrs) {
        if !s.source_addrs.contains(addr) {
            s.source_addrs.push(*addr);
        }
    }
    // One plan's runs pooled keep its hash; shards (each its own slice) have none in common.
    s.plan_hash = if runs.iter().all(|r| r.summary.plan_hash == s.plan_hash) {
        s.plan_hash.clone()
    } else {
        String::new()
    };
}

/// The thresholds the parts were judged by, each once, in the order first met, read back
/// from their summaries' `thresholds` entries (metric key, operator, limit in the metric's
/// unit, condition as written): the parts ran one scenario, so these are its
/// `[thresholds]` (a part stopped before its load judged none and lists none). An entry
/// whose metric this build does not read (written by another version) cannot be judged
/// again: it comes back as the second list, breached, saying so, rather than dropped, so
/// that the merge does not pass for want of it.
fn parts_thresholds(runs: &[RunData]) -> (Vec<Threshold>, Vec<ThresholdResult>) {
    let mut seen: Vec<(&str, crate::model::ThresholdOp, u64, &str)> = Vec::new();
    let mut thresholds = Vec::new();
    let mut unread = Vec::new();
    for t in runs.iter().flat_map(|r| &r.summary.thresholds) {
        let key = (
            t.metric.as_str(),
            t.op,
            t.limit.to_bits(),
            t.condition.as_str(),
        );
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        match crate::scenario::parse_metric(&t.metric) {
            Ok(metric) => thresholds.push(Threshold {
                metric,
                op: t.op,
                limit: t.limit,
                text: t.condition.clone(),
            }),
            Err(why) => unread.push(ThresholdResult {
                actual: None,
                passed: false,
                judged: true,
                message: format!(
                    "{} {}: not judged on the merged result ({why}): give --scenario FILE",
                    t.metric, t.condition
                ),
                ..t.clone()
            }),
        }
    }
    (thresholds, unread)
}

/// A part's barriers, each labelled with the part that released it: every part lists its
/// own, so unlabelled they read as one barrier reported twice. A label already there (a
/// merge of merges) is kept.
fn shard_barriers(run: &RunData) -> impl Iterator<Item = crate::model::BarrierStats> + '_ {
    run.summary
        .barriers
        .iter()
        .map(|b| crate::model::BarrierStats {
            shard: b.shard.or(run.summary.shard),
            ..b.clone()
        })
}

fn merged_lenient(
    runs: &[RunData],
    first: &mut [crate::model::LenientAcceptance],
) -> LenientSummary {
    let mut by_entry: BTreeMap<String, u64> = BTreeMap::new();
    for r in runs {
        for (entry, n) in &r.summary.lenient.by_entry {
            *by_entry.entry(entry.clone()).or_default() += n;
        }
    }
    first.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    LenientSummary {
        total: runs.iter().map(|r| r.summary.lenient.total).sum(),
        by_entry,
        first: first.iter().take(20).cloned().collect(),
    }
}

/// The shards of the set's count that no run holds.
fn missing_shards(runs: &[RunData]) -> Vec<u32> {
    let Some(count) = runs.iter().find_map(|r| r.summary.shard.map(|s| s.count)) else {
        return Vec::new();
    };
    let held: BTreeSet<u32> = runs
        .iter()
        .filter_map(|r| r.summary.shard.map(|s| s.index))
        .collect();
    (0..count).filter(|i| !held.contains(i)).collect()
}

/// The part that started first (by `started_at`); the first part when no start reads as a
/// time.
fn earliest(runs: &[RunData]) -> Option<&RunData> {
    runs.iter()
        .filter_map(|r| Some((started_ms(r)?, r)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, r)| r)
        .or_else(|| runs.first())
}

/// Interval series added point by point, as the merged `intervals.hlog` adds them: the
/// `i`-th point is every part's `i`-th (each part's intervals count from its own start,
/// which for parallel shards is the same instant give or take the process start). Its end
/// (`t_ms`) is on the merged run's clock, from the earliest part's start as `elapsed_ms`
/// counts: the latest of the parts' ends of that interval, each shifted by how much later
/// its part started (never before the previous point's), so that the series ends where
/// the merged run does, as a single run's does. Its `duration_ms` is the longest of the
/// parts' lengths of it, so a rate over it is the parts' together. A part whose long
/// series was consolidated has coarser points: the others are consolidated to its
/// spacing first, so that points that are added cover the same stretch of time.
fn merged_intervals(runs: &[RunData]) -> Option<Intervals> {
    let first_start = earliest(runs).and_then(started_ms);
    // How much later than the earliest part each part started; 0 when a start does not
    // read as a time.
    let offset = |r: &RunData| match (first_start, started_ms(r)) {
        (Some(first), Some(start)) => start - first,
        _ => 0.0,
    };
    let parts: Vec<(f64, &Intervals)> = runs
        .iter()
        .filter_map(|r| Some((offset(r), r.intervals.as_ref()?)))
        .collect();
    let spacing = parts.iter().map(|(_, p)| p.interval_ms).fold(0.0, f64::max);
    let parts: Vec<(f64, Vec<IntervalPoint>)> = parts
        .iter()
        .map(|(offset, p)| (*offset, coarsened(p, spacing)))
        .collect();
    if parts.is_empty() {
        return None;
    }
    let len = parts.iter().map(|(_, p)| p.len()).max().unwrap_or(0);
    let mut series: Vec<IntervalPoint> = Vec::with_capacity(len);
    for i in 0..len {
        let points: Vec<(f64, &IntervalPoint)> = parts
            .iter()
            .filter_map(|(offset, p)| Some((*offset, p.get(i)?)))
            .collect();
        let Some((_, base)) = points.first() else {
            continue;
        };
        let mut point = (*base).clone();
        let previous_end = series.last().map_or(0.0, |p| p.t_ms);
        point.t_ms = points
            .iter()
            .map(|(offset, p)| offset + p.t_ms)
            .fold(previous_end, f64::max);
        point.duration_ms = Some(
            points
                .iter()
                .map(|(_, p)| p.duration_ms.unwrap_or(spacing))
                .fold(0.0, f64::max),
        );
        point.sent = points.iter().map(|(_, p)| p.sent).sum();
        point.received = points.iter().map(|(_, p)| p.received).sum();
        point.violations = points.iter().map(|(_, p)| p.violations).sum();
        point.live = points.iter().map(|(_, p)| p.live).sum();
        point.turn_p99_ms = worst_p99(points.iter().map(|(_, p)| *p));
        series.push(point);
    }
    Some(Intervals {
        interval_ms: spacing,
        series,
    })
}

/// The series of whole runs that ran one after another, end to end on the clock their
/// summed `elapsed_ms` counts ([`MergedTime::Summed`]): each run's points shifted by the
/// time of the runs before it, in start order. Added point by point, as shards are, two
/// runs would read as one run at twice the rate, beside a headline rate over their summed
/// time. A run without a series still takes its time on that clock.
fn concatenated_intervals(runs: &[RunData]) -> Option<Intervals> {
    let parts = runs.iter().filter_map(|r| r.intervals.as_ref());
    let spacing = parts.clone().map(|p| p.interval_ms).fold(0.0, f64::max);
    if parts.count() == 0 {
        return None;
    }
    let mut ordered: Vec<&RunData> = runs.iter().collect();
    // A start that does not read as a time goes last (the sort is stable).
    let start = |r: &RunData| started_ms(r).unwrap_or(f64::INFINITY);
    ordered.sort_by(|a, b| start(a).total_cmp(&start(b)));
    let mut offset_ms = 0.0;
    let mut series = Vec::new();
    for run in ordered {
        if let Some(part) = &run.intervals {
            series.extend(coarsened(part, spacing).into_iter().map(|p| IntervalPoint {
                t_ms: p.t_ms + offset_ms,
                ..p
            }));
        }
        offset_ms += run.summary.elapsed_ms;
    }
    Some(Intervals {
        interval_ms: spacing,
        series,
    })
}

/// The highest turn p99 among `points`; `None` when none had a turn.
fn worst_p99<'a>(points: impl Iterator<Item = &'a IntervalPoint>) -> Option<f64> {
    points.filter_map(|p| p.turn_p99_ms).reduce(f64::max)
}

/// `part`'s points merged in runs of `spacing / interval_ms` (a power of two when the run
/// consolidated its own series), as the run does: counts add up, the gauge and the end are
/// the last interval's, the turn p99 the worst. A part already at `spacing` is unchanged.
fn coarsened(part: &Intervals, spacing: f64) -> Vec<IntervalPoint> {
    let factor = if part.interval_ms > 0.0 {
        (spacing / part.interval_ms).round().max(1.0) as usize
    } else {
        1
    };
    if factor == 1 {
        return part.series.clone();
    }
    part.series
        .chunks(factor)
        .filter_map(|run| {
            let last = run.last()?;
            let sum = |f: fn(&IntervalPoint) -> f64| run.iter().map(f).sum::<f64>();
            let whole = run.len() == factor && run.iter().all(|p| p.duration_ms.is_none());
            Some(IntervalPoint {
                t_ms: last.t_ms,
                duration_ms: (!whole).then(|| {
                    run.iter()
                        .map(|p| p.duration_ms.unwrap_or(part.interval_ms))
                        .sum()
                }),
                live: last.live,
                sent: sum(|p| p.sent),
                received: sum(|p| p.received),
                violations: sum(|p| p.violations),
                turn_p99_ms: worst_p99(run.iter()),
            })
        })
        .collect()
}

/// The stalls of parts that ran side by side: each part's process stalled on its own, so
/// they add up, and the kept ones are all of theirs, in time order (up to the most any
/// part keeps).
fn merged_stalls<'a>(parts: impl Iterator<Item = &'a ClientStalls>) -> ClientStalls {
    let mut out = ClientStalls::default();
    let mut most_kept = 0;
    for p in parts {
        out.count += p.count;
        out.total_ms += p.total_ms;
        out.longest_ms = out.longest_ms.max(p.longest_ms);
        most_kept = most_kept.max(p.kept.len());
        out.kept.extend(p.kept.iter().copied());
    }
    out.kept.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    out.kept.truncate(most_kept);
    out
}

/// The hint of a merge whose every part is clean: a part's "every expectation met (M on N
/// connections)" counted that part; the whole's counts replace them (what follows, a note
/// on that part's sends, stays its own). `None` for a hint of another shape, or one from
/// before the summaries counted accepted connections: said as one part's.
fn whole_clean_hint(part: &RunData, whole: &Summary) -> Option<String> {
    let hint = part.summary.hint.as_deref()?;
    let own = crate::oracle::verdict::clean_words(
        &part.summary.counters.expect,
        part.summary.connections_accepted,
    );
    match hint.strip_prefix(&own) {
        Some(rest) if whole.connections_accepted > 0 => Some(format!(
            "{}{rest}",
            crate::oracle::verdict::clean_words(&whole.counters.expect, whole.connections_accepted,)
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part of a split whose oracles broke `n` times.
    fn broken_shard(index: u32, n: u64) -> RunData {
        let mut summary = crate::results::fixture::summary();
        summary.shard = Some(Shard { index, count: 2 });
        summary.verdict = Verdict::Violations;
        summary.violations.total = n;
        summary
            .violations
            .by_oracle
            .insert(crate::model::OracleKind::Exclusivity, n);
        let by_oracle = summary.violations.by_oracle.clone();
        summary.hint = Some(crate::oracle::verdict::violations_hint(
            &by_oracle,
            &[],
            &[],
        ));
        RunData {
            dir: format!("s{index}").into(),
            summary,
            histograms: Histograms::new(),
            violations: Vec::new(),
            intervals: None,
        }
    }

    /// An output folder that is a run merged, lies inside one or holds one is refused,
    /// however its path is spelled (`..`, a trailing `summary.json`, not yet existing);
    /// one beside them is not.
    #[test]
    fn the_output_folder_may_not_be_one_of_the_runs_merged() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        for dir in [&a, &b] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("summary.json"), "{}").unwrap();
        }
        let inputs = [a.clone(), b.join("summary.json")];
        let refused = |out: PathBuf| match check_output(&out, &inputs) {
            Err(MergeError::OutputIsInput { how, input, .. }) => (how, input),
            other => panic!("{} was let through: {other:?}", out.display()),
        };
        let b_shown = b.display().to_string();
        let a_shown = a.display().to_string();
        assert_eq!(refused(b.clone()), ("is", b_shown.clone()));
        assert_eq!(refused(a.join("x").join("..")), ("is", a_shown.clone()));
        assert_eq!(refused(b.join("merged")), ("lies inside", b_shown));
        assert_eq!(refused(tmp.path().to_path_buf()), ("holds", a_shown));
        let message = check_output(&a, &inputs).unwrap_err().to_string();
        assert!(
            message.contains(&format!("{} is {}", a.display(), a.display())),
            "{message}"
        );
        assert!(check_output(&tmp.path().join("merged"), &inputs).is_ok());
        assert!(check_output(&tmp.path().join("ab"), &inputs).is_ok());
    }

    /// The thresholds the parts were judged by are judged again on the merged figures,
    /// not copied and not dropped: breached in every part, breached in the whole (so the
    /// merge does not pass); held in each part, maybe breached in the whole; one whose
    /// metric cannot be read back is breached, saying so.
    #[test]
    fn the_parts_thresholds_are_judged_again_on_the_whole() {
        use crate::model::{ThresholdMetric, ThresholdOp};
        let limit = |metric, op, limit: f64, text: &str| Threshold {
            metric,
            op,
            limit,
            text: text.into(),
        };
        let judged = |mut part: RunData, thresholds: &[Threshold]| {
            part.summary.thresholds = crate::results::evaluate(&part.summary, thresholds);
            part
        };
        // Clean parts whose throughput breached a floor: the merged run is not a pass.
        let fast = [limit(
            ThresholdMetric::ReceivedPerSec,
            ThresholdOp::Gt,
            1e9,
            "> 1e9",
        )];
        let clean = |index| {
            let mut part = broken_shard(index, 0);
            part.summary.violations = Default::default();
            part.summary.verdict = Verdict::Clean;
            judged(part, &fast)
        };
        let parts = [clean(0), clean(1)];
        assert!(parts.iter().all(|p| !p.summary.passed()));
        let merged = merge(&parts).unwrap();
        assert_eq!(merged.summary.verdict, Verdict::Clean);
        let t = &merged.summary.thresholds;
        assert_eq!(t.len(), 1, "once, though both parts list it: {t:?}");
        assert!(t[0].breached() && t[0].condition == "> 1e9", "{t:?}");
        assert!(!merged.summary.passed());
        // Two violations each, under a limit of 3 in each part: 4 in the whole.
        let few = [limit(
            ThresholdMetric::Violations,
            ThresholdOp::Lt,
            3.0,
            "< 3",
        )];
        let parts = [
            judged(broken_shard(0, 2), &few),
            judged(broken_shard(1, 2), &few),
        ];
        assert!(parts.iter().all(|p| p.summary.thresholds_met()));
        let merged = merge(&parts).unwrap();
        let t = &merged.summary.thresholds;
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].actual, t[0].breached()), (Some(4.0), true), "{t:?}");
        // A metric this build does not read: not dropped, breached, and said why.
        let mut odd = judged(broken_shard(0, 2), &few);
        odd.summary.thresholds[0].metric = "turn.p99999".into();
        let merged = merge(&[odd, judged(broken_shard(1, 2), &few)]).unwrap();
        let t = &merged.summary.thresholds;
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(
            t[1].breached() && t[1].message.contains("give --scenario FILE"),
            "{t:?}"
        );
    }

    /// Shards started further apart than a tenth of the time they ran (at least 1 s), and
    /// parts planned for different durations, merge with a warning each that says what was
    /// seen; shards started together, and whole runs pooled hours apart, without.
    #[test]
    fn late_shards_and_other_durations_merge_with_a_warning() {
        // Each ran its whole plan.
        let shard = |index: u32, started_at: &str, duration_ms: f64| {
            let mut part = broken_shard(index, 1);
            part.summary.started_at = started_at.into();
            part.summary.duration_ms = duration_ms;
            part.summary.elapsed_ms = duration_ms;
            part
        };
        let warnings = |parts: &[RunData]| merge(parts).unwrap().warnings;
        let at = |secs: u32| format!("2025-01-01T00:{:02}:{:02}+00:00", secs / 60, secs % 60);
        // 60 s run: 3 s apart is together (under its tenth), 7 s is not (over 6 s).
        assert!(warnings(&[shard(0, &at(0), 60e3), shard(1, &at(3), 60e3)]).is_empty());
        let late_parts = [shard(0, &at(0), 60e3), shard(1, &at(7), 60e3)];
        let late = warnings(&late_parts);
        assert_eq!(late.len(), 1, "{late:?}");
        // The merged summary records them, for `report` to say again.
        assert_eq!(merge(&late_parts).unwrap().summary.warnings, late);
        assert!(
            late[0].starts_with(&format!(
                "the shards started 7s apart (s0 at {}, s1 at {}), more than a tenth of the \
                 60s they ran: the merged time is their span (67s)",
                at(0),
                at(7)
            )) && late[0].contains("not the whole run's load"),
            "{late:?}"
        );
        // A 60 s plan whose connections all ended within 6 s: 2 s apart dilutes its rates
        // by a quarter, though 2 s is nothing beside the plan's 60.
        let quick = |index: u32, secs: u32| {
            let mut part = shard(index, &at(secs), 60e3);
            part.summary.elapsed_ms = 6e3;
            part
        };
        let early = warnings(&[quick(0, 0), quick(1, 2)]);
        assert_eq!(early.len(), 1, "{early:?}");
        assert!(
            early[0].contains("more than a tenth of the 6s they ran"),
            "{early:?}"
        );
        assert!(warnings(&[quick(0, 0), quick(1, 0)]).is_empty());
        // Ten minutes apart on a 10-minute plan: 60 s is the tenth, so 61 s warns.
        assert!(warnings(&[shard(0, &at(0), 600e3), shard(1, &at(60), 600e3)]).is_empty());
        assert_eq!(
            warnings(&[shard(0, &at(0), 600e3), shard(1, &at(61), 600e3)]).len(),
            1
        );
        // Together, but planned for 30 s and 60 s.
        let other = warnings(&[shard(0, &at(0), 30e3), shard(1, &at(0), 60e3)]);
        assert_eq!(other.len(), 1, "{other:?}");
        assert!(
            other[0].starts_with(
                "the parts were planned for different durations (30s in s0; 60s in s1)"
            ),
            "{other:?}"
        );
        // Whole runs pooled an hour apart, one plan: nothing to say.
        let pooled = [
            whole("a", "2025-01-01T00:00:00+00:00"),
            whole("b", "2025-01-01T01:00:00+00:00"),
        ];
        assert!(warnings(&pooled).is_empty());
    }

    /// A whole run (no shard) in directory `dir`, started at `started_at`.
    fn whole(dir: &str, started_at: &str) -> RunData {
        let mut run = broken_shard(0, 1);
        run.summary.shard = None;
        run.summary.started_at = started_at.into();
        run.dir = dir.into();
        run
    }

    /// Runs of one scenario name whose files differ (edited between them) are told apart
    /// by their hashes: "a run of scenario hold, the others of hold" said nothing.
    #[test]
    fn runs_of_an_edited_scenario_are_refused_naming_its_hashes() {
        let a = whole("a", "2025-01-01T00:00:00.000+00:00");
        let mut b = whole("b", "2025-01-01T00:05:00.000+00:00");
        b.summary.scenario_hash = "f".repeat(64);
        let err = merge(&[a.clone(), b]).unwrap_err().to_string();
        let (ours, theirs) = (
            crate::model::words::short_hash(&a.summary.scenario_hash),
            "f".repeat(crate::model::words::short_hash(&"f".repeat(64)).len()),
        );
        assert!(
            err.contains(&format!("(file hash {theirs}), the others of"))
                && err.contains(&format!("(file hash {ours}): only runs")),
            "{err}"
        );
    }

    /// A merge lists the addresses every part's connections came from, each once, in the
    /// order the parts name them.
    #[test]
    fn a_merge_lists_every_parts_source_addresses_once() {
        let addr = |a: &str| a.parse::<std::net::IpAddr>().unwrap();
        let mut a = whole("a", "2025-01-01T00:00:00.000+00:00");
        a.summary.source_addrs = vec![addr("127.0.0.2"), addr("127.0.1.2")];
        let mut b = whole("b", "2025-01-01T00:05:00.000+00:00");
        b.summary.source_addrs = vec![addr("127.0.1.2"), addr("127.0.0.3")];
        let c = whole("c", "2025-01-01T00:10:00.000+00:00");
        let merged = merge(&[a, b, c]).unwrap().summary;
        assert_eq!(
            merged.source_addrs,
            vec![addr("127.0.0.2"), addr("127.0.1.2"), addr("127.0.0.3")]
        );
        let none = [
            whole("d", "2025-01-01T00:00:00.000+00:00"),
            whole("e", "2025-01-01T00:05:00.000+00:00"),
        ];
        assert!(merge(&none).unwrap().summary.source_addrs.is_empty());
    }

    /// Parts pooled from the built-in server and a real one are not a built-in server's
    /// run, in either order; parts all against built-in servers are.
    #[test]
    fn a_merge_is_the_built_in_servers_only_when_every_part_is() {
        let part = |dir: &str, at: &str, embedded: bool| {
            let mut r = whole(dir, at);
            r.summary.embedded_target = embedded;
            r
        };
        let built_in = |dir| part(dir, "2025-01-01T00:00:00.000+00:00", true);
        let real = |dir| part(dir, "2025-01-01T00:05:00.000+00:00", false);
        for pool in [[built_in("a"), real("b")], [real("b"), built_in("a")]] {
            assert!(!merge(&pool).unwrap().summary.embedded_target);
        }
        let both = [
            built_in("a"),
            part("c", "2025-01-01T00:10:00.000+00:00", true),
        ];
        assert!(merge(&both).unwrap().summary.embedded_target);
        // A planted bug is kept when every part had it; parts of different built-in
        // servers name none, and the merge says so.
        let bugged = |dir, at| {
            let mut r = part(dir, at, true);
            r.summary.planted_bug = Some(super::super::PlantedBug {
                name: "identity-swap".into(),
                window_ms: 50.0,
            });
            r
        };
        let same = [
            bugged("a", "2025-01-01T00:00:00.000+00:00"),
            bugged("c", "2025-01-01T00:00:01.000+00:00"),
        ];
        let merged = merge(&same).unwrap().summary;
        assert_eq!(merged.planted_bug, same[0].summary.planted_bug);
        assert!(!merged
            .warnings
            .iter()
            .any(|w| w.contains("different built-in")));
        let mixed = [
            bugged("a", "2025-01-01T00:00:00.000+00:00"),
            part("c", "2025-01-01T00:00:01.000+00:00", true),
        ];
        let merged = merge(&mixed).unwrap().summary;
        assert_eq!(merged.planted_bug, None);
        assert!(
            merged.warnings.iter().any(|w| w.contains(
                "different built-in servers (planted bug identity-swap (window 50ms) in a, \
                 the correct one in c)"
            )),
            "{:?}",
            merged.warnings
        );
    }

    #[test]
    fn a_run_or_shard_given_twice_is_refused_naming_both_directories() {
        let at = |dir: &str| whole(dir, "2025-01-01T00:00:00.123+00:00");
        let err = merge(&[at("a"), at("a")]).unwrap_err().to_string();
        assert_eq!(
            err,
            "a and a are the same run (the same directory, given twice): give each run once \
             (a run merged twice would count its connections twice)"
        );
        // A copy of a run in another directory: the same start.
        let err = merge(&[at("a"), at("copy-of-a")]).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "a and copy-of-a are the same run (both started at 2025-01-01T00:00:00.123+00:00)"
            ),
            "{err}"
        );
        // Two runs of one scenario and seed, started apart, pool.
        let later = whole("b", "2025-01-01T00:05:00.000+00:00");
        assert_eq!(
            merge(&[at("a"), later]).unwrap().summary.merged_from,
            Some(2)
        );
        // The same shard in two directories.
        let mut copy = broken_shard(1, 1);
        copy.dir = "elsewhere/s1".into();
        let err = merge(&[broken_shard(0, 1), broken_shard(1, 1), copy])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s1 and elsewhere/s1 both hold shard 1/2"),
            "{err}"
        );
    }

    #[test]
    fn shards_started_apart_are_timed_from_the_first_start_to_the_last_end() {
        let part = |index: u32, started_at: &str| {
            let mut part = broken_shard(index, 1);
            part.summary.started_at = started_at.into();
            part.summary.elapsed_ms = 4_000.0;
            part
        };
        let counted = |runs: &[RunData]| {
            let received = runs
                .iter()
                .map(|r| r.summary.counters.messages_received)
                .sum::<u64>();
            assert!(received > 0, "the fixture receives messages");
            received as f64
        };
        // The second shard started 2 s after the first: 6 s in all, not 4.
        let shards = [
            part(0, "2025-01-01T00:00:00.000+00:00"),
            part(1, "2025-01-01T00:00:02.000+00:00"),
        ];
        let merged = merge(&shards).unwrap().summary;
        assert_eq!(merged.elapsed_ms, 6_000.0);
        assert!((merged.received_per_sec - counted(&shards) / 6.0).abs() < 1e-6);
    }

    /// Whole runs pooled ran one after another: the merged time is their summed time, and
    /// the time shown, every rate and the interval series all count that one clock (the
    /// header once showed the longest run beside a rate over the sum).
    #[test]
    fn pooled_whole_runs_are_timed_by_their_summed_time_and_every_rate_is_over_it() {
        let run = |dir: &str, started_at: &str, elapsed_ms: f64| {
            let mut run = whole(dir, started_at);
            run.summary.elapsed_ms = elapsed_ms;
            run.summary.duration_ms = 4_000.0;
            run.intervals = Some(Intervals {
                interval_ms: 1000.0,
                series: (1..=3)
                    .map(|i| point(f64::from(i) * 1000.0, 10.0, None))
                    .chain([IntervalPoint {
                        duration_ms: Some(elapsed_ms - 3_000.0),
                        ..point(elapsed_ms, 10.0, None)
                    }])
                    .collect(),
            });
            run
        };
        // Given latest first, five minutes apart: the gap between them is not load.
        let runs = [
            run("b", "2025-01-01T00:05:00.000+00:00", 4_000.0),
            run("a", "2025-01-01T00:00:00.000+00:00", 3_500.0),
        ];
        let merged = merge(&runs).unwrap();
        assert_eq!(merged.time, MergedTime::Summed);
        let s = &merged.summary;
        assert_eq!(s.elapsed_ms, 7_500.0);
        assert_eq!(s.duration_ms, 8_000.0);
        let secs = s.elapsed_ms / 1000.0;
        let received = s.counters.messages_received as f64;
        assert!(received > 0.0, "the fixture receives messages");
        assert!((s.received_per_sec - received / secs).abs() < 1e-6);
        // The sent rate a `--scenario` threshold reads is over the same time.
        let sent = crate::model::Threshold {
            metric: crate::model::ThresholdMetric::SentPerSec,
            op: crate::model::ThresholdOp::Gt,
            limit: 0.0,
            text: "> 0".into(),
        };
        let evaluated = crate::results::evaluate(s, &[sent]);
        let expected = s.counters.messages_sent as f64 / secs;
        assert!((evaluated[0].actual.unwrap() - expected).abs() < 1e-6);
        // (The console prints `elapsed_ms` of `duration_ms`: "ran 7.50s of 8s".)
        // The series runs end to end, earliest run first, over the same 7.5 s.
        let series = &merged.intervals.unwrap().series;
        let times: Vec<f64> = series.iter().map(|p| p.t_ms).collect();
        assert_eq!(
            times,
            [1_000.0, 2_000.0, 3_000.0, 3_500.0, 4_500.0, 5_500.0, 6_500.0, 7_500.0]
        );
        let sent_in_series: f64 = series.iter().map(|p| p.sent).sum();
        assert_eq!(sent_in_series, 80.0);
    }

    /// A part worse than the others gives the merged verdict, and its hint is quoted as
    /// that part's: "accepted none" of one part must not read as the whole's, whose
    /// counters say otherwise.
    #[test]
    fn the_worst_parts_hint_is_quoted_as_that_parts() {
        let part = |index: u32, verdict: Verdict, hint: Option<&str>| {
            let mut part = broken_shard(index, 0);
            part.summary.violations = Default::default();
            part.summary.verdict = verdict;
            part.summary.hint = hint.map(String::from);
            part
        };
        let unusable = "connections got through the upgrade but the server accepted none";
        let merged = merge(&[
            part(0, Verdict::Clean, None),
            part(1, Verdict::TargetUnusable, Some(unusable)),
        ])
        .unwrap();
        assert_eq!(merged.summary.verdict, Verdict::TargetUnusable);
        assert_eq!(
            merged.summary.hint.as_deref(),
            Some(format!("1 of the 2 parts merged judged so, s1 among them: {unusable}").as_str())
        );
        // Every part alike: still one part's words and counts (`×10` of a part, where the
        // counters above count 20), said so.
        let merged = merge(&[
            part(0, Verdict::TargetUnusable, Some(unusable)),
            part(1, Verdict::TargetUnusable, Some(unusable)),
        ])
        .unwrap();
        assert_eq!(
            merged.summary.hint.as_deref(),
            Some(format!("each of the 2 parts merged judged so; in s0: {unusable}").as_str())
        );
    }

    /// Clean parts each said "every expectation met (400 on 100 connections)" of
    /// themselves (`--workers 2` of a 200-connection run): the merge says it of the whole,
    /// keeping what followed in the part's hint. A hint of another shape stays the part's.
    #[test]
    fn clean_parts_merge_into_the_wholes_count() {
        let part = |index: u32, hint: &str| {
            let mut part = broken_shard(index, 0);
            part.summary.violations = Default::default();
            part.summary.verdict = Verdict::Clean;
            part.summary.counters.expect.expectations_met = 400;
            part.summary.connections_accepted = 100;
            part.summary.hint = Some(hint.to_string());
            part
        };
        let own = "every expectation met (400 on 100 connections) and no oracle broke";
        let note = "; what the server does with the sends at `g` step 2 is not judged";
        let merged = merge(&[part(0, &format!("{own}{note}")), part(1, own)]).unwrap();
        assert_eq!(merged.summary.connections_accepted, 200);
        assert_eq!(
            merged.summary.hint.as_deref(),
            Some(
                format!("every expectation met (800 on 200 connections) and no oracle broke{note}")
                    .as_str()
            )
        );
        let other = "3 connections accepted, and no expectation met: only the handshakes";
        let merged = merge(&[part(0, other), part(1, other)]).unwrap();
        assert_eq!(
            merged.summary.hint.as_deref(),
            Some(format!("each of the 2 parts merged judged so; in s0: {other}").as_str())
        );
    }

    #[test]
    fn an_empty_shard_leaves_the_merged_verdict_to_the_others() {
        let clean = |index: u32, planned: usize| {
            let mut part = broken_shard(index, 0);
            part.summary.violations = Default::default();
            part.summary.connections_planned = planned;
            part.summary.verdict = if planned == 0 {
                Verdict::Inconclusive
            } else {
                Verdict::Clean
            };
            part.summary.hint = None;
            part
        };
        let merged = merge(&[clean(0, 12), clean(1, 0)]).unwrap();
        assert_eq!(merged.summary.verdict, Verdict::Clean);
        // Every part empty: nothing was exercised anywhere.
        let merged = merge(&[clean(0, 0), clean(1, 0)]).unwrap();
        assert_eq!(merged.summary.verdict, Verdict::Inconclusive);
        // An empty part does not hide a finding.
        let merged = merge(&[broken_shard(0, 2), clean(1, 0)]).unwrap();
        assert_eq!(merged.summary.verdict, Verdict::Violations);
    }

    #[test]
    fn the_merged_hint_counts_the_whole_not_one_part() {
        let merged = merge(&[broken_shard(0, 2), broken_shard(1, 3)]).unwrap();
        assert_eq!(merged.summary.verdict, Verdict::Violations);
        let hint = merged.summary.hint.unwrap_or_default();
        assert!(hint.contains("exclusivity 5"), "{hint}");
    }

    /// The merged hint reads the parts' violations as a run's does: answers that came after
    /// their deadline ran out are slowness, not a race to hunt.
    #[test]
    fn the_merged_hint_tells_late_answers_from_a_race() {
        let late = |index| {
            let mut part = broken_shard(index, 0);
            let oracle = crate::model::OracleKind::Completeness;
            part.summary.violations.total = 1;
            part.summary.violations.by_oracle = [(oracle, 1)].into();
            part.violations = vec![Violation {
                window_ms: Some(500.0),
                late_ms: Some(640.0),
                after_request_ms: None,
                ..crate::results::fixture::violation(oracle, 10.0)
            }];
            part
        };
        let merged = merge(&[late(0), late(1)]).unwrap();
        assert_eq!(merged.summary.verdict, Verdict::Violations);
        let hint = merged.summary.hint.unwrap_or_default();
        assert!(
            hint.contains("every one is an answer that came late")
                && hint
                    .contains("`chatters` within 500 ms ×2 (came up to 640 ms after the request)")
                && !hint.contains("hunt"),
            "{hint}"
        );
    }

    /// A deadline missed on a connection that closed before a late answer to the same
    /// deadline could have come is told apart from a loss in the merge as in the run: the
    /// connection's end travels with the violation, through `violations.jsonl`.
    #[test]
    fn the_merged_hint_does_not_call_a_miss_cut_short_by_its_connection_a_loss() {
        let oracle = crate::model::OracleKind::Completeness;
        let part = |index, v: Violation| {
            let mut part = broken_shard(index, 0);
            part.summary.violations.total = 1;
            part.summary.violations.by_oracle = [(oracle, 1)].into();
            // As `stampede merge` reads it back from the part's results.
            let line = serde_json::to_string(&v).unwrap_or_default();
            part.violations = serde_json::from_str(&line).into_iter().collect();
            part
        };
        let missed = Violation {
            window_ms: Some(500.0),
            ..crate::results::fixture::violation(oracle, 10.0)
        };
        let late = Violation {
            late_ms: Some(640.0),
            after_request_ms: None,
            ..missed.clone()
        };
        // Its wait began at -490 ms; the late answer took 640 ms.
        let merged_with_end = |end_ms| {
            let cut = Violation {
                conn_end_ms: Some(end_ms),
                ..missed.clone()
            };
            let merged = merge(&[part(0, late.clone()), part(1, cut)]).unwrap();
            assert_eq!(merged.summary.verdict, Verdict::Violations);
            merged.summary.hint.unwrap_or_default()
        };
        let cut = merged_with_end(100.0);
        assert!(
            cut.contains("1 more missed the same deadline on a connection that ended sooner")
                && !cut.contains("hunt"),
            "{cut}"
        );
        let lost = merged_with_end(5_000.0);
        assert!(
            lost.contains("hunt for a repro of those that are not late answers"),
            "{lost}"
        );
    }

    #[test]
    fn each_merged_barrier_names_the_part_that_released_it() {
        let parts: Vec<RunData> = (0..2)
            .map(|i| {
                let mut part = broken_shard(i, 1);
                part.summary.barriers = vec![crate::model::BarrierStats::of_release(
                    "colliders".into(),
                    4,
                    vec![10],
                    1_000,
                )];
                part
            })
            .collect();
        let merged = merge(&parts).unwrap();
        let shards: Vec<Option<Shard>> = merged.summary.barriers.iter().map(|b| b.shard).collect();
        assert_eq!(
            shards,
            [
                Some(Shard { index: 0, count: 2 }),
                Some(Shard { index: 1, count: 2 })
            ]
        );
        // Merged again, each keeps the part it came from, not the (absent) merge's.
        let again = RunData {
            summary: merged.summary,
            ..broken_shard(0, 1)
        };
        let twice = merge(&[again]).unwrap();
        assert_eq!(
            twice.summary.barriers[1].shard,
            Some(Shard { index: 1, count: 2 })
        );
    }

    fn point(t: f64, sent: f64, p99: Option<f64>) -> IntervalPoint {
        IntervalPoint {
            t_ms: t,
            duration_ms: None,
            live: 1.0,
            sent,
            received: 0.0,
            violations: 0.0,
            turn_p99_ms: p99,
        }
    }

    #[test]
    fn a_consolidated_part_sets_the_spacing_of_the_merged_series() {
        // One shard ran long enough to consolidate to 2 s points; the other kept 1 s ones.
        let fine = Intervals {
            interval_ms: 1000.0,
            series: (1..=5)
                .map(|i| point(f64::from(i) * 1000.0, 1.0, Some(f64::from(i))))
                .collect(),
        };
        let coarse = Intervals {
            interval_ms: 2000.0,
            series: vec![point(2000.0, 10.0, None), point(4000.0, 10.0, Some(1.0))],
        };
        let parts: Vec<RunData> = [fine, coarse]
            .into_iter()
            .enumerate()
            .map(|(i, series)| {
                let mut part = broken_shard(i as u32, 1);
                part.intervals = Some(series);
                part
            })
            .collect();
        let merged = merged_intervals(&parts).unwrap();
        assert_eq!(merged.interval_ms, 2000.0);
        let got: Vec<(f64, f64, Option<f64>, Option<f64>)> = merged
            .series
            .iter()
            .map(|p| (p.t_ms, p.sent, p.turn_p99_ms, p.duration_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                // Every point says its length, a whole one's too, as a single run's do.
                (2000.0, 12.0, Some(2.0), Some(2000.0)),
                (4000.0, 12.0, Some(4.0), Some(2000.0)),
                // The fine part's fifth interval alone: a partial point, with its length.
                (5000.0, 1.0, Some(5.0), Some(1000.0)),
            ]
        );
    }

    #[test]
    fn stalls_of_parts_add_up_and_keep_their_times_in_order() {
        use crate::model::Stall;
        let part = |at_ms: f64, ms: f64| ClientStalls {
            count: 2,
            longest_ms: ms,
            total_ms: 2.0 * ms,
            kept: vec![Stall { at_ms, ms }],
        };
        let merged = merged_stalls([part(500.0, 80.0), part(100.0, 300.0)].iter());
        assert_eq!(merged.count, 4);
        assert_eq!(merged.longest_ms, 300.0);
        assert_eq!(merged.total_ms, 760.0);
        // Each part kept one: the merge keeps as many, the earliest.
        assert_eq!(
            merged.kept,
            vec![Stall {
                at_ms: 100.0,
                ms: 300.0
            }]
        );
        assert!(!merged.all_kept());
    }
}
