//! Whether a scenario's groups can finish within its `duration`: a run whose plan cannot
//! always ends incomplete, which `validate` says before any run.

use super::arrival;
use crate::model::{Scenario, Step};
use std::time::Duration;

/// A group that cannot finish within its scenario's `duration` ([`cannot_finish`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Late<'s> {
    /// The group's name.
    pub group: &'s str,
    /// When its last connection starts (jitter aside).
    pub last_start: Duration,
    /// The least time its script takes: its thinks, pauses, reconnect delays and paced
    /// loops at their shortest ([`least_time`]).
    pub script: Duration,
}

/// The groups of `scenario` that cannot finish within its `duration`: the last connection
/// starts at or after it ends, or starts and then needs longer than what is left (its
/// script's [`least_time`]). The run of such a scenario always ends incomplete, which
/// `validate` says before any run.
pub fn cannot_finish(scenario: &Scenario) -> Vec<Late<'_>> {
    scenario
        .groups
        .iter()
        .filter_map(|g| {
            let n = g.users.saturating_mul(g.connections_per_user);
            let last_start = arrival::last_offset(&g.arrival, n);
            let script = least_time(&g.steps);
            let late = last_start >= scenario.duration
                || last_start.saturating_add(script) > scenario.duration;
            (n > 0 && late).then_some(Late {
                group: g.name.as_str(),
                last_start,
                script,
            })
        })
        .collect()
}

/// The least time `steps` can take: each `think`, `pause_reads`, `reconnect` delay and
/// `abort_handshake` wait at its distribution's least
/// ([`Dist::least`](crate::model::Dist::least)), a `repeat` its iterations' (with `every`,
/// the schedule's), an answer arriving at once.
pub fn least_time(steps: &[Step]) -> Duration {
    steps.iter().fold(Duration::ZERO, |total, step| {
        let this = match step {
            Step::Think { dist } | Step::PauseReads { dist } => dist.least(),
            Step::Reconnect { after, .. } | Step::AbortHandshake { after, .. } => after.least(),
            Step::Repeat {
                times,
                steps,
                every,
            } => {
                let body = least_time(steps);
                match every {
                    Some(every) => every
                        .saturating_mul(times.saturating_sub(1))
                        .saturating_add(body),
                    None => body.saturating_mul(*times),
                }
            }
            _ => Duration::ZERO,
        };
        total.saturating_add(this)
    })
}
