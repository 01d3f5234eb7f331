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

/// Runs the scenario against the built-in server: (exit code, stdout, JUnit XML).
fn run(thresholds: &str) -> (i32, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario(thresholds)).unwrap();
    let junit = tmp.path().join("ci/junit.xml");
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--no-results",
            "--junit",
            junit.to_str().unwrap(),
        ])
        .output()
        .unwrap();
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
