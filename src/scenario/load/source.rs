//! `[auth] tokens`: tokens stampede does not mint (a file, a list, a command's output, a
//! login request before each upgrade).

use super::auth::{headers, CONN_PLACEHOLDERS};
use super::template::check_placeholders;
use super::walk::{Ctx, Fields, InputFile, Node};
use crate::model::{LoginSpec, SecretText, TokenSource};
use std::ops::Range;
use std::time::Duration;

const SOURCE_KINDS: &[&str] = &["file", "list", "command", "login"];
const LOGIN_KEYS: &[&str] = &["login", "method", "body", "headers", "token", "timeout"];
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
/// A command or login that takes longer than this is not a token source but a stall.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `{ file = "tokens.txt" }`, `{ list = ["t1", "t2"] }`,
/// `{ command = "./tokens.sh", timeout = "10s" }` or
/// `{ login = "http://host/login", body = '...', token = "data.token" }`.
pub(super) fn token_source(cx: &mut Ctx<'_>, node: &Node<'_>) -> Option<TokenSource> {
    let section = "auth.tokens";
    let table = cx.table(section, node)?;
    let span = node.span();
    let kind = cx.one_of(section, table, span.clone(), SOURCE_KINDS)?;
    let known: &[&str] = match kind {
        "command" => &["command", "timeout"],
        "login" => LOGIN_KEYS,
        _ => &[kind],
    };
    let f = Fields::new(cx, table, span, section, known).with_owner(section);
    match kind {
        "file" => {
            let written = f.req_text(cx, "file");
            let path = cx.resolve(&written);
            if let Some(node) = f.get("file") {
                let key = ("auth.tokens.file", path.as_str());
                cx.check_input_file(node.span(), key, InputFile::Tokens);
            }
            Some(TokenSource::File { path })
        }
        "list" => list(cx, f.get("list")?),
        "command" => Some(TokenSource::Command {
            run: f.req_text(cx, "command"),
            dir: Some(cx.resolve(".")).filter(|d| d != "."),
            timeout: f.positive_duration_or(cx, "timeout", DEFAULT_TIMEOUT),
        }),
        _ => login(cx, &f),
    }
}

fn list(cx: &mut Ctx<'_>, node: &Node<'_>) -> Option<TokenSource> {
    let key = "auth.tokens.list";
    let items = cx.array(key, node)?;
    let mut values = Vec::new();
    // Each usable entry: its position in the list (from 1), its token, where it is.
    let mut entries = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(text) = cx.string(key, item) else {
            continue;
        };
        if text.trim().is_empty() || text.contains(['\r', '\n']) {
            let message = format!("{key}: expected a token (non-empty, one line)");
            cx.report(item.span(), message);
            continue;
        }
        values.push(SecretText::from(text));
        entries.push((i + 1, text, item.span()));
    }
    if items.is_empty() {
        cx.report(node.span(), format!("{key}: expected at least one token"));
    }
    report_repeats(cx, key, &entries);
    Some(TokenSource::List { values })
}

/// Reports each entry that repeats an earlier one ([`crate::auth::repeats`]) at the
/// entry, by position: the tokens themselves are secrets.
fn report_repeats(cx: &mut Ctx<'_>, key: &str, entries: &[(usize, &str, Range<usize>)]) {
    let tokens = entries.iter().map(|(position, text, _)| (*position, *text));
    for repeat in crate::auth::repeats(tokens) {
        // Entries are in list order: a binary search, not a scan per repeat.
        let Ok(at) = entries.binary_search_by_key(&repeat.again, |(p, _, _)| *p) else {
            continue;
        };
        let span = entries[at].2.clone();
        let message = format!(
            "{key}: {}; {}",
            repeat.describe("entries"),
            crate::auth::REPEAT_ADVICE
        );
        cx.report(span, message);
    }
}

fn login(cx: &mut Ctx<'_>, f: &Fields<'_, '_>) -> Option<TokenSource> {
    let url = f.req_text(cx, "login");
    if let Some(node) = f.get("login") {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            let message =
                format!("auth.tokens.login: expected an http:// or https:// URL, found {url:?}");
            cx.report(node.span(), message);
        } else if let Err(reason) = crate::model::url::explicit_port(&url) {
            // An HTTP client would take `:99999` for no port and ask the default one.
            cx.report(node.span(), format!("auth.tokens.login: {reason}"));
        }
        check_placeholders(
            cx,
            node.span(),
            &url,
            CONN_PLACEHOLDERS,
            "auth.tokens.login",
        );
    }
    let method = f.text_or(cx, "method", "POST").to_ascii_uppercase();
    if let Some(node) = f.get("method") {
        if !METHODS.contains(&method.as_str()) {
            let message = format!(
                "auth.tokens.method: expected one of {}, found {method:?}",
                METHODS.join(", ")
            );
            cx.report(node.span(), message);
        }
    }
    let body = f.opt_str(cx, "body");
    if let (Some(node), Some(text)) = (f.get("body"), &body) {
        check_placeholders(cx, node.span(), text, CONN_PLACEHOLDERS, "auth.tokens.body");
    }
    // Either may hold a password or key from the environment: kept as written.
    let url = match f.get("login") {
        Some(node) => cx.env_text(node, &url),
        None => url.into(),
    };
    // A literal password in its userinfo or a secret-named query parameter
    // (`?api_key=...`): sent, never stored.
    let url = match crate::model::url::shown_url(url.as_str()) == url.as_str() {
        true => url,
        false => url.into_secret(),
    };
    let body = match (f.get("body"), body) {
        (Some(node), Some(text)) => Some(cx.env_text(node, &text)),
        (_, body) => body.map(Into::into),
    };
    // A literal body that names a credential (a password) is sent, but never stored in
    // a plan or repro file.
    let body = body.map(|b| match crate::model::body_names_credential(b.as_str()) {
        true => b.into_secret(),
        false => b,
    });
    let token = f.req_text(cx, "token");
    if let Some(node) = f.get("token") {
        if let Err(e) = crate::model::path::check(&token) {
            cx.report(node.span(), format!("auth.tokens.token: {e}"));
        }
    }
    Some(TokenSource::Login(LoginSpec {
        method,
        url,
        body,
        headers: f
            .get("headers")
            .map(|n| headers(cx, n, "auth.tokens.headers"))
            .unwrap_or_default(),
        token,
        timeout: f.positive_duration_or(cx, "timeout", DEFAULT_TIMEOUT),
    }))
}
