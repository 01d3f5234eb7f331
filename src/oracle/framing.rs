//! How text frames carry records (`[oracles] framing`): as they are, or in a protocol's
//! own packets ([`socketio`], [`stomp`]), read into JSON
//! records the oracles judge like any other and written from them; and fields that hold
//! JSON as text (`[oracles] embedded_json`, Pusher's `data`), read as that JSON.

use super::{socketio, stomp};
use crate::model::{Framing, OracleSpec};

/// A received text frame under a framing other than plain.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    /// The server asked for a heart-beat answer ([`answer`]).
    pub ping: bool,
    /// What the oracles read, in order: each record's JSON text, or a piece that is no
    /// packet as it came (read as text, or as JSON when it is).
    pub bodies: Vec<String>,
}

impl Decoded {
    /// Nothing for the oracles: heart-beats and transport packets only, no data frame.
    pub fn is_transport(&self) -> bool {
        self.bodies.is_empty()
    }
}

/// Reads one received text frame as `spec` says: its framing's packets, then the
/// embedded JSON of each record ([`unwrap_embedded`]). A frame `spec` reads as it comes
/// ([`OracleSpec::reads_frames_as_they_are`]) needs none of this.
pub fn decode(spec: &OracleSpec, text: &str) -> Decoded {
    let mut decoded = decode_framing(spec.framing, text);
    if !spec.embedded_json.is_empty() {
        for body in &mut decoded.bodies {
            if let Some(unwrapped) = unwrap_embedded(body, &spec.embedded_json) {
                *body = unwrapped;
            }
        }
    }
    decoded
}

/// `body` (JSON text) with the string at each of `paths` that holds a JSON object or
/// array replaced by it; `None` when nothing changed (not JSON, no such string).
pub fn unwrap_embedded(body: &str, paths: &[String]) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_str(body).ok()?;
    let mut changed = false;
    for path in paths {
        let Some(at) = crate::model::path::lookup_mut(&mut value, path) else {
            continue;
        };
        let Some(text) = at.as_str() else {
            continue;
        };
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(inner) if inner.is_object() || inner.is_array() => {
                *at = inner;
                changed = true;
            }
            // A plain string stays one (a number or `true` in a string is no structure).
            _ => {}
        }
    }
    changed.then(|| value.to_string())
}

/// The framing a server's text is written in, when it is one stampede reads and tells
/// by its first bytes: Engine.IO's open packet or a Socket.IO packet (`0{"sid"`, `40{`,
/// `42[`), a STOMP frame's command line (`CONNECTED`, `MESSAGE`, `RECEIPT`, `ERROR`).
pub fn recognised(text: &str) -> Option<Framing> {
    let socket_io = ["0{\"sid\"", "40{", "40/", "42[", "43", "44{"];
    if socket_io.iter().any(|p| text.starts_with(p)) {
        return Some(Framing::SocketIo);
    }
    let line = text.trim_start_matches(['\r', '\n']).split('\n').next()?;
    let command = line.trim_end_matches('\r');
    let stomp = ["CONNECTED", "MESSAGE", "RECEIPT", "ERROR"];
    (stomp.contains(&command) && text.contains('\n')).then_some(Framing::Stomp)
}

/// The framing the first of `texts` (what a server said) is written in ([`recognised`]).
pub fn recognised_in<'t>(texts: impl IntoIterator<Item = &'t str>) -> Option<Framing> {
    texts.into_iter().find_map(recognised)
}

/// The framing a scenario was written for, by its shape, when the server's words tell
/// nothing (a STOMP broker says nothing to a CONNECT without its NUL): a target at
/// Socket.IO's path (`/socket.io/`), or a message (the first message, a send) with a STOMP
/// command in `type` and a `headers` table.
pub fn written_for<'v>(
    target: &str,
    messages: impl IntoIterator<Item = &'v serde_json::Value>,
) -> Option<Framing> {
    if target.contains("/socket.io/") {
        return Some(Framing::SocketIo);
    }
    let stomp = ["CONNECT", "STOMP", "SUBSCRIBE", "SEND"];
    messages
        .into_iter()
        .any(|m| {
            m.get("type")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|t| stomp.contains(&t))
                && m.get("headers").is_some_and(serde_json::Value::is_object)
        })
        .then_some(Framing::Stomp)
}

/// What to set when a run without a framing met a server that speaks `found` (told by
/// [`recognised_in`] or [`written_for`]): `None` when the scenario names a framing or
/// nothing was found.
pub fn unset_note(spec: &OracleSpec, found: Option<Framing>) -> Option<String> {
    if !spec.framing.is_plain() {
        return None;
    }
    let (name, value) = match found? {
        Framing::SocketIo => ("Socket.IO", "socket.io"),
        Framing::Stomp => ("STOMP", "stomp"),
        Framing::Plain => return None,
    };
    Some(format!(
        "the server speaks {name} (what it sent, or the scenario's target and messages, are \
         {name}'s): set [oracles] framing = \"{value}\""
    ))
}

fn decode_framing(framing: Framing, text: &str) -> Decoded {
    match framing {
        Framing::Plain => Decoded {
            ping: false,
            bodies: vec![text.to_string()],
        },
        Framing::SocketIo => match socketio::decode(text) {
            socketio::Inbound::Ping => Decoded {
                ping: true,
                bodies: Vec::new(),
            },
            socketio::Inbound::Transport => Decoded::default(),
            socketio::Inbound::Record(json) => Decoded {
                ping: false,
                bodies: vec![json],
            },
            socketio::Inbound::Unreadable => Decoded {
                ping: false,
                bodies: vec![text.to_string()],
            },
        },
        Framing::Stomp => Decoded {
            ping: false,
            bodies: stomp::decode(text)
                .into_iter()
                .map(|r| r.unwrap_or_else(|piece| piece))
                .collect(),
        },
    }
}

/// What the client answers a server's heart-beat request with, under `framing`.
pub fn answer(framing: Framing) -> Option<&'static str> {
    match framing {
        Framing::SocketIo => Some(socketio::PONG),
        Framing::Plain | Framing::Stomp => None,
    }
}

/// A scripted text frame as it goes on the wire under `spec`: a record encoded in the
/// framing's packet (text that is no record as written), the record separator appended.
pub fn frame_out(spec: &OracleSpec, mut text: String) -> String {
    let encoded = match spec.framing {
        Framing::Plain => None,
        Framing::SocketIo => socketio::encode(&text),
        Framing::Stomp => stomp::encode(&text),
    };
    if let Some(encoded) = encoded {
        text = encoded;
    }
    if let Some(sep) = &spec.record_separator {
        text.push_str(sep);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn unwrapped(body: &str, paths: &[&str]) -> Option<Value> {
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        unwrap_embedded(body, &paths).map(|t| serde_json::from_str(&t).unwrap())
    }

    #[test]
    fn socket_io_and_stomp_are_told_by_their_first_bytes() {
        for io in [
            r#"0{"sid":"a","pingInterval":25000}"#,
            r#"42["chat",1]"#,
            r#"40{"sid":"x"}"#,
        ] {
            assert_eq!(recognised(io), Some(Framing::SocketIo), "{io}");
        }
        for stomp in [
            "CONNECTED\nversion:1.2\n\n\0",
            "\nMESSAGE\r\nsubscription:s\r\n\r\n{}\0",
        ] {
            assert_eq!(recognised(stomp), Some(Framing::Stomp), "{stomp:?}");
        }
        for other in [r#"{"type":"x"}"#, "42", "ERROR", "hello", "", "0{}"] {
            assert_eq!(recognised(other), None, "{other:?}");
        }
        let plain = OracleSpec::default();
        let found = recognised_in(["hello", r#"0{"sid":"a"}"#]);
        let note = unset_note(&plain, found).unwrap_or_default();
        assert!(
            note.contains("set [oracles] framing = \"socket.io\""),
            "{note}"
        );
        let named = OracleSpec {
            framing: Framing::Stomp,
            ..OracleSpec::default()
        };
        assert_eq!(unset_note(&named, recognised_in(["CONNECTED\n\n\0"])), None);
        assert_eq!(unset_note(&plain, recognised_in([r#"{"type":"x"}"#])), None);
        // By the scenario's shape.
        let connect = serde_json::json!({"type": "CONNECT", "headers": {"login": "g"}});
        assert_eq!(written_for("ws://h/ws", [&connect]), Some(Framing::Stomp));
        assert_eq!(
            written_for("ws://h/socket.io/?EIO=4&transport=websocket", []),
            Some(Framing::SocketIo)
        );
        let plain_json = serde_json::json!({"type": "CONNECT", "user": "g"});
        assert_eq!(written_for("ws://h/ws", [&plain_json]), None);
    }

    #[test]
    fn embedded_json_is_read_as_the_structure_it_holds() {
        let pusher = r#"{"event":"chat","channel":"room-1","data":"{\"text\":\"hi\",\"n\":[1]}"}"#;
        assert_eq!(
            unwrapped(pusher, &["data"]),
            Some(json!({"event": "chat", "channel": "room-1", "data": {"text": "hi", "n": [1]}}))
        );
        // Nested, by pointer; an array element; two paths.
        let nested = r#"{"m":[{"d":"[1,2]"}],"e":"{}"}"#;
        assert_eq!(
            unwrapped(nested, &["/m/0/d", "e"]),
            Some(json!({"m": [{"d": [1, 2]}], "e": {}}))
        );
        // Nothing to unwrap: a plain string, a number in a string, no such field, a
        // field that is already an object, a body that is no JSON.
        for (body, path) in [
            (r#"{"data":"hello"}"#, "data"),
            (r#"{"data":"12"}"#, "data"),
            (r#"{"other":"{}"}"#, "data"),
            (r#"{"data":{"a":"{}"}}"#, "data"),
            ("not json", "data"),
        ] {
            assert_eq!(unwrapped(body, &[path]), None, "{body}");
        }
    }
}
