//! Tokens: minting JWTs (valid, time-shifted, or from the bad-token catalogue) from a
//! plan's token slots, attaching them to the upgrade request, and redacting them wherever
//! they could be printed.
//!
//! A token is a bearer secret; nothing outside this module ever formats one whole.
//! Logs and results name a token by its `jti` and [`fingerprint`], and whatever a run
//! records of the text a server sent goes through a [`Redactor`] first (a server may echo
//! a token back).

pub mod catalogue;
mod encode;
mod keys;
pub(crate) mod placement;
mod redact;
mod repeats;
mod source;

pub use encode::REGISTERED_CLAIMS;
pub use keys::{
    env_defaults_not_stored, literal_env, literals_not_stored, private_key_problem,
    public_key_problem, resolve_keys, secret_is_empty, Keys,
};
pub use placement::{attach, attach_with, first_message, PlacementError, UpgradeExtras};
pub use redact::{hide_token_shaped, label as token_label, Redactor, TOKEN_SHAPED};
pub use repeats::{repeats, Repeat, Sameness, REPEAT_ADVICE};
pub use source::{assign as assign_source, read_tokens, token_lines, Opaque};

use crate::model::{AuthPlan, TokenPlan};
use crate::model::{BadToken, Forge, SecretSource, EXPIRED_WITHIN};
use encode::Shift;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Slots minted on one thread; more than this are spread over the available cores
/// (RS256 signing takes milliseconds per token).
const SERIAL_MINT: usize = 256;

/// Why tokens could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{what}: environment variable {name} is not set (and the scenario gives no default)")]
    MissingEnv { what: &'static str, name: String },
    #[error("{what}: cannot read {path}: {source}")]
    File {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// A text file that is not UTF-8: where its first bad byte is.
    #[error("{path}:{at}; an {what} must be UTF-8")]
    NotUtf8 {
        what: &'static str,
        path: String,
        at: crate::model::NotUtf8,
    },
    #[error(
        "{what}: the scenario gave it as a literal, which plan and repro files do not store; \
         set the environment variable {env} to it"
    )]
    LiteralNotStored {
        what: &'static str,
        env: &'static str,
    },
    #[error(
        "{what}: environment variable {name} is not set, and the scenario's default for it \
         is not stored in plan and repro files; set {name}"
    )]
    DefaultNotStored { what: &'static str, name: String },
    /// An upgrade or login header of a plan read back from a file names an environment
    /// variable the replaying process does not set.
    #[error("upgrade header: {0}")]
    HeaderEnv(#[from] crate::model::EnvTextError),
    /// A literal credential (a header's value, a login body) of a plan read back from a
    /// file, which does not store it ([`Plan::not_stored`](crate::model::Plan::not_stored)).
    #[error("{0}")]
    CredentialNotStored(crate::model::EnvTextError),
    #[error("{0} is empty")]
    Empty(&'static str),
    /// A source whose tokens repeat (see [`repeats`]): positions only, never the tokens.
    #[error("{what}: {said}; {advice}", advice = REPEAT_ADVICE)]
    Repeated { what: &'static str, said: String },
    #[error("{0} tokens need [auth] key (a PEM private key)")]
    MissingKey(&'static str),
    /// A private key of the wrong kind for the algorithm, or none at all: which key the
    /// algorithm needs and what the source holds ([`keys::private_key_problem`]).
    #[error("[auth] key: {0}")]
    WrongKey(String),
    #[error("JWT {what} is not usable: {reason}")]
    BadKey { what: &'static str, reason: String },
    #[error("{0} tokens against the embedded server need [auth] public_key (or a PKCS#8 key to derive it from)")]
    NoPublicKey(&'static str),
    #[error(
        "auth.tokens list: plan and repro files do not store its tokens; run the scenario \
         file, or read them from a file or command instead"
    )]
    ListNotStored,
    #[error("auth.tokens command `{run}` failed: {reason}")]
    Command { run: String, reason: String },
    #[error("cannot sign token {jti}: {source}")]
    Sign {
        jti: String,
        source: jsonwebtoken::errors::Error,
    },
}

/// Reads an HMAC signing secret. Called once per run; the value never reaches a result file.
pub fn resolve_secret(source: &SecretSource) -> Result<Vec<u8>, AuthError> {
    keys::read_source(source, "JWT secret")
}

/// A minted token. `Debug` and `Display` show only the `jti`, a fingerprint and the
/// catalogue entry or time shift it was forged as.
#[derive(Clone)]
pub struct Token {
    /// `None`: the `missing` entry, nothing is placed.
    jwt: Option<String>,
    pub jti: String,
    pub sub: String,
    forge: Option<String>,
    must_reject: bool,
    /// Its value comes from a login request before each dial (`[auth] tokens = { login
    /// = ... }`): until then nothing is placed.
    login: bool,
    /// Its `exp` claim (Unix seconds) when it is a valid token stampede minted; `None` for
    /// a forged one (its times are the bad-token catalogue's) and one from `[auth] tokens`
    /// (opaque: its expiry is not ours to know).
    exp: Option<i64>,
}

impl Token {
    /// Whether the connection must log in to get this token's value before it dials.
    pub fn needs_login(&self) -> bool {
        self.login
    }

    /// This token with the value a login returned (same label, same slot).
    pub fn with_value(&self, value: String) -> Token {
        Token {
            jwt: Some(value),
            login: false,
            exp: None,
            ..self.clone()
        }
    }

    /// Whether a server may judge this token expired at `now`: it is a valid token
    /// stampede minted (so its `exp` is known) and `now` is past its `exp` less
    /// [`EXPIRED_WITHIN`] (clocks a few milliseconds apart). Always false for a
    /// forged token and one from `[auth] tokens`.
    pub fn expired_at(&self, now: SystemTime) -> bool {
        let Some(exp) = self.exp.and_then(|exp| u64::try_from(exp).ok()) else {
            return false;
        };
        let expires = UNIX_EPOCH + Duration::from_secs(exp);
        now + EXPIRED_WITHIN >= expires
    }

    /// The raw JWT, for placing on the wire only ("" for the `missing` entry).
    pub fn expose(&self) -> &str {
        self.jwt.as_deref().unwrap_or_default()
    }

    /// False for the `missing` entry: nothing goes on the request.
    pub fn is_placed(&self) -> bool {
        self.jwt.is_some()
    }

    /// The catalogue entry (`alg-none`) or time shift (`shift(exp-30s)`) this token was
    /// forged as; `None` for a valid token.
    pub fn forge_name(&self) -> Option<&str> {
        self.forge.as_deref()
    }

    /// Whether a correct server may refuse this token when it is minted (every catalogue
    /// entry, expired and not-yet-valid shifts): see [`Forge::must_reject`]. Whether
    /// accepting it is a fault depends on the entry's policy (`BadToken::policy_for`).
    pub fn must_reject(&self) -> bool {
        self.must_reject
    }

    /// `sha256:` and 8 hex digits of the JWT.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.expose())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(jti={}, {}", self.jti, self.fingerprint())?;
        if let Some(forge) = &self.forge {
            write!(f, ", forge={forge}")?;
        }
        f.write_str(")")
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

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One token per plan slot: minted, or for the valid slots taken from `[auth] tokens`
/// when it names a source (read, or its command run, here: once, before the load).
pub async fn tokens_for(
    slots: &[TokenPlan],
    auth: &AuthPlan,
    keys: &Keys,
) -> Result<Vec<Token>, AuthError> {
    let mut tokens = mint_all(slots, auth, keys)?;
    if let Some(source) = &auth.tokens {
        let opaque = read_tokens(source).await?;
        assign_source(&mut tokens, slots, source, &opaque);
    }
    Ok(tokens)
}

/// Mints one token per plan slot, as of now.
pub fn mint_all(
    slots: &[TokenPlan],
    auth: &AuthPlan,
    keys: &Keys,
) -> Result<Vec<Token>, AuthError> {
    mint_at(slots, auth, keys, unix_now())
}

/// Mints one token per plan slot as of `now` (Unix seconds): valid tokens with
/// `iat = nbf = now` and `exp = now + ttl`, time-shifted or catalogue tokens where the
/// slot says so.
pub fn mint_at(
    slots: &[TokenPlan],
    auth: &AuthPlan,
    keys: &Keys,
    now: i64,
) -> Result<Vec<Token>, AuthError> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if slots.len() <= SERIAL_MINT || threads < 2 {
        return mint_range(slots, 0, auth, keys, now);
    }
    let chunk = slots.len().div_ceil(threads);
    let parts: Vec<Result<Vec<Token>, AuthError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = slots
            .chunks(chunk)
            .enumerate()
            .map(|(i, part)| scope.spawn(move || mint_range(part, i * chunk, auth, keys, now)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new())))
            .collect()
    });
    let mut tokens = Vec::with_capacity(slots.len());
    for part in parts {
        tokens.extend(part?);
    }
    if tokens.len() != slots.len() {
        // A minting thread panicked: mint the whole lot again here, where it surfaces.
        return mint_range(slots, 0, auth, keys, now);
    }
    Ok(tokens)
}

fn mint_range(
    slots: &[TokenPlan],
    first: usize,
    auth: &AuthPlan,
    keys: &Keys,
    now: i64,
) -> Result<Vec<Token>, AuthError> {
    slots
        .iter()
        .enumerate()
        .map(|(i, slot)| mint_one(first + i, slot, auth, keys, now))
        .collect()
}

fn mint_one(
    index: usize,
    slot: &TokenPlan,
    auth: &AuthPlan,
    keys: &Keys,
    now: i64,
) -> Result<Token, AuthError> {
    let sign_error = |source| AuthError::Sign {
        jti: slot.jti.clone(),
        source,
    };
    let shift = match &slot.forge {
        Some(Forge::Shift {
            exp_s,
            nbf_s,
            iat_s,
        }) => Shift {
            exp: *exp_s,
            nbf: *nbf_s,
            iat: *iat_s,
        },
        _ => Shift::default(),
    };
    let claims = encode::claims(slot, auth, now, shift);
    let (jwt, forge) = match &slot.forge {
        None => (
            Some(encode::sign_claims(keys, &claims).map_err(sign_error)?),
            None,
        ),
        Some(Forge::Shift { .. }) => {
            let jwt = encode::sign_claims(keys, &claims).map_err(sign_error)?;
            (Some(jwt), Some(shift_label(shift)))
        }
        Some(Forge::Bad { name }) => (forge(*name, slot, keys, &claims)?, Some(name.to_string())),
        Some(Forge::Catalogue) => {
            let entry = BadToken::all()
                .nth(index % BadToken::all().count())
                .unwrap_or(BadToken::Garbage);
            (forge(entry, slot, keys, &claims)?, Some(entry.to_string()))
        }
    };
    Ok(Token {
        jwt,
        jti: slot.jti.clone(),
        sub: slot.sub.clone(),
        forge,
        must_reject: slot.forge.as_ref().is_some_and(Forge::must_reject),
        login: false,
        exp: slot
            .forge
            .is_none()
            .then(|| claims.get("exp").and_then(serde_json::Value::as_i64))
            .flatten(),
    })
}

fn forge(
    entry: BadToken,
    slot: &TokenPlan,
    keys: &Keys,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<String>, AuthError> {
    catalogue::forge(entry, keys, claims).map_err(|source| AuthError::Sign {
        jti: slot.jti.clone(),
        source,
    })
}

/// `shift(exp-30s,nbf+60s)`.
fn shift_label(shift: Shift) -> String {
    let parts: Vec<String> = [("exp", shift.exp), ("nbf", shift.nbf), ("iat", shift.iat)]
        .into_iter()
        .filter_map(|(name, offset)| offset.map(|o| format!("{name}{o:+}s")))
        .collect();
    format!("shift({})", parts.join(","))
}

// Its token minting helpers serve other modules' tests too (a verdict quoting what a
// server echoed of real tokens).
#[cfg(test)]
pub(crate) mod tests;
