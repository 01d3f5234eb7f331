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
//!
//! A *lenient* server ([`TargetConfig::lenient`]) is just as correct but takes the other
//! side of every policy choice: an `iss` is accepted when no issuer is configured, an
//! empty or missing `sub` is let through (read as `""`), a token without `exp` never
//! expires (RFC 7519 makes every registered claim optional; geth's engine API checks only
//! `iat`), a numeric-string `exp`/`nbf` is read as its number, the last of duplicate claim
//! names wins, and tokens up to [`LENIENT_MAX_TOKEN_BYTES`] are verified. Signatures,
//! algorithms, expiry (an `exp` that is there), `nbf`, a configured `aud`/`iss`, the types
//! of `sub` and `exp`, and the presence of `jti` (the session key) are checked as strictly
//! as ever.

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
pub(crate) const TOKEN_SUBPROTOCOL_PREFIX: &str = "jwt.";
/// The query parameter that carries the token (`?token=`).
pub(crate) const TOKEN_QUERY_PARAM: &str = "token";
/// Longest token verified; longer ones are refused unparsed.
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest token a lenient server verifies: half of the 64 KiB a WebSocket upgrade request
/// may take (tungstenite's bound), so the catalogue's `oversized` (16 KiB) is under it.
pub(crate) const LENIENT_MAX_TOKEN_BYTES: usize = 32 * 1024;
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
    #[error("token longer than {0} bytes")]
    TooLarge(usize),
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
    /// `None` only on the lenient path: the strict one requires it ([`Verifier::check`]).
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    iss: Option<Value>,
}

impl Claims {
    /// The claims of a payload. Strict: serde's rules (duplicate names refused, `exp` a
    /// number). Lenient: any JSON object, the last of duplicate names winning, `exp` a
    /// number or a string of digits; `sub` (missing: `""`) and `exp` optional, `jti`
    /// required.
    fn parse(payload: &[u8], lenient: bool) -> Result<Claims, TokenError> {
        if !lenient {
            return serde_json::from_slice(payload).map_err(|e| TokenError::Invalid(e.to_string()));
        }
        // serde_json keeps the last value of a repeated name in a `Map`.
        let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(payload) else {
            return Err(TokenError::Malformed);
        };
        let mut text = |name: &'static str| match map.remove(name) {
            Some(Value::String(s)) => Ok(Some(s)),
            None => Ok(None),
            Some(_) => Err(TokenError::Invalid(format!(
                "claim `{name}` is not a string"
            ))),
        };
        let sub = text("sub")?.unwrap_or_default();
        let jti = text("jti")?.ok_or_else(|| TokenError::Invalid("claim `jti` missing".into()))?;
        let exp = match map.get("exp") {
            None => None,
            Some(v) => Some(
                numeric(v)
                    .ok_or_else(|| TokenError::Invalid("claim `exp` is not a number".into()))?,
            ),
        };
        Ok(Claims {
            sub,
            jti,
            exp,
            aud: map.remove("aud"),
            iss: map.remove("iss"),
        })
    }
}

/// A time claim as a lenient server reads it: a JSON number or a string of its digits.
fn numeric(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
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
    /// The lenient policy (see the module docs).
    lenient: bool,
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
            lenient: config.lenient,
        })
    }

    pub(crate) fn verify(&self, token: &str, checks: Checks) -> Result<Identity, TokenError> {
        let limit = if self.lenient {
            LENIENT_MAX_TOKEN_BYTES
        } else {
            MAX_TOKEN_BYTES
        };
        if token.len() > limit {
            return Err(TokenError::TooLarge(limit));
        }
        if checks.accept_none {
            if let Some(claims) = unsigned_claims(token, self.lenient) {
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
        if self.lenient {
            return self.verify_lenient(token, key, header.alg, checks);
        }
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

    /// The lenient path: jsonwebtoken's `decode` refuses duplicate claim names and string
    /// times before any policy could apply, so the signature is checked on the raw
    /// segments and the claims are read by [`Claims::parse`].
    fn verify_lenient(
        &self,
        token: &str,
        key: &DecodingKey,
        alg: Algorithm,
        checks: Checks,
    ) -> Result<Identity, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signed = &token[..header.len() + 1 + payload.len()];
        let valid = jsonwebtoken::crypto::verify(signature, signed.as_bytes(), key, alg)
            .map_err(token_error)?;
        if !valid {
            return Err(TokenError::Invalid("InvalidSignature".into()));
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        // `nbf` is optional; when present it is honoured, read as leniently as `exp`.
        let nbf = serde_json::from_slice::<Value>(&payload)
            .ok()
            .and_then(|v| v.get("nbf").map(numeric));
        match nbf {
            Some(None) => return Err(TokenError::Invalid("claim `nbf` is not a number".into())),
            Some(Some(nbf)) if nbf > get_current_timestamp() => {
                return Err(TokenError::Invalid("ImmatureSignature".into()))
            }
            _ => {}
        }
        let claims = Claims::parse(&payload, true)?;
        if let Some(expected) = &self.audience {
            let matches = match &claims.aud {
                Some(Value::String(aud)) => aud == expected,
                Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
                _ => false,
            };
            if !matches {
                return Err(TokenError::Invalid("InvalidAudience".into()));
            }
        }
        if let Some(expected) = &self.issuer {
            if claims.iss.as_ref().and_then(Value::as_str) != Some(expected.as_str()) {
                return Err(TokenError::Invalid("InvalidIssuer".into()));
            }
        }
        self.check(claims, checks)
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
        // Policy: a lenient server takes a token without `exp` as one that never expires.
        let exp = match exp {
            Some(exp) => Some(exp),
            None if self.lenient => None,
            None => return Err(TokenError::Invalid("claim `exp` missing".into())),
        };
        // jsonwebtoken accepts exp == now; RFC 7519 §4.1.4 wants now < exp.
        if checks.expiry && exp.is_some_and(|exp| exp <= get_current_timestamp()) {
            return Err(TokenError::Expired);
        }
        if self.audience.is_none() && aud.is_some() {
            return Err(TokenError::Unexpected("aud"));
        }
        // Policy: a lenient server configured with no issuer trusts whichever it is told
        // (it still refuses an audience it was never given, as jsonwebtoken does).
        if self.issuer.is_none() && iss.is_some() && !self.lenient {
            return Err(TokenError::Unexpected("iss"));
        }
        if sub.is_empty() && !self.lenient {
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
/// (any case), signature unchecked, read by the server's policy. `None` when the header
/// says anything else.
fn unsigned_claims(token: &str, lenient: bool) -> Option<Result<Claims, TokenError>> {
    let mut parts = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    let header: Value = serde_json::from_slice(&header).ok()?;
    if !header.get("alg")?.as_str()?.eq_ignore_ascii_case("none") {
        return None;
    }
    let claims = parts
        .next()
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|p| Claims::parse(&p, lenient).ok())
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
                .filter_map(|pair| pair.strip_prefix(TOKEN_QUERY_PARAM)?.strip_prefix('='))
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

/// The subprotocol the server selects: `jwt-auth` when offered, else the first offered
/// entry that does not carry a token (the golden-path protocol does not depend on the
/// dialect's name, so the server speaks whichever a scenario offers); `None` when nothing
/// is offered.
pub(crate) fn select_subprotocol(request: &Request) -> Option<&str> {
    if offers_jwt_subprotocol(request) {
        return Some(JWT_SUBPROTOCOL);
    }
    subprotocols(request).find(|entry| !entry.starts_with(TOKEN_SUBPROTOCOL_PREFIX))
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

    /// An HS256 token over this exact payload text (duplicates and all), signed with the
    /// default secret.
    fn signed(payload: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
        let key = jsonwebtoken::EncodingKey::from_secret(&TargetConfig::default().secret);
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
            .expect("HS256 signs");
        format!("{message}.{signature}")
    }

    fn verifiers(config: TargetConfig) -> (Verifier, Verifier) {
        let strict = Verifier::new(&config).unwrap();
        let lenient = Verifier::new(&TargetConfig {
            lenient: true,
            ..config
        })
        .unwrap();
        (strict, lenient)
    }

    #[test]
    fn lenient_takes_the_other_side_of_each_policy_only() {
        let (strict, lenient) = verifiers(TargetConfig::default());
        let later = get_current_timestamp() + 600;
        let earlier = get_current_timestamp() - 600;
        let pad = "x".repeat(12 * 1024);
        // (payload, the sub a lenient server reads; None: it refuses too)
        let rows: Vec<(String, Option<&str>)> = vec![
            (format!(r#"{{"sub":"","jti":"j","exp":{later}}}"#), Some("")),
            (
                format!(r#"{{"sub":"u","jti":"j","exp":"{later}"}}"#),
                Some("u"),
            ),
            (
                format!(r#"{{"sub":"u","jti":"j","exp":{later},"sub":"admin"}}"#),
                Some("admin"),
            ),
            (
                format!(r#"{{"sub":"u","jti":"j","exp":{later},"iss":"https://any.invalid"}}"#),
                Some("u"),
            ),
            (
                format!(r#"{{"sub":"u","jti":"j","exp":{later},"pad":"{pad}"}}"#),
                Some("u"),
            ),
            // RFC 7519 makes `sub` and `exp` optional: no `sub` reads as "", no `exp`
            // never expires.
            (format!(r#"{{"jti":"j","exp":{later}}}"#), Some("")),
            (r#"{"sub":"u","jti":"j"}"#.to_string(), Some("u")),
            // Still refused: expired (number or string), not yet valid (number or
            // string), an unconfigured aud, a missing `jti`, ill-typed claims.
            (format!(r#"{{"sub":"u","jti":"j","exp":{earlier}}}"#), None),
            (
                format!(r#"{{"sub":"u","jti":"j","exp":"{earlier}"}}"#),
                None,
            ),
            (
                format!(r#"{{"sub":"u","jti":"j","exp":{later},"nbf":{later}}}"#),
                None,
            ),
            (
                format!(r#"{{"sub":"u","jti":"j","exp":{later},"nbf":"{later}"}}"#),
                None,
            ),
            (
                format!(r#"{{"sub":"u","jti":"j","exp":{later},"nbf":"soon"}}"#),
                None,
            ),
            (
                format!(r#"{{"sub":"u","jti":"j","exp":{later},"aud":"x"}}"#),
                None,
            ),
            (format!(r#"{{"sub":"u","exp":{later}}}"#), None),
            (format!(r#"{{"sub":"u","jti":"","exp":{later}}}"#), None),
            (r#"{"sub":"u","jti":"j","exp":null}"#.to_string(), None),
            (
                r#"{"sub":"u","jti":"j","exp":"tomorrow"}"#.to_string(),
                None,
            ),
            (format!(r#"{{"sub":"u","jti":"j","exp":{later}.5}}"#), None),
            (format!(r#"{{"sub":7,"jti":"j","exp":{later}}}"#), None),
            (format!(r#"["sub","u","jti","j","exp",{later}]"#), None),
        ];
        for (payload, sub) in rows {
            let token = signed(&payload);
            let shown = &payload[..payload.len().min(80)];
            assert!(
                strict.verify(&token, Checks::STRICT).is_err(),
                "strict: {shown}"
            );
            let got = lenient.verify(&token, Checks::STRICT);
            assert_eq!(
                got.as_ref().ok().map(|i| i.sub.as_str()),
                sub,
                "{shown}: {got:?}"
            );
        }
        // A plain valid token passes both; a bad signature neither.
        let valid = signed(&format!(r#"{{"sub":"u","jti":"j","exp":{later}}}"#));
        assert!(strict.verify(&valid, Checks::STRICT).is_ok());
        assert!(lenient.verify(&valid, Checks::STRICT).is_ok());
        // One whole character of the signature changed (not its last, which carries
        // padding bits).
        let at = valid.rfind('.').unwrap() + 1;
        let swap = if valid[at..].starts_with('A') {
            "B"
        } else {
            "A"
        };
        let forged = format!("{}{swap}{}", &valid[..at], &valid[at + 1..]);
        assert_eq!(
            lenient.verify(&forged, Checks::STRICT),
            Err(TokenError::Invalid("InvalidSignature".into()))
        );
        let huge = signed(&format!(
            r#"{{"sub":"u","jti":"j","exp":{later},"pad":"{}"}}"#,
            "x".repeat(LENIENT_MAX_TOKEN_BYTES)
        ));
        assert_eq!(
            lenient.verify(&huge, Checks::STRICT),
            Err(TokenError::TooLarge(LENIENT_MAX_TOKEN_BYTES))
        );
    }

    #[test]
    fn lenient_checks_a_configured_aud_and_iss() {
        let (_, lenient) = verifiers(TargetConfig {
            audience: Some("api".into()),
            issuer: Some("https://issuer.example".into()),
            ..TargetConfig::default()
        });
        let later = get_current_timestamp() + 600;
        let claims = |aud: &str, iss: &str| {
            signed(&format!(
                r#"{{"sub":"u","jti":"j","exp":{later},"aud":{aud},"iss":{iss}}}"#
            ))
        };
        let good = r#""https://issuer.example""#;
        assert!(lenient
            .verify(&claims(r#""api""#, good), Checks::STRICT)
            .is_ok());
        assert!(lenient
            .verify(&claims(r#"["other","api"]"#, good), Checks::STRICT)
            .is_ok());
        for (aud, iss) in [
            (r#""other""#, good),
            (r#"["other"]"#, good),
            ("7", good),
            (r#""api""#, r#""https://evil.example""#),
            (r#""api""#, "null"),
        ] {
            assert!(
                lenient.verify(&claims(aud, iss), Checks::STRICT).is_err(),
                "aud {aud} iss {iss}"
            );
        }
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
            Err(TokenError::TooLarge(MAX_TOKEN_BYTES))
        );
        let lenient = Verifier::new(&TargetConfig {
            lenient: true,
            ..TargetConfig::default()
        })
        .unwrap();
        for garbage in ["", ".", "..", "a.b", "a.b.c.d", "e30.e30.", "x.y.z"] {
            assert!(lenient.verify(garbage, strict).is_err(), "{garbage}");
            assert!(lenient.verify(garbage, lax).is_err(), "{garbage}");
        }
    }
}
