//! The regression corpus (`scenarios/regressions/<bug>.json`): every shrunk repro is
//! replayed against the reference server with its planted bug (the file stem), where it
//! must reproduce its oracle's violation in at least 3 of 5 runs, and against the correct
//! server, where it must reproduce in none. A broken-target repro (`slot-leak`) is judged
//! by the health probe after its rounds, the server restarted before each replay.
//!
//! Planted windows are widened to 50 ms, as when the repros were found, so a busy 2-core
//! machine still lands inside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use stampede::hunt::{Rate, Repro, Runner};
use stampede::reference::Bug;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const WINDOW: Duration = Duration::from_millis(50);
const RUNS: u32 = 5;
const NEEDED: u32 = 3;
/// The whole corpus, both servers, is bounded by this.
const BOUND: Duration = Duration::from_secs(120);

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn bug_of(path: &Path) -> Bug {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    stem.parse()
        .unwrap_or_else(|e| panic!("{}: the file stem names the bug: {e}", path.display()))
}

/// Replays `repro` `RUNS` times against a fresh reference server with `bug` (or correct).
async fn replay(repro: &Repro, bug: Option<Bug>) -> Rate {
    let runner = Runner::reference(&repro.plan, bug, Some(WINDOW), CancellationToken::new())
        .await
        .unwrap();
    // A broken-target repro (target_health) runs its rounds against a freshly restarted
    // server each time and is judged by the health probe after them.
    let rate = match &repro.health {
        Some(health) => runner
            .measure_health(&health.plans(&repro.plan), &health.probe, RUNS, None, None)
            .await
            .map(|m| m.rate),
        None => runner.rate(&repro.plan, repro.oracle, RUNS, None).await,
    };
    runner.close().await;
    rate.unwrap()
}

#[test]
fn every_planted_bug_has_a_regression() {
    let covered: Vec<Bug> = corpus().iter().map(|p| bug_of(p)).collect();
    for bug in Bug::ALL {
        assert!(
            covered.contains(&bug),
            "no scenarios/regressions/{bug}.json"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_regression_reproduces_with_its_bug_and_never_without() {
    let started = Instant::now();
    let check = async {
        let mut report = Vec::new();
        for path in corpus() {
            let bug = bug_of(&path);
            let repro = Repro::load(&path).unwrap();
            assert!(
                !repro.plan.conns.is_empty() && !repro.evidence.is_empty(),
                "{}: a repro holds a plan and its evidence",
                path.display()
            );
            let buggy = replay(&repro, Some(bug)).await;
            let correct = replay(&repro, None).await;
            report.push(format!(
                "{:<22} {:<18} {} conns  with bug {buggy}  correct {correct}",
                bug.name(),
                repro.oracle.name(),
                repro.size()
            ));
            assert!(
                buggy.reproduced >= NEEDED,
                "{}: {} reproduced only {buggy} against --bug {bug}",
                path.display(),
                repro.oracle.name()
            );
            assert_eq!(
                correct.reproduced,
                0,
                "{}: false positive on the correct server ({correct})",
                path.display()
            );
        }
        report
    };
    let report = tokio::time::timeout(BOUND, check)
        .await
        .expect("the corpus replays within the bound");
    eprintln!(
        "replayed {} regressions in {:.1}s\n{}",
        report.len(),
        started.elapsed().as_secs_f64(),
        report.join("\n")
    );
}
