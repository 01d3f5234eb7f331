//! Where the token travels: on the upgrade request (header, query, subprotocol, cookie)
//! or in the first message after it; plus the scenario's extra headers and `Origin`.
//!
//! The `missing` catalogue entry places nothing at all; every other token, even the
//! empty one, is placed as the scenario says.

use super::Token;
use crate::model::AuthPlan;
use crate::model::Placement;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::header::{HeaderName, HeaderValue, COOKIE, ORIGIN};

/// The upgrade request could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("invalid target URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("value does not fit in header {0}")]
    Header(String),
}

/// Headers every upgrade request carries besides the token (`[auth] headers`, `origin`),
/// and the URL of a connection whose target URL takes placeholders.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UpgradeExtras {
    pub headers: Vec<(String, String)>,
    pub origin: Option<String>,
    /// Offered in `Sec-WebSocket-Protocol` before the placement's own entries.
    pub subprotocols: Vec<String>,
    /// The URL this connection dials in place of the endpoint's: the target's path and
    /// query with the connection's placeholders filled (`ws://h/ocpp/CP{{user}}` →
    /// `ws://h/ocpp/CP7`). `None`: the endpoint's URL. Made as the connection dials and
    /// dropped with the request; it may hold a value from the environment, so `Debug`
    /// does not show it.
    pub url: Option<String>,
}

impl std::fmt::Debug for UpgradeExtras {
    /// Everything but the URL dialled, which may hold a secret (`?key=${KEY}`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeExtras")
            .field("headers", &self.headers)
            .field("origin", &self.origin)
            .field("subprotocols", &self.subprotocols)
            .field("url", &self.url.as_ref().map(|_| "<per connection>"))
            .finish()
    }
}

impl UpgradeExtras {
    pub fn from_plan(auth: &AuthPlan) -> Self {
        UpgradeExtras {
            headers: auth
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.as_str().to_owned()))
                .collect(),
            origin: auth.origin.clone(),
            subprotocols: auth.subprotocols.clone(),
            url: None,
        }
    }
}

/// Builds the upgrade request for `url` with `token` placed as `placement` says, and no
/// extra headers.
pub fn attach(url: &str, placement: &Placement, token: &Token) -> Result<Request, PlacementError> {
    attach_with(url, placement, &UpgradeExtras::default(), token)
}

/// Builds the upgrade request: extra headers and `Origin` first, then the token (a
/// placement header replaces an extra header of the same name; a cookie is appended to
/// an extra `Cookie` header).
pub fn attach_with(
    url: &str,
    placement: &Placement,
    extras: &UpgradeExtras,
    token: &Token,
) -> Result<Request, PlacementError> {
    let placed = token.is_placed();
    let url = match placement {
        Placement::Query { param } if placed => with_query(url, param, token.expose()),
        _ => url.to_string(),
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| PlacementError::Url {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    for (name, value) in &extras.headers {
        insert(&mut request, name, value)?;
    }
    if let Some(origin) = &extras.origin {
        insert(&mut request, ORIGIN.as_str(), origin)?;
    }
    // One `Sec-WebSocket-Protocol` header: the plain subprotocols, then the placement's.
    let mut offered = extras.subprotocols.clone();
    if let Placement::Subprotocol { offer, prefix } = placement {
        offered.extend(offer.iter().cloned());
        if placed {
            offered.push(format!("{prefix}{}", token.expose()));
        }
    }
    if !offered.is_empty() {
        insert(&mut request, "sec-websocket-protocol", &offered.join(", "))?;
    }
    match placement {
        Placement::Header { name, prefix } if placed => {
            insert(&mut request, name, &format!("{prefix}{}", token.expose()))?;
        }
        Placement::Cookie { name } if placed => {
            let pair = format!("{name}={}", token.expose());
            let value = match request.headers().get(COOKIE).and_then(|v| v.to_str().ok()) {
                Some(existing) if !existing.trim().is_empty() => format!("{existing}; {pair}"),
                _ => pair,
            };
            insert(&mut request, COOKIE.as_str(), &value)?;
        }
        _ => {}
    }
    Ok(request)
}

/// The text frame to send right after the upgrade: the `first_message` template with
/// every `{{token}}` filled in, as JSON (or as it is written, for a text template). `None`
/// for other placements and for the `missing` entry.
pub fn first_message(placement: &Placement, token: &Token) -> Option<String> {
    let Placement::FirstMessage { template, text, .. } = placement else {
        return None;
    };
    if !token.is_placed() {
        return None;
    }
    Some(match (text, template) {
        (true, Value::String(line)) => fill_str(line, token.expose()),
        _ => fill(template, token.expose()).to_string(),
    })
}

fn fill(value: &Value, token: &str) -> Value {
    match value {
        Value::String(s) => Value::String(fill_str(s, token)),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, token)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, token)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Replaces `{{token}}` (spaces inside the braces allowed); anything else is kept.
fn fill_str(s: &str, token: &str) -> String {
    let mut out = String::with_capacity(s.len() + token.len());
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let after = rest.get(open + 2..).unwrap_or_default();
        let Some(close) = after.find("}}") else { break };
        out.push_str(rest.get(..open).unwrap_or_default());
        let name = after.get(..close).unwrap_or_default();
        if name.trim() == "token" {
            out.push_str(token);
        } else {
            out.push_str(rest.get(open..open + 2 + close + 2).unwrap_or_default());
        }
        rest = after.get(close + 2..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// `url` with `param=value` appended to its query, the value percent-encoded
/// ([`QUERY_VALUE`]): a JWT (base64url and `.`) goes as it is, an opaque token holding `+`,
/// `&`, `/`, `=`, `%` or a space arrives as written instead of cut or decoded.
fn with_query(url: &str, param: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    let value = utf8_percent_encode(value, QUERY_VALUE);
    format!("{url}{sep}{param}={value}")
}

/// What a query value escapes: all but RFC 3986's unreserved characters (§2.3: letters,
/// digits, `-`, `.`, `_`, `~`), so nothing in it reads as a separator or an escape.
pub(crate) const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn insert(request: &mut Request, name: &str, value: &str) -> Result<(), PlacementError> {
    let name =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| PlacementError::Header(name.into()))?;
    let value =
        HeaderValue::from_str(value).map_err(|_| PlacementError::Header(name.to_string()))?;
    request.headers_mut().insert(name, value);
    Ok(())
}

#[cfg(test)]
mod tests;
