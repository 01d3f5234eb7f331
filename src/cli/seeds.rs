//! `run --times K` (formerly `--seeds K`): the same scenario under K seeds, and how often each oracle broke.
//! A race is probabilistic; its reproduction rate is the figure that matters.
//!
//! Every seed's run is judged like a single run; the command's verdict is the worst one
//! (see [`worst`]), so `--json`, `--junit`, thresholds, an unusable target and Ctrl-C
//! mean the same here as for one run.

use super::{error, exit, watched_run, Chatter, Error, RunArgs};
use crate::model::words::plural;
use crate::model::{OracleKind, StopReason, Verdict};
use crate::report;
use crate::results::Summary;
use crate::scenario;
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

pub async fn run_seeds(args: RunArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let file = scenario::ScenarioFile::read(&args.scenario)?;
    let s = file.to_run()?;
    if !args.output.quiet {
        super::warn_expiring_before_load(&file, &s);
    }
    let first = s.seed_or(args.seed);
    let mut summaries: Vec<Summary> = Vec::new();
    for seed in first..first.saturating_add(u64::from(args.times)) {
        if cancel.is_cancelled() {
            break;
        }
        let opts = args.options(Some(seed));
        let run = watched_run(&s, &opts, Chatter::of(&args), cancel.child_token()).await;
        let outcome = match run.and_then(|o| o.saved().map_err(Error::from)) {
            Ok(outcome) => outcome,
            // Ctrl-C before this seed's run started: the seeds before it ran, and are
            // what the command says, as when Ctrl-C stops one under way.
            Err(Error::Run(crate::run::RunError::Interrupted)) if !summaries.is_empty() => break,
            Err(e) => return Err(e),
        };
        let summary = outcome.results.summary;
        if !args.output.quiet {
            errln!("seed {seed}: {}", seed_line(&summary));
        }
        let stop = !summary.verdict.exercised() || summary.stopped == StopReason::Interrupted;
        summaries.push(summary);
        // An unusable target stays unusable: more seeds would only repeat it.
        if stop {
            break;
        }
    }
    let broke = broke_by_oracle(&summaries);
    if args.output.json {
        let json = serde_json::json!({
            "scenario": s.name,
            "first_seed": first,
            "seeds_run": summaries.len(),
            "seeds_planned": args.times,
            "interrupted": cancel.is_cancelled(),
            "broke": broke.iter().map(|(o, n)| (o.name(), n)).collect::<BTreeMap<_, _>>(),
            "verdict": worst(&summaries).map(Verdict::name),
            // As each run's own `passed`: what the exit code says, for `jq -e .passed`.
            "passed": exit_code(&summaries, cancel.is_cancelled()) == 0,
            "runs": summaries.iter().map(Summary::written).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&json).map_err(Error::usage)?;
        outln!("{text}")?;
    } else {
        render(&s.name, first, &summaries, &broke)?;
        if cancel.is_cancelled() {
            // The seeds above are what ran: the rest of the K never did.
            outln!(
                "  interrupted (Ctrl-C) after {} of {}: the rest never ran",
                plural(summaries.len() as u64, "seed"),
                args.times
            )?;
        } else if let Some(line) = stopped_early(&summaries, args.times) {
            outln!("  {line}")?;
        }
    }
    if let Some(path) = &args.junit {
        super::write_file(path, report::junit_runs(&summaries).as_bytes())?;
    }
    Ok(exit_code(&summaries, cancel.is_cancelled()))
}

/// A seed's progress line: its violations and verdict, "not judged" where the run could
/// not exercise the target (its violations are then no findings), and a clean run's
/// breached thresholds beside its verdict.
fn seed_line(s: &Summary) -> String {
    let verdict = s.verdict.name();
    if !s.verdict.exercised() {
        return format!("not judged ({verdict})");
    }
    let breached = if s.thresholds_met() {
        ""
    } else {
        ", thresholds breached"
    };
    format!(
        "{} ({verdict}{breached})",
        plural(s.violations.total, "violation")
    )
}

/// Why fewer seeds ran than `planned`: the last one could not judge the target (a wrong
/// secret, a closed port), and every later seed would say the same. `None` when all ran.
fn stopped_early(summaries: &[Summary], planned: u32) -> Option<String> {
    let ran = summaries.len();
    if ran >= planned as usize {
        return None;
    }
    let last = summaries.last()?;
    Some(format!(
        "stopped after {} of {planned}: seed {} was {}, and the rest would judge no more",
        plural(ran as u64, "seed"),
        last.seed,
        last.verdict.name()
    ))
}

fn broke_by_oracle(summaries: &[Summary]) -> BTreeMap<OracleKind, u32> {
    let mut broke: BTreeMap<OracleKind, u32> = BTreeMap::new();
    for summary in summaries.iter().filter(|s| s.verdict.exercised()) {
        for (oracle, n) in &summary.violations.by_oracle {
            if *n > 0 {
                *broke.entry(*oracle).or_default() += 1;
            }
        }
    }
    broke
}

fn render(
    name: &str,
    first: u64,
    summaries: &[Summary],
    broke: &BTreeMap<OracleKind, u32>,
) -> std::io::Result<()> {
    let runs = summaries.len();
    outln!("{name} under {} from {first}:", plural(runs as u64, "seed"))?;
    if let (true, Some(line)) = (broke.is_empty(), nothing_broke(summaries)) {
        outln!("  {line}")?;
    }
    for (oracle, n) in broke {
        outln!(
            "  {:<20} broke in {n}/{runs} seeds ({:.0}%)",
            oracle.name(),
            f64::from(*n) * 100.0 / (runs.max(1) as f64)
        )?;
    }
    let mut by_verdict: BTreeMap<&str, usize> = BTreeMap::new();
    for s in summaries {
        *by_verdict.entry(s.verdict.name()).or_default() += 1;
    }
    for (verdict, n) in by_verdict.iter().filter(|(v, _)| **v != "clean") {
        outln!("  {verdict} in {n}/{runs} seeds")?;
    }
    let breached = summaries.iter().filter(|s| !s.thresholds_met()).count();
    if breached > 0 {
        outln!("  thresholds breached in {breached}/{runs} seeds")?;
    }
    if let Some(s) = summaries
        .iter()
        .find(|s| s.hint.is_some() && !s.verdict.exercised())
    {
        outln!("  {}", s.hint.as_deref().unwrap_or_default())?;
    }
    Ok(())
}

/// What the seeds say when no oracle broke in any of them: that, of the seeds that
/// exercised the target. `None` when none did (a wrong secret, a closed port): the verdict
/// lines and the hint below say why, and "no oracle broke" would read as a pass.
fn nothing_broke(summaries: &[Summary]) -> Option<String> {
    let exercised = summaries.iter().filter(|s| s.verdict.exercised()).count();
    match exercised {
        0 => None,
        n if n == summaries.len() => Some("no oracle broke".into()),
        n => Some(format!(
            "no oracle broke in the {} that exercised the target",
            plural(n as u64, "seed")
        )),
    }
}

/// The verdict that decides the command's exit: a run that could not judge the target
/// first (unusable, misconfigured, client-limited), then violations, incomplete,
/// inconclusive, clean.
pub fn worst(summaries: &[Summary]) -> Option<Verdict> {
    Verdict::worst(summaries.iter().map(|s| s.verdict))
}

/// Ctrl-C wins; then the worst run's code (a breached threshold counts as for one run).
fn exit_code(summaries: &[Summary], interrupted: bool) -> u8 {
    if interrupted
        || summaries
            .iter()
            .any(|s| s.stopped == StopReason::Interrupted)
    {
        return exit::INTERRUPTED;
    }
    let Some(verdict) = worst(summaries) else {
        return exit::CLEAN;
    };
    if verdict == Verdict::Clean && summaries.iter().any(|s| !s.thresholds_met()) {
        return exit::VIOLATIONS;
    }
    match summaries.iter().find(|s| s.verdict == verdict) {
        Some(s) => error::of_run(s),
        None => error::of_verdict(verdict),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_oracle_broke_is_said_only_of_seeds_that_exercised_the_target() {
        let of = |verdicts: &[Verdict]| -> Vec<Summary> {
            verdicts
                .iter()
                .map(|v| Summary {
                    verdict: *v,
                    ..crate::results::fixture::summary()
                })
                .collect()
        };
        assert_eq!(
            nothing_broke(&of(&[Verdict::Clean, Verdict::Clean])).as_deref(),
            Some("no oracle broke")
        );
        assert_eq!(nothing_broke(&of(&[Verdict::AuthMisconfigured; 3])), None);
        assert_eq!(
            nothing_broke(&of(&[Verdict::Clean, Verdict::TargetUnusable])).as_deref(),
            Some("no oracle broke in the 1 seed that exercised the target")
        );
    }

    /// `--times 3` that stopped at its first seed (a wrong secret) says so, and which seed
    /// stopped it; all three run, nothing is said.
    #[test]
    fn seeds_cut_short_by_an_unjudged_one_say_how_many_of_how_many_ran() {
        let misconfigured = Summary {
            verdict: Verdict::AuthMisconfigured,
            seed: 4,
            ..crate::results::fixture::summary()
        };
        assert_eq!(
            stopped_early(std::slice::from_ref(&misconfigured), 3).as_deref(),
            Some(
                "stopped after 1 seed of 3: seed 4 was auth_misconfigured, and the rest would \
                 judge no more"
            )
        );
        let all = vec![crate::results::fixture::summary(); 3];
        assert_eq!(stopped_early(&all, 3), None);
    }

    /// A seed that could not judge the target is "not judged", not its oracles' counts; a
    /// clean seed with a breached threshold says so.
    #[test]
    fn a_seeds_line_says_not_judged_and_breached_thresholds() {
        let misconfigured = Summary {
            verdict: Verdict::AuthMisconfigured,
            ..crate::results::fixture::summary()
        };
        assert_eq!(seed_line(&misconfigured), "not judged (auth_misconfigured)");
        let mut clean = Summary {
            verdict: Verdict::Clean,
            ..crate::results::fixture::summary()
        };
        clean.violations = Default::default();
        assert_eq!(seed_line(&clean), "0 violations (clean)");
        clean.thresholds = vec![crate::results::fixture::breached_threshold()];
        assert_eq!(
            seed_line(&clean),
            "0 violations (clean, thresholds breached)"
        );
    }
}
