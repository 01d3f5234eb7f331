//! The re-encoded forms of a token a server may echo whole: its base64, every byte of it
//! percent-encoded, the token backwards, and a JWT's signature bytes as hex.
//!
//! The [`Redactor`](super::Redactor) keeps only the hash of each form and makes the form
//! again from the token when a hash matches: a token's forms together are several times
//! its length, and a run may hold one token per connection.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// The shortest signature whose hex is looked for, in bytes: its hex is then as long as
/// the shortest token looked for (a forged token's stub signature is no secret).
const MIN_SIGNATURE: usize = 8;

/// How a token was re-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// Base64 of the whole token, in the standard alphabet (RFC 4648 §4) or the URL-safe
    /// one (§5), with or without `=` padding.
    Base64 { url_safe: bool, padded: bool },
    /// That base64 with what a URL or a form body escapes in it percent-encoded (`+` as
    /// `%2B`, `/` as `%2F`, `=` as `%3D`, hex in upper or lower case): a server that
    /// echoes a query or form value as it arrived, the base64 sent as a parameter.
    Base64Percent {
        url_safe: bool,
        padded: bool,
        upper: bool,
    },
    /// Every byte of the token percent-encoded (`%65%79…`), hex digits in upper or lower
    /// case.
    Percent { upper: bool },
    /// The token backwards, character by character.
    Reversed,
    /// The token in upper or lower case (a server that normalises what it echoes): a JWT's
    /// base64url loses its case, but its claims read again once guessed.
    Cased { upper: bool },
    /// The bytes a JWT's signature segment decodes to, as hex in upper or lower case.
    SignatureHex { upper: bool },
}

impl Encoding {
    /// Every encoding looked for: how many forms each token adds at most.
    pub(super) const ALL: [Encoding; 17] = [
        Encoding::Base64 {
            url_safe: false,
            padded: true,
        },
        Encoding::Base64 {
            url_safe: false,
            padded: false,
        },
        Encoding::Base64 {
            url_safe: true,
            padded: true,
        },
        Encoding::Base64 {
            url_safe: true,
            padded: false,
        },
        // URL-safe base64 without padding has nothing a URL escapes: no form of its own.
        Encoding::Base64Percent {
            url_safe: false,
            padded: true,
            upper: true,
        },
        Encoding::Base64Percent {
            url_safe: false,
            padded: true,
            upper: false,
        },
        Encoding::Base64Percent {
            url_safe: false,
            padded: false,
            upper: true,
        },
        Encoding::Base64Percent {
            url_safe: false,
            padded: false,
            upper: false,
        },
        Encoding::Base64Percent {
            url_safe: true,
            padded: true,
            upper: true,
        },
        Encoding::Base64Percent {
            url_safe: true,
            padded: true,
            upper: false,
        },
        Encoding::Percent { upper: false },
        Encoding::Percent { upper: true },
        Encoding::Reversed,
        Encoding::Cased { upper: true },
        Encoding::Cased { upper: false },
        Encoding::SignatureHex { upper: false },
        Encoding::SignatureHex { upper: true },
    ];

    /// `token` in this encoding; `None` when it has none (the signature of a token that
    /// is no JWT, or one too short to be a secret), or none apart from another encoding's
    /// (base64 with nothing a URL escapes).
    pub(super) fn apply(self, token: &str) -> Option<String> {
        match self {
            Encoding::Base64 { url_safe, padded } => Some(base64(token, url_safe, padded)),
            Encoding::Base64Percent {
                url_safe,
                padded,
                upper,
            } => url_escaped(&base64(token, url_safe, padded), upper),
            Encoding::Percent { upper } => Some(percent_every_byte(token.as_bytes(), upper)),
            Encoding::Reversed => Some(reversed(token)),
            Encoding::Cased { upper: true } => Some(token.to_uppercase()).filter(|t| t != token),
            Encoding::Cased { upper: false } => Some(token.to_lowercase()).filter(|t| t != token),
            Encoding::SignatureHex { upper } => {
                let signature = jwt_signature(token)?;
                (signature.len() >= MIN_SIGNATURE).then(|| hex(&signature, upper))
            }
        }
    }

    /// Whether the form holds the whole token (shown as its label, which names the token
    /// echoed) or only a piece of it (shown as `<part of a token>`, as the signature
    /// segment itself is: the signature's hex is the same piece, differently written).
    pub(super) fn is_whole(self) -> bool {
        !matches!(self, Encoding::SignatureHex { .. })
    }

    /// Whether this is a base64 form of the whole token (looked for wrapped, as MIME and
    /// PEM wrap base64, too).
    pub(super) fn is_base64(self) -> bool {
        matches!(
            self,
            Encoding::Base64 { .. } | Encoding::Base64Percent { .. }
        )
    }
}

fn base64(token: &str, url_safe: bool, padded: bool) -> String {
    match (url_safe, padded) {
        (false, true) => STANDARD.encode(token),
        (false, false) => STANDARD_NO_PAD.encode(token),
        (true, true) => URL_SAFE.encode(token),
        (true, false) => URL_SAFE_NO_PAD.encode(token),
    }
}

/// `base64` with `+`, `/` and `=` percent-encoded (`%2B`, `%2F`, `%3D`: they mean
/// something else in a query or a form body); `None` when it holds none of them.
fn url_escaped(base64: &str, upper: bool) -> Option<String> {
    if !base64.contains(['+', '/', '=']) {
        return None;
    }
    let mut out = Vec::with_capacity(base64.len() * 3);
    for &b in base64.as_bytes() {
        if matches!(b, b'+' | b'/' | b'=') {
            out.push(b'%');
            push_hex(&mut out, b, upper);
        } else {
            out.push(b);
        }
    }
    ascii(out)
}

/// `bytes` with every byte written `%XX`. Written here, not with `percent-encoding`: its
/// sets never escape letters and digits, and it writes upper-case hex only.
fn percent_every_byte(bytes: &[u8], upper: bool) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 3);
    for &b in bytes {
        out.push(b'%');
        push_hex(&mut out, b, upper);
    }
    ascii(out).unwrap_or_default()
}

fn hex(bytes: &[u8], upper: bool) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        push_hex(&mut out, b, upper);
    }
    ascii(out).unwrap_or_default()
}

/// Bytes, not characters: a run's redactor makes a dozen forms of every token it minted,
/// and a `char` pushed onto a `String` is encoded one at a time.
fn push_hex(out: &mut Vec<u8>, b: u8, upper: bool) {
    let digits = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    // Both halves of a byte are below 16.
    out.push(digits[usize::from(b >> 4)]);
    out.push(digits[usize::from(b & 0x0f)]);
}

/// The text of bytes this module wrote, all ASCII (`None` never happens: a forms' mistake
/// would drop the form rather than panic).
fn ascii(bytes: Vec<u8>) -> Option<String> {
    String::from_utf8(bytes).ok()
}

/// `token` backwards, character by character (byte by byte when it is ASCII, as a minted
/// token always is).
fn reversed(token: &str) -> String {
    if token.is_ascii() {
        let mut bytes = token.as_bytes().to_vec();
        bytes.reverse();
        if let Some(text) = ascii(bytes) {
            return text;
        }
    }
    token.chars().rev().collect()
}

/// The bytes of a compact JWT's signature (its third segment, base64url without padding,
/// RFC 7515 §7.1); `None` for a token of another shape or a segment that is no base64url.
fn jwt_signature(token: &str) -> Option<Vec<u8>> {
    let mut parts = token.split('.');
    let (Some(_), Some(_), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    URL_SAFE_NO_PAD.decode(signature).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_percent_encoded_and_the_signature_read_as_bytes() {
        assert_eq!(
            Encoding::Percent { upper: false }.apply("ey/é").as_deref(),
            Some("%65%79%2f%c3%a9")
        );
        assert_eq!(
            Encoding::Percent { upper: true }.apply("ey/é").as_deref(),
            Some("%65%79%2F%C3%A9")
        );
        // "AQIDBAUGBwgJ" is base64url for the bytes 1 to 9.
        let jwt = "eyJh.eyJz.AQIDBAUGBwgJ";
        assert_eq!(
            Encoding::SignatureHex { upper: false }
                .apply(jwt)
                .as_deref(),
            Some("010203040506070809")
        );
        assert_eq!(Encoding::Reversed.apply("abé.").as_deref(), Some(".éba"));
        // Not a JWT, a signature too short or not base64url: no hex form.
        for token in ["opaque-token-value", "a.b.AQID", "a.b.not*base64"] {
            assert_eq!(Encoding::SignatureHex { upper: true }.apply(token), None);
        }
    }
}
