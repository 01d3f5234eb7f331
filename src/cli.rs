//! Command-line interface: clap definitions and the dispatch from a command to the library.
//! Parsing only turns flags into library options; all behaviour lives in the modules.
// Every line to stderr goes through `errln!`, which a closed stderr cannot make panic.
#![deny(clippy::print_stderr)]

/// `println!` that hands back the write's `io::Result` instead of panicking, through
/// [`out::stdout`]: a closed stdout (`stampede plan … | head`) drops what is no longer
/// read, and the command ends with its own exit code. Defined before the submodules so
/// they can use it too.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($crate::cli::out::stdout(), $($arg)*)
    }};
}

/// `eprintln!` that never panics: a stderr nobody reads any more (`… 2>&1 | head -1` once
/// its line came, a CI step's log closed) loses the text, not the command, which ends with
/// its own exit code (`eprintln!` panicked there: exit 101, the hunt never ran).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod battery;
pub mod error;
mod hunt;
pub mod out;
mod progress;
mod results;
mod seeds;
mod workers;

pub use error::{exit, Error};
pub use progress::Progress;

use crate::model::words::plural;
use crate::model::{Scenario, SecretSource};
use crate::run::{self, RunOptions, RunOutcome};
use crate::scenario::{self, parse_duration};
use crate::swarm::TlsOptions;
use crate::{plan, reference, report, results as files};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `stampede --version`: the package version, the commit it was built from and the build
/// date (`build.rs`; "unknown" outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("STAMPEDE_COMMIT"),
    ", built ",
    env!("STAMPEDE_BUILD_DATE"),
    ")"
);

/// The most threads `--threads` takes: far past any core count, well short of what makes
/// the runtime's start exhaust the machine (each thread reserves a stack).
pub const MAX_THREADS: usize = 1024;

/// The thread count `STAMPEDE_THREADS` asks for: `Ok(None)` when unset or empty, an error
/// naming the variable when it holds anything but a count `parse_threads` takes. Read
/// apart from the command line so that a bad value does not stop the commands that drive
/// no connections (`validate`, `plan`, ...): the caller warns and uses the default.
pub fn threads_in_env(value: Option<&str>) -> Result<Option<std::num::NonZeroUsize>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse_threads(text)
            .map(Some)
            .map_err(|e| format!("STAMPEDE_THREADS: {e}")),
    }
}

/// `--threads N`: a whole number from 1 to [`MAX_THREADS`].
fn parse_threads(text: &str) -> Result<std::num::NonZeroUsize, String> {
    text.trim()
        .parse()
        .ok()
        .and_then(std::num::NonZeroUsize::new)
        .filter(|n| n.get() <= MAX_THREADS)
        .ok_or_else(|| {
            format!("expected a whole number of threads from 1 to {MAX_THREADS}, found {text:?}")
        })
}

/// WebSocket load generator and race-condition fuzzer.
#[derive(Debug, Parser)]
#[command(name = "stampede", version = VERSION, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Threads that drive the connections, as each command that drives them takes it
    /// after its name (`stampede --threads 1 run …` is `stampede run … --threads 1`).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<std::num::NonZeroUsize>,
    /// Whether the command's target URL came from `STAMPEDE_TARGET`, not the command line
    /// (set by [`Cli::parse_args`]): an error about it then says where it came from.
    #[arg(skip)]
    pub target_from_env: bool,
}

impl Cli {
    /// The thread count asked for on the command line: after the command's name (on the
    /// commands that drive connections), else before it; `None` for the default.
    pub fn thread_count(&self) -> Option<std::num::NonZeroUsize> {
        let on_command = match &self.command {
            Command::Run(a) => a.target.threads.threads,
            Command::Learn(a) => a.target.threads.threads,
            Command::Hunt(a) => a.target.threads.threads,
            Command::Replay(a) => a.target.threads.threads,
            Command::Shrink(a) => a.target.threads.threads,
            Command::Serve(a) => a.threads.threads,
            _ => None,
        };
        on_command.or(self.threads)
    }
}

/// `--threads N`, on the commands that drive connections (run, learn, hunt, replay,
/// shrink, serve): the others have none to drive.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct ThreadsArg {
    /// Threads that drive the connections (default: one per core this process may use;
    /// or the STAMPEDE_THREADS environment variable). On a machine shared with the server
    /// under test, fewer leave the server its cores and spend less CPU per message; with
    /// 1, the calling thread drives them all (no worker threads). `--workers` processes
    /// inherit the count.
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<std::num::NonZeroUsize>,
}

impl Cli {
    /// Parses the command line as [`Parser::parse`] does (exiting with clap's message and
    /// code 2 on a mistake), then settles `--target` against `--reference`/`--bug`: given
    /// on the command line together, they are refused as conflicting; a `--target` that
    /// came from `STAMPEDE_TARGET` gives way to them, so that a CI job that exports it can
    /// still run a step against the built-in server. (clap's own conflict rule cannot tell
    /// the two apart: it refused the environment's too, naming a flag nobody typed.)
    pub fn parse_args() -> Cli {
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let target_from_env = matches.subcommand().is_some_and(|(_, sub)| {
            matches!(sub.try_get_raw("target"), Ok(Some(_)))
                && sub.value_source("target") == Some(clap::parser::ValueSource::EnvVariable)
        });
        let mut from_env = false;
        if let Some(args) = cli.command.target_args_mut() {
            // Exported empty (`STAMPEDE_TARGET=` in a CI job's environment): no target,
            // as if unset, not a URL "" refused.
            if target_from_env && args.target.as_deref().is_some_and(|t| t.trim().is_empty()) {
                args.target = None;
            }
            if args.target.is_some() && (args.reference || args.bug.is_some()) {
                if !target_from_env {
                    Cli::command()
                        .error(
                            clap::error::ErrorKind::ArgumentConflict,
                            "--target cannot be used with --reference or --bug (the built-in \
                             server is the target then)",
                        )
                        .exit();
                }
                args.target = None;
            }
            from_env = target_from_env && args.target.is_some();
        }
        cli.target_from_env = from_env;
        cli
    }

    /// Whether the command's target URL came from `STAMPEDE_TARGET` (see
    /// [`Cli::parse_args`]).
    pub fn target_from_env(&self) -> bool {
        self.target_from_env
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write results (against the built-in server when no target is given).
    #[command(after_help = error::RUN_EXIT_CODES)]
    Run(RunArgs),
    /// Check scenario files; report every problem as file:line:column.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the deterministic plan a scenario and seed compile to (JSON).
    Plan {
        scenario: PathBuf,
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run the reference server (the golden-path protocol).
    #[command(after_help = SERVE_SECRET_HELP)]
    Serve(ServeArgs),
    /// Compare latency and throughput of two sets of runs; exit 1 on a regression.
    #[command(after_help = error::COMPARE_EXIT_CODES)]
    Compare(CompareArgs),
    /// Render a run's results as one self-contained HTML page.
    Report(ReportArgs),
    /// Calibrate against the target (a few connections, one at a time) and print the
    /// invariants it always kept, as TOML to paste into the scenario's `[oracles]`.
    #[command(after_help = error::LEARN_EXIT_CODES)]
    Learn(LearnArgs),
    /// Hunt for a race: round after round of seeded variations until a violation or the budget.
    #[command(after_help = error::HUNT_EXIT_CODES)]
    Hunt(hunt::HuntArgs),
    /// Replay a repro file N times and report how often it reproduces.
    #[command(after_help = error::REPLAY_EXIT_CODES)]
    Replay(hunt::ReplayArgs),
    /// Shrink a repro file to the connections, actions and offsets its race needs.
    #[command(after_help = error::SHRINK_EXIT_CODES)]
    Shrink(hunt::ShrinkArgs),
    /// Merge result directories of one scenario and seed (e.g. shards) into one result.
    #[command(after_help = error::MERGE_EXIT_CODES)]
    Merge(MergeArgs),
    /// Print a shell completion script, e.g. `stampede completions bash > ~/.local/share/bash-completion/completions/stampede`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout, or write one page per command into a folder.
    Man {
        /// Folder to write `stampede.1` and `stampede-<command>.1` into.
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

impl Command {
    /// The target flags of the commands that dial one (`run`, `learn`, `hunt`, `replay`,
    /// `shrink`).
    fn target_args_mut(&mut self) -> Option<&mut hunt::TargetArgs> {
        match self {
            Command::Run(RunArgs { target, .. })
            | Command::Learn(LearnArgs { target, .. })
            | Command::Hunt(hunt::HuntArgs { target, .. })
            | Command::Replay(hunt::ReplayArgs { target, .. })
            | Command::Shrink(hunt::ShrinkArgs { target, .. }) => Some(target),
            _ => None,
        }
    }

    /// Whether this command keeps nothing a stop could write (`validate`, `plan`,
    /// `completions`, `man`: each reads, prints and ends): Ctrl-C then ends it at once,
    /// where the others stop at their next step and say what they kept. `validate` of a
    /// large file, or one read from a pipe nobody writes, is stopped as any command is.
    pub fn stops_at_once(&self) -> bool {
        matches!(
            self,
            Command::Validate { .. }
                | Command::Plan { .. }
                | Command::Completions { .. }
                | Command::Man { .. }
        )
    }

    /// What the first Ctrl-C's notice promises for this command: only `run` writes the
    /// results of what ran; `hunt`, `replay` and `shrink` say in their result line what, if
    /// anything, they kept (a find's repro, a smaller repro), and must not promise more.
    /// `None` under `-q`, which promises no notices on stderr: the result line still says
    /// the command was interrupted, and the exit code (130) says it to a script.
    pub fn interrupt_notice(&self) -> Option<std::borrow::Cow<'static, str>> {
        if self.quiet() {
            return None;
        }
        let notice = match self {
            Command::Run(args) if args.no_results => {
                "stopping connections; what the load ran so far is summarized (--no-results: \
                 no files)"
            }
            Command::Run(_) => "stopping connections; what the load ran so far is written",
            Command::Hunt(_) => {
                "stopping the hunt; its result says what it found, and a repro is written \
                 only of a race it saw (a find, or a suspect its replays could not confirm)"
            }
            Command::Replay(_) => "stopping the replays; the rate so far is printed",
            Command::Shrink(args) => {
                return Some(
                    format!(
                        "stopping the shrink; its result says what was kept (a smaller repro, \
                         if one was confirmed by then, is written to {})",
                        args.partial_out().display()
                    )
                    .into(),
                );
            }
            Command::Serve(_) => "stopping the server",
            _ => "stopping",
        };
        Some(notice.into())
    }

    /// Whether this command is a `--workers` parent's worker that stops when its stdin
    /// ends (`--stop-with-stdin`): the parent is gone.
    pub fn stops_with_stdin(&self) -> bool {
        matches!(
            self,
            Command::Run(RunArgs {
                stop_with_stdin: true,
                ..
            })
        )
    }

    /// Whether `-q` was given (on the commands that take it).
    fn quiet(&self) -> bool {
        match self {
            Command::Run(RunArgs { output, .. })
            | Command::Hunt(hunt::HuntArgs { output, .. })
            | Command::Replay(hunt::ReplayArgs { output, .. })
            | Command::Shrink(hunt::ShrinkArgs { output, .. })
            | Command::Merge(MergeArgs { output, .. })
            | Command::Compare(CompareArgs { output, .. }) => output.quiet,
            Command::Report(args) => args.quiet,
            _ => false,
        }
    }
}

/// Quiet and JSON output: the same two flags on every command that runs or reads runs.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// No progress display and no notices on stderr (errors and the result still print).
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the result as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    #[command(flatten)]
    pub target: hunt::TargetArgs,
    #[command(flatten)]
    pub reset: hunt::ResetRefused,
    /// Not an option: taken, hidden, only to be refused saying where the number of users
    /// is set (k6's `--vus`), where the parser would suggest `--seeds`.
    #[arg(
        long,
        alias = "vus",
        hide = true,
        value_name = "N",
        help = "Refused: each [[group]] of the scenario sets its own users"
    )]
    pub users: Option<String>,
    /// Not an option: taken, hidden, only to be refused saying where the arrival rate is
    /// set (k6's `--rate`, Artillery's `arrivalRate`), where the parser would suggest
    /// `--target`.
    #[arg(
        long,
        alias = "arrival-rate",
        hide = true,
        value_name = "RATE",
        help = "Refused: each [[group]]'s `arrival` sets how its connections start"
    )]
    pub rate: Option<String>,
    /// Not an option: taken, hidden, only to be refused saying what stampede has instead
    /// of k6's metric tags (`--tag NAME=VALUE`, repeatable), where the parser would
    /// suggest `--target`.
    #[arg(
        long,
        alias = "tags",
        hide = true,
        value_name = "TAG",
        help = "Refused: stampede has no tags; an `expect` step's `name` splits its latency out"
    )]
    pub tag: Vec<String>,
    /// Seed; overrides the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Hard stop, e.g. 30s (greater than zero); overrides the scenario's.
    #[arg(long, value_parser = parse_run_duration)]
    pub duration: Option<Duration>,
    // `<…>` is the help text's placeholder, not HTML.
    #[allow(rustdoc::invalid_html_tags)]
    /// Base folder for results (each run goes to OUT/<scenario>/<UTC start time>/).
    #[arg(short, long, default_value = "results", value_name = "DIR")]
    pub out: PathBuf,
    /// Write no result files (not with -o, which names where they go).
    #[arg(long, conflicts_with = "out")]
    pub no_results: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Write JUnit XML (one test case per oracle and per threshold) to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Length of each interval of intervals.hlog and intervals.json.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Run this many times, under consecutive seeds from --seed on, and report how often
    /// each oracle broke (formerly --seeds).
    #[arg(long, alias = "seeds", default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub times: u32,
    /// Run only this slice of the plan, INDEX/COUNT (0-based): the connections whose token
    /// slot % COUNT == INDEX (connections sharing a token stay in one shard). `stampede
    /// merge` combines the shards' results exactly.
    #[arg(long, value_name = "INDEX/COUNT", conflicts_with = "workers")]
    pub shard: Option<crate::model::Shard>,
    /// Split the plan over N processes (shards; 1 to 64), each under its own open-file limit and,
    /// against a loopback target, from its own source address (127.0.0.2, 127.0.0.3, …;
    /// more of its own, 127.0.1.2, …, when its share is more than one address carries
    /// quickly; `--source-addr`, when given, is every worker's instead); their results are
    /// merged into one.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// Do not calibrate first: check only the scenario's declared oracles (see
    /// `stampede learn`; `[oracles] learn = false` does the same from the scenario).
    #[arg(long)]
    pub no_learn: bool,
    /// Internal (`--workers`): what the parent's calibration learned, as JSON; the run
    /// checks it and does not calibrate itself.
    #[arg(long, hide = true, value_name = "FILE", conflicts_with = "no_learn")]
    pub learned_from: Option<PathBuf>,
    /// Internal (`--workers`): print the plain progress lines even under `--quiet`, for
    /// the parent to pass on (its workers' other notices it says itself, once).
    #[arg(long, hide = true)]
    pub progress: bool,
    /// Internal (`--workers`): stop as on SIGTERM (the load stopped, what it ran written)
    /// once stdin reaches its end. The parent holds the other end of that pipe for the
    /// whole run, so its end means the parent is gone (SIGKILL from Kubernetes after its
    /// grace period, a CI job's hard kill), and a worker that went on loaded the target
    /// alone. Only workers read their stdin: a `run --shard` from a terminal does not.
    #[arg(long, hide = true)]
    pub stop_with_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LearnArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    #[command(flatten)]
    pub target: hunt::TargetArgs,
    #[command(flatten)]
    pub reset: hunt::ResetRefused,
    /// Seed; overrides the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Result directories (or their summary.json) of one scenario and seed: the shards of
    /// a run, or any runs to pool; a folder that holds runs (a scenario folder, a --workers
    /// run's …-workers folder) stands for every run in it, a quoted glob for what it
    /// matches.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    #[allow(rustdoc::invalid_html_tags)]
    /// Where the merged result goes [default: results/<scenario>/<timestamp>-merged].
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Check this scenario's `[thresholds]` on the merged result (without it, those the
    /// runs' summary.json files recorded are judged again on it).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// BASE then NEW: result directories, summary.json files, any folder that holds runs
    /// (a scenario folder, the --out base folder), or quoted globs. Use --base/--new
    /// instead to give several of each.
    #[arg(value_name = "BASE NEW")]
    pub paths: Vec<String>,
    /// A baseline run (repeatable; globs allowed).
    #[arg(long = "base", value_name = "PATH")]
    pub base: Vec<String>,
    /// A candidate run (repeatable; globs allowed).
    #[arg(long = "new", value_name = "PATH")]
    pub new: Vec<String>,
    /// How much worse NEW may be before it counts as a regression.
    #[arg(long, default_value = "10%", value_parser = files::compare::parse_tolerance)]
    pub tolerance: f64,
    /// A tolerance for one metric or phase, e.g. turn.p99=20%, or an error row: errors.rate,
    /// unmet.rate, shed.rate, violations (repeatable).
    #[arg(long = "tolerance-for", value_name = "METRIC=PERCENT", value_parser = files::compare::parse_tolerance_for)]
    pub tolerance_for: Vec<(String, f64)>,
    /// Compare runs of different scenarios anyway.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Result directory (or its summary.json), or any folder that holds runs (a scenario
    /// folder, the --out base folder): then the newest run in it.
    #[arg(value_name = "RESULT_DIR", required = true)]
    pub dir: Vec<PathBuf>,
    /// Another run (or folder of runs: its newest) to overlay on this one.
    #[arg(long, value_name = "OTHER_DIR")]
    pub vs: Option<PathBuf>,
    /// Where to write the page [default: RESULT_DIR/report.html].
    #[arg(short, long, alias = "output", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Do not say on stderr where the page went.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Where `serve` takes its HS256 secret from, at the end of its help.
const SERVE_SECRET_HELP: &str = "The HS256 secret is read from the STAMPEDE_JWT_SECRET \
    environment variable, never from a flag (a command line shows in `ps`); unset, the \
    public development secret `stampede-dev-secret` is used, with a warning.";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on: IP:PORT or HOST:PORT (`localhost:8080`; a host name is
    /// resolved, its first address used).
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Serve wss:// with a self-signed certificate (or --cert/--key).
    #[arg(long)]
    pub tls: bool,
    /// PEM certificate chain for --tls.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key for --tls.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Write the self-signed certificate here, for clients' --ca-file.
    #[arg(long)]
    pub write_ca: Option<PathBuf>,
    /// Refused: a secret on a command line shows in `ps` and shell history. The HS256
    /// secret is read from `STAMPEDE_JWT_SECRET` (see the help's end).
    #[arg(long = "secret", hide = true, num_args = 0..=1, default_missing_value = "")]
    pub secret_flag: Option<String>,
    /// PEM public key (RSA or P-256) to verify RS256 / ES256 tokens with, besides the
    /// HS256 secret. Use the key matching a scenario's `[auth] key`.
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// Required `aud` claim; without it, tokens that carry an `aud` are refused.
    #[arg(long, value_name = "AUDIENCE")]
    pub aud: Option<String>,
    /// Required `iss` claim; without it, tokens that carry an `iss` are refused (unless
    /// --lenient).
    #[arg(long, value_name = "ISSUER")]
    pub iss: Option<String>,
    /// A correct server with a lenient bad-token policy: without --iss any `iss` is
    /// accepted; a missing or empty `sub` is let through; a token without `exp` never
    /// expires; a numeric-string `exp` is read as its number; the last of duplicate claim
    /// names wins; tokens up to 32 KiB are verified (strict: 8 KiB). Signatures, `alg`, an
    /// `exp` that is there, `nbf`, `jti` and --aud are checked as ever.
    #[arg(long)]
    pub lenient: bool,
    /// Pause between the events of one run.
    #[arg(long, default_value = "2ms", value_parser = parse_duration)]
    pub event_delay: Duration,
    /// Plant a race (see --list-bugs); without it the server is correct.
    #[arg(long)]
    pub bug: Option<reference::Bug>,
    /// The planted bug's race window.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    pub bug_window: Duration,
    /// List the planted bugs and exit.
    #[arg(long)]
    pub list_bugs: bool,
    /// Stall every run's events once, for this long (a server hiccup; see --stall-after).
    #[arg(long, value_parser = parse_duration)]
    pub stall: Option<Duration>,
    /// The run number (server-wide, from 1) whose start triggers --stall.
    #[arg(long, default_value_t = 50)]
    pub stall_after: u64,
    /// Extra delay before each run's first event (simulates a slower release).
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    pub delay: Duration,
    /// Share the port with other `serve --reuse-port` processes (SO_REUSEPORT): the kernel
    /// spreads connections over them, each under its own open-file limit.
    #[arg(long)]
    pub reuse_port: bool,
    #[command(flatten)]
    pub threads: ThreadsArg,
}

/// Runs one command; returns the process exit code.
pub async fn execute(cli: Cli, cancel: CancellationToken) -> Result<u8, Error> {
    match cli.command {
        Command::Run(args) => {
            let junit = args.junit.clone().map(|file| (file, args.scenario.clone()));
            let outcome = run_command(args, cancel).await;
            if let (Err(e), Some((file, scenario))) = (&outcome, junit) {
                // A run that ended with results wrote its own JUnit file; one refused
                // before it started (exit 2) has none yet.
                if e.exit_code() == exit::USAGE {
                    junit_of_refusal(&file, &scenario, e);
                }
            }
            outcome
        }
        Command::Validate { files } => validate(&files),
        Command::Plan { scenario, seed } => {
            let s = scenario::load_file(&scenario)?;
            let plan = plan::build(&s, s.seed_or(seed));
            let json = plan.to_json().map_err(Error::usage)?;
            outln!("{json}")?;
            Ok(exit::CLEAN)
        }
        Command::Serve(args) => serve(args, cancel).await,
        Command::Compare(args) => results::compare(args),
        Command::Report(args) => results::html_report(&args),
        Command::Learn(args) => learn_command(args, cancel).await,
        Command::Hunt(args) => hunt::hunt_command(args, cancel).await,
        Command::Replay(args) => hunt::replay_command(args, cancel).await,
        Command::Shrink(args) => hunt::shrink_command(args, cancel).await,
        Command::Merge(args) => workers::merge_command(&args),
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics when its writer fails, and a closed
            // stdout (`| head`) must end the command quietly instead.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "stampede", &mut script);
            use std::io::Write as _;
            std::io::stdout().lock().write_all(&script)?;
            Ok(exit::CLEAN)
        }
        Command::Man { out } => man(out.as_deref()),
    }
}

/// The man page on stdout, or `stampede.1` and one `stampede-<command>.1` per command in
/// `dir`.
fn man(dir: Option<&std::path::Path>) -> Result<u8, Error> {
    let command = Cli::command();
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command).render(&mut page)?;
        use std::io::Write as _;
        std::io::stdout().lock().write_all(&page)?;
        return Ok(exit::CLEAN);
    };
    std::fs::create_dir_all(dir).map_err(|source| files::WriteError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut pages = vec![("stampede.1".to_string(), command.clone())];
    for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
        let name = format!("stampede-{}", sub.get_name());
        pages.push((format!("{name}.1"), sub.clone().name(name)));
    }
    for (file, page) in &pages {
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page.clone()).render(&mut bytes)?;
        files::write_atomic(&dir.join(file), &bytes)?;
    }
    errln!(
        "wrote {} to {}",
        plural(pages.len() as u64, "man page"),
        dir.display()
    );
    Ok(exit::CLEAN)
}

async fn run_command(args: RunArgs, cancel: CancellationToken) -> Result<u8, Error> {
    refuse_reset(&args.reset, "run")?;
    if args.users.is_some() {
        return Err(Error::Usage(
            "run takes no --users (nor --vus): each [[group]] of the scenario sets its own \
             `users` (and `arrival`, how they start); edit the scenario, or keep a copy per load"
                .into(),
        ));
    }
    if args.rate.is_some() {
        return Err(Error::Usage(
            "run takes no --rate (nor --arrival-rate): each [[group]] of the scenario sets \
             how its connections start in `arrival`, e.g. `arrival = { rate = \"100/s\" }` \
             (or `ramp`, `burst`, `collide`); edit the scenario, or keep a copy per load"
                .into(),
        ));
    }
    if !args.tag.is_empty() {
        return Err(Error::Usage(
            "run takes no --tag (nor --tags): stampede has no metric tags; to see one \
             request's latency apart, give its `expect` step a `name` (its own histogram, \
             `turns.NAME` in summary.json and --json, `turn:NAME` in compare)"
                .into(),
        ));
    }
    refuse_output_spec(&args.out)?;
    if !args.no_results {
        check_out_folder(
            &args.out,
            "results go into a folder (OUT/<scenario>/<start time>/): name a folder (it is \
             created if missing), or pass --no-results",
        )?;
    }
    if let Some(junit) = &args.junit {
        check_file_path("--junit", junit)?;
    }
    // Written to before any network work: a folder this process cannot write (its
    // permissions, a read-only mount) found after the load cost the whole run.
    if !args.no_results {
        check_writable("-o", &args.out)?;
    }
    if let Some(folder) = args.junit.as_deref().map(folder_of) {
        check_writable("--junit", folder)?;
    }
    if args.times > 1 && args.workers > 1 {
        // Each seed's run would be one process: --workers would be ignored, silently.
        return Err(Error::Usage(
            "--times and --workers do not combine: --times runs the scenario once per seed \
             in this process, --workers splits one run over processes; use one of them"
                .into(),
        ));
    }
    if args.times > 1 {
        return seeds::run_seeds(args, cancel).await;
    }
    if args.workers > 1 {
        return workers::run_workers(args, cancel).await;
    }
    let file = scenario::ScenarioFile::read(&args.scenario)?;
    let scenario = file.to_run()?;
    if !args.output.quiet {
        warn_expiring_before_load(&file, &scenario);
    }
    let mut opts = args.options(args.seed);
    if !args.output.quiet {
        if let Some(warning) = crate::run::slow_ports_note(&scenario, &opts) {
            errln!("warning: {warning}");
        }
    }
    if let Some(path) = &args.learned_from {
        opts.learned = Some(workers::read_learned(path)?);
    }
    let outcome = watched_run(&scenario, &opts, Chatter::of(&args), cancel).await?;
    print_run(&outcome, &args)
}

/// Prints a run's outcome as `run` does (the summary as text with its results line, or as
/// JSON under `--json`), writes `--junit`, and returns the exit code. A `--workers` run
/// stopped before any worker started prints through it too: the same shape as a run in
/// one process.
fn print_run(outcome: &crate::run::RunOutcome, args: &RunArgs) -> Result<u8, Error> {
    let summary = &outcome.results.summary;
    let saved_in = outcome.dir.as_deref().filter(|_| outcome.unsaved.is_none());
    if args.output.json {
        let json = serde_json::to_string_pretty(&summary.written()).map_err(Error::usage)?;
        outln!("{json}")?;
    } else {
        let mut out = out::stdout();
        report::render(summary, &mut out)?;
        results_line(&mut out, saved_in, summary)?;
    }
    if let Some(path) = &args.junit {
        write_file(path, report::junit(summary).as_bytes())?;
    }
    // Said after the results, which it did not take away: only their files are missing.
    if let Some(e) = &outcome.unsaved {
        errln!("error: {e}: the results above were not all saved");
        return Ok(exit::INTERNAL);
    }
    Ok(error::of_run(summary))
}

/// `run --junit FILE` of a run refused before it started (exit 2: a scenario that did not
/// load, a malformed target, flags that do not combine): a document with one erring case,
/// so that CI reports the failure, not "no results". The refusal is what the command says
/// and exits with; a file that cannot be written is said beside it.
fn junit_of_refusal(file: &std::path::Path, scenario: &std::path::Path, e: &Error) {
    // A path the refusal itself is about (a folder, a file in its way) takes no file: the
    // refusal says so once.
    if check_file_path("--junit", file).is_err() {
        return;
    }
    let xml = match e {
        Error::Scenario(e) => report::junit_scenario_error(scenario, e),
        // The case is the run that never started; its error says why, causes included.
        e => report::junit_refusal(scenario, "run", "usage", error::message(e).trim_end()),
    };
    if let Err(w) = write_file(file, xml.as_bytes()) {
        errln!("error: --junit {}: {w}", file.display());
    }
}

/// The console's last line: where the results went, or, under `--no-results` (`dir`
/// `None`) with violations beyond the few listed, that none of them were kept. Nothing
/// when the verdict is a misconfiguration: its violations are no findings to keep (the
/// violations line says so).
fn results_line(
    out: &mut impl std::io::Write,
    dir: Option<&std::path::Path>,
    summary: &crate::results::Summary,
) -> std::io::Result<()> {
    match dir {
        Some(dir) => writeln!(out, "results      {}", dir.display()),
        None if summary.violations.total > 0 && summary.verdict.exercised() => writeln!(
            out,
            "results      none written (--no-results): run without it to keep every \
             violation in violations.jsonl"
        ),
        None => Ok(()),
    }
}

impl RunArgs {
    /// The library options these flags ask for, under `seed`.
    fn options(&self, seed: Option<u64>) -> RunOptions {
        let target = &self.target;
        RunOptions {
            target: target.target.clone(),
            reference: target.reference,
            bug: target.bug,
            bug_window: target.bug_window,
            seed,
            duration: self.duration,
            out: (!self.no_results).then(|| self.out.clone()),
            tls: TlsOptions {
                ca_file: target.ca_file.clone(),
                insecure: target.insecure,
            },
            interval: self.interval,
            thresholds: Vec::new(),
            shard: self.shard,
            sources: self.target.source_addr.clone(),
            learn: !self.no_learn,
            // Before the load, outside --duration: bounded by calibration's own limit.
            calibration_end: None,
            learned: None,
        }
    }
}

/// Refuses an `-o` folder that cannot be one because it, or a folder above it, is an
/// existing file: said before any network work, not after the load. `then` says where
/// the command's files go and what to do instead.
fn check_out_folder(out: &std::path::Path, then: &str) -> Result<(), Error> {
    match file_in_the_way(out) {
        Some(dir) if dir == out => Err(Error::Usage(format!(
            "-o {} is a file, not a folder; {then}",
            out.display()
        ))),
        Some(dir) => Err(Error::Usage(format!(
            "-o {}: {} is a file, not a folder, so nothing can be written under it; {then}",
            out.display(),
            dir.display()
        ))),
        None => Ok(()),
    }
}

/// Refuses a file to write after the run (`--junit FILE`) that cannot be written there:
/// an existing folder, or under a path one of whose folders is an existing file. Said
/// before any network work: found after the load it cost the whole run and hid its
/// verdict behind a failure of stampede's own.
fn check_file_path(flag: &str, file: &std::path::Path) -> Result<(), Error> {
    if file.is_dir() {
        return Err(Error::Usage(format!(
            "{flag} {} is a folder, not a file: name the file to write",
            file.display()
        )));
    }
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
    match parent.and_then(file_in_the_way) {
        Some(dir) => Err(Error::Usage(format!(
            "{flag} {}: {} is a file, not a folder, so nothing can be written under it",
            file.display(),
            dir.display()
        ))),
        None => Ok(()),
    }
}

/// The folder `file` goes into (`.` for a bare file name).
fn folder_of(file: &std::path::Path) -> &std::path::Path {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
}

/// Makes `dir` (and the folders above it) and writes and removes an empty file there, so
/// that a folder this process cannot write into is refused before the run, as `flag`'s.
///
/// # Errors
/// [`Error::Write`] (exit 3) naming `flag` and the folder, with the system's reason.
fn check_writable(flag: &str, dir: &std::path::Path) -> Result<(), Error> {
    let failed = |source| {
        Error::Write(files::WriteError::Io {
            path: format!("{} (the folder {flag} writes into)", dir.display()),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let probe = dir.join(format!(".stampede-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(failed)?;
    // Gone again at once; a leftover (a crash in between) is an empty dot-file.
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The nearest of `dir` and the folders above it that exists, when it is a file (so
/// nothing can be made under it); `None` when it is a folder, or none of them exists or
/// can be read here (the write says).
fn file_in_the_way(dir: &std::path::Path) -> Option<&std::path::Path> {
    for at in dir.ancestors().filter(|p| !p.as_os_str().is_empty()) {
        match std::fs::metadata(at) {
            Ok(meta) if meta.is_dir() => return None,
            Ok(_) => return Some(at),
            // Missing (created by the run), or unreadable here: the next folder up says.
            Err(_) => {}
        }
    }
    None
}

/// `-o json=FILE` and the like: k6's `--out OUTPUT=ARG` form, which would otherwise
/// become a results folder named `json=FILE`, in silence. Refused, saying what stampede
/// writes instead.
fn refuse_output_spec(out: &std::path::Path) -> Result<(), Error> {
    let text = out.to_string_lossy();
    let Some((kind, _)) = text.split_once('=') else {
        return Ok(());
    };
    let outputs = [
        "json",
        "csv",
        "influxdb",
        "prometheus",
        "statsd",
        "datadog",
        "cloud",
        "web-dashboard",
    ];
    if !outputs.contains(&kind) && !kind.starts_with("experimental-") {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "-o/--out takes a results folder, not an output spec ({text:?} is k6's form): every \
         run writes summary.json, violations.jsonl, histograms.json, intervals.json and \
         intervals.hlog into OUT/<scenario>/<start time>/; --json prints the summary on \
         stdout, --junit FILE writes JUnit XML"
    )))
}

/// `--reset` (shared with hunt, replay and shrink, which repeat runs against one target)
/// would be silently ignored by `command`: refused instead, saying what to do.
fn refuse_reset(refused: &hunt::ResetRefused, command: &str) -> Result<(), Error> {
    if refused.given() {
        return Err(Error::Usage(format!(
            "--reset and --reset-timeout apply to hunt, replay and shrink, not {command}: reset the target \
             yourself before `stampede {command}`"
        )));
    }
    Ok(())
}

/// `stampede learn`: calibrates against the target (the built-in reference server when
/// none is named) and prints the proposal as TOML on stdout.
async fn learn_command(args: LearnArgs, cancel: CancellationToken) -> Result<u8, Error> {
    refuse_reset(&args.reset, "learn")?;
    let scenario = scenario::load_file_to_run(&args.scenario)?;
    let plan = plan::build(&scenario, scenario.seed_or(args.seed));
    let target = args.target.choose(scenario.target.as_deref());
    let opts = args.target.run_options();
    let bound = run::bind(&target, &plan, &cancel).await?;
    if bound.is_reference() {
        errln!(
            "no target given: learning from the built-in reference server at {}",
            bound.url
        );
    }
    development_secret_notice(&bound, &plan);
    // Calibration prints nothing until it ends: say what it is doing meanwhile.
    errln!(
        "calibrating against {} (a few connections, one at a time; {:?} at most)",
        bound.url,
        run::learn::LIMIT
    );
    let proposal = run::learn::calibrate(&plan, &bound, &opts, &cancel).await;
    let url = bound.url.clone();
    let development = bound.sends_development_tokens(&plan);
    bound.close().await;
    let proposal = proposal?;
    outln!(
        "{}",
        crate::oracle::learn::to_toml(&proposal, &plan.oracles, &url)
    )?;
    if proposal.cut {
        errln!(
            "calibration stopped at its {:?} limit: {} made; the invariants above come from those",
            run::learn::LIMIT,
            proposal.progress()
        );
    }
    // Ctrl-C: what was learned before it is printed above, and the exit says it stopped
    // short, as every other command's does.
    if cancel.is_cancelled() {
        return Ok(exit::INTERRUPTED);
    }
    // Nothing accepted, nothing learned: a script must not read that as success.
    if let Some(none) = proposal.none_accepted(&url) {
        // The likeliest cause of an auth refusal, said where the error is read.
        let signed = (none.auth && development).then(|| {
            let (why, fix) = crate::auth::Keys::development_secret_words(&plan.auth.secret, |n| {
                std::env::var_os(n).is_some()
            });
            format!(" ({why}, and the tokens were signed with it: {fix})")
        });
        errln!("error: {none}{}", signed.unwrap_or_default());
        return Ok(if none.auth {
            exit::AUTH_MISCONFIGURED
        } else {
            exit::TARGET_UNUSABLE
        });
    }
    Ok(exit::CLEAN)
}

/// What a run says on stderr while it goes on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chatter {
    /// Notices (the reference server, a development secret): off under `--quiet`.
    pub notices: bool,
    /// The live progress display: off under `--quiet`, unless a `--workers` parent asks
    /// for it (`--progress`) to pass its lines on.
    pub progress: bool,
}

impl Chatter {
    pub(crate) fn of(args: &RunArgs) -> Chatter {
        Chatter {
            notices: !args.output.quiet,
            progress: !args.output.quiet || args.progress,
        }
    }
}

/// One run with live progress on stderr (unless `chatter` turns it off), and a notice when
/// it goes to the built-in reference server.
pub(crate) async fn watched_run(
    scenario: &Scenario,
    opts: &RunOptions,
    chatter: Chatter,
    cancel: CancellationToken,
) -> Result<RunOutcome, Error> {
    let quiet = !chatter.notices;
    let prepared = run::prepare(scenario, opts, &cancel).await?;
    if prepared.bound.is_reference() && !quiet {
        errln!(
            "no target given: running against the built-in reference server at {}",
            prepared.bound.url
        );
    }
    if !quiet {
        development_secret_notice(&prepared.bound, &prepared.plan);
    }
    let progress = chatter.progress.then(|| {
        let preparing = progress::Preparing {
            calibrates: prepared.calibrates(),
            fetches_tokens: prepared.fetches_tokens(),
        };
        Progress::start(
            prepared.live.clone(),
            prepared.plan.duration,
            prepared.plan.conns.len(),
            preparing,
        )
    });
    let outcome = prepared.execute(cancel).await;
    if let Some(progress) = progress {
        progress
            .finish(outcome.as_ref().ok().map(final_figures))
            .await;
    }
    Ok(outcome?)
}

/// The result's figures for the last progress line: every violation, the ones its oracles
/// found after the run included. (Its length the display reads from its own clock, which
/// stops where the result's was measured.)
fn final_figures(outcome: &RunOutcome) -> progress::Final {
    let s = &outcome.results.summary;
    progress::Final {
        violations: s.violations.total,
        findings: s.verdict.exercised(),
    }
}

/// Says once per process (a `--seeds` run or a hunt binds many times) that tokens for an
/// external target are signed with the public development secret, and what to set instead.
pub(crate) fn development_secret_notice(bound: &run::Bound, plan: &crate::model::Plan) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let secret = &plan.auth.secret;
    if bound.sends_development_tokens(plan) {
        ONCE.call_once(|| {
            let note =
                development_secret_note(&bound.url, secret, |name| std::env::var(name).is_ok());
            errln!("{note}");
        });
    }
}

/// The notice's text for tokens signed with the development secret taken from `secret`;
/// `is_set` says whether an environment variable is set. It names where the secret came
/// from and what to set, never a value (the development one is public, but a reader should
/// not learn to expect secrets on stderr).
fn development_secret_note(
    url: &str,
    secret: &SecretSource,
    is_set: impl Fn(&str) -> bool,
) -> String {
    let (why, fix) = crate::auth::Keys::development_secret_words(secret, is_set);
    format!(
        "notice: {why}: tokens for {url} are signed with it. Fine for a test server; for any \
         other, {fix}"
    )
}

/// `--addr`: `IP:PORT`, or `HOST:PORT` resolved (its first address; IPv4 first when the
/// host has both, as `localhost` usually does, because the reference server's URL and the
/// clients' default resolve the same way).
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err(format!(
            "expected HOST:PORT or IP:PORT (e.g. 127.0.0.1:8080 or localhost:8080), found {text:?}"
        ));
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {text:?}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// A run's duration: greater than zero (a run of no time measures nothing).
fn parse_run_duration(text: &str) -> Result<Duration, String> {
    parse_positive(text, "the run duration", "30s")
}

/// A duration greater than zero, for flags where no time means nothing (`what`, named in
/// the error with an `example`).
pub(crate) fn parse_positive(text: &str, what: &str, example: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!(
            "{what} must be greater than zero, found {text:?}; give one like {example:?}"
        ));
    }
    Ok(d)
}

/// An interval: a duration of at least 1 ms.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(1) {
        return Err(format!("the interval must be at least 1ms, found {text:?}"));
    }
    Ok(d)
}

/// Writes a file the user named, creating its directory first.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| files::WriteError::Io {
            path: parent.display().to_string(),
            source,
        })?;
    }
    Ok(files::write_atomic(path, bytes)?)
}

fn validate(files: &[PathBuf]) -> Result<u8, Error> {
    let mut code = exit::CLEAN;
    for path in files {
        // Read once: a pipe (`/dev/stdin`, `<(…)`) gives its text to the first read only.
        let file = path;
        let read = match scenario::ScenarioFile::read(path) {
            Ok(read) => read,
            Err(e) => {
                errln!("{}", as_validate_says(&e));
                code = exit::USAGE;
                continue;
            }
        };
        match read.battery() {
            Ok(Some(battery)) => {
                warn_needs(&battery.needs);
                match validate_battery(&battery) {
                    Ok(levels) => outln!(
                        "{}: ok (a battery: {}, {})",
                        file.display(),
                        crate::model::words::plural_as(
                            battery.families.len() as u64,
                            "family",
                            "families"
                        ),
                        plural(levels as u64, "level")
                    )?,
                    Err(e) => {
                        errln!("{e}");
                        code = exit::USAGE;
                    }
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                errln!("{}", as_validate_says(&e));
                code = exit::USAGE;
                continue;
            }
        }
        match read.checked() {
            Ok((s, needs)) => {
                warn_needs(&needs);
                outln!(
                    "{}: ok ({}, {})",
                    file.display(),
                    plural(s.groups.len() as u64, "group"),
                    plural(connections(&s), "connection")
                )?;
                // Said where the file writes it: the scenario keeps no positions itself. The
                // text parsed once for every place (`Locator`), and at most
                // `REMARKS_SHOWN` remarks said, the rest counted: a file of thousands of
                // groups gets a few screens, in time linear in its size.
                let places = scenario::Locator::new(read.text());
                let at = |group: usize, path: &[usize]| written_at(file, &places, group, path);
                let mut remarks = Remarks::default();
                if let Some(warning) = memory_warning(&s) {
                    remarks.say(format!("warning: {}: {warning}", file.display()));
                }
                for late in crate::plan::cannot_finish(&s) {
                    remarks.say(format!(
                        "warning: {}: {}",
                        at(late.index, &[]),
                        late_warning(&late, s.duration)
                    ));
                }
                for expiring in crate::plan::expiring(&s) {
                    remarks.say(format!(
                        "warning: {}: {}",
                        at(expiring.index, &[]),
                        expiry_warning(&expiring)
                    ));
                }
                for think in crate::plan::thinks_past_idle(&s) {
                    remarks.say(format!(
                        "warning: {}: {}",
                        at(think.group.0, &think.path),
                        idle_think_warning(&think)
                    ));
                }
                for (g, group) in s.groups.iter().enumerate() {
                    if let Some(note) = catalogue_note(group) {
                        remarks.say(format!("note: {}: {note}", at(g, &[])));
                    }
                }
                // Valid, and still blind to part of what it sends: said before a run.
                let groups = s
                    .groups
                    .iter()
                    .map(|g| (g.name.as_str(), g.steps.as_slice()));
                if let Some(note) = crate::oracle::verdict::unjudged_note_of(groups) {
                    let first = crate::oracle::verdict::first_unjudged(
                        s.groups.iter().map(|g| g.steps.as_slice()),
                    );
                    let place =
                        first.map_or_else(|| file.display().to_string(), |(g, p)| at(g, &p));
                    remarks.say(format!("note: {place}: {note}; {UNJUDGED_RUN}"));
                }
                remarks.say_the_rest(file);
            }
            Err(e) => {
                errln!("{}", as_validate_says(&e));
                code = exit::USAGE;
            }
        }
    }
    Ok(code)
}

/// A scenario error as `validate` prints it: its problems as they are, one
/// `FILE:LINE:COLUMN: MESSAGE` a line (the form editors and CI annotators read); anything
/// else (a file that cannot be read, a repro or JSON file) after `error: `, as every other
/// error is said.
fn as_validate_says(e: &scenario::ScenarioError) -> String {
    match e {
        scenario::ScenarioError::Invalid { .. } => e.to_string(),
        other => format!("error: {other}"),
    }
}

/// What `validate` adds to its note on sends no `expect` follows: what a run makes of them.
const UNJUDGED_RUN: &str = "a run in which nothing comes after such a send is \
                            inconclusive (an `expect_none` after it says the server owes none)";

/// Where the file `file` (its text's places in `places`) writes group `group`'s step at
/// `path` (the group itself when empty), as `file:line:column`; the file alone when it
/// cannot be told.
fn written_at(
    file: &std::path::Path,
    places: &scenario::Locator<'_>,
    group: usize,
    path: &[usize],
) -> String {
    match places.position(group, path) {
        Some((line, column)) => format!("{}:{line}:{column}", file.display()),
        None => file.display().to_string(),
    }
}

/// Why this machine cannot hold the whole plan's connections at once (each at least
/// [`crate::model::CONNECTION_BYTES_ESTIMATE`], twice with the built-in server in the same
/// process), or `None` when it can or its memory is unknown. A warning, not a refusal: a
/// plan split over machines (`--shard`) needs only a share on each, and `run` refuses
/// what its own share cannot fit.
fn memory_warning(s: &Scenario) -> Option<String> {
    use crate::run::capacity;
    let need = capacity::Need {
        connections: connections(s),
        embedded_server: s.target.is_none(),
        synchronized: 0,
    };
    let limit = capacity::memory_limit().filter(|limit| need.memory() > *limit)?;
    Some(format!(
        "the plan's {} take about {} while open (at least {} KiB each{}), and this \
         machine may use {}: a run of it here is refused; split it over machines \
         (`run --shard i/n`, one share each) or plan fewer connections",
        plural(need.connections, "connection"),
        capacity::shown_bytes(need.memory()),
        crate::model::CONNECTION_BYTES_ESTIMATE / 1024,
        if need.embedded_server {
            ", twice with the built-in server's ends"
        } else {
            ""
        },
        capacity::shown_bytes(limit)
    ))
}

/// The warnings and notes `validate` says of one valid file, one a line on stderr: the
/// first [`REMARKS_SHOWN`], then how many more there were.
#[derive(Default)]
struct Remarks {
    said: usize,
    left: usize,
}

/// Remarks `validate` prints of one file before it only counts them, as it lists
/// problems (a scenario's first 100, then the count of the rest).
const REMARKS_SHOWN: usize = 100;

impl Remarks {
    fn say(&mut self, line: String) {
        if self.said < REMARKS_SHOWN {
            self.said += 1;
            errln!("{line}");
        } else {
            self.left += 1;
        }
    }

    /// How many were left unsaid, when any were.
    fn say_the_rest(&self, file: &std::path::Path) {
        if self.left > 0 {
            let more = if self.left == 1 {
                "1 more warning or note like these".to_string()
            } else {
                format!("{} more warnings and notes like these", self.left)
            };
            errln!("note: {}: {more} not shown", file.display());
        }
    }
}

/// The note on a `forge = "catalogue"` group with fewer token slots than the bad-token
/// catalogue has entries: the catalogue is dealt round-robin over the slots, so the
/// entries past them are never tried. `None` otherwise.
fn catalogue_note(group: &crate::model::Group) -> Option<String> {
    use crate::model::{BadToken, Forge, TokenReuse};
    if group.forge != Some(Forge::Catalogue) {
        return None;
    }
    let users = u64::from(group.users);
    let slots = match group.token {
        TokenReuse::PerConnection => users * u64::from(group.connections_per_user),
        TokenReuse::PerUser | TokenReuse::CrossUser => users,
        TokenReuse::Shared { k } => {
            (users * u64::from(group.connections_per_user)).div_ceil(u64::from(k.max(1)))
        }
    };
    let entries = BadToken::all().count() as u64;
    (slots < entries).then(|| {
        format!(
            "group `{}` deals the bad-token catalogue's {entries} entries over {}: {} of them \
             are never tried (give it {entries} token slots, e.g. `users = {entries}`)",
            group.name,
            plural(slots, "token slot"),
            entries - slots
        )
    })
}

/// Why a group cannot finish within the run's `duration`, and what to change.
fn late_warning(late: &crate::plan::Late<'_>, duration: Duration) -> String {
    let group = late.group;
    if late.last_start >= duration {
        format!(
            "group `{group}` starts its last connection {:?} in, when the run's duration \
             ({duration:?}) is over: those connections never run and the run ends incomplete \
             (lengthen `duration` or shorten the arrival)",
            late.last_start
        )
    } else {
        let starts = if late.last_start.is_zero() {
            "right away".to_string()
        } else {
            format!("{:?} in", late.last_start)
        };
        format!(
            "group `{group}`'s script takes at least {:?} (its thinks, pauses, reconnect \
             delays and paced loops at their shortest) and its last connection starts \
             {starts}: it cannot finish within the run's duration ({duration:?}), so the run \
             ends incomplete (lengthen `duration` or shorten the script)",
            late.script
        )
    }
}

/// One `--source-addr` address, spaces around it ignored (`127.0.0.2, 127.0.1.2`).
fn source_addr_arg(text: &str) -> Result<std::net::IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("expected an IP address such as 127.0.0.2, found {text:?}"))
}

/// [`warn_expiring`] before a run, `run --times`, `run --workers` or `hunt` (as
/// `validate` says it): such a run would end inconclusive, a hunt's rounds unjudged.
fn warn_expiring_before_load(file: &scenario::ScenarioFile, s: &Scenario) {
    warn_expiring(file.path(), file.text(), s);
}

/// Warns of each group of `s` (loaded from `file`, whose text is `text`) whose tokens
/// expire before its script can end ([`crate::plan::expiring`]), at the group: a warning,
/// not an error, for a server that never checks `exp` runs it fine.
fn warn_expiring(file: &std::path::Path, text: &str, s: &Scenario) {
    let places = scenario::Locator::new(text);
    let mut remarks = Remarks::default();
    for expiring in crate::plan::expiring(s) {
        let place = written_at(file, &places, expiring.index, &[]);
        remarks.say(format!("warning: {place}: {}", expiry_warning(&expiring)));
    }
    remarks.say_the_rest(file);
}

/// Why a long `think` ends its connections under the declared idle timeout, and what to
/// change.
fn idle_think_warning(t: &crate::plan::IdleThink<'_>) -> String {
    let step = t
        .path
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(".");
    format!(
        "group `{}` step {step} keeps the connection silent for at least {:?}, no shorter \
         than the declared `[oracles] idle_timeout` of {:?}: a server that closes idle \
         connections by that policy closes them there, the steps after it never run and \
         the run reads inconclusive (keep the connection busy during it, a `ping` step or \
         the protocol's heartbeat as a `send`, or make it shorter)",
        t.group.1, t.least, t.idle_timeout
    )
}

/// Why a group's tokens expire before its script can end, and what to change.
fn expiry_warning(e: &crate::plan::Expiring<'_>) -> String {
    let (group, ttl, lives) = (e.group, e.ttl, e.lives);
    let raise = format!(
        "raise `[auth] ttl` past {:?}",
        e.ends.saturating_add(crate::plan::LEAST_LIFETIME_LOSS)
    );
    if e.last_start >= lives {
        return format!(
            "group `{group}` starts its last connection {:?} in, when its tokens (minted as \
             the run starts, `ttl` {ttl:?}) have expired: a server that checks `exp` refuses \
             them, and the run proves nothing about their scripts ({raise}, or shorten the \
             arrival)",
            e.last_start
        );
    }
    let starts = if e.last_start.is_zero() {
        "right away".to_string()
    } else {
        format!("{:?} in", e.last_start)
    };
    format!(
        "group `{group}`'s script takes at least {:?} and its last connection starts \
         {starts}, but its tokens may expire {lives:?} after the run starts (`[auth] ttl` \
         {ttl:?}, less the part of a second `iat` rounds off): a \
         server that enforces `exp` closes its connections or refuses their reconnects \
         before the script ends, and the run is inconclusive ({raise}, or shorten the \
         script)",
        e.script
    )
}

/// What this environment lacks for a run (a secret's variable unset): a warning in
/// `validate`, not an error, since a file is often validated where its secrets are
/// deliberately absent (CI, a laptop). `run`, `hunt` and `learn` refuse it, at the same
/// place.
fn warn_needs(needs: &[scenario::Problem]) {
    for p in needs {
        errln!(
            "warning: {}:{}:{}: {} (a run will refuse it)",
            p.file,
            p.line,
            p.column,
            p.message
        );
    }
}

/// Expands every family of `battery`; the number of levels.
fn validate_battery(battery: &scenario::Battery) -> Result<usize, scenario::ScenarioError> {
    let mut levels = 0;
    for family in &battery.families {
        levels += battery.levels(*family)?.len();
    }
    Ok(levels)
}

fn connections(s: &Scenario) -> u64 {
    s.groups
        .iter()
        .map(|g| u64::from(g.users) * u64::from(g.connections_per_user))
        .sum()
}

async fn serve(args: ServeArgs, cancel: CancellationToken) -> Result<u8, Error> {
    if args.list_bugs {
        for bug in reference::Bug::ALL {
            outln!("{:<24}{}", bug.name(), bug.describe())?;
        }
        return Ok(exit::CLEAN);
    }
    if args.secret_flag.is_some() {
        // The value is never echoed: it is a secret.
        return Err(Error::Usage(
            "serve takes no --secret: a secret on the command line shows in `ps` and the \
             shell's history; set STAMPEDE_JWT_SECRET instead (or verify RS256 / ES256 \
             tokens with --public-key FILE)"
                .into(),
        ));
    }
    let secret = match std::env::var("STAMPEDE_JWT_SECRET") {
        Ok(secret) => secret,
        Err(std::env::VarError::NotPresent) => "stampede-dev-secret".to_string(),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(Error::Usage(
                "STAMPEDE_JWT_SECRET is not valid UTF-8".into(),
            ))
        }
    };
    if secret == "stampede-dev-secret" {
        errln!("warning: STAMPEDE_JWT_SECRET is not set; using the development secret");
    }
    let tls = match (args.tls, args.cert, args.key) {
        (_, Some(cert_path), Some(key_path)) => Some(reference::TlsSetup::Pem {
            cert_path,
            key_path,
        }),
        (true, _, _) => Some(reference::TlsSetup::SelfSigned),
        _ => None,
    };
    let public_key_pem = match &args.public_key {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            Error::Usage(format!("cannot read public key {}: {e}", path.display()))
        })?),
        None => None,
    };
    let config = reference::TargetConfig {
        secret: secret.into_bytes(),
        public_key_pem,
        audience: args.aud,
        issuer: args.iss,
        lenient: args.lenient,
        event_delay: args.event_delay,
        response_delay: args.delay,
        bug: args.bug,
        bug_window: args.bug_window,
        stall: args.stall.map(|d| (args.stall_after, d)),
        reuse_port: args.reuse_port,
        tls,
        ..Default::default()
    };
    // Every client connection is a file descriptor: take the hard limit.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "cannot raise the open-file limit");
    }
    let handle = match reference::spawn(config, args.addr, cancel).await {
        // A key that is not an RSA or P-256 public key is the user's input, not our failure.
        Err(e @ reference::TargetError::Key(_)) => return Err(Error::Usage(e.to_string())),
        other => other?,
    };
    if let (Some(path), Some(pem)) = (&args.write_ca, handle.ca_pem()) {
        files::write_atomic(path, pem.as_bytes())?;
        errln!("wrote the server certificate to {}", path.display());
    }
    let policy = if args.lenient {
        "lenient bad-token policy; "
    } else {
        ""
    };
    errln!(
        "stampede reference server listening on {} ({policy}Ctrl-C to stop)",
        handle.url()
    );
    handle.wait().await?;
    Ok(exit::CLEAN)
}

#[cfg(test)]
mod tests;
