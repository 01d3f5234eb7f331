//! `[hunt]`: ranges for `stampede hunt`.

use super::walk::{Ctx, Fields, Node};
use crate::model::{HuntOrder, HuntSpec, Pressure, Sweep, DEFAULT_MAX_REPEAT, DEFAULT_MIN_GAP};

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
    "pressure",
];
const PRESSURE_KEYS: &[&str] = &[
    "max_users",
    "factor",
    "rounds_per_level",
    "jitter",
    "max_repeat",
    "min_gap",
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
        pressure: pressure(cx, f.get("pressure")),
    }
}

/// `{ max_users = 256, factor = 2, rounds_per_level = 2, jitter = ["0ms", "2ms"],
/// max_repeat = 32, min_gap = "1ms" }`.
fn pressure(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> Option<Pressure> {
    let node = node?;
    if !matches!(node.get_ref(), DeValue::Table(_)) {
        cx.report(
            node.span(),
            "hunt.pressure: expected a table like { max_users = 256, factor = 2, rounds_per_level = 2 }",
        );
        return None;
    }
    let f = Fields::section(cx, Some(node), "hunt.pressure", PRESSURE_KEYS)?
        .with_owner("hunt.pressure");
    if f.get("max_users").is_none() {
        cx.report(
            f.span(),
            "hunt.pressure: `max_users` (the ceiling) is required",
        );
        return None;
    }
    let max_users = f.int_or(cx, "max_users", 1, u32::MAX.into(), 1);
    let factor = f.int_or(cx, "factor", 2, 1024, 2);
    let per_level = f.int_or(cx, "rounds_per_level", 1, 10_000, 2);
    let max_repeat = f.int_or(
        cx,
        "max_repeat",
        1,
        u32::MAX.into(),
        DEFAULT_MAX_REPEAT.into(),
    );
    let min_gap = f.positive_duration_or(cx, "min_gap", DEFAULT_MIN_GAP);
    Some(Pressure {
        max_users: u32::try_from(max_users).unwrap_or(1),
        factor: u32::try_from(factor).unwrap_or(2),
        rounds_per_level: u32::try_from(per_level).unwrap_or(2),
        jitter: duration_range(cx, f.get("jitter"), "hunt.pressure.jitter"),
        max_repeat: u32::try_from(max_repeat).unwrap_or(DEFAULT_MAX_REPEAT),
        min_gap,
    })
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

#[cfg(test)]
mod tests {
    use crate::model::Pressure;
    use std::time::Duration;

    const HEAD: &str = "name = \"h\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 2\nsteps = [{ close = 1000 }]\n[hunt]\n";

    #[test]
    fn the_pressure_table_loads_with_defaults() {
        let text = format!("{HEAD}pressure = {{ max_users = 64, jitter = [\"0ms\", \"2ms\"] }}\n");
        let s = crate::scenario::load_str(&text, "h.toml").unwrap();
        assert_eq!(
            s.hunt.pressure,
            Some(Pressure {
                max_users: 64,
                factor: 2,
                rounds_per_level: 2,
                jitter: Some((Duration::ZERO, Duration::from_millis(2))),
                max_repeat: 32,
                min_gap: Duration::from_millis(1),
            })
        );
        let text =
            format!("{HEAD}pressure = {{ max_users = 4, max_repeat = 8, min_gap = \"250us\" }}\n");
        let p = crate::scenario::load_str(&text, "h.toml")
            .unwrap()
            .hunt
            .pressure
            .unwrap();
        assert_eq!((p.max_repeat, p.min_gap), (8, Duration::from_micros(250)));
    }

    #[test]
    fn a_pressure_table_without_a_ceiling_or_with_a_bad_factor_is_refused() {
        for (table, says) in [
            ("pressure = { factor = 2 }", "max_users"),
            ("pressure = { max_users = 8, factor = 1 }", "factor"),
            ("pressure = { max_users = 8, users = 3 }", "users"),
            ("pressure = 8", "hunt.pressure"),
            ("pressure = { max_users = 8, max_repeat = 0 }", "max_repeat"),
            ("pressure = { max_users = 8, min_gap = \"0ms\" }", "min_gap"),
        ] {
            let text = format!("{HEAD}{table}\n");
            let err = crate::scenario::load_str(&text, "h.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{table}: {err}");
        }
    }
}
