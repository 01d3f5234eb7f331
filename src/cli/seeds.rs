//! `run --seeds K`: the same scenario under K seeds, and how often each oracle broke.
//! A race is probabilistic; its reproduction rate is the figure that matters.

use super::RunArgs;
use super::{exit, watched_run, Error};
use crate::model::{OracleKind, Verdict};
use crate::run::RunOptions;
use crate::scenario;
use crate::swarm::TlsOptions;
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

pub async fn run_seeds(args: RunArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let s = scenario::load_file(&args.scenario)?;
    let first = s.seed_or(args.seed);
    let tls = TlsOptions {
        ca_file: args.ca_file.clone(),
        insecure: args.insecure,
    };
    let mut broke: BTreeMap<OracleKind, u32> = BTreeMap::new();
    let mut runs = 0u32;
    let mut inconclusive = 0u32;
    for seed in first..first.saturating_add(u64::from(args.seeds)) {
        if cancel.is_cancelled() {
            break;
        }
        let opts = RunOptions {
            target: args.target.clone(),
            seed: Some(seed),
            duration: args.duration,
            out: (!args.no_results).then(|| args.out.clone()),
            tls: tls.clone(),
            interval: args.interval,
        };
        let outcome = watched_run(&s, &opts, args.quiet, cancel.child_token()).await?;
        let summary = &outcome.results.summary;
        runs += 1;
        inconclusive += u32::from(summary.verdict == Verdict::Inconclusive);
        for (oracle, n) in &summary.violations.by_oracle {
            if *n > 0 {
                *broke.entry(*oracle).or_default() += 1;
            }
        }
        let found: Vec<&str> = summary
            .violations
            .by_oracle
            .keys()
            .map(|o| o.name())
            .collect();
        eprintln!(
            "seed {seed}: {} violations {found:?} ({})",
            summary.violations.total,
            summary.verdict.name()
        );
    }
    outln!("{} under {runs} seeds from {first}:", s.name)?;
    if broke.is_empty() {
        outln!("  no oracle broke")?;
    }
    for (oracle, n) in &broke {
        outln!(
            "  {:<20} broke in {n}/{runs} seeds ({:.0}%)",
            oracle.name(),
            f64::from(*n) * 100.0 / f64::from(runs.max(1))
        )?;
    }
    if inconclusive > 0 {
        outln!(
            "  inconclusive in {inconclusive}/{runs} seeds (the race window was never exercised)"
        )?;
    }
    Ok(if broke.is_empty() {
        exit::CLEAN
    } else {
        exit::VIOLATIONS
    })
}
