//! `[auth]`: algorithm and key material, the claims of valid tokens, token placement, and
//! extra upgrade headers.

use super::placement::{bearer, is_token, placement, report_at};
use super::template::{check_placeholders, to_json_in};
use super::walk::{found, Ctx, Fields, InputFile, Node, PemKey};
use crate::auth::REGISTERED_CLAIMS;
use crate::model::{AuthSpec, JwtAlg, SecretSource, SUB_PLACEHOLDERS};
use serde_json::{Map, Value};

const AUTH_KEYS: &[&str] = &[
    "secret",
    "alg",
    "key",
    "public_key",
    "sub",
    "ttl",
    "aud",
    "iss",
    "claims",
    "placement",
    "headers",
    "origin",
    "subprotocol",
    "tokens",
];
const SECRET_KINDS: &[&str] = &["env", "file", "value"];
/// Headers tungstenite writes for the handshake itself; overriding them breaks it.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
];

/// The `[auth]` table, or the defaults when it is absent.
pub(super) fn auth(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> AuthSpec {
    let defaults = AuthSpec::default();
    let Some(f) = Fields::section(cx, node, "[auth]", AUTH_KEYS) else {
        return defaults;
    };
    let f = f.with_owner("[auth]");
    let sub = f.text_or(cx, "sub", &defaults.sub);
    if let Some(node) = f.get("sub") {
        check_placeholders(cx, node.span(), &sub, SUB_PLACEHOLDERS, "auth.sub");
    }
    let alg = alg(cx, &f);
    check_key_fields(cx, &f, alg);
    AuthSpec {
        secret: f
            .get("secret")
            .map_or(defaults.secret, |n| secret(cx, n, "auth.secret", None)),
        alg,
        key: f
            .get("key")
            .map(|n| secret(cx, n, "auth.key", Some(PemKey::Private(alg)))),
        public_key: f
            .get("public_key")
            .map(|n| secret(cx, n, "auth.public_key", Some(PemKey::Public(alg)))),
        sub,
        ttl: f.positive_duration_or(cx, "ttl", defaults.ttl),
        aud: f.get("aud").map(|_| f.text_or(cx, "aud", "")),
        iss: f.get("iss").map(|_| f.text_or(cx, "iss", "")),
        claims: f.get("claims").map(|n| claims(cx, n)).unwrap_or_default(),
        placement: f
            .get("placement")
            .map_or_else(bearer, |n| placement(cx, n, "auth.placement")),
        headers: f
            .get("headers")
            .map(|n| headers(cx, n, "auth.headers"))
            .unwrap_or_default(),
        origin: f.get("origin").map(|n| origin(cx, n)),
        subprotocols: f
            .get("subprotocol")
            .map(|n| subprotocols(cx, n, "auth.subprotocol"))
            .unwrap_or_default(),
        tokens: f
            .get("tokens")
            .and_then(|n| super::source::token_source(cx, n)),
    }
}

/// `subprotocol = "graphql-transport-ws"` or `["v2.json", "v1.json"]`: offered in order.
/// Each is an HTTP token (RFC 6455 §4.1): no spaces, commas or other separators.
/// `key` names the place in messages (`auth.subprotocol`, `group "x" subprotocol`).
pub(super) fn subprotocols(cx: &mut Ctx<'_>, node: &Node<'_>, key: &str) -> Vec<String> {
    let nodes: Vec<&Node<'_>> = match node.get_ref() {
        toml::de::DeValue::Array(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = Vec::new();
    for item in nodes {
        let Some(name) = cx.string(key, item) else {
            continue;
        };
        let separators = "()<>@,;:\\\"/[]?={} \t";
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_graphic() && !separators.contains(c));
        if valid {
            out.push(name.to_string());
        } else {
            let message = format!(
                "{key}: {name:?} is not a subprotocol name (letters, digits and !#$%&'*+-.^_`|~; \
                 no spaces or commas: give several as an array)"
            );
            cx.report(item.span(), message);
        }
    }
    if out.is_empty() && matches!(node.get_ref(), toml::de::DeValue::Array(a) if a.is_empty()) {
        cx.report(
            node.span(),
            format!("{key}: expected at least one subprotocol"),
        );
    }
    out
}

fn alg(cx: &mut Ctx<'_>, f: &Fields<'_, '_>) -> JwtAlg {
    let Some(node) = f.get("alg") else {
        return JwtAlg::default();
    };
    let Some(text) = cx.string("alg", node) else {
        return JwtAlg::default();
    };
    if let Some(alg) = JwtAlg::ALL.into_iter().find(|a| a.name() == text) {
        return alg;
    }
    let names: Vec<String> = JwtAlg::ALL
        .iter()
        .map(|a| format!("{:?}", a.name()))
        .collect();
    let message = format!(
        "auth.alg: expected one of {}, found {text:?}",
        names.join(", ")
    );
    cx.report(node.span(), message);
    JwtAlg::default()
}

/// HS* signs with `secret`; RS256/ES256 with `key` (and optionally `public_key`).
fn check_key_fields(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, alg: JwtAlg) {
    let name = alg.name();
    if alg.is_hmac() {
        for key in ["key", "public_key"] {
            if f.get(key).is_some() {
                let message =
                    format!("auth.{key} is for RS256 and ES256; {name} signs with auth.secret");
                report_at(cx, f, key, message);
            }
        }
        return;
    }
    if f.get("key").is_none() {
        let message = format!(
            "missing required field \"key\" in [auth]: {name} signs with a PEM private key, \
             e.g. key = {{ file = \"jwt-private.pem\" }}"
        );
        cx.report(f.span(), message);
    }
    if f.get("secret").is_some() {
        let message = format!("auth.secret is for HS256/384/512; {name} signs with auth.key");
        report_at(cx, f, "secret", message);
    }
}

/// `{ env = "NAME", default = "..." }`, `{ file = "path" }` or `{ value = "..." }`.
/// `pem` is the key an RS256/ES256 source must hold (`auth.key`'s private key,
/// `auth.public_key`'s public one): what it holds is checked then, as the run will read
/// it, wherever it can be read now.
fn secret(cx: &mut Ctx<'_>, node: &Node<'_>, section: &str, pem: Option<PemKey>) -> SecretSource {
    let fallback = AuthSpec::default().secret;
    if let toml::de::DeValue::String(_) = node.get_ref() {
        // The forms, not just "a table": a key written inline is the mistake to steer off
        // (never echoed back here).
        let message = format!(
            "{section}: expected a table saying where the key comes from: \
             {{ env = \"STAMPEDE_JWT_SECRET\" }}, {{ file = \"path/to/key\" }}, or for a \
             throwaway test key {{ value = \"...\" }}; found a string"
        );
        cx.report(node.span(), message);
        return fallback;
    }
    let Some(table) = cx.table(section, node) else {
        return fallback;
    };
    let span = node.span();
    let Some(kind) = cx.one_of(section, table, span.clone(), SECRET_KINDS) else {
        return fallback;
    };
    let known: &[&str] = if kind == "env" {
        &["env", "default"]
    } else {
        &[kind]
    };
    let f = Fields::new(cx, table, span, section, known).with_owner(section);
    let value = f.req_text(cx, kind);
    match kind {
        "env" => {
            if value.contains(['=', '\0']) {
                let message = format!("{section}: {value:?} is not an environment variable name");
                cx.report(f.span(), message);
            }
            let default = f.get("default").map(|_| f.text_or(cx, "default", ""));
            if let Some(node) = f.get("env") {
                check_env(cx, node.span(), section, (&value, default.as_deref()), pem);
            }
            SecretSource::Env {
                name: value,
                default: default.map(Into::into),
            }
        }
        "file" => {
            let path = cx.resolve(&value);
            if let Some(node) = f.get("file") {
                let key = format!("{section}.file");
                let what = match pem {
                    Some(key) => InputFile::Key(key),
                    None => InputFile::Secret(key_material(section)),
                };
                cx.check_input_file(node.span(), (&key, &path), what);
            }
            SecretSource::File { path }
        }
        _ => {
            // An empty value is reported as such.
            let problem = pem
                .filter(|_| !value.is_empty())
                .and_then(|key| key.problem(value.as_bytes(), "the value"));
            if let (Some(problem), Some(node)) = (problem, f.get("value")) {
                cx.report(node.span(), format!("{section}.value: {problem}"));
            }
            SecretSource::Literal {
                value: value.into(),
            }
        }
    }
}

/// A `{ env = "NAME" }` key source whose variable will not give the run a value, by the
/// rule the run reads it with (`auth::resolve_keys`): unset (or not UTF-8) with no
/// `default`, or empty. A problem of the environment, not of the file, so it is
/// [deferred](Ctx::defer): `run`, `hunt` and `learn` stop there, `validate` warns. The
/// message names the variable, never a value. A private key's variable that is set must
/// hold the key `pem` names ([`PemKey::problem`]).
fn check_env(
    cx: &mut Ctx<'_>,
    span: std::ops::Range<usize>,
    section: &str,
    (name, default): (&str, Option<&str>),
    pem: Option<PemKey>,
) {
    if name.is_empty() || name.contains(['=', '\0']) {
        // Reported as a malformed name already.
        return;
    }
    let problem = match (std::env::var(name), default) {
        (Ok(v), _) if v.is_empty() => "it is set but empty",
        (Ok(v), _) => {
            let held_in = format!("environment variable {name}");
            let problem = pem.and_then(|key| key.problem(v.as_bytes(), &held_in));
            if let Some(problem) = problem {
                cx.defer(span, format!("{section}.env: {problem}"));
            }
            return;
        }
        (Err(std::env::VarError::NotUnicode(_)), None) => {
            "it is not valid UTF-8 (and the scenario gives no default)"
        }
        (Err(_), None) => "it is not set (and the scenario gives no default)",
        (Err(_), Some("")) => "it is not set, and the scenario's default is empty",
        (Err(_), Some(_)) => return,
    };
    let what = key_material(section);
    let message = format!(
        "{section}.env: expected the environment variable {name} to hold {what}; {problem}"
    );
    cx.defer(span, message);
}

/// What a key source of `section` holds, for messages.
fn key_material(section: &str) -> &'static str {
    if section == "auth.secret" {
        "the JWT secret"
    } else {
        "a PEM key"
    }
}

/// `claims = { role = "admin" }`: added to every token; registered claims are refused.
fn claims(cx: &mut Ctx<'_>, node: &Node<'_>) -> Map<String, Value> {
    let Some(table) = cx.table("auth.claims", node) else {
        return Map::new();
    };
    for key in table.keys() {
        if REGISTERED_CLAIMS.contains(&key.get_ref().as_ref()) {
            let message = format!(
                "auth.claims: {:?} is set by stampede; configure it with sub, ttl, aud or iss, \
                 or shift it with a group's forge",
                key.get_ref()
            );
            cx.report(key.span(), message);
        }
    }
    match to_json_in(cx, node, &[], "auth.claims") {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `headers = { "X-Client" = "stampede" }`, in file order (`[auth]`'s, or a group's:
/// `context` names which). Values may use the connection's placeholders.
pub(super) fn headers(
    cx: &mut Ctx<'_>,
    node: &Node<'_>,
    context: &str,
) -> Vec<(String, crate::model::EnvText)> {
    let Some(table) = cx.table(context, node) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // The parsed table does not keep file order; the spans do.
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    for (key, value) in entries {
        let name = key.get_ref().to_string();
        let lower = name.to_ascii_lowercase();
        if !is_token(&name) {
            cx.report(
                key.span(),
                format!("{context}: {name:?} is not a valid HTTP header name"),
            );
        } else if RESERVED_HEADERS.contains(&lower.as_str()) {
            let message =
                format!("{context}: {name} belongs to the WebSocket handshake and cannot be set");
            cx.report(key.span(), message);
        } else if lower == "origin" {
            cx.report(
                key.span(),
                format!("{context}: set Origin with [auth] origin = \"...\""),
            );
        }
        let Some(text) = cx.string(&format!("{context}.{name}"), value) else {
            continue;
        };
        check_header_value(cx, value, context, text);
        check_placeholders(cx, value.span(), text, CONN_PLACEHOLDERS, context);
        let mut text = cx.env_text(value, text);
        // A literal credential is sent, but never stored in a plan or repro file.
        if crate::model::is_credential_header(&name) {
            text = text.into_secret();
        }
        out.push((name, text));
    }
    out
}

fn origin(cx: &mut Ctx<'_>, node: &Node<'_>) -> String {
    let Some(text) = cx.string("auth.origin", node) else {
        return String::new();
    };
    if text.is_empty() {
        let message = "auth.origin: expected an origin like \"https://app.example\" (or \"null\"), found \"\"";
        cx.report(node.span(), message);
    }
    check_header_value(cx, node, "auth.origin", text);
    text.to_string()
}

/// Placeholders an upgrade header or a `first_message` may use: who the connection is
/// (filled when it dials; nothing random, nothing that changes between sends).
pub(super) const CONN_PLACEHOLDERS: &[&str] = &["user", "conn", "group", "sub"];

/// Header values are visible ASCII, spaces and tabs.
fn check_header_value(cx: &mut Ctx<'_>, node: &Node<'_>, context: &str, text: &str) {
    if !text.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) {
        let message = format!(
            "{context}: {} is not a valid header value (visible ASCII, spaces and tabs only)",
            found(node.get_ref())
        );
        cx.report(node.span(), message);
    }
}
