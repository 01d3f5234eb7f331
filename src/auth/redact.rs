//! Redacting minted tokens out of text the server sent.
//!
//! A server may echo a token (in an error message, a field of an event, a response body).
//! Whatever a run records of received text goes through a [`Redactor`] built from the
//! tokens it minted, which replaces every whole token with its `jti` label, and what is
//! left of a JWT the server cut short or split with `<part of a token>`.

use super::Token;
use crate::model::history::is_token_byte;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

/// Shortest token looked for: anything shorter (the `missing` and `empty` catalogue entries,
/// hand-made garbage) is no secret and would match ordinary words.
const MIN_TOKEN: usize = 16;

/// Replaces every whole token a run minted with `<token jti=JTI>`.
///
/// Lookups are by exact token text at every position (a token may be glued to what
/// precedes it: `?token=…`), one hash lookup per distinct token length there: cost grows
/// with the text, not with the number of tokens. The texts redacted are a run's kept
/// violations and answers, once per run.
#[derive(Default)]
pub struct Redactor {
    labels: HashMap<String, String>,
    /// Distinct token lengths, longest first (a longer token wins over a prefix of it).
    lengths: Vec<usize>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} tokens)", self.labels.len())
    }
}

impl Redactor {
    /// A redactor for `tokens` (shared tokens appear once).
    pub fn new(tokens: &[Token]) -> Redactor {
        let mut labels = HashMap::new();
        let mut lengths = BTreeSet::new();
        for token in tokens {
            let jwt = token.expose();
            if jwt.len() < MIN_TOKEN {
                continue;
            }
            lengths.insert(jwt.len());
            labels
                .entry(jwt.to_string())
                .or_insert_with(|| label(&token.jti));
        }
        Redactor {
            labels,
            lengths: lengths.into_iter().rev().collect(),
        }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `text` with every whole token replaced by its label; borrowed when none occurs.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.labels.is_empty() || text.len() < MIN_TOKEN {
            return Cow::Borrowed(text);
        }
        let bytes = text.as_bytes();
        let mut out: Option<String> = None;
        // Bytes of `text` up to here are already in `out` (or need no change).
        let mut copied = 0;
        let mut i = 0;
        while i + MIN_TOKEN <= bytes.len() {
            // Every position: a token may be glued to anything before it (`?token=…`,
            // `token=…`, `Bearer_…`), and the texts redacted are short.
            let found = self
                .token_at(text, i)
                .or_else(|| jwt_remnant(bytes, i).map(|len| (len, REMNANT)));
            match found {
                Some((len, label)) => {
                    let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    out.push_str(&text[copied..i]);
                    out.push_str(label);
                    i += len;
                    copied = i;
                }
                None => i += 1,
            }
        }
        match out {
            Some(mut out) => {
                out.push_str(&text[copied..]);
                Cow::Owned(out)
            }
            None => Cow::Borrowed(text),
        }
    }

    /// Redacts in place.
    pub fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(redacted) = self.redact(text) {
            *text = redacted;
        }
    }

    /// At most `max` bytes of `text` (cut on a character boundary), redacted first so a
    /// token the cut would split is still replaced whole: for excerpts of what a server
    /// sent (a response body).
    pub fn excerpt(&self, text: &str, max: usize) -> String {
        let redacted = self.redact(text);
        let mut end = redacted.len().min(max);
        while !redacted.is_char_boundary(end) {
            end -= 1;
        }
        redacted[..end].to_string()
    }

    /// The longest token starting at byte `i` of `text`, with its label.
    fn token_at(&self, text: &str, i: usize) -> Option<(usize, &str)> {
        self.lengths.iter().find_map(|&len| {
            let piece = text.get(i..i.checked_add(len)?)?;
            self.labels.get(piece).map(|l| (len, l.as_str()))
        })
    }
}

/// What replaces the remnant of a JWT that is not one of the run's whole tokens: one the
/// server cut short (a Close reason holds at most 123 bytes) or split (a chunked body).
const REMNANT: &str = "<part of a token>";

/// The length of a JWT remnant at byte `i` of `bytes`: `eyJ` (how a JSON header's base64url
/// begins, RFC 7519 §3) and the token characters after it, at least [`MIN_TOKEN`] of them;
/// `None` elsewhere. Glued to what comes before or not: safer to hide a base64 blob's tail
/// than to print a token's header and claims.
fn jwt_remnant(bytes: &[u8], i: usize) -> Option<usize> {
    let rest = bytes.get(i..)?;
    if !rest.starts_with(b"eyJ") {
        return None;
    }
    let len = rest
        .iter()
        .take_while(|b| is_token_byte(**b) && **b != b'=')
        .count();
    (len >= MIN_TOKEN).then_some(len)
}

/// What a token is replaced with.
pub fn label(jti: &str) -> String {
    format!("<token jti={jti}>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::mint_all;
    use crate::auth::tests::{auth_plan, keys};
    use crate::model::{JwtAlg, TokenPlan};

    fn tokens(n: usize) -> Vec<Token> {
        let slots: Vec<TokenPlan> = (0..n)
            .map(|i| TokenPlan {
                sub: format!("user-{i}"),
                jti: format!("jti{i}"),
                forge: None,
            })
            .collect();
        let alg = JwtAlg::Hs256;
        mint_all(&slots, &auth_plan(alg), &keys(alg)).unwrap()
    }

    #[test]
    fn every_whole_token_is_replaced_by_its_label_wherever_it_stands() {
        let t = tokens(3);
        let r = Redactor::new(&t);
        let (a, b) = (t[0].expose(), t[2].expose());
        let text = format!("{a} and \"Bearer {b}\",x={a}.");
        let out = r.redact(&text);
        assert_eq!(
            out,
            "<token jti=jti0> and \"Bearer <token jti=jti2>\",x=<token jti=jti0>."
        );
        for tok in &t {
            assert!(!out.contains(tok.expose()));
        }
        // Glued to other base64 characters: still found (a JWT begins with `eyJ`).
        let glued = format!("abc{a}");
        assert_eq!(r.redact(&glued), "abc<token jti=jti0>");
    }

    #[test]
    fn text_without_tokens_is_borrowed_unchanged() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        let text = "user_id = \"user-1\"; eyJ but not a token";
        assert!(matches!(r.redact(text), Cow::Borrowed(_)));
        assert!(Redactor::new(&[]).is_empty());
    }

    #[test]
    fn what_is_left_of_a_cut_or_split_jwt_is_hidden_too() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        // A Close reason holds 123 bytes: the server cut the token short.
        let half = format!("bad token {}", &t[0].expose()[..30]);
        assert_eq!(r.redact(&half), "bad token <part of a token>");
        // A chunked body split it: both pieces go.
        let (a, b) = t[1].expose().split_at(40);
        let chunked = format!("22\r\n{{\"token\":\"{a}\r\n1a\r\n{b}\"}}");
        let out = r.redact(&chunked);
        assert!(!out.contains("eyJ"), "{out}");
        assert!(out.contains("<part of a token>"), "{out}");
    }

    #[test]
    fn an_opaque_token_glued_to_what_precedes_it_is_found() {
        let opaque = tokens(1)[0].with_value("sk_live_SUPERSECRET_opaque_0001".into());
        let r = Redactor::new(&[opaque]);
        for text in [
            "Cannot GET /ws?token=sk_live_SUPERSECRET_opaque_0001",
            "xxx token=sk_live_SUPERSECRET_opaque_0001 yyy",
            "Bearer_sk_live_SUPERSECRET_opaque_0001",
        ] {
            let out = r.redact(text);
            assert!(!out.contains("SUPERSECRET"), "{out}");
            assert!(out.contains("<token jti=jti0>"), "{out}");
        }
    }

    #[test]
    fn an_excerpt_redacts_before_it_cuts() {
        let t = tokens(1);
        let r = Redactor::new(&t);
        let body = format!("invalid token {} (expired)", t[0].expose());
        let cut = r.excerpt(&body, 20);
        assert_eq!(cut, "invalid token <token");
        assert!(!cut.contains(&t[0].expose()[..10]));
        assert_eq!(r.excerpt("héllo", 2), "h");
    }
}
