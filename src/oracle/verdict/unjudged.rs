//! Sends nothing judges: a `send` with no `expect` (or `expect_none`) after it in its
//! group's script. What the server does with such a message (answers it, drops it, sends
//! it to the wrong user) reaches no oracle that needs an answer to exist: a server that
//! silently drops it looks exactly like one that serves it. A clean verdict says so, or
//! it would claim more than the run checked (ActionCable's typeless broadcasts, a
//! fire-and-forget command: rails/rails #25381 drops the command, and a script that only
//! sends it reads clean on the buggy server and the fixed one alike).

use crate::model::{Counters, Plan, Step, StepPlace};

/// At most this many sends are named in the note; the rest are counted.
const NAMED: usize = 4;

/// Where a group's script sends with no `expect` after it, as 1-based step paths
/// (`"4"`, `"2.1"` for the first step inside the repeat at step 2), in script order. A
/// loop's body is read once: an `expect` later in the body, or after the loop, follows a
/// send; one earlier in the body follows it on every iteration but the last, which is
/// not counted against it (the loop is judged). A `reconnect` or `close` ends what an
/// `expect` after it can judge: it reads another connection, or none.
pub(super) fn sends_without_expect(script: &[Step]) -> Vec<String> {
    unjudged_paths(script)
        .iter()
        .map(|path| crate::model::step_path_text(path))
        .collect()
}

/// `sends_without_expect` as the places a running connection's cursor reports
/// ([`StepPlace`]): what it checks its sends against, to count what came after them.
pub fn unjudged_places(script: &[Step]) -> Vec<StepPlace> {
    unjudged_paths(script)
        .iter()
        .map(|path| StepPlace::of(path))
        .filter(|place| *place != StepPlace::NONE)
        .collect()
}

/// [`sends_without_expect`] as index paths (`[2, 1]`).
fn unjudged_paths(script: &[Step]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    walk(script, &mut Vec::new(), false, &mut out);
    out
}

fn walk(steps: &[Step], path: &mut Vec<usize>, judged_after: bool, out: &mut Vec<Vec<usize>>) {
    // Whether an `expect` of this connection comes after each step: read back to front,
    // a `reconnect` or `close` ends what an `expect` after it can judge.
    let mut followed = vec![false; steps.len()];
    let mut judged = judged_after;
    for (i, step) in steps.iter().enumerate().rev() {
        followed[i] = judged;
        if ends_connection(step) {
            judged = false;
        } else if expects(step) {
            judged = true;
        }
    }
    for ((i, step), followed) in steps.iter().enumerate().zip(followed) {
        path.push(i + 1);
        match step {
            Step::Send { .. } | Step::SendText { .. } | Step::SendBinary { .. } if !followed => {
                out.push(path.clone());
            }
            Step::Repeat { steps: body, .. } => {
                walk(body, path, followed || body.iter().any(expects), out);
            }
            _ => {}
        }
        path.pop();
    }
}

/// Whether `step` ends the connection the steps before it used.
fn ends_connection(step: &Step) -> bool {
    matches!(step, Step::Reconnect { .. } | Step::Close { .. })
}

/// Whether `step` is or holds an expectation.
fn expects(step: &Step) -> bool {
    crate::model::deep_steps(std::slice::from_ref(step)).any(|s| matches!(s, Step::Expect(_)))
}

/// The note of a clean run (or a hunt that found nothing) whose scripts send messages no
/// `expect` follows, naming the first `NAMED` as `` `group` step 2.1 ``; `None` when every
/// send is followed by one.
pub fn unjudged_note(plan: &Plan) -> Option<String> {
    unjudged_note_of(script_groups(plan))
}

/// [`unjudged_note`] for a run whose `counters` say what came after each connection's
/// last unjudged send ([`Counters::unjudged_senders`]): the note, then whether anything
/// did ([`after_unjudged_note`]).
pub fn unjudged_run_note(plan: &Plan, counters: &Counters) -> Option<String> {
    let note = unjudged_note(plan)?;
    Some(match after_unjudged_note(counters) {
        Some(after) => format!("{note}; {after}"),
        None => note,
    })
}

/// What came after the connections' last unjudged sends, as `counters` (a run's, or a
/// hunt's rounds' added up) count them; `None` when no connection made one. Nothing on
/// any connection is what a server that drops such sends shows (or one that never
/// answers them: the run cannot tell, an `expect` can); something on some and nothing on
/// others is connections of one script answered differently.
pub fn after_unjudged_note(counters: &Counters) -> Option<String> {
    let sent = counters.unjudged_senders;
    if sent == 0 {
        return None;
    }
    let silent = counters.unjudged_unanswered;
    let frames = crate::model::words::plural(counters.after_unjudged_frames, "frame");
    let conns = crate::model::words::plural(sent, "connection");
    Some(if silent >= sent {
        format!(
            "after the last such send, nothing more came on any of the {conns} that made it \
             (what a server that drops it shows, as one that never answers it does)"
        )
    } else if silent == 0 {
        format!(
            "after the last such send, every one of the {conns} that made it received more \
             ({frames}, read by no `expect`)"
        )
    } else {
        format!(
            "after the last such send, nothing more came on {silent} of the {conns} that \
             made it, while the others received {frames}: connections of one script were \
             answered differently, which only an `expect` can judge"
        )
    })
}

/// The first send [`unjudged_note_of`] names: its group's index among `scripts` and its
/// 1-based step path (`[2, 1]`), for `validate` to say where it is written.
pub fn first_unjudged<'a>(
    scripts: impl IntoIterator<Item = &'a [Step]>,
) -> Option<(usize, Vec<usize>)> {
    scripts.into_iter().enumerate().find_map(|(group, script)| {
        unjudged_paths(script)
            .into_iter()
            .next()
            .map(|path| (group, path))
    })
}

/// The sends no `expect` follows, as a note names them (`` `group` step 2.1 ``, the
/// first [`NAMED`], then how many more), and how many there are; `None` when there are
/// none.
fn unjudged_sites<'a>(
    groups: impl IntoIterator<Item = (&'a str, &'a [Step])>,
) -> Option<(String, usize)> {
    let mut sites = Vec::new();
    for (name, script) in groups {
        for step in sends_without_expect(script) {
            sites.push(format!("`{name}` step {step}"));
        }
    }
    let total = sites.len();
    if total == 0 {
        return None;
    }
    sites.truncate(NAMED);
    let mut listed = sites.join(", ");
    if total > NAMED {
        listed.push_str(&format!(" and {} more", total - NAMED));
    }
    Some((listed, total))
}

/// The hint of a run that would otherwise be clean but in which nothing at all came after
/// a connection's last unjudged send, on some connection ([`Counters::unjudged_unanswered`]):
/// what a server that drops the send shows, and what one that owes no answer to it shows
/// too. The run cannot tell them apart, so it is no clean run (rails/rails #25381: the
/// dropped ActionCable command read clean). `None` when every connection that made such a
/// send received more after it, or none made one.
pub fn silent_after_unjudged(plan: &Plan, counters: &Counters) -> Option<String> {
    let (sent, silent) = (counters.unjudged_senders, counters.unjudged_unanswered);
    if silent == 0 {
        return None;
    }
    let (listed, total) = unjudged_sites(script_groups(plan))?;
    let (after, it, answer) = if total > 1 {
        (
            format!("the last of the sends at {listed}, none of which an `expect` follows"),
            "them",
            "`expect`s for the answers they should get",
        )
    } else {
        (
            format!("the send at {listed}, which no `expect` follows"),
            "it",
            "an `expect` for the answer it should get",
        )
    };
    let conns = crate::model::words::plural(sent, "connection");
    let (on, others) = if silent >= sent {
        (format!("any of the {conns}"), String::new())
    } else {
        (
            format!("{silent} of the {conns}"),
            format!(
                " (the others received {})",
                crate::model::words::plural(counters.after_unjudged_frames, "frame")
            ),
        )
    };
    Some(format!(
        "after {after}, nothing more came on {on} that made {it}{others}: a server that drops {it} shows exactly that, and so \
         does one that owes no answer, so the run cannot say clean. Add {answer}, or an \
         `expect_none` after {it} if the server owes none"
    ))
}

/// A plan's scripts with their groups' names.
fn script_groups(plan: &Plan) -> impl Iterator<Item = (&str, &[Step])> {
    plan.scripts.iter().enumerate().map(|(group, script)| {
        let name = plan.groups.get(group).map_or("?", String::as_str);
        (name, script.as_slice())
    })
}

/// [`unjudged_note`] from (group name, script) pairs: a scenario's groups, before any plan
/// (`validate`).
pub fn unjudged_note_of<'a>(
    groups: impl IntoIterator<Item = (&'a str, &'a [Step])>,
) -> Option<String> {
    let (listed, total) = unjudged_sites(groups)?;
    let (send, them, answer) = if total > 1 {
        ("sends", "them", "`expect`s for the answers they should get")
    } else {
        ("send", "it", "an `expect` for the answer it should get")
    };
    Some(format!(
        "what the server does with the {send} at {listed} is not judged: no `expect` follows \
         {them} (a server that drops {them} reads the same; add {answer})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of one scenario with these groups (name, steps as TOML).
    fn plan_of(groups: &[(&str, &str)]) -> Plan {
        let mut text = String::from("name = \"u\"\nduration = \"1s\"\n");
        for (name, steps) in groups {
            text.push_str(&format!(
                "[[group]]\nname = \"{name}\"\nusers = 1\nsteps = {steps}\n"
            ));
        }
        let scenario = crate::scenario::load_str(&text, "u.toml").expect("the scenario loads");
        crate::plan::build(&scenario, 1)
    }

    fn unjudged(steps: &str) -> Vec<String> {
        let plan = plan_of(&[("g", steps)]);
        sends_without_expect(plan.scripts.first().expect("one script"))
    }

    #[test]
    fn a_send_is_judged_by_any_expect_after_it_in_script_order() {
        // ActionCable's confirm race as first written: the command after the
        // confirmation is sent and never answered by any step.
        let cable = r#"[
            { expect = "welcome", within = "1s" },
            { send = { command = "subscribe" } },
            { expect = "confirm_subscription", within = "1s" },
            { send = { command = "message" } },
            { think = "10ms" },
            { close = 1000 },
        ]"#;
        assert_eq!(unjudged(cable), ["4"]);
        let request_reply = r#"[{ repeat = 3, steps = [
            { send = { type = "q" } }, { expect = "a", within = "1s" } ] }]"#;
        assert!(unjudged(request_reply).is_empty());
        // An expect in a later loop, or earlier in the send's own loop, follows it.
        let later_loop = r#"[{ send = { type = "q" } },
            { repeat = 2, steps = [{ expect = "a", within = "1s" }] }]"#;
        assert!(unjudged(later_loop).is_empty());
        let before_in_loop = r#"[{ repeat = 2, steps = [
            { expect = "a", within = "1s" }, { send = { type = "q" } } ] }]"#;
        assert!(unjudged(before_in_loop).is_empty());
        let absent = r#"[{ send = { type = "q" } }, { expect_none = "a", within = "1s" }]"#;
        assert!(unjudged(absent).is_empty());
        // After a reconnect, an expect reads the new connection, not the send's.
        let reconnected = r#"[{ send = { type = "q" } }, { reconnect = { after = "1ms" } },
            { expect = "a", within = "1s" }]"#;
        assert_eq!(unjudged(reconnected), ["1"]);
        let looped_reconnect = r#"[{ repeat = 2, steps = [{ send = { type = "q" } },
            { reconnect = { after = "1ms" } }] }, { expect = "a", within = "1s" }]"#;
        assert_eq!(unjudged(looped_reconnect), ["1.1"]);
    }

    #[test]
    fn sends_in_loops_without_an_expect_are_named_by_their_nested_step() {
        // Flood: the echoes are timed, never required.
        let flood = r#"[{ think = "1ms" }, { repeat = 5, steps = [
            { send = { type = "echo", m = "{{marker}}" } } ] }]"#;
        assert_eq!(unjudged(flood), ["2.1"]);
        let nested = r#"[{ repeat = 2, steps = [
            { repeat = 2, steps = [{ send_text = "ping" }] },
            { send_binary = "AAEC" } ] }, { close = 1000 }]"#;
        assert_eq!(unjudged(nested), ["1.1.1", "1.2"]);
        assert!(unjudged(r#"[{ close = 1000 }]"#).is_empty());
    }

    #[test]
    fn the_note_names_the_first_sends_by_group_and_counts_the_rest() {
        let judged = r#"[{ send = { type = "q" } }, { expect = "a", within = "1s" }]"#;
        assert_eq!(unjudged_note(&plan_of(&[("ok", judged)])), None);
        let one = unjudged_note(&plan_of(&[
            ("ok", judged),
            ("chat", r#"[{ send = { c = 1 } }]"#),
        ]))
        .expect("one unjudged send");
        assert!(
            one.contains("the send at `chat` step 1 is not judged: no `expect` follows it"),
            "{one}"
        );
        assert!(one.contains("drops it"), "{one}");
        let six = r#"[{ send = { c = 1 } }, { send = { c = 2 } }, { send = { c = 3 } },
            { send = { c = 4 } }, { send = { c = 5 } }]"#;
        let many = unjudged_note(&plan_of(&[("a", six), ("b", r#"[{ send = { c = 1 } }]"#)]))
            .expect("six unjudged sends");
        assert!(
            many.contains(
                "the sends at `a` step 1, `a` step 2, `a` step 3, `a` step 4 and 2 more is not"
            ),
            "{many}"
        );
        assert!(
            many.contains(
                "drops them reads the same; add `expect`s for the answers they should get)"
            ),
            "{many}"
        );
    }
}
