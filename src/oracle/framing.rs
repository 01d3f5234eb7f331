//! How text frames carry records (`[oracles] framing`): as they are, or in a protocol's
//! own packets ([`socketio`](super::socketio), [`stomp`](super::stomp)), read into JSON
//! records the oracles judge like any other and written from them.

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

/// Reads one received text frame under `framing` (plain frames are read as they are,
/// without this).
pub fn decode(framing: Framing, text: &str) -> Decoded {
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
