//! The `stampede` binary: logging, runtime, Ctrl-C and SIGTERM, exit codes. Everything else is the library.

use stampede::cli::{self, Cli};
use stampede::cli::{error, exit};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// mimalloc, through its plain entry points (see [`stampede::allocator`]).
#[global_allocator]
static ALLOCATOR: stampede::allocator::Allocator = stampede::allocator::Allocator;

fn main() -> ExitCode {
    stampede::allocator::opt_out_of_huge_pages();
    let cli = Cli::parse_args();
    let target_from_env = cli.target_from_env();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a CI log or a file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // This thread drives the runtime (`block_on`); registered before any worker starts,
    // so a run that binds at once already knows its threads can be raised.
    stampede::priority::register_current_thread();
    let from_env = std::env::var("STAMPEDE_THREADS").ok();
    let threads = cli.thread_count().or_else(|| {
        stampede::cli::threads_in_env(from_env.as_deref()).unwrap_or_else(|e| {
            say(&format!("warning: {e}; using one thread per core\n"));
            None
        })
    });
    let mut builder = match threads {
        // One thread: this one drives every connection (a current-thread runtime), with no
        // worker to wake and no hand-off between threads, as a single-threaded client does.
        Some(n) if n.get() == 1 => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.on_thread_park(stampede::allocator::collect_when_idle);
            builder
        }
    };
    if let Some(threads) = threads {
        if threads.get() > 1 {
            builder.worker_threads(threads.get());
        }
        // Children (`--workers`) read the same count from the environment.
        std::env::set_var("STAMPEDE_THREADS", threads.to_string());
    }
    let runtime = match builder
        .enable_all()
        // The threads a collide or rendezvous release may raise (`stampede::priority`).
        .on_thread_start(stampede::priority::register_current_thread)
        .on_thread_stop(stampede::priority::unregister_current_thread)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("error: cannot start the async runtime: {e}\n"));
            return ExitCode::from(exit::INTERNAL);
        }
    };
    let code = runtime.block_on(async {
        let cancel = CancellationToken::new();
        tokio::spawn(stop_on_ctrl_c(
            StopSignals::install(),
            cancel.clone(),
            cli.command.interrupt_notice(),
            cli.command.stops_at_once(),
        ));
        if cli.command.stops_with_stdin() {
            stop_when_stdin_ends(cancel.clone());
        }
        match cli::execute(cli, cancel.clone()).await {
            Ok(code) => code,
            // The reader of stdout went away (`| head`): it has what it wanted, unless the
            // command was cut short first, which the exit still says.
            Err(e) if e.is_broken_pipe() && cancel.is_cancelled() => exit::INTERRUPTED,
            Err(e) if e.is_broken_pipe() => exit::CLEAN,
            Err(e) => {
                say(&error::render(&e));
                if target_from_env && error::is_target_url(&e) {
                    say(error::TARGET_FROM_ENV);
                }
                e.exit_code()
            }
        }
    });
    ExitCode::from(code)
}

/// First Ctrl-C or SIGTERM: stop cleanly, saying what the command will keep (`notice`,
/// from [`cli::Command::interrupt_notice`]; nothing under `-q`), or, for a command that
/// keeps nothing (`at_once`: [`cli::Command::stops_at_once`]), leave at once. Second:
/// leave at once, killing the process group of any command still running.
async fn stop_on_ctrl_c(
    mut signals: StopSignals,
    cancel: CancellationToken,
    notice: Option<std::borrow::Cow<'static, str>>,
    at_once: bool,
) {
    let Some(name) = signals.next().await else {
        return;
    };
    if at_once {
        std::process::exit(i32::from(exit::INTERRUPTED));
    }
    // The second request may come as either signal; name the one that came.
    let again = if name == "SIGTERM" {
        "SIGTERM"
    } else {
        "Ctrl-C"
    };
    // Stopped first, then said: stderr may be a pipe whose reader is gone (`2>&1 | head`),
    // and `eprintln!` panics there, which would leave the command running on.
    cancel.cancel();
    if let Some(notice) = notice {
        say(&format!(
            "\ninterrupted ({name}): {notice} ({again} again to abort)\n"
        ));
    }
    let first = std::time::Instant::now();
    while signals.next().await.is_some() {
        // One Ctrl-C may arrive twice: GNU `timeout -s INT` and some shells signal the
        // process and then its group. A second within this window is the same one.
        if first.elapsed() >= SAME_CTRL_C {
            // `exit` drops nothing: a `--reset` or token command still running would
            // outlive us, with all it started, unless its group is killed here.
            stampede::process_group::kill_running();
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
    }
}

/// A `--workers` parent's worker (`--stop-with-stdin`): its stdin is a pipe the parent
/// holds open for the run, so its end means the parent is gone (killed with SIGKILL, which
/// it cannot pass on). The worker then stops as on SIGTERM: the same token cancelled, the
/// load stopped and what it ran written. Should it still be running [`ORPHAN_WIND_DOWN`]
/// later, nobody is left to ask again, and it leaves as a second Ctrl-C does.
///
/// A thread of its own, not the runtime's: tokio reads stdin with a blocking read it cannot
/// cancel, and a runtime shutting down waits for it, so a worker whose parent still lives
/// (the usual end) would never exit. This thread is not waited for.
fn stop_when_stdin_ends(cancel: CancellationToken) {
    let watch = move || {
        use std::io::Read;
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        loop {
            match stdin.read(&mut buf) {
                // The parent writes nothing: only the end is news.
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    say(&format!(
                        "warning: cannot watch stdin for the parent's end ({e}): this worker \
                         will not stop by itself should the parent be killed\n"
                    ));
                    return;
                }
            }
        }
        cancel.cancel();
        // The sleep is the behaviour: the deadline a worker whose parent is gone gets to
        // write its results, with no one left to send the second signal.
        std::thread::sleep(ORPHAN_WIND_DOWN);
        stampede::process_group::kill_running();
        std::process::exit(i32::from(exit::INTERRUPTED));
    };
    if let Err(e) = std::thread::Builder::new()
        .name("parent-watch".into())
        .spawn(watch)
    {
        say(&format!(
            "warning: cannot watch stdin for the parent's end ({e}): this worker will not \
             stop by itself should the parent be killed\n"
        ));
    }
}

/// How long a worker whose parent is gone gets to stop and write its results before it
/// leaves regardless: more than the 10 s a living parent gives its workers after Ctrl-C
/// before it kills them.
const ORPHAN_WIND_DOWN: std::time::Duration = std::time::Duration::from_secs(30);

/// Writes `text` to stderr, as `eprint!` would, but never panics: a stderr nobody reads
/// any more (a closed pipe) loses the text, not the exit code.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// How soon after Ctrl-C another SIGINT counts as the same one, not a request to abort.
const SAME_CTRL_C: std::time::Duration = std::time::Duration::from_millis(300);

/// The signals that ask a command to stop: SIGINT (Ctrl-C) and, on Unix, SIGTERM, which
/// `kill`, `docker stop`, Kubernetes and `timeout` send. Left to its default, SIGTERM
/// ended the process at once and lost every result; it is the same request as Ctrl-C.
struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Installs the handlers now, before the command starts, so that a signal sent as soon
    /// as it runs is already a clean stop. One that cannot be installed keeps its default.
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next stop request, named as the notice says it (`Ctrl-C`, `SIGTERM`); `None`
    /// when no more can come.
    #[cfg(unix)]
    async fn next(&mut self) -> Option<&'static str> {
        /// One kind of signal; pending for ever when its handler is missing or closed.
        async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
            match signal {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        }
        if self.interrupt.is_none() && self.terminate.is_none() {
            return None;
        }
        tokio::select! {
            got = recv(&mut self.interrupt) => got.map(|()| "Ctrl-C"),
            got = recv(&mut self.terminate) => got.map(|()| "SIGTERM"),
        }
    }

    /// The next Ctrl-C; `None` when none can be received.
    #[cfg(not(unix))]
    async fn next(&mut self) -> Option<&'static str> {
        tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
    }
}
