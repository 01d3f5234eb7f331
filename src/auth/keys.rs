//! Key material: the HMAC secret, or a PEM private key and its public key.
//!
//! Read once per run from the sources the scenario names (env var, file, literal). Nothing
//! here is ever printed: `Keys`' `Debug` names the algorithm only.

use super::AuthError;
use crate::model::AuthPlan;
use crate::model::{EnvValues, JwtAlg, SecretSource, SecretText, DEV_SECRET};
use jsonwebtoken::{crypto, Algorithm, DecodingKey, EncodingKey};
use std::fmt;

/// Signing material for one run.
pub struct Keys {
    alg: JwtAlg,
    signing: EncodingKey,
    secret: Option<Vec<u8>>,
    public_pem: Option<Vec<u8>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("alg", &self.alg.name())
            .field("public_key", &self.public_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// HMAC keys from a secret already in hand (tests, benches). `alg` must be HS*.
    pub fn hmac(alg: JwtAlg, secret: &[u8]) -> Result<Self, AuthError> {
        if !alg.is_hmac() {
            return Err(AuthError::MissingKey(alg.name()));
        }
        if secret.is_empty() {
            return Err(AuthError::Empty("JWT secret"));
        }
        Ok(Keys {
            alg,
            signing: EncodingKey::from_secret(secret),
            secret: Some(secret.to_vec()),
            public_pem: None,
        })
    }

    /// RS256/ES256 keys from PEM text already in hand. `public_pem` is derived from a
    /// PKCS#8 private key when not given.
    pub fn pem(
        alg: JwtAlg,
        private_pem: &[u8],
        public_pem: Option<&[u8]>,
    ) -> Result<Self, AuthError> {
        let bad = |what: &'static str| {
            move |e: jsonwebtoken::errors::Error| AuthError::BadKey {
                what,
                reason: e.to_string(),
            }
        };
        let signing = match alg {
            JwtAlg::Rs256 => EncodingKey::from_rsa_pem(private_pem),
            JwtAlg::Es256 => EncodingKey::from_ec_pem(private_pem),
            _ => return Keys::hmac(alg, private_pem),
        }
        .map_err(bad("private key"))?;
        // Parsing a PEM checks its label, not the key: one signature proves it signs.
        crypto::sign(b"stampede key check", &signing, algorithm(alg))
            .map_err(bad("private key"))?;
        let public_pem = match public_pem {
            Some(pem) => {
                match alg {
                    JwtAlg::Rs256 => DecodingKey::from_rsa_pem(pem),
                    _ => DecodingKey::from_ec_pem(pem),
                }
                .map_err(bad("public key"))?;
                Some(with_newline(pem))
            }
            None => derive_public(private_pem),
        };
        Ok(Keys {
            alg,
            signing,
            secret: None,
            public_pem,
        })
    }

    pub fn alg(&self) -> JwtAlg {
        self.alg
    }

    pub(super) fn algorithm(&self) -> Algorithm {
        algorithm(self.alg)
    }

    pub(super) fn signing(&self) -> &EncodingKey {
        &self.signing
    }

    /// The HMAC secret (HS* only): what a server verifying these tokens needs.
    pub fn hmac_secret(&self) -> Option<&[u8]> {
        self.secret.as_deref()
    }

    /// Also shows the HMAC secret (HS* only), and its percent-encoded form, as
    /// `SECRET_SHOWN` wherever `hidden` hides values: a server that echoes the secret it
    /// verifies with (a debug page, an error naming its key) must not have it printed or
    /// written. The public development secret is no secret and stays as it is.
    pub fn hide_secret(&self, hidden: &mut EnvValues) {
        let Some(secret) = self.hmac_secret().filter(|_| !self.is_development()) else {
            return;
        };
        let Ok(text) = std::str::from_utf8(secret) else {
            return;
        };
        hidden.add(text, SECRET_SHOWN);
        // As a URL's query carries it, the way tokens' percent-encoded forms are found.
        let encoded =
            percent_encoding::utf8_percent_encode(text, super::placement::QUERY_VALUE).to_string();
        if encoded != text {
            hidden.add(&encoded, SECRET_SHOWN);
        }
    }

    /// Whether these keys sign with the public development secret ([`DEV_SECRET`]): fine
    /// for the built-in server, worth a notice against any other target.
    pub fn is_development(&self) -> bool {
        self.hmac_secret() == Some(DEV_SECRET.as_bytes())
    }

    /// Where tokens signed with the public development secret got it from `secret`, and
    /// what to set instead, as `(why, fix)`: `("STAMPEDE_JWT_SECRET is not set, so
    /// stampede's public development secret is in use", "set STAMPEDE_JWT_SECRET to the
    /// server's secret")`. `is_set` says whether an environment variable is set. Names
    /// where the secret came from, never a value.
    pub fn development_secret_words(
        secret: &SecretSource,
        is_set: impl Fn(&str) -> bool,
    ) -> (String, String) {
        match secret {
            // Unset, the variable's default (the development secret) signs the tokens.
            SecretSource::Env { name, .. } if !is_set(name) => (
                format!("{name} is not set, so stampede's public development secret is in use"),
                format!("set {name} to the server's secret"),
            ),
            SecretSource::Env { name, .. } => (
                format!("{name} holds stampede's public development secret"),
                format!("set {name} to the server's secret"),
            ),
            SecretSource::File { path } => (
                format!("the secret file {path} holds stampede's public development secret"),
                "put the server's secret in it".to_string(),
            ),
            SecretSource::Literal { .. } => (
                "the scenario's [auth] secret is stampede's public development secret".to_string(),
                "set [auth] secret to the server's secret".to_string(),
            ),
        }
    }

    /// The public key PEM (RS256/ES256, when given or derivable), ending in a newline as
    /// PEM files do: what a server verifies with, and the `hs-rs-confusion` HMAC secret.
    pub fn public_pem(&self) -> Option<&[u8]> {
        self.public_pem.as_deref()
    }
}

/// What a JWT secret a server echoed is shown as ([`Keys::hide_secret`]).
pub const SECRET_SHOWN: &str = "<JWT secret>";

/// The jsonwebtoken algorithm for a scenario algorithm.
pub(super) fn algorithm(alg: JwtAlg) -> Algorithm {
    match alg {
        JwtAlg::Hs256 => Algorithm::HS256,
        JwtAlg::Hs384 => Algorithm::HS384,
        JwtAlg::Hs512 => Algorithm::HS512,
        JwtAlg::Rs256 => Algorithm::RS256,
        JwtAlg::Es256 => Algorithm::ES256,
    }
}

/// Reads the plan's key material: the secret for HS*, the PEM key (and public key) for
/// RS256/ES256. Called once per run.
pub fn resolve_keys(auth: &AuthPlan) -> Result<Keys, AuthError> {
    if auth.alg.is_hmac() {
        let secret = read_source(&auth.secret, "JWT secret")?;
        return Keys::hmac(auth.alg, &secret);
    }
    let source = auth
        .key
        .as_ref()
        .ok_or(AuthError::MissingKey(auth.alg.name()))?;
    let private_pem = read_source(source, "JWT private key")?;
    let public_pem = auth
        .public_key
        .as_ref()
        .map(|s| read_source(s, "JWT public key"))
        .transpose()?;
    Keys::pem(auth.alg, &private_pem, public_pem.as_deref())
}

/// The environment variables a replay of `auth` (saved to a plan or repro file) must set:
/// one per key the scenario gave as a literal, which files never store ([`literal_env`]).
/// Empty when every key comes from the environment or a file.
pub fn literals_not_stored(auth: &AuthPlan) -> Vec<&'static str> {
    let literal = |s: &SecretSource| matches!(s, SecretSource::Literal { .. });
    if auth.alg.is_hmac() {
        return if literal(&auth.secret) {
            vec![literal_env("JWT secret")]
        } else {
            Vec::new()
        };
    }
    let mut envs = Vec::new();
    if auth.key.as_ref().is_some_and(literal) {
        envs.push(literal_env("JWT private key"));
    }
    if auth.public_key.as_ref().is_some_and(literal) {
        envs.push(literal_env("JWT public key"));
    }
    envs
}

/// The environment variable that supplies a literal `what` a saved plan does not store.
pub fn literal_env(what: &str) -> &'static str {
    match what {
        "JWT private key" => "STAMPEDE_JWT_KEY",
        "JWT public key" => "STAMPEDE_JWT_PUBLIC_KEY",
        _ => "STAMPEDE_JWT_SECRET",
    }
}

/// Reads one secret value; `what` names it in errors. A value a saved plan did not store
/// ([`SecretText::NotStored`]) comes from the environment: the `env` source's own variable,
/// or for a literal the one [`literal_env`] names; without it, an error says which to set.
pub(super) fn read_source(source: &SecretSource, what: &'static str) -> Result<Vec<u8>, AuthError> {
    let value = match source {
        SecretSource::Env { name, default } => match std::env::var(name) {
            Ok(v) => v.into_bytes(),
            Err(_) => match default {
                Some(SecretText::Known(v)) => v.clone().into_bytes(),
                Some(SecretText::NotStored) => {
                    return Err(AuthError::DefaultNotStored {
                        what,
                        name: name.clone(),
                    })
                }
                None => {
                    return Err(AuthError::MissingEnv {
                        what,
                        name: name.clone(),
                    })
                }
            },
        },
        SecretSource::File { path } => {
            let text = std::fs::read(path).map_err(|source| AuthError::File {
                what,
                path: path.clone(),
                source,
            })?;
            trim_trailing_newline(text)
        }
        SecretSource::Literal {
            value: SecretText::Known(v),
        } => v.clone().into_bytes(),
        SecretSource::Literal {
            value: SecretText::NotStored,
        } => {
            let env = literal_env(what);
            std::env::var(env)
                .map_err(|_| AuthError::LiteralNotStored { what, env })?
                .into_bytes()
        }
    };
    if value.is_empty() {
        return Err(AuthError::Empty(what));
    }
    Ok(value)
}

/// Whether a secret file's bytes hold no secret: nothing once its trailing newlines are
/// trimmed, as [`resolve_keys`] reads it (the scenario loader checks files by this rule).
pub fn secret_is_empty(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b'\n' | b'\r'))
}

fn trim_trailing_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    bytes
}

fn with_newline(pem: &[u8]) -> Vec<u8> {
    let mut pem = trim_trailing_newline(pem.to_vec());
    pem.push(b'\n');
    pem
}

/// The SPKI public key PEM of a PKCS#8 private key; `None` for other encodings.
fn derive_public(private_pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(private_pem).ok()?;
    let pair = rcgen::KeyPair::from_pem(text).ok()?;
    Some(with_newline(pair.public_key_pem().as_bytes()))
}
