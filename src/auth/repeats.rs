//! Tokens of a source that a server would take for one token: the same text twice, or two
//! JWTs with one `jti` (what servers key their sessions by).
//!
//! A source's tokens are labelled by position (`list#1`, `file#4`), so a repeated token
//! would carry two labels: the session oracles would judge its two holders as two
//! sessions, and a correct server that refuses the second concurrent use (409, or its
//! declared close) would read as a liveness violation. The loader and the run refuse such
//! a source instead, naming the entries by position and never by their text.

use base64::Engine;
use std::collections::HashMap;

/// Why a token is one with an earlier token of its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sameness {
    /// The same text.
    Text,
    /// Different texts, both JWTs whose payloads carry the same `jti` claim.
    Jti,
}

/// A token that repeats an earlier one of its source, both named by their 1-based
/// position as the source counts them (an entry of a list, a line of a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    /// Where the token first appeared.
    pub first: usize,
    /// Where it appeared again.
    pub again: usize,
    /// What makes the two one token.
    pub same: Sameness,
}

/// What a user does about a repeated token, after [`Repeat::describe`].
pub const REPEAT_ADVICE: &str = "a server takes them for one token, stampede would take them \
     for two and judge a refusal of the second concurrent use as a violation; give each token \
     once (with fewer tokens than token slots they are reused in turn, and judged as one)";

impl Repeat {
    /// `entries 1 and 3 are the same token`, `lines 2 and 5 carry the same jti` (`unit`:
    /// `entries`, `lines`). Never any part of the tokens.
    pub fn describe(&self, unit: &str) -> String {
        let same = match self.same {
            Sameness::Text => "are the same token",
            Sameness::Jti => "are JWTs with the same jti",
        };
        format!("{unit} {} and {} {same}", self.first, self.again)
    }
}

/// Every token of `tokens` (position, text) that repeats an earlier one, in order; each
/// names the first token it repeats. The same text is reported as such even when the
/// token is a JWT.
pub fn repeats<'t>(tokens: impl IntoIterator<Item = (usize, &'t str)>) -> Vec<Repeat> {
    let mut by_text: HashMap<&str, usize> = HashMap::new();
    let mut by_jti: HashMap<String, usize> = HashMap::new();
    let mut found = Vec::new();
    for (position, token) in tokens {
        if let Some(&first) = by_text.get(token) {
            found.push(Repeat {
                first,
                again: position,
                same: Sameness::Text,
            });
            continue;
        }
        by_text.insert(token, position);
        let Some(jti) = jwt_jti(token) else {
            continue;
        };
        match by_jti.get(&jti) {
            Some(&first) => found.push(Repeat {
                first,
                again: position,
                same: Sameness::Jti,
            }),
            None => {
                by_jti.insert(jti, position);
            }
        }
    }
    found
}

/// The `jti` claim of a compact JWT (`header.payload.signature`), as text; `None` for
/// anything else (an opaque token, a payload that is no JSON object, no `jti`).
fn jwt_jti(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match claims.get("jti")? {
        serde_json::Value::String(jti) => Some(jti.clone()),
        serde_json::Value::Number(jti) => Some(jti.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#), b64(payload))
    }

    fn at(first: usize, again: usize, same: Sameness) -> Repeat {
        Repeat { first, again, same }
    }

    #[test]
    fn the_same_text_twice_is_one_token() {
        let tokens = ["tok-a", "tok-b", "tok-a", "tok-c", "tok-a", "tok-b"];
        let found = repeats(tokens.iter().enumerate().map(|(i, t)| (i + 1, *t)));
        assert_eq!(
            found,
            [
                at(1, 3, Sameness::Text),
                at(1, 5, Sameness::Text),
                at(2, 6, Sameness::Text)
            ]
        );
        assert_eq!(
            found[0].describe("entries"),
            "entries 1 and 3 are the same token"
        );
        assert!(repeats([(1, "tok-a"), (2, "tok-b")]).is_empty());
    }

    #[test]
    fn jwts_with_one_jti_are_one_token_whatever_else_differs() {
        let a = jwt(r#"{"sub":"u1","jti":"j-1","exp":100}"#);
        let a_later = jwt(r#"{"sub":"u1","jti":"j-1","exp":200}"#);
        let b = jwt(r#"{"sub":"u2","jti":"j-2","exp":100}"#);
        let numeric = jwt(r#"{"jti":7}"#);
        let numeric_again = jwt(r#"{"jti":7,"x":1}"#);
        let found = repeats([
            (2, a.as_str()),
            (4, b.as_str()),
            (7, a_later.as_str()),
            (9, a.as_str()),
            (10, numeric.as_str()),
            (11, numeric_again.as_str()),
        ]);
        assert_eq!(
            found,
            [
                at(2, 7, Sameness::Jti),
                at(2, 9, Sameness::Text),
                at(10, 11, Sameness::Jti)
            ]
        );
        assert_eq!(
            found[0].describe("lines"),
            "lines 2 and 7 are JWTs with the same jti"
        );
    }

    #[test]
    fn tokens_without_a_readable_jti_are_compared_by_text_only() {
        let no_jti = jwt(r#"{"sub":"u1"}"#);
        let no_jti_other = jwt(r#"{"sub":"u2"}"#);
        let not_json = "aGVsbG8.aGVsbG8.x";
        let dotted = "a.b.c.d";
        let tokens = [no_jti.as_str(), &no_jti_other, not_json, dotted, "a.b"];
        assert!(repeats(tokens.iter().enumerate().map(|(i, t)| (i + 1, *t))).is_empty());
    }
}
