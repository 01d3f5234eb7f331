//! Violations that are the server going away (a restart, a deploy, idle closes at one
//! age), read from how and when it closed its connections.

use super::*;

/// Words of a Close 1001's reason that say the server is going down (lowercase, matched
/// anywhere): 1001 also ends idle connections ("idle timeout"), which is no restart.
pub(super) const GOING_DOWN_WORDS: [&str; 8] = [
    "restart",
    "shutdown",
    "shutting down",
    "deploy",
    "maintenance",
    "going away",
    "going down",
    "draining",
];

/// Whether a server's Close says it is going down: 1012 service restart (IANA WebSocket
/// close code registry), or 1001 going away (RFC 6455 §7.4.1) with a reason that says so
/// ([`GOING_DOWN_WORDS`]).
pub(super) fn says_going_down(code: u16, reason: &str) -> bool {
    let reason = reason.to_lowercase();
    code == 1012 || (code == 1001 && GOING_DOWN_WORDS.iter().any(|w| reason.contains(w)))
}

/// Whether a server's Close is a bare 1001: going away (RFC 6455 §7.4.1: "an endpoint is
/// going away, such as a server going down") with no reason at all, what Python's
/// `websockets` sends every connection when its server stops on SIGTERM. Alone it tells
/// a shutdown from nothing else, so it reads as the server going down only when it ended
/// two or more connections at once ([`went_away`]): a server does not time out or cap
/// many connections in the same instant. A 1001 with a reason of its own is read by its
/// reason ([`says_going_down`]): "idle timeout" is a policy, and stays a finding; "going
/// away", though only the code's own name (libraries' default text, AWS API Gateway's at
/// its idle and maximum-duration cuts), stays a going-down word as it was, since dropping
/// it would turn a lone such close, now inconclusive, into a charge of a race.
pub(super) fn bare_going_away(code: u16, reason: &str) -> bool {
    code == 1001 && reason.trim().is_empty()
}

/// The reason of the server's Close that ended an accepted connection of `r` (its first),
/// trimmed; empty when there was none.
pub(super) fn close_reason(r: &ConnReport) -> &str {
    r.closed_after_acceptance
        .as_ref()
        .map_or("", |a| a.body.trim())
}

/// How close together (ms) a server's going-down closes must come to read as one restart.
pub(super) const RESTART_SPREAD_MS: f64 = 1000.0;

/// How [`went_away`] says bare 1001s that reached many connections at once.
pub(super) const ALL_AT_ONCE: &str = "going away all at once, as a server going down does";

/// Every unmet expectation was cut by a server Close that says it is going down
/// ([`says_going_down`]) or a bare 1001 ([`bare_going_away`]), and those closes reached
/// two or more connections together, or (none of them bare) the one connection the server
/// had open then: a restart or a deploy mid-run, not a race, and nothing tells what the
/// server would have answered. Inconclusive, with what came and when. Such closes spread
/// out in time stay violations, as does one that came while another connection was
/// served through it (one connection told "going away" while others were served is a
/// fault of its own), a lone bare 1001, and 1001s whose reason says something else (an
/// undeclared idle timeout, say).
pub(super) fn went_away(
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<Judgement> {
    let (unmet, _) = only_unmet(reports, by_oracle)?;
    let mut conns = std::collections::BTreeSet::new();
    let (mut first, mut last) = (f64::MAX, f64::MIN);
    let mut seen: Vec<String> = Vec::new();
    let mut bare = false;
    for r in reports.iter().filter(|r| !r.violations.is_empty()) {
        let reason = close_reason(r);
        for v in &r.violations {
            let code = v.ended.and_then(|e| e.close_code)?;
            if !says_going_down(code, reason) {
                if !bare_going_away(code, reason) {
                    return None;
                }
                bare = true;
            }
            conns.insert(v.conn);
            (first, last) = (first.min(v.at_ms), last.max(v.at_ms));
            let said = match reason {
                "" => format!("Close {code}"),
                reason => format!("Close {code}, reason {reason:?}"),
            };
            if !seen.contains(&said) && seen.len() < 2 {
                seen.push(said);
            }
        }
    }
    if last - first > RESTART_SPREAD_MS {
        return None;
    }
    // The same closes reached connections that had no answer pending too: all of them
    // say how many the server let go at once.
    let mut closed = going_down_closes(reports, (first, last));
    closed.extend(conns.iter().copied());
    // Each closed at one and the same age, though opened at different times: a timer
    // per connection (a lifetime, or a bug: river #205), not a server going down, which
    // closes what it has open whatever its age.
    if closed_at_one_age(reports, &closed, (first, last), is_server_close) {
        return None;
    }
    // A bare 1001 says nothing of a restart by itself: only its reaching many connections
    // at once does.
    let alone = closed.len() == 1 && !bare && !served_through(reports, &closed, (first, last));
    if closed.len() < 2 && !alone {
        return None;
    }
    let pending = match conns.len() {
        n if n < closed.len() => format!(", {n} of them with answers pending"),
        _ => String::new(),
    };
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!(
            "{unmet} expectation{} went unmet only because the server closed {}{pending} \
             {} ({}): a restart or deploy mid-run, not a race; what it would have answered \
             cannot be told. Rerun once it is up",
            plural(unmet),
            match closed.len() {
                1 => "the one connection it had open".to_string(),
                n => format!("{n} connections within {:.0} ms", last - first),
            },
            match bare {
                true => ALL_AT_ONCE,
                false => "saying it was going down",
            },
            seen.join("; ")
        )),
    })
}

/// The connections whose attempt the server ended with a Close that says it is going down
/// ([`says_going_down`]) or a bare 1001 ([`bare_going_away`]) within [`RESTART_SPREAD_MS`] of the going-down closes that cut
/// expectations (`first` to `last`, ms since the run's start), pending answers or not.
pub(super) fn going_down_closes(
    reports: &[ConnReport],
    (first, last): (f64, f64),
) -> std::collections::BTreeSet<u32> {
    let around = around((first, last));
    reports
        .iter()
        .filter(|r| {
            let reason = close_reason(r);
            r.attempts.iter().any(|a| match a.cause {
                Some(Cause::ServerClose(code)) => {
                    a.outcome == Outcome::Accepted
                        && (says_going_down(code, reason) || bare_going_away(code, reason))
                        && a.ended_us.is_some_and(|at| around.contains(&at))
                }
                _ => false,
            })
        })
        .map(|r| r.id)
        .collect()
}

/// How much the connections' ages at a going-down close may differ, beyond which they
/// read as closed wherever they were in their life (µs).
pub(super) const SAME_AGE_US: u64 = 50_000;

/// Whether the going-down closes of `closed` (the accepted attempts the server ended
/// between `first` and `last`, ms since the run's start, give or take
/// [`RESTART_SPREAD_MS`]) each came at about the same age of its connection, while the
/// connections had opened further apart than that: every connection let go on a timer
/// of its own, however many were open then. Three closes at least: two at one age may be
/// two connections opened together.
pub(super) fn closed_at_one_age(
    reports: &[ConnReport],
    closed: &std::collections::BTreeSet<u32>,
    (first, last): (f64, f64),
    ended_by: fn(&Cause) -> bool,
) -> bool {
    let around = around((first, last));
    let lives: Vec<(u64, u64)> = reports
        .iter()
        .filter(|r| closed.contains(&r.id))
        .flat_map(|r| &r.attempts)
        .filter(|a| a.outcome == Outcome::Accepted)
        .filter(|a| a.cause.as_ref().is_some_and(ended_by))
        .filter_map(|a| Some((a.upgraded_us?, a.ended_us?)))
        .filter(|(_, ended)| around.contains(ended))
        .collect();
    let ages = spread(lives.iter().map(|(up, end)| end.saturating_sub(*up)));
    let opened = spread(lives.iter().map(|(up, _)| *up));
    lives.len() >= 3 && ages <= SAME_AGE_US && opened > ages.saturating_mul(2) + SAME_AGE_US
}

/// `first` to `last` (ms since the run's start) widened by [`RESTART_SPREAD_MS`] each way,
/// in µs: where ends that belong to one going down fall.
fn around((first, last): (f64, f64)) -> std::ops::RangeInclusive<u64> {
    let from = ((first - RESTART_SPREAD_MS).max(0.0) * 1000.0) as u64;
    let to = ((last + RESTART_SPREAD_MS) * 1000.0) as u64;
    from..=to
}

/// Whether an attempt ended with the server's Close frame.
fn is_server_close(cause: &Cause) -> bool {
    matches!(cause, Cause::ServerClose(_))
}

/// Whether an attempt ended with TCP cut under it, no Close frame before.
fn is_cut(cause: &Cause) -> bool {
    matches!(cause, Cause::Reset)
}

/// Every unmet expectation was cut by the server ending TCP without a Close frame (a
/// reset, or the connection dropped), those ends came within [`RESTART_SPREAD_MS`] of each
/// other, every connection open then among them (none accepted before
/// them lived on after), nothing took a TCP connection after them (no later attempt of
/// the run, no `probes` token after it, was accepted), and something showed it (some
/// such attempt or probe was refused or timed out connecting): the server process went
/// down mid-run, killed or crashed, as a `kill -9`, an out-of-memory kill or a crash does
/// it (the kernel closes what the dead process held). Not a race: what it would have
/// answered cannot be told. Inconclusive, with when and how many; its log says why it
/// died. Cuts spread out in time, a connection that outlived them, cuts at one age of
/// each connection (a timer of its own), a server that took a connection after them, or
/// nothing tried after them at all stay violations: a server that drops every session
/// and stays up is a fault of its own.
pub(super) fn went_down(
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
    probes: &[crate::model::Probe],
) -> Option<Judgement> {
    let (unmet, kept) = only_unmet(reports, by_oracle)?;
    let (mut first, mut last) = (f64::MAX, f64::MIN);
    for v in &kept {
        if v.ended.as_ref()?.close_code.is_some() {
            return None;
        }
        (first, last) = (first.min(v.at_ms), last.max(v.at_ms));
    }
    if last - first > RESTART_SPREAD_MS {
        return None;
    }
    let cut = cut_together(reports, (first, last));
    if kept.iter().any(|v| !cut.contains(&v.conn)) {
        return None;
    }
    let gone = gone_down(reports, probes, &cut, (first, last))?;
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!(
            "{unmet} expectation{} went unmet only because the server went down at {:.2} s: \
             {gone}. That is a process killed or crashed (kill -9, an out-of-memory kill, a \
             crash), not a race; what it would have answered cannot be told. Its log says \
             why it stopped: if nothing stopped it, this load crashed it, and a rerun shows \
             whether it does again",
            plural(unmet),
            first / 1000.0,
        )),
    })
}

/// A run in which nothing broke, but whose server went down before its end as
/// [`went_down`] tells it (every connection it had open cut at once without a Close
/// frame, nothing taking TCP after, something refused there), after the scripts' last
/// expectations: no clean run, since the server crashed or was killed under it.
/// Inconclusive, saying when. Cut times are the attempts' own: with no violation, every
/// accepted attempt ended by a cut must lie within [`RESTART_SPREAD_MS`] of the others.
pub(super) fn went_down_after_all(
    reports: &[ConnReport],
    probes: &[crate::model::Probe],
) -> Option<Judgement> {
    let ends: Vec<u64> = reports
        .iter()
        .flat_map(|r| &r.attempts)
        .filter(|a| a.outcome == Outcome::Accepted && a.cause.as_ref().is_some_and(is_cut))
        .filter_map(|a| a.ended_us)
        .collect();
    let (first, last) = (
        *ends.iter().min()? as f64 / 1000.0,
        *ends.iter().max()? as f64 / 1000.0,
    );
    if last - first > RESTART_SPREAD_MS {
        return None;
    }
    let cut = cut_together(reports, (first, last));
    let gone = gone_down(reports, probes, &cut, (first, last))?;
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!(
            "no oracle broke, but the server went down at {:.2} s, after the scripts' last \
             expectations: {gone}. That is a process killed or crashed (kill -9, an \
             out-of-memory kill, a crash), no clean run. Its log says why it stopped: if \
             nothing stopped it, this load crashed it",
            first / 1000.0,
        )),
    })
}

/// What shows the server went down at the cuts of `cut` (`first` to `last`, ms since the
/// run's start), said as the hints say it; `None` unless one or more were cut, none
/// outlived them, they came at no one age of each connection, nothing took TCP after
/// them (the run's later attempts, `probes`) and something was refused there.
fn gone_down(
    reports: &[ConnReport],
    probes: &[crate::model::Probe],
    cut: &std::collections::BTreeSet<u32>,
    (first, last): (f64, f64),
) -> Option<String> {
    use crate::model::words::plural as count;
    // One connection is enough: the TCP refusals after it say the server is gone.
    if cut.is_empty()
        || outlived(reports, cut, (first, last))
        || closed_at_one_age(reports, cut, (first, last), is_cut)
    {
        return None;
    }
    let (refused, later) = attempts_after(reports, last);
    let probes_refused = probes.iter().filter(|p| untaken(p.cause.as_ref())).count() as u64;
    if refused < later || probes.iter().any(|p| p.accepted) || refused + probes_refused == 0 {
        return None;
    }
    let mut shown = Vec::new();
    if refused > 0 {
        shown.push(format!("{} of the run", count(refused, "later attempt")));
    }
    if probes_refused > 0 {
        shown.push(format!(
            "{} tried again after it",
            count(probes_refused, "token")
        ));
    }
    let cuts = match cut.len() {
        1 => "the one connection it had open".to_string(),
        n => format!(
            "all {n} connections it had open within {:.0} ms",
            last - first
        ),
    };
    Some(format!(
        "it cut {cuts} without a Close frame, and nothing took a TCP connection after it ({} \
         refused or timed out connecting)",
        shown.join(" and "),
    ))
}

/// Whether some connection not in `cut` was open through the cuts (`first` to `last`, ms
/// since the run's start): accepted before them and ended after them, or never: the
/// server kept it, quiet or not, so it did not go down.
fn outlived(
    reports: &[ConnReport],
    cut: &std::collections::BTreeSet<u32>,
    (first, last): (f64, f64),
) -> bool {
    let after_us = ((last + RESTART_SPREAD_MS) * 1000.0) as u64;
    kept_through(reports, cut, first, |a| {
        a.ended_us.is_none_or(|end| end > after_us)
    })
}

/// Whether an attempt of a connection other than `ended`, accepted by `first` (ms since
/// the run's start), shows it kept after that (`kept`): what [`outlived`] and
/// [`served_through`] each ask in their own way.
fn kept_through(
    reports: &[ConnReport],
    ended: &std::collections::BTreeSet<u32>,
    first: f64,
    kept: impl Fn(&crate::model::Attempt) -> bool,
) -> bool {
    let first_us = (first * 1000.0) as u64;
    reports
        .iter()
        .filter(|r| !ended.contains(&r.id))
        .flat_map(|r| &r.attempts)
        .any(|a| a.accepted_us.is_some_and(|at| at <= first_us) && kept(a))
}

/// Whether an attempt that ended with `cause` got nothing at TCP: refused, or timed out
/// connecting.
fn untaken(cause: Option<&Cause>) -> bool {
    matches!(
        cause,
        Some(Cause::Connect(_)) | Some(Cause::Timeout("connect"))
    )
}

/// The connections whose accepted attempt ended with TCP cut and no Close frame within
/// [`RESTART_SPREAD_MS`] of `first` to `last` (ms since the run's start).
fn cut_together(
    reports: &[ConnReport],
    (first, last): (f64, f64),
) -> std::collections::BTreeSet<u32> {
    let around = around((first, last));
    reports
        .iter()
        .filter(|r| {
            r.attempts.iter().any(|a| {
                a.outcome == Outcome::Accepted
                    && a.cause.as_ref().is_some_and(is_cut)
                    && a.ended_us.is_some_and(|at| around.contains(&at))
            })
        })
        .map(|r| r.id)
        .collect()
}

/// Of the attempts started after `last` (ms since the run's start): how many nothing took
/// at TCP (refused, or timed out connecting), and how many there were.
fn attempts_after(reports: &[ConnReport], last: f64) -> (u64, u64) {
    let after_us = (last * 1000.0) as u64;
    let later = reports
        .iter()
        .flat_map(|r| &r.attempts)
        .filter(|a| a.started_us > after_us)
        .filter(|a| {
            !matches!(
                a.outcome,
                Outcome::Aborted | Outcome::Cut | Outcome::Pending | Outcome::ClientError
            )
        });
    later.fold((0, 0), |(refused, all), a| {
        (refused + u64::from(untaken(a.cause.as_ref())), all + 1)
    })
}

/// The largest of `values` less the smallest; 0 when there are none.
pub(super) fn spread(values: impl Iterator<Item = u64>) -> u64 {
    let (lo, hi) = values.fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    hi.saturating_sub(lo)
}

/// Whether a connection other than `closed` was open when the going-down closes came
/// (`at`, first and last, ms since the run's start) and still got a frame after them:
/// the server was serving it, so it was not going down.
pub(super) fn served_through(
    reports: &[ConnReport],
    closed: &std::collections::BTreeSet<u32>,
    (first, last): (f64, f64),
) -> bool {
    let last_us = (last * 1000.0) as u64;
    kept_through(reports, closed, first, |a| {
        a.last_frame_us.is_some_and(|at| at > last_us)
    })
}

/// How many completeness violations the run had, and the kept ones, when it had no
/// violation of another oracle and kept some: what the verdicts that excuse unmet
/// expectations ([`unmet_over_unread`], [`misread`]) read. `None` otherwise.
pub(super) fn only_unmet<'a>(
    reports: &'a [ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<(u64, Vec<&'a Violation>)> {
    let unmet = by_oracle
        .get(&OracleKind::Completeness)
        .copied()
        .unwrap_or(0);
    let others = by_oracle.values().sum::<u64>() - unmet;
    let kept: Vec<&Violation> = reports.iter().flat_map(|r| &r.violations).collect();
    (unmet > 0 && others == 0 && !kept.is_empty()).then_some((unmet, kept))
}
