//! Misses every connection shares against the built-in reference server with no planted
//! bug: one `expect` step that every accepted connection of its group missed the same
//! way. That server is correct by construction, so it can only be the script asking for
//! what the golden-path protocol does not send. (Against any other server such a miss may
//! be a race whose window every connection fell into: judged as usual there.)

use super::*;

/// An `expect` step every accepted connection of its group missed, each the same way.
#[derive(Debug, PartialEq)]
pub(super) struct SameMiss<'a> {
    pub group: &'a str,
    /// The step as the scenario file numbers it ([`Violation::step`]).
    pub step: &'a str,
    /// What the step wanted and what came instead, as the first connection's violation
    /// says it.
    pub expected: &'a str,
    pub seen: &'a str,
    /// The connections that missed it: every accepted one of the group, at least two.
    pub connections: usize,
}

/// The step every accepted connection of one group missed the same way, when that is
/// every violation of the run: only unmet expectations (completeness), all kept, all of
/// one group's step wanting the same thing, none a late answer, none settled by its
/// connection's end, none with unreadable records beside it (those are judged elsewhere).
/// At least two connections: one alone proves nothing shared.
pub(super) fn same_miss_everywhere<'a>(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
    kept: &'a [Violation],
) -> Option<SameMiss<'a>> {
    let total: u64 = by_oracle.values().sum();
    if total == 0
        || by_oracle.keys().any(|k| *k != OracleKind::Completeness)
        || kept.len() as u64 != total
    {
        return None;
    }
    let first = kept.first()?;
    let step = first.step.as_deref()?;
    let alike = kept.iter().all(|v| {
        v.group == first.group
            && v.step.as_deref() == Some(step)
            && v.expected == first.expected
            && v.late_ms.is_none()
            && v.ended.is_none()
            && !v.unreadable
    });
    if !alike {
        return None;
    }
    let group = plan.groups.iter().position(|g| *g == first.group)?;
    let missed: BTreeSet<u32> = kept.iter().map(|v| v.conn).collect();
    let accepted: BTreeSet<u32> = reports
        .iter()
        .filter(|r| {
            plan.conns
                .get(r.id as usize)
                .is_some_and(|c| c.group as usize == group)
                && r.attempts.iter().any(|a| a.outcome == Outcome::Accepted)
        })
        .map(|r| r.id)
        .collect();
    (missed.len() >= 2 && missed == accepted).then_some(SameMiss {
        group: &first.group,
        step,
        expected: &first.expected,
        seen: &first.seen,
        connections: missed.len(),
    })
}

/// The run's judgement when `miss` happened against the built-in reference server with
/// no planted bug: the scenario's, never the server's (`unreadable`: nothing is charged
/// to it, and `hunt` writes no repro of it).
pub(super) fn against_the_reference(miss: &SameMiss<'_>) -> Judgement {
    Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "every accepted connection of {} ({}) missed the `expect` at step {} the same way \
             (wanted {}; seen: {}) against the built-in reference server, which has no \
             planted bug: the step asks for what the golden-path protocol does not send \
             (docs/protocol.md), or gives it less time than it takes, so nothing is charged \
             to the server; check the step's kinds, their order, how many of each and its \
             `within`",
            miss.group, miss.connections, miss.step, miss.expected, miss.seen
        )),
    }
}

/// The run's judgement when every violation against the built-in reference server with no
/// planted bug is an unmet expectation none of whose answers came late (late answers keep
/// their own judgement: slowness), but not one step every connection missed alike
/// ([`against_the_reference`]): that server is correct, so the steps ask for what it does
/// not send, or give it less time than it takes (it paces a turn's events a few
/// milliseconds apart, more on a busy machine). `unreadable`: nothing is charged to it,
/// and `hunt` writes no repro. The hint names the steps missed most.
pub(super) fn unmet_against_the_reference(
    by_oracle: &BTreeMap<OracleKind, u64>,
    kept: &[Violation],
) -> Option<Judgement> {
    let total: u64 = by_oracle.values().sum();
    if total == 0
        || by_oracle.keys().any(|k| *k != OracleKind::Completeness)
        || kept.iter().any(|v| v.late_ms.is_some())
    {
        return None;
    }
    // A repro's plan lists actions, not the script's steps: there, what was expected.
    let mut steps: BTreeMap<(&str, String), u64> = BTreeMap::new();
    for v in kept {
        let place = match v.step.as_deref() {
            Some(step) => format!("step {step}"),
            None => format!("expecting {}", v.expected),
        };
        *steps.entry((v.group.as_str(), place)).or_default() += 1;
    }
    let mut most: Vec<_> = steps.into_iter().collect();
    most.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let named: Vec<String> = most
        .iter()
        .take(3)
        .map(|((group, place), n)| format!("{group} {place} ×{n}"))
        .collect();
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "{total} expectations went unmet ({}) against the built-in reference server, \
             which has no planted bug: the steps ask for what the golden-path protocol does \
             not send, or give it less time than it takes (`within` shorter than its events' \
             pacing, a few milliseconds, more on a busy machine), so nothing is charged to \
             the server; check those steps' kinds, order, counts and `within`",
            named.join(", ")
        )),
    })
}
