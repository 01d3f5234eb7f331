//! The bad-token catalogue: named, deliberately wrong tokens a server must (or, by its
//! policy, may) refuse. Each entry's name, description, policy and forging recipe sit in
//! one row of [`CATALOGUE`]; `auth` turns a [`Recipe`] into a token.
//!
//! The entries follow the classic JWT attack list (RFC 8725 "JSON Web Token Best Current
//! Practices", §2): `alg: none`, algorithm confusion, signature stripping, psychic ECDSA
//! signatures (CVE-2022-21449), claim tampering, and malformed encodings.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The `aud` of `wrong-aud`: no configuration expects it.
pub const WRONG_AUD: &str = "stampede-wrong-audience";
/// The `iss` of `wrong-iss`: no configuration trusts it.
pub const WRONG_ISS: &str = "https://stampede-wrong-issuer.invalid";
/// The second `sub` of `duplicate-sub-keys` (what a last-key-wins parser would read).
pub const DUPLICATE_SUB: &str = "admin";
/// Smallest length of the `oversized` token, in bytes.
pub const OVERSIZED_BYTES: usize = 16 * 1024;

/// One catalogue entry. `serde` and [`fmt::Display`] use its kebab-case name (`alg-none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BadToken {
    Missing,
    Empty,
    Garbage,
    Truncated,
    BadBase64,
    WrongSignature,
    SignatureStripped,
    AlgNone,
    AlgNoneTitle,
    AlgNoneUpper,
    AlgNoneMixed,
    AlgEmpty,
    AlgMissing,
    UnknownAlg,
    HsRsConfusion,
    PsychicEs256,
    WrongAud,
    WrongIss,
    MissingSub,
    EmptySub,
    MissingExp,
    ExpString,
    TwoSegments,
    FourSegments,
    DuplicateSubKeys,
    Oversized,
}

/// Whether every correct server refuses an entry, or refusing it is the server's choice.
///
/// Accepting a `MustReject` entry is a rejection-hygiene violation. Accepting a policy
/// entry (`ServerPolicy`, or `WhenConfigured` without the claim stated) is a *lenient
/// acceptance*: counted on its own, a violation only when the scenario declares a strict
/// policy (`[oracles] reject = { policy = "strict" }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Bad signature, `alg: none`, malformed: every correct server refuses it.
    MustReject,
    /// Refused only by a server configured to check the claim (`aud`, `iss`; see
    /// [`BadToken::configured_claim`]): must-reject when the scenario states the expected
    /// value in `[auth]`, a server policy otherwise.
    WhenConfigured,
    /// A correct server may accept it: a validly signed, current token without `sub` or
    /// `exp` (RFC 7519 makes every registered claim optional; geth's engine API asks only
    /// for `iat`), an empty `sub`, a numeric-string `exp`, duplicate keys, a size under its
    /// header limit.
    ServerPolicy,
}

/// Which claims the scenario states for its server (`[auth] aud`, `[auth] iss`): what
/// turns a [`Policy::WhenConfigured`] entry into a must-reject one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatedClaims {
    /// `[auth] aud` is set.
    pub aud: bool,
    /// `[auth] iss` is set.
    pub iss: bool,
}

/// How to make an entry's token from the run's key and a valid token's claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// Nothing is placed on the request.
    Omit,
    /// This exact text.
    Literal(&'static str),
    /// A validly signed token, then this change to its text.
    Mangle(Mangle),
    /// Header `alg` set to this, no signature (`h.p.`).
    Unsigned(&'static str),
    /// Header `alg` replaced (`None`: removed), signed with the run's key and algorithm.
    Resigned(Option<&'static str>),
    /// HS256 with the public key PEM as the HMAC secret (algorithm confusion).
    HmacWithPublicKey,
    /// ES256 header with an all-zero signature (r = s = 0).
    ZeroEcdsaSignature,
    /// The valid claims changed, then signed properly.
    Claims(ClaimEdit),
    /// The valid claims with a second `sub` member appended, then signed properly.
    DuplicateSub,
}

/// A change to the text of a validly signed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mangle {
    /// Cut to half its length.
    Truncate,
    /// Characters outside base64url in the payload segment.
    CorruptPayload,
    /// One signature bit flipped.
    FlipSignatureBit,
    /// The signature removed, the dot kept (`h.p.`).
    StripSignature,
    /// The signature segment removed (`h.p`).
    DropSignatureSegment,
    /// A fourth segment added.
    AddSegment,
}

/// A change to the claims of a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimEdit {
    /// Set a claim to a string.
    Set(&'static str, &'static str),
    /// Remove a claim.
    Remove(&'static str),
    /// `exp` as the string of its number.
    ExpAsString,
    /// A `pad` claim of this many bytes.
    Pad(usize),
}

/// One row of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub token: BadToken,
    pub name: &'static str,
    pub description: &'static str,
    pub policy: Policy,
    pub recipe: Recipe,
}

const fn row(
    token: BadToken,
    name: &'static str,
    description: &'static str,
    policy: Policy,
    recipe: Recipe,
) -> Entry {
    Entry {
        token,
        name,
        description,
        policy,
        recipe,
    }
}

use BadToken as B;
use Policy::{MustReject, ServerPolicy, WhenConfigured};

/// Every entry, in the enum's order (plans deal them round-robin in this order).
pub const CATALOGUE: [Entry; 26] = [
    row(
        B::Missing,
        "missing",
        "no token on the request at all",
        MustReject,
        Recipe::Omit,
    ),
    row(
        B::Empty,
        "empty",
        "the token is the empty string",
        MustReject,
        Recipe::Literal(""),
    ),
    row(
        B::Garbage,
        "garbage",
        "a string that is not a JWT",
        MustReject,
        Recipe::Literal("stampede-garbage-not-a-jwt"),
    ),
    row(
        B::Truncated,
        "truncated",
        "a valid token cut to half its length",
        MustReject,
        Recipe::Mangle(Mangle::Truncate),
    ),
    row(
        B::BadBase64,
        "bad-base64",
        "payload segment with characters outside base64url",
        MustReject,
        Recipe::Mangle(Mangle::CorruptPayload),
    ),
    row(
        B::WrongSignature,
        "wrong-signature",
        "valid token with one signature bit flipped",
        MustReject,
        Recipe::Mangle(Mangle::FlipSignatureBit),
    ),
    row(
        B::SignatureStripped,
        "signature-stripped",
        "valid token with the signature removed (`h.p.`)",
        MustReject,
        Recipe::Mangle(Mangle::StripSignature),
    ),
    row(
        B::AlgNone,
        "alg-none",
        "`alg: none`, empty signature",
        MustReject,
        Recipe::Unsigned("none"),
    ),
    row(
        B::AlgNoneTitle,
        "alg-none-title",
        "`alg: None`, empty signature",
        MustReject,
        Recipe::Unsigned("None"),
    ),
    row(
        B::AlgNoneUpper,
        "alg-none-upper",
        "`alg: NONE`, empty signature",
        MustReject,
        Recipe::Unsigned("NONE"),
    ),
    row(
        B::AlgNoneMixed,
        "alg-none-mixed",
        "`alg: nOnE`, empty signature",
        MustReject,
        Recipe::Unsigned("nOnE"),
    ),
    row(
        B::AlgEmpty,
        "alg-empty",
        "`alg: \"\"`, signed with the run's key and algorithm",
        MustReject,
        Recipe::Resigned(Some("")),
    ),
    row(
        B::AlgMissing,
        "alg-missing",
        "no `alg` in the header, signed with the run's key and algorithm",
        MustReject,
        Recipe::Resigned(None),
    ),
    row(
        B::UnknownAlg,
        "unknown-alg",
        "`alg: HS1024`, signed with the run's key and algorithm",
        MustReject,
        Recipe::Resigned(Some("HS1024")),
    ),
    row(
        B::HsRsConfusion,
        "hs-rs-confusion",
        "HS256 signed with the public key PEM as the HMAC secret",
        MustReject,
        Recipe::HmacWithPublicKey,
    ),
    row(
        B::PsychicEs256,
        "psychic-es256",
        "ES256 with an all-zero signature (r = s = 0, CVE-2022-21449)",
        MustReject,
        Recipe::ZeroEcdsaSignature,
    ),
    row(
        B::WrongAud,
        "wrong-aud",
        "validly signed, `aud` no server expects",
        WhenConfigured,
        Recipe::Claims(ClaimEdit::Set("aud", WRONG_AUD)),
    ),
    row(
        B::WrongIss,
        "wrong-iss",
        "validly signed, `iss` no server expects",
        WhenConfigured,
        Recipe::Claims(ClaimEdit::Set("iss", WRONG_ISS)),
    ),
    row(
        B::MissingSub,
        "missing-sub",
        "validly signed, no `sub`",
        ServerPolicy,
        Recipe::Claims(ClaimEdit::Remove("sub")),
    ),
    row(
        B::EmptySub,
        "empty-sub",
        "validly signed, `sub` is \"\"",
        ServerPolicy,
        Recipe::Claims(ClaimEdit::Set("sub", "")),
    ),
    row(
        B::MissingExp,
        "missing-exp",
        "validly signed, no `exp`",
        ServerPolicy,
        Recipe::Claims(ClaimEdit::Remove("exp")),
    ),
    row(
        B::ExpString,
        "exp-string",
        "validly signed, `exp` is a string",
        ServerPolicy,
        Recipe::Claims(ClaimEdit::ExpAsString),
    ),
    row(
        B::TwoSegments,
        "two-segments",
        "a valid token without its signature segment (`h.p`)",
        MustReject,
        Recipe::Mangle(Mangle::DropSignatureSegment),
    ),
    row(
        B::FourSegments,
        "four-segments",
        "a valid token with a fourth segment",
        MustReject,
        Recipe::Mangle(Mangle::AddSegment),
    ),
    row(
        B::DuplicateSubKeys,
        "duplicate-sub-keys",
        "validly signed payload with `sub` twice (second: admin)",
        ServerPolicy,
        Recipe::DuplicateSub,
    ),
    row(
        B::Oversized,
        "oversized",
        "validly signed, padded to 16 KiB",
        ServerPolicy,
        Recipe::Claims(ClaimEdit::Pad(OVERSIZED_BYTES * 3 / 4)),
    ),
];

impl BadToken {
    /// Whether the entry names another subject than the token's user: no `sub`, an empty
    /// one, or a second one (`admin`, which a last-key-wins parser reads).
    pub fn alters_subject(self) -> bool {
        matches!(
            self,
            BadToken::MissingSub | BadToken::EmptySub | BadToken::DuplicateSubKeys
        )
    }

    /// Every entry, in catalogue order.
    pub fn all() -> impl Iterator<Item = BadToken> {
        CATALOGUE.iter().map(|e| e.token)
    }

    /// This entry's row.
    pub fn entry(self) -> &'static Entry {
        // The enum's discriminants are the rows' indexes (checked by a test).
        &CATALOGUE[self as usize]
    }

    /// The kebab-case name (`alg-none`).
    pub fn name(self) -> &'static str {
        self.entry().name
    }

    /// One line on what the entry is, for docs and messages.
    pub fn description(self) -> &'static str {
        self.entry().description
    }

    /// Whether a correct server must refuse it, as the catalogue states it (see
    /// [`BadToken::policy_for`] for a given scenario).
    pub fn policy(self) -> Policy {
        self.entry().policy
    }

    /// The claim a [`Policy::WhenConfigured`] entry breaks (`aud`, `iss`); `None` for the
    /// others.
    pub fn configured_claim(self) -> Option<&'static str> {
        match self {
            B::WrongAud => Some("aud"),
            B::WrongIss => Some("iss"),
            _ => None,
        }
    }

    /// The entry's policy for a scenario that states `stated`: `MustReject` or
    /// `ServerPolicy`, never `WhenConfigured` (which becomes `MustReject` when its claim is
    /// stated, `ServerPolicy` otherwise).
    pub fn policy_for(self, stated: StatedClaims) -> Policy {
        if self.policy() != WhenConfigured {
            return self.policy();
        }
        // An entry without a known claim stays must-reject: the safe side for a finding.
        let checked = match self {
            B::WrongAud => stated.aud,
            B::WrongIss => stated.iss,
            _ => true,
        };
        if checked {
            MustReject
        } else {
            ServerPolicy
        }
    }

    /// How it is forged.
    pub fn recipe(self) -> Recipe {
        self.entry().recipe
    }

    /// The entry called `name`, if any.
    pub fn from_name(name: &str) -> Option<BadToken> {
        CATALOGUE.iter().find(|e| e.name == name).map(|e| e.token)
    }

    /// Every name, comma-separated: what an error message lists.
    pub fn names() -> String {
        CATALOGUE
            .iter()
            .map(|e| e.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for BadToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for BadToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for BadToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        BadToken::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown bad-token entry {name:?} (one of: {})",
                BadToken::names()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_enum_order_with_unique_names() {
        for (i, e) in CATALOGUE.iter().enumerate() {
            assert_eq!(e.token as usize, i, "row {i} ({}) out of order", e.name);
            assert_eq!(BadToken::from_name(e.name), Some(e.token));
            assert!(!e.description.is_empty());
        }
        let mut names: Vec<_> = CATALOGUE.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
    }

    /// The split: bad signature, `alg: none` and malformed tokens are must-reject;
    /// issuer and audience depend on the scenario; a missing or empty `sub`, a missing or
    /// numeric-string `exp`, duplicate keys and size are the server's policy (RFC 7519
    /// makes every registered claim optional: geth's engine API checks only `iat`).
    #[test]
    fn policies_follow_the_catalogue_split() {
        let policy: Vec<(&str, Policy)> = CATALOGUE
            .iter()
            .filter(|e| e.policy != MustReject)
            .map(|e| (e.name, e.policy))
            .collect();
        assert_eq!(
            policy,
            [
                ("wrong-aud", WhenConfigured),
                ("wrong-iss", WhenConfigured),
                ("missing-sub", ServerPolicy),
                ("empty-sub", ServerPolicy),
                ("missing-exp", ServerPolicy),
                ("exp-string", ServerPolicy),
                ("duplicate-sub-keys", ServerPolicy),
                ("oversized", ServerPolicy),
            ]
        );
        for e in &CATALOGUE {
            assert_eq!(
                e.policy == WhenConfigured,
                e.token.configured_claim().is_some(),
                "{}: a claim exactly for WhenConfigured entries",
                e.name
            );
        }
    }

    #[test]
    fn when_configured_resolves_by_the_stated_claim() {
        let none = StatedClaims::default();
        let aud = StatedClaims {
            aud: true,
            iss: false,
        };
        let iss = StatedClaims {
            aud: false,
            iss: true,
        };
        let rows = [
            (B::WrongAud, none, ServerPolicy),
            (B::WrongAud, aud, MustReject),
            (B::WrongAud, iss, ServerPolicy),
            (B::WrongIss, none, ServerPolicy),
            (B::WrongIss, aud, ServerPolicy),
            (B::WrongIss, iss, MustReject),
            (B::AlgNone, none, MustReject),
            (B::EmptySub, aud, ServerPolicy),
            (B::MissingSub, none, ServerPolicy),
            (B::MissingExp, aud, ServerPolicy),
            (B::WrongSignature, none, MustReject),
        ];
        for (token, stated, want) in rows {
            assert_eq!(token.policy_for(stated), want, "{token} under {stated:?}");
        }
        for token in BadToken::all() {
            assert_ne!(token.policy_for(none), WhenConfigured, "{token}");
        }
    }

    #[test]
    fn serializes_as_its_name() {
        let json = serde_json::to_string(&BadToken::AlgNoneMixed).unwrap();
        assert_eq!(json, "\"alg-none-mixed\"");
        let back: BadToken = serde_json::from_str("\"psychic-es256\"").unwrap();
        assert_eq!(back, BadToken::PsychicEs256);
        assert!(serde_json::from_str::<BadToken>("\"nope\"").is_err());
    }
}
