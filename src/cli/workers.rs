//! `run --workers N` and `stampede merge`: a run split over processes, and merging results.
//!
//! Each worker is this binary run with `--shard i/N` against one shared target (the given
//! URL, or the reference server this process starts), each under its own open-file limit
//! and, against a loopback target, from its own source address (127.0.0.2, 127.0.0.3, …,
//! each with its own ephemeral ports; a worker whose share is more than one address carries
//! quickly gets more: 127.0.1.2, 127.0.2.2, …). Their result directories merge into one result
//! exactly (`results::merge`): counters add, histograms merge.

use super::{error, write_file, Error, MergeArgs, RunArgs};
use crate::model::words::short_hash;
use crate::model::LearnedOracles;
use crate::report;
use crate::results::read::{FoundRuns, ReadError};
use crate::results::{self as files, read_run, MergedRun};
use crate::run::{self, Target};
use crate::scenario;
use crate::swarm::Endpoint;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::ChildStderr;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long workers get to write their results after a Ctrl-C before they are killed.
const WIND_DOWN: Duration = Duration::from_secs(10);

pub async fn run_workers(args: RunArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let file = scenario::ScenarioFile::read(&args.scenario)?;
    let s = file.to_run()?;
    if !args.output.quiet {
        super::warn_expiring_before_load(&file, &s);
    }
    let plan = crate::plan::build(&s, s.seed_or(args.seed));
    let target = args.target.choose(s.target.as_deref());
    // The reference server serves every worker's connections: give it every descriptor.
    if matches!(target, Target::Reference { .. }) {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
    // The reference server outlives a Ctrl-C until every worker has stopped its own
    // connections: shut down first, it would close theirs (1001) and read as findings.
    let serving = CancellationToken::new();
    let bound = run::bind(&target, &plan, &serving).await?;
    // Workers dial the URL as written (a literal password included); messages show it
    // masked, and workers get it in their environment, not on their command line, which
    // every user of the machine can read (`ps`).
    let url = bound.dial().to_string();
    let endpoint = Endpoint::resolve(&url).await.ok();
    let own = endpoint
        .as_ref()
        .is_some_and(|e| own_addresses(e.addr, &args.target.source_addr));
    // Checked before calibrating: every worker would refuse it, after the calibration.
    if let Some(e) = &endpoint {
        if let Err(err) =
            crate::swarm::SourceAddrs::checked(args.target.source_addr.clone(), e.addr)
        {
            bound.close().await;
            return Err(run::RunError::from(err).into());
        }
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let base = args.out.join(&s.name).join(format!("{stamp}-workers"));
    // Calibrated here, once: each worker calibrating on its own started its load seconds
    // after the others.
    if !args.output.quiet && !args.no_learn && plan.oracles.learn {
        errln!(
            "calibrating against {} once for every worker (a few connections, one at a time)",
            bound.url
        );
    }
    let opts = args.options(args.seed);
    let busiest = busiest_share(&plan, args.workers);
    // Workers sharing addresses (the user's, or the system's one) share their ports: each
    // worker's own warning would go to its captured stderr.
    if !own && !args.output.quiet {
        if let Some(warning) = run::slow_ports_note(&s, &opts) {
            errln!("warning: {warning}");
        }
    }
    let plan = std::sync::Arc::new(plan);
    let calibration = run::calibrate_once(plan.clone(), &bound, &opts, &cancel).await;
    // Ctrl-C during calibration ends it either way (an error or what it learned so far,
    // depending on where the signal caught it): the same stop, and the same result as a
    // run in one process stopped there (the summary, interrupted and incomplete, and
    // what was learned so far), written and printed as that run's.
    let calibration = match calibration {
        Ok(c) if !cancel.is_cancelled() => c,
        Err(e) if !cancel.is_cancelled() => {
            bound.close().await;
            return Err(e.into());
        }
        stopped => {
            let learned = stopped.ok().flatten();
            let outcome = run::interrupted_during_calibration(plan, &bound, &opts, learned);
            bound.close().await;
            return super::print_run(&outcome?, &args);
        }
    };
    let handoff = handoff(&base, calibration.as_ref().map(|(learned, _)| learned))?;
    if !args.output.quiet {
        errln!(
            "{} workers against {}{}; their results under {}",
            args.workers,
            bound.url,
            if own { " from 127.0.0.2 onwards" } else { "" },
            base.display()
        );
    }
    // Against loopback each worker connects from addresses of its own, enough of them that
    // none carries more connections than it reaches quickly.
    let addrs = own.then(|| addresses_per_worker(busiest));
    let outcome = spawn_all(&args, (&url, addrs), (&base, &s.name), &handoff, &cancel).await;
    let embedded = bound.is_reference();
    bound.close().await;
    let Ended {
        dirs,
        lost,
        skipped,
    } = outcome?;
    let interrupted = cancel.is_cancelled();
    if dirs.is_empty() && interrupted {
        errln!("interrupted (Ctrl-C) before any worker wrote results: nothing written");
        return Ok(error::exit::INTERRUPTED);
    }
    if dirs.is_empty() && !lost.is_empty() {
        return Err(EveryWorkerLost(lost).into());
    }
    // Said under `-q` too, and before merging, so that a merge that fails says it too:
    // the result is incomplete, and this is why. The folders skipped first, as `merge`
    // records them.
    let said: Vec<String> = skipped
        .iter()
        .map(|d| files::read::skipped_warning(d))
        .chain(
            lost.iter()
                .map(|l| format!("{l}: its connections are not in the merged result")),
        )
        .collect();
    for line in &said {
        errln!("warning: {line}");
    }
    let runs = dirs
        .iter()
        .map(|d| read_run(d).map_err(Error::usage))
        .collect::<Result<Vec<_>, _>>()?;
    let mut merged = files::merge(&runs).map_err(Error::usage)?;
    // Kept in the summary too: the console's line is gone with the run, and a `report`
    // of the result must say again what its figures leave out.
    merged.record_said(&said);
    // The workers dialled its URL as any target's; the server was the one started here.
    merged.summary.embedded_target |= embedded;
    merged.summary.thresholds = files::evaluate(&merged.summary, &s.thresholds);
    if !lost.is_empty() && merged.summary.verdict == crate::model::Verdict::Incomplete {
        // Which worker went, and how, not only which shard is missing.
        merged.summary.hint = Some(format!(
            "{}: its connections are not in this result",
            list(&lost)
        ));
    }
    let dir = (!args.no_results).then(|| files::results_dir(&args.out, &s.name));
    let code = finish(
        &merged,
        dir.as_deref(),
        args.output.json,
        args.junit.as_deref(),
    )?;
    if let (Some(dir), Some((_, text))) = (&dir, &calibration) {
        files::write_atomic(&dir.join("learned.toml"), text.as_bytes())?;
    }
    // What the workers wrote is written; the exit says it was cut short, as `run`'s does.
    Ok(if interrupted {
        error::exit::INTERRUPTED
    } else {
        code
    })
}

/// Starts every worker, waits for all (bounded after a Ctrl-C), and returns their result
/// directories.
async fn spawn_all(
    args: &RunArgs,
    (url, own): (&str, Option<u32>),
    (base, name): (&Path, &str),
    handoff: &Handoff,
    cancel: &CancellationToken,
) -> Result<Ended, Error> {
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    // Each worker's stdin, held open until every worker has ended: closed only when this
    // process ends, however it ends (a SIGKILL included), which each worker takes as the
    // signal to stop (`--stop-with-stdin`). Taken out of the child: tokio closes a child's
    // stdin when it is waited for.
    let mut lifelines = Vec::new();
    for i in 0..args.workers {
        let out = base.join(format!("worker-{i}"));
        let mut cmd = worker_command(&exe, args, i, (url, own), &out, handoff);
        let mut child = cmd.spawn()?;
        lifelines.push(child.stdin.take());
        let stderr = relay(i, child.stderr.take(), !args.output.quiet);
        children.push((i, out, (child, stderr)));
    }
    // A Ctrl-C at the terminal reaches the workers too; one sent to this process alone
    // (a supervisor's `kill -INT`) is passed on, so that they stop as it does.
    let pids: Vec<u32> = children
        .iter()
        .filter_map(|(_, _, (c, _))| c.id())
        .collect();
    let forward = cancel.clone();
    let forwarding = tokio::spawn(async move {
        forward.cancelled().await;
        for pid in pids {
            interrupt(pid);
        }
    });
    let mut ended = Ended::default();
    for (i, out, child) in children {
        let (mut child, stderr) = child;
        let status = wait(&mut child, cancel).await?;
        if status.code().is_none() {
            let found = worker_results(&out, name, true).map_err(Error::usage)?;
            // Interrupted before it could take Ctrl-C (still starting): it wrote no summary
            // (at most the folder its interval log streams into), and that is the
            // interruption, not a failure; its folder is said skipped.
            if cancel.is_cancelled() {
                ended.dirs.extend(found.runs);
                ended.skipped.extend(found.skipped);
                continue;
            }
            // Killed (the OOM killer's SIGKILL): whatever it wrote in full is merged, and
            // a worker that wrote nothing is its shard missing from the result, which is
            // then incomplete, as `merge` makes a split with a shard missing (said as lost,
            // which names the worker and the signal, not as a folder skipped). The others
            // run on to their end.
            if found.runs.is_empty() {
                ended.lost.push(Lost {
                    worker: i,
                    workers: args.workers,
                    signal: killed_by(&status),
                });
            }
            ended.dirs.extend(found.runs);
            continue;
        }
        // 0, 1 and 4-8 are verdicts (the worker ran and wrote results); 130 interrupted.
        if matches!(status.code(), Some(2) | Some(3)) {
            // Its stderr ends with it, unless something it started still holds the pipe:
            // what the relay read by then is what there is.
            let stderr = tokio::time::timeout(RELAY_END, stderr)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(Error::Usage(failed(i, &status, &stderr)));
        }
        let found = worker_results(&out, name, cancel.is_cancelled()).map_err(Error::usage)?;
        ended.dirs.extend(found.runs);
        ended.skipped.extend(found.skipped);
    }
    forwarding.abort();
    // Every worker has ended: nobody is left to tell.
    drop(lifelines);
    Ok(ended)
}

/// What the workers left behind.
#[derive(Debug, Default)]
struct Ended {
    /// Their result folders, to merge.
    dirs: Vec<PathBuf>,
    /// The workers killed before they wrote their results.
    lost: Vec<Lost>,
    /// After Ctrl-C, the folders of workers stopped before they wrote their results: said
    /// and recorded as skipped, as `merge` says a run folder without its summary.
    skipped: Vec<PathBuf>,
}

/// A worker killed by a signal (the OOM killer's SIGKILL) before it wrote its results:
/// its shard is missing from the merged result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// Its index, which is its shard's.
    pub worker: u32,
    /// How many workers the run has (its shards' count).
    pub workers: u32,
    /// The signal, as `9 (SIGKILL)`.
    pub signal: String,
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "worker {} (shard {}/{}) was killed by signal {} before it wrote its results",
            self.worker, self.worker, self.workers, self.signal
        )
    }
}

/// The signal that ended a process that `status` says ended on one, as `9 (SIGKILL)`
/// (what follows `signal: ` in the status's own words); the status's words otherwise.
fn killed_by(status: &std::process::ExitStatus) -> String {
    let said = status.to_string();
    match said.strip_prefix("signal: ") {
        Some(signal) => signal.to_string(),
        None => said,
    }
}

/// The message of worker `i` failing with `status` (a usage or internal error), its last
/// stderr lines after a colon when it said anything.
fn failed(i: u32, status: &std::process::ExitStatus, stderr: &str) -> String {
    match stderr.trim() {
        "" => format!("worker {i} failed ({status}) and said nothing on stderr"),
        said => format!("worker {i} failed ({status}): {said}"),
    }
}

/// The run's workers all killed: there is nothing to merge.
#[derive(Debug, thiserror::Error)]
#[error("every worker was killed before it wrote results ({}): nothing to merge", list(.0))]
pub struct EveryWorkerLost(pub Vec<Lost>);

/// `lost`, each said, separated by `; `.
fn list(lost: &[Lost]) -> String {
    lost.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What worker folder `out` holds to merge: the runs under `out/name/`. When the worker
/// was cut short (`cut_short`: by Ctrl-C, or killed), it may have stopped before it wrote its
/// `summary.json` (a second Ctrl-C aborts it; a SIGINT before it could take one ends it):
/// nothing to merge from it, and not a failure, but its shard is missing from the result,
/// so the run folder it left is returned as skipped, or, where it left none, `out` itself.
/// Otherwise a worker ended on its own and wrote its results: a folder of it without a
/// summary is an error, as it should be.
fn worker_results(out: &Path, name: &str, cut_short: bool) -> Result<FoundRuns, ReadError> {
    let searched = out.join(name);
    if !cut_short {
        return Ok(FoundRuns {
            runs: files::read::run_dirs(&searched)?,
            skipped: Vec::new(),
        });
    }
    // A folder with nothing of a run in it, or none at all, is the worker's leaving
    // nothing: not an error here.
    let mut found = files::find_runs(&searched).unwrap_or_default();
    // A path that is no folder comes back as a run (`summary.json` named itself): it is
    // one only with its summary.
    found.runs.retain(|d| d.join("summary.json").is_file());
    if found.runs.is_empty() && found.skipped.is_empty() {
        found.skipped.push(out.to_path_buf());
    }
    Ok(found)
}

/// What the workers are told of the parent's calibration.
enum Handoff {
    /// It did not calibrate (`--no-learn`, the scenario's `[oracles] learn = false`, or
    /// tables it already has): neither do they (`--no-learn` is passed on, the rest they
    /// read from the scenario themselves).
    AsRun,
    /// It calibrated and learned nothing: they do not calibrate again.
    Nothing,
    /// It learned this (a JSON file of [`LearnedOracles`]): they check it.
    From(PathBuf),
}

/// Writes what the parent learned where its workers read it (`base/learned.json`).
fn handoff(base: &Path, learned: Option<&LearnedOracles>) -> Result<Handoff, Error> {
    let Some(learned) = learned else {
        return Ok(Handoff::AsRun);
    };
    if learned.is_empty() {
        return Ok(Handoff::Nothing);
    }
    let text = serde_json::to_string(learned).map_err(Error::usage)?;
    std::fs::create_dir_all(base)?;
    let file = base.join("learned.json");
    write_file(&file, text.as_bytes())?;
    Ok(Handoff::From(file))
}

/// Reads what a `--workers` parent learned (`--learned-from`, [`handoff`]'s file).
pub fn read_learned(path: &Path) -> Result<LearnedOracles, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("{} is not learned invariants: {e}", path.display())))
}

/// Sends SIGINT to process `pid` (a worker), as Ctrl-C at the terminal does; a worker
/// that got one already takes a second as the same request. Elsewhere than Linux, nothing.
fn interrupt(pid: u32) {
    #[cfg(target_os = "linux")]
    {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pid;
}

/// Worker `i`'s command line: `run --shard i/N` of the same scenario, writing under `out`,
/// from `own` loopback source addresses of its own when set (that many, [`source_addrs`];
/// else from `--source-addr`, when given), told what the parent's calibration gives it
/// (`handoff`). The target URL travels in its environment (`STAMPEDE_TARGET`), not on its
/// command line, which every user of the machine can read (`ps`): the URL may hold a
/// password.
fn worker_command(
    exe: &Path,
    args: &RunArgs,
    i: u32,
    (url, own): (&str, Option<u32>),
    out: &Path,
    handoff: &Handoff,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("run")
        .arg(&args.scenario)
        .args(["--shard", &format!("{i}/{}", args.workers)])
        .env("STAMPEDE_TARGET", url)
        .args(["--quiet", "--json", "--out"])
        .arg(out)
        .args(["--interval", &format!("{}ms", args.interval.as_millis())])
        // Its stdin is a pipe this process holds open for the run ([`spawn_all`]): its end
        // tells the worker that this process is gone (killed), and it stops.
        .arg("--stop-with-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Its progress lines the parent passes on (`relay`); its notices it says itself.
    if !args.output.quiet {
        cmd.arg("--progress");
    }
    if let Some(seed) = args.seed {
        cmd.args(["--seed", &seed.to_string()]);
    }
    if let Some(d) = args.duration {
        cmd.args(["--duration", &format!("{}ms", d.as_millis())]);
    }
    if let Some(ca) = &args.target.ca_file {
        cmd.arg("--ca-file").arg(ca);
    }
    if args.target.insecure {
        cmd.arg("--insecure");
    }
    let addrs: Vec<String> = match own {
        Some(count) => source_addrs(i, count).map(|a| a.to_string()).collect(),
        None => args
            .target
            .source_addr
            .iter()
            .map(|a| a.to_string())
            .collect(),
    };
    if !addrs.is_empty() {
        cmd.args(["--source-addr", &addrs.join(",")]);
    }
    // `--no-learn` made the parent skip calibration (`AsRun`): the workers must not
    // calibrate either, each on its own, as they did when it was dropped here.
    match handoff {
        Handoff::AsRun if args.no_learn => {
            cmd.arg("--no-learn");
        }
        Handoff::AsRun => {}
        Handoff::Nothing => {
            cmd.arg("--no-learn");
        }
        Handoff::From(file) => {
            cmd.arg("--learned-from").arg(file);
        }
    }
    cmd
}

/// How long a failed worker's stderr relay gets to reach the end of the pipe.
const RELAY_END: Duration = Duration::from_secs(2);

/// How much of a worker's stderr (its progress lines aside) is kept for the message
/// should it fail: its last lines, where the error is.
const STDERR_KEPT: usize = 64 * 1024;

/// Reads worker `i`'s stderr as it comes. Its progress lines (a plain one every 5 s, its
/// stderr being no terminal) go to ours at once when `show`, marked with the worker, so a
/// CI log follows the run as it follows one process's; their figures are the worker's
/// shard's. The rest is kept, the last [`STDERR_KEPT`] bytes of it, and returned.
fn relay(i: u32, stderr: Option<ChildStderr>, show: bool) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut kept = String::new();
        let Some(stderr) = stderr else {
            return kept;
        };
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match line.strip_prefix(super::progress::PLAIN_PREFIX) {
                Some(figures) if show => {
                    errln!("{}worker {i}: {figures}", super::progress::PLAIN_PREFIX)
                }
                Some(_) => {}
                None => keep_last(&mut kept, &line),
            }
        }
        kept
    })
}

/// Appends `line` to `kept`, then drops its oldest text past [`STDERR_KEPT`] bytes.
fn keep_last(kept: &mut String, line: &str) {
    kept.push_str(line);
    kept.push('\n');
    if let Some(excess) = kept.len().checked_sub(STDERR_KEPT) {
        let cut = (excess..kept.len())
            .find(|&c| kept.is_char_boundary(c))
            .unwrap_or(kept.len());
        kept.drain(..cut);
    }
}

/// Waits for a worker; after a Ctrl-C it gets [`WIND_DOWN`] to write its results (it got
/// the same SIGINT from the terminal), then it is killed.
async fn wait(
    child: &mut tokio::process::Child,
    cancel: &CancellationToken,
) -> Result<std::process::ExitStatus, Error> {
    let done = child.wait();
    tokio::pin!(done);
    tokio::select! {
        out = &mut done => Ok(out?),
        _ = cancel.cancelled() => match tokio::time::timeout(WIND_DOWN, &mut done).await {
            Ok(out) => Ok(out?),
            Err(_) => Err(Error::Usage("a worker did not stop within 10s of Ctrl-C".into())),
        },
    }
}

/// Whether each worker connects from loopback addresses of its own ([`source_addrs`]) to
/// `target`: an IPv4 loopback one (127/8 is all loopback; IPv6 has only ::1), unless the
/// user gave addresses (`given`, `--source-addr`), which every worker then uses.
fn own_addresses(target: std::net::SocketAddr, given: &[IpAddr]) -> bool {
    target.ip().is_loopback() && target.is_ipv4() && given.is_empty()
}

/// Worker `i` connects from 127.0.0.(i + 2), then 127.0.1.(i + 2), … (`count` addresses in
/// all, at most 256): every 127/8 address is loopback on Linux, and `--workers` is at most
/// 64, so no two workers share one.
fn source_addrs(i: u32, count: u32) -> impl Iterator<Item = IpAddr> {
    let host = u8::try_from(i + 2).unwrap_or(u8::MAX);
    (0..count.clamp(1, 256)).map(move |j| {
        IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            u8::try_from(j).unwrap_or(u8::MAX),
            host,
        ))
    })
}

/// The most connections one address carries quickly to one server
/// ([`run::quick_per_address`]; Linux's default range where it cannot be read).
fn quick_ports_per_address() -> u32 {
    run::quick_per_address()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(11_292)
}

/// How many source addresses a worker needs for `share` connections.
fn addresses_per_worker(share: u32) -> u32 {
    share.div_ceil(quick_ports_per_address()).max(1)
}

/// The most connections any of `workers` shards of `plan` runs.
fn busiest_share(plan: &crate::model::Plan, workers: u32) -> u32 {
    let slots = plan.session_slots();
    (0..workers)
        .map(|index| {
            let shard = crate::model::Shard {
                index,
                count: workers,
            };
            slots.iter().filter(|slot| shard.contains(**slot)).count()
        })
        .max()
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// `stampede merge RUN_DIR...`.
pub fn merge_command(args: &MergeArgs) -> Result<u8, Error> {
    // A quoted glob (`'r*/nightly/*'`, or a container's command that no shell expands)
    // stands for what it matches, as `compare` reads it; a path that exists is itself.
    let mut given = Vec::new();
    for path in &args.runs {
        match path.to_str() {
            Some(text) if !path.exists() => {
                given.extend(files::compare::expand(&[text.to_string()]).map_err(Error::usage)?)
            }
            _ => given.push(path.clone()),
        }
    }
    // A folder that holds runs (a scenario's folder, a `--workers` run's `…-workers/`
    // folder) stands for every run in it, as `compare` reads it. Run folders without a
    // `summary.json` (killed runs), found in a folder, matched by a glob or named, are
    // skipped, as `compare` skips them, and said; with no readable run left at all, the
    // merge is an error.
    let mut dirs = Vec::new();
    let mut skipped = Vec::new();
    for path in &given {
        let found = files::find_runs(path).map_err(Error::usage)?;
        let searched = path.is_dir() && !path.join("summary.json").is_file();
        if searched && !found.runs.is_empty() && !args.output.quiet {
            errln!(
                "note: {} holds {}: merging {}",
                path.display(),
                crate::model::words::plural(found.runs.len() as u64, "run"),
                if found.runs.len() == 1 {
                    "it"
                } else {
                    "them all"
                }
            );
        }
        dirs.extend(found.runs);
        skipped.extend(found.skipped);
    }
    if dirs.is_empty() && !skipped.is_empty() {
        let skipped = files::read::FoundRuns {
            runs: Vec::new(),
            skipped,
        }
        .skipped_line();
        return Err(Error::usage(files::MergeError::NothingReadable { skipped }));
    }
    // Said now, under `-q` too, so that a merge that fails below (runs that do not merge,
    // an output folder refused) still says what it left out.
    let said: Vec<String> = skipped
        .iter()
        .map(|d| files::read::skipped_warning(d))
        .collect();
    for line in &said {
        errln!("warning: {line}");
    }
    let runs = dirs
        .iter()
        .map(|p| read_run(p).map_err(Error::usage))
        .collect::<Result<Vec<_>, _>>()?;
    let has_file: Vec<(&files::RunData, bool)> = runs
        .iter()
        .map(|r| (r, r.dir.join("violations.jsonl").is_file()))
        .collect();
    let lost = files::merge::lost_violations_warnings(&has_file);
    for line in &lost {
        errln!("warning: {line}");
    }
    let mut merged = files::merge(&runs).map_err(Error::usage)?;
    if !lost.is_empty() {
        // The verdict's words on the file would no longer be true of it.
        if let Some(hint) = merged.summary.hint.as_mut() {
            *hint = hint.replace(
                crate::oracle::verdict::VIOLATIONS_FILE_HOLDS_ALL,
                "violations.jsonl holds those of the parts that kept theirs (see the warnings)",
            );
        }
    }
    merged.record_said(&[said, lost].concat());
    if let Some(path) = &args.scenario {
        let s = scenario::load_file(path)?;
        // Another scenario's thresholds (or an edited one's) would judge runs they were
        // not written for, in silence.
        if s.hash != merged.summary.scenario_hash {
            return Err(Error::Usage(format!(
                "{} is not the scenario these runs ran (its hash is {}, theirs {}): give \
                 the scenario file as it was when they ran, or leave out --scenario",
                path.display(),
                short_hash(&s.hash),
                short_hash(&merged.summary.scenario_hash)
            )));
        }
        merged.summary.thresholds = files::evaluate(&merged.summary, &s.thresholds);
    } else if !args.output.quiet && !merged.summary.thresholds.is_empty() {
        // Judged from what the parts' summaries recorded, not from a scenario file: said.
        errln!(
            "note: the thresholds the runs were judged by ({}, as their summary.json files \
             record them) are judged again on the merged result; --scenario FILE judges the \
             scenario's own",
            merged.summary.thresholds.len()
        );
    }
    let dir = args.out.clone().unwrap_or_else(|| {
        let stamped = files::results_dir(Path::new("results"), &merged.summary.scenario);
        let mut merged_name = stamped.into_os_string();
        merged_name.push("-merged");
        PathBuf::from(merged_name)
    });
    // Written over a run it merges, the result would replace that run (and the next merge
    // of it would fail, or count it twice).
    let inputs: Vec<PathBuf> = given.iter().chain(&dirs).cloned().collect();
    files::merge::check_output(&dir, &inputs).map_err(Error::usage)?;
    // Nor over anything else: a run (or last night's merge) in the folder would be
    // overwritten, its other files left beside the result's.
    files::merge::check_output_unused(&dir).map_err(Error::usage)?;
    let code = finish(&merged, Some(&dir), args.output.json, None)?;
    // A part that was interrupted makes a partial result, not an interrupted merge: 130
    // would tell a CI job that the merge itself was stopped.
    Ok(match code {
        error::exit::INTERRUPTED => error::exit::INCOMPLETE,
        code => code,
    })
}

/// Writes the merged result, prints it, writes JUnit, and returns the exit code.
fn finish(
    merged: &MergedRun,
    dir: Option<&Path>,
    json: bool,
    junit: Option<&Path>,
) -> Result<u8, Error> {
    if let Some(note) = dir
        .map(|d| files::write_merged(d, merged))
        .transpose()?
        .flatten()
    {
        errln!("warning: {note}");
    }
    for warning in &merged.warnings {
        errln!("warning: {warning}");
    }
    let summary = &merged.summary;
    if json {
        let text = serde_json::to_string_pretty(&summary.written()).map_err(Error::usage)?;
        outln!("{text}")?;
    } else {
        let mut out = super::out::stdout();
        report::render(summary, &mut out)?;
        use std::io::Write;
        if !merged.missing_shards.is_empty() {
            writeln!(
                out,
                "merged       shards {:?} are missing: their connections are not in this result",
                merged.missing_shards
            )?;
        }
        let pooled = summary.merged_from.filter(|n| *n > 1);
        if let (Some(n), files::merge::MergedTime::Summed) = (pooled, merged.time) {
            // Runs that ran one after another have no common span: say what `ran` is.
            writeln!(
                out,
                "merged       {n} whole runs pooled: `ran` is their summed time (the gaps \
                 between them left out), and every rate is over it; no intervals.hlog (their \
                 intervals share no clock: each run's own is in its folder)"
            )?;
        }
        super::results_line(&mut out, dir, summary)?;
    }
    if let Some(path) = junit {
        write_file(path, report::junit(summary).as_bytes())?;
    }
    Ok(error::of_run(summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After Ctrl-C, of three worker folders, one with a summary, one a worker aborted
    /// under load left without (only its interval log) and one a worker stopped while
    /// starting left empty, the first is merged and the other two are said skipped: the
    /// run folder without its summary, and the empty worker's own folder. Otherwise the
    /// folder without its summary is an error. Before, the two were dropped without a
    /// word, or the first of them failed the whole run.
    #[test]
    fn after_ctrl_c_a_worker_folder_without_a_summary_is_skipped_and_named() {
        let base = tempfile::tempdir().unwrap();
        let worker = |i: u32| base.path().join(format!("worker-{i}"));
        let done = worker(0).join("s").join("20260101T000000.000Z");
        let aborted = worker(1).join("s").join("20260101T000000.000Z");
        std::fs::create_dir_all(&done).unwrap();
        std::fs::create_dir_all(&aborted).unwrap();
        std::fs::write(done.join("summary.json"), "{}").unwrap();
        std::fs::write(aborted.join("intervals.hlog"), "#[StartTime: 0]\n").unwrap();
        let found = |i, cut_short| worker_results(&worker(i), "s", cut_short);
        let runs = |runs: &[&PathBuf], skipped: &[&PathBuf]| FoundRuns {
            runs: runs.iter().map(|p| p.to_path_buf()).collect(),
            skipped: skipped.iter().map(|p| p.to_path_buf()).collect(),
        };
        assert_eq!(found(0, true).unwrap(), runs(&[&done], &[]));
        assert_eq!(found(1, true).unwrap(), runs(&[], &[&aborted]));
        assert_eq!(found(2, true).unwrap(), runs(&[], &[&worker(2)]));
        assert_eq!(found(0, false).unwrap(), runs(&[&done], &[]));
        assert!(found(1, false).is_err());
    }

    #[test]
    fn workers_get_distinct_loopback_source_addresses() {
        let addrs: std::collections::BTreeSet<IpAddr> =
            (0..64).flat_map(|i| source_addrs(i, 3)).collect();
        assert_eq!(addrs.len(), 64 * 3);
        assert!(addrs.iter().all(|a| a.is_loopback()));
        let first: Vec<IpAddr> = source_addrs(0, 2).collect();
        let v4 = |c, d| IpAddr::V4(Ipv4Addr::new(127, 0, c, d));
        assert_eq!(first, [v4(0, 2), v4(1, 2)]);
        assert_eq!(source_addrs(5, 0).collect::<Vec<_>>(), [v4(0, 7)]);
        assert_eq!(source_addrs(0, 10_000).count(), 256);
    }

    /// A worker whose share is more than one address carries quickly gets more addresses,
    /// so none of them reaches the ports Linux searches one by one.
    #[test]
    fn a_worker_gets_an_address_per_share_of_ports() {
        let quick = quick_ports_per_address();
        assert!((1_000..=60_000).contains(&quick), "{quick}");
        assert_eq!(addresses_per_worker(0), 1);
        assert_eq!(addresses_per_worker(quick), 1);
        assert_eq!(addresses_per_worker(quick + 1), 2);
        assert_eq!(addresses_per_worker(u32::MAX), u32::MAX.div_ceil(quick));
        let argv = worker_argv_from(&run_args(&[]), Some(2), &Handoff::AsRun);
        assert!(
            argv.windows(2)
                .any(|w| w == ["--source-addr", "127.0.0.2,127.0.1.2"]),
            "{argv:?}"
        );
    }

    /// A worker killed by a signal is named with its shard and the signal; one that failed
    /// saying nothing gets no empty cause after a colon; a run whose every worker was
    /// killed is stampede's failure (3), not bad usage (2).
    #[cfg(unix)]
    #[test]
    fn a_lost_worker_is_named_with_its_signal_and_a_silent_failure_has_no_empty_cause() {
        use std::os::unix::process::ExitStatusExt;
        let killed = std::process::ExitStatus::from_raw(9);
        assert_eq!(killed_by(&killed), "9 (SIGKILL)");
        let lost = Lost {
            worker: 0,
            workers: 2,
            signal: killed_by(&killed),
        };
        assert_eq!(
            lost.to_string(),
            "worker 0 (shard 0/2) was killed by signal 9 (SIGKILL) before it wrote its results"
        );
        let usage = std::process::ExitStatus::from_raw(2 << 8);
        assert_eq!(
            failed(1, &usage, " \n"),
            "worker 1 failed (exit status: 2) and said nothing on stderr"
        );
        assert_eq!(
            failed(1, &usage, "error: no such file\n"),
            "worker 1 failed (exit status: 2): error: no such file"
        );
        let every = Error::from(EveryWorkerLost(vec![
            lost.clone(),
            Lost { worker: 1, ..lost },
        ]));
        assert_eq!(every.exit_code(), error::exit::INTERNAL);
        assert!(
            every.to_string().contains("(shard 0/2) was killed by signal 9 (SIGKILL) before it wrote its results; worker 1 (shard 1/2)"),
            "{every}"
        );
    }

    #[test]
    fn a_workers_kept_stderr_is_its_last_bytes_on_char_boundaries() {
        let mut kept = String::new();
        for _ in 0..STDERR_KEPT {
            keep_last(&mut kept, "é");
        }
        keep_last(&mut kept, "error: the end");
        assert!(kept.len() <= STDERR_KEPT, "{}", kept.len());
        assert!(kept.ends_with("error: the end\n"));
    }

    #[test]
    fn the_busiest_shard_sets_the_share() {
        let text = "name = \"s\"\nduration = \"5s\"\n[[group]]\nname = \"g\"\nusers = 10\nsteps = [{ think = \"fixed(1s)\" }]\n";
        let s = crate::scenario::load_str(text, "s.toml").expect("a scenario");
        let plan = crate::plan::build(&s, 1);
        assert_eq!(busiest_share(&plan, 1), 10);
        assert_eq!(busiest_share(&plan, 3), 4);
        assert_eq!(busiest_share(&plan, 20), 1);
    }

    #[test]
    fn a_worker_gets_the_target_in_its_environment_not_on_its_command_line() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["stampede", "run", "s.toml", "--workers", "3"])
            .expect("valid arguments");
        let crate::cli::Command::Run(args) = cli.command else {
            panic!("a run");
        };
        let url = "ws://user:hunter2@127.0.0.1:9/ws";
        let cmd = worker_command(
            Path::new("stampede"),
            &args,
            1,
            (url, Some(1)),
            Path::new("o"),
            &Handoff::AsRun,
        );
        let cmd = cmd.as_std();
        let argv: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(argv.iter().all(|a| !a.contains("hunter2")), "{argv:?}");
        assert!(argv.windows(2).any(|w| w == ["--shard", "1/3"]), "{argv:?}");
        // It stops when this process is gone (its stdin's end); a user's own `run --shard`
        // does not read its stdin.
        assert!(argv.iter().any(|a| a == "--stop-with-stdin"), "{argv:?}");
        let own = crate::cli::Cli::try_parse_from(["stampede", "run", "s.toml", "--shard", "1/3"])
            .expect("valid arguments");
        assert!(!own.command.stops_with_stdin());
        let worker = crate::cli::Cli::try_parse_from(
            std::iter::once("stampede").chain(argv.iter().map(String::as_str)),
        )
        .expect("a worker's arguments parse");
        assert!(worker.command.stops_with_stdin());
        let env: Vec<_> = cmd.get_envs().collect();
        assert!(env.contains(&(
            std::ffi::OsStr::new("STAMPEDE_TARGET"),
            Some(std::ffi::OsStr::new(url))
        )));
    }

    /// `run ARGS --workers 2` parsed.
    fn run_args(args: &[&str]) -> RunArgs {
        use clap::Parser;
        let mut argv = vec!["stampede", "run", "s.toml", "--workers", "2"];
        argv.extend(args);
        let cli = crate::cli::Cli::try_parse_from(argv).expect("valid arguments");
        let crate::cli::Command::Run(args) = cli.command else {
            panic!("a run");
        };
        args
    }

    /// Worker 0's argv for `args`, against a target that is loopback or not.
    fn worker_argv(args: &RunArgs, loopback: bool, handoff: &Handoff) -> Vec<String> {
        worker_argv_from(args, loopback.then_some(1), handoff)
    }

    /// Worker 0's argv for `args`, from that many loopback addresses of its own, or none.
    fn worker_argv_from(args: &RunArgs, loopback: Option<u32>, handoff: &Handoff) -> Vec<String> {
        let url = "ws://127.0.0.1:9/ws";
        let cmd = worker_command(
            Path::new("stampede"),
            args,
            0,
            (url, loopback),
            Path::new("o"),
            handoff,
        );
        cmd.as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// `--no-learn` reaches the workers: the parent skipped calibration for it, and the
    /// workers, not told, each calibrated on their own (`learned identity …` twice).
    #[test]
    fn no_learn_reaches_every_worker() {
        let argv = worker_argv(&run_args(&["--no-learn"]), true, &Handoff::AsRun);
        assert_eq!(
            argv.iter().filter(|a| *a == "--no-learn").count(),
            1,
            "{argv:?}"
        );
        let argv = worker_argv(&run_args(&[]), true, &Handoff::AsRun);
        assert!(!argv.iter().any(|a| a == "--no-learn"), "{argv:?}");
        let argv = worker_argv(&run_args(&[]), true, &Handoff::Nothing);
        assert!(argv.iter().any(|a| a == "--no-learn"), "{argv:?}");
        let file = Handoff::From(PathBuf::from("l.json"));
        let argv = worker_argv(&run_args(&[]), true, &file);
        assert!(
            argv.windows(2).any(|w| w == ["--learned-from", "l.json"]),
            "{argv:?}"
        );
    }

    /// Workers get loopback addresses of their own against an IPv4 loopback target only,
    /// and only when the user gave none: an IPv6 loopback target is out of 127/8's reach
    /// (every worker failed to connect), and given addresses are the user's choice.
    #[test]
    fn workers_get_addresses_of_their_own_against_ipv4_loopback_only() {
        let at = |s: &str| s.parse::<std::net::SocketAddr>().expect("an address");
        assert!(own_addresses(at("127.0.0.1:9"), &[]));
        assert!(!own_addresses(at("[::1]:9"), &[]));
        assert!(!own_addresses(at("10.1.2.3:9"), &[]));
        let given = [IpAddr::V4(Ipv4Addr::new(127, 0, 5, 5))];
        assert!(!own_addresses(at("127.0.0.1:9"), &given));
    }

    /// `--source-addr` takes a comma-separated list, spaces around each address ignored;
    /// an entry that is no address is named.
    #[test]
    fn source_addr_takes_a_list() {
        let args = run_args(&["--source-addr", "127.0.0.2, 127.0.1.2"]);
        assert_eq!(
            args.target.source_addr,
            [
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
                IpAddr::V4(Ipv4Addr::new(127, 0, 1, 2))
            ]
        );
        use clap::Parser;
        let argv = ["stampede", "run", "s.toml", "--source-addr", "127.0.0.2,x"];
        let err = crate::cli::Cli::try_parse_from(argv).expect_err("x is no address");
        assert!(err.to_string().contains("found \"x\""), "{err}");
    }

    /// `--source-addr` reaches the workers when they have no addresses of their own.
    #[test]
    fn source_addr_reaches_the_workers_of_a_remote_target() {
        let args = run_args(&["--source-addr", "10.1.2.3"]);
        let argv = worker_argv(&args, false, &Handoff::AsRun);
        assert!(
            argv.windows(2).any(|w| w == ["--source-addr", "10.1.2.3"]),
            "{argv:?}"
        );
        let argv = worker_argv(&args, true, &Handoff::AsRun);
        assert!(
            argv.windows(2).any(|w| w == ["--source-addr", "127.0.0.2"]),
            "{argv:?}"
        );
        assert_eq!(
            argv.iter().filter(|a| *a == "--source-addr").count(),
            1,
            "{argv:?}"
        );
    }
}
