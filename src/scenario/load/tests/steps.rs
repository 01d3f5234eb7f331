//! Step scripts: each step kind, placeholders, and correlation.

use super::*;

#[test]
fn step_tables_need_exactly_one_step_key() {
    let (line, column, message) = problem(&with_steps("  { sned = { type = \"x\" } },"));
    assert_eq!((line, column), (7, 3));
    assert_eq!(message, "step needs one of: send, send_text, send_binary, ping, expect, expect_none, think, pause_reads, repeat, close, reconnect, abort_handshake, rendezvous; found: sned; did you mean \"send\"?");
    assert_problem(
        &with_steps("{ think = \"1ms\", close = true }"),
        "step has both \"think\" and \"close\"",
    );
    assert_problem(
        &with_steps("\"think\""),
        "step: expected a table like { think = \"1s\" }, found a string",
    );
    assert_problem(
        &with_steps("{ think = \"forever\" }"),
        "think: expected a distribution like",
    );
    assert_problem(
        &with_steps("{ pause_reads = 5 }"),
        "pause_reads: expected a string, found an integer",
    );
}

#[test]
fn steps_load() {
    assert_eq!(
        only_step(&with_steps("{ close = true }")),
        Step::Close { code: 1000 }
    );
    assert_eq!(
        only_step(&with_steps("{ reconnect = true }")),
        Step::Reconnect {
            after: Dist::ZERO,
            backoff: vec![]
        }
    );
    assert_eq!(
        only_step(&with_steps("{ think = \"exp(200ms)\" }")),
        Step::Think {
            dist: Dist::Exp { mean: ms(200) }
        }
    );
    assert_eq!(
        only_step(&with_steps(
            "{ repeat = 2, steps = [{ think = \"1ms\" }, { close = 1001 }] }"
        )),
        Step::Repeat {
            times: 2,
            steps: vec![
                Step::Think {
                    dist: Dist::Fixed { value: ms(1) }
                },
                Step::Close { code: 1001 }
            ],
            every: None,
        }
    );
}

#[test]
fn bad_steps_are_reported() {
    assert_problem(
        &with_steps("{ close = 1005 }"),
        "close code 1005 cannot be sent; expected 1000-1003, 1007-1014 or 3000-4999",
    );
    assert_problem(
        &with_steps("{ close = 70000 }"),
        "close code 70000 cannot be sent",
    );
    assert_problem(
        &with_steps("{ close = false }"),
        "close: expected a close code like 1000, or true, found a boolean",
    );
    assert_problem(
        &with_steps("{ reconnect = { after = \"1ms\", tries = 3 } }"),
        "unknown field \"tries\" in reconnect; expected one of: after, backoff",
    );
    assert_problem(
        &with_steps("{ reconnect = { backoff = [\"1ms\", \"2\"] } }"),
        "backoff: expected a duration like",
    );
    assert_problem(
        &with_steps("{ repeat = 0, steps = [{ close = true }] }"),
        "has repeat = 0; expected at least 1",
    );
    assert_problem(
        &with_steps("{ repeat = 2 }"),
        "missing required field \"steps\" in repeat step",
    );
    assert_problem(
        &with_steps("{ repeat = 2, steps = [] }"),
        "steps: expected at least one step",
    );
    assert_problem(
        &with_steps("{ repeat = 2, steps = [{ close = 1 }] }"),
        "close code 1 cannot be sent",
    );
    assert_problem(
        &with_steps("{ send = \"hi\" }"),
        "send: expected a table (a JSON object) like { type = \"ping\" } or an array",
    );
    assert_problem(
        &with_steps("{ send = { at = 1979-05-27 } }"),
        "send: 1979-05-27 cannot be sent as JSON",
    );
    assert_problem(
        &with_steps("{ send = { x = nan } }"),
        "send: nan cannot be sent as JSON (JSON has no NaN or infinity)",
    );
}

#[test]
fn expect_patterns_and_fields_are_checked() {
    assert_problem(
        &with_steps("{ expect = \"  \" }"),
        "expect: the pattern is empty",
    );
    assert_problem(
        &with_steps("{ expect = \"a +\" }"),
        "expect: pattern item \"+\" has no event name",
    );
    assert_problem(
        &with_steps("{ expect = \"a+?\" }"),
        "pattern item \"a+?\" may end in one of +, * or ? only",
    );
    // A bare number is told the duration form, not just "expected a string".
    assert_problem(
        &with_steps("{ expect = \"a\", within = 5 }"),
        "within: expected a duration like \"250ms\", \"2s\", \"1m\" (a string with its unit), \
         found the integer 5",
    );
    assert_problem(
        &with_steps("{ expect = \"a\", within = 1.5 }"),
        "within: expected a duration like \"250ms\", \"2s\", \"1m\" (a string with its unit), \
         found the float 1.5",
    );
    assert_problem(
        "name = \"t\"\nduration = 5\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{ think = \"1ms\" }]\n",
        "duration: expected a duration like \"250ms\", \"2s\", \"1m\" (a string with its unit), \
         found the integer 5",
    );
    assert_problem(
        &with_steps("{ expect = \"a\", within = \"0ms\" }"),
        "within = \"0ms\"; expected more than zero",
    );
    assert_problem(
        &with_steps("{ expect = \"a\", wait = \"yes\" }"),
        "wait: expected a boolean (true or false), found a string",
    );
    assert_problem(
        &with_steps("{ expect = 3 }"),
        "expect: expected a string, found an integer",
    );
}

/// Whitespace splits a pattern into items, so `{{ conn }}` (fine in a send) would be the
/// three event names `{{`, `conn` and `}}`: it is refused at the `{{`, saying how to write it.
#[test]
fn a_placeholder_with_spaces_in_a_pattern_is_refused() {
    let (line, column, message) = problem(&with_steps("{ expect = \"x-{{ conn }}\" }"));
    assert_eq!((line, column), (7, 15), "{message}");
    assert_eq!(
        message,
        "expect: \"{{ conn }}\": a placeholder in a pattern is written without spaces, \
         \"{{conn}}\" (whitespace separates pattern items)"
    );
    assert_problem(
        &with_steps("{ expect_none = \"a {{conn }}-b\" }"),
        "written without spaces, \"{{conn}}\"",
    );
    assert_problem(
        &with_steps("{ expect = \"x-conn}} b\" }"),
        "expect: \"}}\" closes no placeholder; placeholders look like {{conn}}",
    );
    let Step::Expect(expect) = only_step(&with_steps("{ expect = \"x-{{conn}}+ b\" }")) else {
        panic!("not an expect");
    };
    assert_eq!(expect.pattern.len(), 2);
    assert_eq!(expect.pattern[0].event, "x-{{conn}}");
}

#[test]
fn correlate_needs_an_earlier_send_of_that_field() {
    let text = with_steps(
        "  { expect = \"a\", correlate = \"run_id\" },\n  { send = { run_id = \"{{run}}\" } },",
    );
    let (line, column, message) = problem(&text);
    assert_eq!((line, column), (7, 31));
    assert_eq!(
        message,
        "expect correlates on \"run_id\" but no earlier send sets it"
    );
    assert_problem(
        &with_steps("{ send = { type = \"x\" } }, { expect = \"a\", correlate = \"run_id\" }"),
        "no earlier send sets it",
    );
    // A misspelling of a path the earlier sends set (a nested one too) is pointed at it.
    assert_problem(
        &with_steps(
            "{ send = { run_id = \"{{run}}\", p = { req = 1 } } }, { expect = \"a\", correlate = \"runid\" }",
        ),
        "expect correlates on \"runid\" but no earlier send sets it; did you mean \"run_id\"?",
    );
    assert_problem(
        &with_steps(
            "{ send = { run_id = \"{{run}}\", p = { req = 1 } } }, { expect = \"a\", correlate = \"p.rq\" }",
        ),
        "did you mean \"p.req\"?",
    );
    load(&with_steps(
        "{ repeat = 2, steps = [{ send = { run_id = \"{{run}}\" } }] },\n{ expect = \"a\", correlate = \"run_id\" }",
    ));
    load(&with_steps("{ repeat = 2, steps = [{ send = { run_id = \"r\" } }, { expect = \"a\", correlate = \"run_id\" }] }"));
}

#[test]
fn placeholders_are_checked_where_they_are_written() {
    let (line, column, message) = problem(&with_steps("  { send = { a = \"x-{{usr}}\" } },"));
    assert_eq!((line, column), (7, 21));
    assert!(
        message.starts_with(
            "unknown placeholder \"{{usr}}\" in send; expected one of: {{user}}, {{conn}}"
        ),
        "{message}"
    );
    let (line, column, message) = problem(&with_steps(
        "  { send = { a = [\"ok {{run}}\", \"{{user\"] } },",
    ));
    assert_eq!((line, column), (7, 34));
    assert!(message.starts_with("unclosed \"{{\" in send"), "{message}");
    assert_problem(
        &with_steps("{ send = { a = { b = \"{{ usr }}\" } } }"),
        "unknown placeholder \"{{usr}}\"",
    );
    // The token is placed, never templated: the problem points at `[auth] placement`.
    assert_problem(
        &with_steps("{ send = { type = \"auth\", token = \"{{token}}\" } }"),
        "\"{{token}}\" is not a placeholder of send: the token goes where [auth] placement puts it",
    );
    assert_problem(
        &with_top("[auth]\nsub = \"u-{{conn}}\""),
        "placeholder not available \"{{conn}}\" in auth.sub; expected one of: {{user}}, {{group}}",
    );
    load(&with_steps(
        "{ send = { a = \"{{user}}{{conn}}{{run}}{{group}}{{sub}}{{random}}{{ uuid }} }}\" } }",
    ));
}

/// A mistyped placeholder gets a "did you mean", as a mistyped key does, at its
/// file:line:column; a typo of the word a name shortens (`{{conection}}`) finds the name.
#[test]
fn a_mistyped_placeholder_gets_a_did_you_mean() {
    let (line, column, message) = problem(&with_steps(
        "  { send = { run_id = \"run-{{conection}}-{{run}}\" } },",
    ));
    assert_eq!((line, column), (7, 28));
    assert!(
        message.ends_with("{{marker}}; did you mean \"{{conn}}\"?"),
        "{message}"
    );
    assert_problem(
        &with_steps("{ send = { a = \"{{usr}}\" } }"),
        "; did you mean \"{{user}}\"?",
    );
    assert_problem(
        &with_top("[auth]\nsub = \"u-{{usre}}\""),
        "in auth.sub; expected one of: {{user}}, {{group}}; did you mean \"{{user}}\"?",
    );
    // A short name with two letters swapped is as plain a typo as a long one.
    assert_problem(
        &with_steps("{ send = { a = \"{{rnu}}\" } }"),
        "; did you mean \"{{run}}\"?",
    );
    // Another type than `:int` on a placeholder that takes it: the one type there is.
    assert_problem(
        &with_steps("{ send = { id = \"{{run:integer}}\" } }"),
        "; did you mean \"{{run:int}}\"?",
    );
    assert_problem(
        &with_steps("{ send = { id = \"{{conn:number}}\" } }"),
        "; did you mean \"{{conn:int}}\"?",
    );
    // Nothing close: no guess.
    let (_, _, message) = problem(&with_steps("  { send = { a = \"{{zebra}}\" } },"));
    assert!(!message.contains("did you mean"), "{message}");
    let (_, _, message) = problem(&with_steps("  { send = { a = \"{{foo}}\" } },"));
    assert!(!message.contains("did you mean"), "{message}");
}

#[test]
fn steps_may_be_array_tables() {
    let text = "name = \"t\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\n\
                [[group.steps]]\nthink = \"1ms\"\n[[group.steps]]\nclose = true\n";
    let steps = load(text).groups.remove(0).steps;
    assert_eq!(
        steps,
        vec![
            Step::Think {
                dist: Dist::Fixed { value: ms(1) }
            },
            Step::Close { code: 1000 }
        ]
    );
}

#[test]
fn rendezvous_loads_and_is_checked() {
    let send = "{ send = { type = \"go\" } }";
    let steps = |rv: &str| {
        let text = format!(
            "name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"g\"\nusers = 300\nsteps = [\n{{ rendezvous = {rv} }},\n{send},\n]\n"
        );
        load(&text).groups.remove(0).steps.remove(0)
    };
    let all = Step::Rendezvous {
        count: None,
        timeout: ms(5000),
    };
    assert_eq!(steps("\"all\""), all);
    assert_eq!(steps("true"), all);
    assert_eq!(
        steps("{ count = 300, timeout = \"2s\" }"),
        Step::Rendezvous {
            count: Some(300),
            timeout: ms(2000)
        }
    );
    assert_eq!(
        steps("{ count = \"all\" }"),
        all,
        "a table without timeout takes the default"
    );
    assert_eq!(
        steps("12"),
        Step::Rendezvous {
            count: Some(12),
            timeout: ms(5000)
        }
    );
    // More than the group has, none, or a zero timeout.
    let file = |rv: &str, next: &str| {
        format!("name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"g\"\nusers = 3\nsteps = [\n{{ rendezvous = {rv} }},\n{next}\n]\n")
    };
    assert_problem(
        &file("4", send),
        "rendezvous count 4: expected \"all\" or 1 to 3 (the group's connections)",
    );
    assert_problem(&file("0", send), "rendezvous count 0");
    assert_problem(
        &file("{ timeout = \"0s\" }", send),
        "rendezvous has timeout = \"0s\"; expected more than zero",
    );
    assert_problem(&file("\"some\"", send), "rendezvous: expected \"all\"");
    assert_problem(
        &file("{ count = 2, every = \"1s\" }", send),
        "unknown field",
    );
    // A send must follow directly; not in a paced repeat.
    assert_problem(
        &file(
            "\"all\"",
            "{ think = \"1ms\" }, { send = { type = \"go\" } }",
        ),
        "a send step must follow it directly",
    );
    assert_problem(
        &with_steps("{ repeat = 2, every = \"1s\", steps = [{ rendezvous = \"all\" }, { send = { type = \"go\" } }] }"),
        "rendezvous cannot be inside a repeat with `every`",
    );
    // Inside a plain repeat it is fine.
    let s = load(&with_steps(
        "{ repeat = 2, steps = [{ rendezvous = \"all\" }, { send = { type = \"go\" } }] }",
    ));
    assert_eq!(s.groups.len(), 1);
}

#[test]
fn binary_and_ping_steps_load() {
    assert_eq!(
        only_step(&with_steps("{ send_binary = \"3q2+7w==\" }")),
        Step::SendBinary {
            base64: "3q2+7w==".into()
        }
    );
    assert_eq!(
        only_step(&with_steps(
            "{ send_binary = \"de ad BE ef\", encoding = \"hex\" }"
        )),
        Step::SendBinary {
            base64: "3q2+7w==".into()
        }
    );
    assert_eq!(
        only_step(&with_steps("{ ping = \"hi\", within = \"250ms\" }")),
        Step::Ping {
            payload: "hi".into(),
            within: Some(ms(250))
        }
    );
    assert_eq!(
        only_step(&with_steps("{ ping = \"\" }")),
        Step::Ping {
            payload: String::new(),
            within: None
        }
    );
}

#[test]
fn binary_and_ping_mistakes_are_placed() {
    let (line, column, message) = problem(&with_steps("  { send_binary = \"not base64!\" },"));
    assert_eq!((line, column), (7, 19));
    assert!(
        message.starts_with("send_binary: \"not base64!\" is not base64"),
        "{message}"
    );
    assert_problem(
        &with_steps("{ send_binary = \"abc\", encoding = \"hex\" }"),
        "odd number of digits",
    );
    assert_problem(
        &with_steps("{ send_binary = \"zz\", encoding = \"hex\" }"),
        "digits 0-9, a-f",
    );
    assert_problem(
        &with_steps("{ send_binary = \"00\", encoding = \"utf8\" }"),
        "expected \"base64\" or \"hex\"",
    );
    assert_problem(
        &with_steps(&format!("{{ ping = \"{}\" }}", "x".repeat(126))),
        "at most 125 bytes",
    );
    assert_problem(&with_steps("{ ping = \"x\", within = \"0s\" }"), "within");
}

#[test]
fn a_group_subprotocol_loads_and_is_checked() {
    let text = with_steps("{ close = 1000 }")
        .replace("[[group]]", "[[group]]\nsubprotocol = [\"a.v2\", \"a.v1\"]");
    assert_eq!(load(&text).groups[0].subprotocols, ["a.v2", "a.v1"]);
    let bad =
        with_steps("{ close = 1000 }").replace("[[group]]", "[[group]]\nsubprotocol = \"a b\"");
    assert_problem(&bad, "subprotocol: \"a b\" is not a subprotocol name");
}

/// A pipelined burst pairs each send with a correlated expect after it, at most 256 in one
/// stretch (how far back an expectation can reach): 257 is refused where the steps are,
/// not paired wrongly at run time; 256 loads.
#[test]
fn a_pipelined_burst_of_more_than_256_pairs_is_refused() {
    let burst = |n: u32| {
        with_steps(&format!(
            "  {{ repeat = {n}, steps = [{{ send = {{ id = \"{{{{run:int}}}}\" }} }}] }},\n  \
             {{ repeat = {n}, steps = [{{ expect = \"result\", correlate = \"id\" }}] }},"
        ))
    };
    load(&burst(256));
    assert_problem(
        &burst(257),
        "257 sends here are each paired with a correlated expect after them",
    );
}
