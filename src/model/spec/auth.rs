//! `[auth]`: how tokens are signed, what they claim, and where they travel.

use crate::model::units::duration_us;
use serde::{Deserialize, Serialize};
use std::time::Duration;

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
    /// Extra headers on every upgrade request, in file order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// `Origin` header of every upgrade request.
    #[serde(default)]
    pub origin: Option<String>,
}

impl Default for AuthSpec {
    /// What an absent `[auth]` table means.
    fn default() -> Self {
        AuthSpec {
            secret: SecretSource::Env {
                name: "STAMPEDE_JWT_SECRET".into(),
                default: Some("stampede-dev-secret".into()),
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

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// Environment variable, with an optional fallback (demos and the embedded server).
    Env {
        name: String,
        default: Option<String>,
    },
    /// A file whose bytes (trailing newline trimmed) are the secret.
    File { path: String },
    /// A literal in the scenario: for demos only.
    Literal { value: String },
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
    /// `{{token}}` in its strings replaced by the token.
    FirstMessage { template: serde_json::Value },
    /// No token at all.
    None,
}
