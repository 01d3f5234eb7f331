//! A slow server is not a lossy one: answers that come whole after their `within` ran
//! out are kept as late (how late, in each violation), and the verdict's hint calls them
//! slowness to look into, not a race to hunt a repro for; so are deadlines missed the same
//! way on a connection that closed before such an answer could come. An answer that never
//! came while the connection lived stays a loss to hunt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{chat_scenario, scenario, spawn_fake, Fault};
use stampede::model::{OracleKind, Verdict};

/// The chat scenario with a 300 ms `within`, a 200 ms think before each send and none
/// after its expect: against [`Fault::LateCompletion`] each reply's held events come 200
/// ms after its deadline, with the next request.
fn think_before_sends(name: &str, users: u64, messages: u64) -> String {
    let think = "    { think = \"fixed(5ms)\" },\n";
    chat_scenario(name, users as u32, messages as u32)
        .replace(r#"within = "3s""#, r#"within = "300ms""#)
        .replace(think, "")
        .replace(
            "    { send = { type = \"user_message\"",
            "    { think = \"fixed(200ms)\" },\n    { send = { type = \"user_message\"",
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_come_after_their_deadline_are_told_as_late_not_lost() {
    let (users, messages) = (2u64, 3u64);
    let (url, stop) = spawn_fake(Fault::LateCompletion).await;
    // A reply's held events go out with the next request, 200 ms after the deadline (the
    // think comes before each send): late by far more than the last connection takes to
    // close, which it does right at its last deadline (no think after the last expect),
    // however busy the machine. (With the think after the expect, both took ~200 ms and a
    // busy machine could order them either way.)
    let text = think_before_sends("late", users, messages);
    assert!(text.contains("300ms") && text.contains("200ms"), "{text}");
    assert!(
        text.find("fixed(200ms)") < text.find("{ send = "),
        "the think comes before the send: {text}"
    );
    let s = scenario("late.toml", &text);
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let sum = &outcome.results.summary;
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    assert_eq!(
        sum.violations.of(OracleKind::Completeness),
        users * messages,
        "{:?}",
        sum.violations
    );
    // Every reply but each connection's last came whole, late: its held events went out
    // with the next request.
    let kept = &outcome.results.violations;
    let late: Vec<_> = kept.iter().filter(|v| v.late_ms.is_some()).collect();
    assert_eq!(late.len() as u64, users * (messages - 1), "{kept:#?}");
    for v in &late {
        assert!(v.late_ms > v.window_ms, "{v:?}");
        assert!(v.seen.contains("; it came after "), "{}", v.seen);
    }
    // Timed as every answer is, from its request: the turn figures hold the late ones
    // (no answer here came in time), slower than the deadline they missed.
    let turn = &sum.phases["turn"];
    assert_eq!(turn.count, late.len() as u64, "{turn:?}");
    assert!(turn.p50_ms >= 300.0, "{turn:?}");
    // Each connection's last reply missed the same deadline, and the script closed the
    // connection before as long as the others took: not seen, nor proven lost, so no
    // part of this run is sent to a hunt.
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("every one is an answer that came late")
            && hint.contains(&format!("within 300 ms ×{}", late.len()))
            && hint.contains(&format!(
                "and {users} more missed the same deadline on a connection that ended sooner"
            ))
            && hint.contains("slowness, not a race")
            && !hint.contains("hunt"),
        "{hint}"
    );
}

/// The same server read by a script that waits after its last request: each connection's
/// last answer never comes though the connection outlives every late one, and each late
/// one came right after the next request. A server that answers one request behind, not a
/// slow one: the hint says so and keeps the hunt (the lost answers are its repro).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_come_only_with_the_next_request_are_told_one_behind() {
    let (users, messages) = (2u64, 3u64);
    let (url, stop) = spawn_fake(Fault::LateCompletion).await;
    let text = think_before_sends("behind", users, messages)
        // Four times as long as any late answer takes after its deadline.
        .replace(
            "  { close = 1000 },",
            "  { think = \"fixed(800ms)\" },\n  { close = 1000 },",
        );
    assert!(text.contains("fixed(800ms)"), "{text}");
    let s = scenario("behind.toml", &text);
    let outcome = common::run(&s, Some(url), None).await;
    stop.cancel();
    let kept = &outcome.results.violations;
    let late: Vec<_> = kept.iter().filter(|v| v.late_ms.is_some()).collect();
    assert_eq!(late.len() as u64, users * (messages - 1), "{kept:#?}");
    for v in &late {
        // Measured from the next request: it went out 200 ms after the deadline.
        let after = v.after_request_ms.expect("came after the next request");
        assert!(after < v.late_ms.unwrap_or_default() - 300.0, "{v:?}");
        assert!(
            v.seen.contains("ms after the next request went out"),
            "{}",
            v.seen
        );
    }
    let hint = outcome.results.summary.hint.clone().unwrap_or_default();
    assert!(
        hint.contains(&format!(
            "{} are answers that came late, each only after",
            late.len()
        )) && hint.contains(&format!(
            "and {users} never came though their connections stayed open"
        )) && hint.contains("one request behind")
            && !hint.contains("slowness")
            && hint.ends_with("hunt for a repro"),
        "{hint}"
    );
}

/// A hunt against the slow server finds no race in its late answers and writes no repro of
/// them: it sets them aside, and says how many. A repro of a slow answer would "fail" only
/// while the server is as loaded as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hunt_sets_late_answers_aside_and_writes_no_repro() {
    let (users, messages, rounds) = (2u64, 3u64, 2u64);
    let (url, stop) = spawn_fake(Fault::LateCompletion).await;
    // A last request, expected by nothing, brings each connection's last held events: every
    // answer comes whole, late.
    let text = chat_scenario("late", users as u32, messages as u32)
        .replace(r#"within = "3s""#, r#"within = "300ms""#)
        .replace(r#"think = "fixed(5ms)""#, r#"think = "fixed(200ms)""#)
        .replace(
            "  { close = 1000 },",
            r#"  { send = { type = "user_message", run_id = "last-{{conn}}", thread_id = "t", content = "bye" } },
  { think = "fixed(400ms)" },
  { close = 1000 },"#,
        );
    assert!(text.contains("last-{{conn}}"), "{text}");
    let text = format!("{text}\n[hunt]\nrounds = {rounds}\n");
    let s = scenario("late.toml", &text);
    let (hunted, written) = common::hunt_at(&s, &url, std::time::Duration::from_secs(60), 2).await;
    stop.cancel();
    assert!(
        hunted.found.is_none(),
        "{:?}",
        hunted.found.map(|f| f.repro.evidence)
    );
    assert_eq!(hunted.rounds as u64, rounds);
    // Every answer of every round came late.
    assert_eq!(hunted.late, rounds * users * messages);
    assert!(written.is_empty(), "{written:?}");
}

/// The chat scenario against [`Fault::LateCompletion`] with one message each, a 1 s
/// `within`, and a long think after it: each reply's held events never come (no next
/// request), and the run's 1.5 s duration cuts every connection well within a `within`
/// after its deadline, however long the connects took (up to half a second).
fn cut_by_the_run(users: u32) -> String {
    let text = chat_scenario("cut", users, 1)
        .replace(r#"within = "3s""#, r#"within = "1s""#)
        .replace(r#"think = "fixed(5ms)""#, r#"think = "fixed(5s)""#)
        .replace(r#"duration = "30s""#, r#"duration = "1500ms""#)
        .replace(r#"arrival = { ramp = "200ms" }"#, r#"arrival = "burst""#);
    assert!(
        text.contains("1500ms") && text.contains("fixed(5s)") && text.contains("burst"),
        "{text}"
    );
    text
}

/// A deadline missed with no answer seen on a connection the run's own end cut sooner
/// after it than its `within` is no proven loss (a slow server's answer may have been on
/// its way): each such violation says how soon the cut came, and the hint sends no one
/// hunting. A hunt whose rounds end so writes no repro: a replay keeping that duration
/// would cut its connections the same way and "reproduce" a loss against a server that is
/// only slow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_the_runs_own_end_cut_short_are_no_proven_loss() {
    let (url, stop) = spawn_fake(Fault::LateCompletion).await;
    let s = scenario("cut.toml", &cut_by_the_run(2));
    let outcome = common::run(&s, Some(url.clone()), None).await;
    let sum = &outcome.results.summary;
    assert_eq!(sum.verdict, Verdict::Violations, "{:?}", sum.hint);
    let kept = &outcome.results.violations;
    assert_eq!(kept.len(), 2, "{kept:#?}");
    for v in kept {
        let cut = v.cut_by_run_ms.unwrap_or_else(|| panic!("{v:?}"));
        assert!((0.0..1000.0).contains(&cut), "{v:?}");
    }
    let hint = sum.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("nor proven lost") && !hint.contains("hunt for a repro"),
        "{hint}"
    );
    let text = format!("{}\n[hunt]\nrounds = 2\n", cut_by_the_run(2));
    let s = scenario("cut.toml", &text);
    let (hunted, written) = common::hunt_at(&s, &url, std::time::Duration::from_secs(60), 2).await;
    stop.cancel();
    assert!(
        hunted.found.is_none(),
        "{:?}",
        hunted.found.map(|f| f.repro.evidence)
    );
    assert!(written.is_empty(), "{written:?}");
    // Set aside as not proven lost, not as answers that came late: none came.
    assert_eq!(hunted.late, 0);
    assert!(hunted.unproven >= 2, "{}", hunted.unproven);
}
