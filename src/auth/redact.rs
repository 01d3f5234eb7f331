//! Redacting minted tokens out of text the server sent.
//!
//! A server may echo a token (in an error message, a field of an event, a response body),
//! whole, cut, split, re-encoded or spread out with separators. Whatever a run records of
//! received text goes through a [`Redactor`] built from the tokens it minted or read:
//! every whole token (as written, with separators inside it, percent-encoded as a query
//! carries it or every byte of it, in base64 (percent-encoded too), backwards) becomes
//! its `jti` label, and every other piece of one long enough to matter becomes
//! `<part of a token>`: a JWT's signature segment (or its bytes as hex), an opaque
//! token's prefix or suffix, what is left of a JWT the server cut short, a token's start
//! or end where an excerpt was cut.

mod forms;
mod separated;

use super::Token;
use crate::auth::placement::QUERY_VALUE;
use crate::model::history::is_token_byte;
use crate::model::EnvValues;
use forms::Encoding;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;

/// Shortest token looked for: anything shorter (the `missing` and `empty` catalogue entries,
/// hand-made garbage) is no secret and would match ordinary words.
const MIN_TOKEN: usize = 16;

/// The length of the windows of a token that are indexed to find its pieces, and of the
/// shortest piece found at its start or end.
const WINDOW: usize = 16;

/// One window is indexed every `STRIDE` bytes of a token (and one at its very end), so a
/// piece from anywhere inside it is found once it is `WINDOW + STRIDE - 1` bytes long.
const STRIDE: usize = 8;

/// Redacts every token a run minted or read (see `Index`) and every value from the
/// environment the scenario names. Made cheaply: its `Index` of the tokens is built the
/// first time a text is redacted, so a run with nothing to redact (most clean runs) never
/// builds it, and no run builds it before its load starts (~350,000 instructions per JWT,
/// callgrind over `benches/echo.rs` at 1,000 connections).
#[derive(Default)]
pub struct Redactor {
    /// The tokens long enough to be looked for (`MIN_TOKEN`).
    tokens: Vec<Token>,
    index: std::sync::OnceLock<Index>,
    /// Values from the environment the scenario names (an API key in a header or the
    /// URL), each shown as its `${NAME}` ([`Redactor::hiding_env`]).
    env: EnvValues,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} tokens)", self.tokens.len())
    }
}

impl Redactor {
    /// A redactor for `tokens` (shared tokens appear once); nothing is indexed yet.
    pub fn new(tokens: &[Token]) -> Redactor {
        let tokens = tokens
            .iter()
            .filter(|t| t.expose().len() >= MIN_TOKEN)
            .cloned()
            .collect();
        Redactor {
            tokens,
            ..Redactor::default()
        }
    }

    /// Also shows every value of `env` as its `${NAME}`: what a server echoes of a secret
    /// the scenario took from the environment (`X-Api-Key = "${API_KEY}"`).
    pub fn hiding_env(mut self, env: EnvValues) -> Redactor {
        self.env = env;
        self
    }

    /// The tokens' index, built on first use.
    fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::new(&self.tokens))
    }

    /// Whether it holds no token nor value to look for (a quoted URL's secret query
    /// values are hidden all the same: [`Self::redact`]).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.env.is_empty()
    }

    /// `text` with every whole token replaced by its label, every piece of one by
    /// `<part of a token>`, every value from the environment by its `${NAME}`, and every
    /// secret-named query parameter's value by `***`
    /// ([`crate::model::url::masked_query_params`]); borrowed when none occurs.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let tokens = if self.tokens.is_empty() {
            Cow::Borrowed(text)
        } else {
            self.index().redact(text)
        };
        let hidden = if self.env.is_empty() {
            tokens
        } else {
            let hidden = self.env.hide(&tokens);
            if hidden == *tokens {
                tokens
            } else {
                Cow::Owned(hidden)
            }
        };
        // A URL's secret-named query value the server quoted, whatever filled it (a
        // feeder's column, a placeholder): no list of the run's values holds those.
        match crate::model::url::masked_query_params(&hidden) {
            Cow::Borrowed(_) => hidden,
            Cow::Owned(masked) => Cow::Owned(masked),
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
}

/// Replaces every whole token a run minted with `<token jti=JTI>`, and every piece of one
/// (`WINDOW` bytes from its start or its end, or `WINDOW + STRIDE - 1` from anywhere)
/// with `<part of a token>`; the same for a token re-encoded whole ([`Encoding`]: base64,
/// also with its `+`, `/`, `=` percent-encoded, every byte percent-encoded, backwards, a
/// JWT's signature bytes as hex), for one with separators inside it (whitespace, `-`,
/// `\n`, `\u000a` or `\u2028` escaped, `%0A` and `+` as a URL carries them, `<br>` and
/// `&nbsp;` or `&#10;` as HTML does: counted without them; its base64 wrapped too), and for
/// [`separated::EDGE`] characters of a token's start or end at the edge of an excerpt.
///
/// Lookups are by exact token text at every position (a token may be glued to what
/// precedes it: `?token=…`), one hash lookup per distinct token length there, then one
/// for the window starting there, then (only where some re-encoded form starts with that
/// window) one per distinct length of those forms: cost grows with the text, not with the
/// number of tokens. Before that, the text is walked once more without its separators
/// ([`separated::Index::find`], linear too). Memory: each token's text once per form (twice
/// with the copy without separators), ~`len / STRIDE` index entries of 16 bytes (twice),
/// and at most [`Encoding::ALL`] re-encoded forms known by hash (two 8-byte hashes and an
/// entry each). The texts redacted are a run's kept violations and answers, once per run,
/// and a connection's when its logins returned tokens.
#[derive(Default)]
struct Index {
    labels: HashMap<String, String>,
    /// Distinct token lengths, longest first (a longer token wins over a prefix of it).
    lengths: Vec<usize>,
    /// Every form of every token (as written, percent-encoded), for the pieces.
    forms: Vec<Vec<u8>>,
    /// The hash of a window to where it is in `forms`: (form, offset). Two windows of one
    /// hash keep the first (a JWT header is every token's): a piece still matches as far
    /// as it runs along that form, and the scan goes on after it.
    windows: HashMap<u64, (u32, u32)>,
    /// The hash of each re-encoded form of a token to that token's text in `forms` and
    /// the encoding: the form is made again to be compared, not kept (a token's forms
    /// together are several times its length).
    encoded: HashMap<u64, (u32, Encoding)>,
    /// The distinct lengths of the re-encoded forms.
    encoded_lengths: BTreeSet<usize>,
    /// The hashes of their first `WINDOW` bytes: where none starts, none is looked up.
    encoded_starts: HashSet<u64>,
    /// The forms again with separators left out, for a token echoed with separators
    /// inside it or cut at an excerpt's edge ([`separated`]).
    separated: separated::Index,
    hasher: foldhash::fast::FixedState,
}

impl Index {
    /// Indexes `tokens` (shared tokens appear once).
    fn new(tokens: &[Token]) -> Index {
        let mut r = Index::default();
        let mut lengths = BTreeSet::new();
        for token in tokens {
            let text = token.expose();
            if text.len() < MIN_TOKEN {
                continue;
            }
            let encoded = percent_encoding::utf8_percent_encode(text, QUERY_VALUE).to_string();
            let forms = if encoded == text {
                vec![text.to_string()]
            } else {
                vec![text.to_string(), encoded]
            };
            for form in forms {
                if r.labels.contains_key(&form) {
                    continue;
                }
                lengths.insert(form.len());
                let at = r.index(form.as_bytes());
                if let (Some(at), true) = (at, form == text) {
                    r.index_encodings(text, at);
                }
                r.labels.insert(form, label(&token.jti));
            }
        }
        r.lengths = lengths.into_iter().rev().collect();
        let separated = std::mem::take(&mut r.separated);
        r.separated = separated.finish(&r.forms);
        r
    }

    /// Indexes the windows of `form`: one every [`STRIDE`] bytes and the last. Where it
    /// is in `forms`; `None` when it was not kept (shorter than a window, too many forms).
    fn index(&mut self, form: &[u8]) -> Option<u32> {
        let (Ok(at), Some(last)) = (
            u32::try_from(self.forms.len()),
            form.len().checked_sub(WINDOW),
        ) else {
            return None;
        };
        let offsets = (0..=last).step_by(STRIDE).chain([last]);
        for offset in offsets {
            let (Some(window), Ok(offset32)) =
                (form.get(offset..offset + WINDOW), u32::try_from(offset))
            else {
                continue;
            };
            let hash = self.hasher.hash_one(window);
            self.windows.entry(hash).or_insert((at, offset32));
        }
        self.forms.push(form.to_vec());
        Some(at)
    }

    /// Remembers every re-encoded form of `token`, whose text is `forms[at]`, by hash.
    fn index_encodings(&mut self, token: &str, at: u32) {
        for encoding in Encoding::ALL {
            let Some(form) = encoding.apply(token) else {
                continue;
            };
            // Made once for both indexes: the separated one looks for the base64 forms
            // wrapped, by their kept bytes.
            if encoding.is_base64() {
                let core = separated::core_of(form.as_bytes());
                self.separated.add_base64(at, encoding, &core);
            }
            let Some(start) = form.as_bytes().get(..WINDOW) else {
                continue;
            };
            self.encoded_starts.insert(self.hasher.hash_one(start));
            self.encoded_lengths.insert(form.len());
            let hash = self.hasher.hash_one(form.as_bytes());
            self.encoded.entry(hash).or_insert((at, encoding));
        }
    }

    /// `text` with every whole token replaced by its label and every piece of one by
    /// `<part of a token>`; borrowed when none occurs.
    fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        // Whole tokens and their re-encoded forms first: a stretch of a token that its
        // upper-cased echo leaves as it was (digits and capitals in the signature) would
        // otherwise be taken for a piece and cut the echo in two, neither half then whole.
        // Then separated tokens: replacing the pieces found byte for byte first would
        // leave the short stretches between them (a wrapped token's last line) behind.
        let whole = self.redact_tokens(text, false);
        let separated = match self.redact_separated(&whole) {
            Cow::Borrowed(_) => None,
            Cow::Owned(text) => Some(text),
        };
        let rest = separated.as_deref().unwrap_or(&whole);
        match (self.redact_tokens(rest, true), &separated, &whole) {
            (Cow::Borrowed(_), None, Cow::Borrowed(_)) => Cow::Borrowed(text),
            (out, _, _) => Cow::Owned(out.into_owned()),
        }
    }

    /// `text` with every whole token (and re-encoded form of one) replaced by its label,
    /// and, with `pieces`, every piece of one by `<part of a token>`.
    fn redact_tokens<'a>(&self, text: &'a str, pieces: bool) -> Cow<'a, str> {
        if self.labels.is_empty() || text.len() < WINDOW.min(MIN_TOKEN) {
            return Cow::Borrowed(text);
        }
        let bytes = text.as_bytes();
        let mut out: Option<String> = None;
        // Bytes of `text` up to here are already in `out` (or need no change).
        let mut copied = 0;
        let mut i = 0;
        while i + WINDOW.min(MIN_TOKEN) <= bytes.len() {
            // Every position: a token may be glued to anything before it (`?token=…`,
            // `token=…`, `Bearer_…`), and the texts redacted are short.
            let found = self
                .token_at(text, i)
                .or_else(|| self.encoded_at(bytes, i))
                .map(|(len, label)| (i, len, label))
                .or_else(|| {
                    self.piece_at(bytes, i, copied)
                        .filter(|_| pieces)
                        .map(|(s, len)| (s, len, REMNANT))
                })
                .or_else(|| {
                    jwt_remnant(bytes, i)
                        .filter(|_| pieces)
                        .map(|len| (i, len, REMNANT))
                });
            match found {
                Some((start, len, label)) => {
                    // A piece matched byte by byte may begin or end inside a character:
                    // widened to whole ones (hiding a little more).
                    let mut start = start.max(copied);
                    while !text.is_char_boundary(start) {
                        start -= 1;
                    }
                    let mut end = (start + len).max(i + 1).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    let len = end - start;
                    let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    out.push_str(text.get(copied..start).unwrap_or_default());
                    out.push_str(label);
                    i = start + len;
                    copied = i;
                }
                None => i += 1,
            }
        }
        match out {
            Some(mut out) => {
                out.push_str(text.get(copied..).unwrap_or_default());
                Cow::Owned(out)
            }
            None => Cow::Borrowed(text),
        }
    }

    /// `text` with every token echoed with separators inside it (`eyJhbGci OiJIUzI1 …`,
    /// wrapped with `\r\n`), and every token's start or end at an excerpt's edge (at
    /// least [`separated::EDGE`] characters), replaced: a whole token by its label, a piece
    /// by `<part of a token>` (two pieces side by side by one). Borrowed when none occurs.
    fn redact_separated<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let spans = self.separated.find(&self.forms, text.as_bytes());
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        // Bytes of `text` up to here are already in `out`.
        let mut copied = 0;
        let mut last_label = None;
        for span in spans {
            // A span matched byte by byte may begin or end inside a character: widened
            // to whole ones (hiding a little more).
            let mut start = span.start.max(copied);
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = span.end.max(start).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            let start = start.max(copied);
            if end <= start {
                continue;
            }
            let label = match span.found {
                separated::Found::Whole(f) => self.label_of_form(f).unwrap_or(REMNANT),
                separated::Found::Part => REMNANT,
            };
            let glued = start == copied && label == REMNANT && last_label == Some(REMNANT);
            out.push_str(text.get(copied..start).unwrap_or_default());
            if !glued {
                out.push_str(label);
            }
            last_label = Some(label);
            copied = end;
        }
        out.push_str(text.get(copied..).unwrap_or_default());
        Cow::Owned(out)
    }

    /// The label of the token whose form is `forms[f]`.
    fn label_of_form(&self, f: u32) -> Option<&str> {
        let form = std::str::from_utf8(self.forms.get(f as usize)?).ok()?;
        self.labels.get(form).map(String::as_str)
    }

    /// The longest token starting at byte `i` of `text`, with its label.
    fn token_at(&self, text: &str, i: usize) -> Option<(usize, &str)> {
        self.lengths.iter().find_map(|&len| {
            let piece = text.get(i..i.checked_add(len)?)?;
            self.labels.get(piece).map(|l| (len, l.as_str()))
        })
    }

    /// The longest re-encoded form of a token starting at byte `i` of `bytes`, with its
    /// label: the token's for a whole token, `<part of a token>` for its signature's hex.
    fn encoded_at(&self, bytes: &[u8], i: usize) -> Option<(usize, &str)> {
        let start = bytes.get(i..i.checked_add(WINDOW)?)?;
        if !self.encoded_starts.contains(&self.hasher.hash_one(start)) {
            return None;
        }
        self.encoded_lengths.iter().rev().find_map(|&len| {
            let candidate = bytes.get(i..i.checked_add(len)?)?;
            let &(at, encoding) = self.encoded.get(&self.hasher.hash_one(candidate))?;
            let token = std::str::from_utf8(self.forms.get(at as usize)?).ok()?;
            // The hash only names a candidate: the form made again decides.
            if encoding.apply(token)?.as_bytes() != candidate {
                return None;
            }
            let label = if encoding.is_whole() {
                self.labels.get(token)?.as_str()
            } else {
                REMNANT
            };
            Some((len, label))
        })
    }

    /// A piece of a token whose indexed window starts at byte `i` of `bytes`, as (start,
    /// length): grown back (not before `floor`, what is already written out) and forward
    /// as far as the text runs along the token.
    fn piece_at(&self, bytes: &[u8], i: usize, floor: usize) -> Option<(usize, usize)> {
        let window = bytes.get(i..i.checked_add(WINDOW)?)?;
        let &(form, offset) = self.windows.get(&self.hasher.hash_one(window))?;
        let form = self.forms.get(form as usize)?;
        let offset = offset as usize;
        if form.get(offset..offset + WINDOW) != Some(window) {
            return None;
        }
        let back = (1..=offset.min(i - floor))
            .take_while(|k| bytes.get(i - k) == form.get(offset - k))
            .count();
        let ahead = (WINDOW..)
            .take_while(|k| {
                let (Some(b), Some(f)) = (bytes.get(i + k), form.get(offset + k)) else {
                    return false;
                };
                b == f
            })
            .count();
        Some((i - back, back + WINDOW + ahead))
    }
}

/// What replaces a piece of a token that is not one of the run's whole tokens: one the
/// server cut short (a Close reason holds at most 123 bytes), split (a chunked body) or
/// echoed in part (a signature, a prefix).
const REMNANT: &str = "<part of a token>";

/// The length of a JWT remnant at byte `i` of `bytes`: `eyJ` (how a JSON header's base64url
/// begins, RFC 7519 §3) and the token characters after it, at least `MIN_TOKEN` of them;
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

/// What [`hide_token_shaped`] puts in place of a run that may be a token.
pub const TOKEN_SHAPED: &str = "<token-like text>";

/// `text` with every run of token characters ([`is_token_byte`]) that may be a token
/// replaced by [`TOKEN_SHAPED`]: at least 16 bytes long (`MIN_TOKEN`), with a digit or both
/// cases of letters in it (random base64 or hex has them; `connection_established` and
/// other words of a protocol do not). A label's jti ([`label`]) stays. For text that may
/// hold a token no [`Redactor`] knows any more: a connection whose logins returned more
/// distinct tokens than it keeps. Cruder than a `Redactor` (it hides what only looks like a
/// token, and a token split into pieces shorter than 16 bytes stays, as a
/// `Redactor`'s pieces do below its 16-byte `WINDOW`), but it needs no list of tokens.
pub fn hide_token_shaped(text: &mut String) {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !is_token_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_token_byte(bytes[i]) {
            i += 1;
        }
        let run = &bytes[start..i];
        let mixed = run.iter().any(u8::is_ascii_digit)
            || (run.iter().any(u8::is_ascii_lowercase) && run.iter().any(u8::is_ascii_uppercase));
        // A label's `jti=…` ([`label`]), '=' being a token character.
        let labelled = run.starts_with(b"jti=") && bytes[..start].ends_with(b"<token ");
        if run.len() >= MIN_TOKEN && mixed && !labelled {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            // Token bytes are ASCII: `start` and `i` are character boundaries.
            o.push_str(&text[copied..start]);
            o.push_str(TOKEN_SHAPED);
            copied = i;
        }
    }
    if let Some(mut o) = out {
        o.push_str(&text[copied..]);
        *text = o;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run that may be a token is hidden whatever token it is; words, short ids and a
    /// label's jti stay.
    #[test]
    fn token_shaped_runs_are_hidden_and_words_stay() {
        let mut text = String::from(
            r#"{"type":"connection_established","user_id":"login-token-for-u0-0017","sid":"r-1-2"} <token jti=0f3e9a5b-1c2d-4e5f-8a9b-0c1d2e3f4a5b> aGVsbG9Xb3JsZEZvb0Jhcg ünïcode"#,
        );
        hide_token_shaped(&mut text);
        assert_eq!(
            text,
            r#"{"type":"connection_established","user_id":"<token-like text>","sid":"r-1-2"} <token jti=0f3e9a5b-1c2d-4e5f-8a9b-0c1d2e3f4a5b> <token-like text> ünïcode"#
        );
        let mut plain = String::from("nothing_to_hide_here at all");
        hide_token_shaped(&mut plain);
        assert_eq!(plain, "nothing_to_hide_here at all");
    }
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
    fn the_tokens_are_indexed_only_once_a_text_is_redacted() {
        let t = tokens(3);
        let r = Redactor::new(&t);
        assert!(!r.is_empty());
        assert!(
            r.index.get().is_none(),
            "made before the load: nothing indexed yet"
        );
        let text = format!("echo {}", t[2].expose());
        assert_eq!(r.redact(&text), "echo <token jti=jti2>");
        assert!(r.index.get().is_some());
        // Only environment values: no token index is ever needed.
        let lookup = |_: &str| Some("k3y-of-sixteen-bytes".to_string());
        let env = EnvValues::of("X-Api-Key: ${API_KEY}", &lookup);
        let r = Redactor::new(&[]).hiding_env(env);
        assert_eq!(r.redact("key k3y-of-sixteen-bytes"), "key ${API_KEY}");
        assert!(r.index.get().is_none());
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

    /// What a server echoes of a token in part or re-encoded is hidden too: a JWT's
    /// signature segment, an opaque token's prefix or suffix, a token percent-encoded as a
    /// query carries it. A short piece (fewer than 16 bytes) is no secret and stays.
    #[test]
    fn pieces_and_encoded_forms_of_a_token_are_hidden() {
        let t = tokens(3);
        let r = Redactor::new(&t);
        let jwt = t[1].expose();
        let signature = jwt.rsplit('.').next().unwrap();
        assert!(signature.len() >= 40, "{signature}");
        let echoed = format!("{{\"sig\":\"{signature}\"}}");
        assert_eq!(r.redact(&echoed), "{\"sig\":\"<part of a token>\"}");
        let opaque = t[0].with_value("opaque TOKEN/abc123XYZsecretvalue".into());
        let r = Redactor::new(&[opaque]);
        for text in [
            "{\"tok_prefix\":\"opaque TOKEN/abc1\"}",
            "{\"sfx\":\"KEN/abc123XYZsecretvalue\"}",
            "{\"middle\":\"aque TOKEN/abc123XYZsecr\"}",
        ] {
            let out = r.redact(text);
            assert!(out.contains("<part of a token>"), "{text} -> {out}");
            assert!(!out.contains("abc123"), "{text} -> {out}");
        }
        let encoded = "{\"urlenc\":\"opaque%20TOKEN%2Fabc123XYZsecretvalue\"}";
        assert_eq!(r.redact(encoded), "{\"urlenc\":\"<token jti=jti0>\"}");
        // Fewer than 16 bytes of it: no secret, and ordinary text keeps its words.
        let short = "{\"x\":\"secretvalue\"}";
        assert!(matches!(r.redact(short), Cow::Borrowed(_)));
        // Non-ASCII around a piece is kept whole.
        let out = r.redact("é«TOKEN/abc123XYZsecretvalue»ü");
        assert_eq!(out, "é«<part of a token>»ü");
    }

    /// A secret the scenario takes from the environment (an API key in a header or the
    /// URL) that the server echoes is shown as its `${NAME}`, tokens or none.
    #[test]
    fn values_from_the_environment_are_shown_as_their_names() {
        let lookup = |name: &str| (name == "API_KEY").then(|| "SuperSecretApiKey123456".into());
        let env = EnvValues::of("X-Api-Key: ${API_KEY}", &lookup);
        let r = Redactor::new(&[]).hiding_env(env.clone());
        assert!(!r.is_empty());
        assert_eq!(
            r.redact("bad key SuperSecretApiKey123456"),
            "bad key ${API_KEY}"
        );
        assert!(matches!(r.redact("nothing secret here"), Cow::Borrowed(_)));
        let t = tokens(1);
        let both = Redactor::new(&t).hiding_env(env);
        let text = format!("{} / SuperSecretApiKey123456", t[0].expose());
        assert_eq!(both.redact(&text), "<token jti=jti0> / ${API_KEY}");
    }

    /// `bytes` with every byte written `%xx` (`%XX` when `upper`).
    fn percent_all(bytes: &[u8], upper: bool) -> String {
        bytes
            .iter()
            .map(|b| {
                if upper {
                    format!("%{b:02X}")
                } else {
                    format!("%{b:02x}")
                }
            })
            .collect()
    }

    /// A token echoed in base64, in either alphabet, padded or not, is replaced whole by
    /// its label; base64 of other text beside it (a short word, a longer phrase) stays.
    #[test]
    fn a_token_in_base64_is_replaced_by_its_label() {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        use base64::Engine as _;
        let t = tokens(3);
        // Its standard base64 holds `+` and `/` (`-` and `_` in the URL-safe one) and
        // ends in `==`: each of the four forms differs.
        let opaque = t[2].with_value("opaque~~~secret???value-0001".into());
        let standard = STANDARD.encode(opaque.expose());
        assert!(
            standard.contains('+') && standard.contains('/'),
            "{standard}"
        );
        assert!(standard.ends_with("=="), "{standard}");
        let r = Redactor::new(&[t[0].clone(), t[1].clone(), opaque.clone()]);
        let decoys = "dGVzdA== SGVsbG8sIHdvcmxkISBIZWxsbywgd29ybGQh";
        for (token, label) in [(&t[1], "<token jti=jti1>"), (&opaque, "<token jti=jti2>")] {
            let token = token.expose();
            for (engine, form) in [
                ("standard", STANDARD.encode(token)),
                ("standard, no padding", STANDARD_NO_PAD.encode(token)),
                ("url-safe", URL_SAFE.encode(token)),
                ("url-safe, no padding", URL_SAFE_NO_PAD.encode(token)),
            ] {
                let text = format!("{{\"b64\":\"{form}\"}} {decoys}");
                let want = format!("{{\"b64\":\"{label}\"}} {decoys}");
                assert_eq!(r.redact(&text), want, "{engine}");
            }
        }
    }

    /// The bytes of a JWT's signature echoed as hex (lower or upper case) are a piece of
    /// it: with the readable header and claims they rebuild the token. Hex of the same
    /// length that is no token's signature stays.
    #[test]
    fn a_signature_as_hex_is_a_part_of_a_token() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let t = tokens(2);
        let r = Redactor::new(&t);
        let signature = t[1].expose().rsplit('.').next().unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let lower: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // SHA-256 of "hello": 32 bytes as an HS256 signature is, no token's.
        let other = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(lower.len(), other.len());
        for hex in [lower.clone(), lower.to_uppercase()] {
            let text = format!("sig={hex}; sha={other}");
            assert_eq!(
                r.redact(&text),
                format!("sig=<part of a token>; sha={other}")
            );
        }
    }

    /// A token with every byte percent-encoded, in lower- or upper-case hex, is replaced
    /// whole; other percent-encoded text beside it stays.
    #[test]
    fn a_token_with_every_byte_percent_encoded_is_replaced_by_its_label() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        let decoy = percent_all(b"not a token, only words", false);
        for upper in [false, true] {
            let form = percent_all(t[1].expose().as_bytes(), upper);
            let text = format!("GET /ws?token={form}&next={decoy} HTTP/1.1");
            let want = format!("GET /ws?token=<token jti=jti1>&next={decoy} HTTP/1.1");
            assert_eq!(r.redact(&text), want, "upper: {upper}");
        }
    }

    /// A token echoed backwards is replaced whole; other text backwards stays.
    #[test]
    fn a_token_reversed_is_replaced_by_its_label() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        let reversed: String = t[0].expose().chars().rev().collect();
        let decoy: String = "a sentence long enough to be indexed"
            .chars()
            .rev()
            .collect();
        let text = format!("[\"{reversed}\",\"{decoy}\"]");
        assert_eq!(
            r.redact(&text),
            format!("[\"<token jti=jti0>\",\"{decoy}\"]")
        );
    }

    /// Whatever its bytes, a token echoed upper- or lower-cased is replaced whole: a
    /// stretch its change of case leaves as it was (capitals and digits in the signature,
    /// around a `-`) is no piece that cuts the echo in two (a flaky test once: one minted
    /// token in some dozens has such a stretch).
    #[test]
    fn every_token_echoed_in_another_case_is_replaced_whole() {
        let t = tokens(300);
        let r = Redactor::new(&t);
        for (i, token) in t.iter().enumerate() {
            for cased in [token.expose().to_uppercase(), token.expose().to_lowercase()] {
                let text = format!("got {cased}, and ANOTHER WORD LONG ENOUGH TO INDEX");
                assert_eq!(
                    r.redact(&text),
                    format!("got <token jti=jti{i}>, and ANOTHER WORD LONG ENOUGH TO INDEX")
                );
            }
        }
    }

    /// A token echoed upper- or lower-cased is replaced whole.
    #[test]
    fn a_token_echoed_in_another_case_is_replaced_by_its_label() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        for cased in [t[0].expose().to_uppercase(), t[0].expose().to_lowercase()] {
            let text = format!("got {cased}, and {}", "ANOTHER WORD LONG ENOUGH TO INDEX");
            assert_eq!(
                r.redact(&text),
                "got <token jti=jti0>, and ANOTHER WORD LONG ENOUGH TO INDEX"
            );
        }
    }

    /// `text` with `separator` between every `n` characters.
    fn spread(text: &str, n: usize, separator: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        chars
            .chunks(n)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(separator)
    }

    /// A token a server pretty-prints in groups of 8 is replaced whole, as written.
    #[test]
    fn a_token_spaced_every_8_characters_is_replaced_by_its_label() {
        let t = tokens(3);
        let r = Redactor::new(&t);
        let spaced = spread(t[1].expose(), 8, " ");
        assert!(spaced.starts_with("eyJ0eXAi OiJKV1Qi "), "{spaced}");
        let text = format!("invalid token: {spaced} (expired)");
        assert_eq!(r.redact(&text), "invalid token: <token jti=jti1> (expired)");
    }

    /// A token wrapped at 64 columns with `\r\n` (as PEM and MIME wrap base64), raw or
    /// escaped into a quote (`\r\n` written as four characters), is replaced whole; so
    /// is one wrapped where its last line is shorter than any piece looked for.
    #[test]
    fn a_token_wrapped_at_64_columns_with_crlf_is_replaced_by_its_label() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        let token = t[0].expose();
        assert!(token.len() > 128, "{}", token.len());
        // Two full lines and 8 or 9 characters on the last.
        let short_last = (token.len() - 8) / 2;
        for (width, separator) in [(64, "\r\n"), (64, "\\r\\n"), (short_last, "\r\n")] {
            let wrapped = spread(token, width, separator);
            let text = format!("{{\"token\":\"{wrapped}\"}}");
            assert_eq!(
                r.redact(&text),
                "{\"token\":\"<token jti=jti0>\"}",
                "{separator:?}"
            );
        }
    }

    /// A token with the two characters `\n` (a line break escaped into JSON) inserted
    /// every 20 characters is replaced whole.
    #[test]
    fn a_token_with_the_json_escape_of_a_newline_inserted_is_replaced_by_its_label() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        let escaped = spread(t[1].expose(), 20, "\\n");
        assert!(escaped.contains("\\n"), "{escaped}");
        let text = format!("{{\"error\":\"bad token\\n{escaped}\\n\"}}");
        assert_eq!(
            r.redact(&text),
            "{\"error\":\"bad token\\n<token jti=jti1>\\n\"}"
        );
    }

    /// A token wrapped with line breaks percent-encoded (`%0A`, `%0D%0A`, hex in either
    /// case), as a URL or a form body carries a wrapped value, or spaced with `%20` or
    /// with `+` (a space in a query string's form), is replaced whole; the query's other
    /// values, words joined the same ways, stay.
    #[test]
    fn a_token_wrapped_with_url_encoded_line_breaks_or_spaces_is_replaced_by_its_label() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        let token = t[0].expose();
        for (width, separator) in [
            (64, "%0A"),
            (64, "%0D%0A"),
            (76, "%0d%0a"),
            (8, "%20"),
            (8, "+"),
        ] {
            let wrapped = spread(token, width, separator);
            let text = format!("GET /ws?next=%2Fhome&token={wrapped}&lang=en+GB HTTP/1.1");
            assert_eq!(
                r.redact(&text),
                "GET /ws?next=%2Fhome&token=<token jti=jti0>&lang=en+GB HTTP/1.1",
                "{separator}"
            );
        }
        for text in [
            "q=the+quick+brown+fox%20jumps%0D%0Aover+the+lazy+dog&page=2",
            "note=line%20one%0Aline%20two%0Aline%20three%0Aand%20the%20last%20one",
        ] {
            assert!(matches!(r.redact(text), Cow::Borrowed(_)), "{text}");
        }
    }

    /// A token wrapped with line breaks or spaces escaped into JSON by their code
    /// (`\u000a`, `\u000d\u000a`, `\u0020`, the six characters each), or with HTML line
    /// breaks between its groups (`<br>`, `<br/>`, `<br />`), is replaced whole; prose
    /// broken the same ways stays.
    #[test]
    fn a_token_wrapped_with_unicode_escapes_or_html_breaks_is_replaced_by_its_label() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        let token = t[1].expose();
        for (width, separator) in [
            (64, "\\u000a"),
            (64, "\\u000d\\u000a"),
            (76, "\\u000D\\u000A"),
            (8, "\\u0020"),
        ] {
            let wrapped = spread(token, width, separator);
            let text = format!("{{\"error\":\"bad token\\u000a{wrapped}\\u000a\"}}");
            assert_eq!(
                r.redact(&text),
                "{\"error\":\"bad token\\u000a<token jti=jti1>\\u000a\"}",
                "{separator}"
            );
        }
        for (width, separator) in [(64, "<br>"), (32, "<br/>"), (16, "<br />\n")] {
            let wrapped = spread(token, width, separator);
            let text = format!("<p>Token:<br>{wrapped}<br>expired</p>");
            assert_eq!(
                r.redact(&text),
                "<p>Token:<br><token jti=jti1><br>expired</p>",
                "{separator}"
            );
        }
        for text in [
            "{\"msg\":\"line one\\u000aline two\\u000d\\u000aand\\u0020the\\u0020last\"}",
            "<p>first line<br>second line<br/>third<br />and the last of them</p>",
        ] {
            assert!(matches!(r.redact(text), Cow::Borrowed(_)), "{text}");
        }
    }

    /// A token's base64 wrapped as MIME wraps a body (76 columns, `\r\n`), as PEM does (64,
    /// `\n`), or with the line break escaped into JSON, is replaced whole: in either
    /// alphabet, padded or not. Base64 of other text wrapped the same way beside it stays.
    #[test]
    fn a_token_in_base64_wrapped_mime_style_is_replaced_by_its_label() {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        use base64::Engine as _;
        let t = tokens(3);
        let opaque = t[2].with_value("opaque~~~secret???value-0001".into());
        let r = Redactor::new(&[t[0].clone(), t[1].clone(), opaque.clone()]);
        let decoy = spread(
            &STANDARD.encode(
                "a phrase that is no token, long enough to wrap: in base64 as a mail's body",
            ),
            76,
            "\r\n",
        );
        assert!(decoy.contains("\r\n"), "{decoy}");
        let mail = format!("Content-Transfer-Encoding: base64\r\n\r\n{decoy}\r\n");
        assert!(matches!(r.redact(&mail), Cow::Borrowed(_)));
        for (token, label) in [(&t[1], "<token jti=jti1>"), (&opaque, "<token jti=jti2>")] {
            let token = token.expose();
            for (engine, form) in [
                ("standard", STANDARD.encode(token)),
                ("standard, no padding", STANDARD_NO_PAD.encode(token)),
                ("url-safe", URL_SAFE.encode(token)),
                ("url-safe, no padding", URL_SAFE_NO_PAD.encode(token)),
            ] {
                for (width, separator) in [(76, "\r\n"), (64, "\n"), (16, "\\r\\n")] {
                    let wrapped = spread(&form, width, separator);
                    assert!(form.len() <= width || wrapped.contains(separator));
                    let text = format!("{{\"body\":\"{wrapped}\"}}\r\n--b\r\n{mail}");
                    let want = format!("{{\"body\":\"{label}\"}}\r\n--b\r\n{mail}");
                    assert_eq!(r.redact(&text), want, "{engine}, {width}");
                }
            }
        }
    }

    /// A token that a server renders into HTML, wrapped or spaced with character
    /// references to blanks (`&nbsp;`, `&#10;`, `&#13;&#10;`, `&#x0a;`, `&#xA;`, `&#X0A;`,
    /// `&#32;`), is replaced whole; prose spaced the same ways, and other references
    /// (`&amp;`, `&#65;`), stay.
    #[test]
    fn a_token_wrapped_with_html_character_references_is_replaced_by_its_label() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        let token = t[1].expose();
        for (width, separator) in [
            (8, "&nbsp;"),
            (8, "&NBSP;"),
            (64, "&#10;"),
            (76, "&#13;&#10;"),
            (64, "&#x0a;"),
            (64, "&#xA;"),
            (32, "&#X0A;\n"),
            (8, "&#32;"),
            (16, "&#x00020;"),
        ] {
            let wrapped = spread(token, width, separator);
            let text = format!("<p>Token:&nbsp;{wrapped}&#10;expired &amp; gone</p>");
            assert_eq!(
                r.redact(&text),
                "<p>Token:&nbsp;<token jti=jti1>&#10;expired &amp; gone</p>",
                "{separator}"
            );
        }
        for text in [
            "<p>first&nbsp;line&#10;second&#13;&#10;line&#x0a;third&#xA;and&#32;the&#32;last</p>",
            "<p>Tom &amp; Jerry&#65;&#x42; and&#160;more&#8232;words, all of them ordinary</p>",
        ] {
            assert!(matches!(r.redact(text), Cow::Borrowed(_)), "{text}");
        }
    }

    /// A token wrapped with the line and paragraph separators U+2028 and U+2029, escaped
    /// into JSON (`\u2028`, as encoders write them for JavaScript) or raw, is replaced
    /// whole; prose broken the same ways stays.
    #[test]
    fn a_token_wrapped_with_unicode_line_separators_is_replaced_by_its_label() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        let token = t[1].expose();
        for (width, separator) in [
            (64, "\\u2028"),
            (64, "\\u2029"),
            (32, "\u{2028}"),
            (16, "\u{2029}"),
        ] {
            let wrapped = spread(token, width, separator);
            let text = format!("{{\"error\":\"bad token{separator}{wrapped}{separator}\"}}");
            assert_eq!(
                r.redact(&text),
                format!("{{\"error\":\"bad token{separator}<token jti=jti1>{separator}\"}}"),
                "{separator:?}"
            );
        }
        let prose = "{\"msg\":\"line one\\u2028line two\\u2029and\u{2028}the\u{2029}last\"}";
        assert!(matches!(r.redact(prose), Cow::Borrowed(_)));
    }

    /// A token wrapped with HTML line breaks written with whitespace of any kind and
    /// count before the `/` (`<br  />`, `<br\t/>`, `<br\r\n/>`) or in capitals (`<BR>`,
    /// `<BR  />`) is replaced whole; prose broken the same ways stays.
    #[test]
    fn a_token_wrapped_with_loosely_written_html_breaks_is_replaced_by_its_label() {
        let t = tokens(2);
        let r = Redactor::new(&t);
        let token = t[1].expose();
        for (width, separator) in [
            (64, "<br  />"),
            (32, "<br\t/>"),
            (32, "<br\r\n/>"),
            (64, "<BR>"),
            (16, "<BR   />\n"),
            (16, "<Br\t>"),
        ] {
            let wrapped = spread(token, width, separator);
            let text = format!("<p>Token:<br>{wrapped}<BR  />expired</p>");
            assert_eq!(
                r.redact(&text),
                "<p>Token:<br><token jti=jti1><BR  />expired</p>",
                "{separator:?}"
            );
        }
        let prose = "<p>first line<br  />second line<br\t/>third<BR>and the last of them</p>";
        assert!(matches!(r.redact(prose), Cow::Borrowed(_)));
    }

    /// `text` as a form body or a query carries it: `+`, `/`, `=` and line breaks
    /// percent-encoded, hex in upper or lower case.
    fn form_encoded(text: &str, upper: bool) -> String {
        let mut out = String::new();
        for c in text.chars() {
            if !matches!(c, '+' | '/' | '=' | '\r' | '\n') {
                out.push(c);
                continue;
            }
            let code = u32::from(c);
            if upper {
                out.push_str(&format!("%{code:02X}"));
            } else {
                out.push_str(&format!("%{code:02x}"));
            }
        }
        out
    }

    /// A token's base64 sent as a query or form value and echoed as it arrived (`+`, `/`
    /// and `=` percent-encoded, hex in either case), whole or wrapped as MIME wraps it
    /// (76 columns, `%0D%0A`), is replaced whole: standard alphabet padded or not,
    /// URL-safe padded. Base64 of other text encoded the same way beside it stays.
    #[test]
    fn a_token_in_base64_then_percent_encoded_is_replaced_by_its_label() {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
        use base64::Engine as _;
        let t = tokens(3);
        // Its standard base64 holds `+` and `/` and ends in `==`.
        let opaque = t[2].with_value("opaque~~~secret???value-0001".into());
        let r = Redactor::new(&[t[0].clone(), t[1].clone(), opaque.clone()]);
        let decoy =
            STANDARD.encode("a phrase that is no token: ~~~??? long enough to wrap, in base64");
        assert!(decoy.contains(['+', '/', '=']), "{decoy}");
        for (token, label) in [(&t[1], "<token jti=jti1>"), (&opaque, "<token jti=jti2>")] {
            let token = token.expose();
            for (engine, form) in [
                ("standard", STANDARD.encode(token)),
                ("standard, no padding", STANDARD_NO_PAD.encode(token)),
                ("url-safe", URL_SAFE.encode(token)),
            ] {
                for (wrap, upper) in [(false, true), (false, false), (true, true), (true, false)] {
                    let form = if wrap {
                        spread(&form, 76, "\r\n")
                    } else {
                        form.clone()
                    };
                    let encoded = form_encoded(&form, upper);
                    let decoy = form_encoded(&decoy, upper);
                    let text = format!("token={encoded}&next={decoy}&lang=en");
                    let want = format!("token={label}&next={decoy}&lang=en");
                    assert_eq!(
                        r.redact(&text),
                        want,
                        "{engine}, wrapped: {wrap}, upper: {upper}"
                    );
                }
            }
        }
        // The opaque token's standard base64 is escaped where it matters.
        let escaped = form_encoded(&STANDARD.encode(opaque.expose()), true);
        assert!(
            escaped.contains("%2B") && escaped.contains("%2F"),
            "{escaped}"
        );
        assert!(escaped.ends_with("%3D%3D"), "{escaped}");
    }

    /// An opaque token made of base64url characters: its own `-` and `_`, at its ends
    /// too, are part of it, not separators between two pieces of it.
    const URL_SAFE_KEY: &str = "-sk_live_Ab3_dE9-xY2_kLm5-pQ7_";

    /// A token's own `-` and `_` are not taken for separators: echoed as written, spaced,
    /// or with `-` inserted beside its own, it is replaced whole, its `-` and `_` at both
    /// ends with it; a `-` the text adds around it stays.
    #[test]
    fn base64url_dashes_and_underscores_in_a_token_are_not_taken_for_separators() {
        let key = tokens(1)[0].with_value(URL_SAFE_KEY.into());
        let r = Redactor::new(&[key]);
        for echoed in [
            URL_SAFE_KEY.to_string(),
            spread(URL_SAFE_KEY, 8, " "),
            spread(URL_SAFE_KEY, 6, "-"),
            spread(URL_SAFE_KEY, 4, "\r\n"),
        ] {
            let text = format!("key -{echoed}- refused");
            assert_eq!(
                r.redact(&text),
                "key -<token jti=jti0>- refused",
                "{echoed}"
            );
        }
    }

    /// An excerpt cut inside a token (one with separators in it: a cut never falls
    /// inside a run of token characters) leaves its start before the `…`; a text may
    /// begin inside one (a Close reason cut by the server) and show its end. At least 12
    /// of its characters there are hidden: shorter than a piece found anywhere.
    #[test]
    fn a_token_cut_at_an_excerpt_edge_is_hidden() {
        let t = tokens(2);
        let key = t[0].with_value("Zq8dL2pX9vR4mT7kW3nB6yH1".into());
        let r = Redactor::new(&[key, t[1].clone()]);
        let prefix = "Zq8dL2pX9vR4m";
        let suffix = "mT7kW3nB6yH1";
        for (text, want) in [
            (
                format!("bad key {prefix}… (see logs)"),
                "bad key <part of a token>… (see logs)",
            ),
            (format!("bad key {prefix}"), "bad key <part of a token>"),
            (
                format!("{suffix} was refused"),
                "<part of a token> was refused",
            ),
            (
                format!("[\"a\"]…{suffix}\" refused"),
                "[\"a\"]…<part of a token>\" refused",
            ),
        ] {
            assert_eq!(r.redact(&text), want, "{text}");
        }
        // What an excerpt keeps of a token printed in groups of 4: 12 characters, then
        // the cut.
        let grouped = spread("Zq8dL2pX9vR4mT7kW3nB6yH1", 4, " ");
        let body = format!("bad key {grouped}");
        let cut = crate::model::history::excerpt(&body, 26);
        assert_eq!(cut, "bad key Zq8d L2pX 9vR4 …");
        assert_eq!(r.redact(&cut), "bad key <part of a token> …");
        // A token's `-` count among its characters: 12 of a UUID's, 11 kept bytes.
        let uuid = t[0].with_value("550e8400-e29b-41d4-a716-446655440000".into());
        let r = Redactor::new(&[uuid, t[1].clone()]);
        for (text, want) in [
            ("session 550e8400-e29…", "session <part of a token>…"),
            ("16-446655440000 expired", "<part of a token> expired"),
        ] {
            assert_eq!(r.redact(text), want, "{text}");
        }
        // A JWT's last 13 characters, where a text begins: its signature's end.
        let jwt = t[1].expose();
        let end = &jwt[jwt.len() - 13..];
        let text = format!("{end}\" rejected");
        assert_eq!(r.redact(&text), "<part of a token>\" rejected");
    }

    /// Text that shares only short runs with a token stays as it is: fewer than 12 of a
    /// token's characters at an edge, fewer than 16 of its first ones with separators
    /// between them, its groups out of order, words joined by `-` and `_`.
    #[test]
    fn text_that_shares_only_short_runs_with_a_token_is_kept() {
        let t = tokens(2);
        let token = "Zq8dL2pX9vR4mT7kW3nB6yH1";
        let key = t[0].with_value(token.into());
        let uuid = t[0].with_value("550e8400-e29b-41d4-a716-446655440000".into());
        let r = Redactor::new(&[key, uuid, t[1].clone()]);
        let groups: Vec<&str> = (0..3).map(|i| &token[i * 8..i * 8 + 8]).collect();
        for text in [
            format!("bad key {}… (see logs)", &token[..11]),
            "session 550e8400-e2… expired".to_string(),
            format!("{} was refused", &token[token.len() - 11..]),
            format!("key {} is not it", spread(&token[..15], 5, " ")),
            format!(
                "groups {} {} {} in another order",
                groups[0], groups[2], groups[1]
            ),
            "user-1 said hello_world to user_2 - a-b-c-d-e-f-g-h-i-j-k-l".to_string(),
            format!("header {} alone", spread(&t[1].expose()[..11], 4, " ")),
        ] {
            assert!(matches!(r.redact(&text), Cow::Borrowed(_)), "{text}");
        }
    }

    /// A mebibyte of text (frames can be that large) with tokens spread through it,
    /// some pretty-printed and some wrapped, and a stretch of nothing but JWT headers in
    /// groups (each the start of every token): every token is replaced and every other
    /// byte kept. Correctness only; the cost is linear in the text by construction.
    #[test]
    fn a_mebibyte_of_text_with_spread_tokens_is_redacted_exactly() {
        let t = tokens(3);
        let r = Redactor::new(&t);
        let filler = "the quick-brown fox\r\njumps over_the lazy dog\\n\t- ok ";
        let mut text = String::new();
        let mut want = String::new();
        let mut n = 0;
        while text.len() < 1 << 20 {
            text.push_str(filler);
            want.push_str(filler);
            n += 1;
            if n % 1000 == 0 {
                let i = (n / 1000) % t.len();
                let echoed = match i {
                    0 => spread(t[i].expose(), 8, " "),
                    1 => spread(t[i].expose(), 64, "\r\n"),
                    _ => spread(t[i].expose(), 20, "\\n"),
                };
                text.push_str(&echoed);
                want.push_str(&label(&format!("jti{i}")));
            }
        }
        assert_eq!(r.redact(&text), want);
        let header = spread(&t[0].expose()[..36], 8, " ");
        let headers = format!("{header} ").repeat((1 << 20) / (header.len() + 1));
        let out = r.redact(&headers);
        assert!(!out.is_empty());
        assert!(
            out.replace(REMNANT, "").trim().is_empty(),
            "{}",
            &out[..200]
        );
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
