//! `hunt`, `replay` and `shrink`: finding a race, reproducing it on demand, minimising it.

use crate::auth;
use crate::error::{exit, Error};
use crate::hunt::{self, HuntOptions, Repro, Runner, ShrinkOptions};
use crate::plan::Plan;
use crate::run::RunOptions;
use crate::scenario::{self, parse_duration};
use crate::swarm::TlsOptions;
use crate::target::{Bug, ServerHandle};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where the plans run: a URL, or the embedded reference server (optionally with a bug).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Target URL (ws:// or wss://).
    #[arg(long, env = "STAMPEDE_TARGET", conflicts_with = "bug")]
    pub target: Option<String>,
    /// Without --target: run against the embedded reference server with this planted bug.
    #[arg(long)]
    pub bug: Option<Bug>,
    /// The planted bug's race window.
    #[arg(long, value_parser = parse_duration)]
    pub bug_window: Option<Duration>,
    /// Extra CA certificates (PEM) to trust for wss://.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate (test servers only).
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct HuntArgs {
    pub scenario: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Wall-clock budget for the whole hunt.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub budget: Duration,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Replays used to measure a find's reproduction rate.
    #[arg(long, default_value_t = 10)]
    pub confirm: u32,
    /// Base directory for repro files.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    pub repro: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// How many times to replay.
    #[arg(long, default_value_t = 10)]
    pub times: u32,
}

#[derive(Debug, Args)]
pub struct ShrinkArgs {
    pub repro: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Runs per candidate.
    #[arg(long, default_value_t = 10)]
    pub times: u32,
    /// Wall-clock budget for shrinking.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub budget: Duration,
    /// Where to write the minimal repro (default: next to the input, `-min` suffix).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// A runner for `plan`'s auth against the chosen target, and the server it started.
async fn runner(
    plan: &Plan,
    args: &TargetArgs,
    cancel: CancellationToken,
) -> Result<(Runner, Option<ServerHandle>), Error> {
    let (mut runner, server) = match &args.target {
        Some(url) => {
            let keys = auth::resolve_keys(&plan.auth)?;
            let opts = RunOptions::default();
            (
                Runner {
                    url: url.clone(),
                    keys,
                    opts,
                    cancel,
                },
                None,
            )
        }
        None => {
            let (runner, server) =
                Runner::embedded(plan, args.bug, args.bug_window, cancel).await?;
            let bug = args
                .bug
                .map(|b| format!(" with planted bug {b}"))
                .unwrap_or_default();
            eprintln!(
                "running against the built-in reference server{bug} at {}",
                server.url()
            );
            (runner, Some(server))
        }
    };
    runner.opts.tls = TlsOptions {
        ca_file: args.ca_file.clone(),
        insecure: args.insecure,
    };
    Ok((runner, server))
}

pub async fn hunt_command(args: HuntArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let s = scenario::load_file(&args.scenario)?;
    let seed = args.seed.unwrap_or(s.seed);
    let probe = crate::plan::build(&s, seed);
    let (runner, server) = runner(&probe, &args.target, cancel).await?;
    let opts = HuntOptions {
        budget: args.budget,
        seed,
        out: args.out,
        confirm: args.confirm,
    };
    eprintln!(
        "hunting {} (seed {seed}, budget {:?}, up to {} rounds)",
        s.name, args.budget, s.hunt.rounds
    );
    let mut print = |p: &hunt::Progress| {
        eprintln!(
            "round {:>4}  {:>5} connections  {} violations  {:.1}s",
            p.round,
            p.connections,
            p.violations,
            p.elapsed.as_secs_f64()
        );
    };
    let outcome = hunt::hunt(&s, &runner, &opts, &mut print).await;
    shutdown(server).await;
    let outcome = outcome?;
    match outcome.found {
        Some(found) => {
            let r = &found.repro;
            outln!(
                "found {} violation in round {} (seed {}) after {:.1}s, {} rounds",
                r.oracle.name(),
                r.round,
                r.seed,
                outcome.elapsed.as_secs_f64(),
                outcome.rounds
            )?;
            if let Some(v) = r.evidence.first() {
                outln!(
                    "  conn {} jti {}: expected {}; seen {}",
                    v.conn,
                    v.jti,
                    v.expected,
                    v.seen
                )?;
            }
            outln!(
                "  reproduced {} on replay; {} connections",
                found.rate,
                r.size()
            )?;
            outln!("repro        {}", found.path.display())?;
            Ok(exit::VIOLATIONS)
        }
        None => {
            outln!(
                "no violation in {} rounds ({:.1}s)",
                outcome.rounds,
                outcome.elapsed.as_secs_f64()
            )?;
            Ok(exit::CLEAN)
        }
    }
}

pub async fn replay_command(args: ReplayArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let repro = Repro::load(&args.repro)?;
    let (runner, server) = runner(&repro.plan, &args.target, cancel).await?;
    let rate = runner
        .rate(&repro.plan, repro.oracle, args.times, None)
        .await;
    shutdown(server).await;
    let rate = rate?;
    outln!(
        "{}: reproduced the {} violation {rate} times ({} connections)",
        args.repro.display(),
        repro.oracle.name(),
        repro.size()
    )?;
    Ok(if rate.reproduced > 0 {
        exit::VIOLATIONS
    } else {
        exit::CLEAN
    })
}

pub async fn shrink_command(args: ShrinkArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let repro = Repro::load(&args.repro)?;
    let (runner, server) = runner(&repro.plan, &args.target, cancel).await?;
    let opts = ShrinkOptions {
        times: args.times,
        budget: args.budget,
        ..Default::default()
    };
    let outcome = hunt::shrink(&repro, &runner, opts).await;
    shutdown(server).await;
    let outcome = outcome?;
    let output = args
        .output
        .unwrap_or_else(|| args.repro.with_extension("min.json"));
    outcome.repro.save_as(&output)?;
    let ((n0, r0), (n1, r1)) = (outcome.before, outcome.after);
    outln!(
        "shrunk {} violation: {n0} → {n1} connections; rate {r0} → {r1}; {} candidates tried",
        repro.oracle.name(),
        outcome.candidates
    )?;
    outln!("minimal repro {}", output.display())?;
    Ok(if r1.reproduced > 0 {
        exit::VIOLATIONS
    } else {
        exit::CLEAN
    })
}

async fn shutdown(server: Option<ServerHandle>) {
    if let Some(s) = server {
        s.shutdown().await;
    }
}
