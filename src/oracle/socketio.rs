//! Socket.IO over its WebSocket transport (`[oracles] framing = "socket.io"`): Engine.IO
//! v4 packets carrying Socket.IO v5 packets, read as JSON records and written from them.
//!
//! On the wire (the Engine.IO and Socket.IO protocol specifications, socket.io/docs/v4):
//! a text frame starts with an Engine.IO packet type digit (`0` open, `1` close, `2` ping,
//! `3` pong, `4` message, `5` upgrade, `6` noop). A message carries a Socket.IO packet:
//! its type digit (`0` CONNECT, `1` DISCONNECT, `2` EVENT, `3` ACK, `4` CONNECT_ERROR,
//! `5` BINARY_EVENT, `6` BINARY_ACK), for the binary kinds an attachment count and `-`,
//! a namespace other than `/` followed by `,`, an acknowledgement id (digits), then the
//! JSON payload: `42["chat",{"text":"hi"}]`, `431[{"ok":true}]`, `40{"sid":"x"}`,
//! `42/admin,["ev"]`.
//!
//! Each packet becomes one record, a JSON object the oracles read like any other:
//! `{"type": KIND, "nsp": "/", "id": N, "data": …}`, where KIND is the event's name for an
//! EVENT or BINARY_EVENT (its arguments in `data`, an array, an attachment's place held by
//! `{"_placeholder": true, "num": N}`), else `connect`, `disconnect`, `ack` (ACK and
//! BINARY_ACK), `connect_error`, and `close` for Engine.IO's close; `id`
//! only when the packet carries one. Engine.IO's open packet (the session's parameters,
//! sent before the server looks at any token) is no record. A record written in a
//! `send` is encoded back the same way (see [`encode`]). The server's pings are answered
//! by the engine ([`Inbound::Ping`]), as a Socket.IO client does.

use serde_json::{json, Map, Value};

/// What one received text frame is.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// An Engine.IO ping: the client answers it with a pong ([`PONG`]) or the server drops
    /// the connection after its `pingTimeout`.
    Ping,
    /// A transport packet that says nothing to the oracles (pong, upgrade, noop).
    Transport,
    /// A packet, as the JSON text of its record.
    Record(String),
    /// Not an Engine.IO packet (or a payload that is not JSON): read as text.
    Unreadable,
}

/// The Engine.IO pong a client answers a ping with.
pub const PONG: &str = "3";

/// Reads one received text frame (see the module docs).
pub fn decode(text: &str) -> Inbound {
    let mut chars = text.chars();
    let Some(engine) = chars.next() else {
        return Inbound::Unreadable;
    };
    let rest = chars.as_str();
    match engine {
        // The handshake's parameters (sid, ping interval): sent before the server has
        // looked at the token, so no record that might read as an acceptance.
        '0' if json_payload(rest).is_some() => Inbound::Transport,
        '1' => record(json!({"type": "close"})),
        '2' => Inbound::Ping,
        '3' | '5' | '6' => Inbound::Transport,
        '4' => socket_packet(rest).map_or(Inbound::Unreadable, record),
        _ => Inbound::Unreadable,
    }
}

fn record(value: Value) -> Inbound {
    Inbound::Record(value.to_string())
}

/// An optional JSON payload: none when empty.
fn json_payload(text: &str) -> Option<Option<Value>> {
    if text.is_empty() {
        return Some(None);
    }
    serde_json::from_str(text).ok().map(Some)
}

/// A Socket.IO packet (what follows an Engine.IO `4`) as its record; `None` when it is
/// not one.
fn socket_packet(text: &str) -> Option<Value> {
    let mut rest = text;
    let kind = rest.chars().next()?;
    rest = &rest[kind.len_utf8()..];
    if matches!(kind, '5' | '6') {
        // The attachment count: the attachments themselves come as binary frames.
        let dash = rest.find('-')?;
        rest = &rest[dash + 1..];
    }
    let mut nsp = "/";
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        nsp = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = rest[..digits].parse::<u64>().ok();
    rest = &rest[digits..];
    let data = json_payload(rest)?;
    // A binary event or ack reads as the plain one: its attachments (binary frames) stand
    // in its arguments as `{"_placeholder": true, "num": N}`.
    let name = match kind {
        '0' => "connect",
        '1' => "disconnect",
        '2' | '5' => "",
        '3' | '6' => "ack",
        '4' => "connect_error",
        _ => return None,
    };
    let mut out = Map::new();
    match (kind, data) {
        // An event: its name first, its arguments after.
        ('2' | '5', Some(Value::Array(mut items)))
            if items.first().is_some_and(Value::is_string) =>
        {
            let event = items.remove(0);
            out.insert("type".into(), event);
            out.insert("data".into(), Value::Array(items));
        }
        (_, data) => {
            if !name.is_empty() {
                out.insert("type".into(), name.into());
            }
            if let Some(data) = data {
                out.insert("data".into(), data);
            }
        }
    }
    out.insert("nsp".into(), nsp.into());
    if let Some(id) = id {
        out.insert("id".into(), id.into());
    }
    Some(Value::Object(out))
}

/// The frame text of a message a scenario sends (JSON text): an array `[event, args…]`
/// is an EVENT; an object with a string `type` is the packet its record would read as
/// (`connect` with an optional `data` object, `disconnect`, `ack` with `id` and `data`,
/// any other `type` an EVENT of that name with `data` its arguments, an array, or one
/// argument otherwise), with `nsp` for a namespace other than `/` and `id` (a number, or
/// a string of digits) for an acknowledgement id. Anything else goes out as written:
/// `None`.
pub fn encode(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    match value {
        Value::Array(items) if items.first().is_some_and(Value::is_string) => {
            Some(format!("42{}", Value::Array(items)))
        }
        Value::Object(map) => encode_record(map),
        _ => None,
    }
}

fn encode_record(mut map: Map<String, Value>) -> Option<String> {
    let kind = map.get("type")?.as_str()?.to_string();
    let nsp = match map.get("nsp").and_then(Value::as_str) {
        Some(n) if n != "/" && !n.is_empty() => {
            let slash = if n.starts_with('/') { "" } else { "/" };
            format!("{slash}{n},")
        }
        _ => String::new(),
    };
    let id = match map.get("id") {
        Some(Value::Number(n)) => n.as_u64().map(|n| n.to_string()),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        _ => None,
    }
    .unwrap_or_default();
    let data = map.remove("data");
    let args = |data: Option<Value>| match data {
        Some(Value::Array(items)) => items,
        Some(one) => vec![one],
        None => Vec::new(),
    };
    Some(match kind.as_str() {
        "connect" => format!("40{nsp}{}", data.map(|d| d.to_string()).unwrap_or_default()),
        "disconnect" => format!("41{nsp}"),
        "ack" => format!("43{nsp}{id}{}", Value::Array(args(data))),
        event => {
            let mut items = vec![Value::String(event.to_string())];
            items.extend(args(data));
            format!("42{nsp}{id}{}", Value::Array(items))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Value {
        match decode(text) {
            Inbound::Record(json) => serde_json::from_str(&json).unwrap(),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn packets_read_as_records() {
        assert_eq!(
            read(r#"40{"sid":"x"}"#),
            json!({"type": "connect", "nsp": "/", "data": {"sid": "x"}})
        );
        assert_eq!(
            read(r#"42["chat",{"text":"hi"},2]"#),
            json!({"type": "chat", "nsp": "/", "data": [{"text": "hi"}, 2]})
        );
        assert_eq!(
            read(r#"42/admin,7["ev"]"#),
            json!({"type": "ev", "nsp": "/admin", "id": 7, "data": []})
        );
        assert_eq!(
            read(r#"4313[{"ok":true}]"#),
            json!({"type": "ack", "nsp": "/", "id": 13, "data": [{"ok": true}]})
        );
        assert_eq!(
            read(r#"44{"message":"not authorized"}"#),
            json!({"type": "connect_error", "nsp": "/", "data": {"message": "not authorized"}})
        );
        assert_eq!(
            read("41/chat,"),
            json!({"type": "disconnect", "nsp": "/chat"})
        );
        assert_eq!(
            read(r#"451-["up",{"_placeholder":true,"num":0}]"#),
            json!({"type": "up", "nsp": "/", "data": [{"_placeholder": true, "num": 0}]})
        );
        assert_eq!(
            read(r#"461-3[{"_placeholder":true,"num":0}]"#),
            json!({"type": "ack", "nsp": "/", "id": 3, "data": [{"_placeholder": true, "num": 0}]})
        );
        assert_eq!(read("1"), json!({"type": "close"}));
    }

    #[test]
    fn heartbeats_and_strangers() {
        assert_eq!(decode("2"), Inbound::Ping);
        for transport in ["3", "6", "5", r#"0{"sid":"a","pingInterval":25000}"#] {
            assert_eq!(decode(transport), Inbound::Transport, "{transport}");
        }
        for odd in ["", "hello", r#"{"type":"x"}"#, "42[not json", "47[]", "0{"] {
            assert_eq!(decode(odd), Inbound::Unreadable, "{odd:?}");
        }
        // An event whose payload is not [name, ...] keeps it, kindless.
        assert_eq!(read("42{}"), json!({"nsp": "/", "data": {}}));
    }

    #[test]
    fn records_encode_to_what_they_read_as() {
        let cases = [
            (r#"["chat",{"text":"hi"}]"#, r#"42["chat",{"text":"hi"}]"#),
            (
                r#"{"type":"connect","data":{"token":"t"}}"#,
                r#"40{"token":"t"}"#,
            ),
            (r#"{"type":"connect","nsp":"/admin"}"#, "40/admin,"),
            (
                r#"{"type":"say","id":"12","data":[1,2]}"#,
                r#"4212["say",1,2]"#,
            ),
            (
                r#"{"type":"say","id":5,"data":{"a":1}}"#,
                r#"425["say",{"a":1}]"#,
            ),
            (r#"{"type":"ack","id":3,"data":["ok"]}"#, r#"433["ok"]"#),
            (r#"{"type":"disconnect","nsp":"chat"}"#, "41/chat,"),
        ];
        for (record, wire) in cases {
            assert_eq!(encode(record).as_deref(), Some(wire), "{record}");
        }
        for as_written in [r#"{"no":"type"}"#, "[1,2]", "42", "not json"] {
            assert_eq!(encode(as_written), None, "{as_written}");
        }
        // What is written is what is read back.
        let event = read(&encode(r#"{"type":"say","id":9,"data":[{"x":1}]}"#).unwrap());
        assert_eq!(
            event,
            json!({"type": "say", "nsp": "/", "id": 9, "data": [{"x": 1}]})
        );
    }
}
