//! A group's token pattern: `token = ...` (who shares a token) and `forge = ...` (bad or
//! time-shifted tokens).

use super::dist::parse_duration;
use super::walk::{found, Ctx, Fields, Node};

use crate::model::{BadToken, Forge, TokenReuse};
use toml::de::DeValue;

const TOKEN_CHOICES: &[(&str, TokenReuse)] = &[
    ("per-connection", TokenReuse::PerConnection),
    ("per-user", TokenReuse::PerUser),
    ("cross-user", TokenReuse::CrossUser),
];
const SHIFT_KEYS: &[&str] = &["exp", "nbf", "iat"];

/// `token = "per-connection" | "per-user" | "cross-user" | { share = 4 }`.
pub(super) fn token_reuse(
    cx: &mut Ctx<'_>,
    node: Option<&Node<'_>>,
    users: Option<u32>,
) -> TokenReuse {
    let Some(node) = node else {
        return TokenReuse::PerConnection;
    };
    let reuse = match node.get_ref() {
        DeValue::String(text) => match TOKEN_CHOICES.iter().find(|(name, _)| name == text) {
            Some((_, reuse)) => *reuse,
            None => {
                bad_token(cx, node);
                TokenReuse::PerConnection
            }
        },
        DeValue::Table(table) => {
            // A key of the group written inside `token` (`token = { forge = "catalogue" }`):
            // said once, where it belongs, not as a missing `share` and an unknown field.
            let misplaced = table.iter().find(|(key, _)| {
                let key: &str = key.get_ref().as_ref();
                key != "share" && super::group::GROUP_KEYS.contains(&key)
            });
            if let Some((key, value)) = misplaced {
                let key: &str = key.get_ref().as_ref();
                let message = format!(
                    "token: `{key}` is a key of the [[group]] itself, not of `token`: write it \
                     beside `token` (`{key} = {}`), and `token` as \"per-connection\", \
                     \"per-user\", \"cross-user\" or {{ share = 4 }}",
                    // As written in the file: its own text, not a rendering of it.
                    cx.text().get(value.span()).unwrap_or("...")
                );
                cx.report(node.span(), message);
                return TokenReuse::PerConnection;
            }
            let f = Fields::new(cx, table, node.span(), "token", &["share"]).with_owner("token");
            let k = f
                .require(cx, "share")
                .and_then(|n| f.int(cx, "share", n, 1, u32::MAX.into()));
            TokenReuse::Shared {
                k: k.and_then(|k| u32::try_from(k).ok()).unwrap_or(1),
            }
        }
        _ => {
            bad_token(cx, node);
            TokenReuse::PerConnection
        }
    };
    if reuse == TokenReuse::CrossUser && users.is_some_and(|u| u < 2) {
        let message = "token = \"cross-user\" presents another user's token; it needs users >= 2";
        cx.report(node.span(), message);
    }
    reuse
}

fn bad_token(cx: &mut Ctx<'_>, node: &Node<'_>) {
    let message = format!(
        "token: expected \"per-connection\", \"per-user\", \"cross-user\" or {{ share = 4 }}, found {}",
        found(node.get_ref())
    );
    cx.report(node.span(), message);
}

/// `forge = "catalogue" | "<entry>" | { exp = "-30s", nbf = "+60s", iat = "-1h" }`.
pub(super) fn forge(cx: &mut Ctx<'_>, node: &Node<'_>) -> Option<Forge> {
    match node.get_ref() {
        DeValue::String(name) if name == "catalogue" => Some(Forge::Catalogue),
        DeValue::String(name) if BadToken::from_name(name).is_some() => {
            BadToken::from_name(name).map(|name| Forge::Bad { name })
        }
        DeValue::String(name) => {
            let message = format!(
                "forge: unknown catalogue entry {name:?}; expected \"catalogue\" (every entry) or one of: {}",
                BadToken::names()
            );
            cx.report(node.span(), message);
            None
        }
        DeValue::Table(table) => {
            let f = Fields::new(cx, table, node.span(), "forge", SHIFT_KEYS).with_owner("forge");
            if SHIFT_KEYS.iter().all(|k| f.get(k).is_none()) {
                let message = "forge: a time shift needs at least one of exp, nbf, iat, \
                               e.g. { exp = \"-30s\" }";
                cx.report(node.span(), message);
                return None;
            }
            Some(Forge::Shift {
                exp_s: f.get("exp").and_then(|n| shift(cx, "exp", n)),
                nbf_s: f.get("nbf").and_then(|n| shift(cx, "nbf", n)),
                iat_s: f.get("iat").and_then(|n| shift(cx, "iat", n)),
            })
        }
        other => {
            let message = format!(
                "forge: expected \"catalogue\", a catalogue entry like \"alg-none\", or a time shift \
                 like {{ exp = \"-30s\" }}, found {}",
                found(other)
            );
            cx.report(node.span(), message);
            None
        }
    }
}

fn shift(cx: &mut Ctx<'_>, key: &str, node: &Node<'_>) -> Option<i64> {
    let text = cx.string(key, node)?;
    parse_signed_seconds(text)
        .map_err(|why| cx.report(node.span(), format!("forge.{key}: {why}")))
        .ok()
}

/// `"-30s"`, `"+60s"`, `"1h"`, `"0"`: whole seconds from the minting instant.
pub(super) fn parse_signed_seconds(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let expected =
        || format!("expected a signed duration like \"-30s\", \"+60s\" or \"-1h\", found {text:?}");
    if rest.starts_with(['+', '-']) {
        return Err(expected());
    }
    let duration = parse_duration(rest).map_err(|_| expected())?;
    if duration.subsec_nanos() != 0 {
        return Err(format!(
            "{text:?} is not a whole number of seconds (JWT times are seconds)"
        ));
    }
    i64::try_from(duration.as_secs())
        .map(|s| sign * s)
        .map_err(|_| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_signed_seconds;

    #[test]
    fn signed_seconds() {
        for (text, want) in [
            ("-30s", -30),
            ("+60s", 60),
            ("60s", 60),
            ("-1h", -3600),
            ("0", 0),
            ("-0s", 0),
            ("1m", 60),
            ("+2000ms", 2),
        ] {
            assert_eq!(parse_signed_seconds(text), Ok(want), "{text}");
        }
        for bad in [
            "", "-", "--1s", "+-1s", "1.5s", "500ms", "30", "soon", "-1d",
        ] {
            assert!(parse_signed_seconds(bad).is_err(), "{bad}");
        }
        assert!(parse_signed_seconds("1.5s")
            .unwrap_err()
            .contains("whole number of seconds"));
    }
}
