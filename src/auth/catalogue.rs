//! Forging the bad-token catalogue: each entry's [`Recipe`] (in `model::bad_token`, beside
//! its name, description and policy) turned into a token.
//!
//! Entries that keep a valid signature (wrong claims, wrong key, oversized) are signed by
//! jsonwebtoken with the run's key, so only the mutation is wrong. The rest go through the
//! hand encoder in `encode.rs`.
//!
//! `wrong-aud` and `wrong-iss` carry an `aud`/`iss` that no configuration expects, whether
//! or not `[auth]` sets `aud`/`iss`; without them set, the entries test that the server
//! refuses audiences and issuers it was not told to trust.

use super::encode::{b64, flip_signature, header, segments, sign_claims, sign_raw, signing_input};
use super::keys::Keys;
use crate::model::bad_token::{ClaimEdit, Mangle, Recipe, DUPLICATE_SUB};
use crate::model::BadToken;
use jsonwebtoken::errors::Error as JwtError;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};

/// The HMAC secret of `hs-rs-confusion` when the run has no public key (HS setups): not
/// the server's secret, so the entry is still a bad signature.
const NO_PUBLIC_KEY: &str =
    "-----BEGIN PUBLIC KEY-----\nstampede-no-public-key-configured\n-----END PUBLIC KEY-----\n";

/// Makes entry `entry` from the claims of a valid token. `None`: nothing is placed.
pub(super) fn forge(
    entry: BadToken,
    keys: &Keys,
    claims: &Map<String, Value>,
) -> Result<Option<String>, JwtError> {
    let payload = || Value::Object(claims.clone()).to_string().into_bytes();
    let token = match entry.recipe() {
        Recipe::Omit => return Ok(None),
        Recipe::Literal(text) => text.to_string(),
        Recipe::Mangle(how) => mangle(&sign_claims(keys, claims)?, how),
        Recipe::Unsigned(alg) => format!("{}.", signing_input(&header(Some(alg)), &payload())),
        Recipe::Resigned(alg) => sign_raw(keys, &header(alg), &payload())?,
        Recipe::HmacWithPublicKey => {
            let secret = keys.public_pem().unwrap_or(NO_PUBLIC_KEY.as_bytes());
            let key = EncodingKey::from_secret(secret);
            encode(&Header::new(Algorithm::HS256), claims, &key)?
        }
        Recipe::ZeroEcdsaSignature => format!(
            "{}.{}",
            signing_input(&header(Some("ES256")), &payload()),
            b64(&[0; 64])
        ),
        Recipe::Claims(edit) => sign_claims(keys, &edited(claims, edit))?,
        Recipe::DuplicateSub => sign_raw(
            keys,
            &header(Some(keys.alg().name())),
            &duplicate_sub(claims),
        )?,
    };
    Ok(Some(token))
}

/// A validly signed token's text, changed.
fn mangle(jwt: &str, how: Mangle) -> String {
    if how == Mangle::Truncate {
        return jwt.get(..jwt.len() / 2).unwrap_or_default().to_string();
    }
    let Some((h, p, s)) = segments(jwt) else {
        return jwt.to_string();
    };
    match how {
        Mangle::Truncate => jwt.to_string(),
        Mangle::CorruptPayload => format!("{h}.!!{p}.{s}"),
        Mangle::FlipSignatureBit => format!("{h}.{p}.{}", flip_signature(s)),
        Mangle::StripSignature => format!("{h}.{p}."),
        Mangle::DropSignatureSegment => format!("{h}.{p}"),
        Mangle::AddSegment => format!("{h}.{p}.{s}.{s}"),
    }
}

/// The claims with one change.
fn edited(claims: &Map<String, Value>, edit: ClaimEdit) -> Map<String, Value> {
    let mut c = claims.clone();
    match edit {
        ClaimEdit::Set(name, value) => {
            c.insert(name.into(), json!(value));
        }
        ClaimEdit::Remove(name) => {
            c.remove(name);
        }
        ClaimEdit::ExpAsString => {
            let exp = c.get("exp").map(Value::to_string).unwrap_or_default();
            c.insert("exp".into(), Value::String(exp));
        }
        ClaimEdit::Pad(bytes) => {
            c.insert("pad".into(), json!("x".repeat(bytes)));
        }
    }
    c
}

/// The claims as JSON text with a second `"sub"` member after all the others.
fn duplicate_sub(claims: &Map<String, Value>) -> Vec<u8> {
    let object = Value::Object(claims.clone()).to_string();
    let body = object.strip_suffix('}').unwrap_or("{");
    let sep = if body.len() > 1 { "," } else { "" };
    format!("{body}{sep}\"sub\":{}}}", json!(DUPLICATE_SUB)).into_bytes()
}

#[cfg(test)]
mod tests;
