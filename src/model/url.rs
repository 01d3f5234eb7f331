//! Target URLs: their port, checked the one way the scenario loader and the dialer share;
//! their `${NAME}` environment references, kept as written everywhere a URL is shown or
//! stored and expanded only to dial ([`dial_url`]); and a password written in their
//! userinfo, shown as `***` ([`shown_url`]).

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
/// (`ws://user:***@host/`). A password written as `${NAME}` references alone (no
/// defaults) is kept: it shows no secret, and a repro holding it can be replayed.
pub fn shown_url(url: &str) -> String {
    let Some(password) = password_range(url) else {
        return url.to_string();
    };
    if is_references_only(&url[password.clone()]) {
        return url.to_string();
    }
    format!(
        "{}{PASSWORD_SHOWN}{}",
        &url[..password.start],
        &url[password.end..]
    )
}

/// Whether `text` is one or more `${NAME}` references and nothing else: no literal text
/// and no default (a default is a literal written in the URL).
fn is_references_only(text: &str) -> bool {
    !text.is_empty()
        && env_pieces(text).all(|piece| matches!(piece, EnvPiece::Ref { default: None, .. }))
}

/// The byte range of the userinfo (`user:pw`, before the `@`) of URL `written`, if it has
/// one. The authority ends at the first `/`, `?` or `#` outside a `${...}` reference (a
/// reference's default may hold any of them).
fn userinfo_range(written: &str) -> Option<Range<usize>> {
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
fn percent_encoded(value: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
