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
