#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A run split into shards and merged equals the run in one process: counters add,
//! histograms merge, nothing is lost or counted twice. Also `run --workers`, `merge`
//! through the binary, and the Kubernetes Indexed Job's shard arguments.

mod common;
mod report_support;

use common::{chat_scenario, scenario, spawn_reference, TEST_BOUND};
use stampede::model::{Phase, Shard};
use stampede::results::{merge, read_run};
use stampede::run::RunOptions;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

async fn run_to(s: &stampede::model::Scenario, url: &str, out: &Path, shard: Option<Shard>) {
    let opts = RunOptions {
        target: Some(url.to_string()),
        out: Some(out.to_path_buf()),
        shard,
        ..Default::default()
    };
    let fut = stampede::run::run(s, &opts, CancellationToken::new());
    let outcome = tokio::time::timeout(TEST_BOUND, fut)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.results.summary.verdict.name(), "clean");
}

/// The one run written under `base` (a scenario's results folder), read back.
fn only_run(base: &Path) -> stampede::results::RunData {
    let stamp = std::fs::read_dir(base).unwrap().next().unwrap().unwrap();
    read_run(&stamp.path()).unwrap()
}

#[tokio::test]
async fn merged_shards_count_what_one_process_counts() {
    let server = spawn_reference(None).await;
    // The answers' expectation is named: its turn histogram merges by name too.
    let text = chat_scenario("shards", 9, 2).replace(
        "correlate = \"run_id\",",
        "correlate = \"run_id\", name = \"reply\",",
    );
    assert!(text.contains("name = \"reply\""));
    let s = scenario("shards.toml", &text);
    let tmp = tempfile::tempdir().unwrap();
    run_to(&s, &server.url(), &tmp.path().join("whole"), None).await;
    for i in 0..3 {
        let shard = Shard { index: i, count: 3 };
        run_to(
            &s,
            &server.url(),
            &tmp.path().join(format!("s{i}")),
            Some(shard),
        )
        .await;
    }
    server.shutdown().await;
    let one = |dir: &str| only_run(&tmp.path().join(dir).join("shards"));
    let whole = one("whole");
    let parts: Vec<_> = (0..3).map(|i| one(&format!("s{i}"))).collect();
    for p in &parts {
        assert!(
            p.summary.counters.attempted > 0,
            "every shard holds connections"
        );
        assert!(p.summary.shard.is_some());
    }
    let merged = merge(&parts).unwrap();
    let (m, w) = (&merged.summary, &whole.summary);
    assert_eq!(m.merged_from, Some(3));
    assert!(merged.missing_shards.is_empty());
    assert_eq!(m.connections_planned, w.connections_planned);
    let c = |s: &stampede::results::Summary| {
        let c = &s.counters;
        (
            c.attempted,
            c.accepted,
            c.messages_sent,
            c.messages_received,
            c.expect.expectations,
            c.expect.expectations_met,
        )
    };
    assert_eq!(c(m), c(w));
    assert_eq!(m.events, w.events);
    for phase in [
        Phase::TcpConnect,
        Phase::Upgrade,
        Phase::Turn,
        Phase::FirstEvent,
    ] {
        assert_eq!(
            merged.histograms.get(phase).len(),
            whole.histograms.get(phase).len(),
            "{phase}"
        );
    }
    let named = |s: &stampede::results::Summary| s.turns.get("reply").map(|t| t.count);
    assert_eq!(named(w), Some(18), "9 users × 2 answers");
    assert_eq!(named(m), named(w));
    assert_eq!(merged.histograms.turn("reply").map(|h| h.len()), Some(18));
    // A shard given twice is refused, not counted twice.
    let twice = [parts[0].clone(), parts[0].clone()];
    assert!(merge(&twice).is_err());
    // A whole run does not merge with shards of it (its connections would count twice).
    let mixed = [whole.clone(), parts[0].clone()];
    let err = merge(&mixed).unwrap_err().to_string();
    assert!(err.contains("a whole run"), "{err}");
    // A missing shard is reported, and the merge is incomplete, not clean.
    let partial = merge(&parts[..2]).unwrap();
    assert_eq!(partial.missing_shards, vec![2]);
    assert_eq!(partial.summary.verdict.name(), "incomplete");
    assert!(
        partial
            .summary
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("[2] of 3"),
        "{:?}",
        partial.summary.hint
    );
}

/// A merged `intervals.json` has a single run's shape and meaning: counts and the live
/// gauge are integers, every point has its `duration_ms`, and the series ends where the
/// merged run does (from the earliest part's start, which is the merged `started_at`), as
/// a single run's ends at its `elapsed_ms`, even when one shard started half a second
/// after the other (pods scheduled apart).
#[tokio::test]
async fn a_merged_intervals_file_has_a_single_runs_shape_and_clock() {
    let server = spawn_reference(None).await;
    let s = scenario("intervals.toml", &chat_scenario("intervals", 6, 2));
    let tmp = tempfile::tempdir().unwrap();
    let (url, interval) = (server.url(), std::time::Duration::from_millis(100));
    let shard = |index| {
        let opts = RunOptions {
            target: Some(url.clone()),
            out: Some(tmp.path().join(format!("s{index}"))),
            shard: Some(Shard { index, count: 2 }),
            interval,
            ..Default::default()
        };
        let s = s.clone();
        async move {
            let fut = stampede::run::run(&s, &opts, CancellationToken::new());
            tokio::time::timeout(TEST_BOUND, fut)
                .await
                .unwrap()
                .unwrap()
        }
    };
    tokio::join!(shard(0), shard(1));
    server.shutdown().await;
    let mut parts: Vec<_> = (0..2)
        .map(|i| only_run(&tmp.path().join(format!("s{i}")).join("intervals")))
        .collect();
    // Shard 0 (the first part given) started 500 ms after shard 1.
    let start = chrono::DateTime::parse_from_rfc3339(&parts[0].summary.started_at).unwrap();
    parts[0].summary.started_at = (start + chrono::Duration::milliseconds(500)).to_rfc3339();
    let merged = merge(&parts).unwrap();
    let out = tmp.path().join("merged");
    stampede::results::write_merged(&out, &merged).unwrap();

    let json = |dir: &Path, file: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap()
    };
    let single = json(&parts[0].dir, "intervals.json");
    let whole = json(&out, "intervals.json");
    let shape = |point: &serde_json::Value| -> Vec<(String, &'static str)> {
        let kind = |v: &serde_json::Value| match v {
            serde_json::Value::Number(n) if n.is_f64() => "float",
            serde_json::Value::Number(_) => "integer",
            serde_json::Value::Null => "null",
            _ => "other",
        };
        let point = point.as_object().unwrap();
        point
            .iter()
            .map(|(k, v)| {
                // Whether a time is a whole number of ms or whether a turn ended in an
                // interval is the data's, not the shape's.
                let kind = match (k.as_str(), kind(v)) {
                    ("t_ms" | "duration_ms" | "turn_p99_ms", "integer" | "null") => "float",
                    (_, kind) => kind,
                };
                (k.clone(), kind)
            })
            .collect()
    };
    let single_shape = shape(&single["series"][0]);
    assert!(
        single_shape.contains(&("sent".into(), "integer")),
        "{single}"
    );
    for point in whole["series"].as_array().unwrap() {
        assert_eq!(
            shape(point),
            single_shape,
            "merged {point} vs single {single}"
        );
    }
    // A single run's series ends at its run's end, a few ms before its `elapsed_ms` at
    // most; the merged series likewise ends at the merged run's.
    let end = |series: &serde_json::Value| {
        series["series"].as_array().unwrap().last().unwrap()["t_ms"]
            .as_f64()
            .unwrap()
    };
    let lead = |elapsed: f64, series: &serde_json::Value| elapsed - end(series);
    let slack = parts
        .iter()
        .map(|p| lead(p.summary.elapsed_ms, &json(&p.dir, "intervals.json")))
        .fold(0.0, f64::max);
    let m = json(&out, "summary.json");
    let elapsed = m["elapsed_ms"].as_f64().unwrap();
    // The merged run spans from the earliest part's start to the latest part's end (the
    // shifted shard 0 included), whatever the two shards' real starts were apart: a bound
    // read off one part alone failed when shard 1 really started a few ms after shard 0.
    let span = |p: &stampede::results::RunData| {
        let start = chrono::DateTime::parse_from_rfc3339(&p.summary.started_at).unwrap();
        let start_ms = start.timestamp_micros() as f64 / 1000.0;
        (start_ms, start_ms + p.summary.elapsed_ms)
    };
    let first = parts.iter().map(|p| span(p).0).fold(f64::MAX, f64::min);
    let last = parts.iter().map(|p| span(p).1).fold(f64::MIN, f64::max);
    assert!(
        (elapsed - (last - first)).abs() <= 2.0,
        "{elapsed} against {}",
        last - first
    );
    let merged_lead = lead(elapsed, &whole);
    assert!(
        (-1.0..=slack + 1.0).contains(&merged_lead),
        "merged series ends at {} but the merged run at {elapsed} (a part's lead: {slack})",
        end(&whole)
    );
    // It starts when its earliest part did, so start + elapsed is the last part's end.
    assert_eq!(m["started_at"], parts[1].summary.started_at.as_str());
}

#[tokio::test]
async fn a_merge_of_shards_that_ran_against_different_servers_names_every_target() {
    let (a, b) = (spawn_reference(None).await, spawn_reference(None).await);
    let s = scenario("two.toml", &chat_scenario("two", 4, 1));
    let tmp = tempfile::tempdir().unwrap();
    for (i, server) in [&a, &b].into_iter().enumerate() {
        let shard = Shard {
            index: i as u32,
            count: 2,
        };
        run_to(
            &s,
            &server.url(),
            &tmp.path().join(format!("s{i}")),
            Some(shard),
        )
        .await;
    }
    let (url_a, url_b) = (a.url(), b.url());
    a.shutdown().await;
    b.shutdown().await;
    let part = |i: usize| only_run(&tmp.path().join(format!("s{i}")).join("two"));
    let merged = merge(&[part(0), part(1)]).unwrap();
    assert_eq!(merged.summary.target, format!("{url_a}, {url_b}"));
}

#[test]
fn shards_parse_and_partition_the_connections() {
    let s: Shard = "1/4".parse().unwrap();
    assert_eq!((s.index, s.count), (1, 4));
    for bad in ["4/4", "1/0", "x", "1-4", "-1/4"] {
        assert!(bad.parse::<Shard>().is_err(), "{bad}");
    }
    // A count past the limit is named as such, not as an index out of order.
    let err = "1/4294967296".parse::<Shard>().unwrap_err();
    assert_eq!(
        err,
        "a shard's COUNT is at most 4294967295 (and its INDEX less than its COUNT), found \"1/4294967296\""
    );
    // Pairs of connections share a token (several connections per user): each pair runs
    // in one shard, where the exclusivity oracle sees both of its sides; every connection
    // is in exactly one shard.
    let text = r#"
name = "pairs"
duration = "5s"
[[group]]
name = "racers"
users = 10
connections_per_user = 2
token = "per-user"
arrival = "collide"
steps = [{ think = "10ms" }]
"#;
    let plan = stampede::plan::build(&common::scenario("pairs.toml", text), 1);
    assert_eq!(plan.conns.len(), 20);
    let n = 4;
    let mut seen = vec![0u32; plan.conns.len()];
    for index in 0..n {
        let mut part = plan.clone();
        part.keep_shard(Shard { index, count: n });
        for c in &part.conns {
            seen[c.id as usize] += 1;
            let sharing = plan.conns.iter().filter(|o| o.token == c.token);
            for other in sharing {
                assert!(
                    part.conns.iter().any(|p| p.id == other.id),
                    "connections {} and {} share a token but not shard {index}",
                    c.id,
                    other.id
                );
            }
        }
    }
    assert!(seen.iter().all(|&k| k == 1), "{seen:?}");
    // 10 tokens over 4 shards: none is left empty.
    let sizes: Vec<usize> = (0..n)
        .map(|index| {
            let mut part = plan.clone();
            part.keep_shard(Shard { index, count: n });
            part.conns.len()
        })
        .collect();
    assert!(sizes.iter().all(|&k| k >= 4), "{sizes:?}");
}

/// Sessions kept per user (`exclusive = { per = "user" }`): one user's connections are
/// one session whatever tokens they present, the sides of its race, and run in one shard;
/// every connection is in exactly one, and the shards share the work.
#[test]
fn a_users_connections_stay_in_one_shard_when_sessions_are_per_user() {
    let text = r#"
name = "tabs"
duration = "5s"
[oracles]
exclusive = { max_live = 1, per = "user" }
[[group]]
name = "tabs"
users = 10
connections_per_user = 2
token = "per-connection"
steps = [{ think = "10ms" }]
"#;
    let plan = stampede::plan::build(&common::scenario("tabs.toml", text), 1);
    assert_eq!(plan.conns.len(), 20);
    let sub = |c: &stampede::model::ConnPlan| plan.tokens[c.token as usize].sub.clone();
    let n = 4;
    let mut seen = vec![0u32; plan.conns.len()];
    let mut sizes = Vec::new();
    for index in 0..n {
        let mut part = plan.clone();
        part.keep_shard(Shard { index, count: n });
        for c in &part.conns {
            seen[c.id as usize] += 1;
            for other in plan.conns.iter().filter(|o| sub(o) == sub(c)) {
                assert!(
                    part.conns.iter().any(|p| p.id == other.id),
                    "connections {} and {} are one user's but not in shard {index}",
                    c.id,
                    other.id
                );
            }
        }
        sizes.push(part.conns.len());
    }
    assert!(seen.iter().all(|&k| k == 1), "{seen:?}");
    assert!(sizes.iter().all(|&k| k >= 4), "{sizes:?}");
}

fn stampede(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn workers_split_a_run_over_processes_and_merge_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.toml");
    std::fs::write(&file, chat_scenario("workers", 6, 2)).unwrap();
    let out = tmp.path().join("results");
    let run = stampede(&[
        "run",
        file.to_str().unwrap(),
        "--workers",
        "3",
        "--json",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("progress"), "--quiet: {stderr}");
    let s: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(s["merged_from"], 3, "{s:#}");
    assert_eq!(s["counters"]["attempted"], 6);
    assert_eq!(s["counters"]["messages_sent"], 12);
    assert_eq!(s["verdict"], "clean");
    assert_eq!(s["passed"], true, "{s:#}");
    // Said of the whole run, not of one worker's share; and against the built-in server,
    // which this process started for every worker.
    let hint = s["hint"].as_str().unwrap_or_default();
    assert!(
        hint.starts_with(
            "every expectation met (18 on 6 connections) and no oracle broke; exclusivity \
             not exercised: no two connections shared a token"
        ),
        "{s:#}"
    );
    assert_eq!(s["embedded_target"], true, "{s:#}");
    // Each worker connected from a loopback address of its own, and the result says which.
    let sources = |s: &serde_json::Value| {
        let mut all: Vec<String> = s["source_addrs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        all.sort();
        all
    };
    let used = sources(&s);
    assert_eq!(used.len(), 3, "{s:#}");
    assert!(
        used.iter()
            .all(|a| a.starts_with("127.") && a != "127.0.0.1"),
        "{used:?}"
    );
    // `stampede merge` over the workers' own directories gives the same counts.
    let workers = std::fs::read_dir(out.join("workers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-workers"))
        .unwrap();
    let mut dirs = Vec::new();
    for w in std::fs::read_dir(&workers).unwrap() {
        let w = w.unwrap().path();
        if !w.is_dir() {
            continue;
        }
        let scen = w.join("workers");
        for run in std::fs::read_dir(scen).unwrap() {
            dirs.push(run.unwrap().path());
        }
    }
    assert_eq!(dirs.len(), 3);
    // The parent calibrated once for all three (each calibrating alone started its load
    // seconds after the others): the workers learned nothing themselves, and what the
    // parent learned is beside the merged result.
    assert!(workers.join("learned.json").is_file());
    assert!(
        dirs.iter().all(|d| !d.join("learned.toml").exists()),
        "{dirs:?}"
    );
    let merged_run = std::fs::read_dir(out.join("workers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.to_string_lossy().ends_with("-workers"))
        .unwrap();
    assert!(merged_run.join("learned.toml").is_file(), "{merged_run:?}");
    // The interval log merged too: per phase, its counts are the workers' summed (the
    // HistogramLogProcessor recipe works on a scaled run).
    let turns = |log: &Path| -> u64 {
        let text = std::fs::read(log).unwrap();
        hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&text)
            .filter_map(|e| match e.unwrap() {
                hdrhistogram::serialization::interval_log::LogEntry::Interval(h)
                    if h.tag().is_some_and(|t| t.as_str() == "turn") =>
                {
                    let bytes = base64::Engine::decode(
                        &base64::engine::general_purpose::STANDARD,
                        h.encoded_histogram(),
                    )
                    .unwrap();
                    let h: hdrhistogram::Histogram<u64> =
                        hdrhistogram::serialization::Deserializer::new()
                            .deserialize(&mut bytes.as_slice())
                            .unwrap();
                    Some(h.len())
                }
                _ => None,
            })
            .sum()
    };
    let merged_turns = turns(&merged_run.join("intervals.hlog"));
    assert_eq!(merged_turns, 12, "every turn of the run, once");
    let parts: u64 = dirs.iter().map(|d| turns(&d.join("intervals.hlog"))).sum();
    assert_eq!(merged_turns, parts);
    let merged_dir = tmp.path().join("merged");
    let mut args = vec!["merge", "--json", "--out", merged_dir.to_str().unwrap()];
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let merged = stampede(&args);
    assert_eq!(merged.status.code(), Some(0));
    let m: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
    assert_eq!(m["counters"], s["counters"]);
    assert_eq!(m["passed"], true, "{m:#}");
    assert_eq!(sources(&m), used);
    assert!(merged_dir.join("summary.json").exists());
    assert_eq!(turns(&merged_dir.join("intervals.hlog")), 12);
    // `--scenario` checks the thresholds of the scenario the runs ran, and no other.
    let with = |scenario: &Path| {
        let mut args = vec!["merge", "-q", "--scenario", scenario.to_str().unwrap()];
        // A folder of its own: the merge above took `merged_dir`.
        let out = tmp.path().join("judged");
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(names.iter().map(String::as_str));
        stampede(&args)
    };
    assert_eq!(with(&file).status.code(), Some(0));
    let edited = tmp.path().join("edited.toml");
    std::fs::write(&edited, chat_scenario("workers", 6, 2) + "\n# edited\n").unwrap();
    let said = with(&edited);
    let err = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(2), "{err}");
    assert!(
        err.contains("edited.toml is not the scenario these runs ran"),
        "{err}"
    );
    // The `…-workers/` folder itself stands for the three shards in it.
    let again = tmp.path().join("again");
    let said = stampede(&[
        "merge",
        "--json",
        "-q",
        "--out",
        again.to_str().unwrap(),
        workers.to_str().unwrap(),
    ]);
    assert_eq!(
        said.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&said.stdout).unwrap();
    assert_eq!(
        (&m["merged_from"], &m["counters"]),
        (&3.into(), &s["counters"])
    );
}

#[test]
fn the_kubernetes_indexed_job_passes_its_completion_index_as_the_shard() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/job.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let job: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    // A shard exiting 1 (a violation) fails its own index, never the whole Job's others.
    assert_eq!(job["spec"]["backoffLimitPerIndex"], 0);
    assert!(job["spec"]["backoffLimit"].is_null());
    let completions = job["spec"]["completions"].as_u64().unwrap();
    assert_eq!(job["spec"]["parallelism"].as_u64().unwrap(), completions);
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let shard_at = args.iter().position(|a| *a == "--shard").unwrap();
    assert_eq!(
        args[shard_at + 1],
        format!("$(JOB_COMPLETION_INDEX)/{completions}")
    );
    assert_eq!(args[0], "run");
    // Each Job's shards in a folder of its own: a merge of tonight's never meets last
    // night's (the same shard twice is refused), and its `-o` folder is new.
    let out_at = args.iter().position(|a| *a == "--out").unwrap();
    assert_eq!(
        args[out_at + 1],
        "/results/$(JOB_NAME)/shard-$(JOB_COMPLETION_INDEX)"
    );
    let job_name = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "JOB_NAME")
        .unwrap();
    assert_eq!(
        job_name["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.labels['batch.kubernetes.io/job-name']"
    );
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(env.contains(&"JOB_COMPLETION_INDEX"));
    // The secret comes from a Kubernetes secret, never a literal in the manifest.
    assert!(!text.contains("stampede-dev-secret"));
    // The image the README builds runs `stampede` itself (the args are its command line),
    // as the user whose group the pod's fsGroup makes the results volume writable for.
    let dockerfile = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/Dockerfile"),
    )
    .unwrap();
    assert!(
        dockerfile.contains("ENTRYPOINT [\"stampede\"]"),
        "{dockerfile}"
    );
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap();
    let group = user.split(':').nth(1).unwrap().trim();
    assert_eq!(
        job["spec"]["template"]["spec"]["securityContext"]["fsGroup"]
            .as_u64()
            .map(|g| g.to_string())
            .as_deref(),
        Some(group)
    );
}

/// Writes into `dir` a whole run of the plan `report_support::run` makes, started months
/// after its seed-1 run: another run of one scenario, which pools with it. Its folder.
fn later_run(dir: &Path) -> PathBuf {
    let mut later = report_support::run(2, 300, 20.0, 1.0);
    later.summary.started_at = "2025-03-01T03:00:00+00:00".into();
    report_support::write(dir, &later)
}

/// `stampede merge` given one run twice (the same directory, or a copy of it) refuses,
/// naming both directories, instead of counting the run twice; runs started apart pool.
#[test]
fn merge_refuses_a_run_given_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let one = report_support::run(1, 300, 20.0, 1.0);
    let a = report_support::write(&tmp.path().join("a"), &one);
    let copy = report_support::write(&tmp.path().join("copy"), &one);
    let out = tmp.path().join("merged");
    let (a, copy, out) = (
        a.to_str().unwrap(),
        copy.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    for (twice, why) in [
        (copy, "both started at"),
        (a, "the same directory, given twice"),
    ] {
        let said = stampede(&["merge", a, twice, "-q", "--out", out]);
        let err = String::from_utf8_lossy(&said.stderr);
        assert_eq!(said.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("{a} and {twice} are the same run ({why}")),
            "{err}"
        );
    }
    assert!(!Path::new(out).exists(), "nothing merged");
    let b = later_run(&tmp.path().join("b"));
    let said = stampede(&["merge", a, b.to_str().unwrap(), "--json", "--out", out]);
    assert_eq!(
        said.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
}

/// `stampede merge -o` naming one of the runs it merges refuses (exit 2), naming both,
/// and leaves that run as it was: written over, it would be lost, and the next merge of it
/// would fail.
#[test]
fn merge_refuses_to_write_over_a_run_it_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let a = report_support::write(
        &tmp.path().join("a"),
        &report_support::run(1, 300, 20.0, 1.0),
    );
    let b = later_run(&tmp.path().join("b"));
    let before = std::fs::read(b.join("summary.json")).unwrap();
    let (a, b_str) = (a.to_str().unwrap(), b.to_str().unwrap());
    for out in [b.clone(), b.join("merged")] {
        let said = stampede(&["merge", a, b_str, "-q", "--out", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&said.stderr);
        assert_eq!(said.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&out.display().to_string()) && err.contains(b_str),
            "{err}"
        );
        assert!(err.contains("which this merge reads"), "{err}");
    }
    assert_eq!(std::fs::read(b.join("summary.json")).unwrap(), before);
    assert!(!b.join("merged").exists(), "nothing written");
}

/// `stampede merge -o` naming a folder that is already something (another run, last
/// night's merge, a file, a folder with anything in it) refuses (exit 2) and writes
/// nothing: the run there was overwritten, its other files left beside the result's, and a
/// file gave a bare OS error with the exit of stampede's own failure (3).
#[test]
fn merge_refuses_an_output_folder_that_is_already_something() {
    let tmp = tempfile::tempdir().unwrap();
    let a = report_support::write(
        &tmp.path().join("a"),
        &report_support::run(1, 300, 20.0, 1.0),
    );
    let b = later_run(&tmp.path().join("b"));
    let other = report_support::write(
        &tmp.path().join("baseline"),
        &report_support::run(3, 300, 20.0, 1.0),
    );
    std::fs::write(other.join("plan.json"), "{}").unwrap();
    let before = std::fs::read(other.join("summary.json")).unwrap();
    let file = tmp.path().join("gp3.toml");
    std::fs::write(&file, "name = \"x\"").unwrap();
    let notes = tmp.path().join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("README"), "mine").unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for (out, what) in [
        (&other, "holds a run already"),
        (&file, "is a file"),
        (&notes, "is not empty (1 entry)"),
    ] {
        let said = stampede(&["merge", a, b, "-q", "--out", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&said.stderr);
        assert_eq!(said.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("{} {what}", out.display()))
                && err.contains("nothing was written"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(other.join("summary.json")).unwrap(), before);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "name = \"x\"");
    // A new folder, or an empty one, takes the result.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for out in [empty, tmp.path().join("new")] {
        let said = stampede(&["merge", a, b, "-q", "--out", out.to_str().unwrap()]);
        assert_eq!(
            said.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&said.stderr)
        );
        assert!(out.join("summary.json").is_file());
    }
}

/// A merge of runs that were interrupted (a `--workers` parent killed outright: each
/// worker stopped as on SIGTERM) is a partial result, exit 7, not 130: nobody interrupted
/// the merge.
#[test]
fn a_merge_of_interrupted_parts_is_incomplete_not_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cut = report_support::run(1, 300, 20.0, 1.0);
    cut.summary.stopped = stampede::model::StopReason::Interrupted;
    let a = report_support::write(&tmp.path().join("a"), &cut);
    let b = later_run(&tmp.path().join("b"));
    let out = tmp.path().join("merged");
    let said = stampede(&[
        "merge",
        "-q",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        said.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
}

/// A part whose `violations.jsonl` is gone though it found violations is merged with a
/// warning, said and recorded in the result: the merged `violations.jsonl` lacks its kept
/// ones, and nothing passes it off as the whole list.
#[test]
fn merge_says_a_part_lost_its_violations_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broken = report_support::run(1, 300, 20.0, 1.0);
    broken.summary.violations.total = 20;
    broken
        .summary
        .violations
        .by_oracle
        .insert(stampede::model::OracleKind::Completeness, 20);
    broken.summary.verdict = stampede::model::Verdict::Violations;
    let a = report_support::write(&tmp.path().join("a"), &broken);
    let _ = std::fs::remove_file(a.join("violations.jsonl"));
    let b = later_run(&tmp.path().join("b"));
    let out = tmp.path().join("merged");
    let said = stampede(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert!(
        err.contains(&format!(
            "warning: {} has no violations.jsonl though it found 20 violations",
            a.display()
        )),
        "{err}"
    );
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(
        summary.contains("has no violations.jsonl though it found 20 violations"),
        "{summary}"
    );
    // The verdict's words on the file say what it holds now.
    let json: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let hint = json["hint"].as_str().unwrap_or_default();
    assert!(
        !hint.contains(stampede::oracle::verdict::VIOLATIONS_FILE_HOLDS_ALL)
            && hint.contains("violations.jsonl holds those of the parts that kept theirs"),
        "{hint}"
    );
}

/// `stampede merge` without `--scenario` of runs that breached their thresholds judges
/// those thresholds again on the merged result: breached there too, it does not pass
/// (`passed: false`, exit 1), where it used to read clean with the thresholds dropped.
#[test]
fn merge_without_a_scenario_judges_the_runs_thresholds_again() {
    use stampede::model::{LatencyStat, Phase, Threshold, ThresholdMetric, ThresholdOp};
    let tmp = tempfile::tempdir().unwrap();
    let fast = [Threshold {
        metric: ThresholdMetric::Latency {
            phase: Phase::Turn,
            stat: LatencyStat::P99,
        },
        op: ThresholdOp::Lt,
        limit: 1.0,
        text: "< 1ms".into(),
    }];
    let part = |seed: u64, started_at: &str, name: &str| {
        let mut run = report_support::run(seed, 300, 20.0, 1.0);
        run.summary.started_at = started_at.into();
        run.summary.thresholds = stampede::results::evaluate(&run.summary, &fast);
        assert!(!run.summary.passed(), "the part breached its threshold");
        report_support::write(&tmp.path().join(name), &run)
    };
    let a = part(1, "2025-03-01T02:00:00+00:00", "a");
    let b = part(2, "2025-03-01T03:00:00+00:00", "b");
    let out = tmp.path().join("merged");
    let said = stampede(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(1), "{err}");
    assert!(err.contains("judged again on the merged result"), "{err}");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written["passed"], false, "{written:#}");
    assert_eq!(written["verdict"], "clean", "{written:#}");
    let t = &written["thresholds"][0];
    assert_eq!(
        (&t["metric"], &t["passed"]),
        (&"turn.p99".into(), &false.into()),
        "{t:#}"
    );
}

/// Shards started ten minutes apart, one planned for 30 s and one for 60 s, still merge
/// (exit 0: late pods are no error), but `stampede merge` warns of both, saying why the
/// rates are not the whole run's.
#[test]
fn merge_warns_of_shards_started_apart_and_of_other_durations() {
    let tmp = tempfile::tempdir().unwrap();
    let shard = |index: u32, started_at: &str, duration_ms: f64| {
        let mut run = report_support::run(u64::from(index) + 1, 300, 20.0, 1.0);
        run.summary.shard = Some(Shard { index, count: 2 });
        run.summary.started_at = started_at.into();
        run.summary.duration_ms = duration_ms;
        report_support::write(&tmp.path().join(format!("s{index}")), &run)
    };
    let s0 = shard(0, "2025-03-01T02:00:00+00:00", 30_000.0);
    let s1 = shard(1, "2025-03-01T02:10:00+00:00", 60_000.0);
    let out = tmp.path().join("merged");
    let said = stampede(&[
        "merge",
        s0.to_str().unwrap(),
        s1.to_str().unwrap(),
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: the shards started 600s apart")
            && err.contains("not the whole run's load"),
        "{err}"
    );
    assert!(
        err.contains("warning: the parts were planned for different durations (30s in"),
        "{err}"
    );
    assert!(out.join("summary.json").is_file(), "merged all the same");
}

/// `stampede merge DIR` where DIR holds runs (not a run itself) merges every run in it, as
/// `compare` reads such a folder, naming how many it found; the merged result may not go
/// inside that folder, where the next merge of it would find it among its parts.
#[test]
fn merge_reads_a_folder_of_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    report_support::write(&runs.join("a"), &report_support::run(1, 300, 20.0, 1.0));
    later_run(&runs.join("b"));
    let out = tmp.path().join("merged");
    let runs_str = runs.to_str().unwrap();
    let said = stampede(&["merge", runs_str, "--json", "--out", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("note: {runs_str} holds 2 runs: merging them all")),
        "{err}"
    );
    let m: serde_json::Value = serde_json::from_slice(&said.stdout).unwrap();
    assert_eq!(m["merged_from"], 2, "{m:#}");
    assert_eq!(m["counters"]["messages_sent"], 600, "{m:#}");
    let inside = runs.join("merged");
    let said = stampede(&["merge", runs_str, "-q", "--out", inside.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("lies inside {runs_str}")), "{err}");
    assert!(!inside.exists(), "nothing written");
    // A quoted glob (no shell to expand it) stands for what it matches.
    let glob = runs.join("*");
    let again = tmp.path().join("again");
    let said = stampede(&[
        "merge",
        glob.to_str().unwrap(),
        "--json",
        "--out",
        again.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(0), "{err}");
    let m: serde_json::Value = serde_json::from_slice(&said.stdout).unwrap();
    assert_eq!(m["merged_from"], 2, "{m:#}");
    let none = runs.join("nothing-*");
    let said = stampede(&[
        "merge",
        none.to_str().unwrap(),
        "-q",
        "--out",
        again.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(2), "{err}");
    assert!(err.contains("matches nothing"), "{err}");
}

/// A `--workers` run shows its progress as one process's does in a CI log: each worker's
/// plain line every 5 s, marked with the worker; `-q` shows none (see
/// `workers_split_a_run_over_processes_and_merge_it`).
#[test]
fn a_workers_run_passes_its_workers_progress_lines_on() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.toml");
    // Connections that think 5.5 s: each worker runs past its first 5 s line.
    let scenario = chat_scenario("progress", 4, 1).replace("fixed(5ms)", "fixed(5500ms)");
    std::fs::write(&file, scenario).unwrap();
    let out = tmp.path().join("results");
    let run = stampede(&[
        "run",
        file.to_str().unwrap(),
        "--workers",
        "2",
        "--no-learn",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    for i in 0..2 {
        assert!(
            stderr.contains(&format!("progress  worker {i}: ")),
            "{stderr}"
        );
    }
}

/// `stampede merge DIR` where DIR holds a run folder without its `summary.json` (a run
/// killed before it wrote its results: only its `intervals.hlog`) merges the rest, says on
/// stderr that it skipped that folder (as `compare` says it, under `-q` too), and records
/// it in the merged summary's `warnings`, so that `report` of the result says it again.
#[test]
fn merge_of_a_folder_says_and_records_a_run_it_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    report_support::write(&runs.join("a"), &report_support::run(1, 300, 20.0, 1.0));
    let warning = report_support::killed_run(&runs.join("b"));
    let out = tmp.path().join("merged");
    let said = stampede(&[
        "merge",
        runs.to_str().unwrap(),
        "-q",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("warning: {warning}")), "{err}");
    let m: serde_json::Value = serde_json::from_slice(&said.stdout).unwrap();
    assert_eq!(m["merged_from"], 1, "{m:#}");
    assert_eq!(
        report_support::recorded_warnings(&out),
        serde_json::json!([warning])
    );

    let page = tmp.path().join("page.html");
    let said = stampede(&[
        "report",
        out.to_str().unwrap(),
        "-q",
        "-o",
        page.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(0), "{err}");
    assert!(err.contains(&warning), "{err}");
}

/// `stampede merge` given a quoted glob, or several paths, where one is a run folder
/// without its `summary.json` (a killed run) merges the rest, says it skipped that folder
/// (as `compare` says it) and records it in the merged summary, as for a folder given;
/// with no readable run left it is an error (exit 2) naming what it skipped. A merge that
/// fails for another reason (here an output folder inside a run) has said what it skipped
/// first. Before: exit 2, 'holds no run that can be read', for the one killed run.
#[test]
fn merge_skips_a_killed_run_among_the_runs_given() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let good = runs.join("a");
    report_support::write(&good, &report_support::run(1, 300, 20.0, 1.0));
    let killed = runs.join("b");
    let warning = report_support::killed_run(&killed);
    let glob = runs.join("*");
    let (glob, good, killed) = (
        glob.to_str().unwrap(),
        good.to_str().unwrap(),
        killed.to_str().unwrap(),
    );
    for (i, given) in [vec![glob], vec![good, killed]].into_iter().enumerate() {
        let out = tmp.path().join(format!("merged-{i}"));
        let mut args = vec!["merge", "-q", "--json", "--out", out.to_str().unwrap()];
        args.extend(&given);
        let said = stampede(&args);
        let err = String::from_utf8_lossy(&said.stderr);
        assert_eq!(said.status.code(), Some(0), "{given:?}: {err}");
        assert!(err.contains(&format!("warning: {warning}")), "{err}");
        let m: serde_json::Value = serde_json::from_slice(&said.stdout).unwrap();
        assert_eq!(m["merged_from"], 1, "{m:#}");
        assert_eq!(
            report_support::recorded_warnings(&out),
            serde_json::json!([warning])
        );
    }
    // Nothing readable left: an error that names what it skipped.
    let out = tmp.path().join("none");
    let only_killed = runs.join("b*");
    for given in [killed, only_killed.to_str().unwrap()] {
        let said = stampede(&["merge", "-q", "--out", out.to_str().unwrap(), given]);
        let err = String::from_utf8_lossy(&said.stderr);
        assert_eq!(said.status.code(), Some(2), "{given}: {err}");
        assert!(
            err.contains(&format!("error: no run left to merge: {warning}")),
            "{err}"
        );
    }
    assert!(!out.exists(), "nothing written");
    // Refused for another reason: what it skipped was said before the error.
    let inside = runs.join("a").join("merged");
    let said = stampede(&["merge", "-q", "--out", inside.to_str().unwrap(), glob]);
    let err = String::from_utf8_lossy(&said.stderr);
    assert_eq!(said.status.code(), Some(2), "{err}");
    let (warned, refused) = (
        err.find(&format!("warning: {warning}")),
        err.find("lies inside"),
    );
    assert!(
        warned.is_some() && refused.is_some() && warned < refused,
        "{err}"
    );
}
