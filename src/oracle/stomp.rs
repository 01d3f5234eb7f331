//! STOMP 1.2 over WebSocket (`[oracles] framing = "stomp"`), as Spring's message broker
//! relay, RabbitMQ's and ActiveMQ's Web-STOMP speak it: frames read as JSON records and
//! written from them.
//!
//! On the wire (the STOMP 1.2 specification, stomp.github.io): a command line, header
//! lines `name:value`, an empty line, the body, a NUL byte. A WebSocket message may hold
//! several frames; a lone end-of-line between frames is a heart-beat. Header values escape
//! `\`, `:`, CR and LF as `\\`, `\c`, `\r`, `\n` (except in CONNECT and CONNECTED).
//!
//! Each frame becomes one record `{"type": COMMAND, "headers": {…}, "body": …}`: the body
//! parsed as JSON when it is JSON, else its text, left out when empty; of a repeated
//! header the first counts (as the specification says). A `send` is written the other way
//! ([`encode`]).

use serde_json::{Map, Value};

/// What a received text message holds: its frames' records (JSON text), in order, and
/// pieces that are no frame, as they came.
pub fn decode(text: &str) -> Vec<Result<String, String>> {
    let mut out = Vec::new();
    for piece in text.split('\0') {
        // Heart-beats, and the end-of-lines some servers put after a frame's NUL.
        let frame = piece.trim_start_matches(['\r', '\n']);
        if frame.is_empty() {
            continue;
        }
        out.push(frame_record(frame).ok_or_else(|| piece.to_string()));
    }
    out
}

/// One frame (without its NUL) as its record's JSON text; `None` when it is no frame.
fn frame_record(frame: &str) -> Option<String> {
    let (command, rest) = frame.split_once('\n')?;
    let command = command.trim_end_matches('\r');
    if command.is_empty() || !command.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let escaped = command != "CONNECTED";
    let mut headers = Map::new();
    let mut rest = rest;
    loop {
        let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        rest = after;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        let (name, value) = if escaped {
            (unescape(name)?, unescape(value)?)
        } else {
            (name.to_string(), value.to_string())
        };
        headers.entry(name).or_insert(Value::String(value));
    }
    let mut record = Map::new();
    record.insert("type".into(), command.into());
    record.insert("headers".into(), Value::Object(headers));
    if !rest.is_empty() {
        let body = serde_json::from_str(rest).unwrap_or_else(|_| Value::String(rest.into()));
        record.insert("body".into(), body);
    }
    Some(Value::Object(record).to_string())
}

/// A header value's escapes undone; `None` for an escape STOMP does not define.
fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            'c' => ':',
            '\\' => '\\',
            _ => return None,
        });
    }
    Some(out)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ':' => out.push_str("\\c"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The frame of a message a scenario sends (JSON text): an object with a string `type`
/// (the command), `headers` (a table; a value that is no string is written as JSON) and
/// `body` (a string as it is, anything else as JSON text, with `content-type:
/// application/json` unless the headers name one). Anything else goes out as written:
/// `None`.
pub fn encode(text: &str) -> Option<String> {
    let Value::Object(mut map) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let command = map.get("type")?.as_str()?.to_string();
    let mut headers = match map.remove("headers") {
        Some(Value::Object(h)) => h,
        _ => Map::new(),
    };
    let body = match map.remove("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(json) => {
            if !headers.contains_key("content-type") {
                headers.insert("content-type".into(), "application/json".into());
            }
            json.to_string()
        }
    };
    let escaped = command != "CONNECT" && command != "STOMP";
    let mut frame = command;
    frame.push('\n');
    for (name, value) in &headers {
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let (name, value) = if escaped {
            (escape(name), escape(&value))
        } else {
            (name.clone(), value)
        };
        frame.push_str(&format!("{name}:{value}\n"));
    }
    frame.push('\n');
    frame.push_str(&body);
    frame.push('\0');
    Some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn records(text: &str) -> Vec<Value> {
        decode(text)
            .into_iter()
            .map(|r| serde_json::from_str(&r.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn frames_read_as_records() {
        let message = "MESSAGE\nsubscription:sub-0\nmessage-id:7\ndestination:/topic/r\ncontent-type:application/json\n\n{\"text\":\"hi\"}\0";
        assert_eq!(
            records(message),
            [
                json!({"type": "MESSAGE", "headers": {"subscription": "sub-0", "message-id": "7",
                "destination": "/topic/r", "content-type": "application/json"}, "body": {"text": "hi"}})
            ]
        );
        // Two frames in one message, a heart-beat between, CRLF lines, a text body, a
        // repeated header (the first counts), escapes undone.
        let two = "\nCONNECTED\r\nversion:1.2\r\nserver:a\\cb\r\n\r\n\0\n\nERROR\nmessage:bad\\cthing\nmessage:later\n\nno such queue\0\n";
        assert_eq!(
            records(two),
            [
                json!({"type": "CONNECTED", "headers": {"version": "1.2", "server": "a\\cb"}}),
                json!({"type": "ERROR", "headers": {"message": "bad:thing"}, "body": "no such queue"}),
            ]
        );
        assert!(decode("\n").is_empty(), "a heart-beat is no record");
        assert!(decode("\r\n\n").is_empty());
    }

    #[test]
    fn what_is_no_frame_comes_back_as_it_came() {
        for odd in [
            "hello",
            "{\"type\":\"x\"}",
            "message\n\n\0",
            "SEND\nbroken header\n\n\0",
            "SEND\nx:\\t\n\n\0",
        ] {
            let got = decode(odd);
            assert_eq!(got.len(), 1, "{odd:?}");
            assert!(got[0].is_err(), "{odd:?}: {got:?}");
        }
    }

    #[test]
    fn records_encode_to_what_they_read_as() {
        let subscribe =
            encode(r#"{"type":"SUBSCRIBE","headers":{"id":"sub-0","destination":"/topic/r"}}"#);
        assert_eq!(
            subscribe.as_deref(),
            Some("SUBSCRIBE\nid:sub-0\ndestination:/topic/r\n\n\0")
        );
        let send = encode(r#"{"type":"SEND","headers":{"destination":"/app/say","x":"a:b"},"body":{"text":"hi"}}"#)
            .unwrap();
        assert_eq!(
            send,
            "SEND\ndestination:/app/say\nx:a\\cb\ncontent-type:application/json\n\n{\"text\":\"hi\"}\0"
        );
        assert_eq!(
            records(&send),
            [
                json!({"type": "SEND", "headers": {"destination": "/app/say", "x": "a:b",
                "content-type": "application/json"}, "body": {"text": "hi"}})
            ]
        );
        // CONNECT's headers are not escaped; numbers are written as their text.
        let connect = encode(
            r#"{"type":"CONNECT","headers":{"accept-version":"1.2","passcode":"a:b","n":1}}"#,
        );
        assert_eq!(
            connect.as_deref(),
            Some("CONNECT\naccept-version:1.2\npasscode:a:b\nn:1\n\n\0")
        );
        assert_eq!(
            encode(r#"{"type":"SEND","body":"plain"}"#).as_deref(),
            Some("SEND\n\nplain\0")
        );
        for as_written in [r#"{"no":"type"}"#, "[1]", "not json"] {
            assert_eq!(encode(as_written), None, "{as_written}");
        }
    }
}
