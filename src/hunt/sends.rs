//! Raising the sends in flight per pressure level (`[hunt] pressure`): the rule that scales
//! a group's send-bearing `repeat` blocks and sweeps their pacing down.
//!
//! The rule, for level `L` with multiplier `m = factor^L`:
//!
//! - Every *outermost* `repeat` whose steps hold a send (`send`, `send_text`,
//!   `send_binary`, at any depth) gets `times × m`, never above its ceiling (`max_repeat`,
//!   and `[limits] max_in_flight` sends per block: `times × sends per iteration`), never
//!   below `times` as written. A repeat nested in a raised one keeps its `times`, so the
//!   sends grow by `m`, not by `m` squared; a send outside any repeat stays one send.
//! - A raised block of sends alone followed by a loop of correlated answers alone (a
//!   pipelined burst and the loop that awaits it) raises that loop by as many answers as
//!   it added sends, and the script's expectations pair with their sends again.
//! - Inside a raised block, every `every` and `think` duration is divided by the factor
//!   actually applied (`raised / times`), never below `min_gap` (a duration written below
//!   it stays as written): the block keeps its length, its sends come closer together.
//!
//! The rule draws nothing: a level's scripts are a function of the scenario and the level,
//! so (seed, round) still reproduces a round, and the round's plan (what a repro keeps)
//! holds the raised scripts.

use crate::model::{Dist, Step};
use std::time::Duration;

/// How one level raises the send-bearing blocks of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendScale {
    /// `factor^level`: 1 leaves every block as written.
    pub mult: u64,
    /// Ceiling of a raised block's `times` (`max_repeat`).
    pub max_repeat: u32,
    /// Ceiling of a raised block's sends, `times × sends per iteration`
    /// (`[limits] max_in_flight`).
    pub max_sends: u64,
    /// Floor of a raised block's pacing.
    pub min_gap: Duration,
}

/// Which ceiling held a raised block back, if any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capped {
    /// `max_repeat` held a block below `times × mult`.
    pub by_repeat: bool,
    /// `[limits] max_in_flight` did.
    pub by_in_flight: bool,
}

impl Capped {
    fn merge(&mut self, other: Capped) {
        self.by_repeat |= other.by_repeat;
        self.by_in_flight |= other.by_in_flight;
    }
}

/// Raises the outermost send-bearing `repeat`s of `steps` by `scale` (see the module
/// docs) and says which ceilings held any of them back.
pub fn scale_sends(steps: &mut [Step], scale: SendScale) -> Capped {
    let mut capped = Capped::default();
    for at in 0..steps.len() {
        let Some(Step::Repeat {
            times,
            steps: inner,
            every,
        }) = steps.get_mut(at)
        else {
            continue;
        };
        let per_iteration = sends(inner);
        if per_iteration == 0 {
            continue;
        }
        let (raised, held) = raised_times(*times, per_iteration, scale);
        capped.merge(held);
        if raised == *times {
            continue;
        }
        if let Some(every) = every {
            *every = shorter(*every, *times, raised, scale.min_gap);
        }
        shorten_gaps(inner, *times, raised, scale.min_gap);
        let added = u64::from(raised - *times).saturating_mul(per_iteration);
        let burst = !crate::model::deep_steps(inner).any(|s| matches!(s, Step::Expect(_)));
        *times = raised;
        if burst {
            answer_the_added(steps.get_mut(at + 1), added);
        }
    }
    // The pairing counts the loops' iterations: made again for the raised ones.
    crate::scenario::pair_again(steps);
    capped
}

/// A burst of sends alone raised by `added` sends: the loop of correlated answers alone
/// right after it (`next`), which answers the burst's sends one by one, is raised by as
/// many, so that every added request is still awaited (left as written, the loop's
/// answers paired with the burst's last sends only, and a server refusing the first ones
/// by a rate limit read as one refusing everything). Left as it is when its iterations do
/// not divide the added sends evenly, or it holds anything but expectations.
fn answer_the_added(next: Option<&mut Step>, added: u64) {
    let Some(Step::Repeat {
        times,
        steps: body,
        every: None,
    }) = next
    else {
        return;
    };
    let answers_only = body.iter().all(|s| matches!(s, Step::Expect(_)));
    let per_iteration = body
        .iter()
        .filter(|s| matches!(s, Step::Expect(e) if e.correlate.is_some() && !e.absent))
        .count() as u64;
    if !answers_only || per_iteration == 0 || !added.is_multiple_of(per_iteration) {
        return;
    }
    let more = u32::try_from(added / per_iteration).unwrap_or(0);
    *times = times.saturating_add(more);
}

/// `times × mult` within the block's ceilings, never below `times`.
fn raised_times(times: u32, per_iteration: u64, scale: SendScale) -> (u32, Capped) {
    let wanted = u64::from(times).saturating_mul(scale.mult.max(1));
    let by_sends = scale.max_sends / per_iteration.max(1);
    let cap = u64::from(scale.max_repeat).min(by_sends);
    let raised = wanted.min(cap).max(u64::from(times));
    let held = raised < wanted;
    let capped = Capped {
        by_repeat: held && u64::from(scale.max_repeat) <= by_sends,
        by_in_flight: held && by_sends < u64::from(scale.max_repeat),
    };
    (u32::try_from(raised).unwrap_or(times), capped)
}

/// The sends one pass over `steps` makes (nested repeats counted in full).
fn sends(steps: &[Step]) -> u64 {
    crate::model::script_size(steps).sends
}

/// Divides every `every` and `think` in `steps` (at any depth) by `raised / times`.
fn shorten_gaps(steps: &mut [Step], times: u32, raised: u32, floor: Duration) {
    for step in steps {
        match step {
            Step::Think { dist } => *dist = shorter_dist(*dist, times, raised, floor),
            Step::Repeat { steps, every, .. } => {
                if let Some(every) = every {
                    *every = shorter(*every, times, raised, floor);
                }
                shorten_gaps(steps, times, raised, floor);
            }
            _ => {}
        }
    }
}

fn shorter_dist(dist: Dist, times: u32, raised: u32, floor: Duration) -> Dist {
    let s = |d: Duration| shorter(d, times, raised, floor);
    match dist {
        Dist::Fixed { value } => Dist::Fixed { value: s(value) },
        Dist::Uniform { low, high } => Dist::Uniform {
            low: s(low),
            high: s(high),
        },
        // The spread shrinks with the mean; zero is a valid spread, so no floor.
        Dist::Normal { mean, sd } => Dist::Normal {
            mean: s(mean),
            sd: shorter(sd, times, raised, Duration::ZERO),
        },
        Dist::Exp { mean } => Dist::Exp { mean: s(mean) },
    }
}

/// `d × times / raised`, never below `floor`; a `d` already at or below `floor` is kept.
pub fn shorter(d: Duration, times: u32, raised: u32, floor: Duration) -> Duration {
    if d <= floor || raised <= times {
        return d;
    }
    let ns = d.as_nanos() * u128::from(times) / u128::from(raised);
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)).max(floor)
}

/// Whether `steps` hold a send-bearing `repeat` (pressure has something to raise).
pub fn has_send_blocks(steps: &[Step]) -> bool {
    steps
        .iter()
        .any(|s| matches!(s, Step::Repeat { steps, .. } if sends(steps) > 0))
}

/// The shortest gap between sends in `steps`' send-bearing blocks: the smallest `every`
/// of one, else the smallest `think` in one (its mean). `None` when no block has either.
pub fn shortest_gap(steps: &[Step]) -> Option<Duration> {
    let blocks = steps.iter().filter_map(|s| match s {
        Step::Repeat {
            steps: inner,
            every,
            ..
        } if sends(inner) > 0 => Some((inner, every)),
        _ => None,
    });
    let (mut paced, mut thinks) = (None::<Duration>, None::<Duration>);
    for (inner, every) in blocks {
        gaps(inner, *every, &mut paced, &mut thinks);
    }
    paced.or(thinks)
}

fn gaps(
    steps: &[Step],
    every: Option<Duration>,
    paced: &mut Option<Duration>,
    thinks: &mut Option<Duration>,
) {
    let least = |slot: &mut Option<Duration>, d: Duration| {
        *slot = Some(slot.map_or(d, |s| s.min(d)));
    };
    if let Some(every) = every {
        least(paced, every);
    }
    for step in steps {
        match step {
            Step::Think { dist } => least(thinks, dist.mean()),
            Step::Repeat { steps, every, .. } => gaps(steps, *every, paced, thinks),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(text: &str) -> Vec<Step> {
        let file = format!(
            "name = \"s\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{text}]\n"
        );
        crate::scenario::load_str(&file, "s.toml").unwrap().groups[0]
            .steps
            .clone()
    }

    const PACED: &str = r#"{ repeat = 4, every = "40ms", steps = [{ send = { type = "m" } }, { think = "8ms" }] }, { close = 1000 }"#;

    fn scale(mult: u64) -> SendScale {
        SendScale {
            mult,
            max_repeat: 32,
            max_sends: 256,
            min_gap: Duration::from_millis(1),
        }
    }

    fn repeat_of(steps: &[Step]) -> (u32, Option<Duration>, Vec<Step>) {
        match &steps[0] {
            Step::Repeat {
                times,
                every,
                steps,
            } => (*times, *every, steps.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_raised_block_keeps_its_length_and_its_sends_come_denser() {
        let mut s = steps(PACED);
        let capped = scale_sends(&mut s, scale(4));
        assert_eq!(capped, Capped::default());
        let (times, every, inner) = repeat_of(&s);
        assert_eq!((times, every), (16, Some(Duration::from_millis(10))));
        assert_eq!(
            inner[1],
            Step::Think {
                dist: Dist::Fixed {
                    value: Duration::from_millis(2)
                }
            }
        );
        assert_eq!(shortest_gap(&s), Some(Duration::from_millis(10)));
        // Level 0 (mult 1) is the script as written, and the rule draws nothing.
        let mut same = steps(PACED);
        scale_sends(&mut same, scale(1));
        assert_eq!(same, steps(PACED));
        let mut again = steps(PACED);
        scale_sends(&mut again, scale(4));
        assert_eq!(again, s);
    }

    #[test]
    fn the_ceilings_hold_times_and_the_floor_holds_gaps() {
        // max_repeat 32: 4 × 64 stops at 32; the gaps shrink by 8, not 64, to 5 ms and 1 ms.
        let mut s = steps(PACED);
        let capped = scale_sends(&mut s, scale(64));
        assert!(capped.by_repeat && !capped.by_in_flight);
        let (times, every, inner) = repeat_of(&s);
        assert_eq!((times, every), (32, Some(Duration::from_millis(5))));
        assert!(
            matches!(inner[1], Step::Think { dist: Dist::Fixed { value } } if value == Duration::from_millis(1))
        );
        // A floor above the pace: the gap stops at it.
        let mut s = steps(PACED);
        scale_sends(
            &mut s,
            SendScale {
                min_gap: Duration::from_millis(20),
                ..scale(4)
            },
        );
        let (_, every, inner) = repeat_of(&s);
        assert_eq!(every, Some(Duration::from_millis(20)));
        // The think was already below the floor: it stays as written.
        assert!(
            matches!(inner[1], Step::Think { dist: Dist::Fixed { value } } if value == Duration::from_millis(8))
        );
        // [limits] max_in_flight 12 over 1 send per iteration: 12, from it.
        let mut s = steps(PACED);
        let capped = scale_sends(
            &mut s,
            SendScale {
                max_sends: 12,
                ..scale(64)
            },
        );
        assert!(capped.by_in_flight && !capped.by_repeat);
        assert_eq!(repeat_of(&s).0, 12);
        // A block written above the ceiling stays as written.
        let mut s = steps(r#"{ repeat = 40, steps = [{ send = { type = "m" } }] }"#);
        scale_sends(&mut s, scale(2));
        assert_eq!(repeat_of(&s).0, 40);
    }

    #[test]
    fn only_outermost_send_blocks_rise() {
        let text = r#"{ repeat = 2, steps = [{ repeat = 3, steps = [{ send = { type = "m" } }] }] }, { repeat = 5, steps = [{ think = "1s" }] }, { send = { type = "m" } }"#;
        let mut s = steps(text);
        assert!(has_send_blocks(&s));
        scale_sends(&mut s, scale(2));
        let (times, _, inner) = repeat_of(&s);
        assert_eq!(times, 4, "outer block doubled");
        assert!(
            matches!(inner[0], Step::Repeat { times: 3, .. }),
            "nested kept"
        );
        assert!(
            matches!(s[1], Step::Repeat { times: 5, .. }),
            "no send: kept"
        );
        // 4 × 3 + the lone send.
        assert_eq!(crate::model::script_size(&s).sends, 13);
        assert!(!has_send_blocks(&steps(r#"{ send = { type = "m" } }"#)));
        assert_eq!(shortest_gap(&s), None);
    }

    /// A pipelined burst (a send, a loop of sends alone) and the loop of correlated
    /// answers after it: raising the burst raises the answers by as many, and each
    /// expectation pairs with its own send again (the first with the first request).
    /// Left alone, the 4 answers waited for the burst's last 4 of 8 requests.
    #[test]
    fn a_raised_burst_raises_the_loop_that_answers_it() {
        let text = r#"{ send = { type = "q", id = "r-{{run}}" } },
            { repeat = 3, steps = [{ send = { type = "q", id = "r-{{run}}" } }] },
            { repeat = 4, steps = [{ expect = "a", correlate = "id" }] }"#;
        let mut s = steps(text);
        scale_sends(&mut s, scale(2));
        assert!(matches!(s[1], Step::Repeat { times: 6, .. }), "{:?}", s[1]);
        let Step::Repeat {
            times, steps: body, ..
        } = &s[2]
        else {
            panic!("{:?}", s[2]);
        };
        assert_eq!(*times, 7, "one answer per added send");
        let Step::Expect(e) = &body[0] else {
            panic!("{body:?}");
        };
        // The first iteration pairs with the send 6 before the latest: the first of 7.
        assert_eq!((e.earlier_send, e.earlier_send_step), (6, 1));
        // Answers that are not all correlated expects, or do not divide: kept.
        let mixed = r#"{ repeat = 3, steps = [{ send = { type = "q", id = "r-{{run}}" } }] },
            { repeat = 3, steps = [{ expect = "a", correlate = "id" }, { think = "1ms" }] }"#;
        let mut s = steps(mixed);
        scale_sends(&mut s, scale(2));
        assert!(matches!(s[1], Step::Repeat { times: 3, .. }), "{:?}", s[1]);
    }
}
