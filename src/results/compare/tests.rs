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
    for key in ["errors.rate", "unmet.rate", "shed.rate", "violations"] {
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

/// A NEW client that fell behind noticed its connects late too, by more than its lag
/// (runs of one build read tcp_connect.p90 2.8 → 10.3 ms against a 2 ms lag): a worse
/// phase other than the turn, timed from when the client got round to it, is not judged
/// at all; the same runs with a client on schedule regress.
#[test]
fn a_lagging_clients_slower_connects_are_not_judged() {
    let connects = |name: &str, ms: f64, lagging: bool| {
        let mut run = run_of(name, 15.6, 1000);
        for i in 0..1000u64 {
            let us = (ms * 1000.0) as u64 + i;
            run.histograms.record_us(Phase::TcpConnect, us);
            run.histograms.record_us(Phase::FirstEvent, us);
            run.histograms.record_us(Phase::TurnRaw, us);
            if lagging {
                run.histograms.record_us(Phase::GeneratorLag, 1_500 + i);
            }
        }
        let g = &mut run.summary.generator;
        (g.fell_behind, g.lag_p50_ms, g.lag_p99_ms, g.lag_max_ms) = match lagging {
            true => (true, 2.0, 2.5, 2.6),
            false => (false, 0.1, 0.2, 0.3),
        };
        run
    };
    let base = || {
        vec![
            connects("b1", 2.8, false),
            connects("b2", 2.9, false),
            connects("b3", 2.7, false),
        ]
    };
    let c = compared(base(), vec![connects("n1", 10.3, true)]).unwrap();
    assert_eq!(
        verdict_of(&c, "tcp_connect.p90"),
        Verdict::NotJudged(CLIENT_FELL_BEHIND)
    );
    // `turn_raw` is timed from the actual send, when the client got round to it: not
    // judged either. A first event, timed from the intended send as the turn is, gates by
    // what it grew beyond the lag (it read "not judged" beside the same turn's regression).
    assert_eq!(
        verdict_of(&c, "turn_raw.p90"),
        Verdict::NotJudged(CLIENT_FELL_BEHIND)
    );
    assert_eq!(verdict_of(&c, "first_event.p90"), Verdict::Regression);
    // Only the rows timed from the intended send say the lag beside them.
    let lag_of = |metric: &str| {
        c.rows
            .iter()
            .find(|r| r.metric == metric)
            .and_then(|r| r.client_lag)
    };
    assert!(lag_of("first_event.p90").is_some());
    assert!(lag_of("tcp_connect.p90").is_none() && lag_of("turn_raw.p90").is_none());
    assert!(c.regressed(), "{:#?}", c.rows);
    let mut c = c;
    c.rows.retain(|r| r.phase != "first_event");
    assert!(!c.regressed() && c.not_judged(), "{:#?}", c.rows);
    let c = compared(base(), vec![connects("n1", 10.3, false)]).unwrap();
    assert_eq!(verdict_of(&c, "tcp_connect.p90"), Verdict::Regression);
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
fn spread_is_bases_range() {
    assert_eq!(spread(&[1.0]), None);
    assert_eq!(spread(&[1.0, 1.5]), Some(0.5));
    assert_eq!(spread(&[2.0, 3.0, 2.2]), Some(1.0));
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

// ---- Comparisons of runs made here (no files, no server) ----

/// A run named `name` of 3,000 turns spread evenly over ±1% around `turn_ms`, 1,500
/// messages/s, clean, as the fixture's summary plans it.
fn run(name: &str, turn_ms: f64) -> Run {
    run_of(name, turn_ms, 3000)
}

/// [`run`] with `turns` turns.
fn run_of(name: &str, turn_ms: f64, turns: u64) -> Run {
    let mut histograms = Histograms::new();
    for i in 0..turns {
        let at = 0.99 + 0.02 * i as f64 / turns as f64;
        histograms.record_us(Phase::Turn, (turn_ms * 1000.0 * at) as u64);
    }
    let mut summary = crate::results::fixture::summary();
    // Runs of one plan differ in their start: none is a copy of another.
    summary.started_at = format!("2026-01-01T00:00:00+00:00 {name}");
    Run {
        path: PathBuf::from(name),
        summary,
        histograms,
    }
}

fn side(runs: Vec<Run>) -> Side {
    Side {
        runs,
        parts: None,
        skipped: Vec::new(),
    }
}

fn compared(base: Vec<Run>, new: Vec<Run>) -> Result<Comparison, CompareError> {
    compare_sides(side(base), side(new), &CompareOptions::default())
}

fn verdict_of(c: &Comparison, metric: &str) -> Verdict {
    c.rows
        .iter()
        .find(|r| r.metric == metric)
        .unwrap_or_else(|| panic!("no row {metric}: {:#?}", c.rows))
        .verdict
}

fn consistent_base() -> Vec<Run> {
    vec![run("b1", 15.6), run("b2", 15.7), run("b3", 15.5)]
}

/// Two of three NEW runs 55% slower: NEW's own inconsistency (its runs 8.7 ms apart) is
/// what is tested, not a margin; BASE's runs, 0.2 ms apart, set the spread.
#[test]
fn the_spread_is_bases_alone() {
    let new = vec![run("n1", 24.3), run("n2", 24.2), run("n3", 15.6)];
    let c = compared(consistent_base(), new).unwrap();
    assert_eq!(
        verdict_of(&c, "turn.p50"),
        Verdict::Regression,
        "{:#?}",
        c.rows
    );
    let spread = c.rows[0].spread.unwrap();
    assert!(spread < 0.5, "{spread}");
    assert!(c.regressed());
}

/// A BASE run whose generator fell behind (its timings flagged untrustworthy) does not
/// widen the margin: its turns 9 ms slower than the others' would have hidden a NEW 40%
/// slower; with it in the spread, the row read unchanged.
#[test]
fn a_lagging_base_run_sets_no_margin() {
    let mut base = consistent_base();
    base.push(run("b4", 24.6));
    base[3].summary.generator.fell_behind = true;
    let c = compared(base, vec![run("n1", 21.8)]).unwrap();
    let row = c.rows.iter().find(|r| r.metric == "turn.p50").unwrap();
    assert!(row.spread.is_some_and(|s| s < 0.5), "{row:?}");
    assert_eq!(row.verdict, Verdict::Regression, "{row:?}");
}

/// A merged result's own warnings (shards started apart: its rates are not one run's
/// load) are said again where it is compared.
#[test]
fn a_merged_results_warnings_are_said_again() {
    let mut merged = run("m1", 15.6);
    merged.summary.merged_from = Some(2);
    merged.summary.warnings = vec!["the shards started 10.41s apart".to_string()];
    let c = compared(consistent_base(), vec![merged]).unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w == "m1: merged with a warning: the shards started 10.41s apart"),
        "{:?}",
        c.warnings
    );
}

/// A phase too thin for even its median to gate, that got worse, is not judged (exit 8),
/// and the result line says what would let it judge; one that did not get worse passes.
#[test]
fn a_thin_phase_that_got_worse_is_not_judged() {
    // 15 turns a side: a median needs 20.
    let thin = |name: &str, ms: f64| run_of(name, ms, 5);
    let base = vec![thin("b1", 15.6), thin("b2", 15.7), thin("b3", 15.5)];
    let new = vec![thin("n1", 24.6), thin("n2", 24.7), thin("n3", 24.5)];
    let c = compared(base, new).unwrap();
    assert_eq!(
        verdict_of(&c, "turn.p50"),
        Verdict::WorseUngated(TOO_FEW_SAMPLES)
    );
    assert!(!c.regressed());
    assert!(c.not_judged(), "{:?}", c.unjudged);
    // What the result line says (the report layer renders it; tests/compare.rs reads it).
    let why = c.unjudged.join("; ");
    assert!(
        why.starts_with("1 phase got worse with too few samples to judge (turn"),
        "{why}"
    );
    assert!(why.contains("run more users or longer runs"), "{why}");
    // Runs of one build: a handful of samples whose highest is far higher (one slow
    // turn a run) is no median that got worse.
    let mut same = vec![thin("n1", 15.6), thin("n2", 15.5), thin("n3", 15.7)];
    for run in &mut same {
        run.histograms.record_us(Phase::Turn, 40_000);
    }
    let base = vec![thin("b1", 15.6), thin("b2", 15.7), thin("b3", 15.5)];
    let c = compared(base, same).unwrap();
    assert_eq!(
        verdict_of(&c, "turn.p90"),
        Verdict::WorseUngated(TOO_FEW_SAMPLES)
    );
    assert!(!c.regressed() && !c.not_judged(), "{:?}", c.unjudged);
}

/// A tail that grew past anything BASE saw (a server stalling now and then: 12 of 600
/// turns at 140 ms where BASE's 1,800 never passed 16 ms), with too few samples beyond
/// the p99 to gate it, is not judged (exit 8), never "no regression"; one slow turn
/// beyond BASE's slowest is chance, and passes.
#[test]
fn a_tail_grown_past_anything_base_saw_is_not_judged() {
    let base = || {
        vec![
            run_of("b1", 15.6, 600),
            run_of("b2", 15.7, 600),
            run_of("b3", 15.5, 600),
        ]
    };
    let mut stalled = run_of("n1", 15.6, 588);
    for _ in 0..12 {
        stalled.histograms.record_us(Phase::Turn, 140_000);
    }
    let c = compared(base(), vec![stalled]).unwrap();
    assert_eq!(
        verdict_of(&c, "turn.p99"),
        Verdict::WorseUngated(TOO_FEW_SAMPLES)
    );
    assert!(!c.regressed());
    assert!(c.not_judged(), "{:?}", c.unjudged);
    let why = c.unjudged.join("; ");
    assert!(
        why.starts_with("turn's tail grew past anything BASE saw: 12 of NEW's 600 samples")
            && why.contains("--tolerance-for turn.p99"),
        "{why}"
    );
    let mut once = run_of("n1", 15.6, 599);
    once.histograms.record_us(Phase::Turn, 140_000);
    let c = compared(base(), vec![once]).unwrap();
    assert!(!c.regressed() && !c.not_judged(), "{:?}", c.unjudged);
    assert!(tail_grew(12, 600, 1_800) && tail_grew(5, 600, 1_800));
    assert!(!tail_grew(2, 600, 1_800) && !tail_grew(5, 40, 15));
    // One stall of a busy client's: three samples beyond, of one build against itself.
    assert!(!tail_grew(3, 1_000, 3_000) && !tail_grew(4, 1_000, 3_000));
}

/// An interrupted run (and one that attempted nothing) is left out of its side with a
/// warning, not judged as a throughput 100% lower; a side with nothing else is not judged.
#[test]
fn interrupted_runs_are_left_out() {
    let mut interrupted = run("n2", 15.6);
    interrupted.summary.stopped = StopReason::Interrupted;
    interrupted.summary.received_per_sec = 0.0;
    interrupted.summary.verdict = RunVerdict::Incomplete;
    let mut calibrating = run("n3", 15.6);
    calibrating.summary.counters.attempted = 0;
    calibrating.summary.received_per_sec = 0.0;
    calibrating.histograms = Histograms::new();
    let new = vec![run("n1", 15.6), interrupted, calibrating];
    let c = compared(consistent_base(), new).unwrap();
    assert_eq!(c.left_out, [PathBuf::from("n2"), PathBuf::from("n3")]);
    assert_eq!(c.new_runs, [PathBuf::from("n1")]);
    assert_eq!(verdict_of(&c, THROUGHPUT), Verdict::Unchanged);
    assert!(c.worse_verdicts.is_empty(), "{:?}", c.worse_verdicts);
    assert!(!c.regressed() && !c.not_judged());
    assert!(
        c.warnings.iter().any(|w| w.starts_with("n2: left out")),
        "{:?}",
        c.warnings
    );
    // Nothing else on NEW: not judged, with no rows.
    let mut only = run("n4", 15.6);
    only.summary.stopped = StopReason::Interrupted;
    let c = compared(consistent_base(), vec![only]).unwrap();
    assert!(c.rows.is_empty() && !c.regressed() && c.not_judged());
    assert!(
        c.unjudged
            .first()
            .is_some_and(|w| w.starts_with("no new run left to compare")),
        "{:?}",
        c.unjudged
    );
}

/// A NEW run whose client stalled measured its own pauses as the server's latency: its
/// latency rows are not judged, and the comparison exits 8 rather than 1; the same runs
/// without stalls regress.
#[test]
fn a_new_client_that_stalled_is_not_judged() {
    let stalls = |count, longest_ms, total_ms| crate::model::ClientStalls {
        count,
        longest_ms,
        total_ms,
        kept: Vec::new(),
    };
    let slower = || vec![run("n1", 24.6)];
    assert!(compared(consistent_base(), slower()).unwrap().regressed());
    // Stalled for 9 of its 10 s, a second at a time: that may be all of the slowdown.
    let mut new = slower();
    new[0].summary.generator.client_stalls = stalls(34, 1071.0, 9000.0);
    let c = compared(consistent_base(), new).unwrap();
    assert_eq!(
        verdict_of(&c, "turn.p50"),
        Verdict::NotJudged(CLIENT_STALLED)
    );
    assert!(!c.regressed() && c.not_judged());
    let why = c.unjudged.join("; ");
    assert!(why.contains("stalled 34 times (longest 1071 ms)"), "{why}");
    // One stall of 150 ms in the 10 s: it cannot hold half the samples, so it excuses no
    // slower median (a busy CI machine's hiccup does not switch the gate off).
    let mut new = slower();
    new[0].summary.generator.client_stalls = stalls(1, 150.0, 150.0);
    let c = compared(consistent_base(), new).unwrap();
    assert_eq!(verdict_of(&c, "turn.p50"), Verdict::Regression);
    assert!(c.regressed());
    // Stalled long enough, but by less than the median grew (9 ms): the rest is the server's.
    let mut new = slower();
    new[0].summary.generator.client_stalls = stalls(60, 5.0, 6000.0);
    let c = compared(consistent_base(), new).unwrap();
    assert_eq!(verdict_of(&c, "turn.p50"), Verdict::Regression);
}

/// A shard against a whole run (or another shard) is refused, naming `stampede merge`;
/// other seeds warn, and other planned connections keep the throughput row from gating.
#[test]
fn mismatched_plans_are_refused_or_said() {
    let mut shard = run("n1", 15.6);
    shard.summary.shard = Some(crate::model::Shard { index: 0, count: 2 });
    shard.summary.connections_planned = 500;
    shard.summary.received_per_sec = 750.0;
    let refused = compared(consistent_base(), vec![shard]).unwrap_err();
    let said = refused.to_string();
    assert!(
        matches!(refused, CompareError::DifferentSlices(_)),
        "{said}"
    );
    assert!(
        said.contains("shard 0/2") && said.contains("stampede merge"),
        "{said}"
    );

    let mut smaller = run("n1", 15.6);
    smaller.summary.connections_planned = 500;
    smaller.summary.received_per_sec = 750.0;
    smaller.summary.seed = 8;
    let c = compared(consistent_base(), vec![smaller]).unwrap();
    assert_eq!(
        verdict_of(&c, THROUGHPUT),
        Verdict::WorseUngated(PLANS_DIFFER)
    );
    assert!(!c.regressed());
    for said in ["runs of different seeds", "runs of different plans"] {
        assert!(
            c.warnings.iter().any(|w| w.starts_with(said)),
            "{:?}",
            c.warnings
        );
    }
}

/// One unclean BASE run beside clean ones does not excuse an unclean NEW: NEW's verdicts
/// are compared with BASE's best.
#[test]
fn a_new_verdict_is_compared_with_bases_best() {
    let mut base = consistent_base();
    base[2].summary.verdict = RunVerdict::Violations;
    let mut new = vec![run("n1", 15.6), run("n2", 15.6)];
    new[1].summary.verdict = RunVerdict::Incomplete;
    let c = compared(base, new).unwrap();
    assert_eq!(c.worse_verdicts.len(), 1, "{:?}", c.worse_verdicts);
    assert!(c.regressed());
    let worse = &c.worse_verdicts[0];
    assert_eq!(
        (worse.verdict, worse.base_best, worse.every_base),
        (RunVerdict::Incomplete, RunVerdict::Clean, false)
    );
}

#[test]
fn a_path_that_does_not_exist_is_said_so() {
    let nope = PathBuf::from("/nonexistent/stampede-compare-nope");
    let said = compare(std::slice::from_ref(&nope), &[], &CompareOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(said, "/nonexistent/stampede-compare-nope does not exist");
}

/// One run against one run of the same build: a turn percentile 10.3% apart and a
/// sub-millisecond phase 0.134 ms apart (what runs of one build on loopback drift, see
/// SINGLE_RUN_SPREAD and LATENCY_FLOOR_MS) are no regression; a server 8 ms slower is.
#[test]
fn one_run_against_one_of_the_same_build_is_no_regression() {
    let with_connects = |mut r: Run, connect_ms: f64| {
        for i in 0..3000u64 {
            let at = 0.99 + 0.02 * i as f64 / 3000.0;
            r.histograms
                .record_us(Phase::TcpConnect, (connect_ms * 1000.0 * at) as u64);
        }
        r
    };
    let base = || vec![with_connects(run("b1", 16.0), 1.115)];
    let drifted = vec![with_connects(run("n1", 17.65), 1.249)];
    let c = compared(base(), drifted).unwrap();
    for metric in ["turn.p50", "turn.p90", "tcp_connect.p50", "tcp_connect.p90"] {
        assert_eq!(verdict_of(&c, metric), Verdict::Unchanged, "{metric}");
    }
    assert!(!c.regressed() && !c.not_judged());
    let slower = vec![with_connects(run("n2", 24.0), 1.115)];
    let c = compared(base(), slower).unwrap();
    assert_eq!(verdict_of(&c, "turn.p50"), Verdict::Regression);
    assert!(c.regressed());
    // A sub-millisecond phase a third of a millisecond slower (0.3 → 0.7 ms) is past the
    // floor: the floor hides drift, not a slowdown of a fast path.
    let fast = vec![with_connects(run("b1", 16.0), 0.3)];
    let slow = vec![with_connects(run("n3", 16.0), 0.7)];
    let c = compared(fast, slow).unwrap();
    assert_eq!(verdict_of(&c, "tcp_connect.p50"), Verdict::Regression);
}

/// A side merged from shards that did not run side by side (the merge's warning: the rates
/// are over stretches where only some ran) has a throughput that is not the load: worse,
/// it is not judged (exit 8), not a regression; better, no finding either.
#[test]
fn a_merged_side_whose_rates_are_not_the_whole_load_judges_no_throughput() {
    let partial = |name: &str, rate: f64| {
        let mut r = run(name, 15.6);
        r.summary.received_per_sec = rate;
        r.summary.merged_from = Some(2);
        r.summary.warnings = vec!["the shards started 40s apart".into()];
        r
    };
    let c = compared(consistent_base(), vec![partial("n1", 600.0)]).unwrap();
    assert_eq!(
        verdict_of(&c, THROUGHPUT),
        Verdict::NotJudged(RATES_PARTIAL)
    );
    assert!(!c.regressed() && c.not_judged(), "{:#?}", c.rows);
    // Said in words too, for the result line and the JSON.
    let why = c.unjudged.join("; ");
    assert!(
        why.contains(THROUGHPUT) && why.contains(RATES_PARTIAL),
        "{why}"
    );
    let c = compared(consistent_base(), vec![partial("n1", 3000.0)]).unwrap();
    assert_eq!(
        verdict_of(&c, THROUGHPUT),
        Verdict::BetterUngated(RATES_PARTIAL)
    );
    // Without the warning, the same rate is a regression.
    let mut whole = partial("n1", 600.0);
    whole.summary.warnings.clear();
    let c = compared(consistent_base(), vec![whole]).unwrap();
    assert_eq!(verdict_of(&c, THROUGHPUT), Verdict::Regression);
}

/// A closed loop's `turn_raw` holds the same samples as its `turn`: with a NEW client that
/// fell behind, the two rows read alike (the turn's regression beyond the lag), not
/// "REGRESSION" beside "NOT JUDGED" for one measurement. A `turn_raw` that differs from
/// the turn (a paced loop's) stays unjudged.
#[test]
fn a_closed_loops_turn_raw_reads_as_its_turn() {
    let turns = |name: &str, ms: f64, lagging: bool, raw_apart: bool| {
        let mut run = run_of(name, ms, 0);
        for i in 0..1000u64 {
            let us = (ms * 1000.0) as u64 + i;
            run.histograms.record_us(Phase::Turn, us);
            run.histograms
                .record_us(Phase::TurnRaw, if raw_apart { us / 2 } else { us });
            if lagging {
                run.histograms.record_us(Phase::GeneratorLag, 1_500 + i);
            }
        }
        let g = &mut run.summary.generator;
        (g.fell_behind, g.lag_p50_ms, g.lag_p99_ms, g.lag_max_ms) = match lagging {
            true => (true, 1.3, 2.5, 2.6),
            false => (false, 0.1, 0.2, 0.3),
        };
        run
    };
    let base = |raw_apart: bool| {
        vec![
            turns("b1", 6.2, false, raw_apart),
            turns("b2", 6.1, false, raw_apart),
            turns("b3", 6.3, false, raw_apart),
        ]
    };
    let c = compared(base(false), vec![turns("n1", 16.7, true, false)]).unwrap();
    assert_eq!(verdict_of(&c, "turn.p50"), Verdict::Regression);
    assert_eq!(verdict_of(&c, "turn_raw.p50"), Verdict::Regression);
    let c = compared(base(true), vec![turns("n1", 16.7, true, true)]).unwrap();
    assert_eq!(
        verdict_of(&c, "turn_raw.p50"),
        Verdict::NotJudged(CLIENT_FELL_BEHIND)
    );
}

/// A release that sheds a fifth of its attempts where the base shed none is a regression
/// in its own row, whatever its latency rows say; runs that shed nothing on either side
/// show no such row.
#[test]
fn load_the_new_side_sheds_is_a_regression_of_its_own() {
    let with = |name: &str, shed: u64, after: u64| {
        let mut r = run(name, 15.6);
        let c = &mut r.summary.counters;
        (c.attempted, c.shed, c.shed_after_acceptance) = (500, shed, after);
        r
    };
    let base = || vec![with("b1", 0, 0), with("b2", 0, 0), with("b3", 0, 0)];
    let new = vec![with("n1", 60, 40), with("n2", 50, 50), with("n3", 70, 30)];
    let c = compared(base(), new).unwrap();
    assert_eq!(verdict_of(&c, "shed.rate"), Verdict::Regression);
    let same = compared(base(), vec![with("n1", 0, 0), with("n2", 0, 0)]).unwrap();
    assert!(
        same.rows.iter().all(|r| r.metric != "shed.rate"),
        "{:#?}",
        same.rows
    );
}
