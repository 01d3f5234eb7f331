//! Rendering an `[[answer]]`'s message for one connection ([`AnswerRule`]).

use crate::model::path::{lookup, Tree};
use crate::model::{AnswerRule, ConnPlan, Plan};
use crate::oracle::frame::fill;
use crate::plan::draw_rng;
use crate::plan::{expand, Vars};
use serde_json::Value;
use std::collections::BTreeMap;

/// The draw site of answer rule 0 (rule `i` draws at `ANSWER_SITE - i`): far from the
/// step paths' hashes and from [`crate::plan::JITTER_SITE`].
const ANSWER_SITE: u64 = u64::MAX - 1 - (1 << 32);

/// The JSON text connection `conn` sends as its `count`-th answer (from 1) under rule
/// `index` of `plan.answers`, to `record` (the record answered), not yet framed.
/// Placeholders are expanded as a step `send`'s, with `{{run}}` = `count` and
/// `{{random}}`/`{{uuid}}` drawn from a stream of their own keyed by (seed, connection,
/// rule, count); `{{$name}}` takes the rule's own capture from `record` first, then
/// `captures` (the connection's `expect` captures). A capture the record lacks and no
/// expect took stays as written. `None` when `index` names no rule.
pub fn render_answer<J: Tree>(
    plan: &Plan,
    conn: &ConnPlan,
    index: usize,
    count: u64,
    record: &J,
    captures: &BTreeMap<String, Value>,
) -> Option<String> {
    let rule: &AnswerRule = plan.answers.get(index)?;
    let vars = Vars {
        user: conn.user,
        conn: conn.id,
        group: plan
            .groups
            .get(conn.group as usize)
            .map_or("", String::as_str),
        sub: plan
            .tokens
            .get(conn.token as usize)
            .map_or("", |t| t.sub.as_str()),
        feed: plan.feed_of_user(conn.group, conn.user),
    };
    let site = ANSWER_SITE.wrapping_sub(index as u64);
    let mut rng = draw_rng(plan.seed, conn.id, site, count);
    let mut message = expand(&rule.send, &vars, count, &mut rng);
    // The rule's own captures first, then the connection's: a name neither holds stays
    // as written through both fills, so no merged copy of the connection's is needed.
    if !rule.capture.is_empty() {
        let own: BTreeMap<String, Value> = rule
            .capture
            .iter()
            .filter_map(|c| lookup(record, &c.path).map(|v| (c.name.clone(), v.to_value())))
            .collect();
        message = fill(&message, &own);
    }
    if !captures.is_empty() {
        message = fill(&message, captures);
    }
    Some(serde_json::to_string(&message).unwrap_or_else(|_| message.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Capture, Framing};
    use serde_json::json;

    #[test]
    fn an_answer_takes_the_record_s_capture_then_the_connection_s() {
        let scenario = crate::scenario::load_str(
            r#"
name = "a"
duration = "1s"
[auth]
secret = { value = "s" }
[[group]]
name = "g"
users = 1
steps = [{ send = { type = "hi" } }]
[[answer]]
on = "ping"
capture = { nonce = "nonce" }
send = { type = "pong", nonce = "{{$nonce}}", n = "{{run:int}}", u = "u{{user}}" }
"#,
            "a.toml",
        )
        .unwrap();
        let plan = crate::plan::build(&scenario, 1);
        assert_eq!(plan.oracles.framing, Framing::Plain);
        assert_eq!(
            plan.answers[0].capture,
            vec![Capture {
                name: "nonce".into(),
                path: "nonce".into()
            }]
        );
        let record = json!({"type": "ping", "nonce": 7});
        let text = render_answer(&plan, &plan.conns[0], 0, 2, &record, &BTreeMap::new());
        let sent: Value = serde_json::from_str(&text.unwrap()).unwrap();
        assert_eq!(sent, json!({"type": "pong", "nonce": 7, "n": 2, "u": "u0"}));
        assert_eq!(
            render_answer(&plan, &plan.conns[0], 1, 1, &record, &BTreeMap::new()),
            None
        );
    }
}
