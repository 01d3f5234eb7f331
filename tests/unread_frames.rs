//! Correct servers that frame their events in ways a scenario may not read: some events in
//! binary frames, or a reply's events batched into one JSON array. What the unmet
//! expectations missed may be in those records, so they prove no loss: the verdict is
//! unreadable (exit 9, no race to hunt), never violations; and a sequence number carried
//! by an unread record is no gap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{chat_scenario, scenario, spawn_fake, Fault};
use stampede::model::{OracleKind, Verdict};

async fn run_against(fault: Fault) -> stampede::results::Summary {
    let (url, stop) = spawn_fake(fault).await;
    let s = scenario("framed.toml", &chat_scenario("framed", 3, 2));
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    outcome.results.summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_binary_frames_make_unmet_expectations_unreadable_and_no_sequence_gap() {
    let sum = run_against(Fault::BinaryHalf).await;
    assert_eq!(
        sum.violations.of(OracleKind::Ordering),
        0,
        "{:?}",
        sum.violations
    );
    assert!(sum.counters.binary_frames > 0, "{:?}", sum.counters);
    assert_eq!(
        sum.verdict,
        Verdict::Unreadable,
        "{:?} {:#?}",
        sum.hint,
        sum.violations.first
    );
    let hint = sum.hint.unwrap_or_default();
    assert!(hint.contains("binary frame"), "{hint}");
    assert!(hint.contains("prove no loss"), "{hint}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_batched_into_one_json_array_is_unreadable_not_violations() {
    let sum = run_against(Fault::BatchArray).await;
    assert_eq!(sum.verdict, Verdict::Unreadable, "{:?}", sum.hint);
    let hint = sum.hint.unwrap_or_default();
    assert!(hint.contains("without a kind"), "{hint}");
    assert!(hint.contains("[oracles] batched = true"), "{hint}");
}

/// The same server, its batches declared (`[oracles] batched = true`): each element is a
/// record, and the run reads every event of every reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_batch_is_read_element_by_element() {
    let (url, stop) = spawn_fake(Fault::BatchArray).await;
    let text = chat_scenario("framed", 3, 2).replace("[oracles]\n", "[oracles]\nbatched = true\n");
    assert!(text.contains("batched = true"), "{text}");
    let outcome = common::run(&scenario("batched.toml", &text), Some(url), None).await;
    stop.cancel();
    let sum = outcome.results.summary;
    assert_eq!(
        sum.verdict,
        Verdict::Clean,
        "{:?} {:?}",
        sum.hint,
        sum.violations.first
    );
    assert_eq!(sum.violations.total, 0);
}

/// The same framing with an event really missing from a readable reply is still found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_event_among_readable_frames_is_still_a_violation() {
    let sum = run_against(Fault::DropEvent).await;
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    assert!(sum.violations.of(OracleKind::Completeness) > 0);
}

/// Unread records that cannot belong to an expectation (heartbeats without its
/// correlation value, in text and in binary frames) do not hide a dropped event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_beside_a_dropped_event_do_not_hide_it() {
    let sum = run_against(Fault::DropEventWithHeartbeats).await;
    assert!(sum.counters.binary_frames > 0, "{:?}", sum.counters);
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    assert!(sum.violations.of(OracleKind::Completeness) > 0);
}

/// Only some replies batched into an array (with their `seq`s inside): the count starts
/// again after each array, so no ordering violation; the turns it answered are unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_batched_now_and_then_is_no_sequence_gap() {
    let sum = run_against(Fault::BatchSome).await;
    assert_eq!(
        sum.violations.of(OracleKind::Ordering),
        0,
        "{:?}",
        sum.violations
    );
    assert_eq!(sum.verdict, Verdict::Unreadable, "{:?}", sum.hint);
}
