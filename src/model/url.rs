//! The port of a target URL, checked the one way the scenario loader and the dialer share.

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
