//! Steps no connection reached. The server's declared policies (`[oracles] idle_timeout`,
//! `max_lifetime`) make a close mid-script no finding: the steps the script had left are
//! excused. When those closes came before every connection reached some `expect`, what
//! that step asks of the server was never asked anywhere in the run (a `think` longer than
//! the declared idle timeout does it by design), and a clean verdict would claim a path
//! the run never exercised.

use super::*;
use crate::model::{PatternItem, Repeat};

/// The inconclusive verdict of a run in which nothing broke, the server closed connections
/// by a declared idle or lifetime policy, and some `expect` of the scenario was never
/// opened on any connection: its kinds were expected nowhere. `None` otherwise.
pub(super) fn cut_before_reaching(plan: &Plan, reports: &[ConnReport]) -> Option<Judgement> {
    let cut = reports
        .iter()
        .flat_map(|r| &r.attempts)
        .filter(|a| a.is_closed_idle() || a.is_closed_at_lifetime())
        .count();
    if cut == 0 {
        return None;
    }
    let mut opened: BTreeMap<&str, u64> = BTreeMap::new();
    for r in reports {
        for (kind, tally) in &r.counters.expect.events {
            *opened.entry(kind.as_str()).or_default() += tally.expected;
        }
    }
    let unreached: BTreeSet<String> = plan
        .scripts
        .iter()
        .enumerate()
        .flat_map(|(g, script)| {
            crate::model::deep_steps(script).filter_map(move |step| match step {
                Step::Expect(e) if !e.absent => Some((g, e)),
                _ => None,
            })
        })
        .filter(|(_, e)| never_opened(&e.pattern, &opened))
        .map(|(g, e)| {
            let group = plan.groups.get(g).map_or("", String::as_str);
            format!("`expect {}` of group `{group}`", pattern_words(&e.pattern))
        })
        .collect();
    let first = unreached.iter().next()?;
    let more = match unreached.len() {
        1 => String::new(),
        n => format!(
            " and {} more",
            crate::model::words::plural(n as u64 - 1, "step")
        ),
    };
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!(
            "nothing broke, but no connection reached {first}{more}: the server's declared \
             idle or lifetime policy closed {} before {}, so what {} of the \
             server was never asked and this run proves nothing about it. Keep the script's \
             pauses under the declared timeout, or keep the connection busy through them",
            crate::model::words::plural(cut as u64, "connection"),
            if unreached.len() == 1 { "it" } else { "them" },
            if unreached.len() == 1 {
                "it asks"
            } else {
                "they ask"
            },
        )),
    })
}

/// Whether no expectation of this pattern was opened in the run: each kind it requires
/// was expected nowhere. A pattern of optional kinds only says nothing either way.
fn never_opened(pattern: &[PatternItem], opened: &BTreeMap<&str, u64>) -> bool {
    let mut required = pattern
        .iter()
        .filter(|i| matches!(i.repeat, Repeat::One | Repeat::OneOrMore))
        .peekable();
    required.peek().is_some()
        && required.all(|i| opened.get(i.event.as_str()).copied().unwrap_or(0) == 0)
}

/// A pattern as the scenario writes it: `started thinking+ done`.
fn pattern_words(pattern: &[PatternItem]) -> String {
    pattern
        .iter()
        .map(|i| format!("{}{}", i.event, i.repeat.mark()))
        .collect::<Vec<_>>()
        .join(" ")
}
