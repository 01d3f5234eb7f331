#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Shipped scenarios against the in-process reference server, wss end to end, result files,
//! the hard stop, and cancellation with partial results.

mod common;

use common::{chat_scenario, run, scenario, spawn_reference, TEST_BOUND};
use stampede::metrics::Histograms;
use stampede::model::Phase;
use stampede::model::Plan;
use stampede::reference::TlsSetup;
use stampede::results::Summary;
use stampede::run::{RunOptions, RunOutcome};
use stampede::swarm::TlsOptions;
use std::path::Path;
use tokio_util::sync::CancellationToken;

fn shipped(name: &str) -> stampede::model::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    stampede::scenario::load_file(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_path_runs_clean_against_the_embedded_server() {
    let outcome = run(&shipped("golden-path.toml"), None, None).await;
    let s = &outcome.results.summary;
    assert!(s.embedded_target);
    assert_eq!(s.violations.total, 0, "{:?}", s.violations.first);
    assert_eq!((s.counters.attempted, s.counters.accepted), (200, 200));
    assert_eq!(s.counters.messages_sent, 600);
    for (event, rate) in &s.events {
        assert_eq!(rate.rate, 1.0, "{event}: {rate:?}");
    }
    assert_eq!(s.events["agent_completed"].arrived, 600);
    for phase in [
        "tcp_connect",
        "upgrade",
        "first_frame",
        "first_event",
        "turn",
    ] {
        assert!(s.phases[phase].count > 0, "{phase}");
    }
    assert_eq!(stampede::cli::error::of_run(&outcome.results.summary), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collide_barrier_reports_its_release_and_upgrades_count_from_it() {
    // Eight connections dial at once and hold their requests' last bytes until the
    // barrier fires, 400 ms in: every one is released, and the upgrade latency is from the
    // release, not from the dial (the wait at the barrier is not the server's).
    let s = scenario(
        "collide.toml",
        r#"
name = "collide"
duration = "10s"
[oracles]
learn = false
[[group]]
name = "racers"
users = 8
arrival = { collide = "400ms" }
steps = [
  { expect = "connection_established", within = "5s" },
  { close = 1000 },
]
"#,
    );
    let outcome = run(&s, None, None).await;
    let summary = &outcome.results.summary;
    assert_eq!(summary.counters.accepted, 8, "{:?}", summary.counters);
    let barrier = summary
        .barriers
        .iter()
        .find(|b| b.rendezvous.is_none())
        .expect("the collide barrier's line");
    assert_eq!(
        (barrier.connections, barrier.released),
        (8, 8),
        "{barrier:?}"
    );
    assert!(barrier.fired_ms >= 300.0, "{barrier:?}");
    let upgrade = &summary.phases["upgrade"];
    assert_eq!(upgrade.count, 8);
    assert!(
        upgrade.max_ms < 300.0,
        "the wait at the barrier was counted as upgrade time: {upgrade:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_connect_runs_clean() {
    let outcome = run(&shipped("burst-connect.toml"), None, None).await;
    let s = &outcome.results.summary;
    assert_eq!(s.violations.total, 0, "{:?}", s.violations.first);
    assert_eq!((s.counters.attempted, s.counters.accepted), (500, 500));
    assert_eq!(s.events["agent_completed"].arrived, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_end_to_end_with_a_self_signed_certificate() {
    let server = spawn_reference(Some(TlsSetup::SelfSigned)).await;
    assert!(server.url().starts_with("wss://"), "{}", server.url());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, server.ca_pem().unwrap()).unwrap();
    let s = scenario("wss.toml", &chat_scenario("wss", 5, 2));

    let trusted = RunOptions {
        target: Some(server.url()),
        tls: TlsOptions {
            ca_file: Some(ca),
            insecure: false,
        },
        ..Default::default()
    };
    let outcome = bounded(stampede::run::run(&s, &trusted, CancellationToken::new())).await;
    let summary = &outcome.results.summary;
    assert_eq!(
        summary.violations.total, 0,
        "{:?}",
        summary.violations.first
    );
    assert_eq!(summary.counters.accepted, 5);
    assert_eq!(summary.phases["tls"].count, 5);

    // Without the CA the handshake must fail as a TLS error, counted, not crash.
    let untrusted = RunOptions {
        target: Some(server.url()),
        ..Default::default()
    };
    let outcome = bounded(stampede::run::run(&s, &untrusted, CancellationToken::new())).await;
    let c = &outcome.results.summary.counters;
    assert_eq!((c.accepted, c.failed), (0, 5));
    assert_eq!(
        c.refused_by
            .get(&stampede::model::Cause::parse("tls_error")),
        Some(&5),
        "{:?}",
        c.refused_by
    );
    // And says why: the certificate the client does not trust.
    let answers = &outcome.results.summary.answers;
    assert!(
        answers
            .iter()
            .any(|a| a.cause == stampede::model::Cause::Tls
                && a.detail.starts_with("the TLS handshake failed: ")
                && a.detail.contains("certificate")),
        "{answers:?}"
    );

    let insecure = RunOptions {
        tls: TlsOptions {
            ca_file: None,
            insecure: true,
        },
        ..untrusted
    };
    let outcome = bounded(stampede::run::run(&s, &insecure, CancellationToken::new())).await;
    assert_eq!(outcome.results.summary.counters.accepted, 5);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_files_are_written_and_read_back_losslessly() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario("files.toml", &chat_scenario("files", 4, 2));
    let outcome = run(&s, None, Some(dir.path())).await;
    let out = outcome.dir.clone().unwrap();
    assert!(out.starts_with(dir.path().join("files")));

    let summary: Summary =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary, outcome.results.summary);
    assert_eq!(summary.scenario_hash, s.hash);

    let hist: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("histograms.json")).unwrap()).unwrap();
    let phases = serde_json::from_value(hist["phases"].clone()).unwrap();
    let back = Histograms::decode(&phases).unwrap();
    assert_eq!(back.get(Phase::Turn).len(), summary.phases["turn"].count);
    assert_eq!(back.get(Phase::Turn).len(), 8);

    let mut plan: Plan =
        serde_json::from_slice(&std::fs::read(out.join("plan.json")).unwrap()).unwrap();
    // The scenario's literal secret is written as where it came from, never its value.
    let not_stored = stampede::model::SecretSource::Literal {
        value: stampede::model::SecretText::NotStored,
    };
    assert_eq!(plan.auth.secret, not_stored);
    assert_eq!(plan.hash(), outcome.plan.hash());
    plan.auth.secret = outcome.plan.auth.secret.clone();
    assert_eq!(&plan, outcome.plan.as_ref());
    let no_tmp = std::fs::read_dir(&out)
        .unwrap()
        .all(|e| !e.unwrap().path().to_string_lossy().ends_with(".tmp"));
    assert!(no_tmp, "temporary files left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duration_is_a_hard_stop() {
    let text = chat_scenario("stop", 3, 1)
        .replace("duration = \"30s\"", "duration = \"300ms\"")
        .replace("{ think = \"fixed(5ms)\" }", "{ think = \"fixed(20s)\" }");
    let outcome = run(&scenario("stop.toml", &text), None, None).await;
    let s = &outcome.results.summary;
    assert_eq!(s.stopped.name(), "duration");
    assert!(s.elapsed_ms < 5_000.0, "took {}ms", s.elapsed_ms);
    assert_eq!(s.violations.total, 0, "cut-off work is not a violation");
    assert_eq!(
        s.counters
            .ended_by
            .get(&stampede::model::Cause::parse("interrupted")),
        Some(&3),
        "{:?}",
        s.counters.ended_by
    );
}

/// Two runs of one plan at once (two CI jobs of one scenario and seed) against a server
/// that allows one session per token: each presents `jti`s of its own, so the second is
/// served as the first is, never refused as a token already in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_of_one_plan_at_once_present_tokens_of_their_own() {
    let server = spawn_reference(None).await;
    let text = chat_scenario("twice", 6, 1)
        .replace("{ think = \"fixed(5ms)\" }", "{ think = \"fixed(60s)\" }");
    let s = scenario("twice.toml", &text);
    let opts = RunOptions {
        target: Some(server.url()),
        ..Default::default()
    };
    let start = |cancel: &CancellationToken| {
        let (s, opts, cancel) = (s.clone(), opts.clone(), cancel.clone());
        tokio::spawn(async move { stampede::run::run(&s, &opts, cancel).await })
    };
    let (cancel_a, cancel_b) = (CancellationToken::new(), CancellationToken::new());
    let first = start(&cancel_a);
    tokio::time::timeout(TEST_BOUND, server.wait_for(|st| st.runs_started >= 6))
        .await
        .unwrap();
    // The first run's six sessions are live (thinking): the second run's must be served too.
    let mut second = start(&cancel_b);
    let both_served = server.wait_for(|st| st.runs_started >= 12);
    let ended_early = tokio::select! {
        _ = both_served => None,
        // Refused as tokens in use, it ends by itself: the assertions below say how.
        ended = &mut second => Some(ended),
        _ = tokio::time::sleep(TEST_BOUND) => None,
    };
    cancel_a.cancel();
    cancel_b.cancel();
    let outcome =
        |ended: Result<Result<RunOutcome, _>, tokio::task::JoinError>| ended.unwrap().unwrap();
    let a = outcome(tokio::time::timeout(TEST_BOUND, first).await.unwrap());
    let b = match ended_early {
        Some(ended) => outcome(ended),
        None => outcome(tokio::time::timeout(TEST_BOUND, second).await.unwrap()),
    };
    for (name, run) in [("first", &a), ("second", &b)] {
        let s = &run.results.summary;
        assert_eq!(s.counters.accepted, 6, "{name}: {:?}", s.counters);
        assert_eq!(s.violations.total, 0, "{name}: {:?}", s.violations.first);
    }
    let jtis = |run: &RunOutcome| -> Vec<String> {
        run.plan.tokens.iter().map(|t| t.jti.clone()).collect()
    };
    assert!(jtis(&a).iter().all(|j| !jtis(&b).contains(j)));
    assert_eq!(a.results.summary.plan_hash, b.results.summary.plan_hash);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_cleanly_and_still_writes_partial_results() {
    let server = spawn_reference(None).await;
    let text = chat_scenario("cancel", 6, 1)
        .replace("{ think = \"fixed(5ms)\" }", "{ think = \"fixed(60s)\" }");
    let s = scenario("cancel.toml", &text);
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        target: Some(server.url()),
        out: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (s, opts, cancel) = (s.clone(), opts.clone(), cancel.clone());
        async move { stampede::run::run(&s, &opts, cancel).await }
    });
    // Cancel once the server has every request: no sleeping for readiness.
    tokio::time::timeout(TEST_BOUND, server.wait_for(|st| st.runs_started >= 6))
        .await
        .unwrap();
    cancel.cancel();
    let outcome = tokio::time::timeout(TEST_BOUND, run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let summary = &outcome.results.summary;
    assert_eq!(summary.stopped.name(), "interrupted");
    assert_eq!(stampede::cli::error::of_run(&outcome.results.summary), 130);
    assert_eq!(summary.counters.accepted, 6);
    assert_eq!(
        summary.counters.messages_sent, 6,
        "work done before Ctrl-C is kept"
    );
    assert_eq!(
        summary
            .counters
            .ended_by
            .get(&stampede::model::Cause::parse("interrupted")),
        Some(&6),
        "{:?}",
        summary.counters.ended_by
    );
    assert_eq!(
        summary.violations.total, 0,
        "interrupted work is not a violation"
    );
    assert!(outcome.dir.unwrap().join("summary.json").exists());
    server.shutdown().await;
}

/// Ctrl-C while most connections still wait for their start: the progress display's
/// `done` counts the connections that dialled and ended, not those the interrupt kept
/// from starting, so it never says more was done than the summary's `attempted`; and the
/// one it stopped mid-script is counted as stopped, not done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_ctrl_c_the_progress_counts_done_only_what_was_attempted() {
    let server = spawn_reference(None).await;
    // Three connections, 9.7 s apart: the first runs (and thinks) while the others wait.
    let text = chat_scenario("cut-start", 3, 1)
        .replace("{ ramp = \"200ms\" }", "{ ramp = \"29s\" }")
        .replace("{ think = \"fixed(5ms)\" }", "{ think = \"fixed(60s)\" }");
    let s = scenario("cut-start.toml", &text);
    let opts = RunOptions {
        target: Some(server.url()),
        ..Default::default()
    };
    let cancel = CancellationToken::new();
    let prepared = stampede::run::prepare(&s, &opts, &cancel).await.unwrap();
    let live = prepared.live.clone();
    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move { prepared.execute(cancel).await }
    });
    // The first connection's request reached the server: cancel, the others unstarted.
    tokio::time::timeout(TEST_BOUND, server.wait_for(|st| st.runs_started >= 1))
        .await
        .unwrap();
    cancel.cancel();
    let outcome = tokio::time::timeout(TEST_BOUND, run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let summary = &outcome.results.summary;
    assert_eq!(summary.stopped.name(), "interrupted");
    assert_eq!(summary.counters.attempted, 1, "{:?}", summary.counters);
    assert_eq!(
        live.finished.load(std::sync::atomic::Ordering::Relaxed),
        summary.counters.attempted,
        "progress done vs the summary's attempted"
    );
    assert_eq!(
        live.stopped.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the one that ran was stopped mid-script: not shown as done"
    );
    server.shutdown().await;
}

async fn bounded<
    F: std::future::Future<Output = Result<stampede::run::RunOutcome, stampede::run::RunError>>,
>(
    f: F,
) -> stampede::run::RunOutcome {
    tokio::time::timeout(TEST_BOUND, f)
        .await
        .expect("bounded")
        .expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_tokens_that_never_overlap_are_inconclusive_not_a_pass() {
    let text = format!(
        r#"
name = "apart"
duration = "10s"
[auth]
secret = {{ value = "{}" }}
[[group]]
name = "g"
users = 2
connections_per_user = 2
token = "per-user"
arrival = {{ ramp = "800ms" }}
steps = [{{ expect = "connection_established", within = "2s" }}, {{ close = 1000 }}]
"#,
        common::TEST_SECRET
    );
    let outcome = run(&scenario("apart.toml", &text), None, None).await;
    let s = &outcome.results.summary;
    assert_eq!(s.violations.total, 0, "{:?}", s.violations.first);
    assert_eq!(s.coverage.shared_tokens, 2);
    assert_eq!(s.coverage.overlapping_tokens, 0);
    assert_eq!(s.verdict.name(), "inconclusive");
    assert_eq!(stampede::cli::error::of_run(&outcome.results.summary), 4);
    assert_eq!(s.probe.tokens, 2, "the probe reconnects every token used");
    assert_eq!(s.probe.refused, 0);
}

/// A `where` test on a field no answer carries (`statsu` for the `user_id` the reference
/// server sends) can never pass: the scenario misreads the answers, a misconfiguration,
/// unreadable (exit 9) with the path named; it once read as lost answers, a race to hunt.
/// The same test on the right field is met, clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_where_test_on_a_misnamed_field_is_unreadable_not_a_race() {
    let server = spawn_reference(None).await;
    let checked = |field: &str| {
        chat_scenario("where-typo", 3, 1).replace(
            "correlate = \"run_id\", within = \"3s\" }",
            &format!(
                "correlate = \"run_id\", within = \"3s\", where = {{ {field} = \"user-{{{{user}}}}\" }} }}"
            ),
        )
    };
    let typo = checked("user_di");
    assert!(
        typo.contains("where = { user_di = \"user-{{user}}\" }"),
        "{typo}"
    );
    let misnamed = run(
        &scenario("where-typo.toml", &typo),
        Some(server.url()),
        None,
    )
    .await;
    let right = run(
        &scenario("where-typo.toml", &checked("user_id")),
        Some(server.url()),
        None,
    )
    .await;
    server.shutdown().await;
    let s = &misnamed.results.summary;
    assert_eq!(
        s.verdict,
        stampede::model::Verdict::Unreadable,
        "{:?}",
        s.hint
    );
    let hint = s.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("a field no answer carried (\"user_di\"; the first carried"),
        "{hint}"
    );
    let s = &right.results.summary;
    assert_eq!(s.verdict, stampede::model::Verdict::Clean, "{:?}", s.hint);
    assert_eq!(
        s.counters.expect.checked_met.total(),
        3,
        "{:?}",
        s.counters.expect
    );
}

/// Every answer to one step's requests says no to its `where` test, on every connection
/// (here a test no answer of the reference server passes, as a server refusing a post by
/// policy answers): that step's requests are turned away, target unusable (exit 5), never
/// a race; and so whether or not another step's `where` test passed. It once read as
/// VIOLATIONS as soon as the greeting, the step before, had a `where` test of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_refused_everywhere_is_unusable_whatever_the_step_before_checked() {
    let server = spawn_reference(None).await;
    let refused = |greeting_checked: bool| {
        // Every answer says the same (`thread_id = "lobby"`, where "room-1" is wanted):
        // one refusal everywhere, not crossed answers.
        let mut text = chat_scenario("refused-step", 3, 1)
            .replace("thread_id = \"t-{{user}}\"", "thread_id = \"lobby\"")
            .replace(
                "correlate = \"run_id\", within = \"3s\" }",
                "correlate = \"run_id\", within = \"3s\", where = { thread_id = \"room-1\" } }",
            );
        if greeting_checked {
            text = text.replace(
                "{ expect = \"connection_established\", within = \"5s\" }",
                "{ expect = \"connection_established\", within = \"5s\", where = { user_id = \"user-{{user}}\" } }",
            );
        }
        text
    };
    let checked = refused(true);
    assert!(
        checked.contains("where = { user_id") && checked.contains("thread_id = \"lobby\""),
        "{checked}"
    );
    let mut verdicts = Vec::new();
    for text in [refused(false), checked] {
        let outcome = run(
            &scenario("refused-step.toml", &text),
            Some(server.url()),
            None,
        )
        .await;
        verdicts.push(outcome.results.summary.clone());
    }
    server.shutdown().await;
    for s in &verdicts {
        assert_eq!(
            s.verdict,
            stampede::model::Verdict::TargetUnusable,
            "{:?}",
            s.hint
        );
        let hint = s.hint.clone().unwrap_or_default();
        assert!(
            hint.contains("its requests checked at step 2.2 on every connection")
                && hint.contains("it turned those requests away and answered others"),
            "{hint}"
        );
    }
    assert_eq!(verdicts[1].counters.expect.checked_met.total(), 3);
}

/// A scenario of more connections than this machine can hold is refused before its plan
/// is built: `prepare` itself says so (it built a plan of millions of connections, and
/// minted and calibrated, before the same refusal came from the run). Where this machine
/// could hold them all, there is nothing to refuse and the test says so.
#[tokio::test]
async fn a_plan_this_machine_cannot_hold_is_refused_before_it_is_built() {
    let users: u64 = 3_000_000;
    if stampede::run::max_connections(false, false).is_some_and(|most| most >= users) {
        eprintln!("this machine may hold {users} connections: nothing to refuse");
        return;
    }
    let text = format!(
        "name = \"huge\"\nduration = \"10s\"\n[[group]]\nname = \"g\"\nusers = {users}\n\
         steps = [{{ close = 1000 }}]\n"
    );
    let s = scenario("huge.toml", &text);
    let opts = RunOptions {
        target: Some("ws://127.0.0.1:9/ws".into()),
        ..Default::default()
    };
    let refused = stampede::run::prepare(&s, &opts, &CancellationToken::new()).await;
    match refused {
        Err(stampede::run::RunError::Capacity(e)) => {
            assert!(e.to_string().contains("3000000 connections"), "{e}");
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a plan of {users} connections was built"),
    }
}

/// A server that answers every upgrade with a redirect answered it: the progress line's
/// count of attempts the server never answered stays at zero, while the attempts fail (a
/// redirect is no refusal of the token).
#[tokio::test]
async fn a_redirect_is_an_answer_in_the_progress_counts() {
    let (url, stop) = common::spawn_server(|tcp| async move {
        common::refuse_with(
            tcp,
            "HTTP/1.1 301 Moved Permanently\r\nLocation: ws://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n",
        )
        .await
    })
    .await;
    let s = scenario("moved.toml", &chat_scenario("moved", 4, 1));
    let opts = RunOptions {
        target: Some(url),
        ..Default::default()
    };
    let cancel = CancellationToken::new();
    let prepared = stampede::run::prepare(&s, &opts, &cancel).await.unwrap();
    let live = prepared.live.clone();
    let outcome = tokio::time::timeout(TEST_BOUND, prepared.execute(cancel))
        .await
        .unwrap()
        .unwrap();
    stop.cancel();
    let c = &outcome.results.summary.counters;
    assert_eq!(c.failed, 4, "{c:?}");
    assert_eq!(
        live.unanswered.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
