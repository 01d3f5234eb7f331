//! The HTML report from synthetic result directories: well-formed, self-contained, with
//! its plots and tables. (scripts/check-report.sh renders one in a real browser.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod report_support;

use quick_xml::events::Event;
use quick_xml::Reader;
use report_support::{run, stampede, with_intervals, with_violations, write};
use stampede::report::render_html;
use stampede::results::read_run;

/// Parses the page as XML (the report writes XHTML-compatible HTML); returns the count of
/// each element name, and panics when the page is not well-formed.
fn element_counts(html: &str) -> std::collections::BTreeMap<String, usize> {
    let mut reader = Reader::from_str(html);
    let mut counts = std::collections::BTreeMap::new();
    let mut depth = 0i64;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                *counts
                    .entry(String::from_utf8_lossy(e.name().as_ref()).to_string())
                    .or_insert(0) += 1;
            }
            Ok(Event::Empty(e)) => {
                *counts
                    .entry(String::from_utf8_lossy(e.name().as_ref()).to_string())
                    .or_insert(0) += 1;
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                let at = reader.buffer_position() as usize;
                let context = html
                    .get(at.saturating_sub(200)..(at + 50).min(html.len()))
                    .unwrap_or("");
                panic!("not well-formed at {at}: {e}\n…{context}…");
            }
        }
    }
    assert_eq!(depth, 0, "unclosed elements");
    counts
}

fn assert_self_contained(html: &str) {
    for needle in [
        "http://", "https://", "<script", "<link", "<img", "@import", "url(",
    ] {
        assert!(!html.contains(needle), "the page references {needle:?}");
    }
}

#[test]
fn a_run_with_violations_and_intervals_renders_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = with_intervals(with_violations(run(1, 3000, 20.0, 1.0), 12));
    r.summary.scenario = "nightly <&> \"quoted\"".into();
    r.summary.hint = Some("check the <secret> & \"key\"".into());
    let dir = write(&tmp.path().join("run"), &r);
    let data = read_run(&dir).unwrap();
    assert_eq!(data.violations.len(), 12);
    let html = render_html(&data, None).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_self_contained(&html);
    let counts = element_counts(&html);
    // Five latency phases, the violation strip and three time series.
    assert_eq!(counts.get("svg"), Some(&9), "{counts:?}");
    assert!(counts["polyline"] >= 8, "{counts:?}");
    assert!(counts["tr"] > 30, "{counts:?}");
    assert!(html.contains("nightly &lt;&amp;&gt; &quot;quoted&quot;"));
    // The verdict's hint, whole and escaped, under the masthead (an unusable run says
    // why there).
    assert!(
        html.contains("<p class=\"hint\">check the &lt;secret&gt; &amp; &quot;key&quot;</p>"),
        "the hint is missing"
    );
    assert!(
        html.contains("jti-0007"),
        "every listed violation shows its jti"
    );
    assert!(html.contains("close 1011 &lt;boom&gt; &amp; &quot;gone&quot;"));
    assert!(html.contains("12 violations"));
    assert!(!html.contains("runs merged"), "a whole run reads as one");
    for heading in [
        "Latency by percentile",
        "Over time",
        "Connections and messages",
        "Expected events",
        "Violations",
    ] {
        assert!(html.contains(heading), "missing {heading}");
    }
}

#[test]
fn vs_overlays_both_runs_in_two_colours() {
    let tmp = tempfile::tempdir().unwrap();
    let new = read_run(&write(&tmp.path().join("new"), &run(1, 3000, 20.0, 1.4))).unwrap();
    let base = read_run(&write(&tmp.path().join("base"), &run(2, 3000, 20.0, 1.0))).unwrap();
    let html = render_html(&new, Some(&base)).unwrap();
    element_counts(&html);
    assert_self_contained(&html);
    let upper = html.to_uppercase();
    assert!(upper.contains("STROKE=\"#2563EB\""), "this run's colour");
    assert!(
        upper.contains("STROKE=\"#D97706\""),
        "the other run's colour"
    );
    assert!(
        html.contains("class=\"delta worse\""),
        "the slower run's cells are marked"
    );
    assert!(html.contains("<b>vs</b>"));
}

#[test]
fn optional_files_are_optional() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write(
        &tmp.path().join("run"),
        &with_violations(run(1, 300, 5.0, 1.0), 3),
    );
    std::fs::remove_file(dir.join("violations.jsonl")).unwrap();
    let data = read_run(&dir.join("summary.json")).unwrap();
    assert!(data.intervals.is_none() && data.violations.is_empty());
    let html = render_html(&data, None).unwrap();
    element_counts(&html);
    assert!(!html.contains("Over time"));
    assert!(
        html.contains("jti-0002"),
        "falls back to the summary's first violations"
    );
}

#[test]
fn broken_files_are_errors_that_name_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write(&tmp.path().join("run"), &run(1, 300, 5.0, 1.0));
    let histograms = dir.join("histograms.json");
    std::fs::write(
        &histograms,
        r#"{"encoding":"hdrhistogram-v2-deflate-base64","phases":{"turn":"bm90IGEgaGlzdG9ncmFt"}}"#,
    )
    .unwrap();
    let message = read_run(&dir).unwrap_err().to_string();
    assert!(
        message.contains(&histograms.display().to_string()) && message.contains("turn"),
        "{message}"
    );
    std::fs::write(&histograms, "[]").unwrap();
    assert!(read_run(&dir).is_err());
    let intervals = dir.join("intervals.json");
    std::fs::write(&intervals, "{").unwrap();
    write(&dir, &run(1, 300, 5.0, 1.0));
    std::fs::write(&intervals, "{").unwrap();
    let message = read_run(&dir).unwrap_err().to_string();
    assert!(message.contains("intervals.json"), "{message}");
    std::fs::write(dir.join("violations.jsonl"), "{}\n").unwrap();
    std::fs::remove_file(&intervals).unwrap();
    let message = read_run(&dir).unwrap_err().to_string();
    assert!(
        message.contains("violations.jsonl") && message.contains("line 1"),
        "{message}"
    );
}

#[test]
fn the_binary_writes_the_page() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write(
        &tmp.path().join("run"),
        &with_intervals(run(1, 600, 5.0, 1.0)),
    );
    let other = write(&tmp.path().join("other"), &run(2, 600, 5.0, 1.2));
    let out = tmp.path().join("out/report.html");
    let (code, _, err) = stampede(&[
        "report",
        dir.to_str().unwrap(),
        "--vs",
        other.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    element_counts(&std::fs::read_to_string(&out).unwrap());
    let (code, _, err) = stampede(&["report", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        dir.join("report.html").is_file(),
        "defaults to RESULT_DIR/report.html"
    );
    let (code, _, err) = stampede(&["report", tmp.path().join("missing").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing"), "{err}");
    // -o naming a folder: a usage error that names the file to give instead.
    let folder = tmp.path().to_str().unwrap();
    let (code, _, err) = stampede(&["report", dir.to_str().unwrap(), "-o", folder]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a folder; the report is one file"), "{err}");
    // A run overlaid on itself (here named through its summary.json) shows no difference:
    // refused, as compare refuses it.
    let itself = dir.join("summary.json");
    let (code, _, err) = stampede(&[
        "report",
        dir.to_str().unwrap(),
        "--vs",
        itself.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is the run being reported"), "{err}");
    // An interrupted --vs run is said to be one.
    let mut cut = run(3, 600, 5.0, 1.0);
    cut.summary.stopped = stampede::model::StopReason::Interrupted;
    let cut = write(&tmp.path().join("cut"), &cut);
    let (code, _, err) = stampede(&[
        "report",
        dir.to_str().unwrap(),
        "--vs",
        cut.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("was interrupted (Ctrl-C) before its plan finished"),
        "{err}"
    );
}

/// A run that could not judge its target shows no violation, and the card must not read
/// that as every oracle holding; a clean run's card still does.
#[test]
fn an_unjudged_run_does_not_say_every_oracle_held() {
    let tmp = tempfile::tempdir().unwrap();
    let mut unusable = run(1, 300, 5.0, 1.0);
    unusable.summary.verdict = stampede::model::Verdict::TargetUnusable;
    let dir = write(&tmp.path().join("unusable"), &unusable);
    let html = render_html(&read_run(&dir.join("summary.json")).unwrap(), None).unwrap();
    assert!(!html.contains("every oracle held"), "{html}");
    assert!(html.contains("the target was not judged"), "{html}");
    let dir = write(&tmp.path().join("clean"), &run(2, 300, 5.0, 1.0));
    let html = render_html(&read_run(&dir.join("summary.json")).unwrap(), None).unwrap();
    assert!(html.contains("every oracle held"), "{html}");
}

/// The attempts the server shed are said where the other connection counts are: on the
/// errors card and in the connections table.
#[test]
fn shed_attempts_are_counted_on_the_page() {
    let tmp = tempfile::tempdir().unwrap();
    let mut shedding = run(1, 300, 5.0, 1.0);
    shedding.summary.counters.rejected = 12;
    shedding.summary.counters.shed = 9;
    let dir = write(&tmp.path().join("shedding"), &shedding);
    let html = render_html(&read_run(&dir.join("summary.json")).unwrap(), None).unwrap();
    element_counts(&html);
    assert!(html.contains("12 rejected · 0 failed · 9 shed"), "{html}");
    assert!(
        html.contains(
            "<td>shed (of those: under load or while the server went down, not a violation)</td>"
        ),
        "{html}"
    );
}

/// The Closes the server never answered are counted in the connections table, beside the
/// other endings that are no violation.
#[test]
fn unanswered_closes_are_counted_on_the_page() {
    let tmp = tempfile::tempdir().unwrap();
    let mut mute = run(1, 300, 5.0, 1.0);
    mute.summary.counters.close_unanswered = 37;
    let dir = write(&tmp.path().join("mute"), &mute);
    let html = render_html(&read_run(&dir.join("summary.json")).unwrap(), None).unwrap();
    element_counts(&html);
    assert!(
        html.contains(
            "<td>close unanswered (our Close got none back within 2s: RFC 6455 §5.5.1, not a violation)</td><td class=\"num\">37</td>"
        ),
        "{html}"
    );
}

/// Refusals that came after a successful upgrade (graphql-transport-ws's 4403 after
/// `connection_init`) are counted as such in the connections table, and the causes table
/// does not call them upgrades refused: "accepted 0, rejected 20 (upgrade refused)" read
/// as upgrades the server turned away.
#[test]
fn refusals_after_the_upgrade_are_counted_as_in_band_on_the_page() {
    let tmp = tempfile::tempdir().unwrap();
    let mut gql = run(1, 300, 5.0, 1.0);
    let c = &mut gql.summary.counters;
    (c.accepted, c.rejected, c.rejected_in_band) = (0, 20, 20);
    c.refused_by = [(stampede::model::Cause::ServerClose(4403), 20)].into();
    let dir = write(&tmp.path().join("gql"), &gql);
    let html = render_html(&read_run(&dir.join("summary.json")).unwrap(), None).unwrap();
    element_counts(&html);
    for row in [
        "<td>rejected (refused at the upgrade, or in band after it)</td><td class=\"num\">20</td>",
        "<td>rejected in band (of those: upgrade accepted, then refused before acceptance)</td><td class=\"num\">20</td>",
        "<th>refused or failed by</th>",
    ] {
        assert!(html.contains(row), "{row} not in {html}");
    }
    assert!(!html.contains("upgrade refused"), "{html}");
}

/// A merged result (`--workers`, `stampede merge`) says so beside the run time: it would
/// read as one process's run.
#[test]
fn a_merged_run_says_so_in_its_header() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = run(1, 3000, 20.0, 1.0);
    r.summary.merged_from = Some(3);
    let data = read_run(&write(&tmp.path().join("run"), &r)).unwrap();
    let html = render_html(&data, None).unwrap();
    assert!(
        html.contains(" · 3 runs merged</dd>"),
        "the header does not say it"
    );
}

/// What the console says beside its tables is on the page too: the probes after the run
/// and the client's stalls (a starved run's page said only "generator fell behind"); a
/// merge of shards names its plan hash as one per part, not a blank; a shard beside a
/// whole run says it is one, where its "+100%" would not.
#[test]
fn the_page_says_what_the_console_says_beside_the_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = run(1, 3000, 20.0, 1.0);
    r.summary.probe.tokens = 200;
    r.summary.probe.refused = 3;
    r.summary.generator.client_stalls.count = 34;
    r.summary.generator.client_stalls.longest_ms = 1071.0;
    r.summary.generator.client_stalls.total_ms = 14641.0;
    let data = read_run(&write(&tmp.path().join("run"), &r)).unwrap();
    let html = render_html(&data, None).unwrap();
    assert!(
        html.contains(
            "<b>probe:</b> 200 tokens tried again after the run: 197 accepted, 3 refused"
        ),
        "{html}"
    );
    assert!(
        html.contains("<b>client stalls:</b> 34  longest 1071ms  total 14641ms"),
        "{html}"
    );
    let mut merged = run(2, 3000, 20.0, 1.0);
    merged.summary.merged_from = Some(2);
    merged.summary.plan_hash = String::new();
    let data = read_run(&write(&tmp.path().join("merged"), &merged)).unwrap();
    let html = render_html(&data, None).unwrap();
    assert!(
        html.contains("<dt>plan hash</dt><dd>one per part (merged)</dd>"),
        "{html}"
    );
    let mut shard = run(3, 3000, 20.0, 1.0);
    shard.summary.shard = Some(stampede::model::Shard { index: 0, count: 2 });
    let shard = read_run(&write(&tmp.path().join("shard"), &shard)).unwrap();
    let whole = read_run(&write(&tmp.path().join("whole"), &run(4, 3000, 20.0, 1.0))).unwrap();
    let html = render_html(&shard, Some(&whole)).unwrap();
    assert!(html.contains(" · <strong>shard 0/2</strong>"), "{html}");
}

/// A run that presents no token (`placement = "none"`) lists its violations without the
/// token id column: the plan's ids would read as tokens sent.
#[test]
fn violations_of_a_run_without_tokens_have_no_token_column() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = with_violations(run(1, 3000, 20.0, 1.0), 3);
    r.summary.probe.no_token = true;
    let data = read_run(&write(&tmp.path().join("run"), &r)).unwrap();
    let html = render_html(&data, None).unwrap();
    assert!(
        !html.contains("<th>jti</th>") && !html.contains("jti-000"),
        "a jti is shown"
    );
    assert!(html.contains("<th>group</th><th>expected</th>"));
}

/// A folder holding the parts of a split run (a `--workers` run's) is refused with what to
/// report instead: its newest part alone, one shard, read as the whole run.
#[test]
fn a_folder_of_a_split_runs_parts_is_not_reported_as_its_newest_part() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("run-workers");
    for i in 0..2u32 {
        let mut r = run(1, 3000, 20.0, 1.0);
        r.summary.shard = Some(stampede::model::Shard { index: i, count: 2 });
        write(
            &base.join(format!("worker-{i}/s/2026010{}T000000.000Z", i + 1)),
            &r,
        );
    }
    let (code, _, err) = stampede(&["report", base.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("holds the parts of a split run") && err.contains("is shard 1/2"),
        "{err}"
    );
    // A whole run's folder of several runs still reports its newest.
    let whole = tmp.path().join("runs");
    for day in 1..=2 {
        write(
            &whole.join(format!("s/2026010{day}T000000.000Z")),
            &run(1, 3000, 20.0, 1.0),
        );
    }
    let page = tmp.path().join("page.html");
    let (code, _, err) = stampede(&[
        "report",
        whole.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("holds 2 runs"), "{err}");
}

/// The scenario's thresholds get a section of their own: each condition with its outcome
/// and what was measured; a run without any shows none.
#[test]
fn thresholds_are_listed_with_their_outcomes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = run(1, 3000, 20.0, 1.0);
    let plain = render_html(
        &read_run(&write(&tmp.path().join("plain"), &r)).unwrap(),
        None,
    );
    assert!(!plain.unwrap().contains("<h2>Thresholds</h2>"));
    let threshold = |metric: &str, condition: &str, passed: bool, judged: bool| {
        stampede::results::ThresholdResult {
            metric: metric.into(),
            op: stampede::model::ThresholdOp::Lt,
            limit: 1.0,
            condition: condition.into(),
            actual: Some(2.0),
            passed,
            judged,
            message: format!("{metric} = 2 <ms>, limit {condition}"),
        }
    };
    r.summary.thresholds = vec![
        threshold("turn.p99", "< 2s", true, true),
        threshold("turn.max", "< 1ms", false, true),
    ];
    let html = render_html(
        &read_run(&write(&tmp.path().join("with"), &r)).unwrap(),
        None,
    )
    .unwrap();
    element_counts(&html);
    assert!(html.contains("<h2>Thresholds</h2>"), "no section");
    assert!(html.contains("<code>turn.p99 &lt; 2s</code></td><td class=\"outcome good\">ok</td>"));
    assert!(
        html.contains("<code>turn.max &lt; 1ms</code></td><td class=\"outcome bad\">breached</td>")
    );
    assert!(
        html.contains("turn.max = 2 &lt;ms&gt;, limit &lt; 1ms"),
        "escaped"
    );
}

/// A run that could not exercise its target (a wrong secret) lists no violations and
/// counts none as findings, as the console does: what its oracles counted is the
/// misconfiguration seen through them.
#[test]
fn violations_of_a_run_that_could_not_exercise_its_target_are_not_judged() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = with_violations(run(1, 3000, 20.0, 1.0), 12);
    r.summary.verdict = stampede::model::Verdict::AuthMisconfigured;
    let data = read_run(&write(&tmp.path().join("run"), &r)).unwrap();
    let html = render_html(&data, None).unwrap();
    element_counts(&html);
    assert!(html.contains("Not judged: the run could not exercise the target (auth_misconfigured"));
    assert!(
        html.contains("12 counted ("),
        "the card says what was counted"
    );
    assert!(!html.contains("jti-0007"), "no violation is listed");
    assert!(!html.contains("No oracle found a violation"));
}

/// A generator that fell behind distrusts the timings on the page's card, unless the run
/// timed nothing (a closed port on an overloaded machine): then there is nothing to
/// distrust.
#[test]
fn a_lagging_generator_distrusts_timings_only_when_there_are_some() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lagging = run(1, 300, 5.0, 1.0);
    lagging.summary.generator.fell_behind = true;
    let dir = write(&tmp.path().join("timed"), &lagging);
    let html = render_html(&read_run(&dir.join("summary.json")).unwrap(), None).unwrap();
    assert!(
        html.contains("fell behind: timings not trustworthy"),
        "{html}"
    );
    let lag = stampede::model::Phase::GeneratorLag.name();
    lagging.summary.phases.retain(|name, _| name == lag);
    lagging.summary.turns.clear();
    let dir = write(&tmp.path().join("untimed"), &lagging);
    let html = render_html(&read_run(&dir.join("summary.json")).unwrap(), None).unwrap();
    assert!(!html.contains("timings not trustworthy"), "{html}");
    assert!(html.contains("fell behind: nothing was timed"), "{html}");
}

/// `report FOLDER` reports the run that started last by the start its summary.json records,
/// not the one whose folder name sorts last (a copied or renamed folder), and says which.
#[test]
fn a_folder_of_runs_reports_the_latest_recorded_start_not_the_last_name() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("synthetic");
    // Names sort opposite to the starts: "b-copy" sorts last but started first.
    let mut late = run(1, 300, 20.0, 1.0);
    late.summary.started_at = "2026-01-02T00:00:00+00:00".into();
    let late = write(&folder.join("a-renamed"), &late);
    let mut early = run(2, 300, 20.0, 1.0);
    early.summary.started_at = "2026-01-01T00:00:00+00:00".into();
    write(&folder.join("b-copy"), &early);

    let page = tmp.path().join("page.html");
    let (code, _, err) = stampede(&[
        "report",
        folder.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "holds 2 runs; reporting the newest, {} (started 2026-01-02T00:00:00+00:00)",
            late.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("(`compare` pools all 2: its figures, and its gate, are theirs together)"),
        "{err}"
    );
    assert!(page.is_file());
}

/// What `merge` warned of (shards that started far apart) is in the merged summary.json,
/// and `report` of the merged folder says it on stderr and on the page; a summary.json
/// written before the field existed still reads, without warnings.
#[test]
fn a_merges_warnings_are_shown_by_report() {
    let tmp = tempfile::tempdir().unwrap();
    let shard = |index: u32, started_at: &str| {
        let mut part = run(u64::from(index) + 1, 300, 20.0, 1.0);
        part.summary.shard = Some(stampede::model::Shard { index, count: 2 });
        part.summary.started_at = started_at.into();
        let dir = write(&tmp.path().join(format!("s{index}")), &part);
        dir.display().to_string()
    };
    // Ten minutes apart on a 30 s plan.
    let (a, b) = (
        shard(0, "2026-01-01T00:00:00+00:00"),
        shard(1, "2026-01-01T00:10:00+00:00"),
    );
    // The parts' summaries have no `warnings` (written as before it existed): they read.
    let part = std::fs::read_to_string(std::path::Path::new(&a).join("summary.json")).unwrap();
    assert!(!part.contains("\"warnings\""), "{part}");
    assert!(read_run(std::path::Path::new(&a))
        .unwrap()
        .summary
        .warnings
        .is_empty());

    let merged = tmp.path().join("merged");
    let (code, _, err) = stampede(&["merge", &a, &b, "-q", "--out", merged.to_str().unwrap()]);
    assert!(
        err.contains("warning: the shards started 600s apart"),
        "{code} {err}"
    );

    let page = tmp.path().join("page.html");
    let (code, _, err) = stampede(&[
        "report",
        merged.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "warning: {}: the shards started 600s apart",
            merged.display()
        )),
        "{err}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<b>Warning:</b> the shards started 600s apart"),
        "the page lacks the merge's warning"
    );
}

/// `report FOLDER` where the newest run folder holds no `summary.json` (a run killed before
/// it wrote its results) reports the newest run that can be read and says, under `-q` too
/// and in `compare`'s words, which folder it skipped: the page is not of the latest run,
/// and with one readable run left nothing else on stderr would say so.
#[test]
fn a_folder_whose_newest_run_was_killed_says_it_skipped_it() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("synthetic");
    write(
        &folder.join("20260101T000000.000Z"),
        &run(1, 300, 20.0, 1.0),
    );
    let skipped = report_support::killed_run(&folder.join("20260102T000000.000Z"));

    let page = tmp.path().join("page.html");
    let (code, _, err) = stampede(&[
        "report",
        folder.to_str().unwrap(),
        "-q",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("warning: {skipped}")), "{err}");
    assert!(page.is_file());
}
