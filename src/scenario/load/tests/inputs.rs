//! Environment variables in values and paths relative to the scenario file.

use super::*;
use std::collections::HashMap;
use std::path::PathBuf;

fn load_env(text: &str, vars: &[(&str, &str)]) -> Result<Scenario, Vec<Problem>> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| vars.get(name).cloned();
    match load_in(text, "t.toml", None, &lookup) {
        Ok(s) => Ok(s),
        Err(ScenarioError::Invalid { problems }) => Err(problems),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn variables_expand_in_any_string_value_with_defaults_and_escapes() {
    let text = with_top(
        "target = \"ws://${HOST}:${PORT:-9000}/ws\"\ndescription = \"cost $${NOT} ${HOST}\"\n[auth]\nheaders = { X-Api-Key = \"${KEY}\" }",
    );
    let s = load_env(&text, &[("HOST", "example.test"), ("KEY", "k-123")]).unwrap();
    // The target is kept as written and expanded only to dial (it may carry a key).
    assert_eq!(s.target.as_deref(), Some("ws://${HOST}:${PORT:-9000}/ws"));
    let dialled = crate::model::url::dial_url(s.target.as_deref().unwrap(), &|name| {
        (name == "HOST").then(|| "example.test".to_string())
    });
    assert_eq!(dialled.as_deref(), Ok("ws://example.test:9000/ws"));
    assert_eq!(s.description.as_deref(), Some("cost ${NOT} example.test"));
    // The header's value is sent, but the plan keeps it as written.
    let [(name, value)] = &s.auth.headers[..] else {
        panic!("{:?}", s.auth.headers)
    };
    assert_eq!((name.as_str(), value.as_str()), ("X-Api-Key", "k-123"));
    assert!(value.is_env());
    let json = serde_json::to_string(&s.auth.headers).unwrap();
    assert_eq!(json, r#"[["X-Api-Key",{"env":"${KEY}"}]]"#);
}

#[test]
fn a_target_with_only_literal_dollar_braces_dials_them_as_written() {
    let s = load_env(&with_top("target = \"ws://h/a$${b}\""), &[]).unwrap();
    let target = s.target.as_deref().unwrap();
    assert_eq!(
        crate::model::url::dial_url(target, &|_| None).as_deref(),
        Ok("ws://h/a${b}")
    );
}

#[test]
fn a_header_with_only_literal_dollar_braces_is_plain() {
    let text = with_top("[auth]\nheaders = { X-A = \"a$${b}\", X-B = \"v\" }");
    let s = load_env(&text, &[]).unwrap();
    let json = serde_json::to_string(&s.auth.headers).unwrap();
    assert_eq!(json, r#"[["X-A","a${b}"],["X-B","v"]]"#);
}

#[test]
fn an_unset_variable_is_located_at_its_reference_and_values_are_never_shown() {
    let text = with_top("target = \"ws://h/${MISSING}\"");
    let problems = load_env(&text, &[]).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    // `target = "ws://h/` is 17 characters: the reference starts at column 18.
    assert_eq!((p.line, p.column), (3, 18), "{p:?}");
    assert!(p.message.contains("MISSING is not set"), "{}", p.message);
    // What the unexpanded value gets wrong follows from it: the unset variable alone
    // (once also `invalid port "${PORT}"`).
    let text = with_top("target = \"ws://127.0.0.1:${PORT}/x\"");
    let problems = load_env(&text, &[]).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].message.contains("PORT is not set"),
        "{problems:#?}"
    );

    // A bad value from the environment is reported by its reference, not its value.
    let text = with_top("target = \"${SECRET_URL}\"");
    let problems = load_env(&text, &[("SECRET_URL", "http://hunter2-secret")]).unwrap_err();
    let message = &problems[0].message;
    assert!(message.contains("${SECRET_URL}"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let text = with_top("description = \"${1BAD}\"");
    let problems = load_env(&text, &[]).unwrap_err();
    assert!(problems[0]
        .message
        .contains("not an environment variable reference"));
}

#[test]
fn secret_files_resolve_against_the_scenario_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("scenarios");
    std::fs::create_dir_all(&sub).unwrap();
    let path = sub.join("s.toml");
    // Loading a file checks the files it names can be opened.
    std::fs::create_dir_all(sub.join("keys")).unwrap();
    std::fs::write(sub.join("keys/secret.txt"), "s3cret-value").unwrap();
    std::fs::write(dir.path().join("abs.txt"), "s3cret-value").unwrap();
    std::fs::write(
        &path,
        with_top("[auth]\nsecret = { file = \"keys/secret.txt\" }"),
    )
    .unwrap();
    let s = load_file(&path).unwrap();
    let SecretSource::File { path: secret } = &s.auth.secret else {
        panic!("{:?}", s.auth.secret)
    };
    assert_eq!(PathBuf::from(secret), sub.join("keys/secret.txt"));
    // An absolute path stays as written; text without a file keeps the working directory.
    let absolute = dir.path().join("abs.txt").display().to_string();
    std::fs::write(
        &path,
        with_top(&format!("[auth]\nsecret = {{ file = {absolute:?} }}")),
    )
    .unwrap();
    let s = load_file(&path).unwrap();
    assert_eq!(s.auth.secret, SecretSource::File { path: absolute });
    let s = load(&with_top("[auth]\nsecret = { file = \"k.txt\" }"));
    assert_eq!(
        s.auth.secret,
        SecretSource::File {
            path: "k.txt".into()
        }
    );
}

#[test]
fn subprotocols_are_one_name_or_a_list_of_http_tokens() {
    let s = load(&with_top("[auth]\nsubprotocol = \"graphql-transport-ws\""));
    assert_eq!(s.auth.subprotocols, ["graphql-transport-ws"]);
    let s = load(&with_top(
        "[auth]\nsubprotocol = [\"v2.json\", \"v1.json\"]",
    ));
    assert_eq!(s.auth.subprotocols, ["v2.json", "v1.json"]);
    let all = problems(&with_top("[auth]\nsubprotocol = \"a, b\""));
    assert!(all[0].message.contains("not a subprotocol name"), "{all:?}");
    let all = problems(&with_top("[auth]\nsubprotocol = []"));
    assert!(all[0].message.contains("at least one"), "{all:?}");
    let all = problems(&with_top("[auth]\nsubprotcol = \"x\""));
    assert!(
        all[0].message.contains("did you mean \"subprotocol\"?"),
        "{all:?}"
    );
}

#[test]
fn a_login_url_and_body_from_the_environment_are_kept_as_written() {
    let text = with_top(
        "[auth]\ntokens = { login = \"http://h/login?key=${KEY}\", body = '{\"pw\": \"${PW}\"}', token = \"t\" }",
    );
    let s = load_env(&text, &[("KEY", "key-value-77"), ("PW", "pw-value-88")]).unwrap();
    let Some(crate::model::TokenSource::Login(login)) = &s.auth.tokens else {
        panic!("{:?}", s.auth.tokens)
    };
    assert_eq!(login.url.as_str(), "http://h/login?key=key-value-77");
    assert_eq!(login.body.as_deref(), Some("{\"pw\": \"pw-value-88\"}"));
    let json = serde_json::to_string(&s.auth).unwrap();
    assert!(
        !json.contains("key-value-77") && !json.contains("pw-value-88"),
        "{json}"
    );
    assert!(json.contains("${KEY}") && json.contains("${PW}"), "{json}");
}

/// A Latin-1 é (0xE9) on line 3, after `description = "caf`: 18 characters before it.
const LATIN1: &[u8] = b"name = \"t\"\nduration = \"10s\"\ndescription = \"caf\xE9\"\n";

#[test]
fn a_scenario_file_that_is_not_utf8_names_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, LATIN1).unwrap();
    let Err(error) = load_file(&path) else {
        panic!("a Latin-1 scenario loaded");
    };
    assert_eq!(
        error.to_string(),
        format!(
            "{}:3:19: not UTF-8 (byte 0xE9); scenario files must be UTF-8",
            path.display()
        )
    );
    let Err(error) = crate::scenario::load_battery_file(&path) else {
        panic!("a Latin-1 battery loaded");
    };
    assert!(
        error
            .to_string()
            .ends_with("bad.toml:3:19: not UTF-8 (byte 0xE9); scenario files must be UTF-8"),
        "{error}"
    );
}

#[test]
fn a_target_password_from_the_environment_may_hold_any_character() {
    let text = with_top("target = \"ws://u:${PW}@example.test:9000/ws\"");
    let s = load_env(&text, &[("PW", "p/w@x#y?z")]).unwrap();
    assert_eq!(
        s.target.as_deref(),
        Some("ws://u:${PW}@example.test:9000/ws")
    );
    // A literal password is kept to dial, and masked in a message about the URL.
    let Err(problems) = load_env(&with_top("target = \"http://u:hunter22@h/\""), &[]) else {
        panic!("an http:// target loaded");
    };
    assert!(
        problems[0].message.ends_with("found \"http://u:***@h/\""),
        "{problems:?}"
    );
}

/// A key written inline as a string is refused with the forms that work, and the
/// message never repeats the key.
#[test]
fn a_secret_written_as_a_string_is_refused_naming_the_forms() {
    let (line, column, message) = problem(&with_top("[auth]\nsecret = \"hunter2-key\""));
    assert_eq!((line, column), (4, 10), "{message}");
    assert!(
        message.contains("auth.secret: expected a table saying where the key comes from")
            && message.contains("{ env = \"STAMPEDE_JWT_SECRET\" }")
            && message.contains("{ file = \"path/to/key\" }"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}
