//! Literal credentials inside the messages a script sends: a `first_message` or `send`
//! field named like a password (`{ type = "login", password = "hunter2" }`), a text
//! frame's `passcode:hunter2` header line (STOMP's CONNECT). They are sent as written,
//! but plans, `plan.json`, `stampede plan` and repro files store `"<redacted>"` in their
//! place, as a literal `[auth] secret` or credential header is ([`super::EnvText`]); a
//! plan read back with one cannot send it, and a run of it stops before it dials
//! ([`first_not_stored`]), asking for the scenario file.
//!
//! Only literals: a value with a `{{...}}` placeholder (`token = "{{token}}"`, the run's
//! own token) or a `${NAME}` reference is written as it is, and filled again when run.

use super::auth::SecretText;
use serde_json::Value;

/// What a message field's name holds when it names a credential (lower case, with `_`,
/// `-` and `.` left out: `api_key`, `apiKey` and `api-key` alike).
const SECRET_FIELD_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passcode",
    "secret",
    "apikey",
    "credential",
    "authorization",
];

/// Whether a message field (or a text frame's header line) named `name` carries a
/// credential: its name holds one of `SECRET_FIELD_WORDS` (`password`, `clientSecret`,
/// `api_key`), or ends in `token` (`token`, `accessToken`, `refresh_token`). Stricter
/// than [`super::is_credential_header`]: messages carry `session` ids, `key`s and
/// `author`s that are no secrets.
pub fn is_secret_field(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    folded.ends_with("token") || SECRET_FIELD_WORDS.iter().any(|w| folded.contains(w))
}

/// Whether `value` is written literally: no `{{...}}` placeholder and no `${NAME}`
/// reference, either of which is filled when run and so is no literal secret.
fn literal(value: &str) -> bool {
    !value.contains("{{") && !value.contains("${")
}

/// `message` as a file stores it: every string of a credential-named field that is a
/// literal, at any depth, replaced with `"<redacted>"`. Borrowed when there is none.
pub fn stored_message(message: &Value) -> std::borrow::Cow<'_, Value> {
    // A text first message (`first_text`) is stored as a text frame is.
    if let Value::String(text) = message {
        if let std::borrow::Cow::Owned(stored) = stored_text(text) {
            return std::borrow::Cow::Owned(Value::String(stored));
        }
    }
    if !holds_literal_secret(message) {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut stored = message.clone();
    redact_value(&mut stored);
    std::borrow::Cow::Owned(stored)
}

/// Whether `message` holds a literal credential field.
fn holds_literal_secret(message: &Value) -> bool {
    match message {
        Value::Object(fields) => fields.iter().any(|(name, v)| match v {
            Value::String(s) => is_secret_field(name) && literal(s),
            other => holds_literal_secret(other),
        }),
        Value::Array(items) => items.iter().any(holds_literal_secret),
        _ => false,
    }
}

fn redact_value(message: &mut Value) {
    match message {
        Value::Object(fields) => {
            for (name, v) in fields.iter_mut() {
                match v {
                    Value::String(s) if is_secret_field(name) && literal(s) => {
                        *s = SecretText::REDACTED_MARKER.to_string();
                    }
                    other => redact_value(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// A text frame as a file stores it: the value of each `name:value` line whose name
/// [`is_secret_field`] and whose value is a literal replaced with `<redacted>` (STOMP's
/// `passcode:guest`). Borrowed when there is none.
pub fn stored_text(text: &str) -> std::borrow::Cow<'_, str> {
    let secret_line = |line: &str| {
        line.split_once(':')
            .is_some_and(|(name, value)| is_secret_field(name.trim()) && literal(value))
    };
    if !text.lines().any(secret_line) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut stored = String::with_capacity(text.len());
    for piece in text.split_inclusive('\n') {
        let (line, end) = match piece.strip_suffix('\n') {
            Some(line) => (line, "\n"),
            None => (piece, ""),
        };
        match line.split_once(':') {
            Some((name, _)) if secret_line(line) => {
                stored.push_str(name);
                stored.push(':');
                stored.push_str(SecretText::REDACTED_MARKER);
            }
            _ => stored.push_str(line),
        }
        stored.push_str(end);
    }
    std::borrow::Cow::Owned(stored)
}

/// `serialize_with` for a JSON message a file stores ([`stored_message`]).
pub fn serialize_message<S: serde::Serializer>(message: &Value, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(stored_message(message).as_ref(), s)
}

/// `serialize_with` for a text frame a file stores ([`stored_text`]).
pub fn serialize_text<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&stored_text(text))
}

/// The name of the first credential field of `message` a file did not store (its value
/// `"<redacted>"`): a plan read back with it cannot send it.
pub fn message_not_stored(message: &Value) -> Option<String> {
    match message {
        // A text first message (`first_text`), stored as a text frame is.
        Value::String(text) => text_not_stored(text),
        other => field_not_stored(other),
    }
}

/// [`message_not_stored`] of a message's fields, at any depth.
fn field_not_stored(message: &Value) -> Option<String> {
    match message {
        Value::Object(fields) => fields.iter().find_map(|(name, v)| match v {
            Value::String(s) if is_secret_field(name) && s == SecretText::REDACTED_MARKER => {
                Some(name.clone())
            }
            other => field_not_stored(other),
        }),
        Value::Array(items) => items.iter().find_map(field_not_stored),
        _ => None,
    }
}

/// The name of the first credential line of `text` a file did not store.
pub fn text_not_stored(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (is_secret_field(name.trim()) && value == SecretText::REDACTED_MARKER)
            .then(|| name.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Field names that carry credentials, and names that look alike but do not.
    #[test]
    fn secret_fields_are_named_like_credentials() {
        for name in [
            "password",
            "passcode",
            "clientSecret",
            "api_key",
            "X-Api-Key",
            "token",
            "accessToken",
            "refresh_token",
            "Authorization",
        ] {
            assert!(is_secret_field(name), "{name}");
        }
        for name in [
            "session",
            "sessionId",
            "key",
            "author",
            "type",
            "tokens_left",
            "login",
        ] {
            assert!(!is_secret_field(name), "{name}");
        }
    }

    /// A literal credential field is stored redacted at any depth; placeholders, `${NAME}`
    /// and other fields stay as written, and what was not stored is found again.
    #[test]
    fn literal_credential_fields_are_stored_redacted() {
        let message = json!({
            "type": "login",
            "password": "hunter2",
            "token": "{{token}}",
            "auth": { "apiKey": "k-123", "user": "u1" },
            "items": [{ "secret": "${S}" }, { "passcode": "p" }],
        });
        let stored = stored_message(&message);
        assert_eq!(
            stored.as_ref(),
            &json!({
                "type": "login",
                "password": "<redacted>",
                "token": "{{token}}",
                "auth": { "apiKey": "<redacted>", "user": "u1" },
                "items": [{ "secret": "${S}" }, { "passcode": "<redacted>" }],
            })
        );
        assert!(!stored.to_string().contains("hunter2"));
        assert!(message_not_stored(stored.as_ref()).is_some());
        assert_eq!(message_not_stored(&message), None);
        let plain = json!({ "type": "ping", "session": "s-1" });
        assert!(matches!(
            stored_message(&plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    /// A text frame's credential header lines are stored redacted, the rest as written.
    #[test]
    fn credential_lines_of_a_text_frame_are_stored_redacted() {
        let connect = "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\n\n\0";
        let stored = stored_text(connect);
        assert_eq!(
            stored,
            "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:<redacted>\n\n\0"
        );
        assert_eq!(text_not_stored(&stored).as_deref(), Some("passcode"));
        assert_eq!(text_not_stored(connect), None);
        let templated = "CONNECT\npasscode:{{token}}\n\n\0";
        assert_eq!(stored_text(templated), templated);
    }
}
