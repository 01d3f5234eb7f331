//! `stampede serve --public-key FILE --aud X --iss Y`: the binary verifies RS256 tokens
//! with the given key and requires the given audience and issuer; a machine that stops
//! both the client and a `serve` beside it makes the run client limited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Every process here is bounded by this.
const BOUND: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/auth")
        .join(name)
}

/// A serve process, killed (by its own handle) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `stampede serve` on an ephemeral port; returns once it says where it listens.
fn serve(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        // Its secret is the development one: a test's client may set another.
        .env_remove("STAMPEDE_JWT_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send(url);
            }
        }
    });
    let url = rx
        .recv_timeout(BOUND)
        .expect("the server says where it listens");
    Server { child, url }
}

/// Runs the binary to completion, bounded.
fn stampede(args: Vec<String>) -> Output {
    stampede_with(args, &[])
}

/// [`stampede`] with these environment variables set.
fn stampede_with(args: Vec<String>, env: &[(&str, &str)]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(BOUND) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // Stop the process this test started (by its id) before failing.
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("stampede did not finish within {BOUND:?}");
        }
    }
}

/// RS256 tokens with this audience and issuer: valid ones, and wrong-aud / wrong-iss.
fn scenario(dir: &Path, aud: &str) -> PathBuf {
    let key = fixture("rsa-private.pem");
    let text = format!(
        r#"
name = "serve-public-key"
seed = 3
duration = "20s"

[auth]
alg = "RS256"
key = {{ file = "{}" }}
aud = "{aud}"
iss = "https://auth.example"

[[group]]
name = "valid"
users = 3
arrival = {{ ramp = "50ms" }}
steps = [{{ expect = "connection_established", within = "3s" }}, {{ close = 1000 }}]

[[group]]
name = "wrong-aud"
users = 2
forge = "wrong-aud"
steps = [{{ expect = "connection_established", within = "3s" }}, {{ close = 1000 }}]

[[group]]
name = "wrong-iss"
users = 2
forge = "wrong-iss"
steps = [{{ expect = "connection_established", within = "3s" }}, {{ close = 1000 }}]
"#,
        key.display()
    );
    let path = dir.join(format!("{aud}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn run_json(scenario: &Path, url: &str) -> (Option<i32>, serde_json::Value) {
    let out = stampede(vec![
        "run".into(),
        scenario.display().to_string(),
        "--target".into(),
        url.into(),
        "--no-results".into(),
        "--json".into(),
    ]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

#[test]
fn serve_verifies_rs256_with_the_public_key_and_requires_aud_and_iss() {
    let public = fixture("rsa-public.pem");
    let server = serve(&[
        "--public-key",
        public.to_str().unwrap(),
        "--aud",
        "chat-api",
        "--iss",
        "https://auth.example",
    ]);
    let dir = tempfile::tempdir().unwrap();

    // Valid RS256 tokens for chat-api are accepted; wrong aud / iss refused with 401.
    let (code, s) = run_json(&scenario(dir.path(), "chat-api"), &server.url);
    assert_eq!(code, Some(0), "{s:#}");
    assert_eq!(s["counters"]["accepted"], 3, "{s:#}");
    assert_eq!(s["counters"]["refused_by"]["http_401"], 4, "{s:#}");
    assert_eq!(s["violations"]["total"], 0);

    // Tokens for another audience are all refused with 401: a misconfiguration (exit 6),
    // not a race, though the liveness oracle saw every valid token refused.
    let (code, s) = run_json(&scenario(dir.path(), "other-api"), &server.url);
    assert_eq!(code, Some(6), "{s:#}");
    assert_eq!(s["verdict"], "auth_misconfigured", "{s:#}");
    assert_eq!(s["counters"]["accepted"], 0, "{s:#}");
    assert_eq!(s["violations"]["by_oracle"]["liveness"], 3, "{s:#}");
}

#[test]
fn serve_without_aud_refuses_tokens_that_carry_one() {
    let public = fixture("rsa-public.pem");
    let server = serve(&["--public-key", public.to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let (code, s) = run_json(&scenario(dir.path(), "chat-api"), &server.url);
    assert_eq!(code, Some(6), "{s:#}");
    assert_eq!(s["verdict"], "auth_misconfigured", "{s:#}");
    assert_eq!(s["counters"]["accepted"], 0, "{s:#}");
}

#[test]
fn serve_with_an_unreadable_or_bad_public_key_is_a_usage_error() {
    let missing = stampede(vec![
        "serve".into(),
        "--addr".into(),
        "127.0.0.1:0".into(),
        "--public-key".into(),
        "/nonexistent/key.pem".into(),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("/nonexistent/key.pem"), "{err}");

    // A file that holds no PEM key at all.
    let not_a_key = fixture("README.md");
    let bad = stampede(vec![
        "serve".into(),
        "--addr".into(),
        "127.0.0.1:0".into(),
        "--public-key".into(),
        not_a_key.display().to_string(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("public key"), "{err}");
}

/// A secret on a command line shows in `ps`: `serve --secret` is refused, however it is
/// spelt, pointing at `STAMPEDE_JWT_SECRET` and never echoing the value.
#[test]
fn serve_refuses_a_secret_on_the_command_line() {
    for flag in [
        vec!["--secret", "hunter2-not-echoed"],
        vec!["--secret=hunter2-not-echoed"],
        vec!["--secret"],
    ] {
        let mut args = vec!["serve".to_string(), "--addr".into(), "127.0.0.1:0".into()];
        args.extend(flag.iter().map(|a| a.to_string()));
        let out = stampede(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {err}");
        assert!(err.contains("set STAMPEDE_JWT_SECRET"), "{flag:?}: {err}");
        assert!(!err.contains("hunter2"), "{flag:?}: {err}");
    }
}

/// RS256 tokens without `aud`/`iss` in `[auth]`: valid ones and three policy entries, with
/// the scenario's bad-token policy `policy`.
fn policy_scenario(dir: &Path, policy: &str) -> PathBuf {
    let key = fixture("rsa-private.pem");
    let group = |name: &str| {
        format!(
            "[[group]]\nname = \"{name}\"\nusers = 2\nforge = \"{name}\"\n\
             steps = [{{ expect = \"connection_established\", within = \"3s\" }}, {{ close = 1000 }}]\n"
        )
    };
    let text = format!(
        r#"
name = "serve-lenient"
seed = 5
duration = "20s"

[auth]
alg = "RS256"
key = {{ file = "{}" }}

[oracles]
reject = {{ policy = "{policy}" }}

[[group]]
name = "valid"
users = 2
steps = [{{ expect = "connection_established", within = "3s" }}, {{ close = 1000 }}]

{}
{}
{}
"#,
        key.display(),
        group("empty-sub"),
        group("wrong-iss"),
        group("wrong-aud"),
    );
    let path = dir.join(format!("{policy}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn serve_lenient_accepts_policy_entries_as_lenient_acceptances() {
    let public = fixture("rsa-public.pem");
    let server = serve(&["--public-key", public.to_str().unwrap(), "--lenient"]);
    let dir = tempfile::tempdir().unwrap();

    // Lenient policy (the default): empty-sub and wrong-iss are let through and counted
    // apart; wrong-aud is still refused (no audience configured).
    let (code, s) = run_json(&policy_scenario(dir.path(), "lenient"), &server.url);
    assert_eq!(code, Some(0), "{s:#}");
    assert_eq!(s["violations"]["total"], 0, "{s:#}");
    assert_eq!(s["counters"]["accepted"], 6, "{s:#}");
    assert_eq!(s["counters"]["refused_by"]["http_401"], 2, "{s:#}");
    assert_eq!(s["lenient"]["total"], 4, "{s:#}");
    assert_eq!(s["lenient"]["by_entry"]["empty-sub"], 2, "{s:#}");
    assert_eq!(s["lenient"]["by_entry"]["wrong-iss"], 2, "{s:#}");

    // Declared strict: the same acceptances are rejection-hygiene violations.
    let (code, s) = run_json(&policy_scenario(dir.path(), "strict"), &server.url);
    assert_eq!(code, Some(1), "{s:#}");
    assert_eq!(
        s["violations"]["by_oracle"]["rejection_hygiene"], 4,
        "{s:#}"
    );
    assert_eq!(s["lenient"]["total"], 0, "{s:#}");
}

/// A hunt whose client signs with another secret than the server's: every round's valid
/// tokens are refused, which the liveness oracle counts as violations, but the round's
/// verdict is auth_misconfigured. Its progress line says that verdict, not "N violations"
/// (which read as a finding the very line before the hunt stopped as misconfigured).
#[test]
fn a_hunt_round_refused_for_a_wrong_secret_says_auth_misconfigured_not_violations() {
    let server = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong-secret.toml");
    std::fs::write(
        &path,
        "name = \"wrong-secret\"\nduration = \"5s\"\n[[group]]\nname = \"g\"\nusers = 4\n\
         steps = [{ expect = \"connection_established\", within = \"3s\" }, { close = 1000 }]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let args = [
        "hunt",
        path.to_str().unwrap(),
        "--target",
        &server.url,
        "--no-learn",
        "--budget",
        "30s",
        "-o",
        out.to_str().unwrap(),
    ];
    let out = stampede_with(
        args.iter().map(|a| a.to_string()).collect(),
        &[("STAMPEDE_JWT_SECRET", "not-the-servers-secret")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    let round = err
        .lines()
        .find(|l| l.starts_with("round "))
        .unwrap_or_else(|| panic!("no round line in:\n{err}"));
    assert!(
        round.contains(
            "4 connections  auth misconfigured — every token signed with the scenario's key was \
             refused (http_401 ×4)"
        ),
        "{round}"
    );
    assert!(!round.contains("violation"), "{round}");
    // The hunt's result line, like `run`'s verdict, is on stdout.
    let result = String::from_utf8_lossy(&out.stdout);
    assert!(result.contains("auth_misconfigured"), "{result}\n{err}");
}

/// A machine that stops running the client and the server beside it (overloaded or
/// throttled; here, SIGSTOP to both for two seconds while every connection waits for the
/// rest of an answer due within one) makes deadlines run out that say nothing about the
/// server: the run is client limited (exit 8), with the stall measured, not a run with
/// violations.
#[cfg(unix)]
#[test]
fn deadlines_missed_while_the_client_was_stopped_are_not_the_server_s() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("stalled.toml");
    std::fs::write(
        &file,
        r#"
name = "stalled-client"
seed = 1
duration = "60s"
[[group]]
name = "users"
users = 4
steps = [
  { expect = "connection_established", within = "5s" },
  { repeat = 12, steps = [
    { send = { type = "user_message", run_id = "r-{{conn}}-{{run}}", thread_id = "t-{{user}}", content = "x" } },
    { expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "1s" },
  ] },
  { close = 1000 },
]
"#,
    )
    .unwrap();
    // Its five events 150 ms apart: a connection is almost always mid-answer.
    let server = serve(&["--event-delay", "150ms"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", file.to_str().unwrap(), "--target", &server.url, "-o"])
        .arg(tmp.path())
        .env_remove("STAMPEDE_JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    // Progress lines on stderr: stop the client once connections are live.
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (said, heard) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = said.send(line);
        }
    });
    let live = |line: &str| {
        line.split(" · ")
            .find_map(|part| part.strip_suffix(" live"))
            .and_then(|n| n.trim().parse::<u32>().ok())
            .is_some_and(|n| n > 0)
    };
    let mut lines = Vec::new();
    while let Ok(line) = heard.recv_timeout(Duration::from_secs(60)) {
        let go = live(&line);
        lines.push(line);
        if go {
            break;
        }
    }
    assert!(
        lines.iter().any(|l| live(l)),
        "no connection went live: {lines:#?}"
    );
    let pids = [child.id().to_string(), server.child.id().to_string()];
    let signal = |sig: &str| {
        let sent = Command::new("kill").arg(sig).args(&pids).status().unwrap();
        assert!(sent.success(), "kill {sig}");
    };
    signal("-STOP");
    // The stall itself (the fault this test plants), not a wait for something to happen.
    std::thread::sleep(Duration::from_secs(2));
    signal("-CONT");
    let (done, exited) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let out = exited
        .recv_timeout(Duration::from_secs(90))
        .expect("the run ends")
        .unwrap();
    let written = std::fs::read_dir(tmp.path().join("stalled-client"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(written.join("summary.json")).unwrap()).unwrap();
    let stalls = &summary["generator"]["client_stalls"];
    assert!(stalls["longest_ms"].as_f64().unwrap() >= 1500.0, "{stalls}");
    assert_eq!(summary["verdict"], "client_limited", "{summary:#}");
    let hint = summary["hint"].as_str().unwrap();
    assert!(hint.contains("could not keep time"), "{hint}");
    let report = String::from_utf8_lossy(&out.stdout);
    // The planted stall, and on a busy machine maybe one of its own beside it.
    let stalls: u32 = report
        .lines()
        .find_map(|l| l.strip_prefix("client stalls "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(stalls >= 1, "{report}");
    assert_eq!(out.status.code(), Some(8));
}

/// A shrink against a server nothing resets between its tries (an external target, no
/// `--reset`) says its rate may owe something to what one try left behind for the next
/// (a river-like grace timer made 3/3 of a repro that replays 1/10), and how to see the
/// minimal repro's own rate. Against the built-in server, restarted between tries, no
/// such note (asserted in `cli.rs`'s `shrink_creates_the_folder_of_its_output`).
#[test]
fn a_shrink_without_reset_against_a_server_that_keeps_state_says_so() {
    let server = serve(&["--bug", "early-message-drop", "--bug-window", "50ms"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hunted");
    let bounded = ["--times", "3", "--budget", "60s"].map(String::from);
    let mut hunt: Vec<String> = ["hunt", "scenarios/races/early-message-drop.toml", "-q"]
        .map(String::from)
        .to_vec();
    hunt.extend(["--target".into(), server.url.clone(), "-o".into()]);
    hunt.push(out.display().to_string());
    hunt.extend(bounded.clone());
    let said = stampede(hunt);
    assert_eq!(
        said.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&said.stdout)
    );
    let repro = std::fs::read_dir(out.join("race-early-message-drop"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("the hunt's repro");
    let mut shrink = vec![
        "shrink".to_string(),
        repro.display().to_string(),
        "--target".into(),
        server.url.clone(),
    ];
    shrink.extend(bounded);
    let said = stampede(shrink);
    let stdout = String::from_utf8_lossy(&said.stdout);
    assert_eq!(said.status.code(), Some(1), "{stdout}");
    // A shrink its budget cut short wrote a smaller repro, not one proven minimal.
    let written = match stdout.contains("(the budget ran out)") {
        true => "smaller repro ",
        false => "minimal repro ",
    };
    assert!(stdout.contains(written), "{stdout}");
    assert!(
        stdout.contains("note         its tries ran back to back against a server nothing reset")
            && stdout.contains("--times 10), or shrink with --reset"),
        "{stdout}"
    );
}
