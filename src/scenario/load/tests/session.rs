//! A group's `token`, `forge` and `placement`, the `abort_handshake` step, and the
//! session oracles of `[oracles]`.

use super::*;

/// A file whose only group has extra `fields` (whole lines) and `steps`.
fn with_group(fields: &str, steps: &str) -> String {
    format!("name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"g\"\nusers = 2\n{fields}\nsteps = [\n{steps}\n]\n")
}

fn group(fields: &str) -> Group {
    load(&with_group(fields, "{ think = \"1ms\" }"))
        .groups
        .remove(0)
}

fn oracles(body: &str) -> SessionOracles {
    load(&with_top(&format!("[oracles]\n{body}")))
        .oracles
        .session
}

#[test]
fn group_token_forge_and_placement_load() {
    assert_eq!(group("token = \"per-user\"").token, TokenReuse::PerUser);
    assert_eq!(group("token = \"cross-user\"").token, TokenReuse::CrossUser);
    assert_eq!(
        group("token = { share = 4 }").token,
        TokenReuse::Shared { k: 4 }
    );
    assert_eq!(group("").token, TokenReuse::PerConnection);
    assert_eq!(group("").forge, None);
    assert_eq!(group("").placement, None);
    assert_eq!(group("forge = \"catalogue\"").forge, Some(Forge::Catalogue));
    assert_eq!(
        group("forge = \"alg-none\"").forge,
        Some(Forge::Bad {
            name: BadToken::AlgNone
        })
    );
    assert_eq!(
        group("forge = { exp = \"-30s\", nbf = \"+60s\", iat = \"-1h\" }").forge,
        Some(Forge::Shift {
            exp_s: Some(-30),
            nbf_s: Some(60),
            iat_s: Some(-3600)
        })
    );
    assert_eq!(
        group("forge = { exp = \"0\" }").forge,
        Some(Forge::Shift {
            exp_s: Some(0),
            nbf_s: None,
            iat_s: None
        })
    );
    assert_eq!(
        group("placement = \"query\"").placement,
        Some(Placement::Query {
            param: "token".into()
        })
    );
    assert_eq!(
        group("placement = { cookie = \"sid\" }").placement,
        Some(Placement::Cookie { name: "sid".into() })
    );
}

#[test]
fn bad_group_tokens_are_reported() {
    let bad = |fields: &str, needle: &str| {
        assert_problem(&with_group(fields, "{ think = \"1ms\" }"), needle)
    };
    bad("token = \"shared\"", "token: expected \"per-connection\", \"per-user\", \"cross-user\" or { share = 4 }, found \"shared\"");
    bad(
        "token = { share = 0 }",
        "token has share = 0; expected at least 1",
    );
    bad(
        "token = { shared = 2 }",
        "unknown field \"shared\" in token; expected one of: share",
    );
    bad("token = 3", "token: expected \"per-connection\"");
    // A key of the group written inside `token`: said once, where it belongs.
    let forge_inside = with_group("token = { forge = \"catalogue\" }", "{ think = \"1ms\" }");
    assert_problem(
        &forge_inside,
        "token: `forge` is a key of the [[group]] itself",
    );
    // The value as written in the file, to move as it is.
    assert_problem(&forge_inside, "(`forge = \"catalogue\"`)");
    let problems = crate::scenario::load_str(&forge_inside, "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        !problems.contains("missing required field") && !problems.contains("unknown field"),
        "{problems}"
    );
    let one_user = "name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"g\"\nusers = 1\ntoken = \"cross-user\"\nsteps = [{ think = \"1ms\" }]\n";
    let (line, column, message) = problem(one_user);
    assert_eq!((line, column), (6, 9));
    assert!(message.contains("needs users >= 2"), "{message}");
    bad("forge = \"alg-nope\"", "forge: unknown catalogue entry \"alg-nope\"; expected \"catalogue\" (every entry) or one of: missing, empty,");
    bad(
        "forge = { exp = \"-1.5s\" }",
        "forge.exp: \"-1.5s\" is not a whole number of seconds",
    );
    bad(
        "forge = { exp = \"yesterday\" }",
        "forge.exp: expected a signed duration like \"-30s\"",
    );
    bad(
        "forge = { exp = -30 }",
        "exp: expected a string, found an integer",
    );
    bad(
        "forge = { }",
        "forge: a time shift needs at least one of exp, nbf, iat",
    );
    bad(
        "forge = { exp = \"-1s\", ttl = \"1s\" }",
        "unknown field \"ttl\" in forge; expected one of: exp, nbf, iat",
    );
    bad(
        "forge = true",
        "forge: expected \"catalogue\", a catalogue entry",
    );
    bad(
        "placement = \"pigeon\"",
        "group \"g\" placement: expected \"header\"",
    );
}

#[test]
fn abort_handshake_loads_first_only() {
    let first = load(&with_group("", "{ abort_handshake = { after = \"uniform(0ms, 2ms)\", how = \"fin\" } },\n{ reconnect = true }"));
    assert_eq!(
        first.groups[0].steps[0],
        Step::AbortHandshake {
            after: Dist::Uniform {
                low: ms(0),
                high: ms(2)
            },
            how: AbortHow::Fin
        }
    );
    assert_eq!(
        only_step(&with_steps("{ abort_handshake = true }")),
        Step::AbortHandshake {
            after: Dist::ZERO,
            how: AbortHow::Rst
        }
    );
    assert_eq!(
        only_step(&with_steps("{ abort_handshake = { after = \"1ms\" } }")),
        Step::AbortHandshake {
            after: Dist::Fixed { value: ms(1) },
            how: AbortHow::Rst
        }
    );
    let (line, column, message) = problem(&with_steps(
        "{ think = \"1ms\" },\n  { abort_handshake = true },",
    ));
    assert_eq!((line, column), (8, 3));
    assert!(
        message.starts_with("abort_handshake replaces the connect, so it must be the first step"),
        "{message}"
    );
    assert_problem(
        &with_steps("{ repeat = 2, steps = [{ abort_handshake = true }] }"),
        "must be the first step of a group",
    );
    assert_problem(
        &with_steps("{ abort_handshake = { how = \"reset\" } }"),
        "how: expected one of \"rst\", \"fin\", found \"reset\"",
    );
    assert_problem(
        &with_steps("{ abort_handshake = { after = \"soon\" } }"),
        "after: expected a distribution like",
    );
    assert_problem(
        &with_steps("{ abort_handshake = \"rst\" }"),
        "abort_handshake: expected true or a table like",
    );
    assert_problem(
        &with_steps("{ abort_handshake = { when = \"1ms\" } }"),
        "unknown field \"when\" in abort_handshake; expected one of: after, how",
    );
}

#[test]
fn session_oracles_load() {
    assert_eq!(oracles(""), SessionOracles::default());
    let o = oracles(
        "exclusive = { max_live = 2 }\nliveness = { grace = \"1s\" }\nreject = { http = [401], close = [1008, 4001] }\nconsistency = false\naccepted = { message = \"connection_established\" }",
    );
    assert_eq!((o.max_live, o.per), (Some(2), SessionKey::Token));
    let per_user = oracles("exclusive = { max_live = 1, per = \"user\" }");
    assert_eq!(
        (per_user.max_live, per_user.per),
        (Some(1), SessionKey::User)
    );
    assert_eq!(
        oracles("exclusive = { max_live = 1, per = \"token\" }").per,
        SessionKey::Token
    );
    assert_eq!(
        o.liveness,
        Some(LivenessSpec {
            grace: ms(1000),
            cleanup: Duration::ZERO
        })
    );
    let cleaned = oracles("liveness = { cleanup = \"300ms\" }");
    assert_eq!(
        cleaned.liveness,
        Some(LivenessSpec {
            grace: ms(500),
            cleanup: ms(300)
        })
    );
    assert_eq!(
        o.reject,
        RejectSpec {
            http: vec![401],
            close: vec![1008, 4001],
            message: None,
            shed: Vec::new(),
            replaced: Vec::new(),
            policy: RejectPolicy::Lenient,
        }
    );
    assert!(!o.consistency);
    assert_eq!(
        o.accepted,
        AcceptRule::Message {
            event: "connection_established".into()
        }
    );
    let off = oracles("exclusive = false\nliveness = false\naccepted = \"upgrade\"");
    assert_eq!(
        (off.max_live, off.liveness, off.accepted),
        (None, None, AcceptRule::Upgrade)
    );
    let on = oracles(
        "exclusive = true\nliveness = true\naccepted = \"first_frame\"\nreject = { close = [] }",
    );
    let defaults = SessionOracles::default();
    assert_eq!(
        (on.max_live, on.liveness),
        (defaults.max_live, defaults.liveness)
    );
    assert_eq!(
        on.reject,
        RejectSpec {
            http: defaults.reject.http.clone(),
            close: vec![],
            message: None,
            shed: Vec::new(),
            replaced: Vec::new(),
            policy: RejectPolicy::Lenient,
        }
    );
    assert_eq!(oracles("liveness = {}").liveness, defaults.liveness);
}

#[test]
fn reject_policy_loads_lenient_by_default() {
    let defaults = SessionOracles::default();
    assert_eq!(defaults.reject.policy, RejectPolicy::Lenient);
    let strict = oracles("reject = { policy = \"strict\" }");
    // The lists left out keep their defaults.
    assert_eq!(
        strict.reject,
        RejectSpec {
            policy: RejectPolicy::Strict,
            ..defaults.reject.clone()
        }
    );
    let lenient = oracles("reject = { http = [401], policy = \"lenient\" }");
    assert_eq!(lenient.reject.policy, RejectPolicy::Lenient);
    assert_eq!(lenient.reject.http, vec![401]);
}

/// `reject.message` names an `[oracles.kinds]` entry: the message a server refuses with
/// in band. The lists left out keep their defaults; the message alone is a clean way to
/// refuse.
#[test]
fn reject_message_names_a_declared_kind() {
    let kinds = "\n[oracles.kinds]\nrefused = { type = \"disconnect\", reason = \"unauthorized\" }";
    let o = oracles(&format!("reject = {{ message = \"refused\" }}{kinds}"));
    let defaults = SessionOracles::default().reject;
    assert_eq!(
        o.reject,
        RejectSpec {
            message: Some("refused".into()),
            ..defaults.clone()
        }
    );
    let only = oracles(&format!(
        "reject = {{ http = [], close = [], message = \"refused\" }}{kinds}"
    ));
    assert_eq!((only.reject.http.len(), only.reject.close.len()), (0, 0));
    assert_eq!(oracles("consistency = true").reject.message, None);
}

#[test]
fn an_unknown_refusal_kind_is_reported_at_its_value() {
    // Line 4 is the `reject` table; the value starts at column 22.
    let text = with_top(
        "[oracles]\nreject = { message = \"refusd\" }\n[oracles.kinds]\nrefused = { type = \"disconnect\" }",
    );
    assert_eq!(
        problem(&text),
        (
            4,
            22,
            "oracles.reject.message: \"refusd\" is not a kind of [oracles.kinds] (declared: \
             \"refused\"); did you mean \"refused\"?"
                .to_string()
        )
    );
    // A `type_field` value is no declared kind: what refuses is stated, not guessed.
    let (line, column, message) = problem(&with_top(
        "[oracles]\nreject = { message = \"disconnect\" }",
    ));
    assert_eq!((line, column), (4, 22), "{message}");
    assert!(
        message.contains("\"disconnect\" names no kind: [oracles.kinds] declares none"),
        "{message}"
    );
    // The declaration it suggests first is the plain one, by the name given.
    let (_, _, message) = problem(&with_top(
        "[oracles]\nreject = { message = \"auth_invalid\" }",
    ));
    assert!(
        message
            .contains("e.g. auth_invalid = { type = \"auth_invalid\" } (the records of that type)"),
        "{message}"
    );
}

/// `reject.shed` lists close codes the server sheds load with; the other lists keep their
/// defaults, and a scenario without it sheds nothing beyond 429, 503 and 1013.
#[test]
fn reject_shed_lists_close_codes() {
    let o = oracles("reject = { shed = [4429, 4503] }");
    assert_eq!(
        o.reject,
        RejectSpec {
            shed: vec![4429, 4503],
            ..SessionOracles::default().reject
        }
    );
    assert!(oracles("consistency = true").reject.shed.is_empty());
}

#[test]
fn bad_reject_shed_codes_are_reported_at_their_value() {
    // Line 4 is the `reject` table; the list's second item starts at column 26.
    let text = with_top("[oracles]\nreject = { shed = [4429, 1006] }");
    assert_eq!(
        problem(&text),
        (
            4,
            26,
            "oracles.reject.shed: close code 1006 is never sent on the wire (RFC 6455 §7.4.1)"
                .to_string()
        )
    );
    // A code in both lists: "not you" and "not now" at once. Column 42: the 4429 in shed.
    let text = with_top("[oracles]\nreject = { close = [1008, 4429], shed = [4429] }");
    let (line, column, message) = problem(&text);
    assert_eq!((line, column), (4, 42), "{message}");
    assert!(
        message.contains("close code 4429 is in `close` too"),
        "{message}"
    );
    assert_problem(
        &with_top("[oracles]\nreject = { shed = [429] }"),
        "oracles.reject has shed = 429; expected at least 1000",
    );
    assert_problem(
        &with_top("[oracles]\nreject = { shed = 4429 }"),
        "shed: expected an array",
    );
}

/// `reject.replaced` lists close codes the server ends a session with when another
/// connection of its token takes over; the other lists keep their defaults, and a scenario
/// without it declares no takeover.
#[test]
fn reject_replaced_lists_close_codes() {
    let o = oracles("reject = { replaced = [4409] }");
    assert_eq!(
        o.reject,
        RejectSpec {
            replaced: vec![4409],
            ..SessionOracles::default().reject
        }
    );
    assert!(oracles("consistency = true").reject.replaced.is_empty());
    // A code of a default list, declared in another: the scenario says what this server's
    // code means, and the default gives it up (a clash is between lists it wrote).
    let default = SessionOracles::default().reject;
    assert!(default.close.contains(&1008), "{default:?}");
    let o = oracles("reject = { replaced = [1008] }");
    let mut close = default.close.clone();
    close.retain(|c| *c != 1008);
    assert_eq!(
        o.reject,
        RejectSpec {
            replaced: vec![1008],
            close,
            ..default.clone()
        }
    );
    // Written in two lists, it still clashes.
    let text = with_top("[oracles]\nreject = { close = [1008], replaced = [1008] }");
    assert!(problem(&text)
        .2
        .contains("close code 1008 is in `close` too"));
}

#[test]
fn bad_reject_replaced_codes_are_reported_at_their_value() {
    // Line 4 is the `reject` table; the list's second item starts at column 30.
    let text = with_top("[oracles]\nreject = { replaced = [4409, 1005] }");
    assert_eq!(
        problem(&text),
        (
            4,
            30,
            "oracles.reject.replaced: close code 1005 is never sent on the wire (RFC 6455 \
             §7.4.1)"
                .to_string()
        )
    );
    // A code in `close` too: a refusal and a takeover at once. Column 46: the 4409 in
    // replaced.
    let text = with_top("[oracles]\nreject = { close = [1008, 4409], replaced = [4409] }");
    assert_eq!(
        problem(&text),
        (
            4,
            46,
            "oracles.reject.replaced: close code 4409 is in `close` too: a code is either a \
             refusal of the token (close) or a takeover by another connection (replaced), not \
             both"
                .to_string()
        )
    );
    // And in `shed`: load shedding and a takeover at once.
    let (line, column, message) = problem(&with_top(
        "[oracles]\nreject = { shed = [4409], replaced = [4409] }",
    ));
    assert_eq!((line, column), (4, 39), "{message}");
    assert!(
        message.contains(
            "close code 4409 is in `shed` too: a code is either load shedding (shed) or a \
             takeover by another connection (replaced)"
        ),
        "{message}"
    );
    assert_problem(
        &with_top("[oracles]\nreject = { replaced = [409] }"),
        "oracles.reject has replaced = 409; expected at least 1000",
    );
    assert_problem(
        &with_top("[oracles]\nreject = { replaced = [5000] }"),
        "oracles.reject has replaced = 5000; expected at most 4999",
    );
    assert_problem(
        &with_top("[oracles]\nreject = { replaced = 4409 }"),
        "replaced: expected an array",
    );
}

#[test]
fn bad_reject_policy_is_reported_at_its_value() {
    // Line 3 is `[oracles]`, line 4 the `reject` table; the value starts at column 35.
    let text = with_top("[oracles]\nreject = { http = [401], policy = \"loose\" }");
    assert_eq!(
        problem(&text),
        (
            4,
            35,
            "policy: expected one of \"lenient\", \"strict\", found \"loose\"".to_string()
        )
    );
    let text = with_top("[oracles]\nreject = { policy = true }");
    let (line, column, message) = problem(&text);
    assert_eq!((line, column), (4, 21), "{message}");
    assert!(message.contains("policy: expected a string"), "{message}");
}

#[test]
fn bad_session_oracles_are_reported() {
    let bad =
        |body: &str, needle: &str| assert_problem(&with_top(&format!("[oracles]\n{body}")), needle);
    bad(
        "exclusive = { max_live = 0 }",
        "oracles.exclusive has max_live = 0; expected at least 1",
    );
    bad(
        "exclusive = { per = \"user\" }",
        "missing required field \"max_live\" in oracles.exclusive",
    );
    bad(
        "exclusive = { max = 1 }",
        "unknown field \"max\" in oracles.exclusive; expected one of: max_live, per; did you \
         mean \"max_live\"?",
    );
    bad(
        "exclusive = 1",
        "oracles.exclusive: expected { max_live = 1 }, true or false, found an integer",
    );
    bad(
        "exclusive = { max_live = 1, per = \"group\" }",
        "oracles.exclusive.per: expected \"token\" or \"user\", found \"group\"",
    );
    bad(
        "liveness = \"500ms\"",
        "oracles.liveness: expected { grace = \"500ms\", cleanup = \"0ms\" }, true or false, found \"500ms\"",
    );
    bad(
        "liveness = { grace = \"soon\" }",
        "grace: expected a duration",
    );
    bad(
        "reject = { http = [200] }",
        "oracles.reject has http = 200; expected at least 400",
    );
    bad(
        "reject = { close = [1006] }",
        "oracles.reject.close: close code 1006 is never sent on the wire",
    );
    bad(
        "reject = { close = [999] }",
        "oracles.reject has close = 999; expected at least 1000",
    );
    bad(
        "reject = { http = [], close = [] }",
        "oracles.reject: no clean way to refuse is left",
    );
    bad(
        "reject = { http = \"401\" }",
        "http: expected an array, found a string",
    );
    bad(
        "reject = { codes = [401] }",
        "unknown field \"codes\" in oracles.reject",
    );
    bad("consistency = \"yes\"", "consistency: expected a boolean");
    bad("accepted = \"101\"", "oracles.accepted: expected \"upgrade\", \"first_frame\" or { message = \"connection_established\" }, found \"101\"");
    bad(
        "accepted = { message = \"\" }",
        "oracles.accepted has message = \"\"",
    );
    bad("exclusiv = true", "unknown field \"exclusiv\" in [oracles]; expected one of: type_field, error_event, identity, sequence, max_buffered, max_buffered_bytes, exclusive, liveness, reject, idle_timeout, idle_close, max_lifetime, consistency, accepted, kinds, record_separator, framing, embedded_json, batched, learn");
}

/// `idle_timeout` declares how long the server lets a connection sit idle before closing
/// it; left out, none is declared. A value that is no duration, or zero, is reported at
/// the value (line 4 of the file, column 16 after `idle_timeout = `).
#[test]
fn idle_timeout_is_a_positive_duration_reported_at_its_value() {
    let loaded = load(&with_top("[oracles]\nidle_timeout = \"2s\""));
    assert_eq!(loaded.oracles.idle_timeout, Some(ms(2000)));
    assert_eq!(
        load(&with_top("[oracles]\nlearn = true"))
            .oracles
            .idle_timeout,
        None
    );
    let (line, column, message) = problem(&with_top("[oracles]\nidle_timeout = \"soon\""));
    assert_eq!((line, column), (4, 16), "{message}");
    assert!(
        message.starts_with("idle_timeout: expected a duration"),
        "{message}"
    );
    assert_eq!(
        problem(&with_top("[oracles]\nidle_timeout = \"0s\"")),
        (
            4,
            16,
            "[oracles] has idle_timeout = \"0s\"; expected more than zero".to_string()
        )
    );
    assert_problem(
        &with_top("[oracles]\nidle_timeout = 2"),
        "idle_timeout: expected a duration like \"250ms\", \"2s\", \"1m\" (a string with its unit), found the integer 2",
    );
}

/// `max_lifetime` declares how long the server lets any connection live before closing
/// it; left out, none is declared. A value that is no duration, or zero, is reported at
/// the value (line 4 of the file, column 16 after `max_lifetime = `).
#[test]
fn max_lifetime_is_a_positive_duration_reported_at_its_value() {
    let loaded = load(&with_top("[oracles]\nmax_lifetime = \"2h\""));
    assert_eq!(loaded.oracles.max_lifetime, Some(ms(7_200_000)));
    assert_eq!(
        load(&with_top("[oracles]\nlearn = true"))
            .oracles
            .max_lifetime,
        None
    );
    let (line, column, message) = problem(&with_top("[oracles]\nmax_lifetime = \"soon\""));
    assert_eq!((line, column), (4, 16), "{message}");
    assert!(
        message.starts_with("max_lifetime: expected a duration"),
        "{message}"
    );
    assert_eq!(
        problem(&with_top("[oracles]\nmax_lifetime = \"0s\"")),
        (
            4,
            16,
            "[oracles] has max_lifetime = \"0s\"; expected more than zero".to_string()
        )
    );
    assert_problem(
        &with_top("[oracles]\nmax_lifetime = 2"),
        "max_lifetime: expected a duration like \"250ms\", \"2s\", \"1m\" (a string with its unit), found the integer 2",
    );
}

/// `idle_close = [1008]` says what this server's 1008 means: a `reject.close` left to its
/// default gives 1008 up (as it does for `replaced`), while one the scenario wrote with
/// 1008 still clashes; a default close emptied with no HTTP status left is reported.
#[test]
fn idle_close_takes_its_codes_from_a_default_reject_close() {
    let default = SessionOracles::default().reject;
    assert!(default.close.contains(&1008), "{default:?}");
    let s = load(&with_top(
        "[oracles]\nidle_timeout = \"2s\"\nidle_close = [1008]",
    ));
    assert_eq!(s.oracles.idle_close, [1008]);
    assert!(
        !s.oracles.session.reject.close.contains(&1008),
        "{:?}",
        s.oracles.session.reject
    );
    assert_eq!(s.oracles.session.reject.http, default.http);
    let (_, _, message) = problem(&with_top(
        "[oracles]\nidle_timeout = \"2s\"\nidle_close = [1008]\nreject = { close = [1008, 4001] }",
    ));
    assert!(
        message.contains("close code 1008 is in `reject.close` too"),
        "{message}"
    );
    let (_, _, message) = problem(&with_top(
        "[oracles]\nidle_timeout = \"2s\"\nidle_close = [1008]\nreject = { http = [] }",
    ));
    assert!(
        message.contains("no clean way to refuse is left"),
        "{message}"
    );
}

/// `idle_close` names the Close codes of the server's idle timeout (default 1000 and
/// 1001), beside `idle_timeout`; a code no server can send, one out of range, one a
/// `reject` list already gives a meaning, an empty list or the list alone is reported at
/// the value.
#[test]
fn idle_close_lists_sendable_close_codes_beside_idle_timeout() {
    let defaults = load(&with_top("[oracles]\nidle_timeout = \"2s\""));
    assert_eq!(defaults.oracles.idle_close, [1000, 1001]);
    let discord = load(&with_top(
        "[oracles]\nidle_timeout = \"2s\"\nidle_close = [4009, 1000]",
    ));
    assert_eq!(discord.oracles.idle_close, [4009, 1000]);
    let (line, column, message) = problem(&with_top(
        "[oracles]\nidle_timeout = \"2s\"\nidle_close = [1000, 1006]",
    ));
    assert_eq!((line, column), (5, 21), "{message}");
    assert!(
        message.contains("close code 1006 is never sent on the wire"),
        "{message}"
    );
    let (line, column, message) = problem(&with_top(
        "[oracles]\nidle_timeout = \"2s\"\nidle_close = []",
    ));
    assert_eq!((line, column), (5, 14), "{message}");
    assert!(
        message.starts_with("[oracles] idle_close is empty"),
        "{message}"
    );
    let (_, _, message) = problem(&with_top(
        "[oracles]\nidle_timeout = \"2s\"\nidle_close = [999]",
    ));
    assert!(message.contains("idle_close"), "{message}");
    // One problem, at the item: the list is not also called empty.
    let out_of_range = problems(&with_top(
        "[oracles]\nidle_timeout = \"2s\"\nidle_close = [999]",
    ));
    assert_eq!(out_of_range.len(), 1, "{out_of_range:#?}");
    let (line, column, message) = problem(&with_top("[oracles]\nidle_close = [4009]"));
    assert_eq!((line, column), (4, 14), "{message}");
    assert!(
        message.starts_with("[oracles] idle_close without idle_timeout"),
        "{message}"
    );
    let (line, column, message) = problem(&with_top(
        "[oracles]\nidle_timeout = \"2s\"\nidle_close = [4009, 4429]\nreject = { shed = [4429] }",
    ));
    assert_eq!((line, column), (5, 21), "{message}");
    assert!(
        message.contains("close code 4429 is in `reject.shed` too"),
        "{message}"
    );
    // A code listed twice is reported at its second mention, in any list of codes.
    let (line, column, message) = problem(&with_top(
        "[oracles]\nidle_timeout = \"2s\"\nidle_close = [4009, 4009]",
    ));
    assert_eq!((line, column), (5, 21), "{message}");
    assert!(
        message.contains("idle_close listing 4009 twice"),
        "{message}"
    );
    let (line, column, message) =
        problem(&with_top("[oracles]\nreject = { http = [401, 403, 401] }"));
    assert_eq!((line, column), (4, 30), "{message}");
    assert!(
        message.starts_with("oracles.reject has http listing 401 twice"),
        "{message}"
    );
}
