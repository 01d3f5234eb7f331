//! The arithmetic of a verdict: margins, spread and the percentiles' confidence bounds.

use super::{Hist, Verdict, CLIENT_FELL_BEHIND, CONFIDENCE_Z, MIN_TAIL_SAMPLES, TOO_FEW_SAMPLES};
use crate::model::LatencyStat;
use crate::model::Phase;

/// Why a row shows but does not gate, or `None` when it gates.
pub(super) fn ungated(
    phase: Phase,
    stat: LatencyStat,
    (base, new): (&Hist, &Hist),
) -> Option<&'static str> {
    if phase == Phase::GeneratorLag {
        return Some("generator lag, not the server");
    }
    let Some(q) = quantile(stat) else {
        return Some("a single sample");
    };
    let fewest = base.len().min(new.len()) as f64;
    (fewest * (1.0 - q) < MIN_TAIL_SAMPLES).then_some(TOO_FEW_SAMPLES)
}

/// Keeps a regression (or an improvement) only when the two sides' confidence intervals
/// for the percentile do not overlap.
pub(super) fn beyond_sampling_noise(
    verdict: Verdict,
    stat: LatencyStat,
    (base, new): (&Hist, &Hist),
) -> Verdict {
    let Some(q) = quantile(stat) else {
        return verdict;
    };
    let ((base_lo, base_hi), (new_lo, new_hi)) = (band(base, q), band(new, q));
    match verdict {
        Verdict::Regression if new_lo <= base_hi => Verdict::WorseUngated("within sampling noise"),
        Verdict::Improved if new_hi >= base_lo => Verdict::Unchanged,
        other => other,
    }
}

/// Keeps a latency regression measured by a NEW side whose client fell behind only when
/// the client's own lag cannot explain it: a latency counts from the intended send time,
/// so a client late by `lag_ms` adds at most about that much to it. NEW less the lag must
/// still be worse than BASE beyond the margins and beyond the percentiles' confidence
/// bands, the tests [`judge`] and [`beyond_sampling_noise`] made of the raw figures;
/// otherwise the row is [`Verdict::NotJudged`]. Other verdicts pass through: the lag only
/// ever makes NEW read slower, so it cannot have hidden a regression nor made an
/// improvement.
pub(super) fn beyond_client_lag(
    verdict: Verdict,
    lag_ms: f64,
    stat: LatencyStat,
    (base_ms, new_ms): (f64, f64),
    m: &Margins,
    (base, new): (&Hist, &Hist),
) -> Verdict {
    if verdict != Verdict::Regression {
        return verdict;
    }
    let beyond_margins = new_ms - lag_ms - base_ms > margin(base_ms, m);
    let beyond_noise = quantile(stat).is_none_or(|q| {
        let ((_, base_hi), (new_lo, _)) = (band(base, q), band(new, q));
        new_lo as f64 / 1000.0 - lag_ms > base_hi as f64 / 1000.0
    });
    if beyond_margins && beyond_noise {
        Verdict::Regression
    } else {
        Verdict::NotJudged(CLIENT_FELL_BEHIND)
    }
}

/// The percentiles bounding a confidence interval for quantile `q` of `h`, in µs.
pub(super) fn band(h: &Hist, q: f64) -> (u64, u64) {
    let half = CONFIDENCE_Z * (q * (1.0 - q) / h.len().max(1) as f64).sqrt();
    (
        h.value_at_quantile((q - half).max(0.0)),
        h.value_at_quantile((q + half).min(1.0)),
    )
}

pub(super) fn quantile(stat: LatencyStat) -> Option<f64> {
    match stat {
        LatencyStat::P50 => Some(0.5),
        LatencyStat::P90 => Some(0.9),
        LatencyStat::P99 => Some(0.99),
        LatencyStat::P999 => Some(0.999),
        LatencyStat::Max | LatencyStat::Mean => None,
    }
}

pub(super) struct Margins {
    pub tolerance: f64,
    pub floor: f64,
    pub spread: f64,
}

/// How far a row may move either way before it counts: the widest of the tolerance (a
/// fraction of `base`), the noise floor and BASE's run-to-run spread.
fn margin(base: f64, m: &Margins) -> f64 {
    (base.abs() * m.tolerance).max(m.floor).max(m.spread)
}

/// `worse_by`: how much worse NEW is (negative when better), in the row's unit.
pub(super) fn judge(
    worse_by: f64,
    base: f64,
    m: &Margins,
    ungated: Option<&'static str>,
) -> Verdict {
    let margin = margin(base, m);
    if worse_by > margin {
        ungated.map_or(Verdict::Regression, Verdict::WorseUngated)
    } else if -worse_by > margin {
        ungated.map_or(Verdict::Improved, Verdict::BetterUngated)
    } else {
        Verdict::Unchanged
    }
}

pub(super) fn stat_ms(h: &Hist, stat: LatencyStat) -> f64 {
    let us = match (stat, quantile(stat)) {
        (_, Some(q)) => h.value_at_quantile(q),
        (LatencyStat::Mean, None) => return h.mean() / 1000.0,
        (_, None) => h.max(),
    };
    us as f64 / 1000.0
}

/// BASE's run-to-run range of a value (max − min over its runs), `None` with fewer than two
/// runs. Only BASE's: it is the reference for how far runs of one build drift apart, and
/// NEW's own inconsistency is part of what is tested (a NEW whose runs are slower two times
/// in three must not widen its own margin).
pub(super) fn spread(base: &[f64]) -> Option<f64> {
    (base.len() >= 2).then(|| {
        let max = base.iter().copied().fold(f64::MIN, f64::max);
        let min = base.iter().copied().fold(f64::MAX, f64::min);
        max - min
    })
}

pub(super) fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

pub(super) fn change(base: f64, new: f64) -> Option<f64> {
    (base != 0.0).then(|| (new - base) / base)
}
