//! `stampede run`: scenario → plan → swarm → oracles and metrics → report.

use crate::error::{exit, Error};
use crate::metrics::{IntervalConfig, IntervalLog};
use crate::plan::{self, Plan};
use crate::report::{self, Progress, Results, RunInfo, WriteError};
use crate::scenario::Scenario;
use crate::swarm::{self, Dialer, Live, Target, TlsOptions};
use crate::{auth, target};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Everything `run` needs besides the scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Overrides the scenario's target (the CLI also reads `STAMPEDE_TARGET`).
    pub target: Option<String>,
    pub seed: Option<u64>,
    pub duration: Option<Duration>,
    /// Base directory for results; `None` writes nothing.
    pub out: Option<PathBuf>,
    pub tls: TlsOptions,
    /// The interval of `intervals.hlog` and `intervals.json` (default 1 s).
    pub interval: Duration,
    /// Show live progress on stderr (a bar on a terminal, a line every 5 s otherwise).
    pub progress: bool,
    /// Print no notices on stderr (such as "no target given").
    pub quiet: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            target: None,
            seed: None,
            duration: None,
            out: None,
            tls: TlsOptions::default(),
            interval: crate::metrics::interval::DEFAULT_INTERVAL,
            progress: false,
            quiet: false,
        }
    }
}

/// What a run produced.
pub struct RunOutcome {
    pub results: Results,
    pub plan: Arc<Plan>,
    /// Where the result files went.
    pub dir: Option<PathBuf>,
}

impl RunOutcome {
    /// 0 clean, 1 violations, 130 interrupted (partial results written), 3 internal trouble.
    pub fn exit_code(&self) -> u8 {
        let s = &self.results.summary;
        if s.stopped == "interrupted" {
            exit::INTERRUPTED
        } else if s.counters.task_failures > 0 {
            exit::INTERNAL
        } else if s.violations.total > 0 {
            exit::VIOLATIONS
        } else if s.verdict == "inconclusive" {
            exit::INCONCLUSIVE
        } else {
            exit::CLEAN
        }
    }
}

/// Runs a scenario once. With no target anywhere, starts the reference server in-process.
pub async fn run(
    scenario: &Scenario,
    opts: &RunOptions,
    cancel: CancellationToken,
) -> Result<RunOutcome, Error> {
    let mut plan = plan::build(scenario, opts.seed.unwrap_or(scenario.seed));
    if let Some(d) = opts.duration {
        plan.duration = d;
    }
    let plan = Arc::new(plan);
    let keys = auth::resolve_keys(&plan.auth)?;
    let explicit = opts.target.clone().or_else(|| scenario.target.clone());
    let server_cancel = cancel.child_token();
    let (url, server) = match explicit {
        Some(url) => (url, None),
        None => {
            let config = embedded_config(&plan, &keys)?;
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            let handle = target::spawn(config, loopback, server_cancel.clone()).await?;
            tracing::info!(url = %handle.url(), "no target given: started the reference server in-process");
            if !opts.quiet {
                eprintln!(
                    "no target given: running against the built-in reference server at {}",
                    handle.url()
                );
            }
            (handle.url(), Some(handle))
        }
    };
    let outcome = execute(plan, &url, server.is_some(), &keys, opts, cancel).await;
    if let Some(handle) = server {
        handle.shutdown().await;
    }
    outcome
}

/// The embedded reference server verifies what the scenario mints: its HMAC secret, or
/// the public key of its RS256/ES256 key, and its `aud`/`iss`.
pub fn embedded_config(plan: &Plan, keys: &auth::Keys) -> Result<target::TargetConfig, Error> {
    let mut config = target::TargetConfig {
        audience: plan.auth.aud.clone(),
        issuer: plan.auth.iss.clone(),
        ..Default::default()
    };
    match (keys.hmac_secret(), keys.public_pem()) {
        (Some(secret), _) => config.secret = secret.to_vec(),
        (None, Some(public)) => config.public_key_pem = Some(public.to_vec()),
        (None, None) => return Err(auth::AuthError::NoPublicKey(keys.alg().name()).into()),
    }
    Ok(config)
}

/// Executes a plan against `url` and writes the results. The result directory is made
/// before the run starts: the interval log streams into it while the run goes on; every
/// other file is written (atomically) when it ends.
pub async fn execute(
    plan: Arc<Plan>,
    url: &str,
    embedded: bool,
    keys: &auth::Keys,
    opts: &RunOptions,
    cancel: CancellationToken,
) -> Result<RunOutcome, Error> {
    let target = Target::resolve(url).await?;
    let tls = if target.tls {
        Some(tokio_rustls::TlsConnector::from(swarm::client_config(
            &opts.tls,
        )?))
    } else {
        None
    };
    let dialer = Dialer {
        target,
        tls,
        limits: plan.limits,
    };
    let tokens = auth::mint_all(&plan.tokens, &plan.auth, keys)?;
    raise_fd_limit(plan.conns.len());
    let dir = opts
        .out
        .as_ref()
        .map(|base| report::results_dir(base, &plan.scenario));
    let intervals = IntervalConfig {
        every: opts.interval,
        log: dir.as_deref().map(interval_log).transpose()?,
    };
    let live = Arc::new(Live::default());
    let progress = opts
        .progress
        .then(|| Progress::start(live.clone(), plan.duration, plan.conns.len()));
    let started_at = chrono::Utc::now().to_rfc3339();
    let output = swarm::run(plan.clone(), dialer, tokens, live, intervals, cancel).await;
    if let Some(progress) = progress {
        progress.finish().await;
    }
    let info = RunInfo {
        plan: &plan,
        target: url,
        embedded_target: embedded,
        started_at,
    };
    let results = report::build(&info, output);
    if let Some(dir) = &dir {
        report::write_all(dir, &results, &plan)?;
    }
    Ok(RunOutcome { results, plan, dir })
}

/// Makes the result directory and opens its `intervals.hlog`.
fn interval_log(dir: &std::path::Path) -> Result<IntervalLog, Error> {
    let failed = |path: &std::path::Path, source| {
        Error::Write(WriteError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
    let path = dir.join("intervals.hlog");
    IntervalLog::create(&path).map_err(|e| failed(&path, e))
}

/// Every connection needs a file descriptor (two with the embedded server): raise the soft
/// limit to the hard one, and warn when even that is too low.
fn raise_fd_limit(connections: usize) {
    let wanted = (connections as u64) * 2 + 256;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(got) if got < wanted => {
            tracing::warn!(
                got,
                wanted,
                "open-file limit is below what this plan needs; raise `ulimit -n`"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit"),
    }
}
