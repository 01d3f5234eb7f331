//! `[[answer]]`: answers to the server's in-band pings.

use super::*;
use serde_json::json;

#[test]
fn answers_load_in_file_order_into_the_plan() {
    let s = load(&with_top(
        r#"[[answer]]
on = "ping"
capture = { nonce = "nonce" }
send = { type = "pong", nonce = "{{$nonce}}", from = "{{conn}}" }
[[answer]]
on = "pusher:ping"
send = '{"event":"pusher:pong","data":{}}'"#,
    ));
    assert_eq!(
        s.answers,
        vec![
            AnswerRule {
                on: "ping".into(),
                capture: vec![Capture {
                    name: "nonce".into(),
                    path: "nonce".into()
                }],
                send: json!({"type": "pong", "nonce": "{{$nonce}}", "from": "{{conn}}"}),
            },
            AnswerRule {
                on: "pusher:ping".into(),
                capture: Vec::new(),
                send: json!({"event": "pusher:pong", "data": {}}),
            },
        ]
    );
}

#[test]
fn a_send_may_name_what_an_expect_captures() {
    let text = with_steps(
        r#"{ expect = "welcome", capture = { sid = "session" } },
{ think = "1s" },"#,
    )
        + "[[answer]]\non = \"ping\"\nsend = { type = \"pong\", session = \"{{$sid}}\" }\n";
    assert_eq!(load(&text).answers.len(), 1);
}

#[test]
fn answer_mistakes_are_reported_where_they_are() {
    let (line, column, message) = problem(&with_top(
        "[[answer]]\non = \"\"\nsend = { type = \"pong\" }",
    ));
    assert_eq!((line, column), (4, 6), "{message}");
    assert!(
        message.contains("on: expected the kind of record"),
        "{message}"
    );

    let (line, column, message) =
        problem(&with_top("[[answer]]\non = 3\nsend = { type = \"pong\" }"));
    assert_eq!((line, column), (4, 6), "{message}");
    assert!(message.contains("on"), "{message}");

    let (line, _, message) = problem(&with_top("[[answer]]\nsend = { type = \"pong\" }"));
    assert_eq!(line, 3, "{message}");
    assert!(
        message.contains("missing required field \"on\" in [[answer]]"),
        "{message}"
    );

    let (line, _, message) = problem(&with_top("[[answer]]\non = \"ping\""));
    assert_eq!(line, 3, "{message}");
    assert!(
        message.contains("missing required field \"send\" in [[answer]]"),
        "{message}"
    );

    let (line, column, message) = problem(&with_top(
        "[[answer]]\non = \"ping\"\nsend = { type = \"pong\" }\nreply = 1",
    ));
    assert_eq!((line, column), (6, 1), "{message}");
    assert!(
        message.contains("unknown field \"reply\" in [[answer]]"),
        "{message}"
    );

    let (line, column, message) = problem(&with_top(
        "[[answer]]\non = \"ping\"\nsend = { type = \"pong\", at = \"{{when}}\" }",
    ));
    assert_eq!((line, column), (5, 31), "{message}");
    assert!(message.contains("\"{{when}}\""), "{message}");

    let (line, _, message) = problem(&with_top(
        "[[answer]]\non = \"ping\"\nsend = { type = \"pong\", at = \"{{marker}}\" }",
    ));
    assert_eq!(line, 5, "{message}");
    assert!(message.contains("{{marker}}"), "{message}");

    let (line, column, message) = problem(&with_top(
        "[[answer]]\non = \"ping\"\nsend = { type = \"pong\", n = \"{{$nonce}}\" }",
    ));
    assert_eq!((line, column), (5, 8), "{message}");
    assert!(
        message.contains("\"{{$nonce}}\" is captured by neither this answer nor any expect"),
        "{message}"
    );

    let (line, column, message) =
        problem(&with_top("[[answer]]\non = \"ping\"\nsend = 'not json'"));
    assert_eq!((line, column), (5, 8), "{message}");
    assert!(message.contains("no JSON"), "{message}");

    let (line, column, message) = problem(&with_top(
        "[[answer]]\non = \"ping\"\ncapture = { \"a b\" = \"x\" }\nsend = {}",
    ));
    assert_eq!((line, column), (5, 21), "{message}");
    assert!(message.contains("not a capture name"), "{message}");

    let (line, _, message) = problem(&with_top("answer = 3"));
    assert_eq!(line, 3, "{message}");
    assert!(message.contains("expected [[answer]] tables"), "{message}");
}

#[test]
fn a_framed_answer_is_checked_as_a_framed_send() {
    let (line, column, message) = problem(&with_top(
        "[oracles]\nframing = \"stomp\"\n[[answer]]\non = \"ping\"\nsend = [1]",
    ));
    assert_eq!((line, column), (7, 8), "{message}");
    assert!(
        message.contains("answer send: with framing = \"stomp\""),
        "{message}"
    );
    let s = load(&with_top(
        "[oracles]\nframing = \"socket.io\"\n[[answer]]\non = \"ping\"\nsend = [\"pong\", 1]",
    ));
    assert_eq!(s.answers[0].send, json!(["pong", 1]));
}
