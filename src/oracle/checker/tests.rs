use super::*;
use crate::model::{Capture, FieldTest, PatternItem, Repeat, StepPlace, Test};
use serde_json::json;

fn spec() -> Arc<OracleSpec> {
    Arc::new(OracleSpec {
        identity: Some("user_id".into()),
        sequence: Some("seq".into()),
        ..OracleSpec::default()
    })
}

fn who() -> ConnIdentity {
    ConnIdentity {
        conn: 3,
        user: 1,
        group: "g".into(),
        jti: "j1".into(),
        sub: "user-1".into(),
    }
}

fn checker() -> ConnChecker {
    ConnChecker::new(spec(), who(), Instant::now(), vec!["run_id".into()])
}

fn five(run: &str) -> ExpectPlan {
    let items = [
        ("started", Repeat::One),
        ("thinking", Repeat::OneOrMore),
        ("done", Repeat::One),
    ];
    ExpectPlan {
        pattern: items
            .iter()
            .map(|(e, r)| PatternItem {
                event: e.to_string(),
                repeat: *r,
            })
            .collect(),
        correlate: Some(("run_id".into(), run.into())),
        within: Duration::from_secs(5),
        wait: true,
        absent: false,
        rare: None,
    }
}

struct Feed {
    seq: i64,
}

impl Feed {
    fn msg(&mut self, ty: &str, run: &str) -> Value {
        self.seq += 1;
        json!({"type": ty, "run_id": run, "user_id": "user-1", "seq": self.seq})
    }
}

fn send_all(ch: &mut ConnChecker, msgs: &[Value]) {
    for m in msgs {
        ch.on_message(m, Instant::now());
    }
}

#[test]
fn a_complete_sequence_meets_the_expectation() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    let id = ch.expect(
        five("r1"),
        Some((Instant::now(), Instant::now())),
        Instant::now(),
    );
    let msgs = [
        f.msg("started", "r1"),
        f.msg("thinking", "r1"),
        f.msg("thinking", "r1"),
        f.msg("done", "r1"),
    ];
    send_all(&mut ch, &msgs);
    assert!(!ch.is_pending(id));
    assert_eq!(ch.counts.expectations_met, 1);
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    assert_eq!(ch.counts().events["thinking"].arrived, 1);
    assert!(ch.samples.iter().any(|(p, _)| p.contains(Phase::Turn)));
}

#[test]
fn a_settled_backlog_gives_its_room_back() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    let now = Instant::now();
    let runs: Vec<String> = (0..200).map(|i| format!("r{i}")).collect();
    for run in &runs {
        ch.expect(five(run), Some((now, now)), now);
    }
    assert!(ch.pending.capacity() >= 200);
    for run in &runs {
        let msgs = [
            f.msg("started", run),
            f.msg("thinking", run),
            f.msg("done", run),
        ];
        send_all(&mut ch, &msgs);
    }
    assert_eq!(ch.counts.expectations_met, 200);
    assert!(ch.pending.is_empty());
    assert!(
        ch.pending.capacity() <= KEPT_ROOM,
        "{}",
        ch.pending.capacity()
    );
}

#[test]
fn a_settled_expectation_leaves_its_strings_and_its_pattern_for_the_next() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    let plan = five("r1");
    let items = plan.pattern.clone();
    let now = Instant::now();
    ch.expect(plan, Some((now, now)), now);
    assert!(ch.leftovers().pattern.is_none(), "held while it is open");
    let msgs = [
        f.msg("started", "r1"),
        f.msg("thinking", "r1"),
        f.msg("done", "r1"),
    ];
    send_all(&mut ch, &msgs);
    assert_eq!(ch.counts.expectations_met, 1);
    let left = ch.leftovers();
    assert!(
        left.pattern
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &items)),
        "the pattern itself is handed back, not a copy"
    );
    assert_eq!(left.correlate, Some(("run_id".into(), "r1".into())));
}

#[test]
fn interleaved_runs_and_early_events_are_matched_by_correlation() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    // r2's events arrive before anyone expects them: buffered, not failures.
    send_all(&mut ch, &[f.msg("started", "r2"), f.msg("thinking", "r2")]);
    ch.expect(
        five("r1"),
        Some((Instant::now(), Instant::now())),
        Instant::now(),
    );
    send_all(
        &mut ch,
        &[
            f.msg("started", "r1"),
            f.msg("done", "r2"),
            f.msg("thinking", "r1"),
        ],
    );
    ch.expect(
        five("r2"),
        Some((Instant::now(), Instant::now())),
        Instant::now(),
    );
    send_all(&mut ch, &[f.msg("done", "r1")]);
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    assert_eq!(ch.counts.expectations_met, 2);
}

#[test]
fn a_missing_event_is_a_completeness_violation_at_the_deadline() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    let t = Instant::now();
    ch.expect(five("r1"), Some((t, t)), t);
    send_all(&mut ch, &[f.msg("started", "r1"), f.msg("thinking", "r1")]);
    ch.expire(t + Duration::from_secs(1));
    assert!(ch.violations.is_empty(), "not yet due");
    ch.expire(t + Duration::from_secs(6));
    assert_eq!(ch.violations.len(), 1);
    let v = &ch.violations[0];
    assert_eq!(v.oracle, OracleKind::Completeness);
    assert!(v.expected.starts_with("done"), "{}", v.expected);
    assert_eq!(v.seen, "started thinking");
    assert_eq!(v.correlation.as_deref(), Some("r1"));
    assert_eq!(v.jti, "j1");
    assert_eq!(
        ch.counts().events["done"],
        crate::model::Tally {
            expected: 1,
            arrived: 0
        }
    );
}

/// An answer that comes whole after its deadline ran out is kept as late (how late, in the
/// violation): a slow server, not a lost answer. One that comes only in part, or never,
/// stays a loss.
#[test]
fn an_answer_that_came_whole_after_its_deadline_is_kept_as_late() {
    let t = Instant::now();
    let after = |ms| t + Duration::from_millis(ms);
    let run = |late: &[&str]| {
        let (mut ch, mut f) = (
            ConnChecker::new(spec(), who(), t, vec!["run_id".into()]),
            Feed { seq: 0 },
        );
        ch.expect(five("r1"), Some((t, t)), t);
        ch.on_message(&f.msg("started", "r1"), after(1_000));
        ch.expire(after(5_001));
        for (i, event) in (0u64..).zip(late) {
            ch.on_message(&f.msg(event, "r1"), after(7_000 + i));
        }
        assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
        let turns: Vec<Duration> = ch
            .samples
            .iter()
            .filter(|(phases, _)| phases.contains(Phase::Turn))
            .map(|(_, d)| *d)
            .collect();
        let read = ch.counts().correlated_met.contains("run_id");
        (ch.violations.remove(0), turns, read)
    };
    // Whole with its last event, 7002 ms after its request; it shows the answers carry
    // the request's value at `run_id` (the path is read, though nothing met in time).
    let (whole, turns, read) = run(&["thinking", "thinking", "done"]);
    assert!(read, "a late answer reads the path");
    assert_eq!(whole.late_ms, Some(7_002.0), "{whole:?}");
    assert!(
        whole.seen.ends_with("; it came after 7002 ms"),
        "{}",
        whole.seen
    );
    // Timed as every answer is: the slowest left out would flatter the latency figures.
    assert_eq!(turns, [Duration::from_millis(7_002)]);
    for lost in [&["thinking"][..], &[]] {
        let (v, turns, _) = run(lost);
        assert_eq!(v.late_ms, None, "{lost:?}: {v:?}");
        assert!(!v.seen.contains("came after"), "{}", v.seen);
        assert!(turns.is_empty(), "{turns:?}");
    }
}

/// The server's error event refusing a request whose deadline ran out is a late answer,
/// not a loss: its violation is kept as late and says it was refused; no turn is timed
/// (a refusal in time records none either), and the error waits in no buffer.
#[test]
fn an_error_event_that_came_after_its_deadline_is_a_late_refusal() {
    let t = Instant::now();
    let after = |ms| t + Duration::from_millis(ms);
    let mut ch = ConnChecker::new(spec(), who(), t, vec!["run_id".into()]);
    ch.expect(five("r1"), Some((t, t)), t);
    ch.expire(after(5_001));
    ch.on_message(&json!({"type": "error", "run_id": "r1"}), after(6_500));
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    let v = &ch.violations[0];
    assert_eq!(v.late_ms, Some(6_500.0), "{v:?}");
    assert!(
        v.seen
            .ends_with("; the server's error event refusing it came after 6500 ms"),
        "{}",
        v.seen
    );
    assert!(!ch.samples.iter().any(|(p, _)| p.contains(Phase::Turn)));
    assert!(ch.buffer.is_empty(), "nothing waits for a later expect");
    // Another request's error is no answer to it.
    let mut other = ConnChecker::new(spec(), who(), t, vec!["run_id".into()]);
    other.expect(five("r1"), Some((t, t)), t);
    other.expire(after(5_001));
    other.on_message(&json!({"type": "error", "run_id": "r2"}), after(6_500));
    assert_eq!(other.violations[0].late_ms, None);
}

/// A paced connection whose server falls ever further behind (each answer 150 ms later
/// than the one before, a request every 50 ms, a 1 s deadline) has dozens of requests
/// past their deadlines at once: every answer that then comes whole is timed, the oldest
/// and slowest too (forgetting them understated the tail by a third).
#[test]
fn every_late_answer_of_a_server_falling_behind_is_timed() {
    let t = Instant::now();
    let at = |ms: u64| t + Duration::from_millis(ms);
    let mut ch = ConnChecker::new(spec(), who(), t, vec!["run_id".into()]);
    let mut f = Feed { seq: 0 };
    let mut expected = Vec::new();
    let requests: u64 = 40;
    // Each answer `k` comes 200 + 150·k ms after its request: the last 6.05 s after it.
    let mut answers: Vec<(u64, String)> = (0..requests)
        .map(|k| (k * 50 + 200 + 150 * k, format!("r{k}")))
        .collect();
    answers.sort();
    let mut next_answer = answers.into_iter().peekable();
    for k in 0..requests {
        let sent = at(k * 50);
        // What came before this request went out, and the deadlines passed by then.
        while let Some((ms, run)) = next_answer.next_if(|(ms, _)| at(*ms) <= sent) {
            ch.expire(at(ms));
            for event in ["started", "thinking", "done"] {
                ch.on_message(&f.msg(event, &run), at(ms));
            }
        }
        ch.expire(sent);
        let mut e = five(&format!("r{k}"));
        e.within = Duration::from_secs(1);
        ch.expect(e, Some((sent, sent)), sent);
        expected.push(Duration::from_millis(200 + 150 * k));
    }
    for (ms, run) in next_answer {
        ch.expire(at(ms));
        for event in ["started", "thinking", "done"] {
            ch.on_message(&f.msg(event, &run), at(ms));
        }
    }
    let mut turns: Vec<Duration> = ch
        .samples
        .iter()
        .filter(|(phases, _)| phases.contains(Phase::Turn))
        .map(|(_, d)| *d)
        .collect();
    turns.sort();
    assert_eq!(turns, expected);
    // More than the 16 once remembered were past their deadlines at once.
    let late = ch.violations.iter().filter(|v| v.late_ms.is_some()).count();
    assert!(late > 16, "{late} late");
}

/// An earlier request's late answer, come while the next request's expectation waited, is
/// not that expectation's answer held under another value: its witness says nothing of
/// it (it read as the server answering with the wrong id).
#[test]
fn a_late_answer_is_not_the_next_expectations_misread_answer() {
    let t = Instant::now();
    let at = |ms: u64| t + Duration::from_millis(ms);
    let mut ch = ConnChecker::new(spec(), who(), t, vec!["run_id".into()]);
    let mut f = Feed { seq: 0 };
    ch.expect(five("r1"), Some((t, t)), t);
    ch.expire(at(5_001));
    ch.expect(five("r2"), Some((at(5_001), at(5_001))), at(5_001));
    for event in ["started", "thinking", "done"] {
        ch.on_message(&f.msg(event, "r1"), at(6_000));
    }
    ch.expire(at(10_002));
    assert_eq!(ch.violations.len(), 2, "{:?}", ch.violations);
    assert_eq!(ch.violations[0].late_ms, Some(6_000.0));
    let next = &ch.violations[1];
    assert_eq!(next.correlation.as_deref(), Some("r2"));
    assert!(next.misread.is_none(), "{:?}", next.misread);
    assert!(!next.seen.contains("r1"), "{}", next.seen);
}

/// A late answer is timed in every phase an answer in time would be: its raw turn too
/// when its request went out when it was meant to (not paced), and its first event when
/// its pattern is one record (`turn_raw` p99 3.6 ms beside a 600 ms `turn` hid them).
#[test]
fn a_late_answer_is_timed_in_every_phase_it_measures() {
    let t = Instant::now();
    let after = |ms| t + Duration::from_millis(ms);
    let phases = |pattern: ExpectPlan, intended: Instant| {
        let mut ch = ConnChecker::new(spec(), who(), t, vec!["run_id".into()]);
        ch.expect(pattern, Some((intended, t)), t);
        ch.expire(after(5_001));
        let msg = json!({"type": "x", "run_id": "r", "user_id": "user-1"});
        ch.on_message(&msg, after(6_000));
        ch.samples.clone()
    };
    let one = ExpectPlan {
        correlate: Some(("run_id".into(), "r".into())),
        ..one_x()
    };
    let samples = phases(one.clone(), t);
    assert_eq!(samples.len(), 1, "{samples:?}");
    let (p, d) = samples[0];
    assert!(
        p.contains(Phase::Turn) && p.contains(Phase::TurnRaw) && p.contains(Phase::FirstEvent),
        "{samples:?}"
    );
    assert_eq!(d, Duration::from_secs(6));
    // Paced: sent 10 ms after its instant, the raw turn is its own sample.
    let paced = phases(one, t - Duration::from_millis(10));
    assert_eq!(paced.len(), 2, "{paced:?}");
    assert!(paced.iter().any(|(p, d)| p.contains(Phase::TurnRaw)
        && !p.contains(Phase::Turn)
        && *d == Duration::from_secs(6)));
}

/// A named expectation's late answer is timed in its name's histogram too, as an answer in
/// time is; another expectation's late answer is not.
#[test]
fn a_named_expectations_late_answer_is_timed_under_its_name() {
    let t = Instant::now();
    let after = |ms| t + Duration::from_millis(ms);
    let mut ch = ConnChecker::new(spec(), who(), t, vec!["run_id".into()]);
    let mut f = Feed { seq: 0 };
    let mut named = five("r1");
    named.rare_mut().name = Some("reply".into());
    ch.expect(named, Some((t, t)), t);
    ch.expect(five("r2"), Some((t, t)), t);
    ch.expire(after(5_001));
    assert_eq!(ch.violations.len(), 2, "{:?}", ch.violations);
    for run in ["r1", "r2"] {
        for event in ["started", "thinking", "thinking", "done"] {
            ch.on_message(&f.msg(event, run), after(7_000));
        }
    }
    assert!(ch.violations.iter().all(|v| v.late_ms == Some(7_000.0)));
    assert_eq!(
        ch.named_samples,
        vec![("reply".to_string(), Duration::from_millis(7_000))]
    );
}

/// A late answer that came only after a later request of its connection went out (after
/// its deadline ran out) says how long after that request it came; one that came before
/// any later request, or after one sent before its deadline ran out, does not.
#[test]
fn a_late_answer_after_the_next_request_says_how_long_after_it() {
    let t = Instant::now();
    let after = |ms| t + Duration::from_millis(ms);
    // The next request goes out at `next_ms`, the answer to the first comes at 7,000 ms.
    let run = |next_ms: Option<u64>| {
        let (mut ch, mut f) = (
            ConnChecker::new(spec(), who(), t, vec!["run_id".into()]),
            Feed { seq: 0 },
        );
        ch.note_request(t);
        ch.expect(five("r1"), Some((t, t)), t);
        if let Some(next) = next_ms.filter(|&n| n < 5_000) {
            ch.note_request(after(next));
        }
        ch.expire(after(5_001));
        if let Some(next) = next_ms.filter(|&n| n >= 5_000) {
            ch.note_request(after(next));
        }
        for (i, event) in (0u64..).zip(["started", "thinking", "done"]) {
            ch.on_message(&f.msg(event, "r1"), after(7_000 + i));
        }
        ch.violations.remove(0)
    };
    let behind = run(Some(6_990));
    assert_eq!(behind.late_ms, Some(7_002.0));
    assert_eq!(behind.after_request_ms, Some(12.0), "{behind:?}");
    assert!(
        behind
            .seen
            .ends_with("it came after 7002 ms, 12 ms after the next request went out"),
        "{}",
        behind.seen
    );
    for (next, why) in [
        (None, "no later request"),
        (Some(7_500), "the answer came first"),
        (Some(4_000), "sent before the deadline ran out"),
    ] {
        let v = run(next);
        assert_eq!(v.late_ms, Some(7_002.0), "{why}");
        assert_eq!(v.after_request_ms, None, "{why}: {v:?}");
        assert!(!v.seen.contains("next request"), "{why}: {}", v.seen);
    }
}

/// Silence and unreadable answers are told apart: a scenario without the protocol's record
/// separator (or a server speaking another format) is not reported as a server that said
/// nothing.
#[test]
fn an_expectation_that_saw_only_unreadable_records_says_so() {
    let t = Instant::now();
    let mut quiet = checker();
    quiet.expect(five("r1"), Some((t, t)), t);
    quiet.expire(t + Duration::from_secs(6));
    assert_eq!(quiet.violations[0].seen, "nothing");
    let mut garbled = checker();
    garbled.expect(five("r1"), Some((t, t)), t);
    garbled.on_unreadable("started r1\u{1e}");
    garbled.on_unreadable("done r1\u{1e}");
    garbled.expire(t + Duration::from_secs(6));
    assert!(
        garbled.violations[0].unreadable,
        "it holds r1: it may be the answer"
    );
    let seen = &garbled.violations[0].seen;
    assert!(
        seen.starts_with("nothing readable (2 records that are not JSON"),
        "{seen}"
    );
    assert!(seen.contains("record_separator"), "{seen}");

    // The field is there, but its value is no kind.
    let mut float = checker();
    float.expect(five("r1"), Some((t, t)), t);
    float.on_message(&json!({"type": 1.5, "run_id": "r1"}), t);
    float.expire(t + Duration::from_secs(6));
    let seen = &float.violations[0].seen;
    assert!(
        seen.contains(
            "fields type, run_id, whose \"type\" is a number (a kind is a string or an integer)"
        ),
        "{seen}"
    );

    // A batch the scenario does not declare: its elements carry the kind.
    let mut batch = checker();
    batch.expect(five("r1"), Some((t, t)), t);
    batch.on_message(
        &json!([{"type": "started", "run_id": "r1"}, {"type": "done", "run_id": "r1"}]),
        t,
    );
    batch.expire(t + Duration::from_secs(6));
    let seen = &batch.violations[0].seen;
    assert!(
        seen.contains(
            "an array of 2 whose elements carry \"type\", a batch ([oracles] batched = true"
        ),
        "{seen}"
    );

    // A positional record (Phoenix v2's `[join_ref, ref, topic, event, payload]`): the
    // element that holds a kind the open expectation names is kept for the verdict; an
    // array holding none, or an object, keeps nothing.
    let mut positional = checker();
    positional.expect(five("r1"), Some((t, t)), t);
    positional.on_message(&json!(["1", "1", "room:1", "ok", {}]), t);
    positional.on_message(&json!({"event": "started"}), t);
    assert_eq!(positional.take_counts().positional_kind, None);
    positional.on_message(&json!(["1", "2", "room:1", "started", {"run_id": "r1"}]), t);
    assert_eq!(
        positional.take_counts().positional_kind,
        Some(Box::new((3, "started".to_string())))
    );

    let mut binary = checker();
    binary.expect(five("r1"), Some((t, t)), t);
    binary.on_binary(b"\x00\x01");
    binary.expire(t + Duration::from_secs(6));
    assert!(
        !binary.violations[0].unreadable,
        "it does not hold r1: it cannot be the answer"
    );
    let seen = &binary.violations[0].seen;
    assert_eq!(
        seen, "nothing readable (1 binary frame: the oracles read JSON text)",
        "no separator to suggest for binary frames"
    );

    // JSON, but the kind is not where the scenario reads it: the witness names the fields
    // (never the values) of the first such record.
    let mut misread = checker();
    misread.expect(five("r1"), Some((t, t)), t);
    misread.on_message(
        &json!({"event": "started", "run_id": "r1", "secret": "s3"}),
        t,
    );
    misread.on_message(&json!({"event": "done", "run_id": "r1"}), t);
    misread.expire(t + Duration::from_secs(6));
    let seen = &misread.violations[0].seen;
    assert!(
        seen.starts_with("nothing readable (2 JSON records without a kind, the first an object with fields event, run_id, secret"),
        "{seen}"
    );
    assert!(seen.contains("type_field \"type\""), "{seen}");
    assert!(
        !seen.contains("s3") && !seen.contains("record_separator"),
        "{seen}"
    );
}

/// An expectation opened before the attempt's acceptance in band and answered with the
/// error event counts as errored early; the next one (the mark taken) does not.
#[test]
fn an_error_answering_a_request_sent_before_acceptance_counts_as_early() {
    let t = Instant::now();
    let mut ch = plain();
    ch.before_acceptance();
    ch.expect(plan_of("done", Some(("/run_id", "r1"))), Some((t, t)), t);
    ch.on_message(&json!({"type": "error", "run_id": "r1"}), t);
    ch.expect(plan_of("done", Some(("/run_id", "r2"))), Some((t, t)), t);
    ch.on_message(&json!({"type": "error", "run_id": "r2"}), t);
    let counts = ch.counts().clone();
    assert_eq!(
        (
            counts.expectations_errored,
            counts.expectations_errored_early
        ),
        (2, 1)
    );
}

/// The steps a connection's requests were refused at with the error event are named, once
/// each, and those it met expectations at are in its filter; a refusal of a request sent
/// before the server's acceptance names no step (a server may refuse one until it is
/// ready), nor does an error that names no request.
#[test]
fn steps_refused_with_the_error_event_are_named_and_met_ones_filtered() {
    let t = Instant::now();
    let (asked, refused, early) = (
        StepPlace::of(&[2, 2]),
        StepPlace::of(&[3, 2]),
        StepPlace::of(&[1]),
    );
    let mut ch = plain();
    ch.before_acceptance();
    ch.at_step(early);
    ch.expect(plan_of("done", Some(("/run_id", "r0"))), Some((t, t)), t);
    ch.on_message(&json!({"type": "error", "run_id": "r0"}), t);
    for (step, id, answer) in [
        (asked, "r1", "done"),
        (refused, "r2", "error"),
        (asked, "r3", "done"),
        (refused, "r4", "error"),
    ] {
        ch.at_step(step);
        ch.expect(plan_of("done", Some(("/run_id", id))), Some((t, t)), t);
        ch.on_message(&json!({"type": answer, "run_id": id}), t);
    }
    // An error naming no request settles the oldest unanswered expectation, a guess: it
    // may be a send's no `expect` follows, and names no step.
    ch.at_step(StepPlace::of(&[5]));
    ch.expect(plan_of("done", Some(("/run_id", "r5"))), Some((t, t)), t);
    ch.on_message(&json!({"type": "error", "message": "unsupported"}), t);
    let (errored, met) = ch.take_step_errors();
    assert_eq!(errored, vec![refused]);
    assert_eq!(met, asked.bloom_bit(), "only the served step met");
    assert_eq!(ch.counts().expectations_errored, 4);
}

/// A script that goes on after the server refused one of its requests with its error
/// event (a join to a full room) and then waits for what the server sends unasked (the
/// room's ticks): the push that never came is cut, counted as after a refusal, not lost.
/// Without the refusal it is a loss; after it, a record of its kind that fails its `where`
/// is still a wrong answer, and a refusal of a request sent before acceptance excuses
/// nothing.
#[test]
fn a_push_waited_for_after_a_refused_request_is_not_owed() {
    let t = Instant::now();
    let run = |answer: &str, early: bool, then: Option<Value>| {
        let mut ch = plain();
        if early {
            ch.before_acceptance();
        }
        ch.expect(plan_of("joined", Some(("/run_id", "j1"))), Some((t, t)), t);
        ch.on_message(&json!({"type": answer, "run_id": "j1"}), t);
        let mut tick = plan_of("tick", None);
        tick.rare_mut().checks = vec![FieldTest {
            path: "/v".into(),
            test: Test::Equals(json!(2)),
        }];
        ch.expect(tick, None, t);
        if let Some(record) = then {
            ch.on_message(&record, t);
        }
        ch.expire(t + Duration::from_secs(6));
        ch
    };
    let mut refused = run("error", false, None);
    assert!(refused.violations.is_empty(), "{:?}", refused.violations);
    assert_eq!(refused.expectations_after_refusal(), 1);
    assert_eq!(refused.counts().expectations_cut, 1);
    let served = run("joined", false, None);
    assert_eq!(served.violations.len(), 1, "no refusal: a loss");
    assert_eq!(served.expectations_after_refusal(), 0);
    let wrong = run("error", false, Some(json!({"type": "tick", "v": 1})));
    assert_eq!(wrong.violations.len(), 1, "a wrong answer is judged");
    let early = run("error", true, None);
    assert_eq!(
        early.violations.len(),
        1,
        "an early refusal excuses nothing"
    );
}

/// The refusal excuses only what the script then waits for asking nothing more: an
/// expectation opened before the refusal, one after a later request (a join elsewhere, a
/// valid input, a re-join on a new connection), or one after a refusal on an earlier
/// stream is still judged; an error naming no request excuses nothing of it either.
#[test]
fn a_refusal_excuses_only_what_is_awaited_with_nothing_asked_since() {
    let t = Instant::now();
    let at = |ms| t + Duration::from_millis(ms);
    let tick = || plan_of("tick", None);
    let refuse = |ch: &mut ConnChecker, when| {
        ch.note_request(t);
        ch.expect(plan_of("joined", Some(("/run_id", "j1"))), Some((t, t)), t);
        ch.on_message(&json!({"type": "error", "run_id": "j1"}), when);
    };
    // Opened before the refusal came.
    let mut before = plain();
    before.expect(tick(), None, t);
    refuse(&mut before, at(10));
    before.expire(at(6_000));
    assert_eq!(before.violations.len(), 1, "{:?}", before.violations);
    // A request after the refusal: what follows answers it, or the room it joined.
    let mut asked = plain();
    refuse(&mut asked, at(10));
    asked.note_request(at(20));
    asked.expect(tick(), None, at(30));
    asked.expire(at(6_000));
    assert_eq!(asked.violations.len(), 1, "{:?}", asked.violations);
    // A new stream forgets the old one's refusal.
    let mut again = plain();
    refuse(&mut again, at(10));
    again.reset_stream();
    again.expect(tick(), None, at(30));
    again.expire(at(6_000));
    assert_eq!(again.violations.len(), 1, "{:?}", again.violations);
    // An error naming no request.
    let mut unnamed = plain();
    unnamed.note_request(t);
    unnamed.expect(plan_of("joined", None), Some((t, t)), t);
    unnamed.on_message(&json!({"type": "error"}), at(10));
    unnamed.expect(tick(), None, at(30));
    unnamed.expire(at(6_000));
    assert_eq!(unnamed.violations.len(), 1, "{:?}", unnamed.violations);
    // The control: nothing asked since, opened after it.
    let mut cut = plain();
    refuse(&mut cut, at(10));
    cut.expect(tick(), None, at(30));
    cut.expire(at(6_000));
    assert!(cut.violations.is_empty(), "{:?}", cut.violations);
}

/// An error naming a request that no pending expectation correlates with (the script
/// correlates a join on `id` but not its inputs) answers the uncorrelated expectation that
/// waits for the connection's latest request, as an error naming no request would; one
/// waiting since an earlier request is not its answer.
#[test]
fn an_error_naming_a_request_an_uncorrelated_expect_waits_for_settles_it() {
    let t = Instant::now();
    let at = |ms| t + Duration::from_millis(ms);
    let run = |later_request: bool| {
        let mut ch = ConnChecker::new(
            Arc::new(OracleSpec::default()),
            who(),
            t,
            vec!["run_id".into()],
        );
        ch.note_request(t);
        ch.expect(plan_of("input_ack", None), Some((t, t)), t);
        if later_request {
            ch.note_request(at(5));
        }
        ch.on_message(&json!({"type": "error", "run_id": "b-1"}), at(10));
        ch.expire(at(6_000));
        ch
    };
    let mut answered = run(false);
    assert!(answered.violations.is_empty(), "{:?}", answered.violations);
    assert_eq!(answered.counts().expectations_errored, 1);
    let earlier = run(true);
    assert_eq!(earlier.violations.len(), 1, "{:?}", earlier.violations);
}

/// A refusal and then the server's close (a STOMP ERROR's, a full room's): what the script
/// waited for unasked is cut as not owed; a Close 1011 says the server failed and is
/// judged, after a refusal as after an error naming no request.
#[test]
fn a_close_after_a_refusal_is_explained_unless_the_server_says_it_failed() {
    let t = Instant::now();
    let at = |ms| t + Duration::from_millis(ms);
    let closed = |code: u16, named: bool| {
        let mut ch = plain();
        ch.note_request(t);
        ch.expect(plan_of("joined", Some(("/run_id", "j1"))), Some((t, t)), t);
        let error = if named {
            json!({"type": "error", "run_id": "j1"})
        } else {
            json!({"type": "error"})
        };
        ch.on_message(&error, at(10));
        ch.expect(plan_of("tick", None), None, at(20));
        ch.end_stream(StreamEnd::Lost, "server closed", Some(code), at(500));
        ch
    };
    let refused = closed(1000, true);
    assert!(refused.violations.is_empty(), "{:?}", refused.violations);
    assert_eq!(refused.expectations_after_refusal(), 1);
    for named in [true, false] {
        let failed = closed(1011, named);
        assert_eq!(
            failed.violations.len(),
            1,
            "named {named}: a 1011 is judged"
        );
    }
}

/// An uncorrelated expectation whose kind came but failed its `where`, beside records the
/// connection could not read: what it saw names the failed test, not the unread records
/// (the kind was read; advice on where the kind lives would mislead).
#[test]
fn a_kind_that_failed_its_where_is_not_called_unreadable() {
    let t = Instant::now();
    let mut ch = plain();
    let mut p = plan_of("hello", None);
    p.rare_mut().checks = vec![FieldTest {
        path: "/v".into(),
        test: Test::Equals(json!(2)),
    }];
    ch.expect(p, None, t);
    ch.on_message(&json!({"note": "no kind here"}), t);
    ch.on_message(&json!({"type": "hello", "v": 1}), t);
    ch.expire(t + Duration::from_secs(6));
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    let seen = &ch.violations[0].seen;
    assert!(
        seen.starts_with(
            "nothing (1 record of its kinds failed its where, the first (hello) held /v = 1)"
        ),
        "{seen}"
    );
    assert!(!seen.contains("without a kind"), "{seen}");
}

/// An unmet expectation names where its `expect` is written (which of several alike ones
/// went unmet), whether its deadline passed or the server ended the connection; one with
/// no place known names none.
#[test]
fn an_unmet_expectation_names_its_step() {
    let t = Instant::now();
    let mut ch = checker();
    ch.at_step(StepPlace::of(&[9, 2]));
    ch.expect(five("r1"), Some((t, t)), t);
    ch.expire(t + Duration::from_secs(6));
    assert_eq!(ch.violations[0].step.as_deref(), Some("9.2"));
    assert!(
        ch.violations[0]
            .expected_shown()
            .ends_with("within 5s for r1 (step 9.2)"),
        "{}",
        ch.violations[0].expected_shown()
    );
    let mut ended = checker();
    ended.at_step(StepPlace::of(&[4]));
    ended.expect(five("r1"), Some((t, t)), t);
    ended.end_stream(StreamEnd::Lost, "server closed with 1000", Some(1000), t);
    assert_eq!(ended.violations[0].step.as_deref(), Some("4"));
    // The place is the next expectation's only: the one after it knows none.
    let mut once = checker();
    once.at_step(StepPlace::of(&[2]));
    once.expect(five("r1"), Some((t, t)), t);
    once.expect(five("r2"), Some((t, t)), t);
    once.expire(t + Duration::from_secs(6));
    let steps: Vec<Option<&str>> = once.violations.iter().map(|v| v.step.as_deref()).collect();
    assert_eq!(steps, [Some("2"), None]);
    // A long value is cut; without a step, the request alone.
    let long = "v".repeat(60);
    let mut cut = checker();
    cut.expect(five(&long), Some((t, t)), t);
    cut.expire(t + Duration::from_secs(6));
    let shown = cut.violations[0].expected_shown();
    assert!(
        shown.ends_with(&format!("for {}…", "v".repeat(48))),
        "{shown}"
    );
    // Settled at once, out of order: its step too.
    let mut early = checker();
    early.at_step(StepPlace::of(&[3, 1]));
    early.expect(five("r1"), Some((t, t)), t);
    early.on_message(&json!({"type": "done", "run_id": "r1"}), t);
    assert_eq!(early.violations[0].step.as_deref(), Some("3.1"));
}

/// Correlated answers of kinds the pattern does not name (a typo'd kind) are named in
/// what the unmet expectation saw, not "nothing".
#[test]
fn an_unmet_expectation_names_correlated_kinds_its_pattern_lacks() {
    let t = Instant::now();
    let mut ch = checker();
    ch.expect(five("r1"), Some((t, t)), t);
    for kind in ["begun", "working", "working", "finished"] {
        ch.on_message(&json!({"type": kind, "run_id": "r1"}), t);
    }
    ch.expire(t + Duration::from_secs(6));
    assert_eq!(
        ch.violations[0].seen,
        "nothing (4 correlated records of kinds the pattern does not name: begun, working, \
         finished)"
    );
}

/// An uncorrelated expectation is excused by unread records only when one may hold its
/// answer: a text record naming a kind of its pattern (newline-joined JSON), a binary
/// frame; a plain-text heartbeat (`ping`) cannot, and its loss stays a loss.
#[test]
fn a_heartbeat_line_does_not_excuse_an_uncorrelated_loss() {
    let t = Instant::now();
    let uncorrelated = || ExpectPlan {
        correlate: None,
        ..five("r1")
    };
    let mut heartbeat = checker();
    heartbeat.expect(uncorrelated(), Some((t, t)), t);
    heartbeat.on_unreadable("ping 1700000000");
    heartbeat.expire(t + Duration::from_secs(6));
    assert!(!heartbeat.violations[0].unreadable, "a ping holds no kind");
    let mut joined = checker();
    joined.expect(uncorrelated(), Some((t, t)), t);
    joined.on_unreadable("{\"type\":\"started\"}\n{\"type\":\"done\"}");
    joined.expire(t + Duration::from_secs(6));
    assert!(joined.violations[0].unreadable, "it names `started`");
    let mut binary = checker();
    binary.expect(uncorrelated(), Some((t, t)), t);
    binary.on_binary(b"\x92\xa4ping");
    binary.expire(t + Duration::from_secs(6));
    assert!(binary.violations[0].unreadable, "an encoding may hide it");
}

/// An expectation that opens after a record no one could read is excused by it only when
/// the record holds its answer: a line of newline-joined JSON whose kind is in its pattern
/// (Centrifugo joins a reply and the push it announces in one frame), or its correlation
/// value. A heartbeat line before it, or a joined record of other kinds, excuses nothing.
#[test]
fn an_expectation_opened_after_an_unread_record_is_excused_only_by_its_answer() {
    let t = Instant::now();
    let later = |record: &str, correlate: bool| {
        let mut ch = checker();
        ch.on_unreadable(record);
        let plan = if correlate {
            five("r1")
        } else {
            ExpectPlan {
                correlate: None,
                ..five("r1")
            }
        };
        ch.expect(plan, Some((t, t)), t);
        ch.expire(t + Duration::from_secs(6));
        ch.violations[0].unreadable
    };
    let joined = "{\"type\":\"reply\",\"id\":3}\n{\"type\":\"started\",\"run_id\":\"r1\"}";
    assert!(later(joined, false), "a line of it is a `started`");
    assert!(later(joined, true), "it holds r1");
    assert!(!later("ping 1700000000", false), "a ping holds no kind");
    let others = "{\"type\":\"reply\",\"id\":3}\n{\"type\":\"presence\"}";
    assert!(!later(others, false), "no line is of the pattern's kinds");
    assert!(!later(others, true), "nor holds r1");
}

/// Records no expectation claimed are shown with what an unmet expectation saw (a refusal
/// the scenario does not declare explains a `welcome` that never came): the latest few,
/// each its JSON when bodies are kept (cut, never inside a token), else its kind.
#[test]
fn an_unmet_expectation_shows_the_records_no_expectation_claimed() {
    let t = Instant::now();
    let refusal = json!({"type": "disconnect", "reason": "unauthorized"});
    let mut kept = plain();
    kept.expect(plan_of("welcome", None), None, t);
    kept.on_message(&refusal, t);
    kept.end_stream(StreamEnd::Lost, "server closed with 1000", Some(1000), t);
    assert_eq!(
        kept.violations[0].seen,
        r#"nothing (unclaimed: {"type":"disconnect","reason":"unauthorized"}); then server closed with 1000"#
    );

    // Without kept bodies (no `where` or `capture` in the script): the kind.
    let mut kinds = checker();
    kinds.expect(plan_of("welcome", None), None, t);
    kinds.on_message(&refusal, t);
    kinds.expire(t + Duration::from_secs(6));
    assert_eq!(kinds.violations[0].seen, "nothing (unclaimed: disconnect)");

    // Bounded: the latest three, the others counted; a long record cut before the token
    // run it would split, so redaction can still replace the token whole.
    let mut many = plain();
    many.expect(plan_of("welcome", None), None, t);
    for n in 0..4 {
        many.on_message(&json!({"type": "ping", "message": n}), t);
    }
    let token = "x".repeat(300);
    many.on_message(&json!({"type": "echo", "token": token}), t);
    many.expire(t + Duration::from_secs(6));
    let seen = &many.violations[0].seen;
    assert_eq!(
        seen,
        r#"nothing (unclaimed, the latest 3 of 5: {"type":"ping","message":2}, {"type":"ping","message":3}, {"type":"echo","token":"…)"#
    );

    // What the pattern saw comes first; a met expectation shows nothing.
    let mut partial = plain();
    partial.expect(plan_of("a b", None), None, t);
    partial.on_message(&json!({"type": "a"}), t);
    partial.on_message(&json!({"type": "other"}), t);
    partial.expire(t + Duration::from_secs(6));
    assert_eq!(
        partial.violations[0].seen,
        r#"a (unclaimed: {"type":"other"})"#
    );
}

/// The first record that was not JSON is kept, its start only and its control characters
/// escaped, for the verdict to quote; later ones leave it.
#[test]
fn the_first_record_that_was_not_json_is_kept_for_the_verdict() {
    let mut ch = checker();
    let long = format!("42[\"notification\",{{\"n\":1}}]\n{}", "x".repeat(200));
    ch.on_unreadable(&long);
    ch.on_unreadable("3");
    let sample = ch.counts().unread_sample.clone().unwrap_or_default();
    assert!(
        sample.starts_with("42[\"notification\",{\"n\":1}]\\n"),
        "{sample}"
    );
    assert!(sample.len() < 80, "{sample}");
}

#[test]
fn out_of_order_events_are_flagged_at_once() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    ch.expect(
        five("r1"),
        Some((Instant::now(), Instant::now())),
        Instant::now(),
    );
    send_all(&mut ch, &[f.msg("started", "r1"), f.msg("done", "r1")]);
    assert_eq!(ch.violations.len(), 1);
    // The whole pattern as written, and what was still to come when the wrong kind came.
    assert_eq!(
        ch.violations[0].expected,
        "started thinking+ done in order (still to come: thinking+ done)"
    );
    assert_eq!(ch.violations[0].seen, "started done");
}

#[test]
fn an_explicit_error_resolves_without_violation() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    ch.expect(
        five("r1"),
        Some((Instant::now(), Instant::now())),
        Instant::now(),
    );
    send_all(&mut ch, &[f.msg("error", "r1")]);
    assert!(ch.violations.is_empty());
    assert_eq!(ch.counts.expectations_errored, 1);
}

/// The checker of one expectation of `five("r1")` that the server answered with its error
/// event and then with `answer`, each correlated on r1.
fn errored_then(answer: &[&str]) -> ConnChecker {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    let now = Instant::now();
    ch.expect(five("r1"), Some((now, now)), now);
    send_all(&mut ch, &[f.msg("error", "r1")]);
    let msgs: Vec<Value> = answer.iter().map(|event| f.msg(event, "r1")).collect();
    send_all(&mut ch, &msgs);
    ch
}

/// The findings of `ch`, each checked to be a late duplicate of r1's answer whose
/// `expected` is `said`: what a met expectation's second copy, or its events out of the
/// pattern's order, raise.
fn late_duplicates<'a>(ch: &'a ConnChecker, said: &str) -> Vec<&'a str> {
    for v in &ch.violations {
        assert_eq!(v.oracle, OracleKind::Completeness, "{v:?}");
        assert_eq!(v.expected, said, "{v:?}");
        assert_eq!(v.correlation.as_deref(), Some("r1"), "{v:?}");
    }
    ch.violations.iter().map(|v| v.seen.as_str()).collect()
}

/// A request answered with the error event and then with its whole answer, once and in
/// order: the error settles it (an allowed answer, no finding), the answer's kinds count
/// as arrived, and the request counts as served.
#[test]
fn a_whole_answer_after_its_error_serves_the_request() {
    let mut ch = errored_then(&["started", "thinking", "thinking", "done"]);
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    let counts = ch.counts();
    assert_eq!(
        (counts.expectations_errored, counts.expectations_met),
        (1, 0)
    );
    for kind in ["started", "thinking", "done"] {
        let t = counts.events[kind];
        assert_eq!((t.expected, t.arrived), (1, 1), "{kind}");
    }
    assert_eq!(ch.answered_after_error(), 1);
    assert_eq!(ch.arrived_after_error(), 3);
}

/// The answer sent after the error is judged as a met expectation's later events are: a
/// second copy of it, or its events out of the pattern's order, are late duplicates, the
/// same findings as without the error before them (it once let every one through).
#[test]
fn an_answer_after_its_error_twice_or_out_of_order_is_a_late_duplicate() {
    let mut twice = errored_then(&["started", "thinking", "done", "started", "thinking", "done"]);
    assert_eq!(
        late_duplicates(&twice, ANSWERED_WITH_ERROR),
        ["started", "thinking", "done"],
        "the second copy"
    );
    let reversed = errored_then(&["done", "thinking", "started"]);
    assert_eq!(
        late_duplicates(&reversed, ANSWERED_WITH_ERROR),
        ["done", "thinking"],
        "what came before its place"
    );
    // Both are what a met expectation's answer raises with the same events after it.
    let (mut met, mut f) = (checker(), Feed { seq: 0 });
    let now = Instant::now();
    met.expect(five("r1"), Some((now, now)), now);
    let again = ["started", "thinking", "done", "started", "thinking", "done"];
    let msgs: Vec<Value> = again.iter().map(|event| f.msg(event, "r1")).collect();
    send_all(&mut met, &msgs);
    assert_eq!(
        late_duplicates(&met, ANSWERED_IN_FULL),
        late_duplicates(&twice, ANSWERED_WITH_ERROR)
    );
    // Counted as arrived once per required item, whatever came twice.
    let counts = twice.counts();
    assert_eq!(counts.events["started"].arrived, 1);
    assert_eq!(twice.arrived_after_error(), 3);
}

/// A late duplicate of a request the server answered with its error event says so, not
/// that the request's pattern was met in full (it never was); a met request's says that.
#[test]
fn a_late_duplicate_after_an_error_is_worded_as_after_an_error() {
    let twice = errored_then(&["started", "thinking", "done", "done"]);
    assert_eq!(twice.violations.len(), 1, "{:?}", twice.violations);
    let said = &twice.violations[0].expected;
    assert!(said.contains("already answered with an error"), "{said}");
    assert!(!said.contains("in full"), "{said}");
    // Without the error before it, the same duplicate keeps its wording.
    let (mut met, mut f) = (checker(), Feed { seq: 0 });
    let now = Instant::now();
    met.expect(five("r1"), Some((now, now)), now);
    let msgs: Vec<Value> = ["started", "thinking", "done", "done"]
        .iter()
        .map(|event| f.msg(event, "r1"))
        .collect();
    send_all(&mut met, &msgs);
    assert_eq!(late_duplicates(&met, ANSWERED_IN_FULL), ["done"]);
}

/// Part of an answer after the error serves nothing: what came of it counts as arrived
/// (it did come) and apart, as after an error, for the verdict to leave out; the request
/// does not count as served.
#[test]
fn part_of_an_answer_after_its_error_does_not_serve_the_request() {
    let mut ch = errored_then(&["started", "thinking"]);
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    let counts = ch.counts();
    assert_eq!(counts.events["started"].arrived, 1);
    assert_eq!(counts.events["done"].arrived, 0);
    assert_eq!(ch.answered_after_error(), 0, "no whole answer");
    assert_eq!(ch.arrived_after_error(), 2);
}

/// An `expect` that names the error event asks for that error (a request meant to fail):
/// the error meets it like any answer, its `where` tested (the wrong error code is a
/// violation), and its kind counts as arrived; before, every error settled it as a
/// refusal, its `where` never read.
#[test]
fn an_expected_error_meets_its_expectation_and_its_where_is_tested() {
    let answer = |code: i64, correlated: bool| {
        let mut ch = plain();
        let mut p = plan_of("error", correlated.then_some(("/1", "7")));
        p.rare_mut().checks = vec![FieldTest {
            path: "/error/code".into(),
            test: Test::Equals(json!(-32601)),
        }];
        let now = Instant::now();
        ch.expect(p, Some((now, now)), now);
        ch.on_message(
            &json!({"type": "error", "1": "7", "error": {"code": code}}),
            now,
        );
        ch
    };
    for correlated in [true, false] {
        let mut met = answer(-32601, correlated);
        assert!(met.violations.is_empty(), "{:?}", met.violations);
        let counts = met.counts().clone();
        assert_eq!(
            (counts.expectations_met, counts.expectations_errored),
            (1, 0)
        );
        assert_eq!(counts.events["error"].arrived, 1);
        // Uncorrelated, a message failing the test is not claimed: the deadline tells.
        let mut wrong = answer(-32000, correlated);
        wrong.expire(Instant::now() + Duration::from_secs(6));
        assert_eq!(wrong.violations.len(), 1, "{correlated}");
        let v = &wrong.violations[0];
        let told = match correlated {
            true => v.expected.contains("/error/code = -32601"),
            false => v.seen.contains("-32000"),
        };
        assert!(told, "{v:?}");
    }
}

/// An error that says the connection is not authenticated, on a connection the server
/// had accepted for a valid token, contradicts that acceptance (an ack sent before the
/// session was ready, race pattern P7): a completeness violation quoting it, where any
/// other error stays an allowed answer. Before acceptance (a request sent before the ack
/// on purpose) it is allowed too, and so is one that says the token expired.
#[test]
fn an_unauthenticated_error_after_acceptance_is_a_violation() {
    let answered = |accepted: bool, code: &str| {
        let (mut ch, mut f) = (checker(), Feed { seq: 0 });
        if accepted {
            ch.authenticated();
        }
        ch.expect(
            five("r1"),
            Some((Instant::now(), Instant::now())),
            Instant::now(),
        );
        let mut error = f.msg("error", "r1");
        error["code"] = Value::from(code);
        send_all(&mut ch, &[error]);
        (ch.violations, ch.counts.expectations_errored)
    };
    let (violations, errored) = answered(true, "not_authenticated");
    assert_eq!((violations.len(), errored), (1, 0), "{violations:#?}");
    assert!(
        violations[0].seen.contains("not_authenticated")
            && violations[0]
                .seen
                .contains("after the server had accepted the connection"),
        "{violations:#?}"
    );
    // A session not ready yet after the acceptance is the same race (P7).
    let (violations, errored) = answered(true, "internal error: session not ready");
    assert_eq!((violations.len(), errored), (1, 0), "{violations:#?}");
    for (accepted, code) in [
        (false, "session not ready"),
        (false, "not_authenticated"),
        (true, "validation_failed"),
        (true, "token expired: not authenticated"),
    ] {
        let (violations, errored) = answered(accepted, code);
        assert_eq!((violations.len(), errored), (0, 1), "{accepted} {code}");
    }
}

#[test]
fn a_server_close_after_an_uncorrelated_error_is_not_a_violation() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    ch.expect(
        five("r1"),
        Some((Instant::now(), Instant::now())),
        Instant::now(),
    );
    let mut overflow = f.msg("error", "x");
    overflow["run_id"] = Value::Null;
    send_all(&mut ch, &[overflow]);
    ch.end_stream(
        StreamEnd::Lost,
        "server closed 1013",
        Some(1013),
        Instant::now(),
    );
    assert!(ch.violations.is_empty());
    assert_eq!(ch.counts.expectations_errored, 1);
}

#[test]
fn a_silent_close_with_pending_work_is_a_violation_but_a_cut_is_not() {
    let mut ch = checker();
    ch.expect(
        five("r1"),
        Some((Instant::now(), Instant::now())),
        Instant::now(),
    );
    ch.end_stream(StreamEnd::Lost, "reset", None, Instant::now());
    assert_eq!(ch.violations.len(), 1);
    assert!(ch.violations[0].seen.contains("reset"));
    let mut ch = checker();
    ch.expect(
        five("r1"),
        Some((Instant::now(), Instant::now())),
        Instant::now(),
    );
    ch.end_stream(StreamEnd::Cut, "run ended", None, Instant::now());
    assert!(ch.violations.is_empty());
    assert_eq!(ch.counts.expectations_cut, 1);
}

/// The event rates count what was owed: an expectation the run's end cut or a clean
/// refusal settled (its events never owed) drops out of them, partly answered or not;
/// one the server left unanswered stays in as missed.
/// A five-kind sequence, as the agent protocols send one per message.
fn agent(run: &str) -> ExpectPlan {
    let mut p = five(run);
    p.pattern = ["started", "thinking", "tool", "tool_done", "done"]
        .iter()
        .map(|e| PatternItem {
            event: e.to_string(),
            repeat: Repeat::One,
        })
        .collect();
    p
}

#[test]
fn a_sequence_that_lost_an_event_counts_what_came_after_it_as_arrived() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    let now = Instant::now();
    ch.expect(agent("r1"), Some((now, now)), now);
    // `tool_done` is lost: `done` comes in its place, and a second `done` after it.
    let msgs = ["started", "thinking", "tool", "done", "done"].map(|e| f.msg(e, "r1"));
    send_all(&mut ch, &msgs);
    assert_eq!(ch.violations.len(), 1, "one finding: {:?}", ch.violations);
    assert!(ch.violations[0].expected.contains("tool_done"));
    let events = &ch.counts().events;
    let rates: Vec<(&str, u64, u64)> = ["started", "thinking", "tool", "tool_done", "done"]
        .iter()
        .map(|e| (*e, events[*e].expected, events[*e].arrived))
        .collect();
    assert_eq!(
        rates,
        [
            ("started", 1, 1),
            ("thinking", 1, 1),
            ("tool", 1, 1),
            ("tool_done", 1, 0),
            ("done", 1, 1),
        ],
        "the loss is charged to the kind that was lost, once"
    );
}

#[test]
fn an_unmet_expectation_says_how_its_answers_may_be_misread() {
    let now = Instant::now();
    let late = now + Duration::from_secs(6);
    // Its kinds came without the field it correlates on (the server says `request_id`).
    let mut ch = checker();
    ch.expect(five("r1"), Some((now, now)), now);
    let fieldless = json!({"type": "started", "request_id": "r1", "user_id": "user-1"});
    ch.on_message(&fieldless, now);
    ch.expire(late);
    assert_eq!(ch.violations.len(), 1);
    assert_eq!(
        ch.violations[0].misread,
        Some(Misread::NoCorrelationField {
            field: "run_id".into(),
            carried: vec!["type".into(), "request_id".into(), "user_id".into()],
            kinds: vec!["started".into(), "thinking".into(), "done".into()],
            came_with: Vec::new(),
        })
    );
    assert!(
        ch.violations[0].seen.contains("without \"run_id\""),
        "{}",
        ch.violations[0].seen
    );
    // Its first kind came correlated, and every kind it still owed came, but only without
    // the field (a subscription whose ack echoes the request id and whose updates do
    // not): the pattern is misread, not half lost.
    let mut ch = checker();
    ch.expect(five("r3"), Some((now, now)), now);
    ch.on_message(&json!({"type": "started", "run_id": "r3"}), now);
    for kind in ["thinking", "done"] {
        ch.on_message(&json!({"type": kind, "price": 7}), now);
    }
    ch.expire(late);
    assert_eq!(ch.violations.len(), 1, "{:#?}", ch.violations);
    assert_eq!(
        ch.violations[0].misread,
        Some(Misread::NoCorrelationField {
            field: "run_id".into(),
            carried: vec!["type".into(), "price".into()],
            kinds: vec!["thinking".into(), "done".into()],
            came_with: vec!["started".into()],
        })
    );
    // One kind it owes never came at all: a loss may stand, no misreading of the field.
    let mut ch = checker();
    ch.expect(five("r4"), Some((now, now)), now);
    ch.on_message(&json!({"type": "started", "run_id": "r4"}), now);
    ch.on_message(&json!({"type": "thinking", "price": 7}), now);
    ch.expire(late);
    assert!(
        !matches!(
            ch.violations[0].misread,
            Some(Misread::NoCorrelationField { .. })
        ),
        "{:?}",
        ch.violations[0].misread
    );
    // Only kinds its pattern does not name came for it.
    let mut ch = checker();
    ch.expect(five("r2"), Some((now, now)), now);
    ch.on_message(&json!({"type": "begun", "run_id": "r2"}), now);
    ch.expire(late);
    assert!(matches!(
        &ch.violations[0].misread,
        Some(Misread::OtherKinds { came, .. }) if came == &["begun".to_string()]
    ));
    // Some of its kinds came: a loss, not a misreading.
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    ch.expect(five("r3"), Some((now, now)), now);
    ch.on_message(&f.msg("started", "r3"), now);
    ch.on_message(&json!({"type": "done", "request_id": "r3"}), now);
    ch.expire(late);
    assert_eq!(ch.violations[0].misread, None);
    // One of its kinds came, and one it does not name (a typo of its last): other kinds
    // all the same, for the verdict to weigh against the whole run.
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    ch.expect(five("r4"), Some((now, now)), now);
    ch.on_message(&f.msg("started", "r4"), now);
    ch.on_message(&f.msg("thinking", "r4"), now);
    ch.on_message(&f.msg("done_", "r4"), now);
    ch.expire(late);
    assert!(
        matches!(
            &ch.violations[0].misread,
            Some(Misread::OtherKinds { came, kinds })
                if came == &["done_".to_string()] && kinds.len() == 3
        ),
        "{:?}",
        ch.violations[0].misread
    );
    // Its kinds came holding a boolean where it reads the correlation value: no request
    // id is a boolean (a `reply` path naming the answer's accepted flag).
    let during = [
        json!({"type": "started", "run_id": true}),
        json!({"type": "started", "run_id": {"id": "r5"}}),
    ];
    assert_eq!(
        unmet_after(&[], &during, "r5").misread,
        Some(Misread::OtherCorrelationValue {
            field: "run_id".into(),
            held: "true".into(),
            id_like: false,
            sent: false,
            kinds: vec!["started".into(), "thinking".into(), "done".into()],
        })
    );
    // The same, buffered before the expectation opened (the answer to an earlier one that
    // read the same wrong path): noted when it opens.
    let v = unmet_after(&[json!({"type": "started", "run_id": null})], &[], "r8");
    assert!(
        matches!(&v.misread, Some(Misread::OtherCorrelationValue { held, id_like: false, .. }) if held == "null"),
        "{:?}",
        v.misread
    );
    // A string or a number: noted as a request id may be (another request's answer, or
    // a path naming the answer's message), for the verdict to weigh against the run.
    let during = [
        json!({"type": "started", "run_id": "r7"}),
        json!({"type": "started", "run_id": 7}),
    ];
    let v = unmet_after(&[], &during, "r6");
    assert!(
        matches!(&v.misread, Some(Misread::OtherCorrelationValue { held, id_like: true, .. }) if held == "r7"),
        "{:?}",
        v.misread
    );
    // The witness says what came instead of "nothing" alone.
    assert!(
        v.seen
            .contains("(its kinds came with \"run_id\" = \"r7\", not its own)"),
        "{}",
        v.seen
    );
    // Buffered: the value, its kind said by the record it came in.
    let v = unmet_after(&[json!({"type": "started", "run_id": 3})], &[], "r9");
    assert!(
        matches!(&v.misread, Some(Misread::OtherCorrelationValue { held, id_like: true, .. }) if held == "3"),
        "{:?}",
        v.misread
    );
}

/// A value held where the request's should be that this connection's own requests sent
/// (a request whose expectation never opened: the run ended first) is an answer come to
/// the wrong request, not a path misread: marked so, and the witness says it.
#[test]
fn another_value_this_connection_sent_is_marked_as_its_own_request() {
    let now = Instant::now();
    let mut ch = checker();
    ch.expect(five("r1"), Some((now, now)), now);
    ch.on_message(&json!({"type": "started", "run_id": "r8"}), now);
    ch.expire(now + Duration::from_secs(6));
    // A later request's, after r8's record came: that record was no answer of its.
    let later = now + Duration::from_secs(7);
    ch.expect(five("r2"), Some((later, later)), later);
    ch.on_message(&json!({"type": "started", "run_id": "x"}), later);
    ch.expire(later + Duration::from_secs(6));
    ch.mark_values_sent(|value| value == "r8");
    let sent = |v: &Violation| {
        matches!(
            &v.misread,
            Some(Misread::OtherCorrelationValue { sent: true, .. })
        )
    };
    assert!(sent(&ch.violations[0]), "{:?}", ch.violations[0].misread);
    assert!(
        ch.violations[0].seen.contains(
            "(its kinds came with \"run_id\" = \"r8\", another request's this connection sent)"
        ),
        "{}",
        ch.violations[0].seen
    );
    assert!(!sent(&ch.violations[1]), "{:?}", ch.violations[1].misread);
    assert!(
        ch.violations[1].seen.contains("not its own"),
        "{}",
        ch.violations[1].seen
    );
}

/// The one violation of an expectation correlated on `run` that went unmet, `before`
/// received before it opened and `during` while it was open.
/// A record buffered before the expectation's request went out (another request's late
/// answer) cannot have been its answer: no other value is noted, and the witness does
/// not blame it. One that came after the send still is.
#[test]
fn a_record_buffered_before_the_request_went_out_is_not_its_misread_answer() {
    let t0 = Instant::now();
    let sent = t0 + Duration::from_millis(10);
    let unmet = |at: Instant| {
        let mut ch = checker();
        ch.on_message(&json!({"type": "started", "run_id": "r1"}), at);
        ch.expect(five("r5"), Some((sent, sent)), sent);
        ch.expire(sent + Duration::from_secs(6));
        ch.violations.remove(0)
    };
    let before = unmet(t0);
    assert_eq!(before.misread, None, "{:?}", before.misread);
    assert!(!before.seen.contains("\"r1\""), "{}", before.seen);
    let after = unmet(sent + Duration::from_millis(1));
    assert!(
        matches!(&after.misread, Some(Misread::OtherCorrelationValue { held, .. }) if held == "r1"),
        "{:?}",
        after.misread
    );
}

fn unmet_after(before: &[Value], during: &[Value], run: &str) -> Violation {
    let now = Instant::now();
    let mut ch = checker();
    for msg in before {
        ch.on_message(msg, now);
    }
    ch.expect(five(run), Some((now, now)), now);
    for msg in during {
        ch.on_message(msg, now);
    }
    ch.expire(now + Duration::from_secs(6));
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    ch.violations.remove(0)
}

#[test]
fn records_of_kinds_no_step_expects_do_not_push_out_ones_a_step_will_claim() {
    let now = Instant::now();
    let flood = |ch: &mut ConnChecker| {
        // The answer comes before its expectation is registered, then a heartbeat flood.
        ch.on_message(&json!({"type": "done", "run_id": "r1"}), now);
        for _ in 0..2 * OracleSpec::default().max_buffered {
            ch.on_message(&json!({"type": "heartbeat"}), now);
        }
        let mut p = five("r1");
        p.pattern = vec![PatternItem {
            event: "done".into(),
            repeat: Repeat::One,
        }]
        .into();
        let id = ch.expect(p, Some((now, now)), now);
        !ch.is_pending(id) && ch.violations.is_empty()
    };
    let kinds: BTreeSet<String> = ["done".to_string()].into();
    let mut reads_its_script = checker().claiming_only(Some(Arc::new(kinds)));
    assert!(flood(&mut reads_its_script), "the buffered answer meets it");
    assert_eq!(reads_its_script.take_counts().buffer_overflows, 0);
    // Not kept, the latest few are still what a witness shows the server said.
    let mut p = five("r9");
    p.pattern = vec![PatternItem {
        event: "done".into(),
        repeat: Repeat::One,
    }]
    .into();
    reads_its_script.expect(p, Some((now, now)), now);
    reads_its_script.expire(now + Duration::from_secs(6));
    assert_eq!(
        reads_its_script.violations[0].seen,
        "nothing (unclaimed: heartbeat, heartbeat, heartbeat)"
    );
    let mut keeps_any = checker();
    assert!(!flood(&mut keeps_any), "the flood pushed the answer out");
}

/// An uncorrelated expectation that got none of its kinds, while records of a kind no step
/// names came as it waited, may be misnaming that kind: its violation says which came
/// ([`Misread::OtherKinds`]), for the verdict to tell a typo from a loss. A correlated one
/// is not charged with records that do not name its request.
#[test]
fn an_uncorrelated_expectation_names_the_unclaimed_kinds_that_came_as_it_waited() {
    let now = Instant::now();
    let kinds: BTreeSet<String> = ["resp".to_string()].into();
    let mut ch = ConnChecker::new(spec(), who(), now, vec![]).claiming_only(Some(Arc::new(kinds)));
    let mut p = five("r1");
    p.pattern = vec![PatternItem {
        event: "resp".into(),
        repeat: Repeat::One,
    }]
    .into();
    p.correlate = None;
    ch.expect(p.clone(), Some((now, now)), now);
    ch.on_message(&json!({"type": "res", "id": 1}), now);
    ch.expire(now + Duration::from_secs(6));
    assert_eq!(
        ch.violations[0].misread,
        Some(Misread::OtherKinds {
            came: vec!["res".into()],
            kinds: vec!["resp".into()],
        })
    );
    let mut correlated = checker().claiming_only(Some(Arc::new(["resp".to_string()].into())));
    p.correlate = Some(("run_id".into(), "r1".into()));
    correlated.expect(p, Some((now, now)), now);
    correlated.on_message(&json!({"type": "res"}), now);
    correlated.expire(now + Duration::from_secs(6));
    assert_eq!(correlated.violations[0].misread, None);
}

/// A record of a kind no step names still counts as what came while an uncorrelated
/// expectation waited when it also names a request already answered (Home Assistant's
/// events carry their subscription's `id`, whose `result` was met before): the finished
/// request does not take it out of the misnaming evidence.
#[test]
fn a_record_naming_a_finished_request_still_counts_as_a_kind_that_came() {
    let now = Instant::now();
    let kinds: BTreeSet<String> = ["result".to_string(), "evnt".to_string()].into();
    let mut ch = checker().claiming_only(Some(Arc::new(kinds)));
    let one = |event: &str| -> Arc<[PatternItem]> {
        vec![PatternItem {
            event: event.into(),
            repeat: Repeat::One,
        }]
        .into()
    };
    let mut result = five("1");
    result.pattern = one("result");
    ch.expect(result, Some((now, now)), now);
    ch.on_message(
        &json!({"type": "result", "run_id": 1, "user_id": "user-1"}),
        now,
    );
    assert_eq!(ch.counts.expectations_met, 1);
    let mut typo = five("1");
    typo.pattern = one("evnt");
    typo.correlate = None;
    ch.expect(typo, Some((now, now)), now);
    ch.on_message(
        &json!({"type": "event", "run_id": 1, "user_id": "user-1"}),
        now,
    );
    ch.expire(now + Duration::from_secs(6));
    assert_eq!(
        ch.violations[0].misread,
        Some(Misread::OtherKinds {
            came: vec!["event".into()],
            kinds: vec!["evnt".into()],
        })
    );
}

/// A record of a kind no step names that came after the connection's last request but
/// before the uncorrelated expectation that misnames it opened (a broadcast the server
/// sends before its ack) counts as what came for it, as one come while it waited does;
/// one come before that request does not.
#[test]
fn a_kind_no_step_names_come_before_its_expectation_opened_still_counts() {
    let now = Instant::now();
    let kinds: BTreeSet<String> = ["ack".to_string(), "mesage".to_string()].into();
    let misread = |request_first: bool| {
        let mut ch = checker().claiming_only(Some(Arc::new(kinds.clone())));
        let later = now + Duration::from_millis(5);
        ch.note_request(if request_first { now } else { later });
        ch.on_message(&json!({"type": "message", "run_id": 1}), now);
        let mut typo = five("1");
        typo.pattern = vec![PatternItem {
            event: "mesage".into(),
            repeat: Repeat::One,
        }]
        .into();
        typo.correlate = None;
        ch.expect(typo, Some((later, later)), later);
        ch.expire(now + Duration::from_secs(6));
        ch.violations[0].misread.clone()
    };
    assert_eq!(
        misread(true),
        Some(Misread::OtherKinds {
            came: vec!["message".into()],
            kinds: vec!["mesage".into()],
        })
    );
    assert_eq!(misread(false), None);
}

/// An uncorrelated expectation with a `where` test on a path its kind's records lack,
/// opened after such a record came (buffered: the server sent it before the ack the step
/// before waited for), reads the record it let pass as a field it does not carry, as it
/// does one come while it waits, not as "nothing".
#[test]
fn a_buffered_record_failing_an_uncorrelated_where_is_noted() {
    let t = Instant::now();
    let mut ch = plain();
    ch.note_request(t);
    ch.on_message(
        &json!({"type": "message", "data": {"id": "m-0", "owner": "u-0"}}),
        t,
    );
    let mut p = plan_of("message", None);
    p.rare_mut().checks = vec![FieldTest {
        path: "data.ids".into(),
        test: Test::Equals(json!("m-0")),
    }];
    ch.expect(p, None, t);
    ch.expire(t + Duration::from_secs(6));
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    assert!(
        matches!(
            &ch.violations[0].misread,
            Some(Misread::NoCheckedField { path, .. }) if path == "data.ids"
        ),
        "{:?}",
        ch.violations[0]
    );
}

/// An uncorrelated `expect_none` counts from where it opens; the records of its kinds that
/// came after the request before it, while the step before waited, are counted as unjudged
/// (a server sending the forbidden record before the ack reads clean otherwise); one from
/// before that request is not.
#[test]
fn forbidden_records_come_before_an_uncorrelated_absence_opened_are_counted() {
    let t = Instant::now();
    let mut ch = plain();
    ch.on_message(&json!({"type": "message", "n": 0}), t);
    let request = t + Duration::from_millis(5);
    ch.note_request(request);
    ch.on_message(&json!({"type": "message", "n": 1}), request);
    let mut none = plan_of("message", None);
    none.absent = true;
    none.within = Duration::from_millis(300);
    ch.expect(none, None, request);
    ch.expire(request + Duration::from_secs(1));
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    assert_eq!(ch.take_forbidden_before(), (1, Some("message".to_string())));
}

/// A misnamed kind before a correctly named one (`nxt+ complete`, answered `next`, `next`,
/// `complete`) puts the last out of order: that violation says which kinds came
/// correlated with it ([`Misread::OtherKinds`]), as one unmet at its deadline does, for
/// the verdict to tell the slip from a reordering.
#[test]
fn a_misnamed_kind_before_one_that_came_names_what_came_instead() {
    let now = Instant::now();
    let kinds: BTreeSet<String> = ["nxt".to_string(), "complete".to_string()].into();
    let mut ch = checker().claiming_only(Some(Arc::new(kinds)));
    let mut p = five("r1");
    p.pattern = vec![
        PatternItem {
            event: "nxt".into(),
            repeat: Repeat::OneOrMore,
        },
        PatternItem {
            event: "complete".into(),
            repeat: Repeat::One,
        },
    ]
    .into();
    ch.expect(p, Some((now, now)), now);
    for kind in ["next", "next", "complete"] {
        ch.on_message(&json!({"type": kind, "run_id": "r1"}), now);
    }
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    assert!(ch.violations[0].expected.contains("in order"));
    assert_eq!(
        ch.violations[0].misread,
        Some(Misread::OtherKinds {
            came: vec!["next".into()],
            kinds: vec!["nxt".into(), "complete".into()],
        })
    );
}

/// Records of kinds no step names are counted as no answer when they name no request and
/// their kind repeats (a heartbeat), and only where the script correlates its answers: one
/// carrying a correlation field may be a misnamed answer, and so may any where nothing is
/// correlated; a kind that came once (a greeting no step waits for) says the server spoke.
#[test]
fn unclaimed_records_naming_no_request_are_counted_as_no_answers() {
    let now = Instant::now();
    let kinds: BTreeSet<String> = ["done".to_string()].into();
    let feed = |ch: ConnChecker| {
        let mut ch = ch.claiming_only(Some(Arc::new(kinds.clone())));
        for msg in [
            json!({"type": "heartbeat"}),
            json!({"type": "welcome", "at": 3}),
            json!({"type": "result", "run_id": "r1"}),
            json!({"type": "heartbeat"}),
            json!({"type": "done", "run_id": "r2"}),
        ] {
            ch.on_message(&msg, now);
        }
        ch.take_counts()
    };
    let correlated = feed(checker());
    assert_eq!(correlated.unclaimed, 2);
    assert_eq!(correlated.unclaimed_kind.as_deref(), Some("heartbeat"));
    let uncorrelated = feed(ConnChecker::new(spec(), who(), now, vec![]));
    assert_eq!(uncorrelated.unclaimed, 0);
    assert_eq!(uncorrelated.unclaimed_kind, None);
}

#[test]
fn the_rest_of_a_failed_sequence_is_no_further_finding() {
    // A field test fails on the first event: the sequence's one finding.
    let mut ch = plain();
    let mut p = plan_of("started tool done", Some(("/1", "7")));
    p.rare_mut().checks = vec![FieldTest {
        path: "/2".into(),
        test: Test::Equals(json!("ok")),
    }];
    let now = Instant::now();
    ch.expect(p, Some((now, now)), now);
    for (kind, status) in [("started", "bad"), ("tool", "ok"), ("done", "ok")] {
        ch.on_message(&json!({"type": kind, "1": "7", "2": status}), now);
    }
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    assert!(ch.violations[0].expected.contains("/2 = \"ok\""));
    let events = &ch.counts().events;
    for kind in ["started", "tool", "done"] {
        assert_eq!(events[kind].arrived, 1, "{kind} came");
    }

    // A deadline missed: the events that come late are neither findings nor lost.
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    ch.expect(agent("r2"), Some((now, now)), now);
    ch.on_message(&f.msg("started", "r2"), now);
    ch.expire(now + Duration::from_secs(6));
    assert_eq!(ch.violations.len(), 1);
    let late = ["tool", "thinking", "tool_done", "done", "done"].map(|e| f.msg(e, "r2"));
    send_all(&mut ch, &late);
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    let events = &ch.counts().events;
    assert!(["started", "thinking", "tool", "tool_done", "done"]
        .iter()
        .all(|e| events[*e].arrived == 1));

    // A met sequence's duplicate is still one.
    ch.expect(agent("r3"), Some((now, now)), now);
    let twice =
        ["started", "thinking", "tool", "tool_done", "done", "tool"].map(|e| f.msg(e, "r3"));
    send_all(&mut ch, &twice);
    assert_eq!(ch.violations.len(), 2, "{:?}", ch.violations);
    assert!(ch.violations[1]
        .expected
        .contains("already answered in full"));
}

#[test]
fn cut_and_refused_expectations_drop_out_of_the_event_rates() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    let now = Instant::now();
    ch.expect(five("r1"), Some((now, now)), now);
    send_all(
        &mut ch,
        &[
            f.msg("started", "r1"),
            f.msg("thinking", "r1"),
            f.msg("done", "r1"),
        ],
    );
    ch.expect(five("r2"), Some((now, now)), now);
    send_all(&mut ch, &[f.msg("started", "r2")]);
    ch.end_stream(StreamEnd::Cut, "run ended", None, now);
    let mut refused = checker();
    refused.expect(five("r3"), None, now);
    refused.end_stream(
        StreamEnd::Refused,
        "server closed with 1008",
        Some(1008),
        now,
    );
    let refused = refused.take_counts();
    let mut counts = ch.take_counts();
    counts.merge(&refused);
    for event in ["started", "thinking", "done"] {
        let t = counts.events[event];
        assert_eq!((t.expected, t.arrived), (1, 1), "{event}");
    }

    let mut lost = checker();
    lost.expect(five("r4"), None, now);
    lost.end_stream(StreamEnd::Lost, "reset", None, now);
    let t = lost.counts().events["done"];
    assert_eq!((t.expected, t.arrived), (1, 0), "unanswered is missed");
}

#[test]
fn identity_flags_another_users_event() {
    let mut ch = checker();
    let m = json!({"type": "x", "user_id": "user-2"});
    ch.on_message(&m, Instant::now());
    assert_eq!(ch.violations.len(), 1);
    assert_eq!(ch.violations[0].oracle, OracleKind::Identity);
    assert_eq!(ch.violated_by[&OracleKind::Identity], 1);
    // Its own user is counted as held (a field that never holds it names something else).
    assert_eq!(ch.counts().identity_matched, 0);
    ch.on_message(&json!({"type": "x", "user_id": "user-1"}), Instant::now());
    assert_eq!(ch.counts().identity_matched, 1);
    assert_eq!(ch.violations.len(), 1);
    // Both sides quoted alike, as JSON: a number would show unquoted on the seen side.
    let sub = &ch.violations[0].expected;
    assert!(
        sub.starts_with("user_id = \"") && sub.ends_with('"'),
        "{sub}"
    );
    assert_eq!(ch.violations[0].seen, "user_id = \"user-2\"");
}

/// A forged token that names another subject (an empty `sub`, a second one) is answered
/// as that subject by a server that accepts it: the declared identity is not judged on
/// its connection, and a catalogue entry that leaves `sub` alone keeps it.
#[test]
fn a_token_forged_to_another_subject_is_not_judged_by_identity() {
    let mut ch = checker().without_identity();
    ch.on_message(&json!({"type": "x", "user_id": ""}), Instant::now());
    ch.on_message(&json!({"type": "x", "user_id": "admin"}), Instant::now());
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    let forged = |name: &str| crate::model::Forge::Bad {
        name: crate::model::BadToken::from_name(name).unwrap_or(crate::model::BadToken::Garbage),
    };
    for name in ["empty-sub", "missing-sub", "duplicate-sub-keys"] {
        assert!(forged(name).alters_subject(), "{name}");
    }
    for name in ["wrong-aud", "wrong-iss", "expired"] {
        assert!(!forged(name).alters_subject(), "{name}");
    }
}

#[test]
fn ordering_flags_gaps_and_duplicates() {
    let mut ch = checker();
    for seq in [1, 2, 4, 4, 5] {
        let m = json!({"type": "x", "seq": seq});
        ch.on_message(&m, Instant::now());
    }
    assert_eq!(
        ch.violated_by[&OracleKind::Ordering],
        2,
        "{:?}",
        ch.violations
    );
}

#[test]
fn events_after_a_finished_sequence_are_flagged() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    ch.expect(
        five("r1"),
        Some((Instant::now(), Instant::now())),
        Instant::now(),
    );
    let msgs = [
        f.msg("started", "r1"),
        f.msg("thinking", "r1"),
        f.msg("done", "r1"),
        f.msg("done", "r1"),
    ];
    send_all(&mut ch, &msgs);
    assert_eq!(ch.violated_by[&OracleKind::Completeness], 1);
}

#[test]
fn the_buffer_is_bounded() {
    let mut ch = ConnChecker::new(
        Arc::new(OracleSpec {
            max_buffered: 4,
            ..OracleSpec::default()
        }),
        who(),
        Instant::now(),
        vec!["run_id".into()],
    );
    for i in 0..10 {
        let m = json!({"type": "x", "run_id": format!("r{i}")});
        ch.on_message(&m, Instant::now());
    }
    assert_eq!(ch.buffer.len(), 4);
    assert_eq!(ch.counts.buffer_overflows, 6);
}

#[test]
fn the_buffer_is_bounded_in_bytes_too() {
    let limit = 4096;
    let mut ch = ConnChecker::new(
        Arc::new(OracleSpec {
            max_buffered: 1_000_000,
            max_buffered_bytes: limit,
            ..OracleSpec::default()
        }),
        who(),
        Instant::now(),
        vec!["run_id".into()],
    );
    // Big correlation values (what a buffered message keeps): ~1 KiB each.
    let big = "v".repeat(1000);
    for i in 0..100 {
        let m = json!({"type": "x", "run_id": format!("{big}{i}")});
        ch.on_message(&m, Instant::now());
    }
    assert!(ch.buffered_bytes <= limit, "{}", ch.buffered_bytes);
    assert_eq!(
        ch.buffered_bytes,
        ch.buffer.iter().map(|b| b.bytes).sum::<usize>()
    );
    assert!((2..=4).contains(&ch.buffer.len()), "{}", ch.buffer.len());
    assert_eq!(ch.counts.buffer_overflows, 100 - ch.buffer.len() as u64);
    let counts = ch.counts();
    assert!(counts.buffer_overflow_bytes >= 1000 * counts.buffer_overflows);
    // The newest are the ones kept.
    assert!(ch.buffer.back().unwrap().keys[0].1.ends_with("99"));
    // One message bigger than the whole bound is dropped at once, the others stay.
    let kept = ch.buffer.len();
    let huge = json!({"type": "x", "run_id": "h".repeat(10_000)});
    ch.on_message(&huge, Instant::now());
    assert_eq!(ch.buffer.len(), kept);
    assert_eq!(ch.counts.buffer_overflows, 101 - kept as u64);
    // A claim gives its bytes back.
    ch.reset_stream();
    assert_eq!(ch.buffered_bytes, 0);
}

#[test]
fn kept_bodies_count_against_the_byte_bound() {
    // A script that tests fields keeps each buffered message's body: a big body costs
    // its size even when its correlation key is short.
    let limit = 8192;
    let spec = Arc::new(OracleSpec {
        max_buffered: 1_000_000,
        max_buffered_bytes: limit,
        ..OracleSpec::default()
    });
    let fields = vec!["run_id".to_string()];
    let mut with =
        ConnChecker::new(spec.clone(), who(), Instant::now(), fields.clone()).with_bodies();
    let mut without = ConnChecker::new(spec, who(), Instant::now(), fields);
    let payload = "p".repeat(2000);
    for i in 0..20 {
        let m = json!({"type": "x", "run_id": format!("r{i}"), "payload": {"text": payload}});
        with.on_message(&m, Instant::now());
        without.on_message(&m, Instant::now());
    }
    assert!(with.buffered_bytes <= limit, "{}", with.buffered_bytes);
    assert!(
        (2..=4).contains(&with.buffer.len()),
        "{}",
        with.buffer.len()
    );
    assert!(with
        .buffer
        .iter()
        .all(|b| b.bytes > 2000 && b.body.is_some()));
    assert_eq!(with.counts.buffer_overflows, 20 - with.buffer.len() as u64);
    // Without bodies the same messages are small: all twenty fit.
    assert_eq!(without.buffer.len(), 20);
    assert_eq!(without.counts.buffer_overflows, 0);
}

#[test]
fn events_a_finished_pattern_still_allows_are_not_flagged() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    let mut plan = five("r1");
    plan.pattern = vec![
        PatternItem {
            event: "started".into(),
            repeat: Repeat::One,
        },
        PatternItem {
            event: "thinking".into(),
            repeat: Repeat::ZeroOrMore,
        },
    ]
    .into();
    ch.expect(plan, Some((Instant::now(), Instant::now())), Instant::now());
    send_all(
        &mut ch,
        &[
            f.msg("started", "r1"),
            f.msg("thinking", "r1"),
            f.msg("thinking", "r1"),
        ],
    );
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    assert_eq!(ch.counts.expectations_met, 1);
    send_all(&mut ch, &[f.msg("started", "r1")]);
    assert_eq!(
        ch.violated_by[&OracleKind::Completeness],
        1,
        "a second start is still wrong"
    );
}

/// A finished expectation remembers where its pattern stopped, and moves on with what the
/// pattern still allows: `a b* c?` met by `a`, then `c` (allowed), then `b` (no longer:
/// `c` came), whether its pattern has a tally slot or (past the first eight patterns of a
/// connection) not.
#[test]
fn a_finished_pattern_moves_on_with_what_it_still_allows_with_or_without_a_slot() {
    for others in [0, TALLIED_PATTERNS] {
        let (mut ch, mut f) = (checker(), Feed { seq: 0 });
        // Each pattern takes a slot when its first expectation settles.
        for i in 0..others {
            let run = format!("other-{i}");
            ch.expect(five(&run), None, Instant::now());
            let answer = ["started", "thinking", "done"].map(|kind| f.msg(kind, &run));
            send_all(&mut ch, &answer);
        }
        let mut plan = five("r1");
        plan.pattern = [
            ("a", Repeat::One),
            ("b", Repeat::ZeroOrMore),
            ("c", Repeat::Optional),
        ]
        .map(|(event, repeat)| PatternItem {
            event: event.into(),
            repeat,
        })
        .to_vec()
        .into();
        ch.expect(plan, Some((Instant::now(), Instant::now())), Instant::now());
        send_all(&mut ch, &[f.msg("a", "r1"), f.msg("c", "r1")]);
        assert_eq!(
            ch.counts.expectations_met,
            1 + others as u64,
            "with {others} other patterns"
        );
        assert!(ch.violations.is_empty(), "{:?}", ch.violations);
        assert_eq!(
            ch.recent_done.len() + ch.recent_done_unslotted.len(),
            1 + others,
            "with {others} other patterns"
        );
        assert_eq!(ch.recent_done_unslotted.len(), usize::from(others > 0));
        send_all(&mut ch, &[f.msg("b", "r1")]);
        assert_eq!(
            ch.violated_by.get(&OracleKind::Completeness),
            Some(&1),
            "with {others} other patterns: {:?}",
            ch.violations
        );
    }
}

#[test]
fn a_clean_refusal_ends_what_was_pending_without_a_violation() {
    let mut ch = checker();
    ch.expect(five("r1"), None, Instant::now());
    ch.end_stream(
        StreamEnd::Refused,
        "server closed with 1008",
        Some(1008),
        Instant::now(),
    );
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    assert_eq!(ch.violated, 0);
    assert_eq!(ch.counts.expectations_refused, 1);
    assert_eq!(ch.counts.expectations_met + ch.counts.expectations_cut, 0);
}

/// The end that settled a violation is recorded as data: the server's valid Close code,
/// and whether any awaited event had come; what judgements of the end read.
#[test]
fn a_violation_settled_by_the_end_records_how_the_stream_ended() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    ch.expect(five("r1"), None, Instant::now());
    ch.end_stream(
        StreamEnd::Lost,
        "server closed with 4401",
        Some(4401),
        Instant::now(),
    );
    let ended = StreamEnded {
        close_code: Some(4401),
        answered: false,
    };
    assert_eq!(ch.violations[0].ended, Some(ended));
    // A reply that started, then stopped.
    let mut ch = checker();
    ch.expect(five("r1"), None, Instant::now());
    send_all(&mut ch, &[f.msg("started", "r1")]);
    ch.end_stream(
        StreamEnd::Lost,
        "connection lost (reset)",
        None,
        Instant::now(),
    );
    let ended = StreamEnded {
        close_code: None,
        answered: true,
    };
    assert_eq!(ch.violations[0].ended, Some(ended));
    // The steps the end cut off, no expectation pending.
    let actions = script();
    let mut ch = checker();
    ch.server_ended(
        &actions,
        3,
        &place(3, &actions),
        "server closed with 1008",
        Some(1008),
        Instant::now(),
    );
    let ended = StreamEnded {
        close_code: Some(1008),
        answered: false,
    };
    assert_eq!(ch.violations[0].ended, Some(ended));
    // A timeout is not settled by an end.
    let mut ch = checker();
    let start = Instant::now();
    ch.expect(five("r1"), None, start);
    ch.expire(start + Duration::from_secs(6));
    assert_eq!(ch.violations.len(), 1);
    assert_eq!(ch.violations[0].ended, None);
}

/// The place of `actions[action]` in a plan of explicit actions (no script steps).
fn place(action: u64, actions: &[Action]) -> ScriptPlace {
    ScriptPlace {
        action,
        actions: actions.len() as u64,
        step: StepPlace::NONE,
    }
}

fn script() -> Vec<Action> {
    vec![
        Action::Connect,
        Action::Send {
            message: json!({"type": "hello"}),
        },
        Action::Expect(Box::new(five("r1"))),
        Action::Think(Duration::from_secs(1)),
        Action::Send {
            message: json!({"type": "rpc"}),
        },
        Action::Expect(Box::new(five("r2"))),
        Action::Close { code: 1000 },
        Action::Reconnect {
            after: Duration::ZERO,
            backoff: vec![],
        },
        Action::Expect(Box::new(five("r3"))),
    ]
}

#[test]
fn the_steps_cut_off_stop_at_the_next_close_or_reconnect() {
    let actions = script();
    // Killed during the think: the send and expect after it never ran.
    let cut = steps_cut_off(&actions, 3);
    assert_eq!(cut.len(), 2);
    assert!(matches!(cut[0], Action::Send { .. }));
    // Killed during the last expect before the close: the script expected the end.
    assert!(steps_cut_off(&actions, 5).is_empty());
    // After the reconnect's last step, or past the end: nothing left.
    assert!(steps_cut_off(&actions, 8).is_empty());
    assert!(steps_cut_off(&actions, actions.len()).is_empty());
}

#[test]
fn a_server_end_between_expects_names_the_steps_that_never_ran() {
    let actions = script();
    let mut ch = checker();
    ch.server_ended(
        &actions,
        3,
        &place(3, &actions),
        "server closed with 1000",
        Some(1000),
        Instant::now(),
    );
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    let v = &ch.violations[0];
    assert_eq!(v.oracle, OracleKind::Completeness);
    assert_eq!(
        v.expected,
        "the script to go on: 2 more steps (send, expect started thinking+ done)"
    );
    assert_eq!(v.seen, "server closed with 1000 at step 4 of 9 (think)");
    // A scripted connection names the step as its scenario file numbers it.
    let mut ch = checker();
    let scripted = ScriptPlace {
        step: StepPlace::of(&[2, 3]),
        ..place(3, &actions)
    };
    ch.server_ended(
        &actions,
        3,
        &scripted,
        "server closed with 1000",
        Some(1000),
        Instant::now(),
    );
    assert_eq!(
        ch.violations[0].seen,
        "server closed with 1000 at step 2.3 (think; action 4 of 9)"
    );
}

#[test]
fn a_server_end_the_script_expects_or_already_flagged_is_not_flagged_again() {
    let actions = script();
    // The next step is a close: expected.
    let mut ch = checker();
    ch.server_ended(
        &actions,
        5,
        &place(5, &actions),
        "server closed with 1000",
        Some(1000),
        Instant::now(),
    );
    assert!(ch.violations.is_empty());
    // A pending expectation already names the loss: one finding, not two.
    let mut ch = checker();
    ch.expect(five("r1"), None, Instant::now());
    ch.server_ended(
        &actions,
        2,
        &place(2, &actions),
        "connection lost (reset)",
        None,
        Instant::now(),
    );
    assert_eq!(ch.violations.len(), 1);
    assert!(ch.violations[0].seen.contains("connection lost (reset)"));
    // The server said why (an uncorrelated error event) before it closed.
    let mut ch = checker();
    let error = json!({"type": "error", "code": "queue_overflow"});
    ch.on_message(&error, Instant::now());
    ch.server_ended(
        &actions,
        3,
        &place(3, &actions),
        "server closed with 1013",
        Some(1013),
        Instant::now(),
    );
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
}

fn plan_of(pattern: &str, correlate: Option<(&str, &str)>) -> ExpectPlan {
    ExpectPlan {
        pattern: pattern
            .split_whitespace()
            .map(|e| PatternItem {
                event: e.to_string(),
                repeat: Repeat::One,
            })
            .collect(),
        correlate: correlate.map(|(f, v)| (f.to_string(), v.to_string())),
        within: Duration::from_secs(5),
        wait: true,
        absent: false,
        rare: None,
    }
}

fn plain() -> ConnChecker {
    ConnChecker::new(
        Arc::new(OracleSpec::default()),
        who(),
        Instant::now(),
        vec!["/1".into()],
    )
    .with_bodies()
}

/// A tested field the answer lacks: the violation shows what the answer held nearest to
/// it (another request's plain result where an object was wanted), and says nothing more
/// when not even the first segment came.
#[test]
fn a_missing_tested_field_shows_what_came_nearest_to_it() {
    let seen = |answer: Value, path: &str| {
        let mut ch = plain();
        let mut p = plan_of("reply", Some(("/1", "7")));
        p.rare_mut().checks = vec![FieldTest {
            path: path.into(),
            test: Test::Equals(json!("user-1")),
        }];
        let now = Instant::now();
        ch.expect(p, Some((now, now)), now);
        ch.on_message(&answer, now);
        assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
        ch.violations[0].seen.clone()
    };
    let other = json!({"type": "reply", "1": "7", "result": "fast-0"});
    assert_eq!(
        seen(other.clone(), "result.user"),
        "reply with no result.user (result = \"fast-0\")"
    );
    assert_eq!(
        seen(other.clone(), "/result/user/name"),
        "reply with no /result/user/name (/result = \"fast-0\")"
    );
    assert_eq!(seen(other, "data.user"), "reply with no data.user");
}

#[test]
fn a_correlated_answer_failing_a_field_test_is_a_violation_at_once() {
    let mut ch = plain();
    let mut p = plan_of("reply", Some(("/1", "7")));
    p.rare_mut().checks = vec![FieldTest {
        path: "/2/status".into(),
        test: Test::Equals(json!("ok")),
    }];
    let id = ch.expect(
        p.clone(),
        Some((Instant::now(), Instant::now())),
        Instant::now(),
    );
    // Another request's answer is not this one's business.
    ch.on_message(&json!({"type": "reply", "1": "8"}), Instant::now());
    let wrong = json!({"type": "reply"});
    ch.on_message(&wrong, Instant::now());
    assert!(ch.is_pending(id));
    let spec = OracleSpec {
        type_field: "/0".into(),
        ..OracleSpec::default()
    };
    let mut ch = ConnChecker::new(Arc::new(spec), who(), Instant::now(), vec!["/1".into()]);
    let id = ch.expect(p.clone(), None, Instant::now());
    ch.on_message(&json!(["reply", "7", {"status": "error"}]), Instant::now());
    assert!(!ch.is_pending(id));
    assert_eq!(ch.violations.len(), 1);
    assert_eq!(ch.violations[0].expected, "reply with /2/status = \"ok\"");
    assert_eq!(ch.violations[0].seen, "reply with /2/status = \"error\"");
    // The field was there, with another value: an answer that said no.
    assert_eq!(
        ch.violations[0].misread,
        Some(Misread::WrongValue {
            path: "/2/status".into(),
            held: Some("\"error\"".into()),
            wanted: Some("\"ok\"".into()),
            kinds: vec!["reply".into()],
        })
    );
}

/// A test on a field the answer does not carry at all marks the violation as a possible
/// misreading (the verdict weighs it against the run), naming the path and what the answer
/// carried; an expectation met with tests is counted, for the verdict to tell a misnamed
/// path from a server that left the field out.
#[test]
fn a_field_test_on_a_field_the_answer_lacks_may_be_a_misreading() {
    let mut ch = plain();
    let mut p = plan_of("reply", Some(("/1", "7")));
    p.rare_mut().checks = vec![FieldTest {
        path: "statsu".into(),
        test: Test::Equals(json!("ok")),
    }];
    ch.expect(p.clone(), None, Instant::now());
    ch.on_message(
        &json!({"type": "reply", "1": "7", "status": "ok"}),
        Instant::now(),
    );
    assert_eq!(ch.violations.len(), 1);
    assert_eq!(
        ch.violations[0].misread,
        Some(Misread::NoCheckedField {
            path: "statsu".into(),
            carried: vec!["type".into(), "1".into(), "status".into()],
            kinds: vec!["reply".into()],
        })
    );
    assert_eq!(ch.take_counts().checked_met.total(), 0);
    p.rare_mut().checks[0].path = "status".into();
    // Counted by the step of its `expect`.
    let place = crate::model::StepPlace::of(&[4, 2]);
    ch.at_step(place);
    ch.expect(p, None, Instant::now());
    ch.on_message(
        &json!({"type": "reply", "1": "7", "status": "ok"}),
        Instant::now(),
    );
    assert_eq!(ch.violations.len(), 1);
    assert_eq!(ch.take_counts().checked_met.steps(), [(place, 1)]);
}

#[test]
fn an_uncorrelated_expectation_skips_messages_failing_its_tests() {
    let mut ch = plain();
    let mut p = plan_of("event", None);
    p.rare_mut().checks = vec![FieldTest {
        path: "owner".into(),
        test: Test::Equals(json!("{{$me}}")),
    }];
    p.rare_mut().capture = vec![Capture {
        name: "seen_n".into(),
        path: "n".into(),
    }];
    ch.captures.insert("me".into(), json!("user-1"));
    let id = ch.expect(p.clone(), None, Instant::now());
    ch.on_message(
        &json!({"type": "event", "owner": "user-2", "n": 1}),
        Instant::now(),
    );
    assert!(ch.is_pending(id));
    ch.on_message(
        &json!({"type": "event", "owner": "user-1", "n": 2}),
        Instant::now(),
    );
    assert!(!ch.is_pending(id));
    assert!(ch.violations.is_empty());
    assert_eq!(ch.captures.get("seen_n"), Some(&json!(2)));
}

#[test]
fn buffered_answers_are_tested_and_captured_when_the_expectation_comes_later() {
    let mut ch = plain();
    ch.on_message(&json!({"type": "ack", "sid": "s-9"}), Instant::now());
    let mut p = plan_of("ack", None);
    p.rare_mut().capture = vec![Capture {
        name: "sid".into(),
        path: "sid".into(),
    }];
    let id = ch.expect(p.clone(), None, Instant::now());
    assert!(!ch.is_pending(id));
    assert_eq!(ch.captures.get("sid"), Some(&json!("s-9")));
}

#[test]
fn an_absence_is_met_at_its_deadline_and_violated_by_the_forbidden_kind() {
    let mut ch = plain();
    let t0 = Instant::now();
    let mut p = plan_of("error", None);
    p.absent = true;
    p.within = Duration::from_millis(100);
    let quiet = ch.expect(p.clone(), None, t0);
    ch.on_message(&json!({"type": "event"}), t0);
    ch.expire(t0 + Duration::from_millis(100));
    assert!(!ch.is_pending(quiet));
    assert!(ch.violations.is_empty());
    assert_eq!(ch.counts.expectations_met, 1);
    let loud = ch.expect(p.clone(), None, t0);
    ch.on_message(&json!({"type": "error"}), t0);
    assert!(!ch.is_pending(loud));
    assert_eq!(ch.violations.len(), 1);
    assert_eq!(ch.violations[0].expected, "no error within 100ms");
    assert_eq!(ch.violations[0].seen, "error");
}

fn learned_checker() -> ConnChecker {
    let spec = OracleSpec {
        learned: crate::model::LearnedOracles {
            identity: vec!["data.owner".into()],
            sequence: vec!["data.n".into()],
            replies: vec![crate::model::LearnedReply {
                request: "ask".into(),
                events: vec!["done".into(), "tool".into()],
            }],
            ..Default::default()
        },
        ..OracleSpec::default()
    };
    ConnChecker::new(Arc::new(spec), who(), Instant::now(), vec!["run_id".into()])
}

fn only_done(run: &str) -> ExpectPlan {
    ExpectPlan {
        pattern: vec![PatternItem {
            event: "done".into(),
            repeat: Repeat::One,
        }]
        .into(),
        ..five(run)
    }
}

/// An uncorrelated expectation of one `x`.
fn one_x() -> ExpectPlan {
    ExpectPlan {
        pattern: vec![PatternItem {
            event: "x".into(),
            repeat: Repeat::One,
        }]
        .into(),
        correlate: None,
        ..five("r")
    }
}

/// A null sequence field carries no number (Discord's gateway: `"s": null` on its Hello
/// and heartbeat ACKs, numbers on dispatches): skipped by the declared and the learned
/// oracle alike, and the count goes on across it; a string that writes no number there is
/// still no number.
#[test]
fn a_null_sequence_field_carries_no_number() {
    let now = Instant::now();
    let mut declared = checker();
    for seq in [json!(null), json!(1), json!(null), json!(2), json!(3)] {
        declared.on_message(&json!({"type": "x", "seq": seq}), now);
    }
    assert_eq!(declared.violated, 0, "{:?}", declared.violations);
    declared.on_message(&json!({"type": "x", "seq": "four"}), now);
    assert_eq!(declared.violated, 1, "{:?}", declared.violations);
    let mut learned = learned_checker();
    for n in [json!(1), json!(null), json!(2)] {
        learned.expect(one_x(), None, now);
        learned.on_message(
            &json!({"type": "x", "data": {"owner": "user-1", "n": n}}),
            now,
        );
    }
    assert_eq!(learned.violated, 0, "{:?}", learned.violations);
    learned.expect(one_x(), None, now);
    learned.on_message(
        &json!({"type": "x", "data": {"owner": "user-1", "n": 4}}),
        now,
    );
    assert_eq!(learned.violated, 1, "{:?}", learned.violations);
}

/// A sequence number written as a string counts as the number it writes: decimal, or a
/// hexadecimal quantity as Ethereum's JSON-RPC writes block heights (`"0x64"`), for the
/// declared and the learned oracle alike; a skip in it is still a skip.
#[test]
fn a_sequence_number_written_as_text_counts_as_its_number() {
    let now = Instant::now();
    let mut declared = checker();
    for seq in [
        json!("0x63"),
        json!("0x64"),
        json!(101),
        json!("102"),
        json!("0X68"),
    ] {
        declared.on_message(&json!({"type": "x", "seq": seq}), now);
    }
    assert_eq!(declared.violated, 1, "{:?}", declared.violations);
    assert_eq!(declared.violations[0].expected, "seq = 103");
    assert_eq!(declared.violations[0].seen, "seq = \"0X68\" on x");
    for text in ["0x", "0xg1", "-0x1", "1e3", ""] {
        assert_eq!(sequence_number(&json!(text)), None, "{text:?}");
    }
    let mut learned = learned_checker();
    for n in ["0xa", "0xb", "0xd"] {
        learned.expect(one_x(), None, now);
        learned.on_message(
            &json!({"type": "x", "data": {"owner": "user-1", "n": n}}),
            now,
        );
    }
    assert_eq!(learned.violated, 1, "{:?}", learned.violations);
    assert_eq!(learned.violations[0].expected, "data.n = 12");
}

#[test]
fn learned_identity_and_sequence_are_marked_learned() {
    let mut c = learned_checker();
    let now = Instant::now();
    c.expect(one_x(), None, now);
    c.on_message(
        &json!({"type": "x", "data": {"owner": "user-1", "n": 1}}),
        now,
    );
    c.expect(one_x(), None, now);
    c.on_message(
        &json!({"type": "x", "data": {"owner": "user-1", "n": 2}}),
        now,
    );
    assert_eq!(c.violated, 0);
    c.expect(one_x(), None, now);
    c.on_message(
        &json!({"type": "x", "data": {"owner": "user-2", "n": 4}}),
        now,
    );
    assert_eq!(c.violated, 2);
    assert!(c.violations.iter().all(|v| v.learned));
    let kinds: Vec<OracleKind> = c.violations.iter().map(|v| v.oracle).collect();
    assert_eq!(kinds, vec![OracleKind::Ordering, OracleKind::Identity]);
    // A reconnect restarts the learned counter too.
    c.reset_stream();
    c.expect(one_x(), None, now);
    c.on_message(
        &json!({"type": "x", "data": {"owner": "user-1", "n": 1}}),
        now,
    );
    assert_eq!(c.violated, 2);
}

#[test]
fn learned_identity_judges_only_messages_this_connection_claims() {
    let mut c = learned_checker();
    let now = Instant::now();
    // Another member's broadcast nobody here expects: a correct server may send it.
    c.on_message(&json!({"type": "y", "data": {"owner": "user-2"}}), now);
    assert_eq!(c.violated, 0);
    // One that arrives early and is then claimed by this connection's expectation is its
    // own, and carries the wrong subject.
    c.on_message(&json!({"type": "x", "data": {"owner": "user-3"}}), now);
    assert_eq!(c.violated, 0);
    c.expect(one_x(), None, now);
    assert_eq!(c.violated, 1);
    let v = &c.violations[0];
    assert!(v.learned);
    assert_eq!(v.oracle, OracleKind::Identity);
    assert!(v.seen.contains("user-3"), "{}", v.seen);
}

/// An uncorrelated expectation opened after a request went out claims any record of its
/// kinds: in a room or group, another member's broadcast too, which carries that member's
/// subject from a correct server. Calibration saw one connection at a time and cannot
/// have told the two apart, so such a claim's learned identity finding is set aside until
/// the stream ends: judged then, unless records of that kind were left unclaimed (more
/// came than the connection claimed: broadcasts). A correlated answer (this connection's
/// own request's) and a greeting (no request before it) are judged at once.
#[test]
fn learned_identity_sets_aside_what_an_uncorrelated_expectation_after_a_request_claims() {
    let now = Instant::now();
    let other = json!({"type": "x", "run_id": "r", "data": {"owner": "user-2"}});
    // Learned violations after the claim, and after the stream's end.
    let violated = |plan: ExpectPlan, sent: bool, buffered: bool, more: bool| {
        let mut c = learned_checker();
        let sent_at = sent.then_some((now, now));
        if buffered {
            c.on_message(&other, now);
            c.expect(plan, sent_at, now);
        } else {
            c.expect(plan, sent_at, now);
            c.on_message(&other, now);
        }
        if more {
            // Another member's message nobody claims: the kind is a broadcast here.
            c.on_message(&json!({"type": "x", "data": {"owner": "user-3"}}), now);
        }
        let learned = |c: &ConnChecker| c.violations.iter().filter(|v| v.learned).count();
        let at_claim = learned(&c);
        c.settle_held_identity();
        (at_claim, learned(&c))
    };
    let own = || ExpectPlan {
        correlate: Some(("run_id".into(), "r".into())),
        ..one_x()
    };
    for buffered in [false, true] {
        let case = format!("buffered {buffered}");
        // A reply to an uncorrelated request: judged when the stream ends.
        assert_eq!(violated(one_x(), true, buffered, false), (0, 1), "{case}");
        // The kind left unclaimed: a broadcast, not judged.
        assert_eq!(violated(one_x(), true, buffered, true), (0, 0), "{case}");
        assert_eq!(
            violated(one_x(), false, buffered, true),
            (1, 1),
            "greeting, {case}"
        );
        assert_eq!(
            violated(own(), true, buffered, true),
            (1, 1),
            "answer, {case}"
        );
    }
}

/// What an expectation claims as pushes (a subscription's messages after its receipt, a
/// room's broadcasts counted after one post) carries whoever caused them: another
/// member's subject there is no leak, claimed as it came or from the buffer, and nothing
/// is held for the stream's end. The same claim by an answer is judged.
#[test]
fn learned_identity_does_not_judge_what_an_expectation_claims_as_pushes() {
    let now = Instant::now();
    let other = json!({"type": "x", "run_id": "r", "data": {"owner": "user-2"}});
    let learned = |pushed: bool, correlated: bool, buffered: bool| {
        let mut c = learned_checker();
        let mut plan = one_x();
        if correlated {
            plan.correlate = Some(("run_id".into(), "r".into()));
        }
        if pushed {
            plan.rare_mut().pushed = true;
        }
        if buffered {
            c.on_message(&other, now);
            c.expect(plan, Some((now, now)), now);
        } else {
            c.expect(plan, Some((now, now)), now);
            c.on_message(&other, now);
        }
        c.settle_held_identity();
        c.violations.iter().filter(|v| v.learned).count()
    };
    for correlated in [false, true] {
        for buffered in [false, true] {
            let case = format!("correlated {correlated}, buffered {buffered}");
            assert_eq!(learned(true, correlated, buffered), 0, "{case}");
            assert_eq!(learned(false, correlated, buffered), 1, "{case}");
        }
    }
}

/// A correlated expectation that claims pushes (a document's edits on its room, after its
/// own edit's ack) takes one; the next edits on the room are other pushes, no late
/// duplicate of it ("nothing more for a request already answered in full"), while the
/// same record after an answer is.
#[test]
fn a_later_push_on_a_met_pushed_expectations_value_is_no_duplicate() {
    let now = Instant::now();
    // `before`: the pushes came before the expectation opened (buffered), else after.
    let duplicates = |pushed: bool, before: bool| {
        let mut c = checker();
        let mut plan = ExpectPlan {
            correlate: Some(("run_id".into(), "doc1".into())),
            ..one_x()
        };
        if pushed {
            plan.rare_mut().pushed = true;
        }
        let push = json!({"type": "x", "run_id": "doc1", "user_id": "user-1"});
        if !before {
            c.expect(plan.clone(), Some((now, now)), now);
        }
        for _ in 0..3 {
            c.on_message(&push, now);
        }
        if before {
            c.expect(plan, Some((now, now)), now);
        }
        c.violations.len()
    };
    for before in [false, true] {
        assert_eq!(duplicates(true, before), 0, "before {before}");
        assert_eq!(duplicates(false, before), 2, "before {before}");
    }
}

/// A reply without a kind calibration saw every time is counted, never a violation: a
/// correct server may send a kind only sometimes (a tool event when a tool ran).
#[test]
fn a_learned_reply_missing_a_kind_is_counted_not_a_violation() {
    let mut c = learned_checker();
    let now = Instant::now();
    // Complete: tool and done both came before the expectation was met.
    c.on_sent(&json!({"type": "ask", "run_id": "r1"}));
    c.expect(only_done("r1"), None, now);
    c.on_message(&json!({"type": "tool", "run_id": "r1"}), now);
    c.on_message(&json!({"type": "done", "run_id": "r1"}), now);
    assert!(c.counts.learned_replies_short.is_empty());
    // The declared pattern is met, but `tool` never came: counted against the request.
    c.on_sent(&json!({"type": "ask", "run_id": "r2"}));
    c.expect(only_done("r2"), None, now);
    c.on_message(&json!({"type": "done", "run_id": "r2"}), now);
    assert_eq!(c.violated, 0, "{:?}", c.violations);
    assert_eq!(
        c.counts.learned_replies_short,
        [("ask without tool".to_string(), 1)].into()
    );
    // A request of another kind, or one replaced before its expectation ended, is not judged.
    c.on_sent(&json!({"type": "other", "run_id": "r3"}));
    c.expect(only_done("r3"), None, now);
    c.on_message(&json!({"type": "done", "run_id": "r3"}), now);
    c.on_sent(&json!({"type": "ask", "run_id": "r4"}));
    c.expect(only_done("r4"), None, now);
    c.on_sent(&json!({"type": "ask", "run_id": "r5"}));
    c.on_message(&json!({"type": "done", "run_id": "r4"}), now);
    assert_eq!(c.counts.learned_replies_short["ask without tool"], 1);
    assert_eq!(c.violated, 0);
}

#[test]
fn a_calibrating_checker_records_messages_and_reply_spans() {
    let spec = OracleSpec {
        calibrating: true,
        ..OracleSpec::default()
    };
    let mut c = ConnChecker::new(Arc::new(spec), who(), Instant::now(), vec!["run_id".into()]);
    let now = Instant::now();
    c.on_sent(&json!({"type": "ask", "run_id": "r1"}));
    c.expect(only_done("r1"), None, now);
    c.on_message(&json!({"type": "tool", "run_id": "r1"}), now);
    c.on_message(&json!({"type": "done", "run_id": "r1"}), now);
    let obs = c.observed.take().unwrap();
    assert_eq!(obs.messages.len(), 2);
    assert_eq!(
        obs.spans,
        vec![(
            "ask".to_string(),
            vec!["done".to_string(), "tool".to_string()]
        )]
    );
}

#[test]
fn a_forged_token_is_not_judged_by_what_valid_tokens_taught() {
    let mut c = learned_checker().without_learned();
    let now = Instant::now();
    // A lenient server echoes the forged token's empty `sub`: not a learned violation.
    c.on_message(&json!({"type": "x", "data": {"owner": "", "n": 7}}), now);
    c.on_message(&json!({"type": "x", "data": {"owner": "", "n": 3}}), now);
    assert_eq!(c.violated, 0);
}

/// A settled expectation's `seen` text is reused emptied: the next witness names only
/// its own kinds, and a very long kind's room is not kept.
#[test]
fn the_seen_text_is_reused_empty_and_bounded() {
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    let t = Instant::now();
    ch.expect(five("r1"), Some((t, t)), t);
    send_all(
        &mut ch,
        &[
            f.msg("started", "r1"),
            f.msg("thinking", "r1"),
            f.msg("done", "r1"),
        ],
    );
    assert!(ch.spare_seen.is_empty() && ch.spare_seen.capacity() > 0);
    ch.expect(five("r2"), Some((t, t)), t);
    send_all(&mut ch, &[f.msg("started", "r2")]);
    ch.expire(t + Duration::from_secs(6));
    assert_eq!(ch.violations[0].seen, "started");

    // A scenario may name a kind of any length: its room is not kept once settled. (Seen
    // before the event that completes the pattern: that one is not written, the
    // expectation being met at once.)
    let huge = "x".repeat(4 * SPARE_SEEN_BYTES);
    let mut long = five("r3");
    long.pattern = vec![
        PatternItem {
            event: huge.clone(),
            repeat: Repeat::One,
        },
        PatternItem {
            event: "done".into(),
            repeat: Repeat::One,
        },
    ]
    .into();
    ch.expect(long, Some((t, t)), t);
    send_all(&mut ch, &[f.msg(&huge, "r3"), f.msg("done", "r3")]);
    assert_eq!(ch.spare_seen.capacity(), 0, "a big seen text is not kept");

    // An answer of one event is met at once: nothing written, the spare room stays.
    let mut once = five("r4");
    once.pattern = vec![PatternItem {
        event: huge.clone(),
        repeat: Repeat::One,
    }]
    .into();
    ch.expect(once, Some((t, t)), t);
    send_all(&mut ch, &[f.msg(&huge, "r4")]);
    assert!(ch.spare_seen.is_empty() && ch.spare_seen.capacity() <= SPARE_SEEN_BYTES);
}

/// A single-event answer to a request sent when it was meant to: its first event, turn
/// and raw turn are one latency, filed as one sample of the three phases. A sequence of
/// several events, or a request that went out late, keeps its own first-event or raw
/// sample beside the turn.
#[test]
fn equal_latencies_of_one_answer_are_one_sample_of_several_phases() {
    let one = |run: &str| ExpectPlan {
        pattern: std::sync::Arc::from(vec![PatternItem {
            event: "done".into(),
            repeat: Repeat::One,
        }]),
        ..five(run)
    };
    let all = Phases::from(Phase::Turn)
        .with(Phase::FirstEvent)
        .with(Phase::TurnRaw);
    let (mut ch, mut f) = (checker(), Feed { seq: 0 });
    let sent = Instant::now();
    ch.expect(one("a"), Some((sent, sent)), sent);
    ch.on_message(&f.msg("done", "a"), sent + Duration::from_millis(3));
    assert_eq!(ch.samples, vec![(all, Duration::from_millis(3))]);

    // Several events: the first event's latency is its own.
    ch.samples.clear();
    ch.expect(five("b"), Some((sent, sent)), sent);
    ch.on_message(&f.msg("started", "b"), sent + Duration::from_millis(1));
    ch.on_message(&f.msg("thinking", "b"), sent + Duration::from_millis(2));
    ch.on_message(&f.msg("done", "b"), sent + Duration::from_millis(4));
    let turn = Phases::from(Phase::Turn).with(Phase::TurnRaw);
    assert_eq!(
        ch.samples,
        vec![
            (Phase::FirstEvent.into(), Duration::from_millis(1)),
            (turn, Duration::from_millis(4)),
        ]
    );

    // Sent 2 ms after it was meant to: the raw turn is shorter than the turn.
    ch.samples.clear();
    let late = sent + Duration::from_millis(2);
    ch.expect(one("c"), Some((sent, late)), late);
    ch.on_message(&f.msg("done", "c"), sent + Duration::from_millis(5));
    let first = Phases::from(Phase::Turn).with(Phase::FirstEvent);
    assert_eq!(
        ch.samples,
        vec![
            (Phase::TurnRaw.into(), Duration::from_millis(3)),
            (first, Duration::from_millis(5)),
        ]
    );
}

/// A Pong past its deadline is a violation, and when it does come, the violation says it
/// came late (and when), not that none came; its latency is timed all the same. A Pong
/// with another payload is nobody's.
#[test]
fn a_late_pong_is_named_late_in_the_violation_its_deadline_raised() {
    let t = Instant::now();
    let mut ch = checker();
    ch.await_pong(b"p1".to_vec(), Duration::from_millis(500), t);
    assert!(ch.awaiting_pong());
    ch.pong_missed(t + Duration::from_millis(500), false);
    assert!(!ch.awaiting_pong(), "its deadline passed");
    assert_eq!(ch.violations[0].seen, "no pong");
    assert_eq!(ch.violations[0].window_ms, Some(500.0));
    ch.on_pong(b"other", t + Duration::from_millis(700));
    assert_eq!(ch.violations[0].seen, "no pong");
    assert_eq!(ch.violations[0].late_ms, None);
    ch.on_pong(b"p1", t + Duration::from_millis(800));
    assert_eq!(
        ch.violations[0].seen,
        "no pong in time; it came after 800ms"
    );
    // How late, as a late answer to an `expect` says it: slowness, not a loss.
    assert_eq!(ch.violations[0].late_ms, Some(800.0));
    assert_eq!(ch.violations.len(), 1);
    assert!(
        ch.samples
            .iter()
            .any(|s| *s == (Phase::Pong.into(), Duration::from_millis(800))),
        "timed as it came"
    );
}

/// A correlated answer that holds the tested value as another JSON type (`true` where the
/// test writes `"true"`) is a type slip in the scenario, not an answer that said no.
#[test]
fn a_field_test_of_another_json_type_is_a_type_slip() {
    let mut ch = plain();
    let mut p = plan_of("reply", Some(("/1", "7")));
    p.rare_mut().checks = vec![FieldTest {
        path: "ok".into(),
        test: Test::Equals(json!("true")),
    }];
    ch.expect(p, None, Instant::now());
    ch.on_message(
        &json!({"type": "reply", "1": "7", "ok": true}),
        Instant::now(),
    );
    assert_eq!(ch.violations.len(), 1);
    assert_eq!(
        ch.violations[0].misread,
        Some(Misread::WrongType {
            path: "ok".into(),
            wanted: "\"true\"".into(),
            held: "true".into(),
            kinds: vec!["reply".into()],
        })
    );
}

/// An error correlated with a request whose expectation has not opened yet (a pipelined
/// request's, or one the script thinks before expecting) settles that expectation when it
/// opens, as on arrival: an allowed answer, or, when it says an accepted connection is not
/// authenticated, a violation that quotes it.
#[test]
fn an_error_that_comes_before_its_expectation_opens_settles_it() {
    let now = Instant::now();
    let late = now + Duration::from_secs(6);
    let mut ch = checker();
    ch.on_message(
        &json!({"type": "error", "run_id": "r1", "message": "forbidden"}),
        now,
    );
    ch.expect(five("r1"), Some((now, now)), now);
    assert!(!ch.has_pending(), "settled when it opened");
    ch.expire(late);
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    assert_eq!(ch.counts().expectations_errored, 1);
    // Another request's error stays for that one.
    let mut ch = checker();
    ch.on_message(&json!({"type": "error", "run_id": "r2"}), now);
    ch.expect(five("r1"), Some((now, now)), now);
    assert!(ch.has_pending());
    ch.expect(five("r2"), Some((now, now)), now);
    assert_eq!(ch.pending_count(), 1, "r2 settled, r1 waits");
    // A later expectation of the refused request (its result after its ack) is owed
    // nothing: errored at its deadline, not unmet.
    let mut ch = checker();
    ch.expect(five("r4"), Some((now, now)), now);
    ch.on_message(&json!({"type": "error", "run_id": "r4"}), now);
    ch.expect(five("r4"), Some((now, now)), now);
    ch.expire(late);
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    assert_eq!(ch.counts().expectations_errored, 2);
    // After the acceptance, "not authenticated" contradicts it.
    let mut ch = checker();
    ch.authenticated();
    ch.on_message(
        &json!({"type": "error", "run_id": "r3", "message": "not authenticated"}),
        now,
    );
    ch.expect(five("r3"), Some((now, now)), now);
    assert_eq!(ch.violations.len(), 1);
    assert!(
        ch.violations[0].seen.contains("not authenticated"),
        "{}",
        ch.violations[0].seen
    );
}

/// What every message reads of a checker lies in its first six cache lines, before its
/// counts: a field moved below the cold ones costs every message a cache miss at a
/// thousand connections (the struct is `repr(C)`, in the order written).
#[test]
fn what_every_message_reads_comes_first_in_the_checker() {
    use std::mem::offset_of;
    let hot_end = offset_of!(ConnChecker, counts);
    assert!(hot_end <= 6 * 64, "the hot fields take {hot_end} bytes");
    let hot = [
        ("pending", offset_of!(ConnChecker, pending)),
        ("tallies", offset_of!(ConnChecker, tallies)),
        ("spare_seen", offset_of!(ConnChecker, spare_seen)),
        ("recent_done", offset_of!(ConnChecker, recent_done)),
        ("leftovers", offset_of!(ConnChecker, leftovers)),
        ("next_id", offset_of!(ConnChecker, next_id)),
        ("last_request", offset_of!(ConnChecker, last_request)),
        ("buffer", offset_of!(ConnChecker, buffer)),
        ("captures", offset_of!(ConnChecker, captures)),
        (
            "correlate_fields",
            offset_of!(ConnChecker, correlate_fields),
        ),
    ];
    for (name, at) in hot {
        assert!(
            at < hot_end,
            "{name} at {at}, after the counts at {hot_end}"
        );
    }
}

/// The sequence numbers `seqs`, one uncorrelated message each, fed to a checker whose
/// sequence oracle allows gaps (`gaps`) or not: the (expected, seen) of each violation.
fn sequence_findings(gaps: bool, seqs: &[i64]) -> Vec<(String, String)> {
    let spec = Arc::new(OracleSpec {
        sequence: Some("seq".into()),
        sequence_gaps: gaps,
        ..OracleSpec::default()
    });
    let mut ch = ConnChecker::new(spec, who(), Instant::now(), vec!["run_id".into()]);
    let msgs: Vec<Value> = seqs
        .iter()
        .map(|seq| json!({"type": "tick", "seq": seq}))
        .collect();
    send_all(&mut ch, &msgs);
    ch.violations
        .iter()
        .map(|v| (v.expected.clone(), v.seen.clone()))
        .collect()
}

/// `contiguous = false`: a sequence that skips numbers (a server that also counts what
/// it receives) is in order as long as it goes up; a repeat or a step back is still out of
/// order. Contiguous (the default), the first skip is one.
#[test]
fn a_sequence_with_gaps_allowed_is_judged_only_for_going_up() {
    assert_eq!(sequence_findings(true, &[1, 3, 5, 9]), vec![]);
    assert_eq!(
        sequence_findings(true, &[1, 3, 3, 2]),
        vec![
            ("seq > 3".to_string(), "seq = 3 on tick".to_string()),
            ("seq > 3".to_string(), "seq = 2 on tick".to_string()),
        ]
    );
    assert_eq!(
        sequence_findings(false, &[1, 3, 4]),
        vec![("seq = 2".to_string(), "seq = 3 on tick".to_string())]
    );
}

/// While a connection's sequence has read no number, the records it passes over that a
/// misspelled `kinds` or `field` reads as are counted: a numbered kind outside its kinds
/// (the first named), and a record of its kinds without the field (the fields it carried);
/// a `null` at the field is the field, holding no number. Once a number is read, nothing
/// more is counted.
#[test]
fn records_a_sequence_passes_over_are_counted_until_it_reads_a_number() {
    let spec = Arc::new(OracleSpec {
        sequence: Some("seq".into()),
        sequence_kinds: vec!["update".into()],
        ..OracleSpec::default()
    });
    let mut ch = ConnChecker::new(spec, who(), Instant::now(), vec!["run_id".into()]);
    send_all(
        &mut ch,
        &[
            json!({"type": "updates", "seq": 1}),
            json!({"type": "hello"}),
            json!({"type": "update", "n": 1}),
            json!({"type": "update", "seq": null}),
        ],
    );
    let missed = ch.counts().sequence_missed.clone().unwrap_or_default();
    assert_eq!(
        (
            missed.other_kinds,
            missed.other_kind.as_deref(),
            missed.unnumbered
        ),
        (1, Some("updates"), 1)
    );
    assert_eq!(missed.unnumbered_carried, vec!["type", "n"]);
    send_all(
        &mut ch,
        &[
            json!({"type": "update", "seq": 1}),
            json!({"type": "updates", "seq": 2}),
            json!({"type": "update", "n": 2}),
        ],
    );
    let after = ch.counts().sequence_missed.clone().unwrap_or_default();
    assert_eq!((after.other_kinds, after.unnumbered), (1, 1));
    assert_eq!(ch.counts().sequence_numbered, 1);
}

/// Without `kinds`, a record without the sequence's field is one it skips, not one that
/// misses it: nothing is counted as passed over.
#[test]
fn without_kinds_records_without_the_field_are_not_counted_as_missed() {
    let spec = Arc::new(OracleSpec {
        sequence: Some("seq".into()),
        ..OracleSpec::default()
    });
    let mut ch = ConnChecker::new(spec, who(), Instant::now(), vec!["run_id".into()]);
    send_all(
        &mut ch,
        &[json!({"type": "welcome"}), json!({"type": "ack"})],
    );
    assert_eq!(ch.counts().sequence_missed, None);
}

/// `per = "symbol"`: each symbol's numbers are a sequence of their own, interleaved on one
/// connection; a skip in one names its symbol. `kinds = ["update"]`: a heartbeat that
/// repeats the last number is not judged; without `kinds` it is a repeat, named by its
/// kind. A repro made before the scope was said shrinks by the same finding.
#[test]
fn a_sequence_per_symbol_and_kind_is_judged_within_its_scope() {
    let scoped = |per: bool, kinds: &[&str], feed: &[(&str, &str, i64)]| {
        let spec = Arc::new(OracleSpec {
            sequence: Some("seq".into()),
            sequence_per: per.then(|| "symbol".into()),
            sequence_kinds: kinds.iter().map(|k| k.to_string()).collect(),
            ..OracleSpec::default()
        });
        let mut ch = ConnChecker::new(spec, who(), Instant::now(), vec!["run_id".into()]);
        let msgs: Vec<Value> = feed
            .iter()
            .map(|(kind, symbol, seq)| json!({"type": kind, "symbol": symbol, "seq": seq}))
            .collect();
        send_all(&mut ch, &msgs);
        ch.violations
            .iter()
            .map(|v| (v.expected.clone(), v.seen.clone()))
            .collect::<Vec<_>>()
    };
    let interleaved = [
        ("update", "BTC", 1),
        ("update", "ETH", 100),
        ("update", "BTC", 2),
        ("update", "ETH", 101),
        ("update", "BTC", 3),
    ];
    assert_eq!(scoped(true, &[], &interleaved), vec![]);
    assert_eq!(
        scoped(false, &[], &interleaved).len(),
        4,
        "one sequence: every switch"
    );
    let skipped = [
        ("update", "BTC", 1),
        ("update", "ETH", 100),
        ("update", "ETH", 102),
    ];
    assert_eq!(
        scoped(true, &[], &skipped),
        vec![(
            "seq = 101 (symbol = ETH)".to_string(),
            "seq = 102 on update".to_string()
        )]
    );
    let heartbeat = [("update", "BTC", 7), ("hb", "BTC", 7), ("update", "BTC", 8)];
    assert_eq!(scoped(true, &["update"], &heartbeat), vec![]);
    // A record without the `per` field is in the sequence of no value, said so.
    let spec = Arc::new(OracleSpec {
        sequence: Some("seq".into()),
        sequence_per: Some("symbol".into()),
        ..OracleSpec::default()
    });
    let mut ch = ConnChecker::new(spec, who(), Instant::now(), vec!["run_id".into()]);
    send_all(
        &mut ch,
        &[
            json!({"type": "hb", "seq": 1}),
            json!({"type": "hb", "seq": 3}),
        ],
    );
    assert_eq!(ch.violations[0].expected, "seq = 2 (no symbol)");
    // Counted for the verdict: numbered, but none in a sequence of its own.
    assert_eq!(
        (ch.counts.sequence_numbered, ch.counts.sequence_scoped),
        (2, 0)
    );
    assert_eq!(
        scoped(false, &[], &heartbeat)[0],
        ("seq = 8".to_string(), "seq = 7 on hb".to_string())
    );
}

/// Answers that came before their `expect` opened (requests pipelined, then awaited): a
/// second copy of one, buffered behind the copy that met it, is more for a request
/// already answered in full, as it is when it comes after; another request's answer
/// beside it is that request's, and meets it when its `expect` opens.
#[test]
fn a_duplicate_buffered_before_its_expect_opened_is_found() {
    let now = Instant::now();
    let one = |run: &str| {
        let mut p = five(run);
        p.pattern = vec![PatternItem {
            event: "done".into(),
            repeat: Repeat::One,
        }]
        .into();
        p
    };
    let mut ch = checker();
    for run in ["r1", "r2", "r1"] {
        ch.on_message(&json!({"type": "done", "run_id": run}), now);
    }
    ch.expect(one("r1"), Some((now, now)), now);
    ch.expect(one("r2"), Some((now, now)), now);
    assert_eq!(late_duplicates(&ch, ANSWERED_IN_FULL), ["done"]);
    assert_eq!(ch.counts().expectations_met, 2);
    assert!(!ch.has_pending());
}

/// A correlated `expect_none` judges its request's records that came before it opened: an
/// error that already refused the `expect` before it (the request's error came first), or
/// one buffered while the script paused, is the forbidden kind all the same. One of an
/// earlier request with the same correlation value, which came before this request went
/// out, is not this request's.
#[test]
fn a_correlated_absence_judges_what_its_request_got_before_it_opened() {
    let error_then_absence = |before_send: bool| {
        let mut ch = checker();
        let t0 = Instant::now();
        let sent = t0 + Duration::from_millis(10);
        if before_send {
            // An earlier request with the same value, refused before this one went out.
            ch.expect(plan_of("ok", Some(("run_id", "r1"))), Some((t0, t0)), t0);
            ch.on_message(&json!({"type": "error", "run_id": "r1"}), t0);
        }
        let ok = ch.expect(
            plan_of("ok", Some(("run_id", "r1"))),
            Some((sent, sent)),
            sent,
        );
        if !before_send {
            ch.on_message(&json!({"type": "error", "run_id": "r1"}), sent);
            assert!(!ch.is_pending(ok), "the error settles the expect");
        }
        let mut none = plan_of("error", Some(("run_id", "r1")));
        none.absent = true;
        let absence = ch.expect(none, Some((sent, sent)), sent);
        (ch, absence)
    };
    let (ch, absence) = error_then_absence(false);
    assert!(!ch.is_pending(absence));
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    assert_eq!(ch.violations[0].expected, "no error within 5s");
    assert!(
        ch.violations[0].seen.starts_with("error"),
        "{}",
        ch.violations[0].seen
    );
    let (ch, absence) = error_then_absence(true);
    assert!(
        ch.is_pending(absence),
        "an earlier request's error is not this one's"
    );
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);

    // Buffered while no expectation of its request was open (the script thought first).
    let mut ch = checker();
    let t0 = Instant::now();
    ch.on_message(&json!({"type": "error", "run_id": "r2"}), t0);
    let mut none = plan_of("error", Some(("run_id", "r2")));
    none.absent = true;
    let absence = ch.expect(none, Some((t0, t0)), t0);
    assert!(!ch.is_pending(absence));
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    // A forbidden kind that is no error event, come for the request while the `expect`
    // before the absence waited (a stray of that expectation's): its request's all the
    // same.
    let mut ch = checker();
    let ok = ch.expect(plan_of("ok", Some(("run_id", "r3"))), Some((t0, t0)), t0);
    ch.on_message(&json!({"type": "rpcerror", "run_id": "r3"}), t0);
    ch.on_message(&json!({"type": "ok", "run_id": "r3"}), t0);
    assert!(!ch.is_pending(ok));
    let mut none = plan_of("rpcerror", Some(("run_id", "r3")));
    none.absent = true;
    let absence = ch.expect(none, Some((t0, t0)), t0);
    assert!(!ch.is_pending(absence));
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    assert!(
        ch.violations[0]
            .seen
            .starts_with("rpcerror (before this expect_none opened"),
        "{}",
        ch.violations[0].seen
    );
    // Uncorrelated, an absence still counts from its opening.
    let mut ch = checker();
    ch.on_message(&json!({"type": "error"}), t0);
    let mut none = plan_of("error", None);
    none.absent = true;
    let absence = ch.expect(none, Some((t0, t0)), t0);
    assert!(ch.is_pending(absence));
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
}

/// An expectation that tests a value an earlier expectation was to capture, when that
/// earlier one's request was refused with the error event (nothing captured): its request
/// depended on the refused one, so it is settled as refused too, not charged as unmet. A
/// capture missing on a connection where nothing was refused stays the script's to meet.
#[test]
fn an_expectation_that_needs_a_capture_a_refused_request_never_made_is_refused_too() {
    let now = Instant::now();
    let dependent = || {
        let mut p = plan_of("notification", None);
        p.rare_mut().checks = vec![FieldTest {
            path: "sub".into(),
            test: Test::Equals(json!("{{$sid}}")),
        }];
        p
    };
    let mut ch = plain();
    let mut subscribe = plan_of("result", Some(("/1", "7")));
    subscribe.rare_mut().capture = vec![Capture {
        name: "sid".into(),
        path: "result".into(),
    }];
    ch.expect(subscribe, Some((now, now)), now);
    ch.on_message(&json!({"type": "error", "/1": "7"}), now);
    assert_eq!(ch.counts.expectations_errored, 1, "{:?}", ch.violations);
    let id = ch.expect(dependent(), Some((now, now)), now);
    assert!(!ch.is_pending(id));
    // Not an error answer of its own (the error rate counts the one refused request).
    assert_eq!(ch.counts.expectations_errored, 1);
    assert_eq!(ch.counts.expectations_cut, 1);
    ch.expire(now + Duration::from_secs(6));
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);

    let mut nothing_refused = plain();
    let id = nothing_refused.expect(dependent(), Some((now, now)), now);
    assert!(nothing_refused.is_pending(id));
}

/// A request the server refused with its error event owes nothing more, to any of its
/// expectations: one correlated on another field of the same send (a publish's push, read
/// by the message's own id where the refusal names the request's) is settled as refused
/// at its deadline, not charged. Another request's expectation still is.
#[test]
fn a_refused_requests_expectation_on_another_field_is_owed_nothing() {
    let t0 = Instant::now();
    let run = |same_request: bool| {
        let mut ch = checker();
        let sent = Some((t0, t0));
        ch.expect(plan_of("published", Some(("run_id", "7"))), sent, t0);
        let other = if same_request {
            sent
        } else {
            let later = t0 + Duration::from_millis(1);
            Some((later, later))
        };
        ch.expect(plan_of("pub", Some(("n", "m-7"))), other, t0);
        ch.on_message(&json!({"type": "error", "run_id": "7"}), t0);
        ch.expire(t0 + Duration::from_secs(6));
        (ch.violations.len(), ch.counts.expectations_errored)
    };
    assert_eq!(run(true), (0, 2));
    assert_eq!(run(false), (1, 1));
}

/// A finished expectation with `where` tests, correlated on a value its connection's other
/// requests share (a channel's identifier): a later record of its kind that fails its
/// tests (the next request's broadcast, another nonce) is not its answer. Met, that record
/// is no duplicate; unmet, it is no late answer that would excuse the loss as slowness.
#[test]
fn a_record_failing_a_finished_expectations_where_is_not_its_answer() {
    let t0 = Instant::now();
    let spoken = |nonce: &str| {
        let mut p = plan_of("spoken", Some(("channel", "room-1")));
        p.rare_mut().checks = vec![FieldTest {
            path: "nonce".into(),
            test: Test::Equals(json!(nonce)),
        }];
        p
    };
    let record = |nonce: &str| json!({"type": "spoken", "channel": "room-1", "nonce": nonce});
    let plain = || {
        let spec = Arc::new(OracleSpec::default());
        ConnChecker::new(spec, who(), Instant::now(), vec!["channel".into()]).with_bodies()
    };
    // Met, then the next request's broadcast on the channel.
    let mut ch = plain();
    let met = ch.expect(spoken("n0"), Some((t0, t0)), t0);
    ch.on_message(&record("n0"), t0);
    assert!(!ch.is_pending(met));
    ch.on_message(&record("m0"), t0);
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    // Unmet: the first request's answer never came; the next one's is no late answer.
    let mut ch = plain();
    ch.expect(spoken("n0"), Some((t0, t0)), t0);
    ch.expire(t0 + Duration::from_secs(6));
    ch.on_message(&record("m0"), t0 + Duration::from_secs(7));
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    assert!(ch.violations[0].late_ms.is_none(), "{:?}", ch.violations[0]);
}

/// The same finished expectation with `where` tests, correlated on a value drawn for its
/// request alone (`{{run}}` in the send, [`ExpectRare::fresh`]): a later record with the
/// value is still its own. Met, a second copy that passes the tests is a duplicate;
/// unmet, the answer that comes after the deadline is a late answer (slowness), not a loss.
#[test]
fn a_record_on_a_fresh_value_after_a_where_tested_expectation_is_still_its_own() {
    let t0 = Instant::now();
    let ack = |fresh: bool| {
        let mut p = plan_of("order_ack", Some(("req_id", "o-3-1")));
        let rare = p.rare_mut();
        rare.checks = vec![FieldTest {
            path: "status".into(),
            test: Test::Equals(json!("accepted")),
        }];
        rare.fresh = fresh;
        p
    };
    let record = json!({"type": "order_ack", "req_id": "o-3-1", "status": "accepted"});
    let plain = || {
        let spec = Arc::new(OracleSpec::default());
        ConnChecker::new(spec, who(), Instant::now(), vec!["req_id".into()]).with_bodies()
    };
    // Met, then the same answer again: a duplicate, fresh; nothing, on a shared value.
    for (fresh, duplicates) in [(true, 1), (false, 0)] {
        let mut ch = plain();
        let met = ch.expect(ack(fresh), Some((t0, t0)), t0);
        ch.on_message(&record, t0);
        assert!(!ch.is_pending(met));
        ch.on_message(&record, t0);
        let found: Vec<_> = ch
            .violations
            .iter()
            .filter(|v| v.expected.contains(ANSWERED_IN_FULL))
            .collect();
        assert_eq!(
            found.len(),
            duplicates,
            "fresh {fresh}: {:?}",
            ch.violations
        );
    }
    // Unmet by its deadline, then its answer: late, fresh; a loss, on a shared value.
    for (fresh, late) in [(true, Some(7_000.0)), (false, None)] {
        let mut ch = plain();
        ch.expect(ack(fresh), Some((t0, t0)), t0);
        ch.expire(t0 + Duration::from_secs(6));
        ch.on_message(&record, t0 + Duration::from_secs(7));
        assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
        assert_eq!(
            ch.violations[0].late_ms, late,
            "fresh {fresh}: {:?}",
            ch.violations[0]
        );
    }
}

/// A record on a fresh value that comes after its expectation's deadline and fails its
/// `where` test is no late answer (slowness): the request was answered wrongly. Its
/// violation stays a loss, says what came, and reads as the wrong value; it is counted as
/// arrived, and a right record after it is not taken for the late answer either.
#[test]
fn a_late_record_failing_its_where_test_is_no_late_answer() {
    let t0 = Instant::now();
    let mut p = plan_of("order_ack", Some(("req_id", "o-3-1")));
    let rare = p.rare_mut();
    rare.checks = vec![FieldTest {
        path: "status".into(),
        test: Test::Equals(json!("accepted")),
    }];
    rare.fresh = true;
    let spec = Arc::new(OracleSpec::default());
    let mut ch = ConnChecker::new(spec, who(), t0, vec!["req_id".into()]).with_bodies();
    ch.expect(p, Some((t0, t0)), t0);
    ch.expire(t0 + Duration::from_secs(6));
    let wrong = json!({"type": "order_ack", "req_id": "o-3-1", "status": "rejected"});
    ch.on_message(&wrong, t0 + Duration::from_secs(7));
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    let v = &ch.violations[0];
    assert_eq!(v.late_ms, None, "{v:?}");
    assert!(
        v.seen
            .contains("then order_ack with status = \"rejected\" came for it after 7000 ms"),
        "{}",
        v.seen
    );
    assert!(
        matches!(&v.misread, Some(Misread::WrongValue { path, .. }) if path == "status"),
        "{v:?}"
    );
    let arrived = ch.counts().events.get("order_ack").map(|t| t.arrived);
    assert_eq!(arrived, Some(1), "{:?}", ch.counts().events);
}

/// A notification that passes a `where` test on a captured subscription id, come before
/// the answer that gave the id (buffered while the subscribe's `expect` waited), is an
/// ordering violation: the server used the id before it announced it. One come after the
/// answer is in order.
#[test]
fn a_record_carrying_a_captured_value_before_the_answer_that_gave_it_is_out_of_order() {
    let t0 = Instant::now();
    let run = |notified_at: Duration| {
        let mut ch = id_checker(t0).with_bodies();
        let mut subscribe = plan_of("result", Some(("id", "1")));
        subscribe.rare_mut().capture = vec![Capture {
            name: "sid".into(),
            path: "result".into(),
        }];
        ch.expect(subscribe, Some((t0, t0)), t0);
        let result_at = t0 + Duration::from_millis(20);
        let notification = json!({"type": "notification", "sub": "0xab"});
        if notified_at < Duration::from_millis(20) {
            ch.on_message(&notification, t0 + notified_at);
        }
        ch.on_message(
            &json!({"type": "result", "id": "1", "result": "0xab"}),
            result_at,
        );
        if notified_at >= Duration::from_millis(20) {
            ch.on_message(&notification, t0 + notified_at);
        }
        let mut listen = plan_of("notification", None);
        listen.rare_mut().checks = vec![FieldTest {
            path: "sub".into(),
            test: Test::Equals(json!("{{$sid}}")),
        }];
        let at = t0 + Duration::from_millis(40);
        let id = ch.expect(listen, Some((t0, t0)), at);
        assert!(!ch.is_pending(id), "the notification meets it either way");
        ch.violations
    };
    let early = run(Duration::from_millis(5));
    assert_eq!(early.len(), 1, "{early:?}");
    assert_eq!(early[0].oracle, OracleKind::Ordering);
    assert_eq!(
        early[0].expected,
        "notification only after the answer that gave {{$sid}}"
    );
    assert_eq!(
        early[0].seen,
        "notification carrying it 15.0 ms before that answer"
    );
    assert!(run(Duration::from_millis(30)).is_empty());
}

/// A record after a request answered in full, where the script's `expect_none` for that
/// request and kind waits: one finding, the absence's, not a duplicate besides it (each
/// stray `next` after `complete` counted twice, "completeness 60" for 30 frames).
#[test]
fn a_stray_after_a_full_answer_that_an_absence_waits_for_is_one_finding() {
    let t0 = Instant::now();
    let mut ch = id_checker(t0);
    let mut stream = plan_of("next complete", Some(("id", "n-1")));
    stream.pattern = vec![
        PatternItem {
            event: "next".into(),
            repeat: Repeat::OneOrMore,
        },
        PatternItem {
            event: "complete".into(),
            repeat: Repeat::One,
        },
    ]
    .into();
    ch.expect(stream, Some((t0, t0)), t0);
    ch.on_message(&json!({"type": "next", "id": "n-1"}), t0);
    ch.on_message(&json!({"type": "complete", "id": "n-1"}), t0);
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
    assert_eq!(ch.counts.expectations_met, 1);
    let mut none = plan_of("next", Some(("id", "n-1")));
    none.absent = true;
    none.within = Duration::from_millis(100);
    let t1 = t0 + Duration::from_millis(5);
    ch.expect(none, Some((t0, t0)), t1);
    ch.on_message(
        &json!({"type": "next", "id": "n-1"}),
        t1 + Duration::from_millis(5),
    );
    assert_eq!(ch.violations.len(), 1, "{:?}", ch.violations);
    assert_eq!(ch.violations[0].expected, "no next within 100ms");
}

/// A server that gives every subscription the same id (a topic's name) announced it with
/// the first: an event of the previous subscription, buffered before the next result gave
/// the same id again, is no event ahead of its announcement.
#[test]
fn a_captured_value_given_again_counts_from_its_first_announcement() {
    let t0 = Instant::now();
    let mut ch = id_checker(t0).with_bodies();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let subscribe = |id: &str| {
        let mut p = plan_of("result", Some(("id", id)));
        p.rare_mut().capture = vec![Capture {
            name: "sid".into(),
            path: "result".into(),
        }];
        p
    };
    let listen = || {
        let mut p = plan_of("event", None);
        p.rare_mut().checks = vec![FieldTest {
            path: "sid".into(),
            test: Test::Equals(json!("{{$sid}}")),
        }];
        p
    };
    ch.expect(subscribe("1"), Some((t0, t0)), t0);
    ch.on_message(
        &json!({"type": "result", "id": "1", "result": "topic"}),
        ms(5),
    );
    ch.expect(listen(), Some((t0, t0)), ms(6));
    ch.on_message(&json!({"type": "event", "sid": "topic"}), ms(7));
    // The first subscription's second event comes while the second subscribe waits.
    ch.expect(subscribe("2"), Some((ms(8), ms(8))), ms(8));
    ch.on_message(&json!({"type": "event", "sid": "topic"}), ms(9));
    ch.on_message(
        &json!({"type": "result", "id": "2", "result": "topic"}),
        ms(10),
    );
    ch.expect(listen(), Some((ms(8), ms(8))), ms(11));
    assert!(ch.violations.is_empty(), "{:?}", ch.violations);
}

/// The `per` field counts as the server's wherever it appears, on kinds the sequence
/// leaves out too (`update` records carry the symbol, the numbered `status` ones do not):
/// the verdict reads no misspelled `per` into such a run.
#[test]
fn a_per_field_on_kinds_outside_the_sequence_still_counts_as_carried() {
    let spec = Arc::new(OracleSpec {
        sequence: Some("seq".into()),
        sequence_per: Some("symbol".into()),
        sequence_kinds: vec!["status".into()],
        ..OracleSpec::default()
    });
    let mut ch = ConnChecker::new(spec, who(), Instant::now(), vec!["run_id".into()]);
    send_all(
        &mut ch,
        &[
            json!({"type": "update", "symbol": "BTC", "px": 1}),
            json!({"type": "status", "seq": 1}),
        ],
    );
    assert_eq!(
        (ch.counts.sequence_numbered, ch.counts.sequence_scoped),
        (1, 1)
    );
}

/// A checker with the default oracles whose expectations correlate on `id`, started at
/// `t0`.
fn id_checker(t0: Instant) -> ConnChecker {
    ConnChecker::new(
        Arc::new(OracleSpec::default()),
        who(),
        t0,
        vec!["id".into()],
    )
}
