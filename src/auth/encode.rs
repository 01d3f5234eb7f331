//! Claims of a token slot, and the small hand encoder for tokens jsonwebtoken will not
//! build (`alg: none`, unknown `alg`, duplicate JSON keys, zeroed signatures).
//!
//! A hand token is `b64url(header).b64url(payload).signature`, base64url without padding,
//! exactly as RFC 7515 §7.1 compact serialization.

use super::keys::Keys;
use crate::model::{token_lifetime, AuthPlan, TokenPlan};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::Error as JwtError;
use jsonwebtoken::{crypto, encode, Header};
use serde_json::{json, Map, Value};

/// Registered claims stampede sets itself; `[auth] claims` may not name them.
pub const REGISTERED_CLAIMS: &[&str] = &["sub", "jti", "iat", "nbf", "exp", "aud", "iss"];

/// Seconds added to the minting instant, per time claim (`Forge::Shift`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Shift {
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
}

/// The claims of a valid token for `slot`, minted at `now` (Unix seconds):
/// extra claims, then `sub`, `jti`, `iat`, `nbf` (= the unshifted now), `exp` (now + ttl),
/// `aud`, `iss`; a shift moves each time claim to `now + offset`.
pub(super) fn claims(
    slot: &TokenPlan,
    auth: &AuthPlan,
    now: i64,
    shift: Shift,
) -> Map<String, Value> {
    let ttl = i64::try_from(token_lifetime(auth.ttl).as_secs()).unwrap_or(i64::MAX);
    let at = |offset: Option<i64>, default: i64| offset.map_or(default, |o| now.saturating_add(o));
    let mut claims = auth.claims.clone();
    claims.insert("sub".into(), json!(slot.sub));
    claims.insert("jti".into(), json!(slot.jti));
    claims.insert("iat".into(), json!(at(shift.iat, now)));
    claims.insert("nbf".into(), json!(at(shift.nbf, now)));
    claims.insert("exp".into(), json!(at(shift.exp, now.saturating_add(ttl))));
    if let Some(aud) = &auth.aud {
        claims.insert("aud".into(), json!(aud));
    }
    if let Some(iss) = &auth.iss {
        claims.insert("iss".into(), json!(iss));
    }
    claims
}

/// base64url without padding.
pub(super) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JOSE header with this `alg` (or none at all) and `typ: JWT`.
pub(super) fn header(alg: Option<&str>) -> Vec<u8> {
    let value = match alg {
        Some(alg) => json!({"alg": alg, "typ": "JWT"}),
        None => json!({"typ": "JWT"}),
    };
    value.to_string().into_bytes()
}

/// `b64(header).b64(payload)`: the JWS signing input.
pub(super) fn signing_input(header: &[u8], payload: &[u8]) -> String {
    format!("{}.{}", b64(header), b64(payload))
}

/// A properly signed token for `claims` with the run's algorithm and key.
pub(super) fn sign_claims(keys: &Keys, claims: &Map<String, Value>) -> Result<String, JwtError> {
    encode(&Header::new(keys.algorithm()), claims, keys.signing())
}

/// `header` and `payload` as given, signed with the run's key and algorithm whatever the
/// header says: a server that ignores the header's `alg` would accept such a token.
pub(super) fn sign_raw(keys: &Keys, header: &[u8], payload: &[u8]) -> Result<String, JwtError> {
    let input = signing_input(header, payload);
    let signature = crypto::sign(input.as_bytes(), keys.signing(), keys.algorithm())?;
    Ok(format!("{input}.{signature}"))
}

/// The three segments of a compact token; `None` unless there are exactly three.
pub(super) fn segments(jwt: &str) -> Option<(&str, &str, &str)> {
    let mut parts = jwt.split('.');
    let found = (parts.next()?, parts.next()?, parts.next()?);
    parts.next().is_none().then_some(found)
}

/// The signature segment with its first byte's lowest bit flipped: still base64url, still
/// the right length, no longer valid.
pub(super) fn flip_signature(signature: &str) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    match bytes.first_mut() {
        Some(first) => *first ^= 0x01,
        None => bytes.push(0x01),
    }
    b64(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Placement, SecretSource};
    use std::time::Duration;

    pub(crate) fn plan() -> AuthPlan {
        AuthPlan::from_spec(&crate::model::AuthSpec {
            secret: SecretSource::Literal { value: "k".into() },
            ttl: Duration::from_secs(60),
            placement: Placement::None,
            ..Default::default()
        })
    }

    fn slot() -> TokenPlan {
        TokenPlan {
            sub: "u".into(),
            jti: "j".into(),
            forge: None,
        }
    }

    #[test]
    fn claims_default_and_shifted() {
        let mut auth = plan();
        auth.aud = Some("api".into());
        auth.claims.insert("role".into(), json!("admin"));
        let c = claims(&slot(), &auth, 1000, Shift::default());
        let expected = json!({"sub": "u", "jti": "j", "iat": 1000, "nbf": 1000, "exp": 1060,
            "aud": "api", "role": "admin"});
        assert_eq!(Value::Object(c), expected);
        let shift = Shift {
            exp: Some(-30),
            nbf: Some(60),
            iat: Some(-3600),
        };
        let c = claims(&slot(), &auth, 1000, shift);
        assert_eq!(
            (c["exp"].clone(), c["nbf"].clone(), c["iat"].clone()),
            (json!(970), json!(1060), json!(-2600))
        );
    }

    #[test]
    fn segments_and_flips() {
        assert_eq!(segments("a.b.c"), Some(("a", "b", "c")));
        assert_eq!(segments("a.b"), None);
        assert_eq!(segments("a.b.c.d"), None);
        assert_ne!(flip_signature("AAAA"), "AAAA");
        assert_eq!(flip_signature(""), "AQ");
        assert_eq!(signing_input(b"{}", b"{}"), "e30.e30");
    }
}
