//! `hunt`, `replay` and `shrink`: finding a race, reproducing it on demand, minimising it.

use super::{exit, Error};
use crate::hunt::{self, HuntOptions, Repro, Runner, ShrinkOptions};
use crate::model::Plan;
use crate::reference::Bug;
use crate::run::{RunOptions, Target};
use crate::scenario::{self, parse_duration};
use crate::swarm::TlsOptions;
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

impl TargetArgs {
    /// The target these flags name: `--target`, else `fallback` (the scenario's), else
    /// the reference server with `--bug` planted.
    fn choose(&self, fallback: Option<&str>) -> Target {
        match Target::choose(self.target.clone(), fallback) {
            Target::Reference { .. } => Target::Reference {
                bug: self.bug,
                window: self.bug_window,
            },
            url => url,
        }
    }

    fn tls(&self) -> TlsOptions {
        TlsOptions {
            ca_file: self.ca_file.clone(),
            insecure: self.insecure,
        }
    }
}

/// A runner for `plan`'s auth against `target`; says where it runs.
async fn runner(
    plan: &Plan,
    target: &Target,
    args: &TargetArgs,
    cancel: CancellationToken,
) -> Result<Runner, Error> {
    let opts = RunOptions {
        tls: args.tls(),
        ..RunOptions::default()
    };
    let runner = Runner::start(target, plan, opts, cancel).await?;
    match target {
        Target::Reference { bug, .. } => {
            let bug = bug
                .map(|b| format!(" with planted bug {b}"))
                .unwrap_or_default();
            eprintln!(
                "running against the built-in reference server{bug} at {}",
                runner.url()
            );
        }
        Target::Url(url) => eprintln!("running against {url}"),
    }
    Ok(runner)
}

pub async fn hunt_command(args: HuntArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let s = scenario::load_file(&args.scenario)?;
    let seed = s.seed_or(args.seed);
    let probe = crate::plan::build(&s, seed);
    let target = args.target.choose(s.target.as_deref());
    let runner = runner(&probe, &target, &args.target, cancel).await?;
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
    let interrupted = runner.cancel.is_cancelled();
    runner.close().await;
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
                "  confirmed {} on replay; {} connections",
                found.rate,
                r.size()
            )?;
            outln!("repro        {}", found.path.display())?;
            Ok(if interrupted {
                exit::INTERRUPTED
            } else {
                exit::VIOLATIONS
            })
        }
        None => {
            let why = match outcome.short {
                Some(hunt::Short::Budget) => "; the budget ran out",
                Some(hunt::Short::Interrupted) => "; interrupted",
                None => "",
            };
            outln!(
                "no violation in {} rounds ({:.1}s{why})",
                outcome.rounds,
                outcome.elapsed.as_secs_f64()
            )?;
            Ok(if interrupted {
                exit::INTERRUPTED
            } else {
                exit::CLEAN
            })
        }
    }
}

pub async fn replay_command(args: ReplayArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let repro = Repro::load(&args.repro)?;
    let target = args.target.choose(None);
    let runner = runner(&repro.plan, &target, &args.target, cancel).await?;
    let rate = runner
        .rate(&repro.plan, repro.oracle, args.times, None)
        .await;
    let interrupted = runner.cancel.is_cancelled();
    runner.close().await;
    let rate = rate?;
    outln!(
        "{}: reproduced the {} violation {rate} times ({} connections)",
        args.repro.display(),
        repro.oracle.name(),
        repro.size()
    )?;
    Ok(if interrupted {
        exit::INTERRUPTED
    } else if rate.reproduced > 0 {
        exit::VIOLATIONS
    } else {
        exit::CLEAN
    })
}

pub async fn shrink_command(args: ShrinkArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let repro = Repro::load(&args.repro)?;
    let target = args.target.choose(None);
    let runner = runner(&repro.plan, &target, &args.target, cancel).await?;
    let opts = ShrinkOptions {
        times: args.times,
        budget: args.budget,
        ..Default::default()
    };
    let outcome = hunt::shrink(&repro, &runner, opts).await;
    let interrupted = runner.cancel.is_cancelled();
    runner.close().await;
    let outcome = outcome?;
    let output = args
        .output
        .unwrap_or_else(|| args.repro.with_extension("min.json"));
    outcome.repro.save_as(&output)?;
    let ((n0, r0), (n1, r1)) = (outcome.before, outcome.after);
    let why = match outcome.short {
        Some(hunt::Short::Budget) => " (the budget ran out)",
        Some(hunt::Short::Interrupted) => " (interrupted)",
        None => "",
    };
    outln!(
        "shrunk {} violation: {n0} → {n1} connections; rate {r0} → {r1}; {} candidates tried{why}",
        repro.oracle.name(),
        outcome.candidates
    )?;
    outln!("minimal repro {}", output.display())?;
    Ok(if interrupted {
        exit::INTERRUPTED
    } else if r1.reproduced > 0 {
        exit::VIOLATIONS
    } else {
        exit::CLEAN
    })
}
