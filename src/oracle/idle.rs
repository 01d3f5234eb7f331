//! Idle timeouts: a server may close a connection nobody has used for a while (a Close
//! 1000 or 1001, "idle timeout"). When that happens in a long `think`, the script's
//! later steps never run, which by default is a finding: a server closing a healthy
//! connection mid-script is exactly what river #205's stale grace timer does. Declared in
//! `[oracles] idle_timeout`, a close that came after the connection had been idle that
//! long (and owed no answer) is the server's policy instead: counted (`closed_idle`),
//! never a violation; one that came sooner stays a finding. Undeclared, when the
//! mid-script closes read as one idle timeout, the verdict's hint says how to declare it.

use crate::model::{Attempt, Cause, ConnReport, OracleSpec, Outcome, Plan, IDLE_SLACK};
use std::time::Duration;

/// Idle times shorter than this are no timeout the hint suggests declaring: a close that
/// soon after the last frame reads as a timer bug (river #205 closes a reconnected
/// connection 300 ms after its handshake), not as a policy for clients that think.
const MIN_SUGGESTED: Duration = Duration::from_secs(1);

/// The share of the mid-script server closes that must read as idle closes for the hint.
const MOST: f64 = 0.8;

/// "About the same idle time": the longest idle before a close at most this many times
/// the shortest.
const SPREAD: f64 = 1.25;

/// Whether a server Close with `code` can be an idle timeout: one of `[oracles]
/// idle_close` (by default a normal closure or "going away",
/// [`DEFAULT_IDLE_CLOSE`](crate::model::DEFAULT_IDLE_CLOSE)). Any other code says something
/// else and stays what it was.
pub fn reads_as_idle_close(spec: &OracleSpec, code: u16) -> bool {
    spec.idle_close.contains(&code)
}

/// Whether the scenario gave `code` to its idle timeout (`idle_timeout` declared, the code
/// in `idle_close`): a code that then cannot also be declared a refusal in `reject.close`
/// (`validate` refuses a code in both), which a hint suggesting refusal codes leaves out.
pub fn declared_idle_code(spec: &OracleSpec, code: u16) -> bool {
    spec.idle_timeout.is_some() && reads_as_idle_close(spec, code)
}

/// Whether a connection idle for `idle` when its server closed it (owing no answer) had
/// been idle long enough for the declared idle policy: at least [`IDLE_SLACK`] of
/// `[oracles] idle_timeout`. Never without the declaration.
pub fn by_policy(spec: &OracleSpec, idle: Duration) -> bool {
    spec.idle_timeout
        .is_some_and(|timeout| idle >= timeout.mul_f64(IDLE_SLACK))
}

/// Whether a server Close (`cause`) of a connection idle for `idle` and owing no answer
/// is the declared idle policy: one of its codes ([`reads_as_idle_close`]) after its time
/// ([`by_policy`]).
pub fn closed_by_policy(spec: &OracleSpec, cause: &Cause, idle: Duration) -> bool {
    matches!(cause, Cause::ServerClose(code) if reads_as_idle_close(spec, *code))
        && by_policy(spec, idle)
}

/// The note on the connections the server closed by its declared idle policy
/// ([`Attempt::is_closed_idle`]). `None` when it closed none.
pub fn closed_idle_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let timeout = plan.oracles.idle_timeout?;
    let closed: Vec<&Attempt> = attempts(reports).filter(|a| a.is_closed_idle()).collect();
    let (lo, hi) = idle_range(&closed)?;
    Some(format!(
        "the server closed {} connection{} idle for {} ({}; declared `idle_timeout = {}`): \
         its idle policy, counted as `closed_idle`, and the steps their scripts had left \
         are no finding",
        closed.len(),
        plural(closed.len()),
        span(lo, hi),
        codes(&closed),
        quoted(timeout),
    ))
}

/// The note on mid-script server closes that read as an idle timeout the scenario does
/// not declare: most of them (`MOST`) came with no answer owed, after about the same
/// idle time (`SPREAD`) of at least `MIN_SUGGESTED`; the hint then says how to
/// declare it. With `idle_timeout` declared, the note names the idle closes that came
/// sooner than it (they stay findings). `None` otherwise.
pub fn undeclared_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let spec = &plan.oracles;
    let (mid_script, idle) = idle_closes(spec, reports);
    let Some((lo, hi)) = idle_range(&idle) else {
        return other_code_note(plan, reports);
    };
    let n = idle.len();
    if let Some(timeout) = plan.oracles.idle_timeout {
        return Some(format!(
            "the server closed {n} connection{} idle for only {} ({}), sooner than the \
             declared `idle_timeout = {}`: not its idle policy, so they stay findings",
            plural(n),
            span(lo, hi),
            codes(&idle),
            quoted(timeout),
        ));
    }
    let most = n as f64 >= MOST * mid_script as f64;
    if !(one_idle_time(lo, hi) && most) {
        return None;
    }
    if let Some(survived) = survived_longer(reports, hi) {
        return Some(format!(
            "the server closed {n} connection{} idle for {} ({}) with nothing pending, though \
             connections of this run had stayed open through longer silences ({} at the \
             most): no idle timeout closes so (a timer that is not reset, or one left over \
             from an earlier connection, river #205's stale grace timer), so they stay \
             findings",
            plural(n),
            span(lo, hi),
            codes(&idle),
            span(survived, survived),
        ));
    }
    Some({
        let close = match with_codes_of(spec, &idle) {
            Some(codes) => format!(" and `idle_close = [{codes}]`"),
            None => String::new(),
        };
        format!(
            "the server closed {n} connection{} idle for {} ({}) with nothing pending: if it \
             closes idle connections by policy, add `idle_timeout = {}`{close} to `[oracles]`; \
             or keep the connection busy during long thinks (a `ping` step, or the \
             protocol's own heartbeat message where it has one, as a `send`)",
            plural(n),
            span(lo, hi),
            codes(&idle),
            quoted(suggested(lo)),
        )
    })
}

/// How many attempts the server closed mid-script, and those of them that read as idle
/// closes ([`closed_idle_mid_script`]).
fn idle_closes<'r>(spec: &OracleSpec, reports: &'r [ConnReport]) -> (usize, Vec<&'r Attempt>) {
    let mid_script = attempts(reports).filter(|a| closed_mid_script(a)).count();
    let idle = attempts(reports)
        .filter(|a| closed_idle_mid_script(spec, a))
        .collect();
    (mid_script, idle)
}

/// Whether `a` is a mid-script server close after a silence, with a code an idle timeout
/// may use (undeclared: any such code; declared: the scenario's `idle_close`).
fn closed_idle_mid_script(spec: &OracleSpec, a: &Attempt) -> bool {
    let may_be_idle = match spec.idle_timeout {
        Some(_) => idle_code(spec, a),
        None => matches!(a.cause, Some(Cause::ServerClose(c)) if could_be_idle(c)),
    };
    closed_mid_script(a) && a.idle_close_us.is_some() && may_be_idle
}

/// Whether [`undeclared_note`] suggests declaring an idle timeout (none is declared, and
/// the mid-script closes read as one) and every violation of `kept` is on a connection
/// the server so closed: then the idle policy, if the server means it, explains them all,
/// and that comes before a hunt.
pub fn explains_every_violation(
    plan: &Plan,
    reports: &[ConnReport],
    kept: &[crate::model::Violation],
) -> bool {
    let spec = &plan.oracles;
    if spec.idle_timeout.is_some() || kept.is_empty() {
        return false;
    }
    let closed: std::collections::BTreeSet<u32> = reports
        .iter()
        .filter(|r| r.attempts.iter().any(|a| closed_idle_mid_script(spec, a)))
        .map(|r| r.id)
        .collect();
    suggests_declaring(plan, reports) && kept.iter().all(|v| closed.contains(&v.conn))
}

/// [`undeclared_note`]'s condition for suggesting `idle_timeout`: the closes came after
/// about one idle time, are most of the mid-script closes, and no connection of the run
/// stayed open through a clearly longer silence.
fn suggests_declaring(plan: &Plan, reports: &[ConnReport]) -> bool {
    let (mid_script, idle) = idle_closes(&plan.oracles, reports);
    let Some((lo, hi)) = idle_range(&idle) else {
        return false;
    };
    one_idle_time(lo, hi)
        && idle.len() as f64 >= MOST * mid_script as f64
        && survived_longer(reports, hi).is_none()
}

/// Whether every close of `closed` came with no answer owed after about the same silence
/// ([`SPREAD`]) of at least [`MIN_SUGGESTED`]: what an idle timeout does. Then their age
/// is no lifetime to suggest ([`super::lifetime`]): the silence explains them (the idle
/// note says so, or says why no idle timeout does), and declaring a lifetime would only
/// hide them.
pub(super) fn after_alike_silences(closed: &[&Attempt]) -> bool {
    if closed.iter().any(|a| a.idle_close_us.is_none()) {
        return false;
    }
    idle_range(closed).is_some_and(|(lo, hi)| one_idle_time(lo, hi))
}

/// Whether idle times from `lo` to `hi` read as one idle timeout's: about the same
/// ([`SPREAD`]), and long enough to be a policy ([`MIN_SUGGESTED`]).
fn one_idle_time(lo: Duration, hi: Duration) -> bool {
    hi.as_secs_f64() <= lo.as_secs_f64() * SPREAD && lo >= MIN_SUGGESTED
}

/// The longest silence a connection of the run stayed open through
/// ([`Attempt::silence_survived_us`]), when it is clearly longer than `longest_close`, the
/// longest idle time before the closes that read as an idle timeout ([`SPREAD`] times it:
/// a server that sweeps its idle connections now and then closes some a little later
/// than others, and lets none stay that much longer). Then no one idle timeout explains
/// those closes. `None` otherwise.
fn survived_longer(reports: &[ConnReport], longest_close: Duration) -> Option<Duration> {
    attempts(reports)
        .filter_map(|a| a.silence_survived_us)
        .map(Duration::from_micros)
        .max()
        .filter(|survived| survived.as_secs_f64() > longest_close.as_secs_f64() * SPREAD)
}

/// With `idle_timeout` declared: the note on mid-script closes that came after the
/// declared idle time with nothing owed, but with a code `idle_close` does not list and
/// that could be an idle timeout's (a normal closure, going away, or an application's own
/// code, 3000–4999): they stay findings, and the note says how to declare the code.
/// `None` otherwise.
fn other_code_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let spec = &plan.oracles;
    let timeout = spec.idle_timeout?;
    let closed: Vec<&Attempt> = attempts(reports)
        .filter(|a| closed_mid_script(a) && !idle_code(spec, a))
        .filter(|a| {
            a.idle_close_us
                .is_some_and(|us| by_policy(spec, Duration::from_micros(us)))
        })
        .filter(|a| matches!(a.cause, Some(Cause::ServerClose(c)) if could_be_idle(c)))
        .collect();
    let (lo, hi) = idle_range(&closed)?;
    let listed = with_codes_of(spec, &closed)?;
    let n = closed.len();
    Some(format!(
        "the server closed {n} connection{} idle for {} ({}), past the declared \
         `idle_timeout = {}` but with a code `idle_close` does not list: if that is its idle \
         timeout, add `idle_close = [{listed}]` to `[oracles]`",
        plural(n),
        span(lo, hi),
        codes(&closed),
        quoted(timeout),
    ))
}

/// `idle_close`'s codes with those of `closed` it lacks, as the list to declare
/// (`1000, 1001, 4009`); `None` when it lacks none.
fn with_codes_of(spec: &OracleSpec, closed: &[&Attempt]) -> Option<String> {
    let mut codes = spec.idle_close.clone();
    for a in closed {
        if let Some(Cause::ServerClose(c)) = a.cause {
            if !codes.contains(&c) {
                codes.push(c);
            }
        }
    }
    (codes.len() > spec.idle_close.len()).then(|| {
        codes
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Whether `a` ended with one of the idle timeout's close codes (`[oracles] idle_close`).
fn idle_code(spec: &OracleSpec, a: &Attempt) -> bool {
    matches!(a.cause, Some(Cause::ServerClose(c)) if reads_as_idle_close(spec, c))
}

/// Close codes an idle timeout may use: a normal closure, going away, a policy violation
/// (1008, which many servers close an idle connection with: `idle_close = [1008]` then
/// takes it from `reject.close`'s default), or an application's own (3000–4999); not the
/// codes that say a protocol or server error.
fn could_be_idle(code: u16) -> bool {
    matches!(code, 1000 | 1001 | 1008 | 3000..=4999)
}

/// Whether the server closed this accepted attempt while its script still ran, and no
/// declared policy (shedding, a takeover, the idle timeout, the maximum lifetime) nor its
/// token's expiry explains the close.
pub(super) fn closed_mid_script(a: &Attempt) -> bool {
    a.outcome == Outcome::Accepted
        && matches!(a.cause, Some(Cause::ServerClose(_)))
        && !a.script_done
        && !a.is_replaced()
        && !a.shed_after_acceptance()
        && !a.is_closed_idle()
        && !a.is_closed_at_lifetime()
        && !a.closed_expired()
}

/// Every attempt of the run.
pub(super) fn attempts(reports: &[ConnReport]) -> impl Iterator<Item = &Attempt> {
    reports.iter().flat_map(|r| &r.attempts)
}

/// The shortest and longest idle time before the closes of `closed`; `None` when none
/// recorded one.
fn idle_range(closed: &[&Attempt]) -> Option<(Duration, Duration)> {
    let idle = closed
        .iter()
        .filter_map(|a| a.idle_close_us)
        .map(Duration::from_micros);
    let lo = idle.clone().min()?;
    let hi = idle.max()?;
    Some((lo, hi))
}

/// `2.0–2.1 s`, or `2.0 s` when both ends read the same.
pub(super) fn span(lo: Duration, hi: Duration) -> String {
    let (lo, hi) = (
        format!("{:.1}", lo.as_secs_f64()),
        format!("{:.1}", hi.as_secs_f64()),
    );
    if lo == hi {
        format!("{lo} s")
    } else {
        format!("{lo}–{hi} s")
    }
}

/// `server_close_1001 ×10`, by code.
pub(super) fn codes(closed: &[&Attempt]) -> String {
    let mut by = std::collections::BTreeMap::<&Cause, u64>::new();
    for cause in closed.iter().filter_map(|a| a.cause.as_ref()) {
        *by.entry(cause).or_default() += 1;
    }
    let codes: Vec<String> = by.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
    codes.join(", ")
}

/// The timeout to declare for closes after `shortest` idle: rounded to 100 ms (within
/// [`IDLE_SLACK`] of it for any time the hint suggests).
pub(super) fn suggested(shortest: Duration) -> Duration {
    let tenths = (shortest.as_millis() + 50) / 100;
    Duration::from_millis(u64::try_from(tenths * 100).unwrap_or(u64::MAX))
}

/// A duration as a scenario writes it, quoted: `"2s"`, `"2300ms"`.
fn quoted(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("\"{}s\"", ms / 1000)
    } else {
        format!("\"{ms}ms\"")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suggested_timeout_is_rounded_to_100ms_and_written_as_a_scenario_would() {
        assert_eq!(quoted(suggested(Duration::from_millis(1987))), "\"2s\"");
        assert_eq!(quoted(suggested(Duration::from_millis(2049))), "\"2s\"");
        assert_eq!(quoted(suggested(Duration::from_millis(2251))), "\"2300ms\"");
        assert_eq!(
            span(Duration::from_millis(1987), Duration::from_millis(2104)),
            "2.0–2.1 s"
        );
        assert_eq!(
            span(Duration::from_millis(2010), Duration::from_millis(2040)),
            "2.0 s"
        );
    }

    /// A silence survived counts against an idle timeout only when clearly longer than
    /// the closes' idle times: a sweeping timer closes some a little later than others.
    #[test]
    fn only_a_clearly_longer_silence_survived_rules_an_idle_timeout_out() {
        let survived = |ms: u64| Attempt {
            silence_survived_us: Some(ms * 1000),
            ..Attempt::new(0)
        };
        let reports = |ms: &[u64]| {
            vec![ConnReport::of_attempts(
                0,
                0,
                ms.iter().map(|&m| survived(m)).collect(),
            )]
        };
        let close = Duration::from_secs(2);
        assert_eq!(survived_longer(&reports(&[2400]), close), None);
        assert_eq!(
            survived_longer(&reports(&[1000, 2600]), close),
            Some(Duration::from_millis(2600))
        );
        assert_eq!(survived_longer(&[], close), None);
    }

    #[test]
    fn only_a_declared_timeout_with_its_slack_makes_a_close_policy() {
        let mut spec = OracleSpec::default();
        assert!(!by_policy(&spec, Duration::from_secs(60)));
        spec.idle_timeout = Some(Duration::from_secs(2));
        assert!(by_policy(&spec, Duration::from_millis(1800)));
        assert!(!by_policy(&spec, Duration::from_millis(1799)));
        assert!(!by_policy(&spec, Duration::from_millis(300)));
        assert!(reads_as_idle_close(&spec, 1001) && !reads_as_idle_close(&spec, 1011));
        assert!(!reads_as_idle_close(&spec, 4009));
        spec.idle_close = vec![4009];
        assert!(reads_as_idle_close(&spec, 4009) && !reads_as_idle_close(&spec, 1000));
    }
}
