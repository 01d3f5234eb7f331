//! `stampede run`: the orchestration. Scenario → plan → target → swarm → oracles →
//! results, and the result files.
//!
//! A run is two calls so a caller can watch it: [`prepare`] builds the plan, resolves the
//! keys and the target (starting the reference server when asked for it) and makes the
//! live counters; [`Prepared::execute`] runs it. [`run`] does both.

use crate::auth::{self, AuthError, Keys};
use crate::metrics::{IntervalConfig, IntervalLog, Live};
use crate::model::{
    Answer, ConnReport, Counters, LearnedOracles, OracleKind, Plan, Scenario, Shard, StopReason,
    Threshold, TokenSource, Violation,
};
use crate::oracle::verdict::Evidence;
use crate::reference::{self, Bug, ServerHandle, TargetError};
use crate::results::{self, Merged, ProbeSummary, Results, RunInfo, WriteError, MAX_ANSWERS};
use crate::swarm::{self, Dialer, Endpoint, SwarmOutput, TlsError, TlsOptions, UrlError};
use crate::{oracle, plan};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub mod capacity;
pub mod learn;
pub use capacity::{max_connections, quick_per_address, CapacityError};

/// Why a run could not be made (as opposed to what it found in the target).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("reference server")]
    Server(#[from] TargetError),
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The client machine cannot hold the plan's connections (refused before it starts).
    #[error(transparent)]
    Capacity(#[from] CapacityError),
    /// A `--source-addr` address no connection could come from (refused before it starts).
    #[error(transparent)]
    Source(#[from] crate::swarm::SourceError),
    /// A group's feeder file could not be read again (a plan from a file stores no rows).
    #[error("feeder: {0}")]
    Feed(#[from] crate::scenario::feed::FeedError),
    /// Ctrl-C before the run started (while the target's host was being resolved or an
    /// `[auth] tokens` command ran).
    #[error("interrupted before the run started")]
    Interrupted,
}

/// Where a run goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A server under test, `ws://` or `wss://`, as written (`${NAME}` references
    /// unexpanded: see [`Bound::url`]).
    Url(String),
    /// The built-in reference server, started on a loopback port for the run, verifying
    /// what the plan mints; optionally with a planted bug (and its window).
    Reference {
        bug: Option<Bug>,
        window: Option<Duration>,
    },
}

impl Target {
    /// The explicit URL (a flag, `STAMPEDE_TARGET`, the scenario's `target`), else the
    /// reference server: the one rule every command uses.
    pub fn choose(explicit: Option<String>, scenario_target: Option<&str>) -> Target {
        match explicit.or_else(|| scenario_target.map(str::to_string)) {
            Some(url) => Target::Url(url),
            None => Target::Reference {
                bug: None,
                window: None,
            },
        }
    }
}

/// A target made ready for a plan: its URL, the keys the plan's tokens are minted with,
/// and the reference server when one was started (shut it down with [`Bound::close`]).
pub struct Bound {
    /// The URL as shown: as written, its `${NAME}` references unexpanded (the dialer
    /// expands them: [`Endpoint::resolve`]) and a literal password masked
    /// ([`crate::model::url::shown_url`]), so results, repros and messages never hold
    /// either secret.
    pub url: String,
    /// The URL as written, a literal password included: for the dialer only.
    dial: String,
    pub keys: Keys,
    pub server: Option<ServerHandle>,
}

impl Bound {
    /// A bound reference server: its URL (no secret in it) is both shown and dialled.
    pub fn with_server(server: ServerHandle, keys: Keys) -> Bound {
        Bound {
            url: server.url(),
            dial: server.url(),
            keys,
            server: Some(server),
        }
    }

    /// The URL to hand the dialer ([`Endpoint::resolve`]) or a worker process: as written,
    /// a literal password included. Never to be shown.
    pub fn dial(&self) -> &str {
        &self.dial
    }

    /// Whether the target is the built-in reference server.
    pub fn is_reference(&self) -> bool {
        self.server.is_some()
    }

    /// Whether the target is the built-in reference server with no planted bug nor stall:
    /// correct by construction, so what breaks against it is the scenario's.
    pub fn is_correct_reference(&self) -> bool {
        self.server.as_ref().is_some_and(ServerHandle::is_correct)
    }

    /// Whether tokens for an external target are signed with the public development
    /// secret ([`crate::model::DEV_SECRET`]): the scenario named no secret of its own (or
    /// `STAMPEDE_JWT_SECRET` is unset), and a real server will most likely refuse them.
    pub fn development_secret_on_external(&self) -> bool {
        !self.is_reference() && self.keys.is_development()
    }

    /// Whether tokens this run sends to an external target are signed with the public
    /// development secret: [`Self::development_secret_on_external`] for a plan that
    /// [`signs_tokens`].
    pub fn sends_development_tokens(&self, plan: &Plan) -> bool {
        self.development_secret_on_external() && signs_tokens(plan)
    }

    /// Stops the reference server, if one was started.
    pub async fn close(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }
}

/// Whether the run signs any token with its secret and sends it: it mints its valid
/// tokens, or forges bad ones from them, and some connection places its token (a placement
/// other than `"none"`). Tokens read from a file, a list or a login are signed by whoever
/// issued them, and tokens no connection places reach no server: the secret then signs
/// nothing that matters.
pub fn signs_tokens(plan: &Plan) -> bool {
    let placed = plan
        .conns
        .iter()
        .any(|c| !matches!(plan.placement_of(c), crate::model::Placement::None));
    placed && (plan.auth.tokens.is_none() || plan.tokens.iter().any(|t| t.forge.is_some()))
}

/// Resolves `target` for `plan`: the keys its tokens need and, for the reference server,
/// a server configured to verify them, started under `cancel`.
pub async fn bind(
    target: &Target,
    plan: &Plan,
    cancel: &CancellationToken,
) -> Result<Bound, RunError> {
    let keys = auth::resolve_keys(&plan.auth)?;
    // Checked before the environment's: a header with both is named for what no
    // variable can supply.
    if let Some(not_stored) = plan.not_stored() {
        return Err(AuthError::CredentialNotStored(not_stored).into());
    }
    if let Some(missing) = plan.missing_env(&|name| std::env::var(name).ok()) {
        return Err(AuthError::HeaderEnv(missing).into());
    }
    match target {
        Target::Url(url) => {
            // A `--target` (or `STAMPEDE_TARGET`) is checked as a scenario's `target` is
            // when it loads: placeholders in its path and query only, and known ones.
            if let Some(reason) = crate::model::url::placeholder_problem(url) {
                return Err(UrlError::Invalid {
                    url: crate::model::url::shown_url(url),
                    reason,
                }
                .into());
            }
            // Checked before anything dials (calibration, the load): a repro replayed
            // without a variable its URL names stops here, naming it.
            // And a URL the dialer cannot take (`ws://[::1`, `notaurl`) stops here too, not
            // after notices about the target (its development secret) that it makes moot.
            Endpoint::check(url, &|name| std::env::var(name).ok())?;
            Ok(Bound {
                url: crate::model::url::shown_url(url),
                dial: url.clone(),
                keys,
                server: None,
            })
        }
        Target::Reference { bug, window } => {
            let mut config = reference_config(plan, &keys)?;
            config.bug = *bug;
            if let Some(window) = window {
                config.bug_window = *window;
            }
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            // At a run with releases, in a process that manages its threads' priority (the
            // binary), the server gets threads of its own in the idle class, which never
            // delay the load generator's; elsewhere it shares the runtime.
            let server = if plan.releases_together() && crate::priority::managed() {
                reference::spawn_apart(config, loopback, cancel.child_token()).await?
            } else {
                reference::spawn(config, loopback, cancel.child_token()).await?
            };
            tracing::info!(url = %server.url(), "started the reference server in-process");
            Ok(Bound::with_server(server, keys))
        }
    }
}

/// The reference server verifies what the plan mints: its HMAC secret, or the public
/// key of its RS256/ES256 key, and its `aud`/`iss`.
pub fn reference_config(plan: &Plan, keys: &Keys) -> Result<reference::TargetConfig, RunError> {
    let mut config = reference::TargetConfig {
        audience: plan.auth.aud.clone(),
        issuer: plan.auth.iss.clone(),
        ..Default::default()
    };
    match (keys.hmac_secret(), keys.public_pem()) {
        (Some(secret), _) => config.secret = secret.to_vec(),
        (None, Some(public)) => config.public_key_pem = Some(public.to_vec()),
        (None, None) => return Err(AuthError::NoPublicKey(keys.alg().name()).into()),
    }
    Ok(config)
}

/// Everything `run` needs besides the scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where to run; `None`: the scenario's `target`, else the reference server.
    pub target: Option<String>,
    /// Run against the built-in reference server whatever `target` and the scenario say.
    pub reference: bool,
    /// Plant this bug in the built-in reference server (implies `reference`).
    pub bug: Option<Bug>,
    /// The planted bug's race window (the server's default when `None`).
    pub bug_window: Option<Duration>,
    pub seed: Option<u64>,
    pub duration: Option<Duration>,
    /// Base directory for results; `None` writes nothing.
    pub out: Option<PathBuf>,
    pub tls: TlsOptions,
    /// The interval of `intervals.hlog` and `intervals.json` (default 1 s).
    pub interval: Duration,
    /// Checked on the summary when the run ends; [`prepare`] takes the scenario's.
    pub thresholds: Vec<Threshold>,
    /// Run only this slice of the plan (`--shard i/n`); `stampede merge` combines slices.
    pub shard: Option<Shard>,
    /// The local addresses connections are made from, in turn (`--source-addr`): spread a
    /// big run over several loopback addresses, each with its own ephemeral ports.
    pub sources: Vec<IpAddr>,
    /// Calibrate before the load and check what was learned ([`learn`]), unless the
    /// scenario says `[oracles] learn = false` or the plan already carries learned
    /// invariants. Off by default for library callers; the `run` and `hunt` commands turn
    /// it on unless `--no-learn`.
    pub learn: bool,
    /// When calibration must have ended (`hunt` gives it a share of `--budget`);
    /// `None`: [`learn::LIMIT`] after it starts, the bound it never exceeds anyway.
    pub calibration_end: Option<tokio::time::Instant>,
    /// What a calibration already learned ([`calibrate_once`]): checked as learned, and
    /// the run does not calibrate again. A `--workers` parent calibrates once and hands it
    /// to every worker, so that they start their load together.
    pub learned: Option<LearnedOracles>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            target: None,
            reference: false,
            bug: None,
            bug_window: None,
            seed: None,
            duration: None,
            out: None,
            tls: TlsOptions::default(),
            interval: crate::metrics::interval::DEFAULT_INTERVAL,
            thresholds: Vec::new(),
            shard: None,
            sources: Vec::new(),
            learn: false,
            calibration_end: None,
            learned: None,
        }
    }
}

/// What a run produced.
pub struct RunOutcome {
    pub results: Results,
    pub plan: Arc<Plan>,
    /// The plan's connections that dialled at least once: fewer than planned when the run
    /// stopped before the rest started (Ctrl-C, a closed port's early stop, the duration).
    /// A connection's reconnects and retries count it once.
    pub dialled: usize,
    /// Where the result files went.
    pub dir: Option<PathBuf>,
    /// Why they could not all be written there (a disk full, a folder removed during the
    /// run): the results above are still whole, and the caller says them before this
    /// error ([`RunOutcome::saved`] turns it into one).
    pub unsaved: Option<WriteError>,
}

impl RunOutcome {
    /// This outcome, or the error that kept its files from being written
    /// ([`RunOutcome::unsaved`]), for a caller that has no use for results it cannot keep.
    ///
    /// # Errors
    /// [`RunError::Write`] when the result files could not all be written.
    pub fn saved(mut self) -> Result<RunOutcome, RunError> {
        match self.unsaved.take() {
            Some(e) => Err(RunError::Write(e)),
            None => Ok(self),
        }
    }

    /// Whether the run broke `oracle` in a run judged VIOLATIONS: a "violation" against an
    /// unusable or misconfigured target is no race, nor one an inconclusive verdict
    /// excuses (the server went down under the run).
    pub fn broke(&self, oracle: OracleKind) -> bool {
        let s = &self.results.summary;
        // Only a run judged VIOLATIONS found something: the violations of an inconclusive
        // run are ones its verdict excuses (a server going down cut the expectations).
        s.verdict == crate::model::Verdict::Violations && s.violations.of(oracle) > 0
    }
}

/// A run ready to start: plan built, target bound, live counters made.
pub struct Prepared {
    pub plan: Arc<Plan>,
    pub bound: Bound,
    /// Live counters for a progress display; updated by the run as it goes.
    pub live: Arc<Live>,
    opts: RunOptions,
}

/// The target a run dials: the built-in server when asked for (or a bug of it), else the
/// flag's, the scenario's or the environment's URL ([`Target::choose`]).
fn chosen_target(scenario: &Scenario, opts: &RunOptions) -> Target {
    if opts.reference || opts.bug.is_some() {
        return Target::Reference {
            bug: opts.bug,
            window: opts.bug_window,
        };
    }
    match Target::choose(opts.target.clone(), scenario.target.as_deref()) {
        Target::Reference { bug, .. } => Target::Reference {
            bug,
            window: opts.bug_window,
        },
        url => url,
    }
}

/// The warning for a run of `scenario` under `opts` that puts more connections on each
/// source address than it carries quickly ([`capacity::slow_ports_warning`]), for the
/// command to print before the load; `None` when it does not, or the port range cannot be
/// read.
pub fn slow_ports_note(scenario: &Scenario, opts: &RunOptions) -> Option<String> {
    capacity::slow_ports_warning(
        scenario_connections(scenario, opts.shard),
        opts.sources.len(),
    )
}

/// The connections a scenario plans (every group's users × connections per user), or
/// about those of one shard of it: what its capacity check counts before any plan is
/// built (the exact check follows, on the plan).
fn scenario_connections(scenario: &Scenario, shard: Option<crate::model::Shard>) -> u64 {
    let total = scenario
        .groups
        .iter()
        .map(|g| u64::from(g.users) * u64::from(g.connections_per_user))
        .fold(0u64, u64::saturating_add);
    match shard {
        Some(s) if s.count > 0 => total / u64::from(s.count),
        _ => total,
    }
}

/// Builds the plan (flag seed, else the scenario's) and binds its target.
pub async fn prepare(
    scenario: &Scenario,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> Result<Prepared, RunError> {
    let target = chosen_target(scenario, opts);
    // Before the plan is built: planning, minting and calibrating millions of connections
    // this machine cannot hold took minutes and gigabytes before the same refusal.
    let need = capacity::Need {
        connections: scenario_connections(scenario, opts.shard),
        embedded_server: matches!(target, Target::Reference { .. }),
        synchronized: 0,
    };
    let machine = capacity::Machine::raise_and_read(&need).from_addresses(opts.sources.len());
    capacity::check(&need, &machine)?;
    let mut plan = plan::build(scenario, scenario.seed_or(opts.seed));
    if let Some(d) = opts.duration {
        plan.duration = d;
    }
    if let Some(shard) = opts.shard {
        plan.keep_shard(shard);
    }
    if let Some(learned) = &opts.learned {
        plan.oracles.learned = learned.clone();
    }
    let bound = bind(&target, &plan, cancel).await?;
    Ok(Prepared {
        plan: Arc::new(plan),
        bound,
        live: Arc::new(Live::default()),
        opts: RunOptions {
            thresholds: scenario.thresholds.clone(),
            ..opts.clone()
        },
    })
}

impl Prepared {
    /// Whether the run calibrates the target before its load (see the function `calibrates`).
    pub fn calibrates(&self) -> bool {
        calibrates(&self.plan, &self.opts)
    }

    /// Whether the run reads `[auth] tokens` from its source (a file, or a command it
    /// runs) before its load; other tokens it signs itself, at once.
    pub fn fetches_tokens(&self) -> bool {
        self.plan.auth.tokens.is_some()
    }

    /// Runs the plan, writes the results, and stops the reference server if it started one.
    pub async fn execute(self, cancel: CancellationToken) -> Result<RunOutcome, RunError> {
        let Prepared {
            plan,
            bound,
            live,
            opts,
        } = self;
        let outcome = execute(plan, &bound, live, &opts, cancel).await;
        bound.close().await;
        outcome
    }
}

/// Runs a scenario once: [`prepare`] then [`Prepared::execute`].
pub async fn run(
    scenario: &Scenario,
    opts: &RunOptions,
    cancel: CancellationToken,
) -> Result<RunOutcome, RunError> {
    prepare(scenario, opts, &cancel)
        .await?
        .execute(cancel)
        .await?
        .saved()
}

/// Executes a plan against a bound target and writes the results. The result directory
/// is made before the run starts: the interval log streams into it while the run goes
/// on; every other file is written (atomically) when it ends.
pub async fn execute(
    plan: Arc<Plan>,
    bound: &Bound,
    live: Arc<Live>,
    opts: &RunOptions,
    cancel: CancellationToken,
) -> Result<RunOutcome, RunError> {
    // Tokens of this execution's own: another run of the plan (a second CI job, the next
    // seed, a replay) must not find its `jti`s already used.
    let plan = Arc::new(crate::plan::fresh_jtis(&plan));
    let Calibrated {
        plan,
        learned,
        valid: calibration_valid,
    } = calibrated(plan, bound, opts, &cancel).await?;
    if learned.is_some() && cancel.is_cancelled() {
        // Ctrl-C during calibration: the load never started, but the run still ends as
        // an interrupted one, with its results (and what calibration learned) written.
        // (Without calibration, Ctrl-C this early is `RunError::Interrupted`, as before.)
        return interrupted_before_load(plan, bound, opts, learned.as_deref());
    }
    let dialer = dialer(&plan, bound, opts, &cancel).await?;
    let plan = load_feeds(plan)?;
    let tokens = match tokens_unless_stopped(&plan, &bound.keys, &cancel).await {
        // As Ctrl-C during calibration: what it learned is still written.
        Err(RunError::Interrupted) if learned.is_some() => {
            return interrupted_before_load(plan, bound, opts, learned.as_deref());
        }
        tokens => tokens?,
    };
    let plan = relabel(plan, &tokens);
    // A server may echo a token back; nothing it sent reaches a result with one in it.
    let mut hidden = plan.env_values(&bound.dial, &|name| std::env::var(name).ok());
    bound.keys.hide_secret(&mut hidden);
    let redactor = auth::Redactor::new(&tokens).hiding_env(hidden);
    let need = capacity::Need {
        connections: plan.conns.len() as u64,
        embedded_server: bound.is_reference(),
        synchronized: plan
            .conns
            .iter()
            .filter(|c| c.barrier.is_some() || plan.rendezvous.iter().any(|r| r.group == c.group))
            .count() as u64,
    };
    let machine = capacity::Machine::raise_and_read(&need).from_addresses(dialer.sources.len());
    capacity::check(&need, &machine)?;
    // Grown now, not under load: each growth stalls the thread that opened a descriptor.
    capacity::reserve_fd_table(need.fds(), machine.fd_limit);
    let dir = opts
        .out
        .as_ref()
        .map(|base| results::results_dir(base, &plan.scenario));
    let intervals = IntervalConfig {
        every: opts.interval,
        log: dir.as_deref().map(interval_log).transpose()?,
    };
    let started_at = chrono::Utc::now().to_rfc3339();
    live.calibration_accepted.store(
        calibration_valid.1 as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    let output = swarm::run(plan.clone(), dialer, tokens, live, intervals, cancel).await;
    let ran = Ran {
        started_at,
        output,
        redactor: &redactor,
        learned: learned.as_deref(),
        calibration_valid,
    };
    conclude(plan, bound, opts, dir, ran)
}

/// What a run's swarm gave, for [`conclude`]: when it started, its output, the redactor
/// its texts go through, and the TOML of what calibration learned.
struct Ran<'a> {
    started_at: String,
    output: swarm::SwarmOutput,
    redactor: &'a auth::Redactor,
    learned: Option<&'a str>,
    /// Calibration's valid-token connections just before the load: how many it made and how
    /// many the target accepted (`(0, 0)` when the run did not calibrate).
    calibration_valid: (usize, usize),
}

/// Summarizes a run and writes its results into `dir`, when there is one, with
/// `learned.toml` when calibration learned something.
fn conclude(
    plan: Arc<Plan>,
    bound: &Bound,
    opts: &RunOptions,
    dir: Option<std::path::PathBuf>,
    ran: Ran<'_>,
) -> Result<RunOutcome, RunError> {
    let info =
        RunInfo {
            plan: &plan,
            target: &bound.url,
            embedded_target: bound.is_reference(),
            planted_bug: bound.server.as_ref().and_then(ServerHandle::planted).map(
                |(name, window)| results::PlantedBug {
                    name: name.to_string(),
                    window_ms: window.as_secs_f64() * 1000.0,
                },
            ),
            started_at: ran.started_at,
            shard: opts.shard,
            source_addrs: &opts.sources,
        };
    let dialled = ran
        .output
        .reports
        .iter()
        .filter(|r| !r.attempts.is_empty())
        .count();
    // Whether the load's upgrades got a 101: then the server was up, whatever ended them.
    let load_upgraded = ran
        .output
        .reports
        .iter()
        .flat_map(|r| &r.attempts)
        .any(|a| a.upgraded_us.is_some());
    let merged = merge(&plan, bound, ran.output, ran.redactor);
    let mut results = results::summarize(&info, merged, &opts.thresholds);
    if dir.is_some() && ran.learned.is_some() {
        point_to_learned(&mut results);
    }
    if !load_upgraded {
        note_calibration_reached(&mut results, ran.calibration_valid);
    }
    // A failed write keeps the results: the caller says them, then the error.
    let unsaved = dir.as_deref().and_then(|dir| {
        results::write_all(dir, &results, &plan)
            .and_then(|()| match ran.learned {
                Some(text) => results::write_atomic(&dir.join("learned.toml"), text.as_bytes()),
                None => Ok(()),
            })
            .err()
    });
    Ok(RunOutcome {
        results,
        plan,
        dialled,
        dir,
        unsaved,
    })
}

/// The note on a Ctrl-C (or SIGTERM) that came during the probe phase, after the load had
/// finished ([`swarm::SwarmOutput::probe_interrupted`]): the probes it cut prove nothing
/// either way, so a load that failed keeps its verdict and one that did not is
/// interrupted. `None` when it cut none.
fn probe_cut_note(out: &swarm::SwarmOutput) -> Option<String> {
    let cut = out
        .probes
        .iter()
        .filter(|p| p.cause == Some(crate::model::Cause::Interrupted))
        .count();
    (out.probe_interrupted && cut > 0).then(|| {
        format!(
            "interrupted during the liveness probe after the load, which had finished: {cut} \
             of {} not probed again (proving nothing about sessions left behind)",
            crate::model::words::plural(out.probes.len() as u64, "token")
        )
    })
}

/// A run Ctrl-C stopped before its load, whose `learned.toml` is written beside its
/// summary: its hint says that file holds what calibration learned so far. Only then:
/// a hint naming the file where none was written (`--no-learn`, a `--workers` merge)
/// sent users looking for it.
fn point_to_learned(results: &mut Results) {
    let s = &mut results.summary;
    if s.stopped != StopReason::Interrupted || s.counters.attempted > 0 {
        return;
    }
    if let Some(hint) = &mut s.hint {
        hint.push_str(" (what calibration learned so far is in learned.toml)");
    }
}

/// A target the load could not use, though calibration's connections were accepted there
/// just before it (`(made, accepted)` of them), and the load's were not: the hint says so,
/// since what it names to check (the URL, the port, the path, the secret) did work a
/// moment earlier; the server went down, or stopped taking connections, between
/// calibration and the load, or during calibration when it accepted only some. A load
/// whose connections were accepted is unusable for another reason (every request refused),
/// which the server did not go down for; so is one whose upgrades got their 101 and were
/// then closed (a script of another protocol: the caller does not call this then).
fn note_calibration_reached(results: &mut Results, (made, accepted): (usize, usize)) {
    let s = &mut results.summary;
    let load_accepted = s.counters.accepted > 0;
    if s.verdict != crate::model::Verdict::TargetUnusable || accepted == 0 || load_accepted {
        return;
    }
    let note = if accepted < made {
        format!(
            "calibration, just before the load, had {accepted} of its {made} connections \
             accepted at this URL: the server went down or stopped taking connections during \
             calibration"
        )
    } else {
        format!(
            "calibration, just before the load, had {accepted} connection{} accepted at this \
             URL: the server went down or stopped taking connections between calibration and \
             the load",
            if accepted == 1 { "" } else { "s" }
        )
    };
    // Said first: the checks the verdict names (the URL, the port) passed a moment ago.
    s.hint = Some(match s.hint.take() {
        Some(hint) => format!("{note}; {hint}"),
        None => note,
    });
}

/// The outcome of a run that Ctrl-C stopped before its load started (during calibration):
/// no connection ran, so the verdict is `incomplete`; the result files are written as any
/// run's are, `learned.toml` with what calibration learned before it was stopped.
fn interrupted_before_load(
    plan: Arc<Plan>,
    bound: &Bound,
    opts: &RunOptions,
    learned: Option<&str>,
) -> Result<RunOutcome, RunError> {
    let dir = opts
        .out
        .as_ref()
        .map(|base| results::results_dir(base, &plan.scenario));
    let ran = Ran {
        started_at: chrono::Utc::now().to_rfc3339(),
        output: swarm::SwarmOutput {
            interrupted: true,
            ..Default::default()
        },
        redactor: &auth::Redactor::new(&[]),
        learned,
        calibration_valid: (0, 0),
    };
    conclude(plan, bound, opts, dir, ran)
}

/// The outcome of a run of `plan` that Ctrl-C stopped while a caller calibrated it on its
/// behalf ([`calibrate_once`], `--workers`): the same results, written the same way, as a
/// run stopped during its own calibration, with what was learned so far (`learned`, and
/// `text` for `learned.toml`) when calibration said.
pub fn interrupted_during_calibration(
    plan: Arc<Plan>,
    bound: &Bound,
    opts: &RunOptions,
    learned: Option<(LearnedOracles, String)>,
) -> Result<RunOutcome, RunError> {
    let (plan, text) = match learned {
        Some((learned, text)) => {
            let mut with = (*plan).clone();
            with.oracles.learned = learned;
            (Arc::new(with), Some(text))
        }
        None => (plan, None),
    };
    interrupted_before_load(plan, bound, opts, text.as_deref())
}

/// Calibrates `plan` against `bound` once, as a run does before its load when `opts` asks
/// for it and the plan lets it: what was learned, and the text of `learned.toml`; `None`
/// when calibration does not apply. For a caller that starts several runs of one plan
/// (`--workers`), to hand to each as [`RunOptions::learned`].
pub async fn calibrate_once(
    plan: Arc<Plan>,
    bound: &Bound,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> Result<Option<(LearnedOracles, String)>, RunError> {
    let Calibrated { plan, learned, .. } = calibrated(plan, bound, opts, cancel).await?;
    Ok(learned.map(|text| (plan.oracles.learned.clone(), text)))
}

/// Calibrates first when `opts` asks for it and the plan lets it: the plan with what was
/// learned, and the learned invariants as TOML (for `learned.toml`). Unchanged otherwise.
async fn calibrated(
    plan: Arc<Plan>,
    bound: &Bound,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> Result<Calibrated, RunError> {
    if !calibrates(&plan, opts) {
        return Ok(Calibrated {
            plan,
            learned: None,
            valid: (0, 0),
        });
    }
    let proposal = learn::calibrate(&plan, bound, opts, cancel).await?;
    let text = oracle::learn::to_toml(&proposal, &plan.oracles, &bound.url);
    let mut learned = (*plan).clone();
    let unaccepted = proposal.none_accepted(&bound.url).map(|none| none.what());
    learned.oracles.learned = proposal.learned;
    learned.oracles.learned.unaccepted = unaccepted;
    Ok(Calibrated {
        plan: Arc::new(learned),
        learned: Some(text),
        valid: proposal.valid,
    })
}

/// Whether a run of `plan` calibrates the target first: learning is on (no `--no-learn`,
/// no `[oracles] learn = false`) and nothing was learned already (`--learned-from`).
fn calibrates(plan: &Plan, opts: &RunOptions) -> bool {
    opts.learn && plan.oracles.learn && plan.oracles.learned.is_empty()
}

/// What calibration gave a run ([`calibrated`]).
struct Calibrated {
    /// The plan, with what calibration learned.
    plan: Arc<Plan>,
    /// The learned invariants as TOML (for `learned.toml`); `None` when it did not
    /// calibrate.
    learned: Option<String>,
    /// Its valid-token connections: how many it made, and how many the target accepted.
    valid: (usize, usize),
}

/// The dialer for `plan`'s connections to the bound target (its host resolved, TLS set up
/// when the URL asks for it).
async fn dialer(
    plan: &Plan,
    bound: &Bound,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> Result<Dialer, RunError> {
    let endpoint = resolve(bound.dial(), plan.limits.handshake_timeout, cancel).await?;
    let tls = if endpoint.tls {
        Some(tokio_rustls::TlsConnector::from(swarm::client_config(
            &opts.tls,
        )?))
    } else {
        None
    };
    let https_login =
        matches!(&plan.auth.tokens, Some(TokenSource::Login(l)) if l.url.starts_with("https://"));
    let login_tls = match (&tls, https_login) {
        (Some(tls), true) => Some(tls.clone()),
        (None, true) => Some(tokio_rustls::TlsConnector::from(swarm::client_config(
            &opts.tls,
        )?)),
        _ => None,
    };
    let sources = crate::swarm::SourceAddrs::checked(opts.sources.clone(), endpoint.addr)?;
    Ok(Dialer {
        endpoint,
        tls,
        limits: plan.limits,
        sources,
        login_tls,
    })
}

/// The plan with its feeders' rows: a plan read from a file (replay, shrink) stores only
/// their paths, so they are read again here; one built from a scenario has them already.
fn load_feeds(mut plan: Arc<Plan>) -> Result<Arc<Plan>, RunError> {
    let missing = |f: &Option<crate::model::Feed>| f.as_ref().is_some_and(|f| f.rows.is_empty());
    if !plan.group_feeds.iter().any(missing) {
        return Ok(plan);
    }
    for feed in Arc::make_mut(&mut plan).group_feeds.iter_mut().flatten() {
        if feed.rows.is_empty() {
            let (columns, rows) = crate::scenario::feed::read(&feed.path, feed.format)?;
            if columns != feed.columns {
                return Err(RunError::Feed(crate::scenario::feed::FeedError::File {
                    path: feed.path.clone(),
                    reason: format!(
                        "its columns are now {}; the plan was made with {}",
                        columns.join(", "),
                        feed.columns.join(", ")
                    ),
                }));
            }
            feed.rows = Arc::new(rows);
        }
    }
    Ok(plan)
}

/// The plan with each token slot named by its token's label: a token from `[auth] tokens`
/// has none until it is read (`file#12`), and the session oracles key on it (two slots that
/// reuse one listed token are one session).
fn relabel(mut plan: Arc<Plan>, tokens: &[auth::Token]) -> Arc<Plan> {
    let differs = |(slot, token): (&crate::model::TokenPlan, &auth::Token)| slot.jti != token.jti;
    if plan.tokens.iter().zip(tokens).any(differs) {
        let owned = Arc::make_mut(&mut plan);
        for (slot, token) in owned.tokens.iter_mut().zip(tokens) {
            slot.jti.clone_from(&token.jti);
        }
    }
    plan
}

/// The run's tokens ([`auth::tokens_for`]), given up on at Ctrl-C: an `[auth] tokens`
/// command still running (bounded only by its own timeout, minutes) is then killed with
/// its process group (its future is dropped), and the run ends before its load.
async fn tokens_unless_stopped(
    plan: &Plan,
    keys: &Keys,
    cancel: &CancellationToken,
) -> Result<Vec<auth::Token>, RunError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(RunError::Interrupted),
        tokens = auth::tokens_for(&plan.tokens, &plan.auth, keys) => Ok(tokens?),
    }
}

/// Resolves the target's host: bounded by `limit` (a resolver that never answers must not
/// hold the run) and stopped by `cancel` (Ctrl-C).
async fn resolve(
    url: &str,
    limit: Duration,
    cancel: &CancellationToken,
) -> Result<Endpoint, RunError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(RunError::Interrupted),
        resolved = tokio::time::timeout(limit, Endpoint::resolve(url)) => match resolved {
            Ok(endpoint) => Ok(endpoint?),
            Err(_) => Err(RunError::Url(UrlError::Invalid {
                url: crate::model::url::shown_url(url),
                reason: format!("its host did not resolve within {limit:?} (handshake_timeout)"),
            })),
        },
    }
}

/// Merges the connections' reports and judges the whole run. Every violation's text is
/// redacted here, the one place all of them pass before any output.
fn merge(plan: &Plan, bound: &Bound, mut out: SwarmOutput, redactor: &auth::Redactor) -> Merged {
    let session = oracle::session::check(plan, &out.reports, &out.probes);
    // In the time series too, where they happened (the streaming oracles' were counted
    // there as the run went).
    out.intervals
        .add_violations_at(session.iter().map(|v| v.at_ms));
    let lenient = oracle::session::lenient(plan, &out.reports);
    let coverage = oracle::session::coverage(plan, &out.reports);
    let mut counters = Counters {
        task_failures: out.task_failures,
        ..Counters::default()
    };
    let mut by_oracle: BTreeMap<OracleKind, u64> = BTreeMap::new();
    for v in &session {
        *by_oracle.entry(v.oracle).or_default() += 1;
    }
    let mut violations = session;
    let mut answers: Vec<Answer> = Vec::new();
    for r in &out.reports {
        counters.merge(&r.counters);
        for (kind, n) in &r.violations_by_oracle {
            *by_oracle.entry(*kind).or_default() += n;
        }
        let ended = last_end_ms(r);
        let cut_by_run = cut_by_run(r);
        violations.extend(r.violations.iter().cloned().map(|mut v| {
            if let (Some(window), None) = (v.window_ms, v.late_ms) {
                v.conn_end_ms = ended;
                // The run's end cut the connection before the answer had another `within`
                // to come late in: not proven lost.
                v.cut_by_run_ms = ended
                    .filter(|_| cut_by_run)
                    .map(|end| end - v.at_ms)
                    .filter(|after| (0.0..window).contains(after));
            }
            v
        }));
        let fresh = r
            .answer
            .as_ref()
            .filter(|a| answers.len() < MAX_ANSWERS && answers.iter().all(|k| k.cause != a.cause));
        answers.extend(fresh.cloned());
    }
    violations.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    for v in &mut violations {
        redact_violation(redactor, v);
    }
    // A server may echo the token in its refusal page: what it said is shown, never it.
    for a in &mut answers {
        redactor.redact_in_place(&mut a.detail);
        redactor.redact_in_place(&mut a.body);
    }
    let probe_cut = probe_cut_note(&out);
    let mut stopped = if out.interrupted {
        StopReason::Interrupted
    } else if let Some((why, _)) = out.stopped_early {
        why
    } else if out.hit_duration {
        StopReason::Duration
    } else {
        StopReason::Completed
    };
    let evidence = Evidence {
        plan,
        reports: &out.reports,
        by_oracle: &by_oracle,
        coverage: &coverage,
        stopped,
        stalls: &out.stalls,
        kept: &violations,
        redactor,
        target: &bound.url,
        probes: &out.probes,
        correct_reference: bound.is_correct_reference(),
    };
    let mut judgement = oracle::verdict::judge(&evidence);
    if let (crate::model::Verdict::AuthMisconfigured, true, Some(hint)) = (
        judgement.verdict,
        bound.sends_development_tokens(plan),
        judgement.hint.as_mut(),
    ) {
        // Said first: the likeliest cause, and a stderr notice scrolls away; unless no token
        // reached the server (the placement leads then, and the secret may be right).
        let (why, fix) = crate::auth::Keys::development_secret_words(&plan.auth.secret, |name| {
            std::env::var_os(name).is_some()
        });
        *hint = if hint.starts_with(oracle::verdict::UPGRADE_REFUSED_WITHOUT_TOKEN) {
            format!("{hint}; also, {why}, and the tokens were signed with it ({fix})")
        } else {
            format!("{why}, and the tokens were signed with it ({fix}); {hint}")
        };
    }
    // A Ctrl-C that cut the liveness probe left the one oracle that looks for sessions
    // left behind unjudged: a load with nothing else against it is not clean, it is
    // interrupted (a leak only the probe finds would otherwise pass). A load that failed on
    // its own keeps its verdict and exit code.
    // What the clean load's hint says (what went unjudged) still holds; the note on the
    // cut probe, added below, says why it is no clean run.
    if probe_cut.is_some() && judgement.verdict == crate::model::Verdict::Clean {
        stopped = StopReason::Interrupted;
        judgement.verdict = crate::model::Verdict::Incomplete;
    }
    let rate_limiting = judgement.verdict == crate::model::Verdict::Violations
        && oracle::verdict::rate_limiting_may_explain(&evidence);
    let went_away = judgement.verdict == crate::model::Verdict::Inconclusive
        && oracle::verdict::server_went_away(&evidence);
    // The hint may quote what the server said (a close reason, an error, a refusal
    // message), which may echo the token.
    let mut hint = judgement.hint.map(|h| redactor.redact(&h).into_owned());
    let never = out.reports.iter().filter(|r| r.attempts.is_empty()).count();
    let started = out.reports.len() - never;
    let early = out
        .stopped_early
        .and_then(|(why, failed)| stopped_early(why, failed, (started, never)));
    let probe = ProbeSummary {
        no_token: matches!(plan.auth.placement, crate::model::Placement::None),
        ..probe_summary(&out.probes, &plan.oracles.session.reject)
    };
    let unproven = (judgement.verdict == crate::model::Verdict::Clean)
        .then(|| unproven_probe_note(&probe))
        .flatten();
    for note in [early, probe_cut, unproven].into_iter().flatten() {
        hint = Some(match hint {
            Some(h) => format!("{h}; {note}"),
            None => note,
        });
    }
    Merged {
        connections_accepted: oracle::verdict::connections_accepted(&out.reports),
        verdict: judgement.verdict,
        rate_limiting,
        went_away,
        undeclared_takeover: oracle::takeover::undeclared_codes(plan, &out.reports),
        oracles: oracle::oracles_on(plan),
        hint,
        answers,
        counters,
        histograms: out.histograms,
        intervals: out.intervals,
        violations,
        by_oracle,
        lenient,
        coverage,
        stopped,
        elapsed: out.elapsed,
        barriers: out.barriers,
        releases_raised: out.releases_raised,
        probe,
        stalls: out.stalls,
    }
}

/// A clean run's note when the liveness probe after it proved nothing for most of its
/// tokens (shed by the server, unanswered or cut: [`ProbeSummary::inconclusive`]): the
/// one oracle that looks for sessions left behind did not look for them, which "no oracle
/// broke" would hide; the probe line says how each ended. `None` when at least half
/// proved something, or none ran.
fn unproven_probe_note(probe: &ProbeSummary) -> Option<String> {
    let (tokens, unproven) = (probe.tokens, probe.inconclusive);
    if tokens == 0 || unproven * 2 <= tokens {
        return None;
    }
    let shed = match probe.shed.min(unproven) {
        0 => String::new(),
        n => format!(", {n} of them shed by the server"),
    };
    let what = if probe.no_token {
        "connections"
    } else {
        "tokens"
    };
    Some(format!(
        "the liveness probe after the run proved nothing for {unproven} of its {tokens} \
         {what}{shed}: sessions left behind were not looked for there (the probe line says \
         how each ended)"
    ))
}

/// When the connection `r` ended for good (its last attempt's end), ms since the run's
/// start; `None` while none of its attempts ended. See [`Violation::conn_end_ms`].
/// Whether the run's own end (its duration, a hunt's budget, Ctrl-C) ended `r`'s last
/// attempt, open until then ([`Cause::Interrupted`](crate::model::Cause::Interrupted)).
fn cut_by_run(r: &ConnReport) -> bool {
    r.attempts
        .iter()
        .max_by_key(|a| a.ended_us)
        .is_some_and(|a| a.cause == Some(crate::model::Cause::Interrupted))
}

fn last_end_ms(r: &ConnReport) -> Option<f64> {
    let ended_us = r.attempts.iter().filter_map(|a| a.ended_us).max()?;
    Some(ended_us as f64 / 1000.0)
}

/// Counts the probes: refused only when the server answered with a refusal; no answer
/// (a timeout, a failed connect, a probe cut by the phase's bound) proves nothing, and
/// neither does load shedding (429, 503, 1013 or a `reject.shed` code, or a Close whose
/// reason reads as rate limiting, [`Probe::rate_limited`]: "not now" says nothing about a
/// session still held).
fn probe_summary(
    probes: &[crate::model::Probe],
    reject: &crate::model::RejectSpec,
) -> ProbeSummary {
    use crate::model::Cause;
    let shed_it = |p: &crate::model::Probe| {
        p.rate_limited || p.cause.as_ref().is_some_and(|c| reject.sheds(c))
    };
    let answered = |p: &&crate::model::Probe| match &p.cause {
        Some(Cause::Http(_) | Cause::ServerClose(_) | Cause::RefusedInBand(_)) => !shed_it(p),
        _ => false,
    };
    let unaccepted = || probes.iter().filter(|p| !p.accepted);
    let shed: Vec<&crate::model::Probe> = unaccepted().filter(|p| shed_it(p)).collect();
    let mut shed_by: Vec<String> = Vec::new();
    for p in &shed {
        let way = shed_in_words(p, reject);
        if !shed_by.contains(&way) {
            shed_by.push(way);
        }
    }
    ProbeSummary {
        tokens: probes.len(),
        refused: unaccepted().filter(answered).count(),
        inconclusive: unaccepted().filter(|p| !answered(p)).count(),
        shed: shed.len(),
        shed_by,
        refused_by_policy: unaccepted()
            .filter(|p| !p.expired && !p.held)
            .filter(|p| {
                p.cause
                    .as_ref()
                    .is_some_and(crate::oracle::session::token_policy)
            })
            .count(),
        refused_expired: unaccepted().filter(|p| p.expired && answered(p)).count(),
        no_token: false,
    }
}

/// How a probe was shed, in words: a code the scenario declared under `reject.shed` says
/// so (the server's own convention), a close whose reason reads as rate limiting says
/// that, the shared ones by what they are.
fn shed_in_words(p: &crate::model::Probe, reject: &crate::model::RejectSpec) -> String {
    use crate::model::Cause;
    match &p.cause {
        Some(Cause::ServerClose(code)) if reject.shed.contains(code) => {
            format!("declared shed code {code}")
        }
        Some(Cause::ServerClose(code)) if p.rate_limited => {
            format!("close {code} with a rate limit's reason")
        }
        Some(Cause::ServerClose(code)) => format!("close {code}"),
        Some(Cause::Http(status)) => format!("HTTP {status}"),
        Some(other) => other.to_string(),
        None => "no answer".into(),
    }
}

/// What a run stopped early (`why`) kept from starting: `never` planned connections, after
/// its first `failed` attempts all ended one way (refused at TCP at a closed port, tokens
/// (not forged) refused at the upgrade, answered 404 or 410 at a wrong path, a certificate the
/// TLS handshakes refused). `None` when every one had started anyway (all at once,
/// `collide`): the early stop spared nothing; or when `why` is no early stop. When more
/// connections had `started` than were counted (only some tell a wrong secret or path from
/// a server's policy: `swarm::unreachable`), it says so, or "the first 10" would read as
/// the run's first 10.
fn stopped_early(why: StopReason, failed: u64, (started, never): (usize, usize)) -> Option<String> {
    let how = match why {
        StopReason::Unreachable => "attempts were all refused at TCP and none connected",
        StopReason::AuthRefused => {
            "tokens' upgrades were all refused as unauthorized and none got through"
        }
        StopReason::NotFound => "upgrades were all answered 404 or 410 and none got through",
        StopReason::CertificateRefused => {
            "TLS handshakes all refused the server's certificate and none got through"
        }
        StopReason::UpgradeUnanswered => {
            "tokens' upgrades all went unanswered within handshake_timeout (the TCP \
             connections taken) and the server answered no other"
        }
        StopReason::ClosedUnaccepted => {
            "tokens' connections were all closed by the server after the upgrade before it \
             accepted them, with a protocol error (1002, 1003 or 1007: the script does not \
             speak its protocol), and it accepted no other"
        }
        StopReason::Completed | StopReason::Duration | StopReason::Interrupted => return None,
    };
    let counted = match why {
        StopReason::AuthRefused if started as u64 > failed => format!(
            " (only an unforged token's first presentation, shared by no other connection, \
             counts toward the {failed}; {started} connections had started by then)"
        ),
        StopReason::NotFound if started as u64 > failed => format!(
            " (only a valid token's first attempt, its request told apart by nothing else, \
             counts toward the {failed}; {started} connections had started by then)"
        ),
        _ => String::new(),
    };
    (never > 0).then(|| {
        format!(
            "stopped early: the first {failed} {how}{counted}, so the other {never} planned \
             connection{} never started",
            if never == 1 { "" } else { "s" }
        )
    })
}

/// Replaces every minted token in the text of `v` (what the server sent ends up in
/// `seen`, `expected`, `correlation` and the involved connections' answers), and what
/// else the redactor hides (a quoted URL's secret query values, with no token to look
/// for too).
fn redact_violation(redactor: &auth::Redactor, v: &mut Violation) {
    redactor.redact_in_place(&mut v.expected);
    redactor.redact_in_place(&mut v.seen);
    if let Some(c) = &mut v.correlation {
        redactor.redact_in_place(c);
    }
    for i in &mut v.involved {
        redactor.redact_in_place(&mut i.answer);
    }
}

/// Makes the result directory and opens its `intervals.hlog`.
fn interval_log(dir: &std::path::Path) -> Result<IntervalLog, RunError> {
    let failed = |path: &std::path::Path, source| {
        RunError::Write(WriteError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
    let path = dir.join("intervals.hlog");
    IntervalLog::create(&path).map_err(|e| failed(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cause, Probe, SessionOracles};

    /// The warning counts the planned connections (of the shard, when one) per source
    /// address: one address past its quick share warns, two addresses or a shard of it do
    /// not.
    #[test]
    fn the_port_search_warning_counts_a_runs_connections_per_address() {
        let Some(quick) = quick_per_address() else {
            return; // No port range to read here: never a warning.
        };
        let users = quick + 1;
        let text = format!(
            "name = \"w\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = {users}\nsteps = [{{ think = \"fixed(1s)\" }}]\n"
        );
        let scenario = crate::scenario::load_str(&text, "w.toml").expect("a scenario");
        let opts = RunOptions::default();
        let warning = slow_ports_note(&scenario, &opts).unwrap_or_default();
        assert!(
            warning.starts_with(&format!("{users} connections from 1 source address")),
            "{warning}"
        );
        let two = RunOptions {
            sources: vec![
                "127.0.0.2".parse().expect("ip"),
                "127.0.1.2".parse().expect("ip"),
            ],
            ..RunOptions::default()
        };
        assert_eq!(slow_ports_note(&scenario, &two), None);
        let half = RunOptions {
            shard: Some(crate::model::Shard { index: 0, count: 2 }),
            ..RunOptions::default()
        };
        assert_eq!(slow_ports_note(&scenario, &half), None);
    }

    /// The early stop at a closed port says how many connections it kept from starting,
    /// and nothing when all had started anyway.
    #[test]
    fn an_early_stop_that_spared_no_connection_is_not_said() {
        assert_eq!(stopped_early(StopReason::Unreachable, 10, (10, 0)), None);
        assert_eq!(
            stopped_early(StopReason::Duration, 10, (10, 5)),
            None,
            "no early stop"
        );
        let one = stopped_early(StopReason::Unreachable, 10, (10, 1)).unwrap_or_default();
        assert!(
            one.ends_with("so the other 1 planned connection never started"),
            "{one}"
        );
        let many = stopped_early(StopReason::AuthRefused, 10, (10, 190)).unwrap_or_default();
        assert!(
            many.ends_with("the other 190 planned connections never started"),
            "{many}"
        );
        assert!(!many.contains("had started"), "{many}");
        // More started than counted (other groups, shared tokens): said, not "the first 10"
        // of the run.
        let mixed = stopped_early(StopReason::AuthRefused, 10, (224, 40)).unwrap_or_default();
        assert!(
            mixed.contains(
                "the first 10 tokens' upgrades were all refused as unauthorized and none got \
                 through (only an unforged token's first presentation, shared by no other \
                 connection, counts toward the 10; 224 connections had started by then), so \
                 the other 40"
            ),
            "{mixed}"
        );
    }

    fn probe(token: u32, cause: Cause, expired: bool) -> Probe {
        Probe {
            token,
            jti: format!("j{token}"),
            accepted: false,
            cause: Some(cause),
            at_us: 1,
            expired,
            rate_limited: false,
            held: false,
        }
    }

    /// A probe closed with a 1008 whose reason reads as rate limiting ("too many
    /// connections") was shed, not refused: it proves no session still held, and the
    /// console says how it was shed.
    #[test]
    fn a_probe_closed_for_a_rate_limit_is_shed_not_refused() {
        let probes = [
            Probe {
                rate_limited: true,
                ..probe(0, Cause::ServerClose(1008), false)
            },
            probe(1, Cause::ServerClose(1008), false),
        ];
        let summary = probe_summary(&probes, &SessionOracles::default().reject);
        assert_eq!((summary.refused, summary.inconclusive), (1, 1));
        assert_eq!(summary.shed, 1);
        assert_eq!(summary.shed_by, ["close 1008 with a rate limit's reason"]);
    }

    /// A clean run says when the probe proved nothing for most of its tokens (most shed,
    /// here: HTTP 429), and only then.
    #[test]
    fn a_probe_mostly_shed_is_said_of_a_clean_run() {
        let shed = |n: u32, of: u32| {
            let probes: Vec<Probe> = (0..of)
                .map(|t| match t < n {
                    true => probe(t, Cause::Http(429), false),
                    false => Probe {
                        accepted: true,
                        cause: None,
                        ..probe(t, Cause::Http(429), false)
                    },
                })
                .collect();
            unproven_probe_note(&probe_summary(&probes, &SessionOracles::default().reject))
        };
        let note = shed(3, 4).unwrap_or_default();
        assert!(
            note.contains("proved nothing for 3 of its 4 tokens, 3 of them shed by the server"),
            "{note}"
        );
        assert_eq!(shed(2, 4), None);
        assert_eq!(shed(0, 0), None);
    }

    /// A probe refused after its token's `exp` is counted apart: neither "who are you"
    /// policy (a token taken once) nor a session held; one refused before is as it was.
    #[test]
    fn probes_refused_after_their_token_expired_are_counted_apart() {
        let probes = [
            probe(0, Cause::Http(401), true),
            probe(1, Cause::ServerClose(4001), true),
            probe(2, Cause::Http(401), false),
        ];
        let summary = probe_summary(&probes, &SessionOracles::default().reject);
        assert_eq!(summary.refused, 3);
        assert_eq!(summary.refused_expired, 2);
        assert_eq!(summary.refused_by_policy, 1);
    }
}
