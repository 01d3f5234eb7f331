//! `[hunt]`: the ranges `stampede hunt` draws each round's variation from.

use super::duration_us;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a hunt may vary between rounds. Absent ranges keep the scenario's own values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HuntSpec {
    /// Most rounds a hunt runs (the time budget may end it sooner).
    pub rounds: u32,
    /// Users per group, drawn from `[low, high]`.
    pub users: Option<(u32, u32)>,
    /// Connections per user, drawn from `[low, high]`.
    pub connections_per_user: Option<(u32, u32)>,
    /// Start jitter becomes `uniform(0, x)`, with `x` drawn from `[low, high]`.
    pub jitter: Option<(Duration, Duration)>,
    /// The spacing between consecutive connections of each group, swept round by round
    /// from `from` to `to` in `step`s (then again): maps a race window's width.
    pub gap: Option<Sweep>,
}

/// An offset swept across a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    #[serde(with = "duration_us")]
    pub from: Duration,
    #[serde(with = "duration_us")]
    pub to: Duration,
    #[serde(with = "duration_us")]
    pub step: Duration,
}

impl Sweep {
    /// The value of round `round`: `from + (round mod steps) * step`.
    pub fn at(&self, round: u32) -> Duration {
        let step = self.step.as_micros().max(1) as u64;
        let span = self.to.saturating_sub(self.from).as_micros() as u64;
        let steps = span / step + 1;
        self.from + Duration::from_micros((u64::from(round) % steps) * step)
    }
}

impl Default for HuntSpec {
    fn default() -> Self {
        HuntSpec {
            rounds: 500,
            users: None,
            connections_per_user: None,
            jitter: None,
            gap: None,
        }
    }
}
