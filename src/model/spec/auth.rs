//! `[auth]`: how tokens are signed, what they claim, and where they travel.

use super::EnvText;
use crate::model::units::duration_us;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The margin the session oracles give a time-shifted (forged) token's edges: its `exp`
/// or `nbf` is whole seconds off the minting instant, and a server's clock may run ahead
/// of ours.
pub const EXPIRY_SKEW: Duration = Duration::from_secs(1);

/// How far before a valid minted token's `exp` (by our clock) a server's close or refusal
/// of it still reads as its expiry: clocks synced by NTP (milliseconds apart) and a timer
/// firing a little early. Not a second: a server that ends sessions up to a second before
/// `exp` (an off-by-one on its clock) would then never be a finding.
pub const EXPIRED_WITHIN: Duration = Duration::from_millis(100);

/// How long a minted token lives: `ttl` in whole seconds (JWT times are whole seconds,
/// rounded down), at least one (`exp = iat + ttl`).
pub fn token_lifetime(ttl: Duration) -> Duration {
    Duration::from_secs(ttl.as_secs().max(1))
}

/// Token minting and placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthSpec {
    /// Where the HMAC secret comes from (HS256/384/512). Resolved at run time, never
    /// stored in results.
    pub secret: SecretSource,
    /// Signing algorithm of valid tokens.
    #[serde(default)]
    pub alg: JwtAlg,
    /// PEM private key for RS256/ES256 (PKCS#8, or PKCS#1 for RSA).
    #[serde(default)]
    pub key: Option<SecretSource>,
    /// PEM public key matching `key`: the HMAC secret of the `hs-rs-confusion` entry and
    /// the key the embedded server verifies with. Derived from a PKCS#8 `key` when absent.
    #[serde(default)]
    pub public_key: Option<SecretSource>,
    /// Template for the `sub` claim, e.g. `user-{{user}}`.
    pub sub: String,
    /// Token lifetime (`exp = iat + ttl`).
    #[serde(with = "duration_us")]
    pub ttl: Duration,
    /// `aud` claim of valid tokens.
    #[serde(default)]
    pub aud: Option<String>,
    /// `iss` claim of valid tokens.
    #[serde(default)]
    pub iss: Option<String>,
    /// Extra claims, added as they are to every token (never a registered claim name).
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Where the token travels on the upgrade request.
    pub placement: Placement,
    /// Extra headers on every upgrade request, in file order (values from the environment
    /// kept as written: see [`EnvText`]).
    #[serde(default)]
    pub headers: Vec<(String, EnvText)>,
    /// `Origin` header of every upgrade request.
    #[serde(default)]
    pub origin: Option<String>,
    /// Subprotocols every upgrade request offers in `Sec-WebSocket-Protocol`, in order,
    /// before any the token placement adds. When any is offered, the server must select
    /// one of those offered: an answer without one (or with another) fails the handshake
    /// with `protocol_error`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subprotocols: Vec<String>,
    /// Where valid tokens come from when stampede does not mint them (`[auth] tokens`);
    /// `None`: minted from `secret`/`key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenSource>,
}

/// Tokens stampede does not mint: opaque to it (no claims, no `jti`), each named by a
/// stable label instead (`file#12`: line 12 of the file; `list#3`; `command#2`: the
/// command's second output line; `login#5`: token slot 5's login). Values are held in
/// memory for the run only; plan and repro files store the source (a list's values as
/// `"<redacted>"`).
///
/// Slot `k` (token slots in plan order) gets token `k mod n`: with fewer tokens than
/// slots, tokens are reused in turn (and share one label, so the session oracles see the
/// reuse). A token given twice (or two JWTs with one `jti`) is refused when loaded or read
/// (`auth::repeats`): it would carry two labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// One token per non-empty line of a file (path resolved against the scenario file).
    File { path: String },
    /// Tokens written in the scenario.
    List { values: Vec<SecretText> },
    /// One token per non-empty line of what `sh -c RUN` prints on stdout, run once before
    /// the load in `dir` (the scenario file's folder; `None`: the working directory),
    /// killed after `timeout`.
    Command {
        run: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dir: Option<String>,
        #[serde(with = "duration_us")]
        timeout: Duration,
    },
    /// An HTTP request before each upgrade whose JSON answer holds the token.
    Login(LoginSpec),
}

impl TokenSource {
    /// The label prefix of its tokens (`file`, `list`, `command`, `login`).
    pub fn kind(&self) -> &'static str {
        match self {
            TokenSource::File { .. } => "file",
            TokenSource::List { .. } => "list",
            TokenSource::Command { .. } => "command",
            TokenSource::Login(_) => "login",
        }
    }
}

/// A login step: one HTTP/1.1 request per dial, before the upgrade, timed as the `login`
/// phase. `url`, `body` and header values take the connection's placeholders (`{{user}}`,
/// `{{conn}}`, `{{group}}`, `{{sub}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginSpec {
    /// `POST` by default.
    pub method: String,
    /// `http://` or `https://` (kept as written when it names environment variables: see
    /// [`EnvText`]).
    pub url: EnvText,
    /// Request body, sent as written (placeholders expanded; kept as written when it names
    /// environment variables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<EnvText>,
    /// Request headers in file order (`Content-Type: application/json` by default when a
    /// body is given and no header names it; values from the environment kept as
    /// written: see [`EnvText`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, EnvText)>,
    /// Field path (dotted or JSON Pointer) of the token in the JSON response.
    pub token: String,
    /// Longest the whole request may take.
    #[serde(with = "duration_us")]
    pub timeout: Duration,
}

impl Default for AuthSpec {
    /// What an absent `[auth]` table means.
    fn default() -> Self {
        AuthSpec {
            secret: SecretSource::Env {
                name: "STAMPEDE_JWT_SECRET".into(),
                default: Some(SecretText::from(DEV_SECRET)),
            },
            alg: JwtAlg::default(),
            key: None,
            public_key: None,
            sub: "user-{{user}}".into(),
            ttl: Duration::from_secs(600),
            aud: None,
            iss: None,
            claims: serde_json::Map::new(),
            placement: Placement::Header {
                name: "Authorization".into(),
                prefix: "Bearer ".into(),
            },
            headers: Vec::new(),
            origin: None,
            subprotocols: Vec::new(),
            tokens: None,
        }
    }
}

/// JWT signing algorithms stampede mints valid tokens with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlg {
    #[default]
    #[serde(rename = "HS256")]
    Hs256,
    #[serde(rename = "HS384")]
    Hs384,
    #[serde(rename = "HS512")]
    Hs512,
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
}

impl JwtAlg {
    /// Every algorithm, in the order messages list them.
    pub const ALL: [JwtAlg; 5] = [
        JwtAlg::Hs256,
        JwtAlg::Hs384,
        JwtAlg::Hs512,
        JwtAlg::Rs256,
        JwtAlg::Es256,
    ];

    /// The JOSE name (`HS256`).
    pub fn name(self) -> &'static str {
        match self {
            JwtAlg::Hs256 => "HS256",
            JwtAlg::Hs384 => "HS384",
            JwtAlg::Hs512 => "HS512",
            JwtAlg::Rs256 => "RS256",
            JwtAlg::Es256 => "ES256",
        }
    }

    /// HMAC algorithms sign with `secret`; the others with a PEM `key`.
    pub fn is_hmac(self) -> bool {
        matches!(self, JwtAlg::Hs256 | JwtAlg::Hs384 | JwtAlg::Hs512)
    }
}

/// The development HMAC secret: `STAMPEDE_JWT_SECRET`'s default when a scenario has no
/// `[auth]`, and the built-in server's. Public (it is in this source), so never a secret
/// worth keeping; a run against an external target that signs with it gets a notice.
pub const DEV_SECRET: &str = "stampede-dev-secret";

/// Where a secret is read from. `Debug` and serialization never show a value: see
/// [`SecretText`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// Environment variable, with an optional fallback (demos and the embedded server).
    Env {
        name: String,
        default: Option<SecretText>,
    },
    /// A file whose bytes (trailing newline trimmed) are the secret.
    File { path: String },
    /// A literal in the scenario: for demos only.
    Literal { value: SecretText },
}

impl SecretSource {
    /// A `{ value = ... }` literal.
    pub fn literal(value: &str) -> SecretSource {
        SecretSource::Literal {
            value: SecretText::from(value),
        }
    }
}

/// A secret's value as a scenario wrote it: a `{ value = ... }` literal or an `env`
/// variable's `default`. Held in memory for the run; never shown.
///
/// Serialized (plan files, `stampede plan`, repro files) as a marker instead of the value:
/// [`DEV_SECRET`] as `"<development secret>"` (read back as itself: it is public), any
/// other value as `"<redacted>"` (read back as [`SecretText::NotStored`]). Any other string
/// reads back as that value, so files written before the markers still load.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretText {
    /// The value, from the scenario.
    Known(String),
    /// Read back from a plan file, which does not store it: whoever replays the plan must
    /// supply it (`auth::resolve_keys` says how).
    NotStored,
}

impl SecretText {
    /// The marker [`DEV_SECRET`] is serialized as.
    pub const DEV_MARKER: &'static str = "<development secret>";
    /// The marker any other value is serialized as.
    pub const REDACTED_MARKER: &'static str = "<redacted>";

    /// The value, when known.
    pub fn value(&self) -> Option<&str> {
        match self {
            SecretText::Known(v) => Some(v),
            SecretText::NotStored => None,
        }
    }

    /// Whether this is the public development secret.
    pub fn is_development(&self) -> bool {
        self.value() == Some(DEV_SECRET)
    }

    /// What serialization writes in place of the value.
    pub fn marker(&self) -> &'static str {
        if self.is_development() {
            SecretText::DEV_MARKER
        } else {
            SecretText::REDACTED_MARKER
        }
    }
}

impl From<&str> for SecretText {
    fn from(value: &str) -> Self {
        SecretText::Known(value.to_string())
    }
}

impl From<String> for SecretText {
    fn from(value: String) -> Self {
        SecretText::Known(value)
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.marker())
    }
}

impl Serialize for SecretText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.marker())
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.as_str() {
            SecretText::DEV_MARKER => SecretText::from(DEV_SECRET),
            SecretText::REDACTED_MARKER => SecretText::NotStored,
            _ => SecretText::Known(text),
        })
    }
}

/// How the token is attached to the upgrade request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// `NAME: PREFIX<token>` (default `Authorization: Bearer <token>`).
    Header { name: String, prefix: String },
    /// `?PARAM=<token>` appended to the URL.
    Query { param: String },
    /// `Sec-WebSocket-Protocol: <offer...>, <prefix><token>`.
    Subprotocol { offer: Vec<String>, prefix: String },
    /// `Cookie: NAME=<token>`.
    Cookie { name: String },
    /// Nothing on the upgrade; right after it, a text frame holding this JSON with every
    /// `{{token}}` in its strings replaced by the token; with `text`, the template is a
    /// string sent as it is written (`AUTH {{token}}`: a protocol of text lines), not as
    /// JSON. With `after`, not right after the upgrade but once the server's first record
    /// of that kind came (a challenge: Home Assistant's `auth_required`), on each attempt.
    /// Stored with its literal credential fields redacted
    /// ([`super::message_secrets::stored_message`]).
    FirstMessage {
        #[serde(serialize_with = "super::message_secrets::serialize_message")]
        template: serde_json::Value,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        text: bool,
        /// The kind of the server's record that asks for it; `None`: sent at once. Left
        /// out of plan files when unset so their bytes (and hashes) stay as they were.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// No token at all.
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_serializes_as_a_marker_and_reads_back_as_what_can_be_known() {
        let literal = SecretSource::literal("hunter2-very-secret");
        let json = serde_json::to_string(&literal).unwrap();
        assert_eq!(json, r#"{"literal":{"value":"<redacted>"}}"#);
        let back: SecretSource = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back,
            SecretSource::Literal {
                value: SecretText::NotStored
            }
        );
        let dev = AuthSpec::default().secret;
        let json = serde_json::to_string(&dev).unwrap();
        assert!(!json.contains(DEV_SECRET), "{json}");
        assert!(json.contains(SecretText::DEV_MARKER), "{json}");
        assert_eq!(serde_json::from_str::<SecretSource>(&json).unwrap(), dev);
        // Files written before the markers hold the value itself: it still reads.
        let old = r#"{"env":{"name":"X","default":"stampede-dev-secret"}}"#;
        assert_eq!(
            serde_json::from_str::<SecretSource>(old).unwrap(),
            dev_with("X")
        );
        assert!(!format!("{literal:?}").contains("hunter2"));
    }

    fn dev_with(name: &str) -> SecretSource {
        SecretSource::Env {
            name: name.into(),
            default: Some(DEV_SECRET.into()),
        }
    }
}
