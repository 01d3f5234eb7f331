//! The nightly job is one command: `stampede run scenarios/nightly.toml --junit FILE` exits 0
//! against the correct (built-in) server, with every threshold met, the JUnit file written,
//! the interval log and time series in the result directory, and progress lines on a
//! non-terminal stderr. Trimmed with `--duration 12s` (the full plan takes about 30 s),
//! which still reaches every group: the slow readers, the paced group and the burst at 8 s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BOUND: Duration = Duration::from_secs(60);

fn stampede(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(BOUND) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // Bounded: a hung run is killed and fails the test instead of hanging it.
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("stampede {args:?} ran past {BOUND:?}");
        }
    }
}

fn only_run_dir(base: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(base.join("nightly"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.into_iter().next().unwrap()
}

/// Sample counts per tag in an interval log, and how many histograms it holds.
fn read_hlog(path: &Path) -> (BTreeMap<String, u64>, usize) {
    let bytes = std::fs::read(path).unwrap();
    let mut counts = BTreeMap::new();
    let mut histograms = 0;
    for entry in IntervalLogIterator::new(&bytes) {
        let LogEntry::Interval(h) = entry.unwrap() else {
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.encoded_histogram())
            .unwrap();
        let hist: hdrhistogram::Histogram<u64> = Deserializer::new()
            .deserialize(&mut raw.as_slice())
            .unwrap();
        *counts
            .entry(h.tag().unwrap().as_str().to_string())
            .or_default() += hist.len();
        histograms += 1;
    }
    (counts, histograms)
}

#[test]
fn the_nightly_scenario_cut_short_meets_its_thresholds_but_is_incomplete() {
    // The plan needs ~30 s; cut at 12 s it meets every threshold, yet what did not run
    // proves nothing: the verdict is incomplete (exit 7), in the console and in JUnit.
    let tmp = tempfile::tempdir().unwrap();
    let (out, junit) = (tmp.path().join("results"), tmp.path().join("ci/junit.xml"));
    let run = stampede(&[
        "run",
        "scenarios/nightly.toml",
        "--duration",
        "12s",
        "--out",
        out.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(7), "{stdout}\n{stderr}");
    assert!(stdout.contains("violations   none"), "{stdout}");
    assert!(stdout.contains("thresholds   all 6 met"), "{stdout}");
    assert!(
        stdout.contains("verdict      INCOMPLETE: the duration ran out"),
        "{stdout}"
    );
    // Not a terminal: plain progress lines every 5 s, never a bar's escape codes; the
    // run's seconds count from the load's start, after calibration.
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("progress  ") && l.contains("s of 12s · ")),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    // 3 built-in oracles + the session oracles that are on, 6 thresholds, the verdict.
    assert!(xml.contains("failures=\"0\" errors=\"1\""), "{xml}");
    assert!(xml.contains("<error type=\"incomplete\""), "{xml}");
    assert!(xml.contains("name=\"turn.p99 &lt; 1s\""), "{xml}");

    let dir = only_run_dir(&out);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let intervals: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("intervals.json")).unwrap()).unwrap();
    let series = intervals["series"].as_array().unwrap();
    assert_eq!(intervals["interval_ms"], 1000.0);
    assert!(
        (12..=14).contains(&series.len()),
        "{} intervals",
        series.len()
    );
    let t: Vec<f64> = series.iter().map(|p| p["t_ms"].as_f64().unwrap()).collect();
    assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
    // Per-interval counts add up to the run's totals.
    for (field, total) in [("sent", "messages_sent"), ("received", "messages_received")] {
        let sum: u64 = series.iter().map(|p| p[field].as_u64().unwrap()).sum();
        assert_eq!(sum, summary["counters"][total].as_u64().unwrap(), "{field}");
    }
    assert!(
        series.iter().any(|p| p["live"].as_i64().unwrap() > 10),
        "{series:?}"
    );

    // The interval log holds every sample of every phase, tagged with the phase.
    let (counts, histograms) = read_hlog(&dir.join("intervals.hlog"));
    for phase in ["tcp_connect", "upgrade", "turn", "turn_raw"] {
        let expected = summary["phases"][phase]["count"].as_u64().unwrap();
        assert_eq!(
            counts.get(phase).copied(),
            Some(expected),
            "{phase}: {counts:?}"
        );
    }
    assert!(histograms >= 12 * 4, "{histograms} histograms");
}

#[test]
fn quiet_prints_nothing_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tiny.toml");
    std::fs::write(
        &file,
        r#"
name = "tiny"
duration = "10s"
[[group]]
name = "one"
users = 2
steps = [{ expect = "connection_established", within = "5s" }, { close = 1000 }]
"#,
    )
    .unwrap();
    let quiet = stampede(&["run", file.to_str().unwrap(), "--no-results", "--quiet"]);
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("accepted 2"));
    let loud = stampede(&["run", file.to_str().unwrap(), "--no-results"]);
    assert!(String::from_utf8_lossy(&loud.stderr).contains("no target given"));
}
