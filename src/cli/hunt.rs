//! `hunt`, `replay` and `shrink`: finding a race, reproducing it on demand, minimising it.

use super::{exit, Error, OutputArgs};
use crate::hunt::timing::Timing;
use crate::hunt::{self, HuntOptions, Repro, Runner, Short, ShrinkOptions, Unjudged};
use crate::model::words::plural;
use crate::model::Plan;
use crate::oracle::learn::Proposal;
use crate::reference::Bug;
use crate::run::{RunOptions, Target};
use crate::scenario::{self, parse_duration};
use crate::swarm::TlsOptions;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where the plans run: a URL, or the embedded reference server (optionally with a bug).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Target URL (ws:// or wss://); overrides the scenario's (for replay and shrink, the
    /// repro's own). `${NAME}` in it is expanded from the environment to dial only: output
    /// names the URL as written. Its path and query may hold {{user}}, {{conn}},
    /// {{group}}, {{sub}} (filled for each connection: ws://host/ocpp/CP{{user}}).
    ///
    /// With `--reference` or `--bug`: refused on the command line, and from the
    /// environment left out (a job that exports it can still ask for the built-in server).
    // (This doc comment is the option's help text: how the two are settled is
    // `Cli::parse_args`'s business, not the user's.)
    #[arg(long, env = "STAMPEDE_TARGET")]
    pub target: Option<String>,
    /// Run against the built-in reference server (correct unless --bug), whatever the
    /// scenario or repro names.
    #[arg(long)]
    pub reference: bool,
    /// Run against the built-in reference server with this planted bug.
    #[arg(long)]
    pub bug: Option<Bug>,
    /// The planted bug's race window.
    #[arg(long, value_parser = parse_duration)]
    pub bug_window: Option<Duration>,
    /// Extra CA certificates (PEM) to trust for wss://.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate (test servers only). Not with --ca-file, whose trust it
    /// would make moot.
    #[arg(long, conflicts_with = "ca_file")]
    pub insecure: bool,
    /// Connect from these local addresses, comma-separated (e.g. 127.0.0.2,127.0.1.2),
    /// taken in turn: each address has its own ephemeral ports. On Linux one address
    /// reaches a server quickly from about half its range; past four fifths of that half
    /// (~11,300 by default, warned of) each new connection searches the used ports (~1 ms
    /// each).
    #[arg(long, value_name = "IP,...", value_delimiter = ',', value_parser = super::source_addr_arg)]
    pub source_addr: Vec<std::net::IpAddr>,
    #[command(flatten)]
    pub threads: super::ThreadsArg,
}

/// How the commands that run one target again and again (`hunt`, `replay`, `shrink`) put
/// it back in its first state.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// A shell command (`sh -c`) that restarts or resets the target; it runs before each
    /// replay and shrink try and each confirmation of a find, and must exit 0. The
    /// built-in server is restarted instead when there is none.
    #[arg(long, value_name = "CMD")]
    pub reset: Option<String>,
    /// Longest the --reset command may run (then it is killed and the command fails).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub reset_timeout: Duration,
}

/// `--reset-timeout`'s default, as its `default_value` says.
const DEFAULT_RESET_TIMEOUT: Duration = Duration::from_secs(60);

/// What a shell's completion shows of [`ResetRefused`]'s hidden options (clap_complete
/// lists hidden options too).
const REFUSED_HERE: &str = "Refused here: hunt, replay and shrink take it";

/// `--reset` and `--reset-timeout` where they do nothing (`run`, `learn`): taken, hidden,
/// only to be refused with what to do instead, where the parser would take the first for
/// a typo and the second silently.
#[derive(Debug, Args)]
pub struct ResetRefused {
    #[arg(long, hide = true, value_name = "CMD", help = REFUSED_HERE)]
    pub reset: Option<String>,
    #[arg(long, hide = true, value_name = "DURATION", help = REFUSED_HERE)]
    pub reset_timeout: Option<String>,
}

impl ResetRefused {
    /// Whether either was given.
    pub(super) fn given(&self) -> bool {
        self.reset.is_some() || self.reset_timeout.is_some()
    }
}

#[derive(Debug, Args)]
pub struct HuntArgs {
    /// Scenario file (TOML); its `[hunt]` table says what the rounds vary, a `[battery]`
    /// file runs every race family in turn.
    pub scenario: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub reset: ResetArgs,
    /// Do not calibrate first: check only the scenario's declared oracles (see
    /// `stampede learn`).
    #[arg(long)]
    pub no_learn: bool,
    /// Wall-clock budget for the whole hunt.
    #[arg(long, default_value = "60s", value_parser = parse_budget)]
    pub budget: Duration,
    /// Seed of the first round; overrides the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Replays used to measure a find's reproduction rate (formerly --confirm).
    #[arg(long, alias = "confirm", default_value_t = 10, value_name = "N")]
    pub times: u32,
    /// Base folder for repro files (each goes to OUT/<scenario>/repro-<oracle>-<hash>.json).
    #[arg(short, long, default_value = "results", value_name = "DIR")]
    pub out: PathBuf,
    /// Not a hunt option (`run`'s): taken only to be refused with what to do instead,
    /// where the parser would suggest `--reset`.
    #[arg(
        long,
        hide = true,
        help = "Refused here: a hunt writes only repro files (run takes it)"
    )]
    pub no_results: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Repro file (JSON) that `hunt` or `shrink` wrote.
    pub repro: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub reset: ResetArgs,
    /// How many times to replay (at least 1).
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub times: u32,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ShrinkArgs {
    /// Repro file (JSON) that `hunt` (or an earlier `shrink`) wrote.
    pub repro: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub reset: ResetArgs,
    /// Runs per candidate (at least 1).
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub times: u32,
    /// Wall-clock budget for shrinking.
    #[arg(long, default_value = "300s", value_parser = parse_budget)]
    pub budget: Duration,
    /// Where to write the minimal repro [default: next to the input, `.json` replaced by
    /// `.min.json`: repro-<oracle>-<hash>.min.json]. Stopped by Ctrl-C, a shrink writes the
    /// smaller repro it kept so far beside it, `.partial` before the extension
    /// (int.min.json: int.min.partial.json).
    #[arg(short, long, alias = "output", value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl ShrinkArgs {
    /// Where a shrink Ctrl-C stops writes the smaller repro it kept: never the minimal
    /// repro's own path, which would present an unfinished shrink as done, but beside it
    /// (`-o int.min.json` → `int.min.partial.json`), or beside the input without `-o`
    /// (`repro-x.json` → `repro-x.partial.json`). See [`partial_path`].
    pub fn partial_out(&self) -> PathBuf {
        partial_path(self.out.as_deref().unwrap_or(&self.repro))
    }
}

impl TargetArgs {
    /// The built-in server these flags ask for (`--reference` or `--bug`), if any.
    fn built_in(&self) -> Option<Target> {
        (self.reference || self.bug.is_some()).then_some(Target::Reference {
            bug: self.bug,
            window: self.bug_window,
        })
    }

    /// The target of a hunt: the built-in server when asked for, else `--target`, else
    /// `fallback` (the scenario's), else the built-in server, correct.
    pub(super) fn choose(&self, fallback: Option<&str>) -> Target {
        self.built_in()
            .unwrap_or_else(|| match Target::choose(self.target.clone(), fallback) {
                Target::Reference { .. } => Target::Reference {
                    bug: None,
                    window: self.bug_window,
                },
                url => url,
            })
    }

    /// The target of a replay or shrink: `--target`, or the built-in server when asked
    /// for, else where the repro was made (its URL, or the built-in server with the same
    /// planted bug; `--bug-window` still widens the window).
    ///
    /// # Errors
    /// [`Error::Usage`] when the repro's URL lost a credential to `***` (stampede never
    /// writes one) and no `--target` gives it back: dialled, it would send `***`.
    fn choose_for(&self, repro: &Repro) -> Result<Target, Error> {
        let target = self.choose_repro_target(repro)?;
        // A window only the built-in server has would be dropped without a word.
        if let (Target::Url(url), Some(_)) = (&target, self.bug_window) {
            return Err(Error::Usage(format!(
                "--bug-window sets the race window of the built-in server's planted bug, and \
                 this replay goes to {url}: leave it out, or add --bug NAME to replay against \
                 the built-in server"
            )));
        }
        Ok(target)
    }

    /// [`TargetArgs::choose_for`] before its check of `--bug-window`.
    fn choose_repro_target(&self, repro: &Repro) -> Result<Target, Error> {
        if let Some(url) = &self.target {
            return Ok(Target::Url(url.clone()));
        }
        if let Some(built_in) = self.built_in() {
            return Ok(built_in);
        }
        match repro.replay_target() {
            Target::Reference { bug, window } => Ok(Target::Reference {
                bug,
                window: self.bug_window.or(window),
            }),
            Target::Url(url) if crate::model::url::lost_a_credential(&url) => {
                Err(Error::Usage(format!(
                    "the repro's target {url} had a credential stampede does not write \
                     (shown as ***): pass --target with the real URL, or write the \
                     credential as ${{NAME}} in the URL so that repros keep the reference"
                )))
            }
            url => Ok(url),
        }
    }

    fn tls(&self) -> TlsOptions {
        TlsOptions {
            ca_file: self.ca_file.clone(),
            insecure: self.insecure,
        }
    }

    /// What every command's connections take from these arguments: TLS trust and the
    /// source addresses (`learn`, `hunt`, `replay` and `shrink` as `run`).
    pub(super) fn run_options(&self) -> RunOptions {
        RunOptions {
            tls: self.tls(),
            sources: self.source_addr.clone(),
            ..RunOptions::default()
        }
    }
}

/// A runner for `plan`'s auth against `target`; says where it runs. `learn`: calibrate
/// first, ending by the instant given (a hunt's share of its budget).
pub(super) async fn runner(
    plan: &Plan,
    target: &Target,
    (args, reset): (&TargetArgs, &ResetArgs),
    learn: Option<Option<Instant>>,
    quiet: bool,
    cancel: CancellationToken,
) -> Result<Runner, Error> {
    let opts = RunOptions {
        learn: learn.is_some(),
        calibration_end: learn.flatten(),
        ..args.run_options()
    };
    let mut runner = Runner::start(target, plan, opts, cancel).await?;
    if let Some(command) = &reset.reset {
        runner.reset = hunt::Reset::Command {
            command: command.clone(),
            timeout: reset.reset_timeout,
        };
    }
    if !quiet {
        errln!("running against {}", describe(&runner));
        super::development_secret_notice(&runner.bound, plan);
    }
    Ok(runner)
}

/// [`runner`] for a hunt or a battery: its target, reset and quietness from `args`.
pub(super) async fn hunt_runner(
    plan: &Plan,
    target: &Target,
    args: &HuntArgs,
    learn: Option<Option<Instant>>,
    cancel: CancellationToken,
) -> Result<Runner, Error> {
    let parts = (&args.target, &args.reset);
    runner(plan, target, parts, learn, args.output.quiet, cancel).await
}

/// Prints `value` as pretty JSON on stdout.
fn print_json(value: &serde_json::Value) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(Error::usage)?;
    outln!("{text}")?;
    Ok(())
}

/// A rate as JSON: `{"reproduced": 3, "runs": 10, "planned": 10, "short": null}`.
fn rate_json(rate: &hunt::Rate) -> serde_json::Value {
    json!({
        "reproduced": rate.reproduced,
        "runs": rate.runs,
        "planned": rate.planned,
        "short": rate.short.as_ref().map(short_name),
        // Replays of a broken-target finding the server's load shedding left unjudged.
        "shed": rate.shed,
    })
}

/// Why something stopped early, as one word for JSON.
fn short_name(short: &Short) -> &'static str {
    match short {
        Short::Budget => "budget",
        Short::Interrupted => "interrupted",
        Short::Unjudged(_) => "unjudged",
    }
}

/// Where a runner runs, in words: the URL, or the built-in server, its bug and its URL.
pub(super) fn describe(runner: &Runner) -> String {
    match &runner.target {
        Target::Reference { bug, window } => {
            let bug = match (bug, window) {
                (Some(b), Some(w)) => format!(" with planted bug {b} (window {w:?})"),
                (Some(b), None) => format!(" with planted bug {b}"),
                (None, _) => " (correct, no planted bug)".to_string(),
            };
            format!("the built-in reference server{bug} at {}", runner.url())
        }
        // As shown: a password written in the URL is masked.
        Target::Url(_) => runner.url().to_string(),
    }
}

/// A wall-clock budget: greater than zero (a budget of no time runs nothing).
fn parse_budget(text: &str) -> Result<Duration, String> {
    super::parse_positive(text, "the budget", "60s")
}

pub async fn hunt_command(args: HuntArgs, cancel: CancellationToken) -> Result<u8, Error> {
    if args.no_results {
        return Err(Error::Usage(
            "--no-results applies to run: a hunt writes no results folder, only the repro \
             file of a find (into -o DIR, default results/), which replay and shrink need; \
             point -o at a scratch folder to keep repros elsewhere"
                .into(),
        ));
    }
    // Before any round: a find that cannot be written would be lost after the whole hunt.
    super::check_out_folder(
        &args.out,
        "repro files go into a folder (OUT/<scenario>/repro-<oracle>-<hash>.json): name a \
         folder (it is created if missing)",
    )?;
    // Read once: a pipe gives its text to the first read only.
    let file = scenario::ScenarioFile::read(&args.scenario)?;
    if let Some(battery) = file.battery()? {
        if !battery.needs.is_empty() {
            return Err(scenario::ScenarioError::Invalid {
                problems: battery.needs,
            }
            .into());
        }
        return super::battery::battery_command(args, battery, cancel).await;
    }
    // The budget runs from here: calibration, every round, probe and confirmation.
    let started = Instant::now();
    let budget_end = started + args.budget;
    let s = file.to_run()?;
    if !args.output.quiet {
        super::warn_expiring_before_load(&file, &s);
    }
    let seed = s.seed_or(args.seed);
    let probe = crate::plan::build(&s, seed);
    let target = args.target.choose(s.target.as_deref());
    let quiet = args.output.quiet;
    let learn = (!args.no_learn).then(|| Some(hunt::calibration_end(started, args.budget)));
    let runner = hunt_runner(&probe, &target, &args, learn, cancel).await?;
    if learn.is_some() && !quiet {
        learned_lines(&runner);
    }
    let against = describe(&runner);
    let opts = HuntOptions {
        budget: budget_end.saturating_duration_since(Instant::now()),
        seed,
        out: args.out.clone(),
        confirm: args.times,
    };
    // Not after a Ctrl-C during calibration: no round will run (the end says so).
    if !quiet && !runner.cancel.is_cancelled() {
        errln!(
            "hunting {} (seed {seed}, budget {:?}, up to {})",
            s.name,
            args.budget,
            plural(s.hunt.rounds, "round")
        );
    }
    // One line per pressure level, printed when the next level starts (the final
    // summary repeats them all, the last one included).
    let mut level_seen: Option<hunt::LevelStats> = None;
    let mut print = |p: &hunt::Progress| {
        if let Some(now) = &p.pressure {
            if let Some(done) = level_seen.as_ref().filter(|l| l.level != now.level) {
                if !quiet {
                    errln!("{done}");
                }
            }
            level_seen = Some(now.clone());
        }
        if !quiet {
            errln!(
                "round {:>4}  {}  {}  {:.1}s",
                p.round,
                round_connections(p, 5),
                round_result(p),
                p.elapsed.as_secs_f64()
            );
        }
    };
    let outcome = hunt::hunt(&s, &runner, &opts, &mut print).await;
    let interrupted = runner.cancel.is_cancelled();
    let calibration = runner.calibration.clone();
    // A find's time counts from the first round: the whole time says what came before.
    let calibrated = calibration.is_some();
    runner.close().await;
    let mut outcome = outcome?;
    // The whole command's wall-clock, calibration included: what the budget bounds.
    outcome.elapsed = started.elapsed();
    // Not one round finished within the budget: nothing was exercised, no clean hunt. (A
    // battery's family that the budget left no whole round reports `budget` instead.)
    // Nor did any round it cut before its plan finished (each proves nothing): the hunt
    // is incomplete, not clean.
    let none_whole = outcome.not_judged == outcome.rounds;
    if none_whole && outcome.found.is_none() && outcome.short == Some(Short::Budget) {
        let hint = if outcome.rounds == 0 {
            "the budget ran out before the first round finished: nothing was exercised \
             (raise --budget, or shorten the scenario's duration)"
        } else {
            "the budget ran out before any round's plan finished: what did not run proves \
             nothing (raise --budget, or shorten the scenario's duration)"
        };
        outcome.short = Some(Short::Unjudged(hunt::Unjudged {
            verdict: crate::model::Verdict::Incomplete,
            hint: hint.into(),
        }));
    }
    if args.output.json {
        let unjudged = crate::oracle::verdict::unjudged_note(&probe);
        hunt_json(
            &s.name,
            seed,
            &against,
            &outcome,
            calibration.as_ref(),
            (unjudged, interrupted),
        )?;
    }
    if !args.output.json {
        pressure_summary(&outcome)?;
        // Before the result: a health probe the server shed is its load shedding, and
        // one it was still shedding judged no round's effect on the target.
        if let Some(note) = outcome.health_shed.note() {
            outln!("note: {note}")?;
        }
    }
    if let Some(Short::Unjudged(stopped)) = &outcome.short {
        let when = stopped_when(&outcome);
        return unjudged(&when, stopped, "no repro was written", args.output.json);
    }
    if args.output.json {
        return Ok(match (&outcome.found, interrupted) {
            (_, true) => exit::INTERRUPTED,
            (Some(found), false) => found_exit(found),
            (None, false) => exit::CLEAN,
        });
    }
    match outcome.found {
        Some(found) if found.repro.health.is_some() => {
            broken_report(&found, (outcome.elapsed, outcome.rounds, calibrated))?;
            Ok(if interrupted {
                exit::INTERRUPTED
            } else {
                found_exit(&found)
            })
        }
        Some(found) => {
            found_report(&found, (outcome.elapsed, outcome.rounds, calibrated), &args)?;
            Ok(if interrupted {
                exit::INTERRUPTED
            } else {
                found_exit(&found)
            })
        }
        None => {
            if outcome.rounds == 0 && calibration.as_ref().is_some_and(|p| p.interrupted) {
                outln!(
                    "interrupted during calibration, before the first round: nothing was \
                     exercised ({:.1}s)",
                    outcome.elapsed.as_secs_f64()
                )?;
                return Ok(exit::INTERRUPTED);
            }
            let not_judged = not_judged_words(outcome.not_judged, outcome.cut_short);
            // What the rounds set aside, said as when the hunt ends by itself: a deadline
            // Ctrl-C cut right after is no find, but no silence either.
            let set_aside: String = hunt::late_note(outcome.late)
                .into_iter()
                .chain(hunt::unproven_note(outcome.unproven))
                .chain(hunt::misspelled_note(outcome.misspelled))
                .chain(outcome.shed.note())
                .map(|n| format!("; {n}"))
                .collect();
            if interrupted || outcome.short == Some(Short::Interrupted) {
                // A hunt writes only the repro of a find: nothing, here.
                outln!(
                    "interrupted after {}{not_judged} ({:.1}s): no violation found; \
                     nothing written{set_aside}",
                    plural(outcome.rounds, "round"),
                    outcome.elapsed.as_secs_f64()
                )?;
                return Ok(exit::INTERRUPTED);
            }
            let why = match outcome.short {
                Some(hunt::Short::Budget) => "; the budget ran out",
                // Said above; and returned before any result line.
                Some(hunt::Short::Interrupted | hunt::Short::Unjudged(_)) | None => "",
            };
            // What no round could have found, however many ran.
            // And what came after such sends, over every round.
            let after = crate::oracle::verdict::after_unjudged_note(&outcome.counters);
            let unjudged =
                crate::oracle::verdict::unjudged_note(&probe).map_or(String::new(), |note| {
                    match after {
                        Some(after) => format!("; {note}; {after}"),
                        None => format!("; {note}"),
                    }
                });
            outln!(
                "no violation in {}{not_judged} ({:.1}s{why}){unjudged}{set_aside}{}",
                plural(outcome.rounds, "round"),
                outcome.elapsed.as_secs_f64(),
                // What no round could judge, the scenario sharing no token.
                crate::oracle::verdict::exclusivity_unexercised_note(&probe)
                    .map(|n| format!("; {n}"))
                    .unwrap_or_default()
            )?;
            Ok(exit::CLEAN)
        }
    }
}

pub async fn replay_command(args: ReplayArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let repro = Repro::load(&args.repro)?;
    let target = args.target.choose_for(&repro)?;
    let runner = runner(
        &repro.plan,
        &target,
        (&args.target, &args.reset),
        None,
        args.output.quiet,
        cancel,
    )
    .await?;
    let against = describe(&runner);
    let measured = match &repro.health {
        Some(health) => {
            if !runner.reset.possible() && !args.output.quiet {
                errln!("no --reset: one replay only, against the target as it is now");
            }
            runner
                .measure_health(
                    &health.plans(&repro.plan),
                    &health.probe,
                    args.times,
                    None,
                    None,
                )
                .await
        }
        None => runner.replay(&repro, args.times).await,
    };
    let interrupted = runner.cancel.is_cancelled();
    runner.close().await;
    let hunt::Measured {
        rate,
        others,
        evidence,
    } = measured?;
    if args.output.json {
        print_json(&json!({
            "repro": args.repro.display().to_string(),
            "oracle": repro.oracle.name(),
            "connections": hunt::health_size(&repro),
            "policy": repro.policy,
            "target": against,
            "rate": rate_json(&rate),
            "unjudged": unjudged_json(rate.short.as_ref()),
            "other_oracles_broken": others
                .iter()
                .map(|(o, n)| (o.name(), n))
                .collect::<std::collections::BTreeMap<_, _>>(),
        }))?;
    }
    // Reproductions before a replay that could not judge (a target that went down) stand:
    // said with the rate and why it stopped, exit 1.
    if let (Some(Short::Unjudged(stopped)), 0) = (&rate.short, rate.reproduced) {
        // The replays judged before it stand too: 0/3 before a server that went down.
        let so = match rate.runs {
            0 => "it neither reproduced the violation nor ruled it out".to_string(),
            n => format!(
                "it neither reproduced the violation nor ruled it out (the {} before it: 0/{n})",
                plural(u64::from(n), "replay")
            ),
        };
        return unjudged(
            &format!("replay {}", rate.runs + 1),
            stopped,
            &so,
            args.output.json,
        );
    }
    if !args.output.json {
        // "8/8 times (3 connections; interrupted before 200)": the count reads as a count,
        // why it stopped short goes with the rest.
        let size = plural(hunt::health_size(&repro) as u64, "connection");
        let detail = match rate.cut_short() {
            Some(why) => format!("{size}; {why}"),
            None => size,
        };
        // No replay ran to its end (Ctrl-C during the first, or its reset): no rate.
        let (repro_path, oracle) = (args.repro.display(), repro.oracle.name());
        match rate.runs {
            0 => outln!(
                "{repro_path}: the {oracle} violation was not replayed once ({detail}) \
                 against {against}"
            )?,
            runs => outln!(
                "{repro_path}: reproduced the {oracle} violation {}/{runs} times ({detail}) \
                 against {against}",
                rate.reproduced
            )?,
        }
    }
    // What a reproduction saw, so that a race is told from a server that went down.
    if let (false, Some(first)) = (args.output.json, evidence.first()) {
        outln!("first seen   {}", evidence_words(first))?;
    }
    let broke_others = others_broken_words(&others, rate.runs);
    if let (false, Some(words)) = (args.output.json, &broke_others) {
        outln!("also broke   {words}")?;
    }
    if let (false, Some(note)) = (
        args.output.json || interrupted || broke_others.is_some(),
        unlucky_zero_note(repro.rate, rate.reproduced, rate.runs),
    ) {
        outln!("note         {note}")?;
    }
    Ok(if interrupted {
        exit::INTERRUPTED
    } else if rate.reproduced > 0 || broke_others.is_some() {
        // Another oracle broken is no pass either: a fix of one race that brings another.
        exit::VIOLATIONS
    } else {
        exit::CLEAN
    })
}

/// A reproduction's first violation in a line: `conn 3: expected …  seen …`.
fn evidence_words(v: &crate::model::Violation) -> String {
    format!("conn {}: expected {}  seen {}", v.conn, v.expected, v.seen)
}

/// The chance, at most, that a replay which reproduced nothing only missed: a server still
/// broken at the repro's recorded rate shows `0/runs` that often too.
const UNLUCKY_ZERO: f64 = 0.05;

/// What a replay that reproduced 0 of `runs` leaves open when the repro's recorded rate
/// (`recorded`, `(reproduced, runs)` when it was made or shrunk) is below certainty: how
/// often a server still broken at that rate shows 0 of `runs` too, and how many replays
/// bring that under 5% (the check of a fix wants them). `None` when the replay
/// reproduced, ran nothing, or the rate makes 0 of `runs` unlikely enough.
fn unlucky_zero_note(recorded: Option<(u32, u32)>, reproduced: u32, runs: u32) -> Option<String> {
    let (k, n) = recorded.filter(|&(k, n)| k > 0 && k <= n)?;
    if reproduced > 0 || runs == 0 {
        return None;
    }
    let p = f64::from(k) / f64::from(n);
    let miss = (1.0 - p).powi(i32::try_from(runs).unwrap_or(i32::MAX));
    if miss <= UNLUCKY_ZERO {
        return None;
    }
    let needed = (UNLUCKY_ZERO.ln() / (1.0 - p).ln()).ceil();
    Some(format!(
        "the repro reproduced {k}/{n} when it was made: a server still broken shows 0/{runs} \
         about {:.0}% of the times; to check a fix, replay with --times {needed:.0} or more",
        miss * 100.0
    ))
}

pub async fn shrink_command(args: ShrinkArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let repro = Repro::load(&args.repro)?;
    let created = match &args.out {
        Some(out) => prepare_shrink_out(out)?,
        None => Vec::new(),
    };
    let result = shrink_into(args, repro, cancel).await;
    // Already minimal, not reproduced, unjudged, failed: nothing went into the folders
    // `-o` created, which would otherwise stay behind empty.
    remove_empty(&created);
    result
}

/// [`shrink_command`] once its output's folder is ready.
async fn shrink_into(
    args: ShrinkArgs,
    repro: Repro,
    cancel: CancellationToken,
) -> Result<u8, Error> {
    let target = args.target.choose_for(&repro)?;
    let runner = runner(
        &repro.plan,
        &target,
        (&args.target, &args.reset),
        None,
        args.output.quiet,
        cancel,
    )
    .await?;
    let against = describe(&runner);
    let opts = ShrinkOptions {
        times: args.times,
        budget: args.budget,
        ..Default::default()
    };
    let outcome = if repro.health.is_some() {
        if !runner.reset.possible() {
            errln!("{}", hunt::NO_RESET_SHRINK);
        }
        hunt::shrink_health(&repro, &runner, opts).await
    } else {
        hunt::shrink(&repro, &runner, opts).await
    };
    let interrupted = runner.cancel.is_cancelled();
    let resets = runner.reset.possible();
    runner.close().await;
    let outcome = outcome?;
    if let Some(Short::Unjudged(stopped)) = &outcome.before.1.short {
        if args.output.json {
            print_json(&json!({
                "repro": args.repro.display().to_string(),
                "oracle": repro.oracle.name(),
                "target": against,
                "unjudged": unjudged_json(outcome.before.1.short.as_ref()),
            }))?;
        }
        return unjudged(
            "a replay of the repro",
            stopped,
            "nothing was shrunk or written",
            args.output.json,
        );
    }
    if interrupted || matches!(outcome.short, Some(Short::Interrupted)) {
        return interrupted_shrink(&args, &repro, &against, outcome);
    }
    if outcome.before.1.reproduced == 0 {
        return not_reproduced(&args, &repro, &against, &outcome.before);
    }
    if let Some(candidate) = &outcome.unconfirmed {
        return unconfirmed_shrink(&args, &repro, &against, &outcome, candidate);
    }
    if outcome.repro.plan == repro.plan {
        return nothing_removed(&args, &repro, &against, &outcome, interrupted);
    }
    let output = args.out.unwrap_or_else(|| min_path(&args.repro));
    outcome.repro.save_as(&output)?;
    let ((n0, r0), (n1, r1)) = (outcome.before, outcome.after);
    if args.output.json {
        print_json(&json!({
            "repro": args.repro.display().to_string(),
            "oracle": repro.oracle.name(),
            "target": against,
            "before": { "connections": n0, "rate": rate_json(&r0) },
            "after": { "connections": n1, "rate": rate_json(&r1) },
            "candidates": outcome.candidates,
            "short": outcome.short.as_ref().map(short_name),
            "minimal_repro": output.display().to_string(),
        }))?;
        return Ok(if interrupted {
            exit::INTERRUPTED
        } else if r1.reproduced > 0 {
            exit::VIOLATIONS
        } else {
            exit::CLEAN
        });
    }
    let why = match outcome.short {
        Some(hunt::Short::Budget) => " (the budget ran out)",
        Some(hunt::Short::Interrupted) => " (interrupted)",
        Some(hunt::Short::Unjudged(_)) => " (a candidate's run could not judge the target)",
        None => "",
    };
    outln!(
        "shrunk {} violation: {n0} → {}; rate {r0} → {r1}; {} tried{why}; against {against}",
        repro.oracle.name(),
        plural(n1 as u64, "connection"),
        plural(outcome.candidates, "candidate")
    )?;
    match outcome.short {
        // Smaller, but the candidates left untried may cut it further: not called minimal.
        Some(_) => outln!(
            "smaller repro {} (not proven minimal: candidates were left untried; shrink it \
             again, with a larger --budget, to go on)",
            output.display()
        )?,
        None => outln!("minimal repro {}", output.display())?,
    }
    if !resets {
        // A river-like server's grace timer, left running by one try, made the next
        // reproduce: the rate after read 3/3 where replays of the file read 1/10.
        outln!(
            "note         its tries ran back to back against a server nothing reset between \
             them (no --reset): state one left behind (a session's grace timer, a slot not \
             yet freed) may have helped the next reproduce; replay the minimal repro to see \
             its own rate (stampede replay {} --times 10), or shrink with --reset",
            output.display()
        )?;
    }
    Ok(if interrupted {
        exit::INTERRUPTED
    } else if r1.reproduced > 0 {
        exit::VIOLATIONS
    } else {
        exit::CLEAN
    })
}

/// The `stampede shrink` command a find suggests, as a shell takes it: the repro (quoted
/// when it needs to be) and what the hunt was given that the repro does not keep (the
/// reset, source addresses, TLS trust); its target the repro names itself, unless that
/// (`target`, the repro's) lost a credential: see [`target_to_fill`].
fn shrink_command_line(repro: &std::path::Path, target: &Target, args: &HuntArgs) -> String {
    let path = repro.display().to_string();
    let mut words: Vec<String> = vec!["stampede".into(), "shrink".into(), path];
    words.extend(
        target_to_fill(target)
            .into_iter()
            .flatten()
            .map(str::to_string),
    );
    let (target, reset) = (&args.target, &args.reset);
    if let Some(command) = &reset.reset {
        words.extend(["--reset".into(), command.clone()]);
        if reset.reset_timeout != DEFAULT_RESET_TIMEOUT {
            let ms = reset.reset_timeout.as_millis();
            let shown = if ms % 1000 == 0 {
                format!("{}s", ms / 1000)
            } else {
                format!("{ms}ms")
            };
            words.extend(["--reset-timeout".into(), shown]);
        }
    }
    if !target.source_addr.is_empty() {
        let addrs: Vec<String> = target.source_addr.iter().map(|a| a.to_string()).collect();
        words.extend(["--source-addr".into(), addrs.join(",")]);
    }
    if let Some(ca) = &target.ca_file {
        words.extend(["--ca-file".into(), ca.display().to_string()]);
    }
    if target.insecure {
        words.push("--insecure".into());
    }
    // A word with a NUL byte cannot be quoted (nor passed): shown as it is.
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}

/// What a suggested `replay` or `shrink` of a repro whose `target` lost a credential to
/// `***` must add: `--target` and a placeholder for the real URL, which the user fills
/// in. Without it the command is refused (see [`TargetArgs::choose_for`]), and the URL as
/// the hunt was given it holds the secret, which stampede never prints. Nothing when the
/// repro's target is whole: the repro names it.
fn target_to_fill(target: &Target) -> Option<[&'static str; 2]> {
    match target {
        Target::Url(url) if crate::model::url::lost_a_credential(url) => {
            Some(["--target", "<the real URL>"])
        }
        _ => None,
    }
}

/// What a suggested `replay` or `shrink` of `repro` must be run with before it: the
/// variables of the keys its scenario gave as literals, which repro files never store
/// (`STAMPEDE_JWT_SECRET='<the scenario's value>' `), and of `env` sources the hunt ran on
/// the scenario's default for, which they do not store either (`…='<the scenario's
/// default>' `), each with a placeholder the user fills in; without them the command is
/// refused. Empty when the file has what it needs.
pub(super) fn env_to_set_said(repro: &Repro) -> String {
    let auth = &repro.plan.auth;
    let literals = crate::auth::literals_not_stored(auth)
        .into_iter()
        .map(|name| format!("{name}='<the scenario's value>' "));
    let lookup = |name: &str| std::env::var(name).ok();
    let defaults = crate::auth::env_defaults_not_stored(auth, &lookup)
        .into_iter()
        .map(|name| format!("{name}='<the scenario's default>' "));
    literals.chain(defaults).collect()
}

/// [`target_to_fill`] as it follows a suggested command in a sentence (` --target '<the
/// real URL>'`); empty when the repro names its target whole.
pub(super) fn target_to_fill_said(target: &Target) -> String {
    target_to_fill(target)
        .map(|[flag, url]| format!(" {flag} '{url}'"))
        .unwrap_or_default()
}

/// A shrink that kept the repro's plan whole: every candidate lost the race (the repro is
/// already minimal), or the budget ran out before one kept it. A copy of the input would
/// read as a smaller repro: nothing is written, and the exit is 1 as the repro still
/// reproduces (as `replay`'s).
fn nothing_removed(
    args: &ShrinkArgs,
    repro: &Repro,
    against: &str,
    outcome: &hunt::ShrinkOutcome,
    interrupted: bool,
) -> Result<u8, Error> {
    let ((n0, r0), (_, r1)) = (&outcome.before, &outcome.after);
    // Not measured again (the budget ran out first): the rate before is the measure.
    let rates = if r1.runs == 0 {
        format!("rate {r0}")
    } else {
        format!("rate {r0} → {r1}")
    };
    let why = match outcome.short {
        Some(hunt::Short::Budget) => "no smaller repro found before the budget ran out",
        Some(hunt::Short::Interrupted) => "no smaller repro found before Ctrl-C",
        Some(hunt::Short::Unjudged(_)) => {
            "no smaller repro found (a candidate's run could not judge the target)"
        }
        None => "already minimal: no connection, action or offset could go",
    };
    if args.output.json {
        print_json(&json!({
            "repro": args.repro.display().to_string(),
            "oracle": repro.oracle.name(),
            "target": against,
            "before": { "connections": n0, "rate": rate_json(r0) },
            "after": { "connections": n0, "rate": rate_json(r1) },
            "candidates": outcome.candidates,
            "short": outcome.short.as_ref().map(short_name),
            "minimal_repro": null,
            "nothing_removed": why,
        }))?;
    } else {
        outln!(
            "{} violation: {why} ({}, {rates}, {} tried); against {against}",
            repro.oracle.name(),
            plural(*n0 as u64, "connection"),
            plural(outcome.candidates, "candidate"),
        )?;
        outln!("nothing written: {} stands", args.repro.display())?;
    }
    Ok(if interrupted {
        exit::INTERRUPTED
    } else {
        exit::VIOLATIONS
    })
}

/// Readies `shrink -o FILE` before the shrink starts: refuses a FILE that is a folder,
/// exists already or lies under a file, and creates its folder, as `run -o` creates its own. Found only
/// when the minimal repro was written, these lost the whole shrink. Returns the folders
/// it created, deepest first, for [`remove_empty`].
fn prepare_shrink_out(out: &std::path::Path) -> Result<Vec<PathBuf>, Error> {
    if out.is_dir() {
        return Err(Error::Usage(format!(
            "-o {} is a folder: -o names the minimal repro's file (e.g. {})",
            out.display(),
            out.join("repro.min.json").display()
        )));
    }
    // A repro is never overwritten, nor any other file: `-o` naming the input replaced the
    // repro the shrink came from with a smaller one that may reproduce less often.
    if out.exists() {
        return Err(Error::Usage(format!(
            "-o {} exists: shrink writes a new file and never overwrites one (the repro it \
             shrinks least of all); name another, or remove it first",
            out.display()
        )));
    }
    // A missing file's folders are checked (a file on the way cannot hold it).
    super::check_out_folder(
        out,
        "-o names the minimal repro's file; its folder is created if missing",
    )?;
    let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(Vec::new());
    };
    let missing = parent
        .ancestors()
        .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
        .map(std::path::Path::to_path_buf)
        .collect();
    std::fs::create_dir_all(parent).map_err(|e| {
        Error::Usage(format!(
            "shrink -o {}: cannot create its folder {}: {e}",
            out.display(),
            parent.display()
        ))
    })?;
    Ok(missing)
}

/// Removes `created` (deepest first), each only while empty: a folder the shrink wrote
/// into (the minimal or partial repro), or that anything else did meanwhile, stays, and
/// so do those above it. Folders that existed before the shrink are never in `created`.
fn remove_empty(created: &[PathBuf]) {
    for dir in created {
        // `remove_dir` refuses a folder that holds anything.
        if std::fs::remove_dir(dir).is_err() {
            break;
        }
    }
}

/// How many of a hunt's rounds judged nothing (`not_judged`), told apart from those only
/// cut short (`cut_short`, of them: the budget or Ctrl-C stopped them before their plan
/// finished): `, 1 of them cut short before its plan finished`, `, 2 of them not judged:
/// inconclusive`, both, or nothing.
fn not_judged_words(not_judged: u32, cut_short: u32) -> String {
    let cut = cut_short.min(not_judged);
    let unexercised = not_judged - cut;
    let mut parts = Vec::new();
    if unexercised > 0 {
        parts.push(format!("{unexercised} of them not judged: inconclusive"));
    }
    if cut > 0 {
        let its = if cut == 1 { "its plan" } else { "their plans" };
        parts.push(format!("{cut} of them cut short before {its} finished"));
    }
    parts.iter().map(|p| format!(", {p}")).collect()
}

/// The pressure levels a hunt reached, one line each, then the highest and whether it
/// ended at the ceiling with no finding.
fn pressure_summary(outcome: &hunt::HuntOutcome) -> Result<(), Error> {
    let Some(top) = outcome.pressure.last() else {
        return Ok(());
    };
    for level in &outcome.pressure {
        outln!("{level}")?;
    }
    let end = match (&outcome.found, top.ceiling) {
        (None, true) => format!("; at the ceiling ({}) with no finding", top.limited_by),
        (None, false) => "; below the ceiling when the hunt ended".to_string(),
        (Some(_), _) => String::new(),
    };
    outln!(
        "highest pressure reached: level {}, {}{end}",
        top.level,
        top.shape()
    )?;
    Ok(())
}

/// The exit code of a hunt that found something: 1 when a replay confirmed it, 4
/// (inconclusive) for an unconfirmed suspect, as the battery decides
/// ([`hunt::Found::confirmed`]).
fn found_exit(found: &hunt::Found) -> u8 {
    if found.confirmed() {
        exit::VIOLATIONS
    } else {
        exit::INCONCLUSIVE
    }
}

/// A find's first evidence in a line: the connection, its token's id (none under
/// `placement = "none"`, where the plan's ids would read as tokens sent), what was expected
/// and what was seen.
fn evidence_line(v: &crate::model::Violation, placement: &crate::model::Placement) -> String {
    let jti = crate::report::jti_shown(&v.jti, matches!(placement, crate::model::Placement::None));
    // The group beside the user: step numbers restart in every group.
    format!(
        "  conn {} user {} ({}){jti}: expected {}; seen {}",
        v.conn,
        v.user,
        v.group,
        v.expected_shown(),
        v.seen
    )
}

/// A violation find on stdout: the oracle, when, the first evidence, the replays and the
/// repro; a find no replay reproduced is said to be an unconfirmed suspect.
fn found_report(
    found: &hunt::Found,
    (elapsed, rounds, calibrated): (Duration, u32, bool),
    args: &HuntArgs,
) -> Result<(), Error> {
    let r = &found.repro;
    let (head, seen) = if found.confirmed() {
        ("found", "")
    } else {
        ("unconfirmed suspect:", " seen once")
    };
    // Of an invariant calibration learned, not one the scenario declares: said in the
    // find itself, as the run's verdict says it.
    let learned = !r.evidence.is_empty() && r.evidence.iter().all(|v| v.learned);
    outln!(
        "{head} {}{} violation{seen} in round {} (seed {}) {:.1}s in, {}; {}",
        if learned { "learned " } else { "" },
        r.oracle.name(),
        r.round,
        r.seed,
        found.seen_after.as_secs_f64(),
        plural(rounds, "round"),
        total_time(elapsed, calibrated, found.rate.runs > 0)
    )?;
    if let Some(v) = r.evidence.first() {
        outln!("{}", evidence_line(v, &r.plan.auth.placement))?;
    }
    let size = plural(r.size() as u64, "connection");
    if found.confirmed() {
        outln!("  confirmed {} on replay; {size}", found.rate)?;
        if let Some(line) = timing_line(found.timing) {
            outln!("{line}")?;
        }
    } else {
        // `--times 0`, or a budget spent before the first replay: none ran.
        let replayed = replayed_said(r, &found.rate);
        let target = target_to_fill_said(&r.replay_target());
        outln!(
            "  {replayed}, so not a find; {size} (replay it: {}stampede replay {}{target})",
            env_to_set_said(r),
            found.path.display()
        )?;
    }
    outln!("repro        {}", found.path.display())?;
    if found.confirmed() {
        // What a find is for: the smallest plan that still breaks, then a check of a fix.
        let target = r.replay_target();
        let same = if target_to_fill(&target).is_some() {
            " (with the same --target)"
        } else {
            ""
        };
        outln!(
            "next         {} (the fewest connections, steps and offsets that still break \
             it), then stampede replay on the result{same} after a fix",
            format!(
                "{}{}",
                env_to_set_said(r),
                shrink_command_line(&found.path, &target, args)
            )
        )?;
    }
    if learned {
        outln!(
            "note         learned in calibration, one connection at a time, not declared: \
             check that it holds for this server under load (a broadcast every subscriber \
             gets may carry another user's id) before chasing it; declare it in [oracles] \
             if it does, or run with --no-learn"
        )?;
    }
    unreplayable_note(&found.repro)?;
    Ok(())
}

/// The timing check's word in a battery's find line (after its replays): nothing when
/// it was not checked.
pub(super) fn timing_said(timing: Timing) -> String {
    match timing {
        Timing::Unchecked => String::new(),
        Timing::Needed { .. } => ", needs its timing (spaced out, it held)".to_string(),
        Timing::NotNeeded { .. } => format!(
            ", no race window under {} ms (spaced out, it broke the same way: the script, \
             the server's logic, or a slower recovery)",
            hunt::timing::GAP.as_millis()
        ),
    }
}

/// What the timing check of a confirmed find says ([`hunt::timing`]), under its replays;
/// nothing when it was not checked or could not tell.
fn timing_line(timing: Timing) -> Option<String> {
    let gap = hunt::timing::GAP.as_millis();
    let spaced = format!(
        "with every send and reconnect {gap} ms after the step before and the connections \
         started {gap} ms apart"
    );
    match timing {
        Timing::Unchecked => None,
        Timing::Needed { runs } => Some(format!(
            "  it needs its timing: replayed {} {spaced}, what it broke held every time (a \
             race, or requests the script overlaps that the server takes only one at a time, \
             such as two live subscriptions under one id)",
            plural(u64::from(runs), "time")
        )),
        Timing::NotNeeded { every_time: true } => Some(format!(
            "  no race window under {gap} ms: replayed {spaced}, it broke the same way: the \
             server turns this script away every time (a reused id, a channel never joined, \
             a destination nothing subscribes to), always fails there, or takes longer than \
             that to recover (a cleanup that lags); the evidence, read against that step of \
             the script, says which"
        )),
        Timing::NotNeeded { every_time: false } => Some(format!(
            "  no race window under {gap} ms: replayed {spaced}, it broke the same way, as \
             it did in only some replays: a fault that comes and goes whatever the timing, \
             or one whose window is longer than that"
        )),
    }
}

/// Says when a repro cannot be replayed as written: its tokens came from a `list`, whose
/// values repro files never store (they are secrets), so `replay` and `shrink` refuse it.
fn unreplayable_note(repro: &Repro) -> Result<(), Error> {
    if tokens_not_stored(repro) {
        outln!(
            "note         the tokens came from [auth] tokens = {{ list = ... }}, which repro \
             files do not store: replay and shrink cannot run this repro; read the tokens \
             from a file or a command to replay it"
        )?;
    }
    Ok(())
}

/// A hunt's result as a run's verdict: a confirmed find is violations, an unconfirmed
/// suspect inconclusive, a hunt that could not judge the target that verdict, one Ctrl-C
/// stopped incomplete, else clean. The same reading as its exit code.
fn hunt_verdict(outcome: &hunt::HuntOutcome, interrupted: bool) -> crate::model::Verdict {
    use crate::model::Verdict;
    match (&outcome.found, &outcome.short) {
        (Some(found), _) if found.confirmed() => Verdict::Violations,
        (Some(_), _) => Verdict::Inconclusive,
        (None, Some(Short::Unjudged(u))) => u.verdict,
        (None, Some(Short::Interrupted)) => Verdict::Incomplete,
        (None, _) if interrupted => Verdict::Incomplete,
        (None, Some(Short::Budget) | None) => Verdict::Clean,
    }
}

/// Whether `repro`'s tokens came from a `list` (see [`unreplayable_note`]).
fn tokens_not_stored(repro: &Repro) -> bool {
    matches!(
        repro.plan.auth.tokens,
        Some(crate::model::TokenSource::List { .. })
    )
}

/// The hunt's whole time, which a find's own time leaves out: that counts from the first
/// round, after `calibrated` (calibration ran first), and ends before the confirming
/// replays (`replayed`).
fn total_time(elapsed: Duration, calibrated: bool, replayed: bool) -> String {
    let with = match (calibrated, replayed) {
        (true, true) => ", calibration and its confirming replays included",
        (true, false) => ", calibration included",
        (false, true) => ", its confirming replays included",
        (false, false) => "",
    };
    format!("{:.1}s in all{with}", elapsed.as_secs_f64())
}

/// A broken-target find on stdout: which round broke the target, the probe before and
/// after, what the repro keeps and how it replayed.
fn broken_report(
    found: &hunt::Found,
    (elapsed, rounds, calibrated): (Duration, u32, bool),
) -> Result<(), Error> {
    let r = &found.repro;
    let Some(h) = &r.health else {
        return Ok(());
    };
    let head = if found.confirmed() {
        ""
    } else {
        "unconfirmed suspect: "
    };
    outln!(
        "{head}the target was left broken by round {} (seed {}) {:.1}s in, {}; {}",
        h.broken_by_round,
        r.seed,
        found.seen_after.as_secs_f64(),
        plural(rounds, "round"),
        total_time(elapsed, calibrated, found.rate.runs > 0)
    )?;
    outln!("  health probe before: {}", h.before.answer)?;
    outln!("  health probe after:  {}", h.after.answer)?;
    let kept = if h.earlier.is_empty() {
        format!("round {} alone", h.broken_by_round)
    } else {
        format!(
            "rounds 0 to {} (damage accumulated over {})",
            h.broken_by_round,
            plural(h.earlier.len() as u64 + 1, "round")
        )
    };
    let confirmed = if found.rate.runs == 0 && found.rate.short.is_none() {
        format!(
            "{}, so not a find",
            replayed_said(&found.repro, &found.rate)
        )
    } else if found.confirmed() {
        format!("confirmed {} on replay (reset, rounds, probe)", found.rate)
    } else {
        format!(
            "{} (reset, rounds, probe), so not a find",
            found.rate.replayed_words()
        )
    };
    outln!(
        "  repro keeps {kept}, {}; {confirmed}",
        plural(hunt::health_size(r) as u64, "connection")
    )?;
    outln!("repro        {}", found.path.display())?;
    unreplayable_note(&found.repro)?;
    Ok(())
}

/// A shrink Ctrl-C stopped: its result is no minimal repro, and its last rate was not
/// measured. A plan smaller than the input's (every candidate kept reproduced the
/// violation when it was tried) is written as a partial repro, named so
/// ([`ShrinkArgs::partial_out`]); with none, nothing is written: the input stands.
fn interrupted_shrink(
    args: &ShrinkArgs,
    repro: &Repro,
    against: &str,
    outcome: hunt::ShrinkOutcome,
) -> Result<u8, Error> {
    let (n0, r0) = outcome.before;
    let n1 = outcome.after.0;
    let smaller = outcome.repro.plan != repro.plan;
    let output = if smaller {
        let path = args.partial_out();
        outcome.repro.save_as(&path)?;
        Some(path)
    } else {
        None
    };
    if args.output.json {
        print_json(&json!({
            "repro": args.repro.display().to_string(),
            "oracle": repro.oracle.name(),
            "target": against,
            "interrupted": true,
            "before": { "connections": n0, "rate": rate_json(&r0) },
            "candidates": outcome.candidates,
            "short": "interrupted",
            "partial_repro": output.as_ref().map(|p| p.display().to_string()),
            "partial_connections": output.as_ref().map(|_| n1),
        }))?;
        return Ok(exit::INTERRUPTED);
    }
    let tried = plural(outcome.candidates, "candidate");
    match output {
        Some(path) => {
            outln!(
                "shrink of {} violation interrupted: {n0} → {} so far, each step \
                 reproduced when tried; rate before {r0}; {tried} tried; not minimal, and \
                 its rate was not measured again; against {against}",
                repro.oracle.name(),
                plural(n1 as u64, "connection"),
            )?;
            outln!("partial repro {}", path.display())?;
        }
        None => outln!(
            "shrink of {} violation interrupted before any smaller repro was \
             confirmed: rate before {r0}; {tried} tried; nothing written ({} stands); \
             against {against}",
            repro.oracle.name(),
            args.repro.display()
        )?,
    }
    Ok(exit::INTERRUPTED)
}

/// A shrink whose repro did not reproduce before any candidate (`before`: its size and
/// rate): there is nothing to shrink, so nothing is written, and it exits as `replay` does
/// for a repro that no longer reproduces (0). When the budget left no replay at all, the
/// rate proves nothing: exit 7 (incomplete).
/// A shrink whose smallest candidate failed its check when measured again at the end
/// ([`hunt::ShrinkOutcome::unconfirmed`]): it did not reproduce, or reproduced at a rate
/// significantly below half the original's. No minimal repro is written, the original
/// stands, and the exit is inconclusive (4): neither a smaller repro nor a race gone.
fn unconfirmed_shrink(
    args: &ShrinkArgs,
    repro: &Repro,
    against: &str,
    outcome: &hunt::ShrinkOutcome,
    (n1, r1): &(usize, hunt::Rate),
) -> Result<u8, Error> {
    let (n0, r0) = &outcome.before;
    if args.output.json {
        let why = if r1.runs == 0 {
            "not_measured"
        } else if r1.reproduced == 0 {
            "not_reproduced"
        } else {
            "rate_below_half"
        };
        print_json(&json!({
            "repro": args.repro.display().to_string(),
            "oracle": repro.oracle.name(),
            "target": against,
            "before": { "connections": n0, "rate": rate_json(r0) },
            "unconfirmed": { "connections": n1, "rate": rate_json(r1), "why": why },
            "candidates": outcome.candidates,
            "minimal_repro": null,
        }))?;
        return Ok(exit::INCONCLUSIVE);
    }
    if r1.runs == 0 {
        // Not one run of the final measure could be judged: the target, not the repro.
        outln!(
            "not shrunk: the smallest candidate that held ({}) could not be measured again \
             ({r1}): the target stopped answering during the shrink, so nothing is known of \
             it; {} tried; against {against}",
            plural(*n1 as u64, "connection"),
            plural(outcome.candidates, "candidate")
        )?;
        outln!(
            "no minimal repro written: the original stands ({n0} connections, {r0}): {}; \
             shrink again once the target is up",
            args.repro.display()
        )?;
        return Ok(exit::INCONCLUSIVE);
    }
    if r1.reproduced > 0 {
        // It reproduced, but too rarely: the search's measures of it were lucky.
        outln!(
            "not shrunk: the smallest candidate that held ({}) reproduced {r1} when \
             measured again, significantly below half the original's {r0} (the rate every \
             candidate had to keep): it shows the {} violation more rarely than the \
             original; {} tried; against {against}",
            plural(*n1 as u64, "connection"),
            repro.oracle.name(),
            plural(outcome.candidates, "candidate")
        )?;
    } else {
        outln!(
            "not shrunk: the smallest candidate that held ({}) reproduced {r1} when \
             measured again, so it shows the {} violation only sometimes; {} tried; \
             against {against}",
            plural(*n1 as u64, "connection"),
            repro.oracle.name(),
            plural(outcome.candidates, "candidate")
        )?;
    }
    outln!(
        "no minimal repro written: the original stands ({n0} connections, {r0}): {}; shrink \
         again with a larger --times to keep only candidates that hold steadily",
        args.repro.display()
    )?;
    Ok(exit::INCONCLUSIVE)
}

fn not_reproduced(
    args: &ShrinkArgs,
    repro: &Repro,
    against: &str,
    (size, rate): &(usize, hunt::Rate),
) -> Result<u8, Error> {
    let code = if rate.runs == 0 {
        exit::INCOMPLETE
    } else {
        exit::CLEAN
    };
    if args.output.json {
        print_json(&json!({
            "repro": args.repro.display().to_string(),
            "oracle": repro.oracle.name(),
            "target": against,
            "before": { "connections": size, "rate": rate_json(rate) },
            "reproduced": false,
            "minimal_repro": null,
        }))?;
        return Ok(code);
    }
    let (what, then) = if rate.runs == 0 {
        let why = rate.cut_short().unwrap_or_default();
        (format!("was not replayed once ({why})"), "raise --budget; ")
    } else {
        (format!("did not reproduce ({rate})"), "")
    };
    outln!(
        "{}: the {} violation {what} against {against}: nothing to shrink, nothing written \
         ({then}the repro stands)",
        args.repro.display(),
        repro.oracle.name(),
    )?;
    Ok(code)
}

/// `path` with `.partial` before its extension (`repro-x.json` → `repro-x.partial.json`,
/// `int.min.json` → `int.min.partial.json`), or after its name when it has none.
pub(crate) fn partial_path(path: &std::path::Path) -> PathBuf {
    match path.extension() {
        Some(ext) => {
            let mut partial = std::ffi::OsString::from("partial.");
            partial.push(ext);
            path.with_extension(partial)
        }
        None => path.with_extension("partial"),
    }
}

/// The minimal repro's default path: next to `repro`, its `.json` replaced by
/// `.min.json` (`repro-identity-0123456789ab.min.json`).
pub(crate) fn min_path(repro: &std::path::Path) -> PathBuf {
    repro.with_extension("min.json")
}

/// A hunt's outcome as JSON on stdout.
fn hunt_json(
    scenario: &str,
    seed: u64,
    against: &str,
    outcome: &hunt::HuntOutcome,
    calibration: Option<&Proposal>,
    (unjudged, interrupted): (Option<String>, bool),
) -> Result<(), Error> {
    let found = outcome.found.as_ref().map(|f| {
        json!({
            "oracle": f.repro.oracle.name(),
            "round": f.repro.round,
            "seed": f.repro.seed,
            // The round that saw it ended then; `elapsed_s` adds the confirming replays.
            "seen_after_s": f.seen_after.as_secs_f64(),
            "connections": f.repro.size(),
            "rate": rate_json(&f.rate),
            // As the battery says it: a find no replay reproduced is a suspect.
            "result": if f.confirmed() { "found" } else { "suspect" },
            // Whether it needs its timing: spaced out, did it still break?
            "timing": f.timing.name(),
            "evidence": f.repro.evidence.first(),
            "broken_by_round": f.repro.health.as_ref().map(|h| h.broken_by_round),
            "repro": f.path.display().to_string(),
        })
    });
    print_json(&json!({
        "scenario": scenario,
        "seed": seed,
        "target": against,
        // What the hunt adds up to, as `run --json` says it: what the exit code says.
        "verdict": hunt_verdict(outcome, interrupted).name(),
        "rounds": outcome.rounds,
        "not_judged": outcome.not_judged,
        "cut_short": outcome.cut_short,
        // Answers that came after their `within`: slowness, set aside, not a find.
        "late_answers": outcome.late,
        // Deadlines a round's own end cut before an answer could come late: set aside.
        "unproven_deadlines": outcome.unproven,
        // Unmet expectations of a kind the script seems to misspell: set aside, not a find.
        "misspelled_unmet": outcome.misspelled,
        // Sends no `expect` follows: what no round could have found.
        "unjudged_sends": unjudged,
        // And what came after the connections' last such sends, over every round.
        "after_unjudged_sends": {
            "connections": outcome.counters.unjudged_senders,
            "nothing_after": outcome.counters.unjudged_unanswered,
            "frames_after": outcome.counters.after_unjudged_frames,
        },
        "elapsed_s": outcome.elapsed.as_secs_f64(),
        "calibration": calibration_json(calibration),
        "found": found,
        "pressure": outcome.pressure.iter().map(|l| json!({
            "level": l.level,
            "users": l.users,
            "sends_per_connection": l.sends,
            "send_gap_us": l.send_gap.map(|g| g.as_micros() as u64),
            "connections": l.connections,
            "rounds": l.rounds,
            "clean": l.clean,
            "not_judged": l.not_judged,
            "jitter_us": l.jitter.map(|j| j.as_micros() as u64),
            "spread_p99_us": l.spread_p99_us,
            "spread_max_us": l.spread_max_us,
            "ceiling": l.ceiling,
            // What stops the climb there: only the ceiling level has one.
            "limited_by": l.ceiling.then_some(&l.limited_by),
        })).collect::<Vec<_>>(),
        // Interrupted while it confirmed a find: the hunt was cut short too, as one
        // interrupted before it found anything says.
        "short": outcome
            .short
            .as_ref()
            .or_else(|| {
                let confirming = outcome.found.as_ref().and_then(|f| f.rate.short.as_ref());
                confirming.filter(|s| matches!(s, Short::Interrupted))
            })
            .map(short_name),
        "unjudged": unjudged_json(outcome.short.as_ref()),
        // Health probes the server shed, and those still shed when their wait ran out.
        "health_shed": {
            "answers": outcome.health_shed.answers,
            "inconclusive": outcome.health_shed.inconclusive,
            "last": outcome.health_shed.last,
        },
        // The rounds' attempts the server shed under load: "not now", which judged nothing.
        "shed": { "attempts": outcome.shed.shed, "of": outcome.shed.attempted },
    }))
}

/// What the runner's calibration learned, on stderr, and, when its time bound cut it, what
/// it had time for.
pub(super) fn learned_lines(runner: &Runner) {
    // What `learn` says when the target accepted no calibration connection; "no invariant
    // held" would blame the invariants for what the target did.
    let calibration = runner.calibration.as_ref();
    if let Some(p) = calibration.filter(|p| p.interrupted) {
        errln!(
            "learned      nothing: calibration was interrupted (Ctrl-C) after {}",
            p.progress()
        );
        return;
    }
    match calibration.and_then(|p| p.none_accepted(runner.url())) {
        // The budget's share ran out before the first connection (the note below says so).
        Some(_) if calibration.is_some_and(|p| p.valid.0 == 0) => {
            errln!("learned      nothing (no calibration connection was made)")
        }
        Some(none) => errln!("learned      nothing: {}; {}", none.what(), none.check()),
        None => errln!("{}", crate::report::learned_line(&runner.learned)),
    }
    if let Some(note) = runner.calibration.as_ref().and_then(calibration_cut) {
        errln!("{note}");
    }
}

/// `calibration  cut short by the budget after 1.2s: 1 of 4 connections made (…)`, when
/// calibration's time bound cut it before it made every connection; when it had made them
/// all, that their scripts were cut before their end. `None` when it was not cut.
pub(super) fn calibration_cut(p: &Proposal) -> Option<String> {
    let what = if p.made() < p.planned {
        format!("{} made", p.progress())
    } else {
        format!(
            "{} made, their scripts cut before their end",
            plural(p.planned as u64, "connection")
        )
    };
    // With none made, or none the target accepted (a server that never answers the
    // upgrade), nothing was learned (said above): no invariants come from it.
    let from = if p.made() == 0 {
        "nothing was learned"
    } else if p.valid.1 == 0 {
        "none was accepted, so nothing was learned"
    } else {
        "the invariants above come from what they saw"
    };
    p.cut.then(|| {
        format!(
            "calibration  cut short by the budget after {:.1}s: {what}; {from} (raise --budget, or --no-learn)",
            p.elapsed.as_secs_f64(),
        )
    })
}

/// Calibration as JSON: connections planned and made, whether its time bound cut it, and
/// how long it took; null when it did not run.
pub(super) fn calibration_json(p: Option<&Proposal>) -> serde_json::Value {
    p.map_or(serde_json::Value::Null, |p| {
        json!({
            "planned": p.planned,
            "made": p.made(),
            "accepted": p.valid.1,
            "cut_by_budget": p.cut,
            "interrupted": p.interrupted,
            "elapsed_s": p.elapsed.as_secs_f64(),
        })
    })
}

/// `{"verdict": ..., "hint": ...}` when a run could not judge the target, else null.
fn unjudged_json(short: Option<&Short>) -> serde_json::Value {
    match short {
        Some(Short::Unjudged(u)) => json!({ "verdict": u.verdict.name(), "hint": u.hint }),
        _ => serde_json::Value::Null,
    }
}

/// Which rounds a hunt that stopped unjudged speaks of: `every one of the 3 rounds` when
/// each judged nothing for the one reason given; `round 1 (no round before it was judged
/// either)` when the rounds before the last judged nothing for other reasons (a server
/// that went down in one, then was found unusable); `round N` when some were judged.
fn stopped_when(outcome: &hunt::HuntOutcome) -> String {
    let last = outcome.rounds.saturating_sub(1);
    if outcome.rounds == 0 {
        "the hunt".to_string()
    } else if outcome.rounds == 1 || outcome.not_judged < outcome.rounds {
        format!("round {last}")
    } else if outcome.alike_throughout {
        format!("every one of the {} rounds", outcome.rounds)
    } else {
        format!("round {last} (no round before it was judged either)")
    }
}

/// Says why a hunt, replay or shrink stopped without a verdict on the race (`so`: what
/// that means for the command), and exits with that verdict's code: an unusable or
/// misconfigured target is never a repro. The line is the command's result, on stdout as
/// `run`'s verdict line is (`-q` keeps it); with `--json` (`json`), whose object on stdout
/// already says it (`unjudged`), it goes to stderr.
fn unjudged(when: &str, stopped: &Unjudged, so: &str, json: bool) -> Result<u8, Error> {
    let line = unjudged_line(when, stopped, so);
    if json {
        errln!("{line}");
    } else {
        outln!("{line}")?;
    }
    Ok(super::error::of_verdict(stopped.verdict))
}

/// What a replay's runs broke besides the repro's oracle: `identity in 3 of 3 replays,
/// ordering in 1 of 3: other oracles' findings ...`; `None` when nothing else broke. They
/// may be the same fault seen from another side (a private event delivered to the wrong
/// user leaves its owner's sequence incomplete) or another fault; either way no pass.
fn others_broken_words(
    others: &std::collections::BTreeMap<crate::model::OracleKind, u32>,
    runs: u32,
) -> Option<String> {
    if others.is_empty() {
        return None;
    }
    let each: Vec<String> = others
        .iter()
        .map(|(oracle, n)| format!("{} in {n} of {runs} replays", oracle.name()))
        .collect();
    Some(format!(
        "{}: other oracles' findings beside this repro's (the same fault seen from another \
         side, as a leaked event's owner left waiting for it, or another one: `stampede run` \
         of the repro's scenario lists them), and no pass either",
        each.join(", ")
    ))
}

/// What the replays of an unconfirmed find showed ([`hunt::Rate::replayed_words`]); a
/// broken-target find none replayed says why: without `--reset` the target stays broken,
/// and a replay against it would prove nothing (not `--times 0`, which sent users to raise
/// a count that changes nothing).
pub(super) fn replayed_said(repro: &Repro, rate: &hunt::Rate) -> String {
    if repro.health.is_some() && rate.runs == 0 && rate.short.is_none() {
        return "not replayed (no --reset: the target stays broken)".to_string();
    }
    rate.replayed_words()
}

/// [`unjudged`]'s line: `stopped: round 2 was target_unusable (its hint); no repro was
/// written`, without the parentheses when the verdict gave no hint.
fn unjudged_line(when: &str, stopped: &Unjudged, so: &str) -> String {
    match stopped.hint.as_str() {
        "" => format!("stopped: {when} was {}; {so}", stopped.verdict),
        hint => format!("stopped: {when} was {} ({hint}); {so}", stopped.verdict),
    }
}

/// What a progress line says of a round: its violations, or, when the round could not
/// judge the target, its verdict and what the verdict saw (its violations are then no
/// findings: every valid token refused reads as liveness violations); the same for a
/// round without violations that judged no race (inconclusive: shedding ate its coverage).
pub(super) fn round_result(p: &hunt::Progress) -> String {
    // A round that judged nothing says why, not "0 violations" (which reads as a pass).
    let not_judged = p.not_judged.as_ref().filter(|_| p.violations == 0);
    match p.unjudged.as_ref().or(not_judged) {
        None if p.interrupted && p.violations == 0 => {
            "interrupted — no violation before Ctrl-C stopped it".to_string()
        }
        None => plural(p.violations, "violation"),
        Some(u) => {
            let verdict = u.verdict.name().replace('_', " ");
            match hint_finding(&u.hint) {
                "" => format!("{verdict} — not judged"),
                seen => format!("{verdict} — {seen}"),
            }
        }
    }
}

/// A round line's connections, the count right-aligned in `width`: those the round
/// dialled, never the plan's count, since a round stopped early (a closed port's first
/// refusals, Ctrl-C, the budget) never started the rest; then of how many planned
/// (`   10 of 200 connections`). The singular keeps the plural's column (`1 connection `).
pub(super) fn round_connections(p: &hunt::Progress, width: usize) -> String {
    let count = if p.connections < p.planned {
        format!("{} of {}", p.connections, p.planned)
    } else {
        p.connections.to_string()
    };
    let noun = if count == "1" {
        "connection "
    } else {
        "connections"
    };
    format!("{count:>width$} {noun}")
}

/// What a verdict's hint says was seen, without what to check: the hint up to its first
/// `": "` outside parentheses (`every valid token was refused (http_401 ×20)` of
/// `every valid token was refused (http_401 ×20): check the signing secret …`).
fn hint_finding(hint: &str) -> &str {
    let mut depth = 0u32;
    for (at, c) in hint.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ':' if depth == 0 && hint[at + 1..].starts_with(' ') => return &hint[..at],
            _ => {}
        }
    }
    hint
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broken-target find no replay ran says that without `--reset` the target stays
    /// broken (the battery said "--times 0", sending users to raise a count that changes
    /// nothing); another find none replayed says `--times 0`.
    #[test]
    fn a_broken_target_find_not_replayed_says_reset_not_times() {
        let text = "name = \"r\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{ close = 1000 }]\n";
        let s = crate::scenario::load_str(text, "r.toml").unwrap();
        let plan = crate::plan::build(&s, 1);
        let mut repro = Repro::for_plan(
            &s,
            1,
            plan.clone(),
            "ws://127.0.0.1:9/ws".into(),
            crate::model::OracleKind::TargetHealth,
        );
        let none = hunt::Rate {
            reproduced: 0,
            runs: 0,
            planned: 3,
            short: None,
            shed: 0,
        };
        assert_eq!(replayed_said(&repro, &none), "not replayed (--times 0)");
        let answer = hunt::ProbeAnswer {
            healthy: true,
            answer: "accepted; 1/1 expectations met".into(),
            elapsed_ms: 1.0,
            shed: None,
        };
        repro.health = Some(hunt::HealthFinding {
            broken_by_round: 0,
            probe: plan,
            before: answer.clone(),
            after: hunt::ProbeAnswer {
                healthy: false,
                ..answer
            },
            earlier: Vec::new(),
        });
        assert_eq!(
            replayed_said(&repro, &none),
            "not replayed (no --reset: the target stays broken)"
        );
    }

    /// A find's own time counts from the first round and ends before its replays: the
    /// whole time names each part it adds (calibration, replays), and only those.
    #[test]
    fn the_whole_time_names_what_the_finds_time_leaves_out() {
        let t = Duration::from_millis(3_250);
        assert_eq!(
            total_time(t, true, true),
            "3.2s in all, calibration and its confirming replays included"
        );
        assert_eq!(
            total_time(t, true, false),
            "3.2s in all, calibration included"
        );
        assert_eq!(
            total_time(t, false, true),
            "3.2s in all, its confirming replays included"
        );
        assert_eq!(total_time(t, false, false), "3.2s in all");
    }

    /// A find's evidence names the token a connection presented, and none when the run
    /// presents none (`placement = "none"`).
    #[test]
    fn the_evidence_line_names_a_token_only_when_one_was_presented() {
        let v = crate::results::fixture::violation(crate::model::OracleKind::Completeness, 1.0);
        let header = crate::model::Placement::Query {
            param: "token".into(),
        };
        let line = evidence_line(&v, &header);
        let who = format!("  conn {} user {} ({})", v.conn, v.user, v.group);
        assert!(
            line.starts_with(&format!("{who} jti {}: expected", v.jti)),
            "{line}"
        );
        let line = evidence_line(&v, &crate::model::Placement::None);
        assert!(line.starts_with(&format!("{who}: expected")), "{line}");
        assert!(!line.contains("jti"), "{line}");
    }

    /// A stop line quotes the verdict's hint, and leaves out empty parentheses when the
    /// verdict gave none.
    #[test]
    fn a_stop_line_leaves_out_a_hint_the_verdict_did_not_give() {
        let stopped = |hint: &str| Unjudged {
            verdict: crate::model::Verdict::Incomplete,
            hint: hint.into(),
        };
        assert_eq!(
            unjudged_line("round 2", &stopped(""), "no repro was written"),
            "stopped: round 2 was incomplete; no repro was written"
        );
        assert_eq!(
            unjudged_line("the hunt", &stopped("why"), "so"),
            "stopped: the hunt was incomplete (why); so"
        );
    }

    /// A repro of a scenario whose tokens come from a list cannot be replayed (repro files
    /// never store the values), and the hunt says so; one of minted tokens can.
    #[test]
    fn a_repro_of_listed_tokens_is_said_to_be_unreplayable() {
        let repro_of = |auth: &str| {
            let text = format!(
                "name = \"l\"\nduration = \"1s\"\n{auth}\n[[group]]\nname = \"g\"\nusers = 1\n\
                 steps = [{{ close = 1000 }}]\n"
            );
            let s = crate::scenario::load_str(&text, "l.toml").unwrap();
            let plan = crate::plan::build(&s, 1);
            Repro::for_plan(
                &s,
                1,
                plan,
                "ws://127.0.0.1:9/ws".into(),
                crate::model::OracleKind::Completeness,
            )
        };
        let listed = repro_of("[auth]\ntokens = { list = [\"opaque-token-0000000001\"] }");
        assert!(tokens_not_stored(&listed));
        assert!(!tokens_not_stored(&repro_of("")));
    }

    /// `hunt --json`'s verdict reads as its exit code does.
    #[test]
    fn a_hunt_s_verdict_reads_as_its_exit_code() {
        let outcome = |short: Option<Short>| hunt::HuntOutcome {
            rounds: 1,
            not_judged: 0,
            alike_throughout: false,
            cut_short: 0,
            elapsed: Duration::ZERO,
            found: None,
            short,
            pressure: Vec::new(),
            excused: 0,
            first_excused: None,
            late: 0,
            unproven: 0,
            misspelled: 0,
            counters: Default::default(),
            health_shed: hunt::HealthShed::default(),
            shed: hunt::RoundsShed::default(),
            lenient: Default::default(),
        };
        use crate::model::Verdict;
        // Which rounds the stopped line speaks of.
        let mut rounds = outcome(None);
        (rounds.rounds, rounds.not_judged) = (3, 3);
        assert_eq!(
            stopped_when(&rounds),
            "round 2 (no round before it was judged either)"
        );
        rounds.alike_throughout = true;
        assert_eq!(stopped_when(&rounds), "every one of the 3 rounds");
        rounds.not_judged = 1;
        assert_eq!(stopped_when(&rounds), "round 2");
        assert_eq!(hunt_verdict(&outcome(None), false), Verdict::Clean);
        assert_eq!(
            hunt_verdict(&outcome(Some(Short::Budget)), false),
            Verdict::Clean
        );
        assert_eq!(hunt_verdict(&outcome(None), true), Verdict::Incomplete);
        let unusable = Short::Unjudged(hunt::Unjudged {
            verdict: Verdict::TargetUnusable,
            hint: String::new(),
        });
        assert_eq!(
            hunt_verdict(&outcome(Some(unusable)), false),
            Verdict::TargetUnusable
        );
    }

    /// The rounds a hunt could not judge are told apart from those only cut short.
    #[test]
    fn rounds_cut_short_are_not_called_unexercised() {
        assert_eq!(not_judged_words(0, 0), "");
        assert_eq!(
            not_judged_words(1, 1),
            ", 1 of them cut short before its plan finished"
        );
        assert_eq!(
            not_judged_words(3, 1),
            ", 2 of them not judged: inconclusive, 1 of them cut short before \
             its plan finished"
        );
        assert_eq!(
            not_judged_words(2, 0),
            ", 2 of them not judged: inconclusive"
        );
    }

    /// Cut before its last connection, the line counts the connections made; cut after
    /// making them all, it says their scripts were cut (not "3 of 3 made" as a shortfall).
    #[test]
    fn a_cut_calibration_says_what_the_cut_took() {
        let cut = |made: usize| Proposal {
            valid: (made, made),
            planned: 3,
            cut: true,
            elapsed: Duration::from_millis(1_000),
            ..Proposal::default()
        };
        let short = calibration_cut(&cut(1)).unwrap_or_default();
        assert!(
            short.contains("after 1.0s: 1 of 3 connections made;"),
            "{short}"
        );
        let all = calibration_cut(&cut(3)).unwrap_or_default();
        assert!(
            all.contains("after 1.0s: 3 connections made, their scripts cut before their end;"),
            "{all}"
        );
        let whole = Proposal {
            cut: false,
            ..cut(3)
        };
        assert_eq!(calibration_cut(&whole), None);
        // None made: nothing was learned, and no "invariants above" are claimed.
        let none = calibration_cut(&cut(0)).unwrap_or_default();
        assert!(
            none.contains("0 of 3 connections made; nothing was learned"),
            "{none}"
        );
        assert!(short.contains("the invariants above come from what they saw"));
        // Made, but none accepted (an upgrade never answered): nothing learned either.
        let unanswered = Proposal {
            valid: (1, 0),
            ..cut(1)
        };
        let said = calibration_cut(&unanswered).unwrap_or_default();
        assert!(
            said.contains("none was accepted, so nothing was learned")
                && !said.contains("invariants above"),
            "{said}"
        );
    }
}

#[cfg(test)]
mod next_step_tests {
    use super::*;
    use clap::Parser;

    fn hunt_args(extra: &[&str]) -> HuntArgs {
        let argv = [&["stampede", "hunt", "s.toml"][..], extra].concat();
        match crate::cli::Cli::try_parse_from(argv) {
            Ok(crate::cli::Cli {
                command: crate::cli::Command::Hunt(args),
                ..
            }) => args,
            other => panic!("{other:?}"),
        }
    }

    /// A find's `next` line is a command a shell takes as it is: the repro quoted when its
    /// path has a space, and what the hunt needed that the repro does not keep.
    #[test]
    fn the_suggested_shrink_keeps_the_hunts_reset_addresses_and_trust() {
        let path = std::path::Path::new("/tmp/with space/repro.json");
        assert_eq!(
            shrink_command_line(path, &built_in(), &hunt_args(&[])),
            "stampede shrink '/tmp/with space/repro.json'"
        );
        let args = hunt_args(&[
            "--reset",
            "systemctl restart chat",
            "--reset-timeout",
            "5s",
            "--source-addr",
            "127.0.0.2,127.0.0.3",
            "--ca-file",
            "ca.pem",
        ]);
        assert_eq!(
            shrink_command_line(std::path::Path::new("r.json"), &built_in(), &args),
            "stampede shrink r.json --reset 'systemctl restart chat' --reset-timeout 5s \
             --source-addr '127.0.0.2,127.0.0.3' --ca-file ca.pem"
        );
        // `--insecure` instead of a CA (the two are refused together).
        let insecure = hunt_args(&["--insecure"]);
        assert_eq!(
            shrink_command_line(std::path::Path::new("r.json"), &built_in(), &insecure),
            "stampede shrink r.json --insecure"
        );
        let default_timeout = hunt_args(&["--reset", "true"]);
        assert_eq!(
            shrink_command_line(
                std::path::Path::new("r.json"),
                &built_in(),
                &default_timeout
            ),
            "stampede shrink r.json --reset true"
        );
    }

    /// A find whose scenario gave its secret as a literal (never written to the repro)
    /// suggests its shrink and replay with the variable to set before them; one whose
    /// secret comes from the environment or a file needs nothing more.
    #[test]
    fn the_suggested_commands_set_the_secret_the_repro_does_not_store() {
        let repro = |secret: &str| {
            let text = format!(
                "name = \"s\"\nduration = \"1s\"\n[auth]\nsecret = {secret}\n[[group]]\n\
                 name = \"g\"\nusers = 1\nsteps = [{{ close = 1000 }}]\n"
            );
            let scenario = crate::scenario::load_str(&text, "s.toml").expect("a valid scenario");
            let plan = crate::plan::build(&scenario, 1);
            Repro::for_plan(
                &scenario,
                1,
                plan,
                "ws://127.0.0.1:9/ws".into(),
                crate::model::OracleKind::Identity,
            )
        };
        assert_eq!(
            env_to_set_said(&repro("{ value = \"TopSecretValue42\" }")),
            "STAMPEDE_JWT_SECRET='<the scenario's value>' "
        );
        assert_eq!(env_to_set_said(&repro("{ env = \"MY_SECRET\" }")), "");
    }

    /// A replay of 0 from a repro that reproduced only sometimes says how often a server
    /// still broken shows that, and how many replays a fix check needs (3/10: 0/5 about
    /// 17%, 9 replays); a certain repro, a replay that reproduced, or one long enough
    /// says nothing.
    #[test]
    fn a_zero_from_an_unreliable_repro_says_how_often_a_broken_server_shows_it() {
        let note = unlucky_zero_note(Some((3, 10)), 0, 5).unwrap_or_default();
        assert!(
            note.contains("reproduced 3/10 when it was made")
                && note.contains("0/5 about 17% of the times")
                && note.contains("--times 9 or more"),
            "{note}"
        );
        assert_eq!(unlucky_zero_note(Some((10, 10)), 0, 5), None);
        assert_eq!(unlucky_zero_note(Some((3, 10)), 1, 5), None);
        assert_eq!(unlucky_zero_note(Some((3, 10)), 0, 10), None);
        assert_eq!(unlucky_zero_note(Some((3, 10)), 0, 0), None);
        assert_eq!(unlucky_zero_note(None, 0, 5), None);
    }

    /// A repro made against the built-in server.
    fn built_in() -> Target {
        Target::Reference {
            bug: None,
            window: None,
        }
    }

    /// A repro whose target lost a credential to `***` is refused by replay and shrink
    /// without `--target`: the suggested shrink gives one, a placeholder to fill in (the
    /// real URL holds the secret, never printed). A whole URL the repro names itself.
    #[test]
    fn the_suggested_shrink_asks_for_the_url_whose_credential_the_repro_lost() {
        let path = std::path::Path::new("r.json");
        let masked = Target::Url("ws://127.0.0.1:9/ws?api_key=***&room=1".into());
        assert_eq!(
            shrink_command_line(path, &masked, &hunt_args(&["--insecure"])),
            "stampede shrink r.json --target '<the real URL>' --insecure"
        );
        let password = Target::Url("ws://me:***@127.0.0.1:9/ws".into());
        assert_eq!(
            shrink_command_line(path, &password, &hunt_args(&[])),
            "stampede shrink r.json --target '<the real URL>'"
        );
        for whole in [
            "ws://127.0.0.1:9/ws?room=1",
            "ws://127.0.0.1:9/ws?api_key=${API_KEY}",
        ] {
            let whole = Target::Url(whole.into());
            assert_eq!(
                shrink_command_line(path, &whole, &hunt_args(&[])),
                "stampede shrink r.json"
            );
            assert_eq!(target_to_fill_said(&whole), "");
        }
        // As a suggested replay ends in a sentence (hunt's and the battery's suspects).
        assert_eq!(target_to_fill_said(&masked), " --target '<the real URL>'");
        assert_eq!(target_to_fill_said(&built_in()), "");
    }
}
