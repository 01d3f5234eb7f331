//! Late answers: expectations answered after their deadline, by how much, and whether
//! each came only after a later request of its connection (one behind).

use super::*;

#[derive(Clone, Copy)]
/// Late answers that every one came only after a later request of its connection
/// ([`one_behind`]).
pub(super) struct Behind {
    /// The longest any came after that request, in milliseconds.
    pub(super) after_ms: f64,
    /// Expectations of the deadlines they missed whose answer never came though their
    /// connection stayed open longer than those answers took: proven lost.
    pub(super) lost: u64,
}

/// `Some` when every one of the `late` answers came only after its connection's next
/// request went out ([`Violation::after_request_ms`]), and soon after it (within
/// [`BEHIND_SHARE`] of the `within` it missed): what a server that answers one
/// request behind shows, and also a slow one whose answers come just after a tight
/// loop's next request. The two differ in the last request: a slow server answers it,
/// one request behind never does. So the `lost` count, the answers to the same
/// deadlines that never came though the connection outlived the slowest late answer
/// (`unseen` of them ended sooner: [`unseen_late`]), is what tells them apart.
/// How soon after the next request, as a share of the `within` it missed, an answer must
/// come to read as one held for that request ([`one_behind`]).
pub(super) const BEHIND_SHARE: f64 = 0.2;

pub(super) fn one_behind(
    kept: &[Violation],
    late: &[&Violation],
    by_deadline: &BTreeMap<Deadline<'_>, (u64, f64)>,
    unseen: u64,
) -> Option<Behind> {
    // Each came soon after that request: one held for it answers it at once, where a slow
    // one may come any time after.
    let soon = |v: &&Violation| {
        v.after_request_ms
            .filter(|after| *after <= v.window_ms.unwrap_or_default() * BEHIND_SHARE)
    };
    let after_ms = late
        .iter()
        .map(soon)
        .try_fold(0.0_f64, |most, after| after.map(|a| most.max(a)))?;
    let unanswered = kept
        .iter()
        .filter(|v| v.oracle == OracleKind::Completeness && v.window_ms.is_some())
        .filter(|v| v.late_ms.is_none() && v.conn_end_ms.is_some())
        .filter(|v| by_deadline.contains_key(&deadline_of(v)))
        .count() as u64;
    Some(Behind {
        after_ms,
        lost: unanswered.saturating_sub(unseen),
    })
}

/// A deadline as the hint groups missed ones: the group, the step, the `within` (ms).
pub(super) type Deadline<'a> = (&'a str, Option<&'a str>, u64);

/// The deadline a violation of an `expect` missed ([`Deadline`]).
pub(super) fn deadline_of(v: &Violation) -> Deadline<'_> {
    let within = v.window_ms.unwrap_or_default().round() as u64;
    (v.group.as_str(), v.step.as_deref(), within)
}

/// The `late` answers by the deadline they missed: how many, and how long the slowest took
/// from its request (ms).
pub(super) fn late_by_deadline<'a>(late: &[&'a Violation]) -> BTreeMap<Deadline<'a>, (u64, f64)> {
    let mut by: BTreeMap<Deadline<'a>, (u64, f64)> = BTreeMap::new();
    for v in late {
        let (n, slowest) = by.entry(deadline_of(v)).or_default();
        *n += 1;
        *slowest = slowest.max(v.late_ms.unwrap_or_default());
    }
    by
}

/// How many of `kept` missed a deadline that late answers missed too (`by_deadline`,
/// [`late_by_deadline`]) with no answer seen, on a connection that ended
/// ([`Violation::conn_end_ms`]) sooner after its wait began than the slowest of those
/// answers took: a script that closed right after its last deadline ran out, say. Its
/// answer may have been on its way.
pub(super) fn unseen_late<'k>(
    kept: &'k [Violation],
    by_deadline: &BTreeMap<Deadline<'_>, (u64, f64)>,
) -> Vec<&'k Violation> {
    kept.iter()
        .filter(|v| {
            v.oracle == OracleKind::Completeness && v.late_ms.is_none() && v.window_ms.is_some()
        })
        .filter(|v| {
            let (Some((_, took)), Some(end)) = (by_deadline.get(&deadline_of(v)), v.conn_end_ms)
            else {
                return false;
            };
            // The wait began `window_ms` before the deadline ran out at `at_ms`.
            end < v.at_ms - v.window_ms.unwrap_or_default() + took
        })
        .collect()
}

/// The violations among `kept` that are answers that came whole after their `within` ran
/// out (`answered_late`): proven slow, not lost. What `hunt` sets aside rather than write
/// a repro of. (The deadlines missed the same way on a connection that ended first, which
/// the hint says apart as not proven lost, are not proven slow either: a hunt keeps them,
/// as under load a real loss on a connection that closed right after its deadline reads
/// so beside a few late answers, and its replays judge them.)
pub fn late_answers(kept: &[Violation]) -> Vec<&Violation> {
    kept.iter().filter(|v| answered_late(v)).collect()
}

/// Whether a violation is an `expect` whose `within` deadline ran out before its answer
/// came, and whose answer then came whole all the same ([`Violation::late_ms`]). One
/// whose answer never came is no such thing: a lost answer is what races cause.
pub(super) fn answered_late(v: &Violation) -> bool {
    v.oracle == OracleKind::Completeness && v.window_ms.is_some() && v.late_ms.is_some()
}

/// Deadlines shown in a hint.
pub(super) const DEADLINES_SHOWN: usize = 3;

/// The deadlines late answers missed (`by_deadline`, [`late_by_deadline`]), most missed
/// first, with the slowest answer of each:
/// `` `callers` step 3 within 300 ms ×4 (came up to 812 ms after the request), … ``: from
/// the request, as `late_ms`; the `within` counts from where the step was reached.
pub(super) fn deadlines_text(by_deadline: &BTreeMap<Deadline<'_>, (u64, f64)>) -> String {
    let mut sorted: Vec<_> = by_deadline.iter().collect();
    sorted.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    let mut shown: Vec<String> = sorted
        .iter()
        .take(DEADLINES_SHOWN)
        .map(|((group, step, within), (n, latest))| {
            let at = match step {
                Some(step) => format!("`{group}` step {step}"),
                None => format!("`{group}`"),
            };
            format!("{at} within {within} ms ×{n} (came up to {latest:.0} ms after the request)")
        })
        .collect();
    if sorted.len() > DEADLINES_SHOWN {
        shown.push(format!("{} more", sorted.len() - DEADLINES_SHOWN));
    }
    shown.join(", ")
}
