//! Hostile servers, part 2 (issue 9, cases 4, 6 and 7): secrets that must never reach an
//! output, close codes and client limits that must not be mislabelled, handshakes cut by
//! the run's end, and replays that must go where their repro was made. In-process fakes
//! on loopback; the binary where the console, the files and the exit code are the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod common;

use common::{spawn_faulty, spawn_server, TEST_BOUND};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use stampede::model::{Cause, Counters};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Runs the binary with `args` (no inherited target or secret), bounded by [`TEST_BOUND`].
fn stampede(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stampede"));
    cmd.args(args);
    run_bounded(cmd, env)
}

fn run_bounded(mut cmd: Command, env: &[(&str, &str)]) -> Output {
    cmd.env_remove("STAMPEDE_TARGET")
        .env_remove("STAMPEDE_JWT_SECRET")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("start the binary");
    let pid = child.id();
    let (done, exited) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match exited.recv_timeout(TEST_BOUND) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("stampede did not finish within {TEST_BOUND:?}");
        }
    }
}

/// The binary, off the async runtime (the fakes it talks to live on it).
async fn stampede_async(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        stampede(&args, &env)
    })
    .await
    .unwrap()
}

/// `run SCENARIO --target URL --out OUT` and `extra`, as the binary's arguments.
fn run_args(scenario: &Path, url: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["run", scenario.to_str().unwrap(), "--target", url, "--out"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(out.to_str().unwrap().to_string());
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// Every file under `dir`, with its text.
fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            let body = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            out.push((path, body));
        }
    }
    out
}

/// Checks every file a run wrote under `results` with `leaks` (file name, text) and returns
/// its parsed `summary.json`.
fn summary_leaking_nothing(results: &Path, leaks: &dyn Fn(&str, &str)) -> serde_json::Value {
    let files = files_under(results);
    for (path, body) in &files {
        leaks(&path.display().to_string(), body);
    }
    let (_, summary) = files
        .iter()
        .find(|(p, _)| p.ends_with("summary.json"))
        .expect("the run wrote summary.json");
    serde_json::from_str(summary).unwrap()
}

/// A server that trusts anyone and echoes the bearer token back: as the `user_id` of its
/// greeting, as its `seq`, and inside an error text. Records every token it was shown.
async fn spawn_echo() -> (String, CancellationToken, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tokens = seen.clone();
    let (url, cancel) = spawn_server(move |tcp| {
        let tokens = tokens.clone();
        async move {
            let mut token = String::new();
            let callback =
                |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                 resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                    token = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .unwrap_or_default()
                        .to_string();
                    Ok(resp)
                };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                return;
            };
            tokens.lock().unwrap().push(token.clone());
            let hello = json!({
                "type": "connection_established",
                "user_id": token,
                "seq": token,
                "message": format!("welcome, Bearer {token}"),
            });
            let _ = ws.send(Message::Text(hello.to_string().into())).await;
            // Answer until the client goes (it closes; the run's end bounds it).
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
    (url, cancel, seen)
}

const ECHO_SCENARIO: &str = r#"
name = "echo"
duration = "5s"

[oracles]
identity = { field = "user_id" }
sequence = { field = "seq" }

[[group]]
name = "g"
users = 2
steps = [
  { expect = "connection_established", within = "2s" },
  { close = 1000 },
]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_echoed_by_the_server_reaches_no_output_whole() {
    let (url, stop, seen) = spawn_echo().await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "echo.toml", ECHO_SCENARIO);
    let out_dir = dir.path().join("results");
    let args = |extra: &[&str]| run_args(&scenario, &url, &out_dir, extra);
    let console = stampede_async(args(&[]), Vec::new()).await;
    let json = stampede_async(args(&["--json", "-q"]), Vec::new()).await;
    stop.cancel();
    let mut tokens = seen.lock().unwrap().clone();
    tokens.sort();
    tokens.dedup();
    // Two users' tokens (the same seed mints the same ones in the same second; the probe
    // phase shows each again).
    assert!(tokens.len() >= 2, "{tokens:?}");
    assert!(tokens.iter().all(|t| t.starts_with("eyJ") && t.len() > 100));

    let stdout = text(&console.stdout);
    let summary = text(&json.stdout);
    assert_eq!(console.status.code(), Some(1), "identity broke:\n{stdout}");
    assert!(
        stdout.contains("<token jti="),
        "redacted, not dropped:\n{stdout}"
    );
    let mut outputs = vec![
        ("console stdout".to_string(), stdout),
        ("console stderr".to_string(), text(&console.stderr)),
        ("--json stdout".to_string(), summary.clone()),
        ("--json stderr".to_string(), text(&json.stderr)),
    ];
    let files = files_under(&out_dir);
    assert!(files
        .iter()
        .any(|(p, body)| p.ends_with("violations.jsonl") && body.contains("<token jti=")));
    outputs.extend(files.into_iter().map(|(p, b)| (p.display().to_string(), b)));
    for (name, body) in &outputs {
        for token in &tokens {
            assert!(
                !body.contains(token.as_str()),
                "{name} holds a whole token:\n{body}"
            );
        }
    }
    // The summary JSON still names what was seen, by the token's jti.
    let parsed: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let first = &parsed["violations"]["first"];
    assert!(
        first.to_string().contains("user_id = \\\"<token jti="),
        "{first}"
    );
}

/// A scenario whose token travels in the first message, against a server that wants it on
/// the upgrade (the reference server answers 401 without one), is told to move the token
/// first: no token reached the server, so its secret may well be right (here it is: both
/// sides use the development secret), and the development secret's note comes after, not
/// before, as it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_upgrade_never_carried_is_told_to_move_before_its_secret() {
    let config = stampede::reference::TargetConfig {
        secret: stampede::model::DEV_SECRET.as_bytes().to_vec(),
        ..Default::default()
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let server = stampede::reference::spawn(config, addr, CancellationToken::new())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Signed with the development secret (no secret of the scenario's, none in the
    // environment), as the server's.
    let body = common::chat_scenario("first-message", 4, 1).replace(
        &format!("secret = {{ value = \"{}\" }}", common::TEST_SECRET),
        "placement = { first_message = { type = \"auth\", token = \"{{token}}\" } }",
    );
    assert!(body.contains("first_message"), "{body}");
    let scenario = write(dir.path(), "first.toml", &body);
    let args = [
        "run",
        scenario.to_str().unwrap(),
        "--no-results",
        "--target",
        &server.url(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = stampede_async(args, Vec::new()).await;
    let stdout = text(&out.stdout);
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("verdict"))
        .unwrap_or_default();
    assert!(
        verdict.starts_with(
            "verdict      AUTH MISCONFIGURED: the server refused every upgrade as unauthorized \
             while the scenario's tokens travel in the first message after it (or nowhere), so \
             none reached the server (http_401"
        ),
        "{stdout}"
    );
    assert!(
        verdict.contains("set `[auth] placement` to the header"),
        "{verdict}"
    );
    assert!(
        verdict.contains("; also, STAMPEDE_JWT_SECRET is not set, so stampede's public development secret is in use"),
        "{verdict}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_secret_against_an_external_target_gets_one_notice_unless_quiet() {
    let (url, stop, _) = spawn_echo().await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "echo.toml", ECHO_SCENARIO);
    let run = |extra: &[&str]| {
        let mut a: Vec<String> = ["run", scenario.to_str().unwrap(), "--no-results"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let external = stampede_async(run(&["--target", &url]), Vec::new()).await;
    let quiet = stampede_async(run(&["--target", &url, "-q"]), Vec::new()).await;
    let secret = vec![(
        "STAMPEDE_JWT_SECRET".to_string(),
        "the-servers-own".to_string(),
    )];
    let own = stampede_async(run(&["--target", &url]), secret).await;
    let built_in = stampede_async(run(&["--duration", "2s"]), Vec::new()).await;
    // Tokens read from a list: the secret signs nothing, so no notice (whatever it is).
    let listed = write(
        dir.path(),
        "listed.toml",
        &ECHO_SCENARIO.replace(
            "[oracles]",
            "[auth]\ntokens = { list = [\"opaque-token-of-user-one\", \"opaque-token-of-user-two\"] }\n\n[oracles]",
        ),
    );
    let args: Vec<String> = [
        "run",
        listed.to_str().unwrap(),
        "--no-results",
        "--target",
        &url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let from_list = stampede_async(args, Vec::new()).await;
    stop.cancel();
    let notice = "public development secret";
    let stderr = text(&from_list.stderr);
    assert!(!stderr.contains(notice), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    let stderr = text(&external.stderr);
    assert_eq!(stderr.matches(notice).count(), 1, "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
    assert!(!text(&quiet.stderr).contains(notice));
    assert!(!text(&own.stderr).contains(notice));
    assert!(!text(&built_in.stderr).contains(notice));
}

#[test]
fn plan_files_name_where_a_secret_comes_from_never_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/auth")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    };
    let private = fixture("rsa-private.pem");
    let public = fixture("rsa-public.pem");
    let hmac = write(
        dir.path(),
        "hmac.toml",
        "name = \"hmac\"\nduration = \"2s\"\n[auth]\nsecret = { value = \"literal-hmac-secret-0451\" }\n\
         [[group]]\nname = \"g\"\nusers = 1\nsteps = [{ close = 1000 }]\n",
    );
    let rsa = write(
        dir.path(),
        "rsa.toml",
        &format!(
            "name = \"rsa\"\nduration = \"2s\"\n[auth]\nalg = \"RS256\"\n\
             key = {{ value = \"\"\"{private}\"\"\" }}\npublic_key = {{ value = \"\"\"{public}\"\"\" }}\n\
             [[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ close = 1000 }}]\n"
        ),
    );
    let default = write(
        dir.path(),
        "default.toml",
        "name = \"default\"\nduration = \"2s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{ close = 1000 }]\n",
    );
    // Key bodies: any line of the PEMs between the armour lines.
    let body_lines: Vec<&str> = private
        .lines()
        .chain(public.lines())
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect();
    assert!(!body_lines.is_empty());
    let leaks = |what: &str, out: &str| {
        assert!(!out.contains("literal-hmac-secret-0451"), "{what}:\n{out}");
        assert!(!out.contains("stampede-dev-secret"), "{what}:\n{out}");
        assert!(!out.contains("PRIVATE KEY"), "{what}:\n{out}");
        for line in &body_lines {
            assert!(!out.contains(line), "{what} holds key material:\n{out}");
        }
    };
    for scenario in [&hmac, &rsa, &default] {
        let out = stampede(&["plan", scenario.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let plan = text(&out.stdout);
        leaks("stampede plan", &plan);
        assert!(
            plan.contains("<redacted>") || plan.contains("<development secret>"),
            "the plan names the secret's source:\n{plan}"
        );
        // A run against the built-in server works from the literal, and its plan.json
        // is just as clean.
        let results = dir.path().join("results");
        let run = stampede(
            &[
                "run",
                scenario.to_str().unwrap(),
                "--out",
                results.to_str().unwrap(),
                "-q",
            ],
            &[],
        );
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
        for (path, body) in files_under(&results) {
            leaks(&path.display().to_string(), &body);
        }
    }
}

#[test]
fn a_repro_whose_secret_was_a_literal_replays_once_told_where_the_secret_is() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::scenario(
        "literal.toml",
        "name = \"literal\"\nduration = \"2s\"\n[auth]\nsecret = { value = \"literal-secret-7781\" }\n\
         [[group]]\nname = \"g\"\nusers = 1\nsteps = [{ close = 1000 }]\n",
    );
    let repro = stampede::hunt::Repro {
        reference: Some(stampede::hunt::ReferenceServer::default()),
        ..stampede::hunt::Repro::for_plan(
            &s,
            1,
            stampede::plan::build(&s, 1),
            "ws://127.0.0.1:9/ws".into(),
            stampede::model::OracleKind::Liveness,
        )
    };
    let path = dir.path().join("repro.json");
    repro.save_as(&path).unwrap();
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(!file.contains("literal-secret-7781"), "{file}");
    let p = path.to_str().unwrap();
    let refused = stampede(&["replay", p, "--times", "1"], &[]);
    assert_eq!(refused.status.code(), Some(2));
    let err = text(&refused.stderr);
    assert!(
        err.contains("STAMPEDE_JWT_SECRET") && err.contains("literal"),
        "{err}"
    );
    let told = stampede(
        &["replay", p, "--times", "1"],
        &[("STAMPEDE_JWT_SECRET", "literal-secret-7781")],
    );
    let out = text(&told.stdout);
    assert_eq!(told.status.code(), Some(0), "{out}{}", text(&told.stderr));
    assert!(out.contains("0/1 times"), "{out}");
}

/// A server that upgrades, then sends one Close frame with this payload, byte for byte.
async fn spawn_closer(payload: Vec<u8>) -> (String, CancellationToken) {
    let payload = Arc::new(payload);
    spawn_server(move |tcp| {
        let payload = payload.clone();
        async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let mut frame = vec![0x88, payload.len() as u8];
            frame.extend_from_slice(&payload);
            let tcp = ws.get_mut();
            if tcp.write_all(&frame).await.is_err() {
                return;
            }
            // Hold the socket until the client is done with it (bounded by the client).
            let mut sink = [0u8; 256];
            while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
        }
    })
    .await
}

const ONE_CONNECTION: &str = r#"
name = "closed"
duration = "5s"
[auth]
secret = { value = "stampede-test-secret" }
[[group]]
name = "g"
users = 1
steps = [{ expect = "never", within = "2s" }, { close = 1000 }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_codes_are_recorded_as_sent_and_invalid_ones_are_named() {
    let s = common::scenario("closed.toml", ONE_CONNECTION);
    let mut with_reason = 4403u16.to_be_bytes().to_vec();
    with_reason.extend_from_slice(b"Forbidden\n\x1b[2J");
    let cases: [(Vec<u8>, Cause); 7] = [
        (with_reason, Cause::ServerClose(4403)),
        (999u16.to_be_bytes().to_vec(), Cause::InvalidClose(999)),
        (1005u16.to_be_bytes().to_vec(), Cause::InvalidClose(1005)),
        (0u16.to_be_bytes().to_vec(), Cause::InvalidClose(0)),
        (4000u16.to_be_bytes().to_vec(), Cause::ServerClose(4000)),
        // 1014 (bad gateway) is valid; tungstenite alone would call it 1002.
        (1014u16.to_be_bytes().to_vec(), Cause::ServerClose(1014)),
        (Vec::new(), Cause::ServerClose(1005)),
    ];
    for (payload, want) in cases {
        let (url, stop) = spawn_closer(payload.clone()).await;
        let outcome = common::run(&s, Some(url), None).await;
        stop.cancel();
        let c = &outcome.results.summary.counters;
        assert_eq!(
            c.refused_by.get(&want),
            Some(&1),
            "payload {payload:?}: {:?}",
            c.refused_by
        );
        assert_eq!(
            (c.attempted, c.failed),
            (1, 1),
            "{want}: the server's failure"
        );
        let json = serde_json::to_string(&outcome.results.summary).unwrap();
        assert!(json.contains(&format!("\"{want}\"")), "{json}");
        assert!(!json.contains("server_close_1002"), "{json}");
        // The Close is the server's answer: its code, and its reason escaped as a body.
        let answers = &outcome.results.summary.answers;
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(answers[0].cause, want);
        if want == Cause::ServerClose(4403) {
            assert_eq!(answers[0].detail, "Close 4403");
            assert_eq!(answers[0].body, "Forbidden\\n\\u{1b}[2J");
        }
        // A forbidden code's reason is tungstenite's ("Protocol violation"), not the
        // server's: the answer holds none.
        if matches!(want, Cause::InvalidClose(_)) {
            assert_eq!(answers[0].body, "", "{want}");
        }
    }
}

/// A server that upgrades, greets, then closes with a code RFC 6455 forbids and nothing
/// after it. tungstenite hands such a Close up with a reason of its own ("Protocol
/// violation"): what the server never said is never quoted as its words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_close_code_is_shown_alone_never_with_a_reason_the_server_did_not_send() {
    let close = [&[0x88, 2][..], &999u16.to_be_bytes()].concat();
    let (url, stop) = spawn_faulty(Some(r#"{"type":"connection_established"}"#), close).await;
    let s = greeted_then_waiting("forbidden");
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let summary = &outcome.results.summary;
    assert_eq!(
        summary.counters.ended_by.get(&Cause::InvalidClose(999)),
        Some(&1),
        "{:?}",
        summary.counters
    );
    let seen = seen_of(&outcome);
    assert!(
        seen.iter()
            .any(|s| s.ends_with("then server closed with invalid code 999 (no reason)")),
        "{seen:?}"
    );
    let mut console = Vec::new();
    stampede::report::render(summary, &mut console).unwrap();
    let files = format!(
        "{}{}",
        serde_json::to_string(summary).unwrap(),
        serde_json::to_string(&outcome.results.violations).unwrap()
    );
    for out in [text(&console), files] {
        assert!(!out.contains("Protocol violation"), "{out}");
    }
}

/// Frames that break RFC 6455 after a correct 101 end the attempt as `protocol_error`,
/// and the verdict sends the user to the answer line: that line says what the server
/// broke, in summary.json's answers too. Mid-session, the violation's witness names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_fault_after_the_upgrade_is_named_on_the_answer_line_and_in_the_witness() {
    let hello = br#"{"type":"connection_established"}"#;
    let masked = {
        let key = [1u8, 2, 3, 4];
        let mut f = vec![0x81, 0x80 | hello.len() as u8];
        f.extend_from_slice(&key);
        f.extend(hello.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    };
    let rsv = [&[0xC1, hello.len() as u8][..], hello].concat();
    let big_ping = [&[0x89, 126, 0, 126][..], &[b'p'; 126]].concat();
    let cases = [
        (masked, "after the 101, a masked frame from the server"),
        (rsv, "after the 101, reserved (RSV) bits set"),
        (big_ping, "after the 101, a control frame over 125 bytes"),
    ];
    for (bytes, said) in cases {
        let (url, stop) = spawn_faulty(None, bytes).await;
        let s = common::scenario("fault.toml", ONE_CONNECTION);
        let outcome = common::run(&s, Some(url), None).await;
        stop.cancel();
        let summary = &outcome.results.summary;
        assert_eq!(
            summary.counters.refused_by.get(&Cause::Protocol),
            Some(&1),
            "{said}: {:?}",
            summary.counters
        );
        let answers = &summary.answers;
        assert!(
            answers
                .iter()
                .any(|a| a.cause == Cause::Protocol && a.detail.starts_with(said)),
            "{said}: {answers:?}"
        );
        let mut console = Vec::new();
        stampede::report::render(summary, &mut console).unwrap();
        let console = text(&console);
        assert!(
            console.contains(&format!("answer       protocol_error: {said}")),
            "{console}"
        );
    }
    // Invalid UTF-8 in a text frame once the server accepted the connection.
    let bad = br#"{"type":"agent_started","run_id":"#;
    let bad = [&bad[..], b"\"\xc3\x28\"}"].concat();
    let frame = [&[0x81, bad.len() as u8][..], &bad].concat();
    let (url, stop) = spawn_faulty(Some(r#"{"type":"connection_established"}"#), frame).await;
    let s = greeted_then_waiting("midfault");
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let c = &outcome.results.summary.counters;
    assert_eq!(c.ended_by.get(&Cause::Protocol), Some(&1), "{c:?}");
    let seen = seen_of(&outcome);
    assert!(
        seen.iter().any(|s| s.contains(
            "connection lost (protocol_error: invalid UTF-8 in a text frame (RFC 6455 §8.1))"
        )),
        "{seen:?}"
    );
}

/// A server that breaks the WebSocket protocol the same way on every connection it
/// accepted (invalid UTF-8 in a text frame, after its greeting) cut every expectation by a
/// fault that happens every time: a finding, but no race, so the verdict's advice is not
/// to hunt for a repro; it says the fault is the same everywhere and names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_fault_on_every_connection_says_what_to_fix_first() {
    let bad = br#"{"type":"agent_started","run_id":"#;
    let bad = [&bad[..], b"\"\xc3\x28\"}"].concat();
    let frame = [&[0x81, bad.len() as u8][..], &bad].concat();
    let (url, stop) = spawn_faulty(Some(r#"{"type":"connection_established"}"#), frame).await;
    let s = greeted_then_waiting_n("everyfault", 3);
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let summary = &outcome.results.summary;
    assert_eq!(summary.counters.ended_by.get(&Cause::Protocol), Some(&3));
    assert_eq!(summary.verdict, stampede::model::Verdict::Violations);
    let hint = summary.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("on every connection it accepted (3), the same way each time (invalid UTF-8 in a text frame (RFC 6455 §8.1))")
            && hint.contains("fix what the server sends there; whether one connection alone meets it or it takes this load, a repro shows")
            && !hint.contains("hunt for a repro"),
        "{hint}"
    );
}

/// A server that accepts TCP and never answers the upgrade.
async fn spawn_silent() -> (String, CancellationToken) {
    spawn_server(|mut tcp| async move {
        let mut sink = Vec::new();
        let _ = tcp.read_to_end(&mut sink).await;
    })
    .await
}

fn adds_up(c: &Counters) -> bool {
    c.accepted + c.rejected + c.failed + c.aborted + c.cut + c.client_errors == c.attempted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_cut_by_the_runs_end_are_counted_and_shown() {
    let (url, stop) = spawn_silent().await;
    let s = common::scenario(
        "cut.toml",
        "name = \"cut\"\nduration = \"1s\"\n[auth]\nsecret = { value = \"s\" }\n\
         [limits]\nhandshake_timeout = \"30s\"\n\
         [[group]]\nname = \"g\"\nusers = 3\nsteps = [{ close = 1000 }]\n",
    );
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let c = &outcome.results.summary.counters;
    assert_eq!((c.attempted, c.cut), (3, 3), "{c:?}");
    assert_eq!((c.accepted, c.rejected, c.failed, c.aborted), (0, 0, 0, 0));
    assert!(adds_up(c), "{c:?}");
    let mut console = Vec::new();
    stampede::report::render(&outcome.results.summary, &mut console).unwrap();
    let console = text(&console);
    assert!(
        console.contains("attempted 3  accepted 0  rejected 0  failed 0  cut 3"),
        "{console}"
    );
    let json = serde_json::to_value(&outcome.results.summary).unwrap();
    assert_eq!(json["counters"]["cut"], 3);
    assert_eq!(json["counters"]["client_errors"], 0);
}

#[test]
fn a_plan_that_needs_more_file_descriptors_than_allowed_is_refused_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "many.toml",
        "name = \"many\"\nduration = \"2s\"\n[[group]]\nname = \"g\"\nusers = 200\nsteps = [{ close = 1000 }]\n",
    );
    // A shell lowers the hard limit to 64 for the binary it then becomes.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -n 64 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_stampede"),
        "run",
        scenario.to_str().unwrap(),
        "--target",
        "ws://127.0.0.1:9/ws",
        "--no-results",
    ]);
    let out = run_bounded(cmd, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ulimit -n 264"), "says what to change:\n{err}");
    assert!(err.contains("file descriptors"), "{err}");
    assert!(text(&out.stdout).is_empty(), "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repro_made_against_an_external_target_replays_there_without_target() {
    let (url, stop, seen) = spawn_echo().await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "echo.toml", ECHO_SCENARIO);
    let out = dir.path().join("repros");
    let hunt = stampede_async(
        [
            "hunt",
            scenario.to_str().unwrap(),
            "--target",
            &url,
            "--budget",
            "20s",
            "--confirm",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        Vec::new(),
    )
    .await;
    let found = text(&hunt.stdout);
    assert_eq!(hunt.status.code(), Some(1), "{found}{}", text(&hunt.stderr));
    let path = found
        .lines()
        .find_map(|l| l.strip_prefix("repro"))
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|| panic!("no repro path in:\n{found}"));
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file["target"], url.as_str());
    assert!(
        file.get("reference").is_none(),
        "made against an external target"
    );
    let replay = stampede_async(
        ["replay", &path, "--times", "2"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        Vec::new(),
    )
    .await;
    stop.cancel();
    let said = text(&replay.stdout);
    assert!(said.contains("2/2 times"), "{said}{}", text(&replay.stderr));
    assert!(said.contains(&format!("against {url}")), "{said}");
    assert_eq!(replay.status.code(), Some(1));
    // The hunt's evidence (console, repro file) names echoed tokens by jti only.
    let repro_file = std::fs::read_to_string(&path).unwrap();
    assert!(repro_file.contains("<token jti="), "{repro_file}");
    let tokens = seen.lock().unwrap().clone();
    assert!(!tokens.is_empty());
    for body in [&found, &text(&hunt.stderr), &said, &repro_file] {
        for token in &tokens {
            assert!(!body.contains(token.as_str()), "a whole token:\n{body}");
        }
    }
}

#[test]
fn an_old_format_repro_loads_and_replays_against_the_built_in_server() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/regressions/identity-swap.json");
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(raw["version"], 1, "the corpus is version 1");
    let out = stampede(&["replay", path.to_str().unwrap(), "--times", "1"], &[]);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    assert!(
        said.contains("0/1 times")
            && said.contains("against the built-in reference server (correct"),
        "{said}"
    );
    // --bug asks for the planted bug.
    let out = stampede(
        &[
            "replay",
            path.to_str().unwrap(),
            "--times",
            "1",
            "--bug",
            "identity-swap",
            "--bug-window",
            "50ms",
        ],
        &[],
    );
    let said = text(&out.stdout);
    assert!(said.contains("with planted bug identity-swap"), "{said}");
}

/// A server that greets every upgrade and records the `X-Debug` and `X-Group` headers it
/// was sent (empty when absent).
async fn spawn_header_recorder() -> (String, CancellationToken, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let (url, cancel) = spawn_server(move |tcp| {
        let record = record.clone();
        async move {
            let mut got = (String::new(), String::new());
            let callback =
                |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                 resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    got = (header("x-debug"), header("x-group"));
                    Ok(resp)
                };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                return;
            };
            record.lock().unwrap().push(got);
            let hello = json!({"type": "connection_established"});
            let _ = ws.send(Message::Text(hello.to_string().into())).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
    (url, cancel, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_values_from_the_environment_are_sent_but_never_written_and_replay_reads_them_again()
{
    const SECRET: &str = "hdr-secret-value-9917";
    const GROUP_SECRET: &str = "grp-secret-value-5512";
    let (url, stop, seen) = spawn_header_recorder().await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "hdr.toml",
        "name = \"hdr\"\nduration = \"3s\"\n[auth]\n\
         headers = { \"X-Debug\" = \"${STAMPEDE_TEST_HDR}\" }\n\
         [[group]]\nname = \"g\"\nusers = 1\n\
         headers = { \"X-Group\" = \"k=${STAMPEDE_TEST_GRP:-unused-default}\" }\n\
         steps = [{ expect = \"connection_established\", within = \"2s\" }, { close = 1000 }]\n",
    );
    let s = scenario.to_str().unwrap().to_string();
    let env = vec![
        ("STAMPEDE_TEST_HDR".to_string(), SECRET.to_string()),
        ("STAMPEDE_TEST_GRP".to_string(), GROUP_SECRET.to_string()),
    ];
    let leaks = |what: &str, body: &str| {
        assert!(
            !body.contains(SECRET),
            "{what} holds the header's value:\n{body}"
        );
        assert!(
            !body.contains(GROUP_SECRET),
            "{what} holds the group header's value:\n{body}"
        );
    };
    let strings = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();

    let plan = stampede_async(strings(&["plan", &s]), env.clone()).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    leaks("stampede plan", &text(&plan.stdout));
    assert!(text(&plan.stdout).contains("${STAMPEDE_TEST_HDR}"));
    // The plan's hash does not depend on the values.
    let other = vec![
        ("STAMPEDE_TEST_HDR".to_string(), "another".to_string()),
        ("STAMPEDE_TEST_GRP".to_string(), "other".to_string()),
    ];
    let plan_other = stampede_async(strings(&["plan", &s]), other).await;
    assert_eq!(text(&plan.stdout), text(&plan_other.stdout));

    let results = dir.path().join("results");
    let run = stampede_async(
        strings(&[
            "run",
            &s,
            "--target",
            &url,
            "--out",
            results.to_str().unwrap(),
            "-q",
        ]),
        env.clone(),
    )
    .await;
    let said = format!("{}{}", text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{said}");
    leaks("the run's console", &said);
    let expected = (SECRET.to_string(), format!("k={GROUP_SECRET}"));
    // Every upgrade of the run (the probe after it included) carried both values.
    let sent = |seen: &Mutex<Vec<(String, String)>>| {
        let all = seen.lock().unwrap().clone();
        assert!(all.iter().all(|h| *h == expected), "{all:?}");
        all.len()
    };
    let dialled = sent(&seen);
    assert!(dialled >= 1);
    let files = files_under(&results);
    for (path, body) in &files {
        leaks(&path.display().to_string(), body);
    }

    // A repro of the run's plan (as `hunt` writes one) names the variables only, and a
    // replay reads them again.
    let (_, plan_json) = files
        .iter()
        .find(|(p, _)| p.ends_with("plan.json"))
        .expect("the run wrote plan.json");
    let plan: stampede::model::Plan = serde_json::from_str(plan_json).unwrap();
    let named = common::scenario("named.toml", "name = \"hdr\"\nduration = \"2s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{ close = 1000 }]\n");
    let repro = stampede::hunt::Repro::for_plan(
        &named,
        1,
        plan,
        url.clone(),
        stampede::model::OracleKind::Liveness,
    );
    let path = dir.path().join("repro.json");
    repro.save_as(&path).unwrap();
    let p = path.to_str().unwrap().to_string();
    leaks("the repro", &std::fs::read_to_string(&path).unwrap());

    let refused = stampede_async(strings(&["replay", &p, "--times", "1"]), Vec::new()).await;
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("STAMPEDE_TEST_HDR"), "{err}");
    assert_eq!(sent(&seen), dialled, "nothing dialled without the value");

    let replay = stampede_async(strings(&["replay", &p, "--times", "1"]), env).await;
    stop.cancel();
    let said = format!("{}{}", text(&replay.stdout), text(&replay.stderr));
    assert!(said.contains("0/1 times"), "{said}");
    leaks("the replay's console", &said);
    assert!(sent(&seen) > dialled, "the replay dialled with both values");
}

/// A server that trusts anyone, records the path and query of every upgrade it accepts,
/// and greets with the bearer token as `user_id` (an identity violation every time, so
/// that a hunt finds one and writes a repro), after a presence record that names the
/// token's own user (so the field reads as the user's, and the token in it as a leak,
/// not as a field that names something else).
async fn spawn_query_recorder() -> (String, CancellationToken, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let (url, cancel) = spawn_server(move |tcp| {
        let record = record.clone();
        async move {
            let mut got = (String::new(), String::new());
            let callback =
                |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                 resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                    let token = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .unwrap_or_default();
                    got = (req.uri().to_string(), token.to_string());
                    Ok(resp)
                };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                return;
            };
            record.lock().unwrap().push(got.0);
            let user = common::unverified_sub(&got.1).unwrap_or_default();
            let presence = json!({"type": "presence", "user_id": user});
            let _ = ws.send(Message::Text(presence.to_string().into())).await;
            let hello = json!({"type": "connection_established", "user_id": got.1, "seq": 1});
            let _ = ws.send(Message::Text(hello.to_string().into())).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
    (url, cancel, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_url_from_the_environment_is_dialled_but_never_written_and_replay_reads_it_again()
{
    const SECRET: &str = "url-secret-value-6620";
    const VAR: &str = "STAMPEDE_TEST_URL_KEY";
    let (url, stop, seen) = spawn_query_recorder().await;
    let written = format!("{url}?k=${{{VAR}}}");
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "url.toml",
        &format!("target = \"{written}\"\n{ECHO_SCENARIO}"),
    );
    let s = scenario.to_str().unwrap().to_string();
    let env = vec![(VAR.to_string(), SECRET.to_string())];
    let leaks = |what: &str, body: &str| {
        assert!(
            !body.contains(SECRET),
            "{what} holds the URL's value:\n{body}"
        );
    };
    let strings = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    // Every upgrade so far carried the value in its query.
    let dialled = |seen: &Mutex<Vec<String>>| {
        let all = seen.lock().unwrap().clone();
        let want = format!("/ws?k={SECRET}");
        assert!(all.iter().all(|uri| *uri == want), "{all:?}");
        all.len()
    };

    let results = dir.path().join("results");
    let run = stampede_async(
        strings(&["run", &s, "--out", results.to_str().unwrap()]),
        env.clone(),
    )
    .await;
    let said = format!("{}{}", text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(1), "identity broke:\n{said}");
    assert!(
        said.contains(&written),
        "the console names the URL as written:\n{said}"
    );
    leaks("the run's console", &said);
    let after_run = dialled(&seen);
    assert!(after_run >= 2, "the run dialled the expanded URL");
    let summary = summary_leaking_nothing(&results, &leaks);
    assert_eq!(summary["target"], written.as_str());

    // `--target` takes a reference too.
    let flag = stampede_async(
        strings(&["run", &s, "--target", &written, "--no-results", "--json"]),
        env.clone(),
    )
    .await;
    let said = format!("{}{}", text(&flag.stdout), text(&flag.stderr));
    assert_eq!(flag.status.code(), Some(1), "{said}");
    leaks("a --target run", &said);
    let after_flag = dialled(&seen);
    assert!(after_flag > after_run);

    let repros = dir.path().join("repros");
    let hunt = stampede_async(
        strings(&[
            "hunt",
            &s,
            "--budget",
            "20s",
            "--confirm",
            "1",
            "--out",
            repros.to_str().unwrap(),
        ]),
        env.clone(),
    )
    .await;
    let found = text(&hunt.stdout);
    assert_eq!(hunt.status.code(), Some(1), "{found}{}", text(&hunt.stderr));
    leaks(
        "the hunt's console",
        &format!("{found}{}", text(&hunt.stderr)),
    );
    let path = found
        .lines()
        .find_map(|l| l.strip_prefix("repro"))
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|| panic!("no repro path in:\n{found}"));
    let repro = std::fs::read_to_string(&path).unwrap();
    leaks("the repro", &repro);
    let file: serde_json::Value = serde_json::from_str(&repro).unwrap();
    assert_eq!(file["target"], written.as_str());
    let before_replay = dialled(&seen);

    let refused = stampede_async(strings(&["replay", &path, "--times", "1"]), Vec::new()).await;
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains(VAR), "names the variable:\n{err}");
    assert_eq!(dialled(&seen), before_replay, "nothing dialled without it");

    let replay = stampede_async(strings(&["replay", &path, "--times", "1"]), env).await;
    stop.cancel();
    let said = format!("{}{}", text(&replay.stdout), text(&replay.stderr));
    assert!(said.contains("1/1 times"), "{said}");
    leaks("the replay's console", &said);
    assert!(
        dialled(&seen) > before_replay,
        "the replay dialled the expanded URL"
    );
}

/// A password written in the target URL (`ws://user:pw@host/`) is shown as `***`
/// everywhere: the console, the result files, a hunt's repro, a calibration's TOML, an
/// error about the URL. One given as `${NAME}` is dialled expanded (percent-encoded, so a
/// `/` or `@` in it leaves the host where it was) and shown as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_target_url_reaches_no_output_and_a_referenced_one_dials() {
    const PASSWORD: &str = "pw-literal-5583";
    const REFERENCED: &str = "p/w@x#y-9141";
    const VAR: &str = "STAMPEDE_TEST_URL_PW";
    let (url, stop, seen) = spawn_query_recorder().await;
    let with_password = url.replacen("ws://", &format!("ws://user:{PASSWORD}@"), 1);
    let shown = url.replacen("ws://", "ws://user:***@", 1);
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "pw.toml",
        &format!("target = \"{with_password}\"\n{ECHO_SCENARIO}"),
    );
    let s = scenario.to_str().unwrap().to_string();
    let leaks = |what: &str, body: &str| {
        for secret in [PASSWORD, REFERENCED] {
            assert!(!body.contains(secret), "{what} holds the password:\n{body}");
        }
    };
    let strings = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let said = |out: &Output| format!("{}{}", text(&out.stdout), text(&out.stderr));
    let dialled = |seen: &Mutex<Vec<String>>| seen.lock().unwrap().len();

    let results = dir.path().join("results");
    let run = stampede_async(
        strings(&["run", &s, "--out", results.to_str().unwrap()]),
        Vec::new(),
    )
    .await;
    assert_eq!(
        run.status.code(),
        Some(1),
        "identity broke:\n{}",
        said(&run)
    );
    assert!(said(&run).contains(&shown), "{}", said(&run));
    leaks("the run's console", &said(&run));
    let after_run = dialled(&seen);
    assert!(after_run >= 2, "the run dialled");
    let summary = summary_leaking_nothing(&results, &leaks);
    assert_eq!(summary["target"], shown.as_str());

    let flag = stampede_async(
        strings(&[
            "run",
            &s,
            "--target",
            &with_password,
            "--no-results",
            "--json",
        ]),
        Vec::new(),
    )
    .await;
    assert_eq!(flag.status.code(), Some(1), "{}", said(&flag));
    leaks("a --target run", &said(&flag));

    let learn = stampede_async(
        strings(&["learn", &s, "--target", &with_password]),
        Vec::new(),
    )
    .await;
    assert!(said(&learn).contains(&shown), "{}", said(&learn));
    leaks("learn", &said(&learn));

    let bad_port = with_password.replacen(&url[5..url.len() - 3], "127.0.0.1:99999", 1);
    let refused = stampede_async(
        strings(&["run", &s, "--target", &bad_port, "--no-results"]),
        Vec::new(),
    )
    .await;
    assert_eq!(refused.status.code(), Some(2), "{}", said(&refused));
    assert!(said(&refused).contains("user:***@"), "{}", said(&refused));
    leaks("an error about the URL", &said(&refused));

    let repros = dir.path().join("repros");
    let hunt = stampede_async(
        strings(&[
            "hunt",
            &s,
            "--budget",
            "20s",
            "--confirm",
            "1",
            "--out",
            repros.to_str().unwrap(),
        ]),
        Vec::new(),
    )
    .await;
    let found = text(&hunt.stdout);
    assert_eq!(hunt.status.code(), Some(1), "{}", said(&hunt));
    leaks("the hunt's console", &said(&hunt));
    let path = found
        .lines()
        .find_map(|l| l.strip_prefix("repro"))
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|| panic!("no repro path in:\n{found}"));
    let repro = std::fs::read_to_string(&path).unwrap();
    leaks("the repro", &repro);
    let file: serde_json::Value = serde_json::from_str(&repro).unwrap();
    assert_eq!(file["target"], shown.as_str());

    // `${NAME}` in the userinfo: dialled (a `/`, `@` or `#` in the value percent-encoded),
    // shown as written.
    let referenced = url.replacen("ws://", &format!("ws://user:${{{VAR}}}@"), 1);
    let before = dialled(&seen);
    let env = vec![(VAR.to_string(), REFERENCED.to_string())];
    let by_name = stampede_async(
        strings(&["run", &s, "--target", &referenced, "--no-results"]),
        env,
    )
    .await;
    stop.cancel();
    assert_eq!(by_name.status.code(), Some(1), "{}", said(&by_name));
    assert!(said(&by_name).contains(&referenced), "{}", said(&by_name));
    leaks("a run with ${NAME} in the userinfo", &said(&by_name));
    assert!(dialled(&seen) > before, "the run dialled the expanded URL");
}

/// Reads an HTTP request's head (up to its blank line) off `tcp`; `None` when the client
/// went first.
async fn request_head(tcp: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf).await {
            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
    Some(head)
}

/// A server that refuses every upgrade with HTTP 401 and a debug body naming the JWT
/// secret it verifies with, as written and percent-encoded (a misconfigured staging
/// server): the refusal is shown and written, the secret never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_secret_echoed_by_the_server_reaches_no_output() {
    const SECRET: &str = "Sup3r secret/hmac+key-0123456789";
    let encoded = "Sup3r%20secret%2Fhmac%2Bkey-0123456789";
    let body = format!("invalid signature: key={SECRET} (url form {encoded})");
    let (url, stop) = spawn_server(move |mut tcp| {
        let body = body.clone();
        async move {
            // Read the request's head, then refuse it.
            if request_head(&mut tcp).await.is_none() {
                return;
            }
            let reply = format!(
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tcp.write_all(reply.as_bytes()).await;
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "echo.toml", ECHO_SCENARIO);
    let out_dir = dir.path().join("results");
    let junit = dir.path().join("junit.xml");
    let args = |extra: &[&str]| {
        let mut both = vec!["--no-learn"];
        both.extend_from_slice(extra);
        run_args(&scenario, &url, &out_dir, &both)
    };
    let secret = vec![("STAMPEDE_JWT_SECRET".to_string(), SECRET.to_string())];
    let console = stampede_async(args(&["--junit", junit.to_str().unwrap()]), secret.clone()).await;
    let json = stampede_async(args(&["--json", "-q"]), secret).await;
    stop.cancel();
    let stdout = text(&console.stdout);
    assert_eq!(console.status.code(), Some(6), "auth refused:\n{stdout}");
    assert!(
        stdout.contains("key=<JWT secret>") && stdout.contains("url form <JWT secret>"),
        "the refusal is shown, the secret hidden:\n{stdout}"
    );
    let mut outputs = vec![
        ("console stdout".to_string(), stdout),
        ("console stderr".to_string(), text(&console.stderr)),
        ("--json stdout".to_string(), text(&json.stdout)),
        ("--json stderr".to_string(), text(&json.stderr)),
        (
            "junit".to_string(),
            std::fs::read_to_string(&junit).unwrap_or_default(),
        ),
    ];
    let files = files_under(&out_dir);
    assert!(!files.is_empty());
    outputs.extend(files.into_iter().map(|(p, b)| (p.display().to_string(), b)));
    for (name, body) in &outputs {
        assert!(
            !body.contains(SECRET) && !body.contains(encoded),
            "{name} holds the secret:\n{body}"
        );
    }
}

/// A target URL carrying a credential literally in its query (`?access_token=...`), and a
/// server that refuses every upgrade with HTTP 400 and a body quoting the request line: the
/// URL is shown masked, and so is what the server echoed of it, on the console and in
/// every file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_in_the_target_query_echoed_by_the_server_reaches_no_output() {
    const TOKEN: &str = "UrlTok-4242-zz";
    let (url, stop) = spawn_server(|mut tcp| async move {
        let Some(head) = request_head(&mut tcp).await else {
            return;
        };
        let line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let body = format!("bad request: {line}");
        let reply = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tcp.write_all(reply.as_bytes()).await;
    })
    .await;
    // Written literally, and filled per connection by a placeholder: neither reaches an
    // output, though only the first is a value the run knows beforehand.
    for (target, secret) in [
        (format!("{url}?access_token={TOKEN}&room=lobby"), TOKEN),
        (
            format!("{url}?access_token=LIT{{{{user}}}}SECRET&room=lobby"),
            "LIT0SECRET",
        ),
    ] {
        leaks_nowhere(&target, secret).await;
    }
    stop.cancel();
}

/// Runs the echo scenario against `target` and asserts `secret` reaches no output, while
/// the server's answer that quoted it is shown, masked.
async fn leaks_nowhere(target: &str, secret: &str) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "echo.toml", ECHO_SCENARIO);
    let out_dir = dir.path().join("results");
    let args = run_args(&scenario, target, &out_dir, &[]);
    let console = stampede_async(args, Vec::new()).await;
    let stdout = text(&console.stdout);
    assert!(
        stdout.contains("bad request: GET /?access_token=*** HTTP/1.1")
            || stdout.contains("access_token=***&room=lobby HTTP/1.1"),
        "the echo is shown, the credential masked:\n{stdout}"
    );
    let mut outputs = vec![
        ("console stdout".to_string(), stdout),
        ("console stderr".to_string(), text(&console.stderr)),
    ];
    let files = files_under(&out_dir);
    assert!(!files.is_empty());
    outputs.extend(files.into_iter().map(|(p, b)| (p.display().to_string(), b)));
    for (name, body) in &outputs {
        assert!(
            !body.contains(secret),
            "{name} holds the credential:\n{body}"
        );
    }
}

/// One connection that takes the greeting, then waits 2 s for a kind the server never
/// sends and closes: what a fault mid-session cuts.
fn greeted_then_waiting(name: &str) -> stampede::model::Scenario {
    greeted_then_waiting_n(name, 1)
}

/// [`greeted_then_waiting`] with `users` connections.
fn greeted_then_waiting_n(name: &str, users: u32) -> stampede::model::Scenario {
    common::scenario(
        &format!("{name}.toml"),
        &format!(
            r#"
name = "{name}"
duration = "5s"
[auth]
secret = {{ value = "stampede-test-secret" }}
[[group]]
name = "g"
users = {users}
steps = [
  {{ expect = "connection_established", within = "2s" }},
  {{ expect = "never", within = "2s" }},
  {{ close = 1000 }},
]
"#
        ),
    )
}

/// What each violation of the run says it saw, in order.
fn seen_of(outcome: &stampede::run::RunOutcome) -> Vec<&str> {
    outcome
        .results
        .violations
        .iter()
        .map(|v| v.seen.as_str())
        .collect()
}

/// Literal credentials (a credential-bearing upgrade header's value, a login request's
/// `Authorization` and its body naming a password) are sent by a run, but `stampede plan`,
/// `plan.json` and repro files hold `"<redacted>"` in their place, as for a literal
/// `[auth] secret`; a `${NAME}` stays as written. A replay of such a repro stops before
/// it dials and says it needs the scenario file, as for a `list` token, rather than send
/// the marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_credentials_are_sent_but_never_written_and_a_replay_asks_for_the_scenario() {
    const KEY: &str = "literal-secret-123";
    const PASSWORD: &str = "hunter2-literal";
    const BASIC: &str = "Basic dXNlcjpodW50ZXIyLWxpdGVyYWw=";
    let leaks = |what: &str, body: &str| {
        for secret in [KEY, PASSWORD, BASIC, "dXNlcjpodW50ZXIyLWxpdGVyYWw="] {
            assert!(!body.contains(secret), "{what} holds {secret:?}:\n{body}");
        }
    };
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let (url, stop) = spawn_server(move |tcp| {
        let record = record.clone();
        async move {
            let mut key = String::new();
            let callback =
                |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                 resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                    key = req
                        .headers()
                        .get("x-api-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    Ok(resp)
                };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                return;
            };
            record.lock().unwrap().push(key);
            let hello = json!({"type": "connection_established"});
            let _ = ws.send(Message::Text(hello.to_string().into())).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let headers = write(
        dir.path(),
        "headers.toml",
        &format!(
            "name = \"headers\"\nduration = \"3s\"\n[auth]\n\
             headers = {{ \"X-Api-Key\" = \"{KEY}\", \"X-Client\" = \"stampede-test\", \
             \"X-Debug\" = \"${{STAMPEDE_TEST_UNSET_HDR:-from-env}}\" }}\n\
             [[group]]\nname = \"g\"\nusers = 1\n\
             steps = [{{ expect = \"connection_established\", within = \"2s\" }}, {{ close = 1000 }}]\n"
        ),
    );
    let login = write(
        dir.path(),
        "login.toml",
        &format!(
            "name = \"login\"\nduration = \"2s\"\n[auth]\n\
             tokens = {{ login = \"http://127.0.0.1:9/login\", \
             body = '{{\"user\": \"user-{{{{user}}}}\", \"password\": \"{PASSWORD}\"}}', \
             headers = {{ Authorization = \"{BASIC}\" }}, token = \"access_token\" }}\n\
             [[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ close = 1000 }}]\n"
        ),
    );
    let strings = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    for scenario in [&headers, &login] {
        let plan = stampede_async(strings(&["plan", scenario.to_str().unwrap()]), Vec::new()).await;
        let out = text(&plan.stdout);
        assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
        leaks("stampede plan", &out);
        assert!(out.contains("<redacted>"), "{out}");
    }
    let plan = stampede_async(strings(&["plan", headers.to_str().unwrap()]), Vec::new()).await;
    let out = text(&plan.stdout);
    // What is not a credential is kept: a plain header, and a `${NAME}` as written.
    assert!(out.contains("stampede-test"), "{out}");
    assert!(
        out.contains("${STAMPEDE_TEST_UNSET_HDR:-from-env}"),
        "{out}"
    );

    // A run sends the literal, and writes it nowhere.
    let results = dir.path().join("results");
    let run = stampede_async(run_args(&headers, &url, &results, &["-q"]), Vec::new()).await;
    let said = format!("{}{}", text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{said}");
    leaks("the run's console", &said);
    let dialled = seen.lock().unwrap().clone();
    assert!(
        !dialled.is_empty() && dialled.iter().all(|k| k == KEY),
        "{dialled:?}"
    );
    let files = files_under(&results);
    for (path, body) in &files {
        leaks(&path.display().to_string(), body);
    }

    // A repro of the run's plan: the replay is refused before it dials, naming the header.
    let (_, plan_json) = files
        .iter()
        .find(|(p, _)| p.ends_with("plan.json"))
        .expect("the run wrote plan.json");
    let plan: stampede::model::Plan = serde_json::from_str(plan_json).unwrap();
    let named = common::scenario(
        "named.toml",
        "name = \"headers\"\nduration = \"2s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{ close = 1000 }]\n",
    );
    let repro = stampede::hunt::Repro::for_plan(
        &named,
        1,
        plan,
        url.clone(),
        stampede::model::OracleKind::Liveness,
    );
    let path = dir.path().join("repro.json");
    repro.save_as(&path).unwrap();
    leaks("the repro", &std::fs::read_to_string(&path).unwrap());
    let p = path.to_str().unwrap().to_string();
    let before = seen.lock().unwrap().len();
    let refused = stampede_async(strings(&["replay", &p, "--times", "1"]), Vec::new()).await;
    stop.cancel();
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("auth.headers X-Api-Key"), "{err}");
    assert!(err.contains("run the scenario file"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), before, "nothing dialled");

    // The login scenario's repro names its login header the same way.
    let (written, refused) = replay_of_plan(
        &std::fs::read_to_string(&login).unwrap(),
        "ws://127.0.0.1:9/ws",
        &dir.path().join("login-repro.json"),
        Vec::new(),
    )
    .await;
    leaks("the login repro", &written);
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("auth.tokens.headers Authorization"), "{err}");
}

/// Literal credentials written into the messages a script sends (a `first_message`
/// field named `password`, a `send` field `api_key`, a `send_text` frame's `passcode:`
/// line, as STOMP's CONNECT carries one) are sent as written, but `stampede plan`,
/// `plan.json` and repro files hold `<redacted>` in their place (they were written as
/// given); the run's own `{{token}}` stays a placeholder. A replay of such a repro stops
/// before it dials, naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_credentials_in_sent_messages_are_sent_but_never_written() {
    const PASSWORD: &str = "first-message-pw-77";
    const API_KEY: &str = "send-api-key-88";
    const PASSCODE: &str = "stomp-passcode-99";
    let leaks = |what: &str, body: &str| {
        for secret in [PASSWORD, API_KEY, PASSCODE] {
            assert!(!body.contains(secret), "{what} holds {secret:?}:\n{body}");
        }
    };
    let heard = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = heard.clone();
    let (url, stop) = spawn_server(move |tcp| {
        let record = record.clone();
        async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Text(t) = msg {
                    record.lock().unwrap().push(t.to_string());
                    let ack = json!({"type": "ack"});
                    let _ = ws.send(Message::Text(ack.to_string().into())).await;
                }
            }
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "messages.toml",
        &format!(
            "name = \"messages\"\nduration = \"3s\"\n[auth]\nsecret = {{ env = \"STAMPEDE_JWT_SECRET\" }}\n\
             placement = {{ first_message = {{ type = \"auth\", token = \"{{{{token}}}}\", password = \"{PASSWORD}\" }} }}\n\
             [[group]]\nname = \"g\"\nusers = 1\n\
             steps = [{{ expect = \"ack\", within = \"2s\" }}, \
             {{ send = {{ type = \"login\", api_key = \"{API_KEY}\" }} }}, {{ expect = \"ack\", within = \"2s\" }}, \
             {{ send_text = \"CONNECT\\npasscode:{PASSCODE}\\n\\n\" }}, {{ expect = \"ack\", within = \"2s\" }}, \
             {{ close = 1000 }}]\n"
        ),
    );
    let strings = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let env = || {
        vec![(
            "STAMPEDE_JWT_SECRET".to_string(),
            common::TEST_SECRET.to_string(),
        )]
    };
    let plan = stampede_async(strings(&["plan", scenario.to_str().unwrap()]), env()).await;
    let out = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    leaks("stampede plan", &out);
    assert!(
        out.contains("<redacted>") && out.contains("{{token}}"),
        "{out}"
    );

    let results = dir.path().join("results");
    let run = stampede_async(run_args(&scenario, &url, &results, &["-q"]), env()).await;
    let said = format!("{}{}", text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{said}");
    leaks("the run's console", &said);
    let sent = heard.lock().unwrap().join("\n");
    for secret in [PASSWORD, API_KEY, PASSCODE] {
        assert!(sent.contains(secret), "the server got {secret:?}: {sent}");
    }
    let files = files_under(&results);
    for (path, body) in &files {
        leaks(&path.display().to_string(), body);
    }

    let before = heard.lock().unwrap().len();
    let (written, refused) = replay_of_plan(
        &std::fs::read_to_string(&scenario).unwrap(),
        &url,
        &dir.path().join("repro.json"),
        env(),
    )
    .await;
    stop.cancel();
    leaks("the repro", &written);
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("auth first_message field password") && err.contains("run the scenario file"),
        "{err}"
    );
    assert_eq!(heard.lock().unwrap().len(), before, "nothing sent");

    // A text first message (`first_text`) keeps its credential lines out of files as a
    // `send_text` does, and a replay that lacks one names it instead of sending
    // `passcode:<redacted>`.
    let text_first = format!(
        "name = \"text-first\"\nduration = \"3s\"\n[auth]\nsecret = {{ env = \"STAMPEDE_JWT_SECRET\" }}\n\
         placement = {{ first_text = \"CONNECT\\npasscode:{PASSCODE}\\nauth:{{{{token}}}}\\n\" }}\n\
         [[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ close = 1000 }}]\n"
    );
    let path = dir.path().join("repro-text.json");
    let (written, refused) = replay_of_plan(&text_first, &url, &path, env()).await;
    leaks("the first_text repro", &written);
    assert!(written.contains("passcode:<redacted>"), "{written}");
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("auth first_text line passcode"), "{err}");

    // So is a login URL's literal secret query parameter: the URL is sent as written,
    // never stored, and a replay names it.
    const LOGIN_KEY: &str = "login-query-key-66";
    let login = format!(
        "name = \"login-url\"\nduration = \"2s\"\n[auth]\n\
         tokens = {{ login = \"http://127.0.0.1:9/login?api_key={LOGIN_KEY}\", token = \"t\" }}\n\
         [[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ close = 1000 }}]\n"
    );
    let file = write(dir.path(), "login-url.toml", &login);
    let plan = stampede_async(strings(&["plan", file.to_str().unwrap()]), env()).await;
    let out = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    assert!(
        !out.contains(LOGIN_KEY) && out.contains("<redacted>"),
        "{out}"
    );
    let (written, refused) = replay_of_plan(
        &login,
        "ws://127.0.0.1:9/ws",
        &dir.path().join("login-url-repro.json"),
        env(),
    )
    .await;
    assert!(!written.contains(LOGIN_KEY), "{written}");
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("auth.tokens.login"), "{err}");
}

/// Writes the repro of scenario `text`'s plan (seed 1) against `url` to `path` and
/// replays it once with `env`: what the file holds, and the replay's output.
async fn replay_of_plan(
    text: &str,
    url: &str,
    path: &Path,
    env: Vec<(String, String)>,
) -> (String, Output) {
    let s = common::scenario("replayed.toml", text);
    let repro = stampede::hunt::Repro::for_plan(
        &s,
        1,
        stampede::plan::build(&s, 1),
        url.to_string(),
        stampede::model::OracleKind::Liveness,
    );
    repro.save_as(path).unwrap();
    let written = std::fs::read_to_string(path).unwrap();
    let args = ["replay", path.to_str().unwrap(), "--times", "1"];
    let replayed = stampede_async(args.iter().map(|a| a.to_string()).collect(), env).await;
    (written, replayed)
}

/// `learn` against a server that refuses every token with 401, the tokens signed with the
/// public development secret because the variable the scenario names is unset: its error
/// says so where it is read (only the notice above it did), exit 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learn_refused_with_the_development_secret_says_so_in_its_error() {
    let (url, stop) = spawn_server(|mut tcp| async move {
        let mut buf = [0u8; 4096];
        let _ = tcp.read(&mut buf).await;
        let refusal = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let _ = tcp.write_all(refusal.as_bytes()).await;
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "dev.toml",
        "name = \"dev\"\nduration = \"2s\"\n[auth]\n\
         secret = { env = \"STAMPEDE_TEST_NEVER_SET_LEARN\", default = \"stampede-dev-secret\" }\n\
         [[group]]\nname = \"g\"\nusers = 1\nsteps = [{ close = 1000 }]\n",
    );
    let args = ["learn", file.to_str().unwrap(), "--target", &url];
    let learned = stampede_async(args.iter().map(|a| a.to_string()).collect(), Vec::new()).await;
    stop.cancel();
    let err = text(&learned.stderr);
    assert_eq!(learned.status.code(), Some(6), "{err}");
    assert!(
        err.contains(
            "STAMPEDE_TEST_NEVER_SET_LEARN is not set, so stampede's public development secret \
             is in use, and the tokens were signed with it"
        ),
        "{err}"
    );
}
