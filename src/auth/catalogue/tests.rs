//! Every catalogue entry's structure: segment count, header `alg`, whether the parts
//! decode, whether the signature is valid for the run's key.

use super::*;
use crate::auth::tests::{auth_plan, fixture, keys, slot};
use crate::auth::{mint_at, Token};
use crate::model::bad_token::{OVERSIZED_BYTES, WRONG_AUD, WRONG_ISS};
use crate::model::{Forge, JwtAlg};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{crypto, DecodingKey};

const NOW: i64 = 1_700_000_000;

fn mint(alg: JwtAlg, forge: Option<Forge>) -> Token {
    mint_at(&[slot(forge)], &auth_plan(alg), &keys(alg), NOW)
        .unwrap()
        .remove(0)
}

fn entry(alg: JwtAlg, name: &str) -> String {
    let token = mint(
        alg,
        Some(Forge::Bad {
            name: BadToken::from_name(name).unwrap(),
        }),
    );
    assert_eq!(token.forge_name(), Some(name));
    assert!(token.must_reject());
    token.expose().to_string()
}

fn part(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// (segments, header alg if the header decodes, payload if it decodes, signature segment).
fn shape(jwt: &str) -> (usize, Option<Value>, Option<Value>, String) {
    let parts: Vec<&str> = jwt.split('.').collect();
    let header = parts.first().and_then(|h| part(h));
    let alg = header.map(|h| h.get("alg").cloned().unwrap_or(Value::Null));
    let payload = parts.get(1).and_then(|p| part(p));
    (
        parts.len(),
        alg,
        payload,
        parts.get(2).copied().unwrap_or_default().to_string(),
    )
}

fn public_key(alg: JwtAlg) -> DecodingKey {
    match alg {
        JwtAlg::Rs256 => DecodingKey::from_rsa_pem(&fixture("rsa-public.pem")).unwrap(),
        JwtAlg::Es256 => DecodingKey::from_ec_pem(&fixture("ec-public.pem")).unwrap(),
        _ => DecodingKey::from_secret(b"k"),
    }
}

/// Whether the third segment is a valid signature of the first two under the run's key.
fn signed_by_run_key(jwt: &str, alg: JwtAlg) -> bool {
    let Some((h, p, s)) = segments(jwt) else {
        return false;
    };
    let input = format!("{h}.{p}");
    crypto::verify(
        s,
        input.as_bytes(),
        &public_key(alg),
        crate::auth::keys::algorithm(alg),
    )
    .unwrap_or(false)
}

#[test]
fn names_are_kebab_case() {
    for name in names() {
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
    }
    assert!(BadToken::from_name("catalogue").is_none());
}

fn names() -> Vec<&'static str> {
    BadToken::all().map(BadToken::name).collect()
}

#[test]
fn missing_empty_garbage() {
    assert!(!mint(
        JwtAlg::Hs256,
        Some(Forge::Bad {
            name: BadToken::Missing
        })
    )
    .is_placed());
    assert_eq!(entry(JwtAlg::Hs256, "empty"), "");
    let garbage = entry(JwtAlg::Hs256, "garbage");
    assert_eq!(shape(&garbage).0, 1);
    assert_eq!(shape(&garbage).1, None);
}

#[test]
fn mutations_of_a_valid_token() {
    let valid = mint(JwtAlg::Hs256, None).expose().to_string();
    let (h, p, s) = segments(&valid).unwrap();
    assert_eq!(entry(JwtAlg::Hs256, "truncated"), &valid[..valid.len() / 2]);
    let bad = entry(JwtAlg::Hs256, "bad-base64");
    assert_eq!(bad, format!("{h}.!!{p}.{s}"));
    assert!(shape(&bad).1.is_some() && shape(&bad).2.is_none());
    let flipped = entry(JwtAlg::Hs256, "wrong-signature");
    let (fh, fp, fs) = segments(&flipped).unwrap();
    assert_eq!((fh, fp, fs.len()), (h, p, s.len()));
    assert_ne!(fs, s);
    assert!(signed_by_run_key(&valid, JwtAlg::Hs256));
    assert!(!signed_by_run_key(&flipped, JwtAlg::Hs256));
    assert_eq!(
        entry(JwtAlg::Hs256, "signature-stripped"),
        format!("{h}.{p}.")
    );
    assert_eq!(entry(JwtAlg::Hs256, "two-segments"), format!("{h}.{p}"));
    assert_eq!(
        entry(JwtAlg::Hs256, "four-segments"),
        format!("{h}.{p}.{s}.{s}")
    );
}

#[test]
fn unsigned_and_odd_algorithms() {
    for (name, alg) in [
        ("alg-none", "none"),
        ("alg-none-title", "None"),
        ("alg-none-upper", "NONE"),
        ("alg-none-mixed", "nOnE"),
    ] {
        let (n, header_alg, payload, sig) = shape(&entry(JwtAlg::Hs256, name));
        assert_eq!(
            (n, header_alg, sig.as_str()),
            (3, Some(json!(alg)), ""),
            "{name}"
        );
        assert_eq!(payload.unwrap()["sub"], "user-1");
    }
    for (name, alg) in [
        ("alg-empty", json!("")),
        ("alg-missing", Value::Null),
        ("unknown-alg", json!("HS1024")),
    ] {
        let jwt = entry(JwtAlg::Hs256, name);
        assert_eq!(shape(&jwt).1, Some(alg), "{name}");
        // Signed as the run would sign: only a server that ignores `alg` accepts it.
        assert!(signed_by_run_key(&jwt, JwtAlg::Hs256), "{name}");
    }
    let psychic = entry(JwtAlg::Hs256, "psychic-es256");
    let (_, alg, payload, sig) = shape(&psychic);
    assert_eq!(alg, Some(json!("ES256")));
    assert!(payload.is_some());
    assert_eq!(URL_SAFE_NO_PAD.decode(sig).unwrap(), vec![0u8; 64]);
    assert!(!signed_by_run_key(
        &entry(JwtAlg::Es256, "psychic-es256"),
        JwtAlg::Es256
    ));
}

#[test]
fn key_confusion_uses_the_public_key_pem_when_there_is_one() {
    for alg in [JwtAlg::Rs256, JwtAlg::Es256] {
        let jwt = entry(alg, "hs-rs-confusion");
        assert_eq!(shape(&jwt).1, Some(json!("HS256")));
        let public = keys(alg).public_pem().unwrap().to_vec();
        let (h, p, s) = segments(&jwt).unwrap();
        let input = format!("{h}.{p}");
        let hmac = DecodingKey::from_secret(&public);
        assert!(
            crypto::verify(s, input.as_bytes(), &hmac, jsonwebtoken::Algorithm::HS256).unwrap(),
            "{alg:?}"
        );
    }
    // HS setups: still HS256, but not signed with the server's secret.
    let jwt = entry(JwtAlg::Hs256, "hs-rs-confusion");
    assert_eq!(shape(&jwt).1, Some(json!("HS256")));
    assert!(!signed_by_run_key(&jwt, JwtAlg::Hs256));
}

#[test]
fn validly_signed_claim_mutations() {
    let claims = |name: &str| {
        let jwt = entry(JwtAlg::Hs256, name);
        assert!(signed_by_run_key(&jwt, JwtAlg::Hs256), "{name}");
        assert_eq!(shape(&jwt).1, Some(json!("HS256")));
        shape(&jwt).2.unwrap()
    };
    assert_eq!(claims("wrong-aud")["aud"], WRONG_AUD);
    assert_eq!(claims("wrong-iss")["iss"], WRONG_ISS);
    assert!(claims("missing-sub").get("sub").is_none());
    assert_eq!(claims("empty-sub")["sub"], "");
    assert!(claims("missing-exp").get("exp").is_none());
    let exp = claims("exp-string");
    assert_eq!(exp["exp"], json!((NOW + 60).to_string()));
    assert_eq!(
        claims("duplicate-sub-keys")["sub"],
        DUPLICATE_SUB,
        "last key wins in serde_json::Value"
    );
    let raw = entry(JwtAlg::Hs256, "duplicate-sub-keys");
    let text =
        String::from_utf8(URL_SAFE_NO_PAD.decode(segments(&raw).unwrap().1).unwrap()).unwrap();
    assert_eq!(text.matches("\"sub\":").count(), 2, "{text}");
    assert!(text.starts_with('{') && text.ends_with('}'));
    let big = entry(JwtAlg::Hs256, "oversized");
    assert!(
        big.len() >= OVERSIZED_BYTES && big.len() < OVERSIZED_BYTES + 1024,
        "{}",
        big.len()
    );
    assert!(claims("oversized").get("pad").is_some());
}

#[test]
fn every_entry_mints_with_every_algorithm() {
    for alg in JwtAlg::ALL {
        let valid = mint(alg, None);
        assert!(signed_by_run_key(valid.expose(), alg), "{alg:?}");
        for name in names() {
            let token = mint(
                alg,
                Some(Forge::Bad {
                    name: BadToken::from_name(name).unwrap(),
                }),
            );
            assert_eq!(token.is_placed(), name != "missing");
            assert_ne!(token.expose(), valid.expose(), "{alg:?} {name}");
            let signed = [
                "wrong-aud",
                "wrong-iss",
                "missing-sub",
                "empty-sub",
                "missing-exp",
                "exp-string",
                "duplicate-sub-keys",
                "oversized",
                "alg-empty",
                "alg-missing",
                "unknown-alg",
            ];
            assert_eq!(
                signed_by_run_key(token.expose(), alg),
                signed.contains(&name),
                "{alg:?} {name}"
            );
            // Every entry fits every placement: printable ASCII, no separators of any.
            assert!(
                token
                    .expose()
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !",;&=?#\"".contains(c)),
                "{alg:?} {name}"
            );
        }
    }
}

#[test]
fn duplicate_sub_of_an_empty_object_is_still_json() {
    let text = String::from_utf8(duplicate_sub(&Map::new())).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"sub": DUPLICATE_SUB})
    );
}
