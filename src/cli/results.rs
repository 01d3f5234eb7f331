//! `stampede compare` and `stampede report`: commands that work from result files only.

use super::{exit, Error};
use super::{write_file, CompareArgs, ReportArgs};
use crate::report;
use crate::results as files;
use std::path::{Path, PathBuf};

/// Why a command that takes a fixed number of paths got more: usually the shell expanded
/// an unquoted glob.
fn glob_hint(command: &str, wanted: &str, got: usize) -> String {
    format!(
        "{command} takes {wanted} but got {got} paths; an unquoted glob (results/x/*) is \
         expanded by the shell into one path per match: quote it ('results/x/*') so \
         stampede expands it, pass the folder that holds the runs, or use --base/--new"
    )
}

pub(super) fn compare(args: CompareArgs) -> Result<u8, Error> {
    let given = args.paths.len();
    let mut positional = args.paths.into_iter();
    let base = if args.base.is_empty() {
        positional.next().into_iter().collect()
    } else {
        args.base
    };
    let new = if args.new.is_empty() {
        positional.next().into_iter().collect()
    } else {
        args.new
    };
    if positional.next().is_some() {
        return Err(Error::Usage(glob_hint("compare", "BASE and NEW", given)));
    }
    if base.is_empty() || new.is_empty() {
        return Err(Error::Usage(
            "compare needs BASE and NEW (or --base/--new, repeatable, globs allowed)".into(),
        ));
    }
    let opts = files::CompareOptions {
        tolerance: args.tolerance,
        per_metric: args.tolerance_for.into_iter().collect(),
        force: args.force,
    };
    let base = files::compare::expand(&base).map_err(Error::usage)?;
    let new = files::compare::expand(&new).map_err(Error::usage)?;
    let comparison = files::compare(&base, &new, &opts).map_err(Error::usage)?;
    // A run folder left out changes what the verdict rests on: said even under --quiet,
    // as merge's warnings are, and on stderr so that --json's stdout stays one object.
    for dir in &comparison.skipped {
        errln!("warning: {}", files::read::skipped_warning(dir));
    }
    if args.output.json {
        let json = serde_json::to_string_pretty(&report::comparison_json(&comparison))
            .map_err(Error::usage)?;
        outln!("{json}")?;
    } else {
        report::render_comparison(&comparison, &mut super::out::stdout())?;
    }
    // A comparison whose only worse figures come from a NEW run whose client fell behind
    // judged nothing: not the server's regression (1), not a pass (0) either; the code of
    // a run limited by its client.
    Ok(if comparison.regressed() {
        exit::VIOLATIONS
    } else if comparison.not_judged() {
        exit::CLIENT_LIMITED
    } else {
        exit::CLEAN
    })
}

/// The run a `report` path stands for: the run itself, or the newest run in a folder that
/// holds runs (by its recorded start; said on stderr unless `quiet`, with how many there
/// were and when it started). Run folders without a `summary.json` it left out are said
/// on stderr under `quiet` too, as `compare` and `merge` say them: one of them may be a
/// newer run than the one reported.
fn one_run(path: &Path, quiet: bool) -> Result<PathBuf, Error> {
    let files::NewestRun {
        dir: newest,
        count,
        skipped,
    } = files::newest_run(path).map_err(Error::usage)?;
    for dir in &skipped {
        errln!("warning: {}", files::read::skipped_warning(dir));
    }
    // The parts of a split run (a `--workers` run's folder): the newest is one shard of
    // it, which would read as the run.
    let summary = files::read::read_summary(&newest.join("summary.json")).ok();
    let shard = summary.as_ref().and_then(|s| s.shard);
    if let (true, Some(shard)) = (count > 1, shard) {
        return Err(Error::Usage(format!(
            "{} holds the parts of a split run (the newest, {}, is shard {shard}): report \
             the merged result (a `--workers` run names it on its `results` line), or merge \
             the parts first (`stampede merge {}/*/*/* -o DIR`)",
            path.display(),
            newest.display(),
            path.display()
        )));
    }
    if count > 1 && !quiet {
        // Its recorded start is what made it the newest (its folder's name may have been
        // changed by a copy): said, so a pick that surprises can be checked.
        let started = summary
            .map(|s| format!(" (started {})", s.started_at))
            .unwrap_or_default();
        // `compare` pools every run of such a folder: its gate may read other figures
        // than the one run shown here, which is said.
        errln!(
            "{} holds {count} runs; reporting the newest, {}{started} (`compare` pools all \
             {count}: its figures, and its gate, are theirs together)",
            path.display(),
            newest.display()
        );
    }
    Ok(newest)
}

pub(super) fn html_report(args: &ReportArgs) -> Result<u8, Error> {
    let [dir] = args.dir.as_slice() else {
        return Err(Error::Usage(glob_hint(
            "report",
            "one RESULT_DIR",
            args.dir.len(),
        )));
    };
    let read = |path: &Path| -> Result<files::RunData, Error> {
        let run = one_run(path, args.quiet)?;
        files::read_run(&run).map_err(Error::usage)
    };
    if let Some(out) = args.out.as_deref().filter(|o| o.is_dir()) {
        return Err(Error::Usage(format!(
            "-o {} is a folder; the report is one file: name it, e.g. -o {}",
            out.display(),
            out.join("report.html").display()
        )));
    }
    let run = read(dir)?;
    let vs = args.vs.as_deref().map(read).transpose()?;
    // A run overlaid on itself shows no difference, whatever changed: refused, as
    // `compare` refuses it.
    if let Some(other) = &vs {
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        if same(&run.dir, &other.dir) {
            return Err(Error::Usage(format!(
                "--vs {} is the run being reported ({}): overlay another run",
                other.dir.display(),
                run.dir.display()
            )));
        }
        // A run cut short measured less than its plan: its figures are no baseline.
        if other.summary.stopped == crate::model::StopReason::Interrupted && !args.quiet {
            errln!(
                "warning: --vs {} was interrupted (Ctrl-C) before its plan finished: its \
                 figures are of the part that ran",
                other.dir.display()
            );
        }
    }
    // What a merge warned of when it made a result (its rates may not be one run's) is
    // said again on every report of it, as merge said it: under --quiet too.
    for shown in std::iter::once(&run).chain(&vs) {
        for warning in &shown.summary.warnings {
            errln!("warning: {}: {warning}", shown.dir.display());
        }
    }
    let html = report::render_html(&run, vs.as_ref())
        .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    let output = args
        .out
        .clone()
        .unwrap_or_else(|| run.dir.join("report.html"));
    write_file(&output, html.as_bytes())?;
    if !args.quiet {
        errln!("wrote {}", output.display());
    }
    Ok(exit::CLEAN)
}
