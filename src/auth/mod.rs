//! Tokens: minting JWTs from a plan's token slots, attaching them to the upgrade request,
//! and redacting them wherever they could be printed.
//!
//! A token is a bearer secret; nothing outside this module ever formats one whole.
//! Logs and results name a token by its `jti` and [`fingerprint`].

mod placement;

pub use placement::{attach, PlacementError};

use crate::plan::TokenPlan;
use crate::scenario::SecretSource;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why tokens could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("JWT secret: environment variable {0} is not set (and the scenario gives no default)")]
    MissingEnv(String),
    #[error("JWT secret: cannot read {path}: {source}")]
    SecretFile {
        path: String,
        source: std::io::Error,
    },
    #[error("JWT secret is empty")]
    EmptySecret,
    #[error("cannot sign token {jti}: {source}")]
    Sign {
        jti: String,
        source: jsonwebtoken::errors::Error,
    },
}

/// Reads the signing secret. Called once per run; the value never reaches a result file.
pub fn resolve_secret(source: &SecretSource) -> Result<Vec<u8>, AuthError> {
    let secret = match source {
        SecretSource::Env { name, default } => match std::env::var(name) {
            Ok(v) => v.into_bytes(),
            Err(_) => default
                .clone()
                .ok_or_else(|| AuthError::MissingEnv(name.clone()))?
                .into_bytes(),
        },
        SecretSource::File { path } => {
            let text = std::fs::read(path).map_err(|source| AuthError::SecretFile {
                path: path.clone(),
                source,
            })?;
            trim_trailing_newline(text)
        }
        SecretSource::Literal { value } => value.clone().into_bytes(),
    };
    if secret.is_empty() {
        return Err(AuthError::EmptySecret);
    }
    Ok(secret)
}

fn trim_trailing_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    bytes
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    jti: &'a str,
    iat: u64,
    exp: u64,
}

/// A minted token. `Debug` and `Display` show only the `jti` and a fingerprint.
#[derive(Clone)]
pub struct Token {
    jwt: String,
    pub jti: String,
    pub sub: String,
}

impl Token {
    /// The raw JWT, for placing on the wire only.
    pub fn expose(&self) -> &str {
        &self.jwt
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(jti={}, {})", self.jti, fingerprint(&self.jwt))
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A short, non-reversible name for a secret value: `sha256:` and 8 hex digits.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Mints one HS256 token per plan slot, with `iat` = now and `exp` = now + ttl.
pub fn mint_all(
    slots: &[TokenPlan],
    secret: &[u8],
    ttl: Duration,
) -> Result<Vec<Token>, AuthError> {
    let key = EncodingKey::from_secret(secret);
    let header = Header::new(Algorithm::HS256);
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let exp = iat + ttl.as_secs().max(1);
    slots
        .iter()
        .map(|slot| {
            let claims = Claims {
                sub: &slot.sub,
                jti: &slot.jti,
                iat,
                exp,
            };
            let jwt = encode(&header, &claims, &key).map_err(|source| AuthError::Sign {
                jti: slot.jti.clone(),
                source,
            })?;
            Ok(Token {
                jwt,
                jti: slot.jti.clone(),
                sub: slot.sub.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_jwt() {
        let slots = vec![TokenPlan {
            sub: "user-1".into(),
            jti: "abc".into(),
        }];
        let tokens = mint_all(&slots, b"secret", Duration::from_secs(60)).unwrap();
        let shown = format!("{:?} {}", tokens[0], tokens[0]);
        assert!(!shown.contains(tokens[0].expose()));
        assert!(shown.contains("jti=abc"));
        assert_eq!(tokens[0].expose().split('.').count(), 3);
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
            Err(AuthError::MissingEnv(_))
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
}
