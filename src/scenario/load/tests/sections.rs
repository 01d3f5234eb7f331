//! Groups, `[auth]`, `[limits]` and `[oracles]`.

use super::*;

#[test]
fn groups_are_checked() {
    let two = format!("{}{GROUP}", with_top(""));
    let (line, column, message) = problem(&two);
    assert_eq!((line, column), (9, 8));
    assert_eq!(message, "duplicate group name \"g\" (first used on line 5)");
    let group = |body: &str| {
        format!("name = \"t\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{{ think = \"1ms\" }}]\n{body}\n")
    };
    assert_problem(
        &group("connections_per_user = 0"),
        "group \"g\" has connections_per_user = 0; expected at least 1",
    );
    assert_problem(
        &group("token = \"shared\""),
        "token: expected \"per-connection\", \"per-user\", \"cross-user\" or { share = 4 }, found \"shared\"",
    );
    assert_problem(
        &group("jitter = \"5 sec\""),
        "jitter: expected a distribution like",
    );
    assert_problem(&group("arrival = \"now\""), "arrival: expected \"burst\"");
    assert_problem(
        &group("arrival = \"bursts\""),
        "found \"bursts\"; did you mean \"burst\"?",
    );
    assert_problem(
        &group("placement = \"headr\""),
        "placement: expected \"header\", \"query\", \"subprotocol\", \"cookie\", \
         \"first_message\", \"none\" or a table like { header = \"X-Token\" } or { first_text = \"AUTH {{token}}\" }, found \"headr\"; \
         did you mean \"header\"?",
    );
    assert_problem(
        &group("arrival = { rate = \"0/s\" }"),
        "rate: expected a positive rate",
    );
    assert_problem(
        &group("arrival = { ramp = \"1s\", rate = \"1/s\" }"),
        "arrival has both \"ramp\" and \"rate\"",
    );
    assert_problem(
        &group("arrival = { rmap = \"1s\" }"),
        "arrival needs one of: ramp, rate, burst, collide; found: rmap; did you mean \"ramp\"?",
    );
    assert_problem(
        &group("arrival = { start = \"1s\" }"),
        "arrival needs one of: ramp, rate, burst",
    );
    assert_problem(
        &group("arrival = { burst = \"1s\", start = \"1s\" }"),
        "unknown field \"start\" in arrival; expected one of: burst",
    );
    let arrival = |a: &str| {
        load(&group(&format!("arrival = {a}"))).groups[0]
            .arrival
            .clone()
    };
    assert_eq!(arrival("\"burst\""), Arrival::Burst { at: Duration::ZERO });
    assert_eq!(
        arrival("{ burst = \"2s\" }"),
        Arrival::Burst { at: ms(2000) }
    );
    assert_eq!(
        arrival("{ ramp = \"5s\", start = \"1s\" }"),
        Arrival::Ramp {
            start: ms(1000),
            over: ms(5000)
        }
    );
    assert_eq!(
        arrival("{ rate = \"200/s\" }"),
        Arrival::Rate {
            start: Duration::ZERO,
            per_sec: 200.0
        }
    );
}

#[test]
fn auth_variants() {
    let auth = |body: &str| load(&with_top(&format!("[auth]\n{body}"))).auth;
    let placement = |p: &str| auth(&format!("placement = {p}")).placement;
    assert_eq!(
        placement("\"query\""),
        Placement::Query {
            param: "token".into()
        }
    );
    assert_eq!(placement("\"none\""), Placement::None);
    assert_eq!(
        placement("\"subprotocol\""),
        Placement::Subprotocol {
            offer: vec!["jwt-auth".into()],
            prefix: "jwt.".into()
        }
    );
    assert_eq!(
        placement("{ header = \"Authorization\" }"),
        Placement::Header {
            name: "Authorization".into(),
            prefix: "Bearer ".into()
        }
    );
    assert_eq!(
        placement("{ header = \"X-T\", prefix = \"T \" }"),
        Placement::Header {
            name: "X-T".into(),
            prefix: "T ".into()
        }
    );
    assert_eq!(
        placement("{ query = \"access_token\" }"),
        Placement::Query {
            param: "access_token".into()
        }
    );
    assert_eq!(
        placement("{ subprotocol = \"jwt.\", offer = [\"a\", \"b\"] }"),
        Placement::Subprotocol {
            offer: vec!["a".into(), "b".into()],
            prefix: "jwt.".into()
        }
    );
    assert_eq!(
        auth("secret = { env = \"S\" }").secret,
        SecretSource::Env {
            name: "S".into(),
            default: None
        }
    );
    assert_eq!(
        auth("secret = { value = \"v\" }").secret,
        SecretSource::Literal { value: "v".into() }
    );
    assert_eq!(auth("ttl = \"1h\"").ttl, ms(3_600_000));
}

#[test]
fn bad_auth_is_reported() {
    let bad =
        |body: &str, needle: &str| assert_problem(&with_top(&format!("[auth]\n{body}")), needle);
    bad(
        "placement = \"pigeon\"",
        "auth.placement: expected \"header\", \"query\", \"subprotocol\", \"cookie\", \"first_message\", \"none\"",
    );
    bad(
        "placement = { header = \"X T\" }",
        "\"X T\" is not a valid HTTP header name",
    );
    bad(
        "placement = { query = \"a&b\" }",
        "query parameter \"a&b\" may only use",
    );
    bad(
        "placement = { query = \"t\", prefix = \"x\" }",
        "unknown field \"prefix\" in auth.placement; expected one of: query",
    );
    bad(
        "placement = { subprotocol = \"jwt.\", offer = [\"a b\"] }",
        "offer: \"a b\" is not a valid subprotocol name",
    );
    bad(
        "secret = { env = \"A\", file = \"b\" }",
        "auth.secret has both \"env\" and \"file\"",
    );
    bad(
        "secret = { path = \"b\" }",
        "auth.secret needs one of: env, file, value; found: path",
    );
    bad(
        "secret = { file = \"\" }",
        "auth.secret has file = \"\"; expected a non-empty string",
    );
    bad(
        "secret = \"hunter2\"",
        "secret: expected a table saying where the key comes from",
    );
    bad(
        "ttl = \"0s\"",
        "[auth] has ttl = \"0s\"; expected more than zero",
    );
    bad(
        "algo = \"HS256\"",
        "unknown field \"algo\" in [auth]; expected one of: secret, alg, key, public_key, sub, ttl, aud, iss, claims, placement, headers, origin",
    );
}

#[test]
fn limits_and_oracles_are_checked() {
    let bad = |top: &str, needle: &str| assert_problem(&with_top(top), needle);
    bad(
        "[limits]\nmax_message_bytes = 10",
        "[limits] has max_message_bytes = 10; expected at least 1024",
    );
    bad(
        "[limits]\nhandshake_timeout = \"0s\"",
        "expected more than zero",
    );
    bad("[limits]\nsend_timeout = \"0s\"", "expected more than zero");
    bad(
        "[oracles]\nmax_buffered = 0",
        "[oracles] has max_buffered = 0; expected at least 1",
    );
    bad(
        "[oracles]\nidentity = { feild = \"u\" }",
        "unknown field \"feild\" in oracles.identity; expected one of: field",
    );
    bad(
        "[oracles]\nidentity = {}",
        "missing required field \"field\" in oracles.identity",
    );
    // A misspelling of the required key is one problem, at it: not "missing" too.
    let misspelled = problems(&with_top("[oracles]\nidentity = { feild = \"u\" }"));
    assert_eq!(misspelled.len(), 1, "{misspelled:?}");
    assert!(
        misspelled[0].message.ends_with("did you mean \"field\"?"),
        "{misspelled:?}"
    );
    bad(
        "[oracles]\nsequence = 7",
        "oracles.sequence: expected a field path (\"user_id\") or a table ({ field = \"user_id\" }), found an integer",
    );
    bad(
        "[oracles]\ntype_field = \"\"",
        "[oracles] has type_field = \"\"",
    );
    let limits = load(&with_top("[limits]\nmax_message_bytes = 2048")).limits;
    assert_eq!(
        limits,
        Limits {
            max_message_bytes: 2048,
            handshake_timeout: ms(10_000),
            send_timeout: ms(10_000),
            max_in_flight: 256,
        }
    );
}
