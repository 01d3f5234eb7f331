//! Batching samples from connection tasks into one set of histograms, interval by interval.

use super::interval::{IntervalConfig, IntervalSeries, Recorder, Sample};
use super::{Histograms, Live};
use crate::model::{Phase, Phases};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Samples a task collects before it hands them over: a busy connection holds at most 768
/// bytes of them (6 KiB at 256, ~590 MiB over 100,000 busy connections), one channel send
/// per 32 samples. At 256, perf put ~4% of the client's user CPU per echoed message on
/// storing the sample (`benches/echo.rs --only stampede`, 100 connections, one thread);
/// at 32, 3.5%: a change in CPU per message within the bench's run-to-run noise
/// (2026-12-05).
const BATCH: usize = 32;

type Batch = Vec<Sample>;

/// A connection's local sample store. Hands its samples to the aggregator when it holds
/// `BATCH` of them, or when its oldest is older than an interval, so a long soak costs a
/// connection at most `BATCH` samples of memory and an interval's samples reach the
/// aggregator while that interval is still open. Each sample is stamped when it is recorded.
pub struct SampleBuffer {
    samples: Batch,
    /// How old the oldest sample may get before the buffer is handed over.
    stale_after: Duration,
    /// When the oldest buffered sample goes stale (its stamp plus `stale_after`), worked
    /// out once when it is kept rather than for every sample after it.
    due_at: Option<Instant>,
    tx: mpsc::Sender<Batch>,
    /// How many samples the last hand-over held (what the next batch reserves).
    last_batch: usize,
}

impl SampleBuffer {
    /// Records a latency of `phase` stamped now; when that makes the buffer due, hands it
    /// over (waiting for room in the aggregator's channel: its back-pressure).
    pub async fn record(&mut self, phase: Phase, value: Duration) {
        self.record_at(phase, value, Instant::now()).await;
    }

    /// [`Self::record`] stamped `at` (a caller filing several samples of one moment reads
    /// the clock once).
    pub async fn record_at(&mut self, phase: Phase, value: Duration, at: Instant) {
        if self.add(phase, value, at) {
            self.hand_over().await;
        }
    }

    /// [`Self::record_at`] without waiting: keeps the sample and says whether the buffer is
    /// due to be handed over ([`Self::flush`]). For a caller filing several samples at
    /// once (a turn's three), which then hands them over once; it may hold a few more
    /// than `BATCH` meanwhile.
    pub fn add(&mut self, phases: impl Into<Phases>, value: Duration, at: Instant) -> bool {
        self.add_sample(Sample::new(phases, value, at))
    }

    /// Keeps the turn latency of a named expectation (`turn` indexes `Plan::turn_names`),
    /// as [`Self::add`].
    pub fn add_turn(&mut self, turn: u16, value: Duration, at: Instant) -> bool {
        self.add_sample(Sample::of_turn(turn, value, at))
    }

    fn add_sample(&mut self, sample: Sample) -> bool {
        let at = sample.at;
        if self.samples.capacity() == 0 {
            // The first sample since a hand-over: room for as many as the last batch held,
            // in one allocation instead of a doubling per few samples; a quiet connection
            // (a few samples per interval) keeps reserving only a few.
            self.samples.reserve_exact(self.last_batch.max(1));
        }
        if self.samples.is_empty() {
            self.due_at = Some(at + self.stale_after);
        }
        self.samples.push(sample);
        self.samples.len() >= BATCH || self.stale(at)
    }

    /// Boxed: a hand-over is rare (once per batch), and the channel send's state would
    /// otherwise be part of every future that records a sample, idle or not.
    async fn hand_over(&mut self) {
        Box::pin(self.flush()).await;
    }

    /// When the oldest buffered sample goes stale; `None` when the buffer is empty. A task
    /// that may sit idle past it (waiting on a slow server, a long think) can wake then and
    /// hand its samples over ([`Self::stale`], [`Self::flush`]), so they land in their
    /// interval.
    pub fn stale_at(&self) -> Option<Instant> {
        self.due_at
    }

    /// Whether the oldest buffered sample is stale at `now`.
    pub fn stale(&self, now: Instant) -> bool {
        self.stale_at().is_some_and(|s| now >= s)
    }

    pub async fn flush(&mut self) {
        if self.samples.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.samples);
        self.due_at = None;
        // A full batch may run a few past BATCH (a turn files its three samples at once):
        // room for those too, so the next one is not regrown to twice the size.
        self.last_batch = batch.len().min(BATCH + 8);
        // The aggregator outlives every buffer (it ends when the last sender drops).
        let _ = self.tx.send(batch).await;
    }
}

/// What the aggregator hands back when the run is over.
#[derive(Debug)]
pub struct Aggregated {
    /// Every sample of the run, per phase.
    pub histograms: Histograms,
    /// One point per interval (the `.hlog` already holds the interval histograms).
    pub intervals: IntervalSeries,
}

/// Owns the run's histograms; finishes when every [`SampleBuffer`] is dropped.
pub struct Aggregator {
    tx: mpsc::Sender<Batch>,
    stale_after: Duration,
    task: JoinHandle<Aggregated>,
}

impl Aggregator {
    /// Starts aggregating a run that starts at `t0`: intervals are counted from it, and
    /// `live` is read at the end of each (and its `turn_p99_us` kept up to date).
    pub fn spawn(t0: Instant, config: IntervalConfig, live: Arc<Live>) -> Aggregator {
        let (tx, rx) = mpsc::channel::<Batch>(1024);
        let stale_after = config.every;
        let recorder = Recorder::new(t0, config, live);
        let task = tokio::spawn(aggregate(recorder, rx));
        Aggregator {
            tx,
            stale_after,
            task,
        }
    }

    /// A buffer for one task.
    pub fn buffer(&self) -> SampleBuffer {
        SampleBuffer {
            samples: Vec::new(),
            due_at: None,
            stale_after: self.stale_after,
            tx: self.tx.clone(),
            last_batch: 0,
        }
    }

    /// Waits for all buffers to be flushed and dropped, then returns the merged histograms
    /// and the series (the interval log is complete by then).
    pub async fn finish(self) -> Aggregated {
        drop(self.tx);
        match self.task.await {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(error = %e, "the metrics aggregator failed");
                Aggregated {
                    histograms: Histograms::new(),
                    intervals: IntervalSeries::default(),
                }
            }
        }
    }
}

/// The aggregator task: files batches as they come and closes each interval at its end.
async fn aggregate(mut recorder: Recorder, mut rx: mpsc::Receiver<Batch>) -> Aggregated {
    loop {
        let next_end = recorder.next_end();
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(batch) => {
                    // Close what ended first, so a batch cannot land in a stale interval.
                    recorder.advance(Instant::now());
                    batch.into_iter().for_each(|s| recorder.file(s));
                }
                None => break,
            },
            _ = tokio::time::sleep_until(next_end) => recorder.advance(Instant::now()),
        }
    }
    let (histograms, intervals) = recorder.finish(Instant::now());
    Aggregated {
        histograms,
        intervals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_sample_from_every_buffer_arrives() {
        let live = Arc::new(Live::default());
        let agg = Aggregator::spawn(Instant::now(), IntervalConfig::default(), live);
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let mut buf = agg.buffer();
            tasks.push(tokio::spawn(async move {
                for i in 0..1000u64 {
                    buf.record(Phase::Turn, Duration::from_micros(t * 1000 + i + 1))
                        .await;
                }
                buf.flush().await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let done = agg.finish().await;
        assert_eq!(done.histograms.get(Phase::Turn).len(), 8000);
        assert_eq!(done.histograms.get(Phase::Upgrade).len(), 0);
        assert!(!done.intervals.series.is_empty());
    }

    #[tokio::test]
    async fn a_buffer_hands_over_once_its_oldest_sample_is_stale() {
        let live = Arc::new(Live::default());
        let config = IntervalConfig {
            every: Duration::from_millis(50),
            log: None,
        };
        let agg = Aggregator::spawn(Instant::now(), config, live);
        let mut buf = agg.buffer();
        assert_eq!(buf.stale_at(), None);
        buf.record(Phase::Upgrade, Duration::from_millis(1)).await;
        let stale = buf.stale_at().unwrap();
        assert!(
            !buf.stale(stale - Duration::from_millis(1)),
            "not stale yet"
        );
        assert!(buf.stale(stale));
        assert!(
            !buf.add(
                Phase::Upgrade,
                Duration::from_millis(1),
                stale - Duration::from_millis(1)
            ),
            "one more sample before then: kept"
        );
        // A sample filed once the oldest is stale makes the buffer due at once.
        assert!(buf.add(Phase::Upgrade, Duration::from_millis(2), stale));
        buf.flush().await;
        assert!(buf.samples.is_empty(), "handed over");
        drop(buf);
        let done = agg.finish().await;
        assert_eq!(done.histograms.get(Phase::Upgrade).len(), 3);
    }
}
