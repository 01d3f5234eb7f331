//! Header values that may hold environment variables (`${NAME}`, `${NAME:-default}`).
//!
//! A value that named a variable may be a secret (an API key in `[auth] headers`): plans,
//! `plan.json`, `stampede plan` and repro files keep it as the scenario wrote it, and only
//! the run holds the expanded value. A plan read back from a file expands it again from the
//! environment of the process that replays it ([`EnvText::fill`]).
//!
//! A literal credential (the value of a credential-bearing header, a login body that names
//! one: see [`is_credential_header`]) is held as [`EnvText::Secret`]: sent as written, but
//! stored as `"<redacted>"`, as a literal `[auth] secret` is ([`SecretText`]).

use super::auth::SecretText;
use serde::{Deserialize, Serialize};

/// A string as the scenario wrote it, and its value.
///
/// Serialized as a plain string when no environment variable was involved, else as
/// `{"env": "<the string as written>"}` (never the value); a literal credential as
/// `"<redacted>"`, which reads back as a secret not stored. `Debug` never shows the value
/// of an `Env` text either. Two texts are equal when they were written the same: a plan
/// read back from its file equals the plan written, whatever the variables held.
#[derive(Clone)]
pub enum EnvText {
    /// A value written in the scenario as it is.
    Plain(String),
    /// A value that named environment variables.
    Env {
        /// As written (`Bearer ${API_KEY}`, `${K:-dev}`; `$${` for a literal `${`).
        written: String,
        /// The expanded value; `None` until [`EnvText::fill`] finds every variable it
        /// names (a plan read back from a file).
        value: Option<String>,
    },
    /// A credential written in the scenario as it is (see [`is_credential_header`]):
    /// sent as written, never stored in a plan or repro file ([`SecretText`]). Read back
    /// from a file it is [`SecretText::NotStored`], and a run refuses it
    /// ([`EnvText::missing`]) rather than send the marker.
    Secret(SecretText),
}

/// Why a written text cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvTextError {
    /// A variable without a default that the environment does not set.
    #[error(
        "environment variable {name} is not set (the plan uses ${{{name}}}, whose value it \
         does not store: set it to what the scenario was run with)"
    )]
    Unset { name: String },
    /// A `${` without its `}` (a hand-edited file).
    #[error("unclosed ${{ in {written:?}")]
    Unclosed { written: String },
    /// A literal credential, which plan and repro files do not store.
    #[error(
        "{what}: the scenario gave it as a literal, which plan and repro files do not \
         store; run the scenario file, or write it there as ${{NAME}} and set NAME"
    )]
    NotStored { what: String },
}

impl EnvText {
    /// The value to send. Empty for an `Env` text whose variables were never found: a run
    /// checks [`EnvText::missing`] first and never sends that.
    pub fn as_str(&self) -> &str {
        match self {
            EnvText::Plain(v) => v,
            EnvText::Env { value, .. } => value.as_deref().unwrap_or_default(),
            EnvText::Secret(secret) => secret.value().unwrap_or_default(),
        }
    }

    /// What a message may show: the value of a plain text, an `Env` text as written.
    pub fn shown(&self) -> &str {
        match self {
            EnvText::Plain(v) => v,
            EnvText::Env { written, .. } => written,
            EnvText::Secret(secret) => secret.marker(),
        }
    }

    /// This text as a literal credential ([`EnvText::Secret`]) when it is written in the
    /// scenario as it is; a text from the environment stays as written (no secret).
    pub fn into_secret(self) -> EnvText {
        match self {
            EnvText::Plain(v) => EnvText::Secret(SecretText::Known(v)),
            other => other,
        }
    }

    /// Whether this is a literal credential that a file did not store.
    pub fn is_not_stored(&self) -> bool {
        matches!(self, EnvText::Secret(SecretText::NotStored))
    }

    /// Whether the value came from the environment.
    pub fn is_env(&self) -> bool {
        matches!(self, EnvText::Env { .. })
    }

    /// Expands an `Env` text without a value through `lookup` (a plan read back from a
    /// file); when a variable is missing the value stays unknown, and
    /// [`EnvText::missing`] says which.
    pub fn fill(&mut self, lookup: &dyn Fn(&str) -> Option<String>) {
        if let EnvText::Env {
            written,
            value: value @ None,
        } = self
        {
            *value = expand(written, lookup).ok();
        }
    }

    /// Why the value is unknown, if it is (see [`EnvText::fill`]).
    pub fn missing(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Option<EnvTextError> {
        match self {
            EnvText::Env {
                written,
                value: None,
            } => expand(written, lookup).err(),
            EnvText::Secret(SecretText::NotStored) => Some(EnvTextError::NotStored {
                what: "a credential".into(),
            }),
            _ => None,
        }
    }
}

/// Words that make a header name credential-bearing (lower case): a header whose name
/// contains one carries what a server takes as proof of who is calling (a request
/// signature, `X-Hub-Signature-256`, proves it as a key does; so does an anti-forgery
/// `X-XSRF` value).
const CREDENTIAL_WORDS: &[&str] = &[
    "auth",
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "session",
    "signature",
    "credential",
    "jwt",
    "csrf",
    "xsrf",
];

/// Whether a header named `name` (any case) carries a credential: `Authorization`,
/// `Proxy-Authorization`, `Cookie`, a name containing one of `CREDENTIAL_WORDS`
/// (`X-Api-Key`, `X-Session-Id`, `X-Signature`), or one with `sig` as a word of its own
/// (`X-Sig`, `Request-Sig`; not `X-Design`). Its literal value is held as
/// [`EnvText::Secret`].
pub fn is_credential_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "cookie"
        || CREDENTIAL_WORDS.iter().any(|w| lower.contains(w))
        || lower.split(['-', '_']).any(|word| word == "sig")
}

/// Whether a login request body names a credential (`"password": …`, `api_key=…`): its
/// literal text is then held as [`EnvText::Secret`], whole, as a body has no one field
/// stampede could cut out of every format.
pub fn body_names_credential(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    CREDENTIAL_WORDS.iter().any(|w| lower.contains(w))
}

/// One piece of a string as its `${NAME}` references cut it ([`pieces`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text as written; a `$${` comes out as the text `${`.
    Text(&'a str),
    /// A reference: `inner` is what stood between `${` and `}`, split at the first `:-`
    /// into the variable's name and its default.
    Ref {
        inner: &'a str,
        name: &'a str,
        default: Option<&'a str>,
    },
    /// A `${` with no `}` after it; nothing after it is read.
    Unclosed,
}

/// The pieces of `written`: the one reading of `${NAME}`, `${NAME:-default}` and `$${` (a
/// literal `${`) that the scenario loader and a plan's [`EnvText`] both expand by.
pub fn pieces(written: &str) -> Pieces<'_> {
    Pieces {
        rest: written,
        pending: None,
    }
}

/// The iterator [`pieces`] returns.
pub struct Pieces<'a> {
    rest: &'a str,
    /// A piece found past the text just returned.
    pending: Option<Piece<'a>>,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = Piece<'a>;

    fn next(&mut self) -> Option<Piece<'a>> {
        if let Some(piece) = self.pending.take() {
            return Some(piece);
        }
        if self.rest.is_empty() {
            return None;
        }
        let Some(at) = self.rest.find("${") else {
            return Some(Piece::Text(std::mem::take(&mut self.rest)));
        };
        let before = self.rest.get(..at).unwrap_or_default();
        let after = self.rest.get(at + 2..).unwrap_or_default();
        let piece = if let Some(text) = before.strip_suffix('$') {
            // `$${`: a literal `${`.
            self.rest = after;
            self.pending = Some(Piece::Text("${"));
            return Some(Piece::Text(text));
        } else if let Some(end) = after.find('}') {
            let inner = after.get(..end).unwrap_or_default();
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            self.rest = after.get(end + 1..).unwrap_or_default();
            Piece::Ref {
                inner,
                name,
                default,
            }
        } else {
            self.rest = "";
            Piece::Unclosed
        };
        if before.is_empty() {
            return Some(piece);
        }
        self.pending = Some(piece);
        Some(Piece::Text(before))
    }
}

/// `written` with every `${NAME}` / `${NAME:-default}` replaced through `lookup`, and
/// `$${` read as a literal `${` ([`pieces`]).
pub fn expand(
    written: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, EnvTextError> {
    let mut out = String::with_capacity(written.len());
    for piece in pieces(written) {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Ref { name, default, .. } => {
                let value = lookup(name)
                    .or_else(|| default.map(str::to_string))
                    .ok_or_else(|| EnvTextError::Unset {
                        name: name.to_string(),
                    })?;
                out.push_str(&value);
            }
            Piece::Unclosed => {
                return Err(EnvTextError::Unclosed {
                    written: written.to_string(),
                })
            }
        }
    }
    Ok(out)
}

impl std::ops::Deref for EnvText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for EnvText {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (EnvText::Plain(a), EnvText::Plain(b)) => a == b,
            (EnvText::Env { written: a, .. }, EnvText::Env { written: b, .. }) => a == b,
            (EnvText::Secret(a), EnvText::Secret(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for EnvText {}

impl std::fmt::Debug for EnvText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvText::Plain(v) => write!(f, "{v:?}"),
            EnvText::Env { written, .. } => write!(f, "env({written:?})"),
            EnvText::Secret(secret) => write!(f, "{secret:?}"),
        }
    }
}

impl std::fmt::Display for EnvText {
    /// The value sent (see [`EnvText::as_str`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for EnvText {
    fn from(value: &str) -> Self {
        EnvText::Plain(value.to_string())
    }
}

impl From<String> for EnvText {
    fn from(value: String) -> Self {
        EnvText::Plain(value)
    }
}

impl PartialEq<&str> for EnvText {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, EnvText::Plain(v) if v == other)
    }
}

/// The serialized form: a plain string, or the string as written.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    Plain(String),
    Env { env: String },
}

impl Serialize for EnvText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EnvText::Plain(v) => s.serialize_str(v),
            EnvText::Env { written, .. } => Stored::Env {
                env: written.clone(),
            }
            .serialize(s),
            EnvText::Secret(secret) => secret.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for EnvText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Stored::deserialize(d)? {
            // Only a credential is written so: not a value to send.
            Stored::Plain(v) if v == SecretText::REDACTED_MARKER => {
                EnvText::Secret(SecretText::NotStored)
            }
            Stored::Plain(v) => EnvText::Plain(v),
            Stored::Env { env } => EnvText::Env {
                written: env,
                value: None,
            },
        })
    }
}

/// Shorter values are not hidden: replacing every "1" in a message would garble it, and a
/// secret that short is no secret.
const MIN_HIDDEN: usize = 4;

/// Values taken from the environment, each with the `${NAME}` to show in its place: a
/// message made from expanded text (a scenario problem, a URL the dialer refused) goes
/// through [`EnvValues::hide`], so that it never prints a value that may be a secret.
#[derive(Debug, Clone, Default)]
pub struct EnvValues {
    /// `(value, shown)`, longest value first, so a value that contains another is
    /// replaced whole.
    values: Vec<(String, String)>,
}

impl EnvValues {
    /// The values of the variables `written` names (through `lookup`, or their defaults),
    /// each to be shown as its `${NAME}`.
    pub fn of(written: &str, lookup: &dyn Fn(&str) -> Option<String>) -> EnvValues {
        let mut values = EnvValues::default();
        for piece in pieces(written) {
            if let Piece::Ref { name, default, .. } = piece {
                if let Some(value) = lookup(name).or_else(|| default.map(str::to_string)) {
                    values.add(&value, &format!("${{{name}}}"));
                }
            }
        }
        values
    }

    /// From now on, `value` is shown as `shown` (unless it is shorter than four bytes, or
    /// is what it would be shown as).
    pub fn add(&mut self, value: &str, shown: &str) {
        if value.len() >= MIN_HIDDEN && value != shown {
            self.values.push((value.to_string(), shown.to_string()));
            self.values.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        }
    }

    /// Whether there is no value to hide.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every value shown as its `${NAME}`.
    pub fn hide(&self, text: &str) -> String {
        self.values
            .iter()
            .fold(text.to_string(), |out, (value, shown)| {
                if out.contains(value.as_str()) {
                    out.replace(value.as_str(), shown)
                } else {
                    out
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOK").then(|| "s3cr3t-value".to_string())
    }

    #[test]
    fn an_env_text_is_stored_as_written_and_filled_again_on_reading() {
        let text = EnvText::Env {
            written: "Bearer ${TOK}".into(),
            value: Some("Bearer s3cr3t-value".into()),
        };
        assert_eq!(text.as_str(), "Bearer s3cr3t-value");
        let json = serde_json::to_string(&text).unwrap();
        assert_eq!(json, r#"{"env":"Bearer ${TOK}"}"#);
        assert!(!format!("{text:?}").contains("s3cr3t"));
        let mut back: EnvText = serde_json::from_str(&json).unwrap();
        assert_eq!(back, text);
        assert_eq!(back.as_str(), "");
        assert_eq!(
            back.missing(&|_| None),
            Some(EnvTextError::Unset { name: "TOK".into() })
        );
        back.fill(&env);
        assert_eq!(back.as_str(), "Bearer s3cr3t-value");
        assert_eq!(back.missing(&|_| None), None);
    }

    #[test]
    fn a_literal_credential_is_sent_stored_redacted_and_read_back_as_not_stored() {
        assert!(is_credential_header("Authorization"));
        assert!(is_credential_header("proxy-authorization"));
        assert!(is_credential_header("COOKIE"));
        assert!(is_credential_header("X-Api-Key"));
        assert!(is_credential_header("X-Session-Id"));
        assert!(!is_credential_header("X-Client"));
        for signed in ["X-Signature", "X-Hub-Signature-256", "X-Sig", "request_sig"] {
            assert!(is_credential_header(signed), "{signed}");
        }
        assert!(is_credential_header("X-XSRF-Header"));
        assert!(!is_credential_header("X-Design"));
        assert!(body_names_credential(r#"{"Password": "x"}"#));
        assert!(!body_names_credential(r#"{"user": "u"}"#));
        let text = EnvText::from("literal-secret-123").into_secret();
        assert_eq!(text.as_str(), "literal-secret-123");
        assert_eq!(text.shown(), SecretText::REDACTED_MARKER);
        assert!(!format!("{text:?}").contains("literal"));
        let json = serde_json::to_string(&text).unwrap();
        assert_eq!(json, r#""<redacted>""#);
        let back: EnvText = serde_json::from_str(&json).unwrap();
        assert!(back.is_not_stored());
        assert_eq!(back.as_str(), "");
        assert!(matches!(
            back.missing(&|_| None),
            Some(EnvTextError::NotStored { .. })
        ));
        // A text from the environment is no secret: it stays as written.
        let env = EnvText::Env {
            written: "${K}".into(),
            value: Some("v".into()),
        };
        assert_eq!(env.clone().into_secret(), env);
    }

    #[test]
    fn a_plain_text_is_a_plain_string() {
        let text = EnvText::from("v");
        assert_eq!(serde_json::to_string(&text).unwrap(), r#""v""#);
        let back: EnvText = serde_json::from_str(r#""v""#).unwrap();
        assert_eq!(back, EnvText::Plain("v".into()));
    }

    #[test]
    fn expand_takes_defaults_and_literal_dollar_braces() {
        assert_eq!(expand("${NOPE:-d}/${TOK}", &env).unwrap(), "d/s3cr3t-value");
        assert_eq!(expand("a$${TOK}", &env).unwrap(), "a${TOK}");
        assert!(matches!(
            expand("${TOK", &env),
            Err(EnvTextError::Unclosed { .. })
        ));
    }

    #[test]
    fn pieces_cut_text_references_escapes_and_an_unclosed_end() {
        let got: Vec<Piece<'_>> = pieces("a${X:-d}b$${Y}c${Z").collect();
        assert_eq!(
            got,
            vec![
                Piece::Text("a"),
                Piece::Ref {
                    inner: "X:-d",
                    name: "X",
                    default: Some("d")
                },
                Piece::Text("b"),
                Piece::Text("${"),
                Piece::Text("Y}c"),
                Piece::Unclosed,
            ]
        );
        assert_eq!(pieces("").count(), 0);
    }

    #[test]
    fn values_are_hidden_longest_first_and_short_ones_kept() {
        let env = |name: &str| match name {
            "KEY" => Some("sekrit-1234".to_string()),
            "PART" => Some("sekrit".to_string()),
            "PORT" => Some("80".to_string()),
            _ => None,
        };
        let values = EnvValues::of(
            "ws://h:${PORT}/?k=${KEY}&p=${PART}&d=${GONE:-fallback}",
            &env,
        );
        assert_eq!(
            values.hide("refused ws://h:80/?k=sekrit-1234&p=sekrit&d=fallback"),
            "refused ws://h:80/?k=${KEY}&p=${PART}&d=${GONE}"
        );
    }
}
