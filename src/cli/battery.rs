//! `stampede hunt BATTERY.toml`: a `[battery]` file runs every race family in turn.
//! Progress goes to stderr (per family: what it tries, each level, each round); the
//! per-family results and the end summary go to stdout.

use super::hunt::{
    calibration_json, describe, hunt_runner, learned_lines, round_connections, round_result,
    HuntArgs,
};
use super::{exit, Error};
use crate::hunt::battery::{
    self, BatteryError, BatteryOptions, BatteryOutcome, Event, FamilyEnd, FamilyReport, ProbeHooks,
};
use crate::hunt::{RoundsShed, Short};
use crate::model::words::plural;
use crate::model::Verdict;
use crate::scenario::Battery;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

impl From<BatteryError> for Error {
    fn from(err: BatteryError) -> Self {
        match err {
            BatteryError::Hunt(e) => Error::Hunt(e),
            BatteryError::Scenario(e) => Error::Scenario(e),
        }
    }
}

/// Runs `battery` (loaded from `args.scenario`) as `hunt` would run a scenario.
pub(super) async fn battery_command(
    args: HuntArgs,
    battery: Battery,
    cancel: CancellationToken,
) -> Result<u8, Error> {
    // The budget runs from here: calibration and every family.
    let started = Instant::now();
    let budget_end = started + args.budget;
    let seed = battery.probe.seed_or(args.seed);
    let hooks = ProbeHooks::new(&battery, seed);
    let target = args.target.choose(battery.probe.target.as_deref());
    let quiet = args.output.quiet;
    let learn = (!args.no_learn).then(|| Some(crate::hunt::calibration_end(started, args.budget)));
    let calibration = battery::calibration_plan(&battery, seed);
    let runner = hunt_runner(&calibration, &target, &args, learn, cancel).await?;
    if learn.is_some() && !quiet {
        learned_lines(&runner);
    }
    let against = describe(&runner);
    let opts = BatteryOptions {
        budget: budget_end.saturating_duration_since(Instant::now()),
        seed,
        out: args.out.clone(),
        confirm: args.times,
    };
    if !quiet {
        errln!(
            "battery {} (seed {seed}, budget {:?}): {}",
            battery.probe.name,
            args.budget,
            battery
                .families
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let json = args.output.json;
    let mut print = |event: &Event<'_>| {
        if let Err(err) = show(event, quiet, json) {
            tracing::debug!(%err, "cannot print battery progress");
        }
    };
    let outcome = battery::run(&battery, &runner, &opts, &hooks, &mut print).await;
    let interrupted = runner.cancel.is_cancelled();
    let calibrated = runner.calibration.clone();
    runner.close().await;
    let mut outcome = outcome?;
    // The whole command's wall-clock, calibration included: what the budget bounds.
    outcome.elapsed = started.elapsed();
    let verdict = battery_verdict(&outcome, interrupted);
    if json {
        let calibrated = calibration_json(calibrated.as_ref());
        let ends = (calibrated, interrupted, verdict);
        print_json(&battery.probe.name, seed, &against, &args, &outcome, ends)?;
    } else {
        summary(&outcome, &args, interrupted)?;
    }
    Ok(if interrupted {
        exit::INTERRUPTED
    } else {
        super::error::of_verdict(verdict)
    })
}

/// What the battery adds up to, as its exit code reads (`--json`'s `verdict`): a
/// confirmed find or a broken target is `violations`; when not one family could judge
/// the target, the worst of their verdicts (an unusable target, as a run would say);
/// a violation seen once and never reproduced, or a family that could not judge, is
/// `inconclusive`; a family the budget or Ctrl-C ended before it judged anything, or
/// never started, leaves it `incomplete`; else `clean`.
fn battery_verdict(outcome: &BatteryOutcome, interrupted: bool) -> Verdict {
    let unjudged: Vec<Verdict> = outcome
        .families
        .iter()
        .filter_map(|f| match &f.end {
            FamilyEnd::Short(Short::Unjudged(u)) => Some(u.verdict),
            _ => None,
        })
        .collect();
    let none_judged = !unjudged.is_empty() && unjudged.len() == outcome.families.len();
    if outcome.found().next().is_some() || outcome.broken() {
        Verdict::Violations
    } else if let Some(worst) = Verdict::worst(unjudged.iter().copied()).filter(|_| none_judged) {
        worst
    } else if outcome.suspects().next().is_some() || !unjudged.is_empty() {
        Verdict::Inconclusive
    } else if interrupted
        || outcome.families.iter().any(|f| f.budget_left_unjudged())
        || outcome.families.len() < outcome.planned.len()
    {
        // Not finished: what did not run proves nothing (raise --budget).
        Verdict::Incomplete
    } else {
        Verdict::Clean
    }
}

/// Progress on stderr; each family's result on stdout (text mode).
fn show(event: &Event<'_>, quiet: bool, json: bool) -> std::io::Result<()> {
    match event {
        Event::Family {
            family,
            levels,
            budget,
        } if !quiet => {
            errln!(
                "\nfamily {}: {} ({}, up to {:.1}s)",
                family.name(),
                family.describe(),
                plural(levels.len() as u64, "level"),
                budget.as_secs_f64()
            );
        }
        Event::Level { index, level, .. } if !quiet => {
            errln!("  level {}: {}", index + 1, level.label);
        }
        Event::Round(p) if !quiet => {
            errln!(
                "    round {:>3}  {}  {}  {:.1}s",
                p.round,
                round_connections(p, 4),
                round_result(p),
                p.elapsed.as_secs_f64()
            );
        }
        Event::Done(report) if !json => outln!("{}", family_line(report))?,
        _ => {}
    }
    Ok(())
}

/// `same-token: found exclusivity violation at level 2 (…)`, one line per family.
fn family_line(r: &FamilyReport) -> String {
    let pressure = r.pressure();
    let levels = r.levels.len();
    let rounds: u32 = r.levels.iter().map(|l| l.rounds).sum();
    let tried = format!(
        "{} at {}, up to {}, {:.1}s",
        plural(u64::from(rounds), "round"),
        plural(levels as u64, "level"),
        plural(pressure as u64, "connection"),
        r.elapsed.as_secs_f64()
    );
    let mut line = family_end_line(r, &tried);
    for note in &r.policy {
        line.push_str(&format!("\n    policy: {note}"));
    }
    for note in &r.notes {
        line.push_str(&format!("\n    note: {note}"));
    }
    line
}

/// [`family_line`] without the policy notes.
fn family_end_line(r: &FamilyReport, tried: &str) -> String {
    let name = r.family.name();
    let levels = r.levels.len();
    match &r.end {
        FamilyEnd::Clean => format!("{name}: clean ({tried})"),
        FamilyEnd::Skipped => {
            format!("{name}: skipped ([battery] has no reply pattern to judge answers by)")
        }
        FamilyEnd::Found(found) => {
            let repro = &found.repro;
            let evidence = first_evidence(repro);
            format!(
                "{name}: found {} violation at level {levels} ({tried}); confirmed {} on replay{}; {}{evidence}\n    repro {}",
                repro.oracle.name(),
                found.rate,
                super::hunt::timing_said(found.timing),
                plural(repro.size() as u64, "connection"),
                found.path.display()
            )
        }
        FamilyEnd::Suspect(found) => {
            let repro = &found.repro;
            let evidence = first_evidence(repro);
            let target = super::hunt::target_to_fill_said(&repro.replay_target());
            format!(
                "{name}: unconfirmed suspect: {} violation seen once at level {levels} ({tried}); {}, so not a find{evidence}\n    repro {} (replay it: {}stampede replay {}{target})",
                repro.oracle.name(),
                super::hunt::replayed_said(repro, &found.rate),
                found.path.display(),
                super::hunt::env_to_set_said(repro),
                found.path.display()
            )
        }
        FamilyEnd::Broken { before_level, why } => {
            let when = if *before_level == 0 {
                "before its first level (an earlier family, or the target was broken from the start)".to_string()
            } else {
                format!("by level {before_level}")
            };
            format!(
                "{name}: the target was left broken {when}: the health probe failed ({why}); stopping ({tried})"
            )
        }
        FamilyEnd::Short(Short::Budget) => format!("{name}: the budget ran out ({tried})"),
        FamilyEnd::Short(Short::Interrupted) => format!("{name}: interrupted ({tried})"),
        FamilyEnd::Short(Short::Unjudged(u)) => format!(
            "{name}: stopped: a round could not judge the target, {} ({}); no repro ({tried})",
            u.verdict, u.hint
        ),
    }
}

/// The end summary: one row per family (the one Ctrl-C stopped says `interrupted`),
/// then the total and the families not run.
fn summary(outcome: &BatteryOutcome, args: &HuntArgs, interrupted: bool) -> std::io::Result<()> {
    outln!(
        "\nbattery summary ({:.1}s of a {:?} budget{})",
        outcome.elapsed.as_secs_f64(),
        args.budget,
        if interrupted {
            "; interrupted by Ctrl-C"
        } else {
            ""
        }
    )?;
    for r in &outcome.families {
        outln!("{}", summary_row(r))?;
    }
    let found = outcome.found().count();
    let suspects = outcome.suspects().count();
    let mut last = format!(
        "{} of {} found something",
        crate::model::words::plural_as(found as u64, "family", "families"),
        outcome.planned.len()
    );
    if suspects > 0 {
        last.push_str(&format!(
            "; {}",
            plural(suspects as u64, "unconfirmed suspect")
        ));
    }
    let not_run = outcome.not_run();
    if !not_run.is_empty() {
        let names: Vec<&str> = not_run.iter().map(|f| f.name()).collect();
        last.push_str(&format!("; not run: {}", names.join(", ")));
    }
    outln!("{last}")
}

/// One family's row of the summary: its result, the most connections a round opened,
/// its time, and the attempts the server shed when it shed any (281 of 320 shed is no
/// clean family at 320 connections: "not now" judged nothing).
fn summary_row(r: &FamilyReport) -> String {
    let result = match &r.end {
        FamilyEnd::Clean if !r.policy.is_empty() => "clean (policy noted)".to_string(),
        FamilyEnd::Clean => "clean".to_string(),
        FamilyEnd::Skipped => "skipped".to_string(),
        FamilyEnd::Found(f) => format!("FOUND {} ({})", f.repro.oracle.name(), f.rate),
        // Seen once, never reproduced (or no replay fitted): not a find.
        FamilyEnd::Suspect(f) => format!(
            "suspect {} (unconfirmed {}/{})",
            f.repro.oracle.name(),
            f.rate.reproduced,
            f.rate.runs
        ),
        FamilyEnd::Broken { .. } => "TARGET BROKEN".to_string(),
        FamilyEnd::Short(Short::Budget) => "budget ran out".to_string(),
        FamilyEnd::Short(Short::Interrupted) => "interrupted".to_string(),
        FamilyEnd::Short(Short::Unjudged(_)) => "unjudged".to_string(),
    };
    let shed = match r.shed {
        RoundsShed { shed: 0, .. } => String::new(),
        RoundsShed { shed, attempted } => {
            format!("  ({shed} of {attempted} attempts shed: not now, judged nothing)")
        }
    };
    format!(
        "  {:<16} {:<34} {:>4} connections max  {:>6.1}s{shed}",
        r.family.name(),
        result,
        r.pressure(),
        r.elapsed.as_secs_f64()
    )
}

fn print_json(
    name: &str,
    seed: u64,
    against: &str,
    args: &HuntArgs,
    outcome: &BatteryOutcome,
    (calibration, interrupted, verdict): (serde_json::Value, bool, Verdict),
) -> Result<(), Error> {
    let families: Vec<serde_json::Value> = outcome
        .families
        .iter()
        .map(|r| {
            let (result, found, why) = match &r.end {
                FamilyEnd::Clean => ("clean", None, None),
                FamilyEnd::Skipped => ("skipped", None, None),
                FamilyEnd::Found(f) => ("found", Some(f), None),
                FamilyEnd::Suspect(f) => ("suspect", Some(f), None),
                FamilyEnd::Broken { why, .. } => ("broken", None, Some(why.clone())),
                FamilyEnd::Short(Short::Budget) => ("budget", None, None),
                FamilyEnd::Short(Short::Interrupted) => ("interrupted", None, None),
                FamilyEnd::Short(Short::Unjudged(u)) => ("unjudged", None, Some(u.hint.clone())),
            };
            json!({
                "family": r.family.name(),
                "result": result,
                "why": why,
                "levels": r.levels.iter().map(|l| json!({
                    "label": l.label, "rounds": l.rounds, "max_connections": l.max_connections,
                })).collect::<Vec<_>>(),
                "max_connections": r.pressure(),
                "elapsed_s": r.elapsed.as_secs_f64(),
                "policy": r.policy,
                "notes": r.notes,
                // Its rounds' attempts the server shed under load: "not now", which
                // judged nothing (a family most of whose bad tokens were shed is unjudged).
                "shed": { "attempts": r.shed.shed, "of": r.shed.attempted },
                "found": found.map(|f| json!({
                    "oracle": f.repro.oracle.name(),
                    "round": f.repro.round,
                    "seed": f.repro.seed,
                    "connections": f.repro.size(),
                    "rate": { "reproduced": f.rate.reproduced, "runs": f.rate.runs, "planned": f.rate.planned },
                    "timing": f.timing.name(),
                    "evidence": f.repro.evidence.first(),
                    "repro": f.path.display().to_string(),
                })),
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&json!({
        "battery": name,
        "verdict": verdict,
        "seed": seed,
        "target": against,
        "budget_s": args.budget.as_secs_f64(),
        "interrupted": interrupted,
        "elapsed_s": outcome.elapsed.as_secs_f64(),
        "calibration": calibration,
        "planned": outcome.planned.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "not_run": outcome.not_run().iter().map(|f| f.name()).collect::<Vec<_>>(),
        "families": families,
    }))
    .map_err(Error::usage)?;
    outln!("{text}")?;
    Ok(())
}

/// The repro's first violation as an indented line (`conn 3: expected …; seen …`), or
/// nothing.
fn first_evidence(repro: &crate::hunt::Repro) -> String {
    repro
        .evidence
        .first()
        .map(|v| {
            format!(
                "\n    conn {}: expected {}; seen {}",
                v.conn,
                v.expected_shown(),
                v.seen
            )
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hunt::battery::{FamilyReport, LevelReport};
    use crate::scenario::Family;

    /// A family whose rounds the server mostly shed says so on its summary row: "clean at
    /// 320 connections" alone read as load taken. One that shed nothing says nothing.
    #[test]
    fn a_summary_row_says_the_attempts_the_server_shed() {
        let row = |shed: u64| {
            summary_row(&FamilyReport {
                family: Family::SameToken,
                levels: vec![LevelReport {
                    label: "320".into(),
                    rounds: 3,
                    judged: 3,
                    max_connections: 320,
                }],
                end: FamilyEnd::Clean,
                elapsed: std::time::Duration::from_secs(2),
                policy: Vec::new(),
                notes: Vec::new(),
                shed: RoundsShed {
                    shed,
                    attempted: 320,
                },
            })
        };
        let shed = row(281);
        assert!(
            shed.contains("320 connections max")
                && shed.ends_with("(281 of 320 attempts shed: not now, judged nothing)"),
            "{shed}"
        );
        assert!(!row(0).contains("shed"), "{}", row(0));
    }
}
