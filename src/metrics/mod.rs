//! Latency histograms per phase and the counters of a run.
//!
//! Connection tasks never touch a shared histogram: each keeps a small [`SampleBuffer`] and
//! hands it to the [`aggregator`] in batches (one channel send per few hundred samples, not
//! per sample). Counters live in each task and are merged with `+=` when it ends.

pub mod aggregator;
pub mod encoded;
pub mod interval;
pub mod tally;

pub use aggregator::{Aggregated, Aggregator, SampleBuffer};
pub use interval::{IntervalConfig, IntervalLog, IntervalPoint, IntervalSeries};
pub use tally::Tally;

use crate::model::Phase;
use std::sync::atomic::{AtomicI64, AtomicU64};

use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Highest trackable latency: 60 s, in microseconds.
pub const MAX_US: u64 = 60_000_000;

/// Live figures for a progress display; updated with relaxed atomics, read occasionally.
#[derive(Debug, Default)]
pub struct Live {
    pub live: AtomicI64,
    /// Messages sent; one add per message from every connection, hence a [`Tally`].
    pub sent: Tally,
    /// Messages received, as `sent`.
    pub received: Tally,
    pub violations: AtomicU64,
    /// Connection attempts the server never answered (refused or reset at TCP, an upgrade
    /// that timed out or broke): shown while the run goes on, so a closed port under a long
    /// ramp does not read "0 violations" until its end.
    pub unanswered: AtomicU64,
    /// Connections that dialled at least once and have ended (those the run's end or
    /// Ctrl-C stopped before their start are left out: they attempted nothing).
    pub finished: AtomicU64,
    /// Of those, the connections the run's end (its duration or Ctrl-C) stopped before
    /// their script did: shown apart, so a run cut short does not read "200/200 done".
    pub stopped: AtomicU64,
    /// The turn p99 so far, in µs (0 before the first turn); the aggregator updates it at
    /// the end of each interval.
    pub turn_p99_us: AtomicU64,
    /// When the load starts (the swarm's `t0`): set once by the swarm. Calibration and
    /// logins come before it, so a display counts the run's time from here.
    pub load_started: std::sync::OnceLock<std::time::Instant>,
    /// When the load ended: set once by the swarm, at the instant it measures the run's
    /// length from `load_started`. A display stops its clock here, so the checks, probes
    /// and writing that follow never count as the run's time: its last line (the run's
    /// length) then never reads less than a tick before it.
    pub load_ended: std::sync::OnceLock<std::time::Instant>,
    /// Calibration's connections the target accepted just before the load (0 without
    /// calibration): set before the swarm starts, which then knows the URL's path took
    /// connections (`swarm::unreachable`).
    pub calibration_accepted: AtomicU64,
}

/// Errors from reading histograms back.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("histogram {phase}: {reason}")]
    Decode { phase: String, reason: String },
    /// A phase's stored encoding does not read back (see [`encoded`]).
    #[error("histogram {phase}: {source}")]
    Encoded {
        phase: String,
        source: encoded::EncodedHistogramError,
    },
}

/// One histogram per phase, in microseconds (1 µs – 60 s, 3 significant digits; storage
/// grows with the values recorded, see [`new_histogram`]).
#[derive(Debug, Clone)]
pub struct Histograms {
    by_phase: Vec<Histogram<u64>>,
    /// Named expectations' turn latencies, by name (at most
    /// [`MAX_TURN_NAMES`](crate::model::MAX_TURN_NAMES)). While a run records, entries are
    /// indexed by `Plan::turn_names` and unnamed; [`name_turns`](Self::name_turns) names them.
    turns: Vec<(String, Histogram<u64>)>,
    /// Samples above [`MAX_US`], clamped to it; counted so a clamp is never silent.
    pub clamped: u64,
}

impl Default for Histograms {
    fn default() -> Self {
        Self::new()
    }
}

impl Histograms {
    /// Empties every histogram, keeping its storage: an interval's histograms are reused
    /// for the next one instead of being allocated and freed every interval.
    pub fn reset(&mut self) {
        for h in &mut self.by_phase {
            h.reset();
        }
        self.turns.clear();
        self.clamped = 0;
    }

    pub fn new() -> Self {
        Histograms {
            by_phase: Phase::ALL.iter().map(|_| new_histogram()).collect(),
            turns: Vec::new(),
            clamped: 0,
        }
    }

    /// Records one sample; values beyond the range are clamped and counted.
    pub fn record(&mut self, phase: Phase, value: Duration) {
        self.record_us(phase, value.as_micros() as u64);
    }

    /// [`Self::record`] of a latency in microseconds.
    pub fn record_us(&mut self, phase: Phase, us: u64) {
        let us = us.max(1);
        let clamped = us.min(MAX_US);
        if clamped != us {
            self.clamped += 1;
        }
        if let Some(h) = self.by_phase.get_mut(phase.index()) {
            // Cannot fail: the value is inside the histogram's bounds.
            let _ = h.record(clamped);
        }
    }

    /// Records a named expectation's turn; `turn` indexes `Plan::turn_names` (an index
    /// past [`MAX_TURN_NAMES`](crate::model::MAX_TURN_NAMES) is dropped: validation keeps
    /// scenarios under it, and a hand-edited plan must not grow this without bound).
    pub fn record_turn(&mut self, turn: u16, value: Duration) {
        self.record_turn_us(turn, value.as_micros() as u64);
    }

    /// [`Self::record_turn`] of a latency in microseconds.
    pub fn record_turn_us(&mut self, turn: u16, us: u64) {
        let index = usize::from(turn);
        if index >= crate::model::MAX_TURN_NAMES {
            return;
        }
        while self.turns.len() <= index {
            self.turns.push((String::new(), new_histogram()));
        }
        let _ = self.turns[index].1.record(us.clamp(1, MAX_US));
    }

    /// Names the turn histograms recorded by index: `names` is `Plan::turn_names`.
    pub fn name_turns(&mut self, names: &[String]) {
        for (i, (name, _)) in self.turns.iter_mut().enumerate() {
            if let Some(n) = names.get(i) {
                name.clone_from(n);
            }
        }
        self.turns
            .retain(|(name, h)| !name.is_empty() && !h.is_empty());
    }

    /// The named turn histograms, in the order their names first appear in the plan.
    pub fn turns(&self) -> impl Iterator<Item = (&str, &Histogram<u64>)> {
        self.turns.iter().map(|(n, h)| (n.as_str(), h))
    }

    /// One named turn histogram.
    pub fn turn(&self, name: &str) -> Option<&Histogram<u64>> {
        self.turns.iter().find(|(n, _)| n == name).map(|(_, h)| h)
    }

    pub fn get(&self, phase: Phase) -> &Histogram<u64> {
        &self.by_phase[phase.index()]
    }

    /// Adds every sample of `other` (lossless).
    /// Adds `h` (same bounds, auto-resizing: cannot fail) into `phase`'s histogram.
    pub fn add(&mut self, phase: Phase, h: &Histogram<u64>) {
        if let Some(mine) = self.by_phase.get_mut(phase.index()) {
            let _ = mine.add(h);
        }
    }

    pub fn merge(&mut self, other: &Histograms) {
        for (mine, theirs) in self.by_phase.iter_mut().zip(&other.by_phase) {
            // Both auto-resize (`new_histogram`, `decode_one`): `add` grows, cannot fail.
            let _ = mine.add(theirs);
        }
        for (name, theirs) in &other.turns {
            let room = self.turns.len() < crate::model::MAX_TURN_NAMES;
            match self.turns.iter_mut().find(|(n, _)| n == name) {
                Some((_, mine)) => {
                    let _ = mine.add(theirs);
                }
                None if room => self.turns.push((name.clone(), theirs.clone())),
                None => {}
            }
        }
        self.clamped += other.clamped;
    }

    /// Serializes each non-empty phase as base64 of HdrHistogram's V2+deflate encoding;
    /// named turns under `turn:NAME`.
    pub fn encode(&self) -> BTreeMap<String, String> {
        use base64::Engine;
        let mut out = BTreeMap::new();
        let phases = Phase::ALL
            .iter()
            .map(|p| (p.name().to_string(), self.get(*p)));
        let turns = self.turns().map(|(n, h)| (format!("{TURN_PREFIX}{n}"), h));
        for (key, h) in phases.chain(turns) {
            if h.is_empty() {
                continue;
            }
            let mut bytes = Vec::new();
            if V2DeflateSerializer::new().serialize(h, &mut bytes).is_ok() {
                out.insert(key, base64::engine::general_purpose::STANDARD.encode(bytes));
            }
        }
        out
    }

    /// Reads back what [`encode`](Self::encode) wrote.
    pub fn decode(encoded: &BTreeMap<String, String>) -> Result<Histograms, MetricsError> {
        let mut out = Histograms::new();
        for phase in Phase::ALL {
            let Some(text) = encoded.get(phase.name()) else {
                continue;
            };
            let h = decode_one(phase.name(), text)?;
            out.by_phase[phase.index()]
                .add(&h)
                .map_err(|e| MetricsError::Decode {
                    phase: phase.name().into(),
                    reason: format!("{e:?}"),
                })?;
        }
        let turns = encoded
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(TURN_PREFIX).map(|n| (n, v)));
        for (name, text) in turns.take(crate::model::MAX_TURN_NAMES) {
            let h = decode_one(&format!("{TURN_PREFIX}{name}"), text)?;
            out.turns.push((name.to_string(), h));
        }
        Ok(out)
    }
}

/// Where named turns go among the encoded phases: `turn:ack`.
pub const TURN_PREFIX: &str = "turn:";

/// One histogram from base64 of its V2+deflate encoding; errors name `what`.
fn decode_one(what: &str, text: &str) -> Result<Histogram<u64>, MetricsError> {
    let mut h = encoded::decode_base64(text).map_err(|source| MetricsError::Encoded {
        phase: what.to_string(),
        source,
    })?;
    // Read back with the range it was written with: merging a wider one into it must
    // grow it, not fail.
    h.auto(true);
    Ok(h)
}

/// The histogram every phase uses: 1 µs and up, 3 significant digits, its storage
/// growing with the largest value recorded (HdrHistogram's auto-resize) up to [`MAX_US`]
/// (callers clamp there). A phase that never sees a sample, or only milliseconds, keeps
/// 16 KiB of counts instead of the 128 KiB the whole range takes: with ten phases per
/// histogram set and a set per interval, fixed-range storage was megabytes per run.
#[allow(clippy::expect_used)]
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits satisfy hdrhistogram's rule: sigfig <= 5")
}

/// Percentiles of one phase, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl PhaseStats {
    pub fn of(h: &Histogram<u64>) -> PhaseStats {
        let ms = |us: u64| us as f64 / 1000.0;
        PhaseStats {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn named_turns_are_recorded_by_index_named_encoded_and_merged_by_name() {
        let names = vec!["ack".to_string(), "events.all".to_string()];
        let mut a = Histograms::new();
        a.record_turn(0, Duration::from_millis(1));
        a.record_turn(1, Duration::from_millis(5));
        a.record_turn(1, Duration::from_millis(6));
        a.record_turn(99, Duration::from_millis(6));
        a.name_turns(&names);
        let got: Vec<(&str, u64)> = a.turns().map(|(n, h)| (n, h.len())).collect();
        assert_eq!(got, [("ack", 1), ("events.all", 2)]);
        let encoded = a.encode();
        assert!(encoded.contains_key("turn:events.all"));
        let back = Histograms::decode(&encoded).unwrap();
        assert_eq!(back.turn("events.all").map(|h| h.len()), Some(2));
        let mut b = Histograms::new();
        b.record_turn(0, Duration::from_millis(2));
        b.name_turns(&["events.all".to_string()]);
        b.merge(&back);
        assert_eq!(b.turn("events.all").map(|h| h.len()), Some(3));
        assert_eq!(b.turn("ack").map(|h| h.len()), Some(1));
        assert!(
            b.get(Phase::Turn).is_empty(),
            "named turns stay out of the phases"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn merging_parts_equals_recording_all(samples in proptest::collection::vec(1u64..5_000_000, 1..300), split in 0usize..300) {
            let split = split.min(samples.len());
            let (mut a, mut b, mut all) = (Histograms::new(), Histograms::new(), Histograms::new());
            for (i, s) in samples.iter().enumerate() {
                let d = Duration::from_micros(*s);
                all.record(Phase::Turn, d);
                if i < split { a.record(Phase::Turn, d) } else { b.record(Phase::Turn, d) }
            }
            a.merge(&b);
            let (x, y) = (a.get(Phase::Turn), all.get(Phase::Turn));
            prop_assert_eq!(x.len(), y.len());
            prop_assert_eq!(x.min(), y.min());
            prop_assert_eq!(x.max(), y.max());
            for q in [0.5, 0.9, 0.99, 0.999] {
                prop_assert_eq!(x.value_at_quantile(q), y.value_at_quantile(q));
            }
        }
    }

    /// Storage follows the values: histograms of different ranges (a shard that saw only
    /// microseconds, one that saw a minute) merge and read back without losing a sample.
    #[test]
    fn histograms_of_different_ranges_merge_without_loss() {
        let names = ["ack".to_string()];
        let mut fast = Histograms::new();
        fast.record(Phase::Turn, Duration::from_micros(3));
        fast.record_turn(0, Duration::from_micros(3));
        fast.name_turns(&names);
        let mut slow = Histograms::new();
        slow.record(Phase::Turn, Duration::from_secs(59));
        slow.record_turn(0, Duration::from_secs(59));
        slow.name_turns(&names);
        // Decoded, each keeps the range it was written with; the narrow one receives.
        let mut merged = Histograms::decode(&fast.encode()).unwrap();
        merged.merge(&Histograms::decode(&slow.encode()).unwrap());
        let turn = merged.get(Phase::Turn);
        assert_eq!((turn.len(), turn.min()), (2, 3));
        assert!(turn.max() >= 58_000_000, "max {}", turn.max());
        let ack = merged.turn("ack").unwrap();
        assert_eq!(ack.len(), 2);
        assert!(ack.max() >= 58_000_000, "max {}", ack.max());
        // A phase that saw nothing keeps its smallest storage, a fraction of the range's.
        let unused = merged.get(Phase::Tls).distinct_values();
        assert!(
            unused * 4 < turn.distinct_values(),
            "{unused} vs {}",
            turn.distinct_values()
        );
    }

    #[test]
    fn encode_decode_is_lossless() {
        let mut h = Histograms::new();
        for i in 1..1000u64 {
            h.record(Phase::Upgrade, Duration::from_micros(i * 37));
        }
        h.record(Phase::Turn, Duration::from_secs(120));
        let back = Histograms::decode(&h.encode()).unwrap();
        assert_eq!(back.get(Phase::Upgrade), h.get(Phase::Upgrade));
        assert_eq!(back.get(Phase::Turn).max(), h.get(Phase::Turn).max());
        assert_eq!(h.clamped, 1);
        assert!(back.get(Phase::Tls).is_empty());
    }
}
