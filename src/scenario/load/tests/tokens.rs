//! `[auth]`: algorithms and keys, claims, extra headers, `Origin`, and the cookie and
//! first-message placements.

use super::*;
use serde_json::json;

fn auth(body: &str) -> AuthSpec {
    load(&with_top(&format!("[auth]\n{body}"))).auth
}

fn bad_auth(body: &str, needle: &str) {
    assert_problem(&with_top(&format!("[auth]\n{body}")), needle);
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
    let pem = String::from_utf8(crate::auth::tests::fixture("ec-private.pem")).unwrap();
    assert_eq!(
        auth(&format!("alg = \"ES256\"\nkey = {{ value = '''{pem}''' }}")).alg,
        JwtAlg::Es256
    );
    // A literal key is checked as a file's is.
    bad_auth(
        "alg = \"ES256\"\nkey = { value = \"pem\" }",
        "auth.key.value: ES256 needs a P-256 EC private key in PKCS#8 PEM \
         (-----BEGIN PRIVATE KEY-----); the value is not PEM",
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
        "auth.key: expected a table saying where the key comes from",
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
            template: init.clone(),
            text: false,
            after: None
        }
    );
    assert_eq!(
        placement("{ first_message = { type = \"connection_init\", payload = { token = \"{{token}}\" } } }"),
        Placement::FirstMessage {
            template: init,
            text: false,
            after: None
        }
    );
    assert_eq!(
        placement("{ first_message = '{\"type\": \"auth\", \"jwt\": \"Bearer {{ token }}\"}' }"),
        Placement::FirstMessage {
            template: json!({"type": "auth", "jwt": "Bearer {{ token }}"}),
            text: false,
            after: None
        }
    );
    assert_eq!(
        placement("{ first_text = \"AUTH {{token}} {{user}}\" }"),
        Placement::FirstMessage {
            template: json!("AUTH {{token}} {{user}}"),
            text: true,
            after: None
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
        "placement = { first_text = \"AUTH\" }",
        "auth.placement first_text: the text never uses {{token}}",
    );
    bad_auth(
        "placement = { first_text = \"AUTH {{token}} {{run}}\" }",
        "placeholder not available \"{{run}}\" in auth.placement first_text",
    );
    bad_auth(
        "placement = { first_message = '{\"t\": ' }",
        "auth.placement first_message: not valid JSON text",
    );
    bad_auth("placement = { first_message = { t = \"{{run}}\", u = \"{{token}}\" } }", "placeholder not available \"{{run}}\" in auth.placement first_message; expected one of: {{token}}, {{user}}, {{conn}}, {{group}}, {{sub}}");
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
fn token_sources_load() {
    assert_eq!(
        auth(r#"tokens = { file = "tokens.txt" }"#).tokens,
        Some(TokenSource::File {
            path: "tokens.txt".into()
        })
    );
    assert_eq!(
        auth(r#"tokens = { list = ["a-token", "b-token"] }"#).tokens,
        Some(TokenSource::List {
            values: vec!["a-token".into(), "b-token".into()]
        })
    );
    assert_eq!(
        auth(r#"tokens = { command = "./tokens.sh", timeout = "2s" }"#).tokens,
        Some(TokenSource::Command {
            run: "./tokens.sh".into(),
            dir: None,
            timeout: Duration::from_secs(2)
        })
    );
    let login = auth(
        r#"tokens = { login = "http://127.0.0.1:1/login", body = '{"user":"u{{user}}"}', token = "data.token", headers = { "X-Api" = "k" } }"#,
    )
    .tokens;
    let Some(TokenSource::Login(login)) = login else {
        panic!("{login:?}")
    };
    assert_eq!(login.method, "POST");
    assert_eq!(login.body.as_deref(), Some(r#"{"user":"u{{user}}"}"#));
    assert_eq!(login.token, "data.token");
    assert_eq!(login.headers, vec![("X-Api".into(), "k".into())]);
}

#[test]
fn token_source_mistakes_are_named() {
    bad_auth(
        r#"tokens = { file = "a", list = ["b"] }"#,
        "has both \"file\" and \"list\"",
    );
    bad_auth(r#"tokens = { list = [] }"#, "expected at least one token");
    bad_auth(r#"tokens = { list = ["a\nb"] }"#, "one line");
    bad_auth(
        r#"tokens = { login = "ws://x/login", token = "t" }"#,
        "http:// or https://",
    );
    bad_auth(
        r#"tokens = { login = "http://x/login" }"#,
        "missing required field \"token\"",
    );
    bad_auth(
        r#"tokens = { login = "http://x/{{run}}", token = "t" }"#,
        "run",
    );
    bad_auth(
        r#"tokens = { login = "http://x/", token = "a..b" }"#,
        "empty part",
    );
    bad_auth(
        r#"tokens = { command = "x", tiemout = "1s" }"#,
        "did you mean",
    );
}

/// A login URL's port is checked as the target's is (an HTTP client would take `:99999`
/// for no port and ask the scheme's default), at the URL, never showing a value that
/// came from the environment.
#[test]
fn a_login_url_with_an_invalid_port_is_refused_at_the_url() {
    for bad in ["99999", "abc", "0", ""] {
        let text = with_top(&format!(
            "[auth]\ntokens = {{ login = \"http://127.0.0.1:{bad}/login\", token = \"t\" }}"
        ));
        let (line, column, message) = problem(&text);
        assert_eq!(
            message,
            format!("auth.tokens.login: invalid port {bad:?}: expected a number from 1 to 65535")
        );
        // `tokens = { login = ` is 19 characters: the URL starts at column 20.
        assert_eq!((line, column), (4, 20), "{message}");
    }
    let fine = auth(r#"tokens = { login = "https://h:8443/login", token = "t" }"#);
    assert!(matches!(fine.tokens, Some(TokenSource::Login(_))));
}

/// A compact JWT (unsigned: the loader never verifies) with these claims.
fn literal_jwt(claims: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims)
    )
}

/// One token listed twice would be labelled `list#1` and `list#3` and judged as two
/// sessions: a server refusing its second concurrent use would read as a liveness
/// violation. The loader refuses it at the repeated entry, by position, never showing it.
#[test]
fn a_token_listed_twice_is_named_by_position_at_the_repeat() {
    let text = with_top(
        "[auth]\ntokens = { list = [\"secret-tok-a\", \"secret-tok-b\", \"secret-tok-a\"] }",
    );
    let all = problems(&text);
    assert_eq!(all.len(), 1, "{all:#?}");
    let p = &all[0];
    // The third entry, where the repeat is.
    assert_eq!((p.line, p.column), (4, 52), "{p:?}");
    assert!(
        p.message
            .starts_with("auth.tokens.list: entries 1 and 3 are the same token; "),
        "{}",
        p.message
    );
    assert!(p.message.contains("give each token once"), "{}", p.message);
    assert!(!p.message.contains("secret-tok"), "{}", p.message);
}

/// Every repeat is its own problem, each naming the entry it repeats; different tokens
/// load as ever.
#[test]
fn every_repeated_entry_is_reported() {
    let text = with_top("[auth]\ntokens = { list = [\"t-1\", \"t-2\", \"t-2\", \"t-1\"] }");
    let said: Vec<String> = problems(&text).into_iter().map(|p| p.message).collect();
    assert_eq!(said.len(), 2, "{said:#?}");
    assert!(
        said[0].contains("entries 2 and 3 are the same token"),
        "{said:#?}"
    );
    assert!(
        said[1].contains("entries 1 and 4 are the same token"),
        "{said:#?}"
    );
    let fine = auth(r#"tokens = { list = ["t-1", "t-2", "t-3"] }"#);
    assert!(matches!(fine.tokens, Some(TokenSource::List { values }) if values.len() == 3));
}

/// Literal JWTs whose texts differ (another `exp`) but whose `jti` is one are one token to
/// a server that keys its sessions by `jti`.
#[test]
fn literal_jwts_with_one_jti_are_the_same_token() {
    let a = literal_jwt(r#"{"sub":"u1","jti":"j-1","exp":2000000000}"#);
    let b = literal_jwt(r#"{"sub":"u2","jti":"j-2","exp":2000000000}"#);
    let a_again = literal_jwt(r#"{"sub":"u1","jti":"j-1","exp":2000000001}"#);
    let text = with_top(&format!(
        "[auth]\ntokens = {{ list = [\"{a}\", \"{b}\", \"{a_again}\"] }}"
    ));
    let (line, _, message) = problem(&text);
    assert_eq!(line, 4);
    assert!(
        message.contains("entries 1 and 3 are JWTs with the same jti"),
        "{message}"
    );
    assert!(
        !message.contains("j-1") && !message.contains(&a),
        "{message}"
    );
    let fine = format!("tokens = {{ list = [\"{a}\", \"{b}\"] }}");
    assert!(auth(&fine).tokens.is_some());
}

/// A token file is held to the same rule, by line (as the run labels its tokens,
/// `file#N`), at the `file` key.
#[test]
fn a_token_file_with_a_repeated_line_is_named_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(
        &path,
        with_top("[auth]\ntokens = { file = \"tokens.txt\" }"),
    )
    .unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(
        &tokens,
        "tok-one\ntok-two\n\n  tok-one \ntok-two\ntok-one\n",
    )
    .unwrap();
    let Err(ScenarioError::Invalid { problems }) = load_file(&path) else {
        panic!("a token file with repeats loaded");
    };
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!((p.line, p.column), (4, 19), "{p:?}");
    let want = format!(
        "auth.tokens.file: in {:?}, lines 1 and 4 are the same token (and 2 more repeated lines); ",
        tokens.display().to_string()
    );
    assert!(p.message.starts_with(&want), "{}", p.message);
    assert!(!p.message.contains("tok-"), "{}", p.message);
    std::fs::write(&tokens, "tok-one\ntok-two\n").unwrap();
    assert!(load_file(&path).is_ok());
}

/// A token file that is not UTF-8 is named by its own path, line and column, at the
/// scenario's `file` key.
#[test]
fn a_token_file_that_is_not_utf8_names_its_own_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(
        &path,
        with_top("[auth]\ntokens = { file = \"tokens.txt\" }"),
    )
    .unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, b"tok-one\ntok-\xE9two\n").unwrap();
    let Err(ScenarioError::Invalid { problems }) = load_file(&path) else {
        panic!("a Latin-1 token file loaded");
    };
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let want = format!(
        "{}:2:5: not UTF-8 (byte 0xE9); a token file must be UTF-8",
        tokens.display()
    );
    assert!(
        problems[0].message.contains(&want),
        "{}",
        problems[0].message
    );
}

/// A private key of the wrong kind for `alg` is found when the scenario loads (so
/// `validate` says it), at the `file` key, in words: which key the algorithm needs and
/// what the file holds, never the key.
#[test]
fn a_private_key_of_the_wrong_kind_is_told_at_its_file_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    let key = dir.path().join("k.pem");
    let fixture = crate::auth::tests::fixture;
    for (alg, pem, holds) in [
        (
            "RS256",
            fixture("ec-private.pem"),
            "holds an EC private key",
        ),
        (
            "ES256",
            fixture("rsa-private-pkcs1.pem"),
            "holds an RSA private key",
        ),
        ("RS256", b"not a key\n".to_vec(), "is not PEM"),
        ("ES256", fixture("ec-public.pem"), "holds a public key"),
    ] {
        let scenario = format!("[auth]\nalg = \"{alg}\"\nkey = {{ file = \"k.pem\" }}");
        std::fs::write(&path, with_top(&scenario)).unwrap();
        std::fs::write(&key, &pem).unwrap();
        let Err(ScenarioError::Invalid { problems }) = load_file(&path) else {
            panic!("{alg} loaded with a key that cannot sign it");
        };
        assert_eq!(problems.len(), 1, "{problems:#?}");
        let p = &problems[0];
        assert_eq!((p.line, p.column), (5, 16), "{p:?}");
        let needs = format!("auth.key.file: {alg} needs ");
        assert!(p.message.starts_with(&needs), "{}", p.message);
        let holds = format!("; {} {holds}", key.display());
        assert!(p.message.contains(&holds), "{}", p.message);
        assert!(!p.message.contains("MII"), "{}", p.message);
    }
    std::fs::write(&key, fixture("rsa-private.pem")).unwrap();
    let scenario = "[auth]\nalg = \"RS256\"\nkey = { file = \"k.pem\" }";
    std::fs::write(&path, with_top(scenario)).unwrap();
    assert!(load_file(&path).is_ok());
}

/// `[auth] public_key` (what the built-in server verifies with) is told as `key` is, at
/// its file key, when `validate` reads it: not first when the run starts.
#[test]
fn a_public_key_of_the_wrong_kind_is_told_at_its_file_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    let (key, public) = (dir.path().join("k.pem"), dir.path().join("p.pem"));
    let fixture = crate::auth::tests::fixture;
    std::fs::write(&key, fixture("rsa-private.pem")).unwrap();
    let scenario =
        "[auth]\nalg = \"RS256\"\nkey = { file = \"k.pem\" }\npublic_key = { file = \"p.pem\" }";
    std::fs::write(&path, with_top(scenario)).unwrap();
    for (pem, holds) in [
        (
            fixture("ec-public.pem"),
            "holds a public key of another algorithm",
        ),
        (b"not a key\n".to_vec(), "is not PEM"),
        (
            fixture("ec-private.pem"),
            "holds an EC private key, not a public key",
        ),
    ] {
        std::fs::write(&public, &pem).unwrap();
        let Err(ScenarioError::Invalid { problems }) = load_file(&path) else {
            panic!("loaded with a public key RS256 cannot verify with");
        };
        assert_eq!(problems.len(), 1, "{problems:#?}");
        let message = &problems[0].message;
        assert!(
            message.starts_with("auth.public_key.file: RS256 needs an RSA public key"),
            "{message}"
        );
        assert!(
            message.contains(&format!("; {} {holds}", public.display())),
            "{message}"
        );
        assert!(!message.contains("MII"), "{message}");
    }
    std::fs::write(&public, fixture("rsa-public.pem")).unwrap();
    assert!(load_file(&path).is_ok());
}

/// `first_text` is told once what is wrong with it (not also "never uses {{token}}" when
/// its own problem is another), named where a text protocol's user looks first, and
/// spelled out as a STOMP CONNECT frame is taken as written.
#[test]
fn a_first_text_is_told_its_own_problem_once_and_pointed_to() {
    for (value, said) in [
        ("3", "first_text: expected a string, found an integer"),
        ("\"AUTH {{TOKEN}}\"", "did you mean \"{{token}}\"?"),
        ("\"AUTH {{token\"", "unclosed \"{{\""),
        (
            "\"AUTH\"",
            "auth.placement first_text: the text never uses {{token}}",
        ),
    ] {
        let (_, _, message) = problem(&with_top(&format!(
            "[auth]\nplacement = {{ first_text = {value} }}"
        )));
        assert!(message.contains(said), "{value}: {message}");
    }
    bad_auth(
        "placement = \"first_text\"",
        "first_text takes the text to send: { first_text = \"AUTH {{token}}\" }",
    );
    bad_auth(
        "placement = { first_message = \"AUTH {{token}}\" }",
        "not valid JSON text: expected value at line 1 column 1 (a protocol of text lines \
         sends its first message with { first_text = \"AUTH {{token}}\" })",
    );
    let stomp = "[auth]\nplacement = { first_text = \"CONNECT\\naccept-version:1.2\\npasscode:{{token}}\\n\\n\\u0000\" }\n\
                 [oracles]\nframing = \"stomp\"";
    load(&with_top(stomp));
}

/// `after` holds the first message until the server's challenge: it loads beside
/// `first_message` and `first_text`; empty, it is refused at its key; and without an
/// acceptance told by a message (the challenge, or the 101, would read as the server
/// taking a token it has not seen) the file is refused at `[auth]`, or at the group
/// whose placement it is.
#[test]
fn a_first_message_after_a_challenge_loads_and_needs_a_message_to_accept() {
    let accepted = "[oracles]\naccepted = { message = \"auth_ok\" }\n";
    let with = |placement: &str| with_top(&format!("[auth]\nplacement = {placement}\n{accepted}"));
    let loaded = load(&with(
        "{ first_message = { type = \"auth\", access_token = \"{{token}}\" }, after = \"auth_required\" }",
    ));
    assert_eq!(
        loaded.auth.placement,
        Placement::FirstMessage {
            template: json!({"type": "auth", "access_token": "{{token}}"}),
            text: false,
            after: Some("auth_required".into())
        }
    );
    let text = load(&with(
        "{ first_text = \"AUTH {{token}}\", after = \"HELLO\" }",
    ));
    assert!(
        matches!(&text.auth.placement, Placement::FirstMessage { text: true, after: Some(k), .. } if k == "HELLO"),
        "{:?}",
        text.auth.placement
    );
    assert_problem(
        &with("{ first_message = { token = \"{{token}}\" }, after = \"\" }"),
        "auth.placement after: expected the kind of the server's record that asks for the token",
    );
    // Under the default first-frame rule: refused, saying what to set.
    let unaccepted = with_top(
        "[auth]\nplacement = { first_message = { token = \"{{token}}\" }, after = \"auth_required\" }\n",
    );
    assert_problem(
        &unaccepted,
        "auth: placement's first message waits for the server's \"auth_required\"",
    );
    assert_problem(
        &unaccepted,
        "set [oracles] accepted = { message = \"...\" }",
    );
    // Accepted by the challenge itself: refused too.
    assert_problem(
        &with_top(
            "[auth]\nplacement = { first_message = { token = \"{{token}}\" }, after = \"auth_required\" }\n[oracles]\naccepted = { message = \"auth_required\" }\n",
        ),
        "auth: [oracles] accepted = { message = \"auth_required\" } names the challenge",
    );
    // `after` belongs to the in-band placements only.
    assert_problem(
        &with("{ header = \"X-Token\", after = \"hi\" }"),
        "unknown field \"after\"",
    );
}
