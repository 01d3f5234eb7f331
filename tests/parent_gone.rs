//! `run --workers`: what becomes of the workers when their parent, or one of them, is
//! killed outright (SIGKILL: Kubernetes after its grace period, a CI job's hard kill, the
//! OOM killer), which no process can catch or pass on.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How long a worker whose parent is gone may take to stop and write its results: well
/// inside its minute of load, so the stop, not the duration, ended it.
const STOPS_WITHIN: Duration = Duration::from_secs(20);

/// Writes the scenario the tests run into `dir`, and returns its path: four users, each
/// with one request and then 50 s of thought, so that its load outlasts the tests' waits
/// unless something stops it.
fn long_scenario(dir: &Path) -> PathBuf {
    let file = dir.join("long.toml");
    let text = common::chat_scenario("long", 4, 1).replace("fixed(5ms)", "fixed(50s)");
    std::fs::write(&file, text).unwrap();
    file
}

/// A child's stderr, line by line.
type StderrLines = tokio::io::Lines<BufReader<tokio::process::ChildStderr>>;

/// Reads `child`'s stderr, bounded, until every one of `wanted` has been seen at the start
/// of a line; returns what was read, and the rest, read on as the child writes it (its
/// stderr stays a pipe somebody reads) to its end.
async fn read_until(child: &mut Child, wanted: &[String]) -> (String, JoinHandle<String>) {
    let mut lines = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let seen = lines_until(&mut lines, wanted).await;
    (seen, common::read_on(lines))
}

/// Reads `lines`, bounded, until every one of `wanted` has been seen at the start of a
/// line; returns what was read.
async fn lines_until(lines: &mut StderrLines, wanted: &[String]) -> String {
    let mut seen = String::new();
    let mut missing: Vec<&String> = wanted.iter().collect();
    let found = timeout(common::TEST_BOUND, async {
        while let Ok(Some(line)) = lines.next_line().await {
            missing.retain(|w| !line.starts_with(w.as_str()));
            seen.push_str(&line);
            seen.push('\n');
            if missing.is_empty() {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "never said {missing:?} (the load never got under way?):\n{seen}"
    );
    seen
}

/// The summary.json files under `dir`, at any depth.
fn summaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            found.extend(summaries(&path));
        } else if path.file_name().is_some_and(|n| n == "summary.json") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// `summary`'s `stopped`.
fn stopped(summary: &Path) -> String {
    let text = std::fs::read_to_string(summary).unwrap();
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    s["stopped"].as_str().unwrap_or_default().to_string()
}

/// A worker (`--stop-with-stdin`, as its parent starts it) stops by itself once its stdin
/// ends, as on SIGTERM: exit 130 and its results written, interrupted. Before, nothing
/// told a worker that its parent was gone, and it loaded the target to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stops_and_writes_its_results_when_its_stdin_ends() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = long_scenario(dir.path());
    let out = dir.path().join("results");
    let mut worker = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("run")
        .arg(scenario)
        .args([
            "--shard",
            "0/2",
            "--reference",
            "--no-learn",
            "--duration",
            "60s",
        ])
        .arg("-o")
        .arg(&out)
        .arg("--stop-with-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let parent_end = worker.stdin.take().expect("stdin is piped");
    // A progress line: the load is under way.
    read_until(&mut worker, &["progress".to_string()]).await;
    drop(parent_end);
    let status = timeout(STOPS_WITHIN, worker.wait())
        .await
        .expect("the worker stops once its stdin ends, not at the end of its duration")
        .unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    let written = summaries(&out);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(stopped(&written[0]), "interrupted", "{written:?}");
}

/// The workers of a `run --workers` parent killed with SIGKILL stop by themselves, each
/// writing its results, and are gone within [`STOPS_WITHIN`]. Before, both went on
/// loading the target, under PID 1, to the end of their duration. The target is a server
/// of its own, which outlives the parent (the built-in one would go down with it, and
/// its going would end the workers' connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_of_a_parent_killed_with_sigkill_stop_by_themselves() {
    let server = common::spawn_reference(None).await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = long_scenario(dir.path());
    let out = dir.path().join("results");
    let mut parent = spawn_workers(&scenario, &out, &["--target", &server.url()]);
    let parent_pid = parent.id().expect("the parent runs");
    // Each worker's progress line, passed on: both are loading.
    let wanted: Vec<String> = (0..2).map(|i| format!("progress  worker {i}: ")).collect();
    let (said, _) = read_until(&mut parent, &wanted).await;
    let workers = children_of(parent_pid);
    assert_eq!(workers.len(), 2, "{workers:?}\n{said}");
    // Opened while they are the parent's children, so that no other process can take
    // their ids before they are watched.
    let ends: Vec<(u32, OwnedFd)> = workers
        .iter()
        .map(|&pid| {
            let raw = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
            let fd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty())
                .expect("a pidfd of the worker");
            (pid, fd)
        })
        .collect();
    common::signal(&parent, "KILL");
    let _ = timeout(common::TEST_BOUND, parent.wait()).await;
    let deadline = Instant::now() + STOPS_WITHIN;
    for (pid, end) in &ends {
        if !ended_by(end, deadline) {
            for (pid, _) in &ends {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            panic!("worker {pid} still runs {STOPS_WITHIN:?} after its parent was killed");
        }
    }
    // Each wrote its results, stopped as a SIGTERM stops it.
    let written = summaries(&out);
    assert_eq!(written.len(), 2, "{written:?}");
    for summary in &written {
        assert_eq!(stopped(summary), "interrupted", "{summary:?}");
    }
    server.shutdown().await;
}

/// One worker of a `run --workers` killed with SIGKILL (the OOM killer) no longer loses the
/// whole run: the other runs to its end, and its results are merged, incomplete (exit 7),
/// with the dead worker's shard missing, as `merge` judges a split with a shard missing;
/// the console and the summary name the worker and the signal, and the summary keeps the
/// console's warning for `report` to say again (it was said on stderr only). Before:
/// `error: worker 0 failed (signal: 9 (SIGKILL)): ` (a colon and no cause), exit 2 (bad
/// usage), the other worker killed at once, and no summary anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_sigkill_leaves_the_others_results_merged_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    // 12 s of thought: both workers are still loading at their first progress line (5 s).
    let file = dir.path().join("long.toml");
    let text = common::chat_scenario("long", 4, 1).replace("fixed(5ms)", "fixed(12s)");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("results");
    let mut parent = spawn_workers(&file, &out, &[]);
    let parent_pid = parent.id().expect("the parent runs");
    let wanted: Vec<String> = (0..2).map(|i| format!("progress  worker {i}: ")).collect();
    let (said, rest) = read_until(&mut parent, &wanted).await;
    let first = first_worker(parent_pid, &said);
    send(first, "KILL");
    let status = timeout(common::TEST_BOUND, parent.wait())
        .await
        .expect("the run ends when its other worker does")
        .unwrap();
    let stderr = said + &timeout(common::TEST_BOUND, rest).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains(
            "warning: worker 0 (shard 0/2) was killed by signal 9 (SIGKILL) before it wrote \
             its results: its connections are not in the merged result"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("error:"), "{stderr}");
    // The merged result, beside the workers' folder.
    let (run, s) = merged_result(&out, &stderr);
    assert_eq!(s["verdict"], "incomplete", "{s:#}");
    // Only worker 1's share of the four connections.
    assert_eq!(s["merged_from"], 1, "{s:#}");
    assert_eq!(s["connections_planned"], 2, "{s:#}");
    let hint = s["hint"].as_str().unwrap_or_default();
    assert!(
        hint.starts_with("worker 0 (shard 0/2) was killed by signal 9 (SIGKILL)"),
        "{s:#}"
    );
    // The console's warning is kept in the summary, and a report of the result says it
    // again: the console is gone once the run ends.
    let warning = "worker 0 (shard 0/2) was killed by signal 9 (SIGKILL) before it wrote its \
                   results: its connections are not in the merged result";
    assert_eq!(s["warnings"], serde_json::json!([warning]), "{s:#}");
    let page = dir.path().join("page.html");
    let report = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("report")
        .arg(&run)
        .arg("-q")
        .arg("-o")
        .arg(&page)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&report.stderr);
    assert_eq!(report.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("warning: {}: {warning}", run.display())),
        "{said}"
    );
}

/// After Ctrl-C, a worker that ended without writing its results (one that a signal ended
/// before it could take the Ctrl-C, as a worker still starting is ended) is named on
/// stderr as skipped, in the words `merge` names a run folder without its summary in, and
/// recorded among the merged summary's warnings; the other worker's results are merged.
/// Before, its folder was left out without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_ctrl_c_a_worker_that_wrote_no_results_is_said_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = long_scenario(dir.path());
    let out = dir.path().join("results");
    let mut parent = spawn_workers(&scenario, &out, &[]);
    let parent_pid = parent.id().expect("the parent runs");
    let mut lines = BufReader::new(parent.stderr.take().expect("stderr is piped")).lines();
    let wanted: Vec<String> = (0..2).map(|i| format!("progress  worker {i}: ")).collect();
    let mut said = lines_until(&mut lines, &wanted).await;
    let first = first_worker(parent_pid, &said);
    // Stopped, worker 0 cannot take the SIGINT the parent passes on: it ends only by the
    // SIGKILL sent once the parent has taken the Ctrl-C (its notice is said after).
    send(first, "STOP");
    common::signal(&parent, "INT");
    said += &lines_until(&mut lines, &["interrupted (Ctrl-C)".to_string()]).await;
    send(first, "KILL");
    let rest = common::read_on(lines);
    let status = timeout(common::TEST_BOUND, parent.wait())
        .await
        .expect("the run ends once its workers have")
        .unwrap();
    let stderr = said + &timeout(common::TEST_BOUND, rest).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    // Worker 0's run folder: its interval log, and no summary.
    let workers = only_dir(&out.join("long"), "-workers");
    let aborted = only_dir(&workers.join("worker-0").join("long"), "");
    assert!(aborted.join("intervals.hlog").is_file(), "{stderr}");
    assert!(!aborted.join("summary.json").exists(), "{stderr}");
    let warning = format!(
        "skipped {}: no summary.json (a run stopped before it wrote its results?)",
        aborted.display()
    );
    assert!(stderr.contains(&format!("warning: {warning}")), "{stderr}");
    let (_, s) = merged_result(&out, &stderr);
    assert_eq!(s["merged_from"], 1, "{s:#}");
    assert_eq!(s["warnings"], serde_json::json!([warning]), "{s:#}");
}

/// The one folder in `dir` whose name ends with `suffix`.
fn only_dir(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// The worker of the `run --workers 2` parent `parent_pid` that runs shard 0/2 (`said`:
/// the parent's stderr so far, for the message should there be none).
fn first_worker(parent_pid: u32, said: &str) -> u32 {
    let workers = children_of(parent_pid);
    workers
        .iter()
        .copied()
        .find(|&pid| {
            let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            argv.split(|&b| b == 0).any(|arg| arg == b"0/2")
        })
        .unwrap_or_else(|| panic!("no worker runs shard 0/2 among {workers:?}\n{said}"))
}

/// Sends signal `name` to process `pid`.
fn send(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits, until `deadline`, for the process `pidfd` refers to to end (a pidfd polls
/// readable once its process has ended, reaped or not); whether it did.
fn ended_by(pidfd: &OwnedFd, deadline: Instant) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let left = Timespec::try_from(left).unwrap();
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&left)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("cannot poll a pidfd: {e}"),
        }
    }
}

/// The processes whose parent is `pid`, read from `/proc/PID/stat` (after the command's
/// name, in parentheses, come the state and the parent's id).
fn children_of(pid: u32) -> Vec<u32> {
    let parent = pid.to_string();
    let mut found: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            matches!(fields.as_slice(), [state, ppid, ..] if *state != "Z" && *ppid == parent)
                .then_some(child)
        })
        .collect();
    found.sort();
    found
}

/// `stampede run SCENARIO --workers 2` (60 s at most, no calibration), its results under
/// `out`, `more` flags after: the parent of two workers, its stderr piped for
/// [`read_until`], killed if the test drops it.
fn spawn_workers(scenario: &Path, out: &Path, more: &[&str]) -> tokio::process::Child {
    Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("run")
        .arg(scenario)
        .args(["--workers", "2", "--no-learn", "--duration", "60s"])
        .args(more)
        .arg("-o")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The merged result under `out`, beside the workers' folder (there is exactly one;
/// `stderr`, the run's, for the failure message): its folder and its summary.
fn merged_result(out: &Path, stderr: &str) -> (PathBuf, serde_json::Value) {
    let merged: Vec<PathBuf> = summaries(out)
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("-workers"))
        .collect();
    assert_eq!(merged.len(), 1, "{merged:?}\n{stderr}");
    let summary = serde_json::from_str(&std::fs::read_to_string(&merged[0]).unwrap()).unwrap();
    let dir = merged[0].parent().unwrap().to_path_buf();
    (dir, summary)
}
