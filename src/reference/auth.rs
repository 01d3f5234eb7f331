//! Finding and verifying the token on an upgrade request.
//!
//! The token may sit in the `Authorization: Bearer` header, in the
//! subprotocol list (`jwt-auth, jwt.<jwt>`) or in the query (`?token=`). A
//! request that carries two *different* tokens is refused: with no documented
//! precedence, picking one would make identity depend on header order.
//! Verification is strict: HS256/384/512 with the secret, RS256 or ES256 with
//! the configured public key (the header's `alg` picks the key, and an HMAC
//! `alg` never uses the public key), at most [`MAX_TOKEN_BYTES`], no leeway,
//! `exp` required and in the future, `nbf` honoured, `sub` and `jti` non-empty
//! strings, `aud`/`iss` equal to the configured ones and refused when none is
//! configured, duplicate claim names refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{
    decode, decode_header, get_current_timestamp, Algorithm, DecodingKey, Validation,
};
use serde::Deserialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};

use super::bugs::Bug;
use super::{TargetConfig, TargetError};

/// The subprotocol the server selects when a client offers it.
pub(crate) const JWT_SUBPROTOCOL: &str = "jwt-auth";
/// Prefix of the subprotocol entry that carries the token.
const TOKEN_SUBPROTOCOL_PREFIX: &str = "jwt.";
/// Longest token verified; longer ones are refused unparsed.
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;
const HMAC_ALGORITHMS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// Why no single token could be read from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ExtractError {
    #[error("no token on the request")]
    Missing,
    #[error("Authorization header is not `Bearer <token>`")]
    BadScheme,
    #[error("the request carries more than one distinct token")]
    Ambiguous,
}

/// Where the token was found (the first place, when several carry the same token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Header,
    Subprotocol,
    Query,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// Not a JWT at all: wrong segment count or bad base64.
    #[error("malformed token")]
    Malformed,
    #[error("token longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("claim `{0}` is empty")]
    EmptyClaim(&'static str),
    #[error("claim `{0}` is present but none is configured")]
    Unexpected(&'static str),
    #[error("token expired")]
    Expired,
}

/// Who the token says the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub sub: String,
    pub jti: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    jti: String,
    exp: u64,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    iss: Option<Value>,
}

/// Which checks run; the planted bugs switch some off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checks {
    /// Refuse expired tokens (`query-skips-expiry` skips it for `?token=`).
    pub expiry: bool,
    /// Accept unsigned `alg: none` tokens (`accept-alg-none`).
    pub accept_none: bool,
}

impl Checks {
    #[cfg(test)]
    pub(crate) const STRICT: Checks = Checks {
        expiry: true,
        accept_none: false,
    };

    /// The checks for a token found in `source` on a server with `bug` planted.
    pub(crate) fn for_request(bug: Option<Bug>, source: Source) -> Checks {
        Checks {
            expiry: !(bug == Some(Bug::QuerySkipsExpiry) && source == Source::Query),
            accept_none: bug == Some(Bug::AcceptAlgNone),
        }
    }
}

/// Verifies tokens against the server's keys. Built once per server.
pub(crate) struct Verifier {
    hmac: DecodingKey,
    public: Option<(DecodingKey, Algorithm)>,
    audience: Option<String>,
    issuer: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    pub(crate) fn new(config: &TargetConfig) -> Result<Self, TargetError> {
        let public = config
            .public_key_pem
            .as_deref()
            .map(public_key)
            .transpose()?;
        Ok(Self {
            hmac: DecodingKey::from_secret(&config.secret),
            public,
            audience: config.audience.clone(),
            issuer: config.issuer.clone(),
        })
    }

    pub(crate) fn verify(&self, token: &str, checks: Checks) -> Result<Identity, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        if checks.accept_none {
            if let Some(claims) = unsigned_claims(token) {
                return self.check(claims?, checks);
            }
        }
        let header = decode_header(token).map_err(token_error)?;
        let key = match (&self.public, header.alg) {
            (_, alg) if HMAC_ALGORITHMS.contains(&alg) => &self.hmac,
            (Some((key, public_alg)), alg) if alg == *public_alg => key,
            (_, alg) => {
                return Err(TokenError::Invalid(format!(
                    "algorithm {alg:?} not accepted"
                )))
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_exp = checks.expiry;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(aud) = &self.audience {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let data = decode::<Claims>(token, key, &validation).map_err(token_error)?;
        self.check(data.claims, checks)
    }

    /// What jsonwebtoken leaves to the application.
    fn check(&self, claims: Claims, checks: Checks) -> Result<Identity, TokenError> {
        let Claims {
            sub,
            jti,
            exp,
            aud,
            iss,
        } = claims;
        // jsonwebtoken accepts exp == now; RFC 7519 §4.1.4 wants now < exp.
        if checks.expiry && exp <= get_current_timestamp() {
            return Err(TokenError::Expired);
        }
        if self.audience.is_none() && aud.is_some() {
            return Err(TokenError::Unexpected("aud"));
        }
        if self.issuer.is_none() && iss.is_some() {
            return Err(TokenError::Unexpected("iss"));
        }
        if sub.is_empty() {
            return Err(TokenError::EmptyClaim("sub"));
        }
        if jti.is_empty() {
            return Err(TokenError::EmptyClaim("jti"));
        }
        Ok(Identity { sub, jti })
    }
}

fn token_error(err: jsonwebtoken::errors::Error) -> TokenError {
    match err.kind() {
        ErrorKind::InvalidToken | ErrorKind::Base64(_) => TokenError::Malformed,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        other => TokenError::Invalid(format!("{other:?}")),
    }
}

/// An RSA public key verifies RS256, a P-256 one ES256.
fn public_key(pem: &[u8]) -> Result<(DecodingKey, Algorithm), TargetError> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((key, Algorithm::RS256));
    }
    DecodingKey::from_ec_pem(pem)
        .map(|key| (key, Algorithm::ES256))
        .map_err(|e| TargetError::Key(e.to_string()))
}

/// Planted bug `accept-alg-none`: the claims of a token whose header says `alg: none`
/// (any case), signature unchecked. `None` when the header says anything else.
fn unsigned_claims(token: &str) -> Option<Result<Claims, TokenError>> {
    let mut parts = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    let header: Value = serde_json::from_slice(&header).ok()?;
    if !header.get("alg")?.as_str()?.eq_ignore_ascii_case("none") {
        return None;
    }
    let claims = parts
        .next()
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|p| serde_json::from_slice::<Claims>(&p).ok())
        .ok_or(TokenError::Malformed);
    Some(claims)
}

/// Reads the one token the request presents, and where it was first found.
pub(crate) fn extract_token(request: &Request) -> Result<(String, Source), ExtractError> {
    let mut found: Vec<(String, Source)> = Vec::new();
    for value in request.headers().get_all(AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ExtractError::BadScheme)?;
        match value.trim().split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                found.push((token.trim().to_owned(), Source::Header));
            }
            _ => return Err(ExtractError::BadScheme),
        }
    }
    found.extend(
        subprotocols(request)
            .filter_map(|entry| entry.strip_prefix(TOKEN_SUBPROTOCOL_PREFIX))
            .map(|token| (token.to_owned(), Source::Subprotocol)),
    );
    if let Some(query) = request.uri().query() {
        found.extend(
            query
                .split('&')
                .filter_map(|pair| pair.strip_prefix("token="))
                .map(|token| (percent_decode(token), Source::Query)),
        );
    }
    let first = found.first().ok_or(ExtractError::Missing)?;
    if found.iter().any(|(token, _)| *token != first.0) {
        return Err(ExtractError::Ambiguous);
    }
    Ok(first.clone())
}

/// Whether the client offered the `jwt-auth` subprotocol (then the server must select it).
pub(crate) fn offers_jwt_subprotocol(request: &Request) -> bool {
    subprotocols(request).any(|entry| entry == JWT_SUBPROTOCOL)
}

fn subprotocols(request: &Request) -> impl Iterator<Item = &str> {
    request
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}

/// Decodes `%XX` escapes; a broken escape is kept as is (the token then fails
/// verification, which is the right outcome).
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                at += 3;
            }
            None => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn reads_each_placement() {
        let header = request("/ws", &[("authorization", "Bearer a.b.c")]);
        let lower = request("/ws", &[("authorization", "bearer a.b.c")]);
        let proto = request("/ws", &[("sec-websocket-protocol", "jwt-auth, jwt.a.b.c")]);
        let query = request("/ws?x=1&token=a.b.c", &[]);
        let sources = [
            Source::Header,
            Source::Header,
            Source::Subprotocol,
            Source::Query,
        ];
        for (req, source) in [&header, &lower, &proto, &query].into_iter().zip(sources) {
            assert_eq!(extract_token(req).unwrap(), ("a.b.c".to_string(), source));
        }
        assert!(offers_jwt_subprotocol(&proto));
        assert!(!offers_jwt_subprotocol(&header));
    }

    #[test]
    fn refuses_missing_bad_scheme_and_conflicts() {
        let none = request("/ws", &[]);
        let basic = request("/ws", &[("authorization", "Basic xyz")]);
        let both = request("/ws?token=x.y.z", &[("authorization", "Bearer a.b.c")]);
        assert_eq!(extract_token(&none), Err(ExtractError::Missing));
        assert_eq!(extract_token(&basic), Err(ExtractError::BadScheme));
        assert_eq!(extract_token(&both), Err(ExtractError::Ambiguous));
        let same = request("/ws?token=a.b.c", &[("authorization", "Bearer a.b.c")]);
        assert_eq!(
            extract_token(&same).unwrap(),
            ("a.b.c".to_string(), Source::Header)
        );
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%2Eb"), "a.b");
        assert_eq!(percent_decode("a%zz%"), "a%zz%");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let verifier = Verifier::new(&TargetConfig::default()).unwrap();
        let strict = Checks::STRICT;
        assert_eq!(verifier.verify("abc", strict), Err(TokenError::Malformed));
        assert_eq!(
            verifier.verify("a.b.c.d", strict),
            Err(TokenError::Malformed)
        );
        assert!(verifier.verify("", strict).is_err());
        assert!(verifier.verify("....", strict).is_err());
        let lax = Checks {
            expiry: false,
            accept_none: true,
        };
        for garbage in [
            "",
            ".",
            "..",
            "e30.",
            "eyJhbGciOiJub25lIn0",
            "eyJhbGciOiJub25lIn0.!!.",
            "x".repeat(MAX_TOKEN_BYTES + 1).as_str(),
        ] {
            assert!(verifier.verify(garbage, lax).is_err(), "{garbage}");
        }
        assert_eq!(
            verifier.verify(&"x".repeat(MAX_TOKEN_BYTES + 1), strict),
            Err(TokenError::TooLarge)
        );
    }
}
