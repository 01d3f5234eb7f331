//! Interval histograms and time series: every interval (1 s by default) the samples recorded
//! in it are written to an HdrHistogram interval log (`intervals.hlog`, one histogram per
//! phase, tagged with the phase name) and summed into a point of the run's time series
//! (`intervals.json`).
//!
//! Memory stays bounded on a long soak: at most two intervals are open at once (the current
//! one and the previous one, which still takes stragglers), each closed interval is streamed
//! to the log and dropped, and the series keeps only a few numbers per interval, and at
//! most [`SERIES_POINTS`] of them: a longer run's series is consolidated (pairs of points
//! merged, the spacing doubled; round-robin database style), so its memory follows the
//! configuration, not the run's length. The `.hlog` keeps every interval.

use super::{Histograms, Live, PhaseStats};
use crate::model::{Phase, Phases};
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The default interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Points the in-memory time series holds at most (1 s intervals: 68 minutes before the
/// first consolidation; 72 bytes each).
pub const SERIES_POINTS: usize = 4096;

/// How the aggregator slices the run into intervals, and where the log goes.
#[derive(Debug)]
pub struct IntervalConfig {
    pub every: Duration,
    /// The `.hlog` file to stream closed intervals to; `None` keeps only the series.
    pub log: Option<IntervalLog>,
}

impl Default for IntervalConfig {
    fn default() -> Self {
        IntervalConfig {
            every: DEFAULT_INTERVAL,
            log: None,
        }
    }
}

/// `intervals.json`: the run's time series, one point per interval (`interval_ms` apart: the
/// configured interval, times a power of two when a long run's series was consolidated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalSeries {
    pub interval_ms: f64,
    pub series: Vec<IntervalPoint>,
}

impl IntervalSeries {
    /// Counts violations found after the load, by the session oracles (exclusivity,
    /// lifetime, …), each in the interval its time `at_ms` (ms from the run start) falls
    /// in, as the streaming oracles' were counted while it ran. One past the series' end
    /// (the liveness probe runs after the load) is in no interval: summary.json has it.
    pub fn add_violations_at(&mut self, at_ms: impl IntoIterator<Item = f64>) {
        for at in at_ms {
            let within = self
                .series
                .iter_mut()
                .find(|p| at <= p.t_ms && at >= p.t_ms - p.duration_ms);
            if let Some(point) = within {
                point.violations = point.violations.saturating_add(1);
            }
        }
    }
}

impl IntervalPoint {
    /// `later`, the interval right after this one, folded in: counts add up, the gauges
    /// (`live`, the end) are the later one's, and the turn p99 is the worse of the two (an
    /// upper bound of the merged interval's p99; the `.hlog` has the exact histograms).
    fn absorb(&mut self, later: &IntervalPoint) {
        self.t_ms = later.t_ms;
        self.duration_ms += later.duration_ms;
        self.live = later.live;
        self.sent = self.sent.saturating_add(later.sent);
        self.received = self.received.saturating_add(later.received);
        self.violations = self.violations.saturating_add(later.violations);
        self.turn_p99_ms = match (self.turn_p99_ms, later.turn_p99_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// A time series that holds at most `cap` points: when it is full, neighbouring points are
/// merged pairwise and every later point covers twice as many intervals (`stride`).
#[derive(Debug)]
pub(crate) struct BoundedSeries {
    cap: usize,
    points: Vec<IntervalPoint>,
    /// Intervals per point (a power of two).
    stride: u32,
    /// The point being filled, with the intervals it holds so far (fewer than `stride`).
    filling: Option<(IntervalPoint, u32)>,
}

impl BoundedSeries {
    /// An empty series of at most `cap` points (at least 2, so halving makes room).
    pub(crate) fn new(cap: usize) -> BoundedSeries {
        BoundedSeries {
            cap: cap.max(2),
            points: Vec::new(),
            stride: 1,
            filling: None,
        }
    }

    /// Adds the next interval's point.
    pub(crate) fn push(&mut self, point: IntervalPoint) {
        let (point, held) = match self.filling.take() {
            Some((mut acc, held)) => {
                acc.absorb(&point);
                (acc, held + 1)
            }
            None => (point, 1),
        };
        if held < self.stride {
            self.filling = Some((point, held));
            return;
        }
        self.points.push(point);
        if self.points.len() >= self.cap {
            self.halve();
        }
    }

    fn halve(&mut self) {
        let old = std::mem::take(&mut self.points);
        self.points = old
            .chunks(2)
            .filter_map(|pair| {
                let (first, rest) = pair.split_first()?;
                let mut merged = first.clone();
                rest.iter().for_each(|p| merged.absorb(p));
                Some(merged)
            })
            .collect();
        self.stride = self.stride.saturating_mul(2);
    }

    /// The series, with a partly filled last point as it is (its `duration_ms` says how
    /// long it covers), and `interval_ms` the spacing of its points.
    pub(crate) fn finish(mut self, every: Duration) -> IntervalSeries {
        if let Some((point, _)) = self.filling.take() {
            self.points.push(point);
        }
        IntervalSeries {
            interval_ms: ms(every) * f64::from(self.stride),
            series: self.points,
        }
    }
}

/// One interval. `sent`, `received` and `violations` count what happened within it; `live`
/// is the number of open connections at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalPoint {
    /// The interval's end, in ms from the run start.
    pub t_ms: f64,
    /// Its length: `interval_ms` except for the run's last, partial interval.
    pub duration_ms: f64,
    pub live: i64,
    pub sent: u64,
    pub received: u64,
    pub violations: u64,
    /// The turn p99 of the turns that completed in the interval; `None` when none did.
    pub turn_p99_ms: Option<f64>,
}

/// An HdrHistogram interval log being written (the format `HistogramLogReader` and
/// HdrHistogram's log processors read). Lines are flushed as each interval closes, so the
/// file can be followed while the run goes on.
pub struct IntervalLog {
    path: PathBuf,
    file: BufWriter<File>,
    serializer: V2DeflateSerializer,
}

impl std::fmt::Debug for IntervalLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalLog")
            .field("path", &self.path)
            .finish()
    }
}

impl IntervalLog {
    /// Creates (truncates) the log file; the header is written when the run starts.
    pub fn create(path: &Path) -> std::io::Result<IntervalLog> {
        Ok(IntervalLog {
            path: path.to_path_buf(),
            file: BufWriter::new(File::create(path)?),
            serializer: V2DeflateSerializer::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header: format version, StartTime and BaseTime (both the run start, so every
    /// interval's timestamp is seconds from it) and the column legend. Values, and the
    /// per-interval max column, are microseconds.
    fn header(&mut self, start: SystemTime) -> std::io::Result<()> {
        IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "[Logged with stampede {}]",
                env!("CARGO_PKG_VERSION")
            ))
            .add_comment("[Histogram log format version 1.3]")
            .add_comment("[Values in microseconds; each histogram is tagged with its phase]")
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut self.file, &mut self.serializer)?;
        writeln!(
            self.file,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        self.file.flush()
    }

    /// Appends one tagged histogram: `start` is its offset from the run start.
    fn append(
        &mut self,
        phase: Phase,
        h: &hdrhistogram::Histogram<u64>,
        start: Duration,
        length: Duration,
    ) -> std::io::Result<()> {
        // A builder with no headers writes nothing: it only lends a writer for one line.
        let mut writer =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.file, &mut self.serializer)?;
        writer
            .write_histogram(h, start, length, Tag::new(phase.name()))
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// One sample, stamped when it was recorded: 24 bytes (a connection buffers up to a batch
/// of them, three per answered request; with a `Duration` and an `Option` it was 40).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    /// The latency in microseconds (the histograms' unit), saturated at `u32::MAX` (71
    /// minutes; the histograms clamp far below, at [`MAX_US`](super::MAX_US)).
    value_us: u32,
    /// The phases it is the latency of (one, or a turn's that were equal: [`Phases`]).
    pub phases: Phases,
    /// [`Sample::turn`], or [`NO_TURN`].
    turn: u16,
}

/// [`Sample::turn`] when the sample is no named expectation's (turn names are far fewer:
/// [`MAX_TURN_NAMES`](crate::model::MAX_TURN_NAMES)).
const NO_TURN: u16 = u16::MAX;

impl Sample {
    /// A sample of `phases` (one phase, or several of one value) worth `value`, stamped
    /// `at`.
    pub fn new(phases: impl Into<Phases>, value: Duration, at: Instant) -> Sample {
        Sample {
            at,
            value_us: u32::try_from(value.as_micros()).unwrap_or(u32::MAX),
            phases: phases.into(),
            turn: NO_TURN,
        }
    }

    /// The turn latency of the named expectation `turn` (its index in
    /// `Plan::turn_names`): it goes to that name's whole-run histogram only (its `Turn`
    /// sample is recorded apart, as for every expectation).
    pub fn of_turn(turn: u16, value: Duration, at: Instant) -> Sample {
        Sample {
            turn: turn.min(NO_TURN - 1),
            ..Sample::new(Phase::Turn, value, at)
        }
    }

    /// The latency, in microseconds.
    pub fn value_us(&self) -> u64 {
        u64::from(self.value_us)
    }

    /// The named expectation it is the turn of, if any.
    pub fn turn(&self) -> Option<u16> {
        (self.turn != NO_TURN).then_some(self.turn)
    }
}

/// One histogram per set of phases sampled at once ([`Open::sets`]).
type SetHistograms = Vec<(Phases, Histogram<u64>)>;

/// An interval still taking samples.
struct Open {
    index: u64,
    hist: Histograms,
    /// Samples of several phases at once (a turn whose first event and raw turn equal it:
    /// most answers of a closed loop), one histogram per set of phases, recorded once
    /// instead of once per phase and added into each phase's histogram when the interval
    /// closes ([`Open::fold`]). At most one per distinct set (a handful).
    sets: SetHistograms,
    /// Gauges read when the interval ended (`None` while it is the current one).
    point: Option<IntervalPoint>,
}

/// The aggregator's state: the whole run's histograms plus the open intervals.
pub(crate) struct Recorder {
    every: Duration,
    t0: Instant,
    live: std::sync::Arc<Live>,
    total: Histograms,
    /// Phases that had a sample so far: each closed interval logs all of them, so an
    /// interval in which no turn completed shows as an empty turn histogram, not a gap.
    seen: [bool; Phase::ALL.len()],
    /// The interval that ended last, kept open for samples that arrive late.
    previous: Option<Open>,
    current: Open,
    /// When `current` starts: a sample from before it goes into `previous`.
    current_start: Instant,
    log: Option<IntervalLog>,
    series: BoundedSeries,
    /// Live's cumulative counts at the last interval end.
    counted: [u64; 3],
    /// A closed interval's histograms, emptied, for the next one: every interval reuses
    /// the same few (one per phase, hundreds of KiB together) instead of allocating them
    /// anew, so the client's memory does not rise and fall with the intervals.
    spare: Option<(Histograms, SetHistograms)>,
}

impl Recorder {
    pub(crate) fn new(t0: Instant, config: IntervalConfig, live: std::sync::Arc<Live>) -> Recorder {
        let every = config.every.max(Duration::from_millis(1));
        let mut log = config.log;
        if let Some(l) = log.as_mut() {
            // The wall-clock time of `t0`, which may still be a few ms ahead.
            let now = Instant::now();
            let wall = SystemTime::now();
            let start = if t0 >= now {
                wall.checked_add(t0 - now)
            } else {
                wall.checked_sub(now - t0)
            }
            .unwrap_or(wall);
            if let Err(e) = l.header(start) {
                warn_log(l, &e);
                log = None;
            }
        }
        Recorder {
            every,
            t0,
            live,
            total: Histograms::new(),
            seen: [false; Phase::ALL.len()],
            previous: None,
            current: open(0, None),
            current_start: t0,
            log,
            series: BoundedSeries::new(SERIES_POINTS),
            counted: [0; 3],
            spare: None,
        }
    }

    /// When the current interval ends.
    pub(crate) fn next_end(&self) -> Instant {
        self.end_of(self.current.index)
    }

    fn end_of(&self, index: u64) -> Instant {
        self.t0 + self.start_of(index + 1)
    }

    /// When the interval `index` starts, from `t0`.
    fn start_of(&self, index: u64) -> Duration {
        self.every
            .saturating_mul(u32::try_from(index).unwrap_or(u32::MAX))
    }

    /// Files one sample into the interval it happened in. A sample for an interval that is
    /// already written (its connection sat on it for more than an interval) goes into the
    /// oldest interval still open instead: late, but never lost. The whole-run histograms
    /// are exact either way; only its place in the log moves.
    pub(crate) fn file(&mut self, sample: Sample) {
        if let Some(turn) = sample.turn() {
            self.total.record_turn_us(turn, sample.value_us());
            return;
        }
        // Into its interval only: the whole run's histograms take each interval's as it
        // closes (one merge a second instead of a second record per sample).
        // Before the current interval's start is the previous interval (or an older one,
        // already written): one comparison of instants instead of working out the index.
        let open = match self.previous.as_mut() {
            Some(prev) if sample.at < self.current_start => prev,
            _ => &mut self.current,
        };
        match sample.phases.single() {
            Some(phase) => {
                if let Some(seen) = self.seen.get_mut(phase.index()) {
                    *seen = true;
                }
                open.hist.record_us(phase, sample.value_us());
            }
            None => open.record_set(sample.phases, sample.value_us()),
        }
    }

    /// Closes every interval that ended by `now`: reads the gauges for it, and writes out
    /// the one before it (whose grace for late samples is over).
    pub(crate) fn advance(&mut self, now: Instant) {
        while now >= self.next_end() {
            let index = self.current.index;
            let point = self.gauges(index, self.every);
            let next = open(index + 1, self.spare.take());
            self.current_start = self.end_of(index);
            let mut ended = std::mem::replace(&mut self.current, next);
            ended.point = Some(point);
            if let Some(prev) = self.previous.replace(ended) {
                self.close(prev);
            }
            self.publish();
        }
    }

    /// The run is over at `now`: closes the partial last interval and returns the results.
    pub(crate) fn finish(mut self, now: Instant) -> (Histograms, IntervalSeries) {
        self.advance(now);
        if let Some(prev) = self.previous.take() {
            self.close(prev);
        }
        let start = self.start_of(self.current.index);
        let length = now.saturating_duration_since(self.t0).saturating_sub(start);
        if !length.is_zero() {
            let index = self.current.index;
            let next = open(index + 1, self.spare.take());
            let mut last = std::mem::replace(&mut self.current, next);
            last.point = Some(self.gauges(index, length));
            self.close(last);
        } else {
            // Ended right at an interval's start: nothing to log, but whatever it holds
            // still counts for the run.
            self.current.fold(&mut self.seen);
            self.total.merge(&self.current.hist);
        }
        self.publish();
        if let Some(log) = self.log.as_mut() {
            if let Err(e) = log.file.flush() {
                warn_log(log, &e);
            }
        }
        (self.total, self.series.finish(self.every))
    }

    /// Counts since the last interval end and the gauges now, for the interval `index`.
    fn gauges(&mut self, index: u64, length: Duration) -> IntervalPoint {
        let now = [
            self.live.sent.load(Relaxed),
            self.live.received.load(Relaxed),
            self.live.violations.load(Relaxed),
        ];
        let [sent, received, violations] =
            [0, 1, 2].map(|i| now[i].saturating_sub(self.counted[i]));
        self.counted = now;
        let start = self.start_of(index);
        IntervalPoint {
            t_ms: ms(start + length),
            duration_ms: ms(length),
            live: self.live.live.load(Relaxed),
            sent,
            received,
            violations,
            turn_p99_ms: None,
        }
    }

    /// Streams a finished interval to the log and keeps its point of the series.
    fn close(&mut self, mut interval: Open) {
        interval.fold(&mut self.seen);
        self.total.merge(&interval.hist);
        let Some(mut point) = interval.point else {
            self.spare = Some((interval.hist, interval.sets));
            return;
        };
        let turn = interval.hist.get(Phase::Turn);
        point.turn_p99_ms = (!turn.is_empty()).then(|| PhaseStats::of(turn).p99_ms);
        let start = self.start_of(interval.index);
        let length = Duration::from_secs_f64(point.duration_ms / 1000.0);
        if let Some(log) = self.log.as_mut() {
            let written = Phase::ALL
                .iter()
                .filter(|p| self.seen.get(p.index()).copied().unwrap_or(false))
                .try_for_each(|p| log.append(*p, interval.hist.get(*p), start, length))
                .and_then(|()| log.file.flush());
            if let Err(e) = written {
                warn_log(log, &e);
                self.log = None;
            }
        }
        self.series.push(point);
        self.spare = Some((interval.hist, interval.sets));
    }

    /// The running turn p99 for the progress display: of the intervals closed so far (the
    /// latest one or two are still taking samples).
    fn publish(&self) {
        let turn = self.total.get(Phase::Turn);
        if !turn.is_empty() {
            self.live
                .turn_p99_us
                .store(turn.value_at_quantile(0.99), Relaxed);
        }
    }
}

/// Interval `index`, in `reuse`'s storage (emptied) when there is one.
impl Open {
    /// Records `us` for every phase of `phases` (two or more) in one histogram: the set's.
    /// A clamped value counts once per phase, as it would recorded phase by phase.
    fn record_set(&mut self, phases: Phases, us: u64) {
        let us = us.max(1);
        let clamped = us.min(super::MAX_US);
        if clamped != us {
            self.hist.clamped += u64::from(phases.count());
        }
        let at = match self.sets.iter().position(|(set, _)| *set == phases) {
            Some(at) => at,
            None => {
                self.sets.push((phases, super::new_histogram()));
                self.sets.len() - 1
            }
        };
        if let Some((_, h)) = self.sets.get_mut(at) {
            // Cannot fail: the value is inside the histogram's bounds.
            let _ = h.record(clamped);
        }
    }

    /// Adds each set's histogram into its phases' own (marking them `seen`), and empties
    /// it: the interval's histograms are then what recording phase by phase gives.
    fn fold(&mut self, seen: &mut [bool]) {
        for (set, h) in &mut self.sets {
            if h.is_empty() {
                continue;
            }
            for phase in set.iter() {
                if let Some(s) = seen.get_mut(phase.index()) {
                    *s = true;
                }
                self.hist.add(phase, h);
            }
            h.reset();
        }
    }
}

/// Interval `index`, in `reuse`'s storage (emptied) when there is one.
fn open(index: u64, reuse: Option<(Histograms, SetHistograms)>) -> Open {
    let (hist, sets) = match reuse {
        // The sets were emptied when their interval closed (`Open::fold`).
        Some((mut h, sets)) => {
            h.reset();
            (h, sets)
        }
        None => (Histograms::new(), Vec::new()),
    };
    Open {
        index,
        hist,
        sets,
        point: None,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn warn_log(log: &IntervalLog, e: &std::io::Error) {
    tracing::warn!(path = %log.path.display(), error = %e, "cannot write the interval log; it stops here");
}

#[cfg(test)]
mod tests;
