use super::*;
use crate::model::{AuthSpec, JwtAlg, Placement};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::time::Duration;

/// A test-only key file from `tests/fixtures/auth`.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/auth/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn auth_plan(alg: JwtAlg) -> AuthPlan {
    AuthPlan::from_spec(&AuthSpec {
        secret: SecretSource::Literal { value: "k".into() },
        alg,
        ttl: Duration::from_secs(60),
        placement: Placement::None,
        ..Default::default()
    })
}

/// Keys for `alg`: the literal secret `k`, or the fixture key pair.
pub(crate) fn keys(alg: JwtAlg) -> Keys {
    match alg {
        JwtAlg::Rs256 => Keys::pem(alg, &fixture("rsa-private.pem"), None).unwrap(),
        JwtAlg::Es256 => Keys::pem(alg, &fixture("ec-private.pem"), None).unwrap(),
        _ => Keys::hmac(alg, b"k").unwrap(),
    }
}

pub(crate) fn slot(forge: Option<Forge>) -> TokenPlan {
    TokenPlan {
        sub: "user-1".into(),
        jti: "abc".into(),
        forge,
    }
}

pub(crate) fn mint(alg: JwtAlg, forge: Option<Forge>) -> Token {
    let auth = auth_plan(alg);
    mint_all(&[slot(forge)], &auth, &keys(alg))
        .unwrap()
        .remove(0)
}

fn decoding_key(alg: JwtAlg) -> DecodingKey {
    match alg {
        JwtAlg::Rs256 => DecodingKey::from_rsa_pem(&fixture("rsa-public.pem")).unwrap(),
        JwtAlg::Es256 => DecodingKey::from_ec_pem(&fixture("ec-public.pem")).unwrap(),
        _ => DecodingKey::from_secret(b"k"),
    }
}

fn verify(token: &Token, alg: JwtAlg) -> Value {
    let mut validation = Validation::new(keys::algorithm(alg));
    validation.leeway = 0;
    validation.validate_nbf = true;
    decode::<Value>(token.expose(), &decoding_key(alg), &validation)
        .unwrap()
        .claims
}

#[test]
fn debug_and_display_never_show_the_jwt() {
    let token = mint(JwtAlg::Hs256, None);
    let shown = format!("{token:?} {token}");
    assert!(!shown.contains(token.expose()));
    assert!(shown.contains("jti=abc"));
    assert!(shown.contains(&token.fingerprint()));
    assert_eq!(token.expose().split('.').count(), 3);
    assert_eq!(token.forge_name(), None);
    let forged = mint(
        JwtAlg::Hs256,
        Some(Forge::Bad {
            name: BadToken::AlgNone,
        }),
    );
    let shown = format!("{forged:?}");
    assert!(shown.ends_with("forge=alg-none)"), "{shown}");
    assert!(!shown.contains(forged.expose()));
    let secret = Keys::hmac(JwtAlg::Hs256, b"hunter2-secret").unwrap();
    assert!(!format!("{secret:?}").contains("hunter2"));
}

#[test]
fn every_algorithm_mints_verifiable_tokens() {
    for alg in JwtAlg::ALL {
        let token = mint(alg, None);
        let claims = verify(&token, alg);
        assert_eq!(claims["sub"], "user-1", "{alg:?}");
        assert_eq!(claims["jti"], "abc");
        let (iat, nbf, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["nbf"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!((nbf, exp), (iat, iat + 60), "{alg:?}");
        let header = jsonwebtoken::decode_header(token.expose()).unwrap();
        assert_eq!(header.alg, keys::algorithm(alg));
        assert!(!token.must_reject());
    }
}

#[test]
fn aud_iss_and_extra_claims_are_minted() {
    let mut auth = auth_plan(JwtAlg::Hs256);
    auth.aud = Some("api".into());
    auth.iss = Some("https://issuer".into());
    auth.claims
        .insert("scope".into(), serde_json::json!(["read", "write"]));
    let token = mint_all(&[slot(None)], &auth, &keys(JwtAlg::Hs256))
        .unwrap()
        .remove(0);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["api"]);
    validation.set_issuer(&["https://issuer"]);
    let claims = decode::<Value>(token.expose(), &DecodingKey::from_secret(b"k"), &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["scope"], serde_json::json!(["read", "write"]));
}

#[test]
fn time_shifts_move_each_claim_and_name_the_token() {
    let auth = auth_plan(JwtAlg::Hs256);
    let shift = Forge::Shift {
        exp_s: Some(-30),
        nbf_s: None,
        iat_s: Some(-3600),
    };
    let token = mint_at(&[slot(Some(shift))], &auth, &keys(JwtAlg::Hs256), 10_000)
        .unwrap()
        .remove(0);
    assert_eq!(token.forge_name(), Some("shift(exp-30s,iat-3600s)"));
    assert!(token.must_reject());
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(token.expose())
        .unwrap()
        .claims;
    assert_eq!(
        (
            claims["exp"].as_i64(),
            claims["nbf"].as_i64(),
            claims["iat"].as_i64()
        ),
        (Some(9970), Some(10_000), Some(6400))
    );
    let future = Forge::Shift {
        exp_s: None,
        nbf_s: Some(60),
        iat_s: None,
    };
    let token = mint_at(&[slot(Some(future))], &auth, &keys(JwtAlg::Hs256), 10_000)
        .unwrap()
        .remove(0);
    assert_eq!(token.forge_name(), Some("shift(nbf+60s)"));
    assert!(token.must_reject());
    let later = Forge::Shift {
        exp_s: Some(5),
        nbf_s: None,
        iat_s: None,
    };
    assert!(!mint(JwtAlg::Hs256, Some(later)).must_reject());
}

#[test]
fn missing_places_nothing() {
    let token = mint(
        JwtAlg::Hs256,
        Some(Forge::Bad {
            name: BadToken::Missing,
        }),
    );
    assert!(!token.is_placed());
    assert_eq!(token.expose(), "");
}

#[test]
fn catalogue_slots_are_dealt_by_index() {
    let auth = auth_plan(JwtAlg::Hs256);
    let slots: Vec<TokenPlan> = (0..3).map(|_| slot(Some(Forge::Catalogue))).collect();
    let tokens = mint_all(&slots, &auth, &keys(JwtAlg::Hs256)).unwrap();
    let names: Vec<_> = tokens.iter().map(|t| t.forge_name().unwrap()).collect();
    let first: Vec<_> = BadToken::all().take(3).map(BadToken::name).collect();
    assert_eq!(names, first);
}

#[test]
fn many_slots_mint_in_order() {
    let auth = auth_plan(JwtAlg::Hs256);
    let slots: Vec<TokenPlan> = (0..1000)
        .map(|i| TokenPlan {
            sub: format!("u{i}"),
            jti: format!("j{i}"),
            forge: None,
        })
        .collect();
    let tokens = mint_all(&slots, &auth, &keys(JwtAlg::Hs256)).unwrap();
    assert_eq!(tokens.len(), 1000);
    assert!(tokens
        .iter()
        .enumerate()
        .all(|(i, t)| t.jti == format!("j{i}")));
    assert_eq!(verify(&tokens[999], JwtAlg::Hs256)["sub"], "u999");
}

#[test]
fn public_keys_are_derived_from_pkcs8_only() {
    let normalize = |pem: &[u8]| {
        String::from_utf8_lossy(pem)
            .replace('\r', "")
            .trim()
            .to_string()
    };
    let rsa = keys(JwtAlg::Rs256);
    assert_eq!(
        normalize(rsa.public_pem().unwrap()),
        normalize(&fixture("rsa-public.pem"))
    );
    let ec = keys(JwtAlg::Es256);
    assert_eq!(
        normalize(ec.public_pem().unwrap()),
        normalize(&fixture("ec-public.pem"))
    );
    let pkcs1 = Keys::pem(JwtAlg::Rs256, &fixture("rsa-private-pkcs1.pem"), None).unwrap();
    assert!(pkcs1.public_pem().is_none());
    let given = Keys::pem(
        JwtAlg::Rs256,
        &fixture("rsa-private-pkcs1.pem"),
        Some(&fixture("rsa-public.pem")),
    )
    .unwrap();
    assert!(given.public_pem().unwrap().ends_with(b"\n"));
    assert!(rsa.hmac_secret().is_none());
    assert_eq!(keys(JwtAlg::Hs384).hmac_secret(), Some(&b"k"[..]));
}

#[test]
fn unusable_keys_are_errors_not_panics() {
    for (alg, pem) in [
        (JwtAlg::Rs256, fixture("ec-private.pem")),
        (JwtAlg::Es256, fixture("rsa-private.pem")),
        (JwtAlg::Rs256, b"not a pem".to_vec()),
        (JwtAlg::Es256, Vec::new()),
    ] {
        let err = Keys::pem(alg, &pem, None).unwrap_err();
        assert!(matches!(err, AuthError::BadKey { .. }), "{alg:?}: {err}");
    }
    let bad_public = Keys::pem(
        JwtAlg::Rs256,
        &fixture("rsa-private.pem"),
        Some(&fixture("ec-public.pem")),
    );
    assert!(matches!(
        bad_public,
        Err(AuthError::BadKey {
            what: "public key",
            ..
        })
    ));
    let mut auth = auth_plan(JwtAlg::Rs256);
    assert!(matches!(
        resolve_keys(&auth),
        Err(AuthError::MissingKey("RS256"))
    ));
    auth.key = Some(SecretSource::File {
        path: "/nonexistent/stampede-key.pem".into(),
    });
    assert!(matches!(resolve_keys(&auth), Err(AuthError::File { .. })));
    assert!(matches!(
        Keys::hmac(JwtAlg::Hs256, b""),
        Err(AuthError::Empty(_))
    ));
}

#[test]
fn resolve_keys_reads_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    std::fs::write(&path, fixture("ec-private.pem")).unwrap();
    let mut auth = auth_plan(JwtAlg::Es256);
    auth.key = Some(SecretSource::File {
        path: path.display().to_string(),
    });
    let keys = resolve_keys(&auth).unwrap();
    assert_eq!(keys.alg(), JwtAlg::Es256);
    assert!(keys.public_pem().is_some());
}

#[test]
fn secret_comes_from_env_then_default() {
    let src = SecretSource::Env {
        name: "STAMPEDE_TEST_UNSET_VAR_X".into(),
        default: Some("d".into()),
    };
    assert_eq!(resolve_secret(&src).unwrap(), b"d");
    let src = SecretSource::Env {
        name: "STAMPEDE_TEST_UNSET_VAR_X".into(),
        default: None,
    };
    assert!(matches!(
        resolve_secret(&src),
        Err(AuthError::MissingEnv { .. })
    ));
}

#[test]
fn secret_file_trailing_newline_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    std::fs::write(&path, "topsecret\n").unwrap();
    let src = SecretSource::File {
        path: path.display().to_string(),
    };
    assert_eq!(resolve_secret(&src).unwrap(), b"topsecret");
}

#[test]
fn a_secret_a_saved_plan_did_not_store_names_what_to_set() {
    use crate::model::SecretText;
    // An env default that was not stored: the variable itself supplies it.
    let src = SecretSource::Env {
        name: "STAMPEDE_TEST_UNSET_VAR_Y".into(),
        default: Some(SecretText::NotStored),
    };
    let err = resolve_secret(&src).unwrap_err().to_string();
    assert!(err.contains("set STAMPEDE_TEST_UNSET_VAR_Y"), "{err}");
    // A literal that was not stored: the conventional variable for its kind.
    let src = SecretSource::Literal {
        value: SecretText::NotStored,
    };
    match resolve_secret(&src) {
        // The variable may be set in this environment; then it is used.
        Ok(v) => assert_eq!(
            v,
            std::env::var("STAMPEDE_JWT_SECRET").unwrap().into_bytes()
        ),
        Err(e) => assert!(e.to_string().contains("STAMPEDE_JWT_SECRET"), "{e}"),
    }
    assert_eq!(literal_env("JWT private key"), "STAMPEDE_JWT_KEY");
}

#[test]
fn the_development_secret_is_known_by_its_keys() {
    assert!(
        Keys::hmac(JwtAlg::Hs256, crate::model::DEV_SECRET.as_bytes())
            .unwrap()
            .is_development()
    );
    assert!(!keys(JwtAlg::Hs256).is_development());
    assert!(!keys(JwtAlg::Rs256).is_development());
}

#[tokio::test]
async fn a_token_file_that_is_not_utf8_names_its_path_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.txt");
    std::fs::write(&path, b"tok-one\n\xFFtok-two\n").unwrap();
    let source = crate::model::TokenSource::File {
        path: path.display().to_string(),
    };
    let Err(error) = read_tokens(&source).await else {
        panic!("a Latin-1 token file was read");
    };
    assert_eq!(
        error.to_string(),
        format!(
            "{}:2:1: not UTF-8 (byte 0xFF); an auth.tokens file must be UTF-8",
            path.display()
        )
    );
}

/// A valid minted token knows when a server may judge it expired: from its `exp` less
/// the few milliseconds a server's clock may be ahead ([`EXPIRED_WITHIN`]): not a second
/// before it, when a server's close is early, a finding. A time-shifted one (expired
/// on purpose), a catalogue entry and one taken from `[auth] tokens` never read so.
#[tokio::test]
async fn a_minted_token_knows_when_a_server_may_judge_it_expired() {
    let auth = auth_plan(JwtAlg::Hs256);
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
    let minted = |forge| {
        mint_at(&[slot(forge)], &auth, &keys(JwtAlg::Hs256), 10_000)
            .unwrap()
            .remove(0)
    };
    // Minted at 10 000 s with a 60 s ttl: `exp` is 10 060 s.
    let valid = minted(None);
    assert!(!valid.expired_at(at(10_000)));
    let at_ms = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
    assert!(!valid.expired_at(at(10_059)), "a second early is no expiry");
    assert!(!valid.expired_at(at_ms(10_059_800)));
    assert!(
        valid.expired_at(at_ms(10_059_950)),
        "within a clock's jitter of exp"
    );
    assert!(valid.expired_at(at(10_060)));
    let shifted = minted(Some(Forge::Shift {
        exp_s: Some(-30),
        nbf_s: None,
        iat_s: None,
    }));
    let bad = minted(Some(Forge::Bad {
        name: crate::model::BadToken::AlgNone,
    }));
    for forged in [shifted, bad] {
        assert!(!forged.expired_at(at(20_000)), "{forged}");
    }
    let mut tokens = vec![valid];
    let source = crate::model::TokenSource::List {
        values: vec!["opaque-token".into()],
    };
    let opaque = read_tokens(&source).await.unwrap();
    assign_source(&mut tokens, &[slot(None)], &source, &opaque);
    assert!(!tokens[0].expired_at(at(20_000)));
}

/// A key that cannot sign the algorithm is told in words (which key the algorithm needs,
/// what the source holds), not by the library's error name, and never shows the key.
#[test]
fn a_public_key_of_the_wrong_kind_is_told_in_words() {
    let problem = |alg, pem: &[u8]| keys::public_key_problem(alg, pem, "p.pem");
    assert_eq!(problem(JwtAlg::Rs256, &fixture("rsa-public.pem")), None);
    assert_eq!(problem(JwtAlg::Es256, &fixture("ec-public.pem")), None);
    let ec = problem(JwtAlg::Rs256, &fixture("ec-public.pem")).unwrap_or_default();
    assert!(
        ec.starts_with("RS256 needs an RSA public key in PEM")
            && ec.ends_with(
                "p.pem holds a public key of another algorithm (or curve) than the one alg names"
            ),
        "{ec}"
    );
    let private = problem(JwtAlg::Rs256, &fixture("ec-private.pem")).unwrap_or_default();
    assert!(
        private.ends_with("p.pem holds an EC private key, not a public key"),
        "{private}"
    );
    let text = problem(JwtAlg::Es256, b"not a pem").unwrap_or_default();
    assert!(
        text.ends_with("p.pem is not PEM (no -----BEGIN line)"),
        "{text}"
    );
}

#[test]
fn a_private_key_of_the_wrong_kind_is_told_in_words() {
    let problem = |alg, pem: &[u8]| private_key_problem(alg, pem, "k.pem").unwrap();
    let rs = problem(JwtAlg::Rs256, &fixture("ec-private.pem"));
    assert_eq!(
        rs,
        "RS256 needs an RSA private key in PEM (-----BEGIN PRIVATE KEY----- or \
         -----BEGIN RSA PRIVATE KEY-----); k.pem holds an EC private key"
    );
    let es = problem(JwtAlg::Es256, &fixture("rsa-private.pem"));
    assert!(
        es.starts_with("ES256 needs a P-256 EC private key in PKCS#8 PEM"),
        "{es}"
    );
    assert!(es.ends_with("; k.pem holds an RSA private key"), "{es}");
    let pkcs1 = problem(JwtAlg::Es256, &fixture("rsa-private-pkcs1.pem"));
    assert!(pkcs1.ends_with("k.pem holds an RSA private key"), "{pkcs1}");
    let public = problem(JwtAlg::Rs256, &fixture("rsa-public.pem"));
    assert!(
        public.ends_with("k.pem holds a public key, not a private one"),
        "{public}"
    );
    let text = problem(JwtAlg::Rs256, b"not a pem");
    assert!(
        text.ends_with("k.pem is not PEM (no -----BEGIN line)"),
        "{text}"
    );
    assert!(private_key_problem(JwtAlg::Rs256, &fixture("rsa-private.pem"), "k").is_none());
    assert!(private_key_problem(JwtAlg::Es256, &fixture("ec-private.pem"), "k").is_none());
    let sec1 = problem(JwtAlg::Es256, &fixture("ec-private-sec1.pem"));
    assert!(sec1.ends_with("k.pem holds an EC private key in SEC1 form (-----BEGIN EC PRIVATE KEY-----); convert it with openssl pkcs8 -topk8 -nocrypt -in FILE"), "{sec1}");
    // Whole lines of base64 (which decode), then the END line: a key cut short.
    let whole = String::from_utf8(fixture("rsa-private.pem")).unwrap();
    let mut cut: Vec<&str> = whole.lines().take(8).collect();
    cut.push("-----END PRIVATE KEY-----\n");
    let cut = cut.join("\n").into_bytes();
    let cut = problem(JwtAlg::Rs256, &cut);
    assert!(
        cut.ends_with("k.pem holds an RSA private key that cannot be read (cut short or damaged?)"),
        "{cut}"
    );

    // The run says the same, naming the file it read.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ec.pem");
    std::fs::write(&path, fixture("ec-private.pem")).unwrap();
    let mut auth = auth_plan(JwtAlg::Rs256);
    auth.key = Some(SecretSource::File {
        path: path.display().to_string(),
    });
    let err = resolve_keys(&auth).unwrap_err().to_string();
    let want = format!("; {} holds an EC private key", path.display());
    assert!(
        err.starts_with("[auth] key: RS256 needs an RSA private key"),
        "{err}"
    );
    assert!(err.ends_with(&want), "{err}");
    assert!(
        !err.contains("InvalidKeyFormat") && !err.contains("MII"),
        "{err}"
    );
}

/// An `env` secret the run took from the scenario's default, the variable unset: a saved
/// plan does not store that default (the public development secret aside), so a replay
/// needs the variable set, and the suggestion says so; set, or the development secret,
/// nothing to add.
#[test]
fn an_env_default_a_saved_plan_does_not_store_is_named_for_the_replay() {
    let with_default = |default: &str| {
        let mut plan = auth_plan(JwtAlg::Hs256);
        plan.secret = SecretSource::Env {
            name: "HUNT_SECRET".into(),
            default: Some(default.into()),
        };
        plan
    };
    let unset = |_: &str| None;
    let set = |_: &str| Some("from-env".to_string());
    assert_eq!(
        env_defaults_not_stored(&with_default("DefSekrit55"), &unset),
        ["HUNT_SECRET"]
    );
    assert!(env_defaults_not_stored(&with_default("DefSekrit55"), &set).is_empty());
    assert!(env_defaults_not_stored(&with_default(crate::model::DEV_SECRET), &unset).is_empty());
}
