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
                            }],
                            correlate: Some("run_id".into()),
                            within: Duration::from_secs(1),
                            wait: true,
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
        hash: "h".into(),
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
    let c = &plan.conns[0];
    let mut last_run_id = None;
    let mut checked = 0;
    for action in &c.actions {
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
    assert_eq!(c.actions.first(), Some(&Action::Connect));
    assert_eq!(c.actions.last(), Some(&Action::Close { code: 1000 }));
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
    let actions = &plan.conns[0].actions;
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

#[test]
fn each_rendezvous_of_a_group_is_one_point_shared_by_its_connections() {
    let mut s = scenario(3, 1, TokenReuse::PerConnection, ramp());
    let send = Step::Send {
        template: json!({"type": "go"}),
    };
    let rv = |count| Step::Rendezvous {
        count,
        timeout: Duration::from_secs(2),
    };
    s.groups[0].steps = vec![
        Step::Repeat {
            times: 2,
            steps: vec![rv(None), send.clone()],
            every: None,
        },
        rv(Some(2)),
        send,
    ];
    let mut second = s.groups[0].clone();
    second.name = "h".into();
    second.users = 5;
    s.groups.push(second);
    let plan = build(&s, 1);
    // Group g: two from the repeat (whole group), one of 2; group h: the same three.
    let points: Vec<(u16, u32, u32)> = plan
        .rendezvous
        .iter()
        .map(|p| (p.group, p.step, p.count))
        .collect();
    assert_eq!(
        points,
        vec![
            (0, 0, 3),
            (0, 1, 3),
            (0, 2, 2),
            (1, 0, 5),
            (1, 1, 5),
            (1, 2, 2)
        ]
    );
    for c in &plan.conns {
        let used: Vec<u32> = c
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Rendezvous { point } => Some(*point),
                _ => None,
            })
            .collect();
        let first = if c.group == 0 { 0 } else { 3 };
        assert_eq!(used, vec![first, first + 1, first + 2]);
    }
    plan.check().unwrap();
    let back: Plan = serde_json::from_str(&plan.to_json().unwrap()).unwrap();
    assert_eq!(
        (&back.rendezvous, &back.conns),
        (&plan.rendezvous, &plan.conns)
    );
    // A hand-edited point out of range is refused.
    let mut bad = plan.clone();
    bad.rendezvous.pop();
    assert!(bad.check().unwrap_err().contains("rendezvous 5"));
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
