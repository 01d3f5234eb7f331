#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::collections::BTreeMap;

/// A shard's log as a run writes it: start `start_s`, one histogram per phase per 1 s
/// interval, `values[i]` the samples of interval `i` (the same for every phase in `tags`).
fn write_part(path: &Path, start_s: f64, tags: &[&str], values: &[Vec<u64>]) {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(start_s);
    let mut file = std::fs::File::create(path).unwrap();
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .with_start_time(start)
        .with_base_time(start)
        .begin_log_with(&mut file, &mut serializer)
        .unwrap();
    for (i, samples) in values.iter().enumerate() {
        for tag in tags {
            let mut h = new_histogram();
            for v in samples {
                h.record(*v).unwrap();
            }
            let at = Duration::from_secs(i as u64);
            writer
                .write_histogram(&h, at, Duration::from_secs(1), Tag::new(tag))
                .unwrap();
        }
    }
}

/// A log's histograms: (start in ms, tag) → (count, max).
type Logged = BTreeMap<(u128, String), (u64, u64)>;

/// Every interval of a log, and its StartTime.
fn read(path: &Path) -> (Duration, Logged) {
    let text = std::fs::read(path).unwrap();
    let part = read_part(path, &text).unwrap();
    let mut out = BTreeMap::new();
    for h in part.entries {
        let tag = h.tag().unwrap().as_str().to_string();
        let decoded = decode(path, h.start_timestamp(), &tag, h.encoded_histogram()).unwrap();
        out.insert(
            (h.start_timestamp().as_millis(), tag),
            (decoded.len(), decoded.max()),
        );
    }
    (part.start, out)
}

#[test]
fn a_merged_logs_counts_are_the_sum_of_its_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        tmp.path().join("a.hlog"),
        tmp.path().join("b.hlog"),
        tmp.path().join("merged.hlog"),
    );
    // Shard 0 ran three intervals of turns and upgrades; shard 1, started 5 ms later, two
    // of turns only, slower.
    write_part(
        &a,
        1000.0,
        &["turn", "upgrade"],
        &[vec![100, 200], vec![300], vec![400, 500, 600]],
    );
    write_part(&b, 1000.005, &["turn"], &[vec![7000], vec![8000, 9000]]);
    merge_logs(&[&a, &b], &out).unwrap();
    let (start, merged) = read(&out);
    assert_eq!(
        start,
        Duration::from_secs(1000),
        "the earliest part's start"
    );
    let at = |s: u128, tag: &str| merged.get(&(s * 1000, tag.to_string())).copied();
    // What one histogram of these samples holds: the count and the max's bucket.
    let of = |values: &[u64]| {
        let mut h = new_histogram();
        values.iter().for_each(|v| h.record(*v).unwrap());
        Some((h.len(), h.max()))
    };
    assert_eq!(at(0, "turn"), of(&[100, 200, 7000]));
    assert_eq!(at(1, "turn"), of(&[300, 8000, 9000]));
    assert_eq!(at(2, "turn"), of(&[400, 500, 600]));
    assert_eq!(at(0, "upgrade"), of(&[100, 200]));
    assert_eq!(merged.len(), 6, "{merged:?}");
    // Per phase, the merged counts are the parts' summed.
    let total = |log: &Logged, tag: &str| -> u64 {
        log.iter()
            .filter(|((_, t), _)| t == tag)
            .map(|(_, (n, _))| n)
            .sum()
    };
    let (_, pa) = read(&a);
    let (_, pb) = read(&b);
    for tag in ["turn", "upgrade"] {
        assert_eq!(
            total(&merged, tag),
            total(&pa, tag) + total(&pb, tag),
            "{tag}"
        );
    }
}

#[test]
fn a_broken_part_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.hlog");
    std::fs::write(&bad, "Tag=turn,0.000,1.000,5.000,not-base64!\n").unwrap();
    let err = merge_logs(&[&bad], &tmp.path().join("out.hlog")).unwrap_err();
    assert!(err.to_string().contains("bad.hlog"), "{err}");
}

#[test]
fn a_crafted_histogram_is_an_error_naming_its_part_and_phase() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("crafted.hlog");
    let crafted = crate::metrics::encoded::fixtures::crafted(u32::MAX, 1, 60_000_000, &[2]);
    std::fs::write(&bad, format!("Tag=turn,0.000,1.000,5.000,{crafted}\n")).unwrap();
    let err = merge_logs(&[&bad], &tmp.path().join("out.hlog"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("crafted.hlog"), "{err}");
    assert!(err.contains("turn"), "{err}");
    assert!(err.contains("4294967295 bytes of counts"), "{err}");
}
