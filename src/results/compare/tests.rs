use super::*;

#[test]
fn tolerances_are_percentages() {
    assert_eq!(parse_tolerance("10%"), Ok(0.1));
    assert_eq!(parse_tolerance(" 2.5 % "), Ok(0.025));
    assert!(parse_tolerance("10")
        .unwrap_err()
        .contains("percentage like 10%"));
    assert!(parse_tolerance("-5%").is_err());
    assert_eq!(
        parse_tolerance_for("turn.p99=20%"),
        Ok(("turn.p99".into(), 0.2))
    );
    assert_eq!(
        parse_tolerance_for("upgrade=5%"),
        Ok(("upgrade".into(), 0.05))
    );
    assert_eq!(
        parse_tolerance_for("received_per_sec=1%"),
        Ok(("received_per_sec".into(), 0.01))
    );
    // The error rows' keys.
    for key in ["errors.rate", "unmet.rate", "violations"] {
        assert_eq!(
            parse_tolerance_for(&format!("{key}=50%")),
            Ok((key.into(), 0.5))
        );
    }
    assert!(parse_tolerance_for("errors.p99=5%").is_err());
    assert!(parse_tolerance_for("turn.p95=20%")
        .unwrap_err()
        .contains("p99.9"));
    assert!(parse_tolerance_for("turn.p99").is_err());
    // A phase that is none of ours is refused, however long its name; a named turn needs
    // its name.
    assert!(parse_tolerance_for("nonsense.p99=5%")
        .unwrap_err()
        .contains("unknown metric \"nonsense.p99\""));
    assert!(parse_tolerance_for("turn:.p99=5%").is_err());
    // A typo is answered with what it likely meant.
    for (typo, meant) in [
        ("trun.p99=5%", "did you mean \"turn.p99\"?"),
        ("turn.p999=5%", "did you mean \"turn.p99.9\"?"),
        ("error.rate=5%", "did you mean \"errors.rate\"?"),
    ] {
        let said = parse_tolerance_for(typo).unwrap_err();
        assert!(said.contains(meant), "{typo}: {said}");
    }
    assert!(!parse_tolerance_for("nonsense.p99=5%")
        .unwrap_err()
        .contains("did you mean"));
    assert_eq!(
        parse_tolerance_for("turn:ack.p99=5%"),
        Ok(("turn:ack.p99".into(), 0.05))
    );
}

#[test]
fn judge_needs_tolerance_floor_and_spread_all_exceeded() {
    let m = Margins {
        tolerance: 0.1,
        floor: 0.05,
        spread: 0.0,
    };
    assert_eq!(judge(1.1, 10.0, &m, None), Verdict::Regression);
    assert_eq!(judge(0.9, 10.0, &m, None), Verdict::Unchanged);
    assert_eq!(judge(-1.1, 10.0, &m, None), Verdict::Improved);
    // 100% worse, but only 40 µs: below the floor.
    assert_eq!(judge(0.04, 0.04, &m, None), Verdict::Unchanged);
    let noisy = Margins { spread: 2.0, ..m };
    assert_eq!(judge(1.5, 10.0, &noisy, None), Verdict::Unchanged);
    assert_eq!(
        judge(1.5, 10.0, &m, Some("too few samples")),
        Verdict::WorseUngated("too few samples")
    );
    // An improvement on a row that cannot gate is no more a finding than a regression.
    assert_eq!(
        judge(-1.5, 10.0, &m, Some("a single sample")),
        Verdict::BetterUngated("a single sample")
    );
}

/// A NEW side whose client fell behind by `lag` ms keeps a regression only when NEW less
/// the lag is still worse beyond the margins and the sampling noise: an increase the lag
/// explains, or one whose remainder is within the tolerance, is not judged.
#[test]
fn a_lagging_client_explains_no_more_than_its_lag() {
    let mut base = crate::metrics::new_histogram();
    let mut new = crate::metrics::new_histogram();
    for v in 1..=1000u64 {
        // About 10.5 ms and 20.5 ms medians, tight: the sampling bands are tens of µs.
        base.record(10_000 + v).unwrap();
        new.record(20_000 + v).unwrap();
    }
    let (b, n) = (
        stats::stat_ms(&base, LatencyStat::P50),
        stats::stat_ms(&new, LatencyStat::P50),
    );
    let m = Margins {
        tolerance: 0.1,
        floor: LATENCY_FLOOR_MS,
        spread: 0.0,
    };
    let judged = |lag: f64| {
        stats::beyond_client_lag(
            Verdict::Regression,
            lag,
            LatencyStat::P50,
            (b, n),
            &m,
            (&base, &new),
        )
    };
    let not_judged = Verdict::NotJudged(CLIENT_FELL_BEHIND);
    // 10 ms worse: a 0.5 ms lag leaves 9.5 ms of it the server's, and an 8.5 ms lag
    // 1.5 ms, still beyond the tolerance (10% of the 10.5 ms base).
    assert_eq!(judged(0.5), Verdict::Regression);
    assert_eq!(judged(8.5), Verdict::Regression);
    // A 12 ms lag explains all of it; a 9.2 ms lag leaves 0.8 ms, within the tolerance.
    assert_eq!(judged(12.0), not_judged);
    assert_eq!(judged(9.2), not_judged);
    // Verdicts other than a regression are the lag's to keep: it only slows NEW.
    for other in [
        Verdict::Unchanged,
        Verdict::Improved,
        Verdict::WorseUngated("a single sample"),
    ] {
        assert_eq!(
            stats::beyond_client_lag(other, 12.0, LatencyStat::P50, (b, n), &m, (&base, &new)),
            other
        );
    }
}

/// Each percentile is compared with the lag at its level: p50 with the lag's p50, the
/// higher percentiles with its p99, max with its max (what summary.json keeps).
#[test]
fn a_percentile_is_compared_with_the_lag_at_its_level() {
    let lag = Lagging {
        p50: 1.0,
        p99: 6.0,
        max: 40.0,
        histograms: Vec::new(),
    };
    let at = |stat| {
        let l = lag.at(stat);
        (l.stat, l.ms)
    };
    assert_eq!(at(LatencyStat::P50), ("p50", 1.0));
    for stat in [LatencyStat::P90, LatencyStat::P99, LatencyStat::P999] {
        assert_eq!(at(stat), ("p99", 6.0));
    }
    assert_eq!(at(LatencyStat::Max), ("max", 40.0));
}

/// With the lagging runs' lag histograms at hand, each row is compared with the lag at its
/// own statistic: a p99.9 row with the lag's p99.9 (the rare long stalls p99 leaves out),
/// the worst lagging run's; summary.json's levels say otherwise.
#[test]
fn a_percentile_is_compared_with_the_lag_histogram_at_its_own_statistic() {
    let stalls = |long_us: u64| {
        let mut h = crate::metrics::new_histogram();
        // 998 lags of 1 ms and 2 of `long_us`: p99 1 ms, p99.9 and max the long ones.
        h.record_n(1_000, 998).unwrap();
        h.record_n(long_us, 2).unwrap();
        h
    };
    let lag = Lagging {
        p50: 1.0,
        p99: 1.0,
        max: 40.0,
        histograms: vec![stalls(40_000), stalls(25_000)],
    };
    let at = |stat| {
        let l = lag.at(stat);
        (l.stat, (l.ms * 10.0).round() / 10.0)
    };
    assert_eq!(at(LatencyStat::P50), ("p50", 1.0));
    assert_eq!(at(LatencyStat::P99), ("p99", 1.0));
    assert_eq!(at(LatencyStat::P999), ("p99.9", 40.0));
    assert_eq!(at(LatencyStat::Max), ("max", 40.0));
}

#[test]
fn spread_uses_sides_with_several_runs() {
    assert_eq!(spread(&[1.0], &[2.0]), None);
    assert_eq!(spread(&[1.0, 1.5], &[2.0]), Some(0.5));
    assert_eq!(spread(&[1.0, 1.5], &[2.0, 3.0, 2.2]), Some(1.0));
}

#[test]
fn describe_shortens_long_lists() {
    let paths = [PathBuf::from("a"), PathBuf::from("b"), PathBuf::from("c")];
    assert_eq!(describe(&paths), "a (+2 more)");
}

#[test]
fn confidence_bounds_keep_sampling_noise_out() {
    let mut a = crate::metrics::new_histogram();
    let mut b = crate::metrics::new_histogram();
    for v in 1..=1000u64 {
        a.record(v * 10).unwrap();
        b.record(v * 10 + 300).unwrap();
    }
    // b's median is 3% above a's: inside a's 99% band at n = 1000.
    assert_eq!(
        stats::beyond_sampling_noise(Verdict::Regression, LatencyStat::P50, (&a, &b)),
        Verdict::WorseUngated("within sampling noise")
    );
    let mut c = crate::metrics::new_histogram();
    for v in 1..=1000u64 {
        c.record(v * 15).unwrap();
    }
    assert_eq!(
        stats::beyond_sampling_noise(Verdict::Regression, LatencyStat::P50, (&a, &c)),
        Verdict::Regression
    );
    assert_eq!(
        stats::ungated(Phase::Turn, LatencyStat::P99, (&a, &c)),
        None
    );
    assert_eq!(
        stats::ungated(Phase::Turn, LatencyStat::P999, (&a, &c)),
        Some("too few samples")
    );
    assert_eq!(
        stats::ungated(Phase::Turn, LatencyStat::Max, (&a, &c)),
        Some("a single sample")
    );
}
