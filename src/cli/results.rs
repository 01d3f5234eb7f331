//! `stampede compare` and `stampede report`: commands that work from result files only.

use super::{exit, Error};
use super::{write_file, CompareArgs, ReportArgs};
use crate::report;
use crate::results as files;

pub(super) fn compare(args: CompareArgs) -> Result<u8, Error> {
    let usage = |e: files::CompareError| Error::Usage(e.to_string());
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
    if positional.next().is_some() || base.is_empty() || new.is_empty() {
        return Err(Error::Usage(
            "compare needs BASE and NEW (or --base/--new, repeatable, globs allowed)".into(),
        ));
    }
    let opts = files::CompareOptions {
        tolerance: args.tolerance,
        per_metric: args.tolerance_for.into_iter().collect(),
        force: args.force,
    };
    let base = files::compare::expand(&base).map_err(usage)?;
    let new = files::compare::expand(&new).map_err(usage)?;
    let comparison = files::compare(&base, &new, &opts).map_err(usage)?;
    report::render_comparison(&comparison, &mut std::io::stdout().lock())?;
    Ok(if comparison.regressed() {
        exit::VIOLATIONS
    } else {
        exit::CLEAN
    })
}

pub(super) fn html_report(args: &ReportArgs) -> Result<u8, Error> {
    let read =
        |path: &std::path::Path| files::read_run(path).map_err(|e| Error::Usage(e.to_string()));
    let run = read(&args.dir)?;
    let vs = args.vs.as_deref().map(read).transpose()?;
    let html = report::render_html(&run, vs.as_ref())
        .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| run.dir.join("report.html"));
    write_file(&output, html.as_bytes())?;
    eprintln!("wrote {}", output.display());
    Ok(exit::CLEAN)
}
