//! The binary: exit codes and error text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod report_support;

use report_support::closed_stdout;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn stampede(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .output()
        .expect("run the binary")
}

/// A scenario given through a pipe (`cat s.toml | stampede validate /dev/stdin`, or a
/// shell's `<(…)`) is read once: `validate` looked at it as a battery, then read it again
/// as a scenario and found it empty ("missing required field `name`"). A scenario and a
/// battery both.
#[test]
fn validate_reads_a_scenario_from_a_pipe() {
    for (file, said) in [
        ("scenarios/golden-path.toml", "/dev/stdin: ok (1 group"),
        ("scenarios/hunt.toml", "/dev/stdin: ok (a battery"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args(["validate", "/dev/stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let text = std::fs::read(file).unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, &text).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(0), "{file}: {stdout}{stderr}");
        assert!(stdout.contains(said), "{file}: {stdout}");
    }
}

/// A file with no end (`/dev/zero`, named by mistake) is refused once it passes the
/// scenario size bound, not read until memory runs out.
#[test]
fn validate_reads_no_file_without_bound() {
    let out = stampede(&["validate", "/dev/zero"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("/dev/zero:1:1: larger than 64 MiB: not a scenario"),
        "{said}"
    );
}

#[test]
fn validate_accepts_every_shipped_scenario() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 2);
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = stampede(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).matches(": ok").count(),
        files.len()
    );
    // Every shipped scenario judges what it sends.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("not judged"), "{err}");
    assert!(!err.contains("ends incomplete"), "{err}");
}

/// A valid scenario that sends something no `expect` follows is valid (exit 0), and
/// `validate` says, before any run, that what the server does with it is not judged, at
/// the file:line:column of that send, and that a run with nothing after it is inconclusive.
#[test]
fn validate_notes_sends_no_expect_follows() {
    let text = "name = \"blind\"\nduration = \"5s\"\n\n[[group]]\nname = \"speakers\"\nusers = 1\n\
                steps = [{ expect = \"welcome\", within = \"1s\" }, { send = { command = \"speak\" } }, { close = 1000 }]\n";
    let file = Written::new("blind.toml", text);
    let (code, out, err) = file.validate();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(": ok (1 group, 1 connection)"), "{out}");
    assert!(
        err.contains(&format!(
            "note: {}:7:49: what the server does with the send at `speakers` step 2 is not judged",
            file.path.display()
        )) && err.contains("a run in which nothing comes after such a send is inconclusive"),
        "{err}"
    );
}

/// A scenario file written into a fresh folder (kept while this lives).
struct Written {
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Written {
    fn new(name: &str, text: &str) -> Written {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        Written { dir, path }
    }

    /// `file:line:column`, as problems name this file.
    fn at(&self, line: u32, column: u32) -> String {
        format!("{}:{line}:{column}", self.path.display())
    }

    /// `stampede COMMAND FILE ARGS...` with `unset` removed from the environment: exit
    /// code, stdout, stderr.
    fn stampede(
        &self,
        command: &str,
        args: &[&str],
        unset: &[&str],
    ) -> (Option<i32>, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stampede"));
        cmd.arg(command).arg(&self.path).args(args);
        for name in unset {
            cmd.env_remove(name);
        }
        let out = cmd.output().expect("run the binary");
        let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    }

    fn validate(&self) -> (Option<i32>, String, String) {
        self.stampede("validate", &[], &[])
    }
}

/// A catalogue group with fewer token slots than the catalogue has entries never tries
/// the rest: `validate` says so, at the group, and how many; one with enough says nothing.
#[test]
fn validate_notes_a_catalogue_group_too_small_to_try_every_entry() {
    let group = |users: u32| {
        format!(
            "name = \"c\"\nduration = \"5s\"\n\n[[group]]\nname = \"bad\"\nusers = {users}\nforge = \"catalogue\"\nsteps = [{{ close = 1000 }}]\n"
        )
    };
    let entries = stampede::model::BadToken::all().count();
    let (code, _, err) = Written::new("small.toml", &group(5)).validate();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("small.toml:4:1: group `bad` deals the bad-token catalogue's")
            && err.contains(&format!(
                "over 5 token slots: {} of them are never tried",
                entries - 5
            )),
        "{err}"
    );
    let (code, _, err) = Written::new("whole.toml", &group(entries as u32)).validate();
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("catalogue"), "{err}");
}

#[test]
fn validate_names_file_line_and_column_and_exits_2() {
    let text = "name = \"broken\"\nduration = \"5 sec\"\n\n[[group]]\nname = \"g\"\nusres = 3\nsteps = []\n";
    let file = Written::new("broken.toml", text);
    let (code, _, err) = file.validate();
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&file.at(2, 12)),
        "bad duration not located:\n{err}"
    );
    assert!(
        err.contains(&file.at(6, 1)),
        "unknown field not located:\n{err}"
    );
    assert!(err.contains("usres"), "{err}");
}

/// `run` prints a scenario's problems as `validate` does, every line
/// `FILE:LINE:COLUMN: MESSAGE` (what editors and CI annotators read), the first with no
/// `error: ` before it.
#[test]
fn run_names_a_scenarios_problems_as_validate_does() {
    let text = "name = \"broken\"\nduraton = \"5s\"\n";
    let file = Written::new("broken.toml", text);
    let (code, _, validated) = file.validate();
    assert_eq!(code, Some(2), "{validated}");
    let (code, out, ran) = file.stampede("run", &["--no-results"], &[]);
    assert_eq!(code, Some(2), "{out}{ran}");
    assert_eq!(ran, validated);
    assert!(ran.starts_with(&format!("{}: ", file.at(1, 1))), "{ran}");
}

/// A repro file (JSON from `hunt`) given where a scenario goes is named for what it is,
/// with the commands that take it, instead of TOML parse errors; other JSON is told that
/// a scenario is TOML.
#[test]
fn validate_and_run_say_a_repro_is_no_scenario() {
    let repro = "scenarios/regressions/identity-swap.json";
    for args in [&["validate", repro][..], &["run", repro, "--no-results"]] {
        let command = args[0];
        let out = stampede(args);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {said}");
        assert!(
            said.contains(&format!("{repro} is a repro file"))
                && said.contains(&format!("stampede replay {repro}"))
                && said.contains(&format!("stampede shrink {repro}")),
            "{command}: {said}"
        );
        assert!(!said.contains(":1:1"), "no TOML parse error: {said}");
    }
    let other = Written::new(
        "summary.json",
        "{ \"schema_version\": 2, \"scenario\": \"x\" }\n",
    );
    let (code, _, err) = other.validate();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("holds JSON, but a scenario is TOML") && !err.contains("is a repro file"),
        "{err}"
    );
}

/// `[auth]` with `secret` and `tokens` as given, then a group.
fn with_auth(secret: &str, tokens: &str) -> String {
    format!("name = \"files\"\nduration = \"5s\"\n[auth]\nsecret = {secret}\ntokens = {tokens}\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ close = 1000 }}]\n")
}

#[test]
fn validate_names_a_token_or_secret_file_that_cannot_be_read() {
    let text = with_auth(
        r#"{ file = "keys/secret.txt" }"#,
        r#"{ file = "tokens.txt" }"#,
    );
    let file = Written::new("files.toml", &text);
    let (code, _, err) = file.validate();
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&file.at(4, 19)),
        "secret file not located:\n{err}"
    );
    assert!(
        err.contains(&file.at(5, 19)),
        "token file not located:\n{err}"
    );
    assert!(err.contains("auth.tokens.file: cannot read"), "{err}");
    // Relative to the scenario's folder, and fine once the files are there; their contents
    // are never part of the message.
    let dir = file.dir.path();
    std::fs::create_dir(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/secret.txt"), "a-secret-value").unwrap();
    std::fs::write(dir.join("tokens.txt"), "tok-1\n").unwrap();
    let (code, _, err) = file.validate();
    assert_eq!(code, Some(0), "{err}");
}

/// What used to pass `validate` and then fail `run` with exit 2 and no place: a secret
/// file that is a directory, a token file with no token, a secret's variable unset. Each
/// is now named at its key with what was expected, by `validate` and by `run` alike
/// (the unset variable: a warning for `validate`, which checks the file, often where the
/// secrets are deliberately absent; an error for `run`). No message shows a secret.
#[test]
fn validate_and_run_name_unusable_auth_inputs_at_their_key() {
    const UNSET: &str = "STAMPEDE_TEST_SURELY_UNSET_SECRET";
    let target = ["--target", "ws://127.0.0.1:9/ws", "--no-results", "-q"];
    let cases = [
        (
            with_auth(r#"{ file = "keys" }"#, r#"{ list = ["t"] }"#),
            (4, 19),
            "auth.secret.file: expected a file holding the JWT secret, found a directory",
        ),
        (
            with_auth(r#"{ file = "secret.txt" }"#, r#"{ file = "empty.txt" }"#),
            (5, 19),
            "auth.tokens.file: expected a file with at least one token, one per line, found an empty file",
        ),
    ];
    for (text, (line, column), says) in cases {
        let file = Written::new("inputs.toml", &text);
        let dir = file.dir.path();
        std::fs::create_dir(dir.join("keys")).unwrap();
        std::fs::write(dir.join("secret.txt"), "a-secret-value\n").unwrap();
        std::fs::write(dir.join("empty.txt"), "\n  \n").unwrap();
        let located = format!("{}: {says}", file.at(line, column));
        for (command, args) in [("validate", &[][..]), ("run", &target[..])] {
            let (code, out, err) = file.stampede(command, args, &[]);
            assert_eq!(code, Some(2), "{command}: {out}{err}");
            assert!(
                err.contains(&located),
                "{command}: expected {located:?} in:\n{err}"
            );
            assert!(!err.contains("a-secret-value"), "{err}");
        }
    }
    let secret = format!(r#"{{ env = "{UNSET}" }}"#);
    // Both files put the secret on line 4, column 18.
    let unset_at = |file: &Written| {
        format!(
            "{}: auth.secret.env: expected the environment variable {UNSET} to hold the JWT secret; it is not set",
            file.at(4, 18)
        )
    };
    let file = Written::new("env.toml", &with_auth(&secret, r#"{ list = ["t"] }"#));
    let says = unset_at(&file);
    let (code, out, err) = file.stampede("validate", &[], &[UNSET]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(": ok"), "{out}");
    assert!(err.contains(&format!("warning: {says}")), "{err}");
    for command in ["run", "hunt", "learn"] {
        let (code, _, err) = file.stampede(command, &target[..2], &[UNSET]);
        assert_eq!(code, Some(2), "{command}: {err}");
        assert!(err.contains(&says), "{command}: {err}");
    }
    // A battery file is checked the same way: `hunt` refuses before any family runs.
    let battery = Written::new(
        "battery.toml",
        &format!(
            "name = \"b\"\nduration = \"5s\"\n[auth]\nsecret = {secret}\n[battery]\nrequest = {{ type = \"ping\" }}\n"
        ),
    );
    let says = unset_at(&battery);
    let (code, out, err) = battery.stampede("validate", &[], &[UNSET]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("a battery"), "{out}");
    assert!(err.contains(&format!("warning: {says}")), "{err}");
    let (code, _, err) = battery.stampede("hunt", &target[..2], &[UNSET]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&says), "{err}");
    assert!(!err.contains("family"), "no family ran: {err}");
    // Set, it is neither warned about nor shown.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stampede"));
    let out = cmd
        .args(["validate", file.path.to_str().unwrap()])
        .env(UNSET, "the-secret-itself")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("warning"), "{err}");
    assert!(!err.contains("the-secret-itself"), "{err}");
}

/// One token given twice (in `tokens.list`, or twice in a token file) would be labelled as
/// two tokens, so a correct server refusing its second concurrent use would read as a
/// liveness violation. `validate` and `run` refuse it (exit 2) at file:line:column, naming
/// the entries by position and never the token.
#[test]
fn validate_and_run_refuse_a_token_given_twice_naming_entries_not_tokens() {
    let target = ["--target", "ws://127.0.0.1:9/ws", "--no-results", "-q"];
    let listed = with_auth(
        r#"{ value = "a-secret-value" }"#,
        r#"{ list = ["tok-alpha-1", "tok-bravo-2", "tok-alpha-1"] }"#,
    );
    let file = Written::new("twice.toml", &listed);
    let located = format!(
        "{}: auth.tokens.list: entries 1 and 3 are the same token;",
        file.at(5, 50)
    );
    for (command, args) in [("validate", &[][..]), ("run", &target[..])] {
        let (code, out, err) = file.stampede(command, args, &[]);
        assert_eq!(code, Some(2), "{command}: {out}{err}");
        assert!(
            err.contains(&located),
            "{command}: expected {located:?} in:\n{err}"
        );
        assert!(!err.contains("tok-alpha"), "{command}: {err}");
    }
    let in_file = with_auth(
        r#"{ value = "a-secret-value" }"#,
        r#"{ file = "tokens.txt" }"#,
    );
    let file = Written::new("twice-file.toml", &in_file);
    let tokens = file.dir.path().join("tokens.txt");
    std::fs::write(&tokens, "tok-alpha-1\ntok-bravo-2\ntok-alpha-1\n").unwrap();
    let (code, _, err) = file.validate();
    assert_eq!(code, Some(2), "{err}");
    let located = format!(
        "{}: auth.tokens.file: in {:?}, lines 1 and 3 are the same token;",
        file.at(5, 19),
        tokens.display().to_string()
    );
    assert!(err.contains(&located), "expected {located:?} in:\n{err}");
    assert!(!err.contains("tok-alpha"), "{err}");
    std::fs::write(&tokens, "tok-alpha-1\ntok-bravo-2\n").unwrap();
    let (code, _, err) = file.validate();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_missing_scenario_file_is_a_usage_error() {
    let out = stampede(&["run", "/nonexistent/scenario.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/scenario.toml"));
}

/// A run of no time measures nothing: `--duration 0s` (or `0`) is a usage error, before
/// any target is touched, not a run.
#[test]
fn a_zero_run_duration_is_a_usage_error() {
    for zero in ["0s", "0", "0ms"] {
        let out = stampede(&[
            "run",
            "scenarios/golden-path.toml",
            "--target",
            "ws://127.0.0.1:9/ws",
            "--no-results",
            "-q",
            "--duration",
            zero,
        ]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{zero}: {said}");
        assert!(
            said.contains("the run duration must be greater than zero")
                && said.contains(&format!("{zero:?}")),
            "{zero}: {said}"
        );
    }
}

/// A target port out of range or not a number is refused (exit 2) rather than taken for
/// no port, which dialled port 80 while the console named the port given.
#[test]
fn an_invalid_target_port_is_a_usage_error() {
    for port in ["99999", "65536", "abc"] {
        let target = format!("ws://127.0.0.1:{port}/ws");
        let out = stampede(&[
            "run",
            "scenarios/golden-path.toml",
            "--target",
            &target,
            "--no-results",
            "-q",
        ]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{port}: {said}");
        assert!(said.contains(&format!("invalid port \"{port}\"")), "{said}");
        assert!(
            out.stdout.is_empty(),
            "nothing ran: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let file = Written::new(
            "port.toml",
            &format!("name = \"p\"\nduration = \"1s\"\ntarget = \"{target}\"\n"),
        );
        let (code, _, err) = file.validate();
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains(&file.at(3, 10)),
            "not located at the target:\n{err}"
        );
        assert!(err.contains(&format!("invalid port \"{port}\"")), "{err}");
    }
}

/// A `--target` that is no WebSocket URL is refused (exit 2) first and alone: no notice
/// about the development secret its tokens would be signed with comes before the refusal.
#[test]
fn a_malformed_target_is_refused_before_any_notice() {
    for target in ["ws://[::1", "notaurl"] {
        let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args(["run", "scenarios/golden-path.toml", "--target", target])
            .arg("--no-results")
            .env_remove("STAMPEDE_JWT_SECRET")
            .env_remove("STAMPEDE_TARGET")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target}: {said}");
        assert_eq!(said.lines().count(), 1, "{target}: {said}");
        assert!(
            said.starts_with(&format!("error: target {target}: ")),
            "{said}"
        );
        assert!(out.stdout.is_empty(), "{target}: nothing ran");
    }
}

/// `--reference` (or `--bug`) beside a `STAMPEDE_TARGET` a CI job exports runs against the
/// built-in server (the environment's URL, a closed port here, is left out); beside a
/// `--target` typed on the command line it is refused as a conflict (exit 2). clap's
/// conflict rule refused the first too, naming a `--target` nobody typed.
#[test]
fn reference_and_bug_win_over_the_environments_target_not_the_command_lines() {
    // Exported empty, the variable names no target: the built-in server is it.
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            "run",
            "scenarios/golden-path.toml",
            "--no-learn",
            "--no-results",
        ])
        .args(["--duration", "1s"])
        .env("STAMPEDE_TARGET", "")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("not a URL"), "{said}");
    assert!(said.contains("built-in reference server"), "{said}");
    let closed = "ws://127.0.0.1:9/ws";
    for built_in in [["--reference", ""], ["--bug", "identity-swap"]] {
        let flags: Vec<&str> = built_in.into_iter().filter(|f| !f.is_empty()).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args([
                "run",
                "scenarios/golden-path.toml",
                "--no-learn",
                "--no-results",
            ])
            .args(["--duration", "1s"])
            .args(&flags)
            .env("STAMPEDE_TARGET", closed)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("built-in reference server"),
            "{flags:?}: {said}"
        );
        assert!(!said.contains("cannot be used with"), "{flags:?}: {said}");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(!printed.contains("connect_refused"), "{flags:?}: {printed}");
        let typed = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args(["run", "scenarios/golden-path.toml", "--no-results"])
            .args(["--target", closed])
            .args(&flags)
            .env_remove("STAMPEDE_TARGET")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&typed.stderr);
        assert_eq!(typed.status.code(), Some(2), "{flags:?}: {said}");
        assert!(
            said.contains("--target cannot be used with --reference or --bug"),
            "{said}"
        );
    }
}

/// A target's path takes the connection's placeholders (`ws://host/ocpp/CP{{user}}`),
/// its host and port none: `validate` refuses one there, or an unknown one, at its
/// file:line:column (exit 2), and `run` and `learn` refuse the same in `--target` or
/// `STAMPEDE_TARGET` before anything dials, naming the variable when it came from there.
#[test]
fn target_placeholders_in_the_host_or_unknown_are_usage_errors() {
    let scenario = |target: &str| {
        format!(
            "name = \"p\"\nduration = \"1s\"\ntarget = \"{target}\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ close = 1000 }}]\n"
        )
    };
    let ok = Written::new("ok.toml", &scenario("ws://127.0.0.1:9/ocpp/CP{{user}}"));
    let (code, out, err) = ok.validate();
    assert_eq!(code, Some(0), "{out}{err}");
    let cases = [
        (
            "ws://cp{{user}}.example:9/ocpp",
            18,
            "target: placeholder \"{{user}}\" in the URL's host or port",
        ),
        (
            "ws://127.0.0.1:9/ocpp/{{rn}}",
            33,
            "unknown placeholder \"{{rn}}\" in target; expected one of: {{user}}, {{conn}}, {{group}}, {{sub}}",
        ),
    ];
    for (target, column, message) in cases {
        let file = Written::new("bad.toml", &scenario(target));
        let (code, _, err) = file.validate();
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains(&format!("{}: {message}", file.at(3, column))),
            "{target}:\n{err}"
        );
        let message = message.trim_start_matches("target: ");
        for (command, extra) in [("run", &["--no-results", "-q"][..]), ("learn", &[][..])] {
            let args = [&["--target", target][..], extra].concat();
            let (code, out, err) = ok.stampede(command, &args, &[]);
            assert_eq!(code, Some(2), "{command} {target}: {out}{err}");
            assert!(err.contains(message), "{command} {target}: {err}");
            assert!(out.is_empty(), "nothing ran: {out}");
            assert!(
                !err.contains("STAMPEDE_TARGET"),
                "typed, not exported: {err}"
            );
        }
        let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args(["run", ok.path.to_str().unwrap(), "--no-results", "-q"])
            .env("STAMPEDE_TARGET", target)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "STAMPEDE_TARGET={target}: {said}"
        );
        assert!(said.contains(message), "STAMPEDE_TARGET={target}: {said}");
        // Nothing on the command line shows where the URL came from.
        assert!(
            said.contains("the target came from the STAMPEDE_TARGET environment variable"),
            "STAMPEDE_TARGET={target}: {said}"
        );
    }
}

/// A login URL's port (`[auth] tokens = { login = ... }`) is checked as the target's:
/// `validate` and `run` refuse it (exit 2) at the URL, before anything is sent, rather
/// than ask the scheme's default port for tokens.
#[test]
fn an_invalid_login_port_is_a_usage_error_at_the_url() {
    for port in ["99999", "abc"] {
        let file = Written::new(
            "login.toml",
            &format!(
                "name = \"l\"\nduration = \"1s\"\n[auth]\n\
                 tokens = {{ login = \"http://127.0.0.1:{port}/login\", token = \"t\" }}\n\
                 [[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ close = 1000 }}]\n"
            ),
        );
        for command in ["validate", "run"] {
            let args: &[&str] = if command == "run" {
                &["--no-results", "-q"]
            } else {
                &[]
            };
            let (code, out, err) = file.stampede(command, args, &[]);
            assert_eq!(code, Some(2), "{command} {port}: {err}");
            assert!(
                err.contains(&file.at(4, 20)),
                "{command}: not located at the login URL:\n{err}"
            );
            assert!(
                err.contains(&format!("auth.tokens.login: invalid port \"{port}\"")),
                "{command}: {err}"
            );
            assert!(!out.contains("verdict"), "{command}: nothing ran: {out}");
        }
    }
}

/// `-o` naming a file (or a folder under a file) is a usage error naming the file, said
/// at once rather than after calibration and the load.
#[test]
fn a_results_folder_that_is_a_file_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("results.txt");
    std::fs::write(&file, "not a folder").unwrap();
    let below = file.join("nightly");
    for (out, named) in [
        (&file, "is a file, not a folder;"),
        (&below, "is a file, not a folder, so nothing"),
    ] {
        let out = out.display().to_string();
        let said = stampede(&[
            "run",
            "scenarios/golden-path.toml",
            "--target",
            "ws://127.0.0.1:9/ws",
            "--duration",
            "1s",
            "-q",
            "-o",
            &out,
        ]);
        let err = String::from_utf8_lossy(&said.stderr);
        assert_eq!(said.status.code(), Some(2), "{out}: {err}");
        assert!(
            err.contains(&format!("-o {out}"))
                && err.contains(&format!("{} {named}", file.display()))
                && err.contains("--no-results"),
            "{out}: {err}"
        );
    }
}

/// A folder `-o` or `--junit` cannot write into (here under `/proc`, where nothing can be
/// made, as for a read-only mount or a folder of another user's) is refused before any
/// network work, exit 3, naming the folder and the flag: found after the load, it cost
/// the whole run and its verdict. The target is a closed port: a run that went ahead
/// would say so on stdout.
#[test]
fn a_folder_the_run_cannot_write_into_is_refused_before_the_run() {
    for flags in [
        ["-o", "/proc/stampede-no-such/results", "--quiet"],
        [
            "--junit",
            "/proc/stampede-no-such/junit.xml",
            "--no-results",
        ],
    ] {
        let said = stampede(&[
            "run",
            "scenarios/golden-path.toml",
            "--target",
            "ws://127.0.0.1:9/ws",
            "--duration",
            "1s",
            "--no-learn",
            flags[0],
            flags[1],
            flags[2],
        ]);
        let (out, err) = (
            String::from_utf8_lossy(&said.stdout),
            String::from_utf8_lossy(&said.stderr),
        );
        assert_eq!(said.status.code(), Some(3), "{flags:?}: {err}");
        assert!(
            err.contains("cannot write /proc/stampede-no-such")
                && err.contains(&format!("(the folder {} writes into)", flags[0])),
            "{flags:?}: {err}"
        );
        assert!(!out.contains("verdict"), "{flags:?}: nothing ran: {out}");
    }
}

/// A duration too short for any answer (`--duration 1ms`) cuts calibration's connection
/// too: that is the time running out, never "the target accepted no calibration
/// connection … fix that first", which blamed a correct server.
#[test]
fn a_duration_too_short_for_calibration_does_not_blame_the_target() {
    let out = stampede(&[
        "run",
        "scenarios/golden-path.toml",
        "--duration",
        "1ms",
        "--no-results",
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    // Incomplete, however far the load got on a busy machine (none answered, or two).
    assert_eq!(out.status.code(), Some(7), "{said}");
    assert!(said.contains("verdict      INCOMPLETE: "), "{said}");
    assert!(
        !said.contains("accepted no calibration connection"),
        "{said}"
    );
}

/// A file or folder that cannot be written is named as the user gave it: `man -o DIR`
/// said `No such file or directory (os error 2)` with no path; `report -o FILE` named
/// the temporary `FILE.tmp` beside it.
#[test]
fn a_path_that_cannot_be_written_is_named_as_given() {
    let out = stampede(&["man", "-o", "/proc/stampede-no-such"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains("cannot write /proc/stampede-no-such:"),
        "{said}"
    );
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let said = stampede(&[
        "run",
        "scenarios/golden-path.toml",
        "--no-learn",
        "--duration",
        "300ms",
        "-q",
        "-o",
        run.to_str().unwrap(),
    ]);
    assert!(said.status.code().is_some());
    let result = std::fs::read_dir(run.join("golden-path"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let out = stampede(&[
        "report",
        result.to_str().unwrap(),
        "-o",
        "/proc/stampede-report.html",
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains("cannot write /proc/stampede-report.html:") && !said.contains(".tmp"),
        "{said}"
    );
}

/// `--bug-window` on a replay or shrink that goes to a URL (the built-in server's window,
/// which a URL has none of) is refused before anything is dialled, exit 2: it was dropped
/// without a word.
#[test]
fn a_bug_window_for_a_url_is_refused() {
    for command in ["replay", "shrink"] {
        let out = stampede(&[
            command,
            "scenarios/regressions/early-message-drop.json",
            "--target",
            "ws://127.0.0.1:9/ws",
            "--bug-window",
            "50ms",
        ]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {said}");
        assert!(
            said.contains("--bug-window sets the race window of the built-in server's planted bug")
                && !said.contains("running against"),
            "{command}: {said}"
        );
    }
}

/// A `--junit` path that is a folder is refused once, before the run, and nothing is
/// written beside it: the refusal's own JUnit file was tried there too (a second error,
/// and a stray `FOLDER.tmp`).
#[test]
fn a_junit_folder_is_refused_once() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("junit");
    std::fs::create_dir(&folder).unwrap();
    let out = stampede(&[
        "run",
        "scenarios/golden-path.toml",
        "--junit",
        folder.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert_eq!(said.matches("error:").count(), 1, "{said}");
    assert!(said.contains("is a folder, not a file"), "{said}");
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(written.len(), 1, "{written:?}");
}

/// Flags that contradict each other are refused, exit 2, not one silently ignored:
/// `--insecure` with `--ca-file` (trust a CA, or trust anything?), `--no-results` with
/// `-o` (write results there, or none?). Either alone is taken (`-o`'s default with
/// `--no-results` too).
#[test]
fn contradicting_flags_are_refused() {
    for (command, pair) in [
        ("run", ["--insecure", "--ca-file=ca.pem"]),
        ("hunt", ["--insecure", "--ca-file=ca.pem"]),
        ("run", ["--no-results", "-o=elsewhere"]),
    ] {
        let mut args = vec![command, "scenarios/golden-path.toml"];
        args.extend(pair);
        let out = stampede(&args);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains("cannot be used with"), "{args:?}: {said}");
    }
}

/// `hunt --no-results` (a `run` option) is refused saying what a hunt writes, not met by
/// the parser's suggestion of `--reset`.
#[test]
fn hunt_refuses_no_results_saying_what_it_writes() {
    let out = stampede(&["hunt", "scenarios/golden-path.toml", "--no-results"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--no-results applies to run"), "{err}");
    assert!(!err.contains("--reset"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_hunt_whose_repro_folder_is_a_file_is_refused_before_its_first_round() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("afile");
    std::fs::write(&file, "not a folder").unwrap();
    let out = file.display().to_string();
    // A closed port: had the hunt started, it would say the target is unusable (exit 5).
    let said = stampede(&[
        "hunt",
        "scenarios/golden-path.toml",
        "--target",
        "ws://127.0.0.1:9/ws",
        "--budget",
        "5s",
        "-q",
        "-o",
        &out,
    ]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "-o {out} is a file, not a folder; repro files go into a folder"
        )),
        "{err}"
    );
}

/// `shrink -o DIR/FILE` with DIR missing creates DIR, as `run -o` does, and writes the
/// minimal repro there: it used to shrink first, then fail with `cannot write DIR/….tmp`.
#[test]
fn shrink_creates_the_folder_of_its_output() {
    let tmp = tempfile::tempdir().unwrap();
    let repro = tmp.path().join("repro.json");
    // A hunt's repro (4 connections; the regression file is minimal already): the shrink
    // has connections to drop.
    let hunted = tmp.path().join("hunted");
    // Bounded by their budgets; the planted bug reproduces at once, so each command takes
    // seconds (a dropped message costs its expectation's 1 s `within` per replay). A few
    // tries each: one on a loaded machine may miss the bug's window.
    let planted = [
        "--bug",
        "early-message-drop",
        "--times",
        "3",
        "--budget",
        "60s",
    ];
    let with = |args: &[&str]| {
        let said = stampede(&[args, &planted[..]].concat());
        let stdout = String::from_utf8_lossy(&said.stdout).to_string();
        let stderr = String::from_utf8_lossy(&said.stderr);
        assert_eq!(said.status.code(), Some(1), "{args:?}: {stdout}\n{stderr}");
        stdout
    };
    let race = "scenarios/races/early-message-drop.toml";
    let stdout = with(&["hunt", race, "-q", "-o", hunted.to_str().unwrap()]);
    // The find says what to do with it next.
    assert!(stdout.contains("next         stampede shrink "), "{stdout}");
    let found = std::fs::read_dir(hunted.join("race-early-message-drop"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("the hunt's repro");
    std::fs::copy(found, &repro).unwrap();
    let shrink = |input: &Path, out: &Path| {
        with(&[
            "shrink",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let out = tmp.path().join("missing/deeper/x.json");
    let stdout = shrink(&repro, &out);
    assert!(out.is_file(), "no {}: {stdout}", out.display());
    // The built-in server is restarted between tries: no note of state they shared.
    assert!(!stdout.contains("its tries ran back to back"), "{stdout}");
    // Shrunk again, the minimal repro loses no connection, action or offset: a copy of it
    // would read as a smaller repro, so nothing is written, and it still reproduces (1).
    let again = tmp.path().join("again.json");
    let stdout = shrink(&out, &again);
    assert!(
        stdout.contains("already minimal") && stdout.contains("nothing written"),
        "{stdout}"
    );
    assert!(!again.exists(), "{stdout}");
}

/// Shrinks a copy (in `dir`) of the already-minimal early-message-drop repro against the
/// built-in server with that bug, `--times` `times`, into `-o out`: (exit code, stdout,
/// stderr).
fn shrink_minimal_repro(dir: &Path, out: &Path, times: &str) -> (Option<i32>, String, String) {
    let repro = dir.join("repro.json");
    std::fs::copy("scenarios/regressions/early-message-drop.json", &repro).unwrap();
    let said = stampede(&[
        "shrink",
        repro.to_str().unwrap(),
        "--bug",
        "early-message-drop",
        "--times",
        times,
        "--budget",
        "30s",
        "-o",
        out.to_str().unwrap(),
    ]);
    (
        said.status.code(),
        String::from_utf8_lossy(&said.stdout).into_owned(),
        String::from_utf8_lossy(&said.stderr).into_owned(),
    )
}

/// `shrink -o DIR/FILE` that writes nothing (the repro is minimal already) takes away the
/// folders it created for FILE, not the folder above them that was there before.
#[test]
fn shrink_that_writes_nothing_leaves_no_folder_it_created() {
    let tmp = tempfile::tempdir().unwrap();
    // There before, and empty: it stays.
    let kept = tmp.path().join("kept");
    std::fs::create_dir(&kept).unwrap();
    let (code, stdout, stderr) =
        shrink_minimal_repro(tmp.path(), &kept.join("new/deeper/x.json"), "3");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("already minimal") && stdout.contains("nothing written"),
        "{stdout}"
    );
    assert!(!kept.join("new").exists(), "{stdout}");
    assert!(kept.is_dir(), "{stdout}");
}

/// `shrink -o FILE` whose folder cannot be one (a file is in the way) is refused before
/// any replay, not after the whole shrink.
#[test]
fn shrink_refuses_an_output_under_a_file_before_it_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("afile");
    std::fs::write(&file, "not a folder").unwrap();
    let (code, stdout, stderr) = shrink_minimal_repro(tmp.path(), &file.join("x.json"), "1");
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("{} is a file, not a folder", file.display())),
        "{stderr}"
    );
    // Refused before the work: no replay ran, nothing was shrunk.
    assert!(!stderr.contains("running against"), "{stderr}");
    assert!(!stdout.contains("shrunk"), "{stdout}");
}

/// `run --bug NAME` says the race it planted, on its first line and in `summary.json`
/// (`planted_bug`): such results read as a broken server otherwise, told from a run
/// against the correct one by nothing. A run against the correct server has no such key.
#[test]
fn a_run_against_a_planted_bug_says_so_in_its_results() {
    let tmp = tempfile::tempdir().unwrap();
    for (bug, out) in [(Some("token-check-then-act"), "bug"), (None, "correct")] {
        let dir = tmp.path().join(out);
        let mut args = vec![
            "run",
            "scenarios/races/token-check-then-act.toml",
            "--no-learn",
            "-o",
            dir.to_str().unwrap(),
        ];
        match bug {
            Some(bug) => args.extend(["--bug", bug, "--bug-window", "20ms"]),
            None => args.push("--reference"),
        }
        let said = stampede(&args);
        let stdout = String::from_utf8_lossy(&said.stdout);
        let first = stdout.lines().next().unwrap_or_default();
        let summary = std::fs::read_dir(dir.join("race-token-check-then-act"))
            .unwrap()
            .map(|e| e.unwrap().path().join("summary.json"))
            .next()
            .unwrap();
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
        match bug {
            Some(bug) => {
                assert!(
                    first.ends_with(&format!(
                        "(embedded reference server with planted bug {bug} (window 20ms))"
                    )),
                    "{first}"
                );
                assert_eq!(summary["planted_bug"]["name"], bug);
                assert_eq!(summary["planted_bug"]["window_ms"], 20.0);
            }
            None => {
                assert!(first.ends_with("(embedded reference server)"), "{first}");
                assert!(summary.get("planted_bug").is_none(), "{summary}");
            }
        }
    }
}

/// A repro whose stored evidence words its violation as an older version did, or names
/// subjects of the larger plan it was cut from (the shipped identity-swap regression:
/// `seen user_id = "user-3"` in a plan of user-0 and user-1), is shrunk as what `replay`
/// reproduces: the same oracle broken. `shrink` said "did not reproduce (0/3) … nothing
/// to shrink", exit 0, of a repro that replays 3/3.
#[test]
fn shrink_reproduces_what_replay_does_though_the_evidence_is_stale() {
    let tmp = tempfile::tempdir().unwrap();
    let repro = tmp.path().join("identity-swap.json");
    std::fs::copy("scenarios/regressions/identity-swap.json", &repro).unwrap();
    let said = stampede(&[
        "shrink",
        repro.to_str().unwrap(),
        "--bug",
        "identity-swap",
        "--bug-window",
        "50ms",
        "--times",
        "3",
        "--budget",
        "60s",
    ]);
    let stdout = String::from_utf8_lossy(&said.stdout);
    assert_eq!(said.status.code(), Some(1), "{stdout}");
    assert!(!stdout.contains("did not reproduce"), "{stdout}");
    assert!(stdout.contains("identity violation"), "{stdout}");
}

/// `shrink -o FILE` never overwrites a file: not the repro it shrinks (`-o` naming the
/// input replaced it with a smaller repro that may reproduce less often), nor any other.
/// Refused before any replay, exit 2, the file as it was.
#[test]
fn shrink_never_overwrites_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, "mine").unwrap();
    let input = tmp.path().join("repro.json");
    for out in [&notes, &input] {
        let (code, stdout, stderr) = shrink_minimal_repro(tmp.path(), out, "1");
        assert_eq!(code, Some(2), "{}: {stdout}\n{stderr}", out.display());
        assert!(
            stderr.contains(&format!("-o {} exists", out.display()))
                && stderr.contains("never overwrites"),
            "{stderr}"
        );
        assert!(!stderr.contains("running against"), "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "mine");
    let repro = std::fs::read_to_string(&input).unwrap();
    let shipped = std::fs::read_to_string("scenarios/regressions/early-message-drop.json").unwrap();
    assert_eq!(repro, shipped);
}

/// `--reset` is shared with hunt, replay and shrink; `run` and `learn` would ignore it, so
/// they refuse it (before touching any target) rather than run without the reset.
#[test]
fn run_and_learn_refuse_reset_instead_of_ignoring_it() {
    for command in ["run", "learn"] {
        for given in [["--reset", "true"], ["--reset-timeout", "5s"]] {
            let mut args = vec![command, "scenarios/golden-path.toml"];
            args.extend(given);
            let out = stampede(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(
                said.contains("--reset and --reset-timeout apply to hunt, replay and shrink"),
                "{args:?}: {said}"
            );
        }
        // Nor does their help offer what they refuse.
        let help = String::from_utf8_lossy(&stampede(&[command, "--help"]).stdout).to_string();
        assert!(!help.contains("--reset"), "{command}: {help}");
    }
    for command in ["hunt", "replay", "shrink"] {
        let help = String::from_utf8_lossy(&stampede(&[command, "--help"]).stdout).to_string();
        assert!(
            help.contains("--reset <CMD>") && help.contains("--reset-timeout"),
            "{command}: {help}"
        );
    }
}

/// No command's help shows the source's own cross-references (a doc comment is clap's
/// help text: "see [`crate::cli::Cli::parse_args`]" reached users of five commands).
#[test]
fn no_help_text_shows_a_source_reference() {
    let top = String::from_utf8_lossy(&stampede(&["--help"]).stdout).to_string();
    let commands: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 10, "{top}");
    for command in commands {
        let help = String::from_utf8_lossy(&stampede(&[command, "--help"]).stdout).to_string();
        for source in ["crate::", "[`", "`]"] {
            assert!(
                !help.contains(source),
                "{command} --help shows {source:?}:\n{help}"
            );
        }
    }
}

/// A k6 user's `--vus 10` (or `--users 10`) is told where the number of users is set,
/// not offered `--seeds` (an old name of `--times`) as the nearest option.
#[test]
fn run_says_where_users_are_set_when_given_vus() {
    for flag in ["--users", "--vus"] {
        let out = stampede(&["run", "scenarios/golden-path.toml", flag, "10"]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("each [[group]] of the scenario sets its own `users`")
                && !said.contains("--seeds"),
            "{flag}: {said}"
        );
    }
}

/// A k6 or Artillery user's `--rate 100` (or `--arrival-rate`) is told where the arrival
/// rate is set, and `--tag x` (or `--tags`) what stampede has instead of tags; neither is
/// offered `--target` as the nearest option.
#[test]
fn run_says_where_rates_are_set_and_that_there_are_no_tags() {
    for (flag, value, said_here) in [
        (
            "--rate",
            "100",
            "sets how its connections start in `arrival`",
        ),
        (
            "--arrival-rate",
            "100",
            "sets how its connections start in `arrival`",
        ),
        ("--tag", "env=staging", "stampede has no metric tags"),
        ("--tags", "env=staging", "stampede has no metric tags"),
    ] {
        let out = stampede(&["run", "scenarios/golden-path.toml", flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(said_here) && !said.contains("--target"),
            "{flag}: {said}"
        );
    }
    // k6 repeats `--tag`: refused the same, not as an option given twice.
    let out = stampede(&[
        "run",
        "scenarios/golden-path.toml",
        "--tag",
        "a=1",
        "--tag",
        "b=2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stampede has no metric tags"));
    let help = String::from_utf8_lossy(&stampede(&["run", "--help"]).stdout).to_string();
    assert!(
        !help.contains("--rate") && !help.contains("--tag"),
        "{help}"
    );
}

#[test]
fn plan_output_is_deterministic() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/golden-path.toml");
    let path = scenario.to_str().unwrap();
    let a = stampede(&["plan", path, "--seed", "9"]);
    let b = stampede(&["plan", path, "--seed", "9"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let plan: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(plan["conns"].as_array().unwrap().len(), 200);
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly_with_0() {
    // `stampede plan golden-path.toml | head -c 100`. The plan is hundreds of KB, far more
    // than a pipe buffers, so the write is still under way when the reader goes and fails
    // with EPIPE: that must end the command quietly, as ripgrep does, not panic (101).
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/golden-path.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["plan", scenario.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 100];
    stdout.read_exact(&mut head).unwrap();
    drop(stdout);
    let (done, exited) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let out = exited
        .recv_timeout(Duration::from_secs(60))
        .expect("stampede exits once its reader is gone")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.is_empty(),
        "a closed pipe is not an error:\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn an_unreachable_target_is_target_unusable_with_its_causes() {
    // A target with nothing listening: every connect fails. That is no violation, and no
    // pass either: the verdict says the target was unusable (exit 5), with the causes.
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/golden-path.toml");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("ws://127.0.0.1:{port}/ws");
    let out = stampede(&[
        "run",
        scenario.to_str().unwrap(),
        "--target",
        &url,
        "--no-results",
        "--json",
        "--duration",
        "10s",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every attempt that got to dial failed to connect (a busy machine may leave a few
    // cut by the 10 s duration: those are counted as cut, never as anything else).
    let c = &summary["counters"];
    let failed = c["failed"].as_u64().unwrap();
    assert!(failed > 0, "{c:#}");
    assert_eq!(c["accepted"], 0);
    assert_eq!(c["refused_by"]["connect_refused"], failed);
    assert_eq!(summary["verdict"], "target_unusable");
    let hint = summary["hint"].as_str().unwrap();
    assert!(
        hint.contains(&format!("connect_refused ×{failed}")),
        "{hint}"
    );
    // Nothing listens there: the hint names where, and asks nothing of a WebSocket server.
    assert!(
        hint.contains(&format!(
            "nothing accepted the TCP connection at 127.0.0.1:{port}: check the URL's port"
        )) && !hint.contains("speaks WebSocket"),
        "{hint}"
    );
    // It does not wait out the 5 s ramp of 200 connections: once the first ten were all
    // refused at TCP, with none connected, the run stops and says so.
    assert_eq!(summary["stopped"], "unreachable", "{summary:#}");
    assert!((10..200).contains(&failed), "{c:#}");
    assert!(
        hint.contains("stopped early: the first ") && hint.contains("never started"),
        "{hint}"
    );
    assert_eq!(out.status.code(), Some(5));
}

/// `hunt` of the golden-path scenario against a port nothing listens on (20 s budget, no
/// calibration, results into a temporary folder), with `extra` arguments.
fn hunt_golden_path_at_a_closed_port(extra: &[&str]) -> std::process::Output {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/golden-path.toml");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    drop(listener);
    let out_dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "hunt",
        scenario.to_str().unwrap(),
        "--target",
        &url,
        "--budget",
        "20s",
        "--no-learn",
        "-o",
        out_dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    stampede(&args)
}

/// A hunt's round against a closed port stops after its first refusals: its round line
/// counts the connections it dialled, of the plan's 200, never all 200 as if tried.
#[test]
fn a_hunt_round_stopped_early_counts_the_connections_it_dialled() {
    let out = hunt_golden_path_at_a_closed_port(&[]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(5), "{said}");
    // The verdict counts the connections that never started.
    let never: usize = said
        .split_once("so the other ")
        .and_then(|(_, rest)| rest.split_once(" planned connection"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!((1..=190).contains(&never), "{said}");
    let round = said
        .lines()
        .find(|l| l.starts_with("round "))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        round.contains(&format!(" {} of 200 connections  ", 200 - never)),
        "{round}"
    );
}

/// `hunt --json` against a closed port: the round that could not exercise the target is
/// counted as not judged beside the verdict that says so, as `run --json` marks its
/// thresholds `judged: false` there; it used to say `"not_judged": 0`.
#[test]
fn a_hunt_json_counts_the_round_that_could_not_judge_the_target() {
    let out = hunt_golden_path_at_a_closed_port(&["--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["verdict"], "target_unusable", "{json:#}");
    assert_eq!(json["rounds"], 1, "{json:#}");
    assert_eq!(json["not_judged"], 1, "{json:#}");
    assert_eq!(json["cut_short"], 0, "{json:#}");
}

#[test]
fn seeds_reports_how_often_each_oracle_broke() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/races/identity-swap.toml");
    let out = stampede(&[
        "run",
        scenario.to_str().unwrap(),
        "--seeds",
        "2",
        "--no-results",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("under 2 seeds"), "{stdout}");
    assert!(stdout.contains("no oracle broke"), "{stdout}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn seeds_honour_json_junit_and_an_unusable_target() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/races/identity-swap.toml");
    let tmp = tempfile::tempdir().unwrap();
    let junit = tmp.path().join("junit.xml");
    let out = stampede(&[
        "run",
        scenario.to_str().unwrap(),
        "--times",
        "2",
        "--no-results",
        "--json",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["seeds_run"], 2, "{json:#}");
    assert_eq!(json["runs"].as_array().unwrap().len(), 2);
    assert_eq!(json["verdict"], "clean");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
    assert_eq!(out.status.code(), Some(0));

    // A dead target: the first seed says so and the command stops there with exit 5.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    drop(listener);
    let out = stampede(&[
        "run",
        scenario.to_str().unwrap(),
        "--seeds",
        "3",
        "--no-results",
        "--target",
        &url,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("under 1 seed "), "{stdout}");
    assert!(stdout.contains("target_unusable in 1/1 seeds"), "{stdout}");
    assert_eq!(out.status.code(), Some(5), "{stdout}");
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let out = stampede(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let rest = text
        .trim()
        .strip_prefix(&format!("stampede {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{text}"));
    let (commit, date) = rest
        .split_once(", built ")
        .unwrap_or_else(|| panic!("{text}"));
    // A checkout gives a hex hash; a tarball "unknown".
    assert!(
        commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{text}"
    );
    let date = date.strip_suffix(')').unwrap_or_else(|| panic!("{text}"));
    let parts: Vec<&str> = date.split('-').collect();
    assert_eq!(parts.len(), 3, "{text}");
    assert!(
        parts[0].len() == 4 && parts[0].parse::<u32>().unwrap() >= 2024,
        "{text}"
    );
}

#[test]
fn completions_and_man_pages_are_generated() {
    for (shell, marker) in [
        ("bash", "_stampede()"),
        ("zsh", "#compdef stampede"),
        ("fish", "complete -c stampede"),
    ] {
        let out = stampede(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script:.200}");
        assert!(script.contains("shrink"), "{shell} completes the commands");
        // clap_complete lists hidden options too: theirs is a user's text, not a note to
        // whoever reads the code.
        for internal in ["taken only to be refused", "Not an option", "taken, hidden"] {
            assert!(!script.contains(internal), "{shell}: {internal:?}");
        }
    }
    let out = stampede(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));

    let out = stampede(&["man"]);
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH stampede 1"), "{page:.300}");
    let dir = tempfile::tempdir().unwrap();
    let out = stampede(&["man", "-o", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    let run = std::fs::read_to_string(dir.path().join("stampede-run.1")).unwrap();
    assert!(run.contains("\\-\\-times"), "{run:.2000}");
    assert!(dir.path().join("stampede.1").is_file());
    assert!(dir.path().join("stampede-shrink.1").is_file());
}

#[test]
fn one_vocabulary_with_the_old_spellings_kept_hidden() {
    use clap::Parser;
    use stampede::cli::{Cli, Command};
    let parse = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("stampede").chain(args.iter().copied()))
            .unwrap()
            .command
    };
    for old in ["--seeds", "--times"] {
        let Command::Run(run) = parse(&["run", "s.toml", old, "3", "-o", "out", "-q", "--json"])
        else {
            panic!("run")
        };
        assert_eq!(run.times, 3);
        assert_eq!(run.out, Path::new("out"));
        assert!(run.output.quiet && run.output.json);
    }
    let Command::Run(run) = parse(&["run", "s.toml", "--bug", "identity-swap"]) else {
        panic!("run")
    };
    assert_eq!(run.target.bug.map(|b| b.name()), Some("identity-swap"));
    let Command::Report(report) = parse(&["report", "dir", "--output", "x.html"]) else {
        panic!("report")
    };
    assert_eq!(report.out.as_deref(), Some(Path::new("x.html")));
    let Command::Serve(serve) = parse(&["serve", "--addr", "localhost:8080"]) else {
        panic!("serve")
    };
    assert!(serve.addr.ip().is_loopback() && serve.addr.port() == 8080);
    let help = String::from_utf8_lossy(&stampede(&["run", "--help"]).stdout).to_string();
    assert!(
        help.contains("--times") && !help.contains("--seeds "),
        "{help}"
    );
    for command in ["hunt", "replay", "shrink", "compare"] {
        let help = String::from_utf8_lossy(&stampede(&[command, "--help"]).stdout).to_string();
        assert!(
            help.contains("-q, --quiet") && help.contains("--json"),
            "{command}: {help}"
        );
    }
    for command in ["hunt", "replay", "shrink"] {
        let help = String::from_utf8_lossy(&stampede(&[command, "--help"]).stdout).to_string();
        assert!(help.contains("--times <N>"), "{command}: {help}");
    }
    let help = String::from_utf8_lossy(&stampede(&["shrink", "--help"]).stdout).to_string();
    assert!(
        help.contains("-o, --out") && help.contains(".min.json"),
        "{help}"
    );
}

#[test]
fn typos_get_a_suggestion_and_counts_agree_with_their_nouns() {
    let out = stampede(&["serve", "--bug", "identity-swp"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean \"identity-swap\"?"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    let text = "name = \"typo\"\nduration = \"1s\"\n\n[[group]]\nname = \"g\"\nusres = 1\narival = \"collide\"\nsteps = []\n";
    std::fs::write(&path, text).unwrap();
    let err = String::from_utf8_lossy(&stampede(&["validate", path.to_str().unwrap()]).stderr)
        .to_string();
    assert!(err.contains("did you mean \"users\"?"), "{err}");
    assert!(err.contains("did you mean \"arrival\"?"), "{err}");

    let path = dir.path().join("one.toml");
    let text = "name = \"one\"\nduration = \"1s\"\n\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{ send = { type = \"ping\" } }]\n";
    std::fs::write(&path, text).unwrap();
    let out = String::from_utf8_lossy(&stampede(&["validate", path.to_str().unwrap()]).stdout)
        .to_string();
    assert!(out.contains("ok (1 group, 1 connection)"), "{out}");
}

/// The README's replay and shrink commands take the repro path the hunt printed (a glob
/// matched a second hunt's `…-2.json` and the `.min.json` beside it too): the path shown
/// is where a hunt of that scenario writes its repro, and both commands use it.
#[test]
fn the_readme_replays_the_repro_the_hunt_printed() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let repro = readme
        .lines()
        .find_map(|l| l.strip_prefix("REPRO="))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a REPRO= line");
    assert!(
        repro.starts_with("results/race-token-check-then-act/repro-exclusivity-")
            && repro.ends_with(".json"),
        "{repro}"
    );
    for command in ["stampede replay \"$REPRO\"", "stampede shrink \"$REPRO\""] {
        assert!(
            readme.lines().any(|l| l.starts_with(command)),
            "no `{command}` line"
        );
    }
}

#[test]
fn run_takes_bug_and_plants_it_in_the_built_in_server() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bad-tokens.toml");
    let out = stampede(&[
        "run",
        scenario.to_str().unwrap(),
        "--bug",
        "accept-alg-none",
        "--no-results",
        "--json",
        "-q",
    ]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "violations", "{json:#}");
    assert!(
        json["violations"]["by_oracle"]["rejection_hygiene"]
            .as_u64()
            .unwrap()
            > 0,
        "{json:#}"
    );
    assert_eq!(out.status.code(), Some(1));
}

/// A shard that holds none of the plan's connections (12 tokens, shard 13 of 14) exercised
/// nothing: inconclusive, exit 4, and no barrier of the plan is reported as released.
#[test]
fn an_empty_shard_is_inconclusive_and_lists_no_barrier() {
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/races/burst-event-loss.toml");
    let args = ["--shard", "13/14", "--no-results", "--json", "-q"];
    let out = stampede(&[&["run", scenario.to_str().unwrap()][..], &args[..]].concat());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(json["verdict"], "inconclusive", "{json:#}");
    assert_eq!(json["connections_planned"], 0, "{json:#}");
    assert_eq!(out.status.code(), Some(4));
    assert!(
        json["barriers"].as_array().is_none_or(|b| b.is_empty()),
        "{json:#}"
    );
}

/// A run that keeps no results says so where the results line would be, instead of
/// pointing at a violations.jsonl that was never written; a clean one says nothing.
#[test]
fn a_run_without_results_says_its_violations_were_not_kept() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bad-tokens.toml");
    for (bug, said) in [(Some("accept-alg-none"), true), (None, false)] {
        let mut args = vec!["run", scenario.to_str().unwrap(), "--no-results"];
        args.extend(bug.map(|b| ["--bug", b]).into_iter().flatten());
        let out = stampede(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(i32::from(said)),
            "{bug:?}: {stdout}"
        );
        assert_eq!(
            stdout.contains("results      none written (--no-results)"),
            said,
            "{bug:?}: {stdout}"
        );
    }
}

#[test]
fn one_thread_drives_a_whole_run_and_still_finds_a_planted_bug() {
    // `--threads 1` runs everything on the calling thread (a current-thread runtime): the
    // built-in server, the connections, the probes and the report must all still happen.
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bad-tokens.toml");
    for (bug, verdict, code) in [
        (None, "clean", 0),
        (Some("accept-alg-none"), "violations", 1),
    ] {
        let mut args = vec!["--threads", "1", "run", scenario.to_str().unwrap()];
        args.extend(bug.map(|b| ["--bug", b]).into_iter().flatten());
        args.extend(["--no-results", "--json", "-q"]);
        let out = stampede(&args);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(json["verdict"], verdict, "{bug:?}: {json:#}");
        assert_eq!(out.status.code(), Some(code), "{bug:?}: {json:#}");
        let accepted = json["counters"]["accepted"].as_u64().unwrap_or(0);
        assert!(accepted > 0, "{bug:?}: nothing was accepted: {json:#}");
    }
}

#[test]
fn a_run_with_a_rendezvous_raises_its_threads_where_the_process_may() {
    // Whether this process may raise a thread's priority (root, CAP_SYS_NICE,
    // RLIMIT_NICE): the binary, started from here, may too.
    let may = std::thread::spawn(stampede::priority::raise_this_thread)
        .join()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rendezvous.toml");
    std::fs::write(
        &path,
        r#"
name = "raised"
seed = 1
duration = "20s"

[[group]]
name = "g"
users = 20
steps = [
  { expect = "connection_established", within = "5s" },
  { rendezvous = { count = "all", timeout = "5s" } },
  { send = { type = "user_message", run_id = "r-{{conn}}", thread_id = "t-{{user}}", content = "x" } },
  { expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "5s" },
  { close = 1000 },
]
"#,
    )
    .unwrap();
    let out = stampede(&[
        "run",
        path.to_str().unwrap(),
        "--no-results",
        "--json",
        "-q",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(json["verdict"], "clean", "{json:#}");
    assert_eq!(json["releases_raised"], may, "{json:#}");
}

/// A listener that takes every TCP connection and never answers: a server that does not
/// speak WebSocket at this address (or hangs). Its connections are held until the test ends.
fn silent_listener() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

#[test]
fn a_hunt_whose_budget_ends_before_any_upgrade_is_answered_is_not_a_clean_hunt() {
    let addr = silent_listener();
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("tiny.toml");
    std::fs::write(
        &scenario,
        "name = \"tiny\"\nduration = \"30s\"\n[[group]]\nname = \"g\"\nusers = 3\n\
         steps = [{ send = { type = \"ping\" } }, { expect = \"pong\", within = \"1s\" }]\n",
    )
    .unwrap();
    let target = format!("ws://{addr}/ws");
    let out = tmp.path().join("out").display().to_string();
    let said = stampede(&[
        "hunt",
        &scenario.display().to_string(),
        "--target",
        &target,
        "--budget",
        "4s",
        "--no-learn",
        "-o",
        &out,
    ]);
    let stdout = String::from_utf8_lossy(&said.stdout);
    let stderr = String::from_utf8_lossy(&said.stderr);
    assert!(!stdout.contains("no violation in"), "{stdout}{stderr}");
    // Incomplete: the round the budget cut judged nothing (exit 7, as `run` gives).
    assert_eq!(said.status.code(), Some(7), "{stdout}{stderr}");
}

/// A hunt whose budget cuts its only round before the plan finished (the golden path's
/// 5 s ramp against the embedded server, a 1.5 s budget) judged part of one round: no
/// clean hunt, but incomplete (exit 7), naming the budget.
#[test]
fn a_hunt_whose_budget_cuts_its_only_round_is_incomplete_not_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().display().to_string();
    let said = stampede(&[
        "hunt",
        "scenarios/golden-path.toml",
        "--budget",
        "1500ms",
        "--no-learn",
        "-o",
        &out,
    ]);
    let stdout = String::from_utf8_lossy(&said.stdout);
    let stderr = String::from_utf8_lossy(&said.stderr);
    assert!(!stdout.contains("no violation in"), "{stdout}{stderr}");
    assert!(stdout.contains("budget ran out"), "{stdout}{stderr}");
    assert_eq!(said.status.code(), Some(7), "{stdout}{stderr}");
}

/// Counts and budgets of nothing are refused before anything runs: `--times 0` would run
/// once anyway, a zero budget would run nothing and call it done.
#[test]
fn zero_times_and_zero_budgets_are_refused_up_front() {
    for args in [
        &[
            "run",
            "scenarios/golden-path.toml",
            "--times",
            "0",
            "--no-results",
        ][..],
        &["hunt", "scenarios/hunt.toml", "--budget", "0s"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .expect("run the binary");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("invalid value '0"), "{args:?}: {err}");
    }
}

/// A group whose last connection would start after the run's duration is valid (exit 0),
/// and `validate` warns, at the group's file:line:column, that those connections never
/// run (the run would end incomplete).
#[test]
fn validate_warns_of_connections_that_would_start_after_the_duration() {
    let text = "name = \"late\"\nduration = \"2s\"\n\n[[group]]\nname = \"slow\"\nusers = 10\n\
                arrival = { ramp = \"1h\" }\nsteps = [{ close = 1000 }]\n\n[[group]]\nname = \"quick\"\n\
                users = 1\nsteps = [{ close = 1000 }]\n";
    let file = Written::new("late.toml", text);
    let (code, _, err) = file.validate();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "warning: {}:4:1: group `slow` starts its last connection 3240s in, when the run's duration (2s) is over",
            file.path.display()
        )),
        "{err}"
    );
    assert!(!err.contains("`quick`"), "{err}");
    // A think longer than what is left: the script cannot finish either.
    let thinker = Written::new(
        "thinker.toml",
        &text
            .replace("arrival = { ramp = \"1h\" }", "arrival = { ramp = \"1s\" }")
            .replace(
                "steps = [{ close = 1000 }]\n\n[[group]]",
                "steps = [{ think = \"1h\" }]\n\n[[group]]",
            ),
    );
    let (code, _, err) = thinker.validate();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("group `slow`'s script takes at least 3600s")
            && err.contains("cannot finish within the run's duration (2s)"),
        "{err}"
    );
}

/// Thousands of groups that each get a warning: `validate` says the first 100, each at
/// its own group's file:line:column, then how many more there were (it printed every
/// one, parsing the whole file again for each: minutes for 8,000 groups).
#[test]
fn validate_says_the_first_hundred_warnings_and_counts_the_rest() {
    let groups = 1_500;
    let mut text = String::from("name = \"many\"\nduration = \"1s\"\n");
    for g in 0..groups {
        text.push_str(&format!(
            "\n[[group]]\nname = \"g{g}\"\nusers = 1\narrival = {{ burst = \"{g}ms\" }}\n\
             steps = [{{ close = 1000 }}]\n"
        ));
    }
    let file = Written::new("many.toml", &text);
    let (code, out, err) = file.validate();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ok (1500 groups, 1500 connections)"), "{out}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 100, "{err}");
    // Groups from g1000 on start when the 1 s run is over; g1000 is written on line
    // 3 + 6 × 1000 + 1.
    assert!(
        warnings[0].starts_with(&format!("warning: {}: group `g1000`", file.at(6004, 1))),
        "{}",
        warnings[0]
    );
    assert!(warnings[99].contains("group `g1099`"), "{}", warnings[99]);
    assert!(
        err.contains(&format!(
            "note: {}: 400 more warnings and notes like these not shown",
            file.path.display()
        )),
        "{err}"
    );
}

/// A plan whose connections cannot all be open at once in this machine's memory (4,194,304
/// connections at 16 KiB each: 64 GiB) is valid, as its shards on several machines may
/// be, and `validate` says so with the figure and this machine's limit; where the machine
/// holds it, nothing is said.
#[test]
fn validate_warns_when_this_machine_cannot_hold_the_plan_s_connections() {
    let text =
        "name = \"huge\"\ntarget = \"ws://127.0.0.1:9/ws\"\nduration = \"1h\"\n\n[[group]]\n\
                name = \"crowd\"\nusers = 4194304\narrival = { ramp = \"30m\" }\n\
                steps = [{ close = 1000 }]\n";
    let file = Written::new("huge.toml", text);
    let (code, _, err) = file.validate();
    assert_eq!(code, Some(0), "{err}");
    let needed: u64 = 4_194_304 * 16 * 1024;
    match stampede::run::capacity::memory_limit() {
        Some(limit) if needed > limit => assert!(
            err.contains(&format!(
                "warning: {}: the plan's 4194304 connections take about 64.0 GiB while open \
                 (at least 16 KiB each), and this machine may use {}",
                file.path.display(),
                stampede::run::capacity::shown_bytes(limit)
            )) && err.contains("--shard i/n"),
            "{err}"
        ),
        _ => assert!(!err.contains("while open"), "{err}"),
    }
}

/// A group whose tokens expire before its script can end (a 2 s `ttl` under a 10 s
/// script: a loop of thinks, multiplied) is valid (exit 0), and `validate` warns, at the
/// group's file:line:column, naming the ttl, the script's least time and what to change;
/// one that ends in time, and a forged group, say nothing.
#[test]
fn validate_warns_of_tokens_that_expire_before_the_script_ends() {
    let text = "name = \"ttl\"\nduration = \"60s\"\n\n[auth]\nttl = \"2s\"\n\n[[group]]\n\
                name = \"talkers\"\nusers = 2\nsteps = [{ repeat = 10, steps = [{ think = \"1s\" }] }, { close = 1000 }]\n\n\
                [[group]]\nname = \"quick\"\nusers = 1\nsteps = [{ think = \"1s\" }, { close = 1000 }]\n\n\
                [[group]]\nname = \"forged\"\nusers = 1\nforge = { exp = \"-30s\" }\nsteps = [{ think = \"10s\" }, { close = 1000 }]\n";
    let file = Written::new("ttl.toml", text);
    let (code, _, err) = file.validate();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "warning: {}: group `talkers`'s script takes at least 10s and its last connection \
             starts right away, but its tokens may expire 1s after the run starts (`[auth] \
             ttl` 2s, less the part of a second `iat` rounds off)",
            file.at(7, 1)
        )) && err.contains("(raise `[auth] ttl` past 11s, or shorten the script)"),
        "{err}"
    );
    assert!(
        !err.contains("`quick`") && !err.contains("`forged`"),
        "{err}"
    );
}

/// A `think` that always outlasts the declared `idle_timeout`, with steps after it, is
/// valid (exit 0), and `validate` warns at the step's file:line:column: a server with that
/// policy closes the connection there. One shorter than it says nothing.
#[test]
fn validate_warns_of_a_think_past_the_declared_idle_timeout() {
    let text = "name = \"idle\"\nduration = \"60s\"\n\n[oracles]\nidle_timeout = \"2s\"\n\n[[group]]\n\
                name = \"sleepers\"\nusers = 1\nsteps = [\n  { close = 1000 },\n  { think = \"3s\" },\n  { close = 1000 },\n]\n\n\
                [[group]]\nname = \"nappers\"\nusers = 1\nsteps = [{ think = \"1s\" }, { close = 1000 }]\n";
    let file = Written::new("idle.toml", text);
    let (code, _, err) = file.validate();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "warning: {}: group `sleepers` step 2 keeps the connection silent for at least \
             3s, no shorter than the declared `[oracles] idle_timeout` of 2s",
            file.at(12, 3)
        )),
        "{err}"
    );
    assert!(!err.contains("`nappers`"), "{err}");
}

/// `hunt` and `run --times` say it too before their first round (their rounds would end
/// unjudged), whatever the target then does: here a closed port.
#[test]
fn hunt_and_repeated_runs_warn_of_tokens_that_expire_too() {
    let text = "name = \"ttl\"\nduration = \"60s\"\n\n[auth]\nttl = \"2s\"\n\n[[group]]\n\
                name = \"talkers\"\nusers = 1\nsteps = [{ repeat = 10, steps = [{ think = \"1s\" }] }, { close = 1000 }]\n";
    let file = Written::new("ttl.toml", text);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ws://{}/", listener.local_addr().unwrap())
    };
    // `run` writes no results: they would land in the repository (the tests' folder).
    let runs: [(&str, &[&str]); 2] = [
        ("hunt", &["--budget", "10s"]),
        ("run", &["--times", "2", "--no-results"]),
    ];
    for (command, extra) in runs {
        let mut args = vec!["--target", closed.as_str(), "--no-learn"];
        args.extend(extra);
        let (_, _, err) = file.stampede(command, &args, &[]);
        assert!(
            err.contains(&format!(
                "warning: {}: group `talkers`'s script takes at least 10s",
                file.at(7, 1)
            )),
            "{command}: {err}"
        );
    }
}

/// A token file named relative to its scenario is kept in the plan (and so in a repro) as
/// an absolute path: a repro replays from any working directory.
#[test]
fn a_plan_keeps_a_relative_token_file_as_an_absolute_path() {
    let file = Written::new(
        "tokens.toml",
        "name = \"t\"\nduration = \"2s\"\n[auth]\ntokens = { file = \"toks.txt\" }\n\
         [[group]]\nname = \"g\"\nusers = 1\nsteps = [{ close = 1000 }]\n",
    );
    std::fs::write(
        file.dir.path().join("toks.txt"),
        "opaque-token-0001-aaaaaaaa\n",
    )
    .unwrap();
    // Run from the scenario's folder, named without a folder: the case that kept "./toks.txt".
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .current_dir(file.dir.path())
        .args(["plan", "tokens.toml"])
        .output()
        .expect("run the binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let path = plan["auth"]["tokens"]["file"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(Path::new(&path).is_absolute(), "{path}");
    assert!(Path::new(&path).exists(), "{path}");
    assert!(
        !stdout.contains("opaque-token-0001"),
        "the token itself is never written"
    );
}

/// `report` and `compare` given a file that is no result (a scenario) say so, rather than
/// that a `summary.json` beside it cannot be read.
#[test]
fn report_and_compare_name_a_file_that_is_no_result() {
    for args in [
        &["report", "scenarios/golden-path.toml"][..],
        &[
            "compare",
            "scenarios/golden-path.toml",
            "scenarios/golden-path.toml",
        ][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .expect("run the binary");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("scenarios/golden-path.toml is a file, not a result"),
            "{args:?}: {err}"
        );
    }
}

/// `--times` with `--workers` would run each seed in one process and ignore `--workers`
/// without a word: refused before anything runs.
#[test]
fn times_and_workers_do_not_combine() {
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "scenarios/golden-path.toml",
            "--times",
            "2",
            "--workers",
            "2",
            "--no-results",
        ])
        .output()
        .expect("run the binary");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--times and --workers do not combine"),
        "{err}"
    );
}

/// A protocol scenario run without `--target` runs against the built-in reference server,
/// which speaks the golden-path protocol only: the verdict's hint says so and what to pass,
/// not only the placement advice that fits a real misconfiguration.
#[test]
fn a_protocol_scenario_run_against_the_built_in_server_says_what_it_ran_against() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            "run",
            "scenarios/protocols/graphql-transport-ws.toml",
            "--no-results",
            "--no-learn",
            "--json",
            "-q",
        ])
        .env_remove("STAMPEDE_TARGET")
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(s["embedded_target"], true, "{s:#}");
    assert_ne!(out.status.code(), Some(0), "{s:#}");
    let hint = s["hint"].as_str().unwrap_or_default();
    assert!(
        hint.starts_with(
            "the scenario is written for another server: its token goes in the first message \
             and it offers the subprotocol graphql-transport-ws, which the built-in reference \
             server (the golden-path protocol, run as no --target was given) does not read; \
             pass --target URL of the server it is for; "
        ),
        "{hint}"
    );
}

/// A `--reset` that fails before the first replay of a find does not lose the find: its
/// repro is written, unconfirmed, and the error names it (exit 2, the reset being the
/// user's tool).
#[test]
fn a_failing_reset_keeps_the_repro_of_what_the_hunt_saw() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("hunted");
    let said = stampede(&[
        "hunt",
        "scenarios/races/early-message-drop.toml",
        "--bug",
        "early-message-drop",
        "--reset",
        "false",
        "--times",
        "2",
        "--budget",
        "30s",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(2), "{stderr}");
    let written: Vec<_> = std::fs::read_dir(out.join("race-early-message-drop"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(
        stderr.contains("--reset `false` failed")
            && stderr.contains("its repro is written, unconfirmed")
            && stderr.contains(&written[0].display().to_string()),
        "{stderr}"
    );
}

/// k6's `--out json=FILE` is refused, saying what stampede writes instead, rather than
/// taken as a results folder named `json=FILE`; a folder whose name holds `=` is still
/// one.
#[test]
fn an_output_spec_as_out_is_refused_saying_what_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("json=x.json");
    for out in [
        "json=x.json",
        "csv=r.csv",
        "experimental-prometheus-rw=http://x",
    ] {
        let said = stampede(&["run", "scenarios/golden-path.toml", "--out", out]);
        let err = String::from_utf8_lossy(&said.stderr);
        assert_eq!(said.status.code(), Some(2), "{out}: {err}");
        assert!(
            err.contains("takes a results folder, not an output spec")
                && err.contains("summary.json"),
            "{out}: {err}"
        );
    }
    // Refused before anything runs or is written.
    assert!(!spec.exists() && !Path::new("json=x.json").exists());
    let folder = tmp.path().join("a=b");
    let said = stampede(&[
        "run",
        "scenarios/golden-path.toml",
        "--duration",
        "1ms",
        "-q",
        "--out",
        folder.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert!(!err.contains("output spec"), "{err}");
}

/// A scenario whose pattern the golden-path protocol never sends (its kinds out of order),
/// run against the built-in reference server with no planted bug, is the scenario's
/// mistake: `unreadable` (exit 9), never a violation to hunt, and `hunt` writes no repro.
#[test]
fn a_pattern_the_reference_server_never_sends_is_the_scenarios_not_a_race() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("order.toml");
    std::fs::write(
        &file,
        r#"name = "order"
duration = "10s"
[[group]]
name = "g"
users = 3
steps = [
  { expect = "connection_established", within = "5s" },
  { send = { type = "user_message", run_id = "run-{{conn}}", content = "hi" } },
  { expect = "agent_completed agent_started", correlate = "run_id", within = "500ms" },
  { close = 1000 },
]
"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", path, "--no-results", "--no-learn", "--json", "-q"])
        .env_remove("STAMPEDE_TARGET")
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(9), "{s:#}");
    assert_eq!(s["verdict"], "unreadable", "{s:#}");
    let hint = s["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("missed the `expect` at step 3 the same way")
            && hint.contains("which has no planted bug"),
        "{hint}"
    );
    let hunted = tmp.path().join("hunted");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["hunt", path, "--budget", "20s", "--no-learn", "-o"])
        .arg(&hunted)
        .env_remove("STAMPEDE_TARGET")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!hunted.exists(), "a repro was written");
}

/// A scenario that does not load still gives `--junit` a file: one erring case naming the
/// problem by file:line:column, so a CI step reading it reports the failure rather than "no
/// results". The exit (2) and stderr are those of the run without `--junit`.
#[test]
fn a_scenario_that_does_not_load_writes_a_junit_error() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("broken.toml");
    std::fs::write(&scenario, "name = \"broken\"\nduraton = \"5s\"\n").unwrap();
    let junit = tmp.path().join("ci/junit.xml");
    let with = stampede(&[
        "run",
        scenario.to_str().unwrap(),
        "--no-results",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let without = stampede(&["run", scenario.to_str().unwrap(), "--no-results"]);
    assert_eq!(with.status.code(), Some(2));
    assert_eq!(with.stderr, without.stderr);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("errors=\"1\""), "{xml}");
    assert!(
        xml.contains("<testcase classname=\"stampede.broken.scenario\" name=\"scenario\""),
        "{xml}"
    );
    assert!(xml.contains("<error type=\"scenario_invalid\""), "{xml}");
    assert!(xml.contains("broken.toml:2:1: "), "{xml}");
}

/// Every other refusal of `run` (exit 2) gives `--junit` the same file: one erring case
/// whose message is the refusal, as the console says it (a malformed target, flags that do
/// not combine).
#[test]
fn a_run_refused_before_it_starts_writes_a_junit_error() {
    let tmp = tempfile::tempdir().unwrap();
    let junit = tmp.path().join("ci/junit.xml");
    let cases: [(&[&str], &str); 2] = [
        (
            &["--target", "notaurl"],
            "target notaurl: scheme must be ws:// or wss://",
        ),
        (
            &["--times", "2", "--workers", "2"],
            "--times and --workers do not combine",
        ),
    ];
    for (extra, said) in cases {
        let _ = std::fs::remove_file(&junit);
        let args = [
            &["run", "scenarios/golden-path.toml", "--no-results"][..],
            extra,
        ]
        .concat();
        let without = stampede(&args);
        let with = stampede(&[&args[..], &["--junit", junit.to_str().unwrap()]].concat());
        let stderr = String::from_utf8_lossy(&with.stderr);
        assert_eq!(with.status.code(), Some(2), "{extra:?}: {stderr}");
        assert_eq!(with.stderr, without.stderr, "{extra:?}");
        assert!(stderr.contains(said), "{extra:?}: {stderr}");
        let xml = std::fs::read_to_string(&junit)
            .unwrap_or_else(|e| panic!("{extra:?}: no JUnit file ({e}): {stderr}"));
        assert!(xml.contains("errors=\"1\""), "{xml}");
        assert!(
            xml.contains("<testcase classname=\"stampede.golden-path.run\" name=\"run\""),
            "{xml}"
        );
        assert!(xml.contains("<error type=\"usage\" message=\""), "{xml}");
        assert!(xml.contains(said), "{xml}");
    }
}

/// `replay` exits 0 only for runs that judged the repro's race and broke nothing: a run
/// that broke another oracle (a "fix" of token-check-then-act that swaps users' events)
/// is no pass (exit 1, saying which); a plan that could not exercise the race (no two
/// connections sharing a token, no connection at all) is inconclusive (exit 4), not "0/N".
#[test]
fn replay_passes_only_runs_that_judged_its_race_and_broke_nothing() {
    use stampede::hunt;
    let tmp = tempfile::tempdir().unwrap();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/races/token-check-then-act.toml");
    let s = stampede::scenario::load_file(&path).unwrap();
    let repro_with = |bug, conns: Option<usize>| {
        let mut plan = stampede::plan::build(&s, 1);
        if let Some(n) = conns {
            plan.conns.truncate(n);
        }
        let repro = hunt::Repro {
            reference: Some(hunt::ReferenceServer {
                bug,
                window: Some(Duration::from_millis(50)),
            }),
            ..hunt::Repro::for_plan(
                &s,
                1,
                plan,
                "ws://127.0.0.1:9/ws".into(),
                stampede::model::OracleKind::Exclusivity,
            )
        };
        let file = tmp.path().join(format!("repro-{bug:?}-{conns:?}.json"));
        repro.save_as(&file).unwrap();
        file
    };
    let replay = |file: &Path| {
        let out = stampede(&["replay", file.to_str().unwrap(), "--times", "2"]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), said)
    };
    let swapped = repro_with(Some(stampede::reference::Bug::IdentitySwap), None);
    let (code, said) = replay(&swapped);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("reproduced the exclusivity violation 0/2")
            && said.contains("also broke   identity in 2 of 2 replays"),
        "{said}"
    );
    // A plan of handshakes aborted on purpose asks no acceptance: against the correct
    // server its replay passes, exit 0 (its find comes from the probe after it).
    let aborted = stampede(&[
        "replay",
        "scenarios/regressions/abort-leak.json",
        "--reference",
        "--times",
        "1",
    ]);
    let said = String::from_utf8_lossy(&aborted.stdout);
    assert_eq!(aborted.status.code(), Some(0), "{said}");
    assert!(
        said.contains("reproduced the liveness violation 0/1"),
        "{said}"
    );
    for (conns, why) in [
        (
            1,
            "no two of its connections shared a token, so exclusivity was not exercised",
        ),
        (0, "its plan has no connection, so nothing was judged"),
    ] {
        let (code, said) = replay(&repro_with(None, Some(conns)));
        assert_eq!(code, Some(4), "{conns}: {said}");
        assert!(
            said.contains("was inconclusive") && said.contains(why),
            "{conns}: {said}"
        );
    }
}

/// A repro whose target lost a credential to `***` (stampede never writes one) is not
/// dialled with `***` in its place: replay and shrink refuse it before they start, saying
/// to pass `--target` (exit 2).
#[test]
fn a_repro_whose_target_lost_its_credential_is_not_dialled() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repro: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("scenarios/regressions/early-message-drop.json").unwrap(),
    )
    .unwrap();
    // A repro of this version names its reference server itself: none here, a URL.
    repro["version"] = 2.into();
    repro["target"] = "ws://127.0.0.1:9/ws?api_key=***&room=1".into();
    let file = tmp.path().join("repro.json");
    std::fs::write(&file, repro.to_string()).unwrap();
    for command in ["replay", "shrink"] {
        let said = stampede(&[command, file.to_str().unwrap(), "--times", "1"]);
        let stderr = String::from_utf8_lossy(&said.stderr);
        assert_eq!(said.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("had a credential stampede does not write")
                && stderr.contains("pass --target"),
            "{command}: {stderr}"
        );
    }
}

/// A run with violations whose stdout reader left early still exits 1 and still writes
/// its JUnit file: the reader took what it wanted, and a CI gate under `set -o pipefail`
/// stays failed. It exited 0 (a broken pipe read as "done"), before writing the JUnit.
#[test]
fn a_run_with_violations_exits_1_when_its_stdout_reader_left() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            "run",
            "scenarios/races/identity-swap.toml",
            "--bug",
            "identity-swap",
            "--no-learn",
            "--no-results",
            "-q",
            "--junit",
        ])
        .arg(&junit)
        .stdout(closed_stdout())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let xml = std::fs::read_to_string(&junit).unwrap_or_default();
    assert!(xml.contains("<failure"), "{xml}");
}

/// A `--junit` file that cannot be written there (under a path whose folder is a file, or
/// a folder itself) is refused before the run, named, exit 2: it was found after the whole
/// load, as `error: File exists (os error 17)` with no path, exit 3, the verdict hidden.
#[test]
fn a_junit_path_that_cannot_be_written_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let afile = dir.path().join("afile");
    std::fs::write(&afile, "x").unwrap();
    let under_a_file = afile.join("x.xml");
    for (junit, says) in [
        (
            under_a_file.as_path(),
            format!("{} is a file, not a folder", afile.display()),
        ),
        (dir.path(), "is a folder, not a file".to_string()),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args([
                "run",
                "scenarios/golden-path.toml",
                "--no-results",
                "--junit",
            ])
            .arg(junit)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(
            said.contains(&format!("--junit {}", junit.display())) && said.contains(&says),
            "{said}"
        );
        // Refused up front: no run, no verdict.
        assert!(!String::from_utf8_lossy(&out.stdout).contains("verdict"));
    }
}

/// Violations the session oracles find after the load (exclusivity here: two connections
/// of one token both accepted) are counted in `intervals.json` where they happened, as the
/// streaming oracles' are: the series' violations add up to summary.json's. They were
/// missing from it (0 against 4).
#[test]
fn the_time_series_counts_the_session_oracles_violations() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            "run",
            "scenarios/races/token-check-then-act.toml",
            "--bug",
            "token-check-then-act",
            "--no-learn",
            "-q",
            "-o",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::fs::read_dir(dir.path().join("race-token-check-then-act"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let read = |file: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join(file)).unwrap()).unwrap()
    };
    let summary = read("summary.json");
    let exclusivity = summary["violations"]["by_oracle"]["exclusivity"]
        .as_u64()
        .unwrap_or(0);
    assert!(exclusivity > 0, "{summary:#}");
    let series = read("intervals.json");
    let counted: u64 = series["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["violations"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        counted,
        summary["violations"]["total"].as_u64().unwrap_or(0),
        "{series:#}"
    );
}

/// `validate` of a file it cannot read says so as every other error is said, after
/// `error: ` (it printed `cannot read …` bare), and a scenario's problems stay bare
/// `FILE:LINE:COLUMN: MESSAGE` lines, the form editors read.
#[test]
fn validate_says_an_unreadable_file_as_an_error_and_problems_as_locations() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let out = stampede(&["validate", missing.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.starts_with(&format!("error: cannot read {}", missing.display())),
        "{said}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"b\"\nduration = 5\n").unwrap();
    let out = stampede(&["validate", bad.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!(
            "{}:2:12: duration: expected a duration like \"250ms\", \"2s\", \"1m\" (a string with its unit), found the integer 5",
            bad.display()
        )) && !said.contains("error: "),
        "{said}"
    );
}
