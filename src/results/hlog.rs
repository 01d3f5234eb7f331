//! A merged `intervals.hlog` for the shards of one split run, which ran side by side: each
//! part's `i`-th interval (counted from its own start, as `intervals.json` is merged) is
//! added, phase by phase, into the merged log's `i`-th interval, stamped from the earliest
//! part's start. Each log's text is read whole (compressed: a few MB for a 30-minute
//! soak), and its histograms are decoded in step, one interval at a time, so the merge
//! holds one interval's histograms, never the run's.

use crate::metrics::new_histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogHistogram, IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use std::io::Write;
use std::iter::Peekable;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Why the parts' logs could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum HlogError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid interval log: {reason}")]
    Invalid { path: String, reason: String },
}

/// One part's log: its start (`StartTime`) and its intervals, in order.
struct Part<'a> {
    path: &'a Path,
    start: Duration,
    entries: Peekable<std::vec::IntoIter<IntervalLogHistogram<'a>>>,
}

/// Merges the logs at `parts` into `out` (see the module's docs).
pub fn merge_logs(parts: &[&Path], out: &Path) -> Result<(), HlogError> {
    let texts = parts
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| io(p, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut logs = parts
        .iter()
        .zip(&texts)
        .map(|(path, text)| read_part(path, text))
        .collect::<Result<Vec<_>, _>>()?;
    let start = logs.iter().map(|l| l.start).min().unwrap_or_default();
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).map_err(|e| io(out, e))?);
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "[Logged with stampede {}, merged from {} shards]",
            env!("CARGO_PKG_VERSION"),
            parts.len()
        ))
        .add_comment("[Histogram log format version 1.3]")
        .add_comment("[Values in microseconds; each histogram is tagged with its phase]")
        .with_start_time(SystemTime::UNIX_EPOCH + start)
        .with_base_time(SystemTime::UNIX_EPOCH + start)
        .begin_log_with(&mut file, &mut serializer)
        .map_err(|e| io(out, e))?;
    while let Some((at, length, phases)) = next_interval(&mut logs)? {
        for (tag, h) in &phases {
            writer
                .write_histogram(h, at, length, Tag::new(tag))
                .map_err(|e| io(out, std::io::Error::other(e.to_string())))?;
        }
    }
    file.flush().map_err(|e| io(out, e))
}

/// A part's start and its intervals; a log without `StartTime` starts at the epoch.
fn read_part<'a>(path: &'a Path, text: &'a [u8]) -> Result<Part<'a>, HlogError> {
    let mut start = Duration::ZERO;
    let mut entries = Vec::new();
    for entry in IntervalLogIterator::new(text) {
        match entry.map_err(|e| invalid(path, format!("{e:?}")))? {
            LogEntry::StartTime(t) => start = t,
            LogEntry::BaseTime(_) => {}
            LogEntry::Interval(h) => entries.push(h),
        }
    }
    Ok(Part {
        path,
        start,
        entries: entries.into_iter().peekable(),
    })
}

/// One merged interval: its start, its length, and each phase's histogram.
type Interval = (Duration, Duration, Vec<(String, Histogram<u64>)>);

/// The next interval of every part, added per phase in first-seen order: its start (the
/// earliest part's), its length (the longest part's) and its histograms. `None` when
/// every part has run out.
fn next_interval(parts: &mut [Part<'_>]) -> Result<Option<Interval>, HlogError> {
    let mut found: Option<(Duration, Duration)> = None;
    let mut phases: Vec<(String, Histogram<u64>)> = Vec::new();
    for part in parts.iter_mut() {
        let Some(at) = part.entries.peek().map(|h| h.start_timestamp()) else {
            continue;
        };
        // One interval of a part is every entry stamped with its start.
        while let Some(h) = part.entries.next_if(|h| h.start_timestamp() == at) {
            let (start, length) = found.get_or_insert((at, h.duration()));
            *start = (*start).min(at);
            *length = (*length).max(h.duration());
            let tag = h.tag().map_or("", |t| t.as_str()).to_string();
            let decoded = decode(part.path, at, &tag, h.encoded_histogram())?;
            match phases.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, sum)) => sum
                    .add(&decoded)
                    .map_err(|e| invalid(part.path, format!("interval at {at:?}, {tag}: {e:?}")))?,
                None => phases.push((tag, decoded)),
            }
        }
    }
    Ok(found.map(|(at, length)| (at, length, phases)))
}

/// One histogram from the log's base64 of V2+deflate, able to take any other's values;
/// errors name the interval (its start) and phase (its tag).
fn decode(path: &Path, at: Duration, tag: &str, text: &str) -> Result<Histogram<u64>, HlogError> {
    let h = crate::metrics::encoded::decode_base64(text)
        .map_err(|e| invalid(path, format!("interval at {at:?}, {tag}: {e}")))?;
    // Into the run's own kind of histogram, which grows to any value added to it.
    let mut grown = new_histogram();
    grown.add(&h).map_err(|e| invalid(path, format!("{e:?}")))?;
    Ok(grown)
}

fn io(path: &Path, source: std::io::Error) -> HlogError {
    HlogError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn invalid(path: &Path, reason: String) -> HlogError {
    HlogError::Invalid {
        path: path.display().to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests;
