//! Protocol expressiveness: field paths, message kinds, framing, field tests, captures and
//! absences.

use super::*;
use serde_json::json;

fn expect_of(text: &str) -> Expect {
    let mut scenario = load(text);
    let steps = scenario.groups.remove(0).steps;
    steps
        .into_iter()
        .find_map(|s| match s {
            Step::Expect(e) => Some(e),
            _ => None,
        })
        .unwrap()
}

#[test]
fn kinds_paths_and_separator_load_in_file_order() {
    let s = load(&with_top(
        r#"[oracles]
type_field = "/3"
record_separator = "\u001e"
identity = { field = "message.user" }
sequence = { field = "/payload/seq" }
[oracles.kinds]
confirm = { type = "confirm_subscription" }
data = { has = "message", type = { present = false } }
invocation = { type = 1, "/arguments/0" = { matches = "^group[0-9]$" } }
"#,
    ));
    let o = &s.oracles;
    assert_eq!(o.type_field, "/3");
    assert_eq!(o.record_separator.as_deref(), Some("\u{1e}"));
    assert_eq!(o.identity.as_deref(), Some("message.user"));
    let names: Vec<&str> = o.kinds.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["confirm", "data", "invocation"]);
    assert_eq!(
        o.kinds[1].when,
        vec![
            FieldTest {
                path: "message".into(),
                test: Test::Present
            },
            FieldTest {
                path: "type".into(),
                test: Test::Absent
            }
        ]
    );
    assert_eq!(o.kinds[2].when[0].test, Test::Equals(json!(1)));
    assert_eq!(
        o.kinds[2].when[1].test,
        Test::Matches("^group[0-9]$".into())
    );
}

#[test]
fn bad_kinds_and_paths_are_reported() {
    assert_problem(
        &with_top("[oracles]\ntype_field = \"a..b\""),
        "type_field: \"a..b\": a dotted path has an empty part",
    );
    assert_problem(
        &with_top("[oracles.kinds]\nx = {}"),
        "oracles.kinds.x: expected at least one test",
    );
    assert_problem(
        &with_top("[oracles.kinds]\nx = { a = { matches = \"(\" } }"),
        "oracles.kinds.x.a.matches: not a valid regular expression",
    );
    assert_problem(
        &with_top("[oracles.kinds]\nx = { a = \"{{conn}}\" }"),
        "oracles.kinds.x.a takes no placeholders",
    );
    assert_problem(
        &with_top("[oracles]\nrecord_separator = \"\""),
        "oracles.record_separator: expected a non-empty string",
    );
    assert_problem(
        &with_top("[oracles]\nidentity = { field = \"/a~2\" }"),
        "oracles.identity.field: \"/a~2\": in a JSON Pointer",
    );
    // An empty field is one problem, said once.
    let (_, _, message) = problem(&with_top("[oracles]\nsequence = { field = \"\" }"));
    assert!(message.contains("expected a non-empty string"), "{message}");
}

/// `contiguous = false` lets the sequence field skip numbers; it is the sequence
/// oracle's alone, and a boolean.
#[test]
fn a_sequence_may_be_declared_with_gaps() {
    let gaps = |line: &str| load(&with_top(&format!("[oracles]\n{line}"))).oracles;
    let spec = gaps("sequence = { field = \"seq\", contiguous = false }");
    assert_eq!(spec.sequence.as_deref(), Some("seq"));
    assert!(spec.sequence_gaps);
    assert!(!gaps("sequence = { field = \"seq\", contiguous = true }").sequence_gaps);
    assert!(!gaps("sequence = { field = \"seq\" }").sequence_gaps);
    assert_problem(
        &with_top("[oracles]\nsequence = { field = \"seq\", contiguous = \"no\" }"),
        "contiguous",
    );
    assert_problem(
        &with_top("[oracles]\nidentity = { field = \"u\", contiguous = false }"),
        "unknown field \"contiguous\"",
    );
}

/// `per` scopes the sequence to a field's values, `kinds` to the records that carry it;
/// a `per` that is no path, or an empty `kinds`, is an error at its place.
#[test]
fn a_sequence_may_be_scoped_per_field_and_kind() {
    let spec = load(&with_top(
        "[oracles]\nsequence = { field = \"seq\", per = \"symbol\", kinds = [\"update\", \"snapshot\"] }",
    ))
    .oracles;
    assert_eq!(spec.sequence_per.as_deref(), Some("symbol"));
    assert_eq!(spec.sequence_kinds, ["update", "snapshot"]);
    let plain = load(&with_top("[oracles]\nsequence = { field = \"seq\" }")).oracles;
    assert!(plain.sequence_per.is_none() && plain.sequence_kinds.is_empty());
    assert_problem(
        &with_top("[oracles]\nsequence = { field = \"seq\", per = \"\" }"),
        "oracles.sequence.per",
    );
    assert_problem(
        &with_top("[oracles]\nsequence = { field = \"seq\", kinds = [] }"),
        "expected at least one kind",
    );
    assert_problem(
        &with_top("[oracles]\nsequence = { field = \"seq\", kinds = [\"\"] }"),
        "a kind is a non-empty string",
    );
}

#[test]
fn sends_take_arrays_and_text() {
    let s = load(&with_steps(
        r#"{ send = ["1", "{{run}}", "room:{{conn}}", "phx_join", {}] },
        { send_text = "{\"protocol\":\"json\",\"version\":1}" },
        { send = { id = "{{run:int}}" } },"#,
    ));
    let steps = &s.groups[0].steps;
    assert_eq!(
        steps[0],
        Step::Send {
            template: json!(["1", "{{run}}", "room:{{conn}}", "phx_join", {}])
        }
    );
    assert_eq!(
        steps[1],
        Step::SendText {
            template: "{\"protocol\":\"json\",\"version\":1}".into()
        }
    );
    assert_eq!(
        steps[2],
        Step::Send {
            template: json!({"id": "{{run:int}}"})
        }
    );
    assert_problem(
        &with_steps("{ send = { id = \"{{group:int}}\" } }"),
        "only user, conn, run take \":int\"",
    );
    assert_problem(
        &with_steps("{ send_text = \"{{nope}}\" }"),
        "unknown placeholder \"{{nope}}\" in send_text",
    );
}

#[test]
fn correlation_paths_must_be_sent_before() {
    let e = expect_of(&with_steps(
        r#"{ send = ["1", "2", "room", "phx_join", {}] },
        { expect = "phx_reply", correlate = "/1" },"#,
    ));
    assert_eq!(e.correlate.as_deref(), Some("/1"));
    let e = expect_of(&with_steps(
        r#"{ send = { payload = { id = "x" } } },
        { expect = "r", correlate = "payload.id" },"#,
    ));
    assert_eq!(e.correlate.as_deref(), Some("payload.id"));
    assert_problem(
        &with_steps(
            r#"{ send = { payload = { id = "x" } } },
        { expect = "r", correlate = "payload.other" },"#,
        ),
        "expect correlates on \"payload.other\" but no earlier send sets it",
    );
}

/// The correlated expectations answering a stretch of sends carrying their field pair with
/// the latest of those sends in order (a pipelining client's `send AUTH, send EVENT,
/// expect OK, expect OK`); expectations past the sends, or after one send, take the latest;
/// sends before an earlier stretch of expectations, or without the field, do not count.
#[test]
fn correlated_expectations_pair_with_the_sends_before_them_in_order() {
    let backs = |steps: &str| -> Vec<u8> {
        let steps = load(&with_steps(steps)).groups.remove(0).steps;
        crate::model::deep_steps(&steps)
            .filter_map(|s| match s {
                Step::Expect(e) => Some(e.earlier_send),
                _ => None,
            })
            .collect()
    };
    let a = r#"{ send = ["AUTH", { id = "a" }] },"#;
    let e = r#"{ send = ["EVENT", { id = "e" }] },"#;
    let c = r#"{ send = ["CLOSE", { id = "c" }] },"#;
    let plain = r#"{ send = ["PING"] },"#;
    let ok = r#"{ expect = "OK", correlate = { send = "/1/id", reply = "/1" } },"#;
    let any = r#"{ expect = "NOTICE" },"#;
    let think = r#"{ think = "10ms" },"#;
    let ping = r#"{ ping = "p" },"#;
    let none =
        r#"{ expect_none = "OK", correlate = { send = "/1/id", reply = "/1" }, within = "10ms" },"#;
    let cases = [
        (format!("{a}{e}{ok}{ok}"), vec![1, 0]),
        (format!("{a}{ok}{ok}"), vec![0, 0]),
        (format!("{a}{e}{ok}"), vec![0]),
        (format!("{a}{e}{c}{ok}{ok}"), vec![1, 0]),
        (format!("{a}{e}{c}{ok}{ok}{ok}"), vec![2, 1, 0]),
        (format!("{a}{e}{ok}{ok}{ok}"), vec![1, 0, 0]),
        (format!("{a}{plain}{e}{ok}{ok}"), vec![1, 0]),
        (format!("{a}{any}{e}{ok}{ok}"), vec![0, 0, 0]),
        (format!("{a}{ok}{e}{ok}"), vec![0, 0]),
        // An uncorrelated expect (a keepalive) among the answers pairs with nothing, and
        // neither does a `think` or a `ping` between the sends.
        (format!("{a}{e}{ok}{any}{ok}"), vec![1, 0, 0]),
        (format!("{a}{e}{c}{any}{ok}{ok}{ok}"), vec![0, 2, 1, 0]),
        (format!("{a}{think}{e}{ping}{ok}{think}{ok}"), vec![1, 0]),
        (format!("{a}{e}{ok}{none}{ok}"), vec![1, 0, 0]),
        (
            format!("{{ repeat = 2, steps = [{a}{e}{ok}{ok}] }},"),
            vec![1, 0],
        ),
        // A loop of sends alone belongs to the stretch, each iteration a send.
        (
            format!("{{ repeat = 2, steps = [{a}] }},{e}{ok}{ok}"),
            vec![1, 0],
        ),
        (
            format!("{{ repeat = 2, steps = [{a}] }},{e}{ok}{ok}{ok}"),
            vec![2, 1, 0],
        ),
        // Sends at a loop's end are answered at its next iteration's start, and after it.
        (
            format!("{a}{e}{{ repeat = 3, steps = [{ok}{ok}{a}{e}] }},{ok}{ok}"),
            vec![1, 0, 1, 0],
        ),
    ];
    for (steps, want) in cases {
        assert_eq!(backs(&steps), want, "{steps}");
    }
}

/// A loop of answers alone right after a loop of sends (a pipelined burst: `repeat = 8`
/// of sends, then `repeat = 8` of expects) pairs in order over its iterations: the body's
/// expects start as far back as written out, and come `k` sends nearer each iteration.
/// Without it every iteration waited for the last send's answer.
#[test]
fn a_loop_of_answers_pairs_with_the_loop_of_sends_before_it_iteration_by_iteration() {
    let pairing = |steps: &str| -> Vec<(u8, u8)> {
        let steps = load(&with_steps(steps)).groups.remove(0).steps;
        crate::model::deep_steps(&steps)
            .filter_map(|s| match s {
                Step::Expect(e) => Some((e.earlier_send, e.earlier_send_step)),
                _ => None,
            })
            .collect()
    };
    let a = r#"{ send = ["AUTH", { id = "a-{{run}}" }] },"#;
    let ok = r#"{ expect = "OK", correlate = { send = "/1/id", reply = "/1" } },"#;
    let any = r#"{ expect = "NOTICE" },"#;
    let think = r#"{ think = "10ms" },"#;
    let cases = [
        (
            format!("{{ repeat = 8, steps = [{a}] }},{{ repeat = 8, steps = [{ok}] }},"),
            vec![(7, 1)],
        ),
        // Two answers an iteration: two sends nearer each time; a keepalive and a think
        // in the body pair with nothing.
        (
            format!(
                "{{ repeat = 4, steps = [{a}{a}] }},{{ repeat = 4, steps = [{any}{ok}{think}{ok}] }},"
            ),
            vec![(0, 0), (7, 2), (6, 2)],
        ),
        // Fewer sends than answers: the first answers pair with them, the rest the latest.
        (
            format!("{a}{a}{{ repeat = 3, steps = [{ok}] }},"),
            vec![(1, 1)],
        ),
        // A loop that sends too keeps the pairing of its own body.
        (
            format!("{a}{{ repeat = 3, steps = [{ok}{a}] }},{ok}"),
            vec![(0, 0), (0, 0)],
        ),
    ];
    for (steps, want) in cases {
        assert_eq!(pairing(&steps), want, "{steps}");
    }
}

/// `correlate = { send = ..., reply = ... }`: the value is read in the send at one path
/// and in the answers at another (Mattermost's `seq` and `seq_reply`, Nostr's event id at
/// `/1/id` answered at `/1`). Both paths are checked; the send's must be set by a send.
#[test]
fn a_correlation_may_read_the_answer_at_another_path() {
    let e = expect_of(&with_steps(
        r#"{ send = { action = "user_typing", seq = "{{run:int}}" } },
        { expect = "reply", correlate = { send = "seq", reply = "seq_reply" } },"#,
    ));
    assert_eq!(e.correlate.as_deref(), Some("seq"));
    assert_eq!(e.correlate_reply.as_deref(), Some("seq_reply"));
    // The same path twice is the plain form.
    let e = expect_of(&with_steps(
        r#"{ send = { id = "x" } },
        { expect = "r", correlate = { send = "id", reply = "id" } },"#,
    ));
    assert_eq!(
        (e.correlate.as_deref(), e.correlate_reply),
        (Some("id"), None)
    );
    let send = r#"{ send = ["EVENT", { id = "e{{run}}" }] },"#;
    let problems = [
        (
            r#"{ expect = "OK", correlate = { send = "/1/id", replies = "/1" } },"#,
            "unknown field \"replies\" in correlate; expected one of: send, reply",
        ),
        (
            r#"{ expect = "OK", correlate = { send = "/1/id" } },"#,
            "missing required field \"reply\" in correlate",
        ),
        (
            r#"{ expect = "OK", correlate = { send = "/1/nope", reply = "/1" } },"#,
            "expect correlates on \"/1/nope\" but no earlier send sets it",
        ),
        (
            r#"{ expect = "OK", correlate = 3 },"#,
            "correlate: expected a field path (\"run_id\") or { send = \"seq\", reply = \"seq_reply\" }, found an integer",
        ),
    ];
    for (step, problem) in problems {
        assert_problem(&with_steps(&format!("{send}\n{step}")), problem);
    }
}

#[test]
fn field_tests_captures_and_absences_load() {
    let text = with_steps(
        r#"{ send = { id = "a", type = "subscribe" } },
        { expect = "next", correlate = "id", where = { "/payload/status" = "ok", "payload.n" = 3, user = "{{sub}}", tag = { matches = "^t" } }, capture = { sid = "/payload/sid" } },
        { send = { id = "{{$sid}}", type = "ping" } },
        { expect_none = "error", within = "200ms", where = { id = "{{$sid}}" } },
        { expect = "room-{{conn}}" },"#,
    );
    let mut s = load(&text);
    let steps = s.groups.remove(0).steps;
    let Step::Expect(e) = &steps[1] else { panic!() };
    assert_eq!(e.checks.len(), 4);
    assert_eq!(e.checks[0].test, Test::Equals(json!("ok")));
    assert_eq!(e.checks[1].test, Test::Equals(json!(3)));
    assert_eq!(e.checks[2].test, Test::Equals(json!("{{sub}}")));
    assert_eq!(
        e.capture,
        vec![Capture {
            name: "sid".into(),
            path: "/payload/sid".into()
        }]
    );
    let Step::Expect(none) = &steps[3] else {
        panic!()
    };
    assert!(none.absent);
    assert_eq!(none.within, ms(200));
    let Step::Expect(room) = &steps[4] else {
        panic!()
    };
    assert_eq!(room.pattern[0].event, "room-{{conn}}");
}

#[test]
fn bad_field_tests_and_captures_are_reported() {
    assert_problem(
        &with_steps("{ send = { id = \"{{$sid}}\" } }"),
        "\"{{$sid}}\" refers to no earlier capture",
    );
    assert_problem(
        &with_steps("{ expect = \"x\", capture = { \"a-b\" = \"/x\" } }"),
        "capture: \"a-b\" is not a capture name",
    );
    assert_problem(
        &with_steps("{ expect = \"x\", where = { a = { present = 1 } } }"),
        "expect.where.a.present: expected a boolean",
    );
    assert_problem(
        &with_steps("{ expect = \"x\", where = { a = \"{{random}}\" } }"),
        "placeholder not available \"{{random}}\" in expect.where.a",
    );
    assert_problem(
        &with_steps("{ expect_none = \"x\", capture = { a = \"/x\" } }"),
        "unknown field \"capture\" in expect_none step",
    );
}

#[test]
fn group_headers_and_upgrade_placeholders_load() {
    let text = "name = \"t\"\nduration = \"10s\"\n[auth]\nheaders = { \"X-User\" = \"{{sub}}\" }\n\
                placement = { first_message = { type = \"auth\", token = \"{{token}}\", c = \"{{conn}}\" } }\n\
                [[group]]\nname = \"g\"\nusers = 1\nheaders = { \"X-Room\" = \"r{{conn}}\" }\nsteps = [{ think = \"1ms\" }]\n";
    let s = load(text);
    assert_eq!(s.auth.headers, vec![("X-User".into(), "{{sub}}".into())]);
    assert_eq!(
        s.groups[0].headers,
        vec![("X-Room".into(), "r{{conn}}".into())]
    );
    assert_problem(
        &with_top("[auth]\nheaders = { \"X-A\" = \"{{run}}\" }"),
        "placeholder not available \"{{run}}\" in auth.headers",
    );
    let bad_group = "name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"g\"\nusers = 1\n\
                     headers = { Upgrade = \"x\" }\nsteps = [{ think = \"1ms\" }]\n";
    assert_problem(
        bad_group,
        "group \"g\" headers: Upgrade belongs to the WebSocket handshake",
    );
}

#[test]
fn expect_names_load_and_are_bounded() {
    let e = expect_of(&with_steps("{ expect = \"ack\", name = \"sub.ack-1\" },"));
    assert_eq!(e.name.as_deref(), Some("sub.ack-1"));
    assert_problem(
        &with_steps("{ expect = \"ack\", name = \"a b\" },"),
        "expect name \"a b\": use letters, digits",
    );
    let many: Vec<String> = (0..=crate::model::MAX_TURN_NAMES)
        .map(|i| format!("{{ expect = \"x\", name = \"n{i}\" }},"))
        .collect();
    assert_problem(
        &with_steps(&many.join("\n")),
        "17 distinct expect names; at most 16",
    );
}

fn with_feeder(data_name: &str, data: &str, group: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(data_name);
    std::fs::write(&path, data).unwrap();
    let text = format!(
        "name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"g\"\nusers = 1\nfeeder = {{ file = {:?} }}\n{group}",
        path.display().to_string()
    );
    (dir, text)
}

#[test]
fn a_feeder_loads_and_its_placeholders_are_checked() {
    let steps = "steps = [{ send = { name = \"{{feed.name}}\" } }]\n";
    let (_d, text) = with_feeder("u.csv", "name,pw\nada,x\n", steps);
    let feed = load(&text).groups.remove(0).feeder.unwrap();
    assert_eq!(feed.columns, ["name", "pw"]);
    assert_eq!(feed.format, FeedFormat::Csv);
    assert_eq!(*feed.rows, [vec!["ada".to_string(), "x".to_string()]]);

    let bad = "steps = [{ send = { name = \"{{feed.nmae}}\" } }]\n";
    let (_d, text) = with_feeder("u.csv", "name,pw\nada,x\n", bad);
    let (line, column, message) = problem(&text);
    assert_eq!((line, column), (7, 29));
    assert!(
        message.contains("the group's feeder has no column \"nmae\"; its columns: name, pw"),
        "{message}"
    );

    let none = with_steps("{ send = { name = \"{{feed.name}}\" } }");
    assert_problem(&none, "the group has no feeder");

    // A malformed feeder is reported once, at its key: its placeholders are not then
    // also told that the group has no feeder.
    let (_d, text) = with_feeder("u.csv", "name,pw\nada\n", steps);
    let all = problems(&text);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(all[0].message.contains("expected 2 fields"), "{all:#?}");
}

#[test]
fn a_malformed_feeder_row_names_the_data_file_line() {
    let (_d, text) = with_feeder(
        "u.csv",
        "name,pw\nada,x\nbob\n",
        "steps = [{ close = 1000 }]\n",
    );
    let (line, column, message) = problem(&text);
    assert_eq!((line, column), (6, 10), "at the feeder");
    assert!(
        message.contains("u.csv:3: expected 2 fields (as the header has), found 1"),
        "{message}"
    );
    let (_d, text) = with_feeder("u.txt", "name\nada\n", "steps = [{ close = 1000 }]\n");
    assert_problem(&text, "cannot tell the format");
}

#[test]
fn a_feeder_that_is_not_utf8_names_its_own_line_and_column() {
    let (dir, text) = with_feeder("u.csv", "name,pw\nada,x\n", "steps = [{ close = 1000 }]\n");
    let data = dir.path().join("u.csv");
    std::fs::write(&data, b"name,pw\nada,x\nren\xE9e,y\n").unwrap();
    let (line, column, message) = problem(&text);
    assert_eq!((line, column), (6, 10), "at the feeder");
    let want = format!(
        "{}:3:4: not UTF-8 (byte 0xE9); a feeder file must be UTF-8",
        data.display()
    );
    assert!(message.contains(&want), "{message}");
}

#[test]
fn socket_io_framing_loads_and_refuses_what_it_cannot_mean() {
    use crate::model::Framing;
    let s = load(&with_top("[oracles]\nframing = \"socket.io\""));
    assert_eq!(s.oracles.framing, Framing::SocketIo);
    assert_eq!(load(&with_top("")).oracles.framing, Framing::Plain);
    let s = load(&with_top("[oracles]\nframing = \"stomp\""));
    assert_eq!(s.oracles.framing, Framing::Stomp);
    assert_problem(
        &with_top("[oracles]\nframing = \"socketio\""),
        "oracles.framing: expected \"socket.io\", \"stomp\" or \"plain\", found \"socketio\"",
    );
    assert_problem(
        &with_top("[oracles]\nframing = \"socket.io\"\nrecord_separator = \"\\u001e\""),
        "oracles.framing: the protocol's packets delimit its records",
    );
}

#[test]
fn embedded_json_paths_load_checked() {
    let s = load(&with_top("[oracles]\nembedded_json = [\"data\", \"/m/0\"]"));
    assert_eq!(s.oracles.embedded_json, ["data", "/m/0"]);
    assert_problem(
        &with_top("[oracles]\nembedded_json = [\"a..b\"]"),
        "oracles.embedded_json: \"a..b\": a dotted path has an empty part",
    );
    assert_problem(
        &with_top("[oracles]\nembedded_json = \"data\""),
        "oracles.embedded_json: expected an array of field paths like [\"data\"], found \"data\"",
    );
}

#[test]
fn framed_sends_must_be_packets_the_framing_writes() {
    let group = |framing: &str, send: &str| {
        format!(
            "name = \"t\"\nduration = \"1s\"\n[oracles]\nframing = \"{framing}\"\n\
             [[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ send = {send} }}]\n"
        )
    };
    for ok in [
        r#"["chat", 1]"#,
        r#"{ type = "say", id = "{{run}}" }"#,
        r#"{ type = "say", id = 7 }"#,
        r#"{ type = "say", id = "10" }"#,
        r#"{ type = "connect" }"#,
    ] {
        load(&group("socket.io", ok));
    }
    assert_problem(
        &group("socket.io", r#"{ type = "say", id = "req-{{run}}" }"#),
        "group \"g\", send 1: a Socket.IO ack id is a number: write id = \"{{run}}\" or a number, not \"req-{{run}}\"",
    );
    assert_problem(
        &group("socket.io", r#"{ type = "say", id = "{{conn}}{{run}}" }"#),
        "a Socket.IO ack id is a number",
    );
    assert_problem(
        &group("socket.io", r#"{ event = "say" }"#),
        "group \"g\", send 1: with framing = \"socket.io\" a send table names its packet or event in a string `type`",
    );
    assert_problem(
        &group("socket.io", "[1, 2]"),
        "a send is an array [\"event\", args…]",
    );
    assert_problem(
        &group("socket.io", r#"{ type = "say", text = "hi" }"#),
        "a Socket.IO send table takes type, data, id and nsp; \"text\" would not go out",
    );
    load(&group(
        "stomp",
        r#"{ type = "SEND", headers = { destination = "/q" } }"#,
    ));
    assert_problem(
        &group("stomp", r#"["SEND"]"#),
        "with framing = \"stomp\" a send is a table with the command in `type`",
    );
    assert_problem(
        &group("stomp", r#"{ type = "SUBSCIBE", headers = { id = "1" } }"#),
        "\"SUBSCIBE\" is no STOMP 1.2 client frame",
    );
    // A CONNECT may not promise heart-beats stampede does not send; asking for the
    // broker's is fine.
    assert_problem(
        &group(
            "stomp",
            r#"{ type = "CONNECT", headers = { "heart-beat" = "10000,10000" } }"#,
        ),
        "heart-beat = \"10000,10000\" promises the broker a heart-beat every 10000 ms",
    );
    load(&group(
        "stomp",
        r#"{ type = "CONNECT", headers = { "heart-beat" = "0,10000" } }"#,
    ));
    // A frame spelled out in a `send_text` ends with its NUL (else the broker waits for
    // the rest, answering nothing); a heart-beat is an end of line alone.
    let text_group = |toml_text: &str| {
        format!(
            "name = \"t\"\nduration = \"1s\"\n[oracles]\nframing = \"stomp\"\n\
             [[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ send_text = {toml_text} }}]\n"
        )
    };
    load(&text_group(r#""SEND\ndestination:/q\n\nhi\u0000""#));
    load(&text_group(r#""\n""#));
    assert_problem(
        &text_group(r#""SUBSCRIBE\nid:1\ndestination:/q\n\n""#),
        "group \"g\", send 1: with framing = \"stomp\" a send_text is a whole STOMP frame, ending with the NUL",
    );
    let first_message = "name = \"t\"\nduration = \"1s\"\n[auth]\nplacement = { first_message = \
         { type = \"CONNECT\", headers = { \"heart-beat\" = \"5000,0\", passcode = \"{{token}}\" } } }\n\
         [oracles]\nframing = \"stomp\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{ close = 1000 }]\n";
    assert_problem(
        first_message,
        "auth.placement.first_message: heart-beat = \"5000,0\" promises the broker",
    );
}

#[test]
fn a_send_larger_than_max_message_bytes_is_refused() {
    let text = |limit: usize, blob: usize| {
        format!(
            "name = \"t\"\nduration = \"1s\"\n[limits]\nmax_message_bytes = {limit}\n\
             [[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ send = {{ type = \"big\", blob = \"{}\" }} }}]\n",
            "x".repeat(blob)
        )
    };
    load(&text(4096, 3000));
    assert_problem(
        &text(2048, 3000),
        "group \"g\", send 1: 3024 bytes as written, more than [limits] max_message_bytes = 2048",
    );
}

/// Which expectations claim pushes ([`crate::model::Expect::pushed`]): a subscription's
/// messages after its receipt (STOMP), in a loop of publishes too, and a room's broadcasts
/// counted after one post; not a request's answers, pipelined or ack then result, nor a
/// stream of one request's kinds.
#[test]
fn expectations_that_claim_pushes_are_marked() {
    let pushed = |steps: &str| -> Vec<bool> {
        let steps = load(&with_steps(steps)).groups.remove(0).steps;
        crate::model::deep_steps(&steps)
            .filter_map(|s| match s {
                Step::Expect(e) => Some(e.pushed),
                _ => None,
            })
            .collect()
    };
    let subscribe = r#"{ send = { type = "SUBSCRIBE", headers = { id = "sub-1", receipt = "r-1" } } },
        { expect = "RECEIPT", correlate = { send = "/headers/receipt", reply = "/headers/receipt-id" } },"#;
    let publish = r#"{ send = { type = "SEND", body = "hi" } },"#;
    let message = r#"{ expect = "MESSAGE", correlate = { send = "/headers/id", reply = "/headers/subscription" } },"#;
    assert_eq!(
        pushed(&format!("{subscribe}\n{publish}\n{message}")),
        [false, true]
    );
    // A message pushed right after the receipt, with no publish between: pushed too.
    assert_eq!(pushed(&format!("{subscribe}\n{message}")), [false, true]);
    // Published in a loop after the subscription.
    assert_eq!(
        pushed(&format!(
            "{subscribe}\n{{ repeat = 3, steps = [\n{publish}\n{message}\n] }},"
        )),
        [false, true]
    );
    // A room: one post, every member's message counted.
    let post = r#"{ send = { type = "post", text = "hi" } },"#;
    assert_eq!(
        pushed(&format!("{post}\n{{ expect = \"said said said\" }},")),
        [true]
    );
    // Or counted one by one, after the post's own ack.
    let ack = r#"{ expect = "ack", correlate = "id" },"#;
    let msg = r#"{ expect = "msg" },"#;
    assert_eq!(
        pushed(&format!(
            "{{ send = {{ type = \"post\", id = \"p\" }} }},\n{ack}\n{msg}\n{msg}"
        )),
        [false, true, true]
    );
    // One reply of its kind per request is an answer (a whoami's), and a greeting is no
    // push.
    assert_eq!(
        pushed(&format!("{msg}\n{post}\n{msg}\n{post}\n{msg}")),
        [false, false, false]
    );
    // A subscription with no receipt asked for: the SEND after it publishes to it.
    let bare = r#"{ send = { type = "SUBSCRIBE", headers = { id = "sub-1" } } },"#;
    assert_eq!(pushed(&format!("{bare}\n{publish}\n{message}")), [true]);
    // A listener: its join acknowledged, the room's message that comes next is pushed.
    let join = r#"{ send = { type = "join", id = "j" } },"#;
    assert_eq!(
        pushed(&format!("{msg}\n{join}\n{ack}\n{msg}")),
        [false, false, true]
    );
    // An uncorrelated ack, then the request's reply: not a push.
    let whoami = r#"{ send = { type = "whoami" } },"#;
    assert_eq!(
        pushed(&format!(
            "{whoami}\n{{ expect = \"ack\" }},\n{{ expect = \"profile\" }},"
        )),
        [false, false]
    );
    // Not pushes: one request's stream, an ack then its result, pipelined answers.
    assert_eq!(
        pushed(&format!(
            "{post}\n{{ expect = \"started thinking+ done\" }},"
        )),
        [false]
    );
    let request = |id: &str| format!(r#"{{ send = {{ type = "q", id = "{id}" }} }},"#);
    let answer = r#"{ expect = "reply", correlate = "id" },"#;
    assert_eq!(
        pushed(&format!(
            "{}\n{{ expect = \"ack\", correlate = \"id\" }},\n{answer}",
            request("a")
        )),
        [false, false]
    );
    assert_eq!(
        pushed(&format!(
            "{}\n{}\n{answer}\n{answer}",
            request("a"),
            request("b")
        )),
        [false, false]
    );
}

/// A correlated `expect` whose value every carrying send draws afresh and no other
/// connection could draw (`{{uuid}}`, `{{random}}`, `{{run}}` with `{{conn}}`, typed or
/// not) is marked `fresh`; a value fixed by the
/// template or per connection (a channel's, `{{conn}}` alone), an `expect_none`, or a
/// field no send of its list carries is not.
#[test]
fn expectations_on_values_drawn_per_request_are_marked_fresh() {
    let fresh = |steps: &str| -> Vec<bool> {
        let steps = load(&with_steps(steps)).groups.remove(0).steps;
        crate::model::deep_steps(&steps)
            .filter_map(|s| match s {
                Step::Expect(e) => Some(e.fresh),
                _ => None,
            })
            .collect()
    };
    let turn = |id: &str| {
        format!(
            "{{ send = {{ type = \"order\", req_id = \"{id}\" }} }},\n\
             {{ expect = \"order_ack\", correlate = \"req_id\", where = {{ status = \"ok\" }} }},"
        )
    };
    for id in [
        "o-{{conn}}-{{run}}",
        "{{uuid}}",
        "{{ random }}",
        "{{conn}}-{{run:int}}",
    ] {
        assert_eq!(fresh(&turn(id)), [true], "{id}");
    }
    // `{{run}}` alone, or beside a user several connections share, repeats across
    // connections: another member's broadcast may echo it.
    for id in [
        "room-1",
        "{{conn}}",
        "u-{{user}}",
        "{{run}}",
        "m-{{user}}-{{run}}",
    ] {
        assert_eq!(fresh(&turn(id)), [false], "{id}");
    }
    // One send of the list carries a fixed value: the value may be shared.
    let mixed = format!(
        "{}\n{{ send = {{ type = \"order\", req_id = \"fixed\" }} }},",
        turn("o-{{conn}}-{{run}}")
    );
    assert_eq!(fresh(&mixed), [false]);
    let none = r#"{ send = { type = "order", req_id = "o-{{conn}}-{{run}}" } },
        { expect_none = "reject", correlate = "req_id", within = "100ms" },"#;
    assert_eq!(fresh(none), [false]);
    // Sent before the loop whose body expects it: judged within the body's list alone.
    let outside = r#"{ send = { type = "order", req_id = "o-{{conn}}-{{run}}" } },
        { repeat = 2, steps = [{ expect = "order_ack", correlate = "req_id" }] },"#;
    assert_eq!(fresh(outside), [false]);
}
