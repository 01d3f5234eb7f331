//! `run --seeds K`: the same scenario under K seeds, and how often each oracle broke.
//! A race is probabilistic; its reproduction rate is the figure that matters.

use super::RunArgs;
use crate::error::{exit, Error};
use crate::run::{self, RunOptions};
use crate::scenario;
use crate::swarm::TlsOptions;
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

pub async fn run_seeds(args: RunArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let s = scenario::load_file(&args.scenario)?;
    let first = args.seed.unwrap_or(s.seed);
    let tls = TlsOptions {
        ca_file: args.ca_file.clone(),
        insecure: args.insecure,
    };
    let mut broke: BTreeMap<String, u32> = BTreeMap::new();
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
            progress: !args.quiet,
            quiet: args.quiet,
        };
        let outcome = run::run(&s, &opts, cancel.child_token()).await?;
        let summary = &outcome.results.summary;
        runs += 1;
        inconclusive += u32::from(summary.verdict == "inconclusive");
        for (oracle, n) in &summary.violations.by_oracle {
            if *n > 0 {
                *broke.entry(oracle.clone()).or_default() += 1;
            }
        }
        let found: Vec<&String> = summary.violations.by_oracle.keys().collect();
        eprintln!(
            "seed {seed}: {} violations {found:?} ({})",
            summary.violations.total, summary.verdict
        );
    }
    outln!("{} under {runs} seeds from {first}:", s.name)?;
    if broke.is_empty() {
        outln!("  no oracle broke")?;
    }
    for (oracle, n) in &broke {
        outln!(
            "  {oracle:<20} broke in {n}/{runs} seeds ({:.0}%)",
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
