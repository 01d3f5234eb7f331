//! `stampede run` with `[thresholds]` and `--junit`: a breach prints one line, lands in the
//! JUnit file and turns a clean run's exit code into 1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn scenario(thresholds: &str) -> String {
    format!(
        r#"
name = "thresholds-cli"
duration = "20s"

[[group]]
name = "chatters"
users = 5
arrival = {{ ramp = "100ms" }}
steps = [
  {{ expect = "connection_established", within = "5s" }},
  {{ send = {{ type = "user_message", run_id = "run-{{{{conn}}}}-{{{{run}}}}", content = "hi" }} }},
  {{ expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "5s" }},
  {{ close = 1000 }},
]

[thresholds]
{thresholds}
"#
    )
}

/// The `stampede` binary run with `args`, its output collected.
fn stampede(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs the scenario against the built-in server: (exit code, stdout, JUnit XML).
fn run(thresholds: &str) -> (i32, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario(thresholds)).unwrap();
    let junit = tmp.path().join("ci/junit.xml");
    let out = stampede(&[
        "run",
        file.to_str().unwrap(),
        "--no-results",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let xml =
        std::fs::read_to_string(&junit).unwrap_or_else(|e| panic!("no JUnit file ({e}): {stderr}"));
    (out.status.code().unwrap_or(-1), stdout, xml)
}

#[test]
fn met_thresholds_exit_0() {
    let (code, stdout, xml) =
        run("violations = \"== 0\"\n\"turn.p99\" = \"< 10s\"\n\"errors.rate\" = \"< 1%\"");
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("thresholds   all 3 met"), "{stdout}");
    // Five oracles were on (completeness and the session oracles), three thresholds, the verdict.
    assert!(
        xml.contains("tests=\"9\" failures=\"0\" errors=\"0\""),
        "{xml}"
    );
}

#[test]
fn a_breach_prints_a_line_fails_junit_and_exits_1() {
    let (code, stdout, xml) = run("\"turn.p50\" = \"< 1us\"\nviolations = \"== 0\"");
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("thresholds   1 of 2 breached"), "{stdout}");
    assert!(
        stdout.contains("turn.p50 = ") && stdout.contains("limit < 1us: BREACHED"),
        "{stdout}"
    );
    assert!(
        xml.contains("tests=\"8\" failures=\"1\" errors=\"0\""),
        "{xml}"
    );
    assert!(xml.contains("name=\"turn.p50 &lt; 1us\""), "{xml}");
}

/// Against a closed port nothing was exercised: the run exits 5 (target unusable), and its
/// thresholds are not judged in any output: not "BREACHED" on the console, `"judged":
/// false` in `--json`, `<skipped>` in JUnit.
#[test]
fn thresholds_of_an_unusable_target_are_not_judged_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario("\"turn.p99\" = \"< 10s\"")).unwrap();
    let junit = tmp.path().join("junit.xml");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            file.to_str().unwrap(),
            "--no-results",
            "--no-learn",
            "--target",
            "ws://127.0.0.1:1/ws",
            "--junit",
            junit.to_str().unwrap(),
        ];
        args.extend(extra);
        stampede(&args)
    };
    let text = run(&[]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(5), "{stdout}");
    assert!(
        stdout.contains("thresholds   not judged: the run could not exercise the target"),
        "{stdout}"
    );
    assert!(!stdout.contains("BREACHED"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<skipped") && !xml.contains("BREACHED"),
        "{xml}"
    );
    let json = run(&["--json", "-q"]);
    let s: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let t = &s["thresholds"][0];
    assert_eq!(t["judged"], false, "{s:#}");
    assert_eq!(t["passed"], false, "{s:#}");
    assert!(!t["message"].as_str().unwrap().contains("BREACHED"), "{t}");
}

/// `merge` without `--scenario` judges the thresholds the runs recorded again on the
/// merged result, and says so: a merge of a breached run fails as the run did, not a
/// clean pass; with `--scenario`, the file's thresholds fail it the same way, unsaid.
#[test]
fn merge_judges_the_runs_thresholds_again() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario("\"turn.p50\" = \"< 1us\"")).unwrap();
    let results = tmp.path().join("results");
    let run = stampede(&[
        "run",
        file.to_str().unwrap(),
        "-q",
        "--out",
        results.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1), "a breached run");
    let dir = std::fs::read_dir(results.join("thresholds-cli"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let merged = tmp.path().join("merged");
    let without = stampede(&[
        "merge",
        dir.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&without.stderr);
    assert_eq!(without.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the thresholds the runs were judged by (1, as their summary.json"),
        "{err}"
    );
    // A folder of its own: a merge writes only into a new or empty one.
    let merged_again = tmp.path().join("merged-with-scenario");
    let with = stampede(&[
        "merge",
        dir.to_str().unwrap(),
        "-q",
        "--scenario",
        file.to_str().unwrap(),
        "-o",
        merged_again.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&with.stderr);
    assert_eq!(with.status.code(), Some(1), "{err}");
    assert!(!err.contains("judged again"), "{err}");
}

/// A clean run with a breached threshold exits 1; `--json` and summary.json say so in
/// `passed` beside the verdict (`clean`), so `jq -e .passed` gates a job as the exit code.
#[test]
fn a_breach_beside_a_clean_verdict_is_not_passed_in_the_json() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario("\"turn.p50\" = \"< 1us\"")).unwrap();
    let out_dir = tmp.path().join("out");
    let out = stampede(&[
        "run",
        file.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
        "--json",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary_file = glob::glob(&format!("{}/*/*/summary.json", out_dir.display()))
        .unwrap()
        .flatten()
        .next()
        .expect("a summary.json");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary_file).unwrap()).unwrap();
    for s in [printed, written] {
        assert_eq!(s["verdict"], "clean", "{s:#}");
        assert_eq!(s["passed"], false, "{s:#}");
    }
}
