//! Live progress on stderr while a run goes on: a bar redrawn in place on a terminal, one
//! plain line every few seconds otherwise (a CI log). It only reads [`Live`]'s atomics, so
//! it costs the connections nothing; the summary still goes to stdout at the end. A log
//! gets one last line with the run's final counts, so it never ends on a stale tick.

use crate::metrics::Live;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often the bar is updated on a terminal.
const BAR_EVERY: Duration = Duration::from_millis(500);
/// How often a plain line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// What each plain line starts with (a `--workers` parent finds its workers' by it).
pub const PLAIN_PREFIX: &str = "progress  ";
const BAR_TEMPLATE: &str = "{spinner:.cyan} [{bar:24.cyan/blue}] {msg}";

/// A running progress display; [`finish`](Progress::finish) removes it.
pub struct Progress {
    /// Sends what the run's result says (when it has one) and stops the display.
    stop: oneshot::Sender<Option<Final>>,
    task: JoinHandle<()>,
}

/// What a finished run's result says that the live counters cannot, for the last line.
/// Its length is not among them: the display's own clock stops where the run's length is
/// measured ([`Live::load_ended`]), so every line reads one clock and never goes back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Final {
    /// Every violation, those the oracles found after the run included.
    pub violations: u64,
    /// Whether the verdict judged the target, so that its violations are findings; a run
    /// that could not (every valid token refused reads as liveness violations) has them
    /// said as no findings, as the summary says them.
    pub findings: bool,
}

impl Progress {
    /// Starts the display for a run of at most `total` with `planned` connections, which
    /// does what `preparing` says before its load starts.
    pub fn start(
        live: Arc<Live>,
        total: Duration,
        planned: usize,
        preparing: Preparing,
    ) -> Progress {
        let (stop, stopped) = oneshot::channel();
        let meter = Meter {
            preparing,
            ..Meter::new(live, total, planned)
        };
        let task = if std::io::stderr().is_terminal() {
            tokio::spawn(bar(meter, stopped))
        } else {
            let lines = plain(meter, stopped, PLAIN_EVERY, std::io::stderr());
            tokio::spawn(async move {
                lines.await;
            })
        };
        Progress { stop, task }
    }

    /// Stops the display and clears the bar, so the summary prints on a clean line; a log
    /// gets a last line with the final counts, `result`'s where the run has one.
    pub async fn finish(self, result: Option<Final>) {
        // The display may have ended already (a broken stderr): nothing left to tell it.
        let _ = self.stop.send(result);
        let _ = self.task.await;
    }
}

/// What a run does before its load starts, for the line shown meanwhile: a run that
/// calibrates nothing (`--no-learn`) does not say it calibrates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Preparing {
    /// It calibrates the target first (learned invariants).
    pub calibrates: bool,
    /// It reads `[auth] tokens` from their source (a file, or a command it runs).
    pub fetches_tokens: bool,
}

impl Preparing {
    fn shown(self) -> &'static str {
        match (self.calibrates, self.fetches_tokens) {
            (true, true) => "preparing (calibrating the target, then fetching tokens)",
            (true, false) => "preparing (calibrating the target)",
            (false, true) => "preparing (fetching tokens)",
            (false, false) => "preparing to connect",
        }
    }
}

/// What one progress line shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// What the run does before its load starts.
    pub preparing: Preparing,
    /// Whether the load has started; before it the target is being calibrated and tokens
    /// fetched, and `elapsed` is zero.
    pub started: bool,
    /// Since the load started, up to when it ended (the run's length from then on).
    pub elapsed: Duration,
    pub total: Duration,
    pub live: i64,
    /// Connections that dialled and ended, those the run's end stopped included.
    pub finished: u64,
    /// Of `finished`, those the run's end stopped mid-script ([`Live::stopped`]).
    pub stopped: u64,
    pub planned: usize,
    /// Messages received per second since the previous snapshot.
    pub received_per_sec: f64,
    pub violations: u64,
    /// Connection attempts the server never answered ([`Live::unanswered`]).
    pub unanswered: u64,
    /// `false` when the verdict says the violations are no findings (the last line only).
    pub findings: bool,
    /// The turn p99 so far; `None` before the first turn.
    pub turn_p99: Option<Duration>,
}

/// Reads [`Live`] and turns its counts into rates between two reads.
struct Meter {
    live: Arc<Live>,
    preparing: Preparing,
    total: Duration,
    planned: usize,
    last: (Instant, u64),
}

impl Meter {
    fn new(live: Arc<Live>, total: Duration, planned: usize) -> Meter {
        let now = Instant::now();
        Meter {
            last: (now, live.received.load(Relaxed)),
            live,
            preparing: Preparing::default(),
            total,
            planned,
        }
    }

    fn read(&mut self) -> Snapshot {
        let now = Instant::now();
        let received = self.live.received.load(Relaxed);
        let (then, before) = std::mem::replace(&mut self.last, (now, received));
        let p99 = self.live.turn_p99_us.load(Relaxed);
        let started = self.live.load_started.get().copied().map(Instant::from_std);
        // The clock stops when the load ends: what follows (the oracles' checks, probes,
        // writing the results) is not the run's time, and the result's length is measured
        // to that same instant. `now` is taken before the end is read, so an end set
        // between the two is later than `now` and the `min` keeps the reading from going
        // back on the next read.
        let until = self
            .live
            .load_ended
            .get()
            .copied()
            .map_or(now, |end| Instant::from_std(end).min(now));
        // Received over the stretch the load ran since the last read: a read after its end
        // would otherwise divide its last messages by the checks' and writing's time too.
        let secs = until.saturating_duration_since(then).as_secs_f64();
        Snapshot {
            preparing: self.preparing,
            started: started.is_some(),
            elapsed: started.map_or(Duration::ZERO, |s| until.saturating_duration_since(s)),
            total: self.total,
            live: self.live.live.load(Relaxed),
            finished: self.live.finished.load(Relaxed),
            stopped: self.live.stopped.load(Relaxed),
            planned: self.planned,
            received_per_sec: if secs > 0.0 {
                received.saturating_sub(before) as f64 / secs
            } else {
                0.0
            },
            violations: self.live.violations.load(Relaxed),
            unanswered: self.live.unanswered.load(Relaxed),
            findings: true,
            turn_p99: (p99 > 0).then(|| Duration::from_micros(p99)),
        }
    }
}

/// The figures of a snapshot, as both displays print them.
pub fn line(s: &Snapshot) -> String {
    let p99 = s
        .turn_p99
        .map_or_else(|| "-".to_string(), |d| format!("{:.1}ms", ms(d)));
    if !s.started {
        // Calibration and logins: nothing of the load to count yet.
        return format!(
            "{} · {:.0}s planned",
            s.preparing.shown(),
            s.total.as_secs_f64()
        );
    }
    // Past the planned duration the run is closing what is still open (bounded): said
    // so, not "5s of 3s".
    let over = s.elapsed.saturating_sub(s.total);
    let clock = if over >= Duration::from_secs(1) {
        format!(
            "{:.0}s of {:.0}s, +{:.0}s ending the run",
            s.total.as_secs_f64(),
            s.total.as_secs_f64(),
            over.as_secs_f64()
        )
    } else {
        format!(
            "{:.0}s of {:.0}s",
            s.elapsed.min(s.total).as_secs_f64(),
            s.total.as_secs_f64()
        )
    };
    let not_findings = if s.findings || s.violations == 0 {
        ""
    } else {
        " (not findings: see the verdict)"
    };
    // Said only when some: a target that answers nothing is then plain from the start.
    let unanswered = match s.unanswered {
        0 => String::new(),
        n => format!(
            " · {} unanswered",
            crate::model::words::plural(n, "attempt")
        ),
    };
    let stopped = match s.stopped {
        0 => String::new(),
        n => format!(" · {n} stopped by the run's end"),
    };
    format!(
        "{clock} · {} live · {}/{} done{stopped}{unanswered} · {:.0} msg/s received · \
         {} violation{}{not_findings} · turn p99 {p99}",
        s.live,
        s.finished.saturating_sub(s.stopped),
        s.planned,
        s.received_per_sec,
        s.violations,
        if s.violations == 1 { "" } else { "s" },
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A bar of elapsed against the planned duration, with the figures beside it.
async fn bar(mut meter: Meter, mut stop: oneshot::Receiver<Option<Final>>) {
    let total_ms = meter.total.as_millis() as u64;
    let pb = ProgressBar::with_draw_target(Some(total_ms.max(1)), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(BAR_TEMPLATE) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.enable_steady_tick(Duration::from_millis(120));
    let mut tick = tokio::time::interval(BAR_EVERY);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let s = meter.read();
                pb.set_position((s.elapsed.as_millis() as u64).min(total_ms));
                pb.set_message(line(&s));
            }
        }
    }
    pb.finish_and_clear();
}

/// One line every `every`, for logs that a bar would fill with escape codes, and a last
/// one when stopped: the last tick can come just before the final connections finish, and
/// a log must not end on `198/200 done` for a run that did all 200. A run shorter than
/// `every` prints no line at all, as before.
async fn plain<W: Write>(
    mut meter: Meter,
    mut stop: oneshot::Receiver<Option<Final>>,
    every: Duration,
    mut out: W,
) -> W {
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    // The last line printed, to tell whether the last one says anything new.
    let mut printed: Option<Snapshot> = None;
    loop {
        tokio::select! {
            ended = &mut stop => {
                if let Some(before) = printed {
                    // The meter's clock, stopped where the run's length was measured: the
                    // same reading as the result's, and never less than a tick's before.
                    let mut last = meter.read();
                    // A dropped sender (no result) leaves the live figures.
                    if let Ok(Some(result)) = ended {
                        last.violations = result.violations;
                        last.findings = result.findings;
                    }
                    // Nothing new since the last tick (the load ended before it): no
                    // second line with the same figures and a rate of nothing.
                    let same = Snapshot {
                        received_per_sec: before.received_per_sec,
                        ..last
                    };
                    if line(&same) != line(&before) {
                        let _ = writeln!(out, "{PLAIN_PREFIX}{}", line(&last));
                    }
                }
                break;
            }
            _ = tick.tick() => {
                let now = meter.read();
                // Preparing for longer than a tick (calibration takes up to 10 s): said
                // once, not again with nothing new.
                if printed.is_some_and(|p| line(&p) == line(&now)) {
                    continue;
                }
                // A broken stderr must not end the run; the summary still goes to stdout.
                let _ = writeln!(out, "{PLAIN_PREFIX}{}", line(&now));
                printed = Some(now);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            preparing: Preparing::default(),
            started: true,
            elapsed: Duration::from_millis(12_400),
            total: Duration::from_secs(60),
            live: 180,
            finished: 20,
            stopped: 0,
            planned: 260,
            received_per_sec: 1523.6,
            violations: 1,
            unanswered: 0,
            findings: true,
            turn_p99: Some(Duration::from_micros(17_250)),
        }
    }

    /// A target that answers no attempt (a closed port under a long ramp) is plain while
    /// the run goes on, not only in the verdict at its end.
    #[test]
    fn attempts_the_server_never_answered_are_counted_as_they_come() {
        let refused = Snapshot {
            unanswered: 12,
            violations: 0,
            ..snapshot()
        };
        assert!(
            line(&refused).contains("20/260 done · 12 attempts unanswered · 1524 msg/s"),
            "{}",
            line(&refused)
        );
        assert!(!line(&snapshot()).contains("unanswered"));
    }

    #[test]
    fn connections_the_run_s_end_stopped_are_not_shown_as_done() {
        let cut = Snapshot {
            live: 0,
            finished: 200,
            stopped: 37,
            planned: 200,
            ..snapshot()
        };
        assert!(
            line(&cut).contains("0 live · 163/200 done · 37 stopped by the run's end · "),
            "{}",
            line(&cut)
        );
        assert!(!line(&snapshot()).contains("stopped"));
    }

    #[test]
    fn past_the_duration_the_line_says_the_run_is_ending() {
        let over = Snapshot {
            elapsed: Duration::from_millis(65_400),
            ..snapshot()
        };
        assert!(
            line(&over).starts_with("60s of 60s, +5s ending the run · 180 live"),
            "{}",
            line(&over)
        );
        let just = Snapshot {
            elapsed: Duration::from_millis(60_300),
            ..snapshot()
        };
        assert!(line(&just).starts_with("60s of 60s · "), "{}", line(&just));
    }

    #[test]
    fn a_line_holds_every_figure() {
        assert_eq!(
            line(&snapshot()),
            "12s of 60s · 180 live · 20/260 done · 1524 msg/s received · 1 violation · turn p99 17.2ms"
        );
        let none = Snapshot {
            turn_p99: None,
            violations: 0,
            ..snapshot()
        };
        assert!(
            line(&none).ends_with("0 violations · turn p99 -"),
            "{}",
            line(&none)
        );
        let preparing = Snapshot {
            started: false,
            ..snapshot()
        };
        assert!(
            line(&preparing).starts_with("preparing"),
            "{}",
            line(&preparing)
        );
    }

    #[test]
    fn the_meter_reads_live_and_rates_since_its_last_read() {
        let live = Arc::new(Live::default());
        let mut meter = Meter::new(live.clone(), Duration::from_secs(30), 10);
        live.live.store(4, Relaxed);
        live.finished.store(6, Relaxed);
        live.violations.store(2, Relaxed);
        live.received.store(500, Relaxed);
        live.turn_p99_us.store(12_000, Relaxed);
        let s = meter.read();
        assert!(!s.started, "no swarm has started the load");
        assert_eq!(s.elapsed, Duration::ZERO);
        assert_eq!((s.live, s.finished, s.planned, s.violations), (4, 6, 10, 2));
        assert_eq!(s.turn_p99, Some(Duration::from_millis(12)));
        assert!(s.received_per_sec > 0.0);
        // Nothing received since: the rate drops to zero.
        assert_eq!(meter.read().received_per_sec, 0.0);
    }

    /// The fresh user's case: the nightly scenario calibrates for up to 10 s, and a CI log
    /// said `preparing …` twice; with nothing new, once.
    #[tokio::test(start_paused = true)]
    async fn a_long_preparation_is_said_once_in_a_log() {
        let live = Arc::new(Live::default());
        let preparing = Preparing {
            calibrates: true,
            fetches_tokens: false,
        };
        let meter = Meter {
            preparing,
            ..Meter::new(live, Duration::from_secs(60), 3)
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(plain(meter, stopped, PLAIN_EVERY, Vec::new()));
        // Paused clock: past two ticks, the load not started.
        tokio::time::sleep(Duration::from_secs(11)).await;
        stop.send(None).unwrap();
        let out = String::from_utf8(task.await.unwrap()).unwrap();
        assert_eq!(
            out,
            "progress  preparing (calibrating the target) · 60s planned\n"
        );
    }

    /// The line before the load says what the run does then: no calibration under
    /// `--no-learn` (nor after a `--workers` parent's), tokens fetched only from a source.
    #[test]
    fn the_preparing_line_says_only_what_the_run_does() {
        let said = |calibrates, fetches_tokens| {
            let s = Snapshot {
                started: false,
                preparing: Preparing {
                    calibrates,
                    fetches_tokens,
                },
                ..snapshot()
            };
            line(&s)
        };
        assert_eq!(said(false, false), "preparing to connect · 60s planned");
        assert_eq!(
            said(false, true),
            "preparing (fetching tokens) · 60s planned"
        );
        assert_eq!(
            said(true, true),
            "preparing (calibrating the target, then fetching tokens) · 60s planned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_terminal_one_line_every_few_seconds_until_stopped() {
        let live = Arc::new(Live::default());
        live.live.store(3, Relaxed);
        // The load starts now (the swarm sets it at its t0), after whatever came before.
        live.load_started.set(Instant::now().into_std()).unwrap();
        let meter = Meter::new(live, Duration::from_secs(60), 3);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(plain(meter, stopped, PLAIN_EVERY, Vec::new()));
        // The clock is paused: this sleep only advances it, past two ticks of five seconds.
        tokio::time::sleep(Duration::from_secs(11)).await;
        stop.send(None).unwrap();
        let out = String::from_utf8(task.await.unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "two ticks and the last line: {out}");
        assert!(
            lines[0].starts_with("progress  5s of 60s · 3 live · 0/3 done"),
            "{out}"
        );
        assert!(lines[1].starts_with("progress  10s of 60s"), "{out}");
        assert!(lines[2].starts_with("progress  11s of 60s"), "{out}");
    }

    /// The tester's case: the last tick saw 198 of 200 done, the run then finished them
    /// all and its result counted violations the live count never saw.
    #[tokio::test(start_paused = true)]
    async fn the_last_line_holds_the_final_counts_not_the_last_ticks() {
        let live = Arc::new(Live::default());
        live.load_started.set(Instant::now().into_std()).unwrap();
        live.live.store(2, Relaxed);
        live.finished.store(198, Relaxed);
        let meter = Meter::new(live.clone(), Duration::from_secs(60), 200);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(plain(meter, stopped, PLAIN_EVERY, Vec::new()));
        // Paused clock: only advances it past the first tick.
        tokio::time::sleep(Duration::from_secs(6)).await;
        live.live.store(0, Relaxed);
        live.finished.store(200, Relaxed);
        let result = Final {
            violations: 200,
            findings: true,
        };
        stop.send(Some(result)).unwrap();
        let out = String::from_utf8(task.await.unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].contains("2 live · 198/200 done"), "{out}");
        assert!(
            lines[1].starts_with("progress  6s of 60s · 0 live · 200/200 done")
                && lines[1].contains("200 violations · turn p99"),
            "{out}"
        );
    }

    /// The fresh user's case: the load ended 6.4 s in, a tick then came during the checks
    /// and writing that follow (it read 7 s), and the last line said the run's 6 s. The
    /// clock stops where the run's length is measured: every line reads it, none goes back.
    #[tokio::test(start_paused = true)]
    async fn the_clock_stops_when_the_load_ends_and_never_goes_back() {
        let live = Arc::new(Live::default());
        live.load_started.set(Instant::now().into_std()).unwrap();
        live.finished.store(150, Relaxed);
        let meter = Meter::new(live.clone(), Duration::from_secs(60), 200);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(plain(meter, stopped, PLAIN_EVERY, Vec::new()));
        // Paused clock: each sleep only advances it. The load ends at 6.4 s, as the swarm
        // marks it when it measures the run's length.
        tokio::time::sleep(Duration::from_millis(6_400)).await;
        live.finished.store(200, Relaxed);
        live.load_ended.set(Instant::now().into_std()).unwrap();
        // A busy machine: judging and writing take past the next tick (10 s).
        tokio::time::sleep(Duration::from_secs(5)).await;
        let result = Final {
            violations: 0,
            findings: true,
        };
        stop.send(Some(result)).unwrap();
        let out = String::from_utf8(task.await.unwrap()).unwrap();
        let seconds: Vec<u64> = out
            .lines()
            .map(|l| {
                let figure = l
                    .strip_prefix("progress  ")
                    .and_then(|rest| rest.split_once("s of "))
                    .unwrap_or_else(|| panic!("no elapsed in {l:?}:\n{out}"));
                figure.0.parse().unwrap()
            })
            .collect();
        // The last line would say what the tick after the end said: it is left out (a
        // log once ended on two lines of the same figures, the second at 0 msg/s).
        assert_eq!(
            seconds,
            [5, 6],
            "the tick after the end reads the run's length, once:\n{out}"
        );
        assert!(
            seconds.windows(2).all(|w| w[0] <= w[1]),
            "the elapsed shown never goes back:\n{out}"
        );
    }

    /// A read after the load's end rates what was received over the stretch the load ran
    /// since the last read, not over the time spent judging and writing after it.
    #[tokio::test(start_paused = true)]
    async fn a_read_after_the_end_rates_the_load_s_stretch_only() {
        let live = Arc::new(Live::default());
        live.load_started.set(Instant::now().into_std()).unwrap();
        let mut meter = Meter::new(live.clone(), Duration::from_secs(60), 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        live.received.store(500, Relaxed);
        live.load_ended.set(Instant::now().into_std()).unwrap();
        // Judging and writing: four more seconds.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let s = meter.read();
        assert!((s.received_per_sec - 500.0).abs() < 1.0, "{s:?}");
    }

    /// An end the swarm marks after the meter took `now` (between its two reads) is later
    /// than that `now`: the reading is `now`'s, and the next one the end's, not less.
    #[tokio::test(start_paused = true)]
    async fn an_end_later_than_the_reading_does_not_move_it_forward_then_back() {
        let live = Arc::new(Live::default());
        let start = Instant::now();
        live.load_started.set(start.into_std()).unwrap();
        let mut meter = Meter::new(live.clone(), Duration::from_secs(60), 1);
        tokio::time::sleep(Duration::from_secs(3)).await;
        live.load_ended
            .set((Instant::now() + Duration::from_millis(500)).into_std())
            .unwrap();
        assert_eq!(meter.read().elapsed, Duration::from_secs(3));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(meter.read().elapsed, Duration::from_millis(3_500));
    }

    /// Every valid token refused reads as liveness violations: the last line says, as the
    /// summary does, that the verdict makes them no findings.
    #[test]
    fn violations_of_a_run_that_could_not_judge_are_said_as_no_findings() {
        let refused = Snapshot {
            violations: 200,
            findings: false,
            ..snapshot()
        };
        assert!(
            line(&refused).contains("200 violations (not findings: see the verdict) · turn"),
            "{}",
            line(&refused)
        );
        let none = Snapshot {
            violations: 0,
            findings: false,
            ..snapshot()
        };
        assert!(
            line(&none).contains("0 violations · turn"),
            "{}",
            line(&none)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_shorter_than_a_tick_prints_no_line() {
        let live = Arc::new(Live::default());
        let meter = Meter::new(live, Duration::from_secs(60), 1);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(plain(meter, stopped, PLAIN_EVERY, Vec::new()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(stop);
        let out = task.await.unwrap();
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    }
}
