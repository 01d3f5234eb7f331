//! The bad-token catalogue: named, deliberately wrong tokens (docs/race-patterns.md, "Bad
//! tokens and rejection hygiene"). A correct server refuses every one of them.
//!
//! Entries that keep a valid signature (wrong claims, wrong key, oversized) are signed by
//! jsonwebtoken with the run's key, so only the mutation is wrong. The rest go through the
//! hand encoder in `encode.rs`.
//!
//! `wrong-aud` and `wrong-iss` carry an `aud`/`iss` that no configuration expects
//! (`stampede-wrong-audience`, `https://stampede-wrong-issuer.invalid`), whether or not
//! `[auth]` sets `aud`/`iss`; without them set, the entries test that the server refuses
//! audiences and issuers it was not told to trust.

use super::encode::{b64, flip_signature, header, segments, sign_claims, sign_raw, signing_input};
use super::keys::Keys;
use jsonwebtoken::errors::Error as JwtError;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};

/// Every catalogue entry, in a stable order (plans refer to entries by name).
pub const NAMES: &[&str] = &[
    "missing",
    "empty",
    "garbage",
    "truncated",
    "bad-base64",
    "wrong-signature",
    "signature-stripped",
    "alg-none",
    "alg-none-title",
    "alg-none-upper",
    "alg-none-mixed",
    "alg-empty",
    "alg-missing",
    "unknown-alg",
    "hs-rs-confusion",
    "psychic-es256",
    "wrong-aud",
    "wrong-iss",
    "missing-sub",
    "empty-sub",
    "missing-exp",
    "exp-string",
    "two-segments",
    "four-segments",
    "duplicate-sub-keys",
    "oversized",
];

/// The `aud` of `wrong-aud`.
pub const WRONG_AUD: &str = "stampede-wrong-audience";
/// The `iss` of `wrong-iss`.
pub const WRONG_ISS: &str = "https://stampede-wrong-issuer.invalid";
/// The second `sub` of `duplicate-sub-keys` (what a last-key-wins parser would read).
pub const DUPLICATE_SUB: &str = "admin";
/// Smallest length of the `oversized` token.
pub const OVERSIZED_BYTES: usize = 16 * 1024;
/// The token of `garbage`.
const GARBAGE: &str = "stampede-garbage-not-a-jwt";
/// The HMAC secret of `hs-rs-confusion` when the run has no public key (HS setups): not
/// the server's secret, so the entry is still a bad signature.
const NO_PUBLIC_KEY: &str =
    "-----BEGIN PUBLIC KEY-----\nstampede-no-public-key-configured\n-----END PUBLIC KEY-----\n";

/// Whether `name` is a catalogue entry.
pub fn is_name(name: &str) -> bool {
    NAMES.contains(&name)
}

/// One line on what an entry is, for docs and messages.
pub fn describe(name: &str) -> Option<&'static str> {
    Some(match name {
        "missing" => "no token on the request at all",
        "empty" => "the token is the empty string",
        "garbage" => "a string that is not a JWT",
        "truncated" => "a valid token cut to half its length",
        "bad-base64" => "payload segment with characters outside base64url",
        "wrong-signature" => "valid token with one signature bit flipped",
        "signature-stripped" => "valid token with the signature removed (`h.p.`)",
        "alg-none" => "`alg: none`, empty signature",
        "alg-none-title" => "`alg: None`, empty signature",
        "alg-none-upper" => "`alg: NONE`, empty signature",
        "alg-none-mixed" => "`alg: nOnE`, empty signature",
        "alg-empty" => "`alg: \"\"`, signed with the run's key and algorithm",
        "alg-missing" => "no `alg` in the header, signed with the run's key and algorithm",
        "unknown-alg" => "`alg: HS1024`, signed with the run's key and algorithm",
        "hs-rs-confusion" => "HS256 signed with the public key PEM as the HMAC secret",
        "psychic-es256" => "ES256 with an all-zero signature (r = s = 0, CVE-2022-21449)",
        "wrong-aud" => "validly signed, `aud` no server expects",
        "wrong-iss" => "validly signed, `iss` no server expects",
        "missing-sub" => "validly signed, no `sub`",
        "empty-sub" => "validly signed, `sub` is \"\"",
        "missing-exp" => "validly signed, no `exp`",
        "exp-string" => "validly signed, `exp` is a string",
        "two-segments" => "a valid token without its signature segment (`h.p`)",
        "four-segments" => "a valid token with a fourth segment",
        "duplicate-sub-keys" => "validly signed payload with `sub` twice (second: admin)",
        "oversized" => "validly signed, padded to 16 KiB",
        _ => return None,
    })
}

/// Why an entry could not be made.
#[derive(Debug, thiserror::Error)]
pub(super) enum ForgeError {
    #[error("unknown catalogue entry {0:?}")]
    Unknown(String),
    #[error(transparent)]
    Sign(#[from] JwtError),
}

/// Makes entry `name` from the claims of a valid token. `None`: nothing is placed.
pub(super) fn forge(
    name: &str,
    keys: &Keys,
    claims: &Map<String, Value>,
) -> Result<Option<String>, ForgeError> {
    let valid = || sign_claims(keys, claims);
    let with = |edit: &dyn Fn(&mut Map<String, Value>)| {
        let mut changed = claims.clone();
        edit(&mut changed);
        sign_claims(keys, &changed)
    };
    let payload = || Value::Object(claims.clone()).to_string().into_bytes();
    let unsigned = |alg: &str| format!("{}.", signing_input(&header(Some(alg)), &payload()));
    let token = match name {
        "missing" => return Ok(None),
        "empty" => String::new(),
        "garbage" => GARBAGE.to_string(),
        "truncated" => {
            let jwt = valid()?;
            jwt.get(..jwt.len() / 2).unwrap_or_default().to_string()
        }
        "bad-base64" => map_segments(&valid()?, |h, p, s| format!("{h}.!!{p}.{s}")),
        "wrong-signature" => map_segments(&valid()?, |h, p, s| {
            format!("{h}.{p}.{}", flip_signature(s))
        }),
        "signature-stripped" => map_segments(&valid()?, |h, p, _| format!("{h}.{p}.")),
        "alg-none" => unsigned("none"),
        "alg-none-title" => unsigned("None"),
        "alg-none-upper" => unsigned("NONE"),
        "alg-none-mixed" => unsigned("nOnE"),
        "alg-empty" => sign_raw(keys, &header(Some("")), &payload())?,
        "alg-missing" => sign_raw(keys, &header(None), &payload())?,
        "unknown-alg" => sign_raw(keys, &header(Some("HS1024")), &payload())?,
        "hs-rs-confusion" => {
            let secret = keys.public_pem().unwrap_or(NO_PUBLIC_KEY.as_bytes());
            let key = EncodingKey::from_secret(secret);
            encode(&Header::new(Algorithm::HS256), claims, &key)?
        }
        "psychic-es256" => format!(
            "{}.{}",
            signing_input(&header(Some("ES256")), &payload()),
            b64(&[0; 64])
        ),
        "wrong-aud" => with(&|c| {
            c.insert("aud".into(), json!(WRONG_AUD));
        })?,
        "wrong-iss" => with(&|c| {
            c.insert("iss".into(), json!(WRONG_ISS));
        })?,
        "missing-sub" => with(&|c| {
            c.remove("sub");
        })?,
        "empty-sub" => with(&|c| {
            c.insert("sub".into(), json!(""));
        })?,
        "missing-exp" => with(&|c| {
            c.remove("exp");
        })?,
        "exp-string" => with(&|c| {
            let exp = c.get("exp").map(Value::to_string).unwrap_or_default();
            c.insert("exp".into(), Value::String(exp));
        })?,
        "two-segments" => map_segments(&valid()?, |h, p, _| format!("{h}.{p}")),
        "four-segments" => map_segments(&valid()?, |h, p, s| format!("{h}.{p}.{s}.{s}")),
        "duplicate-sub-keys" => sign_raw(
            keys,
            &header(Some(keys.alg().name())),
            &duplicate_sub(claims),
        )?,
        "oversized" => with(&|c| {
            c.insert("pad".into(), json!("x".repeat(OVERSIZED_BYTES * 3 / 4)));
        })?,
        other => return Err(ForgeError::Unknown(other.to_string())),
    };
    Ok(Some(token))
}

/// Rebuilds a three-segment token; anything else is returned unchanged.
fn map_segments(jwt: &str, f: impl Fn(&str, &str, &str) -> String) -> String {
    match segments(jwt) {
        Some((h, p, s)) => f(h, p, s),
        None => jwt.to_string(),
    }
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
