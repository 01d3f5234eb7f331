//! Issue 3 syntax: `[auth]` keys and algorithms, placements, a group's `token`, `forge`
//! and `placement`, `abort_handshake`, and the session oracles of `[oracles]`.

use super::*;
use serde_json::json;

fn auth(body: &str) -> AuthSpec {
    load(&with_top(&format!("[auth]\n{body}"))).auth
}

fn bad_auth(body: &str, needle: &str) {
    assert_problem(&with_top(&format!("[auth]\n{body}")), needle);
}

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
fn auth_algorithms_keys_and_claims_load() {
    let a = auth(
        r#"alg = "RS256"
key = { file = "jwt.pem" }
public_key = { env = "JWT_PUBLIC", default = "pem" }
aud = "api"
iss = "https://issuer.example"
claims = { role = "admin", scope = ["a", "b"], n = 1 }
headers = { "X-Client" = "stampede", "User-Agent" = "stampede/0.1" }
origin = "https://app.example""#,
    );
    assert_eq!(a.alg, JwtAlg::Rs256);
    assert_eq!(
        a.key,
        Some(SecretSource::File {
            path: "jwt.pem".into()
        })
    );
    assert_eq!(
        a.public_key,
        Some(SecretSource::Env {
            name: "JWT_PUBLIC".into(),
            default: Some("pem".into())
        })
    );
    assert_eq!(
        (a.aud.as_deref(), a.iss.as_deref()),
        (Some("api"), Some("https://issuer.example"))
    );
    assert_eq!(
        serde_json::Value::Object(a.claims),
        json!({"role": "admin", "scope": ["a", "b"], "n": 1})
    );
    assert_eq!(
        a.headers,
        vec![
            ("X-Client".into(), "stampede".into()),
            ("User-Agent".into(), "stampede/0.1".into())
        ]
    );
    assert_eq!(a.origin.as_deref(), Some("https://app.example"));
    for alg in JwtAlg::ALL.into_iter().filter(|a| a.is_hmac()) {
        assert_eq!(auth(&format!("alg = \"{}\"", alg.name())).alg, alg);
    }
    assert_eq!(
        auth("alg = \"ES256\"\nkey = { value = \"pem\" }").alg,
        JwtAlg::Es256
    );
}

#[test]
fn bad_algorithms_and_keys_are_reported() {
    let text = with_top("[auth]\nalg = \"RS512\"");
    let p = &problems(&text)[0];
    assert_eq!((p.line, p.column), (4, 7));
    assert_eq!(p.message, "auth.alg: expected one of \"HS256\", \"HS384\", \"HS512\", \"RS256\", \"ES256\", found \"RS512\"");
    bad_auth(
        "alg = \"RS256\"",
        "missing required field \"key\" in [auth]: RS256 signs with a PEM private key",
    );
    bad_auth(
        "key = { file = \"k.pem\" }",
        "auth.key is for RS256 and ES256; HS256 signs with auth.secret",
    );
    bad_auth(
        "alg = \"HS512\"\npublic_key = { file = \"k.pem\" }",
        "auth.public_key is for RS256 and ES256; HS512 signs",
    );
    bad_auth(
        "alg = \"ES256\"\nkey = { file = \"k\" }\nsecret = { value = \"s\" }",
        "auth.secret is for HS256/384/512; ES256 signs with auth.key",
    );
    bad_auth(
        "alg = \"ES256\"\nkey = \"k.pem\"",
        "auth.key: expected a table, found a string",
    );
    bad_auth(
        "alg = \"ES256\"\nkey = { path = \"k\" }",
        "auth.key needs one of: env, file, value; found: path",
    );
    bad_auth(
        "aud = \"\"",
        "[auth] has aud = \"\"; expected a non-empty string",
    );
    bad_auth("iss = 3", "iss: expected a string, found an integer");
}

#[test]
fn claims_headers_and_origin_are_checked() {
    let text = with_top("[auth]\nclaims = { role = \"x\", exp = 5 }");
    let p = &problems(&text)[0];
    assert_eq!((p.line, p.column), (4, 24));
    assert!(
        p.message
            .starts_with("auth.claims: \"exp\" is set by stampede"),
        "{}",
        p.message
    );
    bad_auth(
        "claims = { when = 1979-05-27 }",
        "auth.claims: 1979-05-27 cannot be sent as JSON",
    );
    bad_auth(
        "claims = { who = \"{{user}}\" }",
        "auth.claims takes no placeholders; found \"{{user}}\"",
    );
    bad_auth(
        "claims = \"role=admin\"",
        "auth.claims: expected a table, found a string",
    );
    bad_auth(
        "headers = { \"Sec-WebSocket-Key\" = \"x\" }",
        "auth.headers: Sec-WebSocket-Key belongs to the WebSocket handshake",
    );
    bad_auth(
        "headers = { Origin = \"x\" }",
        "set Origin with [auth] origin",
    );
    bad_auth(
        "headers = { \"X Y\" = \"x\" }",
        "auth.headers: \"X Y\" is not a valid HTTP header name",
    );
    bad_auth(
        "headers = { X-N = 1 }",
        "auth.headers.X-N: expected a string, found an integer",
    );
    bad_auth(
        "headers = { X-N = \"caf\u{e9}\" }",
        "auth.headers: \"caf\u{e9}\" is not a valid header value",
    );
    bad_auth("origin = \"\"", "auth.origin: expected an origin like");
    bad_auth(
        "origin = \"a\\nb\"",
        "auth.origin: \"a\\nb\" is not a valid header value",
    );
}

#[test]
fn cookie_and_first_message_placements_load() {
    let placement = |p: &str| auth(&format!("placement = {p}")).placement;
    assert_eq!(
        placement("\"cookie\""),
        Placement::Cookie {
            name: "token".into()
        }
    );
    assert_eq!(
        placement("{ cookie = \"session\" }"),
        Placement::Cookie {
            name: "session".into()
        }
    );
    let init = json!({"type": "connection_init", "payload": {"token": "{{token}}"}});
    assert_eq!(
        placement("\"first_message\""),
        Placement::FirstMessage {
            template: init.clone()
        }
    );
    assert_eq!(
        placement("{ first_message = { type = \"connection_init\", payload = { token = \"{{token}}\" } } }"),
        Placement::FirstMessage { template: init }
    );
    assert_eq!(
        placement("{ first_message = '{\"type\": \"auth\", \"jwt\": \"Bearer {{ token }}\"}' }"),
        Placement::FirstMessage {
            template: json!({"type": "auth", "jwt": "Bearer {{ token }}"})
        }
    );
}

#[test]
fn bad_placements_are_reported() {
    bad_auth(
        "placement = { cookie = \"a;b\" }",
        "auth.placement: cookie name \"a;b\" may only use HTTP token characters",
    );
    bad_auth(
        "placement = { cookie = \"\" }",
        "auth.placement has cookie = \"\"",
    );
    bad_auth(
        "placement = { first_message = { type = \"auth\" } }",
        "auth.placement first_message: the message never uses {{token}}",
    );
    bad_auth(
        "placement = { first_message = '{\"t\": ' }",
        "auth.placement first_message: not valid JSON text",
    );
    bad_auth("placement = { first_message = { t = \"{{sub}}\", u = \"{{token}}\" } }", "placeholder not available \"{{sub}}\" in auth.placement first_message; expected one of: {{token}}");
    bad_auth(
        "placement = { first_message = 3 }",
        "auth.placement first_message: expected a table like",
    );
    bad_auth(
        "placement = { cookie = \"a\", query = \"b\" }",
        "auth.placement has both \"query\" and \"cookie\"",
    );
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
            name: "alg-none".into()
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
    assert_eq!(o.max_live, Some(2));
    assert_eq!(o.liveness, Some(LivenessSpec { grace: ms(1000) }));
    assert_eq!(
        o.reject,
        RejectSpec {
            http: vec![401],
            close: vec![1008, 4001]
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
            http: defaults.reject.http,
            close: vec![]
        }
    );
    assert_eq!(oracles("liveness = {}").liveness, defaults.liveness);
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
        "exclusive = { max = 1 }",
        "missing required field \"max_live\" in oracles.exclusive",
    );
    bad(
        "exclusive = 1",
        "oracles.exclusive: expected { max_live = 1 }, true or false, found an integer",
    );
    bad(
        "liveness = \"500ms\"",
        "oracles.liveness: expected { grace = \"500ms\" }, true or false, found \"500ms\"",
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
        "oracles.reject: close code 1006 is never sent on the wire",
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
    bad("exclusiv = true", "unknown field \"exclusiv\" in [oracles]; expected one of: type_field, error_event, identity, sequence, max_buffered, exclusive, liveness, reject, consistency, accepted");
}
