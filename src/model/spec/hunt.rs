//! `[hunt]`: the ranges `stampede hunt` draws each round's variation from.

use crate::model::units::duration_us;
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
    /// The *separate* primitive: connections of each group start `separation` apart (wider
    /// than any jitter, so the order holds on the wire) in an order chosen per round.
    #[serde(default)]
    pub order: HuntOrder,
    #[serde(with = "duration_us", default = "default_separation")]
    pub separation: Duration,
    /// Pressure escalation: rounds that stay clean raise the users per group step by
    /// step up to a ceiling, sweeping the start jitter at each level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure: Option<Pressure>,
}

/// `[hunt] pressure`: how a hunt raises concurrency while rounds stay clean.
///
/// Level `L` (rounds `L * rounds_per_level` to `(L + 1) * rounds_per_level - 1`; round 0
/// is always the scenario as written) multiplies every group's users, and the `count` of
/// its rendezvous, by `factor^L`, capped at `max_users` and at what the client's
/// open-file limit can hold. It multiplies the `times` of every outermost `repeat` that
/// holds a send by `factor^L` too, capped at `max_repeat` and at `[limits] max_in_flight`
/// sends per block, and divides the pacing inside such a block (`every`, `think`) by the
/// multiplier it applied, never below `min_gap`: the block keeps its length and its
/// sends come denser. A function of the round alone, so any round is reproducible from
/// (seed, round).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pressure {
    /// Ceiling of users per group (>= 1).
    pub max_users: u32,
    /// Users multiply by this at each level (>= 2).
    pub factor: u32,
    /// Rounds at each level before the next (>= 1).
    pub rounds_per_level: u32,
    /// Within a level, the rounds sweep the start jitter from `low` to `high` (evenly,
    /// first round `low`, last `high`); `None` leaves the jitter as drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<(Duration, Duration)>,
    /// Ceiling of a raised `repeat`'s `times` (>= 1; a repeat written above it stays as
    /// written). `1` keeps every repeat as written.
    #[serde(default = "default_max_repeat")]
    pub max_repeat: u32,
    /// Floor of the pacing (`every`, `think`) inside a raised `repeat`: a gap written
    /// below it stays as written. Default [`DEFAULT_MIN_GAP`].
    #[serde(with = "duration_us", default = "default_min_gap")]
    pub min_gap: Duration,
}

/// The default `[hunt] pressure.max_repeat`.
pub const DEFAULT_MAX_REPEAT: u32 = 32;

/// The default `[hunt] pressure.min_gap`: tokio's timers fire on a 1 ms wheel, so a
/// shorter pace would not be kept anyway.
pub const DEFAULT_MIN_GAP: Duration = Duration::from_millis(1);

fn default_max_repeat() -> u32 {
    DEFAULT_MAX_REPEAT
}

fn default_min_gap() -> Duration {
    DEFAULT_MIN_GAP
}

/// How `[hunt] order` picks each round's connection order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HuntOrder {
    /// As planned (no reordering).
    #[default]
    Planned,
    /// PCT-style: random distinct priorities each round (depth 1: no change points).
    Random,
    /// Every permutation in turn, round by round (for a handful of connections).
    Enumerate,
}

fn default_separation() -> Duration {
    Duration::from_millis(5)
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
            order: HuntOrder::Planned,
            separation: default_separation(),
            pressure: None,
        }
    }
}
