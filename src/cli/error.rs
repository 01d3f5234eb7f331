//! The command-line's error type and the one table of exit codes (README lists them).
//!
//! Library modules return their own typed errors; this is where they meet, and where an
//! error or a run's outcome becomes a process exit code, as nextest's
//! `process_exit_code` does.

use crate::hunt::{HuntError, ReproError};
use crate::model::{StopReason, Verdict};
use crate::results::{Summary, WriteError};
use crate::run::RunError;
use crate::scenario::ScenarioError;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io;

/// Exit codes, in one place.
pub mod exit {
    /// Clean run: no violations, no breached thresholds.
    pub const CLEAN: u8 = 0;
    /// Violations found (or thresholds breached).
    pub const VIOLATIONS: u8 = 1;
    /// Bad usage or bad scenario.
    pub const USAGE: u8 = 2;
    /// stampede itself failed.
    pub const INTERNAL: u8 = 3;
    /// No violation, but the race the scenario aims at never happened: not a pass.
    pub const INCONCLUSIVE: u8 = 4;
    /// No connection got through the upgrade (closed port, not a WebSocket server, TLS
    /// mismatch, garbage, silence): the run exercised nothing.
    pub const TARGET_UNUSABLE: u8 = 5;
    /// Every token the scenario signed (or took from `[auth] tokens`) was refused with an
    /// auth status: secret, key, aud or iss.
    pub const AUTH_MISCONFIGURED: u8 = 6;
    /// The plan did not finish within its duration.
    pub const INCOMPLETE: u8 = 7;
    /// Every failure was the client's own limit (file descriptors, ephemeral ports).
    pub const CLIENT_LIMITED: u8 = 8;
    /// The server answered, but not one record had a kind the scenario reads, and every
    /// violation was an unmet expectation: the scenario does not read the protocol.
    pub const UNREADABLE: u8 = 9;
    /// Interrupted by Ctrl-C; partial results were written.
    pub const INTERRUPTED: u8 = 130;
}

/// `run --help`'s list of exit codes (the README's table says more of each).
pub const RUN_EXIT_CODES: &str = "Exit codes:
  0    clean: the target was exercised and nothing broke
  1    violations (or a clean run with a [thresholds] entry breached)
  2    bad usage or scenario, or a plan this machine cannot hold
  3    stampede itself failed
  4    inconclusive: the race the scenario aims at never happened
  5    target unusable: no connection got through the upgrade, or none was
       accepted or had a request answered past the handshake
  6    auth misconfigured: every token the scenario sent was refused
  7    incomplete: the plan did not finish within its duration
  8    client-limited: the client's own limits (file descriptors, ports)
  9    unreadable: the scenario does not read what the server says
  130  interrupted (Ctrl-C, SIGTERM): partial results written";

/// `hunt --help`'s list of exit codes.
pub const HUNT_EXIT_CODES: &str = "Exit codes:
  0    nothing found in the budget
  1    a find its replays confirmed (repro written)
  2    bad usage or scenario, or a --reset command that failed
  3    stampede itself failed
  4    an unconfirmed suspect: seen, not yet reproduced by a replay; or every round was
       inconclusive (nothing judged: a script the server never answered)
  5-9  the rounds could not judge the target (that verdict's code, as for run)
  130  interrupted (a repro written only of a race it saw)";

/// `replay --help`'s list of exit codes.
pub const REPLAY_EXIT_CODES: &str = "Exit codes:
  0    every replay judged the race and none reproduced it, nor broke another oracle
  1    at least one replay reproduced it, or broke another oracle (`also broke`)
  2    bad usage, an unreadable repro, or a --reset command that failed
  3    stampede itself failed
  4    a replay could not have reproduced it (no connection accepted, no token shared
       for exclusivity), or every replay of a broken-target find was shed
  5-9  the replays could not judge the target (that verdict's code, as for run)
  130  interrupted (the rate so far is printed)";

/// `learn --help`'s list of exit codes.
pub const LEARN_EXIT_CODES: &str = "Exit codes:
  0    invariants learned and printed
  2    bad usage or scenario
  3    stampede itself failed
  5    target unusable: the target accepted no calibration connection
  6    auth misconfigured: no calibration connection was accepted, their tokens refused
  130  interrupted (what was learned so far is printed)";

/// `compare --help`'s list of exit codes.
pub const COMPARE_EXIT_CODES: &str = "Exit codes:
  0    no regression
  1    a regression (or a gated phase one side lacks, or a NEW verdict worse
       than a clean BASE)
  2    bad usage (different scenarios without --force, an unreadable run)
  8    not judged: what got worse was measured by a NEW run whose client
       fell behind, by no more than its lag explains (or a NEW run ended
       client-limited); run it again";

/// `merge --help`'s list of exit codes: the merged result's, as `run`'s for one run.
pub const MERGE_EXIT_CODES: &str = "Exit codes:
  0    clean: the merged result was exercised and nothing broke
  1    violations (or a clean result with a [thresholds] entry breached)
  2    bad usage: runs that do not merge (other scenarios, seeds, splits,
       one given twice), an unreadable run, an --out folder already used
  3    stampede itself failed
  4-9  the merged verdict's code, as for run; 7 (incomplete) also when a
       shard is missing or a part was interrupted (its result is partial)";

/// `shrink --help`'s list of exit codes.
pub const SHRINK_EXIT_CODES: &str = "Exit codes:
  0    the repro does not reproduce: nothing to shrink, nothing written
  1    it reproduces: a smaller repro was written, or none was found
       (already minimal: nothing written, the input stands)
  2    bad usage, an unreadable repro, or a --reset command that failed
  3    stampede itself failed
  4    no smaller repro could be claimed: the original stands
  5-9  the runs could not judge the target (that verdict's code, as for run)
  130  interrupted (a smaller repro kept so far is written as .partial.json)";

/// The exit code of a run: interrupted, then stampede's own failures, then the verdict;
/// a clean run with a breached threshold exits 1.
pub fn of_run(summary: &Summary) -> u8 {
    if summary.stopped == StopReason::Interrupted {
        exit::INTERRUPTED
    } else if summary.counters.task_failures > 0 {
        exit::INTERNAL
    } else if summary.verdict == Verdict::Clean && !summary.thresholds_met() {
        exit::VIOLATIONS
    } else {
        of_verdict(summary.verdict)
    }
}

/// The exit code of a verdict.
pub fn of_verdict(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Clean => exit::CLEAN,
        Verdict::Violations => exit::VIOLATIONS,
        Verdict::Inconclusive => exit::INCONCLUSIVE,
        Verdict::TargetUnusable => exit::TARGET_UNUSABLE,
        Verdict::AuthMisconfigured => exit::AUTH_MISCONFIGURED,
        Verdict::Incomplete => exit::INCOMPLETE,
        Verdict::ClientLimited => exit::CLIENT_LIMITED,
        Verdict::Unreadable => exit::UNREADABLE,
    }
}

/// Why a command could not do its job (as opposed to what it found in the target).
///
/// Wrapped module errors are `transparent`: their message is the whole message, and
/// [`std::error::Error::source`] goes straight on to their own cause, so the chain that
/// [`render`] walks holds no wrapper that only repeats its inner error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Hunt(#[from] HuntError),
    #[error(transparent)]
    Repro(#[from] ReproError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("reference server")]
    Server(#[from] crate::reference::TargetError),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Workers(#[from] super::workers::EveryWorkerLost),
}

impl Error {
    /// A usage error (exit 2) worded as `e` is: what the command was given cannot be used
    /// (a run folder that cannot be read, runs that do not merge).
    pub fn usage(e: impl std::fmt::Display) -> Error {
        Error::Usage(e.to_string())
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Scenario(_) | Error::Usage(_) | Error::Repro(_) => exit::USAGE,
            Error::Run(e) | Error::Hunt(HuntError::Run(e)) => run_error_code(e),
            // A `--reset` command that fails is the user's tool, not ours or the target's.
            Error::Hunt(
                HuntError::Repro(_) | HuntError::Reset(_) | HuntError::ResetAfterFind { .. },
            ) => exit::USAGE,
            Error::Write(_) | Error::Server(_) | Error::Io(_) => exit::INTERNAL,
            // Its own processes gone: stampede failed, not the user nor the target.
            Error::Workers(_) => exit::INTERNAL,
        }
    }

    /// Whether writing to a closed pipe caused this (`stampede plan … | head`): the reader
    /// has all it wanted, so the command ends quietly with 0, as ripgrep does.
    pub fn is_broken_pipe(&self) -> bool {
        let broken = |e: &io::Error| e.kind() == io::ErrorKind::BrokenPipe;
        // `Io` is transparent, so its io::Error is not among the causes below.
        matches!(self, Error::Io(e) if broken(e))
            || causes(self).any(|cause| cause.downcast_ref::<io::Error>().is_some_and(broken))
    }
}

/// The causes of `err`, nearest first (not `err` itself).
pub fn causes<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(err.source(), |&cause| cause.source())
}

/// `error: MESSAGE`, then one `  caused by: CAUSE` line per cause whose text the message
/// above it does not already include (many errors here say `…: {source}`). A scenario's
/// problems are printed as `validate` prints them, one `FILE:LINE:COLUMN: MESSAGE` a
/// line, with no label: the form editors and CI annotators read, which an `error: ` before
/// the first would hide.
pub fn render(err: &(dyn StdError + 'static)) -> String {
    if is_located(err) {
        return message(err);
    }
    format!("error: {}", message(err))
}

/// Whether `err` is a scenario's problems, each of whose lines starts with its
/// file:line:column.
fn is_located(err: &(dyn StdError + 'static)) -> bool {
    let invalid = |e: &ScenarioError| matches!(e, ScenarioError::Invalid { .. });
    match err.downcast_ref::<Error>() {
        Some(Error::Scenario(e)) => invalid(e),
        Some(_) => false,
        None => err.downcast_ref::<ScenarioError>().is_some_and(invalid),
    }
}

/// Whether `err` refuses the target URL itself (its scheme, its placeholders, a variable
/// it names): what a URL from `STAMPEDE_TARGET` is then named for.
pub fn is_target_url(err: &Error) -> bool {
    matches!(
        err,
        Error::Run(RunError::Url(_)) | Error::Hunt(HuntError::Run(RunError::Url(_)))
    )
}

/// The line added under an error about a target URL that came from the environment:
/// nothing on the command line shows it.
pub const TARGET_FROM_ENV: &str =
    "  (the target came from the STAMPEDE_TARGET environment variable)\n";

/// What [`render`] says of `err` without its `error: ` label: the message, then one
/// `  caused by: CAUSE` line per cause it does not already include (the text of a
/// refusal's JUnit error, for one).
pub fn message(err: &(dyn StdError + 'static)) -> String {
    let mut above = err.to_string();
    let mut text = format!("{above}\n");
    for cause in causes(err) {
        let message = cause.to_string();
        if !above.contains(&message) {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "  caused by: {message}");
        }
        above = message;
    }
    text
}

fn run_error_code(e: &RunError) -> u8 {
    match e {
        RunError::Auth(_)
        | RunError::Tls(_)
        | RunError::Url(_)
        | RunError::Capacity(_)
        | RunError::Source(_)
        | RunError::Feed(_) => exit::USAGE,
        RunError::Server(_) | RunError::Write(_) => exit::INTERNAL,
        RunError::Interrupted => exit::INTERRUPTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verdict_has_its_own_exit_code() {
        let table = [
            (Verdict::Clean, exit::CLEAN),
            (Verdict::Violations, exit::VIOLATIONS),
            (Verdict::Inconclusive, exit::INCONCLUSIVE),
            (Verdict::TargetUnusable, exit::TARGET_UNUSABLE),
            (Verdict::AuthMisconfigured, exit::AUTH_MISCONFIGURED),
            (Verdict::Incomplete, exit::INCOMPLETE),
            (Verdict::ClientLimited, exit::CLIENT_LIMITED),
            (Verdict::Unreadable, exit::UNREADABLE),
        ];
        let mut codes = std::collections::BTreeSet::new();
        for (verdict, code) in table {
            assert_eq!(of_verdict(verdict), code, "{verdict}");
            assert!(codes.insert(code), "{verdict} shares its code");
        }
        for taken in [exit::USAGE, exit::INTERNAL, exit::INTERRUPTED] {
            assert!(!codes.contains(&taken));
        }
    }

    #[test]
    fn interrupted_and_breached_thresholds_override_the_verdict_code() {
        let mut s = crate::results::fixture::summary();
        s.violations = Default::default();
        assert_eq!(of_run(&s), exit::CLEAN);
        s.thresholds = vec![crate::results::fixture::breached_threshold()];
        assert_eq!(of_run(&s), exit::VIOLATIONS);
        s.verdict = Verdict::TargetUnusable;
        assert_eq!(of_run(&s), exit::TARGET_UNUSABLE);
        s.stopped = StopReason::Interrupted;
        assert_eq!(of_run(&s), exit::INTERRUPTED);
    }

    /// What summary.json and `--json` write as `passed` is what the exit code says: 0 and
    /// only 0 passes, whatever made it otherwise (a breached threshold beside a clean
    /// verdict, an interruption, a task of stampede's own that failed, any other verdict).
    #[test]
    fn passed_is_what_exit_code_0_says() {
        let clean = || {
            let mut s = crate::results::fixture::summary();
            s.violations = Default::default();
            s
        };
        let mut cases = vec![clean()];
        let mut breached = clean();
        breached.thresholds = vec![crate::results::fixture::breached_threshold()];
        cases.push(breached);
        let mut interrupted = clean();
        interrupted.stopped = StopReason::Interrupted;
        cases.push(interrupted);
        let mut failed = clean();
        failed.counters.task_failures = 1;
        cases.push(failed);
        for verdict in [
            Verdict::Violations,
            Verdict::Inconclusive,
            Verdict::TargetUnusable,
        ] {
            cases.push(crate::results::Summary { verdict, ..clean() });
        }
        for s in &cases {
            assert_eq!(
                s.passed(),
                of_run(s) == exit::CLEAN,
                "{:?} {:?}",
                s.verdict,
                s.stopped
            );
            let json = serde_json::to_value(s.written()).expect("a summary serializes");
            assert_eq!(json["passed"], s.passed());
            assert_eq!(
                json["verdict"],
                serde_json::to_value(s.verdict).expect("a verdict")
            );
        }
        assert!(cases[0].passed());
        assert!(
            !cases[1].passed(),
            "a breached threshold beside a clean verdict"
        );
    }

    /// An error whose message leaves its cause out.
    #[derive(Debug, thiserror::Error)]
    #[error("{what}")]
    struct Layer {
        what: &'static str,
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    }

    fn layer(what: &'static str, source: impl StdError + Send + Sync + 'static) -> Layer {
        Layer {
            what,
            source: Some(Box::new(source)),
        }
    }

    #[test]
    fn render_prints_each_cause_once() {
        let root = io::Error::new(io::ErrorKind::NotFound, "no such file");
        let err = Error::Io(io::Error::other(layer("cannot load the plan", root)));
        assert_eq!(
            render(&err),
            "error: cannot load the plan\n  caused by: no such file\n"
        );
        // WriteError's message already says `…: {source}`: no second line.
        let err = Error::Write(WriteError::Io {
            path: "out/summary.json".into(),
            source: io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        });
        assert_eq!(
            render(&err),
            "error: cannot write out/summary.json: denied\n"
        );
        assert_eq!(render(&Error::Usage("bad".into())), "error: bad\n");
    }

    /// A scenario's problems are rendered as `validate` prints them, each line its
    /// file:line:column first; other scenario errors keep their `error: ` label.
    #[test]
    fn a_scenarios_problems_render_as_validate_prints_them() {
        let problem = |line, message: &str| crate::scenario::Problem {
            file: "s.toml".into(),
            line,
            column: 1,
            message: message.into(),
        };
        let err = Error::Scenario(ScenarioError::Invalid {
            problems: vec![problem(1, "missing [[group]]"), problem(2, "unknown field")],
        });
        assert_eq!(
            render(&err),
            "s.toml:1:1: missing [[group]]\ns.toml:2:1: unknown field\n"
        );
        let err = Error::Scenario(ScenarioError::Json {
            path: "s.json".into(),
        });
        assert!(render(&err).starts_with("error: s.json holds JSON"));
    }

    #[test]
    fn a_broken_pipe_is_found_anywhere_in_the_chain() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(Error::Io(pipe()).is_broken_pipe());
        assert!(Error::Write(WriteError::Io {
            path: "-".into(),
            source: pipe(),
        })
        .is_broken_pipe());
        assert!(Error::Io(io::Error::other(layer("stdout", pipe()))).is_broken_pipe());
        assert!(!Error::Io(io::Error::from(io::ErrorKind::NotFound)).is_broken_pipe());
        assert!(!Error::Usage("broken pipe".into()).is_broken_pipe());
    }
}
