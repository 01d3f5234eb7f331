//! Synthetic result directories for the compare and report tests: the files a run writes,
//! made from hand-built summaries and deterministic histograms, with no network.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use stampede::metrics::{Histograms, PhaseStats};
use stampede::model::Phase;
use stampede::model::{OracleKind, Violation};
use stampede::results::{Summary, SCHEMA_VERSION};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const HASH: &str = "5ce7a7105ce7a7105ce7a7105ce7a7105ce7a7105ce7a7105ce7a7105ce7a710";

/// One synthetic run.
pub struct Run {
    pub summary: Summary,
    pub histograms: Histograms,
    pub violations: Vec<Violation>,
    pub intervals: Option<String>,
}

/// `turns` turn samples around `turn_ms` (times `slowdown`), plus small handshake phases;
/// `seed` varies the noise so that two runs are alike but not identical.
pub fn run(seed: u64, turns: u64, turn_ms: f64, slowdown: f64) -> Run {
    let mut h = Histograms::new();
    let mut rng = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut noise = move || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((rng >> 33) as f64 / (1u64 << 31) as f64) - 0.5
    };
    for i in 0..turns {
        let u = (i as f64 + 0.5) / turns as f64;
        let shape = 1.0 + 4.0 * u.powi(12);
        let turn = turn_ms * slowdown * shape * (1.0 + 0.02 * noise());
        h.record(Phase::Turn, Duration::from_secs_f64(turn / 1000.0));
        h.record(Phase::FirstEvent, Duration::from_secs_f64(turn / 5000.0));
        if i % 3 == 0 {
            h.record(
                Phase::TcpConnect,
                Duration::from_micros((40.0 * shape * (1.0 + 0.5 * noise())) as u64 + 1),
            );
            h.record(
                Phase::Upgrade,
                Duration::from_micros((400.0 * shape * (1.0 + 0.05 * noise())) as u64),
            );
        }
        h.record(
            Phase::GeneratorLag,
            Duration::from_micros((300.0 * shape) as u64),
        );
    }
    let summary = summary(&h, turns, "nightly", HASH);
    Run {
        summary,
        histograms: h,
        violations: Vec::new(),
        intervals: None,
    }
}

/// A summary consistent with `h`. Built from JSON so that summary fields added later with
/// a serde default need no change here.
pub fn summary(h: &Histograms, turns: u64, scenario: &str, hash: &str) -> Summary {
    let conns = turns / 3;
    let phases: serde_json::Map<String, serde_json::Value> = Phase::ALL
        .iter()
        .filter(|p| !h.get(**p).is_empty())
        .map(|p| {
            (
                p.name().to_string(),
                serde_json::to_value(PhaseStats::of(h.get(*p))).unwrap(),
            )
        })
        .collect();
    let json = serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "tool_version": "0.1.0",
        "scenario": scenario,
        "scenario_hash": hash,
        "scenario_content_hash": hash,
        "seed": 1,
        "plan_hash": "ab".repeat(32),
        "target": "ws://127.0.0.1:9/ws",
        "embedded_target": false,
        "started_at": "2025-03-01T02:00:00+00:00",
        "elapsed_ms": 10_000.0,
        "duration_ms": 30_000.0,
        "stopped": "completed",
        "connections_planned": conns,
        "counters": {
            "attempted": conns, "accepted": conns, "rejected": 0, "failed": 0,
            "refused_by": {}, "ended_by": { "client_close_1000": conns },
            "messages_sent": turns, "messages_received": turns * 6, "bytes_received": turns * 600,
            "received_per_sec": turns as f64 * 6.0 / 10.0,
            "non_json_frames": 0, "binary_frames": 0,
            "expectations": turns, "expectations_met": turns, "expectations_errored": 0, "expectations_cut": 0,
            "buffer_overflows": 0, "task_failures": 0
        },
        "phases": phases,
        "events": { "agent_completed": { "expected": turns, "arrived": turns, "rate": 1.0 } },
        "violations": { "total": 0, "by_oracle": {}, "first": [] },
        "generator": { "lag_p50_ms": 0.3, "lag_p99_ms": 1.2, "lag_max_ms": 1.5, "fell_behind": false }
    });
    match serde_json::from_value(json) {
        Ok(summary) => summary,
        Err(e) => panic!("the test summary no longer matches report::Summary: {e}"),
    }
}

/// Adds `n` violations spread over the run, to the summary and to violations.jsonl.
pub fn with_violations(mut run: Run, n: usize) -> Run {
    let oracles = [
        OracleKind::Completeness,
        OracleKind::Identity,
        OracleKind::Ordering,
    ];
    for i in 0..n {
        let oracle = oracles[i % 3];
        // JSON, so that violation fields added later with a serde default need no change.
        let violation = serde_json::json!({
            "oracle": oracle,
            "conn": i,
            "user": i / 2,
            "group": "chatters",
            "jti": format!("jti-{i:04}"),
            "at_ms": 150.0 + i as f64 * 9_000.0 / n as f64,
            "expected": format!("agent_completed for run-{i}-1"),
            "seen": "close 1011 <boom> & \"gone\"",
            "correlation": format!("run-{i}-1"),
        });
        run.violations
            .push(serde_json::from_value(violation).unwrap());
        *run.summary.violations.by_oracle.entry(oracle).or_default() += 1;
    }
    run.summary.violations.total = n as u64;
    run.summary.verdict = stampede::model::Verdict::Violations;
    run.summary.violations.first = run.violations.iter().take(100).cloned().collect();
    run
}

/// A ten-second `intervals.json`.
pub fn with_intervals(mut run: Run) -> Run {
    let series: Vec<String> = (0..10)
        .map(|t| {
            let p99 = if t == 0 { "null".to_string() } else { format!("{}", 20 + t) };
            format!(r#"{{"t_ms":{},"live":{},"sent":{},"received":{},"violations":0,"turn_p99_ms":{p99}}}"#, t * 1000, t * 10, 30, 180)
        })
        .collect();
    run.intervals = Some(format!(
        r#"{{"interval_ms":1000,"series":[{}]}}"#,
        series.join(",")
    ));
    run
}

/// Writes the run's files into `dir` as `stampede run` lays them out.
pub fn write(dir: &Path, run: &Run) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_vec_pretty(&run.summary).unwrap(),
    )
    .unwrap();
    let histograms = serde_json::json!({
        "encoding": "hdrhistogram-v2-deflate-base64",
        "unit": "microseconds",
        "phases": run.histograms.encode(),
    });
    std::fs::write(
        dir.join("histograms.json"),
        serde_json::to_vec(&histograms).unwrap(),
    )
    .unwrap();
    let lines: String = run
        .violations
        .iter()
        .map(|v| serde_json::to_string(v).unwrap() + "\n")
        .collect();
    std::fs::write(dir.join("violations.jsonl"), lines).unwrap();
    if let Some(intervals) = &run.intervals {
        std::fs::write(dir.join("intervals.json"), intervals).unwrap();
    }
    dir.to_path_buf()
}

/// What `compare`, `merge` and `report` say of a run folder they skip for want of its
/// `summary.json`: the reason, and the warning line naming `dir`.
pub const NO_SUMMARY: &str = "no summary.json (a run stopped before it wrote its results?)";

/// A run killed before it wrote its results, in `dir`: only the `intervals.hlog` a run
/// opens when it starts. Returns the line that names it as skipped
/// (`skipped DIR: no summary.json (…)`, after `warning: ` on stderr).
pub fn killed_run(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("intervals.hlog"), "#[StartTime: 0]\n").unwrap();
    format!("skipped {}: {NO_SUMMARY}", dir.display())
}

/// The `warnings` a result directory's `summary.json` records (JSON null when absent).
pub fn recorded_warnings(dir: &Path) -> serde_json::Value {
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    summary["warnings"].clone()
}

/// The `stampede` binary with `args`: (exit code, stdout, stderr).
/// A stdout whose reader is already gone (`… | head -1` after its line, `| grep -m1`):
/// the other end of a socket pair, closed.
pub fn closed_stdout() -> std::process::Stdio {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
    drop(ours);
    std::process::Stdio::from(std::os::fd::OwnedFd::from(theirs))
}

pub fn stampede(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}
