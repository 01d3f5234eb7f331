use super::*;
use crate::model::*;
use proptest::prelude::*;
use serde_json::json;
use std::time::Duration;

fn scenario(users: u32, per_user: u32, token: TokenReuse, arrival: Arrival) -> Scenario {
    Scenario {
        name: "t".into(),
        description: None,
        target: None,
        seed: 1,
        duration: Duration::from_secs(10),
        auth: AuthSpec {
            secret: SecretSource::Literal { value: "s".into() },
            sub: "user-{{user}}".into(),
            ttl: Duration::from_secs(600),
            placement: Placement::Header {
                name: "Authorization".into(),
                prefix: "Bearer ".into(),
            },
            ..AuthSpec::default()
        },
        groups: vec![Group {
            name: "g".into(),
            users,
            connections_per_user: per_user,
            arrival,
            jitter: Dist::Uniform {
                low: Duration::ZERO,
                high: Duration::from_millis(5),
            },
            token,
            forge: None,
            placement: None,
            headers: Vec::new(),
            subprotocols: Vec::new(),
            feeder: None,
            steps: vec![
                Step::Repeat {
                    every: None,
                    times: 2,
                    steps: vec![
                        Step::Send {
                            template: json!({"type": "m", "run_id": "r-{{conn}}-{{run}}", "x": "{{random}}"}),
                        },
                        Step::Expect(Expect {
                            pattern: vec![PatternItem {
                                event: "done".into(),
                                repeat: Repeat::One,
                            }]
                            .into(),
                            correlate: Some("run_id".into()),
                            correlate_reply: None,
                            earlier_send: 0,
                            earlier_send_step: 0,
                            within: Duration::from_secs(1),
                            wait: true,
                            checks: Vec::new(),
                            capture: Vec::new(),
                            absent: false,
                            name: None,
                            pushed: false,
                            fresh: false,
                        }),
                        Step::Think {
                            dist: Dist::Exp {
                                mean: Duration::from_millis(50),
                            },
                        },
                    ],
                },
                Step::Close { code: 1000 },
            ],
        }],
        oracles: OracleSpec::default(),
        limits: Limits::default(),
        thresholds: vec![],
        hunt: HuntSpec::default(),
        answers: Vec::new(),
        hash: "h".into(),
        content_hash: String::new(),
    }
}

fn ramp() -> Arrival {
    Arrival::Ramp {
        start: Duration::ZERO,
        over: Duration::from_secs(2),
    }
}

#[test]
fn same_seed_same_plan_byte_for_byte() {
    let s = scenario(20, 2, TokenReuse::PerConnection, ramp());
    let a = build(&s, 42).to_json().unwrap();
    let b = build(&s, 42).to_json().unwrap();
    assert_eq!(a, b);
    assert_ne!(a, build(&s, 43).to_json().unwrap());
}

#[test]
fn every_execution_presents_jtis_of_its_own_and_the_plan_keeps_its_hash() {
    let plan = build(&scenario(3, 2, TokenReuse::PerUser, ramp()), 5);
    let (a, b) = (fresh_jtis(&plan), fresh_jtis(&plan));
    for ((planned, x), y) in plan.tokens.iter().zip(&a.tokens).zip(&b.tokens) {
        assert_ne!(x.jti, planned.jti);
        assert_ne!(x.jti, y.jti, "two executions never share a jti");
        assert_eq!(planned_jti(&x.jti), planned.jti);
    }
    // Suffixes do not pile up: a fresh plan made fresh again is one suffix long.
    let again = fresh_jtis(&a);
    assert_eq!(again.tokens[0].jti.matches(RUN_SUFFIX).count(), 1);
    // Connections of one user still share their token.
    assert_eq!(a.conns[0].token, a.conns[1].token);
    assert_eq!(a.hash(), plan.hash());
    assert_eq!(b.hash(), plan.hash());
}

#[test]
fn plan_round_trips_through_json() {
    let mut plan = build(&scenario(3, 2, TokenReuse::PerUser, ramp()), 5);
    let back: Plan = serde_json::from_str(&plan.to_json().unwrap()).unwrap();
    // Everything but the literal secret's value, which a plan file never holds.
    let not_stored = SecretSource::Literal {
        value: SecretText::NotStored,
    };
    assert_eq!(back.auth.secret, not_stored);
    plan.auth.secret = not_stored;
    assert_eq!(plan, back);
}

#[test]
fn expectations_correlate_with_the_preceding_send() {
    let plan = build(&scenario(1, 1, TokenReuse::PerConnection, ramp()), 5);
    let actions = expand_conn(&plan, &plan.conns[0], 1000).unwrap();
    let mut last_run_id = None;
    let mut checked = 0;
    for action in &actions {
        match action {
            Action::Send { message } => last_run_id = message.get("run_id").cloned(),
            Action::Expect(e) => {
                let (field, value) = e.correlate.clone().unwrap();
                assert_eq!(field, "run_id");
                assert_eq!(Some(json!(value)), last_run_id);
                checked += 1;
            }
            _ => {}
        }
    }
    assert_eq!(checked, 2);
    assert_eq!(actions.first(), Some(&Action::Connect));
    assert_eq!(actions.last(), Some(&Action::Close { code: 1000 }));
    assert_eq!(actions.len() as u64, plan.actions_of(&plan.conns[0]));
}

#[test]
fn token_reuse_per_user_shares_slots() {
    let plan = build(&scenario(5, 3, TokenReuse::PerUser, ramp()), 1);
    assert_eq!(plan.tokens.len(), 5);
    for c in &plan.conns {
        assert_eq!(
            plan.tokens[c.token as usize].sub,
            format!("user-{}", c.user)
        );
    }
    let per_conn = build(&scenario(5, 3, TokenReuse::PerConnection, ramp()), 1);
    assert_eq!(per_conn.tokens.len(), 15);
    let mut jtis: Vec<_> = per_conn.tokens.iter().map(|t| t.jti.clone()).collect();
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 15, "jtis are unique");
}

#[test]
fn shared_tokens_group_k_consecutive_connections() {
    let plan = build(&scenario(3, 4, TokenReuse::Shared { k: 4 }, ramp()), 1);
    assert_eq!(plan.tokens.len(), 3);
    let by_id = |id: u32| plan.conns.iter().find(|c| c.id == id).unwrap().token;
    assert!((0..4).all(|i| by_id(i) == by_id(0)));
    assert_ne!(by_id(3), by_id(4));
    let across = build(&scenario(4, 1, TokenReuse::Shared { k: 2 }, ramp()), 1);
    assert_eq!(
        across.tokens.len(),
        2,
        "k spans users when each has one connection"
    );
}

/// A token may be taken over when another connection presents it, or another token of
/// its user; one user's only connection, with a token of its own, never.
#[test]
fn sessions_are_shared_by_token_or_by_user() {
    let shared = |per_user: u32, token: TokenReuse| {
        build(&scenario(3, per_user, token, ramp()), 1).sessions_shared()
    };
    assert_eq!(shared(1, TokenReuse::PerConnection), [false; 3]);
    assert_eq!(shared(1, TokenReuse::PerUser), [false; 3]);
    assert_eq!(shared(2, TokenReuse::PerUser), [true; 3]);
    // Each connection its own token, two connections per user: by user, all shared.
    assert_eq!(shared(2, TokenReuse::PerConnection), [true; 6]);
    // A token two users present.
    assert_eq!(shared(1, TokenReuse::Shared { k: 2 }), [true, false]);
}

#[test]
fn cross_user_presents_the_next_users_token() {
    let plan = build(&scenario(3, 1, TokenReuse::CrossUser, ramp()), 1);
    for c in &plan.conns {
        let sub = &plan.tokens[c.token as usize].sub;
        assert_eq!(*sub, format!("user-{}", (c.user + 1) % 3));
    }
}

#[test]
fn the_catalogue_is_dealt_round_robin_over_slots() {
    let mut s = scenario(
        BadToken::all().count() as u32 + 1,
        1,
        TokenReuse::PerConnection,
        ramp(),
    );
    s.groups[0].forge = Some(Forge::Catalogue);
    let plan = build(&s, 1);
    let names: Vec<_> = plan
        .tokens
        .iter()
        .map(|t| t.forge.clone().unwrap())
        .collect();
    assert_eq!(
        names[0],
        Forge::Bad {
            name: BadToken::all().next().unwrap()
        }
    );
    assert_eq!(names[names.len() - 1], names[0], "wraps around");
}

#[test]
fn an_abort_first_step_replaces_the_connect() {
    let mut s = scenario(1, 1, TokenReuse::PerConnection, ramp());
    let abort = Step::AbortHandshake {
        after: Dist::Fixed {
            value: Duration::from_millis(2),
        },
        how: AbortHow::Rst,
    };
    s.groups[0].steps = vec![
        abort,
        Step::Reconnect {
            after: Dist::ZERO,
            backoff: vec![],
        },
    ];
    let plan = build(&s, 1);
    let actions = &expand_conn(&plan, &plan.conns[0], 100).unwrap();
    assert_eq!(
        actions[0],
        Action::AbortHandshake {
            after: Duration::from_millis(2),
            rst: true
        }
    );
    assert!(!actions.contains(&Action::Connect));
    assert!(matches!(actions[1], Action::Reconnect { .. }));
}

/// The scenario's connection, whose script is `steps`.
fn one_conn(steps: Vec<Step>) -> Plan {
    let mut s = scenario(1, 1, TokenReuse::PerConnection, ramp());
    s.groups[0].steps = steps;
    build(&s, 7)
}

fn send(template: serde_json::Value) -> Step {
    Step::Send { template }
}

#[test]
fn a_repeat_stays_a_loop_in_the_plan() {
    let plan = one_conn(vec![Step::Repeat {
        times: 1_000_000,
        every: None,
        steps: vec![send(json!({"id": "{{run}}"}))],
    }]);
    let conn = &plan.conns[0];
    assert!(conn.is_scripted());
    assert_eq!(plan.actions_of(conn), 1_000_001);
    assert_eq!(plan.sends(), 1_000_000);
    assert!(plan.to_json().unwrap().len() < 4096);
    assert!(
        expand_conn(&plan, conn, 1000).is_none(),
        "too many to expand"
    );
}

#[test]
fn the_walk_counts_runs_and_draws_per_iteration() {
    let plan = one_conn(vec![Step::Repeat {
        times: 3,
        every: None,
        steps: vec![
            send(json!({"run": "{{run}}", "r": "{{random}}"})),
            Step::Think {
                dist: Dist::Uniform {
                    low: Duration::ZERO,
                    high: Duration::from_secs(1000),
                },
            },
        ],
    }]);
    let actions = expand_conn(&plan, &plan.conns[0], 100).unwrap();
    assert_eq!(actions.len(), 7);
    let sends: Vec<&serde_json::Value> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { message } => Some(message),
            _ => None,
        })
        .collect();
    let runs: Vec<&str> = sends.iter().map(|m| m["run"].as_str().unwrap()).collect();
    assert_eq!(runs, ["1", "2", "3"]);
    let randoms: std::collections::BTreeSet<&str> =
        sends.iter().map(|m| m["r"].as_str().unwrap()).collect();
    assert_eq!(randoms.len(), 3, "each iteration draws afresh");
    let thinks: std::collections::BTreeSet<Duration> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Think(d) => Some(*d),
            _ => None,
        })
        .collect();
    assert_eq!(thinks.len(), 3);
}

#[test]
fn any_iteration_is_reproducible_from_its_coordinates() {
    // The 3rd iteration's second send's `{{random}}` is what `draw_rng` gives for its
    // (conn, path, iteration), without walking the iterations before it, whether the send
    // is expanded or rendered from its compiled template.
    let plan = one_conn(vec![
        Step::Close { code: 1000 },
        Step::Repeat {
            times: 5,
            every: None,
            steps: vec![
                send(json!({"first": "{{run}}"})),
                send(json!({"r": "{{random}}"})),
            ],
        },
    ]);
    let conn = &plan.conns[0];
    let actions = expand_conn(&plan, conn, 100).unwrap();
    let Action::Send { message } = &actions[2 + 2 * 2 + 1] else {
        panic!("{actions:?}")
    };
    let mut rng = draw_rng(plan.seed, conn.id, site_of(&[1, 1]), 2);
    let want = json!(format!("{:016x}", rand::Rng::random::<u64>(&mut rng)));
    assert_eq!(message["r"], want);
    let mut cursor = Cursor::new(conn).with_templates(SendTemplates::of(&plan, conn));
    let mut rendered = Vec::new();
    let mut text = String::new();
    while let Some(next) = cursor.next_rendered(&plan, conn, &mut text, &mut Leftovers::default()) {
        if matches!(next, Next::Rendered) {
            rendered.push(serde_json::from_str::<serde_json::Value>(&text).unwrap());
        }
        text.clear();
    }
    assert_eq!(rendered.len(), 10, "every send compiled");
    assert_eq!(rendered[2 * 2 + 1]["r"], want);
    let mut other_script = plan.clone();
    other_script.scripts[0] = vec![send(json!({"r": "{{random}}"}))];
    // A connection with a different script but the same seed, id and draw site gives
    // different draws: the site is the step path, [1, 1] here, [0] there.
    let other = expand_conn(&other_script, &other_script.conns[0], 10).unwrap();
    assert_ne!(other[1], actions[2 + 2 * 2 + 1]);
}

fn site_of(path: &[usize]) -> u64 {
    cursor::site(path.iter().copied())
}

#[test]
fn nested_and_paced_loops_expand_like_the_old_expander() {
    let every = Duration::from_millis(10);
    let plan = one_conn(vec![
        Step::Repeat {
            times: 2,
            every: Some(every),
            steps: vec![Step::Repeat {
                times: 2,
                every: None,
                steps: vec![send(json!({"run_id": "{{run}}"}))],
            }],
        },
        Step::Expect(Expect {
            pattern: vec![].into(),
            correlate: Some("run_id".into()),
            correlate_reply: None,
            earlier_send: 0,
            earlier_send_step: 0,
            within: Duration::from_secs(1),
            wait: true,
            checks: Vec::new(),
            capture: Vec::new(),
            absent: false,
            name: None,
            pushed: false,
            fresh: false,
        }),
    ]);
    let actions = expand_conn(&plan, &plan.conns[0], 100).unwrap();
    let m = |n: &str| Action::Send {
        message: json!({ "run_id": n }),
    };
    assert_eq!(
        actions[..9],
        [
            Action::Connect,
            Action::PaceStart,
            Action::PaceAt(Duration::ZERO),
            m("1"),
            m("2"),
            Action::PaceAt(every),
            m("3"),
            m("4"),
            Action::Expect(Box::new(ExpectPlan {
                pattern: vec![].into(),
                correlate: Some(("run_id".into(), "4".into())),
                within: Duration::from_secs(1),
                wait: true,
                absent: false,
                rare: None,
            })),
        ]
    );
    assert_eq!(actions.len() as u64, plan.actions_of(&plan.conns[0]));
}

#[test]
fn planning_a_thousand_connections_of_a_million_messages_is_small() {
    let mut s = scenario(1000, 1, TokenReuse::PerConnection, ramp());
    s.groups[0].steps = vec![Step::Repeat {
        times: 1_000_000,
        every: None,
        steps: vec![send(json!({"type": "m", "id": "{{uuid}}"}))],
    }];
    let started = std::time::Instant::now();
    let plan = build(&s, 3);
    let json = plan.to_json().unwrap();
    println!(
        "1,000 connections x 1,000,000 messages: planned in {:?}, plan JSON {} bytes",
        started.elapsed(),
        json.len()
    );
    assert_eq!(plan.sends(), 1_000_000_000);
    // Per connection: id, group, user, token, start (~100 bytes pretty-printed), plus
    // one token each; nothing per message.
    assert!(json.len() < 400 * 1000, "{} bytes", json.len());
}

#[test]
fn each_rendezvous_step_is_one_point_and_each_iteration_one_meeting() {
    let mut s = scenario(3, 1, TokenReuse::PerConnection, ramp());
    let rv = |count| Step::Rendezvous {
        count,
        timeout: Duration::from_secs(2),
    };
    let go = send(json!({"type": "go"}));
    s.groups[0].steps = vec![
        Step::Repeat {
            times: 2,
            steps: vec![
                Step::Repeat {
                    times: 3,
                    steps: vec![rv(None), go.clone()],
                    every: None,
                },
                rv(Some(1)),
                go.clone(),
            ],
            every: None,
        },
        rv(Some(2)),
        go,
    ];
    let mut second = s.groups[0].clone();
    second.name = "h".into();
    second.users = 5;
    s.groups.push(second);
    let plan = build(&s, 1);
    // Per group, in script order: the inner repeat's (whole group, 6 meetings), the outer
    // repeat's (1, 2 meetings), the last one (2, once); a loop stays one point.
    let points: Vec<(u32, u32, u32, u64)> = plan
        .rendezvous
        .iter()
        .map(|p| (p.group, p.step, p.count, p.meetings))
        .collect();
    assert_eq!(
        points,
        vec![
            (0, 0, 3, 6),
            (0, 1, 1, 2),
            (0, 2, 2, 1),
            (1, 0, 5, 6),
            (1, 1, 1, 2),
            (1, 2, 2, 1)
        ]
    );
    for c in &plan.conns {
        assert!(c.is_scripted());
        let met: Vec<(u32, u64)> = expand_conn(&plan, c, 100)
            .unwrap()
            .iter()
            .filter_map(|a| match a {
                Action::Rendezvous { point, iteration } => Some((*point, *iteration)),
                _ => None,
            })
            .collect();
        let p = if c.group == 0 { 0 } else { 3 };
        let want = vec![
            (p, 0),
            (p, 1),
            (p, 2),
            (p + 1, 0),
            (p, 3),
            (p, 4),
            (p, 5),
            (p + 1, 1),
            (p + 2, 0),
        ];
        assert_eq!(met, want, "conn {}", c.id);
        // The send the meeting releases follows it directly.
        let actions = expand_conn(&plan, c, 100).unwrap();
        for w in actions.windows(2) {
            if matches!(w[0], Action::Rendezvous { .. }) {
                assert!(matches!(w[1], Action::Send { .. }), "{actions:?}");
            }
        }
        assert_eq!(actions.len() as u64, plan.actions_of(c));
    }
    plan.check().unwrap();
    let json = plan.to_json().unwrap();
    let back: Plan = serde_json::from_str(&json).unwrap();
    // (The whole plan does not compare: the literal secret is written redacted.)
    assert_eq!(
        (&back.rendezvous, &back.scripts, &back.conns),
        (&plan.rendezvous, &plan.scripts, &plan.conns)
    );
    // An expanded connection (as shrinking writes them) names the same meetings; outside
    // loops the iteration is left out of the file.
    let mut explicit = plan.clone();
    explicit.conns[0].actions = expand_conn(&plan, &plan.conns[0], 100).unwrap();
    let json = explicit.to_json().unwrap();
    assert!(json.contains("\"iteration\": 5"), "{json}");
    let back: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(back.conns, explicit.conns);
    explicit.check().unwrap();
    // Hand-edited plans: a point, a meeting or a script's point that is not there.
    let mut bad = explicit.clone();
    bad.conns[0].actions[1] = Action::Rendezvous {
        point: 9,
        iteration: 0,
    };
    assert!(bad.check().unwrap_err().contains("rendezvous 9"));
    let mut bad = explicit.clone();
    bad.conns[0].actions[1] = Action::Rendezvous {
        point: 2,
        iteration: 1,
    };
    assert!(bad
        .check()
        .unwrap_err()
        .contains("meeting 1 of rendezvous 2"));
    let mut bad = plan.clone();
    bad.rendezvous.pop();
    assert!(bad
        .check()
        .unwrap_err()
        .contains("no point for rendezvous 2"));
}

#[test]
fn plans_without_rendezvous_have_no_rendezvous_key() {
    let plan = build(&scenario(2, 1, TokenReuse::PerConnection, ramp()), 1);
    assert!(plan.rendezvous.is_empty());
    assert!(!plan.to_json().unwrap().contains("rendezvous"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn counts_match_and_offsets_stay_in_the_window(users in 1u32..40, per_user in 1u32..4, seed: u64, over_ms in 0u64..5000) {
        let arrival = Arrival::Ramp { start: Duration::from_millis(100), over: Duration::from_millis(over_ms) };
        let plan = build(&scenario(users, per_user, TokenReuse::PerConnection, arrival), seed);
        prop_assert_eq!(plan.conns.len() as u32, users * per_user);
        let hi = Duration::from_millis(100 + over_ms + 5);
        for c in &plan.conns {
            prop_assert!(c.start >= Duration::from_millis(100) && c.start <= hi);
        }
        prop_assert!(plan.conns.windows(2).all(|w| w[0].start <= w[1].start));
        let mut ids: Vec<u32> = plan.conns.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        prop_assert_eq!(ids, (0..users * per_user).collect::<Vec<_>>());
    }

    #[test]
    fn plan_is_a_function_of_scenario_and_seed(seed: u64) {
        let s = scenario(4, 2, TokenReuse::PerConnection, Arrival::Burst { at: Duration::ZERO });
        prop_assert_eq!(build(&s, seed), build(&s, seed));
    }
}

#[test]
fn group_indexes_above_65535_do_not_wrap() {
    let mut s = scenario(1, 1, TokenReuse::PerConnection, ramp());
    let template = s.groups[0].clone();
    s.groups = (0..70_000)
        .map(|i| Group {
            name: format!("g{i}"),
            arrival: if i == 69_999 {
                Arrival::Collide { at: Duration::ZERO }
            } else {
                Arrival::Burst { at: Duration::ZERO }
            },
            steps: vec![Step::Close { code: 1000 }],
            ..template.clone()
        })
        .collect();
    let plan = build(&s, 1);
    plan.check().unwrap();
    let last = plan.conns.iter().max_by_key(|c| c.group).unwrap();
    assert_eq!(last.group, 69_999);
    assert_eq!(plan.group_name(last), "g69999");
    assert_eq!(plan.barriers[0].group, 69_999);
    assert_eq!(last.barrier, Some(0));
}

/// An expect step with the protocol options (issue 12) on top of the basics.
fn expect_step(pattern: &str, correlate: &str, checks: Vec<FieldTest>, name: &str) -> Step {
    Step::Expect(Expect {
        pattern: vec![PatternItem {
            event: pattern.into(),
            repeat: Repeat::One,
        }]
        .into(),
        correlate: Some(correlate.into()),
        correlate_reply: None,
        earlier_send: 0,
        earlier_send_step: 0,
        within: Duration::from_secs(1),
        wait: true,
        checks,
        capture: vec![Capture {
            name: "sid".into(),
            path: "/payload/sid".into(),
        }],
        absent: false,
        name: Some(name.into()),
        pushed: false,
        fresh: false,
    })
}

#[test]
fn the_walk_fills_typed_placeholders_paths_text_frames_and_expect_templates_per_iteration() {
    // Inside a loop, each iteration's send, text frame, pattern and field test see that
    // iteration's `{{run}}`; correlation reads a nested path of what was sent; captures
    // stay as written for the connection to fill; keys keep the order written.
    let plan = one_conn(vec![Step::Repeat {
        times: 2,
        every: None,
        steps: vec![
            send(json!({"type": "sub", "payload": {"id": "{{run:int}}", "sid": "{{$sid}}"}})),
            Step::SendText {
                template: "t{{run}}-{{conn}}".into(),
            },
            expect_step(
                "ev-{{run}}",
                "payload.id",
                vec![FieldTest {
                    path: "/payload/echo".into(),
                    test: Test::Equals(json!("{{run:int}}")),
                }],
                "sub",
            ),
        ],
    }]);
    let conn = &plan.conns[0];
    assert!(conn.is_scripted());
    assert_eq!(plan.sends(), 4, "text frames count as sends");
    assert_eq!(plan.turn_names(), vec!["sub".to_string()]);
    assert!(plan.tests_fields(conn));
    let actions = expand_conn(&plan, conn, 100).unwrap();
    assert_eq!(actions.len() as u64, plan.actions_of(conn));
    let Action::Send { message } = &actions[4] else {
        panic!("{:?}", actions[4]);
    };
    assert_eq!(
        message.to_string(),
        r#"{"type":"sub","payload":{"id":3,"sid":"{{$sid}}"}}"#
    );
    assert_eq!(
        actions[5],
        Action::SendText {
            text: format!("t4-{}", conn.id)
        }
    );
    let Action::Expect(e) = &actions[6] else {
        panic!("{:?}", actions[6]);
    };
    assert_eq!(e.pattern[0].event, "ev-4");
    assert_eq!(e.correlate, Some(("payload.id".into(), "3".into())));
    assert_eq!(e.checks()[0].test, Test::Equals(json!(4)));
    assert_eq!(e.capture()[0].name, "sid");
    assert_eq!(e.name(), Some("sub"));
}

#[test]
fn group_headers_are_stored_per_group_not_per_connection() {
    let mut s = scenario(3, 1, TokenReuse::PerConnection, ramp());
    let plain = build(&s, 1);
    assert!(plain.group_headers.is_empty());
    assert!(!plain.to_json().unwrap().contains("group_headers"));
    assert!(plain.headers_of(&plain.conns[0]).is_empty());
    s.groups[0].headers = vec![("X-Room".into(), "{{group}}-{{user}}".into())];
    let plan = build(&s, 1);
    assert_eq!(plan.group_headers.len(), 1);
    for c in &plan.conns {
        assert_eq!(plan.headers_of(c), &s.groups[0].headers[..]);
    }
    let back: Plan = serde_json::from_str(&plan.to_json().unwrap()).unwrap();
    assert_eq!(back.group_headers, plan.group_headers);
}

#[test]
fn rendered_sends_match_the_serialized_actions_and_feed_correlation_alike() {
    // A compiled send (correlated on a typed counter and on a text slot), a send holding a
    // capture (the general path), and expectations that read the correlation the sends
    // left: walking with rendering yields the same text and the same expectations.
    let plan = one_conn(vec![Step::Repeat {
        times: 3,
        every: None,
        steps: vec![
            send(json!({"type": "a", "n": "{{run:int}}", "id": "x-{{conn}}-{{random}}"})),
            expect_step("ev", "n", vec![], ""),
            expect_step("ev", "id", vec![], ""),
            send(json!({"type": "b", "id": "{{$cap}}-{{run}}"})),
            expect_step("ev", "id", vec![], ""),
        ],
    }]);
    let conn = &plan.conns[0];
    let plain = expand_conn(&plan, conn, 100).unwrap();
    let templates = SendTemplates::of(&plan, conn);
    assert!(templates.is_some(), "the first send compiles");
    let mut cursor = Cursor::new(conn).with_templates(templates);
    let (mut rendered, mut walked) = (0, Vec::new());
    loop {
        let mut text = String::new();
        match cursor.next_rendered(&plan, conn, &mut text, &mut Leftovers::default()) {
            Some(Next::Action(action)) => walked.push(action),
            Some(Next::Expect(expect)) => walked.push(Action::Expect(Box::new(expect))),
            Some(Next::Rendered) => {
                rendered += 1;
                walked.push(Action::Send {
                    message: serde_json::from_str(&text).unwrap(),
                });
                let Some(Action::Send { message }) = plain.get(walked.len() - 1) else {
                    panic!("a send where the plain walk has none");
                };
                assert_eq!(text, serde_json::to_string(message).unwrap());
            }
            None => break,
        }
    }
    assert_eq!(rendered, 3, "one compiled send per iteration");
    assert_eq!(walked, plain);
}

/// One connection: three times, a send and the `expect` correlated with it.
fn echo_three_times() -> Plan {
    one_conn(vec![Step::Repeat {
        times: 3,
        every: None,
        steps: vec![
            send(json!({"run_id": "{{run}}"})),
            expect_step("echo", "run_id", vec![], "turn"),
        ],
    }])
}

/// The cursor answers for its connection's group from its own copy (what every send asks).
#[test]
fn a_cursor_knows_its_connections_group() {
    let plan = echo_three_times();
    let mut conn = plan.conns[0].clone();
    conn.group = 3;
    assert_eq!(Cursor::new(&conn).group(), 3);
    assert_eq!(Cursor::new(&plan.conns[0]).group(), plan.conns[0].group);
}

#[test]
fn a_connection_shares_its_own_copy_of_a_pattern_across_iterations() {
    let plan = echo_three_times();
    let Some(Step::Repeat { steps, .. }) = plan.scripts[0].first() else {
        panic!("the script is the repeat");
    };
    let Some(Step::Expect(step)) = steps.get(1) else {
        panic!("the second step is the expect");
    };
    // Two connections' walks of the same script (a cursor is a connection's).
    let mut patterns: Vec<std::sync::Arc<[PatternItem]>> = Vec::new();
    for _ in 0..2 {
        let mut cursor = Cursor::new(&plan.conns[0]);
        while let Some(action) = cursor.next(&plan, &plan.conns[0]) {
            if let Action::Expect(e) = action {
                patterns.push(e.pattern);
            }
        }
    }
    assert_eq!(patterns.len(), 6);
    let (first, second) = patterns.split_at(3);
    // One copy per connection (a cursor), the same items as the script's.
    assert!(first.iter().all(|p| std::sync::Arc::ptr_eq(p, &first[0])));
    assert!(second.iter().all(|p| std::sync::Arc::ptr_eq(p, &second[0])));
    assert!(!std::sync::Arc::ptr_eq(&first[0], &second[0]));
    assert!(!std::sync::Arc::ptr_eq(&first[0], &step.pattern));
    assert_eq!(&*first[0], &*step.pattern);
}

/// A settled expectation's pattern, handed back ([`Leftovers`]), is the next one's when it
/// is the same step's: moved on, no count added; another step's is left where it is.
#[test]
fn an_expectation_takes_the_pattern_the_last_one_left() {
    let plan = echo_three_times();
    let conn = &plan.conns[0];
    let mut cursor = Cursor::new(conn);
    let mut left = Leftovers::default();
    let mut text = String::new();
    let mut first: Option<std::sync::Arc<[PatternItem]>> = None;
    while let Some(next) = cursor.next_rendered(&plan, conn, &mut text, &mut left) {
        let Next::Expect(e) = next else { continue };
        match &first {
            None => {
                // The cursor's copy and this expectation's.
                assert_eq!(std::sync::Arc::strong_count(&e.pattern), 2);
                first = Some(e.pattern.clone());
            }
            Some(first) => {
                assert!(std::sync::Arc::ptr_eq(&e.pattern, first));
                assert!(left.pattern.is_none(), "taken, not copied");
                // The cursor's, `first` and this one's: none added for it.
                assert_eq!(std::sync::Arc::strong_count(&e.pattern), 3);
            }
        }
        // As the checker settles it.
        left.pattern = Some(e.pattern);
    }
    assert!(first.is_some());
    // Another pattern left behind is not taken.
    let other: std::sync::Arc<[PatternItem]> = vec![PatternItem {
        event: "echo".into(),
        repeat: Repeat::One,
    }]
    .into();
    let mut cursor = Cursor::new(conn);
    let mut left = Leftovers {
        pattern: Some(other.clone()),
        ..Leftovers::default()
    };
    while let Some(next) = cursor.next_rendered(&plan, conn, &mut text, &mut left) {
        if let Next::Expect(e) = next {
            assert!(!std::sync::Arc::ptr_eq(&e.pattern, &other));
        }
    }
    assert!(left
        .pattern
        .is_some_and(|p| std::sync::Arc::ptr_eq(&p, &other)));
}

#[test]
fn users_are_shared_by_two_connections_of_one_sub_or_by_too_few_read_tokens() {
    let burst = || Arrival::Burst { at: Duration::ZERO };
    let alone = build(&scenario(3, 1, TokenReuse::PerConnection, burst()), 1);
    assert!(!alone.shares_users(None));
    // Two connections per user: distinct tokens, one `sub`.
    let pairs = build(&scenario(3, 2, TokenReuse::PerConnection, burst()), 1);
    assert!(pairs.shares_users(None));
    // A `sub` naming no user: every connection is the same user.
    let mut fixed = scenario(3, 1, TokenReuse::PerConnection, burst());
    fixed.auth.sub = "alice".into();
    assert!(build(&fixed, 1).shares_users(None));
    // Read tokens dealt round-robin: two for three slots puts one on two connections.
    assert!(alone.shares_users(Some(2)));
    assert!(!alone.shares_users(Some(3)));
    // Forged tokens are never judged by learned invariants: they share nothing.
    let mut forged = scenario(3, 2, TokenReuse::PerConnection, burst());
    forged.groups[0].forge = Some(Forge::Catalogue);
    assert!(!build(&forged, 1).shares_users(None));
}

/// The least time of a script: fixed thinks, a uniform's low end, no time for a normal or
/// exponential, loops multiplied, a paced loop's schedule; a group whose last connection
/// cannot finish within `duration` (starting too late, or starting and then needing
/// longer) is named, one that can is not.
#[test]
fn a_script_s_least_time_and_the_groups_that_cannot_finish() {
    let s = Duration::from_secs;
    let think = |dist| Step::Think { dist };
    let fixed = |value| Dist::Fixed { value };
    let send = || Step::Send {
        template: json!({"type": "x"}),
    };
    let uniform = Dist::Uniform {
        low: s(1),
        high: s(5),
    };
    assert_eq!(least_time(&[think(fixed(s(2))), think(uniform)]), s(3));
    let unbounded = [
        think(Dist::Exp { mean: s(3600) }),
        Step::PauseReads {
            dist: Dist::Normal {
                mean: s(3600),
                sd: s(1),
            },
        },
    ];
    assert_eq!(least_time(&unbounded), s(0));
    let looped = Step::Repeat {
        times: 3,
        steps: vec![think(fixed(s(2))), send()],
        every: None,
    };
    assert_eq!(least_time(&[looped]), s(6));
    let paced = Step::Repeat {
        times: 5,
        steps: vec![send()],
        every: Some(s(1)),
    };
    assert_eq!(least_time(&[paced]), s(4));
    // 4 connections ramped over 4 s: the last starts at 3 s.
    let late = |duration: Duration, thinks: Duration| {
        let mut scenario = scenario(
            4,
            1,
            TokenReuse::PerConnection,
            Arrival::Ramp {
                start: Duration::ZERO,
                over: s(4),
            },
        );
        scenario.duration = duration;
        scenario.groups[0].steps = vec![think(fixed(thinks))];
        let mut quick = scenario.groups[0].clone();
        quick.name = "quick".into();
        quick.users = 1;
        quick.steps = vec![Step::Close { code: 1000 }];
        scenario.groups.push(quick);
        cannot_finish(&scenario)
            .iter()
            .map(|l| (l.group.to_string(), l.last_start, l.script))
            .collect::<Vec<_>>()
    };
    assert_eq!(late(s(10), s(8)), [("g".to_string(), s(3), s(8))]);
    assert!(late(s(10), s(6)).is_empty(), "3 s + 6 s fits in 10 s");
    assert_eq!(
        late(s(2), s(0)),
        [("g".to_string(), s(3), s(0))],
        "starts after it"
    );
}

/// The groups whose minted tokens expire before their scripts can end: the last
/// connection's start plus its script's least time (within `duration`) past the `ttl`,
/// in whole seconds, less the second `iat` may round off; a million-iteration loop is multiplied, not walked. A script that
/// waits only on the server (no least time), a forged group and tokens from `[auth]
/// tokens` say nothing.
#[test]
fn the_groups_whose_tokens_expire_before_their_scripts_end() {
    let s = Duration::from_secs;
    let think = |secs| Step::Think {
        dist: Dist::Fixed { value: s(secs) },
    };
    // 4 connections ramped over 4 s: the last starts at 3 s; the run lasts 60 s.
    let expiring_with = |ttl: Duration, steps: Vec<Step>, edit: &dyn Fn(&mut Scenario)| {
        let mut scenario = scenario(
            4,
            1,
            TokenReuse::PerConnection,
            Arrival::Ramp {
                start: Duration::ZERO,
                over: s(4),
            },
        );
        scenario.duration = s(60);
        scenario.auth.ttl = ttl;
        scenario.groups[0].steps = steps;
        edit(&mut scenario);
        expiring(&scenario)
            .iter()
            .map(|e| (e.group.to_string(), e.ttl, e.last_start, e.script, e.ends))
            .collect::<Vec<_>>()
    };
    let as_is = |_: &mut Scenario| {};
    assert_eq!(
        expiring_with(s(2), vec![think(10)], &as_is),
        [("g".to_string(), s(2), s(3), s(10), s(13))]
    );
    assert!(expiring_with(s(14), vec![think(10)], &as_is).is_empty());
    // `iat` is the whole second the minting began: a 13 s ttl may live 12 s of the run.
    assert_eq!(expiring_with(s(13), vec![think(10)], &as_is).len(), 1);
    // JWT times are whole seconds: a 13.9 s ttl lives 13 s.
    let almost = expiring_with(Duration::from_millis(13_900), vec![think(11)], &as_is);
    assert_eq!(almost.first().map(|e| e.1), Some(s(13)), "{almost:?}");
    let million = Step::Repeat {
        times: 1_000_000,
        steps: vec![think(1)],
        every: None,
    };
    assert_eq!(
        expiring_with(s(30), vec![million.clone()], &as_is),
        [("g".to_string(), s(30), s(3), s(1_000_000), s(60))],
        "the run's duration bounds what the tokens must outlive"
    );
    assert!(
        expiring_with(s(61), vec![million], &as_is).is_empty(),
        "the run stops before they expire"
    );
    let waits_on_server = vec![Step::Close { code: 1000 }];
    assert!(expiring_with(s(5), waits_on_server, &as_is).is_empty());
    let forged = |sc: &mut Scenario| sc.groups[0].forge = Some(Forge::Catalogue);
    assert!(expiring_with(s(2), vec![think(10)], &forged).is_empty());
    let opaque = |sc: &mut Scenario| {
        sc.auth.tokens = Some(TokenSource::File {
            path: "tokens.txt".into(),
        })
    };
    assert!(expiring_with(s(2), vec![think(10)], &opaque).is_empty());
}

/// A cursor names the step in progress as the scenario file numbers it (1-based, dotted
/// inside a repeat), whichever iteration it is in: the same numbers `validate` uses.
#[test]
fn the_step_in_progress_is_named_by_its_place_in_the_file() {
    let plan = one_conn(vec![
        Step::Think {
            dist: Dist::Fixed {
                value: Duration::ZERO,
            },
        },
        Step::Repeat {
            times: 2,
            every: Some(Duration::from_millis(10)),
            steps: vec![
                send(json!({"id": "{{run}}"})),
                Step::Think {
                    dist: Dist::Fixed {
                        value: Duration::ZERO,
                    },
                },
            ],
        },
        Step::Close { code: 1000 },
    ]);
    let conn = &plan.conns[0];
    let mut cursor = Cursor::new(conn);
    assert_eq!(cursor.step_place().shown(), None, "before the first action");
    let mut walked = Vec::new();
    while let Some(action) = cursor.next(&plan, conn) {
        let name = match action {
            Action::Connect => "connect",
            Action::Think(_) => "think",
            Action::PaceStart | Action::PaceAt(_) => "pace",
            Action::Send { .. } => "send",
            Action::Close { .. } => "close",
            _ => "other",
        };
        walked.push(format!(
            "{name} {}",
            cursor.step_place().shown().unwrap_or_default()
        ));
    }
    assert_eq!(
        walked,
        [
            "connect ",
            "think 1",
            "pace 2",
            "pace 2",
            "send 2.1",
            "think 2.2",
            "pace 2",
            "send 2.1",
            "think 2.2",
            "close 3"
        ]
    );
}

#[test]
fn an_expectation_correlates_with_the_latest_send_carrying_its_field() {
    // The second send carries no `id`: the expectation after it still reads the first's,
    // on both walks (rendered and plain); `n` correlates on the send before it.
    let plan = one_conn(vec![Step::Repeat {
        times: 2,
        every: None,
        steps: vec![
            send(json!({"type": "a", "id": "x-{{run}}"})),
            send(json!({"type": "b", "n": "{{run:int}}"})),
            expect_step("ev", "id", vec![], ""),
            expect_step("ev", "n", vec![], ""),
        ],
    }]);
    let want = [("id", "x-1"), ("n", "2"), ("id", "x-3"), ("n", "4")];
    assert_walks_correlate(&plan, &want);
}

/// Asserts both walks of `plan`'s connection (plain and rendered) open expectations
/// correlated on `want`'s (field, value) pairs, in order.
fn assert_walks_correlate(plan: &Plan, want: &[(&str, &str)]) {
    let conn = &plan.conns[0];
    let correlations = |actions: Vec<Action>| -> Vec<(String, String)> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Expect(e) => e.correlate,
                _ => None,
            })
            .collect()
    };
    let plain = correlations(expand_conn(plan, conn, 100).unwrap());
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect();
    assert_eq!(plain, want);
    let mut cursor = Cursor::new(conn).with_templates(SendTemplates::of(plan, conn));
    let mut rendered = Vec::new();
    let mut text = String::new();
    while let Some(next) = cursor.next_rendered(plan, conn, &mut text, &mut Leftovers::default()) {
        if let Next::Expect(e) = next {
            rendered.push(Action::Expect(Box::new(e)));
        }
        text.clear();
    }
    assert_eq!(correlations(rendered), want);
}

/// Expectations paired with earlier sends (`send AUTH, send EVENT, expect OK, expect OK`,
/// as the loader pairs them) read those sends' values, iteration after iteration, on both
/// walks; one paired further back than the sends kept reads the oldest.
#[test]
fn expectations_paired_with_earlier_sends_read_their_values() {
    let paired = |pattern: &str, back: u8| {
        let mut step = expect_step(pattern, "/1/id", vec![], "");
        if let Step::Expect(e) = &mut step {
            e.earlier_send = back;
        }
        step
    };
    let plan = one_conn(vec![Step::Repeat {
        times: 3,
        every: None,
        steps: vec![
            send(json!(["AUTH", {"id": "a-{{run}}"}])),
            send(json!(["EVENT", {"id": "e-{{run}}"}])),
            paired("OK", 1),
            paired("OK", 0),
        ],
    }]);
    let want = [
        ("/1/id", "a-1"),
        ("/1/id", "e-2"),
        ("/1/id", "a-3"),
        ("/1/id", "e-4"),
        ("/1/id", "a-5"),
        ("/1/id", "e-6"),
    ];
    assert_walks_correlate(&plan, &want);
    // Two back, with one send before: the oldest kept (the connection's only send).
    let plan = one_conn(vec![
        send(json!(["EVENT", {"id": "only"}])),
        paired("OK", 2),
    ]);
    assert_walks_correlate(&plan, &[("/1/id", "only")]);
}

/// A connection that sends three requests (`id` `r-1` to `r-3`), then loops four times
/// over `answer`, each iteration paired with the next request ([`Expect::earlier_send`]
/// 2 back, one fewer per iteration), as the loader pairs a pipelined burst's answers.
fn three_sends_four_answers(mut answer: Step) -> Plan {
    if let Step::Expect(e) = &mut answer {
        e.earlier_send = 2;
        e.earlier_send_step = 1;
    }
    one_conn(vec![
        Step::Repeat {
            times: 3,
            every: None,
            steps: vec![send(json!(["REQ", {"id": "r-{{run}}"}]))],
        },
        Step::Repeat {
            times: 4,
            every: None,
            steps: vec![answer],
        },
    ])
}

/// A loop of answers after a loop of sends ([`Expect::earlier_send_step`]): iteration `i`
/// of the answers reads the `i`-th send's value, on both walks; past the sends, the
/// latest.
#[test]
fn a_loop_of_answers_reads_the_sends_in_order_iteration_by_iteration() {
    let plan = three_sends_four_answers(expect_step("OK", "/1/id", vec![], ""));
    let want = [
        ("/1/id", "r-1"),
        ("/1/id", "r-2"),
        ("/1/id", "r-3"),
        ("/1/id", "r-3"),
    ];
    assert_walks_correlate(&plan, &want);
}

/// An expectation paired with an earlier send reads `{{run}}` as that send's counter in its
/// field tests and pattern, not the latest send's: a pipelined burst's answers each test
/// their own request's value (`where = { result = "v-{{run}}" }` after 3 sends read `v-3`
/// in every one). Both walks; past the sends, the latest.
#[test]
fn a_paired_expectation_reads_its_own_sends_counter() {
    let test = FieldTest {
        path: "/1/v".into(),
        test: Test::Equals(json!("v-{{run}}")),
    };
    let plan = three_sends_four_answers(expect_step("OK-{{run}}", "/1/id", vec![test], ""));
    let conn = &plan.conns[0];
    let tested = |e: &ExpectPlan| -> (String, serde_json::Value) {
        let rare = e.rare.as_deref().expect("field tests");
        let Test::Equals(v) = &rare.checks[0].test else {
            panic!("equals")
        };
        (e.pattern[0].event.clone(), v.clone())
    };
    let want: Vec<(String, serde_json::Value)> = [1, 2, 3, 3]
        .iter()
        .map(|n| (format!("OK-{n}"), json!(format!("v-{n}"))))
        .collect();
    let plain: Vec<(String, serde_json::Value)> = expand_conn(&plan, conn, 100)
        .unwrap()
        .into_iter()
        .filter_map(|a| match a {
            Action::Expect(e) => Some(tested(&e)),
            _ => None,
        })
        .collect();
    assert_eq!(plain, want);
    let mut cursor = Cursor::new(conn).with_templates(SendTemplates::of(&plan, conn));
    let mut rendered = Vec::new();
    let mut text = String::new();
    while let Some(next) = cursor.next_rendered(&plan, conn, &mut text, &mut Leftovers::default()) {
        if let Next::Expect(e) = next {
            rendered.push(tested(&e));
        }
        text.clear();
    }
    assert_eq!(rendered, want);
}

/// The thinks that always outlast a declared idle timeout with a step after them: at its
/// place (one per nested `repeat`), the last step of a loop that turns again included;
/// a think at the script's end, one that may be shorter, and a scenario that declares no
/// idle timeout say nothing.
#[test]
fn the_thinks_that_outlast_a_declared_idle_timeout() {
    let s = Duration::from_secs;
    let think = |low: u64, high: u64| Step::Think {
        dist: if low == high {
            Dist::Fixed { value: s(low) }
        } else {
            Dist::Uniform {
                low: s(low),
                high: s(high),
            }
        },
    };
    let repeat = |times: u32, steps: Vec<Step>| Step::Repeat {
        times,
        steps,
        every: None,
    };
    let found = |idle: Option<u64>, steps: Vec<Step>| {
        let burst = Arrival::Burst { at: Duration::ZERO };
        let mut scenario = scenario(1, 1, TokenReuse::PerConnection, burst);
        scenario.oracles.idle_timeout = idle.map(s);
        scenario.groups[0].steps = steps;
        thinks_past_idle(&scenario)
            .iter()
            .map(|t| (t.path.clone(), t.least))
            .collect::<Vec<_>>()
    };
    let close = Step::Close { code: 1000 };
    assert_eq!(
        found(Some(2), vec![think(3, 3), close.clone()]),
        [(vec![1], s(3))]
    );
    assert_eq!(
        found(Some(2), vec![think(2, 2), close.clone()]),
        [(vec![1], s(2))],
        "as long as the timeout"
    );
    assert!(
        found(Some(2), vec![close.clone(), think(3, 3)]).is_empty(),
        "at the end"
    );
    assert!(
        found(Some(2), vec![think(1, 5), close.clone()]).is_empty(),
        "may be shorter"
    );
    assert!(found(None, vec![think(3, 3), close.clone()]).is_empty());
    assert_eq!(
        found(Some(2), vec![think(1, 1), think(1, 2), close.clone()]),
        [(vec![2], s(2))],
        "thinks in a row are one silence"
    );
    assert!(
        found(
            Some(2),
            vec![think(1, 1), close.clone(), think(1, 1), close.clone()]
        )
        .is_empty(),
        "a step between them ends it"
    );
    assert_eq!(
        found(Some(2), vec![repeat(3, vec![close.clone(), think(3, 3)])]),
        [(vec![1, 2], s(3))],
        "the loop turns again after it"
    );
    assert!(
        found(Some(2), vec![repeat(1, vec![close.clone(), think(3, 3)])]).is_empty(),
        "a loop that runs once, at the script's end"
    );
    assert_eq!(
        found(
            Some(2),
            vec![repeat(1, vec![close.clone(), think(3, 3)]), close.clone()]
        ),
        [(vec![1, 2], s(3))],
        "a step after the loop"
    );
}

/// An expectation is written to plan and repro files as one flat object, its rare fields
/// (boxed in memory) beside the others and left out when empty, and reads back the same.
#[test]
fn an_expectation_is_written_flat_and_read_back_with_its_rare_fields() {
    let mut e = ExpectPlan {
        pattern: vec![PatternItem {
            event: "x".into(),
            repeat: Repeat::One,
        }]
        .into(),
        correlate: Some(("id".into(), "1".into())),
        within: Duration::from_secs(1),
        wait: true,
        absent: false,
        rare: None,
    };
    let plain = serde_json::to_value(&e).unwrap();
    for key in ["where", "capture", "name", "correlate_sent"] {
        assert!(plain.get(key).is_none(), "{key} in {plain}");
    }
    let back: ExpectPlan = serde_json::from_value(plain).unwrap();
    assert!(back.rare.is_none(), "none boxed when it has none");
    assert_eq!(back, e);
    e.rare_mut().name = Some("turn".into());
    e.rare_mut().correlate_sent = Some("seq".into());
    e.rare_mut().checks = vec![FieldTest {
        path: "status".into(),
        test: Test::Equals(json!("ok")),
    }];
    let written = serde_json::to_value(&e).unwrap();
    assert_eq!(written["name"], "turn");
    assert_eq!(written["correlate_sent"], "seq");
    assert_eq!(written["where"][0]["path"], "status");
    assert_eq!(written["within"], e.within.as_micros() as u64);
    let back: ExpectPlan = serde_json::from_value(written).unwrap();
    assert_eq!(back, e);
    assert_eq!(back.name(), Some("turn"));
    assert_eq!(back.checks().len(), 1);
    // Rare fields made but left empty equal none.
    let mut empty = back.clone();
    empty.rare = Some(Box::default());
    empty.rare_mut().name = None;
    let mut bare = back;
    bare.rare = None;
    assert_eq!(empty, bare);
}

/// What a reference walk (plain recursion over the script) says each action is: its kind
/// and the step it comes from, as [`Cursor::step_place`] shows it.
fn reference_walk(steps: &[Step], prefix: &[usize], out: &mut Vec<(&'static str, Option<String>)>) {
    for (i, step) in steps.iter().enumerate() {
        let mut path = prefix.to_vec();
        path.push(i + 1);
        let place = Some(
            path.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("."),
        );
        match step {
            Step::Repeat {
                times,
                steps,
                every,
            } => {
                if every.is_some() {
                    out.push(("pace_start", place.clone()));
                }
                for _ in 0..*times {
                    if every.is_some() {
                        out.push(("pace_at", place.clone()));
                    }
                    reference_walk(steps, &path, out);
                }
            }
            Step::Send { .. } => out.push(("send", place)),
            Step::Expect(_) => out.push(("expect", place)),
            Step::Think { .. } => out.push(("think", place)),
            Step::Close { .. } => out.push(("close", place)),
            other => panic!("not in these scripts: {other:?}"),
        }
    }
}

fn kind_of(action: &Action) -> &'static str {
    match action {
        Action::Connect => "connect",
        Action::Send { .. } => "send",
        Action::Expect(_) => "expect",
        Action::Think(_) => "think",
        Action::Close { .. } => "close",
        Action::PaceStart => "pace_start",
        Action::PaceAt(_) => "pace_at",
        other => panic!("not in these scripts: {other:?}"),
    }
}

/// The cursor's walk, rendering sends or not, against a plain recursion over the script:
/// the same actions in the same order from the same steps, through nested repeats, a
/// repeat of no times, a paced repeat, jittered thinks (per-iteration draws) and a loop
/// body's wrap into its next iteration; rendered sends are the plain walk's bytes.
#[test]
fn the_cursor_walks_repeats_as_a_plain_recursion_does() {
    let think = |ms| Step::Think {
        dist: Dist::Uniform {
            low: Duration::ZERO,
            high: Duration::from_millis(ms),
        },
    };
    let echo = || {
        vec![
            send(json!({"type": "echo", "run_id": "{{conn}}-{{run}}"})),
            expect_step("echo", "run_id", vec![], ""),
        ]
    };
    let scripts = vec![
        vec![Step::Repeat {
            times: 5,
            every: None,
            steps: echo(),
        }],
        vec![
            send(json!({"hello": "{{user}}"})),
            Step::Repeat {
                times: 3,
                every: None,
                steps: vec![
                    think(100),
                    Step::Repeat {
                        times: 0,
                        every: None,
                        steps: echo(),
                    },
                    Step::Repeat {
                        times: 2,
                        every: None,
                        steps: [echo(), vec![think(5)]].concat(),
                    },
                    send(json!({"n": "{{run:int}}", "r": "{{random}}"})),
                ],
            },
            Step::Repeat {
                times: 2,
                every: Some(Duration::from_millis(10)),
                steps: echo(),
            },
            Step::Close { code: 1000 },
        ],
        vec![Step::Repeat {
            times: 2,
            every: None,
            steps: vec![Step::Repeat {
                times: 3,
                every: None,
                steps: vec![Step::Repeat {
                    times: 2,
                    every: None,
                    steps: [echo(), vec![think(50)]].concat(),
                }],
            }],
        }],
    ];
    for script in scripts {
        let plan = one_conn(script.clone());
        let conn = &plan.conns[0];
        let mut want = vec![("connect", None)];
        reference_walk(&script, &[], &mut want);
        let plain = expand_conn(&plan, conn, 1000).unwrap();
        assert_eq!(plain.len() as u64, plan.actions_of(conn));
        let mut cursor = Cursor::new(conn);
        let mut walked = Vec::new();
        while let Some(action) = cursor.next(&plan, conn) {
            walked.push((kind_of(&action), cursor.step_place().shown()));
        }
        assert_eq!(walked, want);
        let mut cursor = Cursor::new(conn).with_templates(SendTemplates::of(&plan, conn));
        let mut rendered = Vec::new();
        let mut text = String::new();
        let mut left = Leftovers::default();
        while let Some(next) = cursor.next_rendered(&plan, conn, &mut text, &mut left) {
            let action = match next {
                Next::Action(action) => action,
                Next::Expect(expect) => Action::Expect(Box::new(expect)),
                Next::Rendered => {
                    let i = rendered.len();
                    let Some(Action::Send { message }) = plain.get(i) else {
                        panic!("a send where the plain walk has none");
                    };
                    assert_eq!(text, serde_json::to_string(message).unwrap());
                    Action::Send {
                        message: serde_json::from_str(&text).unwrap(),
                    }
                }
            };
            assert_eq!(
                (kind_of(&action), cursor.step_place().shown()),
                want[rendered.len()]
            );
            rendered.push(action);
            text.clear();
        }
        assert_eq!(rendered, plain);
    }
}
