//! Command-line interface: clap definitions and the dispatch from a command to the library.
//! Parsing only turns flags into library options; all behaviour lives in the modules.

use crate::error::{exit, Error};
use crate::run::{self, RunOptions};
use crate::scenario::{self, parse_duration};
use crate::swarm::TlsOptions;
use crate::{plan, report, target};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// WebSocket load generator and race-condition fuzzer.
#[derive(Debug, Parser)]
#[command(name = "stampede", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write results (against the built-in server when no target is given).
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
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Target URL (ws:// or wss://); overrides the scenario's.
    #[arg(long, env = "STAMPEDE_TARGET")]
    pub target: Option<String>,
    /// Seed; overrides the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Hard stop, e.g. 30s; overrides the scenario's.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Base directory for results.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Write no result files.
    #[arg(long)]
    pub no_results: bool,
    /// Extra CA certificates (PEM) to trust for wss://.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate (test servers only).
    #[arg(long)]
    pub insecure: bool,
    /// Print the summary as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
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
    /// HS256 secret; read from the environment, never a flag.
    #[arg(
        long,
        env = "STAMPEDE_JWT_SECRET",
        hide_env_values = true,
        default_value = "stampede-dev-secret"
    )]
    pub secret: String,
    /// Pause between the events of one run.
    #[arg(long, default_value = "2ms", value_parser = parse_duration)]
    pub event_delay: Duration,
    /// Extra delay before each run's first event (simulates a slower release).
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    pub delay: Duration,
}

/// Runs one command; returns the process exit code.
pub async fn execute(cli: Cli, cancel: CancellationToken) -> Result<u8, Error> {
    match cli.command {
        Command::Run(args) => run_command(args, cancel).await,
        Command::Validate { files } => Ok(validate(&files)),
        Command::Plan { scenario, seed } => {
            let s = scenario::load_file(&scenario)?;
            let plan = plan::build(&s, seed.unwrap_or(s.seed));
            let json = plan.to_json().map_err(|e| Error::Usage(e.to_string()))?;
            println!("{json}");
            Ok(exit::CLEAN)
        }
        Command::Serve(args) => serve(args, cancel).await,
    }
}

async fn run_command(args: RunArgs, cancel: CancellationToken) -> Result<u8, Error> {
    let scenario = scenario::load_file(&args.scenario)?;
    let opts = RunOptions {
        target: args.target,
        seed: args.seed,
        duration: args.duration,
        out: (!args.no_results).then_some(args.out),
        tls: TlsOptions {
            ca_file: args.ca_file,
            insecure: args.insecure,
        },
    };
    let outcome = run::run(&scenario, &opts, cancel).await?;
    let summary = &outcome.results.summary;
    if args.json {
        let json =
            serde_json::to_string_pretty(summary).map_err(|e| Error::Usage(e.to_string()))?;
        println!("{json}");
    } else {
        let mut out = std::io::stdout().lock();
        report::render(summary, &mut out)?;
        if let Some(dir) = &outcome.dir {
            use std::io::Write;
            writeln!(out, "results      {}", dir.display())?;
        }
    }
    Ok(outcome.exit_code())
}

fn validate(files: &[PathBuf]) -> u8 {
    let mut code = exit::CLEAN;
    for file in files {
        match scenario::load_file(file) {
            Ok(s) => println!(
                "{}: ok ({} groups, {} connections)",
                file.display(),
                s.groups.len(),
                connections(&s)
            ),
            Err(e) => {
                eprintln!("{e}");
                code = exit::USAGE;
            }
        }
    }
    code
}

fn connections(s: &scenario::Scenario) -> u64 {
    s.groups
        .iter()
        .map(|g| u64::from(g.users) * u64::from(g.connections_per_user))
        .sum()
}

async fn serve(args: ServeArgs, cancel: CancellationToken) -> Result<u8, Error> {
    if args.secret == "stampede-dev-secret" {
        eprintln!("warning: STAMPEDE_JWT_SECRET is not set; using the development secret");
    }
    let tls = match (args.tls, args.cert, args.key) {
        (_, Some(cert_path), Some(key_path)) => Some(target::TlsSetup::Pem {
            cert_path,
            key_path,
        }),
        (true, _, _) => Some(target::TlsSetup::SelfSigned),
        _ => None,
    };
    let config = target::TargetConfig {
        secret: args.secret.into_bytes(),
        event_delay: args.event_delay,
        response_delay: args.delay,
        tls,
        ..Default::default()
    };
    let handle = target::spawn(config, args.addr, cancel).await?;
    if let (Some(path), Some(pem)) = (&args.write_ca, handle.ca_pem()) {
        report::write_atomic(path, pem.as_bytes())?;
        eprintln!("wrote the server certificate to {}", path.display());
    }
    eprintln!(
        "stampede reference server listening on {} (Ctrl-C to stop)",
        handle.url()
    );
    handle.wait().await?;
    Ok(exit::CLEAN)
}
