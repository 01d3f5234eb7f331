//! Finding and verifying the token on an upgrade request.
//!
//! The token may sit in the `Authorization: Bearer` header, in the
//! subprotocol list (`jwt-auth, jwt.<jwt>`) or in the query (`?token=`). A
//! request that carries two *different* tokens is refused: with no documented
//! precedence, picking one would make identity depend on header order.
//! Verification is strict: HS256 only, no leeway, `exp` required and in the
//! future, `nbf` honoured, `sub` and `jti` non-empty strings.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, get_current_timestamp, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};

/// The subprotocol the server selects when a client offers it.
pub(crate) const JWT_SUBPROTOCOL: &str = "jwt-auth";
/// Prefix of the subprotocol entry that carries the token.
const TOKEN_SUBPROTOCOL_PREFIX: &str = "jwt.";

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

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// Not a JWT at all: wrong segment count or bad base64.
    #[error("malformed token")]
    Malformed,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("claim `{0}` is empty")]
    EmptyClaim(&'static str),
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
}

/// Verifies HS256 tokens against one secret. Built once per server.
pub(crate) struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    pub(crate) fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub(crate) fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let data = decode::<Claims>(token, &self.key, &self.validation).map_err(|err| match err
            .kind()
        {
            ErrorKind::InvalidToken | ErrorKind::Base64(_) => TokenError::Malformed,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            other => TokenError::Invalid(format!("{other:?}")),
        })?;
        let Claims { sub, jti, exp } = data.claims;
        // jsonwebtoken accepts exp == now; RFC 7519 §4.1.4 wants now < exp.
        if exp <= get_current_timestamp() {
            return Err(TokenError::Expired);
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

/// Reads the one token the request presents.
pub(crate) fn extract_token(request: &Request) -> Result<String, ExtractError> {
    let mut found: Vec<String> = Vec::new();
    for value in request.headers().get_all(AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ExtractError::BadScheme)?;
        match value.trim().split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                found.push(token.trim().to_owned());
            }
            _ => return Err(ExtractError::BadScheme),
        }
    }
    found.extend(
        subprotocols(request)
            .filter_map(|entry| entry.strip_prefix(TOKEN_SUBPROTOCOL_PREFIX))
            .map(str::to_owned),
    );
    if let Some(query) = request.uri().query() {
        found.extend(
            query
                .split('&')
                .filter_map(|pair| pair.strip_prefix("token="))
                .map(percent_decode),
        );
    }
    let first = found.first().ok_or(ExtractError::Missing)?;
    if found.iter().any(|token| token != first) {
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
        for req in [&header, &lower, &proto, &query] {
            assert_eq!(extract_token(req).unwrap(), "a.b.c");
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
        assert_eq!(extract_token(&same).unwrap(), "a.b.c");
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%2Eb"), "a.b");
        assert_eq!(percent_decode("a%zz%"), "a%zz%");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let verifier = Verifier::new(b"secret");
        assert_eq!(verifier.verify("abc"), Err(TokenError::Malformed));
        assert_eq!(verifier.verify("a.b.c.d"), Err(TokenError::Malformed));
        assert!(verifier.verify("").is_err());
        assert!(verifier.verify("....").is_err());
    }
}
