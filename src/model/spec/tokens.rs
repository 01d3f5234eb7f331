//! Token patterns a group can express: sharing, cross-user reuse, forged and time-shifted
//! tokens, aborted handshakes, and the session oracles that judge the server's answers.

use crate::model::units::duration_us;
use crate::model::{BadToken, Cause};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which connections present the same token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenReuse {
    /// Every connection mints its own token.
    PerConnection,
    /// All connections of one user share that user's token.
    PerUser,
    /// Every `k` consecutive connections of the group share one token, whoever their user.
    Shared { k: u32 },
    /// User `u` presents the token minted for user `u + 1` (mod users): the connection
    /// claims one identity (`{{user}}` in its messages) and holds another's token.
    CrossUser,
}

/// A deliberately wrong or time-shifted token, for the connections of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forge {
    /// Every entry of the bad-token catalogue, round-robin over the group's token slots.
    Catalogue,
    /// One catalogue entry.
    Bad { name: BadToken },
    /// A validly signed token whose times are shifted, in seconds from the minting instant:
    /// `exp = now + exp_s` (instead of now + ttl), `nbf = now + nbf_s`, `iat = now + iat_s`.
    Shift {
        exp_s: Option<i64>,
        nbf_s: Option<i64>,
        iat_s: Option<i64>,
    },
}

impl Forge {
    /// Whether a correct server may refuse this token at the time it is presented, so that
    /// a refusal is never a fault: every catalogue entry (whether refusing it is required
    /// or the server's policy is [`BadToken::policy_for`]), and shifts that are expired
    /// (`exp <= now`) or not yet valid (`nbf > now`), which every correct server refuses.
    pub fn must_reject(&self) -> bool {
        match self {
            Forge::Catalogue | Forge::Bad { .. } => true,
            Forge::Shift { exp_s, nbf_s, .. } => {
                exp_s.is_some_and(|e| e <= 0) || nbf_s.is_some_and(|n| n > 0)
            }
        }
    }

    /// Whether the token names another subject than the plan's user (a catalogue entry
    /// that removes, empties or doubles `sub`): a server that accepts it answers as that
    /// subject, so the identity the plan expects does not apply.
    pub fn alters_subject(&self) -> bool {
        matches!(self, Forge::Bad { name } if name.alters_subject())
    }
}

/// How a handshake is abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbortHow {
    /// Close the socket normally (FIN).
    Fin,
    /// Abortive close: `SO_LINGER` 0, so the kernel sends an RST.
    Rst,
}

/// What counts as "accepted" for the session oracles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptRule {
    /// The 101 response.
    Upgrade,
    /// The first data frame after the 101 (a policy close first means rejected). Default.
    FirstFrame,
    /// A message of this event type.
    Message { event: String },
}

/// What a server keeps its sessions by, for exclusivity (`exclusive = { per = "user" }`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKey {
    /// One token (its `jti`): the default.
    #[default]
    Token,
    /// One user (the token's `sub`), whatever token each connection presents: several
    /// connections of a user, each minting its own token, share the limit.
    User,
}

impl SessionKey {
    fn is_token(&self) -> bool {
        *self == SessionKey::Token
    }
}

/// Session oracles: exclusivity, liveness, rejection hygiene, consistency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionOracles {
    /// Exclusivity: at most this many connections sharing a `jti` (or a user, `per`)
    /// served at once. `None` = off.
    pub max_live: Option<u32>,
    /// What exclusivity's limit counts sessions by: a token (default) or a user. Left out
    /// of files when by token.
    #[serde(default, skip_serializing_if = "SessionKey::is_token")]
    pub per: SessionKey,
    /// Liveness: a valid token whose `jti` is not live must be accepted. How long after an
    /// unclean end (reset, abort, timeout) the server may still hold the session.
    pub liveness: Option<LivenessSpec>,
    /// Rejection hygiene: how a refusal must look.
    pub reject: RejectSpec,
    /// Consistency: the same token gets the same verdict whichever placement carries it.
    pub consistency: bool,
    pub accepted: AcceptRule,
}

/// Liveness: a valid token no live connection holds is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivenessSpec {
    /// How long after an unclean end (a reset, an aborted handshake, a timeout) the
    /// server may still hold the session.
    #[serde(with = "duration_us")]
    pub grace: Duration,
    /// How long after a clean close the server may still hold the session, by its
    /// design (a cleanup it does after the Close: a presence update, a store write); zero
    /// by default, the release a reconnect expects at once. Absent from older files.
    #[serde(
        with = "duration_us",
        default,
        skip_serializing_if = "Duration::is_zero"
    )]
    pub cleanup: Duration,
}

/// Clean refusals: HTTP statuses before the upgrade, close codes right after it, or a
/// message of a declared kind before acceptance (an in-band refusal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectSpec {
    pub http: Vec<u16>,
    pub close: Vec<u16>,
    /// The kind (an `[oracles.kinds]` name) of the message a server refuses with in band,
    /// before acceptance (ActionCable's `{"type": "disconnect", "reason": "unauthorized"}`).
    /// Absent in plans made before it existed, and left out of plan files when unset so
    /// their bytes (and hashes) stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Close codes the server sheds load with before acceptance, its own "try again later"
    /// (a 4429 "Too many requests"): counted as shed like a 1013 ([`RejectSpec::sheds`]),
    /// never a refusal of the token. Absent in plans made before it existed, and left out
    /// of plan files when empty so their bytes (and hashes) stay as they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shed: Vec<u16>,
    /// Close codes the server ends a session with when another connection of the same
    /// token takes over (a "newest connection wins" server's 4409 "session replaced"): its
    /// way of keeping one session per token, never a refusal of the token nor a lost
    /// answer ([`RejectSpec::replaces`]). Absent in plans made before it existed, and left
    /// out of plan files when empty so their bytes (and hashes) stay as they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<u16>,
    /// What accepting a policy entry of the bad-token catalogue is. Absent in plans made
    /// before it existed (then lenient), and left out of plan files when lenient so their
    /// bytes (and hashes) stay as they were.
    #[serde(default, skip_serializing_if = "RejectPolicy::is_lenient")]
    pub policy: RejectPolicy,
}

/// How the rejection-hygiene oracle treats a server that accepts a bad-token entry whose
/// refusal is the server's policy (`missing-sub`, `empty-sub`, `missing-exp`, `exp-string`,
/// `duplicate-sub-keys`, `oversized`; `wrong-aud`/`wrong-iss` when `[auth]` does not state
/// `aud`/`iss`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectPolicy {
    /// A lenient acceptance: counted on its own (`summary.json` `lenient`), not a violation.
    #[default]
    Lenient,
    /// A rejection-hygiene violation, like accepting a must-reject entry.
    Strict,
}

impl RejectSpec {
    /// Whether `cause` is one of the clean ways to refuse listed here: a listed HTTP
    /// status, a listed close code, or the declared refusal message
    /// ([`Cause::RefusedInBand`]). Everything that judges refusals (the acceptance judge,
    /// rejection hygiene, the verdict's auth rule, the probes) asks this one place.
    pub fn is_clean(&self, cause: &Cause) -> bool {
        match cause {
            Cause::Http(status) => self.http.contains(status),
            Cause::ServerClose(code) => self.close.contains(code),
            Cause::RefusedInBand(kind) => self.message.as_deref() == Some(kind.as_str()),
            _ => false,
        }
    }

    /// Whether `cause` is load shedding, "not now" rather than "not you": one every server
    /// shares ([`Cause::is_shed`]: HTTP 429 or 503, a close 1013) or a close code listed in
    /// `shed`. Before acceptance it is counted as shed and judged by no session oracle.
    pub fn sheds(&self, cause: &Cause) -> bool {
        cause.is_shed() || matches!(cause, Cause::ServerClose(code) if self.shed.contains(code))
    }

    /// Whether `cause` is a close code the scenario declares as a takeover (`replaced`):
    /// the server ended this connection because another of the same token took over. Only
    /// declared codes: no code means "replaced" to every server.
    pub fn replaces(&self, cause: &Cause) -> bool {
        matches!(cause, Cause::ServerClose(code) if self.replaced.contains(code))
    }

    /// The clean refusals in words, for a violation's `expected`: `HTTP [401, 403] or
    /// close [1008]`, with `or message refused` when one is declared.
    pub fn describe(&self) -> String {
        let mut out = format!("HTTP {:?} or close {:?}", self.http, self.close);
        if let Some(kind) = &self.message {
            out.push_str(&format!(" or message {kind}"));
        }
        out
    }
}

impl RejectPolicy {
    /// Every policy by its name in scenario files, in the order messages list them.
    pub const ALL: [(&'static str, RejectPolicy); 2] = [
        ("lenient", RejectPolicy::Lenient),
        ("strict", RejectPolicy::Strict),
    ];

    /// Its name in scenario files (`lenient`, `strict`).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("?", |(name, _)| name)
    }

    /// Whether it is the default, lenient policy.
    pub fn is_lenient(&self) -> bool {
        *self == RejectPolicy::Lenient
    }
}

impl Default for SessionOracles {
    fn default() -> Self {
        SessionOracles {
            max_live: Some(1),
            per: SessionKey::Token,
            liveness: Some(LivenessSpec {
                grace: Duration::from_millis(500),
                cleanup: Duration::ZERO,
            }),
            reject: RejectSpec {
                http: vec![401, 403, 409],
                close: vec![1008],
                message: None,
                shed: Vec::new(),
                replaced: Vec::new(),
                policy: RejectPolicy::Lenient,
            },
            consistency: true,
            accepted: AcceptRule::FirstFrame,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan file without a refusal message is written byte for byte as before the field
    /// existed (its hash names repro files), and one written before reads back.
    #[test]
    fn an_unset_refusal_message_leaves_plan_bytes_as_they_were() {
        let reject = SessionOracles::default().reject;
        let text = serde_json::to_string(&reject).unwrap_or_default();
        assert_eq!(text, r#"{"http":[401,403,409],"close":[1008]}"#);
        let back: RejectSpec = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, reject);
        let declared = RejectSpec {
            message: Some("refused".into()),
            ..reject
        };
        let text = serde_json::to_string(&declared).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"http":[401,403,409],"close":[1008],"message":"refused"}"#
        );
        let shedding = RejectSpec {
            shed: vec![4429],
            ..SessionOracles::default().reject
        };
        let text = serde_json::to_string(&shedding).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"http":[401,403,409],"close":[1008],"shed":[4429]}"#
        );
        let back: RejectSpec = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, shedding);
    }

    /// Load shedding is the causes every server shares plus the declared close codes, and
    /// never a clean refusal of the token.
    #[test]
    fn declared_shed_codes_shed_like_1013() {
        let reject = RejectSpec {
            shed: vec![4429],
            ..SessionOracles::default().reject
        };
        for cause in [
            Cause::ServerClose(4429),
            Cause::ServerClose(1013),
            Cause::Http(429),
            Cause::Http(503),
        ] {
            assert!(reject.sheds(&cause), "{cause}");
            assert!(!reject.is_clean(&cause), "{cause}");
        }
        assert!(!reject.sheds(&Cause::ServerClose(4430)));
        assert!(!reject.sheds(&Cause::InvalidClose(4429)));
        assert!(!reject.sheds(&Cause::Http(4429)));
        assert!(!SessionOracles::default()
            .reject
            .sheds(&Cause::ServerClose(4429)));
    }

    /// A declared takeover code is neither a refusal nor shedding, and no code is one
    /// undeclared; plan files without it keep their bytes.
    #[test]
    fn a_declared_takeover_code_replaces_and_nothing_else_does() {
        let reject = RejectSpec {
            replaced: vec![4409],
            ..SessionOracles::default().reject
        };
        assert!(reject.replaces(&Cause::ServerClose(4409)));
        assert!(!reject.is_clean(&Cause::ServerClose(4409)));
        assert!(!reject.sheds(&Cause::ServerClose(4409)));
        assert!(!reject.replaces(&Cause::InvalidClose(4409)));
        assert!(!reject.replaces(&Cause::Http(409)));
        assert!(!SessionOracles::default()
            .reject
            .replaces(&Cause::ServerClose(4409)));
        let text = serde_json::to_string(&reject).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"http":[401,403,409],"close":[1008],"replaced":[4409]}"#
        );
        let back: RejectSpec = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, reject);
    }

    #[test]
    fn the_declared_message_is_a_clean_refusal_and_no_other() {
        let reject = RejectSpec {
            message: Some("refused".into()),
            ..SessionOracles::default().reject
        };
        assert!(reject.is_clean(&Cause::RefusedInBand("refused".into())));
        assert!(!reject.is_clean(&Cause::RefusedInBand("other".into())));
        assert!(reject.is_clean(&Cause::Http(401)));
        assert!(reject.is_clean(&Cause::ServerClose(1008)));
        assert!(!reject.is_clean(&Cause::ServerClose(1000)));
        assert!(!SessionOracles::default()
            .reject
            .is_clean(&Cause::RefusedInBand("refused".into())));
        assert_eq!(
            reject.describe(),
            "HTTP [401, 403, 409] or close [1008] or message refused"
        );
    }
}
