//! Target URLs: their port, checked the one way the scenario loader and the dialer share;
//! their `${NAME}` environment references, kept as written everywhere a URL is shown or
//! stored and expanded only to dial ([`dial_url`]); a password written in their
//! userinfo, shown as `***` ([`shown_url`]); and the `{{user}}`-style placeholders of
//! their path and query, filled for each connection as it dials ([`TARGET_PLACEHOLDERS`]).

use super::spec::{env_pieces, expand_env, EnvPiece, EnvTextError, EnvValues};
use std::ops::Range;

/// What a literal password in a target URL's userinfo is shown as.
pub const PASSWORD_SHOWN: &str = "***";

/// The URL to dial for a target URL as written: its `${NAME}` / `${NAME:-default}`
/// references expanded through `lookup` (`$${` is a literal `${`). A URL may carry a
/// secret that way (`?api_key=${API_KEY}`, `ws://user:${PW}@host/`): results, plans,
/// repros and messages keep the URL as written, and only the dialer holds this value.
/// A reference in the userinfo expands percent-encoded, so that a password holding `/`,
/// `@` or `#` still leaves the host where it was.
pub fn dial_url(
    written: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, EnvTextError> {
    let Some(userinfo) = userinfo_range(written) else {
        return expand_env(written, lookup);
    };
    let head = expand_env(&written[..userinfo.start], lookup)?;
    let info = expand_encoded(&written[userinfo.clone()], lookup)?;
    let tail = expand_env(&written[userinfo.end..], lookup)?;
    Ok(head + &info + &tail)
}

/// The target URL `url` (as written, or as given on the command line) as messages,
/// results, reports and repros show it: a password in its userinfo replaced by `***`
/// (`ws://user:***@host/`), and so is the value of a query parameter named for a secret
/// (`?api_key=***`: [`SECRET_PARAMS`]). A password or value written as `${NAME}`
/// references alone (no defaults) is kept: it shows no secret, and a repro holding it can
/// be replayed.
pub fn shown_url(url: &str) -> String {
    let url = masked_query_params(url).into_owned();
    let Some(password) = password_range(&url) else {
        return url;
    };
    if is_references_only(&url[password.clone()]) {
        return url;
    }
    format!(
        "{}{PASSWORD_SHOWN}{}",
        &url[..password.start],
        &url[password.end..]
    )
}

/// Query parameter names whose values are credentials (compared without regard to case,
/// `-` read as `_`): an API key, a token or signature pasted into the URL as k6 and
/// browser code often do.
pub const SECRET_PARAMS: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "auth",
    "authorization",
    "client_secret",
    "jwt",
    "key",
    "password",
    "secret",
    "sig",
    "signature",
    "token",
];

/// The credentials URL `url` holds literally (not as `${NAME}` references): its userinfo's
/// password and the values of its query parameters named for a secret ([`SECRET_PARAMS`]),
/// each as written and, where it differs, percent-decoded. What a server may echo back (an
/// error page quoting the request line), for the run's redactor to show as
/// [`PASSWORD_SHOWN`], as [`shown_url`] shows them.
pub fn literal_credentials(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut keep = |written: &str| {
        if written.is_empty() || is_references_only(written) {
            return;
        }
        let decoded = percent_encoding::percent_decode_str(written).decode_utf8_lossy();
        if decoded != written {
            found.push(decoded.into_owned());
        }
        found.push(written.to_string());
    };
    if let Some(password) = password_range(url) {
        keep(&url[password]);
    }
    if let Some(query) = query_range(url) {
        for pair in url[query].split(['&', ';']) {
            if let Some((_, value)) = pair.split_once('=').filter(|(n, _)| is_secret_param(n)) {
                keep(value);
            }
        }
    }
    found
}

/// `text` (what a server sent: an error page quoting the request line, a message quoting
/// its URL) with the value of every query parameter named for a secret ([`SECRET_PARAMS`])
/// shown as [`PASSWORD_SHOWN`]: a parameter after `?`, `&` or `;`, its value up to the
/// next `&`, `;`, `#`, quote, angle bracket or white space. What a per-connection target
/// (`?access_token={{feed.key}}`) held, which no list of the run's values has.
pub fn masked_query_params(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'%');
    let value_end = |from: usize| {
        bytes[from..]
            .iter()
            .position(|b| {
                matches!(b, b'&' | b';' | b'#' | b'"' | b'\'' | b'<' | b'>')
                    || b.is_ascii_whitespace()
            })
            .map_or(bytes.len(), |i| from + i)
    };
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while let Some(i) = bytes[at..].iter().position(|b| *b == b'=').map(|i| at + i) {
        let start = bytes[..i]
            .iter()
            .rposition(|b| !name_byte(*b))
            .map_or(0, |p| p + 1);
        let after_separator = start > 0 && matches!(bytes[start - 1], b'?' | b'&' | b';');
        let end = value_end(i + 1);
        let value = &text[i + 1..end];
        if after_separator
            && start < i
            && is_secret_param(&text[start..i])
            && !value.is_empty()
            && value != PASSWORD_SHOWN
            && !is_references_only(value)
        {
            out.push_str(&text[copied..=i]);
            out.push_str(PASSWORD_SHOWN);
            copied = end;
        }
        at = end.max(i + 1);
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

/// Whether URL `url`, as stampede showed it ([`shown_url`]), lost a credential to `***`
/// (its userinfo's password, or a [`SECRET_PARAMS`] value): dialled as it stands, it
/// sends `***` where the server wants the credential.
pub fn lost_a_credential(url: &str) -> bool {
    let password = password_range(url).is_some_and(|p| &url[p] == PASSWORD_SHOWN);
    password || query_holds_masked(url)
}

/// Whether a [`SECRET_PARAMS`] value of `url`'s query is `***` already.
fn query_holds_masked(url: &str) -> bool {
    query_range(url).is_some_and(|query| {
        url[query]
            .split(['&', ';'])
            .filter_map(|pair| pair.split_once('='))
            .any(|(name, value)| is_secret_param(name) && value == PASSWORD_SHOWN)
    })
}

/// The byte range of URL `url`'s query: after the first `?` past its authority, up to its
/// fragment (`#`) or its end. `None` without a query.
fn query_range(url: &str) -> Option<Range<usize>> {
    let after_authority = authority_range(url).map_or(0, |a| a.end);
    let start = after_authority + url[after_authority..].find('?')? + 1;
    let end = url[start..].find('#').map_or(url.len(), |i| start + i);
    Some(start..end)
}

/// Whether a query parameter's name is a credential's: one of [`SECRET_PARAMS`], or a
/// name ending in `token`, `_key` or `signature`, or holding `secret`, `password`,
/// `passwd`, `credential` or `session` (`auth_token`, `X-Amz-Security-Token`,
/// `X-Amz-Signature`, `client_secret`, `session_id`). Case, `-` for `_`, camelCase words
/// (`accessKey` as `access_key`, `sessionId`) and percent-escapes (`api%5Fkey`) aside.
fn is_secret_param(name: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    let name = snake_case(&decoded).replace('-', "_");
    // Words run together in one case (`accesskey`, `SESSIONID`): the usual ones.
    let joined = name.replace('_', "");
    SECRET_PARAMS.contains(&name.as_str())
        || name == "pwd"
        || JOINED_SECRETS.iter().any(|end| joined.ends_with(end))
        || ["token", "_key", "signature"]
            .iter()
            .any(|end| name.ends_with(end))
        || ["secret", "password", "passwd", "credential", "session"]
            .iter()
            .any(|part| name.contains(part))
}

/// Credential names whose words a parameter may run together in one case (`accesskey`,
/// `SESSIONID`, `sessid`), matched at the end of its name with `_` left out.
const JOINED_SECRETS: &[&str] = &[
    "accesskey",
    "authkey",
    "privatekey",
    "secretkey",
    "signingkey",
    "sessionkey",
    "sessionid",
    "sessid",
];

/// `name` in lower case, a `_` before each capital that ends a lower-case word or digits
/// (`accessKey` → `access_key`, `privateKey2` → `private_key2`, `API_KEY` → `api_key`).
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut after_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && after_lower {
            out.push('_');
        }
        after_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Whether `text` is one or more `${NAME}` references and nothing else: no literal text
/// and no default (a default is a literal written in the URL).
fn is_references_only(text: &str) -> bool {
    !text.is_empty()
        && env_pieces(text).all(|piece| matches!(piece, EnvPiece::Ref { default: None, .. }))
}

/// The byte range of the authority (`user:pw@host:port`, after `://`) of URL `written`,
/// if it has a `://`. The authority ends at the first `/`, `?` or `#` outside a `${...}`
/// reference (a reference's default may hold any of them).
fn authority_range(written: &str) -> Option<Range<usize>> {
    let start = written.find("://")? + "://".len();
    let mut end = written.len();
    let mut in_reference = false;
    let mut chars = written[start..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '$' if !in_reference && chars.peek().is_some_and(|&(_, next)| next == '{') => {
                in_reference = true;
            }
            '}' if in_reference => in_reference = false,
            '/' | '?' | '#' if !in_reference => {
                end = start + i;
                break;
            }
            _ => {}
        }
    }
    Some(start..end)
}

/// The byte range of the userinfo (`user:pw`, before the `@`) of URL `written`, if it has
/// one.
fn userinfo_range(written: &str) -> Option<Range<usize>> {
    let Range { start, end } = authority_range(written)?;
    let at = written[start..end].rfind('@')?;
    Some(start..start + at)
}

/// The byte range of the password of URL `url`'s userinfo (after its first `:`), if it
/// has one.
fn password_range(url: &str) -> Option<Range<usize>> {
    let userinfo = userinfo_range(url)?;
    let colon = url[userinfo.clone()].find(':')?;
    Some(userinfo.start + colon + 1..userinfo.end)
}

/// [`expand_env`] for a userinfo: each value percent-encoded (all but RFC 3986's
/// unreserved characters), the text around the references kept as written.
fn expand_encoded(
    written: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, EnvTextError> {
    let mut out = String::with_capacity(written.len());
    for piece in env_pieces(written) {
        match piece {
            EnvPiece::Text(text) => out.push_str(text),
            EnvPiece::Ref { inner, .. } => {
                // The one expansion rule (unset, default) applies to the reference alone.
                let value = expand_env(&format!("${{{inner}}}"), lookup)?;
                out.push_str(&percent_encoded(&value));
            }
            EnvPiece::Unclosed => {
                return Err(EnvTextError::Unclosed {
                    written: written.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// `value` with every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`)
/// written `%XX`.
pub(crate) fn percent_encoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `text` (a message about the URL `written`, made from its expanded value) with each
/// value of a variable `written` names shown as its `${NAME}` instead, so that no message
/// shows a value that came from the environment.
pub fn redact_values(text: &str, written: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    EnvValues::of(written, lookup).hide(text)
}

/// The explicit port of a `scheme://host:port/...` URL: `Ok(None)` when it names none (the
/// scheme's default applies), `Err` with the reason when the text after the host's `:` is
/// not a port from 1 to 65535 (`99999`, `65536`, `abc`, nothing). A URL parser that sees
/// such a port as no port at all would dial the scheme's default instead.
pub fn explicit_port(url: &str) -> Result<Option<u16>, String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Ok(None);
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Userinfo (`user:pw@`) may hold colons of its own.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = if let Some(bracketed) = host_port.strip_prefix('[') {
        // `[::1]:8080`: the port follows the closing bracket.
        match bracketed.split_once(']') {
            Some((_, after)) => match after.strip_prefix(':') {
                Some(port) => port,
                None => return Ok(None),
            },
            None => return Ok(None),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((_, port)) => port,
            None => return Ok(None),
        }
    };
    let valid = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    match port.parse::<u16>() {
        Ok(p) if valid && p > 0 => Ok(Some(p)),
        _ => Err(format!(
            "invalid port {port:?}: expected a number from 1 to 65535"
        )),
    }
}

/// What keeps `dial_url` (the target as the dialer dials it) from naming a host to dial:
/// the part before its path is no URL as the upgrade request reads one (RFC 3986,
/// `http::Uri`: `ws://[::1`, `ws://a b`, `ws://h:80:9`), or it names no host
/// (`ws://:8080`). `None` when it does; the scheme and the port are checked apart, and
/// the path is not looked at here (it takes the connections' placeholders).
pub fn authority_problem(dial_url: &str) -> Option<&'static str> {
    let head = &dial_url[..path_start(dial_url).unwrap_or(dial_url.len())];
    let Ok(uri) = head.parse::<tokio_tungstenite::tungstenite::http::Uri>() else {
        return Some("not a URL");
    };
    match uri.host() {
        Some(host) if !host.trim_matches(['[', ']']).is_empty() => None,
        _ => Some("no host"),
    }
}

/// Why `url` (as dialled) cannot be a WebSocket URL for its fragment: RFC 6455 section
/// 3 says fragment identifiers "MUST NOT be used" on ws:// and wss:// URIs, and what
/// follows a `#` never reaches the server (a token placed in the query after it was lost
/// without a word). `None` without a `#`.
pub fn fragment_problem(url: &str) -> Option<&'static str> {
    url.contains('#').then_some(
        "a WebSocket URL has no fragment (RFC 6455 section 3), and nothing after a '#' \
         reaches the server: remove it, or write it %23 where it belongs to the path or \
         query",
    )
}

/// Where URL `url` dials, as `host:port` (messages that name what did not answer): its
/// userinfo left out, and the scheme's default port (443 for `wss` and `https`, 80
/// otherwise) when it names none. `None` without a `://` or a host.
pub fn host_port(url: &str) -> Option<String> {
    let authority = &url[authority_range(url)?];
    // Userinfo (`user:pw@`) may hold colons and `@` of its own.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.is_empty() {
        return None;
    }
    // A port written, valid or not (the loader refuses an invalid one), is shown as is.
    if !matches!(explicit_port(url), Ok(None)) {
        return Some(host_port.to_string());
    }
    let (scheme, _) = url.split_once("://")?;
    let secure = ["wss", "https"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s));
    Some(format!("{host_port}:{}", if secure { 443 } else { 80 }))
}

/// The placeholders a target URL's path and query may hold (and `{{feed.COLUMN}}`, as
/// in upgrade headers): each connection dials the URL with them filled, its values
/// percent-encoded (`percent_encoded`), so `ws://host/ocpp/CP{{user}}` is
/// `/ocpp/CP0`, `/ocpp/CP1`, … on the wire. The host and port take none: they are
/// resolved once for the whole run.
pub const TARGET_PLACEHOLDERS: &[&str] = &["user", "conn", "group", "sub"];

/// Where the path of URL `url` starts (its query when it has no path): the end of its
/// authority. `None` without a `://`.
pub fn path_start(url: &str) -> Option<usize> {
    authority_range(url).map(|authority| authority.end)
}

/// Whether target URL `url` has placeholders to fill for each connection: a `{{` in its
/// path or query.
pub fn is_templated(url: &str) -> bool {
    path_start(url).is_some_and(|at| url[at..].contains("{{"))
}

/// The first `{{...}}` of target URL `written` before its path (in its scheme, userinfo,
/// host or port): its byte offset and the placeholder as written. Only the path and query
/// take placeholders.
pub fn placeholder_in_authority(written: &str) -> Option<(usize, &str)> {
    let end = path_start(written).unwrap_or(written.len());
    let open = written[..end].find("{{")?;
    let close = written[open..]
        .find("}}")
        .map_or(written.len(), |c| open + c + "}}".len());
    Some((open, &written[open..close]))
}

/// What is said of a placeholder in a target URL's host or port (`found`, as written).
pub fn authority_placeholder_message(found: &str) -> String {
    format!(
        "placeholder {found:?} in the URL's host or port; only its path and query \
         take placeholders (the host is resolved once for every connection): \
         ws://host:9000/ocpp/CP{{{{user}}}}"
    )
}

/// The first problem with the placeholders of target URL `written` as given on the
/// command line or in `STAMPEDE_TARGET` (a scenario's `target` is checked when the file
/// loads, with its position): one in the host or port, an unclosed `{{`, or a name
/// [`TARGET_PLACEHOLDERS`] does not hold.
pub fn placeholder_problem(written: &str) -> Option<String> {
    if let Some((_, found)) = placeholder_in_authority(written) {
        return Some(authority_placeholder_message(found));
    }
    let mut rest = &written[path_start(written)?..];
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + "{{".len()..];
        let Some(close) = after.find("}}") else {
            return Some("unclosed \"{{\" in target; placeholders look like {{user}}".to_string());
        };
        let name = after[..close].trim();
        let base = name.strip_suffix(":int").map_or(name, str::trim_end);
        let known = TARGET_PLACEHOLDERS.contains(&base) || base.starts_with("feed.");
        if !known {
            return Some(super::placeholder_message(
                name,
                TARGET_PLACEHOLDERS,
                "target",
            ));
        }
        rest = &after[close + "}}".len()..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fragment_is_no_part_of_a_websocket_url() {
        assert!(fragment_problem("ws://h/x#frag").is_some());
        assert!(fragment_problem("ws://h/x?a=%23").is_none());
        assert!(fragment_problem("wss://h/x").is_none());
    }

    #[test]
    fn host_port_names_where_a_url_dials() {
        let cases = [
            ("ws://127.0.0.1:1/ws", Some("127.0.0.1:1")),
            ("ws://user:p@ss@example.com/ws", Some("example.com:80")),
            ("wss://example.com?x=1", Some("example.com:443")),
            ("WSS://[::1]/", Some("[::1]:443")),
            ("ws://[::1]:8080/", Some("[::1]:8080")),
            ("ws:///ws", None),
            ("no scheme", None),
        ];
        for (url, want) in cases {
            assert_eq!(host_port(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn a_url_is_dialled_expanded_and_messages_show_its_references() {
        let env = |name: &str| (name == "K").then(|| "sekrit-77".to_string());
        let written = "ws://h:${P:-8080}/ws?k=${K}";
        assert_eq!(
            dial_url(written, &env).unwrap(),
            "ws://h:8080/ws?k=sekrit-77"
        );
        assert_eq!(
            dial_url(written, &|_| None),
            Err(EnvTextError::Unset { name: "K".into() })
        );
        assert_eq!(
            redact_values("bad query k=sekrit-77 on port 8080", written, &env),
            "bad query k=${K} on port ${P}"
        );
    }

    #[test]
    fn a_literal_password_is_shown_masked_and_a_referenced_one_as_written() {
        assert_eq!(
            shown_url("ws://user:secret@127.0.0.1:9/x"),
            "ws://user:***@127.0.0.1:9/x"
        );
        assert_eq!(
            shown_url("wss://u:p@ss@h?q=a@b"),
            "wss://u:***@h?q=a@b",
            "the last @ of the authority ends the userinfo"
        );
        assert_eq!(shown_url("ws://u:${PW}@h/"), "ws://u:${PW}@h/");
        assert_eq!(shown_url("ws://u:${PW:-hunter2}@h/"), "ws://u:***@h/");
        assert_eq!(shown_url("ws://u:x${PW}@h/"), "ws://u:***@h/");
        for plain in ["ws://h:9/x", "ws://user@h/", "ws://h/a@b", "ws://h?u=a:b@c"] {
            assert_eq!(shown_url(plain), plain);
        }
    }

    /// A credential pasted into the query (k6 style) is never shown: its value is
    /// masked wherever the URL is shown; other parameters, and a secret's value written as
    /// a reference alone, are shown as written.
    #[test]
    fn secret_query_values_in_a_servers_text_are_masked() {
        assert_eq!(
            masked_query_params("400: GET /ws?access_token=LIT0SECRET&room=a HTTP/1.1"),
            "400: GET /ws?access_token=***&room=a HTTP/1.1"
        );
        assert_eq!(
            masked_query_params("see \"/x?room=a;api_key=K-9\" and key=plain"),
            "see \"/x?room=a;api_key=***\" and key=plain"
        );
        let untouched = "GET /ws?room=a&user=b token: x=1";
        assert!(matches!(
            masked_query_params(untouched),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            masked_query_params("?token=${TOK}&sig=***"),
            "?token=${TOK}&sig=***"
        );
    }

    #[test]
    fn the_literal_credentials_of_a_url_are_found_for_the_redactor() {
        assert_eq!(
            literal_credentials("ws://u:pw%40x@h:1/ws?access_token=Tok-1&room=a&api_key=${K}"),
            ["pw@x", "pw%40x", "Tok-1"]
        );
        assert!(literal_credentials("ws://h:1/ws?room=a&user=b").is_empty());
        assert_eq!(literal_credentials("ws://h/?sessionId=S-8;x=1"), ["S-8"]);
    }

    #[test]
    fn a_secret_query_parameter_is_shown_masked() {
        assert_eq!(
            shown_url("wss://h/ws?room=7&api_key=abc123&x=1#top"),
            "wss://h/ws?room=7&api_key=***&x=1#top"
        );
        assert_eq!(
            shown_url("ws://u:pw@h/?Access-Token=t.k.n&sig=zz"),
            "ws://u:***@h/?Access-Token=***&sig=***"
        );
        assert_eq!(shown_url("ws://h/?key=${KEY}"), "ws://h/?key=${KEY}");
        assert_eq!(shown_url("ws://h/?key=${KEY:-dev}"), "ws://h/?key=***");
        assert_eq!(
            shown_url("ws://h/?auth_token=a;room=2&X-Amz-Signature=s&X-Amz-Security-Token=t"),
            "ws://h/?auth_token=***;room=2&X-Amz-Signature=***&X-Amz-Security-Token=***"
        );
        assert_eq!(
            shown_url("ws://h/?api%5Fkey=k&pwd=p"),
            "ws://h/?api%5Fkey=***&pwd=***"
        );
        // camelCase names are words too; a session id is a credential.
        assert_eq!(
            shown_url("ws://h/?accessKey=1&authKey=2&privateKey=3&sessionId=4&session=5&room=6"),
            "ws://h/?accessKey=***&authKey=***&privateKey=***&sessionId=***&session=***&room=6"
        );
        assert_eq!(
            shown_url("ws://h/?accesskey=1&ACCESSKEY=2&sessId=3&SESSID=4&monkey=5"),
            "ws://h/?accesskey=***&ACCESSKEY=***&sessId=***&SESSID=***&monkey=5"
        );
        assert!(lost_a_credential("ws://h/?api_key=***"));
        assert!(lost_a_credential("ws://u:***@h/"));
        assert!(!lost_a_credential("ws://h/?api_key=${KEY}&room=***"));
        assert!(!lost_a_credential("ws://h/?room=1#api_key=***"));
        for plain in [
            "ws://h/?keys=1&room=2",
            "ws://h/?token=",
            "ws://h/?token",
            "ws://h/#key=1",
        ] {
            assert_eq!(shown_url(plain), plain);
        }
    }

    #[test]
    fn a_reference_in_the_userinfo_dials_percent_encoded() {
        let env = |name: &str| (name == "PW").then(|| "a/b@c d#e:f".to_string());
        assert_eq!(
            dial_url("ws://u:${PW}@h:9/x?k=${PW}", &env).unwrap(),
            "ws://u:a%2Fb%40c%20d%23e%3Af@h:9/x?k=a/b@c d#e:f"
        );
        assert_eq!(
            dial_url("ws://u:${NOPE:-p/w}@h/", &env).unwrap(),
            "ws://u:p%2Fw@h/"
        );
        assert_eq!(
            dial_url("ws://u:${NOPE}@h/", &env),
            Err(EnvTextError::Unset {
                name: "NOPE".into()
            })
        );
    }

    /// `ws://host/ocpp/CP{{user}}`: the path and query take the connection's
    /// placeholders; the scheme, userinfo, host and port take none (resolved once).
    #[test]
    fn placeholders_go_in_the_path_and_query_only() {
        let ok = "ws://u:${PW}@127.0.0.1:9000/ocpp/CP{{user}}?c={{ conn }}&g={{group}}&s={{sub}}&f={{feed.id}}&i={{user:int}}";
        assert_eq!(placeholder_problem(ok), None);
        assert!(is_templated(ok));
        for plain in ["ws://h:9/ws", "ws://h", "ws://{{user}}.h/ws"] {
            assert!(!is_templated(plain), "{plain}");
        }
        // A `${...}` default may hold a `/`: the authority does not end inside it.
        assert_eq!(path_start("ws://${H:-a/b}:9/x"), Some(16));
        for (url, found, at) in [
            ("ws://cp{{user}}.example:9/ocpp", "{{user}}", 7),
            ("ws://h:{{conn}}/ws", "{{conn}}", 7),
            ("ws://{{user}}@h/ws", "{{user}}", 5),
            ("w{{s}}s://h/ws", "{{s}}", 1),
            ("ws://h{{user/x", "{{user/x", 6),
        ] {
            assert_eq!(placeholder_in_authority(url), Some((at, found)), "{url}");
            let problem = placeholder_problem(url).unwrap();
            assert!(
                problem.starts_with(&format!("placeholder {found:?} in the URL's host or port; only its path and query take placeholders")),
                "{problem}"
            );
        }
        assert_eq!(placeholder_in_authority(ok), None);
        assert_eq!(
            placeholder_problem("ws://h/ocpp/{{rn}}").as_deref(),
            Some("unknown placeholder \"{{rn}}\" in target; expected one of: {{user}}, {{conn}}, {{group}}, {{sub}}")
        );
        assert_eq!(
            placeholder_problem("ws://h/x?r={{random}}").as_deref(),
            Some("placeholder not available \"{{random}}\" in target; expected one of: {{user}}, {{conn}}, {{group}}, {{sub}}")
        );
        assert_eq!(
            placeholder_problem("ws://h/x/{{user").as_deref(),
            Some("unclosed \"{{\" in target; placeholders look like {{user}}")
        );
    }

    #[test]
    fn ports_out_of_range_or_not_numbers_are_refused() {
        assert_eq!(explicit_port("ws://127.0.0.1:8080/ws"), Ok(Some(8080)));
        assert_eq!(explicit_port("wss://h/ws"), Ok(None));
        assert_eq!(explicit_port("ws://[::1]:9/ws?a=b:c"), Ok(Some(9)));
        assert_eq!(explicit_port("ws://[::1]/ws"), Ok(None));
        assert_eq!(explicit_port("ws://u:pw@h:65535"), Ok(Some(65535)));
        for bad in ["99999", "65536", "abc", "", "0", "+80", "080000"] {
            let url = format!("ws://127.0.0.1:{bad}/ws");
            let err = explicit_port(&url).unwrap_err();
            assert!(err.contains(&format!("invalid port {bad:?}")), "{err}");
        }
    }
}
