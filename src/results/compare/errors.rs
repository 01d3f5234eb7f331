//! The comparison's error rows: how often connections and expectations failed, and how
//! many violations the oracles found. A release that is as fast but fails more often is
//! no better, and its latency rows alone cannot say so: a failed turn has no latency.
//!
//! The two shares are pooled over a side's runs (errors over attempts of all its runs, as
//! its histograms are merged) and judged as the latency rows are: worse by more than the
//! tolerance, [`SHARE_FLOOR`] and BASE's run-to-run spread, and beyond sampling noise (NEW's
//! lower 99% Wilson bound above BASE's upper one: three failures in 1,000 attempts against
//! none is not yet a finding). Violations are the mean per run of those that are findings
//! (a run whose verdict excuses them counts none), judged on the margins alone: each is
//! a finding, not a sample.

use super::stats::{change, judge, mean, spread, Margins};
use super::{CompareOptions, Row, Run, Unit, Verdict, CONFIDENCE_Z};
use crate::results::Summary;

/// Connection errors (rejected + failed) per attempt, as `[thresholds] errors.rate`.
pub const ERRORS: &str = "errors.rate";
/// Unmet expectations per judged expectation (those neither cut by the run's end nor on a
/// connection the server cleanly refused).
pub const UNMET: &str = "unmet.rate";
/// Attempts the server shed, before or after accepting them (HTTP 429 or 503, a Close
/// 1013, a declared `reject.shed` code), per attempt, as `[thresholds] shed.rate`: a
/// release whose latency rows look as good because it turns more of the load away is no
/// better. Shown only when one side shed anything.
pub const SHED: &str = "shed.rate";
/// Violations per run.
pub const VIOLATIONS: &str = "violations";
/// The error rows' keys, for `--tolerance-for`.
pub const KEYS: [&str; 4] = [ERRORS, UNMET, SHED, VIOLATIONS];
/// Differences in a share below this (one in a thousand) are noise.
pub const SHARE_FLOOR: f64 = 0.001;
/// Differences below this many violations per run are none: one more violation in a
/// single run a side is a change.
pub const VIOLATIONS_FLOOR: f64 = 0.5;

/// What went wrong, out of how many, in one run or pooled over a side.
type Share = (u64, u64);

/// The error rows: the two shares (each left out when neither side had anything to count,
/// e.g. a scenario that expects nothing) and violations per run.
pub(super) fn error_rows(base: &[Run], new: &[Run], opts: &CompareOptions) -> Vec<Row> {
    let shares = [
        (ERRORS, "conn %", connection_errors as fn(&Summary) -> Share),
        (UNMET, "unmet %", unmet_expectations),
        (SHED, "shed %", shed_attempts),
    ];
    let shed_any = |side: &[Run]| side.iter().any(|r| shed_attempts(&r.summary).0 > 0);
    let shed = shed_any(base) || shed_any(new);
    let mut rows: Vec<Row> = shares
        .into_iter()
        .filter(|(metric, _, _)| *metric != SHED || shed)
        .filter_map(|(metric, stat, of)| share_row((metric, stat, of), (base, new), opts))
        .collect();
    rows.push(violations_row(base, new, opts));
    rows
}

fn connection_errors(s: &Summary) -> Share {
    let c = &s.counters;
    (c.rejected + c.failed, c.attempted)
}

fn shed_attempts(s: &Summary) -> Share {
    let c = &s.counters;
    (c.shed + c.shed_after_acceptance, c.attempted)
}

fn unmet_expectations(s: &Summary) -> Share {
    let e = &s.counters.expect;
    // Cut and refused expectations were neither met nor missed: out of the share, as they
    // are out of the verdict.
    let judged = e
        .expectations
        .saturating_sub(e.expectations_cut + e.expectations_refused);
    (judged.saturating_sub(e.expectations_met), judged)
}

fn ratio((k, n): Share) -> f64 {
    if n == 0 {
        0.0
    } else {
        k as f64 / n as f64
    }
}

fn tolerance_for(metric: &str, opts: &CompareOptions) -> f64 {
    opts.per_metric
        .get(metric)
        .copied()
        .unwrap_or(opts.tolerance)
}

/// One share row; `None` when neither side counted anything.
fn share_row(
    (metric, stat, of): (&str, &str, fn(&Summary) -> Share),
    (base, new): (&[Run], &[Run]),
    opts: &CompareOptions,
) -> Option<Row> {
    let pooled = |side: &[Run]| {
        side.iter()
            .map(|r| of(&r.summary))
            .fold((0, 0), |(k, n), (dk, dn)| (k + dk, n + dn))
    };
    let (b, n) = (pooled(base), pooled(new));
    if b.1 == 0 && n.1 == 0 {
        return None;
    }
    let per_run = |side: &[Run]| -> Vec<f64> {
        side.iter()
            .map(|r| of(&r.summary))
            .filter(|share| share.1 > 0)
            .map(ratio)
            .collect()
    };
    let spread = spread(&per_run(base));
    let tolerance = tolerance_for(metric, opts);
    let (base_rate, new_rate) = (ratio(b), ratio(n));
    let margins = Margins {
        tolerance,
        floor: SHARE_FLOOR,
        spread: spread.unwrap_or(0.0),
    };
    // A side that counted nothing has no share to compare (every connection failed
    // before any expectation): its row shows, the connection row judges.
    let gate = (b.1 == 0 || n.1 == 0).then_some("nothing counted on one side");
    let judged = judge(new_rate - base_rate, base_rate, &margins, gate);
    Some(Row {
        metric: metric.to_string(),
        phase: "errors".to_string(),
        stat: stat.to_string(),
        verdict: beyond_share_noise(judged, b, n),
        change: change(base_rate, new_rate),
        base: base_rate,
        new: new_rate,
        spread,
        tolerance,
        unit: Unit::Share,
        // Refusals and violations are the server's answers, not timings: the client's
        // lag explains none of them.
        client_lag: None,
    })
}

/// Keeps a regression (or an improvement) of a share only when the two sides' 99% Wilson
/// intervals do not overlap.
fn beyond_share_noise(verdict: Verdict, base: Share, new: Share) -> Verdict {
    let ((base_lo, base_hi), (new_lo, new_hi)) = (wilson(base), wilson(new));
    match verdict {
        Verdict::Regression if new_lo <= base_hi => Verdict::WorseUngated("within sampling noise"),
        Verdict::Improved if new_hi >= base_lo => Verdict::Unchanged,
        other => other,
    }
}

/// The Wilson score interval for `k` of `n` at [`CONFIDENCE_Z`] ([`super::wilson`]): it
/// does not shrink to nothing at 0 of n, where error rows usually start.
fn wilson((k, n): Share) -> (f64, f64) {
    super::wilson(k, n, CONFIDENCE_Z)
}

/// A run's violations that are findings ([`Summary::violations_found`]): none when its
/// verdict says they are not (an inconclusive run's excused ones, what the oracles saw of a
/// target that could not be judged), as its `violations` thresholds count them.
fn findings(s: &Summary) -> u64 {
    s.violations_found(None)
}

fn violations_row(base: &[Run], new: &[Run], opts: &CompareOptions) -> Row {
    let counts =
        |side: &[Run]| -> Vec<f64> { side.iter().map(|r| findings(&r.summary) as f64).collect() };
    let (b, n) = (counts(base), counts(new));
    let (base_mean, new_mean) = (mean(&b), mean(&n));
    let spread = spread(&b);
    let tolerance = tolerance_for(VIOLATIONS, opts);
    let margins = Margins {
        tolerance,
        floor: VIOLATIONS_FLOOR,
        spread: spread.unwrap_or(0.0),
    };
    Row {
        metric: VIOLATIONS.to_string(),
        phase: VIOLATIONS.to_string(),
        stat: "per run".to_string(),
        verdict: judge(new_mean - base_mean, base_mean, &margins, None),
        change: change(base_mean, new_mean),
        base: base_mean,
        new: new_mean,
        spread,
        tolerance,
        unit: Unit::PerRun,
        client_lag: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wilson_bound_is_wide_at_zero_and_narrows_with_attempts() {
        let (lo, hi) = wilson((0, 1000));
        assert!(lo.abs() < 1e-12, "{lo}");
        assert!((0.006..0.007).contains(&hi), "{hi}");
        // 20 failures in 1,000 lie beyond it; 3 do not.
        assert!(wilson((20, 1000)).0 > hi);
        assert!(wilson((3, 1000)).0 < hi);
    }

    #[test]
    fn violations_the_verdict_calls_no_findings_are_not_counted() {
        let mut s = crate::results::fixture::summary();
        s.violations.total = 20;
        s.verdict = crate::model::Verdict::Violations;
        assert_eq!(findings(&s), 20);
        for verdict in [
            crate::model::Verdict::Inconclusive,
            crate::model::Verdict::AuthMisconfigured,
            crate::model::Verdict::TargetUnusable,
        ] {
            s.verdict = verdict;
            assert_eq!(findings(&s), 0, "{verdict}");
        }
    }

    #[test]
    fn unmet_expectations_leave_out_the_cut_and_the_refused() {
        let mut s = crate::results::fixture::summary();
        let e = &mut s.counters.expect;
        e.expectations = 100;
        e.expectations_met = 80;
        e.expectations_cut = 5;
        e.expectations_refused = 5;
        assert_eq!(unmet_expectations(&s), (10, 90));
    }
}
