//! Whether a scenario's groups can finish within its `duration` (a run whose plan cannot
//! always ends incomplete), and before their tokens expire (a server that enforces `exp`
//! then closes them mid-script): `validate` says both before any run.

use super::arrival;
use crate::model::{token_lifetime, Scenario, Step};
use std::time::Duration;

/// A group that cannot finish within its scenario's `duration` ([`cannot_finish`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Late<'s> {
    /// The group's index in the scenario.
    pub index: usize,
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
        .enumerate()
        .filter_map(|(index, g)| {
            let n = g.users.saturating_mul(g.connections_per_user);
            let last_start = arrival::last_offset(&g.arrival, n);
            let script = least_time(&g.steps);
            let late = last_start >= scenario.duration
                || last_start.saturating_add(script) > scenario.duration;
            (n > 0 && late).then_some(Late {
                index,
                group: g.name.as_str(),
                last_start,
                script,
            })
        })
        .collect()
}

/// A `think` that always outlasts the scenario's declared
/// `[oracles] idle_timeout` with steps after it ([`thinks_past_idle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleThink<'s> {
    /// The group's index in the scenario and its name.
    pub group: (usize, &'s str),
    /// Where the step is written: 1-based indices, one per nested `repeat` (`[2, 1]`).
    pub path: Vec<usize>,
    /// The least time it takes ([`crate::model::Dist::least`]), with the thinks right
    /// before it.
    pub least: Duration,
    /// The declared idle timeout.
    pub idle_timeout: Duration,
}

/// The `think` steps of `scenario` that always last at least its
/// declared `[oracles] idle_timeout` and have a step after them (a later one, or the next
/// turn of a loop around them): a server closing idle connections by that policy closes
/// each connection there, its later steps never run, and the run reads inconclusive.
/// None without the declaration. `validate` says so before any run.
pub fn thinks_past_idle(scenario: &Scenario) -> Vec<IdleThink<'_>> {
    let Some(idle_timeout) = scenario.oracles.idle_timeout else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (g, group) in scenario.groups.iter().enumerate() {
        let mut path = Vec::new();
        let mut each = |path: &[usize], least: Duration| {
            found.push(IdleThink {
                group: (g, group.name.as_str()),
                path: path.to_vec(),
                least,
                idle_timeout,
            });
        };
        long_thinks(&group.steps, false, idle_timeout, &mut path, &mut each);
    }
    found
}

/// [`thinks_past_idle`] within `steps`, written at `path`; `followed`: whether a step
/// comes after the list's last one. Thinks in a row count together (two of 1.5 s are one
/// silence of 3 s), reported at the last of them.
fn long_thinks(
    steps: &[Step],
    followed: bool,
    idle_timeout: Duration,
    path: &mut Vec<usize>,
    each: &mut dyn FnMut(&[usize], Duration),
) {
    let mut silent = Duration::ZERO;
    for (i, step) in steps.iter().enumerate() {
        path.push(i + 1);
        let after = followed || i + 1 < steps.len();
        match step {
            // Not `pause_reads`: the server may go on sending while the client does not
            // read, and the connection is then not idle.
            Step::Think { dist } => {
                silent = silent.saturating_add(dist.least());
                let next_thinks = matches!(steps.get(i + 1), Some(Step::Think { .. }));
                if after && !next_thinks && silent >= idle_timeout {
                    each(path, silent);
                }
            }
            Step::Repeat { times, steps, .. } => {
                long_thinks(steps, after || *times > 1, idle_timeout, path, each);
            }
            _ => {}
        }
        if !matches!(step, Step::Think { .. }) {
            silent = Duration::ZERO;
        }
        path.pop();
    }
}

/// How much of its `ttl` a minted token may have lost by the time the load starts: its
/// `iat` is the whole second the minting began in (`exp = iat + ttl`), up to a second
/// before it; a script that fits within `ttl` but not within this less was CLEAN or
/// inconclusive by where in its second the run started.
pub const LEAST_LIFETIME_LOSS: Duration = Duration::from_secs(1);

/// A group whose tokens expire before its script can end ([`expiring`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiring<'s> {
    /// The group's index in the scenario.
    pub index: usize,
    /// The group's name.
    pub group: &'s str,
    /// `[auth] ttl` in whole seconds ([`token_lifetime`]).
    pub ttl: Duration,
    /// How soon after the run starts its tokens may expire: they are minted then with
    /// `iat` the second it began (JWT times are whole seconds), so they live between `ttl`
    /// less a second and `ttl` ([`LEAST_LIFETIME_LOSS`]).
    pub lives: Duration,
    /// When its last connection starts (jitter aside).
    pub last_start: Duration,
    /// The least time its script takes ([`least_time`]).
    pub script: Duration,
    /// When that connection's script ends at the earliest, or the run's `duration` when
    /// that comes first (the run stops there): what the tokens must outlive.
    pub ends: Duration,
}

/// The groups of `scenario` whose tokens expire before their scripts can end: minted when
/// the run starts, they live `ttl` less up to a second ([`LEAST_LIFETIME_LOSS`]), while the group's last connection starts at its last
/// arrival and runs at least its script's [`least_time`] (within `duration`). A server
/// that enforces `exp` then closes those connections or refuses their reconnects
/// mid-script, and the run proves nothing about what was left. Only tokens stampede mints
/// count: not a forged group's (their times are the bad-token catalogue's), nor `[auth]
/// tokens` (their `exp` is their issuer's). Linear in the steps: a `repeat` is multiplied,
/// never expanded; a script whose least time is nothing (it waits only on the server)
/// says nothing.
pub fn expiring(scenario: &Scenario) -> Vec<Expiring<'_>> {
    if scenario.auth.tokens.is_some() {
        return Vec::new();
    }
    let ttl = token_lifetime(scenario.auth.ttl);
    let lives = ttl.saturating_sub(LEAST_LIFETIME_LOSS);
    scenario
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.forge.is_none())
        .filter_map(|(index, g)| {
            let n = g.users.saturating_mul(g.connections_per_user);
            let last_start = arrival::last_offset(&g.arrival, n);
            let script = least_time(&g.steps);
            let ends = last_start.saturating_add(script).min(scenario.duration);
            (n > 0 && ends > lives).then_some(Expiring {
                index,
                group: g.name.as_str(),
                ttl,
                lives,
                last_start,
                script,
                ends,
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
