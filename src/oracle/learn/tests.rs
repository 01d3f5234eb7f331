#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use serde_json::json;

/// Two complete calibration connections: alice's observing `a`, bob's `b`.
fn alice_and_bob<'a>(a: &'a Observation, b: &'a Observation) -> [Sample<'a>; 2] {
    [
        Sample {
            sub: "alice",
            observed: a,
            complete: true,
        },
        Sample {
            sub: "bob",
            observed: b,
            complete: true,
        },
    ]
}

fn obs(messages: Vec<Value>, spans: &[(&str, &[&str])]) -> Observation {
    Observation {
        messages,
        spans: spans
            .iter()
            .map(|(r, e)| (r.to_string(), e.iter().map(|x| x.to_string()).collect()))
            .collect(),
        ..Observation::default()
    }
}

/// A correct server's stream for `sub`: identity in a nested field, a counter from 1.
fn stream(sub: &str, odd: Value) -> Observation {
    let msgs = (1..=4)
        .map(|i| json!({"type": if i == 1 { "hello" } else { "ev" }, "seq": i, "data": {"owner": sub}, "odd": odd.clone()}))
        .collect();
    obs(
        msgs,
        &[
            ("start", &["ev", "done"]),
            ("start", &["ev", "done", "extra"]),
        ],
    )
}

#[test]
fn learns_nested_identity_sequence_and_replies() {
    let a = stream("alice", json!(1));
    let b = stream("bob", json!(1));
    let p = propose(&OracleSpec::default(), &alice_and_bob(&a, &b));
    assert_eq!(p.learned.identity, vec!["data.owner".to_string()]);
    assert_eq!(p.learned.sequence, vec!["seq".to_string()]);
    assert_eq!(p.learned.replies.len(), 1);
    assert_eq!(p.learned.replies[0].events, vec!["done", "ev"]);
}

#[test]
fn a_field_that_fails_on_one_connection_is_dropped() {
    let a = stream("alice", json!(1));
    let mut b = stream("bob", json!(1));
    // One message of bob's names alice: the candidate broke in calibration.
    b.messages[2]["data"]["owner"] = json!("alice");
    // And the counter skips on bob's connection.
    b.messages[3]["seq"] = json!(9);
    let p = propose(&OracleSpec::default(), &alice_and_bob(&a, &b));
    assert!(p.learned.identity.is_empty(), "{:?}", p.learned.identity);
    assert!(p.learned.sequence.is_empty(), "{:?}", p.learned.sequence);
    assert!(p.dropped >= 2, "{}", p.dropped);
}

#[test]
fn one_user_or_a_shared_counter_teaches_nothing() {
    let a = stream("alice", json!(1));
    let p = propose(
        &OracleSpec::default(),
        &[
            Sample {
                sub: "alice",
                observed: &a,
                complete: true,
            },
            Sample {
                sub: "alice",
                observed: &a,
                complete: true,
            },
        ],
    );
    assert!(p.learned.identity.is_empty());
    // A counter the whole server shares goes on across connections: not per connection.
    let b_msgs = (5..=8)
        .map(|i| json!({"type": if i == 5 { "hello" } else { "ev" }, "seq": i}))
        .collect();
    let b = obs(b_msgs, &[]);
    let p = propose(&OracleSpec::default(), &alice_and_bob(&a, &b));
    assert!(p.learned.sequence.is_empty());
}

#[test]
fn declared_fields_are_not_duplicated() {
    let a = stream("alice", json!(1));
    let b = stream("bob", json!(1));
    let spec = OracleSpec {
        identity: Some("data.owner".into()),
        sequence: Some("seq".into()),
        ..OracleSpec::default()
    };
    let p = propose(&spec, &alice_and_bob(&a, &b));
    assert!(p.learned.identity.is_empty());
    assert!(p.learned.sequence.is_empty());
}

#[test]
fn odd_keys_become_json_pointers() {
    assert_eq!(path_text(&["a".into(), "b".into()]), "a.b");
    assert_eq!(path_text(&["a.b".into(), "c/d".into()]), "/a.b/c~1d");
}

#[test]
fn the_toml_parses_as_oracle_tables() {
    let a = stream("alice", json!(1));
    let b = stream("bob", json!(1));
    let mut p = propose(&OracleSpec::default(), &alice_and_bob(&a, &b));
    p.refusals.push(("expired".into(), "HTTP 401".into()));
    let text = to_toml(&p, &OracleSpec::default(), "ws://127.0.0.1:1/ws");
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(
        v["oracles"]["identity"]["field"].as_str(),
        Some("data.owner")
    );
    assert_eq!(v["oracles"]["sequence"]["field"].as_str(), Some("seq"));
}

/// The bad-token connection's answer: a refusal reads as one, and a bad token the target
/// accepted reads as accepted, never "refused with acceptance".
#[test]
fn a_bad_token_the_target_accepted_is_not_said_refused() {
    let mut p = Proposal {
        valid: (2, 2),
        ..Proposal::default()
    };
    p.refusals
        .push(("alg-none".into(), BAD_TOKEN_ACCEPTED.into()));
    p.refusals.push(("expired".into(), "HTTP 401".into()));
    let text = to_toml(&p, &OracleSpec::default(), "ws://127.0.0.1:1/ws");
    assert!(
        text.contains("# Bad token alg-none: accepted (101), not refused.\n"),
        "{text}"
    );
    assert!(!text.contains("refused with acceptance"), "{text}");
    assert!(
        text.contains("# Bad token expired: refused with HTTP 401.\n"),
        "{text}"
    );
}

#[test]
fn a_counter_of_one_kind_or_of_a_cut_script_is_not_a_sequence() {
    // `step` counts inside one reply kind: it would restart with the next request.
    let msgs = |sub: &str| {
        (1..=4)
            .map(|i| json!({"type": "thinking", "step": i, "user": sub}))
            .collect()
    };
    let a = obs(msgs("alice"), &[]);
    let b = obs(msgs("bob"), &[]);
    let p = propose(&OracleSpec::default(), &alice_and_bob(&a, &b));
    assert!(p.learned.sequence.is_empty(), "{:?}", p.learned.sequence);
    assert_eq!(p.learned.identity, vec!["user".to_string()]);
    // Named, not only counted: the user may know it counts per connection.
    assert_eq!(p.sequence_one_kind, vec!["step".to_string()]);
    let toml = to_toml(&p, &OracleSpec::default(), "t");
    assert!(
        toml.contains(
            "# sequence step: went up by one on every connection, but on one message kind only"
        ),
        "{toml}"
    );
    // A good counter, but calibration cut a script short: not learned.
    let a = stream("alice", json!(1));
    let b = stream("bob", json!(1));
    let p = propose(
        &OracleSpec::default(),
        &[
            Sample {
                sub: "alice",
                observed: &a,
                complete: true,
            },
            Sample {
                sub: "bob",
                observed: &b,
                complete: false,
            },
        ],
    );
    assert!(p.learned.sequence.is_empty());
}

/// A per-connection counter that skipped on one calibration connection is not learned
/// (calibration keeps what held every time), but named with where it held: a sequence bug
/// that shows in calibration looks just like this.
#[test]
fn a_counter_broken_on_some_calibration_connections_is_named_not_learned() {
    let counted = |sub: &str, numbers: &[i64]| {
        let msgs = numbers
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"type": if i == 0 { "snapshot" } else { "update" }, "seq": n, "user": sub}))
            .collect();
        obs(msgs, &[])
    };
    let (a, b, c) = (
        counted("alice", &[1, 2, 3, 4]),
        counted("bob", &[1, 2, 4, 5]),
        counted("carol", &[1, 2, 3, 4]),
    );
    let sample = |sub, observed| Sample {
        sub,
        observed,
        complete: true,
    };
    let p = propose(
        &OracleSpec::default(),
        &[sample("alice", &a), sample("bob", &b), sample("carol", &c)],
    );
    assert!(p.learned.sequence.is_empty(), "{:?}", p.learned.sequence);
    assert_eq!(p.learned.sequence_broken, vec![("seq".to_string(), 2, 3)]);
    let toml = to_toml(&p, &OracleSpec::default(), "t");
    assert!(
        toml.contains("# sequence seq not learned: up by one on 2 of 3 calibration connections"),
        "{toml}"
    );
}

#[test]
fn identity_fields_the_script_filters_on_are_dropped_in_any_spelling() {
    let mut p = Proposal {
        learned: LearnedOracles {
            identity: vec!["arguments.2".into(), "user_id".into(), "/a~1b".into()],
            ..LearnedOracles::default()
        },
        dropped: 1,
        ..Proposal::default()
    };
    drop_tested(&mut p, &["/arguments/2", "a/b", "status"]);
    // The dotted "a/b" and the pointer "/a~1b" both name the key "a/b".
    assert_eq!(p.learned.identity, vec!["user_id".to_string()]);
    assert_eq!(p.dropped, 3);
}

/// Calibration that learned nothing the scenario does not declare says so, never that
/// no invariant held (a declared identity field may well have held).
#[test]
fn nothing_new_learned_is_said_as_nothing_new() {
    let p = Proposal {
        valid: (1, 3),
        ..Proposal::default()
    };
    let toml = to_toml(&p, &OracleSpec::default(), "t");
    assert!(
        toml.contains(
            "# No invariant held on every calibration connection but those the \
             scenario declares."
        ),
        "{toml}"
    );
}

/// A request id the client numbers and the server echoes went up by one in calibration,
/// one connection at a time; it is the client's counter, not the server's, and a server
/// may answer out of order: never learned. Nor a path answers carry a sent value in.
#[test]
fn sequences_on_fields_the_client_writes_are_dropped() {
    let mut p = Proposal {
        learned: LearnedOracles {
            sequence: vec!["id".into(), "seq".into(), "ack.n".into()],
            sequence_broken: vec![("id".into(), 2, 3)],
            ..LearnedOracles::default()
        },
        sequence_one_kind: vec!["/params/0".into(), "n".into()],
        ..Proposal::default()
    };
    let request = json!({"jsonrpc": "2.0", "id": "{{run:int}}", "params": ["{{conn}}"]});
    drop_echoed(&mut p, &[&request], &["/ack/n"]);
    assert_eq!(p.learned.sequence, vec!["seq".to_string()]);
    assert!(p.learned.sequence_broken.is_empty());
    assert_eq!(p.sequence_one_kind, vec!["n".to_string()]);
    assert_eq!(p.dropped, 2);
}

#[test]
fn a_sequence_set_aside_for_shared_users_is_a_comment_not_a_table() {
    let a = stream("alice", json!(1));
    let b = stream("bob", json!(1));
    let samples = [
        Sample {
            sub: "alice",
            observed: &a,
            complete: true,
        },
        Sample {
            sub: "bob",
            observed: &b,
            complete: true,
        },
    ];
    let mut p = propose(&OracleSpec::default(), &samples);
    p.learned = std::mem::take(&mut p.learned).scoped(true);
    // Identity and replies hold for every connection of a user; the counter may be the user's.
    assert_eq!(p.learned.identity, vec!["data.owner".to_string()]);
    assert!(p.learned.sequence.is_empty(), "{:?}", p.learned);
    assert_eq!(p.learned.sequence_set_aside, vec!["seq".to_string()]);
    assert_eq!(p.learned.replies.len(), 1);
    let text = to_toml(&p, &OracleSpec::default(), "ws://127.0.0.1:1/ws");
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert!(v["oracles"].get("sequence").is_none(), "{text}");
    assert!(
        text.contains(
            "# sequence seq: learned, set aside (not checked): several connections share a user"
        ),
        "{text}"
    );
    // One connection per user: the learned sequence is checked as before.
    let kept = propose(&OracleSpec::default(), &samples)
        .learned
        .scoped(false);
    assert_eq!(kept.sequence, vec!["seq".to_string()]);
    assert!(kept.sequence_set_aside.is_empty());
}

/// Records batched into a JSON array the scenario does not declare (`[oracles] batched`):
/// a field under an element's position (`0.user_id`) teaches nothing, identity or
/// sequence; an array of other things (Phoenix v2's `[join_ref, ref, topic, event,
/// payload]`) is one record, and its positions still do.
#[test]
fn fields_of_an_undeclared_batch_are_not_learned_by_position() {
    let batches = |sub: &str| {
        let msgs = (1..=4)
            .map(|i| {
                json!([
                    {"type": "ev", "user_id": sub, "seq": 2 * i - 1},
                    {"type": "ack", "user_id": sub, "seq": 2 * i},
                ])
            })
            .collect();
        obs(msgs, &[])
    };
    let phoenix = |sub: &str| {
        let msgs = (1..=4)
            .map(|i| json!(["1", i.to_string(), "room:lobby", "phx_reply", {"user_id": sub}]))
            .collect();
        obs(msgs, &[])
    };
    let learned = |a: &Observation, b: &Observation| {
        propose(
            &OracleSpec::default(),
            &[
                Sample {
                    sub: "alice",
                    observed: a,
                    complete: true,
                },
                Sample {
                    sub: "bob",
                    observed: b,
                    complete: true,
                },
            ],
        )
        .learned
    };
    let batched = learned(&batches("alice"), &batches("bob"));
    assert!(batched.identity.is_empty(), "{:?}", batched.identity);
    assert!(batched.sequence.is_empty(), "{:?}", batched.sequence);
    let tuples = learned(&phoenix("alice"), &phoenix("bob"));
    assert_eq!(tuples.identity, vec!["4.user_id".to_string()]);
}

/// A chat room calibrated one connection at a time: its broadcast's `from` named the
/// connection's own user every time, as `user_id` did on every answer. The field offered
/// for declaring is the one the most kinds carry (`user_id`), not the shorter `from`,
/// which names other users once several share the room; and the TOML says what declaring
/// identity does to broadcasts.
#[test]
fn the_identity_offered_is_the_one_the_most_kinds_carry() {
    let room = |sub: &str| {
        obs(
            vec![
                json!({"type": "welcome", "user_id": sub}),
                json!({"type": "joined", "room": "lobby", "user_id": sub}),
                json!({"type": "say_ack", "msg_id": "m", "user_id": sub}),
                json!({"type": "said", "room": "lobby", "msg_id": "m", "from": sub}),
            ],
            &[],
        )
    };
    let (a, b) = (room("alice"), room("bob"));
    let p = propose(&OracleSpec::default(), &alice_and_bob(&a, &b));
    assert_eq!(p.learned.identity, ["user_id", "from"]);
    let text = to_toml(&p, &OracleSpec::default(), "ws://127.0.0.1:1/ws");
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(v["oracles"]["identity"]["field"].as_str(), Some("user_id"));
    assert!(
        text.contains("a room's broadcast), leave it learned"),
        "{text}"
    );
}

/// A calibration connection nothing refused, that calibration stopped waiting on (the
/// accept message never came, or came in a shape not read), is said as such, never as
/// "interrupted", which reads as a Ctrl-C.
#[test]
fn a_calibration_connection_never_accepted_is_not_said_interrupted() {
    let none = |cause: Option<Cause>| NoneAccepted {
        cause,
        shed: false,
        auth: false,
        slow: None,
        target: "ws://127.0.0.1:9/ws".into(),
    };
    assert_eq!(
        none(Some(Cause::Interrupted)).what(),
        "the target accepted no calibration connection (none was answered so as to accept it)"
    );
    assert_eq!(
        none(Some(Cause::Http(401))).what(),
        "the target accepted no calibration connection (http_401)"
    );
}

/// What to check when calibration was accepted nowhere follows how it failed: a closed
/// port (TCP refused) names the host and port nothing listens at; only a target that
/// took the TCP connection and answered no upgrade is asked whether it speaks WebSocket.
#[test]
fn what_to_check_follows_where_calibration_failed() {
    let none = |cause: Cause| NoneAccepted {
        cause: Some(cause),
        shed: false,
        auth: false,
        slow: None,
        target: "ws://u:***@localhost:8081/ws".into(),
    };
    assert_eq!(
        none(Cause::Connect("refused".into())).check(),
        "nothing accepted the TCP connection at localhost:8081: check the URL's port and \
         that the server is running"
    );
    let unrouted = none(Cause::Timeout("connect")).check();
    assert!(
        unrouted.starts_with("no TCP connection to localhost:8081 was made"),
        "{unrouted}"
    );
    // An HTTP server answered: its path is what to check.
    assert!(
        none(Cause::Http(404))
            .check()
            .contains("nothing at that path takes a WebSocket upgrade"),
        "{}",
        none(Cause::Http(404)).check()
    );
    for answered in [Cause::Protocol, Cause::Tls] {
        assert_eq!(
            none(answered).check(),
            "check the URL and that the server speaks WebSocket there"
        );
    }
    // Upgraded, its script closed it waiting for the welcome: the acceptance rule.
    assert!(
        none(Cause::ClientClose(1000))
            .check()
            .starts_with("check `[oracles] accepted`"),
        "{}",
        none(Cause::ClientClose(1000)).check()
    );
}

/// A handshake slower than calibration's own bound is no fault where the scenario's bound
/// allows it: what to check points at a run, whose load waits that bound, and says nothing
/// of a load `learn` never made.
#[test]
fn a_slow_handshake_points_at_a_run_not_at_a_load_learn_never_made() {
    let slow = NoneAccepted {
        cause: Some(Cause::Timeout("upgrade")),
        shed: false,
        auth: false,
        slow: Some(std::time::Duration::from_secs(3)),
        target: "ws://localhost:8081/ws".into(),
    };
    let check = slow.check();
    assert!(
        check.contains("a run's load waits that bound (`stampede run`"),
        "{check}"
    );
    assert!(
        !check.contains("the load's connections got through"),
        "{check}"
    );
}

/// A plan whose every group presents forged tokens gives calibration no valid-token
/// connection to make: nothing was asked of the target, so nothing is said against it;
/// one that was made and refused is said.
#[test]
fn calibration_that_made_no_valid_connection_blames_no_target() {
    let asked_nothing = Proposal::default();
    assert_eq!(asked_nothing.none_accepted("ws://127.0.0.1:9/ws"), None);
    let file = to_toml(
        &asked_nothing,
        &OracleSpec::default(),
        "ws://127.0.0.1:9/ws",
    );
    assert!(
        file.contains("no valid-token connection to calibrate with"),
        "{file}"
    );
    assert!(!file.contains("the target accepted no"), "{file}");
    let refused = Proposal {
        valid: (1, 0),
        unaccepted: Some(Cause::Http(401)),
        ..Proposal::default()
    };
    let none = refused.none_accepted("ws://127.0.0.1:9/ws");
    assert_eq!(none.map(|n| n.cause), Some(Some(Cause::Http(401))));
}

/// A room's roster in a join reply (`members: [sub]`, each calibration connection alone in
/// the room) is no identity: under load it lists the other members too. A field of an
/// object inside a list (a Socket.IO event's payload, `1.user`) still is.
#[test]
fn an_element_of_a_list_is_no_identity_but_a_field_of_an_object_in_one_is() {
    let joined = |sub: &str| {
        obs(
            vec![
                json!({"type": "joined", "members": [sub]}),
                json!(["said", {"user": sub}]),
            ],
            &[],
        )
    };
    let (a, b) = (joined("alice"), joined("bob"));
    let p = propose(&OracleSpec::default(), &alice_and_bob(&a, &b));
    assert_eq!(p.learned.identity, vec!["1.user".to_string()]);
}
