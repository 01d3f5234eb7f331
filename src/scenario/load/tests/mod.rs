//! Loader tests: good files load to the expected values, and every class of mistake is
//! reported at the right line and column.

use super::*;
use crate::model::*;
use proptest::prelude::*;
use std::time::Duration;

mod answer;
mod inputs;
mod limits;
mod protocols;
mod sections;
mod session;
mod steps;
mod thresholds;
mod tokens;

const GROUP: &str = "[[group]]\nname = \"g\"\nusers = 1\nsteps = [{ think = \"1ms\" }]\n";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A valid file: `top` lines, then `GROUP`.
fn with_top(top: &str) -> String {
    format!("name = \"t\"\nduration = \"10s\"\n{top}\n{GROUP}")
}

/// A valid file whose only group has `steps` (the text inside `steps = [...]`).
fn with_steps(steps: &str) -> String {
    format!("name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [\n{steps}\n]\n")
}

fn load(text: &str) -> Scenario {
    match load_str(text, "t.toml") {
        Ok(scenario) => scenario,
        Err(e) => panic!("expected the scenario to load, got:\n{e}"),
    }
}

fn problems(text: &str) -> Vec<Problem> {
    match load_str(text, "t.toml") {
        Ok(s) => panic!("expected problems, got {s:?}"),
        Err(ScenarioError::Invalid { problems }) => problems,
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// The only problem in `text`, as (line, column, message).
fn problem(text: &str) -> (usize, usize, String) {
    let all = problems(text);
    assert_eq!(all.len(), 1, "expected one problem, got {all:#?}");
    let p = &all[0];
    (p.line, p.column, p.message.clone())
}

fn assert_problem(text: &str, needle: &str) {
    let all = problems(text);
    assert!(
        all.iter().any(|p| p.message.contains(needle)),
        "no problem containing {needle:?} in {all:#?}"
    );
}

fn only_step(text: &str) -> Step {
    let mut scenario = load(text);
    scenario.groups.remove(0).steps.remove(0)
}
#[test]
fn full_file_loads_every_field() {
    let text = r#"
name = "full.test-1"
description = "all fields"
seed = 42
duration = "2m"
target = "wss://example.com/ws"

[auth]
secret = { file = "/run/secret" }
sub = "u-{{group}}-{{user}}"
ttl = "30s"
placement = { header = "X-Token" }

[limits]
max_message_bytes = 4096
handshake_timeout = "3s"
send_timeout = "2500ms"

[oracles]
type_field = "kind"
error_event = "failure"
identity = { field = "user_id" }
sequence = { field = "seq" }
max_buffered = 16
max_buffered_bytes = 65536

[[group]]
name = "a"
users = 3
connections_per_user = 2
arrival = { rate = "30/m", start = "1s" }
jitter = "normal(10ms, 2ms)"
token = "per-user"
steps = [
  { send = { type = "hi", n = 1, f = 1.5, ok = true, tags = ["x", "{{uuid}}"] } },
  { expect = "a b+ c* d?", correlate = "type", within = "2s", wait = false },
  { pause_reads = "uniform(1ms, 2ms)" },
  { close = 4000 },
  { reconnect = { after = "exp(5ms)", backoff = ["100ms", "1s"] } },
]
"#;
    let expected = Scenario {
        name: "full.test-1".into(),
        description: Some("all fields".into()),
        target: Some("wss://example.com/ws".into()),
        seed: 42,
        duration: ms(120_000),
        auth: AuthSpec {
            secret: SecretSource::File {
                path: "/run/secret".into(),
            },
            sub: "u-{{group}}-{{user}}".into(),
            ttl: ms(30_000),
            placement: Placement::Header {
                name: "X-Token".into(),
                prefix: String::new(),
            },
            ..AuthSpec::default()
        },
        groups: vec![Group {
            name: "a".into(),
            users: 3,
            connections_per_user: 2,
            arrival: Arrival::Rate {
                start: ms(1000),
                per_sec: 0.5,
            },
            jitter: Dist::Normal {
                mean: ms(10),
                sd: ms(2),
            },
            token: TokenReuse::PerUser,
            forge: None,
            placement: None,
            headers: Vec::new(),
            subprotocols: Vec::new(),
            feeder: None,
            steps: vec![
                Step::Send {
                    template: serde_json::json!({"type": "hi", "n": 1, "f": 1.5, "ok": true, "tags": ["x", "{{uuid}}"]}),
                },
                Step::Expect(Expect {
                    pattern: vec![
                        PatternItem {
                            event: "a".into(),
                            repeat: Repeat::One,
                        },
                        PatternItem {
                            event: "b".into(),
                            repeat: Repeat::OneOrMore,
                        },
                        PatternItem {
                            event: "c".into(),
                            repeat: Repeat::ZeroOrMore,
                        },
                        PatternItem {
                            event: "d".into(),
                            repeat: Repeat::Optional,
                        },
                    ]
                    .into(),
                    correlate: Some("type".into()),
                    correlate_reply: None,
                    earlier_send: 0,
                    earlier_send_step: 0,
                    within: ms(2000),
                    wait: false,
                    checks: Vec::new(),
                    capture: Vec::new(),
                    absent: false,
                    name: None,
                    pushed: false,
                    fresh: false,
                }),
                Step::PauseReads {
                    dist: Dist::Uniform {
                        low: ms(1),
                        high: ms(2),
                    },
                },
                Step::Close { code: 4000 },
                Step::Reconnect {
                    after: Dist::Exp { mean: ms(5) },
                    backoff: vec![ms(100), ms(1000)],
                },
            ],
        }],
        oracles: OracleSpec {
            type_field: "kind".into(),
            kinds: Vec::new(),
            record_separator: None,
            error_event: "failure".into(),
            identity: Some("user_id".into()),
            sequence: Some("seq".into()),
            max_buffered: 16,
            max_buffered_bytes: 65536,
            session: SessionOracles::default(),
            ..OracleSpec::default()
        },
        limits: Limits {
            max_message_bytes: 4096,
            handshake_timeout: ms(3000),
            send_timeout: ms(2500),
            max_in_flight: 256,
        },
        thresholds: vec![],
        hunt: HuntSpec::default(),
        answers: Vec::new(),
        hash: sha256_hex(text),
        content_hash: super::content_hash(text),
    };
    assert_eq!(load(text), expected);
}

#[test]
fn defaults_fill_everything_left_out() {
    let scenario = load(&with_top(""));
    assert_eq!(scenario.seed, 1);
    assert_eq!(scenario.description, None);
    assert_eq!(scenario.target, None);
    assert_eq!(scenario.limits, Limits::default());
    assert_eq!(scenario.oracles, OracleSpec::default());
    assert_eq!(
        scenario.auth,
        AuthSpec {
            secret: SecretSource::Env {
                name: "STAMPEDE_JWT_SECRET".into(),
                default: Some("stampede-dev-secret".into())
            },
            alg: JwtAlg::Hs256,
            key: None,
            public_key: None,
            sub: "user-{{user}}".into(),
            ttl: ms(600_000),
            aud: None,
            iss: None,
            claims: serde_json::Map::new(),
            placement: Placement::Header {
                name: "Authorization".into(),
                prefix: "Bearer ".into()
            },
            headers: vec![],
            origin: None,
            subprotocols: vec![],
            tokens: None,
        }
    );
    let group = &scenario.groups[0];
    assert_eq!(group.connections_per_user, 1);
    assert_eq!(group.arrival, Arrival::Burst { at: Duration::ZERO });
    assert_eq!(group.jitter, Dist::ZERO);
    assert_eq!(group.token, TokenReuse::PerConnection);
    let expect = only_step(&with_steps("{ expect = \"x\" }"));
    let Step::Expect(expect) = expect else {
        panic!("{expect:?}")
    };
    assert_eq!(
        (expect.within, expect.wait, expect.correlate),
        (ms(10_000), true, None)
    );
}

#[test]
fn hash_is_sha256_of_the_text() {
    let text = with_top("");
    let hash = load(&text).hash;
    assert_eq!(hash.len(), 64);
    assert_eq!(hash, format!("{:x}", Sha256::digest(text.as_bytes())));
    assert_ne!(load(&with_top("# another")).hash, hash);
}

#[test]
fn shipped_scenarios_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let golden = load_file(&dir.join("golden-path.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(golden.name, "golden-path");
    assert_eq!(golden.duration, ms(60_000));
    assert_eq!(golden.oracles.identity.as_deref(), Some("user_id"));
    assert_eq!(golden.oracles.sequence.as_deref(), Some("seq"));
    // The protocol promises an increasing seq, not one counted by one.
    assert!(golden.oracles.sequence_gaps);
    let group = &golden.groups[0];
    assert_eq!(group.users, 200);
    assert_eq!(
        group.arrival,
        Arrival::Ramp {
            start: Duration::ZERO,
            over: ms(5000)
        }
    );
    assert!(matches!(&group.steps[1], Step::Repeat { times: 3, steps, .. } if steps.len() == 3));
    assert_eq!(group.steps.last(), Some(&Step::Close { code: 1000 }));

    let burst = load_file(&dir.join("burst-connect.toml")).unwrap_or_else(|e| panic!("{e}"));
    let group = &burst.groups[0];
    assert_eq!((group.users, group.connections_per_user), (500, 1));
    assert_eq!(group.arrival, Arrival::Burst { at: Duration::ZERO });
    assert_eq!(
        group.jitter,
        Dist::Uniform {
            low: ms(0),
            high: ms(5)
        }
    );
    assert_eq!(burst.duration, ms(30_000));
    assert_eq!(group.steps.len(), 4);
}

#[test]
fn unknown_field_is_reported_at_its_key() {
    let text = "name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"x\"\nusres = 3\nusers = 1\nsteps = [{ think = \"1ms\" }]\n";
    assert_eq!(
        problem(text),
        (
            5,
            1,
            "unknown field \"usres\" in [[group]]; expected one of: name, users, connections_per_user, \
             arrival, jitter, token, forge, placement, steps, headers, subprotocol, feeder; did you mean \"users\"?"
                .into()
        )
    );
    let (line, column, message) = problem(&with_steps("  { expect = \"a\", witin = \"1s\" },"));
    assert_eq!((line, column), (7, 19));
    assert_eq!(
        message,
        "unknown field \"witin\" in expect step; expected one of: expect, correlate, within, wait, where, capture, name; \
         did you mean \"within\"?"
    );
    assert_problem(
        &with_top("threshold = 1"),
        "unknown field \"threshold\" in the top level",
    );
}

#[test]
fn syntax_error_has_its_position() {
    let (line, column, message) = problem("name = \"t\"\nseed = \nduration = \"1s\"\n");
    assert_eq!((line, column), (2, 8));
    assert!(message.starts_with("invalid TOML: "), "{message}");
    let (line, _, message) = problem("name = \"t\"\nname = \"u\"\n");
    assert_eq!(line, 2);
    assert!(message.contains("duplicate key"), "{message}");
    let unclosed = problems("name = \"t\"\nfoo = [1,\nb = 2\n");
    assert!(
        unclosed
            .iter()
            .any(|p| p.message.contains("unclosed array")),
        "{unclosed:#?}"
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = r#"name = "bad name"
duration = "5 sec"
seed = "x"
[[group]]
name = "g"
users = 0
jitter = "uniform(10ms, 5ms)"
steps = []
"#;
    let found: Vec<(usize, usize, String)> = problems(text)
        .into_iter()
        .map(|p| (p.line, p.column, p.message))
        .collect();
    let expected = [
        (1, 8, "name \"bad name\" names the results directory"),
        (
            2,
            12,
            "duration: expected a duration like \"250ms\", \"2s\", \"1m\", found \"5 sec\"",
        ),
        (3, 8, "seed: expected an integer, found a string"),
        (6, 9, "group \"g\" has users = 0; expected at least 1"),
        (
            7,
            10,
            "jitter: uniform(10ms, 5ms): low must not exceed high",
        ),
        (8, 9, "steps: expected at least one step"),
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for ((line, column, message), (want_line, want_column, want)) in found.iter().zip(expected) {
        assert_eq!((*line, *column), (want_line, want_column), "{message}");
        assert!(
            message.starts_with(want),
            "{message:?} should start with {want:?}"
        );
    }
}

#[test]
fn display_prints_one_problem_per_line() {
    let err = load_str("name = \"t\"\n", "s.toml").expect_err("incomplete");
    assert_eq!(
        err.to_string(),
        "s.toml:1:1: missing required field \"duration\" in the top level\n\
         s.toml:1:1: missing [[group]]: a scenario needs at least one group"
    );
}

#[test]
fn missing_and_mistyped_fields() {
    assert_problem(
        "duration = \"1s\"\n",
        "missing required field \"name\" in the top level",
    );
    let (line, column, message) =
        problem("name = \"t\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\n");
    assert_eq!(
        (line, column, message.as_str()),
        (3, 1, "missing required field \"steps\" in [[group]]")
    );
    assert_problem(
        &with_top("seed = -1"),
        "scenario has seed = -1; expected at least 0",
    );
    assert_problem(
        &with_top("seed = 1.5"),
        "seed: expected an integer, found a float",
    );
    assert_problem(&with_top("duration2 = 1"), "unknown field \"duration2\"");
    assert_problem(
        "name = \"t\"\nduration = \"0s\"\n".to_owned().as_str(),
        "duration = \"0s\"; expected more than zero",
    );
    assert_problem(
        &with_top("auth = 3"),
        "[auth]: expected a table, found an integer",
    );
    assert_problem(
        "name = \"t\"\nduration = \"1s\"\n[group]\nname = \"g\"\n",
        "group: expected [[group]] tables, found a table",
    );
    assert_problem(
        &with_top("description = 5"),
        "description: expected a string, found an integer",
    );
}

#[test]
fn name_and_target_are_checked() {
    assert_problem(
        "name = \"\"\nduration = \"1s\"\n",
        "scenario has name = \"\"; expected a non-empty string",
    );
    assert_problem(
        "name = \"..\"\nduration = \"1s\"\n",
        "names the results directory",
    );
    assert_problem(
        &with_top("target = \"http://x\""),
        "target: expected a ws:// or wss:// URL, found \"http://x\"",
    );
    assert_problem(
        &with_top("target = \"ws://\""),
        "expected a ws:// or wss:// URL",
    );
    // A fragment never reaches the server: a token placed in the query after it is lost.
    assert_problem(
        &with_top("target = \"ws://h/x#frag\""),
        "target: a WebSocket URL has no fragment (RFC 6455 section 3)",
    );
    assert_problem(
        &with_top("target = \"ws://h:99999/ws\""),
        "target: invalid port \"99999\": expected a number from 1 to 65535",
    );
    assert_eq!(
        load(&with_top("target = \"ws://h:1/ws\""))
            .target
            .as_deref(),
        Some("ws://h:1/ws")
    );
    // What the dialer refused only at the run's start ("not a URL", "cannot resolve :").
    for (url, reason) in [
        ("ws://[::1", "not a URL"),
        ("wss://[::1/ws", "not a URL"),
        ("ws://a b/ws", "not a URL"),
        ("ws://127.0.0.1:8080:9/ws", "not a URL"),
        ("ws://:8080/ws", "no host"),
    ] {
        assert_problem(
            &with_top(&format!("target = \"{url}\"")),
            &format!("target: {reason}: expected ws://HOST[:PORT]/PATH, found \"{url}\""),
        );
    }
    assert_eq!(
        load(&with_top("target = \"ws://[::1]:8080/ws\""))
            .target
            .as_deref(),
        Some("ws://[::1]:8080/ws")
    );
}

/// `target = "ws://host/ocpp/CP{{user}}"`: the path and query take the connection's
/// placeholders (kept as written in the scenario); one in the host or port, or an
/// unknown one, is refused where it is written.
#[test]
fn target_placeholders_go_in_the_path_and_are_located_when_wrong() {
    let ok = "ws://127.0.0.1:9000/ocpp/CP{{user}}?c={{conn}}&g={{group}}&s={{ sub }}";
    assert_eq!(
        load(&with_top(&format!("target = \"{ok}\"")))
            .target
            .as_deref(),
        Some(ok)
    );
    // Line 3 is `target = "...`: the URL's first character is column 11.
    let cases = [
        (
            "ws://cp{{user}}.example:9000/ocpp",
            18,
            "target: placeholder \"{{user}}\" in the URL's host or port; only its path and query take placeholders",
        ),
        (
            "ws://127.0.0.1:{{conn}}/ocpp",
            26,
            "target: placeholder \"{{conn}}\" in the URL's host or port",
        ),
        (
            "ws://127.0.0.1:9000/ocpp/CP{{usr}}",
            38,
            "unknown placeholder \"{{usr}}\" in target; expected one of: {{user}}, {{conn}}, {{group}}, {{sub}}",
        ),
        (
            "ws://127.0.0.1:9000/x?r={{random}}",
            35,
            "placeholder not available \"{{random}}\" in target",
        ),
    ];
    for (url, column, message) in cases {
        let problems = problems(&with_top(&format!("target = \"{url}\"")));
        assert_eq!(problems.len(), 1, "{url}: {problems:#?}");
        let p = &problems[0];
        assert_eq!((p.line, p.column), (3, column), "{url}: {p:?}");
        assert!(p.message.starts_with(message), "{url}: {}", p.message);
    }
}

#[test]
fn unreadable_file_is_an_io_error() {
    let err = load_file(Path::new("/nonexistent/stampede.toml")).expect_err("missing file");
    assert!(matches!(err, ScenarioError::Io { .. }), "{err:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = load_str(&text, "fuzz.toml");
    }

    #[test]
    fn mangled_valid_files_never_panic(cut in 0usize..400, insert in "[\\[\\]{}=\",\n a-z0-9]{0,5}") {
        let mut text = with_steps("{ send = { a = \"{{run}}\" } }, { expect = \"a b+\", correlate = \"a\" }");
        let at = (0..=cut.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.insert_str(at, &insert);
        let _ = load_str(&text, "fuzz.toml");
    }
}

/// An unclosed table header (the breaker's `[[group]` on line 3) leaves the keys after it
/// in the table before it, where toml reads `name` again as a duplicate key: that echo is
/// not reported, only the header's own error. A problem under the next header that is
/// whole is its own, and still reported.
#[test]
fn a_broken_table_header_is_reported_without_its_echoes() {
    let at = |text: &str| -> Vec<(usize, usize, String)> {
        problems(text)
            .into_iter()
            .map(|p| (p.line, p.column, p.message))
            .collect()
    };
    assert_eq!(
        at("name = \"x\"\nseed = 1\n[[group]\nname=\"g\"\n"),
        vec![(
            3,
            9,
            "invalid TOML: unclosed array table, expected `]`".to_string()
        )]
    );
    let found = at(
        "name = \"t\"\n[[group]]\nname = \"a\"\nname = \"b\"\n[[group]\nname = \"c\"\n\
         [[group]]\nname = \"v\"\nname = \"w\"\n",
    );
    let lines: Vec<usize> = found.iter().map(|p| p.0).collect();
    assert_eq!(lines, vec![4, 5, 9], "{found:#?}");
    assert!(found[0].2.contains("duplicate key"), "{found:#?}");
    assert!(found[2].2.contains("duplicate key"), "{found:#?}");
}

/// A placeholder written in a `send`'s key is refused where it is written: keys are sent
/// as written (`"k{{conn}}"` went out as `k{{conn}}`, with no word), values are filled.
#[test]
fn a_placeholder_in_a_sends_key_is_refused() {
    let text = with_steps(r#"  { send = { type = "x", "k{{conn}}" = "v" } },"#);
    assert_problem(
        &text,
        "send: placeholders are filled in values, not in keys: \"k{{conn}}\" would be sent as written",
    );
    let all = problems(&text);
    let p = all
        .iter()
        .find(|p| p.message.contains("not in keys"))
        .expect("the problem");
    assert_eq!((p.line, p.column), (7, 26), "{p:?}");
    // In a value, it is filled: no problem.
    load(&with_steps(
        r#"  { send = { type = "x", k = "{{conn}}" } },"#,
    ));
}

/// A step's missing `}` is noticed by toml only at the steps' closing `]`, lines later,
/// after errors about the next step that are its echoes: the problem is also said where
/// the `{` opened, first in file order. An array left open is said where its `[` opened.
#[test]
fn an_unclosed_bracket_is_said_where_it_opened() {
    let text = "name = \"x\"\n[[group]]\nname = \"g\"\nsteps = [\n  \
                { send = { type = \"echo\" },\n  { expect = \"echo\" },\n]\n";
    let found = problems(text);
    assert_eq!((found[0].line, found[0].column), (5, 3), "{found:#?}");
    assert_eq!(
        found[0].message,
        "invalid TOML: unclosed inline table: the `{` here has no `}` (toml noticed at 7:2)",
        "{found:#?}"
    );
    // What toml then says between the bracket and where it noticed it (a missing comma,
    // its own "unclosed") echoes the one mistake: said once, where it opened.
    let text = "name = \"x\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\n\
                arrival = { ramp = \"2s\"\nsteps = [ { close = 1000 } ]";
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].line, found[0].column), (6, 11), "{found:#?}");
    let text = "name = \"x\"\n[[group]]\nname = \"g\"\nsteps = [\n  { close = 1000 },\n";
    let found = problems(text);
    assert_eq!((found[0].line, found[0].column), (4, 9), "{found:#?}");
    assert!(
        found[0]
            .message
            .starts_with("invalid TOML: unclosed array: the `[` here"),
        "{found:#?}"
    );
}

/// A scenario's content hash ignores what TOML does not read (comments, blank lines,
/// spacing, quoting, the order of keys) and changes with any value; its file hash changes
/// with every byte.
#[test]
fn the_content_hash_ignores_comments_and_layout_but_not_values() {
    let text = "name = \"h\"\nduration = \"5s\"\n[[group]]\nname = \"g\"\nusers = 2\nsteps = [{ think = \"1ms\" }]\n";
    let edited = "# nightly\nduration = '5s'\nname   = \"h\"\n\n[[group]]\nusers = 2 # two\nname = \"g\"\nsteps = [ { think = \"1ms\" } ]\n";
    let more = text.replace("users = 2", "users = 3");
    let (a, b, c) = (load(text), load(edited), load(&more));
    assert_ne!(a.hash, b.hash);
    assert_eq!(a.content_hash, b.content_hash);
    assert_ne!(a.content_hash, c.content_hash);
    assert_eq!(a.content_hash.len(), 64);
}

/// `[oracles] identity` and `sequence` take the field alone as a string (as `[battery]`'s
/// `identity` does), short for `{ field = ... }`; an empty or malformed one is located.
#[test]
fn an_oracle_field_may_be_written_as_the_path_alone() {
    let short = load(&with_top(
        "[oracles]\nidentity = \"from\"\nsequence = \"data.seq\"",
    ));
    let long = load(&with_top(
        "[oracles]\nidentity = { field = \"from\" }\nsequence = { field = \"data.seq\" }",
    ));
    assert_eq!(short.oracles.identity.as_deref(), Some("from"));
    assert_eq!(short.oracles.sequence.as_deref(), Some("data.seq"));
    assert_eq!(short.oracles, long.oracles);
    let (line, column, message) = problem(&with_top("[oracles]\nidentity = \"\""));
    assert_eq!((line, column), (4, 12), "{message}");
    assert!(
        message.contains("oracles.identity: expected a field path"),
        "{message}"
    );
}
