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
    /// Interrupted by Ctrl-C; partial results were written.
    pub const INTERRUPTED: u8 = 130;
}

/// The exit code of a run: interrupted, then stampede's own failures, then the verdict.
pub fn of_run(summary: &Summary) -> u8 {
    if summary.stopped == StopReason::Interrupted {
        exit::INTERRUPTED
    } else if summary.counters.task_failures > 0 {
        exit::INTERNAL
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
    }
}

/// Why a command could not do its job (as opposed to what it found in the target).
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
    Io(#[from] std::io::Error),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Scenario(_) | Error::Usage(_) | Error::Repro(_) => exit::USAGE,
            Error::Run(e) | Error::Hunt(HuntError::Run(e)) => run_error_code(e),
            Error::Hunt(HuntError::Repro(_)) => exit::USAGE,
            Error::Write(_) | Error::Server(_) | Error::Io(_) => exit::INTERNAL,
        }
    }
}

fn run_error_code(e: &RunError) -> u8 {
    match e {
        RunError::Auth(_) | RunError::Tls(_) | RunError::Url(_) => exit::USAGE,
        RunError::Server(_) | RunError::Write(_) => exit::INTERNAL,
    }
}
