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
    if let Some(problem) = private_key_problem(auth.alg, &private_pem, &held_in(source)) {
        return Err(AuthError::WrongKey(problem));
    }
    let public_pem = match &auth.public_key {
        Some(source) => {
            let pem = read_source(source, "JWT public key")?;
            if let Some(problem) = public_key_problem(auth.alg, &pem, &held_in(source)) {
                return Err(AuthError::WrongKey(problem));
            }
            Some(pem)
        }
        None => None,
    };
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

/// The variables of `auth`'s `env` sources whose scenario `default` a saved plan does not
/// store (any value but the public development secret), unset in this process's
/// environment (`lookup`): what a replay of the saved plan must be run with, since the
/// run that made it used the default.
pub fn env_defaults_not_stored(
    auth: &AuthPlan,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let sources = std::iter::once(&auth.secret)
        .chain(auth.key.as_ref())
        .chain(auth.public_key.as_ref());
    sources
        .filter_map(|s| match s {
            SecretSource::Env {
                name,
                default: Some(default),
            } if default.value() != Some(DEV_SECRET) && lookup(name).is_none() => {
                Some(name.clone())
            }
            _ => None,
        })
        .collect()
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

/// Where a key `source` held its key, for [`private_key_problem`]'s messages: a file's
/// path, an environment variable's name, never the key.
fn held_in(source: &SecretSource) -> String {
    match source {
        SecretSource::File { path } => path.clone(),
        SecretSource::Env { name, .. } => format!("environment variable {name}"),
        SecretSource::Literal { .. } => "[auth] key's value".to_string(),
    }
}

/// Why `pem` cannot sign `alg` (RS256/ES256) tokens, in words a user can act on: which key
/// the algorithm needs and what `held_in` (a path, `environment variable NAME`) holds
/// instead, as far as its PEM label and algorithm identifier tell. `None` when it signs.
/// Shared by the run and the scenario loader, so `validate` says what `run` would. Names
/// the kind of key only, never its material.
pub fn private_key_problem(alg: JwtAlg, pem: &[u8], held_in: &str) -> Option<String> {
    let needs = match alg {
        JwtAlg::Rs256 => {
            "RS256 needs an RSA private key in PEM (-----BEGIN PRIVATE KEY----- or \
             -----BEGIN RSA PRIVATE KEY-----)"
        }
        JwtAlg::Es256 => {
            "ES256 needs a P-256 EC private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)"
        }
        // HMAC secrets are any bytes: nothing to tell apart.
        _ => return None,
    };
    if Keys::pem(alg, pem, None).is_ok() {
        return None;
    }
    let held = match pem_holds(pem) {
        Held::NotPem => "is not PEM (no -----BEGIN line)".to_string(),
        Held::Damaged => "holds a PEM block whose base64 does not decode".to_string(),
        Held::Other => "holds a PEM block of another kind, not a private key".to_string(),
        Held::Key(kind) if kind.fits(alg) => {
            // The library's reason is an enum name (`InvalidKeyFormat`), no help here.
            format!(
                "holds {} that cannot be read (cut short or damaged?)",
                kind.words()
            )
        }
        Held::Key(KeyKind::EcSec1) if alg == JwtAlg::Es256 => format!(
            "holds {}; convert it with openssl pkcs8 -topk8 -nocrypt -in FILE",
            KeyKind::EcSec1.words()
        ),
        Held::Key(kind) => format!("holds {}", kind.words()),
    };
    Some(format!("{needs}; {held_in} {held}"))
}

/// What PEM text holds, as far as [`pem_holds`] can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    NotPem,
    /// A BEGIN line whose base64 body does not decode.
    Damaged,
    Key(KeyKind),
    /// Some other PEM block (`CERTIFICATE REQUEST`, `DH PARAMETERS`).
    Other,
}

/// The kinds of key material a PEM block is told apart as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    /// An EC key on P-256, ES256's curve.
    EcP256,
    /// A P-256 key in SEC1 form (`EC PRIVATE KEY`), which the signer does not read.
    EcSec1,
    /// An EC key on another curve (P-384, secp256k1).
    EcOther,
    Ed25519,
    /// A PKCS#8 private key of an algorithm not named above.
    OtherPrivate,
    Encrypted,
    Public,
    Certificate,
    OpenSsh,
}

impl KeyKind {
    /// Whether `alg` signs with this kind of key.
    fn fits(self, alg: JwtAlg) -> bool {
        matches!(
            (alg, self),
            (JwtAlg::Rs256, KeyKind::Rsa) | (JwtAlg::Es256, KeyKind::EcP256)
        )
    }

    fn words(self) -> &'static str {
        match self {
            KeyKind::Rsa => "an RSA private key",
            KeyKind::EcP256 => "an EC private key",
            KeyKind::EcSec1 => "an EC private key in SEC1 form (-----BEGIN EC PRIVATE KEY-----)",
            KeyKind::EcOther => "an EC private key on another curve than P-256",
            KeyKind::Ed25519 => "an Ed25519 private key",
            KeyKind::OtherPrivate => "a private key of another algorithm",
            KeyKind::Encrypted => {
                "an encrypted private key (decrypt it first, e.g. with openssl pkcs8)"
            }
            KeyKind::Public => "a public key, not a private one",
            KeyKind::Certificate => "a certificate, not a private key",
            KeyKind::OpenSsh => {
                "a key in OpenSSH's format (convert it with ssh-keygen -p -m PKCS8 -f FILE)"
            }
        }
    }
}

/// DER encodings of the object identifiers that tell keys apart (RFC 8017, 5480, 8410).
const OID_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const OID_EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// Why `pem` is no public key `alg` (RS256/ES256) verifies with, in words ([`private_key_problem`]'s
/// for `[auth] public_key`); `None` when it is one. Names the kind of key only.
pub fn public_key_problem(alg: JwtAlg, pem: &[u8], held_in: &str) -> Option<String> {
    let (needs, read) = match alg {
        JwtAlg::Rs256 => (
            "RS256 needs an RSA public key in PEM (-----BEGIN PUBLIC KEY----- or -----BEGIN \
             RSA PUBLIC KEY-----)",
            DecodingKey::from_rsa_pem(pem).is_ok(),
        ),
        JwtAlg::Es256 => (
            "ES256 needs a P-256 EC public key in PEM (-----BEGIN PUBLIC KEY-----)",
            DecodingKey::from_ec_pem(pem).is_ok(),
        ),
        _ => return None,
    };
    if read {
        return None;
    }
    let held = match pem_holds(pem) {
        Held::NotPem => "is not PEM (no -----BEGIN line)".to_string(),
        Held::Damaged => "holds a PEM block whose base64 does not decode".to_string(),
        Held::Other => "holds a PEM block of another kind, not a public key".to_string(),
        Held::Key(KeyKind::Public) => {
            "holds a public key of another algorithm (or curve) than the one alg names".to_string()
        }
        Held::Key(kind) => format!("holds {}, not a public key", kind.words()),
    };
    Some(format!("{needs}; {held_in} {held}"))
}

/// What the first PEM block of `pem` holds: its label, and for PKCS#8 the algorithm
/// identifier inside (a `PRIVATE KEY` label fits RSA and EC keys alike).
fn pem_holds(pem: &[u8]) -> Held {
    use base64::Engine;
    let text = String::from_utf8_lossy(pem);
    let Some(begin) = text.find("-----BEGIN ") else {
        return Held::NotPem;
    };
    let after = &text[begin + "-----BEGIN ".len()..];
    let Some(label_end) = after.find("-----") else {
        return Held::NotPem;
    };
    let label = &after[..label_end];
    let body_start = label_end + "-----".len();
    let body_end = after
        .find("-----END ")
        .unwrap_or(after.len())
        .max(body_start);
    let body: String = after[body_start..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) else {
        return Held::Damaged;
    };
    let has = |oid: &[u8]| der.windows(oid.len()).any(|w| w == oid);
    let kind = match label {
        "RSA PRIVATE KEY" => KeyKind::Rsa,
        "EC PRIVATE KEY" if has(OID_P256) => KeyKind::EcSec1,
        "EC PRIVATE KEY" => KeyKind::EcOther,
        "ENCRYPTED PRIVATE KEY" => KeyKind::Encrypted,
        "PUBLIC KEY" | "RSA PUBLIC KEY" => KeyKind::Public,
        "CERTIFICATE" | "TRUSTED CERTIFICATE" => KeyKind::Certificate,
        "PRIVATE KEY" if has(OID_RSA) => KeyKind::Rsa,
        "PRIVATE KEY" if has(OID_EC) && has(OID_P256) => KeyKind::EcP256,
        "PRIVATE KEY" if has(OID_EC) => KeyKind::EcOther,
        "PRIVATE KEY" if has(OID_ED25519) => KeyKind::Ed25519,
        "PRIVATE KEY" => KeyKind::OtherPrivate,
        "OPENSSH PRIVATE KEY" => KeyKind::OpenSsh,
        _ => return Held::Other,
    };
    Held::Key(kind)
}
