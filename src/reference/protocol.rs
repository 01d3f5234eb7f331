//! Wire format of the golden-path protocol: client frames in, server events out.
//!
//! Pure functions only, so the format is testable without a socket. Events are
//! built without `seq`; the connection's single writer stamps it ([`encode`]),
//! which is what makes `seq` follow the order frames hit the wire.

use std::sync::Arc;

use serde_json::{Map, Value};

/// A server event before the writer stamps its `seq`.
pub(crate) type Event = Map<String, Value>;

/// How much of a message's content the `agent_completed` result echoes.
const RESULT_ECHO_CHARS: usize = 64;

/// A parsed `user_message`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserMessage {
    pub run_id: String,
    /// Echoed as sent (usually a string; `null` when absent).
    pub thread_id: Value,
    pub content: String,
}

/// A client frame the server refuses; `run_id` when one could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub run_id: Option<String>,
}

/// Parses one client text frame. Anything but a `user_message` with a
/// non-empty string `run_id` is invalid.
pub(crate) fn parse_client_text(text: &str) -> Result<UserMessage, Invalid> {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
        return Err(Invalid { run_id: None });
    };
    let run_id = fields
        .get("run_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    match (fields.get("type").and_then(Value::as_str), run_id) {
        (Some("user_message"), Some(run_id)) => Ok(UserMessage {
            run_id,
            thread_id: fields.get("thread_id").cloned().unwrap_or(Value::Null),
            content: fields
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }),
        (_, run_id) => Err(Invalid { run_id }),
    }
}

/// The first frame of every accepted connection.
pub(crate) fn connection_established(user_id: &str, connection_id: &str) -> Event {
    let mut event = Event::new();
    event.insert("type".into(), "connection_established".into());
    event.insert("user_id".into(), user_id.into());
    event.insert("connection_id".into(), connection_id.into());
    event
}

/// An `error` event; `run_id` is `null` when the error concerns no run.
pub(crate) fn error(code: &str, run_id: Option<&str>) -> Event {
    let mut event = Event::new();
    event.insert("type".into(), "error".into());
    event.insert("code".into(), code.into());
    event.insert("run_id".into(), run_id.map_or(Value::Null, Value::from));
    event
}

/// One step of a run's event sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Started,
    Thinking { step: u32 },
    ToolExecuting,
    ToolCompleted,
    Completed,
}

/// The steps of one run, in order.
pub(crate) fn run_steps(thinking_events: u32) -> impl Iterator<Item = Step> {
    std::iter::once(Step::Started)
        .chain((1..=thinking_events).map(|step| Step::Thinking { step }))
        .chain([Step::ToolExecuting, Step::ToolCompleted, Step::Completed])
}

/// What every event of one run carries.
#[derive(Debug, Clone)]
pub(crate) struct RunContext {
    pub message: UserMessage,
    pub user_id: Arc<str>,
}

/// Builds the event for one step of a run.
pub(crate) fn run_event(run: &RunContext, step: Step) -> Event {
    let mut event = Event::new();
    let kind = match step {
        Step::Started => "agent_started",
        Step::Thinking { step } => {
            event.insert("step".into(), step.into());
            "agent_thinking"
        }
        Step::ToolExecuting | Step::ToolCompleted => {
            event.insert("tool".into(), "search".into());
            if step == Step::ToolExecuting {
                "tool_executing"
            } else {
                "tool_completed"
            }
        }
        Step::Completed => {
            let echo: String = run
                .message
                .content
                .chars()
                .take(RESULT_ECHO_CHARS)
                .collect();
            event.insert("result".into(), format!("echo: {echo}").into());
            "agent_completed"
        }
    };
    event.insert("type".into(), kind.into());
    event.insert("run_id".into(), run.message.run_id.as_str().into());
    event.insert("thread_id".into(), run.message.thread_id.clone());
    event.insert("user_id".into(), (*run.user_id).into());
    event
}

/// Stamps `seq` and serializes.
pub(crate) fn encode(mut event: Event, seq: u64) -> String {
    event.insert("seq".into(), seq.into());
    Value::Object(event).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_user_message() {
        let parsed = parse_client_text(
            r#"{"type":"user_message","run_id":"r1","thread_id":"t","content":"hi"}"#,
        )
        .unwrap();
        assert_eq!(parsed.run_id, "r1");
        assert_eq!(parsed.thread_id, Value::from("t"));
        assert_eq!(parsed.content, "hi");
    }

    #[test]
    fn refuses_garbage_keeping_the_run_id() {
        for (text, run_id) in [
            ("not json", None),
            ("[1,2]", None),
            (r#"{"type":"user_message"}"#, None),
            (r#"{"type":"user_message","run_id":""}"#, None),
            (r#"{"type":"user_message","run_id":7}"#, None),
            (r#"{"type":"nope","run_id":"r9"}"#, Some("r9")),
            (r#"{"run_id":"r8"}"#, Some("r8")),
        ] {
            let err = parse_client_text(text).unwrap_err();
            assert_eq!(err.run_id.as_deref(), run_id, "{text}");
        }
    }

    #[test]
    fn run_sequence_has_the_protocol_order() {
        let kinds: Vec<Step> = run_steps(2).collect();
        assert_eq!(
            kinds,
            [
                Step::Started,
                Step::Thinking { step: 1 },
                Step::Thinking { step: 2 },
                Step::ToolExecuting,
                Step::ToolCompleted,
                Step::Completed
            ]
        );
    }

    #[test]
    fn events_carry_identity_and_seq() {
        let run = RunContext {
            message: UserMessage {
                run_id: "r".into(),
                thread_id: Value::from("t"),
                content: "é".repeat(100),
            },
            user_id: Arc::from("alice"),
        };
        let text = encode(run_event(&run, Step::Completed), 7);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "agent_completed");
        assert_eq!(value["user_id"], "alice");
        assert_eq!(value["seq"], 7);
        assert_eq!(value["run_id"], "r");
        assert!(value["result"].as_str().unwrap().starts_with("echo: é"));
        let err: Value = serde_json::from_str(&encode(error("queue_overflow", None), 1)).unwrap();
        assert_eq!(err["run_id"], Value::Null);
    }
}
