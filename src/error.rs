//! The library's error type and the one table of exit codes.

use crate::auth::AuthError;
use crate::report::WriteError;
use crate::scenario::ScenarioError;
use crate::swarm::{TlsError, UrlError};

/// Exit codes, in one place (README lists them).
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

/// Why a command could not do its job (as opposed to what it found in the target).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Url(#[from] UrlError),
    #[error("reference server: {0}")]
    Server(#[from] crate::target::TargetError),
    #[error("{0}")]
    Write(#[from] WriteError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Repro(#[from] crate::hunt::ReproError),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Scenario(_)
            | Error::Usage(_)
            | Error::Auth(_)
            | Error::Tls(_)
            | Error::Url(_) => exit::USAGE,
            Error::Server(_) | Error::Write(_) | Error::Io(_) => exit::INTERNAL,
            Error::Repro(_) => exit::USAGE,
        }
    }
}
