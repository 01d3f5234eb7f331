//! Batching samples from connection tasks into one set of histograms.

use super::{Histograms, Phase};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Samples a task collects before it hands them over.
const BATCH: usize = 256;

type Batch = Vec<(Phase, Duration)>;

/// A connection's local sample store. Flushes a full batch to the aggregator, so a long
/// soak costs a connection at most [`BATCH`] samples of memory.
pub struct SampleBuffer {
    samples: Batch,
    tx: mpsc::Sender<Batch>,
}

impl SampleBuffer {
    pub async fn record(&mut self, phase: Phase, value: Duration) {
        self.samples.push((phase, value));
        if self.samples.len() >= BATCH {
            self.flush().await;
        }
    }

    pub async fn flush(&mut self) {
        if self.samples.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.samples);
        // The aggregator outlives every buffer (it ends when the last sender drops).
        let _ = self.tx.send(batch).await;
    }
}

/// Owns the run's histograms; finishes when every [`SampleBuffer`] is dropped.
pub struct Aggregator {
    tx: mpsc::Sender<Batch>,
    task: JoinHandle<Histograms>,
}

impl Default for Aggregator {
    fn default() -> Self {
        Self::spawn()
    }
}

impl Aggregator {
    pub fn spawn() -> Aggregator {
        let (tx, mut rx) = mpsc::channel::<Batch>(1024);
        let task = tokio::spawn(async move {
            let mut hist = Histograms::new();
            while let Some(batch) = rx.recv().await {
                for (phase, value) in batch {
                    hist.record(phase, value);
                }
            }
            hist
        });
        Aggregator { tx, task }
    }

    /// A buffer for one task.
    pub fn buffer(&self) -> SampleBuffer {
        SampleBuffer {
            samples: Vec::new(),
            tx: self.tx.clone(),
        }
    }

    /// Waits for all buffers to be flushed and dropped, then returns the merged histograms.
    pub async fn finish(self) -> Histograms {
        drop(self.tx);
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_sample_from_every_buffer_arrives() {
        let agg = Aggregator::spawn();
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
        let h = agg.finish().await;
        assert_eq!(h.get(Phase::Turn).len(), 8000);
        assert_eq!(h.get(Phase::Upgrade).len(), 0);
    }
}
