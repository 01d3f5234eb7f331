//! Whether a find needs its timing: the find's plan replayed with the timing taken out of
//! it, every send (and reconnect) [`GAP`] after the step before it and the connections
//! started [`GAP`] apart, one after another, barriers and rendezvous left open.
//!
//! A race needs its timing: spaced out, its window (a few milliseconds to tens of them)
//! is never hit and what it broke holds. A find whose expectation breaks again spaced out
//! has no race window under [`GAP`]: a script the server turns away every time (a
//! channel never joined, a destination nothing subscribes to), a server that always fails
//! there, or one that takes longer than [`GAP`] to recover (a cleanup that lags). Both
//! readings are worth knowing; only the first is a race of milliseconds to shrink. The
//! idea is the "does it still fail sequentially?" check of linearizability testers (a
//! history that fails with no overlap has no concurrency to blame), applied to a whole
//! recorded plan.

use crate::model::{Action, Dist, Plan, Step};
use std::time::Duration;

/// How far apart the spaced plan puts its sends, reconnects and connection starts: well
/// past the windows races are found in (the planted ones are 3–50 ms wide), and short
/// enough for a plan of a few dozen connections to be replayed in seconds.
pub const GAP: Duration = Duration::from_millis(250);

/// The most the spacing may add to a plan's duration; a longer one is not checked (a
/// loop of thousands of sends spaced out would take minutes).
pub const LONGEST: Duration = Duration::from_secs(15);

/// What the timing check said of a find ([`crate::hunt::Found::timing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Not checked, or not told: no replay confirmed the find, it reproduced too rarely to
    /// tell ([`runs_to_tell`]), the budget had no room left, Ctrl-C, the spacing would
    /// have taken longer than [`LONGEST`], the plan is paced (an open model keeps its
    /// schedule), or a spaced replay broke another expectation or could not judge.
    Unchecked,
    /// Spaced out, the plan ran clean in every one of `runs` replays: it needs its timing.
    Needed { runs: u32 },
    /// Spaced out, the same expectation broke: no race window under [`GAP`] causes it.
    /// `every_time`: the find had reproduced in every confirming replay.
    NotNeeded { every_time: bool },
}

impl Timing {
    /// The JSON word for it: `"unchecked"`, `"needed"`, `"not_needed"`.
    pub fn name(self) -> &'static str {
        match self {
            Timing::Unchecked => "unchecked",
            Timing::Needed { .. } => "needed",
            Timing::NotNeeded { .. } => "not_needed",
        }
    }
}

/// The chance of every spaced replay running clean by luck, for a fault that needs no
/// timing, that the check accepts.
const LUCK: f64 = 0.05;

/// The most spaced replays a check runs.
const MOST_RUNS: u32 = 5;

/// How many spaced replays tell a find that reproduced in `reproduced` of `runs`
/// confirming replays: as many as leave a chance under [`LUCK`] that a fault breaking at
/// its rate whatever the timing ran clean in all of them (`(1 - rate)^k`), at least 2; the
/// rate taken as `reproduced / (runs + 1)`, so that a few replays that all broke are not
/// read as a certainty (10/10: 2 spaced replays, 2/2: 3). `None` when that takes more
/// than [`MOST_RUNS`] (a rate under about 45%) or nothing was confirmed.
pub fn runs_to_tell(reproduced: u32, runs: u32) -> Option<u32> {
    if reproduced == 0 || runs == 0 {
        return None;
    }
    let clean = 1.0 - f64::from(reproduced.min(runs)) / (f64::from(runs) + 1.0);
    let needed = (LUCK.ln() / clean.ln()).ceil();
    (needed <= f64::from(MOST_RUNS)).then(|| (needed as u32).max(2))
}

/// `plan` with its timing taken out (see the module's docs), its duration grown by what
/// the spacing adds; `None` when that would be over [`LONGEST`] or the plan is paced.
pub fn spaced(plan: &Plan) -> Option<Plan> {
    if plan.scripts.iter().any(|s| paced(s))
        || plan
            .conns
            .iter()
            .any(|c| c.actions.iter().any(|a| matches!(a, Action::PaceAt(_))))
    {
        return None;
    }
    let mut out = plan.clone();
    let sends: Vec<u64> = out.scripts.iter().map(|s| sends_in(s)).collect();
    for script in &mut out.scripts {
        space_steps(script);
    }
    // One after another, in the order they were to start.
    let mut order: Vec<usize> = (0..out.conns.len()).collect();
    order.sort_by_key(|&i| (out.conns[i].start, out.conns[i].id));
    let mut added = Duration::ZERO;
    for (rank, &i) in order.iter().enumerate() {
        let conn = out.conns.get_mut(i)?;
        let lead = GAP.checked_mul(u32::try_from(rank).ok()?)?;
        conn.start = conn.start.checked_add(lead)?;
        conn.barrier = None;
        let n = if conn.is_scripted() {
            sends.get(conn.group as usize).copied().unwrap_or(0)
        } else {
            space_actions(&mut conn.actions)
        };
        let spacing = GAP.checked_mul(u32::try_from(n).ok()?)?;
        added = added.max(lead.checked_add(spacing)?);
        if added > LONGEST {
            return None;
        }
    }
    // Every meeting releases its first arrival at once: nothing holds a send back for
    // another connection's.
    for point in &mut out.rendezvous {
        point.count = 1;
    }
    out.duration = out.duration.checked_add(added)?;
    Some(out)
}

/// Whether `steps` hold a paced loop (`repeat` with `every`), at any depth.
fn paced(steps: &[Step]) -> bool {
    steps.iter().any(|s| match s {
        Step::Repeat { every, steps, .. } => every.is_some() || paced(steps),
        _ => false,
    })
}

/// The sends and reconnects `steps` make, loops counted out (saturating): what the
/// spacing adds [`GAP`] for, each.
fn sends_in(steps: &[Step]) -> u64 {
    steps.iter().fold(0u64, |n, s| {
        n.saturating_add(match s {
            Step::Send { .. }
            | Step::SendText { .. }
            | Step::SendBinary { .. }
            | Step::Reconnect { .. } => 1,
            Step::Repeat { times, steps, .. } => sends_in(steps).saturating_mul(u64::from(*times)),
            _ => 0,
        })
    })
}

/// A pause of [`GAP`] before every send of `steps` (before its rendezvous, which must
/// stay right before the send), and [`GAP`] more before every reconnect, at any depth.
fn space_steps(steps: &mut Vec<Step>) {
    let pause = || Step::Think {
        dist: Dist::Fixed { value: GAP },
    };
    let mut out = Vec::with_capacity(steps.len() * 2);
    let mut after_rendezvous = false;
    for mut step in steps.drain(..) {
        match &mut step {
            Step::Send { .. } | Step::SendText { .. } | Step::SendBinary { .. }
                if !after_rendezvous =>
            {
                out.push(pause())
            }
            Step::Rendezvous { .. } => out.push(pause()),
            Step::Reconnect { after, .. } => *after = later(after),
            Step::Repeat { steps, .. } => space_steps(steps),
            _ => {}
        }
        after_rendezvous = matches!(step, Step::Rendezvous { .. });
        out.push(step);
    }
    *steps = out;
}

/// [`space_steps`] for a connection's explicit actions (a shrunk repro's); returns how
/// many sends and reconnects it spaced.
fn space_actions(actions: &mut Vec<Action>) -> u64 {
    let mut out = Vec::with_capacity(actions.len() * 2);
    let mut spaced = 0u64;
    let mut after_rendezvous = false;
    for mut action in actions.drain(..) {
        match &mut action {
            Action::Send { .. } | Action::SendText { .. } | Action::SendBinary { .. } => {
                spaced += 1;
                if !after_rendezvous {
                    out.push(Action::Think(GAP));
                }
            }
            Action::Rendezvous { .. } => out.push(Action::Think(GAP)),
            Action::Reconnect { after, .. } => {
                spaced += 1;
                *after = after.saturating_add(GAP);
            }
            _ => {}
        }
        after_rendezvous = matches!(action, Action::Rendezvous { .. });
        out.push(action);
    }
    *actions = out;
    spaced
}

/// `d` drawn [`GAP`] later.
fn later(d: &Dist) -> Dist {
    match *d {
        Dist::Fixed { value } => Dist::Fixed {
            value: value.saturating_add(GAP),
        },
        Dist::Uniform { low, high } => Dist::Uniform {
            low: low.saturating_add(GAP),
            high: high.saturating_add(GAP),
        },
        Dist::Normal { mean, sd } => Dist::Normal {
            mean: mean.saturating_add(GAP),
            sd,
        },
        // An exponential cannot be shifted and stay one: its mean, later.
        Dist::Exp { mean } => Dist::Fixed {
            value: mean.saturating_add(GAP),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(steps: &str, users: u32) -> Plan {
        let text = format!(
            "name = \"t\"\nduration = \"2s\"\n[[group]]\nname = \"g\"\nusers = {users}\n\
             arrival = \"burst\"\nsteps = [\n{steps}\n]\n"
        );
        crate::plan::build(&crate::scenario::load_str(&text, "t.toml").unwrap(), 1)
    }

    fn kinds(steps: &[Step]) -> Vec<&'static str> {
        steps
            .iter()
            .map(|s| match s {
                Step::Send { .. } => "send",
                Step::Expect(_) => "expect",
                Step::Think { .. } => "think",
                Step::Rendezvous { .. } => "rendezvous",
                Step::Reconnect { .. } => "reconnect",
                Step::Repeat { .. } => "repeat",
                _ => "other",
            })
            .collect()
    }

    /// Every send waits [`GAP`] after the step before it (a rendezvous's send before the
    /// rendezvous, which stays right before it), loops included; a reconnect comes
    /// [`GAP`] later; the connections start [`GAP`] apart in their order; every meeting
    /// releases its first arrival; the duration grows by the most any connection's
    /// spacing adds.
    #[test]
    fn a_spaced_plan_waits_before_every_send_and_starts_one_connection_at_a_time() {
        let plan = plan_of(
            r#"{ send = { type = "a" } },
               { expect = "b" },
               { repeat = 3, steps = [{ rendezvous = { count = "all", timeout = "1s" } }, { send = { type = "c" } }] },
               { close = 1000 },
               { reconnect = { after = "10ms" } },
               { send = { type = "d" } },"#,
            3,
        );
        let out = spaced(&plan).unwrap();
        let script = &out.scripts[0];
        assert_eq!(
            kinds(script),
            [
                "think",
                "send",
                "expect",
                "repeat",
                "other",
                "reconnect",
                "think",
                "send"
            ]
        );
        let Step::Repeat { steps, .. } = &script[3] else {
            panic!("{script:?}")
        };
        assert_eq!(kinds(steps), ["think", "rendezvous", "send"]);
        let Step::Reconnect { after, .. } = &script[5] else {
            panic!("{script:?}")
        };
        assert_eq!(
            *after,
            Dist::Fixed {
                value: GAP + Duration::from_millis(10)
            }
        );
        let starts: Vec<Duration> = out.conns.iter().map(|c| c.start).collect();
        assert_eq!(starts, [Duration::ZERO, GAP, GAP * 2]);
        assert!(out.rendezvous.iter().all(|r| r.count == 1));
        // Sends and reconnects: 1 + 3 + 1 + 1; the last connection starts 2 gaps late.
        assert_eq!(out.duration, plan.duration + GAP * (6 + 2));
    }

    /// A plan whose spacing would take longer than [`LONGEST`], and a paced one (an open
    /// model keeps its schedule), are not checked.
    #[test]
    fn long_and_paced_plans_are_not_spaced() {
        let long = plan_of(
            r#"{ repeat = 100, steps = [{ send = { type = "a" } }] },"#,
            1,
        );
        assert!(spaced(&long).is_none());
        let paced = plan_of(
            r#"{ repeat = 2, every = "10ms", steps = [{ send = { type = "a" } }] },"#,
            1,
        );
        assert!(spaced(&paced).is_none());
        let short = plan_of(
            r#"{ repeat = 10, steps = [{ send = { type = "a" } }] },"#,
            1,
        );
        assert!(spaced(&short).is_some());
    }

    /// A find that broke every time is told by two spaced replays; a rarer one by as many
    /// as make a clean streak by luck unlikely, and not at all under about 45%.
    #[test]
    fn rarer_finds_take_more_spaced_replays_to_tell() {
        assert_eq!(runs_to_tell(10, 10), Some(2));
        assert_eq!(runs_to_tell(2, 2), Some(3));
        assert_eq!(runs_to_tell(8, 10), Some(3));
        assert_eq!(runs_to_tell(5, 10), Some(5));
        assert_eq!(runs_to_tell(4, 10), None);
        assert_eq!(runs_to_tell(0, 10), None);
        assert_eq!(runs_to_tell(1, 0), None);
    }

    /// A shrunk repro's explicit actions are spaced as a script is.
    #[test]
    fn explicit_actions_are_spaced_too() {
        let mut plan = plan_of(r#"{ send = { type = "a" } },"#, 1);
        plan.conns[0].actions = vec![
            Action::Connect,
            Action::Send {
                message: serde_json::json!({"type": "a"}),
            },
            Action::Reconnect {
                after: Duration::from_millis(5),
                backoff: vec![],
            },
        ];
        let out = spaced(&plan).unwrap();
        let actions = &out.conns[0].actions;
        assert!(
            matches!(actions[1], Action::Think(d) if d == GAP),
            "{actions:?}"
        );
        assert!(
            matches!(actions[3], Action::Reconnect { after, .. } if after == GAP + Duration::from_millis(5)),
            "{actions:?}"
        );
        assert_eq!(out.duration, plan.duration + GAP * 2);
    }
}
