//! Drawing each hunt round's variation of a scenario from its `[hunt]` ranges.
//!
//! The draws use proptest strategies driven by a ChaCha `TestRng` seeded from (seed,
//! round), so every round is reproducible from those two numbers alone.

use crate::scenario::{Arrival, Dist, Scenario};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::time::Duration;

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
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&round_seed(seed, round).to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    for group in &mut s.groups {
        if let Some((lo, hi)) = hunt.users {
            group.users = pick(&mut runner, lo..=hi).unwrap_or(group.users);
        }
        if let Some((lo, hi)) = hunt.connections_per_user {
            group.connections_per_user =
                pick(&mut runner, lo..=hi).unwrap_or(group.connections_per_user);
        }
        if let Some((lo, hi)) = hunt.jitter {
            let us = pick(&mut runner, lo.as_micros() as u64..=hi.as_micros() as u64).unwrap_or(0);
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

fn pick<S: Strategy>(runner: &mut TestRunner, strategy: S) -> Option<S::Value> {
    strategy.new_tree(runner).ok().map(|t| t.current())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{HuntSpec, Sweep};

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
            gap: None,
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
