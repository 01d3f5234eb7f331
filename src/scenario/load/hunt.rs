//! `[hunt]`: ranges for `stampede hunt`.

use super::walk::{Ctx, Fields, Node};
use crate::model::{HuntOrder, HuntSpec, Sweep};

const ORDER_CHOICES: &[(&str, HuntOrder)] = &[
    ("planned", HuntOrder::Planned),
    ("random", HuntOrder::Random),
    ("enumerate", HuntOrder::Enumerate),
];
use std::time::Duration;
use toml::de::DeValue;

const HUNT_KEYS: &[&str] = &[
    "rounds",
    "users",
    "connections_per_user",
    "jitter",
    "gap",
    "order",
    "separation",
];
const GAP_KEYS: &[&str] = &["from", "to", "step"];

pub(super) fn hunt(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> HuntSpec {
    let defaults = HuntSpec::default();
    let Some(f) = Fields::section(cx, node, "[hunt]", HUNT_KEYS) else {
        return defaults;
    };
    let rounds = f.int_or(cx, "rounds", 1, u32::MAX.into(), defaults.rounds.into());
    HuntSpec {
        rounds: u32::try_from(rounds).unwrap_or(defaults.rounds),
        users: count_range(cx, f.get("users"), "hunt.users"),
        connections_per_user: count_range(
            cx,
            f.get("connections_per_user"),
            "hunt.connections_per_user",
        ),
        jitter: duration_range(cx, f.get("jitter"), "hunt.jitter"),
        gap: gap(cx, f.get("gap")),
        order: f.choice(cx, "order", ORDER_CHOICES, HuntOrder::Planned),
        separation: f.positive_duration_or(cx, "separation", defaults.separation),
    }
}

/// `[low, high]` of positive integers, low <= high.
fn count_range(cx: &mut Ctx<'_>, node: Option<&Node<'_>>, key: &str) -> Option<(u32, u32)> {
    let node = node?;
    let items = cx.array(key, node)?;
    let values: Vec<i128> = items.iter().filter_map(|n| cx.integer(key, n)).collect();
    match values.as_slice() {
        [lo, hi] if *lo >= 1 && lo <= hi && *hi <= i128::from(u32::MAX) => {
            Some((*lo as u32, *hi as u32))
        }
        _ => {
            cx.report(
                node.span(),
                format!("{key}: expected [low, high] with 1 <= low <= high"),
            );
            None
        }
    }
}

/// `["0ms", "5ms"]`, low <= high.
fn duration_range(
    cx: &mut Ctx<'_>,
    node: Option<&Node<'_>>,
    key: &str,
) -> Option<(Duration, Duration)> {
    let node = node?;
    let items = cx.array(key, node)?;
    let values: Vec<Duration> = items.iter().filter_map(|n| cx.duration(key, n)).collect();
    match values.as_slice() {
        [lo, hi] if lo <= hi => Some((*lo, *hi)),
        _ if values.len() == items.len() => {
            cx.report(
                node.span(),
                format!("{key}: expected [low, high] durations with low <= high"),
            );
            None
        }
        _ => None,
    }
}

/// `{ from = "0ms", to = "20ms", step = "1ms" }`.
fn gap(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> Option<Sweep> {
    let node = node?;
    if !matches!(node.get_ref(), DeValue::Table(_)) {
        cx.report(
            node.span(),
            "hunt.gap: expected a table like { from = \"0ms\", to = \"20ms\", step = \"1ms\" }",
        );
        return None;
    }
    let f = Fields::section(cx, Some(node), "hunt.gap", GAP_KEYS)?.with_owner("hunt.gap");
    let from = f.duration_or(cx, "from", Duration::ZERO);
    let to = f.duration_or(cx, "to", Duration::ZERO);
    let step = f.positive_duration_or(cx, "step", Duration::from_millis(1));
    if from > to {
        cx.report(f.span(), "hunt.gap: `from` must not exceed `to`");
        return None;
    }
    Some(Sweep { from, to, step })
}
