//! Target URLs: their port, checked the one way the scenario loader and the dialer share,
//! and their `${NAME}` environment references, kept as written everywhere a URL is shown or
//! stored and expanded only to dial ([`dial_url`]).

use super::spec::{expand_env, EnvTextError, EnvValues};

/// The URL to dial for a target URL as written: its `${NAME}` / `${NAME:-default}`
/// references expanded through `lookup` (`$${` is a literal `${`). A URL may carry a
/// secret that way (`?api_key=${API_KEY}`): results, plans, repros and messages keep the
/// URL as written, and only the dialer holds this value.
pub fn dial_url(
    written: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, EnvTextError> {
    expand_env(written, lookup)
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
