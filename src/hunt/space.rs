//! Drawing each hunt round's variation of a scenario from its `[hunt]` ranges.
//!
//! Every draw comes from a ChaCha8 stream keyed by (seed, round), so a round is
//! reproducible from those two numbers alone, and ChaCha's output is specified, so a later
//! version draws the same rounds.
//!
//! Stream discipline: `plan::build` uses stream 0 of a plan's seed for token ids and
//! stream `conn + 1` for each connection (at most 2^32). A hunt draws from the top of the
//! stream space of the round's seed, [`DRAW_STREAM`] for the scenario's variation and
//! [`ORDER_STREAM`] for the connection order, so no hunt draw reuses the numbers a plan
//! mints its tokens or samples its timings from.

use super::sends::{has_send_blocks, scale_sends, shortest_gap, Capped, SendScale};
use crate::model::{
    script_size, Arrival, Dist, HuntOrder, HuntSpec, Plan, Pressure, Scenario, Step,
    MAX_ACTIONS_PER_CONNECTION,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// The ChaCha stream a round's variation (users, connections, jitter) is drawn from.
pub const DRAW_STREAM: u64 = u64::MAX;
/// The ChaCha stream a round's connection order (`[hunt] order = "random"`) is drawn from.
pub const ORDER_STREAM: u64 = u64::MAX - 1;

/// A ChaCha8 generator on `stream` of round `round`'s seed.
fn round_rng(seed: u64, round: u32, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(round_seed(seed, round));
    rng.set_stream(stream);
    rng
}

/// The seed of round `round`: distinct, stable, independent of other rounds.
pub fn round_seed(seed: u64, round: u32) -> u64 {
    // SplitMix64 finalizer over (seed, round): well spread for consecutive rounds.
    let mut z = seed ^ (u64::from(round).wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The scenario for one round. Round 0 is the scenario as written.
pub fn draw(scenario: &Scenario, round: u32, seed: u64) -> Scenario {
    let mut s = scenario.clone();
    if round == 0 {
        return s;
    }
    let hunt = scenario.hunt.clone();
    let mut rng = round_rng(seed, round, DRAW_STREAM);
    for group in &mut s.groups {
        if let Some((lo, hi)) = hunt.users {
            group.users = rng.random_range(lo.min(hi)..=hi.max(lo));
        }
        if let Some((lo, hi)) = hunt.connections_per_user {
            group.connections_per_user = rng.random_range(lo.min(hi)..=hi.max(lo));
        }
        if let Some((lo, hi)) = hunt.jitter {
            let (lo, hi) = (lo.as_micros() as u64, hi.as_micros() as u64);
            let us = rng.random_range(lo.min(hi)..=hi.max(lo));
            group.jitter = Dist::Uniform {
                low: Duration::ZERO,
                high: Duration::from_micros(us),
            };
        }
        if let Some(gap) = hunt.gap {
            let n = group.users * group.connections_per_user;
            let start = match group.arrival {
                Arrival::Ramp { start, .. } | Arrival::Rate { start, .. } => start,
                Arrival::Burst { at } | Arrival::Collide { at } => at,
            };
            group.arrival = Arrival::Ramp {
                start,
                over: gap.at(round) * n,
            };
        }
    }
    s
}

/// One round's pressure level (`[hunt] pressure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// 0 for the scenario's own users.
    pub level: u32,
    /// Users of each group at this level, groups in order.
    pub users: Vec<u32>,
    /// Sends one connection of each group makes at this level, groups in order (its
    /// send-bearing `repeat`s raised: see [`SendScale`]).
    pub sends: Vec<u64>,
    /// The shortest gap between sends inside a raised block (its `every`, else its
    /// `think`), over every group; `None` when no group has a paced send-bearing block.
    pub send_gap: Option<Duration>,
    /// How this level raises send-bearing `repeat`s.
    pub scale: SendScale,
    /// The round's start jitter bound, when the level sweeps it.
    pub jitter: Option<Duration>,
    /// The round's `[hunt] gap`, when swept: the ramp is stretched to keep it with the
    /// raised users.
    pub gap: Option<Duration>,
    /// Whether this is the highest level the ceiling and the client allow.
    pub ceiling: bool,
    /// What stops escalation beyond the highest level: `max_users 64`, `max_users 64 and
    /// max_repeat 32`, `client limit (N connections)` or `plan size (N actions per
    /// connection, at most M)`.
    pub limited_by: String,
}

/// Users, sends and scripts of every group at one level.
struct Shape {
    users: Vec<u32>,
    sends: Vec<u64>,
    /// The most actions one connection's script expands to.
    actions: u64,
    scale: SendScale,
    capped: Capped,
    send_gap: Option<Duration>,
}

/// The pressure level of `round`: a function of the round (and of `drawn`'s connections
/// per user, for the client's limit) alone. `base` gives each group's own users and
/// script; `client_max` is the most connections this machine can hold at once
/// (`run::max_connections`). `None` without `[hunt] pressure`.
pub fn pressure(
    base: &Scenario,
    drawn: &Scenario,
    round: u32,
    client_max: Option<u64>,
) -> Option<Level> {
    let p = base.hunt.pressure.as_ref()?;
    let per_level = p.rounds_per_level.max(1);
    let shape_at = |level: u32| -> Shape {
        let mult = u64::from(p.factor.max(2)).saturating_pow(level);
        let scale = SendScale {
            mult,
            max_repeat: p.max_repeat.max(1),
            max_sends: u64::try_from(base.limits.max_in_flight)
                .unwrap_or(u64::MAX)
                .max(1),
            min_gap: p.min_gap,
        };
        let mut shape = Shape {
            users: Vec::new(),
            sends: Vec::new(),
            actions: 0,
            scale,
            capped: Capped::default(),
            send_gap: None,
        };
        for g in &base.groups {
            let raised = u64::from(g.users).saturating_mul(mult);
            let capped = raised.min(u64::from(p.max_users)).max(u64::from(g.users));
            shape.users.push(u32::try_from(capped).unwrap_or(u32::MAX));
            let mut steps = g.steps.clone();
            let held = scale_sends(&mut steps, scale);
            shape.capped.by_repeat |= held.by_repeat;
            shape.capped.by_in_flight |= held.by_in_flight;
            let size = script_size(&steps);
            shape.sends.push(size.sends);
            shape.actions = shape.actions.max(size.actions);
            shape.send_gap = match (shape.send_gap, shortest_gap(&steps)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        shape
    };
    let total = |users: &[u32]| -> u64 {
        users
            .iter()
            .zip(&drawn.groups)
            .map(|(u, g)| u64::from(*u) * u64::from(g.connections_per_user))
            .sum()
    };
    // The highest level: the first whose next would change nothing (every group at its
    // ceilings), would not fit the client, or would plan a script too long to run.
    let mut top = 0;
    let mut here = shape_at(0);
    let limited_by = loop {
        let next = shape_at(top + 1);
        if (next.users == here.users && next.sends == here.sends) || top >= 62 {
            break ceilings(p, base, &next);
        }
        if let Some(max) = client_max {
            if total(&next.users) > max {
                break format!("client limit ({max} connections)");
            }
        }
        if next.actions > MAX_ACTIONS_PER_CONNECTION {
            break format!(
                "plan size ({} actions per connection, at most {MAX_ACTIONS_PER_CONNECTION})",
                next.actions
            );
        }
        top += 1;
        here = next;
    };
    let level = (round / per_level).min(top);
    let jitter = p.jitter.filter(|_| round > 0).map(|(lo, hi)| {
        let j = round % per_level;
        if per_level == 1 {
            lo
        } else {
            lo + (hi.saturating_sub(lo)) * j / (per_level - 1)
        }
    });
    let shape = if level == top { here } else { shape_at(level) };
    Some(Level {
        level,
        users: shape.users,
        sends: shape.sends,
        send_gap: shape.send_gap,
        scale: shape.scale,
        jitter,
        gap: base.hunt.gap.filter(|_| round > 0).map(|g| g.at(round)),
        ceiling: level == top,
        limited_by,
    })
}

/// What holds every group where it is: `max_users`, and the repeat ceilings when a group
/// has a send-bearing block.
fn ceilings(p: &Pressure, base: &Scenario, at: &Shape) -> String {
    let mut out = format!("max_users {}", p.max_users);
    if base.groups.iter().any(|g| has_send_blocks(&g.steps)) {
        if at.capped.by_in_flight && !at.capped.by_repeat {
            out += &format!(" and [limits] max_in_flight {}", base.limits.max_in_flight);
        } else {
            out += &format!(" and max_repeat {}", p.max_repeat);
        }
    }
    out
}

/// Applies `level` to a round's scenario: each group's users, the `count` of its
/// rendezvous (raised in proportion, never above the group), the ramp a swept `[hunt] gap`
/// spreads them over (the gap between connections stays), its send-bearing `repeat`s and
/// their pacing ([`SendScale`]), and the swept jitter.
pub fn apply_pressure(s: &mut Scenario, level: &Level) {
    for (group, &users) in s.groups.iter_mut().zip(&level.users) {
        let from = group.users.max(1);
        if users != group.users {
            scale_rendezvous(&mut group.steps, from, users);
            group.users = users;
            if let (Some(gap), Arrival::Ramp { over, .. }) = (level.gap, &mut group.arrival) {
                *over = gap.saturating_mul(users.saturating_mul(group.connections_per_user));
            }
        }
        scale_sends(&mut group.steps, level.scale);
        if let Some(high) = level.jitter {
            group.jitter = Dist::Uniform {
                low: Duration::ZERO,
                high,
            };
        }
    }
}

/// Raises every explicit rendezvous `count` by `to / from`, capped at `to` users.
fn scale_rendezvous(steps: &mut [Step], from: u32, to: u32) {
    for step in steps {
        match step {
            Step::Rendezvous {
                count: Some(count), ..
            } => {
                let raised = u64::from(*count) * u64::from(to) / u64::from(from);
                *count = u32::try_from(raised.clamp(1, u64::from(to))).unwrap_or(to);
            }
            Step::Repeat { steps, .. } => scale_rendezvous(steps, from, to),
            _ => {}
        }
    }
}

/// The *separate* primitive: within each group, connections start `separation` apart in
/// the round's order, so the order survives the network. `random` gives every connection a
/// random distinct priority each round (PCT with depth 1: priorities, no change points);
/// `enumerate` walks through every permutation, one per round, which covers all orders of
/// a handful of connections (5 connections: 120 rounds).
pub fn separate(plan: &mut Plan, hunt: &HuntSpec, round: u32, seed: u64) {
    if hunt.order == HuntOrder::Planned {
        return;
    }
    let mut rng = round_rng(seed, round, ORDER_STREAM);
    for group in 0..u32::try_from(plan.groups.len()).unwrap_or(u32::MAX) {
        let members: Vec<usize> = (0..plan.conns.len())
            .filter(|&i| plan.conns[i].group == group)
            .collect();
        let Some(base) = members.iter().map(|&i| plan.conns[i].start).min() else {
            continue;
        };
        let order = match hunt.order {
            HuntOrder::Enumerate => nth_permutation(members.len(), u64::from(round)),
            _ => {
                let mut order: Vec<usize> = (0..members.len()).collect();
                order.shuffle(&mut rng);
                order
            }
        };
        for (rank, &slot) in order.iter().enumerate() {
            plan.conns[members[slot]].start = base.saturating_add(
                hunt.separation
                    .saturating_mul(u32::try_from(rank).unwrap_or(u32::MAX)),
            );
        }
    }
    plan.conns.sort_by_key(|c| (c.start, c.id));
}

/// The `k`-th permutation of `0..n` (mod n!), in lexicographic order.
fn nth_permutation(n: usize, k: u64) -> Vec<usize> {
    let mut pool: Vec<usize> = (0..n).collect();
    let factorials: Vec<u64> = (0..n)
        .scan(1u64, |f, i| {
            let v = *f;
            *f = f.saturating_mul(i as u64 + 1);
            Some(v)
        })
        .collect();
    let total = factorials
        .last()
        .map_or(1, |f| f.saturating_mul(n as u64))
        .max(1);
    let mut k = k % total;
    let mut out = Vec::with_capacity(n);
    for i in (0..n).rev() {
        let f = factorials[i];
        let index = (k / f) as usize;
        k %= f;
        out.push(pool.remove(index.min(pool.len() - 1)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HuntSpec, Sweep};

    fn scenario() -> Scenario {
        let text = "name = \"s\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 2\nsteps = [{ close = 1000 }]\n";
        crate::scenario::load_str(text, "s.toml").unwrap()
    }

    #[test]
    fn rounds_are_reproducible_and_stay_in_range() {
        let mut s = scenario();
        s.hunt = HuntSpec {
            rounds: 10,
            users: Some((2, 9)),
            connections_per_user: Some((1, 3)),
            jitter: Some((Duration::ZERO, Duration::from_millis(5))),
            ..HuntSpec::default()
        };
        for round in 1..50 {
            let a = draw(&s, round, 7);
            assert_eq!(a, draw(&s, round, 7));
            let g = &a.groups[0];
            assert!((2..=9).contains(&g.users) && (1..=3).contains(&g.connections_per_user));
            assert!(
                matches!(g.jitter, Dist::Uniform { high, .. } if high <= Duration::from_millis(5))
            );
        }
        assert_eq!(draw(&s, 0, 7), s, "round 0 is the scenario as written");
        assert_ne!(round_seed(7, 1), round_seed(7, 2));
    }

    #[test]
    fn enumerate_covers_every_order_and_random_is_seeded() {
        let mut seen = std::collections::BTreeSet::new();
        for k in 0..24 {
            let p = nth_permutation(4, k);
            let mut sorted = p.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2, 3]);
            seen.insert(p);
        }
        assert_eq!(seen.len(), 24, "4! distinct orders");
        assert_eq!(nth_permutation(4, 24), nth_permutation(4, 0));

        let mut s = scenario();
        s.groups[0].users = 5;
        s.hunt.order = HuntOrder::Random;
        let base = crate::plan::build(&s, 1);
        let (mut a, mut b) = (base.clone(), base.clone());
        separate(&mut a, &s.hunt, 3, 9);
        separate(&mut b, &s.hunt, 3, 9);
        assert_eq!(a, b);
        let mut starts: Vec<_> = a.conns.iter().map(|c| c.start).collect();
        starts.dedup();
        assert_eq!(starts.len(), 5, "distinct starts, separation apart");
        assert_eq!(starts[1] - starts[0], s.hunt.separation);
    }

    #[test]
    fn pressure_rises_level_by_level_to_its_ceiling() {
        let mut s = scenario();
        s.hunt.pressure = Some(crate::model::Pressure {
            max_users: 12,
            factor: 2,
            rounds_per_level: 2,
            jitter: Some((Duration::ZERO, Duration::from_millis(4))),
            max_repeat: 32,
            min_gap: Duration::from_millis(1),
        });
        let users: Vec<u32> = (0..10)
            .map(|r| pressure(&s, &s, r, None).unwrap().users[0])
            .collect();
        // 2 users; x2 every 2 rounds; capped at 12.
        assert_eq!(users, vec![2, 2, 4, 4, 8, 8, 12, 12, 12, 12]);
        let top = pressure(&s, &s, 9, None).unwrap();
        assert!(top.ceiling && top.level == 3, "{top:?}");
        assert_eq!(top.limited_by, "max_users 12");
        assert!(!pressure(&s, &s, 5, None).unwrap().ceiling);
        // The jitter sweeps inside a level; round 0 stays as written.
        assert_eq!(pressure(&s, &s, 0, None).unwrap().jitter, None);
        assert_eq!(
            pressure(&s, &s, 2, None).unwrap().jitter,
            Some(Duration::ZERO)
        );
        assert_eq!(
            pressure(&s, &s, 3, None).unwrap().jitter,
            Some(Duration::from_millis(4))
        );
        // The client's limit stops it earlier: 5 connections fit, 8 do not.
        let limited = pressure(&s, &s, 9, Some(5)).unwrap();
        assert_eq!(limited.users, vec![4]);
        assert_eq!(limited.limited_by, "client limit (5 connections)");
        let mut raised = s.clone();
        apply_pressure(&mut raised, &top);
        assert_eq!(raised.groups[0].users, 12);
        assert_eq!(pressure(&s, &s, 7, None), pressure(&s, &s, 7, None));

        // A swept gap keeps its spacing between the raised connections.
        s.hunt.gap = Some(Sweep {
            from: Duration::from_millis(1),
            to: Duration::from_millis(1),
            step: Duration::from_millis(1),
        });
        let mut round = draw(&s, 4, 1);
        let level = pressure(&s, &round, 4, None).unwrap();
        apply_pressure(&mut round, &level);
        assert_eq!(round.groups[0].users, 8);
        assert!(
            matches!(round.groups[0].arrival, Arrival::Ramp { over, .. } if over == Duration::from_millis(8)),
            "{:?}",
            round.groups[0].arrival
        );
    }

    #[test]
    fn pressure_raises_sends_per_connection_to_their_own_ceiling() {
        let text = "name = \"s\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{ repeat = 2, every = \"40ms\", steps = [{ send = { type = \"m\" } }] }, { close = 1000 }]\n[hunt]\npressure = { max_users = 1, rounds_per_level = 1, max_repeat = 16 }\n";
        let s = crate::scenario::load_str(text, "s.toml").unwrap();
        let at = |r: u32| pressure(&s, &s, r, None).unwrap();
        // Users stay at their ceiling (1); the sends rise 2, 4, 8, 16 and stop there.
        let sends: Vec<u64> = (0..6).map(|r| at(r).sends[0]).collect();
        assert_eq!(sends, vec![2, 4, 8, 16, 16, 16]);
        let gaps: Vec<Option<Duration>> = (0..4).map(|r| at(r).send_gap).collect();
        let ms = |m: u64| Some(Duration::from_millis(m));
        assert_eq!(gaps, vec![ms(40), ms(20), ms(10), ms(5)]);
        let top = at(5);
        assert!(top.ceiling && top.level == 3, "{top:?}");
        assert_eq!(top.limited_by, "max_users 1 and max_repeat 16");
        assert_eq!(at(4), top, "a function of the round alone");
        // What the round runs (and its plan, and so a repro) holds the raised block.
        let mut round = draw(&s, 2, 9);
        apply_pressure(&mut round, &at(2));
        let plan = crate::plan::build(&round, 9);
        assert_eq!(crate::model::script_size(&plan.scripts[0]).sends, 8);
        // [limits] max_in_flight below max_repeat holds the block at it, and says so.
        let mut tight = s.clone();
        tight.limits.max_in_flight = 6;
        let top = pressure(&tight, &tight, 9, None).unwrap();
        assert_eq!((top.sends[0], top.level), (6, 2));
        assert_eq!(top.limited_by, "max_users 1 and [limits] max_in_flight 6");
    }

    #[test]
    fn the_gap_sweeps_round_by_round() {
        let mut s = scenario();
        let step = Duration::from_millis(1);
        s.hunt.gap = Some(Sweep {
            from: Duration::ZERO,
            to: Duration::from_millis(3),
            step,
        });
        let overs: Vec<Duration> = (1..=5)
            .map(|r| match draw(&s, r, 1).groups[0].arrival {
                Arrival::Ramp { over, .. } => over,
                _ => Duration::MAX,
            })
            .collect();
        // 2 connections: over = gap * 2; gaps 1, 2, 3, 0, 1 ms.
        let ms = |m: u64| Duration::from_millis(m);
        assert_eq!(overs, vec![ms(2), ms(4), ms(6), ms(0), ms(2)]);
    }
}
