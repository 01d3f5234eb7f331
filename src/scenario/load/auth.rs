//! `[auth]`: where the signing secret comes from, the `sub` claim, and token placement.

use super::template::check_placeholders;
use super::walk::{found, Ctx, Fields, Node};
use crate::scenario::model::{AuthSpec, Placement, SecretSource, SUB_PLACEHOLDERS};
use std::ops::Range;
use std::time::Duration;
use toml::de::{DeTable, DeValue};

const AUTH_KEYS: &[&str] = &["secret", "sub", "ttl", "placement"];
const SECRET_KINDS: &[&str] = &["env", "file", "value"];
const PLACEMENT_KINDS: &[&str] = &["header", "query", "subprotocol"];
const DEFAULT_SECRET_ENV: &str = "STAMPEDE_JWT_SECRET";
const DEFAULT_SECRET: &str = "stampede-dev-secret";
const DEFAULT_SUB: &str = "user-{{user}}";
const DEFAULT_TTL: Duration = Duration::from_secs(600);
const DEFAULT_SUBPROTOCOL: &str = "jwt-auth";

/// The `[auth]` table, or the defaults when it is absent.
pub(super) fn auth(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> AuthSpec {
    let Some(f) = Fields::section(cx, node, "[auth]", AUTH_KEYS) else {
        return AuthSpec {
            secret: default_secret(),
            sub: DEFAULT_SUB.into(),
            ttl: DEFAULT_TTL,
            placement: header(),
        };
    };
    let f = f.with_owner("[auth]");
    let sub = f.text_or(cx, "sub", DEFAULT_SUB);
    if let Some(node) = f.get("sub") {
        check_placeholders(cx, node.span(), &sub, SUB_PLACEHOLDERS, "auth.sub");
    }
    AuthSpec {
        secret: f
            .get("secret")
            .map_or_else(default_secret, |n| secret(cx, n)),
        sub,
        ttl: f.positive_duration_or(cx, "ttl", DEFAULT_TTL),
        placement: f.get("placement").map_or_else(header, |n| placement(cx, n)),
    }
}

fn default_secret() -> SecretSource {
    SecretSource::Env {
        name: DEFAULT_SECRET_ENV.into(),
        default: Some(DEFAULT_SECRET.into()),
    }
}

fn header() -> Placement {
    Placement::Header {
        name: "Authorization".into(),
        prefix: "Bearer ".into(),
    }
}

fn secret(cx: &mut Ctx<'_>, node: &Node<'_>) -> SecretSource {
    let Some(table) = cx.table("secret", node) else {
        return default_secret();
    };
    let span = node.span();
    let Some(kind) = cx.one_of("auth.secret", table, span.clone(), SECRET_KINDS) else {
        return default_secret();
    };
    let known: &[&str] = if kind == "env" {
        &["env", "default"]
    } else {
        &[kind]
    };
    let f = Fields::new(cx, table, span, "auth.secret", known).with_owner("auth.secret");
    let value = f.req_text(cx, kind);
    match kind {
        "env" => {
            if value.contains(['=', '\0']) {
                let message = format!("auth.secret: {value:?} is not an environment variable name");
                cx.report(f.span(), message);
            }
            SecretSource::Env {
                name: value,
                default: f.get("default").map(|_| f.text_or(cx, "default", "")),
            }
        }
        "file" => SecretSource::File { path: value },
        _ => SecretSource::Literal { value },
    }
}

fn placement(cx: &mut Ctx<'_>, node: &Node<'_>) -> Placement {
    match node.get_ref() {
        DeValue::String(s) => match s.as_ref() {
            "header" => header(),
            "query" => Placement::Query {
                param: "token".into(),
            },
            "subprotocol" => Placement::Subprotocol {
                offer: vec![DEFAULT_SUBPROTOCOL.into()],
                prefix: "jwt.".into(),
            },
            "none" => Placement::None,
            _ => bad_placement(cx, node),
        },
        DeValue::Table(table) => placement_table(cx, table, node.span()),
        _ => bad_placement(cx, node),
    }
}

fn bad_placement(cx: &mut Ctx<'_>, node: &Node<'_>) -> Placement {
    let message = format!(
        "placement: expected \"header\", \"query\", \"subprotocol\", \"none\" or a table like \
         {{ header = \"X-Token\" }}, found {}",
        found(node.get_ref())
    );
    cx.report(node.span(), message);
    header()
}

fn placement_table(cx: &mut Ctx<'_>, table: &DeTable<'_>, span: Range<usize>) -> Placement {
    let Some(kind) = cx.one_of("auth.placement", table, span.clone(), PLACEMENT_KINDS) else {
        return header();
    };
    let known: &[&str] = match kind {
        "header" => &["header", "prefix"],
        "subprotocol" => &["subprotocol", "offer"],
        _ => &["query"],
    };
    let f = Fields::new(cx, table, span, "auth.placement", known).with_owner("auth.placement");
    match kind {
        "header" => header_placement(cx, &f),
        "subprotocol" => subprotocol_placement(cx, &f),
        _ => {
            let param = f.req_text(cx, "query");
            if !param
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
            {
                let message = format!("auth.placement: query parameter {param:?} may only use letters, digits, -, ., _ and ~");
                report_at(cx, &f, "query", message);
            }
            Placement::Query { param }
        }
    }
}

fn header_placement(cx: &mut Ctx<'_>, f: &Fields<'_, '_>) -> Placement {
    let name = f.req_text(cx, "header");
    if !is_token(&name) {
        report_at(
            cx,
            f,
            "header",
            format!("auth.placement: {name:?} is not a valid HTTP header name"),
        );
    }
    // "Bearer " belongs to the Authorization scheme; other headers carry the bare token.
    let default_prefix = if name.eq_ignore_ascii_case("authorization") {
        "Bearer "
    } else {
        ""
    };
    let prefix = f
        .get("prefix")
        .and_then(|n| cx.string("prefix", n))
        .unwrap_or(default_prefix);
    if prefix.chars().any(char::is_control) {
        report_at(
            cx,
            f,
            "prefix",
            "auth.placement: prefix must not contain control characters",
        );
    }
    Placement::Header {
        name,
        prefix: prefix.to_string(),
    }
}

fn subprotocol_placement(cx: &mut Ctx<'_>, f: &Fields<'_, '_>) -> Placement {
    let prefix = f
        .get("subprotocol")
        .and_then(|n| cx.string("subprotocol", n))
        .unwrap_or_default();
    if !prefix.is_empty() && !is_token(prefix) {
        let message = format!(
            "auth.placement: subprotocol prefix {prefix:?} may only use HTTP token characters"
        );
        report_at(cx, f, "subprotocol", message);
    }
    let offer = match f.get("offer") {
        None => vec![DEFAULT_SUBPROTOCOL.to_string()],
        Some(node) => offers(cx, node),
    };
    Placement::Subprotocol {
        offer,
        prefix: prefix.to_string(),
    }
}

fn offers(cx: &mut Ctx<'_>, node: &Node<'_>) -> Vec<String> {
    let items = cx.array("offer", node).unwrap_or_default();
    let mut offer = Vec::new();
    for item in items {
        let Some(text) = cx.string("offer", item) else {
            continue;
        };
        if !is_token(text) {
            cx.report(
                item.span(),
                format!("offer: {text:?} is not a valid subprotocol name"),
            );
        }
        offer.push(text.to_string());
    }
    offer
}

fn report_at(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, key: &str, message: impl Into<String>) {
    let span = f.get(key).map_or_else(|| f.span(), |n| n.span());
    cx.report(span, message);
}

/// An HTTP token (RFC 9110 §5.6.2): what header names and subprotocols must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}
