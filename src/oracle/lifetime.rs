//! Maximum connection lifetimes: many servers end every connection at a fixed age,
//! whatever it is doing (AWS API Gateway WebSockets after 2 hours, gateways and proxies
//! after N minutes), with a Close 1001 "going away" or 1000 and a reason such as "max
//! connection age". In a long run the script's later steps then never run, which by
//! default is a finding: a server closing a healthy connection mid-script is what a stale
//! timer bug does too. Declared in `[oracles] max_lifetime`, a close that came once the
//! connection had been open that long is the server's policy instead: counted
//! (`closed_at_lifetime`), never a violation, and no reason for an inconclusive run (the
//! scenario said to expect it); one that came sooner stays a finding. Undeclared, when
//! several mid-script closes came at about the same age, the verdict's hint says how to
//! declare it.

use super::idle::{
    after_alike_silences, attempts, closed_mid_script, codes, span, suggested as rounded,
};
use crate::model::{words, Attempt, Cause, ConnReport, OracleSpec, Outcome, Plan, IDLE_SLACK};
use std::time::Duration;

/// Ages shorter than this are no lifetime the hint suggests declaring: a server closing
/// connections that soon after their handshake reads as a timer bug (river #205 closes a
/// reconnected connection 300 ms after its handshake), not as a policy for long sessions.
const MIN_SUGGESTED: Duration = Duration::from_secs(1);

/// "About the same age": closes within 5% of the oldest one's age, or within
/// [`JITTER`] of it when that is more. A lifetime timer fires at one age; our clock adds
/// only the handshake's and the Close's travel and the scheduling of both ends to it.
const SPREAD: f64 = 0.05;

/// The least difference in age [`SPREAD`] allows: the travel and scheduling it adds do
/// not shrink with a short lifetime (a loaded machine delays a close by tens of ms).
const JITTER: Duration = Duration::from_millis(100);

/// Whether a connection open for `age` (since its 101) when its server closed it had
/// lived long enough for the declared lifetime policy: at least [`IDLE_SLACK`] of
/// `[oracles] max_lifetime` (our clock starts at the 101, after the server's at its
/// accept, and a server's timer may run a little early). Never without the declaration.
pub fn by_policy(spec: &OracleSpec, age: Duration) -> bool {
    spec.max_lifetime
        .is_some_and(|lifetime| age >= lifetime.mul_f64(IDLE_SLACK))
}

/// Whether a server Close (`cause`) of a connection open for `age` is the declared
/// lifetime policy: a code that may say so ([`Cause::may_end_by_policy`]) at its age
/// ([`by_policy`]).
pub fn closed_by_policy(spec: &OracleSpec, cause: &Cause, age: Duration) -> bool {
    cause.may_end_by_policy() && by_policy(spec, age)
}

/// The note on the connections the server closed at its declared lifetime
/// ([`Attempt::is_closed_at_lifetime`]): "2 connections closed at the declared
/// `max_lifetime = "1s"` …". `None` when it closed none so.
pub fn closed_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let lifetime = plan.oracles.max_lifetime?;
    let closed: Vec<&Attempt> = attempts(reports)
        .filter(|a| a.is_closed_at_lifetime())
        .collect();
    let (lo, hi) = age_range(&closed)?;
    Some(format!(
        "{} closed at the declared `max_lifetime = \"{}\"` (open {}; {}): the server's \
         connection lifetime policy, counted as `closed_at_lifetime`, and the steps their \
         scripts had left are no finding",
        words::plural(closed.len() as u64, "connection"),
        written(lifetime),
        span(lo, hi),
        codes(&closed),
    ))
}

/// The note on mid-script server closes that read as a lifetime the scenario does not
/// declare: at least two with a code a lifetime may use ([`Cause::may_end_by_policy`]) at about
/// the same age (`within_spread`) of at least `MIN_SUGGESTED`, the oldest age any connection
/// reached (one that lived longer shows no such policy), not each after the same silence
/// (an idle timeout's doing: `after_alike_silences`); the hint then says how to
/// declare it. With `max_lifetime` declared, the note names the closes that came sooner
/// than it (they stay findings). `None` otherwise.
pub fn undeclared_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let closed: Vec<&Attempt> = attempts(reports)
        .filter(|a| closed_mid_script(a) && a.close_age_us.is_some())
        .filter(|a| a.cause.as_ref().is_some_and(Cause::may_end_by_policy))
        .collect();
    match plan.oracles.max_lifetime {
        Some(lifetime) => too_soon_note(lifetime, &closed),
        None => suggestion(reports, &closed),
    }
}

/// With `max_lifetime` declared: the note on the closes that came sooner than it.
fn too_soon_note(lifetime: Duration, closed: &[&Attempt]) -> Option<String> {
    let (lo, hi) = age_range(closed)?;
    Some(format!(
        "the server closed {} at only {} of age ({}), sooner than the declared \
         `max_lifetime = \"{}\"`: not its lifetime policy, so they stay findings",
        words::plural(closed.len() as u64, "connection"),
        span(lo, hi),
        codes(closed),
        written(lifetime),
    ))
}

/// Undeclared: the declaration to suggest for the cluster of closes at the oldest age
/// any of `closed` reached, when [`undeclared_note`]'s conditions hold.
fn suggestion(reports: &[ConnReport], closed: &[&Attempt]) -> Option<String> {
    let (_, oldest) = age_range(closed)?;
    let cluster: Vec<&Attempt> = closed
        .iter()
        .copied()
        .filter(|a| age(a).is_some_and(|d| within_spread(d, oldest)))
        .collect();
    let lifetime = rounded(oldest);
    let outlived = accepted_ages(reports).any(|d| d > oldest && !within_spread(oldest, d));
    if cluster.len() < 2 || lifetime < MIN_SUGGESTED || outlived || after_alike_silences(&cluster) {
        return None;
    }
    let n = cluster.len();
    Some(format!(
        "the server closed {} at ~{} of age ({}) mid-script: if that is its policy (a \
         maximum connection lifetime), declare [oracles] max_lifetime = \"{}\"; their \
         unrun steps then are no finding",
        words::plural(n as u64, "connection"),
        written(lifetime),
        codes(&cluster),
        written(lifetime),
    ))
}

/// Whether `younger` is about the same age as `older` ([`SPREAD`], [`JITTER`]).
fn within_spread(younger: Duration, older: Duration) -> bool {
    let allowed = older.mul_f64(SPREAD).max(JITTER);
    older.saturating_sub(younger) <= allowed
}

/// How long `a` had been open when the server closed it mid-script.
fn age(a: &Attempt) -> Option<Duration> {
    a.close_age_us.map(Duration::from_micros)
}

/// How long each accepted attempt of the run lived, from its 101 to its end, however it
/// ended.
fn accepted_ages(reports: &[ConnReport]) -> impl Iterator<Item = Duration> + '_ {
    attempts(reports)
        .filter(|a| a.outcome == Outcome::Accepted)
        .filter_map(|a| Some(a.ended_us?.saturating_sub(a.upgraded_us?)))
        .map(Duration::from_micros)
}

/// The youngest and oldest age at the closes of `closed`; `None` when none recorded one.
fn age_range(closed: &[&Attempt]) -> Option<(Duration, Duration)> {
    let ages = closed.iter().filter_map(|a| age(a));
    Some((ages.clone().min()?, ages.max()?))
}

/// A duration as a scenario writes it, in the largest unit that holds it whole: `2h`,
/// `10m`, `30s`, `2300ms` (a lifetime is often hours, and `"7200s"` hides that).
fn written(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".into(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes a server ends a connection at its lifetime with may say so; those of a
    /// fault never read as a lifetime, however late they come.
    #[test]
    fn only_codes_a_lifetime_may_use_read_as_one() {
        for code in [1000, 1001, 1005, 1008, 3000, 4000, 4999] {
            assert!(
                Cause::may_end_by_policy(&Cause::ServerClose(code)),
                "{code}"
            );
        }
        for code in [1002, 1003, 1007, 1009, 1010, 1011, 1012, 1013, 1014] {
            assert!(
                !Cause::may_end_by_policy(&Cause::ServerClose(code)),
                "{code}"
            );
        }
        assert!(!Cause::may_end_by_policy(&Cause::InvalidClose(1006)));
        assert!(!Cause::may_end_by_policy(&Cause::Reset));
    }

    /// Only a declared lifetime makes a close policy, from 90% of it on.
    #[test]
    fn only_a_declared_lifetime_with_its_slack_makes_a_close_policy() {
        let mut spec = OracleSpec::default();
        let going_away = Cause::ServerClose(1001);
        assert!(!closed_by_policy(
            &spec,
            &going_away,
            Duration::from_secs(7200)
        ));
        spec.max_lifetime = Some(Duration::from_secs(10));
        assert!(closed_by_policy(&spec, &going_away, Duration::from_secs(9)));
        assert!(closed_by_policy(
            &spec,
            &going_away,
            Duration::from_secs(60)
        ));
        assert!(!closed_by_policy(
            &spec,
            &going_away,
            Duration::from_millis(8999)
        ));
        assert!(!closed_by_policy(
            &spec,
            &Cause::ServerClose(1011),
            Duration::from_secs(10)
        ));
    }

    /// 5% of the older age, and never less than 100 ms: a loaded machine's jitter.
    #[test]
    fn about_the_same_age_is_within_5_percent_or_100ms() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert!(within_spread(ms(28_500), s(30)) && !within_spread(ms(28_499), s(30)));
        assert!(within_spread(ms(900), s(1)) && !within_spread(ms(899), s(1)));
    }

    #[test]
    fn a_lifetime_is_written_in_its_largest_whole_unit() {
        assert_eq!(written(rounded(Duration::from_millis(7_199_970))), "2h");
        assert_eq!(written(rounded(Duration::from_millis(599_980))), "10m");
        assert_eq!(written(rounded(Duration::from_millis(29_970))), "30s");
        assert_eq!(written(rounded(Duration::from_millis(2_251))), "2300ms");
        assert_eq!(written(rounded(Duration::from_millis(996))), "1s");
    }
}
