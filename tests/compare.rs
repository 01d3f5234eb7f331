//! `stampede compare` on synthetic result directories: a slowdown is flagged, the same
//! build is not, runs of other scenarios are refused unless forced, and broken inputs are
//! clear errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod report_support;

use report_support::{run, stampede, write, HASH};
use stampede::model::Phase;
use stampede::results::compare::{expand, Verdict};
use stampede::results::{compare, CompareError, CompareOptions};
use std::path::PathBuf;
use std::time::Duration;

const TURNS: u64 = 3000;

fn dirs(root: &std::path::Path, name: &str, seeds: &[u64], slowdown: f64) -> Vec<PathBuf> {
    seeds
        .iter()
        .map(|s| {
            write(
                &root.join(name).join(format!("run-{s}")),
                &run(*s, TURNS, 20.0, slowdown),
            )
        })
        .collect()
}

fn row<'a>(
    c: &'a stampede::results::Comparison,
    metric: &str,
) -> &'a stampede::results::compare::Row {
    c.rows
        .iter()
        .find(|r| r.metric == metric)
        .unwrap_or_else(|| panic!("no row {metric}"))
}

#[test]
fn a_slower_new_is_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let new = dirs(tmp.path(), "new", &[2], 1.3);
    let c = compare(&base, &new, &CompareOptions::default()).unwrap();
    assert!(c.regressed());
    let turn = row(&c, "turn.p50");
    assert_eq!(turn.verdict, Verdict::Regression);
    assert!((turn.change.unwrap() - 0.3).abs() < 0.05, "{turn:?}");
    let flagged: Vec<&str> = c.regressions().map(|r| r.metric.as_str()).collect();
    assert!(flagged.contains(&"turn.p99"), "{flagged:?}");
    assert!(
        !flagged.iter().any(|m| m.ends_with(".max")),
        "max gates nothing by default: {flagged:?}"
    );
    assert!(!flagged.iter().any(|m| m.starts_with("generator_lag")));
    // One run a side: the drift between runs of one build is unknown, and it says so.
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("judged with one run on a side")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn the_same_build_is_not_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let new = dirs(tmp.path(), "new", &[2], 1.0);
    let c = compare(&base, &new, &CompareOptions::default()).unwrap();
    assert!(!c.regressed(), "{:#?}", c.regressions().collect::<Vec<_>>());
    // A run compared with itself is refused (every change would read 0), however its
    // path was written; runs on both sides of a larger comparison are counted.
    let same_run = |c: Result<stampede::results::Comparison, CompareError>| match c {
        Err(e @ CompareError::SameRuns(_)) => {
            let said = e.to_string();
            assert!(said.contains("BASE and NEW are the same run ("), "{said}");
            assert!(said.contains("every change would read 0"), "{said}");
        }
        other => panic!("not refused: {other:?}"),
    };
    same_run(compare(&base, &base, &CompareOptions::default()));
    assert!(
        c.warnings.iter().all(|w| !w.contains("same run")),
        "{:?}",
        c.warnings
    );
    let spelled = vec![base[0].join(".")];
    same_run(compare(&base, &spelled, &CompareOptions::default()));
    // Named twice on one side, or copied under another name: still one run.
    same_run(compare(
        &base,
        &[spelled[0].clone(), spelled[0].clone()],
        &CompareOptions::default(),
    ));
    let (code, _, err) = stampede(&[
        "compare",
        &base[0].display().to_string(),
        &spelled[0].display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    let copy = tmp.path().join("copy-of-base");
    std::fs::create_dir_all(&copy).unwrap();
    for file in ["summary.json", "histograms.json"] {
        std::fs::copy(base[0].join(file), copy.join(file)).unwrap();
    }
    same_run(compare(&base, &[copy], &CompareOptions::default()));
    let both = [base.clone(), new.clone()].concat();
    let overlap = compare(&both, &new, &CompareOptions::default()).unwrap();
    assert!(
        overlap
            .warnings
            .iter()
            .any(|w| w.starts_with("1 run is on both sides")),
        "{:?}",
        overlap.warnings
    );
}

#[test]
fn tiny_phases_do_not_cry_wolf() {
    // tcp_connect is ~40 µs with ±25% noise: the relative change is large, the absolute
    // change is below the noise floor.
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let new = dirs(tmp.path(), "new", &[9], 1.0);
    let c = compare(
        &base,
        &new,
        &CompareOptions {
            tolerance: 0.01,
            ..Default::default()
        },
    )
    .unwrap();
    let tcp: Vec<Verdict> = c
        .rows
        .iter()
        .filter(|r| r.phase == "tcp_connect")
        .map(|r| r.verdict)
        .collect();
    assert!(tcp.iter().all(|v| *v != Verdict::Regression), "{tcp:?}");
}

#[test]
fn several_runs_merge_and_their_spread_absorbs_noise() {
    let tmp = tempfile::tempdir().unwrap();
    // Run-to-run drift of a few percent among BASE's runs: NEW within it is no regression
    // (BASE's spread alone is the margin: NEW's own drift is what is tested).
    let mut base = dirs(tmp.path(), "base", &[1, 2], 1.0);
    base.extend(dirs(tmp.path(), "base2", &[3], 1.04));
    let new = dirs(tmp.path(), "new", &[4, 5, 6], 1.02);
    let c = compare(
        &base,
        &new,
        &CompareOptions {
            tolerance: 0.01,
            ..Default::default()
        },
    )
    .unwrap();
    let turn = row(&c, "turn.p50");
    assert!(turn.spread.unwrap() > 0.5, "{turn:?}");
    assert_ne!(turn.verdict, Verdict::Regression, "{turn:?}");
    assert_eq!((c.base_runs.len(), c.new_runs.len()), (3, 3));
    // A real slowdown still shows through the spread, and with several runs a side no
    // note says the drift is unknown.
    let slow = dirs(tmp.path(), "slow", &[7, 8, 9], 1.5);
    let c = compare(&base, &slow, &CompareOptions::default()).unwrap();
    assert!(c.regressed());
    assert!(
        !c.warnings.iter().any(|w| w.contains("one run on a side")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn per_metric_tolerance_overrides_the_default() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let new = dirs(tmp.path(), "new", &[2], 1.3);
    let opts = CompareOptions {
        per_metric: [("turn".to_string(), 0.5), ("first_event".to_string(), 0.5)].into(),
        ..Default::default()
    };
    let c = compare(&base, &new, &opts).unwrap();
    assert!(!c.regressed(), "{:#?}", c.regressions().collect::<Vec<_>>());
    assert_eq!(row(&c, "turn.p99").tolerance, 0.5);
}

#[test]
fn different_scenarios_are_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    // The same scenario, its file edited in a comment: other bytes, the same content.
    let mut commented = run(2, TURNS, 20.0, 1.0);
    commented.summary.scenario_hash = "e".repeat(64);
    let same = vec![write(&tmp.path().join("commented"), &commented)];
    assert!(compare(&base, &same, &CompareOptions::default()).is_ok());
    // A run written before the content was hashed: the bytes decide.
    commented.summary.scenario_content_hash = String::new();
    let legacy = vec![write(&tmp.path().join("legacy"), &commented)];
    assert!(compare(&base, &legacy, &CompareOptions::default()).is_err());
    let mut other = run(2, TURNS, 20.0, 1.0);
    other.summary.scenario_hash = "f".repeat(64);
    other.summary.scenario_content_hash = "f".repeat(64);
    other.summary.scenario = "burst".into();
    let new = vec![write(&tmp.path().join("other"), &other)];
    let err = compare(&base, &new, &CompareOptions::default()).unwrap_err();
    assert!(matches!(err, CompareError::DifferentScenarios { .. }));
    let message = err.to_string();
    assert!(
        message.contains("\"nightly\"")
            && message.contains("\"burst\"")
            && message.contains("--force"),
        "{message}"
    );
    let forced = compare(
        &base,
        &new,
        &CompareOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(forced.forced.is_some());
    assert!(!forced.regressed());
}

#[test]
fn a_corrupted_summary_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let new = dirs(tmp.path(), "new", &[2], 1.0);
    std::fs::write(new[0].join("summary.json"), "{ \"schema_version\": 1, ").unwrap();
    let message = compare(&base, &new, &CompareOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&new[0].join("summary.json").display().to_string()),
        "{message}"
    );
    std::fs::write(new[0].join("summary.json"), "{}").unwrap();
    assert!(compare(&base, &new, &CompareOptions::default()).is_err());
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let message = compare(&base, &[empty], &CompareOptions::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("not a result directory"), "{message}");
}

#[test]
fn globs_and_directories_of_runs_expand() {
    let tmp = tempfile::tempdir().unwrap();
    dirs(tmp.path(), "base", &[1, 2], 1.0);
    let pattern = format!("{}/base/run-*", tmp.path().display());
    assert_eq!(expand(&[pattern]).unwrap().len(), 2);
    let nothing = format!("{}/nope-*", tmp.path().display());
    assert!(matches!(expand(&[nothing]), Err(CompareError::NoMatch(_))));
    // results/<scenario>/ holds one directory per run: all of them count.
    let c = compare(
        &[tmp.path().join("base")],
        &[tmp.path().join("base/run-1/summary.json")],
        &Default::default(),
    )
    .unwrap();
    assert_eq!((c.base_runs.len(), c.new_runs.len()), (2, 1));
}

#[test]
fn the_binary_exits_1_on_regression_0_otherwise_2_on_other_scenarios() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let same = dirs(tmp.path(), "same", &[2], 1.0);
    let slow = dirs(tmp.path(), "slow", &[3], 1.5);
    let p = |v: &[PathBuf]| v[0].display().to_string();
    let (code, out, _) = stampede(&["compare", &p(&base), &p(&same)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("result: no regression"), "{out}");
    let (code, out, _) = stampede(&["compare", &p(&base), &p(&slow)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("REGRESSION") && out.contains("turn"), "{out}");
    let (code, out, _) = stampede(&[
        "compare",
        &p(&base),
        &p(&slow),
        "--tolerance",
        "10%",
        "--tolerance-for",
        "turn=80%",
        "--tolerance-for",
        "first_event=80%",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = stampede(&[
        "compare",
        "--base",
        &p(&base),
        "--base",
        &p(&same),
        "--new",
        &p(&slow),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 base runs vs 1 new run "), "{out}");
    let mut other = run(4, TURNS, 20.0, 1.0);
    other.summary.scenario_hash = "0".repeat(64);
    other.summary.scenario_content_hash = "0".repeat(64);
    let other = write(&tmp.path().join("other"), &other)
        .display()
        .to_string();
    let (code, _, err) = stampede(&["compare", &p(&base), &other]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("different scenarios"), "{err}");
    let (code, out, _) = stampede(&["compare", &p(&base), &other, "--force"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning:"), "{out}");
    let (code, _, err) = stampede(&["compare", &p(&base), &p(&same), "--tolerance", "10"]);
    assert_eq!(code, 2, "{err}");
    assert!(HASH.len() == 64);
}

/// Result files written by schema 1 (before counters were serialized as they are) still
/// read, and compare against themselves.
#[test]
fn schema_1_result_files_still_read() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v1");
    let run = stampede::results::read_run(&dir.join("golden-path/20261130T013129.310Z")).unwrap();
    let s = &run.summary;
    assert_eq!(s.schema_version, 1);
    assert_eq!(s.counters.attempted, 81);
    assert_eq!(s.counters.messages_received, 1321);
    assert!(
        (s.received_per_sec - 656.73).abs() < 0.01,
        "{}",
        s.received_per_sec
    );
    assert_eq!(s.stopped, stampede::model::StopReason::Duration);
    assert_eq!(
        s.counters.ended_by[&stampede::model::Cause::parse("interrupted")],
        33
    );
    assert!(!run.histograms.get(stampede::model::Phase::Turn).is_empty());
    let opts = CompareOptions::default();
    // `stampede report` renders it.
    let html = stampede::report::render_html(&run, None).unwrap();
    assert!(html.contains("golden-path"));
    let runs = dir.join("golden-path");
    let side = std::slice::from_ref(&runs);
    // Read on both sides (then refused: a run compared with itself says nothing).
    let c = compare(side, side, &opts);
    assert!(matches!(c, Err(CompareError::SameRuns(_))), "{c:?}");
}

/// `compare` takes the `--out` folders runs were written under (OUT/<scenario>/<run>/),
/// prints JSON on request, and says to quote a glob the shell expanded; `report` takes a
/// folder of runs and reports its newest.
#[test]
fn folders_of_runs_json_and_the_glob_hint() {
    let tmp = tempfile::tempdir().unwrap();
    for (side, seeds, slowdown) in [("base", [1, 2], 1.0), ("new", [3, 4], 1.5)] {
        for s in seeds {
            let dir = tmp
                .path()
                .join(side)
                .join("synthetic")
                .join(format!("2026010{s}T000000.000Z-0"));
            write(&dir, &run(s, TURNS, 20.0, slowdown));
        }
    }
    let (base, new) = (tmp.path().join("base"), tmp.path().join("new"));
    let (code, out, err) = stampede(&[
        "compare",
        base.to_str().unwrap(),
        new.to_str().unwrap(),
        "--json",
        "-q",
    ]);
    assert_eq!(code, 1, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["base_runs"].as_array().unwrap().len(), 2, "{json:#}");
    assert_eq!(json["new_runs"].as_array().unwrap().len(), 2);
    assert_eq!(json["regressed"], true);
    let turn = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "turn.p50")
        .unwrap();
    assert_eq!(turn["verdict"], "regression", "{turn:#}");
    assert!(
        (turn["change"].as_f64().unwrap() - 0.5).abs() < 0.05,
        "{turn:#}"
    );

    // What the shell makes of an unquoted `results/base/synthetic/*`.
    let runs: Vec<String> = std::fs::read_dir(base.join("synthetic"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let mut args = vec!["compare"];
    args.extend(runs.iter().map(String::as_str));
    args.push(new.to_str().unwrap());
    let (code, _, err) = stampede(&args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("got 3 paths") && err.contains("quote it"),
        "{err}"
    );

    let page = tmp.path().join("page.html");
    let (code, _, err) = stampede(&[
        "report",
        base.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("holds 2 runs") && err.contains("20260102T000000.000Z-0"),
        "{err}"
    );
    assert!(page.is_file());
    let (code, _, err) = stampede(&["report", &runs[0], &runs[1]]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("quote it"), "{err}");
}

/// A run in which every turn failed: handshake phases measured, no `turn` sample at all.
fn no_turns() -> report_support::Run {
    let mut h = stampede::metrics::Histograms::new();
    for i in 0..TURNS {
        let jitter = std::time::Duration::from_micros(i % 50);
        h.record(
            stampede::model::Phase::Upgrade,
            std::time::Duration::from_micros(400) + jitter,
        );
        h.record(
            stampede::model::Phase::FirstEvent,
            std::time::Duration::from_millis(4) + jitter,
        );
    }
    report_support::Run {
        summary: report_support::summary(&h, TURNS, "nightly", HASH),
        histograms: h,
        violations: Vec::new(),
        intervals: None,
    }
}

/// A `--tolerance-for` naming a phase neither side measured (no pings, a misspelled named
/// turn) cannot be checked: a usage error (exit 2) naming the metrics that exist, rather
/// than a regression or a pass in silence.
#[test]
fn a_gate_on_a_phase_neither_side_measured_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let new = dirs(tmp.path(), "new", &[2], 1.0);
    for key in ["pong.p99", "turn:nosuch"] {
        let gated = CompareOptions {
            per_metric: [(key.to_string(), 0.05)].into(),
            ..Default::default()
        };
        let refused = compare(&base, &new, &gated).unwrap_err();
        let said = refused.to_string();
        assert!(
            matches!(refused, CompareError::UnmeasuredGate { .. }),
            "{key}: {said}"
        );
        assert!(
            said.contains(key) && said.contains("they have: tcp_connect, upgrade"),
            "{said}"
        );
    }
    let p = |v: &[PathBuf]| v[0].display().to_string();
    let (code, _, err) = stampede(&[
        "compare",
        &p(&base),
        &p(&new),
        "--tolerance-for",
        "pong.p99=20%",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--tolerance-for pong.p99: no such metric"),
        "{err}"
    );
    // A gate on a phase both sides measured is checked as usual.
    let measured = CompareOptions {
        per_metric: [("turn.p99".to_string(), 0.5)].into(),
        ..Default::default()
    };
    assert!(!compare(&base, &new, &measured).unwrap().regressed());
}

/// A phase one side lacks is named in a warning, and fails the comparison when a
/// `--tolerance-for` gates it, whichever side lacks it.
#[test]
fn a_phase_one_side_lacks_is_shown_and_fails_its_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let new = vec![write(&tmp.path().join("new"), &no_turns())];
    let c = compare(&base, &new, &CompareOptions::default()).unwrap();
    let turn = c.missing.iter().find(|m| m.phase == "turn").unwrap();
    assert_eq!(
        (turn.lacking, turn.samples, &turn.gated_by),
        ("new", TURNS, &None)
    );
    assert!(!c.regressed(), "an ungated missing phase only warns");
    let gated = CompareOptions {
        per_metric: [("turn.p99".to_string(), 0.2)].into(),
        ..Default::default()
    };
    let c = compare(&base, &new, &gated).unwrap();
    assert!(c.regressed());
    let reverse = compare(&new, &base, &gated).unwrap();
    assert!(reverse.regressed());
    assert_eq!(reverse.missing_gated().next().unwrap().lacking, "base");

    let p = |v: &[PathBuf]| v[0].display().to_string();
    let (code, out, _) = stampede(&["compare", &p(&base), &p(&new)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: phase turn has 3000 samples on base and none on new"),
        "{out}"
    );
    let (code, out, _) = stampede(&[
        "compare",
        &p(&base),
        &p(&new),
        "--tolerance-for",
        "turn.p99=20%",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("turn missing from new"), "{out}");
    assert!(!out.contains("no regression"), "{out}");
    let (code, out, _) = stampede(&[
        "compare",
        &p(&base),
        &p(&new),
        "--tolerance-for",
        "turn.p99=20%",
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let turn = json["missing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["phase"] == "turn")
        .unwrap();
    assert_eq!(turn["gated_by"], "turn.p99", "{json:#}");
    assert_eq!(turn["lacking"], "new", "{json:#}");
}

/// A NEW run with violations against clean BASE runs is no pass, however fast it was.
#[test]
fn a_new_verdict_worse_than_a_clean_base_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let broken = report_support::with_violations(run(2, TURNS, 20.0, 1.0), 3);
    let new = vec![write(&tmp.path().join("new"), &broken)];
    let c = compare(&base, &new, &CompareOptions::default()).unwrap();
    let flagged: Vec<&str> = c.regressions().map(|r| r.metric.as_str()).collect();
    assert_eq!(flagged, ["violations"], "the timings alone are alike");
    assert_eq!(c.worse_verdicts.len(), 1);
    assert!(c.regressed());
    // Both sides with violations: the verdict did not get worse.
    let broken_too = report_support::with_violations(run(3, TURNS, 20.0, 1.0), 3);
    let also = vec![write(&tmp.path().join("also"), &broken_too)];
    let both = compare(&new, &also, &CompareOptions::default()).unwrap();
    assert!(both.worse_verdicts.is_empty() && !both.regressed());

    let p = |v: &[PathBuf]| v[0].display().to_string();
    let (code, out, _) = stampede(&["compare", &p(&base), &p(&new)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("verdict violations where every base run was clean"),
        "{out}"
    );
    assert!(!out.contains("no regression"), "{out}");
}

/// `n` of a run's connection attempts failed, and `unmet` of its expectations went unmet.
fn failing(seed: u64, n: u64, unmet: u64) -> report_support::Run {
    let mut run = run(seed, TURNS, 20.0, 1.0);
    let c = &mut run.summary.counters;
    c.accepted -= n;
    c.failed += n;
    c.expect.expectations_met -= unmet;
    run
}

/// A release as fast as the last but whose connections and expectations fail more often
/// is a regression: the error rows show both sides' shares with the change, and a worse
/// one fails the comparison as worse latency does; a few more failures than none, within
/// sampling noise, do not.
#[test]
fn a_new_whose_connections_or_expectations_fail_more_often_regresses() {
    let tmp = tempfile::tempdir().unwrap();
    let base = vec![write(&tmp.path().join("base"), &failing(1, 10, 30))];
    let new = vec![write(&tmp.path().join("new"), &failing(2, 40, 150))];
    let c = compare(&base, &new, &CompareOptions::default()).unwrap();
    let errors = row(&c, "errors.rate");
    assert_eq!((errors.base, errors.new), (0.01, 0.04), "{errors:?}");
    assert!((errors.change.unwrap() - 3.0).abs() < 1e-9, "{errors:?}");
    assert_eq!(errors.verdict, Verdict::Regression);
    let unmet = row(&c, "unmet.rate");
    assert_eq!((unmet.base, unmet.new), (0.01, 0.05), "{unmet:?}");
    assert_eq!(unmet.verdict, Verdict::Regression);
    assert_eq!(row(&c, "violations").verdict, Verdict::Unchanged);
    assert!(c.regressed());
    // The other way round it is an improvement; a tolerance for the row lets it pass.
    let back = compare(&new, &base, &CompareOptions::default()).unwrap();
    assert_eq!(row(&back, "errors.rate").verdict, Verdict::Improved);
    let lenient = CompareOptions {
        per_metric: [
            ("errors.rate".to_string(), 4.0),
            ("unmet.rate".to_string(), 5.0),
        ]
        .into(),
        ..Default::default()
    };
    assert!(!compare(&base, &new, &lenient).unwrap().regressed());
    // 2 failures in 1,000 attempts against none: within sampling noise.
    let clean = vec![write(&tmp.path().join("clean"), &failing(3, 0, 0))];
    let few = vec![write(&tmp.path().join("few"), &failing(4, 2, 0))];
    let c = compare(&clean, &few, &CompareOptions::default()).unwrap();
    assert_eq!(
        row(&c, "errors.rate").verdict,
        Verdict::WorseUngated("within sampling noise")
    );
    assert!(!c.regressed(), "{:#?}", c.regressions().collect::<Vec<_>>());

    let p = |v: &[PathBuf]| v[0].display().to_string();
    let (code, out, _) = stampede(&["compare", &p(&base), &p(&new)]);
    assert_eq!(code, 1, "{out}");
    let line = |start: &str| {
        out.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("errors"),
        "errors conn % 1.000 4.000 +300.0% - REGRESSION (tolerance 10%)"
    );
    assert_eq!(
        line("              unmet %"),
        "unmet % 1.000 5.000 +400.0% - REGRESSION (tolerance 10%)"
    );
    assert_eq!(line("violations"), "violations per run 0.000 0.000 - -");
    assert!(out.contains("errors.rate +300.0%"), "{out}");
    let (code, out, _) = stampede(&["compare", &p(&base), &p(&new), "--json"]);
    assert_eq!(code, 1, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let errors = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "errors.rate")
        .unwrap();
    assert_eq!(errors["unit"], "share", "{errors:#}");
    assert_eq!(errors["new"], 0.04, "{errors:#}");
    assert_eq!(errors["verdict"], "regression", "{errors:#}");
}

/// A `--workers` run keeps its shards beside the merged run (`<stamp>-workers/worker-i/`):
/// the glob the nightly scenario recommends (`DIR/*`) matches both, and each run counts
/// once, as the merged run alone; a shard named by its own folder still counts.
#[test]
fn a_workers_runs_shards_beside_its_merged_run_count_once() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("scale/s");
    let mut merged = run(1, TURNS, 20.0, 1.0);
    merged.summary.merged_from = Some(2);
    write(&runs.join("20260101T000001.000Z"), &merged);
    let mut shards = Vec::new();
    for i in 0..2u32 {
        let mut part = run(2 + u64::from(i), TURNS / 2, 20.0, 1.0);
        part.summary.shard = Some(stampede::model::Shard { index: i, count: 2 });
        let dir = runs.join(format!(
            "20260101T000000.000Z-workers/worker-{i}/s/20260101T000001.000Z"
        ));
        shards.push(write(&dir, &part));
    }
    let new = dirs(tmp.path(), "new", &[9], 1.0);
    let glob = expand(&[format!("{}/*", runs.display())]).unwrap();
    let c = compare(&glob, &new, &CompareOptions::default()).unwrap();
    assert_eq!(c.base_runs.len(), 1, "{:?}", c.base_runs);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("BASE: left out 2 shards of a split run")),
        "{:?}",
        c.warnings
    );
    // The scenario's folder and the merged run's `--out` folder, searched three levels
    // down (the shards lie deeper), count it once too, and say so as the glob does.
    for folder in [runs.clone(), tmp.path().join("scale")] {
        let c = compare(std::slice::from_ref(&folder), &new, &Default::default()).unwrap();
        assert_eq!(c.base_runs.len(), 1, "{folder:?}: {:?}", c.base_runs);
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("BASE: left out 2 shards of a split run")),
            "{folder:?}: {:?}",
            c.warnings
        );
    }
    // A shard named on its own is what was asked for: compared with the same slice of
    // another run, and refused against a whole run (merge the shards first).
    let mut other = run(12, TURNS / 2, 20.0, 1.0);
    other.summary.shard = Some(stampede::model::Shard { index: 0, count: 2 });
    let same_slice = vec![write(&tmp.path().join("other-shard"), &other)];
    let c = compare(&shards[..1], &same_slice, &Default::default()).unwrap();
    assert_eq!(c.base_runs, shards[..1].to_vec());
    let refused = compare(&shards[..1], &new, &Default::default()).unwrap_err();
    assert!(
        matches!(refused, CompareError::DifferentSlices(_))
            && refused.to_string().contains("stampede merge"),
        "{refused}"
    );
}

/// What keeps a comparison from judging is said on its result line, exit 8: a NEW side
/// whose only run was interrupted (it measured no load), and a phase whose median got
/// worse with too few samples to gate (a smoke scenario of a few users).
#[test]
fn what_kept_a_comparison_from_judging_is_on_its_result_line() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let mut cut = run(2, TURNS, 20.0, 1.0);
    cut.summary.stopped = stampede::model::StopReason::Interrupted;
    let cut = write(&tmp.path().join("cut"), &cut);
    let p = |v: &std::path::Path| v.display().to_string();
    let (code, out, _) = stampede(&["compare", &p(&base[0]), &p(&cut)]);
    assert_eq!(code, 8, "{out}");
    assert!(
        out.contains(
            "result: not judged: no new run left to compare: 1 run interrupted or measured nothing"
        ),
        "{out}"
    );
    // Five turns a side, the NEW ones 50% slower: too few to judge even the median.
    let thin_base = write(&tmp.path().join("thin-base"), &run(3, 5, 20.0, 1.0));
    let thin_new = write(&tmp.path().join("thin-new"), &run(4, 5, 20.0, 1.5));
    let (code, out, _) = stampede(&["compare", &p(&thin_base), &p(&thin_new)]);
    assert_eq!(code, 8, "{out}");
    assert!(
        out.contains("2 phases got worse with too few samples to judge (first_event, …"),
        "{out}"
    );
    assert!(
        out.contains("run more users or longer runs (exit 8)"),
        "{out}"
    );
}

/// A slower NEW run whose generator fell behind by as much as it got slower (its own
/// warning says its timings are not trustworthy) is no regression of the server's: its
/// worse latency rows are "not judged", and the comparison exits 8, not 1 (nor 0: nothing
/// was shown to be as fast). The same slowdown measured on schedule still exits 1, and a
/// finding that is no timing (violations) still gates beside a lagging client.
#[test]
fn a_new_run_whose_client_fell_behind_is_not_judged_a_regression() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let trusted = dirs(tmp.path(), "trusted", &[2], 1.5);
    // A lag large at every level: turn p50 grew by about 10 ms, its p90 by about 21 ms
    // and its p99 by about 45 ms, each within the lag it is compared with (p50 with the
    // lag's p50, the higher percentiles with its p99). A lag large only at p99 no longer
    // hides a grown p50 (see the test below).
    let lagging = lagging(run(3, TURNS, 20.0, 1.5), (15.0, 60.0, 80.0));
    let behind = vec![write(&tmp.path().join("behind"), &lagging)];

    let c = compare(&base, &behind, &CompareOptions::default()).unwrap();
    assert!(!c.regressed(), "{:?}", c.regressions().collect::<Vec<_>>());
    assert!(c.not_judged());
    for metric in ["turn.p50", "turn.p90", "turn.p99", "first_event.p50"] {
        assert_eq!(
            row(&c, metric).verdict,
            Verdict::NotJudged("the client fell behind"),
            "{metric}"
        );
    }
    let p = |v: &[PathBuf]| v[0].display().to_string();
    let (code, out, _) = stampede(&["compare", &p(&base), &p(&behind)]);
    assert_eq!(code, 8, "{out}");
    assert!(out.contains("the generator fell behind"), "{out}");
    assert!(
        out.contains(
            "worse, NOT JUDGED: the client fell behind (its lag p50 of 15.0 ms may explain it)"
        ),
        "{out}"
    );
    assert!(out.contains("result: not judged: "), "{out}");
    assert!(
        !out.contains("REGRESSION") && !out.contains("no regression"),
        "{out}"
    );
    let (code, json, _) = stampede(&["compare", &p(&base), &p(&behind), "--json"]);
    assert_eq!(code, 8, "{json}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["regressed"], false);
    assert_eq!(json["not_judged"], true);

    // The same slowdown on a client that kept its schedule is the server's.
    let (code, out, _) = stampede(&["compare", &p(&base), &p(&trusted)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("REGRESSION") && !out.contains("NOT JUDGED"),
        "{out}"
    );

    // A NEW run that ended client_limited (its failures the client's own limits) is not
    // judged either, where every BASE run was clean.
    let mut limited = run(4, TURNS, 20.0, 1.0);
    limited.summary.verdict = stampede::model::Verdict::ClientLimited;
    let limited = vec![write(&tmp.path().join("limited"), &limited)];
    let (code, out, _) = stampede(&["compare", &p(&base), &p(&limited)]);
    assert_eq!(code, 8, "{out}");
    assert!(out.contains("1 new run ended client_limited"), "{out}");

    // Violations are answers, not timings: they gate whatever the client's lag.
    let broken = report_support::with_violations(lagging, 3);
    let broken = vec![write(&tmp.path().join("broken"), &broken)];
    let (code, out, _) = stampede(&["compare", &p(&base), &p(&broken)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("violations"), "{out}");
}

/// `run` as a run whose generator fell behind by `(p50, p99, max)` ms of lag (p99 over the
/// 5 ms limit), as its summary.json would say.
fn lagging(mut run: report_support::Run, (p50, p99, max): (f64, f64, f64)) -> report_support::Run {
    let g = &mut run.summary.generator;
    g.fell_behind = true;
    (g.lag_p50_ms, g.lag_p99_ms, g.lag_max_ms) = (p50, p99, max);
    // The lag histogram says the same (compare reads each row's own level from it): 890
    // lags at p50, 100 at p99 (so p90 and p99 read p99's), 10 at max (p99.9 and max); the
    // run's other phases as they were.
    let mut h = stampede::metrics::Histograms::new();
    for phase in Phase::ALL.iter().filter(|p| **p != Phase::GeneratorLag) {
        h.add(*phase, run.histograms.get(*phase));
    }
    let ms = |v: f64| Duration::from_secs_f64(v / 1000.0);
    for (value, times) in [(p50, 890), (p99, 100), (max, 10)] {
        for _ in 0..times {
            h.record(Phase::GeneratorLag, ms(value));
        }
    }
    run.histograms = h;
    run
}

/// NEW runs whose client fell behind by a few milliseconds (lag p99 5.8 and 6.5 ms, just
/// over the limit) cannot explain a turn p50 10 ms and a p99 45 ms slower: those rows gate
/// (exit 1) and say that they grew beyond the lag. The throughput of such a client is still
/// not judged: it sent what it managed to. Before the fix every timing row of a NEW side
/// with any lagging run was "not judged" and the comparison exited 8.
#[test]
fn a_slowdown_larger_than_the_clients_lag_is_a_regression() {
    let tmp = tempfile::tempdir().unwrap();
    let base: Vec<PathBuf> = [1, 2]
        .into_iter()
        .map(|seed| {
            let mut on_time = run(seed, TURNS, 20.0, 1.0);
            on_time.summary.received_per_sec = 1800.0;
            write(
                &tmp.path().join("base").join(format!("run-{seed}")),
                &on_time,
            )
        })
        .collect();
    let new: Vec<PathBuf> = [(3, 0.4, 5.8, 7.0), (4, 0.5, 6.5, 9.0)]
        .into_iter()
        .map(|(seed, p50, p99, max)| {
            let mut slow = lagging(run(seed, TURNS, 20.0, 1.5), (p50, p99, max));
            // Half BASE's throughput: what the lagging client managed to send.
            slow.summary.received_per_sec = 900.0;
            write(&tmp.path().join("new").join(format!("run-{seed}")), &slow)
        })
        .collect();

    let c = compare(&base, &new, &CompareOptions::default()).unwrap();
    assert!(c.regressed(), "{:#?}", c.rows);
    assert!(!c.not_judged());
    let p50 = row(&c, "turn.p50");
    assert_eq!(p50.verdict, Verdict::Regression, "{p50:?}");
    // The worst lagging run's lag, at the row's level.
    let lag = p50.client_lag.unwrap();
    assert_eq!((lag.stat, lag.ms), ("p50", 0.5));
    let p99 = row(&c, "turn.p99");
    assert_eq!(p99.verdict, Verdict::Regression, "{p99:?}");
    // Read from the lag histogram: within its 3 significant digits.
    assert_eq!(
        p99.client_lag
            .map(|l| (l.stat, (l.ms * 10.0).round() / 10.0)),
        Some(("p99", 6.5))
    );
    assert_eq!(
        row(&c, "received_per_sec").verdict,
        Verdict::NotJudged("the client fell behind")
    );

    let folder = tmp.path().join("new").display().to_string();
    let base = tmp.path().join("base").display().to_string();
    let (code, out, _) = stampede(&["compare", &base, &folder]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("REGRESSION (tolerance 10%; beyond the client's lag p50 of 0.5 ms)"),
        "{out}"
    );
    assert!(
        out.contains("REGRESSION (tolerance 10%; beyond the client's lag p99 of 6.5 ms)"),
        "{out}"
    );
    assert!(
        out.contains("result: ") && out.contains("turn.p50 +"),
        "{out}"
    );
    assert!(!out.contains("result: not judged"), "{out}");
    let (code, json, _) = stampede(&["compare", &base, &folder, "--json"]);
    assert_eq!(code, 1, "{json}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let p50 = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "turn.p50")
        .unwrap();
    assert_eq!(p50["verdict"], "regression", "{p50:#}");
    assert_eq!(p50["client_lag"]["stat"], "p50", "{p50:#}");
    assert_eq!(p50["client_lag"]["ms"], 0.5, "{p50:#}");
    assert_eq!(json["regressed"], true);
    assert_eq!(json["not_judged"], false);
}

/// A latency increase the client's lag explains is not judged (exit 8); the same increase
/// beside a smaller lag is the server's (exit 1). The line between them is the lag, less
/// nothing: NEW less the lag must still be worse than BASE beyond the tolerance.
#[test]
fn a_slowdown_within_the_clients_lag_is_not_judged() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let p = |dir: &std::path::Path| dir.display().to_string();
    // Turn p50 grows by about 10 ms (20 to 30 ms), first_event p50 by about 2 ms.
    let within = write(
        &tmp.path().join("within"),
        &lagging(run(2, TURNS, 20.0, 1.5), (12.0, 60.0, 80.0)),
    );
    let c = compare(
        &base,
        std::slice::from_ref(&within),
        &CompareOptions::default(),
    )
    .unwrap();
    assert!(!c.regressed(), "{:#?}", c.regressions().collect::<Vec<_>>());
    assert!(c.not_judged());
    assert_eq!(
        row(&c, "turn.p50").verdict,
        Verdict::NotJudged("the client fell behind")
    );
    let (code, out, _) = stampede(&["compare", &p(&base[0]), &p(&within)]);
    assert_eq!(code, 8, "{out}");
    assert!(out.contains("result: not judged: "), "{out}");

    // The same runs with a lag p50 of 5 ms: 5 of the 10 ms are still the server's, more
    // than the 10% tolerance (2 ms) of the 20 ms base.
    let beyond = write(
        &tmp.path().join("beyond"),
        &lagging(run(2, TURNS, 20.0, 1.5), (5.0, 60.0, 80.0)),
    );
    let c = compare(
        &base,
        std::slice::from_ref(&beyond),
        &CompareOptions::default(),
    )
    .unwrap();
    let flagged: Vec<&str> = c.regressions().map(|r| r.metric.as_str()).collect();
    // first_event grew by 2 ms, within the 5 ms lag; the higher percentiles within 60 ms.
    assert_eq!(flagged, ["turn.p50"], "{:#?}", c.rows);
    assert_eq!(
        row(&c, "first_event.p50").verdict,
        Verdict::NotJudged("the client fell behind")
    );
    let (code, out, _) = stampede(&["compare", &p(&base[0]), &p(&beyond)]);
    assert_eq!(code, 1, "{out}");
}

/// The reviewer's case: a NEW folder whose one on-time run shows a slower server exits 1;
/// adding a second run of the same slow server whose client fell behind by a little must
/// not weaken that to "not judged" (exit 8): more evidence of the same slowdown is no
/// reason to judge less. Before the fix one lagging run made every timing row of the
/// pooled NEW side "not judged".
#[test]
fn a_lagging_run_beside_an_on_time_one_does_not_hide_a_regression() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let folder = tmp.path().join("new");
    write(&folder.join("run-2"), &run(2, TURNS, 20.0, 3.0));
    let (base, new) = (p(&base[0]), p(&folder));
    let (code, out, _) = stampede(&["compare", &base, &new]);
    assert_eq!(code, 1, "{out}");

    write(
        &folder.join("run-3"),
        &lagging(run(3, TURNS, 20.0, 3.0), (0.5, 6.5, 9.0)),
    );
    let (code, out, _) = stampede(&["compare", &base, &new]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 new runs"), "{out}");
    assert!(out.contains("the generator fell behind"), "{out}");
    assert!(
        out.contains("REGRESSION (tolerance 10%; beyond the client's lag p50 of 0.5 ms)"),
        "{out}"
    );
    assert!(!out.contains("result: not judged"), "{out}");
}

/// A BASE that never exercised the target (every run of it TARGET UNUSABLE: a closed port)
/// is no baseline: the comparison is not judged (exit 8), never "no regression" (exit 0),
/// and says why. A NEW side that never exercised it is still a regression beside a clean
/// BASE.
#[test]
fn a_base_that_never_exercised_the_target_is_no_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dead = run(1, TURNS, 20.0, 1.0);
    dead.summary.verdict = stampede::model::Verdict::TargetUnusable;
    let dead = write(&tmp.path().join("dead"), &dead);
    let good = write(&tmp.path().join("good"), &run(2, TURNS, 20.0, 1.0));
    let (code, out, _) = stampede(&["compare", &p(&dead), &p(&good)]);
    assert_eq!(code, 8, "{out}");
    assert!(
        out.contains(
            "result: not judged: no base run exercised the target (verdict target_unusable)"
        ),
        "{out}"
    );
    let (code, out, _) = stampede(&["compare", &p(&good), &p(&dead)]);
    assert_eq!(code, 1, "{out}");
}

/// A regression whose stdout reader left early (`compare … | head -1`) still exits 1: it
/// exited 0, a broken pipe read as "done", and a CI gate went green.
#[test]
fn a_regression_exits_1_when_its_stdout_reader_left() {
    let tmp = tempfile::tempdir().unwrap();
    let base = dirs(tmp.path(), "base", &[1], 1.0);
    let new = write(&tmp.path().join("new"), &run(2, TURNS, 20.0, 3.0));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["compare", &p(&base[0]), &p(&new)])
        .stdout(report_support::closed_stdout())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
}

/// A stderr whose reader is gone (`compare … 2>&1 | head -1` once its line came) costs
/// the lines written there, not the command: a regression still exits 1 (a line to stderr
/// panicked, exit 101). Here the warning of a skipped run folder goes to it first.
#[test]
fn a_regression_exits_1_when_its_stderr_reader_left() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base").join("synthetic");
    write(
        &base.join("20260101T000000.000Z"),
        &run(1, TURNS, 20.0, 1.0),
    );
    report_support::killed_run(&base.join("20260102T000000.000Z"));
    let new = write(&tmp.path().join("new"), &run(2, TURNS, 20.0, 3.0));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["compare", &p(&base), &p(&new)])
        .stderr(report_support::closed_stdout())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("regress"), "{said}");
}

fn p(dir: &std::path::Path) -> String {
    dir.display().to_string()
}

/// Under `dir`, a BASE and a NEW scenario folder (`base/synthetic/`, `new/synthetic/`),
/// each holding one run of the same build, as `--out` lays runs out.
fn scenario_folders(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let base = dir.join("base").join("synthetic");
    let new = dir.join("new").join("synthetic");
    write(
        &base.join("20260101T000000.000Z"),
        &run(1, TURNS, 20.0, 1.0),
    );
    write(&new.join("20260102T000000.000Z"), &run(2, TURNS, 20.0, 1.0));
    (base, new)
}

/// A run folder in BASE's folder that holds no `summary.json` (a run killed before it
/// wrote its results: only its streamed `intervals.hlog`) is named on stderr as skipped and
/// the rest are compared; a side left with nothing readable is a usage error naming it.
#[test]
fn a_run_folder_without_its_summary_is_said_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, new) = scenario_folders(tmp.path());
    let killed = base.join("20260103T000000.000Z");
    let skipped = report_support::killed_run(&killed);

    let (code, out, err) = stampede(&["compare", &p(&base), &p(&new), "--json", "-q"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["base_runs"].as_array().unwrap().len(), 1, "{json:#}");
    assert!(err.contains(&format!("warning: {skipped}")), "{err}");

    // A folder on both sides (beside another run): its stopped run is said once.
    let (code, _, err) = stampede(&[
        "compare",
        "--base",
        &p(&base),
        "--new",
        &p(&base),
        "--new",
        &p(&new),
        "-q",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("skipped").count(), 1, "{err}");

    // Nothing readable left on a side: exit 2 (as other usage errors), the folder named.
    let only_killed = tmp.path().join("only-killed");
    std::fs::create_dir_all(&only_killed).unwrap();
    std::fs::rename(&killed, only_killed.join("20260103T000000.000Z")).unwrap();
    let (code, _, err) = stampede(&["compare", &p(&only_killed), &p(&new)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no base run left to compare")
            && err.contains("20260103T000000.000Z: no summary.json"),
        "{err}"
    );
}

/// `compare --json` lists the run folders it skipped for want of a `summary.json` under
/// `skipped` (path and reason), as stderr names them, so a reader of stdout alone knows the
/// verdict rests on fewer runs; the list is empty when nothing was skipped.
#[test]
fn the_json_lists_the_run_folders_it_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, new) = scenario_folders(tmp.path());

    let (code, out, err) = stampede(&["compare", &p(&base), &p(&new), "--json", "-q"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["skipped"], serde_json::json!([]), "{json:#}");

    let killed = new.join("20260103T000000.000Z");
    report_support::killed_run(&killed);
    let (code, out, err) = stampede(&["compare", &p(&base), &p(&new), "--json", "-q"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json["skipped"],
        serde_json::json!([{
            "path": p(&killed),
            "reason": report_support::NO_SUMMARY,
        }]),
        "{json:#}"
    );
}
