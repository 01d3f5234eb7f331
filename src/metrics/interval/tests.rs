use super::*;
use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use std::sync::Arc;

const EVERY: Duration = Duration::from_secs(1);

fn sample(phase: Phase, ms: u64, at: Instant) -> Sample {
    Sample::new(phase, Duration::from_millis(ms), at)
}

/// (tag, start s, length s, sample count) of every histogram in a log.
fn read_log(path: &Path) -> Vec<(String, f64, f64, u64)> {
    let bytes = std::fs::read(path).unwrap();
    IntervalLogIterator::new(&bytes)
        .map(|e| e.unwrap())
        .filter_map(|e| match e {
            LogEntry::Interval(h) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(h.encoded_histogram())
                    .unwrap();
                let hist: hdrhistogram::Histogram<u64> = Deserializer::new()
                    .deserialize(&mut raw.as_slice())
                    .unwrap();
                Some((
                    h.tag().unwrap().as_str().to_string(),
                    h.start_timestamp().as_secs_f64(),
                    h.duration().as_secs_f64(),
                    hist.len(),
                ))
            }
            _ => None,
        })
        .collect()
}

fn recorder(t0: Instant, log: Option<&Path>, live: &Arc<Live>) -> Recorder {
    let config = IntervalConfig {
        every: EVERY,
        log: log.map(|p| IntervalLog::create(p).unwrap()),
    };
    Recorder::new(t0, config, live.clone())
}

#[test]
fn samples_land_in_the_interval_they_happened_in_and_the_log_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intervals.hlog");
    let live = Arc::new(Live::default());
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut r = recorder(t0, Some(&path), &live);
    r.file(sample(Phase::Upgrade, 2, at(100)));
    r.file(sample(Phase::Turn, 10, at(900)));
    live.sent.store(5, Relaxed);
    live.received.store(20, Relaxed);
    live.live.store(3, Relaxed);
    r.advance(at(1000));
    // A straggler for interval 0 arrives during interval 1: interval 0 still takes it.
    r.file(sample(Phase::Turn, 30, at(950)));
    r.file(sample(Phase::Turn, 40, at(1500)));
    live.received.store(26, Relaxed);
    live.violations.store(1, Relaxed);
    live.live.store(0, Relaxed);
    r.advance(at(2000));
    // Later than its grace: interval 0 is written, so the oldest open one takes it.
    r.file(sample(Phase::Turn, 50, at(10)));
    let (total, series) = r.finish(at(2500));

    assert_eq!(
        total.get(Phase::Turn).len(),
        4,
        "the whole run keeps every sample"
    );
    assert_eq!(series.interval_ms, 1000.0);
    let points: Vec<(f64, f64, i64, u64, u64, u64)> = series
        .series
        .iter()
        .map(|p| {
            (
                p.t_ms,
                p.duration_ms,
                p.live,
                p.sent,
                p.received,
                p.violations,
            )
        })
        .collect();
    assert_eq!(
        points,
        vec![
            (1000.0, 1000.0, 3, 5, 20, 0),
            (2000.0, 1000.0, 0, 0, 6, 1),
            (2500.0, 500.0, 0, 0, 0, 0),
        ]
    );
    let p99: Vec<Option<f64>> = series.series.iter().map(|p| p.turn_p99_ms).collect();
    assert_eq!(p99[2], None, "no turn completed in the last interval");
    assert!(p99[0].is_some_and(|v| (29.0..31.0).contains(&v)), "{p99:?}");
    assert!(p99[1].is_some_and(|v| (49.0..51.0).contains(&v)), "{p99:?}");

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("#[Histogram log format version 1.3]"),
        "{text}"
    );
    assert!(text.contains("#[StartTime: "), "{text}");
    assert!(text.contains("#[BaseTime: "), "{text}");
    assert!(
        text.contains("\"StartTimestamp\",\"Interval_Length\""),
        "{text}"
    );
    let comments = text.lines().filter(|l| l.starts_with('#')).count();
    assert_eq!(comments, 5, "a header, then nothing but intervals: {text}");
    // Every phase seen so far is logged in every interval, empty or not.
    let log = read_log(&path);
    let row = |tag: &str, start: f64| {
        log.iter()
            .find(|(t, s, _, _)| t == tag && (*s - start).abs() < 1e-6)
            .map(|(_, _, len, n)| (*len, *n))
    };
    assert_eq!(row("upgrade", 0.0), Some((1.0, 1)));
    assert_eq!(row("turn", 0.0), Some((1.0, 2)));
    assert_eq!(row("upgrade", 1.0), Some((1.0, 0)));
    assert_eq!(row("turn", 1.0), Some((1.0, 2)));
    assert_eq!(row("turn", 2.0), Some((0.5, 0)));
    assert_eq!(row("tls", 0.0), None, "a phase never seen is never logged");
    assert_eq!(log.len(), 6);
}

#[test]
fn a_soak_keeps_two_intervals_open_and_a_small_point_per_interval() {
    let live = Arc::new(Live::default());
    let t0 = Instant::now();
    let mut r = recorder(t0, None, &live);
    for s in 0..1800u64 {
        r.file(sample(
            Phase::Turn,
            5 + s % 7,
            t0 + Duration::from_millis(s * 1000 + 500),
        ));
        r.advance(t0 + Duration::from_secs(s + 1));
        assert!(r.previous.as_ref().is_some_and(|p| p.index == s));
        assert_eq!(r.current.index, s + 1);
    }
    assert_eq!(
        live.turn_p99_us.load(Relaxed),
        r.total.get(Phase::Turn).value_at_quantile(0.99)
    );
    let (total, series) = r.finish(t0 + Duration::from_secs(1800));
    assert_eq!(total.get(Phase::Turn).len(), 1800);
    assert_eq!(series.series.len(), 1800);
    assert!(series.series.iter().all(|p| p.turn_p99_ms.is_some()));
}

#[test]
fn a_late_aggregator_closes_every_interval_it_missed() {
    let live = Arc::new(Live::default());
    let t0 = Instant::now();
    let mut r = recorder(t0, None, &live);
    live.received.store(7, Relaxed);
    r.advance(t0 + Duration::from_millis(3200));
    let (_, series) = r.finish(t0 + Duration::from_millis(3200));
    let t: Vec<f64> = series.series.iter().map(|p| p.t_ms).collect();
    assert_eq!(t, vec![1000.0, 2000.0, 3000.0, 3200.0]);
    let received: u64 = series.series.iter().map(|p| p.received).sum();
    assert_eq!(
        received, 7,
        "counted once, in the first interval it could be"
    );
}

fn raw_point(i: u64, p99: Option<f64>) -> IntervalPoint {
    IntervalPoint {
        t_ms: (i + 1) as f64 * 1000.0,
        duration_ms: 1000.0,
        live: i as i64,
        sent: i,
        received: 2 * i,
        violations: u64::from(i.is_multiple_of(7)),
        turn_p99_ms: p99,
    }
}

#[test]
fn a_long_series_is_consolidated_within_its_cap_and_keeps_every_count() {
    // 1000 intervals into 8 points: the spacing doubles each time the series fills.
    let raw: Vec<IntervalPoint> = (0..1000)
        .map(|i| raw_point(i, (i % 3 != 0).then_some(i as f64)))
        .collect();
    let mut series = BoundedSeries::new(8);
    let mut most = 0;
    for p in &raw {
        series.push(p.clone());
        most = most.max(series.points.len());
    }
    assert!(most < 8, "never holds more than its cap: {most}");
    let out = series.finish(Duration::from_secs(1));
    // 1000 / 128 intervals per point: 7 whole points and a partial one of 104 intervals.
    assert_eq!(out.interval_ms, 128_000.0);
    assert_eq!(out.series.len(), 8);
    let sum = |f: fn(&IntervalPoint) -> u64, v: &[IntervalPoint]| v.iter().map(f).sum::<u64>();
    for f in [
        (|p: &IntervalPoint| p.sent) as fn(&IntervalPoint) -> u64,
        |p| p.received,
        |p| p.violations,
    ] {
        assert_eq!(sum(f, &out.series), sum(f, &raw));
    }
    let durations: f64 = out.series.iter().map(|p| p.duration_ms).sum();
    assert_eq!(durations, 1_000_000.0);
    let last = out.series.last().unwrap();
    assert_eq!(
        (last.t_ms, last.duration_ms, last.live),
        (1_000_000.0, 104_000.0, 999)
    );
    // Each point ends where its last interval ends, and reports that interval's gauge and
    // the worst p99 among its intervals.
    let first = &out.series[0];
    assert_eq!((first.t_ms, first.live), (128_000.0, 127));
    assert_eq!(first.turn_p99_ms, Some(127.0));
}

#[test]
fn a_short_series_is_kept_as_recorded() {
    let mut series = BoundedSeries::new(SERIES_POINTS);
    let raw: Vec<IntervalPoint> = (0..5).map(|i| raw_point(i, None)).collect();
    raw.iter().for_each(|p| series.push(p.clone()));
    let out = series.finish(Duration::from_millis(250));
    assert_eq!(out.interval_ms, 250.0);
    assert_eq!(out.series, raw);
}

/// A sample keeps a named turn and its latency in microseconds; one too long for its 32
/// bits saturates (the histograms clamp it and count it clamped, as any value past their
/// range), never wraps to a short one.
#[test]
fn a_sample_keeps_its_turn_and_saturates_a_latency_too_long_for_it() {
    let at = Instant::now();
    let named = Sample::of_turn(3, Duration::from_micros(1500), at);
    assert_eq!((named.turn(), named.value_us()), (Some(3), 1500));
    assert_eq!(named.phases, Phases::from(Phase::Turn));
    let plain = Sample::new(Phase::FirstEvent, Duration::from_millis(2), at);
    assert_eq!((plain.turn(), plain.value_us()), (None, 2000));
    let long = Sample::new(Phase::Turn, Duration::from_secs(5 * 3600), at);
    assert_eq!(long.value_us(), u64::from(u32::MAX));
    let mut hist = Histograms::new();
    hist.record_us(Phase::Turn, long.value_us());
    assert_eq!(hist.clamped, 1);
    let turn = hist.get(Phase::Turn);
    assert_eq!(turn.len(), 1);
    assert!(turn.equivalent(turn.max(), super::super::MAX_US));
}

/// A sample of several phases (a turn whose latencies were equal) counts once in each of
/// them, in the interval it happened in, as separate samples would.
#[test]
fn a_sample_of_several_phases_counts_in_each() {
    let live = Arc::new(Live::default());
    let t0 = Instant::now();
    let mut r = recorder(t0, None, &live);
    let phases = Phases::from(Phase::Turn)
        .with(Phase::FirstEvent)
        .with(Phase::TurnRaw);
    r.file(Sample::new(
        phases,
        Duration::from_millis(7),
        t0 + Duration::from_millis(5),
    ));
    r.file(sample(Phase::Turn, 9, t0 + Duration::from_millis(6)));
    let (total, _) = r.finish(t0 + Duration::from_millis(500));
    assert_eq!(total.get(Phase::Turn).len(), 2);
    assert_eq!(total.get(Phase::FirstEvent).len(), 1);
    assert_eq!(total.get(Phase::TurnRaw).len(), 1);
    assert_eq!(total.get(Phase::Upgrade).len(), 0);
    let raw = total.get(Phase::TurnRaw);
    assert!(raw.equivalent(raw.max(), 7_000), "{}", raw.max());
}

/// Samples of several phases, filed into one histogram per set of phases and added into
/// each phase's when the interval closes, give every interval's log, the whole-run
/// histograms and the clamp count exactly what filing each phase apart gives: across
/// intervals (the sets' storage reused), late samples into the previous interval, and a
/// value past the histograms' bound.
#[test]
fn a_set_of_phases_filed_once_logs_and_totals_as_each_phase_apart() {
    let dir = tempfile::tempdir().unwrap();
    let live = Arc::new(Live::default());
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let all = Phases::from(Phase::Turn)
        .with(Phase::FirstEvent)
        .with(Phase::TurnRaw);
    let two = Phases::from(Phase::Turn).with(Phase::TurnRaw);
    let too_long = Duration::from_micros(crate::metrics::MAX_US + 5);
    // (phases, value, when, advance to before filing)
    let script: Vec<(Phases, Duration, u64, Option<u64>)> = vec![
        (all, Duration::from_millis(7), 100, None),
        (two, Duration::from_millis(9), 200, None),
        (
            Phases::from(Phase::Upgrade),
            Duration::from_millis(1),
            300,
            None,
        ),
        (all, too_long, 400, None),
        (all, Duration::from_millis(3), 1_100, Some(1_000)),
        // Late: for interval 0, filed while interval 1 is current.
        (two, Duration::from_millis(4), 950, None),
        (all, Duration::from_millis(5), 2_100, Some(2_000)),
        (two, Duration::from_millis(6), 3_100, Some(3_000)),
        (all, Duration::from_millis(8), 4_100, Some(4_000)),
    ];
    let run = |split: bool, path: &Path| {
        let mut r = recorder(t0, Some(path), &live);
        for (phases, value, when, advance) in &script {
            if let Some(a) = advance {
                r.advance(at(*a));
            }
            if split {
                for phase in phases.iter() {
                    r.file(Sample::new(phase, *value, at(*when)));
                }
            } else {
                r.file(Sample::new(*phases, *value, at(*when)));
            }
        }
        r.finish(at(4_500))
    };
    let (sets_path, split_path) = (dir.path().join("sets.hlog"), dir.path().join("split.hlog"));
    let (sets, _) = run(false, &sets_path);
    let (split, _) = run(true, &split_path);
    let logged = read_log(&sets_path);
    assert_eq!(logged, read_log(&split_path));
    assert!(
        logged
            .iter()
            .any(|(tag, _, _, n)| tag == "first_event" && *n > 0),
        "{logged:?}"
    );
    for phase in Phase::ALL {
        assert_eq!(sets.get(phase), split.get(phase), "{}", phase.name());
    }
    assert_eq!(sets.get(Phase::Turn).len(), 8);
    assert_eq!(sets.clamped, 3);
    assert_eq!(sets.clamped, split.clamped);
}
